//! The table: one row per port — PORT, STATE, REASON, RESPONDER, TRACE — the evidence
//! under it, then a per-target summary.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::SocketAddr;

use super::words;
use super::{
    RunSummary, ScanReport, Sink, TargetReport, TargetSummary, fmt_secs, is_repeat_syn,
    packet_label,
};
use synack_core::exchange::{Dir, PacketKind};
use synack_core::verdict::{ConnectionVerdict, PortVerdict, Reason, State};

#[derive(Clone, Copy, Debug)]
pub struct TextOptions {
    /// Arrows and separators in Unicode (→ ← ·) or ASCII (-> <- |).
    pub unicode: bool,
    /// ANSI colour for the STATE column.
    pub color: bool,
    /// List every port; otherwise a state with more than `collapse_over` ports of one
    /// reason is summarised in a "Not shown" line, as nmap does.
    pub show_all: bool,
    pub collapse_over: usize,
    /// Print the evidence lines under each row.
    pub evidence: bool,
    /// A sequence diagram under each row (`--ladder`).
    pub ladder: Option<super::ladder::LadderOptions>,
    /// A plain-language explanation under each row (`--explain`).
    pub explain: bool,
    /// Evidence lines and explanations wrap at this many columns (the terminal's width,
    /// 80 when the output is not a terminal).
    pub width: usize,
}

impl Default for TextOptions {
    fn default() -> Self {
        TextOptions {
            unicode: true,
            color: false,
            show_all: false,
            collapse_over: 25,
            evidence: true,
            ladder: None,
            explain: false,
            width: 80,
        }
    }
}

struct Glyphs {
    out: &'static str,
    inn: &'static str,
    sep: &'static str,
}

const UNICODE: Glyphs = Glyphs {
    out: "→",
    inn: "←",
    sep: " · ",
};
const ASCII: Glyphs = Glyphs {
    out: "->",
    inn: "<-",
    sep: " | ",
};

/// The TRACE column: "SYN → · ← SYN/ACK · ACK → · RST →".
pub fn trace_line(v: &PortVerdict, unicode: bool) -> String {
    let g = if unicode { &UNICODE } else { &ASCII };
    if !v.observed && v.trace.is_empty() {
        return "not observed".to_string();
    }
    let mut s = String::new();
    let first_syn = v
        .trace
        .iter()
        .find(|p| p.dir == Dir::Out && p.flags().is_some_and(|f| f.is_syn_only()));
    let mut last = first_syn.map(|p| (p.client, p.scanner_port));
    for (i, p) in v.trace.iter().enumerate() {
        if i > 0 {
            s.push_str(g.sep);
        }
        let label = packet_label(p);
        match p.dir {
            Dir::Out => {
                let _ = write!(s, "{label} {}", g.out);
            }
            Dir::In => {
                let _ = write!(s, "{} {label}", g.inn);
                if matches!(p.kind, PacketKind::Icmp(_)) {
                    let _ = write!(s, " from {}", p.from);
                }
            }
        }
        if p.early {
            // Stored in the capture before the SYN it belongs to (docs/verdicts.md, order).
            s.push_str(" (stored early)");
        }
        if is_repeat_syn(p, first_syn) {
            let _ = write!(s, " +{}", fmt_secs(p.ts.since(v.started)));
            // Another client's SYN is its own attempt, not a retry.
            match last {
                Some((client, _)) if client != p.client => {
                    let _ = write!(s, " (client {})", SocketAddr::new(p.client, p.scanner_port));
                }
                Some((_, port)) if port != p.scanner_port => {
                    let _ = write!(s, " (new source port {})", p.scanner_port);
                }
                _ => {}
            }
            last = Some((p.client, p.scanner_port));
        }
    }
    if v.left_out > 0 {
        let _ = write!(s, "{}{} packets left out", g.sep, v.left_out);
    }
    if v.reason == Reason::NoResponse && v.observed {
        s.push_str(g.sep);
        s.push_str("no reply");
    }
    if !v.observed {
        s.push_str(g.sep);
        s.push_str("(answer not observed)");
    }
    s
}

/// The STATE column, padded before colouring so the columns stay aligned.
fn paint(state: State, color: bool) -> String {
    let padded = format!("{:<8}", state.as_str());
    if !color {
        return padded;
    }
    let code = match state {
        State::Open => "32",
        State::Closed => "31",
        State::Filtered => "33",
    };
    format!("\x1b[{code}m{padded}\x1b[0m")
}

/// Word-wraps `text` to `width` columns, the first line after `lead`, the others
/// indented to line up with it.
fn wrap(text: &str, lead: &str, width: usize) -> Vec<String> {
    let indent = " ".repeat(lead.chars().count());
    let mut lines = Vec::new();
    let mut line = lead.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        let fits = line.chars().count() + 1 + word.chars().count() <= width;
        if !empty && !fits {
            lines.push(std::mem::replace(&mut line, indent.clone()));
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    lines.push(line);
    lines
}

/// Writes the whole report.
pub fn write(out: &mut dyn Write, report: &ScanReport, opts: &TextOptions) -> io::Result<()> {
    report.write_to(&mut TextSink::new(out, *opts))
}

/// The table as a streaming sink: one block per target as it is final, then the notes
/// and the closing line.
pub struct TextSink<W: Write> {
    out: W,
    opts: TextOptions,
    /// The connection table's header was written (replay `--connections`).
    connections_header: bool,
    /// Discovery's proof for each host up, written under its report's heading.
    up: rustc_hash::FxHashMap<std::net::IpAddr, String>,
}

impl<W: Write> TextSink<W> {
    pub fn new(out: W, opts: TextOptions) -> Self {
        TextSink {
            out,
            opts,
            connections_header: false,
            up: Default::default(),
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> Sink for TextSink<W> {
    fn target(&mut self, t: &TargetReport<'_>) -> io::Result<()> {
        let up = self.up.remove(&t.ip);
        write_target(&mut self.out, t, &self.opts, up.as_deref())?;
        self.out.flush()
    }

    /// A host down is one line; a host up says why under its report's heading.
    fn host(&mut self, h: &super::HostReport<'_>) -> io::Result<()> {
        if h.up.is_some() {
            self.up.insert(h.ip, h.line());
            return Ok(());
        }
        writeln!(self.out, "{}", h.line())?;
        if let (Some(lopts), Some(d)) = (&self.opts.ladder, h.discovery) {
            write_discovery(&mut self.out, h.ip, d, lopts)?;
        }
        self.out.flush()
    }

    fn connections(&mut self, rows: &[ConnectionVerdict]) -> io::Result<()> {
        if !self.connections_header {
            writeln!(self.out, "{}", super::connections::header())?;
            self.connections_header = true;
        }
        super::connections::write_rows(&mut self.out, rows)?;
        self.out.flush()
    }

    fn finish(&mut self, s: &RunSummary) -> io::Result<()> {
        if s.interrupted {
            // Hosts found up whose ports Ctrl-C kept from being scanned: still up.
            let mut left: Vec<_> = self.up.drain().collect();
            left.sort();
            for (_, line) in left {
                writeln!(
                    self.out,
                    "{line} (interrupted before its ports were scanned)"
                )?;
            }
        }
        write_end(&mut self.out, s)?;
        self.out.flush()
    }
}

/// A host's discovery exchange as a ladder (`--ladder`), between blank lines.
fn write_discovery(
    out: &mut dyn Write,
    ip: std::net::IpAddr,
    d: &super::Discovery,
    lopts: &super::ladder::LadderOptions,
) -> io::Result<()> {
    writeln!(out)?;
    let ladder = super::ladder::host_ladder(ip, d.packets.clone(), &d.ports, lopts);
    write!(out, "{ladder}")?;
    writeln!(out)
}

fn write_target(
    out: &mut dyn Write,
    t: &TargetReport<'_>,
    opts: &TextOptions,
    up: Option<&str>,
) -> io::Result<()> {
    let (ip, verdicts) = (t.ip, t.verdicts);
    let name = match t.name {
        Some(n) => format!("{n} ({ip})"),
        None => ip.to_string(),
    };
    writeln!(out, "synack report for {name}")?;
    if let Some(up) = up {
        writeln!(out, "{up}")?;
    }
    if let (Some(lopts), Some(d)) = (&opts.ladder, t.discovery) {
        write_discovery(out, ip, d, lopts)?;
    }
    // Collapse big groups of one state and reason (nmap's "Not shown"), by the reason's
    // word: a router's ICMP host-unreach and the errno's are one group, as nmap shows
    // them. Counted in a short list (a full-range target has 65,535 verdicts, a handful
    // of groups, most often in runs), then ordered by state and word.
    let mut groups: Vec<((State, &'static str), usize)> = Vec::new();
    let mut last = usize::MAX;
    // The summary line is gathered on the same pass.
    let mut summary = TargetSummary::new(ip);
    for v in verdicts {
        summary.add(v);
        let key = (v.state, v.reason.name());
        if groups.get(last).is_none_or(|(k, _)| *k != key) {
            last = match groups.iter().position(|(k, _)| *k == key) {
                Some(i) => i,
                None => {
                    groups.push((key, 0));
                    groups.len() - 1
                }
            };
        }
        groups[last].1 += 1;
    }
    groups.sort_by_key(|(key, _)| *key);
    let hidden: Vec<(State, &str)> = if opts.show_all {
        Vec::new()
    } else {
        groups
            .iter()
            .filter(|((state, _), n)| *n > opts.collapse_over && *state != State::Open)
            .map(|(k, _)| *k)
            .collect()
    };
    for ((state, reason), n) in groups.iter().filter(|(k, _)| hidden.contains(k)) {
        writeln!(out, "Not shown: {n} {state} ports ({reason})")?;
    }
    // The REASON column is as wide as this target's longest reason shown (16 at least:
    // "ack-implies-syn-ack" and "source-route-failed" are longer), as nmap sizes its own.
    let shown_count = verdicts.len()
        - groups
            .iter()
            .filter(|(k, _)| hidden.contains(k))
            .map(|(_, n)| n)
            .sum::<usize>();
    // (Nothing to look through when every port is in a hidden group.)
    let shown = || {
        verdicts[..if shown_count == 0 { 0 } else { verdicts.len() }]
            .iter()
            .filter(|v| !hidden.contains(&(v.state, v.reason.name())))
    };
    let reason_width = shown().map(|v| v.reason.name().len()).fold(16, usize::max);
    writeln!(
        out,
        "{:<9} {:<8} {:<reason_width$} {:<15} TRACE",
        "PORT", "STATE", "REASON", "RESPONDER"
    )?;
    for v in shown() {
        write_row(out, v, opts, reason_width)?;
    }
    writeln!(out, "{}", summary.line())?;
    writeln!(out)
}

/// One port: its row, evidence, note, and the teaching views asked for.
fn write_row(
    out: &mut dyn Write,
    v: &PortVerdict,
    opts: &TextOptions,
    reason_width: usize,
) -> io::Result<()> {
    writeln!(
        out,
        "{:<9} {} {:<reason_width$} {:<15} {}",
        format!("{}/tcp", v.target.port()),
        paint(v.state, opts.color),
        v.reason.name(),
        v.responder.as_str(),
        trace_line(v, opts.unicode)
    )?;
    // An open port's evidence is the SYN/ACK, shown in the trace, unless no answer was
    // captured and the client's ACK speaks for it.
    if opts.evidence && (v.state != State::Open || v.reason == Reason::AckImpliesSynAck) {
        let lead = if opts.unicode {
            "          └ "
        } else {
            "          `- "
        };
        for e in &v.evidence {
            let text = words::EvidenceWords(e).to_string();
            for line in wrap(&text, lead, opts.width) {
                writeln!(out, "{line}")?;
            }
        }
    }
    if !v.outcomes.is_empty() {
        let text = format!(
            "{} attempts: {}",
            v.attempts,
            words::OutcomesWords(&v.outcomes)
        );
        for line in wrap(&text, "          outcomes: ", opts.width) {
            writeln!(out, "{line}")?;
        }
    }
    if let Some(note) = &v.note {
        writeln!(out, "          note: {}", words::NoteWords(note))?;
    }
    if let Some(lopts) = &opts.ladder {
        writeln!(out)?;
        write!(out, "{}", super::ladder::ladder(v, lopts))?;
        writeln!(out)?;
    }
    if opts.explain {
        for line in wrap(&super::explain::explain(v), "          why: ", opts.width) {
            writeln!(out, "{line}")?;
        }
        if opts.ladder.is_some() {
            writeln!(out)?;
        }
    }
    Ok(())
}

/// The notes and the closing line.
fn write_end(out: &mut dyn Write, s: &RunSummary) -> io::Result<()> {
    for note in &s.notes {
        writeln!(out, "note: {note}")?;
    }
    let (n, what) = if s.connections > 0 {
        (s.connections, "connection")
    } else {
        (s.ports, "port")
    };
    let mut line = format!(
        "synack done: {n} {what}{} on {} host{} in {:.2}s: {} open, {} closed, {} filtered",
        if n == 1 { "" } else { "s" },
        s.hosts,
        if s.hosts == 1 { "" } else { "s" },
        s.elapsed.as_secs_f64(),
        s.open,
        s.closed,
        s.filtered,
    );
    if s.hosts_down > 0 {
        let _ = write!(
            line,
            "; {} host{} down",
            s.hosts_down,
            if s.hosts_down == 1 { "" } else { "s" }
        );
    }
    if let Some(held) = super::words::held_back(s.changed_on_retry, s.maybe_suppressed) {
        let _ = write!(line, "; {held}");
    }
    if s.captured {
        let _ = write!(line, "; capture drops: {}", s.capture_drops);
    }
    if s.interrupted {
        line.push_str(" (interrupted: results so far)");
    }
    writeln!(out, "{line}")
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrap_keeps_lines_within_width_and_words_whole() {
        let text = "The target answered the SYN with a SYN/ACK and the three-way handshake completed (RFC 9293 §3.5).";
        let lines = wrap(text, "    why: ", 40);
        assert!(lines.iter().all(|l| l.chars().count() <= 40), "{lines:?}");
        assert!(lines[0].starts_with("    why: The"));
        assert!(lines[1].starts_with("         "));
        let joined: Vec<&str> = lines.iter().flat_map(|l| l.split_whitespace()).collect();
        assert_eq!(joined[1..].join(" "), text);
        // A word longer than the width stays whole on its own line.
        assert_eq!(
            wrap("abcdefghij", "> ", 5),
            vec!["> abcdefghij".to_string()]
        );
    }
}
