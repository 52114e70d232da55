//! Addresses no TCP connection can reach (a subnet's broadcast address, the unspecified
//! address, multicast) are skipped with one line each; the scan of the others goes on.
//! Regression: a broadcast address among the targets made the whole scan exit 1 with
//! "Permission denied", printing nothing. Needs root (the namespace lab).

use serde_json::Value;
use synack_lab::{self as lab, Lab};

const BIN: &str = env!("CARGO_BIN_EXE_synack");

#[test]
fn unscannable_targets_are_skipped_with_a_word_and_the_rest_scanned() {
    if !lab::root_or_skip("unscannable_targets_are_skipped_with_a_word_and_the_rest_scanned") {
        return;
    }
    let lab = Lab::standard("unscan").expect("build lab");
    // The scanner sits on 198.18.1.0/24: .255 is its subnet's broadcast address.
    let out = lab::command(&lab.scanner, BIN)
        .args([
            "scan",
            "198.18.1.255",
            "198.18.2.1",
            "0.0.0.0",
            "224.0.0.1",
            "ff02::1",
            "-p",
            "22,81",
            "--json",
        ])
        .output()
        .expect("run synack");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}\n{stdout}");
    for (ip, why) in [
        ("198.18.1.255", "broadcast address of a subnet"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
    ] {
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains(&format!("{ip} skipped")))
            .collect();
        assert_eq!(lines.len(), 1, "{ip}: {stderr}");
        assert!(lines[0].contains(why), "{}", lines[0]);
    }
    let objects: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let ports: Vec<(&str, u64, &str)> = objects
        .iter()
        .filter(|v| v["type"] == "port")
        .map(|v| {
            (
                v["target"].as_str().unwrap(),
                v["port"].as_u64().unwrap(),
                v["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        vec![("198.18.2.1", 22, "open"), ("198.18.2.1", 81, "closed")]
    );
}
