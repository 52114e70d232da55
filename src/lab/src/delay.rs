//! A far host: a delaying relay in the router, for kernels without netem.
//!
//! [`Lab::delay_prefix`](crate::Lab::delay_prefix) makes the target answer for a prefix (an AnyIP `local` route on
//! its loopback, as [`Lab::answer_for_prefix`](crate::Lab::answer_for_prefix) does) and sends the router's traffic
//! towards that prefix through a TUN device of its own:
//!
//! ```text
//!  scanner ── to-scan ─► router ─ route PREFIX dev dlyN ─► TUN fd ─► relay thread
//!                                                                     (holds each
//!  target ◄── to-tgt ◄── table 100+N: PREFIX via target ◄── iif dlyN ◄─ packet `delay`)
//! ```
//!
//! The relay thread reads each packet from the TUN descriptor, keeps it for the fixed
//! delay and writes it back into the same device; the kernel then receives it as if it
//! came in on `dlyN`, and the policy rule `iif dlyN lookup 100+N` routes it on to the
//! target instead of back into the TUN. Only the scanner → target direction is delayed;
//! the answers go back the direct way. That is enough for the round trip, and it keeps
//! the relay to one queue. Packets to the prefix cross the router twice, so the far host
//! is 3 hops away (TTL 62 / hop limit 62 at the scanner), 1 more than the near target.
//!
//! The TUN device is created (TUNSETIFF) on a thread that has joined the router's
//! namespace, so it is born there and never appears in the host's namespace; it is not
//! persistent, so it disappears, with its routes, when the relay's descriptor closes.
//! The queue holds at most [`MAX_QUEUED`] packets (later ones are dropped, as a full
//! router queue would), and the thread looks at its stop flag at least every
//! [`STOP_POLL`]; the relay is stopped and joined when the lab drops, before its
//! namespaces are deleted.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::netns::{self, in_namespace, run_argv, write_sysctl};

/// Packets waiting in one relay at most; more are dropped (and counted).
pub const MAX_QUEUED: usize = 8192;
/// The longest delay a relay accepts (a far host, not a dead one).
pub const MAX_DELAY: Duration = Duration::from_secs(5);
/// How long the relay thread waits at most before looking at its stop flag.
const STOP_POLL: Duration = Duration::from_millis(20);
/// Packets read per wake-up at most, so a flood cannot starve the writes.
const READ_BURST: usize = 256;
/// The routing table of relay `n` is `TABLE_BASE + n`.
const TABLE_BASE: usize = 100;

/// One running relay: the thread, its stop flag and its counters.
pub(crate) struct Relay {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
    pub(crate) prefix: String,
}

#[derive(Default)]
struct Counters {
    relayed: AtomicU64,
    dropped: AtomicU64,
}

impl Relay {
    pub(crate) fn relayed(&self) -> u64 {
        self.counters.relayed.load(Ordering::Relaxed)
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            eprintln!("synack lab: the delay relay for {} panicked", self.prefix);
        }
    }
}

/// A parsed far prefix: its family and the text `ip` takes.
#[derive(Debug, PartialEq, Eq)]
struct FarPrefix {
    v6: bool,
}

/// Checks that `prefix` is a far prefix the lab may use: inside 198.19.0.0/16 (IPv4,
/// apart from the lab's 198.18.x.x links), or inside 2001:db8::/32 but outside the lab's
/// links 2001:db8:1::/48 and 2001:db8:2::/48 (IPv6, /48 or longer).
fn far_prefix(prefix: &str) -> Option<FarPrefix> {
    let (addr, len) = prefix.split_once('/')?;
    let len: u8 = len.parse().ok()?;
    match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => ((16..=32).contains(&len) && a.octets()[..2] == [198, 19])
            .then_some(FarPrefix { v6: false }),
        IpAddr::V6(a) => {
            let s = a.segments();
            ((48..=128).contains(&len) && s[..2] == [0x2001, 0xdb8] && !matches!(s[2], 1 | 2))
                .then_some(FarPrefix { v6: true })
        }
    }
}

/// The lab's names and addresses a relay needs (kept apart from `Lab`, so that this
/// file and topology.rs do not import each other).
pub(crate) struct Names<'a> {
    pub router: &'a str,
    pub target: &'a str,
    pub target_v4: IpAddr,
    pub target_v6: IpAddr,
}

impl Relay {
    /// Starts relay `n`: makes every address of `prefix` a far host: the target answers for it (closed
    /// ports with its stack's RST; open a port with [`Lab::listen`](crate::Lab::listen) on the far address,
    /// which an IPv6 prefix allows by turning `net.ipv6.ip_nonlocal_bind` on in the
    /// target; the target's INPUT rules apply as to its own address), and every packet from the
    /// scanner to it waits `delay` in a relay in the router (module documentation).
    ///
    /// `prefix`: inside 198.19.0.0/16, or inside 2001:db8::/32 apart from the lab's
    /// 2001:db8:1:: and 2001:db8:2:: links; `delay` at most [`MAX_DELAY`]. The relay
    /// stops, and its device disappears, when the lab drops.
    pub(crate) fn start(
        lab: Names<'_>,
        n: usize,
        prefix: &str,
        delay: Duration,
    ) -> io::Result<Relay> {
        let Some(far) = far_prefix(prefix) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{prefix}: a far prefix lies inside 198.19.0.0/16 or 2001:db8::/32 \
                     (not the lab's 2001:db8:1:: or 2001:db8:2:: links)"
                ),
            ));
        };
        if delay > MAX_DELAY {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("delay {delay:?}: at most {MAX_DELAY:?}"),
            ));
        }
        let dev = format!("dly{n}");
        let table = (TABLE_BASE + n).to_string();
        let (family, via): (&str, IpAddr) = if far.v6 {
            ("-6", lab.target_v6)
        } else {
            ("-4", lab.target_v4)
        };
        let via = via.to_string();
        netns::run(
            lab.target,
            &["ip", family, "route", "add", "local", prefix, "dev", "lo"],
        )?;
        if far.v6 {
            // IPv4 lets a socket bind to an address of a `local` route; IPv6 asks for
            // non-local binds to be allowed first (for listeners on the far addresses).
            in_namespace(lab.target, || {
                write_sysctl("net.ipv6.ip_nonlocal_bind", "1")
            })??;
        }
        let tun = {
            let dev = dev.clone();
            in_namespace(lab.router, move || open_tun(&dev))??
        };
        let ip = |args: &[&str]| {
            let mut argv = vec!["ip", "-n", lab.router, family];
            argv.extend_from_slice(args);
            run_argv(&argv).map(drop)
        };
        ip(&["link", "set", &dev, "up"])?;
        ip(&["route", "add", prefix, "via", &via, "table", &table])?;
        ip(&["rule", "add", "iif", &dev, "lookup", &table])?;
        ip(&["route", "add", prefix, "dev", &dev])?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let thread = thread::Builder::new().name(format!("lab-{dev}")).spawn({
            let (stop, counters) = (Arc::clone(&stop), Arc::clone(&counters));
            move || relay(tun, delay, &stop, &counters)
        })?;
        Ok(Relay {
            stop,
            counters,
            thread: Some(thread),
            prefix: prefix.to_owned(),
        })
    }
}

/// Creates TUN device `name` (no packet-information header) in the calling thread's
/// network namespace and returns its nonblocking descriptor.
fn open_tun(name: &str) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/net/tun")
        .map_err(|e| io::Error::new(e.kind(), format!("/dev/net/tun: {e}")))?;
    // SAFETY: ifreq is a C struct of byte arrays and a union of plain integers, for which
    // all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= req.ifr_name.len() || name.bytes().any(|b| b == 0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("TUN device name {name:?}"),
        ));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: the descriptor is open for the call, and TUNSETIFF reads and writes one
    // `struct ifreq`, which `req` is, alive and exclusively borrowed for the call.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("TUNSETIFF {name}: {e}")));
    }
    Ok(file)
}

/// Waits until `file` is readable or `timeout` passes (rounded up to a millisecond).
fn wait_readable(file: &File, timeout: Duration) -> io::Result<()> {
    let mut pfd = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `pfd` is one valid pollfd, alive for the call, and the count says one.
    let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// The relay loop: read, hold for `delay`, write back, until `stop`.
fn relay(mut tun: File, delay: Duration, stop: &AtomicBool, counters: &Counters) {
    let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        // A fixed delay keeps the queue in arrival order: the front is due first.
        while queue.front().is_some_and(|(due, _)| *due <= now) {
            let (_, packet) = queue.pop_front().expect("front exists");
            // A TUN write takes one whole packet or fails.
            match tun.write(&packet) {
                Ok(n) if n == packet.len() => counters.relayed.fetch_add(1, Ordering::Relaxed),
                _ => counters.dropped.fetch_add(1, Ordering::Relaxed),
            };
        }
        let wait = queue
            .front()
            .map_or(STOP_POLL, |(due, _)| due.saturating_duration_since(now))
            .min(STOP_POLL);
        if wait_readable(&tun, wait).is_err() {
            thread::sleep(STOP_POLL.min(wait.max(Duration::from_millis(1))));
        }
        for _ in 0..READ_BURST {
            match tun.read(&mut buf) {
                Ok(0) => break,
                Ok(n) if queue.len() < MAX_QUEUED => {
                    queue.push_back((Instant::now() + delay, buf[..n].to_vec()));
                }
                Ok(_) => {
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                }
                // WouldBlock: nothing more now; anything else: look again next turn.
                Err(_) => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Lab, root_or_skip};
    use std::net::{SocketAddr, TcpStream};

    /// The time a connect() from the scanner to `addr` takes to be refused (a closed
    /// port: the target's RST), the best of `n`.
    fn refused_after(lab: &Lab, addr: SocketAddr, n: usize) -> Duration {
        in_namespace(&lab.scanner, move || {
            (0..n)
                .map(|_| {
                    let t0 = Instant::now();
                    let r = TcpStream::connect_timeout(&addr, Duration::from_secs(3));
                    let e = r.expect_err("a closed port");
                    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{addr}: {e}");
                    t0.elapsed()
                })
                .min()
                .expect("n > 0")
        })
        .expect("scanner namespace")
    }

    #[test]
    fn a_delayed_prefix_answers_late_and_the_target_does_not() {
        if !root_or_skip("a_delayed_prefix_answers_late_and_the_target_does_not") {
            return;
        }
        let delay = Duration::from_millis(150);
        let mut lab = Lab::create("delay").expect("lab");
        lab.delay_prefix("198.19.200.0/24", delay)
            .expect("v4 relay");
        lab.delay_prefix("2001:db8:c8::/64", delay)
            .expect("v6 relay");
        for (near, far) in [
            ("198.18.2.1:81", "198.19.200.7:81"),
            ("[2001:db8:2::1]:81", "[2001:db8:c8::7]:81"),
        ] {
            let near = refused_after(&lab, near.parse().unwrap(), 3);
            let far = refused_after(&lab, far.parse().unwrap(), 3);
            assert!(near < Duration::from_millis(50), "near {near:?}");
            assert!(
                far >= delay && far < delay + Duration::from_millis(150),
                "far {far:?}, delay {delay:?}"
            );
        }
        let (relayed, dropped) = lab.delayed_packets();
        // At least the 6 SYNs (and their ACK-less RST answers go the direct way).
        assert!(relayed >= 6, "{relayed}");
        assert_eq!(dropped, 0);
        // The relays stop with the lab (joined in its drop, before the namespaces go).
        let router = lab.router.clone();
        drop(lab);
        assert!(!crate::list_namespaces().unwrap().contains(&router));
    }

    #[test]
    fn far_prefixes_stay_inside_the_lab_ranges() {
        assert_eq!(far_prefix("198.19.200.0/24"), Some(FarPrefix { v6: false }));
        assert_eq!(far_prefix("198.19.0.0/16"), Some(FarPrefix { v6: false }));
        assert_eq!(far_prefix("2001:db8:c8::/64"), Some(FarPrefix { v6: true }));
        for bad in [
            "198.18.2.0/24",
            "198.19.0.0/8",
            "10.0.0.0/24",
            "198.19.200.0",
            "2001:db8:2::/64",
            "2001:db8:1::/48",
            "2001:db8::/32",
            "2001:db9::/48",
            "fe80::/64",
        ] {
            assert_eq!(far_prefix(bad), None, "{bad}");
        }
    }
}
