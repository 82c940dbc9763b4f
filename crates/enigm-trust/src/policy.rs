//! The trust policy a device is evaluated under: assigned by Command, per device group.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::signal::{PatchLevel, SignalKind, SignalSet, SignalSource};

/// What a device must show to be `PROTECTED`.
///
/// INVARIANT (checked by [`TrustPolicy::new`] and on deserialisation): at least one critical
/// signal, none of them informational, and a non-zero maximum signal age; no minimum source is
/// `engine` (the engine is no evidence of a protection).
///
/// Provenance: `min_source` names, per signal, the weakest source whose value is believed
/// (`attested` > `measured` > `declared`), and `default_min_source` the minimum of every other
/// signal (`declared` when absent: the baseline, see `docs/security.md`). A value whose best
/// source is weaker counts as not measurable. `max_attestation_age_seconds` says how long an
/// attestation's favourable claims outrank the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawPolicy", into = "RawPolicy")]
pub struct TrustPolicy {
    critical: SignalSet,
    max_signal_age: Duration,
    max_clock_skew: Duration,
    min_patch_level: Option<PatchLevel>,
    managed_mode: bool,
    min_sources: BTreeMap<SignalKind, SignalSource>,
    default_min_source: SignalSource,
    /// The strength each kind's source must have, by kind index: `min_sources` and
    /// `default_min_source` flattened for the engine's hot loop.
    min_strength: [u8; SignalKind::COUNT],
    max_attestation_age: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("a trust policy must name at least one critical signal")]
    NoCriticalSignals,
    #[error("`{0}` is informational and cannot be a critical signal")]
    InformationalCritical(SignalKind),
    #[error("the maximum signal age must be at least one second")]
    ZeroSignalAge,
    #[error("`engine` cannot be a minimum source (use attested, measured or declared)")]
    EngineMinimumSource,
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
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    min_source: BTreeMap<SignalKind, SignalSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default_min_source: Option<SignalSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_attestation_age_seconds: Option<u64>,
}

fn default_skew_seconds() -> u64 {
    TrustPolicy::DEFAULT_CLOCK_SKEW.as_secs()
}

impl TrustPolicy {
    /// How far in the future an observation time may lie before it is not believed.
    pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
    /// How old a signal may be in the baseline policy.
    pub const BASELINE_SIGNAL_AGE: Duration = Duration::from_secs(15 * 60);
    /// The minimum source of a signal the policy names no minimum for: a declared value is
    /// believed, so simulated devices and platforms without collectors keep working (an
    /// attested value still outranks it, and a contradiction still counts).
    pub const BASELINE_MIN_SOURCE: SignalSource = SignalSource::Declared;
    /// How long an attestation's favourable claims outrank the report by default: a day, while
    /// agents attest hourly.
    pub const DEFAULT_ATTESTATION_AGE: Duration = Duration::from_secs(24 * 60 * 60);

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
            min_sources: BTreeMap::new(),
            default_min_source: Self::BASELINE_MIN_SOURCE,
            min_strength: [Self::BASELINE_MIN_SOURCE.strength(); SignalKind::COUNT],
            max_attestation_age: Self::DEFAULT_ATTESTATION_AGE,
        })
    }

    /// The policy with these minimum sources: `per_signal` for the signals it names, `default`
    /// for every other.
    pub fn with_min_sources(
        mut self,
        default: SignalSource,
        per_signal: BTreeMap<SignalKind, SignalSource>,
    ) -> Result<Self, PolicyError> {
        if default == SignalSource::Engine
            || per_signal.values().any(|s| *s == SignalSource::Engine)
        {
            return Err(PolicyError::EngineMinimumSource);
        }
        let mut min_strength = [default.strength(); SignalKind::COUNT];
        for (kind, source) in &per_signal {
            if let Some(slot) = min_strength.get_mut(kind.index() as usize) {
                *slot = source.strength();
            }
        }
        self.default_min_source = default;
        self.min_sources = per_signal;
        self.min_strength = min_strength;
        Ok(self)
    }

    /// How long an attestation's favourable claims outrank the report.
    pub fn with_max_attestation_age(mut self, age: Duration) -> Self {
        self.max_attestation_age = age;
        self
    }

    /// The weakest source whose value of `kind` is believed.
    pub fn min_source(&self, kind: SignalKind) -> SignalSource {
        self.min_sources
            .get(&kind)
            .copied()
            .unwrap_or(self.default_min_source)
    }

    /// Whether a value of `kind` from `source` is believed (the engine's hot path).
    pub fn accepts_source(&self, kind: SignalKind, source: SignalSource) -> bool {
        self.min_strength
            .get(kind.index() as usize)
            .is_none_or(|minimum| source.strength() >= *minimum)
    }

    pub fn max_attestation_age(&self) -> Duration {
        self.max_attestation_age
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
            min_sources: BTreeMap::new(),
            default_min_source: Self::BASELINE_MIN_SOURCE,
            min_strength: [Self::BASELINE_MIN_SOURCE.strength(); SignalKind::COUNT],
            max_attestation_age: Self::DEFAULT_ATTESTATION_AGE,
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
        let policy = TrustPolicy::new(
            raw.critical,
            Duration::from_secs(raw.max_signal_age_seconds),
            raw.min_patch_level,
            raw.managed_mode,
        )?
        .with_clock_skew(Duration::from_secs(raw.max_clock_skew_seconds))
        .with_min_sources(
            raw.default_min_source
                .unwrap_or(TrustPolicy::BASELINE_MIN_SOURCE),
            raw.min_source,
        )?;
        Ok(match raw.max_attestation_age_seconds {
            Some(seconds) => policy.with_max_attestation_age(Duration::from_secs(seconds)),
            None => policy,
        })
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
            // Defaults stay unwritten, so a policy stored before provenance encodes as it did.
            default_min_source: (policy.default_min_source != TrustPolicy::BASELINE_MIN_SOURCE)
                .then_some(policy.default_min_source),
            min_source: policy.min_sources,
            max_attestation_age_seconds: (policy.max_attestation_age
                != TrustPolicy::DEFAULT_ATTESTATION_AGE)
                .then_some(policy.max_attestation_age.as_secs()),
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

#[cfg(test)]
mod provenance_tests {
    use super::*;

    #[test]
    fn minimum_sources_parse_with_a_default_and_refuse_the_engine() {
        let json = r#"{"critical":["secure-boot","disk-encryption","firewall"],"max_signal_age_seconds":600,
            "min_source":{"secure-boot":"attested","disk-encryption":"measured"},"default_min_source":"declared",
            "max_attestation_age_seconds":3600}"#;
        let policy: TrustPolicy = serde_json::from_str(json).unwrap();
        assert_eq!(
            policy.min_source(SignalKind::SecureBoot),
            SignalSource::Attested
        );
        assert_eq!(
            policy.min_source(SignalKind::DiskEncryption),
            SignalSource::Measured
        );
        assert_eq!(
            policy.min_source(SignalKind::Firewall),
            SignalSource::Declared
        );
        assert!(!policy.accepts_source(SignalKind::SecureBoot, SignalSource::Measured));
        assert!(policy.accepts_source(SignalKind::SecureBoot, SignalSource::Attested));
        assert!(!policy.accepts_source(SignalKind::DiskEncryption, SignalSource::Declared));
        assert!(policy.accepts_source(SignalKind::DiskEncryption, SignalSource::Attested));
        assert!(policy.accepts_source(SignalKind::Firewall, SignalSource::Declared));
        assert!(!policy.accepts_source(SignalKind::Firewall, SignalSource::Engine));
        assert_eq!(policy.max_attestation_age(), Duration::from_secs(3600));
        // Round trip through its own encoding.
        let again: TrustPolicy =
            serde_json::from_str(&serde_json::to_string(&policy).unwrap()).unwrap();
        assert_eq!(again, policy);

        for bad in [
            r#"{"critical":["tpm"],"max_signal_age_seconds":60,"min_source":{"tpm":"engine"}}"#,
            r#"{"critical":["tpm"],"max_signal_age_seconds":60,"default_min_source":"engine"}"#,
            r#"{"critical":["tpm"],"max_signal_age_seconds":60,"min_source":{"tpm":"strong"}}"#,
            r#"{"critical":["tpm"],"max_signal_age_seconds":60,"min_source":{"no-such":"attested"}}"#,
            r#"{"critical":["tpm"],"max_signal_age_seconds":60,"min_sources":{}}"#,
        ] {
            assert!(serde_json::from_str::<TrustPolicy>(bad).is_err(), "{bad}");
        }
        // An old name of a source is read as the new one.
        let old =
            r#"{"critical":["tpm"],"max_signal_age_seconds":60,"min_source":{"tpm":"collector"}}"#;
        let policy: TrustPolicy = serde_json::from_str(old).unwrap();
        assert_eq!(policy.min_source(SignalKind::Tpm), SignalSource::Measured);
    }

    #[test]
    fn the_baseline_believes_declared_values_and_encodes_as_before_provenance() {
        let baseline = TrustPolicy::baseline();
        for kind in SignalKind::ALL {
            assert_eq!(baseline.min_source(kind), SignalSource::Declared, "{kind}");
            assert!(
                baseline.accepts_source(kind, SignalSource::Declared),
                "{kind}"
            );
        }
        let json = serde_json::to_string(&baseline).unwrap();
        assert!(!json.contains("min_source"), "{json}");
        assert!(!json.contains("attestation"), "{json}");
    }
}
