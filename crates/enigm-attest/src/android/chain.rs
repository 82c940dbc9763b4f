//! Verifying an Android Key Attestation certificate chain, leaf first.
//!
//! Generic web-PKI validators reject real attestation chains (intermediates not marked as CAs,
//! issuer/subject names that do not match), so this verifier does what the attestation format
//! needs and nothing else: every link's signature is verified with the next certificate's key,
//! the chain ends at a root pinned by its public key (Google's RSA-4096 key, shared by four root
//! certificates, and the EC P-384 root of 2026; operator roots), every certificate is valid at
//! the verification time and absent from the status list, and the KeyDescription is taken from
//! the leaf only, plus the attest-key certificate directly above it when there is one. A
//! KeyDescription anywhere else is the chain-extension attack: a fake leaf appended below a
//! genuine attested key, whose signatures all verify.
//!
//! The links above the leaf are shared by every device of a model (and by a device attesting
//! again): verified links are remembered, bounded, keyed by the child's DER and the issuer's key,
//! and so are those certificates' parsed fields, keyed by their DER. Both are remembered only
//! once a chain reached a pinned root, so chains under unknown roots cannot flush them. The leaf
//! is parsed and its signature verified on every call; validity and revocation are checked on
//! every call for every certificate.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use base64::Engine as _;
use der::asn1::ObjectIdentifier;
use der::{Decode as _, Encode as _};
use enigm_crypto::{PublicKeyAlgorithm, SignatureAlgorithm, verify_x509_signature};
use enigm_types::Timestamp;
use x509_cert::Certificate;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use super::der::Reader;
use super::key_description::{KEY_DESCRIPTION_OID, KeyDescription, PURPOSE_ATTEST_KEY};
use super::revocation::{RevocationProblem, RevocationStatus, serial_hex};
use crate::outcome::RejectionReason;

/// The most certificates a chain may have (real ones have 3 to 6).
pub const MAX_CHAIN_LEN: usize = 10;
/// The largest certificate accepted, in bytes.
pub const MAX_CERTIFICATE_LEN: usize = 16 * 1024;
/// How many verified links the cache remembers before it starts over.
const LINK_CACHE_CAPACITY: usize = 65_536;
/// How many parsed certificates above a leaf the cache remembers before it starts over (each at
/// most [`MAX_CERTIFICATE_LEN`]; real ones are about 1 KiB).
const CERTIFICATE_CACHE_CAPACITY: usize = 16_384;

/// Google's hardware attestation root key (RSA-4096), shared by the root certificates of 2016,
/// 2019, 2022 and their reissues: SubjectPublicKeyInfo, base64.
const GOOGLE_RSA_ROOT_SPKI: &str = "MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEAr7bHgiuxpwHsK7Qui8xUFmOr75gvMsd/dTEDDJdSSxtf6An7xyqpRR90PL2abxM1dEqlXnf2tqw1Ne4Xwl5jlRfdnJLmN0pTy/4lj4/7tv0Sk3iiKkypnEUtR6WfMgH0QZfKHM1+di+y9TFRtv6y//0rb+T+W8a9nsNL/ggjnar86461qO0rOs2cXjp3kOG1FEJ5MVmFmBGtnrKpa73XpXyTqRxB/M0n1n/W9nGqC4FSYa04T6N5RIZGBN2z2MT5IKGbFlbC8UrW0DxW7AYImQQcHtGl/m00QLVWutHQoVJYnFPlXTcHYvASLu+RhhsbDmxMgJJ0mcDpvsC4PjvB+TxywElgS70vE0XmLD+OJtvsBslHZvPBKCOdT0MS+tgSOIfga+z1Z1g7+DVagf7quvmag8jfPioyKvxnK/EgsTUVi2ghzq8wm27ud/mIM7AY2qEORR8Go3TVB4HzWQgpZrt3i5MIlCaY504LzSRiigHCzAPlHws+W0rB5N+er5/2pJKnfBSDiCiFAVtCLOZ7gLiMm0jhO2B6tUXHI/+MRPjy02i59lINMRRev56GKtcd9qO/0kUJWdZTdA2XoS82ixPvZtXQpUpuL12ab+9EaDK8Z4RHJYYfCT3Q5vNAXaiWQ+8PTWm2QgBR/bkwSWc+NpUFgNPN9PvQi8WEg5UmAGMCAwEAAQ==";
/// Google's "Key Attestation CA1" root key (EC P-384), which signs new chains from February
/// 2026: SubjectPublicKeyInfo, base64.
const GOOGLE_EC_ROOT_SPKI: &str = "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEI9ojcU7fPlsFCjxy6IRqzgeOoK0b+YsV9FPQywiyw8EQRTkJ9u3qwfnI4DGoSLlBqClTXJfgfCcZvs60FikNMHnu4fkRzObfgDkU2KNXezT9/RQ+XvNslxPHrHCowhGr";

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// [`KEY_DESCRIPTION_OID`] as an OID, so extensions are matched without formatting each one.
const KEY_DESCRIPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap(KEY_DESCRIPTION_OID);

/// Which pinned root a chain ended at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Anchor {
    GoogleRsa,
    GoogleEcP384,
    Operator(String),
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Anchor::GoogleRsa => f.write_str("google-rsa"),
            Anchor::GoogleEcP384 => f.write_str("google-ec-p384"),
            Anchor::Operator(label) => write!(f, "operator:{label}"),
        }
    }
}

/// Why a chain is not evidence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("the chain must hold 1 to {MAX_CHAIN_LEN} certificates of at most 16 KiB")]
    Size,
    #[error("certificate {index} is not a well-formed X.509 certificate: {detail}")]
    Malformed { index: usize, detail: String },
    #[error("certificate {index} uses a key or signature algorithm this verifier does not support")]
    UnsupportedAlgorithm { index: usize },
    #[error("the signature of certificate {index} does not verify with the next certificate's key")]
    BadSignature { index: usize },
    #[error("the chain does not end at a pinned root")]
    UnknownRoot,
    #[error("certificate {index} is not valid at {at}")]
    OutsideValidity { index: usize, at: String },
    #[error("certificate {index} is on the attestation status list (revoked or suspended)")]
    Revoked { index: usize },
    #[error("no attestation status list is available, so revocation cannot be checked")]
    RevocationUnavailable,
    #[error("the attestation status list is older than its allowed age")]
    RevocationStale,
    #[error("the leaf has no KeyDescription extension")]
    NoKeyDescription,
    #[error("the KeyDescription of certificate {index} cannot be decoded: {detail}")]
    KeyDescription { index: usize, detail: String },
    #[error(
        "certificate {index} above the leaf carries a KeyDescription but is not an attest key \
         directly above it (chain extension)"
    )]
    ChainExtension { index: usize },
}

impl ChainError {
    /// The one rejection reason this error is.
    pub fn reason(&self) -> RejectionReason {
        match self {
            ChainError::OutsideValidity { .. } => RejectionReason::StaleAttestation,
            ChainError::NoKeyDescription | ChainError::UnsupportedAlgorithm { index: 0 } => {
                RejectionReason::UnsupportedDevice
            }
            _ => RejectionReason::InvalidTrustChain,
        }
    }
}

/// Certificates from a file's bytes: PEM with any number of certificates, or one DER
/// certificate.
pub fn parse_certificates(bytes: &[u8]) -> Result<Vec<Vec<u8>>, ChainError> {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.contains("-----BEGIN") => parse_pem_chain(text),
        _ => Ok(vec![bytes.to_vec()]),
    }
}

/// Splits PEM text into DER certificates, in order.
pub fn parse_pem_chain(text: &str) -> Result<Vec<Vec<u8>>, ChainError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut chain = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after = rest.get(start + BEGIN.len()..).unwrap_or_default();
        let end = after.find(END).ok_or(ChainError::Malformed {
            index: chain.len(),
            detail: "a PEM block has no END line".to_owned(),
        })?;
        let body: String = after
            .get(..end)
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| ChainError::Malformed {
                index: chain.len(),
                detail: "a PEM block is not base64".to_owned(),
            })?;
        chain.push(der);
        if chain.len() > MAX_CHAIN_LEN {
            return Err(ChainError::Size);
        }
        rest = after.get(end + END.len()..).unwrap_or_default();
    }
    if chain.is_empty() {
        return Err(ChainError::Size);
    }
    Ok(chain)
}

/// A public key as the verifier uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PublicKey {
    spki_der: Vec<u8>,
    /// SHA-256 of `spki_der`, for the link cache.
    digest: [u8; 32],
    algorithm: Option<PublicKeyAlgorithm>,
    bits: Vec<u8>,
}

impl PublicKey {
    fn from_spki(spki: &SubjectPublicKeyInfoOwned) -> Result<PublicKey, String> {
        let spki_der = spki.to_der().map_err(|error| error.to_string())?;
        let algorithm = if spki.algorithm.oid == RSA_ENCRYPTION {
            Some(PublicKeyAlgorithm::Rsa)
        } else if spki.algorithm.oid == EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|parameters| parameters.decode_as::<ObjectIdentifier>().ok());
            match curve {
                Some(curve) if curve == P256 => Some(PublicKeyAlgorithm::EcP256),
                Some(curve) if curve == P384 => Some(PublicKeyAlgorithm::EcP384),
                _ => None,
            }
        } else {
            None
        };
        let bits = spki
            .subject_public_key
            .as_bytes()
            .ok_or("the public key is not a whole number of bytes")?
            .to_vec();
        Ok(PublicKey {
            digest: enigm_crypto::sha256(&spki_der),
            spki_der,
            algorithm,
            bits,
        })
    }

    fn from_spki_der(der: &[u8]) -> Result<PublicKey, String> {
        let spki = SubjectPublicKeyInfoOwned::from_der(der).map_err(|error| error.to_string())?;
        PublicKey::from_spki(&spki)
    }
}

/// One certificate, parsed for verification: a pure function of its DER, so it may be cached by
/// the DER's digest.
#[derive(Debug)]
struct Parsed {
    /// SHA-256 of the certificate's DER.
    digest: [u8; 32],
    /// Where the TBSCertificate, exactly as signed, lies in the DER.
    tbs: Range<usize>,
    signature_algorithm: Option<SignatureAlgorithm>,
    signature: Vec<u8>,
    key: PublicKey,
    not_before: i64,
    not_after: i64,
    serial: Vec<u8>,
    key_description: Option<Vec<u8>>,
}

fn parse(index: usize, der: &[u8], digest: [u8; 32]) -> Result<Parsed, ChainError> {
    let malformed = |detail: String| ChainError::Malformed { index, detail };
    if der.len() > MAX_CERTIFICATE_LEN {
        return Err(ChainError::Size);
    }
    let certificate = Certificate::from_der(der).map_err(|error| malformed(error.to_string()))?;
    let tbs = raw_tbs(der).ok_or_else(|| malformed("no TBSCertificate".to_owned()))?;
    let oid = certificate.signature_algorithm.oid;
    let signature_algorithm = [
        (SHA256_WITH_RSA, SignatureAlgorithm::RsaPkcs1Sha256),
        (SHA384_WITH_RSA, SignatureAlgorithm::RsaPkcs1Sha384),
        (SHA512_WITH_RSA, SignatureAlgorithm::RsaPkcs1Sha512),
        (ECDSA_WITH_SHA256, SignatureAlgorithm::EcdsaSha256),
        (ECDSA_WITH_SHA384, SignatureAlgorithm::EcdsaSha384),
    ]
    .into_iter()
    .find_map(|(known, algorithm)| (known == oid).then_some(algorithm));
    let signature = certificate
        .signature
        .as_bytes()
        .ok_or_else(|| malformed("the signature is not a whole number of bytes".to_owned()))?
        .to_vec();
    let tbs_certificate = &certificate.tbs_certificate;
    let key = PublicKey::from_spki(&tbs_certificate.subject_public_key_info).map_err(malformed)?;
    let millis = |time: x509_cert::time::Time| {
        i64::try_from(time.to_unix_duration().as_millis()).unwrap_or(i64::MAX)
    };
    let key_description = tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|extension| extension.extn_id == KEY_DESCRIPTION)
        .map(|extension| extension.extn_value.as_bytes().to_vec());
    Ok(Parsed {
        digest,
        tbs,
        signature_algorithm,
        signature,
        key,
        not_before: millis(tbs_certificate.validity.not_before),
        not_after: millis(tbs_certificate.validity.not_after),
        serial: tbs_certificate.serial_number.as_bytes().to_vec(),
        key_description,
    })
}

/// Where the TBSCertificate lies, exactly as it was signed: the first element of the outer
/// SEQUENCE, header included.
fn raw_tbs(der: &[u8]) -> Option<Range<usize>> {
    let outer = Reader::new(der).any().ok()?;
    let tbs = outer.inner().ok()?.any().ok()?;
    let base = der.as_ptr() as usize;
    let start = (outer.contents.as_ptr() as usize).checked_sub(base)?;
    let end = (tbs.contents.as_ptr() as usize)
        .checked_add(tbs.contents.len())?
        .checked_sub(base)?;
    der.get(start..end).map(|_| start..end)
}

/// The SubjectPublicKeyInfo (DER) of a certificate.
pub fn certificate_spki(der: &[u8]) -> Result<Vec<u8>, ChainError> {
    Ok(parse(0, der, enigm_crypto::sha256(der))?.key.spki_der)
}

/// The roots a verifier trusts, pinned by public key.
#[derive(Debug, Clone)]
pub struct TrustAnchors {
    anchors: Vec<(Anchor, PublicKey)>,
}

impl TrustAnchors {
    /// No root at all: every chain is rejected.
    pub fn none() -> TrustAnchors {
        TrustAnchors {
            anchors: Vec::new(),
        }
    }

    /// Google's hardware attestation roots.
    pub fn google() -> TrustAnchors {
        let mut anchors = TrustAnchors::none();
        for (anchor, spki) in [
            (Anchor::GoogleRsa, GOOGLE_RSA_ROOT_SPKI),
            (Anchor::GoogleEcP384, GOOGLE_EC_ROOT_SPKI),
        ] {
            // INVARIANT: the constants are well-formed keys (a unit test decodes them).
            if let Some(key) = base64::engine::general_purpose::STANDARD
                .decode(spki)
                .ok()
                .and_then(|der| PublicKey::from_spki_der(&der).ok())
            {
                anchors.anchors.push((anchor, key));
            }
        }
        anchors
    }

    /// Pins an operator root by its SubjectPublicKeyInfo (DER).
    pub fn add_spki(&mut self, label: &str, spki_der: &[u8]) -> Result<(), ChainError> {
        let key = PublicKey::from_spki_der(spki_der)
            .map_err(|detail| ChainError::Malformed { index: 0, detail })?;
        if key.algorithm.is_none() {
            return Err(ChainError::UnsupportedAlgorithm { index: 0 });
        }
        self.anchors.push((Anchor::Operator(label.to_owned()), key));
        Ok(())
    }

    /// Pins the key of an operator root certificate (DER).
    pub fn add_certificate(
        &mut self,
        label: &str,
        certificate_der: &[u8],
    ) -> Result<(), ChainError> {
        let spki = certificate_spki(certificate_der)?;
        self.add_spki(label, &spki)
    }

    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// The pinned SubjectPublicKeyInfos (DER), with their anchors.
    pub fn keys(&self) -> impl Iterator<Item = (&Anchor, &[u8])> {
        self.anchors
            .iter()
            .map(|(anchor, key)| (anchor, key.spki_der.as_slice()))
    }
}

/// A chain that verified: only [`ChainVerifier::verify`] builds one.
#[derive(Debug, Clone)]
pub struct VerifiedChain {
    key_description: KeyDescription,
    attest_key_description: Option<KeyDescription>,
    leaf_spki: Vec<u8>,
    attest_key_spki: Option<Vec<u8>>,
    anchor: Anchor,
    length: usize,
    serials: Vec<String>,
}

impl VerifiedChain {
    /// The leaf's KeyDescription.
    pub fn key_description(&self) -> &KeyDescription {
        &self.key_description
    }

    /// The KeyDescription of the attest-key certificate directly above the leaf, if any.
    pub fn attest_key_description(&self) -> Option<&KeyDescription> {
        self.attest_key_description.as_ref()
    }

    /// The attested key (the leaf's SubjectPublicKeyInfo).
    pub fn leaf_spki(&self) -> &[u8] {
        &self.leaf_spki
    }

    /// The key a device's pairing pins: the attest key when the chain has one (it persists
    /// across attestations, as GrapheneOS Auditor relies on), else the attested key.
    pub fn pinned_key_spki(&self) -> &[u8] {
        self.attest_key_spki.as_deref().unwrap_or(&self.leaf_spki)
    }

    pub fn anchor(&self) -> &Anchor {
        &self.anchor
    }

    pub fn len(&self) -> usize {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// The certificates' serial numbers, leaf first, as the status list spells them: for
    /// diagnostics, not to be stored.
    pub fn serials(&self) -> &[String] {
        &self.serials
    }
}

/// Verifies chains against pinned roots, remembering verified links above the leaf.
pub struct ChainVerifier {
    anchors: TrustAnchors,
    cache: Mutex<Cache>,
}

/// What verified chains taught: links whose signature verified, and certificates above a leaf.
#[derive(Default)]
struct Cache {
    /// (SHA-256 of the child's DER, SHA-256 of the issuer's SubjectPublicKeyInfo).
    links: HashSet<[u8; 64]>,
    /// SHA-256 of a certificate's DER → its parsed fields.
    certificates: HashMap<[u8; 32], Arc<Parsed>>,
}

/// One certificate of the chain being verified.
struct Link<'a> {
    der: &'a [u8],
    parsed: Arc<Parsed>,
    /// Parsed by this call (not taken from the cache).
    fresh: bool,
}

impl ChainVerifier {
    pub fn new(anchors: TrustAnchors) -> ChainVerifier {
        ChainVerifier {
            anchors,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// Verifies `chain` (DER, leaf first) at `at` against `revocations`.
    pub fn verify<C: AsRef<[u8]>>(
        &self,
        chain: &[C],
        at: Timestamp,
        revocations: &RevocationStatus<'_>,
    ) -> Result<VerifiedChain, ChainError> {
        if chain.is_empty() || chain.len() > MAX_CHAIN_LEN {
            return Err(ChainError::Size);
        }
        let links = chain
            .iter()
            .enumerate()
            .map(|(index, der)| self.parse_link(index, der.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let (leaf, above) = links.split_first().ok_or(ChainError::Size)?;
        if leaf.parsed.key.algorithm.is_none() || leaf.parsed.signature_algorithm.is_none() {
            return Err(ChainError::UnsupportedAlgorithm { index: 0 });
        }
        let mut verified_links = Vec::new();
        for (index, pair) in links.windows(2).enumerate() {
            if let [child, issuer] = pair {
                self.verify_link(index, child, &issuer.parsed.key, &mut verified_links)?;
            }
        }
        let last = links.last().unwrap_or(leaf);
        let anchor = self.anchor_of(links.len() - 1, last, &mut verified_links)?;
        // Every signature verified up to a pinned root: remember what may be shared.
        self.remember(above, verified_links);

        let millis = at.unix_millis();
        for (index, link) in links.iter().enumerate() {
            if millis < link.parsed.not_before || millis > link.parsed.not_after {
                return Err(ChainError::OutsideValidity {
                    index,
                    at: at.to_rfc3339(),
                });
            }
        }
        match revocations.list_at(at) {
            Err(RevocationProblem::Unavailable) => return Err(ChainError::RevocationUnavailable),
            Err(RevocationProblem::Stale) => return Err(ChainError::RevocationStale),
            Ok(None) => {}
            Ok(Some(list)) => {
                if let Some(index) = links
                    .iter()
                    .position(|link| list.lists(&link.parsed.serial))
                {
                    return Err(ChainError::Revoked { index });
                }
            }
        }
        let decode = |index: usize, bytes: &[u8]| {
            KeyDescription::decode(bytes).map_err(|error| ChainError::KeyDescription {
                index,
                detail: error.to_string(),
            })
        };
        let key_description = decode(
            0,
            leaf.parsed
                .key_description
                .as_deref()
                .ok_or(ChainError::NoKeyDescription)?,
        )?;
        let mut attest_key = None;
        for (offset, link) in above.iter().enumerate() {
            let index = offset + 1;
            let Some(extension) = &link.parsed.key_description else {
                continue;
            };
            if index != 1 {
                return Err(ChainError::ChainExtension { index });
            }
            let description = decode(index, extension)?;
            if !description
                .hardware_enforced
                .purposes
                .contains(&PURPOSE_ATTEST_KEY)
            {
                return Err(ChainError::ChainExtension { index });
            }
            attest_key = Some((description, link.parsed.key.spki_der.clone()));
        }
        let (attest_key_description, attest_key_spki) = match attest_key {
            Some((description, spki)) => (Some(description), Some(spki)),
            None => (None, None),
        };
        Ok(VerifiedChain {
            key_description,
            attest_key_description,
            leaf_spki: leaf.parsed.key.spki_der.clone(),
            attest_key_spki,
            anchor,
            length: links.len(),
            serials: links
                .iter()
                .map(|link| serial_hex(&link.parsed.serial))
                .collect(),
        })
    }

    /// Parses one certificate, or takes it from the cache when it is above the leaf.
    fn parse_link<'a>(&self, index: usize, der: &'a [u8]) -> Result<Link<'a>, ChainError> {
        if der.len() > MAX_CERTIFICATE_LEN {
            return Err(ChainError::Size);
        }
        let digest = enigm_crypto::sha256(der);
        if index > 0
            && let Some(parsed) = self.cache().certificates.get(&digest)
        {
            return Ok(Link {
                der,
                parsed: Arc::clone(parsed),
                fresh: false,
            });
        }
        Ok(Link {
            der,
            parsed: Arc::new(parse(index, der, digest)?),
            fresh: true,
        })
    }

    /// Verifies that `issuer` signed `child`; a link above the leaf that verified before is not
    /// verified again, and one verified now is added to `verified`.
    fn verify_link(
        &self,
        index: usize,
        child: &Link<'_>,
        issuer: &PublicKey,
        verified: &mut Vec<[u8; 64]>,
    ) -> Result<(), ChainError> {
        let mut key = [0_u8; 64];
        let (child_half, issuer_half) = key.split_at_mut(32);
        child_half.copy_from_slice(&child.parsed.digest);
        issuer_half.copy_from_slice(&issuer.digest);
        let cacheable = index > 0;
        if cacheable && self.cache().links.contains(&key) {
            return Ok(());
        }
        verify_signature(index, child, issuer)?;
        if cacheable {
            verified.push(key);
        }
        Ok(())
    }

    /// The anchor the last certificate is, or is signed by.
    fn anchor_of(
        &self,
        index: usize,
        last: &Link<'_>,
        verified: &mut Vec<[u8; 64]>,
    ) -> Result<Anchor, ChainError> {
        if let Some((anchor, _)) = self
            .anchors
            .anchors
            .iter()
            .find(|(_, key)| key.spki_der == last.parsed.key.spki_der)
        {
            return Ok(anchor.clone());
        }
        // The root itself is omitted (as in GrapheneOS Auditor's samples): the last certificate
        // must be signed by a pinned key. That link is cached like the others above the leaf.
        self.anchors
            .anchors
            .iter()
            .find(|(_, key)| self.verify_link(index, last, key, verified).is_ok())
            .map(|(anchor, _)| anchor.clone())
            .ok_or(ChainError::UnknownRoot)
    }

    /// Remembers the links and certificates of a chain that reached a pinned root. A full cache
    /// starts over: the shared links are verified again once, on the next chain.
    fn remember(&self, above: &[Link<'_>], verified_links: Vec<[u8; 64]>) {
        let mut cache = self.cache();
        if cache.links.len().saturating_add(verified_links.len()) > LINK_CACHE_CAPACITY {
            cache.links.clear();
        }
        cache.links.extend(verified_links);
        let fresh = above.iter().filter(|link| link.fresh);
        for link in fresh {
            if cache.certificates.len() >= CERTIFICATE_CACHE_CAPACITY {
                cache.certificates.clear();
            }
            cache
                .certificates
                .insert(link.parsed.digest, Arc::clone(&link.parsed));
        }
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        // The cache holds only links that verified and certificates parsed from the bytes they
        // are keyed by; a panic elsewhere cannot leave a wrong entry in it, so a poisoned lock is
        // still sound to use.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn verify_signature(index: usize, child: &Link<'_>, issuer: &PublicKey) -> Result<(), ChainError> {
    let (Some(key_algorithm), Some(signature_algorithm)) =
        (issuer.algorithm, child.parsed.signature_algorithm)
    else {
        return Err(ChainError::UnsupportedAlgorithm { index });
    };
    // INVARIANT: `tbs` was found inside these very bytes (the digest keys the parse); a range
    // outside them is a malformed certificate, never a panic.
    let tbs = child
        .der
        .get(child.parsed.tbs.clone())
        .ok_or_else(|| ChainError::Malformed {
            index,
            detail: "no TBSCertificate".to_owned(),
        })?;
    verify_x509_signature(
        key_algorithm,
        &issuer.bits,
        signature_algorithm,
        tbs,
        &child.parsed.signature,
    )
    .map(|_| ())
    .map_err(|error| match error {
        enigm_crypto::X509SignatureError::Unsupported => ChainError::UnsupportedAlgorithm { index },
        enigm_crypto::X509SignatureError::Invalid => ChainError::BadSignature { index },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_google_roots_are_well_formed_keys() {
        let anchors = TrustAnchors::google();
        assert_eq!(anchors.len(), 2);
        let algorithms: Vec<_> = anchors
            .anchors
            .iter()
            .map(|(_, key)| key.algorithm)
            .collect();
        assert_eq!(
            algorithms,
            vec![
                Some(PublicKeyAlgorithm::Rsa),
                Some(PublicKeyAlgorithm::EcP384)
            ]
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let verifier = ChainVerifier::new(TrustAnchors::google());
        let unchecked = RevocationStatus::unchecked_for_offline_use();
        let at = Timestamp::from_unix_millis(0);
        for chain in [
            vec![vec![]],
            vec![vec![0x30]],
            vec![vec![0x30, 0x03, 0x02, 0x01, 0x01]],
        ] {
            let error = verifier.verify(&chain, at, &unchecked).unwrap_err();
            assert_eq!(
                error.reason(),
                RejectionReason::InvalidTrustChain,
                "{error}"
            );
        }
        let empty: Vec<Vec<u8>> = Vec::new();
        assert_eq!(
            verifier.verify(&empty, at, &unchecked).unwrap_err(),
            ChainError::Size
        );
        assert!(parse_pem_chain("no certificates here").is_err());
    }
}
