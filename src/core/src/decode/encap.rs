//! Link headers and encapsulations: from a captured frame to the innermost IP packet.
//!
//! Captures of real traffic (a SPAN port, a cloud mirror, a provider's access network)
//! hold TCP inside other headers. synack decodes the ones Zeek decodes, and the
//! observation reports the innermost TCP or ICMP packet — its addresses, TTL and DSCP —
//! because that is the exchange the verdict is about:
//!
//! - link: Ethernet II, Linux cooked v1 and v2, raw IP, BSD loopback;
//! - below IP: 802.1Q / 802.1ad VLAN tags, MPLS label stacks (RFC 3032), 802.1ah PBB
//!   (MAC-in-MAC), PPPoE sessions (RFC 2516);
//! - tunnels: IP-in-IP, 6in4, 4in6 (RFC 2003, RFC 4213), GRE (RFC 2784, RFC 2890)
//!   with IP, MPLS, transparent Ethernet bridging (0x6558) and ERSPAN types I, II and III;
//!   over UDP: VXLAN (4789, RFC 7348), Geneve (6081, RFC 8926), GTP-U (2152, 3GPP TS
//!   29.281), GRE-in-UDP (4754, RFC 8086), Teredo (3544, RFC 4380).
//!
//! The walk is a loop, not recursion, and a frame may nest at most [`MAX_NESTING`]
//! encapsulations: every step consumes bytes, and the bound keeps a hostile frame (GRE in
//! GRE in GRE …) cheap. A header that cannot be read is counted by kind
//! ([`Skip::Encap`]); a payload that is simply not IP (PPP control, an unknown EtherType)
//! is [`Skip::NotIp`], silent as on a plain link.

use etherparse::EtherType;

use super::{Encap, IpContent, MAX_NESTING, Observation, Skip, decode_ip};
use crate::frame::LinkType;

/// A header to decode next.
pub(super) enum Layer<'a> {
    /// An Ethernet II frame: a link, or what VXLAN, Geneve, GRE's transparent Ethernet
    /// bridging, PBB and ERSPAN carry.
    Ethernet(&'a [u8]),
    /// A payload named by an EtherType: after a link header, a VLAN tag, GRE, Geneve.
    Ether(EtherType, &'a [u8]),
    /// An IPv4 or IPv6 packet.
    Ip(&'a [u8]),
}

/// The next header, and whether it starts an encapsulated packet (counted against
/// [`MAX_NESTING`]) or continues the same one.
enum Step<'a> {
    Same(Layer<'a>),
    Nested(Layer<'a>),
}

/// Byte positions in the headers etherparse has no type for (smoltcp's `mod field`).
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

    /// MPLS label stack entry (RFC 3032 §2.1): label, traffic class, bottom-of-stack bit
    /// (low bit of byte 2), TTL.
    pub const MPLS_ENTRY_LEN: usize = 4;
    pub const MPLS_BOTTOM: usize = 2;
    /// 802.1ah I-TAG: PCP, DEI, UCA, reserved bits and the 24-bit I-SID; the customer's
    /// Ethernet frame (destination, source, EtherType …) follows.
    pub const PBB_ITAG_LEN: usize = 4;
    /// PPPoE session stage (RFC 2516 §4): version and type (0x11), code (0 in a session),
    /// session id, length; then the PPP protocol field (RFC 1661 §2).
    pub const PPPOE_VER_TYPE: usize = 0;
    pub const PPPOE_CODE: usize = 1;
    pub const PPP_PROTOCOL: Field = 6..8;
    /// GRE (RFC 2784 §2, RFC 2890 §2): flags and version, protocol type (an EtherType);
    /// optional checksum, key and sequence number words follow.
    pub const GRE_FLAGS_VERSION: Field = 0..2;
    pub const GRE_PROTOCOL: Field = 2..4;
    pub const GRE_LEN: usize = 4;
    /// ERSPAN type II (8 bytes) and III (12 bytes, + 8 with the platform-specific
    /// subheader): the version is the high nibble of byte 0; type III's O flag is the low
    /// bit of byte 11 (draft-foschiano-erspan §4.2, §4.3).
    pub const ERSPAN_VERSION: usize = 0;
    pub const ERSPAN2_LEN: usize = 8;
    pub const ERSPAN3_LEN: usize = 12;
    pub const ERSPAN3_FLAGS: usize = 11;
    pub const ERSPAN3_SUBHEADER_LEN: usize = 8;
    /// VXLAN (RFC 7348 §5): flags, reserved, VNI, reserved.
    pub const VXLAN_LEN: usize = 8;
    /// Geneve (RFC 8926 §3.4): version (2 bits) and option length (6 bits, in 4-byte
    /// words), flags, protocol type (an EtherType), VNI, reserved.
    pub const GENEVE_VER_OPTLEN: usize = 0;
    pub const GENEVE_PROTOCOL: Field = 2..4;
    pub const GENEVE_LEN: usize = 8;
    /// GTP-U (3GPP TS 29.281 §5.1): flags (version, PT, E, S, PN), message type, length,
    /// TEID; with any of E, S, PN set, a sequence number, N-PDU number and the first
    /// extension header type follow.
    pub const GTP_FLAGS: usize = 0;
    pub const GTP_MESSAGE_TYPE: usize = 1;
    pub const GTP_LEN: usize = 8;
    pub const GTP_LONG_LEN: usize = 12;
    pub const GTP_NEXT_EXT: usize = 11;
    /// Teredo (RFC 4380 §5.1.1): an optional authentication indicator (type 0x0001, client
    /// id length, authentication value length, id, value, 8-byte nonce, confirmation
    /// byte) and an optional origin indication (type 0x0000, 8 bytes).
    pub const TEREDO_TYPE: Field = 0..2;
    pub const TEREDO_AUTH_ID_LEN: usize = 2;
    pub const TEREDO_AUTH_VALUE_LEN: usize = 3;
    pub const TEREDO_AUTH_FIXED_LEN: usize = 4 + 8 + 1;
    pub const TEREDO_ORIGIN_LEN: usize = 8;
}

/// EtherTypes (IEEE registry) of the layers decoded here.
mod ether {
    use etherparse::EtherType;
    pub const MPLS_UNICAST: EtherType = EtherType(0x8847);
    pub const MPLS_MULTICAST: EtherType = EtherType(0x8848);
    pub const PBB: EtherType = EtherType(0x88e7);
    pub const PPPOE_SESSION: EtherType = EtherType(0x8864);
    pub const TRANSPARENT_ETHERNET: EtherType = EtherType(0x6558);
    pub const ERSPAN_2: EtherType = EtherType(0x88be);
    pub const ERSPAN_3: EtherType = EtherType(0x22eb);
}

/// UDP ports of the tunnels (IANA registry).
mod port {
    pub const VXLAN: u16 = 4789;
    pub const GENEVE: u16 = 6081;
    pub const GTP_U: u16 = 2152;
    pub const GRE_IN_UDP: u16 = 4754;
    pub const TEREDO: u16 = 3544;
}

fn be16(data: &[u8], f: field::Field) -> Option<u16> {
    let b = data.get(f)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// The IP version nibble, when the bytes look like the start of an IP packet.
fn ip_version(data: &[u8]) -> Option<u8> {
    data.first().map(|b| b >> 4).filter(|v| *v == 4 || *v == 6)
}

/// Decodes a frame of the given link type down to its innermost TCP or ICMP packet.
pub(super) fn decode_link(link: LinkType, data: &[u8]) -> Result<Observation, Skip> {
    let first = match link {
        LinkType::Ethernet => Layer::Ethernet(data),
        LinkType::RawIp | LinkType::Ipv4 | LinkType::Ipv6 => Layer::Ip(data),
        // Linux cooked v1: 16-byte header, protocol (an EtherType) in its last two bytes.
        LinkType::LinuxSll => {
            let proto = be16(data, field::SLL_PROTOCOL).ok_or(Skip::NotIp)?;
            Layer::Ether(
                EtherType(proto),
                data.get(field::SLL_LEN..).ok_or(Skip::NotIp)?,
            )
        }
        // Linux cooked v2: 20-byte header, protocol in its first two bytes. etherparse has
        // no SLL2 type, so the fixed header is stepped over here.
        LinkType::LinuxSll2 => {
            let rest = data.get(field::SLL2_LEN..).ok_or(Skip::NotIp)?;
            let proto = be16(data, field::SLL2_PROTOCOL).ok_or(Skip::NotIp)?;
            Layer::Ether(EtherType(proto), rest)
        }
        // BSD loopback: a 4-byte address family in the capturing host's byte order (NULL)
        // or in network order (LOOP). AF_INET is 2 everywhere; AF_INET6 is 24, 28 or 30
        // depending on the BSD. Either way the IP version nibble decides.
        LinkType::Null | LinkType::Loop => {
            Layer::Ip(data.get(field::NULL_LEN..).ok_or(Skip::NotIp)?)
        }
    };
    walk(first)
}

/// Steps through the layers until an observation or a reason to skip.
fn walk(mut layer: Layer<'_>) -> Result<Observation, Skip> {
    let mut nesting = 0u8;
    loop {
        let step = match layer {
            Layer::Ethernet(b) => ethernet(b)?,
            Layer::Ether(t, b) => ether_payload(t, b)?,
            Layer::Ip(b) => match decode_ip(b)? {
                IpContent::Done(obs) => return Ok(obs),
                IpContent::Inner(inner) => Step::Nested(inner),
            },
        };
        layer = match step {
            Step::Same(l) => l,
            Step::Nested(l) => {
                nesting += 1;
                if nesting > MAX_NESTING {
                    return Err(Skip::TooDeep);
                }
                l
            }
        };
    }
}

fn ethernet(data: &[u8]) -> Result<Step<'_>, Skip> {
    let eth = etherparse::Ethernet2Slice::from_slice_without_fcs(data).map_err(|_| Skip::NotIp)?;
    Ok(Step::Same(Layer::Ether(
        eth.ether_type(),
        eth.payload_slice(),
    )))
}

/// A payload named by its EtherType.
fn ether_payload(t: EtherType, data: &[u8]) -> Result<Step<'_>, Skip> {
    Ok(match t {
        EtherType::IPV4 | EtherType::IPV6 => Step::Same(Layer::Ip(data)),
        // 802.1Q, 802.1ad and the old 0x9100 double tag: each tag names the next type.
        EtherType::VLAN_TAGGED_FRAME
        | EtherType::PROVIDER_BRIDGING
        | EtherType::VLAN_DOUBLE_TAGGED_FRAME => {
            let tag =
                etherparse::SingleVlanHeaderSlice::from_slice(data).map_err(|_| Skip::NotIp)?;
            let rest = data.get(tag.slice().len()..).ok_or(Skip::NotIp)?;
            Step::Same(Layer::Ether(tag.ether_type(), rest))
        }
        ether::MPLS_UNICAST | ether::MPLS_MULTICAST => Step::Nested(mpls(data)?),
        // MAC-in-MAC: after the I-TAG, the customer's whole Ethernet frame.
        ether::PBB => {
            let inner = data
                .get(field::PBB_ITAG_LEN..)
                .filter(|f| f.len() >= etherparse::Ethernet2Header::LEN)
                .ok_or(Skip::Encap(Encap::Pbb))?;
            Step::Nested(Layer::Ethernet(inner))
        }
        ether::PPPOE_SESSION => Step::Nested(pppoe(data)?),
        // Transparent Ethernet bridging (GRE, Geneve): the tunnel step already counted.
        ether::TRANSPARENT_ETHERNET => Step::Same(Layer::Ethernet(data)),
        _ => return Err(Skip::NotIp),
    })
}

/// An MPLS label stack: entries up to the one with the bottom-of-stack bit, then a packet
/// whose kind the labels imply. As Zeek and tcpdump do, the IP version nibble decides.
fn mpls(data: &[u8]) -> Result<Layer<'_>, Skip> {
    let mut at = 0;
    loop {
        let entry = data
            .get(at..at + field::MPLS_ENTRY_LEN)
            .ok_or(Skip::Encap(Encap::Mpls))?;
        at += field::MPLS_ENTRY_LEN;
        if entry[field::MPLS_BOTTOM] & 1 != 0 {
            break;
        }
    }
    let rest = &data[at..];
    ip_version(rest).ok_or(Skip::Encap(Encap::Mpls))?;
    Ok(Layer::Ip(rest))
}

/// A PPPoE session packet: PPP carrying IPv4 (0x0021) or IPv6 (0x0057); PPP's own
/// control protocols (LCP, IPCP, …) are not IP.
fn pppoe(data: &[u8]) -> Result<Layer<'_>, Skip> {
    let bad = Skip::Encap(Encap::Pppoe);
    let (Some(&ver_type), Some(&code)) =
        (data.get(field::PPPOE_VER_TYPE), data.get(field::PPPOE_CODE))
    else {
        return Err(bad);
    };
    if ver_type != 0x11 || code != 0 {
        return Err(bad);
    }
    let proto = be16(data, field::PPP_PROTOCOL).ok_or(bad)?;
    match proto {
        0x0021 | 0x0057 => Ok(Layer::Ip(&data[field::PPP_PROTOCOL.end..])),
        _ => Err(Skip::NotIp),
    }
}

/// A GRE packet (version 0): the payload is named by an EtherType, except ERSPAN's, whose
/// own header comes first.
pub(super) fn gre(data: &[u8]) -> Result<Layer<'_>, Skip> {
    const CHECKSUM: u16 = 0x8000;
    const ROUTING: u16 = 0x4000;
    const KEY: u16 = 0x2000;
    const SEQUENCE: u16 = 0x1000;
    const VERSION: u16 = 0x0007;
    let bad = Skip::Encap(Encap::Gre);
    let flags = be16(data, field::GRE_FLAGS_VERSION).ok_or(bad)?;
    let proto = be16(data, field::GRE_PROTOCOL).ok_or(bad)?;
    // Version 1 is PPTP's enhanced GRE (RFC 2637), and routing (RFC 1701) is obsolete:
    // neither carries what synack reads.
    if flags & VERSION != 0 || flags & ROUTING != 0 {
        return Err(bad);
    }
    let optional = [CHECKSUM, KEY, SEQUENCE]
        .iter()
        .filter(|bit| flags & **bit != 0)
        .count();
    let rest = data.get(field::GRE_LEN + 4 * optional..).ok_or(bad)?;
    match EtherType(proto) {
        // ERSPAN type II has a sequence number in GRE; type I (the same protocol type
        // without one) has no header of its own.
        ether::ERSPAN_2 if flags & SEQUENCE == 0 => Ok(Layer::Ethernet(rest)),
        ether::ERSPAN_2 => erspan(rest, 1, field::ERSPAN2_LEN),
        ether::ERSPAN_3 => erspan(rest, 2, field::ERSPAN3_LEN),
        t => Ok(Layer::Ether(t, rest)),
    }
}

/// ERSPAN type II (header version 1) or III (version 2): a mirrored Ethernet frame.
fn erspan(data: &[u8], version: u8, len: usize) -> Result<Layer<'_>, Skip> {
    let bad = Skip::Encap(Encap::Erspan);
    let v = data.get(field::ERSPAN_VERSION).ok_or(bad)? >> 4;
    if v != version {
        return Err(bad);
    }
    let mut len = len;
    if version == 2 && data.get(field::ERSPAN3_FLAGS).ok_or(bad)? & 1 != 0 {
        len += field::ERSPAN3_SUBHEADER_LEN;
    }
    data.get(len..).map(Layer::Ethernet).ok_or(bad)
}

/// A UDP datagram: a tunnel when one of its ports says so, otherwise not synack's.
///
/// VXLAN, Geneve and GRE-in-UDP are recognised by the destination port only (their
/// source port is a flow hash, RFC 7348 §5); GTP-U uses 2152 on both sides and a Teredo
/// server answers from 3544, so either port counts for those two.
pub(super) fn udp(data: &[u8]) -> Result<Layer<'_>, Skip> {
    let udp = etherparse::UdpSlice::from_slice_lax(data).map_err(|_| Skip::OtherProtocol)?;
    let payload = udp.payload();
    let (src, dst) = (udp.source_port(), udp.destination_port());
    match dst {
        port::VXLAN => vxlan(payload),
        port::GENEVE => geneve(payload),
        port::GRE_IN_UDP => gre(payload),
        port::GTP_U => gtp_u(payload),
        port::TEREDO => teredo(payload),
        _ if src == port::GTP_U => gtp_u(payload),
        _ if src == port::TEREDO => teredo(payload),
        _ => Err(Skip::OtherProtocol),
    }
}

fn vxlan(data: &[u8]) -> Result<Layer<'_>, Skip> {
    data.get(field::VXLAN_LEN..)
        .map(Layer::Ethernet)
        .ok_or(Skip::Encap(Encap::Vxlan))
}

fn geneve(data: &[u8]) -> Result<Layer<'_>, Skip> {
    let bad = Skip::Encap(Encap::Geneve);
    let first = *data.get(field::GENEVE_VER_OPTLEN).ok_or(bad)?;
    if first >> 6 != 0 {
        return Err(bad);
    }
    let options = usize::from(first & 0x3f) * 4;
    let proto = be16(data, field::GENEVE_PROTOCOL).ok_or(bad)?;
    let rest = data.get(field::GENEVE_LEN + options..).ok_or(bad)?;
    Ok(Layer::Ether(EtherType(proto), rest))
}

/// GTP-U: a G-PDU (message type 255) carries a user's IP packet; echo and error
/// messages are signalling, not synack's.
fn gtp_u(data: &[u8]) -> Result<Layer<'_>, Skip> {
    const VERSION_PT: u8 = 0xf0;
    const GTPV1_PT: u8 = 0x30;
    const OPTIONAL: u8 = 0x07;
    const G_PDU: u8 = 0xff;
    let bad = Skip::Encap(Encap::GtpU);
    let (Some(&flags), Some(&message)) = (
        data.get(field::GTP_FLAGS),
        data.get(field::GTP_MESSAGE_TYPE),
    ) else {
        return Err(Skip::OtherProtocol);
    };
    if flags & VERSION_PT != GTPV1_PT || message != G_PDU {
        return Err(Skip::OtherProtocol);
    }
    let mut at = field::GTP_LEN;
    if flags & OPTIONAL != 0 {
        at = field::GTP_LONG_LEN;
        let mut next = *data.get(field::GTP_NEXT_EXT).ok_or(bad)?;
        // Extension headers (§5.2): a length in 4-byte units, then the next type last.
        while next != 0 {
            let words = usize::from(*data.get(at).ok_or(bad)?);
            if words == 0 {
                return Err(bad);
            }
            at += words * 4;
            next = *data.get(at - 1).ok_or(bad)?;
        }
    }
    let rest = data.get(at..).ok_or(bad)?;
    ip_version(rest).ok_or(bad)?;
    Ok(Layer::Ip(rest))
}

/// Teredo: IPv6 in UDP, after the optional authentication and origin indicators. As in
/// Zeek, a payload that does not look like IPv6 is not Teredo (and not synack's).
fn teredo(data: &[u8]) -> Result<Layer<'_>, Skip> {
    let mut rest = data;
    if be16(rest, field::TEREDO_TYPE) == Some(0x0001) {
        let (Some(&id), Some(&value)) = (
            rest.get(field::TEREDO_AUTH_ID_LEN),
            rest.get(field::TEREDO_AUTH_VALUE_LEN),
        ) else {
            return Err(Skip::OtherProtocol);
        };
        let len = field::TEREDO_AUTH_FIXED_LEN + usize::from(id) + usize::from(value);
        rest = rest.get(len..).ok_or(Skip::OtherProtocol)?;
    }
    if be16(rest, field::TEREDO_TYPE) == Some(0x0000) {
        rest = rest
            .get(field::TEREDO_ORIGIN_LEN..)
            .ok_or(Skip::OtherProtocol)?;
    }
    if ip_version(rest) != Some(6) || rest.len() < etherparse::Ipv6Header::LEN {
        return Err(Skip::OtherProtocol);
    }
    Ok(Layer::Ip(rest))
}
