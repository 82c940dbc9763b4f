//! Enigm domain vocabulary: identifiers, roles, time, approvals and typed audit events.
//!
//! Everything here is plain data with no I/O, so every other crate (libraries, server, agent,
//! CLI) can share one definition of what an administrator, a role or an audit event is.

pub mod approval;
pub mod audit;
pub mod clock;
pub mod device;
pub mod ids;
pub mod permission;
pub mod release;
pub mod role;
pub mod username;

pub use approval::{
    ApprovalAction, ApprovalKind, ApprovalRule, ApprovalRuleError, ApprovalState,
    GuardedDeviceChange, Justification, JustificationError,
};
pub use audit::{
    Actor, AuditAction, AuditEvent, AuditTarget, AuditTrustState, Outcome, ReasonCategory,
    TargetCategory,
};
pub use clock::{Clock, ManualClock, Timestamp};
pub use device::{DeviceHandle, DeviceHandleError, SecurityLayer, SecurityLayers};
pub use ids::{
    AdminId, ApprovalId, AuditEventId, EnrollmentTokenId, IdParseError, ReleaseId, SessionId,
};
pub use permission::Permission;
pub use release::{InstallOutcome, ReleaseState, UnknownReleaseState};
pub use role::{Role, UnknownRole};
pub use username::{Username, UsernameError};
