//! The director on a device, end to end against a repository built in memory: the device
//! refreshes its TUF metadata, verifies Command's answer to its request, looks the offered name
//! up through the ordinary target search, installs only what the answer and the repository agree
//! on, and keeps every OTA I defence (issue #14, "Per-device offers").

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed expectation is the test failure"
)]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use enigm_crypto::Ed25519SigningKey;
use enigm_ota::client::{FetchFailure, Limits, Refresh, TrustedMetadata};
use enigm_ota::director::{
    DirectorAnswer, DirectorError, DirectorKeys, DirectorOffer, Disagreement,
    VerifiedDirectorAnswer, agree, director_keys, sign_answer, verify_answer,
};
use enigm_ota::metadata::TargetFile;
use enigm_ota::release::ReleaseFields;
use enigm_ota::repository::{
    RootKeys, build_root, build_snapshot, build_targets, build_timestamp, release_entry,
    target_file,
};
use enigm_ota::{
    ArtifactVerifier, DeviceProfile, MetadataSigner, ReleaseRejection, SoftwareSigner,
    VerifiedTarget, appraise_release, sign_metadata,
};
use enigm_types::{DeviceHandle, ReasonCategory, Timestamp};

/// 2026-11-22T00:00:00Z.
const NOW: Timestamp = Timestamp::from_unix_millis(1_795_305_600_000);
const NONCE: &str = "zW3o1Qf8Kp2Lr5Tn7Vb9Xc";
const LIFETIME: Duration = Duration::from_secs(300);

fn key(seed: u8) -> SoftwareSigner {
    SoftwareSigner::Ed25519(Ed25519SigningKey::from_seed(&[seed; 32]))
}

fn later(days: u64) -> Timestamp {
    NOW.saturating_add(Duration::from_secs(days * 24 * 60 * 60))
}

fn me() -> DeviceHandle {
    DeviceHandle::from_digest(&[1; 20])
}

fn fields(rollback_index: u64) -> ReleaseFields {
    ReleaseFields {
        kind: "os-image".to_owned(),
        release_version: format!("2026.{rollback_index}"),
        rollback_index,
        channel: "stable".to_owned(),
        hardware: vec!["enigm-sim".to_owned()],
        expires: enigm_ota::time::format_expiry(later(90)),
        payload_signatures: Vec::new(),
    }
}

/// A repository whose root pins Command's online snapshot key as the director (seed 3), with
/// releases 4 and 5 of the OS image.
struct Repo {
    files: HashMap<String, Vec<u8>>,
    targets: BTreeMap<String, TargetFile>,
    artifacts: HashMap<String, Vec<u8>>,
}

impl Repo {
    fn new(director: bool) -> Repo {
        let keys = RootKeys {
            root: vec![key(1).key()],
            root_threshold: 1,
            targets: vec![key(2).key()],
            targets_threshold: 1,
            snapshot: key(3).key(),
            timestamp: key(4).key(),
            release: vec![key(5).key()],
            release_threshold: 1,
        };
        let mut root = build_root(&keys, 1, later(365));
        if director {
            DirectorKeys::new(&[key(3).key()], 1)
                .unwrap()
                .pin_in(&mut root);
        }
        let mut repo = Repo {
            files: HashMap::from([(
                "1.root.json".to_owned(),
                sign_metadata(&root, &[&key(1)]).unwrap(),
            )]),
            targets: BTreeMap::new(),
            artifacts: HashMap::new(),
        };
        for index in [4, 5] {
            let name = format!("os/enigm-sim/{index}.img");
            let artifact = format!("image v{index}").into_bytes();
            let sha256 = hex::encode(enigm_crypto::sha256(&artifact));
            let entry = release_entry(
                &name,
                artifact.len() as u64,
                &sha256,
                &fields(index),
                &[&key(5)],
            )
            .unwrap();
            repo.targets.insert(name.clone(), entry);
            repo.artifacts.insert(name, artifact);
        }
        let targets = build_targets(repo.targets.clone(), 1, later(365));
        let targets_bytes = sign_metadata(&targets, &[&key(2)]).unwrap();
        let snapshot = build_snapshot(1, &targets_bytes, 1, later(30));
        let snapshot_bytes = sign_metadata(&snapshot, &[&key(3)]).unwrap();
        let timestamp = build_timestamp(1, &snapshot_bytes, 1, later(1));
        let timestamp_bytes = sign_metadata(&timestamp, &[&key(4)]).unwrap();
        repo.files
            .insert("1.targets.json".to_owned(), targets_bytes);
        repo.files
            .insert("1.snapshot.json".to_owned(), snapshot_bytes);
        repo.files
            .insert("timestamp.json".to_owned(), timestamp_bytes);
        repo
    }

    /// What the device trusts after refreshing against this repository.
    fn refreshed(&self) -> TrustedMetadata {
        let trusted = TrustedMetadata::new(&self.files["1.root.json"]).unwrap();
        let mut refresh = Refresh::new(trusted, Limits::default(), NOW);
        while let Some(request) = refresh.next_request() {
            let fetched = self
                .files
                .get(&request.file_name)
                .cloned()
                .ok_or(FetchFailure::NotFound);
            refresh.provide(fetched).unwrap();
        }
        refresh.into_trusted()
    }

    /// Command's answer to this device's request, offering `offer`, signed by `signer`.
    fn answer(&self, offer: Option<DirectorOffer>, signer: &dyn MetadataSigner) -> Vec<u8> {
        let answer = DirectorAnswer::new(me(), NONCE, NOW, LIFETIME, offer).unwrap();
        sign_answer(&answer, &[signer]).unwrap()
    }

    /// Command's offer of one of its listed releases.
    fn offer_of(&self, name: &str) -> DirectorOffer {
        DirectorOffer::for_listed(name, &self.targets[name]).unwrap()
    }
}

/// The device's side: the pin from the trusted root, the answer verified, the offered name
/// searched for through the repository (no delegations here, so the search needs no fetch).
fn device_reads(
    trusted: &mut TrustedMetadata,
    answer: &[u8],
) -> Result<(VerifiedDirectorAnswer, Option<VerifiedTarget>), DirectorError> {
    let pinned = director_keys(trusted.root())?.expect("the root pins a director");
    let verified = verify_answer(answer, &pinned, &me(), NONCE, NOW)?;
    let found = match verified.target_search(Limits::default(), NOW) {
        None => None,
        Some(mut search) => {
            assert!(search.next_request(trusted).unwrap().is_none());
            search.result().expect("the search is over")
        }
    };
    Ok((verified, found))
}

fn profile(installed: u64) -> DeviceProfile {
    DeviceProfile {
        hardware_model: "enigm-sim".to_owned(),
        channel: "stable".to_owned(),
        installed_rollback_index: [("os-image".to_owned(), installed)].into(),
    }
}

#[test]
fn the_device_installs_what_the_director_offers_and_the_repository_lists() {
    let repo = Repo::new(true);
    let mut trusted = repo.refreshed();
    // The director holds this device back on release 4 (a pin), although 5 is listed.
    let name = "os/enigm-sim/4.img";
    let answer = repo.answer(Some(repo.offer_of(name)), &key(3));
    let (verified, found) = device_reads(&mut trusted, &answer).unwrap();
    let agreed = agree(&verified, found.as_ref()).unwrap();
    assert_eq!(agreed.target().name(), name);
    let approved = appraise_release(&trusted, agreed.target(), &profile(3), NOW).unwrap();
    assert_eq!(approved.fields().rollback_index, 4);
    let mut artifact = ArtifactVerifier::new(agreed.target()).unwrap();
    artifact.update(&repo.artifacts[name]).unwrap();
    assert_eq!(artifact.finish().unwrap().target(), agreed.target());
}

#[test]
fn no_offer_means_nothing_to_install() {
    let repo = Repo::new(true);
    let mut trusted = repo.refreshed();
    let (verified, found) = device_reads(&mut trusted, &repo.answer(None, &key(3))).unwrap();
    assert_eq!(found, None);
    assert_eq!(agree(&verified, None), Err(Disagreement::NoOffer));
}

#[test]
fn an_offer_the_repository_does_not_list_is_not_found() {
    let repo = Repo::new(true);
    let mut trusted = repo.refreshed();
    let unlisted = DirectorOffer::for_listed(
        "os/enigm-sim/6.img",
        &release_entry("os/enigm-sim/6.img", 8, &"ab".repeat(32), &fields(6), &[]).unwrap(),
    )
    .unwrap();
    let (verified, found) =
        device_reads(&mut trusted, &repo.answer(Some(unlisted), &key(3))).unwrap();
    assert_eq!(found, None);
    let refusal = agree(&verified, None).unwrap_err();
    assert_eq!(refusal, Disagreement::NotListed);
    assert_eq!(refusal.reason(), ReasonCategory::UpdateNotFound);
}

#[test]
fn a_director_cannot_change_what_the_repository_lists() {
    let repo = Repo::new(true);
    let mut trusted = repo.refreshed();
    let name = "os/enigm-sim/5.img";
    // A listed name with another artifact's length and digest, as a compromised director might.
    let forged = DirectorOffer::for_listed(name, &target_file(9, &"cd".repeat(32), None));
    assert!(forged.is_err(), "an offer needs release fields");
    let mut entry = repo.targets[name].clone();
    entry.hashes.insert("sha256".to_owned(), "cd".repeat(32));
    let forged = DirectorOffer::for_listed(name, &entry).unwrap();
    let (verified, found) =
        device_reads(&mut trusted, &repo.answer(Some(forged), &key(3))).unwrap();
    assert_eq!(agree(&verified, found.as_ref()), Err(Disagreement::Sha256));
}

#[test]
fn an_agreed_offer_still_passes_every_release_check() {
    let repo = Repo::new(true);
    let mut trusted = repo.refreshed();
    let answer = repo.answer(Some(repo.offer_of("os/enigm-sim/4.img")), &key(3));
    let (verified, found) = device_reads(&mut trusted, &answer).unwrap();
    let agreed = agree(&verified, found.as_ref()).unwrap();
    // A device that already runs release 5 refuses 4 whoever offers it.
    assert_eq!(
        appraise_release(&trusted, agreed.target(), &profile(5), NOW).unwrap_err(),
        ReleaseRejection::Downgrade
    );
}

#[test]
fn answers_signed_by_repository_keys_or_for_other_devices_are_refused() {
    let repo = Repo::new(true);
    let mut trusted = repo.refreshed();
    let offer = Some(repo.offer_of("os/enigm-sim/5.img"));
    for not_director in [1, 2, 4, 5] {
        let error = device_reads(
            &mut trusted,
            &repo.answer(offer.clone(), &key(not_director)),
        )
        .unwrap_err();
        assert!(
            matches!(error, DirectorError::ThresholdNotMet { .. }),
            "{error}"
        );
        assert_eq!(error.reason(), ReasonCategory::UpdateBadSignature);
    }
    let pinned = director_keys(trusted.root()).unwrap().unwrap();
    let answer = repo.answer(offer, &key(3));
    let other = DeviceHandle::from_digest(&[2; 20]);
    assert_eq!(
        verify_answer(&answer, &pinned, &other, NONCE, NOW),
        Err(DirectorError::OtherDevice)
    );
}

#[test]
fn a_root_without_a_director_leaves_the_device_as_before() {
    let repo = Repo::new(false);
    let trusted = repo.refreshed();
    assert_eq!(director_keys(trusted.root()), Ok(None));
    // OTA I: the newest release the device may have.
    let target = trusted.target("os/enigm-sim/5.img").unwrap();
    assert!(appraise_release(&trusted, &target, &profile(4), NOW).is_ok());
}
