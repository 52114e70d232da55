//! synack's pure core: a frame in, a verdict out, with no I/O but capture files and no
//! clock (time is an argument).
//!
//! [`decode`] (frame → observation), [`exchange`] (observations → per-attempt
//! exchanges), [`verdict`] (exchanges → state, reason, responder, typed evidence),
//! [`capfile`] (pcap and pcapng files), [`targets`] (target and port specifications),
//! [`services`] (nmap's top 1,000 TCP ports, generated), [`shard`] (`--shard I/N`).
//! Words for people are the report's business (the `synack` crate): nothing here
//! formats a sentence.

pub mod capfile;
pub mod decode;
pub mod exchange;
pub mod frame;
pub mod services;
pub mod shard;
pub mod stream;
pub mod targets;
#[cfg(any(test, feature = "testpkt"))]
pub mod testpkt;
pub mod verdict;
