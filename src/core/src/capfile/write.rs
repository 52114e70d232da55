//! Writing captured frames, for `synack scan -w FILE`: a file that tcpdump, tshark and
//! `synack replay` read back with the same bytes and timestamps.
//!
//! Both writers use nanosecond timestamps, because the live capture has them and replay
//! verdicts must not change for want of precision. Both write little-endian, so the same
//! frames give the same file on every machine (readers handle either byte order). Neither
//! buffers: give them a `BufWriter` (or use [`PcapWriter::create`]).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::MAX_CAPLEN;
use crate::frame::{Frame, LinkType};

/// Legacy pcap magic for nanosecond timestamps.
const PCAP_NANO_MAGIC: u32 = 0xa1b2_3c4d;

/// Splits a nanosecond timestamp into pcap's 32-bit seconds and nanoseconds; pcap cannot
/// represent times from 2106 on.
fn split_ts(frame: &Frame) -> io::Result<(u32, u32)> {
    let ns = frame.ts.nanos();
    let secs = u32::try_from(ns / 1_000_000_000).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "timestamp beyond 2106 does not fit in pcap",
        )
    })?;
    Ok((secs, (ns % 1_000_000_000) as u32))
}

/// The bytes to store and the original length to record, after cutting to `snaplen`.
fn cut<'a>(frame: &Frame<'a>, snaplen: u32) -> (&'a [u8], u32) {
    let data = &frame.data[..frame.data.len().min(snaplen as usize)];
    let orig_len = if data.len() < frame.data.len() {
        // Cut here: the wire length is at least what we were given.
        frame
            .orig_len
            .max(u32::try_from(frame.data.len()).unwrap_or(u32::MAX))
    } else {
        frame.orig_len
    };
    (data, orig_len)
}

/// A snap length of 0 (or above libpcap's maximum) means "the maximum".
fn effective_snaplen(snaplen: u32) -> u32 {
    if snaplen == 0 {
        MAX_CAPLEN
    } else {
        snaplen.min(MAX_CAPLEN)
    }
}

fn link_mismatch(expected: LinkType, got: LinkType) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("frame of link type {got:?} written to a {expected:?} capture"),
    )
}

/// Writes a legacy pcap file (nanosecond resolution) of one link type.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    w: W,
    link: LinkType,
    snaplen: u32,
}

impl PcapWriter<BufWriter<File>> {
    /// Creates (or truncates) `path` and writes the file header.
    pub fn create(path: &Path, link: LinkType, snaplen: u32) -> io::Result<Self> {
        PcapWriter::new(BufWriter::new(File::create(path)?), link, snaplen)
    }
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header. Frames longer than `snaplen` (0: the 256 KiB maximum) are cut.
    pub fn new(mut w: W, link: LinkType, snaplen: u32) -> io::Result<Self> {
        let snaplen = effective_snaplen(snaplen);
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&PCAP_NANO_MAGIC.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay 0, as every modern writer leaves them.
        h[16..20].copy_from_slice(&snaplen.to_le_bytes());
        h[20..24].copy_from_slice(&link.to_pcap().to_le_bytes());
        w.write_all(&h)?;
        Ok(PcapWriter { w, link, snaplen })
    }

    /// Appends one frame. Fails with `InvalidInput` for a frame of another link type (a pcap
    /// file has exactly one) or a timestamp pcap cannot hold.
    pub fn write_frame(&mut self, frame: &Frame) -> io::Result<()> {
        if frame.link != self.link {
            return Err(link_mismatch(self.link, frame.link));
        }
        let (secs, nanos) = split_ts(frame)?;
        let (data, orig_len) = cut(frame, self.snaplen);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&secs.to_le_bytes());
        h[4..8].copy_from_slice(&nanos.to_le_bytes());
        h[8..12].copy_from_slice(&(data.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(data)
    }

    /// Flushes and hands back the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

/// An interface of a [`PcapNgWriter`], as returned by [`PcapNgWriter::add_interface`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InterfaceId(u32);

impl InterfaceId {
    /// The interface number as stored in the file (0 for the first one added).
    pub fn index(self) -> u32 {
        self.0
    }
}

/// Writes a pcapng file with one section and any number of interfaces, each with its own
/// link type: what a live scan capturing on several interfaces needs in a single file.
///
/// tshark and Wireshark read such a file; tcpdump (libpcap) refuses one whose interfaces
/// differ in link type, so prefer one [`PcapWriter`] per link type when tcpdump matters.
#[derive(Debug)]
pub struct PcapNgWriter<W: Write> {
    w: W,
    /// Link type and snap length of each interface, by id.
    interfaces: Vec<(LinkType, u32)>,
}

/// pcapng option codes used by the writer.
const OPT_ENDOFOPT: u16 = 0;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;

/// Appends one option (code, length, value, padding to 4 bytes) to a block under
/// construction.
fn push_option(block: &mut Vec<u8>, code: u16, value: &[u8]) -> io::Result<()> {
    let len = u16::try_from(value.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pcapng option too long"))?;
    block.extend_from_slice(&code.to_le_bytes());
    block.extend_from_slice(&len.to_le_bytes());
    block.extend_from_slice(value);
    block.resize(block.len().next_multiple_of(4), 0);
    Ok(())
}

/// Writes a block whose body (everything between the length fields) is `body`.
fn write_block(w: &mut impl Write, block_type: u32, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len() + 12)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pcapng block too long"))?;
    w.write_all(&block_type.to_le_bytes())?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(body)?;
    w.write_all(&len.to_le_bytes())
}

impl PcapNgWriter<BufWriter<File>> {
    /// Creates (or truncates) `path` and writes the section header.
    pub fn create(path: &Path) -> io::Result<Self> {
        PcapNgWriter::new(BufWriter::new(File::create(path)?))
    }
}

impl<W: Write> PcapNgWriter<W> {
    /// Writes the section header (naming synack as the writing application).
    pub fn new(mut w: W) -> io::Result<Self> {
        let mut body = Vec::with_capacity(64);
        body.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        // Section length unknown: we stream.
        body.extend_from_slice(&(-1i64).to_le_bytes());
        let app = concat!("synack ", env!("CARGO_PKG_VERSION"));
        push_option(&mut body, SHB_USERAPPL, app.as_bytes())?;
        push_option(&mut body, OPT_ENDOFOPT, &[])?;
        write_block(&mut w, 0x0a0d_0d0a, &body)?;
        Ok(PcapNgWriter {
            w,
            interfaces: Vec::new(),
        })
    }

    /// Describes a new interface (nanosecond timestamps); `name` is shown by tshark. Frames
    /// longer than `snaplen` (0: the 256 KiB maximum) are cut.
    pub fn add_interface(
        &mut self,
        link: LinkType,
        snaplen: u32,
        name: Option<&str>,
    ) -> io::Result<InterfaceId> {
        let id = u32::try_from(self.interfaces.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many interfaces"))?;
        let snaplen = effective_snaplen(snaplen);
        let pcap_link = u16::try_from(link.to_pcap())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "link type beyond 16 bits"))?;
        let mut body = Vec::with_capacity(32);
        body.extend_from_slice(&pcap_link.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&snaplen.to_le_bytes());
        if let Some(name) = name {
            push_option(&mut body, IF_NAME, name.as_bytes())?;
        }
        push_option(&mut body, IF_TSRESOL, &[9])?;
        push_option(&mut body, OPT_ENDOFOPT, &[])?;
        write_block(&mut self.w, 1, &body)?;
        self.interfaces.push((link, snaplen));
        Ok(InterfaceId(id))
    }

    /// Appends one frame as an Enhanced Packet Block on interface `id`. Fails with
    /// `InvalidInput` for an unknown interface or a frame of another link type.
    pub fn write_frame(&mut self, id: InterfaceId, frame: &Frame) -> io::Result<()> {
        let Some(&(link, snaplen)) = self.interfaces.get(id.0 as usize) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "unknown pcapng interface",
            ));
        };
        if frame.link != link {
            return Err(link_mismatch(link, frame.link));
        }
        let (data, orig_len) = cut(frame, snaplen);
        let padded = data.len().next_multiple_of(4);
        // data.len() <= MAX_CAPLEN, so this cannot overflow.
        let block_len = (32 + padded) as u32;
        let ns = frame.ts.nanos();
        let mut h = [0u8; 28];
        h[0..4].copy_from_slice(&6u32.to_le_bytes());
        h[4..8].copy_from_slice(&block_len.to_le_bytes());
        h[8..12].copy_from_slice(&id.0.to_le_bytes());
        h[12..16].copy_from_slice(&((ns >> 32) as u32).to_le_bytes());
        h[16..20].copy_from_slice(&(ns as u32).to_le_bytes());
        h[20..24].copy_from_slice(&(data.len() as u32).to_le_bytes());
        h[24..28].copy_from_slice(&orig_len.to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(data)?;
        let mut tail = [0u8; 7];
        let pad = padded - data.len();
        tail[pad..pad + 4].copy_from_slice(&block_len.to_le_bytes());
        self.w.write_all(&tail[..pad + 4])
    }

    /// Flushes and hands back the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capfile::CaptureReader;
    use crate::frame::Timestamp;

    fn frame(ts: u64, link: LinkType, data: &[u8]) -> Frame<'_> {
        Frame {
            ts: Timestamp(ts),
            link,
            data,
            orig_len: data.len() as u32,
        }
    }

    #[test]
    fn pcap_header_is_nanosecond_little_endian() {
        let out = PcapWriter::new(Vec::new(), LinkType::LinuxSll2, 0)
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(&out[..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
        assert_eq!(&out[16..20], &MAX_CAPLEN.to_le_bytes());
        assert_eq!(&out[20..24], &276u32.to_le_bytes());
    }

    #[test]
    fn pcap_cuts_to_snaplen_and_refuses_wrong_link() {
        let mut w = PcapWriter::new(Vec::new(), LinkType::Ethernet, 4).unwrap();
        w.write_frame(&frame(5, LinkType::Ethernet, &[1, 2, 3, 4, 5, 6]))
            .unwrap();
        let e = w.write_frame(&frame(5, LinkType::RawIp, &[1])).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = w
            .write_frame(&frame(u64::MAX, LinkType::Ethernet, &[1]))
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let out = w.finish().unwrap();
        let mut r = CaptureReader::from_reader(Box::new(io::Cursor::new(out)), "w".into()).unwrap();
        let f = r.next_frame().unwrap().unwrap();
        assert_eq!(
            (f.data, f.orig_len, f.ts),
            (&[1u8, 2, 3, 4][..], 6, Timestamp(5))
        );
        assert!(r.next_frame().unwrap().is_none());
    }

    #[test]
    fn pcapng_round_trip_with_padding() {
        let mut w = PcapNgWriter::new(Vec::new()).unwrap();
        let eth = w
            .add_interface(LinkType::Ethernet, 0, Some("veth0"))
            .unwrap();
        let raw = w.add_interface(LinkType::RawIp, 0, None).unwrap();
        assert_eq!((eth.index(), raw.index()), (0, 1));
        for n in 0..6u8 {
            let data: Vec<u8> = (0..n).collect();
            w.write_frame(eth, &frame(u64::from(n) << 33, LinkType::Ethernet, &data))
                .unwrap();
            w.write_frame(raw, &frame(7, LinkType::RawIp, &data))
                .unwrap();
        }
        assert!(
            w.write_frame(InterfaceId(9), &frame(1, LinkType::Ethernet, &[]))
                .is_err()
        );
        assert!(
            w.write_frame(raw, &frame(1, LinkType::Ethernet, &[]))
                .is_err()
        );
        let out = w.finish().unwrap();
        let mut r = CaptureReader::from_reader(Box::new(io::Cursor::new(out)), "w".into()).unwrap();
        for n in 0..6u8 {
            let data: Vec<u8> = (0..n).collect();
            let f = r.next_frame().unwrap().unwrap();
            assert_eq!(
                (f.ts, f.link, f.data),
                (Timestamp(u64::from(n) << 33), LinkType::Ethernet, &data[..])
            );
            let f = r.next_frame().unwrap().unwrap();
            assert_eq!(
                (f.ts, f.link, f.data),
                (Timestamp(7), LinkType::RawIp, &data[..])
            );
        }
        assert!(r.next_frame().unwrap().is_none());
        assert!(r.warnings().is_empty());
    }
}
