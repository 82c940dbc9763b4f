//! Where audit events go, and how they become the tamper-evident log.
//!
//! - [`AuditSink`]: Command records every administrative action and every authentication and
//!   authorization outcome through one sink. [`GroupCommitSink`] is the one `enigm up` uses:
//!   callers queue events, one writer task stores everything queued in one transaction (one
//!   durable commit per batch), and each caller is answered only once its events are durable.
//!   Events that belong to a state change are written in that change's own transaction instead
//!   (`WriteTx::append_audit`); both kinds get their leaf index at commit.
//! - [`AuditLog`]: the sequencer that folds committed leaves into the Merkle tree and publishes
//!   signed checkpoints, and the retention purge. In `enigm up` they run only in the process that
//!   holds the `audit-log` lease ([`crate::lease`]); every process writes events.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use enigm_auditlog::{Checkpoint, NoteSigner, NoteVerifier, sign_checkpoint};
use enigm_store::{PurgeRecord, Store, StoreError, StoredCheckpoint};
use enigm_types::{
    Actor, AdminId, AuditAction, AuditEvent, AuditTarget, Clock, Outcome, ReasonCategory, Timestamp,
};
use tokio::sync::{mpsc, oneshot};

use crate::group_commit::gather;

#[async_trait]
pub trait AuditSink: Send + Sync + 'static {
    /// Durably records the events (all or none) before returning.
    async fn record(&self, events: &[AuditEvent]) -> Result<(), AuditError>;
}

/// Why events could not be recorded. The request that produced them fails.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit events could not be stored")]
    Store(#[source] Arc<StoreError>),
    #[error("the audit writer has stopped")]
    WriterStopped,
}

/// Writes each call's events in a transaction of its own: for tools and tests that want no
/// background task.
#[async_trait]
impl AuditSink for Store {
    async fn record(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        self.append_audit(events)
            .await
            .map_err(|error| AuditError::Store(Arc::new(error)))
    }
}

/// The most events one group commit carries. Large enough that the commit's fsync is shared
/// by thousands of events under load; small enough to bound a batch's memory and latency.
pub const MAX_GROUP_COMMIT_EVENTS: usize = 4096;

/// Queued events waiting for the writer, bounded so that a stalled database pushes back on
/// requests instead of growing memory.
const QUEUE_DEPTH: usize = 16 * 1024;

struct Queued {
    events: Vec<AuditEvent>,
    done: oneshot::Sender<Result<(), AuditError>>,
}

/// Group commit: one writer task, one transaction for everything queued while the previous
/// one committed.
#[derive(Clone)]
pub struct GroupCommitSink {
    queue: mpsc::Sender<Queued>,
}

impl GroupCommitSink {
    /// Starts the writer task on the current Tokio runtime.
    pub fn spawn(store: Store) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(write_batches(store, receiver));
        GroupCommitSink { queue }
    }
}

#[async_trait]
impl AuditSink for GroupCommitSink {
    async fn record(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        if events.is_empty() {
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        let queued = Queued {
            events: events.to_vec(),
            done,
        };
        self.queue
            .send(queued)
            .await
            .map_err(|_| AuditError::WriterStopped)?;
        answer.await.map_err(|_| AuditError::WriterStopped)?
    }
}

async fn write_batches(store: Store, mut receiver: mpsc::Receiver<Queued>) {
    let mut batch: Vec<Queued> = Vec::new();
    let mut events: Vec<AuditEvent> = Vec::with_capacity(MAX_GROUP_COMMIT_EVENTS);
    while gather(
        &mut receiver,
        &mut batch,
        |queued| queued.events.len(),
        MAX_GROUP_COMMIT_EVENTS,
    )
    .await
    {
        for queued in &batch {
            events.extend_from_slice(&queued.events);
        }
        let result = store.append_audit(&events).await.map_err(Arc::new);
        if let Err(error) = &result {
            tracing::error!(error = %error, events = events.len(), "audit batch not stored");
        }
        for queued in batch.drain(..) {
            // A caller that gave up waiting has nothing to be told.
            let _ignored = queued.done.send(result.clone().map_err(AuditError::Store));
        }
        events.clear();
    }
}

/// Shorthands for the events handlers write most.
pub fn success(
    time: Timestamp,
    admin: AdminId,
    action: AuditAction,
    target: AuditTarget,
) -> AuditEvent {
    AuditEvent::new(time, Actor::Admin(admin), action, target, Outcome::Success)
}

pub fn denied(
    time: Timestamp,
    actor: Actor,
    action: AuditAction,
    target: AuditTarget,
    reason: ReasonCategory,
) -> AuditEvent {
    AuditEvent::new(time, actor, action, target, Outcome::Denied).with_reason(reason)
}

/// How many leaves one sequencer transaction folds in.
const LEAVES_PER_INTEGRATION: u32 = 20_000;

/// The sequencer and publisher of the Merkle log, and its retention.
///
/// It keeps nothing of the log in memory: each step reads the tree's size, the committed leaves
/// and the latest checkpoint from the database. So a process that takes the `audit-log` lease
/// over from a dead holder starts from what that holder committed, and a step the holder did
/// not finish (its transaction rolled back) is simply done again.
pub struct AuditLog {
    store: Store,
    clock: Arc<dyn Clock>,
    signer: NoteSigner,
    retention: Duration,
}

impl AuditLog {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        signer: NoteSigner,
        retention: Duration,
    ) -> Self {
        AuditLog {
            store,
            clock,
            signer,
            retention,
        }
    }

    /// The public key checkpoints are signed with.
    pub fn verifier(&self) -> NoteVerifier {
        self.signer.verifier()
    }

    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// Folds every committed leaf into the tree and, if the tree grew past the latest
    /// checkpoint, signs and publishes a checkpoint of it. Returns the latest checkpoint.
    pub async fn sync(&self) -> anyhow::Result<Option<StoredCheckpoint>> {
        // Fold in what was committed when the call began, no more: under a sustained load there
        // is always more, and a sync that chased it would never get to publish a checkpoint.
        let target = self.store.audit_leaf_count().await?;
        loop {
            match self.store.integrate_audit(LEAVES_PER_INTEGRATION).await {
                Ok(Some(batch)) if batch.new_size < target => {}
                Ok(_) => break,
                // A row Command did not write: the log stops before it, fail closed, and what
                // was folded in before it is still signed below. Said on every pass until an
                // operator looks: nothing after it is signed either.
                Err(StoreError::AuditEventUnauthenticated { index }) => {
                    tracing::error!(
                        leaf = index,
                        "audit leaf {index} has no valid tag of the audit event key (a row \
                         inserted into the database behind Command's back): it is not folded \
                         into the log, and no later leaf is; run `enigm audit verify`"
                    );
                    break;
                }
                Err(error) => return Err(error.into()),
            }
        }
        let latest = self.store.latest_audit_checkpoint().await?;
        let size = self.store.audit_tree_size().await?;
        if latest
            .as_ref()
            .is_some_and(|latest| latest.tree_size >= size)
        {
            return Ok(latest);
        }
        let root = self.store.audit_root_at(size).await?;
        let checkpoint = Checkpoint::new(self.signer.name(), size, root, Vec::new())?;
        let stored = StoredCheckpoint {
            tree_size: size,
            root,
            note: sign_checkpoint(&checkpoint, &self.signer)?,
            published_at: self.clock.now(),
        };
        match self.store.insert_audit_checkpoint(&stored).await {
            // Another sequencer (a second process on the same database) published this size.
            Ok(()) | Err(StoreError::Conflict) => Ok(Some(stored)),
            Err(error) => Err(error.into()),
        }
    }

    /// Purges the bodies of events older than the retention period (unless on legal hold),
    /// recording the purge as an event of its own.
    pub async fn purge_expired(&self) -> anyhow::Result<Option<PurgeRecord>> {
        // Only leaves already in the tree are purged: fold in what is committed first.
        self.sync().await?;
        let now = self.clock.now();
        let retention = i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
        let cutoff = Timestamp::from_unix_millis(now.unix_millis().saturating_sub(retention));
        let record = self
            .store
            .purge_expired_audit(cutoff, now, |record| {
                AuditEvent::new(
                    now,
                    Actor::System,
                    AuditAction::AuditPurge,
                    AuditTarget::AuditLeaves {
                        first: record.first,
                        end: record.end,
                    },
                    Outcome::Success,
                )
            })
            .await?;
        if let Some(record) = &record {
            tracing::info!(
                first = record.first,
                end = record.end,
                "purged audit event bodies past retention"
            );
        }
        Ok(record)
    }

    /// Runs the sequencer every `interval`, and the purge every `purge_interval`, while this
    /// process holds `lease`, until the runtime stops.
    pub async fn run(
        self: Arc<Self>,
        lease: Arc<crate::lease::Lease>,
        interval: Duration,
        purge_interval: Duration,
    ) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut purges = tokio::time::interval(purge_interval);
        purges.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    if !lease.is_held() {
                        continue;
                    }
                    if let Err(error) = self.sync().await {
                        tracing::error!(error = format!("{error:#}"), "audit log sequencer failed");
                    }
                }
                _ = purges.tick() => {
                    if !lease.is_held() {
                        continue;
                    }
                    if let Err(error) = self.purge_expired().await {
                        tracing::error!(error = format!("{error:#}"), "audit retention purge failed");
                    }
                }
            }
        }
    }
}
