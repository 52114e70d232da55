//! Sinks: render finished results. The engine never prints; these never decide.

pub mod explain;
pub mod json;
pub mod ladder;
pub mod text;
pub mod words;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use synack_core::exchange::{Dir, PacketKind, TracePacket};
use synack_core::verdict::{PortVerdict, Reason, Responder, State};

/// Everything a finished scan or replay hands to a sink.
#[derive(Clone, Debug, Default)]
pub struct ScanReport {
    pub verdicts: Vec<PortVerdict>,
    /// Hostnames the user typed, by address.
    pub names: BTreeMap<IpAddr, String>,
    pub elapsed: Duration,
    /// Packets the kernel dropped before the capture read them (live only).
    pub capture_drops: u64,
    /// Whether packets were captured at all (false: unprivileged live scan).
    pub captured: bool,
    /// Ctrl-C ended the scan early: the verdicts are those found so far.
    pub interrupted: bool,
    /// Things the user must know (skipped packets, truncated files, capped windows).
    pub warnings: Vec<String>,
    /// What synack did beyond what was asked, and why (calibration probes).
    pub notes: Vec<String>,
}

impl ScanReport {
    pub fn count(&self, state: State) -> usize {
        self.verdicts.iter().filter(|v| v.state == state).count()
    }
}

/// "1.0s", "250ms", "0.4ms".
pub fn fmt_secs(nanos: u64) -> String {
    words::Secs(nanos).to_string()
}

/// The label of one packet: TCP flags, or the ICMP error's name ("ICMP port-unreach").
pub fn packet_label(p: &TracePacket) -> String {
    match p.kind {
        PacketKind::Tcp(f) => f.to_string(),
        PacketKind::Icmp(k) => k.to_string(),
    }
}

/// Per-target summary line: who answered how, e.g.
/// "198.18.2.1: 2 open · 1 closed by the host's stack · 1 reset by a firewall on the host ·
/// 1 reset by a device 1 hop closer (86) · 2 dropped · 1 rejected with ICMP by 198.18.1.254".
pub fn target_summary(ip: IpAddr, verdicts: &[&PortVerdict]) -> String {
    let mut parts: Vec<String> = Vec::new();
    // Labels in order of first appearance, each with its ports. Most labels are static,
    // so a full-range scan does not allocate one per port.
    let mut groups: Vec<(Cow<'static, str>, Vec<u16>)> = Vec::new();
    for v in verdicts {
        let label: Cow<'static, str> = match (v.state, v.reason, v.responder) {
            (State::Open, _, _) => "open".into(),
            (_, Reason::Reset, Responder::Target) => "closed by the host's stack".into(),
            (_, Reason::Reset, Responder::TargetFirewall) => {
                "reset by a firewall on the host".into()
            }
            (_, Reason::Reset, Responder::Middlebox) => match v.hops_closer() {
                Some(n) => format!("reset by a device {}", words::HopsCloser(n)).into(),
                None => "reset by a device on the path".into(),
            },
            (_, Reason::Reset, Responder::Unknown) => "reset (sender not attributed)".into(),
            (_, Reason::NoResponse, _) => "dropped".into(),
            (State::Filtered, _, _) if v.observed && !v.trace.is_empty() => {
                let from = v
                    .trace
                    .iter()
                    .rev()
                    .find(|p| matches!(p.kind, PacketKind::Icmp(_)))
                    .map(|p| p.from);
                match from {
                    Some(f) if f == ip => "rejected with ICMP by the host".into(),
                    Some(f) => format!("rejected with ICMP by {f}").into(),
                    None => v.reason.name().into(),
                }
            }
            (state, reason, _) => format!("{state} ({reason})").into(),
        };
        match groups.iter_mut().find(|(l, _)| *l == label) {
            Some((_, ports)) => ports.push(v.target.port()),
            None => groups.push((label, vec![v.target.port()])),
        }
    }
    for (label, ports) in &groups {
        let list = if label != "open" && ports.len() <= 4 && label.contains("device") {
            format!(
                " ({})",
                ports
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            String::new()
        };
        parts.push(format!("{} {label}{list}", ports.len()));
    }
    format!("{ip}: {}", parts.join(" · "))
}

/// Whether the packet is an outgoing SYN after the port's first one (a retransmission or
/// a retry from a new source port).
pub fn is_repeat_syn(p: &TracePacket, first: Option<&TracePacket>) -> bool {
    p.dir == Dir::Out
        && p.flags().is_some_and(|f| f.is_syn_only())
        && first.is_some_and(|f| !std::ptr::eq(f, p))
}

/// One `--live` line: "+12.3ms  198.18.2.1:81  ← RST/ACK  ttl 63" (the port is the
/// target's; ICMP errors are tagged with the port they quote).
pub fn live_line(offset_ns: u64, obs: &synack_core::decode::Observation, unicode: bool) -> String {
    use synack_core::decode::Observation;
    let (out, inn) = if unicode {
        ("→", "←")
    } else {
        ("->", "<-")
    };
    let ms = offset_ns as f64 / 1e6;
    match obs {
        Observation::Tcp(t) => {
            // The side with the lower port number is usually the service; a SYN without
            // ACK always goes to it.
            let to_service = t.flags.is_syn_only() || (t.dport < t.sport && !t.flags.is_syn_ack());
            let (svc, port, arrow) = if to_service {
                (t.ip.dst, t.dport, out)
            } else {
                (t.ip.src, t.sport, inn)
            };
            let target = std::net::SocketAddr::new(svc, port);
            format!(
                "+{ms:9.3}ms  {target:<22} {arrow} {:<8} ttl {:<3} seq {} ack {}",
                t.flags.to_string(),
                t.ip.ttl,
                t.seq,
                t.ack
            )
        }
        Observation::Icmp(e) => {
            let target = std::net::SocketAddr::new(e.quoted.dst, e.quoted.dport);
            format!(
                "+{ms:9.3}ms  {target:<22} {inn} {} from {} ttl {}",
                e.kind, e.ip.src, e.ip.ttl
            )
        }
    }
}
