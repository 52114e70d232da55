//! The capture: pnet's datalink channel over an AF_PACKET socket synack opens itself, so
//! it can attach the BPF program before binding and read PACKET_STATISTICS after.
//!
//! pnet opens and binds the channel; the frames are read from its socket with recvmmsg
//! ([`sys::RecvMany`]), a burst per system call, each with the kernel's timestamp
//! (SO_TIMESTAMPNS). pnet's own receiver polls before every read: two system calls a
//! frame, which were a tenth of a many-host scan's CPU on two cores.
//!
//! The socket is bound (and so capturing) when [`OpenCapture::open`] returns: the caller
//! starts probing only after that. [`OpenCapture::start`] starts the capture thread, which
//! decodes the frames and sends them to the correlator in batches.

use std::io;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use pnet_datalink::{Channel, Config, NetworkInterface};

use super::{bpf, sys};
use synack_core::capfile::PcapWriter;
use synack_core::decode::{Observation, decode};
use synack_core::frame::{Frame, LinkType, Timestamp};

/// Observations sent to the correlator at once.
pub struct Batch {
    /// Which capture sent it (its place among the run's captures).
    pub capture: usize,
    pub frames: Vec<(Timestamp, Observation)>,
    /// The socket's queue was found empty at this instant, after these frames were read:
    /// every frame the kernel had queued for this capture by then is in this batch or an
    /// earlier one. (A packet reaches the capture socket before the TCP stack sees it, so
    /// the answer that ended a connect() is in by any instant after connect() returned.)
    pub drained: Option<Instant>,
}

/// Where `-w` frames go: one pcap for all interfaces (they share a link type).
pub type SharedWriter = Arc<Mutex<PcapWriter<std::io::BufWriter<std::fs::File>>>>;

const BATCH: usize = 256;
/// Frames read per system call at most, and the room for each (loopback's MTU is 65,536).
const READ_AT_ONCE: usize = 32;
const FRAME_MAX: usize = 65536 + 64;
/// How long the capture sleeps when the socket queue is empty. The socket buffer holds
/// far more than a nap's worth of packets.
const NAP: Duration = Duration::from_micros(500);
const FLUSH_EVERY: Duration = Duration::from_millis(5);
/// While the queue stays empty, how often the correlator is told so anyway (it may be
/// waiting for a target's answers to be read).
const DRAINED_EVERY: Duration = Duration::from_millis(2);
/// After the stop signal, the queue is drained at most this long.
const DRAIN_LIMIT: Duration = Duration::from_millis(500);

#[derive(Clone, Copy, Debug, Default)]
pub struct CaptureStats {
    pub frames: u64,
    pub decoded: u64,
    /// PACKET_STATISTICS tp_drops: frames the kernel could not queue for us.
    pub drops: u64,
    pub write_errors: u64,
}

pub struct Capture {
    pub interface: String,
    pub link: LinkType,
    thread: Option<JoinHandle<CaptureStats>>,
}

/// The link header an interface's frames start with, from its ARPHRD type.
pub fn link_type_of(iface: &NetworkInterface) -> io::Result<LinkType> {
    let path = format!("/sys/class/net/{}/type", iface.name);
    let ty: u32 = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(if iface.is_loopback() { 772 } else { 1 });
    match ty {
        // ARPHRD_ETHER, ARPHRD_LOOPBACK (lo hands out zeroed Ethernet headers).
        1 | 772 => Ok(LinkType::Ethernet),
        // ARPHRD_NONE (tun), ARPHRD_RAWIP.
        65534 | 519 => Ok(LinkType::RawIp),
        other => Err(io::Error::other(format!(
            "interface {} has link type {other} (ARPHRD), which synack cannot capture on",
            iface.name
        ))),
    }
}

/// A capture socket that is open, filtered and bound (so packets queue up for it) but not
/// read yet: the scan opens its captures while it still has the privilege to, drops
/// privileges, and only then starts reading (and parsing) packets.
pub struct OpenCapture {
    pub interface: String,
    pub link: LinkType,
    fd: RawFd,
    rx: Box<dyn pnet_datalink::DataLinkReceiver>,
}

impl OpenCapture {
    /// Opens and binds the capture socket on `iface`, with the filter for `targets`.
    pub fn open(iface: &NetworkInterface, targets: &[IpAddr]) -> io::Result<OpenCapture> {
        let link = link_type_of(iface)?;
        let fd = sys::packet_socket()?;
        let prog = bpf::program(iface.is_loopback(), targets);
        if let Err(e) = sys::attach_filter(fd, &prog) {
            // SAFETY: fd is ours and not yet handed to pnet.
            unsafe { libc::close(fd) };
            return Err(e);
        }
        sys::set_rcvbuf(fd, 32 << 20);
        // Without kernel timestamps, frames are stamped when read.
        let _ = sys::set_timestamps(fd);
        let config = Config {
            // Never block in pnet's poll(): an empty queue returns at once and the loop
            // naps instead, so packets are read in bursts rather than one wake-up each.
            read_timeout: Some(Duration::ZERO),
            read_buffer_size: 65536 + 64,
            promiscuous: false,
            socket_fd: Some(fd),
            ..Config::default()
        };
        // pnet binds the socket to the interface (and closes fd on failure).
        let rx = match pnet_datalink::channel(iface, config)? {
            Channel::Ethernet(_, rx) => rx,
            _ => return Err(io::Error::other("pnet returned an unknown channel type")),
        };
        // Counters start now: reading them resets them.
        let _ = sys::packet_stats(fd);
        Ok(OpenCapture {
            interface: iface.name.clone(),
            link,
            fd,
            rx,
        })
    }

    /// Starts the thread that reads, decodes and batches the frames.
    pub fn start(
        self,
        index: usize,
        tx: Sender<Batch>,
        stop: Arc<AtomicBool>,
        writer: Option<SharedWriter>,
    ) -> io::Result<Capture> {
        let OpenCapture {
            interface,
            link,
            fd,
            rx,
        } = self;
        let thread = std::thread::Builder::new()
            .name(format!("capture-{interface}"))
            .spawn(move || capture_loop(rx, link, fd, (index, tx), stop, writer))?;
        Ok(Capture {
            interface,
            link,
            thread: Some(thread),
        })
    }
}

impl Capture {
    /// Waits for the thread (after the stop flag was set) and returns its counters.
    pub fn join(mut self) -> CaptureStats {
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

fn capture_loop(
    rx: Box<dyn pnet_datalink::DataLinkReceiver>,
    link: LinkType,
    fd: RawFd,
    (capture, tx): (usize, Sender<Batch>),
    stop: Arc<AtomicBool>,
    writer: Option<SharedWriter>,
) -> CaptureStats {
    let mut stats = CaptureStats::default();
    let mut batch = Vec::with_capacity(BATCH);
    let send = |frames, drained| {
        tx.send(Batch {
            capture,
            frames,
            drained,
        })
        .is_ok()
    };
    let mut last_flush = Instant::now();
    let mut stop_seen: Option<Instant> = None;
    // pnet bound the socket and owns the descriptor (its receiver closes it when dropped,
    // after this loop); the frames are read here, a burst per system call.
    let mut frames = sys::RecvMany::new(READ_AT_ONCE, FRAME_MAX);
    loop {
        match frames.recv(fd) {
            Ok(0) => {
                // The queue is empty: after the stop signal, that is the end.
                if stop.load(Ordering::Acquire) {
                    break;
                }
                let now = Instant::now();
                if !batch.is_empty() || now.duration_since(last_flush) >= DRAINED_EVERY {
                    if !send(std::mem::take(&mut batch), Some(now)) {
                        break;
                    }
                    last_flush = now;
                }
                std::thread::sleep(NAP);
            }
            Ok(n) => {
                let read_at = Timestamp::now();
                for i in 0..n {
                    let (data, stamped) = frames.frame(i);
                    // The kernel's timestamp (when the frame passed the interface), else
                    // when it was read.
                    let ts = stamped.map(Timestamp).unwrap_or(read_at);
                    stats.frames += 1;
                    let frame = Frame {
                        ts,
                        link,
                        data,
                        orig_len: data.len() as u32,
                    };
                    if let Some(w) = &writer
                        && !matches!(w.lock().map(|mut w| w.write_frame(&frame)), Ok(Ok(())))
                    {
                        stats.write_errors += 1;
                    }
                    if let Ok(obs) = decode(&frame) {
                        stats.decoded += 1;
                        batch.push((ts, obs));
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
        if batch.len() >= BATCH || (!batch.is_empty() && last_flush.elapsed() >= FLUSH_EVERY) {
            if !send(std::mem::take(&mut batch), None) {
                break;
            }
            batch.reserve(BATCH);
            last_flush = Instant::now();
        }
        if stop.load(Ordering::Acquire) {
            let since = *stop_seen.get_or_insert_with(Instant::now);
            if since.elapsed() > DRAIN_LIMIT {
                break;
            }
        }
    }
    if !batch.is_empty() {
        send(batch, None);
    }
    if let Ok((_, drops)) = sys::packet_stats(fd) {
        stats.drops += drops;
    }
    // Closes the socket.
    drop(rx);
    stats
}
