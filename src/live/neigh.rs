//! Is the kernel still looking for a target's link-layer address? A connect() to an
//! unused address on a directly connected network sends no SYN: the packet waits for an
//! ARP (IPv4) or neighbour-discovery (IPv6) reply that never comes, and about 3 s later
//! (net.ipv4.neigh.*.mcast_solicit × retrans_time) the kernel fails the connect() with
//! host-unreach, an ICMP error from this host's own address. The prober keeps such an
//! attempt past its timeout, bounded, so that this answer is heard instead of a timeout.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::sys;

/// How long after its start an attempt waiting for a neighbour is kept at most (the
/// kernel gives up after 3 s by default).
pub const WAIT: Duration = Duration::from_secs(6);
/// How often such an attempt is looked at again.
pub const RECHECK: Duration = Duration::from_millis(250);
/// How long a read of the neighbour tables is used.
const FRESH: Duration = Duration::from_millis(100);

/// The neighbour entries being resolved (NUD_INCOMPLETE), read at most every 100 ms.
#[derive(Debug, Default)]
pub struct Neighbours {
    read_at: Option<Instant>,
    resolving: Vec<IpAddr>,
}

impl Neighbours {
    /// Whether the kernel is still resolving `ip`'s link-layer address.
    pub fn resolving(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.read_at.is_none_or(|t| now.duration_since(t) >= FRESH) {
            self.read_at = Some(now);
            self.resolving = [false, true]
                .into_iter()
                .flat_map(|v6| sys::neighbours(v6).unwrap_or_default())
                .filter(|&(_, state)| state & libc::NUD_INCOMPLETE != 0)
                .map(|(ip, _)| ip)
                .collect();
        }
        self.resolving.contains(&ip)
    }
}

/// Whether the kernel asked for `ip`'s link-layer address and got no reply (its entry
/// is being resolved, or resolution failed): on a directly connected network, nothing
/// answers for the address.
pub fn unresolved(ip: IpAddr) -> bool {
    sys::neighbours(ip.is_ipv6())
        .unwrap_or_default()
        .iter()
        .any(|&(n, state)| n == ip && state & (libc::NUD_INCOMPLETE | libc::NUD_FAILED) != 0)
}
