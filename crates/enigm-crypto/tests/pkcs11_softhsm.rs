//! PKCS#11 signing against a real SoftHSM2 token: keys are generated on the token, never
//! extractable, and their signatures verify with enigm-crypto's own verifiers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
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
}

#[test]
fn wrong_pin_and_unknown_token_are_refused() {
    let Some(token) = SoftHsmToken::create() else {
        return;
    };
    assert!(matches!(
        open(&token, "000000"),
        Err(Pkcs11Error::PinIncorrect)
    ));
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
