//! The login workflow and the caller's own credentials: password, critical-operation PIN, TOTP
//! and sessions. Every attempt, allowed or refused, is audited; failed guesses are counted in the
//! throttle the deployment's processes share.

use std::net::IpAddr;

use axum::http::StatusCode;
use enigm_api::{
    ChangePasswordRequest, LoginRequest, LoginResponse, SessionView, SetDuressPinRequest,
    SetPinRequest, TotpConfirmRequest, TotpEnrollRequest, TotpEnrollment, TotpRemoveRequest,
};
use enigm_crypto::{BearerToken, TotpSecret, verify_totp};
use enigm_identity::{MAX_CONSECUTIVE_PIN_FAILURES, Password, Pin};
use enigm_store::{AdminRecord, NewSession};
use enigm_types::{
    Actor, AdminId, AuditAction, AuditEvent, AuditTarget, Outcome, ReasonCategory, SessionId,
    Timestamp, Username,
};

use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::guard::Caller;
use crate::state::AppState;
use crate::views;

/// Log in with username and password (and a TOTP code when enabled); returns a bearer token.
pub async fn login(
    state: &AppState,
    ip: Option<IpAddr>,
    request: LoginRequest,
) -> ApiResult<LoginResponse> {
    let now = state.now();
    let username = Username::parse(&request.username).ok();
    // Throttle by account and by client address: guessing one account from many addresses and
    // many accounts from one address are both slowed down.
    let mut keys = Vec::with_capacity(2);
    if let Some(username) = &username {
        keys.push(format!("user:{username}"));
    }
    if let Some(ip) = ip {
        keys.push(format!("ip:{ip}"));
    }
    let throttled = state.throttle.retry_after(&keys, now).await?;
    if let Some(retry_after) = throttled {
        // Counted per window and client network, not logged one by one: a throttled caller
        // is not authenticated and must not grow the audit log at its rate.
        state.count_anonymous(AuditAction::AuthLogin, ReasonCategory::Throttled, ip);
        return Err(ApiError::throttled(retry_after));
    }

    let admin = match &username {
        Some(username) => state.store().admin_by_username(username).await?,
        None => None,
    };
    let matched = state
        .verify_secret(
            request.password.clone().into_bytes(),
            admin.as_ref().map(|a| a.password_hash.clone()),
        )
        .await?;
    let admin = match (admin, matched) {
        (Some(admin), Some(_)) => admin,
        (admin, _) => {
            return Err(login_failure(
                state,
                &keys,
                admin.map(|a| a.id),
                ReasonCategory::InvalidCredentials,
            )
            .await);
        }
    };
    if admin.disabled {
        return Err(login_failure(
            state,
            &keys,
            Some(admin.id),
            ReasonCategory::AccountDisabled,
        )
        .await);
    }
    if admin.totp_enabled {
        check_login_totp(state, &keys, &admin, request.totp.as_deref()).await?;
    }

    let token = BearerToken::generate(&mut rand::rngs::OsRng);
    let new_session = NewSession {
        id: SessionId::random(),
        admin_id: admin.id,
        token_digest_hex: token.digest().to_hex(),
        created_at: now,
        expires_at: state.session_policy.expires_at(now),
    };
    state.store().insert_session(&new_session).await?;
    state.throttle.record_success(&keys).await?;
    let event = audit::success(
        now,
        admin.id,
        AuditAction::AuthLogin,
        AuditTarget::Session {
            session: new_session.id,
        },
    );
    state.audit(&[event]).await?;
    let session = state
        .store()
        .session_by_id(new_session.id)
        .await?
        .ok_or_else(|| ApiError::not_found("session"))?;
    Ok(LoginResponse {
        token: token.expose().to_owned(),
        session: views::session(&session, session.id),
        account: views::own_account(&admin),
    })
}

async fn login_failure(
    state: &AppState,
    keys: &[String],
    admin: Option<AdminId>,
    reason: ReasonCategory,
) -> ApiError {
    let now = state.now();
    // A failure that cannot be counted is not answered as a plain failure: the guess would be
    // free.
    if let Err(error) = state.throttle.record_failure(keys, now).await {
        return error.into();
    }
    let actor = admin.map_or(Actor::Anonymous, Actor::Admin);
    let event = audit::denied(
        now,
        actor,
        AuditAction::AuthLogin,
        AuditTarget::Account { admin },
        reason,
    );
    match state.audit(&[event]).await {
        Ok(()) => ApiError::unauthenticated(reason),
        Err(error) => error,
    }
}

async fn check_login_totp(
    state: &AppState,
    keys: &[String],
    admin: &AdminRecord,
    code: Option<&str>,
) -> ApiResult<()> {
    let Some(code) = code else {
        // The password was right: asking for the second factor is not a failed guess.
        return Err(ApiError::unauthenticated(ReasonCategory::TotpRequired));
    };
    if claim_totp_code(state, admin, code, state.now()).await? {
        Ok(())
    } else {
        Err(login_failure(state, keys, Some(admin.id), ReasonCategory::TotpInvalid).await)
    }
}

/// Whether `code` is a current code of `admin`'s TOTP not used before; a code that verifies is
/// claimed (its time step recorded), so the same code never counts twice.
async fn claim_totp_code(
    state: &AppState,
    admin: &AdminRecord,
    code: &str,
    now: Timestamp,
) -> ApiResult<bool> {
    let secret = open_totp_secret(state, admin)?;
    match verify_totp(&secret, code, now.unix_seconds(), admin.totp_last_step) {
        Ok(step) => Ok(state.store().claim_totp_step(admin.id, step.0).await?),
        Err(_) => Ok(false),
    }
}

fn open_totp_secret(state: &AppState, admin: &AdminRecord) -> ApiResult<TotpSecret> {
    let sealed = admin
        .totp_sealed
        .as_deref()
        .ok_or_else(|| ApiError::conflict(ReasonCategory::Conflict, "no TOTP secret enrolled"))?;
    let bytes = state
        .sealing_key
        .open(sealed, admin.id.to_string().as_bytes())
        .map_err(|error| ApiError::internal(&error))?;
    TotpSecret::from_bytes(&bytes).map_err(|error| ApiError::internal(&error))
}

/// End the current session.
pub async fn logout(state: &AppState, caller: &Caller) -> ApiResult<()> {
    let now = state.now();
    let mut tx = state.store().begin().await?;
    tx.close_session(caller.session.id, now).await?;
    tx.append_audit(&audit::success(
        now,
        caller.admin.id,
        AuditAction::AuthLogout,
        AuditTarget::Session {
            session: caller.session.id,
        },
    ))
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Change the caller's password; the caller's other sessions are closed.
pub async fn change_password(
    state: &AppState,
    caller: &Caller,
    request: ChangePasswordRequest,
) -> ApiResult<()> {
    reauthenticate(
        state,
        caller,
        AuditAction::AuthPassword,
        &request.current_password,
        PinRule::WhenSet(request.current_pin.as_deref()),
    )
    .await?;
    let new_password = Password::parse(&request.new_password)
        .map_err(|error| ApiError::unprocessable("weak_password", error.to_string()))?;
    // A required change replaces a password someone else knows: keeping it is no change.
    if caller.admin.password_change_required
        && state
            .verify_secret(
                new_password.expose().as_bytes().to_vec(),
                Some(caller.admin.password_hash.clone()),
            )
            .await?
            .is_some()
    {
        return Err(ApiError::unprocessable(
            "weak_password",
            "the new password must differ from the one you were given: choose another",
        ));
    }
    let hash = state
        .hash_secret(new_password.expose().as_bytes().to_vec())
        .await?;
    let now = state.now();
    state
        .store()
        .update_password_hash(caller.admin.id, hash.as_str())
        .await?;
    let mut tx = state.store().begin().await?;
    for session in state
        .store()
        .list_open_sessions(Some(caller.admin.id), now)
        .await?
    {
        if session.id != caller.session.id {
            tx.close_session(session.id, now).await?;
        }
    }
    tx.append_audit(&audit::success(
        now,
        caller.admin.id,
        AuditAction::AuthPassword,
        AuditTarget::Account {
            admin: Some(caller.admin.id),
        },
    ))
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Set or change the caller's 6-digit critical-operation PIN (needs the current password, and
/// the current PIN when one is set).
pub async fn set_pin(state: &AppState, caller: &Caller, request: SetPinRequest) -> ApiResult<()> {
    reauthenticate(
        state,
        caller,
        AuditAction::AuthPinSet,
        &request.current_password,
        PinRule::WhenSet(request.current_pin.as_deref()),
    )
    .await?;
    let pin = Pin::parse(&request.pin)
        .map_err(|error| ApiError::unprocessable("invalid_pin", error.to_string()))?;
    let hash = state.hash_secret(pin.expose().as_bytes().to_vec()).await?;
    let stored = state
        .store()
        .set_pin_hash(caller.admin.id, hash.as_str(), MAX_CONSECUTIVE_PIN_FAILURES)
        .await?;
    audit_pin_change(state, caller, AuditAction::AuthPinSet, stored).await
}

/// Audits a PIN or duress-PIN change the store made (`stored`) or refused because the PIN is
/// locked: a locked PIN cannot be replaced to escape the lock.
async fn audit_pin_change(
    state: &AppState,
    caller: &Caller,
    action: AuditAction,
    stored: bool,
) -> ApiResult<()> {
    let now = state.now();
    let target = AuditTarget::Account {
        admin: Some(caller.admin.id),
    };
    if !stored {
        let actor = Actor::Admin(caller.admin.id);
        let event = audit::denied(now, actor, action, target, ReasonCategory::PinLocked);
        state.audit(&[event]).await?;
        return Err(ApiError::pin_locked());
    }
    let event = audit::success(now, caller.admin.id, action, target);
    state.audit(&[event]).await?;
    Ok(())
}

/// Set or remove the caller's duress PIN (needs the current password and PIN). It must differ
/// from the PIN and follow the PIN's rules.
pub async fn set_duress_pin(
    state: &AppState,
    caller: &Caller,
    request: SetDuressPinRequest,
) -> ApiResult<()> {
    // A duress PIN needs a PIN: without one, the PIN check answers `pin_not_set`.
    reauthenticate(
        state,
        caller,
        AuditAction::AuthDuressPinSet,
        &request.current_password,
        PinRule::Always(Some(request.current_pin.as_str())),
    )
    .await?;
    let hash = match &request.duress_pin {
        None => None,
        Some(text) => {
            let duress = Pin::parse(text)
                .map_err(|error| ApiError::unprocessable("invalid_pin", error.to_string()))?;
            let secret = duress.expose().as_bytes().to_vec();
            let same_as_pin = state
                .verify_secret(secret.clone(), caller.admin.pin_hash.clone())
                .await?
                .is_some();
            if same_as_pin {
                return Err(ApiError::unprocessable(
                    "invalid_pin",
                    "the duress PIN must differ from the PIN",
                ));
            }
            Some(state.hash_secret(secret).await?)
        }
    };
    let stored = state
        .store()
        .set_duress_pin_hash(
            caller.admin.id,
            hash.as_ref().map(|hash| hash.as_str()),
            MAX_CONSECUTIVE_PIN_FAILURES,
        )
        .await?;
    audit_pin_change(state, caller, AuditAction::AuthDuressPinSet, stored).await
}

/// Start TOTP enrollment (needs the current password, and the PIN when one is set): returns a
/// new secret, required at login once confirmed. An enabled TOTP is not replaced here: it is
/// removed first (with password, PIN and a current code) or reset through an approval.
pub async fn totp_enroll(
    state: &AppState,
    caller: &Caller,
    request: TotpEnrollRequest,
) -> ApiResult<TotpEnrollment> {
    reauthenticate(
        state,
        caller,
        AuditAction::AuthTotpEnroll,
        &request.current_password,
        PinRule::WhenSet(request.current_pin.as_deref()),
    )
    .await?;
    if caller.admin.totp_enabled {
        return Err(ApiError::conflict(
            ReasonCategory::Conflict,
            "TOTP is already enabled for this account: remove it first",
        ));
    }
    let secret = TotpSecret::generate(&mut rand::rngs::OsRng);
    let sealed = state.sealing_key.seal(
        secret.as_bytes(),
        caller.admin.id.to_string().as_bytes(),
        &mut rand::rngs::OsRng,
    );
    state
        .store()
        .set_totp_pending(caller.admin.id, &sealed)
        .await?;
    let now = state.now();
    let target = AuditTarget::Account {
        admin: Some(caller.admin.id),
    };
    state
        .audit(&[audit::success(
            now,
            caller.admin.id,
            AuditAction::AuthTotpEnroll,
            target,
        )])
        .await?;
    Ok(TotpEnrollment {
        secret: secret.to_base32(),
        otpauth_uri: secret.otpauth_uri("Enigm Command", caller.admin.username.as_str()),
    })
}

/// Confirm TOTP enrollment with the current password and a current code; from then on login
/// needs a code.
pub async fn totp_confirm(
    state: &AppState,
    caller: &Caller,
    request: TotpConfirmRequest,
) -> ApiResult<()> {
    reauthenticate(
        state,
        caller,
        AuditAction::AuthTotpConfirm,
        &request.current_password,
        PinRule::Never,
    )
    .await?;
    if caller.admin.totp_enabled {
        return Err(ApiError::conflict(
            ReasonCategory::Conflict,
            "TOTP is already enabled for this account",
        ));
    }
    let now = state.now();
    let target = AuditTarget::Account {
        admin: Some(caller.admin.id),
    };
    let accepted = claim_totp_code(state, &caller.admin, &request.code, now).await?;
    if !accepted {
        let event = audit::denied(
            now,
            Actor::Admin(caller.admin.id),
            AuditAction::AuthTotpConfirm,
            target,
            ReasonCategory::TotpInvalid,
        );
        state.audit(&[event]).await?;
        return Err(ApiError::unauthenticated(ReasonCategory::TotpInvalid));
    }
    state.store().enable_totp(caller.admin.id).await?;
    state
        .audit(&[audit::success(
            now,
            caller.admin.id,
            AuditAction::AuthTotpConfirm,
            target,
        )])
        .await?;
    Ok(())
}

/// The caller's open sessions.
pub async fn own_sessions(state: &AppState, caller: &Caller) -> ApiResult<Vec<SessionView>> {
    let sessions = state
        .store()
        .list_open_sessions(Some(caller.admin.id), state.now())
        .await?;
    Ok(sessions
        .iter()
        .map(|session| views::session(session, caller.session.id))
        .collect())
}

/// Close one of the caller's own sessions.
pub async fn close_own_session(state: &AppState, caller: &Caller, id: SessionId) -> ApiResult<()> {
    let session = state.store().session_by_id(id).await?;
    if session
        .as_ref()
        .is_none_or(|session| session.admin_id != caller.admin.id)
    {
        return Err(ApiError::not_found("session"));
    }
    crate::services::sessions::close_audited(state, caller, id).await
}

/// Remove the caller's own TOTP: needs the current password, the PIN and a current code of
/// the TOTP being removed, so that neither a stolen session nor a phished password suffices.
pub async fn totp_remove(
    state: &AppState,
    caller: &Caller,
    request: TotpRemoveRequest,
) -> ApiResult<()> {
    reauthenticate(
        state,
        caller,
        AuditAction::AuthTotpRemove,
        &request.current_password,
        PinRule::Always(Some(request.current_pin.as_str())),
    )
    .await?;
    let now = state.now();
    let target = AuditTarget::Account {
        admin: Some(caller.admin.id),
    };
    if !caller.admin.totp_enabled {
        return Err(ApiError::conflict(
            ReasonCategory::Conflict,
            "TOTP is not enabled for this account",
        ));
    }
    let accepted = claim_totp_code(state, &caller.admin, &request.code, now).await?;
    if !accepted {
        // A wrong code is a guess like a wrong password: it shares the account's throttle.
        state
            .throttle
            .record_failure(&account_throttle_key(caller), now)
            .await?;
        let event = audit::denied(
            now,
            Actor::Admin(caller.admin.id),
            AuditAction::AuthTotpRemove,
            target,
            ReasonCategory::TotpInvalid,
        );
        state.audit(&[event]).await?;
        return Err(ApiError::reason(
            StatusCode::FORBIDDEN,
            ReasonCategory::TotpInvalid,
            "invalid TOTP code",
        ));
    }
    let mut tx = state.store().begin().await?;
    tx.clear_totp(caller.admin.id).await?;
    tx.append_audit(&audit::success(
        now,
        caller.admin.id,
        AuditAction::AuthTotpRemove,
        target,
    ))
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Whether a credential change needs the critical-operation PIN, and the PIN the caller sent.
#[derive(Clone, Copy)]
enum PinRule<'a> {
    /// Only the password (confirming an enrollment the PIN already allowed).
    Never,
    /// The PIN in force, when the account has one.
    WhenSet(Option<&'a str>),
    /// A PIN, which the account must have.
    Always(Option<&'a str>),
}

/// The login throttle key of the caller's account: credential changes count their wrong
/// passwords, PINs and codes there, so guessing through them is as slow as guessing at login.
fn account_throttle_key(caller: &Caller) -> [String; 1] {
    [format!("user:{}", caller.admin.username)]
}

/// Re-authentication before a credential change: the caller's current password and, as `pin`
/// says, the PIN. Checked under the account's login throttle: while a back-off runs every
/// attempt answers 429 (the right password included), and each wrong password or PIN counts a
/// failure. Every refusal is audited as a denial of `action`.
async fn reauthenticate(
    state: &AppState,
    caller: &Caller,
    action: AuditAction,
    password: &str,
    pin: PinRule<'_>,
) -> ApiResult<()> {
    let keys = account_throttle_key(caller);
    let now = state.now();
    let target = AuditTarget::Account {
        admin: Some(caller.admin.id),
    };
    let deny = |reason| {
        AuditEvent::new(
            now,
            Actor::Admin(caller.admin.id),
            action,
            target,
            Outcome::Denied,
        )
        .with_reason(reason)
    };
    if let Some(retry_after) = state.throttle.retry_after(&keys, now).await? {
        state.audit(&[deny(ReasonCategory::Throttled)]).await?;
        return Err(ApiError::throttled(retry_after));
    }
    let matched = state
        .verify_secret(
            password.as_bytes().to_vec(),
            Some(caller.admin.password_hash.clone()),
        )
        .await?;
    if matched.is_none() {
        // Counted before answering: a failure that cannot be counted must not be a free guess.
        state.throttle.record_failure(&keys, now).await?;
        state
            .audit(&[deny(ReasonCategory::InvalidCredentials)])
            .await?;
        return Err(ApiError::reason(
            StatusCode::FORBIDDEN,
            ReasonCategory::InvalidCredentials,
            "current password is wrong",
        ));
    }
    let entered = match pin {
        PinRule::Never => None,
        PinRule::WhenSet(_) if caller.admin.pin_hash.is_none() => None,
        PinRule::WhenSet(entered) | PinRule::Always(entered) => Some(entered),
    };
    if let Some(entered) = entered
        && let Err(error) = crate::guard::check_pin(state, &caller.admin, entered).await
    {
        let guessed = [ReasonCategory::PinInvalid, ReasonCategory::PinLocked]
            .iter()
            .any(|reason| reason.as_str() == error.code());
        if guessed {
            state.throttle.record_failure(&keys, now).await?;
        }
        return Err(error);
    }
    state.throttle.record_success(&keys).await?;
    Ok(())
}
