//! Ladder and explanation renderers, over verdicts built by the real pipeline: packets
//! from `testpkt` → `decode` → `Tracker` → `judge_all`.
//!
//! Each scenario's output is compared with `tests/snapshots/<name>.txt`. After a deliberate
//! change, rerun with `UPDATE_SNAPSHOTS=1` to rewrite them, and review the diff.

use std::net::SocketAddr;
use std::path::PathBuf;

use proptest::prelude::*;
use synack::report::ScanReport;
use synack::report::explain::explain;
use synack::report::ladder::{LadderOptions, ladder};
use synack::report::text::{self, TextOptions};
use synack::report::words::EvidenceWords;
use synack_core::decode::{IcmpKind, TcpFlags, decode};
use synack_core::exchange::{Dir, FlowKey, MAX_TRACE, PacketKind, TracePacket, Tracker};
use synack_core::frame::{Frame, LinkType, Timestamp};
use synack_core::testpkt::{TcpSpec, icmp_v4, icmp_v6, tcp_v4, tcp_v6};
use synack_core::verdict::{
    ConnectOutcome, Evidence, LiveFacts, PortVerdict, ProbeRecord, Reason, Responder, StackPacket,
    State, TargetDistance, judge_all,
};

// ---------------------------------------------------------------------------------------
// Building verdicts
// ---------------------------------------------------------------------------------------

const SCANNER: [u8; 4] = [198, 18, 1, 1];
const TARGET: [u8; 4] = [198, 18, 2, 1];
const ROUTER: [u8; 4] = [198, 18, 1, 254];
const SCANNER6: &str = "2001:db8:1::1";
const TARGET6: &str = "2001:db8:2::1";
const ROUTER6: &str = "2001:db8:1::fe";

const SYN: u8 = TcpFlags::SYN;
const SA: u8 = TcpFlags::SYN | TcpFlags::ACK;
const ACK: u8 = TcpFlags::ACK;
const RA: u8 = TcpFlags::RST | TcpFlags::ACK;
/// TOS byte for DSCP AF11, what synack marks its SYNs with.
const AF11: u8 = 0x28;
/// The target's SYN/ACKs and its stack's RSTs arrive with this TTL (one router between).
const TARGET_TTL: u8 = 63;

/// The scanner's ISN for a source port: arbitrary, but far from 0 so relative numbering shows.
fn isn(sport: u16) -> u32 {
    0x8000_0000 + sport as u32 * 7919
}

/// A capture being replayed into the tracker. Times are in microseconds.
#[derive(Default)]
struct Capture {
    tracker: Tracker,
}

impl Capture {
    fn feed(&mut self, us: u64, bytes: Vec<u8>) {
        let frame = Frame {
            ts: Timestamp::from_micros(1_700_000_000_000_000 + us),
            link: LinkType::RawIp,
            data: &bytes,
            orig_len: bytes.len() as u32,
        };
        let obs = decode(&frame).expect("test packet decodes");
        self.tracker.observe(frame.ts, &obs, |_| true);
    }

    fn syn_packet(sport: u16, port: u16) -> Vec<u8> {
        tcp_v4(
            SCANNER,
            TARGET,
            TcpSpec::new(sport, port, SYN).seq(isn(sport)),
        )
        .tos(AF11)
        .raw()
    }

    fn syn(&mut self, us: u64, sport: u16, port: u16) {
        self.feed(us, Self::syn_packet(sport, port));
    }

    /// A segment from the target to the scanner.
    #[allow(clippy::too_many_arguments)]
    fn answer(&mut self, us: u64, sport: u16, port: u16, flags: u8, seq: u32, ttl: u8, tos: u8) {
        let spec = TcpSpec::new(port, sport, flags)
            .seq(seq)
            .ack(isn(sport).wrapping_add(1));
        self.feed(us, tcp_v4(TARGET, SCANNER, spec).ttl(ttl).tos(tos).raw());
    }

    /// A segment from the scanner after its SYN (ACK, RST, data).
    fn follow_up(&mut self, us: u64, sport: u16, port: u16, flags: u8, their_isn: u32) {
        let spec = TcpSpec::new(sport, port, flags)
            .seq(isn(sport).wrapping_add(1))
            .ack(their_isn.wrapping_add(1));
        self.feed(us, tcp_v4(SCANNER, TARGET, spec).raw());
    }

    /// An ICMP destination-unreachable quoting the SYN's first `quote` bytes.
    fn unreach(&mut self, us: u64, from: [u8; 4], ttl: u8, sport: u16, port: u16, code: u8) {
        self.unreach_quoting(us, from, ttl, sport, port, code, 28);
    }

    #[allow(clippy::too_many_arguments)]
    fn unreach_quoting(
        &mut self,
        us: u64,
        from: [u8; 4],
        ttl: u8,
        sport: u16,
        port: u16,
        code: u8,
        quote: usize,
    ) {
        let syn = Self::syn_packet(sport, port);
        self.feed(
            us,
            icmp_v4(from, SCANNER, 3, code, &syn[..quote])
                .ttl(ttl)
                .raw(),
        );
    }

    fn verdicts(&self) -> Vec<PortVerdict> {
        judge_all(&self.tracker.snapshot(), None)
    }
}

/// The IPv4 lab in one scan, so every port shares the target's baseline: TTL 63 from its
/// SYN/ACK, DSCP reflection from its stack's RST on port 81.
fn lab_v4() -> Vec<PortVerdict> {
    let mut c = Capture::default();
    // 22: open. The connect() scan completes the handshake, then closes with a RST.
    let their = 0x5eed_0000;
    c.syn(0, 40022, 22);
    c.answer(180, 40022, 22, SA, their, TARGET_TTL, 0);
    c.follow_up(210, 40022, 22, ACK, their);
    c.follow_up(350, 40022, 22, RA, their);
    // 81: closed, the stack's RST reflecting the probe's DSCP.
    c.syn(1_000, 40081, 81);
    c.answer(1_120, 40081, 81, RA, 0, TARGET_TTL, AF11);
    // 83: a REJECT --reject-with tcp-reset on the target: same TTL, DSCP 0.
    c.syn(2_000, 40083, 83);
    c.answer(2_140, 40083, 83, RA, 0, TARGET_TTL, 0);
    // 84: plain REJECT on the target: ICMP port-unreachable from its own address.
    c.syn(3_000, 40084, 84);
    c.unreach(3_150, TARGET, TARGET_TTL, 40084, 84, 3);
    // 86: a router's REJECT --reject-with tcp-reset: the target's address, one hop closer.
    c.syn(4_000, 40086, 86);
    c.answer(4_090, 40086, 86, RA, 0, 64, 0);
    // 88: a router's REJECT --reject-with icmp-admin-prohibited.
    c.syn(5_000, 40088, 88);
    c.unreach(5_090, ROUTER, 64, 40088, 88, 13);
    // 82: DROP. The kernel retransmits the SYN after 1 s (same seq, same port); synack
    // then retries from a new source port, which the kernel retransmits in turn.
    c.syn(6_000, 40082, 82);
    c.syn(1_006_000, 40082, 82);
    c.syn(2_006_000, 40182, 82);
    c.syn(3_006_000, 40182, 82);
    c.verdicts()
}

/// IPv6: port 81 closed by the stack (flow label set, DSCP reflected), port 83 reset by
/// ip6tables on the host (flow label 0, DSCP 0), port 89 admin-prohibited by a router.
fn lab_v6() -> Vec<PortVerdict> {
    let mut c = Capture::default();
    let syn = |sport: u16, port: u16| {
        tcp_v6(
            SCANNER6,
            TARGET6,
            TcpSpec::new(sport, port, SYN).seq(isn(sport)),
        )
        .tos(AF11)
        .flow_label(0x1f00d)
    };
    let rst = |sport: u16, port: u16| {
        tcp_v6(
            TARGET6,
            SCANNER6,
            TcpSpec::new(port, sport, RA)
                .seq(0)
                .ack(isn(sport).wrapping_add(1)),
        )
        .ttl(TARGET_TTL)
    };
    c.feed(0, syn(40081, 81).raw());
    c.feed(210, rst(40081, 81).tos(AF11).flow_label(0xabcde).raw());
    c.feed(1_000, syn(40083, 83).raw());
    c.feed(1_190, rst(40083, 83).raw());
    c.feed(2_000, syn(40089, 89).raw());
    let quote = syn(40089, 89).raw();
    c.feed(
        2_170,
        icmp_v6(ROUTER6, SCANNER6, 1, 1, &quote[..48]).ttl(64).raw(),
    );
    c.verdicts()
}

fn port(vs: &[PortVerdict], p: u16) -> PortVerdict {
    vs.iter()
        .find(|v| v.target.port() == p)
        .unwrap_or_else(|| panic!("no verdict for port {p}"))
        .clone()
}

/// connect() to 127.0.0.1:50000 from port 50000: the kernel's simultaneous open.
fn self_connect() -> PortVerdict {
    let mut c = Capture::default();
    let p: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    c.tracker.register(
        FlowKey {
            scanner: p,
            target: p,
        },
        Timestamp::from_micros(1_700_000_000_000_000),
    );
    let lo = [127, 0, 0, 1];
    let seq = isn(50000);
    c.feed(
        0,
        tcp_v4(lo, lo, TcpSpec::new(50000, 50000, SYN).seq(seq)).raw(),
    );
    c.feed(
        40,
        tcp_v4(lo, lo, TcpSpec::new(50000, 50000, SA).seq(seq).ack(seq + 1)).raw(),
    );
    c.feed(
        60,
        tcp_v4(
            lo,
            lo,
            TcpSpec::new(50000, 50000, ACK).seq(seq + 1).ack(seq + 1),
        )
        .raw(),
    );
    let v = c.verdicts().remove(0);
    assert_eq!((v.state, v.reason.name()), (State::Closed, "self-connect"));
    v
}

/// An unprivileged live scan: no capture, connect() said ECONNREFUSED.
fn not_observed() -> PortVerdict {
    let mut facts = LiveFacts {
        captured: false,
        ..Default::default()
    };
    facts.probes.insert(
        "198.18.2.1:81".parse().unwrap(),
        [ProbeRecord::new(
            "198.18.1.1:40081".parse().unwrap(),
            Timestamp(5),
            ConnectOutcome::Failed(libc::ECONNREFUSED),
        )]
        .into(),
    );
    let v = judge_all(&[], Some(&facts)).remove(0);
    assert!(!v.observed);
    v
}

// ---------------------------------------------------------------------------------------
// Snapshots
// ---------------------------------------------------------------------------------------

fn snapshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("snapshots")
        .join(format!("{name}.txt"))
}

fn opts(unicode: bool, color: bool) -> LadderOptions {
    LadderOptions {
        unicode,
        color,
        width: 80,
    }
}

/// Everything the renderers say about one verdict, as stored in its snapshot file.
fn render_all(v: &PortVerdict) -> String {
    format!(
        "{} {} {} responder={}\n\n{}\n{}\n{}\n",
        v.target,
        v.state,
        v.reason.name(),
        v.responder.as_str(),
        ladder(v, &opts(false, false)),
        ladder(v, &opts(true, false)),
        explain(v)
    )
}

fn check_snapshot(name: &str, v: &PortVerdict) {
    let actual = render_all(v);
    check_invariants(v);
    let path = snapshot_path(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|u| u == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_SNAPSHOTS=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs (rerun with UPDATE_SNAPSHOTS=1 to accept)\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

/// Removes ANSI SGR sequences (ESC [ ... m).
fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Every glyph the ladder uses is one column wide, so display width is the char count.
fn display_width(line: &str) -> usize {
    strip_ansi(line).chars().count()
}

fn check_ladder(v: &PortVerdict, o: &LadderOptions) -> String {
    let s = ladder(v, o);
    for line in s.lines() {
        assert!(
            display_width(line) <= o.width,
            "line wider than {}: {line:?}\n{s}",
            o.width
        );
    }
    if !o.unicode {
        assert!(s.is_ascii(), "non-ASCII in ASCII mode:\n{s}");
    }
    if !o.color {
        assert!(!s.contains('\x1b'), "escape codes without color:\n{s}");
    }
    s
}

fn check_invariants(v: &PortVerdict) {
    for width in [80, 100, 60, 40, 20] {
        for unicode in [false, true] {
            let plain = check_ladder(
                v,
                &LadderOptions {
                    unicode,
                    color: false,
                    width,
                },
            );
            let colored = check_ladder(
                v,
                &LadderOptions {
                    unicode,
                    color: true,
                    width,
                },
            );
            assert_eq!(strip_ansi(&colored), plain, "colour changes only colour");
        }
    }
    let e = explain(v);
    assert!(!e.is_empty() && !e.contains('\n'), "{e:?}");
}

// ---------------------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------------------

#[test]
fn open_port() {
    let v = port(&lab_v4(), 22);
    assert_eq!(v.state, State::Open);
    check_snapshot("open", &v);
}

#[test]
fn closed_by_the_stack() {
    let v = port(&lab_v4(), 81);
    assert_eq!(
        (v.state, v.reason.name(), v.responder),
        (State::Closed, "reset", Responder::Target)
    );
    check_snapshot("closed_stack_rst", &v);
}

#[test]
fn reset_by_a_firewall_on_the_target() {
    let v = port(&lab_v4(), 83);
    assert_eq!(
        (v.state, v.responder),
        (State::Filtered, Responder::TargetFirewall)
    );
    let e = explain(&v);
    assert!(
        e.contains("iptables -A INPUT -p tcp --dport 83 -j REJECT --reject-with tcp-reset"),
        "{e}"
    );
    check_snapshot("target_firewall_rst", &v);
}

#[test]
fn reset_forged_by_a_router() {
    let v = port(&lab_v4(), 86);
    assert_eq!(
        (v.state, v.responder),
        (State::Filtered, Responder::Middlebox)
    );
    let l = ladder(&v, &opts(false, false));
    assert!(l.contains("on-path device (1 hop closer)"), "{l}");
    let e = explain(&v);
    assert!(e.contains("-A FORWARD -p tcp --dport 86"), "{e}");
    check_snapshot("router_rst", &v);
}

#[test]
fn icmp_port_unreachable_from_the_target() {
    let v = port(&lab_v4(), 84);
    assert_eq!(
        (v.reason.name(), v.responder),
        ("port-unreach", Responder::TargetFirewall)
    );
    check_snapshot("target_icmp_port_unreach", &v);
}

#[test]
fn icmp_admin_prohibited_from_a_router() {
    let v = port(&lab_v4(), 88);
    assert_eq!(
        (v.reason.name(), v.responder),
        ("admin-prohibited", Responder::Middlebox)
    );
    let l = ladder(&v, &opts(false, false));
    assert!(l.contains("router 198.18.1.254"), "{l}");
    let e = explain(&v);
    assert!(e.contains("--reject-with icmp-admin-prohibited"), "{e}");
    check_snapshot("router_icmp_admin_prohibited", &v);
}

#[test]
fn dropped_with_retransmission_and_retry() {
    let v = port(&lab_v4(), 82);
    assert_eq!((v.state, v.reason.name()), (State::Filtered, "no-response"));
    let l = ladder(&v, &opts(false, false));
    assert!(l.contains("(retransmission)"), "{l}");
    assert!(l.contains("(retry from :40182)"), "{l}");
    assert!(l.contains("no reply after 3.0s"), "{l}");
    check_snapshot("drop_retransmission_retry", &v);
}

#[test]
fn ipv6_closed_by_the_stack() {
    let v = port(&lab_v6(), 81);
    assert_eq!((v.state, v.responder), (State::Closed, Responder::Target));
    check_snapshot("ipv6_closed", &v);
}

#[test]
fn ipv6_reset_by_ip6tables() {
    let v = port(&lab_v6(), 83);
    assert_eq!(
        (v.state, v.responder),
        (State::Filtered, Responder::TargetFirewall)
    );
    assert!(explain(&v).contains("`ip6tables -A INPUT"));
    check_snapshot("ipv6_target_firewall_rst", &v);
}

#[test]
fn ipv6_admin_prohibited_from_a_router() {
    let v = port(&lab_v6(), 89);
    assert_eq!(v.reason.name(), "admin-prohibited");
    assert!(explain(&v).contains("icmp6-adm-prohibited"));
    check_snapshot("ipv6_router_adm_prohibited", &v);
}

#[test]
fn self_connect_is_explained() {
    let v = self_connect();
    assert!(explain(&v).contains("simultaneous open"));
    check_snapshot("self_connect", &v);
}

#[test]
fn not_observed_is_explained() {
    let v = not_observed();
    let e = explain(&v);
    assert!(e.contains("ECONNREFUSED"), "{e}");
    check_snapshot("not_observed", &v);
}

// ---------------------------------------------------------------------------------------
// Robustness: whatever the trace, the output keeps its promises
// ---------------------------------------------------------------------------------------

#[test]
fn colour_only_when_asked() {
    for v in lab_v4() {
        let plain = ladder(&v, &opts(true, false));
        let colored = ladder(&v, &opts(true, true));
        assert!(!plain.contains('\x1b'));
        assert!(colored.contains("\x1b["), "{colored}");
        assert_eq!(strip_ansi(&colored), plain);
    }
    let v = port(&lab_v4(), 81);
    let colored = ladder(&v, &opts(false, true));
    assert!(colored.contains("\x1b[36m"), "outgoing in cyan");
    assert!(colored.contains("\x1b[31m"), "RST in red");
    let v = port(&lab_v4(), 88);
    assert!(
        ladder(&v, &opts(false, true)).contains("\x1b[33m"),
        "ICMP in yellow"
    );
    let v = port(&lab_v4(), 22);
    assert!(
        ladder(&v, &opts(false, true)).contains("\x1b[32m"),
        "incoming in green"
    );
}

#[test]
fn every_lab_verdict_fits_and_explains() {
    for v in lab_v4().iter().chain(&lab_v6()) {
        check_invariants(v);
    }
}

#[test]
fn empty_trace() {
    let mut facts = LiveFacts {
        captured: true,
        ..Default::default()
    };
    facts.probes.insert(
        "198.18.2.1:82".parse().unwrap(),
        [ProbeRecord::new(
            "198.18.1.1:40082".parse().unwrap(),
            Timestamp(5),
            ConnectOutcome::TimedOut,
        )]
        .into(),
    );
    let v = judge_all(&[], Some(&facts)).remove(0);
    assert!(v.trace.is_empty());
    check_invariants(&v);
    let l = ladder(&v, &opts(false, false));
    assert!(l.contains("no packets captured"), "{l}");
    assert!(l.starts_with("scanner "), "{l}");
    assert!(explain(&v).contains("no packet of port 82"));
}

#[test]
fn a_full_trace_of_24_packets() {
    let mut c = Capture::default();
    let their = 0x1234;
    c.syn(0, 40022, 22);
    c.answer(100, 40022, 22, SA, their, TARGET_TTL, 0);
    for i in 0..40 {
        c.follow_up(200 + i * 10, 40022, 22, ACK | TcpFlags::PSH, their);
    }
    let v = c.verdicts().remove(0);
    assert_eq!(v.trace.len(), MAX_TRACE);
    check_invariants(&v);
    let l = ladder(&v, &opts(true, false));
    // Header, lifelines, one row per packet, then what the attempt's cap left out.
    assert_eq!(v.left_out, 42 - MAX_TRACE as u32);
    assert_eq!(l.lines().count(), 2 + MAX_TRACE + 1, "{l}");
    assert!(
        l.lines().last().unwrap().contains("18 packets left out"),
        "{l}"
    );
}

#[test]
fn icmp_without_a_quoted_sequence_number() {
    let mut c = Capture::default();
    c.syn(0, 40088, 88);
    // 20 bytes of IP header and only the 4 bytes of ports: no sequence number.
    c.unreach_quoting(90, ROUTER, 64, 40088, 88, 13, 24);
    let v = c.verdicts().remove(0);
    assert_eq!(v.reason.name(), "admin-prohibited");
    assert_eq!(v.trace[1].seq, 0);
    check_invariants(&v);
    let l = ladder(&v, &opts(false, false));
    assert!(l.contains("ICMP admin-prohibited ttl=64"), "{l}");
}

#[test]
fn answers_without_a_captured_syn() {
    let mut c = Capture::default();
    let key = FlowKey {
        scanner: "198.18.1.1:40081".parse().unwrap(),
        target: "198.18.2.1:81".parse().unwrap(),
    };
    c.tracker
        .register(key, Timestamp::from_micros(1_700_000_000_000_000));
    c.answer(120, 40081, 81, RA, 0, TARGET_TTL, 0);
    let v = c.verdicts().remove(0);
    check_invariants(&v);
    let l = ladder(&v, &opts(false, false));
    assert!(l.starts_with("scanner :40081"), "{l}");
}

// Arbitrary traces, built directly: nothing a capture could hold may break the layout.

fn arb_addr() -> impl Strategy<Value = std::net::IpAddr> {
    prop_oneof![
        Just("198.18.1.1".parse().unwrap()),
        Just("198.18.2.1".parse().unwrap()),
        Just("198.18.1.254".parse().unwrap()),
        Just("10.255.255.254".parse().unwrap()),
        Just("2001:db8:2::1".parse().unwrap()),
        Just("2001:db8:ffff:ffff:ffff:ffff:ffff:fffe".parse().unwrap()),
    ]
}

fn arb_packet() -> impl Strategy<Value = TracePacket> {
    (
        (
            0u64..20_000_000_000,
            any::<bool>(),
            any::<bool>(),
            any::<u8>(),
        ),
        (any::<bool>(), 1u8..5, any::<u8>(), arb_addr(), any::<u8>()),
        (any::<u8>(), any::<u32>(), any::<u32>(), any::<u16>()),
        (any::<bool>(), prop::option::of(0u32..0x100000)),
    )
        .prop_map(
            |(
                (ts, out, icmp, flags),
                (v6, ty, code, from, ttl),
                (dscp, seq, ack, port),
                (rx, fl),
            )| {
                TracePacket {
                    ts: Timestamp(ts),
                    dir: if out { Dir::Out } else { Dir::In },
                    kind: if icmp {
                        PacketKind::Icmp(IcmpKind {
                            v6,
                            icmp_type: if v6 { ty } else { ty + 2 },
                            code,
                        })
                    } else {
                        PacketKind::Tcp(TcpFlags(flags))
                    },
                    from,
                    ttl,
                    dscp: dscp >> 2,
                    ip_id: None,
                    flow_label: fl,
                    seq,
                    ack,
                    win: 0,
                    scanner_port: port,
                    client: "198.18.1.1".parse().unwrap(),
                    retransmission: rx,
                    cut: false,
                    ae: false,
                    payload_len: 0,
                    early: false,
                }
            },
        )
}

fn arb_verdict() -> impl Strategy<Value = PortVerdict> {
    (
        prop::collection::vec(arb_packet(), 0..30),
        prop_oneof![
            Just("198.18.2.1:81"),
            Just("[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:65535")
        ],
        prop_oneof![
            Just(Reason::SynAck),
            Just(Reason::Reset),
            Just(Reason::NoResponse),
            Just(Reason::Icmp(icmp_kind(false, 3, 3))),
            Just(Reason::Icmp(icmp_kind(false, 3, 13))),
            Just(Reason::Icmp(icmp_kind(true, 1, 5))),
            Just(Reason::ConnRefused),
            Just(Reason::SelfConnect),
            Just(Reason::Error),
        ],
        prop_oneof![
            Just(Responder::Target),
            Just(Responder::TargetFirewall),
            Just(Responder::Middlebox),
            Just(Responder::Unknown),
        ],
        any::<bool>(),
        prop::collection::vec(arb_evidence(), 0..4),
    )
        .prop_map(
            |(mut trace, target, reason, responder, observed, evidence)| {
                trace.sort_by_key(|p| p.ts);
                PortVerdict {
                    target: target.parse().unwrap(),
                    state: match reason {
                        Reason::SynAck => State::Open,
                        Reason::Reset | Reason::ConnRefused | Reason::SelfConnect => State::Closed,
                        _ => State::Filtered,
                    },
                    reason,
                    responder,
                    evidence: evidence.into(),
                    started: trace.first().map(|p| p.ts).unwrap_or_default(),
                    trace,
                    attempts: 1,
                    observed,
                    note: None,
                    outcomes: Vec::new(),
                    left_out: 0,
                }
            },
        )
}

fn icmp_kind(v6: bool, icmp_type: u8, code: u8) -> IcmpKind {
    IcmpKind {
        v6,
        icmp_type,
        code,
    }
}

/// Any evidence fact, with any numbers.
fn arb_evidence() -> impl Strategy<Value = Evidence> {
    let from = prop_oneof![
        Just(StackPacket::SynAcks),
        Just(StackPacket::DscpReflectingRsts),
        Just(StackPacket::IcmpErrors)
    ];
    prop_oneof![
        (any::<u8>(), any::<u8>(), any::<u8>(), from).prop_map(|(ttl, hops, t, from)| {
            Evidence::RstDistance {
                ttl,
                target: TargetDistance { hops, ttl: t, from },
            }
        }),
        any::<u8>().prop_map(|probe| Evidence::RstReflectsDscp { probe }),
        (any::<u8>(), any::<u8>(), any::<u16>()).prop_map(|(probe, rst, port)| {
            Evidence::RstDscpNotReflected {
                probe,
                rst,
                reflected_on_port: port,
            }
        }),
        any::<u8>().prop_map(|probe| Evidence::RstDscpInconclusive { probe }),
        (any::<u16>(), any::<u32>()).prop_map(|(stack_port, stack_label)| {
            Evidence::RstFlowLabelZero {
                stack_port,
                stack_label,
            }
        }),
        any::<u32>().prop_map(|label| Evidence::RstFlowLabel { label }),
        Just(Evidence::ForgedOnTargetHost),
        Just(Evidence::NoBaseline),
        any::<u8>().prop_map(|ttl| Evidence::IcmpFromTarget {
            kind: icmp_kind(false, 3, 3),
            ttl
        }),
        (any::<u32>(), any::<u64>())
            .prop_map(|(syns, span_ns)| Evidence::NoAnswer { syns, span_ns }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Evidence lines wrap at the width with a hanging indent; only a word longer than
    /// the line is left to run past it, and no word is lost.
    #[test]
    fn evidence_lines_wrap_at_the_width(v in arb_verdict(), width in 40usize..160) {
        let report = ScanReport {
            verdicts: vec![v.clone()],
            ..ScanReport::default()
        };
        let opts = TextOptions { unicode: false, width, show_all: true, ..TextOptions::default() };
        let mut out = Vec::new();
        text::write(&mut out, &report, &opts).unwrap();
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        let start = lines.iter().position(|l| l.starts_with(&format!("{}/tcp", v.target.port()))).unwrap();
        let evidence: Vec<&str> = lines[start + 1..]
            .iter()
            .take_while(|l| l.starts_with("          `- ") || l.starts_with("             "))
            .copied()
            .collect();
        for l in &evidence {
            let long_word = l.split_whitespace().count() <= 2;
            prop_assert!(l.chars().count() <= width || long_word, "{} > {}: {:?}", l.chars().count(), width, l);
        }
        if v.state != State::Open {
            let said: Vec<String> = v.evidence.iter().map(|e| EvidenceWords(e).to_string()).collect();
            let words: Vec<&str> = evidence.iter().flat_map(|l| l.split_whitespace()).filter(|w| *w != "`-").collect();
            let expected: Vec<&str> = said.iter().flat_map(|s| s.split_whitespace()).collect();
            prop_assert_eq!(words, expected);
        }
    }

    #[test]
    fn any_trace_renders_within_bounds(
        v in arb_verdict(),
        width in 0usize..200,
        unicode in any::<bool>(),
        color in any::<bool>(),
    ) {
        check_ladder(&v, &LadderOptions { unicode, color, width });
        let e = explain(&v);
        prop_assert!(!e.is_empty());
    }
}

/// "Not shown" groups ports by the reason's word, as nmap does: a router's ICMP
/// host-unreach and connect()'s EHOSTUNREACH (two reasons with one word) are one group.
#[test]
fn not_shown_groups_reasons_by_their_word() {
    let mut verdicts = Vec::new();
    for port in 1000..1060u16 {
        let mut v = not_observed();
        v.target.set_port(port);
        v.state = State::Filtered;
        v.reason = if port % 2 == 0 {
            Reason::HostUnreach
        } else {
            Reason::Icmp(icmp_kind(false, 3, 1))
        };
        verdicts.push(v);
    }
    assert_eq!(verdicts[0].reason.name(), verdicts[1].reason.name());
    let report = ScanReport {
        verdicts,
        ..ScanReport::default()
    };
    let mut out = Vec::new();
    text::write(&mut out, &report, &TextOptions::default()).unwrap();
    let out = String::from_utf8(out).unwrap();
    let shown: Vec<&str> = out.lines().filter(|l| l.starts_with("Not shown")).collect();
    assert_eq!(
        shown,
        ["Not shown: 60 filtered ports (host-unreach)"],
        "{out}"
    );
    assert!(!out.lines().any(|l| l.contains("/tcp")), "{out}");
}
