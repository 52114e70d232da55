//! What a verdict says, as values: the reason (nmap's word for it), the evidence (facts
//! with their numbers) and notes (what the reader must know about the verdict itself).
//!
//! Nothing here is a sentence. The report (the `synack` crate's `report::words`) turns
//! these into words, so every sink — table, ladder, `--explain`, JSON, nmap XML — reads
//! the same facts instead of parsing each other's text.

use std::fmt;
use std::net::IpAddr;

use crate::decode::IcmpKind;

/// Why a port has its state, in nmap's vocabulary where nmap has a word for it
/// (`--reason`: syn-ack, reset, no-response, conn-refused, port-unreach, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// A SYN/ACK answered the SYN, or connect() succeeded.
    SynAck,
    /// A RST answered the SYN.
    Reset,
    /// Nothing answered the SYNs (or connect() timed out).
    NoResponse,
    /// An ICMP or ICMPv6 error that ends a connection attempt answered the SYN.
    Icmp(IcmpKind),
    /// connect() from the target port to the target port met itself (simultaneous open).
    SelfConnect,
    /// connect() failed with ECONNREFUSED and no packet showed why.
    ConnRefused,
    /// connect() failed with EHOSTUNREACH and no packet showed why.
    HostUnreach,
    /// connect() failed with ENETUNREACH and no packet showed why.
    NetUnreach,
    /// connect() failed with ENOPROTOOPT and no packet showed why.
    ProtoUnreach,
    /// connect() failed with EPERM or EACCES: a rule on this host stopped the SYN.
    LocalProhibited,
    /// connect() failed with another errno.
    Error,
}

impl Reason {
    /// The reason's name: nmap's where nmap has one (also the JSON value).
    pub fn name(self) -> &'static str {
        match self {
            Reason::SynAck => "syn-ack",
            Reason::Reset => "reset",
            Reason::NoResponse => "no-response",
            Reason::Icmp(kind) => kind.name(),
            Reason::SelfConnect => "self-connect",
            Reason::ConnRefused => "conn-refused",
            Reason::HostUnreach => "host-unreach",
            Reason::NetUnreach => "net-unreach",
            Reason::ProtoUnreach => "proto-unreach",
            Reason::LocalProhibited => "local-prohibited",
            Reason::Error => "error",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kind of packet the target's stack alone sends, which gave a target's hop distance.
/// Ordered most telling first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum StackPacket {
    #[default]
    SynAcks,
    DscpReflectingRsts,
    IcmpErrors,
}

/// The hop distance of the target's own packets, as the baseline measured it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TargetDistance {
    pub hops: u8,
    /// The TTL (hop limit) those packets arrived with.
    pub ttl: u8,
    pub from: StackPacket,
}

/// One fact behind a verdict, with its numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Evidence {
    /// A SYN/ACK answered: the handshake completes (RFC 9293 §3.5).
    SynAck { from: IpAddr, ttl: u8 },
    /// A RST's TTL against the target's own packets' (nearer, same, farther).
    RstDistance { ttl: u8, target: TargetDistance },
    /// The RST carries the DSCP the probe was marked with, as Linux's stack reflects it.
    RstReflectsDscp { probe: u8 },
    /// The RST does not carry the probe's DSCP, while another RST of the target did.
    RstDscpNotReflected {
        probe: u8,
        rst: u8,
        reflected_on_port: u16,
    },
    /// The RST does not carry the probe's DSCP, and no RST of the target did.
    RstDscpInconclusive { probe: u8 },
    /// The RST has IPv6 flow label 0, while the target's stack set one elsewhere.
    RstFlowLabelZero { stack_port: u16, stack_label: u32 },
    /// The RST carries an IPv6 flow label, as Linux's stack sets.
    RstFlowLabel { label: u32 },
    /// The conclusion when the RST's fields show a forgery made on the target host.
    ForgedOnTargetHost,
    /// Nothing from this target to compare the RST with.
    NoBaseline,
    /// An ICMP error from the target's own address (a firewall rule on the host).
    IcmpFromTarget { kind: IcmpKind, ttl: u8 },
    /// An ICMP error from another address on the path.
    IcmpFromPath {
        kind: IcmpKind,
        from: IpAddr,
        ttl: u8,
    },
    /// The SYNs sent, over how long, and nothing came back.
    NoAnswer { syns: u32, span_ns: u64 },
    /// connect() to the port from the same port met itself (the target's address and
    /// port, kept apart so the fact stays 24 bytes).
    SelfConnect { ip: IpAddr, port: u16 },
}

impl Evidence {
    /// How many hops nearer than the target a RST was sent, when it was.
    pub fn hops_closer(&self) -> Option<u8> {
        match self {
            Evidence::RstDistance { ttl, target } if hops(*ttl) < target.hops => {
                Some(target.hops - hops(*ttl))
            }
            _ => None,
        }
    }
}

/// Something the reader must know about the verdict itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Note {
    /// connect() heard an answer the capture does not show; the kernel dropped `drops`
    /// packets before the capture read them.
    AnswerNotCaptured { drops: u64 },
    /// connect() heard an answer, but the correlator had stopped keeping attempts (its
    /// memory bound of `limit` attempts): the packets may have been captured, not kept.
    AnswerNotKept { limit: usize },
    /// The prober made attempts at this port, but the capture saw none of its packets.
    NoPacketsCaptured,
}

/// Hop distance from a received TTL, assuming the sender started from the nearest usual
/// initial value at or above it (64, 128 or 255).
pub fn hops(ttl: u8) -> u8 {
    let initial: u16 = match ttl {
        0..=64 => 64,
        65..=128 => 128,
        _ => 255,
    };
    (initial - ttl as u16) as u8
}

#[cfg(test)]
mod tests {
    /// A full-range scan holds 65,535 verdicts with two or three facts each.
    #[test]
    fn facts_stay_small() {
        assert!(std::mem::size_of::<super::Evidence>() <= 24);
        assert!(std::mem::size_of::<super::Reason>() <= 4);
        assert!(std::mem::size_of::<super::Note>() <= 16);
    }
}
