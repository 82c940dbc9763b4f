//! Network routing decisions for a device under its group's network policy; the network
//! service does the work.

use axum::Json;
use axum::extract::State;
use enigm_api::network::{NetworkDecisionView, NetworkFlow};
use enigm_types::DeviceHandle;

use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath};
use crate::guard::Caller;
use crate::services::network;
use crate::state::AppState;

/// Decide where a flow of this device goes under its group's network policy, and which rule
/// decided (audited as the route's category and the rule, never the flow's destination).
#[utoipa::path(post, path = enigm_api::paths::DEVICE_NETWORK_DECISION, tag = "devices", security(("bearer" = [])),
    request_body = NetworkFlow,
    params(("handle" = DeviceHandle, Path, description = "device handle")),
    responses((status = 200, body = NetworkDecisionView), (status = 400, body = enigm_api::ErrorBody),
        (status = 404, body = enigm_api::ErrorBody), (status = 422, body = enigm_api::ErrorBody)))]
pub async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(handle): ApiPath<DeviceHandle>,
    ApiJson(flow): ApiJson<NetworkFlow>,
) -> ApiResult<Json<NetworkDecisionView>> {
    Ok(Json(
        network::decide_for_device(&state, &caller, handle, flow).await?,
    ))
}
