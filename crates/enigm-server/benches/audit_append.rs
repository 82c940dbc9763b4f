//! Durable audit appends through the group-commit sink, and the sequencer that folds them into
//! the Merkle tree, on a SQLite file (WAL, `synchronous = FULL`, as `Store::connect` sets).
//!
//! Run: `cargo bench -p enigm-server --bench audit_append`. Set `ENIGM_BENCH_POSTGRES_URL` to a
//! fresh PostgreSQL database URL to measure the same on PostgreSQL too.
//!
//! - `group commit`: N producer tasks on a two-worker Tokio runtime each record one event per
//!   call (the way the request guard does), 20,000 events per iteration in all. With one
//!   producer every event is a commit of its own: the baseline group commit is measured
//!   against. Events are built before the clock starts. Target: 20,000 events/s.
//! - `sequencer`: `AuditLog::sync` folding 100,000 committed leaves into the tree and signing a
//!   checkpoint, and one `Store::integrate_audit` step of 20,000 leaves (the sequencer's step).
//!   The leaves are appended before the clock starts.
//!
//! Each measured function starts from a fresh database, which grows by what the iterations
//! append. Per-event latency is reported by `examples/audit_load.rs`, not here.

#![allow(
    clippy::expect_used,
    reason = "a benchmark whose set-up fails must stop loudly; it handles no untrusted input"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use enigm_server::audit::{AuditLog, AuditSink as _, GroupCommitSink};
use enigm_server::state::SystemClock;
use enigm_store::Store;
use enigm_test_support::{Backend, TestDatabase};
use enigm_types::{
    Actor, AdminId, AuditAction, AuditEvent, AuditTarget, Clock as _, Outcome, Permission,
};

/// Events recorded per iteration of a concurrent run.
const EVENTS_PER_ITERATION: u64 = 20_000;
/// Events per iteration of the single-producer baseline: each is a durable commit of its own.
const BASELINE_EVENTS: u64 = 1_000;
/// Leaves each sequencer iteration folds in.
const SYNC_LEAVES: u64 = 100_000;
/// Leaves one `integrate_audit` step folds in (the server's `LEAVES_PER_INTEGRATION`).
const STEP_LEAVES: u32 = 20_000;
/// Leaves per transaction when preparing the sequencer's input.
const PREPARE_BATCH: usize = 4_096;

/// What the request guard writes most: an allowed authorization decision.
fn event(admin: AdminId) -> AuditEvent {
    AuditEvent::new(
        SystemClock.now(),
        Actor::Admin(admin),
        AuditAction::Authorize,
        AuditTarget::Route {
            permission: Permission::AuditRead,
        },
        Outcome::Success,
    )
}

fn events(count: u64) -> Vec<AuditEvent> {
    let admin = AdminId::random();
    (0..count).map(|_| event(admin)).collect()
}

/// Records `per_producer` events, one per call, from each producer task; returns the time from
/// the first call to the last answer.
async fn run_producers(sink: &GroupCommitSink, per_producer: Vec<Vec<AuditEvent>>) -> Duration {
    let started = Instant::now();
    let tasks: Vec<_> = per_producer
        .into_iter()
        .map(|events| {
            let sink = sink.clone();
            tokio::spawn(async move {
                for event in &events {
                    sink.record(std::slice::from_ref(event))
                        .await
                        .expect("recorded");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("producer");
    }
    started.elapsed()
}

fn bench_group_commit(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    backend: &str,
    url: impl Fn() -> (String, Option<TestDatabase>),
) {
    let mut group = c.benchmark_group(format!("group commit/{backend}"));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for producers in [1_u64, 64, 256, 1024] {
        let total = if producers == 1 {
            BASELINE_EVENTS
        } else {
            EVENTS_PER_ITERATION
        };
        let (url, _database) = url();
        let (store, sink) = runtime.block_on(async {
            let store = Store::connect(&url).await.expect("store");
            let sink = GroupCommitSink::spawn(store.clone());
            (store, sink)
        });
        group.throughput(Throughput::Elements(total));
        group.bench_function(
            format!("{producers} producers x 1 event per call, {total} events"),
            |b| {
                b.iter_custom(|iterations| {
                    let mut elapsed = Duration::ZERO;
                    for _ in 0..iterations {
                        let per_producer = (0..producers).map(|_| events(total / producers));
                        elapsed += runtime.block_on(run_producers(&sink, per_producer.collect()));
                    }
                    elapsed
                });
            },
        );
        drop(sink);
        runtime.block_on(store.close());
    }
    group.finish();
}

/// Appends `count` events in transactions of `PREPARE_BATCH`, leaving them for the sequencer.
async fn commit_leaves(store: &Store, count: u64) {
    let events = events(count);
    for chunk in events.chunks(PREPARE_BATCH) {
        store.append_audit(chunk).await.expect("append");
    }
}

fn bench_sequencer(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    backend: &str,
    url: impl Fn() -> (String, Option<TestDatabase>),
) {
    let mut group = c.benchmark_group(format!("sequencer/{backend}"));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));

    let (url, _database) = url();
    let store = runtime.block_on(Store::connect(&url)).expect("store");
    let log = AuditLog::new(
        store.clone(),
        Arc::new(SystemClock),
        enigm_auditlog::NoteSigner::new(
            "enigm-command/audit/bench",
            enigm_crypto::Ed25519SigningKey::generate(&mut rand::rngs::OsRng),
        )
        .expect("log key name"),
        Duration::from_secs(30 * 24 * 3600),
    );
    group.throughput(Throughput::Elements(SYNC_LEAVES));
    group.bench_function(
        format!("AuditLog::sync of {SYNC_LEAVES} leaves + checkpoint"),
        |b| {
            b.iter_custom(|iterations| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iterations {
                    runtime.block_on(commit_leaves(&store, SYNC_LEAVES));
                    let started = Instant::now();
                    let checkpoint = runtime.block_on(log.sync()).expect("sync");
                    elapsed += started.elapsed();
                    assert!(checkpoint.is_some());
                }
                elapsed
            });
        },
    );
    group.throughput(Throughput::Elements(u64::from(STEP_LEAVES)));
    group.bench_function(
        format!("Store::integrate_audit step of {STEP_LEAVES} leaves"),
        |b| {
            b.iter_custom(|iterations| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iterations {
                    runtime.block_on(commit_leaves(&store, u64::from(STEP_LEAVES)));
                    let started = Instant::now();
                    let step = runtime
                        .block_on(store.integrate_audit(STEP_LEAVES))
                        .expect("integrate")
                        .expect("leaves to fold");
                    elapsed += started.elapsed();
                    assert_eq!(step.new_size - step.old_size, u64::from(STEP_LEAVES));
                }
                elapsed
            });
        },
    );
    group.finish();
    let size = runtime.block_on(store.audit_tree_size()).expect("size");
    println!("sequencer/{backend}: the tree ended at {size} leaves");
    runtime.block_on(store.close());
}

fn audit_append(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let sqlite = || {
        let database = runtime
            .block_on(TestDatabase::new(Backend::Sqlite))
            .expect("temporary SQLite database");
        (database.url().to_owned(), Some(database))
    };
    bench_group_commit(c, &runtime, "sqlite", sqlite);
    bench_sequencer(c, &runtime, "sqlite", sqlite);
    if let Ok(url) = std::env::var("ENIGM_BENCH_POSTGRES_URL") {
        // One database serves every measurement: each starts where the previous one left off.
        let postgres = || (url.clone(), None);
        bench_group_commit(c, &runtime, "postgres", postgres);
        bench_sequencer(c, &runtime, "postgres", postgres);
    }
}

criterion_group!(benches, audit_append);
criterion_main!(benches);
