//! The 32-byte SHA-256 hash of the log and the RFC 9162 §2.1 hashing rules.
//!
//! Leaves and interior nodes are hashed with distinct one-byte prefixes (0x00 and 0x01), so a
//! leaf can never be passed off as an interior node, or the reverse (second-preimage resistance
//! of the tree, RFC 9162 §2.1.1).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

#[cfg(test)]
mod tests;

/// A SHA-256 output: a leaf hash, an interior node hash or a tree root.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hash([u8; Hash::LEN]);

/// Why bytes or text are not a hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HashDecodeError {
    #[error("hash must be 32 bytes, got {0}")]
    Length(usize),
    #[error("hash is not canonical padded base64")]
    Base64,
}

/// Prefix of a leaf hash, RFC 9162 §2.1.1.
const LEAF_PREFIX: u8 = 0x00;
/// Prefix of an interior node hash, RFC 9162 §2.1.1.
const NODE_PREFIX: u8 = 0x01;

impl Hash {
    pub const LEN: usize = 32;

    pub const fn from_bytes(bytes: [u8; Hash::LEN]) -> Self {
        Hash(bytes)
    }

    /// Accepts exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, HashDecodeError> {
        <[u8; Hash::LEN]>::try_from(bytes)
            .map(Hash)
            .map_err(|_| HashDecodeError::Length(bytes.len()))
    }

    pub const fn as_bytes(&self) -> &[u8; Hash::LEN] {
        &self.0
    }

    /// Standard padded base64 (RFC 4648 §4), as checkpoints and proofs on the wire carry it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Parses standard padded base64 of exactly 32 bytes. Non-canonical encodings (set trailing
    /// bits, missing padding) are refused, so each hash has exactly one text form.
    pub fn from_base64(text: &str) -> Result<Self, HashDecodeError> {
        // 32 bytes encode to 44 characters; anything much longer is refused before decoding.
        if text.len() > 64 {
            return Err(HashDecodeError::Base64);
        }
        let bytes = STANDARD.decode(text).map_err(|_| HashDecodeError::Base64)?;
        Hash::from_slice(&bytes)
    }

    pub fn to_hex(&self) -> String {
        let mut text = String::with_capacity(2 * Hash::LEN);
        for byte in self.0 {
            text.push(hex_digit(byte >> 4));
            text.push(hex_digit(byte & 0x0f));
        }
        text
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl From<[u8; Hash::LEN]> for Hash {
    fn from(bytes: [u8; Hash::LEN]) -> Self {
        Hash(bytes)
    }
}

/// The hash of a leaf holding `data`: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut input = Vec::with_capacity(1 + data.len());
    input.push(LEAF_PREFIX);
    input.extend_from_slice(data);
    Hash(enigm_crypto::sha256(&input))
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    // A fixed buffer on the stack: interior nodes are hashed millions of times when a large
    // tree is built, and the input always has the same 65-byte shape.
    let mut input = [0u8; 1 + 2 * Hash::LEN];
    let (prefix, children) = input.split_at_mut(1);
    let (left_half, right_half) = children.split_at_mut(Hash::LEN);
    prefix.fill(NODE_PREFIX);
    left_half.copy_from_slice(&left.0);
    right_half.copy_from_slice(&right.0);
    Hash(enigm_crypto::sha256(&input))
}

/// The root of the empty tree: `SHA-256("")` (RFC 9162 §2.1.1).
pub fn empty_root() -> Hash {
    Hash(enigm_crypto::sha256(&[]))
}

fn hex_digit(nibble: u8) -> char {
    // INVARIANT: callers pass a value below 16, for which `from_digit` always succeeds.
    char::from_digit(u32::from(nibble), 16).unwrap_or('0')
}
