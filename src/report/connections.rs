//! The per-connection view of a replay (`synack replay --connections`): one row per
//! connection attempt — client, source port, target, port, start time, state, reason,
//! responder, SYNs sent and a flag history — as Zeek's conn.log gives for real traffic.
//!
//! The history follows Zeek's `history` field: one letter per kind of packet, uppercase
//! from the client (the side that sent the SYN), lowercase from the other side, each
//! letter once per direction, in the order first seen: `S` SYN, `H` SYN/ACK, `A` pure ACK,
//! `D` data, `F` FIN, `R` RST, `T` a retransmitted SYN. ICMP errors have no letter (the
//! reason names them).

use std::fmt::Write as _;
use std::io::{self, Write};

use serde::Serialize;
use synack_core::exchange::{Dir, TracePacket};
use synack_core::frame::Timestamp;
use synack_core::verdict::ConnectionVerdict;

/// The letters one packet adds to the history, client's view (uppercase).
fn letters(p: &TracePacket, out: &mut Vec<char>) {
    let Some(f) = p.flags() else { return };
    if f.syn() && !f.ack() {
        out.push(if p.retransmission { 'T' } else { 'S' });
    } else if f.is_syn_ack() {
        out.push('H');
    }
    if p.payload_len > 0 {
        out.push('D');
    }
    if f.fin() {
        out.push('F');
    }
    if f.rst() {
        out.push('R');
    }
    if f.ack() && !f.syn() && !f.fin() && !f.rst() && p.payload_len == 0 {
        out.push('A');
    }
}

/// Zeek-style history of one attempt's packets: "ShADadFf", "Sr", "ST".
pub fn history(trace: &[TracePacket]) -> String {
    let mut seen_out: Vec<char> = Vec::new();
    let mut seen_in: Vec<char> = Vec::new();
    let mut s = String::new();
    let mut buf = Vec::with_capacity(4);
    for p in trace {
        buf.clear();
        letters(p, &mut buf);
        for &c in &buf {
            let (seen, c) = match p.dir {
                Dir::Out => (&mut seen_out, c),
                Dir::In => (&mut seen_in, c.to_ascii_lowercase()),
            };
            if !seen.contains(&c) {
                seen.push(c);
                s.push(c);
            }
        }
    }
    s
}

/// Seconds since the epoch with microseconds, as Zeek's `ts`.
fn epoch(ts: Timestamp) -> String {
    format!(
        "{}.{:06}",
        ts.0 / 1_000_000_000,
        (ts.0 % 1_000_000_000) / 1_000
    )
}

/// The table's header line.
/// (REASON is 19 wide: rows are written target by target under one header, so the
/// column cannot follow each target's longest reason as the port table's does;
/// "ack-implies-syn-ack" and "source-route-failed" fit.)
pub fn header() -> String {
    format!(
        "{:<17} {:<15} {:>5}  {:<15} {:>5}  {:<8} {:<19} {:<15} {:>4}  HISTORY",
        "START", "CLIENT", "SPORT", "TARGET", "PORT", "STATE", "REASON", "RESPONDER", "SYNS"
    )
}

/// One row of the table.
pub fn row(c: &ConnectionVerdict) -> String {
    let v = &c.verdict;
    let mut s = String::new();
    let _ = write!(
        s,
        "{:<17} {:<15} {:>5}  {:<15} {:>5}  {:<8} {:<19} {:<15} {:>4}  {}",
        epoch(v.started),
        c.client.ip(),
        c.client.port(),
        v.target.ip(),
        v.target.port(),
        v.state.as_str(),
        v.reason.name(),
        v.responder.as_str(),
        c.syns,
        history(&v.trace)
    );
    s
}

/// Writes the rows of one target as table lines.
pub fn write_rows(out: &mut dyn Write, rows: &[ConnectionVerdict]) -> io::Result<()> {
    for c in rows {
        writeln!(out, "{}", row(c))?;
    }
    Ok(())
}

/// One row as a JSON object: `{"type":"connection", "client": …}`.
#[derive(Serialize)]
pub struct ConnectionJson<'a, E: Serialize> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Start (the attempt's first packet), seconds since the epoch.
    pub ts: f64,
    pub client: std::net::IpAddr,
    pub sport: u16,
    pub target: std::net::IpAddr,
    pub port: u16,
    pub state: &'static str,
    pub reason: &'static str,
    pub responder: &'static str,
    /// SYNs the client sent (the first and its retransmissions).
    pub attempts: u32,
    pub history: String,
    pub evidence: E,
    #[serde(skip)]
    pub _row: std::marker::PhantomData<&'a ()>,
}

/// The JSON object of one row, with its evidence serialised by `evidence`.
pub fn json<'a, E: Serialize>(c: &'a ConnectionVerdict, evidence: E) -> ConnectionJson<'a, E> {
    let v = &c.verdict;
    ConnectionJson {
        kind: "connection",
        ts: (v.started.0 / 1_000) as f64 / 1e6,
        client: c.client.ip(),
        sport: c.client.port(),
        target: v.target.ip(),
        port: v.target.port(),
        state: v.state.as_str(),
        reason: v.reason.name(),
        responder: v.responder.as_str(),
        attempts: c.syns,
        history: history(&v.trace),
        evidence,
        _row: std::marker::PhantomData,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synack_core::decode::TcpFlags;
    use synack_core::exchange::PacketKind;

    fn p(dir: Dir, flags: u8, len: u32, rx: bool) -> TracePacket {
        TracePacket {
            ts: Timestamp(0),
            dir,
            kind: PacketKind::Tcp(TcpFlags(flags)),
            from: "198.18.1.1".parse().unwrap(),
            ttl: 64,
            dscp: 0,
            ip_id: None,
            flow_label: None,
            seq: 0,
            ack: 0,
            win: 0,
            scanner_port: 40000,
            client: "198.18.1.1".parse().unwrap(),
            retransmission: rx,
            cut: false,
            ae: false,
            payload_len: len,
            early: false,
        }
    }

    #[test]
    fn history_reads_as_zeeks() {
        const S: u8 = TcpFlags::SYN;
        const A: u8 = TcpFlags::ACK;
        const F: u8 = TcpFlags::FIN;
        const R: u8 = TcpFlags::RST;
        const P: u8 = TcpFlags::PSH;
        let full = [
            p(Dir::Out, S, 0, false),
            p(Dir::In, S | A, 0, false),
            p(Dir::Out, A, 0, false),
            p(Dir::Out, P | A, 6, false),
            p(Dir::In, A, 0, false),
            p(Dir::Out, F | A, 0, false),
            p(Dir::In, F | A, 0, false),
            p(Dir::Out, A, 0, false),
        ];
        assert_eq!(history(&full), "ShADaFf");
        assert_eq!(
            history(&[p(Dir::Out, S, 0, false), p(Dir::In, R | A, 0, false)]),
            "Sr"
        );
        assert_eq!(
            history(&[p(Dir::Out, S, 0, false), p(Dir::Out, S, 0, true)]),
            "ST"
        );
    }
}
