//! PKCS#11 signing against a real SoftHSM2 token: keys are generated on the token, never
//! extractable, and their signatures verify with enigm-crypto's own verifiers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed expectation is the test failure"
)]

use enigm_crypto::pkcs11::{Pkcs11Error, Pkcs11KeyAlgorithm, Pkcs11Token, PublicKey};
use enigm_test_support::softhsm::SoftHsmToken;
use secrecy::SecretString;

fn open(token: &SoftHsmToken, pin: &str) -> Result<Pkcs11Token, Pkcs11Error> {
    Pkcs11Token::open(
        &token.module,
        &token.label,
        SecretString::from(pin.to_owned()),
    )
}

#[test]
fn token_keys_sign_and_verify_and_never_leave_the_token() {
    let Some(token) = SoftHsmToken::create() else {
        return;
    };
    let session = open(&token, &token.pin).unwrap();
    for (label, algorithm) in [
        ("ed", Pkcs11KeyAlgorithm::Ed25519),
        ("p256", Pkcs11KeyAlgorithm::EcdsaP256),
    ] {
        let key = session.generate_key(label, algorithm).unwrap();
        assert!(
            key.private_is_protected().unwrap(),
            "{label} is extractable"
        );
        assert!(matches!(
            session.generate_key(label, algorithm),
            Err(Pkcs11Error::DuplicateLabel(_))
        ));
        let found = session.find_key(label).unwrap().unwrap();
        assert_eq!(found.public_key(), key.public_key());
        let message = b"canonical bytes of some TUF metadata";
        let signature = key.sign_for_tuf(message).unwrap();
        match key.public_key() {
            PublicKey::Ed25519(public) => {
                let verifier = enigm_crypto::Ed25519VerifyingKey::from_bytes(&public).unwrap();
                assert!(verifier.verify(message, &signature).is_ok());
                assert!(verifier.verify(b"another message", &signature).is_err());
            }
            PublicKey::EcdsaP256(point) => {
                assert!(
                    enigm_crypto::verify_ecdsa_p256_sha256_der(&point, message, &signature).is_ok()
                );
                assert!(
                    enigm_crypto::verify_ecdsa_p256_sha256_der(&point, b"another", &signature)
                        .is_err()
                );
            }
        }
    }
    // A signature by one key does not verify under the other key of the same kind.
    let other = session
        .generate_key("ed-2", Pkcs11KeyAlgorithm::Ed25519)
        .unwrap();
    let first = session.find_key("ed").unwrap().unwrap();
    let signature = first.sign_for_tuf(b"m").unwrap();
    let PublicKey::Ed25519(other_public) = other.public_key() else {
        panic!("an Ed25519 key")
    };
    let verifier = enigm_crypto::Ed25519VerifyingKey::from_bytes(&other_public).unwrap();
    assert!(verifier.verify(b"m", &signature).is_err());
    assert!(session.find_key("no-such-key").unwrap().is_none());

    let listed = session.list_keys().unwrap();
    let labels: Vec<&str> = listed.iter().map(|key| key.label.as_str()).collect();
    assert_eq!(labels, ["ed", "ed-2", "p256"]);
    assert_eq!(listed[0].public_key, first.public_key());
    assert_eq!(
        listed[2].public_key.algorithm(),
        Pkcs11KeyAlgorithm::EcdsaP256
    );
}

#[test]
fn p256_signatures_are_fixed_r_s_over_sha256_and_keys_have_their_spki() {
    let Some(token) = SoftHsmToken::create() else {
        return;
    };
    let session = open(&token, &token.pin).unwrap();
    let key = session
        .generate_key("release", Pkcs11KeyAlgorithm::EcdsaP256)
        .unwrap();
    assert_eq!(key.label(), "release");
    assert_eq!(key.algorithm(), Pkcs11KeyAlgorithm::EcdsaP256);
    let PublicKey::EcdsaP256(point) = key.public_key() else {
        panic!("a P-256 key")
    };
    assert_eq!(point[0], 0x04, "uncompressed point");
    assert_eq!(
        enigm_crypto::p256_point_from_spki(&key.public_key().spki_der()).unwrap(),
        point
    );
    let message = b"release manifest";
    let fixed = key.sign(message).unwrap();
    assert_eq!(fixed.len(), 64);
    let (r, s) = fixed.split_at(32);
    enigm_crypto::verify_ecdsa_p256_sha256(&point[1..33], &point[33..], message, r, s).unwrap();
    assert!(
        enigm_crypto::verify_ecdsa_p256_sha256(&point[1..33], &point[33..], b"other", r, s)
            .is_err()
    );
    let der = enigm_crypto::ecdsa_fixed_to_der(&fixed).unwrap();
    enigm_crypto::verify_ecdsa_p256_sha256_der(&point, message, &der).unwrap();

    let ed = session
        .generate_key("ed", Pkcs11KeyAlgorithm::Ed25519)
        .unwrap();
    let PublicKey::Ed25519(raw) = ed.public_key() else {
        panic!("an Ed25519 key")
    };
    let spki = ed.public_key().spki_der();
    assert_eq!(spki.len(), 44);
    assert_eq!(&spki[12..], &raw[..]);
    assert_eq!(ed.sign(message).unwrap().len(), 64);
}

#[test]
fn a_key_on_one_token_does_not_verify_for_a_key_on_another() {
    let (Some(first), Some(second)) = (SoftHsmToken::create(), SoftHsmToken::create()) else {
        return;
    };
    let first = open(&first, &first.pin).unwrap();
    let second = open(&second, &second.pin).unwrap();
    for algorithm in [Pkcs11KeyAlgorithm::Ed25519, Pkcs11KeyAlgorithm::EcdsaP256] {
        // The same label on two tokens: two unrelated keys.
        let label = format!("release-{algorithm:?}");
        let mine = first.generate_key(&label, algorithm).unwrap();
        let theirs = second.generate_key(&label, algorithm).unwrap();
        assert_ne!(mine.public_key(), theirs.public_key());
        let signature = mine.sign_for_tuf(b"m").unwrap();
        match theirs.public_key() {
            PublicKey::Ed25519(public) => {
                let verifier = enigm_crypto::Ed25519VerifyingKey::from_bytes(&public).unwrap();
                assert!(verifier.verify(b"m", &signature).is_err());
            }
            PublicKey::EcdsaP256(point) => assert!(
                enigm_crypto::verify_ecdsa_p256_sha256_der(&point, b"m", &signature).is_err()
            ),
        }
    }
    second
        .generate_key("only-on-second", Pkcs11KeyAlgorithm::Ed25519)
        .unwrap();
    assert!(
        first.find_key("only-on-second").unwrap().is_none(),
        "keys stay on their token"
    );
}

#[test]
fn wrong_pin_and_unknown_token_are_refused() {
    let Some(token) = SoftHsmToken::create() else {
        return;
    };
    let refused = open(&token, "000000").unwrap_err();
    assert!(matches!(refused, Pkcs11Error::PinIncorrect));
    assert!(!format!("{refused} {refused:?}").contains("000000"));
    // The right PIN still opens it (one wrong try does not lock it), and the token's Debug
    // names nothing secret.
    let session = open(&token, &token.pin).unwrap();
    assert!(!format!("{session:?}").contains(&token.pin));
    // The login belongs to the process: a second open while the first lives is refused
    // instead of passing without a PIN check; once the first is dropped the token opens again.
    assert!(matches!(
        open(&token, "000000"),
        Err(Pkcs11Error::AlreadyOpen)
    ));
    drop(session);
    open(&token, &token.pin).unwrap();
    let unknown = Pkcs11Token::open(
        &token.module,
        "no-such-token",
        SecretString::from(token.pin.clone()),
    );
    assert!(matches!(unknown, Err(Pkcs11Error::NoSuchToken(_))));
    let no_module = Pkcs11Token::open(
        std::path::Path::new("/nonexistent/libpkcs11.so"),
        &token.label,
        SecretString::from(token.pin.clone()),
    );
    assert!(matches!(no_module, Err(Pkcs11Error::Module(_))));
}

#[test]
fn an_ed25519_token_key_signs_through_the_signer_trait_and_a_p256_key_is_refused() {
    use enigm_crypto::{Ed25519Signer, Pkcs11Ed25519Error, Pkcs11Ed25519Key};
    let Some(token) = SoftHsmToken::create() else {
        return;
    };
    let session = open(&token, &token.pin).unwrap();
    let key = session
        .generate_key("audit", Pkcs11KeyAlgorithm::Ed25519)
        .unwrap();
    let PublicKey::Ed25519(public) = key.public_key() else {
        panic!("an Ed25519 key")
    };
    let signer = Pkcs11Ed25519Key::new(key).unwrap();
    assert_eq!(signer.verifying_key().to_bytes(), public);
    let signature = signer.sign_ed25519(b"a checkpoint").unwrap();
    assert!(
        signer
            .verifying_key()
            .verify(b"a checkpoint", &signature)
            .is_ok()
    );
    // Pure Ed25519 is deterministic: the token and a software key with the same public key
    // would agree, and two signatures of one message by the token are equal.
    assert_eq!(signer.sign_ed25519(b"a checkpoint").unwrap(), signature);

    let p256 = session
        .generate_key("p256", Pkcs11KeyAlgorithm::EcdsaP256)
        .unwrap();
    assert!(matches!(
        Pkcs11Ed25519Key::new(p256),
        Err(Pkcs11Ed25519Error::NotEd25519(label)) if label == "p256"
    ));
}
