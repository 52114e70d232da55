//! What nmap's formats (XML, grepable) read off a target's verdicts: the ports listed
//! and those collapsed into nmap's "extraports", the deciding packet's TTL and sender,
//! and the service name from nmap's table.

use std::collections::BTreeMap;
use std::net::IpAddr;

use synack_core::exchange::{Dir, PacketKind, TracePacket};
use synack_core::verdict::{PortVerdict, Reason, State};

/// A non-open state with more ports than this is collapsed, as nmap (and synack's
/// table) do.
pub const COLLAPSE_OVER: usize = 25;

/// A state collapsed into nmap's `extraports`: the state, its reasons with their
/// counts, and its port count.
pub type Extra = (State, Vec<(&'static str, usize)>, usize);

/// A target's ports as nmap writes them.
pub struct NmapPorts<'a> {
    pub extra: Vec<Extra>,
    /// Ports listed one by one, in port order.
    pub listed: Vec<&'a PortVerdict>,
}

pub fn split(verdicts: &[PortVerdict], show_all: bool) -> NmapPorts<'_> {
    let mut per_state: BTreeMap<&'static str, (State, BTreeMap<&'static str, usize>, usize)> =
        BTreeMap::new();
    for v in verdicts {
        let e = per_state
            .entry(v.state.as_str())
            .or_insert((v.state, BTreeMap::new(), 0));
        *e.1.entry(v.reason.name()).or_default() += 1;
        e.2 += 1;
    }
    let collapsed: Vec<State> = per_state
        .values()
        .filter(|(s, _, n)| !show_all && *s != State::Open && *n > COLLAPSE_OVER)
        .map(|(s, _, _)| *s)
        .collect();
    NmapPorts {
        extra: per_state
            .into_values()
            .filter(|(s, _, _)| collapsed.contains(s))
            .map(|(s, reasons, n)| (s, reasons.into_iter().collect(), n))
            .collect(),
        listed: verdicts
            .iter()
            .filter(|v| !collapsed.contains(&v.state))
            .collect(),
    }
}

/// The packet that decided the verdict: the SYN/ACK, the RST or the ICMP error.
pub fn deciding_packet(v: &PortVerdict) -> Option<&TracePacket> {
    let incoming = |pred: &dyn Fn(&TracePacket) -> bool| {
        v.trace.iter().rev().find(|p| p.dir == Dir::In && pred(p))
    };
    match v.reason {
        Reason::SynAck | Reason::SynProxy => v
            .trace
            .iter()
            .find(|p| p.dir == Dir::In && p.flags().is_some_and(|f| f.is_syn_ack())),
        Reason::Reset => incoming(&|p| p.flags().is_some_and(|f| f.rst())),
        Reason::Icmp(_) => incoming(&|p| matches!(p.kind, PacketKind::Icmp(_))),
        _ => None,
    }
}

/// nmap's `reason_ttl` (0 when no packet decided) and `reason_ip` (the sender when it is
/// not the target, as for an ICMP error from a router).
pub fn reason_ttl_ip(v: &PortVerdict) -> (u8, Option<IpAddr>) {
    match deciding_packet(v) {
        Some(p) => (p.ttl, (p.from != v.target.ip()).then_some(p.from)),
        None => (0, None),
    }
}

/// The service name nmap-services gives the port, "unknown" (as nmap says) for others.
pub fn service(port: u16) -> &'static str {
    synack_core::targets::service_name(port).unwrap_or("unknown")
}
