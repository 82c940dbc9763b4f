//! Fuzzes what a device makes of a director answer (`enigm_ota::director`), which comes from
//! Command over the network: by the first byte, the rest as an answer's bytes; or as the
//! `signed` part of an answer, signed for the occasion by the pinned director key so that the
//! checks behind the signature are reached; or a valid answer with one byte the input picks
//! flipped by a mask the input picks. Every accepted answer is then agreed against a fixed
//! listed release.
//!
//! Properties: nothing panics; accepted bytes are their own canonical form, for the expected
//! device and nonce, current at the fixed time and valid for at most the maximum lifetime;
//! what parses re-signs to bytes that verify the same; a flipped valid answer is always
//! refused; an agreed offer names exactly the listed target's name, length and digest.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use enigm_crypto::Ed25519SigningKey;
use enigm_ota::client::target_of;
use enigm_ota::director::{
    DirectorAnswer, DirectorKeys, DirectorOffer, MAX_ANSWER_LIFETIME, MAX_CLOCK_SKEW,
    VerifiedDirectorAnswer, agree, parse_answer, sign_answer, verify_answer,
};
use enigm_ota::metadata::{RoleKeys, Targets, verify_role};
use enigm_ota::repository::{build_targets, release_entry};
use enigm_ota::{MetadataSigner, SoftwareSigner, VerifiedTarget, sign_metadata};
use enigm_types::{DeviceHandle, Timestamp};
use libfuzzer_sys::fuzz_target;

/// 2026-11-22T00:00:00Z.
const NOW: Timestamp = Timestamp::from_unix_millis(1_795_305_600_000);
const NONCE: &str = "q2Vw4hX0mJ9sYtR3uKcZ1A";
const NAME: &str = "os/enigm-sim/5.img";
const SHA: &str = "3a1f0c2b4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8";

fn director() -> SoftwareSigner {
    SoftwareSigner::Ed25519(Ed25519SigningKey::from_seed(&[10; 32]))
}

fn device() -> DeviceHandle {
    DeviceHandle::from_digest(&[1; 20])
}

fn pin() -> DirectorKeys {
    DirectorKeys::new(&[director().key()], 1).expect("one key, threshold one")
}

fn listed() -> enigm_ota::metadata::TargetFile {
    let fields = enigm_ota::release::ReleaseFields {
        kind: "os-image".to_owned(),
        release_version: "2026.5".to_owned(),
        rollback_index: 5,
        channel: "stable".to_owned(),
        hardware: vec!["enigm-sim".to_owned()],
        expires: "2027-06-01T00:00:00Z".to_owned(),
        payload_signatures: Vec::new(),
    };
    release_entry(NAME, 4096, SHA, &fields, &[]).expect("an entry without payload signatures")
}

fn valid_answer() -> Vec<u8> {
    let offer = DirectorOffer::for_listed(NAME, &listed()).expect("a listed release");
    let answer = DirectorAnswer::new(device(), NONCE, NOW, Duration::from_secs(300), Some(offer))
        .expect("a valid answer");
    sign_answer(&answer, &[&director() as &dyn MetadataSigner]).expect("signs")
}

fn check(bytes: &[u8]) -> Option<VerifiedDirectorAnswer> {
    let parsed = parse_answer(bytes);
    let verified = verify_answer(bytes, &pin(), &device(), NONCE, NOW);
    if let Ok((_, answer)) = &parsed {
        // What parses re-signs to canonical bytes that verify to the same answer, unless the
        // answer is for another request or outside its time.
        let resigned = sign_answer(answer, &[&director() as &dyn MetadataSigner]).expect("signs");
        let again = verify_answer(&resigned, &pin(), &device(), NONCE, NOW);
        if let Ok(again) = &again {
            assert_eq!(again.answer(), answer);
        }
        if verified.is_ok() {
            assert!(again.is_ok());
        }
    }
    let verified = verified.ok()?;
    assert!(parsed.is_ok());
    let value: serde_json::Value = serde_json::from_slice(bytes).expect("accepted bytes are JSON");
    assert_eq!(
        enigm_ota::canonical::canonical_json(&value).expect("canonical"),
        bytes
    );
    let answer = verified.answer();
    assert_eq!(answer.device(), &device());
    assert_eq!(answer.nonce(), NONCE);
    let (issued, expires) = (
        answer.issued().expect("readable"),
        answer.expires().expect("readable"),
    );
    assert!(issued < expires && expires.duration_since(issued) <= MAX_ANSWER_LIFETIME);
    assert!(issued <= NOW.saturating_add(MAX_CLOCK_SKEW) && NOW < expires);
    Some(verified)
}

/// The listed release as a device's verified target: targets metadata listing it, signed and
/// verified under a targets key made for the occasion.
fn listed_target() -> &'static VerifiedTarget {
    static TARGET: OnceLock<VerifiedTarget> = OnceLock::new();
    TARGET.get_or_init(|| {
        let key = SoftwareSigner::Ed25519(Ed25519SigningKey::from_seed(&[2; 32]));
        let targets = build_targets([(NAME.to_owned(), listed())].into(), 1, NOW);
        let bytes = sign_metadata(&targets, &[&key]).expect("signs");
        let role = RoleKeys {
            keyids: vec![key.key().key_id()],
            threshold: 1,
            unrecognized: serde_json::Map::new(),
        };
        let keys = [(key.key().key_id(), key.key())].into();
        let verified = verify_role::<Targets>(&bytes, &keys, &role).expect("verifies");
        target_of(&verified, NAME).expect("listed")
    })
}

fn agree_with_listed(verified: &VerifiedDirectorAnswer) {
    if let Ok(agreed) = agree(verified, Some(listed_target())) {
        let offer = agreed.offer();
        assert_eq!(offer.target_name(), NAME);
        assert_eq!(offer.length(), 4096);
        assert_eq!(offer.sha256(), SHA);
        assert_eq!(offer.rollback_index(), 5);
    }
    assert!(agree(verified, None).is_err());
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            if let Some(verified) = check(rest) {
                agree_with_listed(&verified);
            }
        }
        1 => {
            let Ok(signed) = serde_json::from_slice::<serde_json::Value>(rest) else {
                return;
            };
            let Ok(bytes) = sign_value(&signed) else {
                return;
            };
            if let Some(verified) = check(&bytes) {
                agree_with_listed(&verified);
            }
        }
        _ => {
            static VALID: OnceLock<Vec<u8>> = OnceLock::new();
            let mut bytes = VALID.get_or_init(valid_answer).clone();
            let (Some(&high), Some(&low), Some(&mask)) = (rest.first(), rest.get(1), rest.get(2))
            else {
                return;
            };
            let position = (usize::from(high) << 8 | usize::from(low)) % bytes.len();
            if mask == 0 {
                assert!(check(&bytes).is_some());
                return;
            }
            bytes[position] ^= mask;
            assert!(
                verify_answer(&bytes, &pin(), &device(), NONCE, NOW).is_err(),
                "byte {position} ^ {mask:#x} still verifies"
            );
            let _ = check(&bytes);
        }
    }
});

/// `signed` in an envelope signed by the director key, canonical as Command sends it.
fn sign_value(signed: &serde_json::Value) -> Result<Vec<u8>, ()> {
    let message = enigm_ota::canonical::canonical_json(signed).map_err(|_| ())?;
    let key = director();
    let signature = key.sign(&message).map_err(|_| ())?;
    let envelope = serde_json::json!({
        "signed": signed,
        "signatures": [{ "keyid": key.key().key_id(), "sig": hex::encode(signature) }],
    });
    enigm_ota::canonical::canonical_json(&envelope).map_err(|_| ())
}
