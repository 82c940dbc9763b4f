//! Properties of the Trust State Engine over arbitrary reports and valid policies: the state
//! matches an independent model of the rules, losing or weakening evidence never improves it,
//! Privacy Mode never moves it, and its JSON holds no number but timestamps.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::time::Duration;

use enigm_trust::{
    PatchLevel, Signal, SignalKind, SignalReport, SignalSource, SignalValue, TrustPolicy,
    TrustState, evaluate,
};
use enigm_types::Timestamp;
use proptest::prelude::*;
use serde_json::Value;

const NOW_MILLIS: i64 = 1_800_000_000_000;
const NOW: Timestamp = Timestamp::from_unix_millis(NOW_MILLIS);

const VALUES: [SignalValue; 5] = [
    SignalValue::Ok,
    SignalValue::Degraded,
    SignalValue::Failed,
    SignalValue::Unavailable,
    SignalValue::NotMeasurable,
];

#[derive(Debug, Clone)]
struct Case {
    report: SignalReport,
    policy: TrustPolicy,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_state_matches_the_model(case in cases()) {
        let evaluation = evaluate(&case.report, &case.policy, NOW);
        prop_assert_eq!(evaluation.state, model(&case.report, &case.policy));
        prop_assert_eq!(evaluation.evaluated_at, NOW);
        // Most severe first.
        for pair in evaluation.findings.windows(2) {
            prop_assert!(pair[0].severity >= pair[1].severity, "{:?}", evaluation.findings);
        }
        // A finding is critical exactly when the policy makes its signal critical.
        for finding in &evaluation.findings {
            match finding.signal {
                Some(kind) => prop_assert_eq!(finding.critical, case.policy.is_critical(kind)),
                None => prop_assert!(finding.critical),
            }
        }
        // Anything short of PROTECTED is explained by a critical finding.
        if evaluation.state != TrustState::Protected {
            prop_assert!(evaluation.findings.iter().any(|finding| finding.critical));
        } else {
            prop_assert!(evaluation.findings.iter().all(|finding| !finding.critical));
        }
    }

    /// (a)
    #[test]
    fn removing_a_critical_signal_never_improves_the_state(case in cases()) {
        let before = evaluate(&case.report, &case.policy, NOW).state;
        for kind in case.policy.critical().iter() {
            let without = replace(&case.report, kind, |_| None);
            let after = evaluate(&without, &case.policy, NOW).state;
            prop_assert!(after >= before, "{kind}: {before:?} -> {after:?}");
            prop_assert_eq!(after, TrustState::Inactive);
        }
    }

    /// (b)
    #[test]
    fn a_stale_or_future_critical_signal_never_improves_the_state(case in cases()) {
        let before = evaluate(&case.report, &case.policy, NOW).state;
        let one = Duration::from_millis(1);
        let stale = NOW.saturating_sub(case.policy.max_signal_age()).saturating_sub(one);
        let future = NOW.saturating_add(case.policy.max_clock_skew()).saturating_add(one);
        for kind in case.policy.critical().iter() {
            for at in [stale, future] {
                let moved = replace(&case.report, kind, |signal| {
                    signal.map(|signal| Signal { observed_at: at, ..signal })
                });
                let after = evaluate(&moved, &case.policy, NOW).state;
                prop_assert!(after >= before, "{kind} at {at:?}: {before:?} -> {after:?}");
            }
        }
    }

    /// (c)
    #[test]
    fn never_protected_while_a_critical_signal_is_not_in_order(case in cases()) {
        let state = evaluate(&case.report, &case.policy, NOW).state;
        let skew = millis(case.policy.max_clock_skew());
        let max_age = millis(case.policy.max_signal_age());
        let out_of_order = case.policy.critical().iter().any(|kind| {
            case.report.signal(kind).is_none_or(|signal| {
                let at = signal.observed_at.unix_millis();
                NOW_MILLIS - at > max_age
                    || at - NOW_MILLIS > skew
                    || matches!(signal.value, SignalValue::Unavailable | SignalValue::NotMeasurable)
            })
        });
        if out_of_order {
            prop_assert_ne!(state, TrustState::Protected);
            prop_assert_eq!(state, TrustState::Inactive);
        }
    }

    /// (d)
    #[test]
    fn privacy_mode_never_changes_the_state(
        case in cases(),
        privacy in proptest::option::of((value(), observed_at(), source())),
    ) {
        let before = evaluate(&case.report, &case.policy, NOW).state;
        let changed = replace(&case.report, SignalKind::PrivacyMode, |_| {
            privacy.map(|(value, observed_at, source)| Signal {
                kind: SignalKind::PrivacyMode,
                value,
                observed_at,
                source,
            })
        });
        prop_assert_eq!(evaluate(&changed, &case.policy, NOW).state, before);
    }

    /// (e)
    #[test]
    fn worsening_a_signal_never_improves_the_state(case in cases()) {
        let before = evaluate(&case.report, &case.policy, NOW).state;
        for signal in case.report.signals() {
            for &worse in worse_than(signal.value) {
                let changed = replace(&case.report, signal.kind, |signal| {
                    signal.map(|signal| Signal { value: worse, ..signal })
                });
                let after = evaluate(&changed, &case.policy, NOW).state;
                prop_assert!(
                    after >= before,
                    "{} {:?} -> {:?}: {:?} -> {:?}", signal.kind, signal.value, worse, before, after
                );
            }
        }
    }

    #[test]
    fn a_lower_or_missing_patch_level_never_improves_the_state(
        case in cases(),
        lower in proptest::option::of(patch_level()),
    ) {
        let before = evaluate(&case.report, &case.policy, NOW).state;
        let worse = match (case.report.patch_level(), lower) {
            (Some(level), Some(lower)) => Some(level.min(lower)),
            _ => None,
        };
        let changed = SignalReport::new(case.report.signals().to_vec(), worse).unwrap();
        prop_assert!(evaluate(&changed, &case.policy, NOW).state >= before);
    }

    /// (f)
    #[test]
    fn evaluation_json_has_no_number_but_timestamps(case in cases()) {
        let evaluation = evaluate(&case.report, &case.policy, NOW);
        let json = serde_json::to_value(&evaluation).unwrap();
        check_no_scores(&json, None, "$");
        prop_assert_eq!(&json["evaluated_at"], &Value::from(NOW_MILLIS));
        prop_assert_eq!(json["state"].as_str(), Some(evaluation.state.as_str()));
        // The report a device sends is held to the same rule.
        check_no_scores(&serde_json::to_value(&case.report).unwrap(), None, "$");
    }

    #[test]
    fn reports_and_policies_survive_json(case in cases()) {
        let report = serde_json::to_string(&case.report).unwrap();
        prop_assert_eq!(serde_json::from_str::<SignalReport>(&report).unwrap(), case.report);
        let policy = serde_json::to_string(&case.policy).unwrap();
        let back = serde_json::from_str::<TrustPolicy>(&policy).unwrap();
        prop_assert_eq!(&back, &case.policy);
    }
}

/// The rules of `engine.rs`, restated over milliseconds.
fn model(report: &SignalReport, policy: &TrustPolicy) -> TrustState {
    let skew = millis(policy.max_clock_skew());
    let max_age = millis(policy.max_signal_age());
    let mut inactive = false;
    let mut review = false;
    for kind in policy.critical().iter() {
        let Some(signal) = report.signals().iter().find(|signal| signal.kind == kind) else {
            inactive = true;
            continue;
        };
        let at = signal.observed_at.unix_millis();
        if at - NOW_MILLIS > skew || NOW_MILLIS - at > max_age {
            inactive = true;
            continue;
        }
        match signal.value {
            SignalValue::Ok => {}
            SignalValue::Degraded | SignalValue::Failed => review = true,
            SignalValue::Unavailable | SignalValue::NotMeasurable => inactive = true,
        }
    }
    if let Some(minimum) = policy.min_patch_level() {
        match report.patch_level() {
            None => inactive = true,
            Some(level) if level < minimum => review = true,
            Some(_) => {}
        }
    }
    if inactive {
        TrustState::Inactive
    } else if review {
        TrustState::ReviewRequired
    } else {
        TrustState::Protected
    }
}

/// The values strictly worse than `value` for the protection it reports.
fn worse_than(value: SignalValue) -> &'static [SignalValue] {
    use SignalValue as V;
    match value {
        V::Ok => &[V::Degraded, V::Failed, V::Unavailable, V::NotMeasurable],
        V::Degraded => &[V::Failed, V::Unavailable, V::NotMeasurable],
        V::Failed => &[V::Unavailable, V::NotMeasurable],
        V::Unavailable => &[V::NotMeasurable],
        V::NotMeasurable => &[V::Unavailable],
    }
}

/// Fails on a key that names a score and on a number anywhere but under a timestamp key.
fn check_no_scores(value: &Value, key: Option<&str>, path: &str) {
    const FORBIDDEN: [&str; 5] = ["score", "rating", "percent", "confidence", "risk_level"];
    match value {
        Value::Number(_) => assert!(
            matches!(key, Some("evaluated_at" | "observed_at")),
            "number at {path}"
        ),
        Value::String(text) => assert!(!text.contains('%'), "percentage at {path}: {text}"),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_no_scores(item, key, &format!("{path}[{i}]"));
            }
        }
        Value::Object(fields) => {
            for (name, field) in fields {
                let lower = name.to_ascii_lowercase();
                assert!(
                    FORBIDDEN.iter().all(|word| !lower.contains(word)),
                    "key `{name}` at {path}"
                );
                check_no_scores(field, Some(name), &format!("{path}.{name}"));
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

/// `report` with the signal of `kind` replaced (or added, or removed) by `change`.
fn replace(
    report: &SignalReport,
    kind: SignalKind,
    change: impl FnOnce(Option<Signal>) -> Option<Signal>,
) -> SignalReport {
    let current = report.signal(kind).copied();
    let mut signals: Vec<Signal> = report
        .signals()
        .iter()
        .copied()
        .filter(|signal| signal.kind != kind)
        .collect();
    signals.extend(change(current));
    SignalReport::new(signals, report.patch_level()).unwrap()
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap()
}

fn cases() -> impl Strategy<Value = Case> {
    (report(), policy()).prop_map(|(report, policy)| Case { report, policy })
}

fn value() -> impl Strategy<Value = SignalValue> {
    prop_oneof![
        12 => Just(SignalValue::Ok),
        1 => prop::sample::select(VALUES.to_vec()),
        1 => Just(SignalValue::Degraded),
        1 => Just(SignalValue::Failed),
    ]
}

/// Mostly within the last two minutes; sometimes anywhere from about an hour ago to a quarter
/// of an hour ahead, which crosses every policy's age and skew limits.
fn observed_at() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        9 => -120_000_i64..=0,
        1 => -4_000_000_i64..=900_000,
    ]
    .prop_map(|offset| Timestamp::from_unix_millis(NOW_MILLIS + offset))
}

fn source() -> impl Strategy<Value = SignalSource> {
    prop::sample::select(vec![SignalSource::Measured, SignalSource::Declared])
}

fn patch_level() -> impl Strategy<Value = PatchLevel> {
    (2024_u16..=2027, 1_u8..=12, 1_u8..=28).prop_map(|(y, m, d)| PatchLevel::new(y, m, d).unwrap())
}

fn report() -> impl Strategy<Value = SignalReport> {
    let one = (prop::bool::weighted(0.95), value(), observed_at(), source());
    (
        prop::collection::vec(one, SignalKind::COUNT),
        proptest::option::weighted(0.9, patch_level()),
    )
        .prop_flat_map(|(picks, patch_level)| {
            let signals: Vec<Signal> = SignalKind::ALL
                .iter()
                .zip(picks)
                .filter(|(_, (present, ..))| *present)
                .map(|(kind, (_, value, observed_at, source))| Signal {
                    kind: *kind,
                    value,
                    observed_at,
                    source,
                })
                .collect();
            (Just(signals).prop_shuffle(), Just(patch_level))
        })
        .prop_map(|(signals, patch_level)| SignalReport::new(signals, patch_level).unwrap())
}

fn policy() -> impl Strategy<Value = TrustPolicy> {
    let candidates: Vec<SignalKind> = SignalKind::ALL
        .iter()
        .copied()
        .filter(|kind| !kind.is_informational())
        .collect();
    (
        prop::sample::subsequence(candidates, 1..=6),
        1_u64..=3600,
        0_u64..=600,
        proptest::option::of(patch_level()),
        any::<bool>(),
    )
        .prop_map(|(critical, age, skew, min_patch_level, managed)| {
            TrustPolicy::new(
                critical.into_iter().collect(),
                Duration::from_secs(age),
                min_patch_level,
                managed,
            )
            .unwrap()
            .with_clock_skew(Duration::from_secs(skew))
        })
}
