//! Policy bundles (migration `0016_policy_bundles.sql`): each group's published bundles
//! (immutable: triggers refuse changing or deleting one), the per-group marker that drives
//! publishing (`wanted` counts changes, `published` the change last compiled), and the
//! sequence each device reports it enforces. The delegated role's metadata is an
//! [`crate::MetadataRole::PolicyBundles`] row of `ota_metadata`.

use enigm_types::{DeviceHandle, PolicyId, PolicyKind, Timestamp};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, StoreResult, WriteTx, name_column, parse_id};

/// One published bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyBundleRecord {
    pub group: String,
    pub sequence: u64,
    /// `policy-bundles/<group>/<sequence>.json`.
    pub target_name: String,
    /// SHA-256 of `body`, lower-case hex.
    pub sha256: String,
    pub length: u64,
    /// The bundle's canonical JSON, as listed.
    pub body: Vec<u8>,
    pub created_at: Timestamp,
}

/// A group whose bundle is to be (re)compiled: `wanted` is the marker value to record as
/// published once its bundle is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedBundle {
    pub group: String,
    pub wanted: u64,
}

/// One policy version a group is assigned, as its bundle lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundledVersion {
    pub kind: PolicyKind,
    pub policy: PolicyId,
    pub policy_name: String,
    pub version: u32,
    /// SHA-256 of `content`, lower-case hex.
    pub digest: String,
    /// Canonical pretty JSON.
    pub content: String,
}

const COLUMNS: &str = "group_name, sequence, target_name, sha256, length, body, created_at";

fn to_i64(value: u64) -> StoreResult<i64> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt("a number beyond the database's range"))
}

fn to_u64(value: i64, what: &'static str) -> StoreResult<u64> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(what))
}

fn bundle_from_row(row: &AnyRow) -> StoreResult<PolicyBundleRecord> {
    Ok(PolicyBundleRecord {
        group: row.try_get("group_name")?,
        sequence: to_u64(row.try_get("sequence")?, "bundle sequence")?,
        target_name: row.try_get("target_name")?,
        sha256: row.try_get("sha256")?,
        length: to_u64(row.try_get("length")?, "bundle length")?,
        body: row.try_get("body")?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
    })
}

/// The newest bundle of each group, by group.
const LATEST: &str = "SELECT b.group_name, b.sequence, b.target_name, b.sha256, b.length, \
     b.body, b.created_at FROM policy_bundles b \
     WHERE b.sequence = (SELECT MAX(c.sequence) FROM policy_bundles c \
     WHERE c.group_name = b.group_name)";

impl Store {
    /// The versions `group` is assigned, by kind, with their content and digest.
    pub async fn group_bundled_versions(&self, group: &str) -> StoreResult<Vec<BundledVersion>> {
        let rows = sqlx::query(
            "SELECT a.kind, a.policy_id, p.name AS policy_name, a.version, v.digest, v.content \
             FROM policy_assignments a JOIN policies p ON p.id = a.policy_id \
             JOIN policy_versions v ON v.policy_id = a.policy_id AND v.version = a.version \
             WHERE a.group_name = $1 ORDER BY a.kind",
        )
        .bind(group.to_owned())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(BundledVersion {
                    kind: name_column(row, "kind", "policy kind")?,
                    policy: parse_id(&row.try_get::<String, _>("policy_id")?, "policy id")?,
                    policy_name: row.try_get("policy_name")?,
                    version: u32::try_from(row.try_get::<i64, _>("version")?)
                        .map_err(|_| StoreError::Corrupt("policy version"))?,
                    digest: row.try_get("digest")?,
                    content: row.try_get("content")?,
                })
            })
            .collect()
    }

    /// The groups marked for a new bundle, by name.
    pub async fn wanted_policy_bundles(&self) -> StoreResult<Vec<WantedBundle>> {
        let rows = sqlx::query(
            "SELECT group_name, wanted FROM policy_bundle_groups WHERE wanted > published \
             ORDER BY group_name",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(WantedBundle {
                    group: row.try_get("group_name")?,
                    wanted: to_u64(row.try_get("wanted")?, "bundle marker")?,
                })
            })
            .collect()
    }

    /// The newest bundle of every group, by group name, after `after` (a group name), at
    /// most `limit`.
    pub async fn latest_policy_bundles(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<PolicyBundleRecord>> {
        let rows = sqlx::query(&format!(
            "{LATEST} AND b.group_name > $1 ORDER BY b.group_name LIMIT $2"
        ))
        .bind(after.unwrap_or_default().to_owned())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(bundle_from_row).collect()
    }

    /// The newest bundle of `group`.
    pub async fn latest_policy_bundle(
        &self,
        group: &str,
    ) -> StoreResult<Option<PolicyBundleRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM policy_bundles WHERE group_name = $1 \
             ORDER BY sequence DESC LIMIT 1"
        ))
        .bind(group.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(bundle_from_row).transpose()
    }

    /// The bundle served under `target_name` whose content has digest `sha256`.
    pub async fn policy_bundle_by_digest(
        &self,
        target_name: &str,
        sha256: &str,
    ) -> StoreResult<Option<PolicyBundleRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM policy_bundles WHERE target_name = $1 AND sha256 = $2"
        ))
        .bind(target_name.to_owned())
        .bind(sha256.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(bundle_from_row).transpose()
    }

    /// Every bundle, oldest first (for a static export).
    pub async fn all_policy_bundles(&self) -> StoreResult<Vec<PolicyBundleRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM policy_bundles ORDER BY group_name, sequence"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(bundle_from_row).collect()
    }

    /// The bundle sequence a device last reported it enforces.
    pub async fn device_policy_bundle(&self, handle: &DeviceHandle) -> StoreResult<Option<u64>> {
        let row = sqlx::query("SELECT policy_bundle FROM devices WHERE handle = $1")
            .bind(handle.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| {
            row.try_get::<Option<i64>, _>("policy_bundle")?
                .map(|value| to_u64(value, "device bundle"))
                .transpose()
        })
        .transpose()
        .map(Option::flatten)
    }

    /// Records the bundle sequence a device reports (unchanged rows are not written).
    pub async fn set_device_policy_bundle(
        &self,
        handle: &DeviceHandle,
        sequence: u64,
    ) -> StoreResult<()> {
        let sequence = to_i64(sequence)?;
        sqlx::query(
            "UPDATE devices SET policy_bundle = $2 WHERE handle = $1 \
             AND (policy_bundle IS NULL OR policy_bundle <> $2)",
        )
        .bind(handle.to_string())
        .bind(sequence)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

impl WriteTx<'_> {
    /// Marks `group` for a new bundle (a change of what its devices are under).
    pub async fn mark_policy_bundle_wanted(&mut self, group: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO policy_bundle_groups (group_name, wanted, published) VALUES ($1, 1, 0) \
             ON CONFLICT (group_name) DO UPDATE SET wanted = policy_bundle_groups.wanted + 1",
        )
        .bind(group.to_owned())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Marks `group` for its first bundle when it has never been marked (a group that appears
    /// with an enrollment token); a group already known keeps its marker.
    pub async fn mark_policy_bundle_known(&mut self, group: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO policy_bundle_groups (group_name, wanted, published) VALUES ($1, 1, 0) \
             ON CONFLICT (group_name) DO NOTHING",
        )
        .bind(group.to_owned())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Records that `group`'s bundle was compiled for marker `wanted` (a later mark stays
    /// pending).
    pub async fn mark_policy_bundle_published(
        &mut self,
        group: &str,
        wanted: u64,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE policy_bundle_groups SET published = $2 WHERE group_name = $1 \
             AND published < $2",
        )
        .bind(group.to_owned())
        .bind(to_i64(wanted)?)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// The next sequence of `group`'s bundles (1 for its first).
    pub async fn next_policy_bundle_sequence(&mut self, group: &str) -> StoreResult<u64> {
        let row = sqlx::query(
            "SELECT MAX(sequence) AS sequence FROM policy_bundles WHERE group_name = $1",
        )
        .bind(group.to_owned())
        .fetch_one(self.conn())
        .await?;
        let last = row
            .try_get::<Option<i64>, _>("sequence")?
            .map(|value| to_u64(value, "bundle sequence"))
            .transpose()?
            .unwrap_or(0);
        Ok(last.saturating_add(1))
    }

    /// Stores a bundle; an existing (group, sequence) is a conflict.
    pub async fn insert_policy_bundle(&mut self, bundle: &PolicyBundleRecord) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO policy_bundles ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(bundle.group.clone())
        .bind(to_i64(bundle.sequence)?)
        .bind(bundle.target_name.clone())
        .bind(bundle.sha256.clone())
        .bind(to_i64(bundle.length)?)
        .bind(bundle.body.clone())
        .bind(bundle.created_at.unix_millis())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// The newest bundle of every group (what the delegated role lists), by group.
    pub async fn latest_policy_bundles(&mut self) -> StoreResult<Vec<PolicyBundleRecord>> {
        let rows = sqlx::query(&format!("{LATEST} ORDER BY b.group_name"))
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(bundle_from_row).collect()
    }
}
