//! The director's update checks through the whole router on a SQLite file (WAL,
//! `synchronous = FULL`): RFC 9421 signature and digest check, the nonce recorded, the device's
//! record and Command's OS-image eligibility decision (attestation included), the group's pin,
//! the release's rollout (stage, plan, waves), the decision and its audit event, and the answer
//! signed with the director key. Target (issue 14): 5,000 update checks/s on 2 cores;
//! `enigm simulate --ota` measures the same over HTTP with latency percentiles.
//!
//! Run: `cargo bench -p enigm-server --bench director`.
//!
//! 1,000 devices enroll and attest before the clock starts; one release is in its controlled
//! rollout with a 50 % wave open, so half the checks are offers and half "not in wave". Each
//! iteration, C devices (the concurrency) ask 8 times each, one request after the other like an
//! agent; requests are signed before the clock starts, so only the server's work is measured.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a benchmark whose set-up fails must stop loudly; it handles no untrusted input"
)]

mod support;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use enigm_crypto::HashCost;
use enigm_server::state::AppState;
use enigm_store::{AttestationResultRecord, NewRelease};
use enigm_types::{AttestationFormat, AttestationVerdict, ReleaseId, ReleaseState};
use serde_json::json;

use support::{DEVICES, PIN, app_with_state, call_json, enroll_fleet, signed_round};

const CHECKS_PER_DEVICE: usize = 8;
const IMAGE: &[u8] = b"the benchmark's OS image";

async fn attest_fleet(state: &AppState) {
    let now = state.now();
    let handles = state.store().rollout_population().await.expect("devices");
    let mut tx = state.store().begin().await.expect("tx");
    for handle in &handles {
        tx.record_attestation(
            handle,
            &AttestationResultRecord {
                verdict: AttestationVerdict::Accepted,
                format: AttestationFormat::AndroidKey,
                claims: "{}".to_owned(),
                attested_at: now,
            },
            Some("{}"),
        )
        .await
        .expect("attestation");
    }
    tx.commit().await.expect("commit");
}

/// A published release whose rollout has a 50 % wave open.
async fn rolling_release(router: &Router, owner_token: &str, state: &AppState) {
    let now = state.now();
    let id = ReleaseId::random();
    let sha256 = hex::encode(enigm_crypto::sha256(IMAGE));
    let mut tx = state.store().begin().await.expect("tx");
    tx.insert_release(&NewRelease {
        id,
        target_name: "os/enigm-os.img".to_owned(),
        kind: "os-image".to_owned(),
        release_version: "2".to_owned(),
        rollback_index: 2,
        channel: "stable".to_owned(),
        models: "[\"enigm-sim\"]".to_owned(),
        length: IMAGE.len() as u64,
        sha256: sha256.clone(),
        expires_at: now.saturating_add(Duration::from_secs(30 * 24 * 3600)),
        created_by: state
            .store()
            .admin_by_username(&enigm_types::Username::parse("owner").expect("username"))
            .await
            .expect("owner")
            .expect("owner exists")
            .id,
        created_at: now,
    })
    .await
    .expect("release");
    for (from, to) in [
        (ReleaseState::Draft, ReleaseState::Approved),
        (ReleaseState::Approved, ReleaseState::Signed),
        (ReleaseState::Signed, ReleaseState::Published),
    ] {
        tx.advance_release(id, from, to, Some(1), now)
            .await
            .expect("advance");
    }
    tx.mark_artifact_stored(id).await.expect("stored");
    tx.commit().await.expect("commit");
    let path = state.ota().artifact_path(&sha256);
    std::fs::create_dir_all(path.parent().expect("targets dir")).expect("targets dir");
    std::fs::write(&path, IMAGE).expect("artifact");

    let admin = |request: Request<Body>| {
        let router = router.clone();
        async move { call_json(&router, request).await }
    };
    let release = id.to_string();
    let plan = Request::put(enigm_api::paths::fill(
        enigm_api::paths::RELEASE_ROLLOUT_PLAN,
        &[&release],
    ))
    .header("content-type", "application/json")
    .header("authorization", format!("Bearer {owner_token}"))
    .body(Body::from(
        json!({
            "model": "stable-rollout",
            "waves": [{"percent": 50, "soak_seconds": 0}, {"percent": 100, "soak_seconds": 0}],
            "justification": "benchmark",
        })
        .to_string(),
    ))
    .expect("request");
    admin(plan).await;
    for action in ["validate", "start"] {
        let step = Request::post(enigm_api::paths::fill(
            enigm_api::paths::RELEASE_ROLLOUT_ACTIONS,
            &[&release],
        ))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {owner_token}"))
        .header("x-enigm-pin", PIN)
        .body(Body::from(
            json!({"action": action, "justification": "benchmark"}).to_string(),
        ))
        .expect("request");
        let view = admin(step).await;
        assert!(view["stage"].is_string(), "{action} refused: {view}");
    }
}

fn director(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("enigm-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    let (router, owner_token, state) = runtime.block_on(app_with_state(&url, HashCost::Test));
    let keys = runtime.block_on(enroll_fleet(&router, &owner_token));
    runtime.block_on(attest_fleet(&state));
    runtime.block_on(rolling_release(&router, &owner_token, &state));

    let mut group = c.benchmark_group("director/sqlite");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(10));
    for concurrency in [1_usize, 64, DEVICES] {
        let devices = keys.get(..concurrency).expect("enough devices");
        group.throughput(Throughput::Elements(
            (concurrency * CHECKS_PER_DEVICE) as u64,
        ));
        group.bench_function(
            format!("{concurrency} devices x {CHECKS_PER_DEVICE} signed update checks"),
            |b| {
                b.iter_custom(|iterations| {
                    (0..iterations)
                        .map(|_| runtime.block_on(signed_round(
                            &router,
                            devices,
                            enigm_api::paths::DEVICE_OTA_OFFER,
                            &json!({"model": "enigm-sim", "channel": "stable", "installed_rollback_index": 1}),
                            CHECKS_PER_DEVICE,
                        )))
                        .sum()
                });
            },
        );
    }
    group.finish();
    let _removed = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, director);
criterion_main!(benches);
