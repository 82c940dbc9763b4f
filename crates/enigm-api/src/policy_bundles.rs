//! Policy bundles as Command shows them: the newest bundle of each device group.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A group's newest policy bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyBundleSummary {
    pub group: String,
    /// The bundle's number within its group (its rollback index).
    pub sequence: u64,
    /// The TUF target, `policy-bundles/<group>/<sequence>.json`.
    pub target_name: String,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
    pub length: u64,
    /// RFC 3339.
    pub created_at: String,
}

/// The newest bundle of every group, by group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyBundleList {
    pub items: Vec<PolicyBundleSummary>,
    /// Always absent: every group is in one page.
    pub next_cursor: Option<String>,
    /// Why Command publishes no bundles now, with what to run (absent when it can).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}
