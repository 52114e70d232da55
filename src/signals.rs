//! SIGINT and SIGTERM handling shared by `scan` and `demo`: the signals are blocked
//! (kept pending, never lost, never run in signal context) and taken synchronously.

/// Blocks SIGINT and SIGTERM in the calling thread (and so in the threads it spawns
/// afterwards, and across exec); returns the set for [`wait`] or [`pending`].
pub fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data set up by sigemptyset/sigaddset; pthread_sigmask
    // changes only this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Waits for one of the blocked signals; None if sigwait fails.
pub fn wait(set: &libc::sigset_t) -> Option<libc::c_int> {
    let mut sig: libc::c_int = 0;
    // SAFETY: set is a valid signal set; sig is valid for writes.
    (unsafe { libc::sigwait(set, &mut sig) } == 0).then_some(sig)
}

/// Whether one of the signals in `set` is pending.
pub fn pending(set: &libc::sigset_t) -> bool {
    // SAFETY: sigpending writes into a sigset_t we own; sigismember only reads.
    unsafe {
        let mut pending: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut pending);
        [libc::SIGINT, libc::SIGTERM]
            .iter()
            .any(|&s| libc::sigismember(set, s) == 1 && libc::sigismember(&pending, s) == 1)
    }
}
