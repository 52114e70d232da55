//! JSON Lines: one object per port, then one summary object.

use std::io::{self, Write};

use serde_json::{Value, json};

use super::{ScanReport, packet_label};
use crate::exchange::{Dir, TracePacket};
use crate::verdict::{PortVerdict, State};

fn packet(p: &TracePacket, v: &PortVerdict) -> Value {
    let mut o = json!({
        "dir": match p.dir { Dir::Out => "out", Dir::In => "in" },
        "flags": packet_label(p),
        "t_ms": (p.ts.since(v.started) as f64 / 1e6 * 1000.0).round() / 1000.0,
        "ttl": p.ttl,
        "seq": p.seq,
        "ack": p.ack,
        "win": p.win,
        "from": p.from.to_string(),
        "sport": p.scanner_port,
        "dscp": p.dscp,
        "retransmission": p.retransmission,
    });
    if let Some(id) = p.ip_id {
        o["ip_id"] = json!(id);
    }
    if let Some(label) = p.flow_label {
        o["flow_label"] = json!(label);
    }
    o
}

/// One port as a JSON object.
pub fn port_object(v: &PortVerdict) -> Value {
    let mut o = json!({
        "type": "port",
        "target": v.target.ip().to_string(),
        "port": v.target.port(),
        "state": v.state.as_str(),
        "reason": v.reason,
        "responder": v.responder.as_str(),
        "evidence": v.evidence,
        "observed": v.observed,
        "attempts": v.attempts,
        "trace": v.trace.iter().map(|p| packet(p, v)).collect::<Vec<_>>(),
    });
    if let Some(note) = &v.note {
        o["note"] = json!(note);
    }
    o
}

pub fn summary_object(report: &ScanReport) -> Value {
    json!({
        "type": "summary",
        "ports": report.verdicts.len(),
        "open": report.count(State::Open),
        "closed": report.count(State::Closed),
        "filtered": report.count(State::Filtered),
        "elapsed_s": report.elapsed.as_secs_f64(),
        "captured": report.captured,
        "capture_drops": report.capture_drops,
        "interrupted": report.interrupted,
        "warnings": report.warnings,
    })
}

pub fn write(out: &mut dyn Write, report: &ScanReport) -> io::Result<()> {
    for v in &report.verdicts {
        serde_json::to_writer(&mut *out, &port_object(v))?;
        out.write_all(b"\n")?;
    }
    serde_json::to_writer(&mut *out, &summary_object(report))?;
    out.write_all(b"\n")
}
