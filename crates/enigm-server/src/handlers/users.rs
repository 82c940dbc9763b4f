//! Administrator accounts and their roles. Granting a role always goes through an approval.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use enigm_api::{AccountView, ApprovalView, CreateUserRequest, RoleGrantRequest};
use enigm_identity::Password;
use enigm_store::{NewAdmin, StoreError};
use enigm_types::{
    AdminId, ApprovalAction, AuditAction, AuditTarget, ReasonCategory, Role, Username,
};

use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::guard::Caller;
use crate::handlers::approvals::open_request;
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
    let username = Username::parse(&request.username)
        .map_err(|error| ApiError::unprocessable("invalid_username", error.to_string()))?;
    let password = Password::parse(&request.password)
        .map_err(|error| ApiError::unprocessable("weak_password", error.to_string()))?;
    let hash = state
        .hash_secret(password.expose().as_bytes().to_vec())
        .await?;
    let now = state.now();
    let admin = NewAdmin {
        id: AdminId::random(),
        username,
        password_hash: hash.as_str().to_owned(),
        pin_hash: None,
        created_at: now,
    };
    let mut tx = state.store().begin().await?;
    match tx.insert_admin(&admin).await {
        Err(StoreError::Conflict) => {
            return Err(ApiError::conflict(
                ReasonCategory::Conflict,
                "an administrator with this username exists",
            ));
        }
        other => other?,
    }
    tx.append_audit(&audit::success(
        now,
        caller.admin.id,
        AuditAction::UserCreate,
        AuditTarget::Account {
            admin: Some(admin.id),
        },
    ))
    .await?;
    tx.commit().await?;
    let created = state
        .store()
        .admin_by_id(admin.id)
        .await?
        .ok_or_else(|| ApiError::not_found("administrator"))?;
    Ok((StatusCode::CREATED, Json(views::account(&created))))
}

/// One administrator account.
#[utoipa::path(get, path = enigm_api::paths::USER, tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "administrator id")),
    responses((status = 200, body = AccountView), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn read(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<AdminId>,
) -> ApiResult<Json<AccountView>> {
    account(&state, id).await
}

/// Disable an account and close its sessions. The last active owner cannot be disabled.
#[utoipa::path(post, path = enigm_api::paths::USER_DISABLE, tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "administrator id"), ("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 200, body = AccountView), (status = 404, body = enigm_api::ErrorBody), (status = 409, body = enigm_api::ErrorBody)))]
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<AdminId>,
) -> ApiResult<Json<AccountView>> {
    set_disabled(&state, &caller, id, true).await
}

/// Enable a disabled account.
#[utoipa::path(post, path = enigm_api::paths::USER_ENABLE, tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "administrator id"), ("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 200, body = AccountView), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<AdminId>,
) -> ApiResult<Json<AccountView>> {
    set_disabled(&state, &caller, id, false).await
}

async fn set_disabled(
    state: &AppState,
    caller: &Caller,
    id: AdminId,
    disabled: bool,
) -> ApiResult<Json<AccountView>> {
    if id == caller.admin.id {
        return Err(ApiError::conflict(
            ReasonCategory::Conflict,
            "you cannot disable or enable your own account",
        ));
    }
    let now = state.now();
    let action = if disabled {
        AuditAction::UserDisable
    } else {
        AuditAction::UserEnable
    };
    let mut tx = state.store().begin().await?;
    if !tx.set_disabled(id, disabled).await? {
        return Err(ApiError::not_found("administrator"));
    }
    if disabled {
        if tx.count_active_owners().await? == 0 {
            drop(tx);
            let event = audit::denied(
                now,
                enigm_types::Actor::Admin(caller.admin.id),
                action,
                AuditTarget::Account { admin: Some(id) },
                ReasonCategory::LastOwner,
            );
            state.audit(&[event]).await?;
            return Err(ApiError::conflict(
                ReasonCategory::LastOwner,
                "the last active owner cannot be disabled",
            ));
        }
        tx.close_sessions_of(id, now).await?;
    }
    tx.append_audit(&audit::success(
        now,
        caller.admin.id,
        action,
        AuditTarget::Account { admin: Some(id) },
    ))
    .await?;
    tx.commit().await?;
    account(state, id).await
}

/// Unlock critical operations of another administrator after 5 wrong PINs (owners only).
#[utoipa::path(post, path = enigm_api::paths::USER_PIN_UNLOCK, tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "administrator id"), ("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 200, body = AccountView), (status = 403, body = enigm_api::ErrorBody), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn unlock_pin(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<AdminId>,
) -> ApiResult<Json<AccountView>> {
    // A locked account cannot reach this point (its PIN check fails), and an unlocked one has
    // nothing to unlock for itself; refusing self-unlock keeps the rule obvious.
    if id == caller.admin.id {
        return Err(ApiError::forbidden(ReasonCategory::SelfApproval));
    }
    let now = state.now();
    let mut tx = state.store().begin().await?;
    if !tx.unlock_pin(id).await? {
        return Err(ApiError::not_found("administrator"));
    }
    tx.append_audit(&audit::success(
        now,
        caller.admin.id,
        AuditAction::UserPinUnlock,
        AuditTarget::Account { admin: Some(id) },
    ))
    .await?;
    tx.commit().await?;
    account(&state, id).await
}

/// Request a role grant; it takes effect once approved by another administrator.
#[utoipa::path(post, path = enigm_api::paths::USER_ROLES, tag = "users", security(("bearer" = [])), request_body = RoleGrantRequest,
    params(("id" = String, Path, description = "administrator id")),
    responses((status = 202, body = ApprovalView), (status = 404, body = enigm_api::ErrorBody), (status = 409, body = enigm_api::ErrorBody)))]
pub async fn request_role_grant(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<AdminId>,
    ApiJson(request): ApiJson<RoleGrantRequest>,
) -> ApiResult<(StatusCode, Json<ApprovalView>)> {
    let admin = state
        .store()
        .admin_by_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found("administrator"))?;
    if admin.roles.contains(&request.role) {
        return Err(ApiError::conflict(
            ReasonCategory::Conflict,
            "the administrator already holds this role",
        ));
    }
    let action = ApprovalAction::RoleGrant {
        admin: id,
        role: request.role,
    };
    let view = open_request(&state, &caller, action, &request.justification).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// Revoke a role. Takes effect on the administrator's next request.
#[utoipa::path(delete, path = enigm_api::paths::USER_ROLE, tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "administrator id"), ("role" = Role, Path, description = "role"),
           ("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 200, body = AccountView), (status = 404, body = enigm_api::ErrorBody), (status = 409, body = enigm_api::ErrorBody)))]
pub async fn revoke_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, role)): ApiPath<(AdminId, Role)>,
) -> ApiResult<Json<AccountView>> {
    let now = state.now();
    let target = AuditTarget::Role { admin: id, role };
    let mut tx = state.store().begin().await?;
    if !tx.revoke_role(id, role).await? {
        return Err(ApiError::not_found("role grant"));
    }
    if role == Role::Owner && tx.count_active_owners().await? == 0 {
        drop(tx);
        let event = audit::denied(
            now,
            enigm_types::Actor::Admin(caller.admin.id),
            AuditAction::RoleRevoke,
            target,
            ReasonCategory::LastOwner,
        );
        state.audit(&[event]).await?;
        return Err(ApiError::conflict(
            ReasonCategory::LastOwner,
            "the last active owner keeps the owner role",
        ));
    }
    tx.append_audit(&audit::success(
        now,
        caller.admin.id,
        AuditAction::RoleRevoke,
        target,
    ))
    .await?;
    tx.commit().await?;
    account(&state, id).await
}

/// The current view of one account, after a change or for a read.
async fn account(state: &AppState, id: AdminId) -> ApiResult<Json<AccountView>> {
    let admin = state
        .store()
        .admin_by_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found("administrator"))?;
    Ok(Json(views::account(&admin)))
}
