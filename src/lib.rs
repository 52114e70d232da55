//! synack's engine edges: the live scan (connect() probers + AF_PACKET capture), replay
//! of capture files, and the report sinks. The pure core (decode, exchange, verdict,
//! capture files, targets) is the `synack-core` crate; the command line and `synack demo`
//! live in the binary (src/main.rs); `privilege` checks and drops root / CAP_NET_RAW.

pub mod alloc;
pub mod filter;
pub mod finish;
pub mod live;
pub mod privilege;
pub mod replay;
pub mod report;
pub mod signals;
