//! JSON Lines: a scan's run object, one object per port (written by hand in `json_port`,
//! the hot path), host and connection objects, then one summary object.

use std::io::{self, Write};

use serde::{Serialize, Serializer};

use super::words;
use super::{RunSummary, ScanReport, Sink, TargetReport};
use synack_core::verdict::{ConnectionVerdict, Evidence};

/// Evidence facts as their sentences (connection rows; the port objects are written by
/// hand in `json_port`, with their sentences escaped once).
struct EvidenceJson<'a>(&'a [Evidence]);

impl Serialize for EvidenceJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(Phrase))
    }
}

struct Phrase<'a>(&'a Evidence);

impl Serialize for Phrase<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&words::EvidenceWords(self.0))
    }
}

#[derive(Serialize)]
struct SummaryJson<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    ports: usize,
    /// Only with host discovery: replays and single-target scans keep their shape.
    #[serde(skip_serializing_if = "is_zero_usize")]
    hosts_down: usize,
    open: usize,
    closed: usize,
    filtered: usize,
    elapsed_s: f64,
    captured: bool,
    capture_drops: u64,
    interrupted: bool,
    warnings: &'a [String],
    notes: &'a [String],
    /// Connection rows written (replay `--connections`): the state counts are of them.
    #[serde(skip_serializing_if = "is_zero_usize")]
    connections: usize,
    /// Only when the network held back (docs/verdicts.md): ports that answered when
    /// re-probed slower, and ports still silent on a target that rate-limits ICMP.
    #[serde(skip_serializing_if = "is_zero_usize")]
    changed_on_retry: usize,
    #[serde(skip_serializing_if = "is_zero_usize")]
    maybe_suppressed: usize,
}

fn is_zero_usize(n: &usize) -> bool {
    *n == 0
}

pub fn write(out: &mut dyn Write, report: &ScanReport) -> io::Result<()> {
    report.write_to(&mut JsonSink::new(out))
}

/// JSON Lines as a streaming sink: each target's port objects as it is final, then the
/// summary object.
pub struct JsonSink<W: Write> {
    out: W,
    /// The port objects' sentences, escaped once (`json_port`).
    phrases: super::json_port::Phrasebook,
    /// One target's objects, built here and written at once.
    buf: Vec<u8>,
    formatted: super::json_port::Formatted,
    /// The second formatting thread's own phrasebook and caches (large targets).
    helper: (super::json_port::Phrasebook, super::json_port::Formatted),
    /// The `"type":"run"` object, written before the first result.
    header: Option<String>,
    /// Packets carry `ts` (with the run object).
    absolute: bool,
}

impl<W: Write> JsonSink<W> {
    pub fn new(out: W) -> Self {
        JsonSink {
            out,
            phrases: super::json_port::Phrasebook::default(),
            buf: Vec::with_capacity(64 * 1024),
            formatted: super::json_port::Formatted::default(),
            helper: Default::default(),
            header: None,
            absolute: false,
        }
    }

    /// Starts the output with the run's `"type":"run"` object ([`super::run::RunInfo`])
    /// and gives each packet its absolute time (`ts`) beside `t_ms`.
    pub fn with_run(mut self, run: &super::run::RunInfo) -> Self {
        self.header = Some(run.json());
        self.absolute = true;
        self
    }

    fn write_header(&mut self) -> io::Result<()> {
        if let Some(h) = self.header.take() {
            self.out.write_all(h.as_bytes())?;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// Ports per chunk when a large target is formatted on two threads.
const CHUNK_PORTS: usize = 512;

/// Targets with at least this many ports are formatted on two threads.
const PARALLEL_PORTS: usize = 4 * CHUNK_PORTS;

/// Formats `chunk`'s port objects, one per line, into `buf`.
fn format_chunk(
    buf: &mut Vec<u8>,
    chunk: &[synack_core::verdict::PortVerdict],
    (phrases, formatted): &mut (super::json_port::Phrasebook, super::json_port::Formatted),
    absolute: bool,
) {
    for v in chunk {
        super::json_port::write_port(buf, v, phrases, absolute, formatted);
        buf.push(b'\n');
    }
}

impl<W: Write> JsonSink<W> {
    /// A large target (a full-range scan: 65,535 port objects, half of a replay's time)
    /// is formatted on two threads: chunks of 512 ports, the odd ones by a helper running
    /// at most two chunks ahead, written in order. Memory stays a few chunks' worth.
    fn target_on_two_threads(&mut self, t: &TargetReport<'_>) -> io::Result<()> {
        let chunks: Vec<&[synack_core::verdict::PortVerdict]> =
            t.verdicts.chunks(CHUNK_PORTS).collect();
        let absolute = self.absolute;
        let (to_main, from_helper) = crossbeam_channel::bounded::<Vec<u8>>(2);
        let (to_helper, empties) = crossbeam_channel::bounded::<Vec<u8>>(3);
        for _ in 0..3 {
            let _ = to_helper.send(Vec::with_capacity(CHUNK_PORTS * 1024));
        }
        let helper = &mut self.helper;
        let mut main = (
            std::mem::take(&mut self.phrases),
            std::mem::take(&mut self.formatted),
        );
        let result = std::thread::scope(|s| {
            // Owned here, so that returning early (a write error) drops them and the
            // helper, blocked on either channel, ends before the scope waits for it.
            let (to_helper, from_helper) = (to_helper, from_helper);
            let odd = &chunks;
            s.spawn(move || {
                for chunk in odd.iter().skip(1).step_by(2) {
                    let Ok(mut buf) = empties.recv() else { return };
                    buf.clear();
                    format_chunk(&mut buf, chunk, helper, absolute);
                    if to_main.send(buf).is_err() {
                        return;
                    }
                }
            });
            for (i, chunk) in chunks.iter().enumerate() {
                if i % 2 == 0 {
                    self.buf.clear();
                    format_chunk(&mut self.buf, chunk, &mut main, absolute);
                    self.out.write_all(&self.buf)?;
                } else {
                    let buf = from_helper
                        .recv()
                        .map_err(|_| io::Error::other("the JSON formatting thread ended early"))?;
                    let written = self.out.write_all(&buf);
                    let _ = to_helper.send(buf);
                    written?;
                }
            }
            Ok::<(), io::Error>(())
        });
        (self.phrases, self.formatted) = main;
        self.buf.clear();
        result?;
        self.out.flush()
    }
}

impl<W: Write> Sink for JsonSink<W> {
    fn target(&mut self, t: &TargetReport<'_>) -> io::Result<()> {
        self.write_header()?;
        if t.verdicts.len() >= PARALLEL_PORTS {
            return self.target_on_two_threads(t);
        }
        for v in t.verdicts {
            super::json_port::write_port(
                &mut self.buf,
                v,
                &self.phrases,
                self.absolute,
                &mut self.formatted,
            );
            self.buf.push(b'\n');
            if self.buf.len() >= 60 * 1024 {
                self.out.write_all(&self.buf)?;
                self.buf.clear();
            }
        }
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()
    }

    fn connections(&mut self, rows: &[ConnectionVerdict]) -> io::Result<()> {
        self.write_header()?;
        for c in rows {
            let row = super::connections::json(c, EvidenceJson(&c.verdict.evidence));
            serde_json::to_writer(&mut self.out, &row)?;
            self.out.write_all(b"\n")?;
        }
        self.out.flush()
    }

    /// `{"type":"host","target":…,"state":"up"|"down",…}`, one per host discovered.
    fn host(&mut self, h: &super::HostReport<'_>) -> io::Result<()> {
        self.write_header()?;
        let probes: Vec<_> = h.probes.iter().map(|p| p.name()).collect();
        let v = match h.up {
            Some(p) => serde_json::json!({
                "type": "host", "target": h.ip, "state": "up", "probe": p.probe.name(),
                "reason": p.answer.name(), "rtt_ms": p.rtt.as_secs_f64() * 1e3, "probes": probes,
            }),
            None if h.no_neighbour => serde_json::json!({
                "type": "host", "target": h.ip, "state": "down", "reason": "no-neighbour-reply",
                "why": super::words::NoNeighbourDown(h.ip).to_string(), "probes": probes,
            }),
            None => serde_json::json!({
                "type": "host", "target": h.ip, "state": "down", "reason": "no-response",
                "probes": probes,
            }),
        };
        serde_json::to_writer(&mut self.out, &v)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    fn finish(&mut self, s: &RunSummary) -> io::Result<()> {
        self.write_header()?;
        let summary = SummaryJson {
            kind: "summary",
            ports: s.ports,
            hosts_down: s.hosts_down,
            open: s.open,
            closed: s.closed,
            filtered: s.filtered,
            elapsed_s: s.elapsed.as_secs_f64(),
            captured: s.captured,
            capture_drops: s.capture_drops,
            interrupted: s.interrupted,
            warnings: &s.warnings,
            notes: &s.notes,
            connections: s.connections,
            changed_on_retry: s.changed_on_retry,
            maybe_suppressed: s.maybe_suppressed,
        };
        serde_json::to_writer(&mut self.out, &summary)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustc_hash::FxHashMap;
    use serde::Serializer;
    use std::cell::RefCell;
    use std::fmt;
    use std::net::IpAddr;
    use synack_core::exchange::{Dir, PacketKind};
    use synack_core::verdict::{Note, Outcome, PortVerdict};

    // The derived serialisation the port objects had before they were written by hand:
    // the oracle the hand-written writer is held to.
    /// A packet's label ("SYN/ACK", "SYN/ECE/CWR/AE", "ICMP port-unreach") written without an
    /// allocation; AccECN's AE flag shows when set.
    struct Label(PacketKind, bool);

    impl Serialize for Label {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self.0 {
                PacketKind::Tcp(f) => s.collect_str(&f.with_ae(self.1)),
                PacketKind::Icmp(k) => s.collect_str(&k),
                PacketKind::Ping(k) => s.collect_str(&k),
            }
        }
    }

    fn is_false(b: &bool) -> bool {
        !*b
    }

    #[derive(Serialize)]
    struct PacketJson {
        dir: &'static str,
        flags: Label,
        t_ms: f64,
        /// The capture's absolute time of the packet, RFC 3339 UTC with nanoseconds (in a
        /// scan's output, the one that starts with a run object).
        #[serde(skip_serializing_if = "Option::is_none")]
        ts: Option<crate::report::run::Rfc3339>,
        ttl: u8,
        seq: u32,
        ack: u32,
        win: u16,
        from: IpAddr,
        /// The attempt's client (two clients can share a source port).
        client: IpAddr,
        sport: u16,
        dscp: u8,
        retransmission: bool,
        /// The TCP header was cut after its fixed 20 bytes (options unknown).
        #[serde(skip_serializing_if = "is_false")]
        cut: bool,
        /// Stored in the capture before its SYN, matched by 4-tuple and sequence numbers.
        #[serde(skip_serializing_if = "is_false")]
        early: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        ip_id: Option<u16>,
        #[serde(skip_serializing_if = "Option::is_none")]
        flow_label: Option<u32>,
    }

    use super::super::json_port::t_ms;

    /// A port's packets; with absolute timestamps when `.1`.
    struct Trace<'a>(&'a PortVerdict, bool);

    impl Serialize for Trace<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let v = self.0;
            s.collect_seq(v.trace.iter().map(|p| PacketJson {
                dir: match p.dir {
                    Dir::Out => "out",
                    Dir::In => "in",
                },
                flags: Label(p.kind, p.ae),
                t_ms: t_ms(p, v),
                ts: self.1.then_some(crate::report::run::Rfc3339(p.ts)),
                ttl: p.ttl,
                seq: p.seq,
                ack: p.ack,
                win: p.win,
                from: p.from,
                client: p.client,
                sport: p.scanner_port,
                dscp: p.dscp,
                retransmission: p.retransmission,
                cut: p.cut,
                early: p.early,
                ip_id: p.ip_id,
                flow_label: p.flow_label,
            }))
        }
    }

    struct Target(IpAddr);

    impl Serialize for Target {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(&self.0)
        }
    }

    impl fmt::Debug for Target {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.fmt(f)
        }
    }

    /// The sentences of the evidence facts met so far in this output: a full-range scan
    /// writes 65,535 ports with a handful of distinct facts, so each is worded once (the
    /// book is emptied if a capture brings too many distinct ones).
    #[derive(Default)]
    struct Phrasebook(RefCell<FxHashMap<Evidence, Box<str>>>);

    const PHRASEBOOK_MAX: usize = 4096;

    /// Evidence facts as their sentences.
    struct OracleEvidence<'a>(&'a [Evidence], &'a Phrasebook);

    impl Serialize for OracleEvidence<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.iter().map(|e| OraclePhrase(e, self.1)))
        }
    }

    struct OraclePhrase<'a>(&'a Evidence, &'a Phrasebook);

    impl Serialize for OraclePhrase<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut book = self.1.0.borrow_mut();
            if !book.contains_key(self.0) {
                if book.len() >= PHRASEBOOK_MAX {
                    book.clear();
                }
                let said = words::EvidenceWords(self.0).to_string().into_boxed_str();
                book.insert(*self.0, said);
            }
            s.serialize_str(&book[self.0])
        }
    }

    /// A verdict's note as its sentence.
    struct NoteJson<'a>(&'a Note);

    impl Serialize for NoteJson<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(&words::NoteWords(self.0))
        }
    }

    #[derive(Serialize)]
    struct PortJson<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        target: Target,
        port: u16,
        state: &'static str,
        reason: &'static str,
        responder: &'static str,
        evidence: OracleEvidence<'a>,
        observed: bool,
        attempts: u32,
        trace: Trace<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<NoteJson<'a>>,
        /// When attempts disagree: how many ended with each reason.
        #[serde(skip_serializing_if = "Outcomes::is_empty")]
        outcomes: Outcomes<'a>,
        /// Packets left out of `trace` (attempts beyond the first few, or beyond an
        /// attempt's own cap).
        #[serde(skip_serializing_if = "is_zero")]
        left_out: u32,
    }

    fn is_zero(n: &u32) -> bool {
        *n == 0
    }

    /// `{"syn-ack": 45, "reset": 5}`: outcomes by reason (responders of one reason summed).
    struct Outcomes<'a>(&'a [Outcome]);

    impl Outcomes<'_> {
        fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }

    impl Serialize for Outcomes<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut by_reason: Vec<(&'static str, u32)> = Vec::new();
            for o in self.0 {
                match by_reason.iter_mut().find(|(r, _)| *r == o.reason.name()) {
                    Some((_, n)) => *n += o.count,
                    None => by_reason.push((o.reason.name(), o.count)),
                }
            }
            s.collect_map(by_reason)
        }
    }

    fn port_json<'a>(v: &'a PortVerdict, book: &'a Phrasebook, ts: bool) -> PortJson<'a> {
        PortJson {
            kind: "port",
            target: Target(v.target.ip()),
            port: v.target.port(),
            state: v.state.as_str(),
            reason: v.reason.name(),
            responder: v.responder.as_str(),
            evidence: OracleEvidence(&v.evidence, book),
            observed: v.observed,
            attempts: v.attempts,
            trace: Trace(v, ts),
            note: v.note.as_ref().map(NoteJson),
            outcomes: Outcomes(&v.outcomes),
            left_out: v.left_out,
        }
    }

    use std::path::Path;

    /// The hand-written port objects are byte for byte what the derived serialisation
    /// writes, on every capture fixture, with and without absolute timestamps.
    #[test]
    fn hand_written_ports_match_the_derived_serialisation() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("capture-fixtures");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("pcap" | "pcapng")
                )
            })
            .collect();
        files.sort();
        assert!(files.len() >= 5);
        let (book, phrases) = (
            Phrasebook::default(),
            super::super::json_port::Phrasebook::default(),
        );
        let mut formatted = super::super::json_port::Formatted::default();
        let mut ports = 0;
        for f in files {
            let report = crate::replay::replay_files(std::slice::from_ref(&f)).unwrap();
            for v in &report.verdicts {
                for absolute in [false, true] {
                    let derived = serde_json::to_vec(&port_json(v, &book, absolute)).unwrap();
                    let mut hand = Vec::new();
                    super::super::json_port::write_port(
                        &mut hand,
                        v,
                        &phrases,
                        absolute,
                        &mut formatted,
                    );
                    assert_eq!(
                        String::from_utf8_lossy(&hand),
                        String::from_utf8_lossy(&derived),
                        "{}",
                        f.display()
                    );
                }
                ports += 1;
            }
        }
        assert!(ports > 50, "{ports}");
    }

    /// A target large enough for two formatting threads: every fixture's ports, repeated
    /// past the threshold, come out in order and byte for byte as one thread writes them.
    fn many_ports() -> Vec<PortVerdict> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("capture-fixtures");
        let one = crate::replay::replay_files(&[dir.join("crafted-encap.pcap")]).unwrap();
        assert!(!one.verdicts.is_empty());
        one.verdicts
            .iter()
            .cycle()
            .take(super::PARALLEL_PORTS * 2 + 77)
            .cloned()
            .collect()
    }

    #[test]
    fn two_threads_write_what_one_writes() {
        let verdicts = many_ports();
        let ip = verdicts[0].target.ip();
        let report = TargetReport {
            ip,
            name: None,
            verdicts: &verdicts,
            discovery: None,
        };
        let mut sink = JsonSink::new(Vec::new());
        sink.target(&report).unwrap();
        let parallel = sink.out;
        let mut sequential = Vec::new();
        super::format_chunk(&mut sequential, &verdicts, &mut Default::default(), false);
        assert_eq!(parallel.len(), sequential.len());
        assert!(parallel == sequential, "the two-thread output differs");
    }

    /// A writer that fails part way: the error comes back, and neither thread hangs.
    #[test]
    fn a_write_error_during_two_thread_formatting_is_returned() {
        struct Failing(usize);
        impl Write for Failing {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                if self.0 < b.len() {
                    return Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"));
                }
                self.0 -= b.len();
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let verdicts = many_ports();
        for budget in [0, 100_000, 1_000_000] {
            let report = TargetReport {
                ip: verdicts[0].target.ip(),
                name: None,
                verdicts: &verdicts,
                discovery: None,
            };
            let err = JsonSink::new(Failing(budget)).target(&report).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{budget}");
        }
    }
}
