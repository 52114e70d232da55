//! When the network holds back: Linux rate-limits the ICMP errors a REJECT rule sends
//! (per peer: net.ipv4.icmp_ratelimit, 1 s with a burst of 6; net.ipv6.icmp.ratelimit),
//! so after the first few ports a REJECT-ed target falls silent and its ports look
//! DROP-ped. nmap slows down when it sees drops; synack re-probes, slower, the ports of a
//! target that stayed silent after the target answered others with ICMP errors.
//!
//! A port is re-probed only when its first SYN went out after a SYN the target answered
//! with an ICMP error: a bucket that let a later error through had a token for an earlier
//! one, so a silent port probed before an answered one is a real DROP (the standard lab's
//! ports 82 and 87 are probed before 84 and 88 and are never re-probed).
//!
//! Per target, one slow attempt at a time: the first 1 s after the target's latest SYN
//! answered with ICMP (Linux's bucket refills a token a second), then `interval` apart
//! (from 500 ms): doubled after an unanswered attempt (up to 2 s), three quarters after
//! four answered in a row (down to 50 ms). Bounded: a time budget per target from its first slow attempt,
//! two slow attempts per port, and a target none of whose slow attempts was answered is
//! given up after two. Ports left when the budget ends are reported with the records
//! they have (the verdict adds "may be a REJECT" on a target shown to rate-limit).
//!
//! Pure: time is an argument; the prober makes the attempts.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use synack_core::verdict::ProbeRecord;

/// The default time budget per target (`--slow-retry-time`).
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(10);
const FIRST_INTERVAL: Duration = Duration::from_millis(500);
/// The first slow attempt waits this long after the target's latest SYN answered with
/// ICMP: Linux's per-peer bucket gains a token a second (net.ipv4.icmp_ratelimit).
const FIRST_WAIT: Duration = Duration::from_secs(1);
const MIN_INTERVAL: Duration = Duration::from_millis(50);
const MAX_INTERVAL: Duration = Duration::from_secs(2);
/// Slow attempts per port at most.
const TRIES_PER_PORT: u32 = 2;
/// Unanswered slow attempts after which a target none of whose slow attempts was
/// answered is given up (its silence is not the network holding back).
const GIVE_UP_UNCONFIRMED: u32 = 2;
/// Answered slow attempts in a row after which the interval shrinks.
const SPEED_UP_AFTER: u32 = 4;

/// A port waiting for its slow attempt: its target, the attempts made so far, and the
/// record of its last (unanswered) attempt, reported when the port is done.
#[derive(Clone, Debug)]
pub struct Held {
    pub target: SocketAddr,
    pub attempts: u32,
    pub slow_tries: u32,
    pub record: Option<ProbeRecord>,
}

#[derive(Debug)]
struct TargetHold {
    /// Start of the latest first attempt the target answered with an ICMP error.
    icmp_after: Option<Instant>,
    queue: VecDeque<Held>,
    first_slow: Option<Instant>,
    next_at: Option<Instant>,
    last_start: Option<Instant>,
    interval: Duration,
    in_flight: bool,
    answered: u32,
    answered_in_a_row: u32,
    unanswered_in_a_row: u32,
    closed: bool,
}

impl Default for TargetHold {
    fn default() -> Self {
        TargetHold {
            icmp_after: None,
            queue: VecDeque::new(),
            first_slow: None,
            next_at: None,
            last_start: None,
            interval: FIRST_INTERVAL,
            in_flight: false,
            answered: 0,
            answered_in_a_row: 0,
            unanswered_in_a_row: 0,
            closed: false,
        }
    }
}

/// The slow re-probe of one prober.
#[derive(Debug, Default)]
pub struct SlowRetries {
    budget: Duration,
    targets: FxHashMap<IpAddr, TargetHold>,
}

impl SlowRetries {
    /// `budget` per target; zero turns the slow re-probe off.
    pub fn new(budget: Duration) -> Self {
        SlowRetries {
            budget,
            targets: FxHashMap::default(),
        }
    }

    /// `ip` answered an attempt whose port's first SYN left at `first` with an ICMP error.
    pub fn icmp_answer(&mut self, ip: IpAddr, first: Instant) {
        if self.budget.is_zero() {
            return;
        }
        let t = self.targets.entry(ip).or_default();
        t.icmp_after = Some(t.icmp_after.map_or(first, |a| a.max(first)));
    }

    /// A port's last full-speed attempt went unanswered: queues it for a slow attempt
    /// when its target answered an earlier-sent SYN with ICMP; else hands it back.
    pub fn defer(&mut self, held: Held, first: Instant) -> Result<(), Held> {
        match self.targets.get_mut(&held.target.ip()) {
            Some(t) if !t.closed && t.icmp_after.is_some_and(|a| first > a) => {
                t.queue.push_back(held);
                if t.first_slow.is_none() {
                    t.next_at = t.icmp_after.map(|a| a + FIRST_WAIT);
                }
                Ok(())
            }
            _ => Err(held),
        }
    }

    /// The next port due for a slow attempt at `now`, if any; its target is then busy
    /// until [`SlowRetries::finished`].
    pub fn next_due(&mut self, now: Instant) -> Option<Held> {
        let (_, t) = self.targets.iter_mut().find(|(_, t)| {
            !t.in_flight && !t.queue.is_empty() && t.next_at.is_none_or(|n| n <= now)
        })?;
        let h = t.queue.pop_front()?;
        t.in_flight = true;
        t.first_slow.get_or_insert(now);
        t.last_start = Some(now);
        t.next_at = Some(now + t.interval);
        Some(h)
    }

    /// A slow attempt `next_due` handed out could not start (out of file descriptors):
    /// it waits at the head of its target's queue again.
    pub fn not_started(&mut self, h: Held) {
        if let Some(t) = self.targets.get_mut(&h.target.ip()) {
            t.in_flight = false;
            t.queue.push_front(h);
        }
    }

    /// When the next slow attempt is due (for the prober's wait).
    pub fn wake_at(&self) -> Option<Instant> {
        self.targets
            .values()
            .filter(|t| !t.in_flight && !t.queue.is_empty())
            .map(|t| t.next_at.unwrap_or_else(Instant::now))
            .min()
    }

    /// Slow attempts queued or in flight.
    pub fn pending(&self) -> bool {
        self.targets
            .values()
            .any(|t| t.in_flight || !t.queue.is_empty())
    }

    /// A slow attempt at `held` ended (answered or not). Returns the ports now done:
    /// `held` itself unless it is queued again, and every port of a target whose budget
    /// is spent or that is given up.
    pub fn finished(&mut self, mut held: Held, answered: bool, now: Instant) -> Vec<Held> {
        let budget = self.budget;
        let Some(t) = self.targets.get_mut(&held.target.ip()) else {
            return vec![held];
        };
        t.in_flight = false;
        held.slow_tries += 1;
        let mut done = Vec::new();
        if answered {
            t.answered += 1;
            t.answered_in_a_row += 1;
            t.unanswered_in_a_row = 0;
            if t.answered_in_a_row >= SPEED_UP_AFTER {
                t.interval = (t.interval * 3 / 4).max(MIN_INTERVAL);
                t.answered_in_a_row = 0;
            }
            done.push(held);
        } else {
            t.answered_in_a_row = 0;
            t.unanswered_in_a_row += 1;
            t.interval = (t.interval * 2).min(MAX_INTERVAL);
            if held.slow_tries < TRIES_PER_PORT && t.answered > 0 {
                t.queue.push_back(held);
            } else {
                done.push(held);
            }
        }
        // The next start counts from this one's, with the interval as it is now.
        t.next_at = t.last_start.map(|s| s + t.interval);
        let spent = t
            .first_slow
            .is_some_and(|f| now.duration_since(f) >= budget);
        let unconfirmed = t.answered == 0 && t.unanswered_in_a_row >= GIVE_UP_UNCONFIRMED;
        if spent || unconfirmed {
            t.closed = true;
            done.extend(t.queue.drain(..));
        }
        done
    }

    /// Gives up on every queued port (the scan is interrupted, or the target's host
    /// timeout passed); returns them.
    pub fn drain(&mut self) -> Vec<Held> {
        self.targets
            .values_mut()
            .flat_map(|t| {
                t.closed = true;
                t.queue.drain(..)
            })
            .collect()
    }

    /// Forgets targets with nothing queued or in flight (memory follows the group).
    pub fn forget_idle(&mut self, keep: impl Fn(IpAddr) -> bool) {
        self.targets
            .retain(|ip, t| keep(*ip) || t.in_flight || !t.queue.is_empty());
    }

    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(port: u16) -> Held {
        Held {
            target: SocketAddr::new("198.18.2.1".parse().unwrap(), port),
            attempts: 2,
            slow_tries: 0,
            record: None,
        }
    }

    #[test]
    fn only_ports_probed_after_an_icmp_answer_are_held() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut s = SlowRetries::new(DEFAULT_BUDGET);
        // No ICMP from the target: nothing is held.
        assert!(s.defer(held(82), ms(1)).is_err());
        s.icmp_answer("198.18.2.1".parse().unwrap(), ms(5));
        // Probed before the answered SYN: a real drop, not held.
        assert!(s.defer(held(82), ms(2)).is_err());
        assert!(s.defer(held(1006), ms(6)).is_ok());
        assert!(s.pending());
        // Off: never held.
        let mut off = SlowRetries::new(Duration::ZERO);
        off.icmp_answer("198.18.2.1".parse().unwrap(), ms(5));
        assert!(off.defer(held(1006), ms(6)).is_err());
    }

    #[test]
    fn one_at_a_time_backing_off_and_bounded() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let ip: IpAddr = "198.18.2.1".parse().unwrap();
        let mut s = SlowRetries::new(Duration::from_secs(3));
        s.icmp_answer(ip, ms(0));
        for p in 0..10 {
            s.defer(held(1000 + p), ms(1)).unwrap();
        }
        // The first waits a second after the answered SYN, for the bucket to refill.
        assert!(s.next_due(ms(10)).is_none());
        assert_eq!(s.wake_at(), Some(ms(1_000)));
        let a = s.next_due(ms(1_000)).unwrap();
        // One in flight per target.
        assert!(s.next_due(ms(1_000)).is_none());
        assert_eq!(s.finished(a, true, ms(1_020)).len(), 1);
        // The next is due an interval after the first started.
        assert!(s.next_due(ms(1_100)).is_none());
        assert_eq!(s.wake_at(), Some(ms(1_000) + FIRST_INTERVAL));
        let b = s.next_due(ms(1_500)).unwrap();
        // Unanswered on a confirmed target: queued again, the interval doubled.
        assert!(s.finished(b, false, ms(1_600)).is_empty());
        assert_eq!(s.wake_at(), Some(ms(1_500) + FIRST_INTERVAL * 2));
        // The budget ends it: every port left is handed back.
        let c = s.next_due(ms(4_100)).unwrap();
        let done = s.finished(c, true, ms(4_200));
        assert_eq!(done.len(), 9, "{done:?}");
        assert!(!s.pending());
        // A given-up target holds nothing more.
        assert!(s.defer(held(2000), ms(3_300)).is_err());
    }

    #[test]
    fn a_target_whose_slow_attempts_go_unanswered_is_given_up() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut s = SlowRetries::new(DEFAULT_BUDGET);
        s.icmp_answer("198.18.2.1".parse().unwrap(), ms(0));
        for p in 0..5 {
            s.defer(held(1000 + p), ms(1)).unwrap();
        }
        let a = s.next_due(ms(1_000)).unwrap();
        // Unconfirmed: not queued again.
        assert_eq!(s.finished(a, false, ms(1_020)).len(), 1);
        let b = s.next_due(ms(2_000)).unwrap();
        let done = s.finished(b, false, ms(2_100));
        assert_eq!(done.len(), 4, "the rest handed back at once: {done:?}");
        assert!(!s.pending());
    }
}
