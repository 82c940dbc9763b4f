//! Table tests of the network policy engine: fail-closed inputs, layer order, re-opening,
//! tightening, every outcome, explanations, strict parsing and the matchers' edges.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests"
)]

use std::net::IpAddr;

use enigm_netpolicy::matchers::{Cidr, CidrError, DomainError, NormalName};
use enigm_netpolicy::{
    BlockReason, CompileError, CompiledPolicy, DEFAULT_RULE, DeviceContext, DeviceState,
    FAIL_CLOSED_RULE, Flow, ParseError, PolicyError, Route, TrustState, decide,
};
use serde_json::{Value, json};

/// Whether a compile error is the one a case expects.
type IsExpected = fn(&CompileError) -> bool;

fn compile(policy: Value) -> CompiledPolicy {
    CompiledPolicy::from_json(policy.to_string().as_bytes()).expect("policy compiles")
}

fn compile_err(policy: Value) -> PolicyError {
    CompiledPolicy::from_json(policy.to_string().as_bytes()).expect_err("policy is refused")
}

fn policy(layers: Value) -> Value {
    json!({"version": 1, "layers": layers})
}

const OK: DeviceContext = DeviceContext {
    trust_state: Some(TrustState::Protected),
    lifecycle: Some(DeviceState::Trusted),
};

fn web(domain: &str) -> Flow<'_> {
    Flow {
        app: Some("browser"),
        category: Some("web"),
        domain: Some(domain),
        ip: None,
        network: None,
    }
}

fn to_ip(ip: &str) -> Flow<'static> {
    Flow {
        app: Some("browser"),
        category: None,
        domain: None,
        ip: Some(ip.parse::<IpAddr>().unwrap()),
        network: None,
    }
}

fn block(reason: &str) -> Value {
    json!({"block": {"reason": reason}})
}

#[test]
fn empty_layers_block_by_the_default_rule() {
    let p = compile(policy(json!([])));
    let d = p.decide(&OK, &web("example.com"));
    assert_eq!(d.route, Route::Block(BlockReason::DefaultDeny));
    assert_eq!(d.rule, DEFAULT_RULE);
    assert!(d.route.is_block());
}

#[test]
fn no_matching_rule_blocks_by_the_default_rule() {
    let p = compile(policy(json!([{"id": "l1", "rules": [
        {"id": "proxy-chat", "match": {"apps": ["chat"]}, "action": {"route": "enigm-proxy"}}
    ]}])));
    let d = p.decide(&OK, &web("example.com"));
    assert_eq!(
        (d.route, d.rule),
        (Route::Block(BlockReason::DefaultDeny), DEFAULT_RULE)
    );
}

#[test]
fn each_outcome_is_reachable_and_names_its_rule() {
    let p = compile(
        json!({"version": 1, "allow_direct": true, "layers": [{"id": "l1", "rules": [
            {"id": "r-proxy", "match": {"apps": ["a-proxy"]}, "action": {"route": "enigm-proxy"}},
            {"id": "r-vpn", "match": {"apps": ["a-vpn"]}, "action": {"route": {"vpn": "ch-zurich"}}},
            {"id": "r-tor", "match": {"apps": ["a-tor"]}, "action": {"route": "tor-gateway"}},
            {"id": "r-direct", "match": {"apps": ["a-direct"]}, "action": {"route": "direct"}},
            {"id": "r-block", "match": {"apps": ["a-block"]}, "action": block("malware")}
        ]}]}),
    );
    let cases = [
        ("a-proxy", Route::EnigmProxy, "r-proxy"),
        ("a-vpn", Route::Vpn("ch-zurich"), "r-vpn"),
        ("a-tor", Route::TorGateway, "r-tor"),
        ("a-direct", Route::Direct, "r-direct"),
        (
            "a-block",
            Route::Block(BlockReason::Policy("malware")),
            "r-block",
        ),
        (
            "other",
            Route::Block(BlockReason::DefaultDeny),
            DEFAULT_RULE,
        ),
    ];
    for (app, route, rule) in cases {
        let flow = Flow {
            app: Some(app),
            ..web("example.com")
        };
        let flow = Flow {
            category: None,
            ..flow
        };
        let d = p.decide(&OK, &flow);
        assert_eq!((d.route, d.rule), (route, rule), "app {app}");
        let e = p.explain(&OK, &flow);
        assert_eq!(e.decision, d);
        let named = if rule == DEFAULT_RULE {
            None
        } else {
            Some(rule)
        };
        assert_eq!(e.layers.len(), 1);
        assert_eq!(e.layers[0].layer, "l1");
        assert_eq!(e.layers[0].rule, named);
    }
}

#[test]
fn first_matching_rule_of_a_layer_wins_and_layers_go_in_order() {
    let p = compile(policy(json!([
        {"id": "first", "rules": [
            {"id": "vpn-web", "match": {"categories": ["web"]}, "action": {"route": {"vpn": "de"}}},
            {"id": "proxy-all", "match": {}, "action": {"route": "enigm-proxy"}}
        ]},
        {"id": "second", "rules": [
            {"id": "tor-all", "match": {}, "action": {"route": "tor-gateway"}}
        ]}
    ])));
    let d = p.decide(&OK, &web("example.com"));
    assert_eq!((d.route, d.rule), (Route::Vpn("de"), "vpn-web"));
    // The second layer matched too, but a later route never changes the candidate.
    let e = p.explain(&OK, &web("example.com"));
    let rules: Vec<_> = e.layers.iter().map(|l| (l.layer, l.rule)).collect();
    assert_eq!(
        rules,
        [("first", Some("vpn-web")), ("second", Some("tor-all"))]
    );
    let other = Flow {
        category: Some("mail"),
        ..web("example.com")
    };
    assert_eq!(p.decide(&OK, &other).rule, "proxy-all");
}

#[test]
fn a_later_layer_cannot_reopen_a_block_unless_named() {
    let layers = |reopen: Value| {
        policy(json!([
            {"id": "threats", "rules": [
                {"id": "block-ads", "match": {"domains": ["ads.example"]}, "action": block("ads"),
                 "reopenable_by": reopen}
            ]},
            {"id": "apps", "rules": [
                {"id": "allow-ads-app", "match": {"apps": ["adsapp"]}, "action": {"route": "enigm-proxy"}},
                {"id": "proxy-all", "match": {}, "action": {"route": "enigm-proxy"}}
            ]}
        ]))
    };
    let closed = compile(layers(json!([])));
    let open = compile(layers(json!(["allow-ads-app"])));
    let ads_app = Flow {
        app: Some("adsapp"),
        ..web("x.ads.example")
    };
    let browser = web("x.ads.example");

    for p in [&closed, &open] {
        let d = p.decide(&OK, &browser);
        assert_eq!(
            (d.route, d.rule),
            (Route::Block(BlockReason::Policy("ads")), "block-ads")
        );
    }
    let d = closed.decide(&OK, &ads_app);
    assert_eq!(
        (d.route, d.rule),
        (Route::Block(BlockReason::Policy("ads")), "block-ads")
    );
    let d = open.decide(&OK, &ads_app);
    assert_eq!((d.route, d.rule), (Route::EnigmProxy, "allow-ads-app"));
    // Explain agrees with decide for the short-circuited final block too.
    assert_eq!(
        closed.explain(&OK, &ads_app).decision,
        closed.decide(&OK, &ads_app)
    );
}

#[test]
fn a_reopened_block_does_not_reopen_a_later_block() {
    let p = compile(policy(json!([
        {"id": "l1", "rules": [{"id": "b1", "match": {"apps": ["x"]}, "action": block("first"),
                                 "reopenable_by": ["r3"]}]},
        {"id": "l2", "rules": [{"id": "b2", "match": {"apps": ["x"]}, "action": block("second")}]},
        {"id": "l3", "rules": [{"id": "r3", "match": {}, "action": {"route": "tor-gateway"}}]}
    ])));
    let flow = Flow {
        app: Some("x"),
        ..web("a.b")
    };
    let d = p.decide(&OK, &flow);
    assert_eq!(
        (d.route, d.rule),
        (Route::Block(BlockReason::Policy("second")), "b2")
    );
    assert_eq!(p.explain(&OK, &flow).decision, d);
}

#[test]
fn blocks_tighten_a_candidate_route() {
    let p = {
        let mut doc: Value = policy(json!([]));
        doc["blocklists"] =
            json!({"threats": {"domains": ["bad.example"], "cidrs": ["203.0.113.0/24"]}});
        doc["layers"] = json!([
            {"id": "routing", "rules": [{"id": "proxy-all", "match": {}, "action": {"route": "enigm-proxy"}}]},
            {"id": "threats", "rules": [
                {"id": "block-bad", "match": {"blocklist": "threats"}, "action": block("malware")}
            ]}
        ]);
        compile(doc)
    };
    let d = p.decide(&OK, &web("www.bad.example"));
    assert_eq!(
        (d.route, d.rule),
        (Route::Block(BlockReason::Policy("malware")), "block-bad")
    );
    let d = p.decide(&OK, &to_ip("203.0.113.7"));
    assert_eq!(d.rule, "block-bad");
    let d = p.decide(&OK, &web("good.example"));
    assert_eq!((d.route, d.rule), (Route::EnigmProxy, "proxy-all"));
}

#[test]
fn inactive_or_inactive_lifecycle_devices_are_blocked_before_any_layer() {
    let p = compile(policy(json!([{"id": "l", "rules": [
        {"id": "proxy-all", "match": {}, "action": {"route": "enigm-proxy"}}
    ]}])));
    let cases = [
        (
            Some(TrustState::Inactive),
            Some(DeviceState::Trusted),
            BlockReason::DeviceInactive,
        ),
        (
            Some(TrustState::Protected),
            Some(DeviceState::Revoked),
            BlockReason::DeviceNotActive,
        ),
        (
            Some(TrustState::Protected),
            Some(DeviceState::Retired),
            BlockReason::DeviceNotActive,
        ),
        (
            Some(TrustState::Protected),
            Some(DeviceState::Replaced),
            BlockReason::DeviceNotActive,
        ),
        (
            Some(TrustState::Protected),
            Some(DeviceState::PendingEnrollment),
            BlockReason::DeviceNotActive,
        ),
        (None, Some(DeviceState::Trusted), BlockReason::MissingInput),
        (Some(TrustState::Protected), None, BlockReason::MissingInput),
    ];
    for (trust_state, lifecycle, reason) in cases {
        let device = DeviceContext {
            trust_state,
            lifecycle,
        };
        let e = p.explain(&device, &web("example.com"));
        assert_eq!(
            (e.decision.route, e.decision.rule),
            (Route::Block(reason), FAIL_CLOSED_RULE)
        );
        assert!(e.layers.is_empty(), "no layer ran for {device:?}");
    }
    let restricted = DeviceContext {
        trust_state: Some(TrustState::ReviewRequired),
        lifecycle: Some(DeviceState::Restricted),
    };
    assert_eq!(
        p.decide(&restricted, &web("example.com")).route,
        Route::EnigmProxy
    );
}

#[test]
fn missing_flow_inputs_and_no_policy_block() {
    let p = compile(policy(json!([{"id": "l", "rules": [
        {"id": "proxy-all", "match": {}, "action": {"route": "enigm-proxy"}}
    ]}])));
    let no_sender = Flow {
        app: None,
        category: None,
        ..web("example.com")
    };
    let no_destination = Flow {
        domain: None,
        ip: None,
        ..web("example.com")
    };
    for flow in [no_sender, no_destination] {
        let d = p.decide(&OK, &flow);
        assert_eq!(
            (d.route, d.rule),
            (Route::Block(BlockReason::MissingInput), FAIL_CLOSED_RULE)
        );
    }
    let d = decide(None, &OK, &web("example.com"));
    assert_eq!(
        (d.route, d.rule),
        (Route::Block(BlockReason::NoPolicy), FAIL_CLOSED_RULE)
    );
    for bad in ["", "a..b", "-bad\u{e9}.com", ".", "..", &"a".repeat(64)] {
        let d = p.decide(&OK, &web(bad));
        assert_eq!(
            d.route,
            Route::Block(BlockReason::InvalidDestination),
            "{bad:?}"
        );
    }
}

#[test]
fn direct_is_refused_without_allow_direct() {
    let layers = json!([{"id": "l", "rules": [
        {"id": "go-direct", "match": {}, "action": {"route": "direct"}}
    ]}]);
    match compile_err(policy(layers.clone())) {
        PolicyError::Compile(CompileError::DirectNotAllowed(rule)) => assert_eq!(rule, "go-direct"),
        other => panic!("unexpected {other:?}"),
    }
    let p = compile(json!({"version": 1, "allow_direct": true, "layers": layers}));
    assert_eq!(p.decide(&OK, &web("a.b")).route, Route::Direct);
}

#[test]
fn malformed_policies_are_refused_with_typed_errors() {
    let parse = |bytes: &[u8]| CompiledPolicy::from_json(bytes).expect_err("refused");
    assert!(matches!(parse(b""), PolicyError::Parse(ParseError::Empty)));
    assert!(matches!(
        parse(b"  \n"),
        PolicyError::Parse(ParseError::Empty)
    ));
    assert!(matches!(
        parse(b"{"),
        PolicyError::Parse(ParseError::Json(_))
    ));
    assert!(matches!(
        parse(b"[]"),
        PolicyError::Parse(ParseError::Json(_))
    ));
    assert!(matches!(
        parse(br#"{"version": 2, "layers": []}"#),
        PolicyError::Parse(ParseError::Version(2))
    ));
    assert!(matches!(
        parse(br#"{"version": 1}"#),
        PolicyError::Parse(ParseError::Json(_))
    ));
    assert!(matches!(
        parse(
            br#"{"version": 1, "blocklists": {"a": {}, "a": {"domains": ["x.y"]}}, "layers": []}"#
        ),
        PolicyError::Parse(ParseError::Json(_))
    ));
    assert!(matches!(
        parse(br#"{"version": 1, "version": 1, "layers": []}"#),
        PolicyError::Parse(ParseError::Json(_))
    ));
    let huge = vec![b' '; enigm_netpolicy::document::MAX_POLICY_BYTES + 1];
    assert!(matches!(
        parse(&huge),
        PolicyError::Parse(ParseError::TooLarge(_))
    ));

    // Unknown fields, at every level.
    for doc in [
        json!({"version": 1, "layers": [], "extra": 1}),
        json!({"version": 1, "layers": [{"id": "l", "rules": [], "x": 1}]}),
        json!({"version": 1, "layers": [{"id": "l", "rules": [
            {"id": "r", "match": {"app": ["x"]}, "action": {"route": "enigm-proxy"}}]}]}),
        json!({"version": 1, "layers": [{"id": "l", "rules": [
            {"id": "r", "match": {}, "action": {"block": {"reason": "x", "why": 1}}}]}]}),
        json!({"version": 1, "layers": [{"id": "l", "rules": [
            {"id": "r", "match": {}, "action": {"route": "internet"}}]}]}),
        json!({"version": 1, "blocklists": {"b": {"domains": [], "urls": []}}, "layers": []}),
    ] {
        assert!(
            matches!(
                compile_err(doc.clone()),
                PolicyError::Parse(ParseError::Json(_))
            ),
            "{doc}"
        );
    }

    let rules = |rules: Value| policy(json!([{"id": "l", "rules": rules}]));
    let proxy = json!({"route": "enigm-proxy"});
    let cases: Vec<(Value, IsExpected)> = vec![
        (
            rules(json!([{"id": "r", "action": proxy}, {"id": "r", "action": proxy}])),
            |e| matches!(e, CompileError::DuplicateRule(_)),
        ),
        (rules(json!([{"id": "default", "action": proxy}])), |e| {
            matches!(e, CompileError::DuplicateRule(_))
        }),
        (
            rules(json!([{"id": "fail-closed", "action": proxy}])),
            |e| matches!(e, CompileError::DuplicateRule(_)),
        ),
        (rules(json!([{"id": "", "action": proxy}])), |e| {
            matches!(e, CompileError::BadId(_))
        }),
        (
            rules(json!([{"id": "r", "match": {"apps": []}, "action": proxy}])),
            |e| matches!(e, CompileError::EmptyCondition(_)),
        ),
        (
            rules(json!([{"id": "r", "match": {"blocklist": "nope"}, "action": proxy}])),
            |e| matches!(e, CompileError::UnknownBlocklist { .. }),
        ),
        (
            rules(json!([{"id": "r", "match": {"domains": ["a..b"]}, "action": proxy}])),
            |e| {
                matches!(
                    e,
                    CompileError::BadDomain {
                        error: DomainError::EmptyLabel,
                        ..
                    }
                )
            },
        ),
        (
            rules(json!([{"id": "r", "match": {"cidrs": ["10.1.0.0/8"]}, "action": proxy}])),
            |e| {
                matches!(
                    e,
                    CompileError::BadCidr {
                        error: CidrError::HostBits(_),
                        ..
                    }
                )
            },
        ),
        (
            rules(json!([{"id": "r", "action": proxy, "reopenable_by": ["r"]}])),
            |e| matches!(e, CompileError::ReopenOnRoute(_)),
        ),
        (
            rules(
                json!([{"id": "b", "action": block("x"), "reopenable_by": ["r"]},
                       {"id": "r", "action": proxy}]),
            ),
            |e| matches!(e, CompileError::BadReopen { .. }),
        ),
        (
            rules(json!([{"id": "b", "action": block("x"), "reopenable_by": ["ghost"]}])),
            |e| matches!(e, CompileError::BadReopen { .. }),
        ),
        (
            rules(json!([{"id": "b", "action": block("default-deny")}])),
            |e| matches!(e, CompileError::BadReason(_)),
        ),
        (
            rules(json!([{"id": "b", "action": block("Has Space")}])),
            |e| matches!(e, CompileError::BadReason(_)),
        ),
        (
            policy(json!([{"id": "l", "rules": []}, {"id": "l", "rules": []}])),
            |e| matches!(e, CompileError::DuplicateLayer(_)),
        ),
        (
            policy(json!(
                (0..65)
                    .map(|i| json!({"id": format!("l{i}"), "rules": []}))
                    .collect::<Vec<_>>()
            )),
            |e| matches!(e, CompileError::TooManyLayers(65)),
        ),
    ];
    for (doc, expected) in cases {
        match compile_err(doc.clone()) {
            PolicyError::Compile(e) => assert!(expected(&e), "{doc}: {e:?}"),
            other => panic!("{doc}: unexpected {other:?}"),
        }
    }
    // A later layer's block rule cannot re-open either.
    let doc = policy(json!([
        {"id": "l1", "rules": [{"id": "b", "action": block("x"), "reopenable_by": ["b2"]}]},
        {"id": "l2", "rules": [{"id": "b2", "action": block("y")}]}
    ]));
    assert!(matches!(
        compile_err(doc),
        PolicyError::Compile(CompileError::BadReopen { .. })
    ));
}

#[test]
fn domain_suffixes_match_whole_labels_case_and_trailing_dot_insensitive() {
    let p = compile(policy(json!([{"id": "l", "rules": [
        {"id": "ex", "match": {"domains": ["Example.COM."]}, "action": {"route": "tor-gateway"}}
    ]}])));
    for yes in [
        "example.com",
        "EXAMPLE.com",
        "example.com.",
        "a.example.com",
        "x.y.Example.Com.",
    ] {
        assert_eq!(p.decide(&OK, &web(yes)).rule, "ex", "{yes}");
    }
    for no in [
        "notexample.com",
        "example.co",
        "com",
        "example.com.evil",
        "example-com",
        "xexample.com",
    ] {
        assert_eq!(p.decide(&OK, &web(no)).rule, DEFAULT_RULE, "{no}");
    }
    // A domain condition does not hold for a flow with only an address.
    assert_eq!(p.decide(&OK, &to_ip("192.0.2.1")).rule, DEFAULT_RULE);
}

#[test]
fn name_normalisation_edges() {
    assert_eq!(NormalName::parse("A.B.").unwrap().as_str(), "a.b");
    assert_eq!(
        NormalName::parse("a.b..").err(),
        Some(DomainError::EmptyLabel)
    );
    assert_eq!(NormalName::parse(".a").err(), Some(DomainError::EmptyLabel));
    assert_eq!(NormalName::parse("").err(), Some(DomainError::Empty));
    assert_eq!(
        NormalName::parse("a b").err(),
        Some(DomainError::BadCharacter)
    );
    assert_eq!(
        NormalName::parse(&"a".repeat(64)).err(),
        Some(DomainError::LabelTooLong)
    );
    assert!(NormalName::parse(&"a".repeat(63)).is_ok());
    let long = [
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(61),
    ]
    .join(".");
    assert_eq!(long.len(), 253);
    assert!(NormalName::parse(&long).is_ok());
    assert!(NormalName::parse(&format!("{long}.")).is_ok());
    assert_eq!(
        NormalName::parse(&format!("{long}e")).err(),
        Some(DomainError::TooLong)
    );
    assert_eq!(
        NormalName::parse("xn--bcher-kva.example")
            .unwrap()
            .fingerprint(),
        NormalName::parse("XN--BCHER-KVA.EXAMPLE.")
            .unwrap()
            .fingerprint()
    );
}

#[test]
fn cidr_edges_for_ipv4_and_ipv6() {
    let p = compile(policy(json!([{"id": "l", "rules": [
        {"id": "v4", "match": {"cidrs": ["10.0.0.0/8", "11.0.0.0/8", "192.0.2.1/32"]}, "action": block("v4")},
        {"id": "v6", "match": {"cidrs": ["2001:db8::/32"]}, "action": block("v6")},
        {"id": "all4", "match": {"cidrs": ["0.0.0.0/0"], "apps": ["everything"]}, "action": block("all")},
        {"id": "all6", "match": {"cidrs": ["::/0"], "apps": ["everything6"]}, "action": block("all")}
    ]}])));
    let rule = |flow: Flow<'_>| p.decide(&OK, &flow).rule.to_owned();
    for (ip, expected) in [
        ("10.0.0.0", "v4"),
        ("10.255.255.255", "v4"),
        ("11.255.255.255", "v4"), // merged adjacent interval
        ("9.255.255.255", DEFAULT_RULE),
        ("12.0.0.0", DEFAULT_RULE),
        ("192.0.2.1", "v4"),
        ("192.0.2.0", DEFAULT_RULE),
        ("192.0.2.2", DEFAULT_RULE),
        ("::ffff:10.1.2.3", "v4"), // IPv4-mapped is matched as IPv4
        ("2001:db8::", "v6"),
        ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "v6"),
        ("2001:db9::", DEFAULT_RULE),
        ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", DEFAULT_RULE),
        ("::a00:1", DEFAULT_RULE), // IPv4-compatible (not mapped) stays IPv6
    ] {
        assert_eq!(rule(to_ip(ip)), expected, "{ip}");
    }
    assert_eq!(
        rule(Flow {
            app: Some("everything"),
            ..to_ip("255.255.255.255")
        }),
        "all4"
    );
    assert_eq!(
        rule(Flow {
            app: Some("everything"),
            ..to_ip("::1")
        }),
        DEFAULT_RULE
    );
    assert_eq!(
        rule(Flow {
            app: Some("everything6"),
            ..to_ip("ffff::1")
        }),
        "all6"
    );

    assert_eq!(
        Cidr::parse("10.0.0.0/8"),
        Ok(Cidr::V4(0x0a00_0000, 0x0aff_ffff))
    );
    assert_eq!(
        Cidr::parse("1.2.3.4/32"),
        Ok(Cidr::V4(0x0102_0304, 0x0102_0304))
    );
    assert!(matches!(
        Cidr::parse("10.0.0.0/33"),
        Err(CidrError::PrefixTooLong(_))
    ));
    assert!(matches!(
        Cidr::parse("::/129"),
        Err(CidrError::PrefixTooLong(_))
    ));
    for bad in [
        "10.0.0.0",
        "10.0.0.0/",
        "10.0.0.0/-1",
        "10.0.0.0/+8",
        "10.0.0/8",
        "x/8",
        "10.0.0.0/0008",
    ] {
        assert!(
            matches!(Cidr::parse(bad), Err(CidrError::Syntax(_))),
            "{bad}"
        );
    }
    assert!(matches!(
        Cidr::parse("2001:db8::1/32"),
        Err(CidrError::HostBits(_))
    ));
}

#[test]
fn networks_are_untrusted_unless_listed() {
    let p = compile(
        json!({"version": 1, "trusted_networks": ["office-lan"], "layers": [{"id": "l", "rules": [
            {"id": "trusted-direct", "match": {"network": "trusted"}, "action": {"route": {"vpn": "home"}}},
            {"id": "untrusted-proxy", "match": {"network": "untrusted"}, "action": {"route": "enigm-proxy"}}
        ]}]}),
    );
    let on = |network| Flow {
        network,
        ..web("a.b")
    };
    assert_eq!(
        p.decide(&OK, &on(Some("office-lan"))).rule,
        "trusted-direct"
    );
    assert_eq!(
        p.decide(&OK, &on(Some("cafe-wifi"))).rule,
        "untrusted-proxy"
    );
    assert_eq!(p.decide(&OK, &on(None)).rule, "untrusted-proxy");
}

#[test]
fn trust_state_lifecycle_and_category_conditions() {
    let p = compile(policy(json!([{"id": "l", "rules": [
        {"id": "review-tor", "match": {"trust_states": ["REVIEW_REQUIRED"]}, "action": {"route": "tor-gateway"}},
        {"id": "restricted-block", "match": {"lifecycle": ["restricted"]}, "action": block("restricted")},
        {"id": "mail-vpn", "match": {"categories": ["mail"]}, "action": {"route": {"vpn": "nl"}}}
    ]}])));
    let review = DeviceContext {
        trust_state: Some(TrustState::ReviewRequired),
        ..OK
    };
    let restricted = DeviceContext {
        lifecycle: Some(DeviceState::Restricted),
        ..OK
    };
    assert_eq!(p.decide(&review, &web("a.b")).rule, "review-tor");
    assert_eq!(p.decide(&restricted, &web("a.b")).rule, "restricted-block");
    let mail = Flow {
        app: None,
        category: Some("mail"),
        ..web("a.b")
    };
    assert_eq!(p.decide(&OK, &mail).route, Route::Vpn("nl"));
    assert_eq!(p.decide(&OK, &web("a.b")).rule, DEFAULT_RULE);
}

#[test]
fn decisions_and_explanations_serialise_without_destinations() {
    let p = compile(policy(json!([{"id": "l", "rules": [
        {"id": "vpn", "match": {"domains": ["secret.example"]}, "action": {"route": {"vpn": "ch"}}}
    ]}])));
    let e = p.explain(&OK, &web("secret.example"));
    let text = serde_json::to_string(&e).unwrap();
    assert_eq!(
        text,
        r#"{"decision":{"route":{"vpn":"ch"},"rule":"vpn"},"layers":[{"layer":"l","rule":"vpn"}]}"#
    );
    let blocked = serde_json::to_value(p.decide(&OK, &web("other.example"))).unwrap();
    assert_eq!(
        blocked,
        json!({"route": {"block": "default-deny"}, "rule": "default"})
    );
}

#[test]
fn large_ipv4_sets_use_the_slash16_index_and_agree_with_a_linear_scan() {
    use enigm_netpolicy::matchers::{Addr, CidrSet};
    // A fixed sequence (splitmix64) of 6,000 CIDRs, /14 to /32, clustered in a few /8s so that
    // intervals straddle /16 buckets, overlap and touch.
    let mut state = 7u64;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let cidrs: Vec<Cidr> = (0..6000)
        .map(|_| {
            // Mostly small blocks, a few spanning several /16 buckets.
            let len = if next() % 200 == 0 {
                14 + (next() % 4) as u32
            } else {
                22 + (next() % 11) as u32
            };
            let top = [10u32, 100, 172][(next() % 3) as usize] << 24;
            let addr = top | ((next() as u32) & 0x00ff_ffff);
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            Cidr::V4(addr & mask, (addr & mask) | !mask)
        })
        .collect();
    let set = CidrSet::new(cidrs.clone());
    let naive = |a: u32| {
        cidrs
            .iter()
            .any(|c| matches!(*c, Cidr::V4(s, e) if s <= a && a <= e))
    };
    let mut probes: Vec<u32> = cidrs
        .iter()
        .flat_map(|c| match *c {
            Cidr::V4(s, e) => [s.wrapping_sub(1), s, e, e.wrapping_add(1)],
            Cidr::V6(..) => unreachable!(),
        })
        .collect();
    probes.extend((0..20_000).map(|_| next() as u32));
    probes.extend([0, u32::MAX, 0x6400_0000, 0x63ff_ffff]);
    for a in probes {
        assert_eq!(
            set.contains(Addr::V4(a)),
            naive(a),
            "{}",
            std::net::Ipv4Addr::from(a)
        );
    }
    assert!(
        set.size_bytes() > 65536 * 4,
        "the index is built for a set this large: {} bytes",
        set.size_bytes()
    );
}
