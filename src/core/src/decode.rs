//! Link frame → typed observation: a TCP segment or an ICMP/ICMPv6 error quoting one.
//!
//! Pure and allocation-free: it runs once per captured packet, live and in replay. The
//! parsing itself is etherparse's (lax slicing, so a packet cut by the snap length still
//! yields what it holds); this module only picks out the fields the verdicts need.
//! Checksums are never verified: senders with checksum offload show "incorrect" TCP
//! checksums in captures of their own packets.

use std::fmt;
use std::net::IpAddr;

use etherparse::{EtherType, LaxIpSlice, LaxSlicedPacket};

use crate::frame::{Frame, LinkType};

/// TCP flags, the low byte of the flags field (CWR..FIN).
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

impl fmt::Display for TcpFlags {
    /// Wireshark-like names: the defining flag first, ACK last ("SYN/ACK", "RST/ACK",
    /// "FIN/PSH/ACK"); "none" for a segment without flags.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
        for (bit, name) in ORDER {
            if self.has(bit) {
                if !first {
                    f.write_str("/")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
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

/// The TCP options a SYN or SYN/ACK typically carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOpts {
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_permitted: bool,
    pub timestamps: bool,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observation {
    Tcp(TcpSegment),
    Icmp(IcmpError),
}

/// Why a frame yields no observation. Counted, never fatal: captures hold all sorts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Skip {
    /// Not IPv4 or IPv6 (ARP, LLDP, …), or the link header is cut short.
    NotIp,
    /// The IP header is malformed or cut short (a header length that lies, say).
    BadIp,
    /// IP, but neither TCP nor an ICMP error (UDP, echo, neighbour discovery, …).
    OtherProtocol,
    /// A later fragment of a fragmented datagram: no transport header to read.
    Fragment,
    /// TCP or ICMP header cut short.
    Truncated,
    /// An ICMP error whose quote is not a readable TCP header.
    IcmpQuoteNotTcp,
}

impl Skip {
    pub fn describe(self) -> &'static str {
        match self {
            Skip::NotIp => "not IPv4/IPv6",
            Skip::BadIp => "malformed IP header",
            Skip::OtherProtocol => "not TCP or an ICMP error",
            Skip::Fragment => "non-first IP fragment",
            Skip::Truncated => "TCP/ICMP header cut short",
            Skip::IcmpQuoteNotTcp => "ICMP error quoting no TCP header",
        }
    }
}

/// Decodes one frame. Never panics, whatever the bytes.
///
/// The link header is stepped over, then etherparse's lax IP slicer and its TCP / ICMP
/// slicers read the headers. (Its all-layers `LaxSlicedPacket` would do the same but
/// moves a large struct through every layer; this is the per-packet hot path of replay.)
pub fn decode(frame: &Frame<'_>) -> Result<Observation, Skip> {
    let ip = ip_bytes(frame.link, frame.data)?;
    decode_ip(ip)
}

/// Byte positions in the few headers read by hand (smoltcp's `mod field` style): the
/// fixed link headers etherparse has no type for, and the start of a TCP header, which an
/// ICMP error may quote with only 8 bytes (too short for etherparse's TCP slicer).
mod field {
    pub type Field = core::ops::Range<usize>;
    /// Linux cooked v1 (LINKTYPE_LINUX_SLL): 16 bytes, the protocol (an EtherType) last.
    pub const SLL_PROTOCOL: Field = 14..16;
    pub const SLL_LEN: usize = 16;
    /// Linux cooked v2 (LINKTYPE_LINUX_SLL2): 20 bytes, the protocol first.
    pub const SLL2_PROTOCOL: Field = 0..2;
    pub const SLL2_LEN: usize = 20;
    /// BSD loopback (LINKTYPE_NULL / LOOP): a 4-byte address family.
    pub const NULL_LEN: usize = 4;
    /// TCP header (RFC 9293 §3.1): ports, sequence number, and the byte of the eight
    /// classic flags (CWR … FIN).
    pub const TCP_SRC_PORT: Field = 0..2;
    pub const TCP_DST_PORT: Field = 2..4;
    pub const TCP_SEQ: Field = 4..8;
    pub const TCP_FLAGS: usize = 13;
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

/// The bytes from the IP header on, for each link type.
fn ip_bytes(link: LinkType, data: &[u8]) -> Result<&[u8], Skip> {
    let (ether, rest) = match link {
        LinkType::Ethernet => {
            let eth = etherparse::Ethernet2Slice::from_slice_without_fcs(data)
                .map_err(|_| Skip::NotIp)?;
            let ether = eth.ether_type();
            if matches!(
                ether,
                EtherType::VLAN_TAGGED_FRAME
                    | EtherType::PROVIDER_BRIDGING
                    | EtherType::VLAN_DOUBLE_TAGGED_FRAME
            ) {
                return vlan_ip_bytes(data);
            }
            (ether, eth.payload_slice())
        }
        LinkType::RawIp | LinkType::Ipv4 | LinkType::Ipv6 => return Ok(data),
        // Linux cooked v1: 16-byte header, protocol (an EtherType) in its last two bytes.
        LinkType::LinuxSll => {
            let proto = be16(data, field::SLL_PROTOCOL).ok_or(Skip::NotIp)?;
            (EtherType(proto), &data[field::SLL_LEN..])
        }
        // Linux cooked v2: 20-byte header, protocol in its first two bytes. etherparse has
        // no SLL2 type, so the fixed header is stepped over here.
        LinkType::LinuxSll2 => {
            if data.len() < field::SLL2_LEN {
                return Err(Skip::NotIp);
            }
            let proto = be16(data, field::SLL2_PROTOCOL).ok_or(Skip::NotIp)?;
            (EtherType(proto), &data[field::SLL2_LEN..])
        }
        // BSD loopback: a 4-byte address family in the capturing host's byte order (NULL)
        // or in network order (LOOP). AF_INET is 2 everywhere; AF_INET6 is 24, 28 or 30
        // depending on the BSD. Either way the IP version nibble decides.
        LinkType::Null | LinkType::Loop => {
            return data.get(field::NULL_LEN..).ok_or(Skip::NotIp);
        }
    };
    match ether {
        EtherType::IPV4 | EtherType::IPV6 => Ok(rest),
        _ => Err(Skip::NotIp),
    }
}

/// VLAN-tagged Ethernet (rare in scan captures): etherparse's full slicer walks the tags.
fn vlan_ip_bytes(data: &[u8]) -> Result<&[u8], Skip> {
    let packet = LaxSlicedPacket::from_ethernet(data).map_err(|_| Skip::NotIp)?;
    let payload = packet.ether_payload().ok_or(Skip::NotIp)?;
    match payload.ether_type {
        EtherType::IPV4 | EtherType::IPV6 => Ok(payload.payload),
        _ => Err(Skip::NotIp),
    }
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

fn decode_ip(bytes: &[u8]) -> Result<Observation, Skip> {
    // A header that cannot be read (a length that lies, a wrong version) is a damaged
    // IP packet: reported, unlike frames that are simply not IP.
    let (ip, _) = LaxIpSlice::from_slice(bytes).map_err(|_| Skip::BadIp)?;
    let meta = ip_meta(&ip);
    let payload = ip.payload();
    if payload.fragmented {
        // Only the first fragment carries the transport header; a non-first one has
        // a nonzero offset, and the first is rare enough to skip too.
        return Err(Skip::Fragment);
    }
    let data = payload.payload;
    match payload.ip_number {
        etherparse::IpNumber::TCP => {
            let tcp = etherparse::TcpSlice::from_slice(data).map_err(|_| Skip::Truncated)?;
            Ok(Observation::Tcp(TcpSegment {
                ip: meta,
                sport: tcp.source_port(),
                dport: tcp.destination_port(),
                flags: TcpFlags(tcp.slice()[field::TCP_FLAGS]),
                seq: tcp.sequence_number(),
                ack: tcp.acknowledgment_number(),
                window: tcp.window_size(),
                // Options matter on the handshake's SYN and SYN/ACK; skip the walk
                // otherwise.
                opts: if tcp.syn() {
                    tcp_opts(tcp.options())
                } else {
                    TcpOpts::default()
                },
                payload_len: tcp.payload().len() as u32,
            }))
        }
        etherparse::IpNumber::ICMP => {
            let icmp = etherparse::Icmpv4Slice::from_slice(data).map_err(|_| Skip::Truncated)?;
            icmp_error(meta, false, icmp.type_u8(), icmp.code_u8(), icmp.payload())
        }
        etherparse::IpNumber::IPV6_ICMP => {
            let icmp = etherparse::Icmpv6Slice::from_slice(data).map_err(|_| Skip::Truncated)?;
            icmp_error(meta, true, icmp.type_u8(), icmp.code_u8(), icmp.payload())
        }
        _ => Err(Skip::OtherProtocol),
    }
}

fn tcp_opts(options: &[u8]) -> TcpOpts {
    use etherparse::TcpOptionElement as O;
    let mut out = TcpOpts::default();
    for opt in etherparse::TcpOptionsIterator::from_slice(options) {
        match opt {
            Ok(O::MaximumSegmentSize(mss)) => out.mss = Some(mss),
            Ok(O::WindowScale(ws)) => out.wscale = Some(ws),
            Ok(O::SelectiveAcknowledgementPermitted) => out.sack_permitted = true,
            Ok(O::Timestamp(_, _)) => out.timestamps = true,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    out
}

fn icmp_error(
    ip: IpMeta,
    v6: bool,
    icmp_type: u8,
    code: u8,
    quote: &[u8],
) -> Result<Observation, Skip> {
    if !IcmpKind::is_error(v6, icmp_type) {
        return Err(Skip::OtherProtocol);
    }
    let (inner, _) = LaxIpSlice::from_slice(quote).map_err(|_| Skip::IcmpQuoteNotTcp)?;
    let inner_ip = ip_meta(&inner);
    let inner_payload = inner.payload();
    if inner_payload.ip_number != etherparse::IpNumber::TCP || inner_payload.fragmented {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Timestamp;
    use crate::testpkt::*;

    fn frame(link: LinkType, data: &[u8]) -> Frame<'_> {
        Frame {
            ts: Timestamp(0),
            link,
            data,
            orig_len: data.len() as u32,
        }
    }

    #[test]
    fn syn_ack_over_ethernet() {
        let bytes = tcp_v4(
            [198, 18, 2, 1],
            [198, 18, 1, 1],
            TcpSpec::new(22, 40000, TcpFlags::SYN | TcpFlags::ACK)
                .seq(1000)
                .ack(2001),
        )
        .ttl(63)
        .tos(0x28)
        .ethernet();
        let obs = decode(&frame(LinkType::Ethernet, &bytes)).unwrap();
        let Observation::Tcp(seg) = obs else {
            panic!("not tcp: {obs:?}")
        };
        assert_eq!(seg.sport, 22);
        assert_eq!(seg.dport, 40000);
        assert!(seg.flags.is_syn_ack());
        assert_eq!(seg.flags.to_string(), "SYN/ACK");
        assert_eq!((seg.seq, seg.ack), (1000, 2001));
        assert_eq!(seg.ip.ttl, 63);
        assert_eq!(seg.ip.dscp, 10, "TOS 0x28 is DSCP AF11 (10)");
        assert_eq!(seg.ip.src, "198.18.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(seg.opts.mss, Some(1460));
    }

    #[test]
    fn rst_over_ipv6_has_flow_label() {
        let bytes = tcp_v6(
            "2001:db8:2::1",
            "2001:db8:1::1",
            TcpSpec::new(81, 40000, TcpFlags::RST | TcpFlags::ACK),
        )
        .flow_label(0x12345)
        .raw();
        let Observation::Tcp(seg) = decode(&frame(LinkType::RawIp, &bytes)).unwrap() else {
            panic!()
        };
        assert_eq!(seg.flags.to_string(), "RST/ACK");
        assert_eq!(seg.ip.flow_label, Some(0x12345));
        assert_eq!(seg.ip.ip_id, None);
    }

    #[test]
    fn icmp_port_unreach_quotes_the_syn() {
        let syn = tcp_v4(
            [198, 18, 1, 1],
            [198, 18, 2, 1],
            TcpSpec::new(40000, 84, TcpFlags::SYN).seq(77),
        )
        .raw();
        let bytes = icmp_v4([198, 18, 2, 1], [198, 18, 1, 1], 3, 3, &syn[..28]).ethernet();
        let Observation::Icmp(err) = decode(&frame(LinkType::Ethernet, &bytes)).unwrap() else {
            panic!()
        };
        assert_eq!(err.kind.name(), "port-unreach");
        assert!(err.kind.is_decisive());
        assert_eq!(err.quoted.sport, 40000);
        assert_eq!(err.quoted.dport, 84);
        assert_eq!(err.quoted.seq, Some(77));
        assert_eq!(err.ip.src, "198.18.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn icmpv6_admin_prohibited() {
        let syn = tcp_v6(
            "2001:db8:1::1",
            "2001:db8:2::1",
            TcpSpec::new(40000, 88, TcpFlags::SYN),
        )
        .raw();
        let bytes = icmp_v6("2001:db8:1::fe", "2001:db8:1::1", 1, 1, &syn).raw();
        let Observation::Icmp(err) = decode(&frame(LinkType::RawIp, &bytes)).unwrap() else {
            panic!()
        };
        assert_eq!(err.kind.to_string(), "ICMPv6 admin-prohibited");
        assert_eq!(err.quoted.dport, 88);
    }

    #[test]
    fn cooked_captures_and_bsd_loopback() {
        let ip = tcp_v4(
            [127, 0, 0, 1],
            [127, 0, 0, 1],
            TcpSpec::new(5000, 6000, TcpFlags::SYN),
        )
        .raw();
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&ip);
        let mut sll2 = vec![0x08, 0x00];
        sll2.extend_from_slice(&[0u8; 18]);
        sll2.extend_from_slice(&ip);
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(&ip);
        for (link, bytes) in [
            (LinkType::LinuxSll, &sll),
            (LinkType::LinuxSll2, &sll2),
            (LinkType::Null, &null),
        ] {
            let obs = decode(&frame(link, bytes)).unwrap_or_else(|e| panic!("{link:?}: {e:?}"));
            assert!(
                matches!(obs, Observation::Tcp(s) if s.sport == 5000),
                "{link:?}"
            );
        }
    }

    #[test]
    fn truncated_and_lying_packets_are_skipped() {
        let bytes = tcp_v4(
            [198, 18, 2, 1],
            [198, 18, 1, 1],
            TcpSpec::new(1, 2, TcpFlags::SYN),
        )
        .ethernet();
        // Cut inside the TCP header.
        assert_eq!(
            decode(&frame(LinkType::Ethernet, &bytes[..14 + 20 + 10])),
            Err(Skip::Truncated)
        );
        // Cut inside the IP header.
        assert!(decode(&frame(LinkType::Ethernet, &bytes[..14 + 10])).is_err());
        // An IHL of 15 words (60 bytes) on a 40-byte packet.
        let mut lying = bytes.clone();
        lying[14] = 0x4f;
        assert!(decode(&frame(LinkType::Ethernet, &lying)).is_err());
        // IHL below the minimum: a damaged IP packet, not "not IP".
        lying[14] = 0x42;
        assert_eq!(decode(&frame(LinkType::Ethernet, &lying)), Err(Skip::BadIp));
        assert_eq!(
            decode(&frame(LinkType::LinuxSll2, &[0; 5])),
            Err(Skip::NotIp)
        );
        assert!(decode(&frame(LinkType::RawIp, &[])).is_err());
    }

    #[test]
    fn icmp_quoting_garbage_is_skipped() {
        let bytes = icmp_v4([198, 18, 2, 1], [198, 18, 1, 1], 3, 3, &[0x45, 0, 1]).raw();
        assert_eq!(
            decode(&frame(LinkType::RawIp, &bytes)),
            Err(Skip::IcmpQuoteNotTcp)
        );
        let echo = icmp_v4([198, 18, 2, 1], [198, 18, 1, 1], 0, 0, &[1, 2, 3, 4]).raw();
        assert_eq!(
            decode(&frame(LinkType::RawIp, &echo)),
            Err(Skip::OtherProtocol)
        );
    }

    #[test]
    fn flag_names() {
        assert_eq!(TcpFlags(TcpFlags::SYN).to_string(), "SYN");
        assert_eq!(
            TcpFlags(TcpFlags::FIN | TcpFlags::PSH | TcpFlags::ACK).to_string(),
            "FIN/PSH/ACK"
        );
        assert_eq!(TcpFlags(0).to_string(), "none");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..200), link in 0usize..8) {
            let links = [LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2, LinkType::RawIp,
                         LinkType::Ipv4, LinkType::Ipv6, LinkType::Null, LinkType::Loop];
            let _ = decode(&frame(links[link], &data));
            if let Ok(Observation::Tcp(s)) = decode(&frame(links[link], &data)) {
                let _ = s.flags.to_string();
            }
        }

        #[test]
        fn mutated_packets_never_panic(idx in 0usize..80, val in proptest::num::u8::ANY, cut in 0usize..90) {
            let syn = tcp_v4([198, 18, 1, 1], [198, 18, 2, 1], TcpSpec::new(40000, 84, TcpFlags::SYN)).raw();
            let mut bytes = icmp_v4([198, 18, 2, 1], [198, 18, 1, 1], 3, 3, &syn).ethernet();
            if idx < bytes.len() { bytes[idx] = val; }
            bytes.truncate(cut);
            let _ = decode(&frame(LinkType::Ethernet, &bytes));
        }
    }
}
