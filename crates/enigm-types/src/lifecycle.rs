//! The vocabulary of the trusted-device lifecycle (enigm-docs §3.3, §20 items 10–14): the
//! states, the actions an operator asks for, the two-phase commands a device acknowledges, and
//! the transition table between states. Anything not in the table is refused. The lifecycle of
//! one device as Command tracks it (confirmed state and pending command) is
//! `enigm_trust::Lifecycle`.

use crate::vocabulary::vocabulary;

vocabulary! {
    /// Where a device stands in its lifecycle.
    pub enum DeviceState ("device state") {
        PendingEnrollment => "pending-enrollment",
        Trusted => "trusted",
        Restricted => "restricted",
        Revoked => "revoked",
        Replaced => "replaced",
        Retired => "retired",
    }
}

vocabulary! {
    /// What an operator (or the enrollment flow) asks of a device's lifecycle.
    pub enum LifecycleAction ("lifecycle action") {
        /// Pending enrollment → trusted, once enrollment is approved.
        Activate => "activate",
        /// Trusted → restricted (suspension).
        Restrict => "restrict",
        /// Restricted → trusted.
        Reactivate => "reactivate",
        /// Trusted or restricted → revoked: no further protected operation.
        Revoke => "revoke",
        /// Trusted → replaced, by a new device with a new handle that inherits no trust.
        Replace => "replace",
        /// Removal from active management; terminal.
        Retire => "retire",
    }
}

vocabulary! {
    /// A change Command issues and the device carries out and acknowledges (two-phase: issued →
    /// acknowledged). Both end in [`DeviceState::Retired`] once the device acknowledges; a wipe
    /// also erases the device's enrollment (key and state) before it acknowledges.
    pub enum DeviceCommand ("device command") {
        Retire => "retire",
        Wipe => "wipe",
    }
}

/// A transition the table does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} a {from} device")]
pub struct LifecycleError {
    pub from: DeviceState,
    pub action: LifecycleAction,
}

impl DeviceState {
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
    /// its posture follow in `enigm_trust::decide`).
    pub const fn is_active(self) -> bool {
        matches!(self, DeviceState::Trusted | DeviceState::Restricted)
    }

    /// The states in which a device may check in and attest.
    pub const ACTIVE: [DeviceState; 2] = [DeviceState::Trusted, DeviceState::Restricted];
}

impl LifecycleAction {
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

impl DeviceCommand {
    /// The transition the command makes when the device acknowledges it.
    pub const fn action(self) -> LifecycleAction {
        match self {
            DeviceCommand::Retire | DeviceCommand::Wipe => LifecycleAction::Retire,
        }
    }

    /// A remote wipe needs the multi-admin approval and the device user's wipe opt-in.
    pub const fn requires_approval(self) -> bool {
        matches!(self, DeviceCommand::Wipe)
    }

    pub const fn requires_wipe_opt_in(self) -> bool {
        matches!(self, DeviceCommand::Wipe)
    }
}
