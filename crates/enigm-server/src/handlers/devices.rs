//! Devices: enrollment tokens (administrators), enrollment and check-ins (devices, with signed
//! requests), and the device inventory.
//!
//! A device request is authenticated by its RFC 9421 signature over the exact request
//! (`enigm-device`), not by a session: the guard lets these routes through and the
//! `SignedDevice` extractor verifies the signature before it decodes the body. The devices
//! service does the work.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use enigm_api::{
    CheckInRequest, CreateEnrollmentTokenRequest, DeviceListQuery, DeviceView, EnrollRequest,
    EnrollResponse, EnrollmentTokenCreated, TrustView,
};
use enigm_types::DeviceHandle;

use crate::device_guard::SignedDevice;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::guard::Caller;
use crate::services::devices;
use crate::state::AppState;

/// Create an enrollment token (critical: needs the PIN). The token is shown once.
#[utoipa::path(post, path = enigm_api::paths::ENROLLMENT_TOKENS, tag = "devices", security(("bearer" = [])),
    request_body = CreateEnrollmentTokenRequest,
    params(("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 201, body = EnrollmentTokenCreated), (status = 422, body = enigm_api::ErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateEnrollmentTokenRequest>,
) -> ApiResult<(StatusCode, Json<EnrollmentTokenCreated>)> {
    let created = devices::create_token(&state, &caller, request).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Enroll a device (signed with its device key; needs an enrollment token in the body).
#[utoipa::path(post, path = enigm_api::paths::DEVICE_ENROLL, tag = "device",
    request_body = EnrollRequest,
    params(
        ("signature" = String, Header, description = "RFC 9421 signature"),
        ("signature-input" = String, Header, description = "RFC 9421 signature parameters"),
        ("content-digest" = String, Header, description = "RFC 9530 digest of the body"),
    ),
    responses((status = 201, body = EnrollResponse), (status = 401, body = enigm_api::ErrorBody),
        (status = 409, body = enigm_api::ErrorBody), (status = 413, body = enigm_api::ErrorBody)))]
pub async fn enroll(
    State(state): State<AppState>,
    device: SignedDevice<EnrollRequest>,
) -> ApiResult<(StatusCode, Json<EnrollResponse>)> {
    let enrolled = devices::enroll(&state, device).await;
    state.metrics.enrollment(&enrolled);
    Ok((StatusCode::CREATED, Json(enrolled?)))
}

/// Report the device's signals (signed with its device key); answers the evaluation.
#[utoipa::path(post, path = enigm_api::paths::DEVICE_CHECK_INS, tag = "device",
    request_body = CheckInRequest,
    params(
        ("signature" = String, Header, description = "RFC 9421 signature"),
        ("signature-input" = String, Header, description = "RFC 9421 signature parameters"),
        ("content-digest" = String, Header, description = "RFC 9530 digest of the body"),
    ),
    responses((status = 200, body = TrustView), (status = 401, body = enigm_api::ErrorBody),
        (status = 403, body = enigm_api::ErrorBody), (status = 409, body = enigm_api::ErrorBody),
        (status = 413, body = enigm_api::ErrorBody)))]
pub async fn check_in(
    State(state): State<AppState>,
    device: SignedDevice<CheckInRequest>,
) -> ApiResult<Json<TrustView>> {
    let checked_in = devices::check_in(&state, device).await;
    state.metrics.check_in(&checked_in);
    Ok(Json(checked_in?))
}

/// The device inventory, in handle order, filtered by lifecycle state, trust state and group.
#[utoipa::path(get, path = enigm_api::paths::DEVICES, tag = "devices", security(("bearer" = [])),
    params(DeviceListQuery), responses((status = 200, body = [DeviceView])))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<DeviceListQuery>,
) -> ApiResult<Json<Vec<DeviceView>>> {
    Ok(Json(devices::list(&state, query).await?))
}

/// One device: lifecycle state, opt-ins, trust state with findings, and production gates.
#[utoipa::path(get, path = enigm_api::paths::DEVICE, tag = "devices", security(("bearer" = [])),
    params(("handle" = DeviceHandle, Path, description = "device handle")),
    responses((status = 200, body = DeviceView), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn read(
    State(state): State<AppState>,
    ApiPath(handle): ApiPath<DeviceHandle>,
) -> ApiResult<Json<DeviceView>> {
    Ok(Json(devices::read(&state, handle).await?))
}
