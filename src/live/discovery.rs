//! Host discovery: which targets are up, before their ports are scanned (nmap's ping scan).
//!
//! Each host gets, at once: an ICMP echo request (ICMPv6 for IPv6) and, over IPv4 with a
//! raw socket, an ICMP timestamp request (RFC 792), plus connect() to 443 and 80. Any
//! echo or timestamp reply, any completed connect() (SYN/ACK) and any refused one (a RST
//! is proof of life too, RFC 9293 §3.10.7.1) proves the host up; the first answer is
//! kept as the proof, with its round trip. Nothing after a timeout from the round-trip
//! estimator and one retry (which waits at least the initial second: the estimate says
//! nothing about a host that has not answered): the host is down, one line instead of a
//! row per port.
//!
//! The ICMP sockets are opened in `prepare` while privileges last (raw with CAP_NET_RAW;
//! otherwise a datagram "ping" socket where net.ipv4.ping_group_range allows, echo
//! only); replies are read from them after the drop. Without either, connect() alone.
//!
//! Discovery streams like the port scan: a driver thread works through the targets in
//! groups, hands each group's results to the correlator (ProbeEvent::Host), and starts
//! the probers for the group's hosts up (seeding their per-host round-trip estimates)
//! while it discovers the next group.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use rustc_hash::FxHashMap;

use super::prober::{HostFound, INITIAL_TIMEOUT, ProbeConfig, ProbeEvent, RttEstimator};
use super::{ProberHandles, join_probers, spawn_probers, sys};
use crate::report::{HostAnswer, HostProbe, HostProof};

/// Hosts discovered together (nmap's largest host group). Dead hosts of a group wait
/// for the same timeouts at once, so a dead /24 costs two timeouts, not 256.
const GROUP_HOSTS: usize = 1024;

/// The TCP ports probed, in order (nmap's defaults for -PS/-PA are 80 and 443).
const TCP_PORTS: [u16; 2] = [80, 443];

/// Each probe is sent at most this many times (once, then one retry).
const ROUNDS: u8 = 2;

/// ICMP message types (RFC 792, RFC 4443 §4).
mod icmp {
    pub const ECHO_REPLY: u8 = 0;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIMESTAMP_REQUEST: u8 = 13;
    pub const TIMESTAMP_REPLY: u8 = 14;
    pub const V6_ECHO_REQUEST: u8 = 128;
    pub const V6_ECHO_REPLY: u8 = 129;
}

/// Byte ranges of the ICMP header shared by echo and timestamp messages (RFC 792).
mod field {
    use std::ops::Range;
    pub const TYPE: usize = 0;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const SEQ: Range<usize> = 6..8;
    /// Echo: our payload; timestamp: originate, receive, transmit (3 × 4 bytes).
    pub const HEADER_LEN: usize = 8;
    pub const TIMESTAMP_LEN: usize = 20;
    /// IPv4 header: version and header length in 32-bit words.
    pub const IPV4_VER_IHL: usize = 0;
    pub const IPV4_MIN_LEN: usize = 20;
}

/// An ICMP socket opened for discovery.
#[derive(Debug)]
struct IcmpSock {
    fd: OwnedFd,
    /// SOCK_RAW (IPv4: replies start with the IP header; any type can be sent) rather
    /// than a datagram ping socket (the kernel sets the identifier: echo only).
    raw: bool,
}

/// The ICMP sockets for discovery, opened before the privilege drop.
#[derive(Debug, Default)]
pub struct IcmpSockets {
    v4: Option<IcmpSock>,
    v6: Option<IcmpSock>,
}

impl IcmpSockets {
    /// Raw sockets when privileges allow, else datagram ping sockets where
    /// net.ipv4.ping_group_range allows, else none (connect() probes only).
    pub fn open(v4: bool, v6: bool) -> IcmpSockets {
        let one = |want: bool, v6: bool| {
            if !want {
                return None;
            }
            match sys::icmp_socket(v6, true) {
                Ok(fd) => Some(IcmpSock { fd, raw: true }),
                Err(_) => sys::icmp_socket(v6, false)
                    .ok()
                    .map(|fd| IcmpSock { fd, raw: false }),
            }
        };
        IcmpSockets {
            v4: one(v4, false),
            v6: one(v6, true),
        }
    }

    /// The probes a host gets, in the order sent.
    pub fn probes(&self, ip: IpAddr) -> Vec<HostProbe> {
        let mut p = Vec::with_capacity(4);
        match ip {
            IpAddr::V4(_) => {
                if let Some(s) = &self.v4 {
                    p.push(HostProbe::Echo);
                    // A ping socket sends echo requests only.
                    if s.raw {
                        p.push(HostProbe::Timestamp);
                    }
                }
            }
            IpAddr::V6(_) => {
                if self.v6.is_some() {
                    p.push(HostProbe::Echo);
                }
            }
        }
        p.extend(TCP_PORTS.map(HostProbe::Tcp));
        p
    }

    fn sock(&self, ip: IpAddr) -> Option<&IcmpSock> {
        match ip {
            IpAddr::V4(_) => self.v4.as_ref(),
            IpAddr::V6(_) => self.v6.as_ref(),
        }
    }
}

/// RFC 1071 Internet checksum.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo or timestamp request. ICMPv6 checksums are the kernel's (RFC 3542 §3.1), as
/// are a ping socket's identifier and checksum.
fn request(kind: HostProbe, v6: bool, ident: u16, seq: u16) -> Vec<u8> {
    let (ty, len) = match (kind, v6) {
        (HostProbe::Timestamp, _) => (icmp::TIMESTAMP_REQUEST, field::TIMESTAMP_LEN),
        (_, false) => (icmp::ECHO_REQUEST, field::HEADER_LEN + 8),
        (_, true) => (icmp::V6_ECHO_REQUEST, field::HEADER_LEN + 8),
    };
    let mut b = vec![0u8; len];
    b[field::TYPE] = ty;
    b[field::IDENT].copy_from_slice(&ident.to_be_bytes());
    b[field::SEQ].copy_from_slice(&seq.to_be_bytes());
    if len == field::HEADER_LEN + 8 {
        b[field::HEADER_LEN..].copy_from_slice(b"synack\0\0");
    }
    if !v6 {
        let c = checksum(&b);
        b[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
    b
}

/// A reply read from an ICMP socket: (answer, identifier, sequence), or None for any
/// other message (requests, errors, short or malformed data).
fn parse_reply(buf: &[u8], v6: bool, with_ip_header: bool) -> Option<(HostAnswer, u16, u16)> {
    let icmp = if with_ip_header {
        let first = *buf.get(field::IPV4_VER_IHL)?;
        let ihl = usize::from(first & 0x0f) * 4;
        if first >> 4 != 4 || ihl < field::IPV4_MIN_LEN {
            return None;
        }
        buf.get(ihl..)?
    } else {
        buf
    };
    if icmp.len() < field::HEADER_LEN {
        return None;
    }
    let answer = match (icmp[field::TYPE], v6) {
        (icmp::ECHO_REPLY, false) | (icmp::V6_ECHO_REPLY, true) => HostAnswer::EchoReply,
        (icmp::TIMESTAMP_REPLY, false) if icmp.len() >= field::TIMESTAMP_LEN => {
            HostAnswer::TimestampReply
        }
        _ => return None,
    };
    let ident = u16::from_be_bytes([icmp[field::IDENT.start], icmp[field::IDENT.start + 1]]);
    let seq = u16::from_be_bytes([icmp[field::SEQ.start], icmp[field::SEQ.start + 1]]);
    Some((answer, ident, seq))
}

/// One host during its group's discovery.
struct Host {
    ip: IpAddr,
    probes: Vec<HostProbe>,
    /// Rounds started (0: not yet).
    round: u8,
    round_started: Instant,
    /// When each round started: an ICMP reply names its round (the sequence number), so
    /// a late reply to the first round is still an exact round trip.
    started: [Instant; ROUNDS as usize],
    /// The connect() probes of the current round still waiting: (port, socket).
    tcp: Vec<(u16, OwnedFd)>,
    flows: Vec<SocketAddr>,
    up: Option<HostProof>,
    done: bool,
}

impl Host {
    /// A connect() probe to `port` of this round was answered: a round trip for the
    /// estimate, and the host's proof unless it has one.
    fn answered_tcp(&mut self, port: u16, answer: HostAnswer, rtt: &mut RttEstimator) {
        let elapsed = self.round_started.elapsed();
        rtt.sample(elapsed);
        self.up.get_or_insert(HostProof {
            probe: HostProbe::Tcp(port),
            answer,
            rtt: elapsed,
        });
    }
}

/// The identifier of our echo and timestamp requests on a raw socket.
fn ident() -> u16 {
    (std::process::id() & 0xffff) as u16
}

/// Discovers one group: every host up (with its proof) or down.
pub(super) fn discover_group(
    group: &[IpAddr],
    icmp: &IcmpSockets,
    rtt: &mut RttEstimator,
    cfg: &ProbeConfig,
    stop: &AtomicBool,
) -> io::Result<Vec<HostFound>> {
    let epoll = sys::Epoll::new()?;
    // A whole group's connect() probes at once (a socket each, nothing more): with the
    // scan's window, dead hosts listed first would hold it for two timeouts before a
    // live host behind them is asked, and the estimate would learn nothing meanwhile.
    let window = cfg
        .parallelism
        .max(GROUP_HOSTS * TCP_PORTS.len())
        .max(TCP_PORTS.len());
    let mut hosts: Vec<Host> = group
        .iter()
        .map(|&ip| Host {
            ip,
            probes: icmp.probes(ip),
            round: 0,
            round_started: Instant::now(),
            started: [Instant::now(); ROUNDS as usize],
            tcp: Vec::new(),
            flows: Vec::new(),
            up: None,
            done: false,
        })
        .collect();
    let by_ip: FxHashMap<IpAddr, usize> =
        group.iter().enumerate().map(|(i, &ip)| (ip, i)).collect();
    let mut next_fresh = 0usize;
    let mut retries: std::collections::VecDeque<usize> = Default::default();
    let mut active: Vec<usize> = Vec::new();
    let mut in_flight = 0usize;
    let mut left = hosts.len();
    let mut events = Vec::with_capacity(256);
    let mut buf = [0u8; 2048];
    let id = ident();
    while left > 0 && !stop.load(Ordering::Relaxed) {
        // Start rounds while the connect() window allows.
        while in_flight + TCP_PORTS.len() <= window {
            let i = match retries.pop_front() {
                Some(i) => i,
                None if next_fresh < hosts.len() => {
                    next_fresh += 1;
                    next_fresh - 1
                }
                None => break,
            };
            let h = &mut hosts[i];
            h.round += 1;
            h.round_started = Instant::now();
            h.started[usize::from(h.round - 1)] = h.round_started;
            if let Some(s) = icmp.sock(h.ip) {
                for p in h.probes.iter().filter(|p| !matches!(p, HostProbe::Tcp(_))) {
                    let msg = request(*p, h.ip.is_ipv6(), id, u16::from(h.round));
                    // A send that fails (no route, a full buffer) is a probe not answered.
                    let _ = sys::send_to(&s.fd, &msg, h.ip);
                }
            }
            for port in TCP_PORTS {
                match start_connect(&epoll, h.ip, port, i, h.round) {
                    Ok(Connect::Pending(fd, local)) => {
                        h.flows.push(local);
                        h.tcp.push((port, fd));
                        in_flight += 1;
                    }
                    Ok(Connect::Answered(answer, local)) => {
                        h.flows.push(local);
                        h.answered_tcp(port, answer, rtt);
                    }
                    Ok(Connect::Failed) => {}
                    Err(e) => return Err(e),
                }
            }
            active.push(i);
        }
        // Replies on the ICMP sockets.
        for (sock, v6) in [(&icmp.v4, false), (&icmp.v6, true)] {
            let Some(s) = sock else { continue };
            while let Some((n, from)) = sys::recv_from(&s.fd, &mut buf)? {
                let with_header = s.raw && !v6;
                let Some((answer, ident, seq)) = parse_reply(&buf[..n], v6, with_header) else {
                    continue;
                };
                // A ping socket only hands us our own replies; the kernel set the id.
                if s.raw && ident != id {
                    continue;
                }
                let Some(&i) = by_ip.get(&from) else { continue };
                let h = &mut hosts[i];
                if h.up.is_some() || h.round == 0 {
                    continue;
                }
                // A late reply to the first round, read during the second, is timed from
                // the request it answers (its sequence number says which).
                let Some(sent) = (seq as usize)
                    .checked_sub(1)
                    .and_then(|r| h.started.get(r))
                    .filter(|_| seq >= 1 && seq <= u16::from(h.round))
                else {
                    continue;
                };
                let elapsed = sent.elapsed();
                rtt.sample(elapsed);
                let probe = match answer {
                    HostAnswer::TimestampReply => HostProbe::Timestamp,
                    _ => HostProbe::Echo,
                };
                h.up = Some(HostProof {
                    probe,
                    answer,
                    rtt: elapsed,
                });
            }
        }
        // Completed connect() probes.
        let timeout = |round: u8| round_timeout(cfg, rtt, round);
        let next_deadline = active
            .iter()
            .map(|&i| hosts[i].round_started + timeout(hosts[i].round))
            .min();
        let wait = next_deadline
            .map_or(Duration::from_millis(5), |d| {
                d.saturating_duration_since(Instant::now())
            })
            .min(Duration::from_millis(5));
        epoll.wait(&mut events, wait.as_micros().div_ceil(1000) as i32)?;
        for ev in &events {
            let (i, round, port) = untoken(ev.u64);
            let Some(h) = hosts.get_mut(i) else { continue };
            if h.round != round {
                continue;
            }
            let Some(pos) = h.tcp.iter().position(|(p, _)| *p == port) else {
                continue;
            };
            let (_, fd) = h.tcp.swap_remove(pos);
            in_flight -= 1;
            let answer = match sys::take_error(&fd) {
                Ok(0) => Some(HostAnswer::SynAck),
                Ok(libc::ECONNREFUSED) => Some(HostAnswer::Refused),
                _ => None,
            };
            if matches!(answer, Some(HostAnswer::SynAck)) {
                let _ = sys::set_linger_zero(&fd);
            }
            if let Some(answer) = answer {
                h.answered_tcp(port, answer, rtt);
            }
        }
        // Hosts proven up are done; hosts past their deadline retry once, then are down.
        let now = Instant::now();
        active.retain(|&i| {
            let h = &mut hosts[i];
            let expired = h.round_started + round_timeout(cfg, rtt, h.round) <= now;
            if h.up.is_none() && !expired && !(h.tcp.is_empty() && icmp.sock(h.ip).is_none()) {
                return true;
            }
            // The rest of the round's sockets are closed (a late SYN/ACK gets a RST).
            in_flight -= h.tcp.len();
            h.tcp.clear();
            if h.up.is_none() && h.round < ROUNDS && expired {
                retries.push_back(i);
            } else if h.up.is_none() && h.round < ROUNDS {
                // Every connect() failed at once (no route) and no ICMP socket: retry too.
                retries.push_back(i);
            } else {
                h.done = true;
                left -= 1;
            }
            false
        });
    }
    // Interrupted (Ctrl-C): the hosts proven up are decided too; the others are not
    // reported at all (the correlator counts them in a warning), never as down.
    Ok(hosts
        .into_iter()
        .filter(|h| h.done || h.up.is_some())
        .map(|h| HostFound {
            ip: h.ip,
            up: h.up,
            probes: h.probes,
            flows: h.flows,
            // Read once per host down, after both rounds (at least 2 × 100 ms): a machine
            // on the link answers an ARP/ND request in about a millisecond, so an entry
            // still being resolved (or failed) by then has nobody behind it.
            no_neighbour: h.up.is_none() && super::neigh::unresolved(h.ip),
        })
        .collect())
}

/// How long round `round` of a host waits: the discovery-wide estimate, except that the
/// last round waits at least the initial second (RFC 6298 §2.1). The estimate comes from
/// the hosts that answered, and says nothing about one that has not: a far host asked
/// beside near ones would otherwise be given up at the near ones' timeout, twice, and
/// reported down.
fn round_timeout(cfg: &ProbeConfig, rtt: &RttEstimator, round: u8) -> Duration {
    match cfg.timeout {
        Some(t) => t,
        None if round >= ROUNDS => rtt.timeout().max(INITIAL_TIMEOUT),
        None => rtt.timeout(),
    }
}

fn token(host: usize, round: u8, port: u16) -> u64 {
    ((host as u64) << 24) | (u64::from(round) << 16) | u64::from(port)
}

fn untoken(t: u64) -> (usize, u8, u16) {
    ((t >> 24) as usize, (t >> 16) as u8, t as u16)
}

enum Connect {
    Pending(OwnedFd, SocketAddr),
    Answered(HostAnswer, SocketAddr),
    /// No socket, or an error that proves nothing (no route, host unreachable).
    Failed,
}

fn start_connect(
    epoll: &sys::Epoll,
    ip: IpAddr,
    port: u16,
    host: usize,
    round: u8,
) -> io::Result<Connect> {
    let target = SocketAddr::new(ip, port);
    let fd = match sys::tcp_socket(ip.is_ipv6()) {
        Ok(fd) => fd,
        // Out of descriptors: this probe is not sent; the others still may prove the host.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) => {
            return Ok(Connect::Failed);
        }
        Err(e) => return Err(e),
    };
    let result = sys::connect(&fd, &sys::RawAddr::new(target));
    let local = sys::local_addr(&fd).unwrap_or_else(|_| SocketAddr::new(ip, 0));
    let errno = match result {
        Ok(true) => {
            let _ = sys::set_linger_zero(&fd);
            return Ok(Connect::Answered(HostAnswer::SynAck, local));
        }
        Ok(false) => sys::take_error(&fd).unwrap_or(0),
        Err(e) => e.raw_os_error().unwrap_or(libc::EIO),
    };
    match errno {
        0 => {
            epoll.add(&fd, token(host, round, port))?;
            Ok(Connect::Pending(fd, local))
        }
        libc::ECONNREFUSED => Ok(Connect::Answered(HostAnswer::Refused, local)),
        _ => Ok(Connect::Failed),
    }
}

/// Starts the discovery driver: group after group, discovery, then the probers for the
/// group's hosts up (while the next group is discovered). The handle ends when the last
/// probers have; the events share the probers' channel.
pub(super) fn start(
    cfg: ProbeConfig,
    icmp: IcmpSockets,
    stop: Arc<AtomicBool>,
    tx: Sender<Vec<ProbeEvent>>,
) -> io::Result<ProberHandles> {
    let handle = std::thread::Builder::new()
        .name("discovery".into())
        .spawn(move || drive(&cfg, &icmp, &stop, &tx))?;
    Ok(vec![handle])
}

fn drive(
    cfg: &ProbeConfig,
    icmp: &IcmpSockets,
    stop: &Arc<AtomicBool>,
    tx: &Sender<Vec<ProbeEvent>>,
) -> io::Result<()> {
    // One estimate for all of discovery: a group of dead hosts after a group with live
    // ones waits the live ones' timeout, not the initial second.
    let mut rtt = RttEstimator::default();
    let mut probers: ProberHandles = Vec::new();
    let join = |p: ProberHandles| join_probers(p).map_err(|e| io::Error::other(e.to_string()));
    for group in cfg.targets.chunks(GROUP_HOSTS) {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let found = discover_group(group, icmp, &mut rtt, cfg, stop)?;
        let up: Vec<IpAddr> = found
            .iter()
            .filter(|h| h.up.is_some())
            .map(|h| h.ip)
            .collect();
        let seeds: Vec<(IpAddr, Duration)> = found
            .iter()
            .filter_map(|h| h.up.map(|p| (h.ip, p.rtt)))
            .collect();
        // Hosts in the order given: the correlator reports them as they come.
        let _ = tx.send(found.into_iter().map(ProbeEvent::Host).collect());
        join(std::mem::take(&mut probers))?;
        if up.is_empty() || stop.load(Ordering::Relaxed) {
            continue;
        }
        let mut part = cfg.clone();
        part.targets = up;
        part.rtt_seeds = Arc::new(seeds);
        probers =
            spawn_probers(part, stop.clone(), tx).map_err(|e| io::Error::other(e.to_string()))?;
    }
    join(probers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_a_valid_checksum_and_replies_parse() {
        let echo = request(HostProbe::Echo, false, 0x1234, 2);
        assert_eq!(echo[0], icmp::ECHO_REQUEST);
        assert_eq!(checksum(&echo), 0, "a correct checksum sums to zero");
        let ts = request(HostProbe::Timestamp, false, 7, 1);
        assert_eq!(ts.len(), 20);
        assert_eq!(checksum(&ts), 0);
        // The reply: the request with the type changed, behind a 20-byte IPv4 header.
        let mut reply = vec![0x45u8];
        reply.extend([0u8; 19]);
        let mut r = echo.clone();
        r[0] = icmp::ECHO_REPLY;
        reply.extend(&r);
        assert_eq!(
            parse_reply(&reply, false, true),
            Some((HostAnswer::EchoReply, 0x1234, 2))
        );
        // A request, a truncated reply and an impossible header length are not replies.
        assert_eq!(parse_reply(&echo, false, false), None);
        assert_eq!(parse_reply(&reply[..24], false, true), None);
        let mut bad = reply.clone();
        bad[0] = 0x4f; // 60-byte header, longer than all that came
        assert_eq!(parse_reply(&bad, false, true), None);
        bad[0] = 0x41; // 4-byte header: impossible
        assert_eq!(parse_reply(&bad, false, true), None);
        let mut six = request(HostProbe::Echo, true, 1, 1);
        six[0] = icmp::V6_ECHO_REPLY;
        assert_eq!(
            parse_reply(&six, true, false),
            Some((HostAnswer::EchoReply, 1, 1))
        );
    }

    #[test]
    fn the_last_round_waits_at_least_the_initial_second() {
        let cfg = ProbeConfig {
            targets: Vec::new(),
            ports: Vec::new(),
            timeout: None,
            retries: 1,
            parallelism: 1,
            max_rate: None,
            dscp: None,
            shard: (0, 1),
            host_timeout: None,
            rtt_seeds: Arc::default(),
            pace: None,
            slow_retry_budget: Duration::ZERO,
        };
        let mut rtt = RttEstimator::default();
        for _ in 0..10 {
            rtt.sample(Duration::from_micros(200));
        }
        // Near hosts answered: the first round is quick, the last is not.
        assert_eq!(
            round_timeout(&cfg, &rtt, 1),
            super::super::prober::MIN_TIMEOUT
        );
        assert_eq!(round_timeout(&cfg, &rtt, ROUNDS), INITIAL_TIMEOUT);
        // --timeout is the user's word for every round.
        let fixed = ProbeConfig {
            timeout: Some(Duration::from_millis(200)),
            ..cfg
        };
        assert_eq!(
            round_timeout(&fixed, &rtt, ROUNDS),
            Duration::from_millis(200)
        );
    }

    #[test]
    fn probes_depend_on_the_sockets_at_hand() {
        let none = IcmpSockets::default();
        let ip: IpAddr = "198.18.2.1".parse().unwrap();
        assert_eq!(
            none.probes(ip),
            vec![HostProbe::Tcp(80), HostProbe::Tcp(443)]
        );
        assert_eq!(untoken(token(1023, 2, 443)), (1023, 2, 443));
    }
}
