//! Policies as Command objects (migration `0014_policies.sql`): named policies of one kind,
//! their versions (proposed, then numbered once an approval makes them a version, immutable
//! after that: triggers refuse changing or deleting a numbered one), and the assignments of a
//! pinned version to device groups, one per kind and group.
//!
//! The content is JSON the server encodes and validates (`enigm-trust`'s and `enigm-attest`'s
//! types, above this crate); the store keeps its canonical text and digest.

use enigm_types::{AdminId, ApprovalId, GroupName, PolicyId, PolicyKind, Timestamp};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Backend, Store, StoreError, StoreResult, WriteTx, json_text, name_column, parse_id};

/// A named policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    pub id: PolicyId,
    pub name: String,
    pub kind: PolicyKind,
    pub created_by: AdminId,
    pub created_at: Timestamp,
    /// The highest numbered version, if any.
    pub latest_version: Option<u32>,
}

/// One numbered version of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersionRecord {
    pub policy: PolicyId,
    pub version: u32,
    /// Canonical pretty JSON.
    pub content: String,
    /// SHA-256 of `content`, lower-case hex.
    pub digest: String,
    pub proposed_by: AdminId,
    pub proposed_at: Timestamp,
    pub approved_at: Timestamp,
    pub approval: Option<ApprovalId>,
}

/// A proposed version waiting for its approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyProposalRecord {
    pub id: uuid::Uuid,
    pub policy: PolicyId,
    pub digest: String,
    /// Its number once approved.
    pub version: Option<u32>,
}

/// One group following one version of one policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyAssignmentRecord {
    pub kind: PolicyKind,
    pub group: GroupName,
    pub policy: PolicyId,
    pub policy_name: String,
    pub version: u32,
    pub assigned_at: Timestamp,
    pub approval: ApprovalId,
}

/// The version a group is assigned for one kind, with its content (what its devices are
/// evaluated under).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignedPolicy {
    pub kind: PolicyKind,
    pub policy: PolicyId,
    pub policy_name: String,
    pub version: u32,
    pub content: String,
}

pub struct NewPolicy {
    pub id: PolicyId,
    pub name: String,
    pub kind: PolicyKind,
    pub created_by: AdminId,
    pub created_at: Timestamp,
}

pub struct NewPolicyProposal {
    pub id: uuid::Uuid,
    pub policy: PolicyId,
    pub content: String,
    pub digest: String,
    pub proposed_by: AdminId,
    pub proposed_at: Timestamp,
}

const POLICY_COLUMNS: &str = "p.id, p.name, p.kind, p.created_by, p.created_at, \
     (SELECT MAX(v.version) FROM policy_versions v WHERE v.policy_id = p.id) AS latest_version";

const VERSION_COLUMNS: &str = "policy_id, version, content, digest, proposed_by, proposed_at, \
     approved_at, approval";

const ASSIGNMENT_COLUMNS: &str = "a.kind, a.group_name, a.policy_id, p.name AS policy_name, \
     a.version, a.assigned_at, a.approval";

impl Store {
    /// Every policy, by name.
    pub async fn policies(&self) -> StoreResult<Vec<PolicyRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {POLICY_COLUMNS} FROM policies p ORDER BY p.name"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(policy_from_row).collect()
    }

    pub async fn policy(&self, id: PolicyId) -> StoreResult<Option<PolicyRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {POLICY_COLUMNS} FROM policies p WHERE p.id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(policy_from_row).transpose()
    }

    pub async fn policy_by_name(&self, name: &str) -> StoreResult<Option<PolicyRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {POLICY_COLUMNS} FROM policies p WHERE p.name = $1"
        ))
        .bind(name.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(policy_from_row).transpose()
    }

    /// A numbered version of a policy.
    pub async fn policy_version(
        &self,
        policy: PolicyId,
        version: u32,
    ) -> StoreResult<Option<PolicyVersionRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM policy_versions WHERE policy_id = $1 AND version = $2"
        ))
        .bind(policy.to_string())
        .bind(i64::from(version))
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(version_from_row).transpose()
    }

    /// Every numbered version of a policy, oldest first.
    pub async fn policy_versions(&self, policy: PolicyId) -> StoreResult<Vec<PolicyVersionRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM policy_versions \
             WHERE policy_id = $1 AND version IS NOT NULL ORDER BY version"
        ))
        .bind(policy.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(version_from_row).collect()
    }

    /// A proposal (numbered or not).
    pub async fn policy_proposal(
        &self,
        id: uuid::Uuid,
    ) -> StoreResult<Option<PolicyProposalRecord>> {
        let row =
            sqlx::query("SELECT id, policy_id, digest, version FROM policy_versions WHERE id = $1")
                .bind(id.hyphenated().to_string())
                .fetch_optional(self.pool())
                .await?;
        row.as_ref()
            .map(|row| {
                Ok(PolicyProposalRecord {
                    id: parse_id(&row.try_get::<String, _>("id")?, "policy proposal id")?,
                    policy: parse_id(&row.try_get::<String, _>("policy_id")?, "policy id")?,
                    digest: row.try_get("digest")?,
                    version: version_column(row.try_get("version")?)?,
                })
            })
            .transpose()
    }

    /// The assignments, by kind and group; only those of `policy` when given.
    pub async fn policy_assignments(
        &self,
        policy: Option<PolicyId>,
    ) -> StoreResult<Vec<PolicyAssignmentRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {ASSIGNMENT_COLUMNS} FROM policy_assignments a \
             JOIN policies p ON p.id = a.policy_id \
             WHERE $1 = '' OR a.policy_id = $1 ORDER BY a.kind, a.group_name"
        ))
        .bind(policy.map(|id| id.to_string()).unwrap_or_default())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(assignment_from_row).collect()
    }

    /// What `group` is assigned, per kind, with the content of each assigned version.
    pub async fn group_policies(&self, group: &str) -> StoreResult<Vec<AssignedPolicy>> {
        let rows = sqlx::query(GROUP_POLICIES_SQL)
            .bind(group.to_owned())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(assigned_from_row).collect()
    }
}

/// A group's policy assignments with each assigned version's content, by kind.
const GROUP_POLICIES_SQL: &str = "SELECT a.kind, a.policy_id, p.name AS policy_name, a.version, v.content \
     FROM policy_assignments a JOIN policies p ON p.id = a.policy_id \
     JOIN policy_versions v ON v.policy_id = a.policy_id AND v.version = a.version \
     WHERE a.group_name = $1 ORDER BY a.kind";

fn assigned_from_row(row: &AnyRow) -> StoreResult<AssignedPolicy> {
    Ok(AssignedPolicy {
        kind: name_column(row, "kind", "policy kind")?,
        policy: parse_id(&row.try_get::<String, _>("policy_id")?, "policy id")?,
        policy_name: row.try_get("policy_name")?,
        version: version_column(row.try_get("version")?)?
            .ok_or(StoreError::Corrupt("policy assignment version"))?,
        content: row.try_get("content")?,
    })
}

impl WriteTx<'_> {
    /// [`Store::group_policies`] inside the transaction: a request that holds a transaction
    /// never waits for a second connection (under load, every connection could be held by such
    /// requests, each waiting for another).
    pub async fn group_policies(&mut self, group: &str) -> StoreResult<Vec<AssignedPolicy>> {
        let rows = sqlx::query(GROUP_POLICIES_SQL)
            .bind(group.to_owned())
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(assigned_from_row).collect()
    }

    /// Creates a named policy; [`StoreError::Conflict`] when the name is taken.
    pub async fn insert_policy(&mut self, policy: &NewPolicy) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO policies (id, name, kind, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(policy.id.to_string())
        .bind(policy.name.clone())
        .bind(policy.kind.as_str())
        .bind(policy.created_by.to_string())
        .bind(policy.created_at.unix_millis())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Keeps a proposed version until its approval numbers it (or it is never approved).
    pub async fn insert_policy_proposal(
        &mut self,
        proposal: &NewPolicyProposal,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO policy_versions (id, policy_id, version, content, digest, proposed_by, \
             proposed_at) VALUES ($1, $2, NULL, $3, $4, $5, $6)",
        )
        .bind(proposal.id.hyphenated().to_string())
        .bind(proposal.policy.to_string())
        .bind(proposal.content.clone())
        .bind(proposal.digest.clone())
        .bind(proposal.proposed_by.to_string())
        .bind(proposal.proposed_at.unix_millis())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Numbers an approved proposal as the policy's next version, if it is still unnumbered and
    /// has this digest; returns the number. The policy row is locked first (PostgreSQL; the
    /// write gate on SQLite), so two approvals of one policy's proposals number one after the
    /// other.
    pub async fn number_policy_proposal(
        &mut self,
        policy: PolicyId,
        proposal: uuid::Uuid,
        digest: &str,
        approval: ApprovalId,
        now: Timestamp,
    ) -> StoreResult<Option<u32>> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT id FROM policies WHERE id = $1 FOR UPDATE")
                .bind(policy.to_string())
                .fetch_optional(self.conn())
                .await?;
        }
        let row = sqlx::query(
            "UPDATE policy_versions SET version = \
             (SELECT COALESCE(MAX(version), 0) + 1 FROM policy_versions WHERE policy_id = $2), \
             approved_at = $4, approval = $5 \
             WHERE id = $1 AND policy_id = $2 AND digest = $3 AND version IS NULL \
             RETURNING version",
        )
        .bind(proposal.hyphenated().to_string())
        .bind(policy.to_string())
        .bind(digest.to_owned())
        .bind(now.unix_millis())
        .bind(approval.to_string())
        .fetch_optional(self.conn())
        .await?;
        match row {
            Some(row) => version_column(row.try_get("version")?),
            None => Ok(None),
        }
    }

    /// Whether `policy` has a numbered `version` (read in this transaction).
    pub async fn policy_version_exists(
        &mut self,
        policy: PolicyId,
        version: u32,
    ) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT 1 AS one FROM policy_versions WHERE policy_id = $1 AND version = $2",
        )
        .bind(policy.to_string())
        .bind(i64::from(version))
        .fetch_optional(self.conn())
        .await?;
        Ok(row.is_some())
    }

    /// Makes each group follow `version` of `policy` for its kind (replacing what it followed).
    pub async fn assign_policy(
        &mut self,
        kind: PolicyKind,
        policy: PolicyId,
        version: u32,
        groups: &[GroupName],
        approval: ApprovalId,
        now: Timestamp,
    ) -> StoreResult<()> {
        for group in groups {
            sqlx::query(
                "INSERT INTO policy_assignments (kind, group_name, policy_id, version, \
                 assigned_at, approval) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (kind, group_name) DO UPDATE SET policy_id = excluded.policy_id, \
                 version = excluded.version, assigned_at = excluded.assigned_at, \
                 approval = excluded.approval",
            )
            .bind(kind.as_str())
            .bind(group.as_str().to_owned())
            .bind(policy.to_string())
            .bind(i64::from(version))
            .bind(now.unix_millis())
            .bind(approval.to_string())
            .execute(self.conn())
            .await?;
        }
        Ok(())
    }

    /// Removes the assignments of `policy` from `groups`; returns the groups that had one.
    pub async fn unassign_policy(
        &mut self,
        kind: PolicyKind,
        policy: PolicyId,
        groups: &[GroupName],
    ) -> StoreResult<Vec<GroupName>> {
        let mut removed = Vec::new();
        for group in groups {
            let done = sqlx::query(
                "DELETE FROM policy_assignments WHERE kind = $1 AND group_name = $2 \
                 AND policy_id = $3",
            )
            .bind(kind.as_str())
            .bind(group.as_str().to_owned())
            .bind(policy.to_string())
            .execute(self.conn())
            .await?;
            if done.rows_affected() > 0 {
                removed.push(*group);
            }
        }
        Ok(removed)
    }

    /// Marks every device of `groups` as evaluated under changed policies: each process's
    /// cached policies of those devices are stale from this commit on. Returns how many.
    pub async fn bump_policy_revision(&mut self, groups: &[GroupName]) -> StoreResult<u64> {
        let names: Vec<&str> = groups.iter().map(GroupName::as_str).collect();
        let sql = match self.backend {
            Backend::Sqlite => {
                "UPDATE devices SET policy_revision = policy_revision + 1 \
                 WHERE group_name IN (SELECT value FROM json_each($1))"
            }
            Backend::Postgres => {
                "UPDATE devices SET policy_revision = policy_revision + 1 \
                 WHERE group_name IN (SELECT json_array_elements_text($1::JSON))"
            }
        };
        let done = sqlx::query(sql)
            .bind(json_text(&names, "policy groups")?)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected())
    }
}

fn version_column(value: Option<i64>) -> StoreResult<Option<u32>> {
    value
        .map(|number| u32::try_from(number).map_err(|_| StoreError::Corrupt("policy version")))
        .transpose()
}

fn policy_from_row(row: &AnyRow) -> StoreResult<PolicyRecord> {
    Ok(PolicyRecord {
        id: parse_id(&row.try_get::<String, _>("id")?, "policy id")?,
        name: row.try_get("name")?,
        kind: name_column(row, "kind", "policy kind")?,
        created_by: parse_id(&row.try_get::<String, _>("created_by")?, "administrator id")?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
        latest_version: version_column(row.try_get("latest_version")?)?,
    })
}

fn version_from_row(row: &AnyRow) -> StoreResult<PolicyVersionRecord> {
    Ok(PolicyVersionRecord {
        policy: parse_id(&row.try_get::<String, _>("policy_id")?, "policy id")?,
        version: version_column(row.try_get("version")?)?
            .ok_or(StoreError::Corrupt("policy version"))?,
        content: row.try_get("content")?,
        digest: row.try_get("digest")?,
        proposed_by: parse_id(
            &row.try_get::<String, _>("proposed_by")?,
            "administrator id",
        )?,
        proposed_at: Timestamp::from_unix_millis(row.try_get("proposed_at")?),
        approved_at: Timestamp::from_unix_millis(
            row.try_get::<Option<i64>, _>("approved_at")?
                .ok_or(StoreError::Corrupt("policy version approval time"))?,
        ),
        approval: row
            .try_get::<Option<String>, _>("approval")?
            .map(|text| parse_id(&text, "approval id"))
            .transpose()?,
    })
}

fn assignment_from_row(row: &AnyRow) -> StoreResult<PolicyAssignmentRecord> {
    Ok(PolicyAssignmentRecord {
        kind: name_column(row, "kind", "policy kind")?,
        group: parse_id(&row.try_get::<String, _>("group_name")?, "group name")?,
        policy: parse_id(&row.try_get::<String, _>("policy_id")?, "policy id")?,
        policy_name: row.try_get("policy_name")?,
        version: version_column(row.try_get("version")?)?
            .ok_or(StoreError::Corrupt("policy assignment version"))?,
        assigned_at: Timestamp::from_unix_millis(row.try_get("assigned_at")?),
        approval: parse_id(&row.try_get::<String, _>("approval")?, "approval id")?,
    })
}
