//! Multi-admin approvals: the sensitive actions that need a second administrator, the rules that
//! say how many and who, and the justification that goes with a request.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::device::DeviceHandle;
use crate::ids::{AdminId, PolicyId, ReleaseId};
use crate::policy::{GroupName, PolicyKind};
use crate::release::ReleaseStage;
use crate::role::Role;

/// The kinds of sensitive action that go through an approval. Later capabilities (device
/// revocation and wipe, release promotion, signing, policy and blocking changes) add kinds here.
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
pub enum ApprovalKind {
    RoleGrant,
    ApprovalRuleChange,
    /// Revoking, reactivating or wiping a device.
    DeviceLifecycle,
    /// Signing an OTA release (enigm-docs §8: signing needs an approved request).
    ReleaseSigning,
    /// Removing another administrator's TOTP second factor (lost or seized).
    TotpReset,
    /// A new version of a policy, or a change of which policy version device groups follow.
    PolicyChange,
    /// A rollout step that widens a release's reach past its waves: promotion to stable, or a
    /// security rollout (every eligible device at once).
    ReleaseRollout,
}

impl ApprovalKind {
    pub const ALL: [ApprovalKind; 7] = [
        ApprovalKind::RoleGrant,
        ApprovalKind::ApprovalRuleChange,
        ApprovalKind::DeviceLifecycle,
        ApprovalKind::ReleaseSigning,
        ApprovalKind::TotpReset,
        ApprovalKind::PolicyChange,
        ApprovalKind::ReleaseRollout,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ApprovalKind::RoleGrant => "role-grant",
            ApprovalKind::ApprovalRuleChange => "approval-rule-change",
            ApprovalKind::DeviceLifecycle => "device-lifecycle",
            ApprovalKind::ReleaseSigning => "release-signing",
            ApprovalKind::TotpReset => "totp-reset",
            ApprovalKind::PolicyChange => "policy-change",
            ApprovalKind::ReleaseRollout => "release-rollout",
        }
    }
}

impl fmt::Display for ApprovalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown approval kind `{0}`")]
pub struct UnknownApprovalKind(String);

impl FromStr for ApprovalKind {
    type Err = UnknownApprovalKind;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        ApprovalKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == input)
            .ok_or_else(|| UnknownApprovalKind(input.chars().take(64).collect()))
    }
}

/// What executes once a request is approved. Typed, so that an approved request can only ever do
/// the one thing that was approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ApprovalAction {
    RoleGrant {
        admin: AdminId,
        role: Role,
    },
    ApprovalRuleChange {
        target_kind: ApprovalKind,
        rule: ApprovalRule,
    },
    /// A lifecycle change of a device that needs a second administrator.
    DeviceLifecycle {
        device: DeviceHandle,
        change: GuardedDeviceChange,
    },
    /// Permission to sign one release: its signatures are accepted only once this executed.
    ReleaseSigning {
        release: ReleaseId,
    },
    /// Remove the TOTP second factor of `admin`, who may then log in with the password alone
    /// and enroll a new one; their open sessions are closed.
    TotpReset {
        admin: AdminId,
    },
    /// Make a proposed version of `policy` its next numbered version. The content waits in
    /// Command's store as the proposal `proposal` with this digest; what is approved is exactly
    /// that content.
    PolicyVersionCreate {
        policy: PolicyId,
        policy_kind: PolicyKind,
        proposal: PolicyProposalRef,
    },
    /// Make `groups` follow `version` of `policy` (pinned: a later version changes nothing
    /// until it is assigned in turn).
    PolicyAssign {
        policy: PolicyId,
        policy_kind: PolicyKind,
        version: u32,
        groups: Vec<GroupName>,
    },
    /// Remove the assignments of `policy` from `groups`: their devices fall back to the policy
    /// they enrolled with.
    PolicyUnassign {
        policy: PolicyId,
        policy_kind: PolicyKind,
        groups: Vec<GroupName>,
    },
    /// Take `release` to the rollout stage `to` (stable, or a security rollout's start); the
    /// step is checked again when the approval executes.
    ReleaseStage {
        release: ReleaseId,
        to: ReleaseStage,
    },
}

/// The proposed content of a policy version an approval would number: the proposal's id and
/// the SHA-256 of its canonical JSON (lower-case hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyProposalRef {
    pub id: uuid::Uuid,
    pub digest: String,
}

/// The device lifecycle changes that go through a multi-admin approval (enigm-docs §20 B and the
/// threat model's "device lifecycle abuse").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GuardedDeviceChange {
    Revoke,
    Reactivate,
    /// Issue a remote wipe (two-phase: done when the device acknowledges).
    Wipe,
}

impl ApprovalAction {
    pub const fn kind(&self) -> ApprovalKind {
        match self {
            ApprovalAction::RoleGrant { .. } => ApprovalKind::RoleGrant,
            ApprovalAction::ApprovalRuleChange { .. } => ApprovalKind::ApprovalRuleChange,
            ApprovalAction::DeviceLifecycle { .. } => ApprovalKind::DeviceLifecycle,
            ApprovalAction::ReleaseSigning { .. } => ApprovalKind::ReleaseSigning,
            ApprovalAction::TotpReset { .. } => ApprovalKind::TotpReset,
            ApprovalAction::PolicyVersionCreate { .. }
            | ApprovalAction::PolicyAssign { .. }
            | ApprovalAction::PolicyUnassign { .. } => ApprovalKind::PolicyChange,
            ApprovalAction::ReleaseStage { .. } => ApprovalKind::ReleaseRollout,
        }
    }

    /// The administrator the action is about, if any: they may not approve it themselves.
    pub const fn subject(&self) -> Option<AdminId> {
        match self {
            ApprovalAction::RoleGrant { admin, .. } | ApprovalAction::TotpReset { admin } => {
                Some(*admin)
            }
            ApprovalAction::ApprovalRuleChange { .. }
            | ApprovalAction::DeviceLifecycle { .. }
            | ApprovalAction::ReleaseSigning { .. }
            | ApprovalAction::PolicyVersionCreate { .. }
            | ApprovalAction::PolicyAssign { .. }
            | ApprovalAction::PolicyUnassign { .. }
            | ApprovalAction::ReleaseStage { .. } => None,
        }
    }
}

/// How many distinct approvers a kind of request needs, and which roles may approve it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "RawApprovalRule", into = "RawApprovalRule")]
pub struct ApprovalRule {
    required_approvals: u8,
    approver_roles: Vec<Role>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalRuleError {
    #[error("required approvals must be between 1 and {max}")]
    RequiredApprovals { max: u8 },
    #[error("at least one approver role is needed")]
    NoApproverRoles,
}

impl ApprovalRule {
    pub const MAX_REQUIRED_APPROVALS: u8 = 5;

    pub fn new(
        required_approvals: u8,
        approver_roles: Vec<Role>,
    ) -> Result<Self, ApprovalRuleError> {
        if !(1..=Self::MAX_REQUIRED_APPROVALS).contains(&required_approvals) {
            return Err(ApprovalRuleError::RequiredApprovals {
                max: Self::MAX_REQUIRED_APPROVALS,
            });
        }
        let mut approver_roles = approver_roles;
        approver_roles.sort_unstable();
        approver_roles.dedup();
        if approver_roles.is_empty() {
            return Err(ApprovalRuleError::NoApproverRoles);
        }
        Ok(ApprovalRule {
            required_approvals,
            approver_roles,
        })
    }

    /// The rule a fresh installation starts with: one approver, an owner or a security admin,
    /// for every kind. Approval rules themselves need an owner. Only roles that hold `approvals.decide` may be named (Command checks
    /// this for every rule, the defaults included): a release manager prepares a release but
    /// does not approve its signing.
    pub fn default_for(kind: ApprovalKind) -> Self {
        let approver_roles = match kind {
            ApprovalKind::ApprovalRuleChange => vec![Role::Owner],
            // A TOTP reset is requested by an owner (`users.totp-reset`) and approved by another
            // owner or a security admin: neither the requester nor the account it concerns.
            ApprovalKind::RoleGrant
            | ApprovalKind::DeviceLifecycle
            | ApprovalKind::ReleaseSigning
            | ApprovalKind::TotpReset
            | ApprovalKind::PolicyChange
            | ApprovalKind::ReleaseRollout => vec![Role::Owner, Role::SecurityAdmin],
        };
        ApprovalRule {
            required_approvals: 1,
            approver_roles,
        }
    }

    pub const fn required_approvals(&self) -> u8 {
        self.required_approvals
    }

    pub fn approver_roles(&self) -> &[Role] {
        &self.approver_roles
    }

    pub fn may_approve(&self, roles: &[Role]) -> bool {
        roles.iter().any(|role| self.approver_roles.contains(role))
    }
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RawApprovalRule {
    required_approvals: u8,
    approver_roles: Vec<Role>,
}

impl TryFrom<RawApprovalRule> for ApprovalRule {
    type Error = ApprovalRuleError;

    fn try_from(raw: RawApprovalRule) -> Result<Self, Self::Error> {
        ApprovalRule::new(raw.required_approvals, raw.approver_roles)
    }
}

impl From<ApprovalRule> for RawApprovalRule {
    fn from(rule: ApprovalRule) -> Self {
        RawApprovalRule {
            required_approvals: rule.required_approvals,
            approver_roles: rule.approver_roles,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ApprovalState {
    Pending,
    Executed,
    Rejected,
    Expired,
}

impl ApprovalState {
    pub const ALL: [ApprovalState; 4] = [
        ApprovalState::Pending,
        ApprovalState::Executed,
        ApprovalState::Rejected,
        ApprovalState::Expired,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Executed => "executed",
            ApprovalState::Rejected => "rejected",
            ApprovalState::Expired => "expired",
        }
    }
}

impl FromStr for ApprovalState {
    type Err = UnknownApprovalKind;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        ApprovalState::ALL
            .into_iter()
            .find(|state| state.as_str() == input)
            .ok_or_else(|| UnknownApprovalKind(input.chars().take(64).collect()))
    }
}

/// Why a request is made: written by an administrator for the approvers, stored with the
/// request, never copied into audit events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Justification(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JustificationError {
    #[error("justification must be 1 to {max} characters")]
    Length { max: usize },
    #[error("justification must not contain control characters")]
    ControlCharacters,
}

impl Justification {
    pub const MAX_CHARS: usize = 1000;

    /// The bound and the character rule apply to the text as sent (the OpenAPI document states
    /// them so); the surrounding white space is trimmed off what is stored.
    pub fn parse(input: &str) -> Result<Self, JustificationError> {
        let trimmed = input.trim();
        if trimmed.is_empty() || input.chars().count() > Self::MAX_CHARS {
            return Err(JustificationError::Length {
                max: Self::MAX_CHARS,
            });
        }
        if input.chars().any(|c| c.is_control() && c != '\n') {
            return Err(JustificationError::ControlCharacters);
        }
        Ok(Justification(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Justification {
    type Error = JustificationError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Justification::parse(&value)
    }
}

impl From<Justification> for String {
    fn from(value: Justification) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_bounded_and_normalised() {
        assert_eq!(
            ApprovalRule::new(0, vec![Role::Owner]),
            Err(ApprovalRuleError::RequiredApprovals { max: 5 })
        );
        assert_eq!(
            ApprovalRule::new(6, vec![Role::Owner]),
            Err(ApprovalRuleError::RequiredApprovals { max: 5 })
        );
        assert_eq!(
            ApprovalRule::new(1, vec![]),
            Err(ApprovalRuleError::NoApproverRoles)
        );
        let rule =
            ApprovalRule::new(2, vec![Role::SecurityAdmin, Role::Owner, Role::Owner]).unwrap();
        assert_eq!(rule.approver_roles(), &[Role::Owner, Role::SecurityAdmin]);
        assert!(rule.may_approve(&[Role::Auditor, Role::SecurityAdmin]));
        assert!(!rule.may_approve(&[Role::Auditor]));
    }

    #[test]
    fn rule_json_is_validated_on_the_way_in() {
        let bad = r#"{"required_approvals":9,"approver_roles":["owner"]}"#;
        assert!(serde_json::from_str::<ApprovalRule>(bad).is_err());
        let unknown = r#"{"required_approvals":1,"approver_roles":["owner"],"extra":1}"#;
        assert!(serde_json::from_str::<ApprovalRule>(unknown).is_err());
        let good = r#"{"required_approvals":2,"approver_roles":["owner"]}"#;
        assert_eq!(
            serde_json::from_str::<ApprovalRule>(good)
                .unwrap()
                .required_approvals(),
            2
        );
    }

    #[test]
    fn actions_round_trip_as_tagged_json() {
        let action = ApprovalAction::RoleGrant {
            admin: AdminId::random(),
            role: Role::Auditor,
        };
        let json = serde_json::to_string(&action).unwrap();
        assert!(json.contains(r#""kind":"role-grant""#));
        assert_eq!(
            serde_json::from_str::<ApprovalAction>(&json).unwrap(),
            action
        );
        assert_eq!(action.kind(), ApprovalKind::RoleGrant);
    }

    #[test]
    fn justifications_are_bounded() {
        assert!(Justification::parse("   ").is_err());
        assert!(Justification::parse(&"x".repeat(1001)).is_err());
        assert!(Justification::parse("needs\u{0007}bell").is_err());
        assert!(Justification::parse(&format!("{} ", "x".repeat(1000))).is_err());
        assert!(Justification::parse("\ton call").is_err());
        assert_eq!(
            Justification::parse("  on-call rotation\n ")
                .unwrap()
                .as_str(),
            "on-call rotation"
        );
    }
}
