//! The port object of JSON Lines, written by hand: the hot path of `--json` (a
//! full-range scan writes 65,535 of them, each with its packets). serde_json spent most
//! of its time escaping the same keys and sentences again for every port; here keys are
//! literals, evidence sentences are escaped once per run (the phrasebook), addresses are
//! formatted once per verdict, and the object is built in a buffer the sink reuses, so
//! no allocation happens per port. The bytes are exactly what the derived serialisation
//! they replaced writes (kept as the oracle of a test in `json.rs`); floats still go through
//! serde_json, so they print the same.

use std::cell::RefCell;
use std::io::Write;
use std::net::IpAddr;

use rustc_hash::FxHashMap;
use synack_core::exchange::{Dir, PacketKind, TracePacket};
use synack_core::verdict::{Evidence, PortVerdict};

use super::words;

/// Each distinct evidence fact's sentence, as an escaped JSON string, worded once (the
/// book is emptied if a capture brings too many distinct ones).
#[derive(Default)]
pub struct Phrasebook(RefCell<FxHashMap<Evidence, Box<[u8]>>>);

const PHRASEBOOK_MAX: usize = 4096;

impl Phrasebook {
    /// Appends `e`'s sentence as a JSON string.
    pub fn write(&self, out: &mut Vec<u8>, e: &Evidence) {
        let mut book = self.0.borrow_mut();
        if !book.contains_key(e) {
            if book.len() >= PHRASEBOOK_MAX {
                book.clear();
            }
            let said = words::EvidenceWords(e).to_string();
            let quoted = serde_json::to_vec(&said).expect("a string serialises");
            book.insert(*e, quoted.into_boxed_slice());
        }
        out.extend_from_slice(&book[e]);
    }
}

/// What the writer formats once and reuses: the addresses met lately (a port's packets
/// name the scanner, the target and the odd router, and the next port the same) and the
/// TCP flag labels.
pub struct Formatted {
    addrs: Vec<(IpAddr, String)>,
    next: usize,
    /// "SYN/ACK", … by flag byte and AE bit.
    flags: Vec<Option<Box<str>>>,
}

const ADDRS_KEPT: usize = 16;

impl Default for Formatted {
    fn default() -> Self {
        Formatted {
            addrs: Vec::with_capacity(ADDRS_KEPT),
            next: 0,
            flags: vec![None; 512],
        }
    }
}

impl Formatted {
    fn addr(&mut self, out: &mut Vec<u8>, ip: IpAddr) {
        if let Some((_, s)) = self.addrs.iter().find(|(a, _)| *a == ip) {
            out.extend_from_slice(s.as_bytes());
            return;
        }
        let s = ip.to_string();
        out.extend_from_slice(s.as_bytes());
        if self.addrs.len() < ADDRS_KEPT {
            self.addrs.push((ip, s));
        } else {
            self.addrs[self.next] = (ip, s);
            self.next = (self.next + 1) % ADDRS_KEPT;
        }
    }

    fn tcp_flags(&mut self, out: &mut Vec<u8>, f: synack_core::decode::TcpFlags, ae: bool) {
        let slot = &mut self.flags[usize::from(f.0) | usize::from(ae) << 8];
        let label = slot.get_or_insert_with(|| f.with_ae(ae).to_string().into_boxed_str());
        out.extend_from_slice(label.as_bytes());
    }
}

fn num(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn boolean(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// Milliseconds since the port's first packet, rounded to the microsecond.
pub fn t_ms(p: &TracePacket, v: &PortVerdict) -> f64 {
    (p.ts.since(v.started) as f64 / 1e3).round() / 1e3
}

/// Appends one port object (without the newline) to `out`.
pub fn write_port(
    out: &mut Vec<u8>,
    v: &PortVerdict,
    book: &Phrasebook,
    absolute: bool,
    addrs: &mut Formatted,
) {
    out.extend_from_slice(b"{\"type\":\"port\",\"target\":\"");
    addrs.addr(out, v.target.ip());
    out.extend_from_slice(b"\",\"port\":");
    num(out, v.target.port());
    out.extend_from_slice(b",\"state\":\"");
    out.extend_from_slice(v.state.as_str().as_bytes());
    out.extend_from_slice(b"\",\"reason\":\"");
    out.extend_from_slice(v.reason.name().as_bytes());
    out.extend_from_slice(b"\",\"responder\":\"");
    out.extend_from_slice(v.responder.as_str().as_bytes());
    out.extend_from_slice(b"\",\"evidence\":[");
    for (i, e) in v.evidence.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        book.write(out, e);
    }
    out.extend_from_slice(b"],\"observed\":");
    boolean(out, v.observed);
    out.extend_from_slice(b",\"attempts\":");
    num(out, v.attempts);
    out.extend_from_slice(b",\"trace\":[");
    for (i, p) in v.trace.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_packet(out, p, v, absolute, addrs);
    }
    out.push(b']');
    if let Some(note) = &v.note {
        out.extend_from_slice(b",\"note\":");
        let said = words::NoteWords(note).to_string();
        serde_json::to_writer(&mut *out, &said).expect("a string serialises");
    }
    if !v.outcomes.is_empty() {
        out.extend_from_slice(b",\"outcomes\":{");
        let mut by_reason: Vec<(&'static str, u32)> = Vec::new();
        for o in &v.outcomes {
            match by_reason.iter_mut().find(|(r, _)| *r == o.reason.name()) {
                Some((_, n)) => *n += o.count,
                None => by_reason.push((o.reason.name(), o.count)),
            }
        }
        for (i, (reason, n)) in by_reason.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(reason.as_bytes());
            out.extend_from_slice(b"\":");
            num(out, *n);
        }
        out.push(b'}');
    }
    if v.left_out != 0 {
        out.extend_from_slice(b",\"left_out\":");
        num(out, v.left_out);
    }
    out.push(b'}');
}

fn write_packet(
    out: &mut Vec<u8>,
    p: &TracePacket,
    v: &PortVerdict,
    absolute: bool,
    addrs: &mut Formatted,
) {
    out.extend_from_slice(match p.dir {
        Dir::Out => b"{\"dir\":\"out\",\"flags\":\"",
        Dir::In => b"{\"dir\":\"in\",\"flags\":\"",
    });
    match p.kind {
        PacketKind::Tcp(f) => addrs.tcp_flags(out, f, p.ae),
        PacketKind::Icmp(k) => {
            let _ = write!(out, "{k}");
        }
        PacketKind::Ping(k) => out.extend_from_slice(k.name().as_bytes()),
    }
    out.extend_from_slice(b"\",\"t_ms\":");
    serde_json::to_writer(&mut *out, &t_ms(p, v)).expect("a float serialises");
    if absolute {
        let _ = write!(out, ",\"ts\":\"{}\"", super::run::Rfc3339(p.ts));
    }
    out.extend_from_slice(b",\"ttl\":");
    num(out, p.ttl);
    out.extend_from_slice(b",\"seq\":");
    num(out, p.seq);
    out.extend_from_slice(b",\"ack\":");
    num(out, p.ack);
    out.extend_from_slice(b",\"win\":");
    num(out, p.win);
    out.extend_from_slice(b",\"from\":\"");
    addrs.addr(out, p.from);
    out.extend_from_slice(b"\",\"client\":\"");
    addrs.addr(out, p.client);
    out.extend_from_slice(b"\",\"sport\":");
    num(out, p.scanner_port);
    out.extend_from_slice(b",\"dscp\":");
    num(out, p.dscp);
    out.extend_from_slice(b",\"retransmission\":");
    boolean(out, p.retransmission);
    if p.cut {
        out.extend_from_slice(b",\"cut\":true");
    }
    if p.early {
        out.extend_from_slice(b",\"early\":true");
    }
    if let Some(id) = p.ip_id {
        out.extend_from_slice(b",\"ip_id\":");
        num(out, id);
    }
    if let Some(label) = p.flow_label {
        out.extend_from_slice(b",\"flow_label\":");
        num(out, label);
    }
    out.push(b'}');
}
