//! Administrator identity rules: what counts as an acceptable password or PIN, how long a
//! session lives, when repeated PIN failures lock an account, and how login attempts are
//! throttled.
//!
//! The crate does no I/O: time comes in as [`enigm_types::Timestamp`] and randomness as an
//! injected `RngCore + CryptoRng`. Hashing is not done here; the server hashes the validated
//! [`Password`] and [`Pin`] with `enigm-crypto`.

pub mod credential;
pub mod pin_guard;
pub mod session;
pub mod throttle;

pub use credential::{Password, PasswordError, Pin, PinError, is_weak_pin};
pub use pin_guard::{MAX_CONSECUTIVE_PIN_FAILURES, PinAttempts};
pub use session::{LiveSession, SessionPolicy, SessionPolicyError, SessionRejection};
pub use throttle::{LoginThrottle, RetryAfter, ThrottleEntry, ThrottlePolicy};
