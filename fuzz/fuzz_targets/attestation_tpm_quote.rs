//! Fuzzes the TPM 2.0 parsers Command runs on what a Linux device sends: the `TPM2B_PUBLIC` of
//! its attestation key at enrollment, and for every quote the `TPMS_ATTEST`, its
//! `TPMT_SIGNATURE` and the claimed PCR values (`enigm_attest::tpm`); plus the reference-value
//! JSON an operator hands in (the whole input, read as text).
//!
//! The first byte picks the mode:
//! - even, **forge**: the rest is split into a public area, an attest structure, a signature and
//!   a nonce (each a two-byte big-endian length and its bytes) and claimed PCRs (33-byte records,
//!   index then value). Properties: a key that parses has the Name TPM 2.0 defines (SHA-256's
//!   algorithm id, then the SHA-256 of its `TPMT_PUBLIC`); nothing verifies under the target's
//!   own key, whose private half the input never sees; a quote that verifies under a key from
//!   the input reports exactly the reference values;
//! - odd, **tamper**: a two-byte position, a one-byte mask and a nonce. The target builds a quote
//!   over that nonce and the reference PCRs, signs it with its own key, and checks that it
//!   verifies with the reported values; that it stops verifying when the mask flips bits at the
//!   position of the attest structure followed by the signature; and that it never verifies for
//!   another nonce.

#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use enigm_attest::tpm::{
    AttestationKey, PcrReference, QuoteError, TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE,
    verify_quote,
};
use enigm_crypto::{EcdsaP256SigningKey, sha256};
use libfuzzer_sys::fuzz_target;

/// `TPM_ALG_SHA256`, `TPM_ALG_ECC`, `TPM_ALG_ECDSA`, `TPM_ALG_NULL`, `TPM_ECC_NIST_P256`.
const SHA256: u16 = 0x000b;
const ECC: u16 = 0x0023;
const ECDSA: u16 = 0x0018;
const NULL: u16 = 0x0010;
const NIST_P256: u16 = 0x0003;
/// fixedTPM, fixedParent, sensitiveDataOrigin, userWithAuth, restricted, sign.
const AK_ATTRIBUTES: u32 = 0x0005_0072;

fn reference() -> PcrReference {
    PcrReference::sha256(BTreeMap::from([
        (0, [0; 32]),
        (7, [0x5a; 32]),
        (16, [7; 32]),
    ]))
    .expect("a reference of three SHA-256 PCRs")
}

/// The target's attestation key: made once per process, so no input can carry its signature.
fn own_key() -> &'static (EcdsaP256SigningKey, AttestationKey) {
    static KEY: OnceLock<(EcdsaP256SigningKey, AttestationKey)> = OnceLock::new();
    KEY.get_or_init(|| {
        let signing = EcdsaP256SigningKey::generate().expect("a P-256 key");
        let point = signing.public_point().expect("its public point");
        let mut tpmt = Vec::new();
        tpmt.extend_from_slice(&ECC.to_be_bytes());
        tpmt.extend_from_slice(&SHA256.to_be_bytes());
        tpmt.extend_from_slice(&AK_ATTRIBUTES.to_be_bytes());
        tpmt.extend(sized(&[]));
        tpmt.extend_from_slice(&NULL.to_be_bytes());
        tpmt.extend_from_slice(&ECDSA.to_be_bytes());
        tpmt.extend_from_slice(&SHA256.to_be_bytes());
        tpmt.extend_from_slice(&NIST_P256.to_be_bytes());
        tpmt.extend_from_slice(&NULL.to_be_bytes());
        tpmt.extend(sized(&point[1..33]));
        tpmt.extend(sized(&point[33..65]));
        let key = AttestationKey::from_tpm2b_public(&sized(&tpmt)).expect("the target's own AK");
        (signing, key)
    })
}

fn sized(bytes: &[u8]) -> Vec<u8> {
    let mut out = u16::try_from(bytes.len())
        .expect("a TPM2B fits")
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(bytes);
    out
}

/// A `TPMS_ATTEST` of a quote over `nonce` selecting the reference's PCRs of the SHA-256 bank.
fn quote(nonce: &[u8], reference: &PcrReference) -> Vec<u8> {
    let mut bitmap = [0u8; 3];
    for index in reference.values().keys() {
        bitmap[usize::from(index / 8)] |= 1 << (index % 8);
    }
    let concatenated: Vec<u8> = reference.values().values().flatten().copied().collect();
    let mut out = Vec::new();
    out.extend_from_slice(&TPM_GENERATED_VALUE.to_be_bytes());
    out.extend_from_slice(&TPM_ST_ATTEST_QUOTE.to_be_bytes());
    out.extend(sized(&[0x00, 0x0b, 1, 2, 3]));
    out.extend(sized(nonce));
    out.extend_from_slice(&3822u64.to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.push(1);
    out.extend_from_slice(&0x2019_1023_0016_3636u64.to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&SHA256.to_be_bytes());
    out.push(3);
    out.extend_from_slice(&bitmap);
    out.extend(sized(&sha256(&concatenated)));
    out
}

/// The `TPMT_SIGNATURE` of an ECDSA signature, from ring's DER `SEQUENCE { r, s }`.
fn tpmt_signature(der: &[u8]) -> Vec<u8> {
    let integer = |bytes: &[u8]| -> (Vec<u8>, usize) {
        assert_eq!(bytes[0], 0x02, "an INTEGER");
        let length = usize::from(bytes[1]);
        let value = &bytes[2..2 + length];
        let value = value.strip_prefix(&[0]).unwrap_or(value);
        let mut padded = vec![0u8; 32 - value.len()];
        padded.extend_from_slice(value);
        (padded, 2 + length)
    };
    assert_eq!(der[0], 0x30, "a SEQUENCE");
    let (r, used) = integer(&der[2..]);
    let (s, _) = integer(&der[2 + used..]);
    let mut out = Vec::new();
    out.extend_from_slice(&ECDSA.to_be_bytes());
    out.extend_from_slice(&SHA256.to_be_bytes());
    out.extend(sized(&r));
    out.extend(sized(&s));
    out
}

/// Splits off a two-byte big-endian length and that many bytes (fewer at the end of the input).
fn take<'a>(input: &mut &'a [u8]) -> &'a [u8] {
    let Some((length, rest)) = input.split_first_chunk::<2>() else {
        return std::mem::take(input);
    };
    let (part, rest) = rest.split_at(usize::from(u16::from_be_bytes(*length)).min(rest.len()));
    *input = rest;
    part
}

fn forge(mut input: &[u8]) {
    let public = take(&mut input);
    let attest = take(&mut input);
    let signature = take(&mut input);
    let nonce = take(&mut input);
    let claimed: BTreeMap<u8, [u8; 32]> = input
        .chunks_exact(33)
        .map(|record| (record[0], record[1..].try_into().expect("32 bytes")))
        .collect();
    let reference = reference();

    let result = verify_quote(&own_key().1, attest, signature, nonce, &claimed, &reference);
    assert!(
        result.is_err(),
        "a quote verified without the key's signature"
    );

    if let Ok(key) = AttestationKey::from_tpm2b_public(public) {
        assert_eq!(key.name()[..2], SHA256.to_be_bytes());
        assert_eq!(key.name()[2..], sha256(&public[2..]));
        if let Ok(verified) = verify_quote(&key, attest, signature, nonce, &claimed, &reference) {
            assert_eq!(verified.pcrs(), reference.values());
            assert!(!nonce.is_empty());
        }
    }
}

fn tamper(input: &[u8]) {
    let Some(([high, low, mask], nonce)) = input.split_first_chunk::<3>() else {
        return;
    };
    if nonce.is_empty() || nonce.len() > 64 {
        // A TPM's nonce is a digest at most; verify_quote refuses an empty expected nonce.
        return;
    }
    let (signing, key) = own_key();
    let reference = reference();
    let values = reference.values().clone();
    let attest = quote(nonce, &reference);
    let signature = tpmt_signature(&signing.sign(&attest).expect("the target's key signs"));

    let verified = verify_quote(key, &attest, &signature, nonce, &values, &reference)
        .expect("a quote the key signed over the nonce and reference verifies");
    assert_eq!(verified.pcrs(), &values);
    assert_eq!(verified.clock(), 3822);

    let mut other_nonce = nonce.to_vec();
    other_nonce[0] ^= 1;
    assert_eq!(
        verify_quote(key, &attest, &signature, &other_nonce, &values, &reference),
        Err(QuoteError::NonceMismatch)
    );

    if *mask != 0 {
        let mut both = [attest.clone(), signature.clone()].concat();
        let position = usize::from(u16::from_be_bytes([*high, *low])) % both.len();
        both[position] ^= mask;
        let (attest, signature) = both.split_at(attest.len());
        assert!(
            verify_quote(key, attest, signature, nonce, &values, &reference).is_err(),
            "a quote verified after bits of it were flipped at {position}"
        );
    }
}

/// Reference JSON that parses names PCRs 0 to 23 only, and reads back the same from its
/// plainest spelling.
fn reference_json(text: &str) {
    if let Ok(parsed) = PcrReference::from_json(text) {
        assert!(parsed.values().keys().all(|index| *index < 24));
        let plain: BTreeMap<String, String> = parsed
            .values()
            .iter()
            .map(|(index, value)| (index.to_string(), hex::encode(value)))
            .collect();
        let json = serde_json::json!({ "sha256": plain }).to_string();
        assert_eq!(PcrReference::from_json(&json), Ok(parsed));
    }
}

fuzz_target!(|data: &[u8]| {
    reference_json(&String::from_utf8_lossy(data));
    match data.split_first() {
        Some((mode, rest)) if mode % 2 == 0 => forge(rest),
        Some((_, rest)) => tamper(rest),
        None => {}
    }
});
