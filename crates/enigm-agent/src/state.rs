//! The agent's state directory: `device.key` (the 32-byte Ed25519 seed), `enrollment.json`,
//! `tsc.json` (the last evaluation) and `setup.json` (the setup steps done). Everything in it is private to the agent's user: the
//! directory is created with mode 0700, files with 0600, and a key or directory that others can
//! read is refused rather than used. Files are replaced atomically (temporary file + rename), so
//! a crash never leaves half a record behind.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use enigm_crypto::{ED25519_KEY_LEN, Ed25519SigningKey};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::core::Enrollment;
use crate::core::TscRecord;
use crate::setup::SetupRecord;

const KEY_FILE: &str = "device.key";
const ENROLLMENT_FILE: &str = "enrollment.json";
/// The simulated hardware attestation key (PKCS#8 PEM), with a development attestation root.
const ATTESTED_KEY_FILE: &str = "attested-key.pem";
pub const TSC_FILE: &str = "tsc.json";
/// The setup steps done on this device (`enigm agent-setup`).
const SETUP_FILE: &str = "setup.json";
/// The device's WireGuard private key (32 bytes), generated on first use; never sent.
const WIREGUARD_KEY_FILE: &str = "wireguard.key";
/// The device's VPN switches: the last sequence used and the assignment in force.
const VPN_FILE: &str = "vpn.json";
/// The `wg-quick` configuration of the assignment in force, with the private key (0600).
pub const VPN_CONFIG_FILE: &str = "wireguard-enigm0.conf";
/// The state records are small; a larger file is not ours.
const MAX_RECORD_BYTES: u64 = 1024 * 1024;

/// A state directory or key file that the agent refuses to use.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("`{path}` is accessible by other users (mode {mode:o}): run `chmod {want:o} {path}`")]
    TooOpen { path: String, mode: u32, want: u32 },
    #[error("`{0}` is not a key (expected 32 bytes)")]
    BadKey(String),
}

/// An opened state directory.
#[derive(Debug)]
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    /// Creates the directory (mode 0700) or checks that an existing one is private.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .with_context(|| {
                format!("could not create the state directory `{}`", path.display())
            })?;
        check_private(path, 0o700)?;
        Ok(StateDir {
            path: path.to_path_buf(),
        })
    }

    /// The device key: loaded, or generated on first use (created exclusively, mode 0600).
    pub fn device_key(&self) -> anyhow::Result<Ed25519SigningKey> {
        let seed = self.key_bytes(KEY_FILE, "device key", || {
            *Ed25519SigningKey::generate(&mut rand::rngs::OsRng).seed()
        })?;
        Ok(Ed25519SigningKey::from_seed(&seed))
    }

    /// The WireGuard key: loaded, or generated on first use (created exclusively, mode 0600).
    pub fn wireguard_key(&self) -> anyhow::Result<enigm_crypto::wireguard::WireGuardSecret> {
        use enigm_crypto::wireguard::WireGuardSecret;
        let bytes = self.key_bytes(WIREGUARD_KEY_FILE, "WireGuard key", || {
            *WireGuardSecret::generate(&mut rand::rngs::OsRng).to_bytes()
        })?;
        Ok(WireGuardSecret::from_bytes(&bytes))
    }

    /// The 32 bytes of the key file `name`: created exclusively with mode 0600 from `generate`
    /// on first use (so two agents starting at once cannot both write one), loaded afterwards
    /// (refused when others can read it, or when it is not 32 bytes).
    fn key_bytes(
        &self,
        name: &str,
        what: &str,
        generate: impl FnOnce() -> [u8; ED25519_KEY_LEN],
    ) -> anyhow::Result<zeroize::Zeroizing<[u8; ED25519_KEY_LEN]>> {
        let path = self.path.join(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut file) => {
                let bytes = zeroize::Zeroizing::new(generate());
                file.write_all(bytes.as_slice())
                    .and_then(|()| file.sync_all())
                    .with_context(|| format!("could not write the {what} `{}`", path.display()))?;
                Ok(bytes)
            }
            Err(error) if error.kind() == ErrorKind::AlreadyExists => load_key(&path),
            Err(error) => Err(error)
                .with_context(|| format!("could not create the {what} `{}`", path.display())),
        }
    }

    pub fn vpn(&self) -> anyhow::Result<Option<crate::vpn::VpnRecord>> {
        read_record(&self.path.join(VPN_FILE))
    }

    pub fn write_vpn(&self, record: &crate::vpn::VpnRecord) -> anyhow::Result<()> {
        write_record(&self.path.join(VPN_FILE), record)
    }

    /// Writes the tunnel configuration (with the private key) atomically, mode 0600; `None`
    /// removes it (the device left the VPN).
    pub fn write_vpn_config(&self, config: Option<&str>) -> anyhow::Result<PathBuf> {
        let path = self.path.join(VPN_CONFIG_FILE);
        match config {
            Some(config) => write_private(&path, config.as_bytes())?,
            None => match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(error)
                        .with_context(|| format!("could not remove `{}`", path.display()));
                }
            },
        }
        Ok(path)
    }

    /// The simulated hardware-backed attestation key: loaded, or generated on first use
    /// (created exclusively, mode 0600). Pairing pins it, so it lives as long as the device key.
    pub fn attested_key(&self) -> anyhow::Result<enigm_attest::dev::DevAttestedKey> {
        let path = self.path.join(ATTESTED_KEY_FILE);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut file) => {
                let key = enigm_attest::dev::DevAttestedKey::generate()
                    .context("could not generate an attestation key")?;
                file.write_all(key.to_pem().as_bytes())
                    .and_then(|()| file.sync_all())
                    .with_context(|| format!("could not write `{}`", path.display()))?;
                Ok(key)
            }
            Err(error) if error.kind() == ErrorKind::AlreadyExists => {
                check_private(&path, 0o600)?;
                let pem = std::fs::read_to_string(&path)
                    .with_context(|| format!("could not read `{}`", path.display()))?;
                enigm_attest::dev::DevAttestedKey::from_pem(&pem)
                    .map_err(|_| StateError::BadKey(path.display().to_string()).into())
            }
            Err(error) => {
                Err(error).with_context(|| format!("could not create `{}`", path.display()))
            }
        }
    }

    pub fn enrollment(&self) -> anyhow::Result<Option<Enrollment>> {
        read_record(&self.path.join(ENROLLMENT_FILE))
    }

    pub fn write_enrollment(&self, enrollment: &Enrollment) -> anyhow::Result<()> {
        write_record(&self.path.join(ENROLLMENT_FILE), enrollment)
    }

    pub fn write_tsc(&self, record: &TscRecord) -> anyhow::Result<()> {
        write_record(&self.path.join(TSC_FILE), record)
    }

    pub fn setup(&self) -> anyhow::Result<Option<SetupRecord>> {
        read_record(&self.path.join(SETUP_FILE))
    }

    pub fn write_setup(&self, record: &SetupRecord) -> anyhow::Result<()> {
        write_record(&self.path.join(SETUP_FILE), record)
    }

    /// The simulated remote wipe: deletes the device key, the enrollment and the last
    /// evaluation (the directory itself stays). A missing file is already wiped.
    pub fn wipe(&self) -> anyhow::Result<()> {
        // A wiped device is set up again from the start.
        for name in [
            KEY_FILE,
            ATTESTED_KEY_FILE,
            ENROLLMENT_FILE,
            TSC_FILE,
            SETUP_FILE,
        ] {
            let path = self.path.join(name);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(error)
                        .with_context(|| format!("could not wipe `{}`", path.display()));
                }
            }
        }
        Ok(())
    }
}

fn load_key(path: &Path) -> anyhow::Result<zeroize::Zeroizing<[u8; ED25519_KEY_LEN]>> {
    check_private(path, 0o600)?;
    let file = std::fs::File::open(path)
        .with_context(|| format!("could not open the key `{}`", path.display()))?;
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(ED25519_KEY_LEN));
    file.take(ED25519_KEY_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("could not read the key `{}`", path.display()))?;
    let key: [u8; ED25519_KEY_LEN] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| StateError::BadKey(path.display().to_string()))?;
    Ok(zeroize::Zeroizing::new(key))
}

/// Refuses a path whose group or other permission bits are set.
fn check_private(path: &Path, want: u32) -> anyhow::Result<()> {
    let metadata = std::fs::metadata(path)
        .with_context(|| format!("could not read the metadata of `{}`", path.display()))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(StateError::TooOpen {
            path: path.display().to_string(),
            mode,
            want,
        }
        .into());
    }
    Ok(())
}

/// Reads a JSON record; `None` when the file does not exist.
pub fn read_record<T: DeserializeOwned>(path: &Path) -> anyhow::Result<Option<T>> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(error).with_context(|| format!("could not open `{}`", path.display()));
        }
    };
    let mut text = String::new();
    file.take(MAX_RECORD_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("could not read `{}`", path.display()))?;
    if text.len() as u64 > MAX_RECORD_BYTES {
        anyhow::bail!(
            "`{}` is larger than {MAX_RECORD_BYTES} bytes",
            path.display()
        );
    }
    let value = serde_json::from_str(&text)
        .with_context(|| format!("`{}` is not a valid agent record", path.display()))?;
    Ok(Some(value))
}

/// Writes a JSON record atomically with mode 0600: a temporary file beside it, then a rename.
fn write_record<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).context("could not encode the record")?;
    bytes.push(b'\n');
    write_private(path, &bytes)
}

/// Writes `bytes` atomically with mode 0600: a temporary file beside it, then a rename.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        });
    written.with_context(|| format!("could not write `{}`", temporary.display()))?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("could not replace `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_private_once_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(&dir.path().join("state")).unwrap();
        let mode = std::fs::metadata(dir.path().join("state"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        let first = state.device_key().unwrap();
        let key_path = dir.path().join("state").join(KEY_FILE);
        let key_mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(key_mode & 0o777, 0o600);
        assert_eq!(std::fs::read(&key_path).unwrap().len(), ED25519_KEY_LEN);
        let again = state.device_key().unwrap();
        assert_eq!(
            first.verifying_key().to_bytes(),
            again.verifying_key().to_bytes()
        );
    }

    #[test]
    fn key_or_directory_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let state = StateDir::open(&path).unwrap();
        state.device_key().unwrap();
        let key_path = path.join(KEY_FILE);
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = state.device_key().unwrap_err();
        assert!(error.to_string().contains("chmod 600"), "{error}");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let error = StateDir::open(&path).unwrap_err();
        assert!(error.to_string().contains("chmod 700"), "{error}");
    }

    #[test]
    fn key_of_the_wrong_length_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(&dir.path().join("state")).unwrap();
        let key_path = dir.path().join("state").join(KEY_FILE);
        std::fs::write(&key_path, [7u8; 31]).unwrap();
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let error = state.device_key().unwrap_err();
        assert!(error.to_string().contains("is not a key"), "{error}");
    }

    #[test]
    fn records_are_replaced_atomically_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("record.json");
        write_record(&path, &serde_json::json!({"n": 1})).unwrap();
        write_record(&path, &serde_json::json!({"n": 2})).unwrap();
        let value: serde_json::Value = read_record(&path).unwrap().unwrap();
        assert_eq!(value["n"], 2);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!path.with_extension("json.tmp").exists());
        let missing: Option<serde_json::Value> =
            read_record(&dir.path().join("missing.json")).unwrap();
        assert!(missing.is_none());
    }
}
