//! Leases for the background tasks that one deployment must run once, not once per process:
//! the audit sequencer with its checkpoints and retention purge, OTA timestamp re-signing, and
//! the purge of expired shared state.
//!
//! Each `enigm up` process tries to take every lease when it starts and then every
//! [`LEASE_RENEWAL`]; a lease is taken if it is free, expired, or already this process's, in one
//! conditional upsert (`Store::take_lease`), and lasts [`LEASE_TERM`]. Only the holder runs the
//! task. A holder that dies stops renewing, and another process takes its tasks over within
//! about `LEASE_TERM + LEASE_RENEWAL`; one that shuts down gives its leases up at once.
//!
//! Time comes from each process's clock, so replicas need clocks that agree to well within
//! `LEASE_TERM` (as session expiry and TOTP already assume); a process counts a lease as held
//! only while more than [`LEASE_RENEWAL`] of it is left, a margin for that. Even two holders at
//! once would not corrupt anything: the tasks themselves are serialised by the database (the
//! audit tree's state row, the unique checkpoint size, the timestamp's version); the lease only
//! keeps them from being done twice.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use enigm_store::Store;
use enigm_types::{Clock, Timestamp};
use rand::RngCore as _;

/// How long a taken or renewed lease lasts.
pub const LEASE_TERM: Duration = Duration::from_secs(5);
/// How often a process renews its leases (and tries to take the others').
pub const LEASE_RENEWAL: Duration = Duration::from_secs(1);

/// The audit sequencer, checkpoint signing and the retention purge.
pub const AUDIT_LOG: &str = "audit-log";
/// Re-signing the OTA timestamp before it expires.
pub const OTA_TIMESTAMPS: &str = "ota-timestamps";
/// Purging expired attestation nonces and forgotten login throttle rows.
pub const SHARED_STATE_PURGE: &str = "shared-state-purge";

/// One process's claim on one task.
pub struct Lease {
    store: Store,
    clock: Arc<dyn Clock>,
    task: &'static str,
    holder: String,
    /// Until when this process holds the lease, as of its last successful take or renewal.
    held_until: Mutex<Option<Timestamp>>,
}

/// A name for this process as a lease holder: its process id (for operators reading the
/// `leases` table) and random bytes (so that a restarted process with a reused id is another
/// holder).
pub fn holder_id() -> String {
    let mut random = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut random);
    format!("{}@{}", std::process::id(), hex::encode(random))
}

impl Lease {
    pub fn new(store: Store, clock: Arc<dyn Clock>, task: &'static str, holder: &str) -> Self {
        Lease {
            store,
            clock,
            task,
            holder: holder.to_owned(),
            held_until: Mutex::new(None),
        }
    }

    pub fn task(&self) -> &'static str {
        self.task
    }

    /// Takes the lease, or renews it if this process holds it; answers whether it does now.
    /// A database error leaves the lease to run out by itself.
    pub async fn renew(&self) -> bool {
        let now = self.clock.now();
        let until = now.saturating_add(LEASE_TERM);
        let held = match self
            .store
            .take_lease(self.task, &self.holder, now, until)
            .await
        {
            Ok(held) => held,
            Err(error) => {
                tracing::warn!(task = self.task, error = %error, "could not renew a task lease");
                return self.is_held();
            }
        };
        let was_held = self.is_held();
        self.set(held.then_some(until));
        if held && !was_held {
            tracing::info!(task = self.task, holder = %self.holder, "took the task lease");
        } else if !held && was_held {
            tracing::warn!(task = self.task, "lost the task lease");
        }
        held
    }

    /// Whether this process may run the task now.
    pub fn is_held(&self) -> bool {
        let margin = self.clock.now().saturating_add(LEASE_RENEWAL);
        self.lock().is_some_and(|until| until > margin)
    }

    /// Gives the lease up (at shutdown), so another process takes the task at once.
    pub async fn release(&self) {
        self.set(None);
        if let Err(error) = self.store.release_lease(self.task, &self.holder).await {
            tracing::warn!(task = self.task, error = %error, "could not release a task lease");
        }
    }

    fn set(&self, until: Option<Timestamp>) {
        *self.lock() = until;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Timestamp>> {
        // The guarded value is one timestamp, written whole: a poisoned lock still holds a
        // meaningful value.
        self.held_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Renews (or tries to take) each lease every [`LEASE_RENEWAL`] until the runtime stops.
pub async fn keep(leases: Vec<Arc<Lease>>) {
    let mut ticks = tokio::time::interval(LEASE_RENEWAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        for lease in &leases {
            lease.renew().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use enigm_test_support::{Backend, TestDatabase, backend_tests};
    use enigm_types::ManualClock;

    use super::*;

    const T0: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

    backend_tests!(a_lease_moves_only_when_its_holder_stops_renewing);

    async fn a_lease_moves_only_when_its_holder_stops_renewing(backend: Backend) {
        let db = TestDatabase::new(backend).await.unwrap();
        let store = Store::connect(db.url()).await.unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let first = Lease::new(store.clone(), clock.clone(), AUDIT_LOG, &holder_id());
        let second = Lease::new(store.clone(), clock.clone(), AUDIT_LOG, &holder_id());
        assert!(first.renew().await);
        assert!(first.is_held());
        assert!(!second.renew().await);
        assert!(!second.is_held());
        // Renewed every second, the lease stays with its holder.
        for _ in 0..10 {
            clock.advance(LEASE_RENEWAL);
            assert!(first.renew().await);
            assert!(!second.renew().await);
        }
        // The holder stops renewing: it stops counting itself the holder a renewal period
        // before the lease runs out, and the other process takes it once it has.
        clock.advance(LEASE_TERM - LEASE_RENEWAL);
        assert!(!first.is_held());
        assert!(!second.renew().await);
        clock.advance(LEASE_RENEWAL);
        assert!(second.renew().await);
        assert!(!first.renew().await);
        // Given up at shutdown, it is free at once.
        second.release().await;
        assert!(!second.is_held());
        assert!(first.renew().await);
    }
}
