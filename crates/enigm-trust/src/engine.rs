//! The Trust State Engine (enigm-docs §6, §20 items 19–25).
//!
//! Rules, applied to every signal of the report and every critical signal of the policy:
//! - a critical signal that is missing, stale, dated in the future beyond the allowed skew,
//!   unavailable or not measurable makes the device `INACTIVE`: its integrity cannot be
//!   determined;
//! - otherwise a critical signal that is degraded or failed, or a patch level below the
//!   policy's minimum, makes it `REVIEW_REQUIRED`;
//! - otherwise it is `PROTECTED`.
//!
//! Provenance: attested signals are merged into the report first (`attested.rs`: they outrank
//! it, and a contradiction between them makes the device `INACTIVE`); then a signal whose best
//! source is weaker than the policy's minimum for it counts as not measurable.
//!
//! Non-critical signals only add findings. Privacy Mode is informational: it is reported and
//! never moves the state. There is no score: states and categorical severities only.

use enigm_types::Timestamp;
use serde::Serialize;

/// The engine's vocabulary lives in `enigm-types`, where the store and the API name it too.
pub use enigm_types::{Finding, FindingKind, LauncherSummary, Severity, TrustState};

use crate::attested::{AttestedSignals, Merged, merge};
use crate::policy::TrustPolicy;
use crate::signal::{Layer, Signal, SignalKind, SignalReport, SignalSource, SignalValue};

/// The result of one evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    pub state: TrustState,
    /// Findings, most severe first.
    pub findings: Vec<Finding>,
    pub evaluated_at: Timestamp,
}

impl Evaluation {
    pub fn launcher_summary(&self) -> LauncherSummary {
        self.state.launcher_summary()
    }

    /// The security layers in which the device's attestation contradicted its report: what
    /// the audit log records of a contradiction (categories only).
    pub fn contradiction_layers(&self) -> enigm_types::SecurityLayers {
        self.findings
            .iter()
            .filter(|finding| finding.kind == FindingKind::SourceContradiction)
            .map(|finding| {
                finding
                    .signal
                    .map_or(Layer::VerifiedBoot, SignalKind::layer)
            })
            .collect()
    }

    /// The security layers the findings come from (the patch level counts as verified boot
    /// and software trust): what the audit log records as a trust change's finding sources.
    pub fn finding_layers(&self) -> enigm_types::SecurityLayers {
        self.findings
            .iter()
            .map(|finding| {
                finding
                    .signal
                    .map_or(Layer::VerifiedBoot, SignalKind::layer)
            })
            .collect()
    }
}

/// Evaluates `report` under `policy` at `now`, without attested signals.
pub fn evaluate(report: &SignalReport, policy: &TrustPolicy, now: Timestamp) -> Evaluation {
    evaluate_attested(report, &AttestedSignals::NONE, policy, now)
}

/// Evaluates `report` with the device's `attested` signals merged in, under `policy` at `now`.
pub fn evaluate_attested(
    report: &SignalReport,
    attested: &AttestedSignals,
    policy: &TrustPolicy,
    now: Timestamp,
) -> Evaluation {
    evaluate_merged(&merge(report, attested, policy, now), policy, now)
}

/// Evaluates a report already merged with its attested signals (the production gates are
/// explained from the same merge).
pub fn evaluate_merged(merged: &Merged<'_>, policy: &TrustPolicy, now: Timestamp) -> Evaluation {
    let report = merged.report();
    let mut state = TrustState::Protected;
    let mut findings = Vec::new();
    for contradiction in merged.contradictions() {
        state = TrustState::Inactive;
        findings.push(*contradiction);
    }
    for signal in report.signals() {
        let critical = policy.is_critical(signal.kind);
        let source = merged.best_source(signal);
        if let Some((finding_state, finding)) = assess(signal, source, critical, policy, now) {
            if critical {
                state = state.worst(finding_state);
            }
            findings.push(finding);
        }
    }
    for kind in policy.critical().iter() {
        if !report.kinds().contains(kind) {
            state = TrustState::Inactive;
            findings.push(Finding {
                kind: FindingKind::SignalMissing,
                severity: Severity::Critical,
                signal: Some(kind),
                critical: true,
                source: SignalSource::Engine,
                reported_source: None,
                required_source: None,
            });
        }
    }
    if let Some(minimum) = policy.min_patch_level() {
        let (finding_state, kind) = match report.patch_level() {
            None => (TrustState::Inactive, FindingKind::PatchLevelUnknown),
            Some(level) if level < minimum => (
                TrustState::ReviewRequired,
                FindingKind::PatchLevelBelowMinimum,
            ),
            Some(_) => (TrustState::Protected, FindingKind::PatchLevelUnknown),
        };
        if finding_state != TrustState::Protected {
            state = state.worst(finding_state);
            findings.push(Finding {
                kind,
                // A finding that makes the device INACTIVE is critical, whatever caused it.
                severity: if finding_state == TrustState::Inactive {
                    Severity::Critical
                } else {
                    Severity::High
                },
                signal: None,
                critical: true,
                source: SignalSource::Engine,
                reported_source: None,
                required_source: None,
            });
        }
    }
    findings.sort_by_key(|finding| std::cmp::Reverse(finding.severity));
    Evaluation {
        state,
        findings,
        evaluated_at: now,
    }
}

/// The state a signal pushes the device towards, and its finding; `None` when it is fine.
fn assess(
    signal: &Signal,
    best_source: SignalSource,
    critical: bool,
    policy: &TrustPolicy,
    now: Timestamp,
) -> Option<(TrustState, Finding)> {
    let finding = |kind, critical_severity, other_severity, source| Finding {
        kind,
        severity: if critical {
            critical_severity
        } else {
            other_severity
        },
        signal: Some(signal.kind),
        critical,
        source,
        reported_source: None,
        required_source: None,
    };
    if signal.observed_at > now.saturating_add(policy.max_clock_skew()) {
        let found = finding(
            FindingKind::SignalFromFuture,
            Severity::Critical,
            Severity::Low,
            SignalSource::Engine,
        );
        return Some((TrustState::Inactive, found));
    }
    if now.duration_since(signal.observed_at) > policy.max_signal_age() {
        let found = finding(
            FindingKind::SignalStale,
            Severity::Critical,
            Severity::Low,
            SignalSource::Engine,
        );
        return Some((TrustState::Inactive, found));
    }
    if signal.kind.is_informational() {
        // Reported, never decisive: whatever Privacy Mode says, the state does not move.
        return (signal.value != SignalValue::Ok).then(|| {
            let found = Finding {
                kind: FindingKind::PrivacyModeUnavailable,
                severity: Severity::Info,
                signal: Some(signal.kind),
                critical: false,
                source: signal.source,
                reported_source: None,
                required_source: None,
            };
            (TrustState::Protected, found)
        });
    }
    if !policy.accepts_source(signal.kind, best_source) {
        // Fail closed: a value from a source the policy does not accept is as good as none.
        let found = Finding {
            required_source: Some(policy.min_source(signal.kind)),
            ..finding(
                FindingKind::SourceBelowMinimum,
                Severity::Critical,
                Severity::Info,
                best_source,
            )
        };
        return Some((TrustState::Inactive, found));
    }
    let (state, kind, critical_severity, other_severity) = match signal.value {
        SignalValue::Ok => return None,
        SignalValue::Degraded => (
            TrustState::ReviewRequired,
            FindingKind::ProtectionDegraded,
            Severity::High,
            Severity::Low,
        ),
        SignalValue::Failed => (
            TrustState::ReviewRequired,
            FindingKind::ProtectionFailed,
            Severity::Critical,
            Severity::Medium,
        ),
        SignalValue::Unavailable => (
            TrustState::Inactive,
            FindingKind::SignalUnavailable,
            Severity::Critical,
            Severity::Low,
        ),
        SignalValue::NotMeasurable => (
            TrustState::Inactive,
            FindingKind::SignalNotMeasurable,
            Severity::Critical,
            Severity::Info,
        ),
    };
    Some((
        state,
        finding(kind, critical_severity, other_severity, signal.source),
    ))
}
