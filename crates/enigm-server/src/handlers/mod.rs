//! Request handlers, one module per endpoint family. Handlers stay thin: decode, check with a
//! library, store, audit, encode.

pub mod approvals;
pub mod attestation;
pub mod audit;
pub mod auth;
pub mod devices;
pub mod eligibility;
pub mod lifecycle;
pub mod meta;
pub mod releases;
pub mod sessions;
pub mod tuf;
pub mod users;
