//! Verdict tests: packets built with `testpkt`, run through decode and exchange.

use super::*;
use crate::decode::{TcpFlags, decode};
use crate::exchange::{FlowKey, Tracker};
use crate::frame::{Frame, LinkType};
use crate::testpkt::*;

const SCANNER: [u8; 4] = [198, 18, 1, 1];
const TARGET: [u8; 4] = [198, 18, 2, 1];
const ROUTER: [u8; 4] = [198, 18, 1, 254];
const SYN: u8 = TcpFlags::SYN;
const SA: u8 = TcpFlags::SYN | TcpFlags::ACK;
const RA: u8 = TcpFlags::RST | TcpFlags::ACK;
/// TOS byte for DSCP AF11, what synack marks SYNs with.
const AF11: u8 = 0x28;

struct Lab {
    tracker: Tracker,
}

impl Lab {
    fn new() -> Self {
        Lab {
            tracker: Tracker::new(),
        }
    }
    fn feed(&mut self, ms: u64, bytes: Vec<u8>) {
        let frame = Frame {
            ts: Timestamp(ms * 1_000_000),
            link: LinkType::RawIp,
            data: &bytes,
            orig_len: bytes.len() as u32,
        };
        let obs = decode(&frame).expect("test packet decodes");
        self.tracker.observe(frame.ts, &obs, |_| true);
    }
    fn syn(&mut self, ms: u64, sport: u16, port: u16, tos: u8) {
        self.feed(
            ms,
            tcp_v4(
                SCANNER,
                TARGET,
                TcpSpec::new(sport, port, SYN).seq(1000 + port as u32),
            )
            .tos(tos)
            .raw(),
        );
    }
    fn answer(&mut self, ms: u64, sport: u16, port: u16, flags: u8, ttl: u8, tos: u8) {
        self.feed(
            ms,
            tcp_v4(
                TARGET,
                SCANNER,
                TcpSpec::new(port, sport, flags).ack(1001 + port as u32),
            )
            .ttl(ttl)
            .tos(tos)
            .raw(),
        );
    }
    fn icmp(&mut self, ms: u64, from: [u8; 4], sport: u16, port: u16, code: u8) {
        let syn = tcp_v4(
            SCANNER,
            TARGET,
            TcpSpec::new(sport, port, SYN).seq(1000 + port as u32),
        )
        .raw();
        self.feed(
            ms,
            icmp_v4(from, SCANNER, 3, code, &syn[..28]).ttl(64).raw(),
        );
    }
    fn verdicts(&self) -> Vec<PortVerdict> {
        judge_all(&self.tracker.snapshot(), None)
    }
}

fn port(vs: &[PortVerdict], p: u16) -> &PortVerdict {
    vs.iter()
        .find(|v| v.target.port() == p)
        .unwrap_or_else(|| panic!("no verdict for {p}"))
}

/// The standard lab seen from the scanner: target one hop away (ttl 63), router at ttl 64.
fn standard() -> Vec<PortVerdict> {
    let mut lab = Lab::new();
    lab.syn(0, 40022, 22, AF11);
    lab.answer(1, 40022, 22, SA, 63, 0);
    lab.syn(0, 40081, 81, AF11);
    lab.answer(1, 40081, 81, RA, 63, AF11);
    lab.syn(0, 40082, 82, AF11);
    lab.syn(1000, 40082, 82, AF11);
    lab.syn(0, 40083, 83, AF11);
    lab.answer(1, 40083, 83, RA, 63, 0);
    lab.syn(0, 40084, 84, AF11);
    lab.icmp(1, TARGET, 40084, 84, 3);
    lab.syn(0, 40086, 86, AF11);
    lab.answer(1, 40086, 86, RA, 64, 0);
    lab.syn(0, 40088, 88, AF11);
    lab.icmp(1, ROUTER, 40088, 88, 13);
    lab.verdicts()
}

#[test]
fn open_port_is_syn_ack_from_target() {
    let vs = standard();
    let v = port(&vs, 22);
    assert_eq!(
        (v.state, v.reason.name(), v.responder),
        (State::Open, "syn-ack", Responder::Target)
    );
    assert_eq!(v.trace.len(), 2);
}

#[test]
fn stack_rst_reflecting_dscp_is_closed() {
    let vs = standard();
    let v = port(&vs, 81);
    assert_eq!(
        (v.state, v.reason.name(), v.responder),
        (State::Closed, "reset", Responder::Target)
    );
    assert!(
        v.evidence
            .contains(&Evidence::RstReflectsDscp { probe: 10 }),
        "{:?}",
        v.evidence
    );
}

#[test]
fn host_firewall_rst_is_filtered_target_firewall() {
    let vs = standard();
    let v = port(&vs, 83);
    assert_eq!(
        (v.state, v.reason.name(), v.responder),
        (State::Filtered, "reset", Responder::TargetFirewall)
    );
    assert!(
        v.evidence.iter().any(|e| matches!(
            e,
            Evidence::RstDscpNotReflected {
                probe: 10,
                rst: 0,
                reflected_on_port: 81
            }
        )),
        "{:?}",
        v.evidence
    );
}

#[test]
fn router_rst_is_one_hop_closer() {
    let vs = standard();
    let v = port(&vs, 86);
    assert_eq!(
        (v.state, v.reason.name(), v.responder),
        (State::Filtered, "reset", Responder::Middlebox)
    );
    assert!(v.hops_closer() == Some(1), "{:?}", v.evidence);
}

#[test]
fn icmp_from_target_and_from_router() {
    let vs = standard();
    let v = port(&vs, 84);
    assert_eq!(
        (v.state, v.reason.name(), v.responder),
        (State::Filtered, "port-unreach", Responder::TargetFirewall)
    );
    let v = port(&vs, 88);
    assert_eq!(
        (v.state, v.reason.name(), v.responder),
        (State::Filtered, "admin-prohibited", Responder::Middlebox)
    );
    assert!(
        matches!(v.evidence[0], Evidence::IcmpFromPath { from, ttl: 64, .. } if from == IpAddr::from(ROUTER)),
        "{:?}",
        v.evidence
    );
}

#[test]
fn dropped_port_lists_retransmissions() {
    let vs = standard();
    let v = port(&vs, 82);
    assert_eq!((v.state, v.reason.name()), (State::Filtered, "no-response"));
    assert_eq!(v.trace.len(), 2);
    assert!(v.trace[1].retransmission);
    assert_eq!(
        v.evidence,
        vec![Evidence::NoAnswer {
            syns: 2,
            span_ns: 1_000_000_000
        }]
    );
}

#[test]
fn rst_without_any_baseline_stays_closed_unknown() {
    let mut lab = Lab::new();
    lab.syn(0, 40081, 81, 0);
    lab.answer(1, 40081, 81, RA, 64, 0);
    let v = &lab.verdicts()[0];
    assert_eq!((v.state, v.responder), (State::Closed, Responder::Unknown));
}

#[test]
fn dscp_inconclusive_when_nothing_reflects() {
    let mut lab = Lab::new();
    lab.syn(0, 40083, 83, AF11);
    lab.answer(1, 40083, 83, RA, 63, 0);
    let v = &lab.verdicts()[0];
    assert_eq!((v.state, v.responder), (State::Closed, Responder::Unknown));
    assert!(v.has(|e| *e == Evidence::RstDscpInconclusive { probe: 10 }));
}

#[test]
fn ipv6_flow_label_tells_forged_rst() {
    let mut tracker = Tracker::new();
    let mut feed = |ms: u64, bytes: Vec<u8>| {
        let f = Frame {
            ts: Timestamp(ms),
            link: LinkType::RawIp,
            data: &bytes,
            orig_len: 0,
        };
        tracker.observe(f.ts, &decode(&f).unwrap(), |_| true);
    };
    let (s, t) = ("2001:db8:1::1", "2001:db8:2::1");
    feed(0, tcp_v6(s, t, TcpSpec::new(40081, 81, SYN)).raw());
    feed(
        1,
        tcp_v6(t, s, TcpSpec::new(81, 40081, RA))
            .ttl(63)
            .flow_label(0xabcde)
            .raw(),
    );
    feed(0, tcp_v6(s, t, TcpSpec::new(40083, 83, SYN)).raw());
    feed(1, tcp_v6(t, s, TcpSpec::new(83, 40083, RA)).ttl(63).raw());
    let vs = judge_all(&tracker.snapshot(), None);
    assert_eq!(
        (vs[0].state, vs[0].responder),
        (State::Closed, Responder::Target)
    );
    assert_eq!(
        (vs[1].state, vs[1].responder),
        (State::Filtered, Responder::TargetFirewall)
    );
    assert!(
        vs[1].evidence.contains(&Evidence::RstFlowLabelZero {
            stack_port: 81,
            stack_label: 0xabcde
        }),
        "{:?}",
        vs[1].evidence
    );
}

#[test]
fn a_later_answer_beats_an_earlier_silence() {
    let mut lab = Lab::new();
    lab.syn(0, 40090, 90, AF11);
    lab.syn(200, 40091, 90, AF11);
    lab.answer(201, 40091, 90, SA, 63, 0);
    let v = &lab.verdicts()[0];
    assert_eq!((v.state, v.attempts), (State::Open, 2));
    assert_eq!(v.trace.len(), 3);
}

fn live_facts(target: &str, records: Vec<ProbeRecord>, captured: bool) -> LiveFacts {
    let mut probes = rustc_hash::FxHashMap::default();
    probes.insert(target.parse().unwrap(), records);
    LiveFacts {
        probes,
        captured,
        capture_drops: 3,
        calibration: Vec::new(),
        attempts_limit_reached: None,
    }
}

#[test]
fn without_capture_errno_decides_and_says_so() {
    let rec = ProbeRecord {
        scanner: "198.18.1.1:40081".parse().unwrap(),
        started: Timestamp(5),
        outcome: ConnectOutcome::Failed(libc::ECONNREFUSED),
    };
    let facts = live_facts("198.18.2.1:81", vec![rec], false);
    let vs = judge_all(&[], Some(&facts));
    assert_eq!(vs.len(), 1);
    assert_eq!(
        (vs[0].state, vs[0].reason.name(), vs[0].observed),
        (State::Closed, "conn-refused", false)
    );
    assert!(vs[0].note.is_none());
}

#[test]
fn missing_answer_in_capture_is_flagged_not_invented() {
    let mut lab = Lab::new();
    lab.syn(0, 40081, 81, AF11);
    let rec = ProbeRecord {
        scanner: "198.18.1.1:40081".parse().unwrap(),
        started: Timestamp(0),
        outcome: ConnectOutcome::Failed(libc::ECONNREFUSED),
    };
    let facts = live_facts("198.18.2.1:81", vec![rec], true);
    let vs = judge_all(&lab.tracker.snapshot(), Some(&facts));
    assert_eq!(
        (vs[0].state, vs[0].reason.name(), vs[0].observed),
        (State::Closed, "conn-refused", false)
    );
    assert_eq!(vs[0].note, Some(Note::AnswerNotCaptured { drops: 3 }));
}

/// Regression (issue "Verdicts speak in types"): past the correlator's attempt limit a
/// live scan said "the answer was not captured" where the truth is "not kept".
#[test]
fn missing_answer_past_the_attempt_limit_is_not_kept_not_uncaptured() {
    let rec = ProbeRecord {
        scanner: "198.18.1.1:40081".parse().unwrap(),
        started: Timestamp(0),
        outcome: ConnectOutcome::Failed(libc::ECONNREFUSED),
    };
    let mut facts = live_facts("198.18.2.1:81", vec![rec], true);
    facts.attempts_limit_reached = Some(1 << 20);
    let vs = judge_all(&[], Some(&facts));
    assert_eq!(
        (vs[0].state, vs[0].reason, vs[0].observed),
        (State::Closed, Reason::ConnRefused, false)
    );
    assert_eq!(vs[0].note, Some(Note::AnswerNotKept { limit: 1 << 20 }));
}

#[test]
fn live_ignores_other_programs_flows() {
    let mut lab = Lab::new();
    lab.syn(0, 50000, 81, AF11); // someone else's connection to the same port
    lab.answer(1, 50000, 81, SA, 63, 0);
    let rec = ProbeRecord {
        scanner: "198.18.1.1:40081".parse().unwrap(),
        started: Timestamp(0),
        outcome: ConnectOutcome::TimedOut,
    };
    let facts = live_facts("198.18.2.1:81", vec![rec], true);
    let vs = judge_all(&lab.tracker.snapshot(), Some(&facts));
    assert_eq!(
        (vs[0].state, vs[0].reason.name()),
        (State::Filtered, "no-response")
    );
    assert!(vs[0].trace.is_empty());
}

#[test]
fn self_connect_is_never_open() {
    let mut tracker = Tracker::new();
    let p = "127.0.0.1:50000";
    let key = FlowKey {
        scanner: p.parse().unwrap(),
        target: p.parse().unwrap(),
    };
    tracker.register(key, Timestamp(0));
    let mut feed = |flags: u8| {
        let bytes = tcp_v4(
            [127, 0, 0, 1],
            [127, 0, 0, 1],
            TcpSpec::new(50000, 50000, flags),
        )
        .raw();
        let f = Frame {
            ts: Timestamp(1),
            link: LinkType::RawIp,
            data: &bytes,
            orig_len: 0,
        };
        tracker.observe(f.ts, &decode(&f).unwrap(), |_| true);
    };
    feed(SYN);
    feed(SA);
    let vs = judge_all(&tracker.snapshot(), None);
    assert_eq!(
        (vs[0].state, vs[0].reason.name()),
        (State::Closed, "self-connect")
    );
}

#[test]
fn hop_and_dscp_helpers() {
    assert_eq!(hops(64), 0);
    assert_eq!(hops(63), 1);
    assert_eq!(hops(120), 8);
    assert_eq!(hops(250), 5);
}
