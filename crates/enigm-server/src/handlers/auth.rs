//! Login, logout and the caller's own credentials: password, critical-operation PIN, TOTP and
//! sessions. Each handler decodes, calls `services::auth` and encodes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use enigm_api::{
    AccountView, ChangePasswordRequest, LoginRequest, LoginResponse, SessionView,
    SetDuressPinRequest, SetPinRequest, TotpConfirmRequest, TotpEnrollRequest, TotpEnrollment,
    TotpRemoveRequest,
};
use enigm_types::SessionId;

use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ClientIp};
use crate::guard::Caller;
use crate::services::auth;
use crate::state::AppState;
use crate::views;

/// Log in with username and password (and a TOTP code when enabled); returns a bearer token.
#[utoipa::path(post, path = enigm_api::paths::LOGIN, tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = enigm_api::ErrorBody),
              (status = 429, body = enigm_api::ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(request): ApiJson<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    Ok(Json(auth::login(&state, ip, request).await?))
}

/// End the current session.
#[utoipa::path(post, path = enigm_api::paths::LOGOUT, tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = enigm_api::ErrorBody)))]
pub async fn logout(State(state): State<AppState>, caller: Caller) -> ApiResult<StatusCode> {
    auth::logout(&state, &caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's own account.
#[utoipa::path(get, path = enigm_api::paths::WHOAMI, tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = AccountView), (status = 401, body = enigm_api::ErrorBody)))]
pub async fn whoami(caller: Caller) -> Json<AccountView> {
    Json(views::own_account(&caller.admin))
}

/// Change the caller's password (needs the current password, and the PIN when one is set);
/// the caller's other sessions are closed.
#[utoipa::path(put, path = enigm_api::paths::PASSWORD, tag = "auth", security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses((status = 204), (status = 401, body = enigm_api::ErrorBody), (status = 403, body = enigm_api::ErrorBody),
              (status = 422, body = enigm_api::ErrorBody), (status = 423, body = enigm_api::ErrorBody),
              (status = 429, body = enigm_api::ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    auth::change_password(&state, &caller, request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Set or change the caller's 6-digit critical-operation PIN (needs the current password, and
/// the current PIN when one is set).
#[utoipa::path(put, path = enigm_api::paths::PIN, tag = "auth", security(("bearer" = [])), request_body = SetPinRequest,
    responses((status = 204), (status = 401, body = enigm_api::ErrorBody), (status = 403, body = enigm_api::ErrorBody),
              (status = 422, body = enigm_api::ErrorBody), (status = 423, body = enigm_api::ErrorBody),
              (status = 429, body = enigm_api::ErrorBody)))]
pub async fn set_pin(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<SetPinRequest>,
) -> ApiResult<StatusCode> {
    auth::set_pin(&state, &caller, request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Set (or, with `duress_pin` null, remove) the caller's duress PIN (needs the current password
/// and PIN). Entered instead of the PIN, it appears to succeed, does nothing, raises the
/// account's risk state and a Critical security event.
#[utoipa::path(put, path = enigm_api::paths::DURESS_PIN, tag = "auth", security(("bearer" = [])), request_body = SetDuressPinRequest,
    responses((status = 204), (status = 401, body = enigm_api::ErrorBody), (status = 403, body = enigm_api::ErrorBody),
              (status = 422, body = enigm_api::ErrorBody), (status = 423, body = enigm_api::ErrorBody),
              (status = 429, body = enigm_api::ErrorBody)))]
pub async fn set_duress_pin(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<SetDuressPinRequest>,
) -> ApiResult<StatusCode> {
    auth::set_duress_pin(&state, &caller, request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Start TOTP enrollment (needs the current password, and the PIN when one is set): returns a
/// new secret, required at login once confirmed.
#[utoipa::path(post, path = enigm_api::paths::TOTP, tag = "auth", security(("bearer" = [])), request_body = TotpEnrollRequest,
    responses((status = 200, body = TotpEnrollment), (status = 401, body = enigm_api::ErrorBody),
              (status = 403, body = enigm_api::ErrorBody), (status = 409, body = enigm_api::ErrorBody),
              (status = 423, body = enigm_api::ErrorBody), (status = 429, body = enigm_api::ErrorBody)))]
pub async fn totp_enroll(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<TotpEnrollRequest>,
) -> ApiResult<Json<TotpEnrollment>> {
    Ok(Json(auth::totp_enroll(&state, &caller, request).await?))
}

/// Confirm TOTP enrollment with the current password and a current code; from then on login
/// needs a code.
#[utoipa::path(post, path = enigm_api::paths::TOTP_CONFIRM, tag = "auth", security(("bearer" = [])), request_body = TotpConfirmRequest,
    responses((status = 204), (status = 401, body = enigm_api::ErrorBody), (status = 403, body = enigm_api::ErrorBody),
              (status = 409, body = enigm_api::ErrorBody), (status = 429, body = enigm_api::ErrorBody)))]
pub async fn totp_confirm(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<TotpConfirmRequest>,
) -> ApiResult<StatusCode> {
    auth::totp_confirm(&state, &caller, request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove the caller's own TOTP with the current password, the PIN and a current code.
#[utoipa::path(post, path = enigm_api::paths::TOTP_REMOVE, tag = "auth", security(("bearer" = [])), request_body = TotpRemoveRequest,
    responses((status = 204), (status = 401, body = enigm_api::ErrorBody), (status = 403, body = enigm_api::ErrorBody),
              (status = 409, body = enigm_api::ErrorBody), (status = 423, body = enigm_api::ErrorBody),
              (status = 429, body = enigm_api::ErrorBody)))]
pub async fn totp_remove(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<TotpRemoveRequest>,
) -> ApiResult<StatusCode> {
    auth::totp_remove(&state, &caller, request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's open sessions.
#[utoipa::path(get, path = enigm_api::paths::OWN_SESSIONS, tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = [SessionView])))]
pub async fn own_sessions(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<SessionView>>> {
    Ok(Json(auth::own_sessions(&state, &caller).await?))
}

/// Close one of the caller's own sessions.
#[utoipa::path(delete, path = enigm_api::paths::OWN_SESSION, tag = "auth", security(("bearer" = [])),
    params(("id" = SessionId, Path, description = "session id")),
    responses((status = 204), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn close_own_session(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<SessionId>,
) -> ApiResult<StatusCode> {
    auth::close_own_session(&state, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
