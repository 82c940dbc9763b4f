//! Device lifecycle changes asked by operators. Every change is checked against the Trust
//! State Engine's transition table and refused (409, audited) when the table does not allow it
//! from the device's state. Restriction takes effect at once; revocation and reactivation open a
//! multi-admin approval request and are carried out, checked again, in the transaction that
//! approves them. Revocation takes effect on the device's next request.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use enigm_api::{LifecycleChange, LifecycleRequest, LifecycleResponse};
use enigm_store::{StoreError, WriteTx};
use enigm_trust::{DeviceState, LifecycleAction};
use enigm_types::{
    Actor, ApprovalAction, ApprovalId, AuditAction, AuditTarget, DeviceHandle, GuardedDeviceChange,
    Justification, ReasonCategory, Timestamp,
};

use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::guard::Caller;
use crate::handlers::approvals;
use crate::state::AppState;

/// Change a device's lifecycle (critical: needs the PIN): restrict now, or request revocation
/// or reactivation (202 with the approval request).
#[utoipa::path(post, path = enigm_api::paths::DEVICE_LIFECYCLE, tag = "devices", security(("bearer" = [])),
    request_body = LifecycleRequest,
    params(("handle" = String, Path, description = "device handle"),
        ("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 200, body = LifecycleResponse), (status = 202, body = LifecycleResponse),
        (status = 404, body = enigm_api::ErrorBody), (status = 409, body = enigm_api::ErrorBody),
        (status = 422, body = enigm_api::ErrorBody)))]
pub async fn change(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(handle): ApiPath<DeviceHandle>,
    ApiJson(request): ApiJson<LifecycleRequest>,
) -> ApiResult<(StatusCode, Json<LifecycleResponse>)> {
    let justification = Justification::parse(&request.justification)
        .map_err(|error| ApiError::unprocessable("invalid_justification", error.to_string()))?;
    let now = state.now();
    let record = state
        .store()
        .device(&handle)
        .await?
        .ok_or_else(|| ApiError::not_found("device"))?;
    let current: DeviceState = record
        .state
        .parse()
        .map_err(|_| ApiError::internal(&StoreError::Corrupt("device state")))?;
    let (action, audit_action) = match request.action {
        LifecycleChange::Restrict => (LifecycleAction::Restrict, AuditAction::DeviceRestrict),
        LifecycleChange::Revoke => (LifecycleAction::Revoke, AuditAction::DeviceRevoke),
        LifecycleChange::Reactivate => (LifecycleAction::Reactivate, AuditAction::DeviceReactivate),
    };
    let refuse = |state: &AppState| {
        let event = audit::denied(
            now,
            Actor::Admin(caller.admin.id),
            audit_action,
            AuditTarget::Device { handle },
            ReasonCategory::InvalidTransition,
        );
        let state = state.clone();
        async move {
            state.audit(&[event]).await?;
            Err::<(StatusCode, Json<LifecycleResponse>), _>(invalid_transition())
        }
    };
    let Ok(next) = current.apply(action) else {
        return refuse(&state).await;
    };
    match request.action {
        LifecycleChange::Restrict => {
            let mut tx = state.store().begin().await?;
            if !tx
                .transition_device(&handle, current.as_str(), next.as_str())
                .await?
            {
                drop(tx);
                return refuse(&state).await;
            }
            tx.append_audit(&audit::success(
                now,
                caller.admin.id,
                audit_action,
                AuditTarget::Device { handle },
            ))
            .await?;
            tx.commit().await?;
            Ok((
                StatusCode::OK,
                Json(LifecycleResponse {
                    state: next,
                    approval: None,
                }),
            ))
        }
        LifecycleChange::Revoke | LifecycleChange::Reactivate => {
            let change = if request.action == LifecycleChange::Revoke {
                GuardedDeviceChange::Revoke
            } else {
                GuardedDeviceChange::Reactivate
            };
            let action = ApprovalAction::DeviceLifecycle {
                device: handle,
                change,
            };
            let view =
                approvals::open_request(&state, &caller, action, justification.as_str()).await?;
            Ok((
                StatusCode::ACCEPTED,
                Json(LifecycleResponse {
                    state: current,
                    approval: Some(view),
                }),
            ))
        }
    }
}

/// Carries out an approved revocation or reactivation in the approving transaction. `Ok(Err)`
/// when the transition table no longer allows it (the device changed since the request).
pub(crate) async fn execute_approved(
    tx: &mut WriteTx<'_>,
    admin: enigm_types::AdminId,
    device: DeviceHandle,
    change: GuardedDeviceChange,
    approval: ApprovalId,
    now: Timestamp,
) -> ApiResult<Result<(), ReasonCategory>> {
    let (action, audit_action) = match change {
        GuardedDeviceChange::Revoke => (LifecycleAction::Revoke, AuditAction::DeviceRevoke),
        GuardedDeviceChange::Reactivate => {
            (LifecycleAction::Reactivate, AuditAction::DeviceReactivate)
        }
    };
    let Some(current) = tx.device_state(&device).await? else {
        return Ok(Err(ReasonCategory::InvalidTransition));
    };
    let current: DeviceState = current
        .parse()
        .map_err(|_| ApiError::internal(&StoreError::Corrupt("device state")))?;
    let Ok(next) = current.apply(action) else {
        return Ok(Err(ReasonCategory::InvalidTransition));
    };
    if !tx
        .transition_device(&device, current.as_str(), next.as_str())
        .await?
    {
        return Ok(Err(ReasonCategory::InvalidTransition));
    }
    tx.append_audit(
        &audit::success(
            now,
            admin,
            audit_action,
            AuditTarget::Device { handle: device },
        )
        .with_change_ref(approval),
    )
    .await?;
    Ok(Ok(()))
}

fn invalid_transition() -> ApiError {
    ApiError::conflict(
        ReasonCategory::InvalidTransition,
        "the device's lifecycle state does not allow this change",
    )
}
