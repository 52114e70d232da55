//! Named network namespaces: creating and always removing them, running code and commands
//! inside them, and sweeping up what a killed process left behind.
//!
//! Every name this module makes has the shape `sa-<tag>-<pid>-<n>-<role>`, so that
//! [`cleanup_stale`] can tell from the name alone whether the owner is still alive.

use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Every namespace the lab creates starts with this, and nothing else the lab touches does.
pub const NAME_PREFIX: &str = "sa-";

/// Where `ip netns add` bind-mounts the namespaces it names.
const NETNS_DIR: &str = "/run/netns";

/// How long an idle accept loop sleeps before looking again. The kernel finishes the
/// handshake on its own, so this only bounds how fast the backlog drains and how long a
/// lab's drop waits for its accept threads.
const ACCEPT_POLL: Duration = Duration::from_millis(10);

/// Distinguishes labs made by the same process.
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The namespace name for `role` in a fresh lab owned by this process.
///
/// All roles of one lab share `n`, which [`fresh_names`] guarantees.
fn name(tag: &str, n: u32, role: &str) -> String {
    format!("{NAME_PREFIX}{tag}-{}-{n}-{role}", std::process::id())
}

/// Unique namespace names for the given roles, e.g. `sa-demo-4242-0-scan`.
pub(crate) fn fresh_names<const N: usize>(tag: &str, roles: [&str; N]) -> io::Result<[String; N]> {
    check_tag(tag)?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Ok(roles.map(|role| name(tag, n, role)))
}

/// Tags end up in file names under /run/netns and in the `sa-<tag>-<pid>-<n>-<role>`
/// scheme, so keep them to characters that cannot break either.
fn check_tag(tag: &str) -> io::Result<()> {
    let ok = !tag.is_empty()
        && tag.len() <= 32
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("lab tag {tag:?}: use 1 to 32 characters from [A-Za-z0-9_-]"),
        ))
    }
}

/// The pid encoded in a lab namespace name, or `None` when the name is not one of ours.
pub(crate) fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let (rest, role) = rest.rsplit_once('-')?;
    if role.is_empty() || !role.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    let (rest, n) = rest.rsplit_once('-')?;
    n.parse::<u32>().ok()?;
    let (tag, pid) = rest.rsplit_once('-')?;
    if tag.is_empty() {
        return None;
    }
    pid.parse().ok()
}

/// Renders `argv` the way a shell user would type it, for error messages.
pub(crate) fn shell_words(argv: &[&str]) -> String {
    argv.join(" ")
}

/// Runs `argv` to completion and returns its stdout.
///
/// The error names the command and carries its stderr: "it failed" is useless when a lab
/// half-builds.
pub(crate) fn run_argv(argv: &[&str]) -> io::Result<String> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command line"))?;
    let shown = shell_words(argv);
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run `{shown}`: {e}")))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "`{shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `argv` inside namespace `ns` through `ip netns exec`.
pub fn run(ns: &str, argv: &[&str]) -> io::Result<String> {
    let mut full = vec!["ip", "netns", "exec", ns];
    full.extend_from_slice(argv);
    run_argv(&full)
}

/// A `Command` that will run `program` inside namespace `ns`; add arguments and spawn it.
///
/// `ip netns exec` also remounts /sys for the namespace, which a plain setns does not.
pub fn command(ns: &str, program: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, program]);
    cmd
}

/// Names of all named network namespaces, as `ip netns list` shows them.
pub fn list_namespaces() -> io::Result<Vec<String>> {
    let out = run_argv(&["ip", "netns", "list"])?;
    // Lines look like "name (id: 3)" or just "name".
    Ok(out
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

fn netns_path(ns: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(ns)
}

/// Runs `f` on a fresh thread that has joined network namespace `ns`, and returns its result.
///
/// Only the new thread switches namespace, so the caller (and the rest of the process)
/// stay where they are; sockets created by `f` keep the namespace after the thread ends,
/// which is what [`Lab::listen`](super::Lab::listen) relies on. A panic in `f` is resumed
/// in the caller, so assertions inside `f` fail the test that wrote them.
pub fn in_namespace<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    let path = netns_path(ns);
    let file = File::open(&path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("network namespace {ns:?} ({}): {e}", path.display()),
        )
    })?;
    let joined = thread::scope(|scope| {
        scope
            .spawn(move || -> io::Result<T> {
                enter(&file, ns)?;
                Ok(f())
            })
            .join()
    });
    match joined {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Moves the calling thread into the network namespace `file` refers to, and checks it
/// arrived: code run after this may write namespace sysctls, and doing that to the host
/// by mistake would be far worse than failing.
fn enter(file: &File, ns: &str) -> io::Result<()> {
    // SAFETY: `file` is an open descriptor for the whole call; setns(2) with
    // CLONE_NEWNET only changes the network namespace of the calling thread, which is a
    // dedicated thread that ends when `in_namespace` is done with it.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("setns into network namespace {ns:?}: {e}"),
        ));
    }
    let want = file.metadata()?;
    let have = std::fs::metadata("/proc/thread-self/ns/net")?;
    if (want.dev(), want.ino()) != (have.dev(), have.ino()) {
        return Err(io::Error::other(format!(
            "setns into {ns:?} reported success but the thread is elsewhere"
        )));
    }
    Ok(())
}

/// Writes `value` to the sysctl `key` (dotted, e.g. `net.ipv4.ip_forward`) of the calling
/// thread's network namespace. Call only from inside [`in_namespace`].
pub(crate) fn write_sysctl(key: &str, value: &str) -> io::Result<()> {
    let path = Path::new("/proc/sys").join(key.replace('.', "/"));
    std::fs::write(&path, value)
        .map_err(|e| io::Error::new(e.kind(), format!("sysctl {key}={value}: {e}")))
}

/// Reads the sysctl `key` of namespace `ns`, trimmed.
pub fn read_sysctl(ns: &str, key: &str) -> io::Result<String> {
    let path = Path::new("/proc/sys").join(key.replace('.', "/"));
    in_namespace(ns, move || std::fs::read_to_string(&path))?
        .map(|s| s.trim().to_owned())
        .map_err(|e| io::Error::new(e.kind(), format!("sysctl {key} in {ns:?}: {e}")))
}

/// Removes namespaces left behind by lab owners that no longer run (a test run killed
/// with SIGKILL cannot run its drop guards). Only names starting with both
/// [`NAME_PREFIX`] and `prefix` and matching `sa-<tag>-<pid>-<n>-<role>` are candidates,
/// so namespaces of live processes and of anyone else are left alone.
///
/// Best effort: a namespace that cannot be removed is reported on stderr and skipped.
/// Returns the names removed.
pub fn cleanup_stale(prefix: &str) -> io::Result<Vec<String>> {
    let mut removed = Vec::new();
    for ns in list_namespaces()? {
        if !ns.starts_with(NAME_PREFIX) || !ns.starts_with(prefix) {
            continue;
        }
        let Some(pid) = owner_pid(&ns) else { continue };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        match run_argv(&["ip", "netns", "delete", &ns]) {
            Ok(_) => removed.push(ns),
            Err(e) => eprintln!("synack lab: cannot remove stale namespace: {e}"),
        }
    }
    Ok(removed)
}

/// A listener's accept loop, stopped and joined when the owning lab drops.
struct Acceptor {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Accepts and drops connections until told to stop, so a scan never fills the backlog.
///
/// The listener is non-blocking and polled: std offers no way to interrupt a blocking
/// `accept`, and a lab only needs the queue drained, not served quickly.
fn accept_loop(listener: TcpListener, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => drop(stream),
            // WouldBlock is the idle case; anything else (ECONNABORTED, EMFILE) must not
            // end the loop either, or the port would silently stop answering.
            Err(_) => thread::sleep(ACCEPT_POLL),
        }
    }
}

/// Namespaces that are deleted when this value drops, plus the listeners living in them.
///
/// Built one namespace at a time, so an error half-way through a lab's construction
/// drops exactly what was made.
pub(crate) struct NamespaceSet {
    names: Vec<String>,
    acceptors: Vec<Acceptor>,
}

impl NamespaceSet {
    pub(crate) fn new() -> Self {
        NamespaceSet {
            names: Vec::new(),
            acceptors: Vec::new(),
        }
    }

    /// Creates namespace `ns` and takes ownership of it.
    pub(crate) fn add(&mut self, ns: &str) -> io::Result<()> {
        run_argv(&["ip", "netns", "add", ns])?;
        self.names.push(ns.to_owned());
        Ok(())
    }

    /// Binds a listener inside `ns` and keeps accepting on it until the set drops.
    pub(crate) fn listen(&mut self, ns: &str, addr: SocketAddr) -> io::Result<SocketAddr> {
        let listener = in_namespace(ns, || TcpListener::bind(addr))?
            .map_err(|e| io::Error::new(e.kind(), format!("listen on {addr} in {ns:?}: {e}")))?;
        listener.set_nonblocking(true)?;
        // std listens with a backlog of 128; a scan of a thousand hosts sends more SYNs to
        // one wildcard listener at once than that, and a full accept queue drops SYNs.
        // listen() again on a listening socket only sets the backlog (capped by the
        // namespace's net.core.somaxconn, 4096).
        // SAFETY: the descriptor is the listener's own, open for this call.
        if unsafe { libc::listen(listener.as_raw_fd(), 4096) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let local = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = thread::Builder::new()
            .name(format!("lab-accept-{local}"))
            .spawn({
                let stop = Arc::clone(&stop);
                move || accept_loop(listener, &stop)
            })?;
        self.acceptors.push(Acceptor {
            stop,
            thread: Some(thread),
        });
        Ok(local)
    }
}

impl Drop for NamespaceSet {
    fn drop(&mut self) {
        // Listeners first: an open socket pins its namespace (and the veths in it) even
        // after the name is gone.
        for acceptor in &self.acceptors {
            acceptor.stop.store(true, Ordering::Relaxed);
        }
        for acceptor in &mut self.acceptors {
            if let Some(thread) = acceptor.thread.take() {
                let _ = thread.join();
            }
        }
        for ns in self.names.iter().rev() {
            if let Err(e) = run_argv(&["ip", "netns", "delete", ns]) {
                eprintln!("synack lab: cannot remove namespace: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_reads_names_we_make() {
        assert_eq!(owner_pid("sa-demo-4242-0-scan"), Some(4242));
        assert_eq!(owner_pid("sa-my-tag-17-3-tgt"), Some(17));
        assert_eq!(owner_pid(&name("x", 9, "lo")), Some(std::process::id()));
    }

    #[test]
    fn owner_pid_ignores_foreign_names() {
        for foreign in [
            "sa-",
            "sa-scan",
            "sa-1-2-scan",
            "sa-tag-pid-0-scan",
            "sa-tag-1-x-scan",
            "sa-tag-1-2-Scan",
            "blue-1-2-scan",
            "sa-tag-1-2-",
        ] {
            assert_eq!(owner_pid(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn tags_are_restricted() {
        assert!(check_tag("demo_1-a").is_ok());
        for bad in ["", "a/b", "a b", "../x", &"x".repeat(33)] {
            assert!(check_tag(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fresh_names_share_one_counter_value() {
        let [a, b] = fresh_names("t", ["scan", "tgt"]).unwrap();
        let (a, b) = (
            a.strip_suffix("-scan").unwrap(),
            b.strip_suffix("-tgt").unwrap(),
        );
        assert_eq!(a, b);
        let [c] = fresh_names("t", ["scan"]).unwrap();
        assert_ne!(c.strip_suffix("-scan").unwrap(), a);
    }
}
