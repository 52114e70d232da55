//! The network lab itself: it builds, the standard scenario answers `connect()` the way
//! its table says, and its namespaces disappear however a test ends.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread;
use std::time::{Duration, Instant};

use synack_lab::{
    self as lab, ConnectResult, Family, Lab, LoopbackLab, STANDARD_PORTS, TARGET_V4, TARGET_V6,
};

/// Long enough for any answer on a veth (microseconds), short enough to keep the suite fast.
const SHORT: Duration = Duration::from_millis(300);
/// Enough for one SYN retransmission (Linux's first RTO is 1 s): port 90 needs it, and
/// IPv6 connects learn of ICMP errors only from the retransmission's.
const ONE_RETRANSMISSION: Duration = Duration::from_millis(2500);

fn connect(addr: SocketAddr, timeout: Duration) -> ConnectResult {
    match TcpStream::connect_timeout(&addr, timeout) {
        Ok(_) => ConnectResult::Connected,
        Err(e) if e.kind() == io::ErrorKind::TimedOut => ConnectResult::TimedOut,
        Err(e) => ConnectResult::Errno(e.raw_os_error().unwrap_or(-1)),
    }
}

fn connect_from(ns: &str, addr: SocketAddr, timeout: Duration) -> ConnectResult {
    lab::in_namespace(ns, || connect(addr, timeout)).unwrap()
}

fn assert_gone(names: &[String]) {
    let left = lab::list_namespaces().unwrap();
    for name in names {
        assert!(!left.contains(name), "{name} still exists: {left:?}");
    }
}

fn names(lab: &Lab) -> Vec<String> {
    vec![lab.scanner.clone(), lab.router.clone(), lab.target.clone()]
}

#[test]
fn scanner_reaches_target_both_families() {
    if !lab::root_or_skip("scanner_reaches_target_both_families") {
        return;
    }
    let lab = Lab::standard("reach").unwrap();
    let v4 = SocketAddr::from((TARGET_V4, 22));
    let v6 = SocketAddr::from((TARGET_V6, 22));
    assert_eq!(
        connect_from(&lab.scanner, v4, SHORT),
        ConnectResult::Connected
    );
    assert_eq!(
        connect_from(&lab.scanner, v6, SHORT),
        ConnectResult::Connected
    );
    let refused = ConnectResult::Errno(libc::ECONNREFUSED);
    assert_eq!(
        connect_from(&lab.scanner, Family::V4.target_port(81), SHORT),
        refused
    );
    assert_eq!(
        connect_from(&lab.scanner, Family::V6.target_port(81), SHORT),
        refused
    );
    let started = Instant::now();
    let dropped = connect_from(&lab.scanner, Family::V4.target_port(82), SHORT);
    assert_eq!(dropped, ConnectResult::TimedOut);
    assert!(started.elapsed() < SHORT * 3, "{:?}", started.elapsed());
}

/// Every port of the standard scenario, both families, in parallel: the `connect()`
/// column of the table is what really happens, TCP answers come at once, and port 90
/// needs its retransmission.
#[test]
fn standard_ports_answer_connect_as_documented() {
    if !lab::root_or_skip("standard_ports_answer_connect_as_documented") {
        return;
    }
    let lab = Lab::standard("std").unwrap();
    let results = thread::scope(|scope| {
        let mut running = Vec::new();
        for case in STANDARD_PORTS {
            for family in Family::BOTH {
                let timeout = match case.connect(family) {
                    ConnectResult::TimedOut => SHORT,
                    _ => ONE_RETRANSMISSION,
                };
                let scanner = &lab.scanner;
                running.push(scope.spawn(move || {
                    let started = Instant::now();
                    let got = connect_from(scanner, family.target_port(case.port), timeout);
                    (case, family, got, started.elapsed())
                }));
            }
        }
        running
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect::<Vec<_>>()
    });
    let mut wrong = Vec::new();
    for (case, family, got, took) in results {
        if got != case.connect(family) {
            wrong.push(format!(
                "port {} {family:?}: connect() gave {got}, table says {}",
                case.port,
                case.connect(family)
            ));
        }
        if case.lost_syns > 0 && took < Duration::from_millis(900) {
            wrong.push(format!(
                "port {} {family:?}: connected after {took:?}, before any retransmission",
                case.port
            ));
        }
        // SYN/ACKs and RSTs are never lost to the socket lock (they wait in its backlog).
        let tcp_answer = matches!(case.reason(family), "syn-ack" | "reset");
        if case.lost_syns == 0 && tcp_answer && took > SHORT {
            wrong.push(format!(
                "port {} {family:?}: slow answer {took:?}",
                case.port
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn topology_routes_through_the_router_without_rules() {
    if !lab::root_or_skip("topology_routes_through_the_router_without_rules") {
        return;
    }
    let mut lab = Lab::create("topo").unwrap();
    let target = lab.target.clone();
    let v4 = lab.listen(&target, (TARGET_V4, 0).into()).unwrap();
    let v6 = lab.listen(&target, (TARGET_V6, 0).into()).unwrap();
    assert_eq!(
        connect_from(&lab.scanner, v4, SHORT),
        ConnectResult::Connected
    );
    assert_eq!(
        connect_from(&lab.scanner, v6, SHORT),
        ConnectResult::Connected
    );
    // Nothing but the topology: no firewall rule anywhere.
    let rules = lab
        .run(&lab.router, &["iptables", "-S", "FORWARD"])
        .unwrap();
    assert_eq!(rules.trim(), "-P FORWARD ACCEPT");
    assert_eq!(
        lab::read_sysctl(&lab.router, "net.ipv4.ip_forward").unwrap(),
        "1"
    );
    assert_eq!(
        lab::read_sysctl(&lab.scanner, "net.ipv4.ip_forward").unwrap(),
        "0"
    );
}

#[test]
fn lab_errors_name_the_command_and_its_stderr() {
    if !lab::root_or_skip("lab_errors_name_the_command_and_its_stderr") {
        return;
    }
    let lab = Lab::create("errs").unwrap();
    let err = lab
        .iptables(
            &lab.router,
            Family::V6,
            &["-A", "NO-SUCH-CHAIN", "-j", "DROP"],
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ip6tables -w -A NO-SUCH-CHAIN -j DROP"),
        "{err}"
    );
    assert!(err.to_lowercase().contains("chain"), "{err}");
    let err = lab::in_namespace("sa-no-such-namespace", || ()).unwrap_err();
    assert!(err.to_string().contains("sa-no-such-namespace"), "{err}");
    assert!(Lab::create("bad/tag").is_err());
}

#[test]
fn drop_removes_namespaces() {
    if !lab::root_or_skip("drop_removes_namespaces") {
        return;
    }
    let mut lab = Lab::create("drop").unwrap();
    let target = lab.target.clone();
    lab.listen(&target, (TARGET_V4, 22).into()).unwrap();
    let made = names(&lab);
    let present = lab::list_namespaces().unwrap();
    assert!(made.iter().all(|n| present.contains(n)), "{made:?}");
    drop(lab);
    assert_gone(&made);
}

#[test]
fn panic_with_lab_alive_removes_namespaces() {
    if !lab::root_or_skip("panic_with_lab_alive_removes_namespaces") {
        return;
    }
    let mut made = Vec::new();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let lab = Lab::standard("panic").unwrap();
        made = names(&lab);
        panic!("deliberate failure with a lab alive");
    }));
    assert!(outcome.is_err());
    assert_eq!(made.len(), 3);
    assert_gone(&made);
}

#[test]
fn loopback_lab_has_wide_ephemeral_range_and_listens() {
    if !lab::root_or_skip("loopback_lab_has_wide_ephemeral_range_and_listens") {
        return;
    }
    let mut lo = LoopbackLab::create("lo").unwrap();
    let range = lab::read_sysctl(&lo.ns, "net.ipv4.ip_local_port_range").unwrap();
    let range: Vec<u16> = range
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(range, [lab::WIDE_PORT_RANGE.0, lab::WIDE_PORT_RANGE.1]);
    let v4 = lo.listen((Ipv4Addr::LOCALHOST, 0).into()).unwrap();
    let v6 = lo.listen((Ipv6Addr::LOCALHOST, 0).into()).unwrap();
    assert_eq!(connect_from(&lo.ns, v4, SHORT), ConnectResult::Connected);
    assert_eq!(connect_from(&lo.ns, v6, SHORT), ConnectResult::Connected);
    let name = lo.ns.clone();
    drop(lo);
    assert_gone(&[name]);
}

/// Removes the named namespaces when dropped, for namespaces a test makes by hand.
struct Remove(Vec<String>);

impl Drop for Remove {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = std::process::Command::new("ip")
                .args(["netns", "delete", ns])
                .output();
        }
    }
}

#[test]
fn cleanup_stale_removes_only_namespaces_of_dead_owners() {
    if !lab::root_or_skip("cleanup_stale_removes_only_namespaces_of_dead_owners") {
        return;
    }
    // pid_max itself is never handed out, so its owner is certainly dead.
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap();
    let dead = format!("sa-stalecheck-{}-0-scan", pid_max.trim());
    let alive = format!("sa-stalecheck-{}-0-scan", std::process::id());
    let _guard = Remove(vec![dead.clone(), alive.clone()]);
    for ns in [&dead, &alive] {
        let out = std::process::Command::new("ip")
            .args(["netns", "add", ns])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let removed = lab::cleanup_stale("sa-stalecheck-").unwrap();
    assert_eq!(removed, [dead.as_str()]);
    let left = lab::list_namespaces().unwrap();
    assert!(!left.contains(&dead) && left.contains(&alive), "{left:?}");
}
