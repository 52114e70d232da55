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
pub mod prober;
pub mod sys;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{select, unbounded};
use pnet_datalink::NetworkInterface;
use rustc_hash::FxHashMap;

use crate::privilege::Privileges;
use crate::report::ScanReport;
use capture::{Capture, OpenCapture, SharedWriter};
use prober::{ProbeConfig, ProbeEvent};
use synack_core::capfile::PcapWriter;
use synack_core::exchange::Tracker;
use synack_core::targets::Target;
use synack_core::verdict::{ConnectOutcome, LiveFacts};

/// The DSCP synack marks its SYNs with unless told otherwise: AF11 (RFC 2597), rarely
/// used on real paths, so its reflection in a RST is a clear sign of the target's stack.
pub const DEFAULT_DSCP: u8 = 10;

/// The capture always goes on this long after the last attempt, even when every attempt
/// was answered: the answers are in the kernel's queue by then, this covers the read.
const MIN_GRACE: Duration = Duration::from_millis(10);

#[derive(Clone, Debug)]
pub struct ScanOptions {
    pub probe: ProbeConfig,
    /// Capture packets (the default); false gives connect()-only verdicts.
    pub capture: bool,
    /// Write every captured frame to this pcap file.
    pub write: Option<PathBuf>,
    /// How long the capture goes on after the last attempt.
    pub grace: Duration,
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
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
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

/// Where the correlator is: probing, letting the last answers arrive before deciding on
/// calibration, or in the grace period before the captures stop.
#[derive(Clone, Copy, Debug)]
enum Phase {
    Probing,
    Settling(Instant),
    Grace(Instant),
}

/// How long after the last attempt the correlator waits for its answers to be read
/// before judging whether a baseline is missing.
const SETTLE: Duration = Duration::from_millis(20);

type ProberHandles = Vec<std::thread::JoinHandle<io::Result<()>>>;

/// Probers run in parallel when the machine has the cores: each kernel connect() costs
/// a few microseconds of the calling thread's time (the SYN is sent and, on a near
/// target, the answer processed inside it), so one thread bounds the scan rate.
fn prober_threads(attempts: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.clamp(1, 4).min(attempts.div_ceil(1024).max(1))
}

/// Starts the probers for `cfg`, each with every n-th (port, target) pair, its share of
/// the window, the rate and the file descriptors. They report on one channel, which closes when the
/// last one ends.
fn start_probers(
    cfg: ProbeConfig,
    stop: Arc<AtomicBool>,
) -> Result<(ProberHandles, crossbeam_channel::Receiver<Vec<ProbeEvent>>), ScanError> {
    let (tx, rx) = unbounded::<Vec<ProbeEvent>>();
    let n = prober_threads(cfg.ports.len().saturating_mul(cfg.targets.len()));
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
    Ok((handles, rx))
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

/// Ports never scanned by default and rarely used, tried in order as calibration probes.
const CALIBRATION_PORTS: [u16; 4] = [47291, 51793, 60011, 38919];

/// Targets that answered with RSTs of which none reflected the probe's DSCP: nothing
/// tells their stack's RST from a firewall's (docs/verdicts.md). One port each, expected
/// closed and not in the scan, is probed to learn what the stack's own RST looks like.
fn calibration_probes(tracker: &Tracker, targets: &[IpAddr], cfg: &ProbeConfig) -> Vec<SocketAddr> {
    if cfg.dscp.is_none_or(|d| d == 0) {
        return Vec::new();
    }
    let Some(port) = CALIBRATION_PORTS
        .into_iter()
        .find(|p| cfg.ports.binary_search(p).is_err())
    else {
        return Vec::new();
    };
    let mut by_ip: FxHashMap<IpAddr, Vec<&synack_core::exchange::Attempt>> = FxHashMap::default();
    for a in tracker.attempts() {
        by_ip.entry(a.key.target.ip()).or_default().push(a);
    }
    targets
        .iter()
        .filter(|ip| {
            let Some(list) = by_ip.get(ip) else {
                return false;
            };
            let got_rst = list.iter().any(|a| {
                a.packets.iter().any(|p| {
                    p.dir == synack_core::exchange::Dir::In && p.flags().is_some_and(|f| f.rst())
                })
            });
            got_rst
                && synack_core::verdict::Baseline::of(**ip, list.iter().copied())
                    .reflecting_rst_port
                    .is_none()
        })
        .map(|ip| SocketAddr::new(*ip, port))
        .collect()
}

/// Whether an observation concerns one of the scanned addresses.
fn concerns(obs: &synack_core::decode::Observation, scope: &HashSet<IpAddr>) -> bool {
    match obs {
        synack_core::decode::Observation::Tcp(t) => {
            scope.contains(&t.ip.dst) || scope.contains(&t.ip.src)
        }
        synack_core::decode::Observation::Icmp(e) => scope.contains(&e.quoted.dst),
    }
}

/// The interface traffic to `dst` leaves by: `lo` for this host's own addresses, else the
/// interface holding the source address the kernel would pick (a UDP connect() sends
/// nothing but runs the route lookup).
pub fn route_interface(dst: IpAddr, ifaces: &[NetworkInterface]) -> io::Result<NetworkInterface> {
    if sys::is_local(dst, ifaces) {
        return ifaces
            .iter()
            .find(|i| i.is_loopback())
            .cloned()
            .ok_or_else(|| io::Error::other("no loopback interface"));
    }
    let bind: SocketAddr = match dst {
        IpAddr::V4(_) => "0.0.0.0:0".parse().expect("literal"),
        IpAddr::V6(_) => "[::]:0".parse().expect("literal"),
    };
    let sock = UdpSocket::bind(bind)?;
    sock.connect(SocketAddr::new(dst, 9))?;
    let src = sock.local_addr()?.ip();
    ifaces
        .iter()
        .find(|i| i.ips.iter().any(|n| n.ip() == src))
        .cloned()
        .ok_or_else(|| io::Error::other(format!("no interface holds source address {src}")))
}

fn permission_denied(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
}

/// Runs a live scan without dropping privileges: [`prepare`] then [`Prepared::run`].
/// `stop` (Ctrl-C) ends it early with the results found so far.
pub fn scan(
    targets: &[Target],
    opts: &ScanOptions,
    stop: Arc<AtomicBool>,
    hooks: &mut dyn ScanHooks,
) -> Result<ScanReport, ScanError> {
    prepare(targets, opts)?.run(stop, hooks)
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
}

/// The first, privileged part of a scan: the route to each target, then the capture
/// sockets on those interfaces and the `-w` file.
pub fn prepare(targets: &[Target], opts: &ScanOptions) -> Result<Prepared, ScanError> {
    let began = Instant::now();
    let addrs: Vec<IpAddr> = targets.iter().map(|t| t.addr).collect();
    let mut report = ScanReport {
        names: targets
            .iter()
            .filter_map(|t| t.name.clone().map(|n| (t.addr, n)))
            .collect(),
        ..ScanReport::default()
    };
    let by_iface = route_targets(&addrs)?;
    let (captures, writer) = open_captures(&by_iface, opts, &mut report)?;
    report.captured = !captures.is_empty();
    Ok(Prepared {
        began,
        addrs,
        opts: opts.clone(),
        report,
        captures,
        writer,
    })
}

/// Interfaces towards the targets, by name, each with the targets it leads to.
type Routes = BTreeMap<String, (NetworkInterface, Vec<IpAddr>)>;

fn route_targets(addrs: &[IpAddr]) -> Result<Routes, ScanError> {
    let ifaces = pnet_datalink::interfaces();
    let mut by_iface: Routes = BTreeMap::new();
    for &ip in addrs {
        let iface = route_interface(ip, &ifaces).map_err(|e| ScanError::Route(ip, e))?;
        by_iface
            .entry(iface.name.clone())
            .or_insert_with(|| (iface, Vec::new()))
            .1
            .push(ip);
    }
    Ok(by_iface)
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

/// What the correlator works with while the scan runs.
struct Running<'a> {
    addrs: &'a [IpAddr],
    opts: &'a ScanOptions,
    began: Instant,
    /// Ctrl-C.
    stop: &'a Arc<AtomicBool>,
    /// Tells the capture threads to drain their queues and end.
    capture_stop: &'a Arc<AtomicBool>,
}

/// What the correlator gathered: the attempts seen on the wire and the connect() records.
struct Correlated {
    tracker: Tracker,
    facts: LiveFacts,
    records: FxHashMap<SocketAddr, Vec<synack_core::verdict::ProbeRecord>>,
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
    /// correlator (this thread) follows both until the grace period ends, the captures
    /// stop, and the attempts are judged.
    pub fn run(
        self,
        stop: Arc<AtomicBool>,
        hooks: &mut dyn ScanHooks,
    ) -> Result<ScanReport, ScanError> {
        let Prepared {
            began,
            addrs,
            opts,
            mut report,
            captures,
            writer,
        } = self;
        let capture_stop = Arc::new(AtomicBool::new(false));
        let (cap_tx, cap_rx) = unbounded::<capture::Batch>();
        let captures = start_captures(captures, &cap_tx, &capture_stop, &writer)?;
        drop(cap_tx);
        let mut cfg = opts.probe.clone();
        cfg.targets = addrs.clone();
        let probers = start_probers(cfg, stop.clone()).inspect_err(|_| {
            capture_stop.store(true, Ordering::Release);
        })?;
        let running = Running {
            addrs: &addrs,
            opts: &opts,
            began,
            stop: &stop,
            capture_stop: &capture_stop,
        };
        let Correlated {
            tracker,
            facts,
            records,
        } = correlate(&running, probers, cap_rx, &mut report, hooks)?;
        stop_captures(captures, writer, &mut report);
        finish(report, facts, records, tracker, &stop, began)
    }
}

fn start_captures(
    open: Vec<OpenCapture>,
    tx: &crossbeam_channel::Sender<capture::Batch>,
    capture_stop: &Arc<AtomicBool>,
    writer: &Option<SharedWriter>,
) -> Result<Vec<Capture>, ScanError> {
    let mut captures = Vec::with_capacity(open.len());
    for c in open {
        let name = c.interface.clone();
        match c.start(tx.clone(), capture_stop.clone(), writer.clone()) {
            Ok(c) => captures.push(c),
            Err(e) => {
                capture_stop.store(true, Ordering::Release);
                return Err(ScanError::Capture(name, e));
            }
        }
    }
    Ok(captures)
}

/// The correlator's phase loop: feeds captured observations to the tracker and prober
/// events to the records until the probers are done (with a calibration round if a
/// baseline is missing) and the grace period has run out.
fn correlate(
    running: &Running<'_>,
    probers: (ProberHandles, crossbeam_channel::Receiver<Vec<ProbeEvent>>),
    cap_rx: crossbeam_channel::Receiver<capture::Batch>,
    report: &mut ScanReport,
    hooks: &mut dyn ScanHooks,
) -> Result<Correlated, ScanError> {
    let Running {
        addrs,
        opts,
        began,
        stop,
        capture_stop,
    } = *running;
    let (mut prober, ev_rx) = probers;
    let mut ev_rx = Some(ev_rx);
    let scope: HashSet<IpAddr> = addrs.iter().copied().collect();
    let accept = |k: &synack_core::exchange::FlowKey| scope.contains(&k.target.ip());
    let mut tracker = Tracker::with_capacity(progress_total(addrs.len(), opts.probe.ports.len()));
    let mut facts = LiveFacts {
        captured: report.captured,
        ..LiveFacts::default()
    };
    let mut records: FxHashMap<SocketAddr, Vec<synack_core::verdict::ProbeRecord>> =
        FxHashMap::default();
    let mut progress = Progress {
        ports_total: addrs.len() * opts.probe.ports.len(),
        ..Progress::default()
    };
    let mut last_progress = Instant::now();
    let mut phase = Phase::Probing;
    let mut calibrated = false;
    // Shortened when the probers say no late answer can come (see ProbeEvent::Done).
    let mut grace = opts.grace;
    let mut late_answers = Duration::ZERO;
    let mut captures_open = report.captured;
    // Selecting on a closed channel returns at once: wait on one that never delivers
    // instead once a source is gone.
    let no_capture = crossbeam_channel::never::<capture::Batch>();
    let no_events = crossbeam_channel::never::<Vec<ProbeEvent>>();
    loop {
        select! {
            recv(ev_rx.as_ref().unwrap_or(&no_events)) -> ev => match ev {
                Ok(evs) => for ev in evs {
                    if let ProbeEvent::Done { late_answers_until } = ev {
                        late_answers = late_answers.max(late_answers_until);
                        grace = opts.grace.min(late_answers.max(MIN_GRACE));
                        continue;
                    }
                    if let ProbeEvent::Notice(msg) = &ev
                        && report.warnings.contains(msg)
                    {
                        continue;
                    }
                    handle_event(ev, &mut records, &mut facts, &mut progress, report)
                },
                Err(_) => {
                    ev_rx = None;
                    if let Err(e) = join_probers(std::mem::take(&mut prober)) {
                        capture_stop.store(true, Ordering::Release);
                        return Err(e);
                    }
                    let now = Instant::now();
                    phase = if calibrated || !captures_open { Phase::Grace(now) } else { Phase::Settling(now) };
                }
            },
            recv(if captures_open { &cap_rx } else { &no_capture }) -> batch => match batch {
                Ok(batch) => for (ts, obs) in &batch {
                    tracker.observe(*ts, obs, accept);
                    if concerns(obs, &scope) {
                        hooks.packet(*ts, obs);
                    }
                },
                Err(_) => captures_open = false,
            },
            default(Duration::from_millis(20)) => {}
        }
        match phase {
            Phase::Probing => {}
            // The answers to the last SYNs are correlated by now: is a baseline missing?
            Phase::Settling(since) if since.elapsed() >= SETTLE => {
                calibrated = true;
                let cal = calibration_probes(&tracker, addrs, &opts.probe);
                if cal.is_empty() || stop.load(Ordering::Relaxed) {
                    phase = Phase::Grace(since);
                } else {
                    let mut cfg = opts.probe.clone();
                    cfg.targets = cal.iter().map(|c| c.ip()).collect();
                    cfg.ports = vec![cal[0].port()];
                    facts.calibration = cal;
                    let (handle, rx) = start_probers(cfg, stop.clone()).inspect_err(|_| {
                        capture_stop.store(true, Ordering::Release);
                    })?;
                    prober = handle;
                    ev_rx = Some(rx);
                    phase = Phase::Probing;
                }
            }
            Phase::Settling(_) => {}
            Phase::Grace(since) => {
                if !captures_open {
                    break;
                }
                if since.elapsed() >= grace || stop.load(Ordering::Relaxed) {
                    capture_stop.store(true, Ordering::Release);
                }
            }
        }
        if last_progress.elapsed() >= Duration::from_millis(200) {
            progress.elapsed = began.elapsed();
            hooks.progress(&progress);
            last_progress = Instant::now();
        }
    }
    Ok(Correlated {
        tracker,
        facts,
        records,
    })
}

/// Waits for the capture threads (already told to stop), adds up their drops and closes
/// the `-w` file.
fn stop_captures(captures: Vec<Capture>, writer: Option<SharedWriter>, report: &mut ScanReport) {
    for c in captures {
        let name = c.interface.clone();
        let st = c.join();
        report.capture_drops += st.drops;
        if st.write_errors > 0 {
            report.warnings.push(format!(
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
        report.warnings.push(format!("capture file: {e}"));
    }
}

fn handle_event(
    ev: ProbeEvent,
    records: &mut FxHashMap<SocketAddr, Vec<synack_core::verdict::ProbeRecord>>,
    facts: &mut LiveFacts,
    progress: &mut Progress,
    report: &mut ScanReport,
) {
    match ev {
        ProbeEvent::Finished {
            target,
            record,
            port_done,
        } => {
            if record.outcome == ConnectOutcome::Connected {
                progress.open += 1;
            }
            let pending = facts.probes.entry(target).or_default();
            pending.push(record);
            // Only finished ports are judged: an interrupted scan reports what it completed.
            if port_done {
                progress.ports_done += 1;
                if let Some(list) = facts.probes.remove(&target) {
                    records.insert(target, list);
                }
            }
        }
        ProbeEvent::Notice(msg) => report.warnings.push(msg),
        ProbeEvent::Done { .. } => {}
    }
}

/// Attempts a scan makes at least: one per port and target.
fn progress_total(targets: usize, ports: usize) -> usize {
    targets.saturating_mul(ports)
}

/// Completes the report through the end of run shared with replay (`crate::finish`).
fn finish(
    mut report: ScanReport,
    mut facts: LiveFacts,
    records: FxHashMap<SocketAddr, Vec<synack_core::verdict::ProbeRecord>>,
    tracker: Tracker,
    stop: &AtomicBool,
    began: Instant,
) -> Result<ScanReport, ScanError> {
    facts.capture_drops = report.capture_drops;
    facts.probes = records;
    report.interrupted = stop.load(Ordering::Relaxed);
    crate::finish::finish(&mut report, tracker, Some(facts));
    report.elapsed = began.elapsed();
    Ok(report)
}
