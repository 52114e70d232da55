//! Holding a standard lab open for scripts (benchmarks, fixture recording).

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::ptr;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::netns::{NAME_PREFIX, cleanup_stale};
use super::topology::Lab;

/// How often the waiting loop looks at stdin's state between signal waits.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Builds the standard lab, announces it on stdout and keeps it (listeners included) until
/// stdin reaches EOF or SIGTERM / SIGINT arrives; then tears it down and returns.
///
/// Output, flushed before waiting:
/// ```text
/// scanner=sa-<tag>-<pid>-<n>-scan router=sa-<tag>-<pid>-<n>-rtr target=sa-<tag>-<pid>-<n>-tgt
/// ready
/// ```
///
/// Call it before spawning other threads: SIGINT and SIGTERM are blocked in the calling
/// thread (and so in every thread it starts) and collected with `sigtimedwait`, so a
/// signal arriving mid-construction is handled after construction instead of killing the
/// process with namespaces half made. They stay blocked after `serve` returns.
///
/// Scripts: a background job (`cmd &`) in a non-interactive shell gets /dev/null as stdin,
/// which is an immediate EOF. Give it a pipe that stays open (`coproc`, or
/// `sleep infinity | synack … &`) and stop it with `kill`, or by closing the pipe.
/// `blackhole`: a prefix the router drops silently (`Lab::blackhole`). `far`: a prefix
/// and the delay every packet towards it waits (`Lab::delay_prefix`).
pub fn serve(
    tag: &str,
    many_hosts: Option<&str>,
    blackhole: Option<&str>,
    far: Option<(&str, Duration)>,
) -> io::Result<()> {
    let signals = StopSignals::block()?;
    serve_with(
        tag,
        many_hosts,
        blackhole,
        far,
        &mut io::stdout(),
        io::stdin(),
        || signals.wait(STOP_POLL),
    )
}

/// [`serve`] with its inputs and outputs passed in, so tests can drive it. `signalled` is
/// called repeatedly while waiting and should block for a short while.
fn serve_with(
    tag: &str,
    many_hosts: Option<&str>,
    blackhole: Option<&str>,
    far: Option<(&str, Duration)>,
    out: &mut dyn Write,
    input: impl Read + Send + 'static,
    mut signalled: impl FnMut() -> io::Result<bool>,
) -> io::Result<()> {
    // A script killed with SIGKILL cannot tear its lab down; the next one does.
    if let Err(e) = cleanup_stale(NAME_PREFIX) {
        eprintln!("synack lab: cannot look for stale namespaces: {e}");
    }
    let mut lab = Lab::standard(tag)?;
    if let Some(prefix) = many_hosts {
        // Port 443 open on every address of the prefix, the rest closed.
        lab.answer_for_prefix(prefix, 443)?;
    }
    if let Some(prefix) = blackhole {
        lab.blackhole(prefix)?;
    }
    if let Some((prefix, delay)) = far {
        lab.delay_prefix(prefix, delay)?;
        // The far host to scan: the prefix's first address, with the standard open
        // ports (the target's INPUT rules decide the others as for its own address).
        let host = first_host(prefix)?;
        let target = lab.target.clone();
        for port in [22, 80] {
            lab.listen(&target, SocketAddr::new(host, port))?;
        }
    }
    writeln!(
        out,
        "scanner={} router={} target={}",
        lab.scanner, lab.router, lab.target
    )?;
    writeln!(out, "ready")?;
    out.flush()?;

    let (eof_tx, eof_rx) = mpsc::channel::<()>();
    thread::Builder::new()
        .name("lab-stdin".into())
        .spawn(move || {
            let mut input = input;
            // Read errors count as EOF: either way nobody is left to say when to stop.
            let _ = io::copy(&mut input, &mut io::sink());
            let _ = eof_tx.send(());
        })?;
    loop {
        if signalled()? {
            break;
        }
        match eof_rx.try_recv() {
            Err(mpsc::TryRecvError::Empty) => {}
            Ok(()) | Err(mpsc::TryRecvError::Disconnected) => break,
        }
    }
    drop(lab);
    Ok(())
}

/// The first address after the network address of `prefix` ("a.b.c.0/24" → a.b.c.1).
fn first_host(prefix: &str) -> io::Result<IpAddr> {
    let bad = || io::Error::new(io::ErrorKind::InvalidInput, format!("prefix {prefix:?}"));
    let (addr, _) = prefix.split_once('/').ok_or_else(bad)?;
    Ok(match addr.parse::<IpAddr>().map_err(|_| bad())? {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a) + 1).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) + 1).into()),
    })
}

/// SIGINT and SIGTERM, blocked so that they queue up until [`StopSignals::wait`] takes them.
struct StopSignals {
    set: libc::sigset_t,
}

impl StopSignals {
    fn block() -> io::Result<StopSignals> {
        // SAFETY: sigset_t is plain integers, for which all-zero is a valid value, and
        // sigemptyset/sigaddset only write into the set we own.
        let set = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            set
        };
        // SAFETY: `set` is initialised; a null old-set pointer is allowed. This changes
        // only the calling thread's mask (and that of threads it starts later).
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, ptr::null_mut()) };
        if rc != 0 {
            let e = io::Error::from_raw_os_error(rc);
            return Err(io::Error::new(
                e.kind(),
                format!("blocking SIGINT/SIGTERM: {e}"),
            ));
        }
        Ok(StopSignals { set })
    }

    /// Waits up to `timeout` for one of the signals; true when one arrived.
    fn wait(&self, timeout: Duration) -> io::Result<bool> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos().into(),
        };
        // SAFETY: `set` and `ts` are valid for the call; a null siginfo pointer is allowed.
        let rc = unsafe { libc::sigtimedwait(&self.set, ptr::null_mut(), &ts) };
        if rc > 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(false),
            _ => Err(io::Error::new(
                e.kind(),
                format!("waiting for SIGINT/SIGTERM: {e}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{list_namespaces, root_or_skip};

    fn announced(out: &[u8]) -> Vec<String> {
        let text = String::from_utf8(out.to_vec()).unwrap();
        let mut lines = text.lines();
        let names = lines.next().unwrap();
        assert_eq!(lines.next(), Some("ready"));
        assert_eq!(lines.next(), None);
        names
            .split(' ')
            .zip(["scanner=", "router=", "target="])
            .map(|(field, key)| field.strip_prefix(key).unwrap().to_owned())
            .collect()
    }

    #[test]
    fn the_far_host_is_the_prefix_first_address() {
        assert_eq!(
            first_host("198.19.200.0/24").unwrap(),
            "198.19.200.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            first_host("2001:db8:c8::/64").unwrap(),
            "2001:db8:c8::1".parse::<IpAddr>().unwrap()
        );
        assert!(first_host("2001:db8:c8::").is_err());
    }

    #[test]
    fn serve_announces_and_tears_down_on_eof() {
        if !root_or_skip("serve_announces_and_tears_down_on_eof") {
            return;
        }
        let mut out = Vec::new();
        serve_with("serve", None, None, None, &mut out, io::empty(), || {
            thread::sleep(Duration::from_millis(5));
            Ok(false)
        })
        .unwrap();
        let names = announced(&out);
        assert_eq!(names.len(), 3);
        let left = list_namespaces().unwrap();
        assert!(
            names.iter().all(|n| !left.contains(n)),
            "{names:?} in {left:?}"
        );
    }

    #[test]
    fn serve_tears_down_on_signal_while_stdin_stays_open() {
        if !root_or_skip("serve_tears_down_on_signal_while_stdin_stays_open") {
            return;
        }
        let (reader, writer) = io::pipe().unwrap();
        let mut out = Vec::new();
        serve_with("serve", None, None, None, &mut out, reader, || Ok(true)).unwrap();
        drop(writer); // lets the stdin thread finish
        let names = announced(&out);
        let left = list_namespaces().unwrap();
        assert!(
            names.iter().all(|n| !left.contains(n)),
            "{names:?} in {left:?}"
        );
    }
}
