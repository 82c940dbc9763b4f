//! Device lifecycle records beside the device row (migration `0004_device_lifecycle.sql`): the
//! commands Command issued that a device acknowledges (two-phase retire and wipe), and
//! replacements.
//!
//! The device row's `state` is the state the device confirmed; the pending command (at most one
//! per device, held by a partial unique index) is what an operator asked for. A replacement
//! records the one-use enrollment token issued for the successor; the successor is whichever
//! device enrolled with it, so the link is handles only. States and commands are the typed
//! vocabulary of `enigm-types`, stored as their one spelling (`retire`, `wipe`).

use std::collections::HashMap;

use enigm_types::{
    AdminId, ApprovalId, DeviceCommand, DeviceHandle, DeviceState, EnrollmentTokenId, Timestamp,
};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Backend, Store, StoreResult, WriteTx, name_column, parse_id};

/// A command waiting for its device's acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCommand {
    pub command: DeviceCommand,
    pub issued_at: Timestamp,
}

/// What the lifecycle tables know of one device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LifecycleRecord {
    pub pending: Option<PendingCommand>,
    /// The last acknowledged command and when it was acknowledged.
    pub acknowledged: Option<(DeviceCommand, Timestamp)>,
    /// The device that enrolled with this device's replacement token, once one did.
    pub replaced_by: Option<DeviceHandle>,
    /// Whether a replacement token was issued for this device.
    pub replacement_issued: bool,
    /// The device this one replaces.
    pub replaces: Option<DeviceHandle>,
}

pub struct NewCommand {
    pub handle: DeviceHandle,
    pub command: DeviceCommand,
    pub issued_by: AdminId,
    pub issued_at: Timestamp,
    /// The approval request it was issued by, when it needed one.
    pub approval: Option<ApprovalId>,
}

impl Store {
    /// The lifecycle records of one device (empty for an unknown device).
    pub async fn device_lifecycle(&self, handle: &DeviceHandle) -> StoreResult<LifecycleRecord> {
        let text = handle.to_string();
        let mut record = LifecycleRecord::default();
        let rows = sqlx::query(
            "SELECT command, issued_at, acknowledged_at FROM device_commands WHERE handle = $1 \
             ORDER BY issued_at",
        )
        .bind(text.clone())
        .fetch_all(self.pool())
        .await?;
        for row in rows {
            let command: DeviceCommand = name_column(&row, "command", "device command")?;
            match row.try_get::<Option<i64>, _>("acknowledged_at")? {
                None => {
                    record.pending = Some(PendingCommand {
                        command,
                        issued_at: Timestamp::from_unix_millis(row.try_get("issued_at")?),
                    });
                }
                Some(at) => record.acknowledged = Some((command, Timestamp::from_unix_millis(at))),
            }
        }
        let successor = sqlx::query(
            "SELECT d.handle AS successor FROM device_replacements r \
             LEFT JOIN devices d ON d.enrollment_token = r.enrollment_token WHERE r.handle = $1",
        )
        .bind(text.clone())
        .fetch_optional(self.pool())
        .await?;
        if let Some(row) = successor {
            record.replacement_issued = true;
            record.replaced_by = row
                .try_get::<Option<String>, _>("successor")?
                .map(|text| parse_id(&text, "device handle"))
                .transpose()?;
        }
        let predecessor = sqlx::query(
            "SELECT r.handle AS predecessor FROM devices d \
             JOIN device_replacements r ON r.enrollment_token = d.enrollment_token \
             WHERE d.handle = $1",
        )
        .bind(text)
        .fetch_optional(self.pool())
        .await?;
        if let Some(row) = predecessor {
            record.replaces = Some(parse_id(
                &row.try_get::<String, _>("predecessor")?,
                "device handle",
            )?);
        }
        Ok(record)
    }

    /// The pending commands of these devices, by handle (one query).
    pub async fn pending_commands(
        &self,
        handles: &[DeviceHandle],
    ) -> StoreResult<HashMap<DeviceHandle, PendingCommand>> {
        if handles.is_empty() {
            return Ok(HashMap::new());
        }
        let placeholders: Vec<String> = (1..=handles.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT handle, command, issued_at FROM device_commands \
             WHERE acknowledged_at IS NULL AND handle IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for handle in handles {
            query = query.bind(handle.to_string());
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| {
                Ok((
                    parse_id(&row.try_get::<String, _>("handle")?, "device handle")?,
                    pending_from_row(row)?,
                ))
            })
            .collect()
    }
}

/// A device's lifecycle as one transaction sees it (the device row locked until commit on
/// PostgreSQL; SQLite's write gate serialises writers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedLifecycle {
    /// The confirmed lifecycle state.
    pub state: DeviceState,
    pub wipe_opt_in: bool,
    pub group: String,
    pub policy: String,
    pub managed_opt_in: bool,
    pub pending: Option<PendingCommand>,
}

impl WriteTx<'_> {
    /// Reads and locks a device's lifecycle; `None` for an unknown device.
    pub async fn lock_lifecycle(
        &mut self,
        handle: &DeviceHandle,
    ) -> StoreResult<Option<LockedLifecycle>> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT state, wipe_opt_in, group_name, policy, managed_opt_in FROM devices \
                 WHERE handle = $1"
            }
            Backend::Postgres => {
                "SELECT state, wipe_opt_in, group_name, policy, managed_opt_in FROM devices \
                 WHERE handle = $1 FOR UPDATE"
            }
        };
        let row = sqlx::query(sql)
            .bind(handle.to_string())
            .fetch_optional(self.conn())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let pending = self.pending_command(handle).await?;
        Ok(Some(LockedLifecycle {
            state: name_column(&row, "state", "device state")?,
            wipe_opt_in: row.try_get::<i64, _>("wipe_opt_in")? != 0,
            group: row.try_get("group_name")?,
            policy: row.try_get("policy")?,
            managed_opt_in: row.try_get::<i64, _>("managed_opt_in")? != 0,
            pending,
        }))
    }

    /// The command waiting for this device, read in this transaction (locked until commit on
    /// PostgreSQL).
    pub async fn pending_command(
        &mut self,
        handle: &DeviceHandle,
    ) -> StoreResult<Option<PendingCommand>> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT command, issued_at FROM device_commands \
                 WHERE handle = $1 AND acknowledged_at IS NULL"
            }
            Backend::Postgres => {
                "SELECT command, issued_at FROM device_commands \
                 WHERE handle = $1 AND acknowledged_at IS NULL FOR UPDATE"
            }
        };
        let row = sqlx::query(sql)
            .bind(handle.to_string())
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(pending_from_row).transpose()
    }

    /// Issues a command; `Err(Conflict)` when another one is pending for the device.
    pub async fn issue_command(&mut self, command: &NewCommand) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO device_commands (handle, issued_at, command, issued_by, approval) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(command.handle.to_string())
        .bind(command.issued_at.unix_millis())
        .bind(command.command.as_str().to_owned())
        .bind(command.issued_by.to_string())
        .bind(command.approval.map(|id| id.to_string()))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Marks the device's pending `command` acknowledged; `false` when no such command waits.
    pub async fn acknowledge_command(
        &mut self,
        handle: &DeviceHandle,
        command: DeviceCommand,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE device_commands SET acknowledged_at = $1 \
             WHERE handle = $2 AND command = $3 AND acknowledged_at IS NULL",
        )
        .bind(now.unix_millis())
        .bind(handle.to_string())
        .bind(command.as_str().to_owned())
        .execute(self.conn())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Records that `handle` is replaced by whichever device enrolls with `token`.
    pub async fn record_replacement(
        &mut self,
        handle: &DeviceHandle,
        token: EnrollmentTokenId,
        admin: AdminId,
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO device_replacements (handle, enrollment_token, replaced_by, replaced_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(handle.to_string())
        .bind(token.to_string())
        .bind(admin.to_string())
        .bind(now.unix_millis())
        .execute(self.conn())
        .await?;
        Ok(())
    }
}

fn pending_from_row(row: &AnyRow) -> StoreResult<PendingCommand> {
    Ok(PendingCommand {
        command: name_column(row, "command", "device command")?,
        issued_at: Timestamp::from_unix_millis(row.try_get("issued_at")?),
    })
}
