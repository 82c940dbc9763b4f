//! The actions an administrator can ask Command to perform. Each API route names exactly one
//! permission; the Cedar policy set of the server decides which roles hold it.

use std::fmt;

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
pub enum Permission {
    #[serde(rename = "self.read")]
    SelfRead,
    #[serde(rename = "self.logout")]
    SelfLogout,
    #[serde(rename = "self.password")]
    SelfPasswordChange,
    #[serde(rename = "self.pin")]
    SelfPinSet,
    #[serde(rename = "self.totp")]
    SelfTotpManage,
    #[serde(rename = "self.sessions")]
    SelfSessionsManage,
    #[serde(rename = "users.list")]
    UsersList,
    #[serde(rename = "users.read")]
    UsersRead,
    #[serde(rename = "users.create")]
    UsersCreate,
    #[serde(rename = "users.disable")]
    UsersDisable,
    #[serde(rename = "users.pin-unlock")]
    UsersPinUnlock,
    /// Request the removal of another administrator's TOTP (executed once approved).
    #[serde(rename = "users.totp-reset")]
    UsersTotpReset,
    #[serde(rename = "roles.request-grant")]
    RolesRequestGrant,
    #[serde(rename = "roles.revoke")]
    RolesRevoke,
    #[serde(rename = "sessions.list")]
    SessionsList,
    #[serde(rename = "sessions.close")]
    SessionsClose,
    #[serde(rename = "approvals.list")]
    ApprovalsList,
    #[serde(rename = "approvals.decide")]
    ApprovalsDecide,
    #[serde(rename = "approval-rules.read")]
    ApprovalRulesRead,
    #[serde(rename = "approval-rules.request-change")]
    ApprovalRulesRequestChange,
    #[serde(rename = "audit.read")]
    AuditRead,
    #[serde(rename = "audit.legal-hold")]
    AuditLegalHold,
    #[serde(rename = "devices.read")]
    DevicesRead,
    #[serde(rename = "devices.enroll")]
    DevicesEnroll,
    /// Ask whether a device may do a protected action (the eligibility decision).
    #[serde(rename = "devices.decide")]
    DevicesDecide,
    /// Change a device's lifecycle (restrict; request revocation or reactivation).
    #[serde(rename = "devices.manage")]
    DevicesManage,
    /// Read releases, their signing state and the devices' install outcomes.
    #[serde(rename = "releases.read")]
    ReleasesRead,
    /// Create releases (upload artifacts, request signing) and publish signed ones.
    #[serde(rename = "releases.manage")]
    ReleasesManage,
    /// Hand Command the signatures of an approved release (the signing workstation's upload).
    #[serde(rename = "releases.sign")]
    ReleasesSign,
    /// Install a new version of the OTA repository's root metadata (keys and thresholds).
    #[serde(rename = "ota.root")]
    OtaRoot,
    /// Read policies, their versions, diffs and assignments.
    #[serde(rename = "policies.read")]
    PoliciesRead,
    /// Create policies, and request new versions and assignment changes (executed once
    /// approved).
    #[serde(rename = "policies.write")]
    PoliciesWrite,
}

impl Permission {
    pub const ALL: [Permission; 32] = [
        Permission::SelfRead,
        Permission::SelfLogout,
        Permission::SelfPasswordChange,
        Permission::SelfPinSet,
        Permission::SelfTotpManage,
        Permission::SelfSessionsManage,
        Permission::UsersList,
        Permission::UsersRead,
        Permission::UsersCreate,
        Permission::UsersDisable,
        Permission::UsersPinUnlock,
        Permission::UsersTotpReset,
        Permission::RolesRequestGrant,
        Permission::RolesRevoke,
        Permission::SessionsList,
        Permission::SessionsClose,
        Permission::ApprovalsList,
        Permission::ApprovalsDecide,
        Permission::ApprovalRulesRead,
        Permission::ApprovalRulesRequestChange,
        Permission::AuditRead,
        Permission::AuditLegalHold,
        Permission::DevicesRead,
        Permission::DevicesEnroll,
        Permission::DevicesDecide,
        Permission::DevicesManage,
        Permission::ReleasesRead,
        Permission::ReleasesManage,
        Permission::ReleasesSign,
        Permission::OtaRoot,
        Permission::PoliciesRead,
        Permission::PoliciesWrite,
    ];

    /// The stable name, also the Cedar action id (`Enigm::Action::"users.create"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Permission::SelfRead => "self.read",
            Permission::SelfLogout => "self.logout",
            Permission::SelfPasswordChange => "self.password",
            Permission::SelfPinSet => "self.pin",
            Permission::SelfTotpManage => "self.totp",
            Permission::SelfSessionsManage => "self.sessions",
            Permission::UsersList => "users.list",
            Permission::UsersRead => "users.read",
            Permission::UsersCreate => "users.create",
            Permission::UsersDisable => "users.disable",
            Permission::UsersPinUnlock => "users.pin-unlock",
            Permission::UsersTotpReset => "users.totp-reset",
            Permission::RolesRequestGrant => "roles.request-grant",
            Permission::RolesRevoke => "roles.revoke",
            Permission::SessionsList => "sessions.list",
            Permission::SessionsClose => "sessions.close",
            Permission::ApprovalsList => "approvals.list",
            Permission::ApprovalsDecide => "approvals.decide",
            Permission::ApprovalRulesRead => "approval-rules.read",
            Permission::ApprovalRulesRequestChange => "approval-rules.request-change",
            Permission::AuditRead => "audit.read",
            Permission::AuditLegalHold => "audit.legal-hold",
            Permission::DevicesRead => "devices.read",
            Permission::DevicesEnroll => "devices.enroll",
            Permission::DevicesDecide => "devices.decide",
            Permission::DevicesManage => "devices.manage",
            Permission::ReleasesRead => "releases.read",
            Permission::ReleasesManage => "releases.manage",
            Permission::ReleasesSign => "releases.sign",
            Permission::OtaRoot => "ota.root",
            Permission::PoliciesRead => "policies.read",
            Permission::PoliciesWrite => "policies.write",
        }
    }

    /// Whether the action only reads system state. Self-service credential actions (own
    /// password, PIN, TOTP, sessions) change the caller's own account and are not read-only.
    pub const fn is_read_only(self) -> bool {
        matches!(
            self,
            Permission::SelfRead
                | Permission::UsersList
                | Permission::UsersRead
                | Permission::SessionsList
                | Permission::ApprovalsList
                | Permission::ApprovalRulesRead
                | Permission::AuditRead
                | Permission::DevicesRead
                | Permission::ReleasesRead
                | Permission::PoliciesRead
        )
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_match_serde() {
        let mut names: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
        for permission in Permission::ALL {
            let json = serde_json::to_string(&permission).unwrap();
            assert_eq!(json, format!("\"{}\"", permission.as_str()));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Permission::ALL.len());
    }
}
