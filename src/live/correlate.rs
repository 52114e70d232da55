//! The correlator: the calling thread's loop during a live scan. It feeds captured
//! observations to the tracker and the probers' connect() records to per-target state,
//! and streams: a target whose ports are all decided is judged once its last answers had
//! time to be read, handed to the sink, and freed. Memory holds the targets in flight (the
//! probers work through the targets in groups, see `prober::order`), not the scan.
//!
//! Targets leave in the order they finish: one waiting for a timeout (a lost SYN, a full
//! accept queue) holds only its own attempts, never the targets behind it.
//! A target whose RSTs never reflected the probe's DSCP is held until the probers are
//! done, then calibrated with one extra port (docs/verdicts.md) and judged.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::select;
use rustc_hash::{FxHashMap, FxHashSet};

use super::prober::{ProbeConfig, ProbeEvent};
use super::{ProberHandles, Progress, ScanError, ScanHooks, ScanOptions, capture};
use super::{join_probers, start_probers};
use crate::finish::Run;
use synack_core::decode::{Observation, Ping};
use synack_core::exchange::{Attempt, Dir, MAX_ATTEMPTS, TracePacket, Tracker, TrackerStats};
use synack_core::frame::Timestamp;
use synack_core::verdict::{Baseline, ConnectOutcome, LiveFacts, Records};

/// Ports never scanned by default and rarely used, tried in order as calibration probes.
const CALIBRATION_PORTS: [u16; 4] = [47291, 51793, 60011, 38919];

/// The calibration port for this scan, if it marks its SYNs: one not among its ports.
fn calibration_port(cfg: &ProbeConfig) -> Option<u16> {
    if cfg.dscp.is_none_or(|d| d == 0) {
        return None;
    }
    CALIBRATION_PORTS
        .into_iter()
        .find(|p| cfg.ports.binary_search(p).is_err())
}

/// A target answered with RSTs of which none reflected the probe's DSCP: nothing tells
/// its stack's RST from a firewall's until a port expected closed is probed.
fn needs_calibration(ip: IpAddr, attempts: &[&Attempt]) -> bool {
    let got_rst = attempts.iter().any(|a| {
        a.packets
            .iter()
            .any(|p| p.dir == Dir::In && p.flags().is_some_and(|f| f.rst()))
    });
    got_rst
        && Baseline::of(ip, attempts.iter().copied())
            .reflecting_rst_port
            .is_none()
}

/// Whether an observation concerns one of the scanned addresses.
fn concerns(obs: &synack_core::decode::Observation, scope: &FxHashSet<IpAddr>) -> bool {
    match obs {
        Observation::Tcp(t) => scope.contains(&t.ip.dst) || scope.contains(&t.ip.src),
        Observation::Icmp(e) => scope.contains(&e.quoted.dst),
        Observation::Ping(p) => scope.contains(&p.ip.dst) || scope.contains(&p.ip.src),
    }
}

/// A target whose ports are all decided, waiting for its packets before it is judged.
struct Settling {
    ip: IpAddr,
    /// When its last port was decided (after that port's connect() returned).
    decided: Instant,
    /// Every port was answered: judged as soon as the captures have read past `decided`.
    until_read: bool,
    /// Judged by then whatever the captures have read: the grace for late answers.
    due: Instant,
}

impl Settling {
    /// Whether it can be judged at `now`, the captures having read every frame they had
    /// by `read_to`.
    fn ready(&self, now: Instant, read_to: Option<Instant>) -> bool {
        let read = self.until_read && read_to.is_some_and(|r| r >= self.decided);
        read || now >= self.due
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
    /// Pairs judged, for the probers' pace.
    pub(super) pace: &'a Arc<super::prober::Pace>,
}

/// One target on its way through the scan.
#[derive(Debug, Default)]
struct TargetState {
    /// Ports not decided yet (the calibration port counts once it is probed).
    ports_left: usize,
    /// Records of decided ports; only these are judged (an interrupted scan reports what
    /// it completed).
    records: FxHashMap<SocketAddr, Records>,
    /// Records of ports still being tried.
    pending: FxHashMap<SocketAddr, Records>,
    /// Every attempt so far was answered (no late answer to wait for).
    all_answered: bool,
    /// Held for a calibration probe.
    calibration: Option<SocketAddr>,
    /// Its pairs were counted in the probers' pace already.
    credited: bool,
    /// Host discovery's connect() probes (their local addresses): discovery's exchange,
    /// kept out of the port verdicts.
    discovery_flows: Vec<SocketAddr>,
}

/// The correlator's state.
struct Correlator<'r, 's> {
    run: &'r mut Run<'s>,
    tracker: Tracker,
    ports_per_target: usize,
    targets: FxHashMap<IpAddr, TargetState>,
    /// Targets in the order given.
    order: &'r [IpAddr],
    /// Targets whose ports are all decided, in that order, waiting for their packets.
    settling: VecDeque<Settling>,
    /// Targets held for calibration, in order.
    held: Vec<IpAddr>,
    scope: FxHashSet<IpAddr>,
    captured: bool,
    late_grace: Duration,
    progress: Progress,
    /// The probers' pace: pairs judged are counted here.
    pace: Arc<super::prober::Pace>,
    /// Host discovery runs: its echo and timestamp messages are kept per host
    /// (`pings`) for the host's ladder.
    discovering: bool,
    pings: FxHashMap<IpAddr, Vec<TracePacket>>,
}

/// A host's discovery sends at most 2 rounds of echo and timestamp requests; more
/// messages than this (someone else pinging it too) are not kept.
const MAX_HOST_PINGS: usize = 16;

impl Correlator<'_, '_> {
    fn state(&mut self, ip: IpAddr) -> &mut TargetState {
        let ports = self.ports_per_target;
        self.targets.entry(ip).or_insert_with(|| TargetState {
            ports_left: ports,
            all_answered: true,
            ..TargetState::default()
        })
    }

    fn event(&mut self, ev: ProbeEvent) {
        match ev {
            ProbeEvent::Finished {
                target,
                record,
                port_done,
            } => {
                if record.outcome == ConnectOutcome::Connected {
                    self.progress.open += 1;
                }
                let late = self.late_grace;
                let st = self.state(target.ip());
                if record.outcome == ConnectOutcome::TimedOut {
                    st.all_answered = false;
                }
                st.pending.entry(target).or_default().push(record);
                if port_done {
                    if let Some(list) = st.pending.remove(&target) {
                        st.records.insert(target, list);
                    }
                    st.ports_left = st.ports_left.saturating_sub(1);
                    let done = st.ports_left == 0;
                    let all_answered = st.all_answered;
                    self.progress.ports_done += 1;
                    if done {
                        let now = Instant::now();
                        self.settling.push_back(Settling {
                            ip: target.ip(),
                            decided: now,
                            // Answered: in once the capture has read past this instant
                            // (at the latest after the grace, should it lag that far).
                            // Not: late answers may still come, for the grace.
                            until_read: all_answered && self.captured,
                            due: if all_answered && !self.captured {
                                now
                            } else {
                                now + late
                            },
                        });
                    }
                }
            }
            ProbeEvent::Host(h) => self.host(h),
            ProbeEvent::Notice(msg) => self.run.warn(msg),
            ProbeEvent::Done { .. } => {}
        }
    }

    /// A host discovered: reported at once. A host down is done (its discovery packets
    /// are freed, its ports leave the progress total); a host up waits for its ports.
    fn host(&mut self, h: super::prober::HostFound) {
        self.progress.hosts_decided += 1;
        // Down: every packet of its discovery is in (it waited two timeouts), and it is
        // done. Up: its discovery is shown with its ports (`judge`).
        let discovery = h.up.is_none().then(|| {
            self.progress.hosts_down += 1;
            self.scope.remove(&h.ip);
            self.progress.ports_total = self
                .progress
                .ports_total
                .saturating_sub(self.ports_per_target);
            crate::report::Discovery::new(
                self.tracker.take_target(h.ip),
                self.pings.remove(&h.ip).unwrap_or_default(),
            )
        });
        self.run.host(&crate::report::HostReport {
            ip: h.ip,
            name: None,
            up: h.up,
            probes: &h.probes,
            // Nothing to draw without a capture.
            discovery: discovery.as_ref().filter(|_| self.captured),
            no_neighbour: h.no_neighbour,
        });
        if h.up.is_some() {
            self.state(h.ip).discovery_flows = h.flows;
        }
    }

    /// An echo or timestamp message to or from a host being discovered or scanned.
    fn ping(&mut self, ts: Timestamp, p: &Ping) {
        if !self.discovering {
            return;
        }
        let (host, dir) = if p.kind.is_reply() {
            (p.ip.src, Dir::In)
        } else {
            (p.ip.dst, Dir::Out)
        };
        if !self.scope.contains(&host) {
            return;
        }
        let kept = self.pings.entry(host).or_default();
        if kept.len() < MAX_HOST_PINGS {
            kept.push(TracePacket::ping(ts, dir, p));
        }
    }

    /// Judges and writes each settled target (or holds it for calibration). `read_to`:
    /// every frame the captures had by that instant has been read (None: not yet known).
    fn advance(
        &mut self,
        now: Instant,
        read_to: Option<Instant>,
        cal_port: Option<u16>,
        calibrating: bool,
    ) {
        while let Some(s) = self.settling.front() {
            if !s.ready(now, read_to) {
                break;
            }
            let ip = s.ip;
            self.settling.pop_front();
            let needs = !calibrating
                && cal_port.is_some()
                && self
                    .targets
                    .get(&ip)
                    .is_some_and(|t| t.calibration.is_none())
                && {
                    let list = self.tracker.attempts_of(ip);
                    needs_calibration(ip, &list)
                };
            let per_target = self.ports_per_target;
            let pace = self.pace.clone();
            let st = self.state(ip);
            if needs {
                st.calibration = cal_port.map(|p| SocketAddr::new(ip, p));
                // Its ports are decided: counted now, or targets waiting for calibration
                // (all of them, behind a path that clears DSCP) would hold the probers
                // back until the end that only the probers can reach.
                let decided = st.records.len().min(per_target) as u64;
                st.credited = true;
                pace.judged
                    .fetch_add(decided, std::sync::atomic::Ordering::Relaxed);
                self.held.push(ip);
            } else {
                self.judge(ip);
            }
        }
    }

    /// Judges one target from its attempts and records and writes it; frees both.
    fn judge(&mut self, ip: IpAddr) {
        let Some(st) = self.targets.remove(&ip) else {
            return;
        };
        self.scope.remove(&ip);
        let mut attempts = self.tracker.take_target(ip);
        // Its discovery exchange: the connect() probes' attempts and the ICMP messages.
        let pings = self.pings.remove(&ip).unwrap_or_default();
        let discovery = (!st.discovery_flows.is_empty() || !pings.is_empty()).then(|| {
            // (Discovery's attempts are kept out of the port verdicts either way.)
            let (probes, ports): (Vec<Attempt>, Vec<Attempt>) = attempts
                .drain(..)
                .partition(|a| st.discovery_flows.contains(&a.key.scanner));
            attempts = ports;
            crate::report::Discovery::new(probes, pings)
        });
        let discovery = discovery.filter(|_| self.captured);
        if !st.credited {
            let judged = st.records.len().min(self.ports_per_target) as u64;
            self.pace
                .judged
                .fetch_add(judged, std::sync::atomic::Ordering::Relaxed);
        }
        let facts = LiveFacts {
            probes: st.records,
            captured: self.captured,
            capture_drops: 0,
            calibration: st.calibration.into_iter().collect(),
            attempts_limit_reached: (self.tracker.stats().attempts_not_kept > 0)
                .then_some(MAX_ATTEMPTS),
        };
        self.run
            .target(ip, attempts, Some(&facts), discovery.as_ref());
    }

    /// The end (probers done or interrupted): every target still here is judged with
    /// what it completed, in the order given.
    fn flush(&mut self) {
        for &ip in self.order {
            if self.targets.contains_key(&ip) {
                self.judge(ip);
            }
        }
    }
}

/// The correlator's loop: feeds captured observations to the tracker and prober events
/// to the targets until the probers are done (with a calibration round for the targets
/// that need one), writing each target as it is final; then the grace period, the
/// captures' end, and whatever an interruption left.
pub(super) fn correlate(
    running: &Running<'_>,
    probers: (ProberHandles, crossbeam_channel::Receiver<Vec<ProbeEvent>>),
    (cap_rx, capturing): (crossbeam_channel::Receiver<capture::Batch>, usize),
    run: &mut Run<'_>,
    captured: bool,
    hooks: &mut dyn ScanHooks,
) -> Result<TrackerStats, ScanError> {
    let Running {
        addrs,
        opts,
        began,
        stop,
        capture_stop,
        pace,
    } = *running;
    let (mut prober, ev_rx) = probers;
    let mut ev_rx = Some(ev_rx);
    let discovering = super::discovers(opts, addrs);
    let mut c = Correlator {
        run,
        tracker: Tracker::with_capacity(super::prober::in_flight_hint(
            addrs.len(),
            opts.probe.ports.len(),
        ))
        .index_targets(),
        ports_per_target: opts.probe.ports.len(),
        targets: FxHashMap::default(),
        order: addrs,
        settling: VecDeque::new(),
        held: Vec::new(),
        scope: addrs.iter().copied().collect(),
        captured,
        late_grace: opts.grace,
        progress: Progress {
            ports_total: addrs.len() * opts.probe.ports.len(),
            hosts_total: if discovering { addrs.len() } else { 0 },
            ..Progress::default()
        },
        pace: pace.clone(),
        discovering,
        pings: FxHashMap::default(),
    };
    let cal_port = if captured {
        calibration_port(&opts.probe)
    } else {
        None
    };
    let mut calibrating = false;
    let mut probing_done = false;
    let mut captures_open = captured;
    let mut grace_from: Option<Instant> = None;
    // Each target waited for its own late answers before it was judged; the capture goes
    // on only to read (and write with -w) what is still queued.
    let grace = Duration::from_millis(10);
    let mut last_progress = Instant::now();
    // Selecting on a closed channel returns at once: wait on one that never delivers
    // instead once a source is gone.
    let no_capture = crossbeam_channel::never::<capture::Batch>();
    // When each capture last found its socket's queue empty.
    let mut drained: Vec<Option<Instant>> = vec![None; capturing];
    let no_events = crossbeam_channel::never::<Vec<ProbeEvent>>();
    loop {
        select! {
            recv(ev_rx.as_ref().unwrap_or(&no_events)) -> ev => match ev {
                Ok(evs) => for ev in evs {
                    c.event(ev);
                },
                Err(_) => {
                    ev_rx = None;
                    if let Err(e) = join_probers(std::mem::take(&mut prober)) {
                        capture_stop.store(true, Ordering::Release);
                        return Err(e);
                    }
                    if calibrating {
                        probing_done = true;
                    }
                }
            },
            recv(if captures_open { &cap_rx } else { &no_capture }) -> batch => match batch {
                Ok(batch) => {
                    if let Some(at) = batch.drained
                        && let Some(d) = drained.get_mut(batch.capture)
                    {
                        *d = Some(at);
                    }
                    for (ts, obs) in &batch.frames {
                        if let Observation::Ping(p) = obs {
                            c.ping(*ts, p);
                        } else {
                            let scope = &c.scope;
                            c.tracker
                                .observe(*ts, obs, |k| scope.contains(&k.target.ip()));
                        }
                        if concerns(obs, &c.scope) {
                            hooks.packet(*ts, obs);
                        }
                    }
                },
                Err(_) => captures_open = false,
            },
            default(Duration::from_millis(10)) => {}
        }
        let now = Instant::now();
        // Read up to the instant the slowest capture last found its queue empty; once
        // the captures are closed, everything.
        let read_to = if captures_open {
            drained.iter().copied().min().flatten()
        } else {
            Some(now)
        };
        c.advance(now, read_to, cal_port, calibrating);
        let interrupted = stop.load(Ordering::Relaxed);
        if ev_rx.is_none() && interrupted {
            probing_done = true;
        }
        // The main probers are done and the settled targets that need it are held: one
        // calibration round for them all.
        if ev_rx.is_none() && !probing_done && !calibrating && c.settling.is_empty() && !interrupted
        {
            calibrating = true;
            let cal: Vec<SocketAddr> = c
                .held
                .iter()
                .filter_map(|ip| c.targets.get(ip).and_then(|t| t.calibration))
                .collect();
            if cal.is_empty() {
                probing_done = true;
            } else {
                for ip in &c.held {
                    // The calibration port is one more port to decide.
                    c.targets.get_mut(ip).expect("held targets stay").ports_left += 1;
                }
                let mut cfg = opts.probe.clone();
                cfg.targets = cal.iter().map(|s| s.ip()).collect();
                cfg.ports = vec![cal[0].port()];
                let (handle, rx) = start_probers(cfg, stop.clone()).inspect_err(|_| {
                    capture_stop.store(true, Ordering::Release);
                })?;
                prober = handle;
                ev_rx = Some(rx);
            }
        }
        if probing_done && (c.settling.is_empty() || interrupted) {
            let from = *grace_from.get_or_insert(now);
            if !captures_open {
                break;
            }
            if now.duration_since(from) >= grace || interrupted {
                capture_stop.store(true, Ordering::Release);
            }
        }
        if c.run.failed() {
            stop.store(true, Ordering::Relaxed);
        }
        if last_progress.elapsed() >= Duration::from_millis(200) {
            c.progress.elapsed = began.elapsed();
            hooks.progress(&c.progress);
            last_progress = Instant::now();
        }
    }
    // Targets still settling or held when the captures ended (interrupted, or their
    // calibration could not run): judged with what they completed.
    c.held.clear();
    c.flush();
    let Progress {
        hosts_total,
        hosts_decided,
        ..
    } = c.progress;
    if hosts_decided < hosts_total {
        // Only Ctrl-C ends discovery early: the rest were neither up nor down.
        c.run.warn(crate::report::words::discovery_interrupted(
            hosts_total - hosts_decided,
            hosts_total,
        ));
    }
    Ok(c.tracker.stats())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target is judged once the captures have read past the moment its last port was
    /// decided (its answers are in by then), or at its grace's end whatever they read; a
    /// target with an unanswered port waits for the grace, for late answers.
    #[test]
    fn a_target_settles_once_its_answers_are_read_or_its_grace_is_over() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let answered = Settling {
            ip: IpAddr::from([198, 18, 2, 1]),
            decided: ms(10),
            until_read: true,
            due: ms(260),
        };
        assert!(!answered.ready(ms(11), None), "nothing known read");
        assert!(
            !answered.ready(ms(11), Some(ms(9))),
            "read to before it was decided"
        );
        assert!(answered.ready(ms(12), Some(ms(10))));
        assert!(answered.ready(ms(30), Some(ms(25))));
        assert!(
            answered.ready(ms(260), None),
            "a capture lagging past the grace"
        );
        let unanswered = Settling {
            until_read: false,
            ..answered
        };
        assert!(
            !unanswered.ready(ms(30), Some(ms(25))),
            "late answers may come"
        );
        assert!(unanswered.ready(ms(260), Some(ms(25))));
    }
}
