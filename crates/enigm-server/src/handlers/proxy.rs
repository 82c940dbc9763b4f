//! Enigm Proxy credentials: issuance to a signed device, and the public key and revocation list
//! proxies read. The proxy-credentials service does the work.

use axum::Json;
use axum::extract::State;
use enigm_api::proxy::{
    ProxyCredentialKeyView, ProxyCredentialRequest, ProxyCredentialView, ProxyRevocationsView,
};

use crate::device_guard::SignedDevice;
use crate::error::ApiResult;
use crate::services::proxy_credentials;
use crate::state::AppState;

/// Issue the signing device a short-lived Enigm Proxy credential bound to its device key: only
/// a trusted device, not `INACTIVE`, with an attestation accepted within its policy's age.
#[utoipa::path(post, path = enigm_api::paths::DEVICE_PROXY_CREDENTIAL, tag = "device",
    request_body = ProxyCredentialRequest,
    params(
        ("signature" = String, Header, description = "RFC 9421 signature"),
        ("signature-input" = String, Header, description = "RFC 9421 signature parameters"),
        ("content-digest" = String, Header, description = "RFC 9530 digest of the body"),
    ),
    responses((status = 200, body = ProxyCredentialView), (status = 401, body = enigm_api::ErrorBody),
        (status = 403, body = enigm_api::ErrorBody), (status = 409, body = enigm_api::ErrorBody)))]
pub async fn issue(
    State(state): State<AppState>,
    device: SignedDevice<ProxyCredentialRequest>,
) -> ApiResult<Json<ProxyCredentialView>> {
    Ok(Json(proxy_credentials::issue(&state, device).await?))
}

/// The Ed25519 key that signs proxy credentials and revocation lists, for proxies to pin.
#[utoipa::path(get, path = enigm_api::paths::PROXY_CREDENTIAL_KEY, tag = "proxy",
    responses((status = 200, body = ProxyCredentialKeyView)))]
pub async fn credential_key(State(state): State<AppState>) -> Json<ProxyCredentialKeyView> {
    Json(proxy_credentials::credential_key(&state))
}

/// The signed, dated list of live credentials whose device no longer qualifies (revoked,
/// restricted, `INACTIVE`, told to retire or wipe); proxies poll it and refuse every connection
/// when theirs is too old.
#[utoipa::path(get, path = enigm_api::paths::PROXY_REVOCATIONS, tag = "proxy",
    responses((status = 200, body = ProxyRevocationsView)))]
pub async fn revocations(State(state): State<AppState>) -> ApiResult<Json<ProxyRevocationsView>> {
    Ok(Json(proxy_credentials::revocations(&state).await?))
}
