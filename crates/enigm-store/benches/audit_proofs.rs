//! Inclusion and consistency proofs read from a large audit log in SQLite, and their
//! verification. (`enigm-auditlog`'s `proofs` bench measures the same on a tree in memory.)
//!
//! Run: `cargo bench -p enigm-store --bench audit_proofs`. Targets: an inclusion proof for a
//! leaf of a 10,000,000-leaf log generated in under 1 ms and verified in under 50 µs.
//!
//! The log is built once through the store's own write path: `Store::append_audit` in
//! transactions of 65,536 events, each followed by `Store::integrate_audit` of those leaves.
//! It is kept in `target/enigm-bench/audit-proofs-<leaves>.db` and reused by later runs; a
//! build that was interrupted resumes where it stopped. `ENIGM_BENCH_AUDIT_LEAVES` sets the
//! size (default 10,000,000: 6.6 GB of disk and about 24 minutes to build on two
//! cores, most of it appending; 1,000,000 takes 660 MB and 2 minutes).
//!
//! The database file is read through the OS page cache: after the first samples the figures are
//! those of a warm server.

#![allow(
    clippy::expect_used,
    reason = "a benchmark whose set-up fails must stop loudly; it handles no untrusted input"
)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use enigm_auditlog::{ConsistencyProof, Hash, InclusionProof};
use enigm_store::Store;
use enigm_types::{
    Actor, AdminId, AuditAction, AuditEvent, AuditTarget, Outcome, Permission, Timestamp,
};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

const DEFAULT_LEAVES: u64 = 10_000_000;
/// Events per append transaction, and leaves per sequencer step, while building.
const BUILD_BATCH: u64 = 65_536;
/// How many random indexes or size pairs each measurement cycles through.
const SAMPLES: usize = 4_096;

fn leaves() -> u64 {
    std::env::var("ENIGM_BENCH_AUDIT_LEAVES").map_or(DEFAULT_LEAVES, |leaves| {
        leaves
            .replace('_', "")
            .parse()
            .expect("ENIGM_BENCH_AUDIT_LEAVES is a number of leaves")
    })
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// The store of a log of exactly `leaves` leaves, all in the tree: the cached one, or a new one.
async fn log_of(leaves: u64) -> Store {
    let dir = enigm_test_support::workspace_root().join("target/enigm-bench");
    std::fs::create_dir_all(&dir).expect("bench directory");
    let done = dir.join(format!("audit-proofs-{leaves}.db"));
    if done.exists() {
        let store = Store::connect(&sqlite_url(&done)).await.expect("store");
        if store.audit_tree_size().await.expect("size") == leaves {
            println!("using the cached log {}", done.display());
            return store;
        }
        println!("{} is not a complete log; rebuilding it", done.display());
        store.close().await;
        remove_database(&done);
    }
    let building = dir.join(format!("audit-proofs-{leaves}.building.db"));
    let store = Store::connect(&sqlite_url(&building)).await.expect("store");
    build(&store, leaves).await;
    store.close().await;
    std::fs::rename(&building, &done).expect("rename the built log");
    Store::connect(&sqlite_url(&done)).await.expect("store")
}

/// Appends and integrates leaves until the log holds `leaves`, from wherever it stands.
async fn build(store: &Store, leaves: u64) {
    let admin = AdminId::random();
    let mut appending = Duration::ZERO;
    let mut integrating = Duration::ZERO;
    let start = store.audit_leaf_count().await.expect("leaf count");
    assert!(start <= leaves, "the partial log is larger than asked for");
    println!("building a log of {leaves} leaves from {start} (batches of {BUILD_BATCH})");
    let mut size = start;
    let mut report = start;
    while size < leaves {
        let count = (leaves - size).min(BUILD_BATCH);
        let events: Vec<AuditEvent> = (size..size + count)
            .map(|leaf| {
                AuditEvent::new(
                    // One event a millisecond, from 2025-01-01.
                    Timestamp::from_unix_millis(
                        1_735_689_600_000 + i64::try_from(leaf).expect("i64"),
                    ),
                    Actor::Admin(admin),
                    AuditAction::Authorize,
                    AuditTarget::Route {
                        permission: Permission::AuditRead,
                    },
                    Outcome::Success,
                )
            })
            .collect();
        let started = Instant::now();
        store.append_audit(&events).await.expect("append");
        appending += started.elapsed();
        size += count;
        report = progress(report, size, appending, integrating);
        let started = Instant::now();
        integrate(store).await;
        integrating += started.elapsed();
    }
    // Leaves committed by an interrupted build but not yet in the tree.
    let started = Instant::now();
    integrate(store).await;
    integrating += started.elapsed();
    println!(
        "built {} leaves in {:.0} s: {:.0} s appending ({:.0} events/s), {:.0} s integrating \
         ({:.0} leaves/s)",
        leaves - start,
        (appending + integrating).as_secs_f64(),
        appending.as_secs_f64(),
        per_second(leaves - start, appending),
        integrating.as_secs_f64(),
        per_second(leaves - start, integrating),
    );
}

async fn integrate(store: &Store) {
    let step = u32::try_from(BUILD_BATCH).expect("u32");
    while store
        .integrate_audit(step)
        .await
        .expect("integrate")
        .is_some()
    {}
}

fn progress(report: u64, size: u64, appending: Duration, integrating: Duration) -> u64 {
    if size / 1_000_000 == report / 1_000_000 {
        return report;
    }
    println!(
        "  {size} leaves; {:.0} s appending, {:.0} s integrating so far",
        appending.as_secs_f64(),
        integrating.as_secs_f64()
    );
    size
}

/// A rate for a progress report: the conversion to `f64` is exact below 2^53 leaves.
fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn remove_database(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = PathBuf::from(path).into_os_string();
        file.push(suffix);
        let _missing = std::fs::remove_file(file);
    }
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let size = leaves();
    let store = runtime.block_on(log_of(size));
    let root = runtime.block_on(store.audit_root_at(size)).expect("root");
    let mut rng = StdRng::seed_from_u64(9162);
    let indexes: Vec<u64> = (0..SAMPLES).map(|_| rng.gen_range(0..size)).collect();
    let pairs: Vec<(u64, u64)> = (0..SAMPLES)
        .map(|_| {
            let (a, b) = (rng.gen_range(1..=size), rng.gen_range(1..=size));
            (a.min(b), a.max(b))
        })
        .collect();

    let mut group = c.benchmark_group(format!("sqlite log of {size} leaves"));
    group.sample_size(50);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(5));

    let mut next = indexes.iter().cycle();
    group.bench_function(
        "inclusion proof generation (Store::audit_inclusion_proof)",
        |b| {
            b.to_async(&runtime).iter(|| {
                let index = *next.next().expect("cycle");
                let store = &store;
                async move {
                    black_box(
                        store
                            .audit_inclusion_proof(index, size)
                            .await
                            .expect("proof"),
                    )
                }
            });
        },
    );

    let proofs: Vec<(Hash, InclusionProof)> = runtime.block_on(async {
        let mut proofs = Vec::with_capacity(SAMPLES);
        for &index in &indexes {
            proofs.push(
                store
                    .audit_inclusion_proof(index, size)
                    .await
                    .expect("proof"),
            );
        }
        proofs
    });
    let mut next = proofs.iter().cycle();
    group.bench_function("inclusion proof verification", |b| {
        b.iter(|| {
            let (leaf, proof) = next.next().expect("cycle");
            black_box(proof.verify(leaf, &root).expect("verifies"))
        });
    });

    let mut next = pairs.iter().cycle();
    group.bench_function(
        "consistency proof generation (Store::audit_consistency_proof)",
        |b| {
            b.to_async(&runtime).iter(|| {
                let (old, new) = *next.next().expect("cycle");
                let store = &store;
                async move {
                    black_box(
                        store
                            .audit_consistency_proof(old, new)
                            .await
                            .expect("proof"),
                    )
                }
            });
        },
    );

    let consistency: Vec<(Hash, Hash, ConsistencyProof)> = runtime.block_on(async {
        let mut proofs = Vec::with_capacity(SAMPLES);
        for &(old, new) in &pairs {
            proofs.push((
                store.audit_root_at(old).await.expect("root"),
                store.audit_root_at(new).await.expect("root"),
                store
                    .audit_consistency_proof(old, new)
                    .await
                    .expect("proof"),
            ));
        }
        proofs
    });
    let mut next = consistency.iter().cycle();
    group.bench_function("consistency proof verification", |b| {
        b.iter(|| {
            let (old_root, new_root, proof) = next.next().expect("cycle");
            black_box(proof.verify(old_root, new_root).expect("verifies"))
        });
    });

    let mut next = pairs.iter().cycle();
    group.bench_function("root at a random past size (Store::audit_root_at)", |b| {
        b.to_async(&runtime).iter(|| {
            let old = next.next().expect("cycle").0;
            let store = &store;
            async move { black_box(store.audit_root_at(old).await.expect("root")) }
        });
    });
    group.finish();
    runtime.block_on(store.close());
}

criterion_group!(audit_proofs, benches);
criterion_main!(audit_proofs);
