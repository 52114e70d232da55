//! pcapng block parsing (draft-ietf-opsawg-pcapng): sections, interfaces and packet blocks.
//!
//! Only the blocks that carry packets or describe how to read them are loaded: Section Header
//! (byte order, resets interfaces), Interface Description (link type, snap length, timestamp
//! resolution and offset), Enhanced Packet, Simple Packet and the obsolete Packet Block. Every
//! other block (statistics, name resolution, decryption secrets, custom, …) is skipped by
//! streaming, whatever its length.

use super::error::CapfileErrorKind;
use super::input::Input;
use super::record::{Failure, Record, SkipLog};
use super::{Endian, MAX_BLOCK_LEN, MAX_CAPLEN};
use crate::frame::{LinkType, Timestamp};

/// Block type of a Section Header Block; a palindrome, so it reads the same in both byte
/// orders and can be recognised before the byte order is known.
pub(crate) const SHB_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

/// IDB option codes (section 4.2 of the pcapng draft).
const OPT_ENDOFOPT: u16 = 0;
const IF_TSRESOL: u16 = 9;
const IF_TSOFFSET: u16 = 14;

/// Interfaces kept per section: far more than any real capture, few enough that a file made
/// of nothing but interface blocks cannot grow the reader's memory without bound.
pub(crate) const MAX_INTERFACES: usize = 65_536;

/// Header (type, length) plus the fixed fields of an Enhanced Packet Block or Packet Block.
const PACKET_FIXED: usize = 28;

/// How an interface's timestamp units become nanoseconds, precomputed from `if_tsresol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TsScale {
    /// Units of 10^-n s with n <= 9: multiply.
    Mul(u64),
    /// Units of 10^-n s with n > 9: divide.
    Div(u64),
    /// Units of 2^-n s.
    Pow2(u32),
}

impl TsScale {
    /// The pcapng default when `if_tsresol` is absent is microseconds.
    const MICROS: TsScale = TsScale::Mul(1_000);

    fn from_tsresol(v: u8) -> TsScale {
        let n = u32::from(v & 0x7f);
        if v & 0x80 == 0 {
            if n <= 9 {
                TsScale::Mul(10u64.pow(9 - n))
            } else {
                // 10^(n-9) overflows u64 from n = 29: every timestamp then rounds to 0.
                TsScale::Div(10u64.checked_pow(n - 9).unwrap_or(u64::MAX))
            }
        } else {
            TsScale::Pow2(n)
        }
    }

    #[inline]
    fn to_nanos(self, t: u64) -> u64 {
        match self {
            TsScale::Mul(m) => t.saturating_mul(m),
            TsScale::Div(d) => t / d,
            // n <= 127, so the shift is in range; t * 10^9 < 2^94 fits in u128.
            TsScale::Pow2(n) => {
                let ns = (u128::from(t) * 1_000_000_000) >> n;
                u64::try_from(ns).unwrap_or(u64::MAX)
            }
        }
    }
}

#[derive(Clone, Debug)]
struct Interface {
    raw_link: u16,
    link: Option<LinkType>,
    snaplen: u32,
    scale: TsScale,
    /// `if_tsoffset`: seconds to add to every timestamp.
    offset_secs: i64,
    /// Packets skipped because synack cannot decode the link type.
    skipped: u64,
}

impl Interface {
    #[inline]
    fn timestamp(&self, units: u64) -> Timestamp {
        let ns = self.scale.to_nanos(units);
        if self.offset_secs == 0 {
            return Timestamp(ns);
        }
        let t = i128::from(ns) + i128::from(self.offset_secs) * 1_000_000_000;
        Timestamp(t.clamp(0, i128::from(u64::MAX)) as u64)
    }
}

/// Parser state across blocks.
pub(crate) struct State {
    endian: Endian,
    /// Sections seen so far, counting from 1 (0 before the first Section Header Block).
    section: u32,
    interfaces: Vec<Interface>,
    /// Simple Packet Blocks carry no timestamp: they get the previous packet's.
    last_ts: Timestamp,
}

impl State {
    pub(crate) fn new() -> Self {
        State {
            endian: Endian::Little,
            section: 0,
            interfaces: Vec::new(),
            last_ts: Timestamp(0),
        }
    }

    /// Moves the current section's skip counters into `log` (at a section change).
    fn archive_skips(&mut self, log: &mut SkipLog) {
        for (i, iface) in self.interfaces.iter().enumerate() {
            if iface.skipped > 0 {
                log.add_skip(
                    self.section,
                    Some(i as u32),
                    u32::from(iface.raw_link),
                    iface.skipped,
                );
            }
        }
    }

    /// A copy of `log` completed with the current section's skip counters, and whether the
    /// file has had more than one section (so messages must say which).
    pub(crate) fn skips_so_far(&self, log: &SkipLog) -> (SkipLog, bool) {
        let mut all = log.clone();
        for (i, iface) in self.interfaces.iter().enumerate() {
            if iface.skipped > 0 {
                all.add_skip(
                    self.section,
                    Some(i as u32),
                    u32::from(iface.raw_link),
                    iface.skipped,
                );
            }
        }
        (all, self.section > 1)
    }
}

fn block_name(block_type: u32) -> &'static str {
    match block_type {
        SHB => "section header",
        IDB => "interface description",
        PB => "packet",
        SPB => "simple packet",
        4 => "name resolution",
        5 => "interface statistics",
        EPB => "enhanced packet",
        9 => "systemd journal export",
        10 => "decryption secrets",
        0x0000_0bad | 0x4000_0bad => "custom",
        _ => "unknown",
    }
}

/// Smallest valid total length of each block type (header, fixed fields, trailer).
fn min_block_len(block_type: u32) -> u32 {
    match block_type {
        SHB => 28,
        IDB => 20,
        PB | EPB => 32,
        SPB => 16,
        _ => 12,
    }
}

fn read_failure(offset: u64) -> impl FnOnce(std::io::Error) -> Failure {
    move |e| Failure {
        offset,
        kind: CapfileErrorKind::Read(e),
    }
}

/// A block loaded whole in the input buffer, its lengths checked, not yet consumed.
struct Block {
    /// File offset of the block.
    offset: u64,
    block_type: u32,
    /// Total length, header and trailer included; at least the type's minimum.
    len: u32,
}

/// The next packet of a supported link type, `None` at a clean end of file (at a block
/// boundary). Counts packets of unsupported link types in their interface's counter.
pub(crate) fn next_record(
    input: &mut Input,
    st: &mut State,
    log: &mut SkipLog,
) -> Result<Option<Record>, Failure> {
    loop {
        let Some(block) = next_block(input, st)? else {
            return Ok(None);
        };
        let (off, len) = (block.offset, block.len as usize);
        let fail = |kind| Failure { offset: off, kind };
        let e = st.endian;
        let body = input.buffered().get(8..len - 4).unwrap_or(&[]);
        // Where the block starts in the input's buffer, for the packet data's range.
        let block_at = input.start();

        match block.block_type {
            SHB => {
                let (major, minor) = (e.u16(body, 4), e.u16(body, 6));
                if major != 1 {
                    return Err(Failure {
                        offset: off + 12,
                        kind: CapfileErrorKind::UnsupportedVersion {
                            format: "pcapng",
                            major,
                            minor,
                        },
                    });
                }
                st.archive_skips(log);
                st.interfaces.clear();
                st.section += 1;
            }
            IDB => {
                if st.interfaces.len() >= MAX_INTERFACES {
                    return Err(fail(CapfileErrorKind::TooManyInterfaces {
                        limit: MAX_INTERFACES,
                    }));
                }
                let raw_link = e.u16(body, 0);
                let mut iface = Interface {
                    raw_link,
                    link: LinkType::from_pcap(u32::from(raw_link)),
                    snaplen: e.u32(body, 4),
                    scale: TsScale::MICROS,
                    offset_secs: 0,
                    skipped: 0,
                };
                if !parse_idb_options(body.get(8..).unwrap_or(&[]), e, &mut iface) {
                    log.add_note(format!(
                        "malformed options of interface {} in the block at byte {off} ignored",
                        st.interfaces.len()
                    ));
                }
                st.interfaces.push(iface);
            }
            block_type @ (PB | EPB) => {
                // The two differ only in the width of the interface field.
                let interface = if block_type == EPB {
                    e.u32(body, 0)
                } else {
                    u32::from(e.u16(body, 0))
                };
                let units = u64::from(e.u32(body, 4)) << 32 | u64::from(e.u32(body, 8));
                // Checked against the block length by `next_block`.
                let caplen = e.u32(body, 12);
                let orig_len = e.u32(body, 16);
                let defined = st.interfaces.len();
                let Some(iface) = st.interfaces.get_mut(interface as usize) else {
                    return Err(fail(CapfileErrorKind::UnknownInterface {
                        interface,
                        defined,
                    }));
                };
                let ts = iface.timestamp(units);
                st.last_ts = ts;
                input.consume(len);
                let Some(link) = iface.link else {
                    iface.skipped += 1;
                    continue;
                };
                let at = block_at + PACKET_FIXED;
                let len = caplen as usize;
                return Ok(Some(Record {
                    ts,
                    link,
                    at,
                    len,
                    orig_len,
                }));
            }
            SPB => {
                let orig_len = e.u32(body, 0);
                let Some(iface) = st.interfaces.first_mut() else {
                    return Err(fail(CapfileErrorKind::UnknownInterface {
                        interface: 0,
                        defined: 0,
                    }));
                };
                // The captured length is implied: the original length cut by the snap length
                // and by what the block holds (the rest of the block is padding).
                let mut caplen = orig_len.min(block.len - 16);
                if iface.snaplen != 0 {
                    caplen = caplen.min(iface.snaplen);
                }
                if caplen > MAX_CAPLEN {
                    return Err(fail(CapfileErrorKind::CaplenTooLarge { caplen }));
                }
                input.consume(len);
                let Some(link) = iface.link else {
                    iface.skipped += 1;
                    continue;
                };
                let (ts, at, len) = (st.last_ts, block_at + 12, caplen as usize);
                return Ok(Some(Record {
                    ts,
                    link,
                    at,
                    len,
                    orig_len,
                }));
            }
            _ => {}
        }
        input.consume(len);
    }
}

/// Loads the next block the reader interprets, checking its lengths; blocks of other types
/// are skipped on the way. `None` at a clean end of file. Switches `st.endian` at a Section
/// Header Block, whose byte-order magic says how to read even its own length.
fn next_block(input: &mut Input, st: &mut State) -> Result<Option<Block>, Failure> {
    loop {
        let off = input.pos();
        let fail = |kind| Failure { offset: off, kind };
        let have = input.fill(8).map_err(read_failure(off))?;
        if have == 0 {
            return Ok(None);
        }
        if have < 8 {
            return Err(fail(CapfileErrorKind::Truncated {
                what: "pcapng block header",
                needed: 8,
                available: have as u64,
            }));
        }
        if input.buffered().get(..4) == Some(&SHB_MAGIC[..]) {
            let have = input.fill(12).map_err(read_failure(off))?;
            if have < 12 {
                return Err(fail(CapfileErrorKind::Truncated {
                    what: "section header block",
                    needed: 12,
                    available: have as u64,
                }));
            }
            st.endian = match Endian::Little.u32(input.buffered(), 8) {
                BYTE_ORDER_MAGIC => Endian::Little,
                m if m.swap_bytes() == BYTE_ORDER_MAGIC => Endian::Big,
                _ => {
                    return Err(Failure {
                        offset: off + 8,
                        kind: CapfileErrorKind::BadByteOrderMagic {
                            magic: Endian::Big.u32(input.buffered(), 8),
                        },
                    });
                }
            };
        }
        let e = st.endian;
        let block_type = e.u32(input.buffered(), 0);
        let block_len = e.u32(input.buffered(), 4);
        let name = block_name(block_type);
        let min = min_block_len(block_type);
        if !block_len.is_multiple_of(4) || block_len < min {
            return Err(fail(CapfileErrorKind::BadBlockLength {
                block: name,
                len: block_len,
                min,
            }));
        }

        if !matches!(block_type, SHB | IDB | PB | SPB | EPB) {
            skip_block(input, e, block_len).map_err(fail)?;
            continue;
        }

        if matches!(block_type, PB | EPB) {
            // Check the captured length before the block length, so a corrupt caplen is
            // reported as such rather than as an oversized block.
            let have = input.fill(PACKET_FIXED).map_err(read_failure(off))?;
            if have < PACKET_FIXED {
                return Err(fail(CapfileErrorKind::Truncated {
                    what: "pcapng block",
                    needed: u64::from(block_len),
                    available: have as u64,
                }));
            }
            let caplen = e.u32(input.buffered(), 20);
            if caplen > MAX_CAPLEN {
                return Err(fail(CapfileErrorKind::CaplenTooLarge { caplen }));
            }
            if PACKET_FIXED as u32 + caplen + 4 > block_len {
                return Err(fail(CapfileErrorKind::CaplenExceedsBlock {
                    caplen,
                    block_len,
                }));
            }
        }
        if block_len > MAX_BLOCK_LEN {
            return Err(fail(CapfileErrorKind::BlockTooLong {
                block: name,
                len: block_len,
            }));
        }
        let len = block_len as usize;
        let have = input.fill(len).map_err(read_failure(off))?;
        if have < len {
            return Err(fail(CapfileErrorKind::Truncated {
                what: "pcapng block",
                needed: u64::from(block_len),
                available: have as u64,
            }));
        }
        let trailing = e.u32(input.buffered(), len - 4);
        if trailing != block_len {
            return Err(fail(CapfileErrorKind::BlockLengthMismatch {
                leading: block_len,
                trailing,
            }));
        }
        return Ok(Some(Block {
            offset: off,
            block_type,
            len: block_len,
        }));
    }
}

/// Skips a block of a type the reader ignores, checking its trailing length.
fn skip_block(input: &mut Input, e: Endian, block_len: u32) -> Result<(), CapfileErrorKind> {
    let body = u64::from(block_len) - 4;
    let skipped = input.skip(body).map_err(CapfileErrorKind::Read)?;
    let have = input.fill(4).map_err(CapfileErrorKind::Read)?;
    if skipped < body || have < 4 {
        return Err(CapfileErrorKind::Truncated {
            what: "pcapng block",
            needed: u64::from(block_len),
            available: skipped + have.min(4) as u64,
        });
    }
    let trailing = e.u32(input.buffered(), 0);
    if trailing != block_len {
        return Err(CapfileErrorKind::BlockLengthMismatch {
            leading: block_len,
            trailing,
        });
    }
    input.consume(4);
    Ok(())
}

/// Reads the IDB options synack needs; false when the option list runs past the block (the
/// options read until then are kept: a broken comment should not cost the timestamps).
fn parse_idb_options(opts: &[u8], e: Endian, iface: &mut Interface) -> bool {
    let mut pos = 0usize;
    while pos < opts.len() {
        if opts.len() - pos < 4 {
            return false;
        }
        let code = e.u16(opts, pos);
        let len = usize::from(e.u16(opts, pos + 2));
        let start = pos + 4;
        let Some(value) = opts.get(start..start + len) else {
            return false;
        };
        match code {
            OPT_ENDOFOPT => return true,
            IF_TSRESOL if len == 1 => iface.scale = TsScale::from_tsresol(value[0]),
            IF_TSOFFSET if len == 8 => iface.offset_secs = e.u64(value, 0) as i64,
            _ => {}
        }
        pos = start + len.next_multiple_of(4);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsresol_forms() {
        assert_eq!(TsScale::from_tsresol(6), TsScale::Mul(1_000));
        assert_eq!(TsScale::from_tsresol(9), TsScale::Mul(1));
        assert_eq!(TsScale::from_tsresol(0), TsScale::Mul(1_000_000_000));
        assert_eq!(TsScale::from_tsresol(12), TsScale::Div(1_000));
        assert_eq!(TsScale::from_tsresol(127), TsScale::Div(u64::MAX));
        assert_eq!(TsScale::from_tsresol(0x80 | 10), TsScale::Pow2(10));
        assert_eq!(TsScale::Pow2(10).to_nanos(1024 * 3 + 512), 3_500_000_000);
        assert_eq!(TsScale::Pow2(127).to_nanos(u64::MAX), 0);
        assert_eq!(TsScale::Pow2(0).to_nanos(u64::MAX), u64::MAX);
        assert_eq!(TsScale::Div(1_000).to_nanos(1_234_567), 1_234);
        assert_eq!(TsScale::Mul(1_000).to_nanos(u64::MAX), u64::MAX);
    }

    #[test]
    fn tsoffset_shifts_and_clamps() {
        let mut iface = Interface {
            raw_link: 1,
            link: Some(LinkType::Ethernet),
            snaplen: 0,
            scale: TsScale::MICROS,
            offset_secs: 10,
            skipped: 0,
        };
        assert_eq!(iface.timestamp(5), Timestamp(10_000_005_000));
        iface.offset_secs = -10;
        assert_eq!(iface.timestamp(5), Timestamp(0));
        iface.offset_secs = i64::MAX;
        assert_eq!(iface.timestamp(5), Timestamp(u64::MAX));
    }

    #[test]
    fn idb_options_parsed_and_bounds_checked() {
        let mut iface = Interface {
            raw_link: 1,
            link: None,
            snaplen: 0,
            scale: TsScale::MICROS,
            offset_secs: 0,
            skipped: 0,
        };
        // if_name "eth0", if_tsresol 9, if_tsoffset 7, end.
        let mut opts = vec![2, 0, 4, 0, b'e', b't', b'h', b'0', 9, 0, 1, 0, 9, 0, 0, 0];
        opts.extend_from_slice(&[14, 0, 8, 0]);
        opts.extend_from_slice(&7i64.to_le_bytes());
        opts.extend_from_slice(&[0, 0, 0, 0]);
        assert!(parse_idb_options(&opts, Endian::Little, &mut iface));
        assert_eq!(iface.scale, TsScale::Mul(1));
        assert_eq!(iface.offset_secs, 7);
        // An option whose length runs past the end.
        assert!(!parse_idb_options(
            &[2, 0, 200, 0, 1, 2],
            Endian::Little,
            &mut iface
        ));
        assert!(!parse_idb_options(&[2, 0], Endian::Little, &mut iface));
        // No end-of-options marker is fine.
        assert!(parse_idb_options(&[], Endian::Little, &mut iface));
    }
}
