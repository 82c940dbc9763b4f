//! Signing a release: the signing workstation hands in the new targets metadata once the
//! release-signing request is approved (signed by the Manifest Signing Authority's targets keys
//! and carrying the Release-Signing Authority's payload signature), and the approvals service
//! carries out the approval itself.

use enigm_api::releases::ReleaseView;
use enigm_store::{MetadataRole, WriteTx};
use enigm_types::{
    Actor, ApprovalId, AuditAction, AuditEvent, AuditTarget, ReasonCategory, ReleaseId,
    ReleaseState, Timestamp,
};

use super::{refusal_error, release_record, view};
use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::guard::Caller;
use crate::state::AppState;

/// Accepts the signatures of an approved release: the new targets metadata, signed by the
/// targets role's keys of the trusted root and listing the release with its payload signature.
/// Verified completely before anything is stored.
pub async fn hand_in(
    state: &AppState,
    caller: &Caller,
    id: ReleaseId,
    body: &[u8],
) -> ApiResult<ReleaseView> {
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
        body,
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
    tx.insert_ota_metadata(MetadataRole::Targets, accepted.version, body, now)
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
    let record = release_record(state, id).await?;
    view(state, &record).await
}

/// Carries out an executed release-signing approval: the release may now be signed.
pub async fn execute_signing_approval(
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
