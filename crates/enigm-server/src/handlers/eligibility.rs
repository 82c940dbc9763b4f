//! The eligibility decision: one endpoint the app, network and OTA sides ask whether a device
//! may do a protected action now. The Trust State Engine's `decide` answers from Command's own
//! record of the device; anything it needs that is missing denies. Every decision is audited.
//! The eligibility service does the work.

use axum::Json;
use axum::extract::State;
use enigm_api::eligibility::{EligibilityDecision, EligibilityRequest};

use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::guard::Caller;
use crate::services::eligibility;
use crate::state::AppState;

/// Decide whether a device may do a protected action (allow, or deny with a stable reason).
#[utoipa::path(post, path = enigm_api::paths::ELIGIBILITY, tag = "devices", security(("bearer" = [])),
    request_body = EligibilityRequest,
    responses((status = 200, body = EligibilityDecision), (status = 400, body = enigm_api::ErrorBody),
        (status = 422, body = enigm_api::ErrorBody)))]
pub async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<EligibilityRequest>,
) -> ApiResult<Json<EligibilityDecision>> {
    Ok(Json(eligibility::decide(&state, &caller, request).await?))
}
