//! The committed capture fixtures (capture-fixtures/, recorded by capture-fixtures/make.sh
//! in a namespace lab) replayed through the real binary and held to their reviewed
//! expected output; damaged copies of them, which must give warnings and exit codes, never
//! panics; and a full-range capture, which must replay in bounded memory.
//!
//! No root needed: everything here reads files. Damaged inputs are built in a temporary
//! directory from the fixtures, never committed.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use synack_core::capfile::PcapWriter;
use synack_core::decode::TcpFlags;
use synack_core::frame::{Frame, LinkType, Timestamp};
use synack_core::testpkt::{TcpSpec, tcp_v4};

const BIN: &str = env!("CARGO_BIN_EXE_synack");

/// Capture files are found by these extensions; each needs NAME.expected.jsonl,
/// NAME.expected.txt, NAME.expected.ladder.txt and NAME.expected.connections.txt beside it.
const CAPTURE_EXTENSIONS: [&str; 2] = ["pcap", "pcapng"];

/// The fixture the damaged-input tests start from: Ethernet, little-endian microsecond
/// pcap, the standard scenario over IPv4.
const BASE_FIXTURE: &str = "veth-v4-standard.pcap";

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("capture-fixtures")
}

fn captures() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(fixtures_dir())
        .expect("capture-fixtures/ exists")
        .map(|e| e.expect("directory entry").file_name())
        .filter_map(|n| n.to_str().map(str::to_owned))
        .filter(|n| {
            Path::new(n)
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| CAPTURE_EXTENSIONS.contains(&e))
        })
        .collect();
    names.sort();
    names
}

/// Runs `synack replay ARGS` in `dir`.
fn replay_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .arg("replay")
        .args(args)
        .output()
        .expect("run synack")
}

/// A replay's JSON Lines: port objects in output order, then the summary object.
struct JsonReport {
    ports: Vec<Value>,
    summary: Value,
}

fn parse_jsonl(text: &str, what: &str) -> JsonReport {
    let mut ports = Vec::new();
    let mut summary = None;
    for (i, line) in text.lines().enumerate() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{what}: line {}: not JSON ({e}): {line}", i + 1));
        assert!(
            summary.is_none(),
            "{what}: line {}: after the summary",
            i + 1
        );
        match v["type"].as_str() {
            Some("port") => ports.push(v),
            Some("summary") => summary = Some(v),
            other => panic!("{what}: line {}: unexpected type {other:?}", i + 1),
        }
    }
    JsonReport {
        ports,
        summary: summary.unwrap_or_else(|| panic!("{what}: no summary line")),
    }
}

fn port_key(v: &Value) -> String {
    format!("{}:{}", v["target"], v["port"])
}

/// The fields in which two JSON objects differ, as "name: expected X, actual Y".
fn field_differences(expected: &Value, actual: &Value) -> Vec<String> {
    let (Some(e), Some(a)) = (expected.as_object(), actual.as_object()) else {
        return vec![format!("expected {expected}, actual {actual}")];
    };
    let keys: BTreeSet<&String> = e.keys().chain(a.keys()).collect();
    let shown = |v: Option<&Value>| v.map_or("(absent)".to_string(), Value::to_string);
    keys.into_iter()
        .filter(|k| e.get(*k) != a.get(*k))
        .map(|k| {
            format!(
                "{k}: expected {}, actual {}",
                shown(e.get(k)),
                shown(a.get(k))
            )
        })
        .collect()
}

/// Differences between expected and actual JSON reports, one entry each.
///
/// Port objects must be equal as JSON values (key order does not matter). The summary is
/// compared whole: its only time, `elapsed_s`, is the span of the capture's own
/// timestamps, not a wall-clock measurement, so it is as fixed as the packets.
fn json_differences(expected: &JsonReport, actual: &JsonReport) -> Vec<String> {
    let mut diffs = Vec::new();
    if expected.ports.len() != actual.ports.len() {
        diffs.push(format!(
            "{} port objects, expected {}",
            actual.ports.len(),
            expected.ports.len()
        ));
    }
    for (i, (e, a)) in expected.ports.iter().zip(&actual.ports).enumerate() {
        for d in field_differences(e, a) {
            diffs.push(format!("port object {} ({}): {d}", i + 1, port_key(e)));
        }
    }
    for d in field_differences(&expected.summary, &actual.summary) {
        diffs.push(format!("summary: {d}"));
    }
    diffs
}

/// The first differing line of two texts, for a readable failure.
fn text_difference(expected: &str, actual: &str) -> Option<String> {
    if expected == actual {
        return None;
    }
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    for i in 0..e.len().max(a.len()) {
        let (el, al) = (e.get(i), a.get(i));
        if el != al {
            return Some(format!(
                "line {}:\n  expected {el:?}\n  actual   {al:?}",
                i + 1
            ));
        }
    }
    Some("texts differ in line endings".to_string())
}

fn read_expected(name: &str, suffix: &str) -> Result<String, String> {
    let path = fixtures_dir().join(format!("{name}{suffix}"));
    fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e} (write it with capture-fixtures/make.sh --expected-only, then review it)",
            path.display()
        )
    })
}

/// Replays fixture `name` with `flags` (split at spaces) and compares the output with its
/// `suffix` file; returns the output, or None when the replay failed. What differs goes
/// to `problems`.
fn check_text_view(
    dir: &Path,
    name: &str,
    flags: &str,
    suffix: &str,
    problems: &mut Vec<String>,
) -> Option<String> {
    let args: Vec<&str> = std::iter::once(name).chain(flags.split(' ')).collect();
    let out = replay_in(dir, &args);
    if !out.status.success() {
        problems.push(format!(
            "{flags} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
        return None;
    }
    let actual = String::from_utf8_lossy(&out.stdout).into_owned();
    match read_expected(name, suffix) {
        Ok(expected) => problems.extend(text_difference(&expected, &actual)),
        Err(e) => problems.push(e),
    }
    Some(actual)
}

/// Everything wrong with one fixture's replay; empty when it matches.
fn check_fixture(name: &str) -> Vec<String> {
    let dir = fixtures_dir();
    let mut problems = Vec::new();

    // Replayed by bare name from inside the directory, as make.sh does, so no path can
    // differ between the recording machine and this one.
    let out = replay_in(&dir, &[name, "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || stderr.contains("panicked") {
        problems.push(format!("--json exited with {}: {stderr}", out.status));
        return problems;
    }
    match read_expected(name, ".expected.jsonl") {
        Ok(expected) => {
            let expected = parse_jsonl(&expected, &format!("{name}.expected.jsonl"));
            let actual = parse_jsonl(&String::from_utf8_lossy(&out.stdout), name);
            problems.extend(json_differences(&expected, &actual));
        }
        Err(e) => problems.push(e),
    }

    if check_text_view(&dir, name, "--ascii", ".expected.txt", &mut problems).is_none() {
        return problems;
    }

    // The teaching views: ladder diagrams and explanations (plain ASCII, as piped).
    let Some(ladder) = check_text_view(
        &dir,
        name,
        "--ladder --explain",
        ".expected.ladder.txt",
        &mut problems,
    ) else {
        return problems;
    };
    // Diagram lines: the header, the time column, the lifelines.
    let is_ladder = |l: &str| {
        let t = l.trim_start();
        l.starts_with("scanner ") || t.starts_with('+') || t.starts_with('|') || t.starts_with(':')
    };
    if let Some(line) = ladder
        .lines()
        .find(|l| is_ladder(l) && l.chars().count() > 80)
    {
        problems.push(format!("a ladder line is wider than 80 columns: {line:?}"));
    }

    // The connection view (Zeek's conn.log): one row per attempt.
    check_text_view(
        &dir,
        name,
        "--connections --ascii",
        ".expected.connections.txt",
        &mut problems,
    );
    problems
}

#[test]
fn every_fixture_replays_to_its_reviewed_expected_output() {
    let names = captures();
    assert!(
        !names.is_empty(),
        "no captures in {}",
        fixtures_dir().display()
    );
    let mut failures = Vec::new();
    for name in &names {
        for p in check_fixture(name) {
            failures.push(format!("{name}: {p}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problem(s); if the change is intended, run capture-fixtures/make.sh \
         --expected-only and review the diff:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_expected_file_belongs_to_a_capture() {
    let names: BTreeSet<String> = captures().into_iter().collect();
    for entry in fs::read_dir(fixtures_dir()).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        for suffix in [
            ".expected.jsonl",
            ".expected.txt",
            ".expected.ladder.txt",
            ".expected.connections.txt",
        ] {
            if let Some(capture) = file.strip_suffix(suffix) {
                assert!(
                    names.contains(capture),
                    "{file} has no capture {capture} beside it"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Damaged input, built from a fixture in a temporary directory.
// ---------------------------------------------------------------------------------------

/// A temporary directory, removed on drop (also when the test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("synack-fixtures-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        fs::write(&p, bytes).expect("write temp file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// One record of a little-endian legacy pcap file.
#[derive(Clone, Copy, Debug)]
struct PcapRecord {
    /// Offset of the 16-byte record header.
    offset: usize,
    caplen: usize,
}

impl PcapRecord {
    fn data(&self) -> std::ops::Range<usize> {
        self.offset + 16..self.offset + 16 + self.caplen
    }
}

/// The base fixture's bytes and its record layout.
fn base_fixture() -> (Vec<u8>, Vec<PcapRecord>) {
    let bytes = fs::read(fixtures_dir().join(BASE_FIXTURE)).expect("read base fixture");
    assert_eq!(
        bytes[..4],
        [0xd4, 0xc3, 0xb2, 0xa1],
        "{BASE_FIXTURE}: expected a little-endian microsecond pcap"
    );
    let mut records = Vec::new();
    let mut offset = 24;
    while offset < bytes.len() {
        let caplen = u32::from_le_bytes(bytes[offset + 8..offset + 12].try_into().unwrap());
        let r = PcapRecord {
            offset,
            caplen: caplen as usize,
        };
        assert!(r.data().end <= bytes.len(), "{BASE_FIXTURE}: damaged");
        records.push(r);
        offset = r.data().end;
    }
    (bytes, records)
}

fn replay_file(path: &Path, extra: &[&str]) -> Output {
    let mut args = vec![path.to_str().expect("UTF-8 temp path")];
    args.extend_from_slice(extra);
    replay_in(Path::new("."), &args)
}

fn assert_no_panic(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked") && out.status.code().is_some(),
        "{what}: {} {stderr}",
        out.status
    );
    stderr
}

#[test]
fn a_file_that_is_not_a_capture_exits_2_naming_the_file_and_byte_0() {
    let tmp = TempDir::new("notcap");
    for (name, content) in [
        ("notes.pcap", &b"these are notes, not packets\n"[..]),
        ("empty.pcap", &b""[..]),
        ("gzipped.pcap", &[0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0][..]),
    ] {
        let path = tmp.write(name, content);
        let out = replay_file(&path, &["--json"]);
        let stderr = assert_no_panic(&out, name);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(path.to_str().unwrap()),
            "{name}: names the file: {stderr}"
        );
        assert!(stderr.contains("byte 0"), "{name}: says byte 0: {stderr}");
        assert!(out.stdout.is_empty(), "{name}: no report on stdout");
    }
}

#[test]
fn a_truncated_fixture_warns_with_the_offset_and_keeps_what_was_read() {
    let (bytes, records) = base_fixture();
    let cut = records[records.len() / 2];
    let tmp = TempDir::new("trunc");
    // Cut in the middle of a record's data, as an interrupted copy leaves a file, and, for
    // comparison, the same file ending cleanly at that record.
    let truncated = tmp.write("truncated.pcap", &bytes[..cut.offset + 16 + cut.caplen / 2]);
    let prefix = tmp.write("prefix.pcap", &bytes[..cut.offset]);

    let out = replay_file(&truncated, &["--json"]);
    let stderr = assert_no_panic(&out, "truncated");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let warning = format!("at byte {}", cut.offset);
    assert!(
        stderr.contains("warning") && stderr.contains(&warning),
        "stderr should warn {warning:?}: {stderr}"
    );
    let got = parse_jsonl(&String::from_utf8_lossy(&out.stdout), "truncated");
    assert!(
        got.summary["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains(&warning)),
        "{}",
        got.summary
    );

    let clean = replay_file(&prefix, &["--json"]);
    assert_eq!(clean.status.code(), Some(0));
    let clean = parse_jsonl(&String::from_utf8_lossy(&clean.stdout), "prefix");
    assert!(!clean.ports.is_empty(), "the first half holds verdicts");
    assert_eq!(
        got.ports, clean.ports,
        "verdicts come from exactly the records before the damage"
    );
}

/// The offset of the first IPv4 packet's first header byte (version and IHL) in the base
/// fixture, and that packet's TCP destination port.
fn first_ipv4_packet(bytes: &[u8], records: &[PcapRecord]) -> (usize, u16) {
    for r in records {
        let frame = &bytes[r.data()];
        // Ethernet II, EtherType IPv4, IHL 5, TCP.
        if frame.len() >= 14 + 20 + 4 && frame[12..14] == [0x08, 0x00] && frame[23] == 6 {
            assert_eq!(frame[14], 0x45, "an option-less IPv4 header");
            let dport = u16::from_be_bytes([frame[14 + 20 + 2], frame[14 + 20 + 3]]);
            return (r.data().start + 14, dport);
        }
    }
    panic!("{BASE_FIXTURE} holds no IPv4 TCP packet");
}

#[test]
fn a_corrupted_ipv4_header_length_does_not_panic_or_disturb_other_ports() {
    let (bytes, records) = base_fixture();
    let (at, port) = first_ipv4_packet(&bytes, &records);
    let expected = parse_jsonl(
        &read_expected(BASE_FIXTURE, ".expected.jsonl").unwrap(),
        BASE_FIXTURE,
    );
    let tmp = TempDir::new("ihl");
    // IHL below the minimum of 5, lying upwards (the TCP header is read 4 or 40 bytes too
    // late), and a version nibble that is not 4 under an IPv4 EtherType.
    for byte in [0x40u8, 0x41, 0x44, 0x46, 0x4f, 0x05, 0x65] {
        let mut damaged = bytes.clone();
        damaged[at] = byte;
        let name = format!("ihl-{byte:02x}.pcap");
        let path = tmp.write(&name, &damaged);
        let out = replay_file(&path, &["--json"]);
        let stderr = assert_no_panic(&out, &name);
        assert_eq!(out.status.code(), Some(0), "{name}: {stderr}");
        let got = parse_jsonl(&String::from_utf8_lossy(&out.stdout), &name);
        // Only the damaged packet's port may change; every other verdict and trace
        // stands. (Evidence wording may name a different kind of baseline packet, since
        // the damaged port's SYN/ACK no longer counts towards it.)
        for e in expected.ports.iter().filter(|e| e["port"] != port) {
            let found = got.ports.iter().find(|g| port_key(g) == port_key(e));
            let fields = [
                "state",
                "reason",
                "responder",
                "observed",
                "attempts",
                "trace",
            ];
            assert!(
                found.is_some_and(|g| fields.iter().all(|f| g[f] == e[f])),
                "{name}: lost or changed {}:\nexpected {e}\nactual   {found:?}",
                port_key(e)
            );
        }
        let text = replay_file(&path, &["--ascii"]);
        assert_no_panic(&text, &name);
        assert_eq!(text.status.code(), Some(0), "{name}");
    }
}

/// A packet whose IPv4 header is malformed (IHL below 5, version not 4 under an IPv4
/// EtherType) is counted in a warning, as Skip::BadIp documents, not dropped without a word.
#[test]
fn a_malformed_ipv4_header_is_reported_as_skipped() {
    let (bytes, records) = base_fixture();
    let (at, _) = first_ipv4_packet(&bytes, &records);
    let tmp = TempDir::new("badip");
    for byte in [0x40u8, 0x44, 0x05] {
        let mut damaged = bytes.clone();
        damaged[at] = byte;
        let path = tmp.write(&format!("badip-{byte:02x}.pcap"), &damaged);
        let out = replay_file(&path, &["--json"]);
        let stderr = assert_no_panic(&out, "badip");
        assert!(
            stderr.contains("1 packet skipped: malformed IP header"),
            "byte {byte:#04x}: {stderr}"
        );
    }
}

#[test]
fn an_unsupported_link_type_is_a_warning_not_an_error() {
    let (mut bytes, records) = base_fixture();
    // LINKTYPE_IEEE802_11 (105): a real link type synack does not decode.
    bytes[20..24].copy_from_slice(&105u32.to_le_bytes());
    let tmp = TempDir::new("link");
    let path = tmp.write("wifi.pcap", &bytes);
    let out = replay_file(&path, &["--json"]);
    let stderr = assert_no_panic(&out, "link type 105");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let warning = format!("{} packets with unsupported link type 105", records.len());
    assert!(
        stderr.contains("warning") && stderr.contains(&warning),
        "expected {warning:?}: {stderr}"
    );
    assert!(
        stderr.contains("IEEE802_11"),
        "names the link type: {stderr}"
    );
    let got = parse_jsonl(&String::from_utf8_lossy(&out.stdout), "link type 105");
    assert!(got.ports.is_empty());
    assert_eq!(got.summary["ports"], 0);
}

// ---------------------------------------------------------------------------------------
// Memory: a full-range scan capture.
// ---------------------------------------------------------------------------------------

/// Peak resident memory allowed for replaying a full-range (130k-packet) capture.
const FULL_RANGE_RSS_LIMIT_KB: i64 = 64 * 1024;

/// A synthetic full-range scan of 198.18.2.1 from 198.18.1.1: for every port a SYN marked
/// AF11 and the target stack's RST/ACK reflecting it, one hop away. 131,070 packets.
fn write_full_range_capture(path: &Path) {
    const SCANNER: [u8; 4] = [198, 18, 1, 1];
    const TARGET: [u8; 4] = [198, 18, 2, 1];
    const AF11_TOS: u8 = 10 << 2;
    let file = BufWriter::new(File::create(path).expect("create capture"));
    let mut w = PcapWriter::new(file, LinkType::Ethernet, 0).expect("pcap header");
    let t0 = 1_700_000_000_000_000_000u64;
    for port in 1..=u16::MAX {
        let sport = 32768 + port % 28000;
        let isn = u32::from(port).wrapping_mul(2_654_435_761);
        let syn = tcp_v4(
            SCANNER,
            TARGET,
            TcpSpec::new(sport, port, TcpFlags::SYN).seq(isn),
        )
        .tos(AF11_TOS)
        .ip_id(port)
        .ethernet();
        let rst = tcp_v4(
            TARGET,
            SCANNER,
            TcpSpec::new(port, sport, TcpFlags::RST | TcpFlags::ACK)
                .seq(0)
                .ack(isn.wrapping_add(1)),
        )
        .tos(AF11_TOS)
        .ttl(63)
        .ethernet();
        let ts = t0 + u64::from(port) * 20_000;
        for (i, data) in [syn, rst].iter().enumerate() {
            w.write_frame(&Frame {
                ts: Timestamp(ts + i as u64 * 5_000),
                link: LinkType::Ethernet,
                data,
                orig_len: data.len() as u32,
            })
            .expect("write frame");
        }
    }
    w.finish().expect("flush");
}

/// Peak resident set size of `synack ARGS`, in KiB, with its stdout and stderr in files;
/// also its exit code.
///
/// GNU time (`/usr/bin/time`, Debian package `time`) gives the exact figure: it forks
/// itself, so its child starts with fresh accounting. Without it, `wait4` on our own child
/// serves, but Linux keeps the maximum across exec and std spawns with vfork semantics, so
/// that figure can include this test process's own peak: it is an upper bound, conclusive
/// only when it is below the limit or above our own peak ([`Rss::Bound`]).
fn run_measuring_rss(args: &[&str], stdout: &Path, stderr: &Path) -> (i32, Rss) {
    let time = Path::new("/usr/bin/time");
    let rss_file = stdout.with_extension("rss");
    let mut cmd = if time.exists() {
        let mut c = Command::new(time);
        c.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(BIN);
        c
    } else {
        Command::new(BIN)
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(File::create(stdout).unwrap())
        .stderr(File::create(stderr).unwrap());
    let child = cmd.spawn().expect("spawn synack");
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain integers, for which all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = loop {
        // SAFETY: pid is our own child, not yet reaped (the `Child` handle is only
        // dropped, never waited on); status and usage are valid for writes.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc != -1 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            break rc;
        }
    };
    assert_eq!(rc, pid, "wait4: {}", std::io::Error::last_os_error());
    drop(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    let rss = if time.exists() {
        let text = fs::read_to_string(&rss_file).expect("GNU time output");
        // The last line: GNU time prints "Command exited with non-zero status" first.
        let kb = text.lines().last().and_then(|l| l.trim().parse().ok());
        Rss::Exact(kb.unwrap_or_else(|| panic!("GNU time wrote {text:?}")))
    } else {
        // SAFETY: as above; getrusage writes only into `own`.
        let mut own: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: RUSAGE_SELF with a valid out pointer.
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut own) };
        Rss::Bound {
            child: usage.ru_maxrss,
            own_peak: own.ru_maxrss,
        }
    };
    (code, rss)
}

/// A child's peak RSS in KiB (Linux reports ru_maxrss and GNU time's %M in KiB).
#[derive(Debug)]
enum Rss {
    Exact(i64),
    /// The child's figure, which may be this process's own peak instead.
    Bound {
        child: i64,
        own_peak: i64,
    },
}

impl Rss {
    /// Whether the peak is known to be at least `limit`.
    fn known_at_least(&self, limit: i64) -> bool {
        match *self {
            Rss::Exact(kb) => kb >= limit,
            // Above our own peak, the figure cannot be inherited: it is the child's.
            Rss::Bound { child, own_peak } => child >= limit && child > own_peak,
        }
    }
}

#[test]
fn full_range_capture_replays_with_bounded_memory() {
    let tmp = TempDir::new("fullrange");
    let capture = tmp.0.join("full-range.pcap");
    write_full_range_capture(&capture);
    let (stdout, stderr) = (tmp.0.join("out.jsonl"), tmp.0.join("err.txt"));
    let args = ["replay", capture.to_str().unwrap(), "--json"];
    let (code, rss) = run_measuring_rss(&args, &stdout, &stderr);
    let err = fs::read_to_string(&stderr).unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let out = fs::read_to_string(&stdout).unwrap();
    let got = parse_jsonl(&out, "full range");
    assert_eq!(got.ports.len(), 65535);
    assert_eq!(got.summary["ports"], 65535);
    assert_eq!(got.summary["closed"], 65535, "{}", got.summary);
    let mut seen = BTreeSet::new();
    for v in &got.ports {
        assert_eq!(
            (&v["state"], &v["reason"], &v["responder"]),
            (&"closed".into(), &"reset".into(), &"target".into()),
            "{v}"
        );
        seen.insert(v["port"].as_u64().unwrap());
    }
    assert_eq!(seen.len(), 65535, "every port once");

    eprintln!("full-range replay: peak RSS {rss:?} KiB");
    assert!(
        !rss.known_at_least(FULL_RANGE_RSS_LIMIT_KB),
        "replaying 131,070 packets took {rss:?} KiB at peak, limit {FULL_RANGE_RSS_LIMIT_KB} KiB"
    );
}

// ---------------------------------------------------------------------------------------
// Compressed input (capture-fixtures/make-crafted.sh writes the .gz and .zst copies)

/// `synack replay` of a gzip- or zstd-compressed copy of a fixture, by name and from
/// standard input, gives exactly the uncompressed fixture's reviewed output.
#[test]
fn compressed_fixtures_replay_like_the_plain_capture_from_files_and_stdin() {
    let dir = fixtures_dir();
    let expected_txt = read_expected(BASE_FIXTURE, ".expected.txt").unwrap();
    let expected_json = parse_jsonl(
        &read_expected(BASE_FIXTURE, ".expected.jsonl").unwrap(),
        BASE_FIXTURE,
    );
    for name in [format!("{BASE_FIXTURE}.gz"), format!("{BASE_FIXTURE}.zst")] {
        let out = replay_in(&dir, &[&name, "--ascii"]);
        let stderr = assert_no_panic(&out, &name);
        assert!(out.status.success(), "{name}: {stderr}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text_difference(&expected_txt, &text), None, "{name}");

        let stdin = File::open(dir.join(&name)).unwrap();
        let out = Command::new(BIN)
            .current_dir(&dir)
            .args(["replay", "-", "--json"])
            .stdin(Stdio::from(stdin))
            .output()
            .expect("run synack");
        let stderr = assert_no_panic(&out, &name);
        assert!(out.status.success(), "{name} on stdin: {stderr}");
        let actual = parse_jsonl(&String::from_utf8_lossy(&out.stdout), &name);
        assert_eq!(
            json_differences(&expected_json, &actual),
            Vec::<String>::new(),
            "{name} on stdin"
        );
    }
}
