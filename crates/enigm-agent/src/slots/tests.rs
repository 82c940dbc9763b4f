//! Power cuts at every durable step of an update, followed by a reboot: the device always boots
//! an intact image, the old one stays bootable until the new one is confirmed, the rollback
//! index never goes down, and the update can be run again to completion.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed expectation is the test failure"
)]

use super::*;

fn image(version: u64, bytes: &[u8]) -> SlotImage {
    SlotImage {
        target_name: format!("os/v{version}.img"),
        kind: "os-image".to_owned(),
        release_version: version.to_string(),
        rollback_index: version,
        sha256: hex::encode(enigm_crypto::sha256(bytes)),
        length: bytes.len() as u64,
    }
}

const V1: &[u8] = b"factory image, version 1";

fn sha256(bytes: &[u8]) -> String {
    hex::encode(enigm_crypto::sha256(bytes))
}

fn open(dir: &Path) -> SlotStore {
    SlotStore::open(dir, || Ok((V1.to_vec(), image(1, V1)))).unwrap()
}

/// The whole update: stage, switch, trial boot, health check, confirmation.
fn update(store: &mut SlotStore, bytes: &[u8], version: u64) -> anyhow::Result<Confirmation> {
    let mut writer = store.begin_stage(&sha256(bytes))?;
    // What a download cut off by the power wrote is kept; the rest follows it.
    let written = usize::try_from(writer.len()?)?;
    for chunk in bytes[written..].chunks(7) {
        writer.write(chunk)?;
    }
    store.finish_stage(writer, image(version, bytes))?;
    store.switch()?;
    let BootDecision::Trial(slot) = store.boot()? else {
        panic!("a switched update boots on trial");
    };
    let healthy = store.healthy(slot)?;
    store.confirm(healthy)
}

/// After a reboot: what boots is intact; the update is finished or can be finished.
fn reboot_and_check(dir: &Path, new: &[u8], cut_at: u32) -> SlotStore {
    let mut store = open(dir);
    assert!(
        store.state().installed_rollback_index["os-image"] >= 1,
        "cut at {cut_at}: the rollback index went down"
    );
    let decision = store.boot().unwrap();
    let booted = match decision {
        BootDecision::Active(slot) | BootDecision::RolledBack(slot) | BootDecision::Trial(slot) => {
            slot
        }
    };
    assert!(
        store.healthy(booted).unwrap(),
        "cut at {cut_at}: slot {booted:?} boots without an intact image ({decision:?})"
    );
    if let BootDecision::Trial(_) = decision {
        store.confirm(true).unwrap();
    }
    let active = store.state().active;
    let done = store
        .state()
        .image(active)
        .is_some_and(|image| image.rollback_index == 2);
    if !done {
        assert_eq!(
            store.state().image(active).unwrap().rollback_index,
            1,
            "cut at {cut_at}: the old image stays active until the new one is confirmed"
        );
        assert_eq!(
            update(&mut store, new, 2).unwrap(),
            Confirmation::Confirmed(active.other())
        );
    }
    assert_eq!(
        store
            .state()
            .image(store.state().active)
            .unwrap()
            .rollback_index,
        2
    );
    assert_eq!(store.state().installed_rollback_index["os-image"], 2);
    store
}

#[test]
fn a_power_cut_at_every_step_leaves_a_bootable_consistent_device() {
    let new = b"new image, version 2, a little longer than the first".to_vec();
    let mut cut_at = 0;
    loop {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        store.disk.crash_after = Some(cut_at);
        match update(&mut store, &new, 2) {
            Ok(outcome) => {
                assert_eq!(outcome, Confirmation::Confirmed(Slot::B));
                assert!(cut_at > 8, "the flow has more durable steps than {cut_at}");
                break;
            }
            Err(error) => {
                assert!(error.downcast_ref::<PowerCut>().is_some(), "{error:#}");
                drop(store);
                reboot_and_check(dir.path(), &new, cut_at);
            }
        }
        cut_at += 1;
    }
}

#[test]
fn power_cuts_during_a_second_update_keep_the_first() {
    let v2 = b"version 2".to_vec();
    let v3 = b"version 3 image".to_vec();
    let mut cut_at = 0;
    loop {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        update(&mut store, &v2, 2).unwrap();
        store.disk.crash_after = Some(cut_at);
        let result = update(&mut store, &v3, 3);
        drop(store);
        let mut store = open(dir.path());
        let decision = store.boot().unwrap();
        let slot = match decision {
            BootDecision::Active(slot)
            | BootDecision::RolledBack(slot)
            | BootDecision::Trial(slot) => slot,
        };
        assert!(store.healthy(slot).unwrap(), "cut at {cut_at}");
        assert!(store.state().installed_rollback_index["os-image"] >= 2);
        if result.is_ok() {
            break;
        }
        cut_at += 1;
    }
}

#[test]
fn an_unhealthy_image_rolls_back_automatically() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let bad = [b"image v2 ".as_slice(), UNHEALTHY_MARKER].concat();
    assert_eq!(
        update(&mut store, &bad, 2).unwrap(),
        Confirmation::RolledBack(Slot::A)
    );
    assert_eq!(store.state().active, Slot::A);
    assert_eq!(store.state().installed_rollback_index["os-image"], 1);
    assert_eq!(store.boot().unwrap(), BootDecision::Active(Slot::A));
}

#[test]
fn a_trial_that_never_confirms_rolls_back_at_the_next_boot() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let new = b"image v2".to_vec();
    let mut writer = store.begin_stage(&sha256(&new)).unwrap();
    writer.write(&new).unwrap();
    store.finish_stage(writer, image(2, &new)).unwrap();
    store.switch().unwrap();
    assert_eq!(store.boot().unwrap(), BootDecision::Trial(Slot::B));
    drop(store);
    // The trial hung (no confirmation); the watchdog reboots.
    let mut store = open(dir.path());
    assert_eq!(store.boot().unwrap(), BootDecision::RolledBack(Slot::A));
    assert_eq!(store.state().active, Slot::A);
}

#[test]
fn an_abandoned_stage_switches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let mut writer = store.begin_stage(&sha256(b"image v2")).unwrap();
    writer.write(b"tampered").unwrap();
    writer.discard();
    assert!(store.switch().is_err(), "nothing staged");
    drop(store);
    let mut store = open(dir.path());
    assert_eq!(store.boot().unwrap(), BootDecision::Active(Slot::A));
    assert!(store.healthy(Slot::A).unwrap());
}

#[test]
fn a_broken_off_download_is_kept_for_its_image_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let new = b"image v2, downloaded in two parts".to_vec();
    let mut writer = store.begin_stage(&sha256(&new)).unwrap();
    writer.write(&new[..10]).unwrap();
    // The connection broke; the agent stops and starts again.
    drop(writer);
    drop(store);
    let mut store = open(dir.path());
    let mut writer = store.begin_stage(&sha256(&new)).unwrap();
    assert_eq!(writer.len().unwrap(), 10);
    let mut replayed = Vec::new();
    writer
        .replay(|piece| {
            replayed.extend_from_slice(piece);
            Ok::<(), ()>(())
        })
        .unwrap()
        .unwrap();
    assert_eq!(replayed, new[..10]);
    writer.write(&new[10..]).unwrap();
    store.finish_stage(writer, image(2, &new)).unwrap();
    store.switch().unwrap();
    assert_eq!(store.boot().unwrap(), BootDecision::Trial(Slot::B));
    assert!(store.healthy(Slot::B).unwrap());
    assert_eq!(
        store.confirm(true).unwrap(),
        Confirmation::Confirmed(Slot::B)
    );

    // A download of another image replaces one left behind, and a restart empties it.
    let v3 = b"image v3".to_vec();
    let mut writer = store.begin_stage(&sha256(&v3)).unwrap();
    writer.write(b"v3 start").unwrap();
    drop(writer);
    let v4 = b"image v4".to_vec();
    let mut writer = store.begin_stage(&sha256(&v4)).unwrap();
    assert_eq!(writer.len().unwrap(), 0);
    assert_eq!(
        std::fs::read_dir(dir.path().join(DOWNLOAD_DIR))
            .unwrap()
            .count(),
        1
    );
    writer.write(b"garbage").unwrap();
    writer.restart().unwrap();
    assert_eq!(writer.len().unwrap(), 0);
    writer.write(&v4).unwrap();
    writer.discard();
    assert_eq!(
        std::fs::read_dir(dir.path().join(DOWNLOAD_DIR))
            .unwrap()
            .count(),
        0,
        "an abandoned download leaves nothing to resume"
    );
    assert!(store.begin_stage("not a digest").is_err());

    // Whatever else is found there goes, even a directory in the image's own name.
    std::fs::create_dir_all(dir.path().join(DOWNLOAD_DIR).join(sha256(&v4)).join("x")).unwrap();
    let writer = store.begin_stage(&sha256(&v4)).unwrap();
    assert_eq!(writer.len().unwrap(), 0);
}
