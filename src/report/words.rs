//! The words for the verdict's facts. The core decides with values ([`Evidence`],
//! [`Note`], [`Reason`]); every sentence a user reads about them is written here, once,
//! so the table, `--explain`, the ladder, the summaries and JSON say the same thing.
//!
//! The `Display` wrappers write straight into the output (no `String` per port).

use std::fmt;

use synack_core::verdict::{
    AfterProxy, Evidence, Note, Outcome, Reason, Responder, StackPacket, hops,
};

/// An evidence fact as the one line shown under a table row and in JSON.
pub struct EvidenceWords<'a>(pub &'a Evidence);

impl fmt::Display for EvidenceWords<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self.0 {
            Evidence::SynAck { from, ttl } => write!(
                f,
                "SYN/ACK from {from} (ttl {ttl}): the handshake completes (RFC 9293 §3.5)"
            ),
            Evidence::RstDistance { ttl, target } => {
                let rst_hops = hops(ttl);
                let kind = stack_packets(target.from);
                if rst_hops < target.hops {
                    let closer = target.hops - rst_hops;
                    write!(
                        f,
                        "RST ttl {ttl} ({}), target's {kind} arrive with ttl {} ({}): sent {}",
                        OnTheWay(rst_hops),
                        target.ttl,
                        OnTheWay(target.hops),
                        HopsCloser(closer)
                    )
                } else if rst_hops == target.hops {
                    write!(
                        f,
                        "RST ttl {ttl} matches the target's {kind} ({})",
                        OnTheWay(target.hops)
                    )
                } else {
                    write!(
                        f,
                        "RST ttl {ttl} is {} hop(s) farther than the target's {kind}: asymmetric route or a different initial TTL",
                        rst_hops - target.hops
                    )
                }
            }
            Evidence::RstReflectsDscp { probe } => write!(
                f,
                "RST reflects the probe's DSCP {}, as the Linux TCP stack does",
                Dscp(probe)
            ),
            Evidence::RstDscpNotReflected {
                probe,
                rst,
                reflected_on_port,
            } => write!(
                f,
                "probe DSCP {} not reflected (RST has {}), while the stack's RST on port {reflected_on_port} reflected it",
                Dscp(probe),
                Dscp(rst)
            ),
            Evidence::RstDscpInconclusive { probe } => write!(
                f,
                "probe DSCP {} not reflected, but no RST from this target reflected it either: inconclusive (the path may clear DSCP)",
                Dscp(probe)
            ),
            Evidence::RstFlowLabelZero {
                stack_port,
                stack_label,
            } => write!(
                f,
                "RST has flow label 0, while the target's stack set one (0x{stack_label:05x} on port {stack_port})"
            ),
            Evidence::RstFlowLabel { label } => write!(
                f,
                "RST carries flow label 0x{label:05x}, as the Linux stack sets"
            ),
            Evidence::ForgedOnTargetHost => f.write_str(
                "a RST forged by a firewall at the target's distance: most likely on the target host (`iptables -j REJECT --reject-with tcp-reset`), or on the path by a device that forges the target's TTL too",
            ),
            Evidence::RstDscpRemarked { probe, rst } => write!(
                f,
                "RST has {} where the probe had {}: the stack's reflected mark, re-marked within its AF class by a policer on the path (RFC 2597); netfilter's RST would have 0",
                Dscp(rst),
                Dscp(probe)
            ),
            Evidence::RstDscpChanged { probe, rst } => write!(
                f,
                "RST has {} where the probe had {}: the path rewrote DSCP, which then says nothing about the sender",
                Dscp(rst),
                Dscp(probe)
            ),
            Evidence::PathRemarksDscp { port, dscp } => write!(
                f,
                "but the path re-marks DSCP (the RST on port {port} arrived with {}), so a DSCP 0 may be the path's too: a weak sign",
                Dscp(dscp)
            ),
            Evidence::ForgedUnplaced => f.write_str(
                "a firewall forged this RST (on the target or on the path): its hop distance does not place the sender",
            ),
            Evidence::Conflicting { stack, forged } => write!(
                f,
                "inconclusive: the signals for the target's stack (weight {stack}) and for a forged RST (weight {forged}) conflict"
            ),
            Evidence::SeveralAnswerers {
                near_hops,
                far_hops,
            } => write!(
                f,
                "this address answers from several distances ({} and {}): ports forwarded to other hosts or a proxy; each answer is compared with the answerer at its own distance",
                OnTheWay(near_hops),
                OnTheWay(far_hops)
            ),
            Evidence::SynProxy { ttl, target } => {
                write!(
                    f,
                    "SYN/ACK with window 0 (ttl {ttl}): a SYN proxy's, not a TCP stack's, which offers its receive window"
                )?;
                match target {
                    Some(t) if hops(ttl) < t.hops => write!(
                        f,
                        "; sent {} than the target's {} (a proxy on the path)",
                        HopsCloser(t.hops - hops(ttl)),
                        stack_packets(t.from)
                    ),
                    Some(t) if hops(ttl) == t.hops => write!(
                        f,
                        "; at the distance of the target's {} (a proxy on the host, or just before it)",
                        stack_packets(t.from)
                    ),
                    _ => Ok(()),
                }
            }
            Evidence::AfterProxyAck(after) => match after {
                AfterProxy::Rst { ttl } => write!(
                    f,
                    "after our ACK a RST (ttl {ttl}): the proxy's SYN to the host met a closed port"
                ),
                AfterProxy::Accepted { win } => write!(
                    f,
                    "after our ACK the window opened ({win}): the host behind the proxy accepted the connection"
                ),
                AfterProxy::Nothing => f.write_str(
                    "nothing after our ACK: the proxy hides whether a program listens behind it",
                ),
            },
            Evidence::ClientAckedServer { ack, data } => {
                write!(
                    f,
                    "no answer captured, but the client acknowledged the server's sequence number {} ",
                    ack.wrapping_sub(1)
                )?;
                if data > 0 {
                    write!(f, "and sent {data} bytes of data")?;
                } else {
                    f.write_str("(ACK)")?;
                }
                f.write_str(
                    ": only a SYN/ACK tells a client that number (RFC 9293 §3.5), so the handshake completed and the server's direction was not captured",
                )
            }
            Evidence::NoBaseline => {
                f.write_str("no baseline from this target to tell its stack from a firewall")
            }
            Evidence::IcmpFromTarget { kind, ttl } => write!(
                f,
                "{kind} from the target itself (ttl {ttl}): its TCP stack would answer a SYN with RST (RFC 9293 §3.10.7.1), so a firewall rule on the host sent this"
            ),
            Evidence::IcmpFromPath { kind, from, ttl } => write!(
                f,
                "{kind} from {from}, not the target (ttl {ttl}: {})",
                OnTheWay(hops(ttl))
            ),
            Evidence::IcmpReported { kind, from } => {
                write!(
                    f,
                    "{kind} from {from}, read from the socket's error queue (IP_RECVERR), not from a captured packet"
                )?;
                if kind.is_port_unreach() {
                    // ECONNREFUSED answers both.
                    f.write_str(": a firewall's answer, not a RST, though connect() says \"connection refused\" to both")?;
                }
                Ok(())
            }
            Evidence::NoAnswer { syns, span_ns } => write!(
                f,
                "{syns} SYN{} over {}, no answer",
                if syns == 1 { "" } else { "s" },
                Secs(span_ns)
            ),
            Evidence::AnsweredOnSlowRetry { unanswered } => write!(
                f,
                "answered only when re-probed slower: the first {unanswered} attempt{} went unanswered while this target answered other ports with ICMP errors (ICMP rate limiting)",
                if unanswered == 1 { "" } else { "s" }
            ),
            Evidence::NoNeighbourReply { target } => write!(
                f,
                "no {} reply: the scanner's own stack gave up resolving {target} (no packet left this host)",
                if target.is_ipv6() { "ND" } else { "ARP" }
            ),
            Evidence::SelfConnect { ip, port } => write!(
                f,
                "connect() to {} from source port {port} met itself (TCP simultaneous open): not a listener",
                std::net::SocketAddr::new(ip, port)
            ),
        }
    }
}

/// A verdict's note, as shown after "note:" under its row and in JSON.
pub struct NoteWords<'a>(pub &'a Note);

impl fmt::Display for NoteWords<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self.0 {
            Note::AnswerNotCaptured { drops: 0 } => {
                f.write_str("the answer was not captured; verdict from connect()")
            }
            Note::AnswerNotCaptured { drops } => write!(
                f,
                "the answer was not captured ({drops} packets dropped by the kernel); verdict from connect()"
            ),
            Note::AnswerNotKept { limit } => write!(
                f,
                "the answer's packets were not kept (the correlator keeps at most {limit} attempts); verdict from connect()"
            ),
            Note::NoPacketsCaptured => f.write_str("no packets of this port were captured"),
            Note::MaybeSuppressedReject => f.write_str(
                "no answer; this target rate-limits its ICMP errors, so this may be a REJECT whose error was suppressed",
            ),
        }
    }
}

/// One outcome of a port's attempts: "45 SYN/ACK", "5 reset by a firewall on the host".
pub struct OutcomeWords<'a>(pub &'a Outcome);

impl fmt::Display for OutcomeWords<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.0;
        write!(f, "{} ", o.count)?;
        match (o.reason, o.responder) {
            (Reason::SynAck, _) => f.write_str("SYN/ACK"),
            (Reason::AckImpliesSynAck, _) => {
                f.write_str("ACKed a SYN/ACK the capture does not hold")
            }
            (Reason::SynProxy, _) => f.write_str("answered by a SYN proxy"),
            (Reason::Reset, Responder::Target) => f.write_str("reset by the host's stack"),
            (Reason::Reset, Responder::TargetFirewall) => {
                f.write_str("reset by a firewall on the host")
            }
            (Reason::Reset, Responder::Middlebox) => f.write_str("reset by a device on the path"),
            (Reason::Reset, Responder::Unknown) => f.write_str("reset (sender not attributed)"),
            (Reason::NoResponse, _) => f.write_str("unanswered"),
            (reason, _) => f.write_str(reason.name()),
        }
    }
}

/// A port's outcomes as one phrase: "45 SYN/ACK, 5 reset by a firewall on the host".
pub struct OutcomesWords<'a>(pub &'a [Outcome]);

impl fmt::Display for OutcomesWords<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, o) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            OutcomeWords(o).fmt(f)?;
        }
        Ok(())
    }
}

/// What packets a target's hop distance was measured on: "SYN/ACKs", "ICMP errors", …
pub fn stack_packets(kind: StackPacket) -> &'static str {
    match kind {
        StackPacket::SynAcks => "SYN/ACKs",
        StackPacket::DscpReflectingRsts => "DSCP-reflecting RSTs",
        StackPacket::IcmpErrors => "ICMP errors",
        StackPacket::MarkedRsts => "flow-labelled or re-marked RSTs",
    }
}

/// "no router on the way", "1 router on the way", "3 routers on the way".
pub struct OnTheWay(pub u8);

impl fmt::Display for OnTheWay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("no router on the way"),
            1 => f.write_str("1 router on the way"),
            n => write!(f, "{n} routers on the way"),
        }
    }
}

/// "1 hop closer", "2 hops closer".
pub struct HopsCloser(pub u8);

impl fmt::Display for HopsCloser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        write!(f, "{n} hop{} closer", if n == 1 { "" } else { "s" })
    }
}

/// DSCP names as RFC 2474 / RFC 2597 / RFC 3246 give them: "CS0 (0)", "AF11", "EF".
pub struct Dscp(pub u8);

impl fmt::Display for Dscp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("CS0 (0)"),
            46 => f.write_str("EF"),
            d if d % 8 == 0 && d <= 56 => write!(f, "CS{}", d / 8),
            d if d % 2 == 0 && (10..=38).contains(&d) && (1..=3).contains(&((d % 8) / 2)) => {
                write!(f, "AF{}{}", d / 8, (d % 8) / 2)
            }
            d => write!(f, "DSCP {d}"),
        }
    }
}

/// A duration in nanoseconds: "1.0s", "250ms", "0.4ms".
pub struct Secs(pub u64);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0;
        if nanos >= 1_000_000_000 {
            write!(f, "{:.1}s", nanos as f64 / 1e9)
        } else if nanos >= 10_000_000 {
            write!(f, "{}ms", nanos / 1_000_000)
        } else {
            write!(f, "{:.1}ms", nanos as f64 / 1e6)
        }
    }
}

/// Run note: why a port that was not asked for was probed.
pub fn calibration_probed(target: std::net::SocketAddr) -> String {
    format!(
        "{}: no RST among the scanned ports reflected the probe's DSCP, so port {} (not requested, expected closed) was probed to see how the host's own stack answers",
        target.ip(),
        target.port()
    )
}

/// Run note: what the calibration probe's port answered, with its first fact.
pub fn calibration_answered(v: &synack_core::verdict::PortVerdict) -> String {
    let first = v
        .evidence
        .first()
        .map(|e| format!(": {}", EvidenceWords(e)))
        .unwrap_or_default();
    format!(
        "calibration probe {} answered {} ({}){first}",
        v.target, v.state, v.reason
    )
}

/// Run warning: Ctrl-C came while hosts were still being discovered.
pub fn discovery_interrupted(undecided: usize, total: usize) -> String {
    format!(
        "interrupted during host discovery: {undecided} of {total} hosts were not decided (neither up nor down) and are not reported"
    )
}

/// The end of run's words for ports the network held back: "10 ports changed verdict on
/// retry (ICMP rate limiting), 134 silent ports may be REJECTs whose ICMP error was
/// suppressed"; None when there were none.
pub fn held_back(changed: usize, maybe: usize) -> Option<String> {
    let ports = |n: usize| if n == 1 { "port" } else { "ports" };
    let changed_words = format!(
        "{changed} {} changed verdict on retry (ICMP rate limiting)",
        ports(changed)
    );
    let maybe_words = format!(
        "{maybe} silent {} may be REJECTs whose ICMP error was suppressed",
        ports(maybe)
    );
    match (changed, maybe) {
        (0, 0) => None,
        (_, 0) => Some(changed_words),
        (0, _) => Some(maybe_words),
        _ => Some(format!("{changed_words}, {maybe_words}")),
    }
}

/// Why a host is down when nothing answered its link-layer address requests: "no ARP
/// reply: the scanner's own stack got no answer for 198.18.1.77 on the directly
/// connected network (no probe left this host)".
pub struct NoNeighbourDown(pub std::net::IpAddr);

impl fmt::Display for NoNeighbourDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no {} reply: the scanner's own stack got no answer for {} on the directly connected network (no probe left this host)",
            if self.0.is_ipv6() { "ND" } else { "ARP" },
            self.0
        )
    }
}

/// Run warning: the correlator's memory bound was reached.
pub fn attempts_not_kept(not_kept: u64, limit: usize) -> String {
    format!(
        "{not_kept} connection attempts were not kept: {limit} were in flight at once (memory bound); their ports' verdicts use the attempts kept"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use synack_core::decode::IcmpKind;
    use synack_core::verdict::TargetDistance;

    fn said(e: Evidence) -> String {
        EvidenceWords(&e).to_string()
    }

    #[test]
    fn dscp_names() {
        let names: Vec<String> = [0, 8, 10, 12, 14, 18, 34, 38, 46, 48, 56, 1, 11, 62]
            .iter()
            .map(|&d| Dscp(d).to_string())
            .collect();
        assert_eq!(
            names,
            [
                "CS0 (0)", "CS1", "AF11", "AF12", "AF13", "AF21", "AF41", "AF43", "EF", "CS6",
                "CS7", "DSCP 1", "DSCP 11", "DSCP 62"
            ]
        );
    }

    #[test]
    fn rst_distance_reads_nearer_same_or_farther() {
        let target = TargetDistance {
            hops: 1,
            ttl: 63,
            from: StackPacket::SynAcks,
        };
        assert_eq!(
            said(Evidence::RstDistance { ttl: 64, target }),
            "RST ttl 64 (no router on the way), target's SYN/ACKs arrive with ttl 63 (1 router on the way): sent 1 hop closer"
        );
        assert_eq!(
            said(Evidence::RstDistance { ttl: 63, target }),
            "RST ttl 63 matches the target's SYN/ACKs (1 router on the way)"
        );
        assert_eq!(
            said(Evidence::RstDistance { ttl: 60, target }),
            "RST ttl 60 is 3 hop(s) farther than the target's SYN/ACKs: asymmetric route or a different initial TTL"
        );
        let far = TargetDistance {
            hops: 5,
            ttl: 59,
            from: StackPacket::IcmpErrors,
        };
        assert!(
            said(Evidence::RstDistance {
                ttl: 64,
                target: far
            })
            .ends_with("sent 5 hops closer")
        );
    }

    #[test]
    fn icmp_and_silence() {
        let kind = IcmpKind {
            v6: false,
            icmp_type: 3,
            code: 13,
        };
        let from: IpAddr = "198.18.1.254".parse().unwrap();
        assert_eq!(
            said(Evidence::IcmpFromPath {
                kind,
                from,
                ttl: 64
            }),
            "ICMP admin-prohibited from 198.18.1.254, not the target (ttl 64: no router on the way)"
        );
        assert_eq!(
            said(Evidence::NoAnswer {
                syns: 2,
                span_ns: 1_000_000_000
            }),
            "2 SYNs over 1.0s, no answer"
        );
        assert_eq!(
            said(Evidence::NoAnswer {
                syns: 1,
                span_ns: 400_000
            }),
            "1 SYN over 0.4ms, no answer"
        );
    }

    #[test]
    fn proxies_and_path_re_marking() {
        let target = TargetDistance {
            hops: 1,
            ttl: 63,
            from: StackPacket::SynAcks,
        };
        assert_eq!(
            said(Evidence::SynProxy {
                ttl: 64,
                target: Some(target)
            }),
            "SYN/ACK with window 0 (ttl 64): a SYN proxy's, not a TCP stack's, which offers its receive window; sent 1 hop closer than the target's SYN/ACKs (a proxy on the path)"
        );
        assert!(
            said(Evidence::RstDscpRemarked { probe: 10, rst: 12 })
                .starts_with("RST has AF12 where the probe had AF11")
        );
        assert!(said(Evidence::ForgedUnplaced).contains("(on the target or on the path)"));
    }

    #[test]
    fn notes() {
        assert_eq!(
            NoteWords(&Note::AnswerNotCaptured { drops: 3 }).to_string(),
            "the answer was not captured (3 packets dropped by the kernel); verdict from connect()"
        );
        assert!(
            NoteWords(&Note::AnswerNotKept { limit: 1 << 20 })
                .to_string()
                .contains("1048576 attempts")
        );
    }
}
