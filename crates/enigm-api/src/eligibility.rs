//! Wire types of the eligibility decision: may this device do that protected action now?

use enigm_trust::{ProtectedAction, ResourceCategory};
use enigm_types::DeviceHandle;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What the app, network and OTA sides ask. Everything else the decision rests on (lifecycle
/// state, trust state and its age, attestation) is Command's own record, never the caller's.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EligibilityRequest {
    pub device: DeviceHandle,
    pub action: ProtectedAction,
    /// The category of what the action is on; absent, the action's usual one (`channel` for
    /// messaging and calls, `os-image` for `ota`, `network`, `enrollment`). `ota` may also be
    /// on the device's `policy-bundle`. A category the action is not on is denied
    /// (`resource_mismatch`).
    #[serde(default)]
    pub resource: Option<ResourceCategory>,
    /// Whether the user's session is valid: required for secure messaging and calls (the app
    /// side holds the session); absent, those actions are denied.
    #[serde(default)]
    pub session_valid: Option<bool>,
}

pub use enigm_trust::{DenyReason, EligibilityDecision};
