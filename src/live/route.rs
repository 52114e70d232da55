//! Which interface reaches each target: the one whose capture will see its packets.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

use pnet_datalink::NetworkInterface;

use super::{ScanError, sys};

/// The interface traffic to `dst` leaves by: `lo` for this host's own addresses, else the
/// interface holding the source address the kernel would pick (a UDP connect() sends
/// nothing but runs the route lookup).
pub fn route_interface(dst: IpAddr, ifaces: &[NetworkInterface]) -> io::Result<NetworkInterface> {
    if sys::is_local(dst, ifaces) {
        return ifaces
            .iter()
            .find(|i| i.is_loopback())
            .cloned()
            .ok_or_else(|| io::Error::other("no loopback interface"));
    }
    let bind: SocketAddr = match dst {
        IpAddr::V4(_) => "0.0.0.0:0".parse().expect("literal"),
        IpAddr::V6(_) => "[::]:0".parse().expect("literal"),
    };
    let sock = UdpSocket::bind(bind)?;
    sock.connect(SocketAddr::new(dst, 9))?;
    let src = sock.local_addr()?.ip();
    ifaces
        .iter()
        .find(|i| i.ips.iter().any(|n| n.ip() == src))
        .cloned()
        .ok_or_else(|| io::Error::other(format!("no interface holds source address {src}")))
}

/// Interfaces towards the targets, by name, each with the targets it leads to.
pub(super) type Routes = BTreeMap<String, (NetworkInterface, Vec<IpAddr>)>;

/// Why no TCP connection can be made to `ip`, when none can: such addresses are skipped
/// with a word instead of failing the scan.
pub fn unscannable(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) if a.is_unspecified() => Some("the unspecified address"),
        IpAddr::V4(a) if a.is_broadcast() => Some("the limited broadcast address"),
        IpAddr::V4(a) if a.is_multicast() => Some("a multicast address"),
        IpAddr::V6(a) if a.is_unspecified() => Some("the unspecified address"),
        IpAddr::V6(a) if a.is_multicast() => Some("a multicast address"),
        _ => None,
    }
}

/// Targets that cannot be scanned, each with the reason, and the routes to the rest.
pub(super) struct Routed {
    pub(super) routes: Routes,
    pub(super) skipped: Vec<(IpAddr, String)>,
}

pub(super) fn route_targets(addrs: &[IpAddr]) -> Result<Routed, ScanError> {
    let ifaces = pnet_datalink::interfaces();
    let mut by_iface: Routes = BTreeMap::new();
    let mut skipped = Vec::new();
    for &ip in addrs {
        if let Some(why) = unscannable(ip) {
            skipped.push((ip, why.to_string()));
            continue;
        }
        let iface = match route_interface(ip, &ifaces) {
            Ok(i) => i,
            // The route lookup's connect() is refused for a broadcast address of a
            // subnet this host is on (SO_BROADCAST is not set, nor should it be for TCP).
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
                skipped.push((ip, "a broadcast address of a subnet this host is on".into()));
                continue;
            }
            Err(e) => return Err(ScanError::Route(ip, e)),
        };
        by_iface
            .entry(iface.name.clone())
            .or_insert_with(|| (iface, Vec::new()))
            .1
            .push(ip);
    }
    Ok(Routed {
        routes: by_iface,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_no_tcp_connection_can_reach() {
        for a in ["0.0.0.0", "255.255.255.255", "224.0.0.1", "::", "ff02::1"] {
            assert!(unscannable(a.parse().unwrap()).is_some(), "{a}");
        }
        for a in ["198.18.2.1", "198.18.1.0", "2001:db8::1", "127.0.0.1"] {
            assert!(unscannable(a.parse().unwrap()).is_none(), "{a}");
        }
    }
}
