//! The three-namespace lab: scanner ── router ── target, dual stack.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use super::delay::Relay;
use super::netns::{self, NamespaceSet, fresh_names, in_namespace, run_argv, write_sysctl};

/// The scanner's address on the scanner–router link.
pub const SCANNER_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
/// The scanner's IPv6 address on the scanner–router link.
pub const SCANNER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
/// The router's address facing the scanner: the scanner's default gateway, and the source
/// of the ICMP errors the router sends back to the scanner.
pub const ROUTER_SCANNER_SIDE_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 254);
/// The router's IPv6 address facing the scanner.
pub const ROUTER_SCANNER_SIDE_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0xfe);
/// The router's address facing the target: the target's default gateway.
pub const ROUTER_TARGET_SIDE_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 254);
/// The router's IPv6 address facing the target.
pub const ROUTER_TARGET_SIDE_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0xfe);
/// The scanned host.
pub const TARGET_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 1);
/// The scanned host, IPv6.
pub const TARGET_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);

/// Prefix lengths of the two links.
const PREFIX_V4: u8 = 24;
const PREFIX_V6: u8 = 64;

/// The scanner's only interface (towards the router): the one to capture on.
pub const SCANNER_IFACE: &str = "to-rtr";
/// The router's interface towards the scanner.
pub const ROUTER_SCANNER_IFACE: &str = "to-scan";
/// The router's interface towards the target.
pub const ROUTER_TARGET_IFACE: &str = "to-tgt";
/// The target's only interface (towards the router).
pub const TARGET_IFACE: &str = "to-rtr";

/// Interface indexes of the veths, all different (see [`Lab::configure`]).
const IFINDEX_SCANNER: &str = "10";
const IFINDEX_ROUTER_SCANNER_SIDE: &str = "11";
const IFINDEX_ROUTER_TARGET_SIDE: &str = "12";
const IFINDEX_TARGET: &str = "13";

/// How long [`Lab::create`] waits for addresses and links to become usable.
const READY_TIMEOUT: Duration = Duration::from_secs(3);
const READY_POLL: Duration = Duration::from_millis(10);

/// IP version; picks addresses and `iptables` versus `ip6tables`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const BOTH: [Family; 2] = [Family::V4, Family::V6];

    pub fn scanner(self) -> IpAddr {
        match self {
            Family::V4 => SCANNER_V4.into(),
            Family::V6 => SCANNER_V6.into(),
        }
    }

    /// The router's address on the scanner's link.
    pub fn router_scanner_side(self) -> IpAddr {
        match self {
            Family::V4 => ROUTER_SCANNER_SIDE_V4.into(),
            Family::V6 => ROUTER_SCANNER_SIDE_V6.into(),
        }
    }

    /// The router's address on the target's link.
    pub fn router_target_side(self) -> IpAddr {
        match self {
            Family::V4 => ROUTER_TARGET_SIDE_V4.into(),
            Family::V6 => ROUTER_TARGET_SIDE_V6.into(),
        }
    }

    pub fn target(self) -> IpAddr {
        match self {
            Family::V4 => TARGET_V4.into(),
            Family::V6 => TARGET_V6.into(),
        }
    }

    /// The target's address with `port`, ready for `connect`.
    pub fn target_port(self, port: u16) -> SocketAddr {
        SocketAddr::new(self.target(), port)
    }

    /// `iptables` or `ip6tables`.
    pub fn iptables(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }
}

/// Which of the lab's namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Scanner,
    Router,
    Target,
}

/// A throw-away scanner ── router ── target network, removed when dropped.
///
/// The fields are namespace names, for `ip netns exec` and [`in_namespace`]. Dropping the
/// lab stops its listeners and deletes the three namespaces, which also removes their
/// veths and firewall rules; this happens during a test's unwinding too.
pub struct Lab {
    pub scanner: String,
    pub router: String,
    pub target: String,
    /// Delay relays ([`Lab::delay_prefix`]); declared before `namespaces` so they stop
    /// before the namespaces are deleted.
    pub(crate) relays: Vec<Relay>,
    namespaces: NamespaceSet,
}

impl Lab {
    /// Builds the topology without any listener or firewall rule. On failure everything
    /// made so far is removed again.
    pub fn create(tag: &str) -> io::Result<Lab> {
        let [scanner, router, target] = fresh_names(tag, ["scan", "rtr", "tgt"])?;
        let mut namespaces = NamespaceSet::new();
        for ns in [&scanner, &router, &target] {
            namespaces.add(ns)?;
        }
        // From here on, an early return drops `lab` and with it the namespaces.
        let lab = Lab {
            scanner,
            router,
            target,
            relays: Vec::new(),
            namespaces,
        };
        lab.configure()?;
        Ok(lab)
    }

    /// The namespace name of `role`.
    pub fn ns(&self, role: Role) -> &str {
        match role {
            Role::Scanner => &self.scanner,
            Role::Router => &self.router,
            Role::Target => &self.target,
        }
    }

    /// Runs `argv` inside `ns` (`ip netns exec ns argv…`) and returns its stdout; the error
    /// names the command and carries its stderr.
    pub fn run(&self, ns: &str, argv: &[&str]) -> io::Result<String> {
        netns::run(ns, argv)
    }

    /// A `Command` running `program` inside `ns`, e.g. the synack binary in the scanner.
    pub fn command(&self, ns: &str, program: &str) -> Command {
        netns::command(ns, program)
    }

    /// Binds a TCP listener inside `ns` and accepts (and drops) connections on it until the
    /// lab drops. Returns the bound address, useful with port 0.
    pub fn listen(&mut self, ns: &str, addr: SocketAddr) -> io::Result<SocketAddr> {
        self.namespaces.listen(ns, addr)
    }

    /// Appends a firewall rule in `ns`: `rule` is everything after `iptables`, e.g.
    /// `["-A", "INPUT", "-p", "tcp", "--dport", "82", "-j", "DROP"]`.
    pub fn iptables(&self, ns: &str, family: Family, rule: &[&str]) -> io::Result<()> {
        let mut argv = vec![family.iptables(), "-w"];
        argv.extend_from_slice(rule);
        netns::run(ns, &argv).map(drop)
    }

    fn configure(&self) -> io::Result<()> {
        for role in [Role::Scanner, Role::Router, Role::Target] {
            let ns = self.ns(role);
            in_namespace(ns, || set_sysctls(role))??;
            ip(ns, &["link", "set", "lo", "up"])?;
        }
        // Each veth pair is created directly in its two namespaces, so no interface ever
        // appears in the host's namespace, not even for a moment. The explicit, distinct
        // ifindexes matter: in fresh namespaces both ends of a pair would get ifindex 2,
        // linkwatch then takes the peer link (iflink == ifindex) for none and handles
        // the carrier change as non-urgent, up to 1 s later; until then the device keeps
        // the no-op qdisc that drops every packet (measured: create took 1 s, not 80 ms).
        ip(
            &self.scanner,
            &[
                "link",
                "add",
                SCANNER_IFACE,
                "index",
                IFINDEX_SCANNER,
                "type",
                "veth",
                "peer",
                "name",
                ROUTER_SCANNER_IFACE,
                "index",
                IFINDEX_ROUTER_SCANNER_SIDE,
                "netns",
                &self.router,
            ],
        )?;
        ip(
            &self.target,
            &[
                "link",
                "add",
                TARGET_IFACE,
                "index",
                IFINDEX_TARGET,
                "type",
                "veth",
                "peer",
                "name",
                ROUTER_TARGET_IFACE,
                "index",
                IFINDEX_ROUTER_TARGET_SIDE,
                "netns",
                &self.router,
            ],
        )?;
        let links: [(&str, &str); 4] = [
            (&self.scanner, SCANNER_IFACE),
            (&self.router, ROUTER_SCANNER_IFACE),
            (&self.router, ROUTER_TARGET_IFACE),
            (&self.target, TARGET_IFACE),
        ];
        let addrs: [(IpAddr, IpAddr); 4] = [
            (SCANNER_V4.into(), SCANNER_V6.into()),
            (ROUTER_SCANNER_SIDE_V4.into(), ROUTER_SCANNER_SIDE_V6.into()),
            (ROUTER_TARGET_SIDE_V4.into(), ROUTER_TARGET_SIDE_V6.into()),
            (TARGET_V4.into(), TARGET_V6.into()),
        ];
        for (&(ns, iface), &(v4, v6)) in links.iter().zip(&addrs) {
            add_addr(ns, iface, v4)?;
            add_addr(ns, iface, v6)?;
            ip(ns, &["link", "set", iface, "up"])?;
        }
        for family in Family::BOTH {
            let gw = family.router_scanner_side().to_string();
            ip(
                &self.scanner,
                &[flag(family), "route", "add", "default", "via", &gw],
            )?;
            let gw = family.router_target_side().to_string();
            ip(
                &self.target,
                &[flag(family), "route", "add", "default", "via", &gw],
            )?;
        }
        for ns in [&self.scanner, &self.router, &self.target] {
            wait_ready(ns)?;
        }
        Ok(())
    }
}

/// Namespace sysctls, written before the veths exist so that the `default` values reach
/// them.
///
/// - DAD off: addresses are usable at once instead of "tentative" for a second or two.
/// - ICMP rate limits off: Linux allows one ICMP error per second per peer (burst 6) by
///   default, so a benchmark repeating ports 84, 85, 88 and 89 would turn into
///   no-response after a few rounds. The fixture has to give the same answer every time.
/// - Forwarding only in the router; rp_filter and the ICMP source choice pinned, because
///   new namespaces copy some IPv4 settings from the host's.
fn set_sysctls(role: Role) -> io::Result<()> {
    let forwarding = if role == Role::Router { "1" } else { "0" };
    let settings = [
        ("net.ipv6.conf.all.disable_ipv6", "0"),
        ("net.ipv6.conf.default.disable_ipv6", "0"),
        ("net.ipv6.conf.all.accept_dad", "0"),
        ("net.ipv6.conf.default.accept_dad", "0"),
        ("net.ipv4.conf.all.rp_filter", "0"),
        ("net.ipv4.conf.default.rp_filter", "0"),
        ("net.ipv4.icmp_errors_use_inbound_ifaddr", "0"),
        ("net.ipv4.icmp_ratelimit", "0"),
        ("net.ipv4.icmp_ratemask", "0"),
        ("net.ipv4.icmp_msgs_per_sec", "100000"),
        ("net.ipv4.icmp_msgs_burst", "100000"),
        ("net.ipv6.icmp.ratelimit", "0"),
        ("net.ipv4.ip_forward", forwarding),
        ("net.ipv6.conf.all.forwarding", forwarding),
    ];
    for (key, value) in settings {
        write_sysctl(key, value)?;
    }
    Ok(())
}

fn flag(family: Family) -> &'static str {
    match family {
        Family::V4 => "-4",
        Family::V6 => "-6",
    }
}

/// `ip -n ns args…`: iproute2 switches namespace itself, cheaper than `ip netns exec`.
fn ip(ns: &str, args: &[&str]) -> io::Result<String> {
    let mut argv = vec!["ip", "-n", ns];
    argv.extend_from_slice(args);
    run_argv(&argv)
}

fn add_addr(ns: &str, iface: &str, addr: IpAddr) -> io::Result<()> {
    let cidr = match addr {
        IpAddr::V4(a) => format!("{a}/{PREFIX_V4}"),
        IpAddr::V6(a) => format!("{a}/{PREFIX_V6}"),
    };
    let mut args = vec!["addr", "add", &cidr, "dev", iface];
    if addr.is_ipv6() {
        args.push("nodad");
    }
    ip(ns, &args).map(drop)
}

/// Waits until no IPv6 address in `ns` is tentative and every link has its carrier, so the
/// first SYN a test sends is not lost to set-up. Bounded by [`READY_TIMEOUT`].
fn wait_ready(ns: &str) -> io::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let tentative = ip(ns, &["-6", "addr", "show", "tentative"])?;
        let failed = ip(ns, &["-6", "addr", "show", "dadfailed"])?;
        if !failed.trim().is_empty() {
            return Err(io::Error::other(format!(
                "duplicate address detection failed in {ns:?}: {failed}"
            )));
        }
        let links = ip(ns, &["-o", "link", "show", "up"])?;
        let no_carrier = links.lines().any(|l| l.contains("NO-CARRIER"));
        if tentative.trim().is_empty() && !no_carrier {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "namespace {ns:?} not ready after {READY_TIMEOUT:?}: tentative: {} links: {}",
                    tentative.trim(),
                    links.trim()
                ),
            ));
        }
        thread::sleep(READY_POLL);
    }
}

impl Lab {
    /// Makes every address of `prefix` a far host: the target answers for it (closed
    /// ports with its stack's RST; open a port with [`Lab::listen`] on the far address,
    /// which an IPv6 prefix allows by turning `net.ipv6.ip_nonlocal_bind` on in the
    /// target; the target's INPUT rules apply as to its own address), and every packet
    /// from the scanner to it waits `delay` in a relay in the router (src/lab/src/delay.rs).
    ///
    /// `prefix`: inside 198.19.0.0/16, or inside 2001:db8::/32 apart from the lab's
    /// 2001:db8:1:: and 2001:db8:2:: links; `delay` at most [`MAX_DELAY`](super::delay::MAX_DELAY).
    /// The relay stops, and its device disappears, when the lab drops.
    pub fn delay_prefix(&mut self, prefix: &str, delay: Duration) -> io::Result<()> {
        let names = super::delay::Names {
            router: &self.router,
            target: &self.target,
            target_v4: TARGET_V4.into(),
            target_v6: TARGET_V6.into(),
        };
        let relay = Relay::start(names, self.relays.len(), prefix, delay)?;
        self.relays.push(relay);
        Ok(())
    }

    /// Packets the relays have delayed and passed on so far, and packets they dropped
    /// (a full queue, a failed write): a test can check that its far traffic really took
    /// the slow path.
    pub fn delayed_packets(&self) -> (u64, u64) {
        self.relays
            .iter()
            .fold((0, 0), |(r, d), x| (r + x.relayed(), d + x.dropped()))
    }
}
