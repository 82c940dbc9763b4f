//! Controlled rollout of OTA releases (enigm-docs §7, §20 D.28–D.31): a release's plan, its
//! stage steps, waves, pause / resume / withdraw, and version pins per device group.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use enigm_api::rollouts::{
    RolloutActionRequest, RolloutPlanRequest, RolloutView, UpdateCheckRequest, VersionPinRequest,
    VersionPinView,
};
use enigm_types::{GroupName, ReleaseId};

use crate::device_guard::SignedDevice;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath};
use crate::guard::Caller;
use crate::services::releases::{director, rollout};
use crate::state::AppState;

/// The release's stage, rollout plan and status, with each wave's counts.
#[utoipa::path(get, path = enigm_api::paths::RELEASE_ROLLOUT, tag = "releases", security(("bearer" = [])),
    params(("id" = ReleaseId, Path, description = "release id")),
    responses((status = 200, body = RolloutView), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn read(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ReleaseId>,
) -> ApiResult<Json<RolloutView>> {
    Ok(Json(rollout::read(&state, id).await?))
}

/// Sets the release's rollout plan (a model's preset waves, or waves of its own); allowed
/// until its rollout starts.
#[utoipa::path(put, path = enigm_api::paths::RELEASE_ROLLOUT_PLAN, tag = "releases", security(("bearer" = [])),
    request_body = RolloutPlanRequest,
    params(("id" = ReleaseId, Path, description = "release id")),
    responses((status = 200, body = RolloutView), (status = 404, body = enigm_api::ErrorBody),
        (status = 409, body = enigm_api::ErrorBody), (status = 422, body = enigm_api::ErrorBody)))]
pub async fn set_plan(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ReleaseId>,
    ApiJson(request): ApiJson<RolloutPlanRequest>,
) -> ApiResult<Json<RolloutView>> {
    Ok(Json(rollout::set_plan(&state, &caller, id, request).await?))
}

/// One rollout step (critical: needs the PIN). Promotion to stable and a security rollout's
/// start open an approval request (202); the others are carried out at once (200). A step out
/// of order is refused (409) with its reason.
#[utoipa::path(post, path = enigm_api::paths::RELEASE_ROLLOUT_ACTIONS, tag = "releases", security(("bearer" = [])),
    request_body = RolloutActionRequest,
    params(("id" = ReleaseId, Path, description = "release id"),
        ("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 200, body = RolloutView), (status = 202, body = RolloutView),
        (status = 404, body = enigm_api::ErrorBody), (status = 409, body = enigm_api::ErrorBody),
        (status = 422, body = enigm_api::ErrorBody)))]
pub async fn act(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ReleaseId>,
    ApiJson(request): ApiJson<RolloutActionRequest>,
) -> ApiResult<(StatusCode, Json<RolloutView>)> {
    let outcome = rollout::act(&state, &caller, id, request).await?;
    Ok((outcome.status, Json(outcome.view)))
}

/// Every device group's version pin.
#[utoipa::path(get, path = enigm_api::paths::OTA_PINS, tag = "releases", security(("bearer" = [])),
    responses((status = 200, body = [VersionPinView])))]
pub async fn pins(State(state): State<AppState>) -> ApiResult<Json<Vec<VersionPinView>>> {
    Ok(Json(rollout::pins(&state).await?))
}

/// Pins a device group to a published release: its devices are offered that version only,
/// until unpinned.
#[utoipa::path(post, path = enigm_api::paths::OTA_PINS, tag = "releases", security(("bearer" = [])),
    request_body = VersionPinRequest,
    responses((status = 200, body = VersionPinView), (status = 404, body = enigm_api::ErrorBody),
        (status = 409, body = enigm_api::ErrorBody), (status = 422, body = enigm_api::ErrorBody)))]
pub async fn pin(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<VersionPinRequest>,
) -> ApiResult<Json<VersionPinView>> {
    Ok(Json(rollout::pin(&state, &caller, request).await?))
}

/// Removes a device group's version pin.
#[utoipa::path(delete, path = enigm_api::paths::OTA_PIN, tag = "releases", security(("bearer" = [])),
    params(("group" = String, Path, description = "device group")),
    responses((status = 204), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn unpin(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(group): ApiPath<GroupName>,
) -> ApiResult<StatusCode> {
    rollout::unpin(&state, &caller, group.as_str()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The director: which update this device should install now (signed by the device). The
/// answer is the director's signed document, naming one target or none (the same document for
/// "nothing newer" and "not for you"; the reason is audited). It echoes the request's nonce and
/// expires within minutes.
#[utoipa::path(post, path = enigm_api::paths::DEVICE_OTA_OFFER, tag = "device",
    request_body = UpdateCheckRequest,
    params(
        ("signature" = String, Header, description = "RFC 9421 signature"),
        ("signature-input" = String, Header, description = "RFC 9421 signature parameters"),
        ("content-digest" = String, Header, description = "RFC 9530 digest of the body"),
    ),
    responses((status = 200, content_type = "application/json",
            description = "the director's answer (`_type` `enigm-director`), signed",
            body = Object),
        (status = 401, body = enigm_api::ErrorBody), (status = 403, body = enigm_api::ErrorBody),
        (status = 422, body = enigm_api::ErrorBody)))]
pub async fn device_offer(
    State(state): State<AppState>,
    device: SignedDevice<UpdateCheckRequest>,
) -> ApiResult<([(axum::http::HeaderName, &'static str); 2], Vec<u8>)> {
    let bytes = director::answer(&state, device).await?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/json"),
            (axum::http::header::CACHE_CONTROL, "no-store"),
        ],
        bytes,
    ))
}
