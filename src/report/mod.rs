//! Sinks: render finished results. The engine never prints; these never decide.
//!
//! A run streams: each target's verdicts reach the [`Sink`] as soon as the target is
//! final ([`TargetReport`]), then the totals once ([`RunSummary`]). [`ScanReport`] holds
//! a whole run at once, for tests, the fuzzer and small embedded uses; it is written
//! through the same sinks.

pub mod connections;
pub mod explain;
pub mod grepable;
pub mod json;
pub mod json_port;
pub mod ladder;
pub mod nmap_view;
pub mod run;
pub mod text;
pub mod words;
pub mod xml;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use synack_core::exchange::{Dir, PacketKind, TracePacket};
use synack_core::verdict::{
    ConnectionVerdict, Evidence, Note, PortVerdict, Reason, Responder, State,
};

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

    /// Writes the whole report through `sink`: targets in address order, then the totals.
    pub fn write_to(&self, sink: &mut dyn Sink) -> io::Result<()> {
        let mut hosts = 0;
        let mut start = 0;
        let mut sorted: Vec<&PortVerdict> = self.verdicts.iter().collect();
        sorted.sort_by_key(|v| v.target);
        let owned: Vec<PortVerdict> = sorted.into_iter().cloned().collect();
        while start < owned.len() {
            let ip = owned[start].target.ip();
            let end = start
                + owned[start..]
                    .iter()
                    .take_while(|v| v.target.ip() == ip)
                    .count();
            sink.target(&TargetReport {
                ip,
                name: self.names.get(&ip).map(String::as_str),
                verdicts: &owned[start..end],
                discovery: None,
            })?;
            hosts += 1;
            start = end;
        }
        let mut counted = RunSummary::default();
        counted.add(&self.verdicts);
        sink.finish(&RunSummary {
            ports: self.verdicts.len(),
            hosts,
            hosts_down: 0,
            open: counted.open,
            closed: counted.closed,
            filtered: counted.filtered,
            changed_on_retry: counted.changed_on_retry,
            maybe_suppressed: counted.maybe_suppressed,
            elapsed: self.elapsed,
            captured: self.captured,
            capture_drops: self.capture_drops,
            interrupted: self.interrupted,
            warnings: self.warnings.clone(),
            notes: self.notes.clone(),
            connections: 0,
        })
    }
}

/// A sink that keeps everything in memory as a [`ScanReport`] (tests, the bundled demo
/// capture).
#[derive(Debug, Default)]
pub struct Collect(ScanReport);

impl Collect {
    pub fn into_report(self) -> ScanReport {
        self.0
    }
}

impl Sink for Collect {
    fn target(&mut self, t: &TargetReport<'_>) -> io::Result<()> {
        if let Some(n) = t.name {
            self.0.names.insert(t.ip, n.to_string());
        }
        self.0.verdicts.extend_from_slice(t.verdicts);
        Ok(())
    }

    fn finish(&mut self, s: &RunSummary) -> io::Result<()> {
        self.0.elapsed = s.elapsed;
        self.0.captured = s.captured;
        self.0.capture_drops = s.capture_drops;
        self.0.interrupted = s.interrupted;
        self.0.warnings = s.warnings.clone();
        self.0.notes = s.notes.clone();
        Ok(())
    }
}

/// One target's verdicts, sorted by port, handed to a sink when the target is final.
#[derive(Clone, Copy, Debug)]
pub struct TargetReport<'a> {
    pub ip: IpAddr,
    /// The hostname the user typed for it, if any.
    pub name: Option<&'a str>,
    pub verdicts: &'a [PortVerdict],
    /// Its host discovery exchange (a live scan with discovery and a capture).
    pub discovery: Option<&'a Discovery>,
}

/// A host's discovery exchange as captured, for `--ladder`: its echo and timestamp
/// messages and its connect() probes' packets in capture order, and each probe's (local
/// port, target port).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discovery {
    pub packets: Vec<synack_core::exchange::TracePacket>,
    pub ports: Vec<(u16, u16)>,
}

impl Discovery {
    /// The exchange from the probes' attempts and the host's ICMP messages.
    pub fn new(
        attempts: Vec<synack_core::exchange::Attempt>,
        pings: Vec<synack_core::exchange::TracePacket>,
    ) -> Discovery {
        let ports = attempts
            .iter()
            .map(|a| (a.key.scanner.port(), a.key.target.port()))
            .collect();
        let mut packets = pings;
        packets.extend(attempts.into_iter().flat_map(|a| a.packets));
        packets.sort_by_key(|p| p.ts);
        Discovery { packets, ports }
    }
}

/// A host discovery probe (docs/verdicts.md, "Host discovery").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostProbe {
    /// ICMP echo request (ICMPv6 echo request for IPv6).
    Echo,
    /// ICMP timestamp request (IPv4 only, root only).
    Timestamp,
    /// connect() to this TCP port: a SYN/ACK or a RST is proof of life.
    Tcp(u16),
}

impl HostProbe {
    /// "echo", "timestamp", "443".
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        match self {
            HostProbe::Echo => "echo".into(),
            HostProbe::Timestamp => "timestamp".into(),
            HostProbe::Tcp(p) => p.to_string().into(),
        }
    }
}

/// What answered a discovery probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostAnswer {
    EchoReply,
    TimestampReply,
    /// connect() completed: the port is open.
    SynAck,
    /// connect() was refused: a RST (or, unobserved, an ICMP port-unreachable).
    Refused,
}

impl HostAnswer {
    /// "echo-reply", "timestamp-reply", "syn-ack", "conn-refused".
    pub fn name(self) -> &'static str {
        match self {
            HostAnswer::EchoReply => "echo-reply",
            HostAnswer::TimestampReply => "timestamp-reply",
            HostAnswer::SynAck => "syn-ack",
            HostAnswer::Refused => "conn-refused",
        }
    }
}

/// The probe that proved a host up, its answer and the round trip it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostProof {
    pub probe: HostProbe,
    pub answer: HostAnswer,
    pub rtt: Duration,
}

/// One host's discovery result: up (with the proof) or down (nothing answered any of
/// the probes, each sent twice).
#[derive(Clone, Copy, Debug)]
pub struct HostReport<'a> {
    pub ip: IpAddr,
    /// The hostname the user typed for it, if any.
    pub name: Option<&'a str>,
    /// None: down.
    pub up: Option<HostProof>,
    /// Every probe sent to it, in the order sent.
    pub probes: &'a [HostProbe],
    /// Its discovery exchange as captured, when it is down (a host up shows its own
    /// with its report, [`TargetReport::discovery`], once every packet is in).
    pub discovery: Option<&'a Discovery>,
    /// Down because nothing answered this host's ARP/ND requests: on a directly
    /// connected network, no machine holds the address, and no probe left this host.
    pub no_neighbour: bool,
}

impl HostReport<'_> {
    /// "198.19.128.7: down: no answer to echo, timestamp, 80, 443" or
    /// "198.19.0.5: up: echo-reply to echo after 0.3ms".
    pub fn line(&self) -> String {
        let who = match self.name {
            Some(n) => format!("{n} ({})", self.ip),
            None => self.ip.to_string(),
        };
        match self.up {
            Some(p) => format!(
                "{who}: up: {} to {} after {}",
                p.answer.name(),
                p.probe.name(),
                fmt_secs(p.rtt.as_nanos() as u64)
            ),
            None if self.no_neighbour => {
                format!("{who}: down: {}", words::NoNeighbourDown(self.ip))
            }
            None => {
                let list: Vec<_> = self.probes.iter().map(|p| p.name()).collect();
                format!("{who}: down: no answer to {}", list.join(", "))
            }
        }
    }
}

/// The totals of a run and what the user must know about it.
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    pub ports: usize,
    /// Distinct target addresses reported.
    pub hosts: usize,
    /// Hosts host discovery found down (no port of theirs was scanned).
    pub hosts_down: usize,
    pub open: usize,
    pub closed: usize,
    pub filtered: usize,
    pub elapsed: Duration,
    /// Whether packets were captured at all (false: unprivileged live scan).
    pub captured: bool,
    /// Packets the kernel dropped before the capture read them (live only).
    pub capture_drops: u64,
    /// Ctrl-C ended the run early: the verdicts are those found so far.
    pub interrupted: bool,
    /// Things the user must know (skipped packets, truncated files, capped windows).
    pub warnings: Vec<String>,
    /// What synack did beyond what was asked, and why (calibration probes).
    pub notes: Vec<String>,
    /// Connection rows written (replay `--connections`; then the state counts are of
    /// connections, not ports).
    pub connections: usize,
    /// Ports silent at full speed that answered when re-probed slower (ICMP rate
    /// limiting; `Evidence::AnsweredOnSlowRetry`).
    pub changed_on_retry: usize,
    /// Ports still silent on a target that rate-limits its ICMP errors
    /// (`Note::MaybeSuppressedReject`).
    pub maybe_suppressed: usize,
}

impl RunSummary {
    /// Counts one target's verdicts in (a full-range target's on every core: it is a
    /// pass over 11 MB of verdicts).
    pub fn add(&mut self, verdicts: &[PortVerdict]) {
        use rayon::prelude::*;
        let tally = if verdicts.len() >= 4096 {
            verdicts
                .par_chunks(4096)
                .map(Tally::of)
                .reduce(Tally::default, Tally::sum)
        } else {
            Tally::of(verdicts)
        };
        self.ports += verdicts.len();
        self.open += tally.open;
        self.closed += tally.closed;
        self.filtered += tally.filtered;
        self.changed_on_retry += tally.changed_on_retry;
        self.maybe_suppressed += tally.maybe_suppressed;
    }
}

/// [`RunSummary::add`]'s counts of some verdicts.
#[derive(Clone, Copy, Default)]
struct Tally {
    open: usize,
    closed: usize,
    filtered: usize,
    changed_on_retry: usize,
    maybe_suppressed: usize,
}

impl Tally {
    fn of(verdicts: &[PortVerdict]) -> Tally {
        let mut t = Tally::default();
        for v in verdicts {
            match v.state {
                State::Open => t.open += 1,
                State::Closed => t.closed += 1,
                State::Filtered => t.filtered += 1,
            }
            if v.has(|e| matches!(e, Evidence::AnsweredOnSlowRetry { .. })) {
                t.changed_on_retry += 1;
            }
            if v.note == Some(Note::MaybeSuppressedReject) {
                t.maybe_suppressed += 1;
            }
        }
        t
    }

    fn sum(a: Tally, b: Tally) -> Tally {
        Tally {
            open: a.open + b.open,
            closed: a.closed + b.closed,
            filtered: a.filtered + b.filtered,
            changed_on_retry: a.changed_on_retry + b.changed_on_retry,
            maybe_suppressed: a.maybe_suppressed + b.maybe_suppressed,
        }
    }
}

/// Where finished results go: the table, JSON Lines, and the files of later formats.
pub trait Sink {
    /// One target, as soon as it is final.
    fn target(&mut self, t: &TargetReport<'_>) -> io::Result<()>;
    /// One target's connection attempts (replay `--connections`), as soon as it is final.
    /// Sinks without a connection view ignore them.
    fn connections(&mut self, _rows: &[ConnectionVerdict]) -> io::Result<()> {
        Ok(())
    }

    /// One host's discovery result, as soon as it is known (before its ports, if it is
    /// up; a host found down has no ports). Sinks that do not show hosts ignore it.
    fn host(&mut self, _h: &HostReport<'_>) -> io::Result<()> {
        Ok(())
    }
    /// The end of the run.
    fn finish(&mut self, s: &RunSummary) -> io::Result<()>;
}

/// Several sinks fed the same results (stdout and the `-o*` files). Every sink gets
/// every call even when one fails; the first error is returned.
#[derive(Default)]
pub struct Tee(pub Vec<Box<dyn Sink>>);

impl Tee {
    /// Calls `f` on every sink, even after one fails; returns the first error.
    fn each(&mut self, mut f: impl FnMut(&mut dyn Sink) -> io::Result<()>) -> io::Result<()> {
        let mut first = Ok(());
        for s in &mut self.0 {
            let r = f(s.as_mut());
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}

impl Sink for Tee {
    fn target(&mut self, t: &TargetReport<'_>) -> io::Result<()> {
        self.each(|s| s.target(t))
    }

    fn connections(&mut self, rows: &[ConnectionVerdict]) -> io::Result<()> {
        self.each(|s| s.connections(rows))
    }

    fn host(&mut self, h: &HostReport<'_>) -> io::Result<()> {
        self.each(|s| s.host(h))
    }

    fn finish(&mut self, summary: &RunSummary) -> io::Result<()> {
        self.each(|s| s.finish(summary))
    }
}

/// "1.0s", "250ms", "0.4ms".
pub fn fmt_secs(nanos: u64) -> String {
    words::Secs(nanos).to_string()
}

/// The label of one packet: TCP flags, or the ICMP error's name ("ICMP port-unreach").
pub fn packet_label(p: &TracePacket) -> String {
    match p.kind {
        PacketKind::Tcp(f) => f.with_ae(p.ae).to_string(),
        PacketKind::Icmp(k) => k.to_string(),
        PacketKind::Ping(k) => k.to_string(),
    }
}

/// Per-target summary line: who answered how, e.g.
/// "198.18.2.1: 2 open · 1 closed by the host's stack · 1 reset by a firewall on the host ·
/// 1 reset by a device 1 hop closer (86) · 2 unanswered · 1 rejected with ICMP by 198.18.1.254".
pub fn target_summary(ip: IpAddr, verdicts: &[PortVerdict]) -> String {
    let mut s = TargetSummary::new(ip);
    for v in verdicts {
        s.add(v);
    }
    s.line()
}

/// [`target_summary`] built a verdict at a time, so that a writer already going through a
/// target's verdicts (65,535 of them in a full-range scan) need not go through them again.
pub struct TargetSummary {
    ip: IpAddr,
    /// Labels in order of first appearance, each with its count and first ports. Most
    /// labels are static, so a full-range scan does not allocate one per port.
    groups: Vec<(Cow<'static, str>, usize, Vec<u16>)>,
}

/// Ports listed after a label (only for few ports: "1 reset by a device 1 hop closer (86)").
const LISTED_PORTS: usize = 4;

impl TargetSummary {
    pub fn new(ip: IpAddr) -> Self {
        TargetSummary {
            ip,
            groups: Vec::new(),
        }
    }

    pub fn add(&mut self, v: &PortVerdict) {
        let label = summary_label(self.ip, v);
        let port = v.target.port();
        match self.groups.iter_mut().find(|(l, _, _)| *l == label) {
            Some((_, n, ports)) => {
                *n += 1;
                if ports.len() <= LISTED_PORTS {
                    ports.push(port);
                }
            }
            None => self.groups.push((label, 1, vec![port])),
        }
    }

    pub fn line(&self) -> String {
        let parts: Vec<String> = self
            .groups
            .iter()
            .map(|(label, n, ports)| {
                let list = if label != "open" && *n <= LISTED_PORTS && label.contains("device") {
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
                format!("{n} {label}{list}")
            })
            .collect();
        format!("{}: {}", self.ip, parts.join(" · "))
    }
}

/// The summary's words for one verdict.
fn summary_label(ip: IpAddr, v: &PortVerdict) -> Cow<'static, str> {
    match (v.state, v.reason, v.responder) {
        (State::Open, Reason::SynProxy, _) => "open behind a SYN proxy".into(),
        (State::Closed, Reason::SynProxy, _) => "closed behind a SYN proxy".into(),
        (_, Reason::SynProxy, _) => "answered by a SYN proxy only".into(),
        (State::Open, _, _) => "open".into(),
        (_, Reason::Reset, Responder::Target) => "closed by the host's stack".into(),
        (_, Reason::Reset, Responder::TargetFirewall) => "reset by a firewall on the host".into(),
        (_, Reason::Reset, Responder::Middlebox) => match v.hops_closer() {
            Some(n) => format!("reset by a device {}", words::HopsCloser(n)).into(),
            None => "reset by a device on the path".into(),
        },
        (_, Reason::Reset, Responder::Unknown)
            if v.has(|e| matches!(e, Evidence::ForgedUnplaced)) =>
        {
            "reset by a firewall (on the host or the path)".into()
        }
        (_, Reason::Reset, Responder::Unknown)
            if v.has(|e| matches!(e, Evidence::Conflicting { .. })) =>
        {
            "reset, sender inconclusive".into()
        }
        (_, Reason::Reset, Responder::Unknown) => "reset (sender not attributed)".into(),
        // What the packets show, not a cause they cannot show (a DROP rule, a host that is
        // down, a full accept queue all look alike).
        (_, Reason::NoResponse, _) => "unanswered".into(),
        // The ICMP error's sender: from the capture, or (nothing captured) from the
        // socket's error queue.
        (State::Filtered, reason, _)
            if (v.observed && !v.trace.is_empty()) || matches!(reason, Reason::Icmp(_)) =>
        {
            let captured = v
                .trace
                .iter()
                .rev()
                .find(|p| matches!(p.kind, PacketKind::Icmp(_)))
                .map(|p| p.from);
            let reported = || {
                v.evidence.iter().find_map(|e| match e {
                    Evidence::IcmpReported { from, .. } => Some(*from),
                    _ => None,
                })
            };
            match captured.or_else(reported) {
                Some(f) if f == ip => "rejected with ICMP by the host".into(),
                Some(f) => format!("rejected with ICMP by {f}").into(),
                None => v.reason.name().into(),
            }
        }
        (state, reason, _) => format!("{state} ({reason})").into(),
    }
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
        // Host discovery: the host, not a port.
        Observation::Ping(p) => {
            let (host, arrow) = if p.kind.is_reply() {
                (p.ip.src, inn)
            } else {
                (p.ip.dst, out)
            };
            format!(
                "+{ms:9.3}ms  {:<22} {arrow} {} id 0x{:04x} seq {} ttl {}",
                host.to_string(),
                p.kind,
                p.ident,
                p.seq,
                p.ip.ttl
            )
        }
    }
}
