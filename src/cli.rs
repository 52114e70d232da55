//! Command line: parse, validate what the user typed (exit 2 naming the bad value), then
//! build the expensive objects and hand the finished report to a sink.

use std::cell::Cell;
use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use synack::live::{self, Progress, ScanOptions, prober::ProbeConfig};
use synack::replay;
use synack::report::{self, RunSummary, ScanReport, Sink, TargetReport, text::TextOptions};
use synack_core::targets::{self, SystemResolver};

const AFTER_HELP: &str = "\
Every verdict comes with the packets that decided it:
  open      ← SYN/ACK: the handshake completed (RFC 9293 §3.5)
  closed    ← RST from the target's own TCP stack (RFC 9293 §3.10.7.1)
  filtered  nothing, an ICMP error, or a RST forged by a firewall or a router

Examples:
  synack scan 198.18.2.1 -p 22,80,81-90        (root: packet traces)
  synack scan 127.0.0.1 -p- --json             (full range, JSON Lines)
  synack scan 198.18.2.1 -w scan.pcap          (also save the packets)
  synack replay capture.pcapng                 (verdicts from a capture file)";

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
    Scan(ScanArgs),
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
    },
}

#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// JSON Lines on stdout: one object per port, then a summary object.
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
    /// No colour (also: NO_COLOR set, or stdout not a terminal).
    #[arg(long)]
    pub no_color: bool,
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Targets: IPv4/IPv6 addresses, hostnames, CIDR blocks (198.18.2.0/30).
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Ports in nmap syntax: 22,80  1-1024  -100  60000-  or - for all (-p-).
    /// Default: nmap's 100 most common ports.
    #[arg(
        short = 'p',
        long = "ports",
        value_name = "PORTS",
        allow_hyphen_values = true
    )]
    pub ports: Option<String>,
    /// Per-attempt timeout, e.g. 500ms or 2s. Default: adapted to the measured round trip
    /// (srtt + 4·rttvar, 100ms to 10s; 1s before the first answer).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Further attempts (from a new source port) after an unanswered one.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub retries: u32,
    /// Connection attempts in flight at most.
    #[arg(long, default_value_t = 512, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub parallelism: u32,
    /// Connection attempts started per second at most.
    #[arg(long, value_name = "PER_SECOND", value_parser = parse_rate)]
    pub max_rate: Option<f64>,
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
    /// (on stderr with --json).
    #[arg(long)]
    pub live: bool,
    /// Also write every captured frame to this pcap file.
    #[arg(short = 'w', long = "write", value_name = "FILE.pcap")]
    pub write: Option<PathBuf>,
    /// How long the capture goes on after the last attempt, for late answers. Shortened
    /// to 10ms when every attempt was answered, to what is left of the timeout when the
    /// last unanswered attempt was given up on recently.
    #[arg(long, default_value = "250ms", value_name = "DURATION", value_parser = parse_duration)]
    pub grace: Duration,
    /// Skip host discovery: scan every port of every target (as nmap -Pn).
    #[arg(long, hide = true)]
    pub no_discovery: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Capture files (pcap or pcapng).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
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
        _ => return Err(format!("'{s}': unknown unit '{unit}' (use ms, s or m)")),
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 3600.0 {
        return Err(format!(
            "'{s}' is out of range (more than 0, at most 1 hour)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!("'{s}' must be more than 0"));
    }
    Ok(v)
}

/// Exit codes: 0 success, 1 runtime failure, 2 bad input, 130 interrupted.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        Command::Scan(args) => run_scan(args),
        Command::Replay(args) => run_replay(args),
        Command::Demo { scan_args } => run_demo(scan_args),
        Command::Lab {
            tag,
            many_hosts,
            blackhole,
        } => match synack_lab::serve(&tag, many_hosts.as_deref(), blackhole.as_deref()) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("synack lab: {e}");
                1
            }
        },
    }
}

/// `synack demo [SCAN OPTIONS]`: the options are checked as `synack scan` would check
/// them (exit 2 naming a bad one) before any lab is built. Without options of its own,
/// the demo shows the teaching views (--ladder --explain).
fn run_demo(scan_args: Vec<String>) -> i32 {
    let teaching = scan_args.is_empty();
    let as_scan = ["synack", "scan", "198.18.2.1"]
        .into_iter()
        .map(String::from)
        .chain(scan_args.iter().cloned());
    let mut output = match Cli::try_parse_from(as_scan) {
        Ok(Cli {
            command: Command::Scan(args),
        }) => args.output,
        Ok(_) => unreachable!("parsed as the scan subcommand"),
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    if teaching {
        output.ladder = true;
        output.explain = true;
    }
    match crate::demo::plan() {
        Ok(crate::demo::Plan::Lab) => {
            let mut args = scan_args;
            if teaching {
                args = vec!["--ladder".into(), "--explain".into()];
            }
            crate::demo::run_lab(&args)
        }
        Ok(crate::demo::Plan::Bundled(report)) => emit(&report, &output),
        Err(e) => {
            eprintln!("synack demo: {e}");
            1
        }
    }
}

fn error(msg: impl std::fmt::Display) -> i32 {
    eprintln!("synack: {msg}");
    2
}

fn run_scan(args: ScanArgs) -> i32 {
    let ports = match &args.ports {
        Some(spec) => match targets::parse_ports(spec) {
            Ok(p) => p,
            Err(e) => return error(e),
        },
        None => targets::DEFAULT_PORTS.to_vec(),
    };
    let targets = match targets::parse_targets(&args.targets, &SystemResolver) {
        Ok(t) => t,
        Err(e) => return error(e),
    };
    if args.write.is_some() && args.no_capture {
        return error("-w needs the capture; it cannot go with --no-capture");
    }
    let opts = ScanOptions {
        probe: ProbeConfig {
            targets: Vec::new(),
            ports,
            timeout: args.timeout,
            retries: args.retries,
            parallelism: args.parallelism as usize,
            max_rate: args.max_rate,
            dscp: (!args.no_dscp).then_some(args.dscp),
            shard: (0, 1),
            rtt_seeds: Default::default(),
        },
        capture: !args.no_capture,
        write: args.write.clone(),
        grace: args.grace,
        discovery: !args.no_discovery,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut hooks = CliHooks {
        show_progress: io::stderr().is_terminal(),
        progress_shown: Rc::new(Cell::new(false)),
        live: args.live,
        live_to_stderr: args.output.json,
        unicode: terminal_style(&args.output).0,
        first_ts: None,
    };
    // Captures and -w file opened, then privileges dropped while no thread exists yet.
    let mut sink = ClearsProgress {
        inner: stdout_sink(&args.output),
        shown: hooks.progress_shown.clone(),
    };
    let result = live::prepare(&targets, &opts).and_then(|scan| {
        scan.drop_privileges()?;
        install_interrupt(stop.clone());
        scan.run(stop.clone(), &mut hooks, &mut sink)
    });
    if hooks.progress_shown.get() {
        eprint!("\r\x1b[K");
    }
    match result {
        Ok(summary) => conclude(Ok(summary)),
        Err(live::ScanError::Output(e)) => conclude(Err(e)),
        Err(e) => {
            eprintln!("synack: {e}");
            match e {
                live::ScanError::WriteNeedsCapture(_) | live::ScanError::MixedLinkTypes(_) => 2,
                _ => 1,
            }
        }
    }
}

/// Clears the progress line (stderr) before a target's block reaches stdout, so the two
/// do not run into each other on a terminal.
struct ClearsProgress {
    inner: Box<dyn Sink>,
    shown: Rc<Cell<bool>>,
}

impl Sink for ClearsProgress {
    fn target(&mut self, t: &TargetReport<'_>) -> io::Result<()> {
        if self.shown.replace(false) {
            eprint!("\r\x1b[K");
        }
        self.inner.target(t)
    }

    fn finish(&mut self, s: &RunSummary) -> io::Result<()> {
        if self.shown.replace(false) {
            eprint!("\r\x1b[K");
        }
        self.inner.finish(s)
    }

    fn host(&mut self, h: &report::HostReport<'_>) -> io::Result<()> {
        if self.shown.replace(false) {
            eprint!("\r\x1b[K");
        }
        self.inner.host(h)
    }
}

/// Progress line on stderr (only on a terminal, never on stdout) and `--live` packets.
struct CliHooks {
    show_progress: bool,
    progress_shown: Rc<Cell<bool>>,
    live: bool,
    live_to_stderr: bool,
    unicode: bool,
    first_ts: Option<synack_core::frame::Timestamp>,
}

impl live::ScanHooks for CliHooks {
    fn progress(&mut self, p: &Progress) {
        if self.show_progress && p.elapsed >= Duration::from_secs(1) {
            self.progress_shown.set(true);
            // A calibration probe (docs/verdicts.md) may finish one port more than asked.
            let done = p.ports_done.min(p.ports_total);
            let rate = done as f64 / p.elapsed.as_secs_f64().max(0.001);
            let left = (p.ports_total - done) as f64 / rate.max(1.0);
            eprint!(
                "\r\x1b[K{}/{} ports · {} open · {:.0} ports/s · ~{:.0}s left",
                done, p.ports_total, p.open, rate, left
            );
        }
    }

    fn packet(
        &mut self,
        ts: synack_core::frame::Timestamp,
        obs: &synack_core::decode::Observation,
    ) {
        if !self.live {
            return;
        }
        let first = *self.first_ts.get_or_insert(ts);
        let line = report::live_line(ts.since(first), obs, self.unicode);
        if self.progress_shown.get() {
            eprint!("\r\x1b[K");
        }
        if self.live_to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
}

fn run_replay(args: ReplayArgs) -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    install_interrupt(stop.clone());
    let readers = match replay::open_files(&args.files, &stop) {
        Ok(r) => r,
        Err(e) => return error(e),
    };
    let mut sink = stdout_sink(&args.output);
    conclude(replay::replay_into(readers, sink.as_mut(), &stop))
}

/// (Unicode arrows, colour) for stdout: colour only on a terminal (not TERM=dumb)
/// without --no-color or NO_COLOR; Unicode only on such a terminal with a UTF-8 locale
/// and without --ascii. Piped or logged output is plain ASCII.
fn terminal_style(out: &OutputArgs) -> (bool, bool) {
    style_for(io::stdout().is_terminal(), |k| std::env::var(k).ok(), out)
}

fn style_for(tty: bool, var: impl Fn(&str) -> Option<String>, out: &OutputArgs) -> (bool, bool) {
    let env = |k: &str| var(k).filter(|v| !v.is_empty());
    let tty = tty && env("TERM").as_deref() != Some("dumb");
    let color = tty && !out.no_color && env("NO_COLOR").is_none();
    // The first locale variable that is set decides the character set (POSIX order).
    let utf8 = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|k| env(k))
        .is_some_and(|v| {
            let v = v.to_ascii_lowercase();
            v.contains("utf-8") || v.contains("utf8")
        });
    (tty && utf8 && !out.ascii, color)
}

/// Columns that evidence lines and explanations wrap at: the terminal's width when
/// stdout is a terminal (at least 40), else 80.
fn output_width() -> usize {
    if !io::stdout().is_terminal() {
        return 80;
    }
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we pass; stdout is a valid
    // descriptor for the life of the process, and a failure leaves the zeroed struct.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        usize::from(ws.ws_col).max(40)
    } else {
        80
    }
}

/// The sink for stdout in the chosen format: each target's block leaves as soon as it
/// is final.
fn stdout_sink(out: &OutputArgs) -> Box<dyn Sink> {
    let stdout = io::BufWriter::new(io::stdout());
    if out.json {
        return Box::new(report::json::JsonSink::new(stdout));
    }
    let (unicode, color) = terminal_style(out);
    let opts = TextOptions {
        unicode,
        color,
        show_all: out.show_all,
        ladder: out.ladder.then_some(synack::report::ladder::LadderOptions {
            unicode,
            color,
            width: 80,
        }),
        explain: out.explain,
        width: output_width(),
        ..TextOptions::default()
    };
    Box::new(report::text::TextSink::new(stdout, opts))
}

/// The end of a run on the command line: its warnings on stderr, and the exit code
/// (a closed pipe is not an error; Ctrl-C is 130).
fn conclude(result: io::Result<RunSummary>) -> i32 {
    match result {
        Ok(s) => {
            for w in &s.warnings {
                eprintln!("synack: warning: {w}");
            }
            if s.interrupted { 130 } else { 0 }
        }
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("synack: writing output: {e}");
            1
        }
    }
}

/// Writes a whole report (the bundled demo capture) to stdout.
fn emit(report: &ScanReport, out: &OutputArgs) -> i32 {
    let mut sink = stdout_sink(out);
    let result = report.write_to(sink.as_mut()).map(|()| RunSummary {
        warnings: report.warnings.clone(),
        interrupted: report.interrupted,
        ..RunSummary::default()
    });
    conclude(result)
}

/// Ctrl-C: the first sets `stop` (the scan ends with what it found), the second exits.
/// SIGINT is blocked in every thread and taken by a dedicated thread with sigwait, so no
/// code runs in signal context.
fn install_interrupt(stop: Arc<AtomicBool>) {
    let set = synack::signals::block_stop_signals();
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            while synack::signals::wait(&set).is_some() {
                if stop.swap(true, Ordering::SeqCst) {
                    std::process::exit(130);
                }
                eprintln!(
                    "\nsynack: interrupted, finishing with the results so far (Ctrl-C again to quit)"
                );
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("0s").unwrap_err().contains("'0s'"));
        assert!(parse_duration("abc").unwrap_err().contains("'abc'"));
        assert!(parse_duration("5h").unwrap_err().contains("unit 'h'"));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("NaNs").is_err());
    }

    #[test]
    fn unicode_and_colour_only_on_capable_terminals() {
        let out = |ascii, no_color| OutputArgs {
            json: false,
            show_all: false,
            ascii,
            ladder: false,
            explain: false,
            no_color,
        };
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let utf8 = env(&[("LANG", "en_GB.UTF-8"), ("TERM", "xterm")]);
        assert_eq!(style_for(true, utf8, &out(false, false)), (true, true));
        assert_eq!(style_for(false, utf8, &out(false, false)), (false, false));
        assert_eq!(style_for(true, utf8, &out(true, true)), (false, false));
        assert_eq!(
            style_for(true, env(&[("LANG", "C")]), &out(false, false)),
            (false, true)
        );
        // LC_ALL wins over LANG.
        let c_all = env(&[("LC_ALL", "C"), ("LANG", "C.UTF-8")]);
        assert_eq!(style_for(true, c_all, &out(false, false)), (false, true));
        let dumb = env(&[("TERM", "dumb"), ("LANG", "C.UTF-8")]);
        assert_eq!(style_for(true, dumb, &out(false, false)), (false, false));
        let no_color = env(&[("NO_COLOR", "1"), ("LANG", "C.utf8")]);
        assert_eq!(style_for(true, no_color, &out(false, false)), (true, false));
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
