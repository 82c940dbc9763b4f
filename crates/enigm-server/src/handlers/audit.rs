//! The audit log for auditors. Reading it is itself audited.

use axum::Json;
use axum::extract::State;
use enigm_api::{AuditListQuery, AuditPage};
use enigm_store::AuditFilter;
use enigm_types::{AuditAction, AuditTarget};

use crate::audit;
use crate::error::ApiResult;
use crate::extract::ApiQuery;
use crate::guard::Caller;
use crate::state::AppState;
use crate::views;

/// Audit events in log order, filtered and paged.
#[utoipa::path(get, path = enigm_api::paths::AUDIT_EVENTS, tag = "audit", security(("bearer" = [])),
    params(AuditListQuery), responses((status = 200, body = AuditPage), (status = 403, body = enigm_api::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AuditListQuery>,
) -> ApiResult<Json<AuditPage>> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let filter = AuditFilter {
        after: query.after,
        limit,
        actor: query.actor,
        action: query.action,
        outcome: query.outcome,
    };
    let rows = state.store().list_audit(&filter).await?;
    state
        .audit(&[audit::success(
            state.now(),
            caller.admin.id,
            AuditAction::AuditRead,
            AuditTarget::AuditLog,
        )])
        .await?;
    let next_after = (rows.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| rows.last().map(|row| row.seq))
        .flatten();
    Ok(Json(AuditPage {
        events: rows.iter().map(views::audit_event).collect(),
        next_after,
    }))
}
