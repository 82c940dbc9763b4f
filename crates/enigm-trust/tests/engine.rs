//! The Trust State Engine, table-driven: every critical or non-critical signal in every value
//! and every freshness gives the state and the finding the rules of `engine.rs` (enigm-docs §6,
//! §20 items 19–25) say, independently of how the engine computes them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::collections::HashSet;
use std::time::Duration;

use enigm_trust::{
    Evaluation, Finding, FindingKind, LauncherSummary, PatchLevel, Severity, Signal, SignalKind,
    SignalReport, SignalSet, SignalSource, SignalValue, TrustPolicy, TrustState, evaluate,
};
use enigm_types::Timestamp;

const NOW: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);
const MAX_AGE: Duration = Duration::from_secs(10 * 60);
const SKEW: Duration = TrustPolicy::DEFAULT_CLOCK_SKEW;

/// The critical signals of the test policy.
const CRITICAL: [SignalKind; 3] = [
    SignalKind::DeviceIntegrity,
    SignalKind::SecureBoot,
    SignalKind::Firewall,
];

/// How old a signal is when it is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Age {
    Fresh,
    /// One millisecond older than the policy allows.
    Stale,
    /// One millisecond further in the future than the allowed clock skew.
    Future,
}

impl Age {
    const ALL: [Age; 3] = [Age::Fresh, Age::Stale, Age::Future];

    fn observed_at(self) -> Timestamp {
        match self {
            Age::Fresh => NOW.saturating_sub(Duration::from_secs(60)),
            Age::Stale => NOW
                .saturating_sub(MAX_AGE)
                .saturating_sub(Duration::from_millis(1)),
            Age::Future => NOW
                .saturating_add(SKEW)
                .saturating_add(Duration::from_millis(1)),
        }
    }
}

const VALUES: [SignalValue; 5] = [
    SignalValue::Ok,
    SignalValue::Degraded,
    SignalValue::Failed,
    SignalValue::Unavailable,
    SignalValue::NotMeasurable,
];

use Age::{Fresh, Future, Stale};
use FindingKind as K;
use Severity as Sev;
use SignalValue as V;
use TrustState as T;

/// Who a finding is attributed to: the signal's own source, or the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Src {
    Signal,
    Engine,
}

/// One row: (critical?, value, age) → state, and the finding (kind, severity, source), if any.
type Row = (
    bool,
    SignalValue,
    Age,
    TrustState,
    Option<(FindingKind, Severity, Src)>,
);

/// Every combination of criticality, value and age, written out. A stale or future signal is
/// judged by its time, never by its value; a value problem of a critical signal moves the state
/// (degraded/failed → REVIEW_REQUIRED, unavailable/not measurable → INACTIVE); a non-critical
/// signal never does.
#[rustfmt::skip]
const TABLE: [Row; 30] = [
    (true,  V::Ok,            Fresh,  T::Protected,      None),
    (true,  V::Degraded,      Fresh,  T::ReviewRequired, Some((K::ProtectionDegraded,  Sev::High,     Src::Signal))),
    (true,  V::Failed,        Fresh,  T::ReviewRequired, Some((K::ProtectionFailed,    Sev::Critical, Src::Signal))),
    (true,  V::Unavailable,   Fresh,  T::Inactive,       Some((K::SignalUnavailable,   Sev::Critical, Src::Signal))),
    (true,  V::NotMeasurable, Fresh,  T::Inactive,       Some((K::SignalNotMeasurable, Sev::Critical, Src::Signal))),
    (true,  V::Ok,            Stale,  T::Inactive,       Some((K::SignalStale,         Sev::Critical, Src::Engine))),
    (true,  V::Degraded,      Stale,  T::Inactive,       Some((K::SignalStale,         Sev::Critical, Src::Engine))),
    (true,  V::Failed,        Stale,  T::Inactive,       Some((K::SignalStale,         Sev::Critical, Src::Engine))),
    (true,  V::Unavailable,   Stale,  T::Inactive,       Some((K::SignalStale,         Sev::Critical, Src::Engine))),
    (true,  V::NotMeasurable, Stale,  T::Inactive,       Some((K::SignalStale,         Sev::Critical, Src::Engine))),
    (true,  V::Ok,            Future, T::Inactive,       Some((K::SignalFromFuture,    Sev::Critical, Src::Engine))),
    (true,  V::Degraded,      Future, T::Inactive,       Some((K::SignalFromFuture,    Sev::Critical, Src::Engine))),
    (true,  V::Failed,        Future, T::Inactive,       Some((K::SignalFromFuture,    Sev::Critical, Src::Engine))),
    (true,  V::Unavailable,   Future, T::Inactive,       Some((K::SignalFromFuture,    Sev::Critical, Src::Engine))),
    (true,  V::NotMeasurable, Future, T::Inactive,       Some((K::SignalFromFuture,    Sev::Critical, Src::Engine))),
    (false, V::Ok,            Fresh,  T::Protected,      None),
    (false, V::Degraded,      Fresh,  T::Protected,      Some((K::ProtectionDegraded,  Sev::Low,      Src::Signal))),
    (false, V::Failed,        Fresh,  T::Protected,      Some((K::ProtectionFailed,    Sev::Medium,   Src::Signal))),
    (false, V::Unavailable,   Fresh,  T::Protected,      Some((K::SignalUnavailable,   Sev::Low,      Src::Signal))),
    (false, V::NotMeasurable, Fresh,  T::Protected,      Some((K::SignalNotMeasurable, Sev::Info,     Src::Signal))),
    (false, V::Ok,            Stale,  T::Protected,      Some((K::SignalStale,         Sev::Low,      Src::Engine))),
    (false, V::Degraded,      Stale,  T::Protected,      Some((K::SignalStale,         Sev::Low,      Src::Engine))),
    (false, V::Failed,        Stale,  T::Protected,      Some((K::SignalStale,         Sev::Low,      Src::Engine))),
    (false, V::Unavailable,   Stale,  T::Protected,      Some((K::SignalStale,         Sev::Low,      Src::Engine))),
    (false, V::NotMeasurable, Stale,  T::Protected,      Some((K::SignalStale,         Sev::Low,      Src::Engine))),
    (false, V::Ok,            Future, T::Protected,      Some((K::SignalFromFuture,    Sev::Low,      Src::Engine))),
    (false, V::Degraded,      Future, T::Protected,      Some((K::SignalFromFuture,    Sev::Low,      Src::Engine))),
    (false, V::Failed,        Future, T::Protected,      Some((K::SignalFromFuture,    Sev::Low,      Src::Engine))),
    (false, V::Unavailable,   Future, T::Protected,      Some((K::SignalFromFuture,    Sev::Low,      Src::Engine))),
    (false, V::NotMeasurable, Future, T::Protected,      Some((K::SignalFromFuture,    Sev::Low,      Src::Engine))),
];

#[test]
fn the_table_covers_every_combination_once() {
    let rows: HashSet<(bool, SignalValue, Age)> = TABLE
        .iter()
        .map(|(critical, value, age, _, _)| (*critical, *value, *age))
        .collect();
    assert_eq!(rows.len(), TABLE.len());
    for critical in [true, false] {
        for value in VALUES {
            for age in Age::ALL {
                assert!(
                    rows.contains(&(critical, value, age)),
                    "{critical} {value:?} {age:?}"
                );
            }
        }
    }
}

#[test]
fn every_signal_in_every_value_and_age_gives_the_table_state_and_finding() {
    let policy = policy(None);
    let non_critical = [
        SignalKind::Tpm,
        SignalKind::Vpn,
        SignalKind::DeviceManagement,
        SignalKind::ActiveDefense,
    ];
    for (critical, value, age, state, expected) in TABLE {
        let kinds: &[SignalKind] = if critical { &CRITICAL } else { &non_critical };
        for &kind in kinds {
            assert_eq!(policy.is_critical(kind), critical);
            for source in [SignalSource::Measured, SignalSource::Declared] {
                let report = all_ok_but(&[(kind, value, age.observed_at(), source)], None);
                let evaluation = evaluate(&report, &policy, NOW);
                let case = format!("{kind} critical={critical} {value:?} {age:?} {source:?}");
                assert_eq!(evaluation.state, state, "{case}");
                assert_eq!(evaluation.evaluated_at, NOW, "{case}");
                let want: Vec<Finding> = expected
                    .map(|(kind_of_finding, severity, src)| Finding {
                        kind: kind_of_finding,
                        severity,
                        signal: Some(kind),
                        critical,
                        source: match src {
                            Src::Signal => source,
                            Src::Engine => SignalSource::Engine,
                        },
                        reported_source: None,
                        required_source: None,
                    })
                    .into_iter()
                    .collect();
                assert_eq!(evaluation.findings, want, "{case}");
            }
        }
    }
}

#[test]
fn ages_at_the_limits_are_still_believed() {
    let policy = policy(None);
    let limits = [
        NOW.saturating_sub(MAX_AGE),
        NOW.saturating_add(SKEW),
        NOW,
        NOW.saturating_add(Duration::from_millis(1)),
    ];
    for at in limits {
        let report = all_ok_but(
            &[(SignalKind::Firewall, V::Ok, at, SignalSource::Measured)],
            None,
        );
        let evaluation = evaluate(&report, &policy, NOW);
        assert_eq!(evaluation.state, T::Protected, "{at:?}");
        assert!(evaluation.findings.is_empty(), "{at:?}");
    }
    // Without skew, a millisecond ahead is already the future.
    let strict = policy.clone().with_clock_skew(Duration::ZERO);
    let ahead = NOW.saturating_add(Duration::from_millis(1));
    let report = all_ok_but(
        &[(SignalKind::Firewall, V::Ok, ahead, SignalSource::Measured)],
        None,
    );
    let evaluation = evaluate(&report, &strict, NOW);
    assert_eq!(evaluation.state, T::Inactive);
    assert_eq!(evaluation.findings[0].kind, K::SignalFromFuture);
}

#[test]
fn a_missing_critical_signal_makes_the_device_inactive() {
    let policy = policy(None);
    for kind in CRITICAL {
        let signals: Vec<Signal> = all_ok()
            .into_iter()
            .filter(|signal| signal.kind != kind)
            .collect();
        let evaluation = evaluate(&SignalReport::new(signals, None).unwrap(), &policy, NOW);
        assert_eq!(evaluation.state, T::Inactive, "{kind}");
        assert_eq!(evaluation.findings, vec![missing(kind)], "{kind}");
    }

    let evaluation = evaluate(&SignalReport::new(Vec::new(), None).unwrap(), &policy, NOW);
    assert_eq!(evaluation.state, T::Inactive);
    let mut found: Vec<Finding> = evaluation.findings.clone();
    found.sort_by_key(|finding| finding.signal);
    let mut want: Vec<Finding> = CRITICAL.into_iter().map(missing).collect();
    want.sort_by_key(|finding| finding.signal);
    assert_eq!(found, want);
}

#[test]
fn a_missing_non_critical_signal_changes_nothing() {
    let policy = policy(None);
    for kind in SignalKind::ALL {
        if policy.is_critical(kind) {
            continue;
        }
        let signals: Vec<Signal> = all_ok()
            .into_iter()
            .filter(|signal| signal.kind != kind)
            .collect();
        let evaluation = evaluate(&SignalReport::new(signals, None).unwrap(), &policy, NOW);
        assert_eq!(evaluation.state, T::Protected, "{kind}");
        assert!(evaluation.findings.is_empty(), "{kind}");
    }
}

#[test]
fn non_critical_problems_add_findings_and_never_move_the_state() {
    // Under the baseline policy and the test policy, all non-critical signals bad at once.
    for policy in [policy(None), TrustPolicy::baseline()] {
        for value in [V::Degraded, V::Failed, V::Unavailable, V::NotMeasurable] {
            for age in Age::ALL {
                let bad: Vec<(SignalKind, SignalValue, Timestamp, SignalSource)> = SignalKind::ALL
                    .iter()
                    .filter(|kind| !policy.is_critical(**kind))
                    .map(|kind| (*kind, value, age.observed_at(), SignalSource::Measured))
                    .collect();
                let evaluation = evaluate(&all_ok_but(&bad, None), &policy, NOW);
                assert_eq!(evaluation.state, T::Protected, "{value:?} {age:?}");
                assert_eq!(evaluation.findings.len(), bad.len(), "{value:?} {age:?}");
                assert!(evaluation.findings.iter().all(|finding| !finding.critical));
            }
        }
    }
}

#[test]
fn every_kind_is_judged_alike_when_critical() {
    // Each kind (but Privacy Mode) made the only critical signal follows the critical rows.
    for kind in SignalKind::ALL {
        if kind.is_informational() {
            continue;
        }
        let only: SignalSet = [kind].into_iter().collect();
        let policy = TrustPolicy::new(only, MAX_AGE, None, false).unwrap();
        for (critical, value, age, state, expected) in TABLE {
            if !critical {
                continue;
            }
            let report = all_ok_but(
                &[(kind, value, age.observed_at(), SignalSource::Measured)],
                None,
            );
            let evaluation = evaluate(&report, &policy, NOW);
            assert_eq!(evaluation.state, state, "{kind} {value:?} {age:?}");
            let kinds: Vec<FindingKind> = evaluation.findings.iter().map(|f| f.kind).collect();
            assert_eq!(
                kinds,
                expected.map(|(k, _, _)| k).into_iter().collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn privacy_mode_never_changes_the_state() {
    let policy = policy(None);
    // A device in each of the three states, then Privacy Mode in every value and age, or absent.
    let bases = [
        (None, T::Protected),
        (Some((SignalKind::Firewall, V::Degraded)), T::ReviewRequired),
        (Some((SignalKind::SecureBoot, V::Unavailable)), T::Inactive),
    ];
    for (change, state) in bases {
        let mut overrides: Vec<(SignalKind, SignalValue, Timestamp, SignalSource)> = change
            .map(|(kind, value)| (kind, value, Fresh.observed_at(), SignalSource::Measured))
            .into_iter()
            .collect();
        let without: Vec<Signal> = all_ok_but(&overrides, None)
            .signals()
            .iter()
            .copied()
            .filter(|signal| signal.kind != SignalKind::PrivacyMode)
            .collect();
        let evaluation = evaluate(&SignalReport::new(without, None).unwrap(), &policy, NOW);
        assert_eq!(evaluation.state, state, "privacy mode absent");
        for value in VALUES {
            for age in Age::ALL {
                overrides.retain(|(kind, ..)| *kind != SignalKind::PrivacyMode);
                overrides.push((
                    SignalKind::PrivacyMode,
                    value,
                    age.observed_at(),
                    SignalSource::Declared,
                ));
                let evaluation = evaluate(&all_ok_but(&overrides, None), &policy, NOW);
                assert_eq!(evaluation.state, state, "{value:?} {age:?}");
                let privacy: Vec<&Finding> = evaluation
                    .findings
                    .iter()
                    .filter(|finding| finding.signal == Some(SignalKind::PrivacyMode))
                    .collect();
                let want = match (value, age) {
                    (V::Ok, Fresh) => None,
                    (_, Fresh) => Some((K::PrivacyModeUnavailable, Sev::Info)),
                    (_, Stale) => Some((K::SignalStale, Sev::Low)),
                    (_, Future) => Some((K::SignalFromFuture, Sev::Low)),
                };
                let got = privacy
                    .first()
                    .map(|finding| (finding.kind, finding.severity));
                assert_eq!(
                    privacy.len(),
                    usize::from(want.is_some()),
                    "{value:?} {age:?}"
                );
                assert_eq!(got, want, "{value:?} {age:?}");
                assert!(privacy.iter().all(|finding| !finding.critical));
            }
        }
    }
}

#[test]
fn privacy_mode_cannot_be_made_critical() {
    let with_privacy: SignalSet = [SignalKind::Firewall, SignalKind::PrivacyMode]
        .into_iter()
        .collect();
    assert_eq!(
        TrustPolicy::new(with_privacy, MAX_AGE, None, false),
        Err(enigm_trust::PolicyError::InformationalCritical(
            SignalKind::PrivacyMode
        ))
    );
    let json = r#"{"critical":["firewall","privacy-mode"],"max_signal_age_seconds":600}"#;
    assert!(serde_json::from_str::<TrustPolicy>(json).is_err());
    assert!(SignalKind::PrivacyMode.is_informational());
    let informational: Vec<SignalKind> = SignalKind::ALL
        .iter()
        .copied()
        .filter(|kind| kind.is_informational())
        .collect();
    assert_eq!(informational, vec![SignalKind::PrivacyMode]);
}

#[test]
fn patch_level_against_the_minimum() {
    let minimum = PatchLevel::new(2026, 3, 5).unwrap();
    let with_minimum = policy(Some(minimum));
    let patch_finding = |kind| Finding {
        kind,
        severity: if kind == K::PatchLevelUnknown {
            Sev::Critical
        } else {
            Sev::High
        },
        signal: None,
        critical: true,
        source: SignalSource::Engine,
        reported_source: None,
        required_source: None,
    };
    let cases = [
        (None, T::Inactive, Some(K::PatchLevelUnknown)),
        (
            Some((2025, 12, 31)),
            T::ReviewRequired,
            Some(K::PatchLevelBelowMinimum),
        ),
        (
            Some((2026, 3, 4)),
            T::ReviewRequired,
            Some(K::PatchLevelBelowMinimum),
        ),
        (Some((2026, 3, 5)), T::Protected, None),
        (Some((2026, 3, 6)), T::Protected, None),
        (Some((2027, 1, 1)), T::Protected, None),
    ];
    for (level, state, finding) in cases {
        let level = level.map(|(y, m, d)| PatchLevel::new(y, m, d).unwrap());
        let evaluation = evaluate(&all_ok_but(&[], level), &with_minimum, NOW);
        assert_eq!(evaluation.state, state, "{level:?}");
        let want: Vec<Finding> = finding.map(patch_finding).into_iter().collect();
        assert_eq!(evaluation.findings, want, "{level:?}");
    }
    // Without a minimum, the patch level is not judged at all.
    for level in [None, Some(PatchLevel::new(2001, 1, 1).unwrap())] {
        let evaluation = evaluate(&all_ok_but(&[], level), &policy(None), NOW);
        assert_eq!(evaluation.state, T::Protected);
        assert!(evaluation.findings.is_empty());
    }
    // The worst of a low patch level and an inactive critical signal wins.
    let old = PatchLevel::new(2020, 1, 1).ok();
    let down = [(
        SignalKind::Firewall,
        V::Unavailable,
        NOW,
        SignalSource::Measured,
    )];
    assert_eq!(
        evaluate(&all_ok_but(&down, old), &with_minimum, NOW).state,
        T::Inactive
    );
    let degraded = [(
        SignalKind::Firewall,
        V::Degraded,
        NOW,
        SignalSource::Measured,
    )];
    assert_eq!(
        evaluate(&all_ok_but(&degraded, None), &with_minimum, NOW).state,
        T::Inactive
    );
}

#[test]
fn findings_are_sorted_most_severe_first() {
    let policy = policy(Some(PatchLevel::new(2026, 3, 5).unwrap()));
    let at = NOW;
    let report = all_ok_but(
        &[
            (
                SignalKind::PrivacyMode,
                V::Failed,
                at,
                SignalSource::Measured,
            ), // Info
            (
                SignalKind::Tpm,
                V::NotMeasurable,
                at,
                SignalSource::Measured,
            ), // Info
            (SignalKind::Vpn, V::Degraded, at, SignalSource::Measured), // Low
            (SignalKind::Proxy, V::Failed, at, SignalSource::Measured), // Medium
            (
                SignalKind::Firewall,
                V::Degraded,
                at,
                SignalSource::Measured,
            ), // High
            (
                SignalKind::SecureBoot,
                V::Failed,
                at,
                SignalSource::Measured,
            ), // Critical
        ],
        PatchLevel::new(2026, 1, 1).ok(), // High
    );
    let signals: Vec<Signal> = report
        .signals()
        .iter()
        .copied()
        .filter(|signal| signal.kind != SignalKind::DeviceIntegrity) // Critical, missing
        .collect();
    let report = SignalReport::new(signals, report.patch_level()).unwrap();
    let evaluation = evaluate(&report, &policy, NOW);
    assert_eq!(evaluation.state, T::Inactive);
    let severities: Vec<Severity> = evaluation.findings.iter().map(|f| f.severity).collect();
    assert_eq!(
        severities,
        [
            Sev::Critical,
            Sev::Critical,
            Sev::High,
            Sev::High,
            Sev::Medium,
            Sev::Low,
            Sev::Info,
            Sev::Info
        ]
    );
    assert!(Sev::Info < Sev::Low && Sev::Low < Sev::Medium);
    assert!(Sev::Medium < Sev::High && Sev::High < Sev::Critical);
}

#[test]
fn labels_are_exactly_the_documented_ones() {
    let cases = [
        (
            T::Protected,
            "PROTECTED",
            "Protected",
            LauncherSummary::DeviceProtected,
            "Device Protected",
        ),
        (
            T::ReviewRequired,
            "REVIEW_REQUIRED",
            "Review Required",
            LauncherSummary::DeviceAtRisk,
            "Device At Risk",
        ),
        (
            T::Inactive,
            "INACTIVE",
            "Inactive",
            LauncherSummary::ProtectionInactive,
            "Protection Inactive",
        ),
    ];
    for (state, wire, label, summary, launcher) in cases {
        assert_eq!(state.as_str(), wire);
        assert_eq!(state.to_string(), wire);
        assert_eq!(wire.parse::<TrustState>(), Ok(state));
        assert_eq!(state.label(), label);
        assert_eq!(state.launcher_summary(), summary);
        assert_eq!(summary.label(), launcher);
        assert_eq!(
            serde_json::to_string(&state).unwrap(),
            format!("\"{wire}\"")
        );
        assert_eq!(
            serde_json::from_str::<TrustState>(&format!("\"{wire}\"")).unwrap(),
            state
        );
        let evaluation = Evaluation {
            state,
            findings: Vec::new(),
            evaluated_at: NOW,
        };
        assert_eq!(evaluation.launcher_summary().label(), launcher);
    }
    assert_eq!(T::ALL, [T::Protected, T::ReviewRequired, T::Inactive]);
    for wrong in [
        "protected",
        "Protected",
        "REVIEW-REQUIRED",
        "ReviewRequired",
        "",
        "SAFE",
    ] {
        assert!(wrong.parse::<TrustState>().is_err(), "{wrong}");
        assert!(
            serde_json::from_str::<TrustState>(&format!("\"{wrong}\"")).is_err(),
            "{wrong}"
        );
    }
    assert!(T::Protected < T::ReviewRequired && T::ReviewRequired < T::Inactive);
    assert_eq!(T::Protected.worst(T::Inactive), T::Inactive);
}

#[test]
fn evaluation_json_carries_categories_and_text_only() {
    let report = all_ok_but(
        &[(
            SignalKind::Firewall,
            V::Degraded,
            NOW,
            SignalSource::Measured,
        )],
        None,
    );
    let evaluation = evaluate(&report, &policy(None), NOW);
    let json = serde_json::to_value(&evaluation).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "state": "REVIEW_REQUIRED",
            "findings": [{
                "kind": "protection-degraded",
                "severity": "High",
                "signal": "firewall",
                "critical": true,
                "source": "measured",
                "description": FindingKind::ProtectionDegraded.description(),
                "recommendation": FindingKind::ProtectionDegraded.recommendation(),
            }],
            "evaluated_at": NOW.unix_millis(),
        })
    );
}

#[test]
fn patch_levels_are_real_dates() {
    for impossible in ["2026-02-30", "2026-02-29", "2026-04-31", "2025-06-31"] {
        assert!(impossible.parse::<PatchLevel>().is_err(), "{impossible}");
    }
    assert!("2028-02-29".parse::<PatchLevel>().is_ok());
}

fn policy(min_patch_level: Option<PatchLevel>) -> TrustPolicy {
    TrustPolicy::new(
        CRITICAL.into_iter().collect(),
        MAX_AGE,
        min_patch_level,
        false,
    )
    .unwrap()
}

/// Every kind reported `ok`, fresh, by a collector.
fn all_ok() -> Vec<Signal> {
    SignalKind::ALL
        .iter()
        .map(|kind| Signal {
            kind: *kind,
            value: V::Ok,
            observed_at: Fresh.observed_at(),
            source: SignalSource::Measured,
        })
        .collect()
}

/// Every kind `ok` and fresh, except the given ones.
fn all_ok_but(
    changes: &[(SignalKind, SignalValue, Timestamp, SignalSource)],
    patch_level: Option<PatchLevel>,
) -> SignalReport {
    let signals = all_ok()
        .into_iter()
        .map(|signal| {
            changes
                .iter()
                .find(|(kind, ..)| *kind == signal.kind)
                .map_or(signal, |(kind, value, observed_at, source)| Signal {
                    kind: *kind,
                    value: *value,
                    observed_at: *observed_at,
                    source: *source,
                })
        })
        .collect();
    SignalReport::new(signals, patch_level).unwrap()
}

fn missing(kind: SignalKind) -> Finding {
    Finding {
        kind: K::SignalMissing,
        severity: Sev::Critical,
        signal: Some(kind),
        critical: true,
        source: SignalSource::Engine,
        reported_source: None,
        required_source: None,
    }
}
