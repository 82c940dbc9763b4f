//! The privacy-preserving device handle: how every device is referred to outside the device.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::vocabulary::vocabulary;

/// An opaque, stable name for one enrolled device key: `dev_` and 32 lowercase base32 letters
/// and digits (160 bits of a keyed hash of the device's public key, computed by
/// `enigm_crypto::DeviceHandleKey`). It cannot be reversed to the key or to any hardware
/// identifier, and it differs between deployments because each has its own handle key.
///
/// The text is kept as fixed-size ASCII so that a handle is `Copy`, like the other references
/// an audit event carries.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, utoipa::ToSchema)]
#[schema(
    value_type = String,
    pattern = "^dev_[a-z2-7]{32}$",
    example = "dev_7q2hx4c6v5k3m5n2p2r4t6w3y3b5d7f4"
)]
pub struct DeviceHandle([u8; HANDLE_LEN]);

/// The base32 alphabet of handles (RFC 4648, lowercase).
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const PREFIX: &str = "dev_";
/// 160 bits in 5-bit letters.
const LETTERS: usize = 32;
const HANDLE_LEN: usize = 4 + LETTERS;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a device handle (expected `dev_` and 32 base32 letters)")]
pub struct DeviceHandleError;

impl DeviceHandle {
    /// The handle of a 20-byte keyed digest.
    pub fn from_digest(digest: &[u8; 20]) -> Self {
        let mut text = [0u8; HANDLE_LEN];
        let (prefix, letters) = text.split_at_mut(PREFIX.len());
        prefix.copy_from_slice(PREFIX.as_bytes());
        let mut out = letters.iter_mut();
        // 20 bytes are 160 bits: exactly 32 letters of 5 bits, read most significant first.
        let mut buffer: u64 = 0;
        let mut bits = 0;
        for byte in digest {
            buffer = (buffer << 8) | u64::from(*byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                let index = usize::try_from((buffer >> bits) & 0x1f).unwrap_or(0);
                if let Some(slot) = out.next() {
                    *slot = ALPHABET.get(index).copied().unwrap_or(b'a');
                }
            }
        }
        DeviceHandle(text)
    }

    pub fn as_str(&self) -> &str {
        // INVARIANT: built only from ASCII (the prefix and the base32 alphabet).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for DeviceHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for DeviceHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceHandle({})", self.as_str())
    }
}

impl FromStr for DeviceHandle {
    type Err = DeviceHandleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let letters = text.strip_prefix(PREFIX).ok_or(DeviceHandleError)?;
        if letters.len() != LETTERS || !letters.bytes().all(|b| ALPHABET.contains(&b)) {
            return Err(DeviceHandleError);
        }
        let mut bytes = [0u8; HANDLE_LEN];
        if text.len() != HANDLE_LEN {
            return Err(DeviceHandleError);
        }
        bytes.copy_from_slice(text.as_bytes());
        Ok(DeviceHandle(bytes))
    }
}

impl Serialize for DeviceHandle {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
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
        assert_eq!(handle.as_str().parse(), Ok(handle));
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

vocabulary! {
    /// The six security layers of Enigm OS (enigm-docs §5.1). Every signal belongs to one; the
    /// audit log names the layers a trust-state change came from.
    #[derive(PartialOrd, Ord)]
    pub enum SecurityLayer ("security layer") {
        HardwareIntegrity => "hardware-integrity",
        VerifiedBoot => "verified-boot",
        OsHardening => "os-hardening",
        NetworkPolicy => "network-policy",
        SecurityService => "security-service",
        Application => "application",
    }
}

impl SecurityLayer {
    const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of security layers, e.g. the sources of the findings behind a trust-state change.
/// Serialised as the sorted list of layer names, so it carries categories and nothing else.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SecurityLayers(u8);

impl SecurityLayers {
    pub const EMPTY: SecurityLayers = SecurityLayers(0);

    #[must_use]
    pub const fn with(self, layer: SecurityLayer) -> Self {
        SecurityLayers(self.0 | layer.bit())
    }

    pub const fn contains(self, layer: SecurityLayer) -> bool {
        self.0 & layer.bit() != 0
    }

    pub const fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = SecurityLayer> {
        SecurityLayer::ALL
            .into_iter()
            .filter(move |layer| self.contains(*layer))
    }
}

impl FromIterator<SecurityLayer> for SecurityLayers {
    fn from_iter<I: IntoIterator<Item = SecurityLayer>>(layers: I) -> Self {
        layers
            .into_iter()
            .fold(SecurityLayers::EMPTY, SecurityLayers::with)
    }
}

impl serde::Serialize for SecurityLayers {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for SecurityLayers {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let layers = Vec::<SecurityLayer>::deserialize(deserializer)?;
        let set: SecurityLayers = layers.iter().copied().collect();
        // One spelling only: sorted, no repeats (the canonical encoding is hashed).
        if set.iter().eq(layers.iter().copied()) {
            Ok(set)
        } else {
            Err(serde::de::Error::custom(
                "security layers must be sorted and distinct",
            ))
        }
    }
}

#[cfg(test)]
mod layer_tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::{SecurityLayer, SecurityLayers};

    #[test]
    fn layers_serialise_as_a_sorted_list_and_parse_only_that_spelling() {
        let set: SecurityLayers = [SecurityLayer::Application, SecurityLayer::VerifiedBoot]
            .into_iter()
            .collect();
        let text = serde_json::to_string(&set).unwrap();
        assert_eq!(text, r#"["verified-boot","application"]"#);
        assert_eq!(serde_json::from_str::<SecurityLayers>(&text).unwrap(), set);
        assert!(
            serde_json::from_str::<SecurityLayers>(r#"["application","verified-boot"]"#).is_err()
        );
        assert!(
            serde_json::from_str::<SecurityLayers>(r#"["application","application"]"#).is_err()
        );
        assert!(serde_json::from_str::<SecurityLayers>(r#"["serial"]"#).is_err());
        assert!(SecurityLayers::EMPTY.is_empty());
    }
}

vocabulary! {
    /// The steps of device setup that must be complete before a device is "ready" (enigm-docs
    /// §5.2, §20 C.27). The setup wizard's other steps (language, appearance, ...) do not gate
    /// trust and are not reported.
    #[derive(PartialOrd, Ord)]
    pub enum SetupStep ("setup step") {
        /// A strong device PIN is set (weak PINs are refused where it is chosen).
        StrongPin => "strong-pin",
        /// The user accepted the terms and privacy notice.
        Terms => "terms",
        /// The device has a working network path to Command.
        NetworkReadiness => "network-readiness",
    }
}

impl SetupStep {
    /// The steps a device must report complete, in the wizard's order.
    pub const REQUIRED: [SetupStep; 3] = [
        SetupStep::StrongPin,
        SetupStep::Terms,
        SetupStep::NetworkReadiness,
    ];

    /// The required steps not in `completed`, in the wizard's order: empty when the device is
    /// ready. Anything not reported counts as not done (fail closed).
    pub fn missing(completed: &[SetupStep]) -> Vec<SetupStep> {
        SetupStep::REQUIRED
            .into_iter()
            .filter(|step| !completed.contains(step))
            .collect()
    }
}
