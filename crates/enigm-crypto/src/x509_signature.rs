//! Signature verification for certificate chains (Android Key Attestation): RSA PKCS#1 v1.5 and
//! ECDSA on P-256 and P-384, through ring.
//!
//! The caller (`enigm-attest`) parses the ASN.1 and names the algorithms; this module only
//! verifies, so that no other crate names a crypto implementation. A success is a
//! [`SignatureVerified`] witness.

use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};

/// The public key's algorithm, from its SubjectPublicKeyInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PublicKeyAlgorithm {
    /// rsaEncryption; the key bytes are a DER RSAPublicKey.
    Rsa,
    /// id-ecPublicKey on P-256; the key bytes are an uncompressed point.
    EcP256,
    /// id-ecPublicKey on P-384; the key bytes are an uncompressed point.
    EcP384,
}

/// The signature's algorithm, from the certificate's signatureAlgorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    RsaPkcs1Sha256,
    RsaPkcs1Sha384,
    RsaPkcs1Sha512,
    /// The signature is a DER `Ecdsa-Sig-Value`.
    EcdsaSha256,
    EcdsaSha384,
}

/// Proof that a signature verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureVerified(());

/// Only this crate's verifiers make the witness.
pub(crate) fn verified() -> SignatureVerified {
    SignatureVerified(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum X509SignatureError {
    #[error("the signature algorithm does not match the key (or is not supported with it)")]
    Unsupported,
    #[error("the signature does not verify")]
    Invalid,
}

/// Verifies `signature` over `message` by the key `public_key` (the SubjectPublicKeyInfo's
/// subjectPublicKey bits).
pub fn verify_x509_signature(
    key_algorithm: PublicKeyAlgorithm,
    public_key: &[u8],
    signature_algorithm: SignatureAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<SignatureVerified, X509SignatureError> {
    use PublicKeyAlgorithm as K;
    use SignatureAlgorithm as S;
    let algorithm: &'static dyn VerificationAlgorithm = match (key_algorithm, signature_algorithm) {
        (K::Rsa, S::RsaPkcs1Sha256) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (K::Rsa, S::RsaPkcs1Sha384) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (K::Rsa, S::RsaPkcs1Sha512) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (K::EcP256, S::EcdsaSha256) => &signature::ECDSA_P256_SHA256_ASN1,
        (K::EcP256, S::EcdsaSha384) => &signature::ECDSA_P256_SHA384_ASN1,
        (K::EcP384, S::EcdsaSha256) => &signature::ECDSA_P384_SHA256_ASN1,
        (K::EcP384, S::EcdsaSha384) => &signature::ECDSA_P384_SHA384_ASN1,
        _ => return Err(X509SignatureError::Unsupported),
    };
    UnparsedPublicKey::new(algorithm, public_key)
        .verify(message, signature)
        .map(|()| SignatureVerified(()))
        .map_err(|_| X509SignatureError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};

    #[test]
    fn an_ecdsa_signature_verifies_and_a_flipped_bit_does_not() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let signature = key.sign(&rng, b"tbs").unwrap();
        let public = key.public_key().as_ref();
        let verify = |message: &[u8], key_algorithm, signature_algorithm| {
            verify_x509_signature(
                key_algorithm,
                public,
                signature_algorithm,
                message,
                signature.as_ref(),
            )
        };
        use PublicKeyAlgorithm as K;
        use SignatureAlgorithm as S;
        assert!(verify(b"tbs", K::EcP256, S::EcdsaSha256).is_ok());
        assert_eq!(
            verify(b"tbt", K::EcP256, S::EcdsaSha256),
            Err(X509SignatureError::Invalid)
        );
        assert_eq!(
            verify(b"tbs", K::EcP256, S::RsaPkcs1Sha256),
            Err(X509SignatureError::Unsupported)
        );
        assert_eq!(
            verify(b"tbs", K::EcP384, S::EcdsaSha256),
            Err(X509SignatureError::Invalid)
        );
    }
}
