//! Remote attestation routes (signed device requests): a single-use challenge, and evidence of an
//! enrolled device. The attestation service does the work; enrollment evidence goes through it
//! from the devices service.

use axum::Json;
use axum::extract::State;
use enigm_api::attestation::{AttestRequest, AttestationView, ChallengeRequest, ChallengeResponse};

use crate::device_guard::SignedDevice;
use crate::error::ApiResult;
use crate::services::attestation;
use crate::state::AppState;

/// Issue a single-use attestation nonce to the signing device (60 s by default).
#[utoipa::path(post, path = enigm_api::paths::DEVICE_ATTESTATION_CHALLENGE, tag = "device",
    request_body = ChallengeRequest,
    params(
        ("signature" = String, Header, description = "RFC 9421 signature"),
        ("signature-input" = String, Header, description = "RFC 9421 signature parameters"),
        ("content-digest" = String, Header, description = "RFC 9530 digest of the body"),
    ),
    responses((status = 200, body = ChallengeResponse), (status = 401, body = enigm_api::ErrorBody),
        (status = 403, body = enigm_api::ErrorBody), (status = 503, body = enigm_api::ErrorBody)))]
pub async fn challenge(
    State(state): State<AppState>,
    device: SignedDevice<ChallengeRequest>,
) -> ApiResult<Json<ChallengeResponse>> {
    Ok(Json(attestation::challenge(&state, device).await?))
}

/// Evidence of an enrolled device, answering an `attestation` challenge; answers the outcome.
/// A rejection is stored and audited too, and answered 403 with the reason as its code.
#[utoipa::path(post, path = enigm_api::paths::DEVICE_ATTESTATION, tag = "device",
    request_body = AttestRequest,
    params(
        ("signature" = String, Header, description = "RFC 9421 signature"),
        ("signature-input" = String, Header, description = "RFC 9421 signature parameters"),
        ("content-digest" = String, Header, description = "RFC 9530 digest of the body"),
    ),
    responses((status = 200, body = AttestationView), (status = 401, body = enigm_api::ErrorBody),
        (status = 403, body = enigm_api::ErrorBody), (status = 409, body = enigm_api::ErrorBody)))]
pub async fn attest(
    State(state): State<AppState>,
    device: SignedDevice<AttestRequest>,
) -> ApiResult<Json<AttestationView>> {
    Ok(Json(attestation::attest(&state, device).await?))
}
