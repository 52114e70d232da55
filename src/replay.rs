//! Replay: the same decode → exchange → verdict path as the live scan, fed from capture
//! files, streaming. Frames are read as they arrive (a pipe or a growing file works);
//! attempts end on the capture's own clock ([`synack_core::stream`]) and each target's
//! report leaves as soon as the target is final, so memory holds what is in flight, not
//! the capture.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use synack_core::capfile::{CapfileError, CaptureReader};
use synack_core::decode::{Observation, Skip, decode};
use synack_core::exchange::KeyHashes;
use synack_core::frame::Timestamp;
use synack_core::stream::{FinalTarget, Stream, Timeouts};
use synack_core::verdict::PortVerdict;

use crate::filter::Filter;
use crate::finish::{PORTS, Run};
use crate::report::{Collect, RunSummary, ScanReport, Sink};

/// Opens every file first: an unreadable file start is an error (exit 2) before any
/// output. `-` is standard input, read on its own thread so that `stop` (Ctrl-C) ends a
/// replay waiting on a pipe.
pub fn open_files(
    paths: &[PathBuf],
    stop: &Arc<AtomicBool>,
) -> Result<Vec<CaptureReader>, CapfileError> {
    paths
        .iter()
        .map(|p| {
            if p.as_os_str() == "-" {
                CaptureReader::from_reader(Box::new(StdinChunks::start(stop.clone())), "-".into())
            } else {
                CaptureReader::open(p)
            }
        })
        .collect()
}

/// Standard input in chunks from a reading thread; a read gives up when `stop` is set.
struct StdinChunks {
    rx: crossbeam_channel::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
    stop: Arc<AtomicBool>,
}

impl StdinChunks {
    fn start(stop: Arc<AtomicBool>) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(4);
        let _ = std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                let mut stdin = io::stdin().lock();
                loop {
                    let mut buf = vec![0u8; 256 * 1024];
                    match stdin.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            buf.truncate(n);
                            if tx.send(Ok(buf)).is_err() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            break;
                        }
                    }
                }
            });
        StdinChunks {
            rx,
            chunk: Vec::new(),
            at: 0,
            stop,
        }
    }
}

impl Read for StdinChunks {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.at < self.chunk.len() {
                let n = out.len().min(self.chunk.len() - self.at);
                out[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
                self.at += n;
                return Ok(n);
            }
            if self.stop.load(Ordering::Relaxed) {
                return Err(io::Error::other("interrupted"));
            }
            match self.rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return Ok(0),
            }
        }
    }
}

/// What a replay does beyond the default.
#[derive(Default)]
pub struct ReplayOptions {
    /// tcpdump's filter language, applied to each frame before decoding.
    pub filter: Option<Filter>,
    /// One row per connection attempt instead of one per (target, port).
    pub connections: bool,
}

/// Replays the captures as one into `sink`. Damage later in a file ends that file with a
/// warning, keeping what was read; `stop` (Ctrl-C) ends the replay with what was decided.
/// Returns the run's summary, or the error writing to the sink.
pub fn replay_into(
    readers: Vec<CaptureReader>,
    sink: &mut dyn Sink,
    stop: &AtomicBool,
) -> std::io::Result<RunSummary> {
    replay_with(readers, sink, stop, ReplayOptions::default())
}

/// [`replay_into`] with options.
pub fn replay_with(
    readers: Vec<CaptureReader>,
    sink: &mut dyn Sink,
    stop: &AtomicBool,
    opts: ReplayOptions,
) -> std::io::Result<RunSummary> {
    let ReplayOptions {
        filter,
        connections,
    } = opts;
    let mut run = Run::new(sink, BTreeMap::new(), true);
    run.set_connections(connections);
    let mut stream = Stream::new(Timeouts::default());
    let emit = |run: &mut Run, done: Vec<FinalTarget>| {
        for t in done {
            run.target(t.ip, t.attempts, None, None);
        }
    };
    // Files are read and decoded on a thread of their own, a batch at a time, while this
    // one matches, judges and writes: decoding is a fifth of a replay. Standard input is
    // decoded here, frame by frame, so that what a pipe brings is matched at once (a batch
    // would wait for more frames that may take minutes to come).
    let piped = readers.iter().any(|r| r.name() == "-");
    // (Whether this thread saw Ctrl-C first: the decoder may not have.)
    let (decoded, stopped_here) = if piped {
        let decoded = decode_files(readers, filter, stop, |ts, obs| {
            emit(&mut run, stream.observe(ts, &obs));
            !run.failed()
        });
        (decoded, false)
    } else {
        let read_all = AtomicBool::new(false);
        std::thread::scope(|s| {
            // Each batch goes with how many pure SYNs the files held up to its end.
            let (tx, rx) = crossbeam_channel::bounded::<(Vec<Observed>, u64)>(4);
            let (recycle, empties) = crossbeam_channel::bounded::<Vec<Observed>>(6);
            // Once the files are read, the decoding thread maps the memory for the
            // largest target's verdicts while this one matches what is queued: the size
            // goes one way (Stream::largest_target_held), the memory the other.
            let (want_tx, want_rx) = crossbeam_channel::bounded::<(usize, u64)>(1);
            let queue = Queue {
                tx,
                empties,
                read_all: &read_all,
                want_rx,
            };
            let decoder = std::thread::Builder::new()
                .name("decode".into())
                .spawn_scoped(s, move || decode_ahead(readers, filter, stop, queue))?;
            let mut stopped_here = false;
            let mut want_tx = Some(want_tx);
            let mut syns_matched = 0;
            for (mut batch, syns_through) in &rx {
                if stop.load(Ordering::Relaxed) {
                    stopped_here = true;
                    break;
                }
                if read_all.load(Ordering::Acquire)
                    && let Some(want) = want_tx.take()
                {
                    let _ = want.send((stream.largest_target_held(), syns_matched));
                }
                for (ts, obs, hashes) in batch.drain(..) {
                    emit(&mut run, stream.observe_hashed(ts, &obs, hashes));
                }
                syns_matched = syns_through;
                if run.failed() {
                    break;
                }
                let _ = recycle.try_send(batch);
            }
            // The decoder ends at its next send once the receivers are gone.
            drop(rx);
            drop(want_tx);
            let (decoded, spare) = decoder.join().expect("the decoding thread does not panic");
            if let Some(spare) = spare {
                run.give_spare_verdicts(spare);
            }
            Ok::<_, io::Error>((decoded, stopped_here))
        })?
    };
    let interrupted = stopped_here || decoded.interrupted;
    for w in decoded.warnings {
        run.warn(w);
    }
    for (what, n) in decoded.skips {
        run.warn(format!(
            "{n} packet{} skipped: {what}",
            if n == 1 { "" } else { "s" }
        ));
    }
    if let Some(f) = &decoded.filter {
        let mut refused: Vec<_> = f.refused.iter().collect();
        refused.sort_by_key(|(link, _)| link.to_pcap());
        for (link, (n, why)) in refused {
            run.warn(format!(
                "{n} packet{} of link type {} skipped: the filter '{}' does not apply to it ({why})",
                if *n == 1 { "" } else { "s" },
                link.to_pcap(),
                f.expression()
            ));
        }
    }
    let stats = stream.stats();
    emit(&mut run, stream.finish());
    let elapsed = match (decoded.first, decoded.last) {
        (Some(f), Some(l)) => Duration::from_nanos(l.since(f)),
        _ => Duration::ZERO,
    };
    run.end(stats, elapsed, 0, interrupted)
}

/// The decoding thread's side of a replay of files: what it sends and gets.
struct Queue<'a> {
    /// Batches, each with how many pure SYNs the files held up to its end.
    tx: crossbeam_channel::Sender<(Vec<Observed>, u64)>,
    /// Batches the matching thread is done with, to fill again.
    empties: crossbeam_channel::Receiver<Vec<Observed>>,
    /// Set once the files are read.
    read_all: &'a AtomicBool,
    /// Then: the most attempts a target not yet final holds, and the pure SYNs matched.
    want_rx: crossbeam_channel::Receiver<(usize, u64)>,
}

/// Reads and decodes the files into batches for the matching thread, with each
/// observation's table hashes (this thread has time to spare, the matching one has
/// not). Once the files are read, it maps the memory for the largest target's verdicts
/// while the matching thread works through what is queued.
fn decode_ahead(
    readers: Vec<CaptureReader>,
    filter: Option<Filter>,
    stop: &AtomicBool,
    queue: Queue<'_>,
) -> (Decoded, Option<Vec<PortVerdict>>) {
    let Queue {
        tx,
        empties,
        read_all,
        want_rx,
    } = queue;
    let mut batch = Vec::with_capacity(BATCH);
    let mut syns = 0u64;
    let decoded = decode_files(readers, filter, stop, |ts, obs| {
        let hashes = KeyHashes::of(&obs);
        if let Observation::Tcp(seg) = &obs
            && seg.flags.is_syn_only()
        {
            syns += 1;
        }
        batch.push((ts, obs, hashes));
        if batch.len() < BATCH {
            return true;
        }
        let next = empties
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH));
        tx.send((std::mem::replace(&mut batch, next), syns)).is_ok()
    });
    if !batch.is_empty() {
        let _ = tx.send((batch, syns));
    }
    drop(tx);
    read_all.store(true, Ordering::Release);
    // The most attempts a target not yet final holds, and as many more as there are SYNs
    // still queued (a target has one verdict per port at most).
    let spare = want_rx
        .recv()
        .ok()
        .map(|(largest, syns_matched)| {
            let queued = syns.saturating_sub(syns_matched);
            (largest as u64 + queued).min(PORTS as u64) as usize
        })
        .filter(|&n| n >= SPARE_FROM)
        .map(mapped_verdicts);
    (decoded, spare)
}

/// Targets holding fewer attempts when the files are read get no memory mapped ahead:
/// their verdicts are few, and judged on one thread.
const SPARE_FROM: usize = 4096;

/// Memory for `n` verdicts, empty, with its pages mapped now (a zeroed element written in
/// each page) rather than while the verdicts are written: for a full-range target, 11 MB
/// that the kernel otherwise maps during the parallel judging, on the cores doing it.
fn mapped_verdicts(n: usize) -> Vec<PortVerdict> {
    let mut v: Vec<PortVerdict> = Vec::with_capacity(n);
    let per_page = (4096 / std::mem::size_of::<PortVerdict>()).max(1);
    for slot in v.spare_capacity_mut().iter_mut().step_by(per_page) {
        *slot = std::mem::MaybeUninit::zeroed();
    }
    std::hint::black_box(v.spare_capacity_mut());
    v
}

/// An observation as the decoding thread hands it over.
type Observed = (Timestamp, Observation, KeyHashes);

/// Observations per batch from the decoding thread.
const BATCH: usize = 4096;

/// What reading and decoding the files found besides the observations.
struct Decoded {
    /// The capture's first and last frame times (every frame, filtered or not).
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    /// Frames that may have been part of a TCP exchange and could not be read, by kind.
    skips: BTreeMap<&'static str, u64>,
    /// The filter, with the link types it refused.
    filter: Option<Filter>,
    /// Damage that ended a file early, and each file's own warnings, in file order.
    warnings: Vec<String>,
    interrupted: bool,
}

/// Reads the files in turn, filters and decodes each frame, and hands each observation
/// to `observe` until it returns false (the sink failed) or `stop` is set.
fn decode_files(
    readers: Vec<CaptureReader>,
    mut filter: Option<Filter>,
    stop: &AtomicBool,
    mut observe: impl FnMut(Timestamp, Observation) -> bool,
) -> Decoded {
    let mut d = Decoded {
        first: None,
        last: None,
        skips: BTreeMap::new(),
        filter: None,
        warnings: Vec::new(),
        interrupted: false,
    };
    'files: for mut reader in readers {
        loop {
            if stop.load(Ordering::Relaxed) {
                d.interrupted = true;
                break 'files;
            }
            match reader.next_frame() {
                Ok(Some(frame)) => {
                    d.first = Some(d.first.map_or(frame.ts, |f| f.min(frame.ts)));
                    d.last = Some(d.last.map_or(frame.ts, |l| l.max(frame.ts)));
                    if let Some(f) = filter.as_mut()
                        && !f.matches(&frame)
                    {
                        continue;
                    }
                    match decode(&frame) {
                        Ok(obs) => {
                            if !observe(frame.ts, obs) {
                                break 'files;
                            }
                        }
                        // Other protocols are expected in any capture; damage is worth a word.
                        Err(Skip::NotIp | Skip::OtherProtocol) => {}
                        Err(skip) => *d.skips.entry(skip.describe()).or_default() += 1,
                    }
                }
                Ok(None) => break,
                Err(_) if stop.load(Ordering::Relaxed) => {
                    d.interrupted = true;
                    break 'files;
                }
                Err(e) => {
                    d.warnings
                        .push(format!("{e}; verdicts use the packets before it"));
                    break;
                }
            }
        }
        for w in reader.warnings() {
            d.warnings.push(format!("{}: {w}", reader.name()));
        }
    }
    d.filter = filter;
    d
}

/// Replays already opened captures as one, into a report held in memory (the bundled
/// demo capture, tests).
pub fn replay(readers: Vec<CaptureReader>) -> ScanReport {
    let mut collect = Collect::default();
    let _ = replay_into(readers, &mut collect, &AtomicBool::new(false));
    collect.into_report()
}

/// [`replay`] of files.
pub fn replay_files(paths: &[PathBuf]) -> Result<ScanReport, CapfileError> {
    Ok(replay(open_files(
        paths,
        &Arc::new(AtomicBool::new(false)),
    )?))
}
