//! The policy bundle the agent enforces, as the core sees it: which settings apply, and the
//! `policy-compliance` signal the agent measures of itself.
//!
//! Fail closed: no valid bundle is `not-measurable`, a bundle Command named that the device
//! refused (tampered, replayed, older than the one held, for another group) is `failed` while
//! the last good one stays in force; only a verified bundle in force and nothing refused since
//! is `ok`. The signal is the agent's own measurement, so a profile cannot declare it.

use std::time::Duration;

use enigm_ota::policy_bundle::AgentSettings;
use enigm_trust::{Signal, SignalKind, SignalSource, SignalValue};
use enigm_types::{ReasonCategory, Timestamp};

/// A verified bundle in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InForce {
    pub group: String,
    pub sequence: u64,
    pub settings: AgentSettings,
}

/// The bundle in force (none: the baseline) and whether the last bundle Command named was
/// refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyStatus {
    pub in_force: Option<InForce>,
    pub refused: Option<ReasonCategory>,
}

impl PolicyStatus {
    /// The `policy-compliance` signal at `now`.
    pub fn signal(&self, now: Timestamp) -> Signal {
        let value = match (&self.in_force, self.refused) {
            (Some(_), None) => SignalValue::Ok,
            (_, Some(_)) => SignalValue::Failed,
            (None, None) => SignalValue::NotMeasurable,
        };
        Signal {
            kind: SignalKind::PolicyCompliance,
            value,
            observed_at: now,
            source: SignalSource::Measured,
        }
    }

    /// The sequence number of the bundle in force.
    pub fn sequence(&self) -> Option<u64> {
        self.in_force.as_ref().map(|in_force| in_force.sequence)
    }

    /// The check-in interval the bundle in force sets.
    pub fn interval(&self) -> Option<Duration> {
        self.in_force
            .as_ref()
            .map(|in_force| Duration::from_secs(in_force.settings.checkin_interval_seconds))
    }

    /// Whether the agent reports signals of `kind`: every kind under the baseline; under a
    /// bundle, the kinds it lists, and always the agent's own measurements of its update path
    /// and its policy (without them a bundle could silence its own failure).
    pub fn collects(&self, kind: SignalKind) -> bool {
        match &self.in_force {
            None => true,
            Some(_)
                if matches!(
                    kind,
                    SignalKind::PolicyCompliance | SignalKind::OtaVerification
                ) =>
            {
                true
            }
            Some(in_force) => in_force
                .settings
                .collect
                .iter()
                .any(|name| name == kind.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_unix_millis(1_796_000_000_000);

    fn in_force(collect: &[&str]) -> InForce {
        InForce {
            group: "field".to_owned(),
            sequence: 4,
            settings: AgentSettings {
                checkin_interval_seconds: 90,
                collect: collect.iter().map(|name| (*name).to_owned()).collect(),
            },
        }
    }

    #[test]
    fn only_a_bundle_in_force_with_nothing_refused_is_compliant() {
        let value = |status: PolicyStatus| status.signal(NOW).value;
        assert_eq!(value(PolicyStatus::default()), SignalValue::NotMeasurable);
        let refused = Some(ReasonCategory::Downgrade);
        assert_eq!(
            value(PolicyStatus {
                in_force: None,
                refused
            }),
            SignalValue::Failed
        );
        assert_eq!(
            value(PolicyStatus {
                in_force: Some(in_force(&[])),
                refused
            }),
            SignalValue::Failed
        );
        let ok = PolicyStatus {
            in_force: Some(in_force(&[])),
            refused: None,
        };
        assert_eq!(ok.signal(NOW).value, SignalValue::Ok);
        assert_eq!(ok.signal(NOW).source, SignalSource::Measured);
        assert_eq!(ok.interval(), Some(Duration::from_secs(90)));
        assert_eq!(ok.sequence(), Some(4));
    }

    #[test]
    fn a_bundle_chooses_the_signals_but_never_silences_the_agents_own() {
        let baseline = PolicyStatus::default();
        assert!(baseline.collects(SignalKind::Firewall));
        let status = PolicyStatus {
            in_force: Some(in_force(&["firewall"])),
            refused: None,
        };
        assert!(status.collects(SignalKind::Firewall));
        assert!(!status.collects(SignalKind::EncryptedDns));
        assert!(status.collects(SignalKind::PolicyCompliance));
        assert!(status.collects(SignalKind::OtaVerification));
    }
}
