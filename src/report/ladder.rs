//! Ladder diagrams (in progress).
