//! The check-in writer: check-ins from many devices are stored by one writer task in one
//! transaction per batch (group commit), with the audit events of the trust changes among them
//! in the same transaction. Each device is answered only once its check-in is durable.
//!
//! A check-in arrives here already verified (signature, digest, freshness) and evaluated; what
//! is left is what must be decided against the database atomically: the nonce is new, the
//! device is still active, and what its trust state was before.

use enigm_trust::DeviceRequest;
use std::sync::Arc;

use enigm_store::{CheckInStored, CheckInWrite, Store, StoreError};
use enigm_trust::{AttestedSignals, DeviceState, TrustPolicy, TrustState};
use enigm_types::{
    Actor, AuditAction, AuditEvent, AuditTarget, AuditTrustState, Outcome, SecurityLayers,
};
use tokio::sync::{mpsc, oneshot};

use crate::group_commit::gather;

/// The most check-ins one transaction carries: enough that thousands of devices share a
/// commit under load, small enough that one batch's latency stays in tens of milliseconds.
pub const MAX_CHECK_INS_PER_COMMIT: usize = 512;

/// Check-ins waiting for the writer, bounded so that a stalled database pushes back.
const QUEUE_DEPTH: usize = 8 * 1024;

/// A verified, evaluated check-in to store.
#[derive(Debug, Clone)]
pub struct CheckIn {
    pub write: CheckInWrite,
    pub trust_state: TrustState,
    /// The security layers of the evaluation's findings, recorded with a trust change.
    pub finding_sources: SecurityLayers,
    /// The security layers in which the attestation contradicted the report: such a check-in
    /// is audited even when the trust state stays the same.
    pub contradictions: SecurityLayers,
}

/// What became of a check-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckInOutcome {
    /// Stored (and, when the trust state changed, audited with it).
    Recorded {
        previous: TrustState,
    },
    Replayed,
    /// Not active by the time the batch was written: the device's lifecycle state, or `None`
    /// for an unknown device.
    NotActive {
        state: Option<DeviceState>,
    },
    /// The device's policies changed after the evaluation's were loaded (an assignment of its
    /// group, an attestation, possibly by another Command process): nothing was stored and the
    /// nonce is free; the caller evaluates again under the policies it has now.
    Stale,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckInError {
    #[error("the check-in batch could not be stored")]
    Store(#[source] Arc<StoreError>),
    #[error("the check-in writer has stopped")]
    WriterStopped,
}

struct Queued {
    check_in: CheckIn,
    done: oneshot::Sender<Result<CheckInOutcome, CheckInError>>,
}

/// Hands check-ins to the writer task.
#[derive(Clone)]
pub struct CheckInWriter {
    queue: mpsc::Sender<Queued>,
}

impl CheckInWriter {
    /// Starts the writer task on the current Tokio runtime.
    pub fn spawn(store: Store) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(write_batches(store, receiver));
        CheckInWriter { queue }
    }

    /// Stores the check-in; returns once it is durable (or refused).
    pub async fn store(&self, check_in: CheckIn) -> Result<CheckInOutcome, CheckInError> {
        let (done, answer) = oneshot::channel();
        self.queue
            .send(Queued { check_in, done })
            .await
            .map_err(|_| CheckInError::WriterStopped)?;
        answer.await.map_err(|_| CheckInError::WriterStopped)?
    }
}

async fn write_batches(store: Store, mut receiver: mpsc::Receiver<Queued>) {
    let mut batch: Vec<Queued> = Vec::new();
    while gather(&mut receiver, &mut batch, |_| 1, MAX_CHECK_INS_PER_COMMIT).await {
        match write_batch(&store, &batch).await {
            Ok(outcomes) => {
                for (queued, outcome) in batch.drain(..).zip(outcomes) {
                    // A device that gave up waiting has nothing to be told.
                    let _ignored = queued.done.send(Ok(outcome));
                }
            }
            Err(error) => {
                tracing::error!(error = %error, check_ins = batch.len(), "check-in batch not stored");
                let error = Arc::new(error);
                for queued in batch.drain(..) {
                    let _ignored = queued.done.send(Err(CheckInError::Store(error.clone())));
                }
            }
        }
    }
}

/// Stores a batch in one transaction: all of it, or (on a database failure) none of it.
async fn write_batch(store: &Store, batch: &[Queued]) -> Result<Vec<CheckInOutcome>, StoreError> {
    let writes: Vec<CheckInWrite> = batch
        .iter()
        .map(|queued| queued.check_in.write.clone())
        .collect();
    let mut tx = store.begin().await?;
    if let Some(first) = writes.first() {
        tx.forget_expired_nonces(first.received_at).await?;
    }
    // The states the decision lets a device check in from, checked again as the batch is written.
    let active_states = enigm_trust::states_permitting(DeviceRequest::CheckIn);
    let stored = tx.record_check_ins(&writes, &active_states).await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for (queued, stored) in batch.iter().zip(stored) {
        let check_in = &queued.check_in;
        let outcome = match stored {
            CheckInStored::Replayed => CheckInOutcome::Replayed,
            CheckInStored::NotActive { state } => CheckInOutcome::NotActive { state },
            CheckInStored::Stale => CheckInOutcome::Stale,
            CheckInStored::Recorded {
                previous_trust_state: previous,
            } => {
                if previous != check_in.trust_state || !check_in.contradictions.is_empty() {
                    let handle = check_in.write.handle;
                    tx.append_audit(&AuditEvent::new(
                        check_in.write.received_at,
                        Actor::Device(handle),
                        AuditAction::DeviceTrustChange,
                        AuditTarget::DeviceTrust {
                            handle,
                            from: Some(audit_trust(previous)),
                            to: audit_trust(check_in.trust_state),
                            sources: check_in.finding_sources,
                            contradictions: check_in.contradictions,
                        },
                        Outcome::Success,
                    ))
                    .await?;
                }
                CheckInOutcome::Recorded { previous }
            }
        };
        outcomes.push(outcome);
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// What a check-in is evaluated with besides its report: the device's effective trust policy
/// and the signals Command derived from its attestation.
#[derive(Debug)]
pub struct DevicePolicy {
    pub policy: TrustPolicy,
    pub attested: AttestedSignals,
    /// The target of the group's newest policy bundle when loaded (publishing one bumps the
    /// group's policy revision, so a newer one reloads this).
    pub bundle: Option<String>,
    /// The bundle sequence the device had reported when loaded.
    pub reported_bundle: Option<u64>,
}

/// Each active device's effective trust policy, parsed, and its attested signals, with the
/// device's `policy_revision` they were loaded at, so that a check-in needs no database read
/// before the writer's transaction. The writer compares that revision with the device row's in
/// its transaction: a policy assignment or an attestation anywhere (any Command process on the
/// database) bumps it, and the check-in is then answered `Stale` and evaluated again under a
/// fresh load. Whether the device may still check in (revoked, retired, ...) is decided in that
/// transaction, never from here.
pub type PolicyCache = crate::revision_cache::RevisionCache<DevicePolicy>;

/// A device's [`DevicePolicy`] and the `policy_revision` it was loaded at.
pub type CachedPolicy = crate::revision_cache::Cached<DevicePolicy>;

/// A trust state as the audit log records it: the engine's `TrustState` itself, one vocabulary
/// in `enigm-types` (kept as a function for the call sites that name the conversion).
pub fn audit_trust(state: TrustState) -> AuditTrustState {
    state
}
