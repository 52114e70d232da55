//! Capture file reading and writing, through the public API only.
//!
//! Files are built by hand, byte by byte, so each test states exactly what is on disk; the
//! proptests check that no input, however mangled, makes the reader panic or loop.

use std::io::{self, Read};

use proptest::prelude::*;
use synack_core::capfile::{
    CapfileErrorKind, CaptureFormat, CaptureReader, MAX_CAPLEN, PcapNgWriter, PcapWriter,
};
use synack_core::frame::{Frame, LinkType, Timestamp};

// ---------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------

/// Byte order of a hand-built file.
#[derive(Clone, Copy)]
enum Bo {
    Le,
    Be,
}

/// A growable byte vector that writes integers in a chosen byte order.
struct Bytes {
    bo: Bo,
    v: Vec<u8>,
}

impl Bytes {
    fn new(bo: Bo) -> Self {
        Bytes { bo, v: Vec::new() }
    }
    fn u16(&mut self, x: u16) -> &mut Self {
        let b = match self.bo {
            Bo::Le => x.to_le_bytes(),
            Bo::Be => x.to_be_bytes(),
        };
        self.v.extend_from_slice(&b);
        self
    }
    fn u32(&mut self, x: u32) -> &mut Self {
        let b = match self.bo {
            Bo::Le => x.to_le_bytes(),
            Bo::Be => x.to_be_bytes(),
        };
        self.v.extend_from_slice(&b);
        self
    }
    fn u64(&mut self, x: u64) -> &mut Self {
        let b = match self.bo {
            Bo::Le => x.to_le_bytes(),
            Bo::Be => x.to_be_bytes(),
        };
        self.v.extend_from_slice(&b);
        self
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.v.extend_from_slice(b);
        self
    }
    fn pad4(&mut self) -> &mut Self {
        self.v.resize(self.v.len().next_multiple_of(4), 0);
        self
    }
}

fn pcap_header(bo: Bo, magic: u32, link: u32) -> Bytes {
    let mut b = Bytes::new(bo);
    b.u32(magic)
        .u16(2)
        .u16(4)
        .u32(0)
        .u32(0)
        .u32(65535)
        .u32(link);
    b
}

fn pcap_record(b: &mut Bytes, secs: u32, frac: u32, data: &[u8], orig_len: u32) {
    b.u32(secs)
        .u32(frac)
        .u32(data.len() as u32)
        .u32(orig_len)
        .bytes(data);
}

/// A pcapng block: type, total length, body (padded), total length.
fn block(b: &mut Bytes, block_type: u32, body: &[u8]) {
    let len = 12 + body.len().next_multiple_of(4) as u32;
    b.u32(block_type).u32(len).bytes(body).pad4().u32(len);
}

fn body(bo: Bo, f: impl FnOnce(&mut Bytes)) -> Vec<u8> {
    let mut b = Bytes::new(bo);
    f(&mut b);
    b.v
}

fn shb(b: &mut Bytes) {
    let bo = b.bo;
    block(
        b,
        0x0a0d_0d0a,
        &body(bo, |x| {
            x.u32(0x1a2b_3c4d).u16(1).u16(0).u64(u64::MAX);
        }),
    );
}

/// An Interface Description Block; `opts` are (code, value) pairs.
fn idb(b: &mut Bytes, link: u16, snaplen: u32, opts: &[(u16, &[u8])]) {
    let bo = b.bo;
    block(
        b,
        1,
        &body(bo, |x| {
            x.u16(link).u16(0).u32(snaplen);
            for (code, value) in opts {
                x.u16(*code).u16(value.len() as u16).bytes(value).pad4();
            }
            if !opts.is_empty() {
                x.u32(0);
            }
        }),
    );
}

fn epb(b: &mut Bytes, iface: u32, ts: u64, data: &[u8], orig_len: u32) {
    let bo = b.bo;
    block(
        b,
        6,
        &body(bo, |x| {
            x.u32(iface).u32((ts >> 32) as u32).u32(ts as u32);
            x.u32(data.len() as u32).u32(orig_len).bytes(data);
        }),
    );
}

fn spb(b: &mut Bytes, orig_len: u32, data: &[u8]) {
    let bo = b.bo;
    block(
        b,
        3,
        &body(bo, |x| {
            x.u32(orig_len).bytes(data);
        }),
    );
}

fn open_bytes(bytes: Vec<u8>) -> CaptureReader {
    CaptureReader::from_reader(Box::new(io::Cursor::new(bytes)), "t.pcap".into())
        .expect("valid header")
}

/// An owned copy of a frame, to collect a whole file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Owned {
    ts: Timestamp,
    link: LinkType,
    data: Vec<u8>,
    orig_len: u32,
}

fn owned(f: Frame<'_>) -> Owned {
    Owned {
        ts: f.ts,
        link: f.link,
        data: f.data.to_vec(),
        orig_len: f.orig_len,
    }
}

/// Every frame up to the end or the first error.
fn read_all(r: &mut CaptureReader) -> (Vec<Owned>, Option<synack_core::capfile::CapfileError>) {
    let mut out = Vec::new();
    loop {
        match r.next_frame() {
            Ok(Some(f)) => out.push(owned(f)),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

fn o(ts: u64, link: LinkType, data: &[u8], orig_len: u32) -> Owned {
    Owned {
        ts: Timestamp(ts),
        link,
        data: data.to_vec(),
        orig_len,
    }
}

// ---------------------------------------------------------------------------------------
// Round trips through the writers
// ---------------------------------------------------------------------------------------

fn sample_frames() -> Vec<Owned> {
    (0..200u32)
        .map(|i| {
            let data: Vec<u8> = (0..(i * 7 % 97) as u8).map(|b| b ^ i as u8).collect();
            let ts = 1_700_000_000_123_456_789 + u64::from(i) * 1_000_003;
            Owned {
                ts: Timestamp(ts),
                link: LinkType::Ethernet,
                orig_len: data.len() as u32 + i % 3,
                data,
            }
        })
        .collect()
}

#[test]
fn pcap_round_trip_keeps_bytes_and_nanosecond_timestamps() {
    let frames = sample_frames();
    let mut w = PcapWriter::new(Vec::new(), LinkType::Ethernet, 65535).unwrap();
    for f in &frames {
        let frame = Frame {
            ts: f.ts,
            link: f.link,
            data: &f.data,
            orig_len: f.orig_len,
        };
        w.write_frame(&frame).unwrap();
    }
    let mut r = open_bytes(w.finish().unwrap());
    assert_eq!(r.format(), CaptureFormat::Pcap { nanosecond: true });
    let (got, err) = read_all(&mut r);
    assert!(err.is_none());
    assert_eq!(got, frames);
}

#[test]
fn pcap_round_trip_through_a_file_on_disk() {
    let path = std::env::temp_dir().join(format!("synack-capfile-{}.pcap", std::process::id()));
    let mut w = PcapWriter::create(&path, LinkType::LinuxSll2, 0).unwrap();
    let data = [0x45u8; 60];
    let frame = Frame {
        ts: Timestamp(42),
        link: LinkType::LinuxSll2,
        data: &data,
        orig_len: 60,
    };
    w.write_frame(&frame).unwrap();
    w.finish().unwrap();
    let mut r = CaptureReader::open(&path).unwrap();
    let (got, err) = read_all(&mut r);
    std::fs::remove_file(&path).unwrap();
    assert!(err.is_none());
    assert_eq!(got, [o(42, LinkType::LinuxSll2, &data, 60)]);
}

#[test]
fn pcapng_writer_round_trip_with_several_link_types() {
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    let eth = w
        .add_interface(LinkType::Ethernet, 0, Some("veth-a"))
        .unwrap();
    let lo = w.add_interface(LinkType::Null, 0, Some("lo0")).unwrap();
    let mut want = Vec::new();
    for (i, f) in sample_frames().into_iter().enumerate() {
        let (id, link) = if i % 2 == 0 {
            (eth, LinkType::Ethernet)
        } else {
            (lo, LinkType::Null)
        };
        let frame = Frame {
            ts: f.ts,
            link,
            data: &f.data,
            orig_len: f.orig_len,
        };
        w.write_frame(id, &frame).unwrap();
        want.push(Owned { link, ..f });
    }
    let mut r = open_bytes(w.finish().unwrap());
    assert_eq!(r.format(), CaptureFormat::PcapNg);
    let (got, err) = read_all(&mut r);
    assert!(err.is_none());
    assert_eq!(got, want);
}

// ---------------------------------------------------------------------------------------
// Hand-built legacy pcap
// ---------------------------------------------------------------------------------------

#[test]
fn big_endian_microsecond_pcap() {
    let mut b = pcap_header(Bo::Be, 0xa1b2_c3d4, 101);
    pcap_record(&mut b, 1_000, 250_000, &[0x45, 0, 0, 20], 40);
    pcap_record(&mut b, 1_001, 1, &[0x60, 1, 2], 3);
    assert_eq!(&b.v[..4], &[0xa1, 0xb2, 0xc3, 0xd4]);
    let mut r = open_bytes(b.v);
    assert_eq!(r.format(), CaptureFormat::Pcap { nanosecond: false });
    let (got, err) = read_all(&mut r);
    assert!(err.is_none());
    assert_eq!(
        got,
        [
            o(1_000_250_000_000, LinkType::RawIp, &[0x45, 0, 0, 20], 40),
            o(1_001_000_001_000, LinkType::RawIp, &[0x60, 1, 2], 3),
        ]
    );
}

#[test]
fn nanosecond_pcap_in_both_byte_orders() {
    for bo in [Bo::Le, Bo::Be] {
        let mut b = pcap_header(bo, 0xa1b2_3c4d, 113);
        pcap_record(&mut b, 7, 999_999_999, &[1, 2], 2);
        let mut r = open_bytes(b.v);
        assert_eq!(r.format(), CaptureFormat::Pcap { nanosecond: true });
        let (got, err) = read_all(&mut r);
        assert!(err.is_none());
        assert_eq!(got, [o(7_999_999_999, LinkType::LinuxSll, &[1, 2], 2)]);
    }
}

#[test]
fn orig_len_below_caplen_is_accepted() {
    let mut b = pcap_header(Bo::Le, 0xa1b2_c3d4, 1);
    pcap_record(&mut b, 1, 0, &[9; 10], 4);
    let (got, err) = read_all(&mut open_bytes(b.v));
    assert!(err.is_none());
    assert_eq!(got, [o(1_000_000_000, LinkType::Ethernet, &[9; 10], 4)]);
}

#[test]
fn header_only_pcap_is_an_empty_capture() {
    let b = pcap_header(Bo::Le, 0xa1b2_c3d4, 1);
    let (got, err) = read_all(&mut open_bytes(b.v));
    assert!(got.is_empty() && err.is_none());
}

// ---------------------------------------------------------------------------------------
// Hand-built pcapng
// ---------------------------------------------------------------------------------------

/// Section 1 (little-endian): Ethernet at 10^-9 s, raw IP at the default microseconds, an
/// 802.11 interface synack cannot decode, a Simple Packet Block, blocks to skip.
/// Section 2 (big-endian): SLL2 at 2^-10 s with an offset of 100 s, 802.11 again.
fn two_section_pcapng() -> Vec<u8> {
    let mut b = Bytes::new(Bo::Le);
    shb(&mut b);
    idb(&mut b, 1, 0, &[(2, b"eth0"), (9, &[9])]);
    idb(&mut b, 101, 65535, &[]);
    idb(&mut b, 105, 65535, &[]);
    epb(&mut b, 0, 1_500_000_000_123_456_789, &[0xaa; 14], 60);
    // Interface statistics and name resolution blocks: skipped.
    block(&mut b, 5, &[0; 20]);
    block(&mut b, 4, &[0; 8]);
    epb(&mut b, 1, 1_500_000_000_654_321, &[0x45, 0, 0, 1, 2], 5);
    epb(&mut b, 2, 1_500_000_001_000_000, &[0x80; 30], 30);
    // SPB: interface 0, the timestamp of the previous packet (the skipped 802.11 one).
    spb(&mut b, 3, &[1, 2, 3]);
    epb(&mut b, 2, 1_500_000_002_000_000, &[0x80; 30], 30);

    let mut b2 = Bytes::new(Bo::Be);
    shb(&mut b2);
    idb(
        &mut b2,
        276,
        0,
        &[(9, &[0x80 | 10]), (14, &100i64.to_be_bytes())],
    );
    idb(&mut b2, 105, 0, &[]);
    epb(&mut b2, 0, 1024 * 5 + 256, &[7; 20], 20);
    epb(&mut b2, 1, 0, &[0x80; 30], 30);
    b.v.extend(b2.v);
    b.v
}

#[test]
fn pcapng_sections_interfaces_resolutions_and_spb() {
    let mut r = open_bytes(two_section_pcapng());
    assert_eq!(r.format(), CaptureFormat::PcapNg);
    let (got, err) = read_all(&mut r);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        got,
        [
            o(
                1_500_000_000_123_456_789,
                LinkType::Ethernet,
                &[0xaa; 14],
                60
            ),
            o(
                1_500_000_000_654_321_000,
                LinkType::RawIp,
                &[0x45, 0, 0, 1, 2],
                5
            ),
            o(1_500_000_001_000_000_000, LinkType::Ethernet, &[1, 2, 3], 3),
            o(105_250_000_000, LinkType::LinuxSll2, &[7; 20], 20),
        ]
    );
    assert_eq!(
        r.warnings(),
        [
            "2 packets on interface 2 in section 1 with unsupported link type 105 (IEEE802_11) skipped",
            "1 packet on interface 1 in section 2 with unsupported link type 105 (IEEE802_11) skipped",
        ]
    );
}

#[test]
fn pcapng_warning_in_a_single_section_names_only_the_interface() {
    let mut b = Bytes::new(Bo::Le);
    shb(&mut b);
    idb(&mut b, 1, 0, &[]);
    idb(&mut b, 105, 0, &[]);
    for _ in 0..12 {
        epb(&mut b, 1, 0, &[0; 24], 24);
    }
    let mut r = open_bytes(b.v);
    let (got, err) = read_all(&mut r);
    assert!(got.is_empty() && err.is_none());
    assert_eq!(
        r.warnings(),
        ["12 packets on interface 1 with unsupported link type 105 (IEEE802_11) skipped"]
    );
}

#[test]
fn spb_length_is_cut_by_snaplen_and_orig_len() {
    let mut b = Bytes::new(Bo::Le);
    shb(&mut b);
    idb(&mut b, 1, 4, &[]);
    spb(&mut b, 100, &[1, 2, 3, 4]); // cut by snaplen 4
    spb(&mut b, 2, &[5, 6, 0, 0]); // orig_len 2: the rest is padding
    let (got, err) = read_all(&mut open_bytes(b.v));
    assert!(err.is_none());
    assert_eq!(
        got,
        [
            o(0, LinkType::Ethernet, &[1, 2, 3, 4], 100),
            o(0, LinkType::Ethernet, &[5, 6], 2)
        ]
    );
}

#[test]
fn huge_unknown_block_is_streamed_past() {
    // A 64 MiB block of an ignored type, produced on the fly: the reader must skip it
    // without holding it.
    let mut head = Bytes::new(Bo::Le);
    shb(&mut head);
    idb(&mut head, 1, 0, &[]);
    let big: u32 = 64 << 20;
    head.u32(0x0000_0bad).u32(big);
    let mut tail = Bytes::new(Bo::Le);
    tail.u32(big);
    epb(&mut tail, 0, 5, &[1, 2, 3], 3);
    let zeros = io::repeat(0).take(u64::from(big) - 12);
    let src = io::Cursor::new(head.v)
        .chain(zeros)
        .chain(io::Cursor::new(tail.v));
    let mut r = CaptureReader::from_reader(Box::new(src), "big".into()).unwrap();
    let (got, err) = read_all(&mut r);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(got, [o(5_000, LinkType::Ethernet, &[1, 2, 3], 3)]);
}

// ---------------------------------------------------------------------------------------
// Damaged input: exact messages and offsets
// ---------------------------------------------------------------------------------------

#[test]
fn not_a_capture_file_names_the_magic() {
    let e = CaptureReader::from_reader(
        Box::new(io::Cursor::new(b"<html><body>".to_vec())),
        "x.pcap".into(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "x.pcap: at byte 0: not a pcap or pcapng file (magic 0x3c68746d)"
    );
    assert_eq!(e.offset, 0);
    assert!(matches!(
        e.kind,
        CapfileErrorKind::NotCapture { magic: 0x3c68_746d }
    ));
}

#[test]
fn missing_file_says_cannot_open() {
    let e = CaptureReader::open(std::path::Path::new("/nonexistent/x.pcap")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/x.pcap: cannot open: "),
        "{e}"
    );
}

#[test]
fn truncated_pcap_record_reports_its_offset() {
    let mut b = pcap_header(Bo::Le, 0xa1b2_c3d4, 1);
    pcap_record(&mut b, 1, 0, &[1; 50], 50);
    pcap_record(&mut b, 2, 0, &[2; 60], 60);
    let second = 24 + 16 + 50;
    // Cut inside the second record's data, then inside its header.
    for (cut, what) in [
        (second + 16 + 30, "packet record"),
        (second + 10, "packet record header"),
    ] {
        let mut r = open_bytes(b.v[..cut].to_vec());
        let (got, err) = read_all(&mut r);
        assert_eq!(got.len(), 1, "the first record is still delivered");
        let e = err.expect("truncation error");
        assert!(e.is_truncation());
        assert_eq!(e.offset, second as u64);
        assert!(
            e.to_string()
                .starts_with(&format!("t.pcap: at byte {second}: truncated {what}")),
            "{e}"
        );
    }
}

#[test]
fn truncated_pcapng_block_reports_its_offset() {
    let mut b = Bytes::new(Bo::Le);
    shb(&mut b);
    idb(&mut b, 1, 0, &[]);
    let at = b.v.len() as u64;
    epb(&mut b, 0, 1, &[1; 40], 40);
    b.v.truncate(b.v.len() - 3);
    let (got, err) = read_all(&mut open_bytes(b.v));
    assert!(got.is_empty());
    let e = err.unwrap();
    assert!(e.is_truncation());
    assert_eq!(e.offset, at);
}

#[test]
fn absurd_caplen_is_an_error_not_an_allocation() {
    let mut b = pcap_header(Bo::Le, 0xa1b2_c3d4, 1);
    pcap_record(&mut b, 1, 0, &[1; 8], 8);
    let bad = b.v.len() as u64;
    b.u32(2).u32(0).u32(0xffff_fff0).u32(60).bytes(&[0; 64]);
    let (got, err) = read_all(&mut open_bytes(b.v));
    assert_eq!(got.len(), 1);
    let e = err.unwrap();
    assert_eq!(e.offset, bad);
    assert!(matches!(
        e.kind,
        CapfileErrorKind::CaplenTooLarge {
            caplen: 0xffff_fff0
        }
    ));
    assert!(
        e.to_string().contains("exceeds the 262144-byte limit"),
        "{e}"
    );

    // The limit itself is fine.
    let mut b = pcap_header(Bo::Le, 0xa1b2_c3d4, 1);
    pcap_record(&mut b, 1, 0, &vec![0; MAX_CAPLEN as usize], MAX_CAPLEN);
    let (got, err) = read_all(&mut open_bytes(b.v));
    assert!(err.is_none());
    assert_eq!(got[0].data.len(), MAX_CAPLEN as usize);
}

#[test]
fn pcapng_block_length_problems_are_errors_with_offsets() {
    let prefix = || {
        let mut b = Bytes::new(Bo::Le);
        shb(&mut b);
        idb(&mut b, 1, 0, &[]);
        b
    };
    let at = prefix().v.len() as u64;

    // EPB with an absurd captured length.
    let mut b = prefix();
    b.u32(6)
        .u32(48)
        .u32(0)
        .u32(0)
        .u32(0)
        .u32(1 << 30)
        .u32(16)
        .bytes(&[0; 16])
        .u32(48);
    let e = read_all(&mut open_bytes(b.v)).1.unwrap();
    assert_eq!(e.offset, at);
    assert!(
        matches!(e.kind, CapfileErrorKind::CaplenTooLarge { .. }),
        "{e}"
    );

    // EPB whose captured length does not fit in its block.
    let mut b = prefix();
    b.u32(6)
        .u32(48)
        .u32(0)
        .u32(0)
        .u32(0)
        .u32(17)
        .u32(17)
        .bytes(&[0; 16])
        .u32(48);
    let e = read_all(&mut open_bytes(b.v)).1.unwrap();
    assert_eq!(e.offset, at);
    assert!(matches!(
        e.kind,
        CapfileErrorKind::CaplenExceedsBlock {
            caplen: 17,
            block_len: 48
        }
    ));

    // Trailing length differs.
    let mut b = prefix();
    epb(&mut b, 0, 0, &[1; 4], 4);
    let n = b.v.len();
    b.v[n - 4] = 99;
    let e = read_all(&mut open_bytes(b.v)).1.unwrap();
    assert_eq!(e.offset, at);
    assert!(matches!(
        e.kind,
        CapfileErrorKind::BlockLengthMismatch {
            leading: 36,
            trailing: 99
        }
    ));

    // Length not a multiple of 4, and below the minimum.
    for len in [37, 8] {
        let mut b = prefix();
        b.u32(6).u32(len).bytes(&[0; 40]);
        let e = read_all(&mut open_bytes(b.v)).1.unwrap();
        assert_eq!(e.offset, at);
        assert!(
            matches!(e.kind, CapfileErrorKind::BadBlockLength { .. }),
            "{e}"
        );
    }

    // Packet on an interface that was never described.
    let mut b = prefix();
    epb(&mut b, 3, 0, &[1; 4], 4);
    let e = read_all(&mut open_bytes(b.v)).1.unwrap();
    assert_eq!(e.offset, at);
    assert_eq!(
        e.to_string(),
        format!(
            "t.pcap: at byte {at}: packet on interface 3, but the section defines 1 interface(s)"
        )
    );

    // A packet block too long to load.
    let mut b = prefix();
    b.u32(6)
        .u32(2 << 20)
        .u32(0)
        .u32(0)
        .u32(0)
        .u32(4)
        .u32(4)
        .bytes(&[0; 64]);
    let e = read_all(&mut open_bytes(b.v)).1.unwrap();
    assert_eq!(e.offset, at);
    assert!(
        matches!(e.kind, CapfileErrorKind::BlockTooLong { .. }),
        "{e}"
    );
}

#[test]
fn a_new_section_forgets_the_old_interfaces() {
    let mut b = Bytes::new(Bo::Le);
    shb(&mut b);
    idb(&mut b, 1, 0, &[]);
    shb(&mut b);
    let at = b.v.len() as u64;
    epb(&mut b, 0, 0, &[1; 4], 4);
    let e = read_all(&mut open_bytes(b.v)).1.unwrap();
    assert_eq!(e.offset, at);
    assert!(matches!(
        e.kind,
        CapfileErrorKind::UnknownInterface {
            interface: 0,
            defined: 0
        }
    ));
}

// ---------------------------------------------------------------------------------------
// Streaming: results do not depend on how the bytes arrive
// ---------------------------------------------------------------------------------------

/// Hands out `step` bytes per read, to exercise every refill boundary.
struct Dribble {
    data: Vec<u8>,
    pos: usize,
    step: usize,
}

impl Read for Dribble {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = out.len().min(self.step).min(self.data.len() - self.pos);
        out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn byte_at_a_time_reader_gives_the_same_frames() {
    let file = two_section_pcapng();
    let (want, _) = read_all(&mut open_bytes(file.clone()));
    for step in [1, 3, 7] {
        let src = Dribble {
            data: file.clone(),
            pos: 0,
            step,
        };
        let mut r = CaptureReader::from_reader(Box::new(src), "d".into()).unwrap();
        let (got, err) = read_all(&mut r);
        assert!(err.is_none());
        assert_eq!(got, want);
    }
}

// ---------------------------------------------------------------------------------------
// Compressed captures (capture-fixtures/veth-v4-standard.pcap, .gz and .zst of it)
// ---------------------------------------------------------------------------------------

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("capture-fixtures")
        .join(name)
}

#[test]
fn gzip_and_zstd_captures_give_the_same_frames_as_the_plain_file() {
    use synack_core::capfile::Compression;
    let plain = fixture("veth-v4-standard.pcap");
    let mut r = CaptureReader::open(&plain).unwrap();
    assert_eq!(r.compression(), Compression::None);
    let (want, err) = read_all(&mut r);
    assert!(err.is_none() && want.len() == 32, "{err:?} {}", want.len());
    for (name, kind) in [
        ("veth-v4-standard.pcap.gz", Compression::Gzip),
        ("veth-v4-standard.pcap.zst", Compression::Zstd),
    ] {
        let mut r = CaptureReader::open(&fixture(name)).unwrap();
        assert_eq!(r.compression(), kind, "{name}");
        assert_eq!(r.format(), CaptureFormat::Pcap { nanosecond: false });
        let (got, err) = read_all(&mut r);
        assert!(err.is_none(), "{name}: {err:?}");
        assert_eq!(got, want, "{name}");
        // A byte at a time (a pipe handing out little), as from standard input.
        let bytes = std::fs::read(fixture(name)).unwrap();
        for step in [1, 5] {
            let src = Dribble {
                data: bytes.clone(),
                pos: 0,
                step,
            };
            let mut r = CaptureReader::from_reader(Box::new(src), name.into()).unwrap();
            assert_eq!(read_all(&mut r).0, want, "{name} step {step}");
        }
    }
}

#[test]
fn a_cut_compressed_capture_keeps_the_frames_before_the_cut() {
    for name in ["veth-v4-standard.pcap.gz", "veth-v4-standard.pcap.zst"] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        for cut in [bytes.len() / 2, bytes.len() - 3] {
            // zstd decodes whole blocks: a cut inside the first one fails at open.
            let mut r = match CaptureReader::from_reader(
                Box::new(io::Cursor::new(bytes[..cut].to_vec())),
                name.into(),
            ) {
                Ok(r) => r,
                Err(e) => {
                    assert!(e.to_string().starts_with(name), "{e}");
                    continue;
                }
            };
            let (got, err) = read_all(&mut r);
            let err = err.unwrap_or_else(|| panic!("{name} cut at {cut}: no error"));
            // Cut in the middle, frames are lost; cut in the trailer (gzip's CRC and
            // length), every frame is there but the damage is still reported.
            assert!(
                got.len() < 32 || cut > bytes.len() / 2,
                "{name} cut at {cut}: {} frames",
                got.len()
            );
            assert!(err.to_string().starts_with(name), "{err}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// No input panics or hangs
// ---------------------------------------------------------------------------------------

/// Reads everything; every record consumes at least 12 bytes, so the number of frames is
/// bounded by the input size (termination), and any panic fails the test.
fn exhaust(bytes: Vec<u8>) {
    let len = bytes.len();
    let Ok(mut r) = CaptureReader::from_reader(Box::new(io::Cursor::new(bytes)), "f".into()) else {
        return;
    };
    let mut frames = 0usize;
    while let Ok(Some(f)) = r.next_frame() {
        assert!(f.data.len() <= MAX_CAPLEN as usize);
        frames += 1;
        assert!(
            frames <= len / 12 + 1,
            "more frames than the input can hold"
        );
    }
    let _ = r.warnings();
    assert!(
        r.next_frame().unwrap().is_none(),
        "the reader is fused after the end"
    );
}

fn valid_files() -> Vec<Vec<u8>> {
    let mut pcap = pcap_header(Bo::Be, 0xa1b2_3c4d, 1);
    for i in 0..5u8 {
        pcap_record(&mut pcap, u32::from(i), 0, &[i; 20], 20);
    }
    vec![pcap.v, two_section_pcapng()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        exhaust(bytes);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_magic_never_panic(
        magic in prop::sample::select(vec![
            vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0],
            vec![0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4],
            vec![0x34, 0xcd, 0xb2, 0xa1, 2, 0, 4, 0],
            vec![0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a],
            vec![0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 28, 0x1a, 0x2b, 0x3c, 0x4d],
        ]),
        rest in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut bytes = magic;
        bytes.extend(rest);
        exhaust(bytes);
    }

    #[test]
    fn mutated_valid_files_never_panic(
        which in 0usize..2,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let mut bytes = valid_files().swap_remove(which);
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if do_cut {
            let n = cut.index(bytes.len() + 1);
            bytes.truncate(n);
        }
        exhaust(bytes);
    }
}

// ---------------------------------------------------------------------------------------
// Throughput (run by hand: cargo test --release --test capfile -- --ignored throughput)
// ---------------------------------------------------------------------------------------

/// Cycles over a chunk of records forever, standing in for a very large file.
struct Cycle {
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for Cycle {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < out.len() {
            let take = (out.len() - n).min(self.chunk.len() - self.pos);
            out[n..n + take].copy_from_slice(&self.chunk[self.pos..self.pos + take]);
            n += take;
            self.pos = (self.pos + take) % self.chunk.len();
        }
        Ok(n)
    }
}

#[test]
#[ignore = "throughput measurement; run in release mode"]
fn throughput() {
    const PACKETS: u64 = 20_000_000;
    for pcapng in [false, true] {
        // 1000 small TCP-sized frames (54 to 74 bytes) per chunk.
        let mut chunk = Bytes::new(Bo::Le);
        for i in 0..1000u32 {
            let data = vec![i as u8; 54 + (i % 21) as usize];
            if pcapng {
                epb(&mut chunk, 0, u64::from(i), &data, data.len() as u32);
            } else {
                pcap_record(&mut chunk, i, 0, &data, data.len() as u32);
            }
        }
        let mut head = Bytes::new(Bo::Le);
        if pcapng {
            shb(&mut head);
            idb(&mut head, 1, 0, &[]);
        } else {
            head = pcap_header(Bo::Le, 0xa1b2_c3d4, 1);
        }
        let src = io::Cursor::new(head.v).chain(Cycle {
            chunk: chunk.v,
            pos: 0,
        });
        let mut r = CaptureReader::from_reader(Box::new(src), "cycle".into()).unwrap();
        let start = std::time::Instant::now();
        let mut bytes = 0u64;
        for _ in 0..PACKETS {
            bytes += r.next_frame().unwrap().unwrap().data.len() as u64;
        }
        let secs = start.elapsed().as_secs_f64();
        let rate = PACKETS as f64 / secs;
        eprintln!(
            "{}: {:.1} M packets/s ({:.0} MB/s of packet data)",
            if pcapng { "pcapng" } else { "pcap" },
            rate / 1e6,
            bytes as f64 / secs / 1e6
        );
        assert!(rate > 2e6, "{rate} packets/s");
    }
}
