//! Policies as Command objects: named policies of a kind, their numbered versions, diffs
//! between versions and their assignments to device groups.
//!
//! Precedence (one effective policy per kind per device): the device group's assignment, else
//! the policy the device enrolled with (its enrollment token's), else the baseline. An
//! assignment pins one version; a new version changes no device until it is assigned. Creating
//! a version and changing an assignment answer 202 with the approval request another
//! administrator decides.

use enigm_types::{ApprovalId, GroupName, PolicyId, PolicyKind, PolicySource};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ApprovalView;

/// The most groups one assignment change names.
pub const MAX_GROUPS: usize = 100;

/// A policy name: 1 to 64 of `a-z 0-9 - _ .`, starting with a letter or digit.
pub fn is_policy_name(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .next()
            .is_some_and(|first| first.is_ascii_lowercase() || first.is_ascii_digit())
        && text.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"-_.".contains(&byte)
        })
}

/// Create a named policy (no version yet).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePolicyRequest {
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"
    )]
    pub name: String,
    #[schema(value_type = CreatablePolicyKind)]
    pub kind: PolicyKind,
}

/// The kinds a policy can be created with today. `configuration` is a reserved name of
/// [`PolicyKind`] that Command refuses (`policy_kind_not_supported`) until it is built; the
/// document lists only what it accepts.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code, reason = "a schema only: requests parse into `PolicyKind`")]
pub enum CreatablePolicyKind {
    Trust,
    Attestation,
    Network,
}

/// A named policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyView {
    pub id: PolicyId,
    pub name: String,
    pub kind: PolicyKind,
    /// The highest numbered version (absent before the first approved one).
    pub latest_version: Option<u32>,
    /// RFC 3339.
    pub created_at: String,
}

/// Policies, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyList {
    pub items: Vec<PolicyView>,
    /// Always absent: every policy is in one page.
    pub next_cursor: Option<String>,
}

/// A policy with its numbered versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyDetail {
    pub policy: PolicyView,
    pub versions: Vec<PolicyVersionSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyVersionSummary {
    pub version: u32,
    /// SHA-256 of the canonical content, lower-case hex.
    pub digest: String,
    /// RFC 3339: when the approval made it a version.
    pub approved_at: String,
}

/// Propose a new version; its content is checked by the parser of an enrollment token's
/// policy of that kind.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePolicyVersionRequest {
    /// The policy: an `enigm_trust::TrustPolicy` or an attestation policy, as JSON.
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
    /// Why, for the approvers.
    #[schema(min_length = 1, max_length = 1000)]
    pub justification: String,
}

/// One numbered version with its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyVersionView {
    pub policy: PolicyId,
    pub name: String,
    pub kind: PolicyKind,
    pub version: u32,
    pub digest: String,
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
    /// RFC 3339.
    pub approved_at: String,
    pub approval: Option<ApprovalId>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PolicyDiffQuery {
    #[param(minimum = 1)]
    pub from: u32,
    #[param(minimum = 1)]
    pub to: u32,
}

/// A line-oriented unified diff of two versions' canonical pretty JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyDiffView {
    pub policy: PolicyId,
    pub from: u32,
    pub to: u32,
    pub from_digest: String,
    pub to_digest: String,
    /// Unified diff (`---`/`+++` headers, `@@` hunks); empty when the versions are equal.
    pub diff: String,
}

/// Make device groups follow one version of the policy (pinned).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignPolicyRequest {
    #[schema(minimum = 1)]
    pub version: u32,
    /// 1 to 100 groups.
    #[schema(min_items = 1, max_items = 100)]
    pub groups: Vec<GroupName>,
    #[schema(min_length = 1, max_length = 1000)]
    pub justification: String,
}

/// Remove the policy's assignments from device groups.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnassignPolicyRequest {
    /// 1 to 100 groups.
    #[schema(min_items = 1, max_items = 100)]
    pub groups: Vec<GroupName>,
    #[schema(min_length = 1, max_length = 1000)]
    pub justification: String,
}

/// The approval request a policy change waits for (answered with 202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyChangeRequested {
    pub approval: ApprovalView,
}

/// One group following one version of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyAssignmentView {
    pub kind: PolicyKind,
    pub group: GroupName,
    pub policy: PolicyId,
    pub policy_name: String,
    pub version: u32,
    /// RFC 3339.
    pub assigned_at: String,
    pub approval: ApprovalId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyAssignmentList {
    pub items: Vec<PolicyAssignmentView>,
    /// Always absent: every assignment is in one page.
    pub next_cursor: Option<String>,
}

/// Which policy of one kind a device is evaluated under, and why that one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DevicePolicyView {
    pub kind: PolicyKind,
    pub source: PolicySource,
    /// The policy, version and name for a group assignment; absent for the enrollment policy
    /// and the baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PolicyAssignmentsQuery {
    /// Only this policy's assignments.
    #[serde(default)]
    pub policy: Option<PolicyId>,
}
