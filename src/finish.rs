//! The output side of a run, the same for a live scan and a replay: each target is judged
//! as soon as it is final and handed to the sink, the totals are counted on the way, and
//! the end says what was kept, cut and lost. One place, so the two sources cannot drift
//! apart.

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use rustc_hash::FxHashSet;
use synack_core::exchange::{Attempt, MAX_ATTEMPTS, TrackerStats};
use synack_core::verdict::{LiveFacts, PortVerdict, judge_connections, judge_target_into};

use crate::report::{RunSummary, Sink, TargetReport, words};

/// A run's results on their way to a sink.
pub struct Run<'s> {
    sink: &'s mut dyn Sink,
    names: BTreeMap<IpAddr, String>,
    summary: RunSummary,
    hosts: FxHashSet<IpAddr>,
    /// The first error writing to the sink (a closed pipe, a full disk): nothing more is
    /// written, and the caller may stop early.
    failed: Option<io::Error>,
    /// One row per connection attempt instead of one per port (replay `--connections`).
    connections: bool,
    /// Where large targets' verdicts go to be freed (see [`Dropper`]).
    dropper: Dropper,
    /// Memory for a target's verdicts, mapped ahead ([`Run::give_spare_verdicts`]).
    spare: Option<Vec<PortVerdict>>,
}

/// The most verdicts one target has: one per port.
pub(crate) const PORTS: usize = u16::MAX as usize + 1;

/// Frees a large target's verdicts on a thread of its own. A full-range target is 65,535
/// verdicts with a trace and evidence each: 131,000 heap blocks whose freeing cost the
/// thread that writes the output 5 ms of a 64 ms replay. The thread starts with the first
/// large target and ends once the run is done and the queue is empty; nothing waits for
/// it (at exit the system takes the memory back).
#[derive(Default)]
struct Dropper(Option<crossbeam_channel::Sender<Vec<PortVerdict>>>);

/// Targets with fewer verdicts are freed where they are.
const DROP_ASIDE: usize = 4096;

impl Dropper {
    fn drop_later(&mut self, verdicts: Vec<PortVerdict>) {
        if verdicts.len() < DROP_ASIDE {
            return;
        }
        if self.0.is_none() {
            let (tx, rx) = crossbeam_channel::bounded::<Vec<PortVerdict>>(2);
            let spawned = std::thread::Builder::new()
                .name("free".into())
                .spawn(move || rx.iter().for_each(drop));
            if spawned.is_ok() {
                self.0 = Some(tx);
            }
        }
        // Without the thread (it could not start), or with its queue full, here.
        if let Some(tx) = &self.0 {
            let _ = tx.try_send(verdicts);
        }
    }
}

impl<'s> Run<'s> {
    /// `names`: hostnames the user typed, by address. `captured`: whether packets were
    /// captured at all.
    pub fn new(sink: &'s mut dyn Sink, names: BTreeMap<IpAddr, String>, captured: bool) -> Self {
        Run {
            sink,
            names,
            summary: RunSummary {
                captured,
                ..RunSummary::default()
            },
            hosts: FxHashSet::default(),
            failed: None,
            connections: false,
            dropper: Dropper::default(),
            spare: None,
        }
    }

    /// Judge and write each connection attempt on its own (replay `--connections`).
    pub fn set_connections(&mut self, on: bool) {
        self.connections = on;
    }

    /// Whether writing failed; the run may as well stop.
    pub fn failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Something the user must know, said once.
    pub fn warn(&mut self, w: String) {
        if !self.summary.warnings.contains(&w) {
            self.summary.warnings.push(w);
        }
    }

    pub fn set_captured(&mut self, captured: bool) {
        self.summary.captured = captured;
    }

    /// One host's discovery result: counted (when down) and handed to the sink.
    pub fn host(&mut self, h: &crate::report::HostReport<'_>) {
        if h.up.is_none() {
            self.summary.hosts_down += 1;
        }
        if self.failed.is_some() {
            return;
        }
        let h = crate::report::HostReport {
            name: self.names.get(&h.ip).map(String::as_str),
            ..*h
        };
        if let Err(e) = self.sink.host(&h) {
            self.failed = Some(e);
        }
    }

    /// Judges one final target's attempts — every one of them at `ip`, as a stream's final
    /// target and a live scan's taken target are — (with the prober's records when live)
    /// and writes its report. Calibration ports informed the baseline; they become notes, not
    /// rows.
    /// `discovery`: the host's discovery exchange, shown with its report under `--ladder`.
    pub fn target(
        &mut self,
        ip: IpAddr,
        attempts: Vec<Attempt>,
        live: Option<&LiveFacts>,
        discovery: Option<&crate::report::Discovery>,
    ) {
        if self.connections && live.is_none() {
            let rows = judge_connections(attempts);
            if rows.is_empty() {
                return;
            }
            for r in &rows {
                self.summary.add(std::slice::from_ref(&r.verdict));
            }
            self.summary.connections += rows.len();
            self.hosts.insert(ip);
            if self.failed.is_none()
                && let Err(e) = self.sink.connections(&rows)
            {
                self.failed = Some(e);
            }
            return;
        }
        // (One verdict per port at most; a live scan never has a spare.)
        let out = self.spare_for(attempts.len().min(PORTS));
        let mut verdicts = judge_target_into(ip, attempts, live, out);
        if let Some(live) = live.filter(|l| !l.calibration.is_empty()) {
            for c in live.calibration.iter().filter(|c| c.ip() == ip) {
                self.summary.notes.push(words::calibration_probed(*c));
            }
            for v in verdicts
                .iter()
                .filter(|v| live.calibration.contains(&v.target))
            {
                self.summary.notes.push(words::calibration_answered(v));
            }
            verdicts.retain(|v| !live.calibration.contains(&v.target));
        }
        if verdicts.is_empty() {
            return;
        }
        self.summary.add(&verdicts);
        self.hosts.insert(ip);
        if self.failed.is_some() {
            return;
        }
        let report = TargetReport {
            ip,
            name: self.names.get(&ip).map(String::as_str),
            verdicts: &verdicts,
            discovery,
        };
        if let Err(e) = self.sink.target(&report) {
            self.failed = Some(e);
        }
        // The target is done: its verdicts are freed (aside, when there are many).
        self.dropper.drop_later(verdicts);
    }

    /// Gives the run memory for a target's verdicts, mapped ahead by a thread with time to
    /// spare (a replay's decoding thread, once the files are read): the next target is
    /// judged into it if it fits, else it is freed.
    pub fn give_spare_verdicts(&mut self, spare: Vec<PortVerdict>) {
        self.spare = Some(spare);
    }

    /// The spare memory if it fits `n` verdicts (a quarter more room is the most left
    /// unused), else none; either way the run holds it no longer.
    fn spare_for(&mut self, n: usize) -> Vec<PortVerdict> {
        match self.spare.take() {
            Some(s) if s.capacity() >= n && s.capacity() - n <= n / 4 => s,
            _ => Vec::new(),
        }
    }

    /// The end: what the correlator could not keep, the totals, the closing output.
    /// Returns the summary, or the first write error.
    pub fn end(
        mut self,
        stats: TrackerStats,
        elapsed: Duration,
        capture_drops: u64,
        interrupted: bool,
    ) -> Result<RunSummary, io::Error> {
        if stats.attempts_not_kept > 0 {
            self.warn(words::attempts_not_kept(
                stats.attempts_not_kept,
                MAX_ATTEMPTS,
            ));
        }
        self.summary.hosts = self.hosts.len();
        self.summary.elapsed = elapsed;
        self.summary.capture_drops = capture_drops;
        self.summary.interrupted = interrupted;
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        self.sink.finish(&self.summary)?;
        Ok(self.summary)
    }
}
