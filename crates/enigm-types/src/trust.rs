//! The vocabulary of device trust: the three [`TrustState`]s, categorical [`Severity`],
//! [`Finding`]s and the production gates with their results. The Trust State Engine that
//! produces them lives in `enigm-trust`; the names live here so that the store keeps them typed
//! and the API, the audit log and the CLI spell them one way.

use serde::{Deserialize, Serialize};

use crate::signal::{SignalKind, SignalSource, SignalValue};
use crate::vocabulary::vocabulary;

vocabulary! {
    /// The outcome of an evaluation; exactly three exist. Ordered from best to worst.
    #[derive(PartialOrd, Ord)]
    pub enum TrustState ("trust state") {
        /// All critical protections active and behaving as expected.
        Protected => "PROTECTED",
        /// At least one critical protection degraded, failed or needing attention.
        ReviewRequired => "REVIEW_REQUIRED",
        /// Critical trust services unavailable: integrity cannot be reliably determined.
        Inactive => "INACTIVE",
    }
}

impl TrustState {
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
    #[must_use]
    pub fn worst(self, other: TrustState) -> TrustState {
        self.max(other)
    }
}

vocabulary! {
    /// The launcher's one-line summary (enigm-docs §5.3); the launcher computes nothing itself.
    pub enum LauncherSummary ("launcher summary") {
        DeviceProtected => "device-protected",
        DeviceAtRisk => "device-at-risk",
        ProtectionInactive => "protection-inactive",
    }
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

vocabulary! {
    /// How much a finding matters: a category to communicate, never a number. Ordered from
    /// least to most severe.
    #[derive(PartialOrd, Ord)]
    pub enum Severity ("severity") {
        Info => "Info",
        Low => "Low",
        Medium => "Medium",
        High => "High",
        Critical => "Critical",
    }
}

vocabulary! {
    /// What a finding is about.
    pub enum FindingKind ("finding kind") {
        SignalMissing => "signal-missing",
        SignalStale => "signal-stale",
        SignalFromFuture => "signal-from-future",
        SignalUnavailable => "signal-unavailable",
        SignalNotMeasurable => "signal-not-measurable",
        ProtectionFailed => "protection-failed",
        ProtectionDegraded => "protection-degraded",
        PatchLevelUnknown => "patch-level-unknown",
        PatchLevelBelowMinimum => "patch-level-below-minimum",
        PrivacyModeUnavailable => "privacy-mode-unavailable",
        /// The signal's best source is weaker than the policy's minimum for it: its value is
        /// not believed, as if it could not be measured.
        SourceBelowMinimum => "source-below-minimum",
        /// The device's attestation and its report disagree about a protection (or the patch
        /// level): the report is shown false.
        SourceContradiction => "source-contradiction",
    }
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
            FindingKind::SourceBelowMinimum => {
                "This protection is only known from a source the policy does not accept for it."
            }
            FindingKind::SourceContradiction => {
                "The device's attestation contradicts what the device reports about this protection."
            }
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
            FindingKind::SourceBelowMinimum => {
                "Let the device attest again, or run the collector that measures this protection."
            }
            FindingKind::SourceContradiction => {
                "Treat the device as compromised: take it out of use and investigate."
            }
        }
    }
}

/// One finding: severity, description, recommendation and source (enigm-docs §6).
///
/// Serialised with its description and recommendation (what the API and the store show); they
/// follow from the kind, so decoding reads and ignores them and a stored finding always shows
/// this build's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    /// The signal concerned; `None` for the patch level.
    pub signal: Option<SignalKind>,
    /// Whether the policy makes the signal critical.
    pub critical: bool,
    /// Where the value the finding is about came from; for a contradiction, `attested`.
    pub source: SignalSource,
    /// For a contradiction: the source of the reported value the attestation contradicts.
    pub reported_source: Option<SignalSource>,
    /// For a source below the policy's minimum: the minimum the policy requires.
    pub required_source: Option<SignalSource>,
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
        let mut out = serializer.serialize_struct("Finding", 9)?;
        out.serialize_field("kind", &self.kind)?;
        out.serialize_field("severity", &self.severity)?;
        out.serialize_field("signal", &self.signal)?;
        out.serialize_field("critical", &self.critical)?;
        out.serialize_field("source", &self.source)?;
        // Absent unless set, so findings stored before provenance keep their encoding.
        if let Some(reported) = self.reported_source {
            out.serialize_field("reported_source", &reported)?;
        } else {
            out.skip_field("reported_source")?;
        }
        if let Some(required) = self.required_source {
            out.serialize_field("required_source", &required)?;
        } else {
            out.skip_field("required_source")?;
        }
        out.serialize_field("description", self.description())?;
        out.serialize_field("recommendation", self.recommendation())?;
        out.end()
    }
}

/// A finding as serialised: the derived texts are accepted and dropped, anything else refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFinding {
    kind: FindingKind,
    severity: Severity,
    signal: Option<SignalKind>,
    critical: bool,
    source: SignalSource,
    #[serde(default)]
    reported_source: Option<SignalSource>,
    #[serde(default)]
    required_source: Option<SignalSource>,
    #[serde(default, rename = "description")]
    _description: serde::de::IgnoredAny,
    #[serde(default, rename = "recommendation")]
    _recommendation: serde::de::IgnoredAny,
}

impl<'de> Deserialize<'de> for Finding {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawFinding::deserialize(deserializer)?;
        Ok(Finding {
            kind: raw.kind,
            severity: raw.severity,
            signal: raw.signal,
            critical: raw.critical,
            source: raw.source,
            reported_source: raw.reported_source,
            required_source: raw.required_source,
        })
    }
}

vocabulary! {
    /// The ten production-gate categories of Enigm OS (enigm-docs §5.7, §20 item 26).
    pub enum ProductionGate ("production gate") {
        BuildIntegrity => "build-integrity",
        BootIntegrity => "boot-integrity",
        RuntimeSecurity => "runtime-security",
        PlatformConfiguration => "platform-configuration",
        NetworkSecurity => "network-security",
        ApplicationExposure => "application-exposure",
        PrivacyControls => "privacy-controls",
        DeviceManagement => "device-management",
        UpdateIntegrity => "update-integrity",
        SecurityMonitoring => "security-monitoring",
    }
}

impl ProductionGate {
    /// The signals that are this gate's evidence.
    pub const fn evidence(self) -> &'static [SignalKind] {
        use SignalKind as S;
        match self {
            ProductionGate::BuildIntegrity => &[S::OsSignature],
            ProductionGate::BootIntegrity => &[
                S::SecureBoot,
                S::VerifiedBoot,
                S::BootloaderLocked,
                S::DeviceIntegrity,
            ],
            ProductionGate::RuntimeSecurity => &[
                S::SecurityService,
                S::KernelLockdown,
                S::MandatoryAccessControl,
                S::PolicyCompliance,
            ],
            ProductionGate::PlatformConfiguration => &[
                S::DiskEncryption,
                S::ScreenLock,
                S::UsbRestricted,
                S::DebuggingDisabled,
            ],
            ProductionGate::NetworkSecurity => {
                &[S::Firewall, S::EncryptedDns, S::NetworkPolicyCompliance]
            }
            ProductionGate::ApplicationExposure => &[
                S::AppIntegrity,
                S::NoInstrumentation,
                S::UnknownSourcesBlocked,
            ],
            ProductionGate::PrivacyControls => &[S::PrivacyMode],
            ProductionGate::DeviceManagement => &[S::DeviceManagement],
            ProductionGate::UpdateIntegrity => &[S::OtaVerification, S::RollbackProtection],
            ProductionGate::SecurityMonitoring => {
                &[S::TrustEngine, S::SignalCollector, S::ActiveDefense]
            }
        }
    }
}

vocabulary! {
    /// A production gate's result: each gate is judged on its own, never folded into one.
    pub enum GateResult ("gate result") {
        Pass => "pass",
        Fail => "fail",
        NotApplicable => "not-applicable",
    }
}

/// One gate, its result and why, as the store keeps and the API shows them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GateStatus {
    pub gate: ProductionGate,
    pub result: GateResult,
    /// Why the gate has its result: what it found of each signal it needs (and, for update
    /// integrity, of the patch level), or that it does not apply. The gate passes exactly when
    /// every entry is ok. Empty only in postures stored before gates explained themselves.
    #[serde(default)]
    pub because: Vec<GateEvidence>,
}

impl GateStatus {
    /// A result with no recorded explanation (as postures stored before explanations load).
    pub const fn unexplained(gate: ProductionGate, result: GateResult) -> Self {
        GateStatus {
            gate,
            result,
            because: Vec::new(),
        }
    }
}

impl From<(ProductionGate, GateResult)> for GateStatus {
    fn from((gate, result): (ProductionGate, GateResult)) -> Self {
        GateStatus::unexplained(gate, result)
    }
}

vocabulary! {
    /// What a production gate found of one signal it needs. Categorical, never a number.
    pub enum SignalCheck ("signal check") {
        /// Reported, fresh and `ok`.
        Ok => "ok",
        /// Not reported.
        Missing => "missing",
        /// Older than the policy's maximum signal age.
        Stale => "stale",
        /// Dated later than the time of evaluation plus the allowed clock skew.
        FromFuture => "from-future",
        /// Reported and fresh, but its value is not `ok`.
        NotOk => "not-ok",
    }
}

vocabulary! {
    /// What the update-integrity gate found of the patch level against the policy's minimum.
    pub enum PatchLevelCheck ("patch level check") {
        /// At or above the minimum.
        Met => "met",
        /// Older than the minimum.
        BelowMinimum => "below-minimum",
        /// The device did not report its patch level.
        Unknown => "unknown",
    }
}

/// One piece of a production gate's evidence and what the gate found of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "evidence", rename_all = "kebab-case", deny_unknown_fields)]
pub enum GateEvidence {
    /// A signal the gate needs.
    Signal {
        signal: SignalKind,
        check: SignalCheck,
        /// The reported value; absent when the signal is missing.
        #[serde(default)]
        value: Option<SignalValue>,
        /// The best source the value came from (an attested value outranks the report's);
        /// absent when the signal is missing.
        #[serde(default)]
        source: Option<SignalSource>,
    },
    /// The device's patch level against the policy's minimum (update integrity, when the
    /// policy sets a minimum).
    PatchLevel { check: PatchLevelCheck },
    /// The device is not in managed-device mode, so the device-management gate does not apply.
    NotManaged,
}

impl GateEvidence {
    /// Whether this entry counts towards the gate passing. Not being in managed-device mode is
    /// a reason for "not applicable", never for "pass".
    pub const fn is_ok(&self) -> bool {
        match self {
            GateEvidence::Signal { check, .. } => matches!(check, SignalCheck::Ok),
            GateEvidence::PatchLevel { check } => matches!(check, PatchLevelCheck::Met),
            GateEvidence::NotManaged => false,
        }
    }
}

#[cfg(test)]
mod tests;
