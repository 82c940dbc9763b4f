//! The gate every route passes: authenticate the bearer session, make the one authorization
//! decision for the route's permission, check the critical-operation PIN where the route
//! needs it, and audit the outcome, allowed or denied.

use std::time::Duration;

use axum::extract::{FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use enigm_crypto::BearerToken;
use enigm_identity::{MAX_CONSECUTIVE_PIN_FAILURES, Pin};
use enigm_store::{AdminRecord, SessionRecord};
use enigm_types::{
    Actor, AdminId, AuditAction, AuditEvent, AuditTarget, Outcome, Permission, ReasonCategory,
};

use rand::RngCore as _;

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
    // A password someone else chose is replaced before anything else is done with it: until
    // then the session may only change it, read its account and log out.
    if admin.password_change_required
        && !matches!(
            permission,
            Permission::SelfRead | Permission::SelfLogout | Permission::SelfPasswordChange
        )
    {
        let event = audit::denied(
            now,
            actor,
            AuditAction::Authorize,
            route,
            ReasonCategory::PasswordChangeRequired,
        );
        state.audit(&[event]).await?;
        return Err(ApiError::forbidden(ReasonCategory::PasswordChangeRequired));
    }
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
        // Which roles would allow it, so the refusal says whom to ask for what.
        let granting: Vec<&str> = enigm_types::Role::ALL
            .iter()
            .filter(|role| state.authorizer.is_allowed(admin.id, &[**role], permission))
            .map(|role| role.as_str())
            .collect();
        return Err(ApiError::forbidden_permission(
            permission.as_str(),
            &granting,
        ));
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

/// How long one PIN check holds its account's turn (see [`check_pin`]); a check that dies
/// holding it blocks the account's PIN checks for at most this long.
const PIN_TURN_TERM: Duration = Duration::from_secs(10);
/// How long a PIN check waits for its turn before answering 429, so that a flood of checks on
/// one account cannot hold requests forever.
const PIN_TURN_WAIT: Duration = Duration::from_secs(30);

/// Checks the critical-operation PIN the caller entered. Only a PIN that does not verify counts
/// as a failure; one that verifies resets the count, whatever runs beside it.
///
/// The checks of one account take turns, across every Command process of the deployment: each
/// holds a lease named after the account (`Store::take_lease`) while it reads the count,
/// compares the PIN and records the outcome. So concurrent wrong guesses still cannot exceed
/// the limit of five, and concurrent right PINs never see each other's attempts as failures
/// (counting every attempt before comparing, as an earlier version did, locked an owner whose
/// console sent eight critical requests at once). The check runs on its own task, so a client
/// that hangs up mid-check cannot leave the turn held.
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
    if admin.pin_hash.is_none() {
        state.audit(&[deny(ReasonCategory::PinNotSet)]).await?;
        return Err(ApiError::forbidden(ReasonCategory::PinNotSet));
    }
    let entered = Pin::parse_entered(entered).ok();
    let task_state = state.clone();
    let id = admin.id;
    let outcome = tokio::spawn(async move { pin_check_turn(&task_state, id, entered).await })
        .await
        .map_err(|error| ApiError::internal(&error))??;
    let account = AuditTarget::Account {
        admin: Some(admin.id),
    };
    let risk_raised = |reason| {
        audit::success(now, admin.id, AuditAction::AuthRiskRaise, account).with_reason(reason)
    };
    match outcome {
        PinOutcome::Matched { risk_cleared } => {
            if risk_cleared {
                state
                    .audit(&[audit::success(
                        now,
                        admin.id,
                        AuditAction::AuthRiskClear,
                        account,
                    )])
                    .await?;
            }
            Ok(())
        }
        PinOutcome::Locked => {
            state.audit(&[deny(ReasonCategory::PinLocked)]).await?;
            Err(ApiError::pin_locked())
        }
        PinOutcome::LockedNow { sessions_closed } => {
            let mut events = vec![
                deny(ReasonCategory::PinInvalid),
                risk_raised(ReasonCategory::PinLocked),
            ];
            if sessions_closed > 0 {
                events.push(
                    audit::success(now, admin.id, AuditAction::SessionClose, account)
                        .with_reason(ReasonCategory::PinLocked),
                );
            }
            state.audit(&events).await?;
            Err(ApiError::pin_locked())
        }
        PinOutcome::Wrong { tries_left } => {
            state.audit(&[deny(ReasonCategory::PinInvalid)]).await?;
            Err(ApiError::pin_invalid(tries_left))
        }
        PinOutcome::Duress => {
            tracing::warn!(admin = %admin.id, "critical: the duress PIN was entered");
            state
                .audit(&[
                    deny(ReasonCategory::DuressPin),
                    audit::denied(
                        now,
                        Actor::Admin(admin.id),
                        AuditAction::AuthDuressPin,
                        account,
                        ReasonCategory::DuressPin,
                    ),
                    risk_raised(ReasonCategory::DuressPin),
                ])
                .await?;
            Err(ApiError::duress_decoy())
        }
        PinOutcome::NotSet => {
            state.audit(&[deny(ReasonCategory::PinNotSet)]).await?;
            Err(ApiError::forbidden(ReasonCategory::PinNotSet))
        }
        PinOutcome::Busy => {
            state.audit(&[deny(ReasonCategory::Throttled)]).await?;
            Err(ApiError::throttled(Duration::from_secs(1)))
        }
    }
}

enum PinOutcome {
    /// The PIN; `risk_cleared` when it cleared a raised risk state (spec A.6).
    Matched {
        risk_cleared: bool,
    },
    /// A wrong PIN, with the tries left before the lock.
    Wrong {
        tries_left: u32,
    },
    /// The wrong PIN that locked critical operations: the account's risk state was raised and
    /// its sessions closed (spec A.6).
    LockedNow {
        sessions_closed: u64,
    },
    Locked,
    /// The duress PIN (spec A.7): the risk state was raised; the request must appear to succeed
    /// and do nothing.
    Duress,
    NotSet,
    /// The account's turn did not come within [`PIN_TURN_WAIT`].
    Busy,
}

/// One PIN check in the account's turn: waits for the turn, decides, gives the turn back.
async fn pin_check_turn(
    state: &AppState,
    admin: AdminId,
    entered: Option<Pin>,
) -> ApiResult<PinOutcome> {
    let task = format!("pin-check:{admin}");
    let holder = crate::lease::holder_id();
    let started = tokio::time::Instant::now();
    loop {
        let now = state.now();
        if state
            .store()
            .take_lease(&task, &holder, now, now.saturating_add(PIN_TURN_TERM))
            .await?
        {
            break;
        }
        if started.elapsed() >= PIN_TURN_WAIT {
            return Ok(PinOutcome::Busy);
        }
        // Another check of this account is running: it lasts one hash comparison.
        let pause = 2 + rand::rngs::OsRng.next_u32() % 8;
        tokio::time::sleep(Duration::from_millis(u64::from(pause))).await;
    }
    let decided = decide_pin(state, admin, entered).await;
    let released = state.store().release_lease(&task, &holder).await;
    let outcome = decided?;
    released?;
    Ok(outcome)
}

/// Compares the PIN against the account as it is stored now (not as the request's session saw
/// it) and records the outcome; runs only in the account's turn.
async fn decide_pin(
    state: &AppState,
    admin: AdminId,
    entered: Option<Pin>,
) -> ApiResult<PinOutcome> {
    let Some(stored) = state.store().admin_by_id(admin).await? else {
        return Ok(PinOutcome::NotSet);
    };
    let Some(pin_hash) = stored.pin_hash else {
        return Ok(PinOutcome::NotSet);
    };
    if stored.pin_failures >= MAX_CONSECUTIVE_PIN_FAILURES {
        return Ok(PinOutcome::Locked);
    }
    let Some(pin) = entered else {
        return record_wrong_pin(state, admin).await;
    };
    let secret = pin.expose().as_bytes().to_vec();
    let matched = state
        .verify_secret(secret.clone(), Some(pin_hash))
        .await?
        .is_some();
    // The duress PIN is checked only when one is set, after the PIN; it counts as no failure
    // (to whoever entered it, it worked) and leaves the counter as a right PIN would.
    let duress = !matched
        && match stored.duress_pin_hash {
            Some(duress_hash) => state
                .verify_secret(secret, Some(duress_hash))
                .await?
                .is_some(),
            None => false,
        };
    if !matched && !duress {
        return record_wrong_pin(state, admin).await;
    }
    if stored.pin_failures > 0 {
        state
            .store()
            .reset_pin_failures(admin, MAX_CONSECUTIVE_PIN_FAILURES)
            .await?;
    }
    if duress {
        state.store().raise_risk(admin, state.now()).await?;
        return Ok(PinOutcome::Duress);
    }
    let risk_cleared = stored.risk_raised_at.is_some() && state.store().clear_risk(admin).await?;
    Ok(PinOutcome::Matched { risk_cleared })
}

/// Counts a wrong PIN. The one that reaches the limit locks critical operations, raises the
/// account's risk state and closes all its sessions, so that a stolen session guessing PINs is
/// over (spec A.6; every session, since the guesser may hold more than one).
async fn record_wrong_pin(state: &AppState, admin: AdminId) -> ApiResult<PinOutcome> {
    let failures = state.store().record_pin_failure(admin).await?;
    if failures < MAX_CONSECUTIVE_PIN_FAILURES {
        return Ok(PinOutcome::Wrong {
            tries_left: MAX_CONSECUTIVE_PIN_FAILURES - failures,
        });
    }
    if failures > MAX_CONSECUTIVE_PIN_FAILURES {
        return Ok(PinOutcome::Locked);
    }
    let now = state.now();
    state.store().raise_risk(admin, now).await?;
    let mut tx = state.store().begin().await?;
    let sessions_closed = tx.close_sessions_of(admin, now).await?;
    tx.commit().await?;
    Ok(PinOutcome::LockedNow { sessions_closed })
}
