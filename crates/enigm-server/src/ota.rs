//! Command's side of the TUF repository: its online snapshot and timestamp keys, the artifact
//! store in the data directory, and the checks of what the signing workstation hands in. The
//! decisions are `enigm-ota`'s; this module only feeds it bytes and the time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use enigm_crypto::{Ed25519SigningKey, Sha256Stream};
use enigm_ota::{MetadataSigner, SignerError, SoftwareSigner};
use enigm_types::{ReasonCategory, Timestamp};
use tokio::io::AsyncWriteExt as _;

mod repository;

pub use repository::{
    Published, current_root_names_online_keys, expires_of, publish_latest, reason_of,
    refresh_timestamp_if_due, refresh_timestamps, release_reason,
};

/// How long a timestamp Command signs stays valid; it is re-signed well before that.
/// What makes the OTA root name Command's online keys again after they moved between files
/// and a token: a root rotation on the signing workstation that keeps the root key. Printed by
/// `enigm up` and by a refused publish; MODULE, LABEL and FILE are the workstation's token, as
/// for `enigm ota keys init`.
pub const NAME_ONLINE_KEYS_COMMAND: &str = "enigm ota keys rotate --role root --pkcs11-module \
    MODULE --token-label LABEL --token-pin-file FILE";

pub const TIMESTAMP_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// Re-sign the timestamp once less than this is left.
pub const TIMESTAMP_REFRESH_BEFORE: Duration = Duration::from_secs(12 * 60 * 60);
/// How long a snapshot Command signs stays valid.
pub const SNAPSHOT_LIFETIME: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The keys of the online roles. Held by Command because snapshot and timestamp must be
/// re-signed without a person (TUF's online roles), and the director answers each device's
/// update request as it comes; the root and targets keys never are.
pub struct OnlineKeys {
    pub snapshot: OnlineKey,
    pub timestamp: OnlineKey,
    pub director: OnlineKey,
}

/// One online key: a file in the data directory (the default), or a key in a PKCS#11 token
/// that Command holds open (`enigm up --ota-pkcs11-module`), which signs without ever giving
/// the key out.
pub enum OnlineKey {
    /// An Ed25519 key read from its file.
    File(SoftwareSigner),
    Token(enigm_crypto::pkcs11::Pkcs11Key),
}

impl MetadataSigner for OnlineKey {
    fn key(&self) -> enigm_ota::Key {
        match self {
            OnlineKey::File(key) => key.key(),
            OnlineKey::Token(key) => key.key(),
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        match self {
            OnlineKey::File(key) => key.sign(message),
            // A token signature is a short call into the module (microseconds on SoftHSM2,
            // milliseconds on a network HSM), made once per snapshot or timestamp.
            OnlineKey::Token(key) => MetadataSigner::sign(key, message),
        }
    }
}

/// What `enigm up` or a test chooses about OTA.
pub struct OtaConfig {
    pub online: OnlineKeys,
    /// Where artifacts are kept, by SHA-256.
    pub artifacts_dir: PathBuf,
}

/// Why Command refused what was handed in: a stable category (audited, and the error code)
/// and a message for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtaRefusal {
    pub reason: ReasonCategory,
    pub message: String,
}

impl OtaRefusal {
    pub fn new(reason: ReasonCategory, message: impl Into<String>) -> Self {
        OtaRefusal {
            reason,
            message: message.into(),
        }
    }
}

/// A verified new metadata version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub version: u64,
}

impl OtaConfig {
    /// Fresh online keys (tests, benchmarks); `enigm up` loads them from the data directory.
    pub fn generate(artifacts_dir: PathBuf) -> Self {
        let generated = || {
            OnlineKey::File(SoftwareSigner::Ed25519(Ed25519SigningKey::generate(
                &mut rand::rngs::OsRng,
            )))
        };
        OtaConfig {
            online: OnlineKeys {
                snapshot: generated(),
                timestamp: generated(),
                director: generated(),
            },
            artifacts_dir,
        }
    }
}

pub struct OtaService {
    config: OtaConfig,
}

impl OtaService {
    pub fn new(config: OtaConfig) -> Self {
        OtaService { config }
    }

    pub fn online(&self) -> &OnlineKeys {
        &self.config.online
    }

    pub fn artifact_path(&self, sha256: &str) -> PathBuf {
        self.config.artifacts_dir.join(sha256)
    }

    /// A temporary file in the artifact directory that takes at most `length` bytes.
    pub async fn stage_artifact(
        &self,
        length: u64,
    ) -> Result<ArtifactUpload, Box<dyn std::error::Error + Send + Sync>> {
        tokio::fs::create_dir_all(&self.config.artifacts_dir).await?;
        let mut suffix = [0u8; 8];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut suffix);
        let temporary = self
            .config
            .artifacts_dir
            .join(format!(".upload-{}", hex::encode(suffix)));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)
            .await?;
        Ok(ArtifactUpload {
            file: Some(file),
            temporary,
            directory: self.config.artifacts_dir.clone(),
            expected_length: length,
            written: 0,
            overflowed: false,
            digest: Sha256Stream::new(),
        })
    }
}

/// An artifact being uploaded: hashed as it is written, never longer than declared.
pub struct ArtifactUpload {
    file: Option<tokio::fs::File>,
    temporary: PathBuf,
    directory: PathBuf,
    expected_length: u64,
    written: u64,
    overflowed: bool,
    digest: Sha256Stream,
}

/// How an upload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StagedArtifact {
    /// Durable under its digest.
    Stored,
    /// Not the declared length or digest; removed.
    Mismatch,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl ArtifactUpload {
    /// Writes a chunk; `false` once the body is longer than declared (stop reading: the
    /// upload will be refused).
    pub async fn write(&mut self, chunk: &[u8]) -> Result<bool, BoxError> {
        let length = u64::try_from(chunk.len())?;
        let Some(file) = self.file.as_mut() else {
            return Ok(false);
        };
        if self.written.saturating_add(length) > self.expected_length {
            self.overflowed = true;
            return Ok(false);
        }
        file.write_all(chunk).await?;
        self.digest.update(chunk);
        self.written += length;
        Ok(true)
    }

    /// Checks length and digest; a match is synced and renamed to its digest (then the
    /// directory synced), so a stored artifact survives a crash; a mismatch is deleted.
    pub async fn finish(mut self, expected_sha256: &str) -> Result<StagedArtifact, BoxError> {
        let Some(mut file) = self.file.take() else {
            return Ok(StagedArtifact::Mismatch);
        };
        let digest = hex::encode(std::mem::take(&mut self.digest).finish());
        if self.overflowed || self.written != self.expected_length || digest != expected_sha256 {
            drop(file);
            let _ = tokio::fs::remove_file(&self.temporary).await;
            return Ok(StagedArtifact::Mismatch);
        }
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        let destination = self.directory.join(&digest);
        tokio::fs::rename(&self.temporary, &destination).await?;
        sync_directory(&self.directory).await?;
        Ok(StagedArtifact::Stored)
    }

    /// Abandons the upload.
    pub async fn discard(mut self) {
        self.file.take();
        let _ = tokio::fs::remove_file(&self.temporary).await;
    }
}

async fn sync_directory(directory: &Path) -> std::io::Result<()> {
    let directory = directory.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(directory)?.sync_all())
        .await
        .map_err(std::io::Error::other)?
}

impl OtaService {
    pub fn online_keys_view(&self) -> enigm_api::releases::OnlineKeysView {
        let tuf_key =
            |key: &OnlineKey| serde_json::to_value(key.key()).unwrap_or(serde_json::Value::Null);
        enigm_api::releases::OnlineKeysView {
            snapshot: tuf_key(&self.config.online.snapshot),
            timestamp: tuf_key(&self.config.online.timestamp),
            director: tuf_key(&self.config.online.director),
        }
    }
}

/// Time as TUF writes it.
pub fn tuf_time(at: Timestamp) -> String {
    let seconds = at.unix_seconds();
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|time| {
            time.format(&time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}
