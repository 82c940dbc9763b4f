//! Policy and configuration bundles on the device, under `ota/bundles/` in the state directory.
//!
//! A bundle is verified exactly as an OS image is (a target of verified TUF metadata, its
//! payload signature under the root's release keys, channel, hardware, expiry, a rollback index
//! not below the installed one, length and SHA-256 as it streams), then installed whole:
//! `<kind>` is the bundle in force and `installed.json` records what it is (name, version,
//! rollback index, digest). A bundle has no A/B slots and no trial boot: whoever reads it reads
//! a complete, verified file or the previous one.
//!
//! The file is replaced before the record, so a power cut between the two leaves the new file
//! under the old record, and the next attempt, seeing another digest, installs it again. The
//! other order could leave a record whose rollback index blocks the very file it names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use enigm_ota::slots::SlotImage;

use crate::ota::write_atomically;
use crate::slots::StageWriter;

/// The kinds of release installed as bundles (the OS image goes into the A/B slots).
pub(crate) const BUNDLE_KINDS: [&str; 2] = ["policy-bundle", "configuration-bundle"];

const INSTALLED: &str = "installed.json";
const DOWNLOAD_DIR: &str = "download";

/// What is installed, per kind.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Installed {
    bundles: BTreeMap<String, SlotImage>,
}

pub(crate) struct BundleStore {
    dir: PathBuf,
    installed: Installed,
}

impl BundleStore {
    /// Opens the bundles under `dir`; a record that cannot be read stops the update (it holds
    /// the rollback indexes, which must never be guessed).
    pub(crate) fn open(dir: &Path) -> anyhow::Result<BundleStore> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
        let record = dir.join(INSTALLED);
        let installed = match std::fs::read(&record) {
            Ok(bytes) => serde_json::from_slice(&bytes).context("the bundle record is corrupt")?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Installed::default(),
            Err(error) => return Err(error).context("cannot read the bundle record"),
        };
        Ok(BundleStore {
            dir: dir.to_path_buf(),
            installed,
        })
    }

    /// The installed bundle of `kind`.
    pub(crate) fn installed(&self, kind: &str) -> Option<&SlotImage> {
        self.installed.bundles.get(kind)
    }

    /// The rollback index installed per bundle kind.
    pub(crate) fn installed_rollback_indexes(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        self.installed
            .bundles
            .iter()
            .map(|(kind, image)| (kind.clone(), image.rollback_index))
    }

    /// Where the bundle of `kind` in force is.
    pub(crate) fn path(&self, kind: &str) -> PathBuf {
        self.dir.join(kind)
    }

    /// Starts the download of the bundle whose SHA-256 is `sha256`.
    pub(crate) fn begin(&self, sha256: &str) -> anyhow::Result<StageWriter> {
        StageWriter::open_in(&self.dir.join(DOWNLOAD_DIR), sha256)
    }

    /// Installs a verified download as the bundle of its kind, then records it.
    pub(crate) fn install(&mut self, writer: StageWriter, image: SlotImage) -> anyhow::Result<()> {
        anyhow::ensure!(
            BUNDLE_KINDS.contains(&image.kind.as_str()),
            "`{}` is not a kind of bundle",
            image.kind
        );
        writer.commit(&self.path(&image.kind))?;
        let mut next = self.installed.clone();
        next.bundles.insert(image.kind.clone(), image);
        write_atomically(
            &self.dir.join(INSTALLED),
            &serde_json::to_vec_pretty(&next)?,
        )?;
        self.installed = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn image(kind: &str, rollback_index: u64, bytes: &[u8]) -> SlotImage {
        SlotImage {
            target_name: format!("{kind}/v{rollback_index}.json"),
            kind: kind.to_owned(),
            release_version: rollback_index.to_string(),
            rollback_index,
            sha256: hex::encode(enigm_crypto::sha256(bytes)),
            length: bytes.len() as u64,
        }
    }

    fn install(store: &mut BundleStore, image: SlotImage, bytes: &[u8]) {
        let mut writer = store.begin(&image.sha256).unwrap();
        writer.write(bytes).unwrap();
        store.install(writer, image).unwrap();
    }

    #[test]
    fn bundles_are_installed_whole_and_recorded_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = BundleStore::open(dir.path()).unwrap();
        assert!(store.installed("policy-bundle").is_none());
        install(
            &mut store,
            image("policy-bundle", 3, b"policy 3"),
            b"policy 3",
        );
        install(
            &mut store,
            image("configuration-bundle", 1, b"config"),
            b"config",
        );
        install(
            &mut store,
            image("policy-bundle", 4, b"policy 4"),
            b"policy 4",
        );

        let store = BundleStore::open(dir.path()).unwrap();
        assert_eq!(
            std::fs::read(store.path("policy-bundle")).unwrap(),
            b"policy 4"
        );
        assert_eq!(
            std::fs::read(store.path("configuration-bundle")).unwrap(),
            b"config"
        );
        assert_eq!(store.installed("policy-bundle").unwrap().rollback_index, 4);
        assert_eq!(
            store.installed_rollback_indexes().collect::<Vec<_>>(),
            [
                ("configuration-bundle".to_owned(), 1),
                ("policy-bundle".to_owned(), 4)
            ]
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join(DOWNLOAD_DIR))
                .unwrap()
                .count(),
            0,
            "nothing is left in downloads"
        );
    }

    #[test]
    fn only_bundle_kinds_install_and_a_corrupt_record_stops_the_update() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = BundleStore::open(dir.path()).unwrap();
        let os = image("os-image", 2, b"os");
        let writer = store.begin(&os.sha256).unwrap();
        assert!(store.install(writer, os).is_err());
        assert!(store.installed("os-image").is_none());

        std::fs::write(dir.path().join(INSTALLED), b"{\"bundles\": 7}").unwrap();
        let error = BundleStore::open(dir.path()).err().unwrap();
        assert!(format!("{error:#}").contains("corrupt"), "{error:#}");
    }
}
