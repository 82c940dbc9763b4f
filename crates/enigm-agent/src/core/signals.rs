//! Building a signal report from signals: pure, shared by the core (which adds the agent's own
//! measurements) and the collectors and profiles of the shell.

use std::collections::BTreeMap;

use enigm_trust::{PatchLevel, Signal, SignalReport};

/// Builds a report from signals, keeping the first signal of each kind.
pub(crate) fn report_from(signals: Vec<Signal>, patch_level: Option<PatchLevel>) -> SignalReport {
    let mut by_kind = BTreeMap::new();
    for signal in signals {
        by_kind.entry(signal.kind).or_insert(signal);
    }
    let report = SignalReport::new(by_kind.into_values().collect(), patch_level);
    // INVARIANT: a map holds each kind once, so the report never sees a duplicate.
    #[expect(
        clippy::expect_used,
        reason = "signals come from a map keyed by kind, so there are no duplicates"
    )]
    report.expect("one signal per kind")
}

/// `report` with `measured` in place of any signal of the same kinds: signals the agent itself
/// measured (its own OTA verification) win over what a profile declares.
pub(crate) fn with_measured(report: SignalReport, measured: Vec<Signal>) -> SignalReport {
    let patch_level = report.patch_level();
    let mut signals = measured;
    signals.extend_from_slice(report.signals());
    report_from(signals, patch_level)
}

/// `report` with only the signals of the kinds `keep` accepts.
pub(crate) fn only(
    report: SignalReport,
    keep: impl Fn(enigm_trust::SignalKind) -> bool,
) -> SignalReport {
    let patch_level = report.patch_level();
    let signals = report
        .signals()
        .iter()
        .filter(|signal| keep(signal.kind))
        .cloned()
        .collect();
    report_from(signals, patch_level)
}
