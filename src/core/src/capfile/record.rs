//! What the format parsers (legacy pcap in `read.rs`, pcapng in `pcapng.rs`) hand to the
//! reader: a record's place in the input buffer, a failure before the file name is
//! attached, and the bounded log of skipped packets. Kept apart so that neither parser
//! imports the other.

use super::error::CapfileErrorKind;
use super::link_type_name;
use crate::frame::{LinkType, Timestamp};

/// One packet found by a format parser: its data is `len` bytes at index `at` of the input
/// buffer, valid until the input is filled again.
pub(crate) struct Record {
    pub(crate) ts: Timestamp,
    pub(crate) link: LinkType,
    pub(crate) at: usize,
    pub(crate) len: usize,
    pub(crate) orig_len: u32,
}

/// An error from a format parser, before the file name is attached.
pub(crate) struct Failure {
    pub(crate) offset: u64,
    pub(crate) kind: CapfileErrorKind,
}

/// Packets skipped for their link type, and other things worth telling the user, kept
/// bounded: a hostile file with millions of sections must not grow this without limit.
#[derive(Clone, Debug, Default)]
pub(crate) struct SkipLog {
    skips: Vec<Skip>,
    /// Skipped packets beyond the entries kept.
    overflow: u64,
    notes: Vec<String>,
    notes_dropped: u64,
}

#[derive(Clone, Debug)]
struct Skip {
    /// Section number counting from 1 (pcapng), 0 for legacy pcap.
    section: u32,
    interface: Option<u32>,
    raw_link: u32,
    count: u64,
}

const MAX_SKIP_ENTRIES: usize = 64;
const MAX_NOTES: usize = 32;

impl SkipLog {
    pub(crate) fn add_skip(
        &mut self,
        section: u32,
        interface: Option<u32>,
        raw_link: u32,
        count: u64,
    ) {
        if self.skips.len() < MAX_SKIP_ENTRIES {
            self.skips.push(Skip {
                section,
                interface,
                raw_link,
                count,
            });
        } else {
            self.overflow += count;
        }
    }

    pub(crate) fn add_note(&mut self, note: String) {
        if self.notes.len() < MAX_NOTES {
            self.notes.push(note);
        } else {
            self.notes_dropped += 1;
        }
    }

    pub(crate) fn render(&self, several_sections: bool) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.skips {
            let packets = plural(s.count, "packet");
            let link = match link_type_name(s.raw_link) {
                Some(name) => format!("{} ({name})", s.raw_link),
                None => s.raw_link.to_string(),
            };
            let place = match (s.interface, several_sections) {
                (None, _) => String::new(),
                (Some(i), false) => format!(" on interface {i}"),
                (Some(i), true) => format!(" on interface {i} in section {}", s.section),
            };
            out.push(format!(
                "{packets}{place} with unsupported link type {link} skipped"
            ));
        }
        if self.overflow > 0 {
            out.push(format!(
                "{} on further interfaces with unsupported link types skipped",
                plural(self.overflow, "more packet")
            ));
        }
        out.extend(self.notes.iter().cloned());
        if self.notes_dropped > 0 {
            out.push(plural(self.notes_dropped, "more warning") + " not shown");
        }
        out
    }
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_log_is_bounded() {
        let mut log = SkipLog::default();
        for i in 0..1000 {
            log.add_skip(i + 1, Some(0), 105, 1);
            log.add_note(format!("note {i}"));
        }
        let w = log.render(true);
        assert_eq!(w.len(), MAX_SKIP_ENTRIES + 1 + MAX_NOTES + 1);
        assert_eq!(
            w[0],
            "1 packet on interface 0 in section 1 with unsupported link type 105 (IEEE802_11) skipped"
        );
        assert_eq!(
            w[MAX_SKIP_ENTRIES],
            "936 more packets on further interfaces with unsupported link types skipped"
        );
        assert_eq!(w.last().unwrap(), "968 more warnings not shown");
    }
}
