//! The services floor under the handlers: one module per workflow of Command, holding its domain
//! checks and its store transactions (the change with its audit events). A handler decodes the
//! request, calls one service and encodes the answer; a workflow that spans features (an
//! approval that executes a lifecycle change or a release signing) is a service calling other
//! services, never a handler calling a handler. Services never name a handler.

pub mod approvals;
pub mod attestation;
pub mod audit_log;
pub mod auth;
pub mod devices;
pub mod eligibility;
pub mod lifecycle;
pub mod network;
pub mod policies;
pub mod policy_bundles;
pub mod proxy_credentials;
pub mod releases;
pub mod sessions;
pub mod users;
pub mod vpn;

mod stored;
