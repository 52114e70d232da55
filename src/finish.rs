//! The end of a run, the same for a live scan and a replay: judge what the correlator
//! kept, say what it did not keep, and set apart the ports synack probed on its own
//! (calibration). One place, so the two sources cannot drift apart again.

use synack_core::exchange::{MAX_ATTEMPTS, Tracker};
use synack_core::verdict::{LiveFacts, judge_owned};

use crate::report::{ScanReport, words};

/// Judges what `tracker` kept into `report`: verdicts, and the warnings and notes about
/// them. `live` is the prober's side of a live scan (None for a replay).
pub fn finish(report: &mut ScanReport, tracker: Tracker, mut live: Option<LiveFacts>) {
    let stats = tracker.stats();
    if stats.attempts_not_kept > 0 {
        report.warnings.push(words::attempts_not_kept(
            stats.attempts_not_kept,
            MAX_ATTEMPTS,
        ));
        if let Some(live) = live.as_mut() {
            live.attempts_limit_reached = Some(MAX_ATTEMPTS);
        }
    }
    let mut verdicts = judge_owned(tracker.into_attempts(), live.as_ref());
    if let Some(live) = live.as_ref().filter(|l| !l.calibration.is_empty()) {
        // Calibration ports informed the baselines; they were not asked for.
        for c in &live.calibration {
            report.notes.push(words::calibration_probed(*c));
        }
        for v in verdicts
            .iter()
            .filter(|v| live.calibration.contains(&v.target))
        {
            report.notes.push(words::calibration_answered(v));
        }
        verdicts.retain(|v| !live.calibration.contains(&v.target));
    }
    report.verdicts = verdicts;
}
