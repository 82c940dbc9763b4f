//! Wire types of Enigm Proxy credentials: what a device asks for and gets, and what a proxy
//! reads to pin Command's key and learn revocations. The credential and the revocation list
//! travel in their signed binary form (base64url, unpadded); `enigm-proxyauth` parses them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A device's request for a proxy credential: an empty object (the signed request says who).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyCredentialRequest {}

/// A credential Command issued to the signing device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyCredentialView {
    /// The signed credential (base64url, unpadded), presented to the proxy with a fresh proof.
    #[schema(pattern = "^[A-Za-z0-9_-]+$")]
    pub credential: String,
    /// The credential's id (32 hex digits), as revocation lists name it.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub id: String,
    #[schema(format = DateTime)]
    pub issued_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// The public key proxies pin to verify credentials and revocation lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyCredentialKeyView {
    /// Always `ed25519`.
    pub algorithm: String,
    /// The 32-byte public key (base64url, unpadded).
    #[schema(pattern = "^[A-Za-z0-9_-]{43}$")]
    pub key: String,
}

/// The current revocation list: the ids of live credentials whose device no longer qualifies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyRevocationsView {
    /// The signed list (base64url, unpadded); trust it only after verifying it.
    #[schema(pattern = "^[A-Za-z0-9_-]+$")]
    pub list: String,
    #[schema(format = DateTime)]
    pub issued_at: String,
    /// How many ids it lists.
    pub revoked: u64,
}
