//! The per-connection proof a device signs with its device key, and the `Proxy-Authorization`
//! value that carries credential and proof.
//!
//! ```text
//! version (1 = 0x01) ‖ nonce (16) ‖ created (i64 ms, big-endian) ‖ target length (u16)
//!   ‖ target (canonical authority) ‖ Ed25519 signature (64)
//! ```
//!
//! The signature covers `"enigm proxy proof v1\n"`, the credential id, and every byte of the
//! proof before it. The header value is `Enigm <base64url(credential)>.<base64url(proof)>`
//! (unpadded), an RFC 9110 `token68`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use enigm_crypto::{ED25519_SIGNATURE_LEN, Ed25519SigningKey};
use enigm_types::Timestamp;

use crate::credential::{CREDENTIAL_LEN, Credential, CredentialId};
use crate::target::{MAX_TARGET_LEN, TargetAuthority};
use crate::wire::{ParseError, Reader, put_timestamp};

/// Bytes of a proof's nonce.
pub const PROOF_NONCE_LEN: usize = 16;
/// The authentication scheme of the `Proxy-Authorization` header.
pub const AUTHORIZATION_SCHEME: &str = "Enigm";
const VERSION: u8 = 1;
const DOMAIN: &[u8] = b"enigm proxy proof v1\n";
const MAX_PROOF_LEN: usize = 1 + PROOF_NONCE_LEN + 8 + 2 + MAX_TARGET_LEN + ED25519_SIGNATURE_LEN;
/// The longest `Proxy-Authorization` value accepted (scheme, both parts in base64url).
pub const MAX_AUTHORIZATION_LEN: usize = AUTHORIZATION_SCHEME.len()
    + 1
    + (CREDENTIAL_LEN * 4).div_ceil(3)
    + 1
    + (MAX_PROOF_LEN * 4).div_ceil(3);

/// A device's proof for one connection. Parsing checks only its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    nonce: [u8; PROOF_NONCE_LEN],
    created: Timestamp,
    target: String,
    signature: [u8; ED25519_SIGNATURE_LEN],
}

impl Proof {
    /// Signs a proof for a connection to `target` with the device key the credential names
    /// (the device's side). `nonce` must be fresh and random for every connection.
    pub fn sign(
        device_key: &Ed25519SigningKey,
        credential: &Credential,
        target: &TargetAuthority,
        nonce: [u8; PROOF_NONCE_LEN],
        created: Timestamp,
    ) -> Proof {
        let body = body_bytes(&nonce, created, target.as_str());
        let signature = device_key.sign(&signing_input(credential.claims().id, &body));
        Proof {
            nonce,
            created,
            target: target.as_str().to_owned(),
            signature,
        }
    }

    pub fn nonce(&self) -> &[u8; PROOF_NONCE_LEN] {
        &self.nonce
    }

    pub fn created(&self) -> Timestamp {
        self.created
    }

    /// The target as the device signed it.
    pub fn target(&self) -> &str {
        &self.target
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = body_bytes(&self.nonce, self.created, &self.target);
        out.extend_from_slice(&self.signature);
        out
    }

    pub fn parse(bytes: &[u8]) -> Result<Proof, ParseError> {
        if bytes.len() > MAX_PROOF_LEN {
            return Err(ParseError::TooLong);
        }
        let mut reader = Reader::new(bytes);
        reader.version(VERSION)?;
        let nonce = reader.array()?;
        let created = reader.timestamp()?;
        let target_len = usize::from(u16::from_be_bytes(reader.array()?));
        if target_len > MAX_TARGET_LEN {
            return Err(ParseError::Field("target"));
        }
        let target = std::str::from_utf8(reader.take(target_len)?)
            .map_err(|_| ParseError::Field("target"))?
            .to_owned();
        let signature = reader.array()?;
        reader.finish()?;
        Ok(Proof {
            nonce,
            created,
            target,
            signature,
        })
    }

    pub(crate) fn signature(&self) -> &[u8; ED25519_SIGNATURE_LEN] {
        &self.signature
    }

    pub(crate) fn signing_input(&self, id: CredentialId) -> Vec<u8> {
        signing_input(id, &body_bytes(&self.nonce, self.created, &self.target))
    }
}

/// The `Proxy-Authorization` header value for a credential and a proof.
pub fn authorization(credential: &Credential, proof: &Proof) -> String {
    format!(
        "{AUTHORIZATION_SCHEME} {}.{}",
        URL_SAFE_NO_PAD.encode(credential.to_bytes()),
        URL_SAFE_NO_PAD.encode(proof.to_bytes())
    )
}

/// Parses a `Proxy-Authorization` value into its credential and proof, refusing anything longer
/// than [`MAX_AUTHORIZATION_LEN`] before decoding.
pub fn parse_authorization(value: &str) -> Result<(Credential, Proof), ParseError> {
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err(ParseError::TooLong);
    }
    let token = value
        .strip_prefix(AUTHORIZATION_SCHEME)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or(ParseError::Field("scheme"))?;
    let (credential, proof) = token
        .split_once('.')
        .ok_or(ParseError::Field("authorization"))?;
    let credential = URL_SAFE_NO_PAD
        .decode(credential)
        .map_err(|_| ParseError::Field("credential encoding"))?;
    let proof = URL_SAFE_NO_PAD
        .decode(proof)
        .map_err(|_| ParseError::Field("proof encoding"))?;
    Ok((Credential::parse(&credential)?, Proof::parse(&proof)?))
}

fn body_bytes(nonce: &[u8; PROOF_NONCE_LEN], created: Timestamp, target: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAX_PROOF_LEN);
    out.push(VERSION);
    out.extend_from_slice(nonce);
    put_timestamp(&mut out, created);
    // INVARIANT: targets come from `TargetAuthority` (at most MAX_TARGET_LEN bytes) or from a
    // parse that bounded them the same way, so the length fits in a u16.
    let len = u16::try_from(target.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(target.as_bytes());
    out
}

fn signing_input(id: CredentialId, body: &[u8]) -> Vec<u8> {
    let mut input = DOMAIN.to_vec();
    input.extend_from_slice(&id.to_bytes());
    input.extend_from_slice(body);
    input
}
