//! The device's A/B slots under the state directory (`ota/`): `slot-a.img`, `slot-b.img` and
//! `boot-control.json`, driven by `enigm_ota::slots`.
//!
//! Every durable step is a write to a temporary file, `fsync`, `rename`, `fsync` of the
//! directory, so a power cut leaves either the old or the new file, never half of one. The order
//! of steps keeps the device bootable at every point: the inactive slot is first marked empty,
//! then its file is written, then recorded as staged; only then may the switch be persisted;
//! the active slot's file is never written while it is active. [`Disk`] carries a crash plan
//! so that tests can cut the power before any step and reopen the store, as a reboot would.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use enigm_ota::slots::{BootControl, BootDecision, Confirmation, Slot, SlotImage};

const BOOT_CONTROL: &str = "boot-control.json";

/// Where the power is cut (tests), counted in durable steps.
#[derive(Debug, Default)]
pub(crate) struct Disk {
    /// Steps left before the cut; `None`: never.
    pub(crate) crash_after: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
#[error("power cut (simulated)")]
pub(crate) struct PowerCut;

impl Disk {
    fn step(&mut self) -> anyhow::Result<()> {
        match self.crash_after.as_mut() {
            Some(0) => Err(PowerCut.into()),
            Some(left) => {
                *left -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

pub(crate) struct SlotStore {
    dir: PathBuf,
    state: BootControl,
    pub(crate) disk: Disk,
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("cannot sync `{}`", dir.display()))
}

impl SlotStore {
    /// Opens (or provisions, with `factory` in slot A) the slots under `dir`, and recovers from
    /// an interrupted step: stray temporary files are removed.
    pub(crate) fn open(
        dir: &Path,
        factory: impl FnOnce() -> anyhow::Result<(Vec<u8>, SlotImage)>,
    ) -> anyhow::Result<SlotStore> {
        fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|ext| ext == "partial") {
                fs::remove_file(&path)?;
            }
        }
        let control = dir.join(BOOT_CONTROL);
        let mut store = if control.exists() {
            let text = fs::read(&control).context("cannot read the boot control")?;
            let state: BootControl =
                serde_json::from_slice(&text).context("the boot control is corrupt")?;
            SlotStore {
                dir: dir.to_path_buf(),
                state,
                disk: Disk::default(),
            }
        } else {
            let (bytes, image) = factory()?;
            let mut store = SlotStore {
                dir: dir.to_path_buf(),
                state: BootControl::provisioned(image),
                disk: Disk::default(),
            };
            store.write_file(&store.slot_path(Slot::A), &bytes)?;
            let state = store.state.clone();
            store.persist(&state)?;
            store
        };
        store.disk = Disk::default();
        Ok(store)
    }

    pub(crate) fn state(&self) -> &BootControl {
        &self.state
    }

    pub(crate) fn slot_path(&self, slot: Slot) -> PathBuf {
        self.dir.join(format!("slot-{}.img", slot.name()))
    }

    fn write_file(&mut self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        let partial = path.with_extension("partial");
        self.disk.step()?;
        let mut file = File::create(&partial)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        self.disk.step()?;
        fs::rename(&partial, path)?;
        sync_dir(&self.dir)
    }

    fn persist(&mut self, next: &BootControl) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(next)?;
        self.write_file(&self.dir.join(BOOT_CONTROL), &bytes)?;
        self.state = next.clone();
        Ok(())
    }

    /// Starts writing the inactive slot: it is marked empty first (durably).
    pub(crate) fn begin_stage(&mut self) -> anyhow::Result<StageWriter> {
        let next = self.state.clearing_inactive()?;
        self.persist(&next)?;
        self.disk.step()?;
        let path = self
            .slot_path(self.state.inactive())
            .with_extension("partial");
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        Ok(StageWriter { file, path })
    }

    /// Completes a staged write whose content was verified: synced, renamed into the inactive
    /// slot, and recorded.
    pub(crate) fn finish_stage(
        &mut self,
        writer: StageWriter,
        image: SlotImage,
    ) -> anyhow::Result<()> {
        writer.file.sync_all()?;
        drop(writer.file);
        self.disk.step()?;
        fs::rename(&writer.path, self.slot_path(self.state.inactive()))?;
        sync_dir(&self.dir)?;
        let next = self.state.staged(image)?;
        self.persist(&next)
    }

    /// Abandons a staged write (verification failed): nothing is switched.
    pub(crate) fn abandon_stage(&mut self, writer: StageWriter) {
        drop(writer.file);
        let _ = fs::remove_file(&writer.path);
    }

    /// The atomic switch to the staged slot.
    pub(crate) fn switch(&mut self) -> anyhow::Result<()> {
        let next = self.state.switched()?;
        self.persist(&next)
    }

    /// A (simulated) boot: persists the trial attempt first, then answers which slot boots.
    pub(crate) fn boot(&mut self) -> anyhow::Result<BootDecision> {
        let (next, decision) = self.state.boot();
        if next != self.state {
            self.persist(&next)?;
        }
        Ok(decision)
    }

    /// Ends a trial with the health check's verdict.
    pub(crate) fn confirm(&mut self, healthy: bool) -> anyhow::Result<Confirmation> {
        let (next, outcome) = self.state.confirmed(healthy)?;
        self.persist(&next)?;
        Ok(outcome)
    }

    /// The health check of a (simulated) booted slot: its file is the image the state records
    /// (length and SHA-256), and it is not marked unhealthy. A real device runs its boot
    /// checks here; the marker lets tests and demos ship an image that fails.
    pub(crate) fn healthy(&self, slot: Slot) -> anyhow::Result<bool> {
        let Some(image) = self.state.image(slot) else {
            return Ok(false);
        };
        let mut file = File::open(self.slot_path(slot))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let intact = bytes.len() as u64 == image.length
            && hex::encode(enigm_crypto::sha256(&bytes)) == image.sha256;
        let marked = bytes
            .windows(UNHEALTHY_MARKER.len())
            .any(|window| window == UNHEALTHY_MARKER);
        Ok(intact && !marked)
    }
}

/// Images containing this fail the simulated health check.
pub(crate) const UNHEALTHY_MARKER: &[u8] = b"ENIGM-SIMULATE-UNHEALTHY";

/// The file the inactive slot is being written to.
pub(crate) struct StageWriter {
    file: File,
    path: PathBuf,
}

impl StageWriter {
    pub(crate) fn write(&mut self, chunk: &[u8]) -> anyhow::Result<()> {
        self.file.write_all(chunk).context("cannot write the slot")
    }
}

#[cfg(test)]
mod tests;
