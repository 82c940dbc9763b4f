//! TPM 2.0 quotes, the Keylime way: at enrollment a Linux device registers the public part of its
//! attestation key (AK, a restricted signing key that never leaves its TPM); later it answers a
//! server nonce with a `TPM2_Quote` over a PCR selection, signed by the AK, plus the PCR values.
//! [`verify_quote`] checks the signature, the nonce, that the values hash to the quote's
//! `pcrDigest` and that they equal the reference values.
//!
//! The parsers read the TPM's big-endian marshalling (TPM 2.0 Library, Part 2) strictly: every
//! size is bounded, every union tag must be one we know, no byte may trail. Inputs are what
//! tpm2-tools writes: `tpm2_createak -u` (a `TPM2B_PUBLIC`), `tpm2_quote -m` (a `TPMS_ATTEST`)
//! and `tpm2_quote -s` (a `TPMT_SIGNATURE`).
//!
//! Supported: RSA 2048 keys signing with RSASSA-PKCS1-v1_5 or RSASSA-PSS, and ECC NIST P-256 keys
//! signing with ECDSA, all with SHA-256 and name algorithm SHA-256; PCRs of the SHA-256 bank.

use std::collections::BTreeMap;
use std::fmt;

use enigm_crypto::{
    RsaPadding, constant_time_eq, sha256, verify_ecdsa_p256_sha256, verify_rsa_sha256,
};

use crate::outcome::RejectionReason;

/// `TPM_GENERATED_VALUE`: the magic that starts every structure the TPM itself produced.
pub const TPM_GENERATED_VALUE: u32 = 0xff54_4347;
/// `TPM_ST_ATTEST_QUOTE`: the structure tag of a quote.
pub const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;
/// PCR indices run from 0 to 23 (the PC Client platform's 24 PCRs).
pub const PCR_COUNT: u8 = 24;
/// The most bytes of a `TPM2B_PUBLIC` we read (an RSA 2048 AK takes 282).
pub const MAX_PUBLIC_LEN: usize = 1024;
/// The most bytes of a `TPMS_ATTEST` we read (a quote over one bank takes about 150).
pub const MAX_ATTEST_LEN: usize = 1024;
/// The most bytes of a `TPMT_SIGNATURE` we read (an RSA 2048 signature takes 262).
pub const MAX_SIGNATURE_LEN: usize = 1024;
/// The most bytes of reference JSON we read.
pub const MAX_REFERENCE_JSON_LEN: usize = 16 * 1024;

/// Algorithm identifiers (`TPM_ALG_ID`).
mod alg {
    pub(super) const RSA: u16 = 0x0001;
    pub(super) const SHA256: u16 = 0x000b;
    pub(super) const NULL: u16 = 0x0010;
    pub(super) const RSASSA: u16 = 0x0014;
    pub(super) const RSAPSS: u16 = 0x0016;
    pub(super) const ECDSA: u16 = 0x0018;
    pub(super) const ECC: u16 = 0x0023;
}

/// `TPM_ECC_NIST_P256`.
const ECC_NIST_P256: u16 = 0x0003;

/// `TPMA_OBJECT` bits.
mod attr {
    pub(super) const FIXED_TPM: u32 = 1 << 1;
    pub(super) const FIXED_PARENT: u32 = 1 << 4;
    pub(super) const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    pub(super) const RESTRICTED: u32 = 1 << 16;
    pub(super) const DECRYPT: u32 = 1 << 17;
    pub(super) const SIGN: u32 = 1 << 18;
}

/// What an attestation key must be: created inside this TPM and never to leave it
/// (`fixedTPM`, `fixedParent`, `sensitiveDataOrigin`), and restricted to signing what the TPM
/// itself produced (`restricted`, `sign`), so a quote cannot be forged by asking the key to sign
/// arbitrary bytes that start with [`TPM_GENERATED_VALUE`].
const AK_REQUIRED_ATTRIBUTES: u32 = attr::FIXED_TPM
    | attr::FIXED_PARENT
    | attr::SENSITIVE_DATA_ORIGIN
    | attr::RESTRICTED
    | attr::SIGN;

// ---------------------------------------------------------------------------------------------
// Attestation key

/// The key type and size of an attestation key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttestationKeyAlgorithm {
    Rsa2048,
    EccNistP256,
}

/// The one signing scheme a restricted key is bound to; its signatures use no other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningScheme {
    RsassaSha256,
    RsapssSha256,
    EcdsaSha256,
}

/// The public part of a TPM attestation key, registered at enrollment.
#[derive(Clone, PartialEq, Eq)]
pub struct AttestationKey {
    key: PublicKey,
    scheme: SigningScheme,
    name: [u8; 34],
}

#[derive(Clone, PartialEq, Eq)]
enum PublicKey {
    /// INVARIANT: `modulus` is 256 bytes with its top bit set; `exponent` is big-endian without
    /// leading zeros, odd and at least 3.
    Rsa { modulus: Vec<u8>, exponent: Vec<u8> },
    /// INVARIANT: `x` and `y` are 1 to 32 bytes each.
    EccP256 { x: Vec<u8>, y: Vec<u8> },
}

/// Why bytes are not an attestation key we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AttestationKeyError {
    #[error("malformed TPM2B_PUBLIC: {0}")]
    Malformed(&'static str),
    #[error("unsupported attestation key: {0}")]
    Unsupported(&'static str),
    #[error("not an attestation key: {0}")]
    NotAnAttestationKey(&'static str),
}

impl AttestationKeyError {
    pub fn reason(&self) -> RejectionReason {
        match self {
            AttestationKeyError::Malformed(_) | AttestationKeyError::NotAnAttestationKey(_) => {
                RejectionReason::InvalidTrustChain
            }
            AttestationKeyError::Unsupported(_) => RejectionReason::UnsupportedDevice,
        }
    }
}

impl AttestationKey {
    /// Parses a marshalled `TPM2B_PUBLIC` (what `tpm2_createak -u` writes) and requires the
    /// attributes of an attestation key.
    pub fn from_tpm2b_public(bytes: &[u8]) -> Result<AttestationKey, AttestationKeyError> {
        if bytes.len() > MAX_PUBLIC_LEN {
            return Err(AttestationKeyError::Malformed("longer than the bound"));
        }
        let mut reader = Reader::new(bytes);
        let public = reader.sized(MAX_PUBLIC_LEN).map_err(malformed_key)?;
        reader.finish().map_err(malformed_key)?;
        if public.is_empty() {
            return Err(AttestationKeyError::Malformed("empty public area"));
        }
        parse_public(public)
    }

    /// The TPM Name of the key: `nameAlg` (SHA-256, `0x000b`) followed by the SHA-256 digest of
    /// its marshalled `TPMT_PUBLIC`. `tpm2_createak -n` writes the same 34 bytes.
    pub fn name(&self) -> &[u8; 34] {
        &self.name
    }

    pub fn algorithm(&self) -> AttestationKeyAlgorithm {
        match self.key {
            PublicKey::Rsa { .. } => AttestationKeyAlgorithm::Rsa2048,
            PublicKey::EccP256 { .. } => AttestationKeyAlgorithm::EccNistP256,
        }
    }

    pub fn scheme(&self) -> SigningScheme {
        self.scheme
    }
}

impl fmt::Debug for AttestationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttestationKey")
            .field("algorithm", &self.algorithm())
            .field("scheme", &self.scheme)
            .field("name", &hex::encode(self.name))
            .finish()
    }
}

fn malformed_key(error: ParseError) -> AttestationKeyError {
    AttestationKeyError::Malformed(error.0)
}

/// Parses a `TPMT_PUBLIC` (the inside of a `TPM2B_PUBLIC`).
fn parse_public(tpmt_public: &[u8]) -> Result<AttestationKey, AttestationKeyError> {
    use AttestationKeyError::{Malformed, NotAnAttestationKey, Unsupported};
    let mut r = Reader::new(tpmt_public);
    let key_type = r.u16().map_err(malformed_key)?;
    let name_alg = r.u16().map_err(malformed_key)?;
    if name_alg != alg::SHA256 {
        return Err(Unsupported("the name algorithm is not SHA-256"));
    }
    let attributes = r.u32().map_err(malformed_key)?;
    if attributes & AK_REQUIRED_ATTRIBUTES != AK_REQUIRED_ATTRIBUTES {
        return Err(NotAnAttestationKey(
            "it must be restricted, sign, fixedTPM, fixedParent and sensitiveDataOrigin",
        ));
    }
    if attributes & attr::DECRYPT != 0 {
        return Err(NotAnAttestationKey("it may also decrypt"));
    }
    // authPolicy: a TPM2B_DIGEST; its content does not matter to a verifier.
    r.sized(64).map_err(malformed_key)?;
    // TPMT_SYM_DEF_OBJECT: a signing key has none. Anything else would be a storage key, whose
    // parameters we do not parse.
    if r.u16().map_err(malformed_key)? != alg::NULL {
        return Err(NotAnAttestationKey("it has a symmetric algorithm"));
    }
    let scheme_alg = r.u16().map_err(malformed_key)?;
    if scheme_alg == alg::NULL {
        return Err(NotAnAttestationKey(
            "a restricted signing key names its scheme",
        ));
    }
    let (key, scheme) = match key_type {
        alg::RSA => {
            let scheme = match scheme_alg {
                alg::RSASSA => SigningScheme::RsassaSha256,
                alg::RSAPSS => SigningScheme::RsapssSha256,
                _ => return Err(Unsupported("the RSA scheme is not RSASSA or RSAPSS")),
            };
            if r.u16().map_err(malformed_key)? != alg::SHA256 {
                return Err(Unsupported("the scheme's hash is not SHA-256"));
            }
            if r.u16().map_err(malformed_key)? != 2048 {
                return Err(Unsupported("the RSA key is not 2048 bits"));
            }
            let exponent = match r.u32().map_err(malformed_key)? {
                // Zero stands for the default exponent, 2^16 + 1.
                0 => 65_537,
                exponent if exponent >= 3 && exponent % 2 == 1 => exponent,
                _ => return Err(Malformed("the RSA exponent is even or below 3")),
            };
            let modulus = r.sized(512).map_err(malformed_key)?;
            match modulus.first() {
                Some(first) if modulus.len() == 256 && first & 0x80 != 0 => {}
                _ => return Err(Malformed("the RSA modulus is not 2048 bits")),
            }
            let exponent = exponent.to_be_bytes();
            let significant = exponent.iter().position(|byte| *byte != 0).unwrap_or(0);
            let exponent = exponent.get(significant..).unwrap_or(&[]).to_vec();
            let key = PublicKey::Rsa {
                modulus: modulus.to_vec(),
                exponent,
            };
            (key, scheme)
        }
        alg::ECC => {
            if scheme_alg != alg::ECDSA {
                return Err(Unsupported("the ECC scheme is not ECDSA"));
            }
            if r.u16().map_err(malformed_key)? != alg::SHA256 {
                return Err(Unsupported("the scheme's hash is not SHA-256"));
            }
            if r.u16().map_err(malformed_key)? != ECC_NIST_P256 {
                return Err(Unsupported("the curve is not NIST P-256"));
            }
            if r.u16().map_err(malformed_key)? != alg::NULL {
                return Err(NotAnAttestationKey("a signing key has no KDF"));
            }
            let x = r.sized(32).map_err(malformed_key)?;
            let y = r.sized(32).map_err(malformed_key)?;
            if x.is_empty() || y.is_empty() {
                return Err(Malformed("an empty ECC coordinate"));
            }
            let key = PublicKey::EccP256 {
                x: x.to_vec(),
                y: y.to_vec(),
            };
            (key, SigningScheme::EcdsaSha256)
        }
        _ => return Err(Unsupported("the key is neither RSA nor ECC")),
    };
    r.finish().map_err(malformed_key)?;
    let mut name = [0u8; 34];
    let (alg_part, digest_part) = name.split_at_mut(2);
    alg_part.copy_from_slice(&alg::SHA256.to_be_bytes());
    digest_part.copy_from_slice(&sha256(tpmt_public));
    Ok(AttestationKey { key, scheme, name })
}

// ---------------------------------------------------------------------------------------------
// Reference PCR values

/// A PCR bank: the hash algorithm its PCRs extend with. Only SHA-256 is supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PcrBank {
    Sha256,
}

/// Reference values for PCRs of one bank: a quote must cover exactly these PCRs and match them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrReference {
    bank: PcrBank,
    /// INVARIANT: 1 to 24 entries, every index below [`PCR_COUNT`].
    values: BTreeMap<u8, [u8; 32]>,
}

/// Why reference values (or claimed PCR values) are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PcrReferenceError {
    #[error("no reference PCR values")]
    Empty,
    #[error("PCR index `{0}` is out of range (0 to 23)")]
    IndexOutOfRange(String),
    #[error("PCR `{0}`: expected 64 hexadecimal digits, optionally after `0x`")]
    BadDigest(u8),
    #[error("unsupported PCR bank `{0}`: only `sha256`")]
    UnsupportedBank(String),
    #[error("reference JSON is longer than {MAX_REFERENCE_JSON_LEN} bytes")]
    TooLong,
    #[error("reference JSON: {0}")]
    Json(String),
}

impl PcrReference {
    /// Reference values for the SHA-256 bank.
    pub fn sha256(values: BTreeMap<u8, [u8; 32]>) -> Result<PcrReference, PcrReferenceError> {
        if values.is_empty() {
            return Err(PcrReferenceError::Empty);
        }
        if let Some(index) = values.keys().find(|index| **index >= PCR_COUNT) {
            return Err(PcrReferenceError::IndexOutOfRange(index.to_string()));
        }
        Ok(PcrReference {
            bank: PcrBank::Sha256,
            values,
        })
    }

    /// Reference values for the SHA-256 bank as an attestation policy keeps them (index →
    /// hexadecimal digest).
    pub fn from_hex_map(values: &BTreeMap<u8, String>) -> Result<PcrReference, PcrReferenceError> {
        PcrReference::sha256(pcr_values_from_hex(values)?)
    }

    /// Parses reference values written as JSON:
    ///
    /// ```json
    /// {"sha256": {"0": "3d45…", "1": "0x0000…", "16": "90F4…"}}
    /// ```
    ///
    /// One bank, `sha256`; keys are PCR indices 0 to 23 in decimal; values are 64 hexadecimal
    /// digits in either case, optionally after `0x`. This is the shape `tpm2_pcrread sha256:…`
    /// prints as YAML (`sha256:` then `  16: 0x90F4…`), so its output converted to JSON
    /// (`yq -o json`) is accepted as it is. Duplicate keys and any other key are refused.
    pub fn from_json(text: &str) -> Result<PcrReference, PcrReferenceError> {
        if text.len() > MAX_REFERENCE_JSON_LEN {
            return Err(PcrReferenceError::TooLong);
        }
        let banks: StrictMap<StrictMap<String>> = serde_json::from_str(text)
            .map_err(|error| PcrReferenceError::Json(error.to_string()))?;
        let mut banks = banks.0.into_iter();
        let (bank, pcrs) = match (banks.next(), banks.next()) {
            (Some(only), None) => only,
            (None, _) => return Err(PcrReferenceError::Empty),
            (Some(_), Some((second, _))) => return Err(PcrReferenceError::UnsupportedBank(second)),
        };
        if bank != "sha256" {
            return Err(PcrReferenceError::UnsupportedBank(bank));
        }
        let mut values = BTreeMap::new();
        for (index, digest) in pcrs.0 {
            let index = parse_pcr_index(&index)?;
            values.insert(index, parse_digest(index, &digest)?);
        }
        PcrReference::sha256(values)
    }

    pub fn bank(&self) -> PcrBank {
        self.bank
    }

    pub fn values(&self) -> &BTreeMap<u8, [u8; 32]> {
        &self.values
    }
}

/// Decodes claimed or reference PCR values from index → hexadecimal digest (the wire form).
pub fn pcr_values_from_hex(
    values: &BTreeMap<u8, String>,
) -> Result<BTreeMap<u8, [u8; 32]>, PcrReferenceError> {
    values
        .iter()
        .map(|(index, digest)| {
            if *index >= PCR_COUNT {
                return Err(PcrReferenceError::IndexOutOfRange(index.to_string()));
            }
            Ok((*index, parse_digest(*index, digest)?))
        })
        .collect()
}

/// A decimal PCR index from 0 to 23, without sign or leading zeros.
pub fn parse_pcr_index(text: &str) -> Result<u8, PcrReferenceError> {
    let out_of_range = || PcrReferenceError::IndexOutOfRange(text.chars().take(16).collect());
    let canonical = !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !canonical {
        return Err(out_of_range());
    }
    match text.parse::<u8>() {
        Ok(index) if index < PCR_COUNT => Ok(index),
        _ => Err(out_of_range()),
    }
}

fn parse_digest(index: u8, text: &str) -> Result<[u8; 32], PcrReferenceError> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    let mut digest = [0u8; 32];
    hex::decode_to_slice(digits, &mut digest).map_err(|_| PcrReferenceError::BadDigest(index))?;
    Ok(digest)
}

/// A JSON object read in order that refuses duplicate keys (serde_json keeps the last silently).
struct StrictMap<V>(Vec<(String, V)>);

impl<'de, V: serde::Deserialize<'de>> serde::Deserialize<'de> for StrictMap<V> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: serde::Deserialize<'de>> serde::de::Visitor<'de> for Visitor<V> {
            type Value = StrictMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(String, V)> = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, V>()? {
                    if entries.iter().any(|(seen, _)| *seen == key) {
                        return Err(serde::de::Error::custom(format_args!(
                            "duplicate key `{}`",
                            key.chars().take(16).collect::<String>()
                        )));
                    }
                    entries.push((key, value));
                }
                Ok(StrictMap(entries))
            }
        }
        deserializer.deserialize_map(Visitor(std::marker::PhantomData))
    }
}

// ---------------------------------------------------------------------------------------------
// Quote verification

/// Why a quote is refused. [`QuoteError::reason`] names the one rejection reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    #[error("malformed quote: {0}")]
    Malformed(&'static str),
    #[error("unsupported quote: {0}")]
    Unsupported(&'static str),
    #[error("the quote is signed with another scheme than the attestation key's")]
    SchemeMismatch,
    #[error("the quote's signature does not verify under the attestation key")]
    BadSignature,
    #[error("the signed structure is not a TPM-generated quote")]
    NotAQuote,
    #[error("the quote answers another nonce")]
    NonceMismatch,
    #[error("the quote covers other PCRs than the reference")]
    PcrSelectionMismatch,
    #[error("the claimed PCR values do not hash to the quote's PCR digest")]
    PcrDigestMismatch,
    #[error("PCR {index} differs from the reference value")]
    PcrValueMismatch { index: u8 },
}

impl QuoteError {
    pub fn reason(&self) -> RejectionReason {
        match self {
            QuoteError::Malformed(_)
            | QuoteError::SchemeMismatch
            | QuoteError::BadSignature
            | QuoteError::NotAQuote => RejectionReason::InvalidTrustChain,
            QuoteError::Unsupported(_) => RejectionReason::UnsupportedDevice,
            QuoteError::NonceMismatch => RejectionReason::ReplayAttempt,
            QuoteError::PcrSelectionMismatch
            | QuoteError::PcrDigestMismatch
            | QuoteError::PcrValueMismatch { .. } => RejectionReason::IneligibleBuild,
        }
    }
}

/// A quote that verified: signed by the attestation key, over the expected nonce, covering
/// exactly the reference PCRs, whose values equal the reference. Only [`verify_quote`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedQuote {
    clock: u64,
    reset_count: u32,
    restart_count: u32,
    safe: bool,
    firmware_version: u64,
    qualified_signer: Vec<u8>,
    pcrs: BTreeMap<u8, [u8; 32]>,
}

impl VerifiedQuote {
    /// Milliseconds the TPM has been powered since its clock was last set.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// TPM resets (reboots) since the TPM was cleared.
    pub fn reset_count(&self) -> u32 {
        self.reset_count
    }

    /// Restarts (resumes from hibernation) since the last reset.
    pub fn restart_count(&self) -> u32 {
        self.restart_count
    }

    /// Whether the clock has not gone back since it was last reported (`TPMS_CLOCK_INFO.safe`).
    pub fn is_clock_safe(&self) -> bool {
        self.safe
    }

    /// The TPM vendor's firmware version.
    pub fn firmware_version(&self) -> u64 {
        self.firmware_version
    }

    /// The signer's qualified name as the TPM reported it (recorded, not checked: it depends on
    /// the key's parent, which the verifier does not know).
    pub fn qualified_signer(&self) -> &[u8] {
        &self.qualified_signer
    }

    /// The SHA-256 bank PCRs the quote covers, in ascending order.
    pub fn selected_pcrs(&self) -> impl Iterator<Item = u8> + '_ {
        self.pcrs.keys().copied()
    }

    /// The verified values of the selected PCRs.
    pub fn pcrs(&self) -> &BTreeMap<u8, [u8; 32]> {
        &self.pcrs
    }
}

/// Verifies a quote by `ak` over `expected_nonce`.
///
/// `attest_bytes` is the marshalled `TPMS_ATTEST` the TPM signed and `signature_bytes` its
/// `TPMT_SIGNATURE`; `pcr_values` are the device's claimed SHA-256 PCR values. In order: both
/// structures parse; the signature over `attest_bytes` verifies under `ak` with its scheme; the
/// structure is a TPM-generated quote; its `extraData` is the nonce; it selects exactly the
/// reference's PCRs of the SHA-256 bank; the claimed values, in selection order, hash to its
/// `pcrDigest`; and they equal the reference values. The first failure decides the error.
pub fn verify_quote(
    ak: &AttestationKey,
    attest_bytes: &[u8],
    signature_bytes: &[u8],
    expected_nonce: &[u8],
    pcr_values: &BTreeMap<u8, [u8; 32]>,
    reference: &PcrReference,
) -> Result<VerifiedQuote, QuoteError> {
    let attest = Attest::parse(attest_bytes)?;
    let signature = Signature::parse(signature_bytes)?;

    verify_signature(ak, &signature, attest_bytes)?;

    let quote = match (attest.magic, attest.attest_type, attest.quote) {
        (TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE, Some(quote)) => quote,
        _ => return Err(QuoteError::NotAQuote),
    };

    // An empty expected nonce is a caller's mistake; refusing it keeps a nonce-less quote from
    // ever being accepted.
    if expected_nonce.is_empty() || !constant_time_eq(attest.extra_data, expected_nonce) {
        return Err(QuoteError::NonceMismatch);
    }

    let selected = quote.sha256_selection()?;
    let PcrBank::Sha256 = reference.bank;
    if !selected
        .iter()
        .copied()
        .eq(reference.values.keys().copied())
    {
        return Err(QuoteError::PcrSelectionMismatch);
    }

    if !pcr_values.keys().copied().eq(selected.iter().copied()) {
        return Err(QuoteError::PcrDigestMismatch);
    }
    let concatenated: Vec<u8> = pcr_values.values().flatten().copied().collect();
    if sha256(&concatenated).as_slice() != quote.pcr_digest {
        return Err(QuoteError::PcrDigestMismatch);
    }

    for (index, expected) in &reference.values {
        if pcr_values.get(index) != Some(expected) {
            return Err(QuoteError::PcrValueMismatch { index: *index });
        }
    }

    Ok(VerifiedQuote {
        clock: attest.clock,
        reset_count: attest.reset_count,
        restart_count: attest.restart_count,
        safe: attest.safe,
        firmware_version: attest.firmware_version,
        qualified_signer: attest.qualified_signer.to_vec(),
        pcrs: pcr_values.clone(),
    })
}

fn verify_signature(
    ak: &AttestationKey,
    signature: &Signature<'_>,
    message: &[u8],
) -> Result<(), QuoteError> {
    let verified = match (&ak.key, ak.scheme, signature) {
        (
            PublicKey::Rsa { modulus, exponent },
            SigningScheme::RsassaSha256,
            Signature::Rsassa(sig),
        ) => verify_rsa_sha256(modulus, exponent, RsaPadding::Pkcs1v15, message, sig),
        (
            PublicKey::Rsa { modulus, exponent },
            SigningScheme::RsapssSha256,
            Signature::Rsapss(sig),
        ) => verify_rsa_sha256(modulus, exponent, RsaPadding::Pss, message, sig),
        (PublicKey::EccP256 { x, y }, SigningScheme::EcdsaSha256, Signature::Ecdsa { r, s }) => {
            verify_ecdsa_p256_sha256(x, y, message, r, s)
        }
        _ => return Err(QuoteError::SchemeMismatch),
    };
    verified.map(|_| ()).map_err(|_| QuoteError::BadSignature)
}

fn malformed_quote(error: ParseError) -> QuoteError {
    QuoteError::Malformed(error.0)
}

/// A parsed `TPMS_ATTEST`. The header is common to every attestation type; the body is parsed
/// only for a quote, so that a structure of another type is refused after its signature, as
/// "not a quote", rather than as malformed.
struct Attest<'a> {
    magic: u32,
    attest_type: u16,
    qualified_signer: &'a [u8],
    extra_data: &'a [u8],
    clock: u64,
    reset_count: u32,
    restart_count: u32,
    safe: bool,
    firmware_version: u64,
    quote: Option<QuoteInfo<'a>>,
}

/// `TPMS_QUOTE_INFO`.
struct QuoteInfo<'a> {
    /// `(hash algorithm, bitmap)` per `TPMS_PCR_SELECTION`, in order.
    selections: Vec<(u16, &'a [u8])>,
    pcr_digest: &'a [u8],
}

impl<'a> Attest<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Attest<'a>, QuoteError> {
        if bytes.len() > MAX_ATTEST_LEN {
            return Err(QuoteError::Malformed(
                "the attestation is longer than the bound",
            ));
        }
        let mut r = Reader::new(bytes);
        let magic = r.u32().map_err(malformed_quote)?;
        let attest_type = r.u16().map_err(malformed_quote)?;
        // TPM2B_NAME: a digest with its algorithm, or a 4-byte handle.
        let qualified_signer = r.sized(2 + 64).map_err(malformed_quote)?;
        // TPM2B_DATA: at most the size of a TPMT_HA.
        let extra_data = r.sized(2 + 64).map_err(malformed_quote)?;
        let clock = r.u64().map_err(malformed_quote)?;
        let reset_count = r.u32().map_err(malformed_quote)?;
        let restart_count = r.u32().map_err(malformed_quote)?;
        let safe = match r.u8().map_err(malformed_quote)? {
            0 => false,
            1 => true,
            _ => {
                return Err(QuoteError::Malformed(
                    "clockInfo.safe is neither yes nor no",
                ));
            }
        };
        let firmware_version = r.u64().map_err(malformed_quote)?;
        let quote = if attest_type == TPM_ST_ATTEST_QUOTE {
            let count = r.u32().map_err(malformed_quote)?;
            if count > 16 {
                return Err(QuoteError::Malformed("more than 16 PCR selections"));
            }
            let mut selections = Vec::new();
            for _ in 0..count {
                let hash = r.u16().map_err(malformed_quote)?;
                let size = r.u8().map_err(malformed_quote)?;
                if size > 4 {
                    return Err(QuoteError::Malformed("a PCR bitmap longer than 4 bytes"));
                }
                let bitmap = r.bytes(usize::from(size)).map_err(malformed_quote)?;
                selections.push((hash, bitmap));
            }
            let pcr_digest = r.sized(64).map_err(malformed_quote)?;
            r.finish().map_err(malformed_quote)?;
            Some(QuoteInfo {
                selections,
                pcr_digest,
            })
        } else {
            None
        };
        Ok(Attest {
            magic,
            attest_type,
            qualified_signer,
            extra_data,
            clock,
            reset_count,
            restart_count,
            safe,
            firmware_version,
            quote,
        })
    }
}

impl QuoteInfo<'_> {
    /// The selected PCRs of the SHA-256 bank, ascending (the order of the digest). A selection
    /// that names the SHA-256 bank twice, or any PCR of another bank, cannot be compared with a
    /// SHA-256 reference.
    fn sha256_selection(&self) -> Result<Vec<u8>, QuoteError> {
        let mut sha256_bitmap = None;
        for (hash, bitmap) in &self.selections {
            if *hash == alg::SHA256 {
                if sha256_bitmap.replace(*bitmap).is_some() {
                    return Err(QuoteError::PcrSelectionMismatch);
                }
            } else if bitmap.iter().any(|byte| *byte != 0) {
                return Err(QuoteError::PcrSelectionMismatch);
            }
        }
        let bitmap = sha256_bitmap.ok_or(QuoteError::PcrSelectionMismatch)?;
        let mut selected = Vec::new();
        for (octet, byte) in (0u8..).zip(bitmap.iter()) {
            for bit in 0..8u8 {
                if byte & (1 << bit) != 0 {
                    selected.push(octet * 8 + bit);
                }
            }
        }
        Ok(selected)
    }
}

/// A parsed `TPMT_SIGNATURE` of a scheme we support, with SHA-256.
enum Signature<'a> {
    Rsassa(&'a [u8]),
    Rsapss(&'a [u8]),
    Ecdsa { r: &'a [u8], s: &'a [u8] },
}

impl<'a> Signature<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Signature<'a>, QuoteError> {
        if bytes.len() > MAX_SIGNATURE_LEN {
            return Err(QuoteError::Malformed(
                "the signature is longer than the bound",
            ));
        }
        let mut r = Reader::new(bytes);
        let sig_alg = r.u16().map_err(malformed_quote)?;
        if !matches!(sig_alg, alg::RSASSA | alg::RSAPSS | alg::ECDSA) {
            return Err(QuoteError::Unsupported(
                "the signature is not RSASSA, RSAPSS or ECDSA",
            ));
        }
        if r.u16().map_err(malformed_quote)? != alg::SHA256 {
            return Err(QuoteError::Unsupported(
                "the signature's hash is not SHA-256",
            ));
        }
        let signature = match sig_alg {
            alg::RSASSA => Signature::Rsassa(r.sized(512).map_err(malformed_quote)?),
            alg::RSAPSS => Signature::Rsapss(r.sized(512).map_err(malformed_quote)?),
            _ => {
                let sig_r = r.sized(32).map_err(malformed_quote)?;
                let sig_s = r.sized(32).map_err(malformed_quote)?;
                Signature::Ecdsa { r: sig_r, s: sig_s }
            }
        };
        r.finish().map_err(malformed_quote)?;
        Ok(signature)
    }
}

// ---------------------------------------------------------------------------------------------
// Reading TPM marshalling

/// What is wrong with the bytes, for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ParseError(&'static str);

/// A cursor over big-endian TPM marshalling that never reads past its input.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    fn bytes(&mut self, len: usize) -> Result<&'a [u8], ParseError> {
        let (taken, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or(ParseError("truncated"))?;
        self.rest = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ParseError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, ParseError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    fn u16(&mut self) -> Result<u16, ParseError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, ParseError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, ParseError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A `TPM2B_*`: a 16-bit size, then that many bytes, at most `max`.
    fn sized(&mut self, max: usize) -> Result<&'a [u8], ParseError> {
        let len = usize::from(self.u16()?);
        if len > max {
            return Err(ParseError("a sized field is longer than its bound"));
        }
        self.bytes(len)
    }

    fn finish(self) -> Result<(), ParseError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ParseError("trailing bytes"))
        }
    }
}

#[cfg(test)]
mod tests;
