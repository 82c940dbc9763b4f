//! The director's writer: what each update check leaves behind (its request's nonce, the
//! device's step in the release's rollout, the audit event of the decision) is stored by one
//! writer task in one transaction per batch (group commit), like check-ins, so that thousands
//! of devices share a commit. A device is answered only once its nonce is durable: a replay is
//! refused even across a crash.

use std::sync::Arc;

use enigm_store::{RolloutDecision, Store, StoreError};
use enigm_types::{AuditEvent, DeviceHandle, ReleaseId, RolloutDeviceState, Timestamp};
use tokio::sync::{mpsc, oneshot};

use crate::group_commit::gather;

/// The most update checks one transaction carries.
const MAX_CHECKS_PER_COMMIT: usize = 512;

/// Checks waiting for the writer, bounded so that a stalled database pushes back.
const QUEUE_DEPTH: usize = 8 * 1024;

/// What one update check stores.
#[derive(Debug, Clone)]
pub struct DirectorWrite {
    pub handle: DeviceHandle,
    /// The request's nonce as the store keeps it, and until when.
    pub nonce: String,
    pub nonce_expires_at: Timestamp,
    pub received_at: Timestamp,
    /// The device's new step in a release's rollout (its wave, when in one), if it changed.
    pub rollout_step: Option<(ReleaseId, Option<u32>, RolloutDeviceState)>,
    /// The decision's audit event.
    pub event: Option<AuditEvent>,
}

/// What became of a check's write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectorStored {
    Recorded,
    /// The nonce was seen before: nothing was stored.
    Replayed,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectorWriteError {
    #[error("the update check batch could not be stored")]
    Store(#[source] Arc<StoreError>),
    #[error("the director's writer has stopped")]
    WriterStopped,
}

struct Queued {
    write: DirectorWrite,
    done: oneshot::Sender<Result<DirectorStored, DirectorWriteError>>,
}

/// Hands update checks to the writer task.
#[derive(Clone)]
pub struct DirectorWriter {
    queue: mpsc::Sender<Queued>,
}

impl DirectorWriter {
    /// Starts the writer task on the current Tokio runtime.
    pub fn spawn(store: Store) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(write_batches(store, receiver));
        DirectorWriter { queue }
    }

    /// Stores the check's write; returns once it is durable (or a replay).
    pub async fn store(&self, write: DirectorWrite) -> Result<DirectorStored, DirectorWriteError> {
        let (done, answer) = oneshot::channel();
        self.queue
            .send(Queued { write, done })
            .await
            .map_err(|_| DirectorWriteError::WriterStopped)?;
        answer
            .await
            .map_err(|_| DirectorWriteError::WriterStopped)?
    }
}

async fn write_batches(store: Store, mut receiver: mpsc::Receiver<Queued>) {
    let mut batch: Vec<Queued> = Vec::new();
    while gather(&mut receiver, &mut batch, |_| 1, MAX_CHECKS_PER_COMMIT).await {
        match write_batch(&store, &batch).await {
            Ok(outcomes) => {
                for (queued, outcome) in batch.drain(..).zip(outcomes) {
                    // A device that gave up waiting has nothing to be told.
                    let _ignored = queued.done.send(Ok(outcome));
                }
            }
            Err(error) => {
                tracing::error!(error = %error, checks = batch.len(), "update check batch not stored");
                let error = Arc::new(error);
                for queued in batch.drain(..) {
                    let _ignored = queued
                        .done
                        .send(Err(DirectorWriteError::Store(error.clone())));
                }
            }
        }
    }
}

/// Stores a batch in one transaction: all of it, or (on a database failure) none of it. The
/// batch's nonces are claimed in one statement, and its rollout steps written in another,
/// instead of two round trips per check.
async fn write_batch(store: &Store, batch: &[Queued]) -> Result<Vec<DirectorStored>, StoreError> {
    let mut tx = store.begin().await?;
    if let Some(first) = batch.first() {
        tx.forget_expired_nonces(first.write.received_at).await?;
    }
    let nonces: Vec<(DeviceHandle, String, Timestamp)> = batch
        .iter()
        .map(|queued| {
            let write = &queued.write;
            (write.handle, write.nonce.clone(), write.nonce_expires_at)
        })
        .collect();
    let claimed = tx.claim_device_nonces(&nonces).await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut decisions = Vec::new();
    for (queued, claimed) in batch.iter().zip(claimed) {
        if !claimed {
            outcomes.push(DirectorStored::Replayed);
            continue;
        }
        let write = &queued.write;
        if let Some((release, wave, state)) = write.rollout_step {
            decisions.push(RolloutDecision {
                release,
                handle: write.handle,
                wave,
                state,
                at: write.received_at,
            });
        }
        if let Some(event) = &write.event {
            tx.append_audit(event).await?;
        }
        outcomes.push(DirectorStored::Recorded);
    }
    tx.record_rollout_decisions(&decisions).await?;
    tx.commit().await?;
    Ok(outcomes)
}
