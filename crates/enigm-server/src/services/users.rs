//! Administrator accounts and their roles: creating, disabling and enabling accounts, unlocking
//! a PIN, and roles (a grant always goes through an approval; the last active owner stays).

use enigm_api::{AccountView, ApprovalView, CreateUserRequest, RoleGrantRequest, TotpResetRequest};
use enigm_identity::Password;
use enigm_store::{NewAdmin, StoreError};
use enigm_types::{
    AdminId, ApprovalAction, AuditAction, AuditTarget, ReasonCategory, Role, Username,
};

use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::guard::Caller;
use crate::services::approvals;
use crate::state::AppState;
use crate::views;

/// Creates an administrator, with no roles until a grant is approved.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    request: CreateUserRequest,
) -> ApiResult<AccountView> {
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
        // Someone else chose (or saw) this password: its owner replaces it at first login.
        password_change_required: true,
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
    Ok(views::account(&created))
}

/// Disables an account and closes its sessions (the last active owner stays), or enables it.
pub async fn set_disabled(
    state: &AppState,
    caller: &Caller,
    id: AdminId,
    disabled: bool,
) -> ApiResult<AccountView> {
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

/// Unlocks critical operations of another administrator after 5 wrong PINs.
pub async fn unlock_pin(state: &AppState, caller: &Caller, id: AdminId) -> ApiResult<AccountView> {
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
    account(state, id).await
}

/// Opens the approval request that removes another administrator's TOTP. Nobody asks this for
/// themselves: the own TOTP is removed with password, PIN and a current code.
pub async fn request_totp_reset(
    state: &AppState,
    caller: &Caller,
    id: AdminId,
    request: TotpResetRequest,
) -> ApiResult<ApprovalView> {
    if id == caller.admin.id {
        let event = audit::denied(
            state.now(),
            enigm_types::Actor::Admin(caller.admin.id),
            AuditAction::ApprovalRequest,
            AuditTarget::Account { admin: Some(id) },
            ReasonCategory::SelfApproval,
        );
        state.audit(&[event]).await?;
        return Err(ApiError::forbidden(ReasonCategory::SelfApproval));
    }
    let admin = state
        .store()
        .admin_by_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found("administrator"))?;
    if admin.totp_sealed.is_none() {
        return Err(ApiError::conflict(
            ReasonCategory::Conflict,
            "the administrator has no TOTP to reset",
        ));
    }
    let action = ApprovalAction::TotpReset { admin: id };
    approvals::open_request(state, caller, action, &request.justification).await
}

/// Opens the approval request a role grant needs.
pub async fn request_role_grant(
    state: &AppState,
    caller: &Caller,
    id: AdminId,
    request: RoleGrantRequest,
) -> ApiResult<ApprovalView> {
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
    approvals::open_request(state, caller, action, &request.justification).await
}

/// Revokes a role (the last active owner keeps the owner role).
pub async fn revoke_role(
    state: &AppState,
    caller: &Caller,
    id: AdminId,
    role: Role,
) -> ApiResult<AccountView> {
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
    account(state, id).await
}

/// The current view of one account, after a change or for a read.
pub async fn account(state: &AppState, id: AdminId) -> ApiResult<AccountView> {
    let admin = state
        .store()
        .admin_by_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found("administrator"))?;
    Ok(views::account(&admin))
}
