//! What a run is, for the headers of the output files: the JSON Lines' `"type":"run"`
//! object, nmap XML's `nmaprun` and the grepable `# ...` lines. Also the clock formats
//! they use (RFC 3339 in UTC, and nmap's ctime-style strings, in UTC too).

use std::fmt;

use serde::Serialize;
use synack_core::frame::Timestamp;

/// The facts of a run known before its first result.
#[derive(Clone, Debug, Default)]
pub struct RunInfo {
    /// synack's version.
    pub version: String,
    /// The command line as typed (argv, the program first).
    pub args: Vec<String>,
    /// When the run started.
    pub start: Timestamp,
    /// The targets as typed (after -iL files were read).
    pub targets: Vec<String>,
    /// The ports scanned (this shard's with --shard).
    pub ports: Vec<u16>,
    /// -v count, for nmap XML's `verbose` element.
    pub verbose: u8,
}

impl RunInfo {
    /// The command line as one string, arguments with spaces or quotes in single quotes.
    pub fn command_line(&self) -> String {
        self.args
            .iter()
            .map(|a| {
                if !a.is_empty()
                    && a.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_./:,=@%+[]".contains(&b))
                {
                    a.clone()
                } else {
                    format!("'{}'", a.replace('\'', r"'\''"))
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The first JSON Lines object: `{"type":"run","version":…,"args":[…],"start":…,
    /// "targets":[…],"ports":"22,80-90"}`.
    pub fn json(&self) -> String {
        #[derive(Serialize)]
        struct RunJson<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            version: &'a str,
            args: &'a [String],
            start: String,
            targets: &'a [String],
            ports: String,
        }
        serde_json::to_string(&RunJson {
            kind: "run",
            version: &self.version,
            args: &self.args,
            start: Rfc3339(self.start).to_string(),
            targets: &self.targets,
            ports: synack_core::targets::format_ports(&self.ports),
        })
        .expect("plain data serialises")
    }
}

/// Days since 1970-01-01 → (year, month 1-12, day 1-31), proleptic Gregorian (Howard
/// Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (date, seconds of the day, weekday 0 = Sunday) of epoch seconds, UTC.
fn split_secs(secs: u64) -> ((i64, u32, u32), u64, usize) {
    let days = (secs / 86_400) as i64;
    (civil(days), secs % 86_400, ((days + 4) % 7) as usize)
}

/// RFC 3339 in UTC with nanoseconds: `2026-05-01T12:00:00.123456789Z`.
#[derive(Clone, Copy, Debug)]
pub struct Rfc3339(pub Timestamp);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0.nanos();
        let ((y, mo, d), sod, _) = split_secs(ns / 1_000_000_000);
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
            sod / 3600,
            sod / 60 % 60,
            sod % 60,
            ns % 1_000_000_000
        )
    }
}

impl Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// nmap's time strings (ctime's format), in UTC: `Sat Nov 30 18:31:00 2025`.
#[derive(Clone, Copy, Debug)]
pub struct CTime(pub u64);

impl fmt::Display for CTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let ((y, mo, d), sod, wd) = split_secs(self.0);
        write!(
            f,
            "{} {} {d:2} {:02}:{:02}:{:02} {y}",
            DAYS[wd],
            MONTHS[mo as usize - 1],
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_formats() {
        // 2024-02-29T23:59:59.000000123Z, a Thursday.
        let t = Timestamp(1_709_251_199_000_000_123);
        assert_eq!(Rfc3339(t).to_string(), "2024-02-29T23:59:59.000000123Z");
        assert_eq!(CTime(1_709_251_199).to_string(), "Thu Feb 29 23:59:59 2024");
        assert_eq!(
            Rfc3339(Timestamp(0)).to_string(),
            "1970-01-01T00:00:00.000000000Z"
        );
        assert_eq!(CTime(0).to_string(), "Thu Jan  1 00:00:00 1970");
    }

    #[test]
    fn command_line_quotes_what_a_shell_would_split() {
        let r = RunInfo {
            args: vec!["synack".into(), "scan".into(), "a b".into(), "it's".into()],
            ..RunInfo::default()
        };
        assert_eq!(r.command_line(), r"synack scan 'a b' 'it'\''s'");
    }
}
