//! First start: the bootstrap owner account, and the keys Command keeps in its data directory.

use std::fs::{self, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use enigm_auditlog::NoteSigner;
use enigm_crypto::{DeviceHandleKey, Ed25519SigningKey, SealingKey};
use enigm_identity::{Password, Pin};
use enigm_store::NewAdmin;
use enigm_types::{Actor, AdminId, AuditAction, AuditEvent, AuditTarget, Outcome, Role, Username};
use rand::RngCore as _;
use zeroize::Zeroizing;

use crate::state::AppState;

/// Name of the file, inside the data directory, that receives the bootstrap credentials.
pub const BOOTSTRAP_FILE: &str = "bootstrap-admin.txt";
/// The bootstrap owner's username.
pub const BOOTSTRAP_USERNAME: &str = "admin";

/// Credentials of the bootstrap owner, shown once.
pub struct BootstrapCredentials {
    pub username: Username,
    pub password: Password,
    pub pin: Pin,
}

impl BootstrapCredentials {
    pub fn generate() -> anyhow::Result<Self> {
        let mut rng = rand::rngs::OsRng;
        let password = enigm_crypto::random_password(&mut rng);
        Ok(BootstrapCredentials {
            username: Username::parse(BOOTSTRAP_USERNAME).context("bootstrap username")?,
            password: Password::parse(secrecy::ExposeSecret::expose_secret(&password))
                .context("generated password")?,
            pin: Pin::random(&mut rng),
        })
    }

    /// The `username:` / `password:` / `pin:` lines of the bootstrap file.
    pub fn to_file_text(&self) -> String {
        format!(
            "username: {}\npassword: {}\npin: {}\n",
            self.username,
            self.password.expose(),
            self.pin.expose()
        )
    }
}

/// Creates an owner account with a PIN, audited as done by the system. Used at first start and
/// by tests.
pub async fn create_owner(
    state: &AppState,
    credentials: &BootstrapCredentials,
) -> anyhow::Result<AdminId> {
    let password_hash = state
        .hash_secret(credentials.password.expose().as_bytes().to_vec())
        .await
        .map_err(api_error)?;
    let pin_hash = state
        .hash_secret(credentials.pin.expose().as_bytes().to_vec())
        .await
        .map_err(api_error)?;
    let now = state.now();
    let admin = NewAdmin {
        id: AdminId::random(),
        username: credentials.username.clone(),
        password_hash: password_hash.as_str().to_owned(),
        pin_hash: Some(pin_hash.as_str().to_owned()),
        created_at: now,
    };
    let mut tx = state.store().begin().await?;
    tx.insert_admin(&admin).await?;
    tx.grant_role(admin.id, Role::Owner, now, None).await?;
    let event = AuditEvent::new(
        now,
        Actor::System,
        AuditAction::BootstrapOwner,
        AuditTarget::Account {
            admin: Some(admin.id),
        },
        Outcome::Success,
    );
    tx.append_audit(&event).await?;
    tx.commit().await?;
    Ok(admin.id)
}

fn api_error(error: crate::error::ApiError) -> anyhow::Error {
    anyhow::anyhow!("hashing failed ({})", error.code())
}

/// On a database without administrators: writes the credentials file (mode 0600, refusing to
/// overwrite one) and then creates the owner. Returns the credentials to print once.
pub async fn bootstrap_if_empty(
    state: &AppState,
    data_dir: &Path,
) -> anyhow::Result<Option<BootstrapCredentials>> {
    if state.store().count_admins().await? > 0 {
        return Ok(None);
    }
    let credentials = BootstrapCredentials::generate()?;
    let path = data_dir.join(BOOTSTRAP_FILE);
    write_secret_file(&path, credentials.to_file_text().as_bytes()).with_context(|| {
        format!(
            "cannot write the bootstrap credentials to `{}` (remove a stale file first)",
            path.display()
        )
    })?;
    if let Err(error) = create_owner(state, &credentials).await {
        let _removed = fs::remove_file(&path);
        return Err(error.context("cannot create the bootstrap owner"));
    }
    Ok(Some(credentials))
}

/// Creates the data directory (mode 0700) if needed.
pub fn prepare_data_dir(data_dir: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .with_context(|| format!("cannot create data directory `{}`", data_dir.display()))?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir.join("keys"))
        .context("cannot create key directory")?;
    Ok(())
}

/// Loads the key that seals TOTP secrets at rest, creating it (mode 0600) on first start.
pub fn load_or_create_sealing_key(data_dir: &Path) -> anyhow::Result<SealingKey> {
    let path: PathBuf = data_dir.join("keys").join("sealing.key");
    if path.exists() {
        let metadata = fs::metadata(&path).context("sealing key")?;
        if metadata.permissions().mode() & 0o077 != 0 {
            anyhow::bail!(
                "`{}` is readable by other users: chmod 600 it",
                path.display()
            );
        }
        let mut bytes = Vec::with_capacity(32);
        fs::File::open(&path)
            .and_then(|mut file| file.read_to_end(&mut bytes))
            .context("cannot read sealing key")?;
        return SealingKey::from_bytes(&bytes).context("sealing key file is malformed");
    }
    let key = SealingKey::generate(&mut rand::rngs::OsRng);
    write_secret_file(&path, &key.to_bytes()).context("cannot write sealing key")?;
    Ok(key)
}

/// The device handle key's file. Handles are a keyed hash of device keys under it: losing it
/// changes every handle, so it is kept like the sealing key.
pub const DEVICE_HANDLE_KEY_FILE: &str = "device-handle.key";

/// Loads the key device handles are derived with, creating it (mode 0600) on first start.
pub fn load_or_create_device_handle_key(data_dir: &Path) -> anyhow::Result<DeviceHandleKey> {
    let path: PathBuf = data_dir.join("keys").join(DEVICE_HANDLE_KEY_FILE);
    if path.exists() {
        let metadata = fs::metadata(&path).context("device handle key")?;
        if metadata.permissions().mode() & 0o077 != 0 {
            anyhow::bail!(
                "`{}` is readable by other users: chmod 600 it",
                path.display()
            );
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(32));
        fs::File::open(&path)
            .and_then(|mut file| file.read_to_end(&mut bytes))
            .context("cannot read device handle key")?;
        return DeviceHandleKey::from_bytes(&bytes).context("device handle key file is malformed");
    }
    let key = DeviceHandleKey::generate(&mut rand::rngs::OsRng);
    write_secret_file(&path, &key.to_bytes()).context("cannot write device handle key")?;
    Ok(key)
}

/// The log key's file: a C2SP signed-note private key string. Never in the database.
pub const LOG_KEY_FILE: &str = "audit-log.key";
/// The verifier key string beside it, for `enigm audit key` and auditors.
pub const LOG_VERIFIER_FILE: &str = "audit-log.pub";

/// Loads the key that signs audit checkpoints, creating it (mode 0600) on first start under a
/// fresh name, which is also the log's origin. Writes the public verifier key beside it.
pub fn load_or_create_log_key(data_dir: &Path) -> anyhow::Result<NoteSigner> {
    let keys = data_dir.join("keys");
    let path = keys.join(LOG_KEY_FILE);
    let signer = if path.exists() {
        let metadata = fs::metadata(&path).context("audit log key")?;
        if metadata.permissions().mode() & 0o077 != 0 {
            anyhow::bail!(
                "`{}` is readable by other users: chmod 600 it",
                path.display()
            );
        }
        let text =
            Zeroizing::new(fs::read_to_string(&path).context("cannot read the audit log key")?);
        NoteSigner::from_key_string(text.trim_end()).context("audit log key file is malformed")?
    } else {
        let mut rng = rand::rngs::OsRng;
        let mut suffix = [0u8; 8];
        rng.fill_bytes(&mut suffix);
        let name: String = suffix.iter().map(|byte| format!("{byte:02x}")).collect();
        let signer = NoteSigner::new(
            &format!("enigm-command/audit/{name}"),
            Ed25519SigningKey::generate(&mut rng),
        )
        .context("cannot name the audit log key")?;
        let mut text = signer
            .to_key_string()
            .context("a software audit log key has a key string")?;
        text.push('\n');
        write_secret_file(&path, text.as_bytes()).context("cannot write the audit log key")?;
        signer
    };
    let verifier = format!("{}\n", signer.verifier().to_key_string());
    let public = keys.join(LOG_VERIFIER_FILE);
    if fs::read_to_string(&public).ok().as_deref() != Some(verifier.as_str()) {
        fs::write(&public, verifier).context("cannot write the audit log verifier key")?;
    }
    Ok(signer)
}

/// Writes a new file readable only by its owner; never replaces an existing file.
fn write_secret_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// The online OTA keys' files (32-byte Ed25519 seeds, mode 0600). Never in the database.
pub const OTA_SNAPSHOT_KEY_FILE: &str = "ota-snapshot.key";
pub const OTA_TIMESTAMP_KEY_FILE: &str = "ota-timestamp.key";

/// Loads Command's online snapshot and timestamp keys, creating them on first start.
pub fn load_or_create_ota_online_keys(data_dir: &Path) -> anyhow::Result<crate::ota::OnlineKeys> {
    let load = |file: &str| -> anyhow::Result<Ed25519SigningKey> {
        let path = data_dir.join("keys").join(file);
        if path.exists() {
            let metadata = fs::metadata(&path).context("OTA online key")?;
            if metadata.permissions().mode() & 0o077 != 0 {
                anyhow::bail!(
                    "`{}` is readable by other users: chmod 600 it",
                    path.display()
                );
            }
            let mut bytes = Zeroizing::new(Vec::with_capacity(32));
            fs::File::open(&path)
                .and_then(|mut file| file.read_to_end(&mut bytes))
                .context("cannot read an OTA online key")?;
            let seed: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| anyhow::anyhow!("`{}` is not a 32-byte key", path.display()))?;
            return Ok(Ed25519SigningKey::from_seed(&seed));
        }
        let key = Ed25519SigningKey::generate(&mut rand::rngs::OsRng);
        write_secret_file(&path, &key.seed()[..]).context("cannot write an OTA online key")?;
        Ok(key)
    };
    let online_key = |file: &str| {
        load(file).map(|key| crate::ota::OnlineKey::File(enigm_ota::SoftwareSigner::Ed25519(key)))
    };
    Ok(crate::ota::OnlineKeys {
        snapshot: online_key(OTA_SNAPSHOT_KEY_FILE)?,
        timestamp: online_key(OTA_TIMESTAMP_KEY_FILE)?,
    })
}

/// The labels of the online keys in a PKCS#11 token.
pub const OTA_SNAPSHOT_KEY_LABEL: &str = "enigm-ota-snapshot";
pub const OTA_TIMESTAMP_KEY_LABEL: &str = "enigm-ota-timestamp";

/// Opens the token and finds the online keys in it, generating them (Ed25519, on the token,
/// not extractable) at the first start. The session stays open for as long as Command runs.
pub fn load_or_create_ota_online_keys_on_token(
    token: &crate::config::OnlineKeyToken,
) -> anyhow::Result<crate::ota::OnlineKeys> {
    use enigm_crypto::pkcs11::{Pkcs11KeyAlgorithm, Pkcs11Token};
    let opened = Pkcs11Token::open(&token.module, &token.token_label, token.pin.clone())
        .with_context(|| {
            format!(
                "cannot open the PKCS#11 token `{}` for the OTA online keys",
                token.token_label
            )
        })?;
    let key = |label: &str| -> anyhow::Result<crate::ota::OnlineKey> {
        let key = match opened.find_key(label)? {
            Some(key) => key,
            None => {
                tracing::info!(label, "generating an OTA online key on the PKCS#11 token");
                opened.generate_key(label, Pkcs11KeyAlgorithm::Ed25519)?
            }
        };
        anyhow::ensure!(
            key.private_is_protected()?,
            "the token gives out the private half of `{label}`: it must be sensitive and not \
             extractable"
        );
        Ok(crate::ota::OnlineKey::Token(key))
    };
    Ok(crate::ota::OnlineKeys {
        snapshot: key(OTA_SNAPSHOT_KEY_LABEL)?,
        timestamp: key(OTA_TIMESTAMP_KEY_LABEL)?,
    })
}
