//! Who answered, on paths that are not the standard lab's (issue 13): the real binary
//! scanning namespaces with real SYNPROXY, DSCP, DNAT and TTL rules. Needs root; under
//! CI=true a missing root is a failure, never a silent skip.

use std::collections::BTreeMap;

use serde_json::Value;
use synack_lab::{self as lab, Family, Lab, Role};

const BIN: &str = env!("CARGO_BIN_EXE_synack");

/// Scans `target` on `ports` from the scanner namespace; the port objects by port.
fn scan(lab: &Lab, target: &str, ports: &str) -> BTreeMap<u16, Value> {
    let out = lab
        .command(&lab.scanner, BIN)
        .args(["scan", target, "-p", ports, "--json", "--all"])
        .output()
        .expect("run synack");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "synack failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "port")
        .map(|v| (v["port"].as_u64().unwrap() as u16, v))
        .collect()
}

/// (state, reason, responder) of one port, with the verdict for the failure message.
#[track_caller]
fn expect(ports: &BTreeMap<u16, Value>, port: u16, want: (&str, &str, &str), ctx: &str) {
    let v = &ports[&port];
    assert_eq!(
        (
            v["state"].as_str().unwrap(),
            v["reason"].as_str().unwrap(),
            v["responder"].as_str().unwrap()
        ),
        want,
        "{ctx} port {port}: {v}"
    );
}

fn evidence(ports: &BTreeMap<u16, Value>, port: u16) -> String {
    ports[&port]["evidence"].to_string()
}

fn syn_proxy(at: Role, tag: &str) {
    let lab = Lab::syn_proxy(tag, at).expect("lab");
    for family in Family::BOTH {
        let ctx = format!("{family:?} proxy on {at:?}");
        let ports = scan(&lab, &family.target().to_string(), "22,79,80,81");
        expect(&ports, 22, ("open", "syn-ack", "target"), &ctx);
        expect(&ports, 79, ("closed", "reset", "target"), &ctx);
        // Closed behind the proxy: not "open syn-ack target".
        expect(&ports, 81, ("closed", "syn-proxy", "target"), &ctx);
        expect(&ports, 80, ("open", "syn-proxy", "target"), &ctx);
        let e = evidence(&ports, 81);
        assert!(e.contains("window 0"), "{ctx}: {e}");
        assert!(e.contains("after our ACK a RST"), "{ctx}: {e}");
        let closer = e.contains("1 hop closer");
        assert_eq!(closer, at == Role::Router, "{ctx}: {e}");
    }
}

#[test]
fn syn_proxy_on_the_target() {
    if !synack_lab::root_or_skip("syn_proxy_on_the_target") {
        return;
    }
    syn_proxy(Role::Target, "synproxy-tgt");
}

#[test]
fn syn_proxy_on_the_router() {
    if !synack_lab::root_or_skip("syn_proxy_on_the_router") {
        return;
    }
    syn_proxy(Role::Router, "synproxy-rtr");
}

#[test]
fn dscp_cleared_for_one_port_and_re_marked_by_a_policer() {
    if !synack_lab::root_or_skip("dscp_cleared_for_one_port_and_re_marked_by_a_policer") {
        return;
    }
    let lab = Lab::dscp_path("dscp-path").expect("lab");
    for family in Family::BOTH {
        let ctx = format!("{family:?}");
        let ports = scan(&lab, &family.target().to_string(), "22,79,81,91,92,100-119");
        expect(&ports, 79, ("closed", "reset", "target"), &ctx);
        for p in [lab::DSCP_AF12_PORT, lab::DSCP_AF13_PORT] {
            expect(&ports, p, ("closed", "reset", "target"), &ctx);
            assert!(evidence(&ports, p).contains("re-marked"), "{ctx}");
        }
        // The policer: closed ports stay the stack's, whether in profile or re-marked.
        for p in lab::POLICED_PORTS {
            expect(&ports, p, ("closed", "reset", "target"), &ctx);
        }
        let cleared = lab::DSCP_CLEARED_PORT;
        let e = evidence(&ports, cleared);
        assert!(!e.contains("forged on the target host"), "{ctx}: {e}");
        match family {
            // The flow label proves the stack's authorship over the DSCP mismatch.
            Family::V6 => expect(&ports, cleared, ("closed", "reset", "target"), &ctx),
            // IPv4 has only the DSCP, and the path is seen re-marking: no accusation.
            Family::V4 => {
                expect(&ports, cleared, ("closed", "reset", "unknown"), &ctx);
                assert!(e.contains("the path re-marks DSCP"), "{ctx}: {e}");
            }
        }
    }
}

#[test]
fn dnat_ports_beside_the_routers_own() {
    if !synack_lab::root_or_skip("dnat_ports_beside_the_routers_own") {
        return;
    }
    let lab = Lab::dnat_router("dnat").expect("lab");
    for family in Family::BOTH {
        let ctx = format!("{family:?}");
        let ports = scan(
            &lab,
            &family.router_scanner_side().to_string(),
            "20,21,23,8080-8085",
        );
        for p in lab::DNAT_OPEN_PORTS {
            expect(&ports, p, ("open", "syn-ack", "target"), &ctx);
        }
        expect(
            &ports,
            lab::DNAT_CLOSED_PORT,
            ("closed", "reset", "target"),
            &ctx,
        );
        // Out-voted by the forwarded ports before: "filtered, middlebox, 1 hop closer".
        for p in lab::ROUTER_CLOSED_PORTS {
            expect(&ports, p, ("closed", "reset", "target"), &ctx);
            assert!(evidence(&ports, p).contains("several distances"), "{ctx}");
        }
        let p = lab::ROUTER_REJECT_PORT;
        expect(&ports, p, ("filtered", "reset", "unknown"), &ctx);
        let e = evidence(&ports, p);
        assert!(e.contains("(on the target or on the path)"), "{ctx}: {e}");
    }
}

/// The router's RST with the target's TTL is byte-identical to the target's own REJECT
/// (docs/verdicts.md): caught as forged; where it was made stays the likelier host.
#[test]
fn a_router_rst_with_the_targets_ttl() {
    if !synack_lab::root_or_skip("a_router_rst_with_the_targets_ttl") {
        return;
    }
    let lab = Lab::ttl_forging_router("ttl-forger").expect("lab");
    for family in Family::BOTH {
        let ctx = format!("{family:?}");
        let ports = scan(&lab, &family.target().to_string(), "22,79,86");
        expect(&ports, 79, ("closed", "reset", "target"), &ctx);
        let p = lab::TTL_FORGED_PORT;
        let v = &ports[&p];
        assert_eq!(v["state"], "filtered", "{ctx}: {v}");
        assert_eq!(v["reason"], "reset", "{ctx}: {v}");
        assert_ne!(v["responder"], "target", "{ctx}: {v}");
        let e = evidence(&ports, p);
        assert!(e.contains("matches the target's"), "{ctx}: {e}");
    }
}
