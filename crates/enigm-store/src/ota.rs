//! The OTA repository and releases (migration `0007_ota_releases.sql`).
//!
//! Metadata rows hold each role's signed JSON exactly as signed: the store never re-encodes
//! what a signature covers. Releases carry their declared length and digest (the artifact itself
//! lives in the data directory, by digest) and their state; devices' install reports keep the
//! outcome and a reason category per device and release, never more.

use enigm_types::{
    AdminId, ApprovalId, DeviceHandle, InstallOutcome, ReleaseId, ReleaseState, Timestamp,
};
use sqlx::Row as _;

use crate::{Store, StoreError, StoreResult, WriteTx, parse_id};

/// A TUF role whose metadata Command stores: the top-level ones and the delegated role of the
/// policy bundles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetadataRole {
    Root,
    Targets,
    Snapshot,
    Timestamp,
    /// The delegated targets role of the policy bundles, which Command signs.
    PolicyBundles,
}

impl MetadataRole {
    pub const ALL: [MetadataRole; 5] = [
        MetadataRole::Root,
        MetadataRole::Targets,
        MetadataRole::Snapshot,
        MetadataRole::Timestamp,
        MetadataRole::PolicyBundles,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            MetadataRole::Root => "root",
            MetadataRole::Targets => "targets",
            MetadataRole::Snapshot => "snapshot",
            MetadataRole::Timestamp => "timestamp",
            MetadataRole::PolicyBundles => "policy-bundles",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        MetadataRole::ALL
            .into_iter()
            .find(|role| role.as_str() == name)
    }
}

/// One stored metadata version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMetadata {
    pub role: MetadataRole,
    pub version: u64,
    /// The signed envelope, byte for byte as it was signed and verified.
    pub body: Vec<u8>,
    pub created_at: Timestamp,
}

/// A release as created; the rest of its row starts empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRelease {
    pub id: ReleaseId,
    pub target_name: String,
    /// `os-image`, `policy-bundle` or `configuration-bundle`.
    pub kind: String,
    pub release_version: String,
    pub rollback_index: u64,
    pub channel: String,
    /// Compatible device models, as a JSON array.
    pub models: String,
    pub length: u64,
    /// Lower-case hex.
    pub sha256: String,
    pub expires_at: Timestamp,
    pub created_by: AdminId,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRecord {
    pub release: NewRelease,
    pub state: ReleaseState,
    /// The release-signing approval request, once opened.
    pub approval: Option<ApprovalId>,
    /// Whether the artifact was uploaded and matched the declared length and digest.
    pub artifact_stored: bool,
    /// The targets metadata version that lists this release, once signed.
    pub targets_version: Option<u64>,
    pub signed_at: Option<Timestamp>,
    pub published_at: Option<Timestamp>,
}

/// How many devices reported each outcome for a release.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstallCounts {
    pub installed: u64,
    pub rejected: u64,
    pub rolled_back: u64,
}

const RELEASE_COLUMNS: &str = "id, target_name, kind, release_version, rollback_index, channel, \
     models, length, sha256, expires_at, state, approval, artifact_stored, targets_version, \
     created_by, created_at, signed_at, published_at";

fn to_i64(value: u64) -> StoreResult<i64> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt("a number beyond the database's range"))
}

fn to_u64(value: i64, what: &'static str) -> StoreResult<u64> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(what))
}

fn release_from_row(row: &sqlx::any::AnyRow) -> StoreResult<ReleaseRecord> {
    let state: String = row.try_get("state")?;
    let approval: Option<String> = row.try_get("approval")?;
    Ok(ReleaseRecord {
        release: NewRelease {
            id: parse_id(&row.try_get::<String, _>("id")?, "release id")?,
            target_name: row.try_get("target_name")?,
            kind: row.try_get("kind")?,
            release_version: row.try_get("release_version")?,
            rollback_index: to_u64(row.try_get("rollback_index")?, "rollback index")?,
            channel: row.try_get("channel")?,
            models: row.try_get("models")?,
            length: to_u64(row.try_get("length")?, "release length")?,
            sha256: row.try_get("sha256")?,
            expires_at: Timestamp::from_unix_millis(row.try_get("expires_at")?),
            created_by: parse_id(&row.try_get::<String, _>("created_by")?, "admin id")?,
            created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
        },
        state: state
            .parse()
            .map_err(|_| StoreError::Corrupt("release state"))?,
        approval: approval
            .map(|text| parse_id(&text, "approval id"))
            .transpose()?,
        artifact_stored: row.try_get::<i64, _>("artifact_stored")? != 0,
        targets_version: row
            .try_get::<Option<i64>, _>("targets_version")?
            .map(|version| to_u64(version, "targets version"))
            .transpose()?,
        signed_at: row
            .try_get::<Option<i64>, _>("signed_at")?
            .map(Timestamp::from_unix_millis),
        published_at: row
            .try_get::<Option<i64>, _>("published_at")?
            .map(Timestamp::from_unix_millis),
    })
}

fn metadata_from_row(role: MetadataRole, row: &sqlx::any::AnyRow) -> StoreResult<StoredMetadata> {
    Ok(StoredMetadata {
        role,
        version: to_u64(row.try_get("version")?, "metadata version")?,
        body: row.try_get("body")?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
    })
}

impl Store {
    /// One version of a role's metadata.
    pub async fn ota_metadata(
        &self,
        role: MetadataRole,
        version: u64,
    ) -> StoreResult<Option<StoredMetadata>> {
        let row = sqlx::query(
            "SELECT version, body, created_at FROM ota_metadata WHERE role = $1 AND version = $2",
        )
        .bind(role.as_str())
        .bind(to_i64(version)?)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref()
            .map(|row| metadata_from_row(role, row))
            .transpose()
    }

    /// The newest version of a role's metadata.
    pub async fn latest_ota_metadata(
        &self,
        role: MetadataRole,
    ) -> StoreResult<Option<StoredMetadata>> {
        let row = sqlx::query(
            "SELECT version, body, created_at FROM ota_metadata WHERE role = $1 \
             ORDER BY version DESC LIMIT 1",
        )
        .bind(role.as_str())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref()
            .map(|row| metadata_from_row(role, row))
            .transpose()
    }

    /// Every stored version of every role, oldest first (for a static export).
    pub async fn all_ota_metadata(&self) -> StoreResult<Vec<StoredMetadata>> {
        let rows = sqlx::query(
            "SELECT role, version, body, created_at FROM ota_metadata ORDER BY role, version",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let role: String = row.try_get("role")?;
                let role =
                    MetadataRole::parse(&role).ok_or(StoreError::Corrupt("metadata role"))?;
                metadata_from_row(role, row)
            })
            .collect()
    }

    /// The release declared under a target name.
    pub async fn release_by_target_name(
        &self,
        target_name: &str,
    ) -> StoreResult<Option<ReleaseRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {RELEASE_COLUMNS} FROM ota_releases WHERE target_name = $1"
        ))
        .bind(target_name.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(release_from_row).transpose()
    }

    pub async fn release_by_id(&self, id: ReleaseId) -> StoreResult<Option<ReleaseRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {RELEASE_COLUMNS} FROM ota_releases WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(release_from_row).transpose()
    }

    /// Releases, newest first.
    pub async fn list_releases(&self) -> StoreResult<Vec<ReleaseRecord>> {
        let rows = sqlx::query(&list_releases_sql())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(release_from_row).collect()
    }

    /// Every published release's artifact digest, for a static export.
    pub async fn published_releases(&self) -> StoreResult<Vec<ReleaseRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {RELEASE_COLUMNS} FROM ota_releases WHERE state = $1 ORDER BY created_at"
        ))
        .bind(ReleaseState::Published.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(release_from_row).collect()
    }

    /// Whether an artifact with this digest belongs to a published release (only those are
    /// served to devices).
    pub async fn artifact_is_published(&self, sha256: &str) -> StoreResult<bool> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM ota_releases WHERE sha256 = $1 AND state = $2")
                .bind(sha256.to_owned())
                .bind(ReleaseState::Published.as_str())
                .fetch_one(self.pool())
                .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    pub async fn install_counts(&self, target_name: &str) -> StoreResult<InstallCounts> {
        let rows = sqlx::query(
            "SELECT outcome, COUNT(*) AS n FROM ota_install_reports WHERE target_name = $1 \
             GROUP BY outcome",
        )
        .bind(target_name.to_owned())
        .fetch_all(self.pool())
        .await?;
        let mut counts = InstallCounts::default();
        for row in &rows {
            let outcome: String = row.try_get("outcome")?;
            let n = to_u64(row.try_get("n")?, "install count")?;
            match outcome.parse::<InstallOutcome>() {
                Ok(InstallOutcome::Installed) => counts.installed = n,
                Ok(InstallOutcome::Rejected) => counts.rejected = n,
                Ok(InstallOutcome::RolledBack) => counts.rolled_back = n,
                // Never stored as a report (see the server's install reports).
                Ok(InstallOutcome::Downloading) | Err(_) => {
                    return Err(StoreError::Corrupt("install outcome"));
                }
            }
        }
        Ok(counts)
    }

    /// A device's last report for a release: the outcome and its reason category.
    pub async fn install_report(
        &self,
        handle: &DeviceHandle,
        target_name: &str,
    ) -> StoreResult<Option<(InstallOutcome, Option<String>)>> {
        let row = sqlx::query(
            "SELECT outcome, reason FROM ota_install_reports WHERE handle = $1 AND target_name = $2",
        )
        .bind(handle.to_string())
        .bind(target_name.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            let outcome: String = row.try_get("outcome")?;
            let outcome = outcome
                .parse()
                .map_err(|_| StoreError::Corrupt("install outcome"))?;
            Ok((outcome, row.try_get("reason")?))
        })
        .transpose()
    }
}

fn list_releases_sql() -> String {
    format!("SELECT {RELEASE_COLUMNS} FROM ota_releases ORDER BY created_at DESC LIMIT 1000")
}

impl WriteTx<'_> {
    /// [`Store::list_releases`] inside the transaction (a request holding a transaction never
    /// waits for a second connection).
    pub async fn list_releases(&mut self) -> StoreResult<Vec<ReleaseRecord>> {
        let rows = sqlx::query(&list_releases_sql())
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(release_from_row).collect()
    }

    /// Stores a new metadata version; a version that exists already is a conflict (metadata
    /// versions are never rewritten).
    pub async fn insert_ota_metadata(
        &mut self,
        role: MetadataRole,
        version: u64,
        body: &[u8],
        at: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO ota_metadata (role, version, body, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(role.as_str())
        .bind(to_i64(version)?)
        .bind(body.to_vec())
        .bind(at.unix_millis())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// The newest version of a role, read inside the transaction (the SQLite write gate, or a
    /// PostgreSQL advisory-free read under the caller's row lock on the release).
    pub async fn latest_ota_metadata(
        &mut self,
        role: MetadataRole,
    ) -> StoreResult<Option<StoredMetadata>> {
        let row = sqlx::query(
            "SELECT version, body, created_at FROM ota_metadata WHERE role = $1 \
             ORDER BY version DESC LIMIT 1",
        )
        .bind(role.as_str())
        .fetch_optional(self.conn())
        .await?;
        row.as_ref()
            .map(|row| metadata_from_row(role, row))
            .transpose()
    }

    pub async fn insert_release(&mut self, release: &NewRelease) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO ota_releases (id, target_name, kind, release_version, rollback_index, \
             channel, models, length, sha256, expires_at, state, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(release.id.to_string())
        .bind(release.target_name.clone())
        .bind(release.kind.clone())
        .bind(release.release_version.clone())
        .bind(to_i64(release.rollback_index)?)
        .bind(release.channel.clone())
        .bind(release.models.clone())
        .bind(to_i64(release.length)?)
        .bind(release.sha256.clone())
        .bind(release.expires_at.unix_millis())
        .bind(ReleaseState::Draft.as_str())
        .bind(release.created_by.to_string())
        .bind(release.created_at.unix_millis())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn set_release_approval(
        &mut self,
        id: ReleaseId,
        approval: ApprovalId,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE ota_releases SET approval = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(approval.to_string())
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// The release, locked until the transaction ends (`FOR UPDATE` on PostgreSQL; the write
    /// gate on SQLite), so that two signing or publishing requests run one after the other.
    pub async fn release_for_update(
        &mut self,
        id: ReleaseId,
    ) -> StoreResult<Option<ReleaseRecord>> {
        let lock = match self.backend {
            crate::Backend::Postgres => " FOR UPDATE",
            crate::Backend::Sqlite => "",
        };
        let row = sqlx::query(&format!(
            "SELECT {RELEASE_COLUMNS} FROM ota_releases WHERE id = $1{lock}"
        ))
        .bind(id.to_string())
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(release_from_row).transpose()
    }

    /// Moves a release from `from` to `to`; false when it was not in `from` (nothing changes).
    pub async fn advance_release(
        &mut self,
        id: ReleaseId,
        from: ReleaseState,
        to: ReleaseState,
        targets_version: Option<u64>,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let stamp = match to {
            ReleaseState::Signed => "signed_at",
            ReleaseState::Published => "published_at",
            // Approval is recorded on the approval request itself; `Superseded` is derived when
            // read, never stored.
            ReleaseState::Draft | ReleaseState::Approved | ReleaseState::Superseded => "",
        };
        let mut sql = String::from(
            "UPDATE ota_releases SET state = $3, targets_version = COALESCE($4, targets_version)",
        );
        if !stamp.is_empty() {
            sql.push_str(&format!(", {stamp} = $5"));
        }
        sql.push_str(" WHERE id = $1 AND state = $2");
        let mut query = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(from.as_str())
            .bind(to.as_str())
            .bind(targets_version.map(to_i64).transpose()?);
        if !stamp.is_empty() {
            query = query.bind(at.unix_millis());
        }
        let result = query.execute(self.conn()).await?;
        let moved = result.rows_affected() == 1;
        if moved {
            // A release published (or any state change) changes what the director may offer.
            self.bump_ota_catalog().await?;
        }
        Ok(moved)
    }

    pub async fn mark_artifact_stored(&mut self, id: ReleaseId) -> StoreResult<()> {
        sqlx::query("UPDATE ota_releases SET artifact_stored = 1 WHERE id = $1")
            .bind(id.to_string())
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Records a device's install outcome for a release, replacing its earlier report.
    pub async fn record_install_report(
        &mut self,
        handle: &DeviceHandle,
        target_name: &str,
        outcome: InstallOutcome,
        reason: Option<&str>,
        at: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM ota_install_reports WHERE handle = $1 AND target_name = $2")
            .bind(handle.to_string())
            .bind(target_name.to_owned())
            .execute(self.conn())
            .await?;
        sqlx::query(
            "INSERT INTO ota_install_reports (handle, target_name, outcome, reason, reported_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(handle.to_string())
        .bind(target_name.to_owned())
        .bind(outcome.as_str())
        .bind(reason.map(str::to_owned))
        .bind(at.unix_millis())
        .execute(self.conn())
        .await?;
        Ok(())
    }
}
