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
        }
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

    pub fn unauthenticated(reason: ReasonCategory) -> Self {
        let message = match reason {
            ReasonCategory::SessionExpired => "session expired: log in again",
            ReasonCategory::AccountDisabled => "account is disabled",
            ReasonCategory::InvalidCredentials => "invalid username or password",
            ReasonCategory::TotpRequired => "a TOTP code is required for this account",
            ReasonCategory::TotpInvalid => "invalid TOTP code",
            _ => "authentication required",
        };
        ApiError::reason(StatusCode::UNAUTHORIZED, reason, message)
    }

    pub fn forbidden(reason: ReasonCategory) -> Self {
        let message = match reason {
            ReasonCategory::PinRequired => {
                "this operation requires the critical-operation PIN (x-enigm-pin header)"
            }
            ReasonCategory::PinInvalid => "wrong critical-operation PIN",
            ReasonCategory::PinNotSet => {
                "set a critical-operation PIN before performing critical operations"
            }
            ReasonCategory::SelfApproval => {
                "you cannot decide on a request you made or that concerns you"
            }
            ReasonCategory::NotAnApprover => "none of your roles may approve this kind of request",
            _ => "not permitted",
        };
        ApiError::reason(StatusCode::FORBIDDEN, reason, message)
    }

    pub fn conflict(reason: ReasonCategory, message: &'static str) -> Self {
        ApiError::reason(StatusCode::CONFLICT, reason, message)
    }

    pub fn pin_locked() -> Self {
        ApiError::reason(
            StatusCode::LOCKED,
            ReasonCategory::PinLocked,
            "critical operations are locked after 5 wrong PINs: an owner must unlock them",
        )
    }

    pub fn throttled(retry_after: Duration) -> Self {
        let mut error = ApiError::reason(
            StatusCode::TOO_MANY_REQUESTS,
            ReasonCategory::Throttled,
            "too many failed attempts: try again later",
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
