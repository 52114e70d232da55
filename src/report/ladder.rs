//! Ladder diagrams: one port's exchange as a sequence diagram, time running down.
//!
//! ```text
//! scanner 198.18.1.1:40086                                    target 198.18.2.1:86
//!                                  on-path device (1 hop closer)
//!        |                                       |                               |
//! +0.0ms |-- SYN seq=0 ttl=64 dscp=AF11 ---------------------------------------->|
//! +0.1ms |<- RST/ACK seq=0 ack=1 ttl=64 dscp=0 --|                               |
//! ```
//!
//! The scanner's lifeline is on the left, the target's on the right. A third lifeline
//! appears in the middle when something else answered: an ICMP error from a router's
//! address, or a RST the verdict attributes to a device on the path (it carries the
//! target's address, so the column is named from the evidence instead).
//!
//! Sequence numbers are relative, as Wireshark shows them: each attempt's first SYN is
//! seq 0 and the target's SYN/ACK (or, without one, its first segment) is its seq 0, so a
//! RST/ACK answering a SYN reads `ack=1` (RFC 9293 §3.5.2: the reset acknowledges the SYN).
//! An ICMP error shows the sequence number it quotes, when it quotes one. DSCP is shown
//! when the scan marked its SYNs, and IPv6 flow labels on answers: they are the evidence
//! that tells a stack's RST from a forged one. Retransmitted SYNs are marked
//! "(retransmission)", new attempts from another source port "(retry from :PORT)",
//! packets the capture stored before their SYN "(stored before its SYN)", and pauses of
//! half a second or more get a dotted row.
//!
//! Pure: a verdict in, a string out, whatever the trace holds. No line is wider than
//! `width` columns (every glyph used here is one column wide), and colour escapes appear
//! only with `color`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use super::words::{Dscp, HopsCloser};
use super::{fmt_secs, packet_label};
use synack_core::exchange::{Dir, PacketKind, TracePacket};
use synack_core::verdict::{PortVerdict, Reason, Responder};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LadderOptions {
    /// Box-drawing lines and arrows (─ → ← │); otherwise plain ASCII (-- > < |).
    pub unicode: bool,
    /// ANSI colours: outgoing cyan, incoming green, RST red, ICMP yellow.
    pub color: bool,
    /// Maximum line width in columns.
    pub width: usize,
}

impl Default for LadderOptions {
    fn default() -> Self {
        LadderOptions {
            unicode: true,
            color: false,
            width: 80,
        }
    }
}

/// Narrower requests are laid out at this width, then cut to the requested one.
const MIN_LAYOUT: usize = 40;
/// Consecutive packets further apart than this get a dotted row between them.
const GAP_NANOS: u64 = 500_000_000;

struct Glyphs {
    life: char,
    gap: char,
    shaft: char,
    right: char,
    left: char,
    ellipsis: &'static str,
}

const UNICODE: Glyphs = Glyphs {
    life: '│',
    gap: '┊',
    shaft: '─',
    right: '→',
    left: '←',
    ellipsis: "…",
};

const ASCII: Glyphs = Glyphs {
    life: '|',
    gap: ':',
    shaft: '-',
    right: '>',
    left: '<',
    ellipsis: "...",
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Paint {
    Plain,
    Out,
    In,
    Reset,
    Icmp,
}

impl Paint {
    fn sgr(self) -> &'static str {
        match self {
            Paint::Plain => "\x1b[0m",
            Paint::Out => "\x1b[36m",
            Paint::In => "\x1b[32m",
            Paint::Reset => "\x1b[31m",
            Paint::Icmp => "\x1b[33m",
        }
    }
}

/// One output line as cells, so text can be placed at columns and cut at the width.
struct Row {
    cells: Vec<(char, Paint)>,
}

impl Row {
    fn blank(width: usize) -> Self {
        Row {
            cells: vec![(' ', Paint::Plain); width],
        }
    }

    /// Writes `text` from `col` on; what falls past the row's end is dropped.
    fn put(&mut self, col: usize, text: &str, paint: Paint) {
        for (cell, c) in self.cells.iter_mut().skip(col).zip(text.chars()) {
            *cell = (c, paint);
        }
    }

    fn render(&self, limit: usize, color: bool, out: &mut String) {
        let cells = &self.cells[..self.cells.len().min(limit)];
        let end = cells
            .iter()
            .rposition(|(c, _)| *c != ' ')
            .map_or(0, |i| i + 1);
        let mut current = Paint::Plain;
        for &(c, paint) in &cells[..end] {
            if color && paint != current {
                out.push_str(paint.sgr());
                current = paint;
            }
            out.push(c);
        }
        if current != Paint::Plain {
            out.push_str(Paint::Plain.sgr());
        }
        out.push('\n');
    }
}

/// `s` cut to at most `n` columns, marked with an ellipsis when cut.
fn fit(s: &str, n: usize, g: &Glyphs) -> String {
    let len = s.chars().count();
    if len <= n {
        return s.to_string();
    }
    let ell = g.ellipsis.chars().count();
    if n <= ell {
        return s.chars().take(n).collect();
    }
    let mut out: String = s.chars().take(n - ell).collect();
    out.push_str(g.ellipsis);
    out
}

fn width_of(s: &str) -> usize {
    s.chars().count()
}

/// Which lifeline an incoming packet leaves from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Target,
    Middle,
}

/// One arrow to draw.
struct Arrow {
    offset: u64,
    dir: Dir,
    end: End,
    text: String,
    paint: Paint,
}

/// Per-attempt base sequence numbers, for Wireshark-style relative numbers.
#[derive(Default)]
struct Bases {
    ours: Option<u32>,
    theirs: Option<u32>,
    syn_ack_seen: bool,
}

fn rel(n: u32, base: Option<u32>) -> u32 {
    n.wrapping_sub(base.unwrap_or(0))
}

fn dscp_short(d: u8) -> String {
    let name = Dscp(d).to_string();
    if d == 0 || name.starts_with("DSCP") {
        d.to_string()
    } else {
        name
    }
}

/// The middle column's subject, when there is one.
struct Middle {
    label: String,
    /// The third party's own address (None for a RST forged with the target's).
    addr: Option<IpAddr>,
    /// RSTs from the target's address are drawn from the middle (verdict: middlebox).
    forged_rst: bool,
}

fn scanner_ip(v: &PortVerdict) -> Option<IpAddr> {
    v.trace.iter().find(|p| p.dir == Dir::Out).map(|p| p.from)
}

fn middle_of(v: &PortVerdict, scanner: Option<IpAddr>) -> Option<Middle> {
    let foreign = v
        .trace
        .iter()
        .find(|p| p.dir == Dir::In && p.from != v.target.ip() && Some(p.from) != scanner)
        .map(|p| p.from);
    let forged_rst = v.responder == Responder::Middlebox && v.reason == Reason::Reset;
    if let Some(addr) = foreign {
        return Some(Middle {
            label: format!("router {addr}"),
            addr: Some(addr),
            forged_rst,
        });
    }
    if forged_rst {
        let label = match v.hops_closer() {
            Some(n) => format!("on-path device ({})", HopsCloser(n)),
            None => "on-path device".to_string(),
        };
        return Some(Middle {
            label,
            addr: None,
            forged_rst,
        });
    }
    None
}

fn is_syn_only(p: &TracePacket) -> bool {
    p.flags().is_some_and(|f| f.is_syn_only())
}

/// Labels every packet of the trace, in order. `ports` (a host's discovery ladder, whose
/// connect() probes went to several ports) names each TCP packet's target port by the
/// scanner's port of its attempt.
fn arrows(v: &PortVerdict, middle: Option<&Middle>, ports: &[(u16, u16)]) -> Vec<Arrow> {
    let probe_dscp = v
        .trace
        .iter()
        .find(|p| p.dir == Dir::Out && is_syn_only(p))
        .map_or(0, |p| p.dscp);
    let mut bases: BTreeMap<u16, Bases> = BTreeMap::new();
    // An answer stored (and stamped) before its SYN counts from that SYN's ISN too.
    for p in v
        .trace
        .iter()
        .filter(|p| p.dir == Dir::Out && is_syn_only(p))
    {
        bases.entry(p.scanner_port).or_insert(Bases {
            ours: Some(p.seq),
            ..Bases::default()
        });
    }
    let mut previous_syn: Option<(IpAddr, u16)> = None;
    // A host's ladder: target ports that had a SYN already (a second is discovery's retry).
    let mut syn_ports: Vec<u16> = Vec::new();
    let mut out = Vec::with_capacity(v.trace.len());
    for p in &v.trace {
        let b = bases.entry(p.scanner_port).or_default();
        let mut text = packet_label(p);
        let host_port = ports
            .iter()
            .find(|(scanner, _)| *scanner == p.scanner_port)
            .map(|&(_, port)| port)
            .filter(|_| matches!(p.kind, PacketKind::Tcp(_)));
        if let Some(port) = host_port {
            let _ = match p.dir {
                Dir::Out => write!(text, " to :{port}"),
                Dir::In => write!(text, " from :{port}"),
            };
        }
        let mut end = End::Target;
        match (p.dir, p.kind) {
            (Dir::Out, PacketKind::Tcp(f)) => {
                let mut mark = None;
                if let (true, Some(port)) = (f.is_syn_only(), host_port) {
                    // Each connect() probe is an attempt of its own; a second SYN to a
                    // port is the next round.
                    if syn_ports.contains(&port) {
                        mark = Some("(retry)".to_string());
                    }
                    syn_ports.push(port);
                    *b = Bases {
                        ours: Some(p.seq),
                        ..Bases::default()
                    };
                } else if f.is_syn_only() {
                    if p.retransmission {
                        mark = Some("(retransmission)".to_string());
                    } else {
                        mark = match previous_syn {
                            None => None,
                            // Another client's SYN is its own attempt, not a retry.
                            Some((client, _)) if client != p.client => Some(format!(
                                "(client {})",
                                SocketAddr::new(p.client, p.scanner_port)
                            )),
                            Some((_, port)) if port != p.scanner_port => {
                                Some(format!("(retry from :{})", p.scanner_port))
                            }
                            Some(_) => Some("(new attempt)".to_string()),
                        };
                        // A new attempt on this port: its answers count from scratch.
                        *b = Bases {
                            ours: Some(p.seq),
                            ..Bases::default()
                        };
                    }
                    previous_syn = Some((p.client, p.scanner_port));
                }
                let _ = write!(text, " seq={}", rel(p.seq, b.ours));
                if f.ack() {
                    // A socket connected to itself acknowledges its own ISN.
                    let self_connect = p.from == v.target.ip() && p.scanner_port == v.target.port();
                    let base = if self_connect { b.ours } else { b.theirs };
                    let _ = write!(text, " ack={}", rel(p.ack, base));
                }
                let _ = write!(text, " ttl={}", p.ttl);
                if probe_dscp != 0 {
                    let _ = write!(text, " dscp={}", dscp_short(p.dscp));
                }
                if let Some(m) = mark {
                    text.push(' ');
                    text.push_str(&m);
                }
            }
            (Dir::In, PacketKind::Tcp(f)) => {
                // The first SYN/ACK carries the target's ISN; before one, the first
                // segment from its side stands in, as in Wireshark.
                if f.is_syn_ack() && !b.syn_ack_seen {
                    b.syn_ack_seen = true;
                    b.theirs = Some(p.seq);
                }
                b.theirs.get_or_insert(p.seq);
                let _ = write!(text, " seq={}", rel(p.seq, b.theirs));
                if f.ack() {
                    let _ = write!(text, " ack={}", rel(p.ack, b.ours));
                }
                let _ = write!(text, " ttl={}", p.ttl);
                if probe_dscp != 0 {
                    let _ = write!(text, " dscp={}", dscp_short(p.dscp));
                }
                if let Some(label) = p.flow_label {
                    let _ = write!(text, " flow=0x{label:05x}");
                }
                if f.rst() && middle.is_some_and(|m| m.forged_rst) && p.from == v.target.ip() {
                    end = End::Middle;
                }
            }
            (_, PacketKind::Icmp(_)) => {
                // The quoted sequence number, when the error quoted enough to hold one.
                if p.seq != 0 {
                    let _ = write!(text, " seq={}", rel(p.seq, b.ours));
                }
                let _ = write!(text, " ttl={}", p.ttl);
            }
            // Host discovery: identifier and sequence number as sent, as ping shows them.
            (_, PacketKind::Ping(_)) => {
                let _ = write!(
                    text,
                    " id=0x{:04x} seq={} ttl={}",
                    p.scanner_port, p.seq, p.ttl
                );
            }
        }
        if p.dir == Dir::In && p.from != v.target.ip() {
            if let Some(m) = middle.filter(|m| m.addr.is_some()) {
                end = End::Middle;
                if m.addr != Some(p.from) {
                    let _ = write!(text, " from {}", p.from);
                }
            } else {
                let _ = write!(text, " from {}", p.from);
            }
        }
        if p.early {
            text.push_str(" (stored before its SYN)");
        }
        let paint = match (p.dir, p.kind) {
            (Dir::Out, _) => Paint::Out,
            (Dir::In, PacketKind::Icmp(_) | PacketKind::Ping(_)) => Paint::Icmp,
            (Dir::In, PacketKind::Tcp(f)) if f.rst() => Paint::Reset,
            (Dir::In, PacketKind::Tcp(_)) => Paint::In,
        };
        out.push(Arrow {
            offset: p.ts.since(v.started),
            dir: p.dir,
            end,
            text,
            paint,
        });
    }
    out
}

/// Column positions of the lifelines.
struct Layout {
    width: usize,
    left: usize,
    middle: Option<usize>,
    right: usize,
}

impl Layout {
    fn lifelines(&self, c: char) -> Row {
        let mut row = Row::blank(self.width);
        let mut s = [0u8; 4];
        let c: &str = c.encode_utf8(&mut s);
        row.put(self.left, c, Paint::Plain);
        if let Some(m) = self.middle {
            row.put(m, c, Paint::Plain);
        }
        row.put(self.right, c, Paint::Plain);
        row
    }

    fn column(&self, end: End) -> usize {
        match end {
            End::Target => self.right,
            End::Middle => self.middle.unwrap_or(self.right),
        }
    }
}

/// Draws the arrow of `a` on `row`; returns its label when it did not fit inside.
fn draw(row: &mut Row, layout: &Layout, a: &Arrow, g: &Glyphs) -> Option<String> {
    let far = layout.column(a.end);
    let (lo, hi) = (layout.left, far);
    let inner = hi.saturating_sub(lo + 1);
    if inner == 0 {
        return Some(a.text.clone());
    }
    let len = width_of(&a.text);
    let shafts = |n: usize| -> String { std::iter::repeat_n(g.shaft, n).collect() };
    let (body, spilled) = if inner >= len + 6 {
        let fill = shafts(inner - len - 5);
        let body = match a.dir {
            Dir::Out => format!("{} {} {fill}{}", shafts(2), a.text, g.right),
            Dir::In => format!("{}{fill} {} {}", g.left, a.text, shafts(2)),
        };
        (body, None)
    } else {
        let body = match a.dir {
            Dir::Out => format!("{}{}", shafts(inner - 1), g.right),
            Dir::In => format!("{}{}", g.left, shafts(inner - 1)),
        };
        (body, Some(a.text.clone()))
    };
    row.put(lo + 1, &body, a.paint);
    spilled
}

/// The diagram of one port's exchange.
pub fn ladder(v: &PortVerdict, opts: &LadderOptions) -> String {
    draw_ladder(v, opts, None)
}

/// The diagram of one host's discovery exchange: its echo and timestamp messages and
/// the connect() probes' packets, in capture order. `ports` pairs each connect() probe's
/// local port with the port it went to (80, 443).
pub fn host_ladder(
    ip: IpAddr,
    packets: Vec<TracePacket>,
    ports: &[(u16, u16)],
    opts: &LadderOptions,
) -> String {
    // The packets in a verdict's frame, to draw them as a port's are; the drawing reads
    // only the packets (and the host's own closing line replaces a port's).
    let v = PortVerdict {
        target: SocketAddr::new(ip, 0),
        state: synack_core::verdict::State::Filtered,
        reason: Reason::NoResponse,
        responder: Responder::Unknown,
        evidence: Default::default(),
        started: packets.first().map(|p| p.ts).unwrap_or_default(),
        trace: packets,
        attempts: 0,
        observed: true,
        note: None,
        outcomes: Vec::new(),
        left_out: 0,
    };
    draw_ladder(&v, opts, Some(ports))
}

fn draw_ladder(v: &PortVerdict, opts: &LadderOptions, host: Option<&[(u16, u16)]>) -> String {
    let g = if opts.unicode { &UNICODE } else { &ASCII };
    let width = opts.width.max(MIN_LAYOUT);
    let scanner = scanner_ip(v);
    let middle = middle_of(v, scanner);
    let arrows = arrows(v, middle.as_ref(), host.unwrap_or_default());

    let times: Vec<String> = arrows
        .iter()
        .map(|a| format!("+{}", fmt_secs(a.offset)))
        .collect();
    let gutter = times.iter().map(|t| width_of(t)).max().unwrap_or(6).max(6);
    // Keep at least a few columns of diagram even for absurd offsets.
    let gutter = gutter.min(width / 4);
    let left = gutter + 1;
    let right = width - 1;
    let middle_col = middle.as_ref().map(|_| {
        let need = arrows
            .iter()
            .filter(|a| a.end == End::Middle)
            .map(|a| width_of(&a.text) + 6)
            .max()
            .unwrap_or(0);
        (left + 1 + need)
            .max((left + right) / 2)
            .min(right.saturating_sub(8))
            .max(left + 2)
    });
    let layout = Layout {
        width,
        left,
        middle: middle_col,
        right,
    };

    let mut rows: Vec<Row> = Vec::new();
    // Header: scanner on the left, target on the right, the third party centred over its
    // lifeline (on a line of its own when the three do not fit on one).
    let first_port = v
        .trace
        .iter()
        .find(|p| p.dir == Dir::Out && is_syn_only(p))
        .or(v.trace.first())
        .map(|p| p.scanner_port);
    // A host's ladder spans several attempts: the scanner is named without a port.
    let first_port = first_port.filter(|_| host.is_none());
    let scanner_label = match (scanner, first_port) {
        (Some(ip), Some(port)) => format!("scanner {}", SocketAddr::new(ip, port)),
        (None, Some(port)) => format!("scanner :{port}"),
        (Some(ip), None) => format!("scanner {ip}"),
        (None, None) => "scanner".to_string(),
    };
    let target_label = match host {
        Some(_) => format!("host {}", v.target.ip()),
        None => format!("target {}", v.target),
    };
    let sl = width_of(&scanner_label);
    let tl = width_of(&target_label);
    let mut head = Row::blank(width);
    if sl + 2 + tl <= width {
        head.put(0, &scanner_label, Paint::Plain);
        head.put(width - tl, &target_label, Paint::Plain);
        rows.push(head);
    } else {
        head.put(0, &fit(&scanner_label, width, g), Paint::Plain);
        rows.push(head);
        let mut second = Row::blank(width);
        let t = fit(&target_label, width, g);
        second.put(width - width_of(&t), &t, Paint::Plain);
        rows.push(second);
    }
    if let (Some(m), Some(mcol)) = (&middle, middle_col) {
        let label = fit(&m.label, width, g);
        let ml = width_of(&label);
        let start = mcol.saturating_sub(ml / 2).min(width - ml);
        let fits_inline =
            rows.len() == 1 && start >= sl + 2 && start + ml + 2 <= width.saturating_sub(tl);
        if fits_inline {
            rows[0].put(start, &label, Paint::Plain);
        } else {
            let mut row = Row::blank(width);
            row.put(start, &label, Paint::Plain);
            rows.push(row);
        }
    }
    rows.push(layout.lifelines(g.life));

    let mut previous: Option<u64> = None;
    for (a, time) in arrows.iter().zip(&times) {
        if previous.is_some_and(|t| a.offset.saturating_sub(t) >= GAP_NANOS) {
            rows.push(layout.lifelines(g.gap));
        }
        previous = Some(a.offset);
        let mut row = layout.lifelines(g.life);
        let t = fit(time, gutter, g);
        row.put(gutter - width_of(&t), &t, Paint::Plain);
        let spilled = draw(&mut row, &layout, a, g);
        rows.push(row);
        if let Some(text) = spilled {
            // Beside the arrow's far end when there is room, else on a line of its own.
            let far = layout.column(a.end);
            let row = rows.last_mut().expect("pushed above");
            if far + 2 + width_of(&text) <= width {
                row.put(far + 2, &text, a.paint);
            } else {
                let mut extra = layout.lifelines(g.life);
                let col = left + 2;
                extra.put(col, &fit(&text, width - col, g), a.paint);
                rows.push(extra);
            }
        }
    }

    let closing = match host {
        Some(_) => host_footer(v, &arrows, g),
        None => footer(v, &arrows, g),
    };
    for line in closing {
        let mut row = layout.lifelines(g.life);
        let col = left + 2;
        row.put(col, &fit(&line, width - col, g), Paint::Plain);
        rows.push(row);
    }

    let mut out = String::new();
    for row in &rows {
        row.render(opts.width, opts.color, &mut out);
    }
    out
}

/// A host's closing line when nothing answered: how long, and what was sent.
fn host_footer(v: &PortVerdict, arrows: &[Arrow], g: &Glyphs) -> Vec<String> {
    let ell = g.ellipsis;
    if arrows.is_empty() {
        return vec![format!("{ell} no packets captured")];
    }
    if v.trace.iter().any(|p| p.dir == Dir::In) {
        return Vec::new();
    }
    let mut sent: Vec<(String, usize)> = Vec::new();
    for p in v.trace.iter().filter(|p| p.dir == Dir::Out) {
        let label = packet_label(p);
        match sent.iter_mut().find(|(l, _)| *l == label) {
            Some((_, n)) => *n += 1,
            None => sent.push((label, 1)),
        }
    }
    let list: Vec<String> = sent
        .iter()
        .map(|(l, n)| format!("{n} {l}{}", if *n == 1 { "" } else { "s" }))
        .collect();
    let span = arrows.last().map_or(0, |a| a.offset);
    vec![format!(
        "{ell} no reply after {} ({})",
        fmt_secs(span),
        list.join(", ")
    )]
}

/// Closing lines: how the exchange ended when no packet shows it.
fn footer(v: &PortVerdict, arrows: &[Arrow], g: &Glyphs) -> Vec<String> {
    let ell = g.ellipsis;
    let mut lines = Vec::new();
    if !v.observed {
        lines.push(format!(
            "{ell} answer not captured: {} ({}) is connect()'s verdict",
            v.state, v.reason
        ));
        return lines;
    }
    if v.reason == Reason::SelfConnect {
        lines.push(format!(
            "{ell} the socket met itself (TCP simultaneous open): not a listener"
        ));
        return lines;
    }
    if v.reason == Reason::AckImpliesSynAck {
        lines.push(format!(
            "{ell} the client ACKed the server's ISN: the SYN/ACK was sent, not captured"
        ));
        return lines;
    }
    if v.reason == Reason::NoResponse {
        let syns = v
            .trace
            .iter()
            .filter(|p| p.dir == Dir::Out && is_syn_only(p))
            .count();
        let span = arrows.last().map_or(0, |a| a.offset);
        lines.push(match (arrows.is_empty(), span > 0) {
            (true, _) => format!("{ell} no packets captured"),
            (false, true) => format!(
                "{ell} no reply after {} ({syns} SYN{})",
                fmt_secs(span),
                if syns == 1 { "" } else { "s" }
            ),
            (false, false) => format!("{ell} no reply"),
        });
    } else if arrows.is_empty() {
        lines.push(format!("{ell} no packets captured"));
    }
    if v.left_out > 0 {
        lines.push(format!("{ell} {} packets left out", v.left_out));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_cuts_with_an_ellipsis() {
        assert_eq!(fit("abcdef", 6, &ASCII), "abcdef");
        assert_eq!(fit("abcdef", 5, &ASCII), "ab...");
        assert_eq!(fit("abcdef", 5, &UNICODE), "abcd…");
        assert_eq!(fit("abcdef", 2, &ASCII), "ab");
        assert_eq!(fit("abcdef", 0, &UNICODE), "");
    }

    #[test]
    fn rows_cut_at_the_limit_and_colour_only_on_request() {
        let mut row = Row::blank(10);
        row.put(0, "|", Paint::Plain);
        row.put(2, "SYN", Paint::Out);
        row.put(8, "long text", Paint::Plain);
        let mut plain = String::new();
        row.render(6, false, &mut plain);
        assert_eq!(plain, "| SYN\n");
        let mut colored = String::new();
        row.render(10, true, &mut colored);
        assert_eq!(colored, "| \x1b[36mSYN\x1b[0m   lo\n");
    }

    #[test]
    fn relative_numbers_wrap() {
        assert_eq!(rel(5, Some(u32::MAX)), 6);
        assert_eq!(rel(7, None), 7);
        assert_eq!(dscp_short(10), "AF11");
        assert_eq!(dscp_short(0), "0");
        assert_eq!(dscp_short(5), "5");
    }
}
