//! The one error type of the HTTP API. Every failure becomes `{code, message}` JSON with a
//! stable code; internal details are logged, never returned.

use std::borrow::Cow;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use enigm_api::ErrorBody;
use enigm_types::ReasonCategory;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: Cow<'static, str>,
    retry_after: Option<Duration>,
    /// Answer as if the request had been accepted (see [`ApiError::duress_decoy`]).
    decoy: bool,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            decoy: false,
        }
    }

    /// The duress PIN was entered (spec A.7): the operation stops here and does nothing, but
    /// the answer must not tell whoever watches the screen. It reads like an accepted request,
    /// the same for every critical operation; the truth is in the audit log and the account's
    /// risk state.
    pub fn duress_decoy() -> Self {
        let mut error = ApiError::new(StatusCode::ACCEPTED, "accepted", "accepted");
        error.decoy = true;
        error
    }

    /// A denial or failure whose code is the audit reason category.
    pub fn reason(status: StatusCode, reason: ReasonCategory, message: &'static str) -> Self {
        ApiError::new(status, reason.as_str(), message)
    }

    pub fn bad_request(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn not_found(what: &'static str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// A refused authentication, with what to do about it where there is something to do.
    pub fn unauthenticated(reason: ReasonCategory) -> Self {
        let message = match reason {
            ReasonCategory::SessionExpired => {
                "session expired: log in again with `enigm login --server URL`"
            }
            ReasonCategory::AccountDisabled => {
                "account is disabled: an owner can enable it with `enigm admin users enable USER`"
            }
            ReasonCategory::InvalidCredentials => "invalid username or password",
            ReasonCategory::TotpRequired => {
                "a TOTP code is required for this account: pass --totp CODE (the code your \
                 authenticator app shows)"
            }
            ReasonCategory::TotpInvalid => {
                "invalid TOTP code: use the current code of your authenticator app (each code \
                 counts once)"
            }
            _ => "authentication required: log in with `enigm login --server URL`",
        };
        ApiError::reason(StatusCode::UNAUTHORIZED, reason, message)
    }

    pub fn forbidden(reason: ReasonCategory) -> Self {
        let message = match reason {
            ReasonCategory::PinRequired => {
                "this operation requires the critical-operation PIN: pass --pin-file FILE or run \
                 on a terminal to be prompted (API clients send the x-enigm-pin header)"
            }
            ReasonCategory::PinInvalid => "wrong critical-operation PIN",
            ReasonCategory::PinNotSet => {
                "this operation requires a critical-operation PIN and none is set: set one with \
                 `enigm admin pin set`"
            }
            ReasonCategory::SelfApproval => {
                "you cannot decide on a request you made or that concerns you: another approver \
                 must decide it (`enigm admin approvals show ID` names who may)"
            }
            ReasonCategory::NotAnApprover => {
                "none of your roles may approve this kind of request: an administrator holding \
                 one of the roles the approval rule names must decide it \
                 (`enigm admin approvals show ID`)"
            }
            ReasonCategory::PasswordChangeRequired => {
                "this account's password was set by someone else and must be changed before \
                 anything else: run `enigm admin password change`"
            }
            _ => "not permitted",
        };
        ApiError::reason(StatusCode::FORBIDDEN, reason, message)
    }

    /// A wrong PIN, with the tries left before critical operations lock.
    pub fn pin_invalid(tries_left: u32) -> Self {
        let tries = if tries_left == 1 { "try" } else { "tries" };
        ApiError::new(
            StatusCode::FORBIDDEN,
            ReasonCategory::PinInvalid.as_str(),
            format!(
                "wrong critical-operation PIN: {tries_left} {tries} left before critical \
                 operations lock"
            ),
        )
    }

    /// A route the caller's roles do not allow: names the permission and the roles that have it.
    pub fn forbidden_permission(permission: &str, granting: &[&str]) -> Self {
        let message = if granting.is_empty() {
            format!("your roles do not allow `{permission}`")
        } else {
            format!(
                "your roles do not allow `{permission}`, which needs the role {}: an owner can \
                 grant it with `enigm admin roles grant USER ROLE --justification TEXT`",
                granting.join(" or ")
            )
        };
        ApiError::new(
            StatusCode::FORBIDDEN,
            ReasonCategory::Forbidden.as_str(),
            message,
        )
    }

    pub fn conflict(reason: ReasonCategory, message: &'static str) -> Self {
        ApiError::reason(StatusCode::CONFLICT, reason, message)
    }

    pub fn pin_locked() -> Self {
        ApiError::reason(
            StatusCode::LOCKED,
            ReasonCategory::PinLocked,
            "critical operations are locked after 5 wrong PINs and the account's sessions are \
             closed: an owner must unlock them with `enigm admin users unlock-pin USER`, then log \
             in again",
        )
    }

    pub fn throttled(retry_after: Duration) -> Self {
        let mut error = ApiError::reason(
            StatusCode::TOO_MANY_REQUESTS,
            ReasonCategory::Throttled,
            "too many failed attempts: try again later (see Retry-After)",
        );
        error.retry_after = Some(retry_after);
        error
    }

    /// A server-side failure: logged with its cause, answered with a generic message.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        tracing::error!(error = %chain, "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl From<enigm_store::StoreError> for ApiError {
    fn from(error: enigm_store::StoreError) -> Self {
        match error {
            enigm_store::StoreError::NotInAuditTree {
                requested,
                tree_size,
            } => ApiError::new(
                StatusCode::NOT_FOUND,
                "beyond_tree",
                format!("{requested} is beyond the audit tree's size {tree_size}"),
            ),
            other => ApiError::internal(&other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.decoy {
            return (
                StatusCode::ACCEPTED,
                Json(serde_json::json!({"status": "accepted"})),
            )
                .into_response();
        }
        let body = ErrorBody {
            code: self.code.to_owned(),
            message: self.message.into_owned(),
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(retry_after) = self.retry_after {
            let seconds = retry_after.as_secs().max(1);
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}
