//! Compiling and signing policy bundles for 1,000 device groups after one policy change (issue
//! 15, performance): each group's bundle compiled from its assigned trust policy and encoded as
//! canonical JSON with its digest (1,000 `PolicyBundle::to_bytes`), then the delegated
//! `policy-bundles` role listing the 1,000 bundles built and signed once with an Ed25519 key
//! (Command's online snapshot key as a file). The database writes of a publish are not
//! measured here.
//!
//! Run: `cargo bench -p enigm-server --bench policy_bundles`.

#![allow(
    clippy::expect_used,
    reason = "a benchmark whose set-up fails must stop loudly; it handles no untrusted input"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use enigm_crypto::Ed25519SigningKey;
use enigm_ota::{SoftwareSigner, sign_metadata};
use enigm_server::services::policy_bundles::{bundle_role, compile, record_of};
use enigm_store::BundledVersion;
use enigm_types::{PolicyKind, Timestamp};

const GROUPS: usize = 1_000;
const NOW: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

fn assigned() -> Vec<BundledVersion> {
    let content = serde_json::to_string_pretty(&enigm_trust::TrustPolicy::baseline())
        .expect("the baseline encodes");
    vec![BundledVersion {
        kind: PolicyKind::Trust,
        policy: "00000000-0000-4000-8000-000000000001"
            .parse()
            .expect("a policy id"),
        policy_name: "field-trust".to_owned(),
        version: 2,
        digest: hex::encode(enigm_crypto::sha256(content.as_bytes())),
        content,
    }]
}

fn bench(c: &mut Criterion) {
    let signer = SoftwareSigner::Ed25519(Ed25519SigningKey::generate(&mut rand::rngs::OsRng));
    let assigned = assigned();
    let groups: Vec<String> = (0..GROUPS).map(|n| format!("group-{n:04}")).collect();
    let mut group = c.benchmark_group("policy_bundles");
    group.sample_size(20);
    group.bench_function("compile_and_sign_1000_groups", |b| {
        b.iter(|| {
            let records: Vec<_> = groups
                .iter()
                .map(|name| {
                    let bundle = compile(name, 7, NOW, &assigned).expect("compiles");
                    record_of(&bundle, NOW).expect("encodes")
                })
                .collect();
            let role = bundle_role(&records, 42, NOW);
            black_box(sign_metadata(&role, &[&signer]).expect("signs"))
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
