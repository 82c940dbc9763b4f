//! Fuzzes the JSON that Command parses from outside: every request body the server accepts from
//! administrators and devices, the approval action and rule stored with an approval request,
//! and the canonical audit event JSON read back from the audit log.
//!
//! Properties checked on every input:
//!
//! - parsing never panics;
//! - a value that parses re-serialises to JSON that parses again: to an equal value where the
//!   type implements `PartialEq`, otherwise (request types hold secrets and do not compare) to a
//!   value that serialises to the same JSON;
//! - an approval rule built from a rule-change request, as the server builds it, is normalised
//!   (bounded count, sorted and deduplicated roles) and round-trips;
//! - an audit event's canonical bytes parse back to the same event and are a fixed point.

#![no_main]

use std::any::type_name;
use std::fmt::Debug;

use enigm_api::attestation::{AttestRequest, ChallengeRequest};
use enigm_api::devices::{
    CheckInRequest, CommandAckRequest, CreateEnrollmentTokenRequest, EnrollRequest,
    LifecycleRequest,
};
use enigm_api::eligibility::EligibilityRequest;
use enigm_api::releases::{CreateReleaseRequest, InstallReportRequest};
use enigm_api::rollouts::{
    RolloutActionRequest, RolloutPlanRequest, UpdateCheckRequest, VersionPinRequest,
};
use enigm_api::{
    ApprovalRuleChangeRequest, ChangePasswordRequest, CreateUserRequest, LegalHoldRequest,
    LoginRequest, RoleGrantRequest, SetPinRequest, TotpConfirmRequest,
};
use enigm_types::{ApprovalAction, ApprovalRule, AuditEvent};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fuzz_target!(|data: &[u8]| {
    // Request bodies, in the order of the routes that read them.
    json_is_a_fixed_point::<LoginRequest>(data);
    json_is_a_fixed_point::<CreateUserRequest>(data);
    json_is_a_fixed_point::<ChangePasswordRequest>(data);
    json_is_a_fixed_point::<SetPinRequest>(data);
    json_is_a_fixed_point::<TotpConfirmRequest>(data);
    json_is_a_fixed_point::<RoleGrantRequest>(data);
    if let Some(request) = json_is_a_fixed_point::<ApprovalRuleChangeRequest>(data) {
        rule_from_request(&request);
    }
    json_is_a_fixed_point::<LegalHoldRequest>(data);
    // Devices and their administration.
    json_is_a_fixed_point::<CreateEnrollmentTokenRequest>(data);
    json_is_a_fixed_point::<EnrollRequest>(data);
    json_is_a_fixed_point::<CheckInRequest>(data);
    json_is_a_fixed_point::<LifecycleRequest>(data);
    json_is_a_fixed_point::<CommandAckRequest>(data);
    json_is_a_fixed_point::<EligibilityRequest>(data);
    json_is_a_fixed_point::<ChallengeRequest>(data);
    json_is_a_fixed_point::<AttestRequest>(data);
    // OTA releases and what devices report of them.
    json_is_a_fixed_point::<CreateReleaseRequest>(data);
    json_is_a_fixed_point::<InstallReportRequest>(data);
    json_is_a_fixed_point::<RolloutPlanRequest>(data);
    json_is_a_fixed_point::<RolloutActionRequest>(data);
    json_is_a_fixed_point::<VersionPinRequest>(data);
    json_is_a_fixed_point::<UpdateCheckRequest>(data);

    // Stored JSON, read back from the database.
    round_trips_to_equal::<ApprovalAction>(data);
    round_trips_to_equal::<ApprovalRule>(data);
    if let Some(event) = round_trips_to_equal::<AuditEvent>(data) {
        canonical_bytes_round_trip(&event);
    }
});

/// For types without `PartialEq`: parse, serialise, parse again and serialise again; both
/// serialisations must be the same bytes.
fn json_is_a_fixed_point<T: Serialize + DeserializeOwned>(data: &[u8]) -> Option<T> {
    let value: T = serde_json::from_slice(data).ok()?;
    let json = to_json(&value);
    let again: T = reparse(&json);
    assert_eq!(
        to_json(&again),
        json,
        "{}: re-serialising a parsed value changed it",
        type_name::<T>()
    );
    Some(value)
}

/// For types with `PartialEq`: parse, serialise, parse again; the two values must be equal.
fn round_trips_to_equal<T: Serialize + DeserializeOwned + PartialEq + Debug>(
    data: &[u8],
) -> Option<T> {
    let value: T = serde_json::from_slice(data).ok()?;
    let again: T = reparse(&to_json(&value));
    assert_eq!(
        again,
        value,
        "{}: JSON round trip changed the value",
        type_name::<T>()
    );
    Some(value)
}

/// What the server does with a rule-change request: build the rule through its constructor.
fn rule_from_request(request: &ApprovalRuleChangeRequest) {
    let Ok(rule) = ApprovalRule::new(request.required_approvals, request.approver_roles.clone())
    else {
        return;
    };
    assert!((1..=ApprovalRule::MAX_REQUIRED_APPROVALS).contains(&rule.required_approvals()));
    let roles = rule.approver_roles();
    assert!(!roles.is_empty(), "rule without approver roles: {rule:?}");
    assert!(
        roles.windows(2).all(|pair| matches!(pair, [a, b] if a < b)),
        "approver roles not sorted and deduplicated: {rule:?}"
    );
    let again: ApprovalRule = reparse(&to_json(&rule));
    assert_eq!(
        again, rule,
        "ApprovalRule: JSON round trip changed the rule"
    );
}

/// The audit log commits to `canonical_bytes`; reading them back must give the same event, whose
/// canonical bytes are again the same.
fn canonical_bytes_round_trip(event: &AuditEvent) {
    let canonical = event.canonical_bytes();
    assert!(!canonical.is_empty(), "empty canonical bytes for {event:?}");
    let back: AuditEvent = reparse(&canonical);
    assert_eq!(
        &back, event,
        "canonical bytes do not parse back to the event"
    );
    assert_eq!(
        back.canonical_bytes(),
        canonical,
        "canonical bytes are not a fixed point"
    );
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("serialising a parsed value cannot fail")
}

fn reparse<T: DeserializeOwned>(json: &[u8]) -> T {
    serde_json::from_slice(json).unwrap_or_else(|error| {
        panic!(
            "{}: own serialisation does not parse: {error}: {}",
            type_name::<T>(),
            String::from_utf8_lossy(json)
        )
    })
}
