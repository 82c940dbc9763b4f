//! Wire types of the VPN control plane (issue 16, item 4): gateways registered by operators with
//! their aggregate load, and a device's signed request to switch its VPN location, answered
//! with the WireGuard configuration of the gateway it was assigned (without a private key: the
//! device generated its key pair and adds its own private key).

use enigm_types::VpnGatewayId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A gateway to register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVpnGatewayRequest {
    pub id: VpnGatewayId,
    /// The location it serves, as network policies name it in `vpn` routes.
    #[schema(pattern = r"^[A-Za-z0-9_.:-]{1,128}$")]
    pub location: String,
    /// `host:port` devices connect to.
    #[schema(max_length = 260)]
    pub endpoint: String,
    /// The gateway's WireGuard public key (base64 of 32 bytes).
    #[schema(pattern = r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$")]
    pub tunnel_key: String,
    /// The pool of device tunnel addresses (IPv4 /8–/30 or IPv6 /64–/126); the gateway is
    /// host 1.
    #[schema(max_length = 64)]
    pub tunnel_network: String,
    /// The most sessions it may hold (at most what the pool can address).
    pub capacity: u32,
}

/// A change of a gateway's health, reported load or capacity; a field left out (or `null`) is
/// kept, so an empty change changes nothing. Aggregate figures only: nothing about a device or
/// its traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateVpnGatewayRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// The load the gateway reports, in percent (0–100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 100)]
    pub load_percent: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
}

/// A gateway with its aggregate load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VpnGatewayView {
    pub id: VpnGatewayId,
    pub location: String,
    pub endpoint: String,
    pub tunnel_key: String,
    pub tunnel_network: String,
    pub capacity: u32,
    /// Sessions assigned to it now.
    pub assigned: u32,
    pub healthy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_percent: Option<u8>,
    /// Whether it takes new sessions now (healthy, a free slot, load under the limit); the
    /// sessions it holds are kept either way.
    pub accepting_new_sessions: bool,
}

/// A device's request to be placed in a VPN location (or, without one, to leave the VPN).
/// `sequence` increases with each request the device makes: a request older than one already
/// applied is refused and changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VpnSwitchRequest {
    pub sequence: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[A-Za-z0-9_.:-]{1,128}$")]
    pub location: Option<String>,
    /// The WireGuard public key the device generated (required with a location).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$")]
    pub tunnel_key: Option<String>,
}

/// The device's VPN assignment after its request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VpnAssignmentView {
    pub sequence: u64,
    /// Absent when the device left the VPN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment: Option<VpnPeerView>,
}

/// Where the device connects, and its `wg-quick` configuration without a private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VpnPeerView {
    pub location: String,
    pub gateway: VpnGatewayId,
    pub endpoint: String,
    pub gateway_tunnel_key: String,
    /// The device's tunnel address with the pool's prefix.
    pub address: String,
    /// `wg-quick` configuration with no `PrivateKey` line: the device adds its own.
    pub config: String,
}

/// What a gateway applies: the `[Peer]` sections of its WireGuard configuration for the
/// sessions of devices still on the network (their public keys and tunnel addresses only: no
/// device handle, no traffic).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VpnGatewayPeersView {
    pub gateway: VpnGatewayId,
    /// How many peers `config` lists.
    pub peers: u32,
    pub config: String,
}
