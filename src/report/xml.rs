//! nmap's XML (`-oX`), valid against nmap.dtd as Debian's nmap package installs it: an
//! `nmaprun` with `scaninfo`, one `host` per target as it is final (`status`, `address`,
//! `hostnames`, `ports` with `extraports` and `port`/`state`/`service`), and `runstats`.
//! synack's own facts — responder, evidence, trace — go in a `script id="synack"` element
//! per port, with `elem`/`table` children, where the DTD allows extra data.
//!
//! The DTD fixes `scanner` to "nmap"; synack names itself in `args` (its command line)
//! and `version`, and in a comment at the top.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::nmap_view::{self, NmapPorts};
use super::run::{CTime, RunInfo};
use super::text::trace_line;
use super::words;
use super::{RunSummary, Sink, TargetReport};
use synack_core::exchange::Dir;
use synack_core::targets::format_ports;
use synack_core::verdict::PortVerdict;

/// Escapes text for an attribute value or element content.
pub struct Esc<'a>(pub &'a str);

impl std::fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&apos;")?,
                '\n' => f.write_str("&#xa;")?,
                '\t' => f.write_str("&#x9;")?,
                // Other control characters are not allowed in XML 1.0 at all.
                c if (c as u32) < 0x20 => f.write_char('?')?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

pub struct XmlSink<W: Write> {
    out: W,
    run: RunInfo,
    show_all: bool,
    started: bool,
    hosts: usize,
}

impl<W: Write> XmlSink<W> {
    /// `show_all`: list every port (else states of more than 25 ports become
    /// `extraports`, as nmap writes them).
    pub fn new(out: W, run: RunInfo, show_all: bool) -> Self {
        XmlSink {
            out,
            run,
            show_all,
            started: false,
            hosts: 0,
        }
    }

    fn start(&mut self) -> io::Result<()> {
        if std::mem::replace(&mut self.started, true) {
            return Ok(());
        }
        let r = &self.run;
        let secs = r.start.nanos() / 1_000_000_000;
        let services = format_ports(&r.ports);
        write!(
            self.out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <!DOCTYPE nmaprun>\n\
             <!-- synack {} TCP connect() scan in nmap's XML format (nmap.dtd); \
             per-port packet evidence in script id=\"synack\" -->\n\
             <nmaprun scanner=\"nmap\" args=\"{}\" start=\"{secs}\" startstr=\"{}\" \
             version=\"{}\" xmloutputversion=\"1.05\">\n\
             <scaninfo type=\"connect\" protocol=\"tcp\" numservices=\"{}\" services=\"{}\"/>\n\
             <verbose level=\"{}\"/>\n<debugging level=\"0\"/>\n",
            Esc(&r.version),
            Esc(&r.command_line()),
            CTime(secs),
            Esc(&r.version),
            r.ports.len(),
            services,
            r.verbose,
        )
    }
}

/// The `script` element of one port: its output attribute in words, the facts as
/// elements.
fn script(out: &mut String, v: &PortVerdict) {
    let mut said = format!("responder: {}", v.responder.as_str());
    for e in &v.evidence {
        let _ = write!(said, "; {}", words::EvidenceWords(e));
    }
    if let Some(n) = &v.note {
        let _ = write!(said, "; {}", words::NoteWords(n));
    }
    let _ = write!(said, "; trace: {}", trace_line(v, false));
    let _ = write!(
        out,
        "<script id=\"synack\" output=\"{}\"><elem key=\"responder\">{}</elem>\
         <elem key=\"reason\">{}</elem><elem key=\"observed\">{}</elem>\
         <elem key=\"attempts\">{}</elem><table key=\"evidence\">",
        Esc(&said),
        v.responder.as_str(),
        v.reason.name(),
        v.observed,
        v.attempts
    );
    for e in &v.evidence {
        let _ = write!(
            out,
            "<elem>{}</elem>",
            Esc(&words::EvidenceWords(e).to_string())
        );
    }
    out.push_str("</table>");
    if let Some(n) = &v.note {
        let _ = write!(
            out,
            "<elem key=\"note\">{}</elem>",
            Esc(&words::NoteWords(n).to_string())
        );
    }
    out.push_str("<table key=\"trace\">");
    for p in &v.trace {
        let _ = write!(
            out,
            "<table><elem key=\"dir\">{}</elem><elem key=\"flags\">{}</elem>\
             <elem key=\"t_ms\">{:.3}</elem><elem key=\"ts\">{}</elem>\
             <elem key=\"from\">{}</elem><elem key=\"ttl\">{}</elem>\
             <elem key=\"sport\">{}</elem><elem key=\"dscp\">{}</elem></table>",
            match p.dir {
                Dir::Out => "out",
                Dir::In => "in",
            },
            Esc(&super::packet_label(p)),
            p.ts.since(v.started) as f64 / 1e6,
            super::run::Rfc3339(p.ts),
            p.from,
            p.ttl,
            p.scanner_port,
            p.dscp
        );
    }
    out.push_str("</table></script>");
}

impl<W: Write> Sink for XmlSink<W> {
    fn target(&mut self, t: &TargetReport<'_>) -> io::Result<()> {
        self.start()?;
        self.hosts += 1;
        let NmapPorts { extra, listed } = nmap_view::split(t.verdicts, self.show_all);
        let (first, last) = t
            .verdicts
            .iter()
            .flat_map(|v| {
                v.trace
                    .iter()
                    .map(|p| p.ts.nanos())
                    .chain([v.started.nanos()])
            })
            .fold((u64::MAX, 0), |(a, b), n| (a.min(n), b.max(n)));
        let mut s = String::new();
        let times = if first <= last {
            format!(
                " starttime=\"{}\" endtime=\"{}\"",
                first / 1_000_000_000,
                last / 1_000_000_000
            )
        } else {
            String::new()
        };
        let _ = write!(
            s,
            "<host{times}><status state=\"up\" reason=\"user-set\" reason_ttl=\"0\"/>\n\
             <address addr=\"{}\" addrtype=\"{}\"/>\n<hostnames>",
            t.ip,
            if t.ip.is_ipv4() { "ipv4" } else { "ipv6" }
        );
        if let Some(n) = t.name {
            let _ = write!(s, "\n<hostname name=\"{}\" type=\"user\"/>\n", Esc(n));
        }
        s.push_str("</hostnames>\n<ports>");
        for (state, reasons, n) in &extra {
            let _ = writeln!(s, "<extraports state=\"{}\" count=\"{n}\">", state.as_str());
            for (reason, count) in reasons {
                let _ = writeln!(
                    s,
                    "<extrareasons reason=\"{}\" count=\"{count}\" proto=\"tcp\"/>",
                    reason
                );
            }
            s.push_str("</extraports>\n");
        }
        for v in listed {
            let (ttl, ip) = nmap_view::reason_ttl_ip(v);
            let _ = write!(
                s,
                "<port protocol=\"tcp\" portid=\"{}\"><state state=\"{}\" reason=\"{}\" \
                 reason_ttl=\"{ttl}\"",
                v.target.port(),
                v.state.as_str(),
                v.reason.name()
            );
            if let Some(ip) = ip {
                let _ = write!(s, " reason_ip=\"{ip}\"");
            }
            let _ = write!(
                s,
                "/><service name=\"{}\" method=\"table\" conf=\"3\"/>",
                Esc(nmap_view::service(v.target.port()))
            );
            script(&mut s, v);
            s.push_str("</port>\n");
        }
        s.push_str("</ports>\n</host>\n");
        self.out.write_all(s.as_bytes())?;
        self.out.flush()
    }

    fn finish(&mut self, sum: &RunSummary) -> io::Result<()> {
        self.start()?;
        let end = self.run.start.nanos() / 1_000_000_000 + sum.elapsed.as_secs();
        let elapsed = sum.elapsed.as_secs_f64();
        let exit = if sum.interrupted { "error" } else { "success" };
        let err = if sum.interrupted {
            " errormsg=\"interrupted\""
        } else {
            ""
        };
        write!(
            self.out,
            "<runstats><finished time=\"{end}\" timestr=\"{}\" summary=\"synack done at {}; \
             {} IP address{} ({} host{} up) scanned in {elapsed:.2} seconds\" \
             elapsed=\"{elapsed:.2}\" exit=\"{exit}\"{err}/><hosts up=\"{}\" down=\"0\" \
             total=\"{}\"/>\n</runstats>\n</nmaprun>\n",
            CTime(end),
            CTime(end),
            self.hosts,
            if self.hosts == 1 { "" } else { "es" },
            self.hosts,
            if self.hosts == 1 { "" } else { "s" },
            self.hosts,
            self.hosts
        )?;
        self.out.flush()
    }
}
