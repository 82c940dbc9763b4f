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
    DEFAULT_MAX_SKEW, ReceivedHeaders, RequestParts, SignatureHeaders, content_digest,
    sign_request, verify_request,
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

fn forge(mut input: &[u8]) {
    let method = text(take(&mut input));
    let path = text(take(&mut input));
    let query = text(take(&mut input));
    let body = take(&mut input).to_vec();
    let digest = text(take(&mut input));
    let signature_input = text(take(&mut input));
    let signature = text(take(&mut input));
    let parts = RequestParts {
        method: &method,
        path: &path,
        query: &query,
        body: &body,
    };
    let received = ReceivedHeaders {
        content_digest: Some(&digest),
        signature_input: Some(&signature_input),
        signature: Some(&signature),
    };
    if let Ok(verified) = verify_request(&parts, &received, NOW, DEFAULT_MAX_SKEW) {
        assert_eq!(digest, content_digest(&body));
        assert!(verified.created() <= NOW.saturating_add(DEFAULT_MAX_SKEW));
        assert!(NOW.duration_since(verified.created()) <= DEFAULT_MAX_SKEW);
        // The one spelling: the key's, nonce's and time's own signature parameters.
        let expected = spelling(verified.public_key(), verified.nonce(), verified.created());
        assert_eq!(signature_input, expected);
    }
    // Missing headers are refused before anything is read.
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
        assert!(verify_request(&parts, &missing, NOW, DEFAULT_MAX_SKEW).is_err());
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
    let method = take(&mut input).to_vec();
    let path = take(&mut input).to_vec();
    let query = take(&mut input).to_vec();
    let body = take(&mut input).to_vec();
    let (Ok(method_text), Ok(path_text), Ok(query_text)) = (
        std::str::from_utf8(&method),
        std::str::from_utf8(&path),
        std::str::from_utf8(&query),
    ) else {
        return;
    };
    let key = own_key();
    let created = Timestamp::from_unix_millis(NOW.unix_millis() - 30_000);
    let parts = RequestParts {
        method: method_text,
        path: path_text,
        query: query_text,
        body: &body,
    };
    let headers = sign_request(&key, &parts, created, &NONCE);
    let verified = verify_request(&parts, &received(&headers), NOW, DEFAULT_MAX_SKEW)
        .expect("a request the key signed verifies");
    assert_eq!(verified.public_key(), &key.verifying_key().to_bytes());
    assert_eq!(verified.nonce(), &NONCE);
    assert_eq!(verified.created().unix_seconds(), created.unix_seconds());

    if *mask == 0 {
        return;
    }
    let fields = [
        method.clone(),
        path.clone(),
        query.clone(),
        body.clone(),
        headers.content_digest.clone().into_bytes(),
        headers.signature_input.clone().into_bytes(),
        headers.signature.clone().into_bytes(),
    ];
    let total: usize = fields.iter().map(Vec::len).sum();
    let mut position = usize::from(u16::from_be_bytes([*high, *low])) % total;
    let mut changed = fields.clone();
    for field in &mut changed {
        if position < field.len() {
            field[position] ^= mask;
            break;
        }
        position -= field.len();
    }
    let [
        method,
        path,
        query,
        body,
        digest,
        signature_input,
        signature,
    ] = changed;
    let (Ok(method), Ok(path), Ok(query), Ok(digest), Ok(signature_input), Ok(signature)) = (
        String::from_utf8(method),
        String::from_utf8(path),
        String::from_utf8(query),
        String::from_utf8(digest),
        String::from_utf8(signature_input),
        String::from_utf8(signature),
    ) else {
        // Not text any more: no HTTP stack would hand it over as a header or path.
        return;
    };
    let parts = RequestParts {
        method: &method,
        path: &path,
        query: &query,
        body: &body,
    };
    let tampered = ReceivedHeaders {
        content_digest: Some(&digest),
        signature_input: Some(&signature_input),
        signature: Some(&signature),
    };
    assert!(
        verify_request(&parts, &tampered, NOW, DEFAULT_MAX_SKEW).is_err(),
        "a signed request verified after bits of it were flipped"
    );
}

fn received(headers: &SignatureHeaders) -> ReceivedHeaders<'_> {
    ReceivedHeaders {
        content_digest: Some(&headers.content_digest),
        signature_input: Some(&headers.signature_input),
        signature: Some(&headers.signature),
    }
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((mode, rest)) if mode % 2 == 0 => forge(rest),
        Some((_, rest)) => tamper(rest),
        None => {}
    }
});
