//! Publishing: Command signs a new snapshot and timestamp with its online keys over the newest
//! signed targets metadata; every signed release listed there becomes installable.

use enigm_api::releases::ReleaseView;
use enigm_types::{Actor, AuditAction, AuditTarget, ReasonCategory, ReleaseId, ReleaseState};

use super::{release_record, view};
use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::guard::Caller;
use crate::state::AppState;

/// Publishes the newest signed targets metadata, with every signed release it lists.
pub async fn publish(state: &AppState, caller: &Caller, id: ReleaseId) -> ApiResult<ReleaseView> {
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
    let published = crate::ota::publish_latest(state, &mut tx, now).await?;
    let targets_version = published.targets_version;
    for other in tx.list_releases().await? {
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
    let record = release_record(state, id).await?;
    view(state, &record).await
}
