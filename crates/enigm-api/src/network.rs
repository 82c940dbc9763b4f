//! Wire types of a network routing decision Command makes for a device under its group's
//! network policy (`enigm net decide --device`). The answer says where the flow goes and which
//! rule decided; the audit log keeps only the route's category and the rule id.

use std::net::IpAddr;

use enigm_types::{DeviceState, NetworkRoute, PolicyId, TrustState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The longest app, category or network id a flow names.
pub const MAX_FLOW_ID: usize = 128;
/// The longest domain name (RFC 1035).
pub const MAX_DOMAIN: usize = 253;

/// One flow: who sends it (an app and/or a category, at least one), where to (a domain and/or
/// an address, at least one) and over which network (absent: unknown, so untrusted). The
/// device's trust state and lifecycle are Command's own record, never the caller's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkFlow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 128)]
    pub app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 128)]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 253)]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub address: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 128)]
    pub network: Option<String>,
}

impl NetworkFlow {
    /// What is wrong with the flow's sizes, if anything (the engine judges the rest: a flow
    /// without an app and a category, or without a destination, is blocked as a missing input).
    pub fn oversized(&self) -> Option<&'static str> {
        let long =
            |value: &Option<String>, max: usize| value.as_ref().is_some_and(|v| v.len() > max);
        if long(&self.app, MAX_FLOW_ID) {
            Some("`app` is longer than 128 bytes")
        } else if long(&self.category, MAX_FLOW_ID) {
            Some("`category` is longer than 128 bytes")
        } else if long(&self.network, MAX_FLOW_ID) {
            Some("`network` is longer than 128 bytes")
        } else if long(&self.domain, MAX_DOMAIN) {
            Some("`domain` is longer than 253 bytes")
        } else {
            None
        }
    }
}

/// The network policy version a decision was made under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkPolicyRef {
    pub policy: PolicyId,
    pub name: String,
    pub version: u32,
}

/// One layer's verdict: the first rule of the layer that matched the flow, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LayerVerdictView {
    pub layer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// Where the flow goes and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkDecisionView {
    pub route: NetworkRoute,
    /// The VPN location, for a `vpn` route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The block's category (`default-deny`, `no-policy`, `device-inactive`, … or the policy
    /// rule's own), for a `block` route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The rule that decided: a policy rule's id, `default` or `fail-closed`.
    pub rule: String,
    /// The layers' verdicts, in order (empty when the decision was made before the layers).
    pub layers: Vec<LayerVerdictView>,
    /// The policy version decided under; absent when the device has no network policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<NetworkPolicyRef>,
    /// The device's state as Command recorded it and the decision used it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_state: Option<TrustState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<DeviceState>,
}
