//! The stored login of the `enigm` client: server, bearer token, username and trusted CA, kept in
//! `credentials.json` readable by its owner only.

use std::ffi::OsString;
use std::fmt;
use std::fs::{DirBuilder, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

/// Environment variable naming the directory of `credentials.json`.
pub(crate) const CONFIG_DIR_ENV: &str = "ENIGM_CONFIG_DIR";
const FILE_NAME: &str = "credentials.json";
/// A credentials file is a few hundred bytes plus a CA certificate.
const MAX_FILE_BYTES: u64 = 256 * 1024;

/// What `enigm login` stores. The token is absent after `enigm logout`, so that the next login
/// still knows the server and its CA.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Credentials {
    /// The normalised server URL the token belongs to.
    pub(crate) server: String,
    pub(crate) token: Option<String>,
    pub(crate) username: String,
    /// PEM text of the extra CA trusted at login. Stored as content, not as a path, so that the
    /// trust anchor cannot change behind the operator's back after login.
    pub(crate) ca_cert: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("has_token", &self.token.is_some())
            .field("has_ca_cert", &self.ca_cert.is_some())
            .finish()
    }
}

/// The credentials file of this user: `$ENIGM_CONFIG_DIR/credentials.json`, else
/// `<config dir>/enigm/credentials.json` (`~/.config/enigm` on Linux).
pub(crate) fn default_path() -> anyhow::Result<PathBuf> {
    path_from(std::env::var_os(CONFIG_DIR_ENV), dirs::config_dir())
        .context("no configuration directory: set ENIGM_CONFIG_DIR")
}

/// The path rule, with the environment passed in so that it can be tested.
pub(crate) fn path_from(
    config_dir_env: Option<OsString>,
    platform_config_dir: Option<PathBuf>,
) -> Option<PathBuf> {
    match config_dir_env.filter(|dir| !dir.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir).join(FILE_NAME)),
        None => platform_config_dir.map(|dir| dir.join("enigm").join(FILE_NAME)),
    }
}

/// Loads the stored credentials; `None` when there is no file yet.
pub(crate) fn load(path: &Path) -> anyhow::Result<Option<Credentials>> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(error).with_context(|| format!("could not open `{}`", path.display()));
        }
    };
    let metadata = file
        .metadata()
        .with_context(|| format!("could not inspect `{}`", path.display()))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        tracing::warn!(path = %path.display(), "credentials file is accessible by other users; `enigm login` rewrites it with mode 0600");
    }
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("could not read `{}`", path.display()))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        anyhow::bail!("`{}` is larger than {MAX_FILE_BYTES} bytes", path.display());
    }
    let credentials = serde_json::from_str(&text).with_context(|| {
        format!(
            "`{}` is not a valid credentials file; run `enigm login` again",
            path.display()
        )
    })?;
    Ok(Some(credentials))
}

/// Writes the credentials atomically, readable by their owner only (see [`write_private`]).
pub(crate) fn save(path: &Path, credentials: &Credentials) -> anyhow::Result<()> {
    let json =
        serde_json::to_vec_pretty(credentials).context("could not encode the credentials")?;
    write_private(path, &json)
}

/// The directory of the client's own files: `$ENIGM_CONFIG_DIR`, else `~/.config/enigm`.
pub(crate) fn config_dir() -> anyhow::Result<PathBuf> {
    let path = default_path()?;
    Ok(path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf))
}

/// Writes a file atomically: a fresh file created with mode 0600 in a directory with mode 0700,
/// then renamed over the old one, so that its content is never readable by others and a crash
/// never leaves a half-written file.
pub(crate) fn write_private(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("could not create `{}`", dir.display()))?;
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |name| name.to_string_lossy());
    let temporary = dir.join(format!(".{name}.{:016x}.tmp", rand::rngs::OsRng.next_u64()));
    let written = write_new_private_file(&temporary, content)
        .and_then(|()| std::fs::rename(&temporary, path).map_err(anyhow::Error::from));
    if written.is_err() {
        // Best effort: the temporary file may hold a secret and must not linger.
        let _ignored = std::fs::remove_file(&temporary);
    }
    written.with_context(|| format!("could not write `{}`", path.display()))
}

fn write_new_private_file(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    // `create_new` refuses to follow a planted symlink or reuse an existing file; `mode` makes the
    // file private from its first byte rather than after a later chmod.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(content)?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests;
