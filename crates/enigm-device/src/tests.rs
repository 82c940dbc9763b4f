#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use proptest::prelude::*;

use super::*;

const NOW: Timestamp = Timestamp::from_unix_millis(1_795_305_600_000);

fn key() -> Ed25519SigningKey {
    Ed25519SigningKey::from_seed(&[42; 32])
}

fn parts(body: &[u8]) -> RequestParts<'_> {
    RequestParts {
        method: "POST",
        path: "/api/v1/device/check-ins",
        query: "",
        body,
    }
}

fn received(headers: &SignatureHeaders) -> ReceivedHeaders<'_> {
    ReceivedHeaders {
        content_digest: Some(&headers.content_digest),
        signature_input: Some(&headers.signature_input),
        signature: Some(&headers.signature),
    }
}

fn verify(
    parts: &RequestParts<'_>,
    headers: &SignatureHeaders,
) -> Result<VerifiedDeviceRequest, DeviceAuthError> {
    verify_request(parts, &received(headers), NOW, DEFAULT_MAX_SKEW)
}

#[test]
fn a_signed_request_verifies_and_names_its_key_and_nonce() {
    let body = br#"{"signals":[]}"#;
    let headers = sign_request(&key(), &parts(body), NOW, &[9; NONCE_LEN]);
    let verified = verify(&parts(body), &headers).unwrap();
    assert_eq!(verified.public_key(), &key().verifying_key().to_bytes());
    assert_eq!(verified.nonce(), &[9; NONCE_LEN]);
    assert_eq!(verified.created(), NOW);
    assert!(headers.signature_input.starts_with(
        r#"sig1=("@method" "@path" "@query" "content-digest");created=1795305600;nonce=""#
    ));
    assert!(headers.signature_input.ends_with(r#";alg="ed25519""#));
    // RFC 9530's example: SHA-256 of `{"hello": "world"}\n`... here of our body, by hand.
    assert_eq!(
        content_digest(b""),
        "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
    );
}

#[test]
fn any_change_to_a_covered_part_breaks_the_signature() {
    let body = br#"{"signals":[]}"#;
    let headers = sign_request(&key(), &parts(body), NOW, &[1; NONCE_LEN]);
    let moved = RequestParts {
        path: "/api/v1/device/enroll",
        ..parts(body)
    };
    assert_eq!(verify(&moved, &headers), Err(DeviceAuthError::BadSignature));
    let method = RequestParts {
        method: "PUT",
        ..parts(body)
    };
    assert_eq!(
        verify(&method, &headers),
        Err(DeviceAuthError::BadSignature)
    );
    let query = RequestParts {
        query: "x=1",
        ..parts(body)
    };
    assert_eq!(verify(&query, &headers), Err(DeviceAuthError::BadSignature));
    assert_eq!(
        verify(&parts(br#"{"signals":[1]}"#), &headers),
        Err(DeviceAuthError::DigestMismatch)
    );
    // A body swapped together with a matching digest still fails the signature.
    let other = br#"{"other":true}"#;
    let forged = SignatureHeaders {
        content_digest: content_digest(other),
        ..headers.clone()
    };
    assert_eq!(
        verify(&parts(other), &forged),
        Err(DeviceAuthError::BadSignature)
    );
    // Another key's signature over the same request.
    let stranger = sign_request(
        &Ed25519SigningKey::from_seed(&[7; 32]),
        &parts(body),
        NOW,
        &[1; NONCE_LEN],
    );
    let mixed = SignatureHeaders {
        signature: stranger.signature,
        ..headers
    };
    assert_eq!(
        verify(&parts(body), &mixed),
        Err(DeviceAuthError::BadSignature)
    );
}

#[test]
fn time_is_bounded_both_ways() {
    let body = b"{}";
    let skew = DEFAULT_MAX_SKEW;
    let at = |time| sign_request(&key(), &parts(body), time, &[3; NONCE_LEN]);
    assert!(verify(&parts(body), &at(NOW.saturating_sub(skew))).is_ok());
    assert!(verify(&parts(body), &at(NOW.saturating_add(skew))).is_ok());
    let old = NOW.saturating_sub(skew + Duration::from_secs(1));
    assert_eq!(verify(&parts(body), &at(old)), Err(DeviceAuthError::Stale));
    let ahead = NOW.saturating_add(skew + Duration::from_secs(1));
    assert_eq!(
        verify(&parts(body), &at(ahead)),
        Err(DeviceAuthError::FromFuture)
    );
}

#[test]
fn headers_have_one_accepted_spelling() {
    let body = b"{}";
    let headers = sign_request(&key(), &parts(body), NOW, &[5; NONCE_LEN]);
    let missing = ReceivedHeaders {
        signature: None,
        ..received(&headers)
    };
    assert_eq!(
        verify_request(&parts(body), &missing, NOW, DEFAULT_MAX_SKEW),
        Err(DeviceAuthError::MissingHeader(SIGNATURE))
    );
    let variants = [
        headers.signature_input.replace("sig1=", "sig2="),
        headers.signature_input.replace(r#""@query" "#, ""),
        headers.signature_input.replace(";alg=\"ed25519\"", ""),
        headers
            .signature_input
            .replace(";alg=\"ed25519\"", ";alg=\"ed25519\";tag=\"x\""),
        headers.signature_input.replace("created=", "created=0"),
        headers.signature_input.replace("created=", "created=-"),
        format!("{} ", headers.signature_input),
    ];
    for input in variants {
        let changed = SignatureHeaders {
            signature_input: input.clone(),
            ..headers.clone()
        };
        assert_eq!(
            verify(&parts(body), &changed),
            Err(DeviceAuthError::MalformedHeader(SIGNATURE_INPUT)),
            "{input}"
        );
    }
    let unpadded = SignatureHeaders {
        content_digest: headers.content_digest.replace("=:", ":"),
        ..headers.clone()
    };
    assert_eq!(
        verify(&parts(body), &unpadded),
        Err(DeviceAuthError::MalformedHeader(CONTENT_DIGEST))
    );
    let sig = SignatureHeaders {
        signature: headers.signature.trim_end_matches(':').to_owned(),
        ..headers
    };
    assert_eq!(
        verify(&parts(body), &sig),
        Err(DeviceAuthError::MalformedHeader(SIGNATURE))
    );
}

proptest! {
    #[test]
    fn arbitrary_headers_never_verify_and_never_panic(
        digest in ".{0,80}", input in ".{0,300}", signature in ".{0,120}", body in proptest::collection::vec(any::<u8>(), 0..64)
    ) {
        let headers = ReceivedHeaders {
            content_digest: Some(&digest),
            signature_input: Some(&input),
            signature: Some(&signature),
        };
        prop_assert!(verify_request(&parts(&body), &headers, NOW, DEFAULT_MAX_SKEW).is_err());
    }

    #[test]
    fn every_flipped_signature_bit_fails(byte in 0usize..ED25519_SIGNATURE_LEN, bit in 0u8..8) {
        let body = b"{}";
        let headers = sign_request(&key(), &parts(body), NOW, &[8; NONCE_LEN]);
        let text = headers.signature.trim_start_matches("sig1=:").trim_end_matches(':');
        let mut raw = STANDARD.decode(text).unwrap();
        raw[byte] ^= 1 << bit;
        let flipped = SignatureHeaders {
            signature: format!("sig1=:{}:", STANDARD.encode(raw)),
            ..headers
        };
        prop_assert_eq!(verify(&parts(body), &flipped), Err(DeviceAuthError::BadSignature));
    }
}
