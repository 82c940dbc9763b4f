//! The audit log as a workflow of its own: reading it is audited, and the legal hold is set or
//! lifted with its audit event in one transaction.

use enigm_types::{AuditAction, AuditTarget};

use crate::audit;
use crate::error::ApiResult;
use crate::guard::Caller;
use crate::state::AppState;

/// Records that `caller` read part of the audit log. The response goes out only once this is
/// durable, as for every audited action.
pub async fn record_read(state: &AppState, caller: &Caller, target: AuditTarget) -> ApiResult<()> {
    state
        .audit(&[audit::success(
            state.now(),
            caller.admin.id,
            AuditAction::AuditRead,
            target,
        )])
        .await
}

/// Places the audit log on legal hold (no body is purged) or lifts the hold.
pub async fn set_legal_hold(state: &AppState, caller: &Caller, legal_hold: bool) -> ApiResult<()> {
    let now = state.now();
    let mut tx = state.store().begin().await?;
    tx.set_audit_legal_hold(legal_hold, now).await?;
    tx.append_audit(&audit::success(
        now,
        caller.admin.id,
        AuditAction::AuditLegalHold,
        AuditTarget::AuditLog,
    ))
    .await?;
    tx.commit().await?;
    Ok(())
}
