//! The outcome of one attestation: accepted, or rejected for exactly one reason.

use std::fmt;

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

    /// Stable snake_case name, used on the wire, in storage and in audit reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionReason::InvalidTrustChain => "invalid_trust_chain",
            RejectionReason::UnsupportedDevice => "unsupported_device",
            RejectionReason::IneligibleBuild => "ineligible_build",
            RejectionReason::StaleAttestation => "stale_attestation",
            RejectionReason::ReplayAttempt => "replay_attempt",
            RejectionReason::EligibilityFailure => "eligibility_failure",
        }
    }

    pub fn parse(text: &str) -> Option<RejectionReason> {
        RejectionReason::ALL.into_iter().find(|reason| reason.as_str() == text)
    }
}

impl fmt::Display for RejectionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
