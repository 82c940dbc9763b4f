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
    CreateReleaseRequest, InstallCountsView, InstallReportRequest, InstallReportResponse,
    MAX_COMPATIBLE_MODELS, MAX_RELEASE_DAYS, OnlineKeysView, ReleaseKind, ReleaseView,
    RepositoryView,
};
use enigm_store::{MetadataRole, NewRelease, ReleaseRecord, StoreError, WriteTx};
use enigm_types::{
    Actor, ApprovalAction, ApprovalId, AuditAction, AuditEvent, AuditTarget, InstallOutcome,
    Justification, Outcome, ReasonCategory, ReleaseId, ReleaseState, Timestamp,
};
use http_body_util::BodyExt as _;

use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::guard::Caller;
use crate::handlers::approvals;
use crate::ota::{OtaRefusal, StagedArtifact};
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
    let justification = Justification::parse(&request.justification)
        .map_err(|error| ApiError::unprocessable("invalid_justification", error.to_string()))?;
    let declared = validate(&request)?;
    let now = state.now();
    let id = ReleaseId::random();
    let release = NewRelease {
        id,
        target_name: request.target_name.clone(),
        kind: request.kind.as_str().to_owned(),
        release_version: request.release_version.clone(),
        rollback_index: request.rollback_index,
        channel: request.channel.clone(),
        models: serde_json::to_string(&declared.models)
            .map_err(|error| ApiError::internal(&error))?,
        length: request.length,
        sha256: declared.sha256,
        expires_at: now.saturating_add(std::time::Duration::from_secs(
            u64::from(request.expires_in_days) * 24 * 60 * 60,
        )),
        created_by: caller.admin.id,
        created_at: now,
    };
    let mut tx = state.store().begin().await?;
    match tx.insert_release(&release).await {
        Err(StoreError::Conflict) => {
            return Err(ApiError::conflict(
                ReasonCategory::Conflict,
                "a release with this target name exists",
            ));
        }
        other => other?,
    }
    let approval = approvals::open_request_in(
        &state,
        &mut tx,
        &caller,
        ApprovalAction::ReleaseSigning { release: id },
        &justification,
        now,
    )
    .await?;
    tx.set_release_approval(id, approval).await?;
    tx.append_audit(
        &audit::success(
            now,
            caller.admin.id,
            AuditAction::ReleaseCreate,
            AuditTarget::Release { release: id },
        )
        .with_change_ref(approval),
    )
    .await?;
    tx.commit().await?;
    let record = release_record(&state, id).await?;
    Ok((StatusCode::ACCEPTED, Json(view(&state, &record).await?)))
}

struct Declared {
    models: Vec<String>,
    sha256: String,
}

fn validate(request: &CreateReleaseRequest) -> ApiResult<Declared> {
    let invalid = |what: &'static str| ApiError::unprocessable("invalid_release", what);
    if enigm_ota::TargetName::parse(&request.target_name).is_err() {
        return Err(invalid(
            "target_name must be a relative `/`-separated path of 1 to 255 bytes of printable \
             ASCII without `\\`, `?`, `#`, empty, `.` or `..` segments",
        ));
    }
    if !is_label(&request.channel, 32) {
        return Err(invalid("channel must be 1 to 32 of `a-z 0-9 - _ .`"));
    }
    if request.compatible_models.is_empty()
        || request.compatible_models.len() > MAX_COMPATIBLE_MODELS
        || !request
            .compatible_models
            .iter()
            .all(|model| is_label(model, 64))
    {
        return Err(invalid(
            "compatible_models must list 1 to 64 models, each 1 to 64 of `a-z 0-9 - _ .`",
        ));
    }
    if request.release_version.is_empty()
        || request.release_version.len() > 64
        || !request
            .release_version
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_.+".contains(&byte))
    {
        return Err(invalid(
            "release_version must be 1 to 64 of `A-Z a-z 0-9 - _ . +`",
        ));
    }
    if request.length == 0 {
        return Err(invalid("length must be positive"));
    }
    if !(1..=MAX_RELEASE_DAYS).contains(&request.expires_in_days) {
        return Err(invalid("expires_in_days must be between 1 and 730"));
    }
    let sha256 = request.sha256.to_ascii_lowercase();
    if sha256.len() != 64 || !sha256.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(invalid("sha256 must be 64 hex digits"));
    }
    if i64::try_from(request.length).is_err() || i64::try_from(request.rollback_index).is_err() {
        return Err(invalid("length and rollback_index must be below 2^63"));
    }
    let mut models = request.compatible_models.clone();
    models.sort_unstable();
    models.dedup();
    Ok(Declared { models, sha256 })
}

fn is_label(text: &str, max: usize) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"-_.".contains(&byte)
        })
}

/// Streams the release's artifact to the data directory; it must have exactly the declared
/// length and SHA-256, or nothing is kept.
#[utoipa::path(put, path = enigm_api::paths::RELEASE_ARTIFACT, tag = "releases", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    params(("id" = String, Path, description = "release id")),
    responses((status = 200, body = ReleaseView), (status = 404, body = enigm_api::ErrorBody),
        (status = 409, body = enigm_api::ErrorBody), (status = 422, body = enigm_api::ErrorBody)))]
pub async fn upload_artifact(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ReleaseId>,
    body: Body,
) -> ApiResult<Json<ReleaseView>> {
    let now = state.now();
    let record = release_record(&state, id).await?;
    if record.artifact_stored {
        return Err(ApiError::conflict(
            ReasonCategory::Conflict,
            "the artifact of this release is stored already",
        ));
    }
    let mut staged = state
        .ota()
        .stage_artifact(record.release.length)
        .await
        .map_err(|error| ApiError::internal(&*error))?;
    let mut body = body;
    let mut failure = None;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            failure = Some(ApiError::bad_request(
                "unreadable_body",
                "the request body could not be read",
            ));
            break;
        };
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        match staged.write(&chunk).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => return Err(ApiError::internal(&*error)),
        }
    }
    if let Some(error) = failure {
        staged.discard().await;
        return Err(error);
    }
    let finished = staged
        .finish(&record.release.sha256)
        .await
        .map_err(|error| ApiError::internal(&*error))?;
    let target = AuditTarget::Release { release: id };
    if let StagedArtifact::Mismatch = finished {
        let event = audit::denied(
            now,
            Actor::Admin(caller.admin.id),
            AuditAction::ReleaseArtifactUpload,
            target,
            ReasonCategory::UpdateArtifactMismatch,
        );
        state.audit(&[event]).await?;
        return Err(ApiError::unprocessable(
            "artifact_mismatch",
            "the artifact does not have the declared length and SHA-256; nothing was stored",
        ));
    }
    let mut tx = state.store().begin().await?;
    tx.mark_artifact_stored(id).await?;
    tx.append_audit(&audit::success(
        now,
        caller.admin.id,
        AuditAction::ReleaseArtifactUpload,
        target,
    ))
    .await?;
    tx.commit().await?;
    let record = release_record(&state, id).await?;
    Ok(Json(view(&state, &record).await?))
}

/// Releases, newest first, with their signing state and what devices reported.
#[utoipa::path(get, path = enigm_api::paths::RELEASES, tag = "releases", security(("bearer" = [])),
    responses((status = 200, body = [ReleaseView])))]
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<ReleaseView>>> {
    let records = state.store().list_releases().await?;
    let mut views = Vec::with_capacity(records.len());
    for record in &records {
        views.push(view(&state, record).await?);
    }
    Ok(Json(views))
}

#[utoipa::path(get, path = enigm_api::paths::RELEASE, tag = "releases", security(("bearer" = [])),
    params(("id" = String, Path, description = "release id")),
    responses((status = 200, body = ReleaseView), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn read(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ReleaseId>,
) -> ApiResult<Json<ReleaseView>> {
    let record = release_record(&state, id).await?;
    Ok(Json(view(&state, &record).await?))
}

/// Hands in the signatures of an approved release: the new targets metadata (raw JSON body),
/// signed by the targets role's keys of the trusted root and listing the release with its
/// payload signature. Verified completely before anything is stored (critical: needs the PIN).
#[utoipa::path(post, path = enigm_api::paths::RELEASE_SIGNATURES, tag = "releases", security(("bearer" = [])),
    request_body(content = Object, content_type = "application/json",
        description = "TUF targets metadata, signed"),
    params(("id" = String, Path, description = "release id"),
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
    let now = state.now();
    let target = AuditTarget::Release { release: id };
    let deny = |reason: ReasonCategory, change_ref: Option<ApprovalId>| -> AuditEvent {
        let event = audit::denied(
            now,
            Actor::Admin(caller.admin.id),
            AuditAction::ReleaseSign,
            target,
            reason,
        );
        match change_ref {
            Some(approval) => event.with_change_ref(approval),
            None => event,
        }
    };
    let mut tx = state.store().begin().await?;
    let Some(record) = tx.release_for_update(id).await? else {
        return Err(ApiError::not_found("release"));
    };
    if record.state != ReleaseState::Approved || !record.artifact_stored {
        drop(tx);
        let (reason, message) = if record.state == ReleaseState::Draft {
            (
                ReasonCategory::ReleaseNotApproved,
                "the release's signing request is not approved",
            )
        } else if !record.artifact_stored {
            (
                ReasonCategory::InvalidTransition,
                "the release's artifact has not been uploaded",
            )
        } else {
            (
                ReasonCategory::InvalidTransition,
                "the release is signed already",
            )
        };
        state.audit(&[deny(reason, record.approval)]).await?;
        return Err(ApiError::conflict(reason, message));
    }
    let Some(root) = tx.latest_ota_metadata(MetadataRole::Root).await? else {
        drop(tx);
        let reason = ReasonCategory::RepositoryNotInitialised;
        state.audit(&[deny(reason, record.approval)]).await?;
        return Err(ApiError::conflict(
            reason,
            "the repository has no root metadata: run `enigm ota keys init` first",
        ));
    };
    let current = tx.latest_ota_metadata(MetadataRole::Targets).await?;
    let accepted = match state.ota().accept_targets(
        &root.body,
        current.as_ref().map(|m| &m.body[..]),
        &body,
        &record,
        now,
    ) {
        Ok(accepted) => accepted,
        Err(refusal) => {
            drop(tx);
            state
                .audit(&[deny(refusal.reason, record.approval)])
                .await?;
            return Err(refusal_error(&refusal));
        }
    };
    tx.insert_ota_metadata(MetadataRole::Targets, accepted.version, &body, now)
        .await?;
    tx.advance_release(
        id,
        ReleaseState::Approved,
        ReleaseState::Signed,
        Some(accepted.version),
        now,
    )
    .await?;
    let mut event = audit::success(now, caller.admin.id, AuditAction::ReleaseSign, target);
    if let Some(approval) = record.approval {
        event = event.with_change_ref(approval);
    }
    tx.append_audit(&event).await?;
    tx.commit().await?;
    let record = release_record(&state, id).await?;
    Ok(Json(view(&state, &record).await?))
}

/// Publishes the newest signed targets metadata: Command signs a new snapshot and timestamp
/// with its online keys; every signed release listed there becomes installable (critical).
#[utoipa::path(post, path = enigm_api::paths::RELEASE_PUBLISH, tag = "releases", security(("bearer" = [])),
    params(("id" = String, Path, description = "release id"),
        ("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 200, body = ReleaseView), (status = 404, body = enigm_api::ErrorBody),
        (status = 409, body = enigm_api::ErrorBody)))]
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ReleaseId>,
) -> ApiResult<Json<ReleaseView>> {
    let now = state.now();
    let target = AuditTarget::Release { release: id };
    let mut tx = state.store().begin().await?;
    let Some(record) = tx.release_for_update(id).await? else {
        return Err(ApiError::not_found("release"));
    };
    if record.state != ReleaseState::Signed {
        drop(tx);
        let reason = if record.state == ReleaseState::Published {
            ReasonCategory::InvalidTransition
        } else {
            ReasonCategory::ReleaseNotApproved
        };
        let event = audit::denied(
            now,
            Actor::Admin(caller.admin.id),
            AuditAction::ReleasePublish,
            target,
            reason,
        );
        state.audit(&[event]).await?;
        return Err(ApiError::conflict(
            reason,
            "only a signed, unpublished release can be published",
        ));
    }
    let published = crate::ota::publish_latest(&state, &mut tx, now).await?;
    let targets_version = published.targets_version;
    for other in state.store().list_releases().await? {
        if other.state == ReleaseState::Signed
            && other
                .targets_version
                .is_some_and(|version| version <= targets_version)
        {
            tx.advance_release(
                other.release.id,
                ReleaseState::Signed,
                ReleaseState::Published,
                None,
                now,
            )
            .await?;
            tx.append_audit(&audit::success(
                now,
                caller.admin.id,
                AuditAction::ReleasePublish,
                AuditTarget::Release {
                    release: other.release.id,
                },
            ))
            .await?;
        }
    }
    tx.commit().await?;
    let record = release_record(&state, id).await?;
    Ok(Json(view(&state, &record).await?))
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
    let now = state.now();
    let mut tx = state.store().begin().await?;
    let current = tx.latest_ota_metadata(MetadataRole::Root).await?;
    let accepted = match state
        .ota()
        .accept_root(current.as_ref().map(|m| &m.body[..]), &body, now)
    {
        Ok(accepted) => accepted,
        Err(refusal) => {
            drop(tx);
            let event = audit::denied(
                now,
                Actor::Admin(caller.admin.id),
                AuditAction::OtaRootUpdate,
                AuditTarget::OtaRepository,
                refusal.reason,
            );
            state.audit(&[event]).await?;
            return Err(refusal_error(&refusal));
        }
    };
    tx.insert_ota_metadata(MetadataRole::Root, accepted.version, &body, now)
        .await?;
    tx.append_audit(&audit::success(
        now,
        caller.admin.id,
        AuditAction::OtaRootUpdate,
        AuditTarget::OtaRepository,
    ))
    .await?;
    // A new root may rotate the online keys: re-sign what devices fetch first.
    if tx
        .latest_ota_metadata(MetadataRole::Targets)
        .await?
        .is_some()
    {
        crate::ota::publish_latest(&state, &mut tx, now).await?;
    }
    tx.commit().await?;
    Ok(Json(repository(&state).await?))
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
    let now = state.now();
    let mut tx = state.store().begin().await?;
    let (Some(root), Some(current)) = (
        tx.latest_ota_metadata(MetadataRole::Root).await?,
        tx.latest_ota_metadata(MetadataRole::Targets).await?,
    ) else {
        return Err(ApiError::conflict(
            ReasonCategory::RepositoryNotInitialised,
            "there is no root or targets metadata to re-sign",
        ));
    };
    let accepted = match state
        .ota()
        .accept_resigned_targets(&root.body, &current.body, &body, now)
    {
        Ok(accepted) => accepted,
        Err(refusal) => {
            drop(tx);
            let event = audit::denied(
                now,
                Actor::Admin(caller.admin.id),
                AuditAction::ReleaseSign,
                AuditTarget::OtaRepository,
                refusal.reason,
            );
            state.audit(&[event]).await?;
            return Err(refusal_error(&refusal));
        }
    };
    tx.insert_ota_metadata(MetadataRole::Targets, accepted.version, &body, now)
        .await?;
    // Releases listed in the re-signed metadata are now listed in this version.
    crate::ota::publish_latest(&state, &mut tx, now).await?;
    tx.append_audit(&audit::success(
        now,
        caller.admin.id,
        AuditAction::ReleaseSign,
        AuditTarget::OtaRepository,
    ))
    .await?;
    tx.commit().await?;
    Ok(Json(repository(&state).await?))
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
    Ok(Json(repository(&state).await?))
}

async fn repository(state: &AppState) -> ApiResult<RepositoryView> {
    let store = state.store();
    let version = |metadata: Option<enigm_store::StoredMetadata>| metadata.map(|m| m.version);
    let timestamp = store.latest_ota_metadata(MetadataRole::Timestamp).await?;
    let timestamp_expires = timestamp
        .as_ref()
        .and_then(|metadata| crate::ota::expires_of(&metadata.body));
    Ok(RepositoryView {
        root_version: version(store.latest_ota_metadata(MetadataRole::Root).await?),
        targets_version: version(store.latest_ota_metadata(MetadataRole::Targets).await?),
        snapshot_version: version(store.latest_ota_metadata(MetadataRole::Snapshot).await?),
        timestamp_version: version(timestamp),
        timestamp_expires,
    })
}

/// Carries out an executed release-signing approval: the release may now be signed.
pub(crate) async fn execute_signing_approval(
    tx: &mut WriteTx<'_>,
    release: ReleaseId,
    approval: ApprovalId,
) -> ApiResult<Result<(), ReasonCategory>> {
    let Some(record) = tx.release_for_update(release).await? else {
        return Ok(Err(ReasonCategory::InvalidTransition));
    };
    if record.approval != Some(approval) {
        return Ok(Err(ReasonCategory::InvalidTransition));
    }
    let moved = tx
        .advance_release(
            release,
            ReleaseState::Draft,
            ReleaseState::Approved,
            None,
            Timestamp::from_unix_millis(0),
        )
        .await?;
    Ok(if moved {
        Ok(())
    } else {
        Err(ReasonCategory::InvalidTransition)
    })
}

pub(crate) fn refusal_error(refusal: &OtaRefusal) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        refusal.reason.as_str(),
        refusal.message.clone(),
    )
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

async fn release_record(state: &AppState, id: ReleaseId) -> ApiResult<ReleaseRecord> {
    state
        .store()
        .release_by_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found("release"))
}

async fn view(state: &AppState, record: &ReleaseRecord) -> ApiResult<ReleaseView> {
    let release = &record.release;
    let counts = state.store().install_counts(&release.target_name).await?;
    let kind = ReleaseKind::parse(&release.kind)
        .ok_or_else(|| ApiError::internal(&StoreError::Corrupt("release kind")))?;
    let compatible_models: Vec<String> = serde_json::from_str(&release.models)
        .map_err(|_| ApiError::internal(&StoreError::Corrupt("release models")))?;
    Ok(ReleaseView {
        id: release.id,
        target_name: release.target_name.clone(),
        kind,
        release_version: release.release_version.clone(),
        rollback_index: release.rollback_index,
        channel: release.channel.clone(),
        compatible_models,
        length: release.length,
        sha256: release.sha256.clone(),
        expires_at: release.expires_at.to_rfc3339(),
        state: record.state,
        approval: record.approval,
        artifact_stored: record.artifact_stored,
        targets_version: record.targets_version,
        created_at: release.created_at.to_rfc3339(),
        signed_at: record.signed_at.map(Timestamp::to_rfc3339),
        published_at: record.published_at.map(Timestamp::to_rfc3339),
        installs: InstallCountsView {
            installed: counts.installed,
            rejected: counts.rejected,
            rolled_back: counts.rolled_back,
        },
    })
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
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    crate::extract::RawBody(body): crate::extract::RawBody,
) -> ApiResult<Json<InstallReportResponse>> {
    use crate::handlers::devices::{inactive_reason, record_nonce, signed_body};

    let action = AuditAction::DeviceOtaInstall;
    let now = state.now();
    let (verified, refuse, request) =
        signed_body::<InstallReportRequest>(&state, action, (&method, &uri, &headers), &body, now)
            .await?;
    let handle = refuse.handle;
    if enigm_ota::TargetName::parse(&request.target_name).is_err()
        || request.release_version.len() > 64
        || (request.outcome == InstallOutcome::Installed) != request.reason.is_none()
    {
        return Err(refuse.deny(ReasonCategory::InvalidBody).await);
    }
    let mut tx = state.store().begin().await?;
    if let Err(error) = record_nonce(&state, &mut tx, &verified, handle, now).await {
        drop(tx);
        return Err(refuse.store_refusal(error).await);
    }
    let Some(device_state) = tx.device_state(&handle).await? else {
        drop(tx);
        return Err(refuse.deny(ReasonCategory::UnknownDevice).await);
    };
    if let Some(reason) = inactive_reason(device_state) {
        drop(tx);
        return Err(refuse.deny(reason).await);
    }
    tx.record_install_report(
        &handle,
        &request.target_name,
        request.outcome,
        request.reason.map(ReasonCategory::as_str),
        now,
    )
    .await?;
    let target = AuditTarget::Device { handle };
    let event = match request.outcome {
        InstallOutcome::Installed => {
            AuditEvent::new(now, Actor::Device(handle), action, target, Outcome::Success)
        }
        InstallOutcome::Rejected | InstallOutcome::RolledBack => {
            let mut event =
                AuditEvent::new(now, Actor::Device(handle), action, target, Outcome::Failed);
            if let Some(reason) = request.reason {
                event = event.with_reason(reason);
            }
            event
        }
    };
    tx.append_audit(&event).await?;
    tx.commit().await?;
    Ok(Json(InstallReportResponse { recorded: true }))
}
