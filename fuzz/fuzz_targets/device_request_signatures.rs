//! Fuzzes the check of every request a device sends Command: the RFC 9421 `Signature-Input`
//! and `Signature` headers and the RFC 9530 `Content-Digest` (`enigm_device::verify_request`).
//!
//! The first byte picks the mode:
//! - even, **forge**: the rest is split into method, path, query, body and the three headers
//!   (each a two-byte big-endian length and its bytes, as text), verified at a fixed time.
//!   Properties: a request that verifies has the one spelling of each header that its key,
//!   nonce, time and body give; its time is within the allowed skew;
//! - odd, **tamper**: a two-byte position and a one-byte mask, then method, path, query and
//!   body as above. The target signs that request with its own key, checks that it verifies and
//!   names the key, nonce and time it was signed with, then flips the mask's bits at the position
//!   in the request's parts and headers laid end to end: whatever changed, the request no longer
//!   verifies.

#![no_main]

use enigm_crypto::Ed25519SigningKey;
use enigm_device::{
    DEFAULT_MAX_SKEW, DeviceAuthError, ReceivedHeaders, RequestParts, SignatureHeaders,
    VerifiedDeviceRequest, content_digest, sign_request, verify_request,
};
use enigm_types::Timestamp;
use libfuzzer_sys::fuzz_target;

/// 2026-11-22T00:00:00Z.
const NOW: Timestamp = Timestamp::from_unix_millis(1_795_305_600_000);
const NONCE: [u8; 16] = [0x4e; 16];

fn own_key() -> Ed25519SigningKey {
    Ed25519SigningKey::from_seed(&[7; 32])
}

/// Splits off a two-byte big-endian length and that many bytes (fewer at the end of the input).
fn take<'a>(input: &mut &'a [u8]) -> &'a [u8] {
    let Some((length, rest)) = input.split_first_chunk::<2>() else {
        return std::mem::take(input);
    };
    let (part, rest) = rest.split_at(usize::from(u16::from_be_bytes(*length)).min(rest.len()));
    *input = rest;
    part
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A request as Command receives it: the parts the signature covers and the three headers.
struct Received {
    method: String,
    path: String,
    query: String,
    body: Vec<u8>,
    headers: SignatureHeaders,
}

impl Received {
    fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            body: &self.body,
        }
    }

    fn headers(&self) -> ReceivedHeaders<'_> {
        ReceivedHeaders {
            content_digest: Some(&self.headers.content_digest),
            signature_input: Some(&self.headers.signature_input),
            signature: Some(&self.headers.signature),
        }
    }

    fn verify(&self) -> Result<VerifiedDeviceRequest, DeviceAuthError> {
        verify_request(&self.parts(), &self.headers(), NOW, DEFAULT_MAX_SKEW)
    }

    /// Its parts and headers as bytes, in the order [`Received::from_fields`] reads them.
    fn fields(self) -> [Vec<u8>; 7] {
        [
            self.method.into_bytes(),
            self.path.into_bytes(),
            self.query.into_bytes(),
            self.body,
            self.headers.content_digest.into_bytes(),
            self.headers.signature_input.into_bytes(),
            self.headers.signature.into_bytes(),
        ]
    }

    /// `None` when a part that is text is not UTF-8: no HTTP stack would hand it over.
    fn from_fields(fields: [Vec<u8>; 7]) -> Option<Received> {
        let [
            method,
            path,
            query,
            body,
            digest,
            signature_input,
            signature,
        ] = fields;
        Some(Received {
            method: String::from_utf8(method).ok()?,
            path: String::from_utf8(path).ok()?,
            query: String::from_utf8(query).ok()?,
            body,
            headers: SignatureHeaders {
                content_digest: String::from_utf8(digest).ok()?,
                signature_input: String::from_utf8(signature_input).ok()?,
                signature: String::from_utf8(signature).ok()?,
            },
        })
    }
}

fn forge(mut input: &[u8]) {
    let request = Received {
        method: text(take(&mut input)),
        path: text(take(&mut input)),
        query: text(take(&mut input)),
        body: take(&mut input).to_vec(),
        headers: SignatureHeaders {
            content_digest: text(take(&mut input)),
            signature_input: text(take(&mut input)),
            signature: text(take(&mut input)),
        },
    };
    if let Ok(verified) = request.verify() {
        assert_eq!(
            request.headers.content_digest,
            content_digest(&request.body)
        );
        assert!(verified.created() <= NOW.saturating_add(DEFAULT_MAX_SKEW));
        assert!(NOW.duration_since(verified.created()) <= DEFAULT_MAX_SKEW);
        // The one spelling: the key's, nonce's and time's own signature parameters.
        let expected = spelling(verified.public_key(), verified.nonce(), verified.created());
        assert_eq!(request.headers.signature_input, expected);
    }
    // Missing headers are refused before anything is read.
    let received = request.headers();
    for missing in [
        ReceivedHeaders {
            content_digest: None,
            ..received
        },
        ReceivedHeaders {
            signature_input: None,
            ..received
        },
        ReceivedHeaders {
            signature: None,
            ..received
        },
    ] {
        assert!(verify_request(&request.parts(), &missing, NOW, DEFAULT_MAX_SKEW).is_err());
    }
}

/// `Signature-Input` as `sign_request` writes it, restated here.
fn spelling(key: &[u8; 32], nonce: &[u8; 16], created: Timestamp) -> String {
    use base64::Engine as _;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        r#"sig1=("@method" "@path" "@query" "content-digest");created={};nonce="{}";keyid="{}";alg="ed25519""#,
        created.unix_seconds(),
        url.encode(nonce),
        url.encode(key)
    )
}

fn tamper(input: &[u8]) {
    let Some(([high, low, mask], mut input)) = input.split_first_chunk::<3>() else {
        return;
    };
    let (Ok(method), Ok(path), Ok(query)) = (
        String::from_utf8(take(&mut input).to_vec()),
        String::from_utf8(take(&mut input).to_vec()),
        String::from_utf8(take(&mut input).to_vec()),
    ) else {
        return;
    };
    let body = take(&mut input).to_vec();
    let key = own_key();
    let created = Timestamp::from_unix_millis(NOW.unix_millis() - 30_000);
    let parts = RequestParts {
        method: &method,
        path: &path,
        query: &query,
        body: &body,
    };
    let headers = sign_request(&key, &parts, created, &NONCE);
    let signed = Received {
        method,
        path,
        query,
        body,
        headers,
    };
    let verified = signed.verify().expect("a request the key signed verifies");
    assert_eq!(verified.public_key(), &key.verifying_key().to_bytes());
    assert_eq!(verified.nonce(), &NONCE);
    assert_eq!(verified.created().unix_seconds(), created.unix_seconds());

    if *mask == 0 {
        return;
    }
    let mut fields = signed.fields();
    let total: usize = fields.iter().map(Vec::len).sum();
    let mut position = usize::from(u16::from_be_bytes([*high, *low])) % total;
    for field in &mut fields {
        if position < field.len() {
            field[position] ^= mask;
            break;
        }
        position -= field.len();
    }
    if let Some(tampered) = Received::from_fields(fields) {
        assert!(
            tampered.verify().is_err(),
            "a signed request verified after bits of it were flipped"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((mode, rest)) if mode % 2 == 0 => forge(rest),
        Some((_, rest)) => tamper(rest),
        None => {}
    }
});
