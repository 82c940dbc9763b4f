//! The one Enigm crate that names cryptographic implementations: argon2id secret hashing, bearer
//! tokens and their digests, TOTP, AES-256-GCM sealing, random passwords and Ed25519 signatures.
//!
//! Everything here is sans-IO: randomness comes in as an injected `RngCore + CryptoRng` and time
//! as unix seconds, so the server decides where entropy and "now" come from and tests can pin
//! both. Other crates talk about hashes, tokens and sealed blobs through the types re-exported
//! below and never name `argon2`, `aes-gcm`, `sha2` or `ed25519-dalek` themselves.

pub mod audit_mac;
pub mod device_handle;
pub mod ed25519;
pub mod fingerprint;
pub mod random;
pub mod raw_signature;
pub mod seal;
pub mod secret_hash;
pub mod signer;
pub mod token;
pub mod totp;
pub mod wireguard;
pub mod x509_signature;

pub use audit_mac::{AUDIT_MAC_LEN, AuditEventKey, AuditEventKeyError};
pub use device_handle::{DeviceHandleKey, DeviceHandleKeyError};
pub use ed25519::{
    ED25519_KEY_LEN, ED25519_SIGNATURE_LEN, Ed25519SigningKey, Ed25519VerifyingKey, KeyError,
    SignatureError, SignatureOk,
};
pub use fingerprint::{FingerprintFormatError, KeyFingerprint};
pub use random::{PASSWORD_ALPHABET, PASSWORD_LEN, random_password};
pub use raw_signature::{
    RawSignatureError, RsaPadding, verify_ecdsa_p256_sha256, verify_rsa_sha256,
};
pub use seal::{SealError, SealingKey};
pub use secret_hash::{HashCost, HashError, SecretHash, SecretHasher, SecretMatch, VerifyError};
pub use signer::{Ed25519Signer, Pkcs11Ed25519Error, Pkcs11Ed25519Key, SignerError};
pub use token::{
    BearerToken, DigestFormatError, Sha256Stream, Sha512Stream, TokenDigest, TokenFormatError,
    constant_time_eq, sha256, sha512,
};
pub use totp::{TotpError, TotpSecret, TotpStep, verify_totp};
pub use x509_signature::{
    PublicKeyAlgorithm, SignatureAlgorithm, SignatureVerified, X509SignatureError,
    verify_x509_signature,
};
pub mod ecdsa;
pub use ecdsa::{
    EcdsaP256SigningKey, ecdsa_fixed_to_der, p256_point_from_spki, p256_spki_from_point,
    verify_ecdsa_p256_sha256_der, verify_rsa_pss_sha256_spki,
};
pub mod pkcs11;
