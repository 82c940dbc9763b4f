//! Fuzzes opening of sealed secrets (AES-256-GCM blobs such as TOTP secrets at rest), which
//! Command reads back from its database.
//!
//! The first input byte picks a mode; the second is the length of the associated data that
//! follows it (capped at what is there).
//!
//! - Even first byte, "forge": the rest of the input is a sealed blob. Opening it with the fixed
//!   key must fail, with the error the documented layout predicts (`version || nonce ||
//!   ciphertext || tag`): nothing the fuzzer writes was produced by `seal` under that key.
//! - Odd first byte, "tamper": the rest is a 2-byte position, a 1-byte mask and a plaintext.
//!   The plaintext is sealed; the blob must open to it, and must stop opening once a byte is
//!   flipped, it is truncated, or the associated data changes.

#![no_main]

use enigm_crypto::{SealError, SealingKey};
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// A fixed key, made up for this target.
const KEY: [u8; 32] = *b"enigm fuzz sealing key, 32 bytes";
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

fuzz_target!(|data: &[u8]| {
    let key = SealingKey::from_bytes(&KEY).expect("the fixed key is 32 bytes");
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (aad, rest) = split_associated_data(rest);
    if mode % 2 == 0 {
        forge(&key, rest, aad);
    } else {
        tamper(&key, rest, aad);
    }
});

fn split_associated_data(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((&len, rest)) = data.split_first() else {
        return (&[], &[]);
    };
    rest.split_at(usize::from(len).min(rest.len()))
}

fn forge(key: &SealingKey, sealed: &[u8], aad: &[u8]) {
    let expected = match sealed.split_first() {
        None => SealError::Truncated,
        Some((&version, _)) if version != VERSION => SealError::UnsupportedVersion,
        Some(_) if sealed.len() < 1 + NONCE_LEN + TAG_LEN => SealError::Truncated,
        Some(_) => SealError::Authentication,
    };
    match key.open(sealed, aad) {
        Ok(_) => panic!("opened a blob that seal did not produce"),
        Err(error) => assert_eq!(
            error,
            expected,
            "wrong rejection for {} bytes",
            sealed.len()
        ),
    }
}

fn tamper(key: &SealingKey, data: &[u8], aad: &[u8]) {
    let Some(([hi, lo, mask], plaintext)) = data.split_first_chunk::<3>() else {
        return;
    };
    let position = usize::from(u16::from_be_bytes([*hi, *lo]));
    // The nonce comes from an RNG seeded by the input, so every run is reproducible.
    let seed = data
        .iter()
        .fold(0u64, |acc, &b| acc.rotate_left(5) ^ u64::from(b));
    let sealed = key.seal(plaintext, aad, &mut StdRng::seed_from_u64(seed));
    assert_eq!(sealed.len(), 1 + NONCE_LEN + plaintext.len() + TAG_LEN);

    let opened = key.open(&sealed, aad).expect("a freshly sealed blob opens");
    assert_eq!(
        opened.as_slice(),
        plaintext,
        "opened to a different plaintext"
    );

    let index = position % sealed.len();
    if *mask != 0 {
        let mut flipped = sealed.clone();
        if let Some(byte) = flipped.get_mut(index) {
            *byte ^= mask;
        }
        assert!(
            key.open(&flipped, aad).is_err(),
            "opened with byte {index} changed"
        );
    }
    let truncated = sealed.get(..index).unwrap_or_default();
    assert!(
        key.open(truncated, aad).is_err(),
        "opened truncated to {index} bytes"
    );

    let mut other_aad = aad.to_vec();
    other_aad.push(*mask);
    assert!(
        key.open(&sealed, &other_aad).is_err(),
        "opened with longer associated data"
    );
    if let Some((_, shorter)) = aad.split_last() {
        assert!(
            key.open(&sealed, shorter).is_err(),
            "opened with shorter associated data"
        );
    }
}
