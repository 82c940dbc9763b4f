//! Conversions from stored records to API views. Views leave out every secret: hashes, sealed
//! TOTP secrets and token digests never leave the server.

use enigm_api::{AccountView, ApprovalView, AuditEventView, SessionView};
use enigm_identity::PinAttempts;
use enigm_store::{AdminRecord, ApprovalRecord, AuditRow, SessionRecord};
use enigm_types::{SessionId, Timestamp};

pub(crate) fn account(admin: &AdminRecord) -> AccountView {
    AccountView {
        id: admin.id,
        username: admin.username.to_string(),
        roles: admin.roles.clone(),
        disabled: admin.disabled,
        totp_enabled: admin.totp_enabled,
        pin_set: admin.pin_hash.is_some(),
        pin_locked: PinAttempts::new(admin.pin_failures).is_locked(),
        password_change_required: admin.password_change_required,
        at_risk: admin.risk_raised_at.is_some(),
        risk_raised_at: admin.risk_raised_at.map(Timestamp::to_rfc3339),
        created_at: admin.created_at.to_rfc3339(),
    }
}

/// The account as its own session sees it (whoami, login): without the risk state, which is
/// for the other administrators, so that a duress PIN is not given away to whoever holds the
/// session.
pub(crate) fn own_account(admin: &AdminRecord) -> AccountView {
    AccountView {
        at_risk: false,
        risk_raised_at: None,
        ..account(admin)
    }
}

pub(crate) fn session(session: &SessionRecord, current: SessionId) -> SessionView {
    SessionView {
        id: session.id,
        admin: session.admin_id,
        created_at: session.created_at.to_rfc3339(),
        last_seen_at: session.last_seen_at.to_rfc3339(),
        expires_at: session.expires_at.to_rfc3339(),
        current: session.id == current,
    }
}

pub(crate) fn approval(
    record: &ApprovalRecord,
    subject: enigm_api::ApprovalSubject,
    now: Timestamp,
) -> ApprovalView {
    ApprovalView {
        id: record.id,
        kind: record.action.kind(),
        action: record.action.clone(),
        subject,
        state: record.effective_state(now),
        requester: record.requester,
        justification: record.justification.clone(),
        required_approvals: record.rule.required_approvals(),
        approver_roles: record.rule.approver_roles().to_vec(),
        approvals: record.approvals.clone(),
        rejected_by: record.rejected_by,
        created_at: record.created_at.to_rfc3339(),
        expires_at: record.expires_at.to_rfc3339(),
    }
}

pub(crate) fn audit_event(row: &AuditRow) -> AuditEventView {
    let event = &row.event;
    AuditEventView {
        seq: row.seq,
        id: event.id,
        time: event.time.to_rfc3339(),
        actor: event.actor.to_string(),
        action: event.action,
        target_category: event.target.category().as_str().to_owned(),
        target_ref: event.target.reference(),
        outcome: event.outcome,
        change_ref: event.change_ref,
        reason: event.reason,
        count: match event.target {
            enigm_types::AuditTarget::AnonymousRequests { count, .. } => Some(count),
            _ => None,
        },
    }
}
