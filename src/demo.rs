//! `synack demo`: a throw-away lab (scanner, router, target in network namespaces, a
//! port for each way a SYN can be answered), scanned over IPv4 and IPv6, then removed —
//! also on Ctrl-C or error, since the lab is dropped on every path out of here.

use std::io;

use crate::lab::{self, Lab, STANDARD_PORTS};

/// Runs the demo; returns the exit code.
pub fn run(extra_args: &[String]) -> i32 {
    if !running_as_root() {
        eprintln!(
            "synack demo builds network namespaces and firewall rules, which needs root.\n\
             Without root, replay the bundled capture of the same lab instead:\n  \
             synack replay capture-fixtures/lab-v4-veth.pcap"
        );
        return 2;
    }
    match demo(extra_args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("synack demo: {e}");
            1
        }
    }
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn demo(extra_args: &[String]) -> io::Result<i32> {
    // Ctrl-C reaches the scan (same process group), which prints what it found; this
    // process must outlive it to remove the lab. So SIGINT and SIGTERM stay blocked here
    // (pending, not lost); the scan inherits the mask and takes them with sigwait.
    let signals = block_stop_signals();
    eprintln!("synack demo: building the lab (scanner ── router ── target) …");
    let lab = Lab::standard("demo")?;
    if stop_signal_pending(&signals) {
        drop(lab);
        eprintln!("synack demo: interrupted; lab removed");
        return Ok(130);
    }
    println!(
        "The lab: scanner 198.18.1.1 ── router 198.18.1.254 / 198.18.2.254 ── target 198.18.2.1"
    );
    println!("(and 2001:db8:1::1 ── 2001:db8:1::fe / 2001:db8:2::fe ── 2001:db8:2::1)\n");
    println!("{:<6} {:<78}", "PORT", "SET-UP");
    for case in STANDARD_PORTS {
        println!("{:<6} {}", case.port, case.setup);
    }
    println!();
    let ports: Vec<String> = STANDARD_PORTS.iter().map(|c| c.port.to_string()).collect();
    let exe = std::env::current_exe()?;
    let status = lab::command(&lab.scanner, exe.to_str().unwrap_or("synack"))
        .args([
            "scan",
            "198.18.2.1",
            "2001:db8:2::1",
            "-p",
            &ports.join(","),
        ])
        // Without options of its own, the demo shows the teaching views.
        .args(if extra_args.is_empty() {
            &["--ladder", "--explain"][..]
        } else {
            &[][..]
        })
        .args(extra_args)
        .status()?;
    drop(lab);
    eprintln!("synack demo: lab removed");
    Ok(status.code().unwrap_or(130))
}

fn block_stop_signals() -> libc::sigset_t {
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

fn stop_signal_pending(set: &libc::sigset_t) -> bool {
    // SAFETY: sigpending writes into a sigset_t we own; sigismember only reads.
    unsafe {
        let mut pending: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut pending);
        [libc::SIGINT, libc::SIGTERM]
            .iter()
            .any(|&s| libc::sigismember(set, s) == 1 && libc::sigismember(&pending, s) == 1)
    }
}
