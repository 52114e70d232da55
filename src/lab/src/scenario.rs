//! The standard scenario: one port per way a TCP SYN can be answered (or not), as data.
//!
//! [`STANDARD_PORTS`] is both the specification and the installer's input: the rules
//! [`Lab::standard`] installs are the ones listed here, so the table that tests and the
//! demo print cannot drift from what the lab does.

use std::io;
use std::net::{IpAddr, SocketAddr};

use super::topology::{Family, Lab, Role};

/// A firewall rule the scenario installs: what follows `iptables` (`v4`) or `ip6tables`
/// (`v6`) on a command line, so it can be printed as is and split on whitespace (no
/// argument contains any).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The namespace the rule lives in.
    pub at: Role,
    pub v4: &'static str,
    pub v6: &'static str,
}

impl Rule {
    /// The rule as typed after `iptables` / `ip6tables`.
    pub fn text(&self, family: Family) -> &'static str {
        match family {
            Family::V4 => self.v4,
            Family::V6 => self.v6,
        }
    }

    /// The rule as separate arguments.
    pub fn args(&self, family: Family) -> Vec<&'static str> {
        self.text(family).split_whitespace().collect()
    }
}

/// Who sends the packet that decides a port's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Answerer {
    /// The target's own TCP stack: SYN/ACK, or RST reflecting the SYN's DSCP (and, on
    /// IPv6, carrying a flow label).
    TargetStack,
    /// A netfilter rule on the target: a RST with TOS 0 and flow label 0, or an ICMP error
    /// from the target's address. Same hop distance as the target stack.
    TargetFirewall,
    /// A netfilter rule on the router forging a RST in the target's name: the source
    /// address is the target's, but it arrives one hop closer (TTL 64, not 63).
    RouterForgingTarget,
    /// The router's own ICMP error, sent from its scanner-side address.
    Router,
    /// Nothing answers.
    Nobody,
}

impl Answerer {
    /// The source address of the deciding packet, as the scanner sees it.
    pub fn source(self, family: Family) -> Option<IpAddr> {
        match self {
            Answerer::TargetStack | Answerer::TargetFirewall | Answerer::RouterForgingTarget => {
                Some(family.target())
            }
            Answerer::Router => Some(family.router_scanner_side()),
            Answerer::Nobody => None,
        }
    }

    /// Hops between the scanner and the sender of the deciding packet.
    pub fn hops(self) -> Option<u8> {
        match self {
            Answerer::TargetStack | Answerer::TargetFirewall => Some(2),
            Answerer::RouterForgingTarget | Answerer::Router => Some(1),
            Answerer::Nobody => None,
        }
    }
}

/// What a non-blocking `connect()` ends with when given time for one SYN retransmission
/// (2 s or more): the errno-only view an unprivileged scan falls back to. The contrast
/// with the packet-level verdict is the point of synack.
///
/// The errno is final but its timing is not: on a veth the ICMP error for the first SYN
/// arrives while `connect()` still holds the socket lock, so Linux keeps it only as a soft
/// error (TcpExtLockDroppedIcmps). Observed on 6.18: IPv4 non-blocking connects still
/// fail at once, blocking IPv4 and all IPv6 connects fail only when the retransmitted
/// SYN's ICMP error arrives, about 1 s later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectResult {
    Connected,
    /// connect() failed with this errno (a `libc::E*` value).
    Errno(i32),
    /// Nothing decided within the time: the kernel would go on retransmitting SYNs.
    TimedOut,
}

impl std::fmt::Display for ConnectResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            ConnectResult::Connected => f.write_str("connected"),
            ConnectResult::TimedOut => f.write_str("timeout"),
            ConnectResult::Errno(libc::ECONNREFUSED) => f.write_str("ECONNREFUSED"),
            ConnectResult::Errno(libc::EHOSTUNREACH) => f.write_str("EHOSTUNREACH"),
            ConnectResult::Errno(libc::ENETUNREACH) => f.write_str("ENETUNREACH"),
            ConnectResult::Errno(libc::EACCES) => f.write_str("EACCES"),
            ConnectResult::Errno(n) => write!(f, "errno {n}"),
        }
    }
}

/// One port of the standard scenario and the verdict synack must give it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortCase {
    pub port: u16,
    /// The set-up in a few words, for tables.
    pub setup: &'static str,
    /// Whether a listener runs on the target (both families).
    pub listener: bool,
    /// Firewall rules installed for this port, in order.
    pub rules: &'static [Rule],
    /// Expected state: "open", "closed" or "filtered".
    pub state: &'static str,
    pub reason_v4: &'static str,
    pub reason_v6: &'static str,
    pub answerer: Answerer,
    /// SYNs the network drops before one gets through: the verdict must come from a
    /// retransmission (which keeps the sequence number and source port).
    pub lost_syns: u8,
    pub connect_v4: ConnectResult,
    pub connect_v6: ConnectResult,
}

impl PortCase {
    pub fn reason(&self, family: Family) -> &'static str {
        match family {
            Family::V4 => self.reason_v4,
            Family::V6 => self.reason_v6,
        }
    }

    pub fn connect(&self, family: Family) -> ConnectResult {
        match family {
            Family::V4 => self.connect_v4,
            Family::V6 => self.connect_v6,
        }
    }
}

/// Shorthand for the table below.
const fn target(v4: &'static str, v6: &'static str) -> Rule {
    Rule {
        at: Role::Target,
        v4,
        v6,
    }
}

const fn router(v4: &'static str, v6: &'static str) -> Rule {
    Rule {
        at: Role::Router,
        v4,
        v6,
    }
}

use Answerer::{Nobody, Router, RouterForgingTarget, TargetFirewall, TargetStack};
use ConnectResult::{Connected, Errno, TimedOut};

const REFUSED: ConnectResult = Errno(libc::ECONNREFUSED);
const HOST_UNREACH: ConnectResult = Errno(libc::EHOSTUNREACH);
const ACCESS: ConnectResult = Errno(libc::EACCES);
const NET_UNREACH: ConnectResult = Errno(libc::ENETUNREACH);

/// The standard scenario, identical for the target's IPv4 and IPv6 address. See the table
/// in the [module documentation](super).
///
/// Router rules match `-d <target>` so that they only ever see traffic towards the target,
/// never the answers.
pub const STANDARD_PORTS: &[PortCase] = &[
    PortCase {
        port: 22,
        setup: "listener on target",
        listener: true,
        rules: &[],
        state: "open",
        reason_v4: "syn-ack",
        reason_v6: "syn-ack",
        answerer: TargetStack,
        lost_syns: 0,
        connect_v4: Connected,
        connect_v6: Connected,
    },
    PortCase {
        port: 80,
        setup: "listener on target",
        listener: true,
        rules: &[],
        state: "open",
        reason_v4: "syn-ack",
        reason_v6: "syn-ack",
        answerer: TargetStack,
        lost_syns: 0,
        connect_v4: Connected,
        connect_v6: Connected,
    },
    PortCase {
        port: 81,
        setup: "nothing",
        listener: false,
        rules: &[],
        state: "closed",
        reason_v4: "reset",
        reason_v6: "reset",
        answerer: TargetStack,
        lost_syns: 0,
        connect_v4: REFUSED,
        connect_v6: REFUSED,
    },
    PortCase {
        port: 82,
        setup: "target INPUT DROP",
        listener: false,
        rules: &[target(
            "-A INPUT -p tcp --dport 82 -j DROP",
            "-A INPUT -p tcp --dport 82 -j DROP",
        )],
        state: "filtered",
        reason_v4: "no-response",
        reason_v6: "no-response",
        answerer: Nobody,
        lost_syns: 0,
        connect_v4: TimedOut,
        connect_v6: TimedOut,
    },
    PortCase {
        port: 83,
        setup: "target INPUT REJECT tcp-reset",
        listener: false,
        rules: &[target(
            "-A INPUT -p tcp --dport 83 -j REJECT --reject-with tcp-reset",
            "-A INPUT -p tcp --dport 83 -j REJECT --reject-with tcp-reset",
        )],
        state: "filtered",
        reason_v4: "reset",
        reason_v6: "reset",
        answerer: TargetFirewall,
        lost_syns: 0,
        connect_v4: REFUSED,
        connect_v6: REFUSED,
    },
    PortCase {
        port: 84,
        setup: "target INPUT REJECT port-unreachable",
        listener: false,
        rules: &[target(
            "-A INPUT -p tcp --dport 84 -j REJECT --reject-with icmp-port-unreachable",
            "-A INPUT -p tcp --dport 84 -j REJECT --reject-with icmp6-port-unreachable",
        )],
        state: "filtered",
        reason_v4: "port-unreach",
        reason_v6: "port-unreach",
        answerer: TargetFirewall,
        lost_syns: 0,
        connect_v4: REFUSED,
        connect_v6: REFUSED,
    },
    PortCase {
        port: 85,
        setup: "target INPUT REJECT host-prohibited (v6 adm-prohibited)",
        listener: false,
        rules: &[target(
            "-A INPUT -p tcp --dport 85 -j REJECT --reject-with icmp-host-prohibited",
            "-A INPUT -p tcp --dport 85 -j REJECT --reject-with icmp6-adm-prohibited",
        )],
        state: "filtered",
        reason_v4: "host-prohibited",
        reason_v6: "admin-prohibited",
        answerer: TargetFirewall,
        lost_syns: 0,
        connect_v4: HOST_UNREACH,
        connect_v6: ACCESS,
    },
    PortCase {
        port: 86,
        setup: "router FORWARD REJECT tcp-reset",
        listener: false,
        rules: &[router(
            "-A FORWARD -d 198.18.2.1 -p tcp --dport 86 -j REJECT --reject-with tcp-reset",
            "-A FORWARD -d 2001:db8:2::1 -p tcp --dport 86 -j REJECT --reject-with tcp-reset",
        )],
        state: "filtered",
        reason_v4: "reset",
        reason_v6: "reset",
        answerer: RouterForgingTarget,
        lost_syns: 0,
        connect_v4: REFUSED,
        connect_v6: REFUSED,
    },
    PortCase {
        port: 87,
        setup: "router FORWARD DROP",
        listener: false,
        rules: &[router(
            "-A FORWARD -d 198.18.2.1 -p tcp --dport 87 -j DROP",
            "-A FORWARD -d 2001:db8:2::1 -p tcp --dport 87 -j DROP",
        )],
        state: "filtered",
        reason_v4: "no-response",
        reason_v6: "no-response",
        answerer: Nobody,
        lost_syns: 0,
        connect_v4: TimedOut,
        connect_v6: TimedOut,
    },
    PortCase {
        port: 88,
        setup: "router FORWARD REJECT admin-prohibited",
        listener: false,
        rules: &[router(
            "-A FORWARD -d 198.18.2.1 -p tcp --dport 88 -j REJECT --reject-with icmp-admin-prohibited",
            "-A FORWARD -d 2001:db8:2::1 -p tcp --dport 88 -j REJECT --reject-with icmp6-adm-prohibited",
        )],
        state: "filtered",
        reason_v4: "admin-prohibited",
        reason_v6: "admin-prohibited",
        answerer: Router,
        lost_syns: 0,
        connect_v4: HOST_UNREACH,
        connect_v6: ACCESS,
    },
    PortCase {
        port: 89,
        setup: "router FORWARD REJECT net-unreachable (v6 no-route)",
        listener: false,
        rules: &[router(
            "-A FORWARD -d 198.18.2.1 -p tcp --dport 89 -j REJECT --reject-with icmp-net-unreachable",
            "-A FORWARD -d 2001:db8:2::1 -p tcp --dport 89 -j REJECT --reject-with icmp6-no-route",
        )],
        state: "filtered",
        reason_v4: "net-unreach",
        reason_v6: "net-unreach",
        answerer: Router,
        lost_syns: 0,
        connect_v4: NET_UNREACH,
        connect_v6: NET_UNREACH,
    },
    PortCase {
        port: 90,
        setup: "listener on target; router drops every 2nd SYN, the first included",
        listener: true,
        rules: &[router(
            "-A FORWARD -d 198.18.2.1 -p tcp --dport 90 --syn -m statistic --mode nth --every 2 --packet 0 -j DROP",
            "-A FORWARD -d 2001:db8:2::1 -p tcp --dport 90 --syn -m statistic --mode nth --every 2 --packet 0 -j DROP",
        )],
        state: "open",
        reason_v4: "syn-ack",
        reason_v6: "syn-ack",
        answerer: TargetStack,
        lost_syns: 1,
        connect_v4: Connected,
        connect_v6: Connected,
    },
];

/// The [`STANDARD_PORTS`] entry for `port`.
pub fn standard_port(port: u16) -> Option<&'static PortCase> {
    STANDARD_PORTS.iter().find(|case| case.port == port)
}

impl Lab {
    /// The topology plus the standard scenario: listeners on the target and every rule of
    /// [`STANDARD_PORTS`], for both families.
    pub fn standard(tag: &str) -> io::Result<Lab> {
        let mut lab = Lab::create(tag)?;
        for case in STANDARD_PORTS {
            for family in Family::BOTH {
                if case.listener {
                    let target = lab.target.clone();
                    lab.listen(&target, SocketAddr::new(family.target(), case.port))?;
                }
                for rule in case.rules {
                    lab.iptables(lab.ns(rule.at), family, &rule.args(family))?;
                }
            }
        }
        Ok(lab)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_unique_and_sorted() {
        let ports: Vec<u16> = STANDARD_PORTS.iter().map(|c| c.port).collect();
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(ports, sorted);
    }

    /// Every rule names its own port, and router rules only match traffic to the target
    /// (never the answers travelling back), in the right family.
    #[test]
    fn rules_match_their_port_and_the_target() {
        for case in STANDARD_PORTS {
            for rule in case.rules {
                for family in Family::BOTH {
                    let args = rule.args(family);
                    let dport = args.iter().position(|&a| a == "--dport").unwrap();
                    assert_eq!(args[dport + 1], case.port.to_string(), "{case:?}");
                    assert!(args.windows(2).any(|w| w == ["-p", "tcp"]), "{case:?}");
                    if rule.at == Role::Router {
                        assert_eq!(args[..2], ["-A", "FORWARD"], "{case:?}");
                        let d = args.iter().position(|&a| a == "-d").unwrap();
                        assert_eq!(args[d + 1], family.target().to_string(), "{case:?}");
                    } else {
                        assert_eq!(rule.at, Role::Target);
                        assert_eq!(args[..2], ["-A", "INPUT"], "{case:?}");
                    }
                    let foreign = match family {
                        Family::V4 => "icmp6-",
                        Family::V6 => "icmp-",
                    };
                    assert!(!args.iter().any(|a| a.starts_with(foreign)), "{case:?}");
                    // Printed rules must be pasteable into a shell as they are.
                    let text = rule.text(family);
                    assert!(!text.contains(['"', '\'', '\\']), "{text}");
                }
            }
        }
    }

    #[test]
    fn responders_agree_with_states() {
        for case in STANDARD_PORTS {
            match case.state {
                "open" => assert_eq!(case.answerer, Answerer::TargetStack),
                "closed" => assert_eq!(case.answerer, Answerer::TargetStack),
                "filtered" => assert_ne!(case.answerer, Answerer::TargetStack),
                other => panic!("unknown state {other}"),
            }
            assert_eq!(case.listener, case.state == "open", "{case:?}");
            let silent = case.reason_v4 == "no-response";
            assert_eq!(silent, case.answerer == Answerer::Nobody, "{case:?}");
        }
        assert_eq!(
            Answerer::Router.source(Family::V6),
            Some(Family::V6.router_scanner_side())
        );
    }
}
