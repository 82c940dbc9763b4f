//! One test per attack on the update path (issue #6), against repositories built in memory with
//! the repository side of this crate: each attack is refused, with its category.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed expectation is the test failure"
)]

use std::collections::{BTreeMap, HashMap};

use enigm_crypto::{EcdsaP256SigningKey, Ed25519SigningKey};
use enigm_ota::client::{FetchFailure, Limits, Refresh, TrustedMetadata};
use enigm_ota::release::{PayloadStatement, ReleaseFields, sign_payload};
use enigm_ota::repository::{
    RootKeys, build_root, build_snapshot, build_targets, build_timestamp, target_file,
};
use enigm_ota::{
    ArtifactVerifier, DeviceProfile, FailureCategory, MetadataSigner, ReleaseRejection,
    SoftwareSigner, TargetError, appraise_release, sign_metadata,
};
use enigm_types::Timestamp;

const DAY: i64 = 24 * 60 * 60 * 1000;
const NOW: Timestamp = Timestamp::from_unix_millis(1_795_305_600_000);

fn ed25519() -> SoftwareSigner {
    SoftwareSigner::Ed25519(Ed25519SigningKey::generate(&mut rand::rngs::OsRng))
}

fn later(days: i64) -> Timestamp {
    Timestamp::from_unix_millis(NOW.unix_millis() + days * DAY)
}

/// A repository: its keys and its files by name.
struct Repo {
    root: SoftwareSigner,
    targets: SoftwareSigner,
    snapshot: SoftwareSigner,
    timestamp: SoftwareSigner,
    release: SoftwareSigner,
    files: HashMap<String, Vec<u8>>,
    targets_map: BTreeMap<String, enigm_ota::metadata::TargetFile>,
    artifacts: HashMap<String, Vec<u8>>,
    versions: (u64, u64, u64),
}

fn fields(rollback_index: u64, hardware: &str) -> ReleaseFields {
    ReleaseFields {
        kind: "os-image".to_owned(),
        release_version: format!("2026.{rollback_index}"),
        rollback_index,
        channel: "stable".to_owned(),
        hardware: vec![hardware.to_owned()],
        expires: enigm_ota::time::format_expiry(later(90)),
        payload_signatures: Vec::new(),
    }
}

impl Repo {
    fn new() -> Repo {
        let root = ed25519();
        let targets = SoftwareSigner::EcdsaP256(EcdsaP256SigningKey::generate().unwrap());
        let snapshot = ed25519();
        let timestamp = ed25519();
        let release = ed25519();
        let mut repo = Repo {
            root,
            targets,
            snapshot,
            timestamp,
            release,
            files: HashMap::new(),
            targets_map: BTreeMap::new(),
            artifacts: HashMap::new(),
            versions: (0, 0, 0),
        };
        let root_md = build_root(&repo.root_keys(), 1, later(365));
        let bytes = sign_metadata(&root_md, &[&repo.root]).unwrap();
        repo.files.insert("1.root.json".to_owned(), bytes);
        repo
    }

    fn root_keys(&self) -> RootKeys {
        RootKeys {
            root: vec![self.root.key()],
            root_threshold: 1,
            targets: vec![self.targets.key()],
            targets_threshold: 1,
            snapshot: self.snapshot.key(),
            timestamp: self.timestamp.key(),
            release: vec![self.release.key()],
            release_threshold: 1,
        }
    }

    fn trusted_root(&self) -> Vec<u8> {
        self.files["1.root.json"].clone()
    }

    /// A client that trusts only version 1 of the root refreshes against this repository now.
    fn refresh_from_its_root(&self) -> Result<TrustedMetadata, enigm_ota::RefreshError> {
        refresh(
            TrustedMetadata::new(&self.trusted_root()).unwrap(),
            &self.files,
            NOW,
        )
    }

    /// Adds a release signed by `payload_signer` and publishes new targets, snapshot and
    /// timestamp.
    fn release(
        &mut self,
        name: &str,
        artifact: &[u8],
        mut fields: ReleaseFields,
        payload_signer: &dyn MetadataSigner,
    ) {
        let sha256 = hex::encode(enigm_crypto::sha256(artifact));
        let statement = PayloadStatement::new(name, artifact.len() as u64, &sha256, &fields);
        fields.payload_signatures = vec![sign_payload(payload_signer, &statement).unwrap()];
        let custom = serde_json::json!({ "enigm": fields });
        self.targets_map.insert(
            name.to_owned(),
            target_file(artifact.len() as u64, &sha256, Some(custom)),
        );
        self.artifacts.insert(name.to_owned(), artifact.to_vec());
        self.publish(later(30));
    }

    fn publish(&mut self, timestamp_expires: Timestamp) {
        let (t, s, ts) = self.versions;
        let (t, s, ts) = (t + 1, s + 1, ts + 1);
        self.versions = (t, s, ts);
        let targets = build_targets(self.targets_map.clone(), t, later(365));
        let targets_bytes = sign_metadata(&targets, &[&self.targets]).unwrap();
        let snapshot = build_snapshot(t, &targets_bytes, s, later(30));
        let snapshot_bytes = sign_metadata(&snapshot, &[&self.snapshot]).unwrap();
        let timestamp = build_timestamp(s, &snapshot_bytes, ts, timestamp_expires);
        let timestamp_bytes = sign_metadata(&timestamp, &[&self.timestamp]).unwrap();
        self.files
            .insert(format!("{t}.targets.json"), targets_bytes);
        self.files
            .insert(format!("{s}.snapshot.json"), snapshot_bytes);
        self.files
            .insert("timestamp.json".to_owned(), timestamp_bytes);
    }
}

/// Runs a refresh against the repository's files.
fn refresh(
    trusted: TrustedMetadata,
    files: &HashMap<String, Vec<u8>>,
    now: Timestamp,
) -> Result<TrustedMetadata, enigm_ota::RefreshError> {
    let mut refresh = Refresh::new(trusted, Limits::default(), now);
    while let Some(request) = refresh.next_request() {
        let fetched = files
            .get(&request.file_name)
            .cloned()
            .ok_or(FetchFailure::NotFound);
        refresh.provide(fetched)?;
    }
    Ok(refresh.into_trusted())
}

fn device(model: &str, installed: u64) -> DeviceProfile {
    DeviceProfile {
        hardware_model: model.to_owned(),
        channel: "stable".to_owned(),
        installed_rollback_index: [("os-image".to_owned(), installed)].into(),
    }
}

fn published_repo() -> Repo {
    let mut repo = Repo::new();
    let release = std::mem::replace(&mut repo.release, ed25519());
    repo.release(
        "os/image.img",
        b"image v5",
        fields(5, "enigm-sim"),
        &release,
    );
    repo.release = release;
    repo
}

#[test]
fn a_signed_release_verifies_end_to_end() {
    let repo = published_repo();
    let trusted = repo.refresh_from_its_root().unwrap();
    let target = trusted.target("os/image.img").unwrap();
    let approved = appraise_release(&trusted, &target, &device("enigm-sim", 4), NOW).unwrap();
    assert_eq!(approved.fields().rollback_index, 5);
    let mut verifier = ArtifactVerifier::new(&target).unwrap();
    verifier.update(b"image ").unwrap();
    verifier.update(b"v5").unwrap();
    assert_eq!(verifier.finish().unwrap().target(), &target);
}

#[test]
fn tampered_artifact() {
    let repo = published_repo();
    let trusted = repo.refresh_from_its_root().unwrap();
    let target = trusted.target("os/image.img").unwrap();
    let mut verifier = ArtifactVerifier::new(&target).unwrap();
    verifier.update(b"image v6").unwrap();
    assert_eq!(verifier.finish().unwrap_err(), TargetError::Mismatch);
}

#[test]
fn wrong_length() {
    let repo = published_repo();
    let trusted = repo.refresh_from_its_root().unwrap();
    let target = trusted.target("os/image.img").unwrap();
    let mut longer = ArtifactVerifier::new(&target).unwrap();
    assert_eq!(
        longer.update(b"image v5 and more").unwrap_err(),
        TargetError::TooLong
    );
    assert_eq!(TargetError::TooLong.category(), FailureCategory::TooLarge);
    let mut shorter = ArtifactVerifier::new(&target).unwrap();
    shorter.update(b"image").unwrap();
    assert_eq!(shorter.finish().unwrap_err(), TargetError::Mismatch);
}

#[test]
fn expired_timestamp_is_a_freeze() {
    let mut repo = published_repo();
    repo.publish(later(1));
    let error = refresh(
        TrustedMetadata::new(&repo.trusted_root()).unwrap(),
        &repo.files,
        later(2),
    )
    .unwrap_err();
    assert_eq!(error.category(), FailureCategory::Freeze, "{error}");
}

#[test]
fn older_snapshot_version_is_a_rollback() {
    let mut repo = published_repo();
    let old_timestamp = repo.files["timestamp.json"].clone();
    repo.publish(later(30));
    let trusted = repo.refresh_from_its_root().unwrap();
    // The attacker serves the older timestamp (and so the older snapshot).
    let mut replayed = repo.files.clone();
    replayed.insert("timestamp.json".to_owned(), old_timestamp);
    let error = refresh(trusted, &replayed, NOW).unwrap_err();
    assert_eq!(error.category(), FailureCategory::Rollback, "{error}");
}

#[test]
fn mix_and_match_of_snapshot_and_targets() {
    let mut repo = published_repo();
    let first_targets = repo.files["1.targets.json"].clone();
    let release = std::mem::replace(&mut repo.release, ed25519());
    repo.release("os/other.img", b"other", fields(5, "enigm-sim"), &release);
    // The current snapshot names targets v2; the attacker serves v1's bytes under v2's name.
    let mut mixed = repo.files.clone();
    mixed.insert("2.targets.json".to_owned(), first_targets);
    let error = refresh(
        TrustedMetadata::new(&repo.trusted_root()).unwrap(),
        &mixed,
        NOW,
    )
    .unwrap_err();
    assert_eq!(error.category(), FailureCategory::MixAndMatch, "{error}");
}

#[test]
fn signature_by_the_wrong_roles_key() {
    let mut repo = published_repo();
    let snapshot_bytes = repo.files["1.snapshot.json"].clone();
    let timestamp = build_timestamp(1, &snapshot_bytes, 9, later(30));
    // Signed by the snapshot key, not the timestamp key.
    let forged = sign_metadata(&timestamp, &[&repo.snapshot]).unwrap();
    repo.files.insert("timestamp.json".to_owned(), forged);
    let error = repo.refresh_from_its_root().unwrap_err();
    assert_eq!(error.category(), FailureCategory::BadSignature, "{error}");
}

#[test]
fn duplicate_signatures_count_once_toward_a_threshold() {
    let repo = Repo::new();
    let mut keys = repo.root_keys();
    let second = ed25519();
    keys.root.push(second.key());
    keys.root_threshold = 2;
    let root = build_root(&keys, 1, later(365));
    let once = sign_metadata(&root, &[&repo.root]).unwrap();
    // The same signature twice.
    let mut envelope: serde_json::Value = serde_json::from_slice(&once).unwrap();
    let signature = envelope["signatures"][0].clone();
    envelope["signatures"]
        .as_array_mut()
        .unwrap()
        .push(signature);
    let doubled = serde_json::to_vec(&envelope).unwrap();
    // Refused outright: one key id twice is malformed (python-tuf agrees).
    let error = TrustedMetadata::new(&doubled).unwrap_err();
    assert_eq!(error.category(), FailureCategory::Malformed, "{error}");
    // Two different entries of one key still count once: the threshold of 2 is not met.
    let mut renamed = envelope.clone();
    renamed["signatures"][1]["keyid"] = serde_json::json!(second.key().key_id());
    let error = TrustedMetadata::new(&serde_json::to_vec(&renamed).unwrap()).unwrap_err();
    assert_eq!(error.category(), FailureCategory::BadSignature, "{error}");
    let both = sign_metadata(&root, &[&repo.root, &second]).unwrap();
    assert!(TrustedMetadata::new(&both).is_ok());
}

#[test]
fn root_rotation_needs_the_old_and_the_new_threshold() {
    let repo = published_repo();
    let new_root = ed25519();
    let mut keys = repo.root_keys();
    keys.root = vec![new_root.key()];
    let root_v2 = build_root(&keys, 2, later(365));
    let cases: [(&str, Vec<&dyn MetadataSigner>, bool); 3] = [
        ("old key only", vec![&repo.root], false),
        ("new key only", vec![&new_root], false),
        ("both", vec![&repo.root, &new_root], true),
    ];
    for (what, signers, accepted) in cases {
        let mut files = repo.files.clone();
        files.insert(
            "2.root.json".to_owned(),
            sign_metadata(&root_v2, &signers).unwrap(),
        );
        let result = refresh(
            TrustedMetadata::new(&repo.trusted_root()).unwrap(),
            &files,
            NOW,
        );
        match (result, accepted) {
            (Ok(trusted), true) => assert_eq!(trusted.root().version, 2),
            (Err(error), false) => {
                assert_eq!(
                    error.category(),
                    FailureCategory::BadSignature,
                    "{what}: {error}"
                )
            }
            (other, _) => panic!("{what}: {other:?}"),
        }
    }
    // A version that skips one is refused too.
    let mut files = repo.files.clone();
    let root_v3 = build_root(&keys, 3, later(365));
    files.insert(
        "2.root.json".to_owned(),
        sign_metadata(&root_v3, &[&repo.root, &new_root]).unwrap(),
    );
    assert!(
        refresh(
            TrustedMetadata::new(&repo.trusted_root()).unwrap(),
            &files,
            NOW
        )
        .is_err()
    );
}

#[test]
fn payload_signed_by_the_manifest_key() {
    let mut repo = Repo::new();
    let manifest = std::mem::replace(&mut repo.targets, ed25519());
    repo.targets = manifest;
    let targets_key = SoftwareSigner::Ed25519(Ed25519SigningKey::from_seed(&[7; 32]));
    let mut keys = repo.root_keys();
    keys.targets = vec![targets_key.key()];
    let root = build_root(&keys, 1, later(365));
    repo.files.insert(
        "1.root.json".to_owned(),
        sign_metadata(&root, &[&repo.root]).unwrap(),
    );
    repo.targets = targets_key;
    // The targets (manifest) key signs the payload statement.
    let manifest_signer = SoftwareSigner::Ed25519(Ed25519SigningKey::from_seed(&[7; 32]));
    repo.release(
        "os/image.img",
        b"image",
        fields(5, "enigm-sim"),
        &manifest_signer,
    );
    let trusted = repo.refresh_from_its_root().unwrap();
    let target = trusted.target("os/image.img").unwrap();
    assert_eq!(
        appraise_release(&trusted, &target, &device("enigm-sim", 0), NOW).unwrap_err(),
        ReleaseRejection::PayloadSignature
    );
}

#[test]
fn release_keys_that_are_metadata_keys_are_refused() {
    let repo = published_repo();
    let mut keys = repo.root_keys();
    keys.release = vec![repo.targets.key()];
    // As the first trusted root: refused, and Command's check names the reason.
    let root = build_root(&keys, 1, later(365));
    let error = TrustedMetadata::new(&sign_metadata(&root, &[&repo.root]).unwrap()).unwrap_err();
    assert_eq!(error.category(), FailureCategory::Malformed, "{error}");
    assert_eq!(
        enigm_ota::release::release_signing(&root).unwrap_err(),
        ReleaseRejection::AuthoritiesConfused
    );
    // As a rotation from a good root: refused too, though signed by both thresholds.
    let root_v2 = build_root(&keys, 2, later(365));
    let mut files = repo.files.clone();
    files.insert(
        "2.root.json".to_owned(),
        sign_metadata(&root_v2, &[&repo.root]).unwrap(),
    );
    let error = refresh(
        TrustedMetadata::new(&repo.trusted_root()).unwrap(),
        &files,
        NOW,
    )
    .unwrap_err();
    assert_eq!(error.category(), FailureCategory::Malformed, "{error}");
}

#[test]
fn downgrade_of_the_rollback_index() {
    let repo = published_repo();
    let trusted = repo.refresh_from_its_root().unwrap();
    let target = trusted.target("os/image.img").unwrap();
    assert_eq!(
        appraise_release(&trusted, &target, &device("enigm-sim", 6), NOW).unwrap_err(),
        ReleaseRejection::Downgrade
    );
    // The same security version may be installed again (a retried install).
    assert!(appraise_release(&trusted, &target, &device("enigm-sim", 5), NOW).is_ok());
}

#[test]
fn incompatible_device() {
    let repo = published_repo();
    let trusted = repo.refresh_from_its_root().unwrap();
    let target = trusted.target("os/image.img").unwrap();
    assert_eq!(
        appraise_release(&trusted, &target, &device("other-model", 0), NOW).unwrap_err(),
        ReleaseRejection::IncompatibleHardware
    );
    let mut other_channel = device("enigm-sim", 0);
    other_channel.channel = "beta".to_owned();
    assert_eq!(
        appraise_release(&trusted, &target, &other_channel, NOW).unwrap_err(),
        ReleaseRejection::ChannelMismatch
    );
    assert_eq!(
        appraise_release(&trusted, &target, &device("enigm-sim", 0), later(91)).unwrap_err(),
        ReleaseRejection::Expired
    );
}

#[test]
fn target_name_with_dot_dot() {
    let mut repo = Repo::new();
    let release = std::mem::replace(&mut repo.release, ed25519());
    for name in [
        "os/../../etc/passwd",
        "/etc/passwd",
        "os\\image",
        "os//image",
        "./image",
        "",
    ] {
        repo.release(name, b"x", fields(5, "enigm-sim"), &release);
    }
    let trusted = repo.refresh_from_its_root().unwrap();
    for name in [
        "os/../../etc/passwd",
        "/etc/passwd",
        "os\\image",
        "os//image",
        "./image",
        "",
    ] {
        let target = trusted.target(name).unwrap();
        assert_eq!(
            target.local_path().unwrap_err(),
            TargetError::UnsafeName,
            "{name:?}"
        );
    }
    assert!(enigm_ota::safe_local_path("os/image.img").is_ok());
}

#[test]
fn endless_data_is_cut_at_the_bound() {
    let mut repo = published_repo();
    let mut huge = repo.files["timestamp.json"].clone();
    huge.extend(std::iter::repeat_n(b' ', 64 * 1024));
    repo.files.insert("timestamp.json".to_owned(), huge);
    let error = repo.refresh_from_its_root().unwrap_err();
    assert_eq!(error.category(), FailureCategory::TooLarge, "{error}");
}

#[test]
fn an_expired_root_is_refused_after_the_chain() {
    let repo = published_repo();
    let error = refresh(
        TrustedMetadata::new(&repo.trusted_root()).unwrap(),
        &repo.files,
        later(400),
    )
    .unwrap_err();
    assert_eq!(error.category(), FailureCategory::Freeze, "{error}");
}

#[test]
fn expired_snapshot_under_an_unchanged_timestamp_is_a_freeze() {
    let mut repo = published_repo();
    // The timestamp outlives the snapshot (30 days) and the repository stops publishing.
    repo.publish(later(60));
    let trusted = repo.refresh_from_its_root().unwrap();
    let error = refresh(trusted.clone(), &repo.files, later(31)).unwrap_err();
    assert_eq!(error.category(), FailureCategory::Freeze, "{error}");
    // The same from a client's store, where the local copies load without their expiry.
    let stored = enigm_ota::client::load_trusted(
        trusted.root_bytes(),
        Some(&repo.files["timestamp.json"]),
        Some(&repo.files["2.snapshot.json"]),
        Some(&repo.files["2.targets.json"]),
    )
    .unwrap();
    let error = refresh(stored, &repo.files, later(31)).unwrap_err();
    assert_eq!(error.category(), FailureCategory::Freeze, "{error}");
}

#[test]
fn a_release_key_that_is_a_metadata_key_under_another_id_is_refused() {
    let repo = Repo::new();
    let mut keys = repo.root_keys();
    // The targets key again, with a field that changes its key id but not the key.
    let mut alias = repo.targets.key();
    alias
        .unrecognized
        .insert("x-alias".to_owned(), serde_json::json!(true));
    assert_ne!(alias.key_id(), repo.targets.key().key_id());
    keys.release = vec![alias];
    let root = build_root(&keys, 1, later(365));
    let error = TrustedMetadata::new(&sign_metadata(&root, &[&repo.root]).unwrap()).unwrap_err();
    assert_eq!(error.category(), FailureCategory::Malformed, "{error}");
    assert_eq!(
        enigm_ota::release::release_signing(&root).unwrap_err(),
        ReleaseRejection::AuthoritiesConfused
    );
}

#[test]
fn release_fields_outside_the_schema_are_malformed() {
    let mut repo = Repo::new();
    let release = std::mem::replace(&mut repo.release, ed25519());
    let mut unknown_kind = fields(5, "enigm-sim");
    unknown_kind.kind = "firmware-blob".to_owned();
    repo.release("os/unknown-kind.img", b"a", unknown_kind, &release);
    let mut no_hardware = fields(5, "enigm-sim");
    no_hardware.hardware.clear();
    repo.release("os/no-hardware.img", b"b", no_hardware, &release);
    let mut bad_expiry = fields(5, "enigm-sim");
    bad_expiry.expires = "next year".to_owned();
    repo.release("os/bad-expiry.img", b"c", bad_expiry, &release);
    repo.release = release;
    let trusted = repo.refresh_from_its_root().unwrap();
    for name in [
        "os/unknown-kind.img",
        "os/no-hardware.img",
        "os/bad-expiry.img",
    ] {
        let target = trusted.target(name).unwrap();
        assert_eq!(
            appraise_release(&trusted, &target, &device("enigm-sim", 0), NOW).unwrap_err(),
            ReleaseRejection::Malformed,
            "{name}"
        );
    }
}

#[test]
fn an_artifact_witness_names_only_the_target_it_checked() {
    let mut repo = published_repo();
    let release = std::mem::replace(&mut repo.release, ed25519());
    repo.release("os/other.img", b"other", fields(5, "enigm-sim"), &release);
    let trusted = repo.refresh_from_its_root().unwrap();
    let checked = trusted.target("os/other.img").unwrap();
    let other = trusted.target("os/image.img").unwrap();
    // The witness names the target the verifier was made for, whatever else the caller holds.
    let mut verifier = ArtifactVerifier::new(&checked).unwrap();
    verifier.update(b"other").unwrap();
    let artifact = verifier.finish().unwrap();
    assert_eq!(artifact.target(), &checked);
    assert_ne!(artifact.target(), &other);
    // Bytes of one target never make a witness for another.
    let mut verifier = ArtifactVerifier::new(&other).unwrap();
    verifier.update(b"other").unwrap();
    assert_eq!(verifier.finish().unwrap_err(), TargetError::Mismatch);
}

#[test]
fn delegations_that_python_tuf_refuses_are_malformed() {
    let repo = Repo::new();
    let delegate = ed25519();
    let id = delegate.key().key_id();
    let role = |name: &str, extra: serde_json::Value| {
        let mut role = serde_json::json!({
            "name": name, "keyids": [id], "threshold": 1, "terminating": false
        });
        role.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        role
    };
    let paths = serde_json::json!({ "paths": ["*"] });
    let cases = [
        // Its metadata would be stored over the client's snapshot.json.
        (
            "a top-level role's name",
            vec![role("snapshot", paths.clone())],
        ),
        ("an empty name", vec![role("", paths.clone())]),
        (
            "a repeated name",
            vec![role("a", paths.clone()), role("a", paths.clone())],
        ),
        (
            "paths and hash prefixes",
            vec![role(
                "a",
                serde_json::json!({ "paths": ["*"], "path_hash_prefixes": ["ab"] }),
            )],
        ),
        ("neither", vec![role("a", serde_json::json!({}))]),
    ];
    for (what, roles) in cases {
        let mut targets = build_targets(BTreeMap::new(), 1, later(365));
        targets.delegations = Some(serde_json::json!({
            "keys": { id.clone(): delegate.key() },
            "roles": roles,
        }));
        let targets_bytes = sign_metadata(&targets, &[&repo.targets]).unwrap();
        let snapshot = build_snapshot(1, &targets_bytes, 1, later(30));
        let snapshot_bytes = sign_metadata(&snapshot, &[&repo.snapshot]).unwrap();
        let timestamp = build_timestamp(1, &snapshot_bytes, 1, later(30));
        let mut files = repo.files.clone();
        files.insert("1.targets.json".to_owned(), targets_bytes);
        files.insert("1.snapshot.json".to_owned(), snapshot_bytes);
        files.insert(
            "timestamp.json".to_owned(),
            sign_metadata(&timestamp, &[&repo.timestamp]).unwrap(),
        );
        let error = refresh(
            TrustedMetadata::new(&repo.trusted_root()).unwrap(),
            &files,
            NOW,
        )
        .unwrap_err();
        assert_eq!(
            error.category(),
            FailureCategory::Malformed,
            "{what}: {error}"
        );
    }
}

#[test]
fn endless_delegated_metadata_is_cut_at_the_bound() {
    use enigm_ota::client::TargetSearch;
    let repo = Repo::new();
    let delegate = ed25519();
    let id = delegate.key().key_id();
    let mut targets = build_targets(BTreeMap::new(), 1, later(365));
    targets.delegations = Some(serde_json::json!({
        "keys": { id.clone(): delegate.key() },
        "roles": [{ "name": "a", "keyids": [id], "threshold": 1, "terminating": true,
                    "paths": ["*"] }],
    }));
    let targets_bytes = sign_metadata(&targets, &[&repo.targets]).unwrap();
    let delegated = build_targets(
        BTreeMap::from([("x".to_owned(), target_file(1, &"00".repeat(32), None))]),
        1,
        later(365),
    );
    let mut delegated_bytes = sign_metadata(&delegated, &[&delegate]).unwrap();
    // Still valid JSON, still correctly signed: only the bound refuses it.
    delegated_bytes.extend(std::iter::repeat_n(b' ', 4096));
    let mut snapshot = build_snapshot(1, &targets_bytes, 1, later(30));
    // No length for the delegated role: the client's own bound applies.
    snapshot.meta.insert(
        "a.json".to_owned(),
        enigm_ota::metadata::MetaFile {
            version: 1,
            length: None,
            hashes: None,
            unrecognized: serde_json::Map::new(),
        },
    );
    let snapshot_bytes = sign_metadata(&snapshot, &[&repo.snapshot]).unwrap();
    let timestamp = build_timestamp(1, &snapshot_bytes, 1, later(30));
    let mut files = repo.files.clone();
    files.insert("1.targets.json".to_owned(), targets_bytes);
    files.insert("1.snapshot.json".to_owned(), snapshot_bytes);
    files.insert(
        "timestamp.json".to_owned(),
        sign_metadata(&timestamp, &[&repo.timestamp]).unwrap(),
    );
    files.insert("1.a.json".to_owned(), delegated_bytes);
    let mut trusted = refresh(
        TrustedMetadata::new(&repo.trusted_root()).unwrap(),
        &files,
        NOW,
    )
    .unwrap();
    let limits = Limits {
        targets: 2048,
        ..Limits::default()
    };
    let mut search = TargetSearch::new("x", limits, NOW);
    let request = search.next_request(&trusted).unwrap().unwrap();
    assert_eq!(
        (request.file_name.as_str(), request.max_length),
        ("1.a.json", 2048)
    );
    // A caller that ignored the bound and read everything.
    let error = search
        .provide(&mut trusted, Ok(files["1.a.json"].clone()))
        .unwrap_err();
    assert_eq!(error.category(), FailureCategory::TooLarge, "{error}");
}
