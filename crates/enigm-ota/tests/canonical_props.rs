//! Properties of the signing input and of metadata parsing: canonical JSON depends only on the
//! value (not on key order or whitespace), is idempotent, and reads back as the same value when
//! it is JSON (OLPC canonical JSON keeps control characters raw, so it is not always); signed
//! metadata round-trips through verification unchanged; any change to a signed byte that still
//! parses breaks the signature. The differential check against securesystemslib itself is in
//! `python_interop.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed expectation is the test failure"
)]

use std::collections::BTreeMap;

use enigm_crypto::Ed25519SigningKey;
use enigm_ota::canonical::canonical_json;
use enigm_ota::metadata::{RoleKeys, TargetFile, Targets, verify_role};
use enigm_ota::repository::{build_targets, target_file};
use enigm_ota::{MetadataSigner, SoftwareSigner, sign_metadata};
use enigm_types::Timestamp;
use proptest::prelude::*;
use serde_json::Value;

/// JSON values canonical JSON can encode: no floats.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[a-z\"\\\\é\u{1F600}\n]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..8)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn has_control_characters(value: &Value) -> bool {
    match value {
        Value::String(text) => text.chars().any(char::is_control),
        Value::Array(items) => items.iter().any(has_control_characters),
        Value::Object(map) => map
            .iter()
            .any(|(key, item)| key.chars().any(char::is_control) || has_control_characters(item)),
        _ => false,
    }
}

/// The same value with every object's keys inserted in reverse order (what a producer with
/// another map type would write).
fn reordered(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(reordered).collect()),
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (key, item) in map.iter().rev() {
                out.insert(key.clone(), reordered(item));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn target_entry() -> impl Strategy<Value = (String, TargetFile)> {
    (
        "[a-z0-9]{1,8}(/[a-z0-9._-]{1,8}){0,2}",
        any::<u64>(),
        prop::array::uniform32(any::<u8>()),
        // `"custom": null` reads back as no custom field (the signature, over the bytes as
        // received, is unaffected); the typed round trip holds for every other value.
        prop::option::of(json_value().prop_filter("not null", |value| !value.is_null())),
    )
        .prop_map(|(name, length, digest, custom)| {
            (name, target_file(length, &hex::encode(digest), custom))
        })
}

const NOW: Timestamp = Timestamp::from_unix_millis(1_795_305_600_000);

proptest! {
    #[test]
    fn canonical_json_depends_only_on_the_value(value in json_value()) {
        let canonical = canonical_json(&value).unwrap();
        prop_assert_eq!(&canonical_json(&reordered(&value)).unwrap(), &canonical);
        let pretty: Value = serde_json::from_str(&serde_json::to_string_pretty(&value).unwrap())
            .unwrap();
        prop_assert_eq!(&canonical_json(&pretty).unwrap(), &canonical);
        if !has_control_characters(&value) {
            let read_back: Value = serde_json::from_slice(&canonical).unwrap();
            prop_assert_eq!(&read_back, &value);
            prop_assert_eq!(canonical_json(&read_back).unwrap(), canonical);
        }
    }

    #[test]
    fn signed_targets_round_trip_through_verification(
        entries in prop::collection::vec(target_entry(), 0..6),
        version in 1u64..1_000_000,
    ) {
        let signer = SoftwareSigner::Ed25519(Ed25519SigningKey::from_seed(&[3; 32]));
        let key = signer.key();
        let targets: BTreeMap<String, TargetFile> = entries.into_iter().collect();
        let metadata = build_targets(targets, version, Timestamp::from_unix_millis(
            NOW.unix_millis() + 86_400_000,
        ));
        let bytes = sign_metadata(&metadata, &[&signer]).unwrap();
        let keys = BTreeMap::from([(key.key_id(), key.clone())]);
        let role = RoleKeys {
            keyids: vec![key.key_id()],
            threshold: 1,
            unrecognized: serde_json::Map::new(),
        };
        let verified = verify_role::<Targets>(&bytes, &keys, &role).unwrap();
        prop_assert_eq!(verified.signed(), &metadata);
        prop_assert_eq!(verified.bytes(), &bytes[..]);
    }

    #[test]
    fn a_changed_signed_value_breaks_the_signature(
        entry in target_entry(),
        new_length in any::<u64>(),
    ) {
        let signer = SoftwareSigner::Ed25519(Ed25519SigningKey::from_seed(&[4; 32]));
        let key = signer.key();
        let (name, file) = entry;
        prop_assume!(file.length != new_length);
        let metadata = build_targets(BTreeMap::from([(name.clone(), file)]), 1, NOW);
        let bytes = sign_metadata(&metadata, &[&signer]).unwrap();
        let mut envelope: Value = serde_json::from_slice(&bytes).unwrap();
        envelope["signed"]["targets"][name.as_str()]["length"] = Value::from(new_length);
        let tampered = serde_json::to_vec(&envelope).unwrap();
        let keys = BTreeMap::from([(key.key_id(), key.clone())]);
        let role = RoleKeys {
            keyids: vec![key.key_id()],
            threshold: 1,
            unrecognized: serde_json::Map::new(),
        };
        let error = verify_role::<Targets>(&tampered, &keys, &role).unwrap_err();
        prop_assert_eq!(error.category(), enigm_ota::FailureCategory::BadSignature);
    }
}
