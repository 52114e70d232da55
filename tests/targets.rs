//! Target and port specification parsing: every syntax, every error, and properties.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::net::IpAddr;

use proptest::prelude::*;
use synack_core::targets::{
    DEFAULT_PORTS, MAX_CIDR_ADDRESSES, Resolver, SpecError, Target, format_ports, parse_ports,
    parse_targets,
};

/// A resolver answering from a fixed table and recording every question.
struct FakeResolver {
    table: Vec<(&'static str, Vec<&'static str>)>,
    asked: RefCell<Vec<String>>,
}

impl FakeResolver {
    fn new() -> Self {
        FakeResolver {
            table: vec![
                ("lab.example", vec!["198.18.2.1"]),
                (
                    "dual.example",
                    vec!["2001:db8:2::1", "198.18.2.2", "198.18.2.3"],
                ),
                ("v6only.example", vec!["2001:db8:2::5", "2001:db8:2::6"]),
                ("empty.example", vec![]),
                ("alias.example", vec!["198.18.2.1"]),
            ],
            asked: RefCell::new(Vec::new()),
        }
    }
}

impl Resolver for FakeResolver {
    fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        self.asked.borrow_mut().push(host.to_string());
        self.table
            .iter()
            .find(|(name, _)| *name == host)
            .map(|(_, addrs)| addrs.iter().map(|a| a.parse().unwrap()).collect())
            .ok_or_else(|| "Name or service not known".to_string())
    }
}

fn targets(specs: &[&str]) -> Result<Vec<Target>, SpecError> {
    let specs: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
    parse_targets(&specs, &FakeResolver::new())
}

fn addrs(specs: &[&str]) -> Vec<String> {
    targets(specs)
        .unwrap()
        .iter()
        .map(Target::display)
        .collect()
}

fn target_err(specs: &[&str]) -> String {
    targets(specs).unwrap_err().to_string()
}

fn port_err(spec: &str) -> String {
    parse_ports(spec).unwrap_err().to_string()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

// ---- ports: syntax ----

#[test]
fn single_ports_and_lists() {
    assert_eq!(parse_ports("22").unwrap(), vec![22]);
    assert_eq!(parse_ports("22,80").unwrap(), vec![22, 80]);
    assert_eq!(parse_ports("1").unwrap(), vec![1]);
    assert_eq!(parse_ports("65535").unwrap(), vec![65535]);
    assert_eq!(parse_ports("0022").unwrap(), vec![22]);
}

#[test]
fn ranges() {
    assert_eq!(
        parse_ports("1-1024").unwrap(),
        (1..=1024).collect::<Vec<u16>>()
    );
    assert_eq!(parse_ports("80-80").unwrap(), vec![80]);
    assert_eq!(
        parse_ports("-100").unwrap(),
        (1..=100).collect::<Vec<u16>>()
    );
    assert_eq!(
        parse_ports("60000-").unwrap(),
        (60000..=65535).collect::<Vec<u16>>()
    );
}

#[test]
fn dash_alone_is_every_port() {
    let all = parse_ports("-").unwrap();
    assert_eq!(all.len(), 65535);
    assert_eq!(all.first(), Some(&1));
    assert_eq!(all.last(), Some(&65535));
}

#[test]
fn combinations_are_sorted_and_deduplicated() {
    let mut want = vec![22];
    want.extend(80..=90);
    want.push(443);
    assert_eq!(parse_ports("22,80-90,443").unwrap(), want);
    assert_eq!(parse_ports("443,22,85-90,80-86,22").unwrap(), want);
    assert_eq!(parse_ports(" 22 , 80-90,\t443 ").unwrap(), want);
}

// ---- ports: errors ----

#[test]
fn port_zero_is_rejected_naming_it() {
    let e = parse_ports("0-10").unwrap_err();
    assert_eq!(
        e,
        SpecError::PortOutOfRange {
            port: "0".into(),
            spec: "0-10".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "invalid port '0' in '-p 0-10': ports are 1 to 65535"
    );
    assert!(port_err("0").contains("'0'"));
    assert!(port_err("-0").contains("'0'"));
    assert!(port_err("22,000").contains("'000'"));
}

#[test]
fn ports_above_65535_are_rejected_naming_them() {
    assert_eq!(
        port_err("65536"),
        "invalid port '65536' in '-p 65536': ports are 1 to 65535"
    );
    assert!(port_err("80-70000").contains("'70000'"));
    assert!(port_err("99999999999999999999999").contains("'99999999999999999999999'"));
}

#[test]
fn reversed_range_is_rejected_naming_it() {
    let e = parse_ports("22,90-80").unwrap_err();
    assert_eq!(
        e,
        SpecError::ReversedPortRange {
            range: "90-80".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "reversed port range '90-80' (start must not exceed end)"
    );
}

#[test]
fn garbage_items_are_rejected_naming_them() {
    for (spec, item) in [
        ("+22", "+22"),
        ("22-80-90", "22-80-90"),
        ("--", "--"),
        ("1 2", "1 2"),
        ("X:80", "X:80"),
        ("0x50", "0x50"),
        ("80-9a", "80-9a"),
        ("٣", "٣"), // a non-ASCII digit
    ] {
        let e = parse_ports(spec).unwrap_err();
        assert_eq!(
            e,
            SpecError::BadPortItem {
                item: item.into(),
                spec: spec.into()
            },
            "{spec}"
        );
        let text = e.to_string();
        assert!(text.contains(&format!("'{item}'")), "{text}");
        assert!(!text.contains('\n'));
    }
}

#[test]
fn empty_items_are_rejected() {
    for spec in ["22,,80", "22,", ",22", ",", "22, ,80"] {
        let e = parse_ports(spec).unwrap_err();
        assert_eq!(e, SpecError::EmptyPortItem { spec: spec.into() });
        assert!(e.to_string().contains(&format!("'-p {spec}'")));
    }
}

#[test]
fn empty_list_is_rejected() {
    assert_eq!(parse_ports("").unwrap_err(), SpecError::EmptyPortList);
    assert_eq!(parse_ports("  ").unwrap_err(), SpecError::EmptyPortList);
    assert_eq!(port_err(""), "empty port list");
}

// ---- format_ports ----

#[test]
fn format_compresses_runs() {
    assert_eq!(format_ports(&[]), "");
    assert_eq!(format_ports(&[22]), "22");
    assert_eq!(format_ports(&[22, 80, 81, 82, 443]), "22,80-82,443");
    assert_eq!(format_ports(&[443, 22, 80, 22, 81]), "22,80-81,443");
    assert_eq!(format_ports(&parse_ports("-").unwrap()), "1-65535");
    assert_eq!(format_ports(&[65534, 65535]), "65534-65535");
}

// ---- default ports ----

#[test]
fn default_ports_are_sorted_unique_and_cover_the_classics() {
    assert!(DEFAULT_PORTS.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(DEFAULT_PORTS.len(), 100);
    assert!(!DEFAULT_PORTS.contains(&0));
    for p in [
        21, 22, 23, 25, 53, 80, 110, 111, 135, 139, 143, 443, 445, 993, 995, 1723, 3306, 3389,
        5900, 8080,
    ] {
        assert!(DEFAULT_PORTS.contains(&p), "{p}");
    }
    // The list is expressible in -p syntax and survives the trip.
    assert_eq!(
        parse_ports(&format_ports(DEFAULT_PORTS)).unwrap(),
        DEFAULT_PORTS
    );
}

// ---- targets: literals ----

#[test]
fn ipv4_and_ipv6_literals() {
    let t = targets(&["198.18.2.1", "2001:db8:2::1", "[2001:db8:2::2]", "::1"]).unwrap();
    assert_eq!(
        t,
        vec![
            Target {
                addr: ip("198.18.2.1"),
                name: None
            },
            Target {
                addr: ip("2001:db8:2::1"),
                name: None
            },
            Target {
                addr: ip("2001:db8:2::2"),
                name: None
            },
            Target {
                addr: ip("::1"),
                name: None
            },
        ]
    );
}

#[test]
fn display_never_brackets() {
    assert_eq!(
        addrs(&["[2001:db8:2::1]", "198.18.2.1", "2001:DB8:2:0:0:0:0:1"]),
        ["2001:db8:2::1", "198.18.2.1"]
    );
}

#[test]
fn surrounding_whitespace_is_ignored() {
    assert_eq!(addrs(&[" 198.18.2.1 "]), ["198.18.2.1"]);
}

#[test]
fn malformed_literals_are_rejected_naming_them() {
    for (spec, why) in [
        ("198.18.2", "not a valid IPv4 address"),
        ("256.1.1.1", "not a valid IPv4 address"),
        ("3232235777", "not a valid IPv4 address"),
        ("198.18.0.1-5", "octet ranges are not supported"),
        ("198.18.0.*", "octet ranges are not supported"),
        ("2001:db8::g", "not a valid IPv6 address"),
        ("2001:db8:::1", "not a valid IPv6 address"),
        ("fe80::1%eth0", "zone indices"),
        ("[198.18.2.1]", "brackets must enclose an IPv6 address"),
        ("[2001:db8::1", "brackets must enclose an IPv6 address"),
        ("[]", "brackets must enclose an IPv6 address"),
        ("", "empty target"),
        ("foo bar", "not an IP address, CIDR block or hostname"),
        ("a..b", "not an IP address, CIDR block or hostname"),
        ("a,b", "not an IP address, CIDR block or hostname"),
        ("bücher.example", "punycode"),
    ] {
        let text = target_err(&[spec]);
        assert!(
            text.starts_with(&format!("invalid target '{spec}': ")),
            "{text}"
        );
        assert!(text.contains(why), "{spec}: {text}");
    }
}

#[test]
fn overlong_hostnames_are_rejected() {
    let label = "a".repeat(64);
    assert!(target_err(&[&format!("{label}.example")]).starts_with("invalid target"));
    let long = ["abcdefghi"; 26].join("."); // 259 characters
    assert!(target_err(&[&long]).starts_with("invalid target"));
}

// ---- targets: hostnames ----

#[test]
fn hostname_keeps_the_name_typed() {
    assert_eq!(
        targets(&["lab.example"]).unwrap(),
        vec![Target {
            addr: ip("198.18.2.1"),
            name: Some("lab.example".into())
        }]
    );
}

#[test]
fn hostname_prefers_the_first_ipv4_address() {
    let t = targets(&["dual.example"]).unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].display(), "198.18.2.2");
    assert_eq!(t[0].name.as_deref(), Some("dual.example"));
}

#[test]
fn hostname_without_ipv4_uses_the_first_ipv6_address() {
    assert_eq!(addrs(&["v6only.example"]), ["2001:db8:2::5"]);
}

#[test]
fn unknown_host_names_it() {
    let e = targets(&["nosuch.invalid"]).unwrap_err();
    assert_eq!(
        e,
        SpecError::UnknownHost {
            host: "nosuch.invalid".into(),
            reason: "Name or service not known".into()
        }
    );
    assert!(
        e.to_string().starts_with("unknown host 'nosuch.invalid'"),
        "{e}"
    );
    assert_eq!(
        SpecError::UnknownHost {
            host: "nosuch.invalid".into(),
            reason: String::new()
        }
        .to_string(),
        "unknown host 'nosuch.invalid'"
    );
}

#[test]
fn host_with_no_addresses_is_unknown() {
    assert!(target_err(&["empty.example"]).starts_with("unknown host 'empty.example'"));
}

#[test]
fn literals_and_cidr_never_reach_the_resolver() {
    let resolver = FakeResolver::new();
    let specs: Vec<String> = [
        "198.18.2.1",
        "[2001:db8::1]",
        "198.18.2.0/30",
        "lab.example",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    parse_targets(&specs, &resolver).unwrap();
    assert_eq!(*resolver.asked.borrow(), ["lab.example"]);
}

#[test]
fn each_name_is_resolved_once() {
    let resolver = FakeResolver::new();
    let specs = vec!["lab.example".to_string(), "lab.example".to_string()];
    assert_eq!(parse_targets(&specs, &resolver).unwrap().len(), 1);
    assert_eq!(resolver.asked.borrow().len(), 1);
}

#[test]
fn invalid_hostnames_never_reach_the_resolver() {
    let resolver = FakeResolver::new();
    let specs = vec!["foo bar".to_string()];
    assert!(parse_targets(&specs, &resolver).is_err());
    assert!(resolver.asked.borrow().is_empty());
}

#[test]
fn trailing_dot_and_underscore_hostnames_are_resolved() {
    let resolver = FakeResolver::new();
    for name in ["lab.example.", "_srv.lab.example", "localhost"] {
        let _ = parse_targets(&[name.to_string()], &resolver);
    }
    assert_eq!(
        *resolver.asked.borrow(),
        ["lab.example.", "_srv.lab.example", "localhost"]
    );
}

// ---- targets: CIDR ----

#[test]
fn ipv4_cidr_includes_network_and_broadcast() {
    assert_eq!(
        addrs(&["198.18.2.0/30"]),
        ["198.18.2.0", "198.18.2.1", "198.18.2.2", "198.18.2.3"]
    );
}

#[test]
fn ipv6_cidr() {
    assert_eq!(
        addrs(&["2001:db8::/126"]),
        ["2001:db8::", "2001:db8::1", "2001:db8::2", "2001:db8::3"]
    );
    assert_eq!(addrs(&["[2001:db8::1]/127"]), ["2001:db8::", "2001:db8::1"]);
}

#[test]
fn cidr_edge_prefixes() {
    assert_eq!(addrs(&["198.18.2.7/32"]), ["198.18.2.7"]);
    assert_eq!(addrs(&["198.18.2.7/31"]), ["198.18.2.6", "198.18.2.7"]);
    assert_eq!(addrs(&["2001:db8::7/128"]), ["2001:db8::7"]);
    assert_eq!(
        addrs(&["255.255.255.255/31"]),
        ["255.255.255.254", "255.255.255.255"]
    );
    let top = addrs(&["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/127"]);
    assert_eq!(top.len(), 2);
}

#[test]
fn cidr_host_bits_are_masked() {
    assert_eq!(
        addrs(&["198.18.2.3/30"]),
        ["198.18.2.0", "198.18.2.1", "198.18.2.2", "198.18.2.3"]
    );
}

#[test]
fn largest_allowed_cidr_blocks() {
    let t = targets(&["198.18.0.0/16"]).unwrap();
    assert_eq!(t.len() as u128, MAX_CIDR_ADDRESSES);
    assert_eq!(t[0].display(), "198.18.0.0");
    assert_eq!(t[65535].display(), "198.18.255.255");
    assert_eq!(
        targets(&["2001:db8::/112"]).unwrap().len() as u128,
        MAX_CIDR_ADDRESSES
    );
}

#[test]
fn too_large_cidr_blocks_are_rejected() {
    assert_eq!(
        target_err(&["10.0.0.0/8"]),
        "CIDR block '10.0.0.0/8' has 16777216 addresses; at most 65536 are scanned at once"
    );
    assert_eq!(
        target_err(&["0.0.0.0/0"]),
        "CIDR block '0.0.0.0/0' has 4294967296 addresses; at most 65536 are scanned at once"
    );
    assert!(target_err(&["198.18.0.0/15"]).contains("has 131072 addresses"));
    assert!(target_err(&["2001:db8::/111"]).contains("has 131072 addresses"));
    assert_eq!(
        target_err(&["::/0"]),
        "CIDR block '::/0' has 340282366920938463463374607431768211456 addresses; \
         at most 65536 are scanned at once"
    );
    assert_eq!(
        targets(&["::/0"]).unwrap_err(),
        SpecError::CidrTooLarge {
            block: "::/0".into(),
            host_bits: 128
        }
    );
}

#[test]
fn malformed_cidr_blocks_are_rejected_naming_them() {
    assert_eq!(
        target_err(&["198.18.0.0/33"]),
        "invalid CIDR block '198.18.0.0/33': prefix length must be 0 to 32"
    );
    assert_eq!(
        target_err(&["2001:db8::/129"]),
        "invalid CIDR block '2001:db8::/129': prefix length must be 0 to 128"
    );
    for (spec, why) in [
        ("198.18.0.0/", "prefix length must be 0 to 32"),
        ("198.18.0.0/+24", "prefix length must be 0 to 32"),
        ("198.18.0.0/x", "prefix length must be 0 to 32"),
        ("198.18.0.0/99999999999", "prefix length must be 0 to 32"),
        (
            "198.18.0.0/24/24",
            "the address must be an IPv4 or IPv6 literal",
        ),
        (
            "lab.example/24",
            "the address must be an IPv4 or IPv6 literal",
        ),
        ("/24", "the address must be an IPv4 or IPv6 literal"),
        (
            "[198.18.0.0]/24",
            "the address must be an IPv4 or IPv6 literal",
        ),
    ] {
        assert_eq!(
            target_err(&[spec]),
            format!("invalid CIDR block '{spec}': {why}")
        );
    }
}

// ---- targets: lists ----

#[test]
fn duplicates_are_removed_keeping_first_seen_order() {
    assert_eq!(
        addrs(&[
            "198.18.2.3",
            "198.18.2.0/30",
            "[2001:db8::1]",
            "2001:db8::1",
            "198.18.2.1"
        ]),
        [
            "198.18.2.3",
            "198.18.2.0",
            "198.18.2.1",
            "198.18.2.2",
            "2001:db8::1"
        ]
    );
}

#[test]
fn duplicate_address_keeps_the_first_name() {
    let t = targets(&["lab.example", "198.18.2.1", "alias.example"]).unwrap();
    assert_eq!(
        t,
        vec![Target {
            addr: ip("198.18.2.1"),
            name: Some("lab.example".into())
        }]
    );
    let t = targets(&["198.18.2.1", "lab.example"]).unwrap();
    assert_eq!(t[0].name, None);
}

#[test]
fn no_targets() {
    let e = parse_targets(&[], &FakeResolver::new()).unwrap_err();
    assert_eq!(e, SpecError::NoTargets);
    assert_eq!(e.to_string(), "no targets given");
}

#[test]
fn first_bad_spec_fails_the_whole_list() {
    assert!(target_err(&["198.18.2.1", "nosuch.invalid", "999.1.1.1"]).contains("nosuch.invalid"));
}

#[test]
fn errors_are_std_errors_on_one_line() {
    let errs: Vec<SpecError> = vec![
        parse_ports("0").unwrap_err(),
        parse_ports("x").unwrap_err(),
        parse_ports("1,,2").unwrap_err(),
        parse_ports("9-1").unwrap_err(),
        parse_ports("").unwrap_err(),
        targets(&["nosuch.invalid"]).unwrap_err(),
        targets(&["a b"]).unwrap_err(),
        targets(&["1.2.3.4/40"]).unwrap_err(),
        targets(&["1.0.0.0/1"]).unwrap_err(),
        targets(&[]).unwrap_err(),
    ];
    for e in errs {
        let boxed: Box<dyn std::error::Error> = Box::new(e.clone());
        assert_eq!(boxed.to_string(), e.to_string());
        assert!(!e.to_string().contains('\n'), "{e}");
    }
}

// ---- properties ----

proptest! {
    #[test]
    fn format_then_parse_round_trips(ports in proptest::collection::btree_set(1u16.., 1..200)) {
        let ports: Vec<u16> = ports.into_iter().collect();
        let text = format_ports(&ports);
        prop_assert_eq!(parse_ports(&text).unwrap(), ports.clone());
        // And the compressed form is canonical.
        prop_assert_eq!(format_ports(&parse_ports(&text).unwrap()), text);
    }

    #[test]
    fn dense_port_sets_round_trip(start in 1u16.., len in 0u16..2000, gaps in proptest::collection::vec(0u16..2000, 0..20)) {
        let end = start.saturating_add(len);
        let gaps: BTreeSet<u16> = gaps.into_iter().map(|g| start.saturating_add(g)).collect();
        let ports: Vec<u16> = (start..=end).filter(|p| !gaps.contains(p) || *p == start).collect();
        prop_assert_eq!(parse_ports(&format_ports(&ports)).unwrap(), ports);
    }

    #[test]
    fn parse_ports_never_panics(spec in "\\PC*") {
        let _ = parse_ports(&spec);
    }

    #[test]
    fn parse_ports_never_panics_on_port_like_text(spec in "[0-9, \\-]{0,24}") {
        if let Ok(ports) = parse_ports(&spec) {
            prop_assert!(!ports.is_empty());
            prop_assert!(ports.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(!ports.contains(&0));
        }
    }

    #[test]
    fn parse_targets_never_panics(specs in proptest::collection::vec("\\PC*", 0..4)) {
        let _ = parse_targets(&specs, &FakeResolver::new());
    }

    #[test]
    fn parse_targets_never_panics_on_address_like_text(
        specs in proptest::collection::vec("[0-9a-f:.\\[\\]/%-]{0,24}", 0..4)
    ) {
        if let Ok(t) = parse_targets(&specs, &FakeResolver::new()) {
            prop_assert!(!t.is_empty());
            let unique: BTreeSet<IpAddr> = t.iter().map(|t| t.addr).collect();
            prop_assert_eq!(unique.len(), t.len());
        }
    }

    #[test]
    fn ipv4_blocks_expand_to_their_members(addr: u32, prefix in 16u32..=32) {
        let a = std::net::Ipv4Addr::from(addr);
        let t = targets(&[&format!("{a}/{prefix}")]).unwrap();
        prop_assert_eq!(t.len(), 1usize << (32 - prefix));
        let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
        for (i, target) in t.iter().enumerate() {
            let IpAddr::V4(v4) = target.addr else { panic!("not IPv4") };
            prop_assert_eq!(u32::from(v4) & mask, addr & mask);
            prop_assert_eq!(u32::from(v4) & !mask, i as u32);
        }
    }

    #[test]
    fn ipv6_blocks_expand_to_their_members(addr: u128, prefix in 112u32..=128) {
        let a = std::net::Ipv6Addr::from(addr);
        let t = targets(&[&format!("{a}/{prefix}")]).unwrap();
        prop_assert_eq!(t.len(), 1usize << (128 - prefix));
        let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
        for target in &t {
            let IpAddr::V6(v6) = target.addr else { panic!("not IPv6") };
            prop_assert_eq!(u128::from(v6) & mask, addr & mask);
        }
    }

    #[test]
    fn any_literal_round_trips_through_display(addr: IpAddr) {
        let t = targets(&[&addr.to_string()]).unwrap();
        prop_assert_eq!(t.len(), 1);
        prop_assert_eq!(t[0].addr, addr);
        prop_assert_eq!(t[0].display(), addr.to_string());
    }
}

#[test]
fn service_names_and_tcp_prefixes_as_nmap_takes_them() {
    assert_eq!(parse_ports("ssh,http").unwrap(), vec![22, 80, 8008]);
    assert_eq!(parse_ports("T:22,T:80-81").unwrap(), vec![22, 80, 81]);
    assert_eq!(parse_ports("HTTPS").unwrap(), vec![443]);
    let e = parse_ports("22,abc").unwrap_err();
    assert_eq!(
        e,
        SpecError::UnknownService {
            name: "abc".into(),
            spec: "22,abc".into()
        }
    );
    assert!(e.to_string().contains("'abc'"), "{e}");
    for spec in ["U:53", "T:22,U:53", "S:80"] {
        let e = parse_ports(spec).unwrap_err();
        assert!(matches!(e, SpecError::NotTcp { .. }), "{spec}: {e}");
        let text = e.to_string();
        assert!(
            text.contains("TCP connect()") && !text.contains('\n'),
            "{text}"
        );
    }
}

#[test]
fn top_ports_follow_nmaps_frequency_order() {
    use synack_core::services::TOP_TCP;
    use synack_core::targets::{service_name, top_ports};
    // nmap's top 100 is synack's default list.
    assert_eq!(top_ports(100).unwrap(), DEFAULT_PORTS);
    assert_eq!(top_ports(1).unwrap(), vec![80]);
    assert_eq!(
        &TOP_TCP[..5].iter().map(|p| p.0).collect::<Vec<_>>(),
        &[80, 23, 443, 21, 22]
    );
    assert_eq!(top_ports(1000).unwrap().len(), 1000);
    assert!(top_ports(0).is_err());
    assert!(top_ports(1001).unwrap_err().to_string().contains("'1001'"));
    assert_eq!(service_name(22), Some("ssh"));
    assert_eq!(service_name(47291), None);
}

#[test]
fn target_lists_split_as_nmap_reads_them() {
    use synack_core::targets::split_target_list;
    assert_eq!(
        split_target_list("198.18.2.1,198.18.2.2  lab.example\n# a comment\n2001:db8:2::1 # v6\n"),
        vec!["198.18.2.1", "198.18.2.2", "lab.example", "2001:db8:2::1"]
    );
    // An nmap octet list stays whole, so its error names it.
    assert_eq!(split_target_list("198.18.0.1,5"), vec!["198.18.0.1,5"]);
    let e = target_err(
        &split_target_list("198.18.0.1,5")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(e.contains("octet ranges"), "{e}");
}

#[test]
fn exclusions_match_blocks_of_any_size() {
    use synack_core::targets::Exclusions;
    let ex = Exclusions::parse(
        &[
            "198.18.2.0/30".to_string(),
            "10.0.0.0/8".into(),
            "2001:db8::1".into(),
        ],
        &FakeResolver::new(),
    )
    .unwrap();
    assert!(ex.contains(ip("198.18.2.3")));
    assert!(!ex.contains(ip("198.18.2.4")));
    assert!(ex.contains(ip("10.200.0.1")));
    assert!(ex.contains(ip("2001:db8::1")));
    assert!(!ex.contains(ip("2001:db8::2")));
    let left = ex.apply(targets(&["198.18.2.0/29"]).unwrap());
    assert_eq!(left.len(), 4);
    assert_eq!(left[0].addr, ip("198.18.2.4"));
    let e = Exclusions::parse(&["198.18.2.0/33".to_string()], &FakeResolver::new()).unwrap_err();
    assert!(e.to_string().contains("'198.18.2.0/33'"), "{e}");
}
