//! Remote attestation on the wire: the challenge a device asks for, the evidence it sends (an
//! Android Key Attestation chain or a TPM 2.0 quote), and the result Command keeps.
//!
//! Evidence is bounded here, before any parsing: at most [`MAX_CHAIN_CERTIFICATES`] certificates
//! of at most [`MAX_CERTIFICATE_BYTES`] each, so a body cannot make verification expensive.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use enigm_attest::outcome::Claims;
pub use enigm_attest::policy::AttestationPolicy;

/// The most certificates an Android chain may have (real ones have 3 to 6).
pub const MAX_CHAIN_CERTIFICATES: usize = 10;
/// The largest certificate accepted, in bytes of DER.
pub const MAX_CERTIFICATE_BYTES: usize = 16 * 1024;
/// The most PCRs a quote may claim.
pub const MAX_PCRS: usize = 24;

/// What a challenge is for: it can answer only that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttestationPurpose {
    /// Evidence sent with the enrollment.
    Enrollment,
    /// Evidence of an enrolled device (re-attestation before OTA or a sensitive channel).
    Attestation,
}

impl AttestationPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            AttestationPurpose::Enrollment => "enrollment",
            AttestationPurpose::Attestation => "attestation",
        }
    }
}

/// The body of `POST /api/v1/device/attestation/challenge` (signed with the device key).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    pub purpose: AttestationPurpose,
}

/// A single-use server nonce. The device puts
/// `SHA-256("enigm-attestation-v1" || 0x00 || nonce || device public key || purpose)` in its
/// evidence (the attestation challenge of an Android key, the qualifying data of a TPM quote), so
/// the evidence is bound to this nonce, to the key that signs the device's requests and to the
/// request it answers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChallengeResponse {
    /// Base64 (standard, padded) of 32 random bytes.
    pub nonce: String,
    /// RFC 3339; the nonce is refused after this (60 s by default).
    pub expires_at: String,
}

/// Evidence, in one of the two formats.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "format", rename_all = "snake_case", deny_unknown_fields)]
pub enum AttestationEvidence {
    /// An Android Key Attestation chain, leaf first.
    AndroidKey {
        /// The nonce of the challenge this answers (base64).
        nonce: String,
        /// DER certificates, base64 (standard, padded).
        chain: Vec<String>,
    },
    /// A TPM 2.0 quote by the attestation key registered at enrollment.
    Tpm2Quote {
        nonce: String,
        /// The attestation key's TPM2B_PUBLIC, base64.
        attestation_key: String,
        /// The TPMS_ATTEST structure the TPM signed, base64.
        quote: String,
        /// The TPMT_SIGNATURE, base64.
        signature: String,
        /// SHA-256 bank PCR values the quote covers: index (`"0"` to `"23"`) → lower-case hex.
        /// The keys are strings: an internally tagged enum cannot read integer map keys.
        pcrs: BTreeMap<String, String>,
    },
}

impl std::fmt::Debug for AttestationEvidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttestationEvidence::AndroidKey { chain, .. } => f
                .debug_struct("AndroidKey")
                .field("certificates", &chain.len())
                .finish_non_exhaustive(),
            AttestationEvidence::Tpm2Quote { pcrs, .. } => f
                .debug_struct("Tpm2Quote")
                .field("pcrs", &pcrs.len())
                .finish_non_exhaustive(),
        }
    }
}

impl AttestationEvidence {
    /// The nonce the evidence answers.
    pub fn nonce(&self) -> &str {
        match self {
            AttestationEvidence::AndroidKey { nonce, .. }
            | AttestationEvidence::Tpm2Quote { nonce, .. } => nonce,
        }
    }
}

/// The body of `POST /api/v1/device/attestation` (signed with the device key).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttestRequest {
    pub evidence: AttestationEvidence,
}

/// The outcome of one attestation as Command keeps it: the verdict, when, and the minimal claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttestationView {
    /// `accepted`, or the rejection reason: `invalid_trust_chain`, `unsupported_device`,
    /// `ineligible_build`, `stale_attestation`, `replay_attempt`, `eligibility_failure`.
    pub verdict: String,
    /// `android_key` or `tpm2_quote`.
    pub format: String,
    /// RFC 3339.
    pub attested_at: String,
    /// RFC 3339 of the last accepted attestation, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_accepted_at: Option<String>,
    #[schema(value_type = Object)]
    pub claims: Claims,
}
