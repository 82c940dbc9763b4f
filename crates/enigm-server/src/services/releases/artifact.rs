//! A release's artifact: streamed to the data directory, kept only with exactly the declared
//! length and SHA-256.

use axum::body::Body;
use enigm_api::releases::ReleaseView;
use enigm_types::{Actor, AuditAction, AuditTarget, ReasonCategory, ReleaseId};
use http_body_util::BodyExt as _;

use super::{release_record, view};
use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::guard::Caller;
use crate::ota::StagedArtifact;
use crate::state::AppState;

/// Streams the release's artifact to the data directory; it must have exactly the declared
/// length and SHA-256, or nothing is kept.
pub async fn upload(
    state: &AppState,
    caller: &Caller,
    id: ReleaseId,
    body: Body,
) -> ApiResult<ReleaseView> {
    let now = state.now();
    let record = release_record(state, id).await?;
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
    let record = release_record(state, id).await?;
    view(state, &record).await
}
