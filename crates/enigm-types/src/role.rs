//! Administrative roles of Enigm Command. What each role may do is decided by the Cedar policy
//! set of the server; this module only names the roles.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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
pub enum Role {
    /// Full administration, and the only role that may grant roles.
    Owner,
    /// Security operations and approvals.
    SecurityAdmin,
    /// Device lifecycle operations.
    DeviceOperator,
    /// OTA release management.
    ReleaseManager,
    /// Threat intelligence review.
    IntelAnalyst,
    /// Read-only access, including the audit log.
    Auditor,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`")]
pub struct UnknownRole(String);

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Owner,
        Role::SecurityAdmin,
        Role::DeviceOperator,
        Role::ReleaseManager,
        Role::IntelAnalyst,
        Role::Auditor,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::SecurityAdmin => "security-admin",
            Role::DeviceOperator => "device-operator",
            Role::ReleaseManager => "release-manager",
            Role::IntelAnalyst => "intel-analyst",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == input)
            .ok_or_else(|| UnknownRole(input.chars().take(64).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_round_trips_through_text_and_json() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
            assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }
}
