//! Where audit events go. Command records every administrative action and every
//! authentication and authorization outcome through one [`AuditSink`].
//!
//! The default sink appends to the database's append-only `audit_events` table; the
//! tamper-evident Merkle log builds on that table.

use async_trait::async_trait;
use enigm_store::{Store, StoreError};
use enigm_types::{
    Actor, AdminId, AuditAction, AuditEvent, AuditTarget, Outcome, ReasonCategory, Timestamp,
};

#[async_trait]
pub trait AuditSink: Send + Sync + 'static {
    /// Durably records the events (all or none) before returning.
    async fn record(&self, events: &[AuditEvent]) -> Result<(), StoreError>;
}

#[async_trait]
impl AuditSink for Store {
    async fn record(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        self.append_audit(events).await
    }
}

/// Shorthands for the events handlers write most.
pub fn success(
    time: Timestamp,
    admin: AdminId,
    action: AuditAction,
    target: AuditTarget,
) -> AuditEvent {
    AuditEvent::new(time, Actor::Admin(admin), action, target, Outcome::Success)
}

pub fn denied(
    time: Timestamp,
    actor: Actor,
    action: AuditAction,
    target: AuditTarget,
    reason: ReasonCategory,
) -> AuditEvent {
    AuditEvent::new(time, actor, action, target, Outcome::Denied).with_reason(reason)
}
