//! The eligibility decision (enigm-docs §20 items 14, 16, 17): table-driven over every action
//! and device state, and properties: a missing required input never allows, a valid session on
//! a device that is not trusted is denied, and a stale or future evaluation is `PostureStale`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::time::Duration;

use enigm_trust::{
    AttestationOutcome, DecisionInput, DenyReason, DeviceState, EligibilityDecision,
    ProtectedAction, TrustState, decide,
};
use enigm_types::Timestamp;
use proptest::prelude::*;

use AttestationOutcome as Att;
use DenyReason as R;
use DeviceState as D;
use EligibilityDecision::{Allow, Deny};
use ProtectedAction as P;
use TrustState as T;

const NOW_MILLIS: i64 = 1_800_000_000_000;
const NOW: Timestamp = Timestamp::from_unix_millis(NOW_MILLIS);
const MAX_POSTURE_AGE: Duration = Duration::from_secs(300);

/// Every input present and in order: a trusted, protected device, evaluated a minute ago, with
/// an affirming attestation and a valid session.
fn valid(action: ProtectedAction) -> DecisionInput {
    DecisionInput {
        action,
        device_state: Some(D::Trusted),
        trust_state: Some(T::Protected),
        evaluated_at: Some(NOW.saturating_sub(Duration::from_secs(60))),
        attestation: Some(Att::Affirming),
        session_valid: Some(true),
        setup_complete: Some(true),
        now: NOW,
        max_posture_age: MAX_POSTURE_AGE,
        attestation_required: false,
    }
}

#[test]
fn every_action_for_every_device_state() {
    use EligibilityDecision as E;
    let na = E::Deny(R::DeviceNotActive);
    let revoked = E::Deny(R::DeviceRevoked);
    let restricted = E::Deny(R::DeviceRestricted);
    let enrolled = E::Deny(R::AlreadyEnrolled);
    #[rustfmt::skip]
    let table: [(ProtectedAction, [EligibilityDecision; 6]); 5] = [
        //                    Pending     Trusted   Restricted  Revoked  Replaced  Retired
        (P::SecureMessaging, [na,         E::Allow, restricted, revoked, na,       na]),
        (P::SecureCall,      [na,         E::Allow, restricted, revoked, na,       na]),
        (P::Ota,             [na,         E::Allow, E::Allow,   revoked, na,       na]),
        (P::Network,         [na,         E::Allow, E::Allow,   revoked, na,       na]),
        (P::Enroll,          [E::Allow,   enrolled, enrolled,   enrolled, enrolled, enrolled]),
    ];
    assert_eq!(table.map(|(action, _)| action), ProtectedAction::ALL);
    for (action, row) in table {
        for (state, want) in DeviceState::ALL.into_iter().zip(row) {
            let input = DecisionInput {
                device_state: Some(state),
                ..valid(action)
            };
            assert_eq!(decide(&input), want, "{action:?} {state}");
        }
    }
}

#[test]
fn every_action_for_every_trust_state() {
    #[rustfmt::skip]
    let table: [(ProtectedAction, [EligibilityDecision; 3]); 5] = [
        //                    Protected  ReviewRequired                 Inactive
        (P::SecureMessaging, [Allow,     Deny(R::TrustReviewRequired), Deny(R::TrustInactive)]),
        (P::SecureCall,      [Allow,     Deny(R::TrustReviewRequired), Deny(R::TrustInactive)]),
        (P::Ota,             [Allow,     Allow,                        Deny(R::TrustInactive)]),
        (P::Network,         [Allow,     Allow,                        Deny(R::TrustInactive)]),
        // Enrollment precedes any evaluation: the trust state is not looked at.
        (P::Enroll,          [Allow,     Allow,                        Allow]),
    ];
    for (action, row) in table {
        for (trust, want) in TrustState::ALL.into_iter().zip(row) {
            let device = if action == P::Enroll {
                D::PendingEnrollment
            } else {
                D::Trusted
            };
            let input = DecisionInput {
                device_state: Some(device),
                trust_state: Some(trust),
                ..valid(action)
            };
            assert_eq!(decide(&input), want, "{action:?} {trust:?}");
        }
    }
    // A restricted device keeps network access and updates while under review.
    for action in [P::Ota, P::Network] {
        let input = DecisionInput {
            device_state: Some(D::Restricted),
            trust_state: Some(T::ReviewRequired),
            ..valid(action)
        };
        assert_eq!(decide(&input), Allow, "{action:?}");
    }
}

#[test]
fn attestation_decides_ota_only_by_default() {
    for (attestation, want) in [
        (Some(Att::Affirming), Allow),
        (Some(Att::Warning), Deny(R::AttestationNotAffirming)),
        (Some(Att::Contraindicated), Deny(R::AttestationNotAffirming)),
        (None, Deny(R::MissingAttestation)),
    ] {
        let input = DecisionInput {
            attestation,
            ..valid(P::Ota)
        };
        assert_eq!(decide(&input), want, "{attestation:?}");
    }
    for action in [P::SecureMessaging, P::SecureCall, P::Network] {
        for attestation in [None, Some(Att::Warning), Some(Att::Contraindicated)] {
            let input = DecisionInput {
                attestation,
                ..valid(action)
            };
            assert_eq!(decide(&input), Allow, "{action:?} {attestation:?}");
        }
    }
}

#[test]
fn a_policy_that_requires_attestation_extends_it_to_the_sensitive_channels() {
    for action in [P::SecureMessaging, P::SecureCall, P::Network] {
        for (attestation, want) in [
            (Some(Att::Affirming), Allow),
            (Some(Att::Warning), Deny(R::AttestationNotAffirming)),
            (Some(Att::Contraindicated), Deny(R::AttestationNotAffirming)),
            (None, Deny(R::MissingAttestation)),
        ] {
            let input = DecisionInput {
                attestation,
                attestation_required: true,
                ..valid(action)
            };
            assert_eq!(decide(&input), want, "{action:?} {attestation:?}");
        }
    }
}

#[test]
fn sessions_decide_messaging_and_calls_only() {
    for action in [P::SecureMessaging, P::SecureCall] {
        for (session_valid, want) in [
            (Some(true), Allow),
            (Some(false), Deny(R::SessionInvalid)),
            (None, Deny(R::MissingSession)),
        ] {
            let input = DecisionInput {
                session_valid,
                ..valid(action)
            };
            assert_eq!(decide(&input), want, "{action:?} {session_valid:?}");
        }
    }
    for action in [P::Ota, P::Network] {
        for session_valid in [None, Some(false)] {
            let input = DecisionInput {
                session_valid,
                ..valid(action)
            };
            assert_eq!(decide(&input), Allow, "{action:?} {session_valid:?}");
        }
    }
}

#[test]
fn posture_age_limits() {
    let one = Duration::from_millis(1);
    let cases = [
        (NOW, Allow),
        (NOW.saturating_sub(MAX_POSTURE_AGE), Allow),
        (
            NOW.saturating_sub(MAX_POSTURE_AGE).saturating_sub(one),
            Deny(R::PostureStale),
        ),
        (
            NOW.saturating_sub(Duration::from_secs(86_400)),
            Deny(R::PostureStale),
        ),
        (NOW.saturating_add(one), Deny(R::PostureStale)),
        (
            NOW.saturating_add(Duration::from_secs(3600)),
            Deny(R::PostureStale),
        ),
        (Timestamp::from_unix_millis(i64::MIN), Deny(R::PostureStale)),
        (Timestamp::from_unix_millis(i64::MAX), Deny(R::PostureStale)),
    ];
    for action in [P::SecureMessaging, P::SecureCall, P::Ota, P::Network] {
        for (evaluated_at, want) in cases {
            let input = DecisionInput {
                evaluated_at: Some(evaluated_at),
                ..valid(action)
            };
            assert_eq!(decide(&input), want, "{action:?} {evaluated_at:?}");
        }
    }
}

#[test]
fn missing_inputs_deny_naming_the_input() {
    for action in ProtectedAction::ALL {
        let input = DecisionInput {
            device_state: None,
            ..valid(action)
        };
        assert_eq!(decide(&input), Deny(R::MissingDeviceState), "{action:?}");
    }
    for action in [P::SecureMessaging, P::SecureCall, P::Ota, P::Network] {
        let no_trust = DecisionInput {
            trust_state: None,
            ..valid(action)
        };
        assert_eq!(decide(&no_trust), Deny(R::MissingTrustState), "{action:?}");
        let no_time = DecisionInput {
            evaluated_at: None,
            ..valid(action)
        };
        assert_eq!(decide(&no_time), Deny(R::MissingEvaluation), "{action:?}");
        let no_setup = DecisionInput {
            setup_complete: None,
            ..valid(action)
        };
        assert_eq!(decide(&no_setup), Deny(R::MissingSetup), "{action:?}");
    }
    // Enrollment needs the device state only.
    let bare = DecisionInput {
        action: P::Enroll,
        device_state: Some(D::PendingEnrollment),
        trust_state: None,
        evaluated_at: None,
        attestation: None,
        session_valid: None,
        setup_complete: None,
        now: NOW,
        max_posture_age: Duration::ZERO,
        attestation_required: false,
    };
    assert_eq!(decide(&bare), Allow);
}

/// Setup baseline (§20 C.27): a device whose required setup steps are not all reported complete
/// is not "ready" and gets no action but enrollment, whatever its trust state.
#[test]
fn a_device_that_is_not_set_up_is_denied_everything_but_enrollment() {
    for action in [P::SecureMessaging, P::SecureCall, P::Ota, P::Network] {
        for trust in TrustState::ALL {
            let input = DecisionInput {
                trust_state: Some(trust),
                setup_complete: Some(false),
                ..valid(action)
            };
            // Setup is decided before the trust state, so the denial names it in every case.
            assert_eq!(
                decide(&input),
                Deny(R::SetupIncomplete),
                "{action:?} {trust:?}"
            );
        }
    }
    let enroll = DecisionInput {
        device_state: Some(D::PendingEnrollment),
        setup_complete: Some(false),
        ..valid(P::Enroll)
    };
    assert_eq!(decide(&enroll), Allow);
}

#[test]
fn decisions_serialise_as_stable_categories() {
    assert_eq!(
        serde_json::to_value(Allow).unwrap(),
        serde_json::json!({"decision": "allow"})
    );
    assert_eq!(
        serde_json::to_value(Deny(R::PostureStale)).unwrap(),
        serde_json::json!({"decision": "deny", "reason": "posture_stale"})
    );
    let reasons = [
        (R::MissingDevice, "missing_device"),
        (R::MissingPolicy, "missing_policy"),
        (R::MissingDeviceState, "missing_device_state"),
        (R::MissingTrustState, "missing_trust_state"),
        (R::MissingEvaluation, "missing_evaluation"),
        (R::MissingAttestation, "missing_attestation"),
        (R::MissingSession, "missing_session"),
        (R::DeviceNotActive, "device_not_active"),
        (R::DeviceRevoked, "device_revoked"),
        (R::DeviceRestricted, "device_restricted"),
        (R::TrustInactive, "trust_inactive"),
        (R::TrustReviewRequired, "trust_review_required"),
        (R::PostureStale, "posture_stale"),
        (R::AttestationNotAffirming, "attestation_not_affirming"),
        (R::SessionInvalid, "session_invalid"),
        (R::AlreadyEnrolled, "already_enrolled"),
    ];
    for (reason, name) in reasons {
        assert_eq!(
            serde_json::to_string(&reason).unwrap(),
            format!("\"{name}\"")
        );
        let decision: EligibilityDecision =
            serde_json::from_value(serde_json::json!({"decision": "deny", "reason": name}))
                .unwrap();
        assert_eq!(decision, Deny(reason));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Decisions match an independent statement of the rules, over every combination of
    /// present, missing and arbitrary inputs.
    #[test]
    fn decisions_match_the_model(input in inputs()) {
        let decision = decide(&input);
        prop_assert_eq!(decision == Allow, model_allows(&input), "{:?} -> {:?}", input, decision);
    }

    /// Item 16: any missing required input denies, never allows.
    #[test]
    fn a_missing_required_input_never_allows(input in inputs()) {
        let needs_posture = input.action != P::Enroll;
        let needs_session = matches!(input.action, P::SecureMessaging | P::SecureCall);
        let missing = input.device_state.is_none()
            || (needs_posture
                && (input.trust_state.is_none()
                    || input.evaluated_at.is_none()
                    || input.setup_complete.is_none()))
            || (needs_session && input.session_valid.is_none())
            || (input.action == P::Ota && input.attestation.is_none());
        let decision = decide(&input);
        if missing {
            prop_assert_ne!(decision, Allow, "{:?}", input);
        }
        if input.device_state.is_none() {
            prop_assert_eq!(decision, Deny(R::MissingDeviceState));
        }
        // A denial for a missing input names one the action needs and the input lacks.
        if let Deny(reason) = decision
            && reason.is_missing_input()
        {
            let lacking = match reason {
                R::MissingDeviceState => input.device_state.is_none(),
                R::MissingTrustState => needs_posture && input.trust_state.is_none(),
                R::MissingEvaluation => needs_posture && input.evaluated_at.is_none(),
                R::MissingSession => needs_session && input.session_valid.is_none(),
                R::MissingSetup => needs_posture && input.setup_complete.is_none(),
                R::MissingAttestation => input.attestation.is_none()
                    && (input.action == P::Ota || input.attestation_required),
                _ => false,
            };
            prop_assert!(lacking, "{:?} named for {:?}", reason, input);
        }
    }

    /// Item 17: a valid session does not make a device that is not trusted eligible.
    #[test]
    fn a_valid_session_on_a_device_that_is_not_trusted_is_denied(
        input in inputs(),
        action in prop::sample::select(vec![P::SecureMessaging, P::SecureCall]),
        state in prop::sample::select(vec![
            D::PendingEnrollment, D::Restricted, D::Revoked, D::Replaced, D::Retired,
        ]),
    ) {
        let input = DecisionInput {
            action,
            device_state: Some(state),
            session_valid: Some(true),
            ..input
        };
        prop_assert!(matches!(decide(&input), Deny(_)));
    }

    /// A trusted device whose evaluation is older than allowed, or dated after now, is denied
    /// for its posture whatever else it shows.
    #[test]
    fn a_stale_or_future_evaluation_is_posture_stale(
        action in prop::sample::select(vec![P::SecureMessaging, P::SecureCall, P::Ota, P::Network]),
        trust in prop::sample::select(TrustState::ALL.to_vec()),
        max_age in 0_u64..=86_400_000,
        past in any::<bool>(),
        beyond in 1_i64..=1_000_000_000,
    ) {
        let max_posture_age = Duration::from_millis(max_age);
        let limit = i64::try_from(max_age).unwrap();
        let at = if past { NOW_MILLIS - limit - beyond } else { NOW_MILLIS + beyond };
        let input = DecisionInput {
            trust_state: Some(trust),
            evaluated_at: Some(Timestamp::from_unix_millis(at)),
            max_posture_age,
            ..valid(action)
        };
        prop_assert_eq!(decide(&input), Deny(R::PostureStale));
    }
}

/// The rules of `decide`, stated as one condition per input.
fn model_allows(input: &DecisionInput) -> bool {
    let Some(device) = input.device_state else {
        return false;
    };
    if input.action == P::Enroll {
        return device == D::PendingEnrollment;
    }
    let sensitive = matches!(input.action, P::SecureMessaging | P::SecureCall);
    let device_ok = device == D::Trusted || (device == D::Restricted && !sensitive);
    let fresh = input.evaluated_at.is_some_and(|at| {
        at.unix_millis() <= NOW_MILLIS
            && i128::from(NOW_MILLIS) - i128::from(at.unix_millis())
                <= i128::try_from(input.max_posture_age.as_millis()).unwrap()
    });
    let trust_ok = match input.trust_state {
        Some(T::Protected) => true,
        Some(T::ReviewRequired) => !sensitive,
        Some(T::Inactive) | None => false,
    };
    let session_ok = !sensitive || input.session_valid == Some(true);
    let attestation_ok = input.action != P::Ota || input.attestation == Some(Att::Affirming);
    let ready = input.setup_complete == Some(true);
    device_ok && ready && fresh && trust_ok && session_ok && attestation_ok
}

fn inputs() -> impl Strategy<Value = DecisionInput> {
    let evaluated_at = prop_oneof![
        4 => -600_000_i64..=0,
        1 => -10_000_000_i64..=10_000_000,
    ]
    .prop_map(|offset| Timestamp::from_unix_millis(NOW_MILLIS + offset));
    (
        prop::sample::select(ProtectedAction::ALL.to_vec()),
        proptest::option::weighted(0.8, prop::sample::select(DeviceState::ALL.to_vec())),
        proptest::option::weighted(0.8, prop::sample::select(TrustState::ALL.to_vec())),
        proptest::option::weighted(0.8, evaluated_at),
        proptest::option::weighted(
            0.8,
            prop::sample::select(vec![Att::Affirming, Att::Warning, Att::Contraindicated]),
        ),
        proptest::option::weighted(0.8, any::<bool>()),
        proptest::option::weighted(0.9, prop::bool::weighted(0.9)),
        0_u64..=900_000,
    )
        .prop_map(
            |(
                action,
                device_state,
                trust_state,
                evaluated_at,
                attestation,
                session_valid,
                setup_complete,
                age,
            )| {
                DecisionInput {
                    action,
                    device_state,
                    trust_state,
                    evaluated_at,
                    attestation,
                    session_valid,
                    setup_complete,
                    now: NOW,
                    max_posture_age: Duration::from_millis(age),
                    attestation_required: false,
                }
            },
        )
}

/// The lifecycle table of `docs/security.md` ("What each lifecycle state allows") is the one
/// `lifecycle_permits` decides: every state, every action.
#[test]
fn the_documented_lifecycle_table_is_the_rule() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/security.md");
    let docs = std::fs::read_to_string(&path).unwrap();
    let start = docs
        .find("What each lifecycle state allows")
        .expect("docs/security.md has the lifecycle table");
    let rows: Vec<Vec<String>> = docs[start..]
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            line.trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().trim_matches('`').to_owned())
                .collect()
        })
        .collect();
    let header = &rows[0];
    let actions: Vec<ProtectedAction> = header[1..]
        .iter()
        .map(|name| serde_json::from_value(serde_json::json!(name)).unwrap())
        .collect();
    assert_eq!(actions.len(), ProtectedAction::ALL.len());
    let mut states_seen = 0;
    for row in &rows[2..] {
        let state: DeviceState = serde_json::from_value(serde_json::json!(row[0])).unwrap();
        states_seen += 1;
        for (action, cell) in actions.iter().zip(&row[1..]) {
            let documented = if cell == "allow" {
                Ok(())
            } else {
                let reason = cell.strip_prefix("deny: ").unwrap().trim_matches('`');
                Err(serde_json::from_value::<DenyReason>(serde_json::json!(reason)).unwrap())
            };
            assert_eq!(
                enigm_trust::eligibility::lifecycle_permits(state, *action),
                documented,
                "{state:?} {action:?}"
            );
        }
    }
    assert_eq!(states_seen, 6);
}
