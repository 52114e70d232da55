//! Target and port specifications: what the user typed → addresses and ports to scan.
//!
//! Everything here is pure except hostname resolution, which goes through the
//! [`Resolver`] trait so tests never touch DNS ([`SystemResolver`] is the real one).
//!
//! Port syntax follows nmap's `-p`: `22,80`, `1-1024`, `-` (all of 1-65535), `-100`
//! (1-100), `60000-` (60000-65535), service names (`ssh,http`: every TCP port nmap-services
//! gives that name), a `T:` prefix (TCP, what synack scans), and combinations;
//! `U:` and `S:` (UDP, SCTP) are refused, naming why. Target syntax: IPv4 and IPv6
//! literals (IPv6 optionally in brackets), hostnames, and CIDR blocks of at most
//! [`MAX_CIDR_ADDRESSES`] addresses. nmap's octet ranges (`198.18.0.1-5`) are not
//! supported; a CIDR block covers the same need.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};

/// Most addresses one CIDR block may expand to: a /16 for IPv4, a /112 for IPv6.
///
/// Every address becomes a target held in memory and probed on every port, so a typo
/// such as `/8` for `/28` would otherwise start a scan of 16 million hosts. 65536 is
/// large enough for any lab network; bigger ranges can be given as several blocks.
pub const MAX_CIDR_ADDRESSES: u128 = 1 << 16;

/// One scan target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The address probed.
    pub addr: IpAddr,
    /// The hostname the user typed, when the address was resolved from one.
    pub name: Option<String>,
}

impl Target {
    /// The address as the user would write it: `198.18.2.1`, `2001:db8:2::1` (IPv6
    /// without brackets).
    pub fn display(&self) -> String {
        self.addr.to_string()
    }
}

/// A target or port specification that cannot be used. `Display` is one line that
/// names the offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecError {
    /// A number outside 1-65535 in a port list (`port` as typed, `spec` the whole list).
    PortOutOfRange { port: String, spec: String },
    /// An item of a port list that is neither a port, a range nor `-`.
    BadPortItem { item: String, spec: String },
    /// An empty item between commas (`22,,80`, `22,`).
    EmptyPortItem { spec: String },
    /// A range whose start exceeds its end (`90-80`).
    ReversedPortRange { range: String },
    /// A port list with nothing in it.
    EmptyPortList,
    /// A hostname the resolver could not turn into an address; `reason` is the
    /// resolver's explanation (may be empty).
    UnknownHost { host: String, reason: String },
    /// A target that is neither an address, a CIDR block nor a hostname.
    InvalidTarget { target: String, reason: String },
    /// A CIDR block with a malformed address or prefix length.
    InvalidCidr { block: String, reason: String },
    /// A CIDR block of more than [`MAX_CIDR_ADDRESSES`] addresses; it has
    /// 2^`host_bits` of them.
    CidrTooLarge { block: String, host_bits: u8 },
    /// No target specification at all.
    NoTargets,
    /// A service name nmap-services has no TCP port for.
    UnknownService { name: String, spec: String },
    /// A `U:` or `S:` section: synack's connect() scans are TCP only.
    NotTcp { item: String, spec: String },
    /// A `--top-ports` count outside 1-1000.
    TopPortsOutOfRange { count: String },
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::PortOutOfRange { port, spec } => {
                write!(
                    f,
                    "invalid port '{port}' in '-p {spec}': ports are 1 to 65535"
                )
            }
            SpecError::BadPortItem { item, spec } => write!(
                f,
                "invalid port item '{item}' in '-p {spec}': expected a port (22), \
                 a range (80-90, -100, 60000-) or '-' for all ports"
            ),
            SpecError::EmptyPortItem { spec } => {
                write!(f, "empty item in port list '-p {spec}'")
            }
            SpecError::ReversedPortRange { range } => {
                write!(
                    f,
                    "reversed port range '{range}' (start must not exceed end)"
                )
            }
            SpecError::EmptyPortList => f.write_str("empty port list"),
            SpecError::UnknownHost { host, reason } if reason.is_empty() => {
                write!(f, "unknown host '{host}'")
            }
            SpecError::UnknownHost { host, reason } => {
                write!(f, "unknown host '{host}': {reason}")
            }
            SpecError::InvalidTarget { target, reason } => {
                write!(f, "invalid target '{target}': {reason}")
            }
            SpecError::InvalidCidr { block, reason } => {
                write!(f, "invalid CIDR block '{block}': {reason}")
            }
            SpecError::CidrTooLarge { block, host_bits } => {
                write!(f, "CIDR block '{block}' has ")?;
                match 1u128.checked_shl(u32::from(*host_bits)) {
                    Some(n) => write!(f, "{n}")?,
                    // 2^128 does not fit a u128; only an IPv6 /0 gets here.
                    None => f.write_str("340282366920938463463374607431768211456")?,
                }
                write!(
                    f,
                    " addresses; at most {MAX_CIDR_ADDRESSES} are scanned at once"
                )
            }
            SpecError::NoTargets => f.write_str("no targets given"),
            SpecError::UnknownService { name, spec } => write!(
                f,
                "unknown service '{name}' in '-p {spec}': not a TCP service name of \
                 nmap-services; give the port number"
            ),
            SpecError::NotTcp { item, spec } => write!(
                f,
                "'{item}' in '-p {spec}' is not TCP: synack makes TCP connect() scans only \
                 (use T: or no prefix)"
            ),
            SpecError::TopPortsOutOfRange { count } => write!(
                f,
                "invalid --top-ports '{count}': synack knows nmap's top 1 to 1000 TCP ports"
            ),
        }
    }
}

impl std::error::Error for SpecError {}

/// The ports scanned when `-p` is not given: the 100 TCP ports of nmap's "top 100"
/// list (`nmap -F`), ranked by how often nmap's scan data found them open.
///
/// A connect() scan of all 65535 ports is slow and noisy; these cover the common
/// services (remote shells, mail, web, file sharing, databases, remote desktops) a
/// first look wants, and match what nmap users expect from a default fast scan.
/// Sorted ascending, no duplicates.
pub const DEFAULT_PORTS: &[u16] = &[
    7, 9, 13, 21, 22, 23, 25, 26, 37, 53, 79, 80, 81, 88, 106, 110, 111, 113, 119, 135, 139, 143,
    144, 179, 199, 389, 427, 443, 444, 445, 465, 513, 514, 515, 543, 544, 548, 554, 587, 631, 646,
    873, 990, 993, 995, 1025, 1026, 1027, 1028, 1029, 1110, 1433, 1720, 1723, 1755, 1900, 2000,
    2001, 2049, 2121, 2717, 3000, 3128, 3306, 3389, 3986, 4899, 5000, 5009, 5051, 5060, 5101, 5190,
    5357, 5432, 5631, 5666, 5800, 5900, 6000, 6001, 6646, 7070, 8000, 8008, 8009, 8080, 8081, 8443,
    8888, 9100, 9999, 10000, 32768, 49152, 49153, 49154, 49155, 49156, 49157,
];

/// Parses nmap port syntax into a sorted list without duplicates.
///
/// Items are separated by commas (whitespace around them is ignored): `22` one port,
/// `80-90` a range, `-100` for 1-100, `60000-` for 60000-65535, `-` for 1-65535.
/// Port 0, numbers above 65535, empty items, reversed ranges and anything else are
/// errors that name the bad item.
pub fn parse_ports(spec: &str) -> Result<Vec<u16>, SpecError> {
    if spec.trim().is_empty() {
        return Err(SpecError::EmptyPortList);
    }
    // 65536 flags: duplicates vanish and the result comes out sorted for free.
    let mut wanted = vec![false; 1 << 16];
    for raw in spec.split(',') {
        let mut item = raw.trim();
        // nmap's protocol prefixes: T: (TCP) stays, U: (UDP) and S: (SCTP) cannot.
        if let Some((proto, rest)) = item.split_once(':')
            && proto.len() == 1
        {
            match proto {
                "T" | "t" => item = rest.trim(),
                "U" | "u" | "S" | "s" => {
                    return Err(SpecError::NotTcp {
                        item: raw.trim().into(),
                        spec: spec.into(),
                    });
                }
                _ => {}
            }
        }
        if item.is_empty() {
            return Err(SpecError::EmptyPortItem { spec: spec.into() });
        }
        if is_service_name(item) {
            let mut found = false;
            for &(port, name) in crate::services::TCP_NAMES {
                if name.eq_ignore_ascii_case(item) {
                    wanted[usize::from(port)] = true;
                    found = true;
                }
            }
            if !found {
                return Err(SpecError::UnknownService {
                    name: item.into(),
                    spec: spec.into(),
                });
            }
            continue;
        }
        let (start, end) = match item.split_once('-') {
            None => {
                let p = parse_port(item, item, spec)?;
                (p, p)
            }
            Some((a, b)) => {
                let start = if a.is_empty() {
                    1
                } else {
                    parse_port(a, item, spec)?
                };
                let end = if b.is_empty() {
                    u16::MAX
                } else {
                    parse_port(b, item, spec)?
                };
                if start > end {
                    return Err(SpecError::ReversedPortRange { range: item.into() });
                }
                (start, end)
            }
        };
        for p in start..=end {
            wanted[usize::from(p)] = true;
        }
    }
    Ok((1..=u16::MAX).filter(|&p| wanted[usize::from(p)]).collect())
}

/// A service name as nmap-services spells them: a letter first, then letters, digits,
/// `-`, `_`, `.`, `/` (`http-alt`, `ms-wbt-server`).
fn is_service_name(item: &str) -> bool {
    item.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && item
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
}

/// nmap's `--top-ports n`: the n most frequently open TCP ports of nmap-services (the
/// generated [`crate::services::TOP_TCP`]), sorted ascending. `n` is 1 to 1000.
pub fn top_ports(n: usize) -> Result<Vec<u16>, SpecError> {
    if !(1..=crate::services::TOP_TCP.len()).contains(&n) {
        return Err(SpecError::TopPortsOutOfRange {
            count: n.to_string(),
        });
    }
    let mut ports: Vec<u16> = crate::services::TOP_TCP[..n]
        .iter()
        .map(|&(p, _)| p)
        .collect();
    ports.sort_unstable();
    Ok(ports)
}

/// The service nmap-services names for a TCP port (`22` → `ssh`).
pub fn service_name(port: u16) -> Option<&'static str> {
    let names = crate::services::TCP_NAMES;
    names
        .binary_search_by_key(&port, |&(p, _)| p)
        .ok()
        .map(|i| names[i].1)
}

/// Target specifications from one command-line argument or one `-iL` file: split at
/// commas, spaces, tabs and newlines as nmap does; `#` starts a comment to the end of
/// the line in a file. A comma list that looks like an nmap octet list (`198.18.0.1,5`)
/// is kept whole, so that its error names it.
pub fn split_target_list(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        for word in line.split_whitespace() {
            let parts: Vec<&str> = word.split(',').collect();
            let octets = parts.len() > 1
                && parts[1..].iter().any(|p| {
                    !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit() || b"-*".contains(&b))
                });
            if octets {
                out.push(word.to_string());
            } else {
                out.extend(
                    parts
                        .iter()
                        .filter(|p| !p.is_empty())
                        .map(|p| p.to_string()),
                );
            }
        }
    }
    out
}

/// Addresses left out of a scan (`--exclude`, `--excludefile`): address blocks matched
/// by prefix, so excluding a /8 costs nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exclusions(Vec<(IpAddr, u8)>);

impl Exclusions {
    /// Parses exclusion specs (addresses, CIDR blocks of any size, hostnames: every
    /// address of the name is excluded).
    pub fn parse(specs: &[String], resolver: &dyn Resolver) -> Result<Exclusions, SpecError> {
        let mut blocks = Vec::new();
        for raw in specs {
            let spec = raw.trim();
            if let Some((addr_text, prefix_text)) = spec.rsplit_once('/') {
                let (addr, prefix) = parse_block(spec, addr_text, prefix_text)?;
                blocks.push((addr, prefix as u8));
            } else if let Some(addr) = parse_literal(spec)? {
                blocks.push((addr, address_bits(addr) as u8));
            } else {
                check_hostname(spec)?;
                let addrs = resolver
                    .resolve(spec)
                    .map_err(|reason| SpecError::UnknownHost {
                        host: spec.into(),
                        reason,
                    })?;
                blocks.extend(addrs.into_iter().map(|a| (a, address_bits(a) as u8)));
            }
        }
        Ok(Exclusions(blocks))
    }

    /// Whether `ip` is in one of the blocks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|&(net, prefix)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        })
    }

    /// The targets not excluded, in order.
    pub fn apply(&self, targets: Vec<Target>) -> Vec<Target> {
        targets
            .into_iter()
            .filter(|t| !self.contains(t.addr))
            .collect()
    }
}

/// One port number of `item` (part of `spec`). Only ASCII digits are accepted: `str::parse`
/// would also take `+22`.
fn parse_port(text: &str, item: &str, spec: &str) -> Result<u16, SpecError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SpecError::BadPortItem {
            item: item.into(),
            spec: spec.into(),
        });
    }
    match text.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        // Zero, or too many digits for a u16.
        _ => Err(SpecError::PortOutOfRange {
            port: text.into(),
            spec: spec.into(),
        }),
    }
}

/// Compresses ports back into nmap syntax for messages: `[22, 80, 81, 82, 443]` →
/// `"22,80-82,443"`. The input need not be sorted; duplicates are ignored. An empty
/// slice gives an empty string.
pub fn format_ports(ports: &[u16]) -> String {
    let mut sorted = ports.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && u32::from(sorted[i + 1]) == u32::from(end) + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        i += 1;
    }
    out
}

/// Turns a hostname into addresses. Injected so tests never touch DNS.
pub trait Resolver {
    /// All addresses of `host`, or a short reason why there are none.
    fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, String>;
}

/// The system resolver (getaddrinfo through [`std::net::ToSocketAddrs`]), honouring
/// `/etc/hosts` and `/etc/nsswitch.conf`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        let addrs = (host, 0u16).to_socket_addrs().map_err(|e| e.to_string())?;
        let mut out: Vec<IpAddr> = Vec::new();
        for a in addrs {
            // getaddrinfo repeats an address once per socket type.
            if !out.contains(&a.ip()) {
                out.push(a.ip());
            }
        }
        if out.is_empty() {
            return Err("no addresses".into());
        }
        Ok(out)
    }
}

/// Expands target specifications into the list of hosts to scan.
///
/// Each spec is one of:
/// - an IPv4 or IPv6 literal, IPv6 optionally in brackets (`[2001:db8::1]`);
/// - a CIDR block (`198.18.2.0/30`, `2001:db8::/126`, `[2001:db8::]/126`) of at most
///   [`MAX_CIDR_ADDRESSES`] addresses, expanded in ascending order and including the
///   network and broadcast addresses as nmap does; host bits in the address are
///   ignored (`198.18.2.1/30` is `198.18.2.0/30`);
/// - a hostname, resolved through `resolver`. Like nmap, one address per name is
///   scanned: the first IPv4 address the resolver returns if there is one, otherwise
///   the first IPv6 address (IPv4 first because it is what most users mean by a name,
///   and dual-stack hosts would otherwise be scanned twice). Each distinct name is
///   resolved once.
///
/// Duplicate addresses are dropped, keeping the first occurrence (and its name, if
/// any), so the order is the order the user gave. An empty `specs` is
/// [`SpecError::NoTargets`].
pub fn parse_targets(specs: &[String], resolver: &dyn Resolver) -> Result<Vec<Target>, SpecError> {
    if specs.is_empty() {
        return Err(SpecError::NoTargets);
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut resolved: HashMap<String, IpAddr> = HashMap::new();
    let mut push = |t: Target, out: &mut Vec<Target>| {
        if seen.insert(t.addr) {
            out.push(t);
        }
    };
    for raw in specs {
        let spec = raw.trim();
        if spec.is_empty() {
            return Err(invalid_target(raw, "empty target"));
        }
        if let Some((addr, prefix)) = spec.rsplit_once('/') {
            for addr in parse_cidr(spec, addr, prefix)? {
                push(Target { addr, name: None }, &mut out);
            }
        } else if let Some(addr) = parse_literal(spec)? {
            push(Target { addr, name: None }, &mut out);
        } else {
            check_hostname(spec)?;
            let addr = match resolved.get(spec) {
                Some(&a) => a,
                None => {
                    let a = resolve_one(spec, resolver)?;
                    resolved.insert(spec.to_string(), a);
                    a
                }
            };
            let name = Some(spec.to_string());
            push(Target { addr, name }, &mut out);
        }
    }
    Ok(out)
}

fn invalid_target(target: &str, reason: &str) -> SpecError {
    SpecError::InvalidTarget {
        target: target.into(),
        reason: reason.into(),
    }
}

/// An IP literal, `Ok(None)` when `spec` is not one (a hostname, presumably).
fn parse_literal(spec: &str) -> Result<Option<IpAddr>, SpecError> {
    if let Some(inner) = spec.strip_prefix('[') {
        let v6 = inner
            .strip_suffix(']')
            .and_then(|s| s.parse::<Ipv6Addr>().ok())
            .ok_or_else(|| invalid_target(spec, "brackets must enclose an IPv6 address"))?;
        return Ok(Some(IpAddr::V6(v6)));
    }
    if spec.contains(':') {
        return match spec.parse::<Ipv6Addr>() {
            Ok(v6) => Ok(Some(IpAddr::V6(v6))),
            Err(_) if spec.contains('%') => Err(invalid_target(
                spec,
                "IPv6 zone indices (%) are not supported",
            )),
            Err(_) => Err(invalid_target(spec, "not a valid IPv6 address")),
        };
    }
    Ok(spec.parse::<Ipv4Addr>().ok().map(IpAddr::V4))
}

/// The bits of an address of `addr`'s family: 32 or 128.
fn address_bits(addr: IpAddr) -> u32 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// Reads the CIDR block `spec` = `addr_text/prefix_text`: its address and prefix length.
fn parse_block(spec: &str, addr_text: &str, prefix_text: &str) -> Result<(IpAddr, u32), SpecError> {
    let bad = |reason: &str| SpecError::InvalidCidr {
        block: spec.into(),
        reason: reason.into(),
    };
    let addr = match parse_literal(addr_text) {
        Ok(Some(a)) => a,
        _ => return Err(bad("the address must be an IPv4 or IPv6 literal")),
    };
    let bits = address_bits(addr);
    let range_msg = format!("prefix length must be 0 to {bits}");
    if prefix_text.is_empty() || !prefix_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(&range_msg));
    }
    match prefix_text.parse::<u32>() {
        Ok(p) if p <= bits => Ok((addr, p)),
        _ => Err(bad(&range_msg)),
    }
}

/// Expands the CIDR block `spec` = `addr_text/prefix_text`.
fn parse_cidr(spec: &str, addr_text: &str, prefix_text: &str) -> Result<Vec<IpAddr>, SpecError> {
    let (addr, prefix) = parse_block(spec, addr_text, prefix_text)?;
    let bits = address_bits(addr);
    let host_bits = bits - prefix;
    if host_bits > MAX_CIDR_ADDRESSES.trailing_zeros() {
        return Err(SpecError::CidrTooLarge {
            block: spec.into(),
            host_bits: host_bits as u8, // at most 128
        });
    }
    // host_bits <= 16 here, so the shifts and the count below cannot overflow.
    let count = 1u128 << host_bits;
    Ok(match addr {
        IpAddr::V4(a) => {
            let base = u32::from(a) & !((1u32 << host_bits) - 1);
            (0..count as u32)
                .map(|i| IpAddr::V4(Ipv4Addr::from(base + i)))
                .collect()
        }
        IpAddr::V6(a) => {
            let base = u128::from(a) & !(count - 1);
            (0..count)
                .map(|i| IpAddr::V6(Ipv6Addr::from(base + i)))
                .collect()
        }
    })
}

/// Rejects what cannot be a hostname before it reaches the resolver, so the user
/// hears what is wrong rather than "unknown host". Letters, digits and hyphens per
/// RFC 1123 §2.1, plus underscores, which real DNS names carry; labels of 1 to 63
/// characters, at most 253 in all; an optional trailing dot.
fn check_hostname(spec: &str) -> Result<(), SpecError> {
    let name = spec.strip_suffix('.').unwrap_or(spec);
    if !name.is_ascii() {
        return Err(invalid_target(
            spec,
            "non-ASCII hostname; give its punycode (xn--) form",
        ));
    }
    let last = name.rsplit('.').next().unwrap_or("");
    // A top-level label is never all-numeric (RFC 3696 §2), and getaddrinfo would read
    // `198.18.2` or `3232235777` as IPv4 addresses (inet_aton's shorthand): these were
    // meant as IPv4 addresses, or as nmap octet ranges when they hold `-`, `,` or `*`.
    let numeric_last = last.bytes().any(|b| b.is_ascii_digit() || b == b'*')
        && last
            .bytes()
            .all(|b| b.is_ascii_digit() || b"-,*".contains(&b));
    if numeric_last {
        return Err(if name.bytes().any(|b| b"-,*".contains(&b)) {
            invalid_target(
                spec,
                "octet ranges are not supported; use a CIDR block such as 198.18.0.0/24",
            )
        } else {
            invalid_target(spec, "not a valid IPv4 address")
        });
    }
    let valid = name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if valid {
        Ok(())
    } else {
        Err(invalid_target(
            spec,
            "not an IP address, CIDR block or hostname",
        ))
    }
}

/// The address scanned for `host`: its first IPv4 address, else its first IPv6 one.
fn resolve_one(host: &str, resolver: &dyn Resolver) -> Result<IpAddr, SpecError> {
    let unknown = |reason: String| SpecError::UnknownHost {
        host: host.into(),
        reason,
    };
    let addrs = resolver.resolve(host).map_err(unknown)?;
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| unknown("no addresses".into()))
}

#[cfg(test)]
mod tests {
    //! Internal helpers; the public behaviour is tested in tests/targets.rs.
    use super::*;

    #[test]
    fn hostname_rules() {
        for ok in [
            "localhost",
            "lab.example",
            "lab.example.",
            "_srv._tcp.example",
            "a-b.c1",
        ] {
            assert_eq!(check_hostname(ok), Ok(()), "{ok}");
        }
        for bad in [
            "a..b",
            ".a",
            "a b",
            "a,b",
            "1.2.3",
            "10",
            "ex!ample",
            "é.example",
        ] {
            assert!(check_hostname(bad).is_err(), "{bad}");
        }
        assert!(check_hostname(&format!("{}.example", "a".repeat(63))).is_ok());
        assert!(check_hostname(&format!("{}.example", "a".repeat(64))).is_err());
    }

    #[test]
    fn literal_detection() {
        assert_eq!(parse_literal("lab.example"), Ok(None));
        assert_eq!(
            parse_literal("198.18.2.1"),
            Ok(Some(IpAddr::V4([198, 18, 2, 1].into())))
        );
        assert!(parse_literal("[::1]").unwrap().is_some());
        assert!(parse_literal("::g").is_err());
    }

    #[test]
    fn resolve_one_prefers_ipv4() {
        struct R(Vec<IpAddr>);
        impl Resolver for R {
            fn resolve(&self, _: &str) -> Result<Vec<IpAddr>, String> {
                Ok(self.0.clone())
            }
        }
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let v4: IpAddr = "198.18.0.1".parse().unwrap();
        assert_eq!(resolve_one("h", &R(vec![v6, v4])), Ok(v4));
        assert_eq!(resolve_one("h", &R(vec![v6])), Ok(v6));
        assert!(resolve_one("h", &R(vec![])).is_err());
    }
}
