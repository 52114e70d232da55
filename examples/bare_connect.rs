//! The baseline for scripts/bench-scan.sh: the plainest nonblocking connect() loop over a
//! port range — epoll, a fixed window, SO_ERROR, close — with no capture, no
//! getsockname, no DSCP, no retries. Like synack's prober, it checks SO_ERROR right after
//! connect() so an answer already there skips the epoll round trip. It prints how many ports connected, were refused,
//! or timed out.
//!
//! usage: bare_connect ADDRESS FIRST_PORT LAST_PORT [WINDOW] [TIMEOUT_MS]

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use synack::live::sys;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: bare_connect ADDRESS FIRST_PORT LAST_PORT [WINDOW] [TIMEOUT_MS]");
        std::process::exit(2);
    }
    let ip: IpAddr = args[1].parse().expect("address");
    let first: u16 = args[2].parse().expect("first port");
    let last: u16 = args[3].parse().expect("last port");
    let window: usize = args
        .get(4)
        .map(|s| s.parse().expect("window"))
        .unwrap_or(512);
    let timeout =
        Duration::from_millis(args.get(5).map(|s| s.parse().expect("ms")).unwrap_or(1000));
    sys::raise_nofile_limit();
    let epoll = sys::Epoll::new().expect("epoll");
    let mut slots: Vec<Option<(std::os::fd::OwnedFd, Instant)>> =
        (0..window).map(|_| None).collect();
    let mut free: Vec<usize> = (0..window).rev().collect();
    let mut order: VecDeque<(usize, Instant)> = VecDeque::new();
    let mut next = first as u32;
    let (mut open, mut refused, mut timed_out, mut other) = (0u32, 0u32, 0u32, 0u32);
    let mut events = Vec::with_capacity(1024);
    let began = Instant::now();
    loop {
        while let Some(slot) = free.pop() {
            if next > last as u32 {
                free.push(slot);
                break;
            }
            let addr = sys::RawAddr::new(SocketAddr::new(ip, next as u16));
            next += 1;
            let fd = sys::tcp_socket(ip.is_ipv6()).expect("socket");
            match sys::connect(&fd, &addr) {
                Ok(true) => {
                    open += 1;
                    free.push(slot);
                }
                // Like synack's prober: an answer already there ends the attempt.
                Ok(false) if matches!(sys::take_error(&fd), Ok(e) if e != 0) => {
                    refused += 1;
                    free.push(slot);
                }
                Ok(false) => {
                    epoll.add(&fd, slot as u64).expect("epoll_ctl");
                    let now = Instant::now();
                    slots[slot] = Some((fd, now));
                    order.push_back((slot, now));
                }
                Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                    refused += 1;
                    free.push(slot);
                }
                Err(_) => {
                    other += 1;
                    free.push(slot);
                }
            }
        }
        if free.len() == window && next > last as u32 {
            break;
        }
        epoll.wait(&mut events, 10).expect("epoll_wait");
        for ev in events.iter() {
            let slot = ev.u64 as usize;
            if let Some((fd, _)) = slots[slot].take() {
                match sys::take_error(&fd) {
                    Ok(0) => open += 1,
                    Ok(libc::ECONNREFUSED) => refused += 1,
                    _ => other += 1,
                }
                free.push(slot);
            }
        }
        let now = Instant::now();
        while let Some(&(slot, started)) = order.front() {
            if slots[slot].as_ref().map(|(_, s)| *s) != Some(started) {
                order.pop_front();
                continue;
            }
            if started + timeout > now {
                break;
            }
            order.pop_front();
            slots[slot] = None;
            timed_out += 1;
            free.push(slot);
        }
    }
    println!(
        "bare_connect: {} ports in {:.3}s: {open} open, {refused} refused, {timed_out} timed out, {other} other",
        last as u32 - first as u32 + 1,
        began.elapsed().as_secs_f64()
    );
}
