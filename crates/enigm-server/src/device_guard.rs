//! The gate of signed device requests, the device counterpart of [`crate::guard::Caller`]: the
//! [`SignedDevice`] extractor verifies the RFC 9421 signature and content digest over the exact
//! request (`enigm-device`), derives the device's handle from its key under the deployment's
//! handle key, and decodes the body (unknown fields refused). [`DeviceRefusal`] is the one way a
//! verified device request is refused: it audits the typed reason and builds the error.
//!
//! The device routes are `Access::Public` to the session guard because a device authenticates
//! each request with its signature instead of a session. The request's nonce is not recorded
//! here: it is recorded in the transaction of the change it authorises (see
//! [`SignedDevice::record_nonce`]), or by the check-in writer in its batch, so that a replay is
//! refused exactly when the change would be made twice.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use enigm_device::{DeviceAuthError, ReceivedHeaders, RequestParts, VerifiedDeviceRequest};
use enigm_store::{StoreError, WriteTx};
use enigm_types::{Actor, AuditAction, AuditTarget, DeviceHandle, ReasonCategory, Timestamp};
use serde::de::DeserializeOwned;

use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::extract::RawBody;
use crate::state::AppState;

/// What a signed device route accepts as its body, and the audit action its refusals carry.
pub trait DeviceBody: Sized {
    /// The action audited when the request is refused before the route knows more.
    const ACTION: AuditAction;

    /// Decodes a verified body; `None` when it is not a valid request of the route.
    fn decode(body: &[u8]) -> Option<Self>;
}

/// A verified signed device request: who sent it, when it arrived, and its decoded body.
pub struct SignedDevice<T> {
    /// The device, known only by the handle derived from its key.
    pub handle: DeviceHandle,
    /// When the request arrived; the time every check and record of the request uses.
    pub now: Timestamp,
    pub body: T,
    /// Refuses the request later, audited under the route's action.
    pub refuse: DeviceRefusal,
    verified: VerifiedDeviceRequest,
}

impl<T: DeviceBody> FromRequest<AppState> for SignedDevice<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let method = request.method().clone();
        let uri = request.uri().clone();
        let headers = request.headers().clone();
        let client = request
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|axum::extract::ConnectInfo(addr)| addr.ip());
        let RawBody(body) = RawBody::from_request(request, state).await?;
        let now = state.now();
        let (verified, handle) = verify(
            state,
            T::ACTION,
            (&method, &uri, &headers),
            &body,
            now,
            client,
        )
        .await?;
        let refuse = DeviceRefusal {
            state: state.clone(),
            action: T::ACTION,
            handle,
            now,
            client,
        };
        let Some(body) = T::decode(&body) else {
            return Err(refuse.deny(ReasonCategory::InvalidBody).await);
        };
        Ok(SignedDevice {
            handle,
            now,
            body,
            refuse,
            verified,
        })
    }
}

impl<T> SignedDevice<T> {
    /// The device's public key, as it signed the request (never stored).
    pub fn public_key(&self) -> &[u8] {
        self.verified.public_key()
    }

    /// Remembers the request's nonce in the change's transaction, until the request could no
    /// longer be fresh. A nonce seen before is a `Conflict`: answer it with
    /// [`DeviceRefusal::store_refusal`] after dropping the transaction.
    pub async fn record_nonce(&self, tx: &mut WriteTx<'_>) -> Result<(), StoreError> {
        tx.record_device_nonce(
            &self.handle,
            &self.nonce_hex(),
            self.nonce_expires_at(),
            self.now,
        )
        .await
    }

    /// The nonce as the request's `Signature-Input` spells it (base64url), which the
    /// director's answer echoes.
    pub fn nonce_text(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.verified.nonce())
    }

    /// The nonce as the store keeps it.
    pub fn nonce_hex(&self) -> String {
        self.verified
            .nonce()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// A nonce is remembered until the request it came with could no longer be fresh.
    pub fn nonce_expires_at(&self) -> Timestamp {
        self.verified
            .created()
            .saturating_add(self.refuse.state.device_max_skew)
    }
}

/// A signed request with an empty body (e.g. fetching the device's commands).
pub struct NoBody;

impl DeviceBody for NoBody {
    const ACTION: AuditAction = AuditAction::DeviceCommandFetch;

    fn decode(body: &[u8]) -> Option<Self> {
        body.is_empty().then_some(NoBody)
    }
}

/// JSON bodies of signed device routes: unknown fields (a serial, an IMEI, ...) are refused by
/// the request types themselves.
macro_rules! json_device_body {
    ($($body:ty => $action:ident),* $(,)?) => {$(
        impl DeviceBody for $body {
            const ACTION: AuditAction = AuditAction::$action;

            fn decode(body: &[u8]) -> Option<Self> {
                decode_json(body)
            }
        }
    )*};
}

json_device_body! {
    enigm_api::EnrollRequest => DeviceEnroll,
    enigm_api::CheckInRequest => DeviceCheckIn,
    enigm_api::attestation::ChallengeRequest => DeviceAttestationChallenge,
    enigm_api::attestation::AttestRequest => DeviceAttest,
    enigm_api::CommandAckRequest => DeviceCommandAck,
    enigm_api::releases::InstallReportRequest => DeviceOtaInstall,
    enigm_api::rollouts::UpdateCheckRequest => DeviceOtaOffer,
    enigm_api::vpn::VpnSwitchRequest => DeviceVpnSwitch,
    enigm_api::proxy::ProxyCredentialRequest => DeviceProxyCredential,
}

/// A device's text carries no U+0000 either (see [`crate::extract::holds_nul`]).
fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    if crate::extract::holds_nul(&value) {
        return None;
    }
    serde_json::from_value(value).ok()
}

/// Refuses a verified device request: audits the reason under the device's handle and builds
/// the error. The one mapping of device refusals to status codes and messages.
#[derive(Clone)]
pub struct DeviceRefusal {
    state: AppState,
    action: AuditAction,
    handle: DeviceHandle,
    now: Timestamp,
    client: Option<std::net::IpAddr>,
}

impl DeviceRefusal {
    /// The same request, refused under another action (e.g. once the body says which command a
    /// device acknowledges).
    pub fn with_action(&self, action: AuditAction) -> DeviceRefusal {
        DeviceRefusal {
            action,
            ..self.clone()
        }
    }

    /// Audits the refusal (`denied`, the device as actor and target, `reason`) and answers the
    /// error for it; if the audit event cannot be stored, that failure is the answer.
    pub async fn deny(&self, reason: ReasonCategory) -> ApiError {
        if matches!(
            reason,
            ReasonCategory::UnknownDevice | ReasonCategory::InvalidEnrollmentToken
        ) {
            // Anyone can make a key and sign with it: a key no device holds, or an enrollment
            // without a valid token, authenticates nobody, so these are counted like every
            // anonymous refusal (see `audit_tally`), not logged one by one.
            self.state.count_anonymous(self.action, reason, self.client);
        } else {
            let event = audit::denied(
                self.now,
                Actor::Device(self.handle),
                self.action,
                AuditTarget::Device {
                    handle: self.handle,
                },
                reason,
            );
            if let Err(error) = self.state.audit(&[event]).await {
                return error;
            }
        }
        let (status, message) = match reason {
            ReasonCategory::UnknownDevice => (StatusCode::UNAUTHORIZED, "unknown device"),
            ReasonCategory::InvalidEnrollmentToken => (
                StatusCode::UNAUTHORIZED,
                "the enrollment token is wrong, expired or used up",
            ),
            ReasonCategory::DeviceRevoked => (StatusCode::FORBIDDEN, "the device is revoked"),
            ReasonCategory::DeviceNotActive => (StatusCode::FORBIDDEN, "the device is not active"),
            ReasonCategory::ManagedNotAllowed => (
                StatusCode::FORBIDDEN,
                "the enrollment token does not allow managed-device mode",
            ),
            ReasonCategory::Replayed => {
                (StatusCode::CONFLICT, "the request nonce was already used")
            }
            ReasonCategory::AlreadyEnrolled => {
                (StatusCode::CONFLICT, "the device key is already enrolled")
            }
            ReasonCategory::InvalidBody => (
                StatusCode::BAD_REQUEST,
                "the body is not a valid request of this route",
            ),
            ReasonCategory::AttestationBusy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "too many attestation challenges are outstanding; try again shortly",
            ),
            ReasonCategory::AttestationRequired => (
                StatusCode::FORBIDDEN,
                "this device's attestation policy requires an accepted attestation",
            ),
            ReasonCategory::AttestationNotAffirming => (
                StatusCode::FORBIDDEN,
                "the device's last attestation was rejected or is older than its policy allows; \
                 attest again",
            ),
            // A device's own lifecycle command: fetched, acknowledged or refused.
            ReasonCategory::CommandPending => (
                StatusCode::CONFLICT,
                "another lifecycle command waits for the device",
            ),
            ReasonCategory::WipeNotOptedIn => (
                StatusCode::CONFLICT,
                "the device did not opt in to remote wipe at enrollment",
            ),
            ReasonCategory::CommandNotIssued => {
                (StatusCode::CONFLICT, "no such command waits for the device")
            }
            ReasonCategory::InvalidTransition => (
                StatusCode::CONFLICT,
                "the device's lifecycle state does not allow this change",
            ),
            ReasonCategory::VpnSwitchSuperseded => (
                StatusCode::CONFLICT,
                "a VPN switch with this or a higher sequence was already applied",
            ),
            ReasonCategory::VpnLocationNotAllowed => (
                StatusCode::FORBIDDEN,
                "the device's network policy routes nothing through this VPN location",
            ),
            ReasonCategory::VpnCapacity => (
                StatusCode::SERVICE_UNAVAILABLE,
                "no gateway of this VPN location takes new sessions now; try again later or \
                 choose another location",
            ),
            _ => (StatusCode::FORBIDDEN, "not permitted"),
        };
        ApiError::reason(status, reason, message)
    }

    /// A nonce already seen is a replay; any other store failure is internal.
    pub async fn store_refusal(&self, error: StoreError) -> ApiError {
        match error {
            StoreError::Conflict => self.deny(ReasonCategory::Replayed).await,
            other => ApiError::from(other),
        }
    }
}

/// Checks the request's signature, digest and time, and derives the device's handle. A request
/// that fails is audited without a handle: the key of an unverified request proves nothing.
async fn verify(
    state: &AppState,
    action: AuditAction,
    (method, uri, headers): (&Method, &Uri, &HeaderMap),
    body: &[u8],
    now: Timestamp,
    client: Option<std::net::IpAddr>,
) -> ApiResult<(VerifiedDeviceRequest, DeviceHandle)> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let parts = RequestParts {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or_default(),
        body,
    };
    let received = ReceivedHeaders {
        content_digest: header(enigm_device::CONTENT_DIGEST),
        signature_input: header(enigm_device::SIGNATURE_INPUT),
        signature: header(enigm_device::SIGNATURE),
    };
    match enigm_device::verify_request(&parts, &received, now, state.device_max_skew) {
        Ok(verified) => {
            let handle = state.device_handle_key.handle_for(verified.public_key());
            Ok((verified, handle))
        }
        Err(error) => {
            let reason = match error {
                DeviceAuthError::MissingHeader(_) | DeviceAuthError::MalformedHeader(_) => {
                    ReasonCategory::UnsignedRequest
                }
                DeviceAuthError::DigestMismatch
                | DeviceAuthError::BadKey
                | DeviceAuthError::BadSignature => ReasonCategory::BadSignature,
                DeviceAuthError::Stale | DeviceAuthError::FromFuture => {
                    ReasonCategory::StaleRequest
                }
            };
            // Nobody is authenticated by a request that does not verify: counted, not logged
            // one by one (see `audit_tally`).
            state.count_anonymous(action, reason, client);
            Err(ApiError::reason(
                StatusCode::UNAUTHORIZED,
                reason,
                "the device request signature is not acceptable",
            ))
        }
    }
}
