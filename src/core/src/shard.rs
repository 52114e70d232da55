//! `--shard I/N --seed S`: N machines (or N runs) cover one scan, each its own part, and
//! their JSON Lines merge into the scan's.
//!
//! As masscan's and zmap's shards, the parts come from a seeded permutation: every item is
//! ranked by a hash of (seed, item) and the shard `I` of `N` takes the ranks `r` with
//! `r mod N = I - 1`, so the parts are disjoint, cover everything and differ in size by
//! one at most, and the same seed gives every machine the same permutation whatever
//! order the targets were typed in.
//!
//! What is permuted is the (target, port) space, cut along one axis: whole targets when
//! there are at least `4·N` of them (or as many targets as ports), else whole ports.
//! Whole targets keep each host's verdicts on one machine: a RST is judged against the
//! host's own SYN/ACKs and RSTs (its baseline of hop distance, DSCP reflection and flow
//! label), which a host split over machines would see only in part. Cutting along an axis
//! also keeps the live scan's target groups (`prober::order`): every target of a shard
//! has the same ports, so a target is final when its ports are decided. Every
//! (target, port) pair is in exactly one shard either way ([`owner`]).

use std::fmt;
use std::net::IpAddr;

/// One part of a sharded scan: `index` of `count` (1-based, as masscan's `--shard 1/3`),
/// with the permutation's seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
    pub seed: u64,
}

/// A `--shard` value that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardError(pub String);

impl fmt::Display for ShardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid shard '{}': expected I/N with 1 <= I <= N (e.g. 2/3)",
            self.0
        )
    }
}

impl std::error::Error for ShardError {}

impl Shard {
    /// Parses `I/N` (1 <= I <= N <= 65536).
    pub fn parse(spec: &str, seed: u64) -> Result<Shard, ShardError> {
        let bad = || ShardError(spec.to_string());
        let (i, n) = spec.trim().split_once('/').ok_or_else(bad)?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(i) || !digits(n) {
            return Err(bad());
        }
        let index: u32 = i.parse().map_err(|_| bad())?;
        let count: u32 = n.parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count || count > 65536 {
            return Err(bad());
        }
        Ok(Shard { index, count, seed })
    }
}

/// The axis a scan is cut along.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    Targets,
    Ports,
}

/// Whole targets when there are at least 4 per shard or as many targets as ports, else
/// whole ports. Depends only on the sizes, so every shard of a scan picks the same.
pub fn axis(targets: usize, ports: usize, count: u32) -> Axis {
    if targets >= 4 * count as usize || targets >= ports {
        Axis::Targets
    } else {
        Axis::Ports
    }
}

/// SplitMix64's finaliser: a bijection on u64 with good avalanche.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn ip_key(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(a) => u64::from(u32::from(a)),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            mix((v >> 64) as u64 ^ 0x6_0000_0000) ^ v as u64
        }
    }
}

/// Which shard (0-based) each item falls in: items ranked by the seeded hash of their
/// key (ties by key, then position), rank r in shard r mod count.
fn shard_of_each(keys: &[u64], seed: u64, count: u32) -> Vec<u32> {
    let mut ranked: Vec<(u64, u64, usize)> = keys
        .iter()
        .enumerate()
        .map(|(i, &k)| (mix(k ^ mix(seed)), k, i))
        .collect();
    ranked.sort_unstable();
    let mut out = vec![0; keys.len()];
    for (rank, &(_, _, i)) in ranked.iter().enumerate() {
        out[i] = (rank % count as usize) as u32;
    }
    out
}

/// This shard's part of a scan of `targets` × `ports`: the targets and ports it probes
/// (every pair of the two), in the order given.
pub fn split(targets: &[IpAddr], ports: &[u16], shard: &Shard) -> (Vec<IpAddr>, Vec<u16>) {
    let want = shard.index - 1;
    match axis(targets.len(), ports.len(), shard.count) {
        Axis::Targets => {
            let keys: Vec<u64> = targets.iter().map(|&ip| ip_key(ip)).collect();
            let of = shard_of_each(&keys, shard.seed, shard.count);
            let kept = targets
                .iter()
                .zip(&of)
                .filter(|&(_, &s)| s == want)
                .map(|(&t, _)| t)
                .collect();
            (kept, ports.to_vec())
        }
        Axis::Ports => {
            let keys: Vec<u64> = ports.iter().map(|&p| u64::from(p)).collect();
            let of = shard_of_each(&keys, shard.seed, shard.count);
            let kept = ports
                .iter()
                .zip(&of)
                .filter(|&(_, &s)| s == want)
                .map(|(&p, _)| p)
                .collect();
            (targets.to_vec(), kept)
        }
    }
}

/// The shard (1-based) that probes `(ip, port)` in a scan of `targets` × `ports` cut in
/// `count` with `seed`; None when the pair is not in the scan.
pub fn owner(
    targets: &[IpAddr],
    ports: &[u16],
    count: u32,
    seed: u64,
    ip: IpAddr,
    port: u16,
) -> Option<u32> {
    (1..=count).find(|&index| {
        let (t, p) = split(targets, ports, &Shard { index, count, seed });
        t.contains(&ip) && p.contains(&port)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn hosts(n: u32) -> Vec<IpAddr> {
        (0..n)
            .map(|i| IpAddr::V4((0xc612_0200 + i).into()))
            .collect()
    }

    /// Every pair in exactly one shard, shards within one of each other in size.
    fn covers_once(targets: &[IpAddr], ports: &[u16], count: u32, seed: u64) {
        let mut seen: HashMap<(IpAddr, u16), u32> = HashMap::new();
        let mut sizes = Vec::new();
        for index in 1..=count {
            let (t, p) = split(targets, ports, &Shard { index, count, seed });
            sizes.push(t.len() * p.len());
            for &ip in &t {
                for &port in &p {
                    assert!(
                        seen.insert((ip, port), index).is_none(),
                        "{ip}:{port} twice"
                    );
                }
            }
        }
        assert_eq!(seen.len(), targets.len() * ports.len());
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        let unit = match axis(targets.len(), ports.len(), count) {
            Axis::Targets => ports.len(),
            Axis::Ports => targets.len(),
        };
        assert!(max - min <= unit, "{sizes:?}");
    }

    #[test]
    fn shards_cover_every_pair_once() {
        let ports: Vec<u16> = (1..=100).collect();
        for (t, p, n) in [
            (1000, 100, 3),
            (1, 1000, 4),
            (3, 12, 2),
            (2, 1, 5),
            (40, 10, 7),
        ] {
            for seed in [0, 1, 0xdead_beef] {
                covers_once(&hosts(t), &ports[..p.min(100)], n, seed);
            }
        }
        let many: Vec<u16> = (1..=1000).collect();
        covers_once(&hosts(1), &many, 4, 7);
    }

    #[test]
    fn the_seed_changes_the_permutation_not_the_order_typed() {
        let t = hosts(64);
        let ports = [22, 80];
        let s = |seed| Shard {
            index: 1,
            count: 4,
            seed,
        };
        assert_ne!(split(&t, &ports, &s(1)).0, split(&t, &ports, &s(2)).0);
        let mut rev = t.clone();
        rev.reverse();
        let mut a = split(&t, &ports, &s(9)).0;
        let mut b = split(&rev, &ports, &s(9)).0;
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }

    #[test]
    fn parse_names_the_bad_value() {
        assert_eq!(
            Shard::parse("2/3", 5),
            Ok(Shard {
                index: 2,
                count: 3,
                seed: 5
            })
        );
        for bad in ["0/3", "4/3", "1/0", "1", "a/b", "1/3/4", "-1/3", "1/65537"] {
            let e = Shard::parse(bad, 0).unwrap_err().to_string();
            assert!(e.contains(&format!("'{bad}'")), "{e}");
        }
    }

    #[test]
    fn owner_agrees_with_split() {
        let t = hosts(3);
        let ports: Vec<u16> = (1..=50).collect();
        let o = owner(&t, &ports, 4, 3, t[1], 17).unwrap();
        let (tt, pp) = split(
            &t,
            &ports,
            &Shard {
                index: o,
                count: 4,
                seed: 3,
            },
        );
        assert!(tt.contains(&t[1]) && pp.contains(&17));
        assert_eq!(owner(&t, &ports, 4, 3, t[1], 51), None);
    }
}
