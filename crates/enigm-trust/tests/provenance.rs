//! Signal provenance: minimum sources, attested signals outranking the report, contradictions,
//! which evidence counts and for how long; and the model property that no input ever raises
//! trust by being declared.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::collections::BTreeMap;
use std::time::Duration;

use enigm_trust::{
    AttestedSignals, Evaluation, Evidence, FindingKind, PatchLevel, Severity, Signal, SignalKind,
    SignalReport, SignalSource, SignalValue, TrustPolicy, TrustState, evaluate, evaluate_attested,
    explain_gates, merge,
};
use enigm_types::{GateEvidence, ProductionGate, Timestamp};
use proptest::prelude::*;

const NOW_MILLIS: i64 = 1_800_000_000_000;
const NOW: Timestamp = Timestamp::from_unix_millis(NOW_MILLIS);

use FindingKind as K;
use SignalKind as S;
use SignalSource as Src;
use SignalValue as V;
use TrustState as T;

const CRITICAL: [SignalKind; 4] = [
    S::SecureBoot,
    S::BootloaderLocked,
    S::DiskEncryption,
    S::Firewall,
];

fn policy(min: &[(SignalKind, SignalSource)]) -> TrustPolicy {
    TrustPolicy::new(
        CRITICAL.into_iter().collect(),
        Duration::from_secs(600),
        None,
        false,
    )
    .unwrap()
    .with_min_sources(Src::Declared, min.iter().copied().collect())
    .unwrap()
}

/// Every critical kind `ok` from `source`, a minute old, but for `changes`.
fn report(
    source: SignalSource,
    changes: &[(SignalKind, SignalValue, SignalSource)],
) -> SignalReport {
    let signals = CRITICAL
        .iter()
        .map(|kind| {
            let (value, source) = changes
                .iter()
                .find(|(changed, ..)| changed == kind)
                .map_or((V::Ok, source), |(_, value, source)| (*value, *source));
            Signal {
                kind: *kind,
                value,
                observed_at: NOW.saturating_sub(Duration::from_secs(60)),
                source,
            }
        })
        .collect();
    SignalReport::new(signals, PatchLevel::new(2026, 3, 5).ok()).unwrap()
}

fn attested(values: &[(SignalKind, SignalValue)], age: Duration) -> AttestedSignals {
    AttestedSignals::from_evidence(
        Some(Evidence {
            values,
            os_patch_month: None,
            attested_at: NOW.saturating_sub(age),
        }),
        None,
    )
}

fn findings_of(evaluation: &Evaluation, kind: FindingKind) -> Vec<enigm_trust::Finding> {
    evaluation
        .findings
        .iter()
        .filter(|finding| finding.kind == kind)
        .copied()
        .collect()
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn a_source_below_the_minimum_is_not_measurable_and_says_what_it_had_and_needed() {
    let strict = policy(&[
        (S::SecureBoot, Src::Attested),
        (S::DiskEncryption, Src::Measured),
    ]);
    // Declared everywhere: secure boot needs attested, disk encryption measured.
    let evaluation = evaluate(&report(Src::Declared, &[]), &strict, NOW);
    assert_eq!(evaluation.state, T::Inactive);
    let mut weak = findings_of(&evaluation, K::SourceBelowMinimum);
    weak.sort_by_key(|finding| finding.signal);
    let got: Vec<_> = weak
        .iter()
        .map(|f| {
            (
                f.signal,
                f.source,
                f.required_source,
                f.severity,
                f.critical,
            )
        })
        .collect();
    let mut want = vec![
        (
            Some(S::SecureBoot),
            Src::Declared,
            Some(Src::Attested),
            Severity::Critical,
            true,
        ),
        (
            Some(S::DiskEncryption),
            Src::Declared,
            Some(Src::Measured),
            Severity::Critical,
            true,
        ),
    ];
    want.sort_by_key(|row| row.0);
    assert_eq!(got, want);
    // Measured satisfies disk encryption, not secure boot.
    let evaluation = evaluate(&report(Src::Measured, &[]), &strict, NOW);
    assert_eq!(evaluation.state, T::Inactive);
    assert_eq!(findings_of(&evaluation, K::SourceBelowMinimum).len(), 1);
    // An attested secure boot satisfies it: PROTECTED.
    let boot = attested(&[(S::SecureBoot, V::Ok)], HOUR);
    let evaluation = evaluate_attested(&report(Src::Measured, &[]), &boot, &strict, NOW);
    assert_eq!(evaluation.state, T::Protected, "{:?}", evaluation.findings);
    assert!(evaluation.findings.is_empty());
    // The baseline's minimum is declared: the simulated fleet is PROTECTED on declarations.
    let baseline_like = policy(&[]);
    assert_eq!(
        evaluate(&report(Src::Declared, &[]), &baseline_like, NOW).state,
        T::Protected
    );
    // Below the minimum for a signal that is not critical: an Info finding, no state change.
    let non_critical = policy(&[(S::Vpn, Src::Measured)]);
    let mut with_vpn = report(Src::Measured, &[]).signals().to_vec();
    with_vpn.push(Signal {
        kind: S::Vpn,
        value: V::Ok,
        observed_at: NOW,
        source: Src::Declared,
    });
    let evaluation = evaluate(
        &SignalReport::new(with_vpn, None).unwrap(),
        &non_critical,
        NOW,
    );
    assert_eq!(evaluation.state, T::Protected);
    let weak = findings_of(&evaluation, K::SourceBelowMinimum);
    assert_eq!(weak.len(), 1);
    assert_eq!(weak[0].severity, Severity::Info);
}

#[test]
fn an_attested_value_outranks_the_report_and_a_contradiction_is_critical() {
    let policy = policy(&[]);
    let unlocked = attested(&[(S::BootloaderLocked, V::Failed)], HOUR);
    // The report says locked; the attestation says unlocked.
    for reported in [Src::Declared, Src::Measured] {
        let evaluation = evaluate_attested(&report(reported, &[]), &unlocked, &policy, NOW);
        assert_eq!(evaluation.state, T::Inactive);
        let contradiction = findings_of(&evaluation, K::SourceContradiction);
        assert_eq!(contradiction.len(), 1);
        let found = contradiction[0];
        assert_eq!(found.signal, Some(S::BootloaderLocked));
        assert_eq!(found.severity, Severity::Critical);
        assert_eq!(found.source, Src::Attested);
        assert_eq!(found.reported_source, Some(reported));
        // The attested value is what was judged, with its source.
        let failed = findings_of(&evaluation, K::ProtectionFailed);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].source, Src::Attested);
        let layers: Vec<_> = evaluation.contradiction_layers().iter().collect();
        assert_eq!(layers, vec![S::BootloaderLocked.layer()]);
    }
    // A device that reports worse than its attestation is believed, and it is no contradiction.
    let locked = attested(
        &[(S::BootloaderLocked, V::Ok), (S::SecureBoot, V::Ok)],
        HOUR,
    );
    let admits = report(
        Src::Measured,
        &[(S::BootloaderLocked, V::Degraded, Src::Measured)],
    );
    let evaluation = evaluate_attested(&admits, &locked, &policy, NOW);
    assert_eq!(evaluation.state, T::ReviewRequired);
    assert!(findings_of(&evaluation, K::SourceContradiction).is_empty());
    assert_eq!(
        findings_of(&evaluation, K::ProtectionDegraded)[0].source,
        Src::Measured
    );
    // A report that cannot measure a protection the attestation vouches for: the attestation.
    let blind = report(
        Src::Measured,
        &[(S::SecureBoot, V::NotMeasurable, Src::Measured)],
    );
    assert_eq!(
        evaluate_attested(&blind, &locked, &policy, NOW).state,
        T::Protected
    );
    // An attested signal fills in one the report lacks.
    let signals: Vec<Signal> = report(Src::Declared, &[])
        .signals()
        .iter()
        .filter(|signal| signal.kind != S::SecureBoot)
        .copied()
        .collect();
    let lacking = SignalReport::new(signals, None).unwrap();
    assert_eq!(evaluate(&lacking, &policy, NOW).state, T::Inactive);
    assert_eq!(
        evaluate_attested(&lacking, &locked, &policy, NOW).state,
        T::Protected
    );
}

#[test]
fn an_old_attestation_stops_outranking_but_its_bad_news_stays() {
    let strict = policy(&[(S::SecureBoot, Src::Attested)]);
    let day = TrustPolicy::DEFAULT_ATTESTATION_AGE;
    let just_in_time = attested(&[(S::SecureBoot, V::Ok)], day);
    let too_old = attested(&[(S::SecureBoot, V::Ok)], day + Duration::from_millis(1));
    let declared = report(Src::Declared, &[]);
    assert_eq!(
        evaluate_attested(&declared, &just_in_time, &strict, NOW).state,
        T::Protected
    );
    // Past the window the report is judged alone: under the baseline minimum that is fine...
    assert_eq!(
        evaluate_attested(&declared, &too_old, &policy(&[]), NOW).state,
        T::Protected
    );
    // ...and a policy that requires attested secure boot finds it below its minimum.
    let evaluation = evaluate_attested(&declared, &too_old, &strict, NOW);
    assert_eq!(evaluation.state, T::Inactive);
    assert_eq!(
        findings_of(&evaluation, K::SourceBelowMinimum)[0].source,
        Src::Declared
    );
    // An unlocked bootloader attested a year ago still contradicts a report of "locked".
    let year = Duration::from_secs(365 * 24 * 3600);
    let old_unlock = attested(&[(S::BootloaderLocked, V::Failed)], year);
    let evaluation = evaluate_attested(&declared, &old_unlock, &policy(&[]), NOW);
    assert_eq!(evaluation.state, T::Inactive);
    assert_eq!(findings_of(&evaluation, K::SourceContradiction).len(), 1);
    // The window is the policy's.
    let short = policy(&[]).with_max_attestation_age(Duration::from_secs(60));
    assert!(
        merge(&declared, &just_in_time, &short, NOW)
            .report()
            .signal(S::SecureBoot)
            .is_some_and(|s| s.source == Src::Declared)
    );
}

#[test]
fn a_later_ineligible_build_counts_only_for_what_it_says_is_wrong() {
    let accepted_values = [(S::SecureBoot, V::Ok), (S::BootloaderLocked, V::Ok)];
    let rejected_values = [
        (S::SecureBoot, V::Failed),
        (S::BootloaderLocked, V::Ok),
        (S::Tpm, V::Ok),
    ];
    let accepted_at = NOW.saturating_sub(Duration::from_secs(7200));
    let rejected_at = NOW.saturating_sub(Duration::from_secs(60));
    let evidence = |values, attested_at| Evidence {
        values,
        os_patch_month: None,
        attested_at,
    };
    let signals = AttestedSignals::from_evidence(
        Some(evidence(&accepted_values, accepted_at)),
        Some(evidence(&rejected_values, rejected_at)),
    );
    let by_kind = |kind| signals.signals().iter().find(|s| s.kind == kind).copied();
    assert_eq!(
        by_kind(S::SecureBoot).map(|s| (s.value, s.attested_at)),
        Some((V::Failed, rejected_at))
    );
    assert_eq!(
        by_kind(S::BootloaderLocked).map(|s| (s.value, s.attested_at)),
        Some((V::Ok, accepted_at))
    );
    // Its ok values are not evidence: a rejected attestation never raises trust.
    assert_eq!(by_kind(S::Tpm), None);
    // A rejection older than the last acceptance is superseded by it.
    let superseded = AttestedSignals::from_evidence(
        Some(evidence(&accepted_values, rejected_at)),
        Some(evidence(&rejected_values, accepted_at)),
    );
    assert!(superseded.signals().iter().all(|s| s.value == V::Ok));
    // Only a rejection: only its bad news.
    let alone = AttestedSignals::from_evidence(None, Some(evidence(&rejected_values, rejected_at)));
    assert_eq!(alone.signals().len(), 1);
    let evaluation = evaluate_attested(&report(Src::Declared, &[]), &alone, &policy(&[]), NOW);
    assert_eq!(evaluation.state, T::Inactive);
    assert_eq!(
        findings_of(&evaluation, K::SourceContradiction)[0].signal,
        Some(S::SecureBoot)
    );
}

#[test]
fn a_patch_level_beyond_the_attested_month_is_a_contradiction() {
    let minimum = PatchLevel::new(2026, 3, 1).ok();
    let policy = TrustPolicy::new(
        CRITICAL.into_iter().collect(),
        Duration::from_secs(600),
        minimum,
        false,
    )
    .unwrap();
    let month = |os_patch_month| {
        AttestedSignals::from_evidence(
            Some(Evidence {
                values: &[],
                os_patch_month: Some(os_patch_month),
                attested_at: NOW.saturating_sub(HOUR),
            }),
            None,
        )
    };
    // Reported 2026-03-05: consistent with an attested 2026-03, not with 2026-02.
    let evaluation = evaluate_attested(&report(Src::Declared, &[]), &month(202_603), &policy, NOW);
    assert_eq!(evaluation.state, T::Protected);
    let evaluation = evaluate_attested(&report(Src::Declared, &[]), &month(202_602), &policy, NOW);
    assert_eq!(evaluation.state, T::Inactive);
    let contradiction = findings_of(&evaluation, K::SourceContradiction);
    assert_eq!(contradiction.len(), 1);
    assert_eq!(contradiction[0].signal, None);
    // The attested month is what is judged against the minimum.
    assert_eq!(findings_of(&evaluation, K::PatchLevelBelowMinimum).len(), 1);
    // A month that is no month is no evidence.
    assert_eq!(
        evaluate_attested(&report(Src::Declared, &[]), &month(202_613), &policy, NOW).state,
        T::Protected
    );
}

#[test]
fn gates_explain_with_the_best_source() {
    let policy = policy(&[]);
    let boot = attested(
        &[(S::SecureBoot, V::Ok), (S::BootloaderLocked, V::Ok)],
        HOUR,
    );
    let declared = report(Src::Declared, &[]);
    let merged = merge(&declared, &boot, &policy, NOW);
    let gates = explain_gates(merged.report(), &policy, NOW);
    let boot_gate = gates
        .iter()
        .find(|g| g.gate == ProductionGate::BootIntegrity)
        .unwrap();
    let source_of = |kind| {
        boot_gate
            .because
            .iter()
            .find_map(|evidence| match evidence {
                GateEvidence::Signal { signal, source, .. } if *signal == kind => *source,
                _ => None,
            })
    };
    assert_eq!(source_of(S::SecureBoot), Some(Src::Attested));
    assert_eq!(source_of(S::BootloaderLocked), Some(Src::Attested));
}

// The model property: no input ever raises trust by being declared.

fn value() -> impl Strategy<Value = SignalValue> {
    prop::sample::select(vec![
        V::Ok,
        V::Ok,
        V::Ok,
        V::Degraded,
        V::Failed,
        V::Unavailable,
        V::NotMeasurable,
    ])
}

fn any_source() -> impl Strategy<Value = SignalSource> {
    prop::sample::select(vec![Src::Measured, Src::Declared])
}

fn min_source() -> impl Strategy<Value = SignalSource> {
    prop::sample::select(vec![Src::Attested, Src::Measured, Src::Declared])
}

/// A report over a handful of kinds (critical or not), a policy with random minimum sources,
/// and attested values of some kinds, some too old to outrank.
#[derive(Debug, Clone)]
struct Case {
    report: SignalReport,
    policy: TrustPolicy,
    attested: AttestedSignals,
}

const KINDS: [SignalKind; 6] = [
    S::SecureBoot,
    S::BootloaderLocked,
    S::DeviceIntegrity,
    S::DiskEncryption,
    S::Firewall,
    S::Vpn,
];

fn cases() -> impl Strategy<Value = Case> {
    let reported = prop::collection::vec(
        (
            prop::bool::weighted(0.85),
            value(),
            any_source(),
            prop::bool::weighted(0.9),
        ),
        KINDS.len(),
    );
    let minimums = prop::collection::vec(proptest::option::of(min_source()), KINDS.len());
    let attested = prop::collection::vec(
        (
            prop::bool::weighted(0.5),
            value(),
            prop::bool::weighted(0.7),
        ),
        KINDS.len(),
    );
    let critical = prop::collection::vec(prop::bool::weighted(0.7), KINDS.len());
    (reported, minimums, attested, critical, min_source()).prop_map(
        |(reported, minimums, attested, critical, default)| {
            let signals = KINDS
                .iter()
                .zip(&reported)
                .filter(|(_, (present, ..))| *present)
                .map(|(kind, (_, value, source, fresh))| Signal {
                    kind: *kind,
                    value: *value,
                    observed_at: if *fresh {
                        NOW
                    } else {
                        NOW.saturating_sub(Duration::from_secs(3600))
                    },
                    source: *source,
                })
                .collect();
            let mut critical_set: enigm_trust::SignalSet = KINDS
                .iter()
                .zip(&critical)
                .filter(|(_, c)| **c)
                .map(|(k, _)| *k)
                .collect();
            critical_set.insert(S::Firewall);
            let per_signal: BTreeMap<SignalKind, SignalSource> = KINDS
                .iter()
                .zip(&minimums)
                .filter_map(|(kind, minimum)| minimum.map(|m| (*kind, m)))
                .collect();
            let policy = TrustPolicy::new(critical_set, Duration::from_secs(600), None, false)
                .unwrap()
                .with_min_sources(default, per_signal)
                .unwrap();
            let fresh: Vec<(SignalKind, SignalValue)> = KINDS
                .iter()
                .zip(&attested)
                .filter(|(_, (present, _, fresh))| *present && *fresh)
                .map(|(kind, (_, value, _))| (*kind, *value))
                .collect();
            let old: Vec<(SignalKind, SignalValue)> = KINDS
                .iter()
                .zip(&attested)
                .filter(|(_, (present, _, fresh))| *present && !*fresh)
                .map(|(kind, (_, value, _))| (*kind, *value))
                .collect();
            // One accepted attestation: an hour old when any value is drawn fresh, else two
            // days old (only its bad news still counts then).
            let values = old;
            let two_days = NOW.saturating_sub(Duration::from_secs(2 * 24 * 3600));
            let attested = if fresh.is_empty() {
                AttestedSignals::from_evidence(
                    Some(Evidence {
                        values: &values,
                        os_patch_month: None,
                        attested_at: two_days,
                    }),
                    None,
                )
            } else {
                AttestedSignals::from_evidence(
                    Some(Evidence {
                        values: &fresh,
                        os_patch_month: None,
                        attested_at: NOW.saturating_sub(HOUR),
                    }),
                    None,
                )
            };
            Case {
                report: SignalReport::new(signals, None).unwrap(),
                policy,
                attested,
            }
        },
    )
}

fn with_signal(
    report: &SignalReport,
    kind: SignalKind,
    change: impl FnOnce(Option<Signal>) -> Option<Signal>,
) -> SignalReport {
    let mut signals: Vec<Signal> = report
        .signals()
        .iter()
        .filter(|s| s.kind != kind)
        .copied()
        .collect();
    signals.extend(change(report.signal(kind).copied()));
    SignalReport::new(signals, report.patch_level()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// Replacing a measured signal by the same value declared never gives a better state.
    #[test]
    fn declaring_instead_of_measuring_never_improves_the_state(case in cases()) {
        let before = evaluate_attested(&case.report, &case.attested, &case.policy, NOW).state;
        for kind in KINDS {
            let declared = with_signal(&case.report, kind, |signal| {
                signal.map(|signal| Signal { source: Src::Declared, ..signal })
            });
            let after = evaluate_attested(&declared, &case.attested, &case.policy, NOW).state;
            prop_assert!(after >= before, "{kind}: {before:?} -> {after:?}");
        }
    }

    /// Where the attestation alone speaks for a kind, adding a declared signal of any value
    /// never gives a better state.
    #[test]
    fn adding_a_declared_signal_never_lifts_above_the_attestation(case in cases(), value in value()) {
        let before = evaluate_attested(&case.report, &case.attested, &case.policy, NOW);
        for kind in KINDS {
            let declared = with_signal(&case.report, kind, |_| {
                Some(Signal { kind, value, observed_at: NOW, source: Src::Declared })
            });
            let after = evaluate_attested(&declared, &case.attested, &case.policy, NOW).state;
            let attested_here = merge(&case.report, &case.attested, &case.policy, NOW)
                .report()
                .signal(kind)
                .is_some_and(|signal| signal.source == Src::Attested);
            if attested_here && case.report.signal(kind).is_none() {
                // The attestation alone spoke for this kind; a declaration may only add to it.
                prop_assert!(after >= before.state, "{kind}: {:?} -> {after:?}", before.state);
            }
        }
    }

    /// An attested value that is not `ok` for a critical signal never leaves the device
    /// PROTECTED, whatever the report says.
    #[test]
    fn attested_bad_news_is_never_protected(case in cases()) {
        let merged = merge(&case.report, &case.attested, &case.policy, NOW);
        let bad_attested = case.attested.signals().iter().any(|signal| {
            signal.value != V::Ok && case.policy.is_critical(signal.kind)
        });
        if bad_attested {
            let state = enigm_trust::evaluate_merged(&merged, &case.policy, NOW).state;
            prop_assert_ne!(state, T::Protected);
        }
    }

    /// A critical signal whose minimum is above `declared` is never satisfied by a declaration
    /// alone.
    #[test]
    fn a_declaration_never_meets_a_stronger_minimum(case in cases()) {
        let without_attestation = evaluate(&case.report, &case.policy, NOW);
        let declared_critical_needing_more = case.report.signals().iter().any(|signal| {
            signal.source == Src::Declared
                && case.policy.is_critical(signal.kind)
                && case.policy.min_source(signal.kind) != Src::Declared
        });
        if declared_critical_needing_more {
            prop_assert_eq!(without_attestation.state, T::Inactive);
        }
    }
}
