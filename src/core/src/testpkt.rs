//! Packet builders for tests, property tests and fuzz seeds (not part of the tool).
//!
//! Builds IPv4/IPv6 packets carrying TCP segments or ICMP errors with the header fields
//! verdicts look at (TTL, DSCP, IP ID, flow label) under the test's control. Checksums are
//! left at zero: synack never checks them (captures of offloaded sends show bad ones).

use std::net::Ipv6Addr;

use etherparse::{IpDscp, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, TcpHeader};

use crate::decode::TcpFlags;

#[derive(Clone, Debug)]
pub struct TcpSpec {
    pub sport: u16,
    pub dport: u16,
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
}

impl TcpSpec {
    pub fn new(sport: u16, dport: u16, flags: u8) -> Self {
        TcpSpec {
            sport,
            dport,
            flags,
            seq: 1,
            ack: 0,
            window: 64240,
        }
    }
    pub fn seq(mut self, seq: u32) -> Self {
        self.seq = seq;
        self
    }
    pub fn ack(mut self, ack: u32) -> Self {
        self.ack = ack;
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut h = TcpHeader::new(self.sport, self.dport, self.seq, self.window);
        let f = TcpFlags(self.flags);
        h.syn = f.syn();
        h.ack = f.ack();
        h.rst = f.rst();
        h.fin = f.fin();
        h.psh = f.has(TcpFlags::PSH);
        h.acknowledgment_number = self.ack;
        if f.syn() {
            let _ = h.set_options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)]);
        }
        h.to_bytes().to_vec()
    }
}

/// An IP packet under construction.
#[derive(Clone, Debug)]
pub struct PacketSpec {
    v6: Option<([u8; 16], [u8; 16])>,
    v4: Option<([u8; 4], [u8; 4])>,
    proto: IpNumber,
    payload: Vec<u8>,
    ttl: u8,
    tos: u8,
    ip_id: u16,
    flow_label: u32,
}

pub fn tcp_v4(src: [u8; 4], dst: [u8; 4], tcp: TcpSpec) -> PacketSpec {
    PacketSpec::new(Some((src, dst)), None, IpNumber::TCP, tcp.bytes())
}

pub fn tcp_v6(src: &str, dst: &str, tcp: TcpSpec) -> PacketSpec {
    PacketSpec::new(None, Some((v6(src), v6(dst))), IpNumber::TCP, tcp.bytes())
}

/// An ICMP message of the given type and code whose body is `quote`.
pub fn icmp_v4(src: [u8; 4], dst: [u8; 4], icmp_type: u8, code: u8, quote: &[u8]) -> PacketSpec {
    let mut body = vec![icmp_type, code, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(quote);
    PacketSpec::new(Some((src, dst)), None, IpNumber::ICMP, body)
}

pub fn icmp_v6(src: &str, dst: &str, icmp_type: u8, code: u8, quote: &[u8]) -> PacketSpec {
    let mut body = vec![icmp_type, code, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(quote);
    PacketSpec::new(None, Some((v6(src), v6(dst))), IpNumber::IPV6_ICMP, body)
}

fn v6(s: &str) -> [u8; 16] {
    s.parse::<Ipv6Addr>().expect("test IPv6 address").octets()
}

impl PacketSpec {
    fn new(
        v4: Option<([u8; 4], [u8; 4])>,
        v6: Option<([u8; 16], [u8; 16])>,
        proto: IpNumber,
        payload: Vec<u8>,
    ) -> Self {
        PacketSpec {
            v4,
            v6,
            proto,
            payload,
            ttl: 64,
            tos: 0,
            ip_id: 0,
            flow_label: 0,
        }
    }
    pub fn ttl(mut self, ttl: u8) -> Self {
        self.ttl = ttl;
        self
    }
    /// The whole TOS / traffic-class byte (DSCP << 2 | ECN).
    pub fn tos(mut self, tos: u8) -> Self {
        self.tos = tos;
        self
    }
    pub fn ip_id(mut self, id: u16) -> Self {
        self.ip_id = id;
        self
    }
    pub fn flow_label(mut self, label: u32) -> Self {
        self.flow_label = label;
        self
    }

    /// The IP packet without a link header (LINKTYPE_RAW).
    pub fn raw(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(60 + self.payload.len());
        if let Some((src, dst)) = self.v4 {
            let mut h = Ipv4Header::new(self.payload.len() as u16, self.ttl, self.proto, src, dst)
                .expect("test payload fits");
            h.dscp = IpDscp::try_new(self.tos >> 2).expect("6 bits");
            h.identification = self.ip_id;
            h.write(&mut out).expect("write to vec");
        } else if let Some((src, dst)) = self.v6 {
            let h = Ipv6Header {
                traffic_class: self.tos,
                flow_label: Ipv6FlowLabel::try_new(self.flow_label & 0xfffff).expect("20 bits"),
                payload_length: self.payload.len() as u16,
                next_header: self.proto,
                hop_limit: self.ttl,
                source: src,
                destination: dst,
            };
            h.write(&mut out).expect("write to vec");
        }
        out.extend_from_slice(&self.payload);
        out
    }

    /// The packet in an Ethernet II frame (what a veth or `lo` capture holds).
    pub fn ethernet(&self) -> Vec<u8> {
        let mut out = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
        let ethertype: u16 = if self.v4.is_some() { 0x0800 } else { 0x86dd };
        out.extend_from_slice(&ethertype.to_be_bytes());
        out.extend_from_slice(&self.raw());
        out
    }
}
