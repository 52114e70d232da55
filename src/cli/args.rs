//! The clap definitions, and nmap's multi-letter options (`-sT`, `-Pn`, `-oX`, `-iL`)
//! turned into the long options clap parses (`--scan-type T`, `--ping n`,
//! `--output-xml`, `--input-list`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use synack::live;

const AFTER_HELP: &str = "\
Every verdict comes with the packets that decided it:
  open      ← SYN/ACK: the handshake completed (RFC 9293 §3.5)
  closed    ← RST from the target's own TCP stack (RFC 9293 §3.10.7.1)
  filtered  nothing, an ICMP error, or a RST forged by a firewall or a router

Examples:
  synack scan 198.18.2.1 -p 22,80,81-90        (root: packet traces)
  synack scan 127.0.0.1 -p- --json             (full range, JSON Lines)
  synack scan 198.18.2.1 -w scan.pcap          (also save the packets)
  synack scan -sT -Pn -T4 --top-ports 1000 -oA lab 198.18.2.0/29   (nmap's spelling)
  synack replay capture.pcapng                 (verdicts from a capture file)

Exit codes:
  0    the run finished (whatever the ports' states)
  1    a runtime failure (no route, capture or prober error, output file unwritable)
  2    bad input: a bad value, a bad target, or an nmap option synack cannot mean
  130  interrupted (Ctrl-C); what was decided is reported";

const SCAN_AFTER_HELP: &str = "\
nmap users: -sT (what synack always does), -Pn (skip host discovery, which runs by
default for more than one target: ICMP echo and timestamp as root, connect() to 80 and
443), -n (a no-op: synack does no reverse DNS), --reason (always on),
-F (the default: nmap's top 100), -oN/-oX/-oG/-oA/-iL as nmap spells them. Refused,
naming the nearest synack feature: -sS, -sU, -sV, -sn, -O, -A, -P other than -Pn.

Timing templates (-T; any explicit flag wins over the template):
  -T  name        parallelism  timeout               retries  max-rate
  0   paranoid    1            adaptive              1        1 per 300 s
  1   sneaky      1            adaptive              1        1 per 15 s
  2   polite      1            adaptive              1        2.5/s (1 per 0.4 s)
  3   normal      512          adaptive              1        none      (the default)
  4   aggressive  1024         adaptive              1        none
  5   insane      2048         300ms fixed           0        none
Adaptive: srtt + 4·rttvar of the measured round trips, 100ms to 10s, 1s before the
first answer (nmap's min/max/initial rtt timeouts of -T3). nmap's scan delays become
synack's max-rate; nmap's 10 retries (6 for -T4, 2 for -T5) are 1 here, because every
retry comes from a new source port and is traced.

Exit codes: 0 finished, 1 runtime failure, 2 bad input or unsupported nmap option,
130 interrupted.";

#[derive(Parser, Debug)]
#[command(
    name = "synack",
    version,
    about = "TCP connect scans with packet-traced verdicts",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Scan TCP ports with connect() while capturing the packets that decide each port.
    Scan(Box<ScanArgs>),
    /// Rebuild verdicts from pcap / pcapng captures (made by synack, nmap, tcpdump, …).
    Replay(ReplayArgs),
    /// As root: build a throw-away namespace lab with one port per behaviour (open,
    /// closed, dropped, reset by the host's firewall or a router, ICMP-rejected), scan it
    /// over IPv4 and IPv6, and remove it.
    Demo {
        /// Extra `scan` options, e.g. --json.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        scan_args: Vec<String>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to stdout: `synack man | man -l -`.
    Man,
    /// Hold a namespace test lab (scanner, router, target) until stdin closes (for scripts).
    #[command(hide = true)]
    Lab {
        /// A tag for the namespace names.
        #[arg(default_value = "serve")]
        tag: String,
        /// Also answer for every address of this prefix (inside 198.19.0.0/16), port 443
        /// open on all of them: many hosts for benchmarks.
        #[arg(long, value_name = "PREFIX")]
        many_hosts: Option<String>,
        /// A prefix (inside 198.19.0.0/16) the router drops without a word: dead hosts.
        #[arg(long, value_name = "PREFIX")]
        blackhole: Option<String>,
        /// A far prefix (inside 198.19.0.0/16 or 2001:db8::/32): the target answers for
        /// it, and every packet towards it waits --far-delay in a relay in the router;
        /// its first address has ports 22 and 80 open.
        #[arg(long, value_name = "PREFIX")]
        far: Option<String>,
        #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = parse_duration)]
        far_delay: Duration,
    },
}

/// `--color`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    /// Colour on a terminal, unless NO_COLOR is set or TERM=dumb.
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// JSON Lines on stdout: one object per port, then a summary object (a scan starts
    /// with a "run" object).
    #[arg(long)]
    pub json: bool,
    /// List every port (otherwise large groups of closed/filtered ports are summarised).
    #[arg(long = "all")]
    pub show_all: bool,
    /// Plain ASCII arrows (-> <-) instead of Unicode (→ ←), also on a terminal (output
    /// that is not a terminal is always ASCII).
    #[arg(long)]
    pub ascii: bool,
    /// Under each port, a sequence diagram of its packets (scanner, router, target).
    #[arg(long)]
    pub ladder: bool,
    /// Under each port, why this verdict, citing RFC 9293 and the typical firewall rule.
    #[arg(long)]
    pub explain: bool,
    /// No colour (as --color never; also: NO_COLOR set, or stdout not a terminal).
    #[arg(long)]
    pub no_color: bool,
    /// Colour the table: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, value_enum, default_value_t, value_name = "WHEN")]
    pub color: ColorWhen,
}

#[derive(Args, Debug)]
#[command(after_help = SCAN_AFTER_HELP)]
pub struct ScanArgs {
    /// Targets: IPv4/IPv6 addresses, hostnames, CIDR blocks (198.18.2.0/30), also
    /// comma-separated (198.18.2.1,198.18.2.2).
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Read targets from FILE (- for stdin), separated by spaces, tabs, newlines or
    /// commas; # starts a comment. nmap's -iL.
    #[arg(long = "input-list", value_name = "FILE")]
    pub input_list: Option<PathBuf>,
    /// Leave these targets out: addresses, CIDR blocks of any size, hostnames, comma-
    /// separated.
    #[arg(long, value_name = "TARGETS")]
    pub exclude: Vec<String>,
    /// Leave out the targets listed in FILE (as -iL's format).
    #[arg(long, value_name = "FILE")]
    pub excludefile: Option<PathBuf>,
    /// Ports in nmap syntax: 22,80  1-1024  -100  60000-  - (all)  ssh,http (service
    /// names)  T:22 (TCP; U: is refused). Default: nmap's 100 most common ports.
    #[arg(
        short = 'p',
        long = "ports",
        value_name = "PORTS",
        allow_hyphen_values = true
    )]
    pub ports: Option<String>,
    /// The N most frequently open TCP ports in nmap's ranking (1-1000).
    #[arg(long, value_name = "N", conflicts_with = "ports")]
    pub top_ports: Option<usize>,
    /// nmap's fast scan (top 100 ports): synack's default anyway.
    #[arg(short = 'F', conflicts_with_all = ["ports", "top_ports"])]
    pub fast: bool,
    /// Timing template 0-5 or its name (paranoid, sneaky, polite, normal, aggressive,
    /// insane); see the table below.
    #[arg(short = 'T', value_name = "0-5", value_parser = parse_template)]
    pub timing: Option<u8>,
    /// Per-attempt timeout, e.g. 500ms or 2s. Default: adapted to the measured round trip
    /// (srtt + 4·rttvar, 100ms to 10s; 1s before the first answer).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Further attempts (from a new source port) after an unanswered one [default: 1].
    #[arg(long, visible_alias = "max-retries", value_name = "N")]
    pub retries: Option<u32>,
    /// Give up on a host this long after its first attempt: its unanswered ports are
    /// not retried any more (each is still tried once, and keeps its verdict), and a
    /// warning names the host.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub host_timeout: Option<Duration>,
    /// How long synack may spend per target re-probing, slower, the ports that stayed
    /// silent after the target answered earlier SYNs with ICMP errors (rate-limited
    /// REJECTs: Linux sends about one ICMP error per second per peer). 0 turns it off
    /// [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_or_zero)]
    pub slow_retry_time: Option<Duration>,
    /// Connection attempts in flight at most [default: 512].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub parallelism: Option<u32>,
    /// Connection attempts started per second at most.
    #[arg(long, value_name = "PER_SECOND", value_parser = parse_rate)]
    pub max_rate: Option<f64>,
    /// Connection attempts started per second at least: the window is widened to
    /// rate × timeout (1s while adaptive), so even unanswered attempts leave that fast.
    /// synack never slows down on its own (no congestion control), except to re-probe
    /// the silent ports of a target that rate-limits its ICMP errors (--slow-retry-time).
    #[arg(long, value_name = "PER_SECOND", value_parser = parse_rate)]
    pub min_rate: Option<f64>,
    /// This machine's part of a scan cut in N (1-based, as masscan's): every
    /// (target, port) pair is in exactly one of the N parts; merge their JSON Lines.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// The seed of --shard's permutation; every part of one scan needs the same.
    #[arg(long, value_name = "S", default_value_t = 0, requires = "shard")]
    pub seed: u64,
    /// Show only open ports (and only targets with one), in every output.
    #[arg(long)]
    pub open: bool,
    /// nmap's --reason: synack always gives the reason (and the packets).
    #[arg(long)]
    pub reason: bool,
    /// More: list every port (as --all); nmap XML's verbose level. Repeatable.
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less: no progress line and no warnings on stderr (errors still).
    #[arg(short = 'q', long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// nmap's -n (no reverse DNS): synack never resolves addresses to names. No-op.
    #[arg(short = 'n')]
    pub no_dns: bool,
    /// nmap's -s<TYPE> (-sT): only T, connect(), is what synack does.
    #[arg(long = "scan-type", value_name = "TYPE", hide = true)]
    pub scan_type: Option<String>,
    /// nmap's -P<TYPE>: -Pn skips host discovery (every port of every target is scanned);
    /// other -P options are refused (synack's discovery is ICMP echo and timestamp as
    /// root, plus connect() to 80 and 443).
    #[arg(long = "ping", value_name = "TYPE", hide = true)]
    pub ping: Option<String>,
    /// Skip host discovery: scan every port of every target (as nmap -Pn).
    #[arg(long)]
    pub no_discovery: bool,
    /// nmap's -O: refused (see the message for the nearest synack feature).
    #[arg(short = 'O', hide = true)]
    pub os_detection: bool,
    /// nmap's -A: refused (see the message for the nearest synack feature).
    #[arg(short = 'A', hide = true)]
    pub aggressive: bool,
    /// DSCP to mark SYNs with (0-63; 10 is AF11); whether a RST reflects it tells the
    /// target's stack from a firewall.
    #[arg(long, value_name = "DSCP", default_value_t = live::DEFAULT_DSCP, value_parser = clap::value_parser!(u8).range(0..=63))]
    pub dscp: u8,
    /// Do not mark SYNs with a DSCP.
    #[arg(long)]
    pub no_dscp: bool,
    /// Do not capture: verdicts from connect() alone, as nmap -sT.
    #[arg(long)]
    pub no_capture: bool,
    /// Print each packet as it is captured, tagged with its port, while the scan runs
    /// (on stderr with --json or -w -).
    #[arg(long)]
    pub live: bool,
    /// Also write every captured frame to this pcap file; - writes it to stdout (then
    /// the results need a file: -oN, -oJ, -oX, -oG or -oA).
    #[arg(short = 'w', long = "write", value_name = "FILE.pcap")]
    pub write: Option<PathBuf>,
    /// How long the capture goes on after the last attempt, for late answers. Shortened
    /// to 10ms when every attempt was answered, to what is left of the timeout when the
    /// last unanswered attempt was given up on recently.
    #[arg(long, default_value = "250ms", value_name = "DURATION", value_parser = parse_duration)]
    pub grace: Duration,
    /// The table to FILE, without colour (nmap's -oN FILE; - for stdout).
    #[arg(long = "output-normal", value_name = "FILE")]
    pub output_normal: Option<PathBuf>,
    /// nmap XML to FILE, valid against nmap.dtd (nmap's -oX FILE; - for stdout).
    #[arg(long = "output-xml", value_name = "FILE")]
    pub output_xml: Option<PathBuf>,
    /// nmap's grepable lines to FILE (nmap's -oG FILE; - for stdout).
    #[arg(long = "output-grepable", value_name = "FILE")]
    pub output_grepable: Option<PathBuf>,
    /// All three: BASE.nmap, BASE.xml, BASE.gnmap (nmap's -oA BASE).
    #[arg(long = "output-all", value_name = "BASE")]
    pub output_all: Option<PathBuf>,
    /// JSON Lines to FILE (-oJ FILE; - for stdout).
    #[arg(long = "output-json", value_name = "FILE")]
    pub output_json: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Capture files (pcap or pcapng, also gzip- or zstd-compressed); - reads standard
    /// input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Only frames matching this tcpdump filter expression (compiled by libpcap).
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// One row per connection attempt (client, source port, target, port, …), as Zeek's conn.log.
    #[arg(long)]
    pub connections: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// nmap's spellings of options clap cannot take as they are (several letters after one
/// dash) → the long options above. Only whole arguments are rewritten, and nothing after
/// `--`.
pub fn nmap_spelling(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = false;
    for a in args {
        if rest || a == "--" {
            rest = true;
            out.push(a);
            continue;
        }
        let long = match a.as_str() {
            "-oN" => Some("--output-normal".to_string()),
            "-oX" => Some("--output-xml".to_string()),
            "-oG" => Some("--output-grepable".to_string()),
            "-oA" => Some("--output-all".to_string()),
            "-oJ" => Some("--output-json".to_string()),
            "-iL" => Some("--input-list".to_string()),
            s if s.len() >= 3
                && s.starts_with("-s")
                && s[2..].bytes().all(|b| b.is_ascii_alphabetic()) =>
            {
                Some(format!("--scan-type={}", &s[2..]))
            }
            s if s.len() >= 3
                && s.starts_with("-P")
                && s[2..].bytes().all(|b| b.is_ascii_alphanumeric()) =>
            {
                Some(format!("--ping={}", &s[2..]))
            }
            _ => None,
        };
        out.push(long.unwrap_or(a));
    }
    out
}

fn parse_template(s: &str) -> Result<u8, String> {
    const NAMES: [&str; 6] = [
        "paranoid",
        "sneaky",
        "polite",
        "normal",
        "aggressive",
        "insane",
    ];
    if let Some(i) = NAMES.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(i as u8);
    }
    match s.parse::<u8>() {
        Ok(n) if n <= 5 => Ok(n),
        _ => Err(format!(
            "'{s}' is not a timing template (0-5 or paranoid, sneaky, polite, normal, aggressive, insane)"
        )),
    }
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let value: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (examples: 500ms, 2s, 1.5s)"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("'{s}': unknown unit '{unit}' (use ms, s, m or h)")),
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 86_400.0 {
        return Err(format!(
            "'{s}' is out of range (more than 0, at most 24 hours)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A duration as [`parse_duration`] reads it, or 0 (off).
pub fn parse_duration_or_zero(s: &str) -> Result<Duration, String> {
    if s.trim().trim_end_matches(|c: char| c.is_ascii_alphabetic()) == "0" {
        return Ok(Duration::ZERO);
    }
    parse_duration(s)
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!("'{s}' must be more than 0"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("0s").unwrap_err().contains("'0s'"));
        assert!(parse_duration("abc").unwrap_err().contains("'abc'"));
        assert!(parse_duration("5d").unwrap_err().contains("unit 'd'"));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("NaNs").is_err());
    }

    #[test]
    fn templates() {
        assert_eq!(parse_template("4"), Ok(4));
        assert_eq!(parse_template("Insane"), Ok(5));
        assert!(parse_template("6").unwrap_err().contains("'6'"));
    }

    #[test]
    fn nmap_spellings_become_long_options() {
        let v = |s: &[&str]| nmap_spelling(s.iter().map(|s| s.to_string()));
        assert_eq!(
            v(&[
                "-sT", "-Pn", "-oX", "f.xml", "-iL", "-", "-p-", "-sV", "--", "-oN"
            ]),
            [
                "--scan-type=T",
                "--ping=n",
                "--output-xml",
                "f.xml",
                "--input-list",
                "-",
                "-p-",
                "--scan-type=V",
                "--",
                "-oN"
            ]
        );
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
