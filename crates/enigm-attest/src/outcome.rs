//! The outcome of one attestation: accepted, or rejected for exactly one reason.

use std::fmt;

use enigm_types::{AttestationFormat, AttestationVerdict};

/// Why evidence was rejected. Exactly one per rejection; the names are the Enigm documents'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectionReason {
    /// The evidence does not chain to a pinned root: unparseable, a signature that does not
    /// verify, an unknown root, a revoked certificate, a revocation list too old to trust, a
    /// KeyDescription where none may be (chain extension), a quote signed by another key.
    InvalidTrustChain,
    /// The evidence is genuine but from something this policy cannot trust: software-only keys,
    /// a missing KeyDescription, an unsupported algorithm or attestation version.
    UnsupportedDevice,
    /// The device runs a build the policy does not accept: unlocked, boot state, boot key not
    /// allow-listed, patch level below the minimum, a downgrade after pairing, PCRs that differ
    /// from the reference.
    IneligibleBuild,
    /// The evidence is outside its time: a certificate not valid at the verification time, or a
    /// server nonce past its lifetime.
    StaleAttestation,
    /// The evidence answers another challenge: a nonce unknown, already used or issued to another
    /// device, or a challenge that does not match.
    ReplayAttempt,
    /// The device may not be attested under this handle: the attestation key or boot key differs
    /// from the one pinned at pairing, the application identity differs, or the device is not
    /// active.
    EligibilityFailure,
}

impl RejectionReason {
    pub const ALL: [RejectionReason; 6] = [
        RejectionReason::InvalidTrustChain,
        RejectionReason::UnsupportedDevice,
        RejectionReason::IneligibleBuild,
        RejectionReason::StaleAttestation,
        RejectionReason::ReplayAttempt,
        RejectionReason::EligibilityFailure,
    ];

    /// Stable snake_case name, used on the wire, in storage and in audit reasons: the
    /// vocabulary's spelling of the verdict this reason gives.
    pub fn as_str(self) -> &'static str {
        AttestationVerdict::from(Verdict::Rejected(self)).as_str()
    }

    pub fn parse(text: &str) -> Option<RejectionReason> {
        RejectionReason::ALL
            .into_iter()
            .find(|reason| reason.as_str() == text)
    }
}

impl fmt::Display for RejectionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which kind of evidence an outcome is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceFormat {
    /// An Android Key Attestation certificate chain.
    AndroidKey,
    /// A TPM 2.0 quote.
    Tpm2Quote,
}

/// The minimal claims Command keeps of an attestation: enough to explain the outcome and to
/// refuse a downgrade later, nothing that names the unit (no serial, IMEI, key or certificate).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// `SOFTWARE`, `TRUSTED_ENVIRONMENT` or `STRONG_BOX` (Android), `TPM` for a quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_version: Option<i64>,
    /// `VERIFIED`, `SELF_SIGNED`, `UNVERIFIED` or `FAILED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_boot_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_locked: Option<bool>,
    /// Hex digest of the key that signed the OS: names a build's signer, not a unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_boot_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_patch_level: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_patch_level: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_patch_level: Option<i64>,
    /// Which pinned root the chain ended at (`google-rsa`, `google-ec-p384`, `operator:<label>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// For a TPM quote whose signature and nonce verified: whether its PCR values equal the
    /// policy's reference values (measured boot as expected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcrs_match: Option<bool>,
}

/// Accepted, or rejected for exactly one reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Rejected(RejectionReason),
}

impl Verdict {
    /// `accepted`, or the rejection reason's name.
    pub fn as_str(self) -> &'static str {
        AttestationVerdict::from(self).as_str()
    }

    pub fn is_accepted(self) -> bool {
        matches!(self, Verdict::Accepted)
    }
}

/// The outcome of verifying one piece of evidence: the verdict, the claims decoded before the
/// decision (none when the evidence could not be read) and a one-line explanation for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationOutcome {
    pub format: EvidenceFormat,
    pub verdict: Verdict,
    pub claims: Option<Claims>,
    pub detail: String,
}

/// The verdict as Command keeps it.
impl From<Verdict> for AttestationVerdict {
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Accepted => AttestationVerdict::Accepted,
            Verdict::Rejected(RejectionReason::InvalidTrustChain) => {
                AttestationVerdict::InvalidTrustChain
            }
            Verdict::Rejected(RejectionReason::UnsupportedDevice) => {
                AttestationVerdict::UnsupportedDevice
            }
            Verdict::Rejected(RejectionReason::IneligibleBuild) => {
                AttestationVerdict::IneligibleBuild
            }
            Verdict::Rejected(RejectionReason::StaleAttestation) => {
                AttestationVerdict::StaleAttestation
            }
            Verdict::Rejected(RejectionReason::ReplayAttempt) => AttestationVerdict::ReplayAttempt,
            Verdict::Rejected(RejectionReason::EligibilityFailure) => {
                AttestationVerdict::EligibilityFailure
            }
        }
    }
}

/// The kind of evidence as Command keeps it.
impl From<EvidenceFormat> for AttestationFormat {
    fn from(format: EvidenceFormat) -> Self {
        match format {
            EvidenceFormat::AndroidKey => AttestationFormat::AndroidKey,
            EvidenceFormat::Tpm2Quote => AttestationFormat::Tpm2Quote,
        }
    }
}
