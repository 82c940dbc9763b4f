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
        /// Installed, booted and confirmed healthy.
        Installed => "installed",
        /// Refused before anything was switched (a verification or eligibility failure).
        Rejected => "rejected",
        /// Switched, failed its health check (or never confirmed), and the device went back to
        /// the previous slot.
        RolledBack => "rolled-back",
    }
}
