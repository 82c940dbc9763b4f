//! TPM 2.0 quotes from a real software TPM (swtpm, driven by tpm2-tools), verified by
//! `enigm_attest::tpm`: quotes by RSASSA, RSA-PSS and ECDSA attestation keys verify; a wrong
//! nonce, PCRs that differ from the reference, claimed values that do not match the quote,
//! another key, keys that are not attestation keys and damaged bytes are rejected, each with its
//! reason.
//!
//! `scripts/test` installs swtpm and tpm2-tools. Without them these tests fail, saying so, unless
//! `ENIGM_SKIP_TPM=1` is set (then they print that they skipped). Each test starts its own swtpm.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test: failing loudly is the point"
)]

mod swtpm;

use std::collections::BTreeMap;

use enigm_attest::outcome::RejectionReason;
use enigm_attest::tpm::{
    AttestationKey, AttestationKeyAlgorithm, AttestationKeyError, PcrReference, QuoteError,
    SigningScheme, VerifiedQuote, verify_quote,
};
use swtpm::{AkKind, PCRS, Quote, Swtpm};

const NONCE: [u8; 32] = [0x5a; 32];
const BOOT_MEASUREMENT: [u8; 32] = [0x42; 32];

/// The reference as an operator writes it: the JSON map of the values a known-good device had.
fn reference_json(pcrs: &BTreeMap<u8, [u8; 32]>) -> PcrReference {
    let entries: Vec<String> = pcrs
        .iter()
        .map(|(index, value)| format!("\"{index}\": \"0x{}\"", hex::encode_upper(value)))
        .collect();
    PcrReference::from_json(&format!("{{\"sha256\": {{{}}}}}", entries.join(", "))).unwrap()
}

fn reference(pcrs: &BTreeMap<u8, [u8; 32]>) -> PcrReference {
    PcrReference::sha256(pcrs.clone()).unwrap()
}

fn verify(
    ak: &AttestationKey,
    quote: &Quote,
    nonce: &[u8],
    reference: &PcrReference,
) -> Result<VerifiedQuote, QuoteError> {
    verify_quote(
        ak,
        &quote.attest,
        &quote.signature,
        nonce,
        &quote.pcrs,
        reference,
    )
}

/// A good quote by a fresh key of `kind` verifies; then every way of tampering with it is
/// rejected with its reason.
fn quote_verifies_and_tampering_is_rejected(test: &str, kind: AkKind) {
    let Some(tpm) = Swtpm::start(test) else {
        return;
    };
    tpm.extend_pcr16(BOOT_MEASUREMENT);
    let ak = tpm.create_ak(kind);
    let key = AttestationKey::from_tpm2b_public(&ak.public).unwrap();
    assert_eq!(
        key.name().as_slice(),
        ak.name,
        "the Name tpm2_createak printed"
    );
    let (algorithm, scheme) = match kind {
        AkKind::Rsassa => (
            AttestationKeyAlgorithm::Rsa2048,
            SigningScheme::RsassaSha256,
        ),
        AkKind::Rsapss => (
            AttestationKeyAlgorithm::Rsa2048,
            SigningScheme::RsapssSha256,
        ),
        AkKind::Ecdsa => (
            AttestationKeyAlgorithm::EccNistP256,
            SigningScheme::EcdsaSha256,
        ),
    };
    assert_eq!((key.algorithm(), key.scheme()), (algorithm, scheme));

    let quote = tpm.quote(&ak, &NONCE);
    let good = reference_json(&quote.pcrs);
    assert_eq!(
        quote.pcrs[&0], [0; 32],
        "swtpm has no firmware measurements"
    );
    assert_ne!(quote.pcrs[&16], [0; 32], "PCR 16 was extended");

    // The good quote.
    let verified = verify(&key, &quote, &NONCE, &good).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    assert_eq!(verified.selected_pcrs().collect::<Vec<_>>(), PCRS);
    assert_eq!(verified.pcrs(), &quote.pcrs);
    assert!(verified.clock() > 0);
    assert_eq!(verified.qualified_signer().len(), 34);

    // Another session's nonce: a replay.
    let error = verify(&key, &quote, &[0x11; 32], &good).unwrap_err();
    assert_eq!(error, QuoteError::NonceMismatch);
    assert_eq!(error.reason(), RejectionReason::ReplayAttempt);
    let error = verify(&key, &quote, &NONCE[..31], &good).unwrap_err();
    assert_eq!(error.reason(), RejectionReason::ReplayAttempt);

    // The reference expects another PCR 16 (another boot chain): an ineligible build.
    let mut expected = quote.pcrs.clone();
    expected.insert(16, [0xee; 32]);
    let error = verify(&key, &quote, &NONCE, &reference(&expected)).unwrap_err();
    assert_eq!(error, QuoteError::PcrValueMismatch { index: 16 });
    assert_eq!(error.reason(), RejectionReason::IneligibleBuild);

    // Claiming the reference's values instead of the real ones: they do not hash to the digest
    // the TPM signed.
    let lying = Quote {
        pcrs: expected.clone(),
        ..quote.clone()
    };
    let error = verify(&key, &lying, &NONCE, &reference(&expected)).unwrap_err();
    assert_eq!(error, QuoteError::PcrDigestMismatch);
    assert_eq!(error.reason(), RejectionReason::IneligibleBuild);
    // Claiming fewer PCRs than the quote covers.
    let mut fewer = quote.pcrs.clone();
    fewer.remove(&1);
    let partial = Quote {
        pcrs: fewer.clone(),
        ..quote.clone()
    };
    let error = verify(&key, &partial, &NONCE, &good).unwrap_err();
    assert_eq!(error, QuoteError::PcrDigestMismatch);

    // A reference over other PCRs than the quote covers.
    let error = verify(&key, &quote, &NONCE, &reference(&fewer)).unwrap_err();
    assert_eq!(error, QuoteError::PcrSelectionMismatch);
    assert_eq!(error.reason(), RejectionReason::IneligibleBuild);

    // The device booted something else since the reference was taken: a fresh quote is
    // genuine, but ineligible.
    tpm.extend_pcr16([0x66; 32]);
    let later = tpm.quote(&ak, &NONCE);
    assert!(verify(&key, &later, &NONCE, &reference_json(&later.pcrs)).is_ok());
    let error = verify(&key, &later, &NONCE, &good).unwrap_err();
    assert_eq!(error, QuoteError::PcrValueMismatch { index: 16 });

    // One flipped bit anywhere in the signed structure or the signature.
    for at in [0, 6, 10, quote.attest.len() / 2, quote.attest.len() - 1] {
        let mut flipped = quote.clone();
        flipped.attest[at] ^= 0x01;
        let error = verify(&key, &flipped, &NONCE, &good).unwrap_err();
        assert_eq!(
            error.reason(),
            RejectionReason::InvalidTrustChain,
            "bit flipped at {at}: {error}"
        );
    }
    let mut flipped = quote.clone();
    let last = flipped.signature.len() - 1;
    flipped.signature[last] ^= 0x01;
    let error = verify(&key, &flipped, &NONCE, &good).unwrap_err();
    assert_eq!(error, QuoteError::BadSignature);

    // Truncated and garbage bytes: rejected, never a panic.
    for cut in [0, 1, 4, quote.attest.len() / 2, quote.attest.len() - 1] {
        let mut truncated = quote.clone();
        truncated.attest.truncate(cut);
        let error = verify(&key, &truncated, &NONCE, &good).unwrap_err();
        assert_eq!(error.reason(), RejectionReason::InvalidTrustChain, "{cut}");
    }
    for cut in [0, 2, 5, quote.signature.len() - 1] {
        let mut truncated = quote.clone();
        truncated.signature.truncate(cut);
        let error = verify(&key, &truncated, &NONCE, &good).unwrap_err();
        assert_eq!(error.reason(), RejectionReason::InvalidTrustChain, "{cut}");
    }
    let mut extended = quote.clone();
    extended.attest.push(0);
    let error = verify(&key, &extended, &NONCE, &good).unwrap_err();
    assert_eq!(error.reason(), RejectionReason::InvalidTrustChain);
    let garbage = Quote {
        attest: vec![0xff; 200],
        signature: vec![0x00; 300],
        pcrs: quote.pcrs.clone(),
    };
    assert!(verify(&key, &garbage, &NONCE, &good).is_err());
    for cut in 0..ak.public.len() {
        assert!(AttestationKey::from_tpm2b_public(&ak.public[..cut]).is_err());
    }
}

#[test]
fn an_rsassa_quote_verifies_and_tampering_is_rejected() {
    quote_verifies_and_tampering_is_rejected(
        "an_rsassa_quote_verifies_and_tampering_is_rejected",
        AkKind::Rsassa,
    );
}

#[test]
fn an_ecdsa_quote_verifies_and_tampering_is_rejected() {
    quote_verifies_and_tampering_is_rejected(
        "an_ecdsa_quote_verifies_and_tampering_is_rejected",
        AkKind::Ecdsa,
    );
}

#[test]
fn an_rsapss_quote_verifies_and_tampering_is_rejected() {
    quote_verifies_and_tampering_is_rejected(
        "an_rsapss_quote_verifies_and_tampering_is_rejected",
        AkKind::Rsapss,
    );
}

#[test]
fn a_quote_checked_against_another_attestation_key_is_rejected() {
    let Some(tpm) = Swtpm::start("a_quote_checked_against_another_attestation_key_is_rejected")
    else {
        return;
    };
    let rsa = tpm.create_ak(AkKind::Rsassa);
    let other_rsa = tpm.create_ak(AkKind::Rsassa);
    let ecc = tpm.create_ak(AkKind::Ecdsa);
    let other_ecc = tpm.create_ak(AkKind::Ecdsa);
    let key = |ak: &swtpm::Ak| AttestationKey::from_tpm2b_public(&ak.public).unwrap();
    assert_ne!(key(&rsa).name(), key(&other_rsa).name());

    for (signer, wrong, expected) in [
        (&rsa, &other_rsa, QuoteError::BadSignature),
        (&ecc, &other_ecc, QuoteError::BadSignature),
        (&rsa, &ecc, QuoteError::SchemeMismatch),
        (&ecc, &rsa, QuoteError::SchemeMismatch),
    ] {
        let quote = tpm.quote(signer, &NONCE);
        let good = reference(&quote.pcrs);
        assert!(verify(&key(signer), &quote, &NONCE, &good).is_ok());
        let error = verify(&key(wrong), &quote, &NONCE, &good).unwrap_err();
        assert_eq!(error, expected);
        assert_eq!(error.reason(), RejectionReason::InvalidTrustChain);
    }
}

#[test]
fn keys_that_are_not_attestation_keys_are_refused() {
    let Some(tpm) = Swtpm::start("keys_that_are_not_attestation_keys_are_refused") else {
        return;
    };
    // The endorsement key is a restricted decryption key.
    let error = AttestationKey::from_tpm2b_public(&tpm.endorsement_key_public()).unwrap_err();
    assert!(
        matches!(error, AttestationKeyError::NotAnAttestationKey(_)),
        "{error}"
    );
    assert_eq!(error.reason(), RejectionReason::InvalidTrustChain);
    // An unrestricted signing key would sign any bytes dressed up as a quote.
    let error =
        AttestationKey::from_tpm2b_public(&tpm.unrestricted_signing_key_public()).unwrap_err();
    assert!(
        matches!(error, AttestationKeyError::NotAnAttestationKey(_)),
        "{error}"
    );
}
