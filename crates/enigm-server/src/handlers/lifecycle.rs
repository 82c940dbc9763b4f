//! Device lifecycle routes: operators' changes (restrict, replace, retire at once; revoke,
//! reactivate and wipe through an approval), and the signed device routes that fetch and
//! acknowledge a two-phase command. The lifecycle service does the work.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use enigm_api::{
    CommandAckRequest, CommandAckResponse, DeviceCommandsView, LifecycleRequest, LifecycleResponse,
};
use enigm_types::DeviceHandle;

use crate::device_guard::{NoBody, SignedDevice};
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath};
use crate::guard::Caller;
use crate::services::lifecycle;
use crate::state::AppState;

/// Change a device's lifecycle (critical: needs the PIN): restrict or replace now, issue a
/// retirement, or request revocation, reactivation or a wipe (202 with the approval request).
#[utoipa::path(post, path = enigm_api::paths::DEVICE_LIFECYCLE, tag = "devices", security(("bearer" = [])),
    request_body = LifecycleRequest,
    params(("handle" = DeviceHandle, Path, description = "device handle"),
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
    let response = lifecycle::change(&state, &caller, handle, request).await?;
    let status = if response.approval.is_some() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(response)))
}

/// The command Command asks of this device, if any (signed with the device key).
#[utoipa::path(get, path = enigm_api::paths::DEVICE_COMMANDS, tag = "device",
    params(
        ("signature" = String, Header, description = "RFC 9421 signature"),
        ("signature-input" = String, Header, description = "RFC 9421 signature parameters"),
        ("content-digest" = String, Header, description = "RFC 9530 digest of the body"),
    ),
    responses((status = 200, body = DeviceCommandsView), (status = 401, body = enigm_api::ErrorBody),
        (status = 409, body = enigm_api::ErrorBody)))]
pub async fn commands(
    State(state): State<AppState>,
    device: SignedDevice<NoBody>,
) -> ApiResult<Json<DeviceCommandsView>> {
    Ok(Json(lifecycle::commands(&state, device).await?))
}

/// The device carried out a command and acknowledges it (signed with the device key); its
/// confirmed state becomes the one the command asked for.
#[utoipa::path(post, path = enigm_api::paths::DEVICE_COMMAND_ACK, tag = "device",
    request_body = CommandAckRequest,
    params(
        ("signature" = String, Header, description = "RFC 9421 signature"),
        ("signature-input" = String, Header, description = "RFC 9421 signature parameters"),
        ("content-digest" = String, Header, description = "RFC 9530 digest of the body"),
    ),
    responses((status = 200, body = CommandAckResponse), (status = 401, body = enigm_api::ErrorBody),
        (status = 409, body = enigm_api::ErrorBody)))]
pub async fn acknowledge(
    State(state): State<AppState>,
    device: SignedDevice<CommandAckRequest>,
) -> ApiResult<Json<CommandAckResponse>> {
    Ok(Json(lifecycle::acknowledge(&state, device).await?))
}
