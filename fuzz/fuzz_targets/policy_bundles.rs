//! Fuzzes what a device does with a policy bundle it downloads (`enigm-ota`'s
//! `policy_bundle`): the input is the bundle content, offered both to the strict parser and as
//! the verified content of a bundle target that names a fixed group and number; its first byte
//! also picks the custom fields of the target, so the appraisal of arbitrary fields runs too.
//!
//! Properties: nothing panics; content accepted for a target is for that target's group and
//! number; accepted content written back canonically is accepted again as the same bundle;
//! an appraisal never installs a bundle numbered below the one held, nor another one under the
//! number held.

#![no_main]

use enigm_crypto::Ed25519SigningKey;
use enigm_ota::metadata::{RoleKeys, Targets, verify_role};
use enigm_ota::policy_bundle::{
    Appraisal, BundleFields, HeldBundle, appraise_bundle, bundle_target_name, parse_bundle,
    read_bundle,
};
use enigm_ota::repository::{build_targets, target_file};
use enigm_ota::{MetadataSigner, SoftwareSigner, sign_metadata};
use libfuzzer_sys::fuzz_target;

/// `name` as a verified target of targets metadata signed with a fixed key (the bundle
/// delegation's key, as far as the appraisal can tell).
fn verified(targets: &Targets, name: &str) -> Option<enigm_ota::VerifiedTarget> {
    let key = SoftwareSigner::Ed25519(Ed25519SigningKey::from_seed(&[9; 32]));
    let signed = sign_metadata(targets, &[&key]).ok()?;
    let public = key.key();
    let role = RoleKeys {
        keyids: vec![public.key_id()],
        threshold: 1,
        unrecognized: serde_json::Map::new(),
    };
    let mut keys = std::collections::BTreeMap::new();
    keys.insert(public.key_id(), public);
    let verified = verify_role::<Targets>(&signed, &keys, &role).ok()?;
    enigm_ota::client::target_of(&verified, name)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = parse_bundle(data) {
        let again = bundle.to_bytes().expect("a parsed bundle serialises");
        assert_eq!(
            parse_bundle(&again).expect("its canonical form parses"),
            bundle
        );
    }
    let Some((&selector, content)) = data.split_first() else {
        return;
    };
    let sequence = u64::from(selector % 8);
    let group = if selector & 0x80 == 0 { "field" } else { "lab" };
    // Custom fields from the fuzzer when the selector says so, else well-formed ones.
    let custom = if selector & 0x40 != 0 {
        serde_json::from_slice(content).ok()
    } else {
        Some(
            BundleFields {
                kind: "policy-bundle".to_owned(),
                group: group.to_owned(),
                rollback_index: sequence,
            }
            .custom(),
        )
    };
    let sha = hex::encode(enigm_crypto::sha256(content));
    let name = bundle_target_name(group, sequence);
    let mut listed = std::collections::BTreeMap::new();
    listed.insert(
        name.clone(),
        target_file(content.len() as u64, &sha, custom),
    );
    let targets = build_targets(listed, 1, enigm_types::Timestamp::from_unix_millis(0));
    let Some(target) = verified(&targets, &name) else {
        return;
    };
    for held in [
        None,
        Some(HeldBundle {
            sequence: 3,
            sha256: "00",
        }),
    ] {
        match appraise_bundle(&target, "field", held) {
            Ok(Appraisal::Install(approved)) => {
                if let Some(held) = held {
                    assert!(approved.fields().rollback_index > held.sequence);
                }
                if let Ok(bundle) = read_bundle(&approved, content) {
                    assert_eq!(bundle.group, "field");
                    assert_eq!(bundle.sequence, approved.fields().rollback_index);
                }
            }
            Ok(Appraisal::Current) => {
                assert!(held.is_some_and(|held| held.sha256.eq_ignore_ascii_case(&sha)));
            }
            Err(_) => {}
        }
    }
});
