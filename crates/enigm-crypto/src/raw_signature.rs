//! Signatures in the raw forms a TPM produces: RSASSA-PKCS1-v1_5 (and RSASSA-PSS) with SHA-256
//! under a key given as modulus and exponent, and ECDSA P-256 with SHA-256 given as `r` and `s`
//! under a key given as its affine coordinates. Through ring, like every signature in Enigm.

use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};

pub use crate::x509_signature::SignatureVerified;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RawSignatureError {
    #[error("the key or signature has the wrong size")]
    Malformed,
    #[error("the signature does not verify")]
    Invalid,
}

/// The RSA padding of a TPM signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaPadding {
    Pkcs1v15,
    Pss,
}

/// Verifies an RSA SHA-256 signature by the key (`modulus`, `exponent`), big-endian.
pub fn verify_rsa_sha256(
    modulus: &[u8],
    exponent: &[u8],
    padding: RsaPadding,
    message: &[u8],
    signature_bytes: &[u8],
) -> Result<SignatureVerified, RawSignatureError> {
    let algorithm = match padding {
        RsaPadding::Pkcs1v15 => &signature::RSA_PKCS1_2048_8192_SHA256,
        RsaPadding::Pss => &signature::RSA_PSS_2048_8192_SHA256,
    };
    RsaPublicKeyComponents {
        n: modulus,
        e: exponent,
    }
    .verify(algorithm, message, signature_bytes)
    .map(|()| crate::x509_signature::verified())
    .map_err(|_| RawSignatureError::Invalid)
}

/// Verifies an ECDSA P-256 SHA-256 signature (`r`, `s`, big-endian, at most 32 bytes each) by
/// the key at (`x`, `y`).
pub fn verify_ecdsa_p256_sha256(
    x: &[u8],
    y: &[u8],
    message: &[u8],
    r: &[u8],
    s: &[u8],
) -> Result<SignatureVerified, RawSignatureError> {
    let point = [&[0x04][..], &pad32(x)?, &pad32(y)?].concat();
    let fixed = [pad32(r)?, pad32(s)?].concat();
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
        .verify(message, &fixed)
        .map(|()| crate::x509_signature::verified())
        .map_err(|_| RawSignatureError::Invalid)
}

/// A big-endian number left-padded to 32 bytes (TPMs drop leading zeros).
fn pad32(bytes: &[u8]) -> Result<[u8; 32], RawSignatureError> {
    let start = 32_usize
        .checked_sub(bytes.len())
        .ok_or(RawSignatureError::Malformed)?;
    let mut out = [0u8; 32];
    out.get_mut(start..)
        .ok_or(RawSignatureError::Malformed)?
        .copy_from_slice(bytes);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};

    #[test]
    fn an_ecdsa_signature_in_r_and_s_verifies() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let signature = key.sign(&rng, b"quote").unwrap();
        let (r, s) = signature.as_ref().split_at(32);
        let point = key.public_key().as_ref();
        let (x, y) = point[1..].split_at(32);
        assert!(verify_ecdsa_p256_sha256(x, y, b"quote", r, s).is_ok());
        assert_eq!(
            verify_ecdsa_p256_sha256(x, y, b"quotf", r, s),
            Err(RawSignatureError::Invalid)
        );
        assert_eq!(
            verify_ecdsa_p256_sha256(x, y, b"quote", &[0; 33], s),
            Err(RawSignatureError::Malformed)
        );
    }
}
