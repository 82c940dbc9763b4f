#![allow(clippy::unwrap_used, reason = "tests")]

use proptest::prelude::*;

use super::{UnknownName, Vocabulary};
use crate::{
    AttestationFormat, AttestationVerdict, DeviceCommand, DeviceState, FindingKind, GateResult,
    InstallOutcome, LauncherSummary, LifecycleAction, PatchLevelCheck, ProductionGate,
    ReleaseState, Role, SecurityLayer, Severity, SignalCheck, SignalKind, SignalSource,
    SignalValue, TrustState,
};

/// Every value of `T`: its spelling parses back to it, `Display` and serde use that spelling,
/// serde reads it back, and no two values share one.
fn check_round_trip<T>()
where
    T: Vocabulary + std::str::FromStr<Err = UnknownName> + std::fmt::Display,
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let mut seen = std::collections::HashSet::new();
    for &value in T::all() {
        let name = value.name();
        assert!(seen.insert(name), "{} `{name}` spelled twice", T::WHAT);
        assert_eq!(name.parse::<T>(), Ok(value));
        assert_eq!(T::from_name(name), Ok(value));
        assert_eq!(value.to_string(), name);
        let json = serde_json::to_string(&value).unwrap();
        assert_eq!(json, format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), value);
        // One spelling only: other cases and padding are refused everywhere.
        for other in [
            name.to_uppercase(),
            name.to_lowercase(),
            format!(" {name}"),
            format!("{name} "),
        ] {
            if other != name {
                assert!(other.parse::<T>().is_err(), "{other:?} parsed");
                assert!(serde_json::from_str::<T>(&format!("{other:?}")).is_err());
            }
        }
    }
    assert!(!T::all().is_empty());
}

#[test]
fn every_vocabulary_round_trips_through_its_one_spelling() {
    check_round_trip::<TrustState>();
    check_round_trip::<LauncherSummary>();
    check_round_trip::<Severity>();
    check_round_trip::<FindingKind>();
    check_round_trip::<ProductionGate>();
    check_round_trip::<GateResult>();
    check_round_trip::<SignalCheck>();
    check_round_trip::<PatchLevelCheck>();
    check_round_trip::<SignalKind>();
    check_round_trip::<SignalValue>();
    check_round_trip::<SignalSource>();
    check_round_trip::<SecurityLayer>();
    check_round_trip::<DeviceState>();
    check_round_trip::<LifecycleAction>();
    check_round_trip::<DeviceCommand>();
    check_round_trip::<Role>();
    check_round_trip::<ReleaseState>();
    check_round_trip::<InstallOutcome>();
    check_round_trip::<AttestationVerdict>();
    check_round_trip::<AttestationFormat>();
}

/// The spellings the database rows and the wire already hold: changing one breaks stored data.
#[test]
fn spellings_are_the_stored_ones() {
    fn check<T: Vocabulary>(expect: &[(T, &str)]) {
        assert_eq!(
            expect.len(),
            T::all().len(),
            "{}: table incomplete",
            T::WHAT
        );
        for (value, name) in expect {
            assert_eq!(value.name(), *name);
        }
    }
    use TrustState as T;
    check(&[
        (T::Protected, "PROTECTED"),
        (T::ReviewRequired, "REVIEW_REQUIRED"),
        (T::Inactive, "INACTIVE"),
    ]);
    use Severity as S;
    check(&[
        (S::Info, "Info"),
        (S::Low, "Low"),
        (S::Medium, "Medium"),
        (S::High, "High"),
        (S::Critical, "Critical"),
    ]);
    use DeviceState as D;
    check(&[
        (D::PendingEnrollment, "pending-enrollment"),
        (D::Trusted, "trusted"),
        (D::Restricted, "restricted"),
        (D::Revoked, "revoked"),
        (D::Replaced, "replaced"),
        (D::Retired, "retired"),
    ]);
    check(&[
        (DeviceCommand::Retire, "retire"),
        (DeviceCommand::Wipe, "wipe"),
    ]);
    use LifecycleAction as A;
    check(&[
        (A::Activate, "activate"),
        (A::Restrict, "restrict"),
        (A::Reactivate, "reactivate"),
        (A::Revoke, "revoke"),
        (A::Replace, "replace"),
        (A::Retire, "retire"),
    ]);
    use GateResult as G;
    check(&[
        (G::Pass, "pass"),
        (G::Fail, "fail"),
        (G::NotApplicable, "not-applicable"),
    ]);
    use LauncherSummary as L;
    check(&[
        (L::DeviceProtected, "device-protected"),
        (L::DeviceAtRisk, "device-at-risk"),
        (L::ProtectionInactive, "protection-inactive"),
    ]);
    use SignalValue as V;
    check(&[
        (V::Ok, "ok"),
        (V::Degraded, "degraded"),
        (V::Failed, "failed"),
        (V::Unavailable, "unavailable"),
        (V::NotMeasurable, "not-measurable"),
    ]);
    use SignalSource as O;
    check(&[
        (O::Attested, "attested"),
        (O::Measured, "measured"),
        (O::Declared, "declared"),
        (O::Engine, "engine"),
    ]);
    use FindingKind as F;
    check(&[
        (F::SignalMissing, "signal-missing"),
        (F::SignalStale, "signal-stale"),
        (F::SignalFromFuture, "signal-from-future"),
        (F::SignalUnavailable, "signal-unavailable"),
        (F::SignalNotMeasurable, "signal-not-measurable"),
        (F::ProtectionFailed, "protection-failed"),
        (F::ProtectionDegraded, "protection-degraded"),
        (F::PatchLevelUnknown, "patch-level-unknown"),
        (F::PatchLevelBelowMinimum, "patch-level-below-minimum"),
        (F::PrivacyModeUnavailable, "privacy-mode-unavailable"),
        (F::SourceBelowMinimum, "source-below-minimum"),
        (F::SourceContradiction, "source-contradiction"),
    ]);
    use ProductionGate as P;
    check(&[
        (P::BuildIntegrity, "build-integrity"),
        (P::BootIntegrity, "boot-integrity"),
        (P::RuntimeSecurity, "runtime-security"),
        (P::PlatformConfiguration, "platform-configuration"),
        (P::NetworkSecurity, "network-security"),
        (P::ApplicationExposure, "application-exposure"),
        (P::PrivacyControls, "privacy-controls"),
        (P::DeviceManagement, "device-management"),
        (P::UpdateIntegrity, "update-integrity"),
        (P::SecurityMonitoring, "security-monitoring"),
    ]);
    use SecurityLayer as Y;
    check(&[
        (Y::HardwareIntegrity, "hardware-integrity"),
        (Y::VerifiedBoot, "verified-boot"),
        (Y::OsHardening, "os-hardening"),
        (Y::NetworkPolicy, "network-policy"),
        (Y::SecurityService, "security-service"),
        (Y::Application, "application"),
    ]);
    use Role as R;
    check(&[
        (R::Owner, "owner"),
        (R::SecurityAdmin, "security-admin"),
        (R::DeviceOperator, "device-operator"),
        (R::ReleaseManager, "release-manager"),
        (R::IntelAnalyst, "intel-analyst"),
        (R::Auditor, "auditor"),
    ]);
    use ReleaseState as E;
    check(&[
        (E::Draft, "draft"),
        (E::Approved, "approved"),
        (E::Signed, "signed"),
        (E::Published, "published"),
        (E::Superseded, "superseded"),
    ]);
    use InstallOutcome as I;
    check(&[
        (I::Downloading, "downloading"),
        (I::Installed, "installed"),
        (I::Rejected, "rejected"),
        (I::RolledBack, "rolled-back"),
    ]);
    use AttestationVerdict as AV;
    check(&[
        (AV::Accepted, "accepted"),
        (AV::InvalidTrustChain, "invalid_trust_chain"),
        (AV::UnsupportedDevice, "unsupported_device"),
        (AV::IneligibleBuild, "ineligible_build"),
        (AV::StaleAttestation, "stale_attestation"),
        (AV::ReplayAttempt, "replay_attempt"),
        (AV::EligibilityFailure, "eligibility_failure"),
    ]);
    use AttestationFormat as AF;
    check(&[
        (AF::AndroidKey, "android_key"),
        (AF::Tpm2Quote, "tpm2_quote"),
    ]);
    assert_eq!(SignalKind::ALL.len(), SignalKind::COUNT);
    assert_eq!(SignalKind::ALL.len(), 30);
}

#[test]
fn unknown_names_say_what_was_expected_and_echo_little() {
    let error = "protected".parse::<TrustState>().unwrap_err();
    assert_eq!(error.what(), "trust state");
    assert_eq!(error.to_string(), "unknown trust state `protected`");
    let long = "x".repeat(500);
    let error = long.parse::<DeviceState>().unwrap_err();
    assert!(error.to_string().len() < 120, "{error}");
    let error = "trusted\n\u{1b}[31m".parse::<DeviceState>().unwrap_err();
    assert!(!error.to_string().contains('\n'));
    assert!(!error.to_string().contains('\u{1b}'));
}

#[test]
fn active_states_are_the_ones_that_are_active() {
    let active: Vec<DeviceState> = DeviceState::ALL
        .into_iter()
        .filter(|state| state.is_active())
        .collect();
    assert_eq!(active, DeviceState::ACTIVE);
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z_-]{0,30}",
        prop::sample::select(
            SignalKind::ALL
                .iter()
                .map(|kind| kind.as_str().to_owned())
                .collect::<Vec<_>>()
        ),
    ]
}

/// `parse` accepts exactly the spellings in `all()`, whatever the text.
fn accepts_exactly_its_names<T: Vocabulary + std::str::FromStr<Err = UnknownName>>(text: &str) {
    let listed = T::all().iter().find(|value| value.name() == text).copied();
    assert_eq!(text.parse::<T>().ok(), listed);
    assert_eq!(T::from_name(text).ok(), listed);
    if let Some(value) = listed {
        assert_eq!(value.name(), text);
    }
}

proptest! {
    #[test]
    fn parsing_accepts_exactly_the_spellings(text in any_text()) {
        accepts_exactly_its_names::<TrustState>(&text);
        accepts_exactly_its_names::<Severity>(&text);
        accepts_exactly_its_names::<FindingKind>(&text);
        accepts_exactly_its_names::<ProductionGate>(&text);
        accepts_exactly_its_names::<GateResult>(&text);
        accepts_exactly_its_names::<SignalCheck>(&text);
        accepts_exactly_its_names::<PatchLevelCheck>(&text);
        accepts_exactly_its_names::<SignalKind>(&text);
        accepts_exactly_its_names::<SignalValue>(&text);
        accepts_exactly_its_names::<SignalSource>(&text);
        accepts_exactly_its_names::<DeviceState>(&text);
        accepts_exactly_its_names::<LifecycleAction>(&text);
        accepts_exactly_its_names::<DeviceCommand>(&text);
        accepts_exactly_its_names::<SecurityLayer>(&text);
        accepts_exactly_its_names::<LauncherSummary>(&text);
        accepts_exactly_its_names::<Role>(&text);
        accepts_exactly_its_names::<ReleaseState>(&text);
        accepts_exactly_its_names::<InstallOutcome>(&text);
    }
}
