//! Device trust as pure logic: what a device reports, how it is judged, and what it may do.
//!
//! - [`signal`]: the normalised security signals EnigmSecurityService collects, each of a known
//!   [`SignalKind`] in one of six security layers, with a value, an observation time and a source.
//! - [`policy`]: a [`TrustPolicy`] says which signals are critical, how old a signal may be and
//!   the minimum patch level.
//! - [`attested`]: signals Command derives from a device's attestation, and their merge with
//!   the report (attested > measured > declared; a contradiction is Critical).
//! - [`engine`]: the Trust State Engine. [`evaluate`] turns a report and a policy into exactly one
//!   of three [`TrustState`]s with [`Finding`]s and the launcher summary. There is no score.
//! - [`gates`]: the ten production-gate categories, each pass, fail or not applicable, with why
//!   (the signals, their sources and the patch level the result rests on).
//! - [`lifecycle`]: the trusted-device lifecycle and its transition table.
//! - [`eligibility`]: the one decision function the messaging, call, network and OTA sides ask.
//!
//! Everything fails closed: a signal that is missing, stale, from the future, unavailable or not
//! measurable never counts as protection, and a missing input to a decision denies. The crate
//! does no I/O and reads no clock: the time of evaluation is a parameter.

pub mod attested;
pub mod eligibility;
pub mod engine;
pub mod gates;
pub mod lifecycle;
pub mod policy;
pub mod signal;

pub use attested::{AttestedSignal, AttestedSignals, Evidence, Merged, merge};
pub use eligibility::{
    Action, AttestationOutcome, DecisionActor, DecisionInput, DecisionPolicy, DenyReason,
    DeviceRequest, EligibilityDecision, IntegrityState, ProtectedAction, ResourceCategory, decide,
    states_permitting,
};
pub use engine::{
    Evaluation, Finding, FindingKind, LauncherSummary, Severity, TrustState, evaluate,
    evaluate_attested, evaluate_merged,
};
pub use gates::{
    GateEvidence, GateResult, GateStatus, PatchLevelCheck, ProductionGate, SignalCheck,
    evaluate_gates, explain_gates,
};
pub use lifecycle::{
    DeviceCommand, DeviceState, Lifecycle, LifecycleAction, LifecycleError, LifecycleRefusal,
};
pub use policy::{PolicyError, TrustPolicy};
pub use signal::{
    Layer, PatchLevel, ReportError, Signal, SignalKind, SignalReport, SignalSet, SignalSource,
    SignalValue,
};
