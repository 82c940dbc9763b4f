//! A device given good, tampered, expired, replayed and older policy bundles, against a real
//! signed repository (root, top-level targets delegating `policy-bundles` to the online key,
//! the delegated role, snapshot, timestamp) served from memory.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a failed expectation is the test failure"
)]

use std::cell::RefCell;
use std::collections::BTreeMap;

use enigm_crypto::Ed25519SigningKey;
use enigm_ota::client::load_trusted;
use enigm_ota::metadata::{MetaFile, Snapshot, Targets};
use enigm_ota::policy_bundle::{
    AgentSettings, BUNDLE_TYPE, BundleFields, PolicyBundle, bundle_delegation, bundle_target_name,
};
use enigm_ota::repository::{
    RootKeys, build_root, build_snapshot, build_targets, build_timestamp, sign_metadata,
    target_file,
};
use enigm_ota::{MetadataSigner as _, SoftwareSigner};
use enigm_trust::SignalValue;

use super::*;

const NOW: Timestamp = Timestamp::from_unix_millis(1_796_000_000_000);
const DAY: std::time::Duration = std::time::Duration::from_secs(86_400);

fn signer(seed: u8) -> SoftwareSigner {
    SoftwareSigner::Ed25519(Ed25519SigningKey::from_seed(&[seed; 32]))
}

fn bundle(group: &str, sequence: u64, interval: u64) -> PolicyBundle {
    PolicyBundle {
        kind_tag: BUNDLE_TYPE.to_owned(),
        group: group.to_owned(),
        sequence,
        issued_at: NOW.to_rfc3339(),
        policies: BTreeMap::new(),
        agent: AgentSettings {
            checkin_interval_seconds: interval,
            collect: vec!["firewall".to_owned(), "secure-boot".to_owned()],
        },
    }
}

/// A repository as Command serves it: every file by its path under `/tuf`.
struct Repository {
    root: Vec<u8>,
    targets: Vec<u8>,
    files: RefCell<BTreeMap<String, Vec<u8>>>,
    latest: RefCell<(Vec<u8>, Vec<u8>)>,
    delegated_version: RefCell<u64>,
    /// The online key: snapshot, timestamp and the `policy-bundles` role.
    online: SoftwareSigner,
}

impl Repository {
    fn new() -> Repository {
        let (root_key, targets_key, online, release) = (signer(1), signer(2), signer(3), signer(4));
        let keys = RootKeys {
            root: vec![root_key.key()],
            root_threshold: 1,
            targets: vec![targets_key.key()],
            targets_threshold: 1,
            snapshot: online.key(),
            timestamp: online.key(),
            release: vec![release.key()],
            release_threshold: 1,
        };
        let root = sign_metadata(
            &build_root(&keys, 1, NOW.saturating_add(DAY * 365)),
            &[&root_key],
        )
        .unwrap();
        let mut targets = build_targets(BTreeMap::new(), 1, NOW.saturating_add(DAY * 365));
        targets.delegations = Some(bundle_delegation(&[&online.key()]));
        let targets = sign_metadata(&targets, &[&targets_key]).unwrap();
        Repository {
            root,
            targets,
            files: RefCell::new(BTreeMap::new()),
            latest: RefCell::new((Vec::new(), Vec::new())),
            delegated_version: RefCell::new(0),
            online,
        }
    }

    /// Publishes `content` as the bundle listed for `(group, sequence)` (its bytes as served
    /// can differ: `served`), in a new version of the delegated role expiring at `expires`.
    fn publish(
        &self,
        listed: &[u8],
        served: &[u8],
        group: &str,
        sequence: u64,
        expires: Timestamp,
    ) {
        let name = bundle_target_name(group, sequence);
        let sha = hex::encode(enigm_crypto::sha256(listed));
        let fields = BundleFields {
            kind: "policy-bundle".to_owned(),
            group: group.to_owned(),
            rollback_index: sequence,
        };
        let mut delegated: Targets = build_targets(
            BTreeMap::from([(
                name.clone(),
                target_file(listed.len() as u64, &sha, Some(fields.custom())),
            )]),
            0,
            expires,
        );
        let version = {
            let mut version = self.delegated_version.borrow_mut();
            *version += 1;
            *version
        };
        delegated.version = version;
        let delegated = sign_metadata(&delegated, &[&self.online]).unwrap();
        let mut snapshot: Snapshot =
            build_snapshot(1, &self.targets, version, NOW.saturating_add(DAY));
        snapshot.meta.insert(
            "policy-bundles.json".to_owned(),
            MetaFile {
                version,
                length: Some(delegated.len() as u64),
                hashes: Some(BTreeMap::from([(
                    "sha256".to_owned(),
                    hex::encode(enigm_crypto::sha256(&delegated)),
                )])),
                unrecognized: serde_json::Map::new(),
            },
        );
        let snapshot = sign_metadata(&snapshot, &[&self.online]).unwrap();
        let timestamp = sign_metadata(
            &build_timestamp(version, &snapshot, version, NOW.saturating_add(DAY)),
            &[&self.online],
        )
        .unwrap();
        let (directory, file) = name.rsplit_once('/').unwrap();
        let mut files = self.files.borrow_mut();
        files.insert(
            format!("/tuf/metadata/{version}.policy-bundles.json"),
            delegated,
        );
        files.insert(
            format!("/tuf/targets/{directory}/{sha}.{file}"),
            served.to_vec(),
        );
        *self.latest.borrow_mut() = (timestamp, snapshot);
    }

    fn publish_bundle(&self, bundle: &PolicyBundle) {
        let bytes = bundle.to_bytes().unwrap();
        self.publish(
            &bytes,
            &bytes,
            &bundle.group,
            bundle.sequence,
            NOW.saturating_add(DAY * 7),
        );
    }

    /// The metadata a device trusts after refreshing now.
    fn trusted(&self) -> TrustedMetadata {
        let (timestamp, snapshot) = self.latest.borrow().clone();
        load_trusted(
            &self.root,
            Some(&timestamp),
            Some(&snapshot),
            Some(&self.targets),
        )
        .unwrap()
    }
}

impl Fetch for Repository {
    async fn fetch(&self, path: &str, max_length: u64) -> Result<Vec<u8>, FetchFailure> {
        match self.files.borrow().get(path) {
            Some(bytes) if bytes.len() as u64 > max_length => Err(FetchFailure::TooLarge),
            Some(bytes) => Ok(bytes.clone()),
            None => Err(FetchFailure::NotFound),
        }
    }
}

/// A device's OTA directory, and the install reports it sent.
struct Device {
    dir: tempfile::TempDir,
    reports: RefCell<Vec<InstallReportRequest>>,
}

impl Device {
    fn new() -> Device {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("metadata")).unwrap();
        Device {
            dir,
            reports: RefCell::new(Vec::new()),
        }
    }

    async fn update(&self, repository: &Repository, wanted: &str) -> Option<UpdateResult> {
        let mut trusted = repository.trusted();
        let report = async |request: InstallReportRequest| {
            self.reports.borrow_mut().push(request);
            Ok(InstallReportResponse { recorded: true })
        };
        update(
            &mut trusted,
            self.dir.path(),
            wanted,
            repository,
            &report,
            NOW,
        )
        .await
        .unwrap()
    }

    fn status(&self) -> PolicyStatus {
        status(self.dir.path())
    }

    fn sequence(&self) -> Option<u64> {
        self.status().sequence()
    }
}

fn refused(result: Option<UpdateResult>) -> ReasonCategory {
    match result {
        Some(UpdateResult::Rejected(_, reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_device_applies_newer_bundles_and_reports_each() {
    let repository = Repository::new();
    let device = Device::new();
    assert_eq!(
        device.status().signal(NOW).value,
        SignalValue::NotMeasurable,
        "no bundle yet: the baseline, never ok"
    );

    repository.publish_bundle(&bundle("field", 1, 120));
    let first = bundle_target_name("field", 1);
    assert_eq!(
        device.update(&repository, &first).await,
        Some(UpdateResult::Installed(first.clone()))
    );
    let status = device.status();
    assert_eq!(status.sequence(), Some(1));
    assert_eq!(status.interval(), Some(std::time::Duration::from_secs(120)));
    assert_eq!(status.signal(NOW).value, SignalValue::Ok);
    assert_eq!(
        device.update(&repository, &first).await,
        None,
        "held: nothing to do"
    );

    repository.publish_bundle(&bundle("field", 2, 60));
    let second = bundle_target_name("field", 2);
    assert_eq!(
        device.update(&repository, &second).await,
        Some(UpdateResult::Installed(second.clone()))
    );
    assert_eq!(device.sequence(), Some(2));
    let reports = device.reports.borrow();
    assert_eq!(reports.len(), 2);
    assert_eq!(
        (
            reports[1].target_name.as_str(),
            reports[1].release_version.as_str()
        ),
        (second.as_str(), "2")
    );
    assert_eq!(reports[1].outcome, InstallOutcome::Installed);
}

#[tokio::test]
async fn tampered_older_replayed_expired_and_foreign_bundles_keep_the_last_good_one() {
    let repository = Repository::new();
    let device = Device::new();
    repository.publish_bundle(&bundle("field", 2, 60));
    let good = bundle_target_name("field", 2);
    device.update(&repository, &good).await;
    assert_eq!(device.sequence(), Some(2));

    // Tampered: the bytes served are not the ones the signed metadata lists.
    let listed = bundle("field", 3, 60).to_bytes().unwrap();
    let tampered = bundle("field", 3, 5).to_bytes().unwrap();
    repository.publish(&listed, &tampered, "field", 3, NOW.saturating_add(DAY));
    let third = bundle_target_name("field", 3);
    assert_eq!(
        refused(device.update(&repository, &third).await),
        ReasonCategory::UpdateArtifactMismatch
    );
    let status = device.status();
    assert_eq!(
        status.sequence(),
        Some(2),
        "the last good one stays in force"
    );
    assert_eq!(status.signal(NOW).value, SignalValue::Failed);
    assert_eq!(
        device.reports.borrow().last().unwrap().outcome,
        InstallOutcome::Rejected
    );

    // Older than the one held, even when signed anew.
    repository.publish_bundle(&bundle("field", 1, 60));
    assert_eq!(
        refused(
            device
                .update(&repository, &bundle_target_name("field", 1))
                .await
        ),
        ReasonCategory::Downgrade
    );
    // Replayed: the number held with other content.
    repository.publish_bundle(&bundle("field", 2, 999));
    assert_eq!(
        refused(device.update(&repository, &good).await),
        ReasonCategory::Downgrade
    );
    // For another group than the one the device holds.
    repository.publish_bundle(&bundle("lab", 9, 60));
    assert_eq!(
        refused(
            device
                .update(&repository, &bundle_target_name("lab", 9))
                .await
        ),
        ReasonCategory::UpdateMalformed
    );
    // Listed by delegated metadata that has expired.
    let newer = bundle("field", 4, 60).to_bytes().unwrap();
    repository.publish(&newer, &newer, "field", 4, NOW.saturating_sub(DAY));
    let expired = refused(
        device
            .update(&repository, &bundle_target_name("field", 4))
            .await,
    );
    assert_eq!(expired, ReasonCategory::UpdateFreeze);
    assert_eq!(device.sequence(), Some(2));
    assert_eq!(device.status().signal(NOW).value, SignalValue::Failed);

    // A good newer one clears the refusal.
    repository.publish_bundle(&bundle("field", 5, 60));
    let fifth = bundle_target_name("field", 5);
    assert_eq!(
        device.update(&repository, &fifth).await,
        Some(UpdateResult::Installed(fifth))
    );
    assert_eq!(device.status().signal(NOW).value, SignalValue::Ok);
}

#[tokio::test]
async fn a_power_cut_while_applying_leaves_the_last_good_bundle() {
    let repository = Repository::new();
    let device = Device::new();
    repository.publish_bundle(&bundle("field", 1, 60));
    device
        .update(&repository, &bundle_target_name("field", 1))
        .await;

    // The next bundle was being written when the power went: staged, never put in place.
    let next = bundle("field", 2, 30).to_bytes().unwrap();
    {
        let store = BundleStore::open(&bundles_dir(device.dir.path())).unwrap();
        let mut writer = store
            .begin(&hex::encode(enigm_crypto::sha256(&next)))
            .unwrap();
        writer.write(&next[..next.len() / 2]).unwrap();
    }
    let status = device.status();
    assert_eq!(status.sequence(), Some(1));
    assert_eq!(status.signal(NOW).value, SignalValue::Ok);

    // And the next attempt installs it whole.
    repository.publish_bundle(&bundle("field", 2, 30));
    let second = bundle_target_name("field", 2);
    assert_eq!(
        device.update(&repository, &second).await,
        Some(UpdateResult::Installed(second))
    );
    assert_eq!(device.sequence(), Some(2));
}

#[tokio::test]
async fn a_corrupt_bundle_record_refuses_bundles_and_is_no_policy() {
    let repository = Repository::new();
    let device = Device::new();
    repository.publish_bundle(&bundle("field", 1, 60));
    let first = bundle_target_name("field", 1);
    device.update(&repository, &first).await;
    std::fs::write(
        bundles_dir(device.dir.path()).join("installed.json"),
        b"{\"bundles\": 7}",
    )
    .unwrap();
    let status = device.status();
    assert_eq!(status.in_force, None);
    assert_eq!(status.signal(NOW).value, SignalValue::Failed);
    repository.publish_bundle(&bundle("field", 2, 60));
    assert_eq!(
        refused(
            device
                .update(&repository, &bundle_target_name("field", 2))
                .await
        ),
        ReasonCategory::UpdateMalformed
    );
}

/// `bundle` with `content` as its network policy.
fn with_network(mut bundle: PolicyBundle, content: serde_json::Value) -> PolicyBundle {
    bundle.policies.insert(
        "network".to_owned(),
        enigm_ota::policy_bundle::BundledPolicy {
            policy_id: "0193a1c2-7f00-7000-8000-000000000001".to_owned(),
            name: "field-network".to_owned(),
            version: 1,
            sha256: "00".repeat(32),
            content,
        },
    );
    bundle
}

/// A correctly signed bundle whose network policy does not compile (here `direct` without
/// `allow_direct`) is refused whole and the bundle in force stays; one that compiles installs.
#[tokio::test]
async fn a_bundle_whose_network_policy_does_not_compile_is_refused() {
    let repository = Repository::new();
    let device = Device::new();
    repository.publish_bundle(&bundle("field", 1, 120));
    let first = bundle_target_name("field", 1);
    device.update(&repository, &first).await;
    assert_eq!(device.sequence(), Some(1));

    let direct_everywhere = serde_json::json!({"version": 1, "layers": [{"id": "l", "rules": [
        {"id": "open", "match": {}, "action": {"route": "direct"}}]}]});
    repository.publish_bundle(&with_network(bundle("field", 2, 120), direct_everywhere));
    let second = bundle_target_name("field", 2);
    assert_eq!(
        refused(device.update(&repository, &second).await),
        ReasonCategory::UpdateMalformed
    );
    assert_eq!(device.sequence(), Some(1), "the bundle in force stays");
    assert_eq!(device.status().signal(NOW).value, SignalValue::Failed);

    let proxied = serde_json::json!({"version": 1, "layers": [{"id": "l", "rules": [
        {"id": "proxy", "match": {}, "action": {"route": "enigm-proxy"}}]}]});
    repository.publish_bundle(&with_network(bundle("field", 3, 120), proxied));
    let third = bundle_target_name("field", 3);
    assert_eq!(
        device.update(&repository, &third).await,
        Some(UpdateResult::Installed(third.clone()))
    );
    assert_eq!(device.sequence(), Some(3));
    assert_eq!(device.status().signal(NOW).value, SignalValue::Ok);
}
