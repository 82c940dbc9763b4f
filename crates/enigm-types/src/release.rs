//! The life of an OTA release on Command.

use crate::vocabulary::vocabulary;

vocabulary! {
    /// Where a release stands. It moves only forward: `Draft` → `Approved` (a release-signing
    /// approval executed) → `Signed` (both authorities' signatures verified) → `Published` (in
    /// a snapshot and timestamp that devices fetch).
    #[derive(PartialOrd, Ord)]
    pub enum ReleaseState ("release state") {
        Draft => "draft",
        Approved => "approved",
        Signed => "signed",
        Published => "published",
        /// Published, then superseded by a later published release (same kind and channel,
        /// higher rollback index, covering its hardware): the targets metadata devices fetch
        /// no longer lists it. Command derives it when it answers; the stored state stays
        /// `Published`.
        Superseded => "superseded",
    }
}

/// A name that is not a release state's (or an install outcome's).
pub type UnknownReleaseState = crate::vocabulary::UnknownName;

vocabulary! {
    /// What a device reports after trying to install a release.
    pub enum InstallOutcome ("install outcome") {
        /// Accepted the offer and fetching the artifact: a step, not an outcome (the report of
        /// the install follows). Counted as the rollout's `downloading`.
        Downloading => "downloading",
        /// Installed, booted and confirmed healthy.
        Installed => "installed",
        /// Refused before anything was switched (a verification or eligibility failure).
        Rejected => "rejected",
        /// Switched, failed its health check (or never confirmed), and the device went back to
        /// the previous slot.
        RolledBack => "rolled-back",
    }
}

impl InstallOutcome {
    /// Whether the report says nothing went wrong (then it names no reason; a failure must).
    pub fn is_success(self) -> bool {
        matches!(
            self,
            InstallOutcome::Downloading | InstallOutcome::Installed
        )
    }
}

vocabulary! {
    /// The documents' release stages (enigm-docs §7, §20 D.28), in order. The first five are
    /// read from a release's signing state (`Draft` without its artifact is `Build`, with it
    /// `ArtifactPrepared`; `Approved` is `ManifestCreated`; `Signed`; `Published` is
    /// `Registered`); the last three are operator steps, one at a time and never skipped.
    /// Nothing is offered before `Validated`, nor to the whole population before `Stable`.
    #[derive(PartialOrd, Ord)]
    pub enum ReleaseStage ("release stage") {
        Build => "build",
        ArtifactPrepared => "artifact-prepared",
        ManifestCreated => "manifest-created",
        Signed => "signed",
        Registered => "registered",
        Validated => "validated",
        ControlledRollout => "controlled-rollout",
        Stable => "stable",
    }
}

vocabulary! {
    /// The documents' rollout models (enigm-docs §7, §20 D.29), each a preset of waves over the
    /// eligible devices.
    pub enum RolloutModel ("rollout model") {
        /// Never offered.
        Draft => "draft",
        /// Only the plan's validation groups.
        Validation => "validation",
        /// A small share of the fleet (1 %, then 10 %), and no further until stable.
        LimitedRollout => "limited-rollout",
        /// 10 %, 50 %, then every eligible device.
        StableRollout => "stable-rollout",
        /// Every eligible device at once; starting one needs a multi-admin approval.
        SecurityRollout => "security-rollout",
    }
}

vocabulary! {
    /// Whether a rollout makes new offers.
    pub enum RolloutStatus ("rollout status") {
        /// Offers go to the devices of the open waves.
        Active => "active",
        /// An operator paused it: no new offers until resumed.
        Paused => "paused",
        /// Failures in the current wave passed the plan's threshold: no new offers until an
        /// operator resumes it.
        Halted => "halted",
        /// Taken back for good: no new offers; devices that installed it keep it.
        Withdrawn => "withdrawn",
    }
}

vocabulary! {
    /// What one device did with a release it asked the director about, as the rollout's
    /// status counts it: its last step.
    pub enum RolloutDeviceState ("rollout device state") {
        /// The director offered it.
        Offered => "offered",
        /// The device said it is fetching the artifact.
        Downloading => "downloading",
        Installed => "installed",
        /// Refused on the device before anything switched (a verification failure).
        Failed => "failed",
        RolledBack => "rolled-back",
        /// It asked while its place was in reach and was not offered (the reason is audited).
        Refused => "refused",
    }
}
