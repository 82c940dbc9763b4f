//! Privacy-preserving device handles: HMAC-SHA-256 of a device's public key under a key that
//! never leaves the deployment, truncated to 160 bits.
//!
//! The handle is stable for the device key, reveals nothing of it, and cannot be linked across
//! deployments (each has its own handle key) — so Command can store, log and show the handle
//! where it must never show the key or any hardware identifier.

use enigm_types::DeviceHandle;
use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, RngCore};
use sha2::Sha256;
use zeroize::Zeroizing;

const KEY_LEN: usize = 32;
/// Domain separation: handles and attestation key pins under one key never collide.
const CONTEXT: &[u8] = b"enigm device handle v1\0";
const ATTESTATION_PIN_CONTEXT: &[u8] = b"enigm attestation key pin v1\0";

/// The deployment's secret for deriving device handles (and attestation key pins). `Debug`
/// shows nothing.
pub struct DeviceHandleKey(Zeroizing<[u8; KEY_LEN]>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a device handle key is exactly {KEY_LEN} bytes")]
pub struct DeviceHandleKeyError;

impl DeviceHandleKey {
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(key.as_mut_slice());
        DeviceHandleKey(key)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DeviceHandleKeyError> {
        let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| DeviceHandleKeyError)?;
        Ok(DeviceHandleKey(Zeroizing::new(key)))
    }

    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.0.to_vec())
    }

    /// The key's fingerprint (see [`crate::fingerprint`]), which a deployment records to tell
    /// whether a process derives the same handles.
    pub fn fingerprint(&self) -> crate::KeyFingerprint {
        crate::KeyFingerprint::of_secret(&self.0, "device-handle")
    }

    /// The handle of the device whose public key is `public_key`.
    pub fn handle_for(&self, public_key: &[u8]) -> DeviceHandle {
        let digest = self.mac(CONTEXT, public_key);
        let mut truncated = [0u8; 20];
        truncated.copy_from_slice(digest.get(..20).unwrap_or(&[0; 20]));
        DeviceHandle::from_digest(&truncated)
    }

    /// The pin of a device's attestation key (its SubjectPublicKeyInfo or TPM public area), as
    /// lower-case hex: what Command stores instead of the hardware key itself. Under its own
    /// context, so a pin is never a handle.
    pub fn attestation_key_pin(&self, attestation_key: &[u8]) -> String {
        data_encoding::HEXLOWER.encode(&self.mac(ATTESTATION_PIN_CONTEXT, attestation_key))
    }

    fn mac(&self, context: &[u8], message: &[u8]) -> [u8; 32] {
        // HMAC pads a key shorter than the hash's 64-byte block with zeros; padding it here lets
        // the infallible fixed-size constructor take it.
        let mut block = Zeroizing::new([0u8; 64]);
        if let Some(head) = block.get_mut(..KEY_LEN) {
            head.copy_from_slice(self.0.as_slice());
        }
        let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&(*block).into());
        mac.update(context);
        mac.update(message);
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for DeviceHandleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceHandleKey(..)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn handles_are_stable_per_key_and_unlinkable_across_deployments() {
        let mut rng = rand::rngs::OsRng;
        let one = DeviceHandleKey::generate(&mut rng);
        let other = DeviceHandleKey::generate(&mut rng);
        let device = [7u8; 32];
        assert_eq!(one.handle_for(&device), one.handle_for(&device));
        assert_ne!(one.handle_for(&device), other.handle_for(&device));
        assert_ne!(one.handle_for(&device), one.handle_for(&[8u8; 32]));
        let restored = DeviceHandleKey::from_bytes(&one.to_bytes()).unwrap();
        assert_eq!(restored.handle_for(&device), one.handle_for(&device));
        assert_eq!(format!("{one:?}"), "DeviceHandleKey(..)");
        assert!(DeviceHandleKey::from_bytes(&[0; 31]).is_err());
    }

    #[test]
    fn handle_matches_a_reference_hmac() {
        // HMAC-SHA-256(key = 0x00.., "enigm device handle v1\0" || 0x01 * 32), first 20 bytes,
        // base32: computed independently with Python's hmac module.
        let key = DeviceHandleKey::from_bytes(&[0; 32])
            .unwrap_or_else(|_| DeviceHandleKey::generate(&mut rand::rngs::OsRng));
        let handle = key.handle_for(&[1; 32]);
        assert_eq!(handle.as_str(), REFERENCE);
    }

    const REFERENCE: &str = "dev_d2ecjk7z4eznktvzvxqikiblpn6f7btl";
}
