//! Checkpoints (c2sp.org/tlog-checkpoint): the log's signed statement "my tree of this size has
//! this root", as the text of a signed note.
//!
//! ```text
//! <origin>\n
//! <tree size, decimal, no leading zeros>\n
//! <root hash, standard base64>\n
//! <extension line>\n   (zero or more, each non-empty)
//! ```
//!
//! The parser accepts exactly what [`Checkpoint::to_note_text`] produces, so each checkpoint
//! has one text form: no leading zeros or signs in the size, canonical padded base64 for a
//! 32-byte root, no empty extension lines, and a final newline.

use crate::hash::Hash;
use crate::note::{NoteError, NoteSigner, NoteVerifier, open_note, sign_checked_text};

/// The largest checkpoint text accepted. A checkpoint without extensions is about 100 bytes;
/// the bound leaves ample room for extension lines while keeping a signed checkpoint far below
/// the note limit.
pub const MAX_CHECKPOINT_LEN: usize = 64 * 1024;

/// A tree head: which log, how many leaves, which root, and opaque extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: Hash,
    extensions: Vec<String>,
}

/// Evidence that a checkpoint was signed by the expected log key: only [`open_checkpoint`]
/// makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    checkpoint: Checkpoint,
}

/// Why a checkpoint text was refused, or a checkpoint could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint text is longer than {MAX_CHECKPOINT_LEN} bytes")]
    TooLarge,
    #[error("checkpoint text does not end in a newline")]
    Unterminated,
    #[error("checkpoint text has fewer than three lines")]
    TooFewLines,
    #[error("checkpoint origin is empty or contains a control character")]
    InvalidOrigin,
    #[error("checkpoint tree size is not a decimal number without leading zeros")]
    InvalidSize,
    #[error("checkpoint root hash is not base64 of 32 bytes")]
    InvalidRoot,
    #[error("checkpoint extension line is empty or contains a control character")]
    InvalidExtension,
}

/// Why a signed checkpoint was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenCheckpointError {
    #[error("invalid signed note")]
    Note(#[source] NoteError),
    #[error("invalid checkpoint")]
    Checkpoint(#[source] CheckpointError),
    #[error("checkpoint origin is not the name of the log's key")]
    OriginMismatch,
}

impl Checkpoint {
    /// A checkpoint. The origin must be non-empty; neither it nor the extension lines (each
    /// non-empty) may contain control characters, newline included.
    pub fn new(
        origin: impl Into<String>,
        size: u64,
        root: Hash,
        extensions: Vec<String>,
    ) -> Result<Self, CheckpointError> {
        let checkpoint = Checkpoint {
            origin: origin.into(),
            size,
            root,
            extensions,
        };
        if !is_valid_line(&checkpoint.origin) {
            return Err(CheckpointError::InvalidOrigin);
        }
        if !checkpoint.extensions.iter().all(|line| is_valid_line(line)) {
            return Err(CheckpointError::InvalidExtension);
        }
        if checkpoint.text_len() > MAX_CHECKPOINT_LEN {
            return Err(CheckpointError::TooLarge);
        }
        Ok(checkpoint)
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn root(&self) -> &Hash {
        &self.root
    }

    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// The note text: every line ends in a newline, the last one included.
    pub fn to_note_text(&self) -> String {
        let mut text = String::with_capacity(self.text_len());
        text.push_str(&self.origin);
        text.push('\n');
        text.push_str(&self.size.to_string());
        text.push('\n');
        text.push_str(&self.root.to_base64());
        text.push('\n');
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// Parses a note text strictly: see the module documentation.
    pub fn from_note_text(text: &str) -> Result<Self, CheckpointError> {
        if text.len() > MAX_CHECKPOINT_LEN {
            return Err(CheckpointError::TooLarge);
        }
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::Unterminated)?;
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(CheckpointError::TooFewLines);
        };
        if !is_valid_line(origin) {
            return Err(CheckpointError::InvalidOrigin);
        }
        let size = parse_size(size)?;
        let root = Hash::from_base64(root).map_err(|_| CheckpointError::InvalidRoot)?;
        let extensions = lines
            .map(|line| {
                if is_valid_line(line) {
                    Ok(line.to_owned())
                } else {
                    Err(CheckpointError::InvalidExtension)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    fn text_len(&self) -> usize {
        // Origin, size (at most 20 digits), root (44 characters), extensions, newlines.
        self.origin.len()
            + 20
            + 44
            + 3
            + self
                .extensions
                .iter()
                .map(|line| line.len() + 1)
                .sum::<usize>()
    }
}

impl VerifiedCheckpoint {
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    pub fn into_checkpoint(self) -> Checkpoint {
        self.checkpoint
    }
}

/// Signs `checkpoint` as a note with `signer`.
///
/// The signer's key name must be the checkpoint's origin: [`open_checkpoint`] requires that,
/// so a signed checkpoint that could never be opened is refused here instead.
pub fn sign_checkpoint(
    checkpoint: &Checkpoint,
    signer: &NoteSigner,
) -> Result<String, OpenCheckpointError> {
    if checkpoint.origin != signer.name() {
        return Err(OpenCheckpointError::OriginMismatch);
    }
    // INVARIANT: `Checkpoint`'s constructors guarantee a valid, bounded note text.
    sign_checked_text(&checkpoint.to_note_text(), signer).map_err(OpenCheckpointError::Note)
}

/// Opens a signed checkpoint: the note must carry a valid signature by `verifier`'s key
/// (other signatures are ignored), its text must be a checkpoint, and the checkpoint's origin
/// must be the key's name.
///
/// The origin check binds the key to one log: a key that signed checkpoints for two logs could
/// otherwise have one log's tree head passed off as the other's. The checkpoint specification
/// recommends naming the key after the origin; this crate requires it.
pub fn open_checkpoint(
    note: impl AsRef<[u8]>,
    verifier: &NoteVerifier,
) -> Result<VerifiedCheckpoint, OpenCheckpointError> {
    let note = open_note(note, verifier).map_err(OpenCheckpointError::Note)?;
    let checkpoint =
        Checkpoint::from_note_text(note.text()).map_err(OpenCheckpointError::Checkpoint)?;
    if checkpoint.origin != verifier.name() {
        return Err(OpenCheckpointError::OriginMismatch);
    }
    Ok(VerifiedCheckpoint { checkpoint })
}

/// A checkpoint line: non-empty, with no control characters (so no newline either).
fn is_valid_line(line: &str) -> bool {
    !line.is_empty() && !line.bytes().any(|b| b < 0x20)
}

/// ASCII decimal without sign or leading zeros ("0" alone is the empty tree), within `u64`.
fn parse_size(text: &str) -> Result<u64, CheckpointError> {
    let canonical = !text.is_empty()
        && text.len() <= 20
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !canonical {
        return Err(CheckpointError::InvalidSize);
    }
    text.parse().map_err(|_| CheckpointError::InvalidSize)
}
