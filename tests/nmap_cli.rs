//! The command line nmap users type (issue 11): nmap's options, output files in nmap's
//! formats (validated against nmap.dtd, read by ndiff next to nmap's own XML of the same
//! lab), -iL/--exclude, shards. The real binary; the lab tests need root.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use synack_lab::{self as lab, Lab};

const BIN: &str = env!("CARGO_BIN_EXE_synack");
const PORTS: &str = "22,80-90";

fn synack(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run synack")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("synack-nmap-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs synack inside the lab's scanner namespace, in `dir`.
fn scan_in(lab: &Lab, dir: &Path, args: &[&str]) -> Output {
    let out = lab::command(&lab.scanner, BIN)
        .current_dir(dir)
        .arg("scan")
        .args(args)
        .output()
        .expect("run synack");
    assert!(out.status.success(), "synack {args:?}: {}", stderr(&out));
    out
}

/// JSON Lines → (run object, port objects by (target, port), summary).
fn json_lines(text: &str) -> (Value, BTreeMap<(String, u64), Value>, Value) {
    let (mut run, mut ports, mut summary) = (Value::Null, BTreeMap::new(), Value::Null);
    for (i, line) in text.lines().enumerate() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        match v["type"].as_str() {
            Some("run") => {
                assert_eq!(i, 0, "the run object comes first");
                run = v;
            }
            Some("port") => {
                let key = (
                    v["target"].as_str().unwrap().to_string(),
                    v["port"].as_u64().unwrap(),
                );
                assert!(ports.insert(key, v).is_none(), "a port twice");
            }
            Some("summary") => summary = v,
            // Host discovery's line for each target (several targets: discovery runs).
            Some("host") => {}
            other => panic!("unexpected type {other:?}"),
        }
    }
    (run, ports, summary)
}

/// Port → state in an nmap XML file (nmap's or synack's): `<port … portid="N"><state
/// state="S"`.
fn xml_states(xml: &str) -> BTreeMap<u16, String> {
    let mut out = BTreeMap::new();
    for chunk in xml.split("<port ").skip(1) {
        let attr = |name: &str, s: &str| {
            let from = s.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
            s[from..from + s[from..].find('"').unwrap()].to_string()
        };
        let port: u16 = attr("portid", chunk).parse().unwrap();
        let state_el = &chunk[chunk.find("<state ").unwrap()..];
        out.insert(port, attr("state", state_el));
    }
    out
}

// ---------------------------------------------------------------- no root needed

#[test]
fn what_synack_cannot_mean_is_one_line_naming_the_nearest_feature() {
    for (opt, nearest) in [
        ("-sS", "connect()"),
        ("-sU", "TCP only"),
        ("-sV", "--ladder"),
        ("-sn", "-Pn"),
        ("-sX", "-sT"),
        ("-O", "--explain"),
        ("-A", "--ladder"),
        ("-PS", "-Pn"),
    ] {
        let out = synack(&["scan", opt, "198.18.2.1"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{opt}: {err}");
        assert_eq!(err.lines().count(), 1, "{opt}: {err}");
        assert!(err.contains(opt) && err.contains(nearest), "{opt}: {err}");
    }
}

#[test]
fn bad_values_exit_2_naming_the_value() {
    for (args, needle) in [
        (vec!["--top-ports", "1001"], "'1001'"),
        (vec!["--top-ports", "0"], "'0'"),
        (vec!["-T9"], "'9'"),
        (vec!["-T", "ludicrous"], "'ludicrous'"),
        (vec!["--shard", "4/3"], "'4/3'"),
        (vec!["--shard", "x"], "'x'"),
        (vec!["--host-timeout", "5x"], "'5x'"),
        (vec!["--max-retries", "-1"], "'-1'"),
        (vec!["--min-rate", "0"], "'0'"),
        (
            vec!["--min-rate", "100", "--max-rate", "10"],
            "--min-rate 100",
        ),
        (vec!["-p", "U:53"], "'U:53'"),
        (vec!["-p", "ssh,nosuchservice"], "'nosuchservice'"),
        (vec!["--exclude", "198.18.2.0/40"], "198.18.2.0/40"),
        (vec!["-iL", "/nonexistent/targets"], "/nonexistent/targets"),
        (vec!["--color", "sometimes"], "'sometimes'"),
        (vec!["-w", "-"], "-w -"),
        (vec!["-w", "-", "-oJ", "x.json", "--json"], "-w -"),
        (vec!["-oX", "-", "-oG", "-"], "stdout"),
        (vec!["--exclude", "198.18.2.1"], "excluded"),
        (vec!["--seed", "5"], "--shard"),
    ] {
        let mut all = vec!["scan", "198.18.2.1"];
        all.extend(&args);
        let out = synack(&all);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn suggestions_no_longer_point_the_wrong_way() {
    // Before issue 11, clap suggested --timeout for --host-timeout (per attempt, not per
    // host) and --max-rate for --min-rate.
    let help = String::from_utf8_lossy(&synack(&["scan", "--help"]).stdout).into_owned();
    for flag in [
        "--host-timeout",
        "--min-rate",
        "--max-rate",
        "--max-retries",
        "--top-ports",
        "--open",
        "--reason",
        "--exclude",
        "--excludefile",
        "--shard",
        "--seed",
        "--color",
        "--output-xml",
        "-oX",
        "-iL",
        "-Pn",
    ] {
        assert!(help.contains(flag), "{flag} not in scan --help");
    }
    // The -T table and the exit codes.
    assert!(
        help.contains("aggressive") && help.contains("insane"),
        "{help}"
    );
    let top = String::from_utf8_lossy(&synack(&["--help"]).stdout).into_owned();
    assert!(top.contains("Exit codes") && top.contains("130"), "{top}");
}

#[test]
fn completions_and_man_page_come_from_the_clap_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let out = synack(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("synack") && text.contains("host-timeout"),
            "{shell}"
        );
    }
    let man = synack(&["man"]);
    assert!(man.status.success());
    let roff = String::from_utf8_lossy(&man.stdout);
    assert!(
        roff.starts_with(".ie") || roff.contains(".TH synack"),
        "{roff}"
    );
    assert_eq!(synack(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn color_always_never_and_no_color() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/capture-fixtures/any-nmap-v4.pcap"
    );
    let ansi = |args: &[&str]| {
        let mut all = vec!["replay", fixture];
        all.extend(args);
        let out = synack(&all);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        out.stdout.windows(2).any(|w| w == b"\x1b[")
    };
    // Piped: no colour unless asked for; --no-color still wins.
    assert!(!ansi(&[]));
    assert!(ansi(&["--color", "always"]));
    assert!(!ansi(&["--color", "never"]));
    assert!(!ansi(&["--color", "always", "--no-color"]));
}

// ---------------------------------------------------------------- in the lab

#[test]
fn output_files_in_nmaps_formats_validate_and_ndiff_reads_them() {
    if !lab::root_or_skip("output_files_in_nmaps_formats_validate_and_ndiff_reads_them") {
        return;
    }
    let lab = Lab::standard("nmapx").expect("build lab");
    let dir = tempdir("oa");
    let out = scan_in(
        &lab,
        &dir,
        &[
            "-sT",
            "-Pn",
            "-n",
            "-T4",
            "--reason",
            "-p",
            PORTS,
            "-oA",
            "lab",
            "-oJ",
            "lab.jsonl",
            "198.18.2.1",
        ],
    );
    // stdout still has the table.
    assert!(String::from_utf8_lossy(&out.stdout).contains("PORT"));

    // -oJ: the run object first, absolute timestamps beside t_ms.
    let (run, ports, summary) =
        json_lines(&std::fs::read_to_string(dir.join("lab.jsonl")).unwrap());
    assert_eq!(run["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(run["targets"][0], "198.18.2.1");
    assert_eq!(run["ports"], PORTS);
    assert!(run["args"].as_array().unwrap().iter().any(|a| a == "-oA"));
    let start = run["start"].as_str().unwrap();
    assert!(start.ends_with('Z') && start.len() == 30, "{start}");
    assert_eq!(ports.len(), 12);
    assert_eq!(summary["ports"], 12);
    let p22 = &ports[&("198.18.2.1".to_string(), 22)];
    let first = &p22["trace"][0];
    assert!(first["t_ms"].is_number());
    let ts = first["ts"].as_str().unwrap();
    assert!(ts.starts_with(&start[..11]) && ts.ends_with('Z'), "{ts}");

    // -oN: the table, no colour codes.
    let table = std::fs::read_to_string(dir.join("lab.nmap")).unwrap();
    assert!(
        table.contains("22/tcp") && !table.contains('\x1b'),
        "{table}"
    );

    // -oG: nmap's grepable lines.
    let gnmap = std::fs::read_to_string(dir.join("lab.gnmap")).unwrap();
    let lines: Vec<&str> = gnmap.lines().collect();
    assert!(
        lines[0].starts_with("# synack ")
            && lines[0].contains(" scan initiated ")
            && lines[0].contains(" as: "),
        "{gnmap}"
    );
    assert!(
        lines.contains(&"Host: 198.18.2.1 ()\tStatus: Up"),
        "{gnmap}"
    );
    let ports_line = lines
        .iter()
        .find(|l| l.contains("\tPorts: "))
        .expect("Ports line");
    assert!(ports_line.starts_with("Host: 198.18.2.1 ()\tPorts: 22/open/tcp//ssh///, 80/open/tcp//http///, 81/closed/tcp//hosts2-ns///, 82/filtered/tcp//xfer///"), "{ports_line}");
    assert_eq!(ports_line.matches("/tcp//").count(), 12);
    let last = lines.last().unwrap();
    assert!(
        last.starts_with("# synack done at ")
            && last.contains("1 IP address (1 host up) scanned in"),
        "{last}"
    );

    // -oX: valid against nmap.dtd as Debian's nmap package installs it.
    let xml_path = dir.join("lab.xml");
    let xml = std::fs::read_to_string(&xml_path).unwrap();
    assert!(xml.contains("<script id=\"synack\""), "{xml}");
    assert!(
        xml.contains("reason_ip=\"198.18.1.254\""),
        "ICMP from the router names it"
    );
    let dtd = Path::new("/usr/share/nmap/nmap.dtd");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if !(dtd.exists() && have("xmllint") && have("nmap") && have("ndiff")) {
        assert!(!ci, "CI needs nmap, xmllint (libxml2-utils) and ndiff");
        eprintln!("SKIPPED the nmap.dtd / ndiff part: nmap, xmllint or ndiff missing");
        return;
    }
    let lint = Command::new("xmllint")
        .args(["--noout", "--dtdvalid"])
        .arg(dtd)
        .arg(&xml_path)
        .output()
        .unwrap();
    assert!(lint.status.success(), "xmllint: {}", stderr(&lint));

    // nmap's own -sT XML of the same ports in the same lab.
    let nmap_xml = dir.join("nmap.xml");
    let nmap = lab::command(&lab.scanner, "nmap")
        .args(["-sT", "-Pn", "-n", "-T4", "--reason", "-p", PORTS, "-oX"])
        .arg(&nmap_xml)
        .arg("198.18.2.1")
        .output()
        .unwrap();
    assert!(nmap.status.success(), "nmap: {}", stderr(&nmap));
    // ndiff parses both (exit 0: same, 1: different, 2: an error). --xml, because
    // ndiff 7.93's text output fails on any port whose script results differ (it compares
    // a list with 0), which nmap's port without synack's script always does.
    let diff = Command::new("ndiff")
        .arg("--xml")
        .arg(&nmap_xml)
        .arg(&xml_path)
        .output()
        .unwrap();
    let diff_out = String::from_utf8_lossy(&diff.stdout);
    assert!(
        matches!(diff.status.code(), Some(0 | 1)),
        "ndiff: {}",
        stderr(&diff)
    );
    assert!(
        diff_out.contains("<nmapdiff") && diff_out.contains("198.18.2.1"),
        "{diff_out}"
    );
    // Where nmap -sT can tell, the states agree. It cannot on 83, 84, 86: connect() turns
    // a firewall's RST and an ICMP port-unreachable into the ECONNREFUSED of a closed port.
    let theirs = xml_states(&std::fs::read_to_string(&nmap_xml).unwrap());
    let ours = xml_states(&xml);
    for port in [22, 80, 81, 82, 85, 87, 88, 89, 90] {
        assert_eq!(
            ours.get(&port),
            theirs.get(&port),
            "port {port}: synack vs nmap"
        );
    }
    for port in [83, 84, 86] {
        assert_eq!(ours[&port], "filtered", "port {port}");
        assert_eq!(theirs[&port], "closed", "port {port}: nmap -sT");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn input_lists_exclusions_top_ports_and_open() {
    if !lab::root_or_skip("input_lists_exclusions_top_ports_and_open") {
        return;
    }
    let lab = Lab::standard("nmapi").expect("build lab");
    let dir = tempdir("il");
    std::fs::write(
        dir.join("targets.txt"),
        "# the lab's target, twice\n198.18.2.1 2001:db8:2::1\n198.18.2.0/30,\n",
    )
    .unwrap();
    std::fs::write(dir.join("exclude.txt"), "198.18.2.0\n198.18.2.2/31 # two\n").unwrap();
    let out = scan_in(
        &lab,
        &dir,
        &[
            "-iL",
            "targets.txt",
            "--excludefile",
            "exclude.txt",
            "--exclude",
            "2001:db8:2::1",
            "-p",
            "ssh,http,T:81",
            "--open",
            "--json",
        ],
    );
    let (run, ports, _) = json_lines(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(run["ports"], "22,80-81,8008"); // nmap-services names 8008 http too
    let keys: Vec<(String, u64)> = ports.keys().cloned().collect();
    // Excluded: 198.18.2.0, .2, .3 and the IPv6 target; --open hides closed 81.
    assert_eq!(
        keys,
        [
            ("198.18.2.1".to_string(), 22),
            ("198.18.2.1".to_string(), 80)
        ],
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // --top-ports N scans nmap's N most frequent ports; stdin as -iL -.
    let mut child = lab::command(&lab.scanner, BIN)
        .args(["scan", "-iL", "-", "--top-ports", "5", "-oG", "-", "-T5"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"198.18.2.1\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let g = String::from_utf8_lossy(&out.stdout);
    assert!(g.contains("# Ports scanned: TCP(5;21-23,80,443)"), "{g}");
    assert!(
        g.contains("22/open/tcp//ssh///") && g.contains("80/open/tcp//http///"),
        "{g}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shards_cover_every_pair_exactly_once_across_n_runs() {
    if !lab::root_or_skip("shards_cover_every_pair_exactly_once_across_n_runs") {
        return;
    }
    let lab = Lab::standard("nmaps").expect("build lab");
    let dir = tempdir("shard");
    let targets = ["198.18.2.1", "2001:db8:2::1"];
    let mut seen: BTreeMap<(String, u64), (usize, String)> = BTreeMap::new();
    for i in 1..=3 {
        let shard = format!("{i}/3");
        let mut args = vec![
            "--shard", &shard, "--seed", "7", "-p", PORTS, "--json", "-T5",
        ];
        args.extend(targets);
        let out = scan_in(&lab, &dir, &args);
        let (_, ports, _) = json_lines(&String::from_utf8_lossy(&out.stdout));
        for (k, v) in ports {
            let state = v["state"].as_str().unwrap().to_string();
            if let Some((other, _)) = seen.insert(k.clone(), (i, state)) {
                panic!("{k:?} in shards {other} and {i}");
            }
        }
    }
    let want: BTreeSet<(String, u64)> = targets
        .iter()
        .flat_map(|t| {
            [22u64, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90].map(|p| (t.to_string(), p))
        })
        .collect();
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), want);
    // The merged verdicts are the lab's.
    assert_eq!(seen[&("198.18.2.1".to_string(), 22)].1, "open");
    assert_eq!(seen[&("2001:db8:2::1".to_string(), 81)].1, "closed");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn capture_to_stdout_with_results_in_a_file() {
    if !lab::root_or_skip("capture_to_stdout_with_results_in_a_file") {
        return;
    }
    let lab = Lab::standard("nmapw").expect("build lab");
    let dir = tempdir("wdash");
    let out = scan_in(
        &lab,
        &dir,
        &["-w", "-", "-oJ", "r.jsonl", "-p", "22,81", "198.18.2.1"],
    );
    // pcap's magic (nanosecond or microsecond resolution, little-endian) on stdout.
    let magic = &out.stdout[..4];
    assert!(
        magic == [0x4d, 0x3c, 0xb2, 0xa1] || magic == [0xd4, 0xc3, 0xb2, 0xa1],
        "{magic:?}"
    );
    let (_, ports, _) = json_lines(&std::fs::read_to_string(dir.join("r.jsonl")).unwrap());
    assert_eq!(ports.len(), 2);
    // The capture replays to the same verdicts.
    std::fs::write(dir.join("c.pcap"), &out.stdout).unwrap();
    let replay = synack(&["replay", dir.join("c.pcap").to_str().unwrap(), "--json"]);
    assert!(replay.status.success(), "{}", stderr(&replay));
    assert!(String::from_utf8_lossy(&replay.stdout).contains("\"port\":81"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn host_timeout_stops_retries_and_says_so() {
    if !lab::root_or_skip("host_timeout_stops_retries_and_says_so") {
        return;
    }
    let lab = Lab::standard("nmapt").expect("build lab");
    let dir = tempdir("ht");
    // 82 and 87 drop: with --retries 3 each would take 4 attempts; the host timeout
    // passes during the first and no retry follows.
    let out = scan_in(
        &lab,
        &dir,
        &[
            "-p",
            "82,87",
            "--timeout",
            "300ms",
            "--max-retries",
            "3",
            "--host-timeout",
            "100ms",
            "--json",
            "198.18.2.1",
        ],
    );
    let (_, ports, _) = json_lines(&String::from_utf8_lossy(&out.stdout));
    for v in ports.values() {
        assert_eq!(v["state"], "filtered");
        assert_eq!(v["attempts"], 1, "{v}");
    }
    let err = stderr(&out);
    assert!(
        err.contains("--host-timeout") && err.contains("198.18.2.1"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
