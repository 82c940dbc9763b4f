//! Parser tests on structures built here (the real TPM's output is exercised against swtpm in
//! `tests/tpm_swtpm.rs`): each refusal has its error and reason, and no input panics.

use super::*;
use proptest::prelude::*;

const AK_ATTRIBUTES: u32 = 0x0005_0072;

fn sized(bytes: &[u8]) -> Vec<u8> {
    let mut out = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

fn rsa_tpmt_public(attributes: u32, scheme: u16, bits: u16, exponent: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&alg::RSA.to_be_bytes());
    out.extend_from_slice(&alg::SHA256.to_be_bytes());
    out.extend_from_slice(&attributes.to_be_bytes());
    out.extend(sized(&[]));
    out.extend_from_slice(&alg::NULL.to_be_bytes());
    out.extend_from_slice(&scheme.to_be_bytes());
    out.extend_from_slice(&alg::SHA256.to_be_bytes());
    out.extend_from_slice(&bits.to_be_bytes());
    out.extend_from_slice(&exponent.to_be_bytes());
    let mut modulus = vec![0xa5; 256];
    modulus[0] = 0xc3;
    out.extend(sized(&modulus));
    out
}

fn ecc_tpmt_public(attributes: u32, curve: u16) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&alg::ECC.to_be_bytes());
    out.extend_from_slice(&alg::SHA256.to_be_bytes());
    out.extend_from_slice(&attributes.to_be_bytes());
    out.extend(sized(&[]));
    out.extend_from_slice(&alg::NULL.to_be_bytes());
    out.extend_from_slice(&alg::ECDSA.to_be_bytes());
    out.extend_from_slice(&alg::SHA256.to_be_bytes());
    out.extend_from_slice(&curve.to_be_bytes());
    out.extend_from_slice(&alg::NULL.to_be_bytes());
    out.extend(sized(&[0x11; 32]));
    out.extend(sized(&[0x22; 32]));
    out
}

fn rsa_ak() -> Vec<u8> {
    sized(&rsa_tpmt_public(AK_ATTRIBUTES, alg::RSASSA, 2048, 0))
}

/// A quote over `nonce` selecting `pcrs` of the SHA-256 bank (3-byte bitmap) with `digest`.
fn quote(magic: u32, nonce: &[u8], bitmap: [u8; 3], digest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&magic.to_be_bytes());
    out.extend_from_slice(&TPM_ST_ATTEST_QUOTE.to_be_bytes());
    out.extend(sized(&[0x00, 0x0b, 1, 2, 3]));
    out.extend(sized(nonce));
    out.extend_from_slice(&3822u64.to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.push(1);
    out.extend_from_slice(&0x2019_1023_0016_3636u64.to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&alg::SHA256.to_be_bytes());
    out.push(3);
    out.extend_from_slice(&bitmap);
    out.extend(sized(digest));
    out
}

fn rsassa_signature(len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&alg::RSASSA.to_be_bytes());
    out.extend_from_slice(&alg::SHA256.to_be_bytes());
    out.extend(sized(&vec![0x5a; len]));
    out
}

fn reference() -> PcrReference {
    PcrReference::sha256(BTreeMap::from([(0, [0; 32]), (16, [7; 32])])).unwrap()
}

#[test]
fn an_rsa_attestation_key_parses_and_its_name_is_the_digest_of_its_public_area() {
    let tpmt = rsa_tpmt_public(AK_ATTRIBUTES, alg::RSASSA, 2048, 0);
    let key = AttestationKey::from_tpm2b_public(&sized(&tpmt)).unwrap();
    assert_eq!(key.algorithm(), AttestationKeyAlgorithm::Rsa2048);
    assert_eq!(key.scheme(), SigningScheme::RsassaSha256);
    assert_eq!(key.name()[..2], [0x00, 0x0b]);
    assert_eq!(key.name()[2..], sha256(&tpmt));
    // The default exponent (encoded as 0) is 65537, without leading zeros.
    let PublicKey::Rsa { exponent, .. } = &key.key else {
        panic!("not RSA")
    };
    assert_eq!(exponent, &[1, 0, 1]);
}

#[test]
fn an_ecc_attestation_key_parses() {
    let key =
        AttestationKey::from_tpm2b_public(&sized(&ecc_tpmt_public(AK_ATTRIBUTES, ECC_NIST_P256)))
            .unwrap();
    assert_eq!(key.algorithm(), AttestationKeyAlgorithm::EccNistP256);
    assert_eq!(key.scheme(), SigningScheme::EcdsaSha256);
}

#[test]
fn keys_that_are_not_attestation_keys_are_refused_with_their_reason() {
    use AttestationKeyError::{Malformed, NotAnAttestationKey, Unsupported};
    let check = |bytes: Vec<u8>, expected: fn(&AttestationKeyError) -> bool, reason| {
        let error = AttestationKey::from_tpm2b_public(&bytes).unwrap_err();
        assert!(expected(&error), "{error:?}");
        assert_eq!(error.reason(), reason);
    };
    let invalid = RejectionReason::InvalidTrustChain;
    let unsupported = RejectionReason::UnsupportedDevice;
    // Each required attribute missing in turn: not restricted, not sign, not fixedTPM, ...
    for bit in [1 << 16, 1 << 18, 1 << 1, 1 << 4, 1 << 5] {
        check(
            sized(&rsa_tpmt_public(AK_ATTRIBUTES & !bit, alg::RSASSA, 2048, 0)),
            |e| matches!(e, NotAnAttestationKey(_)),
            invalid,
        );
    }
    check(
        sized(&rsa_tpmt_public(
            AK_ATTRIBUTES | attr::DECRYPT,
            alg::RSASSA,
            2048,
            0,
        )),
        |e| matches!(e, NotAnAttestationKey(_)),
        invalid,
    );
    check(
        sized(&rsa_tpmt_public(AK_ATTRIBUTES, alg::NULL, 2048, 0)),
        |e| matches!(e, NotAnAttestationKey(_)),
        invalid,
    );
    check(
        sized(&rsa_tpmt_public(AK_ATTRIBUTES, 0x0017, 2048, 0)),
        |e| matches!(e, Unsupported(_)),
        unsupported,
    );
    check(
        sized(&rsa_tpmt_public(AK_ATTRIBUTES, alg::RSASSA, 3072, 0)),
        |e| matches!(e, Unsupported(_)),
        unsupported,
    );
    check(
        sized(&rsa_tpmt_public(AK_ATTRIBUTES, alg::RSASSA, 2048, 4)),
        |e| matches!(e, Malformed(_)),
        invalid,
    );
    check(
        sized(&ecc_tpmt_public(AK_ATTRIBUTES, 0x0004)),
        |e| matches!(e, Unsupported(_)),
        unsupported,
    );
    let mut sha1_name = rsa_tpmt_public(AK_ATTRIBUTES, alg::RSASSA, 2048, 0);
    sha1_name[3] = 0x04;
    check(
        sized(&sha1_name),
        |e| matches!(e, Unsupported(_)),
        unsupported,
    );
    let mut trailing = rsa_ak();
    trailing.push(0);
    check(trailing, |e| matches!(e, Malformed(_)), invalid);
    let mut inner_trailing = rsa_tpmt_public(AK_ATTRIBUTES, alg::RSASSA, 2048, 0);
    inner_trailing.push(0);
    check(
        sized(&inner_trailing),
        |e| matches!(e, Malformed(_)),
        invalid,
    );
}

#[test]
fn every_truncation_of_a_key_is_malformed() {
    let bytes = rsa_ak();
    for len in 0..bytes.len() {
        let error = AttestationKey::from_tpm2b_public(&bytes[..len]).unwrap_err();
        assert!(matches!(error, AttestationKeyError::Malformed(_)), "{len}");
    }
}

#[test]
fn the_sha256_selection_is_read_from_the_bitmap() {
    let attest = quote(
        TPM_GENERATED_VALUE,
        b"n",
        [0b0000_0011, 0, 0b0000_0001],
        &[0; 32],
    );
    let parsed = Attest::parse(&attest).unwrap();
    let quote = parsed.quote.unwrap();
    assert_eq!(quote.sha256_selection().unwrap(), vec![0, 1, 16]);
    assert_eq!(parsed.clock, 3822);
    assert!(parsed.safe);
}

#[test]
fn a_selection_with_another_banks_pcrs_or_sha256_twice_is_refused() {
    let sha1_bank = QuoteInfo {
        selections: vec![(alg::SHA256, &[1, 0, 0][..]), (0x0004, &[1, 0, 0][..])],
        pcr_digest: &[],
    };
    assert_eq!(
        sha1_bank.sha256_selection(),
        Err(QuoteError::PcrSelectionMismatch)
    );
    let empty_sha1_bank = QuoteInfo {
        selections: vec![(0x0004, &[0, 0, 0][..]), (alg::SHA256, &[1, 0, 0][..])],
        pcr_digest: &[],
    };
    assert_eq!(empty_sha1_bank.sha256_selection(), Ok(vec![0]));
    let twice = QuoteInfo {
        selections: vec![(alg::SHA256, &[1, 0, 0][..]), (alg::SHA256, &[0, 0, 1][..])],
        pcr_digest: &[],
    };
    assert_eq!(
        twice.sha256_selection(),
        Err(QuoteError::PcrSelectionMismatch)
    );
}

#[test]
fn quote_failures_before_the_signature_are_malformed_or_unsupported() {
    let key = AttestationKey::from_tpm2b_public(&rsa_ak()).unwrap();
    let pcrs = reference().values().clone();
    let attest = quote(TPM_GENERATED_VALUE, b"nonce", [1, 0, 1], &[0; 32]);
    let verify = |attest: &[u8], signature: &[u8]| {
        verify_quote(&key, attest, signature, b"nonce", &pcrs, &reference()).unwrap_err()
    };

    // Well formed, but not signed by the key.
    let error = verify(&attest, &rsassa_signature(256));
    assert_eq!(error, QuoteError::BadSignature);
    assert_eq!(error.reason(), RejectionReason::InvalidTrustChain);

    // An ECDSA signature cannot be the RSA key's.
    let mut ecdsa = Vec::new();
    ecdsa.extend_from_slice(&alg::ECDSA.to_be_bytes());
    ecdsa.extend_from_slice(&alg::SHA256.to_be_bytes());
    ecdsa.extend(sized(&[1; 32]));
    ecdsa.extend(sized(&[2; 32]));
    assert_eq!(verify(&attest, &ecdsa), QuoteError::SchemeMismatch);

    // HMAC (0x0005) and SHA-1 signatures are unsupported.
    let mut hmac = rsassa_signature(256);
    hmac[1] = 0x05;
    let error = verify(&attest, &hmac);
    assert!(matches!(error, QuoteError::Unsupported(_)));
    assert_eq!(error.reason(), RejectionReason::UnsupportedDevice);
    let mut sha1 = rsassa_signature(256);
    sha1[3] = 0x04;
    assert!(matches!(verify(&attest, &sha1), QuoteError::Unsupported(_)));

    // Trailing bytes, an invalid `safe` and oversized inputs are malformed.
    let mut trailing = attest.clone();
    trailing.push(0);
    assert!(matches!(
        verify(&trailing, &rsassa_signature(256)),
        QuoteError::Malformed(_)
    ));
    let mut unsafe_flag = attest.clone();
    let safe_at = 4 + 2 + 7 + 7 + 8 + 4 + 4;
    unsafe_flag[safe_at] = 2;
    assert!(matches!(
        verify(&unsafe_flag, &rsassa_signature(256)),
        QuoteError::Malformed(_)
    ));
    assert!(matches!(
        verify(&vec![0; MAX_ATTEST_LEN + 1], &rsassa_signature(256)),
        QuoteError::Malformed(_)
    ));
    assert!(matches!(
        verify(&attest, &rsassa_signature(513)),
        QuoteError::Malformed(_)
    ));
    for len in 0..attest.len() {
        let error = verify(&attest[..len], &rsassa_signature(256));
        assert!(matches!(error, QuoteError::Malformed(_)), "{len}");
    }
}

#[test]
fn reference_values_parse_from_json() {
    let zero = "0".repeat(64);
    let upper = format!("0x{}", "AB".repeat(32));
    let text = format!(r#"{{"sha256": {{"0": "{zero}", "16": "{upper}"}}}}"#);
    let parsed = PcrReference::from_json(&text).unwrap();
    assert_eq!(parsed.bank(), PcrBank::Sha256);
    assert_eq!(
        parsed.values(),
        &BTreeMap::from([(0, [0; 32]), (16, [0xab; 32])])
    );
}

#[test]
fn reference_json_is_strict() {
    let zero = "0".repeat(64);
    let check = |text: String, expected: fn(&PcrReferenceError) -> bool| {
        let error = PcrReference::from_json(&text).unwrap_err();
        assert!(expected(&error), "{text}: {error:?}");
    };
    check(
        format!(r#"{{"sha256": {{"0": "{zero}", "0": "{zero}"}}}}"#),
        |e| matches!(e, PcrReferenceError::Json(_)),
    );
    check(format!(r#"{{"sha1": {{"0": "{zero}"}}}}"#), |e| {
        matches!(e, PcrReferenceError::UnsupportedBank(_))
    });
    check(
        format!(r#"{{"sha256": {{"0": "{zero}"}}, "sha1": {{}}}}"#),
        |e| matches!(e, PcrReferenceError::UnsupportedBank(_)),
    );
    for index in ["24", "01", "-1", "+1", "", "1.0", "300"] {
        check(format!(r#"{{"sha256": {{"{index}": "{zero}"}}}}"#), |e| {
            matches!(e, PcrReferenceError::IndexOutOfRange(_))
        });
    }
    for digest in ["00", "0x", &"g".repeat(64), &"0".repeat(66)] {
        check(format!(r#"{{"sha256": {{"1": "{digest}"}}}}"#), |e| {
            matches!(e, PcrReferenceError::BadDigest(1))
        });
    }
    check(r#"{"sha256": {}}"#.to_owned(), |e| {
        matches!(e, PcrReferenceError::Empty)
    });
    check("{}".to_owned(), |e| matches!(e, PcrReferenceError::Empty));
    check(r#"["sha256"]"#.to_owned(), |e| {
        matches!(e, PcrReferenceError::Json(_))
    });
    check(" ".repeat(MAX_REFERENCE_JSON_LEN + 1), |e| {
        matches!(e, PcrReferenceError::TooLong)
    });
}

#[test]
fn the_hex_map_of_a_policy_converts() {
    let policy = BTreeMap::from([(7, "0".repeat(64))]);
    assert_eq!(
        PcrReference::from_hex_map(&policy).unwrap().values(),
        &BTreeMap::from([(7, [0; 32])])
    );
    let out_of_range = BTreeMap::from([(24, "0".repeat(64))]);
    assert!(matches!(
        PcrReference::from_hex_map(&out_of_range),
        Err(PcrReferenceError::IndexOutOfRange(_))
    ));
}

proptest! {
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = AttestationKey::from_tpm2b_public(&bytes);
        let key = AttestationKey::from_tpm2b_public(&rsa_ak()).unwrap();
        let pcrs = reference().values().clone();
        let result = verify_quote(&key, &bytes, &bytes, b"nonce", &pcrs, &reference());
        prop_assert!(result.is_err());
        let _ = PcrReference::from_json(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_structures_never_panic(
        position in any::<prop::sample::Index>(),
        value in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let key = AttestationKey::from_tpm2b_public(&rsa_ak()).unwrap();
        let pcrs = reference().values().clone();
        for original in [
            rsa_ak(),
            sized(&ecc_tpmt_public(AK_ATTRIBUTES, ECC_NIST_P256)),
            quote(TPM_GENERATED_VALUE, b"nonce", [1, 0, 1], &[0; 32]),
            rsassa_signature(256),
        ] {
            let mut mutated = original.clone();
            mutated[position.index(original.len())] = value;
            mutated.truncate(cut.index(original.len() + 1));
            let _ = AttestationKey::from_tpm2b_public(&mutated);
            let attest = quote(TPM_GENERATED_VALUE, b"nonce", [1, 0, 1], &[0; 32]);
            prop_assert!(verify_quote(&key, &mutated, &rsassa_signature(256), b"nonce", &pcrs, &reference()).is_err());
            prop_assert!(verify_quote(&key, &attest, &mutated, b"nonce", &pcrs, &reference()).is_err());
        }
    }
}
