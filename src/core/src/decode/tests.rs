//! Unit tests of the decoder: a known packet, a truncated packet and an impossible length
//! for each layer (smoltcp's habit), and property tests that no input panics.

use super::*;
use crate::frame::{LinkType, Timestamp};
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
    // Neither an error nor a discovery message: a router advertisement (type 9).
    let other = icmp_v4([198, 18, 2, 1], [198, 18, 1, 1], 9, 0, &[1, 2, 3, 4]).raw();
    assert_eq!(
        decode(&frame(LinkType::RawIp, &other)),
        Err(Skip::OtherProtocol)
    );
}

/// Echo and timestamp messages decode with their identifier and sequence number (host
/// discovery's ladder shows them); other ICMP queries stay silent skips.
#[test]
fn discovery_messages_decode_with_identifier_and_sequence() {
    let with_id = |mut raw: Vec<u8>, at: usize| {
        raw[at + 4..at + 8].copy_from_slice(&[0x12, 0x34, 0, 2]);
        raw
    };
    let cases = [
        (8, PingKind::EchoRequest),
        (0, PingKind::EchoReply),
        (13, PingKind::TimestampRequest),
        (14, PingKind::TimestampReply),
    ];
    for (icmp_type, kind) in cases {
        let body = [0u8; 12];
        let raw = with_id(
            icmp_v4([198, 18, 1, 1], [198, 19, 0, 5], icmp_type, 0, &body).raw(),
            20,
        );
        let Ok(Observation::Ping(p)) = decode(&frame(LinkType::RawIp, &raw)) else {
            panic!(
                "type {icmp_type}: {:?}",
                decode(&frame(LinkType::RawIp, &raw))
            );
        };
        assert_eq!((p.kind, p.ident, p.seq), (kind, 0x1234, 2));
        assert_eq!(p.ip.dst, "198.19.0.5".parse::<IpAddr>().unwrap());
    }
    let six = with_id(
        icmp_v6("2001:db8::2", "2001:db8::1", 129, 0, &[0; 4]).raw(),
        40,
    );
    let Ok(Observation::Ping(p)) = decode(&frame(LinkType::RawIp, &six)) else {
        panic!("{:?}", decode(&frame(LinkType::RawIp, &six)));
    };
    assert_eq!((p.kind, p.ident, p.seq), (PingKind::EchoReply, 0x1234, 2));
    // ICMPv6 has no timestamp messages: type 13 there is nothing synack reads.
    let not = icmp_v6("2001:db8::2", "2001:db8::1", 13, 0, &[0; 12]).raw();
    assert_eq!(
        decode(&frame(LinkType::RawIp, &not)),
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

// ---------------------------------------------------------------------------------------
// Builders for encapsulated frames: an outer header in front of a testpkt packet.

const SRC: [u8; 4] = [192, 0, 2, 1];
const DST: [u8; 4] = [192, 0, 2, 2];

/// The inner packet every encapsulation test carries: a SYN/ACK from 198.51.100.2:443.
fn inner_syn_ack() -> Vec<u8> {
    tcp_v4(
        [198, 51, 100, 2],
        [198, 51, 100, 1],
        TcpSpec::new(443, 40000, TcpFlags::SYN | TcpFlags::ACK).seq(9),
    )
    .ttl(61)
    .raw()
}

fn eth(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    out.extend_from_slice(&ether_type.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn ipv4(proto: u8, payload: &[u8]) -> Vec<u8> {
    let h = etherparse::Ipv4Header::new(
        payload.len() as u16,
        64,
        etherparse::IpNumber(proto),
        SRC,
        DST,
    )
    .unwrap();
    let mut out = h.to_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
    let h = etherparse::Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: payload.len() as u16,
        next_header: etherparse::IpNumber(next),
        hop_limit: 64,
        source: "2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
        destination: "2001:db8::2"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    };
    let mut out = h.to_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for x in [sport, dport, 8 + payload.len() as u16, 0] {
        out.extend_from_slice(&x.to_be_bytes());
    }
    out.extend_from_slice(payload);
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn eth_decode(data: &[u8]) -> Result<Observation, Skip> {
    decode(&frame(LinkType::Ethernet, data))
}

/// Asserts the frame decodes to the inner SYN/ACK with the inner addresses.
#[track_caller]
fn assert_inner(data: &[u8]) {
    match eth_decode(data) {
        Ok(Observation::Tcp(seg)) => {
            assert_eq!(seg.ip.src, "198.51.100.2".parse::<IpAddr>().unwrap());
            assert_eq!((seg.sport, seg.dport, seg.seq), (443, 40000, 9));
            assert_eq!(seg.ip.ttl, 61, "the inner TTL, not the tunnel's");
            assert!(seg.flags.is_syn_ack());
        }
        other => panic!("not the inner SYN/ACK: {other:?}"),
    }
}

/// Every prefix of a frame decodes without panicking, and none shorter than the inner
/// packet's 20 fixed TCP bytes gives a segment.
#[track_caller]
fn assert_every_cut_is_skipped(data: &[u8], inner_tcp_end: usize) {
    for cut in 0..inner_tcp_end {
        assert!(
            eth_decode(&data[..cut]).is_err(),
            "cut at {cut} of {} decoded",
            data.len()
        );
    }
}

// ---------------------------------------------------------------------------------------
// TCP header cut by the snap length; AE

#[test]
fn tcp_header_cut_after_its_fixed_bytes_is_decoded_and_marked() {
    // SYN/ACK with an MSS option (24-byte TCP header), cut like `tcpdump -s 58`: 14 + 20 +
    // 20 + 4, i.e. the options missing.
    let full = tcp_v4(
        [198, 18, 2, 1],
        [198, 18, 1, 1],
        TcpSpec::new(22, 40000, TcpFlags::SYN | TcpFlags::ACK)
            .seq(1000)
            .ack(2001),
    )
    .ethernet();
    let Observation::Tcp(whole) = eth_decode(&full).unwrap() else {
        panic!()
    };
    assert!(!whole.opts.cut);
    for len in [14 + 20 + 20, 14 + 20 + 22] {
        let Observation::Tcp(seg) = eth_decode(&full[..len]).unwrap() else {
            panic!()
        };
        assert!(seg.opts.cut, "cut at {len}");
        assert_eq!(seg.opts.mss, None, "options unknown");
        assert_eq!(
            (seg.sport, seg.dport, seg.seq, seg.ack, seg.window),
            (whole.sport, whole.dport, whole.seq, whole.ack, whole.window)
        );
        assert_eq!(seg.flags.to_string(), "SYN/ACK");
        assert_eq!(seg.payload_len, 0, "the IP header declares no payload");
    }
    // Inside the fixed 20 bytes: nothing to report.
    assert_eq!(eth_decode(&full[..14 + 20 + 19]), Err(Skip::Truncated));
}

#[test]
fn cut_payload_counts_as_the_ip_header_declares() {
    let mut seg = tcp_v4(
        [198, 18, 2, 1],
        [198, 18, 1, 1],
        TcpSpec::new(22, 40000, TcpFlags::PSH | TcpFlags::ACK),
    )
    .raw();
    seg.extend_from_slice(&[0xaa; 100]);
    let total = seg.len() as u16;
    seg[2..4].copy_from_slice(&total.to_be_bytes());
    let Observation::Tcp(s) = decode(&frame(LinkType::RawIp, &seg[..68])).unwrap() else {
        panic!()
    };
    assert!(!s.opts.cut, "the header is whole");
    assert_eq!(s.payload_len, 100);
}

#[test]
fn tcp_data_offset_below_five_words_is_impossible() {
    let mut bytes = tcp_v4(
        [198, 18, 2, 1],
        [198, 18, 1, 1],
        TcpSpec::new(1, 2, TcpFlags::ACK),
    )
    .raw();
    bytes[20 + 12] = 0x30;
    assert_eq!(
        decode(&frame(LinkType::RawIp, &bytes)),
        Err(Skip::Truncated)
    );
    bytes[20 + 12] = 0xf0; // 60 bytes claimed, 20 there: a cut header
    let Observation::Tcp(s) = decode(&frame(LinkType::RawIp, &bytes)).unwrap() else {
        panic!()
    };
    assert!(s.opts.cut);
}

#[test]
fn accecn_ae_bit_is_decoded_and_shown() {
    let flags = TcpFlags::SYN | TcpFlags::ECE | TcpFlags::CWR;
    let mut bytes = tcp_v4([198, 18, 1, 1], [198, 18, 2, 1], TcpSpec::new(1, 2, flags)).raw();
    bytes[20 + 12] |= 1;
    bytes[20 + 13] = flags; // testpkt sets no ECN flags
    let Observation::Tcp(s) = decode(&frame(LinkType::RawIp, &bytes)).unwrap() else {
        panic!()
    };
    assert!(s.opts.ae);
    assert_eq!(s.flags.with_ae(s.opts.ae).to_string(), "SYN/ECE/CWR/AE");
    assert_eq!(s.flags.to_string(), "SYN/ECE/CWR");
    let sa = TcpFlags(TcpFlags::SYN | TcpFlags::ACK | TcpFlags::ECE);
    assert_eq!(sa.with_ae(true).to_string(), "SYN/ECE/AE/ACK");
    assert_eq!(sa.with_ae(false).to_string(), sa.to_string());
    assert_eq!(TcpFlags(0).with_ae(true).to_string(), "AE");
    assert_eq!(TcpFlags(0).with_ae(false).to_string(), "none");
}

// ---------------------------------------------------------------------------------------
// IP fragments

/// Sets IPv4's more-fragments flag and fragment offset (in 8-byte units).
fn fragment_v4(mut ip: Vec<u8>, more: bool, offset: u16) -> Vec<u8> {
    let v = offset | if more { 0x2000 } else { 0 };
    ip[6..8].copy_from_slice(&v.to_be_bytes());
    ip
}

#[test]
fn first_fragment_with_the_fixed_tcp_header_is_decoded() {
    let mut ip = tcp_v4(
        [198, 18, 2, 1],
        [198, 18, 1, 1],
        TcpSpec::new(22, 40000, TcpFlags::SYN | TcpFlags::ACK).seq(5),
    )
    .raw();
    ip = fragment_v4(ip, true, 0);
    let Observation::Tcp(s) = decode(&frame(LinkType::RawIp, &ip)).unwrap() else {
        panic!()
    };
    assert_eq!((s.sport, s.seq), (22, 5));
    assert_eq!(s.opts.mss, Some(1460), "options in this fragment are read");
    // The first fragment carries 8 bytes: the TCP header is split (RFC 1858).
    let mut tiny = ip[..28].to_vec();
    tiny[2..4].copy_from_slice(&28u16.to_be_bytes());
    assert_eq!(
        decode(&frame(LinkType::RawIp, &tiny)),
        Err(Skip::FragmentSplitHeader)
    );
    // 20 fixed bytes in the first fragment, the options in the next: decoded, cut.
    let mut twenty = ip[..40].to_vec();
    twenty[2..4].copy_from_slice(&40u16.to_be_bytes());
    let Observation::Tcp(s) = decode(&frame(LinkType::RawIp, &twenty)).unwrap() else {
        panic!()
    };
    assert!(s.opts.cut);
}

#[test]
fn later_fragments_are_skipped_by_what_they_may_carry() {
    let tcp = fragment_v4(ipv4(6, &[0; 16]), false, 3);
    assert_eq!(decode(&frame(LinkType::RawIp, &tcp)), Err(Skip::Fragment));
    let udp = fragment_v4(ipv4(17, &[0; 16]), true, 3);
    assert_eq!(
        decode(&frame(LinkType::RawIp, &udp)),
        Err(Skip::OtherProtocol)
    );
    let icmp = fragment_v4(ipv4(1, &[0; 16]), false, 185);
    assert_eq!(
        decode(&frame(LinkType::RawIp, &icmp)),
        Err(Skip::OtherProtocol)
    );
}

#[test]
fn ipv6_fragment_header_offset_decides() {
    let tcp = tcp_v4(
        [1, 1, 1, 1],
        [2, 2, 2, 2],
        TcpSpec::new(80, 1234, TcpFlags::SYN),
    )
    .raw();
    let segment = &tcp[20..];
    // Fragment header (RFC 8200 §4.5): next header TCP, offset 0, M set, id 7.
    let mut first = vec![6, 0, 0x00, 0x01, 0, 0, 0, 7];
    first.extend_from_slice(segment);
    let Observation::Tcp(s) = decode(&frame(LinkType::RawIp, &ipv6(44, &first))).unwrap() else {
        panic!()
    };
    assert_eq!(s.sport, 80);
    let later = [6, 0, 0x00, 0x18, 0, 0, 0, 7, 1, 2, 3, 4, 5, 6, 7, 8];
    assert_eq!(
        decode(&frame(LinkType::RawIp, &ipv6(44, &later))),
        Err(Skip::Fragment)
    );
}

#[test]
fn icmp_error_about_udp_is_silently_not_tcp() {
    let dgram = ipv4(17, &udp(5353, 53, &[0; 12]));
    let bytes = icmp_v4([198, 18, 2, 1], [198, 18, 1, 1], 3, 3, &dgram[..28]).raw();
    let skip = decode(&frame(LinkType::RawIp, &bytes)).unwrap_err();
    assert_eq!(skip, Skip::OtherProtocol);
    assert!(skip.is_silent());
    // About the first fragment of a TCP datagram: the quote has the TCP header start.
    let syn = fragment_v4(
        tcp_v4(
            [198, 18, 1, 1],
            [198, 18, 2, 1],
            TcpSpec::new(40000, 84, TcpFlags::SYN),
        )
        .raw(),
        true,
        0,
    );
    let bytes = icmp_v4([198, 18, 2, 1], [198, 18, 1, 1], 3, 3, &syn[..28]).raw();
    assert!(matches!(
        decode(&frame(LinkType::RawIp, &bytes)),
        Ok(Observation::Icmp(e)) if e.quoted.dport == 84
    ));
}

// ---------------------------------------------------------------------------------------
// Below IP: VLAN, MPLS, PBB, PPPoE

#[test]
fn vlan_tags_are_walked() {
    let ip = inner_syn_ack();
    let mut tags = vec![0x00, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x08, 0x00];
    tags.extend_from_slice(&ip);
    let frame_ = eth(0x88a8, &tags);
    assert_inner(&frame_);
    assert_every_cut_is_skipped(&frame_, 14 + 8 + 20 + 20);
}

#[test]
fn mpls_label_stack() {
    let ip = inner_syn_ack();
    // Two labels (16, 17), the second with the bottom-of-stack bit.
    let labels = [0x00, 0x01, 0x00, 0x40, 0x00, 0x01, 0x11, 0x40];
    let f = eth(0x8847, &cat(&[&labels, &ip]));
    assert_inner(&f);
    assert_every_cut_is_skipped(&f, 14 + 8 + 40);
    assert_eq!(eth_decode(&f[..14 + 6]), Err(Skip::Encap(Encap::Mpls)));
    // No bottom of stack before the end: the stack runs off the frame.
    assert_eq!(
        eth_decode(&eth(0x8847, &[0, 1, 0, 0x40, 0, 1, 0x10, 0x40])),
        Err(Skip::Encap(Encap::Mpls))
    );
    // An Ethernet pseudowire (not IP after the stack) is counted, not guessed at.
    assert_eq!(
        eth_decode(&eth(0x8847, &cat(&[&labels[4..], &eth(0x0800, &ip)]))),
        Err(Skip::Encap(Encap::Mpls))
    );
}

#[test]
fn pbb_mac_in_mac() {
    let ip = inner_syn_ack();
    let customer = eth(0x0800, &ip);
    // B-VLAN tag, then the I-TAG (I-SID 0x000123), then the customer's frame.
    let f = eth(
        0x88a8,
        &cat(&[&[0x00, 0x05, 0x88, 0xe7], &[0, 0, 0x01, 0x23], &customer]),
    );
    assert_inner(&f);
    assert_every_cut_is_skipped(&f, f.len() - ip.len() + 40);
    assert_eq!(
        eth_decode(&eth(0x88e7, &[0, 0, 1, 0x23, 2, 0, 0])),
        Err(Skip::Encap(Encap::Pbb))
    );
}

#[test]
fn pppoe_session() {
    let ip = inner_syn_ack();
    let header = |proto: u16, ver: u8| {
        let mut h = vec![ver, 0x00, 0x12, 0x34];
        h.extend_from_slice(&(ip.len() as u16 + 2).to_be_bytes());
        h.extend_from_slice(&proto.to_be_bytes());
        h
    };
    let f = eth(0x8864, &cat(&[&header(0x0021, 0x11), &ip]));
    assert_inner(&f);
    assert_every_cut_is_skipped(&f, 14 + 8 + 40);
    // LCP is PPP's own, not IP: silent.
    assert_eq!(
        eth_decode(&eth(0x8864, &cat(&[&header(0xc021, 0x11), &[1, 1, 0, 4]]))),
        Err(Skip::NotIp)
    );
    assert_eq!(
        eth_decode(&eth(0x8864, &cat(&[&header(0x0021, 0x21), &ip]))),
        Err(Skip::Encap(Encap::Pppoe))
    );
    assert_eq!(
        eth_decode(&eth(0x8864, &[0x11, 0, 0])),
        Err(Skip::Encap(Encap::Pppoe))
    );
}

// ---------------------------------------------------------------------------------------
// Tunnels

#[test]
fn ip_in_ip_6in4_and_4in6() {
    let v4 = inner_syn_ack();
    assert_inner(&eth(0x0800, &ipv4(4, &v4)));
    assert_inner(&eth(0x86dd, &ipv6(4, &v4)));
    let v6 = tcp_v6(
        "2001:db8:2::1",
        "2001:db8:1::1",
        TcpSpec::new(443, 40000, TcpFlags::SYN | TcpFlags::ACK),
    )
    .raw();
    let Observation::Tcp(s) = eth_decode(&eth(0x0800, &ipv4(41, &v6))).unwrap() else {
        panic!()
    };
    assert_eq!(s.ip.src, "2001:db8:2::1".parse::<IpAddr>().unwrap());
    // An inner header that lies about its length is a damaged IP packet.
    let mut bad = v4.clone();
    bad[0] = 0x43;
    assert_eq!(eth_decode(&eth(0x0800, &ipv4(4, &bad))), Err(Skip::BadIp));
}

fn gre_header(flags: u16, proto: u16, optional_words: usize) -> Vec<u8> {
    let mut h = flags.to_be_bytes().to_vec();
    h.extend_from_slice(&proto.to_be_bytes());
    h.extend(std::iter::repeat_n(0u8, 4 * optional_words));
    h
}

#[test]
fn gre_with_ip_ethernet_and_erspan() {
    let ip = inner_syn_ack();
    // Key and sequence number present.
    let plain = eth(
        0x0800,
        &ipv4(47, &cat(&[&gre_header(0x3000, 0x0800, 2), &ip])),
    );
    assert_inner(&plain);
    assert_every_cut_is_skipped(&plain, 14 + 20 + 12 + 40);
    let teb = eth(
        0x0800,
        &ipv4(
            47,
            &cat(&[&gre_header(0x2000, 0x6558, 1), &eth(0x0800, &ip)]),
        ),
    );
    assert_inner(&teb);
    // ERSPAN type II (GRE sequence number, version 1 header), type I (no sequence
    // number, no header), type III with the platform subheader (O bit).
    let mut e2 = vec![0x10, 0x0a, 0x00, 0x01, 0, 0, 0, 0];
    e2.extend_from_slice(&eth(0x0800, &ip));
    assert_inner(&eth(
        0x0800,
        &ipv4(47, &cat(&[&gre_header(0x1000, 0x88be, 1), &e2])),
    ));
    let e1 = eth(0x0800, &ip);
    assert_inner(&eth(
        0x0800,
        &ipv4(47, &cat(&[&gre_header(0, 0x88be, 0), &e1])),
    ));
    let mut e3 = vec![0x20, 0x0a, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0x01];
    e3.extend_from_slice(&[0; 8]);
    e3.extend_from_slice(&eth(0x0800, &ip));
    assert_inner(&eth(
        0x0800,
        &ipv4(47, &cat(&[&gre_header(0x1000, 0x22eb, 1), &e3])),
    ));
    // Wrong ERSPAN version; GRE version 1 (PPTP); GRE cut short.
    let mut bad = e3.clone();
    bad[0] = 0x10;
    assert_eq!(
        eth_decode(&eth(
            0x0800,
            &ipv4(47, &cat(&[&gre_header(0x1000, 0x22eb, 1), &bad]))
        )),
        Err(Skip::Encap(Encap::Erspan))
    );
    assert_eq!(
        eth_decode(&eth(
            0x0800,
            &ipv4(47, &cat(&[&gre_header(0x2001, 0x880b, 1), &ip]))
        )),
        Err(Skip::Encap(Encap::Gre))
    );
    assert_eq!(
        eth_decode(&eth(0x0800, &ipv4(47, &[0x30, 0, 8]))),
        Err(Skip::Encap(Encap::Gre))
    );
    // GRE carrying something that is not IP (here ARP) is silent.
    assert_eq!(
        eth_decode(&eth(
            0x0800,
            &ipv4(47, &cat(&[&gre_header(0, 0x0806, 0), &[0; 28]]))
        )),
        Err(Skip::NotIp)
    );
}

#[test]
fn vxlan_geneve_gre_in_udp() {
    let ip = inner_syn_ack();
    let inner_eth = eth(0x0800, &ip);
    let vx = cat(&[&[0x08, 0, 0, 0, 0, 0, 0x2a, 0], &inner_eth]);
    let f = eth(0x0800, &ipv4(17, &udp(51000, 4789, &vx)));
    assert_inner(&f);
    assert_every_cut_is_skipped(&f, 14 + 20 + 8 + 8 + 14 + 40);
    assert_eq!(
        eth_decode(&eth(0x0800, &ipv4(17, &udp(51000, 4789, &[0x08, 0, 0])))),
        Err(Skip::Encap(Encap::Vxlan))
    );
    // Geneve with one 8-byte option, carrying Ethernet, and carrying IPv4 directly.
    let geneve = |proto: u16, payload: &[u8]| {
        let mut h = vec![0x02, 0x00];
        h.extend_from_slice(&proto.to_be_bytes());
        h.extend_from_slice(&[0, 0, 0x2a, 0]);
        h.extend_from_slice(&[0x01, 0x02, 0x80, 0x01, 0, 0, 0, 0]);
        h.extend_from_slice(payload);
        h
    };
    assert_inner(&eth(
        0x86dd,
        &ipv6(17, &udp(51000, 6081, &geneve(0x6558, &inner_eth))),
    ));
    assert_inner(&eth(
        0x0800,
        &ipv4(17, &udp(51000, 6081, &geneve(0x0800, &ip))),
    ));
    let mut v1 = geneve(0x0800, &ip);
    v1[0] |= 0x40;
    assert_eq!(
        eth_decode(&eth(0x0800, &ipv4(17, &udp(51000, 6081, &v1)))),
        Err(Skip::Encap(Encap::Geneve))
    );
    assert_eq!(
        eth_decode(&eth(
            0x0800,
            &ipv4(17, &udp(51000, 6081, &geneve(0x0800, &ip)[..12]))
        )),
        Err(Skip::Encap(Encap::Geneve))
    );
    // GRE-in-UDP (RFC 8086).
    let g = cat(&[&gre_header(0, 0x0800, 0), &ip]);
    assert_inner(&eth(0x0800, &ipv4(17, &udp(51000, 4754, &g))));
    // Plain UDP: silent.
    assert_eq!(
        eth_decode(&eth(0x0800, &ipv4(17, &udp(51000, 53, &vx)))),
        Err(Skip::OtherProtocol)
    );
}

#[test]
fn gtp_u() {
    let ip = inner_syn_ack();
    let mut short = vec![0x30, 0xff];
    short.extend_from_slice(&(ip.len() as u16).to_be_bytes());
    short.extend_from_slice(&[0, 0, 0, 1]);
    short.extend_from_slice(&ip);
    assert_inner(&eth(0x0800, &ipv4(17, &udp(2152, 2152, &short))));
    // E flag with one PDU session container extension (1 word, next type 0).
    let mut long = vec![0x34, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x85];
    long.extend_from_slice(&[0x01, 0x00, 0x01, 0x00]);
    long.extend_from_slice(&ip);
    assert_inner(&eth(0x0800, &ipv4(17, &udp(40000, 2152, &long))));
    assert_eq!(
        eth_decode(&eth(0x0800, &ipv4(17, &udp(40000, 2152, &long[..14])))),
        Err(Skip::Encap(Encap::GtpU))
    );
    // An extension header of length 0 would never end.
    let mut zero = long.clone();
    zero[12] = 0;
    assert_eq!(
        eth_decode(&eth(0x0800, &ipv4(17, &udp(40000, 2152, &zero)))),
        Err(Skip::Encap(Encap::GtpU))
    );
    // Echo request: signalling, silent.
    assert_eq!(
        eth_decode(&eth(
            0x0800,
            &ipv4(
                17,
                &udp(2152, 2152, &[0x32, 1, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0])
            )
        )),
        Err(Skip::OtherProtocol)
    );
}

#[test]
fn teredo() {
    let v6 = tcp_v6(
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "2001:db8:1::1",
        TcpSpec::new(443, 40000, TcpFlags::SYN | TcpFlags::ACK),
    )
    .raw();
    let origin = [0x00, 0x00, 0x12, 0x34, 0xc0, 0x00, 0x02, 0x01];
    let f = eth(0x0800, &ipv4(17, &udp(3544, 51000, &cat(&[&origin, &v6]))));
    let Observation::Tcp(s) = eth_decode(&f).unwrap() else {
        panic!()
    };
    assert_eq!(s.sport, 443);
    let auth = [0x00, 0x01, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0];
    let f = eth(
        0x0800,
        &ipv4(17, &udp(51000, 3544, &cat(&[&auth, &origin, &v6]))),
    );
    assert!(matches!(eth_decode(&f), Ok(Observation::Tcp(_))));
    // Not IPv6 after the indicators: not Teredo, silently.
    assert_eq!(
        eth_decode(&eth(0x0800, &ipv4(17, &udp(51000, 3544, &[0x45; 60])))),
        Err(Skip::OtherProtocol)
    );
    assert_eq!(
        eth_decode(&eth(0x0800, &ipv4(17, &udp(51000, 3544, &auth[..3])))),
        Err(Skip::OtherProtocol)
    );
}

#[test]
fn nesting_is_bounded() {
    let mut p = inner_syn_ack();
    for _ in 0..MAX_NESTING {
        p = ipv4(47, &cat(&[&gre_header(0, 0x0800, 0), &p]));
    }
    // The outermost IP packet is not itself nested: MAX_NESTING GRE layers decode.
    assert_inner(&eth(0x0800, &p));
    let deeper = ipv4(47, &cat(&[&gre_header(0, 0x0800, 0), &p]));
    assert_eq!(eth_decode(&eth(0x0800, &deeper)), Err(Skip::TooDeep));
}

#[test]
fn every_skip_kind_has_words_and_only_two_are_silent() {
    let all = [
        Skip::NotIp,
        Skip::BadIp,
        Skip::OtherProtocol,
        Skip::Fragment,
        Skip::FragmentSplitHeader,
        Skip::Truncated,
        Skip::IcmpQuoteNotTcp,
        Skip::Encap(Encap::Mpls),
        Skip::Encap(Encap::Pbb),
        Skip::Encap(Encap::Pppoe),
        Skip::Encap(Encap::Gre),
        Skip::Encap(Encap::Erspan),
        Skip::Encap(Encap::Vxlan),
        Skip::Encap(Encap::Geneve),
        Skip::Encap(Encap::GtpU),
        Skip::TooDeep,
    ];
    let words: std::collections::HashSet<_> = all.iter().map(|s| s.describe()).collect();
    assert_eq!(words.len(), all.len(), "each kind its own words");
    assert_eq!(all.iter().filter(|s| s.is_silent()).count(), 2);
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

    #[test]
    fn options_agree_with_etherparse(options in proptest::collection::vec(proptest::sample::select(vec![0u8, 1, 2, 3, 4, 5, 8, 10, 18, 34, 254, 255]), 0..40)) {
        use etherparse::TcpOptionElement as O;
        let mut want = TcpOpts::default();
        for opt in etherparse::TcpOptionsIterator::from_slice(&options) {
            match opt {
                Ok(O::MaximumSegmentSize(mss)) => want.mss = Some(mss),
                Ok(O::WindowScale(ws)) => want.wscale = Some(ws),
                Ok(O::SelectiveAcknowledgementPermitted) => want.sack_permitted = true,
                Ok(O::Timestamp(_, _)) => want.timestamps = true,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        proptest::prop_assert_eq!(tcp_opts(&options), want);
    }

    #[test]
    fn fast_path_agrees_with_the_walk(which in 0usize..4, idx in 0usize..80, val in proptest::num::u8::ANY, cut in 0usize..90, raw in proptest::bool::ANY) {
        let spec = match which {
            0 => TcpSpec::new(40000, 84, TcpFlags::SYN),
            1 => TcpSpec::new(84, 40000, TcpFlags::SYN | TcpFlags::ACK).seq(7).ack(1),
            2 => TcpSpec::new(84, 40000, TcpFlags::RST | TcpFlags::ACK).ack(1),
            _ => TcpSpec::new(40000, 84, TcpFlags::ACK | TcpFlags::FIN).seq(2),
        };
        let pkt = tcp_v4([198, 18, 1, 1], [198, 18, 2, 1], spec).ttl(63).tos(0x29);
        let (link, mut bytes) = if raw {
            (LinkType::RawIp, pkt.raw())
        } else {
            (LinkType::Ethernet, pkt.ethernet())
        };
        if idx < bytes.len() { bytes[idx] = val; }
        bytes.truncate(cut);
        if let Some(fast) = plain_ipv4_tcp(link, &bytes) {
            proptest::prop_assert_eq!(Ok(fast), encap::decode_link(link, &bytes));
        }
    }

    #[test]
    fn mutated_tunnels_never_panic(which in 0usize..6, idx in 0usize..140, val in proptest::num::u8::ANY, cut in 0usize..150) {
        let ip = inner_syn_ack();
        let inner_eth = eth(0x0800, &ip);
        let mut bytes = match which {
            0 => eth(0x0800, &ipv4(17, &udp(1, 4789, &cat(&[&[8, 0, 0, 0, 0, 0, 1, 0], &inner_eth])))),
            1 => eth(0x0800, &ipv4(47, &cat(&[&gre_header(0x1000, 0x22eb, 1), &[0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], &[0; 8], &inner_eth]))),
            2 => eth(0x8847, &cat(&[&[0, 1, 1, 0x40], &ip])),
            3 => eth(0x8864, &cat(&[&[0x11, 0, 0, 1, 0, 60, 0, 0x21], &ip])),
            4 => eth(0x0800, &ipv4(17, &udp(2152, 2152, &cat(&[&[0x34, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x85, 1, 0, 1, 0], &ip])))),
            _ => eth(0x0800, &ipv4(17, &udp(1, 6081, &cat(&[&[0x02, 0, 0x65, 0x58, 0, 0, 1, 0, 1, 2, 0x80, 1, 0, 0, 0, 0], &inner_eth])))),
        };
        if idx < bytes.len() { bytes[idx] = val; }
        bytes.truncate(cut);
        let _ = decode(&frame(LinkType::Ethernet, &bytes));
    }
}
