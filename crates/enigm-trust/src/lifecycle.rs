//! The trusted-device lifecycle (enigm-docs §3.3, §20 items 10–14) as an explicit transition
//! table: anything not in it is refused.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceState {
    PendingEnrollment,
    Trusted,
    Restricted,
    Revoked,
    Replaced,
    Retired,
}

/// What an operator (or the enrollment flow) asks of a device's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LifecycleAction {
    /// Pending enrollment → trusted, once enrollment is approved.
    Activate,
    /// Trusted → restricted (suspension).
    Restrict,
    /// Restricted → trusted.
    Reactivate,
    /// Trusted or restricted → revoked: no further protected operation.
    Revoke,
    /// Trusted → replaced, by a new device with a new handle that inherits no trust.
    Replace,
    /// Removal from active management; terminal.
    Retire,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} a {from} device")]
pub struct LifecycleError {
    pub from: DeviceState,
    pub action: LifecycleAction,
}

impl DeviceState {
    pub const ALL: [DeviceState; 6] = [
        DeviceState::PendingEnrollment,
        DeviceState::Trusted,
        DeviceState::Restricted,
        DeviceState::Revoked,
        DeviceState::Replaced,
        DeviceState::Retired,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            DeviceState::PendingEnrollment => "pending-enrollment",
            DeviceState::Trusted => "trusted",
            DeviceState::Restricted => "restricted",
            DeviceState::Revoked => "revoked",
            DeviceState::Replaced => "replaced",
            DeviceState::Retired => "retired",
        }
    }

    /// The state `action` leads to from this one, or the refusal.
    pub const fn apply(self, action: LifecycleAction) -> Result<DeviceState, LifecycleError> {
        use DeviceState as D;
        use LifecycleAction as A;
        match (self, action) {
            (D::PendingEnrollment, A::Activate) | (D::Restricted, A::Reactivate) => Ok(D::Trusted),
            (D::Trusted, A::Restrict) => Ok(D::Restricted),
            (D::Trusted | D::Restricted, A::Revoke) => Ok(D::Revoked),
            (D::Trusted, A::Replace) => Ok(D::Replaced),
            (
                D::PendingEnrollment | D::Trusted | D::Restricted | D::Revoked | D::Replaced,
                A::Retire,
            ) => Ok(D::Retired),
            (from, action) => Err(LifecycleError { from, action }),
        }
    }

    /// Whether the device may take part in protected operations at all (further checks of
    /// its posture follow in [`crate::decide`]).
    pub const fn is_active(self) -> bool {
        matches!(self, DeviceState::Trusted | DeviceState::Restricted)
    }
}

impl fmt::Display for DeviceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DeviceState {
    type Err = UnknownDeviceState;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        DeviceState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or(UnknownDeviceState)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown device state")]
pub struct UnknownDeviceState;

impl LifecycleAction {
    pub const ALL: [LifecycleAction; 6] = [
        LifecycleAction::Activate,
        LifecycleAction::Restrict,
        LifecycleAction::Reactivate,
        LifecycleAction::Revoke,
        LifecycleAction::Replace,
        LifecycleAction::Retire,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            LifecycleAction::Activate => "activate",
            LifecycleAction::Restrict => "restrict",
            LifecycleAction::Reactivate => "reactivate",
            LifecycleAction::Revoke => "revoke",
            LifecycleAction::Replace => "replace",
            LifecycleAction::Retire => "retire",
        }
    }

    /// Reactivation and revocation need the multi-admin approval (the threat model's guarded
    /// lifecycle actions); so does remote wipe, which is not a state change.
    pub const fn requires_approval(self) -> bool {
        matches!(self, LifecycleAction::Reactivate | LifecycleAction::Revoke)
    }

    /// Retirement is issued by Command and completed when the device acknowledges it.
    pub const fn requires_device_acknowledgement(self) -> bool {
        matches!(self, LifecycleAction::Retire)
    }
}

impl std::str::FromStr for LifecycleAction {
    type Err = UnknownLifecycleAction;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        LifecycleAction::ALL
            .into_iter()
            .find(|action| action.as_str() == text)
            .ok_or(UnknownLifecycleAction)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown lifecycle action")]
pub struct UnknownLifecycleAction;

impl fmt::Display for LifecycleAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
