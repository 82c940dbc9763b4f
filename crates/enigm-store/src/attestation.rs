//! Device attestation rows (migration `0006_device_attestation.sql`): per device, the attestation
//! policy it enrolled under, the pairing its first accepted attestation pinned, and the outcome
//! of its last attestation with the minimal claims. No evidence is stored: the certificates and
//! quotes are discarded after verification. The verdict and the evidence format are typed (a name
//! this build does not know is a corrupt row); policies, pairings and claims are JSON of types
//! that live above the store (`enigm-attest`), encoded by the server.

use enigm_types::{
    AttestationFormat, AttestationVerdict, DeviceHandle, Timestamp, Vocabulary as _,
};
use sqlx::Row as _;

use crate::{Backend, Store, StoreError, StoreResult, WriteTx};

/// A device's attestation row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationRecord {
    /// The attestation policy, as JSON.
    pub policy: String,
    /// The pairing, as JSON, once an attestation was accepted.
    pub pairing: Option<String>,
    /// The last outcome, when the device ever sent evidence.
    pub last: Option<AttestationResultRecord>,
    /// When an attestation was last accepted.
    pub accepted_at: Option<Timestamp>,
    /// The format and claims (JSON) of the last accepted attestation (migration
    /// `0013_attested_claims.sql`): what attested signals are derived from.
    pub accepted: Option<(AttestationFormat, String)>,
}

/// The outcome of one attestation, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationResultRecord {
    pub verdict: AttestationVerdict,
    pub format: AttestationFormat,
    /// The minimal claims, as JSON.
    pub claims: String,
    pub attested_at: Timestamp,
}

const COLUMNS: &str = "policy, pairing, verdict, format, claims, attested_at, accepted_at, \
                       accepted_format, accepted_claims";

fn record(row: &sqlx::any::AnyRow) -> StoreResult<AttestationRecord> {
    let verdict: Option<String> = row.try_get("verdict")?;
    let last = match verdict {
        Some(verdict) => Some(AttestationResultRecord {
            verdict: AttestationVerdict::from_name(&verdict)
                .map_err(|_| StoreError::Corrupt("attestation verdict"))?,
            format: row
                .try_get::<Option<String>, _>("format")?
                .and_then(|format| AttestationFormat::from_name(&format).ok())
                .ok_or(StoreError::Corrupt("attestation format"))?,
            claims: row
                .try_get::<Option<String>, _>("claims")?
                .unwrap_or_else(|| "{}".to_owned()),
            attested_at: Timestamp::from_unix_millis(
                row.try_get::<Option<i64>, _>("attested_at")?.unwrap_or(0),
            ),
        }),
        None => None,
    };
    Ok(AttestationRecord {
        policy: row.try_get("policy")?,
        pairing: row.try_get("pairing")?,
        last,
        accepted_at: row
            .try_get::<Option<i64>, _>("accepted_at")?
            .map(Timestamp::from_unix_millis),
        accepted: match row.try_get::<Option<String>, _>("accepted_format")? {
            Some(format) => Some((
                AttestationFormat::from_name(&format)
                    .map_err(|_| StoreError::Corrupt("accepted attestation format"))?,
                row.try_get::<Option<String>, _>("accepted_claims")?
                    .unwrap_or_else(|| "{}".to_owned()),
            )),
            None => None,
        },
    })
}

impl Store {
    /// The attestation row of a device (absent for a device that is not enrolled).
    pub async fn device_attestation(
        &self,
        handle: &DeviceHandle,
    ) -> StoreResult<Option<AttestationRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM device_attestations WHERE handle = $1"
        ))
        .bind(handle.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(record).transpose()
    }
}

impl WriteTx<'_> {
    /// Creates a device's attestation row at enrollment, with its policy and, when the
    /// enrollment carried an accepted attestation, the pairing and outcome.
    pub(crate) async fn insert_device_attestation(
        &mut self,
        handle: &DeviceHandle,
        policy: &str,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO device_attestations (handle, policy) VALUES ($1, $2)")
            .bind(handle.to_string())
            .bind(policy.to_owned())
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// The attestation row, locked until the transaction ends (`FOR UPDATE` on PostgreSQL; the
    /// write gate on SQLite), so that two attestations of one device are appraised against the
    /// pairing one after the other.
    pub async fn device_attestation_for_update(
        &mut self,
        handle: &DeviceHandle,
    ) -> StoreResult<Option<AttestationRecord>> {
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM device_attestations WHERE handle = $1{lock}"
        ))
        .bind(handle.to_string())
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// Records an outcome. An accepted one also sets the pairing (the caller passes the advanced
    /// pairing), the time of acceptance and the accepted claims; a rejected one leaves them as
    /// they were.
    pub async fn record_attestation(
        &mut self,
        handle: &DeviceHandle,
        result: &AttestationResultRecord,
        accepted_pairing: Option<&str>,
    ) -> StoreResult<()> {
        let query = match accepted_pairing {
            Some(_) => {
                "UPDATE device_attestations SET verdict = $2, format = $3, claims = $4, \
                 attested_at = $5, pairing = $6, accepted_at = $5, accepted_format = $3, \
                 accepted_claims = $4 WHERE handle = $1"
            }
            None => {
                "UPDATE device_attestations SET verdict = $2, format = $3, claims = $4, \
                 attested_at = $5 WHERE handle = $1"
            }
        };
        let mut statement = sqlx::query(query)
            .bind(handle.to_string())
            .bind(result.verdict.name())
            .bind(result.format.name())
            .bind(result.claims.clone())
            .bind(result.attested_at.unix_millis());
        if let Some(pairing) = accepted_pairing {
            statement = statement.bind(pairing.to_owned());
        }
        statement.execute(self.conn()).await?;
        // What the device is evaluated under may depend on its last attestation: every
        // process's cached evaluation inputs of this device are stale from here.
        sqlx::query("UPDATE devices SET policy_revision = policy_revision + 1 WHERE handle = $1")
            .bind(handle.to_string())
            .execute(self.conn())
            .await?;
        Ok(())
    }
}
