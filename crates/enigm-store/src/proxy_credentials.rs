//! Enigm Proxy credentials Command issued (migration `0018_proxy_credentials.sql`): which device
//! each went to and until when, never the credential or the device key. Command lists the live
//! ones whose device no longer qualifies as the revocation list proxies poll.

use enigm_types::{DeviceHandle, DeviceState, Timestamp, TrustState};
use sqlx::Row as _;

use crate::{Store, StoreResult, WriteTx};

impl WriteTx<'_> {
    /// Records a credential issued to `handle`, and forgets the device's expired ones.
    pub async fn record_proxy_credential(
        &mut self,
        id: &str,
        handle: &DeviceHandle,
        issued_at: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM proxy_credentials WHERE handle = $1 AND expires_at <= $2")
            .bind(handle.to_string())
            .bind(issued_at.unix_millis())
            .execute(self.conn())
            .await?;
        sqlx::query(
            "INSERT INTO proxy_credentials (id, handle, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(id.to_owned())
        .bind(handle.to_string())
        .bind(issued_at.unix_millis())
        .bind(expires_at.unix_millis())
        .execute(self.conn())
        .await?;
        Ok(())
    }
}

impl Store {
    /// The ids of credentials live at `now` whose device no longer qualifies for one: its
    /// confirmed lifecycle state is not `qualifying`, its trust state is `INACTIVE`, or a retire
    /// or wipe command waits for it. Ascending.
    pub async fn revoked_proxy_credentials(
        &self,
        qualifying: DeviceState,
        now: Timestamp,
    ) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT c.id FROM proxy_credentials c JOIN devices d ON d.handle = c.handle \
             WHERE c.expires_at > $1 AND (d.state <> $2 OR d.trust_state = $3 OR EXISTS \
             (SELECT 1 FROM device_commands p WHERE p.handle = c.handle \
              AND p.acknowledged_at IS NULL)) \
             ORDER BY c.id",
        )
        .bind(now.unix_millis())
        .bind(qualifying.as_str().to_owned())
        .bind(TrustState::Inactive.as_str().to_owned())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<String, _>("id")?))
            .collect()
    }
}
