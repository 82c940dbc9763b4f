//! Why an exchange with Command did not succeed: a typed refusal read from Command's stable
//! error code, or a failure (unreachable, a server error, an answer that is not what the route
//! promises). Refusals after which the device cannot go on without an operator are final.

use std::fmt;

use enigm_types::ReasonCategory;

/// Which exchange of the cycle an error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    AttestationChallenge,
    Enrollment,
    CheckIn,
    Attestation,
    Commands,
    CommandAck,
    ProxyCredential,
}

impl Exchange {
    /// What the agent says when this exchange fails.
    pub fn context(self) -> &'static str {
        match self {
            Exchange::AttestationChallenge => "Command gave no attestation challenge",
            Exchange::Enrollment => "the enrollment was refused",
            Exchange::CheckIn => "the check-in was refused",
            Exchange::Attestation => "the attestation was refused",
            Exchange::Commands => "could not ask for lifecycle commands",
            Exchange::CommandAck => "the command acknowledgement was refused",
            Exchange::ProxyCredential => "no proxy credential was issued",
        }
    }
}

/// A refusal by Command, typed from its stable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// An operator revoked the device.
    Revoked,
    /// The device is retired, replaced or not yet enrolled.
    NotActive,
    /// No enrolled device holds this key (wiped on Command's side, or never enrolled).
    UnknownDevice,
    /// A wrong, expired or used-up enrollment token.
    InvalidEnrollmentToken,
    /// The device key is already enrolled.
    AlreadyEnrolled,
    /// The request's nonce was already seen.
    Replayed,
    /// The request was signed outside Command's clock window.
    StaleRequest,
    /// The device's attestation policy requires an accepted attestation and there is none.
    AttestationRequired,
    /// Attestation evidence that Command did not accept, with its reason.
    AttestationRejected(ReasonCategory),
    /// Any other stable reason Command gave.
    Other(ReasonCategory),
}

impl Refusal {
    /// The refusal named by Command's error `code`; `None` for a code this agent does not know.
    pub fn from_code(code: &str) -> Option<Refusal> {
        let reason: ReasonCategory =
            serde_json::from_value(serde_json::Value::String(code.to_owned())).ok()?;
        Some(match reason {
            ReasonCategory::DeviceRevoked => Refusal::Revoked,
            ReasonCategory::DeviceNotActive => Refusal::NotActive,
            ReasonCategory::UnknownDevice => Refusal::UnknownDevice,
            ReasonCategory::InvalidEnrollmentToken => Refusal::InvalidEnrollmentToken,
            ReasonCategory::AlreadyEnrolled => Refusal::AlreadyEnrolled,
            ReasonCategory::Replayed => Refusal::Replayed,
            ReasonCategory::StaleRequest => Refusal::StaleRequest,
            ReasonCategory::AttestationRequired => Refusal::AttestationRequired,
            ReasonCategory::InvalidTrustChain
            | ReasonCategory::UnsupportedDevice
            | ReasonCategory::IneligibleBuild
            | ReasonCategory::StaleAttestation
            | ReasonCategory::ReplayAttempt
            | ReasonCategory::EligibilityFailure => Refusal::AttestationRejected(reason),
            other => Refusal::Other(other),
        })
    }

    /// Whether trying again cannot succeed without an operator: the agent stops.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Refusal::Revoked
                | Refusal::NotActive
                | Refusal::UnknownDevice
                | Refusal::InvalidEnrollmentToken
                | Refusal::AlreadyEnrolled
        )
    }
}

/// Why an exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// Command refused the request (a 4xx with a stable code).
    #[error("{context}: {message} ({code})")]
    Refused {
        context: &'static str,
        refusal: Option<Refusal>,
        status: u16,
        /// Command's code as sent, cleaned for a terminal.
        code: String,
        message: String,
    },
    /// Command could not be reached, or the connection broke.
    #[error("{context}: could not reach the command server: {detail}")]
    Unreachable {
        context: &'static str,
        detail: String,
    },
    /// A server error, or an answer that is not the one the route promises.
    #[error("{context}: {detail}")]
    BadAnswer {
        context: &'static str,
        detail: String,
    },
    /// The shell could not mint attestation evidence.
    #[error("could not mint attestation evidence: {0}")]
    Evidence(String),
    /// The update sub-flow failed before it came to an outcome.
    #[error("the update failed: {0}")]
    Update(String),
}

impl ExchangeError {
    /// The typed refusal, when Command refused with a code this agent knows.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            ExchangeError::Refused { refusal, .. } => *refusal,
            _ => None,
        }
    }

    /// Command's error code, when it refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            ExchangeError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the device cannot go on without an operator.
    pub fn is_final(&self) -> bool {
        self.refusal().is_some_and(Refusal::is_final)
    }

    /// Reads a non-success answer of `exchange`: a refusal when Command sent its error body
    /// with a 4xx, a bad answer otherwise.
    pub(crate) fn from_answer(exchange: Exchange, status: u16, body: &[u8]) -> Self {
        let context = exchange.context();
        match serde_json::from_slice::<enigm_api::ErrorBody>(body) {
            Ok(error) if (400..500).contains(&status) => ExchangeError::Refused {
                context,
                refusal: Refusal::from_code(&error.code),
                status,
                code: clean(&error.code),
                message: clean(&error.message),
            },
            Ok(error) => ExchangeError::BadAnswer {
                context,
                detail: format!(
                    "server error {status}: {} ({})",
                    clean(&error.message),
                    clean(&error.code)
                ),
            },
            Err(_) => ExchangeError::BadAnswer {
                context,
                detail: format!("unexpected answer {status} without an error body"),
            },
        }
    }
}

impl fmt::Display for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.context())
    }
}

/// Server-provided texts are printed to a terminal, so they are bounded and cleaned.
fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(500).collect()
}
