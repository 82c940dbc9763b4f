//! Administrator accounts and their roles. Granting a role always goes through an approval.
//! The users service does the work.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use enigm_api::{AccountView, ApprovalView, CreateUserRequest, RoleGrantRequest, TotpResetRequest};
use enigm_types::{AdminId, Role};

use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath};
use crate::guard::Caller;
use crate::services::users;
use crate::state::AppState;
use crate::views;

/// All administrator accounts.
#[utoipa::path(get, path = enigm_api::paths::USERS, tag = "users", security(("bearer" = [])),
    responses((status = 200, body = [AccountView]), (status = 403, body = enigm_api::ErrorBody)))]
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<AccountView>>> {
    let admins = state.store().list_admins().await?;
    Ok(Json(admins.iter().map(views::account).collect()))
}

/// Create an administrator (no roles until a grant is approved). Critical: needs the PIN.
#[utoipa::path(post, path = enigm_api::paths::USERS, tag = "users", security(("bearer" = [])), request_body = CreateUserRequest,
    params(("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 201, body = AccountView), (status = 409, body = enigm_api::ErrorBody), (status = 422, body = enigm_api::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<AccountView>)> {
    let created = users::create(&state, &caller, request).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// One administrator account.
#[utoipa::path(get, path = enigm_api::paths::USER, tag = "users", security(("bearer" = [])),
    params(("id" = AdminId, Path, description = "administrator id")),
    responses((status = 200, body = AccountView), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn read(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<AdminId>,
) -> ApiResult<Json<AccountView>> {
    Ok(Json(users::account(&state, id).await?))
}

/// Disable an account and close its sessions. The last active owner cannot be disabled.
#[utoipa::path(post, path = enigm_api::paths::USER_DISABLE, tag = "users", security(("bearer" = [])),
    params(("id" = AdminId, Path, description = "administrator id"), ("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 200, body = AccountView), (status = 404, body = enigm_api::ErrorBody), (status = 409, body = enigm_api::ErrorBody)))]
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<AdminId>,
) -> ApiResult<Json<AccountView>> {
    Ok(Json(users::set_disabled(&state, &caller, id, true).await?))
}

/// Enable a disabled account.
#[utoipa::path(post, path = enigm_api::paths::USER_ENABLE, tag = "users", security(("bearer" = [])),
    params(("id" = AdminId, Path, description = "administrator id"), ("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 200, body = AccountView), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<AdminId>,
) -> ApiResult<Json<AccountView>> {
    Ok(Json(users::set_disabled(&state, &caller, id, false).await?))
}

/// Unlock critical operations of another administrator after 5 wrong PINs (owners only).
#[utoipa::path(post, path = enigm_api::paths::USER_PIN_UNLOCK, tag = "users", security(("bearer" = [])),
    params(("id" = AdminId, Path, description = "administrator id"), ("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 200, body = AccountView), (status = 403, body = enigm_api::ErrorBody), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn unlock_pin(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<AdminId>,
) -> ApiResult<Json<AccountView>> {
    Ok(Json(users::unlock_pin(&state, &caller, id).await?))
}

/// Request the removal of another administrator's TOTP (lost or seized second factor); it
/// takes effect once approved by an administrator who is neither the requester nor its subject.
#[utoipa::path(post, path = enigm_api::paths::USER_TOTP_RESET, tag = "users", security(("bearer" = [])), request_body = TotpResetRequest,
    params(("id" = AdminId, Path, description = "administrator id"), ("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 202, body = ApprovalView), (status = 403, body = enigm_api::ErrorBody), (status = 404, body = enigm_api::ErrorBody),
              (status = 409, body = enigm_api::ErrorBody), (status = 422, body = enigm_api::ErrorBody)))]
pub async fn request_totp_reset(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<AdminId>,
    ApiJson(request): ApiJson<TotpResetRequest>,
) -> ApiResult<(StatusCode, Json<ApprovalView>)> {
    let view = users::request_totp_reset(&state, &caller, id, request).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// Request a role grant; it takes effect once approved by another administrator.
#[utoipa::path(post, path = enigm_api::paths::USER_ROLES, tag = "users", security(("bearer" = [])), request_body = RoleGrantRequest,
    params(("id" = AdminId, Path, description = "administrator id")),
    responses((status = 202, body = ApprovalView), (status = 404, body = enigm_api::ErrorBody), (status = 409, body = enigm_api::ErrorBody)))]
pub async fn request_role_grant(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<AdminId>,
    ApiJson(request): ApiJson<RoleGrantRequest>,
) -> ApiResult<(StatusCode, Json<ApprovalView>)> {
    let view = users::request_role_grant(&state, &caller, id, request).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// Revoke a role. Takes effect on the administrator's next request.
#[utoipa::path(delete, path = enigm_api::paths::USER_ROLE, tag = "users", security(("bearer" = [])),
    params(("id" = AdminId, Path, description = "administrator id"), ("role" = Role, Path, description = "role"),
           ("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 200, body = AccountView), (status = 404, body = enigm_api::ErrorBody), (status = 409, body = enigm_api::ErrorBody)))]
pub async fn revoke_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, role)): ApiPath<(AdminId, Role)>,
) -> ApiResult<Json<AccountView>> {
    Ok(Json(users::revoke_role(&state, &caller, id, role).await?))
}
