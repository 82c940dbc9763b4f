//! The audit event key: Command's HMAC-SHA-256 key that authenticates every audit event it
//! stores, so that the sequencer folds into the signed log only events Command wrote, not rows a
//! database writer inserted.
//!
//! The tag covers the event's leaf index and its canonical encoding, so a genuine row copied to
//! another index does not verify there. It is kept beside the audit log's signing key and never
//! in the database.

use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, RngCore};
use sha2::Sha256;
use zeroize::Zeroizing;

const KEY_LEN: usize = 32;
/// The length of a tag.
pub const AUDIT_MAC_LEN: usize = 32;
/// Domain separation from every other use of a deployment's symmetric keys.
const CONTEXT: &[u8] = b"enigm audit event mac v1\0";

/// The deployment's audit event key. `Debug` shows nothing.
pub struct AuditEventKey(Zeroizing<[u8; KEY_LEN]>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an audit event key is exactly {KEY_LEN} bytes")]
pub struct AuditEventKeyError;

impl AuditEventKey {
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(key.as_mut_slice());
        AuditEventKey(key)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AuditEventKeyError> {
        let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| AuditEventKeyError)?;
        Ok(AuditEventKey(Zeroizing::new(key)))
    }

    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.0.to_vec())
    }

    /// The key's fingerprint (see [`crate::fingerprint`]), which a deployment records so that
    /// every process authenticates events with the same key.
    pub fn fingerprint(&self) -> crate::KeyFingerprint {
        crate::KeyFingerprint::of_secret(&self.0, "audit-event-mac")
    }

    /// The tag of the event stored as leaf `leaf_index` with canonical encoding `canonical`:
    /// HMAC-SHA-256(key, "enigm audit event mac v1\0" || leaf_index (8 bytes, big-endian) ||
    /// canonical).
    pub fn tag(&self, leaf_index: u64, canonical: &[u8]) -> [u8; AUDIT_MAC_LEN] {
        self.mac(leaf_index, canonical)
            .finalize()
            .into_bytes()
            .into()
    }

    /// Whether `tag` is the tag of that event, compared in constant time.
    pub fn verify(&self, leaf_index: u64, canonical: &[u8], tag: &[u8]) -> bool {
        self.mac(leaf_index, canonical).verify_slice(tag).is_ok()
    }

    fn mac(&self, leaf_index: u64, canonical: &[u8]) -> Hmac<Sha256> {
        // HMAC pads a key shorter than the hash's 64-byte block with zeros; padding it here lets
        // the infallible fixed-size constructor take it (as in `device_handle`).
        let mut block = Zeroizing::new([0u8; 64]);
        if let Some(head) = block.get_mut(..KEY_LEN) {
            head.copy_from_slice(self.0.as_slice());
        }
        let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&(*block).into());
        mac.update(CONTEXT);
        mac.update(&leaf_index.to_be_bytes());
        mac.update(canonical);
        mac
    }
}

impl std::fmt::Debug for AuditEventKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditEventKey(..)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn tags_bind_key_index_and_body() {
        let mut rng = rand::rngs::OsRng;
        let key = AuditEventKey::generate(&mut rng);
        let other = AuditEventKey::generate(&mut rng);
        let tag = key.tag(7, b"{\"event\":1}");
        assert!(key.verify(7, b"{\"event\":1}", &tag));
        assert!(!key.verify(8, b"{\"event\":1}", &tag), "another index");
        assert!(!key.verify(7, b"{\"event\":2}", &tag), "another body");
        assert!(!other.verify(7, b"{\"event\":1}", &tag), "another key");
        assert!(!key.verify(7, b"{\"event\":1}", &tag[..31]), "a short tag");
        assert!(!key.verify(7, b"{\"event\":1}", &[]), "no tag");
        let restored = AuditEventKey::from_bytes(&key.to_bytes()).unwrap();
        assert!(restored.verify(7, b"{\"event\":1}", &tag));
        assert_eq!(restored.fingerprint(), key.fingerprint());
        assert_ne!(other.fingerprint(), key.fingerprint());
        assert_eq!(format!("{key:?}"), "AuditEventKey(..)");
        assert!(AuditEventKey::from_bytes(&[0; 31]).is_err());
    }

    #[test]
    fn tag_matches_a_reference_hmac() {
        // Key 0x00..0x1f, index 1, body "{}": HMAC-SHA-256 computed independently with
        // Python's hmac module over b"enigm audit event mac v1\0" + (1).to_bytes(8, "big") + b"{}".
        let key = AuditEventKey::from_bytes(&(0u8..32).collect::<Vec<_>>()).unwrap();
        let tag = key.tag(1, b"{}");
        assert_eq!(data_encoding::HEXLOWER.encode(&tag), REFERENCE);
    }

    const REFERENCE: &str = "6a6a1fa1d7930b39db004679db5abc08c551d54e6b2af45e9a12f14b3a2180a8";
}
