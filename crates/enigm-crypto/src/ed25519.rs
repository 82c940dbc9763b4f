//! Ed25519 signing and strict verification (RFC 8032), for signed notes such as the audit log's
//! checkpoints.
//!
//! Verification is deliberately strict: public keys of small order ("weak" keys, for which one
//! signature can verify for many messages) are refused when the key is parsed, and signatures
//! are checked with `verify_strict`, which also refuses non-canonical and small-order
//! components. A signature that verifies here verifies under every RFC 8032 implementation.

use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

/// Length of a public key, a seed, and half a signature.
pub const ED25519_KEY_LEN: usize = 32;
/// Length of a signature.
pub const ED25519_SIGNATURE_LEN: usize = 64;

/// An Ed25519 private key. Zeroized on drop; `Debug` shows only the public half.
#[derive(Clone)]
pub struct Ed25519SigningKey(SigningKey);

/// An Ed25519 public key that decodes to a point of large order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ed25519VerifyingKey(VerifyingKey);

/// Evidence that a signature verified: only [`Ed25519VerifyingKey::verify`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureOk {
    _private: (),
}

/// Why bytes are not an acceptable Ed25519 public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("ed25519 public key must be 32 bytes")]
    Length,
    #[error("ed25519 public key is not the encoding of a curve point")]
    NotAPoint,
    #[error("ed25519 public key has small order")]
    WeakKey,
}

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("ed25519 signature must be 64 bytes")]
    Length,
    #[error("ed25519 signature does not verify")]
    Invalid,
}

impl Ed25519SigningKey {
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        Ed25519SigningKey(SigningKey::generate(rng))
    }

    /// The key whose RFC 8032 private key (seed) is `seed`.
    pub fn from_seed(seed: &[u8; ED25519_KEY_LEN]) -> Self {
        Ed25519SigningKey(SigningKey::from_bytes(seed))
    }

    /// The 32-byte seed, for storing the key.
    pub fn seed(&self) -> Zeroizing<[u8; ED25519_KEY_LEN]> {
        Zeroizing::new(self.0.to_bytes())
    }

    pub fn verifying_key(&self) -> Ed25519VerifyingKey {
        Ed25519VerifyingKey(self.0.verifying_key())
    }

    /// Signs `message` (pure Ed25519, deterministic: no randomness needed).
    pub fn sign(&self, message: &[u8]) -> [u8; ED25519_SIGNATURE_LEN] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for Ed25519SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519SigningKey")
            .field("verifying_key", &self.verifying_key())
            .finish_non_exhaustive()
    }
}

impl Ed25519VerifyingKey {
    /// Parses a 32-byte RFC 8032 public key, refusing encodings that are not a point and points
    /// of small order.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let bytes: &[u8; ED25519_KEY_LEN] = bytes.try_into().map_err(|_| KeyError::Length)?;
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::NotAPoint)?;
        if key.is_weak() {
            return Err(KeyError::WeakKey);
        }
        Ok(Ed25519VerifyingKey(key))
    }

    pub fn to_bytes(&self) -> [u8; ED25519_KEY_LEN] {
        self.0.to_bytes()
    }

    /// Checks `signature` over `message` with RFC 8032 strict rules (`verify_strict`).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<SignatureOk, SignatureError> {
        let signature =
            ed25519_dalek::Signature::from_slice(signature).map_err(|_| SignatureError::Length)?;
        self.0
            .verify_strict(message, &signature)
            .map(|()| SignatureOk { _private: () })
            .map_err(|_| SignatureError::Invalid)
    }
}

impl fmt::Debug for Ed25519VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Ed25519VerifyingKey({})",
            data_encoding::HEXLOWER.encode(&self.to_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        data_encoding::HEXLOWER.decode(text.as_bytes()).unwrap()
    }

    #[test]
    fn rfc8032_test_1_signs_and_verifies() {
        // RFC 8032 section 7.1, TEST 1: the empty message.
        let seed: [u8; 32] =
            hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .try_into()
                .unwrap();
        let public = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        let signature = hex(concat!(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155",
            "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        ));
        let key = Ed25519SigningKey::from_seed(&seed);
        assert_eq!(key.verifying_key().to_bytes().as_slice(), public.as_slice());
        assert_eq!(key.sign(b"").as_slice(), signature.as_slice());
        let verifying = Ed25519VerifyingKey::from_bytes(&public).unwrap();
        assert_eq!(
            verifying.verify(b"", &signature),
            Ok(SignatureOk { _private: () })
        );
    }

    #[test]
    fn round_trip_through_seed_and_public_bytes() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..16 {
            let key = Ed25519SigningKey::generate(&mut rng);
            let restored = Ed25519SigningKey::from_seed(&key.seed());
            assert_eq!(restored.verifying_key(), key.verifying_key());
            let public = Ed25519VerifyingKey::from_bytes(&key.verifying_key().to_bytes()).unwrap();
            let signature = restored.sign(b"tree head");
            assert_eq!(signature, key.sign(b"tree head"));
            assert!(public.verify(b"tree head", &signature).is_ok());
        }
    }

    #[test]
    fn wrong_key_and_tampered_message_are_refused() {
        let mut rng = StdRng::seed_from_u64(8);
        let key = Ed25519SigningKey::generate(&mut rng);
        let other = Ed25519SigningKey::generate(&mut rng);
        let signature = key.sign(b"size 10");
        assert_eq!(
            other.verifying_key().verify(b"size 10", &signature),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            key.verifying_key().verify(b"size 11", &signature),
            Err(SignatureError::Invalid)
        );
        for bit in [0, 100, 255, 256, 511] {
            let mut flipped = signature;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                key.verifying_key().verify(b"size 10", &flipped),
                Err(SignatureError::Invalid),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn malleated_signatures_are_refused() {
        // Adding the group order L to the scalar half S gives another encoding of "the same"
        // signature; strict verification accepts only the canonical one (S < L).
        const ORDER: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let key = Ed25519SigningKey::from_seed(&[9; 32]);
        let signature = key.sign(b"checkpoint");
        let mut malleated = signature;
        let mut carry = 0u16;
        for (byte, order) in malleated[32..].iter_mut().zip(ORDER) {
            let sum = u16::from(*byte) + u16::from(order) + carry;
            *byte = (sum & 0xff) as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0);
        assert_ne!(malleated, signature);
        assert_eq!(
            key.verifying_key().verify(b"checkpoint", &malleated),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn wrong_lengths_are_refused() {
        let key = Ed25519SigningKey::from_seed(&[3; 32]);
        let signature = key.sign(b"m");
        let public = key.verifying_key();
        for len in [0, 1, 63, 65, 128] {
            let mut bytes = signature.to_vec();
            bytes.resize(len, 0);
            assert_eq!(public.verify(b"m", &bytes), Err(SignatureError::Length));
        }
        let public_bytes = public.to_bytes();
        for len in [0, 31, 33, 64] {
            let mut bytes = public_bytes.to_vec();
            bytes.resize(len, 0);
            assert_eq!(
                Ed25519VerifyingKey::from_bytes(&bytes),
                Err(KeyError::Length)
            );
        }
    }

    #[test]
    fn weak_and_invalid_keys_are_refused() {
        // The identity point (y = 1) and the point of order 2 (y = -1): both of small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            Ed25519VerifyingKey::from_bytes(&identity),
            Err(KeyError::WeakKey)
        );
        let minus_one = hex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
        assert_eq!(
            Ed25519VerifyingKey::from_bytes(&minus_one),
            Err(KeyError::WeakKey)
        );
        // y = 2 has no x on the curve: x^2 = (y^2 - 1) / (d y^2 + 1) is not a square.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        assert_eq!(
            Ed25519VerifyingKey::from_bytes(&not_a_point),
            Err(KeyError::NotAPoint)
        );
    }

    #[test]
    fn debug_output_hides_the_seed() {
        let seed = [0x5a; 32];
        let key = Ed25519SigningKey::from_seed(&seed);
        let debug = format!("{key:?}");
        assert!(!debug.contains(&data_encoding::HEXLOWER.encode(&seed)));
        assert!(!debug.to_lowercase().contains("5a5a5a5a"));
        assert!(debug.contains(&data_encoding::HEXLOWER.encode(&key.verifying_key().to_bytes())));
    }
}
