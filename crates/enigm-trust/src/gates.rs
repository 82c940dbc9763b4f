//! The ten production-gate categories of Enigm OS (enigm-docs §5.7, §20 item 26): each is
//! evaluated on its own, never folded into one pass/fail, and re-evaluated with every report.
//!
//! [`explain_gates`] gives each gate's result with why: for every signal the gate needs, whether
//! it was ok, missing, stale, from the future or not ok (with its value and source as the report
//! has them), the patch level against the policy's minimum for update integrity, or that the
//! device is not in managed-device mode. [`evaluate_gates`] gives the bare results without
//! allocating; both rest on the same per-signal checks, so the explanation never disagrees with
//! the result.

use enigm_types::Timestamp;

/// The gates, their evidence and results are vocabulary of `enigm-types`.
pub use enigm_types::{
    GateEvidence, GateResult, GateStatus, PatchLevelCheck, ProductionGate, SignalCheck,
};

use crate::policy::TrustPolicy;
use crate::signal::{Signal, SignalKind, SignalReport, SignalValue};

/// Every gate's result. A gate passes only when all its evidence is reported, fresh and `ok`
/// (and, for update integrity, the patch level meets the policy's minimum); the device
/// management gate is not applicable outside managed-device mode.
pub fn evaluate_gates(
    report: &SignalReport,
    policy: &TrustPolicy,
    now: Timestamp,
) -> [(ProductionGate, GateResult); 10] {
    ProductionGate::ALL.map(|gate| {
        if !applies(gate, policy) {
            return (gate, GateResult::NotApplicable);
        }
        let evidence_ok = gate
            .evidence()
            .iter()
            .all(|kind| check_signal(report, policy, now, *kind).0 == SignalCheck::Ok);
        let patch_ok = check_patch_level(gate, report, policy)
            .is_none_or(|check| check == PatchLevelCheck::Met);
        let result = if evidence_ok && patch_ok {
            GateResult::Pass
        } else {
            GateResult::Fail
        };
        (gate, result)
    })
}

/// Every gate's result with why (see the module documentation). The result is `pass` exactly
/// when every entry of its explanation is ok.
pub fn explain_gates(
    report: &SignalReport,
    policy: &TrustPolicy,
    now: Timestamp,
) -> [GateStatus; 10] {
    ProductionGate::ALL.map(|gate| {
        if !applies(gate, policy) {
            return GateStatus {
                gate,
                result: GateResult::NotApplicable,
                because: vec![GateEvidence::NotManaged],
            };
        }
        let evidence = gate.evidence();
        let mut because = Vec::with_capacity(evidence.len() + 1);
        for kind in evidence {
            let (check, signal) = check_signal(report, policy, now, *kind);
            because.push(GateEvidence::Signal {
                signal: *kind,
                check,
                value: signal.map(|signal| signal.value),
                source: signal.map(|signal| signal.source),
            });
        }
        if let Some(check) = check_patch_level(gate, report, policy) {
            because.push(GateEvidence::PatchLevel { check });
        }
        // INVARIANT: the result follows from the explanation alone, so the two cannot disagree.
        let result = if because.iter().all(GateEvidence::is_ok) {
            GateResult::Pass
        } else {
            GateResult::Fail
        };
        GateStatus {
            gate,
            result,
            because,
        }
    })
}

/// Device management is judged only in managed-device mode; every other gate always applies.
fn applies(gate: ProductionGate, policy: &TrustPolicy) -> bool {
    gate != ProductionGate::DeviceManagement || policy.managed_mode()
}

/// What a gate finds of one signal, and the signal when reported. A signal dated beyond the
/// allowed skew is from the future before it is anything else (its value cannot be placed in
/// time), then an old one is stale, then a fresh one is judged by its value.
fn check_signal<'r>(
    report: &'r SignalReport,
    policy: &TrustPolicy,
    now: Timestamp,
    kind: SignalKind,
) -> (SignalCheck, Option<&'r Signal>) {
    let Some(signal) = report.signal(kind) else {
        return (SignalCheck::Missing, None);
    };
    let check = if signal.observed_at > now.saturating_add(policy.max_clock_skew()) {
        SignalCheck::FromFuture
    } else if now.duration_since(signal.observed_at) > policy.max_signal_age() {
        SignalCheck::Stale
    } else if signal.value != SignalValue::Ok {
        SignalCheck::NotOk
    } else {
        SignalCheck::Ok
    };
    (check, Some(signal))
}

/// The patch-level check of the update-integrity gate; `None` for other gates and when the
/// policy sets no minimum (then there is nothing to check).
fn check_patch_level(
    gate: ProductionGate,
    report: &SignalReport,
    policy: &TrustPolicy,
) -> Option<PatchLevelCheck> {
    if gate != ProductionGate::UpdateIntegrity {
        return None;
    }
    let minimum = policy.min_patch_level()?;
    Some(match report.patch_level() {
        None => PatchLevelCheck::Unknown,
        Some(level) if level < minimum => PatchLevelCheck::BelowMinimum,
        Some(_) => PatchLevelCheck::Met,
    })
}
