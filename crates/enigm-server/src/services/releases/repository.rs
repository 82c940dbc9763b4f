//! The repository's trust: a new root metadata version (which may rotate the online keys), the
//! current targets re-signed with a rotated targets key, and the current version of each role.

use enigm_api::releases::RepositoryView;
use enigm_store::MetadataRole;
use enigm_types::{Actor, AuditAction, AuditTarget, ReasonCategory};

use super::refusal_error;
use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::guard::Caller;
use crate::state::AppState;

/// Installs a new root metadata version: the first one must be signed by its own root
/// threshold; later ones by the current and the new root thresholds, with the version one
/// higher. The snapshot and timestamp roles must name Command's online keys, and a director
/// pin, when there is one, Command's director key.
pub async fn put_root(state: &AppState, caller: &Caller, body: &[u8]) -> ApiResult<RepositoryView> {
    let now = state.now();
    let mut tx = state.store().begin().await?;
    let current = tx.latest_ota_metadata(MetadataRole::Root).await?;
    let accepted = match state
        .ota()
        .accept_root(current.as_ref().map(|m| &m.body[..]), body, now)
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
    tx.insert_ota_metadata(MetadataRole::Root, accepted.version, body, now)
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
        crate::ota::publish_latest(state, &mut tx, now).await?;
    }
    tx.commit().await?;
    view(state).await
}

/// Installs the current targets metadata re-signed with a rotated targets key (same content,
/// next version), or with the policy bundles delegated to Command's online snapshot key, or the
/// first targets metadata (version 1, no target, at most that delegation); signed by the
/// trusted root's targets threshold. Snapshot and timestamp are signed anew so that devices
/// see it at once.
pub async fn put_targets(
    state: &AppState,
    caller: &Caller,
    body: &[u8],
) -> ApiResult<RepositoryView> {
    let now = state.now();
    let mut tx = state.store().begin().await?;
    let Some(root) = tx.latest_ota_metadata(MetadataRole::Root).await? else {
        return Err(ApiError::conflict(
            ReasonCategory::RepositoryNotInitialised,
            "there is no root metadata yet: run `enigm ota keys init` first",
        ));
    };
    let current = tx.latest_ota_metadata(MetadataRole::Targets).await?;
    let accepted = match state.ota().accept_resigned_targets(
        &root.body,
        current.as_ref().map(|current| &current.body[..]),
        body,
        now,
    ) {
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
    tx.insert_ota_metadata(MetadataRole::Targets, accepted.version, body, now)
        .await?;
    // Releases listed in the re-signed metadata are now listed in this version.
    crate::ota::publish_latest(state, &mut tx, now).await?;
    tx.append_audit(&audit::success(
        now,
        caller.admin.id,
        AuditAction::ReleaseSign,
        AuditTarget::OtaRepository,
    ))
    .await?;
    tx.commit().await?;
    view(state).await
}

/// The current version of each role of the repository.
pub async fn view(state: &AppState) -> ApiResult<RepositoryView> {
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
