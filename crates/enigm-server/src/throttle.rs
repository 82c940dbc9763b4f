//! The login throttle of a deployment: `enigm_identity`'s pure policy over entries kept in the
//! database, so that every Command process counts the same failures (seven wrong passwords
//! spread over two processes are seven, not four and three).
//!
//! A check reads the keys' rows; a failure updates them with their rows locked, so concurrent
//! failures at different processes are all counted. Rows of keys quiet for the policy's forget
//! period are purged by the holder of the `shared-state-purge` lease, and the table is held to
//! the policy's `max_keys` there.

use std::time::Duration;

use enigm_identity::{ThrottleEntry, ThrottlePolicy};
use enigm_store::{Store, StoreResult, ThrottleRecord};
use enigm_types::Timestamp;

/// Login failures per throttle key, in the database.
pub struct SharedThrottle {
    store: Store,
    policy: ThrottlePolicy,
}

impl SharedThrottle {
    pub fn new(store: Store, policy: ThrottlePolicy) -> Self {
        SharedThrottle { store, policy }
    }

    /// The longest back-off running for any of `keys`, if one is.
    pub async fn retry_after(
        &self,
        keys: &[String],
        now: Timestamp,
    ) -> StoreResult<Option<Duration>> {
        let stored = self.store.login_throttle(keys).await?;
        Ok(stored
            .iter()
            .filter_map(|(_, record)| self.policy.check(Some(&entry(record)), now).err())
            .map(|retry| retry.0)
            .max())
    }

    /// Counts a failure for each of `keys`.
    pub async fn record_failure(&self, keys: &[String], now: Timestamp) -> StoreResult<()> {
        self.store
            .record_login_failure(keys, now, |previous| {
                record(&self.policy.after_failure(previous.as_ref().map(entry), now))
            })
            .await
    }

    /// Forgets the failures of `keys`, ending any back-off.
    pub async fn record_success(&self, keys: &[String]) -> StoreResult<()> {
        self.store.clear_login_throttle(keys).await
    }

    /// Drops the rows of keys quiet for the forget period (they would start from zero anyway)
    /// and then, beyond `max_keys`, those quiet the longest.
    pub async fn purge(&self, now: Timestamp) -> StoreResult<u64> {
        let forgotten_before = now.saturating_sub(self.policy.forget_after);
        self.store
            .purge_login_throttle(
                forgotten_before,
                u64::try_from(self.policy.max_keys.max(1)).unwrap_or(u64::MAX),
            )
            .await
    }
}

fn entry(record: &ThrottleRecord) -> ThrottleEntry {
    ThrottleEntry {
        consecutive_failures: record.failures,
        blocked_until: record.blocked_until,
        quiet_since: record.quiet_since,
    }
}

fn record(entry: &ThrottleEntry) -> ThrottleRecord {
    ThrottleRecord {
        failures: entry.consecutive_failures,
        blocked_until: entry.blocked_until,
        quiet_since: entry.quiet_since,
    }
}
