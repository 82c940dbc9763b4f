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

/// A change Command issues and the device carries out and acknowledges (two-phase: issued →
/// acknowledged). Both end in [`DeviceState::Retired`] once the device acknowledges; a wipe also
/// erases the device's enrollment (key and state) before it acknowledges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceCommand {
    Retire,
    Wipe,
}

impl DeviceCommand {
    pub const ALL: [DeviceCommand; 2] = [DeviceCommand::Retire, DeviceCommand::Wipe];

    pub const fn as_str(self) -> &'static str {
        match self {
            DeviceCommand::Retire => "retire",
            DeviceCommand::Wipe => "wipe",
        }
    }

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

impl fmt::Display for DeviceCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DeviceCommand {
    type Err = UnknownLifecycleAction;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        DeviceCommand::ALL
            .into_iter()
            .find(|command| command.as_str() == text)
            .ok_or(UnknownLifecycleAction)
    }
}

/// A device's lifecycle as Command knows it: the state the device confirmed, and the command
/// an operator issued that the device has not acknowledged yet. The state the operator asked
/// for is [`Lifecycle::requested`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lifecycle {
    pub confirmed: DeviceState,
    pub pending: Option<DeviceCommand>,
}

/// Why a lifecycle change is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleRefusal {
    #[error(transparent)]
    NotAllowed(#[from] LifecycleError),
    /// Another command waits for the device's acknowledgement.
    #[error("a `{0}` command is waiting for the device")]
    CommandPending(DeviceCommand),
    /// The device user did not opt in to remote wipe at enrollment.
    #[error("the device did not opt in to remote wipe")]
    NoWipeOptIn,
    /// The device acknowledged a command that was not issued to it.
    #[error("no `{0}` command is waiting for the device")]
    NotIssued(DeviceCommand),
}

impl Lifecycle {
    pub const fn new(confirmed: DeviceState) -> Lifecycle {
        Lifecycle {
            confirmed,
            pending: None,
        }
    }

    /// The state an operator asked for: where the pending command leads, else the confirmed
    /// state.
    pub fn requested(self) -> DeviceState {
        match self.pending {
            Some(command) => self
                .confirmed
                .apply(command.action())
                .unwrap_or(self.confirmed),
            None => self.confirmed,
        }
    }

    /// A change that takes effect at once (restrict, reactivate, revoke, replace). While a
    /// command waits for the device only revocation is possible (a device about to be retired
    /// or wiped may still have to be cut off); the command stays pending.
    pub fn apply(self, action: LifecycleAction) -> Result<Lifecycle, LifecycleRefusal> {
        if let Some(command) = self.pending
            && action != LifecycleAction::Revoke
        {
            return Err(LifecycleRefusal::CommandPending(command));
        }
        let confirmed = self.confirmed.apply(action)?;
        Ok(Lifecycle {
            confirmed,
            pending: self.pending,
        })
    }

    /// Issues a two-phase command: the confirmed state stays until the device acknowledges.
    pub fn issue(
        self,
        command: DeviceCommand,
        wipe_opt_in: bool,
    ) -> Result<Lifecycle, LifecycleRefusal> {
        if let Some(pending) = self.pending {
            return Err(LifecycleRefusal::CommandPending(pending));
        }
        self.confirmed.apply(command.action())?;
        if command.requires_wipe_opt_in() && !wipe_opt_in {
            return Err(LifecycleRefusal::NoWipeOptIn);
        }
        Ok(Lifecycle {
            confirmed: self.confirmed,
            pending: Some(command),
        })
    }

    /// The device acknowledged `command`: the confirmed state becomes the requested one.
    pub fn acknowledge(self, command: DeviceCommand) -> Result<Lifecycle, LifecycleRefusal> {
        if self.pending != Some(command) {
            return Err(LifecycleRefusal::NotIssued(command));
        }
        let confirmed = self.confirmed.apply(command.action())?;
        Ok(Lifecycle::new(confirmed))
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
