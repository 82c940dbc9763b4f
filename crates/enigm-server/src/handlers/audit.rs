//! The audit log for auditors: filtered events, and the Merkle log's checkpoints, leaves and
//! proofs. Reading any of it is itself audited (the audit-log service records the read).
//!
//! Every tree size an answer states, or that a request may name, is bounded by the latest
//! signed checkpoint, never by the database's own counters: leaves the sequencer folded in but
//! no checkpoint signed yet are not served, and a position beyond the signed tree is refused
//! (`start` of the leaves page with 400 `invalid_range`, a leaf or a proof's size with 404
//! `beyond_tree`), so an answer never claims a size nobody signed.

use axum::Json;
use axum::extract::State;
use enigm_api::{
    AuditCheckpointView, AuditConsistencyQuery, AuditConsistencyView, AuditInclusionView,
    AuditLeafView, AuditLeavesPage, AuditLeavesQuery, AuditListQuery, AuditLogKeyView, AuditPage,
    AuditProofQuery, AuditRetentionView, LegalHoldRequest, ListOrder,
};
use enigm_auditlog::Hash;
use enigm_store::{AuditFilter, LeafEntry, StoreError, StoredCheckpoint};
use enigm_types::AuditTarget;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::guard::Caller;
use crate::services::audit_log;
use crate::state::AppState;
use crate::views;

/// Audit events, filtered and paged: oldest first (paged with `after`), or newest first with
/// `order=newest` (paged with `before`).
#[utoipa::path(get, path = enigm_api::paths::AUDIT_EVENTS, tag = "audit", security(("bearer" = [])),
    params(AuditListQuery), responses((status = 200, body = AuditPage), (status = 400, body = enigm_api::ErrorBody), (status = 403, body = enigm_api::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AuditListQuery>,
) -> ApiResult<Json<AuditPage>> {
    let limit = query.limit.unwrap_or(100);
    let newest_first = query.order == Some(ListOrder::Newest);
    let filter = AuditFilter {
        after: query.after,
        before: query.before,
        since: enigm_api::since::parse(query.since.as_deref()),
        newest_first,
        limit,
        actor: query.actor,
        action: query.action,
        outcome: query.outcome,
    };
    let rows = state.store().list_audit(&filter).await?;
    audit_log::record_read(&state, &caller, AuditTarget::AuditLog).await?;
    let next = (rows.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| rows.last().map(|row| row.seq))
        .flatten();
    let (next_after, next_before) = if newest_first {
        (None, next)
    } else {
        (next, None)
    };
    Ok(Json(AuditPage {
        events: rows.iter().map(views::audit_event).collect(),
        next_after,
        next_before,
    }))
}

fn checkpoint_view(checkpoint: StoredCheckpoint) -> AuditCheckpointView {
    AuditCheckpointView {
        tree_size: checkpoint.tree_size,
        root: checkpoint.root.to_base64(),
        note: checkpoint.note,
        published_at: checkpoint.published_at.to_rfc3339(),
    }
}

fn leaf_view(entry: LeafEntry) -> AuditLeafView {
    AuditLeafView {
        index: entry.index,
        leaf_hash: entry.leaf_hash.to_base64(),
        body: entry.body,
        purged: entry.purged,
    }
}

async fn latest_checkpoint(state: &AppState) -> ApiResult<StoredCheckpoint> {
    state
        .store()
        .latest_audit_checkpoint()
        .await?
        .ok_or_else(|| ApiError::not_found("audit checkpoint"))
}

/// The size of the tree the latest signed checkpoint covers; 0 before the first.
async fn signed_tree_size(state: &AppState) -> ApiResult<u64> {
    Ok(state
        .store()
        .latest_audit_checkpoint()
        .await?
        .map_or(0, |checkpoint| checkpoint.tree_size))
}

/// Refuses a size beyond the signed tree as every audit route does: 404 `beyond_tree`.
fn check_signed(requested: u64, signed: u64) -> ApiResult<()> {
    if requested > signed {
        return Err(StoreError::NotInAuditTree {
            requested,
            tree_size: signed,
        }
        .into());
    }
    Ok(())
}

/// The latest signed checkpoint of the audit log.
#[utoipa::path(get, path = enigm_api::paths::AUDIT_CHECKPOINT, tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = AuditCheckpointView), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn checkpoint(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<AuditCheckpointView>> {
    let checkpoint = latest_checkpoint(&state).await?;
    audit_log::record_read(&state, &caller, AuditTarget::AuditLog).await?;
    Ok(Json(checkpoint_view(checkpoint)))
}

/// The public key the audit log's checkpoints are signed with (C2SP signed-note verifier key).
/// Pin it out of band: a key read from the server it verifies proves nothing on its own.
#[utoipa::path(get, path = enigm_api::paths::AUDIT_LOG_KEY, tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = AuditLogKeyView)))]
pub async fn log_key(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<AuditLogKeyView>> {
    audit_log::record_read(&state, &caller, AuditTarget::AuditLog).await?;
    Ok(Json(AuditLogKeyView {
        verifier_key: state.audit_log.verifier().to_key_string(),
    }))
}

/// Leaves of the audit log in order, each with its hash and, unless purged, its body.
#[utoipa::path(get, path = enigm_api::paths::AUDIT_LEAVES, tag = "audit", security(("bearer" = [])),
    params(AuditLeavesQuery), responses((status = 200, body = AuditLeavesPage), (status = 400, body = enigm_api::ErrorBody)))]
pub async fn leaves(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AuditLeavesQuery>,
) -> ApiResult<Json<AuditLeavesPage>> {
    let limit = query.limit.unwrap_or(enigm_api::MAX_PAGE);
    let tree_size = signed_tree_size(&state).await?;
    if query.start > tree_size {
        return Err(ApiError::bad_request(
            "invalid_range",
            format!("`start` is beyond the signed audit tree's size {tree_size}"),
        ));
    }
    // At most up to the signed size: leaves folded in since are served once a checkpoint
    // covers them.
    let limit = u32::try_from(tree_size - query.start).map_or(limit, |left| limit.min(left));
    let entries = state.store().audit_leaves(query.start, limit).await?;
    let end = entries.last().map_or(query.start, |entry| entry.index + 1);
    audit_log::record_read(
        &state,
        &caller,
        AuditTarget::AuditLeaves {
            first: query.start,
            end,
        },
    )
    .await?;
    Ok(Json(AuditLeavesPage {
        leaves: entries.into_iter().map(leaf_view).collect(),
        tree_size,
    }))
}

/// One leaf with its inclusion proof in the tree of `tree_size` leaves.
#[utoipa::path(get, path = enigm_api::paths::AUDIT_LEAF, tag = "audit", security(("bearer" = [])),
    params(("index" = u64, Path, description = "Leaf index"), AuditProofQuery),
    responses((status = 200, body = AuditInclusionView), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn leaf(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(index): ApiPath<u64>,
    ApiQuery(query): ApiQuery<AuditProofQuery>,
) -> ApiResult<Json<AuditInclusionView>> {
    let signed = latest_checkpoint(&state).await?.tree_size;
    let tree_size = query.tree_size.unwrap_or(signed);
    check_signed(tree_size, signed)?;
    let (_, proof) = state
        .store()
        .audit_inclusion_proof(index, tree_size)
        .await?;
    let entry = state
        .store()
        .audit_leaves(index, 1)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("audit leaf"))?;
    audit_log::record_read(
        &state,
        &caller,
        AuditTarget::AuditLeaves {
            first: index,
            end: index + 1,
        },
    )
    .await?;
    Ok(Json(AuditInclusionView {
        leaf: leaf_view(entry),
        tree_size,
        path: proof.path().iter().map(Hash::to_base64).collect(),
    }))
}

/// The consistency proof between two tree sizes.
#[utoipa::path(get, path = enigm_api::paths::AUDIT_CONSISTENCY, tag = "audit", security(("bearer" = [])),
    params(AuditConsistencyQuery),
    responses((status = 200, body = AuditConsistencyView), (status = 400, body = enigm_api::ErrorBody), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn consistency(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AuditConsistencyQuery>,
) -> ApiResult<Json<AuditConsistencyView>> {
    if query.first > query.second {
        return Err(ApiError::bad_request(
            "invalid_range",
            "`first` must not exceed `second`",
        ));
    }
    check_signed(query.second, signed_tree_size(&state).await?)?;
    if query.first == 0 && query.second > 0 {
        // RFC 9162 defines no such proof: a client that held the empty tree takes the signed
        // checkpoint as its first, with nothing to check it against.
        return Err(ApiError::bad_request(
            "invalid_range",
            "a consistency proof from the empty tree is meaningless: `first` must be at least 1",
        ));
    }
    let proof = state
        .store()
        .audit_consistency_proof(query.first, query.second)
        .await?;
    audit_log::record_read(&state, &caller, AuditTarget::AuditLog).await?;
    Ok(Json(AuditConsistencyView {
        first: query.first,
        second: query.second,
        path: proof.path().iter().map(Hash::to_base64).collect(),
    }))
}

async fn retention_view(state: &AppState) -> ApiResult<AuditRetentionView> {
    let hold = state.store().audit_legal_hold().await?;
    Ok(AuditRetentionView {
        legal_hold: hold.enabled,
        legal_hold_changed_at: hold.changed_at.map(|time| time.to_rfc3339()),
        retention_days: state.audit_log.retention().as_secs() / 86_400,
    })
}

/// Retention of audit bodies and the legal hold.
#[utoipa::path(get, path = enigm_api::paths::AUDIT_LEGAL_HOLD, tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = AuditRetentionView)))]
pub async fn retention(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<AuditRetentionView>> {
    let view = retention_view(&state).await?;
    audit_log::record_read(&state, &caller, AuditTarget::AuditLog).await?;
    Ok(Json(view))
}

/// Places the audit log on legal hold (no body is purged) or lifts the hold.
#[utoipa::path(put, path = enigm_api::paths::AUDIT_LEGAL_HOLD, tag = "audit", security(("bearer" = [])),
    request_body = LegalHoldRequest,
    params(("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 200, body = AuditRetentionView), (status = 403, body = enigm_api::ErrorBody)))]
pub async fn set_legal_hold(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<LegalHoldRequest>,
) -> ApiResult<Json<AuditRetentionView>> {
    audit_log::set_legal_hold(&state, &caller, request.legal_hold).await?;
    Ok(Json(retention_view(&state).await?))
}
