//! Fuzzes what Command does with a device's Android attestation chain: PEM splitting, X.509
//! parsing of each certificate, and the chain verifier (signatures, pinned roots, validity,
//! KeyDescription extraction) against Google's roots and a development root.
//!
//! The input is split into certificates by a one-byte count and two-byte lengths, so the fuzzer
//! can build chains of several certificates; the whole input is also tried as PEM text.
//!
//! Properties checked on every input:
//!
//! - nothing panics, whatever the bytes;
//! - every rejection has one of the reasons a chain can have (never `ReplayAttempt`,
//!   `IneligibleBuild` or `EligibilityFailure`, which belong to later stages);
//! - a chain that verifies ends at a pinned anchor, has a KeyDescription, and verifies again
//!   (the link cache changes nothing).

#![no_main]

use enigm_attest::android::chain::{ChainVerifier, TrustAnchors, parse_pem_chain};
use enigm_attest::android::revocation::RevocationStatus;
use enigm_attest::outcome::RejectionReason;
use enigm_types::Timestamp;
use libfuzzer_sys::fuzz_target;

fn split(data: &[u8]) -> Vec<Vec<u8>> {
    let Some((&count, mut rest)) = data.split_first() else {
        return Vec::new();
    };
    let mut chain = Vec::new();
    for _ in 0..(count % 6) {
        if rest.len() < 2 {
            break;
        }
        let length = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
        let take = length.min(rest.len());
        chain.push(rest[..take].to_vec());
        rest = &rest[take..];
    }
    if !rest.is_empty() {
        chain.push(rest.to_vec());
    }
    chain
}

fn check(verifier: &ChainVerifier, chain: &[Vec<u8>]) {
    let at = Timestamp::from_unix_millis(1_790_000_000_000);
    let unchecked = RevocationStatus::unchecked_for_offline_use();
    match verifier.verify(chain, at, &unchecked) {
        Err(error) => assert!(
            matches!(
                error.reason(),
                RejectionReason::InvalidTrustChain
                    | RejectionReason::UnsupportedDevice
                    | RejectionReason::StaleAttestation
            ),
            "a chain error with a later stage's reason: {error:?}"
        ),
        Ok(verified) => {
            assert!(!verified.is_empty());
            let again = verifier
                .verify(chain, at, &unchecked)
                .expect("verifies twice");
            assert_eq!(again.key_description(), verified.key_description());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let verifier = ChainVerifier::new(TrustAnchors::google());
    check(&verifier, &split(data));
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(chain) = parse_pem_chain(text)
    {
        check(&verifier, &chain);
    }
});
