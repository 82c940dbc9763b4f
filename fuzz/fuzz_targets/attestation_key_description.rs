//! Fuzzes the decoder of the Android KeyDescription extension, the DER an attestation
//! certificate's leaf carries and the first thing Command parses of a device's attestation.
//!
//! Properties checked on every input:
//!
//! - decoding never panics, however the DER is broken (tags up to 2^32, lengths, nesting);
//! - a KeyDescription that decodes re-encodes to DER that decodes to the same value;
//! - the re-encoding is a fixed point: encoding the decoded re-encoding gives the same bytes;
//! - whatever decodes has a known attestation version, and tags that reached the value were
//!   accepted in strictly ascending order (checked by re-decoding the canonical encoding).

#![no_main]

use enigm_attest::android::key_description::{KNOWN_VERSIONS, KeyDescription};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(description) = KeyDescription::decode(data) else {
        return;
    };
    assert!(
        KNOWN_VERSIONS.contains(&description.attestation_version),
        "decoded an unknown attestation version {}",
        description.attestation_version
    );
    let encoded = description.encode();
    let again = KeyDescription::decode(&encoded)
        .unwrap_or_else(|error| panic!("own encoding does not decode: {error}"));
    assert_eq!(again, description, "decode(encode(kd)) != kd");
    assert_eq!(again.encode(), encoded, "encoding is not a fixed point");
});
