//! One Ed25519 signing interface over where the private key lives: in memory
//! ([`Ed25519SigningKey`]) or on a PKCS#11 token ([`Pkcs11Ed25519Key`]), so that a format such
//! as the audit log's signed notes is written once and signs through either without doing I/O
//! itself.

use std::fmt;

use crate::ed25519::{ED25519_SIGNATURE_LEN, Ed25519SigningKey, Ed25519VerifyingKey};
use crate::pkcs11::{Pkcs11Error, Pkcs11Key, PublicKey};

/// Something that makes pure Ed25519 (RFC 8032) signatures with one key.
pub trait Ed25519Signer: fmt::Debug + Send + Sync {
    /// The public half of the key.
    fn verifying_key(&self) -> Ed25519VerifyingKey;

    /// Signs `message`. A key in memory never fails; a token may be unreachable.
    fn sign_ed25519(&self, message: &[u8]) -> Result<[u8; ED25519_SIGNATURE_LEN], SignerError>;
}

/// Why a signer could not sign. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignerError {
    #[error("the token did not sign: {0}")]
    Token(String),
    #[error("the token's signature is not 64 bytes")]
    SignatureLength,
}

impl Ed25519Signer for Ed25519SigningKey {
    fn verifying_key(&self) -> Ed25519VerifyingKey {
        Ed25519SigningKey::verifying_key(self)
    }

    fn sign_ed25519(&self, message: &[u8]) -> Result<[u8; ED25519_SIGNATURE_LEN], SignerError> {
        Ok(self.sign(message))
    }
}

/// An Ed25519 key pair on a PKCS#11 token, with its public key checked once as an acceptable
/// Ed25519 key (a point of large order).
#[derive(Debug)]
pub struct Pkcs11Ed25519Key {
    key: Pkcs11Key,
    verifying: Ed25519VerifyingKey,
}

/// Why a token key cannot sign as Ed25519.
#[derive(Debug, thiserror::Error)]
pub enum Pkcs11Ed25519Error {
    #[error("the key `{0}` is not an Ed25519 key")]
    NotEd25519(String),
    #[error("the token's public key of `{0}` is not an acceptable Ed25519 key")]
    InvalidPublicKey(String),
}

impl Pkcs11Ed25519Key {
    /// Takes `key` if it is Ed25519 with an acceptable public key.
    pub fn new(key: Pkcs11Key) -> Result<Self, Pkcs11Ed25519Error> {
        let label = || key.label().chars().take(64).collect::<String>();
        let PublicKey::Ed25519(public) = key.public_key() else {
            return Err(Pkcs11Ed25519Error::NotEd25519(label()));
        };
        let verifying = Ed25519VerifyingKey::from_bytes(&public)
            .map_err(|_| Pkcs11Ed25519Error::InvalidPublicKey(label()))?;
        Ok(Pkcs11Ed25519Key { key, verifying })
    }

    /// The key on the token, e.g. to check that its private half is protected.
    pub fn token_key(&self) -> &Pkcs11Key {
        &self.key
    }
}

impl Ed25519Signer for Pkcs11Ed25519Key {
    fn verifying_key(&self) -> Ed25519VerifyingKey {
        self.verifying
    }

    fn sign_ed25519(&self, message: &[u8]) -> Result<[u8; ED25519_SIGNATURE_LEN], SignerError> {
        let signature = self
            .key
            .sign(message)
            .map_err(|error: Pkcs11Error| SignerError::Token(error.to_string()))?;
        signature
            .as_slice()
            .try_into()
            .map_err(|_| SignerError::SignatureLength)
    }
}
