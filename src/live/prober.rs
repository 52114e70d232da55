//! The prober: ordinary nonblocking connect() calls driven by epoll, a window of attempts
//! in flight, per-attempt timeouts adapted to the measured round-trip time, retries from
//! a fresh source port, and an optional rate limit.
//!
//! It learns each attempt's source port with getsockname() so the capture can match the
//! packets by 4-tuple, closes every socket as soon as its attempt ends (SO_LINGER 0: an
//! open port sees our RST, no TIME_WAIT is left), and reports every attempt's outcome.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::holdback::{Held, SlowRetries};
use super::sys;
use synack_core::decode::IcmpKind;
use synack_core::frame::Timestamp;
use synack_core::verdict::{ConnectOutcome, ProbeRecord};

/// Lower bound of the adaptive timeout (nmap's --min-rtt-timeout default).
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10);
/// Before any round trip was measured (RFC 6298 §2.1 uses 1 s too).
pub const INITIAL_TIMEOUT: Duration = Duration::from_secs(1);
/// Attempts started per turn of the loop before completions and timeouts are looked at.
const LAUNCH_BURST: usize = 64;
/// A self-connect is retried from a new source port at most this often.
const MAX_SELF_CONNECT_RETRIES: u32 = 3;

#[derive(Clone, Debug)]
pub struct ProbeConfig {
    pub targets: Vec<IpAddr>,
    pub ports: Vec<u16>,
    /// Fixed per-attempt timeout; None adapts it to the measured round-trip time.
    pub timeout: Option<Duration>,
    /// Further attempts after an unanswered one.
    pub retries: u32,
    /// Attempts in flight at most.
    pub parallelism: usize,
    /// Attempts started per second at most.
    pub max_rate: Option<f64>,
    /// DSCP to mark SYNs with (None: leave the TOS byte alone).
    pub dscp: Option<u8>,
    /// This prober's share of the work when several run at once: (index, count). It
    /// takes every count-th (port, target) pair from `index`, and that share of the
    /// open-file limit.
    pub shard: (usize, usize),
    /// nmap's `--host-timeout`: once this long has passed since a target's first attempt,
    /// its unanswered attempts are not retried (each remaining port is still tried once,
    /// so every port keeps a verdict) and the user is told once per target.
    pub host_timeout: Option<Duration>,
    /// Round trips measured before the scan (host discovery), per target: each seeds
    /// that target's estimate.
    pub rtt_seeds: Arc<Vec<(IpAddr, Duration)>>,
    /// Keeps the probers from running ahead of the correlator (the main scan only).
    pub pace: Option<Arc<Pace>>,
    /// Time per target for re-probing, slower, the ports that stayed silent after the
    /// target answered earlier SYNs with ICMP errors (live/holdback.rs); zero: never.
    pub slow_retry_budget: Duration,
}

/// One host's discovery result (live/discovery.rs), on its way to the correlator.
#[derive(Clone, Debug)]
pub struct HostFound {
    pub ip: IpAddr,
    /// None: down.
    pub up: Option<crate::report::HostProof>,
    pub probes: Vec<crate::report::HostProbe>,
    /// The local addresses of discovery's connect() probes: their packets are discovery's
    /// exchange, not the port scan's, and are kept out of the port verdicts.
    pub flows: Vec<SocketAddr>,
    /// Down, and the kernel's neighbour table shows it asked for the host's link-layer
    /// address and got no reply (ARP/ND on a directly connected network).
    pub no_neighbour: bool,
}

#[derive(Clone, Debug)]
pub enum ProbeEvent {
    /// An attempt ended; `port_done` when it was the port's last. (The attempt's packets
    /// reach the correlator through the capture, which sees its SYN.)
    Finished {
        target: SocketAddr,
        record: ProbeRecord,
        port_done: bool,
    },
    /// Something the user should hear once (a capped window).
    Notice(String),
    /// Host discovery's result for one target (before any of its ports).
    Host(HostFound),
    /// The last event: how long after now an answer to our last SYNs could still come
    /// (zero when every attempt was answered, else the timeout).
    Done { late_answers_until: Duration },
}

/// Round-trip estimator of RFC 6298 §2, giving the timeout nmap-style: srtt + 4·rttvar,
/// clamped.
#[derive(Clone, Copy, Debug, Default)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
}

impl RttEstimator {
    pub fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + delta) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
    }

    pub fn timeout(&self) -> Duration {
        match self.srtt {
            None => INITIAL_TIMEOUT,
            Some(srtt) => (srtt + self.rttvar * 4).clamp(MIN_TIMEOUT, MAX_TIMEOUT),
        }
    }
}

/// Round-trip estimates per target (RFC 6298 for each address, as nmap keeps timing
/// per host), and one for the whole prober, which serves a target's first attempts until
/// it has a sample of its own: a far host scanned beside a near one is not given up at
/// the near host's timeout once it has answered, and a new host does not start from the
/// initial second when its neighbours have answered. The neighbours say nothing about a
/// host that never answered, though: its last attempt at a port waits at least the
/// initial second (RFC 6298 §2.1), so a far host whose first answers are still on their
/// way when the near hosts' timeout passes keeps its verdicts (`attempt_timeout`). A
/// host that let such a wait pass without a word is taken for silent (a dead address
/// under -Pn): its later attempts go back to the group's timeout, so each silent host
/// costs one long wait, not one per port.
#[derive(Clone, Debug, Default)]
pub struct HostRtt {
    hosts: rustc_hash::FxHashMap<IpAddr, RttEstimator>,
    group: RttEstimator,
    silent: rustc_hash::FxHashSet<IpAddr>,
}

impl HostRtt {
    /// Estimates above this many hosts are forgotten for hosts with nothing in flight
    /// (the probers work through target groups of at most 1,024 hosts).
    const KEEP: usize = 4096;

    pub fn sample(&mut self, ip: IpAddr, rtt: Duration) {
        self.hosts.entry(ip).or_default().sample(rtt);
        self.group.sample(rtt);
    }

    /// The timeout for an attempt to `ip`: its own estimate, or the group's.
    pub fn timeout(&self, ip: IpAddr) -> Duration {
        match self.hosts.get(&ip) {
            Some(r) => r.timeout(),
            None => self.group.timeout(),
        }
    }

    /// The timeout for an attempt to `ip`, `last` when no retry will follow: the host's
    /// own estimate once it has one; before that the group's for an attempt that will
    /// be retried, and at least [`INITIAL_TIMEOUT`] for the last one.
    pub fn attempt_timeout(&self, ip: IpAddr, last: bool) -> Duration {
        match self.hosts.get(&ip) {
            Some(r) => r.timeout(),
            None if last && !self.silent.contains(&ip) => self.group.timeout().max(INITIAL_TIMEOUT),
            None => self.group.timeout(),
        }
    }

    /// An attempt to `ip` ended without an answer after `waited`: a host without a
    /// sample that let the initial second pass is silent from now on.
    pub fn timed_out(&mut self, ip: IpAddr, waited: Duration) {
        if waited >= INITIAL_TIMEOUT && !self.hosts.contains_key(&ip) {
            self.silent.insert(ip);
        }
    }

    /// The timeout of the slowest host known (for answers still on their way).
    pub fn longest_timeout(&self) -> Duration {
        self.hosts
            .values()
            .map(RttEstimator::timeout)
            .fold(self.group.timeout(), Duration::max)
    }

    /// Hosts remembered (with an estimate, or silent).
    pub fn len(&self) -> usize {
        self.hosts.len() + self.silent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.silent.is_empty()
    }

    /// Keeps the estimates of the hosts `keep` names (memory follows the target group).
    pub fn forget_except(&mut self, keep: impl Fn(IpAddr) -> bool) {
        self.hosts.retain(|ip, _| keep(*ip));
        self.silent.retain(|ip| keep(*ip));
    }
}

struct InFlight {
    fd: OwnedFd,
    target: SocketAddr,
    local: SocketAddr,
    attempt: u32,
    self_connects: u32,
    started: Instant,
    /// When the port's first attempt started.
    first: Instant,
    ts: Timestamp,
    /// A slow re-probe (live/holdback.rs): the port it belongs to (boxed: rare, and
    /// the window's slots stay small).
    slow: Option<Box<Held>>,
}

/// Work waiting to start: (target, attempts made so far, self-connects so far, when the
/// port's first attempt started).
type Pending = (SocketAddr, u32, u32, Option<Instant>);

/// Events go out in batches, one per turn of the loop: a message per event would wake
/// the correlator hundreds of thousands of times in a full-range scan.
struct Outbox<'a> {
    tx: &'a Sender<Vec<ProbeEvent>>,
    buf: Vec<ProbeEvent>,
}

impl Outbox<'_> {
    fn push(&mut self, ev: ProbeEvent) {
        self.buf.push(ev);
    }
    fn flush(&mut self) {
        if !self.buf.is_empty() {
            let _ = self.tx.send(std::mem::take(&mut self.buf));
        }
    }
}

/// How far the probers may run ahead of the correlator: past `limit` (target, port)
/// pairs started and not yet judged, each prober starts only a few pairs per turn and
/// pauses, so a correlator slowed by the machine (the probers and the capture share its
/// cores) gets the time to catch up instead of letting targets pile up. A brake, not a
/// stop: the probers always progress, so no wait can become a deadlock.
#[derive(Debug)]
pub struct Pace {
    pub started: AtomicU64,
    pub judged: AtomicU64,
    pub limit: u64,
    /// Fresh pairs each prober has taken (probers take every n-th pair, so equal counts
    /// mean level), and how many probers run.
    taken: [AtomicU64; MAX_PROBERS],
    probers: AtomicUsize,
}

/// The most prober threads a scan runs (one per core, at most four).
pub const MAX_PROBERS: usize = 4;

impl Pace {
    pub fn new(limit: u64) -> Self {
        Pace {
            started: AtomicU64::new(0),
            judged: AtomicU64::new(0),
            limit,
            taken: Default::default(),
            probers: AtomicUsize::new(1),
        }
    }

    /// A new set of `n` probers starts at the beginning of its own pairs.
    pub fn start_probers(&self, n: usize) {
        for t in &self.taken {
            t.store(0, Ordering::Relaxed);
        }
        self.probers
            .store(n.clamp(1, MAX_PROBERS), Ordering::Relaxed);
    }

    fn ahead(&self) -> bool {
        let started = self.started.load(Ordering::Relaxed);
        started.saturating_sub(self.judged.load(Ordering::Relaxed)) >= self.limit
    }

    /// Whether prober `shard` is held back: the correlator is behind and this prober is
    /// not behind another. A target is judged (and its pairs credited) only once every
    /// prober has started its pairs; a prober behind the others holds those targets back,
    /// so it goes on at full speed until it is level — held at the same crawl as the rest,
    /// it never caught up, and a /20 scan took 10–20 s instead of 3.
    fn holds(&self, shard: usize) -> bool {
        if !self.ahead() {
            return false;
        }
        let n = self.probers.load(Ordering::Relaxed);
        let mine = self.taken[shard.min(MAX_PROBERS - 1)].load(Ordering::Relaxed);
        let furthest = self.taken[..n]
            .iter()
            .map(|t| t.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        mine >= furthest
    }

    fn took(&self, shard: usize) {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.taken[shard.min(MAX_PROBERS - 1)].fetch_add(1, Ordering::Relaxed);
    }
}

/// Fresh starts per loop turn while ahead of the correlator.
const PACED_BURST: usize = 4;

/// Targets are probed in groups of at most this many (port, target) pairs, as nmap's
/// host groups: a group's targets finish together and leave the correlator before the
/// next group's are far along, so memory follows the group, not the scan.
pub const GROUP_PAIRS: usize = 8_192;

/// How many targets form a group for `ports` ports each: one host for a full-range
/// scan, up to 1,024 hosts for a few ports.
pub fn group_size(ports: usize) -> usize {
    (GROUP_PAIRS / ports.max(1)).clamp(1, 1024)
}

/// About how many attempts are in flight in the correlator at once (two groups).
pub fn in_flight_hint(targets: usize, ports: usize) -> usize {
    targets
        .saturating_mul(ports)
        .min(2 * group_size(ports) * ports.max(1))
}

/// The order (port, target) pairs are probed in: target group after target group; in a
/// group, port by port with the group's targets interleaved, so no single host takes the
/// whole window.
pub fn order<'a>(
    targets: &'a [std::net::IpAddr],
    ports: &'a [u16],
) -> impl Iterator<Item = SocketAddr> + 'a {
    targets
        .chunks(group_size(ports.len()))
        .flat_map(move |group| {
            ports
                .iter()
                .flat_map(move |&p| group.iter().map(move |&ip| SocketAddr::new(ip, p)))
        })
}

/// Runs the whole probe and returns when every port is done or `stop` is set.
pub fn run(
    cfg: &ProbeConfig,
    events: &Sender<Vec<ProbeEvent>>,
    stop: &AtomicBool,
) -> io::Result<()> {
    let mut out = Outbox {
        tx: events,
        buf: Vec::new(),
    };
    let result = run_inner(cfg, &mut out, stop);
    out.flush();
    result
}

fn run_inner(cfg: &ProbeConfig, out: &mut Outbox<'_>, stop: &AtomicBool) -> io::Result<()> {
    let epoll = sys::Epoll::new()?;
    let nofile = sys::raise_nofile_limit();
    let (shard, shards) = (cfg.shard.0, cfg.shard.1.max(1));
    let fd_budget = (nofile.saturating_sub(64) as usize / shards).max(8);
    let mut window = cfg.parallelism.max(1);
    if window > fd_budget {
        window = fd_budget;
        out.push(ProbeEvent::Notice(format!(
            "parallelism capped at {}: the open-file limit (RLIMIT_NOFILE) is {nofile}",
            window * shards
        )));
    }
    let mut slots: Vec<Option<InFlight>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut generation: Vec<u32> = Vec::new();
    // Attempts in flight with their start and target. Each target has its own timeout,
    // applied when checked, so attempts started before a round trip was measured benefit
    // from the adapted value too; the list is walked at each check (it is at most the
    // window, and entries of ended attempts leave on that walk). The flag: the attempt
    // is its port's last (`HostRtt::attempt_timeout`).
    let mut deadlines: VecDeque<(Instant, usize, u32, IpAddr, bool)> = VecDeque::new();
    let mut retry: VecDeque<Pending> = VecDeque::new();
    let mut fresh = order(&cfg.targets, &cfg.ports).skip(shard).step_by(shards);
    let mut in_flight = 0usize;
    let mut rtt = HostRtt::default();
    for &(ip, seed) in cfg.rtt_seeds.iter() {
        rtt.sample(ip, seed);
    }
    let mut events_buf: Vec<libc::epoll_event> = Vec::with_capacity(1024);
    let rate_interval = cfg
        .max_rate
        .map(|r| Duration::from_secs_f64(1.0 / r.max(0.001)));
    let mut next_start = Instant::now();
    let mut fresh_done = false;
    let mut emfile_noted = false;
    let mut last_timeout: Option<Instant> = None;
    let mut hosts = HostClock::default();
    let mut slow = SlowRetries::new(cfg.slow_retry_budget);
    let mut neighbours = super::neigh::Neighbours::default();

    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        // Start attempts while the window and the rate allow, a burst at a time: attempts
        // that end inside connect() leave the window open, and without a bound the
        // loop would start every port before looking at a single completion or timeout.
        let mut burst = 0;
        let mut held = false;
        while in_flight < window && burst < LAUNCH_BURST {
            burst += 1;
            let now = Instant::now();
            if let Some(iv) = rate_interval {
                if now < next_start {
                    break;
                }
                next_start = next_start.max(now - iv) + iv;
            }
            let slow_job = slow.next_due(now).map(Box::new);
            let job = match slow_job.as_ref().map(|h| (h.target, h.attempts, 0, None)) {
                Some(j) => j,
                None => match retry.pop_front() {
                    Some(j) => j,
                    // Ahead of the correlator: a few starts per turn, then a pause. Never a
                    // full stop: a target's last pairs may be this prober's to start, and no
                    // target would ever be judged while every prober waited.
                    None if burst > PACED_BURST
                        && cfg.pace.as_ref().is_some_and(|p| p.holds(shard)) =>
                    {
                        held = true;
                        break;
                    }
                    None => match fresh.next() {
                        Some(t) => {
                            if let Some(p) = &cfg.pace {
                                p.took(shard);
                            }
                            (t, 0, 0, None)
                        }
                        None => {
                            fresh_done = true;
                            break;
                        }
                    },
                },
            };
            if cfg.host_timeout.is_some() {
                hosts.first.entry(job.0.ip()).or_insert(now);
            }
            match start(cfg, &epoll, job, &mut slots, &mut free, &mut generation) {
                Ok(Started::InFlight(slot)) => {
                    let f = slots[slot].as_mut().expect("just filled");
                    f.slow = slow_job;
                    let last = f.attempt > cfg.retries;
                    deadlines.push_back((f.started, slot, generation[slot], f.target.ip(), last));
                    in_flight += 1;
                }
                Ok(Started::Done(mut f, outcome)) => {
                    f.slow = slow_job;
                    // An answer that came back within connect() is a round trip too.
                    if outcome != ConnectOutcome::SelfConnect {
                        rtt.sample(f.target.ip(), f.started.elapsed());
                    }
                    let mut ended = Ended {
                        retry: &mut retry,
                        hosts: &mut hosts,
                        slow: &mut slow,
                    };
                    finish(cfg, out, f, outcome, &mut ended);
                }
                Err(StartError::NoFds(job)) => {
                    // EMFILE/ENFILE: shrink the window to what is in flight and try again
                    // when something closes.
                    match slow_job {
                        Some(h) => slow.not_started(*h),
                        None => retry.push_front(job),
                    }
                    window = in_flight.max(1);
                    if !emfile_noted {
                        emfile_noted = true;
                        out.push(ProbeEvent::Notice(format!(
                            "out of file descriptors: parallelism lowered to {window}"
                        )));
                    }
                    break;
                }
                Err(StartError::Io(e)) => return Err(e),
            }
        }
        if in_flight == 0 && fresh_done && retry.is_empty() && !slow.pending() {
            break;
        }
        // Wait for completions, the next deadline, or the next rate slot.
        let now = Instant::now();
        let timeout_of =
            |ip: IpAddr, last: bool| cfg.timeout.unwrap_or_else(|| rtt.attempt_timeout(ip, last));
        let mut wait = Duration::from_millis(50);
        if let Some(due) = deadlines
            .iter()
            .filter(|(_, slot, tag, _, _)| generation[*slot] == *tag)
            .map(|(started, _, _, ip, last)| *started + timeout_of(*ip, *last))
            .min()
        {
            wait = wait.min(due.saturating_duration_since(now));
        }
        if let Some(due) = slow.wake_at() {
            wait = wait.min(due.saturating_duration_since(now));
        }
        let more_to_start = in_flight < window && !(fresh_done && retry.is_empty()) && !held;
        if held {
            // The correlator is behind: look again shortly.
            wait = wait.min(Duration::from_millis(1));
        }
        if more_to_start {
            wait = match rate_interval {
                Some(_) => wait.min(next_start.saturating_duration_since(now)),
                // Only the burst bound stopped the starts: just collect what is ready.
                None => Duration::ZERO,
            };
        }
        out.flush();
        if in_flight == 0 {
            // Nothing to collect: only the rate limit (or the burst bound) held starts back.
            std::thread::sleep(wait);
            continue;
        }
        // Round up so a sub-millisecond wait does not spin.
        let wait_ms = wait.as_micros().div_ceil(1000).min(50) as i32;
        epoll.wait(&mut events_buf, wait_ms)?;
        for ev in events_buf.iter() {
            let token = ev.u64;
            let slot = (token & 0xffff_ffff) as usize;
            let generation_tag = (token >> 32) as u32;
            if generation.get(slot) != Some(&generation_tag) {
                continue;
            }
            let Some(f) = slots[slot].take() else {
                continue;
            };
            generation[slot] = generation[slot].wrapping_add(1);
            free.push(slot);
            in_flight -= 1;
            let outcome = match sys::take_error(&f.fd) {
                Ok(0) => connected_outcome(&f),
                Ok(errno) => ConnectOutcome::Failed(errno),
                Err(e) => ConnectOutcome::Failed(e.raw_os_error().unwrap_or(libc::EIO)),
            };
            if !matches!(outcome, ConnectOutcome::SelfConnect) {
                rtt.sample(f.target.ip(), f.started.elapsed());
            }
            let mut ended = Ended {
                retry: &mut retry,
                hosts: &mut hosts,
                slow: &mut slow,
            };
            finish(cfg, out, f, outcome, &mut ended);
        }
        // Expire attempts past their deadline.
        let now = Instant::now();
        let timeout_of =
            |ip: IpAddr, last: bool| cfg.timeout.unwrap_or_else(|| rtt.attempt_timeout(ip, last));
        let mut expired: Vec<usize> = Vec::new();
        deadlines.retain(|&(started, slot, generation_tag, ip, last)| {
            if generation[slot] != generation_tag {
                return false;
            }
            if started + timeout_of(ip, last) > now {
                return true;
            }
            expired.push(slot);
            false
        });
        if rtt.len() > HostRtt::KEEP {
            let live: rustc_hash::FxHashSet<IpAddr> = deadlines
                .iter()
                .map(|d| d.3)
                .chain(retry.iter().map(|r| r.0.ip()))
                .collect();
            rtt.forget_except(|ip| live.contains(&ip));
        }
        for slot in expired {
            // Still waiting for the target's link-layer address (ARP/ND on a directly
            // connected network): the SYN has not left yet. Wait, bounded, for the
            // kernel to give up with host-unreach, which says what happened.
            if let Some(f) = slots[slot].as_ref()
                && matches!(sys::take_error(&f.fd), Ok(0))
                && f.started.elapsed() < super::neigh::WAIT
                && neighbours.resolving(f.target.ip(), now)
            {
                let recheck = now + super::neigh::RECHECK;
                let last = f.attempt > cfg.retries;
                let timeout = cfg
                    .timeout
                    .unwrap_or_else(|| rtt.attempt_timeout(f.target.ip(), last));
                let as_if = recheck.checked_sub(timeout).unwrap_or(now);
                deadlines.push_back((as_if, slot, generation[slot], f.target.ip(), last));
                continue;
            }
            let f = slots[slot].take().expect("live slot");
            generation[slot] = generation[slot].wrapping_add(1);
            free.push(slot);
            in_flight -= 1;
            // An ICMP error that arrived while connect() held the socket (Linux), or the
            // first ICMPv6 error of an IPv6 connect(), is kept as a "soft" error that
            // wakes nobody; SO_ERROR still returns it. Then the port has answered and
            // needs no retry.
            let outcome = match sys::take_error(&f.fd) {
                Ok(errno) if errno != 0 => ConnectOutcome::Failed(errno),
                _ => {
                    last_timeout = Some(now);
                    rtt.timed_out(f.target.ip(), now.saturating_duration_since(f.started));
                    ConnectOutcome::TimedOut
                }
            };
            let mut ended = Ended {
                retry: &mut retry,
                hosts: &mut hosts,
                slow: &mut slow,
            };
            finish(cfg, out, f, outcome, &mut ended);
        }
        if slow.len() > HostRtt::KEEP {
            let live: rustc_hash::FxHashSet<IpAddr> = deadlines.iter().map(|d| d.3).collect();
            slow.forget_idle(|ip| live.contains(&ip));
        }
    }
    // Interrupted: close what is in flight; those ports get no verdict. Ports waiting for
    // a slow re-probe keep the verdict of their attempts so far.
    slots.clear();
    for h in slow.drain() {
        done_without_slow_attempt(out, h);
    }
    // An attempt given up on at time T might still be answered until about T + timeout
    // (the answer to its last retransmission); an answered attempt will not be.
    let timeout = cfg.timeout.unwrap_or_else(|| rtt.longest_timeout());
    let late_answers_until = last_timeout
        .map(|t| (t + timeout).saturating_duration_since(Instant::now()))
        .unwrap_or_default();
    out.push(ProbeEvent::Done { late_answers_until });
    Ok(())
}

fn connected_outcome(f: &InFlight) -> ConnectOutcome {
    if f.local == f.target {
        ConnectOutcome::SelfConnect
    } else {
        ConnectOutcome::Connected
    }
}

enum Started {
    InFlight(usize),
    Done(InFlight, ConnectOutcome),
}

enum StartError {
    NoFds(Pending),
    Io(io::Error),
}

fn start(
    cfg: &ProbeConfig,
    epoll: &sys::Epoll,
    (target, attempt, self_connects, first): Pending,
    slots: &mut Vec<Option<InFlight>>,
    free: &mut Vec<usize>,
    generation: &mut Vec<u32>,
) -> Result<Started, StartError> {
    let v6 = target.is_ipv6();
    let fd = match sys::tcp_socket(v6) {
        Ok(fd) => fd,
        Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) => {
            return Err(StartError::NoFds((target, attempt, self_connects, first)));
        }
        Err(e) => return Err(StartError::Io(e)),
    };
    if let Some(dscp) = cfg.dscp {
        sys::set_dscp(&fd, v6, dscp).map_err(StartError::Io)?;
    }
    // The ICMP error that may end the attempt, kept on the socket's error queue: whether
    // a refusal was a RST or an ICMP error, and who sent it, without a capture.
    sys::set_recverr(&fd, v6).map_err(StartError::Io)?;
    let ts = Timestamp::now();
    let started = Instant::now();
    let raw = sys::RawAddr::new(target);
    let result = sys::connect(&fd, &raw);
    // The source port exists once connect() has been called, even when it failed at once.
    let local = sys::local_addr(&fd).unwrap_or_else(|_| SocketAddr::new(target.ip(), 0));
    let mut f = InFlight {
        fd,
        target,
        local,
        attempt: attempt + 1,
        self_connects,
        started,
        first: first.unwrap_or(started),
        ts,
        slow: None,
    };
    match result {
        Ok(true) => {
            let outcome = connected_outcome(&f);
            Ok(Started::Done(f, outcome))
        }
        Ok(false) => {
            // On a fast path (loopback, a veth, a nearby host) the answer is often
            // processed before connect() returns: a RST or ICMP error is then already
            // the socket's error, and the attempt ends without an epoll round trip.
            // (Zero means connected or still in progress: epoll tells which.)
            if let Ok(errno) = sys::take_error(&f.fd)
                && errno != 0
            {
                return Ok(Started::Done(f, ConnectOutcome::Failed(errno)));
            }
            let slot = free.pop().unwrap_or_else(|| {
                slots.push(None);
                generation.push(0);
                slots.len() - 1
            });
            let token = ((generation[slot] as u64) << 32) | slot as u64;
            if let Err(e) = epoll.add(&f.fd, token) {
                f.attempt = attempt + 1;
                free.push(slot);
                return Ok(Started::Done(
                    f,
                    ConnectOutcome::Failed(e.raw_os_error().unwrap_or(libc::EIO)),
                ));
            }
            slots[slot] = Some(f);
            Ok(Started::InFlight(slot))
        }
        Err(e) => {
            let errno = e.raw_os_error().unwrap_or(libc::EIO);
            Ok(Started::Done(f, ConnectOutcome::Failed(errno)))
        }
    }
}

/// When each target's first attempt started, for `--host-timeout`, and the targets
/// whose time is up (told once).
#[derive(Default)]
struct HostClock {
    first: rustc_hash::FxHashMap<IpAddr, Instant>,
    expired: rustc_hash::FxHashSet<IpAddr>,
}

impl HostClock {
    /// Whether `ip`'s host timeout has passed; the first time, tells the user.
    fn expired(&mut self, cfg: &ProbeConfig, out: &mut Outbox<'_>, ip: IpAddr) -> bool {
        let (Some(limit), Some(first)) = (cfg.host_timeout, self.first.get(&ip)) else {
            return false;
        };
        if first.elapsed() < limit {
            return false;
        }
        if self.expired.insert(ip) {
            out.push(ProbeEvent::Notice(format!(
                "--host-timeout {}: {ip} is past it; its unanswered ports are not retried",
                crate::report::fmt_secs(limit.as_nanos() as u64)
            )));
        }
        true
    }
}

/// What an ended attempt may queue: a retry, a slow re-probe; and the host timeouts.
struct Ended<'a> {
    retry: &'a mut VecDeque<Pending>,
    hosts: &'a mut HostClock,
    slow: &'a mut SlowRetries,
}

/// The errnos an ICMP error can end a connect() with (the error queue says whether one
/// did); a RST gives ECONNREFUSED too.
fn icmp_errno(errno: i32) -> bool {
    matches!(
        errno,
        libc::ECONNREFUSED
            | libc::EHOSTUNREACH
            | libc::ENETUNREACH
            | libc::EACCES
            | libc::EPERM
            | libc::ENOPROTOOPT
    )
}

/// Records an ended attempt, closes its socket and queues a retry when one is due: a
/// retry at full speed, or (its last one unanswered, its target having answered an
/// earlier SYN with ICMP) a slow re-probe.
fn finish(
    cfg: &ProbeConfig,
    out: &mut Outbox<'_>,
    mut f: InFlight,
    outcome: ConnectOutcome,
    ended: &mut Ended<'_>,
) {
    let icmp = match outcome {
        ConnectOutcome::Failed(e) if icmp_errno(e) => sys::queued_icmp(&f.fd),
        _ => None,
    };
    let record = ProbeRecord {
        scanner: f.local,
        started: f.ts,
        outcome,
        icmp: icmp.map(|q| {
            let kind = IcmpKind {
                v6: q.v6,
                icmp_type: q.icmp_type,
                code: q.code,
            };
            (kind, q.from)
        }),
        slow: f.slow.is_some(),
    };
    let target = f.target;
    if record.icmp_answered() {
        ended.slow.icmp_answer(target.ip(), f.first);
    }
    // Close now. A connected socket is reset (SO_LINGER 0) rather than closed with FIN,
    // so no TIME_WAIT is left behind; others have nothing to linger over, and skipping
    // the setsockopt saves a system call per closed port.
    if matches!(
        outcome,
        ConnectOutcome::Connected | ConnectOutcome::SelfConnect
    ) {
        let _ = sys::set_linger_zero(&f.fd);
    }
    drop(f.fd);
    if let Some(mut held) = f.slow.take().map(|b| *b) {
        // A slow re-probe ended: the port's earlier record goes out, this one is held
        // while the port may be tried once more.
        if let Some(prev) = held.record.replace(record) {
            out.push(ProbeEvent::Finished {
                target,
                record: prev,
                port_done: false,
            });
        }
        held.attempts = f.attempt;
        let answered = outcome != ConnectOutcome::TimedOut;
        for h in ended.slow.finished(held, answered, Instant::now()) {
            done_without_slow_attempt(out, h);
        }
        return;
    }
    let again = match outcome {
        ConnectOutcome::TimedOut => {
            f.attempt <= cfg.retries && !ended.hosts.expired(cfg, out, target.ip())
        }
        // A socket connected to itself is not an answer from the port: try again from
        // another source port (it will not be chosen twice while this one was in use).
        ConnectOutcome::SelfConnect => f.self_connects < MAX_SELF_CONNECT_RETRIES,
        _ => false,
    };
    if again {
        let (attempt, selfc) = match outcome {
            ConnectOutcome::SelfConnect => (f.attempt - 1, f.self_connects + 1),
            _ => (f.attempt, f.self_connects),
        };
        ended
            .retry
            .push_back((target, attempt, selfc, Some(f.first)));
    } else if outcome == ConnectOutcome::TimedOut && !ended.hosts.expired(cfg, out, target.ip()) {
        let held = Held {
            target,
            attempts: f.attempt,
            slow_tries: 0,
            record: Some(record),
        };
        match ended.slow.defer(held, f.first) {
            Ok(()) => return,
            Err(h) => return done_without_slow_attempt(out, h),
        }
    }
    out.push(ProbeEvent::Finished {
        target,
        record,
        port_done: !again,
    });
}

/// A held port is done: its last record goes out as the port's last.
fn done_without_slow_attempt(out: &mut Outbox<'_>, h: Held) {
    if let Some(record) = h.record {
        out.push(ProbeEvent::Finished {
            target: h.target,
            record,
            port_done: true,
        });
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn pairs_come_in_target_groups_each_pair_once() {
        let targets: Vec<std::net::IpAddr> = (0..3000u32)
            .map(|i| std::net::Ipv4Addr::from(0xc613_0000 + i).into())
            .collect();
        let ports: Vec<u16> = (1..=100).collect();
        let pairs: Vec<SocketAddr> = order(&targets, &ports).collect();
        assert_eq!(pairs.len(), 300_000);
        let distinct: std::collections::HashSet<_> = pairs.iter().collect();
        assert_eq!(distinct.len(), 300_000);
        // The first group's targets are done before the second group's start.
        let g = group_size(ports.len());
        assert_eq!(g, 81);
        let first_of_second = pairs.iter().position(|p| p.ip() == targets[g]).unwrap();
        assert_eq!(first_of_second, g * ports.len());
        // A full-range scan is one host at a time.
        assert_eq!(group_size(65_535), 1);
    }
    use super::*;

    /// Regression: a prober behind the others is not held back with them. Held at the
    /// same crawl while the leader's targets waited for its pairs, it never caught up
    /// (a /20 × top-100 scan took 10–20 s instead of 3 in one run out of two).
    #[test]
    fn pace_holds_only_probers_that_are_not_behind() {
        let pace = Pace::new(10);
        pace.start_probers(2);
        // Under the limit: nobody is held, whatever the positions.
        for _ in 0..5 {
            pace.took(0);
        }
        assert!(!pace.holds(0) && !pace.holds(1));
        // At the limit, prober 0 ahead: it is held; prober 1 goes on until level.
        for _ in 0..5 {
            pace.took(0);
        }
        assert!(pace.holds(0));
        assert!(!pace.holds(1));
        for _ in 0..9 {
            pace.took(1);
            assert!(!pace.holds(1));
        }
        pace.took(1);
        // Level and still ahead of the correlator: both crawl.
        assert!(pace.holds(0) && pace.holds(1));
        // Judging catches up: both go.
        pace.judged.store(20, Ordering::Relaxed);
        assert!(!pace.holds(0) && !pace.holds(1));
        // A new set of probers starts level.
        pace.start_probers(2);
        pace.judged.store(0, Ordering::Relaxed);
        assert!(pace.holds(0) && pace.holds(1));
    }

    #[test]
    fn a_far_host_keeps_its_own_timeout_beside_a_near_one() {
        let near: IpAddr = "198.18.2.1".parse().unwrap();
        let far: IpAddr = "198.19.9.9".parse().unwrap();
        let new: IpAddr = "198.19.9.10".parse().unwrap();
        let mut r = HostRtt::default();
        assert_eq!(r.timeout(new), INITIAL_TIMEOUT);
        // Many near answers, a few far ones: the far host is not held to the near one's
        // timeout (one shared estimator gave it ~100 ms, so its 200 ms answers came late).
        for _ in 0..200 {
            r.sample(near, Duration::from_micros(100));
        }
        for _ in 0..3 {
            r.sample(far, Duration::from_millis(200));
        }
        assert_eq!(r.timeout(near), MIN_TIMEOUT);
        let t = r.timeout(far);
        assert!(t > Duration::from_millis(200), "{t:?}");
        // A host with no sample yet gets the group's estimate, not the initial second.
        assert!(r.timeout(new) < INITIAL_TIMEOUT, "{:?}", r.timeout(new));
        // The wait for late answers covers the slowest host.
        assert!(r.longest_timeout() >= t);
        // Memory follows the group: hosts with nothing in flight can be forgotten.
        r.forget_except(|ip| ip == far);
        assert_eq!(r.len(), 1);
        assert_eq!(r.timeout(far), t);
    }

    #[test]
    fn a_host_that_never_answered_gets_the_initial_second_on_its_last_try() {
        // -Pn: the near host answers within a millisecond, the far one has not answered
        // yet. Its first attempt may run on the near host's timeout, its last may not:
        // what the neighbours measured says nothing about it.
        let near: IpAddr = "198.18.2.1".parse().unwrap();
        let far: IpAddr = "198.19.200.5".parse().unwrap();
        let mut r = HostRtt::default();
        for _ in 0..20 {
            r.sample(near, Duration::from_micros(300));
        }
        assert_eq!(r.attempt_timeout(far, false), MIN_TIMEOUT);
        assert_eq!(r.attempt_timeout(far, true), INITIAL_TIMEOUT);
        // The near host's own estimate holds for its last attempt too.
        assert_eq!(r.attempt_timeout(near, true), MIN_TIMEOUT);
        // Once the far host has answered, its own estimate rules both.
        r.sample(far, Duration::from_millis(200));
        assert_eq!(r.attempt_timeout(far, false), Duration::from_millis(600));
        assert_eq!(r.attempt_timeout(far, true), Duration::from_millis(600));
        // A host that let the long wait pass without a word is silent: one long wait
        // per dead address, not one per port.
        let dead: IpAddr = "198.19.128.7".parse().unwrap();
        r.timed_out(dead, MIN_TIMEOUT);
        assert_eq!(r.attempt_timeout(dead, true), INITIAL_TIMEOUT);
        r.timed_out(dead, INITIAL_TIMEOUT);
        let group = r.attempt_timeout(dead, false);
        assert!(group < INITIAL_TIMEOUT, "{group:?}");
        assert_eq!(r.attempt_timeout(dead, true), group);
        // A host with an estimate is never taken for silent.
        r.timed_out(near, INITIAL_TIMEOUT);
        assert_eq!(r.attempt_timeout(near, true), MIN_TIMEOUT);
        r.forget_except(|ip| ip != dead);
        assert_eq!(r.attempt_timeout(dead, true), INITIAL_TIMEOUT);
        // A group slower than the initial second is not shortened.
        let mut slow = HostRtt::default();
        slow.sample(near, Duration::from_secs(2));
        assert_eq!(slow.attempt_timeout(far, true), Duration::from_secs(6));
    }

    #[test]
    fn a_discovery_seed_sets_the_first_timeout() {
        // One echo reply after 200 ms (RFC 6298 §2.2: srtt = R, rttvar = R/2) gives a
        // first timeout of R + 4·R/2 = 600 ms, before any SYN was answered.
        let far: IpAddr = "198.19.9.9".parse().unwrap();
        let mut r = HostRtt::default();
        r.sample(far, Duration::from_millis(200));
        assert_eq!(r.timeout(far), Duration::from_millis(600));
    }

    #[test]
    fn timeout_adapts_and_is_clamped() {
        let mut r = RttEstimator::default();
        assert_eq!(r.timeout(), INITIAL_TIMEOUT);
        for _ in 0..20 {
            r.sample(Duration::from_micros(50));
        }
        assert_eq!(r.timeout(), MIN_TIMEOUT);
        for _ in 0..50 {
            r.sample(Duration::from_millis(300));
        }
        let t = r.timeout();
        assert!(
            t >= Duration::from_millis(300) && t < Duration::from_millis(600),
            "{t:?}"
        );
        for _ in 0..50 {
            r.sample(Duration::from_secs(60));
        }
        assert_eq!(r.timeout(), MAX_TIMEOUT);
    }
}
