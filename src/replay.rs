//! Replay: the same decode → exchange → verdict path as the live scan, fed from capture
//! files. Frames stream through; only the per-attempt exchanges are kept.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::report::ScanReport;
use synack_core::capfile::{CapfileError, CaptureReader};
use synack_core::decode::{Skip, decode};
use synack_core::exchange::Tracker;
use synack_core::frame::Timestamp;

/// Replays the files as one capture. An unreadable file start is an error (exit 2);
/// damage later in a file ends that file with a warning, keeping what was read.
pub fn replay_files(paths: &[PathBuf]) -> Result<ScanReport, CapfileError> {
    let readers = paths
        .iter()
        .map(|p| CaptureReader::open(p))
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    Ok(replay_sized(readers, bytes))
}

/// Replays already opened captures as one.
pub fn replay(readers: Vec<CaptureReader>) -> ScanReport {
    replay_sized(readers, 0)
}

/// [`replay`] with a hint of the total input size in bytes, to size the tracker once
/// (a scan capture holds about one attempt per 150 bytes).
fn replay_sized(readers: Vec<CaptureReader>, bytes: u64) -> ScanReport {
    let expected = (bytes / 150).min(1 << 20) as usize;
    let mut tracker = Tracker::with_capacity(expected);
    let mut report = ScanReport {
        captured: true,
        ..ScanReport::default()
    };
    let mut skips: BTreeMap<&'static str, u64> = BTreeMap::new();
    let (mut first, mut last) = (None::<Timestamp>, None::<Timestamp>);
    for mut reader in readers {
        loop {
            match reader.next_frame() {
                Ok(Some(frame)) => {
                    first = Some(first.map_or(frame.ts, |f| f.min(frame.ts)));
                    last = Some(last.map_or(frame.ts, |l| l.max(frame.ts)));
                    match decode(&frame) {
                        Ok(obs) => tracker.observe(frame.ts, &obs, |_| true),
                        // Other protocols are expected in any capture; damage is worth a word.
                        Err(Skip::NotIp | Skip::OtherProtocol) => {}
                        Err(skip) => *skips.entry(skip.describe()).or_default() += 1,
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    report
                        .warnings
                        .push(format!("{e}; verdicts use the packets before it"));
                    break;
                }
            }
        }
        for w in reader.warnings() {
            report.warnings.push(format!("{}: {w}", reader.name()));
        }
    }
    for (what, n) in skips {
        report.warnings.push(format!(
            "{n} packet{} skipped: {what}",
            if n == 1 { "" } else { "s" }
        ));
    }
    crate::finish::finish(&mut report, tracker, None);
    if let (Some(f), Some(l)) = (first, last) {
        report.elapsed = Duration::from_nanos(l.since(f));
    }
    report
}
