//! Administrator sessions: closing one, by its owner or by a security administrator.

use enigm_types::{AuditAction, AuditTarget, SessionId};

use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::guard::Caller;
use crate::state::AppState;

/// Closes an open session and audits who closed it; 404 when it is not open.
pub(crate) async fn close_audited(
    state: &AppState,
    caller: &Caller,
    id: SessionId,
) -> ApiResult<()> {
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
    Ok(())
}
