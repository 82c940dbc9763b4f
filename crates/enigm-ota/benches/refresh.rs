//! A metadata refresh against a repository of 100,000 targets (issue #6: under 200 ms): root
//! chain (no newer root), timestamp, snapshot and targets verified, then one target looked up
//! and appraised. Everything in memory, so this measures the client's own work: parsing,
//! canonical JSON, signature checks, hashing. Two layouts:
//! - `hash_bins_100k`: the targets role delegates to 256 succinct hash bins (TUF's answer for
//!   large repositories, PyPI's PEP 458 layout); a lookup loads the top-level targets and the
//!   one bin of the target;
//! - `flat_100k`: all 100,000 targets in the top-level targets role (one ~84 MB document with
//!   Enigm's release fields and payload signatures), for comparison.
//!
//! `cargo bench -p enigm-ota --bench refresh`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark set-up"
)]

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use enigm_crypto::Ed25519SigningKey;
use enigm_ota::client::{FetchFailure, Limits, Refresh, TargetSearch, TrustedMetadata};
use enigm_ota::release::ReleaseFields;
use enigm_ota::repository::{
    RootKeys, build_root, build_snapshot, build_targets, build_timestamp, release_entry,
};
use enigm_ota::{DeviceProfile, MetadataSigner, SoftwareSigner, appraise_release, sign_metadata};
use enigm_types::Timestamp;

const TARGETS: usize = 100_000;
const NOW: Timestamp = Timestamp::from_unix_millis(1_795_305_600_000);

fn repository() -> (Vec<u8>, HashMap<String, Vec<u8>>) {
    let key = |seed: u8| SoftwareSigner::Ed25519(Ed25519SigningKey::from_seed(&[seed; 32]));
    let (root, targets_key, snapshot, timestamp, release) =
        (key(1), key(2), key(3), key(4), key(5));
    let expires = Timestamp::from_unix_millis(NOW.unix_millis() + 30 * 86_400_000);
    let root_md = build_root(
        &RootKeys {
            root: vec![root.key()],
            root_threshold: 1,
            targets: vec![targets_key.key()],
            targets_threshold: 1,
            snapshot: snapshot.key(),
            timestamp: timestamp.key(),
            release: vec![release.key()],
            release_threshold: 1,
        },
        1,
        expires,
    );
    let root_bytes = sign_metadata(&root_md, &[&root]).unwrap();
    let mut targets = BTreeMap::new();
    for index in 0..TARGETS {
        let name = format!("os/enigm-os-{index:06}.img");
        let sha256 = hex::encode(enigm_crypto::sha256(name.as_bytes()));
        let fields = ReleaseFields {
            kind: "os-image".to_owned(),
            release_version: format!("2026.{index}"),
            rollback_index: index as u64,
            channel: "stable".to_owned(),
            hardware: vec!["enigm-sim".to_owned()],
            expires: enigm_ota::time::format_expiry(expires),
            payload_signatures: Vec::new(),
        };
        let entry = release_entry(
            &name,
            1 << 30,
            &sha256,
            &fields,
            &[&release as &dyn MetadataSigner],
        )
        .unwrap();
        targets.insert(name, entry);
    }
    let targets_bytes =
        sign_metadata(&build_targets(targets, 1, expires), &[&targets_key]).unwrap();
    let snapshot_bytes =
        sign_metadata(&build_snapshot(1, &targets_bytes, 1, expires), &[&snapshot]).unwrap();
    let timestamp_bytes = sign_metadata(
        &build_timestamp(1, &snapshot_bytes, 1, expires),
        &[&timestamp],
    )
    .unwrap();
    eprintln!(
        "repository: {TARGETS} targets, targets metadata {} bytes",
        targets_bytes.len()
    );
    let files = HashMap::from([
        ("1.targets.json".to_owned(), targets_bytes),
        ("1.snapshot.json".to_owned(), snapshot_bytes),
        ("timestamp.json".to_owned(), timestamp_bytes),
    ]);
    (root_bytes, files)
}

fn refresh(root: &[u8], files: &HashMap<String, Vec<u8>>) -> TrustedMetadata {
    let mut refresh = Refresh::new(TrustedMetadata::new(root).unwrap(), Limits::default(), NOW);
    while let Some(request) = refresh.next_request() {
        let fetched = files
            .get(&request.file_name)
            .cloned()
            .ok_or(FetchFailure::NotFound);
        refresh.provide(fetched).unwrap();
    }
    refresh.into_trusted()
}

/// The same 100,000 targets in 256 succinct hash bins.
fn binned_repository() -> (Vec<u8>, HashMap<String, Vec<u8>>) {
    let key = |seed: u8| SoftwareSigner::Ed25519(Ed25519SigningKey::from_seed(&[seed; 32]));
    let (root, targets_key, snapshot, timestamp, release, bins_key) =
        (key(1), key(2), key(3), key(4), key(5), key(6));
    let expires = Timestamp::from_unix_millis(NOW.unix_millis() + 30 * 86_400_000);
    let root_md = build_root(
        &RootKeys {
            root: vec![root.key()],
            root_threshold: 1,
            targets: vec![targets_key.key()],
            targets_threshold: 1,
            snapshot: snapshot.key(),
            timestamp: timestamp.key(),
            release: vec![release.key()],
            release_threshold: 1,
        },
        1,
        expires,
    );
    let root_bytes = sign_metadata(&root_md, &[&root]).unwrap();
    let bins_id = bins_key.key().key_id();
    let mut top = build_targets(BTreeMap::new(), 1, expires);
    top.delegations = Some(serde_json::json!({
        "keys": { bins_id.clone(): bins_key.key() },
        "succinct_roles": {
            "keyids": [bins_id], "threshold": 1, "bit_length": 8, "name_prefix": "bin"
        }
    }));
    let mut bins: BTreeMap<String, BTreeMap<String, enigm_ota::metadata::TargetFile>> =
        BTreeMap::new();
    for index in 0..TARGETS {
        let (name, entry) = entry(index, &release, expires);
        let bin = format!("bin-{:02x}", enigm_crypto::sha256(name.as_bytes())[0]);
        bins.entry(bin).or_default().insert(name, entry);
    }
    let mut files = HashMap::new();
    let top_bytes = sign_metadata(&top, &[&targets_key]).unwrap();
    let mut snapshot_md = build_snapshot(1, &top_bytes, 1, expires);
    for (bin, targets) in bins {
        let bytes = sign_metadata(&build_targets(targets, 1, expires), &[&bins_key]).unwrap();
        snapshot_md.meta.insert(
            format!("{bin}.json"),
            enigm_ota::metadata::MetaFile {
                version: 1,
                length: Some(bytes.len() as u64),
                hashes: None,
                unrecognized: serde_json::Map::new(),
            },
        );
        files.insert(format!("1.{bin}.json"), bytes);
    }
    let snapshot_bytes = sign_metadata(&snapshot_md, &[&snapshot]).unwrap();
    let timestamp_bytes = sign_metadata(
        &build_timestamp(1, &snapshot_bytes, 1, expires),
        &[&timestamp],
    )
    .unwrap();
    files.insert("1.targets.json".to_owned(), top_bytes);
    files.insert("1.snapshot.json".to_owned(), snapshot_bytes);
    files.insert("timestamp.json".to_owned(), timestamp_bytes);
    (root_bytes, files)
}

fn entry(
    index: usize,
    release: &SoftwareSigner,
    expires: Timestamp,
) -> (String, enigm_ota::metadata::TargetFile) {
    let name = format!("os/enigm-os-{index:06}.img");
    let sha256 = hex::encode(enigm_crypto::sha256(name.as_bytes()));
    let fields = ReleaseFields {
        kind: "os-image".to_owned(),
        release_version: format!("2026.{index}"),
        rollback_index: index as u64,
        channel: "stable".to_owned(),
        hardware: vec!["enigm-sim".to_owned()],
        expires: enigm_ota::time::format_expiry(expires),
        payload_signatures: Vec::new(),
    };
    let entry = release_entry(
        &name,
        1 << 30,
        &sha256,
        &fields,
        &[release as &dyn MetadataSigner],
    )
    .unwrap();
    (name, entry)
}

fn search(
    trusted: &mut TrustedMetadata,
    files: &HashMap<String, Vec<u8>>,
    name: &str,
) -> enigm_ota::VerifiedTarget {
    let mut search = TargetSearch::new(name, Limits::default(), NOW);
    while let Some(request) = search.next_request(trusted).unwrap() {
        let fetched = files
            .get(&request.file_name)
            .cloned()
            .ok_or(FetchFailure::NotFound);
        search.provide(trusted, fetched).unwrap();
    }
    search.result().flatten().unwrap()
}

fn bench(c: &mut Criterion) {
    let device = DeviceProfile {
        hardware_model: "enigm-sim".to_owned(),
        channel: "stable".to_owned(),
        installed_rollback_index: BTreeMap::new(),
    };
    let (root, files) = binned_repository();
    let mut group = c.benchmark_group("refresh");
    group.bench_function("hash_bins_100k", |b| {
        b.iter(|| {
            let mut trusted = refresh(&root, &files);
            let target = search(&mut trusted, &files, "os/enigm-os-099999.img");
            let _ = black_box(appraise_release(&trusted, &target, &device, NOW));
        });
    });
    let (root, files) = repository();
    group.sample_size(10);
    group.bench_function("flat_100k", |b| {
        b.iter(|| {
            let trusted = refresh(&root, &files);
            let target = trusted.target("os/enigm-os-099999.img").unwrap();
            let _ = black_box(appraise_release(&trusted, &target, &device, NOW));
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
