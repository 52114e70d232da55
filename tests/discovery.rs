//! Host discovery in the lab: the target answers for 198.19.0.0/16 (AnyIP, 443 open,
//! the rest closed) and the router blackholes 198.19.128.0/24 (nothing there answers,
//! not even with ICMP). Hosts down are one line / one JSON host object each, without
//! port rows; hosts up say which probe proved them and are port-scanned as before.
//! Needs root; under CI=true a missing root is a failure.

use std::collections::BTreeMap;
use std::process::Output;

use serde_json::Value;
use synack_lab::{self as lab, Lab};

const BIN: &str = env!("CARGO_BIN_EXE_synack");

const LIVE: &str = "198.19.0.0/29";
const DEAD: &str = "198.19.128.0/29";

fn lab_with_dead_hosts(tag: &str) -> Lab {
    let mut lab = Lab::standard(tag).expect("build lab");
    lab.answer_for_prefix("198.19.0.0/16", 443)
        .expect("AnyIP prefix");
    lab.blackhole("198.19.128.0/24").expect("blackhole");
    lab
}

#[derive(Debug, Default)]
struct Scan {
    hosts: BTreeMap<String, Value>,
    ports: Vec<Value>,
    summary: Value,
    stdout: String,
}

fn parse(out: &Output) -> Scan {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "synack failed: {stderr}\n{stdout}");
    let mut scan = Scan::default();
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        match v["type"].as_str() {
            Some("host") => {
                let t = v["target"].as_str().unwrap().to_string();
                assert!(scan.hosts.insert(t, v).is_none(), "a host twice: {line}");
            }
            Some("port") => scan.ports.push(v),
            Some("summary") => scan.summary = v,
            // A scan's JSON Lines start with the run object.
            Some("run") => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    scan.stdout = stdout;
    scan
}

fn scan(lab: &Lab, extra: &[&str]) -> Scan {
    let out = lab::command(&lab.scanner, BIN)
        .args(["scan", LIVE, DEAD, "-p", "22,443", "--json"])
        .args(extra)
        .output()
        .expect("run synack");
    parse(&out)
}

fn dead(i: u8) -> String {
    format!("198.19.128.{i}")
}

#[test]
fn discovery_reports_dead_hosts_once_and_scans_live_ones() {
    if !lab::root_or_skip("discovery_reports_dead_hosts_once_and_scans_live_ones") {
        return;
    }
    let lab = lab_with_dead_hosts("disc");
    lab.iptables(
        &lab.router,
        lab::Family::V4,
        &[
            "-A",
            "FORWARD",
            "-p",
            "tcp",
            "-d",
            "198.19.0.7",
            "-j",
            "DROP",
        ],
    )
    .expect("iptables");
    let s = scan(&lab, &["--timeout", "200ms"]);
    assert_eq!(s.hosts.len(), 16, "{}", s.stdout);
    for i in 0..8 {
        let h = &s.hosts[&dead(i)];
        assert_eq!(h["state"], "down", "{h}");
        assert_eq!(
            h["probes"],
            serde_json::json!(["echo", "timestamp", "80", "443"]),
            "{h}"
        );
        let up = &s.hosts[&format!("198.19.0.{i}")];
        assert_eq!(up["state"], "up", "{up}");
        // The first answer read proves it: all four probes are answered here.
        let (probe, reason) = (up["probe"].as_str(), up["reason"].as_str());
        assert!(
            matches!(
                (probe, reason),
                (Some("echo"), Some("echo-reply"))
                    | (Some("timestamp"), Some("timestamp-reply"))
                    | (Some("80"), Some("conn-refused"))
                    | (Some("443"), Some("syn-ack"))
            ),
            "{up}"
        );
    }
    // 198.19.0.7's TCP is dropped on the way: only ICMP can prove it up.
    let up = &s.hosts["198.19.0.7"];
    assert!(
        matches!(up["probe"].as_str(), Some("echo" | "timestamp")),
        "{up}"
    );
    // No port rows for hosts down; both ports of every host up, verdicts as without
    // discovery (its own 443 probe is not counted as an attempt of the port's).
    assert_eq!(s.ports.len(), 16, "{}", s.stdout);
    for p in &s.ports {
        let t = p["target"].as_str().unwrap();
        assert!(t.starts_with("198.19.0."), "{p}");
        let want = match (t, p["port"].as_u64()) {
            ("198.19.0.7", _) => "filtered",
            (_, Some(443)) => "open",
            _ => "closed",
        };
        assert_eq!(p["state"], want, "{p}");
        if t != "198.19.0.7" {
            assert_eq!(p["attempts"], 1, "{p}");
        }
    }
    assert_eq!(s.summary["hosts_down"], 8, "{}", s.summary);
    assert_eq!(s.summary["open"], 7, "{}", s.summary);

    // The table: one line per host down, the proof under each report's heading.
    let out = lab::command(&lab.scanner, BIN)
        .args(["scan", LIVE, DEAD, "-p", "22,443", "--timeout", "200ms"])
        .output()
        .expect("run synack");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for i in 0..8 {
        let line = format!("{}: down: no answer to echo, timestamp, 80, 443", dead(i));
        assert_eq!(text.matches(&line).count(), 1, "{text}");
        assert!(!text.contains(&format!("report for {}", dead(i))), "{text}");
    }
    assert!(
        text.contains("198.19.0.7: up: echo-reply to echo after")
            || text.contains("198.19.0.7: up: timestamp-reply to timestamp after"),
        "{text}"
    );
    assert!(text.contains("; 8 hosts down"), "{text}");
}

#[test]
fn no_discovery_keeps_a_row_per_port() {
    if !lab::root_or_skip("no_discovery_keeps_a_row_per_port") {
        return;
    }
    let lab = lab_with_dead_hosts("nodisc");
    let s = scan(&lab, &["--no-discovery", "--timeout", "200ms"]);
    assert!(s.hosts.is_empty(), "{}", s.stdout);
    assert_eq!(s.ports.len(), 32, "{}", s.stdout);
    let filtered = s
        .ports
        .iter()
        .filter(|p| p["target"].as_str().unwrap().starts_with("198.19.128."))
        .inspect(|p| assert_eq!(p["reason"], "no-response", "{p}"))
        .count();
    assert_eq!(filtered, 16);
}

#[test]
fn unprivileged_discovery_uses_connect() {
    if !lab::root_or_skip("unprivileged_discovery_uses_connect") {
        return;
    }
    let lab = lab_with_dead_hosts("discnobody");
    let (dir, bin) = lab::runnable_by_anyone(BIN, "disc").expect("a copy of synack");
    // Ping sockets for nobody's group only if the namespace allows them: both ways work.
    let pings = lab::read_sysctl(&lab.scanner, "net.ipv4.ping_group_range")
        .map(|r| {
            let v: Vec<u32> = r
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            v.len() == 2 && v[0] <= 65534 && 65534 <= v[1]
        })
        .unwrap_or(false);
    let out = lab::command(&lab.scanner, "setpriv")
        .args(lab::AS_NOBODY)
        .arg(&bin)
        .args(["scan", LIVE, DEAD, "-p", "22,443", "--json"])
        .output()
        .expect("setpriv");
    let s = parse(&out);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(s.summary["captured"], false);
    let probes = if pings {
        serde_json::json!(["echo", "80", "443"])
    } else {
        serde_json::json!(["80", "443"])
    };
    for i in 0..8 {
        let h = &s.hosts[&dead(i)];
        assert_eq!(h["state"], "down", "{h}");
        assert_eq!(h["probes"], probes, "{h}");
        let up = &s.hosts[&format!("198.19.0.{i}")];
        assert_eq!(up["state"], "up", "{up}");
        if !pings {
            // 80 is closed (a RST: conn-refused), 443 open: whichever came first.
            assert!(matches!(up["probe"].as_str(), Some("80" | "443")), "{up}");
        }
    }
    assert_eq!(s.ports.len(), 16, "{}", s.stdout);
}

/// `--ladder` shows each host's discovery exchange as captured: a host down its echo,
/// timestamp and connect() probes sent twice without an answer; a host up the answer that
/// proved it, above its port ladders.
#[test]
fn ladder_shows_the_discovery_exchange() {
    if !lab::root_or_skip("ladder_shows_the_discovery_exchange") {
        return;
    }
    let lab = lab_with_dead_hosts("discladder");
    let out = lab::command(&lab.scanner, BIN)
        .args([
            "scan",
            "198.19.0.1",
            "198.19.128.1",
            "-p",
            "443",
            "--timeout",
            "200ms",
            "--ladder",
            "--ascii",
        ])
        .output()
        .expect("run synack");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // The host down: its line, then a ladder of what was sent, twice each, unanswered.
    let down = text
        .split("198.19.128.1: down: no answer to echo, timestamp, 80, 443")
        .nth(1)
        .unwrap_or_else(|| panic!("no down line: {text}"));
    let down_ladder: String = down
        .lines()
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(down_ladder.contains("host 198.19.128.1"), "{down_ladder}");
    for (label, n) in [
        ("echo-request id=", 2),
        ("timestamp-request id=", 2),
        ("SYN to :80 seq=0", 2),
        ("SYN to :443 seq=0", 2),
        ("(retry)", 2),
    ] {
        assert_eq!(
            down_ladder.matches(label).count(),
            n,
            "{label}: {down_ladder}"
        );
    }
    assert!(
        !down_ladder.contains("<-"),
        "nothing answered: {down_ladder}"
    );
    assert!(
        down_ladder.contains("no reply after") && down_ladder.contains("(2 echo-requests, "),
        "{down_ladder}"
    );
    // The host up: its heading, the proof, then its discovery ladder with the answers
    // (the AnyIP target answers echo, timestamp, 80 with a RST and 443 with a SYN/ACK).
    let up = text
        .split("synack report for 198.19.0.1")
        .nth(1)
        .unwrap_or_else(|| panic!("no report: {text}"));
    let up_ladder: String = up
        .lines()
        .skip_while(|l| !l.starts_with("198.19.0.1: up: "))
        .skip(1)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        up_ladder.contains("host 198.19.0.1"),
        "{up_ladder}\n---\n{text}"
    );
    for (label, incoming) in [
        ("echo-request id=", false),
        ("echo-reply id=", true),
        ("SYN to :80", false),
        ("RST/ACK from :80", true),
        ("SYN to :443", false),
        ("SYN/ACK from :443", true),
    ] {
        assert!(
            up_ladder
                .lines()
                .any(|l| l.contains(label) && l.contains("|<-") == incoming),
            "{label}: {up_ladder}"
        );
    }
}

/// Ctrl-C during discovery: the hosts already proven up are reported (their ports were
/// never scanned), the undecided ones are neither up nor down but counted in a warning,
/// and the exit status is 130.
#[test]
fn ctrl_c_during_discovery_reports_what_was_decided() {
    if !lab::root_or_skip("ctrl_c_during_discovery_reports_what_was_decided") {
        return;
    }
    let lab = lab_with_dead_hosts("discint");
    for json in [true, false] {
        let mut cmd = lab::command(&lab.scanner, BIN);
        // A 5 s timeout: the dead hosts are still in their first round at the signal.
        cmd.args([
            "scan",
            LIVE,
            "198.19.128.0/26",
            "-p",
            "443",
            "--timeout",
            "5s",
        ]);
        if json {
            cmd.arg("--json");
        }
        let child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run synack");
        std::thread::sleep(std::time::Duration::from_millis(1500));
        // SAFETY: kill with our own child's pid (ip netns exec execs synack) and SIGINT.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
        let out = child.wait_with_output().expect("wait");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(out.status.code(), Some(130), "{stdout}");
        let warning = "interrupted during host discovery: 64 of 72 hosts were not decided";
        if json {
            let mut hosts = 0;
            for line in stdout.lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                match v["type"].as_str() {
                    Some("host") => {
                        hosts += 1;
                        assert_eq!(v["state"], "up", "{line}");
                        assert!(v["target"].as_str().unwrap().starts_with("198.19.0."));
                    }
                    Some("summary") => {
                        assert_eq!(v["interrupted"], true, "{line}");
                        // Omitted when zero.
                        assert!(v["hosts_down"].is_null(), "{line}");
                        let w = v["warnings"].to_string();
                        assert!(w.contains(warning), "{line}");
                    }
                    Some("port") => panic!("no port was scanned: {line}"),
                    _ => {}
                }
            }
            assert_eq!(hosts, 8, "{stdout}");
        } else {
            for i in 0..8 {
                let up = format!("198.19.0.{i}: up: ");
                let line = stdout
                    .lines()
                    .find(|l| l.starts_with(&up))
                    .unwrap_or_else(|| panic!("{up}: {stdout}"));
                assert!(
                    line.ends_with("(interrupted before its ports were scanned)"),
                    "{line}"
                );
            }
            assert!(!stdout.contains(": down: "), "{stdout}");
            // Warnings go to standard error.
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(warning), "{stderr}");
        }
    }
}
