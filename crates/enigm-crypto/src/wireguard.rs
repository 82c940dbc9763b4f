//! WireGuard (X25519) key pairs, generated on the device for its VPN tunnel: the private key
//! never leaves the device; Command sees only the public key (issue 16, item 4).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use curve25519_dalek::montgomery::MontgomeryPoint;
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

/// Length of a WireGuard private or public key.
pub const WIREGUARD_KEY_LEN: usize = 32;

/// A WireGuard private key. Zeroized on drop; `Debug` shows only the public key.
#[derive(Clone)]
pub struct WireGuardSecret(Zeroizing<[u8; WIREGUARD_KEY_LEN]>);

impl WireGuardSecret {
    /// A fresh key from `rng`, clamped as X25519 (and `wg genkey`) clamp it.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = Zeroizing::new([0u8; WIREGUARD_KEY_LEN]);
        rng.fill_bytes(bytes.as_mut());
        WireGuardSecret::from_bytes(&bytes)
    }

    /// A key from its 32 bytes (clamped, so that every stored key is a valid X25519 scalar).
    pub fn from_bytes(bytes: &[u8; WIREGUARD_KEY_LEN]) -> Self {
        let mut clamped = Zeroizing::new(*bytes);
        let [first, .., last] = &mut *clamped;
        *first &= 248;
        *last &= 127;
        *last |= 64;
        WireGuardSecret(clamped)
    }

    /// The key's 32 bytes, to store on the device.
    pub fn to_bytes(&self) -> Zeroizing<[u8; WIREGUARD_KEY_LEN]> {
        self.0.clone()
    }

    /// The private key as `wg` writes it (base64), for the device's own configuration file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.as_ref()))
    }

    /// The public key: X25519 of the private key and the base point.
    pub fn public_key(&self) -> [u8; WIREGUARD_KEY_LEN] {
        MontgomeryPoint::mul_base_clamped(*self.0).to_bytes()
    }

    /// The public key as `wg pubkey` prints it (base64).
    pub fn public_base64(&self) -> String {
        STANDARD.encode(self.public_key())
    }
}

impl std::fmt::Debug for WireGuardSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireGuardSecret")
            .field("public", &self.public_base64())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7748 §6.1: Alice's private key and the public key X25519 derives from it.
    #[test]
    fn the_public_key_is_x25519_of_the_base_point() {
        let private: [u8; 32] = data_encoding::HEXLOWER
            .decode(b"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
            .unwrap()
            .try_into()
            .unwrap();
        let public = data_encoding::HEXLOWER
            .decode(b"8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
            .unwrap();
        assert_eq!(
            WireGuardSecret::from_bytes(&private)
                .public_key()
                .as_slice(),
            public.as_slice()
        );
    }

    #[test]
    fn keys_are_fresh_and_debug_shows_no_secret() {
        let a = WireGuardSecret::generate(&mut rand::rngs::OsRng);
        let b = WireGuardSecret::generate(&mut rand::rngs::OsRng);
        assert_ne!(a.public_key(), b.public_key());
        assert_eq!(a.public_base64().len(), 44);
        let shown = format!("{a:?}");
        assert!(!shown.contains(a.to_base64().as_str()), "{shown}");
        let again = WireGuardSecret::from_bytes(&a.to_bytes());
        assert_eq!(again.public_key(), a.public_key());
    }
}
