//! Plain-language explanations: why a port got its verdict, which rule of RFC 9293 the
//! packets follow, and which firewall rule typically produces the pattern.
//!
//! The sections cited: §3.5 (establishing a connection: the three-way handshake and the
//! simultaneous open), §3.5.2 (reset generation), §3.10.7.1 (a segment arriving for a
//! CLOSED connection: a SYN is answered with RST), §3.8.3 (connection failures: the SYN is
//! retransmitted until the R2 threshold, then the attempt is abandoned).
//!
//! Pure: reads the verdict only. The rules name the port from `v.target`; IPv6 targets
//! get `ip6tables` and the `icmp6-*` reject types.

use std::net::IpAddr;

use super::words::{EvidenceWords, HopsCloser, Secs};
use synack_core::decode::IcmpKind;
use synack_core::exchange::{Dir, PacketKind, TracePacket};
use synack_core::verdict::{AfterProxy, Evidence, PortVerdict, Reason, Responder, State};

/// One or two sentences on why `v` is what it is, and how its attempts ended when they
/// disagree.
pub fn explain(v: &PortVerdict) -> String {
    let mut s = explain_verdict(v);
    if !v.outcomes.is_empty() {
        let clients: std::collections::BTreeSet<IpAddr> = v
            .trace
            .iter()
            .filter(|p| p.dir == Dir::Out)
            .map(|p| p.client)
            .collect();
        s.push_str(&format!(
            " Not every attempt ended this way: of {} attempts, {}.",
            v.attempts,
            super::words::OutcomesWords(&v.outcomes)
        ));
        if clients.len() > 1 {
            s.push_str(
                " The attempts came from different clients, so a rule that matches some \
                 clients (by source address, a rate limit) and not others gives this mix.",
            );
        }
    }
    s
}

fn explain_verdict(v: &PortVerdict) -> String {
    let port = v.target.port();
    if v.reason == Reason::SelfConnect {
        return format!(
            "connect() to {} from source port {port} met itself: its own SYN arrived as the \
             peer's SYN, a TCP simultaneous open (RFC 9293 §3.5), so the socket connected to \
             itself. Nothing listens on port {port}; synack reports it closed, not open.",
            v.target
        );
    }
    if !v.observed {
        return not_observed(v);
    }
    match (v.state, v.reason, v.responder) {
        (_, Reason::SynProxy, _) => syn_proxy(v),
        (_, Reason::Reset, Responder::Unknown)
            if v.has(|e| matches!(e, Evidence::Conflicting { .. })) =>
        {
            conflicting(v)
        }
        (_, Reason::Reset, Responder::Unknown) if v.has(|e| *e == Evidence::ForgedUnplaced) => {
            format!(
                "A firewall forged this RST (on the target or on the path): its fields differ from \
                 the stack's ({}), but this address answers from several hop distances (ports \
                 forwarded to other hosts, or a proxy), so its distance does not say which machine \
                 sent it. The port is filtered; whether anything listens behind the rule is \
                 unknown.",
                forged_signs(v)
            )
        }
        (_, Reason::AckImpliesSynAck, _) => one_sided(v),
        (State::Open, _, _) => format!(
            "The target answered the SYN with a SYN/ACK and the three-way handshake completed \
             (RFC 9293 §3.5): a program listens on port {port} and no firewall rule stops the \
             SYN."
        ),
        (_, Reason::Reset, Responder::Target) => {
            let mut marks = Vec::new();
            if v.has(|e| matches!(e, Evidence::RstReflectsDscp { .. })) {
                marks.push("reflects the probe's DSCP");
            }
            if v.has(|e| matches!(e, Evidence::RstFlowLabel { .. })) {
                marks.push("carries an IPv6 flow label");
            }
            if v.has(|e| matches!(e, Evidence::RstDscpRemarked { .. })) {
                marks.push(
                    "carries the probe's DSCP re-marked within its AF class, as a policer on the \
                     path does (netfilter's RST would carry 0)",
                );
            }
            if v.has(|e| {
                matches!(e, Evidence::RstDistance { ttl, target }
                    if synack_core::verdict::hops(*ttl) == target.hops)
            }) {
                marks.push("arrives with the TTL of the target's other packets");
            }
            let mut s = format!(
                "The target's own TCP stack answered the SYN with a RST: nothing listens on port \
                 {port}, and a port in the CLOSED state answers every SYN with a reset (RFC 9293 \
                 §3.10.7.1, §3.5.2)."
            );
            if !marks.is_empty() {
                s.push_str(&format!(
                    " It bears the Linux stack's marks (it {}), so no firewall rule sent it.",
                    join_and(&marks)
                ));
            }
            s
        }
        (_, Reason::Reset, Responder::TargetFirewall) => {
            let why = if v.has(|e| matches!(e, Evidence::RstFlowLabelZero { .. })) {
                "it has IPv6 flow label 0, while the target's stack sets one"
            } else if v.has(|e| matches!(e, Evidence::RstDscpNotReflected { .. })) {
                "it did not reflect the probe's DSCP, while the host's own stack reflects it"
            } else {
                "its header fields differ from the target's own stack's"
            };
            format!(
                "A firewall on the target host answered the SYN with a RST of its own ({why}), \
                 as {} does. It imitates a closed port's reset (RFC 9293 §3.5.2), but the port is \
                 filtered: whether anything listens behind the rule is unknown. A device on the \
                 path that forged the target's TTL as well would look exactly the same: the \
                 packets place the forger no nearer than the target.",
                rule(v, "INPUT", "REJECT --reject-with tcp-reset")
            )
        }
        (_, Reason::Reset, Responder::Middlebox) => {
            let who = match v.hops_closer() {
                Some(n) => format!("A device {} than the target", HopsCloser(n)),
                None => "A device on the path".to_string(),
            };
            format!(
                "{who} forged the RST with the target's address: its TTL shows it travelled fewer \
                 hops than the target's own packets, the mark of {} on a router. A closed port's \
                 reset (RFC 9293 §3.5.2) would come from the target itself; here the SYN was \
                 stopped on the path, so the port is filtered and its real state unknown.",
                rule(v, "FORWARD", "REJECT --reject-with tcp-reset")
            )
        }
        (_, Reason::Reset, _) => format!(
            "A RST answered the SYN, which is how a TCP stack answers for a closed port (RFC 9293 \
             §3.10.7.1), but nothing in this scan tells the stack's RST from one forged by {} \
             on the host or a router. Marking the SYNs with a DSCP, or scanning a known open port \
             of the same host, gives the baseline that tells them apart.",
            rule(v, "INPUT", "REJECT --reject-with tcp-reset")
        ),
        (_, Reason::NoResponse, _) => no_response(v),
        (_, Reason::Icmp(kind), _) => match deciding_icmp(v, kind) {
            Some(p) => icmp(v, p, kind),
            None => fallback(v),
        },
        _ => fallback(v),
    }
}

/// Why a RST is not the stack's, from its evidence: "it has IPv6 flow label 0, …".
fn forged_signs(v: &PortVerdict) -> String {
    let mut signs = Vec::new();
    if v.has(|e| matches!(e, Evidence::RstFlowLabelZero { .. })) {
        signs.push("it has IPv6 flow label 0 while the stack sets one");
    }
    if v.has(|e| matches!(e, Evidence::RstDscpNotReflected { .. })) {
        signs.push("it did not reflect the probe's DSCP while the stack's RSTs do");
    }
    if signs.is_empty() {
        signs.push("its header fields differ from the stack's");
    }
    join_and(&signs)
}

/// Strong signals on both sides: both are named, no sender is.
fn conflicting(v: &PortVerdict) -> String {
    let mut stack = Vec::new();
    if v.has(|e| matches!(e, Evidence::RstReflectsDscp { .. })) {
        stack.push("it reflects the probe's DSCP");
    }
    if v.has(|e| matches!(e, Evidence::RstDscpRemarked { .. })) {
        stack.push("its DSCP is the probe's re-marked within its AF class");
    }
    if v.has(|e| matches!(e, Evidence::RstFlowLabel { .. })) {
        stack.push("it carries an IPv6 flow label");
    }
    let mut forged = Vec::new();
    if v.has(|e| matches!(e, Evidence::RstFlowLabelZero { .. })) {
        forged.push("it has flow label 0 while the stack sets one");
    }
    if v.has(|e| matches!(e, Evidence::RstDscpNotReflected { .. })) {
        forged.push("it did not reflect the probe's DSCP");
    }
    if v.hops_closer().is_some() {
        forged.push("it travelled fewer hops than the target's packets");
    }
    format!(
        "A RST answered the SYN, but the evidence conflicts: for the target's own stack, {}; \
         for a RST forged by a firewall, {}. synack does not decide between them: the port \
         reads closed as a RST would make it, and who sent it is inconclusive.",
        join_and(&stack),
        join_and(&forged)
    )
}

/// A SYN proxy completed the handshake; what followed our ACK decides.
fn syn_proxy(v: &PortVerdict) -> String {
    let port = v.target.port();
    let place = match v.evidence.iter().find_map(|e| match e {
        Evidence::SynProxy { ttl, target } => Some((*ttl, *target)),
        _ => None,
    }) {
        Some((ttl, Some(t))) if synack_core::verdict::hops(ttl) < t.hops => format!(
            "a device {} than the target",
            HopsCloser(t.hops - synack_core::verdict::hops(ttl))
        ),
        Some((_, Some(_))) => "a proxy on the target host or just before it".to_string(),
        _ => "a proxy".to_string(),
    };
    let tables = tables(v);
    let first = format!(
        "The SYN/ACK came from {place}, not from a program: it offers window 0, as a SYN proxy \
         (`{tables} ... -j SYNPROXY`, or a DDoS scrubber) does while it checks the client \
         before opening a connection to the host itself. The handshake completing shows only \
         that the proxy answered (RFC 9293 §3.5)."
    );
    let after = v.evidence.iter().find_map(|e| match e {
        Evidence::AfterProxyAck(a) => Some(*a),
        _ => None,
    });
    let then = match after {
        Some(AfterProxy::Rst { .. }) => format!(
            "After our ACK the proxy connected to the host, whose stack answered with a RST: \
             nothing listens on port {port} (RFC 9293 §3.10.7.1), so the port is closed behind \
             the proxy."
        ),
        Some(AfterProxy::Accepted { .. }) => format!(
            "After our ACK the window opened: the host behind the proxy accepted the connection, \
             so a program listens on port {port}."
        ),
        _ => format!(
            "Nothing came after our ACK before synack closed the connection, so whether a \
             program listens on port {port} behind the proxy is unknown: the port is filtered."
        ),
    };
    format!("{first} {then}")
}

/// "a", "a and b", "a, b and c".
fn join_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn tables(v: &PortVerdict) -> &'static str {
    if v.target.is_ipv6() {
        "ip6tables"
    } else {
        "iptables"
    }
}

/// "`iptables -A INPUT -p tcp --dport 81 -j REJECT --reject-with tcp-reset`".
fn rule(v: &PortVerdict, chain: &str, target: &str) -> String {
    format!(
        "`{} -A {chain} -p tcp --dport {} -j {target}`",
        tables(v),
        v.target.port()
    )
}

/// Only the client's side of the connection was captured.
fn one_sided(v: &PortVerdict) -> String {
    let port = v.target.port();
    let data = v.evidence.iter().find_map(|e| match e {
        Evidence::ClientAckedServer { data, .. } => Some(*data),
        _ => None,
    });
    let sent = match data {
        Some(n) if n > 0 => format!(" and sent {n} bytes of data"),
        _ => String::new(),
    };
    format!(
        "Only the client's packets of this connection were captured. After its SYN the client \
         acknowledged the server's initial sequence number{sent}, which a TCP client can do only \
         after receiving the server's SYN/ACK (RFC 9293 §3.5): the handshake completed and port \
         {port} is open. The server's answers are missing from the capture (a mirror or tap of \
         one direction, asymmetric routing), not dropped by a firewall; who sent the SYN/ACK \
         cannot be told."
    )
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn no_response(v: &PortVerdict) -> String {
    let port = v.target.port();
    let syns: Vec<&TracePacket> = v
        .trace
        .iter()
        .filter(|p| p.dir == Dir::Out && p.flags().is_some_and(|f| f.is_syn_only()))
        .collect();
    let drop_rule = format!(
        "{} on the host, or the same rule in the FORWARD chain of a router on the path",
        rule(v, "INPUT", "DROP")
    );
    if syns.is_empty() {
        return format!(
            "Nothing answered and no packet of port {port} was captured, so synack cannot show \
             the SYNs; silence is what {drop_rule} produces, and what a host that is down \
             produces too."
        );
    }
    let retransmissions = syns.iter().filter(|p| p.retransmission).count();
    // Retries are a client's new attempts; another client's SYN is not a retry.
    let mut attempts: Vec<(IpAddr, u16)> =
        syns.iter().map(|p| (p.client, p.scanner_port)).collect();
    attempts.dedup();
    let mut clients: Vec<IpAddr> = attempts.iter().map(|a| a.0).collect();
    clients.sort_unstable();
    clients.dedup();
    let retries = attempts.len().saturating_sub(clients.len());
    let span = syns
        .last()
        .map_or(0, |p| p.ts.since(syns[0].ts))
        .max(v.trace.last().map_or(0, |p| p.ts.since(v.started)));
    let mut what = plural(syns.len(), "SYN", "SYNs");
    if span > 0 {
        what.push_str(&format!(" over {}", Secs(span)));
    }
    let mut extra = Vec::new();
    if retransmissions > 0 {
        extra.push(plural(
            retransmissions,
            "kernel retransmission",
            "kernel retransmissions",
        ));
    }
    if retries > 0 {
        extra.push(plural(
            retries,
            "retry from a new source port",
            "retries from new source ports",
        ));
    }
    if !extra.is_empty() {
        what.push_str(&format!(" ({})", extra.join(", ")));
    }
    let mut s = format!(
        "Nothing answered {what}: no SYN/ACK, RST or ICMP error came back, so the SYNs were \
         silently discarded, the signature of {drop_rule} (or of a host that is down)."
    );
    if retransmissions > 0 {
        s.push_str(
            " The kernel retransmits an unanswered SYN with the same sequence number and \
             source port until it gives up on the connection (RFC 9293 §3.8.3); those are the \
             retransmissions shown.",
        );
    }
    s
}

/// The ICMP error the verdict's reason names.
fn deciding_icmp(v: &PortVerdict, kind: IcmpKind) -> Option<&TracePacket> {
    v.trace
        .iter()
        .find(|p| p.dir == Dir::In && p.kind == PacketKind::Icmp(kind))
}

/// The `--reject-with` type that sends this ICMP error, as iptables/ip6tables name it.
fn reject_with(kind: IcmpKind) -> Option<&'static str> {
    Some(match (kind.v6, kind.icmp_type, kind.code) {
        (false, 3, 3) => "icmp-port-unreachable",
        (false, 3, 1) => "icmp-host-unreachable",
        (false, 3, 0) => "icmp-net-unreachable",
        (false, 3, 2) => "icmp-proto-unreachable",
        (false, 3, 9) => "icmp-net-prohibited",
        (false, 3, 10) => "icmp-host-prohibited",
        (false, 3, 13) => "icmp-admin-prohibited",
        (true, 1, 4) => "icmp6-port-unreachable",
        (true, 1, 3) => "icmp6-addr-unreachable",
        (true, 1, 0) => "icmp6-no-route",
        (true, 1, 1) => "icmp6-adm-prohibited",
        _ => return None,
    })
}

fn icmp(v: &PortVerdict, p: &TracePacket, kind: IcmpKind) -> String {
    let name = kind.name();
    let from_target = p.from == v.target.ip();
    let chain = if from_target { "INPUT" } else { "FORWARD" };
    let where_ = if from_target {
        String::new()
    } else {
        format!(" on {}", p.from)
    };
    let typical = match (name, reject_with(kind)) {
        ("port-unreach", Some(t)) => format!(
            "{}{where_} (plain REJECT sends {t})",
            rule(v, chain, "REJECT")
        ),
        (_, Some(t)) => format!(
            "{}{where_}",
            rule(v, chain, &format!("REJECT --reject-with {t}"))
        ),
        (_, None) => match name {
            "failed-policy" => {
                format!("an nftables rule `reject with icmpv6 type policy-fail`{where_}")
            }
            "reject-route" => format!(
                "a reject route, or an nftables rule `reject with icmpv6 type reject-route`\
                 {where_}"
            ),
            _ => format!(
                "the sender's own routing or policy{where_} (no REJECT option sends this code)"
            ),
        },
    };
    if from_target {
        let sent = if reject_with(kind).is_some() {
            format!("a firewall rule on the host sent it, typically {typical}")
        } else {
            "the host's firewall or routing policy sent it".to_string()
        };
        return format!(
            "The target itself answered the SYN with {kind}, but a TCP stack answers a SYN to a \
             closed port with RST (RFC 9293 §3.10.7.1), never with ICMP: {sent}. The port is \
             filtered; whether anything listens behind the rule is unknown."
        );
    }
    let mut s = format!(
        "{}, a router on the path rather than the target, answered the SYN with {kind} instead \
         of delivering it, typically because of {typical}.",
        p.from
    );
    match name {
        "host-unreach" => s.push_str(
            " Without any rule, a router sends this too when the target does not answer its \
             ARP or neighbour discovery (a host that is down).",
        ),
        "net-unreach" => s.push_str(
            " Without any rule, a router sends this too when it has no route to the target.",
        ),
        _ => s.push_str(" The target never saw the SYN, so the port's real state is unknown."),
    }
    s
}

fn not_observed(v: &PortVerdict) -> String {
    let port = v.target.port();
    let errno_only = "This verdict is connect()'s errno only: no captured packet shows the answer";
    let reported = v.evidence.iter().find_map(|e| match e {
        Evidence::IcmpReported { kind, from } => Some((*kind, *from)),
        _ => None,
    });
    if let Some((kind, from)) = reported {
        let who = if from == v.target.ip() {
            format!(
                "the target itself, {from}, whose TCP stack would have answered a SYN with a RST \
                 (RFC 9293 §3.10.7.1): a firewall rule on the host (such as `{} -A INPUT -p tcp \
                 --dport {port} -j REJECT`) sent it",
                tables(v)
            )
        } else {
            format!("{from}, not the target: a router or firewall on the way sent it")
        };
        return format!(
            "connect() failed, and the socket's error queue (IP_RECVERR) held the reason: {kind} \
             from {who}. No captured packet shows it, but the error queue \
             tells an ICMP answer from a RST and names its sender, which connect()'s errno alone \
             does not."
        );
    }
    match v.reason {
        Reason::SynAck => format!(
            "connect() succeeded, so something completed the handshake (RFC 9293 §3.5). {errno_only}, \
             so synack cannot show who answered: a proxy or a device answering on the target's \
             behalf looks the same as a program listening on port {port}."
        ),
        Reason::ConnRefused => format!(
            "connect() failed with ECONNREFUSED, which Linux returns both for a RST (a closed \
             port, RFC 9293 §3.10.7.1) and for an ICMP port-unreachable from a `-j REJECT` rule; \
             the socket's error queue (IP_RECVERR) held no ICMP error, so a RST answered. \
             {errno_only}, so synack cannot tell the target's stack from a `-j REJECT \
             --reject-with tcp-reset` rule, nor say who sent the RST."
        ),
        Reason::NoResponse => format!(
            "connect() timed out: nothing answered before the kernel gave up on the SYNs \
             (RFC 9293 §3.8.3). {errno_only}, so synack cannot show that the SYNs left this host \
             or how often they were retransmitted, nor tell a `-j DROP` rule from a host that is \
             down."
        ),
        Reason::HostUnreach | Reason::NetUnreach => format!(
            "connect() failed with {}: an ICMP error came back, or this host has no route to the \
             target. {errno_only}, so synack cannot say which device sent it or which code (a \
             down host and a `--reject-with icmp-host-prohibited` or `icmp-admin-prohibited` \
             rule give the same errno).",
            if v.reason == Reason::HostUnreach {
                "EHOSTUNREACH"
            } else {
                "ENETUNREACH"
            }
        ),
        Reason::ProtoUnreach => format!(
            "connect() failed with ENOPROTOOPT, the errno of an ICMP protocol-unreachable. \
             {errno_only}, so synack cannot say who sent it."
        ),
        Reason::LocalProhibited => format!(
            "connect() failed with EPERM or EACCES: a rule in this host's own OUTPUT chain (such \
             as `{} -A OUTPUT -p tcp --dport {port} -j DROP`) stopped the SYN before it left, so \
             the target was never asked. {errno_only}.",
            tables(v)
        ),
        _ => format!(
            "connect() reported {} ({}). {errno_only}, so synack cannot say what answered.",
            v.state, v.reason
        ),
    }
}

fn fallback(v: &PortVerdict) -> String {
    let sender: Option<IpAddr> = v
        .trace
        .iter()
        .rev()
        .find(|p| p.dir == Dir::In)
        .map(|p| p.from);
    let mut s = format!("{} ({})", v.state, v.reason);
    if let Some(from) = sender {
        s.push_str(&format!(", last answer from {from}"));
    }
    match v.evidence.first() {
        Some(e) => s.push_str(&format!(": {}.", EvidenceWords(e))),
        None => s.push('.'),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_read_as_prose() {
        assert_eq!(join_and(&[]), "");
        assert_eq!(join_and(&["a"]), "a");
        assert_eq!(join_and(&["a", "b"]), "a and b");
        assert_eq!(join_and(&["a", "b", "c"]), "a, b and c");
    }

    #[test]
    fn reject_types_as_iptables_names_them() {
        let kind = |v6, icmp_type, code| IcmpKind {
            v6,
            icmp_type,
            code,
        };
        assert_eq!(
            reject_with(kind(false, 3, 3)),
            Some("icmp-port-unreachable")
        );
        assert_eq!(
            reject_with(kind(false, 3, 13)),
            Some("icmp-admin-prohibited")
        );
        assert_eq!(reject_with(kind(true, 1, 1)), Some("icmp6-adm-prohibited"));
        assert_eq!(reject_with(kind(true, 1, 0)), Some("icmp6-no-route"));
        assert_eq!(
            reject_with(kind(true, 1, 3)),
            Some("icmp6-addr-unreachable")
        );
        // failed-policy: no REJECT option sends it.
        assert_eq!(reject_with(kind(true, 1, 5)), None);
        // Every named type is the one for its reason.
        for (v6, t, c) in [(false, 3, 3), (false, 3, 1), (true, 1, 4), (true, 1, 3)] {
            let k = kind(v6, t, c);
            let word = reject_with(k).unwrap();
            let stem = k.name().trim_end_matches("-unreach");
            assert!(word.contains(stem) || stem == "host", "{k:?}: {word}");
        }
    }
}
