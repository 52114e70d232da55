//! The few libc calls the live scan needs, each wrapped once. All of synack's `unsafe`
//! for sockets lives here.

use std::io;
use std::mem;
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::bpf::Insn;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A socket address in the C layout, for connect() and friends.
pub struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl RawAddr {
    pub fn new(addr: SocketAddr) -> RawAddr {
        // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
        let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
        let len = match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
                unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
                mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in6.
                unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
                mem::size_of::<libc::sockaddr_in6>()
            }
        };
        RawAddr {
            storage,
            len: len as libc::socklen_t,
        }
    }

    fn to_socket_addr(&self) -> Option<SocketAddr> {
        match self.storage.ss_family as libc::c_int {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let sin = unsafe { &*(&self.storage as *const _ as *const libc::sockaddr_in) };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    u32::from_be(sin.sin_addr.s_addr).into(),
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let sin6 = unsafe { &*(&self.storage as *const _ as *const libc::sockaddr_in6) };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    sin6.sin6_addr.s6_addr.into(),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

/// A nonblocking, close-on-exec TCP socket.
pub fn tcp_socket(v6: bool) -> io::Result<OwnedFd> {
    let domain = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    // SAFETY: socket() has no memory arguments; the result is checked.
    let fd = cvt(unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    // SAFETY: fd is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: value points to a T that lives for the call; its size is passed.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            value as *const T as *const libc::c_void,
            mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// Marks outgoing packets with a DSCP (IP_TOS / IPV6_TCLASS).
pub fn set_dscp(fd: &OwnedFd, v6: bool, dscp: u8) -> io::Result<()> {
    let tos: libc::c_int = (dscp as libc::c_int) << 2;
    if v6 {
        setsockopt(fd.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_TCLASS, &tos)
    } else {
        setsockopt(fd.as_raw_fd(), libc::IPPROTO_IP, libc::IP_TOS, &tos)
    }
}

/// close() sends RST instead of FIN and leaves no TIME_WAIT behind (SO_LINGER 0), so a
/// full-range scan does not exhaust the ephemeral ports.
pub fn set_linger_zero(fd: &OwnedFd) -> io::Result<()> {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_LINGER, &l)
}

/// Nonblocking connect: Ok(true) connected at once, Ok(false) in progress.
pub fn connect(fd: &OwnedFd, addr: &RawAddr) -> io::Result<bool> {
    // SAFETY: addr.storage holds a valid sockaddr of addr.len bytes.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            &addr.storage as *const _ as *const libc::sockaddr,
            addr.len,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINPROGRESS) {
        Ok(false)
    } else {
        Err(e)
    }
}

pub fn local_addr(fd: &OwnedFd) -> io::Result<SocketAddr> {
    // SAFETY: zeroed sockaddr_storage is valid; getsockname writes at most len bytes.
    let mut raw = RawAddr {
        storage: unsafe { mem::zeroed() },
        len: mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
    };
    cvt(unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            &mut raw.storage as *mut _ as *mut libc::sockaddr,
            &mut raw.len,
        )
    })?;
    raw.to_socket_addr()
        .ok_or_else(|| io::Error::other("getsockname: not an IP socket"))
}

/// SO_ERROR: the outcome of a nonblocking connect (0 = connected).
pub fn take_error(fd: &OwnedFd) -> io::Result<i32> {
    let mut err: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: err and len are valid for writes of their sizes.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut _ as *mut libc::c_void,
            &mut len,
        )
    })?;
    Ok(err)
}

pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: no memory arguments; result checked.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: fresh descriptor we own.
        Ok(Epoll {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Watches `fd` for connect completion (writable or error), tagged with `token`.
    pub fn add(&self, fd: &OwnedFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLOUT | libc::EPOLLERR | libc::EPOLLHUP) as u32,
            u64: token,
        };
        // SAFETY: ev is valid for the call.
        cvt(unsafe {
            libc::epoll_ctl(
                self.fd.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &mut ev,
            )
        })
        .map(|_| ())
    }

    /// Waits up to `timeout_ms`; returns the tokens of ready sockets.
    pub fn wait(&self, events: &mut Vec<libc::epoll_event>, timeout_ms: i32) -> io::Result<usize> {
        let cap = events.capacity().max(1);
        events.clear();
        // SAFETY: the buffer has room for `cap` events; the kernel writes at most that many
        // and returns how many, which becomes the length.
        let n = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                events.as_mut_ptr(),
                cap as i32,
                timeout_ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(e);
        }
        // SAFETY: the kernel initialised the first n entries.
        unsafe { events.set_len(n as usize) };
        Ok(n as usize)
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
pub fn raise_nofile_limit() -> u64 {
    // SAFETY: rlimit is plain data; getrlimit/setrlimit write/read only it.
    unsafe {
        let mut rl: libc::rlimit = mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return 1024;
        }
        if rl.rlim_cur < rl.rlim_max {
            let want = libc::rlimit {
                rlim_cur: rl.rlim_max,
                rlim_max: rl.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
        rl.rlim_cur
    }
}

/// An AF_PACKET socket that receives nothing until bound (protocol 0), so the filter is
/// in place before the first packet is queued.
pub fn packet_socket() -> io::Result<RawFd> {
    // SAFETY: no memory arguments; result checked. The caller hands the descriptor to
    // pnet, which takes ownership and closes it.
    cvt(unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })
}

/// SO_ATTACH_FILTER: the classic BPF program runs on every packet before it is queued.
pub fn attach_filter(fd: RawFd, prog: &[Insn]) -> io::Result<()> {
    let len = u16::try_from(prog.len())
        .map_err(|_| io::Error::other("BPF program longer than 65,535 instructions"))?;
    let fprog = libc::sock_fprog {
        len,
        // The kernel copies the program and never writes through this pointer.
        filter: prog.as_ptr().cast_mut(),
    };
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
}

/// A large receive buffer so bursts (65,535 RSTs in a second) are not dropped. As root
/// SO_RCVBUFFORCE passes net.core.rmem_max; otherwise SO_RCVBUF is capped by it.
pub fn set_rcvbuf(fd: RawFd, bytes: i32) {
    if setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &bytes).is_err() {
        let _ = setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &bytes);
    }
}

/// SO_TIMESTAMPNS: the kernel stamps each frame with when it saw it (CLOCK_REALTIME, as
/// pcap files store), read back by [`RecvMany`].
pub fn set_timestamps(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &on)
}

/// Frames read from a packet socket many at a time (recvmmsg), each with the kernel's
/// timestamp when there is one. pnet's receiver polls before every read: two system calls
/// a frame, a tenth of a many-host scan's CPU; this is one call per burst.
pub struct RecvMany {
    slot_len: usize,
    bufs: Vec<u8>,
    /// One control buffer per slot, 8-byte aligned (it holds `cmsghdr`s).
    cmsgs: Vec<u64>,
    iov: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
}

/// A control buffer's size in 8-byte words: room for one SCM_TIMESTAMPNS.
const CMSG_WORDS: usize = 8;

impl RecvMany {
    pub fn new(slots: usize, slot_len: usize) -> Self {
        RecvMany {
            slot_len,
            bufs: vec![0; slots * slot_len],
            cmsgs: vec![0; slots * CMSG_WORDS],
            // SAFETY (both): all-zero iovec and mmsghdr are valid (null pointers, zero
            // lengths); `recv` fills them in before each call.
            iov: vec![unsafe { mem::zeroed() }; slots],
            msgs: vec![unsafe { mem::zeroed() }; slots],
        }
    }

    /// Reads the frames queued on `fd` without waiting, up to one per slot. Returns how
    /// many (0: the queue is empty); [`RecvMany::frame`] gives each.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let slots = self.msgs.len();
        let (bufs, cmsgs) = (self.bufs.as_mut_ptr(), self.cmsgs.as_mut_ptr());
        for i in 0..slots {
            // SAFETY: i < slots, so both offsets stay inside their vectors.
            self.iov[i] = libc::iovec {
                iov_base: unsafe { bufs.add(i * self.slot_len) }.cast(),
                iov_len: self.slot_len,
            };
            let hdr = &mut self.msgs[i].msg_hdr;
            hdr.msg_name = std::ptr::null_mut();
            hdr.msg_namelen = 0;
            // SAFETY: as above.
            hdr.msg_iov = unsafe { self.iov.as_mut_ptr().add(i) };
            hdr.msg_iovlen = 1;
            // SAFETY: as above.
            hdr.msg_control = unsafe { cmsgs.add(i * CMSG_WORDS) }.cast();
            hdr.msg_controllen = CMSG_WORDS * 8;
            hdr.msg_flags = 0;
            self.msgs[i].msg_len = 0;
        }
        // SAFETY: every header points at live buffers of the lengths it gives (set just
        // above from vectors this struct owns and does not touch during the call).
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.msgs.as_mut_ptr(),
                slots as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) => Ok(0),
                _ => Err(e),
            };
        }
        Ok(n as usize)
    }

    /// Frame `i` of the last [`RecvMany::recv`] (cut to the slot if it was longer), with
    /// its kernel timestamp in nanoseconds since the epoch when the kernel gave one.
    pub fn frame(&self, i: usize) -> (&[u8], Option<u64>) {
        let len = (self.msgs[i].msg_len as usize).min(self.slot_len);
        let data = &self.bufs[i * self.slot_len..i * self.slot_len + len];
        let hdr = &self.msgs[i].msg_hdr;
        let mut ts = None;
        // SAFETY: the kernel wrote msg_controllen bytes of cmsghdrs into this slot's
        // control buffer; CMSG_FIRSTHDR/NXTHDR stay within it, and a timestamp's data is
        // read unaligned.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(hdr);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                    let t: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    ts = u64::try_from(t.tv_sec)
                        .ok()
                        .and_then(|s| s.checked_mul(1_000_000_000))
                        .and_then(|s| s.checked_add(t.tv_nsec as u64));
                }
                c = libc::CMSG_NXTHDR(hdr, c);
            }
        }
        (data, ts)
    }
}

/// PACKET_STATISTICS: (packets, drops) since the last call (the kernel resets them).
pub fn packet_stats(fd: RawFd) -> io::Result<(u64, u64)> {
    let mut st = libc::tpacket_stats {
        tp_packets: 0,
        tp_drops: 0,
    };
    let mut len = mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: st and len are valid for writes of their sizes.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            &mut st as *mut _ as *mut libc::c_void,
            &mut len,
        )
    })?;
    Ok((st.tp_packets as u64, st.tp_drops as u64))
}

/// Whether `addr` is one of this host's addresses (then traffic to it goes over `lo`).
pub fn is_local(addr: IpAddr, interfaces: &[pnet_datalink::NetworkInterface]) -> bool {
    addr.is_loopback()
        || interfaces
            .iter()
            .any(|i| i.ips.iter().any(|n| n.ip() == addr))
}

/// A nonblocking ICMP (or ICMPv6) socket for host discovery: `raw` (SOCK_RAW, needs
/// CAP_NET_RAW: any ICMP message can be sent, every ICMP message arriving is read) or a
/// datagram "ping" socket (SOCK_DGRAM, for the groups net.ipv4.ping_group_range allows:
/// echo only, and the kernel sets the identifier and checksum).
pub fn icmp_socket(v6: bool, raw: bool) -> io::Result<OwnedFd> {
    let (domain, proto) = if v6 {
        (libc::AF_INET6, libc::IPPROTO_ICMPV6)
    } else {
        (libc::AF_INET, libc::IPPROTO_ICMP)
    };
    let ty = if raw {
        libc::SOCK_RAW
    } else {
        libc::SOCK_DGRAM
    };
    // SAFETY: socket() has no memory arguments; the result is checked.
    let fd =
        cvt(unsafe { libc::socket(domain, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, proto) })?;
    // SAFETY: fd is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// sendto() of one datagram to `to` (port 0 for ICMP).
pub fn send_to(fd: &OwnedFd, buf: &[u8], to: IpAddr) -> io::Result<usize> {
    let addr = RawAddr::new(SocketAddr::new(to, 0));
    // SAFETY: buf is valid for reads of its length; addr holds a valid sockaddr.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            buf.as_ptr() as *const libc::c_void,
            buf.len(),
            0,
            &addr.storage as *const _ as *const libc::sockaddr,
            addr.len,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Nonblocking recvfrom(): the datagram's length and sender, or None when nothing is
/// queued.
pub fn recv_from(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<Option<(usize, IpAddr)>> {
    // SAFETY: zeroed sockaddr_storage is valid; recvfrom writes at most len bytes to it.
    let mut raw = RawAddr {
        storage: unsafe { mem::zeroed() },
        len: mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
    };
    // SAFETY: buf is valid for writes of its length.
    let n = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
            libc::MSG_DONTWAIT,
            &mut raw.storage as *mut _ as *mut libc::sockaddr,
            &mut raw.len,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
            _ => Err(e),
        };
    }
    let from = raw
        .to_socket_addr()
        .ok_or_else(|| io::Error::other("recvfrom: not an IP address"))?;
    Ok(Some((n as usize, from.ip())))
}

/// Asks the kernel to queue the ICMP errors that end a connection attempt on the socket's
/// error queue (IP_RECVERR / IPV6_RECVERR): the errno of a refused connect() is the same
/// for a RST and an ICMP port-unreachable, the queue says which it was and who sent it.
/// Needs no privilege.
pub fn set_recverr(fd: &OwnedFd, v6: bool) -> io::Result<()> {
    let on: libc::c_int = 1;
    if v6 {
        setsockopt(fd.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_RECVERR, &on)
    } else {
        setsockopt(fd.as_raw_fd(), libc::IPPROTO_IP, libc::IP_RECVERR, &on)
    }
}

/// An ICMP error read from a socket's error queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuedIcmp {
    pub v6: bool,
    pub icmp_type: u8,
    pub code: u8,
    /// The error's sender (SO_EE_OFFENDER): a router, the target, or this host's own
    /// address when its own stack gave up (no ARP/ND reply).
    pub from: IpAddr,
}

/// The first ICMP error on the socket's error queue (see [`set_recverr`]), if any.
pub fn queued_icmp(fd: &OwnedFd) -> Option<QueuedIcmp> {
    let mut data = [0u8; 64];
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain old data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = mem::size_of_val(&control) as _;
    // SAFETY: msg points to the iovec and control buffer above, valid for the call.
    let r = unsafe {
        libc::recvmsg(
            fd.as_raw_fd(),
            &mut msg,
            libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
        )
    };
    if r < 0 {
        return None;
    }
    // SAFETY: the CMSG macros walk the control buffer recvmsg filled, within
    // msg_controllen; each header's length is checked before its data is read.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let (level, ty) = ((*c).cmsg_level, (*c).cmsg_type);
            let is_err = (level == libc::IPPROTO_IP && ty == libc::IP_RECVERR)
                || (level == libc::IPPROTO_IPV6 && ty == libc::IPV6_RECVERR);
            let ee_len = mem::size_of::<libc::sock_extended_err>();
            let have = (*c).cmsg_len as usize - (libc::CMSG_DATA(c) as usize - c as usize);
            if is_err && have >= ee_len {
                let p = libc::CMSG_DATA(c);
                let ee: libc::sock_extended_err = std::ptr::read_unaligned(p as *const _);
                let v6 = match ee.ee_origin {
                    libc::SO_EE_ORIGIN_ICMP => false,
                    libc::SO_EE_ORIGIN_ICMP6 => true,
                    _ => return None,
                };
                // SO_EE_OFFENDER: the sockaddr right after the extended error.
                let mut raw = RawAddr {
                    storage: mem::zeroed(),
                    len: 0,
                };
                let off = have - ee_len;
                let n = off.min(mem::size_of::<libc::sockaddr_storage>());
                std::ptr::copy_nonoverlapping(
                    p.add(ee_len),
                    &mut raw.storage as *mut _ as *mut u8,
                    n,
                );
                raw.len = n as libc::socklen_t;
                let from = raw.to_socket_addr()?.ip();
                return Some(QueuedIcmp {
                    v6,
                    icmp_type: ee.ee_type,
                    code: ee.ee_code,
                    from,
                });
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    None
}

/// Netlink message and attribute layout (rtnetlink(7)).
mod nl {
    pub const HDR_LEN: usize = 16;
    pub const NDMSG_LEN: usize = 12;
    pub const NLMSG_DONE: u16 = 3;
    pub const NLMSG_ERROR: u16 = 2;
    pub const NLM_F_REQUEST: u16 = 1;
    pub const NLM_F_DUMP: u16 = 0x300;
    pub fn align(n: usize) -> usize {
        (n + 3) & !3
    }
}

/// The neighbour table (ARP for IPv4, ND for IPv6) of one family: each address with its
/// NUD state (NUD_INCOMPLETE while the kernel still asks, NUD_FAILED once it gave up).
/// An rtnetlink dump, readable without privilege; bounded to 4 MiB of answers.
pub fn neighbours(v6: bool) -> io::Result<Vec<(IpAddr, u16)>> {
    // SAFETY: socket() has no memory arguments; the result is checked.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    })?;
    // SAFETY: fd is a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = [0u8; nl::HDR_LEN + nl::NDMSG_LEN];
    let req_len = req.len() as u32;
    req[0..4].copy_from_slice(&req_len.to_ne_bytes());
    req[4..6].copy_from_slice(&libc::RTM_GETNEIGH.to_ne_bytes());
    req[6..8].copy_from_slice(&(nl::NLM_F_REQUEST | nl::NLM_F_DUMP).to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    req[nl::HDR_LEN] = if v6 { libc::AF_INET6 } else { libc::AF_INET } as u8;
    // SAFETY: req is valid for reads of its length; the kernel is the default address.
    cvt(unsafe {
        libc::send(
            fd.as_raw_fd(),
            req.as_ptr() as *const libc::c_void,
            req.len(),
            0,
        )
    } as libc::c_int)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    let mut total = 0usize;
    while total < 4 << 20 {
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n == 0 {
            break;
        }
        total += n;
        if parse_neighbours(&buf[..n], v6, &mut out) {
            return Ok(out);
        }
    }
    Ok(out)
}

/// Parses one datagram of an RTM_GETNEIGH dump into `out`; true at the dump's end.
fn parse_neighbours(mut b: &[u8], v6: bool, out: &mut Vec<(IpAddr, u16)>) -> bool {
    let u16_at = |b: &[u8], i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
    while b.len() >= nl::HDR_LEN {
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len < nl::HDR_LEN || len > b.len() {
            return true;
        }
        let ty = u16_at(b, 4);
        if ty == nl::NLMSG_DONE || ty == nl::NLMSG_ERROR {
            return true;
        }
        if ty == libc::RTM_NEWNEIGH && len >= nl::HDR_LEN + nl::NDMSG_LEN {
            let m = &b[nl::HDR_LEN..len];
            let state = u16_at(m, 8);
            let mut attrs = &m[nl::NDMSG_LEN..];
            while attrs.len() >= 4 {
                let alen = u16_at(attrs, 0) as usize;
                if alen < 4 || alen > attrs.len() {
                    break;
                }
                if u16_at(attrs, 2) == libc::NDA_DST {
                    let v = &attrs[4..alen];
                    let ip = match (v6, v.len()) {
                        (false, 4) => Some(IpAddr::from(<[u8; 4]>::try_from(v).expect("4"))),
                        (true, 16) => Some(IpAddr::from(<[u8; 16]>::try_from(v).expect("16"))),
                        _ => None,
                    };
                    out.extend(ip.map(|ip| (ip, state)));
                }
                attrs = &attrs[nl::align(alen).min(attrs.len())..];
            }
        }
        b = &b[nl::align(len).min(b.len())..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    /// Datagrams queued on a socket come out of one `recv` in order, each with the
    /// kernel's timestamp, cut to the slot when longer; an empty queue reads as 0.
    #[test]
    fn recv_many_reads_a_burst_with_timestamps() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        set_timestamps(rx.as_raw_fd()).unwrap();
        let before = now_ns();
        let sizes = [10usize, 64, 300, 1];
        for (i, n) in sizes.iter().enumerate() {
            tx.send_to(&vec![i as u8; *n], rx.local_addr().unwrap())
                .unwrap();
        }
        let mut frames = RecvMany::new(8, 100);
        // Loopback delivers at once, but allow the queue a moment.
        let mut got = 0;
        for _ in 0..100 {
            got = frames.recv(rx.as_raw_fd()).unwrap();
            if got > 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(got, sizes.len(), "one call reads every queued datagram");
        for (i, n) in sizes.iter().enumerate() {
            let (data, ts) = frames.frame(i);
            assert_eq!(data.len(), (*n).min(100));
            assert!(data.iter().all(|b| *b == i as u8));
            let ts = ts.expect("SO_TIMESTAMPNS gives each datagram a timestamp");
            assert!(
                ts >= before && ts <= now_ns(),
                "timestamp {ts} within the test"
            );
        }
        assert_eq!(frames.recv(rx.as_raw_fd()).unwrap(), 0, "empty queue");
    }

    fn now_ns() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    }
}
