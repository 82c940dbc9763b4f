//! Device lifecycle: the changes operators ask for, the approved changes the approvals service
//! hands over, and the two-phase commands devices fetch and acknowledge.
//!
//! Every change is checked against the Trust State Engine's two-phase lifecycle
//! (`enigm_trust::Lifecycle`: the transition table, the confirmed state and the pending
//! command) and refused (409 with a stable reason, audited) when it does not allow it. Restrict
//! and replace take effect at once; retire is issued to the device at once; revoke, reactivate
//! and wipe open a multi-admin approval request and are carried out, checked again, in the
//! transaction that approves them. Revocation takes effect on the device's next request.
//!
//! Retire and wipe are two-phase: the device row's state stays the state the device confirmed
//! while the command waits; the device fetches it (`GET /api/v1/device/commands`, signed),
//! carries it out and acknowledges it (`POST /api/v1/device/commands/ack`, signed), and only
//! then is its state `retired`. A wipe ends the same way; the acknowledged command records that
//! it was a wipe. A revoked device may still fetch and acknowledge a command (a lost device must
//! still be able to obey a wipe), but it gets nothing else.

use crate::services::devices::device_request_refusal;
use enigm_api::{
    CommandAckRequest, CommandAckResponse, CommandView, DeviceCommandsView, EnrollmentTokenCreated,
    LifecycleChange, LifecycleRequest, LifecycleResponse, LifecycleView,
};
use enigm_crypto::BearerToken;
use enigm_store::{
    LifecycleRecord, LockedLifecycle, NewCommand, NewEnrollmentToken, PendingCommand, StoreError,
    WriteTx,
};
use enigm_trust::DeviceRequest;
use enigm_trust::{DeviceCommand, DeviceState, Lifecycle, LifecycleAction, LifecycleRefusal};
use enigm_types::{
    Actor, AdminId, ApprovalAction, ApprovalId, AuditAction, AuditEvent, AuditTarget, DeviceHandle,
    EnrollmentTokenId, GuardedDeviceChange, Justification, Outcome, ReasonCategory, Timestamp,
};

use crate::audit;
use crate::device_guard::{NoBody, SignedDevice};
use crate::error::{ApiError, ApiResult};
use crate::guard::Caller;
use crate::services::approvals;
use crate::state::AppState;

/// How long a replacement's enrollment token stays valid (the successor may still be on its
/// way to the user).
const REPLACEMENT_TOKEN_MINUTES: u64 = 24 * 60;

/// An operator's lifecycle change: restrict or replace now, issue a retirement, or open the
/// approval request a revocation, reactivation or wipe needs (the response then names it).
pub async fn change(
    state: &AppState,
    caller: &Caller,
    handle: DeviceHandle,
    request: LifecycleRequest,
) -> ApiResult<LifecycleResponse> {
    let justification = Justification::parse(&request.justification)
        .map_err(|error| ApiError::unprocessable("invalid_justification", error.to_string()))?;
    let now = state.now();
    let step = Step::of(request.action);
    let refuse = |reason: ReasonCategory| {
        let event = audit::denied(
            now,
            Actor::Admin(caller.admin.id),
            step.audit_action(),
            AuditTarget::Device { handle },
            reason,
        );
        let state = state.clone();
        async move {
            state.audit(&[event]).await?;
            Err::<LifecycleResponse, _>(refusal_error(reason))
        }
    };

    // Checked first outside any transaction so that a request that can never succeed opens no
    // approval; checked again where it is carried out.
    let record = state
        .store()
        .device(&handle)
        .await?
        .ok_or_else(|| ApiError::not_found("device"))?;
    let pending = state.store().device_lifecycle(&handle).await?.pending;
    let lifecycle = Lifecycle {
        confirmed: record.state,
        pending: pending_command(pending.as_ref()),
    };
    if let Err(refusal) = step.check(lifecycle, record.wipe_opt_in) {
        return refuse(reason_of(refusal)).await;
    }

    if let Some(change) = step.guarded() {
        let action = ApprovalAction::DeviceLifecycle {
            device: handle,
            change,
        };
        let view = approvals::open_request(state, caller, action, justification.as_str()).await?;
        return Ok(LifecycleResponse {
            state: lifecycle.confirmed,
            requested_state: lifecycle.requested(),
            pending_command: lifecycle.pending,
            approval: Some(view),
            enrollment_token: None,
        });
    }

    let mut tx = state.store().begin().await?;
    let (after, locked) = match settle(&mut tx, handle, step, caller.admin.id, None, now).await? {
        Ok(settled) => settled,
        Err(reason) => {
            drop(tx);
            return refuse(reason).await;
        }
    };
    tx.append_audit(&audit::success(
        now,
        caller.admin.id,
        step.audit_action(),
        AuditTarget::Device { handle },
    ))
    .await?;
    let enrollment_token = if step == Step::Apply(LifecycleAction::Replace) {
        Some(replacement_token(&mut tx, handle, &locked, caller.admin.id, now).await?)
    } else {
        None
    };
    tx.commit().await?;
    state.device_policies.forget(&handle);
    Ok(LifecycleResponse {
        state: after.confirmed,
        requested_state: after.requested(),
        pending_command: after.pending,
        approval: None,
        enrollment_token,
    })
}

/// Carries out an approved revocation, reactivation or wipe in the approving transaction.
/// `Ok(Err)` when the lifecycle no longer allows it (the device changed since the request).
pub(crate) async fn execute_approved(
    tx: &mut WriteTx<'_>,
    admin: AdminId,
    device: DeviceHandle,
    change: GuardedDeviceChange,
    approval: ApprovalId,
    now: Timestamp,
) -> ApiResult<Result<(), ReasonCategory>> {
    let step = match change {
        GuardedDeviceChange::Revoke => Step::Apply(LifecycleAction::Revoke),
        GuardedDeviceChange::Reactivate => Step::Apply(LifecycleAction::Reactivate),
        GuardedDeviceChange::Wipe => Step::Issue(DeviceCommand::Wipe),
    };
    if let Err(reason) = settle(tx, device, step, admin, Some(approval), now).await? {
        return Ok(Err(reason));
    }
    tx.append_audit(
        &audit::success(
            now,
            admin,
            step.audit_action(),
            AuditTarget::Device { handle: device },
        )
        .with_change_ref(approval),
    )
    .await?;
    Ok(Ok(()))
}

/// The command Command asks of this device, if any. A revoked device may still fetch it.
pub async fn commands(
    state: &AppState,
    device: SignedDevice<NoBody>,
) -> ApiResult<DeviceCommandsView> {
    let refuse = &device.refuse;
    let handle = device.handle;
    let mut tx = state.store().begin().await?;
    if let Err(error) = device.record_nonce(&mut tx).await {
        drop(tx);
        return Err(refuse.store_refusal(error).await);
    }
    let Some(locked) = tx.lock_lifecycle(&handle).await? else {
        drop(tx);
        return Err(refuse.deny(ReasonCategory::UnknownDevice).await);
    };
    if let Some(reason) =
        device_request_refusal(DeviceRequest::LifecycleCommand, locked.state, device.now)
    {
        drop(tx);
        return Err(refuse.deny(reason).await);
    }
    tx.commit().await?;
    Ok(DeviceCommandsView {
        pending: pending_command(locked.pending.as_ref()),
    })
}

/// The device carried out a command and acknowledges it; its confirmed state becomes the one
/// the command asked for.
pub async fn acknowledge(
    state: &AppState,
    device: SignedDevice<CommandAckRequest>,
) -> ApiResult<CommandAckResponse> {
    let now = device.now;
    let handle = device.handle;
    let request = &device.body;
    let action = match request.command {
        DeviceCommand::Retire => AuditAction::DeviceRetireAck,
        DeviceCommand::Wipe => AuditAction::DeviceWipeAck,
    };
    let refuse = device.refuse.with_action(action);
    let mut tx = state.store().begin().await?;
    if let Err(error) = device.record_nonce(&mut tx).await {
        drop(tx);
        return Err(refuse.store_refusal(error).await);
    }
    let Some(locked) = tx.lock_lifecycle(&handle).await? else {
        drop(tx);
        return Err(refuse.deny(ReasonCategory::UnknownDevice).await);
    };
    if let Some(reason) =
        device_request_refusal(DeviceRequest::LifecycleCommand, locked.state, device.now)
    {
        drop(tx);
        return Err(refuse.deny(reason).await);
    }
    let before = Lifecycle {
        confirmed: locked.state,
        pending: pending_command(locked.pending.as_ref()),
    };
    let after = match before.acknowledge(request.command) {
        Ok(after) => after,
        Err(refusal) => {
            drop(tx);
            return Err(refuse.deny(reason_of(refusal)).await);
        }
    };
    let moved = tx
        .transition_device(&handle, before.confirmed, after.confirmed)
        .await?;
    let acknowledged = tx
        .acknowledge_command(&handle, request.command, now)
        .await?;
    if !(moved && acknowledged) {
        drop(tx);
        return Err(refuse.deny(ReasonCategory::CommandNotIssued).await);
    }
    tx.append_audit(&AuditEvent::new(
        now,
        Actor::Device(handle),
        action,
        AuditTarget::Device { handle },
        Outcome::Success,
    ))
    .await?;
    tx.commit().await?;
    state.device_policies.forget(&handle);
    Ok(CommandAckResponse {
        state: after.confirmed,
    })
}

/// The lifecycle part of a device's view.
pub fn view(confirmed: DeviceState, record: &LifecycleRecord) -> ApiResult<LifecycleView> {
    let pending = pending_command(record.pending.as_ref());
    let requested = Lifecycle { confirmed, pending }.requested();
    Ok(LifecycleView {
        requested_state: (requested != confirmed).then_some(requested),
        pending_command: record
            .pending
            .as_ref()
            .map(|pending| command_view(pending.command, pending.issued_at)),
        acknowledged_command: record
            .acknowledged
            .as_ref()
            .map(|(command, at)| command_view(*command, *at)),
        replaced_by: record.replaced_by,
        replaces: record.replaces,
    })
}

/// One lifecycle step an operator asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// A transition that takes effect at once.
    Apply(LifecycleAction),
    /// A two-phase command, done when the device acknowledges it.
    Issue(DeviceCommand),
}

impl Step {
    const fn of(change: LifecycleChange) -> Step {
        match change {
            LifecycleChange::Restrict => Step::Apply(LifecycleAction::Restrict),
            LifecycleChange::Revoke => Step::Apply(LifecycleAction::Revoke),
            LifecycleChange::Reactivate => Step::Apply(LifecycleAction::Reactivate),
            LifecycleChange::Replace => Step::Apply(LifecycleAction::Replace),
            LifecycleChange::Retire => Step::Issue(DeviceCommand::Retire),
            LifecycleChange::Wipe => Step::Issue(DeviceCommand::Wipe),
        }
    }

    /// The approval a step needs, if it needs one (the threat model's guarded actions).
    const fn guarded(self) -> Option<GuardedDeviceChange> {
        match self {
            Step::Apply(LifecycleAction::Revoke) => Some(GuardedDeviceChange::Revoke),
            Step::Apply(LifecycleAction::Reactivate) => Some(GuardedDeviceChange::Reactivate),
            Step::Issue(DeviceCommand::Wipe) => Some(GuardedDeviceChange::Wipe),
            Step::Apply(_) | Step::Issue(DeviceCommand::Retire) => None,
        }
    }

    const fn audit_action(self) -> AuditAction {
        match self {
            Step::Apply(LifecycleAction::Restrict) => AuditAction::DeviceRestrict,
            Step::Apply(LifecycleAction::Revoke) => AuditAction::DeviceRevoke,
            Step::Apply(LifecycleAction::Reactivate | LifecycleAction::Activate) => {
                AuditAction::DeviceReactivate
            }
            Step::Apply(LifecycleAction::Replace) => AuditAction::DeviceReplace,
            Step::Apply(LifecycleAction::Retire) | Step::Issue(DeviceCommand::Retire) => {
                AuditAction::DeviceRetire
            }
            Step::Issue(DeviceCommand::Wipe) => AuditAction::DeviceWipe,
        }
    }

    fn check(self, lifecycle: Lifecycle, wipe_opt_in: bool) -> Result<Lifecycle, LifecycleRefusal> {
        match self {
            Step::Apply(action) => lifecycle.apply(action),
            Step::Issue(command) => lifecycle.issue(command, wipe_opt_in),
        }
    }
}

/// Carries out a step in `tx`: reads the device locked, checks the step against its lifecycle
/// and writes it. `Ok(Err)` with the reason when it is refused.
async fn settle(
    tx: &mut WriteTx<'_>,
    handle: DeviceHandle,
    step: Step,
    admin: AdminId,
    approval: Option<ApprovalId>,
    now: Timestamp,
) -> ApiResult<Result<(Lifecycle, LockedLifecycle), ReasonCategory>> {
    let Some(locked) = tx.lock_lifecycle(&handle).await? else {
        return Ok(Err(ReasonCategory::UnknownDevice));
    };
    let before = Lifecycle {
        confirmed: locked.state,
        pending: pending_command(locked.pending.as_ref()),
    };
    let after = match step.check(before, locked.wipe_opt_in) {
        Ok(after) => after,
        Err(refusal) => return Ok(Err(reason_of(refusal))),
    };
    match step {
        Step::Apply(_) => {
            if !tx
                .transition_device(&handle, before.confirmed, after.confirmed)
                .await?
            {
                return Ok(Err(ReasonCategory::InvalidTransition));
            }
        }
        Step::Issue(command) => {
            let issued = tx
                .issue_command(&NewCommand {
                    handle,
                    command,
                    issued_by: admin,
                    issued_at: now,
                    approval,
                })
                .await;
            match issued {
                Err(StoreError::Conflict) => return Ok(Err(ReasonCategory::CommandPending)),
                other => other?,
            }
        }
    }
    // A device off the network (revoked, replaced, retired) or on its way out (a retire or wipe
    // waiting) holds no VPN session: its gateway slot is given back now.
    let on_network = after.pending.is_none()
        && matches!(
            after.confirmed,
            DeviceState::Trusted | DeviceState::Restricted
        );
    if !on_network {
        tx.end_vpn_session(&handle, now).await?;
    }
    Ok(Ok((after, locked)))
}

/// Issues the successor's one-use enrollment token: the old device's group, policy and
/// managed-mode permission, nothing of its trust.
async fn replacement_token(
    tx: &mut WriteTx<'_>,
    handle: DeviceHandle,
    old: &LockedLifecycle,
    admin: AdminId,
    now: Timestamp,
) -> ApiResult<EnrollmentTokenCreated> {
    let token = BearerToken::generate(&mut rand::rngs::OsRng);
    let id = EnrollmentTokenId::random();
    let expires_at = now.saturating_add(std::time::Duration::from_secs(
        REPLACEMENT_TOKEN_MINUTES * 60,
    ));
    // The successor is attested under the same policy, but pairs anew: nothing of the old
    // device's pairing carries over.
    let attestation_policy = tx
        .device_attestation_for_update(&handle)
        .await?
        .map_or_else(|| "{}".to_owned(), |record| record.policy);
    tx.insert_enrollment_token(&NewEnrollmentToken {
        id,
        token_digest_hex: token.digest().to_hex(),
        group: old.group.clone(),
        policy: old.policy.clone(),
        attestation_policy,
        uses: 1,
        expires_at,
        managed_allowed: old.managed_opt_in,
        created_by: admin,
        created_at: now,
    })
    .await?;
    tx.record_replacement(&handle, id, admin, now).await?;
    tx.append_audit(&audit::success(
        now,
        admin,
        AuditAction::EnrollmentTokenCreate,
        AuditTarget::EnrollmentToken { id },
    ))
    .await?;
    Ok(EnrollmentTokenCreated {
        id,
        token: token.expose().to_owned(),
        group: old.group.clone(),
        uses: 1,
        expires_at: expires_at.to_rfc3339(),
        managed_allowed: old.managed_opt_in,
    })
}

fn reason_of(refusal: LifecycleRefusal) -> ReasonCategory {
    match refusal {
        LifecycleRefusal::NotAllowed(_) => ReasonCategory::InvalidTransition,
        LifecycleRefusal::CommandPending(_) => ReasonCategory::CommandPending,
        LifecycleRefusal::NoWipeOptIn => ReasonCategory::WipeNotOptedIn,
        LifecycleRefusal::NotIssued(_) => ReasonCategory::CommandNotIssued,
    }
}

fn refusal_error(reason: ReasonCategory) -> ApiError {
    let message = match reason {
        ReasonCategory::CommandPending => "another lifecycle command waits for the device",
        ReasonCategory::WipeNotOptedIn => "the device did not opt in to remote wipe at enrollment",
        ReasonCategory::CommandNotIssued => "no such command waits for the device",
        ReasonCategory::UnknownDevice => "unknown device",
        _ => "the device's lifecycle state does not allow this change",
    };
    ApiError::conflict(reason, message)
}

fn pending_command(pending: Option<&PendingCommand>) -> Option<DeviceCommand> {
    pending.map(|pending| pending.command)
}

fn command_view(command: DeviceCommand, at: Timestamp) -> CommandView {
    CommandView {
        command,
        at: at.to_rfc3339(),
    }
}
