//! First start: the bootstrap owner account, the keys Command keeps in its key directory or on
//! a PKCS#11 token, and the lock that keeps a SQLite database to one process.

use std::fs::{self, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use enigm_auditlog::NoteSigner;
use enigm_crypto::{AuditEventKey, DeviceHandleKey, Ed25519SigningKey, SealingKey};
use enigm_identity::{Password, Pin};
use enigm_store::{KeyRole, NewAdmin};
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
        // Someone else chose (or saw) this password: its owner replaces it at first login.
        password_change_required: true,
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

/// Creates the data directory (mode 0700) if needed, with its `keys/`: the default key
/// directory, and where the audit log's verifier key is written for `enigm audit key`. An
/// existing data directory that other users can read or enter is refused: it holds the
/// database and the bootstrap credentials, and whoever can list it learns what is there.
pub fn prepare_data_dir(data_dir: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .with_context(|| format!("cannot create data directory `{}`", data_dir.display()))?;
    let mode = fs::metadata(data_dir)
        .with_context(|| format!("cannot read data directory `{}`", data_dir.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "data directory `{dir}` is open to other users (mode {:o}): make it private with \
             `chmod 700 {dir}`",
            mode & 0o777,
            dir = data_dir.display()
        );
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir.join("keys"))
        .context("cannot create key directory")?;
    Ok(())
}

/// The file path of a SQLite database URL; `None` for PostgreSQL and in-memory databases.
fn sqlite_path(database_url: &str) -> Option<&str> {
    let rest = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path.starts_with(":memory:") || rest.contains("mode=memory") {
        return None;
    }
    Some(path)
}

/// Makes a SQLite database and its companions (`-wal`, `-shm`, `-journal`) readable by this
/// user only (0600), wherever the URL puts them: a missing database file is created empty with
/// that mode before SQLite opens it, because SQLite gives the companions it creates the mode of
/// the database file; files left from an earlier run with a wider mode are narrowed.
pub fn secure_sqlite_files(database_url: &str) -> anyhow::Result<()> {
    let Some(path) = sqlite_path(database_url) else {
        return Ok(());
    };
    // Create it private, but never open an existing one: closing any descriptor of the database
    // file drops every POSIX lock this process holds on it, SQLite's included, and another
    // process (`enigm audit verify --data-dir`) would then checkpoint and reset the WAL under
    // this one's readers (disk I/O errors, lost reads).
    match OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_created) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => {
            return Err(anyhow::Error::new(error)
                .context(format!("cannot create the database file `{path}`")));
        }
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let file = format!("{path}{suffix}");
        match fs::metadata(&file) {
            Ok(metadata) if metadata.permissions().mode() & 0o077 != 0 => {
                fs::set_permissions(&file, fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("cannot make `{file}` private (chmod 600)"))?;
            }
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(anyhow::Error::new(error).context(format!("cannot read `{file}`")));
            }
        }
    }
    Ok(())
}

/// Creates the key directory (mode 0700) if it does not exist, and refuses one that other
/// users can read or enter: the keys' own modes would protect them, but a directory others can
/// list tells them which keys exist and lets a later mistake in one file's mode go unnoticed.
pub fn prepare_keys_dir(keys_dir: &Path) -> anyhow::Result<()> {
    if !keys_dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(keys_dir)
            .with_context(|| format!("cannot create key directory `{}`", keys_dir.display()))?;
    }
    let metadata = fs::metadata(keys_dir)
        .with_context(|| format!("cannot read key directory `{}`", keys_dir.display()))?;
    anyhow::ensure!(
        metadata.is_dir(),
        "key directory `{}` is not a directory",
        keys_dir.display()
    );
    if metadata.permissions().mode() & 0o077 != 0 {
        anyhow::bail!(
            "key directory `{}` is open to other users: chmod 700 it",
            keys_dir.display()
        );
    }
    Ok(())
}

/// Whether a key that is missing may be made now. It may not when the deployment (the
/// database) already has a key of that role: a new one would differ from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCreation {
    Allowed,
    Refused,
}

/// Says how to give a process the deployment's keys; appended to every refusal about keys.
pub const HOW_TO_SHARE_KEYS: &str = "give this process the deployment's keys: point --keys-dir \
    at the key directory of the deployment's first process (copy or mount its `keys/`, e.g. a \
    read-only secrets mount), and when the deployment keeps keys on a PKCS#11 token, the same \
    token (--ota-pkcs11-module, --ota-token-label, --ota-token-pin-file, and \
    --audit-key-on-token for the audit-log key)";

/// Said in addition when an OTA online key is refused: moving those keys is legitimate.
pub const HOW_TO_REBIND_OTA_KEYS: &str = "if you moved the OTA online keys between files and a \
    token on purpose, start once with --rebind-ota-online-keys (the next OTA root must then \
    name them: on the signing workstation, `enigm ota keys rotate --role root` with its token)";

/// The advice that ends a refusal about the key of `role`.
pub fn key_advice(role: KeyRole) -> String {
    match role {
        KeyRole::OtaSnapshot | KeyRole::OtaTimestamp | KeyRole::OtaDirector => {
            format!("{HOW_TO_SHARE_KEYS}; {HOW_TO_REBIND_OTA_KEYS}")
        }
        KeyRole::Sealing
        | KeyRole::DeviceHandle
        | KeyRole::AuditLog
        | KeyRole::AuditEvent
        | KeyRole::ProxyCredential => HOW_TO_SHARE_KEYS.to_owned(),
    }
}

/// Reads the key file at `path` if there is one, refusing it when other users can read it.
fn read_key_file(path: &Path, what: &str) -> anyhow::Result<Option<Zeroizing<Vec<u8>>>> {
    if !path.exists() {
        return Ok(None);
    }
    let metadata = fs::metadata(path).with_context(|| format!("cannot read the {what}"))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        anyhow::bail!(
            "`{}` is readable by other users: chmod 600 it",
            path.display()
        );
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(64));
    fs::File::open(path)
        .and_then(|mut file| file.read_to_end(&mut bytes))
        .with_context(|| format!("cannot read the {what}"))?;
    Ok(Some(bytes))
}

/// Writes a newly made key of `role`, or refuses to make one (see [`KeyCreation`]). A key
/// directory that cannot be written (a read-only mount) is said plainly: the process was meant
/// to find the key there.
fn create_key_file(
    path: &Path,
    role: KeyRole,
    creation: KeyCreation,
    contents: &[u8],
) -> anyhow::Result<()> {
    if creation == KeyCreation::Refused {
        anyhow::bail!(
            "the database records the deployment's {role} key, but `{}` does not exist; {}",
            path.display(),
            key_advice(role)
        );
    }
    write_secret_file(path, contents).map_err(|error| {
        let directory = path.parent().unwrap_or(path).display();
        match error.kind() {
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                anyhow::anyhow!(
                    "the {role} key is missing and key directory `{directory}` is not writable, \
                     so none is made; {HOW_TO_SHARE_KEYS}"
                )
            }
            _ => anyhow::Error::new(error).context(format!(
                "cannot write the new {role} key to `{}`",
                path.display()
            )),
        }
    })
}

/// The sealing key's file.
pub const SEALING_KEY_FILE: &str = "sealing.key";

/// Loads the key that seals TOTP secrets at rest, creating it (mode 0600) on first start.
pub fn load_or_create_sealing_key(
    keys_dir: &Path,
    creation: KeyCreation,
) -> anyhow::Result<SealingKey> {
    let path = keys_dir.join(SEALING_KEY_FILE);
    if let Some(bytes) = read_key_file(&path, "sealing key")? {
        return SealingKey::from_bytes(&bytes).context("sealing key file is malformed");
    }
    let key = SealingKey::generate(&mut rand::rngs::OsRng);
    create_key_file(&path, KeyRole::Sealing, creation, &key.to_bytes())?;
    Ok(key)
}

/// The device handle key's file. Handles are a keyed hash of device keys under it: losing it
/// changes every handle, so it is kept like the sealing key.
pub const DEVICE_HANDLE_KEY_FILE: &str = "device-handle.key";

/// Loads the key device handles are derived with, creating it (mode 0600) on first start.
pub fn load_or_create_device_handle_key(
    keys_dir: &Path,
    creation: KeyCreation,
) -> anyhow::Result<DeviceHandleKey> {
    let path = keys_dir.join(DEVICE_HANDLE_KEY_FILE);
    if let Some(bytes) = read_key_file(&path, "device handle key")? {
        return DeviceHandleKey::from_bytes(&bytes).context("device handle key file is malformed");
    }
    let key = DeviceHandleKey::generate(&mut rand::rngs::OsRng);
    create_key_file(&path, KeyRole::DeviceHandle, creation, &key.to_bytes())?;
    Ok(key)
}

/// The audit event key's file, beside the log key: 32 random bytes. Never in the database.
pub const AUDIT_EVENT_KEY_FILE: &str = "audit-event.key";

/// Loads the key that tags every audit event Command stores, creating it (mode 0600) on first
/// start. It stays a file in the key directory even when the log key is on a PKCS#11 token,
/// like the sealing and device-handle keys: what it guards against is a writer with access to
/// the database alone, and it is never in the database.
pub fn load_or_create_audit_event_key(
    keys_dir: &Path,
    creation: KeyCreation,
) -> anyhow::Result<AuditEventKey> {
    let path = keys_dir.join(AUDIT_EVENT_KEY_FILE);
    if let Some(bytes) = read_key_file(&path, "audit event key")? {
        return AuditEventKey::from_bytes(&bytes).context("audit event key file is malformed");
    }
    let key = AuditEventKey::generate(&mut rand::rngs::OsRng);
    create_key_file(&path, KeyRole::AuditEvent, creation, &key.to_bytes())?;
    Ok(key)
}

/// The proxy-credential key's file: the 32-byte Ed25519 seed. Never in the database.
pub const PROXY_CREDENTIAL_KEY_FILE: &str = "proxy-credential.key";

/// Loads the key that signs Enigm Proxy credentials and the revocation list, creating it (mode
/// 0600) on first start. Proxies pin its public key (`GET /api/v1/proxy/credential-key`).
pub fn load_or_create_proxy_credential_key(
    keys_dir: &Path,
    creation: KeyCreation,
) -> anyhow::Result<Ed25519SigningKey> {
    let path = keys_dir.join(PROXY_CREDENTIAL_KEY_FILE);
    if let Some(bytes) = read_key_file(&path, "proxy credential key")? {
        let seed: &[u8; 32] = bytes
            .as_slice()
            .try_into()
            .context("proxy credential key file is malformed")?;
        return Ok(Ed25519SigningKey::from_seed(seed));
    }
    let key = Ed25519SigningKey::generate(&mut rand::rngs::OsRng);
    create_key_file(
        &path,
        KeyRole::ProxyCredential,
        creation,
        key.seed().as_slice(),
    )?;
    Ok(key)
}

/// The log key's file: a C2SP signed-note private key string. Never in the database.
pub const LOG_KEY_FILE: &str = "audit-log.key";
/// The verifier key string beside it, for `enigm audit key` and auditors.
pub const LOG_VERIFIER_FILE: &str = "audit-log.pub";

/// Loads the key that signs audit checkpoints from `keys_dir`, creating it (mode 0600) on first
/// start under a fresh name, which is also the log's origin.
pub fn load_or_create_log_key(
    keys_dir: &Path,
    creation: KeyCreation,
) -> anyhow::Result<NoteSigner> {
    let path = keys_dir.join(LOG_KEY_FILE);
    if let Some(bytes) = read_key_file(&path, "audit log key")? {
        let text = std::str::from_utf8(&bytes).context("audit log key file is malformed")?;
        return NoteSigner::from_key_string(text.trim_end())
            .context("audit log key file is malformed");
    }
    let mut rng = rand::rngs::OsRng;
    let mut suffix = [0u8; 8];
    rng.fill_bytes(&mut suffix);
    let name: String = suffix.iter().map(|byte| format!("{byte:02x}")).collect();
    let signer = NoteSigner::new(
        &format!("{LOG_KEY_NAME_PREFIX}{name}"),
        Ed25519SigningKey::generate(&mut rng),
    )
    .context("cannot name the audit log key")?;
    let mut text = signer
        .to_key_string()
        .context("a software audit log key has a key string")?;
    text.push('\n');
    create_key_file(&path, KeyRole::AuditLog, creation, text.as_bytes())?;
    Ok(signer)
}

/// The audit log's key names (and so its origins) start with this.
pub const LOG_KEY_NAME_PREFIX: &str = "enigm-command/audit/";

/// Writes the log's verifier key into `<data dir>/keys/` for `enigm audit key` and auditors,
/// unless it is there already (the directory may be a shared, read-only key directory).
pub fn write_log_verifier(data_dir: &Path, signer: &NoteSigner) -> anyhow::Result<()> {
    let verifier = format!("{}\n", signer.verifier().to_key_string());
    let public = data_dir.join("keys").join(LOG_VERIFIER_FILE);
    if fs::read_to_string(&public).ok().as_deref() != Some(verifier.as_str()) {
        fs::write(&public, verifier).context("cannot write the audit log verifier key")?;
    }
    Ok(())
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
/// The director's key: signs each device's update answer (OTA II).
pub const OTA_DIRECTOR_KEY_FILE: &str = "ota-director.key";

/// Loads Command's online snapshot and timestamp keys, creating them on first start.
pub fn load_or_create_ota_online_keys(
    keys_dir: &Path,
    creation: KeyCreation,
    director_creation: KeyCreation,
) -> anyhow::Result<crate::ota::OnlineKeys> {
    let load = |file: &str, role: KeyRole, creation| -> anyhow::Result<crate::ota::OnlineKey> {
        let path = keys_dir.join(file);
        let key = match read_key_file(&path, "OTA online key")? {
            Some(bytes) => {
                let seed: [u8; 32] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("`{}` is not a 32-byte key", path.display()))?;
                Ed25519SigningKey::from_seed(&seed)
            }
            None => {
                let key = Ed25519SigningKey::generate(&mut rand::rngs::OsRng);
                create_key_file(&path, role, creation, &key.seed()[..])?;
                key
            }
        };
        Ok(crate::ota::OnlineKey::File(
            enigm_ota::SoftwareSigner::Ed25519(key),
        ))
    };
    Ok(crate::ota::OnlineKeys {
        snapshot: load(OTA_SNAPSHOT_KEY_FILE, KeyRole::OtaSnapshot, creation)?,
        timestamp: load(OTA_TIMESTAMP_KEY_FILE, KeyRole::OtaTimestamp, creation)?,
        director: load(
            OTA_DIRECTOR_KEY_FILE,
            KeyRole::OtaDirector,
            director_creation,
        )?,
    })
}

/// The labels of the online keys in a PKCS#11 token.
pub const OTA_SNAPSHOT_KEY_LABEL: &str = "enigm-ota-snapshot";
pub const OTA_TIMESTAMP_KEY_LABEL: &str = "enigm-ota-timestamp";
pub const OTA_DIRECTOR_KEY_LABEL: &str = "enigm-ota-director";
/// The label of the audit log's key in a PKCS#11 token (`enigm up --audit-key-on-token`).
pub const AUDIT_LOG_KEY_LABEL: &str = "enigm-audit-log";

/// Opens the token Command keeps keys in. The session stays open for as long as a key found
/// in it lives (Command keeps them for as long as it runs).
pub fn open_key_token(
    token: &crate::config::OnlineKeyToken,
) -> anyhow::Result<enigm_crypto::pkcs11::Pkcs11Token> {
    enigm_crypto::pkcs11::Pkcs11Token::open(&token.module, &token.token_label, token.pin.clone())
        .with_context(|| format!("cannot open the PKCS#11 token `{}`", token.token_label))
}

/// Finds the Ed25519 key labelled `label` on the token, generating it (on the token, not
/// extractable) when absent and `creation` allows; refuses a key whose private half the token
/// would give out.
fn token_key(
    token: &enigm_crypto::pkcs11::Pkcs11Token,
    label: &str,
    role: KeyRole,
    creation: KeyCreation,
) -> anyhow::Result<enigm_crypto::pkcs11::Pkcs11Key> {
    use enigm_crypto::pkcs11::Pkcs11KeyAlgorithm;
    let key = match token.find_key(label)? {
        Some(key) => key,
        None if creation == KeyCreation::Refused => anyhow::bail!(
            "the database records the deployment's {role} key, but the token has no key \
             labelled `{label}`; {}",
            key_advice(role)
        ),
        None => {
            tracing::info!(label, "generating a key on the PKCS#11 token");
            token.generate_key(label, Pkcs11KeyAlgorithm::Ed25519)?
        }
    };
    anyhow::ensure!(
        key.private_is_protected()?,
        "the token gives out the private half of `{label}`: it must be sensitive and not \
         extractable"
    );
    Ok(key)
}

/// Opens the token and finds the online keys in it, generating them (Ed25519, on the token,
/// not extractable) at the first start. The session stays open for as long as Command runs.
pub fn load_or_create_ota_online_keys_on_token(
    token: &crate::config::OnlineKeyToken,
) -> anyhow::Result<crate::ota::OnlineKeys> {
    let opened = open_key_token(token).context("no OTA online keys")?;
    ota_online_keys_on_token(&opened, KeyCreation::Allowed, KeyCreation::Allowed)
}

/// The online keys in an open token, generated at the first start when `creation` allows.
pub fn ota_online_keys_on_token(
    token: &enigm_crypto::pkcs11::Pkcs11Token,
    creation: KeyCreation,
    director_creation: KeyCreation,
) -> anyhow::Result<crate::ota::OnlineKeys> {
    Ok(crate::ota::OnlineKeys {
        snapshot: crate::ota::OnlineKey::Token(token_key(
            token,
            OTA_SNAPSHOT_KEY_LABEL,
            KeyRole::OtaSnapshot,
            creation,
        )?),
        timestamp: crate::ota::OnlineKey::Token(token_key(
            token,
            OTA_TIMESTAMP_KEY_LABEL,
            KeyRole::OtaTimestamp,
            creation,
        )?),
        director: crate::ota::OnlineKey::Token(token_key(
            token,
            OTA_DIRECTOR_KEY_LABEL,
            KeyRole::OtaDirector,
            director_creation,
        )?),
    })
}

/// The audit log's key on an open token (label [`AUDIT_LOG_KEY_LABEL`]), generated at the first
/// start when `creation` allows. Its name, the log's origin, is derived from its public key, so
/// that every process with the token's key names the log alike without storing the name.
pub fn log_key_on_token(
    token: &enigm_crypto::pkcs11::Pkcs11Token,
    creation: KeyCreation,
) -> anyhow::Result<NoteSigner> {
    let key = token_key(token, AUDIT_LOG_KEY_LABEL, KeyRole::AuditLog, creation)?;
    let key = enigm_crypto::Pkcs11Ed25519Key::new(key)?;
    let digest = enigm_crypto::sha256(&enigm_crypto::Ed25519Signer::verifying_key(&key).to_bytes());
    let name: String = digest
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    NoteSigner::with_signer(
        &format!("{LOG_KEY_NAME_PREFIX}{name}"),
        std::sync::Arc::new(key),
    )
    .context("cannot name the audit log key")
}

/// Holds an exclusive lock on a SQLite database for the life of the process: SQLite serves one
/// process, so a second `enigm up` on the same file would be a replica that cannot work (and
/// would race the first for the audit log). `None` for PostgreSQL, where many processes are
/// the point. The lock file is beside the database file (`enigm.db.lock` in the data directory
/// by default); the lock goes with the process, however it ends.
pub fn lock_sqlite_database(database_url: &str) -> anyhow::Result<Option<fs::File>> {
    let Some(path) = sqlite_path(database_url) else {
        return Ok(None);
    };
    let lock_path = PathBuf::from(format!("{path}.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .with_context(|| format!("cannot open the lock file `{}`", lock_path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another `enigm up` is running on the SQLite database `{path}` (it holds `{}`): \
             SQLite serves one process; to run Command as several processes, put it on \
             PostgreSQL (--database-url postgres://…) and give every process the same keys \
             (--keys-dir)",
            lock_path.display()
        ),
        Err(fs::TryLockError::Error(error)) => {
            Err(anyhow::Error::new(error).context(format!("cannot lock `{}`", lock_path.display())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sqlite_database_is_locked_once_and_postgres_never() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("enigm.db").display()
        );
        let held = lock_sqlite_database(&url).unwrap();
        assert!(held.is_some());
        assert!(dir.path().join("enigm.db.lock").exists());
        // flock locks belong to the open file, so a second opening in this process conflicts
        // just as another process would.
        let refused = lock_sqlite_database(&url).unwrap_err().to_string();
        assert!(
            refused.contains("another `enigm up` is running"),
            "{refused}"
        );
        drop(held);
        assert!(lock_sqlite_database(&url).unwrap().is_some());

        for unlocked in [
            "postgres://postgres@127.0.0.1:5432/enigm",
            "postgresql://host/db",
            "sqlite::memory:",
        ] {
            assert!(
                lock_sqlite_database(unlocked).unwrap().is_none(),
                "{unlocked}"
            );
        }
    }

    #[test]
    fn a_key_directory_open_to_others_is_refused_and_a_missing_one_is_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("nested/keys");
        prepare_keys_dir(&keys).unwrap();
        let mode = fs::metadata(&keys).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o750)).unwrap();
        let refused = prepare_keys_dir(&keys).unwrap_err().to_string();
        assert!(refused.contains("chmod 700"), "{refused}");
    }

    #[test]
    fn a_key_the_deployment_has_is_never_made_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let refused = load_or_create_sealing_key(dir.path(), KeyCreation::Refused)
            .unwrap_err()
            .to_string();
        assert!(refused.contains("sealing key"), "{refused}");
        assert!(refused.contains("--keys-dir"), "{refused}");
        assert!(!dir.path().join(SEALING_KEY_FILE).exists());
        // Made when allowed, then found (not made again) even where making is refused.
        let made = load_or_create_sealing_key(dir.path(), KeyCreation::Allowed).unwrap();
        let found = load_or_create_sealing_key(dir.path(), KeyCreation::Refused).unwrap();
        assert_eq!(made.fingerprint(), found.fingerprint());
        let refused =
            load_or_create_ota_online_keys(dir.path(), KeyCreation::Refused, KeyCreation::Refused)
                .err()
                .unwrap()
                .to_string();
        assert!(refused.contains("--rebind-ota-online-keys"), "{refused}");
    }
}
