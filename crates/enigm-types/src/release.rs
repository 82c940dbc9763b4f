//! The life of an OTA release on Command.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a release stands. It moves only forward: `Draft` → `Approved` (a release-signing
/// approval executed) → `Signed` (both authorities' signatures verified) → `Published` (in a
/// snapshot and timestamp that devices fetch).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseState {
    Draft,
    Approved,
    Signed,
    Published,
}

impl ReleaseState {
    pub const ALL: [ReleaseState; 4] = [
        ReleaseState::Draft,
        ReleaseState::Approved,
        ReleaseState::Signed,
        ReleaseState::Published,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ReleaseState::Draft => "draft",
            ReleaseState::Approved => "approved",
            ReleaseState::Signed => "signed",
            ReleaseState::Published => "published",
        }
    }
}

impl fmt::Display for ReleaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown release state `{0}`")]
pub struct UnknownReleaseState(String);

impl FromStr for ReleaseState {
    type Err = UnknownReleaseState;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        ReleaseState::ALL
            .into_iter()
            .find(|state| state.as_str() == input)
            .ok_or_else(|| UnknownReleaseState(input.chars().take(64).collect()))
    }
}

/// What a device reports after trying to install a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum InstallOutcome {
    /// Installed, booted and confirmed healthy.
    Installed,
    /// Refused before anything was switched (a verification or eligibility failure).
    Rejected,
    /// Switched, failed its health check (or never confirmed), and the device went back to the
    /// previous slot.
    RolledBack,
}

impl InstallOutcome {
    pub const ALL: [InstallOutcome; 3] = [
        InstallOutcome::Installed,
        InstallOutcome::Rejected,
        InstallOutcome::RolledBack,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            InstallOutcome::Installed => "installed",
            InstallOutcome::Rejected => "rejected",
            InstallOutcome::RolledBack => "rolled-back",
        }
    }
}

impl FromStr for InstallOutcome {
    type Err = UnknownReleaseState;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        InstallOutcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == input)
            .ok_or_else(|| UnknownReleaseState(input.chars().take(64).collect()))
    }
}
