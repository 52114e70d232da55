//! [`CaptureReader`]: frames from a pcap or pcapng file, one at a time, borrowed from a
//! reusable buffer.
//!
//! The reader is the replay source of the pipeline: it must give the decoder exactly the
//! frames a live capture would have, with their capture times, and must say precisely where
//! and why it stopped when the file is damaged, because the caller still reports the verdicts
//! built from the frames before that point.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::decompress::{self, Compression};
use super::error::{CapfileError, CapfileErrorKind};
use super::input::Input;
use super::pcapng;
use super::record::{Failure, Record, SkipLog};
use super::{Endian, MAX_CAPLEN};
use crate::frame::{Frame, LinkType, Timestamp};

/// The container format of a capture file, as its magic number says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Legacy libpcap format; `nanosecond` for the 0xa1b23c4d magic.
    Pcap { nanosecond: bool },
    /// pcapng (several interfaces and sections possible).
    PcapNg,
}

/// Reads frames from a pcap or pcapng file.
///
/// Memory use is bounded by the largest record (at most [`super::MAX_BLOCK_LEN`]), not by the
/// file size, and no heap allocation happens per packet. After an error the reader is
/// finished: later calls to [`CaptureReader::next_frame`] return `Ok(None)`.
pub struct CaptureReader {
    name: String,
    compression: Compression,
    input: Input,
    format: Format,
    log: SkipLog,
    done: bool,
}

enum Format {
    Pcap(PcapState),
    PcapNg(pcapng::State),
}

/// What the 24-byte legacy pcap file header says about every record.
struct PcapState {
    endian: Endian,
    nanosecond: bool,
    /// 16, or 24 for Kuznetsov's "modified" pcap (ifindex, protocol, packet type appended).
    header_len: usize,
    raw_link: u32,
    link: Option<LinkType>,
    skipped: u64,
}

impl CaptureReader {
    /// Opens a capture file; `-` reads standard input. Reads and checks the file header, so a
    /// file that is not a capture is refused here. A gzip- or zstd-compressed capture is
    /// recognised by its magic bytes and decompressed as it is read (see
    /// [`CaptureReader::compression`]).
    pub fn open(path: &Path) -> Result<Self, CapfileError> {
        if path == Path::new("-") {
            return Self::from_reader(Box::new(io::stdin()), "-".to_owned());
        }
        let name = path.display().to_string();
        let file =
            File::open(path).map_err(|e| CapfileError::new(&name, 0, CapfileErrorKind::Open(e)))?;
        Self::from_reader(Box::new(file), name)
    }

    /// Reads a capture from any byte stream, compressed (gzip, zstd) or not; `name` is used
    /// in error messages. The reader does its own buffering: there is no need to wrap `r`
    /// in a `BufReader`.
    pub fn from_reader(r: Box<dyn Read + Send>, name: String) -> Result<Self, CapfileError> {
        let (r, compression) = decompress::open(r)
            .map_err(|e| CapfileError::new(&name, 0, CapfileErrorKind::Read(e)))?;
        let mut input = Input::new(r);
        let format = detect(&mut input).map_err(|f| CapfileError::new(&name, f.offset, f.kind))?;
        Ok(CaptureReader {
            name,
            compression,
            input,
            format,
            log: SkipLog::default(),
            done: false,
        })
    }

    /// The next frame of a link type synack decodes, `Ok(None)` at the clean end of the file.
    /// Frames on other link types are skipped and reported by [`CaptureReader::warnings`].
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CapfileError> {
        if self.done {
            return Ok(None);
        }
        let record = match &mut self.format {
            Format::Pcap(st) => next_pcap_record(&mut self.input, st),
            Format::PcapNg(st) => pcapng::next_record(&mut self.input, st, &mut self.log),
        };
        match record {
            Ok(Some(r)) => Ok(Some(Frame {
                ts: r.ts,
                link: r.link,
                data: self.input.slice(r.at, r.len),
                orig_len: r.orig_len,
            })),
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(f) => {
                self.done = true;
                Err(CapfileError::new(&self.name, f.offset, f.kind))
            }
        }
    }

    /// What was skipped and why, one sentence each, e.g. "12 packets on interface 1 with
    /// unsupported link type 105 (IEEE802_11) skipped". Empty when nothing was skipped.
    pub fn warnings(&self) -> Vec<String> {
        match &self.format {
            Format::Pcap(st) => {
                let mut log = self.log.clone();
                if st.skipped > 0 {
                    log.add_skip(0, None, st.raw_link, st.skipped);
                }
                log.render(false)
            }
            Format::PcapNg(st) => {
                let (log, several_sections) = st.skips_so_far(&self.log);
                log.render(several_sections)
            }
        }
    }

    /// The container format found by the magic number.
    pub fn format(&self) -> CaptureFormat {
        match &self.format {
            Format::Pcap(st) => CaptureFormat::Pcap {
                nanosecond: st.nanosecond,
            },
            Format::PcapNg(_) => CaptureFormat::PcapNg,
        }
    }

    /// How the file was compressed. With compression, byte offsets (in errors and
    /// [`CaptureReader::position`]) count decompressed bytes.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The name used in error messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Byte offset of the next unread record: how far the reader got.
    pub fn position(&self) -> u64 {
        self.input.pos()
    }
}

impl fmt::Debug for CaptureReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureReader")
            .field("name", &self.name)
            .field("format", &self.format())
            .field("compression", &self.compression)
            .field("position", &self.position())
            .finish_non_exhaustive()
    }
}

/// Recognises the file by its magic number and, for legacy pcap, consumes the file header.
/// A pcapng file's first Section Header Block is left for the block parser, after its
/// byte-order magic has been checked so that garbage is refused at open time.
fn detect(input: &mut Input) -> Result<Format, Failure> {
    let at0 = |kind| Failure { offset: 0, kind };
    let have = input.fill(24).map_err(|e| at0(CapfileErrorKind::Read(e)))?;
    let b = input.buffered();
    if have < 4 {
        return Err(at0(CapfileErrorKind::TooShort { len: have as u64 }));
    }
    // Shown big-endian: the bytes in file order, as a hex dump shows them.
    let magic = Endian::Big.u32(b, 0);
    let (endian, nanosecond, header_len) = match magic {
        0xa1b2_c3d4 => (Endian::Big, false, 16),
        0xd4c3_b2a1 => (Endian::Little, false, 16),
        0xa1b2_3c4d => (Endian::Big, true, 16),
        0x4d3c_b2a1 => (Endian::Little, true, 16),
        0xa1b2_cd34 => (Endian::Big, false, 24),
        0x34cd_b2a1 => (Endian::Little, false, 24),
        0x0a0d_0d0a => {
            if have < 12 {
                return Err(at0(CapfileErrorKind::Truncated {
                    what: "section header block",
                    needed: 28,
                    available: have as u64,
                }));
            }
            let bom = Endian::Big.u32(b, 8);
            if bom != 0x1a2b_3c4d && bom != 0x4d3c_2b1a {
                return Err(Failure {
                    offset: 8,
                    kind: CapfileErrorKind::BadByteOrderMagic { magic: bom },
                });
            }
            return Ok(Format::PcapNg(pcapng::State::new()));
        }
        _ => return Err(at0(CapfileErrorKind::NotCapture { magic })),
    };
    if have < 24 {
        return Err(at0(CapfileErrorKind::Truncated {
            what: "pcap file header",
            needed: 24,
            available: have as u64,
        }));
    }
    let (major, minor) = (endian.u16(b, 4), endian.u16(b, 6));
    if major != 2 {
        return Err(Failure {
            offset: 4,
            kind: CapfileErrorKind::UnsupportedVersion {
                format: "pcap",
                major,
                minor,
            },
        });
    }
    // The upper bits of the link-type field carry FCS information (pcap draft, section 4):
    // the link type proper is the low 16 bits.
    let raw_link = endian.u32(b, 20) & 0xffff;
    input.consume(24);
    Ok(Format::Pcap(PcapState {
        endian,
        nanosecond,
        header_len,
        raw_link,
        link: LinkType::from_pcap(raw_link),
        skipped: 0,
    }))
}

/// The next record of a legacy pcap file; `None` at a clean end (a record boundary).
#[inline]
fn next_pcap_record(input: &mut Input, st: &mut PcapState) -> Result<Option<Record>, Failure> {
    loop {
        let off = input.pos();
        let fail = |kind| Failure { offset: off, kind };
        let hl = st.header_len;
        let have = input
            .fill(hl)
            .map_err(|e| fail(CapfileErrorKind::Read(e)))?;
        if have == 0 {
            return Ok(None);
        }
        if have < hl {
            return Err(fail(CapfileErrorKind::Truncated {
                what: "packet record header",
                needed: hl as u64,
                available: have as u64,
            }));
        }
        let e = st.endian;
        let b = input.buffered();
        let (secs, frac) = (e.u32(b, 0), e.u32(b, 4));
        let (caplen, orig_len) = (e.u32(b, 8), e.u32(b, 12));
        if caplen > MAX_CAPLEN {
            return Err(fail(CapfileErrorKind::CaplenTooLarge { caplen }));
        }
        let total = hl + caplen as usize;
        let have = input
            .fill(total)
            .map_err(|e| fail(CapfileErrorKind::Read(e)))?;
        if have < total {
            return Err(fail(CapfileErrorKind::Truncated {
                what: "packet record",
                needed: total as u64,
                available: have as u64,
            }));
        }
        let at = input.start() + hl;
        input.consume(total);
        let Some(link) = st.link else {
            st.skipped += 1;
            continue;
        };
        // Cannot overflow: (2^32 - 1) * 10^9 + (2^32 - 1) * 10^3 < 2^64.
        let frac_ns = if st.nanosecond {
            u64::from(frac)
        } else {
            u64::from(frac) * 1_000
        };
        let ts = Timestamp(u64::from(secs) * 1_000_000_000 + frac_ns);
        return Ok(Some(Record {
            ts,
            link,
            at,
            len: caplen as usize,
            orig_len,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: Vec<u8>) -> Result<CaptureReader, CapfileError> {
        CaptureReader::from_reader(Box::new(io::Cursor::new(bytes)), "t".to_owned())
    }

    fn pcap_header(magic: u32, link: u32) -> Vec<u8> {
        let mut v = magic.to_le_bytes().to_vec();
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&4u16.to_le_bytes());
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&65535u32.to_le_bytes());
        v.extend_from_slice(&link.to_le_bytes());
        v
    }

    fn record(secs: u32, frac: u32, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [secs, frac, data.len() as u32, data.len() as u32] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn little_endian_microsecond_pcap() {
        let mut f = pcap_header(0xa1b2_c3d4, 1);
        f.extend(record(1, 2, &[1, 2, 3]));
        f.extend(record(3, 999_999, &[]));
        let mut r = reader(f).unwrap();
        assert_eq!(r.format(), CaptureFormat::Pcap { nanosecond: false });
        let fr = r.next_frame().unwrap().unwrap();
        assert_eq!(
            (fr.ts, fr.link, fr.data, fr.orig_len),
            (
                Timestamp(1_000_002_000),
                LinkType::Ethernet,
                &[1u8, 2, 3][..],
                3
            )
        );
        let fr = r.next_frame().unwrap().unwrap();
        assert_eq!(fr.ts, Timestamp(3_999_999_000));
        assert!(fr.data.is_empty());
        assert!(r.next_frame().unwrap().is_none());
        assert!(r.next_frame().unwrap().is_none());
        assert!(r.warnings().is_empty());
    }

    #[test]
    fn modified_pcap_has_longer_record_headers() {
        let mut f = pcap_header(0xa1b2_cd34, 101);
        f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0]);
        f.extend_from_slice(&[9; 8]);
        f.extend_from_slice(&[0x45, 0, 0, 0]);
        let mut r = reader(f).unwrap();
        let fr = r.next_frame().unwrap().unwrap();
        assert_eq!(
            (fr.link, fr.data),
            (LinkType::RawIp, &[0x45u8, 0, 0, 0][..])
        );
        assert!(r.next_frame().unwrap().is_none());
    }

    #[test]
    fn unsupported_pcap_link_type_is_a_warning() {
        let mut f = pcap_header(0xa1b2_c3d4, 105);
        f.extend(record(1, 0, &[1]));
        f.extend(record(2, 0, &[2]));
        let mut r = reader(f).unwrap();
        assert!(r.next_frame().unwrap().is_none());
        assert_eq!(
            r.warnings(),
            ["2 packets with unsupported link type 105 (IEEE802_11) skipped"]
        );
    }

    #[test]
    fn fcs_bits_of_the_link_type_are_ignored() {
        let mut f = pcap_header(0xa1b2_c3d4, 1 | 0x1400_0000);
        f.extend(record(1, 0, &[1]));
        let mut r = reader(f).unwrap();
        assert_eq!(r.next_frame().unwrap().unwrap().link, LinkType::Ethernet);
    }

    #[test]
    fn header_errors() {
        let e = reader(vec![]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t: at byte 0: empty file, not a pcap or pcapng file"
        );
        let e = reader(pcap_header(0xa1b2_c3d4, 1)[..20].to_vec()).unwrap_err();
        assert!(e.is_truncation(), "{e}");
        let mut f = pcap_header(0xa1b2_c3d4, 1);
        f[4] = 3;
        let e = reader(f).unwrap_err();
        assert_eq!(e.to_string(), "t: at byte 4: unsupported pcap version 3.4");
        let e = reader(b"\x0a\x0d\x0d\x0a\x1c\0\0\0\x01\x02\x03\x04".to_vec()).unwrap_err();
        assert_eq!(e.offset, 8);
        assert!(matches!(
            e.kind,
            CapfileErrorKind::BadByteOrderMagic { magic: 0x01020304 }
        ));
    }

    #[test]
    fn reader_is_fused_after_an_error() {
        let mut f = pcap_header(0xa1b2_c3d4, 1);
        f.extend(record(1, 0, &[1, 2, 3, 4]));
        f.truncate(f.len() - 1);
        let mut r = reader(f).unwrap();
        let e = r.next_frame().unwrap_err();
        assert_eq!(e.offset, 24);
        assert!(r.next_frame().unwrap().is_none());
    }
}
