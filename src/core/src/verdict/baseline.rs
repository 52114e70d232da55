//! A target's baseline: what its own TCP stack's packets look like in this scan (hop
//! distance, whether its RSTs reflect the probe's DSCP, whether it sets IPv6 flow labels),
//! against which a single RST is judged.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{StackPacket, hops};
use crate::exchange::{Attempt, Dir, PacketKind};

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
    /// The DSCP synack marked its SYNs with (0: not marked).
    pub probe_dscp: u8,
    /// A RST from this target reflected the probe's DSCP: the path keeps DSCP, so a RST
    /// that does not reflect it was made by something other than the stack. Holds that
    /// RST's port.
    pub reflecting_rst_port: Option<u16>,
    /// A TCP packet from this target carried an IPv6 flow label; holds (port, label).
    pub flow_label_seen: Option<(u16, u32)>,
}

fn probe_dscp_of(attempt: &Attempt) -> u8 {
    attempt
        .packets
        .iter()
        .find(|p| p.dir == Dir::Out && p.flags().is_some_and(|f| f.is_syn_only()))
        .map(|p| p.dscp)
        .unwrap_or(0)
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
            if dscp != 0 {
                b.probe_dscp = dscp;
            }
            for p in a.packets.iter().filter(|p| p.dir == Dir::In) {
                let stack_packet = match p.kind {
                    PacketKind::Tcp(f) if f.is_syn_ack() => Some(StackPacket::SynAcks),
                    PacketKind::Tcp(f) if f.rst() && dscp != 0 && p.dscp == dscp => {
                        b.reflecting_rst_port.get_or_insert(a.key.target.port());
                        Some(StackPacket::DscpReflectingRsts)
                    }
                    PacketKind::Icmp(_) if p.from == target => Some(StackPacket::IcmpErrors),
                    _ => None,
                };
                if p.flags().is_some()
                    && p.from == target
                    && let Some(label) = p.flow_label.filter(|l| *l != 0)
                {
                    b.flow_label_seen
                        .get_or_insert((a.key.target.port(), label));
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
        b
    }
}
