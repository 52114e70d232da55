//! Where results go: stdout in the chosen format, and nmap's output files (-oN, -oX,
//! -oG, -oA) and -oJ, each its own sink, fed together through a [`Tee`]. The files are
//! created before the scan's privileged part, so they belong to whoever ran synack, and
//! an unwritable path fails before any packet is sent.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal};
use std::path::{Path, PathBuf};

use synack::report::grepable::GrepableSink;
use synack::report::json::JsonSink;
use synack::report::run::RunInfo;
use synack::report::text::{TextOptions, TextSink};
use synack::report::xml::XmlSink;
use synack::report::{RunSummary, Sink, TargetReport, Tee};
use synack_core::verdict::State;

use super::args::{ColorWhen, OutputArgs, ScanArgs};

/// The formats a scan writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Xml,
    Grepable,
}

/// One output: a format to a file, or to stdout (`-`).
#[derive(Debug)]
pub struct Output {
    pub format: Format,
    pub path: Option<PathBuf>,
}

/// The outputs asked for, checked: at most one format on stdout; `-w -` only when no
/// results go to stdout too.
pub fn plan(args: &ScanArgs) -> Result<Vec<Output>, String> {
    let mut files: Vec<(Format, PathBuf)> = Vec::new();
    let mut add = |f, p: &Option<PathBuf>| {
        if let Some(p) = p {
            files.push((f, p.clone()));
        }
    };
    add(Format::Table, &args.output_normal);
    add(Format::Xml, &args.output_xml);
    add(Format::Grepable, &args.output_grepable);
    add(Format::Json, &args.output_json);
    if let Some(base) = &args.output_all {
        if base.as_os_str() == "-" {
            return Err("-oA needs a base name for its three files, not -".into());
        }
        for (f, ext) in [
            (Format::Table, "nmap"),
            (Format::Xml, "xml"),
            (Format::Grepable, "gnmap"),
        ] {
            let mut name = base.clone().into_os_string();
            name.push(".");
            name.push(ext);
            files.push((f, PathBuf::from(name)));
        }
    }
    let to_stdout: Vec<Format> = files
        .iter()
        .filter(|(_, p)| p.as_os_str() == "-")
        .map(|(f, _)| *f)
        .collect();
    if to_stdout.len() > 1 {
        return Err("only one output can go to stdout (-): give the others a file".into());
    }
    let pcap_to_stdout = args.write.as_deref() == Some(Path::new("-"));
    let mut outputs: Vec<Output> = files
        .into_iter()
        .filter(|(_, p)| p.as_os_str() != "-")
        .map(|(format, p)| Output {
            format,
            path: Some(p),
        })
        .collect();
    let stdout_format = match to_stdout.first() {
        Some(f) => Some(*f),
        None if pcap_to_stdout => None,
        None if args.output.json => Some(Format::Json),
        None => Some(Format::Table),
    };
    if pcap_to_stdout {
        if stdout_format.is_some() || args.output.json {
            return Err(
                "-w - writes the capture to stdout: the results cannot go there too (drop --json or the -o… -)"
                    .into(),
            );
        }
        if outputs.is_empty() {
            return Err(
                "-w - writes the capture to stdout: give the results a file (-oN, -oJ, -oX, -oG or -oA)"
                    .into(),
            );
        }
    }
    if let Some(format) = stdout_format {
        outputs.insert(0, Output { format, path: None });
    }
    Ok(outputs)
}

/// Creates each output file (before the privileged part of the scan) and builds the
/// sinks. An error names the file.
pub fn open(
    outputs: &[Output],
    out: &OutputArgs,
    run: &RunInfo,
    show_all: bool,
) -> Result<Tee, String> {
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    for o in outputs {
        let sink: Box<dyn Sink> = match &o.path {
            None => stdout_sink(o.format, out, run, show_all),
            Some(p) => {
                let f = File::create(p).map_err(|e| format!("{}: {e}", p.display()))?;
                let w = BufWriter::new(f);
                match o.format {
                    Format::Table => Box::new(TextSink::new(w, file_table(out, show_all))),
                    Format::Json => Box::new(JsonSink::new(w).with_run(run)),
                    Format::Xml => Box::new(XmlSink::new(w, run.clone(), show_all)),
                    Format::Grepable => Box::new(GrepableSink::new(w, run.clone(), show_all)),
                }
            }
        };
        sinks.push(sink);
    }
    Ok(Tee(sinks))
}

/// The table as a file holds it: ASCII, no colour, 80 columns.
fn file_table(out: &OutputArgs, show_all: bool) -> TextOptions {
    TextOptions {
        unicode: false,
        color: false,
        show_all: show_all || out.show_all,
        ladder: out.ladder.then_some(synack::report::ladder::LadderOptions {
            unicode: false,
            color: false,
            width: 80,
        }),
        explain: out.explain,
        width: 80,
        ..TextOptions::default()
    }
}

/// stdout in `format`: the table through anstream (which strips the colour when it is
/// off), or a machine format.
pub fn stdout_sink(
    format: Format,
    out: &OutputArgs,
    run: &RunInfo,
    show_all: bool,
) -> Box<dyn Sink> {
    let stdout = BufWriter::new(io::stdout());
    match format {
        Format::Json if run.args.is_empty() => Box::new(JsonSink::new(stdout)),
        Format::Json => Box::new(JsonSink::new(stdout).with_run(run)),
        Format::Xml => Box::new(XmlSink::new(stdout, run.clone(), show_all)),
        Format::Grepable => Box::new(GrepableSink::new(stdout, run.clone(), show_all)),
        Format::Table => {
            let (unicode, color) = terminal_style(out);
            let choice = if color {
                anstream::ColorChoice::Always
            } else {
                anstream::ColorChoice::Never
            };
            let stream = BufWriter::new(anstream::AutoStream::new(io::stdout(), choice));
            let opts = TextOptions {
                unicode,
                color,
                show_all: show_all || out.show_all,
                ladder: out.ladder.then_some(synack::report::ladder::LadderOptions {
                    unicode,
                    color,
                    width: 80,
                }),
                explain: out.explain,
                width: output_width(),
                ..TextOptions::default()
            };
            Box::new(TextSink::new(stream, opts))
        }
    }
}

/// `--open`: only the open ports reach the sinks, and only targets with one (nmap's
/// --open applies to every output).
pub struct OpenOnly<S: Sink>(pub S);

impl<S: Sink> Sink for OpenOnly<S> {
    fn target(&mut self, t: &TargetReport<'_>) -> io::Result<()> {
        let open: Vec<_> = t
            .verdicts
            .iter()
            .filter(|v| v.state == State::Open)
            .cloned()
            .collect();
        if open.is_empty() {
            return Ok(());
        }
        self.0.target(&TargetReport {
            verdicts: &open,
            ..*t
        })
    }

    fn host(&mut self, h: &synack::report::HostReport<'_>) -> io::Result<()> {
        // nmap's --open shows no host without an open port, so none that is down.
        if h.up.is_some() {
            self.0.host(h)?;
        }
        Ok(())
    }

    fn finish(&mut self, s: &RunSummary) -> io::Result<()> {
        self.0.finish(s)
    }
}

/// (Unicode arrows, colour) for stdout: colour per --color (auto: only on a terminal,
/// not TERM=dumb, without --no-color or NO_COLOR); Unicode only on such a terminal with
/// a UTF-8 locale and without --ascii. Piped or logged output is plain ASCII.
pub fn terminal_style(out: &OutputArgs) -> (bool, bool) {
    style_for(io::stdout().is_terminal(), |k| std::env::var(k).ok(), out)
}

pub fn style_for(
    tty: bool,
    var: impl Fn(&str) -> Option<String>,
    out: &OutputArgs,
) -> (bool, bool) {
    let env = |k: &str| var(k).filter(|v| !v.is_empty());
    let tty = tty && env("TERM").as_deref() != Some("dumb");
    let color = match out.color {
        _ if out.no_color => false,
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => tty && env("NO_COLOR").is_none(),
    };
    // The first locale variable that is set decides the character set (POSIX order).
    let utf8 = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|k| env(k))
        .is_some_and(|v| {
            let v = v.to_ascii_lowercase();
            v.contains("utf-8") || v.contains("utf8")
        });
    (tty && utf8 && !out.ascii, color)
}

/// Columns that evidence lines and explanations wrap at: the terminal's width when
/// stdout is a terminal (at least 40), else 80.
fn output_width() -> usize {
    if !io::stdout().is_terminal() {
        return 80;
    }
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we pass; stdout is a valid
    // descriptor for the life of the process, and a failure leaves the zeroed struct.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        usize::from(ws.ws_col).max(40)
    } else {
        80
    }
}
