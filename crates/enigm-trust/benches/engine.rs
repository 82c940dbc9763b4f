//! Throughput of the Trust State Engine on a full 30-signal report (every `SignalKind`), under
//! the baseline policy and under a policy that makes every signal critical, with all signals
//! `ok` and with a few degraded; with provenance (attested signals merged in, a policy with minimum
//! sources, and a contradiction); also the production gates (bare and with their explanations) and the eligibility decision.
//!
//! Each iteration is one evaluation (`Throughput::Elements(1)`), on one thread, so criterion's
//! `elem/s` is evaluations per second per core. The target is at least 1,000,000 evaluations
//! per second per core for a 30-signal report.
//!
//! Run: `cargo bench -p enigm-trust --bench engine` (`-- --quick` for a short run).

#![allow(
    clippy::expect_used,
    reason = "a benchmark whose set-up fails must stop loudly; it handles no untrusted input"
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use enigm_trust::{
    AttestationOutcome, AttestedSignals, DecisionActor, DecisionInput, DecisionPolicy, DeviceState,
    Evidence, IntegrityState, PatchLevel, ProtectedAction, ResourceCategory, Signal, SignalKind,
    SignalReport, SignalSource, SignalValue, TrustPolicy, TrustState, decide, evaluate,
    evaluate_attested, evaluate_gates, explain_gates,
};
use enigm_types::Timestamp;

const NOW: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

/// Every kind, observed a minute ago; the `degraded` ones are `degraded`.
fn report(degraded: &[SignalKind]) -> SignalReport {
    let signals = SignalKind::ALL
        .iter()
        .map(|kind| Signal {
            kind: *kind,
            value: if degraded.contains(kind) {
                SignalValue::Degraded
            } else {
                SignalValue::Ok
            },
            observed_at: NOW.saturating_sub(Duration::from_secs(60)),
            source: SignalSource::Measured,
        })
        .collect();
    SignalReport::new(signals, PatchLevel::new(2026, 3, 5).ok()).expect("one signal per kind")
}

fn all_critical() -> TrustPolicy {
    let critical = SignalKind::ALL
        .iter()
        .copied()
        .filter(|kind| !kind.is_informational())
        .collect();
    TrustPolicy::new(
        critical,
        TrustPolicy::BASELINE_SIGNAL_AGE,
        PatchLevel::new(2026, 1, 1).ok(),
        true,
    )
    .expect("a valid policy")
}

fn engine(c: &mut Criterion) {
    // A critical signal of both policies, and two that only the all-critical policy names.
    let few = [
        SignalKind::Firewall,
        SignalKind::Vpn,
        SignalKind::ScreenLock,
    ];
    let reports = [("all-ok", report(&[])), ("3-degraded", report(&few))];
    let policies = [
        ("baseline", TrustPolicy::baseline()),
        ("all-critical", all_critical()),
    ];
    assert_eq!(reports[0].1.signals().len(), 30);

    let mut group = c.benchmark_group("evaluate");
    group.throughput(Throughput::Elements(1));
    for (policy_name, policy) in &policies {
        for (report_name, report) in &reports {
            let id = BenchmarkId::new(*policy_name, *report_name);
            group.bench_with_input(id, &(report, policy), |b, (report, policy)| {
                b.iter(|| evaluate(black_box(report), black_box(policy), black_box(NOW)));
            });
        }
    }
    group.finish();

    // Provenance: the attested signals of an Android attestation (boot, lock, integrity,
    // keystore, patch month) merged into the report, under an all-critical policy that
    // requires attested boot signals and measured disk encryption; once agreeing with the
    // report, once contradicting it (an unlocked bootloader).
    let agreeing = [
        (SignalKind::VerifiedBoot, SignalValue::Ok),
        (SignalKind::SecureBoot, SignalValue::Ok),
        (SignalKind::BootloaderLocked, SignalValue::Ok),
        (SignalKind::DeviceIntegrity, SignalValue::Ok),
        (SignalKind::HardwareKeystore, SignalValue::Ok),
    ];
    let unlocked = [
        (SignalKind::VerifiedBoot, SignalValue::Ok),
        (SignalKind::SecureBoot, SignalValue::Ok),
        (SignalKind::BootloaderLocked, SignalValue::Failed),
        (SignalKind::DeviceIntegrity, SignalValue::Failed),
        (SignalKind::HardwareKeystore, SignalValue::Ok),
    ];
    let attested = |values: &[(SignalKind, SignalValue)]| {
        AttestedSignals::from_evidence(
            Some(Evidence {
                values,
                os_patch_month: Some(202_603),
                attested_at: NOW.saturating_sub(Duration::from_secs(1800)),
            }),
            None,
        )
    };
    let strict = all_critical()
        .with_min_sources(
            SignalSource::Declared,
            [
                (SignalKind::SecureBoot, SignalSource::Attested),
                (SignalKind::VerifiedBoot, SignalSource::Attested),
                (SignalKind::BootloaderLocked, SignalSource::Attested),
                (SignalKind::DiskEncryption, SignalSource::Measured),
            ]
            .into_iter()
            .collect(),
        )
        .expect("valid minimum sources");
    let mut group = c.benchmark_group("evaluate_attested");
    group.throughput(Throughput::Elements(1));
    let all_ok = &reports[0].1;
    for (name, attested) in [
        ("agreeing", attested(&agreeing)),
        ("contradicting", attested(&unlocked)),
    ] {
        group.bench_with_input(name, &attested, |b, attested| {
            b.iter(|| {
                evaluate_attested(
                    black_box(all_ok),
                    black_box(attested),
                    black_box(&strict),
                    black_box(NOW),
                )
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("evaluate_gates");
    group.throughput(Throughput::Elements(1));
    for (report_name, report) in &reports {
        let policy = all_critical();
        group.bench_with_input(*report_name, report, |b, report| {
            b.iter(|| evaluate_gates(black_box(report), black_box(&policy), black_box(NOW)));
        });
    }
    group.finish();

    // The gates with why, as Command stores them at each check-in: one small allocation per
    // gate for its explanation.
    let mut group = c.benchmark_group("explain_gates");
    group.throughput(Throughput::Elements(1));
    for (report_name, report) in &reports {
        let policy = all_critical();
        group.bench_with_input(*report_name, report, |b, report| {
            b.iter(|| explain_gates(black_box(report), black_box(&policy), black_box(NOW)));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("decide");
    group.throughput(Throughput::Elements(1));
    for action in ProtectedAction::ALL {
        let input = DecisionInput {
            actor: Some(DecisionActor::Operator),
            action: action.into(),
            resource: Some(ResourceCategory::default_for(action)),
            device_state: Some(if action == ProtectedAction::Enroll {
                DeviceState::PendingEnrollment
            } else {
                DeviceState::Trusted
            }),
            trust_state: Some(TrustState::Protected),
            evaluated_at: Some(NOW.saturating_sub(Duration::from_secs(30))),
            attestation: Some(AttestationOutcome::Affirming),
            session_valid: Some(true),
            setup_complete: Some(true),
            policy: Some(DecisionPolicy {
                max_posture_age: Duration::from_secs(300),
                attestation_required: false,
            }),
            integrity: Some(IntegrityState::Consistent),
            now: NOW,
        };
        group.bench_with_input(format!("{action:?}"), &input, |b, input| {
            b.iter(|| decide(black_box(input)));
        });
    }
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
