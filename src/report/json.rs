//! JSON Lines: one object per port, then one summary object. Serialised straight from
//! borrowed structs: a full-range scan writes 65,535 objects.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Write};
use std::net::IpAddr;

use rustc_hash::FxHashMap;
use serde::{Serialize, Serializer};

use super::words;
use super::{RunSummary, ScanReport, Sink, TargetReport};
use synack_core::exchange::{Dir, PacketKind, TracePacket};
use synack_core::verdict::{Evidence, Note, PortVerdict};

/// A packet's label ("SYN/ACK", "ICMP port-unreach") written without an allocation.
struct Label(PacketKind);

impl Serialize for Label {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            PacketKind::Tcp(f) => s.collect_str(&f),
            PacketKind::Icmp(k) => s.collect_str(&k),
        }
    }
}

#[derive(Serialize)]
struct PacketJson {
    dir: &'static str,
    flags: Label,
    t_ms: f64,
    ttl: u8,
    seq: u32,
    ack: u32,
    win: u16,
    from: IpAddr,
    sport: u16,
    dscp: u8,
    retransmission: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_id: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow_label: Option<u32>,
}

/// Milliseconds since the port's first packet, rounded to the microsecond.
fn t_ms(p: &TracePacket, v: &PortVerdict) -> f64 {
    (p.ts.since(v.started) as f64 / 1e3).round() / 1e3
}

struct Trace<'a>(&'a PortVerdict);

impl Serialize for Trace<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        s.collect_seq(v.trace.iter().map(|p| PacketJson {
            dir: match p.dir {
                Dir::Out => "out",
                Dir::In => "in",
            },
            flags: Label(p.kind),
            t_ms: t_ms(p, v),
            ttl: p.ttl,
            seq: p.seq,
            ack: p.ack,
            win: p.win,
            from: p.from,
            sport: p.scanner_port,
            dscp: p.dscp,
            retransmission: p.retransmission,
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
pub struct Phrasebook(RefCell<FxHashMap<Evidence, Box<str>>>);

const PHRASEBOOK_MAX: usize = 4096;

/// Evidence facts as their sentences.
struct EvidenceJson<'a>(&'a [Evidence], &'a Phrasebook);

impl Serialize for EvidenceJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|e| Phrase(e, self.1)))
    }
}

struct Phrase<'a>(&'a Evidence, &'a Phrasebook);

impl Serialize for Phrase<'_> {
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
    evidence: EvidenceJson<'a>,
    observed: bool,
    attempts: u32,
    trace: Trace<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<NoteJson<'a>>,
}

fn port_json<'a>(v: &'a PortVerdict, book: &'a Phrasebook) -> PortJson<'a> {
    PortJson {
        kind: "port",
        target: Target(v.target.ip()),
        port: v.target.port(),
        state: v.state.as_str(),
        reason: v.reason.name(),
        responder: v.responder.as_str(),
        evidence: EvidenceJson(&v.evidence, book),
        observed: v.observed,
        attempts: v.attempts,
        trace: Trace(v),
        note: v.note.as_ref().map(NoteJson),
    }
}

#[derive(Serialize)]
struct SummaryJson<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    ports: usize,
    /// Only with host discovery: replays and single-target scans keep their shape.
    #[serde(skip_serializing_if = "is_zero")]
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
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One port as a JSON value (for tests and embedding).
pub fn port_object(v: &PortVerdict) -> serde_json::Value {
    serde_json::to_value(port_json(v, &Phrasebook::default())).expect("plain data serialises")
}

pub fn write(out: &mut dyn Write, report: &ScanReport) -> io::Result<()> {
    report.write_to(&mut JsonSink::new(out))
}

/// JSON Lines as a streaming sink: each target's port objects as it is final, then the
/// summary object.
pub struct JsonSink<W: Write> {
    out: W,
    book: Phrasebook,
}

impl<W: Write> JsonSink<W> {
    pub fn new(out: W) -> Self {
        JsonSink {
            out,
            book: Phrasebook::default(),
        }
    }
}

impl<W: Write> Sink for JsonSink<W> {
    fn target(&mut self, t: &TargetReport<'_>) -> io::Result<()> {
        for v in t.verdicts {
            serde_json::to_writer(&mut self.out, &port_json(v, &self.book))?;
            self.out.write_all(b"\n")?;
        }
        self.out.flush()
    }

    /// `{"type":"host","target":…,"state":"up"|"down",…}`, one per host discovered.
    fn host(&mut self, h: &super::HostReport<'_>) -> io::Result<()> {
        let probes: Vec<_> = h.probes.iter().map(|p| p.name()).collect();
        let v = match h.up {
            Some(p) => serde_json::json!({
                "type": "host", "target": h.ip, "state": "up", "probe": p.probe.name(),
                "reason": p.answer.name(), "rtt_ms": p.rtt.as_secs_f64() * 1e3, "probes": probes,
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
        };
        serde_json::to_writer(&mut self.out, &summary)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}
