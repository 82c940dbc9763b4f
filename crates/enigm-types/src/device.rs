//! The privacy-preserving device handle: how every device is referred to outside the device.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An opaque, stable name for one enrolled device key: `dev_` and 32 lowercase base32 letters
/// and digits (160 bits of a keyed hash of the device's public key, computed by
/// `enigm_crypto::DeviceHandleKey`). It cannot be reversed to the key or to any hardware
/// identifier, and it differs between deployments because each has its own handle key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, utoipa::ToSchema)]
#[schema(value_type = String, example = "dev_7q2hx4c6v9k3m5n8p2r4t6w8y3b5d7f9")]
pub struct DeviceHandle(String);

/// The base32 alphabet of handles (RFC 4648, lowercase).
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const PREFIX: &str = "dev_";
/// 160 bits in 5-bit letters.
const LETTERS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a device handle (expected `dev_` and 32 base32 letters)")]
pub struct DeviceHandleError;

impl DeviceHandle {
    /// The handle of a 20-byte keyed digest.
    pub fn from_digest(digest: &[u8; 20]) -> Self {
        let mut text = String::with_capacity(PREFIX.len() + LETTERS);
        text.push_str(PREFIX);
        // 20 bytes are 160 bits: exactly 32 letters of 5 bits, read most significant first.
        let mut buffer: u64 = 0;
        let mut bits = 0;
        for byte in digest {
            buffer = (buffer << 8) | u64::from(*byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                let index = usize::try_from((buffer >> bits) & 0x1f).unwrap_or(0);
                text.push(char::from(ALPHABET.get(index).copied().unwrap_or(b'a')));
            }
        }
        DeviceHandle(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DeviceHandle {
    type Err = DeviceHandleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let letters = text.strip_prefix(PREFIX).ok_or(DeviceHandleError)?;
        if letters.len() != LETTERS || !letters.bytes().all(|b| ALPHABET.contains(&b)) {
            return Err(DeviceHandleError);
        }
        Ok(DeviceHandle(text.to_owned()))
    }
}

impl Serialize for DeviceHandle {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DeviceHandle {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_have_one_spelling() {
        let handle = DeviceHandle::from_digest(&[0xff; 20]);
        assert_eq!(handle.as_str(), "dev_77777777777777777777777777777777");
        let zero = DeviceHandle::from_digest(&[0; 20]);
        assert_eq!(zero.as_str(), "dev_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        assert_eq!(handle.as_str().parse(), Ok(handle.clone()));
        for bad in [
            "dev_7777777777777777777777777777777",
            "dev_777777777777777777777777777777777",
            "DEV_77777777777777777777777777777777",
            "dev_7777777777777777777777777777777A",
            "dev_77777777777777777777777777777771",
            "77777777777777777777777777777777",
        ] {
            assert_eq!(bad.parse::<DeviceHandle>(), Err(DeviceHandleError), "{bad}");
        }
    }
}
