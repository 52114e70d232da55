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
    /// A SYN proxy (iptables `SYNPROXY`, a DDoS scrubber) completed the handshake in the
    /// host's name; what came after our ACK (the real stack's RST, or its window) decides.
    /// nmap has no word for it.
    SynProxy,
    /// No answer was captured, but the client acknowledged the server's initial sequence
    /// number, which it can only have learnt from a SYN/ACK (RFC 9293 §3.5): the handshake
    /// completed, and the server's direction is missing from the capture (one-sided
    /// captures: a mirror of one direction, asymmetric routing). nmap has no word for it.
    AckImpliesSynAck,
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
            Reason::SynProxy => "syn-proxy",
            Reason::AckImpliesSynAck => "ack-implies-syn-ack",
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
    /// IPv6 RSTs carrying a flow label (or a DSCP re-marked within the probe's AF class),
    /// when no SYN/ACK or reflecting RST came from that distance.
    MarkedRsts,
}

/// The hop distance of the target's own packets, as the baseline measured it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TargetDistance {
    pub hops: u8,
    /// The TTL (hop limit) those packets arrived with.
    pub ttl: u8,
    pub from: StackPacket,
}

/// What followed our ACK after a SYN proxy's SYN/ACK: the real stack's answer, once the
/// proxy opened the connection to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AfterProxy {
    /// A RST: the proxy's SYN to the host met a closed port (or a firewall behind it).
    Rst { ttl: u8 },
    /// An ACK opening the window (or data): the host accepted the proxy's connection.
    Accepted { win: u16 },
    /// Nothing before the connection was closed: the proxy hides whether a program listens.
    Nothing,
}

/// How a RST's DSCP compares with the DSCP its SYN was marked with (RFC 2474, RFC 2597).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DscpMatch {
    /// The same: Linux's stack copies the SYN's DSCP into its RST.
    Reflected,
    /// Same AF class, higher drop precedence (AF11 → AF12/AF13): the stack's reflected
    /// mark, re-marked by an RFC 2597 policer on the way back.
    RemarkedInClass,
    /// 0: what netfilter's REJECT sends, and what a path that clears DSCP leaves.
    Zero,
    /// Any other value: the path rewrote it; it shows nothing about the sender.
    Other,
}

impl DscpMatch {
    /// Classifies a RST's DSCP against the probe's (both non-zero DSCP values, 0..=63).
    pub fn of(probe: u8, rst: u8) -> DscpMatch {
        let af = |d: u8| {
            (10..=38).contains(&d) && d.is_multiple_of(2) && (1..=3).contains(&((d % 8) / 2))
        };
        if rst == probe {
            DscpMatch::Reflected
        } else if rst == 0 {
            DscpMatch::Zero
        } else if af(probe) && af(rst) && probe / 8 == rst / 8 && rst > probe {
            DscpMatch::RemarkedInClass
        } else {
            DscpMatch::Other
        }
    }
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
    /// The RST's DSCP is the probe's, re-marked within its AF class (RFC 2597 policer).
    RstDscpRemarked { probe: u8, rst: u8 },
    /// The RST's DSCP is neither the probe's, nor 0, nor in its AF class: the path
    /// rewrote it.
    RstDscpChanged { probe: u8, rst: u8 },
    /// The target's path was seen re-marking DSCP (on `port`), so a DSCP 0 here may be
    /// the path's too: that signal is weak.
    PathRemarksDscp { port: u16, dscp: u8 },
    /// The conclusion when the RST's fields show a forgery but its hop distance cannot
    /// place the sender: the address answers from several distances, or none to compare.
    ForgedUnplaced,
    /// Signals for the stack and for a forgery, both strong: no conclusion (weights as
    /// docs/verdicts.md gives them).
    Conflicting { stack: u8, forged: u8 },
    /// The address answers from several hop distances (ports forwarded to other hosts, a
    /// proxy): each answer is compared with the answerer at its own distance.
    SeveralAnswerers { near_hops: u8, far_hops: u8 },
    /// A SYN/ACK with window 0 (ttl): a SYN proxy's, not a TCP stack's; `target` is the
    /// distance of the target's own packets when known.
    SynProxy {
        ttl: u8,
        target: Option<TargetDistance>,
    },
    /// What followed our ACK after the proxy's SYN/ACK.
    AfterProxyAck(AfterProxy),
    /// Nothing from this target to compare the RST with.
    NoBaseline,
    /// No answer captured, yet the client acknowledged `ack` (the server's ISN + 1) and
    /// sent `data` payload bytes: it received a SYN/ACK the capture does not hold.
    ClientAckedServer { ack: u32, data: u32 },
    /// An ICMP error from the target's own address (a firewall rule on the host).
    IcmpFromTarget { kind: IcmpKind, ttl: u8 },
    /// An ICMP error from another address on the path.
    IcmpFromPath {
        kind: IcmpKind,
        from: IpAddr,
        ttl: u8,
    },
    /// An ICMP error the socket's error queue reported (IP_RECVERR), with its sender: what
    /// connect() alone knows of an ICMP answer when nothing was captured.
    IcmpReported { kind: IcmpKind, from: IpAddr },
    /// The SYNs sent, over how long, and nothing came back.
    NoAnswer { syns: u32, span_ns: u64 },
    /// connect() to the port from the same port met itself (the target's address and
    /// port, kept apart so the fact stays 24 bytes).
    SelfConnect { ip: IpAddr, port: u16 },
    /// The first `unanswered` attempts got no answer at full speed; an attempt re-probed
    /// slower (after the target answered other ports with ICMP errors) was answered:
    /// the earlier silence was the network holding back (ICMP rate limiting, drops).
    AnsweredOnSlowRetry { unanswered: u32 },
    /// The scanner's own stack gave up resolving `target`'s link-layer address (no ARP
    /// or ND reply on a directly connected network) and failed connect() with
    /// host-unreach itself: no packet left this host.
    NoNeighbourReply { target: IpAddr },
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
    /// No answer, on a target that was seen rate-limiting its ICMP errors (a port silent
    /// at full speed answered with ICMP when re-probed slower): the silence may be a
    /// REJECT whose error was suppressed, not a DROP.
    MaybeSuppressedReject,
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
