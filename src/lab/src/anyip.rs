//! Many hosts from one namespace: the target answers for a whole prefix (an AnyIP
//! `local` route on its loopback), routed to it by the router, so scans of thousands of
//! addresses run in the lab without thousands of namespaces.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::netns;
use super::topology::{Lab, TARGET_V4};

/// The prefix the many-host lab answers for: inside 198.18.0.0/15 (RFC 2544), apart from
/// the lab's own 198.18.x.x links.
pub const MANY_HOSTS_V4: &str = "198.19.0.0/16";

/// Whether `prefix` ("a.b.c.d/len") lies inside 198.19.0.0/16.
fn inside_benchmark_range(prefix: &str) -> bool {
    let Some((addr, len)) = prefix.split_once('/') else {
        return false;
    };
    let (Ok(addr), Ok(len)) = (addr.parse::<Ipv4Addr>(), len.parse::<u8>()) else {
        return false;
    };
    (16..=32).contains(&len) && addr.octets()[..2] == [198, 19]
}

impl Lab {
    /// Makes the target answer for every address of `prefix` (inside 198.19.0.0/16) as
    /// for its own: closed ports answer with its stack's RST, and a listener on the
    /// wildcard address makes `open_port` open on all of them. The standard scenario's
    /// rules match the target's own addresses only, so they do not apply there.
    pub fn answer_for_prefix(&mut self, prefix: &str, open_port: u16) -> io::Result<()> {
        if !inside_benchmark_range(prefix) {
            return Err(io::Error::other(format!(
                "{prefix}: the many-host lab only answers inside 198.19.0.0/16"
            )));
        }
        netns::run(
            &self.target,
            &["ip", "route", "add", "local", prefix, "dev", "lo"],
        )?;
        let via = TARGET_V4.to_string();
        netns::run(&self.router, &["ip", "route", "add", prefix, "via", &via])?;
        let target = self.target.clone();
        self.listen(
            &target,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), open_port),
        )?;
        Ok(())
    }

    /// Makes the router drop everything for `prefix` (inside 198.19.0.0/16) without a
    /// word (a blackhole route: no ICMP error): addresses where nothing exists, as on a
    /// sparse network. A more specific route than [`Lab::answer_for_prefix`]'s wins.
    pub fn blackhole(&self, prefix: &str) -> io::Result<()> {
        if !inside_benchmark_range(prefix) {
            return Err(io::Error::other(format!(
                "{prefix}: the lab only blackholes inside 198.19.0.0/16"
            )));
        }
        netns::run(&self.router, &["ip", "route", "add", "blackhole", prefix])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_benchmark_prefix() {
        assert!(inside_benchmark_range("198.19.0.0/16"));
        assert!(inside_benchmark_range("198.19.4.0/24"));
        assert!(!inside_benchmark_range("198.18.0.0/15"));
        assert!(!inside_benchmark_range("10.0.0.0/16"));
        assert!(!inside_benchmark_range("198.19.0.0"));
        assert!(!inside_benchmark_range("198.19.0.0/8"));
    }
}
