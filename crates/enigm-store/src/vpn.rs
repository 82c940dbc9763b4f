//! The VPN control plane's records (migration `0017_vpn.sql`): gateways with their aggregate
//! load, and each device's newest location switch.
//!
//! A switch runs in one write transaction, in this order, so that concurrent switches neither
//! lose a newer choice nor exceed a gateway's capacity on either backend:
//! 1. [`WriteTx::claim_vpn_sequence`] takes the device's row (PostgreSQL locks it until commit)
//!    only when the request is newer than the one in force;
//! 2. [`WriteTx::take_vpn_slot`] / [`WriteTx::release_vpn_slot`] change the gateways' counts
//!    with conditional updates, in gateway-id order (so two switches in opposite directions
//!    cannot deadlock);
//! 3. [`WriteTx::set_vpn_assignment`] records the gateway and address slot.
//!
//! SQLite runs one write transaction at a time (see [`crate::Store::begin`]).

use enigm_types::{DeviceHandle, Timestamp, VpnGatewayId};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, StoreResult, WriteTx, flag, parse_id};

/// A gateway as registered, with its aggregate load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpnGatewayRecord {
    pub id: VpnGatewayId,
    pub location: String,
    /// `host:port`.
    pub endpoint: String,
    /// WireGuard public key, base64.
    pub public_key: String,
    /// The pool devices' tunnel addresses come from (CIDR).
    pub tunnel_network: String,
    pub capacity: u32,
    pub assigned: u32,
    pub healthy: bool,
    pub load_percent: Option<u8>,
    pub updated_at: Timestamp,
}

/// What an operator changes of a gateway; `None` keeps the field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VpnGatewayChange {
    pub healthy: Option<bool>,
    /// The load the gateway reports, in percent.
    pub load_percent: Option<u8>,
    pub capacity: Option<u32>,
}

/// A device's assignment in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpnAssignmentRecord {
    pub sequence: u64,
    /// The gateway and address slot; none when the device left the VPN.
    pub gateway: Option<(VpnGatewayId, u32)>,
}

const GATEWAY_COLUMNS: &str = "id, location, endpoint, public_key, tunnel_network, capacity, \
     assigned, healthy, load_percent, updated_at";

fn number<T: TryFrom<i64>>(row: &AnyRow, column: &str, what: &'static str) -> StoreResult<T> {
    T::try_from(row.try_get::<i64, _>(column)?).map_err(|_| StoreError::Corrupt(what))
}

fn gateway_from_row(row: &AnyRow) -> StoreResult<VpnGatewayRecord> {
    Ok(VpnGatewayRecord {
        id: parse_id(&row.try_get::<String, _>("id")?, "vpn gateway id")?,
        location: row.try_get("location")?,
        endpoint: row.try_get("endpoint")?,
        public_key: row.try_get("public_key")?,
        tunnel_network: row.try_get("tunnel_network")?,
        capacity: number(row, "capacity", "vpn gateway capacity")?,
        assigned: number(row, "assigned", "vpn gateway sessions")?,
        healthy: row.try_get::<i64, _>("healthy")? != 0,
        load_percent: row
            .try_get::<Option<i64>, _>("load_percent")?
            .map(|load| u8::try_from(load).map_err(|_| StoreError::Corrupt("vpn gateway load")))
            .transpose()?,
        updated_at: Timestamp::from_unix_millis(row.try_get("updated_at")?),
    })
}

fn sequence_to_i64(sequence: u64) -> StoreResult<i64> {
    i64::try_from(sequence).map_err(|_| StoreError::Encoding("a VPN switch sequence past i64"))
}

impl Store {
    /// Every gateway, by id.
    pub async fn vpn_gateways(&self) -> StoreResult<Vec<VpnGatewayRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {GATEWAY_COLUMNS} FROM vpn_gateways ORDER BY id"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(gateway_from_row).collect()
    }

    /// The gateways of `location`, by id.
    pub async fn vpn_gateways_at(&self, location: &str) -> StoreResult<Vec<VpnGatewayRecord>> {
        let rows = sqlx::query(&gateways_at_sql())
            .bind(location.to_owned())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(gateway_from_row).collect()
    }

    pub async fn vpn_gateway(&self, id: &VpnGatewayId) -> StoreResult<Option<VpnGatewayRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {GATEWAY_COLUMNS} FROM vpn_gateways WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(gateway_from_row).transpose()
    }

    /// The sessions of `gateway` whose devices are still on the network (lifecycle trusted or
    /// restricted, trust state not INACTIVE, no retire or wipe waiting): each one's WireGuard
    /// public key and address slot, by slot. A device that fell off the network is left out at
    /// once, before its session is ended.
    pub async fn vpn_gateway_peers(&self, id: &VpnGatewayId) -> StoreResult<Vec<(String, u32)>> {
        let rows = sqlx::query(
            "SELECT a.public_key, a.slot FROM vpn_assignments a \
             JOIN devices d ON d.handle = a.handle \
             WHERE a.gateway = $1 AND a.public_key IS NOT NULL AND a.slot IS NOT NULL \
             AND d.state IN ('trusted', 'restricted') AND d.trust_state <> 'INACTIVE' \
             AND NOT EXISTS (SELECT 1 FROM device_commands c WHERE c.handle = a.handle \
             AND c.acknowledged_at IS NULL) \
             ORDER BY a.slot",
        )
        .bind(id.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("public_key")?, number(row, "slot", "vpn slot")?)))
            .collect()
    }

    /// How many devices hold a slot of `gateway` (what its `assigned` count must equal).
    pub async fn vpn_gateway_sessions(&self, id: &VpnGatewayId) -> StoreResult<u64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM vpn_assignments WHERE gateway = $1")
            .bind(id.to_string())
            .fetch_one(self.pool())
            .await?;
        number(&row, "n", "vpn session count")
    }
}

fn gateways_at_sql() -> String {
    format!("SELECT {GATEWAY_COLUMNS} FROM vpn_gateways WHERE location = $1 ORDER BY id")
}

impl WriteTx<'_> {
    /// [`Store::vpn_gateways_at`] inside the transaction (a request holding a transaction
    /// never waits for a second connection).
    pub async fn vpn_gateways_at(&mut self, location: &str) -> StoreResult<Vec<VpnGatewayRecord>> {
        let rows = sqlx::query(&gateways_at_sql())
            .bind(location.to_owned())
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(gateway_from_row).collect()
    }

    /// Registers a gateway; a gateway with the same id is a `Conflict`.
    pub async fn insert_vpn_gateway(
        &mut self,
        gateway: &VpnGatewayRecord,
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO vpn_gateways (id, location, endpoint, public_key, tunnel_network, \
             capacity, assigned, healthy, load_percent, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9, $9)",
        )
        .bind(gateway.id.to_string())
        .bind(gateway.location.clone())
        .bind(gateway.endpoint.clone())
        .bind(gateway.public_key.clone())
        .bind(gateway.tunnel_network.clone())
        .bind(i64::from(gateway.capacity))
        .bind(flag(gateway.healthy))
        .bind(gateway.load_percent.map(i64::from))
        .bind(now.unix_millis())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Changes a gateway's health, reported load or capacity; `false` when there is no such
    /// gateway. Lowering the capacity keeps the sessions it holds (they are not moved).
    pub async fn change_vpn_gateway(
        &mut self,
        id: &VpnGatewayId,
        change: &VpnGatewayChange,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE vpn_gateways SET \
             healthy = CASE WHEN $2 THEN $3 ELSE healthy END, \
             load_percent = CASE WHEN $4 THEN $5 ELSE load_percent END, \
             capacity = CASE WHEN $6 THEN $7 ELSE capacity END, \
             updated_at = $8 WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(change.healthy.is_some())
        .bind(flag(change.healthy.unwrap_or(false)))
        .bind(change.load_percent.is_some())
        .bind(change.load_percent.map(i64::from))
        .bind(change.capacity.is_some())
        .bind(i64::from(change.capacity.unwrap_or(0)))
        .bind(now.unix_millis())
        .execute(self.conn())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Makes switch `sequence` the device's newest, if it is newer than the one in force, and
    /// returns the assignment held until now; `None` when the request is stale (a switch with
    /// this or a higher sequence was already applied). On PostgreSQL the device's row stays
    /// locked until the transaction ends, so concurrent switches of one device run one after
    /// the other and each sees the one before.
    pub async fn claim_vpn_sequence(
        &mut self,
        handle: &DeviceHandle,
        sequence: u64,
        now: Timestamp,
    ) -> StoreResult<Option<VpnAssignmentRecord>> {
        let claimed = sqlx::query(
            "INSERT INTO vpn_assignments (handle, sequence, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (handle) DO UPDATE SET sequence = excluded.sequence, \
             updated_at = excluded.updated_at WHERE vpn_assignments.sequence < excluded.sequence",
        )
        .bind(handle.to_string())
        .bind(sequence_to_i64(sequence)?)
        .bind(now.unix_millis())
        .execute(self.conn())
        .await?;
        if claimed.rows_affected() != 1 {
            return Ok(None);
        }
        let row = sqlx::query("SELECT gateway, slot FROM vpn_assignments WHERE handle = $1")
            .bind(handle.to_string())
            .fetch_one(self.conn())
            .await?;
        let gateway = match (
            row.try_get::<Option<String>, _>("gateway")?,
            row.try_get::<Option<i64>, _>("slot")?,
        ) {
            (Some(gateway), Some(slot)) => Some((
                parse_id(&gateway, "vpn gateway id")?,
                u32::try_from(slot).map_err(|_| StoreError::Corrupt("vpn slot"))?,
            )),
            (None, None) => None,
            _ => return Err(StoreError::Corrupt("vpn assignment without its slot")),
        };
        Ok(Some(VpnAssignmentRecord { sequence, gateway }))
    }

    /// Takes a session slot of `gateway` if it accepts new sessions (healthy, a free slot, its
    /// reported load under `load_limit_percent`): one conditional update, so concurrent takes
    /// never exceed the capacity. `false` when it does not accept one.
    pub async fn take_vpn_slot(
        &mut self,
        id: &VpnGatewayId,
        load_limit_percent: u8,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE vpn_gateways SET assigned = assigned + 1, updated_at = $3 \
             WHERE id = $1 AND healthy = 1 AND assigned < capacity \
             AND COALESCE(load_percent, 0) < $2",
        )
        .bind(id.to_string())
        .bind(i64::from(load_limit_percent))
        .bind(now.unix_millis())
        .execute(self.conn())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Gives a session slot of `gateway` back.
    pub async fn release_vpn_slot(&mut self, id: &VpnGatewayId, now: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "UPDATE vpn_gateways SET assigned = assigned - 1, updated_at = $2 \
             WHERE id = $1 AND assigned > 0",
        )
        .bind(id.to_string())
        .bind(now.unix_millis())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// The lowest address slot of `gateway` below `limit` that no device holds.
    pub async fn free_vpn_slot(
        &mut self,
        id: &VpnGatewayId,
        limit: u32,
    ) -> StoreResult<Option<u32>> {
        let rows = sqlx::query(
            "SELECT slot FROM vpn_assignments WHERE gateway = $1 AND slot IS NOT NULL \
             ORDER BY slot",
        )
        .bind(id.to_string())
        .fetch_all(self.conn())
        .await?;
        let mut next: u32 = 0;
        for row in &rows {
            let held: u32 = number(row, "slot", "vpn slot")?;
            if held > next {
                break;
            }
            if held == next {
                next = next.saturating_add(1);
            }
        }
        Ok((next < limit).then_some(next))
    }

    /// Ends the device's VPN session, if it has one: the gateway's slot is given back and the
    /// assignment keeps only its sequence (so an older switch stays refused). `true` when there
    /// was a session.
    pub async fn end_vpn_session(
        &mut self,
        handle: &DeviceHandle,
        now: Timestamp,
    ) -> StoreResult<bool> {
        // Touching the row first locks it on PostgreSQL, so a concurrent switch of the device
        // waits and then sees the session ended.
        let touched = sqlx::query("UPDATE vpn_assignments SET updated_at = $2 WHERE handle = $1")
            .bind(handle.to_string())
            .bind(now.unix_millis())
            .execute(self.conn())
            .await?;
        if touched.rows_affected() != 1 {
            return Ok(false);
        }
        let row = sqlx::query("SELECT gateway FROM vpn_assignments WHERE handle = $1")
            .bind(handle.to_string())
            .fetch_one(self.conn())
            .await?;
        let Some(gateway) = row.try_get::<Option<String>, _>("gateway")? else {
            return Ok(false);
        };
        let gateway: VpnGatewayId = parse_id(&gateway, "vpn gateway id")?;
        self.release_vpn_slot(&gateway, now).await?;
        self.set_vpn_assignment(handle, None, None, now).await?;
        Ok(true)
    }

    /// Records the device's gateway and slot (or none: it left the VPN) and its WireGuard
    /// public key, for the sequence claimed in this transaction.
    pub async fn set_vpn_assignment(
        &mut self,
        handle: &DeviceHandle,
        gateway: Option<(&VpnGatewayId, u32)>,
        public_key: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE vpn_assignments SET gateway = $2, slot = $3, public_key = $4, \
             updated_at = $5 WHERE handle = $1",
        )
        .bind(handle.to_string())
        .bind(gateway.map(|(id, _)| id.to_string()))
        .bind(gateway.map(|(_, slot)| i64::from(slot)))
        .bind(public_key.map(str::to_owned))
        .bind(now.unix_millis())
        .execute(self.conn())
        .await?;
        Ok(())
    }
}
