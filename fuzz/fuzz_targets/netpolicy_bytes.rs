//! Fuzzes the byte form of a compiled network policy (`CompiledPolicy::from_bytes`). The first
//! byte picks the mode:
//!
//! - even: the rest is handed to `from_bytes` as it is (header, length and checksum checks);
//! - odd: the rest, up to its first `0xff` byte, is a policy document; if it compiles, its byte
//!   form is edited by the bytes after the `0xff` (pairs of a two-byte position and a value
//!   XORed in there) and resealed (`reseal_bytes`), so the edits reach the structural checks.
//!
//! Properties: nothing panics; bytes that decode decide and explain without panicking, agree
//! between `decide` and `explain`, and write back to bytes that decode to the same bytes;
//! unedited bytes decide every probe flow exactly as the compiled policy; an edit that is not
//! resealed is always refused; a refused byte form leaves no policy, which blocks.

#![no_main]

use std::net::IpAddr;

use enigm_netpolicy::{
    BlockReason, CompiledPolicy, DeviceContext, DeviceState, Flow, Route, TrustState, decide,
    reseal_bytes,
};
use libfuzzer_sys::fuzz_target;

const OK: DeviceContext = DeviceContext {
    trust_state: Some(TrustState::Protected),
    lifecycle: Some(DeviceState::Trusted),
};

fn probe_flows() -> Vec<Flow<'static>> {
    let ips: [Option<IpAddr>; 4] = [
        None,
        "203.0.113.7".parse().ok(),
        "10.1.2.3".parse().ok(),
        "2001:db8::1".parse().ok(),
    ];
    let mut flows = Vec::new();
    for app in ["browser", "chat", "news"] {
        for domain in [Some("www.example.com"), Some("evil.example"), None] {
            for ip in ips {
                for network in [Some("office"), None] {
                    flows.push(Flow {
                        app: Some(app),
                        category: Some("web"),
                        domain,
                        ip: if domain.is_none() && ip.is_none() {
                            ips[1]
                        } else {
                            ip
                        },
                        network,
                    });
                }
            }
        }
    }
    flows
}

fn check_decoded(policy: &CompiledPolicy, flows: &[Flow<'_>]) {
    for flow in flows {
        let decision = policy.decide(&OK, flow);
        assert_eq!(policy.explain(&OK, flow).decision, decision);
    }
    let again = policy.to_bytes();
    let reread = CompiledPolicy::from_bytes(again.clone()).expect("written bytes decode");
    assert_eq!(reread.to_bytes(), again);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let flows = probe_flows();
    if mode & 1 == 0 {
        match CompiledPolicy::from_bytes(rest.to_vec()) {
            Ok(policy) => check_decoded(&policy, &flows),
            Err(_) => {
                let d = decide(None, &OK, &flows[0]);
                assert_eq!(d.route, Route::Block(BlockReason::NoPolicy));
            }
        }
        return;
    }
    let (json, edits) = match rest.iter().position(|&b| b == 0xff) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(compiled) = CompiledPolicy::from_json(json) else {
        return;
    };
    let bytes = compiled.to_bytes();
    let mapped = CompiledPolicy::from_bytes(bytes.clone()).expect("a policy's bytes decode");
    for flow in &flows {
        assert_eq!(mapped.decide(&OK, flow), compiled.decide(&OK, flow));
    }
    let mut edited = bytes.clone();
    for edit in edits.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([edit[0], edit[1]])) % edited.len();
        edited[at] ^= edit[2];
    }
    if edited != bytes {
        // Without a new seal, an edit is always caught.
        assert!(CompiledPolicy::from_bytes(edited.clone()).is_err());
    }
    reseal_bytes(&mut edited);
    if let Ok(policy) = CompiledPolicy::from_bytes(edited) {
        check_decoded(&policy, &flows);
    }
});
