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
//! Non-critical signals only add findings. Privacy Mode is informational: it is reported and
//! never moves the state. There is no score: states and categorical severities only.

use std::fmt;

use enigm_types::Timestamp;
use serde::{Deserialize, Serialize};

use crate::policy::TrustPolicy;
use crate::signal::{Layer, Signal, SignalKind, SignalReport, SignalSource, SignalValue};

/// The outcome of an evaluation; exactly three exist.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TrustState {
    /// All critical protections active and behaving as expected.
    Protected,
    /// At least one critical protection degraded, failed or needing attention.
    ReviewRequired,
    /// Critical trust services unavailable: integrity cannot be reliably determined.
    Inactive,
}

impl TrustState {
    pub const ALL: [TrustState; 3] = [
        TrustState::Protected,
        TrustState::ReviewRequired,
        TrustState::Inactive,
    ];

    /// The wire name, e.g. `REVIEW_REQUIRED`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TrustState::Protected => "PROTECTED",
            TrustState::ReviewRequired => "REVIEW_REQUIRED",
            TrustState::Inactive => "INACTIVE",
        }
    }

    /// What the Trust Security Center shows.
    pub const fn label(self) -> &'static str {
        match self {
            TrustState::Protected => "Protected",
            TrustState::ReviewRequired => "Review Required",
            TrustState::Inactive => "Inactive",
        }
    }

    pub const fn launcher_summary(self) -> LauncherSummary {
        match self {
            TrustState::Protected => LauncherSummary::DeviceProtected,
            TrustState::ReviewRequired => LauncherSummary::DeviceAtRisk,
            TrustState::Inactive => LauncherSummary::ProtectionInactive,
        }
    }

    /// The worse of two states (`INACTIVE` is worst).
    pub fn worst(self, other: TrustState) -> TrustState {
        self.max(other)
    }
}

impl fmt::Display for TrustState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TrustState {
    type Err = UnknownTrustState;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        TrustState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or(UnknownTrustState)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown trust state")]
pub struct UnknownTrustState;

/// The launcher's one-line summary (enigm-docs §5.3); the launcher computes nothing itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LauncherSummary {
    DeviceProtected,
    DeviceAtRisk,
    ProtectionInactive,
}

impl LauncherSummary {
    pub const fn label(self) -> &'static str {
        match self {
            LauncherSummary::DeviceProtected => "Device Protected",
            LauncherSummary::DeviceAtRisk => "Device At Risk",
            LauncherSummary::ProtectionInactive => "Protection Inactive",
        }
    }
}

/// How much a finding matters: a category to communicate, never a number.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    SignalMissing,
    SignalStale,
    SignalFromFuture,
    SignalUnavailable,
    SignalNotMeasurable,
    ProtectionFailed,
    ProtectionDegraded,
    PatchLevelUnknown,
    PatchLevelBelowMinimum,
    PrivacyModeUnavailable,
}

impl FindingKind {
    pub const fn description(self) -> &'static str {
        match self {
            FindingKind::SignalMissing => "The security service did not report this protection.",
            FindingKind::SignalStale => "The last report of this protection is too old to rely on.",
            FindingKind::SignalFromFuture => {
                "This protection was reported with a time in the future; the device clock cannot be trusted."
            }
            FindingKind::SignalUnavailable => {
                "The service that provides this protection is not running."
            }
            FindingKind::SignalNotMeasurable => {
                "This protection cannot currently be measured on the device."
            }
            FindingKind::ProtectionFailed => "This protection is not in place.",
            FindingKind::ProtectionDegraded => {
                "This protection is active but weakened or needs attention."
            }
            FindingKind::PatchLevelUnknown => "The device did not report its security patch level.",
            FindingKind::PatchLevelBelowMinimum => {
                "The security patch level is older than the policy's minimum."
            }
            FindingKind::PrivacyModeUnavailable => "Privacy Mode controls are not available.",
        }
    }

    pub const fn recommendation(self) -> &'static str {
        match self {
            FindingKind::SignalMissing | FindingKind::SignalStale => {
                "Check that EnigmSecurityService is running and can reach Command."
            }
            FindingKind::SignalFromFuture => {
                "Correct the device clock and restart the security service."
            }
            FindingKind::SignalUnavailable => {
                "Restart the affected security service; contact your security team if it stays down."
            }
            FindingKind::SignalNotMeasurable => {
                "Treat the device as untrusted until the protection can be measured."
            }
            FindingKind::ProtectionFailed => {
                "Restore the protection, then let the device report again."
            }
            FindingKind::ProtectionDegraded => {
                "Review the protection's configuration with your security team."
            }
            FindingKind::PatchLevelUnknown | FindingKind::PatchLevelBelowMinimum => {
                "Install the latest verified OTA update."
            }
            FindingKind::PrivacyModeUnavailable => {
                "Check the camera and microphone controls of Enigm OS."
            }
        }
    }
}

/// One finding: severity, description, recommendation and source (enigm-docs §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    /// The signal concerned; `None` for the patch level.
    pub signal: Option<SignalKind>,
    /// Whether the policy makes the signal critical.
    pub critical: bool,
    pub source: SignalSource,
}

impl Finding {
    pub const fn description(&self) -> &'static str {
        self.kind.description()
    }

    pub const fn recommendation(&self) -> &'static str {
        self.kind.recommendation()
    }
}

impl Serialize for Finding {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut out = serializer.serialize_struct("Finding", 7)?;
        out.serialize_field("kind", &self.kind)?;
        out.serialize_field("severity", &self.severity)?;
        out.serialize_field("signal", &self.signal)?;
        out.serialize_field("critical", &self.critical)?;
        out.serialize_field("source", &self.source)?;
        out.serialize_field("description", self.description())?;
        out.serialize_field("recommendation", self.recommendation())?;
        out.end()
    }
}

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

/// Evaluates `report` under `policy` at `now`.
pub fn evaluate(report: &SignalReport, policy: &TrustPolicy, now: Timestamp) -> Evaluation {
    let mut state = TrustState::Protected;
    let mut findings = Vec::new();
    for signal in report.signals() {
        let critical = policy.is_critical(signal.kind);
        if let Some((finding_state, finding)) = assess(signal, critical, policy, now) {
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
            };
            (TrustState::Protected, found)
        });
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
