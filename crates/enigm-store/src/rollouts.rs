//! Controlled rollout of OTA releases (migration `0019_rollouts.sql`): each published release's
//! operator stage, plan, status and open waves; what each device did with a release it asked
//! about; version pins per device group.
//!
//! The plan and the cuts are stored as the server encodes them (JSON); the store only keeps
//! them. Changes to a rollout run in one write transaction that first takes the rollout's row
//! ([`WriteTx::rollout_for_update`]), so two operators' steps, or a step and an automatic halt,
//! run one after the other.

use enigm_types::{
    AdminId, ApprovalId, DeviceHandle, ReleaseId, ReleaseStage, RolloutDeviceState, RolloutStatus,
    Timestamp,
};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, StoreResult, WriteTx, parse_id};

/// A director's decision about one device, as [`WriteTx::record_rollout_decisions`] stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolloutDecision {
    pub release: ReleaseId,
    pub handle: DeviceHandle,
    pub wave: Option<u32>,
    pub state: RolloutDeviceState,
    pub at: Timestamp,
}

/// Rows per multi-row decision upsert (five parameters each).
const DECISIONS_PER_STATEMENT: usize = 200;

/// How a device's rollout row takes a new step: its first wave stays.
const UPSERT: &str = " ON CONFLICT (release_id, handle) DO UPDATE SET \
     state = excluded.state, updated_at = excluded.updated_at, \
     wave = COALESCE(rollout_devices.wave, excluded.wave)";

/// A director's decision replaces only another decision, never what the device reported.
const UNREPORTED: &str = " WHERE rollout_devices.state IN ('offered', 'refused')";

/// A release's rollout as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutRecord {
    pub release: ReleaseId,
    /// The operator stage once taken (`None`: registered).
    pub stage: Option<ReleaseStage>,
    pub status: RolloutStatus,
    /// Why Command halted it (a reason category's name).
    pub status_reason: Option<String>,
    /// The plan, JSON; `None` until one is set.
    pub plan: Option<String>,
    /// The open waves' cuts and when each opened, JSON.
    pub cuts: String,
    pub pending_approval: Option<ApprovalId>,
    pub updated_at: Timestamp,
}

impl RolloutRecord {
    /// The rollout of a release nobody planned yet.
    pub fn unplanned(release: ReleaseId, at: Timestamp) -> Self {
        RolloutRecord {
            release,
            stage: None,
            status: RolloutStatus::Active,
            status_reason: None,
            plan: None,
            cuts: "[]".to_owned(),
            pending_approval: None,
            updated_at: at,
        }
    }
}

/// How many devices of one wave (`None`: outside the waves) are in one state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolloutCount {
    pub wave: Option<u32>,
    pub state: RolloutDeviceState,
    pub devices: u64,
}

/// A device group's version pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionPinRecord {
    pub group: String,
    pub release: ReleaseId,
    pub release_version: String,
    pub pinned_by: AdminId,
    pub pinned_at: Timestamp,
}

const ROLLOUT_COLUMNS: &str = "release_id, stage, status, status_reason, plan, cuts, \
     pending_approval, updated_at";

fn rollout_from_row(row: &AnyRow) -> StoreResult<RolloutRecord> {
    let stage: Option<String> = row.try_get("stage")?;
    let status: String = row.try_get("status")?;
    let approval: Option<String> = row.try_get("pending_approval")?;
    Ok(RolloutRecord {
        release: parse_id(&row.try_get::<String, _>("release_id")?, "release id")?,
        stage: stage
            .map(|text| text.parse())
            .transpose()
            .map_err(|_| StoreError::Corrupt("release stage"))?,
        status: status
            .parse()
            .map_err(|_| StoreError::Corrupt("rollout status"))?,
        status_reason: row.try_get("status_reason")?,
        plan: row.try_get("plan")?,
        cuts: row.try_get("cuts")?,
        pending_approval: approval
            .map(|text| parse_id(&text, "approval id"))
            .transpose()?,
        updated_at: Timestamp::from_unix_millis(row.try_get("updated_at")?),
    })
}

fn count_from_row(row: &AnyRow) -> StoreResult<RolloutCount> {
    let state: String = row.try_get("state")?;
    Ok(RolloutCount {
        wave: row
            .try_get::<Option<i64>, _>("wave")?
            .map(|wave| u32::try_from(wave).map_err(|_| StoreError::Corrupt("rollout wave")))
            .transpose()?,
        state: state
            .parse()
            .map_err(|_| StoreError::Corrupt("rollout device state"))?,
        devices: u64::try_from(row.try_get::<i64, _>("n")?)
            .map_err(|_| StoreError::Corrupt("rollout count"))?,
    })
}

fn pin_from_row(row: &AnyRow) -> StoreResult<VersionPinRecord> {
    Ok(VersionPinRecord {
        group: row.try_get("group_name")?,
        release: parse_id(&row.try_get::<String, _>("release_id")?, "release id")?,
        release_version: row.try_get("release_version")?,
        pinned_by: parse_id(&row.try_get::<String, _>("pinned_by")?, "admin id")?,
        pinned_at: Timestamp::from_unix_millis(row.try_get("pinned_at")?),
    })
}

const COUNT_SQL: &str = "SELECT wave, state, COUNT(*) AS n FROM rollout_devices \
     WHERE release_id = $1 GROUP BY wave, state";
const PIN_SQL: &str = "SELECT p.group_name, p.release_id, r.release_version, p.pinned_by, \
     p.pinned_at FROM ota_version_pins p JOIN ota_releases r ON r.id = p.release_id";

impl Store {
    pub async fn rollout(&self, release: ReleaseId) -> StoreResult<Option<RolloutRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {ROLLOUT_COLUMNS} FROM release_rollouts WHERE release_id = $1"
        ))
        .bind(release.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(rollout_from_row).transpose()
    }

    /// Every stored rollout (one per published release that was planned or stepped).
    pub async fn rollouts(&self) -> StoreResult<Vec<RolloutRecord>> {
        let rows = sqlx::query(&format!("SELECT {ROLLOUT_COLUMNS} FROM release_rollouts"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(rollout_from_row).collect()
    }

    /// How many devices of each wave are in each state, for a release.
    pub async fn rollout_counts(&self, release: ReleaseId) -> StoreResult<Vec<RolloutCount>> {
        let rows = sqlx::query(COUNT_SQL)
            .bind(release.to_string())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(count_from_row).collect()
    }

    /// A device's row for a release: its wave and last state.
    pub async fn rollout_device(
        &self,
        release: ReleaseId,
        handle: &DeviceHandle,
    ) -> StoreResult<Option<(Option<u32>, RolloutDeviceState)>> {
        let row = sqlx::query(
            "SELECT wave, state, 1 AS n FROM rollout_devices WHERE release_id = $1 AND handle = $2",
        )
        .bind(release.to_string())
        .bind(handle.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref()
            .map(|row| count_from_row(row).map(|count| (count.wave, count.state)))
            .transpose()
    }

    pub async fn version_pins(&self) -> StoreResult<Vec<VersionPinRecord>> {
        let rows = sqlx::query(&format!("{PIN_SQL} ORDER BY p.group_name"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(pin_from_row).collect()
    }

    pub async fn version_pin(&self, group: &str) -> StoreResult<Option<VersionPinRecord>> {
        let row = sqlx::query(&format!("{PIN_SQL} WHERE p.group_name = $1"))
            .bind(group.to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(pin_from_row).transpose()
    }

    /// The handles of the devices a wave is cut over: every enrolled device that may still be
    /// updated (trusted or restricted).
    pub async fn rollout_population(&self) -> StoreResult<Vec<DeviceHandle>> {
        let rows = sqlx::query(
            "SELECT handle FROM devices WHERE state IN ('trusted', 'restricted') ORDER BY handle",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                row.try_get::<String, _>("handle")?
                    .parse()
                    .map_err(|_| StoreError::Corrupt("device handle"))
            })
            .collect()
    }
}

impl WriteTx<'_> {
    /// The rollout, locked until the transaction ends (`FOR UPDATE` on PostgreSQL; the write
    /// gate on SQLite).
    pub async fn rollout_for_update(
        &mut self,
        release: ReleaseId,
    ) -> StoreResult<Option<RolloutRecord>> {
        let lock = match self.backend {
            crate::Backend::Postgres => " FOR UPDATE",
            crate::Backend::Sqlite => "",
        };
        let row = sqlx::query(&format!(
            "SELECT {ROLLOUT_COLUMNS} FROM release_rollouts WHERE release_id = $1{lock}"
        ))
        .bind(release.to_string())
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(rollout_from_row).transpose()
    }

    /// Counts a change to what the director decides from, in the change's transaction.
    pub async fn bump_ota_catalog(&mut self) -> StoreResult<()> {
        sqlx::query("UPDATE ota_catalog_generation SET generation = generation + 1 WHERE id = 1")
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Writes the rollout's row, creating it if need be.
    pub async fn save_rollout(&mut self, rollout: &RolloutRecord) -> StoreResult<()> {
        self.bump_ota_catalog().await?;
        sqlx::query(
            "INSERT INTO release_rollouts (release_id, stage, status, status_reason, plan, cuts, \
             pending_approval, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (release_id) DO UPDATE SET stage = excluded.stage, \
             status = excluded.status, status_reason = excluded.status_reason, \
             plan = excluded.plan, cuts = excluded.cuts, \
             pending_approval = excluded.pending_approval, updated_at = excluded.updated_at",
        )
        .bind(rollout.release.to_string())
        .bind(rollout.stage.map(|stage| stage.as_str().to_owned()))
        .bind(rollout.status.as_str())
        .bind(rollout.status_reason.clone())
        .bind(rollout.plan.clone())
        .bind(rollout.cuts.clone())
        .bind(rollout.pending_approval.map(|id| id.to_string()))
        .bind(rollout.updated_at.unix_millis())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Records a device's step with a release (an install report); its wave stays the one it
    /// was first given.
    pub async fn set_rollout_device(
        &mut self,
        release: ReleaseId,
        handle: &DeviceHandle,
        wave: Option<u32>,
        state: RolloutDeviceState,
        at: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO rollout_devices (release_id, handle, wave, state, updated_at) \
             VALUES ($1, $2, $3, $4, $5){UPSERT}"
        ))
        .bind(release.to_string())
        .bind(handle.to_string())
        .bind(wave.map(i64::from))
        .bind(state.as_str())
        .bind(at.unix_millis())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Records the director's decisions (offered or refused) and devices' word that they are
    /// downloading, each unless its device already reported an install of the release (a report
    /// is what the status counts), in one statement per chunk (the director's group commit).
    /// Where one device's row appears more than once, its last decision is the one written, as
    /// if written one after the other.
    pub async fn record_rollout_decisions(
        &mut self,
        decisions: &[RolloutDecision],
    ) -> StoreResult<()> {
        // Postgres refuses a statement that updates one row twice; the last decision wins.
        let mut last = std::collections::HashMap::new();
        for (at, decision) in decisions.iter().enumerate() {
            last.insert((decision.release, decision.handle), at);
        }
        let kept: Vec<&RolloutDecision> = decisions
            .iter()
            .enumerate()
            .filter(|(at, decision)| last.get(&(decision.release, decision.handle)) == Some(at))
            .map(|(_, decision)| decision)
            .collect();
        for chunk in kept.chunks(DECISIONS_PER_STATEMENT) {
            let query = format!(
                "INSERT INTO rollout_devices (release_id, handle, wave, state, updated_at) \
                 VALUES {}{UPSERT}{UNREPORTED}",
                crate::values_placeholders(chunk.len(), 5)
            );
            let mut statement = sqlx::query(&query);
            for decision in chunk {
                statement = statement
                    .bind(decision.release.to_string())
                    .bind(decision.handle.to_string())
                    .bind(decision.wave.map(i64::from))
                    .bind(decision.state.as_str())
                    .bind(decision.at.unix_millis());
            }
            statement.execute(self.conn()).await?;
        }
        Ok(())
    }

    /// The counts of a release's devices, inside the transaction (for the automatic halt).
    pub async fn rollout_counts(&mut self, release: ReleaseId) -> StoreResult<Vec<RolloutCount>> {
        let rows = sqlx::query(COUNT_SQL)
            .bind(release.to_string())
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(count_from_row).collect()
    }

    /// Pins `group` to `release`, replacing an earlier pin.
    pub async fn pin_version(
        &mut self,
        group: &str,
        release: ReleaseId,
        by: AdminId,
        at: Timestamp,
    ) -> StoreResult<()> {
        self.bump_ota_catalog().await?;
        sqlx::query(
            "INSERT INTO ota_version_pins (group_name, release_id, pinned_by, pinned_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (group_name) DO UPDATE SET \
             release_id = excluded.release_id, pinned_by = excluded.pinned_by, \
             pinned_at = excluded.pinned_at",
        )
        .bind(group.to_owned())
        .bind(release.to_string())
        .bind(by.to_string())
        .bind(at.unix_millis())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Removes `group`'s pin; false when it had none.
    pub async fn unpin_version(&mut self, group: &str) -> StoreResult<Option<ReleaseId>> {
        let row = sqlx::query("SELECT release_id FROM ota_version_pins WHERE group_name = $1")
            .bind(group.to_owned())
            .fetch_optional(self.conn())
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let release = parse_id(&row.try_get::<String, _>("release_id")?, "release id")?;
        self.bump_ota_catalog().await?;
        sqlx::query("DELETE FROM ota_version_pins WHERE group_name = $1")
            .bind(group.to_owned())
            .execute(self.conn())
            .await?;
        Ok(Some(release))
    }
}
