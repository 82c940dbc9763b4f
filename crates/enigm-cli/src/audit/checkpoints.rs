//! Keys and checkpoints kept in files: the log's verifier key in a data directory, signed
//! checkpoints saved by an auditor, and the checkpoint `enigm audit verify` remembers per server
//! and key, so that a later run can prove the log only grew since.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use enigm_auditlog::{
    Checkpoint, MAX_NOTE_LEN, NoteVerifier, OpenCheckpointError, open_checkpoint,
};
use enigm_server::bootstrap::LOG_VERIFIER_FILE;

use crate::client::ServerUrl;
use crate::credentials;

/// A verifier key string is about a hundred bytes; the bound only stops a mistaken path.
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Folder of remembered checkpoints inside the client's configuration directory.
const REMEMBERED_DIR: &str = "audit-checkpoints";

/// `<data dir>/keys/audit-log.pub`, where `enigm up` writes the log's verifier key.
pub(super) fn verifier_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("keys").join(LOG_VERIFIER_FILE)
}

/// Parses a C2SP verifier key string (`name+keyid+base64`), as `--log-key` takes it.
pub(super) fn parse_verifier(text: &str) -> anyhow::Result<NoteVerifier> {
    NoteVerifier::from_key_string(text.trim())
        .context("the log key is not a signed-note verifier key (`name+keyid+base64`)")
}

/// Reads the verifier key `enigm up` wrote into `data_dir`.
pub(super) fn read_verifier_file(data_dir: &Path) -> anyhow::Result<NoteVerifier> {
    let path = verifier_key_path(data_dir);
    let text = read_bounded(&path, MAX_KEY_FILE_BYTES)?;
    parse_verifier(&text).with_context(|| format!("`{}` holds no valid key", path.display()))
}

/// Reads a signed checkpoint note from a file. `Ok(Err(_))` when the file was read but the
/// note does not verify with `verifier`: for the caller to report as a finding.
pub(super) fn read_checkpoint_file(
    path: &Path,
    verifier: &NoteVerifier,
) -> anyhow::Result<Result<Checkpoint, OpenCheckpointError>> {
    let text = read_bounded(path, MAX_NOTE_LEN as u64)?;
    Ok(open_note_text(&text, verifier))
}

/// Opens a checkpoint note, tolerating line breaks added after the last signature line (an
/// editor's or a shell's); every other byte is as signed.
pub(super) fn open_note_text(
    text: &str,
    verifier: &NoteVerifier,
) -> Result<Checkpoint, OpenCheckpointError> {
    let note = format!("{}\n", text.trim_end_matches(['\n', '\r']));
    open_checkpoint(note.as_bytes(), verifier).map(|verified| verified.into_checkpoint())
}

/// The checkpoint remembered for one server and one log key.
#[derive(Debug)]
pub(super) struct Remembered {
    path: PathBuf,
}

impl Remembered {
    /// The remembered checkpoint of `server` under `verifier`, in the client's configuration
    /// directory. The file is named after both, so that a server whose key changed starts a
    /// new history instead of silently replacing the old one.
    pub(super) fn for_server(server: &ServerUrl, verifier: &NoteVerifier) -> anyhow::Result<Self> {
        let dir = credentials::config_dir()?.join(REMEMBERED_DIR);
        Ok(Remembered {
            path: dir.join(format!("{}.note", file_stem(server, verifier))),
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The remembered checkpoint, `None` on a first run. A file that does not verify with
    /// the key is an error: it was written only after a successful verification.
    pub(super) fn load(&self, verifier: &NoteVerifier) -> anyhow::Result<Option<Checkpoint>> {
        if !self.path.exists() {
            return Ok(None);
        }
        let checkpoint = read_checkpoint_file(&self.path, verifier)?.with_context(|| {
            format!(
                "the remembered checkpoint `{}` does not verify with the log key; it was \
                 changed after it was saved",
                self.path.display()
            )
        })?;
        Ok(Some(checkpoint))
    }

    /// Remembers `note`, a checkpoint that verified.
    pub(super) fn save(&self, note: &str) -> anyhow::Result<()> {
        credentials::write_private(&self.path, note.as_bytes())
    }
}

/// SHA-256 of the server URL and the key string, in hex.
fn file_stem(server: &ServerUrl, verifier: &NoteVerifier) -> String {
    let identity = format!("{}\n{}", server.as_str(), verifier.to_key_string());
    enigm_crypto::sha256(identity.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn read_bounded(path: &Path, limit: u64) -> anyhow::Result<String> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("could not open `{}`", path.display()))?;
    let mut text = String::new();
    file.take(limit + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("could not read `{}` as text", path.display()))?;
    if text.len() as u64 > limit {
        anyhow::bail!("`{}` is larger than {limit} bytes", path.display());
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use enigm_auditlog::{NoteSigner, sign_checkpoint};
    use enigm_crypto::Ed25519SigningKey;

    use super::*;

    fn signer(name: &str, seed: u8) -> NoteSigner {
        NoteSigner::new(name, Ed25519SigningKey::from_seed(&[seed; 32])).unwrap()
    }

    fn note(signer: &NoteSigner, size: u64) -> String {
        let checkpoint = Checkpoint::new(
            signer.name(),
            size,
            enigm_auditlog::leaf_hash(b"x"),
            Vec::new(),
        )
        .unwrap();
        sign_checkpoint(&checkpoint, signer).unwrap()
    }

    #[test]
    fn checkpoint_notes_open_with_their_key_only() {
        let log = signer("enigm-command/audit/test", 1);
        let other = signer("enigm-command/audit/test", 2);
        let text = note(&log, 7);
        assert_eq!(open_note_text(&text, &log.verifier()).unwrap().size(), 7);
        // Line breaks appended after the signature are tolerated; anything else is not.
        let padded = format!("{text}\n\r\n");
        assert_eq!(open_note_text(&padded, &log.verifier()).unwrap().size(), 7);
        assert!(open_note_text(&text, &other.verifier()).is_err());
        let altered = text.replacen("7\n", "8\n", 1);
        assert!(open_note_text(&altered, &log.verifier()).is_err());
    }

    #[test]
    fn remembered_file_names_depend_on_server_and_key() {
        let log = signer("enigm-command/audit/test", 1);
        let other = signer("enigm-command/audit/test", 2);
        let a = ServerUrl::parse("https://a.example").unwrap();
        let b = ServerUrl::parse("https://b.example").unwrap();
        let stem = file_stem(&a, &log.verifier());
        assert_eq!(stem.len(), 64);
        assert!(stem.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(stem, file_stem(&b, &log.verifier()));
        assert_ne!(stem, file_stem(&a, &other.verifier()));
        assert_eq!(
            stem,
            file_stem(
                &ServerUrl::parse("https://a.example/").unwrap(),
                &log.verifier()
            )
        );
    }

    #[test]
    fn verifier_keys_are_parsed_strictly() {
        let log = signer("enigm-command/audit/test", 1);
        let key = log.verifier().to_key_string();
        assert_eq!(
            parse_verifier(&format!("{key}\n")).unwrap().to_key_string(),
            key
        );
        assert!(parse_verifier("not-a-key").is_err());
    }
}
