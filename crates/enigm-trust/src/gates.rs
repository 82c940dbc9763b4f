//! The ten production-gate categories of Enigm OS (enigm-docs §5.7, §20 item 26): each is
//! evaluated on its own, never folded into one pass/fail, and re-evaluated with every report.

use enigm_types::Timestamp;

/// The gates, their evidence and results are vocabulary of `enigm-types`.
pub use enigm_types::{GateResult, GateStatus, ProductionGate};

use crate::policy::TrustPolicy;
use crate::signal::{SignalReport, SignalValue};

/// Every gate's result. A gate passes only when all its evidence is reported, fresh and `ok`
/// (and, for update integrity, the patch level meets the policy's minimum); the device
/// management gate is not applicable outside managed-device mode.
pub fn evaluate_gates(
    report: &SignalReport,
    policy: &TrustPolicy,
    now: Timestamp,
) -> [(ProductionGate, GateResult); 10] {
    ProductionGate::ALL.map(|gate| {
        if gate == ProductionGate::DeviceManagement && !policy.managed_mode() {
            return (gate, GateResult::NotApplicable);
        }
        let evidence_ok = gate.evidence().iter().all(|kind| {
            report.signal(*kind).is_some_and(|signal| {
                signal.value == SignalValue::Ok
                    && signal.observed_at <= now.saturating_add(policy.max_clock_skew())
                    && now.duration_since(signal.observed_at) <= policy.max_signal_age()
            })
        });
        let patch_ok = gate != ProductionGate::UpdateIntegrity
            || policy
                .min_patch_level()
                .is_none_or(|minimum| report.patch_level().is_some_and(|level| level >= minimum));
        let result = if evidence_ok && patch_ok {
            GateResult::Pass
        } else {
            GateResult::Fail
        };
        (gate, result)
    })
}
