//! The VPN control plane: gateways for operators, location switches for devices; the vpn
//! service does the work.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use enigm_api::vpn::{
    CreateVpnGatewayRequest, UpdateVpnGatewayRequest, VpnAssignmentView, VpnGatewayPeersView,
    VpnGatewayView, VpnSwitchRequest,
};
use enigm_types::VpnGatewayId;

use crate::device_guard::SignedDevice;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath};
use crate::guard::Caller;
use crate::services::vpn;
use crate::state::AppState;

/// The VPN gateways, with their aggregate load and whether each takes new sessions.
#[utoipa::path(get, path = enigm_api::paths::VPN_GATEWAYS, tag = "vpn", security(("bearer" = [])),
    responses((status = 200, body = Vec<VpnGatewayView>)))]
pub async fn list_gateways(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<Json<Vec<VpnGatewayView>>> {
    Ok(Json(vpn::list_gateways(&state).await?))
}

/// Register a VPN gateway (audited).
#[utoipa::path(post, path = enigm_api::paths::VPN_GATEWAYS, tag = "vpn", security(("bearer" = [])),
    request_body = CreateVpnGatewayRequest,
    responses((status = 201, body = VpnGatewayView), (status = 409, body = enigm_api::ErrorBody),
        (status = 422, body = enigm_api::ErrorBody)))]
pub async fn create_gateway(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateVpnGatewayRequest>,
) -> ApiResult<(StatusCode, Json<VpnGatewayView>)> {
    let view = vpn::create_gateway(&state, &caller, request).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Change a gateway's health, reported load or capacity (audited). Sessions it holds are kept.
#[utoipa::path(patch, path = enigm_api::paths::VPN_GATEWAY, tag = "vpn", security(("bearer" = [])),
    request_body = UpdateVpnGatewayRequest,
    params(("gateway" = VpnGatewayId, Path, description = "gateway id")),
    responses((status = 200, body = VpnGatewayView), (status = 404, body = enigm_api::ErrorBody),
        (status = 409, body = enigm_api::ErrorBody), (status = 422, body = enigm_api::ErrorBody)))]
pub async fn update_gateway(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<VpnGatewayId>,
    ApiJson(request): ApiJson<UpdateVpnGatewayRequest>,
) -> ApiResult<Json<VpnGatewayView>> {
    Ok(Json(
        vpn::update_gateway(&state, &caller, id, request).await?,
    ))
}

/// The `[Peer]` sections the gateway applies: the WireGuard public key and tunnel address of
/// each session whose device is still on the network (no device handle, no traffic).
#[utoipa::path(get, path = enigm_api::paths::VPN_GATEWAY_PEERS, tag = "vpn", security(("bearer" = [])),
    params(("gateway" = VpnGatewayId, Path, description = "gateway id")),
    responses((status = 200, body = VpnGatewayPeersView), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn gateway_peers(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(id): ApiPath<VpnGatewayId>,
) -> ApiResult<Json<VpnGatewayPeersView>> {
    Ok(Json(vpn::gateway_peers(&state, id).await?))
}

/// A device switches its VPN location or leaves the VPN (signed by the device). Answered with
/// the assigned gateway and a WireGuard configuration without a private key.
#[utoipa::path(post, path = enigm_api::paths::DEVICE_VPN, tag = "device",
    request_body = VpnSwitchRequest,
    params(
        ("signature" = String, Header, description = "RFC 9421 signature"),
        ("signature-input" = String, Header, description = "RFC 9421 signature parameters"),
        ("content-digest" = String, Header, description = "RFC 9530 digest of the body"),
    ),
    responses((status = 200, body = VpnAssignmentView), (status = 401, body = enigm_api::ErrorBody),
        (status = 403, body = enigm_api::ErrorBody), (status = 409, body = enigm_api::ErrorBody),
        (status = 503, body = enigm_api::ErrorBody)))]
pub async fn switch(
    State(state): State<AppState>,
    device: SignedDevice<VpnSwitchRequest>,
) -> ApiResult<Json<VpnAssignmentView>> {
    Ok(Json(vpn::switch(&state, device).await?))
}
