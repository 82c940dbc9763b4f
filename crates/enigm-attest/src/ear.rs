//! An attestation outcome rendered as an EAR (EAT Attestation Result, draft-fv-rats-ear) whose
//! trustworthiness vector uses the AR4SI vocabulary (draft-ietf-rats-ar4si).
//!
//! The EAR is rendered here and signed by Command later, so nothing in this module names a key,
//! a signature format or a clock: the issue time is a parameter.
//!
//! # Why not the `ear` crate
//!
//! Veraison's Rust implementation (`ear` 0.6 on crates.io) was tried first. Its signing features
//! (`jwt`, `cose`) pull in `jsonwebtoken` with aws-lc and `openssl`, and can be turned off; but
//! even with `default-features = false` it depends on `cmw` 0.1, whose build script
//! unconditionally build-depends on `reqwest` with its default TLS, which compiles `openssl-sys`
//! against the system OpenSSL and brings in tokio. That breaks this crate's rules (no system
//! libraries, no async runtime) for one JSON object, so the claims set is written here with plain
//! `serde_json` values.
//!
//! # Wire format
//!
//! The claim names are those of Veraison's EAR profile, `tag:github.com,2023:veraison/ear`:
//!
//! ```json
//! {
//!   "eat_profile": "tag:github.com,2023:veraison/ear",
//!   "iat": 1767225600,
//!   "ear.verifier-id": { "developer": "…", "build": "…" },
//!   "submods": {
//!     "enigm-device": {
//!       "ear.status": "affirming",
//!       "ear.trustworthiness-vector": { "instance-identity": 2, "hardware": 2, … },
//!       "ear.appraisal-policy-id": "…",
//!       "ear.enigm.verdict": "accepted",
//!       "ear.enigm.evidence-format": "android_key",
//!       "ear.enigm.attester-claims": { "verified_boot_state": "VERIFIED", … }
//!     }
//!   }
//! }
//! ```
//!
//! The three `ear.enigm.*` claims are our extension, in the way Veraison adds
//! `ear.veraison.annotated-evidence`: the verdict (`accepted` or the rejection reason's stable
//! name), the kind of evidence, and the minimal [`Claims`] Command keeps. The outcome's `detail`
//! is prose for people and is left out. No number appears but the AR4SI codes, which are
//! categories, not scores.
//!
//! # The trustworthiness vector
//!
//! AR4SI §2.3.2 splits each claim's signed 8-bit code into tiers: none (0, 1, -1), affirming
//! (2 to 31, -2 to -32), warning (32 to 95, -33 to -96) and contraindicated (96 to 127, -97 to
//! -128); negative codes are non-standard. §2.3.3 has a verifier pick, per claim, a standard
//! contraindicated code if one applies, then a non-standard one, then warning, then affirming.
//! The values below are those of §2.3.4. A claim the outcome says nothing about is left out,
//! which §2.3.4 makes equal to 0 ("no claim").
//!
//! | outcome | instance-identity | hardware | executables | configuration |
//! |---|---|---|---|---|
//! | accepted, Android | 2 | 2 if TEE or StrongBox | 3 if `VERIFIED` or `SELF_SIGNED` | 2 if locked, 32 if unlocked |
//! | accepted, TPM quote | 2 | – | 3 | – |
//! | `invalid_trust_chain` | 99 | 99 | – | – |
//! | `unsupported_device` | – | 96 | – | – |
//! | `ineligible_build` | – | – | 96 | 96 if unlocked |
//! | `stale_attestation` | -97 (ours) | – | – | – |
//! | `replay_attempt` | -98 (ours) | – | – | – |
//! | `eligibility_failure` | 96 | – | – | – |
//!
//! `file-system`, `runtime-opaque`, `storage-opaque` and `sourced-data` are never asserted: no
//! evidence Enigm appraises speaks to them. Each row is explained where its codes are chosen, in
//! `accepted_vector` and `rejected_vector`. `ear.status` is the worst tier in the vector
//! (`none` when the vector is empty), so every rejection is `contraindicated`.

use serde_json::{Map, Value};

use crate::outcome::{AttestationOutcome, Claims, EvidenceFormat, RejectionReason, Verdict};

/// Veraison's EAR profile, whose claim names this module writes.
pub const EAR_PROFILE: &str = "tag:github.com,2023:veraison/ear";

/// The one submodule an Enigm EAR appraises: the device that sent the evidence.
pub const SUBMODULE: &str = "enigm-device";

/// Renders `outcome` as an EAR issued at `issued_at` by `verifier` under the appraisal policy
/// `policy_id`.
pub fn to_ear(
    outcome: &AttestationOutcome,
    issued_at: enigm_types::Timestamp,
    verifier: &VerifierId,
    policy_id: &str,
) -> Ear {
    Ear {
        issued_at: issued_at.unix_seconds(),
        verifier: verifier.clone(),
        appraisal: Appraisal {
            trust_vector: trust_vector(outcome),
            policy_id: policy_id.to_owned(),
            verdict: outcome.verdict,
            format: outcome.format,
            claims: outcome.claims.clone(),
        },
    }
}

/// [`to_ear`], as the EAR's JSON claims set.
pub fn to_json(
    outcome: &AttestationOutcome,
    issued_at: enigm_types::Timestamp,
    verifier: &VerifierId,
    policy_id: &str,
) -> Value {
    to_ear(outcome, issued_at, verifier, policy_id).to_json()
}

/// Who produced the EAR (`ear.verifier-id`): the organisation responsible for the verifier and
/// the build that appraised the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierId {
    pub developer: String,
    pub build: String,
}

/// An EAR about one device, unsigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ear {
    /// Seconds since the Unix epoch, as EAT's `iat`.
    issued_at: i64,
    verifier: VerifierId,
    appraisal: Appraisal,
}

impl Ear {
    /// The issue time in seconds since the Unix epoch (`iat`).
    pub fn issued_at(&self) -> i64 {
        self.issued_at
    }

    pub fn verifier(&self) -> &VerifierId {
        &self.verifier
    }

    /// The appraisal of the [`SUBMODULE`].
    pub fn appraisal(&self) -> &Appraisal {
        &self.appraisal
    }

    /// The EAR's JSON claims set, ready to be signed.
    pub fn to_json(&self) -> Value {
        let verifier = Map::from_iter([
            (
                "developer".to_owned(),
                Value::from(self.verifier.developer.as_str()),
            ),
            (
                "build".to_owned(),
                Value::from(self.verifier.build.as_str()),
            ),
        ]);
        let submods = Map::from_iter([(SUBMODULE.to_owned(), self.appraisal.to_json())]);
        Value::Object(Map::from_iter([
            ("eat_profile".to_owned(), Value::from(EAR_PROFILE)),
            ("iat".to_owned(), Value::from(self.issued_at)),
            ("ear.verifier-id".to_owned(), Value::Object(verifier)),
            ("submods".to_owned(), Value::Object(submods)),
        ]))
    }
}

impl serde::Serialize for Ear {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// The appraisal of the device: its trustworthiness vector and the outcome it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appraisal {
    trust_vector: TrustVector,
    policy_id: String,
    verdict: Verdict,
    format: EvidenceFormat,
    claims: Option<Claims>,
}

impl Appraisal {
    /// `ear.status`: the worst tier in the trustworthiness vector.
    pub fn status(&self) -> TrustTier {
        self.trust_vector.tier()
    }

    pub fn trust_vector(&self) -> &TrustVector {
        &self.trust_vector
    }

    pub fn policy_id(&self) -> &str {
        &self.policy_id
    }

    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    fn to_json(&self) -> Value {
        let mut appraisal = Map::new();
        appraisal.insert("ear.status".to_owned(), Value::from(self.status().as_str()));
        if !self.trust_vector.is_empty() {
            appraisal.insert(
                "ear.trustworthiness-vector".to_owned(),
                self.trust_vector.to_json(),
            );
        }
        appraisal.insert(
            "ear.appraisal-policy-id".to_owned(),
            Value::from(self.policy_id.as_str()),
        );
        appraisal.insert(
            "ear.enigm.verdict".to_owned(),
            Value::from(self.verdict.as_str()),
        );
        appraisal.insert(
            "ear.enigm.evidence-format".to_owned(),
            Value::from(format_name(self.format)),
        );
        // INVARIANT: `Claims` holds only strings, integers and booleans under string keys, so
        // serializing it cannot fail. Were that ever to change, the EAR would go out without the
        // supplementary claims rather than not at all: status and vector do not depend on them.
        if let Some(claims) = self
            .claims
            .as_ref()
            .and_then(|claims| serde_json::to_value(claims).ok())
            .filter(|claims| claims.as_object().is_some_and(|map| !map.is_empty()))
        {
            appraisal.insert("ear.enigm.attester-claims".to_owned(), claims);
        }
        Value::Object(appraisal)
    }
}

/// An AR4SI trustworthiness tier (§2.3.2), ordered from no claim to the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TrustTier {
    None,
    Affirming,
    Warning,
    Contraindicated,
}

impl TrustTier {
    /// The name EAR uses for `ear.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            TrustTier::None => "none",
            TrustTier::Affirming => "affirming",
            TrustTier::Warning => "warning",
            TrustTier::Contraindicated => "contraindicated",
        }
    }
}

/// One AR4SI trustworthiness claim value: a category, never a score. Only the codes Enigm
/// asserts can be built, through the constants below; the AR4SI section is cited on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrustClaim(i8);

impl TrustClaim {
    /// instance-identity 2: the Attesting Environment is recognized and not known to be
    /// compromised (§2.3.4).
    pub const RECOGNIZED_INSTANCE: TrustClaim = TrustClaim(2);
    /// instance-identity 96: recognized, but its key indicates a device that is not trustworthy
    /// (§2.3.4).
    pub const UNTRUSTWORTHY_INSTANCE: TrustClaim = TrustClaim(96);
    /// configuration 2: a known and approved configuration (§2.3.4).
    pub const APPROVED_CONFIG: TrustClaim = TrustClaim(2);
    /// configuration 32: the configuration exposes known vulnerabilities (§2.3.4).
    pub const UNSAFE_CONFIG: TrustClaim = TrustClaim(32);
    /// configuration 96: unsupportable, it exposes unacceptable vulnerabilities (§2.3.4).
    pub const UNSUPPORTABLE_CONFIG: TrustClaim = TrustClaim(96);
    /// executables 3: only approved executables were loaded during boot (§2.3.4). Code 2 would
    /// also vouch for everything loaded after boot, which no evidence we appraise covers.
    pub const APPROVED_BOOT: TrustClaim = TrustClaim(3);
    /// executables 96: runtime includes contraindicated executables (§2.3.4).
    pub const CONTRAINDICATED_RUNTIME: TrustClaim = TrustClaim(96);
    /// hardware 2: the hardware and firmware are genuine and supported (§2.3.4).
    pub const GENUINE_HARDWARE: TrustClaim = TrustClaim(2);
    /// hardware 96: recognized, but its trustworthiness is contraindicated (§2.3.4).
    pub const CONTRAINDICATED_HARDWARE: TrustClaim = TrustClaim(96);
    /// 99, in every claim: cryptographic validation of the evidence failed (§2.3.4).
    pub const CRYPTO_VALIDATION_FAILED: TrustClaim = TrustClaim(99);
    /// Enigm's non-standard contraindicated code -97 (§2.3.2 reserves -97 to -128): the evidence
    /// is outside its time. AR4SI has no standard freshness value (it treats freshness apart
    /// from the vector, §2.4), so §2.3.3 step 2 calls for a non-standard contraindicated one.
    pub const STALE_EVIDENCE: TrustClaim = TrustClaim(-97);
    /// Enigm's non-standard contraindicated code -98: the evidence answers another challenge
    /// (replayed or misdirected), chosen as [`TrustClaim::STALE_EVIDENCE`] is.
    pub const REPLAYED_EVIDENCE: TrustClaim = TrustClaim(-98);

    /// The AR4SI code as it goes on the wire.
    pub const fn code(self) -> i8 {
        self.0
    }

    /// The code's tier, by the ranges of §2.3.2.
    pub fn tier(self) -> TrustTier {
        match self.0 {
            -1..=1 => TrustTier::None,
            2..=31 | -32..=-2 => TrustTier::Affirming,
            32..=95 | -96..=-33 => TrustTier::Warning,
            96..=127 | -128..=-97 => TrustTier::Contraindicated,
        }
    }
}

/// The AR4SI trustworthiness vector (§2.3.5): one optional value per claim; a missing claim is
/// no claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrustVector {
    pub instance_identity: Option<TrustClaim>,
    pub configuration: Option<TrustClaim>,
    pub executables: Option<TrustClaim>,
    pub file_system: Option<TrustClaim>,
    pub hardware: Option<TrustClaim>,
    pub runtime_opaque: Option<TrustClaim>,
    pub storage_opaque: Option<TrustClaim>,
    pub sourced_data: Option<TrustClaim>,
}

impl TrustVector {
    /// The claims that are set, under their AR4SI names.
    pub fn claims(&self) -> impl Iterator<Item = (&'static str, TrustClaim)> {
        [
            ("instance-identity", self.instance_identity),
            ("configuration", self.configuration),
            ("executables", self.executables),
            ("file-system", self.file_system),
            ("hardware", self.hardware),
            ("runtime-opaque", self.runtime_opaque),
            ("storage-opaque", self.storage_opaque),
            ("sourced-data", self.sourced_data),
        ]
        .into_iter()
        .filter_map(|(name, claim)| claim.map(|claim| (name, claim)))
    }

    pub fn is_empty(&self) -> bool {
        self.claims().next().is_none()
    }

    /// The worst tier of any claim; `None` for an empty vector.
    pub fn tier(&self) -> TrustTier {
        self.claims()
            .map(|(_, claim)| claim.tier())
            .max()
            .unwrap_or(TrustTier::None)
    }

    fn to_json(self) -> Value {
        Value::Object(
            self.claims()
                .map(|(name, claim)| (name.to_owned(), Value::from(claim.code())))
                .collect(),
        )
    }
}

/// The trustworthiness vector for an outcome, by the table in the module documentation.
fn trust_vector(outcome: &AttestationOutcome) -> TrustVector {
    match outcome.verdict {
        Verdict::Accepted => accepted_vector(outcome.format, outcome.claims.as_ref()),
        Verdict::Rejected(reason) => rejected_vector(reason, outcome.claims.as_ref()),
    }
}

/// An accepted outcome vouches for what the policy checked before accepting it.
fn accepted_vector(format: EvidenceFormat, claims: Option<&Claims>) -> TrustVector {
    // The evidence chained to a pinned root (or a key registered at enrollment), was not
    // revoked, and matched the keys pinned at pairing.
    let instance_identity = Some(TrustClaim::RECOGNIZED_INSTANCE);
    match format {
        EvidenceFormat::AndroidKey => {
            let claims = claims.cloned().unwrap_or_default();
            // Only a TEE or StrongBox key speaks for genuine hardware; a software keystore
            // (which a policy may accept) says nothing about it.
            let hardware = matches!(
                claims.security_level.as_deref(),
                Some("TRUSTED_ENVIRONMENT" | "STRONG_BOX")
            )
            .then_some(TrustClaim::GENUINE_HARDWARE);
            // VERIFIED (the vendor's key) and SELF_SIGNED (a key on the policy's allow-list) are
            // both an approved boot chain: AR4SI does not tell whose key approved it, and the
            // boot state travels in the attester claims for a relying party that cares.
            let executables = matches!(
                claims.verified_boot_state.as_deref(),
                Some("VERIFIED" | "SELF_SIGNED")
            )
            .then_some(TrustClaim::APPROVED_BOOT);
            // Locked with patch levels at the policy's minimums is an approved configuration. A
            // policy may accept an unlocked bootloader, but that is a known exposure: a warning.
            let configuration = claims.device_locked.map(|locked| {
                if locked {
                    TrustClaim::APPROVED_CONFIG
                } else {
                    TrustClaim::UNSAFE_CONFIG
                }
            });
            TrustVector {
                instance_identity,
                hardware,
                executables,
                configuration,
                ..TrustVector::default()
            }
        }
        // The PCRs equal the reference values: the measured boot chain is the approved one. The
        // quote proves a key registered at enrollment, not where the TPM came from, so hardware
        // is not asserted.
        EvidenceFormat::Tpm2Quote => TrustVector {
            instance_identity,
            executables: Some(TrustClaim::APPROVED_BOOT),
            ..TrustVector::default()
        },
    }
}

/// A rejection asserts only what its reason establishes. The outcome does not record which
/// checks passed before the failing one, so nothing is affirmed.
fn rejected_vector(reason: RejectionReason, claims: Option<&Claims>) -> TrustVector {
    match reason {
        // A signature that does not verify, an unknown or revoked root, a chain extension: all
        // are failures of certificate path validation (RFC 5280 §6, which includes revocation),
        // so neither the instance nor the hardware the chain would vouch for is established.
        RejectionReason::InvalidTrustChain => TrustVector {
            instance_identity: Some(TrustClaim::CRYPTO_VALIDATION_FAILED),
            hardware: Some(TrustClaim::CRYPTO_VALIDATION_FAILED),
            ..TrustVector::default()
        },
        // Genuine evidence from something the policy cannot trust (a software keystore, no
        // RootOfTrust, an unsupported algorithm): recognized hardware, contraindicated.
        RejectionReason::UnsupportedDevice => TrustVector {
            hardware: Some(TrustClaim::CONTRAINDICATED_HARDWARE),
            ..TrustVector::default()
        },
        // The build (boot state, boot key, patch levels, a downgrade, PCRs) is one the policy
        // refuses. An unlocked bootloader is, under the default policy, refused for itself; a
        // policy that allows it still sees it marked here when another build rule failed.
        RejectionReason::IneligibleBuild => TrustVector {
            executables: Some(TrustClaim::CONTRAINDICATED_RUNTIME),
            configuration: claims
                .and_then(|claims| claims.device_locked)
                .filter(|locked| !locked)
                .map(|_| TrustClaim::UNSUPPORTABLE_CONFIG),
            ..TrustVector::default()
        },
        // Freshness failures: the evidence cannot be tied to this device now.
        RejectionReason::StaleAttestation => TrustVector {
            instance_identity: Some(TrustClaim::STALE_EVIDENCE),
            ..TrustVector::default()
        },
        RejectionReason::ReplayAttempt => TrustVector {
            instance_identity: Some(TrustClaim::REPLAYED_EVIDENCE),
            ..TrustVector::default()
        },
        // The key (or boot key, or application) is not the one pinned to this handle, or the
        // device is not active: a recognized environment that is not to be trusted as this
        // device.
        RejectionReason::EligibilityFailure => TrustVector {
            instance_identity: Some(TrustClaim::UNTRUSTWORTHY_INSTANCE),
            ..TrustVector::default()
        },
    }
}

fn format_name(format: EvidenceFormat) -> &'static str {
    match format {
        EvidenceFormat::AndroidKey => "android_key",
        EvidenceFormat::Tpm2Quote => "tpm2_quote",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use enigm_types::Timestamp;

    fn verifier() -> VerifierId {
        VerifierId {
            developer: "https://enigm.example".to_owned(),
            build: "enigm 0.1.0".to_owned(),
        }
    }

    fn android_claims(boot_state: &str, locked: bool) -> Claims {
        Claims {
            security_level: Some("TRUSTED_ENVIRONMENT".to_owned()),
            attestation_version: Some(300),
            verified_boot_state: Some(boot_state.to_owned()),
            device_locked: Some(locked),
            verified_boot_key: Some("ab".repeat(32)),
            os_version: Some(150_000),
            os_patch_level: Some(202_601),
            vendor_patch_level: Some(20_260_105),
            boot_patch_level: Some(20_260_105),
            root: Some("google-ec-p384".to_owned()),
            pcrs_match: None,
        }
    }

    fn outcome(verdict: Verdict, claims: Option<Claims>) -> AttestationOutcome {
        AttestationOutcome {
            format: EvidenceFormat::AndroidKey,
            verdict,
            claims,
            detail: "prose for people".to_owned(),
        }
    }

    fn rejected(reason: RejectionReason) -> AttestationOutcome {
        outcome(
            Verdict::Rejected(reason),
            Some(android_claims("VERIFIED", true)),
        )
    }

    /// The vector as `(claim, code)` pairs, and the status.
    fn check(outcome: &AttestationOutcome, claims: &[(&str, i8)], status: TrustTier) {
        let ear = to_ear(
            outcome,
            Timestamp::from_unix_millis(1_767_225_600_000),
            &verifier(),
            "policy",
        );
        let vector: Vec<(&str, i8)> = ear
            .appraisal()
            .trust_vector()
            .claims()
            .map(|(name, claim)| (name, claim.code()))
            .collect();
        assert_eq!(vector, claims);
        assert_eq!(ear.appraisal().status(), status);
        let json = ear.to_json();
        assert_eq!(
            json["submods"][SUBMODULE]["ear.status"],
            Value::from(status.as_str())
        );
    }

    #[test]
    fn accepted_verified_boot_affirms_identity_hardware_boot_and_configuration() {
        check(
            &outcome(Verdict::Accepted, Some(android_claims("VERIFIED", true))),
            &[
                ("instance-identity", 2),
                ("configuration", 2),
                ("executables", 3),
                ("hardware", 2),
            ],
            TrustTier::Affirming,
        );
    }

    #[test]
    fn accepted_self_signed_boot_is_an_approved_boot_too() {
        check(
            &outcome(Verdict::Accepted, Some(android_claims("SELF_SIGNED", true))),
            &[
                ("instance-identity", 2),
                ("configuration", 2),
                ("executables", 3),
                ("hardware", 2),
            ],
            TrustTier::Affirming,
        );
    }

    #[test]
    fn accepted_unlocked_bootloader_is_a_warning() {
        check(
            &outcome(Verdict::Accepted, Some(android_claims("VERIFIED", false))),
            &[
                ("instance-identity", 2),
                ("configuration", 32),
                ("executables", 3),
                ("hardware", 2),
            ],
            TrustTier::Warning,
        );
    }

    #[test]
    fn accepted_software_keystore_asserts_no_hardware() {
        let claims = Claims {
            security_level: Some("SOFTWARE".to_owned()),
            ..android_claims("VERIFIED", true)
        };
        check(
            &outcome(Verdict::Accepted, Some(claims)),
            &[
                ("instance-identity", 2),
                ("configuration", 2),
                ("executables", 3),
            ],
            TrustTier::Affirming,
        );
    }

    #[test]
    fn accepted_tpm_quote_affirms_identity_and_measured_boot() {
        let outcome = AttestationOutcome {
            format: EvidenceFormat::Tpm2Quote,
            verdict: Verdict::Accepted,
            claims: Some(Claims {
                security_level: Some("TPM".to_owned()),
                ..Claims::default()
            }),
            detail: String::new(),
        };
        check(
            &outcome,
            &[("instance-identity", 2), ("executables", 3)],
            TrustTier::Affirming,
        );
    }

    #[test]
    fn invalid_trust_chain_is_a_failed_cryptographic_validation() {
        check(
            &rejected(RejectionReason::InvalidTrustChain),
            &[("instance-identity", 99), ("hardware", 99)],
            TrustTier::Contraindicated,
        );
    }

    #[test]
    fn unsupported_device_contraindicates_the_hardware() {
        check(
            &rejected(RejectionReason::UnsupportedDevice),
            &[("hardware", 96)],
            TrustTier::Contraindicated,
        );
    }

    #[test]
    fn ineligible_build_contraindicates_the_executables() {
        check(
            &rejected(RejectionReason::IneligibleBuild),
            &[("executables", 96)],
            TrustTier::Contraindicated,
        );
    }

    #[test]
    fn ineligible_build_on_an_unlocked_device_also_contraindicates_the_configuration() {
        check(
            &outcome(
                Verdict::Rejected(RejectionReason::IneligibleBuild),
                Some(android_claims("UNVERIFIED", false)),
            ),
            &[("configuration", 96), ("executables", 96)],
            TrustTier::Contraindicated,
        );
    }

    #[test]
    fn stale_attestation_is_a_non_standard_contraindicated_identity() {
        check(
            &rejected(RejectionReason::StaleAttestation),
            &[("instance-identity", -97)],
            TrustTier::Contraindicated,
        );
    }

    #[test]
    fn replay_attempt_is_a_non_standard_contraindicated_identity() {
        check(
            &rejected(RejectionReason::ReplayAttempt),
            &[("instance-identity", -98)],
            TrustTier::Contraindicated,
        );
    }

    #[test]
    fn eligibility_failure_is_an_untrustworthy_instance() {
        check(
            &rejected(RejectionReason::EligibilityFailure),
            &[("instance-identity", 96)],
            TrustTier::Contraindicated,
        );
    }

    #[test]
    fn every_rejection_is_contraindicated_even_without_claims() {
        for reason in RejectionReason::ALL {
            let ear = to_ear(
                &outcome(Verdict::Rejected(reason), None),
                Timestamp::from_unix_millis(1_000),
                &verifier(),
                "policy",
            );
            assert_eq!(
                ear.appraisal().status(),
                TrustTier::Contraindicated,
                "{reason}"
            );
            assert!(
                ear.to_json()["submods"][SUBMODULE]
                    .get("ear.enigm.attester-claims")
                    .is_none()
            );
        }
    }

    #[test]
    fn an_empty_vector_has_status_none_and_no_vector_on_the_wire() {
        let appraisal = Appraisal {
            trust_vector: TrustVector::default(),
            policy_id: "policy".to_owned(),
            verdict: Verdict::Accepted,
            format: EvidenceFormat::AndroidKey,
            claims: None,
        };
        assert_eq!(appraisal.status(), TrustTier::None);
        assert!(
            appraisal
                .to_json()
                .get("ear.trustworthiness-vector")
                .is_none()
        );
    }

    #[test]
    fn tiers_follow_the_ar4si_ranges() {
        for (code, tier) in [
            (-128, TrustTier::Contraindicated),
            (-97, TrustTier::Contraindicated),
            (-96, TrustTier::Warning),
            (-33, TrustTier::Warning),
            (-32, TrustTier::Affirming),
            (-2, TrustTier::Affirming),
            (-1, TrustTier::None),
            (0, TrustTier::None),
            (1, TrustTier::None),
            (2, TrustTier::Affirming),
            (31, TrustTier::Affirming),
            (32, TrustTier::Warning),
            (95, TrustTier::Warning),
            (96, TrustTier::Contraindicated),
            (127, TrustTier::Contraindicated),
        ] {
            assert_eq!(TrustClaim(code).tier(), tier, "{code}");
        }
    }

    #[test]
    fn the_detail_prose_stays_out_of_the_ear() {
        let json = to_json(
            &rejected(RejectionReason::ReplayAttempt),
            Timestamp::from_unix_millis(1_000),
            &verifier(),
            "policy",
        );
        assert!(!json.to_string().contains("prose for people"));
    }

    #[test]
    fn serialize_writes_the_same_claims_set_as_to_json() {
        let ear = to_ear(
            &rejected(RejectionReason::IneligibleBuild),
            Timestamp::from_unix_millis(1_767_225_600_999),
            &verifier(),
            "policy",
        );
        assert_eq!(serde_json::to_value(&ear).unwrap(), ear.to_json());
        assert_eq!(ear.issued_at(), 1_767_225_600);
    }

    #[test]
    fn full_ear_snapshot() {
        // Keys sorted: whether serde_json keeps insertion order depends on which crates of the
        // workspace are built with it (its `preserve_order` feature is unified across them).
        insta::with_settings!({sort_maps => true}, {
            insta::assert_json_snapshot!(to_json(
                &outcome(Verdict::Accepted, Some(android_claims("VERIFIED", true))),
                Timestamp::from_unix_millis(1_767_225_600_000),
                &verifier(),
                "enigm:attestation-policy:default",
            ));
        });
    }
}
