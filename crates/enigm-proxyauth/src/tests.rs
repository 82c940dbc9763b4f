//! One case per refusal, round trips, and properties of the parsers and the verifier.

use std::time::Duration;

use enigm_crypto::Ed25519SigningKey;
use enigm_types::{DeviceHandle, Timestamp};
use proptest::prelude::*;

use super::*;

const NOW: Timestamp = Timestamp::from_unix_millis(1_795_305_600_000);
const TARGET: &str = "echo.example:443";

struct Fixture {
    command: Ed25519SigningKey,
    device: Ed25519SigningKey,
    credential: Credential,
    verifier: ProxyVerifier,
}

fn handle(byte: u8) -> DeviceHandle {
    DeviceHandle::from_digest(&[byte; 20])
}

fn fixture() -> Fixture {
    let command = Ed25519SigningKey::from_seed(&[1; 32]);
    let device = Ed25519SigningKey::from_seed(&[2; 32]);
    let credential = Credential::issue(
        &command,
        CredentialClaims {
            id: CredentialId::from_bytes([7; 16]),
            handle: handle(9),
            device_key: device.verifying_key().to_bytes(),
            issued_at: NOW,
            expires_at: NOW.saturating_add(Duration::from_secs(600)),
        },
    );
    let mut verifier = ProxyVerifier::new(command.verifying_key(), VerifierPolicy::default());
    install(&mut verifier, &command, NOW, []);
    Fixture {
        command,
        device,
        credential,
        verifier,
    }
}

fn install(
    verifier: &mut ProxyVerifier,
    key: &Ed25519SigningKey,
    at: Timestamp,
    revoked: impl IntoIterator<Item = CredentialId>,
) {
    let list = RevocationList::sign(key, at, revoked);
    let parsed = RevocationList::parse(&list.to_bytes()).unwrap();
    verifier
        .install_revocations(parsed.verify(&key.verifying_key()).unwrap())
        .unwrap();
}

fn header(fixture: &Fixture, target: &str, nonce: u8, created: Timestamp) -> String {
    let target = TargetAuthority::parse(target).unwrap();
    let proof = Proof::sign(
        &fixture.device,
        &fixture.credential,
        &target,
        [nonce; PROOF_NONCE_LEN],
        created,
    );
    authorization(&fixture.credential, &proof)
}

fn check(
    fixture: &mut Fixture,
    value: &str,
    target: &str,
    now: Timestamp,
    expect: Result<(), ProxyAuthError>,
) {
    let outcome = fixture.verifier.verify(value, target, now).map(|_| ());
    assert_eq!(outcome, expect, "header {value:?} target {target:?}");
}

#[test]
fn a_fresh_proof_verifies_and_names_its_target() {
    let mut fixture = fixture();
    let value = header(&fixture, TARGET, 1, NOW);
    let client = fixture.verifier.verify(&value, TARGET, NOW).unwrap();
    assert_eq!(client.target().as_str(), TARGET);
    assert_eq!(client.credential(), CredentialId::from_bytes([7; 16]));
    assert_eq!(
        client.expires_at(),
        NOW.saturating_add(Duration::from_secs(600))
    );
}

#[test]
fn a_replayed_proof_is_refused_and_a_fresh_nonce_is_not() {
    let mut fixture = fixture();
    let value = header(&fixture, TARGET, 1, NOW);
    check(&mut fixture, &value, TARGET, NOW, Ok(()));
    check(
        &mut fixture,
        &value,
        TARGET,
        NOW,
        Err(ProxyAuthError::Replayed),
    );
    let later = NOW.saturating_add(Duration::from_secs(20));
    check(
        &mut fixture,
        &value,
        TARGET,
        later,
        Err(ProxyAuthError::Replayed),
    );
    let other = header(&fixture, TARGET, 2, NOW);
    check(&mut fixture, &other, TARGET, NOW, Ok(()));
}

#[test]
fn each_refusal_has_its_own_reason() {
    let mut fixture = fixture();
    let ten_min = NOW.saturating_add(Duration::from_secs(600));

    // Expired credential (a fresh proof does not help).
    let value = header(&fixture, TARGET, 3, ten_min);
    check(
        &mut fixture,
        &value,
        TARGET,
        ten_min,
        Err(ProxyAuthError::CredentialExpired),
    );

    // Proof for another target.
    let value = header(&fixture, "other.example:443", 4, NOW);
    check(
        &mut fixture,
        &value,
        TARGET,
        NOW,
        Err(ProxyAuthError::WrongTarget),
    );

    // Stale and future proofs.
    let value = header(
        &fixture,
        TARGET,
        5,
        NOW.saturating_sub(Duration::from_secs(31)),
    );
    check(
        &mut fixture,
        &value,
        TARGET,
        NOW,
        Err(ProxyAuthError::ProofStale),
    );
    let value = header(
        &fixture,
        TARGET,
        6,
        NOW.saturating_add(Duration::from_secs(31)),
    );
    check(
        &mut fixture,
        &value,
        TARGET,
        NOW,
        Err(ProxyAuthError::ProofFromFuture),
    );

    // A credential signed by another key.
    let forger = Ed25519SigningKey::from_seed(&[3; 32]);
    let forged = Credential::issue(&forger, fixture.credential.claims().clone());
    let proof = Proof::sign(
        &fixture.device,
        &forged,
        &TargetAuthority::parse(TARGET).unwrap(),
        [7; PROOF_NONCE_LEN],
        NOW,
    );
    check(
        &mut fixture,
        &authorization(&forged, &proof),
        TARGET,
        NOW,
        Err(ProxyAuthError::CredentialSignature),
    );

    // A proof signed by a key other than the credential's.
    let thief = Ed25519SigningKey::from_seed(&[4; 32]);
    let proof = Proof::sign(
        &thief,
        &fixture.credential,
        &TargetAuthority::parse(TARGET).unwrap(),
        [8; PROOF_NONCE_LEN],
        NOW,
    );
    let value = authorization(&fixture.credential, &proof);
    check(
        &mut fixture,
        &value,
        TARGET,
        NOW,
        Err(ProxyAuthError::ProofSignature),
    );

    // Garbage.
    check(
        &mut fixture,
        "Basic dXNlcjpwYXNz",
        TARGET,
        NOW,
        Err(ProxyAuthError::Malformed(ParseError::Field("scheme"))),
    );
    check(
        &mut fixture,
        "Enigm !!.??",
        TARGET,
        NOW,
        Err(ProxyAuthError::Malformed(ParseError::Field(
            "credential encoding",
        ))),
    );
    let long = format!("Enigm {}", "A".repeat(MAX_AUTHORIZATION_LEN));
    check(
        &mut fixture,
        &long,
        TARGET,
        NOW,
        Err(ProxyAuthError::Malformed(ParseError::TooLong)),
    );
    let value = header(&fixture, TARGET, 9, NOW);
    check(
        &mut fixture,
        &value,
        "echo.example",
        NOW,
        Err(ProxyAuthError::BadTarget(TargetError::MissingPort)),
    );
}

#[test]
fn revoked_credentials_and_stale_lists_are_refused() {
    let mut fixture = fixture();
    let id = fixture.credential.claims().id;
    let value = header(&fixture, TARGET, 1, NOW);
    let key = fixture.command.clone();
    install(&mut fixture.verifier, &key, NOW, [id]);
    check(
        &mut fixture,
        &value,
        TARGET,
        NOW,
        Err(ProxyAuthError::Revoked),
    );

    // An older list (an attacker replaying one from before the revocation) is not installed.
    let old = RevocationList::sign(&key, NOW.saturating_sub(Duration::from_secs(1)), []);
    let old = old.verify(&key.verifying_key()).unwrap();
    assert_eq!(
        fixture.verifier.install_revocations(old),
        Err(RevocationError::Older)
    );
    check(
        &mut fixture,
        &value,
        TARGET,
        NOW,
        Err(ProxyAuthError::Revoked),
    );

    // No list at all, or one past its age: every connection is refused.
    let mut fresh = ProxyVerifier::new(key.verifying_key(), VerifierPolicy::default());
    assert_eq!(
        fresh.verify(&value, TARGET, NOW),
        Err(ProxyAuthError::RevocationListStale)
    );
    let mut fixture = self::fixture();
    let later = NOW.saturating_add(Duration::from_secs(61));
    let value = header(&fixture, TARGET, 1, later);
    check(
        &mut fixture,
        &value,
        TARGET,
        later,
        Err(ProxyAuthError::RevocationListStale),
    );
}

#[test]
fn a_revocation_list_signed_by_another_key_or_altered_is_refused() {
    let fixture = fixture();
    let other = Ed25519SigningKey::from_seed(&[5; 32]);
    let list = RevocationList::sign(&other, NOW, [CredentialId::from_bytes([1; 16])]);
    assert_eq!(
        list.verify(&fixture.command.verifying_key()),
        Err(RevocationError::Signature)
    );
    let list = RevocationList::sign(&fixture.command, NOW, [CredentialId::from_bytes([1; 16])]);
    let mut bytes = list.to_bytes();
    // Change the revoked id: the signature no longer covers the list.
    if let Some(byte) = bytes.get_mut(13) {
        *byte ^= 1;
    }
    let parsed = RevocationList::parse(&bytes).unwrap();
    assert_eq!(
        parsed.verify(&fixture.command.verifying_key()),
        Err(RevocationError::Signature)
    );
}

#[test]
fn revocation_lists_have_one_spelling() {
    let key = Ed25519SigningKey::from_seed(&[1; 32]);
    let list = RevocationList::sign(
        &key,
        NOW,
        [
            CredentialId::from_bytes([2; 16]),
            CredentialId::from_bytes([1; 16]),
        ],
    );
    let bytes = list.to_bytes();
    assert_eq!(RevocationList::parse(&bytes).unwrap(), list);
    // The same ids out of order are refused.
    let mut swapped = bytes.clone();
    swapped[13..29].copy_from_slice(&[2; 16]);
    swapped[29..45].copy_from_slice(&[1; 16]);
    assert_eq!(
        RevocationList::parse(&swapped),
        Err(ParseError::Field("revoked ids"))
    );
    // A count beyond the bound is refused before anything is read.
    let mut huge = bytes.clone();
    huge[9..13].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(RevocationList::parse(&huge), Err(ParseError::TooLong));
}

#[test]
fn the_replay_cache_forgets_only_expired_proofs_and_fails_closed_when_full() {
    let mut cache = ReplayCache::new(2);
    let id = CredentialId::from_bytes([1; 16]);
    let soon = NOW.saturating_add(Duration::from_secs(30));
    cache.insert(id, &[1; 16], soon, NOW).unwrap();
    cache.insert(id, &[2; 16], soon, NOW).unwrap();
    assert_eq!(
        cache.insert(id, &[3; 16], soon, NOW),
        Err(ReplayError::Full)
    );
    assert_eq!(
        cache.insert(id, &[1; 16], soon, soon),
        Err(ReplayError::Replayed)
    );
    let after = soon.saturating_add(Duration::from_millis(1));
    cache.insert(id, &[3; 16], after, after).unwrap();
    assert_eq!(cache.len(), 1);
}

#[test]
fn targets_have_one_spelling() {
    let parse = |text: &str| TargetAuthority::parse(text).map(|t| t.as_str().to_owned());
    assert_eq!(parse("Example.COM:443"), Ok("example.com:443".into()));
    assert_eq!(parse("127.0.0.1:8080"), Ok("127.0.0.1:8080".into()));
    assert_eq!(parse("[::1]:22"), Ok("[::1]:22".into()));
    assert_eq!(parse("[0:0::1]:22"), Ok("[::1]:22".into()));
    assert_eq!(TargetAuthority::parse("[::1]:22").unwrap().host(), "::1");
    assert_eq!(parse("example.com"), Err(TargetError::MissingPort));
    assert_eq!(parse("example.com:0"), Err(TargetError::BadPort));
    assert_eq!(parse("example.com:080"), Err(TargetError::BadPort));
    assert_eq!(parse("example.com:65536"), Err(TargetError::BadPort));
    assert_eq!(parse("user@example.com:1"), Err(TargetError::BadHost));
    assert_eq!(parse("exa_mple.com:1"), Err(TargetError::BadHost));
    assert_eq!(parse("::1:22"), Err(TargetError::BadHost));
    assert_eq!(
        parse(&format!("{}:1", "a".repeat(300))),
        Err(TargetError::TooLong)
    );
}

#[test]
fn credential_ids_round_trip_as_hex() {
    let id = CredentialId::from_bytes([0xab; 16]);
    assert_eq!(CredentialId::from_hex(&id.to_hex()), Some(id));
    assert_eq!(CredentialId::from_hex(&id.to_hex().to_uppercase()), None);
    assert_eq!(CredentialId::from_hex("ab"), None);
}

proptest! {
    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Credential::parse(&bytes);
        let _ = Proof::parse(&bytes);
        let _ = RevocationList::parse(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_authorization(&text);
        let _ = TargetAuthority::parse(&text);
    }

    #[test]
    fn encodings_round_trip(id in any::<[u8; 16]>(), nonce in any::<[u8; 16]>(), issued in 0i64..4_000_000_000_000, life in 1u64..86_400_000, port in 1u16..) {
        let fixture = fixture();
        let credential = Credential::issue(&fixture.command, CredentialClaims {
            id: CredentialId::from_bytes(id),
            handle: handle(id[0]),
            device_key: fixture.device.verifying_key().to_bytes(),
            issued_at: Timestamp::from_unix_millis(issued),
            expires_at: Timestamp::from_unix_millis(issued).saturating_add(Duration::from_millis(life)),
        });
        prop_assert_eq!(&Credential::parse(&credential.to_bytes()).unwrap(), &credential);
        let target = TargetAuthority::parse(&format!("host.example:{port}")).unwrap();
        let proof = Proof::sign(&fixture.device, &credential, &target, nonce, Timestamp::from_unix_millis(issued));
        prop_assert_eq!(&Proof::parse(&proof.to_bytes()).unwrap(), &proof);
        let (parsed_credential, parsed_proof) = parse_authorization(&authorization(&credential, &proof)).unwrap();
        prop_assert_eq!(parsed_credential, credential);
        prop_assert_eq!(parsed_proof, proof);
    }

    /// Changing any byte of a valid header never yields an accepted connection other than the
    /// original (an edit that decodes to the same bytes, e.g. in base64 padding bits, is the
    /// original).
    #[test]
    fn any_altered_byte_is_refused(position in 0usize..700, flip in 1u8..=255) {
        let mut fixture = fixture();
        let value = header(&fixture, TARGET, 1, NOW);
        let mut bytes = value.clone().into_bytes();
        let position = position % bytes.len();
        bytes[position] ^= flip;
        if let Ok(altered) = String::from_utf8(bytes) {
            let decoded_same = parse_authorization(&altered).ok() == parse_authorization(&value).ok();
            let outcome = fixture.verifier.verify(&altered, TARGET, NOW);
            prop_assert!(outcome.is_err() || decoded_same, "{altered:?} accepted");
        }
    }
}
