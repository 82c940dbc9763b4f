//! What the audit log may say of a network routing decision: the category of the route and the
//! id of the policy rule that decided it, never the flow's destination, app or payload.

use crate::inline::{InlineText, inline_name_impls};
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
pub struct NetworkRuleId(InlineText<{ NetworkRuleId::MAX_LEN }>);

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
        match InlineText::new(text) {
            Some(inline) if Self::is_valid(text) => Ok(NetworkRuleId(inline)),
            _ => Err(NetworkRuleIdError),
        }
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

inline_name_impls!(NetworkRuleId, NetworkRuleIdError);

/// The id of a VPN gateway (`ams-1`): 1 to 63 of ASCII lowercase letters, digits, `-`, `_`,
/// `.`; an operator's name for infrastructure, never free text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VpnGatewayId(InlineText<{ VpnGatewayId::MAX_LEN }>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a VPN gateway id is 1 to 63 of ASCII lowercase letters, digits, `-`, `_`, `.`")]
pub struct VpnGatewayIdError;

impl VpnGatewayId {
    pub const MAX_LEN: usize = 63;

    pub fn parse(text: &str) -> Result<Self, VpnGatewayIdError> {
        let valid = (1..=Self::MAX_LEN).contains(&text.len())
            && text.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
            });
        match InlineText::new(text) {
            Some(inline) if valid => Ok(VpnGatewayId(inline)),
            _ => Err(VpnGatewayIdError),
        }
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

inline_name_impls!(VpnGatewayId, VpnGatewayIdError);

impl utoipa::PartialSchema for VpnGatewayId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(VpnGatewayId::MAX_LEN))
            .pattern(Some(r"^[a-z0-9._-]{1,63}$"))
            .into()
    }
}

impl utoipa::ToSchema for VpnGatewayId {}

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
    fn gateway_ids_are_lowercase_ids() {
        assert_eq!(
            VpnGatewayId::parse("ams-1").map(|id| id.to_string()).ok(),
            Some("ams-1".into())
        );
        for bad in ["", "AMS", "a b", "a/b", &"a".repeat(64)] {
            assert_eq!(VpnGatewayId::parse(bad), Err(VpnGatewayIdError), "{bad:?}");
        }
    }

    #[test]
    fn routes_have_one_spelling() {
        for route in NetworkRoute::ALL {
            assert_eq!(route.as_str().parse::<NetworkRoute>().ok(), Some(route));
        }
    }
}
