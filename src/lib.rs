//! synack: TCP connect scans whose verdicts carry the packets that explain them.
//!
//! Pure core: [`decode`] (frame → observation), [`exchange`] (observations → per-attempt
//! exchanges), [`verdict`] (exchanges → state, reason, responder, evidence).
//! I/O at the edges: [`live`] (connect() prober + AF_PACKET capture), [`capfile`] (pcap and
//! pcapng files), [`report`] (text and JSON sinks), [`cli`].

pub mod capfile;
pub mod cli;
pub mod decode;
pub mod demo;
pub mod exchange;
pub mod frame;
pub mod lab;
pub mod live;
pub mod replay;
pub mod report;
pub mod signals;
pub mod targets;
#[doc(hidden)]
pub mod testpkt;
pub mod verdict;
