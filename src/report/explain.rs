//! Plain-language explanations (in progress).
