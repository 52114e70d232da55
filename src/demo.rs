//! `synack demo`: a throw-away lab (scanner, router, target in network namespaces, a
//! port for each way a SYN can be answered), scanned over IPv4 and IPv6, then removed —
//! also on Ctrl-C or error, since the lab is dropped on every path out of here.

use std::io;

use synack_lab::{Lab, STANDARD_PORTS};

/// What `synack demo` can show on this machine.
pub enum Plan {
    /// Root: build the lab and scan it.
    Lab,
    /// No root: replay the bundled capture of the same lab.
    Bundled(synack::report::ScanReport),
}

/// Decides what the demo shows: a live lab needs root itself (namespaces, firewall
/// rules), not only packet capture. Without it, says so on stderr and replays the bundled
/// capture.
pub fn plan() -> Result<Plan, synack_core::capfile::CapfileError> {
    if synack::privilege::Privileges::current().root {
        return Ok(Plan::Lab);
    }
    eprintln!(
        "synack demo builds network namespaces and firewall rules, which needs root.\n\
         Without root, here is the replay of a capture of the same lab, bundled in synack\n\
         (the file is capture-fixtures/{BUNDLED_NAME} in the source tree):\n"
    );
    let reader = synack_core::capfile::CaptureReader::from_reader(
        Box::new(io::Cursor::new(BUNDLED)),
        BUNDLED_NAME.to_string(),
    )?;
    Ok(Plan::Bundled(synack::replay::replay(vec![reader])))
}

/// Builds the lab, runs `synack scan SCAN_ARGS` in its scanner namespace (the arguments
/// were validated by the command line already), removes the lab; returns the exit code.
pub fn run_lab(scan_args: &[String]) -> i32 {
    match demo(scan_args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("synack demo: {e}");
            1
        }
    }
}

/// A real capture of `synack scan 198.18.2.1 -p 22,80-90` in the standard lab (made by
/// capture-fixtures/make.sh), shown when the demo cannot build a lab.
const BUNDLED: &[u8] = include_bytes!("../capture-fixtures/veth-v4-standard.pcap");
const BUNDLED_NAME: &str = "veth-v4-standard.pcap";

fn demo(scan_args: &[String]) -> io::Result<i32> {
    // Ctrl-C reaches the scan (same process group), which prints what it found; this
    // process must outlive it to remove the lab. So SIGINT and SIGTERM stay blocked here
    // (pending, not lost); the scan inherits the mask and takes them with sigwait.
    let signals = synack::signals::block_stop_signals();
    eprintln!("synack demo: building the lab (scanner ── router ── target) …");
    let lab = Lab::standard("demo")?;
    if synack::signals::pending(&signals) {
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
    let status = synack_lab::command(&lab.scanner, exe.to_str().unwrap_or("synack"))
        .args([
            "scan",
            "198.18.2.1",
            "2001:db8:2::1",
            "-p",
            &ports.join(","),
        ])
        .args(scan_args)
        .status()?;
    drop(lab);
    eprintln!("synack demo: lab removed");
    Ok(status.code().unwrap_or(130))
}
