#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: a failed expectation is the test failure"
)]

use proptest::prelude::*;

use super::*;
use crate::client::TrustedMetadata;
use crate::repository::{RootKeys, SoftwareSigner, build_root, sign_metadata, target_file};

/// 2026-11-22T00:00:00Z.
const NOW: Timestamp = Timestamp::from_unix_millis(1_795_305_600_000);
const NONCE: &str = "q2Vw4hX0mJ9sYtR3uKcZ1A";
const FIVE_MINUTES: Duration = DEFAULT_ANSWER_LIFETIME;
const SHA: &str = "3a1f0c2b4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8";

fn signer(seed: u8) -> SoftwareSigner {
    SoftwareSigner::Ed25519(enigm_crypto::Ed25519SigningKey::from_seed(&[seed; 32]))
}

fn device(seed: u8) -> DeviceHandle {
    DeviceHandle::from_digest(&[seed; 20])
}

/// The director pin of one key of seed 10 (or the given signers), threshold as given.
fn pin(signers: &[&SoftwareSigner], threshold: u64) -> DirectorKeys {
    let keys: Vec<Key> = signers.iter().map(|signer| signer.key()).collect();
    DirectorKeys::new(&keys, threshold).unwrap()
}

fn release_file(length: u64, sha256: &str, version: &str, index: u64) -> TargetFile {
    let fields = serde_json::json!({
        "kind": "os-image",
        "release_version": version,
        "rollback_index": index,
        "channel": "stable",
        "hardware": ["model-a"],
        "expires": "2027-06-01T00:00:00Z",
        "payload_signatures": [],
    });
    target_file(length, sha256, Some(serde_json::json!({ "enigm": fields })))
}

fn listed(name: &str, file: TargetFile) -> VerifiedTarget {
    VerifiedTarget {
        name: name.to_owned(),
        file,
    }
}

fn release() -> VerifiedTarget {
    listed("os/model-a/1.4.0.img", release_file(4096, SHA, "1.4.0", 14))
}

fn offer() -> DirectorOffer {
    DirectorOffer::for_target(&release()).unwrap()
}

fn answer(offer: Option<DirectorOffer>) -> DirectorAnswer {
    DirectorAnswer::new(device(1), NONCE, NOW, FIVE_MINUTES, offer).unwrap()
}

fn signed(answer: &DirectorAnswer, signers: &[&SoftwareSigner]) -> Vec<u8> {
    let signers: Vec<&dyn MetadataSigner> = signers
        .iter()
        .map(|signer| *signer as &dyn MetadataSigner)
        .collect();
    sign_answer(answer, &signers).unwrap()
}

fn verify(bytes: &[u8], director: &DirectorKeys) -> Result<VerifiedDirectorAnswer, DirectorError> {
    verify_answer(bytes, director, &device(1), NONCE, NOW)
}

/// The bytes of `value` signed by `signer` as a director answer would be, whatever it says.
fn signed_value(value: &Value, signer: &SoftwareSigner) -> Vec<u8> {
    let envelope = sign_envelope(value, &[signer as &dyn MetadataSigner]).unwrap();
    canonical_json(&serde_json::to_value(envelope).unwrap()).unwrap()
}

fn root_keys() -> RootKeys {
    RootKeys {
        root: vec![signer(1).key()],
        root_threshold: 1,
        targets: vec![signer(2).key()],
        targets_threshold: 1,
        snapshot: signer(3).key(),
        timestamp: signer(4).key(),
        release: vec![signer(5).key()],
        release_threshold: 1,
    }
}

fn root_with(director: Option<&DirectorKeys>) -> Root {
    let mut root = build_root(
        &root_keys(),
        1,
        NOW.saturating_add(Duration::from_secs(86_400)),
    );
    if let Some(director) = director {
        director.pin_in(&mut root);
    }
    root
}

#[test]
fn an_answer_round_trips_through_signing_and_verification() {
    let director = signer(10);
    let keys = pin(&[&director], 1);
    for offered in [Some(offer()), None] {
        let answer = answer(offered.clone());
        let bytes = signed(&answer, &[&director]);
        let verified = verify(&bytes, &keys).unwrap();
        assert_eq!(verified.answer(), &answer);
        assert_eq!(verified.offer(), offered.as_ref());
        assert_eq!(answer.issued(), Some(NOW));
        assert_eq!(answer.expires(), Some(NOW.saturating_add(FIVE_MINUTES)));
        // The bytes are their own canonical form, as a device requires.
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(canonical_json(&value).unwrap(), bytes);
    }
}

#[test]
fn an_ecdsa_director_key_as_on_a_token_verifies() {
    let director =
        SoftwareSigner::EcdsaP256(enigm_crypto::EcdsaP256SigningKey::generate().unwrap());
    let keys = pin(&[&director], 1);
    let bytes = signed(&answer(Some(offer())), &[&director]);
    assert_eq!(verify(&bytes, &keys).unwrap().offer(), Some(&offer()));
}

#[test]
fn no_update_and_not_eligible_are_the_same_document() {
    let director = signer(10);
    // Command answers both with `offer: None`; there is nowhere to put a reason.
    let no_update = signed(&answer(None), &[&director]);
    let not_eligible = signed(&answer(None), &[&director]);
    assert_eq!(no_update, not_eligible);
    // An answer with an offer has the same fields, `offer` filled in.
    let field_names = |bytes: &[u8]| -> Vec<String> {
        let value: Value = serde_json::from_slice(bytes).unwrap();
        value["signed"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let with_offer = signed(&answer(Some(offer())), &[&director]);
    assert_eq!(field_names(&no_update), field_names(&with_offer));
    let value: Value = serde_json::from_slice(&no_update).unwrap();
    assert_eq!(value["signed"]["offer"], Value::Null);
}

#[test]
fn answers_by_other_keys_or_under_the_threshold_are_refused() {
    let (first, second, stranger) = (signer(10), signer(11), signer(12));
    let one = pin(&[&first], 1);
    let two = pin(&[&first, &second], 2);
    let answer = answer(Some(offer()));
    let check = |bytes: &[u8], keys: &DirectorKeys, valid: u64| {
        assert_eq!(
            verify(bytes, keys),
            Err(DirectorError::ThresholdNotMet {
                threshold: keys.threshold(),
                valid
            })
        );
    };
    check(&signed(&answer, &[&stranger]), &one, 0);
    check(&signed(&answer, &[]), &one, 0);
    check(&signed(&answer, &[&first]), &two, 1);
    check(&signed(&answer, &[&first, &stranger]), &two, 1);
    assert!(verify(&signed(&answer, &[&second, &first]), &two).is_ok());
    // A root, targets or snapshot key that is not pinned as a director key signs nothing here.
    for seed in 1..=5 {
        check(&signed(&answer, &[&signer(seed)]), &one, 0);
    }
}

#[test]
fn one_key_signing_twice_counts_once_and_is_malformed() {
    let director = signer(10);
    let two = pin(&[&director, &signer(11)], 2);
    let bytes = signed(&answer(None), &[&director]);
    let mut value: Value = serde_json::from_slice(&bytes).unwrap();
    let signature = value["signatures"][0].clone();
    value["signatures"].as_array_mut().unwrap().push(signature);
    let doubled = canonical_json(&value).unwrap();
    assert!(matches!(
        verify(&doubled, &two),
        Err(DirectorError::Malformed(_))
    ));
}

#[test]
fn answers_for_another_device_or_request_are_refused() {
    let director = signer(10);
    let keys = pin(&[&director], 1);
    let bytes = signed(&answer(Some(offer())), &[&director]);
    assert_eq!(
        verify_answer(&bytes, &keys, &device(2), NONCE, NOW),
        Err(DirectorError::OtherDevice)
    );
    // The answer to an earlier request, replayed to this one.
    assert_eq!(
        verify_answer(&bytes, &keys, &device(1), "AAAAAAAAAAAAAAAAAAAAAA", NOW),
        Err(DirectorError::OtherNonce)
    );
    assert_eq!(DirectorError::OtherNonce.reason(), ReasonCategory::Replayed);
    assert_eq!(
        DirectorError::OtherDevice.reason(),
        ReasonCategory::UpdateMixAndMatch
    );
}

#[test]
fn answers_outside_their_time_are_refused() {
    let director = signer(10);
    let keys = pin(&[&director], 1);
    let bytes = signed(&answer(None), &[&director]);
    let at = |now: Timestamp| verify_answer(&bytes, &keys, &device(1), NONCE, now);
    let expires = NOW.saturating_add(FIVE_MINUTES);
    assert!(at(expires.saturating_sub(Duration::from_millis(1))).is_ok());
    assert_eq!(at(expires), Err(DirectorError::Expired));
    // Issued up to the allowed skew ahead of the device's clock, and no further.
    assert!(at(NOW.saturating_sub(MAX_CLOCK_SKEW)).is_ok());
    assert_eq!(
        at(NOW.saturating_sub(MAX_CLOCK_SKEW + Duration::from_secs(1))),
        Err(DirectorError::IssuedInFuture)
    );
    assert_eq!(
        DirectorError::Expired.reason(),
        ReasonCategory::UpdateFreeze
    );
}

#[test]
fn answers_valid_for_too_long_are_neither_made_nor_accepted() {
    let director = signer(10);
    let keys = pin(&[&director], 1);
    let too_long = MAX_ANSWER_LIFETIME + Duration::from_secs(1);
    assert_eq!(
        DirectorAnswer::new(device(1), NONCE, NOW, too_long, None),
        Err(DirectorError::LifetimeTooLong)
    );
    for too_short in [Duration::ZERO, Duration::from_millis(999)] {
        assert!(matches!(
            DirectorAnswer::new(device(1), NONCE, NOW, too_short, None),
            Err(DirectorError::Malformed(_))
        ));
    }
    assert!(DirectorAnswer::new(device(1), NONCE, NOW, DEFAULT_ANSWER_LIFETIME, None).is_ok());
    assert!(DirectorAnswer::new(device(1), NONCE, NOW, MAX_ANSWER_LIFETIME, None).is_ok());
    // Signed all the same by the director's key: the device still refuses it.
    let mut answer = answer(None);
    answer.expires = format_expiry(NOW.saturating_add(too_long));
    let bytes = signed_value(&serde_json::to_value(&answer).unwrap(), &director);
    assert_eq!(verify(&bytes, &keys), Err(DirectorError::LifetimeTooLong));
    // And one that expires before it is issued is malformed.
    answer.expires = format_expiry(NOW);
    let bytes = signed_value(&serde_json::to_value(&answer).unwrap(), &director);
    assert!(matches!(
        verify(&bytes, &keys),
        Err(DirectorError::Malformed(_))
    ));
}

#[test]
fn other_documents_signed_by_the_director_key_are_refused_by_type() {
    let director = signer(10);
    let keys = pin(&[&director], 1);
    let mut value = serde_json::to_value(answer(None)).unwrap();
    value["_type"] = Value::String("timestamp".to_owned());
    assert_eq!(
        verify(&signed_value(&value, &director), &keys),
        Err(DirectorError::WrongType("timestamp".to_owned()))
    );
    // Real TUF metadata signed by the same (online) key is not an answer either.
    let timestamp = crate::repository::build_timestamp(1, b"{}", 1, NOW);
    assert_eq!(
        verify(
            &signed_value(&serde_json::to_value(timestamp).unwrap(), &director),
            &keys
        ),
        Err(DirectorError::WrongType("timestamp".to_owned()))
    );
}

#[test]
fn answers_are_parsed_strictly() {
    let director = signer(10);
    let keys = pin(&[&director], 1);
    let bytes = signed(&answer(Some(offer())), &[&director]);
    let value: Value = serde_json::from_slice(&bytes).unwrap();
    let malformed = |bytes: &[u8]| {
        let result = verify(bytes, &keys);
        assert!(
            matches!(result, Err(DirectorError::Malformed(_))),
            "{result:?}"
        );
    };
    // Another spelling of the same value.
    malformed(&serde_json::to_vec_pretty(&value).unwrap());
    // A signature in upper-case hex decodes to the same bytes but is not the signed spelling.
    let mut upper = value.clone();
    let sig = upper["signatures"][0]["sig"]
        .as_str()
        .unwrap()
        .to_uppercase();
    upper["signatures"][0]["sig"] = Value::String(sig);
    malformed(&canonical_json(&upper).unwrap());
    // Unknown fields anywhere, signed by the director or not.
    for path in [
        &["signed"][..],
        &["signed", "offer"],
        &["signed", "offer", "hashes"],
    ] {
        let mut extra = value["signed"].clone();
        let mut at = &mut extra;
        for step in path.iter().skip(1) {
            at = &mut at[*step];
        }
        at["reason"] = Value::String("not-eligible".to_owned());
        malformed(&signed_value(&extra, &director));
    }
    let mut extra = value.clone();
    extra["signatures"][0]["note"] = Value::Bool(true);
    malformed(&canonical_json(&extra).unwrap());
    // `offer` is always written, even when it is null.
    let mut without = serde_json::to_value(answer(None)).unwrap();
    without.as_object_mut().unwrap().remove("offer");
    malformed(&signed_value(&without, &director));
    // An offer with an unsafe name, a negative length, a version with a space; a digest that
    // is not lower-case hex; a nonce with a space.
    for (field, bad) in [
        ("target_name", serde_json::json!("../etc/passwd")),
        ("length", serde_json::json!(-1)),
        ("release_version", serde_json::json!("1 .0")),
    ] {
        let mut bad_offer = value["signed"].clone();
        bad_offer["offer"][field] = bad;
        malformed(&signed_value(&bad_offer, &director));
    }
    let mut bad_hash = value["signed"].clone();
    bad_hash["offer"]["hashes"]["sha256"] = Value::String(SHA.to_uppercase());
    malformed(&signed_value(&bad_hash, &director));
    let mut bad_nonce = value["signed"].clone();
    bad_nonce["nonce"] = Value::String("a nonce".to_owned());
    malformed(&signed_value(&bad_nonce, &director));
    // A float, which canonical JSON cannot even spell.
    let text = String::from_utf8(bytes.clone()).unwrap();
    let float = text.replace("\"length\":4096", "\"length\":4096.0");
    assert_ne!(float, text);
    malformed(float.as_bytes());
    malformed(b"");
    malformed(b"[]");
    assert_eq!(
        verify(&vec![b' '; MAX_ANSWER_BYTES + 1], &keys),
        Err(DirectorError::TooLarge {
            limit: MAX_ANSWER_BYTES
        })
    );
}

#[test]
fn every_byte_flipped_anywhere_is_refused() {
    let director = signer(10);
    let keys = pin(&[&director], 1);
    for offered in [Some(offer()), None] {
        let bytes = signed(&answer(offered), &[&director]);
        for at in 0..bytes.len() {
            for mask in [0x01, 0x20, 0x80, 0xff] {
                let mut flipped = bytes.clone();
                flipped[at] ^= mask;
                assert!(verify(&flipped, &keys).is_err(), "byte {at} ^ {mask:#x}");
            }
        }
    }
}

proptest! {
    #[test]
    fn any_byte_flipped_is_refused(
        with_offer: bool,
        position in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let director = signer(10);
        let keys = pin(&[&director], 1);
        let offered = if with_offer { Some(offer()) } else { None };
        let mut bytes = signed(&answer(offered), &[&director]);
        let at = position.index(bytes.len());
        bytes[at] ^= mask;
        prop_assert!(verify(&bytes, &keys).is_err());
    }

    #[test]
    fn any_offer_disagreeing_with_the_repository_is_refused(
        field in 0usize..5,
        other_index in 0u64..100,
    ) {
        let director = signer(10);
        let keys = pin(&[&director], 1);
        let verified = verify(&signed(&answer(Some(offer())), &[&director]), &keys).unwrap();
        let target = release();
        prop_assert!(agree(&verified, Some(&target)).is_ok());
        let other_sha = "0".repeat(64);
        let (listed_target, expected) = match field {
            0 => (listed("os/model-a/1.4.1.img", target.file.clone()), Disagreement::Name),
            1 => (listed(target.name(), release_file(4097 + other_index, SHA, "1.4.0", 14)),
                  Disagreement::Length),
            2 => (listed(target.name(), release_file(4096, &other_sha, "1.4.0", 14)),
                  Disagreement::Sha256),
            3 => (listed(target.name(), release_file(4096, SHA, &format!("1.4.0-{other_index}"), 14)),
                  Disagreement::ReleaseVersion),
            _ => (listed(target.name(), release_file(4096, SHA, "1.4.0", 15 + other_index)),
                  Disagreement::RollbackIndex),
        };
        prop_assert_eq!(agree(&verified, Some(&listed_target)), Err(expected));
        prop_assert_eq!(expected.reason(), ReasonCategory::UpdateMixAndMatch);
    }
}

#[test]
fn the_offer_agrees_only_with_a_listed_release() {
    let director = signer(10);
    let keys = pin(&[&director], 1);
    let verified = verify(&signed(&answer(Some(offer())), &[&director]), &keys).unwrap();
    let agreed = agree(&verified, Some(&release())).unwrap();
    assert_eq!(agreed.target(), &release());
    assert_eq!(agreed.offer(), &offer());
    // The repository's digest in upper case is the same digest.
    let upper = listed(
        release().name(),
        release_file(4096, &SHA.to_uppercase(), "1.4.0", 14),
    );
    assert!(agree(&verified, Some(&upper)).is_ok());
    assert_eq!(agree(&verified, None), Err(Disagreement::NotListed));
    assert_eq!(
        Disagreement::NotListed.reason(),
        ReasonCategory::UpdateNotFound
    );
    let bare = listed(release().name(), target_file(4096, SHA, None));
    assert_eq!(
        agree(&verified, Some(&bare)),
        Err(Disagreement::ReleaseFields)
    );
    let nothing = verify(&signed(&answer(None), &[&director]), &keys).unwrap();
    assert_eq!(
        agree(&nothing, Some(&release())),
        Err(Disagreement::NoOffer)
    );
    assert!(nothing.target_search(Limits::default(), NOW).is_none());
    assert!(verified.target_search(Limits::default(), NOW).is_some());
}

#[test]
fn an_offer_is_made_only_of_a_release_with_a_digest() {
    assert_eq!(offer().target_name(), "os/model-a/1.4.0.img");
    assert_eq!(
        (
            offer().length(),
            offer().sha256(),
            offer().release_version(),
            offer().rollback_index()
        ),
        (4096, SHA, "1.4.0", 14)
    );
    assert!(DirectorOffer::for_listed("x.img", &target_file(1, SHA, None)).is_err());
    let mut no_sha = release_file(1, SHA, "1", 1);
    no_sha.hashes.clear();
    assert!(DirectorOffer::for_listed("x.img", &no_sha).is_err());
    assert!(DirectorOffer::for_listed("../x.img", &release_file(1, SHA, "1", 1)).is_err());
}

#[test]
fn a_root_without_a_director_pins_none_and_one_with_it_round_trips() {
    assert_eq!(director_keys(&root_with(None)), Ok(None));
    let director = signer(10);
    let keys = pin(&[&director], 1);
    let root = root_with(Some(&keys));
    assert_eq!(director_keys(&root), Ok(Some(keys.clone())));
    // The root's signature covers the pin, and the pin survives parsing as the client does.
    let bytes = sign_metadata(&root, &[&signer(1)]).unwrap();
    let trusted = TrustedMetadata::new(&bytes).unwrap();
    assert_eq!(director_keys(trusted.root()), Ok(Some(keys)));
    let text = String::from_utf8(bytes).unwrap();
    let tampered = text.replace(&director.key().key_id(), &signer(11).key().key_id());
    assert_ne!(tampered, text);
    assert!(TrustedMetadata::new(tampered.as_bytes()).is_err());
}

#[test]
fn a_malformed_pin_or_an_offline_key_as_director_is_refused() {
    let with_field = |value: Value| {
        let mut root = root_with(None);
        root.unrecognized.insert(DIRECTOR_FIELD.to_owned(), value);
        director_keys(&root)
    };
    let key = signer(10).key();
    let keys = serde_json::json!({ key.key_id(): key });
    for bad in [
        serde_json::json!({ "keys": keys, "threshold": 0 }),
        serde_json::json!({ "keys": keys, "threshold": 2 }),
        serde_json::json!({ "keys": {}, "threshold": 1 }),
        serde_json::json!({ "keys": keys, "threshold": 1, "extra": true }),
        serde_json::json!({ "keys": { "00": key }, "threshold": 1 }),
        serde_json::json!({ "keyids": [key.key_id()], "threshold": 1 }),
        Value::Null,
    ] {
        assert_eq!(with_field(bad), Err(DirectorError::PinMalformed));
    }
    // Root, targets and release keys stay offline; the online keys may direct.
    for (seed, expect) in [(1, false), (2, false), (5, false), (3, true), (4, true)] {
        let keys = pin(&[&signer(seed)], 1);
        let result = director_keys(&root_with(Some(&keys)));
        if expect {
            assert_eq!(result, Ok(Some(keys)), "seed {seed}");
        } else {
            assert_eq!(
                result,
                Err(DirectorError::AuthoritiesConfused),
                "seed {seed}"
            );
        }
    }
    // The targets key under another id (an extra field changes the id, not the key).
    let mut disguised = signer(2).key();
    disguised
        .unrecognized
        .insert("x-note".to_owned(), Value::Bool(true));
    assert_ne!(disguised.key_id(), signer(2).key().key_id());
    let keys = DirectorKeys::new(&[disguised], 1).unwrap();
    assert_eq!(
        director_keys(&root_with(Some(&keys))),
        Err(DirectorError::AuthoritiesConfused)
    );
    assert!(DirectorKeys::new(std::slice::from_ref(&key), 0).is_none());
    assert!(DirectorKeys::new(&[key.clone(), key], 2).is_none());
}
