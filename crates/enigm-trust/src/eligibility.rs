//! The one decision function (enigm-docs §20 items 14, 16, 17): may this actor do this action,
//! on this kind of resource, for this device, now? Messaging, calls, network and OTA ask it
//! through the eligibility API; Command's own gates on a device's requests (check-in,
//! attestation, install reports) and on what it offers a device (its policy bundle) ask it too.
//! Any input the action needs that is missing denies, naming the input.

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

/// A request a device makes of Command about itself, signed with its device key. What each
/// lifecycle state allows of these is the same table as for the protected actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceRequest {
    /// Report posture and be evaluated.
    CheckIn,
    /// Ask for an attestation challenge, or answer one.
    Attest,
    /// Report the outcome of an update.
    InstallReport,
    /// Fetch or acknowledge a lifecycle command (retire, wipe).
    LifecycleCommand,
}

impl DeviceRequest {
    pub const ALL: [DeviceRequest; 4] = [
        DeviceRequest::CheckIn,
        DeviceRequest::Attest,
        DeviceRequest::InstallReport,
        DeviceRequest::LifecycleCommand,
    ];
}

/// What is decided: a protected action, or a device's request about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Protected(ProtectedAction),
    Device(DeviceRequest),
}

impl From<ProtectedAction> for Action {
    fn from(action: ProtectedAction) -> Self {
        Action::Protected(action)
    }
}

impl From<DeviceRequest> for Action {
    fn from(request: DeviceRequest) -> Self {
        Action::Device(request)
    }
}

/// Who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionActor {
    /// The device itself, authenticated by its device key.
    Device,
    /// An administrator or a service account through the eligibility API (the app, network and
    /// OTA sides), asking about a device.
    Operator,
    /// Command's own workflow (what it offers a device).
    Command,
}

/// The category of what the action is on: never the thing itself (no content, no destination).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceCategory {
    /// A messaging conversation or a call.
    Channel,
    /// An OS image release.
    OsImage,
    /// The device's group policy bundle.
    PolicyBundle,
    /// Network access through the device's network policy.
    Network,
    /// The enrollment of a new device.
    Enrollment,
    /// The device's own record at Command (its check-ins, attestations and install reports).
    DeviceRecord,
}

impl ResourceCategory {
    pub const ALL: [ResourceCategory; 6] = [
        ResourceCategory::Channel,
        ResourceCategory::OsImage,
        ResourceCategory::PolicyBundle,
        ResourceCategory::Network,
        ResourceCategory::Enrollment,
        ResourceCategory::DeviceRecord,
    ];

    /// What an action is on when the caller does not say.
    pub const fn default_for(action: ProtectedAction) -> ResourceCategory {
        match action {
            ProtectedAction::SecureMessaging | ProtectedAction::SecureCall => {
                ResourceCategory::Channel
            }
            ProtectedAction::Ota => ResourceCategory::OsImage,
            ProtectedAction::Network => ResourceCategory::Network,
            ProtectedAction::Enroll => ResourceCategory::Enrollment,
        }
    }
}

/// What the device's effective policies say that the decision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecisionPolicy {
    /// How old a trust evaluation may be (the trust policy's maximum signal age).
    pub max_posture_age: Duration,
    /// Whether the attestation policy requires an affirming attestation for the sensitive
    /// channels (messaging, calls, network). OS images always need one.
    pub attestation_required: bool,
}

/// Whether what the device reports agrees with what its attestation proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IntegrityState {
    /// No attested claim contradicts the device's report (or there is no attestation to
    /// contradict it; the attestation input says whether one affirms).
    Consistent,
    /// An attested claim contradicts the device's report: its report is shown false.
    Contradicted,
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
    /// Nobody is named as asking.
    MissingActor,
    /// No category of what the action is on.
    MissingResource,
    /// No word on whether the device's report agrees with its attestation.
    MissingIntegrity,
    /// This actor may not ask for this action (a device's request made by anyone but the
    /// device).
    ActorNotPermitted,
    /// The resource is not one this action is on (an OS image for messaging, say).
    ResourceMismatch,
    /// An attested claim contradicts the device's report.
    IntegrityContradicted,
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
                | DenyReason::MissingActor
                | DenyReason::MissingResource
                | DenyReason::MissingIntegrity
        )
    }
}

/// Everything a decision may rest on: actor, action, resource, the device record (lifecycle,
/// trust state and its time, setup), policy and integrity inputs, attestation and session.
/// `None` is a missing input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecisionInput {
    pub actor: Option<DecisionActor>,
    pub action: Action,
    pub resource: Option<ResourceCategory>,
    pub device_state: Option<DeviceState>,
    pub trust_state: Option<TrustState>,
    /// When the trust state was evaluated.
    pub evaluated_at: Option<Timestamp>,
    pub attestation: Option<AttestationOutcome>,
    /// Whether the user's session is valid (messaging and calls only).
    pub session_valid: Option<bool>,
    /// Whether every required setup step is reported complete (every action but enrollment).
    pub setup_complete: Option<bool>,
    /// The device's effective policies, as far as the decision needs them.
    pub policy: Option<DecisionPolicy>,
    pub integrity: Option<IntegrityState>,
    pub now: Timestamp,
}

impl DecisionInput {
    /// Who asks, what, on what, for a device in which state: every other input absent.
    const fn bare(
        actor: DecisionActor,
        action: Action,
        resource: ResourceCategory,
        device_state: DeviceState,
        now: Timestamp,
    ) -> DecisionInput {
        DecisionInput {
            actor: Some(actor),
            action,
            resource: Some(resource),
            device_state: Some(device_state),
            trust_state: None,
            evaluated_at: None,
            attestation: None,
            session_valid: None,
            setup_complete: None,
            policy: None,
            integrity: None,
            now,
        }
    }

    /// A device's request about itself: everything it needs is who asks and the lifecycle
    /// state, so every other input is absent.
    pub const fn device_request(
        request: DeviceRequest,
        device_state: DeviceState,
        now: Timestamp,
    ) -> DecisionInput {
        Self::bare(
            DecisionActor::Device,
            Action::Device(request),
            ResourceCategory::DeviceRecord,
            device_state,
            now,
        )
    }

    /// Command offering a device its group's policy bundle: the lifecycle state and the
    /// policy are all it needs (see `decide`), so the posture inputs are absent.
    pub const fn policy_bundle_offer(
        device_state: DeviceState,
        policy: DecisionPolicy,
        now: Timestamp,
    ) -> DecisionInput {
        DecisionInput {
            policy: Some(policy),
            ..Self::bare(
                DecisionActor::Command,
                Action::Protected(ProtectedAction::Ota),
                ResourceCategory::PolicyBundle,
                device_state,
                now,
            )
        }
    }
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

    /// The resources this action can be on.
    pub const fn permits_resource(self, resource: ResourceCategory) -> bool {
        matches!(
            (self, resource),
            (
                ProtectedAction::SecureMessaging | ProtectedAction::SecureCall,
                ResourceCategory::Channel
            ) | (
                ProtectedAction::Ota,
                ResourceCategory::OsImage | ResourceCategory::PolicyBundle
            ) | (ProtectedAction::Network, ResourceCategory::Network)
                | (ProtectedAction::Enroll, ResourceCategory::Enrollment)
        )
    }
}

/// The lifecycle states in which a device's request is allowed at all: what Command's own
/// transactions check again when they write (the check-in writer), derived from the one table.
pub fn states_permitting(request: DeviceRequest) -> Vec<DeviceState> {
    DeviceState::ALL
        .into_iter()
        .filter(|state| lifecycle_permits(*state, Action::Device(request)).is_ok())
        .collect()
}

/// Decides. The rules, in order:
/// - nobody asking, no lifecycle state, no resource: denied, naming the input;
/// - the resource must be one the action is on; a device's request may be made only by the
///   device, and needs nothing but its lifecycle state;
/// - enrollment: only a device pending enrollment;
/// - the device's policy bundle (OTA of a `policy-bundle`): the lifecycle state and the
///   policy only. A bundle never raises trust (it sets what is collected and how often), and
///   it is how a device out of trust is brought back, so trust, setup and attestation do not
///   hold it back;
/// - every other action: the device must be "ready" (its setup baseline complete) and
///   trusted (restricted devices keep network access and updates, so that they can recover),
///   with a fresh evaluation that is not `INACTIVE`, and no attested claim contradicting its
///   report;
/// - messaging and calls: `PROTECTED` and a valid session — `REVIEW_REQUIRED` is not trusted for
///   sensitive workflows (enigm-docs §6);
/// - OS images, and the other actions when the device's attestation policy says so: an
///   affirming attestation result.
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
/// - `Revoked`, `Replaced`, `Retired` and a device not yet enrolled nothing;
/// - a device's requests about itself (check-in, attestation, install reports) as `network`:
///   a `Trusted` or `Restricted` device only;
/// - its lifecycle commands (fetch and acknowledge) every enrolled device, revoked, replaced
///   and retired ones too: a lost or revoked device must still be able to obey a wipe.
pub fn lifecycle_permits(state: DeviceState, action: Action) -> Result<(), DenyReason> {
    let action = match action {
        Action::Protected(ProtectedAction::Enroll) => {
            return match state {
                DeviceState::PendingEnrollment => Ok(()),
                _ => Err(DenyReason::AlreadyEnrolled),
            };
        }
        Action::Protected(action) => Some(action),
        Action::Device(DeviceRequest::LifecycleCommand) => {
            return match state {
                DeviceState::PendingEnrollment => Err(DenyReason::DeviceNotActive),
                DeviceState::Trusted
                | DeviceState::Restricted
                | DeviceState::Revoked
                | DeviceState::Replaced
                | DeviceState::Retired => Ok(()),
            };
        }
        Action::Device(_) => None,
    };
    match state {
        DeviceState::Trusted => Ok(()),
        DeviceState::Restricted if !action.is_some_and(ProtectedAction::needs_session) => Ok(()),
        DeviceState::Restricted => Err(DenyReason::DeviceRestricted),
        DeviceState::Revoked => Err(DenyReason::DeviceRevoked),
        DeviceState::PendingEnrollment | DeviceState::Replaced | DeviceState::Retired => {
            Err(DenyReason::DeviceNotActive)
        }
    }
}

fn decide_inner(input: &DecisionInput) -> Result<(), DenyReason> {
    let actor = input.actor.ok_or(DenyReason::MissingActor)?;
    let device = input.device_state.ok_or(DenyReason::MissingDeviceState)?;
    let resource = input.resource.ok_or(DenyReason::MissingResource)?;
    let action = match input.action {
        Action::Device(_) => {
            if resource != ResourceCategory::DeviceRecord {
                return Err(DenyReason::ResourceMismatch);
            }
            if actor != DecisionActor::Device {
                return Err(DenyReason::ActorNotPermitted);
            }
            return lifecycle_permits(device, input.action);
        }
        Action::Protected(action) => action,
    };
    if !action.permits_resource(resource) {
        return Err(DenyReason::ResourceMismatch);
    }
    if action == ProtectedAction::Enroll {
        return lifecycle_permits(device, input.action);
    }
    let policy = input.policy.ok_or(DenyReason::MissingPolicy)?;
    if resource == ResourceCategory::PolicyBundle {
        return lifecycle_permits(device, input.action);
    }
    let trust = input.trust_state.ok_or(DenyReason::MissingTrustState)?;
    let setup_complete = input.setup_complete.ok_or(DenyReason::MissingSetup)?;
    let evaluated_at = input.evaluated_at.ok_or(DenyReason::MissingEvaluation)?;
    let integrity = input.integrity.ok_or(DenyReason::MissingIntegrity)?;
    let session = if action.needs_session() {
        Some(input.session_valid.ok_or(DenyReason::MissingSession)?)
    } else {
        None
    };
    let needs_attestation = action == ProtectedAction::Ota || policy.attestation_required;
    let attestation = if needs_attestation {
        Some(input.attestation.ok_or(DenyReason::MissingAttestation)?)
    } else {
        None
    };
    lifecycle_permits(device, input.action)?;
    if !setup_complete {
        return Err(DenyReason::SetupIncomplete);
    }
    if evaluated_at > input.now || input.now.duration_since(evaluated_at) > policy.max_posture_age {
        return Err(DenyReason::PostureStale);
    }
    if integrity == IntegrityState::Contradicted {
        return Err(DenyReason::IntegrityContradicted);
    }
    match trust {
        TrustState::Inactive => return Err(DenyReason::TrustInactive),
        TrustState::ReviewRequired if action.needs_session() => {
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
