//! Remote attestation in Command: single-use nonces, the verifiers (pinned roots, the revocation
//! status list) and the appraisal of one piece of evidence against a device's policy and pairing.
//!
//! The evidence arrives in a signed device request; it is bound to the nonce, the device key and
//! the purpose through the challenge (`enigm_attest::challenge`). Only the outcome and the minimal
//! claims leave this module: certificates, quotes and PCR values are dropped when it returns.

pub mod nonces;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use enigm_api::attestation::{
    AttestationEvidence, AttestationPurpose, MAX_CERTIFICATE_BYTES, MAX_CHAIN_CERTIFICATES,
    MAX_PCRS,
};
use enigm_attest::android::chain::{ChainVerifier, TrustAnchors};
use enigm_attest::android::revocation::{RevocationList, RevocationStatus};
use enigm_attest::challenge::{NONCE_LEN, expected_challenge};
use enigm_attest::outcome::{AttestationOutcome, Claims, EvidenceFormat, RejectionReason, Verdict};
use enigm_attest::policy::{
    AndroidEvidence, Appraisal, AttestationPolicy, Pairing, appraise_android,
};
use enigm_attest::tpm::{
    AttestationKey, PcrReference, PcrReferenceError, parse_pcr_index, pcr_values_from_hex,
};
use enigm_crypto::DeviceHandleKey;
use enigm_store::{Store, StoreResult, WriteTx};
use enigm_types::{DeviceHandle, Timestamp};

use self::nonces::{NonceBook, NonceUse};

/// How Command verifies evidence: which roots it trusts and which revocation list it applies.
pub struct AttestationConfig {
    pub anchors: TrustAnchors,
    /// Google's attestation status list, with the time it was fetched; `None` when the deployment
    /// has none, in which case chains are rejected unless `revocation_unchecked` says otherwise.
    pub revocation_list: Option<RevocationList>,
    /// How old the list may be before every chain is rejected (fail closed).
    pub revocation_max_age: Duration,
    /// Skip the revocation check: only for development roots and demos
    /// (`--insecure-dev-attestation-root` sets it).
    pub revocation_unchecked: bool,
    pub nonce_ttl: Duration,
    pub nonce_capacity: usize,
}

impl Default for AttestationConfig {
    fn default() -> Self {
        AttestationConfig {
            anchors: TrustAnchors::google(),
            revocation_list: None,
            revocation_max_age: Duration::from_secs(24 * 60 * 60),
            revocation_unchecked: false,
            nonce_ttl: nonces::DEFAULT_NONCE_TTL,
            nonce_capacity: nonces::DEFAULT_NONCE_CAPACITY,
        }
    }
}

/// The attestation state Command holds: the nonce book (in the database) and the chain verifier
/// (with its cache of verified intermediate links: a pure function of the certificates and the
/// pinned roots, so each process may keep its own).
pub struct AttestationService {
    pub nonces: NonceBook,
    verifier: ChainVerifier,
    revocation_list: Option<RevocationList>,
    revocation_max_age: Duration,
    revocation_unchecked: bool,
}

/// The outcome of one attestation, and the pairing to store when it was accepted.
pub struct Attested {
    pub outcome: AttestationOutcome,
    pub pairing: Option<Pairing>,
}

/// Everything appraisal needs besides the evidence.
pub struct AttestationContext<'a> {
    pub handle: DeviceHandle,
    /// The public key the device signs its requests with (bound into the challenge).
    pub device_key: &'a [u8],
    pub purpose: AttestationPurpose,
    pub policy: &'a AttestationPolicy,
    pub pairing: Option<&'a Pairing>,
    pub handle_key: &'a DeviceHandleKey,
    pub now: Timestamp,
}

impl AttestationService {
    pub fn new(config: AttestationConfig, store: Store) -> Self {
        AttestationService {
            nonces: NonceBook::new(store, config.nonce_capacity, config.nonce_ttl),
            verifier: ChainVerifier::new(config.anchors),
            revocation_list: config.revocation_list,
            revocation_max_age: config.revocation_max_age,
            revocation_unchecked: config.revocation_unchecked,
        }
    }

    /// Takes the evidence's nonce in `tx` and appraises the evidence. Fails only when the
    /// database does: anything wrong with the evidence is a rejection with its reason.
    pub async fn appraise(
        &self,
        tx: &mut WriteTx<'_>,
        evidence: &AttestationEvidence,
        context: &AttestationContext<'_>,
    ) -> StoreResult<Attested> {
        let format = match evidence {
            AttestationEvidence::AndroidKey { .. } => EvidenceFormat::AndroidKey,
            AttestationEvidence::Tpm2Quote { .. } => EvidenceFormat::Tpm2Quote,
        };
        let reject = |reason: RejectionReason, detail: &str, claims: Option<Claims>| Attested {
            outcome: AttestationOutcome {
                format,
                verdict: Verdict::Rejected(reason),
                claims,
                detail: detail.to_owned(),
            },
            pairing: None,
        };
        let Some(nonce) = decode_nonce(evidence.nonce()) else {
            return Ok(reject(
                RejectionReason::ReplayAttempt,
                "the evidence names no nonce Command issued",
                None,
            ));
        };
        match self
            .nonces
            .take(tx, &nonce, context.handle, context.purpose, context.now)
            .await?
        {
            NonceUse::Fresh => {}
            NonceUse::Expired => {
                return Ok(reject(
                    RejectionReason::StaleAttestation,
                    "the challenge expired before the evidence arrived",
                    None,
                ));
            }
            NonceUse::Unknown => {
                return Ok(reject(
                    RejectionReason::ReplayAttempt,
                    "the nonce is unknown, already used, or was issued to another device or purpose",
                    None,
                ));
            }
        }
        let challenge = expected_challenge(&nonce, context.device_key, context.purpose.as_str());
        let appraisal = match evidence {
            AttestationEvidence::AndroidKey { chain, .. } => {
                self.appraise_android(chain, &challenge, context)
            }
            AttestationEvidence::Tpm2Quote {
                attestation_key,
                quote,
                signature,
                pcrs,
                ..
            } => appraise_tpm(
                &TpmEvidence {
                    attestation_key,
                    quote,
                    signature,
                    pcrs,
                },
                &challenge,
                context,
            ),
        };
        Ok(match appraisal {
            Ok(Appraisal::Accepted { claims, pairing }) => Attested {
                outcome: AttestationOutcome {
                    format,
                    verdict: Verdict::Accepted,
                    claims: Some(claims),
                    detail: "accepted".to_owned(),
                },
                pairing: Some(pairing),
            },
            Ok(Appraisal::Rejected {
                claims,
                reason,
                detail,
            }) => reject(reason, &detail, Some(claims)),
            Err((reason, detail)) => reject(reason, &detail, None),
        })
    }

    fn appraise_android(
        &self,
        chain: &[String],
        challenge: &[u8],
        context: &AttestationContext<'_>,
    ) -> Result<Appraisal, (RejectionReason, String)> {
        let invalid = |detail: &str| (RejectionReason::InvalidTrustChain, detail.to_owned());
        if chain.is_empty() || chain.len() > MAX_CHAIN_CERTIFICATES {
            return Err(invalid("the chain must hold 1 to 10 certificates"));
        }
        let mut certificates = Vec::with_capacity(chain.len());
        for certificate in chain {
            let der = base64::engine::general_purpose::STANDARD
                .decode(certificate)
                .map_err(|_| invalid("a certificate is not base64"))?;
            if der.len() > MAX_CERTIFICATE_BYTES {
                return Err(invalid("a certificate is larger than 16 KiB"));
            }
            certificates.push(der);
        }
        let revocation = self.revocation_status();
        let verified = self
            .verifier
            .verify(&certificates, context.now, &revocation)
            .map_err(|error| (error.reason(), error.to_string()))?;
        let pin = context
            .handle_key
            .attestation_key_pin(verified.pinned_key_spki());
        let root = verified.anchor().to_string();
        let evidence = AndroidEvidence {
            key_description: verified.key_description(),
            attest_key_description: verified.attest_key_description(),
            root: &root,
            attestation_key_digest: &pin,
        };
        Ok(appraise_android(
            &evidence,
            Some(challenge),
            context.policy,
            context.pairing,
        ))
    }

    fn revocation_status(&self) -> RevocationStatus<'_> {
        match &self.revocation_list {
            Some(list) => RevocationStatus::checked(list, self.revocation_max_age),
            None if self.revocation_unchecked => RevocationStatus::unchecked_for_offline_use(),
            None => RevocationStatus::unavailable(),
        }
    }
}

struct TpmEvidence<'a> {
    attestation_key: &'a str,
    quote: &'a str,
    signature: &'a str,
    pcrs: &'a BTreeMap<String, String>,
}

fn appraise_tpm(
    evidence: &TpmEvidence<'_>,
    challenge: &[u8],
    context: &AttestationContext<'_>,
) -> Result<Appraisal, (RejectionReason, String)> {
    let invalid = |detail: &str| (RejectionReason::InvalidTrustChain, detail.to_owned());
    let base64 = |text: &str, what: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()
            .filter(|bytes| bytes.len() <= 4096)
            .ok_or_else(|| invalid(&format!("the {what} is not base64 of at most 4 KiB")))
    };
    if context.policy.tpm_pcrs.is_empty() {
        return Err((
            RejectionReason::UnsupportedDevice,
            "this device's attestation policy names no TPM reference values".to_owned(),
        ));
    }
    if evidence.pcrs.len() > MAX_PCRS {
        return Err(invalid("the quote claims too many PCRs"));
    }
    let public = base64(evidence.attestation_key, "attestation key")?;
    let quote = base64(evidence.quote, "quote")?;
    let signature = base64(evidence.signature, "signature")?;
    let pcrs = evidence
        .pcrs
        .iter()
        .map(|(index, value)| Ok((parse_pcr_index(index)?, value.clone())))
        .collect::<Result<BTreeMap<u8, String>, PcrReferenceError>>()
        .and_then(|pcrs| pcr_values_from_hex(&pcrs))
        .map_err(|_| invalid("a PCR index or value is malformed"))?;
    let reference = PcrReference::from_hex_map(&context.policy.tpm_pcrs)
        .map_err(|_| invalid("the policy's PCR reference is malformed"))?;
    let key = AttestationKey::from_tpm2b_public(&public)
        .map_err(|error| (error.reason(), error.to_string()))?;
    let verified =
        enigm_attest::tpm::verify_quote(&key, &quote, &signature, challenge, &pcrs, &reference);
    match verified {
        Ok(_) => {}
        // Signed, fresh, and its PCR values are the quoted ones, only not the reference: genuine
        // evidence that the device did not boot as expected, kept as a claim (provenance).
        Err(error @ enigm_attest::tpm::QuoteError::PcrValueMismatch { .. }) => {
            return Ok(Appraisal::Rejected {
                claims: Claims {
                    security_level: Some("TPM".to_owned()),
                    pcrs_match: Some(false),
                    ..Claims::default()
                },
                reason: error.reason(),
                detail: error.to_string(),
            });
        }
        Err(error) => return Err((error.reason(), error.to_string())),
    }
    let pin = context.handle_key.attestation_key_pin(&public);
    let claims = Claims {
        security_level: Some("TPM".to_owned()),
        pcrs_match: Some(true),
        ..Claims::default()
    };
    if let Some(pinned) = context.pairing
        && !enigm_crypto::constant_time_eq(pinned.attestation_key.as_bytes(), pin.as_bytes())
    {
        return Ok(Appraisal::Rejected {
            claims,
            reason: RejectionReason::EligibilityFailure,
            detail: "the quote is signed by another attestation key than the one registered at enrollment"
                .to_owned(),
        });
    }
    Ok(Appraisal::Accepted {
        claims,
        pairing: Pairing {
            attestation_key: pin,
            boot_key: String::new(),
            os_version: None,
            os_patch_level: None,
            vendor_patch_level: None,
            boot_patch_level: None,
        },
    })
}

fn decode_nonce(text: &str) -> Option<[u8; NONCE_LEN]> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    bytes.try_into().ok()
}
