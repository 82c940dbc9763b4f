//! Administrative roles of Enigm Command. What each role may do is decided by the Cedar policy
//! set of the server; this module only names the roles.

use crate::vocabulary::vocabulary;

vocabulary! {
    /// An administrative role.
    #[derive(PartialOrd, Ord)]
    pub enum Role ("role") {
        /// Full administration, and the only role that may grant roles.
        Owner => "owner",
        /// Security operations and approvals.
        SecurityAdmin => "security-admin",
        /// Device lifecycle operations.
        DeviceOperator => "device-operator",
        /// OTA release management.
        ReleaseManager => "release-manager",
        /// Threat intelligence review.
        IntelAnalyst => "intel-analyst",
        /// Read-only access, including the audit log.
        Auditor => "auditor",
    }
}

/// A name that is not a role's.
pub type UnknownRole = crate::vocabulary::UnknownName;

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
