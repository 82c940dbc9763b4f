//! Interoperability with the reference implementation, the PyPI `tuf` package (python-tuf):
//! a repository python-tuf writes (with a root rotation, Ed25519 and ECDSA keys, and Enigm's
//! release fields) verifies with this crate's client, and a repository this crate writes
//! verifies with python-tuf's `Updater` (which also refuses it once tampered with), its root
//! pinning a director (`x-enigm-director`); and this crate's canonical JSON equals
//! securesystemslib's `encode_canonical` on 300 generated values.
//!
//! `scripts/test` makes a venv with python-tuf and exports `ENIGM_PYTHON_TUF`; the Python side
//! is in `tests/interop/`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed expectation is the test failure"
)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use enigm_crypto::{EcdsaP256SigningKey, Ed25519SigningKey};
use enigm_ota::client::{FetchFailure, Limits, Refresh, TrustedMetadata};
use enigm_ota::director::DirectorKeys;
use enigm_ota::release::ReleaseFields;
use enigm_ota::repository::{
    RootKeys, build_root, build_snapshot, build_targets, build_timestamp, release_entry,
};
use enigm_ota::{ArtifactVerifier, DeviceProfile, MetadataSigner, SoftwareSigner, sign_metadata};
use enigm_types::Timestamp;

fn python() -> Option<PathBuf> {
    match std::env::var_os("ENIGM_PYTHON_TUF") {
        Some(path) => Some(PathBuf::from(path)),
        None if std::env::var("ENIGM_SKIP_PYTHON_TUF").as_deref() == Ok("1") => {
            eprintln!(
                "!!! SKIPPED: ENIGM_SKIP_PYTHON_TUF=1, python-tuf interoperability not tested !!!"
            );
            None
        }
        None => panic!(
            "ENIGM_PYTHON_TUF is not set: run scripts/test, which makes a venv with the PyPI `tuf` \
             package, or set ENIGM_SKIP_PYTHON_TUF=1 to skip loudly"
        ),
    }
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

fn now() -> Timestamp {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Timestamp::from_unix_millis(i64::try_from(seconds).unwrap() * 1000)
}

fn files_in(dir: &Path) -> HashMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn metadata_written_by_python_tuf_verifies_here() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let now = now();
    let output = Command::new(&python)
        .arg(script("make_repository.py"))
        .arg(dir.path())
        .arg(now.unix_seconds().to_string())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let files = files_in(&dir.path().join("metadata"));
    let mut refresh = Refresh::new(
        TrustedMetadata::new(&files["1.root.json"]).unwrap(),
        Limits::default(),
        now,
    );
    while let Some(request) = refresh.next_request() {
        let fetched = files
            .get(&request.file_name)
            .cloned()
            .ok_or(FetchFailure::NotFound);
        refresh.provide(fetched).unwrap();
    }
    let trusted = refresh.into_trusted();
    assert_eq!(
        trusted.root().version,
        2,
        "python-tuf's root rotation was followed"
    );
    let name = summary["name"].as_str().unwrap();
    let target = trusted.target(name).unwrap();
    let device = DeviceProfile {
        hardware_model: "enigm-sim".to_owned(),
        channel: "stable".to_owned(),
        installed_rollback_index: BTreeMap::new(),
    };
    let approved = enigm_ota::appraise_release(&trusted, &target, &device, now).unwrap();
    assert_eq!(approved.fields().rollback_index, 9);
    let sha256 = summary["sha256"].as_str().unwrap();
    let artifact = std::fs::read(
        dir.path()
            .join("targets/os")
            .join(format!("{sha256}.enigm-os.img")),
    )
    .unwrap();
    let mut verifier = ArtifactVerifier::new(&target).unwrap();
    verifier.update(&artifact).unwrap();
    verifier.finish().unwrap();
}

#[test]
fn metadata_written_here_verifies_with_python_tuf() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let metadata = repo.join("metadata");
    std::fs::create_dir_all(&metadata).unwrap();
    std::fs::create_dir_all(repo.join("targets/os")).unwrap();
    let key = || SoftwareSigner::Ed25519(Ed25519SigningKey::generate(&mut rand::rngs::OsRng));
    let root_key = key();
    let targets_key = SoftwareSigner::EcdsaP256(EcdsaP256SigningKey::generate().unwrap());
    let (snapshot_key, timestamp_key, release_key) = (key(), key(), key());
    let expires = Timestamp::from_unix_millis(now().unix_millis() + 30 * 86_400_000);
    let mut root = build_root(
        &RootKeys {
            root: vec![root_key.key()],
            root_threshold: 1,
            targets: vec![targets_key.key()],
            targets_threshold: 1,
            snapshot: snapshot_key.key(),
            timestamp: timestamp_key.key(),
            release: vec![release_key.key()],
            release_threshold: 1,
        },
        1,
        expires,
    );
    // The director pin is a field of root's `signed` part that python-tuf keeps unread and
    // signs over like any other.
    DirectorKeys::new(&[timestamp_key.key()], 1)
        .unwrap()
        .pin_in(&mut root);
    std::fs::write(
        metadata.join("1.root.json"),
        sign_metadata(&root, &[&root_key]).unwrap(),
    )
    .unwrap();
    let image = b"an Enigm OS image for python-tuf to verify".to_vec();
    let sha256 = hex::encode(enigm_crypto::sha256(&image));
    let fields = ReleaseFields {
        kind: "os-image".to_owned(),
        release_version: "2026.11.3".to_owned(),
        rollback_index: 3,
        channel: "stable".to_owned(),
        hardware: vec!["enigm-sim".to_owned()],
        expires: enigm_ota::time::format_expiry(expires),
        payload_signatures: Vec::new(),
    };
    let entry = release_entry(
        "os/image.img",
        image.len() as u64,
        &sha256,
        &fields,
        &[&release_key as &dyn MetadataSigner],
    )
    .unwrap();
    let targets = build_targets([("os/image.img".to_owned(), entry)].into(), 1, expires);
    let targets_bytes = sign_metadata(&targets, &[&targets_key]).unwrap();
    let snapshot = build_snapshot(1, &targets_bytes, 1, expires);
    let snapshot_bytes = sign_metadata(&snapshot, &[&snapshot_key]).unwrap();
    let timestamp = build_timestamp(1, &snapshot_bytes, 1, expires);
    std::fs::write(metadata.join("1.targets.json"), &targets_bytes).unwrap();
    std::fs::write(metadata.join("1.snapshot.json"), &snapshot_bytes).unwrap();
    std::fs::write(
        metadata.join("timestamp.json"),
        sign_metadata(&timestamp, &[&timestamp_key]).unwrap(),
    )
    .unwrap();
    let artifact = repo.join("targets/os").join(format!("{sha256}.image.img"));
    std::fs::write(&artifact, &image).unwrap();

    let verify = |work: &str| {
        Command::new(&python)
            .arg(script("verify_repository.py"))
            .arg(&repo)
            .arg(dir.path().join(work))
            .arg("os/image.img")
            .output()
            .unwrap()
    };
    let output = verify("work-1");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(results[0]["custom"]["enigm"]["rollback_index"], 3);
    assert_eq!(results[0]["length"], image.len());

    // Tampered: python-tuf refuses the artifact too.
    std::fs::write(&artifact, b"an Enigm OS image for python-tuf to verifY").unwrap();
    let output = verify("work-2");
    assert!(
        !output.status.success(),
        "python-tuf accepted a tampered artifact"
    );
}

#[test]
fn canonical_json_matches_securesystemslib() {
    use proptest::strategy::{Strategy, ValueTree};
    use serde_json::Value;
    let Some(python) = python() else { return };
    let leaf = proptest::prop_oneof![
        proptest::strategy::Just(Value::Null),
        proptest::arbitrary::any::<bool>().prop_map(Value::Bool),
        proptest::arbitrary::any::<i64>().prop_map(Value::from),
        proptest::arbitrary::any::<u64>().prop_map(Value::from),
        proptest::arbitrary::any::<String>().prop_map(Value::String),
    ];
    let values = leaf.prop_recursive(4, 64, 8, |inner| {
        proptest::prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map(proptest::arbitrary::any::<String>(), inner, 0..8)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    });
    // A fixed seed: the same 300 values on every run, so a failure reproduces.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let values: Vec<Value> = (0..300)
        .map(|_| values.new_tree(&mut runner).unwrap().current())
        .collect();
    let mut child = Command::new(&python)
        .arg(script("encode_canonical.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input = serde_json::to_vec(&values).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs: Vec<&str> = std::str::from_utf8(&output.stdout)
        .unwrap()
        .lines()
        .collect();
    assert_eq!(theirs.len(), values.len());
    for (value, theirs) in values.iter().zip(theirs) {
        let ours = hex::encode(enigm_ota::canonical::canonical_json(value).unwrap());
        assert_eq!(ours, theirs, "{value}");
    }
}
