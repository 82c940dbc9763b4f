//! The ten production gates (enigm-docs §5.7, §20 item 26): each passes only on evidence that is
//! reported, fresh and `ok`, fails on anything else, and is judged on its own. Device
//! management is not applicable outside managed-device mode; update integrity also needs the
//! patch level the policy asks for. Each result carries why, and the explanation never disagrees
//! with the result.

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
    GateEvidence, GateResult, GateStatus, PatchLevel, PatchLevelCheck, ProductionGate, Signal,
    SignalCheck, SignalKind, SignalReport, SignalSource, SignalValue, TrustPolicy, evaluate_gates,
    explain_gates,
};
use enigm_types::Timestamp;
use proptest::prelude::*;

use GateResult::{Fail, NotApplicable, Pass};
use ProductionGate as G;
use SignalKind as S;

const NOW_MILLIS: i64 = 1_800_000_000_000;
const NOW: Timestamp = Timestamp::from_unix_millis(NOW_MILLIS);
const MAX_AGE: Duration = Duration::from_secs(600);
const SKEW: Duration = TrustPolicy::DEFAULT_CLOCK_SKEW;
const ONE: Duration = Duration::from_millis(1);

/// The evidence of each gate, pinned: changing it is a deliberate decision this test records.
#[rustfmt::skip]
const EVIDENCE: [(ProductionGate, &[SignalKind]); 10] = [
    (G::BuildIntegrity,        &[S::OsSignature]),
    (G::BootIntegrity,         &[S::SecureBoot, S::VerifiedBoot, S::BootloaderLocked, S::DeviceIntegrity]),
    (G::RuntimeSecurity,       &[S::SecurityService, S::KernelLockdown, S::MandatoryAccessControl, S::PolicyCompliance]),
    (G::PlatformConfiguration, &[S::DiskEncryption, S::ScreenLock, S::UsbRestricted, S::DebuggingDisabled]),
    (G::NetworkSecurity,       &[S::Firewall, S::EncryptedDns, S::NetworkPolicyCompliance]),
    (G::ApplicationExposure,   &[S::AppIntegrity, S::NoInstrumentation, S::UnknownSourcesBlocked]),
    (G::PrivacyControls,       &[S::PrivacyMode]),
    (G::DeviceManagement,      &[S::DeviceManagement]),
    (G::UpdateIntegrity,       &[S::OtaVerification, S::RollbackProtection]),
    (G::SecurityMonitoring,    &[S::TrustEngine, S::SignalCollector, S::ActiveDefense]),
];

/// Signals no gate rests on: they never move a gate.
const NO_GATE: [SignalKind; 4] = [S::HardwareKeystore, S::Tpm, S::Vpn, S::Proxy];

#[test]
fn the_ten_gates_and_their_evidence() {
    assert_eq!(EVIDENCE.map(|(gate, _)| gate), ProductionGate::ALL);
    let mut seen = HashSet::new();
    for (gate, evidence) in EVIDENCE {
        let mut got = gate.evidence().to_vec();
        let mut want = evidence.to_vec();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{gate:?}");
        for kind in evidence {
            // No signal is evidence for two gates: each gate is judged on its own.
            assert!(seen.insert(*kind), "{kind} in two gates");
        }
    }
    for kind in NO_GATE {
        assert!(seen.insert(kind), "{kind}");
    }
    assert_eq!(seen.len(), SignalKind::COUNT);
    let names: Vec<String> = ProductionGate::ALL
        .iter()
        .map(|gate| serde_json::to_string(gate).unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "\"build-integrity\"",
            "\"boot-integrity\"",
            "\"runtime-security\"",
            "\"platform-configuration\"",
            "\"network-security\"",
            "\"application-exposure\"",
            "\"privacy-controls\"",
            "\"device-management\"",
            "\"update-integrity\"",
            "\"security-monitoring\"",
        ]
    );
    for (result, name) in [
        (Pass, "pass"),
        (Fail, "fail"),
        (NotApplicable, "not-applicable"),
    ] {
        assert_eq!(
            serde_json::to_string(&result).unwrap(),
            format!("\"{name}\"")
        );
    }
}

#[test]
fn all_gates_pass_on_fresh_ok_evidence() {
    let managed = evaluate_gates(&report(&[], None), &policy(None, true), NOW);
    assert_eq!(managed, ProductionGate::ALL.map(|gate| (gate, Pass)));
    let unmanaged = evaluate_gates(&report(&[], None), &policy(None, false), NOW);
    assert_eq!(
        unmanaged,
        ProductionGate::ALL.map(|gate| {
            (
                gate,
                if gate == G::DeviceManagement {
                    NotApplicable
                } else {
                    Pass
                },
            )
        })
    );
}

#[test]
fn any_evidence_not_in_order_fails_its_gate_and_no_other() {
    let stale = NOW.saturating_sub(MAX_AGE).saturating_sub(ONE);
    let future = NOW.saturating_add(SKEW).saturating_add(ONE);
    let fresh = NOW;
    let mut problems: Vec<Option<(SignalValue, Timestamp)>> = vec![None];
    for value in [
        SignalValue::Degraded,
        SignalValue::Failed,
        SignalValue::Unavailable,
        SignalValue::NotMeasurable,
    ] {
        problems.push(Some((value, fresh)));
    }
    problems.push(Some((SignalValue::Ok, stale)));
    problems.push(Some((SignalValue::Ok, future)));

    for managed in [true, false] {
        let policy = policy(None, managed);
        for (gate, evidence) in EVIDENCE {
            for kind in evidence.iter().copied() {
                for problem in &problems {
                    let results = evaluate_gates(&report(&[(kind, *problem)], None), &policy, NOW);
                    for (other, result) in results {
                        let want = if other == G::DeviceManagement && !managed {
                            NotApplicable
                        } else if other == gate {
                            Fail
                        } else {
                            Pass
                        };
                        assert_eq!(
                            result, want,
                            "{gate:?} {kind} {problem:?} managed={managed}: {other:?}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn signals_outside_every_gate_move_no_gate() {
    let policy = policy(None, true);
    let changes: Vec<(SignalKind, Option<(SignalValue, Timestamp)>)> = NO_GATE
        .iter()
        .map(|kind| (*kind, Some((SignalValue::Failed, NOW))))
        .collect();
    let results = evaluate_gates(&report(&changes, None), &policy, NOW);
    assert_eq!(results, ProductionGate::ALL.map(|gate| (gate, Pass)));
    let removed: Vec<(SignalKind, Option<(SignalValue, Timestamp)>)> =
        NO_GATE.iter().map(|kind| (*kind, None)).collect();
    let results = evaluate_gates(&report(&removed, None), &policy, NOW);
    assert_eq!(results, ProductionGate::ALL.map(|gate| (gate, Pass)));
}

#[test]
fn evidence_at_the_age_and_skew_limits_passes() {
    let policy = policy(None, true);
    for at in [NOW.saturating_sub(MAX_AGE), NOW.saturating_add(SKEW)] {
        let changes: Vec<(SignalKind, Option<(SignalValue, Timestamp)>)> = SignalKind::ALL
            .iter()
            .map(|kind| (*kind, Some((SignalValue::Ok, at))))
            .collect();
        let results = evaluate_gates(&report(&changes, None), &policy, NOW);
        assert_eq!(
            results,
            ProductionGate::ALL.map(|gate| (gate, Pass)),
            "{at:?}"
        );
    }
}

#[test]
fn device_management_is_judged_only_in_managed_mode() {
    let device_management = |changes: &[(SignalKind, Option<(SignalValue, Timestamp)>)],
                             managed: bool| {
        let results = evaluate_gates(&report(changes, None), &policy(None, managed), NOW);
        results
            .into_iter()
            .find(|(gate, _)| *gate == G::DeviceManagement)
            .map(|(_, result)| result)
            .unwrap()
    };
    let missing = [(S::DeviceManagement, None)];
    let failed = [(S::DeviceManagement, Some((SignalValue::Failed, NOW)))];
    for changes in [&[][..], &missing[..], &failed[..]] {
        assert_eq!(
            device_management(changes, false),
            NotApplicable,
            "{changes:?}"
        );
    }
    assert_eq!(device_management(&[], true), Pass);
    assert_eq!(device_management(&missing, true), Fail);
    assert_eq!(device_management(&failed, true), Fail);
}

#[test]
fn update_integrity_needs_the_minimum_patch_level() {
    let minimum = PatchLevel::new(2026, 3, 5).unwrap();
    let cases = [
        (Some(minimum), None, Fail),
        (Some(minimum), Some((2026, 3, 4)), Fail),
        (Some(minimum), Some((2020, 12, 31)), Fail),
        (Some(minimum), Some((2026, 3, 5)), Pass),
        (Some(minimum), Some((2026, 11, 1)), Pass),
        (None, None, Pass),
        (None, Some((2001, 1, 1)), Pass),
    ];
    for (minimum, level, want) in cases {
        let level = level.map(|(y, m, d)| PatchLevel::new(y, m, d).unwrap());
        let results = evaluate_gates(&report(&[], level), &policy(minimum, true), NOW);
        for (gate, result) in results {
            let expected = if gate == G::UpdateIntegrity {
                want
            } else {
                Pass
            };
            assert_eq!(result, expected, "{gate:?} {minimum:?} {level:?}");
        }
    }
}

/// The explanation of one gate.
fn explained(report: &SignalReport, policy: &TrustPolicy, gate: ProductionGate) -> GateStatus {
    explain_gates(report, policy, NOW)
        .into_iter()
        .find(|status| status.gate == gate)
        .unwrap()
}

/// The entry for `kind` in a gate's explanation.
fn entry(status: &GateStatus, kind: SignalKind) -> GateEvidence {
    status
        .because
        .iter()
        .copied()
        .find(|entry| matches!(entry, GateEvidence::Signal { signal, .. } if *signal == kind))
        .unwrap()
}

fn signal_entry(
    kind: SignalKind,
    check: SignalCheck,
    value: Option<SignalValue>,
    source: Option<SignalSource>,
) -> GateEvidence {
    GateEvidence::Signal {
        signal: kind,
        check,
        value,
        source,
    }
}

#[test]
fn a_passing_gate_lists_each_signal_it_rests_on_with_its_source() {
    let report = with_sources(
        report(&[], None),
        &[(S::SecureBoot, SignalSource::Declared)],
    );
    let status = explained(&report, &policy(None, true), G::BootIntegrity);
    assert_eq!(status.result, Pass);
    assert_eq!(
        status.because,
        [
            signal_entry(
                S::SecureBoot,
                SignalCheck::Ok,
                Some(SignalValue::Ok),
                Some(SignalSource::Declared)
            ),
            signal_entry(
                S::VerifiedBoot,
                SignalCheck::Ok,
                Some(SignalValue::Ok),
                Some(SignalSource::Measured)
            ),
            signal_entry(
                S::BootloaderLocked,
                SignalCheck::Ok,
                Some(SignalValue::Ok),
                Some(SignalSource::Measured)
            ),
            signal_entry(
                S::DeviceIntegrity,
                SignalCheck::Ok,
                Some(SignalValue::Ok),
                Some(SignalSource::Measured)
            ),
        ]
    );
}

#[test]
fn a_missing_signal_is_named_without_a_value_or_source() {
    let report = report(&[(S::DiskEncryption, None)], None);
    let status = explained(&report, &policy(None, true), G::PlatformConfiguration);
    assert_eq!(status.result, Fail);
    assert_eq!(
        entry(&status, S::DiskEncryption),
        signal_entry(S::DiskEncryption, SignalCheck::Missing, None, None)
    );
    assert!(entry(&status, S::ScreenLock).is_ok());
}

#[test]
fn a_stale_signal_is_named_with_its_value_and_source() {
    let stale = NOW.saturating_sub(MAX_AGE).saturating_sub(ONE);
    let report = with_sources(
        report(&[(S::Firewall, Some((SignalValue::Ok, stale)))], None),
        &[(S::Firewall, SignalSource::Declared)],
    );
    let status = explained(&report, &policy(None, true), G::NetworkSecurity);
    assert_eq!(status.result, Fail);
    assert_eq!(
        entry(&status, S::Firewall),
        signal_entry(
            S::Firewall,
            SignalCheck::Stale,
            Some(SignalValue::Ok),
            Some(SignalSource::Declared)
        )
    );
}

#[test]
fn a_signal_from_the_future_is_named_before_its_value() {
    let future = NOW.saturating_add(SKEW).saturating_add(ONE);
    let report = report(
        &[(S::OsSignature, Some((SignalValue::Failed, future)))],
        None,
    );
    let status = explained(&report, &policy(None, true), G::BuildIntegrity);
    assert_eq!(status.result, Fail);
    assert_eq!(
        status.because,
        [signal_entry(
            S::OsSignature,
            SignalCheck::FromFuture,
            Some(SignalValue::Failed),
            Some(SignalSource::Measured)
        )]
    );
}

#[test]
fn a_signal_that_is_not_ok_is_named_with_its_value() {
    for value in [
        SignalValue::Degraded,
        SignalValue::Failed,
        SignalValue::Unavailable,
        SignalValue::NotMeasurable,
    ] {
        let report = report(&[(S::TrustEngine, Some((value, NOW)))], None);
        let status = explained(&report, &policy(None, true), G::SecurityMonitoring);
        assert_eq!(status.result, Fail, "{value}");
        assert_eq!(
            entry(&status, S::TrustEngine),
            signal_entry(
                S::TrustEngine,
                SignalCheck::NotOk,
                Some(value),
                Some(SignalSource::Measured)
            ),
            "{value}"
        );
    }
}

#[test]
fn update_integrity_names_its_patch_level_check() {
    let minimum = PatchLevel::new(2026, 3, 5).unwrap();
    let cases = [
        (Some(minimum), None, Some(PatchLevelCheck::Unknown), Fail),
        (
            Some(minimum),
            PatchLevel::new(2026, 3, 4).ok(),
            Some(PatchLevelCheck::BelowMinimum),
            Fail,
        ),
        (
            Some(minimum),
            Some(minimum),
            Some(PatchLevelCheck::Met),
            Pass,
        ),
        (None, None, None, Pass),
    ];
    for (minimum, level, check, result) in cases {
        let status = explained(
            &report(&[], level),
            &policy(minimum, true),
            G::UpdateIntegrity,
        );
        assert_eq!(status.result, result, "{minimum:?} {level:?}");
        let patch: Vec<GateEvidence> = status
            .because
            .iter()
            .copied()
            .filter(|entry| matches!(entry, GateEvidence::PatchLevel { .. }))
            .collect();
        assert_eq!(
            patch,
            check
                .map(|check| GateEvidence::PatchLevel { check })
                .into_iter()
                .collect::<Vec<_>>(),
            "{minimum:?} {level:?}"
        );
        // Its signals are listed as well, all ok here.
        assert_eq!(status.because.len(), 2 + patch.len());
    }
    // No other gate looks at the patch level.
    let statuses = explain_gates(&report(&[], None), &policy(Some(minimum), true), NOW);
    for status in statuses
        .iter()
        .filter(|status| status.gate != G::UpdateIntegrity)
    {
        assert!(
            !status
                .because
                .iter()
                .any(|entry| matches!(entry, GateEvidence::PatchLevel { .. })),
            "{:?}",
            status.gate
        );
    }
}

#[test]
fn device_management_outside_managed_mode_says_why_it_does_not_apply() {
    let failed = report(
        &[(S::DeviceManagement, Some((SignalValue::Failed, NOW)))],
        None,
    );
    let status = explained(&failed, &policy(None, false), G::DeviceManagement);
    assert_eq!(status.result, NotApplicable);
    assert_eq!(status.because, [GateEvidence::NotManaged]);
    let status = explained(&failed, &policy(None, true), G::DeviceManagement);
    assert_eq!(status.result, Fail);
    assert_eq!(
        status.because,
        [signal_entry(
            S::DeviceManagement,
            SignalCheck::NotOk,
            Some(SignalValue::Failed),
            Some(SignalSource::Measured)
        )]
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Each gate against its rule, for arbitrary reports.
    #[test]
    fn gates_match_their_rule(
        picks in prop::collection::vec(
            (
                prop::bool::weighted(0.95),
                prop_oneof![
                    8 => Just(SignalValue::Ok),
                    1 => Just(SignalValue::Degraded),
                    1 => Just(SignalValue::Failed),
                    1 => Just(SignalValue::Unavailable),
                    1 => Just(SignalValue::NotMeasurable),
                ],
                prop_oneof![9 => -600_000_i64..=0, 1 => -1_000_000_i64..=400_000],
            ),
            SignalKind::COUNT,
        ),
        managed in any::<bool>(),
        minimum in proptest::option::of((2025_u16..=2026, 1_u8..=12)),
        level in proptest::option::weighted(0.9, (2025_u16..=2026, 1_u8..=12)),
    ) {
        let minimum = minimum.map(|(y, m)| PatchLevel::new(y, m, 1).unwrap());
        let level = level.map(|(y, m)| PatchLevel::new(y, m, 1).unwrap());
        let changes: Vec<(SignalKind, Option<(SignalValue, Timestamp)>)> = SignalKind::ALL
            .iter()
            .zip(&picks)
            .map(|(kind, (present, value, offset))| {
                let at = Timestamp::from_unix_millis(NOW_MILLIS + offset);
                (*kind, present.then_some((*value, at)))
            })
            .collect();
        let report = report(&changes, level);
        let results = evaluate_gates(&report, &policy(minimum, managed), NOW);
        for (gate, evidence) in EVIDENCE {
            let in_order = evidence.iter().all(|kind| {
                let (present, value, offset) = picks[*kind as usize];
                present
                    && value == SignalValue::Ok
                    && -offset <= 600_000
                    && offset <= 300_000
            });
            let patch_ok = gate != G::UpdateIntegrity
                || minimum.is_none_or(|minimum| level.is_some_and(|level| level >= minimum));
            let want = if gate == G::DeviceManagement && !managed {
                NotApplicable
            } else if in_order && patch_ok {
                Pass
            } else {
                Fail
            };
            let got = results.iter().find(|(g, _)| *g == gate).map(|(_, result)| *result);
            prop_assert_eq!(got, Some(want), "{:?}", gate);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The explanation never disagrees with the result: a gate passes exactly when every entry
    /// is ok, it is not applicable exactly when it says the device is not managed, it lists
    /// every signal it needs with the source the report gives, and it agrees with
    /// `evaluate_gates`.
    #[test]
    fn a_gate_passes_iff_every_explanation_entry_is_ok(
        picks in prop::collection::vec(
            (
                prop::bool::weighted(0.95),
                prop_oneof![
                    8 => Just(SignalValue::Ok),
                    1 => Just(SignalValue::Degraded),
                    1 => Just(SignalValue::Failed),
                    1 => Just(SignalValue::Unavailable),
                    1 => Just(SignalValue::NotMeasurable),
                ],
                prop_oneof![9 => -600_000_i64..=0, 1 => -1_000_000_i64..=400_000],
                prop::sample::select(vec![SignalSource::Measured, SignalSource::Declared]),
            ),
            SignalKind::COUNT,
        ),
        managed in any::<bool>(),
        minimum in proptest::option::of((2025_u16..=2026, 1_u8..=12)),
        level in proptest::option::weighted(0.9, (2025_u16..=2026, 1_u8..=12)),
    ) {
        let minimum = minimum.map(|(y, m)| PatchLevel::new(y, m, 1).unwrap());
        let level = level.map(|(y, m)| PatchLevel::new(y, m, 1).unwrap());
        let signals: Vec<Signal> = SignalKind::ALL
            .iter()
            .zip(&picks)
            .filter(|(_, (present, ..))| *present)
            .map(|(kind, (_, value, offset, source))| Signal {
                kind: *kind,
                value: *value,
                observed_at: Timestamp::from_unix_millis(NOW_MILLIS + offset),
                source: *source,
            })
            .collect();
        let report = SignalReport::new(signals, level).unwrap();
        let policy = policy(minimum, managed);
        let results = evaluate_gates(&report, &policy, NOW);
        let explained = explain_gates(&report, &policy, NOW);
        for ((gate, result), status) in results.iter().zip(&explained) {
            prop_assert_eq!(*gate, status.gate);
            prop_assert_eq!(*result, status.result, "{:?}", gate);
            let all_ok = !status.because.is_empty()
                && status.because.iter().all(GateEvidence::is_ok);
            prop_assert_eq!(status.result == Pass, all_ok, "{:?}", status);
            prop_assert_eq!(
                status.result == NotApplicable,
                status.because == [GateEvidence::NotManaged],
                "{:?}",
                status
            );
            if status.result == NotApplicable {
                continue;
            }
            let listed: Vec<SignalKind> = status
                .because
                .iter()
                .filter_map(|entry| match entry {
                    GateEvidence::Signal { signal, value, source, .. } => {
                        let reported = report.signal(*signal);
                        assert_eq!(*value, reported.map(|signal| signal.value));
                        assert_eq!(*source, reported.map(|signal| signal.source));
                        Some(*signal)
                    }
                    _ => None,
                })
                .collect();
            prop_assert_eq!(listed, gate.evidence().to_vec());
        }
    }
}

/// The report with the given signals' sources replaced.
fn with_sources(report: SignalReport, sources: &[(SignalKind, SignalSource)]) -> SignalReport {
    let signals = report
        .signals()
        .iter()
        .map(|signal| Signal {
            source: sources
                .iter()
                .find(|(kind, _)| *kind == signal.kind)
                .map_or(signal.source, |(_, source)| *source),
            ..*signal
        })
        .collect();
    SignalReport::new(signals, report.patch_level()).unwrap()
}

fn policy(min_patch_level: Option<PatchLevel>, managed: bool) -> TrustPolicy {
    let critical = [S::DeviceIntegrity].into_iter().collect();
    TrustPolicy::new(critical, MAX_AGE, min_patch_level, managed).unwrap()
}

/// Every kind `ok` and observed now, except the changes: `None` removes the signal.
fn report(
    changes: &[(SignalKind, Option<(SignalValue, Timestamp)>)],
    patch_level: Option<PatchLevel>,
) -> SignalReport {
    let signals = SignalKind::ALL
        .iter()
        .filter_map(|kind| {
            let change = changes.iter().find(|(changed, _)| changed == kind);
            let (value, observed_at) = match change {
                Some((_, change)) => (*change)?,
                None => (SignalValue::Ok, NOW),
            };
            Some(Signal {
                kind: *kind,
                value,
                observed_at,
                source: SignalSource::Measured,
            })
        })
        .collect();
    SignalReport::new(signals, patch_level).unwrap()
}
