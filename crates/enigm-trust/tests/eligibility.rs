//! The one decision function (enigm-docs §20 items 14, 16, 17): table-driven over every action
//! and device state, and properties: a missing required input never allows, a valid session on
//! a device that is not trusted is denied, and a stale or future evaluation is `PostureStale`.
//! Actor, resource, policy and integrity inputs are decided here too.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::time::Duration;

use enigm_trust::{
    Action, AttestationOutcome, DecisionActor, DecisionInput, DecisionPolicy, DenyReason,
    DeviceRequest, DeviceState, EligibilityDecision, IntegrityState, ProtectedAction,
    ResourceCategory, TrustState, decide,
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

/// The state in which a device may do the action at all: pending for enrollment, else trusted.
fn usual_state(action: ProtectedAction) -> DeviceState {
    if action == P::Enroll {
        D::PendingEnrollment
    } else {
        D::Trusted
    }
}

const POLICY: DecisionPolicy = DecisionPolicy {
    max_posture_age: MAX_POSTURE_AGE,
    attestation_required: false,
};

/// Every input present and in order: an operator asks about a trusted, protected device,
/// evaluated a minute ago, with an affirming attestation, a valid session, its policy known and
/// no contradiction, for the action's usual resource.
fn valid(action: ProtectedAction) -> DecisionInput {
    DecisionInput {
        actor: Some(DecisionActor::Operator),
        action: Action::Protected(action),
        resource: Some(ResourceCategory::default_for(action)),
        device_state: Some(D::Trusted),
        trust_state: Some(T::Protected),
        evaluated_at: Some(NOW.saturating_sub(Duration::from_secs(60))),
        attestation: Some(Att::Affirming),
        session_valid: Some(true),
        setup_complete: Some(true),
        policy: Some(POLICY),
        integrity: Some(IntegrityState::Consistent),
        now: NOW,
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
            let device = usual_state(action);
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
                policy: Some(DecisionPolicy {
                    attestation_required: true,
                    ..POLICY
                }),
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
    type Without = fn(DecisionInput) -> DecisionInput;
    // What every action needs, then what every action but enrollment needs.
    #[rustfmt::skip]
    let everyone: [(Without, DenyReason); 3] = [
        (|input| DecisionInput { actor: None, ..input }, R::MissingActor),
        (|input| DecisionInput { device_state: None, ..input }, R::MissingDeviceState),
        (|input| DecisionInput { resource: None, ..input }, R::MissingResource),
    ];
    #[rustfmt::skip]
    let but_enrollment: [(Without, DenyReason); 5] = [
        (|input| DecisionInput { trust_state: None, ..input }, R::MissingTrustState),
        (|input| DecisionInput { evaluated_at: None, ..input }, R::MissingEvaluation),
        (|input| DecisionInput { setup_complete: None, ..input }, R::MissingSetup),
        (|input| DecisionInput { policy: None, ..input }, R::MissingPolicy),
        (|input| DecisionInput { integrity: None, ..input }, R::MissingIntegrity),
    ];
    for action in ProtectedAction::ALL {
        for (without, reason) in everyone {
            assert_eq!(decide(&without(valid(action))), Deny(reason), "{action:?}");
        }
    }
    for action in [P::SecureMessaging, P::SecureCall, P::Ota, P::Network] {
        for (without, reason) in but_enrollment {
            assert_eq!(decide(&without(valid(action))), Deny(reason), "{action:?}");
        }
    }
    // Enrollment needs who asks, the device state and the resource only.
    let bare = DecisionInput {
        action: Action::Protected(P::Enroll),
        resource: Some(ResourceCategory::Enrollment),
        ..DecisionInput::device_request(DeviceRequest::CheckIn, D::PendingEnrollment, NOW)
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
        (R::MissingActor, "missing_actor"),
        (R::MissingResource, "missing_resource"),
        (R::MissingIntegrity, "missing_integrity"),
        (R::ActorNotPermitted, "actor_not_permitted"),
        (R::ResourceMismatch, "resource_mismatch"),
        (R::IntegrityContradicted, "integrity_contradicted"),
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
        let needs = Needs::of(&input);
        let missing = input.actor.is_none()
            || input.device_state.is_none()
            || input.resource.is_none()
            || (needs.policy && input.policy.is_none())
            || (needs.posture
                && (input.trust_state.is_none()
                    || input.evaluated_at.is_none()
                    || input.setup_complete.is_none()
                    || input.integrity.is_none()))
            || (needs.session && input.session_valid.is_none())
            || (needs.os_image && input.attestation.is_none());
        let decision = decide(&input);
        if missing {
            prop_assert_ne!(decision, Allow, "{:?}", input);
        }
        if input.actor.is_none() {
            prop_assert_eq!(decision, Deny(R::MissingActor));
        }
        // A denial for a missing input names one the action needs and the input lacks.
        if let Deny(reason) = decision
            && reason.is_missing_input()
        {
            let lacking = match reason {
                R::MissingActor => input.actor.is_none(),
                R::MissingDeviceState => input.device_state.is_none(),
                R::MissingResource => input.resource.is_none(),
                R::MissingPolicy => needs.policy && input.policy.is_none(),
                R::MissingTrustState => needs.posture && input.trust_state.is_none(),
                R::MissingEvaluation => needs.posture && input.evaluated_at.is_none(),
                R::MissingSetup => needs.posture && input.setup_complete.is_none(),
                R::MissingIntegrity => needs.posture && input.integrity.is_none(),
                R::MissingSession => needs.session && input.session_valid.is_none(),
                R::MissingAttestation => input.attestation.is_none()
                    && (needs.os_image
                        || (needs.posture
                            && input.policy.is_some_and(|policy| policy.attestation_required))),
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
            actor: Some(DecisionActor::Operator),
            action: Action::Protected(action),
            resource: Some(ResourceCategory::Channel),
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
            policy: Some(DecisionPolicy { max_posture_age, ..POLICY }),
            ..valid(action)
        };
        prop_assert_eq!(decide(&input), Deny(R::PostureStale));
    }
}

/// Which inputs an action needs, stated apart from `decide`.
struct Needs {
    policy: bool,
    /// Trust state, its time, setup and integrity.
    posture: bool,
    session: bool,
    /// An OS image: an attestation always.
    os_image: bool,
}

impl Needs {
    fn of(input: &DecisionInput) -> Needs {
        let protected = match input.action {
            Action::Protected(action) => Some(action),
            Action::Device(_) => None,
        };
        let fits = match (protected, input.resource) {
            (Some(action), Some(resource)) => action.permits_resource(resource),
            (None, Some(resource)) => resource == ResourceCategory::DeviceRecord,
            (_, None) => false,
        };
        let policy = fits && protected.is_some_and(|action| action != P::Enroll);
        let bundle = input.resource == Some(ResourceCategory::PolicyBundle);
        Needs {
            policy,
            posture: policy && !bundle,
            session: policy && matches!(protected, Some(P::SecureMessaging | P::SecureCall)),
            os_image: policy && input.resource == Some(ResourceCategory::OsImage),
        }
    }
}

/// The rules of `decide`, stated as one condition per input.
fn model_allows(input: &DecisionInput) -> bool {
    let (Some(actor), Some(device), Some(resource)) =
        (input.actor, input.device_state, input.resource)
    else {
        return false;
    };
    let action = match input.action {
        Action::Device(_) => {
            let state_ok = if input.action == Action::Device(DeviceRequest::LifecycleCommand) {
                device != D::PendingEnrollment
            } else {
                matches!(device, D::Trusted | D::Restricted)
            };
            return resource == ResourceCategory::DeviceRecord
                && actor == DecisionActor::Device
                && state_ok;
        }
        Action::Protected(action) => action,
    };
    if !action.permits_resource(resource) {
        return false;
    }
    if action == P::Enroll {
        return device == D::PendingEnrollment;
    }
    let Some(policy) = input.policy else {
        return false;
    };
    let sensitive = matches!(action, P::SecureMessaging | P::SecureCall);
    let device_ok = device == D::Trusted || (device == D::Restricted && !sensitive);
    if resource == ResourceCategory::PolicyBundle {
        return device_ok;
    }
    let fresh = input.evaluated_at.is_some_and(|at| {
        at.unix_millis() <= NOW_MILLIS
            && i128::from(NOW_MILLIS) - i128::from(at.unix_millis())
                <= i128::try_from(policy.max_posture_age.as_millis()).unwrap()
    });
    let trust_ok = match input.trust_state {
        Some(T::Protected) => true,
        Some(T::ReviewRequired) => !sensitive,
        Some(T::Inactive) | None => false,
    };
    let session_ok = !sensitive || input.session_valid == Some(true);
    let attestation_needed = resource == ResourceCategory::OsImage || policy.attestation_required;
    let attestation_ok = !attestation_needed || input.attestation == Some(Att::Affirming);
    let ready = input.setup_complete == Some(true);
    let consistent = input.integrity == Some(IntegrityState::Consistent);
    device_ok && ready && fresh && consistent && trust_ok && session_ok && attestation_ok
}

fn inputs() -> impl Strategy<Value = DecisionInput> {
    let evaluated_at = prop_oneof![
        4 => -600_000_i64..=0,
        1 => -10_000_000_i64..=10_000_000,
    ]
    .prop_map(|offset| Timestamp::from_unix_millis(NOW_MILLIS + offset));
    let action = prop_oneof![
        4 => prop::sample::select(ProtectedAction::ALL.to_vec()).prop_map(Action::Protected),
        1 => prop::sample::select(DeviceRequest::ALL.to_vec()).prop_map(Action::Device),
    ];
    let resources = ResourceCategory::ALL.to_vec();
    let actor = prop::sample::select(vec![
        DecisionActor::Device,
        DecisionActor::Operator,
        DecisionActor::Command,
    ]);
    let policy =
        (0_u64..=900_000, prop::bool::weighted(0.3)).prop_map(|(age, required)| DecisionPolicy {
            max_posture_age: Duration::from_millis(age),
            attestation_required: required,
        });
    let integrity = prop::sample::select(vec![
        IntegrityState::Consistent,
        IntegrityState::Consistent,
        IntegrityState::Contradicted,
    ]);
    let record = (
        proptest::option::weighted(0.8, prop::sample::select(DeviceState::ALL.to_vec())),
        proptest::option::weighted(0.8, prop::sample::select(TrustState::ALL.to_vec())),
        proptest::option::weighted(0.8, evaluated_at),
        proptest::option::weighted(0.9, prop::bool::weighted(0.9)),
    );
    (
        (
            proptest::option::weighted(0.9, actor),
            action,
            // The resource is the action's usual one most of the time, else any.
            proptest::option::weighted(
                0.9,
                (prop::bool::weighted(0.7), prop::sample::select(resources)),
            ),
        ),
        record,
        proptest::option::weighted(
            0.8,
            prop::sample::select(vec![Att::Affirming, Att::Warning, Att::Contraindicated]),
        ),
        proptest::option::weighted(0.8, any::<bool>()),
        proptest::option::weighted(0.9, policy),
        proptest::option::weighted(0.9, integrity),
    )
        .prop_map(
            |(
                (actor, action, resource),
                (device_state, trust_state, evaluated_at, setup_complete),
                attestation,
                session_valid,
                policy,
                integrity,
            )| {
                let resource = resource.map(|(usual, any)| match (usual, action) {
                    (true, Action::Protected(action)) => ResourceCategory::default_for(action),
                    (true, Action::Device(_)) => ResourceCategory::DeviceRecord,
                    (false, _) => any,
                });
                DecisionInput {
                    actor,
                    action,
                    resource,
                    device_state,
                    trust_state,
                    evaluated_at,
                    attestation,
                    session_valid,
                    setup_complete,
                    policy,
                    integrity,
                    now: NOW,
                }
            },
        )
}

/// The lifecycle table of `docs/security.md` ("What each lifecycle state allows") is the one
/// `lifecycle_permits` decides: every state, every action and every device request.
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
    let actions: Vec<Action> = header[1..]
        .iter()
        .map(|name| {
            serde_json::from_value::<ProtectedAction>(serde_json::json!(name))
                .map(Action::Protected)
                .or_else(|_| {
                    serde_json::from_value::<DeviceRequest>(serde_json::json!(name))
                        .map(Action::Device)
                })
                .unwrap()
        })
        .collect();
    assert_eq!(
        actions.len(),
        ProtectedAction::ALL.len() + DeviceRequest::ALL.len()
    );
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

/// A device's requests about itself (check-in, attestation, install reports) need the device as
/// the actor, its own record as the resource, and a trusted or restricted lifecycle state (its
/// lifecycle commands any enrolled state); nothing else is looked at. The check-in writer's
/// states are the same table.
#[test]
fn device_requests_are_the_devices_own_and_follow_the_lifecycle() {
    for request in DeviceRequest::ALL {
        for state in DeviceState::ALL {
            let want = match (request, state) {
                (DeviceRequest::LifecycleCommand, D::PendingEnrollment) => Deny(R::DeviceNotActive),
                // A revoked or lost device must still be able to obey a wipe.
                (DeviceRequest::LifecycleCommand, _) => Allow,
                (_, D::Trusted | D::Restricted) => Allow,
                (_, D::Revoked) => Deny(R::DeviceRevoked),
                (_, D::PendingEnrollment | D::Replaced | D::Retired) => Deny(R::DeviceNotActive),
            };
            let input = DecisionInput::device_request(request, state, NOW);
            assert_eq!(decide(&input), want, "{request:?} {state:?}");
            for actor in [DecisionActor::Operator, DecisionActor::Command] {
                let input = DecisionInput {
                    actor: Some(actor),
                    ..input
                };
                assert_eq!(decide(&input), Deny(R::ActorNotPermitted), "{actor:?}");
            }
            let elsewhere = DecisionInput {
                resource: Some(ResourceCategory::OsImage),
                ..input
            };
            assert_eq!(decide(&elsewhere), Deny(R::ResourceMismatch));
        }
        let unknown = DecisionInput {
            device_state: None,
            ..DecisionInput::device_request(request, D::Trusted, NOW)
        };
        assert_eq!(decide(&unknown), Deny(R::MissingDeviceState));
    }
    for request in [
        DeviceRequest::CheckIn,
        DeviceRequest::Attest,
        DeviceRequest::InstallReport,
    ] {
        assert_eq!(
            enigm_trust::states_permitting(request),
            vec![D::Trusted, D::Restricted]
        );
    }
}

/// Each action is on its own kinds of resource; any other is `resource_mismatch`, whatever
/// else the input shows.
#[test]
fn a_resource_the_action_is_not_on_is_denied() {
    for action in ProtectedAction::ALL {
        for resource in ResourceCategory::ALL {
            let device = usual_state(action);
            let input = DecisionInput {
                resource: Some(resource),
                device_state: Some(device),
                ..valid(action)
            };
            let want = if action.permits_resource(resource) {
                Allow
            } else {
                Deny(R::ResourceMismatch)
            };
            assert_eq!(decide(&input), want, "{action:?} {resource:?}");
        }
    }
    assert!(P::Ota.permits_resource(ResourceCategory::PolicyBundle));
    assert!(!P::Network.permits_resource(ResourceCategory::OsImage));
}

/// An attested claim that contradicts the device's report denies every protected action on
/// it, naming the contradiction (even while the trust state still says otherwise).
#[test]
fn a_contradicted_report_is_denied_for_integrity() {
    for action in [P::SecureMessaging, P::SecureCall, P::Ota, P::Network] {
        let input = DecisionInput {
            integrity: Some(IntegrityState::Contradicted),
            ..valid(action)
        };
        assert_eq!(decide(&input), Deny(R::IntegrityContradicted), "{action:?}");
    }
}

/// The device's policy bundle is offered on the lifecycle state and the policy alone: an
/// INACTIVE, unattested, contradicted or not-yet-ready device still gets the bundle that may
/// bring it back, but a revoked or retired one does not, and an unknown policy denies.
#[test]
fn a_policy_bundle_needs_only_the_lifecycle_and_the_policy() {
    let bundle = |state: DeviceState| DecisionInput {
        actor: Some(DecisionActor::Command),
        action: Action::Protected(P::Ota),
        resource: Some(ResourceCategory::PolicyBundle),
        device_state: Some(state),
        trust_state: Some(T::Inactive),
        evaluated_at: None,
        attestation: Some(Att::Contraindicated),
        session_valid: None,
        setup_complete: Some(false),
        policy: Some(POLICY),
        integrity: Some(IntegrityState::Contradicted),
        now: NOW,
    };
    assert_eq!(decide(&bundle(D::Trusted)), Allow);
    assert_eq!(decide(&bundle(D::Restricted)), Allow);
    assert_eq!(decide(&bundle(D::Revoked)), Deny(R::DeviceRevoked));
    assert_eq!(decide(&bundle(D::Retired)), Deny(R::DeviceNotActive));
    let unknown_policy = DecisionInput {
        policy: None,
        ..bundle(D::Trusted)
    };
    assert_eq!(decide(&unknown_policy), Deny(R::MissingPolicy));
    // The OS image is not: it needs everything.
    let image = DecisionInput {
        resource: Some(ResourceCategory::OsImage),
        ..bundle(D::Trusted)
    };
    assert_ne!(decide(&image), Allow);
}
