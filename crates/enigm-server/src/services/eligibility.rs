//! The eligibility decision: whether a device may do a protected action now. The Trust State
//! Engine's `decide` answers from Command's own record of the device; anything it needs that is
//! missing denies. Every decision is audited.

use enigm_api::eligibility::{DenyReason, EligibilityDecision, EligibilityRequest};
use enigm_attest::policy::AttestationPolicy;
use enigm_trust::{
    AttestationOutcome, DecisionActor, DecisionInput, DecisionPolicy, FindingKind, IntegrityState,
    ResourceCategory,
};
use enigm_types::{Actor, AuditAction, AuditEvent, AuditTarget, Outcome, ReasonCategory};
use std::sync::Arc;

use crate::error::ApiResult;
use crate::guard::Caller;
use crate::services::policies;
use crate::state::AppState;

/// Decides whether a device may do a protected action (allow, or deny with a stable reason),
/// and audits the decision.
pub async fn decide(
    state: &AppState,
    caller: &Caller,
    request: EligibilityRequest,
) -> ApiResult<EligibilityDecision> {
    let now = state.now();
    let decision = evaluate(state, &request, DecisionActor::Operator, now).await?;
    let (outcome, reason) = match decision {
        EligibilityDecision::Allow => (Outcome::Success, None),
        EligibilityDecision::Deny(reason) => (Outcome::Denied, Some(reason_category(reason))),
    };
    let mut event = AuditEvent::new(
        now,
        Actor::Admin(caller.admin.id),
        AuditAction::DeviceEligibility,
        AuditTarget::Device {
            handle: request.device,
        },
        outcome,
    );
    if let Some(reason) = reason {
        event = event.with_reason(reason);
    }
    state.audit(&[event]).await?;
    Ok(decision)
}

/// The decision itself, unaudited: the caller audits it under its own action (an operator's
/// question, or a device's request that depends on it).
pub(crate) async fn evaluate(
    state: &AppState,
    request: &EligibilityRequest,
    actor: DecisionActor,
    now: enigm_types::Timestamp,
) -> ApiResult<EligibilityDecision> {
    // An unknown device, or a record that does not decode, is a missing input: it denies.
    let device = match state.store().device(&request.device).await {
        Ok(device) => device,
        Err(enigm_store::StoreError::Corrupt(_)) => None,
        Err(error) => return Err(error.into()),
    };
    evaluate_device(state, device, request, actor, now).await
}

/// [`evaluate`] with the device's record already read (`None`: unknown), by a caller that needs
/// it too.
pub(crate) async fn evaluate_device(
    state: &AppState,
    device: Option<enigm_store::DeviceRecord>,
    request: &EligibilityRequest,
    actor: DecisionActor,
    now: enigm_types::Timestamp,
) -> ApiResult<EligibilityDecision> {
    let Some(device) = device else {
        return Ok(EligibilityDecision::Deny(DenyReason::MissingDevice));
    };
    let inputs = load_inputs(state, &device).await?;
    // A device Command has told to retire or wipe is on its way out: nothing protected is
    // started on it while the command waits for the device's acknowledgement.
    let command_pending = state
        .store()
        .device_lifecycle(&request.device)
        .await?
        .pending
        .is_some();
    Ok(decide_loaded(
        &device,
        command_pending,
        &inputs,
        request,
        actor,
        now,
    ))
}

/// What a device is decided under besides its own record: its effective policies (its group's
/// assignment, else what it enrolled with, else the baseline, as check-ins use them; `None`
/// when they cannot be read, a missing input the decision names) and its attestation row.
pub(crate) struct DecisionInputs {
    effective: Option<policies::DevicePolicies>,
    attestation: Option<enigm_store::AttestationRecord>,
}

async fn load_inputs(
    state: &AppState,
    device: &enigm_store::DeviceRecord,
) -> ApiResult<DecisionInputs> {
    let attestation = state.store().device_attestation(&device.handle).await?;
    let assigned = state.store().group_policies(&device.group).await?;
    let effective = policies::from_assigned(
        &assigned,
        &device.policy,
        attestation.as_ref().map(|record| record.policy.as_str()),
    )
    .ok();
    Ok(DecisionInputs {
        effective,
        attestation,
    })
}

/// [`DecisionInputs`] read through the process's cache: kept per device with the device's
/// `policy_revision` they were read at, which every policy assignment to its group and every
/// attestation of it bumps (on any process, in the same transaction), so an entry whose
/// revision differs from the record just read is read again. Posture, lifecycle and the
/// freshness of the attestation are decided from the record and `now` each time, never cached.
pub(crate) async fn cached_inputs(
    state: &AppState,
    device: &enigm_store::DeviceRecord,
) -> ApiResult<Arc<DecisionInputs>> {
    if let Some(inputs) = state
        .decision_inputs
        .at(&device.handle, device.policy_revision)
    {
        return Ok(inputs);
    }
    let inputs = Arc::new(load_inputs(state, device).await?);
    state.decision_inputs.insert(
        device.handle,
        crate::revision_cache::Cached {
            value: inputs.clone(),
            revision: device.policy_revision,
        },
    );
    Ok(inputs)
}

/// Each device's [`DecisionInputs`] with the `policy_revision` they were read at.
pub(crate) type DecisionInputsCache = crate::revision_cache::RevisionCache<DecisionInputs>;

/// The decision from what was read: the device's record, whether a lifecycle command waits
/// for it, and its [`DecisionInputs`].
pub(crate) fn decide_loaded(
    device: &enigm_store::DeviceRecord,
    command_pending: bool,
    inputs: &DecisionInputs,
    request: &EligibilityRequest,
    actor: DecisionActor,
    now: enigm_types::Timestamp,
) -> EligibilityDecision {
    if command_pending {
        return EligibilityDecision::Deny(DenyReason::DeviceNotActive);
    }
    let (attestation, policy) = match &inputs.effective {
        Some(effective) => {
            let (attestation, attestation_required) =
                attestation_standing(inputs.attestation.as_ref(), &effective.attestation, now);
            let policy = DecisionPolicy {
                max_posture_age: effective.trust.max_signal_age(),
                attestation_required,
            };
            (attestation, Some(policy))
        }
        None => (None, None),
    };
    enigm_trust::decide(&DecisionInput {
        actor: Some(actor),
        action: request.action.into(),
        resource: Some(
            request
                .resource
                .unwrap_or(ResourceCategory::default_for(request.action)),
        ),
        device_state: Some(device.state),
        trust_state: Some(device.posture.trust_state),
        evaluated_at: Some(device.posture.evaluated_at),
        attestation,
        session_valid: request.session_valid,
        setup_complete: Some(device.posture.setup_missing.is_empty()),
        policy,
        integrity: Some(integrity(&device.posture.findings)),
        now,
    })
}

/// The audit log's name of each denial reason.
pub(crate) fn reason_category(reason: DenyReason) -> ReasonCategory {
    // The audit log files every missing input under one category; the answer names which.
    match reason {
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
        | DenyReason::MissingIntegrity => ReasonCategory::MissingInput,
        DenyReason::DeviceNotActive => ReasonCategory::DeviceNotActive,
        DenyReason::DeviceRevoked => ReasonCategory::DeviceRevoked,
        DenyReason::DeviceRestricted => ReasonCategory::DeviceRestricted,
        DenyReason::TrustInactive => ReasonCategory::TrustInactive,
        DenyReason::TrustReviewRequired => ReasonCategory::TrustReviewRequired,
        DenyReason::PostureStale => ReasonCategory::PostureStale,
        DenyReason::AttestationNotAffirming => ReasonCategory::AttestationNotAffirming,
        DenyReason::SessionInvalid => ReasonCategory::SessionInvalid,
        DenyReason::AlreadyEnrolled => ReasonCategory::AlreadyEnrolled,
        DenyReason::SetupIncomplete => ReasonCategory::SetupIncomplete,
        DenyReason::ActorNotPermitted => ReasonCategory::ActorNotPermitted,
        DenyReason::ResourceMismatch => ReasonCategory::ResourceMismatch,
        DenyReason::IntegrityContradicted => ReasonCategory::IntegrityContradicted,
    }
}

/// Whether an attested claim contradicts what the device last reported: the last evaluation's
/// `source-contradiction` findings say so.
pub(crate) fn integrity(findings: &[enigm_trust::Finding]) -> IntegrityState {
    if findings
        .iter()
        .any(|finding| finding.kind == FindingKind::SourceContradiction)
    {
        IntegrityState::Contradicted
    } else {
        IntegrityState::Consistent
    }
}

/// The device's attestation as the decision sees it: the last attestation affirms when it was
/// accepted within the policy's `max_age_seconds`, warns when it was accepted longer ago, and
/// contraindicates when it was rejected; no attestation (or an unreadable row) is a missing
/// input. Also whether the policy requires attestation for the sensitive channels.
pub(crate) fn attestation_standing(
    record: Option<&enigm_store::AttestationRecord>,
    policy: &AttestationPolicy,
    now: enigm_types::Timestamp,
) -> (Option<AttestationOutcome>, bool) {
    let Some(record) = record else {
        return (None, true);
    };
    let required = policy.required_for.sensitive_channels;
    let standing = match (&record.last, record.accepted_at) {
        (None, _) => None,
        (Some(last), _) if !last.verdict.is_accepted() => Some(AttestationOutcome::Contraindicated),
        (Some(_), Some(accepted_at)) => {
            let max_age = std::time::Duration::from_secs(policy.max_age_seconds);
            if accepted_at <= now && now.duration_since(accepted_at) <= max_age {
                Some(AttestationOutcome::Affirming)
            } else {
                Some(AttestationOutcome::Warning)
            }
        }
        (Some(_), None) => None,
    };
    (standing, required)
}
