//! The scan gives up its privileges once the captures are open: the real binary in a
//! loopback namespace, its credentials read from /proc while it runs. Needs root; under
//! CI=true a missing root is a failure, never a silent skip.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use synack::privilege::{status_caps, status_field, status_ids};
use synack_lab::{self as lab, Family, LoopbackLab};

const BIN: &str = env!("CARGO_BIN_EXE_synack");
/// A port nothing listens on (the stack answers RST) and one whose SYNs a firewall rule
/// drops: unanswered, it keeps the scan running for its timeout and retry.
const CLOSED: u16 = 1;
const DROPPED: u16 = 2;

/// A loopback namespace with a listener, a closed port and a dropped port; returns the
/// lab and the `-p` list.
fn lab_with_dropped_port(tag: &str) -> (LoopbackLab, String) {
    let mut lo = lab::loopback(tag).expect("loopback lab");
    let open = lo
        .listen("127.0.0.1:0".parse().unwrap())
        .expect("listener")
        .port();
    lo.iptables(
        Family::V4,
        &[
            "-A",
            "INPUT",
            "-p",
            "tcp",
            "--dport",
            &DROPPED.to_string(),
            "-j",
            "DROP",
        ],
    )
    .expect("iptables");
    (lo, format!("{open},{CLOSED},{DROPPED}"))
}

fn scan_command(lo: &LoopbackLab, ports: &str) -> Command {
    let mut cmd = lo.command(BIN);
    cmd.args([
        "scan",
        "127.0.0.1",
        "-p",
        ports,
        "--json",
        "--timeout",
        "1s",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

/// Polls /proc/PID/status until the process is synack itself (not `ip netns exec`
/// before its exec) and `ready` holds; returns that status.
fn status_when(child: &mut Child, ready: impl Fn(&str) -> bool) -> String {
    let path = format!("/proc/{}/status", child.id());
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(Some(exit)) = child.try_wait() {
            panic!("synack ended ({exit}) before its privileges were seen dropped");
        }
        if let Ok(status) = std::fs::read_to_string(&path)
            && status_field(&status, "Name") == Some("synack")
            && ready(&status)
        {
            return status;
        }
        assert!(
            Instant::now() < until,
            "privileges not dropped after 5 s:\n{}",
            std::fs::read_to_string(&path).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The scan's verdicts still come from the capture: the closed port's RST was seen.
fn assert_captured(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "synack failed: {stderr}\n{stdout}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect();
    let summary = lines
        .iter()
        .find(|v| v["type"] == "summary")
        .expect("summary");
    assert_eq!(summary["captured"], true, "{summary}");
    let port = |p: u16| {
        lines
            .iter()
            .find(|v| v["type"] == "port" && v["port"] == p)
            .unwrap_or_else(|| panic!("no line for port {p}:\n{stdout}"))
    };
    let closed = port(CLOSED);
    assert_eq!(closed["state"], "closed", "{closed}");
    assert_eq!(closed["observed"], true, "{closed}");
    assert!(closed["trace"].as_array().unwrap().len() >= 2, "{closed}");
    let dropped = port(DROPPED);
    assert_eq!(dropped["state"], "filtered", "{dropped}");
    assert!(
        !dropped["trace"].as_array().unwrap().is_empty(),
        "{dropped}"
    );
}

#[test]
fn started_through_sudo_the_scan_becomes_the_invoking_user() {
    if !lab::root_or_skip("started_through_sudo_the_scan_becomes_the_invoking_user") {
        return;
    }
    let (lo, ports) = lab_with_dropped_port("privsudo");
    let mut child = scan_command(&lo, &ports)
        .env("SUDO_UID", "65534")
        .env("SUDO_GID", "65534")
        .spawn()
        .expect("run synack");
    let status = status_when(&mut child, |s| {
        status_ids(s, "Uid").is_some_and(|ids| ids[0] == 65534)
    });
    assert_eq!(status_ids(&status, "Uid"), Some([65534; 4]), "{status}");
    assert_eq!(status_ids(&status, "Gid"), Some([65534; 4]), "{status}");
    assert_eq!(status_field(&status, "Groups"), Some(""), "{status}");
    assert_eq!(status_caps(&status, "CapEff"), Some(0), "{status}");
    assert_eq!(status_caps(&status, "CapPrm"), Some(0), "{status}");
    assert_eq!(status_field(&status, "NoNewPrivs"), Some("1"), "{status}");
    let out = child.wait_with_output().expect("wait for synack");
    assert_captured(&out);
}

#[test]
fn as_root_without_sudo_the_scan_keeps_uid_0_without_capabilities() {
    if !lab::root_or_skip("as_root_without_sudo_the_scan_keeps_uid_0_without_capabilities") {
        return;
    }
    let (lo, ports) = lab_with_dropped_port("privroot");
    let mut child = scan_command(&lo, &ports)
        .env_remove("SUDO_UID")
        .env_remove("SUDO_GID")
        .spawn()
        .expect("run synack");
    let status = status_when(&mut child, |s| status_caps(s, "CapEff") == Some(0));
    assert_eq!(status_ids(&status, "Uid"), Some([0; 4]), "{status}");
    assert_eq!(status_caps(&status, "CapPrm"), Some(0), "{status}");
    assert_eq!(status_caps(&status, "CapInh"), Some(0), "{status}");
    assert_eq!(status_field(&status, "NoNewPrivs"), Some("1"), "{status}");
    let out = child.wait_with_output().expect("wait for synack");
    assert_captured(&out);
}

#[test]
fn a_failed_drop_aborts_the_scan_and_removes_the_capture_file() {
    if !lab::root_or_skip("a_failed_drop_aborts_the_scan_and_removes_the_capture_file") {
        return;
    }
    let (lo, ports) = lab_with_dropped_port("privfail");
    let pcap = std::env::temp_dir().join(format!("synack-privfail-{}.pcap", std::process::id()));
    let out = scan_command(&lo, &ports)
        .env("SUDO_UID", "nobody")
        .env("SUDO_GID", "65534")
        .arg("-w")
        .arg(&pcap)
        .output()
        .expect("run synack");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot drop privileges"), "{stderr}");
    assert!(stderr.contains("SUDO_UID"), "{stderr}");
    assert!(out.stdout.is_empty(), "no verdicts without the drop");
    assert!(!pcap.exists(), "{} left behind", pcap.display());
}
