//! Writes a pcap of N SYN → RST/ACK exchanges to distinct (target, port) pairs on
//! standard output, for the replay benchmark (scripts/bench-replay.sh): targets
//! 198.18.2.1, .2, … each with ports 1–65535 in turn, RATE exchanges per second of
//! capture time. Never sent anywhere: a file to replay.
//!
//! cargo run --release --example gen_exchanges -- 1500000 50000 > exchanges.pcap

use std::io::{BufWriter, Write};

use synack_core::capfile::PcapWriter;
use synack_core::decode::TcpFlags;
use synack_core::frame::{Frame, LinkType, Timestamp};
use synack_core::testpkt::{TcpSpec, tcp_v4};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_500_000);
    let rate: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(50_000);
    let out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let mut w = PcapWriter::new(out, LinkType::Ethernet, 0).expect("pcap header");
    let (scanner, first) = ([198, 18, 1, 1], [198, 18, 2, 1]);
    let mut syn = tcp_v4(scanner, first, TcpSpec::new(40000, 1, TcpFlags::SYN).seq(7))
        .tos(10 << 2)
        .ethernet();
    let mut rst = tcp_v4(
        first,
        scanner,
        TcpSpec::new(1, 40000, TcpFlags::RST | TcpFlags::ACK).ack(8),
    )
    .tos(10 << 2)
    .ttl(63)
    .ethernet();
    let step = 1_000_000_000 / rate.max(1);
    let mut ts = 1_700_000_000_000_000_000u64;
    for i in 0..n {
        let target = (i / 65_535) as u32;
        let port = (i % 65_535 + 1) as u16;
        let sport = (32768 + port % 28000).to_be_bytes();
        let dport = port.to_be_bytes();
        // IPv4 addresses at bytes 26..30 (source) and 30..34 (destination) of the frame;
        // TCP ports at 34..36 and 36..38.
        let dst = (0xc612_0201u32 + target).to_be_bytes();
        syn[30..34].copy_from_slice(&dst);
        syn[34..36].copy_from_slice(&sport);
        syn[36..38].copy_from_slice(&dport);
        rst[26..30].copy_from_slice(&dst);
        rst[34..36].copy_from_slice(&dport);
        rst[36..38].copy_from_slice(&sport);
        ts += step;
        for (k, data) in [&syn, &rst].into_iter().enumerate() {
            let frame = Frame {
                ts: Timestamp(ts + k as u64 * 50_000),
                link: LinkType::Ethernet,
                data,
                orig_len: data.len() as u32,
            };
            if w.write_frame(&frame).is_err() {
                return; // the reader went away
            }
        }
    }
    let _ = w.finish().and_then(|mut o| o.flush());
}
