//! `--filter EXPR` for replay: tcpdump's filter language, compiled by libpcap itself
//! (`pcap_compile` on a `pcap_open_dead` handle of the frame's link type) and run on each
//! frame with `pcap_offline_filter` before decoding, as `tcpdump -r FILE EXPR` does. synack
//! does not parse filter expressions of its own.
//!
//! libpcap is loaded with dlopen the first time a filter is compiled (libpcap0.8 at run
//! time, nothing at build time), and used through the few functions below; the `unsafe`
//! is confined to this file, each call with its SAFETY note.

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};

use rustc_hash::FxHashMap;
use synack_core::frame::{Frame, LinkType};

/// libpcap's `struct bpf_program`.
#[repr(C)]
struct BpfProgram {
    bf_len: c_uint,
    bf_insns: *mut c_void,
}

/// libpcap's `struct pcap_pkthdr` (`struct timeval` is two `long`s on Linux).
#[repr(C)]
struct PktHdr {
    tv_sec: libc::time_t,
    tv_usec: libc::suseconds_t,
    caplen: u32,
    len: u32,
}

/// The libpcap functions `--filter` uses, loaded when a filter is first compiled
/// (`dlopen`): a program that never filters does not load libpcap and the ten libraries
/// Debian's build of it pulls in (dbus, systemd, gcrypt, …), whose loading and relocation
/// were 1.5 ms of every start of synack, a twentieth of a full-range replay.
struct Pcap {
    open_dead: unsafe extern "C" fn(linktype: c_int, snaplen: c_int) -> *mut c_void,
    close: unsafe extern "C" fn(p: *mut c_void),
    compile: unsafe extern "C" fn(
        p: *mut c_void,
        fp: *mut BpfProgram,
        expr: *const c_char,
        optimize: c_int,
        netmask: u32,
    ) -> c_int,
    geterr: unsafe extern "C" fn(p: *mut c_void) -> *const c_char,
    freecode: unsafe extern "C" fn(fp: *mut BpfProgram),
    offline_filter:
        unsafe extern "C" fn(fp: *const BpfProgram, h: *const PktHdr, pkt: *const u8) -> c_int,
}

/// Where libpcap's shared object may be, by soname (Debian's first).
const LIBPCAP: [&CStr; 3] = [c"libpcap.so.0.8", c"libpcap.so.1", c"libpcap.so"];

/// libpcap, loaded once (and never unloaded: compiled programs point into it).
fn pcap() -> Result<&'static Pcap, String> {
    static PCAP: std::sync::OnceLock<Result<Pcap, String>> = std::sync::OnceLock::new();
    PCAP.get_or_init(load).as_ref().map_err(Clone::clone)
}

fn load() -> Result<Pcap, String> {
    // SAFETY: dlopen takes a NUL-terminated name; the handle is kept for the process's
    // life. dlerror's message is copied at once.
    let lib = LIBPCAP
        .iter()
        .map(|name| unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) })
        .find(|h| !h.is_null())
        .ok_or_else(|| {
            let why = unsafe { libc::dlerror() };
            let why = if why.is_null() {
                String::new()
            } else {
                format!(": {}", unsafe { CStr::from_ptr(why) }.to_string_lossy())
            };
            format!("--filter needs libpcap (Debian: apt-get install libpcap0.8){why}")
        })?;
    let sym = |name: &CStr| {
        // SAFETY: a symbol lookup in the handle just opened; a missing one is an error.
        let f = unsafe { libc::dlsym(lib, name.as_ptr()) };
        if f.is_null() {
            Err(format!("libpcap has no {}", name.to_string_lossy()))
        } else {
            Ok(f)
        }
    };
    // SAFETY: each symbol is libpcap's function of that name, whose C signature (pcap.h,
    // stable since libpcap 1.0) is the field's type.
    #[allow(clippy::missing_transmute_annotations)] // each target type is its field's
    unsafe {
        Ok(Pcap {
            open_dead: std::mem::transmute(sym(c"pcap_open_dead")?),
            close: std::mem::transmute(sym(c"pcap_close")?),
            compile: std::mem::transmute(sym(c"pcap_compile")?),
            geterr: std::mem::transmute(sym(c"pcap_geterr")?),
            freecode: std::mem::transmute(sym(c"pcap_freecode")?),
            offline_filter: std::mem::transmute(sym(c"pcap_offline_filter")?),
        })
    }
}

/// PCAP_NETMASK_UNKNOWN: broadcast tests cannot be compiled without a netmask.
const NETMASK_UNKNOWN: u32 = 0xffff_ffff;
const SNAPLEN: c_int = 262_144;

/// One compiled program.
struct Program(BpfProgram);

// SAFETY: a compiled program is plain memory that libpcap allocated for it alone (the
// instructions behind `bf_insns`); nothing else refers to it. Moving it to another thread
// (replay decodes files on a thread of its own) and using it there, one thread at a time,
// is what pcap_offline_filter allows (it reads the program and the packet, nothing more).
unsafe impl Send for Program {}

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: the program was filled in by a successful pcap_compile (so libpcap is
        // loaded) and is freed once.
        if let Ok(pcap) = pcap() {
            unsafe { (pcap.freecode)(&mut self.0) }
        }
    }
}

/// The DLT_ value libpcap's code generator expects for a LINKTYPE_ number: they agree
/// except for LINKTYPE_RAW (101), which is DLT_RAW (12 on Linux).
fn dlt(link: LinkType) -> c_int {
    match link {
        LinkType::RawIp => 12,
        other => other.to_pcap() as c_int,
    }
}

/// Compiles `expr` for `link`: the program, or libpcap's error message.
fn compile(expr: &CStr, link: LinkType) -> Result<Program, String> {
    let pcap = pcap()?;
    // SAFETY: pcap_open_dead allocates a handle (NULL on failure, checked); the handle is
    // used only for pcap_compile/pcap_geterr below and closed before returning. `expr`
    // is a NUL-terminated string that outlives the calls; `prog` is written by
    // pcap_compile only on success (return 0), and only then wrapped for freeing.
    unsafe {
        let p = (pcap.open_dead)(dlt(link), SNAPLEN);
        if p.is_null() {
            return Err("libpcap could not open a handle".into());
        }
        let mut prog = BpfProgram {
            bf_len: 0,
            bf_insns: std::ptr::null_mut(),
        };
        let rc = (pcap.compile)(p, &mut prog, expr.as_ptr(), 1, NETMASK_UNKNOWN);
        let result = if rc == 0 {
            Ok(Program(prog))
        } else {
            Err(CStr::from_ptr((pcap.geterr)(p))
                .to_string_lossy()
                .into_owned())
        };
        (pcap.close)(p);
        result
    }
}

/// A filter expression, compiled once per link type met.
pub struct Filter {
    pcap: &'static Pcap,
    expr: CString,
    text: String,
    programs: FxHashMap<LinkType, Option<Program>>,
    /// Frames of link types the expression does not compile for, by link type.
    pub refused: FxHashMap<LinkType, (u64, String)>,
}

impl Filter {
    /// Checks the expression as libpcap compiles it for Ethernet (what the user most likely
    /// means), so a typo is an error before any output.
    pub fn new(expr: &str) -> Result<Filter, String> {
        let c = CString::new(expr).map_err(|_| "a NUL byte in the expression".to_string())?;
        let first = compile(&c, LinkType::Ethernet)?;
        let mut programs = FxHashMap::default();
        programs.insert(LinkType::Ethernet, Some(first));
        Ok(Filter {
            pcap: pcap()?,
            expr: c,
            text: expr.to_string(),
            programs,
            refused: FxHashMap::default(),
        })
    }

    pub fn expression(&self) -> &str {
        &self.text
    }

    /// Whether the frame passes. A frame whose link type the expression does not compile
    /// for (say `ether host …` on raw IP) does not pass, and is counted in `refused`.
    pub fn matches(&mut self, frame: &Frame<'_>) -> bool {
        let expr = &self.expr;
        let refused = &mut self.refused;
        let prog =
            self.programs
                .entry(frame.link)
                .or_insert_with(|| match compile(expr, frame.link) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        refused.insert(frame.link, (0, e));
                        None
                    }
                });
        let Some(prog) = prog else {
            if let Some((n, _)) = self.refused.get_mut(&frame.link) {
                *n += 1;
            }
            return false;
        };
        let hdr = PktHdr {
            tv_sec: (frame.ts.0 / 1_000_000_000) as libc::time_t,
            tv_usec: ((frame.ts.0 % 1_000_000_000) / 1_000) as libc::suseconds_t,
            caplen: frame.data.len() as u32,
            len: frame.orig_len.max(frame.data.len() as u32),
        };
        // SAFETY: the program is a compiled, live bpf_program; `hdr.caplen` is exactly the
        // length of `frame.data`, which the BPF interpreter never reads beyond.
        unsafe { (self.pcap.offline_filter)(&prog.0, &hdr, frame.data.as_ptr()) != 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_expression_is_refused_with_libpcaps_words() {
        let e = Filter::new("tcp port eighty").err().expect("refused");
        assert!(!e.is_empty(), "{e}");
        assert!(Filter::new("tcp port 80 and host 198.18.2.1").is_ok());
    }
}
