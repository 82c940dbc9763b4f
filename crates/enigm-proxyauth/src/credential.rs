//! The credential Command issues: what it says ([`CredentialClaims`]) and its one encoding,
//! signed by Command's proxy-credential key.
//!
//! ```text
//! version (1 = 0x01) ‖ id (16) ‖ device handle (36, ASCII) ‖ device public key (32)
//!   ‖ issued at (i64 ms, big-endian) ‖ expires at (i64 ms) ‖ Ed25519 signature (64)
//! ```
//!
//! The signature covers `"enigm proxy credential v1\n"` followed by every byte before it.

use std::fmt;

use enigm_crypto::{ED25519_KEY_LEN, ED25519_SIGNATURE_LEN, Ed25519SigningKey};
use enigm_types::{DeviceHandle, Timestamp};

use crate::wire::{ParseError, Reader, put_timestamp};

/// Bytes of a credential id.
pub const CREDENTIAL_ID_LEN: usize = 16;
const HANDLE_LEN: usize = 36;
const VERSION: u8 = 1;
const CLAIMS_LEN: usize = 1 + CREDENTIAL_ID_LEN + HANDLE_LEN + ED25519_KEY_LEN + 8 + 8;
/// Bytes of an encoded credential.
pub const CREDENTIAL_LEN: usize = CLAIMS_LEN + ED25519_SIGNATURE_LEN;
const DOMAIN: &[u8] = b"enigm proxy credential v1\n";

/// A credential's random id (128 bits): how proofs name it and how the revocation list lists it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CredentialId([u8; CREDENTIAL_ID_LEN]);

impl CredentialId {
    pub const fn from_bytes(bytes: [u8; CREDENTIAL_ID_LEN]) -> Self {
        CredentialId(bytes)
    }

    pub const fn to_bytes(self) -> [u8; CREDENTIAL_ID_LEN] {
        self.0
    }

    /// Lower-case hex, the spelling the store keeps.
    pub fn to_hex(self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Parses [`CredentialId::to_hex`]'s spelling.
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != CREDENTIAL_ID_LEN * 2 || !text.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; CREDENTIAL_ID_LEN];
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        (CredentialId(bytes).to_hex() == text).then_some(CredentialId(bytes))
    }
}

impl fmt::Debug for CredentialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CredentialId({})", self.to_hex())
    }
}

impl fmt::Display for CredentialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// What a credential says: which device (handle and the key it must prove possession of), and
/// for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialClaims {
    pub id: CredentialId,
    pub handle: DeviceHandle,
    pub device_key: [u8; ED25519_KEY_LEN],
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A credential as encoded: claims and Command's signature. Parsing checks only its shape;
/// nothing in it is trusted until [`crate::ProxyVerifier::verify`] has checked the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    claims: CredentialClaims,
    signature: [u8; ED25519_SIGNATURE_LEN],
}

impl Credential {
    /// Signs `claims` with Command's proxy-credential key (Command's side).
    pub fn issue(key: &Ed25519SigningKey, claims: CredentialClaims) -> Credential {
        let signature = key.sign(&signing_input(&claims));
        Credential { claims, signature }
    }

    /// The claims, unverified: a device reads its own credential's expiry with this.
    pub fn claims(&self) -> &CredentialClaims {
        &self.claims
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = claims_bytes(&self.claims);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Parses the encoding; exactly [`CREDENTIAL_LEN`] bytes of the current version.
    pub fn parse(bytes: &[u8]) -> Result<Credential, ParseError> {
        if bytes.len() > CREDENTIAL_LEN {
            return Err(ParseError::TooLong);
        }
        let mut reader = Reader::new(bytes);
        reader.version(VERSION)?;
        let id = CredentialId(reader.array()?);
        let handle = reader.take(HANDLE_LEN)?;
        let handle = std::str::from_utf8(handle)
            .ok()
            .and_then(|text| text.parse::<DeviceHandle>().ok())
            .ok_or(ParseError::Field("device handle"))?;
        let device_key = reader.array()?;
        let issued_at = reader.timestamp()?;
        let expires_at = reader.timestamp()?;
        let signature = reader.array()?;
        reader.finish()?;
        Ok(Credential {
            claims: CredentialClaims {
                id,
                handle,
                device_key,
                issued_at,
                expires_at,
            },
            signature,
        })
    }

    pub(crate) fn signature(&self) -> &[u8; ED25519_SIGNATURE_LEN] {
        &self.signature
    }

    pub(crate) fn signing_input(&self) -> Vec<u8> {
        signing_input(&self.claims)
    }
}

fn claims_bytes(claims: &CredentialClaims) -> Vec<u8> {
    let mut out = Vec::with_capacity(CREDENTIAL_LEN);
    out.push(VERSION);
    out.extend_from_slice(&claims.id.0);
    out.extend_from_slice(claims.handle.as_str().as_bytes());
    out.extend_from_slice(&claims.device_key);
    put_timestamp(&mut out, claims.issued_at);
    put_timestamp(&mut out, claims.expires_at);
    out
}

fn signing_input(claims: &CredentialClaims) -> Vec<u8> {
    let mut input = DOMAIN.to_vec();
    input.extend_from_slice(&claims_bytes(claims));
    input
}
