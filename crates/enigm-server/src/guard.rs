//! The gate every route passes: authenticate the bearer session, make the one authorization
//! decision for the route's permission, check the critical-operation PIN where the route
//! needs it, and audit the outcome, allowed or denied.

use axum::extract::{FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use enigm_crypto::BearerToken;
use enigm_identity::{MAX_CONSECUTIVE_PIN_FAILURES, Pin};
use enigm_store::{AdminRecord, SessionRecord};
use enigm_types::{
    Actor, AuditAction, AuditEvent, AuditTarget, Outcome, Permission, ReasonCategory,
};

use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::routes::Access;
use crate::state::AppState;

/// The authenticated administrator making the request, with the session they use.
#[derive(Clone)]
pub struct Caller {
    pub admin: AdminRecord,
    pub session: SessionRecord,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthenticated(ReasonCategory::Unauthenticated))
    }
}

pub async fn guard(state: AppState, access: Access, mut request: Request, next: Next) -> Response {
    let Access::Authenticated {
        permission,
        critical,
    } = access
    else {
        return next.run(request).await;
    };
    // The peer's address, to count refused anonymous requests per client network.
    let client = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|axum::extract::ConnectInfo(addr)| addr.ip());
    match authorize(&state, permission, critical, request.headers(), client).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}

async fn authorize(
    state: &AppState,
    permission: Permission,
    critical: bool,
    headers: &HeaderMap,
    client: Option<std::net::IpAddr>,
) -> ApiResult<Caller> {
    let now = state.now();
    let route = AuditTarget::Route { permission };
    // Nobody authenticated these callers: their refusals are counted, not logged one by one,
    // so that they cannot grow the audit log at their request rate (see `audit_tally`).
    let Some(token) = bearer_token(headers) else {
        state.count_anonymous(
            AuditAction::AuthSession,
            ReasonCategory::Unauthenticated,
            client,
        );
        return Err(ApiError::unauthenticated(ReasonCategory::Unauthenticated));
    };
    let session = state
        .store()
        .session_by_token_digest(&token.digest().to_hex())
        .await?;
    let Some(session) = session.filter(|session| session.closed_at.is_none()) else {
        state.count_anonymous(
            AuditAction::AuthSession,
            ReasonCategory::Unauthenticated,
            client,
        );
        return Err(ApiError::unauthenticated(ReasonCategory::Unauthenticated));
    };
    let actor = Actor::Admin(session.admin_id);
    let session_target = AuditTarget::Session {
        session: session.id,
    };
    let live = state
        .session_policy
        .check(session.created_at, session.last_seen_at, now)
        .is_ok()
        && now < session.expires_at;
    if !live {
        let event = audit::denied(
            now,
            actor,
            AuditAction::AuthSession,
            session_target,
            ReasonCategory::SessionExpired,
        );
        state.audit(&[event]).await?;
        return Err(ApiError::unauthenticated(ReasonCategory::SessionExpired));
    }
    let admin = state.store().admin_by_id(session.admin_id).await?;
    let Some(admin) = admin.filter(|admin| !admin.disabled) else {
        let event = audit::denied(
            now,
            actor,
            AuditAction::AuthSession,
            session_target,
            ReasonCategory::AccountDisabled,
        );
        state.audit(&[event]).await?;
        return Err(ApiError::unauthenticated(ReasonCategory::AccountDisabled));
    };
    if !state
        .authorizer
        .is_allowed(admin.id, &admin.roles, permission)
    {
        let event = audit::denied(
            now,
            actor,
            AuditAction::Authorize,
            route,
            ReasonCategory::Forbidden,
        );
        state.audit(&[event]).await?;
        return Err(ApiError::forbidden(ReasonCategory::Forbidden));
    }
    let mut events = Vec::with_capacity(2);
    if critical {
        let entered = headers
            .get(enigm_api::PIN_HEADER)
            .map(|value| value.to_str().unwrap_or_default());
        check_pin(state, &admin, entered).await?;
        events.push(audit::success(
            now,
            admin.id,
            AuditAction::AuthPinCheck,
            AuditTarget::Account {
                admin: Some(admin.id),
            },
        ));
    }
    events.push(AuditEvent::new(
        now,
        actor,
        AuditAction::Authorize,
        route,
        Outcome::Success,
    ));
    let mut tx = state.store().begin().await?;
    tx.touch_session(session.id, now).await?;
    for event in &events {
        tx.append_audit(event).await?;
    }
    tx.commit().await?;
    Ok(Caller { admin, session })
}

fn bearer_token(headers: &HeaderMap) -> Option<BearerToken> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let token = value.strip_prefix("Bearer ")?;
    BearerToken::parse(token.trim()).ok()
}

/// Checks the critical-operation PIN the caller entered. An attempt is counted before the PIN
/// is compared, so concurrent guesses cannot exceed the limit of five.
pub async fn check_pin(
    state: &AppState,
    admin: &AdminRecord,
    entered: Option<&str>,
) -> ApiResult<()> {
    let now = state.now();
    let target = AuditTarget::Account {
        admin: Some(admin.id),
    };
    let deny = |reason| {
        audit::denied(
            now,
            Actor::Admin(admin.id),
            AuditAction::AuthPinCheck,
            target,
            reason,
        )
    };
    let Some(entered) = entered else {
        state.audit(&[deny(ReasonCategory::PinRequired)]).await?;
        return Err(ApiError::forbidden(ReasonCategory::PinRequired));
    };
    let Some(pin_hash) = admin.pin_hash.clone() else {
        state.audit(&[deny(ReasonCategory::PinNotSet)]).await?;
        return Err(ApiError::forbidden(ReasonCategory::PinNotSet));
    };
    let attempt = state.store().record_pin_failure(admin.id).await?;
    if attempt > MAX_CONSECUTIVE_PIN_FAILURES {
        state.audit(&[deny(ReasonCategory::PinLocked)]).await?;
        return Err(ApiError::pin_locked());
    }
    let entered = Pin::parse_entered(entered).ok();
    let matched = match entered {
        Some(pin) => {
            state
                .verify_secret(pin.expose().as_bytes().to_vec(), Some(pin_hash))
                .await?
        }
        None => None,
    };
    if matched.is_some() {
        state
            .store()
            .reset_pin_failures(admin.id, MAX_CONSECUTIVE_PIN_FAILURES + 1)
            .await?;
        return Ok(());
    }
    if attempt >= MAX_CONSECUTIVE_PIN_FAILURES {
        state.audit(&[deny(ReasonCategory::PinLocked)]).await?;
        return Err(ApiError::pin_locked());
    }
    state.audit(&[deny(ReasonCategory::PinInvalid)]).await?;
    Err(ApiError::forbidden(ReasonCategory::PinInvalid))
}
