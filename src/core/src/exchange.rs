//! Observations → per-attempt exchanges.
//!
//! A connection attempt is born from a SYN (without ACK): its sender is the scanner side,
//! the receiver the target. Later segments of the same 4-tuple in either direction, and
//! ICMP errors whose quoted header names that 4-tuple, join it. A SYN repeating the
//! attempt's sequence number is a retransmission (the kernel keeps the ISN and the source
//! port, RFC 9293 §3.8.1); a SYN with a new sequence number on a finished 4-tuple starts a
//! new attempt. Live scans and replays feed the same tracker; time is an argument.

use std::net::{IpAddr, SocketAddr};

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use crate::decode::{IcmpKind, Observation, TcpFlags, TcpSegment};
use crate::frame::Timestamp;

/// At most this many packets are kept per attempt; the rest are counted. A capture of a
/// long transfer must not grow memory with its length.
pub const MAX_TRACE: usize = 24;

/// At most this many attempts are kept (about 250 MB); SYNs beyond are counted. With
/// MAX_TRACE this bounds memory whatever the length of the capture (a monitoring
/// capture may connect every minute for a month). A full-range scan of 16 hosts fits.
pub const MAX_ATTEMPTS: usize = 1 << 20;

/// One attempt's 4-tuple, oriented: `scanner` sent the SYN, `target` received it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub scanner: SocketAddr,
    pub target: SocketAddr,
}

impl FlowKey {
    /// A TCP simultaneous open with itself: connect() to 127.0.0.1:P from ephemeral port P
    /// "succeeds" although nothing listens on P.
    pub fn is_self_connect(&self) -> bool {
        self.scanner == self.target
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Scanner → target.
    Out,
    /// Anything → scanner (the target, or a device on the path).
    In,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketKind {
    Tcp(TcpFlags),
    Icmp(IcmpKind),
}

/// One packet of an exchange, with the header fields that serve as evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TracePacket {
    pub ts: Timestamp,
    pub dir: Dir,
    pub kind: PacketKind,
    /// The packet's IP source: the target, the scanner, or the hop that sent an ICMP error.
    pub from: IpAddr,
    pub ttl: u8,
    pub dscp: u8,
    pub ip_id: Option<u16>,
    pub flow_label: Option<u32>,
    /// TCP sequence number; for an ICMP error, the quoted one (0 when not quoted).
    pub seq: u32,
    pub ack: u32,
    pub win: u16,
    /// The scanner's port of the attempt this packet belongs to.
    pub scanner_port: u16,
    /// An outgoing SYN that repeats an earlier SYN of the same attempt.
    pub retransmission: bool,
}

impl TracePacket {
    pub fn flags(&self) -> Option<TcpFlags> {
        match self.kind {
            PacketKind::Tcp(f) => Some(f),
            PacketKind::Icmp(_) => None,
        }
    }
}

/// One connection attempt and the packets seen for it.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub key: FlowKey,
    /// When the attempt began: its first SYN, or when it was registered.
    pub started: Timestamp,
    /// The SYN's initial sequence number, once a SYN was seen.
    pub isn: Option<u32>,
    pub packets: Vec<TracePacket>,
    /// Packets beyond MAX_TRACE, not kept.
    pub dropped_packets: u32,
    /// A SYN/ACK, RST or decisive ICMP error has answered it, or it was reset.
    pub answered: bool,
}

impl Attempt {
    fn new(key: FlowKey, started: Timestamp) -> Self {
        Attempt {
            key,
            started,
            isn: None,
            // Most attempts are a SYN and its answer; a full-range scan holds 65,535 of them.
            packets: Vec::with_capacity(2),
            dropped_packets: 0,
            answered: false,
        }
    }

    fn push(&mut self, p: TracePacket) {
        if self.packets.len() < MAX_TRACE {
            self.packets.push(p);
        } else {
            self.dropped_packets += 1;
        }
    }

    pub fn syns_sent(&self) -> usize {
        self.packets
            .iter()
            .filter(|p| p.dir == Dir::Out && p.flags().is_some_and(|f| f.is_syn_only()))
            .count()
    }
}

/// Counters of what the tracker could not use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackerStats {
    pub observations: u64,
    /// TCP segments or ICMP errors that belong to no attempt (other traffic, or answers
    /// whose SYN was not captured).
    pub unmatched: u64,
    /// SYNs that would have started an attempt after MAX_ATTEMPTS.
    pub attempts_not_kept: u64,
}

/// Groups observations into attempts.
#[derive(Debug, Default)]
pub struct Tracker {
    /// Index into `attempts` of the current attempt on each 4-tuple. The table holds only
    /// the 4-byte index and hashes through `attempts`: a full-range scan has 65,535 keys
    /// of 64 bytes that `attempts` already holds.
    by_key: HashTable<u32>,
    attempts: Vec<Attempt>,
    stats: TrackerStats,
    /// Overrides MAX_ATTEMPTS.
    limit: Option<usize>,
}

impl Tracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// A tracker expecting about `n` attempts (a live scan knows how many it will make).
    pub fn with_capacity(n: usize) -> Self {
        Tracker {
            by_key: HashTable::with_capacity(n),
            attempts: Vec::with_capacity(n),
            stats: TrackerStats::default(),
            limit: None,
        }
    }

    fn hash(key: &FlowKey) -> u64 {
        FxBuildHasher.hash_one(key)
    }

    fn find(&self, key: &FlowKey) -> Option<usize> {
        let attempts = &self.attempts;
        self.by_key
            .find(Self::hash(key), |&i| attempts[i as usize].key == *key)
            .map(|&i| i as usize)
    }

    /// Keeps at most `n` attempts instead of MAX_ATTEMPTS (tests; tight memory).
    pub fn limit_attempts(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    fn max_attempts(&self) -> usize {
        self.limit.unwrap_or(MAX_ATTEMPTS)
    }

    pub fn stats(&self) -> TrackerStats {
        self.stats
    }

    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    pub fn into_attempts(self) -> Vec<Attempt> {
        self.attempts
    }

    /// Declares an attempt the caller knows was made, so its answers are matched even if
    /// the capture missed the SYN. (The live scan does not need it: its capture sees
    /// every SYN; tests use it to build answers without a captured SYN.)
    pub fn register(&mut self, key: FlowKey, ts: Timestamp) {
        if self.find(&key).is_none() {
            self.start(key, ts);
        }
    }

    /// Starts an attempt, unless MAX_ATTEMPTS are kept already.
    fn start(&mut self, key: FlowKey, ts: Timestamp) -> Option<usize> {
        let idx = self.attempts.len();
        if idx >= self.max_attempts() {
            self.stats.attempts_not_kept += 1;
            return None;
        }
        self.attempts.push(Attempt::new(key, ts));
        let attempts = &self.attempts;
        let hash = Self::hash(&key);
        match self
            .by_key
            .find_mut(hash, |&i| attempts[i as usize].key == key)
        {
            // A new attempt on a known 4-tuple (port reuse) takes the key over.
            Some(slot) => *slot = idx as u32,
            None => {
                self.by_key
                    .insert_unique(hash, idx as u32, |&i| Self::hash(&attempts[i as usize].key));
            }
        }
        Some(idx)
    }

    /// Feeds one observation. `accept_new` decides whether a SYN to this target starts an
    /// attempt (a live scan only tracks its own targets).
    pub fn observe(
        &mut self,
        ts: Timestamp,
        obs: &Observation,
        accept_new: impl Fn(&FlowKey) -> bool,
    ) {
        self.stats.observations += 1;
        match obs {
            Observation::Tcp(seg) => self.observe_tcp(ts, seg, accept_new),
            Observation::Icmp(err) => {
                let q = &err.quoted;
                let key = FlowKey {
                    scanner: SocketAddr::new(q.src, q.sport),
                    target: SocketAddr::new(q.dst, q.dport),
                };
                let Some(idx) = self.find(&key) else {
                    self.stats.unmatched += 1;
                    return;
                };
                let a = &mut self.attempts[idx];
                if err.kind.is_decisive() {
                    a.answered = true;
                }
                a.push(TracePacket {
                    ts,
                    dir: Dir::In,
                    kind: PacketKind::Icmp(err.kind),
                    from: err.ip.src,
                    ttl: err.ip.ttl,
                    dscp: err.ip.dscp,
                    ip_id: err.ip.ip_id,
                    flow_label: err.ip.flow_label,
                    seq: q.seq.unwrap_or(0),
                    ack: 0,
                    win: 0,
                    scanner_port: key.scanner.port(),
                    retransmission: false,
                });
            }
        }
    }

    fn observe_tcp(
        &mut self,
        ts: Timestamp,
        seg: &TcpSegment,
        accept_new: impl Fn(&FlowKey) -> bool,
    ) {
        let src = SocketAddr::new(seg.ip.src, seg.sport);
        let dst = SocketAddr::new(seg.ip.dst, seg.dport);
        let fwd = FlowKey {
            scanner: src,
            target: dst,
        };
        let rev = FlowKey {
            scanner: dst,
            target: src,
        };
        let syn_only = seg.flags.is_syn_only();
        // On one address (loopback) the reverse of an earlier attempt's 4-tuple can be a
        // later attempt's own: 127.0.0.1:A → :B, then :B → :A. A pure SYN always opens
        // or repeats an attempt from its sender; any other segment belongs to the most
        // recent attempt it can belong to.
        let (idx, dir) = match (self.find(&fwd), self.find(&rev)) {
            (Some(f), Some(r)) if !syn_only && r > f => (Some(r), Dir::In),
            (Some(f), _) => {
                let a = &self.attempts[f];
                // A fresh SYN on a finished 4-tuple is a new attempt (port reuse).
                if syn_only && a.isn.is_some_and(|isn| isn != seg.seq) && a.answered {
                    (self.start(fwd, ts), Dir::Out)
                } else {
                    (Some(f), Dir::Out)
                }
            }
            (None, Some(_)) if syn_only && accept_new(&fwd) => (self.start(fwd, ts), Dir::Out),
            (None, Some(r)) => (Some(r), Dir::In),
            (None, None) if syn_only && accept_new(&fwd) => (self.start(fwd, ts), Dir::Out),
            (None, None) => (None, Dir::In),
        };
        let Some(idx) = idx else {
            self.stats.unmatched += 1;
            return;
        };
        let a = &mut self.attempts[idx];
        let mut retransmission = false;
        if dir == Dir::Out && syn_only {
            match a.isn {
                Some(isn) => retransmission = isn == seg.seq,
                None => {
                    a.isn = Some(seg.seq);
                    if a.packets.is_empty() {
                        a.started = ts;
                    }
                }
            }
        }
        if dir == Dir::In && (seg.flags.rst() || seg.flags.is_syn_ack()) {
            a.answered = true;
        }
        // On a self-connect every segment matches `fwd`; a SYN/ACK or RST there still
        // answers the attempt.
        if dir == Dir::Out && fwd.is_self_connect() && !syn_only {
            a.answered = true;
        }
        a.push(TracePacket {
            ts,
            dir,
            kind: PacketKind::Tcp(seg.flags),
            from: seg.ip.src,
            ttl: seg.ip.ttl,
            dscp: seg.ip.dscp,
            ip_id: seg.ip.ip_id,
            flow_label: seg.ip.flow_label,
            seq: seg.seq,
            ack: seg.ack,
            win: seg.window,
            scanner_port: fwd_scanner_port(dir, seg),
            retransmission,
        });
    }
}

fn fwd_scanner_port(dir: Dir, seg: &TcpSegment) -> u16 {
    match dir {
        Dir::Out => seg.sport,
        Dir::In => seg.dport,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{IcmpError, IpMeta, QuotedTcp, TcpOpts};

    pub(crate) fn seg(src: &str, dst: &str, flags: u8, seq: u32, ttl: u8) -> Observation {
        let src: SocketAddr = src.parse().unwrap();
        let dst: SocketAddr = dst.parse().unwrap();
        Observation::Tcp(TcpSegment {
            ip: IpMeta {
                src: src.ip(),
                dst: dst.ip(),
                ttl,
                dscp: 0,
                ip_id: Some(0),
                flow_label: None,
            },
            sport: src.port(),
            dport: dst.port(),
            flags: TcpFlags(flags),
            seq,
            ack: 0,
            window: 0,
            opts: TcpOpts::default(),
            payload_len: 0,
        })
    }

    const S: &str = "198.18.1.1:40000";
    const T: &str = "198.18.2.1:81";
    const SYN: u8 = TcpFlags::SYN;
    const RA: u8 = TcpFlags::RST | TcpFlags::ACK;

    fn feed(tr: &mut Tracker, ms: u64, o: &Observation) {
        tr.observe(Timestamp(ms * 1_000_000), o, |_| true);
    }

    #[test]
    fn syn_and_rst_make_one_attempt() {
        let mut tr = Tracker::new();
        feed(&mut tr, 0, &seg(S, T, SYN, 5, 64));
        feed(&mut tr, 1, &seg(T, S, RA, 0, 63));
        let a = &tr.attempts()[0];
        assert_eq!(tr.attempts().len(), 1);
        assert_eq!(a.packets.len(), 2);
        assert_eq!(a.packets[0].dir, Dir::Out);
        assert_eq!(a.packets[1].dir, Dir::In);
        assert!(a.answered);
        assert_eq!(a.packets[1].scanner_port, 40000);
    }

    #[test]
    fn retransmission_keeps_attempt_new_isn_after_answer_starts_another() {
        let mut tr = Tracker::new();
        feed(&mut tr, 0, &seg(S, T, SYN, 5, 64));
        feed(&mut tr, 1000, &seg(S, T, SYN, 5, 64));
        assert_eq!(tr.attempts().len(), 1);
        assert!(tr.attempts()[0].packets[1].retransmission);
        feed(&mut tr, 1001, &seg(T, S, RA, 0, 63));
        feed(&mut tr, 5000, &seg(S, T, SYN, 99, 64));
        assert_eq!(tr.attempts().len(), 2);
        assert_eq!(tr.attempts()[1].isn, Some(99));
    }

    #[test]
    fn answers_without_a_syn_are_unmatched_unless_registered() {
        let mut tr = Tracker::new();
        feed(&mut tr, 1, &seg(T, S, RA, 0, 63));
        assert_eq!(tr.stats().unmatched, 1);
        let key = FlowKey {
            scanner: S.parse().unwrap(),
            target: T.parse().unwrap(),
        };
        tr.register(key, Timestamp(0));
        feed(&mut tr, 2, &seg(T, S, RA, 0, 63));
        assert_eq!(tr.attempts()[0].packets.len(), 1);
    }

    #[test]
    fn icmp_error_joins_the_quoted_attempt() {
        let mut tr = Tracker::new();
        feed(&mut tr, 0, &seg(S, T, SYN, 5, 64));
        let s: SocketAddr = S.parse().unwrap();
        let t: SocketAddr = T.parse().unwrap();
        let icmp = Observation::Icmp(IcmpError {
            ip: IpMeta {
                src: "198.18.1.254".parse().unwrap(),
                dst: s.ip(),
                ttl: 64,
                dscp: 0,
                ip_id: Some(1),
                flow_label: None,
            },
            kind: IcmpKind {
                v6: false,
                icmp_type: 3,
                code: 13,
            },
            quoted: QuotedTcp {
                src: s.ip(),
                dst: t.ip(),
                sport: s.port(),
                dport: t.port(),
                seq: Some(5),
            },
        });
        feed(&mut tr, 1, &icmp);
        let a = &tr.attempts()[0];
        assert_eq!(a.packets.len(), 2);
        assert_eq!(a.packets[1].from.to_string(), "198.18.1.254");
        assert!(a.answered);
    }

    #[test]
    fn self_connect_is_one_attempt() {
        let mut tr = Tracker::new();
        let p = "127.0.0.1:50000";
        feed(&mut tr, 0, &seg(p, p, SYN, 5, 64));
        feed(&mut tr, 0, &seg(p, p, SYN | TcpFlags::ACK, 5, 64));
        feed(&mut tr, 0, &seg(p, p, TcpFlags::ACK, 6, 64));
        assert_eq!(tr.attempts().len(), 1);
        assert!(tr.attempts()[0].key.is_self_connect());
    }

    #[test]
    fn reversed_tuple_of_an_earlier_attempt_is_a_new_attempt() {
        // Loopback, wide ephemeral range: 40000 → 50000 first, later 50000 → 40000.
        let (a, b) = ("127.0.0.1:40000", "127.0.0.1:50000");
        let mut tr = Tracker::new();
        feed(&mut tr, 0, &seg(a, b, SYN, 5, 64));
        feed(&mut tr, 0, &seg(b, a, RA, 0, 64));
        feed(&mut tr, 9, &seg(b, a, SYN, 77, 64));
        feed(&mut tr, 9, &seg(a, b, RA, 0, 64));
        let at = tr.attempts();
        assert_eq!(at.len(), 2);
        assert_eq!(
            at[0].packets.len(),
            2,
            "the first attempt keeps its own two packets"
        );
        assert_eq!(at[1].key.target.port(), 40000);
        assert_eq!(at[1].packets.len(), 2);
        assert_eq!(at[1].packets[1].dir, Dir::In);
    }

    #[test]
    fn attempts_are_capped_and_counted() {
        let mut tr = Tracker::new().limit_attempts(5);
        for i in 0..8u16 {
            let src = format!("198.18.1.1:{}", 40000 + i);
            feed(&mut tr, i as u64, &seg(&src, T, SYN, i as u32, 64));
            feed(&mut tr, i as u64, &seg(T, &src, RA, 0, 63));
        }
        assert_eq!(tr.attempts().len(), 5);
        assert_eq!(tr.stats().attempts_not_kept, 3);
        assert_eq!(
            tr.stats().unmatched,
            6,
            "their SYNs and RSTs are counted, not kept"
        );
    }

    #[test]
    fn trace_is_capped() {
        let mut tr = Tracker::new();
        feed(&mut tr, 0, &seg(S, T, SYN, 5, 64));
        for i in 0..100 {
            feed(&mut tr, i, &seg(T, S, TcpFlags::ACK, 0, 63));
        }
        assert_eq!(tr.attempts()[0].packets.len(), MAX_TRACE);
        assert_eq!(tr.attempts()[0].dropped_packets, 101 - MAX_TRACE as u32);
    }
}
