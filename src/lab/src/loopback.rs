//! A single namespace with only `lo`, for loopback scans.

use std::io;
use std::net::SocketAddr;
use std::process::Command;

use super::netns::{self, NamespaceSet, fresh_names, in_namespace, write_sysctl};
use super::topology::Family;

/// The ephemeral port range set in a [`LoopbackLab`]: nearly every port a test scans can
/// also be the source port the kernel picks, so a scanner that mistakes a TCP
/// self-connect (simultaneous open, RFC 9293 §3.5) for an open port gets caught.
pub const WIDE_PORT_RANGE: (u16, u16) = (1024, 65535);

/// One throw-away namespace with `lo` up (127.0.0.1 and ::1) and a wide ephemeral port
/// range; removed, listeners included, when dropped.
pub struct LoopbackLab {
    pub ns: String,
    namespaces: NamespaceSet,
}

impl LoopbackLab {
    pub fn create(tag: &str) -> io::Result<LoopbackLab> {
        let [ns] = fresh_names(tag, ["lo"])?;
        let mut namespaces = NamespaceSet::new();
        namespaces.add(&ns)?;
        let lab = LoopbackLab { ns, namespaces };
        let (low, high) = WIDE_PORT_RANGE;
        let range = format!("{low} {high}");
        in_namespace(&lab.ns, || {
            write_sysctl("net.ipv4.ip_local_port_range", &range)?;
            // ::1 needs IPv6 on; new namespaces may copy the host's setting.
            write_sysctl("net.ipv6.conf.all.disable_ipv6", "0")?;
            write_sysctl("net.ipv6.conf.default.disable_ipv6", "0")
        })??;
        netns::run_argv(&["ip", "-n", &lab.ns, "link", "set", "lo", "up"])?;
        Ok(lab)
    }

    /// See [`Lab::run`](super::Lab::run).
    pub fn run(&self, argv: &[&str]) -> io::Result<String> {
        netns::run(&self.ns, argv)
    }

    /// See [`Lab::command`](super::Lab::command).
    pub fn command(&self, program: &str) -> Command {
        netns::command(&self.ns, program)
    }

    /// See [`Lab::iptables`](super::Lab::iptables).
    pub fn iptables(&self, family: Family, rule: &[&str]) -> io::Result<()> {
        let mut argv = vec![family.iptables(), "-w"];
        argv.extend_from_slice(rule);
        self.run(&argv).map(drop)
    }

    /// See [`Lab::listen`](super::Lab::listen).
    pub fn listen(&mut self, addr: SocketAddr) -> io::Result<SocketAddr> {
        self.namespaces.listen(&self.ns, addr)
    }
}

/// Shorthand for [`LoopbackLab::create`].
pub fn loopback(tag: &str) -> io::Result<LoopbackLab> {
    LoopbackLab::create(tag)
}
