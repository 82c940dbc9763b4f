//! Devices: enrollment tokens (administrators), enrollment and check-ins (devices, with signed
//! requests), and the device inventory.
//!
//! A device request is authenticated by its RFC 9421 signature over the exact request
//! (`enigm-device`), not by a session: the guard lets these routes through and the handler
//! verifies the signature before it decodes the body. The device is then known only by the
//! handle derived from its public key under the deployment's handle key; the key itself is
//! never stored. Every refusal is audited with a typed reason.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use enigm_api::{
    CheckInRequest, CreateEnrollmentTokenRequest, DeviceListQuery, DeviceView, EnrollRequest,
    EnrollResponse, EnrollmentTokenCreated, FindingView, TrustView,
};
use enigm_crypto::BearerToken;
use enigm_device::{DeviceAuthError, ReceivedHeaders, RequestParts, VerifiedDeviceRequest};
use enigm_store::{
    CheckInWrite, DeviceFilter, DeviceRecord, NewDevice, NewEnrollmentToken, PostureRecord,
};
use enigm_store::{StoreError, WriteTx};
use enigm_trust::{
    DeviceState, Evaluation, GateStatus, LifecycleAction, SignalReport, TrustPolicy, evaluate,
    evaluate_gates,
};
use enigm_types::{
    Actor, AuditAction, AuditEvent, AuditTarget, DeviceHandle, EnrollmentTokenId, Outcome,
    ReasonCategory, Timestamp,
};
use serde::de::DeserializeOwned;

use crate::audit;
use crate::checkins::{CheckIn, CheckInOutcome, audit_trust};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, RawBody};
use crate::guard::Caller;
use crate::handlers::attestation;
use crate::state::AppState;

/// Create an enrollment token (critical: needs the PIN). The token is shown once.
#[utoipa::path(post, path = enigm_api::paths::ENROLLMENT_TOKENS, tag = "devices", security(("bearer" = [])),
    request_body = CreateEnrollmentTokenRequest,
    params(("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 201, body = EnrollmentTokenCreated), (status = 422, body = enigm_api::ErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateEnrollmentTokenRequest>,
) -> ApiResult<(StatusCode, Json<EnrollmentTokenCreated>)> {
    let group = parse_group(&request.group)?;
    let uses = request.uses.unwrap_or(1);
    if !(1..=enigm_api::devices::MAX_TOKEN_USES).contains(&uses) {
        return Err(ApiError::unprocessable(
            "invalid_uses",
            "uses must be between 1 and 100000",
        ));
    }
    let minutes = request.expires_in_minutes.unwrap_or(60);
    if !(1..=enigm_api::devices::MAX_TOKEN_MINUTES).contains(&minutes) {
        return Err(ApiError::unprocessable(
            "invalid_expiry",
            "expires_in_minutes must be between 1 and 10080",
        ));
    }
    let policy = request.policy.unwrap_or_else(TrustPolicy::baseline);
    let attestation_policy = request.attestation_policy.unwrap_or_default();
    if let Err(error) = attestation_policy.check() {
        return Err(ApiError::unprocessable(
            "invalid_attestation_policy",
            error.to_string(),
        ));
    }
    let token = BearerToken::generate(&mut rand::rngs::OsRng);
    let now = state.now();
    let expires_at = now.saturating_add(std::time::Duration::from_secs(u64::from(minutes) * 60));
    let id = EnrollmentTokenId::random();
    let mut tx = state.store().begin().await?;
    tx.insert_enrollment_token(&NewEnrollmentToken {
        id,
        token_digest_hex: token.digest().to_hex(),
        group: group.clone(),
        policy: to_json(&policy)?,
        attestation_policy: to_json(&attestation_policy)?,
        uses,
        expires_at,
        managed_allowed: request.managed_allowed,
        created_by: caller.admin.id,
        created_at: now,
    })
    .await?;
    tx.append_audit(&audit::success(
        now,
        caller.admin.id,
        AuditAction::EnrollmentTokenCreate,
        AuditTarget::EnrollmentToken { id },
    ))
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(EnrollmentTokenCreated {
            id,
            token: token.expose().to_owned(),
            group,
            uses,
            expires_at: expires_at.to_rfc3339(),
            managed_allowed: request.managed_allowed,
        }),
    ))
}

/// Enroll a device (signed with its device key; needs an enrollment token in the body).
#[utoipa::path(post, path = enigm_api::paths::DEVICE_ENROLL, tag = "device",
    request_body = EnrollRequest,
    params(
        ("signature" = String, Header, description = "RFC 9421 signature"),
        ("signature-input" = String, Header, description = "RFC 9421 signature parameters"),
        ("content-digest" = String, Header, description = "RFC 9530 digest of the body"),
    ),
    responses((status = 201, body = EnrollResponse), (status = 401, body = enigm_api::ErrorBody),
        (status = 409, body = enigm_api::ErrorBody), (status = 413, body = enigm_api::ErrorBody)))]
pub async fn enroll(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<(StatusCode, Json<EnrollResponse>)> {
    let action = AuditAction::DeviceEnroll;
    let now = state.now();
    let (verified, refuse, request) =
        signed_body::<EnrollRequest>(&state, action, (&method, &uri, &headers), &body, now).await?;
    let handle = refuse.handle;
    let Ok(token) = BearerToken::parse(&request.enrollment_token) else {
        return Err(refuse.deny(ReasonCategory::InvalidEnrollmentToken).await);
    };

    let mut tx = state.store().begin().await?;
    let Some(consumed) = tx
        .consume_enrollment_token(&token.digest().to_hex(), now)
        .await?
    else {
        drop(tx);
        return Err(refuse.deny(ReasonCategory::InvalidEnrollmentToken).await);
    };
    if request.managed_opt_in && !consumed.managed_allowed {
        drop(tx);
        return Err(refuse.deny(ReasonCategory::ManagedNotAllowed).await);
    }
    if let Err(error) = record_nonce(&state, &mut tx, &verified, handle, now).await {
        drop(tx);
        return Err(refuse.store_refusal(error).await);
    }
    let attestation_policy: enigm_attest::policy::AttestationPolicy =
        from_json(&consumed.attestation_policy, "attestation policy")?;
    if attestation_policy.required_for.enrollment && request.attestation.is_none() {
        drop(tx);
        return Err(refuse.deny(ReasonCategory::AttestationRequired).await);
    }
    let policy: TrustPolicy = from_json(&consumed.policy, "device policy")?;
    // The enrollment token is Command's managed approval of this device (enigm-docs §20 B.12).
    let device_state = DeviceState::PendingEnrollment
        .apply(LifecycleAction::Activate)
        .map_err(|error| ApiError::internal(&error))?;
    let (evaluation, posture) = assess(&request.report, &policy, now)?;
    let inserted = tx
        .insert_device(&NewDevice {
            handle,
            state: device_state,
            group: consumed.group.clone(),
            policy: consumed.policy.clone(),
            attestation_policy: consumed.attestation_policy.clone(),
            managed_opt_in: request.managed_opt_in,
            wipe_opt_in: request.wipe_opt_in,
            enrolled_at: now,
            enrollment_token: consumed.id,
            posture,
        })
        .await;
    match inserted {
        Err(StoreError::Conflict) => {
            drop(tx);
            return Err(refuse.deny(ReasonCategory::AlreadyEnrolled).await);
        }
        other => other?,
    }
    if let Some(evidence) = &request.attestation {
        let record = enigm_store::AttestationRecord {
            policy: consumed.attestation_policy.clone(),
            pairing: None,
            last: None,
            accepted_at: None,
        };
        let outcome = attestation::attest_in(
            &state,
            &mut tx,
            evidence,
            &record,
            attestation::AttestationTarget {
                handle,
                device_key: verified.public_key(),
                purpose: enigm_api::attestation::AttestationPurpose::Enrollment,
            },
            now,
        )
        .await?;
        if let enigm_attest::outcome::Verdict::Rejected(reason) = outcome.verdict {
            // The enrollment is undone (the token use too); the rejection is audited on its own.
            drop(tx);
            let event = audit::denied(
                now,
                Actor::Device(handle),
                AuditAction::DeviceAttest,
                AuditTarget::Device { handle },
                attestation::reason_category(reason),
            );
            state.audit(&[event]).await?;
            return Err(attestation::rejection_error(reason, &outcome.detail));
        }
    }
    let actor = Actor::Device(handle);
    tx.append_audit(&AuditEvent::new(
        now,
        actor,
        action,
        AuditTarget::Device { handle },
        Outcome::Success,
    ))
    .await?;
    tx.append_audit(&AuditEvent::new(
        now,
        actor,
        AuditAction::DeviceTrustChange,
        AuditTarget::DeviceTrust {
            handle,
            from: None,
            to: audit_trust(evaluation.state),
            sources: evaluation.finding_layers(),
        },
        Outcome::Success,
    ))
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(EnrollResponse {
            handle,
            state: device_state,
            trust: TrustView::from(&evaluation),
        }),
    ))
}

/// Report the device's signals (signed with its device key); answers the evaluation.
#[utoipa::path(post, path = enigm_api::paths::DEVICE_CHECK_INS, tag = "device",
    request_body = CheckInRequest,
    params(
        ("signature" = String, Header, description = "RFC 9421 signature"),
        ("signature-input" = String, Header, description = "RFC 9421 signature parameters"),
        ("content-digest" = String, Header, description = "RFC 9530 digest of the body"),
    ),
    responses((status = 200, body = TrustView), (status = 401, body = enigm_api::ErrorBody),
        (status = 403, body = enigm_api::ErrorBody), (status = 409, body = enigm_api::ErrorBody),
        (status = 413, body = enigm_api::ErrorBody)))]
pub async fn check_in(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Json<TrustView>> {
    let action = AuditAction::DeviceCheckIn;
    let now = state.now();
    let (verified, refuse, request) =
        signed_body::<CheckInRequest>(&state, action, (&method, &uri, &headers), &body, now)
            .await?;
    let handle = refuse.handle;
    let policy = match state.device_policies.get(&handle) {
        Some(policy) => policy,
        None => {
            let Some(device) = state.store().device(&handle).await? else {
                return Err(refuse.deny(ReasonCategory::UnknownDevice).await);
            };
            if let Some(reason) = inactive_reason(device.state) {
                return Err(refuse.deny(reason).await);
            }
            let policy: Arc<TrustPolicy> = Arc::new(from_json(&device.policy, "device policy")?);
            state.device_policies.insert(handle, policy.clone());
            policy
        }
    };
    let (evaluation, posture) = assess(&request.report, &policy, now)?;

    // The nonce, the device still being active and the trust change are settled against the
    // database by the check-in writer, in one transaction shared with other devices' check-ins.
    let check_in = CheckIn {
        write: CheckInWrite {
            handle,
            nonce: nonce_hex(&verified),
            nonce_expires_at: nonce_expiry(&state, &verified),
            posture,
            received_at: now,
        },
        trust_state: evaluation.state,
        finding_sources: evaluation.finding_layers(),
    };
    match state.check_ins.store(check_in).await {
        Ok(CheckInOutcome::Recorded { .. }) => {}
        Ok(CheckInOutcome::Replayed) => return Err(refuse.deny(ReasonCategory::Replayed).await),
        // Revoked, retired, ... since its policy was cached: refused in the transaction.
        Ok(CheckInOutcome::NotActive {
            state: device_state,
        }) => {
            state.device_policies.forget(&handle);
            let reason = match device_state {
                None => ReasonCategory::UnknownDevice,
                Some(device_state) => {
                    inactive_reason(device_state).unwrap_or(ReasonCategory::DeviceNotActive)
                }
            };
            return Err(refuse.deny(reason).await);
        }
        Err(error) => return Err(ApiError::internal(&error)),
    }
    Ok(Json(TrustView::from(&evaluation)))
}

/// The device inventory, in handle order, filtered by lifecycle state, trust state and group.
#[utoipa::path(get, path = enigm_api::paths::DEVICES, tag = "devices", security(("bearer" = [])),
    params(DeviceListQuery), responses((status = 200, body = [DeviceView])))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<DeviceListQuery>,
) -> ApiResult<Json<Vec<DeviceView>>> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be between 1 and 1000",
        ));
    }
    let filter = DeviceFilter {
        state: query.state,
        trust_state: query.trust_state,
        group: query.group,
        after: query.after,
        limit,
    };
    let records = state.store().list_devices(&filter).await?;
    let handles: Vec<DeviceHandle> = records.iter().map(|record| record.handle).collect();
    let mut pending = state.store().pending_commands(&handles).await?;
    let mut views = Vec::with_capacity(records.len());
    for record in &records {
        let mut view = device_view(record)?;
        let lifecycle = enigm_store::LifecycleRecord {
            pending: pending.remove(&record.handle),
            ..enigm_store::LifecycleRecord::default()
        };
        view.lifecycle = crate::handlers::lifecycle::view(view.state, &lifecycle)?;
        views.push(view);
    }
    Ok(Json(views))
}

/// One device: lifecycle state, opt-ins, trust state with findings, and production gates.
#[utoipa::path(get, path = enigm_api::paths::DEVICE, tag = "devices", security(("bearer" = [])),
    params(("handle" = String, Path, description = "device handle")),
    responses((status = 200, body = DeviceView), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn read(
    State(state): State<AppState>,
    ApiPath(handle): ApiPath<DeviceHandle>,
) -> ApiResult<Json<DeviceView>> {
    let record = state
        .store()
        .device(&handle)
        .await?
        .ok_or_else(|| ApiError::not_found("device"))?;
    let mut view = device_view(&record)?;
    let lifecycle = state.store().device_lifecycle(&handle).await?;
    view.lifecycle = crate::handlers::lifecycle::view(view.state, &lifecycle)?;
    if let Some(attestation) = state.store().device_attestation(&handle).await? {
        view.attestation = attestation::attestation_view(&attestation)?;
    }
    Ok(Json(view))
}

/// Checks the request's signature, digest and time, and derives the device's handle.
pub(crate) async fn verify(
    state: &AppState,
    action: AuditAction,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
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
            // The key of an unverified request proves nothing: no handle is recorded.
            let event = audit::denied(now, Actor::Anonymous, action, AuditTarget::None, reason);
            state.audit(&[event]).await?;
            Err(ApiError::reason(
                StatusCode::UNAUTHORIZED,
                reason,
                "the device request signature is not acceptable",
            ))
        }
    }
}

/// Verifies a signed device request and decodes its body (unknown fields refused): the
/// verified request, the refusal context for later denials, and the body.
pub(crate) async fn signed_body<'a, T: DeserializeOwned>(
    state: &'a AppState,
    action: AuditAction,
    (method, uri, headers): (&Method, &Uri, &HeaderMap),
    body: &[u8],
    now: Timestamp,
) -> ApiResult<(VerifiedDeviceRequest, Refusal<'a>, T)> {
    let (verified, handle) = verify(state, action, method, uri, headers, body, now).await?;
    let refuse = Refusal {
        state,
        action,
        handle,
        now,
    };
    let request = decode(&refuse, body).await?;
    Ok((verified, refuse, request))
}

/// Refuses a verified device request: audits the reason and builds the error.
pub(crate) struct Refusal<'a> {
    pub(crate) state: &'a AppState,
    pub(crate) action: AuditAction,
    pub(crate) handle: DeviceHandle,
    pub(crate) now: Timestamp,
}

impl Refusal<'_> {
    pub(crate) async fn deny(&self, reason: ReasonCategory) -> ApiError {
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
            _ => (StatusCode::FORBIDDEN, "not permitted"),
        };
        ApiError::reason(status, reason, message)
    }

    /// A nonce already seen is a replay; any other store failure is internal.
    pub(crate) async fn store_refusal(&self, error: StoreError) -> ApiError {
        match error {
            StoreError::Conflict => self.deny(ReasonCategory::Replayed).await,
            other => ApiError::from(other),
        }
    }
}

/// Decodes a verified body; unknown fields (a serial, an IMEI, ...) are refused.
pub(crate) async fn decode<T: DeserializeOwned>(refuse: &Refusal<'_>, body: &[u8]) -> ApiResult<T> {
    match serde_json::from_slice(body) {
        Ok(value) => Ok(value),
        Err(_) => Err(refuse.deny(ReasonCategory::InvalidBody).await),
    }
}

/// Why a device in `state` may not check in, if it may not.
pub(crate) fn inactive_reason(state: DeviceState) -> Option<ReasonCategory> {
    match state {
        DeviceState::Trusted | DeviceState::Restricted => None,
        DeviceState::Revoked => Some(ReasonCategory::DeviceRevoked),
        DeviceState::PendingEnrollment | DeviceState::Replaced | DeviceState::Retired => {
            Some(ReasonCategory::DeviceNotActive)
        }
    }
}

/// Remembers the request's nonce until the request could no longer be fresh.
pub(crate) async fn record_nonce(
    state: &AppState,
    tx: &mut WriteTx<'_>,
    verified: &VerifiedDeviceRequest,
    handle: DeviceHandle,
    now: Timestamp,
) -> Result<(), StoreError> {
    tx.record_device_nonce(
        &handle,
        &nonce_hex(verified),
        nonce_expiry(state, verified),
        now,
    )
    .await
}

fn nonce_hex(verified: &VerifiedDeviceRequest) -> String {
    verified
        .nonce()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A nonce is remembered until the request it came with could no longer be fresh.
fn nonce_expiry(state: &AppState, verified: &VerifiedDeviceRequest) -> Timestamp {
    verified.created().saturating_add(state.device_max_skew)
}

/// Evaluates a report; only the outcome is kept, never the report.
fn assess(
    report: &SignalReport,
    policy: &TrustPolicy,
    now: Timestamp,
) -> ApiResult<(Evaluation, PostureRecord)> {
    let evaluation = evaluate(report, policy, now);
    let posture = PostureRecord {
        trust_state: evaluation.state,
        evaluated_at: evaluation.evaluated_at,
        findings: evaluation.findings.clone(),
        gates: evaluate_gates(report, policy, now)
            .into_iter()
            .map(GateStatus::from)
            .collect(),
    };
    Ok((evaluation, posture))
}

fn device_view(record: &DeviceRecord) -> ApiResult<DeviceView> {
    let trust_state = record.posture.trust_state;
    Ok(DeviceView {
        handle: record.handle,
        state: record.state,
        group: record.group.clone(),
        managed_opt_in: record.managed_opt_in,
        wipe_opt_in: record.wipe_opt_in,
        enrolled_at: record.enrolled_at.to_rfc3339(),
        last_seen_at: record.last_seen_at.to_rfc3339(),
        trust: TrustView {
            state: trust_state,
            launcher_summary: trust_state.launcher_summary(),
            findings: record
                .posture
                .findings
                .iter()
                .map(FindingView::from)
                .collect(),
            evaluated_at: record.posture.evaluated_at.to_rfc3339(),
        },
        production_gates: record.posture.gates.clone(),
        lifecycle: enigm_api::LifecycleView::default(),
        attestation: None,
    })
}

/// Device groups: 1 to 64 of `a-z 0-9 - _ .`, so a group name is never free text.
fn parse_group(text: &str) -> ApiResult<String> {
    let valid = (1..=64).contains(&text.len())
        && text.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"-_.".contains(&byte)
        });
    if valid {
        Ok(text.to_owned())
    } else {
        Err(ApiError::unprocessable(
            "invalid_group",
            "a group is 1 to 64 of `a-z 0-9 - _ .`",
        ))
    }
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> ApiResult<String> {
    serde_json::to_string(value).map_err(|error| ApiError::internal(&error))
}

pub(crate) fn from_json<T: DeserializeOwned>(text: &str, what: &'static str) -> ApiResult<T> {
    serde_json::from_str(text).map_err(|_| ApiError::internal(&StoreError::Corrupt(what)))
}
