//! Connections verified per second by the proxy: parse the `Proxy-Authorization` value, check
//! the credential (Command's signature) and the proof (the device's signature), and record the
//! proof in a replay cache already holding 100,000 live proofs. Each iteration verifies one
//! fresh proof, so criterion's time is the proxy's cost per connection on one core.
//!
//! Run: `cargo bench -p enigm-proxyauth --bench verify` (`-- --quick` for a short run).

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a benchmark whose set-up fails must stop loudly; it handles no untrusted input"
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use enigm_crypto::Ed25519SigningKey;
use enigm_proxyauth::{
    Credential, CredentialClaims, CredentialId, Proof, ProxyVerifier, RevocationList,
    TargetAuthority, VerifierPolicy, authorization,
};
use enigm_types::{DeviceHandle, Timestamp};

const NOW: Timestamp = Timestamp::from_unix_millis(1_795_305_600_000);
const TARGET: &str = "service.example:443";
const WARM: u64 = 100_000;

fn bench(c: &mut Criterion) {
    let command = Ed25519SigningKey::from_seed(&[1; 32]);
    let device = Ed25519SigningKey::from_seed(&[2; 32]);
    let credential = Credential::issue(
        &command,
        CredentialClaims {
            id: CredentialId::from_bytes([7; 16]),
            handle: DeviceHandle::from_digest(&[9; 20]),
            device_key: device.verifying_key().to_bytes(),
            issued_at: NOW,
            expires_at: NOW.saturating_add(Duration::from_secs(600)),
        },
    );
    let target = TargetAuthority::parse(TARGET).expect("target");
    let header = |counter: u64| {
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&counter.to_be_bytes());
        authorization(
            &credential,
            &Proof::sign(&device, &credential, &target, nonce, NOW),
        )
    };
    let mut verifier = ProxyVerifier::new(command.verifying_key(), VerifierPolicy::default());
    let list = RevocationList::sign(
        &command,
        NOW,
        (0..1000u32).map(|i| {
            let mut id = [0xffu8; 16];
            id[..4].copy_from_slice(&i.to_be_bytes());
            CredentialId::from_bytes(id)
        }),
    );
    verifier
        .install_revocations(list.verify(&command.verifying_key()).expect("list"))
        .expect("install");
    for counter in 0..WARM {
        verifier
            .verify(&header(counter), TARGET, NOW)
            .expect("warm-up proof");
    }
    // The headers are signed outside the timed loop: a device signs, the proxy verifies.
    let headers: Vec<String> = (WARM..WARM + 200_000).map(header).collect();
    let mut next = headers.iter().cycle();
    let mut group = c.benchmark_group("proxy");
    group.bench_function("verify_connection", |b| {
        b.iter(|| {
            let value = next.next().expect("cycled");
            // A header used again after the cycle wraps is a replay: timed all the same, and
            // the refusal costs as much as an acceptance (both signatures are checked first).
            black_box(verifier.verify(black_box(value), TARGET, NOW).is_ok())
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
