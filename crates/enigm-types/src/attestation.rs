//! The outcome of a remote attestation as Command keeps it (enigm-docs §20 items 23–27): the
//! verdict (accepted, or the one reason it was rejected) and the kind of evidence. The evidence
//! itself is never kept; verifying it is `enigm-attest`'s, which converts its outcome into these.

use crate::vocabulary::vocabulary;

vocabulary! {
    /// What a device's attestation came to: accepted, or exactly one rejection reason with the
    /// documents' names.
    pub enum AttestationVerdict ("attestation verdict") {
        Accepted => "accepted",
        InvalidTrustChain => "invalid_trust_chain",
        UnsupportedDevice => "unsupported_device",
        IneligibleBuild => "ineligible_build",
        StaleAttestation => "stale_attestation",
        ReplayAttempt => "replay_attempt",
        EligibilityFailure => "eligibility_failure",
    }
}

vocabulary! {
    /// The kind of evidence an attestation was made with.
    pub enum AttestationFormat ("attestation format") {
        /// An Android Key Attestation certificate chain.
        AndroidKey => "android_key",
        /// A TPM 2.0 quote with its attestation key.
        Tpm2Quote => "tpm2_quote",
    }
}

impl AttestationVerdict {
    pub fn is_accepted(self) -> bool {
        self == AttestationVerdict::Accepted
    }
}
