//! Attempts that end on the capture's own clock, as Zeek's connection timeouts work: a
//! replay hands out each target's attempts as soon as nothing more can belong to them, so
//! memory holds what is in flight, never the whole capture.
//!
//! An attempt is final when
//! - it was closed (a RST either way, or an ICMP error that ends it) and
//!   [`Timeouts::closed`] (0.5 s) has passed since its last packet (late duplicates still
//!   join), or
//! - it was not closed and [`Timeouts::idle`] (20 s) has passed without a packet: longer than the
//!   gaps between a SYN's retransmissions (Linux waits 1, 2, 4, 8, 16 s between them,
//!   RFC 6298 §5.5's doubling) and than synack's own retry timeout (at most 10 s).
//!
//! A target is final when none of its attempts is in flight and [`Timeouts::quiet`] (0.5 s)
//! has passed since its last packet. A retry from a new source port follows an attempt
//! that went unanswered, which keeps its target in flight for 20 s, so retries meet their
//! port's earlier attempts; a target that comes back after it was final (a second scan)
//! gets a new report.
//!
//! Time is an argument (the capture's timestamps); nothing here reads a clock.

use std::collections::VecDeque;
use std::net::IpAddr;

use rustc_hash::FxHashMap;

use crate::decode::Observation;
use crate::exchange::{Attempt, KeyHashes, Touch, Tracker, TrackerStats};
use crate::frame::Timestamp;

const SECOND: u64 = 1_000_000_000;

/// How long, on the capture's clock, before attempts and targets are final.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// After the last packet of a closed attempt.
    pub closed: u64,
    /// After the last packet of an attempt that was not closed.
    pub idle: u64,
    /// After a target's last packet, once none of its attempts is in flight.
    pub quiet: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            closed: SECOND / 2,
            idle: 20 * SECOND,
            quiet: SECOND / 2,
        }
    }
}

/// One target's final attempts, in the order they ended (judging orders each port's by
/// when they were made).
#[derive(Debug)]
pub struct FinalTarget {
    pub ip: IpAddr,
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, Default)]
struct TargetState {
    in_flight: u32,
    last_seen: Timestamp,
    done: Vec<Attempt>,
}

/// A tracker whose attempts leave as they end.
#[derive(Debug)]
pub struct Stream {
    tracker: Tracker,
    timeouts: Timeouts,
    /// The capture's clock: the newest timestamp seen (captures can be slightly out of
    /// order; the clock never goes back).
    clock: Timestamp,
    /// (last packet, slot, serial) of closed attempts, in the order they were touched
    /// (so in deadline order); an entry is stale when its attempt was touched again or
    /// taken. Attempts not closed are found idle by a sweep of the tracker instead: a
    /// queue entry per SYN kept for the 20 s idle timeout held a million stale entries
    /// in a fast capture.
    closed_q: VecDeque<(Timestamp, u32, u64)>,
    last_idle_sweep: Timestamp,
    targets: FxHashMap<IpAddr, TargetState>,
    /// Attempts started at one address and not yet counted in `targets` (a run of starts
    /// at one target, the usual case, is counted once rather than looked up for each).
    starts: Option<(IpAddr, u32)>,
    /// (last packet, target) when its last attempt ended.
    quiet_q: VecDeque<(Timestamp, IpAddr)>,
    last_sweep: Timestamp,
}

/// Sweep for final attempts at most this often (capture time): cheap, and soon enough.
const SWEEP_EVERY: u64 = SECOND / 20;

/// Look through the attempts in flight for idle ones at most this often (capture time).
const IDLE_SWEEP_EVERY: u64 = SECOND / 4;

impl Stream {
    pub fn new(timeouts: Timeouts) -> Self {
        Stream {
            tracker: Tracker::new(),
            timeouts,
            clock: Timestamp(0),
            closed_q: VecDeque::new(),
            last_idle_sweep: Timestamp(0),
            targets: FxHashMap::default(),
            starts: None,
            quiet_q: VecDeque::new(),
            last_sweep: Timestamp(0),
        }
    }

    pub fn stats(&self) -> TrackerStats {
        self.tracker.stats()
    }

    /// The most attempts one target not yet final holds, in flight or ended (what its
    /// judging will have).
    pub fn largest_target_held(&self) -> usize {
        let pending = |ip: &IpAddr| match self.starts {
            Some((at, n)) if at == *ip => n as usize,
            _ => 0,
        };
        let counted = self
            .targets
            .iter()
            .map(|(ip, t)| t.in_flight as usize + t.done.len() + pending(ip))
            .max()
            .unwrap_or(0);
        counted.max(self.starts.map_or(0, |(_, n)| n as usize))
    }

    /// Attempts in flight.
    pub fn in_flight(&self) -> usize {
        self.tracker.len()
    }

    /// Feeds one observation; returns the targets that became final on the way.
    pub fn observe(&mut self, ts: Timestamp, obs: &Observation) -> Vec<FinalTarget> {
        self.observe_hashed(ts, obs, KeyHashes::of(obs))
    }

    /// [`Stream::observe`] with the observation's hashes computed ahead.
    pub fn observe_hashed(
        &mut self,
        ts: Timestamp,
        obs: &Observation,
        hashes: KeyHashes,
    ) -> Vec<FinalTarget> {
        self.clock = self.clock.max(ts);
        if let Some(touch) = self.tracker.observe_hashed(ts, obs, hashes, |_| true) {
            self.touched(touch);
        }
        if self.clock.since(self.last_sweep) >= SWEEP_EVERY {
            self.advance(self.clock)
        } else {
            Vec::new()
        }
    }

    fn touched(&mut self, t: Touch) {
        let Some(a) = self.tracker.get(t.slot, t.serial) else {
            return;
        };
        let (ip, last, closed) = (a.key.target.ip(), a.last_seen, a.closed);
        // The target's last packet is its attempts' newest, taken when they end: no
        // per-packet look-up here.
        if t.started {
            match &mut self.starts {
                Some((at, n)) if *at == ip => *n += 1,
                _ => {
                    self.count_starts();
                    self.starts = Some((ip, 1));
                }
            }
        }
        if closed {
            self.closed_q.push_back((last, t.slot, t.serial));
        }
    }

    /// Counts the starts not yet counted into their target.
    fn count_starts(&mut self) {
        if let Some((ip, n)) = self.starts.take() {
            self.targets.entry(ip).or_default().in_flight += n;
        }
    }

    /// Moves the clock to `now` (never back) and returns the targets final by then.
    pub fn advance(&mut self, now: Timestamp) -> Vec<FinalTarget> {
        self.count_starts();
        self.clock = self.clock.max(now);
        self.last_sweep = self.clock;
        let now = self.clock;
        while let Some(&(ts, slot, serial)) = self.closed_q.front() {
            if now.since(ts) < self.timeouts.closed {
                break;
            }
            self.closed_q.pop_front();
            // Stale unless the attempt is as this entry saw it.
            let current = self
                .tracker
                .get(slot, serial)
                .is_some_and(|a| a.last_seen == ts && a.closed);
            if current && let Some(a) = self.tracker.take(slot, serial) {
                self.ended(a);
            }
        }
        if now.since(self.last_idle_sweep) >= IDLE_SWEEP_EVERY {
            self.last_idle_sweep = now;
            for (slot, serial) in self.tracker.idle_open(now, self.timeouts.idle) {
                if let Some(a) = self.tracker.take(slot, serial) {
                    self.ended(a);
                }
            }
        }
        let mut out = Vec::new();
        while let Some(&(ts, ip)) = self.quiet_q.front() {
            if now.since(ts) < self.timeouts.quiet {
                break;
            }
            self.quiet_q.pop_front();
            let ready = self
                .targets
                .get(&ip)
                .is_some_and(|t| t.in_flight == 0 && t.last_seen == ts);
            if ready && let Some(t) = self.targets.remove(&ip) {
                out.push(final_target(ip, t));
            }
        }
        out
    }

    fn ended(&mut self, a: Attempt) {
        let ip = a.key.target.ip();
        let target = self.targets.entry(ip).or_default();
        target.in_flight = target.in_flight.saturating_sub(1);
        target.last_seen = target.last_seen.max(a.last_seen);
        target.done.push(a);
        if target.in_flight == 0 {
            self.quiet_q.push_back((target.last_seen, ip));
        }
    }

    /// The end of the capture: every attempt and target is final; targets in address
    /// order.
    pub fn finish(mut self) -> Vec<FinalTarget> {
        self.count_starts();
        let rest = std::mem::take(&mut self.tracker).drain();
        // The usual end of a capture of one target: its attempts go over whole, not one
        // by one into a growing list. Every attempt in flight started for a target here,
        // so one target holding as many in flight as there are is all of them (and the
        // 65,535 need not be looked at).
        let one_target = match (self.targets.len(), self.targets.iter().next()) {
            (1, Some((ip, t))) if t.in_flight as usize == rest.len() => Some(*ip),
            _ => rest
                .first()
                .map(|a| a.key.target.ip())
                .filter(|ip| rest.iter().all(|a| a.key.target.ip() == *ip)),
        };
        match one_target {
            Some(ip) => {
                let t = self.targets.entry(ip).or_default();
                t.in_flight = 0;
                // The smaller list goes into the larger (the tracker's slots, which
                // usually have room): a full-range capture's 65,535 attempts are not
                // copied into a new list at its end.
                let mut all = rest;
                if all.len() < t.done.len() {
                    std::mem::swap(&mut all, &mut t.done);
                }
                all.append(&mut t.done);
                t.done = all;
            }
            None => {
                for a in rest {
                    self.ended(a);
                }
            }
        }
        let mut out: Vec<FinalTarget> = self
            .targets
            .into_iter()
            .map(|(ip, t)| final_target(ip, t))
            .collect();
        out.sort_by_key(|t| t.ip);
        out
    }
}

fn final_target(ip: IpAddr, t: TargetState) -> FinalTarget {
    // Attempts end in any order; judging puts each port's in the order they were made.
    FinalTarget {
        ip,
        attempts: t.done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpFlags;

    /// A TCP segment with TTL 64 (the tracker's tests build them the same way).
    fn seg(src: &str, dst: &str, flags: u8, seq: u32) -> Observation {
        crate::exchange::tests::seg(src, dst, flags, seq, 64)
    }

    const SYN: u8 = TcpFlags::SYN;
    const RA: u8 = TcpFlags::RST | TcpFlags::ACK;
    const MS: u64 = 1_000_000;

    /// A SYN → RST exchange to `target:port` at `ms`.
    fn closed_port(s: &mut Stream, ms: u64, target: &str, port: u16) -> Vec<FinalTarget> {
        let scanner = format!("198.18.1.1:{}", 40000 + port);
        let t = format!("{target}:{port}");
        let mut out = s.observe(Timestamp(ms * MS), &seg(&scanner, &t, SYN, 7));
        out.extend(s.observe(Timestamp(ms * MS + 100_000), &seg(&t, &scanner, RA, 0)));
        out
    }

    #[test]
    fn a_target_leaves_once_quiet_and_memory_holds_only_what_is_in_flight() {
        let mut s = Stream::new(Timeouts::default());
        for port in 1..=100 {
            assert!(closed_port(&mut s, u64::from(port), "198.18.2.1", port).is_empty());
        }
        assert_eq!(s.in_flight(), 100);
        // Another target, 10 s later: the first is final (closed and quiet 0.5 s each).
        let out = closed_port(&mut s, 10_000, "198.18.2.2", 80);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].ip, "198.18.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(out[0].attempts.len(), 100);
        assert_eq!(s.in_flight(), 1);
        let rest = s.finish();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].attempts[0].packets.len(), 2);
    }

    #[test]
    fn the_largest_target_held_counts_ended_attempts_and_starts_not_yet_counted() {
        let mut s = Stream::new(Timeouts::default());
        assert_eq!(s.largest_target_held(), 0);
        for port in 1..=30 {
            closed_port(&mut s, 1, "198.18.2.1", port);
        }
        for port in 1..=20 {
            closed_port(&mut s, 2, "198.18.2.2", port);
        }
        assert_eq!(s.largest_target_held(), 30);
        // A run of starts at the first target again, not yet counted into it.
        for port in 31..=45 {
            closed_port(&mut s, 3, "198.18.2.1", port);
        }
        assert_eq!(s.largest_target_held(), 45);
        assert_eq!(s.in_flight(), 65);
        // A second later the first target's attempts have ended (closed 0.5 s ago), but
        // its target is not final while a new one of its attempts is in flight.
        closed_port(&mut s, 1_000, "198.18.2.1", 46);
        assert_eq!(s.in_flight(), 1);
        assert_eq!(s.largest_target_held(), 46);
    }

    #[test]
    fn an_unanswered_attempt_waits_for_its_retransmissions() {
        let mut s = Stream::new(Timeouts::default());
        let (a, t) = ("198.18.1.1:40001", "198.18.2.1:82");
        s.observe(Timestamp(0), &seg(a, t, SYN, 7));
        // Linux retransmits after 1, 3, 7, 15 s: all join the same attempt.
        for at in [1, 3, 7, 15] {
            assert!(
                s.observe(Timestamp(at * 1000 * MS), &seg(a, t, SYN, 7))
                    .is_empty()
            );
        }
        assert_eq!(s.in_flight(), 1);
        // Not before 20 s after the last one; then final (quiet for as long), with all
        // five SYNs, at the next sweep for idle attempts (a quarter second).
        assert!(s.advance(Timestamp(34_900 * MS)).is_empty());
        let out = s.advance(Timestamp(35_250 * MS));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].attempts.len(), 1);
        assert_eq!(out[0].attempts[0].syns_sent(), 5);
    }

    #[test]
    fn a_retry_from_a_new_source_port_meets_the_earlier_attempt() {
        let mut s = Stream::new(Timeouts::default());
        s.observe(
            Timestamp(0),
            &seg("198.18.1.1:40001", "198.18.2.1:81", SYN, 1),
        );
        // The retry answers 1 s later: the target is not quiet in between.
        s.observe(
            Timestamp(1000 * MS),
            &seg("198.18.1.1:40002", "198.18.2.1:81", SYN, 2),
        );
        s.observe(
            Timestamp(1001 * MS),
            &seg("198.18.2.1:81", "198.18.1.1:40002", RA, 0),
        );
        let out = s.advance(Timestamp(30_000 * MS));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].attempts.len(), 2);
        let mut ports: Vec<u16> = out[0]
            .attempts
            .iter()
            .map(|a| a.key.scanner.port())
            .collect();
        ports.sort_unstable();
        assert_eq!(ports, [40001, 40002]);
    }

    #[test]
    fn many_more_attempts_than_the_old_cap_pass_in_bounded_flight() {
        // 3,000 targets × 100 ports, one target per 100 ms of capture time: at most a few
        // dozen targets are ever in flight.
        let mut s = Stream::new(Timeouts::default());
        let mut reported = 0usize;
        let mut peak = 0usize;
        for target in 0..3000u32 {
            let ip = format!("198.19.{}.{}", target / 250, target % 250 + 1);
            for port in 1..=100u16 {
                let ms = u64::from(target) * 100 + u64::from(port) / 2;
                for f in closed_port(&mut s, ms, &ip, port) {
                    reported += f.attempts.len();
                }
                peak = peak.max(s.in_flight());
            }
        }
        for f in s.finish() {
            reported += f.attempts.len();
        }
        assert_eq!(reported, 300_000);
        assert!(peak <= 5_000, "peak in flight {peak}");
    }
}
