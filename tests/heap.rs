//! A replay's small-block heap is advised huge pages (`alloc::advise_heap_huge_pages`,
//! called as a replay starts): its mapping carries the advice (`hg` in /proc/PID/smaps)
//! and is the reserve's size. No root needed.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_synack");

/// (size in KiB, whether advised huge pages) of each [heap] mapping of `pid`.
fn heap_mappings(pid: u32) -> Vec<(u64, bool)> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut out = Vec::new();
    let mut in_heap = false;
    let mut size = 0;
    for line in smaps.lines() {
        if line.contains(" rw-p ") || line.contains(" r--p ") || line.contains(" r-xp ") {
            in_heap = line.ends_with("[heap]");
        } else if in_heap && let Some(kb) = line.strip_prefix("Size:") {
            size = kb.trim().trim_end_matches(" kB").parse().unwrap_or(0);
        } else if in_heap && let Some(flags) = line.strip_prefix("VmFlags:") {
            out.push((size, flags.split_whitespace().any(|f| f == "hg")));
        }
    }
    out
}

#[test]
fn the_heap_of_a_running_synack_is_advised_huge_pages() {
    if !std::path::Path::new("/sys/kernel/mm/transparent_hugepage").exists() {
        eprintln!("SKIPPED: this kernel has no transparent huge pages");
        return;
    }
    // A replay from a pipe that stays open: synack runs, waiting for packets.
    let mut child = Command::new(BIN)
        .args(["replay", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run synack");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        seen = heap_mappings(child.id());
        if seen.iter().any(|&(_, hg)| hg) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(child.stdin.take());
    let _ = child.wait();
    let advised: u64 = seen.iter().filter(|m| m.1).map(|m| m.0).sum();
    assert!(
        advised >= 16 * 1024,
        "advised heap {advised} KiB, heap mappings (KiB, advised): {seen:?}"
    );
}
