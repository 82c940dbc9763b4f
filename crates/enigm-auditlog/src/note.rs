//! C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys, and the key strings that name
//! those keys (the format of golang.org/x/mod/sumdb/note).
//!
//! A signed note is a text ending in a newline, a blank line, then signature lines
//! `— <key name> <base64(key id || signature)>\n`. The key id is the first four bytes of
//! `SHA-256(key name || 0x0A || 0x01 || public key)`, big-endian. Key strings are
//! `<name>+<8 hex key id>+<base64(0x01 || public key)>` for verifiers and
//! `PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 || seed)>` for signers.
//!
//! Opening a note is the boundary where untrusted bytes meet the log's key, so it is strict and
//! bounded: at most [`MAX_NOTE_LEN`] bytes and [`MAX_SIGNATURES`] signature lines, valid UTF-8
//! without control characters other than newline, every signature line well formed. Signature
//! lines of other keys are ignored, as the specification requires (they may be witnesses'
//! cosignatures or a rotated key); a signature of the known key that does not verify rejects
//! the whole note, and so does a note without any signature of the known key.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use enigm_crypto::{
    ED25519_KEY_LEN, ED25519_SIGNATURE_LEN, Ed25519Signer, Ed25519SigningKey, Ed25519VerifyingKey,
    KeyError,
};
use zeroize::Zeroizing;

/// The largest note accepted, in bytes.
pub const MAX_NOTE_LEN: usize = 1 << 20;
/// The most signature lines a note may carry. The specification asks verifiers to accept at
/// least 16.
pub const MAX_SIGNATURES: usize = 100;

/// The signature type byte of Ed25519 in key ids and key strings.
const ALG_ED25519: u8 = 0x01;
/// Em dash and space: the start of every signature line.
const SIGNATURE_PREFIX: &str = "\u{2014} ";
const PRIVATE_KEY_PREFIX: &str = "PRIVATE+KEY+";

/// A named Ed25519 key that signs notes. `Debug` shows the name and key id only.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key_id: u32,
    key: NoteKey,
}

/// Where a note signer's private key is: in memory (it has a key string), or behind a signer
/// that keeps it elsewhere, such as a PKCS#11 token (it has none). Either signs the same
/// bytes, so the notes are byte-identical.
#[derive(Clone)]
enum NoteKey {
    Software(Box<Ed25519SigningKey>),
    External(Arc<dyn Ed25519Signer>),
}

impl NoteKey {
    fn verifying_key(&self) -> Ed25519VerifyingKey {
        match self {
            NoteKey::Software(key) => key.verifying_key(),
            NoteKey::External(signer) => signer.verifying_key(),
        }
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; ED25519_SIGNATURE_LEN], NoteError> {
        match self {
            NoteKey::Software(key) => Ok(key.sign(message)),
            NoteKey::External(signer) => signer
                .sign_ed25519(message)
                .map_err(|_| NoteError::SignerFailed),
        }
    }
}

/// A named Ed25519 public key that notes are checked against.
#[derive(Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    key: Ed25519VerifyingKey,
}

/// Evidence that a note carries a valid signature by a known key: only [`open_note`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedNote {
    text: String,
    key_name: String,
    key_id: u32,
}

/// Why a key string or key name was refused. Messages never include key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyStringError {
    #[error("key string is not `[PRIVATE+KEY+]<name>+<8 hex digits>+<base64 key>`")]
    Malformed,
    #[error("key name is empty or contains white space, `+` or control characters")]
    InvalidName,
    #[error("key is not an Ed25519 key (type byte 0x01)")]
    UnsupportedAlgorithm,
    #[error("key id in the key string does not match the key")]
    KeyIdMismatch,
    #[error("invalid public key")]
    Key(#[source] KeyError),
}

/// Why a note was not signed or not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("note is {len} bytes, more than the {MAX_NOTE_LEN} accepted")]
    TooLarge { len: usize },
    #[error("note is not valid UTF-8")]
    NotUtf8,
    #[error("note contains a control character other than newline")]
    ControlCharacter,
    #[error("note text is empty or does not end in a newline")]
    UnterminatedText,
    #[error("note has no blank line followed by signature lines")]
    MissingSignatures,
    #[error("note has a malformed signature line")]
    MalformedSignature,
    #[error("note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    #[error("note has a signature by the known key that does not verify")]
    InvalidSignature,
    #[error("note has no signature by the known key")]
    NoKnownSignature,
    #[error("the signer could not sign the note (is its token reachable?)")]
    SignerFailed,
}

impl NoteSigner {
    /// A signer for `key` under `name`.
    pub fn new(name: &str, key: Ed25519SigningKey) -> Result<Self, KeyStringError> {
        NoteSigner::named(name, NoteKey::Software(Box::new(key)))
    }

    /// A signer under `name` whose key stays with `signer` (e.g. on a PKCS#11 token). It signs
    /// exactly as [`NoteSigner::new`] with the same key would, but has no key string.
    pub fn with_signer(name: &str, signer: Arc<dyn Ed25519Signer>) -> Result<Self, KeyStringError> {
        NoteSigner::named(name, NoteKey::External(signer))
    }

    fn named(name: &str, key: NoteKey) -> Result<Self, KeyStringError> {
        check_key_name(name)?;
        let key_id = key_id(name, &key.verifying_key());
        Ok(NoteSigner {
            name: name.to_owned(),
            key_id,
            key,
        })
    }

    /// Parses `PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 || seed)>`. The key id must be
    /// the one of the public key derived from the seed.
    pub fn from_key_string(text: &str) -> Result<Self, KeyStringError> {
        let rest = text
            .strip_prefix(PRIVATE_KEY_PREFIX)
            .ok_or(KeyStringError::Malformed)?;
        let (name, key_id, key) = split_key_string(rest)?;
        let seed: Zeroizing<[u8; ED25519_KEY_LEN]> = Zeroizing::new(
            key.as_slice()
                .try_into()
                .map_err(|_| KeyStringError::Malformed)?,
        );
        let signer = NoteSigner::new(name, Ed25519SigningKey::from_seed(&seed))?;
        if signer.key_id != key_id {
            return Err(KeyStringError::KeyIdMismatch);
        }
        Ok(signer)
    }

    /// The signer key string. It holds the private key: store it as a secret. `None` for a
    /// key kept outside the process ([`NoteSigner::with_signer`]).
    pub fn to_key_string(&self) -> Option<Zeroizing<String>> {
        let NoteKey::Software(software) = &self.key else {
            return None;
        };
        let mut key = Zeroizing::new(Vec::with_capacity(1 + ED25519_KEY_LEN));
        key.push(ALG_ED25519);
        key.extend_from_slice(software.seed().as_slice());
        let encoded = Zeroizing::new(STANDARD.encode(key.as_slice()));
        Some(Zeroizing::new(format!(
            "{PRIVATE_KEY_PREFIX}{}+{:08x}+{}",
            self.name,
            self.key_id,
            encoded.as_str()
        )))
    }

    /// The verifier for this signer's notes.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.key_id
    }
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

impl NoteVerifier {
    /// A verifier for `key` under `name`.
    pub fn new(name: &str, key: Ed25519VerifyingKey) -> Result<Self, KeyStringError> {
        check_key_name(name)?;
        Ok(NoteVerifier {
            name: name.to_owned(),
            key_id: key_id(name, &key),
            key,
        })
    }

    /// Parses `<name>+<8 hex key id>+<base64(0x01 || public key)>`, refusing a key id that is
    /// not the key's and weak public keys.
    pub fn from_key_string(text: &str) -> Result<Self, KeyStringError> {
        let (name, key_id, key) = split_key_string(text)?;
        let key = Ed25519VerifyingKey::from_bytes(&key).map_err(KeyStringError::Key)?;
        let verifier = NoteVerifier::new(name, key)?;
        if verifier.key_id != key_id {
            return Err(KeyStringError::KeyIdMismatch);
        }
        Ok(verifier)
    }

    pub fn to_key_string(&self) -> String {
        let mut key = Vec::with_capacity(1 + ED25519_KEY_LEN);
        key.push(ALG_ED25519);
        key.extend_from_slice(&self.key.to_bytes());
        format!("{}+{:08x}+{}", self.name, self.key_id, STANDARD.encode(key))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.key_id
    }
}

impl fmt::Debug for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("NoteVerifier")
            .field(&self.to_key_string())
            .finish()
    }
}

impl fmt::Display for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_key_string())
    }
}

impl VerifiedNote {
    /// The signed text, ending in a newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn into_text(self) -> String {
        self.text
    }

    /// The name of the key whose signature verified.
    pub fn key_name(&self) -> &str {
        &self.key_name
    }

    pub fn key_id(&self) -> u32 {
        self.key_id
    }
}

/// Signs `text` (non-empty, ending in a newline, no other control characters) and returns the
/// signed note: the text, a blank line and one signature line.
pub fn sign_note(text: &str, signer: &NoteSigner) -> Result<String, NoteError> {
    if text.is_empty() || !text.ends_with('\n') {
        return Err(NoteError::UnterminatedText);
    }
    check_characters(text.as_bytes())?;
    let note = sign_checked_text(text, signer)?;
    if note.len() > MAX_NOTE_LEN {
        return Err(NoteError::TooLarge { len: note.len() });
    }
    Ok(note)
}

/// Opens a signed note: checks its shape and bounds, and requires a valid signature by
/// `verifier`'s key. Signatures by other keys are ignored.
pub fn open_note(
    note: impl AsRef<[u8]>,
    verifier: &NoteVerifier,
) -> Result<VerifiedNote, NoteError> {
    let bytes = note.as_ref();
    if bytes.len() > MAX_NOTE_LEN {
        return Err(NoteError::TooLarge { len: bytes.len() });
    }
    let note = std::str::from_utf8(bytes).map_err(|_| NoteError::NotUtf8)?;
    check_characters(bytes)?;

    // The text ends at the last blank line; everything after it is signature lines.
    let split = note.rfind("\n\n").ok_or(NoteError::MissingSignatures)?;
    let (text, signatures) = (
        note.get(..=split).ok_or(NoteError::MissingSignatures)?,
        note.get(split + 2..).ok_or(NoteError::MissingSignatures)?,
    );
    let Some(signatures) = signatures.strip_suffix('\n') else {
        return Err(NoteError::MissingSignatures);
    };
    if signatures.is_empty() {
        return Err(NoteError::MissingSignatures);
    }

    let mut verified = false;
    for (count, line) in signatures.split('\n').enumerate() {
        if count >= MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        let (name, key_id, signature) = parse_signature_line(line)?;
        if name != verifier.name || key_id != verifier.key_id {
            // Another key: a witness, a rotated key, anything we were not told to trust.
            continue;
        }
        verifier
            .key
            .verify(text.as_bytes(), &signature)
            .map_err(|_| NoteError::InvalidSignature)?;
        verified = true;
    }
    if !verified {
        return Err(NoteError::NoKnownSignature);
    }
    Ok(VerifiedNote {
        text: text.to_owned(),
        key_name: verifier.name.clone(),
        key_id: verifier.key_id,
    })
}

/// Signs text already known to be a valid note text. Fails only when an external signer does.
pub(crate) fn sign_checked_text(text: &str, signer: &NoteSigner) -> Result<String, NoteError> {
    let signature = signer.key.sign(text.as_bytes())?;
    let mut blob = Vec::with_capacity(4 + ED25519_SIGNATURE_LEN);
    blob.extend_from_slice(&signer.key_id.to_be_bytes());
    blob.extend_from_slice(&signature);
    Ok(format!(
        "{text}\n{SIGNATURE_PREFIX}{} {}\n",
        signer.name,
        STANDARD.encode(blob)
    ))
}

/// The key id of an Ed25519 key named `name`: `SHA-256(name || 0x0A || 0x01 || key)[:4]`.
fn key_id(name: &str, key: &Ed25519VerifyingKey) -> u32 {
    let mut input = Vec::with_capacity(name.len() + 2 + ED25519_KEY_LEN);
    input.extend_from_slice(name.as_bytes());
    input.push(b'\n');
    input.push(ALG_ED25519);
    input.extend_from_slice(&key.to_bytes());
    let digest = enigm_crypto::sha256(&input);
    let (id, _) = digest.split_first_chunk::<4>().unwrap_or((&[0; 4], &[]));
    u32::from_be_bytes(*id)
}

/// Key names are non-empty and contain no Unicode white space and no `+`; control characters
/// could not appear in a note either.
pub(crate) fn check_key_name(name: &str) -> Result<(), KeyStringError> {
    let valid = !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control());
    if valid {
        Ok(())
    } else {
        Err(KeyStringError::InvalidName)
    }
}

/// Splits `<name>+<8 hex key id>+<base64(0x01 || key)>` and returns the name, the key id and
/// the 32 key bytes. Base64 may itself contain `+`, so only the first two separate fields.
fn split_key_string(text: &str) -> Result<(&str, u32, Zeroizing<Vec<u8>>), KeyStringError> {
    // Bound the work: a key string is well under 200 bytes for any sensible name.
    if text.len() > 1024 {
        return Err(KeyStringError::Malformed);
    }
    let mut fields = text.splitn(3, '+');
    let (Some(name), Some(id_hex), Some(key64)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(KeyStringError::Malformed);
    };
    check_key_name(name)?;
    if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(KeyStringError::Malformed);
    }
    let key_id = u32::from_str_radix(id_hex, 16).map_err(|_| KeyStringError::Malformed)?;
    let key = Zeroizing::new(
        STANDARD
            .decode(key64)
            .map_err(|_| KeyStringError::Malformed)?,
    );
    match key.split_first() {
        Some((&ALG_ED25519, rest)) if rest.len() == ED25519_KEY_LEN => {
            Ok((name, key_id, Zeroizing::new(rest.to_vec())))
        }
        Some((&ALG_ED25519, _)) | None => Err(KeyStringError::Malformed),
        Some(_) => Err(KeyStringError::UnsupportedAlgorithm),
    }
}

/// Notes are UTF-8 without ASCII control characters other than newline. UTF-8 continuation and
/// lead bytes are all 0x80 or above, so looking at bytes is enough.
fn check_characters(bytes: &[u8]) -> Result<(), NoteError> {
    if bytes.iter().any(|&b| b < 0x20 && b != b'\n') {
        return Err(NoteError::ControlCharacter);
    }
    Ok(())
}

/// Parses `— <name> <base64(key id || signature)>` and returns the name, the key id and the
/// signature bytes.
fn parse_signature_line(line: &str) -> Result<(&str, u32, Vec<u8>), NoteError> {
    let rest = line
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or(NoteError::MalformedSignature)?;
    let (name, encoded) = rest.split_once(' ').ok_or(NoteError::MalformedSignature)?;
    check_key_name(name).map_err(|_| NoteError::MalformedSignature)?;
    let blob = STANDARD
        .decode(encoded)
        .map_err(|_| NoteError::MalformedSignature)?;
    // A key id and at least one byte of signature, as the reference implementation requires.
    let Some((key_id, signature)) = blob.split_first_chunk::<4>() else {
        return Err(NoteError::MalformedSignature);
    };
    if signature.is_empty() {
        return Err(NoteError::MalformedSignature);
    }
    Ok((name, u32::from_be_bytes(*key_id), signature.to_vec()))
}
