//! Proof generation and verification on a 10,000,000-leaf log in memory, and batched append
//! throughput.
//!
//! Run: `cargo bench -p enigm-auditlog --bench proofs`. The tree is built once, in batches of
//! 65,536 leaves, before the measurements; how long that takes is printed. Targets: an inclusion
//! proof generated in under 1 ms and verified in under 50 µs at 10M leaves. Leaf hashes are
//! computed before the appends are timed: the append figures are the tree's own work.

#![expect(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a benchmark whose set-up fails must stop loudly; it handles no untrusted input"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use enigm_auditlog::{Hash, Log, MemoryStore, leaf_hash, verify_consistency, verify_inclusion};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TREE_SIZE: u64 = 10_000_000;
const BUILD_BATCH: u64 = 65_536;
const APPEND_BATCH: u64 = 1_000;
/// How many random indexes or size pairs each measurement cycles through.
const SAMPLES: usize = 4_096;

fn leaf(i: u64) -> Hash {
    leaf_hash(&i.to_be_bytes())
}

/// The 10M-leaf log, built in batches.
fn build_log() -> Log<MemoryStore> {
    let capacity = usize::try_from(TREE_SIZE).expect("fits in memory");
    let mut log = Log::new(MemoryStore::with_capacity(capacity));
    let started = Instant::now();
    let mut hashing = Duration::ZERO;
    let mut start = 0;
    while start < TREE_SIZE {
        let end = (start + BUILD_BATCH).min(TREE_SIZE);
        let hashed = Instant::now();
        let leaves: Vec<Hash> = (start..end).map(leaf).collect();
        hashing += hashed.elapsed();
        log.append_leaves(&leaves).expect("append");
        start = end;
    }
    let total = started.elapsed();
    println!(
        "built a {TREE_SIZE}-leaf tree in {:.2} s ({:.2} s hashing leaves, {:.2} s appending, \
         batches of {BUILD_BATCH})",
        total.as_secs_f64(),
        hashing.as_secs_f64(),
        (total - hashing).as_secs_f64()
    );
    log
}

fn benches(c: &mut Criterion) {
    let log = build_log();
    let root = log.root().expect("root");
    let mut rng = StdRng::seed_from_u64(9162);
    let indexes: Vec<u64> = (0..SAMPLES).map(|_| rng.gen_range(0..TREE_SIZE)).collect();

    let mut group = c.benchmark_group("tree of 10M leaves");
    group.sample_size(50);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));

    let mut next = indexes.iter().cycle();
    group.bench_function("inclusion proof generation", |b| {
        b.iter(|| {
            let index = *next.next().expect("cycle");
            black_box(log.inclusion_proof(index, TREE_SIZE).expect("proof"))
        });
    });

    let proofs: Vec<(u64, Hash, Vec<Hash>)> = indexes
        .iter()
        .map(|&index| {
            let proof = log.inclusion_proof(index, TREE_SIZE).expect("proof");
            (index, leaf(index), proof.path().to_vec())
        })
        .collect();
    let mut next = proofs.iter().cycle();
    group.bench_function("inclusion proof verification", |b| {
        b.iter(|| {
            let (index, leaf, path) = next.next().expect("cycle");
            black_box(verify_inclusion(leaf, *index, TREE_SIZE, path, &root).expect("verifies"))
        });
    });

    let pairs: Vec<(u64, u64, Hash, Hash)> = (0..SAMPLES)
        .map(|_| {
            let (a, b) = (rng.gen_range(1..=TREE_SIZE), rng.gen_range(1..=TREE_SIZE));
            let (old, new) = (a.min(b), a.max(b));
            (
                old,
                new,
                log.root_at(old).expect("root"),
                log.root_at(new).expect("root"),
            )
        })
        .collect();
    let mut next = pairs.iter().cycle();
    group.bench_function("consistency proof generation + verification", |b| {
        b.iter(|| {
            let (old, new, old_root, new_root) = next.next().expect("cycle");
            let proof = log.consistency_proof(*old, *new).expect("proof");
            black_box(
                verify_consistency(*old, *new, old_root, new_root, proof.path()).expect("verifies"),
            )
        });
    });

    group.bench_function("root at a random past size", |b| {
        let mut next = pairs.iter().cycle();
        b.iter(|| black_box(log.root_at(next.next().expect("cycle").0).expect("root")));
    });
    group.finish();
    drop(log);

    // Appends go to a log that starts at an unaligned size, so every batch combines old and new
    // nodes. The log is reset (outside the timed region) every RESET batches to bound memory.
    const BASE: u64 = 100_003;
    const RESET: u64 = 1_000;
    let mut base = Log::new(MemoryStore::new());
    let base_leaves: Vec<Hash> = (0..BASE).map(leaf).collect();
    base.append_leaves(&base_leaves).expect("append");
    let base = base.into_store();
    let batches: Vec<Vec<Hash>> = (0..RESET)
        .map(|batch| {
            let first = BASE + batch * APPEND_BATCH;
            (first..first + APPEND_BATCH).map(leaf).collect()
        })
        .collect();

    let mut group = c.benchmark_group("append");
    group.sample_size(30);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(APPEND_BATCH));
    group.bench_function("batch of 1,000 leaves", |b| {
        b.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            let mut done = 0;
            while done < iterations {
                let mut log = Log::new(base.clone());
                let count = (iterations - done).min(RESET);
                let started = Instant::now();
                for batch in &batches[..usize::try_from(count).expect("small")] {
                    black_box(log.append_leaves(batch).expect("append"));
                }
                elapsed += started.elapsed();
                done += count;
            }
            elapsed
        });
    });
    group.finish();
}

criterion_group!(proofs, benches);
criterion_main!(proofs);
