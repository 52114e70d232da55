//! Errors from reading a capture file, each pinned to a file name and a byte offset.
//!
//! The offset is where the offending record or block *starts* (or the offending field, for a
//! header field), so a user can find it with `xxd -s OFFSET` and the caller can say how far
//! the replay got before it stopped.

use std::fmt;
use std::io;

use super::{MAX_BLOCK_LEN, MAX_CAPLEN};

/// Why a capture file could not be read (further).
#[derive(Debug)]
pub struct CapfileError {
    /// The file name as given by the user ("-" or "stdin" for standard input).
    pub path: String,
    /// Byte offset in the file of the record, block or field that is wrong.
    pub offset: u64,
    pub kind: CapfileErrorKind,
}

/// What is wrong, with the values that show it.
#[derive(Debug)]
#[non_exhaustive]
pub enum CapfileErrorKind {
    /// The file could not be opened.
    Open(io::Error),
    /// Reading failed part way.
    Read(io::Error),
    /// Fewer than four bytes: not even a magic number.
    TooShort { len: u64 },
    /// The first four bytes are no pcap or pcapng magic (shown big-endian, as `xxd` shows
    /// the bytes).
    NotCapture { magic: u32 },
    /// A pcapng section header whose byte-order magic is neither 0x1a2b3c4d nor its swap.
    BadByteOrderMagic { magic: u32 },
    /// A pcap or pcapng major version this reader does not know.
    UnsupportedVersion {
        format: &'static str,
        major: u16,
        minor: u16,
    },
    /// The file ends inside a header, record or block.
    Truncated {
        what: &'static str,
        needed: u64,
        available: u64,
    },
    /// A captured length beyond [`MAX_CAPLEN`]: a corrupt length field.
    CaplenTooLarge { caplen: u32 },
    /// A pcapng block length that is not a multiple of 4 or is below its type's minimum.
    BadBlockLength {
        block: &'static str,
        len: u32,
        min: u32,
    },
    /// A pcapng block this reader must load whole is longer than [`MAX_BLOCK_LEN`].
    BlockTooLong { block: &'static str, len: u32 },
    /// The trailing copy of a pcapng block length differs from the leading one.
    BlockLengthMismatch { leading: u32, trailing: u32 },
    /// A packet block whose captured length does not fit in the block.
    CaplenExceedsBlock { caplen: u32, block_len: u32 },
    /// A packet on an interface the section has not described.
    UnknownInterface { interface: u32, defined: usize },
    /// More interfaces in one section than the reader keeps state for.
    TooManyInterfaces { limit: usize },
}

impl CapfileError {
    pub(crate) fn new(path: &str, offset: u64, kind: CapfileErrorKind) -> Self {
        CapfileError {
            path: path.to_owned(),
            offset,
            kind,
        }
    }

    /// True when the file simply ends early (the typical state of a capture that is still
    /// being written or was cut off): the caller may keep what it read and warn.
    pub fn is_truncation(&self) -> bool {
        matches!(self.kind, CapfileErrorKind::Truncated { .. })
    }
}

impl fmt::Display for CapfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            // No offset: nothing was read.
            CapfileErrorKind::Open(e) => write!(f, "{}: cannot open: {e}", self.path),
            kind => write!(f, "{}: at byte {}: {kind}", self.path, self.offset),
        }
    }
}

impl fmt::Display for CapfileErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CapfileErrorKind::*;
        match self {
            Open(e) => write!(f, "cannot open: {e}"),
            Read(e) => write!(f, "read failed: {e}"),
            TooShort { len: 0 } => write!(f, "empty file, not a pcap or pcapng file"),
            TooShort { len } => {
                write!(f, "only {len} bytes, too short for a pcap or pcapng file")
            }
            NotCapture { magic } => {
                write!(f, "not a pcap or pcapng file (magic {magic:#010x})")?;
                // A common mistake with an easy fix deserves a hint.
                if magic >> 16 == 0x1f8b {
                    write!(f, "; it looks gzip-compressed, decompress it first")?;
                } else if magic >> 8 == 0x28b52f || *magic == 0xfd37_7a58 {
                    write!(f, "; it looks compressed, decompress it first")?;
                }
                Ok(())
            }
            BadByteOrderMagic { magic } => write!(
                f,
                "pcapng section header with unknown byte-order magic {magic:#010x} \
                 (expected 0x1a2b3c4d)"
            ),
            UnsupportedVersion {
                format,
                major,
                minor,
            } => {
                write!(f, "unsupported {format} version {major}.{minor}")
            }
            Truncated {
                what,
                needed,
                available,
            } => write!(
                f,
                "truncated {what}: needs {needed} bytes, the file ends after {available}"
            ),
            CaplenTooLarge { caplen } => write!(
                f,
                "captured length {caplen} exceeds the {MAX_CAPLEN}-byte limit \
                 (corrupt record header?)"
            ),
            BadBlockLength { block, len, min } if !len.is_multiple_of(4) => write!(
                f,
                "{block} block length {len} is not a multiple of 4 (minimum {min})"
            ),
            BadBlockLength { block, len, min } => write!(
                f,
                "{block} block length {len} is below the minimum of {min}"
            ),
            BlockTooLong { block, len } => write!(
                f,
                "{block} block length {len} exceeds the {MAX_BLOCK_LEN}-byte limit"
            ),
            BlockLengthMismatch { leading, trailing } => write!(
                f,
                "block length {leading} at the start of the block but {trailing} at its end"
            ),
            CaplenExceedsBlock { caplen, block_len } => write!(
                f,
                "captured length {caplen} does not fit in a block of {block_len} bytes"
            ),
            UnknownInterface { interface, defined } => write!(
                f,
                "packet on interface {interface}, but the section defines {defined} \
                 interface(s)"
            ),
            TooManyInterfaces { limit } => {
                write!(f, "more than {limit} interfaces in one section")
            }
        }
    }
}

impl std::error::Error for CapfileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            CapfileErrorKind::Open(e) | CapfileErrorKind::Read(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_offset_and_problem() {
        let e = CapfileError::new(
            "x.pcap",
            0,
            CapfileErrorKind::NotCapture { magic: 0x3c68746d },
        );
        assert_eq!(
            e.to_string(),
            "x.pcap: at byte 0: not a pcap or pcapng file (magic 0x3c68746d)"
        );
        let e = CapfileError::new(
            "t.pcap",
            40,
            CapfileErrorKind::Truncated {
                what: "packet record",
                needed: 76,
                available: 20,
            },
        );
        assert_eq!(
            e.to_string(),
            "t.pcap: at byte 40: truncated packet record: needs 76 bytes, the file ends after 20"
        );
        assert!(e.is_truncation());
    }

    #[test]
    fn gzip_gets_a_hint() {
        let e = CapfileError::new(
            "a.pcap.gz",
            0,
            CapfileErrorKind::NotCapture { magic: 0x1f8b0800 },
        );
        assert!(e.to_string().contains("gzip"), "{e}");
    }
}
