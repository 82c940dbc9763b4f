//! The tamper-evident audit log in SQL: leaf indexes handed out at commit, the sequencer that
//! folds committed leaves into the Merkle tree, signed checkpoints, proofs, and retention.
//!
//! The tree logic is `enigm-auditlog`'s and does no I/O. Each tree operation here runs twice:
//! once against an empty [`Snapshot`] that records which nodes it asks for, then, after those
//! nodes are read in one query, against a snapshot that holds them. Stored nodes never change,
//! so the two runs ask for the same keys.

use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;

use enigm_auditlog::{
    AuditEventKey, ConsistencyProof, Hash, InclusionProof, Log, NewNodes, NodeKey, NodeStore,
    TreeError, leaf_hash,
};
use enigm_types::{AuditEvent, Timestamp};
use sqlx::Row as _;

use crate::{Backend, Store, StoreError, StoreResult, WriteTx};

/// How many rows one multi-row INSERT carries. Measured on SQLite through sqlx `Any`: 16 rows
/// per statement appends about 2.5 times faster than 256 (whose many bound parameters cost more
/// than the statements they save) and faster than one row per statement.
const ROWS_PER_INSERT: usize = 16;

/// The outcome of one sequencer step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntegratedBatch {
    pub old_size: u64,
    pub new_size: u64,
    /// The root of the tree of `new_size` leaves.
    pub root: Hash,
}

/// A signed tree head as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub tree_size: u64,
    pub root: Hash,
    /// The signed note, exactly as published.
    pub note: String,
    pub published_at: Timestamp,
}

/// One leaf of the log with its body, if the body is still kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafEntry {
    pub index: u64,
    pub leaf_hash: Hash,
    /// The canonical encoding the leaf commits to; `None` once purged (or if missing).
    pub body: Option<String>,
    /// Whether the body is gone under a recorded purge. A body gone without one is tampering.
    pub purged: bool,
}

/// A recorded purge of the bodies of leaves `first..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeRecord {
    pub first: u64,
    pub end: u64,
    /// Bodies of events older than this were purged.
    pub cutoff: Timestamp,
    pub purged_at: Timestamp,
}

/// Whether the audit log is on legal hold, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegalHold {
    pub enabled: bool,
    pub changed_at: Option<Timestamp>,
}

impl Store {
    /// The number of leaves folded into the tree.
    pub async fn audit_tree_size(&self) -> StoreResult<u64> {
        tree_size_in(&mut *self.pool().acquire().await?).await
    }

    /// The number of leaves with an index: committed events, folded into the tree or not yet.
    pub async fn audit_leaf_count(&self) -> StoreResult<u64> {
        leaf_count_in(&mut *self.pool().acquire().await?).await
    }

    /// One sequencer step: folds up to `max_leaves` committed leaves past the tree's size into
    /// the tree, writing the nodes they complete and the new size in one transaction.
    /// `None` when there was nothing to fold.
    ///
    /// Only leaves whose event carries a valid tag of the audit event key are folded in (from
    /// the first leaf handed out after tags were introduced); the step stops before the first
    /// that does not, and fails with [`StoreError::AuditEventUnauthenticated`] when that is the
    /// next leaf: leaves are dense, so the log cannot grow past it.
    ///
    /// Fails with [`StoreError::AuditLeafMissing`] when the next leaf's event is absent, which
    /// only tampering causes: leaf indexes are handed out densely, in commit order.
    pub async fn integrate_audit(&self, max_leaves: u32) -> StoreResult<Option<IntegratedBatch>> {
        let key = self.audit_event_key();
        let mut tx = self.begin().await?;
        // Taking the state row first serialises sequencers, whichever process runs them.
        let row = sqlx::query(
            "UPDATE audit_tree_state SET tree_size = tree_size WHERE id = 1 \
             RETURNING tree_size, mac_required_from",
        )
        .fetch_one(tx.conn())
        .await?;
        let old_size = to_u64(row.try_get("tree_size")?)?;
        let mac_required_from = to_u64(row.try_get("mac_required_from")?)?;
        let rows = sqlx::query(
            "SELECT leaf_index, canonical, mac FROM audit_events WHERE leaf_index >= $1 \
             ORDER BY leaf_index LIMIT $2",
        )
        .bind(to_i64(old_size)?)
        .bind(i64::from(max_leaves.max(1)))
        .fetch_all(tx.conn())
        .await?;
        let mut leaves = Vec::with_capacity(rows.len());
        for (expected, row) in (old_size..).zip(&rows) {
            let index = to_u64(row.try_get("leaf_index")?)?;
            if index != expected {
                return Err(StoreError::AuditLeafMissing { index: expected });
            }
            let canonical: String = row.try_get("canonical")?;
            if index >= mac_required_from {
                let key = key.as_deref().ok_or(StoreError::AuditEventKeyMissing)?;
                let mac: Option<String> = row.try_get("mac")?;
                if !mac_verifies(key, index, &canonical, mac.as_deref()) {
                    if leaves.is_empty() {
                        return Err(StoreError::AuditEventUnauthenticated { index });
                    }
                    // Fold in the authenticated leaves before it; the next step reports it.
                    break;
                }
            }
            leaves.push(leaf_hash(canonical.as_bytes()));
        }
        if leaves.is_empty() {
            return Ok(None);
        }
        let batch = tree_op(&mut tx, old_size, |log| log.prepare_append(&leaves)).await?;
        insert_nodes(&mut tx, &batch).await?;
        let new_size = batch.new_size();
        sqlx::query("UPDATE audit_tree_state SET tree_size = $1 WHERE id = 1")
            .bind(to_i64(new_size)?)
            .execute(tx.conn())
            .await?;
        let root = tree_op(&mut tx, new_size, |log| log.root()).await?;
        tx.commit().await?;
        Ok(Some(IntegratedBatch {
            old_size,
            new_size,
            root,
        }))
    }

    /// The root of the tree when it held `size` leaves.
    pub async fn audit_root_at(&self, size: u64) -> StoreResult<Hash> {
        let mut conn = self.pool().acquire().await?;
        let tree_size = self.audit_tree_size().await?;
        check_in_tree(size, tree_size)?;
        tree_op(&mut *conn, tree_size, |log| log.root_at(size)).await
    }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves, with the leaf's hash.
    pub async fn audit_inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> StoreResult<(Hash, InclusionProof)> {
        let mut conn = self.pool().acquire().await?;
        let tree_size = self.audit_tree_size().await?;
        check_in_tree(size, tree_size)?;
        if index >= size {
            return Err(StoreError::NotInAuditTree {
                requested: index,
                tree_size: size,
            });
        }
        let proof = tree_op(&mut *conn, tree_size, |log| {
            log.inclusion_proof(index, size)
        })
        .await?;
        let leaf = tree_op(&mut *conn, tree_size, |log| log.leaf(index)).await?;
        Ok((leaf, proof))
    }

    /// The proof that the tree of `old_size` leaves is a prefix of the tree of `new_size`.
    pub async fn audit_consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> StoreResult<ConsistencyProof> {
        let mut conn = self.pool().acquire().await?;
        let tree_size = self.audit_tree_size().await?;
        check_in_tree(new_size, tree_size)?;
        check_in_tree(old_size, new_size)?;
        if old_size == 0 && new_size > 0 {
            return Err(StoreError::ConsistencyFromEmptyTree);
        }
        tree_op(&mut *conn, tree_size, |log| {
            log.consistency_proof(old_size, new_size)
        })
        .await
    }

    /// Stores a signed tree head. Sizes are unique: a second checkpoint of one size is refused
    /// with [`StoreError::Conflict`].
    pub async fn insert_audit_checkpoint(&self, checkpoint: &StoredCheckpoint) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO audit_checkpoints (tree_size, root, note, published_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(to_i64(checkpoint.tree_size)?)
        .bind(checkpoint.root.as_bytes().to_vec())
        .bind(checkpoint.note.clone())
        .bind(checkpoint.published_at.unix_millis())
        .execute(tx.conn())
        .await?;
        tx.commit().await
    }

    /// The checkpoint of the largest tree, if any has been published.
    pub async fn latest_audit_checkpoint(&self) -> StoreResult<Option<StoredCheckpoint>> {
        let row = sqlx::query(
            "SELECT tree_size, root, note, published_at FROM audit_checkpoints \
             ORDER BY tree_size DESC LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(checkpoint_from_row).transpose()
    }

    /// Checkpoints of trees larger than `after_size`, smallest first.
    pub async fn audit_checkpoints(
        &self,
        after_size: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<StoredCheckpoint>> {
        let after = match after_size {
            Some(size) => to_i64(size)?,
            None => -1,
        };
        let rows = sqlx::query(
            "SELECT tree_size, root, note, published_at FROM audit_checkpoints \
             WHERE tree_size > $1 ORDER BY tree_size LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit.max(1)))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(checkpoint_from_row).collect()
    }

    /// Leaves `start..start + limit` of the tree (no further than its size), each with its
    /// body if kept.
    pub async fn audit_leaves(&self, start: u64, limit: u32) -> StoreResult<Vec<LeafEntry>> {
        let tree_size = self.audit_tree_size().await?;
        let end = start.saturating_add(u64::from(limit)).min(tree_size);
        if start >= end {
            return Ok(Vec::new());
        }
        let (first, last) = (to_i64(start)?, to_i64(end)?);
        let hashes = sqlx::query(
            "SELECT idx, hash FROM audit_tree_nodes WHERE level = 0 AND idx >= $1 AND idx < $2 \
             ORDER BY idx",
        )
        .bind(first)
        .bind(last)
        .fetch_all(self.pool())
        .await?;
        let bodies = sqlx::query(
            "SELECT leaf_index, canonical FROM audit_events \
             WHERE leaf_index >= $1 AND leaf_index < $2",
        )
        .bind(first)
        .bind(last)
        .fetch_all(self.pool())
        .await?;
        let mut bodies: HashMap<u64, String> = bodies
            .iter()
            .map(|row| {
                Ok((
                    to_u64(row.try_get("leaf_index")?)?,
                    row.try_get("canonical")?,
                ))
            })
            .collect::<StoreResult<_>>()?;
        let purges = self.audit_purges().await?;
        let mut entries = Vec::with_capacity(hashes.len());
        for (expected, row) in (start..).zip(&hashes) {
            let index = to_u64(row.try_get("idx")?)?;
            if index != expected {
                return Err(StoreError::Corrupt("audit leaf hash missing"));
            }
            let body = bodies.remove(&index);
            // A purge event inside a later purge's range keeps its body: it was not purged.
            let purged = body.is_none() && purges.iter().any(|purge| purge.covers(index));
            entries.push(LeafEntry {
                index,
                leaf_hash: hash_from_row(row)?,
                body,
                purged,
            });
        }
        if u64::try_from(entries.len()) != Ok(end - start) {
            return Err(StoreError::Corrupt("audit leaf hash missing"));
        }
        Ok(entries)
    }

    /// Every recorded purge, oldest first.
    pub async fn audit_purges(&self) -> StoreResult<Vec<PurgeRecord>> {
        purges_in(&mut *self.pool().acquire().await?).await
    }

    pub async fn audit_legal_hold(&self) -> StoreResult<LegalHold> {
        let row = sqlx::query(
            "SELECT legal_hold, legal_hold_changed_at FROM audit_tree_state WHERE id = 1",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(LegalHold {
            enabled: row.try_get::<i64, _>("legal_hold")? != 0,
            changed_at: row
                .try_get::<Option<i64>, _>("legal_hold_changed_at")?
                .map(Timestamp::from_unix_millis),
        })
    }

    /// Purges the bodies of the oldest leaves: the longest run, from the end of the last purge,
    /// of leaves in the tree whose events are all older than `cutoff` (purge events, the
    /// evidence of earlier purges, and legal-hold changes are kept and do not end the run). Records the purge and
    /// `event` (which should describe it: [`PurgeRecord`] says which leaves) in the same
    /// transaction. Does nothing on legal hold or when no leaf qualifies.
    pub async fn purge_expired_audit(
        &self,
        cutoff: Timestamp,
        now: Timestamp,
        event: impl FnOnce(&PurgeRecord) -> AuditEvent,
    ) -> StoreResult<Option<PurgeRecord>> {
        let mut tx = self.begin().await?;
        // The state row is the sequencer's lock too: the tree size cannot move under us.
        let row = sqlx::query(
            "UPDATE audit_tree_state SET tree_size = tree_size WHERE id = 1 \
             RETURNING tree_size, legal_hold",
        )
        .fetch_one(tx.conn())
        .await?;
        if row.try_get::<i64, _>("legal_hold")? != 0 {
            return Ok(None);
        }
        let tree_size: i64 = row.try_get("tree_size")?;
        let row = sqlx::query("SELECT MAX(end_leaf) AS purged FROM audit_purges")
            .fetch_one(tx.conn())
            .await?;
        let first = row.try_get::<Option<i64>, _>("purged")?.unwrap_or(0);
        let row = sqlx::query(
            "SELECT MIN(leaf_index) AS kept FROM audit_events WHERE leaf_index >= $1 \
             AND time >= $2 AND action NOT IN ('audit.purge', 'audit.legal-hold')",
        )
        .bind(first)
        .bind(cutoff.unix_millis())
        .fetch_one(tx.conn())
        .await?;
        let end = row
            .try_get::<Option<i64>, _>("kept")?
            .map_or(tree_size, |kept| kept.min(tree_size));
        if end <= first {
            return Ok(None);
        }
        let record = PurgeRecord {
            first: to_u64(first)?,
            end: to_u64(end)?,
            cutoff,
            purged_at: now,
        };
        sqlx::query(
            "INSERT INTO audit_purges (first_leaf, end_leaf, cutoff, purged_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(first)
        .bind(end)
        .bind(cutoff.unix_millis())
        .bind(now.unix_millis())
        .execute(tx.conn())
        .await?;
        sqlx::query(
            "DELETE FROM audit_events WHERE leaf_index >= $1 AND leaf_index < $2 \
             AND action NOT IN ('audit.purge', 'audit.legal-hold')",
        )
        .bind(first)
        .bind(end)
        .execute(tx.conn())
        .await?;
        tx.append_audit(&event(&record)).await?;
        tx.commit().await?;
        Ok(Some(record))
    }
}

impl WriteTx<'_> {
    /// Places the audit log on legal hold (bodies are kept past retention) or lifts it.
    pub async fn set_audit_legal_hold(&mut self, enabled: bool, now: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "UPDATE audit_tree_state SET legal_hold = $1, legal_hold_changed_at = $2 WHERE id = 1",
        )
        .bind(crate::flag(enabled))
        .bind(now.unix_millis())
        .execute(self.conn())
        .await?;
        Ok(())
    }
}

impl PurgeRecord {
    pub fn covers(&self, index: u64) -> bool {
        (self.first..self.end).contains(&index)
    }
}

pub(crate) async fn tree_size_in(conn: &mut sqlx::AnyConnection) -> StoreResult<u64> {
    let row = sqlx::query("SELECT tree_size FROM audit_tree_state WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    to_u64(row.try_get("tree_size")?)
}

pub(crate) async fn leaf_count_in(conn: &mut sqlx::AnyConnection) -> StoreResult<u64> {
    let row = sqlx::query("SELECT next_leaf FROM audit_leaf_counter WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    to_u64(row.try_get("next_leaf")?)
}

pub(crate) async fn purges_in(conn: &mut sqlx::AnyConnection) -> StoreResult<Vec<PurgeRecord>> {
    let rows = sqlx::query(
        "SELECT first_leaf, end_leaf, cutoff, purged_at FROM audit_purges ORDER BY first_leaf",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(PurgeRecord {
                first: to_u64(row.try_get("first_leaf")?)?,
                end: to_u64(row.try_get("end_leaf")?)?,
                cutoff: Timestamp::from_unix_millis(row.try_get("cutoff")?),
                purged_at: Timestamp::from_unix_millis(row.try_get("purged_at")?),
            })
        })
        .collect()
}

/// Inserts audit events with consecutive leaf indexes taken from the counter. Called as the
/// last writes of a transaction, right before its commit: the counter row stays locked until
/// then, so indexes are handed out in commit order and no transaction waits on it while
/// holding anything else.
/// Events per INSERT: one statement takes a whole chunk as a single JSON array parameter, which
/// the database unpacks (`json_each` / `json_array_elements`). Binding one text instead of
/// eleven parameters a row is what makes appends fast: per-parameter binding through sqlx `Any`
/// cost more than the database's own work (measured in `benches/audit_append.rs`).
const EVENTS_PER_INSERT: usize = 1024;

const INSERT_EVENTS_SQLITE: &str = "INSERT INTO audit_events (id, time, actor, action, \
    target_category, target_ref, outcome, change_ref, reason, canonical, leaf_index, mac) \
    SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, \
    value ->> 6, value ->> 7, value ->> 8, value ->> 9, value ->> 10, value ->> 11 \
    FROM json_each($1) ORDER BY key";

const INSERT_EVENTS_POSTGRES: &str = "INSERT INTO audit_events (id, time, actor, action, \
    target_category, target_ref, outcome, change_ref, reason, canonical, leaf_index, mac) \
    SELECT e.v ->> 0, (e.v ->> 1)::BIGINT, e.v ->> 2, e.v ->> 3, e.v ->> 4, e.v ->> 5, \
    e.v ->> 6, e.v ->> 7, e.v ->> 8, e.v ->> 9, (e.v ->> 10)::BIGINT, e.v ->> 11 \
    FROM json_array_elements($1::JSON) WITH ORDINALITY AS e(v, n) ORDER BY e.n";

/// Stores `events` with the next dense leaf indexes, each tagged with `key` (a store without the
/// key stores untagged events, which the sequencer never folds in). Called as the last write of a
/// transaction, so indexes are handed out in commit order.
pub(crate) async fn insert_events(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    key: Option<&AuditEventKey>,
    events: &[AuditEvent],
) -> StoreResult<()> {
    let count = i64::try_from(events.len()).map_err(|_| StoreError::Corrupt("audit batch size"))?;
    let row = sqlx::query(
        "UPDATE audit_leaf_counter SET next_leaf = next_leaf + $1 WHERE id = 1 RETURNING next_leaf",
    )
    .bind(count)
    .fetch_one(&mut *conn)
    .await?;
    let end: i64 = row.try_get("next_leaf")?;
    let mut index = end - count;
    let sql = match backend {
        Backend::Sqlite => INSERT_EVENTS_SQLITE,
        Backend::Postgres => INSERT_EVENTS_POSTGRES,
    };
    for chunk in events.chunks(EVENTS_PER_INSERT) {
        let mut rows = Vec::with_capacity(chunk.len());
        for event in chunk {
            let canonical = String::from_utf8(event.canonical_bytes())
                .map_err(|_| StoreError::Corrupt("audit encoding"))?;
            let leaf = u64::try_from(index).map_err(|_| StoreError::Corrupt("audit leaf index"))?;
            let mac = key.map(|key| to_hex(&key.tag(leaf, canonical.as_bytes())));
            rows.push(serde_json::json!([
                event.id.to_string(),
                event.time.unix_millis(),
                event.actor.to_string(),
                event.action.as_str(),
                event.target.category().as_str(),
                event.target.reference(),
                event.outcome.as_str(),
                event.change_ref.map(|id| id.to_string()),
                event.reason.map(|reason| reason.as_str()),
                canonical,
                index,
                mac,
            ]));
            index += 1;
        }
        let rows =
            serde_json::to_string(&rows).map_err(|_| StoreError::Corrupt("audit encoding"))?;
        let inserted = sqlx::query(sql).bind(rows).execute(&mut *conn).await?;
        if usize::try_from(inserted.rows_affected()).ok() != Some(chunk.len()) {
            return Err(StoreError::Corrupt("audit batch insert"));
        }
    }
    Ok(())
}

async fn insert_nodes(tx: &mut WriteTx<'_>, batch: &NewNodes) -> StoreResult<()> {
    let nodes: Vec<(NodeKey, Hash)> = batch.nodes().collect();
    for chunk in nodes.chunks(ROWS_PER_INSERT * 4) {
        let sql = multi_row_insert(
            "INSERT INTO audit_tree_nodes (level, idx, hash) VALUES ",
            3,
            chunk.len(),
        );
        let mut query = sqlx::query(&sql);
        for (key, hash) in chunk {
            query = query
                .bind(i64::from(key.level))
                .bind(to_i64(key.index)?)
                .bind(hash.as_bytes().to_vec());
        }
        query.execute(tx.conn()).await?;
    }
    Ok(())
}

/// `prefix` followed by `rows` groups of `columns` numbered placeholders.
fn multi_row_insert(prefix: &str, columns: usize, rows: usize) -> String {
    let mut sql = String::with_capacity(prefix.len() + rows * columns * 5);
    sql.push_str(prefix);
    let mut n = 0;
    for row in 0..rows {
        if row > 0 {
            sql.push(',');
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push(',');
            }
            n += 1;
            sql.push('$');
            sql.push_str(&n.to_string());
        }
        sql.push(')');
    }
    sql
}

/// Reads the stored nodes at `keys`, in one query.
pub(crate) async fn fetch_nodes(
    conn: &mut sqlx::AnyConnection,
    keys: &[NodeKey],
) -> StoreResult<HashMap<NodeKey, Hash>> {
    let mut found = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(ROWS_PER_INSERT) {
        let mut sql = String::from("SELECT level, idx, hash FROM audit_tree_nodes WHERE ");
        for n in 0..chunk.len() {
            if n > 0 {
                sql.push_str(" OR ");
            }
            sql.push_str(&format!(
                "(level = ${} AND idx = ${})",
                2 * n + 1,
                2 * n + 2
            ));
        }
        let mut query = sqlx::query(&sql);
        for key in chunk {
            query = query.bind(i64::from(key.level)).bind(to_i64(key.index)?);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let level = u8::try_from(row.try_get::<i64, _>("level")?)
                .map_err(|_| StoreError::Corrupt("audit node level"))?;
            let index = to_u64(row.try_get("idx")?)?;
            found.insert(NodeKey { level, index }, hash_from_row(&row)?);
        }
    }
    Ok(found)
}

/// A read-only view of the tree for one operation: a size and the nodes read for it. Asked for
/// a node it lacks, it records the key and answers a placeholder, so a first run of the
/// operation learns every key it needs.
struct Snapshot {
    size: u64,
    nodes: HashMap<NodeKey, Hash>,
    requested: RefCell<Vec<NodeKey>>,
    complete: bool,
}

impl NodeStore for Snapshot {
    type Error = Infallible;

    fn size(&self) -> Result<u64, Infallible> {
        Ok(self.size)
    }

    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, Infallible> {
        let key = NodeKey { level, index };
        match self.nodes.get(&key) {
            Some(hash) => Ok(Some(*hash)),
            None if self.complete => Ok(None),
            None => {
                self.requested.borrow_mut().push(key);
                Ok(Some(Hash::from([0; Hash::LEN])))
            }
        }
    }

    fn append_batch(&mut self, _batch: &NewNodes) -> Result<(), Infallible> {
        // Operations run here only read; appends are written by `insert_nodes`.
        Ok(())
    }
}

/// Runs a read-only tree operation against the stored tree of `size` leaves.
async fn tree_op<T>(
    conn: &mut impl AsAnyConnection,
    size: u64,
    op: impl Fn(&Log<Snapshot>) -> Result<T, TreeError<Infallible>>,
) -> StoreResult<T> {
    let keys = {
        let log = Log::new(Snapshot {
            size,
            nodes: HashMap::new(),
            requested: RefCell::new(Vec::new()),
            complete: false,
        });
        // The first run's result is built from placeholders; only the keys it asked for count.
        let _placeholder = op(&log);
        log.into_store().requested.into_inner()
    };
    let nodes = if keys.is_empty() {
        HashMap::new()
    } else {
        fetch_nodes(conn.any_connection(), &keys).await?
    };
    let log = Log::new(Snapshot {
        size,
        nodes,
        requested: RefCell::new(Vec::new()),
        complete: true,
    });
    op(&log).map_err(|error| match error {
        TreeError::SizeBeyondTree { requested, size }
        | TreeError::IndexBeyondSize {
            index: requested,
            size,
        } => StoreError::NotInAuditTree {
            requested,
            tree_size: size,
        },
        _ => StoreError::Corrupt("audit tree node missing"),
    })
}

/// Lets [`tree_op`] read through a transaction or a pooled connection alike.
trait AsAnyConnection {
    fn any_connection(&mut self) -> &mut sqlx::AnyConnection;
}

impl AsAnyConnection for WriteTx<'_> {
    fn any_connection(&mut self) -> &mut sqlx::AnyConnection {
        self.conn()
    }
}

impl AsAnyConnection for sqlx::AnyConnection {
    fn any_connection(&mut self) -> &mut sqlx::AnyConnection {
        self
    }
}

fn check_in_tree(requested: u64, tree_size: u64) -> StoreResult<()> {
    if requested > tree_size {
        return Err(StoreError::NotInAuditTree {
            requested,
            tree_size,
        });
    }
    Ok(())
}

fn checkpoint_from_row(row: &sqlx::any::AnyRow) -> StoreResult<StoredCheckpoint> {
    let root: Vec<u8> = row.try_get("root")?;
    Ok(StoredCheckpoint {
        tree_size: to_u64(row.try_get("tree_size")?)?,
        root: Hash::from_slice(&root).map_err(|_| StoreError::Corrupt("audit checkpoint root"))?,
        note: row.try_get("note")?,
        published_at: Timestamp::from_unix_millis(row.try_get("published_at")?),
    })
}

pub(crate) fn hash_from_row(row: &sqlx::any::AnyRow) -> StoreResult<Hash> {
    let bytes: Vec<u8> = row.try_get("hash")?;
    Hash::from_slice(&bytes).map_err(|_| StoreError::Corrupt("audit node hash"))
}

/// Whether `mac` (hex, as stored) is `key`'s tag of the event at leaf `index`.
pub(crate) fn mac_verifies(
    key: &AuditEventKey,
    index: u64,
    canonical: &str,
    mac: Option<&str>,
) -> bool {
    mac.and_then(from_hex)
        .is_some_and(|tag| key.verify(index, canonical.as_bytes(), &tag))
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _infallible = write!(text, "{byte:02x}");
    }
    text
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(pair, 16).ok()
        })
        .collect()
}

pub(crate) fn to_u64(value: i64) -> StoreResult<u64> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt("negative audit log position"))
}

pub(crate) fn to_i64(value: u64) -> StoreResult<i64> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt("audit log position beyond i64"))
}
