//! Property tests: the compiled engine decides exactly as a naive reference model (a linear scan
//! of string suffixes and CIDRs, every layer evaluated, the semantics of the crate docs read
//! literally) on random policies and flows; and no device that is INACTIVE or not
//! trusted/restricted ever gets a route.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests"
)]

use std::collections::BTreeMap;
use std::net::IpAddr;

use enigm_netpolicy::{
    Action, BlockAction, BlockReason, Blocklist, CompiledPolicy, DEFAULT_RULE, DeviceContext,
    DeviceState, FAIL_CLOSED_RULE, Flow, Layer, Match, NetworkMatch, PolicyDocument, Route,
    RouteSpec, Rule, TrustState,
};
use proptest::prelude::*;

// ---------------------------------------------------------------- the reference model

fn norm(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

fn domain_matches(patterns: &[String], flow: &str) -> bool {
    let flow = norm(flow);
    patterns.iter().any(|p| {
        let p = norm(p);
        flow == p || flow.ends_with(&format!(".{p}"))
    })
}

fn cidr_matches(cidrs: &[String], ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    cidrs.iter().any(|c| {
        let (addr, len) = c.split_once('/').unwrap();
        let len: u32 = len.parse().unwrap();
        match (addr.parse::<IpAddr>().unwrap(), ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    })
}

fn holds(doc: &PolicyDocument, m: &Match, device: &DeviceContext, flow: &Flow<'_>) -> bool {
    let in_list = |list: &Option<Vec<String>>, v: Option<&str>| {
        list.as_ref()
            .is_none_or(|l| v.is_some_and(|v| l.iter().any(|x| x == v)))
    };
    let trusted = flow
        .network
        .is_some_and(|n| doc.trusted_networks.iter().any(|t| t == n));
    in_list(&m.apps, flow.app)
        && in_list(&m.categories, flow.category)
        && m.domains
            .as_ref()
            .is_none_or(|d| flow.domain.is_some_and(|f| domain_matches(d, f)))
        && m.cidrs
            .as_ref()
            .is_none_or(|c| flow.ip.is_some_and(|ip| cidr_matches(c, ip)))
        && m.blocklist.as_ref().is_none_or(|name| {
            let list = &doc.blocklists[name];
            flow.domain
                .is_some_and(|f| domain_matches(&list.domains, f))
                || flow.ip.is_some_and(|ip| cidr_matches(&list.cidrs, ip))
        })
        && match m.network.unwrap_or(NetworkMatch::Any) {
            NetworkMatch::Any => true,
            NetworkMatch::Trusted => trusted,
            NetworkMatch::Untrusted => !trusted,
        }
        && m.trust_states
            .as_ref()
            .is_none_or(|t| t.contains(&device.trust_state.unwrap()))
        && m.lifecycle
            .as_ref()
            .is_none_or(|l| l.contains(&device.lifecycle.unwrap()))
}

/// The decision as (route, rule), owned.
fn model(doc: &PolicyDocument, device: &DeviceContext, flow: &Flow<'_>) -> (String, String) {
    let fail = |reason: &str| (format!("block:{reason}"), FAIL_CLOSED_RULE.to_owned());
    let (Some(trust), Some(lifecycle)) = (device.trust_state, device.lifecycle) else {
        return fail("missing-input");
    };
    if !matches!(lifecycle, DeviceState::Trusted | DeviceState::Restricted) {
        return fail("device-not-active");
    }
    if trust == TrustState::Inactive {
        return fail("device-inactive");
    }
    if (flow.app.is_none() && flow.category.is_none())
        || (flow.domain.is_none() && flow.ip.is_none())
    {
        return fail("missing-input");
    }
    let verdicts: Vec<Option<&Rule>> = doc
        .layers
        .iter()
        .map(|l| {
            l.rules
                .iter()
                .find(|r| holds(doc, &r.matches, device, flow))
        })
        .collect();
    let outcome = |r: &Rule| {
        let route = match &r.action {
            Action::Block(b) => format!("block:{}", b.reason),
            Action::Route(RouteSpec::EnigmProxy) => "enigm-proxy".to_owned(),
            Action::Route(RouteSpec::Vpn(l)) => format!("vpn:{l}"),
            Action::Route(RouteSpec::TorGateway) => "tor-gateway".to_owned(),
            Action::Route(RouteSpec::Direct) => "direct".to_owned(),
        };
        (route, r.id.clone())
    };
    for (i, v) in verdicts.iter().enumerate() {
        if let Some(r) = v
            && matches!(r.action, Action::Block(_))
        {
            let reopened = verdicts[i + 1..].iter().flatten().any(|later| {
                matches!(later.action, Action::Route(_)) && r.reopenable_by.contains(&later.id)
            });
            if !reopened {
                return outcome(r);
            }
        }
    }
    if let Some(r) = verdicts
        .iter()
        .flatten()
        .find(|r| matches!(r.action, Action::Route(_)))
    {
        return outcome(r);
    }
    ("block:default-deny".to_owned(), DEFAULT_RULE.to_owned())
}

fn engine(p: &CompiledPolicy, device: &DeviceContext, flow: &Flow<'_>) -> (String, String) {
    let d = p.decide(device, flow);
    let route = match d.route {
        Route::EnigmProxy => "enigm-proxy".to_owned(),
        Route::Vpn(l) => format!("vpn:{l}"),
        Route::TorGateway => "tor-gateway".to_owned(),
        Route::Direct => "direct".to_owned(),
        Route::Block(reason) => format!("block:{}", reason.as_str()),
    };
    (route, d.rule.to_owned())
}

// ---------------------------------------------------------------- generators

const LABELS: [&str; 4] = ["a", "b", "ab", "c"];

fn name(max_labels: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(&LABELS[..]), 1..=max_labels)
        .prop_map(|l| l.join("."))
}

/// A flow's name: like a pattern, sometimes in upper case or with a trailing dot.
fn flow_name() -> impl Strategy<Value = String> {
    (name(4), any::<bool>(), any::<bool>()).prop_map(|(n, upper, dot)| {
        let n = if upper { n.to_ascii_uppercase() } else { n };
        if dot { format!("{n}.") } else { n }
    })
}

fn v4_addr() -> impl Strategy<Value = u32> {
    (
        prop::sample::select(&[10u32, 11, 192][..]),
        0u32..4,
        any::<u16>(),
    )
        .prop_map(|(a, b, low)| (a << 24) | (b << 16) | u32::from(low))
}

fn cidr() -> impl Strategy<Value = String> {
    prop_oneof![
        (v4_addr(), 0u32..=32).prop_map(|(a, len)| {
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            format!("{}/{len}", std::net::Ipv4Addr::from(a & mask))
        }),
        (any::<u16>(), 0u32..=128).prop_map(|(low, len)| {
            let a = (0x2001_0db8u128 << 96) | u128::from(low);
            let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            format!("{}/{len}", std::net::Ipv6Addr::from(a & mask))
        }),
    ]
}

fn flow_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        v4_addr().prop_map(|a| IpAddr::V4(a.into())),
        v4_addr().prop_map(|a| IpAddr::V6(std::net::Ipv4Addr::from(a).to_ipv6_mapped())),
        any::<u16>().prop_map(|low| IpAddr::V6(((0x2001_0db8u128 << 96) | u128::from(low)).into())),
    ]
}

fn some_of<T: std::fmt::Debug + Clone>(
    s: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<Vec<T>>> {
    prop::option::weighted(0.3, prop::collection::vec(s, 1..3))
}

const APPS: [&str; 3] = ["browser", "chat", "mail"];
const NETWORKS: [&str; 2] = ["office", "cafe"];

fn matches() -> impl Strategy<Value = Match> {
    (
        some_of(prop::sample::select(&APPS[..]).prop_map(str::to_owned)),
        some_of(prop::sample::select(&APPS[..]).prop_map(str::to_owned)),
        some_of(name(3)),
        some_of(cidr()),
        prop::option::weighted(
            0.3,
            prop::sample::select(&["threats", "ads"][..]).prop_map(str::to_owned),
        ),
        prop::option::of(prop::sample::select(
            &[
                NetworkMatch::Trusted,
                NetworkMatch::Untrusted,
                NetworkMatch::Any,
            ][..],
        )),
        some_of(prop::sample::select(&TrustState::ALL[..])),
        some_of(prop::sample::select(&DeviceState::ALL[..])),
    )
        .prop_map(
            |(apps, categories, domains, cidrs, blocklist, network, trust_states, lifecycle)| {
                Match {
                    apps,
                    categories,
                    domains,
                    cidrs,
                    blocklist,
                    network,
                    trust_states,
                    lifecycle,
                }
            },
        )
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        prop::sample::select(&["malware", "ads"][..]).prop_map(|r| Action::Block(BlockAction {
            reason: r.to_owned()
        })),
        Just(Action::Route(RouteSpec::EnigmProxy)),
        prop::sample::select(&["ch", "de"][..])
            .prop_map(|l| Action::Route(RouteSpec::Vpn(l.to_owned()))),
        Just(Action::Route(RouteSpec::TorGateway)),
        Just(Action::Route(RouteSpec::Direct)),
    ]
}

fn policy() -> impl Strategy<Value = PolicyDocument> {
    let blocklist = || {
        (
            prop::collection::vec(name(3), 0..4),
            prop::collection::vec(cidr(), 0..4),
        )
            .prop_map(|(domains, cidrs)| Blocklist { domains, cidrs })
    };
    (
        prop::collection::vec(
            prop::collection::vec((matches(), action(), any::<u8>()), 0..4),
            0..5,
        ),
        blocklist(),
        blocklist(),
        any::<bool>(),
    )
        .prop_map(|(layers, threats, ads, trust_office)| {
            // Ids first, then each block rule's `reopenable_by` picked (by its mask) among the
            // route rules of later layers.
            let ids: Vec<Vec<String>> = layers
                .iter()
                .enumerate()
                .map(|(l, rules)| (0..rules.len()).map(|i| format!("r{l}-{i}")).collect())
                .collect();
            let later_routes = |layer: usize| -> Vec<String> {
                layers
                    .iter()
                    .enumerate()
                    .skip(layer + 1)
                    .flat_map(|(l, rules)| {
                        rules
                            .iter()
                            .enumerate()
                            .filter(|(_, (_, a, _))| matches!(a, Action::Route(_)))
                            .map(move |(i, _)| format!("r{l}-{i}"))
                    })
                    .collect()
            };
            let layers = layers
                .iter()
                .enumerate()
                .map(|(l, rules)| Layer {
                    id: format!("layer{l}"),
                    rules: rules
                        .iter()
                        .enumerate()
                        .map(|(i, (m, a, mask))| Rule {
                            id: ids[l][i].clone(),
                            matches: m.clone(),
                            action: a.clone(),
                            reopenable_by: if matches!(a, Action::Block(_)) {
                                later_routes(l)
                                    .into_iter()
                                    .take(8)
                                    .enumerate()
                                    .filter(|(bit, _)| mask & (1 << bit) != 0)
                                    .map(|(_, id)| id)
                                    .collect()
                            } else {
                                Vec::new()
                            },
                        })
                        .collect(),
                })
                .collect();
            PolicyDocument {
                version: 1,
                allow_direct: true,
                trusted_networks: if trust_office {
                    vec!["office".to_owned()]
                } else {
                    Vec::new()
                },
                blocklists: BTreeMap::from([
                    ("threats".to_owned(), threats),
                    ("ads".to_owned(), ads),
                ]),
                layers,
            }
        })
}

#[derive(Debug, Clone)]
struct FlowSpec {
    app: Option<&'static str>,
    category: Option<&'static str>,
    domain: Option<String>,
    ip: Option<IpAddr>,
    network: Option<&'static str>,
}

impl FlowSpec {
    fn flow(&self) -> Flow<'_> {
        Flow {
            app: self.app,
            category: self.category,
            domain: self.domain.as_deref(),
            ip: self.ip,
            network: self.network,
        }
    }
}

fn flow() -> impl Strategy<Value = FlowSpec> {
    (
        prop::option::weighted(0.9, prop::sample::select(&APPS[..])),
        prop::option::of(prop::sample::select(&APPS[..])),
        prop::option::weighted(0.8, flow_name()),
        prop::option::weighted(0.6, flow_ip()),
        prop::option::of(prop::sample::select(&NETWORKS[..])),
    )
        .prop_map(|(app, category, domain, ip, network)| FlowSpec {
            app,
            category,
            domain,
            ip,
            network,
        })
}

fn device() -> impl Strategy<Value = DeviceContext> {
    (
        prop::option::weighted(0.95, prop::sample::select(&TrustState::ALL[..])),
        prop::option::weighted(0.95, prop::sample::select(&DeviceState::ALL[..])),
    )
        .prop_map(|(trust_state, lifecycle)| DeviceContext {
            trust_state,
            lifecycle,
        })
}

/// Mostly usable devices, so the layers run.
fn active_device() -> impl Strategy<Value = DeviceContext> {
    (
        prop::sample::select(&[TrustState::Protected, TrustState::ReviewRequired][..]),
        prop::sample::select(&[DeviceState::Trusted, DeviceState::Restricted][..]),
    )
        .prop_map(|(t, l)| DeviceContext {
            trust_state: Some(t),
            lifecycle: Some(l),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn engine_equals_the_reference_model(
        doc in policy(),
        flows in prop::collection::vec((prop_oneof![3 => active_device(), 1 => device()], flow()), 1..16),
    ) {
        let compiled = CompiledPolicy::compile(&doc).expect("generated policies are valid");
        // Written out and read back, the document compiles to the same decisions.
        let reparsed = CompiledPolicy::from_json(serde_json::to_string(&doc).unwrap().as_bytes()).unwrap();
        for (device, spec) in &flows {
            let flow = spec.flow();
            let expected = model(&doc, device, &flow);
            prop_assert_eq!(&engine(&compiled, device, &flow), &expected, "flow {:?} device {:?}", spec, device);
            prop_assert_eq!(&engine(&reparsed, device, &flow), &expected);
            let explained = compiled.explain(device, &flow);
            prop_assert_eq!(explained.decision, compiled.decide(device, &flow));
            if explained.decision.rule != FAIL_CLOSED_RULE {
                prop_assert_eq!(explained.layers.len(), doc.layers.len());
            }
        }
    }

    #[test]
    fn byte_form_decides_exactly_as_the_compiled_policy(
        doc in policy(),
        flows in prop::collection::vec((prop_oneof![3 => active_device(), 1 => device()], flow()), 1..16),
    ) {
        let compiled = CompiledPolicy::compile(&doc).unwrap();
        let bytes = compiled.to_bytes();
        let mapped = CompiledPolicy::from_bytes(bytes.clone()).unwrap();
        // Written out again, the mapped policy is the same bytes.
        prop_assert_eq!(&mapped.to_bytes(), &bytes);
        let shared = CompiledPolicy::from_bytes(std::sync::Arc::<[u8]>::from(bytes)).unwrap();
        for (device, spec) in &flows {
            let flow = spec.flow();
            prop_assert_eq!(mapped.decide(device, &flow), compiled.decide(device, &flow), "flow {:?}", spec);
            prop_assert_eq!(shared.decide(device, &flow), compiled.decide(device, &flow));
            prop_assert_eq!(mapped.explain(device, &flow), compiled.explain(device, &flow));
            prop_assert_eq!(&engine(&mapped, device, &flow), &model(&doc, device, &flow));
        }
    }

    #[test]
    fn no_route_for_an_inactive_or_unusable_device(
        doc in policy(),
        spec in flow(),
        trust in prop::sample::select(&TrustState::ALL[..]),
        lifecycle in prop::sample::select(&DeviceState::ALL[..]),
    ) {
        prop_assume!(trust == TrustState::Inactive || !matches!(lifecycle, DeviceState::Trusted | DeviceState::Restricted));
        let compiled = CompiledPolicy::compile(&doc).unwrap();
        let device = DeviceContext { trust_state: Some(trust), lifecycle: Some(lifecycle) };
        let d = compiled.decide(&device, &spec.flow());
        prop_assert!(d.route.is_block(), "{:?}", d);
        prop_assert_eq!(d.rule, FAIL_CLOSED_RULE);
        prop_assert!(matches!(
            d.route,
            Route::Block(BlockReason::DeviceInactive | BlockReason::DeviceNotActive | BlockReason::MissingInput)
        ));
    }

    #[test]
    fn arbitrary_bytes_never_route_unless_they_compile(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        // Whatever fails to parse leaves the caller without a policy, which blocks everything.
        if let Ok(p) = CompiledPolicy::from_json(&bytes) {
            let _ = p.decide(&DeviceContext::default(), &Flow::default());
        }
        let d = enigm_netpolicy::decide(None, &DeviceContext::default(), &Flow::default());
        prop_assert_eq!(d.route, Route::Block(BlockReason::NoPolicy));
    }
}
