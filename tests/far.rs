//! A far host scanned beside a near one (issue 12): the lab's router delays every packet
//! towards 198.19.200.0/24 and 2001:db8:c8::/64 (`Lab::delay_prefix`, a TUN relay), and
//! the target answers for those addresses as for its own, so the far host has the near
//! target's ports and firewall rules, only hundreds of milliseconds further away. Every
//! verdict must come out as for the near host: as root with the capture and as nobody
//! with connect() alone, with host discovery (which seeds the per-host round trip) and
//! with -Pn (no seed: the estimate has to be learnt during the scan).
//! Needs root; under CI=true a missing root is a failure.

use std::collections::BTreeMap;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use synack_lab::{self as lab, Family, Lab};

const BIN: &str = env!("CARGO_BIN_EXE_synack");

const FAR_V4: &str = "198.19.200.5";
const FAR_V6: &str = "2001:db8:c8::5";

/// Ports of the standard scenario that the target's own rules decide (the router's rules
/// match the target's own address only): open (a listener on the far address too),
/// closed, dropped, and refused by the target's firewall with a RST and with an ICMP
/// error.
const ROOT_PORTS: [u16; 6] = [22, 80, 81, 82, 83, 84];
/// Without the capture, connect() cannot tell a firewall's RST or ICMP error from a
/// closed port: the ports whose verdict an errno alone gets right.
const NOBODY_PORTS: [u16; 4] = [22, 80, 81, 82];

/// The standard lab plus a far copy of its target at `delay`.
fn far_lab(tag: &str, delay: Duration) -> Lab {
    let mut lab = Lab::standard(tag).expect("build lab");
    lab.delay_prefix("198.19.200.0/24", delay)
        .expect("IPv4 far prefix");
    lab.delay_prefix("2001:db8:c8::/64", delay)
        .expect("IPv6 far prefix");
    let target = lab.target.clone();
    for far in [FAR_V4, FAR_V6] {
        for port in [22, 80] {
            let addr = std::net::SocketAddr::new(far.parse().unwrap(), port);
            lab.listen(&target, addr).expect("far listener");
        }
    }
    lab
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Root,
    Nobody,
}

#[derive(Debug, Default)]
struct Scan {
    /// (target, port) → the port object.
    ports: BTreeMap<(String, u16), Value>,
    hosts: BTreeMap<String, Value>,
    summary: Value,
    stdout: String,
    stderr: String,
}

fn parse(out: &Output) -> Scan {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "synack failed: {stderr}\n{stdout}");
    let mut scan = Scan::default();
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        match v["type"].as_str() {
            Some("port") => {
                let key = (
                    v["target"].as_str().unwrap().to_string(),
                    v["port"].as_u64().unwrap() as u16,
                );
                assert!(scan.ports.insert(key, v).is_none(), "a port twice: {line}");
            }
            Some("host") => {
                let t = v["target"].as_str().unwrap().to_string();
                assert!(scan.hosts.insert(t, v).is_none(), "a host twice: {line}");
            }
            Some("summary") => scan.summary = v,
            Some("run") => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    scan.stdout = stdout;
    scan.stderr = stderr;
    scan
}

/// Scans the near and the far host, both families, as `who`.
fn scan(lab: &Lab, who: Who, extra: &[&str]) -> Scan {
    let ports = match who {
        Who::Root => &ROOT_PORTS[..],
        Who::Nobody => &NOBODY_PORTS[..],
    };
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let near_v4 = Family::V4.target().to_string();
    let near_v6 = Family::V6.target().to_string();
    let mut args: Vec<&str> = vec!["scan", &near_v4, FAR_V4, &near_v6, FAR_V6];
    let joined = ports.join(",");
    args.extend(["-p", &joined, "--json"]);
    args.extend_from_slice(extra);
    let out = match who {
        Who::Root => lab::command(&lab.scanner, BIN).args(&args).output(),
        Who::Nobody => {
            let (dir, bin) = lab::runnable_by_anyone(BIN, &lab.scanner).expect("a copy of synack");
            let out = lab::command(&lab.scanner, "setpriv")
                .args(lab::AS_NOBODY)
                .arg(&bin)
                .args(&args)
                .output();
            let _ = std::fs::remove_dir_all(dir);
            out
        }
    }
    .expect("run synack");
    let s = parse(&out);
    assert_eq!(s.summary["captured"], who == Who::Root, "{}", s.summary);
    s
}

/// The verdict (state, reason) `port` must get on either host, as `who`: the standard
/// scenario's, or the errno's without the capture.
fn expected(port: u16, family: Family, who: Who) -> (&'static str, &'static str) {
    let case = lab::standard_port(port).expect("a standard port");
    match (who, case.state) {
        (Who::Root, state) => (state, case.reason(family)),
        (Who::Nobody, "open") => ("open", "syn-ack"),
        (Who::Nobody, "closed") => ("closed", "conn-refused"),
        (Who::Nobody, _) => ("filtered", "no-response"),
    }
}

/// Whether discovery seeded the per-host round trips.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seeded {
    Yes,
    No,
}

/// Every port of both hosts, both families, has the right verdict. Answered ports of the
/// near hosts were answered by the first attempt, and so were the far hosts' when
/// discovery measured their round trip; without it (-Pn), a far host's first attempts
/// run on the near hosts' timeout and may be retried once (at least a second), never more.
fn check_verdicts(s: &Scan, who: Who, seeded: Seeded, what: &str) {
    let ports = match who {
        Who::Root => &ROOT_PORTS[..],
        Who::Nobody => &NOBODY_PORTS[..],
    };
    let hosts = [
        (Family::V4.target().to_string(), Family::V4, false),
        (FAR_V4.to_string(), Family::V4, true),
        (Family::V6.target().to_string(), Family::V6, false),
        (FAR_V6.to_string(), Family::V6, true),
    ];
    let mut wrong = Vec::new();
    for (host, family, far) in &hosts {
        for &port in ports {
            let Some(p) = s.ports.get(&(host.clone(), port)) else {
                wrong.push(format!("{host}:{port}: no verdict"));
                continue;
            };
            let want = expected(port, *family, who);
            let got = (
                p["state"].as_str().unwrap_or("?"),
                p["reason"].as_str().unwrap_or("?"),
            );
            if got != want {
                wrong.push(format!("{host}:{port}: {got:?}, want {want:?}: {p}"));
            }
            let attempts = p["attempts"].as_u64().unwrap_or(0);
            let allowed = if *far && seeded == Seeded::No { 2 } else { 1 };
            if want.1 != "no-response" && !(1..=allowed).contains(&attempts) {
                wrong.push(format!("{host}:{port}: {attempts} attempts: {p}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{what}: {} wrong:\n{}\nstderr: {}",
        wrong.len(),
        wrong.join("\n"),
        s.stderr
    );
    assert_eq!(s.ports.len(), hosts.len() * ports.len(), "{}", s.stdout);
}

/// Discovery found both hosts up, each with its own round trip: the near one fast, the
/// far one at least the relay's delay.
fn check_hosts(s: &Scan, delay: Duration) {
    for (host, far) in [
        (Family::V4.target().to_string(), false),
        (FAR_V4.to_string(), true),
        (Family::V6.target().to_string(), false),
        (FAR_V6.to_string(), true),
    ] {
        let h = &s.hosts[&host];
        assert_eq!(h["state"], "up", "{h}");
        let rtt = Duration::from_secs_f64(h["rtt_ms"].as_f64().unwrap() / 1e3);
        if far {
            assert!(rtt >= delay, "{h}");
        } else {
            assert!(rtt < Duration::from_millis(50), "{h}");
        }
    }
}

/// The relay really carried the far traffic, and lost none of it.
fn check_relay(lab: &Lab) {
    let (relayed, dropped) = lab.delayed_packets();
    assert!(relayed > 0, "nothing went through the relay");
    assert_eq!(dropped, 0, "the relay dropped packets");
}

fn far_and_near(tag: &str, delay: Duration, who: Who) {
    let lab = far_lab(tag, delay);
    let s = scan(&lab, who, &[]);
    check_hosts(&s, delay);
    check_verdicts(&s, who, Seeded::Yes, "with discovery");
    eprintln!("{tag}, with discovery: {}", s.summary["elapsed_s"]);
    let s = scan(&lab, who, &["-Pn"]);
    assert!(s.hosts.is_empty(), "{}", s.stdout);
    check_verdicts(&s, who, Seeded::No, "with -Pn");
    eprintln!("{tag}, -Pn: {}", s.summary["elapsed_s"]);
    check_relay(&lab);
}

#[test]
fn far_host_beside_a_near_one_as_root() {
    if !lab::root_or_skip("far_host_beside_a_near_one_as_root") {
        return;
    }
    far_and_near("far", Duration::from_millis(200), Who::Root);
}

#[test]
fn far_host_beside_a_near_one_unprivileged() {
    if !lab::root_or_skip("far_host_beside_a_near_one_unprivileged") {
        return;
    }
    far_and_near("farnobody", Duration::from_millis(200), Who::Nobody);
}

/// Half a second away: beyond the near host's timeout many times over, inside the
/// initial second a host without any sample starts from.
#[test]
fn very_far_host_beside_a_near_one() {
    if !lab::root_or_skip("very_far_host_beside_a_near_one") {
        return;
    }
    far_and_near("veryfar", Duration::from_millis(500), Who::Root);
    far_and_near("veryfarnobody", Duration::from_millis(500), Who::Nobody);
}
