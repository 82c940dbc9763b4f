//! The device's A/B slots under the state directory (`ota/`): `slot-a.img`, `slot-b.img` and
//! `boot-control.json`, driven by `enigm_ota::slots`; and `download/<sha256>`, the image being
//! downloaded for the inactive slot, kept across restarts so that a broken download resumes.
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
/// The directory of the download in progress, named by the image's SHA-256.
const DOWNLOAD_DIR: &str = "download";

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

    /// Starts writing the inactive slot with the image whose SHA-256 is `sha256`: the slot is
    /// marked empty first (durably). What an earlier, broken-off download of the same image
    /// wrote is kept ([`StageWriter::len`]; the caller checks it again before trusting it), and
    /// downloads of any other image are removed.
    pub(crate) fn begin_stage(&mut self, sha256: &str) -> anyhow::Result<StageWriter> {
        let next = self.state.clearing_inactive()?;
        self.persist(&next)?;
        self.disk.step()?;
        StageWriter::open_in(&self.dir.join(DOWNLOAD_DIR), sha256)
    }

    /// Completes a staged write whose content was verified: synced, renamed into the inactive
    /// slot, and recorded.
    pub(crate) fn finish_stage(
        &mut self,
        writer: StageWriter,
        image: SlotImage,
    ) -> anyhow::Result<()> {
        self.disk.step()?;
        writer.commit(&self.slot_path(self.state.inactive()))?;
        let next = self.state.staged(image)?;
        self.persist(&next)
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

/// A download being written: the image for the inactive slot, or a bundle.
pub(crate) struct StageWriter {
    file: File,
    path: PathBuf,
}

impl StageWriter {
    /// Opens `dir/<sha256>` for the image whose SHA-256 is `sha256`, keeping what an earlier,
    /// broken-off download of the same image wrote ([`StageWriter::len`]; the caller checks it
    /// again before trusting it) and removing everything else in `dir`.
    pub(crate) fn open_in(dir: &Path, sha256: &str) -> anyhow::Result<StageWriter> {
        let is_digest = sha256.len() == 64
            && sha256
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
        anyhow::ensure!(
            is_digest,
            "an image is staged under its SHA-256 in lower-case hex"
        );
        fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_name() == sha256 && entry.file_type()?.is_file() {
                continue;
            }
            if entry.file_type()?.is_dir() {
                fs::remove_dir_all(entry.path())?;
            } else {
                fs::remove_file(entry.path())?;
            }
        }
        let path = dir.join(sha256);
        // Append: a resumed download continues where the last one stopped.
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        Ok(StageWriter { file, path })
    }

    /// Makes a verified download `destination` (on the same file system): synced, renamed, and
    /// both directories synced, so that a power cut leaves the old file or the whole new one.
    pub(crate) fn commit(self, destination: &Path) -> anyhow::Result<()> {
        self.file.sync_all()?;
        drop(self.file);
        fs::rename(&self.path, destination)?;
        for dir in [destination.parent(), self.path.parent()]
            .into_iter()
            .flatten()
        {
            sync_dir(dir)?;
        }
        Ok(())
    }

    /// Drops a download that did not verify: nothing of it is kept to resume from.
    pub(crate) fn discard(self) {
        drop(self.file);
        let _ = fs::remove_file(&self.path);
    }

    pub(crate) fn write(&mut self, chunk: &[u8]) -> anyhow::Result<()> {
        self.file.write_all(chunk).context("cannot write the slot")
    }

    /// Bytes written so far, by this writer and by broken-off downloads of the same image.
    pub(crate) fn len(&self) -> anyhow::Result<u64> {
        Ok(self
            .file
            .metadata()
            .context("cannot read the download")?
            .len())
    }

    /// Drops everything written: the download starts again from its first byte.
    pub(crate) fn restart(&mut self) -> anyhow::Result<()> {
        self.file.set_len(0).context("cannot truncate the download")
    }

    /// Hands what was written so far to `check`, in order and in pieces of at most 1 MiB
    /// (to hash a resumed download's first part again before more is added to it).
    pub(crate) fn replay<E>(
        &self,
        mut check: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> anyhow::Result<Result<(), E>> {
        let mut file = File::open(&self.path).context("cannot read the download")?;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let read = file.read(&mut buffer).context("cannot read the download")?;
            let Some(piece) = buffer.get(..read).filter(|piece| !piece.is_empty()) else {
                return Ok(Ok(()));
            };
            if let Err(error) = check(piece) {
                return Ok(Err(error));
            }
        }
    }
}

#[cfg(test)]
mod tests;
