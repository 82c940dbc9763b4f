//! What Command's processes share through the database, against SQLite and PostgreSQL:
//! attestation nonces (single use under concurrency, bounded, expired ones purged), login
//! throttle rows (failures from concurrent writers all counted, cleared, bounded) and leases
//! (take, renew, expire, taken over after expiry, never two holders at once).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

use std::time::Duration;

use enigm_store::{Store, ThrottleRecord};
use enigm_test_support::{Backend, TestDatabase, backend_tests};
use enigm_types::{DeviceHandle, Timestamp};

/// 2026-11-22T00:00:00Z.
const T0: Timestamp = Timestamp::from_unix_millis(1_795_305_600_000);
const TTL: Duration = Duration::from_secs(60);

backend_tests!(
    a_nonce_is_taken_once_by_its_device_for_its_purpose,
    of_many_concurrent_takers_of_one_nonce_exactly_one_wins,
    a_full_nonce_table_purges_expired_nonces_and_then_refuses,
    throttle_failures_from_concurrent_writers_are_all_counted,
    throttle_rows_are_cleared_and_bounded,
    failures_racing_successes_and_purges_are_stored_without_error,
    a_lease_is_taken_renewed_and_taken_over_only_after_expiry,
    of_many_concurrent_takers_of_one_lease_at_most_one_holds_it,
);

fn handle(byte: u8) -> DeviceHandle {
    DeviceHandle::from_digest(&[byte; 20])
}

fn after(seconds: u64) -> Timestamp {
    T0.saturating_add(Duration::from_secs(seconds))
}

async fn store(backend: Backend) -> (TestDatabase, Store) {
    let db = TestDatabase::new(backend).await.unwrap();
    let store = Store::connect(db.url()).await.unwrap();
    (db, store)
}

async fn take(store: &Store, nonce: &[u8], device: u8, purpose: &str) -> Option<Timestamp> {
    let mut tx = store.begin().await.unwrap();
    let taken = tx
        .take_attestation_nonce(nonce, &handle(device), purpose)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    taken
}

async fn a_nonce_is_taken_once_by_its_device_for_its_purpose(backend: Backend) {
    let (_db, store) = store(backend).await;
    let nonce = [1u8; 32];
    let expires = T0.saturating_add(TTL);
    assert!(
        store
            .issue_attestation_nonce(&nonce, &handle(1), "enrollment", expires, T0, 10)
            .await
            .unwrap()
    );
    // Another device or another purpose: not theirs, and it stays for its own device.
    assert_eq!(take(&store, &nonce, 2, "enrollment").await, None);
    assert_eq!(take(&store, &nonce, 1, "attestation").await, None);
    assert_eq!(take(&store, &nonce, 1, "enrollment").await, Some(expires));
    assert_eq!(take(&store, &nonce, 1, "enrollment").await, None);
    // A taken nonce inside a transaction that rolls back is not spent.
    store
        .issue_attestation_nonce(&[2; 32], &handle(1), "attestation", expires, T0, 10)
        .await
        .unwrap();
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.take_attestation_nonce(&[2; 32], &handle(1), "attestation")
            .await
            .unwrap()
            .is_some()
    );
    drop(tx);
    assert_eq!(
        take(&store, &[2; 32], 1, "attestation").await,
        Some(expires)
    );
}

async fn of_many_concurrent_takers_of_one_nonce_exactly_one_wins(backend: Backend) {
    let (db, store) = store(backend).await;
    // Two stores are two pools, as two processes would have.
    let other = Store::connect(db.url()).await.unwrap();
    for round in 0u8..5 {
        let nonce = [round; 32];
        store
            .issue_attestation_nonce(&nonce, &handle(1), "attestation", after(60), T0, 100)
            .await
            .unwrap();
        let mut takers = tokio::task::JoinSet::new();
        for taker in 0..16 {
            let store = if taker % 2 == 0 {
                store.clone()
            } else {
                other.clone()
            };
            takers.spawn(async move { take(&store, &nonce, 1, "attestation").await.is_some() });
        }
        let mut winners = 0;
        while let Some(won) = takers.join_next().await {
            winners += usize::from(won.unwrap());
        }
        assert_eq!(winners, 1, "round {round}");
    }
}

async fn a_full_nonce_table_purges_expired_nonces_and_then_refuses(backend: Backend) {
    let (_db, store) = store(backend).await;
    let issue = |nonce: u8, now: Timestamp| {
        let store = store.clone();
        async move {
            store
                .issue_attestation_nonce(
                    &[nonce; 32],
                    &handle(1),
                    "attestation",
                    now.saturating_add(TTL),
                    now,
                    2,
                )
                .await
                .unwrap()
        }
    };
    assert!(issue(1, T0).await);
    assert!(issue(2, T0).await);
    // Full of live nonces: refused, and neither live one is evicted.
    assert!(!issue(3, T0).await);
    assert_eq!(
        take(&store, &[1; 32], 1, "attestation").await,
        Some(after(60))
    );
    assert!(issue(3, T0).await);
    // A minute later both are expired: they make room.
    assert!(issue(4, after(61)).await);
    assert_eq!(take(&store, &[2; 32], 1, "attestation").await, None);
    assert_eq!(take(&store, &[3; 32], 1, "attestation").await, None);
    assert_eq!(
        take(&store, &[4; 32], 1, "attestation").await,
        Some(after(121))
    );
    // The periodic purge forgets expired nonces only.
    assert!(issue(5, after(200)).await);
    assert!(issue(6, after(300)).await);
    assert_eq!(
        store
            .purge_expired_attestation_nonces(after(300))
            .await
            .unwrap(),
        1
    );
    assert!(take(&store, &[6; 32], 1, "attestation").await.is_some());
}

/// The failure count only: what a policy would compute is not this test's business.
fn count(previous: Option<ThrottleRecord>, now: Timestamp) -> ThrottleRecord {
    let failures = previous.map_or(0, |record| record.failures) + 1;
    ThrottleRecord {
        failures,
        blocked_until: (failures > 5).then(|| now.saturating_add(Duration::from_secs(2))),
        quiet_since: now,
    }
}

async fn throttle_failures_from_concurrent_writers_are_all_counted(backend: Backend) {
    let (db, store) = store(backend).await;
    let other = Store::connect(db.url()).await.unwrap();
    let keys = vec!["user:alice".to_owned(), "ip:192.0.2.1".to_owned()];
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..20 {
        let store = if writer % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        // Half of them name the keys in the other order: still no deadlock.
        let mut keys = keys.clone();
        if writer % 4 < 2 {
            keys.reverse();
        }
        writers.spawn(async move {
            store
                .record_login_failure(&keys, T0, |previous| count(previous, T0))
                .await
                .unwrap();
        });
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }
    let stored = other.login_throttle(&keys).await.unwrap();
    assert_eq!(stored.len(), 2);
    for (key, record) in &stored {
        assert_eq!(record.failures, 20, "{key}");
        assert_eq!(record.blocked_until, Some(after(2)), "{key}");
    }
    // A key never seen has no row.
    assert!(
        store
            .login_throttle(&["user:bob".to_owned()])
            .await
            .unwrap()
            .is_empty()
    );
}

async fn throttle_rows_are_cleared_and_bounded(backend: Backend) {
    let (_db, store) = store(backend).await;
    let keys: Vec<String> = (0..6).map(|n| format!("ip:192.0.2.{n}")).collect();
    for (n, key) in keys.iter().enumerate() {
        let at = after(u64::try_from(n).unwrap() * 100);
        store
            .record_login_failure(std::slice::from_ref(key), at, |previous| {
                count(previous, at)
            })
            .await
            .unwrap();
    }
    // Success clears a key: its next failure is the first again.
    store.clear_login_throttle(&keys[5..]).await.unwrap();
    assert!(store.login_throttle(&keys[5..]).await.unwrap().is_empty());
    // Quiet since before 150 s: keys 0 and 1 go; then at most two remain, the most recent.
    let purged = store.purge_login_throttle(after(150), 2).await.unwrap();
    assert_eq!(purged, 3);
    let left: Vec<String> = store
        .login_throttle(&keys)
        .await
        .unwrap()
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(left, keys[3..5]);
}

async fn failures_racing_successes_and_purges_are_stored_without_error(backend: Backend) {
    let (db, store) = store(backend).await;
    let other = Store::connect(db.url()).await.unwrap();
    let keys = vec!["user:alice".to_owned(), "ip:192.0.2.1".to_owned()];
    let mut racers = tokio::task::JoinSet::new();
    for racer in 0..24 {
        let store = if racer % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        let keys = keys.clone();
        racers.spawn(async move {
            match racer % 3 {
                0 => store.clear_login_throttle(&keys).await,
                1 => store.purge_login_throttle(after(1), 1).await.map(|_| ()),
                _ => {
                    store
                        .record_login_failure(&keys, T0, |previous| count(previous, T0))
                        .await
                }
            }
        });
    }
    while let Some(done) = racers.join_next().await {
        done.unwrap().unwrap();
    }
    // Whatever survived is a count the failures made, never a placeholder.
    for (key, record) in store.login_throttle(&keys).await.unwrap() {
        assert!(record.failures >= 1, "{key}: {record:?}");
    }
}

async fn a_lease_is_taken_renewed_and_taken_over_only_after_expiry(backend: Backend) {
    let (_db, store) = store(backend).await;
    let term = |now: Timestamp| now.saturating_add(Duration::from_secs(5));
    let task = "audit-sequencer";
    assert_eq!(store.lease(task).await.unwrap(), None);
    assert!(store.take_lease(task, "a", T0, term(T0)).await.unwrap());
    // Held: another process is refused; the holder renews.
    assert!(
        !store
            .take_lease(task, "b", after(1), term(after(1)))
            .await
            .unwrap()
    );
    assert!(
        store
            .take_lease(task, "a", after(1), term(after(1)))
            .await
            .unwrap()
    );
    // Past the first term but within the renewed one: still a's.
    assert!(
        !store
            .take_lease(task, "b", after(5), term(after(5)))
            .await
            .unwrap()
    );
    // Other tasks are other leases.
    assert!(
        store
            .take_lease("ota-timestamps", "b", after(5), term(after(5)))
            .await
            .unwrap()
    );
    // a stops renewing: once its lease expires, b takes it, and a's renewal is refused.
    assert!(
        store
            .take_lease(task, "b", after(6), term(after(6)))
            .await
            .unwrap()
    );
    assert!(
        !store
            .take_lease(task, "a", after(7), term(after(7)))
            .await
            .unwrap()
    );
    let lease = store.lease(task).await.unwrap().unwrap();
    assert_eq!(lease.holder, "b");
    assert_eq!(lease.expires_at, after(11));
    // Released by someone who does not hold it: nothing happens; by its holder: free at once.
    store.release_lease(task, "a").await.unwrap();
    assert!(
        !store
            .take_lease(task, "a", after(7), term(after(7)))
            .await
            .unwrap()
    );
    store.release_lease(task, "b").await.unwrap();
    assert!(
        store
            .take_lease(task, "a", after(7), term(after(7)))
            .await
            .unwrap()
    );
}

async fn of_many_concurrent_takers_of_one_lease_at_most_one_holds_it(backend: Backend) {
    let (db, store) = store(backend).await;
    let other = Store::connect(db.url()).await.unwrap();
    for round in 0..5u64 {
        // Each round starts after the previous round's lease expired.
        let now = after(round * 10);
        let until = now.saturating_add(Duration::from_secs(5));
        let mut takers = tokio::task::JoinSet::new();
        for taker in 0..16 {
            let store = if taker % 2 == 0 {
                store.clone()
            } else {
                other.clone()
            };
            takers.spawn(async move {
                let holder = format!("process-{taker}");
                store
                    .take_lease("audit-sequencer", &holder, now, until)
                    .await
                    .unwrap()
                    .then_some(holder)
            });
        }
        let mut holders = Vec::new();
        while let Some(held) = takers.join_next().await {
            holders.extend(held.unwrap());
        }
        assert_eq!(holders.len(), 1, "round {round}: {holders:?}");
        let lease = store.lease("audit-sequencer").await.unwrap().unwrap();
        assert_eq!(lease.holder, holders[0]);
    }
}
