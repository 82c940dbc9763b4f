//! The trusted-device lifecycle (enigm-docs §3.3, §20 items 10–14) of one device as Command
//! tracks it: the confirmed state and the two-phase command waiting for the device. The states
//! and the transition table (anything not in it is refused) are `enigm_types::lifecycle`.

/// The states, actions, commands and the transition table are vocabulary of `enigm-types`.
pub use enigm_types::{DeviceCommand, DeviceState, LifecycleAction, LifecycleError};

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
