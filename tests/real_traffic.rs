//! Issue 10's real-traffic items, each on a committed capture (capture-fixtures/): answers
//! stored before their SYN, one-sided captures, many clients on one port (outcome counts,
//! a bounded trace, `--connections`), and `--filter`. The fixtures' full expected outputs
//! are checked by tests/fixtures.rs; these pin the points of each item.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_synack");

fn replay(args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("capture-fixtures"))
        .arg("replay")
        .args(args)
        .output()
        .expect("run synack")
}

fn lines(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn port(objs: &[Value], p: u64) -> &Value {
    objs.iter()
        .find(|o| o["type"] == "port" && o["port"] == p)
        .unwrap_or_else(|| panic!("port {p} reported"))
}

#[test]
fn a_syn_ack_stored_before_its_syn_still_opens_the_port() {
    let objs = lines(&replay(&["crafted-order.pcap", "--json"]));
    let p80 = port(&objs, 80);
    assert_eq!(
        (p80["state"].as_str(), p80["reason"].as_str()),
        (Some("open"), Some("syn-ack"))
    );
    assert_eq!(p80["trace"][1]["flags"], "SYN/ACK");
    assert_eq!(p80["trace"][1]["early"], true);
    assert_eq!(port(&objs, 81)["reason"], "reset");
    // Wrong ack, or held too long: not the SYN's answer.
    assert_eq!(port(&objs, 82)["reason"], "no-response");
    assert_eq!(port(&objs, 83)["reason"], "no-response");
}

#[test]
fn a_client_only_capture_says_the_handshake_completed_not_dropped() {
    let objs = lines(&replay(&["crafted-one-sided.pcap", "--json"]));
    for p in [80, 443] {
        let v = port(&objs, p);
        assert_eq!(v["state"], "open", "{v}");
        assert_eq!(v["reason"], "ack-implies-syn-ack", "{v}");
    }
    // AccECN's AE flag shows among the SYN's flags.
    assert_eq!(port(&objs, 443)["trace"][0]["flags"], "SYN/ECE/CWR/AE");
    let text = replay(&["crafted-one-sided.pcap", "--ascii", "--explain"]);
    let s = String::from_utf8_lossy(&text.stdout);
    let block: String = s
        .lines()
        .skip_while(|l| !l.starts_with("443/tcp"))
        .take_while(|l| !l.starts_with("203.0.113.80:"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(block.contains("not captured"), "{block}");
    assert!(!block.contains("DROP"), "{block}");
}

#[test]
fn many_clients_count_outcomes_and_are_not_retries() {
    let objs = lines(&replay(&["veth-v4-many-clients.pcap", "--json"]));
    let p = port(&objs, 443);
    assert_eq!(p["state"], "open");
    assert_eq!(p["attempts"], 50);
    assert_eq!(
        p["outcomes"],
        serde_json::json!({"syn-ack": 45, "reset": 5})
    );
    // Bounded: the first 4 attempts and the first reset one, the rest counted.
    let syns = p["trace"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["flags"] == "SYN")
        .count();
    assert_eq!(syns, 5);
    assert!(p["left_out"].as_u64().unwrap() > 200, "{}", p["left_out"]);
    assert!(
        p["trace"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["client"].is_string())
    );

    let text = replay(&["veth-v4-many-clients.pcap", "--ascii"]);
    let s = String::from_utf8_lossy(&text.stdout);
    assert!(!s.contains("new source port"), "{s}");
    assert!(
        s.contains("50 attempts: 45 SYN/ACK, 5 reset by a firewall on the host"),
        "{s}"
    );
    assert!(s.contains("packets left out"), "{s}");
}

#[test]
fn connections_give_one_row_per_attempt_with_its_client() {
    let objs = lines(&replay(&[
        "veth-v4-many-clients.pcap",
        "--connections",
        "--json",
    ]));
    let rows: Vec<&Value> = objs.iter().filter(|o| o["type"] == "connection").collect();
    assert_eq!(rows.len(), 51);
    let mut reset: Vec<&str> = rows
        .iter()
        .filter(|r| r["port"] == 443 && r["reason"] == "reset")
        .map(|r| r["client"].as_str().unwrap())
        .collect();
    reset.sort_unstable();
    assert_eq!(
        reset,
        [
            "198.18.1.20",
            "198.18.1.25",
            "198.18.1.30",
            "198.18.1.35",
            "198.18.1.40"
        ]
    );
    for r in rows
        .iter()
        .filter(|r| r["reason"] == "reset" && r["port"] == 443)
    {
        assert_eq!(r["responder"], "target-firewall", "{r}");
        assert_eq!(r["history"], "Sr", "{r}");
    }
    let open = rows.iter().filter(|r| r["state"] == "open").count();
    assert_eq!(open, 45);
    assert!(
        rows.iter()
            .all(|r| r["history"].as_str().unwrap().starts_with('S'))
    );
    let summary = objs.last().unwrap();
    assert_eq!(summary["connections"], 51);

    let text = replay(&["veth-v4-many-clients.pcap", "--connections", "--ascii"]);
    let s = String::from_utf8_lossy(&text.stdout);
    assert!(s.starts_with("START"), "{s}");
    assert_eq!(s.lines().filter(|l| l.contains(" 198.18.2.1 ")).count(), 51);
}

#[test]
fn filter_uses_tcpdumps_language_and_a_bad_expression_exits_2_naming_it() {
    let objs = lines(&replay(&[
        "veth-v4-standard.pcap",
        "--json",
        "--filter",
        "tcp port 81",
    ]));
    let ports: Vec<u64> = objs
        .iter()
        .filter(|o| o["type"] == "port")
        .map(|o| o["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, [81]);
    let all = lines(&replay(&["veth-v4-standard.pcap", "--json"]));
    // The same packets and verdict (the baseline saw only these packets, so the
    // evidence may be worded from other ones).
    for k in ["state", "reason", "responder", "trace"] {
        assert_eq!(port(&objs, 81)[k], port(&all, 81)[k], "{k}");
    }

    let bad = replay(&["veth-v4-standard.pcap", "--filter", "tcp port eighty"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(bad.stdout.is_empty());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("'tcp port eighty'") && err.contains("eighty"),
        "{err}"
    );

    // An expression that cannot apply to a link type skips its frames with a warning.
    let sll = replay(&[
        "any-nmap-v4.pcap",
        "--json",
        "--filter",
        "ether host 02:00:00:00:00:01",
    ]);
    let objs = lines(&sll);
    let summary = objs.last().unwrap();
    assert!(
        summary["warnings"][0]
            .as_str()
            .unwrap()
            .contains("link type 276"),
        "{summary}"
    );
}
