//! Requests from a device to Command, signed with the device's Ed25519 key.
//!
//! The format is a strict subset of RFC 9421 (HTTP Message Signatures) with RFC 9530
//! `Content-Digest`, so any implementation of those RFCs can produce or check it:
//!
//! ```text
//! Content-Digest: sha-256=:<base64 of SHA-256(body)>:
//! Signature-Input: sig1=("@method" "@path" "@query" "content-digest");created=<unix seconds>;nonce="<22 base64url>";keyid="<43 base64url of the public key>";alg="ed25519"
//! Signature: sig1=:<base64 of the Ed25519 signature>:
//! ```
//!
//! The signature covers the method, path, query, body digest, time and a fresh nonce, so a
//! request cannot be altered, moved to another route, or replayed outside the allowed clock
//! window; the server keeps the nonces it has seen inside that window. Only this one
//! serialisation is accepted: every header has exactly one valid spelling.
//!
//! `keyid` carries the device's public key. The server derives the device handle from it with
//! its handle key and stores neither the key nor anything else that identifies the hardware.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use enigm_crypto::{
    ED25519_KEY_LEN, ED25519_SIGNATURE_LEN, Ed25519SigningKey, Ed25519VerifyingKey,
};
use enigm_types::Timestamp;

pub const CONTENT_DIGEST: &str = "content-digest";
pub const SIGNATURE_INPUT: &str = "signature-input";
pub const SIGNATURE: &str = "signature";

/// Bytes of a request nonce.
pub const NONCE_LEN: usize = 16;
/// How far a request's `created` may be from the server's clock, either way, by default.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(5 * 60);

const COMPONENTS: &str = r#"("@method" "@path" "@query" "content-digest")"#;

/// The parts of a request the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// Upper-case HTTP method.
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The query without its `?`; empty when there is none.
    pub query: &'a str,
    pub body: &'a [u8],
}

/// The three headers of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    pub content_digest: String,
    pub signature_input: String,
    pub signature: String,
}

/// The headers as received; any may be missing.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReceivedHeaders<'a> {
    pub content_digest: Option<&'a str>,
    pub signature_input: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Why a device request was refused. Each is a stable category for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeviceAuthError {
    #[error("request is not signed: the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("the {0} header is malformed")]
    MalformedHeader(&'static str),
    #[error("the body does not match its content digest")]
    DigestMismatch,
    #[error("the device key is not a valid Ed25519 public key")]
    BadKey,
    #[error("the request signature is invalid")]
    BadSignature,
    #[error("the request was signed too long ago")]
    Stale,
    #[error("the request is dated in the future")]
    FromFuture,
}

/// A request whose signature, digest and time checked out. Only [`verify_request`] makes one.
/// Whether its nonce is fresh is the server's to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDeviceRequest {
    public_key: [u8; ED25519_KEY_LEN],
    nonce: [u8; NONCE_LEN],
    created: Timestamp,
}

impl VerifiedDeviceRequest {
    /// The device's public key: derive the handle from it, never store it.
    pub fn public_key(&self) -> &[u8; ED25519_KEY_LEN] {
        &self.public_key
    }

    pub fn nonce(&self) -> &[u8; NONCE_LEN] {
        &self.nonce
    }

    pub fn created(&self) -> Timestamp {
        self.created
    }
}

/// Signs a request (the agent's side).
pub fn sign_request(
    key: &Ed25519SigningKey,
    parts: &RequestParts<'_>,
    created: Timestamp,
    nonce: &[u8; NONCE_LEN],
) -> SignatureHeaders {
    let content_digest = content_digest(parts.body);
    let params = signature_params(
        created.unix_seconds(),
        &URL_SAFE_NO_PAD.encode(nonce),
        &URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes()),
    );
    let base = signature_base(parts, &content_digest, &params);
    let signature = key.sign(base.as_bytes());
    SignatureHeaders {
        content_digest,
        signature_input: format!("sig1={params}"),
        signature: format!("sig1=:{}:", STANDARD.encode(signature)),
    }
}

/// Checks a received request at `now`: digest, signature and time.
pub fn verify_request(
    parts: &RequestParts<'_>,
    headers: &ReceivedHeaders<'_>,
    now: Timestamp,
    max_skew: Duration,
) -> Result<VerifiedDeviceRequest, DeviceAuthError> {
    let digest = headers
        .content_digest
        .ok_or(DeviceAuthError::MissingHeader(CONTENT_DIGEST))?;
    let input = headers
        .signature_input
        .ok_or(DeviceAuthError::MissingHeader(SIGNATURE_INPUT))?;
    let signature = headers
        .signature
        .ok_or(DeviceAuthError::MissingHeader(SIGNATURE))?;

    let params = input
        .strip_prefix("sig1=")
        .ok_or(DeviceAuthError::MalformedHeader(SIGNATURE_INPUT))?;
    let parsed = parse_params(params).ok_or(DeviceAuthError::MalformedHeader(SIGNATURE_INPUT))?;
    let signature = signature
        .strip_prefix("sig1=:")
        .and_then(|rest| rest.strip_suffix(':'))
        .and_then(|text| decode_exact::<ED25519_SIGNATURE_LEN>(&STANDARD, text))
        .ok_or(DeviceAuthError::MalformedHeader(SIGNATURE))?;
    // The digest header must be the one canonical spelling of the body's digest.
    if !is_content_digest(digest) {
        return Err(DeviceAuthError::MalformedHeader(CONTENT_DIGEST));
    }
    if digest != content_digest(parts.body) {
        return Err(DeviceAuthError::DigestMismatch);
    }
    let key = Ed25519VerifyingKey::from_bytes(&parsed.key).map_err(|_| DeviceAuthError::BadKey)?;
    let base = signature_base(parts, digest, params);
    key.verify(base.as_bytes(), &signature)
        .map_err(|_| DeviceAuthError::BadSignature)?;

    let created = Timestamp::from_unix_millis(parsed.created.saturating_mul(1000));
    if created > now.saturating_add(max_skew) {
        return Err(DeviceAuthError::FromFuture);
    }
    if now.duration_since(created) > max_skew {
        return Err(DeviceAuthError::Stale);
    }
    Ok(VerifiedDeviceRequest {
        public_key: parsed.key,
        nonce: parsed.nonce,
        created,
    })
}

/// `sha-256=:<base64>:` of `body` (RFC 9530).
pub fn content_digest(body: &[u8]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(enigm_crypto::sha256(body)))
}

fn is_content_digest(text: &str) -> bool {
    text.strip_prefix("sha-256=:")
        .and_then(|rest| rest.strip_suffix(':'))
        .and_then(|b64| decode_exact::<32>(&STANDARD, b64))
        .is_some()
}

fn signature_params(created: i64, nonce: &str, keyid: &str) -> String {
    format!(r#"{COMPONENTS};created={created};nonce="{nonce}";keyid="{keyid}";alg="ed25519""#)
}

/// The RFC 9421 §2.5 signature base for our fixed component list.
fn signature_base(parts: &RequestParts<'_>, content_digest: &str, params: &str) -> String {
    format!(
        "\"@method\": {}\n\"@path\": {}\n\"@query\": ?{}\n\"content-digest\": {}\n\"@signature-params\": {}",
        parts.method, parts.path, parts.query, content_digest, params
    )
}

struct Params {
    created: i64,
    nonce: [u8; NONCE_LEN],
    key: [u8; ED25519_KEY_LEN],
}

/// Parses the one accepted serialisation of our signature parameters.
fn parse_params(params: &str) -> Option<Params> {
    let rest = params.strip_prefix(COMPONENTS)?.strip_prefix(";created=")?;
    let (created, rest) = rest.split_once(';')?;
    let canonical = !created.is_empty()
        && created.len() <= 12
        && created.bytes().all(|b| b.is_ascii_digit())
        && (created == "0" || !created.starts_with('0'));
    if !canonical {
        return None;
    }
    let created: i64 = created.parse().ok()?;
    let rest = rest.strip_prefix("nonce=\"")?;
    let (nonce, rest) = rest.split_once('"')?;
    let rest = rest.strip_prefix(";keyid=\"")?;
    let (keyid, rest) = rest.split_once('"')?;
    if rest != ";alg=\"ed25519\"" {
        return None;
    }
    Some(Params {
        created,
        nonce: decode_exact(&URL_SAFE_NO_PAD, nonce)?,
        key: decode_exact(&URL_SAFE_NO_PAD, keyid)?,
    })
}

/// Decodes base64 of exactly `N` bytes, refusing any other spelling of them.
fn decode_exact<const N: usize>(
    engine: &base64::engine::GeneralPurpose,
    text: &str,
) -> Option<[u8; N]> {
    // Base64 of N bytes is at most 4 * ceil(N / 3) characters; refuse longer before decoding.
    if text.len() > N.div_ceil(3) * 4 {
        return None;
    }
    let bytes = engine.decode(text).ok()?;
    let array: [u8; N] = bytes.as_slice().try_into().ok()?;
    (engine.encode(array) == text).then_some(array)
}

#[cfg(test)]
mod tests;
