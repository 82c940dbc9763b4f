//! Sessions of all administrators, for security admins and owners.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use enigm_api::SessionView;
use enigm_types::SessionId;

use crate::error::ApiResult;
use crate::extract::ApiPath;
use crate::guard::Caller;
use crate::services;
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
    params(("id" = SessionId, Path, description = "session id"), ("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 204), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn close(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<SessionId>,
) -> ApiResult<StatusCode> {
    services::sessions::close_audited(&state, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
