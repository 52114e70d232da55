//! A many-target live scan in the lab: the target namespace answers for 198.19.0.0/16
//! (an AnyIP route), port 443 open on every address. Targets must come out as they
//! finish, not at the end, each exactly once, with the verdicts a scan of that target
//! alone gives. Needs root; under CI=true a missing root is a failure.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Instant;

use serde_json::Value;
use synack_lab::{self as lab, Lab};

const BIN: &str = env!("CARGO_BIN_EXE_synack");

/// (target, port) → (state, reason, responder).
type Verdicts = BTreeMap<(String, u64), (String, String, String)>;

fn key_and_verdict(v: &Value) -> ((String, u64), (String, String, String)) {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    (
        (s("target"), v["port"].as_u64().unwrap()),
        (s("state"), s("reason"), s("responder")),
    )
}

/// Runs a JSON scan in `ns`; returns its port objects with the time each arrived, the
/// summary, and when the process ended.
fn timed_scan(ns: &str, args: &[&str]) -> (Vec<(Instant, Value)>, Value, Instant) {
    let mut child = lab::command(ns, BIN)
        .arg("scan")
        .args(args)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run synack");
    let stdout = child.stdout.take().unwrap();
    let mut ports = Vec::new();
    let mut summary = Value::Null;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read stdout");
        let v: Value = serde_json::from_str(&line).expect("JSON line");
        match v["type"].as_str() {
            Some("port") => ports.push((Instant::now(), v)),
            Some("summary") => summary = v,
            // A scan's JSON Lines start with the run object (issue 11).
            Some("run") => {}
            // Host discovery's result for each target (all up here).
            Some("host") => assert_eq!(v["state"], "up", "{v}"),
            other => panic!("unexpected {other:?}"),
        }
    }
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (ports, summary, Instant::now())
}

#[test]
fn many_targets_stream_out_with_the_verdicts_of_single_target_scans() {
    if !lab::root_or_skip("many_targets_stream_out_with_the_verdicts_of_single_target_scans") {
        return;
    }
    let mut lab = Lab::standard("many").expect("build lab");
    lab.answer_for_prefix("198.19.0.0/16", 443)
        .expect("AnyIP prefix");
    // 1,024 targets × 41 ports, paced so the scan lasts about two seconds: targets are
    // probed in groups of about 200, so most are final long before the scan ends.
    let ports = "1-40,443";
    let started = Instant::now();
    let (lines, summary, ended) = timed_scan(
        &lab.scanner,
        &["198.19.0.0/22", "-p", ports, "--max-rate", "20000"],
    );
    assert_eq!(summary["ports"], 1024 * 41, "{summary}");
    assert_eq!(summary["open"], 1024, "{summary}");
    assert_eq!(lines.len(), 1024 * 41);

    // Each target once, its ports together.
    let mut seen_targets = BTreeSet::new();
    let mut last: Option<String> = None;
    let mut all = Verdicts::new();
    for (_, v) in &lines {
        let (k, verdict) = key_and_verdict(v);
        if last.as_deref() != Some(&k.0) {
            assert!(seen_targets.insert(k.0.clone()), "{} came out twice", k.0);
            last = Some(k.0.clone());
        }
        assert!(all.insert(k, verdict).is_none());
    }
    assert_eq!(seen_targets.len(), 1024);

    // Streaming: the first target came out while most of the scan was still to do.
    let total = ended.duration_since(started);
    let first = lines[0].0.duration_since(started);
    assert!(
        first.as_secs_f64() < 0.6 * total.as_secs_f64(),
        "first target after {first:?} of {total:?}"
    );

    // The same verdicts as scans of single targets (first, middle, last).
    for target in ["198.19.0.0", "198.19.1.200", "198.19.3.255"] {
        let (alone, _, _) = timed_scan(&lab.scanner, &[target, "-p", ports]);
        assert_eq!(alone.len(), 41);
        for (_, v) in &alone {
            let (k, verdict) = key_and_verdict(v);
            assert_eq!(all.get(&k), Some(&verdict), "{k:?}");
        }
        let open = alone
            .iter()
            .filter(|(_, v)| v["state"] == "open")
            .map(|(_, v)| v["port"].as_u64().unwrap())
            .collect::<Vec<_>>();
        assert_eq!(open, vec![443], "{target}");
    }
}

/// Regression: the probers wait when the correlator is more than a few groups behind.
/// Targets held for a calibration probe (every one, behind a router that clears DSCP)
/// must count as decided, or the probers would wait for the end that only they reach.
#[test]
fn targets_held_for_calibration_do_not_stall_the_probers() {
    if !lab::root_or_skip("targets_held_for_calibration_do_not_stall_the_probers") {
        return;
    }
    let mut lab = Lab::standard("pace").expect("build lab");
    lab.answer_for_prefix("198.19.0.0/16", 443)
        .expect("AnyIP prefix");
    lab.run(
        &lab.router,
        &[
            "iptables",
            "-t",
            "mangle",
            "-A",
            "FORWARD",
            "-s",
            "198.19.0.0/16",
            "-j",
            "DSCP",
            "--set-dscp",
            "0",
        ],
    )
    .expect("clear DSCP on the way back");
    // 4,096 targets x 10 ports: more pairs than the probers may run ahead.
    let stdout = bounded_scan(
        &lab,
        &[
            "198.19.0.0/20",
            "-Pn",
            "-p",
            "21-23,25,53,80,110,443,3389,8080",
        ],
        "synack done: 40960 ports on 4096 hosts",
    );
    assert_eq!(stdout.matches("note: calibration probe").count(), 4096);
}

/// Regression: with a hard stop, two probers could each wait for targets whose other
/// half of the ports only the other (also waiting) prober could start, and a scan of
/// 4,096 hosts x 100 ports hung. The pace is a brake now, never a stop.
#[test]
fn a_scan_far_past_the_pace_limit_finishes() {
    if !lab::root_or_skip("a_scan_far_past_the_pace_limit_finishes") {
        return;
    }
    let mut lab = Lab::standard("pace2").expect("build lab");
    lab.answer_for_prefix("198.19.0.0/16", 443)
        .expect("AnyIP prefix");
    bounded_scan(
        &lab,
        &["198.19.0.0/20", "-Pn"],
        "synack done: 409600 ports on 4096 hosts",
    );
}

/// Runs `synack scan ARGS` in the scanner namespace under a two-minute `timeout` (a hang
/// is the failure these tests look for); returns its stdout after checking it succeeded
/// and its closing line starts with `done`.
fn bounded_scan(lab: &Lab, args: &[&str], done: &str) -> String {
    let out = lab::command(&lab.scanner, "timeout")
        .args(["120", BIN, "scan"])
        .args(args)
        .output()
        .expect("run synack");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(done),
        "{}",
        stdout.lines().last().unwrap_or("")
    );
    stdout
}
