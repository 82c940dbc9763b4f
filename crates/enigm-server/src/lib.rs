//! Enigm Command: the control-plane HTTP server (axum) with administrator identity, roles,
//! multi-admin approvals and audit events.
//!
//! `run` is what `enigm up` calls; `AppState` + `routes::router` assemble the same application
//! in-process for tests and benchmarks.

pub mod attestation;
pub mod audit;
pub mod audit_tally;
pub mod authz;
pub mod bootstrap;
pub mod checkins;
pub mod config;
pub mod deployment_keys;
pub mod device_guard;
pub mod director_writer;
pub mod edge;
pub mod error;
pub mod extract;
mod group_commit;
pub mod guard;
pub mod handlers;
pub mod lease;
pub mod metrics;
pub mod openapi;
pub mod ota;
pub mod revision_cache;
pub mod routes;
mod serve;
pub mod services;
pub mod state;
pub mod throttle;
pub mod tor_gateway;
mod views;

pub use config::{OnlineKeyToken, ServerConfig, TlsFiles};
pub use edge::EdgeLimits;
pub use serve::run;
