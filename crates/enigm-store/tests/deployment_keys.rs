//! The deployment's key fingerprints against SQLite and PostgreSQL: the first binding of a role
//! is recorded and later ones read it back unchanged, two processes binding at once record
//! exactly one set, a different key is seen as different, and a rebinding replaces it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

use enigm_store::{KeyRole, Store};
use enigm_test_support::{Backend, TestDatabase, backend_tests};
use enigm_types::Timestamp;

/// 2026-12-06T00:00:00Z.
const T0: Timestamp = Timestamp::from_unix_millis(1_796_515_200_000);
const T1: Timestamp = Timestamp::from_unix_millis(1_796_515_260_000);

backend_tests!(
    the_first_binding_is_kept_and_a_different_key_is_seen,
    concurrent_first_bindings_record_one_set_of_keys,
    a_rebinding_replaces_only_its_role,
);

fn fingerprint(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

async fn bind_all(store: &Store, n: u8, at: Timestamp) -> Vec<(KeyRole, String, bool)> {
    let mut tx = store.begin().await.unwrap();
    let mut bound = Vec::new();
    for role in KeyRole::ALL {
        let key = tx
            .bind_deployment_key(role, &fingerprint(n), at)
            .await
            .unwrap();
        assert_eq!(key.role, role);
        bound.push((role, key.fingerprint, key.newly_bound));
    }
    tx.commit().await.unwrap();
    bound
}

async fn the_first_binding_is_kept_and_a_different_key_is_seen(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let store = Store::connect(db.url()).await.unwrap();
    assert!(store.deployment_keys().await.unwrap().is_empty());

    let first = bind_all(&store, 1, T0).await;
    assert!(
        first
            .iter()
            .all(|(_, recorded, new)| *new && *recorded == fingerprint(1))
    );

    // The same keys again: nothing new, the same fingerprints.
    let again = bind_all(&store, 1, T1).await;
    assert!(
        again
            .iter()
            .all(|(_, recorded, new)| !*new && *recorded == fingerprint(1))
    );

    // Other keys: the database answers with the recorded ones, which differ.
    let other = bind_all(&store, 2, T1).await;
    assert!(
        other
            .iter()
            .all(|(_, recorded, new)| !*new && *recorded == fingerprint(1))
    );

    let stored = store.deployment_keys().await.unwrap();
    assert_eq!(
        stored.iter().map(|key| key.role).collect::<Vec<_>>(),
        KeyRole::ALL
    );
    assert!(
        stored
            .iter()
            .all(|key| key.fingerprint == fingerprint(1) && key.bound_at == T0)
    );

    // A binding rolled back records nothing.
    let fresh = TestDatabase::new(backend).await.unwrap();
    let fresh_store = Store::connect(fresh.url()).await.unwrap();
    let mut tx = fresh_store.begin().await.unwrap();
    tx.bind_deployment_key(KeyRole::Sealing, &fingerprint(3), T0)
        .await
        .unwrap();
    drop(tx);
    assert!(fresh_store.deployment_keys().await.unwrap().is_empty());
}

async fn concurrent_first_bindings_record_one_set_of_keys(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    // One store per "process": separate pools, as two `enigm up` would have.
    let stores = [
        Store::connect(db.url()).await.unwrap(),
        Store::connect(db.url()).await.unwrap(),
        Store::connect(db.url()).await.unwrap(),
        Store::connect(db.url()).await.unwrap(),
    ];
    let tasks: Vec<_> = stores
        .iter()
        .cloned()
        .zip(1u8..)
        .map(|(store, n)| tokio::spawn(async move { bind_all(&store, n, T0).await }))
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    // Exactly one process recorded each role, every process saw that one's fingerprint, and
    // one process won every role (its transaction held them all).
    let winner = stores[0].deployment_keys().await.unwrap()[0]
        .fingerprint
        .clone();
    for role in KeyRole::ALL {
        let recorders = results
            .iter()
            .filter(|bound| bound.iter().any(|(r, _, new)| *r == role && *new))
            .count();
        assert_eq!(recorders, 1, "{role} recorded by {recorders} processes");
    }
    for bound in &results {
        assert!(bound.iter().all(|(_, recorded, _)| *recorded == winner));
    }
    let stored = stores[1].deployment_keys().await.unwrap();
    assert_eq!(stored.len(), KeyRole::ALL.len());
    assert!(stored.iter().all(|key| key.fingerprint == winner));
}

async fn a_rebinding_replaces_only_its_role(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let store = Store::connect(db.url()).await.unwrap();
    bind_all(&store, 1, T0).await;
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.rebind_deployment_key(KeyRole::OtaSnapshot, &fingerprint(9), T1)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    for key in store.deployment_keys().await.unwrap() {
        if key.role == KeyRole::OtaSnapshot {
            assert_eq!(
                (key.fingerprint.as_str(), key.bound_at),
                (&*fingerprint(9), T1)
            );
        } else {
            assert_eq!(
                (key.fingerprint.as_str(), key.bound_at),
                (&*fingerprint(1), T0)
            );
        }
    }
    // Nothing to replace on a database without a binding for the role.
    let fresh = TestDatabase::new(backend).await.unwrap();
    let fresh_store = Store::connect(fresh.url()).await.unwrap();
    let mut tx = fresh_store.begin().await.unwrap();
    assert!(
        !tx.rebind_deployment_key(KeyRole::AuditLog, &fingerprint(9), T1)
            .await
            .unwrap()
    );
}
