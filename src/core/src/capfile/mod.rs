//! pcap and pcapng files: the replay source and the `-w FILE` sink.
//!
//! Reading is a hand-written streaming parser rather than `pcap-file`'s readers because the
//! replay path wants three things at once: errors that name the exact byte offset of the bad
//! record (so a user can open the file in a hex editor, and the caller can still print the
//! verdicts read so far), memory bounded by the largest record rather than the file size, and
//! no heap allocation per packet (replay must keep up with millions of packets per second).
//! Every length read from the file is validated before it is used to slice, so no input can
//! make the reader panic, and every record consumes at least 12 bytes, so no input can make it
//! loop forever.
//!
//! - [`mod@read`]: [`CaptureReader`], legacy pcap (both byte orders, micro- and nanosecond
//!   magics, Kuznetsov's modified format) and pcapng (several sections and interfaces,
//!   Enhanced, Simple and obsolete Packet Blocks, `if_tsresol`, `if_tsoffset`).
//! - [`mod@write`]: [`PcapWriter`] (one link type, nanosecond pcap) and [`PcapNgWriter`]
//!   (several interfaces with different link types, as a live scan on many interfaces has).
//! - [`error`]: [`CapfileError`], a typed error carrying file name and byte offset.
//! - `decompress`: gzip and zstd input, recognised by magic bytes and decompressed as a
//!   stream ([`Compression`]).

mod decompress;
pub mod error;
mod input;
mod pcapng;
pub mod read;
mod record;
pub mod write;

pub use decompress::Compression;
pub use error::{CapfileError, CapfileErrorKind};
pub use read::{CaptureFormat, CaptureReader};
pub use write::{InterfaceId, PcapNgWriter, PcapWriter};

/// The largest captured length accepted for one record: libpcap's own MAXIMUM_SNAPLEN
/// (256 KiB). Anything larger is a corrupt length field, and refusing it keeps the reader's
/// buffer bounded.
pub const MAX_CAPLEN: u32 = 256 * 1024;

/// The largest pcapng block the reader loads whole (section and interface headers, packet
/// blocks with their options). Blocks of types the reader ignores are skipped by streaming
/// and may be of any length.
pub const MAX_BLOCK_LEN: u32 = 1024 * 1024;

/// Human name of a pcap LINKTYPE_* value, for messages about link types synack cannot decode.
/// Covers the types one meets in practice; others are shown by number only.
pub fn link_type_name(value: u32) -> Option<&'static str> {
    Some(match value {
        0 => "NULL",
        1 => "ETHERNET",
        6 => "IEEE802_5",
        7 => "ARCNET_BSD",
        9 => "PPP",
        10 => "FDDI",
        12 | 14 | 101 => "RAW",
        50 => "PPP_HDLC",
        51 => "PPP_ETHER",
        104 => "C_HDLC",
        105 => "IEEE802_11",
        107 => "FRELAY",
        108 => "LOOP",
        113 => "LINUX_SLL",
        119 => "IEEE802_11_PRISM",
        127 => "IEEE802_11_RADIOTAP",
        138 => "APPLE_IP_OVER_IEEE1394",
        143 => "DOCSIS",
        147..=162 => "USER",
        163 => "IEEE802_11_AVS",
        187 => "BLUETOOTH_HCI_H4",
        189 => "USB_LINUX",
        192 => "PPI",
        195 => "IEEE802_15_4_WITHFCS",
        201 => "BLUETOOTH_HCI_H4_WITH_PHDR",
        204 => "PPP_PPPD",
        215 => "IEEE802_15_4_NONASK_PHY",
        220 => "USB_LINUX_MMAPPED",
        228 => "IPV4",
        229 => "IPV6",
        239 => "NFLOG",
        249 => "USBPCAP",
        253 => "NETLINK",
        263 => "IPOIB",
        276 => "LINUX_SLL2",
        279 => "ETW",
        _ => return None,
    })
}

/// A byte order, as declared by a file's magic number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endian {
    Little,
    Big,
}

impl Endian {
    /// The u16 at `at`, or 0 when `b` is too short. Callers check lengths first; the fallback
    /// only exists so that a missed check can never become a panic.
    #[inline]
    pub(crate) fn u16(self, b: &[u8], at: usize) -> u16 {
        match b.get(at..at.saturating_add(2)) {
            Some(&[x, y]) => match self {
                Endian::Little => u16::from_le_bytes([x, y]),
                Endian::Big => u16::from_be_bytes([x, y]),
            },
            _ => 0,
        }
    }

    /// The u32 at `at`, or 0 when `b` is too short (see [`Endian::u16`]).
    #[inline]
    pub(crate) fn u32(self, b: &[u8], at: usize) -> u32 {
        match b.get(at..at.saturating_add(4)) {
            Some(&[a, x, y, z]) => match self {
                Endian::Little => u32::from_le_bytes([a, x, y, z]),
                Endian::Big => u32::from_be_bytes([a, x, y, z]),
            },
            _ => 0,
        }
    }

    /// The u64 at `at`, or 0 when `b` is too short (see [`Endian::u16`]).
    #[inline]
    pub(crate) fn u64(self, b: &[u8], at: usize) -> u64 {
        let hi_lo = (
            self.u32(b, at) as u64,
            self.u32(b, at.saturating_add(4)) as u64,
        );
        match self {
            Endian::Little => hi_lo.1 << 32 | hi_lo.0,
            Endian::Big => hi_lo.0 << 32 | hi_lo.1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endian_reads_never_panic_on_short_input() {
        assert_eq!(Endian::Little.u32(&[1, 2, 3], 0), 0);
        assert_eq!(Endian::Big.u16(&[1, 2, 3], usize::MAX), 0);
        assert_eq!(Endian::Big.u32(&[1, 2, 3, 4], 0), 0x0102_0304);
        assert_eq!(Endian::Little.u32(&[1, 2, 3, 4], 0), 0x0403_0201);
        let b = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(Endian::Big.u64(&b, 0), 0x0102_0304_0506_0708);
        assert_eq!(Endian::Little.u64(&b, 0), 0x0807_0605_0403_0201);
    }

    #[test]
    fn every_decodable_link_type_has_a_name() {
        for v in 0..1000 {
            if crate::frame::LinkType::from_pcap(v).is_some() {
                assert!(link_type_name(v).is_some(), "{v}");
            }
        }
    }
}
