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

pub(super) fn route_targets(addrs: &[IpAddr]) -> Result<Routes, ScanError> {
    let ifaces = pnet_datalink::interfaces();
    let mut by_iface: Routes = BTreeMap::new();
    for &ip in addrs {
        let iface = route_interface(ip, &ifaces).map_err(|e| ScanError::Route(ip, e))?;
        by_iface
            .entry(iface.name.clone())
            .or_insert_with(|| (iface, Vec::new()))
            .1
            .push(ip);
    }
    Ok(by_iface)
}
