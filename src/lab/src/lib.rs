//! A throw-away network lab in Linux network namespaces, for tests, `synack demo`,
//! benchmarks and fixture recording.
//!
//! Nothing here ever touches the host's interfaces, routes or firewall: every interface is
//! created directly inside a namespace the lab owns, every namespace is removed when its
//! owner drops (also while a failing test unwinds), and addresses come only from
//! 198.18.0.0/15 (RFC 2544 benchmarking) and 2001:db8::/32 (RFC 3849 documentation).
//! Namespaces are named `sa-<tag>-<pid>-<n>-<role>`; [`cleanup_stale`] removes those whose
//! owning process is gone.
//!
//! # Topology ([`Lab::create`])
//!
//! ```text
//!  scanner                      router                           target
//!  to-rtr ─────────────────── to-scan   to-tgt ──────────────── to-rtr
//!  198.18.1.1/24          198.18.1.254  198.18.2.254            198.18.2.1/24
//!  2001:db8:1::1/64       2001:db8:1::fe  2001:db8:2::fe        2001:db8:2::1/64
//!  default via router     forwarding on (v4, v6)                default via router
//! ```
//!
//! IPv6 addresses are added with `nodad` (and `accept_dad=0`) and creation waits, bounded,
//! until none is tentative. ICMP rate limiting is off in every namespace, so repeated runs
//! see the same ICMP errors.
//!
//! # Standard scenario ([`Lab::standard`], data: [`STANDARD_PORTS`])
//!
//! Identical for 198.18.2.1 and 2001:db8:2::1. "Router" rules sit in its FORWARD chain
//! and match `-d <target> -p tcp --dport <port>`; "target" rules sit in the target's INPUT
//! chain. `connect()` is the errno a non-blocking connect ends with given time for one
//! retransmission (see [`ConnectResult`] for when it arrives): the errno-only view, where
//! several different verdicts collapse into one errno.
//!
//! | port | setup | state | reason (v4 / v6) | deciding packet from | connect() v4 / v6 |
//! |---|---|---|---|---|---|
//! | 22 | listener on target | open | syn-ack | target stack | connected |
//! | 80 | listener on target | open | syn-ack | target stack | connected |
//! | 81 | nothing | closed | reset | target stack (reflects DSCP, v6 flow label) | ECONNREFUSED |
//! | 82 | target `DROP` | filtered | no-response | nobody | timeout |
//! | 83 | target `REJECT --reject-with tcp-reset` | filtered | reset | target firewall (TOS 0, flow label 0) | ECONNREFUSED |
//! | 84 | target `REJECT` `icmp-port-unreachable` / `icmp6-port-unreachable` | filtered | port-unreach | target firewall, ICMP from 198.18.2.1 | ECONNREFUSED |
//! | 85 | target `REJECT` `icmp-host-prohibited` / `icmp6-adm-prohibited` | filtered | host-prohibited / admin-prohibited | target firewall, ICMP from 198.18.2.1 | EHOSTUNREACH / EACCES |
//! | 86 | router `REJECT --reject-with tcp-reset` | filtered | reset | router, forging the target's address, 1 hop closer | ECONNREFUSED |
//! | 87 | router `DROP` | filtered | no-response | nobody | timeout |
//! | 88 | router `REJECT` `icmp-admin-prohibited` / `icmp6-adm-prohibited` | filtered | admin-prohibited | router, ICMP from 198.18.1.254 / 2001:db8:1::fe | EHOSTUNREACH / EACCES |
//! | 89 | router `REJECT` `icmp-net-unreachable` / `icmp6-no-route` | filtered | net-unreach | router, ICMP from 198.18.1.254 / 2001:db8:1::fe | ENETUNREACH |
//! | 90 | listener on target; router drops every 2nd SYN to 90, the first included (`--syn -m statistic --mode nth --every 2 --packet 0 -j DROP`) | open | syn-ack, from the retransmitted SYN (~1 s) | target stack | connected (after ~1 s) |
//!
//! Port 90's counter belongs to the rule (one per family) and counts every SYN to port
//! 90: an attempt that waits for its retransmission leaves it in phase for the next, one
//! that gives up within the first second shifts it.
//!
//! # What the scanner sees (captured on its interface, Linux 6.18)
//!
//! - From the target (2 hops): TTL / hop limit 63. Its stack's RST carries a flow label
//!   (v6); netfilter's RST on port 83 has flow label 0 and TOS 0, IP ID 0.
//! - From the router (1 hop): TTL / hop limit 64, both for its forged RST on port 86
//!   (source address: the target's) and for its ICMP errors on ports 88 and 89 (source
//!   address: 198.18.1.254 / 2001:db8:1::fe, the address facing the scanner).
//! - ICMPv4 errors, from target and router alike, have TOS 0xc0 (precedence "internetwork
//!   control"), never the SYN's DSCP; ICMPv6 errors carry a flow label of their own.

use std::path::PathBuf;

mod answerers;
mod anyip;
mod delay;
mod loopback;
mod netns;
mod scenario;
mod serve;
mod topology;

pub use answerers::{
    BASELINE_PORTS, DNAT_CLOSED_PORT, DNAT_OPEN_PORTS, DSCP_AF12_PORT, DSCP_AF13_PORT,
    DSCP_CLEARED_PORT, POLICED_PORTS, PROXIED_PORTS, ROUTER_CLOSED_PORTS, ROUTER_REJECT_PORT,
    TTL_FORGED_PORT,
};
pub use anyip::MANY_HOSTS_V4;
pub use delay::{MAX_DELAY, MAX_QUEUED};
pub use loopback::{LoopbackLab, WIDE_PORT_RANGE, loopback};
pub use netns::{
    NAME_PREFIX, cleanup_stale, command, in_namespace, list_namespaces, read_sysctl, run,
};
pub use scenario::{Answerer, ConnectResult, PortCase, Rule, STANDARD_PORTS, standard_port};
pub use serve::serve;
pub use topology::{
    Family, Lab, ROUTER_SCANNER_IFACE, ROUTER_SCANNER_SIDE_V4, ROUTER_SCANNER_SIDE_V6,
    ROUTER_TARGET_IFACE, ROUTER_TARGET_SIDE_V4, ROUTER_TARGET_SIDE_V6, Role, SCANNER_IFACE,
    SCANNER_V4, SCANNER_V6, TARGET_IFACE, TARGET_V4, TARGET_V6,
};

/// setpriv arguments that run a program as nobody (65534), without any capability: how
/// the tests scan unprivileged.
pub const AS_NOBODY: [&str; 4] = [
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "--inh-caps=-all",
];

/// A copy of the program `bin` that nobody may run, wherever the checkout lives (its
/// directories may be closed to others), in a directory of its own under the system's
/// temporary directory named after `tag` and this process. Returns (that directory, the
/// copy); the caller removes the directory.
pub fn runnable_by_anyone(bin: &str, tag: &str) -> std::io::Result<(PathBuf, PathBuf)> {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("synack-test-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let copy = dir.join("synack");
    std::fs::copy(bin, &copy)?;
    for p in [&dir, &copy] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok((dir, copy))
}

/// Whether a test that needs root should run: true as root. Otherwise it prints a SKIPPED
/// line and returns false, unless `CI=true`, where a silent skip would hide that the lab
/// tests never ran, so it panics instead.
pub fn root_or_skip(test_name: &str) -> bool {
    let ci = std::env::var("CI").ok();
    match skip_decision(effective_uid_is_root(), ci.as_deref()) {
        SkipDecision::Run => true,
        SkipDecision::Fail => {
            panic!("test {test_name} needs root and CI=true: refusing to skip")
        }
        SkipDecision::Skip => {
            eprintln!(
                "SKIPPED {test_name}: needs root (run as root, or CI=true to make this a failure)"
            );
            false
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum SkipDecision {
    Run,
    Skip,
    Fail,
}

fn skip_decision(root: bool, ci: Option<&str>) -> SkipDecision {
    match (root, ci) {
        (true, _) => SkipDecision::Run,
        (false, Some("true")) => SkipDecision::Fail,
        (false, _) => SkipDecision::Skip,
    }
}

/// Reads the effective uid from /proc/self/status ("Uid: real effective saved fs"), which
/// avoids an `unsafe` libc call for something this small.
fn effective_uid_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            line.split_whitespace().nth(2)?.parse::<u32>().ok()
        })
        == Some(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_policy() {
        assert_eq!(skip_decision(true, Some("true")), SkipDecision::Run);
        assert_eq!(skip_decision(true, None), SkipDecision::Run);
        assert_eq!(skip_decision(false, Some("true")), SkipDecision::Fail);
        assert_eq!(skip_decision(false, Some("1")), SkipDecision::Skip);
        assert_eq!(skip_decision(false, None), SkipDecision::Skip);
    }
}
