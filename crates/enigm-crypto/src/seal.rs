//! AES-256-GCM sealing of secrets that must be stored recoverably, such as TOTP secrets at rest.
//!
//! A sealed blob is `version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)`. The
//! version byte is authenticated together with the caller's associated data, which should name
//! what the blob belongs to (for example the administrator id), so a blob copied onto another
//! record does not open.

use std::fmt;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Key, KeyInit, Nonce};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

/// A 256-bit AES-GCM key. Zeroized on drop; `Debug` does not print it.
#[derive(Clone)]
pub struct SealingKey(Zeroizing<[u8; KEY_LEN]>);

/// Why a key or a sealed blob was refused. Messages never include key material or plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("sealing key must be 32 bytes")]
    KeyLength,
    #[error("sealed data is too short")]
    Truncated,
    #[error("sealed data has an unsupported version")]
    UnsupportedVersion,
    #[error("sealed data failed authentication")]
    Authentication,
}

const KEY_LEN: usize = 32;
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + NONCE_LEN;

impl SealingKey {
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(bytes.as_mut());
        SealingKey(bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SealError> {
        if bytes.len() != KEY_LEN {
            return Err(SealError::KeyLength);
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(bytes);
        Ok(SealingKey(key))
    }

    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.0.to_vec())
    }

    /// The key's fingerprint (see [`crate::fingerprint`]), which a deployment records to tell
    /// whether a process holds its sealing key.
    pub fn fingerprint(&self) -> crate::KeyFingerprint {
        crate::KeyFingerprint::of_secret(&self.0, "sealing")
    }

    /// Encrypts and authenticates `plaintext`, binding it to `associated_data`, under a fresh
    /// random 96-bit nonce.
    ///
    /// AES-GCM refuses plaintexts longer than 2^36 - 32 bytes (64 GiB). Such a plaintext cannot
    /// be sealed; instead of panicking, the result is then a header with no ciphertext or tag,
    /// which [`SealingKey::open`] always refuses as truncated. Nothing is ever stored in the
    /// clear.
    pub fn seal(
        &self,
        plaintext: &[u8],
        associated_data: &[u8],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut header = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
        header.push(VERSION);
        header.extend_from_slice(&nonce);
        let aad = authenticated_data(associated_data);
        match self.cipher().encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        ) {
            Ok(ciphertext) => {
                header.extend_from_slice(&ciphertext);
                header
            }
            Err(_) => header,
        }
    }

    /// Checks and decrypts a blob made by [`SealingKey::seal`] with the same key and associated
    /// data.
    pub fn open(
        &self,
        sealed: &[u8],
        associated_data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let Some((&version, rest)) = sealed.split_first() else {
            return Err(SealError::Truncated);
        };
        if version != VERSION {
            return Err(SealError::UnsupportedVersion);
        }
        let Some((nonce, ciphertext)) = rest.split_first_chunk::<NONCE_LEN>() else {
            return Err(SealError::Truncated);
        };
        if ciphertext.len() < TAG_LEN {
            return Err(SealError::Truncated);
        }
        let aad = authenticated_data(associated_data);
        self.cipher()
            .decrypt(
                &Nonce::from(*nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::Authentication)
    }

    fn cipher(&self) -> Aes256Gcm {
        let key: &Key<Aes256Gcm> = (&*self.0).into();
        Aes256Gcm::new(key)
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

/// The data authenticated alongside the ciphertext: the format version, then the caller's data.
/// Binding the version means a future format cannot be confused with this one.
fn authenticated_data(associated_data: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(1 + associated_data.len());
    aad.push(VERSION);
    aad.extend_from_slice(associated_data);
    aad
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn key(seed: u64) -> SealingKey {
        SealingKey::generate(&mut StdRng::seed_from_u64(seed))
    }

    #[test]
    fn seal_then_open_round_trips() {
        let key = key(1);
        let mut rng = StdRng::seed_from_u64(2);
        for plaintext in [&b""[..], b"x", b"twenty byte secret!!", &[0xAB; 1000]] {
            let sealed = key.seal(plaintext, b"admin:42", &mut rng);
            assert_eq!(sealed.len(), 1 + 12 + plaintext.len() + 16);
            assert_eq!(sealed[0], 1);
            assert_eq!(
                key.open(&sealed, b"admin:42").unwrap().as_slice(),
                plaintext
            );
        }
    }

    #[test]
    fn sealing_twice_uses_fresh_nonces() {
        let key = key(1);
        let mut rng = StdRng::seed_from_u64(3);
        let a = key.seal(b"same", b"", &mut rng);
        let b = key.seal(b"same", b"", &mut rng);
        assert_ne!(a, b);
        assert_ne!(a[1..13], b[1..13]);
    }

    #[test]
    fn tampering_is_detected() {
        let key = key(1);
        let sealed = key.seal(
            b"totp secret bytes",
            b"admin:42",
            &mut StdRng::seed_from_u64(4),
        );
        // Flipping any bit after the version byte breaks authentication.
        for index in 1..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[index] ^= 0x01;
            assert_eq!(
                key.open(&tampered, b"admin:42").unwrap_err(),
                SealError::Authentication,
                "byte {index}"
            );
        }
        let mut versioned = sealed.clone();
        versioned[0] = 2;
        assert_eq!(
            key.open(&versioned, b"admin:42").unwrap_err(),
            SealError::UnsupportedVersion
        );
    }

    #[test]
    fn wrong_key_or_associated_data_is_refused() {
        let sealed = key(1).seal(b"secret", b"admin:42", &mut StdRng::seed_from_u64(5));
        assert_eq!(
            key(2).open(&sealed, b"admin:42").unwrap_err(),
            SealError::Authentication
        );
        for aad in [&b"admin:43"[..], b"", b"admin:42 ", b"\x01admin:42"] {
            assert_eq!(
                key(1).open(&sealed, aad).unwrap_err(),
                SealError::Authentication
            );
        }
    }

    #[test]
    fn truncated_input_is_refused() {
        let key = key(1);
        let sealed = key.seal(b"secret", b"", &mut StdRng::seed_from_u64(6));
        for len in 0..sealed.len() {
            let expected = match len {
                0..=28 => SealError::Truncated,
                _ => SealError::Authentication,
            };
            assert_eq!(
                key.open(&sealed[..len], b"").unwrap_err(),
                expected,
                "length {len}"
            );
        }
        assert!(key.open(&sealed, b"").is_ok());
    }

    #[test]
    fn key_bytes_round_trip_and_length_is_checked() {
        let original = key(7);
        let restored = SealingKey::from_bytes(&original.to_bytes()).unwrap();
        let sealed = original.seal(b"secret", b"", &mut StdRng::seed_from_u64(8));
        assert_eq!(restored.open(&sealed, b"").unwrap().as_slice(), b"secret");
        for len in [0, 16, 31, 33, 64] {
            assert_eq!(
                SealingKey::from_bytes(&vec![0; len]).unwrap_err(),
                SealError::KeyLength
            );
        }
    }

    #[test]
    fn debug_output_hides_the_key() {
        assert_eq!(format!("{:?}", key(1)), "SealingKey(..)");
    }

    proptest! {
        #[test]
        fn round_trip_any_plaintext(plaintext in proptest::collection::vec(any::<u8>(), 0..256),
                                    aad in proptest::collection::vec(any::<u8>(), 0..64),
                                    seed in any::<u64>()) {
            let key = key(seed);
            let sealed = key.seal(&plaintext, &aad, &mut StdRng::seed_from_u64(seed ^ 1));
            let opened = key.open(&sealed, &aad).unwrap();
            prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
        }

        #[test]
        fn open_never_panics_and_refuses_garbage(garbage in proptest::collection::vec(any::<u8>(), 0..128)) {
            prop_assert!(key(1).open(&garbage, b"").is_err());
        }
    }
}
