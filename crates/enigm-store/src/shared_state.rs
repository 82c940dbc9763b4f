//! State that every Command process of one deployment must agree on (migration
//! `0009_shared_state.sql`): attestation nonces, login throttle rows and leases for once-only
//! background tasks. Each operation that decides something is one statement or one transaction
//! with the rows it decides on locked, so that two processes on one PostgreSQL database decide
//! as one would. The policies (how long a nonce lives, how long a back-off lasts) are the
//! caller's; this module only stores and compares times it is given.

use enigm_types::{DeviceHandle, Timestamp};
use sqlx::Row as _;

use crate::{Backend, Store, StoreError, StoreResult, WriteTx};

/// One throttle key's state, as stored between login attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRecord {
    /// Consecutive failures.
    pub failures: u32,
    /// The end of the running back-off, if any.
    pub blocked_until: Option<Timestamp>,
    /// The later of the last failure and the end of its back-off.
    pub quiet_since: Timestamp,
}

/// Who holds a lease, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub holder: String,
    pub expires_at: Timestamp,
}

impl Store {
    /// Records a fresh attestation nonce for `handle` and `purpose`, unless `capacity` nonces are
    /// already stored: then expired ones are purged and, if it is still full, the nonce is
    /// refused (`false`) rather than a live one evicted. Under concurrent issues from several
    /// processes the count may overshoot `capacity` by the number issued at the same instant.
    pub async fn issue_attestation_nonce(
        &self,
        nonce: &[u8],
        handle: &DeviceHandle,
        purpose: &str,
        expires_at: Timestamp,
        now: Timestamp,
        capacity: u64,
    ) -> StoreResult<bool> {
        let capacity = i64::try_from(capacity).unwrap_or(i64::MAX);
        let mut tx = self.begin().await?;
        let mut inserted =
            insert_nonce(&mut tx, nonce, handle, purpose, expires_at, capacity).await?;
        if !inserted {
            purge_nonces(&mut tx, now).await?;
            inserted = insert_nonce(&mut tx, nonce, handle, purpose, expires_at, capacity).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// Forgets nonces that expired before `now`.
    pub async fn purge_expired_attestation_nonces(&self, now: Timestamp) -> StoreResult<u64> {
        let mut tx = self.begin().await?;
        let purged = purge_nonces(&mut tx, now).await?;
        tx.commit().await?;
        Ok(purged)
    }

    /// The stored throttle state of each of `keys` that has one, in the order of `keys`.
    pub async fn login_throttle(
        &self,
        keys: &[String],
    ) -> StoreResult<Vec<(String, ThrottleRecord)>> {
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            let row = sqlx::query(
                "SELECT failures, blocked_until, quiet_since FROM login_throttle \
                 WHERE throttle_key = $1",
            )
            .bind(key.clone())
            .fetch_optional(self.pool())
            .await?;
            if let Some(row) = row {
                found.push((key.clone(), throttle_record(&row)?));
            }
        }
        Ok(found)
    }

    /// Records a failed login for each of `keys`: `next` turns each key's stored state (`None`
    /// when it has none) into the new one. All keys' rows are locked for the transaction (in
    /// key order, so two logins never wait on each other in a cycle), so a failure counted by
    /// another process at the same time is never lost.
    pub async fn record_login_failure(
        &self,
        keys: &[String],
        now: Timestamp,
        mut next: impl FnMut(Option<ThrottleRecord>) -> ThrottleRecord,
    ) -> StoreResult<()> {
        let mut keys: Vec<&String> = keys.iter().collect();
        keys.sort();
        keys.dedup();
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let mut tx = self.begin().await?;
        for key in keys {
            // A placeholder of zero failures makes the row exist, so that it can be locked; it
            // reads as no state at all.
            sqlx::query(
                "INSERT INTO login_throttle (throttle_key, failures, blocked_until, quiet_since) \
                 VALUES ($1, 0, NULL, $2) ON CONFLICT (throttle_key) DO NOTHING",
            )
            .bind(key.clone())
            .bind(now.unix_millis())
            .execute(tx.conn())
            .await?;
            let row = sqlx::query(&format!(
                "SELECT failures, blocked_until, quiet_since FROM login_throttle \
                 WHERE throttle_key = $1{lock}"
            ))
            .bind(key.clone())
            .fetch_optional(tx.conn())
            .await?;
            // No row: a success (or the purge) deleted it after the insert above found it. The
            // upsert below then writes it afresh.
            let stored = row.as_ref().map(throttle_record).transpose()?;
            let updated = next(stored.filter(|stored| stored.failures > 0));
            sqlx::query(
                "INSERT INTO login_throttle (throttle_key, failures, blocked_until, quiet_since) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (throttle_key) DO UPDATE SET \
                 failures = excluded.failures, blocked_until = excluded.blocked_until, \
                 quiet_since = excluded.quiet_since",
            )
            .bind(key.clone())
            .bind(i64::from(updated.failures))
            .bind(updated.blocked_until.map(Timestamp::unix_millis))
            .bind(updated.quiet_since.unix_millis())
            .execute(tx.conn())
            .await?;
        }
        tx.commit().await
    }

    /// Forgets the failures of `keys` (a successful login), ending any back-off. Rows are
    /// deleted in key order, the order failures lock them in, so the two never deadlock.
    pub async fn clear_login_throttle(&self, keys: &[String]) -> StoreResult<()> {
        let mut keys: Vec<&String> = keys.iter().collect();
        keys.sort();
        keys.dedup();
        let mut tx = self.begin().await?;
        for key in keys {
            sqlx::query("DELETE FROM login_throttle WHERE throttle_key = $1")
                .bind(key.clone())
                .execute(tx.conn())
                .await?;
        }
        tx.commit().await
    }

    /// Bounds the throttle table: drops every key quiet since before `forgotten_before` (it
    /// would start from zero anyway), then, if more than `max_rows` remain, the keys that went
    /// quiet longest ago. Answers how many rows were dropped.
    pub async fn purge_login_throttle(
        &self,
        forgotten_before: Timestamp,
        max_rows: u64,
    ) -> StoreResult<u64> {
        // Rows a login is updating right now are skipped (PostgreSQL): they are not quiet, and
        // waiting for them while holding others could deadlock with that login.
        let skip_locked = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let mut tx = self.begin().await?;
        let mut purged = sqlx::query(&format!(
            "DELETE FROM login_throttle WHERE throttle_key IN (SELECT throttle_key FROM \
             login_throttle WHERE quiet_since <= $1{skip_locked})"
        ))
        .bind(forgotten_before.unix_millis())
        .execute(tx.conn())
        .await?
        .rows_affected();
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM login_throttle")
            .fetch_one(tx.conn())
            .await?;
        let excess = count.saturating_sub(i64::try_from(max_rows).unwrap_or(i64::MAX));
        if excess > 0 {
            purged += sqlx::query(&format!(
                "DELETE FROM login_throttle WHERE throttle_key IN (SELECT throttle_key FROM \
                 login_throttle ORDER BY quiet_since, throttle_key LIMIT $1{skip_locked})"
            ))
            .bind(excess)
            .execute(tx.conn())
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(purged)
    }

    /// Takes the lease on `task` for `holder` until `until`, if it is free, expired at `now`,
    /// or already `holder`'s (a renewal), in one conditional upsert. Answers whether `holder`
    /// holds it now. Of two processes asking at once, at most one is answered `true`.
    pub async fn take_lease(
        &self,
        task: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "INSERT INTO leases (task, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (task) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at <= $4 \
             RETURNING holder",
        )
        .bind(task.to_owned())
        .bind(holder.to_owned())
        .bind(until.unix_millis())
        .bind(now.unix_millis())
        .fetch_optional(tx.conn())
        .await?;
        tx.commit().await?;
        match row {
            Some(row) => Ok(row.try_get::<String, _>("holder")? == holder),
            None => Ok(false),
        }
    }

    /// Gives the lease on `task` up, if `holder` holds it, so another process can take it at
    /// once instead of waiting for it to expire.
    pub async fn release_lease(&self, task: &str, holder: &str) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM leases WHERE task = $1 AND holder = $2")
            .bind(task.to_owned())
            .bind(holder.to_owned())
            .execute(tx.conn())
            .await?;
        tx.commit().await
    }

    /// Who holds (or last held) the lease on `task`.
    pub async fn lease(&self, task: &str) -> StoreResult<Option<LeaseRecord>> {
        let row = sqlx::query("SELECT holder, expires_at FROM leases WHERE task = $1")
            .bind(task.to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| {
            Ok(LeaseRecord {
                holder: row.try_get("holder")?,
                expires_at: Timestamp::from_unix_millis(row.try_get("expires_at")?),
            })
        })
        .transpose()
    }
}

impl WriteTx<'_> {
    /// Takes (deletes) the nonce if it was issued to `handle` for `purpose`, answering its
    /// expiry; `None` when it was never issued, is already taken, or belongs to another device
    /// or purpose (then it stays where it is). One `DELETE … RETURNING`: of two transactions
    /// taking one nonce, in one process or two, exactly one gets it.
    pub async fn take_attestation_nonce(
        &mut self,
        nonce: &[u8],
        handle: &DeviceHandle,
        purpose: &str,
    ) -> StoreResult<Option<Timestamp>> {
        let row = sqlx::query(
            "DELETE FROM attestation_nonces WHERE nonce = $1 AND handle = $2 AND purpose = $3 \
             RETURNING expires_at",
        )
        .bind(nonce.to_vec())
        .bind(handle.to_string())
        .bind(purpose.to_owned())
        .fetch_optional(self.conn())
        .await?;
        row.map(|row| Ok(Timestamp::from_unix_millis(row.try_get("expires_at")?)))
            .transpose()
    }
}

async fn insert_nonce(
    tx: &mut WriteTx<'_>,
    nonce: &[u8],
    handle: &DeviceHandle,
    purpose: &str,
    expires_at: Timestamp,
    capacity: i64,
) -> StoreResult<bool> {
    let result = sqlx::query(
        "INSERT INTO attestation_nonces (nonce, handle, purpose, expires_at) \
         SELECT $1, $2, $3, $4 WHERE (SELECT COUNT(*) FROM attestation_nonces) < $5",
    )
    .bind(nonce.to_vec())
    .bind(handle.to_string())
    .bind(purpose.to_owned())
    .bind(expires_at.unix_millis())
    .bind(capacity)
    .execute(tx.conn())
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Deletes the nonces expired before `now`. On PostgreSQL the ones an attestation is taking
/// right now are skipped rather than waited for, so the purge never joins a lock cycle.
async fn purge_nonces(tx: &mut WriteTx<'_>, now: Timestamp) -> StoreResult<u64> {
    let skip_locked = match tx.backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let result = sqlx::query(&format!(
        "DELETE FROM attestation_nonces WHERE nonce IN (SELECT nonce FROM attestation_nonces \
         WHERE expires_at < $1{skip_locked})"
    ))
    .bind(now.unix_millis())
    .execute(tx.conn())
    .await?;
    Ok(result.rows_affected())
}

fn throttle_record(row: &sqlx::any::AnyRow) -> StoreResult<ThrottleRecord> {
    Ok(ThrottleRecord {
        failures: u32::try_from(row.try_get::<i64, _>("failures")?)
            .map_err(|_| StoreError::Corrupt("login throttle failures"))?,
        blocked_until: row
            .try_get::<Option<i64>, _>("blocked_until")?
            .map(Timestamp::from_unix_millis),
        quiet_since: Timestamp::from_unix_millis(row.try_get("quiet_since")?),
    })
}
