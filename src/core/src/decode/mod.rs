//! Link frame → typed observation: a TCP segment or an ICMP/ICMPv6 error quoting one.
//!
//! Pure and allocation-free: it runs once per captured packet, live and in replay. The
//! IP, TCP, UDP and ICMP parsing is etherparse's (lax slicing, so a packet cut by the snap
//! length still yields what it holds); this module only picks out the fields the verdicts
//! need. Checksums are never verified: senders with checksum offload show "incorrect" TCP
//! checksums in captures of their own packets.
//!
//! - this file: the observation types, [`Skip`], IP (fragments), TCP (a header cut after
//!   its 20 fixed bytes) and ICMP errors.
//! - [`encap`]: link headers and the encapsulations Zeek decodes (VLAN, MPLS, 802.1ah PBB,
//!   PPPoE, IP-in-IP, GRE and ERSPAN, VXLAN, Geneve, GTP-U, GRE-in-UDP, Teredo). The
//!   observation reports the innermost TCP or ICMP packet.

mod encap;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;

use etherparse::{IpNumber, LaxIpPayloadSlice, LaxIpSlice};

use crate::frame::{Frame, LinkType};

/// TCP flags, the low byte of the flags field (CWR..FIN). The ninth flag, AccECN's AE
/// (RFC 3540's NS) in the low bit of header byte 12, is [`TcpOpts::ae`]: this type is the
/// one byte the rest of synack builds and compares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
    pub fn syn(self) -> bool {
        self.has(Self::SYN)
    }
    pub fn ack(self) -> bool {
        self.has(Self::ACK)
    }
    pub fn rst(self) -> bool {
        self.has(Self::RST)
    }
    pub fn fin(self) -> bool {
        self.has(Self::FIN)
    }
    /// A connection request: SYN without ACK (RFC 9293 §3.5).
    pub fn is_syn_only(self) -> bool {
        self.syn() && !self.ack() && !self.rst()
    }
    pub fn is_syn_ack(self) -> bool {
        self.syn() && self.ack() && !self.rst()
    }
}

impl TcpFlags {
    /// The flags with AccECN's AE bit: "SYN/ECE/CWR/AE/ACK" when `ae` is set, exactly the
    /// plain [`fmt::Display`] when it is clear.
    pub fn with_ae(self, ae: bool) -> impl fmt::Display {
        WithAe { flags: self, ae }
    }

    fn write(self, ae: bool, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const ORDER: [(u8, &str); 8] = [
            (TcpFlags::SYN, "SYN"),
            (TcpFlags::FIN, "FIN"),
            (TcpFlags::RST, "RST"),
            (TcpFlags::PSH, "PSH"),
            (TcpFlags::URG, "URG"),
            (TcpFlags::ECE, "ECE"),
            (TcpFlags::CWR, "CWR"),
            (TcpFlags::ACK, "ACK"),
        ];
        let mut first = true;
        let mut name = |f: &mut fmt::Formatter<'_>, label: &str| {
            if !first {
                f.write_str("/")?;
            }
            first = false;
            f.write_str(label)
        };
        for (bit, label) in ORDER {
            // AE comes after the other flags, before ACK, which stays last.
            if bit == TcpFlags::ACK && ae {
                name(f, "AE")?;
            }
            if self.has(bit) {
                name(f, label)?;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

impl fmt::Display for TcpFlags {
    /// Wireshark-like names: the defining flag first, ACK last ("SYN/ACK", "RST/ACK",
    /// "FIN/PSH/ACK"); "none" for a segment without flags.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(false, f)
    }
}

struct WithAe {
    flags: TcpFlags,
    ae: bool,
}

impl fmt::Display for WithAe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.flags.write(self.ae, f)
    }
}

/// Network-layer facts about a packet, used as evidence of who sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpMeta {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit, as received.
    pub ttl: u8,
    /// Differentiated Services code point (6 bits).
    pub dscp: u8,
    /// IPv4 identification; None for IPv6.
    pub ip_id: Option<u16>,
    /// IPv6 flow label (20 bits); None for IPv4.
    pub flow_label: Option<u32>,
}

/// The TCP options a SYN or SYN/ACK typically carries, and what else the header holds
/// beyond its fixed fields' classic flags.
///
/// `cut` and `ae` live here rather than as fields of [`TcpSegment`] so that code building a
/// segment with `TcpOpts::default()` keeps compiling; both default to the common case.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOpts {
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_permitted: bool,
    pub timestamps: bool,
    /// The header was captured only up to its 20 fixed bytes: the snap length (`tcpdump -s
    /// 68`, header-only captures) or an IP fragment boundary cut the options. Ports,
    /// sequence and acknowledgment numbers, flags and window are real; the options above
    /// are unknown, not absent.
    pub cut: bool,
    /// AccECN's AE flag (RFC 3540's NS, RFC 9768's AE): the low bit of header byte 12.
    pub ae: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegment {
    pub ip: IpMeta,
    pub sport: u16,
    pub dport: u16,
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub opts: TcpOpts,
    /// TCP payload bytes the IP header declares (so a payload cut by the snap length still
    /// counts whole); for the first fragment of a fragmented datagram, what it carries.
    pub payload_len: u32,
}

/// An ICMP or ICMPv6 error message type and code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IcmpKind {
    pub v6: bool,
    pub icmp_type: u8,
    pub code: u8,
}

impl IcmpKind {
    /// True for the message types that quote the offending packet (RFC 792, RFC 4443 §3).
    fn is_error(v6: bool, icmp_type: u8) -> bool {
        if v6 {
            (1..=4).contains(&icmp_type)
        } else {
            matches!(icmp_type, 3 | 4 | 5 | 11 | 12)
        }
    }

    /// The short name synack (and nmap, where it has one) uses as a reason.
    pub fn name(self) -> &'static str {
        match (self.v6, self.icmp_type, self.code) {
            (false, 3, 0) => "net-unreach",
            (false, 3, 1) => "host-unreach",
            (false, 3, 2) => "proto-unreach",
            (false, 3, 3) => "port-unreach",
            (false, 3, 4) => "frag-needed",
            (false, 3, 5) => "source-route-failed",
            (false, 3, 6) => "net-unknown",
            (false, 3, 7) => "host-unknown",
            (false, 3, 8) => "host-isolated",
            (false, 3, 9) => "net-prohibited",
            (false, 3, 10) => "host-prohibited",
            (false, 3, 11) => "net-tos-unreach",
            (false, 3, 12) => "host-tos-unreach",
            (false, 3, 13) => "admin-prohibited",
            (false, 3, 14) => "host-precedence-violation",
            (false, 3, 15) => "precedence-cutoff",
            (false, 3, _) => "unreach",
            (false, 4, _) => "source-quench",
            (false, 5, _) => "redirect",
            (false, 11, _) => "time-exceeded",
            (false, 12, _) => "param-problem",
            // RFC 4443 §3.1 codes.
            (true, 1, 0) => "net-unreach",
            (true, 1, 1) => "admin-prohibited",
            (true, 1, 2) => "beyond-scope",
            (true, 1, 3) => "host-unreach",
            (true, 1, 4) => "port-unreach",
            (true, 1, 5) => "failed-policy",
            (true, 1, 6) => "reject-route",
            (true, 1, _) => "unreach",
            (true, 2, _) => "packet-too-big",
            (true, 3, _) => "time-exceeded",
            (true, 4, _) => "param-problem",
            _ => "icmp-error",
        }
    }

    /// A port-unreachable (ICMP 3/3, ICMPv6 1/4): what `-j REJECT` sends by default, and
    /// what connect() reports as ECONNREFUSED, as it does a RST.
    pub fn is_port_unreach(self) -> bool {
        matches!(
            (self.v6, self.icmp_type, self.code),
            (false, 3, 3) | (true, 1, 4)
        )
    }

    /// Whether this error ends a connection attempt. RFC 9293 §3.9.2.2 (after RFC 1122
    /// §4.2.3.9) calls most unreachables "soft" errors a TCP should not abort on, but Linux
    /// does abort a SYN_SENT connection on them, and a firewall sending one means "no":
    /// for a scan they decide the port. Frag-needed, packet-too-big, redirects, source
    /// quench and time-exceeded do not say anything about the port.
    pub fn is_decisive(self) -> bool {
        match (self.v6, self.icmp_type, self.code) {
            (false, 3, 4) => false,
            (false, 3, _) => true,
            (true, 1, _) => true,
            _ => false,
        }
    }
}

impl fmt::Display for IcmpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            if self.v6 { "ICMPv6" } else { "ICMP" },
            self.name()
        )
    }
}

/// The TCP segment an ICMP error quotes: enough to find the attempt it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotedTcp {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    /// The quoted sequence number, when the quote is long enough to hold it.
    pub seq: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpError {
    /// The ICMP packet's own IP header: `src` is the host that sent the error.
    pub ip: IpMeta,
    pub kind: IcmpKind,
    pub quoted: QuotedTcp,
}

/// An ICMP query of host discovery, or its reply (RFC 792; RFC 4443 §4 for echo over
/// IPv6). Not part of any port's exchange: the live scan shows them in a host's
/// discovery ladder, replay passes over them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PingKind {
    EchoRequest,
    EchoReply,
    TimestampRequest,
    TimestampReply,
}

impl PingKind {
    fn of(v6: bool, icmp_type: u8) -> Option<PingKind> {
        Some(match (v6, icmp_type) {
            (false, 8) | (true, 128) => PingKind::EchoRequest,
            (false, 0) | (true, 129) => PingKind::EchoReply,
            (false, 13) => PingKind::TimestampRequest,
            (false, 14) => PingKind::TimestampReply,
            _ => return None,
        })
    }

    /// nmap's words: "echo-reply" is also its reason for a host up.
    pub fn name(self) -> &'static str {
        match self {
            PingKind::EchoRequest => "echo-request",
            PingKind::EchoReply => "echo-reply",
            PingKind::TimestampRequest => "timestamp-request",
            PingKind::TimestampReply => "timestamp-reply",
        }
    }

    pub fn is_reply(self) -> bool {
        matches!(self, PingKind::EchoReply | PingKind::TimestampReply)
    }
}

impl fmt::Display for PingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ping {
    pub ip: IpMeta,
    pub kind: PingKind,
    pub ident: u16,
    pub seq: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observation {
    Tcp(TcpSegment),
    Icmp(IcmpError),
    /// An echo or timestamp request or reply (host discovery).
    Ping(Ping),
}

/// Why a frame yields no observation. Counted, never fatal: captures hold all sorts.
///
/// Two kinds are silent — replay does not mention them, since every capture of real
/// traffic holds them: [`Skip::NotIp`] and [`Skip::OtherProtocol`]. Every other kind is
/// a packet that may have been part of a TCP exchange and could not be read, and replay
/// counts it in a warning with [`Skip::describe`]'s words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Skip {
    /// Silent. Not IPv4 or IPv6 (ARP, LLDP, PPP control, an unknown EtherType inside a
    /// tunnel, …), or the link header is cut short.
    NotIp,
    /// The IP header is malformed or cut short (a header length that lies, say).
    BadIp,
    /// Silent. IP, but neither TCP nor an ICMP error about TCP: UDP (not a known tunnel),
    /// echo, neighbour discovery, an ICMP error quoting a UDP datagram, a later fragment
    /// of a UDP or ICMP datagram, …
    OtherProtocol,
    /// A later fragment (offset > 0) of a fragmented TCP (or tunnel) datagram: its TCP
    /// header is in the first fragment, and synack does not reassemble.
    Fragment,
    /// The first fragment of a TCP datagram holds fewer than the 20 fixed bytes of the
    /// TCP header (the rest is in the next fragment): RFC 1858's tiny fragment.
    FragmentSplitHeader,
    /// TCP or ICMP header cut short (the snap length cut the TCP header inside its 20
    /// fixed bytes, or a data offset below 5 words).
    Truncated,
    /// An ICMP error whose quote is not a readable IP packet with a TCP header start.
    IcmpQuoteNotTcp,
    /// An encapsulation header that cannot be read (cut short, an unknown version).
    Encap(Encap),
    /// More than [`MAX_NESTING`] nested encapsulations: a hostile or broken frame.
    TooDeep,
}

/// The encapsulations [`Skip::Encap`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encap {
    Mpls,
    Pbb,
    Pppoe,
    Gre,
    Erspan,
    Vxlan,
    Geneve,
    GtpU,
}

/// How many encapsulations one frame may nest (a tunnel inside a tunnel …). Zeek's
/// default `Tunnel::max_depth` is 2; real stacks (PPPoE over VLAN, VXLAN over GRE over
/// MPLS) stay well below 8, and the bound keeps a hostile frame from costing more.
pub const MAX_NESTING: u8 = 8;

impl Skip {
    pub fn describe(self) -> &'static str {
        match self {
            Skip::NotIp => "not IPv4/IPv6",
            Skip::BadIp => "malformed IP header",
            Skip::OtherProtocol => "not TCP or an ICMP error",
            Skip::Fragment => "non-first IP fragment of a TCP or tunnel datagram, not reassembled",
            Skip::FragmentSplitHeader => "TCP header split across IP fragments, not reassembled",
            Skip::Truncated => "TCP/ICMP header cut short",
            Skip::IcmpQuoteNotTcp => "ICMP error quoting an unreadable packet",
            Skip::Encap(Encap::Mpls) => "MPLS label stack cut short or not carrying IP",
            Skip::Encap(Encap::Pbb) => "802.1ah PBB header cut short",
            Skip::Encap(Encap::Pppoe) => "PPPoE session header cut short or of an unknown version",
            Skip::Encap(Encap::Gre) => "GRE header cut short or of an unsupported version",
            Skip::Encap(Encap::Erspan) => "ERSPAN header cut short or of an unknown version",
            Skip::Encap(Encap::Vxlan) => "VXLAN header cut short",
            Skip::Encap(Encap::Geneve) => "Geneve header cut short or of an unknown version",
            Skip::Encap(Encap::GtpU) => "GTP-U header cut short or carrying no IP packet",
            Skip::TooDeep => "more than 8 nested encapsulations",
        }
    }

    /// Whether replay stays silent about this kind (see [`Skip`]).
    pub fn is_silent(self) -> bool {
        matches!(self, Skip::NotIp | Skip::OtherProtocol)
    }
}

/// Decodes one frame. Never panics, whatever the bytes.
///
/// The link header and any encapsulations are stepped over ([`encap`]), then etherparse's
/// lax IP slicer and its TCP / ICMP slicers read the innermost headers. (Its all-layers
/// `LaxSlicedPacket` would do part of this but moves a large struct through every layer
/// and knows no tunnels; this is the per-packet hot path of replay.)
pub fn decode(frame: &Frame<'_>) -> Result<Observation, Skip> {
    if let Some(obs) = plain_ipv4_tcp(frame.link, frame.data) {
        return Ok(obs);
    }
    encap::decode_link(frame.link, frame.data)
}

/// The common case read straight from the bytes: an untagged Ethernet (or raw) frame
/// holding an unfragmented IPv4 packet with a 20-byte header and a whole TCP header — a
/// scan's every SYN and RST. Anything else (VLAN tags, IP options, fragments, a cut or
/// inconsistent length, IPv6, tunnels, ICMP) returns None and takes the general walk
/// through etherparse, which gives the same observation for these frames too (property
/// test `fast_path_agrees_with_the_walk`). A 131k-packet replay spent a sixth of its
/// instructions in that walk.
fn plain_ipv4_tcp(link: LinkType, data: &[u8]) -> Option<Observation> {
    const ETHERNET_LEN: usize = 14;
    const IPV4_LEN: usize = 20;
    let ip = match link {
        LinkType::Ethernet if data.get(12..ETHERNET_LEN)? == [0x08, 0x00] => &data[ETHERNET_LEN..],
        LinkType::RawIp | LinkType::Ipv4 => data,
        _ => return None,
    };
    let h = ip.get(..IPV4_LEN)?;
    // Version 4, IHL 5; protocol TCP; neither more fragments nor an offset (DF may be set).
    if h[0] != 0x45 || h[9] != 6 || u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    // The packet the header declares is all there (Ethernet padding may follow it).
    let t = ip.get(IPV4_LEN..total)?;
    let fixed = t.get(..field::TCP_FIXED_LEN)?;
    let header_len = usize::from(fixed[field::TCP_DATA_OFFSET_AE] >> 4) * 4;
    if header_len < field::TCP_FIXED_LEN || header_len > t.len() {
        return None;
    }
    let flags = TcpFlags(fixed[field::TCP_FLAGS]);
    let opts = if flags.syn() {
        tcp_opts(&t[field::TCP_FIXED_LEN..header_len])
    } else {
        TcpOpts::default()
    };
    let addr = |i: usize| IpAddr::V4(std::net::Ipv4Addr::new(h[i], h[i + 1], h[i + 2], h[i + 3]));
    Some(Observation::Tcp(TcpSegment {
        ip: IpMeta {
            src: addr(12),
            dst: addr(16),
            ttl: h[8],
            dscp: h[1] >> 2,
            ip_id: Some(u16::from_be_bytes([h[4], h[5]])),
            flow_label: None,
        },
        sport: be16(fixed, field::TCP_SRC_PORT)?,
        dport: be16(fixed, field::TCP_DST_PORT)?,
        flags,
        seq: be32(fixed, field::TCP_SEQ)?,
        ack: be32(fixed, field::TCP_ACK)?,
        window: be16(fixed, field::TCP_WINDOW)?,
        opts: TcpOpts {
            ae: fixed[field::TCP_DATA_OFFSET_AE] & 1 != 0,
            ..opts
        },
        payload_len: (t.len() - header_len) as u32,
    }))
}

/// Byte positions in the few headers read by hand (smoltcp's `mod field` style): the
/// start of a TCP header, which an ICMP error may quote with only 8 bytes and the snap
/// length may cut after 20 (both too short for etherparse's TCP slicer, which wants the
/// options too). The link and tunnel headers etherparse has no type for are in
/// `encap::field`.
mod field {
    pub type Field = core::ops::Range<usize>;
    /// TCP header (RFC 9293 §3.1): ports, sequence and acknowledgment numbers, the data
    /// offset (high nibble of byte 12, in 32-bit words), AE (low bit of byte 12, RFC 3540
    /// / RFC 9768), the byte of the eight classic flags (CWR … FIN), the window.
    pub const TCP_SRC_PORT: Field = 0..2;
    pub const TCP_DST_PORT: Field = 2..4;
    pub const TCP_SEQ: Field = 4..8;
    pub const TCP_ACK: Field = 8..12;
    pub const TCP_DATA_OFFSET_AE: usize = 12;
    pub const TCP_FLAGS: usize = 13;
    pub const TCP_WINDOW: Field = 14..16;
    /// The fixed part of the TCP header, without options.
    pub const TCP_FIXED_LEN: usize = 20;
}

/// A big-endian u16 at `f`, if the bytes are there.
fn be16(data: &[u8], f: field::Field) -> Option<u16> {
    let b = data.get(f)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// A big-endian u32 at `f`, if the bytes are there.
fn be32(data: &[u8], f: field::Field) -> Option<u32> {
    let b = data.get(f)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn ip_meta(ip: &LaxIpSlice<'_>) -> IpMeta {
    match ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            IpMeta {
                src: IpAddr::V4(h.source_addr()),
                dst: IpAddr::V4(h.destination_addr()),
                ttl: h.ttl(),
                dscp: h.dcp().value(),
                ip_id: Some(h.identification()),
                flow_label: None,
            }
        }
        LaxIpSlice::Ipv6(v6) => {
            let h = v6.header();
            IpMeta {
                src: IpAddr::V6(h.source_addr()),
                dst: IpAddr::V6(h.destination_addr()),
                ttl: h.hop_limit(),
                dscp: h.dscp().value(),
                ip_id: None,
                flow_label: Some(h.flow_label().value()),
            }
        }
    }
}

/// The fragment offset (in 8-byte units) of a fragmented datagram: IPv4's header field,
/// or IPv6's fragment extension header (RFC 8200 §4.5).
fn fragment_offset(ip: &LaxIpSlice<'_>) -> u16 {
    match ip {
        LaxIpSlice::Ipv4(v4) => v4.header().fragments_offset().value(),
        LaxIpSlice::Ipv6(v6) => v6
            .extensions()
            .clone()
            .into_iter()
            .find_map(|ext| match ext {
                etherparse::Ipv6ExtensionSlice::Fragment(f) => Some(f.fragment_offset().value()),
                _ => None,
            })
            .unwrap_or(0),
    }
}

/// The payload length the IP header declares (total length minus headers), for a packet
/// cut by the snap length; `None` when the header gives none (IPv4 total length 0 under
/// TSO, an IPv6 jumbogram).
fn declared_payload_len(ip: &LaxIpSlice<'_>) -> Option<usize> {
    match ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            usize::from(h.total_len()).checked_sub(usize::from(h.ihl()) * 4)
        }
        LaxIpSlice::Ipv6(v6) => {
            let len = usize::from(v6.header().payload_length());
            (len != 0)
                .then(|| len.checked_sub(v6.extensions().slice().len()))
                .flatten()
        }
    }
}

/// What an IP packet holds: an observation, or a packet inside it (a tunnel).
enum IpContent<'a> {
    Done(Observation),
    Inner(encap::Layer<'a>),
}

fn decode_ip(bytes: &[u8]) -> Result<IpContent<'_>, Skip> {
    // A header that cannot be read (a length that lies, a wrong version) is a damaged
    // IP packet: reported, unlike frames that are simply not IP.
    let (ip, _) = LaxIpSlice::from_slice(bytes).map_err(|_| Skip::BadIp)?;
    let payload = ip.payload();
    let proto = payload.ip_number;
    if payload.fragmented && fragment_offset(&ip) != 0 {
        // A later fragment: its transport header is in the first fragment (RFC 791
        // §3.2), and synack does not reassemble. Worth a word only where it may have
        // carried TCP: ICMP errors are never fragmented (at most 576 bytes, RFC 1812
        // §4.3.2.3; 1280 for ICMPv6, RFC 4443 §2.4), so a later ICMP fragment is an
        // echo's, and a later UDP fragment is nothing synack reads.
        return Err(match proto {
            IpNumber::TCP | IpNumber::IPV4 | IpNumber::IPV6 | IpNumber::GRE => Skip::Fragment,
            _ => Skip::OtherProtocol,
        });
    }
    let data = payload.payload;
    match proto {
        IpNumber::TCP => tcp(ip_meta(&ip), payload, declared_payload_len(&ip)).map(IpContent::Done),
        IpNumber::ICMP => {
            let icmp = etherparse::Icmpv4Slice::from_slice(data).map_err(|_| Skip::Truncated)?;
            icmp_message(
                ip_meta(&ip),
                false,
                icmp.type_u8(),
                icmp.code_u8(),
                icmp.slice(),
                icmp.payload(),
            )
            .map(IpContent::Done)
        }
        IpNumber::IPV6_ICMP => {
            let icmp = etherparse::Icmpv6Slice::from_slice(data).map_err(|_| Skip::Truncated)?;
            icmp_message(
                ip_meta(&ip),
                true,
                icmp.type_u8(),
                icmp.code_u8(),
                icmp.slice(),
                icmp.payload(),
            )
            .map(IpContent::Done)
        }
        // IP-in-IP (RFC 2003), 6in4 and 4in6 (RFC 4213): the payload is the inner packet.
        IpNumber::IPV4 | IpNumber::IPV6 => Ok(IpContent::Inner(encap::Layer::Ip(data))),
        IpNumber::GRE => encap::gre(data).map(IpContent::Inner),
        IpNumber::UDP => encap::udp(data).map(IpContent::Inner),
        _ => Err(Skip::OtherProtocol),
    }
}

fn tcp(
    ip: IpMeta,
    payload: &LaxIpPayloadSlice<'_>,
    declared: Option<usize>,
) -> Result<Observation, Skip> {
    let data = payload.payload;
    // The payload length: what the IP header declares when the snap length cut the
    // packet, what is there otherwise.
    let payload_len = |header_len: usize, captured: usize| -> u32 {
        let len = match declared {
            Some(d) if payload.incomplete => d.saturating_sub(header_len),
            _ => captured,
        };
        u32::try_from(len).unwrap_or(u32::MAX)
    };
    if let Ok(tcp) = etherparse::TcpSlice::from_slice(data) {
        let header = tcp.slice();
        let opts = if tcp.syn() {
            // Options matter on the handshake's SYN and SYN/ACK; skip the walk otherwise.
            tcp_opts(tcp.options())
        } else {
            TcpOpts::default()
        };
        return Ok(Observation::Tcp(TcpSegment {
            ip,
            sport: tcp.source_port(),
            dport: tcp.destination_port(),
            flags: TcpFlags(header[field::TCP_FLAGS]),
            seq: tcp.sequence_number(),
            ack: tcp.acknowledgment_number(),
            window: tcp.window_size(),
            opts: TcpOpts {
                ae: header[field::TCP_DATA_OFFSET_AE] & 1 != 0,
                ..opts
            },
            payload_len: payload_len(usize::from(tcp.data_offset()) * 4, tcp.payload().len()),
        }));
    }
    // etherparse wants the whole header, options included. When only the 20 fixed bytes
    // are there (the snap length or a fragment boundary cut the options), read them by
    // hand: ports, numbers and flags are what the verdicts need.
    let Some(fixed) = data.get(..field::TCP_FIXED_LEN) else {
        // Fewer than 20 bytes. In a first fragment, the rest of the header is in the next
        // one (RFC 1858 §3.1's tiny fragment); otherwise the capture cut it.
        return Err(if payload.fragmented {
            Skip::FragmentSplitHeader
        } else {
            Skip::Truncated
        });
    };
    let offset_ae = fixed[field::TCP_DATA_OFFSET_AE];
    let header_len = usize::from(offset_ae >> 4) * 4;
    if header_len < field::TCP_FIXED_LEN {
        // A data offset below 5 words: no TCP stack sends this (RFC 9293 §3.1).
        return Err(Skip::Truncated);
    }
    let (Some(sport), Some(dport), Some(seq), Some(ack), Some(window)) = (
        be16(fixed, field::TCP_SRC_PORT),
        be16(fixed, field::TCP_DST_PORT),
        be32(fixed, field::TCP_SEQ),
        be32(fixed, field::TCP_ACK),
        be16(fixed, field::TCP_WINDOW),
    ) else {
        return Err(Skip::Truncated);
    };
    Ok(Observation::Tcp(TcpSegment {
        ip,
        sport,
        dport,
        flags: TcpFlags(fixed[field::TCP_FLAGS]),
        seq,
        ack,
        window,
        opts: TcpOpts {
            cut: true,
            ae: offset_ae & 1 != 0,
            ..TcpOpts::default()
        },
        payload_len: payload_len(header_len, data.len().saturating_sub(header_len)),
    }))
}

/// The options of a SYN or SYN/ACK, read by hand with etherparse's `TcpOptionsIterator`
/// rules (property test `options_agree_with_etherparse`): stop at the end-of-list, at an
/// unknown kind or at a length that is not the kind's. The iterator's walk cost a full
/// scan's replay 360 instructions per SYN; this loop a tenth of that.
fn tcp_opts(mut options: &[u8]) -> TcpOpts {
    const END: u8 = 0;
    const NOP: u8 = 1;
    const MSS: u8 = 2;
    const WSCALE: u8 = 3;
    const SACK_PERMITTED: u8 = 4;
    const SACK: u8 = 5;
    const TIMESTAMPS: u8 = 8;
    let mut out = TcpOpts::default();
    while let Some(&kind) = options.first() {
        let fixed =
            |len: usize| (options.len() >= len && usize::from(options[1]) == len).then_some(len);
        let len = match kind {
            END => None,
            NOP => Some(1),
            MSS => fixed(4),
            WSCALE => fixed(3),
            SACK_PERMITTED => fixed(2),
            TIMESTAMPS => fixed(10),
            SACK => options
                .get(1)
                .map(|&l| usize::from(l))
                .filter(|&l| matches!(l, 10 | 18 | 26 | 34) && options.len() >= l),
            _ => None,
        };
        let Some(len) = len else { break };
        match kind {
            MSS => out.mss = Some(u16::from_be_bytes([options[2], options[3]])),
            WSCALE => out.wscale = Some(options[2]),
            SACK_PERMITTED => out.sack_permitted = true,
            TIMESTAMPS => out.timestamps = true,
            _ => {}
        }
        options = &options[len..];
    }
    out
}

/// An ICMP message: an error about a TCP segment, or an echo or timestamp message
/// (`raw`: the whole ICMP message; `quote`: what follows its 8-byte header).
fn icmp_message(
    ip: IpMeta,
    v6: bool,
    icmp_type: u8,
    code: u8,
    raw: &[u8],
    quote: &[u8],
) -> Result<Observation, Skip> {
    if !IcmpKind::is_error(v6, icmp_type) {
        // An echo or timestamp message: identifier and sequence number follow the
        // checksum (RFC 792, bytes 4 to 7 of the ICMP header).
        let (Some(kind), Some(ident), Some(seq)) =
            (PingKind::of(v6, icmp_type), raw.get(4..6), raw.get(6..8))
        else {
            return Err(Skip::OtherProtocol);
        };
        return Ok(Observation::Ping(Ping {
            ip,
            kind,
            ident: u16::from_be_bytes([ident[0], ident[1]]),
            seq: u16::from_be_bytes([seq[0], seq[1]]),
        }));
    }
    let (inner, _) = LaxIpSlice::from_slice(quote).map_err(|_| Skip::IcmpQuoteNotTcp)?;
    let inner_ip = ip_meta(&inner);
    let inner_payload = inner.payload();
    if inner_payload.ip_number != IpNumber::TCP {
        // An error about a UDP datagram, an echo, …: not about TCP, so not synack's.
        return Err(Skip::OtherProtocol);
    }
    if inner_payload.fragmented && fragment_offset(&inner) != 0 {
        // The quote of a later fragment holds no TCP header.
        return Err(Skip::IcmpQuoteNotTcp);
    }
    // RFC 792 guarantees only the first 8 bytes of the offending datagram's payload, which
    // is shorter than a TCP header, so etherparse's TCP slicer cannot be used here: read
    // the ports and the sequence number from those 8 bytes directly.
    let t = inner_payload.payload;
    let (Some(sport), Some(dport)) = (be16(t, field::TCP_SRC_PORT), be16(t, field::TCP_DST_PORT))
    else {
        return Err(Skip::IcmpQuoteNotTcp);
    };
    let seq = be32(t, field::TCP_SEQ);
    Ok(Observation::Icmp(IcmpError {
        ip,
        kind: IcmpKind {
            v6,
            icmp_type,
            code,
        },
        quoted: QuotedTcp {
            src: inner_ip.src,
            dst: inner_ip.dst,
            sport,
            dport,
            seq,
        },
    }))
}
