//! The byte form of a compiled policy: it decides as the compiled policy (large tables with the
//! rebuilt IPv4 index included), and truncated, bit-flipped or edited bytes give a typed error,
//! never a panic; an error leaves no policy, which blocks every flow.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests"
)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use enigm_netpolicy::{
    BYTES_VERSION, BlockReason, BytesError, CompiledPolicy, DeviceContext, DeviceState, Flow,
    Route, TrustState, decide, reseal_bytes,
};
use serde_json::json;

const OK: DeviceContext = DeviceContext {
    trust_state: Some(TrustState::Protected),
    lifecycle: Some(DeviceState::Trusted),
};

/// A small policy with every kind of table and condition: a blocklist (names and both
/// families of CIDRs), rule domains and CIDRs, apps, categories, networks, device conditions,
/// a re-openable block, every route.
fn small() -> CompiledPolicy {
    CompiledPolicy::from_json(
        json!({
            "version": 1,
            "allow_direct": true,
            "trusted_networks": ["office", "home"],
            "blocklists": {
                "threats": {"domains": ["evil.example", "Bad.Co.Uk"], "cidrs": ["203.0.113.0/24", "2001:db8:bad::/48"]},
                "empty": {}
            },
            "layers": [
                {"id": "intel", "rules": [
                    {"id": "block-threats", "match": {"blocklist": "threats"}, "action": {"block": {"reason": "malware"}}, "reopenable_by": ["research-direct"]}
                ]},
                {"id": "routing", "rules": [
                    {"id": "research-direct", "match": {"apps": ["research"], "network": "trusted"}, "action": {"route": "direct"}},
                    {"id": "chat-vpn", "match": {"apps": ["chat"], "trust_states": ["PROTECTED"]}, "action": {"route": {"vpn": "ch"}}},
                    {"id": "news-tor", "match": {"categories": ["news"], "domains": ["news.example"]}, "action": {"route": "tor-gateway"}},
                    {"id": "lan-block", "match": {"cidrs": ["10.0.0.0/8", "fd00::/8"], "lifecycle": ["trusted"]}, "action": {"block": {"reason": "lan"}}},
                    {"id": "proxy-all", "match": {"network": "untrusted"}, "action": {"route": "enigm-proxy"}}
                ]}
            ]
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap()
}

fn flows() -> Vec<Flow<'static>> {
    let mut flows = Vec::new();
    for app in [Some("research"), Some("chat"), Some("browser"), None] {
        for category in [Some("news"), None] {
            for domain in [
                Some("www.evil.example"),
                Some("BAD.co.uk."),
                Some("news.example"),
                Some("a.news.example"),
                Some("notevil.example"),
                Some("bad..name"),
                None,
            ] {
                for ip in [
                    Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9))),
                    Some(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))),
                    Some(IpAddr::V6("2001:db8:bad::1".parse::<Ipv6Addr>().unwrap())),
                    Some(IpAddr::V6(
                        "::ffff:203.0.113.1".parse::<Ipv6Addr>().unwrap(),
                    )),
                    Some(IpAddr::V6("fd00::1".parse::<Ipv6Addr>().unwrap())),
                    None,
                ] {
                    for network in [Some("office"), Some("cafe"), None] {
                        flows.push(Flow {
                            app,
                            category,
                            domain,
                            ip,
                            network,
                        });
                    }
                }
            }
        }
    }
    flows
}

fn devices() -> Vec<DeviceContext> {
    let mut devices = vec![DeviceContext::default()];
    for trust in TrustState::ALL {
        for lifecycle in DeviceState::ALL {
            devices.push(DeviceContext {
                trust_state: Some(trust),
                lifecycle: Some(lifecycle),
            });
        }
    }
    devices
}

#[test]
fn the_byte_form_decides_and_explains_as_the_compiled_policy() {
    let compiled = small();
    let bytes = compiled.to_bytes();
    assert_eq!(&bytes[..8], b"ENPOLICY");
    assert_eq!(
        u32::from_le_bytes(bytes[8..12].try_into().unwrap()),
        BYTES_VERSION
    );
    let mapped = CompiledPolicy::from_bytes(bytes.clone()).unwrap();
    assert_eq!(mapped.to_bytes(), bytes);
    let mut routes = std::collections::BTreeSet::new();
    for device in devices() {
        for flow in flows() {
            let d = compiled.decide(&device, &flow);
            assert_eq!(mapped.decide(&device, &flow), d, "{flow:?} {device:?}");
            assert_eq!(
                mapped.explain(&device, &flow),
                compiled.explain(&device, &flow)
            );
            routes.insert(format!("{:?}", d.route));
        }
    }
    // The flows reach every outcome, so the comparison covers every kind of rule.
    for route in [
        "Direct",
        "Vpn(\"ch\")",
        "TorGateway",
        "EnigmProxy",
        "Block(Policy(\"malware\"))",
        "Block(Policy(\"lan\"))",
        "Block(DefaultDeny)",
        "Block(InvalidDestination)",
    ] {
        assert!(routes.contains(route), "{route} not reached: {routes:?}");
    }
}

#[test]
fn large_tables_decide_the_same_read_in_place() {
    // Enough IPv4 intervals for the /16 index, which the decoder rebuilds rather than reads.
    let cidrs: Vec<String> = (0..6000u32)
        .map(|i| format!("{}/28", Ipv4Addr::from(i.wrapping_mul(2_654_435_761) & !15)))
        .collect();
    let domains: Vec<String> = (0..20_000).map(|i| format!("n{i}.example")).collect();
    let compiled = CompiledPolicy::from_json(
        json!({
            "version": 1,
            "blocklists": {"big": {"domains": domains, "cidrs": cidrs}},
            "layers": [
                {"id": "intel", "rules": [{"id": "big", "match": {"blocklist": "big"}, "action": {"block": {"reason": "listed"}}}]},
                {"id": "route", "rules": [{"id": "proxy", "action": {"route": "enigm-proxy"}}]}
            ]
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let bytes = compiled.to_bytes();
    let mapped = CompiledPolicy::from_bytes(bytes).unwrap();
    assert_eq!(mapped.blocklist_bytes(), compiled.blocklist_bytes());
    let mut blocked = 0;
    for i in 0..40_000u32 {
        let name = format!("www.n{}.example", i / 2);
        let ip = Ipv4Addr::from(i.wrapping_mul(2_654_435_761) & !7 | (i % 9));
        let flow = Flow {
            app: Some("app"),
            domain: (i % 3 != 0).then_some(name.as_str()),
            ip: Some(IpAddr::V4(ip)),
            ..Flow::default()
        };
        let d = compiled.decide(&OK, &flow);
        assert_eq!(mapped.decide(&OK, &flow), d, "{flow:?}");
        blocked += usize::from(d.route.is_block());
    }
    assert!(blocked > 1000 && blocked < 39_000, "{blocked}");
}

#[test]
fn every_truncation_is_refused() {
    let bytes = small().to_bytes();
    for len in 0..bytes.len() {
        let err = CompiledPolicy::from_bytes(bytes[..len].to_vec()).unwrap_err();
        let expected = if len < 32 {
            BytesError::TooShort
        } else {
            BytesError::LengthMismatch
        };
        assert_eq!(err, expected, "truncated to {len}");
        // Even with the header rewritten to match, a cut body does not decode.
        let mut sealed = bytes[..len].to_vec();
        reseal_bytes(&mut sealed);
        assert!(
            CompiledPolicy::from_bytes(sealed).is_err(),
            "resealed truncation to {len} decoded"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        CompiledPolicy::from_bytes(longer.clone()).unwrap_err(),
        BytesError::LengthMismatch
    );
    reseal_bytes(&mut longer);
    assert_eq!(
        CompiledPolicy::from_bytes(longer).unwrap_err(),
        BytesError::TrailingBytes
    );
}

#[test]
fn every_bit_flip_is_refused() {
    let bytes = small().to_bytes();
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let err = CompiledPolicy::from_bytes(flipped).unwrap_err();
        let expected = match bit / 8 {
            0..8 => BytesError::BadMagic,
            8..12 => BytesError::UnsupportedVersion(BYTES_VERSION ^ (1 << (bit % 32))),
            12..16 => BytesError::UnknownFlags,
            16..24 => BytesError::LengthMismatch,
            _ => BytesError::ChecksumMismatch,
        };
        assert_eq!(err, expected, "bit {bit}");
    }
}

#[test]
fn resealed_edits_never_panic_and_decode_only_to_valid_policies() {
    // Edits that pass the checksum reach the structural checks: each byte of the body set to a
    // few values. Whatever decodes decides without panicking and re-encodes to itself.
    let bytes = small().to_bytes();
    let flows = flows();
    let mut refused = 0usize;
    for at in 32..bytes.len() {
        for value in [0x00, 0x01, 0x02, 0x05, 0x7f, 0x80, 0xff, bytes[at] ^ 0x20] {
            let mut edited = bytes.clone();
            edited[at] = value;
            reseal_bytes(&mut edited);
            match CompiledPolicy::from_bytes(edited) {
                Err(_) => refused += 1,
                Ok(policy) => {
                    for flow in flows.iter().step_by(7) {
                        let _ = policy.explain(&OK, flow);
                    }
                    let again = policy.to_bytes();
                    assert_eq!(
                        CompiledPolicy::from_bytes(again.clone())
                            .unwrap()
                            .to_bytes(),
                        again
                    );
                }
            }
        }
    }
    assert!(refused > 0);
}

#[test]
fn specific_structural_faults_have_typed_errors() {
    let bytes = small().to_bytes();
    let mut version = bytes.clone();
    version[8..12].copy_from_slice(&2u32.to_le_bytes());
    assert_eq!(
        CompiledPolicy::from_bytes(version).unwrap_err(),
        BytesError::UnsupportedVersion(2)
    );

    // A direct route in a policy without allow_direct is refused, as compile refuses it.
    let mut no_direct = bytes.clone();
    assert_eq!(no_direct[32], 1, "allow_direct is the body's first byte");
    no_direct[32] = 0;
    reseal_bytes(&mut no_direct);
    assert!(matches!(
        CompiledPolicy::from_bytes(no_direct).unwrap_err(),
        BytesError::Invalid(_)
    ));

    // An empty domain table (no empty slot, so a probe could not end) is refused: the first
    // blocklist's table ("empty", sorted first) has one slot, set to 0; make it non-zero.
    let start = 32 + 1 + 4 + (2 + 4) + (2 + 6) + 4 + 16 + 8;
    assert_eq!(&bytes[start..start + 8], &[0u8; 8]);
    let mut full = bytes.clone();
    full[start] = 1;
    reseal_bytes(&mut full);
    assert_eq!(
        CompiledPolicy::from_bytes(full).unwrap_err(),
        BytesError::Invalid("domain table")
    );

    // A count larger than the bytes could hold is refused before anything is allocated.
    let mut huge = bytes[..32 + 1].to_vec();
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    reseal_bytes(&mut huge);
    assert_eq!(
        CompiledPolicy::from_bytes(huge).unwrap_err(),
        BytesError::Invalid("trusted network")
    );
}

#[test]
fn refused_bytes_leave_no_policy_which_blocks() {
    let mut bytes = small().to_bytes();
    bytes[40] ^= 1;
    let policy = CompiledPolicy::from_bytes(bytes).ok();
    assert!(policy.is_none());
    for flow in flows() {
        assert_eq!(
            decide(policy.as_ref(), &OK, &flow).route,
            Route::Block(BlockReason::NoPolicy)
        );
    }
}
