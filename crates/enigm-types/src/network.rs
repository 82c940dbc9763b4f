//! What the audit log may say of a network routing decision: the category of the route and the
//! id of the policy rule that decided it, never the flow's destination, app or payload.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::vocabulary::vocabulary;

vocabulary! {
    /// The category of a network route (a VPN's location is configuration, not recorded).
    pub enum NetworkRoute ("network route") {
        EnigmProxy => "enigm-proxy",
        Vpn => "vpn",
        TorGateway => "tor-gateway",
        Direct => "direct",
        Block => "block",
    }
}

/// The id of a network policy rule, or the engine's own `default` / `fail-closed`: 1 to 128 of
/// ASCII letters, digits, `-`, `_`, `.`, `:` (the ids `enigm-netpolicy` accepts), so that it is
/// never free text. Held inline so that an audit target stays `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetworkRuleId {
    len: u8,
    bytes: [u8; NetworkRuleId::MAX_LEN],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a network rule id is 1 to 128 of ASCII letters, digits, `-`, `_`, `.`, `:`")]
pub struct NetworkRuleIdError;

impl NetworkRuleId {
    pub const MAX_LEN: usize = 128;

    /// Whether `text` is a valid rule id (the one definition `enigm-netpolicy` uses too).
    pub fn is_valid(text: &str) -> bool {
        (1..=Self::MAX_LEN).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    }

    pub fn parse(text: &str) -> Result<Self, NetworkRuleIdError> {
        if !Self::is_valid(text) {
            return Err(NetworkRuleIdError);
        }
        let mut bytes = [0u8; Self::MAX_LEN];
        for (slot, byte) in bytes.iter_mut().zip(text.bytes()) {
            *slot = byte;
        }
        Ok(NetworkRuleId {
            len: u8::try_from(text.len()).map_err(|_| NetworkRuleIdError)?,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        // INVARIANT: `parse` stored `len` ASCII bytes.
        self.bytes
            .get(..usize::from(self.len))
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .unwrap_or_default()
    }
}

impl fmt::Display for NetworkRuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for NetworkRuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NetworkRuleId({:?})", self.as_str())
    }
}

impl Serialize for NetworkRuleId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for NetworkRuleId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        NetworkRuleId::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_ids_not_text() {
        for good in [
            "default",
            "fail-closed",
            "block.threats:v2",
            &"a".repeat(128),
        ] {
            let id = NetworkRuleId::parse(good).expect("valid");
            assert_eq!(id.as_str(), good);
        }
        for bad in ["", "with space", "dé", "a/b", &"a".repeat(129)] {
            assert_eq!(
                NetworkRuleId::parse(bad),
                Err(NetworkRuleIdError),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn routes_have_one_spelling() {
        for route in NetworkRoute::ALL {
            assert_eq!(route.as_str().parse::<NetworkRoute>().ok(), Some(route));
        }
    }
}
