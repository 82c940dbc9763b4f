//! The attestation challenge: what a device puts in its evidence for a server nonce.
//!
//! `SHA-256("enigm-attestation-v1" || 0x00 || nonce || device public key || purpose)`. Binding
//! the key that signs the device's requests means evidence answered for one device is useless
//! to another (its handle derives from that key); binding the purpose means an enrollment's
//! evidence cannot be replayed as a later attestation.

/// The length of a server nonce.
pub const NONCE_LEN: usize = 32;

const DOMAIN: &[u8] = b"enigm-attestation-v1\0";

/// The challenge for `nonce`, the device's request-signing public key and the purpose's name.
pub fn expected_challenge(
    nonce: &[u8; NONCE_LEN],
    device_public_key: &[u8],
    purpose: &str,
) -> [u8; 32] {
    let mut input =
        Vec::with_capacity(DOMAIN.len() + NONCE_LEN + device_public_key.len() + purpose.len());
    input.extend_from_slice(DOMAIN);
    input.extend_from_slice(nonce);
    input.extend_from_slice(device_public_key);
    input.extend_from_slice(purpose.as_bytes());
    enigm_crypto::sha256(&input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_changes_the_challenge() {
        let base = expected_challenge(&[1; NONCE_LEN], &[2; 32], "enrollment");
        assert_ne!(
            base,
            expected_challenge(&[3; NONCE_LEN], &[2; 32], "enrollment")
        );
        assert_ne!(
            base,
            expected_challenge(&[1; NONCE_LEN], &[4; 32], "enrollment")
        );
        assert_ne!(
            base,
            expected_challenge(&[1; NONCE_LEN], &[2; 32], "attestation")
        );
        assert_eq!(
            base,
            expected_challenge(&[1; NONCE_LEN], &[2; 32], "enrollment")
        );
    }
}
