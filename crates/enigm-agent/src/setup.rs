//! The device's setup baseline (enigm-docs §5.2, §20 C.27): the required steps of the setup
//! wizard — a strong device PIN, the terms accepted, a working network path to Command — and
//! which of them this device has done. The agent reports the steps done with every enrollment
//! and check-in; Command keeps the device out of "ready", and out of every eligibility, until
//! all are reported.
//!
//! On a simulated device the profile's `[setup]` table declares the steps; on a real one
//! `enigm agent-setup` records them in the state directory. The PIN itself is never kept or
//! sent: the operating system keeps its own lock-screen PIN, and this step only refuses a weak
//! one (the same rule Command applies to administrators' PINs) and records that a strong one
//! was chosen.

use enigm_types::{SetupStep, Timestamp};
use serde::{Deserialize, Serialize};

/// The setup steps done, as `setup.json` keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupRecord {
    /// In the wizard's order, each once.
    pub completed: Vec<SetupStep>,
    /// RFC 3339: when a step was last recorded.
    pub updated_at: String,
}

/// Why a setup step was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SetupRefusal {
    #[error("the device PIN must be exactly 6 digits (0-9)")]
    PinFormat,
    #[error(
        "the device PIN is weak (a repeated, sequential, mirrored or common pattern): choose another"
    )]
    WeakPin,
}

/// Checks a device PIN chosen at setup: six digits that are not weak.
pub fn check_device_pin(pin: &str) -> Result<(), SetupRefusal> {
    match enigm_identity::Pin::parse(pin) {
        Ok(_) => Ok(()),
        Err(enigm_identity::PinError::Weak) => Err(SetupRefusal::WeakPin),
        Err(_) => Err(SetupRefusal::PinFormat),
    }
}

impl SetupRecord {
    /// `done` added to the steps of `previous` (steps are never undone, short of a wipe).
    pub fn with(previous: Option<&SetupRecord>, done: &[SetupStep], now: Timestamp) -> Self {
        let completed = SetupStep::REQUIRED
            .into_iter()
            .filter(|step| {
                done.contains(step)
                    || previous.is_some_and(|record| record.completed.contains(step))
            })
            .collect();
        SetupRecord {
            completed,
            updated_at: now.to_rfc3339(),
        }
    }

    /// The required steps not done yet, in the wizard's order.
    pub fn missing(&self) -> Vec<SetupStep> {
        SetupStep::missing(&self.completed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

    #[test]
    fn weak_or_malformed_device_pins_are_refused() {
        for weak in [
            "111111", "123456", "654321", "121212", "123123", "123321", "112233",
        ] {
            assert_eq!(check_device_pin(weak), Err(SetupRefusal::WeakPin), "{weak}");
        }
        for malformed in ["", "12345", "1234567", "12a456", " 48151", "4815162342"] {
            assert_eq!(
                check_device_pin(malformed),
                Err(SetupRefusal::PinFormat),
                "{malformed}"
            );
        }
        assert_eq!(check_device_pin("481516"), Ok(()));
    }

    #[test]
    fn steps_accumulate_in_the_wizard_order() {
        let first = SetupRecord::with(None, &[SetupStep::NetworkReadiness], NOW);
        assert_eq!(first.completed, vec![SetupStep::NetworkReadiness]);
        assert_eq!(
            first.missing(),
            vec![SetupStep::StrongPin, SetupStep::Terms]
        );
        let second = SetupRecord::with(
            Some(&first),
            &[SetupStep::Terms, SetupStep::StrongPin, SetupStep::Terms],
            NOW,
        );
        assert_eq!(second.completed, SetupStep::REQUIRED.to_vec());
        assert!(second.missing().is_empty());
    }
}
