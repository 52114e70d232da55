//! `synack demo`: a throw-away lab (scanner, router, target in network namespaces, a
//! port for each way a SYN can be answered), scanned over IPv4 and IPv6, then removed —
//! also on Ctrl-C or error, since the lab is dropped on every path out of here.

use std::io;
use std::process::Command;

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
    // process must outlive it to remove the lab, so it ignores SIGINT meanwhile.
    ignore_sigint();
    eprintln!("synack demo: building the lab (scanner ── router ── target) …");
    let lab = Lab::standard("demo")?;
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
        .args(extra_args)
        .status()?;
    drop(lab);
    eprintln!("synack demo: lab removed");
    Ok(status.code().unwrap_or(130))
}

fn ignore_sigint() {
    // SAFETY: setting a signal's disposition to SIG_IGN runs no code in signal context.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
}

/// A command in the lab's scanner namespace, for tests.
pub fn scanner_command(lab: &Lab, program: &str) -> Command {
    lab::command(&lab.scanner, program)
}
