//! A captured link-layer frame: the unit that both sources (live capture and capture files)
//! hand to the pure pipeline.

/// Capture time, in nanoseconds since the Unix epoch.
///
/// A newtype so time offsets and absolute times are not mixed up; all pipeline stages take
/// time as an argument and never read a clock themselves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub fn from_micros(us: u64) -> Self {
        Timestamp(us.saturating_mul(1_000))
    }
    pub fn nanos(self) -> u64 {
        self.0
    }
    /// Nanoseconds from `earlier` to `self`, zero when `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_nanos().min(u64::MAX as u128) as u64)
    }
}

/// The link-layer header a frame starts with, as pcap's LINKTYPE_* values name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// LINKTYPE_ETHERNET (1); also what Linux `lo` hands an AF_PACKET socket.
    Ethernet,
    /// LINKTYPE_LINUX_SLL (113), "Linux cooked capture" v1.
    LinuxSll,
    /// LINKTYPE_LINUX_SLL2 (276), what `tcpdump -i any` writes.
    LinuxSll2,
    /// LINKTYPE_RAW (101): the frame starts with an IPv4 or IPv6 header.
    RawIp,
    /// LINKTYPE_IPV4 (228).
    Ipv4,
    /// LINKTYPE_IPV6 (229).
    Ipv6,
    /// LINKTYPE_NULL (0): BSD loopback, a 4-byte address family in the writer's byte order.
    Null,
    /// LINKTYPE_LOOP (108): OpenBSD loopback, a 4-byte address family in network order.
    Loop,
}

impl LinkType {
    /// The pcap LINKTYPE_* number.
    pub fn to_pcap(self) -> u32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::RawIp => 101,
            LinkType::Loop => 108,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll2 => 276,
        }
    }

    /// Maps a pcap LINKTYPE_* (or the DLT_RAW aliases 12 and 14) to a link type synack decodes.
    pub fn from_pcap(value: u32) -> Option<LinkType> {
        Some(match value {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::RawIp,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            _ => return None,
        })
    }
}

/// One captured frame, borrowed from the source's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub ts: Timestamp,
    pub link: LinkType,
    /// The bytes as captured (possibly cut by the snap length).
    pub data: &'a [u8],
    /// The frame's length on the wire (>= data.len() when cut by snaplen).
    pub orig_len: u32,
}
