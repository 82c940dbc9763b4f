//! TUF public keys: `ed25519` (raw 32-byte hex) and `ecdsa` / `ecdsa-sha2-nistp256` (PEM
//! SubjectPublicKeyInfo, ASN.1 DER signatures), as securesystemslib writes them. A key id is
//! the SHA-256 of the key's canonical JSON.

use base64::Engine as _;
use enigm_crypto::Ed25519VerifyingKey;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::canonical::canonical_json;

/// A key id: lower-case hex SHA-256.
pub type KeyId = String;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    pub keytype: String,
    pub scheme: String,
    pub keyval: KeyValue,
    /// Fields this client does not know, kept so that the key id stays the signer's.
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    pub public: String,
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}

/// Why a signature does not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("unsupported key type or scheme")]
    Unsupported,
    #[error("the public key is malformed")]
    MalformedKey,
    #[error("the signature is malformed")]
    MalformedSignature,
    #[error("the signature does not verify")]
    Invalid,
}

impl Key {
    /// An Ed25519 key.
    pub fn ed25519(public: &[u8; 32]) -> Key {
        Key {
            keytype: "ed25519".to_owned(),
            scheme: "ed25519".to_owned(),
            keyval: KeyValue {
                public: hex::encode(public),
                unrecognized: Map::new(),
            },
            unrecognized: Map::new(),
        }
    }

    /// An ECDSA P-256 key from its uncompressed point.
    pub fn ecdsa_p256(point: &[u8; 65]) -> Key {
        let spki = enigm_crypto::p256_spki_from_point(point);
        let body = base64::engine::general_purpose::STANDARD.encode(spki);
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for line in body.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        Key {
            keytype: "ecdsa".to_owned(),
            scheme: "ecdsa-sha2-nistp256".to_owned(),
            keyval: KeyValue {
                public: pem,
                unrecognized: Map::new(),
            },
            unrecognized: Map::new(),
        }
    }

    /// SHA-256 of the canonical JSON of the key.
    pub fn key_id(&self) -> KeyId {
        let value = serde_json::to_value(self).unwrap_or(Value::Null);
        let bytes = canonical_json(&value).unwrap_or_default();
        hex::encode(enigm_crypto::sha256(&bytes))
    }

    /// Verifies `signature` (raw bytes, decoded from the metadata's hex) over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        match (self.keytype.as_str(), self.scheme.as_str()) {
            ("ed25519", "ed25519") => {
                let public =
                    hex::decode(&self.keyval.public).map_err(|_| KeyError::MalformedKey)?;
                let key =
                    Ed25519VerifyingKey::from_bytes(&public).map_err(|_| KeyError::MalformedKey)?;
                key.verify(message, signature)
                    .map(|_| ())
                    .map_err(|_| KeyError::Invalid)
            }
            ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") => {
                let spki = pem_body(&self.keyval.public).ok_or(KeyError::MalformedKey)?;
                let point = enigm_crypto::p256_point_from_spki(&spki)
                    .map_err(|_| KeyError::MalformedKey)?;
                enigm_crypto::verify_ecdsa_p256_sha256_der(&point, message, signature)
                    .map(|_| ())
                    .map_err(|_| KeyError::Invalid)
            }
            ("rsa", "rsassa-pss-sha256") => {
                let spki = pem_body(&self.keyval.public).ok_or(KeyError::MalformedKey)?;
                enigm_crypto::verify_rsa_pss_sha256_spki(&spki, message, signature)
                    .map(|_| ())
                    .map_err(|_| KeyError::Invalid)
            }
            _ => Err(KeyError::Unsupported),
        }
    }
}

/// The DER inside a `PUBLIC KEY` PEM block.
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body = pem
        .trim()
        .strip_prefix("-----BEGIN PUBLIC KEY-----")?
        .strip_suffix("-----END PUBLIC KEY-----")?;
    let compact: String = body.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
}
