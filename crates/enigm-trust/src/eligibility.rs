//! The one eligibility decision (enigm-docs §20 items 14, 16, 17): may this device do this now?
//! Messaging, calls, network and OTA ask it alike. Any input the action needs that is missing
//! denies.

use std::time::Duration;

use enigm_types::Timestamp;
use serde::{Deserialize, Serialize};

use crate::engine::TrustState;
use crate::lifecycle::DeviceState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProtectedAction {
    SecureMessaging,
    SecureCall,
    Ota,
    Network,
    Enroll,
}

/// A remote-attestation result, as an EAR (IETF RATS) trust tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AttestationOutcome {
    Affirming,
    Warning,
    Contraindicated,
}

/// Why a decision denied. Stable categories, nothing else; each names the input that was
/// missing or failed (`missing_…` for an input the action needs and the decision did not
/// have; the audit log files all of those under `missing_input`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// No record of the device (an unknown handle, or a record that does not decode).
    MissingDevice,
    /// The device's trust policy cannot be read.
    MissingPolicy,
    MissingDeviceState,
    MissingTrustState,
    /// No time of the trust evaluation.
    MissingEvaluation,
    /// No attestation result, where the action needs one.
    MissingAttestation,
    /// No word on the user's session (messaging and calls).
    MissingSession,
    /// No word on the device's setup baseline.
    MissingSetup,
    DeviceNotActive,
    DeviceRevoked,
    DeviceRestricted,
    TrustInactive,
    TrustReviewRequired,
    PostureStale,
    AttestationNotAffirming,
    SessionInvalid,
    AlreadyEnrolled,
    /// A required setup step (strong PIN, terms, network readiness) is not reported complete:
    /// the device is not "ready" (enigm-docs §20 C.27).
    SetupIncomplete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "decision", content = "reason", rename_all = "snake_case")]
pub enum EligibilityDecision {
    Allow,
    Deny(DenyReason),
}

impl DenyReason {
    /// An input the action needs was missing (fail closed).
    pub const fn is_missing_input(self) -> bool {
        matches!(
            self,
            DenyReason::MissingDevice
                | DenyReason::MissingPolicy
                | DenyReason::MissingDeviceState
                | DenyReason::MissingTrustState
                | DenyReason::MissingEvaluation
                | DenyReason::MissingAttestation
                | DenyReason::MissingSession
                | DenyReason::MissingSetup
        )
    }
}

/// Everything a decision may rest on. `None` is a missing input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecisionInput {
    pub action: ProtectedAction,
    pub device_state: Option<DeviceState>,
    pub trust_state: Option<TrustState>,
    /// When the trust state was evaluated.
    pub evaluated_at: Option<Timestamp>,
    pub attestation: Option<AttestationOutcome>,
    /// Whether the device's attestation policy requires an affirming attestation for the
    /// sensitive channels (messaging, calls, network). OTA always requires one.
    pub attestation_required: bool,
    /// Whether the user's session is valid (messaging and calls only).
    pub session_valid: Option<bool>,
    /// Whether every required setup step is reported complete (every action but enrollment).
    pub setup_complete: Option<bool>,
    pub now: Timestamp,
    /// How old an evaluation may be.
    pub max_posture_age: Duration,
}

impl ProtectedAction {
    pub const ALL: [ProtectedAction; 5] = [
        ProtectedAction::SecureMessaging,
        ProtectedAction::SecureCall,
        ProtectedAction::Ota,
        ProtectedAction::Network,
        ProtectedAction::Enroll,
    ];

    fn needs_session(self) -> bool {
        matches!(
            self,
            ProtectedAction::SecureMessaging | ProtectedAction::SecureCall
        )
    }
}

/// Decides. The rules, in order:
/// - enrollment: only a device pending enrollment;
/// - every other action: the device must be "ready" (its setup baseline complete) and trusted (restricted devices keep network access and
///   updates, so that they can recover), with a fresh evaluation that is not `INACTIVE`;
/// - messaging and calls: `PROTECTED` and a valid session — `REVIEW_REQUIRED` is not trusted for
///   sensitive workflows (enigm-docs §6);
/// - OTA, and the other actions when the device's attestation policy says so: an affirming
///   attestation result.
pub fn decide(input: &DecisionInput) -> EligibilityDecision {
    match decide_inner(input) {
        Ok(()) => EligibilityDecision::Allow,
        Err(reason) => EligibilityDecision::Deny(reason),
    }
}

/// What a device's lifecycle state allows, before any other input is looked at (the table in
/// `docs/security.md`, which a test holds to this function):
/// - enrollment only from `PendingEnrollment`;
/// - a `Trusted` device every other action;
/// - a `Restricted` device keeps `network` and `ota` so that it can reach Command and be
///   repaired or updated back into trust, but no messaging or calls;
/// - `Revoked`, `Replaced`, `Retired` and a device not yet enrolled nothing.
pub fn lifecycle_permits(state: DeviceState, action: ProtectedAction) -> Result<(), DenyReason> {
    if action == ProtectedAction::Enroll {
        return match state {
            DeviceState::PendingEnrollment => Ok(()),
            _ => Err(DenyReason::AlreadyEnrolled),
        };
    }
    match state {
        DeviceState::Trusted => Ok(()),
        DeviceState::Restricted if !action.needs_session() => Ok(()),
        DeviceState::Restricted => Err(DenyReason::DeviceRestricted),
        DeviceState::Revoked => Err(DenyReason::DeviceRevoked),
        DeviceState::PendingEnrollment | DeviceState::Replaced | DeviceState::Retired => {
            Err(DenyReason::DeviceNotActive)
        }
    }
}

fn decide_inner(input: &DecisionInput) -> Result<(), DenyReason> {
    let device = input.device_state.ok_or(DenyReason::MissingDeviceState)?;
    if input.action == ProtectedAction::Enroll {
        return lifecycle_permits(device, input.action);
    }
    let trust = input.trust_state.ok_or(DenyReason::MissingTrustState)?;
    let setup_complete = input.setup_complete.ok_or(DenyReason::MissingSetup)?;
    let evaluated_at = input.evaluated_at.ok_or(DenyReason::MissingEvaluation)?;
    let session = if input.action.needs_session() {
        Some(input.session_valid.ok_or(DenyReason::MissingSession)?)
    } else {
        None
    };
    let needs_attestation = input.action == ProtectedAction::Ota || input.attestation_required;
    let attestation = if needs_attestation {
        Some(input.attestation.ok_or(DenyReason::MissingAttestation)?)
    } else {
        None
    };
    lifecycle_permits(device, input.action)?;
    if !setup_complete {
        return Err(DenyReason::SetupIncomplete);
    }
    if evaluated_at > input.now || input.now.duration_since(evaluated_at) > input.max_posture_age {
        return Err(DenyReason::PostureStale);
    }
    match trust {
        TrustState::Inactive => return Err(DenyReason::TrustInactive),
        TrustState::ReviewRequired if input.action.needs_session() => {
            return Err(DenyReason::TrustReviewRequired);
        }
        TrustState::ReviewRequired | TrustState::Protected => {}
    }
    if session == Some(false) {
        return Err(DenyReason::SessionInvalid);
    }
    match attestation {
        None | Some(AttestationOutcome::Affirming) => Ok(()),
        Some(AttestationOutcome::Warning | AttestationOutcome::Contraindicated) => {
            Err(DenyReason::AttestationNotAffirming)
        }
    }
}
