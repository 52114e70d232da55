//! Observations → per-attempt exchanges.
//!
//! A connection attempt is born from a SYN (without ACK): its sender is the scanner side,
//! the receiver the target. Later segments of the same 4-tuple in either direction, and
//! ICMP errors whose quoted header names that 4-tuple, join it. A SYN repeating the
//! attempt's sequence number is a retransmission (the kernel keeps the ISN and the source
//! port, RFC 9293 §3.8.1); a SYN with a new sequence number on a finished 4-tuple starts a
//! new attempt. Live scans and replays feed the same tracker; time is an argument.
//!
//! Capture order is not wire order: a multi-queue NIC or a merged capture can store a
//! SYN/ACK before the SYN it answers. A TCP segment that fits no attempt is therefore held
//! for [`HOLD_NS`] of capture time (at most [`MAX_HELD`] at once); when a SYN starts an
//! attempt on its 4-tuple, the held segments join it if their sequence numbers say they
//! belong to it (a SYN/ACK's or RST's ACK must be the SYN's ISN + 1, RFC 9293 §3.5,
//! §3.10.7.1), marked [`TracePacket::early`]. What is not claimed in time is unmatched.

use std::net::{IpAddr, SocketAddr};

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};

use crate::decode::{IcmpKind, Observation, Ping, PingKind, TcpFlags, TcpSegment};
use crate::frame::Timestamp;

/// At most this many packets are kept per attempt; the rest are counted. A capture of a
/// long transfer must not grow memory with its length.
pub const MAX_TRACE: usize = 24;

/// At most this many attempts are kept at once (about 250 MB); SYNs beyond are counted.
/// Streaming callers ([`crate::stream`], the live scan's per-target judging) take
/// finished attempts out, so this bounds what is in flight, not the length of a scan or
/// a capture.
pub const MAX_ATTEMPTS: usize = 1 << 20;

/// How long (capture time) a segment that fits no attempt waits for its SYN: capture
/// order differs from wire order by microseconds to milliseconds (per-queue buffers, a
/// merge of two interfaces' captures), far less than any retransmission timeout.
pub const HOLD_NS: u64 = 300_000_000;

/// At most this many segments are held at once; beyond, they are unmatched at once (a
/// capture that starts in the middle of many connections must not grow memory).
pub const MAX_HELD: usize = 4096;

/// A segment waiting for its SYN.
#[derive(Clone, Copy, Debug)]
struct Held {
    ts: Timestamp,
    seg: TcpSegment,
}

/// A 4-tuple without orientation: the held segment's direction is known only once its
/// SYN says who the client is.
type PairKey = (SocketAddr, SocketAddr);

fn pair_key(a: SocketAddr, b: SocketAddr) -> PairKey {
    if a <= b { (a, b) } else { (b, a) }
}

/// Sequence numbers are compared modulo 2^32 (RFC 9293 §3.4): `x` is within `window` at or
/// after `base`.
fn seq_within(x: u32, base: u32, window: u32) -> bool {
    x.wrapping_sub(base) < window
}

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
    /// An echo or timestamp message of host discovery: never part of a port's exchange,
    /// only of a host's ([`TracePacket::ping`]).
    Ping(PingKind),
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
    /// The address of the attempt's client (the side that sent the SYN): two clients can
    /// share a source port, so `scanner_port` alone does not name the attempt.
    pub client: IpAddr,
    /// An outgoing SYN that repeats an earlier SYN of the same attempt.
    pub retransmission: bool,
    /// The TCP header was captured only up to its fixed 20 bytes (snap length or an IP
    /// fragment boundary): its options are unknown.
    pub cut: bool,
    /// AccECN's AE flag (header byte 12's low bit), beside the eight in `kind`.
    pub ae: bool,
    /// TCP payload bytes the IP header declared (0 for an ICMP error).
    pub payload_len: u32,
    /// Stored in the capture before the SYN it answers, and matched to it afterwards by
    /// 4-tuple and sequence numbers ([`Tracker`]'s hold).
    pub early: bool,
}

impl TracePacket {
    pub fn flags(&self) -> Option<TcpFlags> {
        match self.kind {
            PacketKind::Tcp(f) => Some(f),
            PacketKind::Icmp(_) | PacketKind::Ping(_) => None,
        }
    }

    /// A discovery echo or timestamp message as a trace packet: `seq` holds its sequence
    /// number and `scanner_port` its identifier (what names the exchange, as a source
    /// port does a TCP one); `client` is the scanner's address.
    pub fn ping(ts: Timestamp, dir: Dir, p: &Ping) -> TracePacket {
        TracePacket {
            ts,
            dir,
            kind: PacketKind::Ping(p.kind),
            from: p.ip.src,
            ttl: p.ip.ttl,
            dscp: p.ip.dscp,
            ip_id: p.ip.ip_id,
            flow_label: p.ip.flow_label,
            seq: u32::from(p.seq),
            ack: 0,
            win: 0,
            scanner_port: p.ident,
            client: match dir {
                Dir::Out => p.ip.src,
                Dir::In => p.ip.dst,
            },
            retransmission: false,
            cut: false,
            ae: false,
            payload_len: 0,
            early: false,
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
    /// A RST (either way) or a decisive ICMP error ended it: nothing more belongs to it.
    pub closed: bool,
    /// The newest packet's time.
    pub last_seen: Timestamp,
    /// Creation order among the tracker's attempts (slots are reused).
    serial: u64,
}

/// The serial of [`Attempt::vacant`]: serials count attempts from 0 and never reach it.
const VACANT: u64 = u64::MAX;

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
            closed: false,
            last_seen: started,
            serial: 0,
        }
    }

    /// What a tracker's slot holds once its attempt was taken out: no attempt (its serial
    /// is no attempt's, and it owns no memory).
    fn vacant() -> Self {
        let nowhere = SocketAddr::from(([0, 0, 0, 0], 0));
        Attempt {
            key: FlowKey {
                scanner: nowhere,
                target: nowhere,
            },
            started: Timestamp(0),
            isn: None,
            packets: Vec::new(),
            dropped_packets: 0,
            answered: false,
            closed: false,
            last_seen: Timestamp(0),
            serial: VACANT,
        }
    }

    fn is_vacant(&self) -> bool {
        self.serial == VACANT
    }

    fn push(&mut self, p: TracePacket) {
        self.last_seen = self.last_seen.max(p.ts);
        if self.packets.len() < MAX_TRACE {
            self.packets.push(p);
        } else {
            self.dropped_packets += 1;
        }
    }

    /// Creation order among the attempts of one tracker.
    pub fn serial(&self) -> u64 {
        self.serial
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

/// The tracker's hashes of an observation's 4-tuple, as sent (`fwd`) and reversed
/// (`rev`); for an ICMP error, of the quoted 4-tuple. Pure, so a replay computes them on
/// its decoding thread, while the matching thread is busy with the previous batch. A pure
/// SYN's reversed hash is left for the tracker to compute in the rare case it needs it
/// (the SYN opens no attempt).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyHashes {
    fwd: u32,
    rev: Option<u32>,
}

impl KeyHashes {
    pub fn of(obs: &Observation) -> Self {
        match obs {
            Observation::Tcp(seg) => {
                let (src, dst) = (
                    SocketAddr::new(seg.ip.src, seg.sport),
                    SocketAddr::new(seg.ip.dst, seg.dport),
                );
                KeyHashes {
                    fwd: Tracker::hash(&FlowKey {
                        scanner: src,
                        target: dst,
                    }),
                    rev: (!seg.flags.is_syn_only()).then(|| {
                        Tracker::hash(&FlowKey {
                            scanner: dst,
                            target: src,
                        })
                    }),
                }
            }
            Observation::Icmp(err) => {
                let q = &err.quoted;
                KeyHashes {
                    fwd: Tracker::hash(&FlowKey {
                        scanner: SocketAddr::new(q.src, q.sport),
                        target: SocketAddr::new(q.dst, q.dport),
                    }),
                    rev: None,
                }
            }
            Observation::Ping(_) => KeyHashes::default(),
        }
    }
}

/// Groups observations into attempts.
#[derive(Debug, Default)]
pub struct Tracker {
    /// Slot of the current attempt on each 4-tuple, with the key's 32-bit hash. The table
    /// holds 8 bytes per key and compares keys through `slots` (a full-range scan has
    /// 65,535 keys of 64 bytes that the slots already hold); the stored hash lets it grow
    /// without reading every slot again.
    by_key: HashTable<(u32, u32)>,
    /// Attempts in flight; [`Attempt::vacant`] where one was taken out (reused through
    /// `free`). Not `Option<Attempt>`: a capture's end hands the slots over as they are
    /// when none is vacant (a full-range capture's 65,535), without moving each out.
    slots: Vec<Attempt>,
    free: Vec<u32>,
    /// Attempts in the slots.
    live: usize,
    next_serial: u64,
    /// Slots of each target's attempts, kept only when asked for ([`Tracker::index_targets`]).
    by_target: Option<FxHashMap<IpAddr, Vec<(u32, u64)>>>,
    stats: TrackerStats,
    /// Overrides MAX_ATTEMPTS.
    limit: Option<usize>,
    /// Segments that fit no attempt yet, by their unoriented 4-tuple.
    held: FxHashMap<PairKey, Vec<Held>>,
    /// (arrival, 4-tuple) of held segments, oldest first, for expiry.
    held_q: std::collections::VecDeque<(Timestamp, PairKey)>,
    held_count: usize,
}

/// What one observation did to the tracker (for streaming callers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Touch {
    /// The attempt's slot and serial (a slot is reused once its attempt is taken out).
    pub slot: u32,
    pub serial: u64,
    /// The observation started this attempt.
    pub started: bool,
}

impl Tracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// A tracker expecting about `n` attempts (a live scan knows how many it will make).
    pub fn with_capacity(n: usize) -> Self {
        Tracker {
            by_key: HashTable::with_capacity(n),
            slots: Vec::with_capacity(n),
            ..Tracker::default()
        }
    }

    /// Keeps an index of each target's attempts, for [`Tracker::take_target`].
    pub fn index_targets(mut self) -> Self {
        self.by_target = Some(FxHashMap::default());
        self
    }

    /// A key's 32-bit hash, as stored in `by_key`.
    fn hash(key: &FlowKey) -> u32 {
        let h = FxBuildHasher.hash_one(key);
        (h >> 32) as u32 ^ h as u32
    }

    /// The table's 64-bit hash from a stored 32-bit one (multiplied out, so that both the
    /// bucket bits and the control byte's top bits depend on all of it).
    fn spread(h: u32) -> u64 {
        u64::from(h).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    /// The slot of the attempt on `key`, whose hash is `h`.
    fn find_hashed(&self, key: &FlowKey, h: u32) -> Option<usize> {
        let slots = &self.slots;
        self.by_key
            .find(Self::spread(h), |&(i, stored)| {
                stored == h && key_of(slots, i) == Some(key)
            })
            .map(|&(i, _)| i as usize)
    }

    fn slot(&mut self, idx: usize) -> &mut Attempt {
        let a = &mut self.slots[idx];
        debug_assert!(!a.is_vacant(), "the table points at live slots");
        a
    }

    /// The attempt in `slot`, if it is the one with `serial`.
    pub fn get(&self, slot: u32, serial: u64) -> Option<&Attempt> {
        // (A vacant slot's serial is no attempt's.)
        self.slots.get(slot as usize).filter(|a| a.serial == serial)
    }

    /// Takes the attempt in `slot` out (if it is the one with `serial`): later packets of
    /// its 4-tuple no longer join it.
    pub fn take(&mut self, slot: u32, serial: u64) -> Option<Attempt> {
        self.get(slot, serial)?;
        let a = std::mem::replace(&mut self.slots[slot as usize], Attempt::vacant());
        if let Ok(entry) = self
            .by_key
            .find_entry(Self::spread(Self::hash(&a.key)), |&(i, _)| i == slot)
        {
            entry.remove();
        }
        self.free.push(slot);
        self.live -= 1;
        Some(a)
    }

    /// Takes every attempt at `ip` out, in the order they were made (needs
    /// [`Tracker::index_targets`]; without it, finds them by a scan of the slots).
    pub fn take_target(&mut self, ip: IpAddr) -> Vec<Attempt> {
        let found: Vec<(u32, u64)> = match self.by_target.as_mut() {
            Some(index) => index.remove(&ip).unwrap_or_default(),
            None => self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, a)| !a.is_vacant() && a.key.target.ip() == ip)
                .map(|(i, a)| (i as u32, a.serial))
                .collect(),
        };
        if found.len() == self.live && found.iter().all(|&(s, n)| self.get(s, n).is_some()) {
            // Every attempt in flight is this target's (a one-host scan): the slots are
            // handed over whole and emptied in place, rather than taken out one by one
            // (a hash-table removal each) into a second vector as large.
            let mut out = live_only(std::mem::take(&mut self.slots), self.live);
            out.sort_unstable_by_key(|a| a.serial);
            self.live = 0;
            self.free = Vec::new();
            self.by_key = HashTable::new();
            return out;
        }
        let mut out: Vec<Attempt> = found
            .into_iter()
            .filter_map(|(slot, serial)| self.take(slot, serial))
            .collect();
        out.sort_unstable_by_key(|a| a.serial);
        if self.live == 0 {
            // The last target out (a full-range scan of one host): give the slots back
            // rather than hold them empty beside the attempts just taken.
            self.slots = Vec::new();
            self.free = Vec::new();
            self.by_key = HashTable::new();
        }
        out
    }

    /// The attempts at `ip` in flight (fast with [`Tracker::index_targets`]).
    pub fn attempts_of(&self, ip: IpAddr) -> Vec<&Attempt> {
        match self.by_target.as_ref() {
            Some(index) => index
                .get(&ip)
                .into_iter()
                .flatten()
                .filter_map(|&(slot, serial)| self.get(slot, serial))
                .collect(),
            None => self
                .attempts()
                .filter(|a| a.key.target.ip() == ip)
                .collect(),
        }
    }

    /// (slot, serial) of the attempts in flight that were not closed and have had no
    /// packet for `idle_ns` by `now`.
    pub fn idle_open(&self, now: Timestamp, idle_ns: u64) -> Vec<(u32, u64)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, a)| !a.is_vacant() && !a.closed && now.since(a.last_seen) >= idle_ns)
            .map(|(i, a)| (i as u32, a.serial))
            .collect()
    }

    /// Attempts in flight.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Keeps at most `n` attempts instead of MAX_ATTEMPTS (tests; tight memory).
    pub fn limit_attempts(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    fn max_attempts(&self) -> usize {
        self.limit.unwrap_or(MAX_ATTEMPTS)
    }

    /// The counters; segments still held count as unmatched (if their SYN comes later,
    /// they join it and no longer count).
    pub fn stats(&self) -> TrackerStats {
        TrackerStats {
            unmatched: self.stats.unmatched + self.held_count as u64,
            ..self.stats
        }
    }

    /// Segments held for their SYN.
    pub fn held(&self) -> usize {
        self.held_count
    }

    /// Holds a segment that fits no attempt, until its SYN comes or [`HOLD_NS`] passes.
    fn hold(&mut self, ts: Timestamp, seg: &TcpSegment) {
        if self.held_count >= MAX_HELD {
            self.stats.unmatched += 1;
            return;
        }
        let key = pair_key(
            SocketAddr::new(seg.ip.src, seg.sport),
            SocketAddr::new(seg.ip.dst, seg.dport),
        );
        self.held
            .entry(key)
            .or_default()
            .push(Held { ts, seg: *seg });
        self.held_q.push_back((ts, key));
        self.held_count += 1;
    }

    /// Segments held longer than [`HOLD_NS`] before `now` are unmatched.
    fn expire_held(&mut self, now: Timestamp) {
        while let Some(&(ts, key)) = self.held_q.front() {
            if now.since(ts) < HOLD_NS {
                break;
            }
            self.held_q.pop_front();
            if let Some(list) = self.held.get_mut(&key) {
                let before = list.len();
                list.retain(|h| now.since(h.ts) < HOLD_NS);
                let gone = before - list.len();
                self.held_count -= gone;
                self.stats.unmatched += gone as u64;
                if list.is_empty() {
                    self.held.remove(&key);
                }
            }
        }
    }

    /// A SYN started the attempt in `idx`: held segments of its 4-tuple that belong to it
    /// by their sequence numbers join it, in capture order.
    fn claim_held(&mut self, idx: usize) {
        let (key, isn) = {
            let a = &self.slots[idx];
            (a.key, a.isn)
        };
        let Some(isn) = isn else { return };
        let pk = pair_key(key.scanner, key.target);
        let Some(list) = self.held.remove(&pk) else {
            return;
        };
        let (mine, rest): (Vec<Held>, Vec<Held>) =
            list.into_iter().partition(|h| fits(&key, isn, &h.seg));
        self.held_count -= mine.len();
        if !rest.is_empty() {
            self.held.insert(pk, rest);
        }
        for h in mine {
            let dir = if SocketAddr::new(h.seg.ip.src, h.seg.sport) == key.scanner {
                Dir::Out
            } else {
                Dir::In
            };
            self.apply(idx, h.ts, &h.seg, dir, true);
        }
    }

    /// The attempts in flight, in no particular order.
    pub fn attempts(&self) -> impl Iterator<Item = &Attempt> {
        self.slots.iter().filter(|a| !a.is_vacant())
    }

    /// Copies of the attempts in flight, in the order they were made (tests, fuzzing).
    pub fn snapshot(&self) -> Vec<Attempt> {
        let mut v: Vec<Attempt> = self.attempts().cloned().collect();
        v.sort_unstable_by_key(|a| a.serial);
        v
    }

    /// The attempts in flight, in the order they were made.
    pub fn into_attempts(self) -> Vec<Attempt> {
        let mut v = self.drain();
        v.sort_unstable_by_key(|a| a.serial);
        v
    }

    /// The attempts in flight, in no particular order.
    pub fn drain(self) -> Vec<Attempt> {
        live_only(self.slots, self.live)
    }

    /// Declares an attempt the caller knows was made, so its answers are matched even if
    /// the capture missed the SYN. (The live scan does not need it: its capture sees
    /// every SYN; tests use it to build answers without a captured SYN.)
    pub fn register(&mut self, key: FlowKey, ts: Timestamp) {
        let h = Self::hash(&key);
        if self.find_hashed(&key, h).is_none() {
            self.start(key, h, ts);
        }
    }

    /// Starts an attempt, unless MAX_ATTEMPTS are in flight already.
    fn start(&mut self, key: FlowKey, h: u32, ts: Timestamp) -> Option<usize> {
        if self.live >= self.max_attempts() {
            self.stats.attempts_not_kept += 1;
            return None;
        }
        let mut attempt = Attempt::new(key, ts);
        attempt.serial = self.next_serial;
        self.next_serial += 1;
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = attempt;
                i as usize
            }
            None => {
                self.slots.push(attempt);
                self.slots.len() - 1
            }
        };
        self.live += 1;
        if let Some(index) = self.by_target.as_mut() {
            index
                .entry(key.target.ip())
                .or_default()
                .push((idx as u32, self.next_serial - 1));
        }
        let slots = &self.slots;
        match self.by_key.find_mut(Self::spread(h), |&(i, stored)| {
            stored == h && i as usize != idx && key_of(slots, i) == Some(&key)
        }) {
            // A new attempt on a known 4-tuple (port reuse) takes the key over.
            Some(slot) => slot.0 = idx as u32,
            None => {
                self.by_key
                    .insert_unique(Self::spread(h), (idx as u32, h), |&(_, stored)| {
                        Self::spread(stored)
                    });
            }
        }
        Some(idx)
    }

    /// Feeds one observation. `accept_new` decides whether a SYN to this target starts an
    /// attempt (a live scan only tracks its own targets). Says which attempt it joined.
    pub fn observe(
        &mut self,
        ts: Timestamp,
        obs: &Observation,
        accept_new: impl Fn(&FlowKey) -> bool,
    ) -> Option<Touch> {
        self.observe_hashed(ts, obs, KeyHashes::of(obs), accept_new)
    }

    /// [`Tracker::observe`] with the observation's [`KeyHashes`] computed ahead (a
    /// replay's decoding thread computes them while this one matches).
    pub fn observe_hashed(
        &mut self,
        ts: Timestamp,
        obs: &Observation,
        hashes: KeyHashes,
        accept_new: impl Fn(&FlowKey) -> bool,
    ) -> Option<Touch> {
        self.stats.observations += 1;
        if self.held_count > 0 {
            self.expire_held(ts);
        }
        match obs {
            Observation::Tcp(seg) => self.observe_tcp(ts, seg, hashes, accept_new),
            // Host discovery's, not an attempt's (the live correlator keeps them).
            Observation::Ping(_) => None,
            Observation::Icmp(err) => {
                let q = &err.quoted;
                let key = FlowKey {
                    scanner: SocketAddr::new(q.src, q.sport),
                    target: SocketAddr::new(q.dst, q.dport),
                };
                let Some(idx) = self.find_hashed(&key, hashes.fwd) else {
                    self.stats.unmatched += 1;
                    return None;
                };
                let a = self.slot(idx);
                if err.kind.is_decisive() {
                    a.answered = true;
                    a.closed = true;
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
                    client: key.scanner.ip(),
                    retransmission: false,
                    cut: false,
                    ae: false,
                    payload_len: 0,
                    early: false,
                });
                Some(Touch {
                    slot: idx as u32,
                    serial: a.serial,
                    started: false,
                })
            }
        }
    }

    fn observe_tcp(
        &mut self,
        ts: Timestamp,
        seg: &TcpSegment,
        hashes: KeyHashes,
        accept_new: impl Fn(&FlowKey) -> bool,
    ) -> Option<Touch> {
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
        let serial_of = |t: &Self, i: usize| t.slots[i].serial;
        let mut started = false;
        let f = self.find_hashed(&fwd, hashes.fwd);
        let accept = syn_only && f.is_none() && accept_new(&fwd);
        // The reverse 4-tuple matters to a pure SYN only when it opens no attempt (half
        // a replay's look-ups were these).
        let r = if syn_only && (f.is_some() || accept) {
            None
        } else {
            let h = hashes.rev.unwrap_or_else(|| Self::hash(&rev));
            self.find_hashed(&rev, h)
        };
        let (idx, dir) = match (f, r) {
            (Some(f), Some(r)) if !syn_only && serial_of(self, r) > serial_of(self, f) => {
                (Some(r), Dir::In)
            }
            (Some(f), _) => {
                let a = &self.slots[f];
                // A fresh SYN on a finished 4-tuple is a new attempt (port reuse).
                if syn_only && a.isn.is_some_and(|isn| isn != seg.seq) && a.answered {
                    started = true;
                    (self.start(fwd, hashes.fwd, ts), Dir::Out)
                } else {
                    (Some(f), Dir::Out)
                }
            }
            (None, _) if accept => {
                started = true;
                (self.start(fwd, hashes.fwd, ts), Dir::Out)
            }
            (None, Some(r)) => (Some(r), Dir::In),
            (None, None) => (None, Dir::In),
        };
        let Some(idx) = idx else {
            if syn_only {
                self.stats.unmatched += 1;
            } else {
                // Perhaps stored before its SYN: wait for it a little.
                self.hold(ts, seg);
            }
            return None;
        };
        self.apply(idx, ts, seg, dir, false);
        if started && self.held_count > 0 {
            self.claim_held(idx);
        }
        let a = self.slot(idx);
        Some(Touch {
            slot: idx as u32,
            serial: a.serial,
            started,
        })
    }

    /// Adds a segment to the attempt in `idx`, seen in direction `dir`.
    fn apply(&mut self, idx: usize, ts: Timestamp, seg: &TcpSegment, dir: Dir, early: bool) {
        let syn_only = seg.flags.is_syn_only();
        let a = self.slot(idx);
        let fwd_self_connect =
            SocketAddr::new(seg.ip.src, seg.sport) == SocketAddr::new(seg.ip.dst, seg.dport);
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
        if seg.flags.rst() {
            a.closed = true;
        }
        // On a self-connect every segment matches `fwd`; a SYN/ACK or RST there still
        // answers the attempt.
        if dir == Dir::Out && fwd_self_connect && !syn_only {
            a.answered = true;
        }
        let client = a.key.scanner.ip();
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
            client,
            retransmission,
            cut: seg.opts.cut,
            ae: seg.opts.ae,
            payload_len: seg.payload_len,
            early,
        });
    }
}

/// Whether a held segment belongs to the attempt `key` whose SYN had sequence number
/// `isn`: an answer (SYN/ACK, RST) must acknowledge exactly ISN + 1 (RFC 9293 §3.5,
/// §3.10.7.1); any other segment must acknowledge (from the target) or carry (from the
/// client) a sequence number within 2^30 after it.
fn fits(key: &FlowKey, isn: u32, seg: &TcpSegment) -> bool {
    let next = isn.wrapping_add(1);
    let from_client = SocketAddr::new(seg.ip.src, seg.sport) == key.scanner;
    if from_client {
        !seg.flags.syn() && seq_within(seg.seq, next, 1 << 30)
    } else if seg.flags.syn() || seg.flags.rst() {
        seg.flags.ack() && seg.ack == next
    } else {
        seg.flags.ack() && seq_within(seg.ack, next, 1 << 30)
    }
}

/// The key of the attempt in slot `i`, if one is there.
fn key_of(slots: &[Attempt], i: u32) -> Option<&FlowKey> {
    slots
        .get(i as usize)
        .filter(|a| !a.is_vacant())
        .map(|a| &a.key)
}

/// The attempts of `slots` that are not vacant (`live` of them), in the slots' own
/// memory: when none is vacant, `slots` as they are.
fn live_only(mut slots: Vec<Attempt>, live: usize) -> Vec<Attempt> {
    if live < slots.len() {
        slots.retain(|a| !a.is_vacant());
    }
    slots
}

fn fwd_scanner_port(dir: Dir, seg: &TcpSegment) -> u16 {
    match dir {
        Dir::Out => seg.sport,
        Dir::In => seg.dport,
    }
}

#[cfg(test)]
pub(crate) mod tests {
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
        let a = &tr.snapshot()[0];
        assert_eq!(tr.len(), 1);
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
        assert_eq!(tr.len(), 1);
        assert!(tr.snapshot()[0].packets[1].retransmission);
        feed(&mut tr, 1001, &seg(T, S, RA, 0, 63));
        feed(&mut tr, 5000, &seg(S, T, SYN, 99, 64));
        assert_eq!(tr.len(), 2);
        assert_eq!(tr.snapshot()[1].isn, Some(99));
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
        assert_eq!(tr.snapshot()[0].packets.len(), 1);
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
        let a = &tr.snapshot()[0];
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
        assert_eq!(tr.len(), 1);
        assert!(tr.snapshot()[0].key.is_self_connect());
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
        let at = tr.snapshot();
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
    fn a_syn_back_from_a_target_not_scanned_joins_the_attempt() {
        // A simultaneous open: the target's own SYN to the scanner's port is no attempt
        // of ours (the live scan accepts only its targets), but belongs to ours.
        let mut tr = Tracker::new();
        let ours = |k: &FlowKey| k.target == T.parse::<SocketAddr>().unwrap();
        tr.observe(Timestamp(0), &seg(S, T, SYN, 5, 64), ours);
        tr.observe(Timestamp(1), &seg(T, S, SYN, 900, 63), ours);
        assert_eq!(tr.len(), 1);
        let a = &tr.snapshot()[0];
        assert_eq!(a.packets.len(), 2);
        assert_eq!(a.packets[1].dir, Dir::In);
        // Accepted, the same SYN starts an attempt of its own.
        tr.observe(Timestamp(2), &seg(T, S, SYN, 901, 63), |_| true);
        assert_eq!(tr.len(), 2);
    }

    #[test]
    fn a_slot_taken_out_holds_no_attempt_until_reused() {
        let mut tr = Tracker::new();
        let t = |port: u16| format!("198.18.2.1:{port}");
        let mut touched = Vec::new();
        for port in [81, 82, 83] {
            touched.extend(tr.observe(Timestamp(0), &seg(S, &t(port), SYN, 5, 64), |_| true));
        }
        let middle = touched[1];
        let taken = tr.take(middle.slot, middle.serial).expect("in flight");
        assert_eq!(taken.key.target.port(), 82);
        assert!(tr.take(middle.slot, middle.serial).is_none());
        assert!(tr.get(middle.slot, middle.serial).is_none());
        assert_eq!(tr.len(), 2);
        assert_eq!(tr.attempts().count(), 2);
        // Its answer no longer finds it.
        assert!(
            tr.observe(Timestamp(1), &seg(&t(82), S, RA, 0, 63), |_| true)
                .is_none()
        );
        // A new attempt reuses the slot, under a new serial.
        let again = tr
            .observe(Timestamp(2), &seg(S, &t(84), SYN, 5, 64), |_| true)
            .expect("started");
        assert_eq!(again.slot, middle.slot);
        assert_ne!(again.serial, middle.serial);
        let ports: Vec<u16> = tr.drain().iter().map(|a| a.key.target.port()).collect();
        assert_eq!(ports.len(), 3);
        assert!(ports.contains(&84) && !ports.contains(&82));
    }

    #[test]
    fn draining_leaves_out_vacant_slots() {
        let mut tr = Tracker::new();
        let mut touched = Vec::new();
        for port in 1..=4u16 {
            let t = format!("198.18.2.1:{port}");
            touched.extend(tr.observe(Timestamp(0), &seg(S, &t, SYN, 5, 64), |_| true));
        }
        for t in [touched[0], touched[2]] {
            tr.take(t.slot, t.serial);
        }
        let mut ports: Vec<u16> = tr.drain().iter().map(|a| a.key.target.port()).collect();
        ports.sort();
        assert_eq!(ports, [2, 4]);
    }

    #[test]
    fn attempts_are_capped_and_counted() {
        let mut tr = Tracker::new().limit_attempts(5);
        for i in 0..8u16 {
            let src = format!("198.18.1.1:{}", 40000 + i);
            feed(&mut tr, i as u64, &seg(&src, T, SYN, i as u32, 64));
            feed(&mut tr, i as u64, &seg(T, &src, RA, 0, 63));
        }
        assert_eq!(tr.len(), 5);
        assert_eq!(tr.stats().attempts_not_kept, 3);
        assert_eq!(
            tr.stats().unmatched,
            6,
            "their SYNs and RSTs are counted, not kept"
        );
    }

    fn seg_ack(src: &str, dst: &str, flags: u8, seq: u32, ack: u32) -> Observation {
        let mut o = seg(src, dst, flags, seq, 63);
        if let Observation::Tcp(t) = &mut o {
            t.ack = ack;
        }
        o
    }

    const SA: u8 = TcpFlags::SYN | TcpFlags::ACK;
    const A: u8 = TcpFlags::ACK;

    #[test]
    fn a_syn_ack_stored_before_its_syn_joins_it_by_sequence_numbers() {
        let mut tr = Tracker::new();
        feed(&mut tr, 0, &seg_ack(T, S, SA, 900, 6));
        assert_eq!(tr.held(), 1);
        assert_eq!(
            tr.stats().unmatched,
            1,
            "held counts as unmatched until claimed"
        );
        feed(&mut tr, 0, &seg(S, T, SYN, 5, 64));
        feed(&mut tr, 1, &seg_ack(S, T, A, 6, 901));
        assert_eq!(tr.held(), 0);
        assert_eq!(tr.stats().unmatched, 0);
        let a = &tr.snapshot()[0];
        assert!(a.answered);
        assert_eq!(a.packets.len(), 3);
        assert!(a.packets[1].early && a.packets[1].dir == Dir::In);
        assert!(!a.packets[2].early);
    }

    #[test]
    fn a_held_answer_with_the_wrong_ack_or_too_old_is_not_claimed() {
        let mut tr = Tracker::new();
        // Acknowledges another ISN: not this SYN's answer.
        feed(&mut tr, 0, &seg_ack(T, S, RA, 0, 77));
        feed(&mut tr, 0, &seg(S, T, SYN, 5, 64));
        assert!(!tr.snapshot()[0].answered);
        assert_eq!(tr.snapshot()[0].packets.len(), 1);
        // A SYN/ACK held longer than HOLD_NS is given up.
        let other = "198.18.1.1:40001";
        feed(&mut tr, 10, &seg_ack(T, other, SA, 900, 6));
        feed(
            &mut tr,
            10 + HOLD_NS / 1_000_000 + 1,
            &seg(other, T, SYN, 5, 64),
        );
        assert_eq!(tr.snapshot()[1].packets.len(), 1);
        assert_eq!(tr.held(), 0);
        assert_eq!(tr.stats().unmatched, 2);
    }

    #[test]
    fn held_segments_are_bounded() {
        let mut tr = Tracker::new();
        for i in 0..(MAX_HELD as u32 + 10) {
            let src = format!("198.18.2.1:{}", 1 + i % 60000);
            feed(&mut tr, 0, &seg_ack(&src, S, A, i, 0));
        }
        assert_eq!(tr.held(), MAX_HELD);
        assert_eq!(tr.stats().unmatched, MAX_HELD as u64 + 10);
    }

    #[test]
    fn trace_is_capped() {
        let mut tr = Tracker::new();
        feed(&mut tr, 0, &seg(S, T, SYN, 5, 64));
        for i in 0..100 {
            feed(&mut tr, i, &seg(T, S, TcpFlags::ACK, 0, 63));
        }
        assert_eq!(tr.snapshot()[0].packets.len(), MAX_TRACE);
        assert_eq!(tr.snapshot()[0].dropped_packets, 101 - MAX_TRACE as u32);
    }
}
