//! Key fingerprints: what a deployment records about each of its keys so that a process started
//! with other keys can tell, without the record revealing any key.
//!
//! A public key's fingerprint is a SHA-256 over its public encoding. A symmetric key's
//! fingerprint is HMAC-SHA-256 under the key itself of `enigm key fingerprint v1 <role>`: it
//! proves possession of the same key without being usable as the key or as any value the key
//! produces elsewhere (device handles and attestation pins are HMACs of other, distinct
//! messages, see [`crate::device_handle`]).

use std::fmt;

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// The domain of symmetric key fingerprints; the role follows it.
const SECRET_CONTEXT: &[u8] = b"enigm key fingerprint v1 ";

/// A 32-byte key fingerprint, shown as lower-case hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyFingerprint([u8; 32]);

/// Why text is not a fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a key fingerprint is 64 lower-case hex digits")]
pub struct FingerprintFormatError;

impl KeyFingerprint {
    /// The fingerprint of a public key: SHA-256 of `public_encoding`.
    pub fn of_public(public_encoding: &[u8]) -> Self {
        KeyFingerprint(crate::sha256(public_encoding))
    }

    /// The fingerprint of a symmetric key used as `role`:
    /// HMAC-SHA-256(`key`, "enigm key fingerprint v1 " || `role`).
    pub(crate) fn of_secret(key: &[u8; 32], role: &str) -> Self {
        // HMAC pads a key shorter than the hash's 64-byte block with zeros; padding it here lets
        // the infallible fixed-size constructor take it (as in `device_handle`).
        let mut block = zeroize::Zeroizing::new([0u8; 64]);
        if let Some(head) = block.get_mut(..32) {
            head.copy_from_slice(key);
        }
        let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&(*block).into());
        mac.update(SECRET_CONTEXT);
        mac.update(role.as_bytes());
        KeyFingerprint(mac.finalize().into_bytes().into())
    }

    pub fn to_hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.0)
    }

    pub fn from_hex(text: &str) -> Result<Self, FingerprintFormatError> {
        let bytes = data_encoding::HEXLOWER
            .decode(text.as_bytes())
            .map_err(|_| FingerprintFormatError)?;
        Ok(KeyFingerprint(
            bytes.try_into().map_err(|_| FingerprintFormatError)?,
        ))
    }
}

impl fmt::Display for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyFingerprint({})", self.to_hex())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::{DeviceHandleKey, SealingKey};

    #[test]
    fn secret_fingerprints_match_a_reference_hmac_and_depend_on_key_and_role() {
        // HMAC-SHA-256(key = 0x00 * 32, "enigm key fingerprint v1 sealing"), computed
        // independently with Python's hmac module.
        let zero = SealingKey::from_bytes(&[0; 32]).unwrap();
        assert_eq!(zero.fingerprint().to_hex(), SEALING_REFERENCE);
        let handle_key = DeviceHandleKey::from_bytes(&[0; 32]).unwrap();
        assert_ne!(
            handle_key.fingerprint(),
            zero.fingerprint(),
            "roles separate"
        );
        let other = SealingKey::from_bytes(&[1; 32]).unwrap();
        assert_ne!(other.fingerprint(), zero.fingerprint());
    }

    #[test]
    fn a_fingerprint_is_not_the_key_nor_a_device_handle_digest() {
        let key = DeviceHandleKey::from_bytes(&[7; 32]).unwrap();
        let fingerprint = key.fingerprint().to_hex();
        assert!(!fingerprint.contains(&"07".repeat(8)));
        let handle = key.handle_for(b"");
        assert!(!fingerprint.contains(handle.as_str().trim_start_matches("dev_")));
    }

    #[test]
    fn hex_round_trips_and_rejects_other_text() {
        let fingerprint = KeyFingerprint::of_public(b"public key");
        assert_eq!(
            KeyFingerprint::from_hex(&fingerprint.to_hex()).unwrap(),
            fingerprint
        );
        assert_eq!(
            fingerprint.to_hex(),
            data_encoding::HEXLOWER.encode(&crate::sha256(b"public key"))
        );
        for bad in ["", "00", &"g".repeat(64), &"A".repeat(64), &"0".repeat(66)] {
            assert!(KeyFingerprint::from_hex(bad).is_err(), "{bad}");
        }
    }

    const SEALING_REFERENCE: &str =
        "4acbc93b10e8670681d31951124de19594c9fd5239719fe32007ac1b19ccd59a";
}
