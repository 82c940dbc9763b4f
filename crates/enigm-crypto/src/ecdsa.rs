//! ECDSA P-256 with SHA-256 in the forms TUF metadata uses: public keys as SubjectPublicKeyInfo
//! (PEM or DER), signatures as ASN.1 DER, and the conversion from the fixed `r‖s` form that
//! PKCS#11 tokens return.

use ring::signature::{self, UnparsedPublicKey};

use crate::raw_signature::RawSignatureError;
use crate::x509_signature::SignatureVerified;

/// The DER prefix of a P-256 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1), followed by the
/// 65-byte uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The uncompressed point of a P-256 SubjectPublicKeyInfo (DER).
pub fn p256_point_from_spki(spki: &[u8]) -> Result<[u8; 65], RawSignatureError> {
    let point = spki
        .strip_prefix(&P256_SPKI_PREFIX[..])
        .ok_or(RawSignatureError::Malformed)?;
    let point: [u8; 65] = point.try_into().map_err(|_| RawSignatureError::Malformed)?;
    if point[0] != 0x04 {
        return Err(RawSignatureError::Malformed);
    }
    Ok(point)
}

/// The SubjectPublicKeyInfo (DER) of a P-256 uncompressed point.
pub fn p256_spki_from_point(point: &[u8; 65]) -> Vec<u8> {
    [&P256_SPKI_PREFIX[..], &point[..]].concat()
}

/// Verifies an ECDSA P-256 SHA-256 signature in ASN.1 DER by the uncompressed point.
pub fn verify_ecdsa_p256_sha256_der(
    point: &[u8; 65],
    message: &[u8],
    signature_der: &[u8],
) -> Result<SignatureVerified, RawSignatureError> {
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &point[..])
        .verify(message, signature_der)
        .map(|()| crate::x509_signature::verified())
        .map_err(|_| RawSignatureError::Invalid)
}

/// `r‖s` (64 bytes, as PKCS#11's CKM_ECDSA returns) as an ASN.1 DER `Ecdsa-Sig-Value`.
pub fn ecdsa_fixed_to_der(fixed: &[u8]) -> Result<Vec<u8>, RawSignatureError> {
    if fixed.len() != 64 {
        return Err(RawSignatureError::Malformed);
    }
    let (r, s) = fixed.split_at(32);
    let integer = |value: &[u8]| -> Vec<u8> {
        let trimmed: &[u8] = {
            let start = value
                .iter()
                .position(|&b| b != 0)
                .unwrap_or(value.len() - 1);
            value.get(start..).unwrap_or(value)
        };
        let mut out = vec![0x02];
        let pad = trimmed.first().is_some_and(|&b| b & 0x80 != 0);
        out.push(u8::try_from(trimmed.len() + usize::from(pad)).unwrap_or(0));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(trimmed);
        out
    };
    let body = [integer(r), integer(s)].concat();
    let mut out = vec![
        0x30,
        u8::try_from(body.len()).map_err(|_| RawSignatureError::Malformed)?,
    ];
    out.extend_from_slice(&body);
    Ok(out)
}

/// Verifies an RSASSA-PSS SHA-256 signature by an RSA key given as SubjectPublicKeyInfo (DER),
/// 2048 to 8192 bits (TUF's `rsassa-pss-sha256`).
pub fn verify_rsa_pss_sha256_spki(
    spki: &[u8],
    message: &[u8],
    signature_bytes: &[u8],
) -> Result<SignatureVerified, RawSignatureError> {
    // SubjectPublicKeyInfo ::= SEQUENCE { AlgorithmIdentifier (rsaEncryption), BIT STRING }
    let (outer, _) = der_element(spki, 0x30).ok_or(RawSignatureError::Malformed)?;
    let (algorithm, rest) = der_element(outer, 0x30).ok_or(RawSignatureError::Malformed)?;
    const RSA_ENCRYPTION: [u8; 11] = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ];
    if !algorithm.starts_with(&RSA_ENCRYPTION) {
        return Err(RawSignatureError::Malformed);
    }
    let (bits, _) = der_element(rest, 0x03).ok_or(RawSignatureError::Malformed)?;
    let key = bits
        .strip_prefix(&[0u8][..])
        .ok_or(RawSignatureError::Malformed)?;
    UnparsedPublicKey::new(&signature::RSA_PSS_2048_8192_SHA256, key)
        .verify(message, signature_bytes)
        .map(|()| crate::x509_signature::verified())
        .map_err(|_| RawSignatureError::Invalid)
}

/// The content of the DER element with `tag` at the start of `input`, and what follows it.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&length, rest) = rest.split_first()?;
    let (length, rest) = if length < 0x80 {
        (usize::from(length), rest)
    } else {
        let count = usize::from(length & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(count)?;
        let length = bytes
            .iter()
            .fold(0usize, |acc, &byte| (acc << 8) | usize::from(byte));
        (length, rest)
    };
    rest.split_at_checked(length)
}

/// A software ECDSA P-256 key for development signing (PKCS#8), through ring. Randomness for
/// the signature nonce comes from the OS: the one use of the OS RNG in this crate, for keys that
/// never sign in production (production keys live in a PKCS#11 token).
pub struct EcdsaP256SigningKey {
    pair: signature::EcdsaKeyPair,
    pkcs8: zeroize::Zeroizing<Vec<u8>>,
}

impl EcdsaP256SigningKey {
    pub fn generate() -> Result<Self, RawSignatureError> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &rng,
        )
        .map_err(|_| RawSignatureError::Malformed)?;
        Self::from_pkcs8(pkcs8.as_ref())
    }

    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, RawSignatureError> {
        let rng = ring::rand::SystemRandom::new();
        let pair = signature::EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            pkcs8,
            &rng,
        )
        .map_err(|_| RawSignatureError::Malformed)?;
        Ok(EcdsaP256SigningKey {
            pair,
            pkcs8: zeroize::Zeroizing::new(pkcs8.to_vec()),
        })
    }

    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    pub fn public_point(&self) -> Result<[u8; 65], RawSignatureError> {
        use ring::signature::KeyPair as _;
        self.pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| RawSignatureError::Malformed)
    }

    /// An ASN.1 DER signature over `message` (SHA-256 inside).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, RawSignatureError> {
        let rng = ring::rand::SystemRandom::new();
        self.pair
            .sign(&rng, message)
            .map(|signature| signature.as_ref().to_vec())
            .map_err(|_| RawSignatureError::Malformed)
    }
}

impl std::fmt::Debug for EcdsaP256SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EcdsaP256SigningKey")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_and_fixed_signatures_convert() {
        let key = EcdsaP256SigningKey::generate().unwrap();
        let point = key.public_point().unwrap();
        let spki = p256_spki_from_point(&point);
        assert_eq!(p256_point_from_spki(&spki).unwrap(), point);
        let signature = key.sign(b"message").unwrap();
        assert!(verify_ecdsa_p256_sha256_der(&point, b"message", &signature).is_ok());
        assert!(verify_ecdsa_p256_sha256_der(&point, b"other", &signature).is_err());

        let rng = ring::rand::SystemRandom::new();
        let fixed_pair = signature::EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            key.pkcs8(),
            &rng,
        )
        .unwrap();
        for _ in 0..32 {
            let fixed = fixed_pair.sign(&rng, b"message").unwrap();
            let der = ecdsa_fixed_to_der(fixed.as_ref()).unwrap();
            assert!(verify_ecdsa_p256_sha256_der(&point, b"message", &der).is_ok());
        }
        assert!(ecdsa_fixed_to_der(&[0; 63]).is_err());
    }
}
