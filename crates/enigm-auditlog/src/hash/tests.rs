//! Known hashes and the one text form of a hash.

use super::*;

#[test]
fn hashes_match_rfc_6962_values() {
    // SHA-256 of the single byte 0x00: the hash of an empty leaf, as RFC 6962 test data and
    // the transparency-dev vectors have it.
    assert_eq!(
        leaf_hash(b"").to_hex(),
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    );
    assert_eq!(
        leaf_hash(b"").to_base64(),
        "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0="
    );
    assert_eq!(
        empty_root().to_hex(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    // The node prefix separates a node from a leaf over the same 64 bytes.
    let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
    let concatenated = [a.as_bytes().as_slice(), b.as_bytes()].concat();
    assert_ne!(node_hash(&a, &b), leaf_hash(&concatenated));
    let mut input = vec![0x01];
    input.extend_from_slice(&concatenated);
    assert_eq!(node_hash(&a, &b).as_bytes(), &enigm_crypto::sha256(&input));
    assert_ne!(node_hash(&a, &b), node_hash(&b, &a));
}

#[test]
fn text_forms_round_trip() {
    let hash = leaf_hash(b"round trip");
    assert_eq!(Hash::from_base64(&hash.to_base64()), Ok(hash));
    assert_eq!(Hash::from_slice(hash.as_bytes()), Ok(hash));
    assert_eq!(Hash::from(*hash.as_bytes()), hash);
    assert_eq!(format!("{hash:?}"), format!("Hash({})", hash.to_hex()));
    assert_eq!(hash.to_string(), hash.to_hex());
}

#[test]
fn malformed_hashes_are_refused() {
    let text = leaf_hash(b"").to_base64();
    let cases: Vec<(String, HashDecodeError)> = vec![
        (String::new(), HashDecodeError::Length(0)),
        ("AAAA".to_owned(), HashDecodeError::Length(3)),
        (
            text.trim_end_matches('=').to_owned(),
            HashDecodeError::Base64,
        ),
        // The last character carries set padding bits: a second spelling of a hash.
        (format!("{}1=", &text[..42]), HashDecodeError::Base64),
        (format!(" {text}"), HashDecodeError::Base64),
        (text.replace('+', "-"), HashDecodeError::Base64),
        (format!("{text}AAAA"), HashDecodeError::Base64),
        ("A".repeat(44), HashDecodeError::Length(33)),
        ("A".repeat(1 << 20), HashDecodeError::Base64),
    ];
    for (input, expected) in cases {
        assert_eq!(Hash::from_base64(&input), Err(expected), "{input:.60}");
    }
    assert_eq!(Hash::from_slice(&[0; 31]), Err(HashDecodeError::Length(31)));
    assert_eq!(Hash::from_slice(&[0; 33]), Err(HashDecodeError::Length(33)));
}
