//! Verifying and staging a 1 GiB image against `sha256sum` on the same file in the same run
//! (issue #6: at least 90 % of its throughput). Staging is what the agent does with each
//! downloaded chunk: `ArtifactVerifier::update` (length bound, SHA-256) and a write into the
//! slot file, then `fsync` before the image may be switched to. The file lives under `target/`
//! (a real disk, not tmpfs) and is removed afterwards.
//!
//! `cargo bench -p enigm-ota --bench stage` (ENIGM_STAGE_MIB=N for another size)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark set-up"
)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use enigm_ota::client::target_of;
use enigm_ota::metadata::{RoleKeys, Targets, verify_role};
use enigm_ota::repository::{build_targets, target_file};
use enigm_ota::{ArtifactVerifier, MetadataSigner, SoftwareSigner, sign_metadata};

const CHUNK: usize = 1 << 20;

fn main() {
    let mib: u64 = std::env::var("ENIGM_STAGE_MIB")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1024);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/stage-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let image = dir.join("image.bin");
    let slot = dir.join("slot.img");
    // Made-up content (not zeros, so no layer can shortcut it).
    let mut digest = enigm_crypto::Sha256Stream::new();
    {
        let mut file = std::fs::File::create(&image).unwrap();
        let mut block = vec![0u8; CHUNK];
        for index in 0..mib {
            for (offset, byte) in block.iter_mut().enumerate() {
                *byte = (offset as u64 ^ index.wrapping_mul(0x9e37_79b9)) as u8;
            }
            digest.update(&block);
            file.write_all(&block).unwrap();
        }
        file.sync_all().unwrap();
    }
    let sha256 = hex::encode(digest.finish());
    let length = mib * CHUNK as u64;
    let total = length as f64;
    let mut targets = std::collections::BTreeMap::new();
    targets.insert(
        "os/image.img".to_owned(),
        target_file(length, &sha256, None),
    );
    let key = SoftwareSigner::Ed25519(enigm_crypto::Ed25519SigningKey::from_seed(&[9; 32]));
    let metadata = build_targets(targets, 1, enigm_types::Timestamp::from_unix_millis(0));
    let signed = sign_metadata(&metadata, &[&key]).unwrap();
    let role = RoleKeys {
        keyids: vec![key.key().key_id()],
        threshold: 1,
        unrecognized: serde_json::Map::new(),
    };
    let keys = [(key.key().key_id(), key.key())].into();
    let verified = verify_role::<Targets>(&signed, &keys, &role).unwrap();
    let target = target_of(&verified, "os/image.img").unwrap();

    // Warm the page cache for both, then measure each.
    let _ = std::process::Command::new("cat").arg(&image).output();
    let start = Instant::now();
    let output = std::process::Command::new("sha256sum")
        .arg(&image)
        .output()
        .unwrap();
    let sha256sum = start.elapsed();
    assert!(String::from_utf8_lossy(&output.stdout).starts_with(&sha256));

    let start = Instant::now();
    let mut verifier = ArtifactVerifier::new(&target).unwrap();
    let mut input = std::fs::File::open(&image).unwrap();
    let mut output = std::fs::File::create(&slot).unwrap();
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let n = input.read(&mut buffer).unwrap();
        if n == 0 {
            break;
        }
        verifier.update(&buffer[..n]).unwrap();
        output.write_all(&buffer[..n]).unwrap();
    }
    output.sync_all().unwrap();
    verifier.finish().unwrap();
    let stage = start.elapsed();

    let rate = |elapsed: std::time::Duration| total / elapsed.as_secs_f64() / 1e6;
    println!(
        "{mib} MiB: sha256sum {:.0} MB/s ({:.2} s); verify+stage {:.0} MB/s ({:.2} s); ratio {:.0} %",
        rate(sha256sum),
        sha256sum.as_secs_f64(),
        rate(stage),
        stage.as_secs_f64(),
        100.0 * sha256sum.as_secs_f64() / stage.as_secs_f64()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
