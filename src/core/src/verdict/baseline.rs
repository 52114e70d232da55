//! A target's baseline: what its own TCP stack's packets look like in this scan (hop
//! distance, whether its RSTs reflect the probe's DSCP, whether it sets IPv6 flow labels),
//! against which a single RST is judged.
//!
//! One address can front several answerers: ports forwarded (DNAT) to hosts behind a
//! router answer from farther than the router's own ports, and a SYN proxy answers the
//! handshake for the host. So the stack's packets are grouped by hop distance
//! ([`Baseline::stack_distances`]) instead of voted into one distance, and a SYN/ACK with
//! window 0 (a proxy's) is no stack packet at all.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::facts::DscpMatch;
use super::{StackPacket, TargetDistance, hops};
use crate::exchange::{Attempt, Dir, PacketKind, TracePacket};

/// Per-target facts that make a single packet's evidence conclusive or not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Baseline {
    /// Hop distance of packets only the target's stack sends (SYN/ACKs; RSTs that reflect
    /// the probe DSCP; ICMP errors from the target's address), most common value.
    pub hops: Option<u8>,
    /// Which kind of packet gave `hops`.
    pub hops_from: StackPacket,
    /// The TTL those packets arrived with.
    pub ttl: Option<u8>,
    /// The DSCP synack marked its SYNs with (0: not marked; the highest, should SYNs
    /// differ).
    pub probe_dscp: u8,
    /// A RST from this target reflected the probe's DSCP: the path keeps DSCP, so a RST
    /// that does not reflect it was made by something other than the stack. Holds that
    /// RST's port (the lowest such port, as every example port here: what the words cite
    /// must not depend on the order the attempts are held in).
    pub reflecting_rst_port: Option<u16>,
    /// A TCP packet from this target carried an IPv6 flow label; holds (port, label).
    pub flow_label_seen: Option<(u16, u32)>,
    /// Every hop distance the target's TCP stack packets (SYN/ACKs, reflecting or
    /// flow-labelled RSTs) came from, nearest first: one entry per answerer behind the
    /// address (usually one).
    pub stack_distances: Vec<TargetDistance>,
    /// A RST from this target whose DSCP the path re-marked (neither the probe's nor 0):
    /// (port, DSCP). Then a DSCP 0 may be the path's work too.
    pub path_remarks: Option<(u16, u8)>,
}

fn probe_dscp_of(attempt: &Attempt) -> u8 {
    attempt
        .packets
        .iter()
        .find(|p| p.dir == Dir::Out && p.flags().is_some_and(|f| f.is_syn_only()))
        .map(|p| p.dscp)
        .unwrap_or(0)
}

/// A SYN/ACK offering window 0: a SYN proxy's (SYNPROXY answers with window 0 until the
/// host behind it accepts); a TCP stack offers its receive window (RFC 9293 §3.10.7.2).
pub fn is_proxy_syn_ack(p: &TracePacket) -> bool {
    p.flags().is_some_and(|f| f.is_syn_ack()) && p.win == 0
}

/// Keeps the lowest example (by port first).
fn lowest<T: Ord + Copy>(kept: &mut Option<T>, seen: T) {
    *kept = Some(kept.map_or(seen, |k| k.min(seen)));
}

impl Baseline {
    /// Builds the baseline of one target address from all its attempts.
    pub fn of<'a>(target: IpAddr, attempts: impl IntoIterator<Item = &'a Attempt>) -> Baseline {
        let mut b = Baseline::default();
        // Votes per (hops, ttl): how many stack packets arrived so, and the most telling
        // kind among them — so the label does not depend on the order of the attempts.
        let mut hop_votes: BTreeMap<(u8, u8), (u32, StackPacket)> = BTreeMap::new();
        for a in attempts {
            if a.key.is_self_connect() {
                continue;
            }
            let dscp = probe_dscp_of(a);
            b.probe_dscp = b.probe_dscp.max(dscp);
            let port = a.key.target.port();
            // Only the answer to our SYN: a RST after a proxy's handshake answers the
            // proxy's own SYN, not ours (it never reflects our DSCP).
            let mut answered = false;
            for p in a.packets.iter().filter(|p| p.dir == Dir::In) {
                let first = !answered;
                if p.flags().is_some_and(|f| f.rst() || f.is_syn_ack()) {
                    answered = true;
                }
                let stack_packet = match p.kind {
                    PacketKind::Tcp(f) if f.is_syn_ack() && !is_proxy_syn_ack(p) => {
                        Some(StackPacket::SynAcks)
                    }
                    PacketKind::Tcp(f) if f.rst() && first && dscp != 0 => {
                        match DscpMatch::of(dscp, p.dscp) {
                            DscpMatch::Reflected => {
                                lowest(&mut b.reflecting_rst_port, port);
                                Some(StackPacket::DscpReflectingRsts)
                            }
                            DscpMatch::RemarkedInClass => {
                                lowest(&mut b.path_remarks, (port, p.dscp));
                                Some(StackPacket::MarkedRsts)
                            }
                            DscpMatch::Other => {
                                lowest(&mut b.path_remarks, (port, p.dscp));
                                None
                            }
                            DscpMatch::Zero => None,
                        }
                    }
                    PacketKind::Icmp(_) if p.from == target => Some(StackPacket::IcmpErrors),
                    _ => None,
                };
                // A flow-labelled RST answering our SYN is the stack's (netfilter's RST has
                // label 0), whatever its DSCP.
                let stack_packet = stack_packet.or_else(|| {
                    (first
                        && p.flags().is_some_and(|f| f.rst())
                        && p.flow_label.is_some_and(|l| l != 0))
                    .then_some(StackPacket::MarkedRsts)
                });
                if p.flags().is_some()
                    && p.from == target
                    && !is_proxy_syn_ack(p)
                    && let Some(label) = p.flow_label.filter(|l| *l != 0)
                {
                    lowest(&mut b.flow_label_seen, (port, label));
                }
                if let Some(kind) = stack_packet {
                    let e = hop_votes.entry((hops(p.ttl), p.ttl)).or_insert((0, kind));
                    e.0 += 1;
                    e.1 = e.1.min(kind);
                }
            }
        }
        // The most common distance; on a tie, the nearer one (BTreeMap order, first max).
        let best = hop_votes
            .iter()
            .rev()
            .max_by_key(|(_, (n, _))| *n)
            .map(|(k, v)| (*k, *v));
        if let Some(((h, ttl), (_, kind))) = best {
            b.hops = Some(h);
            b.ttl = Some(ttl);
            b.hops_from = kind;
        }
        // One entry per distance: its most common TTL and most telling kind. Only TCP
        // packets make an answerer: an ICMP error's initial TTL may differ from the
        // stack's, and it is the primary vote's fallback anyway.
        let mut by_hops: BTreeMap<u8, (u32, TargetDistance)> = BTreeMap::new();
        for (&(h, ttl), &(n, kind)) in &hop_votes {
            if kind == StackPacket::IcmpErrors {
                continue;
            }
            let e = by_hops.entry(h).or_insert((
                0,
                TargetDistance {
                    hops: h,
                    ttl,
                    from: kind,
                },
            ));
            if n > e.0 {
                e.1.ttl = ttl;
            }
            e.0 = e.0.max(n);
            e.1.from = e.1.from.min(kind);
        }
        b.stack_distances = by_hops.into_values().map(|(_, d)| d).collect();
        b
    }

    /// The target's own distance as the primary vote gave it.
    pub fn distance(&self) -> Option<TargetDistance> {
        Some(TargetDistance {
            hops: self.hops?,
            ttl: self.ttl?,
            from: self.hops_from,
        })
    }

    /// The stack answerer at `h` hops, if one answered from there.
    pub fn stack_at(&self, h: u8) -> Option<TargetDistance> {
        self.stack_distances.iter().copied().find(|d| d.hops == h)
    }
}
