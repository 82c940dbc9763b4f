//! Attestation policy and appraisal over constructed KeyDescriptions: each rule rejects with its
//! one reason, the default policy is the safe one, and pairing refuses other keys and downgrades.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test: failing loudly is the point"
)]

use enigm_attest::android::key_description::{
    AttestationApplicationId, AuthorizationList, KeyDescription, PackageInfo, RootOfTrust,
    SecurityLevel, VerifiedBootState,
};
use enigm_attest::outcome::RejectionReason;
use enigm_attest::policy::{
    AndroidEvidence, Appraisal, AttestationPolicy, ExpectedApplication, Pairing, PolicyError,
    advance, appraise_android,
};

const CHALLENGE: &[u8] = b"the challenge Command issued";
const GRAPHENE_KEY: &str = "0508de44ee00bfb49ece32c418af1896391abde0f05b64f41bc9a2dfb589445b";
const OEM_KEY: &str = "1111111111111111111111111111111111111111111111111111111111111111";

fn description(state: VerifiedBootState, boot_key: &str, locked: bool) -> KeyDescription {
    KeyDescription {
        attestation_version: 300,
        attestation_security_level: SecurityLevel::StrongBox,
        key_mint_version: 300,
        key_mint_security_level: SecurityLevel::StrongBox,
        attestation_challenge: CHALLENGE.to_vec(),
        unique_id: Vec::new(),
        software_enforced: AuthorizationList {
            attestation_application_id: Some(AttestationApplicationId {
                packages: vec![PackageInfo {
                    name: "app.enigm.security".to_owned(),
                    version: 7,
                }],
                signature_digests: vec![vec![0xab; 32]],
            }),
            ..AuthorizationList::default()
        },
        hardware_enforced: AuthorizationList {
            purposes: vec![2, 3],
            root_of_trust: Some(RootOfTrust {
                verified_boot_key: hex::decode(boot_key).unwrap(),
                device_locked: locked,
                verified_boot_state: state,
                verified_boot_hash: Some(vec![7; 32]),
            }),
            os_version: Some(160_000),
            os_patch_level: Some(202_511),
            vendor_patch_level: Some(20_251_105),
            boot_patch_level: Some(20_251_105),
            ..AuthorizationList::default()
        },
    }
}

fn verified() -> KeyDescription {
    description(VerifiedBootState::Verified, OEM_KEY, true)
}

fn appraise(
    description: &KeyDescription,
    policy: &AttestationPolicy,
    pairing: Option<&Pairing>,
) -> Appraisal {
    appraise_with_key(description, policy, pairing, "pin-a")
}

fn appraise_with_key(
    description: &KeyDescription,
    policy: &AttestationPolicy,
    pairing: Option<&Pairing>,
    key: &str,
) -> Appraisal {
    let evidence = AndroidEvidence {
        key_description: description,
        attest_key_description: None,
        root: "google-ec-p384",
        attestation_key_digest: key,
    };
    appraise_android(&evidence, Some(CHALLENGE), policy, pairing)
}

fn reason(appraisal: &Appraisal) -> Option<RejectionReason> {
    match appraisal {
        Appraisal::Accepted { .. } => None,
        Appraisal::Rejected { reason, .. } => Some(*reason),
    }
}

fn pairing_of(appraisal: Appraisal) -> Pairing {
    match appraisal {
        Appraisal::Accepted { pairing, .. } => pairing,
        Appraisal::Rejected { reason, detail, .. } => panic!("rejected: {reason}: {detail}"),
    }
}

#[test]
fn the_default_policy_accepts_a_locked_verified_hardware_device() {
    let appraisal = appraise(&verified(), &AttestationPolicy::default(), None);
    let Appraisal::Accepted { claims, pairing } = appraisal else {
        panic!("rejected")
    };
    assert_eq!(claims.security_level.as_deref(), Some("STRONG_BOX"));
    assert_eq!(claims.verified_boot_state.as_deref(), Some("VERIFIED"));
    assert_eq!(claims.device_locked, Some(true));
    assert_eq!(claims.os_patch_level, Some(202_511));
    assert_eq!(claims.root.as_deref(), Some("google-ec-p384"));
    assert_eq!(pairing.attestation_key, "pin-a");
    assert_eq!(pairing.boot_key, OEM_KEY);
}

#[test]
fn a_wrong_challenge_is_a_replay() {
    let mut description = verified();
    description.attestation_challenge = b"another request".to_vec();
    let appraisal = appraise(&description, &AttestationPolicy::default(), None);
    assert_eq!(reason(&appraisal), Some(RejectionReason::ReplayAttempt));
}

#[test]
fn software_keys_are_an_unsupported_device_by_default() {
    let mut description = verified();
    description.attestation_security_level = SecurityLevel::Software;
    description.key_mint_security_level = SecurityLevel::Software;
    let appraisal = appraise(&description, &AttestationPolicy::default(), None);
    assert_eq!(reason(&appraisal), Some(RejectionReason::UnsupportedDevice));
}

#[test]
fn no_root_of_trust_is_an_unsupported_device() {
    let mut description = verified();
    description.hardware_enforced.root_of_trust = None;
    let appraisal = appraise(&description, &AttestationPolicy::default(), None);
    assert_eq!(reason(&appraisal), Some(RejectionReason::UnsupportedDevice));
}

#[test]
fn boot_state_and_lock_make_an_ineligible_build() {
    let policy = AttestationPolicy::default();
    for description in [
        description(VerifiedBootState::Verified, OEM_KEY, false),
        description(VerifiedBootState::Unverified, OEM_KEY, true),
        description(VerifiedBootState::Failed, OEM_KEY, true),
        description(VerifiedBootState::SelfSigned, GRAPHENE_KEY, true),
    ] {
        let appraisal = appraise(&description, &policy, None);
        assert_eq!(
            reason(&appraisal),
            Some(RejectionReason::IneligibleBuild),
            "{:?}",
            description.hardware_enforced.root_of_trust
        );
    }
}

#[test]
fn a_self_signed_os_is_accepted_only_with_its_key_on_the_allow_list() {
    let graphene = description(VerifiedBootState::SelfSigned, GRAPHENE_KEY, true);
    let policy = AttestationPolicy {
        allowed_boot_keys: vec![GRAPHENE_KEY.to_owned()],
        ..AttestationPolicy::default()
    };
    assert_eq!(reason(&appraise(&graphene, &policy, None)), None);
    let other = description(VerifiedBootState::SelfSigned, OEM_KEY, true);
    assert_eq!(
        reason(&appraise(&other, &policy, None)),
        Some(RejectionReason::IneligibleBuild)
    );
    // OEM builds may be restricted to listed keys too.
    let strict = AttestationPolicy {
        oem_boot_keys_only_listed: true,
        ..policy
    };
    assert_eq!(
        reason(&appraise(&verified(), &strict, None)),
        Some(RejectionReason::IneligibleBuild)
    );
}

#[test]
fn patch_levels_below_the_minimum_make_an_ineligible_build() {
    for policy in [
        AttestationPolicy {
            min_os_version: Some(170_000),
            ..AttestationPolicy::default()
        },
        AttestationPolicy {
            min_os_patch_level: Some(202_512),
            ..AttestationPolicy::default()
        },
        AttestationPolicy {
            min_vendor_patch_level: Some(20_251_201),
            ..AttestationPolicy::default()
        },
        AttestationPolicy {
            // A YYYYMM minimum against a YYYYMMDD level: compared as its first day.
            min_boot_patch_level: Some(202_512),
            ..AttestationPolicy::default()
        },
    ] {
        assert_eq!(
            reason(&appraise(&verified(), &policy, None)),
            Some(RejectionReason::IneligibleBuild),
            "{policy:?}"
        );
    }
    let met = AttestationPolicy {
        min_os_patch_level: Some(202_511),
        min_boot_patch_level: Some(202_511),
        ..AttestationPolicy::default()
    };
    assert_eq!(reason(&appraise(&verified(), &met, None)), None);
}

#[test]
fn another_application_is_an_eligibility_failure() {
    let expect = |package: &str, digests: Vec<String>| AttestationPolicy {
        application: Some(ExpectedApplication {
            package_name: package.to_owned(),
            signing_certificate_digests: digests,
        }),
        ..AttestationPolicy::default()
    };
    let right_digest = hex::encode([0xab; 32]);
    let wrong_digest = hex::encode([0xcd; 32]);
    assert_eq!(
        reason(&appraise(
            &verified(),
            &expect("app.enigm.security", vec![right_digest]),
            None
        )),
        None
    );
    assert_eq!(
        reason(&appraise(
            &verified(),
            &expect("app.enigm.security", vec![wrong_digest]),
            None
        )),
        Some(RejectionReason::EligibilityFailure)
    );
    assert_eq!(
        reason(&appraise(
            &verified(),
            &expect("com.example.other", vec![]),
            None
        )),
        Some(RejectionReason::EligibilityFailure)
    );
}

#[test]
fn pairing_pins_the_attestation_key_and_the_boot_key() {
    let policy = AttestationPolicy {
        allowed_boot_keys: vec![GRAPHENE_KEY.to_owned()],
        ..AttestationPolicy::default()
    };
    let pinned = pairing_of(appraise(&verified(), &policy, None));
    assert_eq!(reason(&appraise(&verified(), &policy, Some(&pinned))), None);
    assert_eq!(
        reason(&appraise_with_key(
            &verified(),
            &policy,
            Some(&pinned),
            "pin-b"
        )),
        Some(RejectionReason::EligibilityFailure)
    );
    // An allow-listed OS, but not the one this device paired with.
    let graphene = description(VerifiedBootState::SelfSigned, GRAPHENE_KEY, true);
    assert_eq!(
        reason(&appraise(&graphene, &policy, Some(&pinned))),
        Some(RejectionReason::EligibilityFailure)
    );
}

#[test]
fn a_downgrade_after_pairing_is_an_ineligible_build() {
    let policy = AttestationPolicy::default();
    let pinned = pairing_of(appraise(&verified(), &policy, None));
    for downgrade in [
        |d: &mut KeyDescription| d.hardware_enforced.os_version = Some(150_000),
        |d: &mut KeyDescription| d.hardware_enforced.os_patch_level = Some(202_510),
        |d: &mut KeyDescription| d.hardware_enforced.vendor_patch_level = Some(20_251_001),
        |d: &mut KeyDescription| d.hardware_enforced.boot_patch_level = None,
    ] {
        let mut description = verified();
        downgrade(&mut description);
        assert_eq!(
            reason(&appraise(&description, &policy, Some(&pinned))),
            Some(RejectionReason::IneligibleBuild)
        );
    }
    // An upgrade is accepted and moves the pairing up; it never moves down.
    let mut upgraded = verified();
    upgraded.hardware_enforced.os_patch_level = Some(202_512);
    let accepted = pairing_of(appraise(&upgraded, &policy, Some(&pinned)));
    let advanced = advance(&pinned, &accepted);
    assert_eq!(advanced.os_patch_level, Some(202_512));
    assert_eq!(advance(&advanced, &pinned).os_patch_level, Some(202_512));
    assert_eq!(
        reason(&appraise(&verified(), &policy, Some(&advanced))),
        Some(RejectionReason::IneligibleBuild)
    );
}

#[test]
fn policy_documents_are_strict() {
    let default = AttestationPolicy::from_json(b"{}").unwrap();
    assert_eq!(default, AttestationPolicy::default());
    assert!(default.require_locked);
    assert!(matches!(
        AttestationPolicy::from_json(br#"{"unknown": 1}"#),
        Err(PolicyError::Json(_))
    ));
    assert!(matches!(
        AttestationPolicy::from_json(br#"{"allowed_boot_keys": ["not hex"]}"#),
        Err(PolicyError::Digest { .. })
    ));
    assert!(matches!(
        AttestationPolicy::from_json(br#"{"security_levels": []}"#),
        Err(PolicyError::NoSecurityLevel)
    ));
    let graphene = format!(
        r#"{{"allowed_boot_keys": ["{GRAPHENE_KEY}"], "min_os_patch_level": 202511,
            "security_levels": ["STRONG_BOX"], "required_for": {{"enrollment": true}}}}"#
    );
    let policy = AttestationPolicy::from_json(graphene.as_bytes()).unwrap();
    assert!(policy.required_for.enrollment);
    assert_eq!(policy.security_levels.len(), 1);
}
