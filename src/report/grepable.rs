//! nmap's grepable output (`-oG`): a `#` header line, per target a `Status` line and a
//! `Ports` line (`22/open/tcp//ssh///, 81/filtered/tcp//hosts2-ns///`, then
//! `Ignored State: closed (997)` for a collapsed state), and a `#` footer line — the
//! lines scripts `grep` and `cut` out of nmap's. synack names itself in the `#` lines.

use std::io::{self, Write};

use super::nmap_view::{self, NmapPorts};
use super::run::{CTime, RunInfo};
use super::{RunSummary, Sink, TargetReport};

pub struct GrepableSink<W: Write> {
    out: W,
    run: RunInfo,
    show_all: bool,
    started: bool,
    hosts: usize,
}

impl<W: Write> GrepableSink<W> {
    pub fn new(out: W, run: RunInfo, show_all: bool) -> Self {
        GrepableSink {
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
        let secs = self.run.start.nanos() / 1_000_000_000;
        writeln!(
            self.out,
            "# synack {} scan initiated {} as: {}",
            self.run.version,
            CTime(secs),
            self.run.command_line()
        )?;
        writeln!(
            self.out,
            "# Ports scanned: TCP({};{}) UDP(0;) SCTP(0;) PROTOCOLS(0;)",
            self.run.ports.len(),
            synack_core::targets::format_ports(&self.run.ports)
        )
    }
}

impl<W: Write> Sink for GrepableSink<W> {
    fn target(&mut self, t: &TargetReport<'_>) -> io::Result<()> {
        self.start()?;
        self.hosts += 1;
        let name = t.name.unwrap_or("");
        writeln!(self.out, "Host: {} ({name})\tStatus: Up", t.ip)?;
        let NmapPorts { extra, listed } = nmap_view::split(t.verdicts, self.show_all);
        let ports: Vec<String> = listed
            .iter()
            .map(|v| {
                // port/state/protocol/owner/service/rpc info/version/
                format!(
                    "{}/{}/tcp//{}///",
                    v.target.port(),
                    v.state.as_str(),
                    nmap_view::service(v.target.port())
                )
            })
            .collect();
        write!(
            self.out,
            "Host: {} ({name})\tPorts: {}",
            t.ip,
            ports.join(", ")
        )?;
        for (state, _, n) in &extra {
            write!(self.out, "\tIgnored State: {} ({n})", state.as_str())?;
        }
        writeln!(self.out)?;
        self.out.flush()
    }

    fn finish(&mut self, s: &RunSummary) -> io::Result<()> {
        self.start()?;
        let end = self.run.start.nanos() / 1_000_000_000 + s.elapsed.as_secs();
        let plural = if self.hosts == 1 { "" } else { "es" };
        let hplural = if self.hosts == 1 { "" } else { "s" };
        writeln!(
            self.out,
            "# synack done at {} -- {} IP address{plural} ({} host{hplural} up) scanned in {:.2} seconds",
            CTime(end),
            self.hosts,
            self.hosts,
            s.elapsed.as_secs_f64()
        )?;
        self.out.flush()
    }
}
