//! Enigm domain vocabulary: identifiers, roles, time, approvals, typed audit events, and the
//! states, severities and findings of device trust and the device lifecycle.
//!
//! Everything here is plain data with no I/O, so every other crate (libraries, store, server,
//! agent, CLI) can share one definition of what an administrator, a role, an audit event, a
//! trust state or a lifecycle state is. Every closed set of names is declared with the
//! `vocabulary!` macro ([`Vocabulary`]): one spelling per value, used by `as_str`, `FromStr`,
//! `Display` and serde alike.

pub mod approval;
pub mod attestation;
pub mod audit;
pub mod clock;
pub mod device;
pub mod ids;
mod inline;
pub mod lifecycle;
pub mod network;
pub mod permission;
pub mod policy;
pub mod release;
pub mod role;
pub mod signal;
pub mod trust;
pub mod username;
pub mod vocabulary;

pub use approval::{
    ApprovalAction, ApprovalKind, ApprovalRule, ApprovalRuleError, ApprovalState,
    GuardedDeviceChange, Justification, JustificationError,
};
pub use attestation::{AttestationFormat, AttestationVerdict};
pub use audit::{
    Actor, AuditAction, AuditEvent, AuditTarget, AuditTrustState, ClientNetwork, Outcome,
    ReasonCategory, TargetCategory,
};
pub use clock::{Clock, ManualClock, Timestamp};
pub use device::{DeviceHandle, DeviceHandleError, SecurityLayer, SecurityLayers, SetupStep};
pub use ids::{
    AdminId, ApprovalId, AuditEventId, EnrollmentTokenId, IdParseError, PolicyId, ReleaseId,
    SessionId,
};
pub use lifecycle::{DeviceCommand, DeviceState, LifecycleAction, LifecycleError};
pub use network::{
    NetworkRoute, NetworkRuleId, NetworkRuleIdError, VpnGatewayId, VpnGatewayIdError,
};
pub use permission::Permission;
pub use policy::{GroupName, GroupNameError, PolicyKind, PolicySource, policy_source};
pub use release::{
    InstallOutcome, ReleaseStage, ReleaseState, RolloutDeviceState, RolloutModel, RolloutStatus,
    UnknownReleaseState,
};
pub use role::{Role, UnknownRole};
pub use signal::{SignalKind, SignalSource, SignalValue};
pub use trust::{
    Finding, FindingKind, GateEvidence, GateResult, GateStatus, LauncherSummary, PatchLevelCheck,
    ProductionGate, Severity, SignalCheck, TrustState,
};
pub use username::{Username, UsernameError};
pub use vocabulary::{UnknownName, Vocabulary};
