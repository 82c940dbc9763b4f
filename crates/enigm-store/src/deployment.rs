//! The deployment's keys: one fingerprint per key role, recorded by the first process that
//! starts on the database and compared by every later one.
//!
//! Recording is insert-if-absent (`ON CONFLICT DO NOTHING`) followed by a read of what the
//! database holds, inside the caller's write transaction: when two processes start at once on
//! PostgreSQL, the second insert waits for the first transaction and then finds its row, so
//! exactly one set of keys is ever recorded and both processes compare against it.

use std::fmt;
use std::str::FromStr;

use enigm_types::Timestamp;
use sqlx::Row as _;

use crate::{Store, StoreError, StoreResult, WriteTx};

/// What a key is for. Each role has exactly one key per deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyRole {
    /// Seals TOTP secrets at rest.
    Sealing,
    /// Derives device handles and attestation key pins.
    DeviceHandle,
    /// Signs the audit log's checkpoints (with its name, the log's origin).
    AuditLog,
    /// Tags every audit event Command stores, so only those are folded into the log.
    AuditEvent,
    /// Signs OTA snapshot metadata online.
    OtaSnapshot,
    /// Signs OTA timestamp metadata online.
    OtaTimestamp,
    /// Signs the director's per-device update answers online.
    OtaDirector,
    /// Signs Enigm Proxy credentials and the revocation list proxies poll.
    ProxyCredential,
}

impl KeyRole {
    pub const ALL: [KeyRole; 8] = [
        KeyRole::Sealing,
        KeyRole::DeviceHandle,
        KeyRole::AuditLog,
        KeyRole::AuditEvent,
        KeyRole::OtaSnapshot,
        KeyRole::OtaTimestamp,
        KeyRole::OtaDirector,
        KeyRole::ProxyCredential,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            KeyRole::Sealing => "sealing",
            KeyRole::DeviceHandle => "device-handle",
            KeyRole::AuditLog => "audit-log",
            KeyRole::AuditEvent => "audit-event",
            KeyRole::OtaSnapshot => "ota-snapshot",
            KeyRole::OtaTimestamp => "ota-timestamp",
            KeyRole::OtaDirector => "ota-director",
            KeyRole::ProxyCredential => "proxy-credential",
        }
    }
}

impl fmt::Display for KeyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyRole {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        KeyRole::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or(StoreError::Corrupt("deployment key role"))
    }
}

/// What the database holds for one role after [`WriteTx::bind_deployment_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentKey {
    pub role: KeyRole,
    /// The recorded fingerprint (lower-case hex).
    pub fingerprint: String,
    pub bound_at: Timestamp,
    /// Whether this call recorded it (the first process on the database for this role).
    pub newly_bound: bool,
}

impl Store {
    /// Every recorded key fingerprint, in role order.
    pub async fn deployment_keys(&self) -> StoreResult<Vec<DeploymentKey>> {
        let rows = sqlx::query("SELECT role, fingerprint, bound_at FROM deployment_keys")
            .fetch_all(self.pool())
            .await?;
        let mut keys = rows
            .iter()
            .map(|row| {
                Ok(DeploymentKey {
                    role: row.try_get::<String, _>("role")?.parse()?,
                    fingerprint: row.try_get("fingerprint")?,
                    bound_at: Timestamp::from_unix_millis(row.try_get("bound_at")?),
                    newly_bound: false,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        keys.sort_by_key(|key| key.role);
        Ok(keys)
    }
}

impl WriteTx<'_> {
    /// Records `fingerprint` for `role` unless the deployment has one already, and returns what
    /// the database holds for the role: this fingerprint (newly or earlier bound) or another.
    pub async fn bind_deployment_key(
        &mut self,
        role: KeyRole,
        fingerprint: &str,
        at: Timestamp,
    ) -> StoreResult<DeploymentKey> {
        let inserted = sqlx::query(
            "INSERT INTO deployment_keys (role, fingerprint, bound_at) VALUES ($1, $2, $3) \
             ON CONFLICT (role) DO NOTHING",
        )
        .bind(role.as_str())
        .bind(fingerprint.to_owned())
        .bind(at.unix_millis())
        .execute(self.conn())
        .await?
        .rows_affected();
        let row = sqlx::query("SELECT fingerprint, bound_at FROM deployment_keys WHERE role = $1")
            .bind(role.as_str())
            .fetch_one(self.conn())
            .await?;
        Ok(DeploymentKey {
            role,
            fingerprint: row.try_get("fingerprint")?,
            bound_at: Timestamp::from_unix_millis(row.try_get("bound_at")?),
            newly_bound: inserted == 1,
        })
    }

    /// Replaces the recorded fingerprint of `role` (the operator moved the key, e.g. the OTA
    /// online keys between files and a token). Returns whether a fingerprint was recorded.
    pub async fn rebind_deployment_key(
        &mut self,
        role: KeyRole,
        fingerprint: &str,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let updated = sqlx::query(
            "UPDATE deployment_keys SET fingerprint = $1, bound_at = $2 WHERE role = $3",
        )
        .bind(fingerprint.to_owned())
        .bind(at.unix_millis())
        .bind(role.as_str())
        .execute(self.conn())
        .await?
        .rows_affected();
        Ok(updated == 1)
    }
}
