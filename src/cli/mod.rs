//! Command line: parse, validate what the user typed (exit 2 naming the bad value), then
//! build the expensive objects and hand the finished report to a sink.

mod args;
mod nmap;
mod outputs;

use std::cell::Cell;
use std::io::{self, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{CommandFactory, Parser};

use args::{Cli, Command, OutputArgs, ReplayArgs, ScanArgs};
use synack::live::{self, Progress, ScanOptions, prober::ProbeConfig};
use synack::replay;
use synack::report::run::RunInfo;
use synack::report::{self, RunSummary, ScanReport, Sink, TargetReport};
use synack_core::frame::Timestamp;
use synack_core::shard::{self, Shard};
use synack_core::targets::{self, Exclusions, SystemResolver, Target};

/// Exit codes: 0 success, 1 runtime failure, 2 bad input, 130 interrupted.
pub fn main() -> i32 {
    let argv = args::nmap_spelling(std::env::args());
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        Command::Scan(args) => run_scan(*args, std::env::args().collect()),
        Command::Replay(args) => run_replay(args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "synack", &mut io::stdout());
            0
        }
        Command::Man => match clap_mangen::Man::new(Cli::command()).render(&mut io::stdout()) {
            Ok(()) => 0,
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
            Err(e) => {
                eprintln!("synack man: {e}");
                1
            }
        },
        Command::Demo { scan_args } => run_demo(scan_args),
        Command::Lab {
            tag,
            many_hosts,
            blackhole,
            far,
            far_delay,
        } => match synack_lab::serve(
            &tag,
            many_hosts.as_deref(),
            blackhole.as_deref(),
            far.as_deref().map(|p| (p, far_delay)),
        ) {
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
    let mut output = match Cli::try_parse_from(args::nmap_spelling(as_scan)) {
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

/// Reads a target list (`-iL`, `--excludefile`; `-` is stdin).
fn read_list(path: &Path, flag: &str) -> Result<Vec<String>, String> {
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        io::stdin().read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text))
    };
    read.map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    Ok(targets::split_target_list(&text))
}

/// What a scan is after its arguments were checked: the targets, the ports and the pace.
struct Plan {
    typed: Vec<String>,
    targets: Vec<Target>,
    ports: Vec<u16>,
    timing: nmap::Timing,
}

/// The first stage: what the user typed, checked (an error names the value; exit 2).
fn plan(args: &ScanArgs) -> Result<Plan, String> {
    if let Some(line) = nmap::refused(args) {
        return Err(line);
    }
    let ports = match (&args.ports, args.top_ports) {
        (Some(spec), _) => targets::parse_ports(spec).map_err(|e| e.to_string())?,
        (None, Some(n)) => targets::top_ports(n).map_err(|e| e.to_string())?,
        (None, None) => targets::DEFAULT_PORTS.to_vec(),
    };
    let mut typed: Vec<String> = args
        .targets
        .iter()
        .flat_map(|t| targets::split_target_list(t))
        .collect();
    if let Some(path) = &args.input_list {
        typed.extend(read_list(path, "-iL")?);
    }
    if typed.is_empty() {
        return Err("no targets given: TARGET arguments or -iL FILE".into());
    }
    let mut excluded: Vec<String> = args
        .exclude
        .iter()
        .flat_map(|t| targets::split_target_list(t))
        .collect();
    if let Some(path) = &args.excludefile {
        excluded.extend(read_list(path, "--excludefile")?);
    }
    let exclusions =
        Exclusions::parse(&excluded, &SystemResolver).map_err(|e| format!("--exclude: {e}"))?;
    let all = targets::parse_targets(&typed, &SystemResolver).map_err(|e| e.to_string())?;
    let mut targets = exclusions.apply(all);
    if targets.is_empty() {
        return Err("every target given is excluded".into());
    }
    let mut ports = ports;
    if let Some(spec) = &args.shard {
        let s = Shard::parse(spec, args.seed).map_err(|e| e.to_string())?;
        let addrs: Vec<_> = targets.iter().map(|t| t.addr).collect();
        let (keep, kept_ports) = shard::split(&addrs, &ports, &s);
        let keep: std::collections::HashSet<_> = keep.into_iter().collect();
        targets.retain(|t| keep.contains(&t.addr));
        ports = kept_ports;
    }
    if args.write.is_some() && args.no_capture {
        return Err("-w needs the capture; it cannot go with --no-capture".into());
    }
    let timing = nmap::timing(args)?;
    Ok(Plan {
        typed,
        targets,
        ports,
        timing,
    })
}

fn run_scan(args: ScanArgs, argv: Vec<String>) -> i32 {
    let plan = match plan(&args) {
        Ok(p) => p,
        Err(e) => return error(e),
    };
    let outputs = match outputs::plan(&args) {
        Ok(o) => o,
        Err(e) => return error(e),
    };
    let run = RunInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        args: argv,
        start: Timestamp::now(),
        targets: plan.typed.clone(),
        ports: plan.ports.clone(),
        verbose: args.verbose,
    };
    let show_all = args.verbose > 0;
    // Output files are created now, before the privileged part: they belong to the user.
    let tee = match outputs::open(&outputs, &args.output, &run, show_all) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("synack: {e}");
            return 1;
        }
    };
    let inner: Box<dyn Sink> = if args.open {
        Box::new(outputs::OpenOnly(tee))
    } else {
        Box::new(tee)
    };
    let pcap_to_stdout = args.write.as_deref() == Some(Path::new("-"));
    if plan.targets.is_empty() || plan.ports.is_empty() {
        // This shard's part of the scan is empty: the outputs say so and nothing is sent.
        let mut sink = inner;
        return conclude(
            sink.finish(&RunSummary::default())
                .map(|()| RunSummary::default()),
        );
    }
    let opts = ScanOptions {
        probe: ProbeConfig {
            targets: Vec::new(),
            ports: plan.ports,
            timeout: plan.timing.timeout,
            retries: plan.timing.retries,
            parallelism: plan.timing.parallelism as usize,
            max_rate: plan.timing.max_rate,
            dscp: (!args.no_dscp).then_some(args.dscp),
            shard: (0, 1),
            host_timeout: args.host_timeout,
            rtt_seeds: Default::default(),
            pace: None,
            slow_retry_budget: args
                .slow_retry_time
                .unwrap_or(synack::live::holdback::DEFAULT_BUDGET),
        },
        capture: !args.no_capture,
        // stdout through /proc: the engine's clean-up (remove the -w file when the scan
        // cannot go on) then fails harmlessly instead of removing /dev/stdout.
        write: if pcap_to_stdout {
            Some(PathBuf::from("/proc/self/fd/1"))
        } else {
            args.write.clone()
        },
        grace: args.grace,
        discovery: !args.no_discovery && args.ping.as_deref() != Some("n"),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut hooks = CliHooks {
        show_progress: !args.quiet && io::stderr().is_terminal(),
        progress_shown: Rc::new(Cell::new(false)),
        live: args.live,
        live_to_stderr: args.output.json || pcap_to_stdout,
        unicode: outputs::terminal_style(&args.output).0,
        first_ts: None,
    };
    // Captures and -w file opened, then privileges dropped while no thread exists yet.
    let mut sink = ClearsProgress {
        inner,
        shown: hooks.progress_shown.clone(),
    };
    let result = live::prepare(&plan.targets, &opts).and_then(|scan| {
        scan.drop_privileges()?;
        install_interrupt(stop.clone());
        scan.run(stop.clone(), &mut hooks, &mut sink)
    });
    if hooks.progress_shown.get() {
        eprint!("\r\x1b[K");
    }
    match result {
        Ok(mut summary) => {
            if args.quiet {
                summary.warnings.clear();
            }
            conclude(Ok(summary))
        }
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
            // While hosts are being discovered, how far that is (the port total shrinks
            // as hosts turn out down).
            let hosts = if p.hosts_decided < p.hosts_total {
                format!(
                    "discovery: {}/{} hosts decided ({} down) · ",
                    p.hosts_decided, p.hosts_total, p.hosts_down
                )
            } else {
                String::new()
            };
            // No rate before the first port is done (discovery comes first).
            let pace = if done == 0 {
                format!(" · {:.0}s", p.elapsed.as_secs_f64())
            } else {
                format!(" · {rate:.0} ports/s · ~{left:.0}s left")
            };
            eprint!(
                "\r\x1b[K{hosts}{}/{} ports · {} open{pace}",
                done, p.ports_total, p.open
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
    // Before the replay allocates: its 65,535 packet lists go to an advised heap.
    synack::alloc::advise_heap_huge_pages();
    let stop = Arc::new(AtomicBool::new(false));
    install_interrupt(stop.clone());
    let filter = match args.filter.as_deref().map(synack::filter::Filter::new) {
        None => None,
        Some(Ok(f)) => Some(f),
        Some(Err(why)) => {
            eprintln!(
                "synack: error: --filter '{}': {why}",
                args.filter.as_deref().unwrap_or_default()
            );
            return 2;
        }
    };
    let readers = match replay::open_files(&args.files, &stop) {
        Ok(r) => r,
        Err(e) => return error(e),
    };
    let mut sink = stdout_sink(&args.output);
    let opts = replay::ReplayOptions {
        filter,
        connections: args.connections,
    };
    conclude(replay::replay_with(readers, sink.as_mut(), &stop, opts))
}

/// stdout in the format --json chose (replay and the bundled demo capture).
fn stdout_sink(out: &OutputArgs) -> Box<dyn Sink> {
    let format = if out.json {
        outputs::Format::Json
    } else {
        outputs::Format::Table
    };
    outputs::stdout_sink(format, out, &RunInfo::default(), false)
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
    use super::outputs::style_for;
    use super::*;

    #[test]
    fn unicode_and_colour_only_on_capable_terminals() {
        let out = |ascii, no_color, color| OutputArgs {
            json: false,
            show_all: false,
            ascii,
            ladder: false,
            explain: false,
            no_color,
            color,
        };
        use args::ColorWhen::{Always, Auto, Never};
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let utf8 = env(&[("LANG", "en_GB.UTF-8"), ("TERM", "xterm")]);
        assert_eq!(
            style_for(true, utf8, &out(false, false, Auto)),
            (true, true)
        );
        assert_eq!(
            style_for(false, utf8, &out(false, false, Auto)),
            (false, false)
        );
        assert_eq!(
            style_for(true, utf8, &out(true, true, Auto)),
            (false, false)
        );
        assert_eq!(
            style_for(true, env(&[("LANG", "C")]), &out(false, false, Auto)),
            (false, true)
        );
        // LC_ALL wins over LANG.
        let c_all = env(&[("LC_ALL", "C"), ("LANG", "C.UTF-8")]);
        assert_eq!(
            style_for(true, c_all, &out(false, false, Auto)),
            (false, true)
        );
        let dumb = env(&[("TERM", "dumb"), ("LANG", "C.UTF-8")]);
        assert_eq!(
            style_for(true, dumb, &out(false, false, Auto)),
            (false, false)
        );
        let no_color = env(&[("NO_COLOR", "1"), ("LANG", "C.utf8")]);
        assert_eq!(
            style_for(true, no_color, &out(false, false, Auto)),
            (true, false)
        );
        // --color always wins over the terminal and NO_COLOR; --no-color over everything.
        assert!(style_for(false, no_color, &out(false, false, Always)).1);
        assert!(!style_for(true, utf8, &out(false, false, Never)).1);
        assert!(!style_for(true, utf8, &out(false, true, Always)).1);
    }
}
