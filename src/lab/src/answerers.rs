//! Scenarios for "who answered" on paths that are not the standard lab's clean ones
//! (issue 13): SYN proxies, DSCP changed on the way back, ports forwarded to another host,
//! a router forging RSTs with the target's TTL. Each builds on [`Lab::create`] with real
//! iptables rules; the standard scenario and [`crate::STANDARD_PORTS`] are untouched.
//!
//! Every scenario also gives the target a baseline: a listener on 22 and nothing on 79
//! (the stack's SYN/ACK and its DSCP-reflecting, flow-labelled RST).

use std::io;

use super::topology::{Family, Lab, Role};

/// The ports every scenario gives the target for a baseline: 22 open, 79 closed.
pub const BASELINE_PORTS: [u16; 2] = [22, 79];

/// Ports behind a SYN proxy in [`Lab::syn_proxy`]: 80 listens, 81 does not.
pub const PROXIED_PORTS: [u16; 2] = [80, 81];

/// [`Lab::dscp_path`]: the router clears the DSCP of the target's packets from 81,
/// re-marks 91 to AF12 and 92 to AF13, and polices 100–119 (two packets, then one a
/// second, keep their mark; the rest become AF12, as an RFC 2597 policer re-marks
/// out-of-profile traffic).
pub const DSCP_CLEARED_PORT: u16 = 81;
pub const DSCP_AF12_PORT: u16 = 91;
pub const DSCP_AF13_PORT: u16 = 92;
pub const POLICED_PORTS: std::ops::RangeInclusive<u16> = 100..=119;

/// [`Lab::dnat_router`]: ports of the router's scanner-side address forwarded to the
/// target (8080–8084 to its listener on 80, 8085 to its closed 81), the router's own closed
/// ports 20 and 21, and 23 reset by the router's own firewall.
pub const DNAT_OPEN_PORTS: std::ops::RangeInclusive<u16> = 8080..=8084;
pub const DNAT_CLOSED_PORT: u16 = 8085;
pub const ROUTER_CLOSED_PORTS: [u16; 2] = [20, 21];
pub const ROUTER_REJECT_PORT: u16 = 23;

/// [`Lab::ttl_forging_router`]: the router resets SYNs to 86 in the target's name and sets
/// the RST's TTL (hop limit) to what the target's own packets arrive with.
pub const TTL_FORGED_PORT: u16 = 86;

/// SYNPROXY's MSS option per family (the veths' MTU 1500 less the headers).
fn mss(family: Family) -> &'static str {
    match family {
        Family::V4 => "1460",
        Family::V6 => "1440",
    }
}

impl Lab {
    /// The topology with the baseline ports on the target, both families.
    fn with_baseline(tag: &str) -> io::Result<Lab> {
        let mut lab = Lab::create(tag)?;
        let target = lab.target.clone();
        for family in Family::BOTH {
            lab.listen(&target, family.target_port(BASELINE_PORTS[0]))?;
        }
        Ok(lab)
    }

    /// A SYN proxy (`SYNPROXY`) for [`PROXIED_PORTS`], on the target (INPUT) or on the
    /// router (FORWARD); a listener on 80 behind it, nothing on 81.
    pub fn syn_proxy(tag: &str, at: Role) -> io::Result<Lab> {
        let mut lab = Lab::with_baseline(tag)?;
        let target = lab.target.clone();
        let ns = lab.ns(at).to_string();
        // SYNPROXY needs strict conntrack: an ACK must not create a connection.
        lab.run(
            &ns,
            &["sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose=0"],
        )?;
        for family in Family::BOTH {
            lab.listen(&target, family.target_port(PROXIED_PORTS[0]))?;
            let dst = family.target().to_string();
            let chain = if at == Role::Router {
                "FORWARD"
            } else {
                "INPUT"
            };
            let ports = [
                "-d",
                &dst,
                "-p",
                "tcp",
                "-m",
                "multiport",
                "--dports",
                "80,81",
            ];
            let mut notrack = vec!["-t", "raw", "-A", "PREROUTING"];
            notrack.extend_from_slice(&ports);
            notrack.extend_from_slice(&["--syn", "-j", "CT", "--notrack"]);
            lab.iptables(&ns, family, &notrack)?;
            let mut proxy = vec!["-A", chain];
            proxy.extend_from_slice(&ports);
            proxy.extend_from_slice(&[
                "-m",
                "conntrack",
                "--ctstate",
                "INVALID,UNTRACKED",
                "-j",
                "SYNPROXY",
                "--sack-perm",
                "--timestamp",
                "--wscale",
                "7",
                "--mss",
                mss(family),
            ]);
            lab.iptables(&ns, family, &proxy)?;
            let mut invalid = vec!["-A", chain];
            invalid.extend_from_slice(&ports);
            invalid.extend_from_slice(&["-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"]);
            lab.iptables(&ns, family, &invalid)?;
        }
        Ok(lab)
    }

    /// DSCP changed on the way back, in the router's mangle FORWARD chain (see
    /// [`DSCP_CLEARED_PORT`]).
    pub fn dscp_path(tag: &str) -> io::Result<Lab> {
        let lab = Lab::with_baseline(tag)?;
        let router = lab.router.clone();
        for family in Family::BOTH {
            let src = family.target().to_string();
            let from = |sport: &str, then: &[&'static str]| -> Vec<String> {
                let mut r: Vec<String> = ["-t", "mangle", "-A", "FORWARD", "-s", &src, "-p", "tcp"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                r.extend(["--sport".to_string(), sport.to_string()]);
                r.extend(then.iter().map(|s| s.to_string()));
                r
            };
            let policed = format!("{}:{}", POLICED_PORTS.start(), POLICED_PORTS.end());
            let rules = [
                from(
                    &DSCP_CLEARED_PORT.to_string(),
                    &["-j", "DSCP", "--set-dscp", "0"],
                ),
                from(
                    &DSCP_AF12_PORT.to_string(),
                    &["-j", "DSCP", "--set-dscp-class", "AF12"],
                ),
                from(
                    &DSCP_AF13_PORT.to_string(),
                    &["-j", "DSCP", "--set-dscp-class", "AF13"],
                ),
                // In profile: leave the mark alone (ACCEPT ends the mangle chain).
                from(
                    &policed,
                    &[
                        "-m",
                        "limit",
                        "--limit",
                        "1/sec",
                        "--limit-burst",
                        "2",
                        "-j",
                        "ACCEPT",
                    ],
                ),
                from(&policed, &["-j", "DSCP", "--set-dscp-class", "AF12"]),
            ];
            for rule in &rules {
                let args: Vec<&str> = rule.iter().map(String::as_str).collect();
                lab.iptables(&router, family, &args)?;
            }
        }
        Ok(lab)
    }

    /// The router's scanner-side address as the target: some ports forwarded (DNAT) to
    /// the target host, the router's own closed ports, and one reset by its own firewall.
    pub fn dnat_router(tag: &str) -> io::Result<Lab> {
        let mut lab = Lab::with_baseline(tag)?;
        let (router, target) = (lab.router.clone(), lab.target.clone());
        for family in Family::BOTH {
            lab.listen(&target, family.target_port(80))?;
            let public = family.router_scanner_side().to_string();
            let to = |port: u16| match family {
                Family::V4 => format!("{}:{port}", family.target()),
                Family::V6 => format!("[{}]:{port}", family.target()),
            };
            let open = format!("{}:{}", DNAT_OPEN_PORTS.start(), DNAT_OPEN_PORTS.end());
            let closed = DNAT_CLOSED_PORT.to_string();
            for (dport, dest) in [(open.as_str(), to(80)), (closed.as_str(), to(81))] {
                lab.iptables(
                    &router,
                    family,
                    &[
                        "-t",
                        "nat",
                        "-A",
                        "PREROUTING",
                        "-d",
                        &public,
                        "-p",
                        "tcp",
                        "--dport",
                        dport,
                        "-j",
                        "DNAT",
                        "--to-destination",
                        &dest,
                    ],
                )?;
            }
            let reject = ROUTER_REJECT_PORT.to_string();
            lab.iptables(
                &router,
                family,
                &[
                    "-A",
                    "INPUT",
                    "-p",
                    "tcp",
                    "--dport",
                    &reject,
                    "-j",
                    "REJECT",
                    "--reject-with",
                    "tcp-reset",
                ],
            )?;
        }
        Ok(lab)
    }

    /// The router resets SYNs to [`TTL_FORGED_PORT`] in the target's name, with the TTL
    /// (hop limit) set to 63, what the target's own packets arrive with.
    pub fn ttl_forging_router(tag: &str) -> io::Result<Lab> {
        let lab = Lab::with_baseline(tag)?;
        let router = lab.router.clone();
        let port = TTL_FORGED_PORT.to_string();
        for family in Family::BOTH {
            let t = family.target().to_string();
            lab.iptables(
                &router,
                family,
                &[
                    "-A",
                    "FORWARD",
                    "-d",
                    &t,
                    "-p",
                    "tcp",
                    "--dport",
                    &port,
                    "-j",
                    "REJECT",
                    "--reject-with",
                    "tcp-reset",
                ],
            )?;
            let ttl: &[&str] = match family {
                Family::V4 => &["-j", "TTL", "--ttl-set", "63"],
                Family::V6 => &["-j", "HL", "--hl-set", "63"],
            };
            let mut rule = vec![
                "-t",
                "mangle",
                "-A",
                "POSTROUTING",
                "-s",
                &t,
                "-p",
                "tcp",
                "--sport",
                &port,
                "--tcp-flags",
                "RST",
                "RST",
            ];
            rule.extend_from_slice(ttl);
            lab.iptables(&router, family, &rule)?;
        }
        Ok(lab)
    }
}
