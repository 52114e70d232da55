//! The correlator: the calling thread's phase loop during a live scan. It feeds captured
//! observations to the tracker and the probers' connect() records to the live facts,
//! decides whether a calibration probe is needed once the probes are answered, and ends
//! the capture after the grace period.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::select;
use rustc_hash::FxHashMap;

use super::prober::{ProbeConfig, ProbeEvent};
use super::{ProberHandles, Progress, ScanError, ScanHooks, ScanOptions, capture};
use super::{join_probers, start_probers};
use crate::report::ScanReport;
use synack_core::exchange::Tracker;
use synack_core::verdict::{ConnectOutcome, LiveFacts};

/// The capture always goes on this long after the last attempt, even when every attempt
/// was answered: the answers are in the kernel's queue by then, this covers the read.
const MIN_GRACE: Duration = Duration::from_millis(10);

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

/// What the correlator works with while the scan runs.
pub(super) struct Running<'a> {
    pub(super) addrs: &'a [IpAddr],
    pub(super) opts: &'a ScanOptions,
    pub(super) began: Instant,
    /// Ctrl-C.
    pub(super) stop: &'a Arc<AtomicBool>,
    /// Tells the capture threads to drain their queues and end.
    pub(super) capture_stop: &'a Arc<AtomicBool>,
}

/// What the correlator gathered: the attempts seen on the wire and the connect() records.
pub(super) struct Correlated {
    pub(super) tracker: Tracker,
    pub(super) facts: LiveFacts,
    pub(super) records: FxHashMap<SocketAddr, Vec<synack_core::verdict::ProbeRecord>>,
}

/// The correlator's phase loop: feeds captured observations to the tracker and prober
/// events to the records until the probers are done (with a calibration round if a
/// baseline is missing) and the grace period has run out.
pub(super) fn correlate(
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
