//! Offline verification of the stored audit log: everything `enigm audit verify --data-dir`
//! checks, reading the database directly and trusting none of it.
//!
//! 1. The leaf hashes (level 0 of the node table) are dense, and every stored interior node
//!    equals the one recomputed from them; no node is missing or extra. A node that differs is
//!    reported where the chain of hashes breaks (it is not the hash of its stored children),
//!    so that one forged leaf hash is not also reported at every node above it.
//! 2. Every kept event body hashes to its leaf, its searchable columns agree with the body,
//!    and every body that is gone is covered by a recorded purge.
//!    From the first leaf handed out after event tags were introduced, every kept body carries
//!    a valid tag of the audit event key (when the key is given): a row without one was
//!    inserted behind Command's back.
//! 3. Every recorded purge is backed by a logged `audit.purge` event naming the same leaves.
//! 4. Every checkpoint carries a valid signature of the log key, and its root is the root the
//!    leaves give at its size: all checkpoints describe one append-only history.
//! 5. A checkpoint the auditor trusted before (optional) is a prefix of that history.

use std::collections::{HashMap, HashSet};
use std::fmt;

use enigm_auditlog::{
    AuditEventKey, Checkpoint, Hash, Log, MemoryStore, NodeStore as _, NoteVerifier, leaf_hash,
    node_hash, open_checkpoint,
};
use enigm_types::{AuditAction, AuditEvent, AuditTarget};
use sqlx::Row as _;

use crate::auditlog::{hash_from_row, to_i64, to_u64};
use crate::{Store, StoreResult};

/// Rows read per query while scanning.
const PAGE: i64 = 20_000;
/// Findings kept; a log tampered with wholesale would otherwise report millions.
const MAX_FINDINGS: usize = 1_000;

/// Something that does not verify, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    LeafHashMissing {
        index: u64,
    },
    NodeMissing {
        level: u8,
        index: u64,
    },
    NodeMismatch {
        level: u8,
        index: u64,
    },
    NodeBeyondTree {
        level: u8,
        index: u64,
    },
    BodyMismatch {
        index: u64,
    },
    BodyUnreadable {
        index: u64,
    },
    ColumnsMismatch {
        index: u64,
    },
    BodyMissing {
        index: u64,
    },
    EventBeyondCounter {
        index: u64,
    },
    /// The event has no valid tag of the audit event key: Command did not write it.
    EventUnauthenticated {
        index: u64,
    },
    PurgeUnlogged {
        first: u64,
        end: u64,
    },
    PurgeOutOfOrder {
        first: u64,
        end: u64,
    },
    TreeSizeUnbacked {
        claimed: u64,
        stored: u64,
    },
    CheckpointInvalid {
        size: u64,
        reason: String,
    },
    CheckpointMismatch {
        size: u64,
    },
    CheckpointBeyondTree {
        size: u64,
    },
    TrustedCheckpointNotInLog {
        size: u64,
    },
}

impl Finding {
    /// The first leaf the finding concerns, for ordering findings along the log.
    pub fn first_leaf(&self) -> u64 {
        match *self {
            Finding::LeafHashMissing { index }
            | Finding::BodyMismatch { index }
            | Finding::BodyUnreadable { index }
            | Finding::ColumnsMismatch { index }
            | Finding::BodyMissing { index }
            | Finding::EventBeyondCounter { index }
            | Finding::EventUnauthenticated { index } => index,
            Finding::NodeMissing { level, index }
            | Finding::NodeMismatch { level, index }
            | Finding::NodeBeyondTree { level, index } => {
                index.checked_shl(u32::from(level)).unwrap_or(u64::MAX)
            }
            Finding::PurgeUnlogged { first, .. } | Finding::PurgeOutOfOrder { first, .. } => first,
            Finding::TreeSizeUnbacked { stored, .. } => stored,
            // A checkpoint covers the leaves below its size; problems inside it come first.
            Finding::CheckpointInvalid { size, .. }
            | Finding::CheckpointMismatch { size }
            | Finding::CheckpointBeyondTree { size }
            | Finding::TrustedCheckpointNotInLog { size } => size,
        }
    }
}

impl Finding {
    /// How many levels above the leaves the finding is: 0 for a leaf, the node's level for a
    /// node, and above every node for a checkpoint.
    fn level(&self) -> u8 {
        match *self {
            Finding::NodeMissing { level, .. }
            | Finding::NodeMismatch { level, .. }
            | Finding::NodeBeyondTree { level, .. } => level,
            Finding::CheckpointInvalid { .. }
            | Finding::CheckpointMismatch { .. }
            | Finding::CheckpointBeyondTree { .. }
            | Finding::TrustedCheckpointNotInLog { .. } => u8::MAX,
            Finding::LeafHashMissing { .. }
            | Finding::BodyMismatch { .. }
            | Finding::BodyUnreadable { .. }
            | Finding::ColumnsMismatch { .. }
            | Finding::BodyMissing { .. }
            | Finding::EventBeyondCounter { .. }
            | Finding::EventUnauthenticated { .. }
            | Finding::PurgeUnlogged { .. }
            | Finding::PurgeOutOfOrder { .. }
            | Finding::TreeSizeUnbacked { .. } => 0,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::LeafHashMissing { index } => write!(f, "leaf {index}: leaf hash missing"),
            Finding::NodeMissing { level, index } => write!(
                f,
                "tree node (level {level}, index {index}) over leaves {}: missing",
                leaf_span(*level, *index)
            ),
            Finding::NodeMismatch { level, index } => write!(
                f,
                "tree node (level {level}, index {index}) over leaves {}: does not match the \
                 leaves below it",
                leaf_span(*level, *index)
            ),
            Finding::NodeBeyondTree { level, index } => write!(
                f,
                "tree node (level {level}, index {index}): beyond the tree's size"
            ),
            Finding::BodyMismatch { index } => {
                write!(f, "leaf {index}: event body does not match its leaf hash")
            }
            Finding::BodyUnreadable { index } => {
                write!(f, "leaf {index}: event body is not a valid audit event")
            }
            Finding::ColumnsMismatch { index } => write!(
                f,
                "leaf {index}: searchable columns disagree with the event body"
            ),
            Finding::BodyMissing { index } => {
                write!(
                    f,
                    "leaf {index}: event body missing without a recorded purge"
                )
            }
            Finding::EventBeyondCounter { index } => {
                write!(f, "leaf {index}: event beyond the leaves ever handed out")
            }
            Finding::EventUnauthenticated { index } => write!(
                f,
                "leaf {index}: event has no valid tag of the audit event key (not written by \
                 Command: inserted into the database directly); the sequencer does not fold it in"
            ),
            Finding::PurgeUnlogged { first, end } => write!(
                f,
                "purge of leaves {first}..{end}: no audit.purge event in the tree, logged after \
                 those leaves, records it"
            ),
            Finding::TreeSizeUnbacked { claimed, stored } => write!(
                f,
                "the log claims {claimed} leaves, but only {stored} are stored or purged"
            ),
            Finding::PurgeOutOfOrder { first, end } => write!(
                f,
                "purge of leaves {first}..{end}: purges must run on from the start of the log, \
                 one after another"
            ),
            Finding::CheckpointInvalid { size, reason } => {
                write!(f, "checkpoint at size {size}: {reason}")
            }
            Finding::CheckpointMismatch { size } => write!(
                f,
                "checkpoint at size {size}: root does not match the stored leaves"
            ),
            Finding::CheckpointBeyondTree { size } => {
                write!(f, "checkpoint at size {size}: beyond the stored tree")
            }
            Finding::TrustedCheckpointNotInLog { size } => write!(
                f,
                "trusted checkpoint at size {size}: the stored log does not extend it \
                 (history rewritten or truncated)"
            ),
        }
    }
}

fn leaf_span(level: u8, index: u64) -> String {
    let first = index.checked_shl(u32::from(level)).unwrap_or(u64::MAX);
    let end = index
        .saturating_add(1)
        .checked_shl(u32::from(level))
        .unwrap_or(u64::MAX);
    format!("{first}..{end}")
}

/// What was checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifySummary {
    pub tree_size: u64,
    /// Leaves handed out, in the tree or waiting for the sequencer.
    pub leaf_count: u64,
    pub nodes_checked: u64,
    pub bodies_checked: u64,
    pub bodies_purged: u64,
    /// Event tags checked against the audit event key (none without the key).
    pub tags_checked: u64,
    pub checkpoints_checked: u64,
    /// The largest checkpoint that verified, the one to remember.
    pub latest_checkpoint: Option<Checkpoint>,
}

#[derive(Debug, Clone, Default)]
pub struct VerifyOutcome {
    pub summary: VerifySummary,
    /// Problems found, ordered along the log; empty when everything verifies.
    pub findings: Vec<Finding>,
}

/// Progress of a long verification, for a progress bar.
pub trait VerifyProgress {
    fn phase(&self, name: &'static str, total: u64);
    fn advance(&self, done: u64);
}

/// Reports nothing.
pub struct NoProgress;

impl VerifyProgress for NoProgress {
    fn phase(&self, _name: &'static str, _total: u64) {}
    fn advance(&self, _done: u64) {}
}

struct Findings(Vec<Finding>);

impl Findings {
    fn push(&mut self, finding: Finding) {
        if self.0.len() < MAX_FINDINGS {
            self.0.push(finding);
        }
    }
}

impl Store {
    /// Verifies the whole stored audit log against the log's key, the audit event key if given
    /// (without it, event tags are not checked), and, if given, a checkpoint the auditor trusts.
    /// Database errors are errors; everything the data says is a finding.
    pub async fn verify_audit_log(
        &self,
        verifier: &NoteVerifier,
        event_key: Option<&AuditEventKey>,
        trusted: Option<&Checkpoint>,
        progress: &dyn VerifyProgress,
    ) -> StoreResult<VerifyOutcome> {
        // Every read below happens in one read-only transaction, so a server writing meanwhile
        // cannot make the tables disagree with each other: SQLite's WAL gives the transaction one
        // snapshot, and PostgreSQL does under REPEATABLE READ.
        let mut tx = self.pool().begin().await?;
        if self.backend() == crate::Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let conn: &mut sqlx::AnyConnection = &mut tx;
        let mut findings = Findings(Vec::new());
        let mut summary = VerifySummary {
            tree_size: crate::auditlog::tree_size_in(conn).await?,
            leaf_count: crate::auditlog::leaf_count_in(conn).await?,
            ..VerifySummary::default()
        };
        // A tree size far beyond the stored leaves is itself the finding; checking every absent
        // leaf would only spend memory and time an attacker chose.
        let row = sqlx::query("SELECT COUNT(*) AS n FROM audit_tree_nodes WHERE level = 0")
            .fetch_one(&mut *conn)
            .await?;
        let stored = to_u64(row.try_get("n")?)?;
        let slack = u64::try_from(MAX_FINDINGS).unwrap_or(u64::MAX);
        if summary.tree_size > stored.saturating_add(slack) {
            findings.push(Finding::TreeSizeUnbacked {
                claimed: summary.tree_size,
                stored,
            });
            summary.tree_size = stored;
        }
        let row = sqlx::query("SELECT COUNT(*) AS n FROM audit_events")
            .fetch_one(&mut *conn)
            .await?;
        let events = to_u64(row.try_get("n")?)?;
        let purged: u64 = crate::auditlog::purges_in(conn)
            .await?
            .iter()
            .map(|purge| purge.end.saturating_sub(purge.first))
            .fold(0, u64::saturating_add);
        let backed = events.saturating_add(purged).max(summary.tree_size);
        if summary.leaf_count > backed.saturating_add(slack) {
            findings.push(Finding::TreeSizeUnbacked {
                claimed: summary.leaf_count,
                stored: backed,
            });
            summary.leaf_count = backed;
        }
        let (tree, missing_leaves) = self
            .rebuild_tree(conn, &summary, &mut findings, progress)
            .await?;
        summary.nodes_checked = self
            .check_interior_nodes(
                conn,
                &tree,
                &missing_leaves,
                summary.tree_size,
                &mut findings,
                progress,
            )
            .await?;
        let purges = crate::auditlog::purges_in(conn).await?;
        let row = sqlx::query("SELECT mac_required_from FROM audit_tree_state WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
        let tags = event_key.map(|key| (key, row.try_get::<i64, _>("mac_required_from")));
        let tags = match tags {
            Some((key, from)) => Some((key, to_u64(from?)?)),
            None => None,
        };
        let logged_purges = self
            .check_bodies(
                conn,
                &tree,
                &mut summary,
                (&purges, tags),
                &mut findings,
                progress,
            )
            .await?;
        // Retention purges the oldest bodies first, so purges tile a prefix of the log.
        let mut purged_to = 0;
        for purge in &purges {
            if purge.first != purged_to || purge.end <= purge.first {
                findings.push(Finding::PurgeOutOfOrder {
                    first: purge.first,
                    end: purge.end,
                });
            }
            purged_to = purge.end;
            if !logged_purges.contains(&(purge.first, purge.end)) {
                findings.push(Finding::PurgeUnlogged {
                    first: purge.first,
                    end: purge.end,
                });
            }
        }
        self.check_checkpoints(conn, &tree, verifier, &mut summary, &mut findings, progress)
            .await?;
        if let Some(trusted) = trusted {
            let extends = trusted.size() <= summary.tree_size
                && tree.root_at(trusted.size()).ok().as_ref() == Some(trusted.root());
            if !extends {
                findings.push(Finding::TrustedCheckpointNotInLog {
                    size: trusted.size(),
                });
            }
        }
        let mut findings = findings.0;
        // Along the log; where two findings start at one leaf, the narrower one first.
        findings.sort_by_key(|finding| (finding.first_leaf(), finding.level()));
        Ok(VerifyOutcome { summary, findings })
    }

    /// Reads the leaf hashes in order and recomputes the tree from them in memory. Also returns
    /// the indexes of the leaf hashes that are missing (each reported, and stood in for by zeros
    /// in the tree), in order.
    async fn rebuild_tree(
        &self,
        conn: &mut sqlx::AnyConnection,
        summary: &VerifySummary,
        findings: &mut Findings,
        progress: &dyn VerifyProgress,
    ) -> StoreResult<(Log<MemoryStore>, Vec<u64>)> {
        progress.phase("leaf hashes", summary.tree_size);
        let mut tree = Log::new(MemoryStore::with_capacity(
            usize::try_from(summary.tree_size).unwrap_or(0),
        ));
        let mut missing = Vec::new();
        let mut next: u64 = 0;
        loop {
            let rows = sqlx::query(
                "SELECT idx, hash FROM audit_tree_nodes WHERE level = 0 AND idx >= $1 \
                 ORDER BY idx LIMIT $2",
            )
            .bind(to_i64(next)?)
            .bind(PAGE)
            .fetch_all(&mut *conn)
            .await?;
            let Some(last) = rows.last() else { break };
            let after = to_u64(last.try_get("idx")?)?.saturating_add(1);
            let mut leaves = Vec::with_capacity(rows.len());
            for row in &rows {
                let index = to_u64(row.try_get("idx")?)?;
                if index >= summary.tree_size {
                    findings.push(Finding::NodeBeyondTree { level: 0, index });
                    continue;
                }
                // A missing leaf hash is reported and stood in for, so that everything after it
                // is still checked.
                while next < index {
                    findings.push(Finding::LeafHashMissing { index: next });
                    missing.push(next);
                    leaves.push(Hash::from_bytes([0; Hash::LEN]));
                    next += 1;
                }
                leaves.push(hash_from_row(row).unwrap_or(Hash::from_bytes([0; Hash::LEN])));
                next = index + 1;
            }
            append(&mut tree, &leaves)?;
            progress.advance(next.min(summary.tree_size));
            next = next.max(after);
        }
        let mut tail = Vec::new();
        while tree.size().unwrap_or(0) + u64::try_from(tail.len()).unwrap_or(0) < summary.tree_size
        {
            let index = tree.size().unwrap_or(0) + u64::try_from(tail.len()).unwrap_or(0);
            findings.push(Finding::LeafHashMissing { index });
            missing.push(index);
            tail.push(Hash::from_bytes([0; Hash::LEN]));
        }
        append(&mut tree, &tail)?;
        Ok((tree, missing))
    }

    /// Compares every stored interior node with the recomputed tree, and reports a node that
    /// differs only where the chain of hashes breaks: where the stored node is not the hash of
    /// its stored children. One forged leaf hash makes every node above it differ from the
    /// recomputed tree, but only its parent is reported, so that findings point at the
    /// tampering instead of at the whole log above it.
    async fn check_interior_nodes(
        &self,
        conn: &mut sqlx::AnyConnection,
        tree: &Log<MemoryStore>,
        missing_leaves: &[u64],
        tree_size: u64,
        findings: &mut Findings,
        progress: &dyn VerifyProgress,
    ) -> StoreResult<u64> {
        progress.phase("tree nodes", tree_size);
        let (mut level, mut index): (i64, i64) = (1, -1);
        let mut expected_next: u64 = 0;
        let mut checked: u64 = 0;
        let mut current_level: u8 = 1;
        // The stored nodes that differ from the recomputed ones, on the level below the one
        // being checked and on that level.
        let mut below = ChangedNodes::default();
        let mut here = ChangedNodes::default();
        loop {
            let rows = sqlx::query(
                "SELECT level, idx, hash FROM audit_tree_nodes \
                 WHERE (level = $1 AND idx > $2) OR level > $1 ORDER BY level, idx LIMIT $3",
            )
            .bind(level)
            .bind(index)
            .bind(PAGE)
            .fetch_all(&mut *conn)
            .await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                level = row.try_get("level")?;
                index = row.try_get("idx")?;
                let node_level = u8::try_from(level).unwrap_or(u8::MAX);
                let node_index = to_u64(index)?;
                if node_level != current_level {
                    let complete = complete_nodes(current_level, tree_size);
                    missing_nodes(findings, current_level, expected_next, complete);
                    for skipped in current_level.saturating_add(1)..node_level {
                        missing_nodes(findings, skipped, 0, complete_nodes(skipped, tree_size));
                    }
                    // A skipped level has no stored node that could differ.
                    below = if node_level == current_level.saturating_add(1) {
                        std::mem::take(&mut here)
                    } else {
                        ChangedNodes::default()
                    };
                    here = ChangedNodes::default();
                    current_level = node_level;
                    expected_next = 0;
                }
                let complete = complete_nodes(node_level, tree_size);
                missing_nodes(
                    findings,
                    node_level,
                    expected_next,
                    node_index.min(complete),
                );
                expected_next = node_index.saturating_add(1);
                checked += 1;
                match tree.store().node(node_level, node_index) {
                    Ok(Some(computed)) if node_index < complete => {
                        let stored = hash_from_row(row).ok();
                        if stored == Some(computed) {
                            continue;
                        }
                        if let Some(stored) = stored {
                            here.remember(node_index, stored);
                        }
                        let child = |offset: u64| {
                            stored_child(
                                tree,
                                missing_leaves,
                                &below,
                                node_level.saturating_sub(1),
                                node_index.saturating_mul(2).saturating_add(offset),
                            )
                        };
                        let breaks_here = match (stored, child(0), child(1)) {
                            // An unreadable node is wrong whatever lies below it.
                            (None, _, _) => true,
                            // A missing leaf hash, reported already, explains the difference.
                            (_, Child::Missing, _) | (_, _, Child::Missing) => false,
                            (Some(stored), Child::Known(left), Child::Known(right)) => {
                                node_hash(&left, &right) != stored
                            }
                            (Some(_), Child::Forgotten, _) | (Some(_), _, Child::Forgotten) => true,
                        };
                        if breaks_here {
                            findings.push(Finding::NodeMismatch {
                                level: node_level,
                                index: node_index,
                            });
                        }
                    }
                    _ => findings.push(Finding::NodeBeyondTree {
                        level: node_level,
                        index: node_index,
                    }),
                }
            }
            progress.advance(checked.min(tree_size));
        }
        let complete = complete_nodes(current_level, tree_size);
        missing_nodes(findings, current_level, expected_next, complete);
        // Levels above the last one seen that the tree's size says must exist.
        let top = u8::try_from(64 - tree_size.leading_zeros()).unwrap_or(64);
        for skipped in current_level.saturating_add(1)..top {
            missing_nodes(findings, skipped, 0, complete_nodes(skipped, tree_size));
        }
        Ok(checked)
    }

    /// Checks every event body against its leaf, and every gap against the purges. Returns the
    /// leaf ranges named by logged purge events.
    async fn check_bodies(
        &self,
        conn: &mut sqlx::AnyConnection,
        tree: &Log<MemoryStore>,
        summary: &mut VerifySummary,
        (purges, tags): (&[crate::PurgeRecord], Option<(&AuditEventKey, u64)>),
        findings: &mut Findings,
        progress: &dyn VerifyProgress,
    ) -> StoreResult<HashSet<(u64, u64)>> {
        progress.phase("event bodies", summary.leaf_count);
        let mut logged_purges = HashSet::new();
        // Every leaf in the tree needs a body, even if the counter was wound back below it.
        let bodies_end = summary.leaf_count.max(summary.tree_size);
        let mut next: u64 = 0;
        let gap = |from: u64, to: u64, summary: &mut VerifySummary, findings: &mut Findings| {
            for index in from..to {
                if index < summary.tree_size && purges.iter().any(|purge| purge.covers(index)) {
                    summary.bodies_purged += 1;
                } else {
                    findings.push(Finding::BodyMissing { index });
                }
            }
        };
        loop {
            let rows = sqlx::query(
                "SELECT leaf_index, id, time, actor, action, target_category, target_ref, \
                 outcome, change_ref, reason, canonical, mac FROM audit_events \
                 WHERE leaf_index >= $1 ORDER BY leaf_index LIMIT $2",
            )
            .bind(to_i64(next)?)
            .bind(PAGE)
            .fetch_all(&mut *conn)
            .await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let index = to_u64(row.try_get("leaf_index")?)?;
                gap(next, index.min(bodies_end), summary, findings);
                next = index.saturating_add(1);
                if index >= summary.leaf_count {
                    findings.push(Finding::EventBeyondCounter { index });
                    continue;
                }
                let canonical: String = row.try_get("canonical")?;
                summary.bodies_checked += 1;
                let mut body_mismatch = false;
                if index < summary.tree_size {
                    let stored = tree.store().node(0, index).ok().flatten();
                    if stored != Some(leaf_hash(canonical.as_bytes())) {
                        findings.push(Finding::BodyMismatch { index });
                        body_mismatch = true;
                    }
                }
                if let Some((key, required_from)) = tags
                    && index >= required_from
                {
                    summary.tags_checked += 1;
                    let mac: Option<String> = row.try_get("mac")?;
                    // A body changed after it was folded in is already reported as such; its
                    // tag failing too would say the same twice.
                    if !body_mismatch
                        && !crate::auditlog::mac_verifies(key, index, &canonical, mac.as_deref())
                    {
                        findings.push(Finding::EventUnauthenticated { index });
                    }
                }
                let Ok(event) = serde_json::from_str::<AuditEvent>(&canonical) else {
                    findings.push(Finding::BodyUnreadable { index });
                    continue;
                };
                if !columns_match(row, &event)? {
                    findings.push(Finding::ColumnsMismatch { index });
                }
                if let (AuditAction::AuditPurge, AuditTarget::AuditLeaves { first, end }) =
                    (event.action, event.target)
                {
                    // Evidence only from a purge event that is itself in the tree and came
                    // after the leaves it names.
                    if index < summary.tree_size && index >= end {
                        logged_purges.insert((first, end));
                    }
                }
            }
            progress.advance(next.min(summary.leaf_count));
        }
        gap(next, bodies_end, summary, findings);
        Ok(logged_purges)
    }

    async fn check_checkpoints(
        &self,
        conn: &mut sqlx::AnyConnection,
        tree: &Log<MemoryStore>,
        verifier: &NoteVerifier,
        summary: &mut VerifySummary,
        findings: &mut Findings,
        progress: &dyn VerifyProgress,
    ) -> StoreResult<()> {
        progress.phase("checkpoints", 0);
        let mut after = None;
        loop {
            let page = self.audit_checkpoints_raw(conn, after).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.0);
            for (size, root, note) in page {
                summary.checkpoints_checked += 1;
                let checkpoint = match open_checkpoint(note.as_bytes(), verifier) {
                    Ok(verified) => verified.into_checkpoint(),
                    Err(error) => {
                        findings.push(Finding::CheckpointInvalid {
                            size,
                            reason: error_chain(&error),
                        });
                        continue;
                    }
                };
                if checkpoint.size() != size || Some(checkpoint.root()) != root.as_ref() {
                    findings.push(Finding::CheckpointInvalid {
                        size,
                        reason: "stored size or root differ from the signed note".to_owned(),
                    });
                    continue;
                }
                if size > summary.tree_size {
                    findings.push(Finding::CheckpointBeyondTree { size });
                    continue;
                }
                if tree.root_at(size).ok().as_ref() != Some(checkpoint.root()) {
                    findings.push(Finding::CheckpointMismatch { size });
                    continue;
                }
                let newer = summary
                    .latest_checkpoint
                    .as_ref()
                    .is_none_or(|latest| latest.size() < size);
                if newer {
                    summary.latest_checkpoint = Some(checkpoint);
                }
            }
            progress.advance(summary.checkpoints_checked);
        }
        Ok(())
    }

    /// Checkpoint rows as stored, without decoding anything that could hide a finding.
    async fn audit_checkpoints_raw(
        &self,
        conn: &mut sqlx::AnyConnection,
        after: Option<u64>,
    ) -> StoreResult<Vec<(u64, Option<Hash>, String)>> {
        let rows = sqlx::query(
            "SELECT tree_size, root, note FROM audit_checkpoints WHERE tree_size > $1 \
             ORDER BY tree_size LIMIT $2",
        )
        .bind(after.map_or(Ok(-1), to_i64)?)
        .bind(PAGE)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|row| {
                let root: Vec<u8> = row.try_get("root")?;
                Ok((
                    to_u64(row.try_get("tree_size")?)?,
                    Hash::from_slice(&root).ok(),
                    row.try_get("note")?,
                ))
            })
            .collect()
    }
}

/// Stored nodes of one level that differ from the recomputed tree, with their stored hashes.
/// Bounded: a log tampered with wholesale would otherwise fill memory.
#[derive(Default)]
struct ChangedNodes {
    hashes: HashMap<u64, Hash>,
    /// Some differing nodes were not remembered.
    overflow: bool,
}

/// Differing nodes remembered per level.
const MAX_CHANGED_NODES: usize = 1 << 20;

impl ChangedNodes {
    fn remember(&mut self, index: u64, stored: Hash) {
        if self.hashes.len() < MAX_CHANGED_NODES {
            self.hashes.insert(index, stored);
        } else {
            self.overflow = true;
        }
    }
}

/// What the verifier knows of a stored child node.
enum Child {
    Known(Hash),
    /// A leaf hash that is missing (reported on its own).
    Missing,
    /// A node that may differ from the recomputed tree, but was not remembered.
    Forgotten,
}

/// The stored node at `(level, index)`, a child of a node being checked. A missing or
/// unreadable interior node counts as the recomputed one: it is reported on its own, and the
/// question here is only whether its parent matches what should be below it.
fn stored_child(
    tree: &Log<MemoryStore>,
    missing_leaves: &[u64],
    changed: &ChangedNodes,
    level: u8,
    index: u64,
) -> Child {
    if level == 0 && missing_leaves.binary_search(&index).is_ok() {
        return Child::Missing;
    }
    if let Some(stored) = changed.hashes.get(&index) {
        return Child::Known(*stored);
    }
    if level > 0 && changed.overflow {
        return Child::Forgotten;
    }
    match tree.store().node(level, index) {
        Ok(Some(hash)) => Child::Known(hash),
        _ => Child::Forgotten,
    }
}

fn append(tree: &mut Log<MemoryStore>, leaves: &[Hash]) -> StoreResult<()> {
    tree.append_leaves(leaves)
        .map(|_| ())
        .map_err(|_| crate::StoreError::Corrupt("audit tree too large to verify in memory"))
}

/// The number of complete subtrees at `level` in a tree of `tree_size` leaves.
fn complete_nodes(level: u8, tree_size: u64) -> u64 {
    tree_size.checked_shr(u32::from(level)).unwrap_or(0)
}

/// Reports nodes `from..to` of `level` as missing (at most [`MAX_FINDINGS`] of them).
fn missing_nodes(findings: &mut Findings, level: u8, from: u64, to: u64) {
    let cap = from.saturating_add(u64::try_from(MAX_FINDINGS).unwrap_or(u64::MAX));
    for index in from..to.min(cap) {
        findings.push(Finding::NodeMissing { level, index });
    }
}

fn columns_match(row: &sqlx::any::AnyRow, event: &AuditEvent) -> StoreResult<bool> {
    let id: String = row.try_get("id")?;
    let time: i64 = row.try_get("time")?;
    let actor: String = row.try_get("actor")?;
    let action: String = row.try_get("action")?;
    let target_category: String = row.try_get("target_category")?;
    let target_ref: Option<String> = row.try_get("target_ref")?;
    let outcome: String = row.try_get("outcome")?;
    let change_ref: Option<String> = row.try_get("change_ref")?;
    let reason: Option<String> = row.try_get("reason")?;
    Ok(id == event.id.to_string()
        && time == event.time.unix_millis()
        && actor == event.actor.to_string()
        && action == event.action.as_str()
        && target_category == event.target.category().as_str()
        && target_ref == event.target.reference()
        && outcome == event.outcome.as_str()
        && change_ref == event.change_ref.map(|id| id.to_string())
        && reason.as_deref() == event.reason.map(|reason| reason.as_str()))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
