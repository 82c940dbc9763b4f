//! The VPN control plane (issue 16, item 4; enigm-docs §10.2, §20 H.58–H.59).
//!
//! - **Gateways** are registered by operators with a location, endpoint, WireGuard public key,
//!   tunnel address pool and capacity; their health and reported load change through the API.
//!   Command assigns from aggregate figures only (sessions held, load reported), never from what
//!   a device does.
//! - **A device switches location** with a signed request carrying a sequence that increases
//!   with each of its requests. An older request never overrides a newer one (the store claims
//!   the sequence first, under the device row's lock). A full gateway takes no new session; the
//!   device's current session is kept even when its gateway is over the threshold. When the
//!   chosen gateway fills up meanwhile, the switch is retried at most
//!   [`MAX_SWITCH_ATTEMPTS`] times, each time only if it is still the device's newest request.
//! - **Who may**: a device Command would allow network access (`decide(Network)`: lifecycle,
//!   trust state, fresh posture, attestation where its policy requires it), in a location its
//!   group's network policy routes to. Leaving the VPN is always allowed to a known device.
//! - **Keys**: the device generates its WireGuard key pair; Command stores only the public key and
//!   answers a configuration without a private key.
//!
//! Every switch and every gateway change is audited; a switch's event names the device and the
//! sequence, never the location or gateway (which say where the device's traffic goes).

use enigm_api::eligibility::EligibilityRequest;
use enigm_api::vpn::{
    CreateVpnGatewayRequest, UpdateVpnGatewayRequest, VpnAssignmentView, VpnGatewayPeersView,
    VpnGatewayView, VpnPeerView, VpnSwitchRequest,
};
use enigm_netpolicy::CompiledPolicy;
use enigm_netpolicy::vpn::{
    GatewayLoad, LOAD_LIMIT_PERCENT, MAX_SWITCH_ATTEMPTS, TunnelNetwork, WireGuardPeerConfig,
    WireGuardPublicKey, check_endpoint, choose_gateway, device_config, gateway_peers_config,
};
use enigm_store::{StoreError, VpnGatewayChange, VpnGatewayRecord};
use enigm_trust::{DecisionActor, EligibilityDecision, ProtectedAction};
use enigm_types::{
    Actor, AuditAction, AuditEvent, AuditTarget, NetworkRuleId, Outcome, PolicyKind,
    ReasonCategory, VpnGatewayId,
};

use crate::device_guard::SignedDevice;
use crate::error::{ApiError, ApiResult};
use crate::guard::Caller;
use crate::services::eligibility;
use crate::state::AppState;

/// Registers a gateway.
pub async fn create_gateway(
    state: &AppState,
    caller: &Caller,
    request: CreateVpnGatewayRequest,
) -> ApiResult<VpnGatewayView> {
    if !NetworkRuleId::is_valid(&request.location) {
        return Err(ApiError::unprocessable(
            "invalid_body",
            "`location` is an id as network policies name it: 1 to 128 of ASCII letters, \
             digits, `-`, `_`, `.`, `:`",
        ));
    }
    let invalid = |error: enigm_netpolicy::vpn::VpnConfigError| {
        ApiError::unprocessable("invalid_body", error.to_string())
    };
    check_endpoint(&request.endpoint).map_err(invalid)?;
    WireGuardPublicKey::parse(&request.tunnel_key).map_err(invalid)?;
    let pool = TunnelNetwork::parse(&request.tunnel_network).map_err(invalid)?;
    if request.capacity > pool.device_addresses() {
        return Err(ApiError::unprocessable(
            "invalid_body",
            "`capacity` is more sessions than `tunnel_network` has device addresses",
        ));
    }
    let now = state.now();
    let record = VpnGatewayRecord {
        id: request.id,
        location: request.location,
        endpoint: request.endpoint,
        public_key: request.tunnel_key,
        tunnel_network: request.tunnel_network,
        capacity: request.capacity,
        assigned: 0,
        healthy: true,
        load_percent: None,
        updated_at: now,
    };
    let mut tx = state.store().begin().await?;
    match tx.insert_vpn_gateway(&record, now).await {
        Err(StoreError::Conflict) => {
            return Err(ApiError::conflict(
                ReasonCategory::Conflict,
                "a VPN gateway with this id exists",
            ));
        }
        other => other?,
    }
    tx.append_audit(&gateway_event(
        now,
        caller,
        request.id,
        AuditAction::VpnGatewayCreate,
    ))
    .await?;
    tx.commit().await?;
    Ok(gateway_view(&record))
}

/// Changes a gateway's health, reported load or capacity.
pub async fn update_gateway(
    state: &AppState,
    caller: &Caller,
    id: VpnGatewayId,
    request: UpdateVpnGatewayRequest,
) -> ApiResult<VpnGatewayView> {
    if request.load_percent.is_some_and(|load| load > 100) {
        return Err(ApiError::unprocessable(
            "invalid_body",
            "`load_percent` is 0 to 100",
        ));
    }
    let store = state.store();
    let gateway = store
        .vpn_gateway(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("VPN gateway"))?;
    // An empty change changes nothing and is not audited: the gateway as it is.
    if request == UpdateVpnGatewayRequest::default() {
        return Ok(gateway_view(&gateway));
    }
    if let Some(capacity) = request.capacity {
        let pool = TunnelNetwork::parse(&gateway.tunnel_network)
            .map_err(|_| StoreError::Corrupt("vpn tunnel network"))?;
        // A conflict with the gateway as registered (its pool), not a malformed request.
        if capacity > pool.device_addresses() {
            return Err(ApiError::conflict(
                ReasonCategory::Conflict,
                "`capacity` is more sessions than the gateway's tunnel network has addresses",
            ));
        }
    }
    let now = state.now();
    let change = VpnGatewayChange {
        healthy: request.healthy,
        load_percent: request.load_percent,
        capacity: request.capacity,
    };
    let mut tx = store.begin().await?;
    if !tx.change_vpn_gateway(&id, &change, now).await? {
        return Err(ApiError::not_found("VPN gateway"));
    }
    tx.append_audit(&gateway_event(
        now,
        caller,
        id,
        AuditAction::VpnGatewayUpdate,
    ))
    .await?;
    tx.commit().await?;
    let gateway = store
        .vpn_gateway(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("VPN gateway"))?;
    Ok(gateway_view(&gateway))
}

/// The `[Peer]` sections the gateway applies.
pub async fn gateway_peers(state: &AppState, id: VpnGatewayId) -> ApiResult<VpnGatewayPeersView> {
    let store = state.store();
    let gateway = store
        .vpn_gateway(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("VPN gateway"))?;
    let corrupt = |_| ApiError::from(StoreError::Corrupt("vpn session record"));
    let pool = TunnelNetwork::parse(&gateway.tunnel_network).map_err(corrupt)?;
    let peers = store
        .vpn_gateway_peers(&id)
        .await?
        .into_iter()
        .map(|(key, slot)| {
            Ok((
                WireGuardPublicKey::parse(&key).map_err(corrupt)?,
                pool.device_host(slot).map_err(corrupt)?,
            ))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(VpnGatewayPeersView {
        gateway: id,
        peers: u32::try_from(peers.len()).unwrap_or(u32::MAX),
        config: gateway_peers_config(&peers),
    })
}

/// Every gateway with its aggregate load.
pub async fn list_gateways(state: &AppState) -> ApiResult<Vec<VpnGatewayView>> {
    Ok(state
        .store()
        .vpn_gateways()
        .await?
        .iter()
        .map(gateway_view)
        .collect())
}

/// A signed device's request to switch its VPN location, or to leave the VPN.
pub async fn switch(
    state: &AppState,
    device: SignedDevice<VpnSwitchRequest>,
) -> ApiResult<VpnAssignmentView> {
    let refuse = &device.refuse;
    let handle = device.handle;
    let now = device.now;
    let request = &device.body;
    // The store keeps sequences as signed 64-bit numbers.
    if i64::try_from(request.sequence).is_err() {
        return Err(refuse.deny(ReasonCategory::InvalidBody).await);
    }
    let wanted = match (&request.location, &request.tunnel_key) {
        (None, None) => None,
        (Some(location), Some(key))
            if NetworkRuleId::is_valid(location) && WireGuardPublicKey::parse(key).is_ok() =>
        {
            Some((location.as_str(), key.as_str()))
        }
        _ => return Err(refuse.deny(ReasonCategory::InvalidBody).await),
    };
    let Some(record) = state.store().device(&handle).await? else {
        return Err(refuse.deny(ReasonCategory::UnknownDevice).await);
    };
    if let Some((location, _)) = wanted {
        let question = EligibilityRequest {
            device: handle,
            action: ProtectedAction::Network,
            resource: None,
            session_valid: None,
        };
        if let EligibilityDecision::Deny(reason) =
            eligibility::evaluate(state, &question, DecisionActor::Device, now).await?
        {
            return Err(refuse.deny(eligibility::reason_category(reason)).await);
        }
        // Only where the group's network policy routes: a policy that does not compile, or
        // none, routes nowhere.
        let assigned = state.store().group_policies(&record.group).await?;
        let routes_there = assigned
            .iter()
            .find(|policy| policy.kind == PolicyKind::Network)
            .and_then(|policy| CompiledPolicy::from_json(policy.content.as_bytes()).ok())
            .is_some_and(|policy| policy.vpn_locations().contains(&location));
        if !routes_there {
            return Err(refuse.deny(ReasonCategory::VpnLocationNotAllowed).await);
        }
    }
    for _attempt in 0..MAX_SWITCH_ATTEMPTS {
        match try_switch(state, &device, wanted).await? {
            Attempt::Done(view) => return Ok(view),
            Attempt::Refused(reason) => return Err(refuse.deny(reason).await),
            Attempt::Raced => continue,
        }
    }
    // Every gateway the switch chose filled up before it could take a slot.
    Err(refuse.deny(ReasonCategory::VpnCapacity).await)
}

enum Attempt {
    Done(VpnAssignmentView),
    Refused(ReasonCategory),
    /// The chosen gateway filled up (or an address slot was taken) meanwhile.
    Raced,
}

/// One attempt at a switch, in one transaction: claim the sequence, move the slot, record.
async fn try_switch(
    state: &AppState,
    device: &SignedDevice<VpnSwitchRequest>,
    wanted: Option<(&str, &str)>,
) -> ApiResult<Attempt> {
    let handle = device.handle;
    let now = device.now;
    let sequence = device.body.sequence;
    let mut tx = state.store().begin().await?;
    if let Err(error) = device.record_nonce(&mut tx).await {
        drop(tx);
        return Err(device.refuse.store_refusal(error).await);
    }
    let Some(current) = tx.claim_vpn_sequence(&handle, sequence, now).await? else {
        drop(tx);
        return Ok(Attempt::Refused(ReasonCategory::VpnSwitchSuperseded));
    };
    let held = current.gateway;
    let view = match wanted {
        None => {
            if let Some((gateway, _)) = &held {
                tx.release_vpn_slot(gateway, now).await?;
            }
            tx.set_vpn_assignment(&handle, None, None, now).await?;
            VpnAssignmentView {
                sequence,
                assignment: None,
            }
        }
        Some((location, public_key)) => {
            let gateways = tx.vpn_gateways_at(location).await?;
            // A session already in this location stays on its gateway, whatever its load.
            let kept = held.as_ref().and_then(|(id, slot)| {
                gateways
                    .iter()
                    .find(|gateway| gateway.id == *id)
                    .map(|gateway| (gateway, *slot))
            });
            let (gateway, slot) = match kept {
                Some(kept) => kept,
                None => {
                    let loads: Vec<GatewayLoad<'_>> = gateways.iter().map(load_of).collect();
                    let Some(chosen) = choose_gateway(&loads)
                        .and_then(|id| gateways.iter().find(|g| g.id.as_str() == id))
                    else {
                        drop(tx);
                        return Ok(Attempt::Refused(ReasonCategory::VpnCapacity));
                    };
                    if !move_slot(&mut tx, held.as_ref().map(|(id, _)| id), &chosen.id, now).await?
                    {
                        drop(tx);
                        return Ok(Attempt::Raced);
                    }
                    let pool = TunnelNetwork::parse(&chosen.tunnel_network)
                        .map_err(|_| StoreError::Corrupt("vpn tunnel network"))?;
                    let Some(slot) = tx
                        .free_vpn_slot(&chosen.id, pool.device_addresses())
                        .await?
                    else {
                        drop(tx);
                        return Ok(Attempt::Raced);
                    };
                    (chosen, slot)
                }
            };
            tx.set_vpn_assignment(&handle, Some((&gateway.id, slot)), Some(public_key), now)
                .await?;
            VpnAssignmentView {
                sequence,
                assignment: Some(peer_view(gateway, slot)?),
            }
        }
    };
    tx.append_audit(&AuditEvent::new(
        now,
        Actor::Device(handle),
        AuditAction::DeviceVpnSwitch,
        AuditTarget::VpnSwitch { handle, sequence },
        Outcome::Success,
    ))
    .await?;
    match tx.commit().await {
        Ok(()) => Ok(Attempt::Done(view)),
        // Two switches took the same free address slot at once (the other committed first).
        Err(StoreError::Conflict) => Ok(Attempt::Raced),
        Err(error) => Err(error.into()),
    }
}

/// Takes a slot of `to` and gives back the one of `from`, locking the two gateways in id order
/// so that two switches in opposite directions cannot deadlock. `false` when `to` takes no new
/// session (nothing changed that the transaction keeps).
async fn move_slot(
    tx: &mut enigm_store::WriteTx<'_>,
    from: Option<&VpnGatewayId>,
    to: &VpnGatewayId,
    now: enigm_types::Timestamp,
) -> ApiResult<bool> {
    match from {
        Some(from) if from < to => {
            tx.release_vpn_slot(from, now).await?;
            Ok(tx.take_vpn_slot(to, LOAD_LIMIT_PERCENT, now).await?)
        }
        Some(from) => {
            if !tx.take_vpn_slot(to, LOAD_LIMIT_PERCENT, now).await? {
                return Ok(false);
            }
            tx.release_vpn_slot(from, now).await?;
            Ok(true)
        }
        None => Ok(tx.take_vpn_slot(to, LOAD_LIMIT_PERCENT, now).await?),
    }
}

fn peer_view(gateway: &VpnGatewayRecord, slot: u32) -> ApiResult<VpnPeerView> {
    let corrupt = |_| ApiError::from(StoreError::Corrupt("vpn gateway record"));
    let pool = TunnelNetwork::parse(&gateway.tunnel_network).map_err(corrupt)?;
    let address = pool.device_address(slot).map_err(corrupt)?;
    let gateway_key = WireGuardPublicKey::parse(&gateway.public_key).map_err(corrupt)?;
    let config = device_config(
        &WireGuardPeerConfig {
            address: &address,
            gateway_public_key: &gateway_key,
            gateway_endpoint: &gateway.endpoint,
        },
        None,
    );
    Ok(VpnPeerView {
        location: gateway.location.clone(),
        gateway: gateway.id,
        endpoint: gateway.endpoint.clone(),
        gateway_tunnel_key: gateway.public_key.clone(),
        address,
        config,
    })
}

/// The aggregate figures of a gateway that `enigm_netpolicy::vpn` assigns by.
fn load_of(gateway: &VpnGatewayRecord) -> GatewayLoad<'_> {
    GatewayLoad {
        id: gateway.id.as_str(),
        healthy: gateway.healthy,
        capacity: gateway.capacity,
        assigned: gateway.assigned,
        load_percent: gateway.load_percent,
    }
}

fn gateway_view(gateway: &VpnGatewayRecord) -> VpnGatewayView {
    let load = load_of(gateway);
    VpnGatewayView {
        id: gateway.id,
        location: gateway.location.clone(),
        endpoint: gateway.endpoint.clone(),
        tunnel_key: gateway.public_key.clone(),
        tunnel_network: gateway.tunnel_network.clone(),
        capacity: gateway.capacity,
        assigned: gateway.assigned,
        healthy: gateway.healthy,
        load_percent: gateway.load_percent,
        accepting_new_sessions: load.accepts_new_sessions(),
    }
}

fn gateway_event(
    now: enigm_types::Timestamp,
    caller: &Caller,
    gateway: VpnGatewayId,
    action: AuditAction,
) -> AuditEvent {
    AuditEvent::new(
        now,
        Actor::Admin(caller.admin.id),
        action,
        AuditTarget::VpnGateway { gateway },
        Outcome::Success,
    )
}
