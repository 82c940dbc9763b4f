//! OTA releases on Command (enigm-docs §7–8, §20 D–E).
//!
//! A release is declared by the pipeline (`POST /releases`, which opens its release-signing
//! approval request in the same transaction) and its artifact uploaded (`PUT
//! /releases/{id}/artifact`, streamed to the data directory, refused unless it has exactly the
//! declared length and SHA-256). Once another administrator approved the request, the signing
//! workstation hands in the new targets metadata (`POST /releases/{id}/signatures`): signed by
//! the Manifest Signing Authority's targets keys and carrying the Release-Signing Authority's
//! payload signature. Command verifies both against the trusted root before storing anything;
//! every acceptance and every verification failure is audited. Publishing signs a new snapshot
//! and timestamp with Command's online keys. Command never holds the offline keys.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use enigm_api::releases::{
    CreateReleaseRequest, InstallReportRequest, InstallReportResponse, OnlineKeysView, ReleaseView,
    RepositoryView,
};
use enigm_types::ReleaseId;
use http_body_util::BodyExt as _;

use crate::device_guard::SignedDevice;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::guard::Caller;
use crate::services::releases;
use crate::state::AppState;

/// The largest signed metadata document Command accepts (a targets role listing 100,000
/// releases is about 30 MB).
pub const MAX_METADATA_BYTES: usize = 64 * 1024 * 1024;

/// Declares a release and opens the approval request its signing needs (202).
#[utoipa::path(post, path = enigm_api::paths::RELEASES, tag = "releases", security(("bearer" = [])),
    request_body = CreateReleaseRequest,
    responses((status = 202, body = ReleaseView), (status = 409, body = enigm_api::ErrorBody),
        (status = 422, body = enigm_api::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateReleaseRequest>,
) -> ApiResult<(StatusCode, Json<ReleaseView>)> {
    let view = releases::create(&state, &caller, request).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// Streams the release's artifact to the data directory; it must have exactly the declared
/// length and SHA-256, or nothing is kept.
#[utoipa::path(put, path = enigm_api::paths::RELEASE_ARTIFACT, tag = "releases", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    params(("id" = ReleaseId, Path, description = "release id")),
    responses((status = 200, body = ReleaseView), (status = 404, body = enigm_api::ErrorBody),
        (status = 409, body = enigm_api::ErrorBody), (status = 422, body = enigm_api::ErrorBody)))]
pub async fn upload_artifact(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ReleaseId>,
    body: Body,
) -> ApiResult<Json<ReleaseView>> {
    Ok(Json(
        releases::artifact::upload(&state, &caller, id, body).await?,
    ))
}

/// Releases, newest first, with their signing state and what devices reported.
#[utoipa::path(get, path = enigm_api::paths::RELEASES, tag = "releases", security(("bearer" = [])),
    responses((status = 200, body = [ReleaseView])))]
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<ReleaseView>>> {
    Ok(Json(releases::list(&state).await?))
}

#[utoipa::path(get, path = enigm_api::paths::RELEASE, tag = "releases", security(("bearer" = [])),
    params(("id" = ReleaseId, Path, description = "release id")),
    responses((status = 200, body = ReleaseView), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn read(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ReleaseId>,
) -> ApiResult<Json<ReleaseView>> {
    Ok(Json(releases::read(&state, id).await?))
}

/// Hands in the signatures of an approved release: the new targets metadata (raw JSON body),
/// signed by the targets role's keys of the trusted root and listing the release with its
/// payload signature. Verified completely before anything is stored (critical: needs the PIN).
#[utoipa::path(post, path = enigm_api::paths::RELEASE_SIGNATURES, tag = "releases", security(("bearer" = [])),
    request_body(content = Object, content_type = "application/json",
        description = "TUF targets metadata, signed"),
    params(("id" = ReleaseId, Path, description = "release id"),
        ("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 200, body = ReleaseView), (status = 404, body = enigm_api::ErrorBody),
        (status = 409, body = enigm_api::ErrorBody), (status = 422, body = enigm_api::ErrorBody)))]
pub async fn hand_in_signatures(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ReleaseId>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> ApiResult<Json<ReleaseView>> {
    let body = metadata_body(&headers, body).await?;
    Ok(Json(
        releases::signing::hand_in(&state, &caller, id, &body).await?,
    ))
}

/// Publishes the newest signed targets metadata: Command signs a new snapshot and timestamp
/// with its online keys; every signed release listed there becomes installable (critical).
#[utoipa::path(post, path = enigm_api::paths::RELEASE_PUBLISH, tag = "releases", security(("bearer" = [])),
    params(("id" = ReleaseId, Path, description = "release id"),
        ("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 200, body = ReleaseView), (status = 404, body = enigm_api::ErrorBody),
        (status = 409, body = enigm_api::ErrorBody)))]
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ReleaseId>,
) -> ApiResult<Json<ReleaseView>> {
    Ok(Json(
        releases::publishing::publish(&state, &caller, id).await?,
    ))
}

/// Installs a new root metadata version (critical, owners only): the first one must be signed
/// by its own root threshold; later ones by the current and the new root thresholds, with the
/// version one higher. The snapshot and timestamp roles must name Command's online keys.
#[utoipa::path(put, path = enigm_api::paths::OTA_ROOT, tag = "releases", security(("bearer" = [])),
    request_body(content = Object, content_type = "application/json",
        description = "TUF root metadata, signed"),
    params(("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 200, body = RepositoryView), (status = 422, body = enigm_api::ErrorBody)))]
pub async fn put_root(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    body: Body,
) -> ApiResult<Json<RepositoryView>> {
    let body = metadata_body(&headers, body).await?;
    Ok(Json(
        releases::repository::put_root(&state, &caller, &body).await?,
    ))
}

/// Installs the current targets metadata re-signed with a rotated targets key (critical,
/// owners only): same content, next version, signed by the trusted root's targets threshold;
/// snapshot and timestamp are signed anew so that devices see it at once.
#[utoipa::path(put, path = enigm_api::paths::OTA_TARGETS, tag = "releases", security(("bearer" = [])),
    request_body(content = Object, content_type = "application/json",
        description = "TUF targets metadata, signed"),
    params(("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 200, body = RepositoryView), (status = 409, body = enigm_api::ErrorBody),
        (status = 422, body = enigm_api::ErrorBody)))]
pub async fn put_targets(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    body: Body,
) -> ApiResult<Json<RepositoryView>> {
    let body = metadata_body(&headers, body).await?;
    Ok(Json(
        releases::repository::put_targets(&state, &caller, &body).await?,
    ))
}

/// The public keys of Command's online snapshot and timestamp roles, for the root.
#[utoipa::path(get, path = enigm_api::paths::OTA_ONLINE_KEYS, tag = "releases", security(("bearer" = [])),
    responses((status = 200, body = OnlineKeysView)))]
pub async fn online_keys(State(state): State<AppState>) -> ApiResult<Json<OnlineKeysView>> {
    Ok(Json(state.ota().online_keys_view()))
}

/// The current version of each role of the repository.
#[utoipa::path(get, path = enigm_api::paths::OTA_REPOSITORY, tag = "releases", security(("bearer" = [])),
    responses((status = 200, body = RepositoryView)))]
pub async fn repository_view(State(state): State<AppState>) -> ApiResult<Json<RepositoryView>> {
    Ok(Json(releases::repository::view(&state).await?))
}

/// A device reports the outcome of an install (signed by the device): installed, rejected
/// before anything switched, or rolled back, with the failure's category. Stored per device and
/// release, and audited.
#[utoipa::path(post, path = enigm_api::paths::DEVICE_OTA_REPORTS, tag = "device",
    request_body = InstallReportRequest,
    params(
        ("signature" = String, Header, description = "RFC 9421 signature"),
        ("signature-input" = String, Header, description = "RFC 9421 signature parameters"),
        ("content-digest" = String, Header, description = "RFC 9530 digest of the body"),
    ),
    responses((status = 200, body = InstallReportResponse), (status = 401, body = enigm_api::ErrorBody),
        (status = 403, body = enigm_api::ErrorBody), (status = 422, body = enigm_api::ErrorBody)))]
pub async fn device_report(
    State(state): State<AppState>,
    device: SignedDevice<InstallReportRequest>,
) -> ApiResult<Json<InstallReportResponse>> {
    Ok(Json(releases::reports::record(&state, device).await?))
}

/// A signed metadata document as handed in: JSON (by its content type), at most
/// [`MAX_METADATA_BYTES`], an object with exactly `signed` and `signatures`. Its bytes are kept
/// as they are; `enigm-ota` verifies what they say.
async fn metadata_body(headers: &axum::http::HeaderMap, body: Body) -> ApiResult<Vec<u8>> {
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected an application/json body",
        ));
    }
    let bytes = read_limited(body, MAX_METADATA_BYTES).await?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| ApiError::bad_request("malformed_json", "the body is not valid JSON"))?;
    let envelope = value.as_object().is_some_and(|object| {
        object.len() == 2 && object.contains_key("signed") && object.contains_key("signatures")
    });
    if !envelope {
        return Err(ApiError::unprocessable(
            "invalid_body",
            "expected signed TUF metadata: an object with `signed` and `signatures` only",
        ));
    }
    Ok(bytes)
}

async fn read_limited(body: Body, limit: usize) -> ApiResult<Vec<u8>> {
    let mut body = body;
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| {
            ApiError::bad_request("unreadable_body", "the request body could not be read")
        })?;
        if let Ok(chunk) = frame.into_data() {
            if bytes.len().saturating_add(chunk.len()) > limit {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the body is larger than {limit} bytes"),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
    }
    Ok(bytes)
}
