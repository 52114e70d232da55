//! Arbitrary bytes as a link-layer frame of every type synack decodes, then the exchange
//! tracker and the verdicts: decode must never panic, and neither may anything downstream
//! of an observation it produced.
//!
//! The input is used twice:
//! 1. whole, as one frame of each link type (8 frames into one tracker);
//! 2. as a sequence of frames, `[link index u8][length u16 LE][bytes]…`, so that one input
//!    can hold a SYN and its answer and reach the verdict logic for RSTs and ICMP errors.

#![no_main]

use libfuzzer_sys::fuzz_target;
use synack_core::decode::decode;
use synack_core::exchange::Tracker;
use synack_core::stream::{Stream, Timeouts};
use synack_core::frame::{Frame, LinkType, Timestamp};
use synack_core::verdict::judge_all;

const LINKS: [LinkType; 8] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::RawIp,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::Null,
    LinkType::Loop,
];

fn feed(tracker: &mut Tracker, ts: u64, link: LinkType, data: &[u8]) {
    let frame = Frame {
        ts: Timestamp(ts),
        link,
        data,
        orig_len: data.len() as u32,
    };
    match decode(&frame) {
        Ok(obs) => {
            tracker.observe(frame.ts, &obs, |_| true);
        }
        Err(skip) => {
            let _ = skip.describe();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut tracker = Tracker::new();
    for (i, link) in LINKS.iter().enumerate() {
        feed(&mut tracker, i as u64 * 1_000, *link, data);
    }
    let _ = judge_all(&tracker.snapshot(), None);

    let mut tracker = Tracker::new();
    let mut rest = data;
    let mut ts = 0u64;
    while let [link, lo, hi, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(tail.len());
        let (frame, after) = tail.split_at(len);
        feed(
            &mut tracker,
            ts,
            LINKS[usize::from(*link) % LINKS.len()],
            frame,
        );
        // Mostly close together, sometimes a retransmission's second later.
        ts += if link & 0x80 != 0 {
            1_000_000_000
        } else {
            10_000
        };
        rest = after;
    }
    let _ = judge_all(&tracker.snapshot(), None);

    // The same frames through the streaming tracker, whose timeouts run on their clock.
    let mut stream = Stream::new(Timeouts::default());
    let mut rest = data;
    let mut ts = 0u64;
    let mut finals = Vec::new();
    while let [link, lo, hi, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(tail.len());
        let (bytes, after) = tail.split_at(len);
        let frame = Frame {
            ts: Timestamp(ts),
            link: LINKS[usize::from(*link) % LINKS.len()],
            data: bytes,
            orig_len: bytes.len() as u32,
        };
        if let Ok(obs) = decode(&frame) {
            finals.extend(stream.observe(frame.ts, &obs));
        }
        ts += u64::from(*hi) * 100_000_000;
        rest = after;
    }
    finals.extend(stream.finish());
    for t in finals {
        let _ = judge_all(&t.attempts, None);
    }
});
