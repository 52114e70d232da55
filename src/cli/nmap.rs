//! nmap's meanings on synack: the options synack takes as no-ops or cannot mean (one
//! line each, naming the nearest synack feature), and the -T timing templates.

use std::time::Duration;

use super::args::ScanArgs;
use synack::live::prober::INITIAL_TIMEOUT;

/// The line for an nmap option synack cannot mean, None when every option given is one
/// synack takes.
pub fn refused(args: &ScanArgs) -> Option<String> {
    if let Some(t) = &args.scan_type {
        let nearest = match t.as_str() {
            "T" => return refused_rest(args),
            "S" => {
                "-sS (SYN scan) needs raw packets; synack makes connect() scans (-sT) and \
                    captures the same SYN/ACKs and RSTs: leave -sS out"
            }
            "U" => "-sU: synack scans TCP only (connect()); scan UDP with nmap -sU",
            "V" => {
                "-sV (version detection): synack does not talk to services; the nearest is \
                    each port's packet trace (--ladder)"
            }
            "n" => {
                "-sn (host discovery only) is not implemented; synack discovers hosts \
                    before scanning their ports (the host lines of its output; -Pn skips it)"
            }
            "C" => "-sC (scripts): synack runs no scripts; the nearest is --explain",
            _ => "",
        };
        if nearest.is_empty() {
            return Some(format!(
                "-s{t}: synack makes TCP connect() scans only (-sT); SYN, FIN, NULL, Xmas, \
                 ACK, window and UDP scans need raw packets"
            ));
        }
        return Some(nearest.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    refused_rest(args)
}

fn refused_rest(args: &ScanArgs) -> Option<String> {
    if let Some(p) = &args.ping
        && p != "n"
    {
        return Some(format!(
            "-P{p}: synack's host discovery is fixed (ICMP echo and timestamp as root, \
             connect() to 80 and 443); only -Pn (skip it) is taken"
        ));
    }
    if args.os_detection {
        return Some(
            "-O (OS detection): not supported; the nearest is the TTL and hop distance in \
             each port's evidence (--explain)"
                .into(),
        );
    }
    if args.aggressive {
        return Some(
            "-A (OS and version detection, scripts, traceroute): not supported; the nearest \
             is --ladder --explain (who answered each port, and how)"
                .into(),
        );
    }
    None
}

/// What a scan's pace comes to after -T, the explicit flags and --min-rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    pub parallelism: u32,
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub max_rate: Option<f64>,
}

/// nmap's -T0…-T5 on synack's knobs (the table in `synack scan --help`).
pub fn template(level: u8) -> Timing {
    let t = |parallelism, timeout, retries, max_rate| Timing {
        parallelism,
        timeout,
        retries,
        max_rate,
    };
    match level {
        0 => t(1, None, 1, Some(1.0 / 300.0)),
        1 => t(1, None, 1, Some(1.0 / 15.0)),
        2 => t(1, None, 1, Some(2.5)),
        4 => t(1024, None, 1, None),
        5 => t(2048, Some(Duration::from_millis(300)), 0, None),
        _ => t(512, None, 1, None),
    }
}

/// The template (T3 when none), with every explicit flag winning; --min-rate widens the
/// window. An error names the values that contradict each other.
pub fn timing(args: &ScanArgs) -> Result<Timing, String> {
    let mut t = template(args.timing.unwrap_or(3));
    if let Some(p) = args.parallelism {
        t.parallelism = p;
    }
    if args.timeout.is_some() {
        t.timeout = args.timeout;
    }
    if let Some(r) = args.retries {
        t.retries = r;
    }
    if args.max_rate.is_some() {
        t.max_rate = args.max_rate;
    }
    if let Some(min) = args.min_rate {
        if let Some(max) = t.max_rate
            && min > max
        {
            return Err(format!(
                "--min-rate {min} is above the maximum rate {max} (--max-rate or -T)"
            ));
        }
        // Attempts leave as slots free up: at worst one per timeout per slot.
        let per_slot = t.timeout.unwrap_or(INITIAL_TIMEOUT).as_secs_f64();
        let needed = (min * per_slot).ceil().min(65_535.0) as u32;
        t.parallelism = t.parallelism.max(needed);
    }
    Ok(t)
}
