//! The agent's own measurements of its network enforcement (issue 16, item 2; enigm-docs §10,
//! §20 H.63), as TSC signals: what the shell observed of its firewall, its encrypted-DNS stub
//! and the network policy in force, turned into `firewall`, `encrypted-dns` and
//! `network-policy-compliance` (together the Trust Security Center's "protected network
//! state").
//!
//! Fail closed, never open: rules that are missing, a resolver that stopped, or no usable
//! network policy are `unavailable` / `not-measurable` (INACTIVE when the trust policy holds the
//! signal critical); plain DNS attempts and flows the policy refused since the last cycle are
//! `degraded` (a finding to review); a policy whose rules could not be put in force is
//! `failed`. Only counts are kept, never a destination.

use enigm_trust::{Signal, SignalKind, SignalSource, SignalValue};
use enigm_types::Timestamp;

/// The network policy the agent enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkPolicyState {
    /// The held bundle's network policy compiled and its rules were put in force.
    InForce,
    /// No bundle, or a bundle without a network policy: everything but Command and the DNS
    /// upstreams is closed, and the policy cannot be measured.
    Missing,
    /// The bundle could not be read, or its rules could not be put in force (the rules in force
    /// before, or the closed ones, stay).
    Unusable,
}

/// What the shell observed this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkObservation {
    pub policy: NetworkPolicyState,
    /// Whether the agent's firewall table is in the kernel; `None` when it could not be asked.
    pub rules_in_force: Option<bool>,
    /// Whether the encrypted-DNS stub is still serving.
    pub resolver_running: bool,
    /// The firewall's counters as read now (they restart at zero when the rules are replaced);
    /// `None` when they could not be read.
    pub plain_dns_attempts: Option<u64>,
    pub refused_flows: Option<u64>,
}

/// Turns observations into signals, remembering the counters between cycles so that each cycle
/// reports what happened since the one before.
#[derive(Debug, Clone, Default)]
pub struct NetworkMeter {
    plain_dns_attempts: Option<u64>,
    refused_flows: Option<u64>,
}

/// How much a counter grew since `before`; a counter below its last value was reset (the rules
/// were replaced), so all of it is new.
fn growth(before: Option<u64>, now: u64) -> u64 {
    match before {
        Some(before) if now >= before => now - before,
        _ => now,
    }
}

impl NetworkMeter {
    pub fn new() -> NetworkMeter {
        NetworkMeter::default()
    }

    /// The three signals of `observed` at `now`.
    pub fn signals(&mut self, observed: &NetworkObservation, now: Timestamp) -> Vec<Signal> {
        let firewall = match observed.rules_in_force {
            Some(true) => SignalValue::Ok,
            Some(false) => SignalValue::Unavailable,
            None => SignalValue::NotMeasurable,
        };
        let plain_dns = observed
            .plain_dns_attempts
            .map(|count| growth(self.plain_dns_attempts, count));
        let encrypted_dns = match (
            observed.resolver_running,
            observed.rules_in_force,
            plain_dns,
        ) {
            (false, _, _) => SignalValue::Unavailable,
            // Without the rules, nothing stops plain DNS going out.
            (true, Some(false), _) => SignalValue::Unavailable,
            (true, _, None) | (true, None, _) => SignalValue::NotMeasurable,
            (true, Some(true), Some(0)) => SignalValue::Ok,
            (true, Some(true), Some(_)) => SignalValue::Degraded,
        };
        let refused = observed
            .refused_flows
            .map(|count| growth(self.refused_flows, count));
        let compliance = match (observed.policy, observed.rules_in_force, refused) {
            (NetworkPolicyState::Missing, _, _) => SignalValue::NotMeasurable,
            (NetworkPolicyState::Unusable, _, _) => SignalValue::Failed,
            (NetworkPolicyState::InForce, Some(false), _) => SignalValue::Unavailable,
            (NetworkPolicyState::InForce, None, _) | (NetworkPolicyState::InForce, _, None) => {
                SignalValue::NotMeasurable
            }
            (NetworkPolicyState::InForce, Some(true), Some(0)) => SignalValue::Ok,
            (NetworkPolicyState::InForce, Some(true), Some(_)) => SignalValue::Degraded,
        };
        if observed.plain_dns_attempts.is_some() {
            self.plain_dns_attempts = observed.plain_dns_attempts;
        }
        if observed.refused_flows.is_some() {
            self.refused_flows = observed.refused_flows;
        }
        [
            (SignalKind::Firewall, firewall),
            (SignalKind::EncryptedDns, encrypted_dns),
            (SignalKind::NetworkPolicyCompliance, compliance),
        ]
        .into_iter()
        .map(|(kind, value)| Signal {
            kind,
            value,
            observed_at: now,
            source: SignalSource::Measured,
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> NetworkObservation {
        NetworkObservation {
            policy: NetworkPolicyState::InForce,
            rules_in_force: Some(true),
            resolver_running: true,
            plain_dns_attempts: Some(0),
            refused_flows: Some(0),
        }
    }

    fn values(meter: &mut NetworkMeter, observed: &NetworkObservation) -> [SignalValue; 3] {
        let signals = meter.signals(observed, Timestamp::from_unix_millis(1_000));
        assert!(
            signals
                .iter()
                .all(|signal| signal.source == SignalSource::Measured)
        );
        let value = |kind| {
            signals
                .iter()
                .find(|signal| signal.kind == kind)
                .map(|signal| signal.value)
        };
        [
            value(SignalKind::Firewall),
            value(SignalKind::EncryptedDns),
            value(SignalKind::NetworkPolicyCompliance),
        ]
        .map(|value| value.unwrap_or(SignalValue::Unavailable))
    }

    #[test]
    fn enforced_and_quiet_is_ok() {
        let mut meter = NetworkMeter::new();
        assert_eq!(values(&mut meter, &healthy()), [SignalValue::Ok; 3]);
    }

    #[test]
    fn each_fault_fails_closed() {
        use SignalValue::{Degraded, Failed, NotMeasurable, Ok, Unavailable};
        let cases = [
            (
                NetworkObservation {
                    rules_in_force: Some(false),
                    ..healthy()
                },
                [Unavailable, Unavailable, Unavailable],
            ),
            (
                NetworkObservation {
                    rules_in_force: None,
                    plain_dns_attempts: None,
                    refused_flows: None,
                    ..healthy()
                },
                [NotMeasurable, NotMeasurable, NotMeasurable],
            ),
            (
                NetworkObservation {
                    resolver_running: false,
                    ..healthy()
                },
                [Ok, Unavailable, Ok],
            ),
            (
                NetworkObservation {
                    policy: NetworkPolicyState::Missing,
                    ..healthy()
                },
                [Ok, Ok, NotMeasurable],
            ),
            (
                NetworkObservation {
                    policy: NetworkPolicyState::Unusable,
                    ..healthy()
                },
                [Ok, Ok, Failed],
            ),
            (
                NetworkObservation {
                    plain_dns_attempts: Some(3),
                    ..healthy()
                },
                [Ok, Degraded, Ok],
            ),
            (
                NetworkObservation {
                    refused_flows: Some(2),
                    ..healthy()
                },
                [Ok, Ok, Degraded],
            ),
        ];
        for (observed, expected) in cases {
            let mut meter = NetworkMeter::new();
            assert_eq!(values(&mut meter, &observed), expected, "{observed:?}");
        }
    }

    #[test]
    fn counters_report_what_is_new_since_the_last_cycle() {
        let mut meter = NetworkMeter::new();
        let with = |plain, refused| NetworkObservation {
            plain_dns_attempts: Some(plain),
            refused_flows: Some(refused),
            ..healthy()
        };
        assert_eq!(values(&mut meter, &with(2, 0))[1], SignalValue::Degraded);
        // Nothing new: back to ok.
        assert_eq!(values(&mut meter, &with(2, 0))[1], SignalValue::Ok);
        assert_eq!(values(&mut meter, &with(2, 5))[2], SignalValue::Degraded);
        // The rules were replaced and their counters restarted: what they hold is new.
        assert_eq!(values(&mut meter, &with(1, 0))[1], SignalValue::Degraded);
        assert_eq!(values(&mut meter, &with(1, 0)), [SignalValue::Ok; 3]);
        // A counter that could not be read does not forget the last value.
        let unread = NetworkObservation {
            plain_dns_attempts: None,
            ..with(1, 0)
        };
        assert_eq!(values(&mut meter, &unread)[1], SignalValue::NotMeasurable);
        assert_eq!(values(&mut meter, &with(1, 0))[1], SignalValue::Ok);
    }
}
