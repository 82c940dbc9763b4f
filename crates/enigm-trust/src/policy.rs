//! The trust policy a device is evaluated under: assigned by Command, per device group.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::signal::{PatchLevel, SignalKind, SignalSet};

/// What a device must show to be `PROTECTED`.
///
/// INVARIANT (checked by [`TrustPolicy::new`] and on deserialisation): at least one critical
/// signal, none of them informational, and a non-zero maximum signal age.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawPolicy", into = "RawPolicy")]
pub struct TrustPolicy {
    critical: SignalSet,
    max_signal_age: Duration,
    max_clock_skew: Duration,
    min_patch_level: Option<PatchLevel>,
    managed_mode: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("a trust policy must name at least one critical signal")]
    NoCriticalSignals,
    #[error("`{0}` is informational and cannot be a critical signal")]
    InformationalCritical(SignalKind),
    #[error("the maximum signal age must be at least one second")]
    ZeroSignalAge,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    critical: SignalSet,
    max_signal_age_seconds: u64,
    #[serde(default = "default_skew_seconds")]
    max_clock_skew_seconds: u64,
    #[serde(default)]
    min_patch_level: Option<PatchLevel>,
    #[serde(default)]
    managed_mode: bool,
}

fn default_skew_seconds() -> u64 {
    TrustPolicy::DEFAULT_CLOCK_SKEW.as_secs()
}

impl TrustPolicy {
    /// How far in the future an observation time may lie before it is not believed.
    pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
    /// How old a signal may be in the baseline policy.
    pub const BASELINE_SIGNAL_AGE: Duration = Duration::from_secs(15 * 60);

    pub fn new(
        critical: SignalSet,
        max_signal_age: Duration,
        min_patch_level: Option<PatchLevel>,
        managed_mode: bool,
    ) -> Result<Self, PolicyError> {
        if critical.is_empty() {
            return Err(PolicyError::NoCriticalSignals);
        }
        if let Some(kind) = critical.iter().find(|kind| kind.is_informational()) {
            return Err(PolicyError::InformationalCritical(kind));
        }
        if max_signal_age < Duration::from_secs(1) {
            return Err(PolicyError::ZeroSignalAge);
        }
        Ok(TrustPolicy {
            critical,
            max_signal_age,
            max_clock_skew: Self::DEFAULT_CLOCK_SKEW,
            min_patch_level,
            managed_mode,
        })
    }

    /// The policy a device gets when its group names none: the protections every hardened
    /// device must show.
    pub fn baseline() -> Self {
        TrustPolicy {
            critical: [
                SignalKind::DeviceIntegrity,
                SignalKind::SecureBoot,
                SignalKind::DiskEncryption,
                SignalKind::Firewall,
                SignalKind::SecurityService,
                SignalKind::SignalCollector,
            ]
            .into_iter()
            .collect(),
            max_signal_age: Self::BASELINE_SIGNAL_AGE,
            max_clock_skew: Self::DEFAULT_CLOCK_SKEW,
            min_patch_level: None,
            managed_mode: false,
        }
    }

    pub fn with_clock_skew(mut self, skew: Duration) -> Self {
        self.max_clock_skew = skew;
        self
    }

    pub fn critical(&self) -> SignalSet {
        self.critical
    }

    pub fn is_critical(&self, kind: SignalKind) -> bool {
        self.critical.contains(kind)
    }

    pub fn max_signal_age(&self) -> Duration {
        self.max_signal_age
    }

    pub fn max_clock_skew(&self) -> Duration {
        self.max_clock_skew
    }

    pub fn min_patch_level(&self) -> Option<PatchLevel> {
        self.min_patch_level
    }

    /// Whether the device is in managed-device mode (enrolled with the user's opt-in).
    pub fn managed_mode(&self) -> bool {
        self.managed_mode
    }
}

impl TryFrom<RawPolicy> for TrustPolicy {
    type Error = PolicyError;

    fn try_from(raw: RawPolicy) -> Result<Self, Self::Error> {
        Ok(TrustPolicy::new(
            raw.critical,
            Duration::from_secs(raw.max_signal_age_seconds),
            raw.min_patch_level,
            raw.managed_mode,
        )?
        .with_clock_skew(Duration::from_secs(raw.max_clock_skew_seconds)))
    }
}

impl From<TrustPolicy> for RawPolicy {
    fn from(policy: TrustPolicy) -> Self {
        RawPolicy {
            critical: policy.critical,
            max_signal_age_seconds: policy.max_signal_age.as_secs(),
            max_clock_skew_seconds: policy.max_clock_skew.as_secs(),
            min_patch_level: policy.min_patch_level,
            managed_mode: policy.managed_mode,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_fail_closed_on_construction() {
        assert_eq!(
            TrustPolicy::new(SignalSet::EMPTY, Duration::from_secs(60), None, false),
            Err(PolicyError::NoCriticalSignals)
        );
        let privacy: SignalSet = [SignalKind::PrivacyMode].into_iter().collect();
        assert_eq!(
            TrustPolicy::new(privacy, Duration::from_secs(60), None, false),
            Err(PolicyError::InformationalCritical(SignalKind::PrivacyMode))
        );
        let tpm: SignalSet = [SignalKind::Tpm].into_iter().collect();
        assert_eq!(
            TrustPolicy::new(tpm, Duration::ZERO, None, false),
            Err(PolicyError::ZeroSignalAge)
        );
        let json = r#"{"critical":[],"max_signal_age_seconds":60}"#;
        assert!(serde_json::from_str::<TrustPolicy>(json).is_err());
        let json = r#"{"critical":["tpm"],"max_signal_age_seconds":60,"min_score":3}"#;
        assert!(serde_json::from_str::<TrustPolicy>(json).is_err());
        let json = r#"{"critical":["tpm","firewall"],"max_signal_age_seconds":60,"min_patch_level":"2026-01-05"}"#;
        let policy: Result<TrustPolicy, _> = serde_json::from_str(json);
        assert!(policy.is_ok_and(|policy| policy.is_critical(SignalKind::Firewall)));
    }
}
