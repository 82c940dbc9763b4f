//! Enrolled devices, enrollment tokens, the nonces of signed device requests and the bounded
//! posture history.
//!
//! A device row is keyed by its handle and holds no key and no hardware identifier. Records are
//! typed with the vocabulary of `enigm-types`: lifecycle and trust states are stored as their
//! one spelling, findings and production gates as their JSON, and decoded here, where a name
//! or JSON this build does not know is [`StoreError::Corrupt`]. The trust policy and the
//! attestation policy stay JSON that the server encodes (they are `enigm-trust` and
//! `enigm-attest` configuration, above this crate).
//!
//! A token use is consumed with `UPDATE … WHERE uses_left > 0 AND expires_at > now … RETURNING`,
//! which locks the row (the database in SQLite), so concurrent enrollments cannot spend one use
//! twice.

use enigm_types::{
    AdminId, DeviceHandle, DeviceState, EnrollmentTokenId, Finding, GateStatus, SetupStep,
    Timestamp, TrustState,
};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use std::collections::{HashMap, HashSet};

use crate::{
    Backend, Store, StoreError, StoreResult, WriteTx, flag, json_column, json_text, name_column,
    parse_id,
};

/// How many evaluations of one device the history keeps.
pub const POSTURE_HISTORY_LEN: i64 = 50;

pub struct NewEnrollmentToken {
    pub id: EnrollmentTokenId,
    pub token_digest_hex: String,
    pub group: String,
    /// The trust policy, as JSON.
    pub policy: String,
    /// The attestation policy, as JSON.
    pub attestation_policy: String,
    pub uses: u32,
    pub expires_at: Timestamp,
    pub managed_allowed: bool,
    pub created_by: AdminId,
    pub created_at: Timestamp,
}

/// What a consumed token use grants the enrolling device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedToken {
    pub id: EnrollmentTokenId,
    pub group: String,
    pub policy: String,
    pub attestation_policy: String,
    pub managed_allowed: bool,
}

/// A device's latest evaluation, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostureRecord {
    pub trust_state: TrustState,
    pub evaluated_at: Timestamp,
    /// Most severe first, as the engine ordered them.
    pub findings: Vec<Finding>,
    pub gates: Vec<GateStatus>,
    /// The required setup steps the device has not reported complete: empty when it is ready.
    pub setup_missing: Vec<SetupStep>,
}

/// One entry of a device's posture history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostureChange {
    pub trust_state: TrustState,
    pub evaluated_at: Timestamp,
    pub findings: Vec<Finding>,
}

pub struct NewDevice {
    pub handle: DeviceHandle,
    pub state: DeviceState,
    pub group: String,
    pub policy: String,
    /// The attestation policy, as JSON (kept in the device's attestation row).
    pub attestation_policy: String,
    pub managed_opt_in: bool,
    pub wipe_opt_in: bool,
    pub enrolled_at: Timestamp,
    pub enrollment_token: EnrollmentTokenId,
    pub posture: PostureRecord,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub handle: DeviceHandle,
    pub state: DeviceState,
    pub group: String,
    pub policy: String,
    pub managed_opt_in: bool,
    pub wipe_opt_in: bool,
    pub enrolled_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub enrollment_token: EnrollmentTokenId,
    pub posture: PostureRecord,
    /// Counts changes of what the device is evaluated under (see `CheckInWrite`).
    pub policy_revision: i64,
}

/// A device as the director reads it (see [`Store::director_standing`]).
#[derive(Debug, Clone)]
pub struct DirectorStanding {
    pub device: DeviceRecord,
    /// A lifecycle command waits for the device's acknowledgement.
    pub command_pending: bool,
    /// The OTA catalogue's generation at the same read.
    pub catalog_generation: i64,
}

/// Which devices to list: all filters must match; `after` pages by handle.
#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    pub state: Option<DeviceState>,
    pub trust_state: Option<TrustState>,
    pub group: Option<String>,
    pub after: Option<DeviceHandle>,
    /// Only devices seen at or after this time.
    pub seen_since: Option<Timestamp>,
    /// Most recently seen first instead of by handle.
    pub last_seen_first: bool,
    pub limit: u32,
}

const DEVICE_COLUMNS: &str = "handle, state, group_name, policy, managed_opt_in, wipe_opt_in, enrolled_at, \
     last_seen_at, trust_state, evaluated_at, findings, gates, setup_missing, enrollment_token, \
     policy_revision";

impl Store {
    pub async fn device(&self, handle: &DeviceHandle) -> StoreResult<Option<DeviceRecord>> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE handle = $1");
        let row = sqlx::query(&sql)
            .bind(handle.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(device_from_row).transpose()
    }

    /// What the director decides an update check from, in one read: the device's record,
    /// whether a lifecycle command (retire, wipe, ...) waits for its acknowledgement, and the
    /// OTA catalogue's generation. One round trip instead of four keeps update checks cheap.
    pub async fn director_standing(
        &self,
        handle: &DeviceHandle,
    ) -> StoreResult<Option<DirectorStanding>> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS}, \
             CAST(CASE WHEN EXISTS (SELECT 1 FROM device_commands c \
                  WHERE c.handle = devices.handle AND c.acknowledged_at IS NULL) \
                  THEN 1 ELSE 0 END AS BIGINT) AS command_pending, \
             (SELECT generation FROM ota_catalog_generation WHERE id = 1) AS catalog_generation \
             FROM devices WHERE handle = $1"
        );
        let row = sqlx::query(&sql)
            .bind(handle.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref()
            .map(|row| {
                Ok(DirectorStanding {
                    device: device_from_row(row)?,
                    command_pending: row.try_get::<i64, _>("command_pending")? != 0,
                    catalog_generation: row.try_get("catalog_generation")?,
                })
            })
            .transpose()
    }

    /// Devices in handle order, filtered.
    pub async fn list_devices(&self, filter: &DeviceFilter) -> StoreResult<Vec<DeviceRecord>> {
        let mut conditions = Vec::new();
        let mut values = Vec::new();
        for (column, value) in [
            ("state", filter.state.map(|state| state.as_str().to_owned())),
            (
                "trust_state",
                filter.trust_state.map(|state| state.as_str().to_owned()),
            ),
            ("group_name", filter.group.clone()),
        ] {
            if let Some(value) = value {
                values.push(value);
                conditions.push(format!("{column} = ${}", values.len()));
            }
        }
        if let Some(after) = &filter.after {
            values.push(after.to_string());
            conditions.push(format!("handle > ${}", values.len()));
        }
        if let Some(since) = filter.seen_since {
            // A number we format ourselves, never text from the request.
            conditions.push(format!("last_seen_at >= {}", since.unix_millis()));
        }
        let clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices {clause} ORDER BY {} LIMIT {}",
            if filter.last_seen_first {
                "last_seen_at DESC, handle"
            } else {
                "handle"
            },
            filter.limit
        );
        let mut query = sqlx::query(&sql);
        for value in values {
            query = query.bind(value);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(device_from_row).collect()
    }

    /// The stored evaluations of a device, oldest first.
    pub async fn posture_history(&self, handle: &DeviceHandle) -> StoreResult<Vec<PostureChange>> {
        let rows = sqlx::query(
            "SELECT trust_state, evaluated_at, findings FROM device_posture_history \
             WHERE handle = $1 ORDER BY seq",
        )
        .bind(handle.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PostureChange {
                    trust_state: name_column(row, "trust_state", "posture history trust state")?,
                    evaluated_at: Timestamp::from_unix_millis(row.try_get("evaluated_at")?),
                    findings: json_column(row, "findings", "posture history findings")?,
                })
            })
            .collect()
    }
}

/// One check-in to store: the outcome of a report whose signature was checked and which was
/// evaluated; never the report itself.
#[derive(Debug, Clone)]
pub struct CheckInWrite {
    pub handle: DeviceHandle,
    pub nonce: String,
    /// When the nonce may be forgotten: the request could no longer be fresh by then.
    pub nonce_expires_at: Timestamp,
    pub posture: PostureRecord,
    pub received_at: Timestamp,
    /// The device's `policy_revision` the evaluation's policies were loaded at; a check-in
    /// whose device has moved on since is answered [`CheckInStored::Stale`] and leaves no
    /// trace (its nonce is not kept). `None` stores it whatever the revision.
    pub policy_revision: Option<i64>,
}

/// What became of a check-in in its transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckInStored {
    /// Stored; the trust state the device had before it.
    Recorded { previous_trust_state: TrustState },
    /// The nonce was already used (by an earlier request, or one in the same batch).
    Replayed,
    /// Not in one of the active states (e.g. revoked meanwhile): its lifecycle state, or
    /// `None` for an unknown device.
    NotActive { state: Option<DeviceState> },
    /// What the device is evaluated under changed after its policies were loaded (a policy
    /// assignment of its group, an attestation): nothing was stored, the nonce is free again,
    /// and the caller evaluates again under the policies the device has now.
    Stale,
}

impl WriteTx<'_> {
    /// Stores a batch of check-ins in this transaction, answering each in order. A refused
    /// check-in (replayed nonce, device not active) is an answer, not an error, so the others
    /// are stored all the same. The batch costs a fixed number of statements whatever its
    /// size (each takes the whole batch as one JSON array parameter): per-row statements
    /// would each be a round trip to the database thread.
    pub async fn record_check_ins(
        &mut self,
        writes: &[CheckInWrite],
        active_states: &[DeviceState],
    ) -> StoreResult<Vec<CheckInStored>> {
        let backend = self.backend;
        let mut outcomes: Vec<Option<CheckInStored>> = vec![None; writes.len()];
        // Each write's findings as the row keeps them, encoded once: compared with the stored
        // text to see whether the evaluation changed, and written as they are.
        let encoded: Vec<EncodedPosture> = writes
            .iter()
            .map(|write| EncodedPosture::new(&write.posture))
            .collect::<StoreResult<_>>()?;

        // 1. Nonces: a nonce seen before, or earlier in this batch, is a replay.
        let mut fresh: HashSet<(String, &str)> = HashSet::with_capacity(writes.len());
        let mut nonce_rows = Vec::with_capacity(writes.len());
        for (write, outcome) in writes.iter().zip(outcomes.iter_mut()) {
            if fresh.insert((write.handle.to_string(), write.nonce.as_str())) {
                nonce_rows.push(serde_json::json!([
                    write.handle.to_string(),
                    write.nonce,
                    write.nonce_expires_at.unix_millis()
                ]));
            } else {
                *outcome = Some(CheckInStored::Replayed);
            }
        }
        let sql = match backend {
            Backend::Sqlite => {
                "INSERT INTO device_nonces (handle, nonce, expires_at) \
                 SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each($1) WHERE true \
                 ON CONFLICT (handle, nonce) DO NOTHING RETURNING handle, nonce"
            }
            Backend::Postgres => {
                "INSERT INTO device_nonces (handle, nonce, expires_at) \
                 SELECT e.v ->> 0, e.v ->> 1, (e.v ->> 2)::BIGINT \
                 FROM json_array_elements($1::JSON) AS e(v) \
                 ON CONFLICT (handle, nonce) DO NOTHING RETURNING handle, nonce"
            }
        };
        let inserted = sqlx::query(sql)
            .bind(json_text(&nonce_rows, "check-in batch nonces")?)
            .fetch_all(self.conn())
            .await?;
        let mut stored_nonces: HashSet<(String, String)> = HashSet::with_capacity(inserted.len());
        for row in &inserted {
            stored_nonces.insert((row.try_get("handle")?, row.try_get("nonce")?));
        }

        // 2. The devices as they are now (locked until commit on PostgreSQL, so a revocation
        //    cannot slip in between this read and the update).
        let handles: Vec<String> = {
            let unique: HashSet<String> = writes.iter().map(|w| w.handle.to_string()).collect();
            unique.into_iter().collect()
        };
        let sql = match backend {
            Backend::Sqlite => {
                "SELECT handle, state, trust_state, findings, history_seq, policy_revision \
                 FROM devices WHERE handle IN (SELECT value FROM json_each($1))"
            }
            Backend::Postgres => {
                "SELECT handle, state, trust_state, findings, history_seq, policy_revision \
                 FROM devices WHERE handle IN (SELECT json_array_elements_text($1::JSON)) \
                 FOR UPDATE"
            }
        };
        let rows = sqlx::query(sql)
            .bind(json_text(&handles, "check-in batch handles")?)
            .fetch_all(self.conn())
            .await?;
        let mut devices: HashMap<String, DeviceNow> = HashMap::with_capacity(rows.len());
        for row in &rows {
            let state: DeviceState = name_column(row, "state", "device state")?;
            devices.insert(
                row.try_get("handle")?,
                DeviceNow {
                    active: active_states.contains(&state),
                    state,
                    trust_state: name_column(row, "trust_state", "device trust state")?,
                    findings: row.try_get("findings")?,
                    history_seq: row.try_get("history_seq")?,
                    policy_revision: row.try_get("policy_revision")?,
                    latest: None,
                    history_grew: false,
                },
            );
        }

        // 3. In order: each check-in sees the trust state the one before it left.
        let mut history = Vec::new();
        let mut stale_nonces = Vec::new();
        for (index, (write, outcome)) in writes.iter().zip(outcomes.iter_mut()).enumerate() {
            if outcome.is_some() {
                continue;
            }
            let handle = write.handle.to_string();
            if !stored_nonces.contains(&(handle.clone(), write.nonce.clone())) {
                *outcome = Some(CheckInStored::Replayed);
                continue;
            }
            let Some(device) = devices.get_mut(&handle) else {
                *outcome = Some(CheckInStored::NotActive { state: None });
                continue;
            };
            if !device.active {
                *outcome = Some(CheckInStored::NotActive {
                    state: Some(device.state),
                });
                continue;
            }
            if write
                .policy_revision
                .is_some_and(|revision| revision != device.policy_revision)
            {
                // Evaluated under policies the device no longer has: the caller evaluates
                // again, with the same nonce, so this one must not stay spent.
                *outcome = Some(CheckInStored::Stale);
                stale_nonces.push(serde_json::json!([handle, write.nonce]));
                continue;
            }
            let Some(encoded) = encoded.get(index) else {
                continue;
            };
            let previous = std::mem::replace(&mut device.trust_state, write.posture.trust_state);
            device.latest = Some(index);
            // The history records changes of the evaluation (state or findings), not every
            // check-in: `last_seen_at` says when the device last reported. An unchanged
            // evaluation writes no history row, which saves a page write on most check-ins.
            // Findings compare as their stored text: one encoding, so equal text is equal
            // findings, and the stored row needs no decoding.
            let changed =
                previous != write.posture.trust_state || device.findings != encoded.findings;
            if changed {
                device.findings.clone_from(&encoded.findings);
                device.history_seq += 1;
                device.history_grew = true;
                history.push(serde_json::json!([
                    handle,
                    device.history_seq,
                    write.posture.evaluated_at.unix_millis(),
                    write.posture.trust_state.as_str(),
                    encoded.findings,
                ]));
            }
            *outcome = Some(CheckInStored::Recorded {
                previous_trust_state: previous,
            });
        }

        if !stale_nonces.is_empty() {
            let sql = match backend {
                Backend::Sqlite => {
                    "DELETE FROM device_nonces WHERE (handle, nonce) IN \
                     (SELECT value ->> 0, value ->> 1 FROM json_each($1))"
                }
                Backend::Postgres => {
                    "DELETE FROM device_nonces AS n USING json_array_elements($1::JSON) AS s(v) \
                     WHERE n.handle = s.v ->> 0 AND n.nonce = s.v ->> 1"
                }
            };
            sqlx::query(sql)
                .bind(json_text(&stale_nonces, "check-in batch stale nonces")?)
                .execute(self.conn())
                .await?;
        }

        // 4. Each device's row takes its latest check-in; the history keeps the last
        //    POSTURE_HISTORY_LEN changes.
        let mut updates = Vec::new();
        let mut trims = Vec::new();
        for (handle, device) in &devices {
            let Some((write, encoded)) = device
                .latest
                .and_then(|index| writes.get(index).zip(encoded.get(index)))
            else {
                continue;
            };
            updates.push(serde_json::json!([
                handle,
                write.posture.trust_state.as_str(),
                write.posture.evaluated_at.unix_millis(),
                encoded.findings,
                encoded.gates,
                write.received_at.unix_millis(),
                device.history_seq,
                encoded.setup_missing,
            ]));
            if device.history_grew {
                trims.push(serde_json::json!([
                    handle,
                    device.history_seq.saturating_sub(POSTURE_HISTORY_LEN)
                ]));
            }
        }
        if updates.is_empty() {
            return Ok(outcomes
                .into_iter()
                .map(|outcome| outcome.unwrap_or(CheckInStored::NotActive { state: None }))
                .collect());
        }
        let sql = match backend {
            Backend::Sqlite => {
                "UPDATE devices SET trust_state = u.value ->> 1, evaluated_at = u.value ->> 2, \
                 findings = u.value ->> 3, gates = u.value ->> 4, last_seen_at = u.value ->> 5, \
                 history_seq = u.value ->> 6, setup_missing = u.value ->> 7 \
                 FROM json_each($1) AS u WHERE devices.handle = u.value ->> 0"
            }
            Backend::Postgres => {
                "UPDATE devices SET trust_state = u.v ->> 1, evaluated_at = (u.v ->> 2)::BIGINT, \
                 findings = u.v ->> 3, gates = u.v ->> 4, last_seen_at = (u.v ->> 5)::BIGINT, \
                 history_seq = (u.v ->> 6)::BIGINT, setup_missing = u.v ->> 7 \
                 FROM json_array_elements($1::JSON) AS u(v) WHERE devices.handle = u.v ->> 0"
            }
        };
        let updated = sqlx::query(sql)
            .bind(json_text(&updates, "check-in batch updates")?)
            .execute(self.conn())
            .await?;
        if usize::try_from(updated.rows_affected()).ok() != Some(updates.len()) {
            return Err(StoreError::Corrupt("check-in batch update"));
        }
        let sql = match backend {
            Backend::Sqlite => {
                "INSERT INTO device_posture_history (handle, seq, evaluated_at, trust_state, findings) \
                 SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 \
                 FROM json_each($1) ORDER BY key"
            }
            Backend::Postgres => {
                "INSERT INTO device_posture_history (handle, seq, evaluated_at, trust_state, findings) \
                 SELECT e.v ->> 0, (e.v ->> 1)::BIGINT, (e.v ->> 2)::BIGINT, e.v ->> 3, e.v ->> 4 \
                 FROM json_array_elements($1::JSON) AS e(v)"
            }
        };
        if !history.is_empty() {
            sqlx::query(sql)
                .bind(json_text(&history, "check-in batch history")?)
                .execute(self.conn())
                .await?;
        }
        let sql = match backend {
            // Driven by the batch's devices into the history's primary key.
            Backend::Sqlite => {
                "DELETE FROM device_posture_history WHERE (handle, seq) IN ( \
                 SELECT h.handle, h.seq FROM json_each($1) AS t JOIN device_posture_history AS h \
                 ON h.handle = t.value ->> 0 AND h.seq <= t.value ->> 1)"
            }
            Backend::Postgres => {
                "DELETE FROM device_posture_history AS h USING json_array_elements($1::JSON) AS t(v) \
                 WHERE h.handle = t.v ->> 0 AND h.seq <= (t.v ->> 1)::BIGINT"
            }
        };
        if !trims.is_empty() {
            sqlx::query(sql)
                .bind(json_text(&trims, "check-in batch trims")?)
                .execute(self.conn())
                .await?;
        }
        Ok(outcomes
            .into_iter()
            .map(|outcome| outcome.unwrap_or(CheckInStored::NotActive { state: None }))
            .collect())
    }

    /// Forgets the nonces of every device that expired before `now` (they can no longer be
    /// replayed: the requests they came with are stale). Returns how many went.
    pub async fn forget_expired_nonces(&mut self, now: Timestamp) -> StoreResult<u64> {
        let result = sqlx::query("DELETE FROM device_nonces WHERE expires_at < $1")
            .bind(now.unix_millis())
            .execute(self.conn())
            .await?;
        Ok(result.rows_affected())
    }

    pub async fn insert_enrollment_token(&mut self, token: &NewEnrollmentToken) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO enrollment_tokens (id, token_digest, group_name, policy, uses_left, expires_at, \
             managed_allowed, created_by, created_at, attestation_policy) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(token.id.to_string())
        .bind(token.token_digest_hex.clone())
        .bind(token.group.clone())
        .bind(token.policy.clone())
        .bind(i64::from(token.uses))
        .bind(token.expires_at.unix_millis())
        .bind(flag(token.managed_allowed))
        .bind(token.created_by.to_string())
        .bind(token.created_at.unix_millis())
        .bind(token.attestation_policy.clone())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Spends one use of the token with this digest if it is unexpired and has uses left.
    pub async fn consume_enrollment_token(
        &mut self,
        token_digest_hex: &str,
        now: Timestamp,
    ) -> StoreResult<Option<ConsumedToken>> {
        let row = sqlx::query(
            "UPDATE enrollment_tokens SET uses_left = uses_left - 1 \
             WHERE token_digest = $1 AND uses_left > 0 AND expires_at > $2 \
             RETURNING id, group_name, policy, managed_allowed, attestation_policy",
        )
        .bind(token_digest_hex.to_owned())
        .bind(now.unix_millis())
        .fetch_optional(self.conn())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(ConsumedToken {
            id: parse_id(&row.try_get::<String, _>("id")?, "enrollment token id")?,
            group: row.try_get("group_name")?,
            policy: row.try_get("policy")?,
            attestation_policy: row.try_get("attestation_policy")?,
            managed_allowed: row.try_get::<i64, _>("managed_allowed")? != 0,
        }))
    }

    /// Records a request nonce; `Err(Conflict)` when this device already used it. Nonces of the
    /// device that can no longer be fresh are forgotten first.
    pub async fn record_device_nonce(
        &mut self,
        handle: &DeviceHandle,
        nonce: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM device_nonces WHERE handle = $1 AND expires_at < $2")
            .bind(handle.to_string())
            .bind(now.unix_millis())
            .execute(self.conn())
            .await?;
        sqlx::query("INSERT INTO device_nonces (handle, nonce, expires_at) VALUES ($1, $2, $3)")
            .bind(handle.to_string())
            .bind(nonce.to_owned())
            .bind(expires_at.unix_millis())
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Remembers a request's nonce unless it was seen before: `false` for a replay, and then
    /// nothing is written (so that one replay in a batch does not spoil the batch's
    /// transaction). Expired nonces are forgotten by [`WriteTx::forget_expired_nonces`].
    pub async fn claim_device_nonce(
        &mut self,
        handle: &DeviceHandle,
        nonce: &str,
        expires_at: Timestamp,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "INSERT INTO device_nonces (handle, nonce, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (handle, nonce) DO NOTHING",
        )
        .bind(handle.to_string())
        .bind(nonce.to_owned())
        .bind(expires_at.unix_millis())
        .execute(self.conn())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// [`WriteTx::claim_device_nonce`] for many requests in one statement per chunk (the
    /// director's group commit): whether each was claimed, in order. A nonce that appears twice
    /// in `nonces` is claimed by its first appearance only.
    pub async fn claim_device_nonces(
        &mut self,
        nonces: &[(DeviceHandle, String, Timestamp)],
    ) -> StoreResult<Vec<bool>> {
        let mut claimed = vec![false; nonces.len()];
        let mut first_seen = std::collections::HashSet::new();
        let unique: Vec<(usize, String, &str, i64)> = nonces
            .iter()
            .enumerate()
            .filter(|(_, (handle, nonce, _))| first_seen.insert((*handle, nonce.as_str())))
            .map(|(at, (handle, nonce, expires))| {
                (
                    at,
                    handle.to_string(),
                    nonce.as_str(),
                    expires.unix_millis(),
                )
            })
            .collect();
        for chunk in unique.chunks(NONCES_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO device_nonces (handle, nonce, expires_at) VALUES {} \
                 ON CONFLICT (handle, nonce) DO NOTHING RETURNING handle, nonce",
                crate::values_placeholders(chunk.len(), 3)
            );
            let mut query = sqlx::query(&sql);
            for (_, handle, nonce, expires) in chunk {
                query = query
                    .bind(handle.clone())
                    .bind((*nonce).to_owned())
                    .bind(*expires);
            }
            let rows = query.fetch_all(self.conn()).await?;
            let mut inserted = std::collections::HashSet::new();
            for row in &rows {
                inserted.insert((
                    row.try_get::<String, _>("handle")?,
                    row.try_get::<String, _>("nonce")?,
                ));
            }
            for (at, handle, nonce, _) in chunk {
                if inserted.contains(&(handle.clone(), (*nonce).to_owned()))
                    && let Some(slot) = claimed.get_mut(*at)
                {
                    *slot = true;
                }
            }
        }
        Ok(claimed)
    }

    /// Creates a device with its first evaluation; `Err(Conflict)` when the handle exists.
    pub async fn insert_device(&mut self, device: &NewDevice) -> StoreResult<()> {
        let posture = EncodedPosture::new(&device.posture)?;
        sqlx::query(
            "INSERT INTO devices (handle, state, group_name, policy, managed_opt_in, wipe_opt_in, enrolled_at, \
             last_seen_at, trust_state, evaluated_at, findings, gates, history_seq, enrollment_token, \
             setup_missing) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $14)",
        )
        .bind(device.handle.to_string())
        .bind(device.state.as_str().to_owned())
        .bind(device.group.clone())
        .bind(device.policy.clone())
        .bind(flag(device.managed_opt_in))
        .bind(flag(device.wipe_opt_in))
        .bind(device.enrolled_at.unix_millis())
        .bind(device.enrolled_at.unix_millis())
        .bind(device.posture.trust_state.as_str().to_owned())
        .bind(device.posture.evaluated_at.unix_millis())
        .bind(posture.findings.clone())
        .bind(posture.gates)
        .bind(device.enrollment_token.to_string())
        .bind(posture.setup_missing)
        .execute(self.conn())
        .await?;
        self.insert_device_attestation(&device.handle, &device.attestation_policy)
            .await?;
        self.insert_history(&device.handle, 1, &device.posture, &posture.findings)
            .await
    }

    /// Stores a new evaluation of a device that is in one of `active_states`, returning its
    /// previous trust state; `None` when the device is not (any more) in such a state, so a
    /// revocation committed meanwhile is never overwritten.
    pub async fn record_posture(
        &mut self,
        handle: &DeviceHandle,
        active_states: &[DeviceState],
        posture: &PostureRecord,
        now: Timestamp,
    ) -> StoreResult<Option<TrustState>> {
        let encoded = EncodedPosture::new(posture)?;
        let previous = sqlx::query("SELECT trust_state FROM devices WHERE handle = $1")
            .bind(handle.to_string())
            .fetch_optional(self.conn())
            .await?;
        let Some(previous) = previous else {
            return Ok(None);
        };
        let previous: TrustState = name_column(&previous, "trust_state", "device trust state")?;
        let placeholders: Vec<String> = (0..active_states.len())
            .map(|n| format!("${}", n + 8))
            .collect();
        let sql = format!(
            "UPDATE devices SET trust_state = $1, evaluated_at = $2, findings = $3, gates = $4, \
             last_seen_at = $5, setup_missing = $7, history_seq = history_seq + 1 \
             WHERE handle = $6 AND state IN ({}) RETURNING history_seq",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql)
            .bind(posture.trust_state.as_str().to_owned())
            .bind(posture.evaluated_at.unix_millis())
            .bind(encoded.findings.clone())
            .bind(encoded.gates)
            .bind(now.unix_millis())
            .bind(handle.to_string())
            .bind(encoded.setup_missing);
        for state in active_states {
            query = query.bind(state.as_str().to_owned());
        }
        let Some(row) = query.fetch_optional(self.conn()).await? else {
            return Ok(None);
        };
        let seq: i64 = row.try_get("history_seq")?;
        self.insert_history(handle, seq, posture, &encoded.findings)
            .await?;
        Ok(Some(previous))
    }

    /// The device's lifecycle state, read in this transaction (locked until commit on
    /// PostgreSQL); `None` for an unknown device.
    pub async fn device_state(
        &mut self,
        handle: &DeviceHandle,
    ) -> StoreResult<Option<DeviceState>> {
        let sql = match self.backend {
            Backend::Sqlite => "SELECT state FROM devices WHERE handle = $1",
            Backend::Postgres => "SELECT state FROM devices WHERE handle = $1 FOR UPDATE",
        };
        let row = sqlx::query(sql)
            .bind(handle.to_string())
            .fetch_optional(self.conn())
            .await?;
        row.map(|row| name_column(&row, "state", "device state"))
            .transpose()
    }

    /// Moves a device from `from` to `to`, only if it is still in `from` (the caller checked the
    /// transition against the table); `false` when it is not (unknown, or changed meanwhile).
    pub async fn transition_device(
        &mut self,
        handle: &DeviceHandle,
        from: DeviceState,
        to: DeviceState,
    ) -> StoreResult<bool> {
        let result = sqlx::query("UPDATE devices SET state = $1 WHERE handle = $2 AND state = $3")
            .bind(to.as_str().to_owned())
            .bind(handle.to_string())
            .bind(from.as_str().to_owned())
            .execute(self.conn())
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Moves a device to another lifecycle state (the lifecycle workflow checks the transition).
    pub async fn set_device_state(
        &mut self,
        handle: &DeviceHandle,
        state: DeviceState,
    ) -> StoreResult<bool> {
        let result = sqlx::query("UPDATE devices SET state = $1 WHERE handle = $2")
            .bind(state.as_str().to_owned())
            .bind(handle.to_string())
            .execute(self.conn())
            .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn insert_history(
        &mut self,
        handle: &DeviceHandle,
        seq: i64,
        posture: &PostureRecord,
        findings_json: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO device_posture_history (handle, seq, evaluated_at, trust_state, findings) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(handle.to_string())
        .bind(seq)
        .bind(posture.evaluated_at.unix_millis())
        .bind(posture.trust_state.as_str().to_owned())
        .bind(findings_json.to_owned())
        .execute(self.conn())
        .await?;
        sqlx::query("DELETE FROM device_posture_history WHERE handle = $1 AND seq <= $2")
            .bind(handle.to_string())
            .bind(seq.saturating_sub(POSTURE_HISTORY_LEN))
            .execute(self.conn())
            .await?;
        Ok(())
    }
}

/// Rows per multi-row nonce insert (three parameters each, well within both backends' limits).
const NONCES_PER_STATEMENT: usize = 256;

fn device_from_row(row: &AnyRow) -> StoreResult<DeviceRecord> {
    Ok(DeviceRecord {
        handle: parse_id(&row.try_get::<String, _>("handle")?, "device handle")?,
        state: name_column(row, "state", "device state")?,
        group: row.try_get("group_name")?,
        policy: row.try_get("policy")?,
        managed_opt_in: row.try_get::<i64, _>("managed_opt_in")? != 0,
        wipe_opt_in: row.try_get::<i64, _>("wipe_opt_in")? != 0,
        enrolled_at: Timestamp::from_unix_millis(row.try_get("enrolled_at")?),
        last_seen_at: Timestamp::from_unix_millis(row.try_get("last_seen_at")?),
        enrollment_token: parse_id(
            &row.try_get::<String, _>("enrollment_token")?,
            "enrollment token id",
        )?,
        posture: PostureRecord {
            trust_state: name_column(row, "trust_state", "device trust state")?,
            evaluated_at: Timestamp::from_unix_millis(row.try_get("evaluated_at")?),
            findings: json_column(row, "findings", "device findings")?,
            gates: json_column(row, "gates", "device production gates")?,
            setup_missing: json_column(row, "setup_missing", "device setup steps")?,
        },
        policy_revision: row.try_get("policy_revision")?,
    })
}

/// A device's row as a check-in batch sees it while it is being written.
struct DeviceNow {
    active: bool,
    state: DeviceState,
    trust_state: TrustState,
    /// The stored findings as their JSON text.
    findings: String,
    /// Whether this batch added to the device's history (which then needs trimming).
    history_grew: bool,
    history_seq: i64,
    policy_revision: i64,
    /// The batch's latest check-in of the device, which its row takes.
    latest: Option<usize>,
}

/// A posture's JSON columns, encoded once.
struct EncodedPosture {
    findings: String,
    gates: String,
    setup_missing: String,
}

impl EncodedPosture {
    fn new(posture: &PostureRecord) -> StoreResult<Self> {
        Ok(EncodedPosture {
            findings: json_text(&posture.findings, "device findings")?,
            gates: json_text(&posture.gates, "device production gates")?,
            setup_missing: json_text(&posture.setup_missing, "device setup steps")?,
        })
    }
}
