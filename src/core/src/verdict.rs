//! Exchanges → verdicts: state, reason, who answered, and the evidence for it.
//!
//! Packets first, errno second (docs/verdicts.md has the table):
//! - a SYN/ACK for our SYN: open (RFC 9293 §3.5);
//! - a RST answering our SYN: closed when the target's own stack sent it (RFC 9293
//!   §3.10.7.1: a CLOSED port answers a SYN with RST), filtered when the evidence shows a
//!   firewall or a device on the path forged it;
//! - an ICMP destination-unreachable: filtered, with its sender. A TCP stack never answers
//!   a SYN with ICMP port-unreachable, so that is a firewall's rule too;
//! - nothing after the retries: filtered, no-response;
//! - without packets (no capture, or the capture missed them): connect()'s errno, marked
//!   as not observed.
//!
//! Who sent a RST is weighed against a baseline from the same target in the same scan
//! ([`Baseline`]): the hop distance of packets only the target's stack sends (SYN/ACKs,
//! RSTs that reflect the probe's DSCP), whether any of its RSTs reflected the probe's DSCP
//! (Linux's does; netfilter's `REJECT --reject-with tcp-reset` sends DSCP 0), and for
//! IPv6 whether its RSTs carry a flow label (Linux's do; netfilter's have 0).

mod baseline;
mod facts;
mod judge;

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use rustc_hash::FxHashMap;

use crate::decode::IcmpKind;
use crate::exchange::{Attempt, Dir, PacketKind, TracePacket};
use crate::frame::Timestamp;
pub use baseline::Baseline;
pub use facts::{AfterProxy, DscpMatch, Evidence, Note, Reason, StackPacket, TargetDistance, hops};
pub use judge::{
    ConnectionVerdict, judge_all, judge_connections, judge_owned, judge_target, judge_target_into,
};
#[cfg(test)]
use judge::{Sizes, judge_sized, port_order};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    Open,
    Closed,
    Filtered,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Closed => "closed",
            State::Filtered => "filtered",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who most likely sent the packet that decided the port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Responder {
    /// The target's own TCP stack.
    Target,
    /// A firewall on the target host: a forged RST, or an ICMP error from its address.
    TargetFirewall,
    /// Another device on the path.
    Middlebox,
    Unknown,
}

impl Responder {
    pub fn as_str(self) -> &'static str {
        match self {
            Responder::Target => "target",
            Responder::TargetFirewall => "target-firewall",
            Responder::Middlebox => "middlebox",
            Responder::Unknown => "unknown",
        }
    }
}

/// What connect() said about one attempt (live scans only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectOutcome {
    Connected,
    /// connect() failed with this errno (ECONNREFUSED, EHOSTUNREACH, …).
    Failed(i32),
    /// No answer within the timeout; synack gave up on the socket.
    TimedOut,
    /// The kernel connected the socket to itself (source port == destination port).
    SelfConnect,
}

impl ConnectOutcome {
    /// The verdict connect() alone supports, as nmap -sT reports it.
    fn verdict(self) -> (State, Reason) {
        match self {
            ConnectOutcome::Connected => (State::Open, Reason::SynAck),
            ConnectOutcome::TimedOut => (State::Filtered, Reason::NoResponse),
            ConnectOutcome::SelfConnect => (State::Closed, Reason::SelfConnect),
            ConnectOutcome::Failed(e) => match e {
                libc::ECONNREFUSED => (State::Closed, Reason::ConnRefused),
                libc::EHOSTUNREACH => (State::Filtered, Reason::HostUnreach),
                libc::ENETUNREACH => (State::Filtered, Reason::NetUnreach),
                libc::ETIMEDOUT => (State::Filtered, Reason::NoResponse),
                libc::EACCES | libc::EPERM => (State::Filtered, Reason::LocalProhibited),
                libc::ENOPROTOOPT => (State::Filtered, Reason::ProtoUnreach),
                _ => (State::Filtered, Reason::Error),
            },
        }
    }
}

/// A port's attempt records: almost always one, kept inline (a full-range scan holds
/// 65,535 of them until its target is judged; a vector each cost a heap block per port).
pub type Records = smallvec::SmallVec<[ProbeRecord; 1]>;

/// A verdict's evidence. Most verdicts carry one or two facts (a closed port: the RST's
/// distance and its DSCP), kept inline: a full-range target's 65,535 verdicts then need
/// no allocation of their own for it.
pub type EvidenceList = smallvec::SmallVec<[Evidence; 2]>;

/// What the live prober knows of one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeRecord {
    pub scanner: SocketAddr,
    pub started: Timestamp,
    pub outcome: ConnectOutcome,
    /// The ICMP error that ended the attempt, as the socket's error queue reported it
    /// (IP_RECVERR; known without a capture): its kind and sender.
    pub icmp: Option<(IcmpKind, IpAddr)>,
    /// Made by the slow re-probe of ports left silent on a target that answered others
    /// with ICMP errors (docs/verdicts.md, "When the network holds back").
    pub slow: bool,
}

impl ProbeRecord {
    /// An attempt's record without an ICMP report, made at full speed.
    pub fn new(scanner: SocketAddr, started: Timestamp, outcome: ConnectOutcome) -> Self {
        ProbeRecord {
            scanner,
            started,
            outcome,
            icmp: None,
            slow: false,
        }
    }

    /// The attempt was ended by an ICMP error from another machine (not by this host's
    /// own stack giving up on a neighbour).
    pub fn icmp_answered(&self) -> bool {
        self.icmp.is_some_and(|(_, from)| from != self.scanner.ip())
    }

    /// The attempt was ended by this host's own stack: no ARP/ND reply from the target.
    pub fn no_neighbour(&self) -> bool {
        self.icmp.is_some_and(|(_, from)| from == self.scanner.ip())
    }
}

/// How a port's attempts went when the network held back: whether its full-speed
/// attempts were all unanswered and whether a slow re-probe was made (pure; from the
/// prober's records alone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeldBack {
    /// Full-speed attempts, all unanswered (0 when one was answered).
    pub unanswered: u32,
    /// Slow re-probes made.
    pub slow: u32,
    /// A slow re-probe was answered with an ICMP error.
    pub slow_icmp: bool,
}

impl HeldBack {
    pub fn of(records: &[ProbeRecord]) -> HeldBack {
        let real = || {
            records
                .iter()
                .filter(|r| r.outcome != ConnectOutcome::SelfConnect)
        };
        let fast_silent = real()
            .filter(|r| !r.slow)
            .all(|r| r.outcome == ConnectOutcome::TimedOut);
        HeldBack {
            unanswered: if fast_silent {
                real().filter(|r| !r.slow).count() as u32
            } else {
                0
            },
            slow: real().filter(|r| r.slow).count() as u32,
            slow_icmp: real().any(|r| r.slow && r.icmp_answered()),
        }
    }

    /// A port silent at full speed answered with ICMP when re-probed slower: its target
    /// rate-limits its ICMP errors.
    pub fn shows_rate_limit(&self) -> bool {
        self.unanswered > 0 && self.slow_icmp
    }
}

/// Whether any port of `ip` among the prober's records shows ICMP rate limiting
/// ([`HeldBack::shows_rate_limit`]).
pub fn rate_limits_icmp(ip: IpAddr, probes: &FxHashMap<SocketAddr, Records>) -> bool {
    probes
        .iter()
        .any(|(t, r)| t.ip() == ip && HeldBack::of(r).shows_rate_limit())
}

/// Live-scan facts that packets alone do not carry.
#[derive(Clone, Debug, Default)]
pub struct LiveFacts {
    /// Every probed target port and its attempts, in the order they were made.
    pub probes: FxHashMap<SocketAddr, Records>,
    /// False when no capture ran (no privileges): verdicts come from errno.
    pub captured: bool,
    /// Packets the kernel dropped before the capture read them.
    pub capture_drops: u64,
    /// Ports probed only to learn the target stack's own answer (not asked for).
    pub calibration: Vec<SocketAddr>,
    /// The correlator's attempt limit, when it was reached: later attempts' packets were
    /// not kept, so a missing answer may have been captured and not kept.
    pub attempts_limit_reached: Option<usize>,
}

/// How many attempts at one (target, port) ended one way: a capture of many clients can
/// show a port answering some and resetting others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub reason: Reason,
    pub responder: Responder,
    pub count: u32,
}

/// A port's trace keeps the packets of this many attempts (plus the first attempt of each
/// outcome not among them); the rest are counted in [`PortVerdict::left_out`].
pub const TRACE_ATTEMPTS: usize = 4;

/// One port's verdict and the packets that explain it.
#[derive(Clone, Debug)]
pub struct PortVerdict {
    pub target: SocketAddr,
    pub state: State,
    /// nmap's word where it has one: syn-ack, reset, no-response, port-unreach, …
    pub reason: Reason,
    pub responder: Responder,
    /// The facts the decision rests on, most telling first.
    pub evidence: EvidenceList,
    /// Every packet of every attempt at this port, in time order.
    pub trace: Vec<TracePacket>,
    /// When the first attempt began; trace offsets count from here.
    pub started: Timestamp,
    pub attempts: u32,
    /// The verdict rests on captured packets (false: on connect()'s errno).
    pub observed: bool,
    /// Something the reader must know about the verdict itself.
    pub note: Option<Note>,
    /// When the attempts disagree (several outcomes), how many ended each way, in order
    /// of first appearance; empty when they agree. An unanswered attempt followed by
    /// another from the same client is a retry, not an outcome of its own.
    pub outcomes: Vec<Outcome>,
    /// Packets of the attempts beyond [`TRACE_ATTEMPTS`] left out of `trace`, and packets
    /// beyond an attempt's own cap.
    pub left_out: u32,
}

impl PortVerdict {
    /// How many hops nearer than the target the deciding RST was sent, when the evidence
    /// shows it was.
    pub fn hops_closer(&self) -> Option<u8> {
        self.evidence.iter().find_map(Evidence::hops_closer)
    }

    /// Whether any fact of the evidence satisfies `pred`.
    pub fn has(&self, pred: impl Fn(&Evidence) -> bool) -> bool {
        self.evidence.iter().any(pred)
    }
}

fn is_in_tcp(p: &TracePacket, pred: impl Fn(crate::decode::TcpFlags) -> bool) -> bool {
    p.dir == Dir::In && p.flags().is_some_and(pred)
}

/// A RST's judgement depends only on its TTL, DSCP and flow label, the probe's DSCP and
/// the target's baseline: thousands of closed ports share one. Keyed by those header
/// facts, valid for one target address.
type RstMemo = FxHashMap<(u8, u8, Option<u32>, u8), (State, Responder, EvidenceList)>;

/// What judging one port needs besides its attempts.
struct PortContext<'a> {
    base: &'a Baseline,
    /// The prober's records of this port (live scans).
    probes: Option<&'a [ProbeRecord]>,
    live: Option<&'a LiveFacts>,
    /// The port's target was seen rate-limiting its ICMP errors ([`rate_limits_icmp`]).
    rate_limited: bool,
}

fn judge_port(
    target: SocketAddr,
    attempts: &mut [&mut Attempt],
    ctx: &PortContext<'_>,
    memo: &mut RstMemo,
) -> PortVerdict {
    let PortContext {
        base,
        probes,
        live,
        rate_limited,
    } = *ctx;
    // In a live scan, only the attempts the prober made (it knows their source ports):
    // they are moved to the front, in the order they were made.
    let mine = match probes {
        Some(probes) => {
            let made = |a: &Attempt| probes.iter().any(|p| p.scanner == a.key.scanner);
            attempts.sort_by_key(|a| !made(a));
            attempts.iter().take_while(|a| made(a)).count()
        }
        None => attempts.len(),
    };
    let attempts = &mut attempts[..mine];
    let ours: &[&mut Attempt] = attempts;
    let self_connects = ours.iter().filter(|a| a.key.is_self_connect()).count();
    let real_attempts = ours.len() - self_connects;
    let syns: usize = ours
        .iter()
        .filter(|a| !a.key.is_self_connect())
        .map(|a| a.syns_sent())
        .sum();
    let first_start = ours
        .iter()
        .map(|a| a.started)
        .chain(probes.into_iter().flatten().map(|p| p.started))
        .min()
        .unwrap_or_default();
    let n_attempts = probes.map(|p| p.len()).unwrap_or(ours.len()) as u32;
    // Several attempts: each is judged on its own packets, to count how they ended.
    let (outcomes, keep) = if ours.len() > 1 {
        attempt_outcomes(ours, base, memo)
    } else {
        (Vec::new(), None)
    };
    let capped: u32 = ours.iter().map(|a| a.dropped_packets).sum();
    // The trace takes the attempts' packets over (no copy: a full-range scan has 65,535).
    let mut trace: Vec<TracePacket> = match attempts {
        [one] => std::mem::take(&mut one.packets),
        many => many
            .iter_mut()
            .flat_map(|a| std::mem::take(&mut a.packets))
            .collect(),
    };
    trace.sort_by_key(|p| p.ts);
    // Offsets count from the first captured packet, so a live scan and the replay of its
    // capture agree; without packets, from when the prober started.
    let started = trace.first().map(|p| p.ts).unwrap_or(first_start);
    let mut v = PortVerdict {
        target,
        state: State::Filtered,
        reason: Reason::NoResponse,
        responder: Responder::Unknown,
        evidence: EvidenceList::new(),
        trace,
        started,
        attempts: n_attempts,
        observed: true,
        note: None,
        outcomes,
        left_out: capped,
    };
    let probes_real: Vec<&ProbeRecord> = probes
        .into_iter()
        .flatten()
        .filter(|p| p.outcome != ConnectOutcome::SelfConnect)
        .collect();

    let decided = decide_from_packets(&mut v, self_connects > 0, base, memo);
    // Decided on every packet; shown: the first attempts and one of each outcome.
    if let Some(keep) = keep {
        let before = v.trace.len();
        v.trace
            .retain(|p| keep.contains(&(p.client, p.scanner_port)));
        v.left_out += (before - v.trace.len()) as u32;
    }
    // Silent at full speed, re-probed slower: an answer now is the verdict changed on
    // the slow retry.
    let held = probes.map(HeldBack::of).unwrap_or_default();
    let slow_answer = held.unanswered > 0 && held.slow > 0;
    if decided {
        if slow_answer {
            v.evidence.push(Evidence::AnsweredOnSlowRetry {
                unanswered: held.unanswered,
            });
        }
        return v;
    }
    // No answer in the packets.
    let captured = live.is_none_or(|l| l.captured);
    if let Some(probes) = probes {
        let answered = probes_real
            .iter()
            .rev()
            .find(|p| p.outcome != ConnectOutcome::TimedOut);
        if answered.is_some_and(|p| p.no_neighbour()) {
            // This host's own stack gave up resolving the target's link-layer address:
            // no SYN left, which the (empty) capture confirms.
            v.state = State::Filtered;
            v.reason = Reason::HostUnreach;
            v.evidence.push(Evidence::NoNeighbourReply {
                target: target.ip(),
            });
            v.observed = captured;
            return v;
        }
        if let Some(p) = answered {
            if slow_answer {
                v.evidence.push(Evidence::AnsweredOnSlowRetry {
                    unanswered: held.unanswered,
                });
            }
            // connect() heard an answer the capture does not show.
            let (state, reason) = p.outcome.verdict();
            v.state = state;
            v.reason = reason;
            v.observed = false;
            if let Some((kind, from)) = p.icmp.filter(|(k, _)| p.icmp_answered() && k.is_decisive())
            {
                // The socket's error queue named the ICMP error and who sent it: a REJECT's
                // port-unreachable is told from a stack's RST without a capture (connect()
                // says ECONNREFUSED to both), and a router's from the target's own.
                v.state = State::Filtered;
                v.reason = Reason::Icmp(kind);
                v.responder = if from == target.ip() {
                    Responder::TargetFirewall
                } else {
                    Responder::Middlebox
                };
                v.evidence.push(Evidence::IcmpReported { kind, from });
            }
            if captured {
                v.note = Some(match live.and_then(|l| l.attempts_limit_reached) {
                    Some(limit) => Note::AnswerNotKept { limit },
                    None => Note::AnswerNotCaptured {
                        drops: live.map(|l| l.capture_drops).unwrap_or(0),
                    },
                });
            }
            return v;
        }
        if probes_real.is_empty() && !probes.is_empty() {
            return met_itself(v);
        }
        if !captured {
            v.observed = false;
        }
    } else if real_attempts == 0 && self_connects > 0 {
        return met_itself(v);
    }
    if captured {
        if syns > 0 {
            let span = v.trace.last().map(|p| p.ts.since(v.started)).unwrap_or(0);
            v.evidence.push(Evidence::NoAnswer {
                syns: syns as u32,
                span_ns: span,
            });
        } else if probes.is_some() {
            v.note = Some(Note::NoPacketsCaptured);
        }
    }
    if rate_limited && v.note.is_none() {
        v.note = Some(Note::MaybeSuppressedReject);
    }
    v
}

/// How each attempt at one port ended, judged on its own packets, counted when they
/// disagree; and, past [`TRACE_ATTEMPTS`], the (client, source port) of the attempts whose
/// packets the trace keeps. Attempts are in the order they were made.
fn attempt_outcomes(
    attempts: &[&mut Attempt],
    base: &Baseline,
    memo: &mut RstMemo,
) -> (Vec<Outcome>, Option<Vec<(IpAddr, u16)>>) {
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut keep: Vec<(IpAddr, u16)> = Vec::new();
    for (i, a) in attempts.iter().enumerate() {
        if a.key.is_self_connect() {
            continue;
        }
        let mut scratch = PortVerdict {
            target: a.key.target,
            state: State::Filtered,
            reason: Reason::NoResponse,
            responder: Responder::Unknown,
            evidence: EvidenceList::new(),
            trace: Vec::new(),
            started: a.started,
            attempts: 1,
            observed: true,
            note: None,
            outcomes: Vec::new(),
            left_out: 0,
        };
        decide_from_trace(&mut scratch, &a.packets, false, base, memo);
        let client = a.key.scanner.ip();
        let retried = scratch.reason == Reason::NoResponse
            && attempts[i + 1..]
                .iter()
                .any(|b| b.key.scanner.ip() == client && !b.key.is_self_connect());
        let id = (client, a.key.scanner.port());
        if i < TRACE_ATTEMPTS {
            keep.push(id);
        }
        if retried {
            continue;
        }
        match outcomes
            .iter_mut()
            .find(|o| o.reason == scratch.reason && o.responder == scratch.responder)
        {
            Some(o) => o.count += 1,
            None => {
                if !keep.contains(&id) {
                    keep.push(id);
                }
                outcomes.push(Outcome {
                    reason: scratch.reason,
                    responder: scratch.responder,
                    count: 1,
                });
            }
        }
    }
    if outcomes.len() < 2 {
        outcomes.clear();
    }
    let keep = (attempts.len() > TRACE_ATTEMPTS).then_some(keep);
    (outcomes, keep)
}

/// Every attempt at the port connected to itself (TCP simultaneous open): closed.
fn met_itself(mut v: PortVerdict) -> PortVerdict {
    v.state = State::Closed;
    v.reason = Reason::SelfConnect;
    v.evidence.push(Evidence::SelfConnect {
        ip: v.target.ip(),
        port: v.target.port(),
    });
    v
}

/// Sets state, reason, responder and evidence from the trace (so what decides is what
/// the user is shown); false when no packet answered. Packets of a self-connect attempt
/// (its source port is the target port) answer nothing.
fn decide_from_packets(
    v: &mut PortVerdict,
    has_self_connect: bool,
    base: &Baseline,
    memo: &mut RstMemo,
) -> bool {
    let trace = std::mem::take(&mut v.trace);
    let decided = decide_from_trace(v, &trace, has_self_connect, base, memo);
    v.trace = trace;
    decided
}

fn decide_from_trace(
    v: &mut PortVerdict,
    trace: &[TracePacket],
    has_self_connect: bool,
    base: &Baseline,
    memo: &mut RstMemo,
) -> bool {
    let self_port = v.target.port();
    let answers = || {
        trace
            .iter()
            .filter(move |p| p.dir == Dir::In && !(has_self_connect && p.scanner_port == self_port))
    };
    if let Some(p) = answers().find(|p| is_in_tcp(p, |f| f.is_syn_ack())) {
        if baseline::is_proxy_syn_ack(p) {
            judge_syn_proxy(v, trace, p, base);
            return true;
        }
        v.state = State::Open;
        v.reason = Reason::SynAck;
        v.responder = Responder::Target;
        v.evidence.push(Evidence::SynAck {
            from: p.from,
            ttl: p.ttl,
        });
        return true;
    }
    if let Some(p) = answers().find(|p| is_in_tcp(p, |f| f.rst())) {
        v.reason = Reason::Reset;
        // The DSCP of the SYN this RST answers.
        let probe_dscp = trace
            .iter()
            .find(|s| {
                s.dir == Dir::Out
                    && s.scanner_port == p.scanner_port
                    && s.flags().is_some_and(|f| f.is_syn_only())
            })
            .map(|s| s.dscp)
            .unwrap_or(0);
        let key = (p.ttl, p.dscp, p.flow_label, probe_dscp);
        if let Some((state, responder, evidence)) = memo.get(&key) {
            v.state = *state;
            v.responder = *responder;
            v.evidence.extend_from_slice(evidence);
        } else {
            judge_rst(v, probe_dscp, p, base);
            memo.insert(key, (v.state, v.responder, v.evidence.clone()));
        }
        return true;
    }
    if let Some(p) = answers().find(|p| matches!(p.kind, PacketKind::Icmp(k) if k.is_decisive())) {
        let PacketKind::Icmp(kind) = p.kind else {
            unreachable!("matched above")
        };
        v.state = State::Filtered;
        v.reason = Reason::Icmp(kind);
        if p.from == v.target.ip() {
            v.responder = Responder::TargetFirewall;
            v.evidence
                .push(Evidence::IcmpFromTarget { kind, ttl: p.ttl });
        } else {
            v.responder = Responder::Middlebox;
            v.evidence.push(Evidence::IcmpFromPath {
                kind,
                from: p.from,
                ttl: p.ttl,
            });
        }
        return true;
    }
    // Nothing answered in the capture, but the client acknowledged a server ISN after its
    // SYN: only a SYN/ACK gives it that number (RFC 9293 §3.5), so the handshake completed
    // and the server's direction was not captured. Not a self-connect's own ACK.
    let acked = trace.iter().find(|p| {
        p.dir == Dir::Out
            && !(has_self_connect && p.scanner_port == self_port)
            && p.flags().is_some_and(|f| f.ack() && !f.syn() && !f.rst())
    });
    if let Some(p) = acked {
        let data = trace
            .iter()
            .filter(|d| d.dir == Dir::Out && d.scanner_port == p.scanner_port)
            .map(|d| d.payload_len)
            .sum();
        v.state = State::Open;
        v.reason = Reason::AckImpliesSynAck;
        v.responder = Responder::Unknown;
        v.evidence
            .push(Evidence::ClientAckedServer { ack: p.ack, data });
        return true;
    }
    false
}

/// Weights of the signals that say who sent a RST (docs/verdicts.md, "Weights"): positive
/// for the target's stack, negative for a forgery. A signal a firewall cannot fake by
/// accident weighs more than one a path can produce on its own.
mod weight {
    /// An IPv6 flow label on the RST (netfilter's RST has label 0), or label 0 while the
    /// stack set one: proof either way.
    pub const FLOW_LABEL: i8 = 4;
    /// Fewer hops than every answerer of the target: something on the path sent it.
    pub const NEARER: i8 = 4;
    /// The probe's DSCP reflected.
    pub const DSCP_REFLECTED: i8 = 3;
    /// The probe's DSCP re-marked within its AF class (an RFC 2597 policer).
    pub const DSCP_REMARKED: i8 = 2;
    /// DSCP 0 while another RST of the target reflected it.
    pub const DSCP_ZERO: i8 = 2;
    /// DSCP 0, but the path was seen re-marking DSCP.
    pub const DSCP_ZERO_ON_REMARKING_PATH: i8 = 1;
    /// A conclusion needs this much net weight, and a side this much to count as strong.
    pub const DECIDES: i8 = 2;
}

/// Attributes a RST answering our SYN, and sets state and responder accordingly: every
/// signal is weighed at once ([`weight`]); conflicting strong signals give no conclusion.
fn judge_rst(v: &mut PortVerdict, probe_dscp: u8, rst: &TracePacket, base: &Baseline) {
    let rst_hops = hops(rst.ttl);
    let mut stack = 0i8;
    let mut forged = 0i8;
    // The answerer at the RST's own distance, or (nearer / farther than all) the nearest /
    // farthest one: with one answerer, the target's distance as ever.
    let own = base.stack_at(rst_hops);
    let compared = own.or_else(|| {
        let near = base.stack_distances.first().copied();
        let far = base.stack_distances.last().copied();
        match near {
            Some(n) if rst_hops < n.hops => Some(n),
            _ => far.or(base.distance()),
        }
    });
    let mut closer_by = 0u8;
    if let Some(target) = compared {
        closer_by = target.hops.saturating_sub(rst_hops);
        v.evidence.push(Evidence::RstDistance {
            ttl: rst.ttl,
            target,
        });
        if closer_by > 0 {
            forged += weight::NEARER;
        }
    }
    let several = base.stack_distances.len() > 1;
    if several
        && let (Some(n), Some(f)) = (base.stack_distances.first(), base.stack_distances.last())
    {
        v.evidence.push(Evidence::SeveralAnswerers {
            near_hops: n.hops,
            far_hops: f.hops,
        });
    }
    if probe_dscp != 0 {
        match DscpMatch::of(probe_dscp, rst.dscp) {
            DscpMatch::Reflected => {
                stack += weight::DSCP_REFLECTED;
                v.evidence
                    .push(Evidence::RstReflectsDscp { probe: probe_dscp });
            }
            DscpMatch::RemarkedInClass => {
                stack += weight::DSCP_REMARKED;
                v.evidence.push(Evidence::RstDscpRemarked {
                    probe: probe_dscp,
                    rst: rst.dscp,
                });
            }
            DscpMatch::Other => v.evidence.push(Evidence::RstDscpChanged {
                probe: probe_dscp,
                rst: rst.dscp,
            }),
            DscpMatch::Zero => match base.reflecting_rst_port {
                Some(port) => {
                    v.evidence.push(Evidence::RstDscpNotReflected {
                        probe: probe_dscp,
                        rst: rst.dscp,
                        reflected_on_port: port,
                    });
                    match base.path_remarks {
                        Some((port, dscp)) => {
                            forged += weight::DSCP_ZERO_ON_REMARKING_PATH;
                            v.evidence.push(Evidence::PathRemarksDscp { port, dscp });
                        }
                        None => forged += weight::DSCP_ZERO,
                    }
                }
                None => v
                    .evidence
                    .push(Evidence::RstDscpInconclusive { probe: probe_dscp }),
            },
        }
    }
    match rst.flow_label {
        Some(0) => {
            if let Some((port, label)) = base.flow_label_seen {
                forged += weight::FLOW_LABEL;
                v.evidence.push(Evidence::RstFlowLabelZero {
                    stack_port: port,
                    stack_label: label,
                });
            }
        }
        Some(label) => {
            stack += weight::FLOW_LABEL;
            v.evidence.push(Evidence::RstFlowLabel { label });
        }
        None => {}
    }
    let net = stack - forged;
    if stack >= weight::DECIDES && forged >= weight::DECIDES && net.abs() < weight::DECIDES {
        // Both sides strong, neither ahead: say so, with both sides in the evidence.
        v.state = State::Closed;
        v.responder = Responder::Unknown;
        v.evidence.push(Evidence::Conflicting {
            stack: stack as u8,
            forged: forged as u8,
        });
    } else if net <= -weight::DECIDES {
        v.state = State::Filtered;
        if closer_by > 0 {
            v.responder = Responder::Middlebox;
        } else if own.is_some() && !several {
            v.responder = Responder::TargetFirewall;
            v.evidence.push(Evidence::ForgedOnTargetHost);
        } else {
            // Several answerers behind the address, or a RST farther than them: its
            // distance does not say which machine forged it.
            v.responder = Responder::Unknown;
            v.evidence.push(Evidence::ForgedUnplaced);
        }
    } else if net >= weight::DECIDES {
        v.state = State::Closed;
        v.responder = Responder::Target;
    } else {
        v.state = State::Closed;
        v.responder = Responder::Unknown;
        if v.evidence.is_empty() {
            v.evidence.push(Evidence::NoBaseline);
        }
    }
}

/// A SYN proxy completed the handshake (its SYN/ACK offers window 0): the verdict is what
/// the host behind it answered after our ACK, and the proxy is placed by its hop distance.
fn judge_syn_proxy(
    v: &mut PortVerdict,
    trace: &[TracePacket],
    synack: &TracePacket,
    base: &Baseline,
) {
    v.reason = Reason::SynProxy;
    let proxy_hops = hops(synack.ttl);
    let target = base
        .stack_distances
        .iter()
        .copied()
        .find(|d| d.hops == proxy_hops)
        .or(base.stack_distances.first().copied())
        .or(base.distance());
    v.evidence.push(Evidence::SynProxy {
        ttl: synack.ttl,
        target,
    });
    let after = trace
        .iter()
        .filter(|p| p.dir == Dir::In && p.scanner_port == synack.scanner_port && p.ts >= synack.ts)
        .filter_map(|p| Some((p, p.flags()?)))
        .find_map(|(p, f)| {
            if f.rst() {
                Some(AfterProxy::Rst { ttl: p.ttl })
            } else if !f.syn() && f.ack() && p.win != 0 {
                Some(AfterProxy::Accepted { win: p.win })
            } else {
                None
            }
        })
        .unwrap_or(AfterProxy::Nothing);
    v.evidence.push(Evidence::AfterProxyAck(after));
    match after {
        AfterProxy::Rst { .. } => {
            v.state = State::Closed;
            v.responder = Responder::Target;
        }
        AfterProxy::Accepted { .. } => {
            v.state = State::Open;
            v.responder = Responder::Target;
        }
        AfterProxy::Nothing => {
            // The proxy stands between the probe and the port: nmap's "filtered" (the
            // probe never reached the port), placed where the proxy answered from.
            v.state = State::Filtered;
            v.responder = match target {
                Some(t) if proxy_hops < t.hops => Responder::Middlebox,
                Some(t) if proxy_hops == t.hops => Responder::TargetFirewall,
                _ => Responder::Unknown,
            };
        }
    }
}

#[cfg(test)]
mod tests;
