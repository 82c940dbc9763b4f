//! The device's side of the VPN control plane (issue 16, item 4): it generates its WireGuard key
//! pair (the private key never leaves the state directory), asks Command for a location with a
//! signed request whose sequence it increases with each request, and writes the `wg-quick`
//! configuration of the gateway it was assigned, with its own private key, to the state
//! directory (mode 0600). Bringing the interface up (`wg-quick up`) is the operating system's.
//!
//! The sequence is recorded before the request is sent, so a crash or a retry never sends an
//! older number again: Command would refuse it as superseded. A refused request changes
//! nothing, here or at Command: the assignment in force stays.

use anyhow::Context as _;
use enigm_api::paths;
use enigm_api::vpn::{VpnAssignmentView, VpnSwitchRequest};
use enigm_crypto::Ed25519SigningKey;
use enigm_netpolicy::vpn::device_config_from_answer;
use serde::{Deserialize, Serialize};

use crate::http::DeviceClient;
use crate::state::StateDir;

/// What `vpn.json` keeps: the last sequence used and where the device is placed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpnRecord {
    pub sequence: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// The gateway's endpoint (`host:port`, UDP), which the daemon's firewall opens when the
    /// network policy routes through a VPN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// The tunnel's interface, named after its configuration file (`wg-quick up` takes the name).
pub const VPN_INTERFACE: &str = "enigm0";

/// Asks Command to place the device in `location` (or, with `None`, to take it off the VPN),
/// and writes or removes the tunnel configuration accordingly.
pub async fn switch(
    client: &DeviceClient,
    device_key: &Ed25519SigningKey,
    state: &StateDir,
    location: Option<&str>,
) -> anyhow::Result<VpnAssignmentView> {
    let wireguard = state.wireguard_key()?;
    let mut record = state.vpn()?.unwrap_or_default();
    let sequence = record
        .sequence
        .checked_add(1)
        .context("the VPN switch sequence is exhausted")?;
    // Recorded first: this number is never sent twice.
    record.sequence = sequence;
    state.write_vpn(&record)?;
    let request = VpnSwitchRequest {
        sequence,
        location: location.map(str::to_owned),
        tunnel_key: location.map(|_| wireguard.public_base64()),
    };
    let answer: VpnAssignmentView = client
        .post_signed(device_key, paths::DEVICE_VPN, &request)
        .await?;
    if answer.sequence != sequence {
        anyhow::bail!("Command answered another VPN switch than the one asked");
    }
    match &answer.assignment {
        Some(peer) => {
            // Everything written into the configuration is checked first (`wg-quick` runs some
            // of its directives); an answer that fails keeps the configuration in force.
            let config = device_config_from_answer(
                &peer.address,
                &peer.gateway_tunnel_key,
                &peer.endpoint,
                wireguard.to_base64().as_str(),
            )
            .context("Command's VPN answer is not a usable WireGuard configuration")?;
            state.write_vpn_config(Some(&config))?;
            record.location = Some(peer.location.clone());
            record.gateway = Some(peer.gateway.to_string());
            record.endpoint = Some(peer.endpoint.clone());
        }
        None => {
            state.write_vpn_config(None)?;
            record.location = None;
            record.gateway = None;
            record.endpoint = None;
        }
    }
    state.write_vpn(&record)?;
    Ok(answer)
}
