//! When the network holds back (issue 12): a target whose REJECT rule's ICMP errors are
//! rate-limited by its kernel (the lab turns Linux's limits off; these tests turn them
//! back on in the target's namespace), a DROP rule as the control, and an unused address
//! on the scanner's own link (no ARP/ND reply). Real iptables rules, the real binary.
//! Needs root; under CI=true a missing root is a failure.

use std::collections::BTreeMap;

use serde_json::Value;
use synack_lab::{self as lab, Family, Lab};

const BIN: &str = env!("CARGO_BIN_EXE_synack");

const REJECTED: (u16, u16) = (1000, 1149);
const DROPPED: (u16, u16) = (2000, 2049);
/// Short, so the test is quick; the default is 10s.
const BUDGET: &str = "4s";

#[derive(Debug, Default)]
struct Scan {
    hosts: BTreeMap<String, Value>,
    ports: BTreeMap<u16, Value>,
    summary: Value,
    stdout: String,
}

fn scan(lab: &Lab, args: &[&str]) -> Scan {
    let out = lab
        .command(&lab.scanner, BIN)
        .arg("scan")
        .args(args)
        .arg("--json")
        .output()
        .expect("run synack");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "synack failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut s = Scan::default();
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        match v["type"].as_str() {
            Some("port") => {
                s.ports.insert(v["port"].as_u64().unwrap() as u16, v);
            }
            Some("host") => {
                s.hosts.insert(v["target"].as_str().unwrap().to_string(), v);
            }
            Some("summary") => s.summary = v,
            _ => {}
        }
    }
    s.stdout = stdout;
    s
}

/// The lab, with Linux's default ICMP rate limits back on in the target: one error per
/// second per peer after a burst of 6 (IPv4), one per 100 ms (IPv6).
fn rate_limiting_lab(tag: &str) -> Lab {
    let lab = Lab::create(tag).expect("lab");
    lab.run(
        &lab.target,
        &[
            "sysctl",
            "-qw",
            "net.ipv4.icmp_ratelimit=1000",
            "net.ipv4.icmp_ratemask=6168",
            "net.ipv4.icmp_msgs_per_sec=1000",
            "net.ipv4.icmp_msgs_burst=50",
            "net.ipv6.icmp.ratelimit=100",
        ],
    )
    .expect("sysctl");
    for family in Family::BOTH {
        let reject = format!("{}:{}", REJECTED.0, REJECTED.1);
        let drop = format!("{}:{}", DROPPED.0, DROPPED.1);
        for (range, verdict) in [(&reject, "REJECT"), (&drop, "DROP")] {
            lab.iptables(
                &lab.target,
                family,
                &["-A", "INPUT", "-p", "tcp", "--dport", range, "-j", verdict],
            )
            .expect("iptables");
        }
    }
    lab
}

fn evidence(v: &Value) -> String {
    v["evidence"].to_string()
}

fn count(s: &Scan, key: &str) -> u64 {
    s.summary[key].as_u64().unwrap_or(0)
}

fn rejected_ports_end_up_rejected_or_say_they_may_be(family: Family, tag: &str) {
    let lab = rate_limiting_lab(tag);
    let target = family.target().to_string();
    let ports = format!("{}-{}", REJECTED.0, REJECTED.1);
    let s = scan(&lab, &[&target, "-p", &ports, "--slow-retry-time", BUDGET]);
    let n = usize::from(REJECTED.1 - REJECTED.0 + 1);
    assert_eq!(s.ports.len(), n, "{}", s.stdout);
    let (mut rejected, mut changed, mut maybe) = (0, 0, 0);
    for (port, v) in &s.ports {
        let slow = evidence(v).contains("answered only when re-probed slower");
        match v["reason"].as_str() {
            Some("port-unreach") => {
                assert_eq!(v["responder"], "target-firewall", "{port}: {v}");
                rejected += 1;
                changed += usize::from(slow);
            }
            Some("no-response") => {
                assert!(!slow, "{port}: {v}");
                assert_eq!(
                    v["note"],
                    "no answer; this target rate-limits its ICMP errors, so this may be a REJECT whose error was suppressed",
                    "{port}: {v}"
                );
                maybe += 1;
            }
            _ => panic!("port {port}: {v}"),
        }
    }
    eprintln!(
        "{family:?}: {rejected} port-unreach ({changed} on the slow retry), {maybe} may be REJECTs, in {}s",
        s.summary["elapsed_s"]
    );
    // The kernel's limit held errors back at full speed, and the slow retry got some.
    assert!(changed > 0, "{}", s.stdout);
    assert!(rejected < n || maybe == 0, "{}", s.stdout);
    assert_eq!(
        count(&s, "changed_on_retry"),
        changed as u64,
        "{}",
        s.summary
    );
    assert_eq!(count(&s, "maybe_suppressed"), maybe as u64, "{}", s.summary);
    // Bounded: the budget, the first wait and a few timeouts.
    let elapsed = s.summary["elapsed_s"].as_f64().unwrap();
    assert!(elapsed < 12.0, "{elapsed}");

    // The table says it in its last line. (The bucket needs a token again first: a
    // target whose bucket is empty when the scan starts sends no ICMP error at all, and
    // its silence is not suspected.)
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let out = lab
        .command(&lab.scanner, BIN)
        .args(["scan", &target, "-p", &ports, "--slow-retry-time", "2s"])
        .output()
        .expect("run synack");
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.contains("changed verdict on retry (ICMP rate limiting)")
            && last.contains("may be REJECTs whose ICMP error was suppressed"),
        "{text}"
    );

    // Off: the rate limit shows as silence, without a claim either way.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let s = scan(&lab, &[&target, "-p", &ports, "--slow-retry-time", "0"]);
    assert_eq!(count(&s, "changed_on_retry"), 0, "{}", s.summary);
    assert!(
        s.ports.values().all(|v| v["note"].is_null()),
        "{}",
        s.stdout
    );
}

/// The capture of a rate-limited scan, replayed, says what the scan said: every REJECT-ed
/// port port-unreach from the target's firewall or silent with the "may be a REJECT"
/// note (the replay sees the rate limit in the packets: a port unanswered, then answered
/// with an ICMP error), port by port as live.
#[test]
fn a_replay_of_a_rate_limited_scan_says_the_same() {
    if !lab::root_or_skip("a_replay_of_a_rate_limited_scan_says_the_same") {
        return;
    }
    let lab = rate_limiting_lab("rlreplay");
    let dir = std::env::temp_dir().join(format!("synack-rl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("rl.pcap");
    let target = Family::V4.target().to_string();
    let ports = format!("{}-{}", REJECTED.0, REJECTED.1);
    let live = scan(
        &lab,
        &[
            &target,
            "-p",
            &ports,
            "--slow-retry-time",
            BUDGET,
            "-w",
            pcap.to_str().unwrap(),
        ],
    );
    let out = std::process::Command::new(BIN)
        .args(["replay", pcap.to_str().unwrap(), "--json"])
        .output()
        .expect("replay");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut replayed = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if v["type"] == "port" {
            replayed.insert(v["port"].as_u64().unwrap() as u16, v);
        }
    }
    assert_eq!(replayed.len(), live.ports.len());
    let mut noted = 0;
    for (port, lv) in &live.ports {
        let rv = &replayed[port];
        for field in ["state", "reason", "responder", "note"] {
            assert_eq!(
                lv[field], rv[field],
                "port {port} {field}: live {lv}\nreplay {rv}"
            );
        }
        noted += usize::from(!rv["note"].is_null());
    }
    assert!(
        noted > 0,
        "some ports stayed silent and say they may be REJECTs"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn rate_limited_rejects_v4() {
    if !lab::root_or_skip("rate_limited_rejects_v4") {
        return;
    }
    rejected_ports_end_up_rejected_or_say_they_may_be(Family::V4, "rl4");
}

#[test]
fn rate_limited_rejects_v6() {
    if !lab::root_or_skip("rate_limited_rejects_v6") {
        return;
    }
    rejected_ports_end_up_rejected_or_say_they_may_be(Family::V6, "rl6");
}

#[test]
fn a_drop_rule_stays_no_response_without_a_rate_limit_claim() {
    if !lab::root_or_skip("a_drop_rule_stays_no_response_without_a_rate_limit_claim") {
        return;
    }
    let lab = rate_limiting_lab("rldrop");
    for family in Family::BOTH {
        let target = family.target().to_string();
        let ports = format!("{}-{}", DROPPED.0, DROPPED.1);
        let s = scan(&lab, &[&target, "-p", &ports, "--timeout", "200ms"]);
        assert_eq!(s.ports.len(), 50, "{}", s.stdout);
        for (port, v) in &s.ports {
            assert_eq!(
                (v["state"].as_str(), v["reason"].as_str()),
                (Some("filtered"), Some("no-response")),
                "{port}: {v}"
            );
            assert!(v["note"].is_null(), "{port}: {v}");
            // No slow re-probe: the two attempts of --retries 1.
            assert_eq!(v["attempts"], 2, "{port}: {v}");
        }
        assert_eq!(count(&s, "changed_on_retry"), 0, "{}", s.summary);
        assert_eq!(count(&s, "maybe_suppressed"), 0, "{}", s.summary);
    }
}

/// An unused address on the scanner's own link: the kernel's ARP/ND requests go
/// unanswered, no SYN leaves, and after ~3 s connect() fails with host-unreach from the
/// scanner's own stack. Reported as such, not as a silent port.
#[test]
fn no_arp_or_nd_reply_is_host_unreach_from_our_own_stack() {
    if !lab::root_or_skip("no_arp_or_nd_reply_is_host_unreach_from_our_own_stack") {
        return;
    }
    let lab = Lab::create("noarp").expect("lab");
    for (addr, word) in [("198.18.1.77", "ARP"), ("2001:db8:1::77", "ND")] {
        let s = scan(&lab, &[addr, "-p", "22,80"]);
        assert_eq!(s.ports.len(), 2, "{}", s.stdout);
        for v in s.ports.values() {
            assert_eq!(
                (v["state"].as_str(), v["reason"].as_str()),
                (Some("filtered"), Some("host-unreach")),
                "{v}"
            );
            let e = evidence(v);
            assert!(
                e.contains(&format!("no {word} reply: the scanner's own stack gave up resolving {addr} (no packet left this host)")),
                "{v}"
            );
            // Nothing was on the wire.
            assert_eq!(v["trace"], serde_json::json!([]), "{v}");
        }
        let elapsed = s.summary["elapsed_s"].as_f64().unwrap();
        eprintln!("{addr}: host-unreach after {elapsed}s");
        assert!((2.0..8.0).contains(&elapsed), "{elapsed}");
    }
    // With discovery: one line, down for want of an ARP/ND reply; the live host is scanned.
    let s = scan(
        &lab,
        &["198.18.1.77", "2001:db8:1::77", "198.18.2.1", "-p", "22"],
    );
    for addr in ["198.18.1.77", "2001:db8:1::77"] {
        let h = &s.hosts[addr];
        assert_eq!(
            (h["state"].as_str(), h["reason"].as_str()),
            (Some("down"), Some("no-neighbour-reply")),
            "{h}"
        );
    }
    assert_eq!(s.hosts["198.18.2.1"]["state"], "up", "{}", s.stdout);
    assert_eq!(s.ports.len(), 1, "{}", s.stdout);
    let out = lab
        .command(&lab.scanner, BIN)
        .args(["scan", "198.18.1.77", "198.18.2.1", "-p", "22"])
        .output()
        .expect("run synack");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "198.18.1.77: down: no ARP reply: the scanner's own stack got no answer for 198.18.1.77"
        ),
        "{text}"
    );
}
