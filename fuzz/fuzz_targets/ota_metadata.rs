//! Fuzzes enigm-ota's parsing and verification of TUF metadata, which devices receive from a
//! repository they do not trust: the input is one metadata document offered, in turn, as a
//! trusted root, as the next root of a fixed repository, and as its timestamp, snapshot and
//! targets (through the refresh machine), plus a target's Enigm release fields.
//!
//! Properties: nothing panics; a document accepted as a role parses as that role and the
//! canonical form of its `signed` part depends only on the value; the refresh machine never asks
//! for more bytes than its bound and, once a step fails, nothing of the input is trusted.

#![no_main]

use enigm_crypto::Ed25519SigningKey;
use enigm_ota::client::{FetchFailure, Limits, Refresh, TrustedMetadata};
use enigm_ota::metadata::{Root, Snapshot, Targets, Timestamp, parse};
use enigm_ota::repository::{RootKeys, build_root};
use enigm_ota::{MetadataSigner, SoftwareSigner, sign_metadata};
use enigm_types::Timestamp as Time;
use libfuzzer_sys::fuzz_target;

/// 2026-11-22T00:00:00Z.
const NOW: Time = Time::from_unix_millis(1_795_305_600_000);

fn key(seed: u8) -> SoftwareSigner {
    SoftwareSigner::Ed25519(Ed25519SigningKey::from_seed(&[seed; 32]))
}

fn fixed_root() -> Vec<u8> {
    let (root, targets, snapshot, timestamp, release) = (key(1), key(2), key(3), key(4), key(5));
    let keys = RootKeys {
        root: vec![root.key()],
        root_threshold: 1,
        targets: vec![targets.key()],
        targets_threshold: 1,
        snapshot: snapshot.key(),
        timestamp: timestamp.key(),
        release: vec![release.key()],
        release_threshold: 1,
    };
    let metadata = build_root(
        &keys,
        1,
        Time::from_unix_millis(NOW.unix_millis() + 86_400_000),
    );
    sign_metadata(&metadata, &[&root]).expect("the fixed root signs")
}

/// OLPC canonical JSON writes control characters in strings raw (as securesystemslib does, so
/// that signatures interoperate), so it is not always JSON itself; what must hold is that it
/// depends only on the value: the same value written another way canonicalises the same.
fn canonical_depends_only_on_the_value(bytes: &[u8]) {
    if let Ok(envelope) = serde_json::from_slice::<enigm_ota::metadata::Envelope>(bytes) {
        if let Ok(canonical) = enigm_ota::canonical::canonical_json(&envelope.signed) {
            let pretty = serde_json::to_vec_pretty(&envelope.signed).expect("a value serialises");
            let reparsed: serde_json::Value =
                serde_json::from_slice(&pretty).expect("serde_json reads what it wrote");
            assert_eq!(
                enigm_ota::canonical::canonical_json(&reparsed).expect("still canonicalisable"),
                canonical
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = parse::<Root>(data);
    let _ = parse::<Timestamp>(data);
    let _ = parse::<Snapshot>(data);
    let _ = parse::<Targets>(data);
    canonical_depends_only_on_the_value(data);
    if let Ok(trusted) = TrustedMetadata::new(data) {
        assert!(parse::<Root>(data).is_ok());
        let _ = enigm_ota::release::release_signing(trusted.root());
    }
    // The input as each document of a refresh of a fixed repository.
    let root = fixed_root();
    let trusted = TrustedMetadata::new(&root).expect("the fixed root verifies");
    let mut refresh = Refresh::new(trusted, Limits::default(), NOW);
    let mut steps = 0;
    while let Some(request) = refresh.next_request() {
        steps += 1;
        assert!(steps < 8, "a refresh of one document takes a few steps");
        let fetched = if request.role == "root" && data.first() == Some(&0) {
            Err(FetchFailure::NotFound)
        } else {
            Ok(data.to_vec())
        };
        if fetched
            .as_ref()
            .is_ok_and(|bytes| bytes.len() as u64 > request.max_length)
        {
            assert!(refresh.provide(fetched).is_err());
            break;
        }
        if refresh.provide(fetched).is_err() {
            break;
        }
    }
});
