//! Fuzzes the network policy engine (`enigm-netpolicy`): the input, up to its first `0xff` byte,
//! is a policy document parsed and compiled; the rest picks the device (first byte) and spells a
//! flow (app, category, domain, address and network, one per line).
//!
//! Properties: nothing panics; a policy that does not compile leaves no policy, which blocks
//! (`no-policy`); an INACTIVE or inactive-lifecycle device, or a missing input, is blocked
//! before any layer; `direct` is only ever decided by a policy that allows it; the deciding rule
//! is one of the policy's or an implicit one; `explain` agrees with `decide`; the document
//! written back as JSON decides the same.

#![no_main]

use std::net::IpAddr;

use enigm_netpolicy::{
    BlockReason, CompiledPolicy, DEFAULT_RULE, DeviceContext, DeviceState, FAIL_CLOSED_RULE, Flow,
    PolicyDocument, Route, TrustState, decide,
};
use libfuzzer_sys::fuzz_target;

fn field(lines: &[&str], i: usize) -> Option<String> {
    lines
        .get(i)
        .filter(|s| !s.is_empty())
        .map(|s| (*s).to_owned())
}

fuzz_target!(|data: &[u8]| {
    let (policy, rest) = match data.iter().position(|&b| b == 0xff) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let selector = rest.first().copied().unwrap_or(0);
    let trust = [
        None,
        Some(TrustState::Protected),
        Some(TrustState::ReviewRequired),
        Some(TrustState::Inactive),
    ][usize::from(selector & 3)];
    let lifecycle = [
        None,
        Some(DeviceState::Trusted),
        Some(DeviceState::Restricted),
        Some(DeviceState::Revoked),
        Some(DeviceState::PendingEnrollment),
        Some(DeviceState::Replaced),
        Some(DeviceState::Retired),
        Some(DeviceState::Trusted),
    ][usize::from((selector >> 2) & 7)];
    let device = DeviceContext {
        trust_state: trust,
        lifecycle,
    };
    let text = String::from_utf8_lossy(rest.get(1..).unwrap_or_default());
    let lines: Vec<&str> = text.split('\n').collect();
    let (app, category, domain, network) = (
        field(&lines, 0),
        field(&lines, 1),
        field(&lines, 2),
        field(&lines, 4),
    );
    let ip = field(&lines, 3).and_then(|s| s.parse::<IpAddr>().ok());
    let flow = Flow {
        app: app.as_deref(),
        category: category.as_deref(),
        domain: domain.as_deref(),
        ip,
        network: network.as_deref(),
    };

    let compiled = CompiledPolicy::from_json(policy).ok();
    let decision = decide(compiled.as_ref(), &device, &flow);

    let unusable = trust.is_none()
        || lifecycle.is_none()
        || trust == Some(TrustState::Inactive)
        || !lifecycle.is_some_and(DeviceState::is_active)
        || (flow.app.is_none() && flow.category.is_none())
        || (flow.domain.is_none() && flow.ip.is_none());
    if unusable || compiled.is_none() {
        assert!(decision.route.is_block(), "{decision:?}");
        assert_eq!(decision.rule, FAIL_CLOSED_RULE);
    }
    let Some(compiled) = compiled.as_ref() else {
        assert_eq!(decision.route, Route::Block(BlockReason::NoPolicy));
        return;
    };
    let doc = PolicyDocument::from_json(policy).expect("a compiled policy parses");
    if decision.route == Route::Direct {
        assert!(doc.allow_direct, "direct without allow_direct");
    }
    let known = decision.rule == DEFAULT_RULE
        || decision.rule == FAIL_CLOSED_RULE
        || doc
            .layers
            .iter()
            .flat_map(|l| &l.rules)
            .any(|r| r.id == decision.rule);
    assert!(known, "decided by unknown rule {}", decision.rule);
    assert_eq!(compiled.explain(&device, &flow).decision, decision);

    let again = serde_json::to_vec(&doc).expect("a document serialises");
    let recompiled = CompiledPolicy::from_json(&again).expect("its JSON compiles again");
    assert_eq!(recompiled.decide(&device, &flow), decision);
});
