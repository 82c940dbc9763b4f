//! Android Key Attestation chain verification on a typical RKP chain (caiman/sdk36/SB_EC_RKP:
//! Pixel 9 Pro StrongBox, leaf ← RKP intermediates ← Google's RSA root), against a status list of
//! 2,000 serials: cold (a new verifier, every link verified), warm (the links above the leaf
//! cached, only the leaf's signature verified) and two threads sharing one warm verifier.
//!
//! Run: `cargo bench -p enigm-attest --bench android_chain`. Target: at least 10,000
//! verifications per second on 2 cores with the warm cache. The chain comes from
//! `../shared/vectors/`; without that folder the benchmark says so and exits with an error.

#![expect(
    clippy::expect_used,
    reason = "a benchmark whose set-up fails must stop loudly; it handles no untrusted input"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use enigm_attest::android::chain::{ChainVerifier, TrustAnchors, parse_pem_chain};
use enigm_attest::android::revocation::{RevocationList, RevocationStatus};
use enigm_types::Timestamp;

/// 2025-09-28T12:00:00Z, inside the chain's validity window (2025-09-25 .. 2025-10-03).
const AT: Timestamp = Timestamp::from_unix_millis(1_759_060_800_000);
const CHAIN: &str = "android-key-attestation/google-keyattestation/caiman/sdk36/SB_EC_RKP.pem";
const LIST_ENTRIES: u32 = 2_000;
const THREADS: u64 = 2;

fn load_chain() -> Vec<Vec<u8>> {
    let dir = enigm_test_support::shared_vectors_dir();
    let path = dir.join(CHAIN);
    if !path.is_file() {
        eprintln!(
            "SHARED TEST VECTORS MISSING: `{}` does not exist. This benchmark verifies a real \
             Android attestation chain kept next to the repository (../shared/vectors, never \
             copied into it); check the vectors out there and run it again",
            path.display()
        );
        std::process::exit(1);
    }
    let text = std::fs::read_to_string(&path).expect("read the chain");
    parse_pem_chain(&text).expect("the vector chain is PEM")
}

/// A status list the size of a small real one, fetched at `AT`, naming none of the chain.
fn status_list() -> RevocationList {
    let entries: Vec<String> = (0..LIST_ENTRIES)
        .map(|n| {
            format!(
                r#""{:x}": {{"status": "REVOKED"}}"#,
                0x1000_0000_u64 + u64::from(n)
            )
        })
        .collect();
    let json = format!(r#"{{"entries": {{{}}}}}"#, entries.join(","));
    RevocationList::parse(json.as_bytes(), AT).expect("the list parses")
}

/// Runs `iterations` verifications split over `THREADS` threads sharing `verifier`: the wall
/// time, and the CPU time the threads used (when Linux tells it).
fn shared_verifier_run(
    verifier: &ChainVerifier,
    chain: &[Vec<u8>],
    revocations: &RevocationStatus<'_>,
    iterations: u64,
) -> (Duration, Option<Duration>) {
    let started = Instant::now();
    let cpu = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|thread| {
                let share = iterations / THREADS + u64::from(thread < iterations % THREADS);
                scope.spawn(move || {
                    let before = thread_cpu_time();
                    for _ in 0..share {
                        black_box(
                            verifier
                                .verify(black_box(chain), AT, revocations)
                                .expect("the chain verifies"),
                        );
                    }
                    Some(thread_cpu_time()?.saturating_sub(before?))
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a worker thread"))
            .sum::<Option<Duration>>()
    });
    (started.elapsed(), cpu)
}

/// The calling thread's CPU time so far, from Linux's `/proc/thread-self/schedstat`.
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

fn benches(c: &mut Criterion) {
    let chain = load_chain();
    let list = status_list();
    let revocations = RevocationStatus::checked(&list, Duration::from_secs(86_400));
    let anchors = TrustAnchors::google();

    let warm = ChainVerifier::new(anchors.clone());
    warm.verify(&chain, AT, &revocations)
        .expect("the vector chain verifies inside its window");

    // A plain figure, outside criterion: two threads on one warm verifier for three seconds.
    // On a shared machine the wall-clock figure counts other processes' time too; the CPU-time
    // figure is what two cores of our own would do.
    let mut done = 0_u64;
    let mut elapsed = Duration::ZERO;
    let mut cpu = Some(Duration::ZERO);
    while elapsed < Duration::from_secs(3) {
        let (wall, used) = shared_verifier_run(&warm, &chain, &revocations, 2_000);
        elapsed += wall;
        cpu = cpu.zip(used).map(|(total, used)| total + used);
        done += 2_000;
    }
    let per_second = |time: Duration| done as f64 / time.as_secs_f64();
    println!(
        "{THREADS} threads sharing one warm verifier ({} certificates per chain, target 10000 \
         chains/s): {:.0} chains/s by the wall clock",
        chain.len(),
        per_second(elapsed)
    );
    if let Some(cpu) = cpu {
        println!(
            "  {:.0} chains/s per CPU-second, so {:.0} chains/s on {THREADS} otherwise idle cores \
             (load average now: {})",
            per_second(cpu),
            per_second(cpu) * THREADS as f64,
            std::fs::read_to_string("/proc/loadavg")
                .map(|text| text
                    .split_whitespace()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" "))
                .unwrap_or_else(|_| "unknown".to_owned())
        );
    }

    let mut group = c.benchmark_group("android chain (caiman SB_EC_RKP)");
    group.throughput(Throughput::Elements(1));
    group.bench_function("cold: new verifier, every link", |b| {
        b.iter_batched(
            || ChainVerifier::new(anchors.clone()),
            |verifier| {
                verifier
                    .verify(black_box(&chain), AT, &revocations)
                    .expect("the chain verifies")
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("warm: links above the leaf cached", |b| {
        b.iter(|| {
            warm.verify(black_box(&chain), AT, &revocations)
                .expect("the chain verifies")
        });
    });
    group.bench_function("warm, 2 threads sharing one verifier", |b| {
        b.iter_custom(|iterations| shared_verifier_run(&warm, &chain, &revocations, iterations).0);
    });
    group.finish();
}

criterion_group!(android_chain, benches);
criterion_main!(android_chain);
