//! The live scan: capture thread(s) and the prober thread, joined by channels, with the
//! correlator on the calling thread feeding the same tracker and verdict code that replay
//! uses.
//!
//! Order matters: the capture sockets are bound (so capturing) before the first SYN, and
//! keep reading for a grace period after the last attempt ends so late answers count.
//! [`prepare`] opens them (and the `-w` file) while the process has the privilege to;
//! the caller may then drop privileges ([`Prepared::drop_privileges`]) before
//! [`Prepared::run`] starts any thread or parses a packet.

pub mod bpf;
pub mod capture;
mod correlate;
pub mod discovery;
pub mod holdback;
pub mod neigh;
pub mod prober;
mod route;
pub mod sys;

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::unbounded;

use crate::finish::Run;
use crate::privilege::Privileges;
use crate::report::{RunSummary, ScanReport, Sink};
use capture::{Capture, OpenCapture, SharedWriter};
use correlate::{Running, correlate};
use prober::{ProbeConfig, ProbeEvent};
pub use route::route_interface;
pub use route::unscannable;
use route::{Routes, route_targets};
use synack_core::capfile::PcapWriter;
use synack_core::targets::Target;

/// The DSCP synack marks its SYNs with unless told otherwise: AF11 (RFC 2597), rarely
/// used on real paths, so its reflection in a RST is a clear sign of the target's stack.
pub const DEFAULT_DSCP: u8 = 10;

#[derive(Clone, Debug)]
pub struct ScanOptions {
    pub probe: ProbeConfig,
    /// Capture packets (the default); false gives connect()-only verdicts.
    pub capture: bool,
    /// Write every captured frame to this pcap file.
    pub write: Option<PathBuf>,
    /// How long the capture goes on after the last attempt.
    pub grace: Duration,
    /// Host discovery before the port scan (live/discovery.rs) when more than one
    /// target is scanned: hosts that answer none of its probes are reported down, one
    /// line each, and their ports are not scanned. False scans every port of every
    /// target (nmap -Pn).
    pub discovery: bool,
}

#[derive(Debug)]
pub enum ScanError {
    /// No route or interface towards a target.
    Route(IpAddr, io::Error),
    /// The capture could not start although privileges allow it.
    Capture(String, io::Error),
    /// -w needs a capture, which needs privileges.
    WriteNeedsCapture(PathBuf),
    WriteFile(PathBuf, io::Error),
    /// Interfaces with different link types cannot share one pcap file.
    MixedLinkTypes(PathBuf),
    Probe(io::Error),
    /// Privileges could not be dropped after the captures were opened.
    Privilege(crate::privilege::PrivilegeError),
    /// Writing the results failed (a closed pipe is the caller's to forgive).
    Output(io::Error),
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanError::Output(e) => write!(f, "writing output: {e}"),
            ScanError::Route(ip, e) => write!(f, "no route to {ip}: {e}"),
            ScanError::Capture(i, e) => write!(f, "cannot capture on {i}: {e}"),
            ScanError::WriteNeedsCapture(p) => write!(
                f,
                "-w {}: writing a capture needs packet capture, which needs root or CAP_NET_RAW (sudo setcap cap_net_raw+ep $(which synack))",
                p.display()
            ),
            ScanError::WriteFile(p, e) => write!(f, "-w {}: {e}", p.display()),
            ScanError::MixedLinkTypes(p) => write!(
                f,
                "-w {}: the targets are reached over interfaces with different link types; scan them separately",
                p.display()
            ),
            ScanError::Probe(e) => write!(f, "connect() prober failed: {e}"),
            ScanError::Privilege(e) => write!(f, "cannot drop privileges: {e}"),
        }
    }
}

impl std::error::Error for ScanError {}

/// Progress of a running scan, for a progress line.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    pub ports_done: usize,
    pub ports_total: usize,
    pub open: usize,
    pub elapsed: Duration,
    /// Host discovery: hosts to discover (0 without discovery), decided so far, down.
    pub hosts_total: usize,
    pub hosts_decided: usize,
    pub hosts_down: usize,
}

/// What a running scan tells its caller; both default to doing nothing.
pub trait ScanHooks {
    /// About five times a second.
    fn progress(&mut self, _p: &Progress) {}
    /// Each captured packet that concerns a target, as it is correlated (`--live`).
    fn packet(
        &mut self,
        _ts: synack_core::frame::Timestamp,
        _obs: &synack_core::decode::Observation,
    ) {
    }
}

/// Hooks that do nothing.
pub struct NoHooks;
impl ScanHooks for NoHooks {}

type ProberHandles = Vec<std::thread::JoinHandle<io::Result<()>>>;

/// Probers run in parallel when the machine has the cores: each kernel connect() costs
/// a few microseconds of the calling thread's time (the SYN is sent and, on a near
/// target, the answer processed inside it), so one thread bounds the scan rate.
/// Whether the scan discovers its hosts first: asked for (no -Pn), and more than one
/// target (as nmap, one named host is scanned as given).
fn discovers(opts: &ScanOptions, addrs: &[IpAddr]) -> bool {
    opts.discovery && addrs.len() > 1
}

fn prober_threads(attempts: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores
        .clamp(1, prober::MAX_PROBERS)
        .min(attempts.div_ceil(1024).max(1))
}

/// Starts the probers for `cfg`, each with every n-th (port, target) pair, its share of
/// the window, the rate and the file descriptors. They report on one channel, which closes when the
/// last one ends.
fn start_probers(
    cfg: ProbeConfig,
    stop: Arc<AtomicBool>,
) -> Result<(ProberHandles, crossbeam_channel::Receiver<Vec<ProbeEvent>>), ScanError> {
    let (tx, rx) = unbounded::<Vec<ProbeEvent>>();
    Ok((spawn_probers(cfg, stop, &tx)?, rx))
}

/// [`start_probers`] reporting on `tx`.
fn spawn_probers(
    cfg: ProbeConfig,
    stop: Arc<AtomicBool>,
    tx: &crossbeam_channel::Sender<Vec<ProbeEvent>>,
) -> Result<ProberHandles, ScanError> {
    let n = prober_threads(cfg.ports.len().saturating_mul(cfg.targets.len()));
    if let Some(p) = &cfg.pace {
        p.start_probers(n);
    }
    let mut handles = Vec::with_capacity(n);
    for shard in 0..n {
        let mut part = cfg.clone();
        part.shard = (shard, n);
        part.parallelism = (cfg.parallelism / n).max(1);
        part.max_rate = cfg.max_rate.map(|r| r / n as f64);
        let (tx, stop) = (tx.clone(), stop.clone());
        let handle = std::thread::Builder::new()
            .name(format!("prober-{shard}"))
            .spawn(move || prober::run(&part, &tx, &stop))
            .map_err(ScanError::Probe)?;
        handles.push(handle);
    }
    Ok(handles)
}

fn join_probers(handles: ProberHandles) -> Result<(), ScanError> {
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(ScanError::Probe(e)),
            Err(_) => return Err(ScanError::Probe(io::Error::other("prober thread panicked"))),
        }
    }
    Ok(())
}

fn permission_denied(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
}

/// A scan whose captures are open and bound (and `-w` file created) but not read yet,
/// and which has started no thread: the moment to drop privileges
/// ([`Prepared::drop_privileges`]), before the first packet is parsed.
pub struct Prepared {
    began: Instant,
    addrs: Vec<IpAddr>,
    opts: ScanOptions,
    report: ScanReport,
    captures: Vec<OpenCapture>,
    writer: Option<SharedWriter>,
    /// Host discovery's ICMP sockets, opened while privileges last; None: no discovery.
    discovery: Option<discovery::IcmpSockets>,
}

/// The first, privileged part of a scan: the route to each target, then the capture
/// sockets on those interfaces and the `-w` file.
pub fn prepare(targets: &[Target], opts: &ScanOptions) -> Result<Prepared, ScanError> {
    let began = Instant::now();
    let mut addrs: Vec<IpAddr> = targets.iter().map(|t| t.addr).collect();
    let mut report = ScanReport {
        names: targets
            .iter()
            .filter_map(|t| t.name.clone().map(|n| (t.addr, n)))
            .collect(),
        ..ScanReport::default()
    };
    let routed = route_targets(&addrs)?;
    for (ip, why) in &routed.skipped {
        report.warnings.push(format!(
            "{ip} skipped: {why}, which no TCP connection can reach"
        ));
    }
    addrs.retain(|ip| !routed.skipped.iter().any(|(s, _)| s == ip));
    let by_iface = routed.routes;
    let (captures, writer) = open_captures(&by_iface, opts, &mut report)?;
    report.captured = !captures.is_empty();
    let discovery = discovers(opts, &addrs).then(|| {
        discovery::IcmpSockets::open(
            addrs.iter().any(IpAddr::is_ipv4),
            addrs.iter().any(IpAddr::is_ipv6),
        )
    });
    Ok(Prepared {
        discovery,
        began,
        addrs,
        opts: opts.clone(),
        report,
        captures,
        writer,
    })
}

/// Opens the `-w` file and a capture socket per interface, bound before the first SYN.
/// Without the privilege to capture, the scan goes on from connect() alone (with a
/// warning), unless `-w` asked for the packets.
fn open_captures(
    by_iface: &Routes,
    opts: &ScanOptions,
    report: &mut ScanReport,
) -> Result<(Vec<OpenCapture>, Option<SharedWriter>), ScanError> {
    let mut captures: Vec<OpenCapture> = Vec::new();
    let mut writer: Option<SharedWriter> = None;
    if !opts.capture {
        return Ok((captures, writer));
    }
    if !Privileges::current().can_capture() {
        without_capture(opts, report)?;
        return Ok((captures, writer));
    }
    if let Some(path) = &opts.write {
        let links: HashSet<_> = by_iface
            .values()
            .filter_map(|(i, _)| capture::link_type_of(i).ok())
            .collect();
        if links.len() > 1 {
            return Err(ScanError::MixedLinkTypes(path.clone()));
        }
        if let Some(link) = links.into_iter().next() {
            let w = PcapWriter::create(path, link, 65535)
                .map_err(|e| ScanError::WriteFile(path.clone(), e))?;
            writer = Some(Arc::new(Mutex::new(w)));
        }
    }
    for (name, (iface, ips)) in by_iface {
        match OpenCapture::open(iface, ips) {
            Ok(c) => captures.push(c),
            // Root without CAP_NET_RAW (a container, say): as without privileges.
            Err(e) if permission_denied(&e) && captures.is_empty() => {
                if let Some(path) = &opts.write {
                    let _ = std::fs::remove_file(path);
                }
                without_capture(opts, report)?;
                break;
            }
            Err(e) => return Err(ScanError::Capture(name.clone(), e)),
        }
    }
    Ok((captures, writer))
}

/// No capture although one was asked for: an error with `-w`, else a warning.
fn without_capture(opts: &ScanOptions, report: &mut ScanReport) -> Result<(), ScanError> {
    if let Some(path) = &opts.write {
        return Err(ScanError::WriteNeedsCapture(path.clone()));
    }
    report.warnings.push(
        "no packet capture (needs root or CAP_NET_RAW): verdicts come from connect() alone and traces are not observed; run as root, or `sudo setcap cap_net_raw+ep $(which synack)`".to_string(),
    );
    Ok(())
}

impl Prepared {
    /// Drops every privilege ([`crate::privilege::drop_privileges`]); the caller must not
    /// have started a thread. On failure the `-w` file is removed and the scan must stop.
    pub fn drop_privileges(&self) -> Result<(), ScanError> {
        crate::privilege::drop_privileges().map_err(|e| {
            if let (Some(path), Some(_)) = (&self.opts.write, &self.writer) {
                let _ = std::fs::remove_file(path);
            }
            ScanError::Privilege(e)
        })
    }

    /// The rest of the scan: the capture threads start reading, the probers send, the
    /// correlator (this thread) follows both and hands each target to `sink` as soon as
    /// it is judged; then the captures stop. Returns the totals.
    pub fn run(
        self,
        stop: Arc<AtomicBool>,
        hooks: &mut dyn ScanHooks,
        sink: &mut dyn Sink,
    ) -> Result<RunSummary, ScanError> {
        let Prepared {
            began,
            addrs,
            opts,
            report,
            captures,
            writer,
            discovery,
        } = self;
        let captured = report.captured;
        let mut run = Run::new(sink, report.names, captured);
        for w in report.warnings {
            run.warn(w);
        }
        let capture_stop = Arc::new(AtomicBool::new(false));
        let (cap_tx, cap_rx) = unbounded::<capture::Batch>();
        let captures = start_captures(captures, &cap_tx, &capture_stop, &writer)?;
        drop(cap_tx);
        let capturing = captures.len();
        let mut cfg = opts.probe.clone();
        cfg.targets = addrs.clone();
        // At most four groups' worth of pairs not yet judged, and never less than two
        // targets' worth: a target is judged (and credited) only once all its ports are.
        let pace_limit = (4 * prober::GROUP_PAIRS).max(2 * opts.probe.ports.len()) as u64;
        let pace = Arc::new(prober::Pace::new(pace_limit));
        cfg.pace = Some(pace.clone());
        let probers = match discovery {
            Some(icmp) => {
                let (tx, rx) = unbounded::<Vec<ProbeEvent>>();
                discovery::start(cfg, icmp, stop.clone(), tx)
                    .map(|h| (h, rx))
                    .map_err(ScanError::Probe)
            }
            None => start_probers(cfg, stop.clone()),
        }
        .inspect_err(|_| {
            capture_stop.store(true, Ordering::Release);
        })?;
        let running = Running {
            addrs: &addrs,
            opts: &opts,
            began,
            stop: &stop,
            capture_stop: &capture_stop,
            pace: &pace,
        };
        let stats = correlate(
            &running,
            probers,
            (cap_rx, capturing),
            &mut run,
            captured,
            hooks,
        )?;
        let drops = stop_captures(captures, writer, &mut run);
        let interrupted = stop.load(Ordering::Relaxed);
        run.end(stats, began.elapsed(), drops, interrupted)
            .map_err(ScanError::Output)
    }
}

fn start_captures(
    open: Vec<OpenCapture>,
    tx: &crossbeam_channel::Sender<capture::Batch>,
    capture_stop: &Arc<AtomicBool>,
    writer: &Option<SharedWriter>,
) -> Result<Vec<Capture>, ScanError> {
    let mut captures = Vec::with_capacity(open.len());
    for (i, c) in open.into_iter().enumerate() {
        let name = c.interface.clone();
        match c.start(i, tx.clone(), capture_stop.clone(), writer.clone()) {
            Ok(c) => captures.push(c),
            Err(e) => {
                capture_stop.store(true, Ordering::Release);
                return Err(ScanError::Capture(name, e));
            }
        }
    }
    Ok(captures)
}

/// Waits for the capture threads (already told to stop), adds up their drops and closes
/// the `-w` file.
fn stop_captures(captures: Vec<Capture>, writer: Option<SharedWriter>, run: &mut Run<'_>) -> u64 {
    let mut drops = 0;
    for c in captures {
        let name = c.interface.clone();
        let st = c.join();
        drops += st.drops;
        if st.write_errors > 0 {
            run.warn(format!(
                "{} frames from {name} could not be written to the capture file",
                st.write_errors
            ));
        }
    }
    if let Some(w) = writer
        && let Ok(m) = Arc::try_unwrap(w)
        && let Ok(w) = m.into_inner()
        && let Err(e) = w.finish()
    {
        run.warn(format!("capture file: {e}"));
    }
    drops
}
