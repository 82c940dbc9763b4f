//! The policy document: strict JSON (unknown fields refused), bounded sizes.

use std::collections::BTreeMap;

use enigm_types::{DeviceState, TrustState};
use serde::{Deserialize, Serialize};

/// The only document version this crate reads.
pub const VERSION: u32 = 1;
/// Largest policy document accepted, in bytes (1M blocked names are about 20 MiB of JSON).
pub const MAX_POLICY_BYTES: usize = 64 << 20;
pub const MAX_LAYERS: usize = 64;
pub const MAX_RULES: usize = 4096;
/// Named blocklists; the decision caches each one's membership in a 64-bit mask.
pub const MAX_BLOCKLISTS: usize = 64;
/// Domain names over the whole policy (blocklists and rules).
pub const MAX_DOMAINS: usize = 4_000_000;
/// CIDRs over the whole policy.
pub const MAX_CIDRS: usize = 1_000_000;
/// Entries of an app, category, network or `reopenable_by` list, per list.
pub const MAX_LIST: usize = 4096;
/// Longest id, name, location or reason.
pub const MAX_ID_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    pub version: u32,
    /// Whether a rule may route `direct`; without it such a policy is refused.
    #[serde(default)]
    pub allow_direct: bool,
    /// Network ids the policy trusts; every other network is untrusted.
    #[serde(default)]
    pub trusted_networks: Vec<String>,
    /// A name given twice is refused, not silently overwritten.
    #[serde(default, deserialize_with = "unique_names")]
    pub blocklists: BTreeMap<String, Blocklist>,
    pub layers: Vec<Layer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Blocklist {
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub cidrs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub id: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    #[serde(rename = "match", default)]
    pub matches: Match,
    pub action: Action,
    /// Only on a block rule: the route rules of later layers that may re-open what it blocks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reopenable_by: Vec<String>,
}

/// Conditions that must all hold; an absent one holds for every flow, an empty match matches
/// every flow. A present list may not be empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Match {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apps: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    /// Suffix patterns: `example.com` matches it and every subdomain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domains: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidrs: Option<Vec<String>>,
    /// A named blocklist: the flow's domain or address is in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocklist: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_states: Option<Vec<TrustState>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Vec<DeviceState>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMatch {
    Trusted,
    Untrusted,
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Block(BlockAction),
    Route(RouteSpec),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockAction {
    /// A category such as `malware` (lowercase letters, digits, `-`, `_`), never a destination.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteSpec {
    EnigmProxy,
    Vpn(String),
    TorGateway,
    Direct,
}

/// Why a document is not a policy.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("the policy is empty")]
    Empty,
    #[error("the policy is {0} bytes, more than the {MAX_POLICY_BYTES} allowed")]
    TooLarge(usize),
    #[error("the policy is not a valid policy document: {0}")]
    Json(#[from] serde_json::Error),
    #[error("policy version {0} is not supported (expected {VERSION})")]
    Version(u32),
}

impl PolicyDocument {
    /// Parses a policy document strictly: size first, then JSON with unknown fields refused.
    pub fn from_json(bytes: &[u8]) -> Result<PolicyDocument, ParseError> {
        if bytes.len() > MAX_POLICY_BYTES {
            return Err(ParseError::TooLarge(bytes.len()));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ParseError::Empty);
        }
        let doc: PolicyDocument = serde_json::from_slice(bytes)?;
        if doc.version != VERSION {
            return Err(ParseError::Version(doc.version));
        }
        Ok(doc)
    }
}

/// Reads the blocklists object, refusing a name given twice (serde's map would keep the last).
fn unique_names<'de, D>(deserializer: D) -> Result<BTreeMap<String, Blocklist>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Names;

    impl<'de> serde::de::Visitor<'de> for Names {
        type Value = BTreeMap<String, Blocklist>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of named blocklists")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((name, list)) = map.next_entry::<String, Blocklist>()? {
                if out.contains_key(&name) {
                    return Err(serde::de::Error::custom(format_args!(
                        "blocklist `{name}` is named twice"
                    )));
                }
                out.insert(name, list);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_map(Names)
}
