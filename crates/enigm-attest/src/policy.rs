//! Attestation policy and appraisal: what a device group accepts, and the decision over evidence
//! whose signatures already verified.
//!
//! Appraisal runs after chain (or quote) verification and decides, in a fixed order, the first
//! rule the evidence breaks: challenge, hardware, boot state and lock, boot key, patch levels,
//! application identity, then the pairing (the key and boot key pinned at the first accepted
//! attestation, and no downgrade of OS version or patch levels). The order makes the one
//! rejection reason deterministic.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::android::key_description::{
    AuthorizationList, KeyDescription, RootOfTrust, SecurityLevel, VerifiedBootState,
};
use crate::outcome::{Claims, RejectionReason};

/// Upper bounds on a policy's lists, so that a policy file cannot make appraisal expensive.
const MAX_LIST_ENTRIES: usize = 256;

/// Where an attestation is required before Command allows the action, besides OTA: OTA
/// eligibility (protected release metadata) always needs an accepted attestation younger than
/// `max_age_seconds` (enigm-docs §9: remote attestation before OTA eligibility).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequiredFor {
    /// Enrollment carries an accepted attestation, or is refused.
    #[serde(default)]
    pub enrollment: bool,
    /// Messaging, calls and network (the sensitive channels) need one too.
    #[serde(default)]
    pub sensitive_channels: bool,
}

/// The application that must have asked for the attestation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedApplication {
    pub package_name: String,
    /// Lower-case hex SHA-256 digests of the app's signing certificates; when not empty, one of
    /// the attested digests must be in it.
    #[serde(default)]
    pub signing_certificate_digests: Vec<String>,
}

/// A device group's attestation policy.
///
/// The default is the safe choice: hardware-backed keys (TEE or StrongBox), a locked bootloader,
/// and an OS either verified by its OEM key or signed by a key on the allow-list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationPolicy {
    /// Accepted security levels of the attestation and of the key.
    #[serde(default = "hardware_levels")]
    pub security_levels: BTreeSet<PolicySecurityLevel>,
    /// The bootloader must be locked.
    #[serde(default = "yes")]
    pub require_locked: bool,
    /// Lower-case hex digests of verified-boot keys. A `SELF_SIGNED` OS (GrapheneOS and other
    /// custom builds) is accepted only with a key in this list. A `VERIFIED` (OEM) OS is accepted
    /// with any key when `oem_boot_keys_only_listed` is false, and only with a listed key when it
    /// is true.
    #[serde(default)]
    pub allowed_boot_keys: Vec<String>,
    #[serde(default)]
    pub oem_boot_keys_only_listed: bool,
    #[serde(default)]
    pub min_os_version: Option<i64>,
    /// YYYYMM.
    #[serde(default)]
    pub min_os_patch_level: Option<i64>,
    /// YYYYMMDD (a YYYYMM value from the device is compared as its first day).
    #[serde(default)]
    pub min_vendor_patch_level: Option<i64>,
    /// YYYYMMDD (as above).
    #[serde(default)]
    pub min_boot_patch_level: Option<i64>,
    #[serde(default)]
    pub application: Option<ExpectedApplication>,
    /// Reference values of a TPM's SHA-256 PCR bank (index → lower-case hex): a quote must cover
    /// exactly these PCRs and match them. Empty: TPM evidence is not accepted.
    #[serde(default)]
    pub tpm_pcrs: BTreeMap<u8, String>,
    #[serde(default)]
    pub required_for: RequiredFor,
    /// How long an accepted attestation counts for OTA and the sensitive channels.
    #[serde(default = "one_day")]
    pub max_age_seconds: u64,
}

fn hardware_levels() -> BTreeSet<PolicySecurityLevel> {
    BTreeSet::from([
        PolicySecurityLevel::TrustedEnvironment,
        PolicySecurityLevel::StrongBox,
    ])
}

fn yes() -> bool {
    true
}

fn one_day() -> u64 {
    24 * 60 * 60
}

impl Default for AttestationPolicy {
    fn default() -> Self {
        AttestationPolicy {
            security_levels: hardware_levels(),
            require_locked: true,
            allowed_boot_keys: Vec::new(),
            oem_boot_keys_only_listed: false,
            min_os_version: None,
            min_os_patch_level: None,
            min_vendor_patch_level: None,
            min_boot_patch_level: None,
            application: None,
            tpm_pcrs: BTreeMap::new(),
            required_for: RequiredFor::default(),
            max_age_seconds: one_day(),
        }
    }
}

/// The security levels a policy can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PolicySecurityLevel {
    Software,
    TrustedEnvironment,
    StrongBox,
}

impl From<SecurityLevel> for PolicySecurityLevel {
    fn from(level: SecurityLevel) -> Self {
        match level {
            SecurityLevel::Software => PolicySecurityLevel::Software,
            SecurityLevel::TrustedEnvironment => PolicySecurityLevel::TrustedEnvironment,
            SecurityLevel::StrongBox => PolicySecurityLevel::StrongBox,
        }
    }
}

/// Why a policy document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the attestation policy is not valid JSON for this schema: {0}")]
    Json(String),
    #[error("`{field}` is not a lower-case hex SHA-256 digest: {value:?}")]
    Digest { field: &'static str, value: String },
    #[error("`{0}` lists more than {MAX_LIST_ENTRIES} entries")]
    TooMany(&'static str),
    #[error("`security_levels` is empty: no attestation could ever be accepted")]
    NoSecurityLevel,
}

impl AttestationPolicy {
    /// Parses and checks a policy document (JSON, unknown fields refused).
    pub fn from_json(bytes: &[u8]) -> Result<AttestationPolicy, PolicyError> {
        let policy: AttestationPolicy =
            serde_json::from_slice(bytes).map_err(|error| PolicyError::Json(error.to_string()))?;
        policy.check()?;
        Ok(policy)
    }

    /// Checks the invariants serde cannot: digests well formed, lists bounded, something
    /// acceptable.
    pub fn check(&self) -> Result<(), PolicyError> {
        if self.security_levels.is_empty() {
            return Err(PolicyError::NoSecurityLevel);
        }
        if self.allowed_boot_keys.len() > MAX_LIST_ENTRIES {
            return Err(PolicyError::TooMany("allowed_boot_keys"));
        }
        for key in &self.allowed_boot_keys {
            check_hex_digest("allowed_boot_keys", key, &[32, 64])?;
        }
        if self.tpm_pcrs.len() > 24 {
            return Err(PolicyError::TooMany("tpm_pcrs"));
        }
        for digest in self.tpm_pcrs.values() {
            check_hex_digest("tpm_pcrs", digest, &[32])?;
        }
        if let Some(application) = &self.application {
            if application.signing_certificate_digests.len() > MAX_LIST_ENTRIES {
                return Err(PolicyError::TooMany("signing_certificate_digests"));
            }
            for digest in &application.signing_certificate_digests {
                check_hex_digest("signing_certificate_digests", digest, &[32])?;
            }
        }
        Ok(())
    }
}

/// A digest is lower-case hex of one of the given byte lengths (boot keys are SHA-256 digests,
/// but some devices report a 64-byte value).
fn check_hex_digest(
    field: &'static str,
    value: &str,
    lengths: &[usize],
) -> Result<(), PolicyError> {
    let well_formed = lengths.iter().any(|length| value.len() == length * 2)
        && value
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
    if well_formed {
        Ok(())
    } else {
        Err(PolicyError::Digest {
            field,
            value: value.chars().take(80).collect(),
        })
    }
}

/// What the first accepted attestation of a device pins to its handle, like GrapheneOS Auditor's
/// pairing: later attestations must show the same keys and no lower OS version or patch level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pairing {
    /// A digest of the attestation key chosen by the caller (Command keys it with the
    /// deployment's handle key, so the stored value is not the hardware key itself).
    pub attestation_key: String,
    /// Hex verified-boot key (names the OS signer, not the unit); empty for TPM evidence.
    pub boot_key: String,
    #[serde(default)]
    pub os_version: Option<i64>,
    #[serde(default)]
    pub os_patch_level: Option<i64>,
    #[serde(default)]
    pub vendor_patch_level: Option<i64>,
    #[serde(default)]
    pub boot_patch_level: Option<i64>,
}

/// The outcome of appraising verified evidence: the claims and either the pairing to keep (on
/// acceptance) or the one reason with an explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appraisal {
    Accepted {
        claims: Claims,
        pairing: Pairing,
    },
    Rejected {
        claims: Claims,
        reason: RejectionReason,
        detail: String,
    },
}

/// Android evidence whose chain verified: the leaf's KeyDescription, the attest-key
/// certificate's when there is one, which pinned root it ended at, and the caller's digest of the
/// key to pin (the attest key when present, else the leaf key).
#[derive(Debug, Clone, Copy)]
pub struct AndroidEvidence<'a> {
    pub key_description: &'a KeyDescription,
    pub attest_key_description: Option<&'a KeyDescription>,
    pub root: &'a str,
    pub attestation_key_digest: &'a str,
}

/// The claims Command may keep from a KeyDescription.
pub fn android_claims(evidence: &AndroidEvidence<'_>) -> Claims {
    let description = evidence.key_description;
    let hardware = &description.hardware_enforced;
    let software = &description.software_enforced;
    let root_of_trust = root_of_trust(description);
    Claims {
        security_level: Some(description.attestation_security_level.as_str().to_owned()),
        attestation_version: Some(description.attestation_version),
        verified_boot_state: root_of_trust.map(|root| root.verified_boot_state.as_str().to_owned()),
        device_locked: root_of_trust.map(|root| root.device_locked),
        verified_boot_key: root_of_trust.map(|root| hex::encode(&root.verified_boot_key)),
        os_version: hardware.os_version.or(software.os_version),
        os_patch_level: hardware.os_patch_level.or(software.os_patch_level),
        vendor_patch_level: hardware.vendor_patch_level.or(software.vendor_patch_level),
        boot_patch_level: hardware.boot_patch_level.or(software.boot_patch_level),
        root: Some(evidence.root.to_owned()),
        pcrs_match: None,
    }
}

/// The RootOfTrust: from the hardware-enforced list when the attestation is hardware-backed,
/// else from the software-enforced one (software attestation, which policy normally refuses).
fn root_of_trust(description: &KeyDescription) -> Option<&RootOfTrust> {
    description
        .hardware_enforced
        .root_of_trust
        .as_ref()
        .or(description.software_enforced.root_of_trust.as_ref())
}

/// Appraises verified Android evidence under `policy`, against the challenge Command expects and
/// the device's pairing when it has one. `expected_challenge` is `None` only for offline
/// inspection of a chain (`enigm attest verify` without `--challenge`): Command always passes one.
pub fn appraise_android(
    evidence: &AndroidEvidence<'_>,
    expected_challenge: Option<&[u8]>,
    policy: &AttestationPolicy,
    pairing: Option<&Pairing>,
) -> Appraisal {
    let claims = android_claims(evidence);
    match android_rule_broken(evidence, expected_challenge, policy, pairing, &claims) {
        Some((reason, detail)) => Appraisal::Rejected {
            claims,
            reason,
            detail,
        },
        None => Appraisal::Accepted {
            pairing: Pairing {
                attestation_key: evidence.attestation_key_digest.to_owned(),
                boot_key: claims.verified_boot_key.clone().unwrap_or_default(),
                os_version: claims.os_version,
                os_patch_level: claims.os_patch_level,
                vendor_patch_level: claims.vendor_patch_level,
                boot_patch_level: claims.boot_patch_level,
            },
            claims,
        },
    }
}

fn android_rule_broken(
    evidence: &AndroidEvidence<'_>,
    expected_challenge: Option<&[u8]>,
    policy: &AttestationPolicy,
    pairing: Option<&Pairing>,
    claims: &Claims,
) -> Option<(RejectionReason, String)> {
    let description = evidence.key_description;
    if let Some(expected) = expected_challenge
        && !enigm_crypto::constant_time_eq(&description.attestation_challenge, expected)
    {
        return Some((
            RejectionReason::ReplayAttempt,
            "the attestation challenge is not the one Command issued for this request".to_owned(),
        ));
    }
    for (what, level) in [
        ("attestation", description.attestation_security_level),
        ("key", description.key_mint_security_level),
    ] {
        if !policy.security_levels.contains(&level.into()) {
            return Some((
                RejectionReason::UnsupportedDevice,
                format!(
                    "the {what} security level {} is not accepted",
                    level.as_str()
                ),
            ));
        }
    }
    if let Some(attest_key) = evidence.attest_key_description
        && !policy
            .security_levels
            .contains(&attest_key.attestation_security_level.into())
    {
        return Some((
            RejectionReason::UnsupportedDevice,
            "the attest key's security level is not accepted".to_owned(),
        ));
    }
    let Some(root_of_trust) = root_of_trust(description) else {
        return Some((
            RejectionReason::UnsupportedDevice,
            "the attestation has no RootOfTrust".to_owned(),
        ));
    };
    if let Some(broken) = boot_rule_broken(root_of_trust, policy) {
        return Some((RejectionReason::IneligibleBuild, broken));
    }
    if let Some(broken) = patch_rule_broken(claims, policy) {
        return Some((RejectionReason::IneligibleBuild, broken));
    }
    if let Some(expected) = &policy.application
        && let Some(broken) = application_rule_broken(description, expected)
    {
        return Some((RejectionReason::EligibilityFailure, broken));
    }
    pairing.and_then(|pinned| pairing_rule_broken(evidence, claims, pinned))
}

fn boot_rule_broken(root_of_trust: &RootOfTrust, policy: &AttestationPolicy) -> Option<String> {
    if policy.require_locked && !root_of_trust.device_locked {
        return Some("the bootloader is unlocked".to_owned());
    }
    let boot_key = hex::encode(&root_of_trust.verified_boot_key);
    let listed = policy.allowed_boot_keys.contains(&boot_key);
    match root_of_trust.verified_boot_state {
        VerifiedBootState::Verified if policy.oem_boot_keys_only_listed && !listed => Some(
            format!("the OEM boot key {boot_key} is not on the allow-list"),
        ),
        VerifiedBootState::Verified => None,
        VerifiedBootState::SelfSigned if listed => None,
        VerifiedBootState::SelfSigned => Some(format!(
            "the OS is signed by its own key {boot_key}, which is not on the allow-list"
        )),
        VerifiedBootState::Unverified => Some("verified boot is off (UNVERIFIED)".to_owned()),
        VerifiedBootState::Failed => Some("verified boot failed (FAILED)".to_owned()),
    }
}

/// A YYYYMM patch level compares with a YYYYMMDD minimum as its first day.
fn as_day(level: i64) -> i64 {
    if level < 1_000_000 {
        level.saturating_mul(100).saturating_add(1)
    } else {
        level
    }
}

fn patch_rule_broken(claims: &Claims, policy: &AttestationPolicy) -> Option<String> {
    let checks = [
        (
            "OS version",
            claims.os_version,
            policy.min_os_version,
            false,
        ),
        (
            "OS patch level",
            claims.os_patch_level,
            policy.min_os_patch_level,
            false,
        ),
        (
            "vendor patch level",
            claims.vendor_patch_level,
            policy.min_vendor_patch_level,
            true,
        ),
        (
            "boot patch level",
            claims.boot_patch_level,
            policy.min_boot_patch_level,
            true,
        ),
    ];
    for (what, value, minimum, daily) in checks {
        let Some(minimum) = minimum else { continue };
        let normalise = |level: i64| if daily { as_day(level) } else { level };
        match value {
            None => return Some(format!("the {what} is not attested (minimum {minimum})")),
            Some(value) if normalise(value) < normalise(minimum) => {
                return Some(format!("the {what} {value} is below the minimum {minimum}"));
            }
            Some(_) => {}
        }
    }
    None
}

fn application_rule_broken(
    description: &KeyDescription,
    expected: &ExpectedApplication,
) -> Option<String> {
    let lists: [&AuthorizationList; 2] = [
        &description.software_enforced,
        &description.hardware_enforced,
    ];
    let Some(application) = lists
        .iter()
        .find_map(|list| list.attestation_application_id.as_ref())
    else {
        return Some("the attestation names no application".to_owned());
    };
    if !application
        .packages
        .iter()
        .any(|package| package.name == expected.package_name)
    {
        return Some(format!(
            "the attestation was not requested by {}",
            expected.package_name
        ));
    }
    if !expected.signing_certificate_digests.is_empty()
        && !application.signature_digests.iter().any(|digest| {
            expected
                .signing_certificate_digests
                .contains(&hex::encode(digest))
        })
    {
        return Some("the application's signing certificate is not the expected one".to_owned());
    }
    None
}

fn pairing_rule_broken(
    evidence: &AndroidEvidence<'_>,
    claims: &Claims,
    pinned: &Pairing,
) -> Option<(RejectionReason, String)> {
    if !enigm_crypto::constant_time_eq(
        evidence.attestation_key_digest.as_bytes(),
        pinned.attestation_key.as_bytes(),
    ) {
        return Some((
            RejectionReason::EligibilityFailure,
            "the attestation key is not the one pinned to this device at pairing".to_owned(),
        ));
    }
    if claims.verified_boot_key.as_deref().unwrap_or_default() != pinned.boot_key {
        return Some((
            RejectionReason::EligibilityFailure,
            "the verified-boot key is not the one pinned to this device at pairing".to_owned(),
        ));
    }
    downgrade(claims, pinned).map(|detail| (RejectionReason::IneligibleBuild, detail))
}

/// A lower OS version or patch level than the pairing recorded is a downgrade; so is a level
/// that was attested before and is missing now.
pub fn downgrade(claims: &Claims, pinned: &Pairing) -> Option<String> {
    let levels = [
        ("OS version", claims.os_version, pinned.os_version),
        (
            "OS patch level",
            claims.os_patch_level,
            pinned.os_patch_level,
        ),
        (
            "vendor patch level",
            claims.vendor_patch_level.map(as_day),
            pinned.vendor_patch_level.map(as_day),
        ),
        (
            "boot patch level",
            claims.boot_patch_level.map(as_day),
            pinned.boot_patch_level.map(as_day),
        ),
    ];
    levels
        .into_iter()
        .find_map(|(what, now, before)| match (now, before) {
            (_, None) => None,
            (None, Some(before)) => {
                Some(format!("the {what} was {before} and is no longer attested"))
            }
            (Some(now), Some(before)) if now < before => {
                Some(format!("downgrade: the {what} went from {before} to {now}"))
            }
            (Some(_), Some(_)) => None,
        })
}

/// The pairing after an accepted attestation: levels only move up (a device may report a level
/// late, never lower).
pub fn advance(pinned: &Pairing, accepted: &Pairing) -> Pairing {
    let max = |a: Option<i64>, b: Option<i64>| a.max(b);
    Pairing {
        attestation_key: pinned.attestation_key.clone(),
        boot_key: pinned.boot_key.clone(),
        os_version: max(pinned.os_version, accepted.os_version),
        os_patch_level: max(pinned.os_patch_level, accepted.os_patch_level),
        vendor_patch_level: max(pinned.vendor_patch_level, accepted.vendor_patch_level),
        boot_patch_level: max(pinned.boot_patch_level, accepted.boot_patch_level),
    }
}
