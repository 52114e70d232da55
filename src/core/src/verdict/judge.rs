//! Judging a set of attempts: grouped by target address, each address's [`Baseline`],
//! the attempts ordered by port and serial, then each port judged ([`super::judge_port`]);
//! a large target (a full-range capture or scan) on every core. docs/architecture.md,
//! "Judging a large target", says why each step is done the way it is.

use std::net::{IpAddr, SocketAddr};

use rustc_hash::FxHashMap;

use super::{Baseline, LiveFacts, PortContext, PortVerdict, RstMemo, judge_port, rate_limits_icmp};
use crate::exchange::{Attempt, Dir, PacketKind};

/// Judges every port: from packets, and in a live scan also from connect()'s outcomes.
/// Output is sorted by target address and port.
pub fn judge_all(attempts: &[Attempt], live: Option<&LiveFacts>) -> Vec<PortVerdict> {
    judge_owned(attempts.to_vec(), live)
}

/// [`judge_all`], consuming the attempts: each port's packets become its verdict's trace
/// (moved, not copied), so a full-range scan does not hold them twice.
pub fn judge_owned(attempts: Vec<Attempt>, live: Option<&LiveFacts>) -> Vec<PortVerdict> {
    judge_sized(attempts, None, live, Sizes::default(), Vec::new())
}

/// [`judge_owned`] for attempts that are all at `ip` (a stream's final target, a live
/// scan's target taken from its tracker): they are not looked through for their
/// addresses first.
pub fn judge_target(
    ip: IpAddr,
    attempts: Vec<Attempt>,
    live: Option<&LiveFacts>,
) -> Vec<PortVerdict> {
    judge_target_into(ip, attempts, live, Vec::new())
}

/// [`judge_target`] writing the verdicts into `out`'s memory (emptied first): memory the
/// caller had mapped ahead, on a core with time to spare.
pub fn judge_target_into(
    ip: IpAddr,
    attempts: Vec<Attempt>,
    live: Option<&LiveFacts>,
    out: Vec<PortVerdict>,
) -> Vec<PortVerdict> {
    debug_assert!(attempts.iter().all(|a| a.key.target.ip() == ip));
    judge_sized(attempts, Some(ip), live, Sizes::default(), out)
}

/// From what size judging changes method; the methods give the same verdicts (tests
/// judge small inputs both ways).
#[derive(Clone, Copy, Debug)]
pub(super) struct Sizes {
    /// Targets with at least this many ports (and captures with this many attempts) are
    /// judged in parallel: below it, starting the work on other threads costs more than it
    /// saves.
    pub(super) parallel_from: usize,
    /// From this many attempts at one address, [`port_order`] counts instead of sorting.
    pub(super) count_ports_from: usize,
}

impl Default for Sizes {
    fn default() -> Self {
        Sizes {
            parallel_from: 4096,
            count_ports_from: 4096,
        }
    }
}

pub(super) fn judge_sized(
    mut attempts: Vec<Attempt>,
    at: Option<IpAddr>,
    live: Option<&LiveFacts>,
    sizes: Sizes,
    mut out: Vec<PortVerdict>,
) -> Vec<PortVerdict> {
    out.clear();
    // Target addresses in SocketAddr's order (IPv4 before IPv6, then by address), each
    // with its attempts.
    let ips = match at {
        Some(ip) if !attempts.is_empty() => vec![(ip, (0..attempts.len() as u32).collect())],
        _ => by_address(&attempts),
    };
    // Baselines per target address, from all its attempts; and the attempts by address,
    // then port, then in the order they were made. Both only read the attempts: a large
    // capture computes them side by side.
    let baselines_of = || -> FxHashMap<IpAddr, Baseline> {
        ips.iter()
            .map(|(ip, idx)| {
                (
                    *ip,
                    Baseline::of(*ip, idx.iter().map(|&i| &attempts[i as usize])),
                )
            })
            .collect()
    };
    let order_of = || {
        let mut order: Vec<u32> = Vec::with_capacity(attempts.len());
        let mut runs: Vec<u32> = Vec::new();
        // Whether each target address rate-limits its ICMP errors. Live: the prober's
        // records say so. Replay: the packets show it — some port went unanswered, then
        // answered a later attempt with an ICMP error (what the live scan's slow re-probe
        // leaves in its capture, and nmap's retries too). Silent ports of theirs get the
        // same "may be a REJECT" note as in the live scan that made the capture.
        let mut rate_limited: FxHashMap<IpAddr, bool> = FxHashMap::default();
        for (ip, idx) in &ips {
            let from = order.len();
            let repeated = port_order(
                &attempts,
                idx,
                &mut order,
                &mut runs,
                sizes.count_ports_from,
            );
            // (Live, the addresses probed are looked at below: some have no attempts.)
            // Ports with a single attempt cannot show it.
            if live.is_none() && repeated && shows_rate_limit_in_packets(&order[from..], &attempts)
            {
                rate_limited.insert(*ip, true);
            }
        }
        (order, runs, rate_limited)
    };
    let (baselines, (order, runs, mut rate_limited)) = if attempts.len() >= sizes.parallel_from {
        rayon::join(baselines_of, order_of)
    } else {
        (baselines_of(), order_of())
    };
    drop(ips);
    // The attempts in that order, by reference (not moved: an attempt is 128 bytes): each
    // port's attempts are then one run, handed out as disjoint `&mut` slices.
    let mut sorted = gather_mut(&mut attempts, &order);
    drop(order);
    // In a live scan every probed port gets a verdict, and only those.
    let mut probed: Vec<SocketAddr> = live
        .map(|l| l.probes.keys().copied().collect())
        .unwrap_or_default();
    probed.sort_unstable();
    if let Some(l) = live {
        let mut ips: Vec<IpAddr> = probed.iter().map(|p| p.ip()).collect();
        ips.dedup();
        for ip in ips {
            rate_limited.insert(ip, rate_limits_icmp(ip, &l.probes));
        }
    }
    let units = port_units(&mut sorted, &runs, &probed, live.is_some());
    let no_baseline = Baseline::default();
    let judge = |memo: &mut (RstMemo, Option<IpAddr>), (probe, mine): Unit<'_, '_>| {
        let port = match live {
            Some(_) => probed[probe as usize],
            None => mine[0].key.target,
        };
        // RST judgements are memoised per target address.
        if memo.1 != Some(port.ip()) {
            memo.0.clear();
            memo.1 = Some(port.ip());
        }
        let ctx = PortContext {
            base: baselines.get(&port.ip()).unwrap_or(&no_baseline),
            probes: live.and_then(|l| l.probes.get(&port)).map(|r| r.as_slice()),
            live,
            rate_limited: rate_limited.get(&port.ip()).copied().unwrap_or(false),
        };
        judge_port(port, mine, &ctx, &mut memo.0)
    };
    if units.len() >= sizes.parallel_from {
        // A full-range target: its ports are judged on every core, each verdict written
        // straight into its place in `out`.
        use rayon::prelude::*;
        units
            .into_par_iter()
            .with_min_len((sizes.parallel_from / 4).max(1))
            .map_init(|| (RstMemo::default(), None), judge)
            .collect_into_vec(&mut out);
    } else {
        let mut memo = (RstMemo::default(), None);
        out.reserve_exact(units.len());
        out.extend(units.into_iter().map(|u| judge(&mut memo, u)));
    }
    out
}

/// `&mut` references to `items` in the order of `order`, which names each index once
/// at most (a repeat or an index out of range panics).
///
/// Each item's place is noted first, then the items are lent in their own order into an
/// array of that many places, unwrapped where it lies (an `Option<&mut T>` is a
/// reference's size). Taking the references out of an `Option` per item in the order's
/// order, as before, cost a second array as long and a pass of scattered reads: a tenth
/// of judging a full-range target.
fn gather_mut<'a, T>(items: &'a mut [T], order: &[u32]) -> Vec<&'a mut T> {
    const NOWHERE: u32 = u32::MAX;
    let mut place = vec![NOWHERE; items.len()];
    for (k, &i) in order.iter().enumerate() {
        place[i as usize] = k as u32;
    }
    let mut out: Vec<Option<&mut T>> = (0..order.len()).map(|_| None).collect();
    for (item, &k) in items.iter_mut().zip(&place) {
        if k != NOWHERE {
            out[k as usize] = Some(item);
        }
    }
    out.into_iter()
        .map(|r| r.expect("the order names each index once"))
        .collect()
}

/// The target addresses of `attempts` in order, each with its attempts' indices. A
/// capture of one target (the usual full-range case) needs no map.
fn by_address(attempts: &[Attempt]) -> Vec<(IpAddr, Vec<u32>)> {
    let Some(first) = attempts.first().map(|a| a.key.target.ip()) else {
        return Vec::new();
    };
    if attempts.iter().all(|a| a.key.target.ip() == first) {
        return vec![(first, (0..attempts.len() as u32).collect())];
    }
    let mut by_ip: FxHashMap<IpAddr, Vec<u32>> = FxHashMap::default();
    for (i, a) in attempts.iter().enumerate() {
        by_ip.entry(a.key.target.ip()).or_default().push(i as u32);
    }
    let mut ips: Vec<(IpAddr, Vec<u32>)> = by_ip.into_iter().collect();
    ips.sort_unstable_by_key(|(ip, _)| *ip);
    ips
}

/// Appends one address's attempts (`idx`) to `order`, by port, then in the order they
/// were made (their serial; attempts built outside a tracker all have 0 and keep the
/// order they came in), and to `runs` how many attempts each port has, in that order.
/// Returns whether some port has more than one attempt.
///
/// From `count_from` attempts they are placed by counting their ports (a full-range
/// target has 65,535, and comparison sorting them was a tenth of a replay); fewer are
/// sorted on a packed key.
pub(super) fn port_order(
    attempts: &[Attempt],
    idx: &[u32],
    order: &mut Vec<u32>,
    runs: &mut Vec<u32>,
    count_from: usize,
) -> bool {
    let port = |i: u32| usize::from(attempts[i as usize].key.target.port());
    let serial = |i: u32| attempts[i as usize].serial();
    if idx.len() < count_from {
        // Serials count a tracker's attempts: far below 2^48.
        let mut keyed: Vec<(u64, u32)> = idx
            .iter()
            .map(|&i| (((port(i) as u64) << 48) | serial(i).min((1 << 48) - 1), i))
            .collect();
        // Unstable is enough: (key, index) pairs are distinct, and equal keys keep their
        // index order.
        keyed.sort_unstable();
        let ports_before = runs.len();
        for run in keyed.chunk_by(|a, b| a.0 >> 48 == b.0 >> 48) {
            runs.push(run.len() as u32);
        }
        order.extend(keyed.iter().map(|&(_, i)| i));
        // (`runs` holds the addresses before this one too.)
        return keyed.len() > runs.len() - ports_before;
    }
    // start[p]..start[p + 1]: where port p's attempts go.
    let mut start = vec![0u32; 65_537];
    for &i in idx {
        start[port(i) + 1] += 1;
    }
    let repeated = start.iter().any(|&n| n > 1);
    runs.extend(start.iter().copied().filter(|&n| n > 0));
    for p in 1..start.len() {
        start[p] += start[p - 1];
    }
    let from = order.len();
    order.resize(from + idx.len(), 0);
    let placed = &mut order[from..];
    let mut next = start.clone();
    for &i in idx {
        let p = port(i);
        placed[next[p] as usize] = i;
        next[p] += 1;
    }
    if repeated {
        for w in start.windows(2) {
            if w[1] - w[0] > 1 {
                // Stable: equal serials keep their index order.
                placed[w[0] as usize..w[1] as usize].sort_by_key(|&i| serial(i));
            }
        }
    }
    repeated
}

/// One port to judge: its run of attempts and, live, its index in the probed ports (a
/// replay's port is its attempts').
type Unit<'a, 'b> = (u32, &'a mut [&'b mut Attempt]);

/// The ports to judge, in output order, each with its run of `attempts` (sorted by
/// address and port, `runs` long each). Live: every probed port and only those (a probed
/// port the capture never saw gets an empty run).
fn port_units<'a, 'b>(
    attempts: &'a mut [&'b mut Attempt],
    runs: &[u32],
    probed: &[SocketAddr],
    live: bool,
) -> Vec<Unit<'a, 'b>> {
    let mut rest = attempts;
    let mut runs = runs.iter();
    if !live {
        let mut units = Vec::with_capacity(runs.len());
        for &n in runs {
            let (mine, tail) = std::mem::take(&mut rest).split_at_mut(n as usize);
            rest = tail;
            units.push((0, mine));
        }
        return units;
    }
    let mut units = Vec::with_capacity(probed.len());
    let mut run = runs.next();
    for (j, &port) in probed.iter().enumerate() {
        // Attempts at ports before this one were not probed: passed over.
        while let Some(&n) = run
            && rest.first().is_some_and(|a| a.key.target < port)
        {
            rest = &mut std::mem::take(&mut rest)[n as usize..];
            run = runs.next();
        }
        let n = match run {
            Some(&n) if rest.first().is_some_and(|a| a.key.target == port) => {
                run = runs.next();
                n as usize
            }
            _ => 0,
        };
        let (mine, tail) = std::mem::take(&mut rest).split_at_mut(n);
        rest = tail;
        units.push((j as u32, mine));
    }
    units
}

/// One connection attempt's verdict: the view of a capture of real traffic, one row per
/// (client, source port, target, port) attempt, as Zeek's conn.log.
#[derive(Clone, Debug)]
pub struct ConnectionVerdict {
    /// The side that sent the SYN.
    pub client: SocketAddr,
    /// The attempt judged on its own packets (`attempts` is 1), against its target's
    /// baseline from every attempt.
    pub verdict: PortVerdict,
    /// SYNs the client sent in this attempt (the first and its retransmissions).
    pub syns: u32,
}

/// Judges each attempt on its own, in the order they began (replay's `--connections`).
pub fn judge_connections(attempts: Vec<Attempt>) -> Vec<ConnectionVerdict> {
    let mut baselines: FxHashMap<IpAddr, Baseline> = FxHashMap::default();
    let mut ips: Vec<IpAddr> = attempts.iter().map(|a| a.key.target.ip()).collect();
    ips.sort_unstable();
    ips.dedup();
    for ip in ips {
        let base = Baseline::of(ip, attempts.iter().filter(|a| a.key.target.ip() == ip));
        baselines.insert(ip, base);
    }
    let mut memos: FxHashMap<IpAddr, RstMemo> = FxHashMap::default();
    let mut out: Vec<ConnectionVerdict> = attempts
        .into_iter()
        .map(|mut a| {
            let ip = a.key.target.ip();
            let client = a.key.scanner;
            let syns = a.syns_sent() as u32;
            let base = &baselines[&ip];
            let memo = memos.entry(ip).or_default();
            let ctx = PortContext {
                base,
                probes: None,
                live: None,
                rate_limited: false,
            };
            let verdict = judge_port(a.key.target, &mut [&mut a], &ctx, memo);
            ConnectionVerdict {
                client,
                verdict,
                syns,
            }
        })
        .collect();
    out.sort_by_key(|c| c.verdict.started);
    out
}

/// Whether one target's attempts (`order`: indices by port, then in the order made) show
/// ICMP rate limiting: a port with an unanswered attempt followed by one a decisive ICMP
/// error answered.
fn shows_rate_limit_in_packets(order: &[u32], attempts: &[Attempt]) -> bool {
    let icmp_answered = |a: &Attempt| {
        a.packets
            .iter()
            .any(|p| p.dir == Dir::In && matches!(p.kind, PacketKind::Icmp(k) if k.is_decisive()))
    };
    order.windows(2).any(|w| {
        let (earlier, later) = (&attempts[w[0] as usize], &attempts[w[1] as usize]);
        earlier.key.target.port() == later.key.target.port()
            && !earlier.answered
            && icmp_answered(later)
    })
}

#[cfg(test)]
mod tests {
    use super::gather_mut;

    #[test]
    fn gathering_follows_the_order_and_lends_each_item_once() {
        let mut items = vec![10, 11, 12, 13];
        let got = gather_mut(&mut items, &[2, 0, 3]);
        assert_eq!(got.iter().map(|x| **x).collect::<Vec<_>>(), [12, 10, 13]);
        for x in got {
            *x += 100;
        }
        assert_eq!(items, [110, 11, 112, 113]);
    }

    #[test]
    #[should_panic(expected = "each index once")]
    fn gathering_an_index_twice_panics_rather_than_alias() {
        let mut items = vec![1, 2, 3];
        let _ = gather_mut(&mut items, &[1, 0, 1]);
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn gathering_past_the_end_panics() {
        let mut items = vec![1, 2, 3];
        let _ = gather_mut(&mut items, &[3]);
    }
}
