//! Group commit: one writer task stores everything queued while its previous transaction
//! committed, so one durable commit (one fsync) is shared by every request in the batch. The
//! audit sink and the check-in writer both gather their batches here.

use tokio::sync::mpsc;

/// How many times the writer yields to let more producers queue before it commits a batch
/// that is still growing.
const MAX_GATHER_YIELDS: u32 = 8;

/// Waits for the next queued item, then moves into `batch` everything already queued, up to
/// `max_weight` in all (each item weighs `weight(item)`). Returns `false` once the queue is
/// closed and empty.
pub(crate) async fn gather<T>(
    receiver: &mut mpsc::Receiver<T>,
    batch: &mut Vec<T>,
    weight: impl Fn(&T) -> usize,
    max_weight: usize,
) -> bool {
    let Some(first) = receiver.recv().await else {
        return false;
    };
    let mut total = weight(&first);
    batch.push(first);
    // Take everything already queued; then let the producers that are about to queue run
    // first, a few times (yields, not a timer: an idle server commits a lone item after a few
    // scheduler passes, microseconds), so that one commit carries as much as possible. Even a
    // lone item waits those passes: right after a large batch is answered, the first answered
    // producer is back alone, and committing it alone would make every other one wait.
    let mut yields = 0;
    while total < max_weight {
        match receiver.try_recv() {
            Ok(next) => {
                total += weight(&next);
                batch.push(next);
            }
            Err(_) if yields < MAX_GATHER_YIELDS => {
                yields += 1;
                tokio::task::yield_now().await;
            }
            Err(_) => break,
        }
    }
    true
}
