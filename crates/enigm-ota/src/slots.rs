//! The A/B install state machine, pure: which slot holds what, which boots, and how an update
//! moves from staged to trial to confirmed or rolled back. The agent persists [`BootControl`]
//! atomically after each transition; a power cut between two transitions leaves the previous
//! state, which is always bootable (the active slot is never written while it is active).
//!
//! ```text
//! stage (inactive slot) ─► switch (next boot tries it once) ─► boot: Trial ─► confirm(healthy)
//!                                                                  │            ├─ yes: active
//!                                                                  │            └─ no: rolled back
//!                                                                  └─ booted again unconfirmed:
//!                                                                     rolled back (boot loop guard)
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The format version of [`BootControl`].
pub const BOOT_CONTROL_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }
}

/// What a slot holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotImage {
    pub target_name: String,
    pub kind: String,
    pub release_version: String,
    pub rollback_index: u64,
    /// Hex SHA-256 of the slot's file.
    pub sha256: String,
    pub length: u64,
}

/// An update switched to but not confirmed yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pending {
    pub slot: Slot,
    /// Whether the trial boot has started: a second boot without confirmation rolls back.
    pub tried: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootControl {
    pub format: u32,
    pub active: Slot,
    pub a: Option<SlotImage>,
    pub b: Option<SlotImage>,
    pub pending: Option<Pending>,
    /// The highest rollback index confirmed per kind; never decreases.
    pub installed_rollback_index: BTreeMap<String, u64>,
}

/// Which slot boots, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootDecision {
    /// The active, confirmed slot.
    Active(Slot),
    /// The new slot, once, on trial.
    Trial(Slot),
    /// The trial slot booted before and never confirmed: back to the active slot.
    RolledBack(Slot),
}

/// How a confirmation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    Confirmed(Slot),
    RolledBack(Slot),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    #[error("an update is already switched to and waits for its trial")]
    UpdatePending,
    #[error("no image is staged in the inactive slot")]
    NothingStaged,
    #[error("no trial boot is running")]
    NoTrial,
    #[error("the rollback index is below the installed one")]
    Downgrade,
}

impl BootControl {
    /// A device whose slot A holds `image` (as provisioned).
    pub fn provisioned(image: SlotImage) -> Self {
        let mut installed = BTreeMap::new();
        installed.insert(image.kind.clone(), image.rollback_index);
        BootControl {
            format: BOOT_CONTROL_VERSION,
            active: Slot::A,
            a: Some(image),
            b: None,
            pending: None,
            installed_rollback_index: installed,
        }
    }

    pub fn image(&self, slot: Slot) -> Option<&SlotImage> {
        match slot {
            Slot::A => self.a.as_ref(),
            Slot::B => self.b.as_ref(),
        }
    }

    fn image_mut(&mut self, slot: Slot) -> &mut Option<SlotImage> {
        match slot {
            Slot::A => &mut self.a,
            Slot::B => &mut self.b,
        }
    }

    pub fn inactive(&self) -> Slot {
        self.active.other()
    }

    /// Records `image` as staged in the inactive slot (its file is complete and durable).
    pub fn staged(&self, image: SlotImage) -> Result<BootControl, SlotError> {
        if self.pending.is_some() {
            return Err(SlotError::UpdatePending);
        }
        let installed = self.installed_rollback_index.get(&image.kind);
        if installed.is_some_and(|installed| image.rollback_index < *installed) {
            return Err(SlotError::Downgrade);
        }
        let mut next = self.clone();
        *next.image_mut(self.inactive()) = Some(image);
        Ok(next)
    }

    /// Clears the inactive slot before its file is rewritten, so that a cut during the write
    /// never leaves a slot the state believes complete.
    pub fn clearing_inactive(&self) -> Result<BootControl, SlotError> {
        if self.pending.is_some() {
            return Err(SlotError::UpdatePending);
        }
        let mut next = self.clone();
        *next.image_mut(self.inactive()) = None;
        Ok(next)
    }

    /// The atomic switch: the next boot tries the staged slot once.
    pub fn switched(&self) -> Result<BootControl, SlotError> {
        if self.pending.is_some() {
            return Err(SlotError::UpdatePending);
        }
        if self.image(self.inactive()).is_none() {
            return Err(SlotError::NothingStaged);
        }
        let mut next = self.clone();
        next.pending = Some(Pending {
            slot: self.inactive(),
            tried: false,
        });
        Ok(next)
    }

    /// Boots: the state to persist *before* booting, and which slot boots.
    pub fn boot(&self) -> (BootControl, BootDecision) {
        let mut next = self.clone();
        match &self.pending {
            Some(Pending { slot, tried: false }) => {
                next.pending = Some(Pending {
                    slot: *slot,
                    tried: true,
                });
                (next, BootDecision::Trial(*slot))
            }
            Some(Pending { tried: true, .. }) => {
                next.pending = None;
                (next, BootDecision::RolledBack(self.active))
            }
            None => (next, BootDecision::Active(self.active)),
        }
    }

    /// Ends a trial boot: a healthy slot becomes active (and its rollback index the installed
    /// one); an unhealthy one is abandoned and the active slot stays.
    pub fn confirmed(&self, healthy: bool) -> Result<(BootControl, Confirmation), SlotError> {
        let Some(Pending { slot, tried: true }) = self.pending.clone() else {
            return Err(SlotError::NoTrial);
        };
        let mut next = self.clone();
        next.pending = None;
        if !healthy {
            return Ok((next, Confirmation::RolledBack(self.active)));
        }
        next.active = slot;
        if let Some(image) = self.image(slot) {
            let entry = next
                .installed_rollback_index
                .entry(image.kind.clone())
                .or_insert(image.rollback_index);
            *entry = (*entry).max(image.rollback_index);
        }
        Ok((next, Confirmation::Confirmed(slot)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(version: u64) -> SlotImage {
        SlotImage {
            target_name: format!("os/v{version}.img"),
            kind: "os-image".to_owned(),
            release_version: version.to_string(),
            rollback_index: version,
            sha256: format!("{version:064x}"),
            length: 1,
        }
    }

    #[test]
    fn an_update_goes_through_trial_to_confirmation() {
        let state = BootControl::provisioned(image(1));
        let staged = state.clearing_inactive().unwrap().staged(image(2)).unwrap();
        let switched = staged.switched().unwrap();
        let (trial, decision) = switched.boot();
        assert_eq!(decision, BootDecision::Trial(Slot::B));
        let (done, outcome) = trial.confirmed(true).unwrap();
        assert_eq!(outcome, Confirmation::Confirmed(Slot::B));
        assert_eq!(done.active, Slot::B);
        assert_eq!(done.installed_rollback_index["os-image"], 2);
        assert_eq!(done.boot().1, BootDecision::Active(Slot::B));
    }

    #[test]
    fn unhealthy_or_unconfirmed_trials_roll_back() {
        let state = BootControl::provisioned(image(1));
        let switched = state.staged(image(2)).unwrap().switched().unwrap();
        let (trial, _) = switched.boot();
        let (back, outcome) = trial.confirmed(false).unwrap();
        assert_eq!(outcome, Confirmation::RolledBack(Slot::A));
        assert_eq!(back.active, Slot::A);
        assert_eq!(back.installed_rollback_index["os-image"], 1);
        // A trial that never confirms rolls back at the next boot.
        let (again, decision) = trial.boot();
        assert_eq!(decision, BootDecision::RolledBack(Slot::A));
        assert_eq!(again.pending, None);
        assert_eq!(again.active, Slot::A);
    }

    #[test]
    fn refusals() {
        let state = BootControl::provisioned(image(5));
        assert_eq!(state.staged(image(4)), Err(SlotError::Downgrade));
        assert_eq!(state.switched(), Err(SlotError::NothingStaged));
        assert_eq!(state.confirmed(true), Err(SlotError::NoTrial));
        let switched = state.staged(image(6)).unwrap().switched().unwrap();
        assert_eq!(switched.staged(image(7)), Err(SlotError::UpdatePending));
        assert_eq!(switched.switched(), Err(SlotError::UpdatePending));
    }
}
