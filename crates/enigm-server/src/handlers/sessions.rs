//! Sessions of all administrators, for security admins and owners.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use enigm_api::SessionView;
use enigm_types::{AuditAction, AuditTarget, SessionId};

use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::guard::Caller;
use crate::state::AppState;
use crate::views;

/// Every open session.
#[utoipa::path(get, path = enigm_api::paths::SESSIONS, tag = "sessions", security(("bearer" = [])),
    responses((status = 200, body = [SessionView]), (status = 403, body = enigm_api::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<SessionView>>> {
    let sessions = state.store().list_open_sessions(None, state.now()).await?;
    Ok(Json(
        sessions
            .iter()
            .map(|session| views::session(session, caller.session.id))
            .collect(),
    ))
}

/// Close any session (critical: needs the PIN).
#[utoipa::path(delete, path = enigm_api::paths::SESSION, tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "session id"), ("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 204), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn close(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<SessionId>,
) -> ApiResult<StatusCode> {
    close_audited(&state, &caller, id).await
}

/// Closes an open session and audits who closed it; 404 when it is not open.
pub(crate) async fn close_audited(
    state: &AppState,
    caller: &Caller,
    id: SessionId,
) -> ApiResult<StatusCode> {
    let now = state.now();
    let mut tx = state.store().begin().await?;
    if !tx.close_session(id, now).await? {
        return Err(ApiError::not_found("session"));
    }
    let target = AuditTarget::Session { session: id };
    tx.append_audit(&audit::success(
        now,
        caller.admin.id,
        AuditAction::SessionClose,
        target,
    ))
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
