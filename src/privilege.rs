//! What synack may do, and giving it up: packet capture needs root or CAP_NET_RAW, but
//! only to open the AF_PACKET sockets. Once they are open (bound, filter attached) and the
//! `-w` file is created, the scan drops every privilege before it parses the first packet
//! from the wire, so a bug in the packet path runs with no more rights than the user's.
//!
//! The models are `tcpdump -Z` (started through sudo: become the invoking user) and
//! trippy's privilege crate (otherwise: clear the capability sets). All of synack's
//! `unsafe` for credentials lives here.

use std::fmt;
use std::io;

/// CAP_NET_RAW (linux/capability.h): raw and packet sockets.
const CAP_NET_RAW: u32 = 13;
/// _LINUX_CAPABILITY_VERSION_3 (linux/capability.h), which libc does not declare: 64-bit
/// capability sets passed as two 32-bit words each.
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// The privileges of the running process, as far as a scan is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Privileges {
    /// Effective user id 0.
    pub root: bool,
    /// CAP_NET_RAW in the effective capability set.
    pub net_raw: bool,
}

impl Privileges {
    /// The calling thread's privileges (euid, and `CapEff:` from /proc/self/status).
    pub fn current() -> Privileges {
        // SAFETY: geteuid has no arguments and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let net_raw = read_status()
            .ok()
            .and_then(|s| status_caps(&s, "CapEff"))
            .is_some_and(|caps| caps & (1 << CAP_NET_RAW) != 0);
        Privileges { root, net_raw }
    }

    /// Whether packet capture (an AF_PACKET socket) is possible.
    pub fn can_capture(&self) -> bool {
        self.root || self.net_raw
    }
}

/// A step of [`drop_privileges`], named in its errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    SetGroups,
    SetGid(u32),
    SetUid(u32),
    CapSet,
    NoNewPrivs,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::SetGroups => write!(f, "setgroups(0, NULL)"),
            Step::SetGid(g) => write!(f, "setgid({g})"),
            Step::SetUid(u) => write!(f, "setuid({u})"),
            Step::CapSet => write!(f, "capset (clearing every capability)"),
            Step::NoNewPrivs => write!(f, "prctl(PR_SET_NO_NEW_PRIVS)"),
        }
    }
}

/// Why privileges could not be dropped. The scan stops: it never parses packets with
/// privileges it meant to give up.
#[derive(Debug)]
pub enum PrivilegeError {
    /// /proc/self/status could not be read (or lacks a line), so nothing can be checked.
    Status(io::Error),
    /// Capabilities belong to threads: with other threads alive, they would keep theirs.
    Threads(usize),
    /// SUDO_UID or SUDO_GID is set but is not a number.
    SudoVariable(&'static str, String),
    /// A system call failed.
    Call(Step, io::Error),
    /// The calls succeeded but the process still holds this privilege.
    StillPrivileged(String),
}

impl fmt::Display for PrivilegeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrivilegeError::Status(e) => write!(f, "reading /proc/self/status: {e}"),
            PrivilegeError::Threads(n) => write!(
                f,
                "{n} threads are running; privileges can only be dropped by a single-threaded process"
            ),
            PrivilegeError::SudoVariable(name, v) => {
                write!(f, "{name}={v:?} is not a numeric id")
            }
            PrivilegeError::Call(step, e) => write!(f, "{step} failed: {e}"),
            PrivilegeError::StillPrivileged(what) => {
                write!(f, "privileges were dropped but {what}")
            }
        }
    }
}

impl std::error::Error for PrivilegeError {}

/// Drops every privilege for good. Call it once the capture sockets and output files are
/// open, before any thread is spawned and before the first packet is parsed:
///
/// - root started through sudo (SUDO_UID and SUDO_GID set): become the invoking user
///   (supplementary groups cleared, then the group, then the user: the order in which
///   each step is still permitted), which also empties the capability sets;
/// - then, in every case, clear the effective, permitted and inheritable capabilities
///   (the ambient set follows) and set PR_SET_NO_NEW_PRIVS, so no execve can regain any.
///
/// The result is checked from /proc/self/status afterwards; any shortfall is an error.
pub fn drop_privileges() -> Result<(), PrivilegeError> {
    let status = read_status().map_err(PrivilegeError::Status)?;
    let threads = status_field(&status, "Threads")
        .and_then(|v| v.parse::<usize>().ok())
        .ok_or_else(|| PrivilegeError::Status(missing("Threads")))?;
    if threads != 1 {
        return Err(PrivilegeError::Threads(threads));
    }
    // SAFETY: geteuid has no arguments and cannot fail.
    let target = if unsafe { libc::geteuid() } == 0 {
        sudo_user()?
    } else {
        None
    };
    if let Some((uid, gid)) = target {
        // SAFETY: setgroups with a zero count reads no memory.
        call(Step::SetGroups, unsafe {
            libc::setgroups(0, std::ptr::null())
        })?;
        // SAFETY: setgid and setuid take plain ids.
        call(Step::SetGid(gid), unsafe { libc::setgid(gid) })?;
        // SAFETY: as above.
        call(Step::SetUid(uid), unsafe { libc::setuid(uid) })?;
    }
    clear_capabilities()?;
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only.
    call(Step::NoNewPrivs, unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    })?;
    verify(target)
}

/// (uid, gid) of the user who ran sudo, if synack was started through it. An id of 0
/// (root ran sudo) leaves nobody to become: the capabilities are cleared all the same.
fn sudo_user() -> Result<Option<(u32, u32)>, PrivilegeError> {
    let (Ok(uid), Ok(gid)) = (std::env::var("SUDO_UID"), std::env::var("SUDO_GID")) else {
        return Ok(None);
    };
    let uid: u32 = uid
        .trim()
        .parse()
        .map_err(|_| PrivilegeError::SudoVariable("SUDO_UID", uid.clone()))?;
    let gid: u32 = gid
        .trim()
        .parse()
        .map_err(|_| PrivilegeError::SudoVariable("SUDO_GID", gid.clone()))?;
    Ok((uid != 0).then_some((uid, gid)))
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// capset(2) with every set empty, for the calling thread (pid 0). Lowering capabilities
/// needs none.
fn clear_capabilities() -> Result<(), PrivilegeError> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: header is a valid __user_cap_header_struct; data holds the two
    // __user_cap_data_struct that version 3 reads. The kernel only reads data (and may
    // write header.version, which is ours and mutable).
    let r = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    call(Step::CapSet, r as libc::c_int)
}

fn call(step: Step, r: libc::c_int) -> Result<(), PrivilegeError> {
    if r < 0 {
        Err(PrivilegeError::Call(step, io::Error::last_os_error()))
    } else {
        Ok(())
    }
}

/// Checks what the kernel says is left: no capability in any set, no_new_privs on, and
/// after a sudo drop every user and group id (real, effective, saved, filesystem) is the
/// invoking user's and root cannot be taken back.
fn verify(target: Option<(u32, u32)>) -> Result<(), PrivilegeError> {
    let status = read_status().map_err(PrivilegeError::Status)?;
    for set in ["CapEff", "CapPrm", "CapInh", "CapAmb"] {
        match status_caps(&status, set) {
            Some(0) => {}
            Some(caps) => {
                return Err(PrivilegeError::StillPrivileged(format!(
                    "{set} is {caps:#x}"
                )));
            }
            None => return Err(PrivilegeError::Status(missing(set))),
        }
    }
    if status_field(&status, "NoNewPrivs") != Some("1") {
        return Err(PrivilegeError::StillPrivileged(
            "no_new_privs is not set".to_string(),
        ));
    }
    if let Some((uid, gid)) = target {
        for (field, want) in [("Uid", uid), ("Gid", gid)] {
            let ids =
                status_ids(&status, field).ok_or_else(|| PrivilegeError::Status(missing(field)))?;
            if ids.iter().any(|&id| id != want) {
                return Err(PrivilegeError::StillPrivileged(format!(
                    "{field} is {ids:?}, not {want}"
                )));
            }
        }
        // SAFETY: setuid takes a plain id. Expected to fail; if it does not, root was
        // taken back and the check reports it.
        if unsafe { libc::setuid(0) } == 0 {
            return Err(PrivilegeError::StillPrivileged(
                "setuid(0) still succeeds".to_string(),
            ));
        }
    }
    Ok(())
}

fn read_status() -> io::Result<String> {
    std::fs::read_to_string("/proc/self/status")
}

fn missing(field: &str) -> io::Error {
    io::Error::other(format!("no {field}: line"))
}

/// The value of a `Name:\tvalue` line of /proc/PID/status, trimmed.
pub fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key == name).then_some(value.trim())
    })
}

/// A capability set line (`CapEff:\t000001ffffffffff`) of /proc/PID/status as a bit mask.
pub fn status_caps(status: &str, name: &str) -> Option<u64> {
    let hex = status_field(status, name)?;
    if hex.is_empty() || hex.len() > 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The four ids (real, effective, saved, filesystem) of a `Uid:` or `Gid:` line.
pub fn status_ids(status: &str, name: &str) -> Option<[u32; 4]> {
    let mut ids = status_field(status, name)?
        .split_whitespace()
        .map(|v| v.parse::<u32>().ok());
    let out = [ids.next()??, ids.next()??, ids.next()??, ids.next()??];
    ids.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "Name:\tsynack\nUmask:\t0022\nState:\tR (running)\n\
        Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nThreads:\t1\n\
        CapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n\
        CapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\n";

    #[test]
    fn capability_sets_parse_as_hex_masks() {
        assert_eq!(status_caps(ROOT, "CapEff"), Some(0x1ff_ffff_ffff));
        assert_eq!(status_caps(ROOT, "CapInh"), Some(0));
        let raw_only = "CapEff:\t0000000000002000\n";
        let caps = status_caps(raw_only, "CapEff").unwrap();
        assert_eq!(caps, 1 << CAP_NET_RAW);
    }

    #[test]
    fn malformed_capability_lines_are_none() {
        assert_eq!(status_caps("CapEff:\t\n", "CapEff"), None);
        assert_eq!(status_caps("CapEff:\tzz\n", "CapEff"), None);
        assert_eq!(status_caps("CapEff:\t00000000000000000\n", "CapEff"), None);
        assert_eq!(status_caps(ROOT, "CapXyz"), None);
        // A prefix of the name is not the name.
        assert_eq!(status_caps("CapEffX:\t1\n", "CapEff"), None);
    }

    #[test]
    fn id_lines_have_four_ids() {
        assert_eq!(status_ids(ROOT, "Uid"), Some([0; 4]));
        let nobody = "Uid:\t65534\t65534\t65534\t65534\n";
        assert_eq!(status_ids(nobody, "Uid"), Some([65534; 4]));
        assert_eq!(status_ids("Uid:\t1\t2\t3\n", "Uid"), None);
        assert_eq!(status_ids("Uid:\t1\t2\t3\t4\t5\n", "Uid"), None);
        assert_eq!(status_ids("Uid:\t1\tx\t3\t4\n", "Uid"), None);
    }

    #[test]
    fn fields_are_found_by_exact_name() {
        assert_eq!(status_field(ROOT, "Threads"), Some("1"));
        assert_eq!(status_field(ROOT, "NoNewPrivs"), Some("0"));
        assert_eq!(status_field(ROOT, "Thread"), None);
    }

    #[test]
    fn this_process_reads_its_own_privileges() {
        // Whatever the test runs as, the check agrees with the effective uid.
        let p = Privileges::current();
        // SAFETY: geteuid has no arguments and cannot fail.
        assert_eq!(p.root, unsafe { libc::geteuid() } == 0);
        assert_eq!(p.can_capture(), p.root || p.net_raw);
    }
}
