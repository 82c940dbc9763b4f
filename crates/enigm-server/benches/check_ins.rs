//! Signed check-ins through the whole router on a SQLite file (WAL, `synchronous = FULL`):
//! RFC 9421 signature and digest check, decoding, the Trust State Engine over a 30-signal
//! report, and the durable group commit of nonce, posture, bounded history and trust-change
//! audit. Target (issue #4): 5,000 check-ins/s on 2 cores; `enigm simulate` measures the same
//! over HTTP with latency percentiles.
//!
//! Run: `cargo bench -p enigm-server --bench check_ins`.
//!
//! 1,000 devices enroll before the clock starts. Each iteration, C of them (the concurrency)
//! check in 8 times each, one request after the other like an agent; requests are signed
//! before the clock starts, so only the server's work is measured.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a benchmark whose set-up fails must stop loudly; it handles no untrusted input"
)]

mod support;

use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use enigm_crypto::HashCost;
use serde_json::json;

use support::{DEVICES, app, enroll_fleet, report, signed_round};

const CHECK_INS_PER_DEVICE: usize = 8;

fn check_ins(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("enigm-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    let (router, owner_token) = runtime.block_on(app(&url, HashCost::Test));
    let keys = runtime.block_on(enroll_fleet(&router, &owner_token));

    let mut group = c.benchmark_group("check-ins/sqlite");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(10));
    for concurrency in [1_usize, 64, 256, DEVICES] {
        let devices = keys.get(..concurrency).expect("enough devices");
        group.throughput(Throughput::Elements(
            (concurrency * CHECK_INS_PER_DEVICE) as u64,
        ));
        group.bench_function(
            format!("{concurrency} devices x {CHECK_INS_PER_DEVICE} signed check-ins"),
            |b| {
                b.iter_custom(|iterations| {
                    (0..iterations)
                        .map(|_| {
                            runtime.block_on(signed_round(
                                &router,
                                devices,
                                enigm_api::paths::DEVICE_CHECK_INS,
                                &json!({"report": report()}),
                                CHECK_INS_PER_DEVICE,
                            ))
                        })
                        .sum()
                });
            },
        );
    }
    group.finish();
    let _removed = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, check_ins);
criterion_main!(benches);
