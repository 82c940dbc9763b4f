//! TPM 2.0 quote verification (`enigm_attest::tpm::verify_quote`) on real quotes over PCRs 0, 1
//! and 16: one by an RSA 2048 (RSASSA) attestation key, one by an ECC P-256 (ECDSA) key, plus
//! parsing the key's `TPM2B_PUBLIC` as enrollment does.
//!
//! The quotes come from a software TPM started for the run (swtpm and tpm2-tools, as in
//! `tests/tpm_swtpm.rs`; its set-up is not measured). Run:
//! `cargo bench -p enigm-attest --bench tpm_quote`. Without swtpm the benchmark fails, saying
//! that `scripts/test` installs it, unless `ENIGM_SKIP_TPM=1`.

#![allow(
    clippy::unwrap_used,
    reason = "a benchmark whose set-up fails must stop loudly; it handles no untrusted input"
)]

#[path = "../tests/swtpm/mod.rs"]
mod swtpm;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use enigm_attest::tpm::{AttestationKey, PcrReference, verify_quote};
use swtpm::{AkKind, Swtpm};

const NONCE: [u8; 32] = [0x5a; 32];

fn quotes(c: &mut Criterion) {
    let Some(tpm) = Swtpm::start("tpm_quote benchmark") else {
        return;
    };
    tpm.extend_pcr16([0x42; 32]);
    for (label, kind) in [("rsassa", AkKind::Rsassa), ("ecdsa", AkKind::Ecdsa)] {
        let ak = tpm.create_ak(kind);
        let key = AttestationKey::from_tpm2b_public(&ak.public).unwrap();
        let quote = tpm.quote(&ak, &NONCE);
        let reference = PcrReference::sha256(quote.pcrs.clone()).unwrap();
        verify_quote(
            &key,
            &quote.attest,
            &quote.signature,
            &NONCE,
            &quote.pcrs,
            &reference,
        )
        .unwrap();

        c.bench_function(&format!("tpm_quote/verify/{label}"), |b| {
            b.iter(|| {
                verify_quote(
                    black_box(&key),
                    black_box(&quote.attest),
                    black_box(&quote.signature),
                    black_box(&NONCE),
                    black_box(&quote.pcrs),
                    black_box(&reference),
                )
            })
        });
        c.bench_function(&format!("tpm_quote/parse_key/{label}"), |b| {
            b.iter(|| AttestationKey::from_tpm2b_public(black_box(&ak.public)))
        });
    }
}

criterion_group!(benches, quotes);
criterion_main!(benches);
