//! Request handlers, one module per endpoint family. Handlers stay thin: decode (extractors,
//! including `guard::Caller` and `device_guard::SignedDevice`), call one service, encode. A
//! handler may read the store for a plain view; every change goes through a service. No handler
//! imports another.

pub mod approvals;
pub mod attestation;
pub mod audit;
pub mod auth;
pub mod devices;
pub mod eligibility;
pub mod lifecycle;
pub mod meta;
pub mod network;
pub mod policies;
pub mod proxy;
pub mod releases;
pub mod rollouts;
pub mod sessions;
pub mod tuf;
pub mod users;
pub mod vpn;
