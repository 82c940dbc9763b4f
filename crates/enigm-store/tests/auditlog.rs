//! The audit log's storage against SQLite and PostgreSQL: the sequencer builds exactly the tree
//! `enigm-auditlog` builds in memory, proofs come out the same, events stored before the log
//! become its first leaves, and a gap in the leaves stops the sequencer. Tampering and the
//! offline verifier are `auditlog_tampering.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod audit_support;

use enigm_auditlog::Hash;
use enigm_store::{NoProgress, Store, StoreError};
use enigm_test_support::{Backend, TestDatabase, backend_tests};
use sqlx::{AnyConnection, Connection as _};

use audit_support::*;

backend_tests!(
    sequencer_matches_the_in_memory_log,
    existing_events_become_the_first_leaves,
    a_gap_in_leaf_indexes_stops_the_sequencer,
    a_deleted_next_leaf_stops_the_sequencer,
    open_existing_refuses_an_unmigrated_database,
    rows_without_a_valid_tag_are_not_integrated_and_are_reported,
);

/// Issue 18: a writer with access to the database can append rows, but not tag them with the
/// audit event key, which is not in the database. The sequencer folds in the tagged leaves
/// before such a row and stops there; the offline verifier names every untagged row.
async fn rows_without_a_valid_tag_are_not_integrated_and_are_reported(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let store = connect(&db).await;
    let signer = signer();
    store.append_audit(&events(T0, 0..5)).await.unwrap();
    assert_eq!(publish(&store, &signer, T0).await.tree_size, 5);

    // Leaf 5 is Command's; leaf 6 comes from a process that has the database but not the key
    // (it writes through the same code, so the row is otherwise perfect); leaf 7 is Command's.
    store.append_audit(&events(T0, 5..6)).await.unwrap();
    let forger = Store::connect(db.url()).await.unwrap();
    forger.append_audit(&events(T0, 6..7)).await.unwrap();
    store.append_audit(&events(T0, 7..8)).await.unwrap();
    // Leaves 8 and 9 by hand in SQL: a made-up tag, and a genuine tag copied from leaf 5.
    let mut conn = attacker(&db).await;
    let genuine: (String, String) = {
        use sqlx::Row as _;
        let row = sqlx::query("SELECT canonical, mac FROM audit_events WHERE leaf_index = 5")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        (row.get("canonical"), row.get("mac"))
    };
    for (index, event, mac) in [
        (8i64, events(T0, 8..9).remove(0), "ab".repeat(32)),
        (
            9i64,
            serde_json::from_str(&genuine.0).unwrap(),
            genuine.1.clone(),
        ),
    ] {
        let canonical = String::from_utf8(event.canonical_bytes()).unwrap();
        sqlx::query(
            "INSERT INTO audit_events (id, time, actor, action, target_category, target_ref, \
             outcome, change_ref, reason, canonical, leaf_index, mac) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, $8, $9, $10)",
        )
        .bind(if index == 9 {
            uuid_like(&event.id.to_string())
        } else {
            event.id.to_string()
        })
        .bind(event.time.unix_millis())
        .bind(event.actor.to_string())
        .bind(event.action.as_str())
        .bind(event.target.category().as_str())
        .bind(event.target.reference())
        .bind(event.outcome.as_str())
        .bind(canonical)
        .bind(index)
        .bind(mac)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    sqlx::query("UPDATE audit_leaf_counter SET next_leaf = 10 WHERE id = 1")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    // Leaf 5 is folded in; the sequencer stops before leaf 6, and stays stopped.
    let step = store.integrate_audit(1000).await.unwrap().unwrap();
    assert_eq!((step.old_size, step.new_size), (5, 6));
    for _ in 0..2 {
        assert!(matches!(
            store.integrate_audit(1000).await,
            Err(StoreError::AuditEventUnauthenticated { index: 6 })
        ));
    }
    assert_eq!(store.audit_tree_size().await.unwrap(), 6);
    // The key is needed to fold in anything tagged: a store without it folds in nothing.
    assert!(matches!(
        forger.integrate_audit(1000).await,
        Err(StoreError::AuditEventKeyMissing)
    ));

    let outcome = store
        .verify_audit_log(&signer.verifier(), Some(&event_key()), None, &NoProgress)
        .await
        .unwrap();
    let unauthenticated: Vec<u64> = outcome
        .findings
        .iter()
        .filter_map(|finding| match finding {
            enigm_store::Finding::EventUnauthenticated { index } => Some(*index),
            _ => None,
        })
        .collect();
    assert_eq!(unauthenticated, vec![6, 8, 9], "{:?}", outcome.findings);
    // Besides: leaf 9's id column had to differ from its copied body (ids are unique).
    assert_eq!(
        outcome.findings.len(),
        4,
        "nothing else is wrong: {:?}",
        outcome.findings
    );
    assert!(
        outcome
            .findings
            .contains(&enigm_store::Finding::ColumnsMismatch { index: 9 })
    );
    assert_eq!(outcome.summary.tags_checked, 10);
    // Without the key the verifier cannot tell; the CLI says so as a finding of its own.
    let blind = store
        .verify_audit_log(&signer.verifier(), None, None, &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        blind.findings,
        vec![enigm_store::Finding::ColumnsMismatch { index: 9 }]
    );
    assert_eq!(blind.summary.tags_checked, 0);
}

/// Another id of the same shape: event ids are unique in the table.
fn uuid_like(id: &str) -> String {
    let (head, last) = id.split_at(id.len() - 1);
    format!("{head}{}", if last == "0" { "1" } else { "0" })
}

async fn sequencer_matches_the_in_memory_log(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let store = connect(&db).await;
    assert_eq!(store.integrate_audit(10).await.unwrap(), None);
    assert_eq!(store.audit_tree_size().await.unwrap(), 0);

    // Events committed in transactions of several sizes, folded in steps of several sizes that
    // do not line up with the transactions.
    let mut all = Vec::new();
    let mut leaves = Vec::new();
    let mut n = 0;
    for (commit, fold) in [(1, 1), (5, 3), (7, 100), (2, 2), (16, 5), (6, 4)] {
        let batch = events(T0, n..n + commit);
        n += commit;
        store.append_audit(&batch).await.unwrap();
        all.extend(batch);
        assert_eq!(store.audit_leaf_count().await.unwrap(), n);
        loop {
            let old_size = store.audit_tree_size().await.unwrap();
            let Some(step) = store.integrate_audit(fold).await.unwrap() else {
                break;
            };
            assert_eq!(step.old_size, old_size);
            assert_eq!(
                step.new_size,
                (old_size + u64::from(fold)).min(n),
                "a step folds at most {fold} leaves"
            );
            leaves.extend(
                all[usize::try_from(old_size).unwrap()..usize::try_from(step.new_size).unwrap()]
                    .iter()
                    .map(leaf_of),
            );
            let expected = memory_log(&leaves);
            assert_eq!(step.root, expected.root().unwrap());
            assert_eq!(store.audit_tree_size().await.unwrap(), step.new_size);
        }
    }
    let size = n;
    assert_eq!(store.audit_tree_size().await.unwrap(), size);
    let expected = memory_log(&leaves);

    let stored = store.audit_leaves(0, 1000).await.unwrap();
    assert_eq!(stored.len(), all.len());
    for ((entry, event), leaf) in stored.iter().zip(&all).zip(&leaves) {
        assert_eq!(entry.leaf_hash, *leaf);
        assert_eq!(
            entry.body.as_deref().map(str::as_bytes),
            Some(event.canonical_bytes().as_slice())
        );
        assert!(!entry.purged);
    }

    for tree_size in 0..=size {
        assert_eq!(
            store.audit_root_at(tree_size).await.unwrap(),
            expected.root_at(tree_size).unwrap(),
            "root at {tree_size}"
        );
        for index in 0..tree_size {
            let (leaf, proof) = store.audit_inclusion_proof(index, tree_size).await.unwrap();
            assert_eq!(leaf, leaves[usize::try_from(index).unwrap()]);
            assert_eq!(
                proof,
                expected.inclusion_proof(index, tree_size).unwrap(),
                "inclusion of {index} in {tree_size}"
            );
            proof
                .verify(&leaf, &expected.root_at(tree_size).unwrap())
                .unwrap();
        }
        // RFC 9162 has no proof from the empty tree to a larger one.
        if tree_size > 0 {
            assert!(matches!(
                store.audit_consistency_proof(0, tree_size).await,
                Err(StoreError::ConsistencyFromEmptyTree)
            ));
        }
        for old_size in (1..=tree_size).chain((tree_size == 0).then_some(0)) {
            let proof = store
                .audit_consistency_proof(old_size, tree_size)
                .await
                .unwrap();
            assert_eq!(
                proof,
                expected.consistency_proof(old_size, tree_size).unwrap(),
                "consistency of {old_size} with {tree_size}"
            );
        }
    }

    // Sizes and indexes beyond the tree are refused, not answered from leaves still pending.
    store.append_audit(&events(T0, 100..103)).await.unwrap();
    for result in [
        store.audit_root_at(size + 1).await.map(|_| ()),
        store.audit_inclusion_proof(size, size).await.map(|_| ()),
        store.audit_inclusion_proof(0, size + 1).await.map(|_| ()),
        store.audit_consistency_proof(1, size + 1).await.map(|_| ()),
        store.audit_consistency_proof(3, 2).await.map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(StoreError::NotInAuditTree { .. })),
            "{result:?}"
        );
    }
    assert_eq!(store.audit_leaves(size, 10).await.unwrap(), Vec::new());
}

/// A database made before the audit log (migration 0001 only) with events in it: migration
/// 0002 gives them leaf indexes in the order they were stored, and they become the first leaves.
async fn existing_events_become_the_first_leaves(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(db.url()).await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        });
    let mut first_only = sqlx::migrate::Migrator::new(dir).await.unwrap();
    first_only.migrations = first_only
        .migrations
        .iter()
        .filter(|migration| migration.version == 1)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    first_only.run(&pool).await.unwrap();
    let old = events(T0, 0..9);
    for event in &old {
        sqlx::query(
            "INSERT INTO audit_events (id, time, actor, action, target_category, target_ref, \
             outcome, change_ref, reason, canonical) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(event.id.to_string())
        .bind(event.time.unix_millis())
        .bind(event.actor.to_string())
        .bind(event.action.as_str())
        .bind(event.target.category().as_str())
        .bind(event.target.reference())
        .bind(event.outcome.as_str())
        .bind(event.change_ref.map(|id| id.to_string()))
        .bind(event.reason.map(|reason| reason.as_str()))
        .bind(String::from_utf8(event.canonical_bytes()).unwrap())
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let store = connect(&db).await;
    assert_eq!(store.audit_leaf_count().await.unwrap(), 9);
    assert_eq!(store.audit_tree_size().await.unwrap(), 0);
    let new = events(T0, 9..12);
    store.append_audit(&new).await.unwrap();
    let signer = signer();
    let checkpoint = publish(&store, &signer, T0).await;
    assert_eq!(checkpoint.tree_size, 12);
    let leaves: Vec<Hash> = old.iter().chain(&new).map(leaf_of).collect();
    assert_eq!(checkpoint.root, memory_log(&leaves).root().unwrap());
    let outcome = store
        .verify_audit_log(&signer.verifier(), Some(&event_key()), None, &NoProgress)
        .await
        .unwrap();
    assert_eq!(outcome.findings, Vec::new());
    // The backfill lifted the append-only trigger for itself only.
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(db.url()).await.unwrap();
    for sql in [
        "UPDATE audit_events SET outcome = 'denied' WHERE leaf_index = 0",
        "DELETE FROM audit_events WHERE leaf_index = 1",
        "UPDATE audit_tree_nodes SET hash = hash",
        "DELETE FROM audit_checkpoints",
    ] {
        assert!(
            sqlx::query(sql).execute(&mut conn).await.is_err(),
            "`{sql}` must be refused"
        );
    }
}

async fn a_gap_in_leaf_indexes_stops_the_sequencer(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let store = connect(&db).await;
    store.append_audit(&events(T0, 0..6)).await.unwrap();
    assert!(store.integrate_audit(100).await.unwrap().is_some());
    store.append_audit(&events(T0, 6..9)).await.unwrap();
    // Leaf 9 is handed out and never stored (the counter row has no trigger to stop this).
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(db.url()).await.unwrap();
    run(
        &mut conn,
        "UPDATE audit_leaf_counter SET next_leaf = next_leaf + 1",
    )
    .await;
    store.append_audit(&events(T0, 10..13)).await.unwrap();
    let before = tree_state(&store, &db).await;
    assert_eq!(before.0, 6);
    let error = store.integrate_audit(100).await.unwrap_err();
    assert!(
        matches!(error, StoreError::AuditLeafMissing { index: 9 }),
        "{error:?}"
    );
    assert_eq!(tree_state(&store, &db).await, before, "nothing changed");
    // Steps that stop short of the hole fold the leaves before it; none folds past it.
    assert_eq!(store.integrate_audit(1).await.unwrap().unwrap().new_size, 7);
    assert_eq!(store.integrate_audit(2).await.unwrap().unwrap().new_size, 9);
    for max_leaves in [1, 3, 100] {
        let error = store.integrate_audit(max_leaves).await.unwrap_err();
        assert!(
            matches!(error, StoreError::AuditLeafMissing { index: 9 }),
            "{error:?}"
        );
    }
    assert_eq!(store.audit_tree_size().await.unwrap(), 9);
}

async fn a_deleted_next_leaf_stops_the_sequencer(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let store = connect(&db).await;
    store.append_audit(&events(T0, 0..4)).await.unwrap();
    assert!(store.integrate_audit(100).await.unwrap().is_some());
    store.append_audit(&events(T0, 4..8)).await.unwrap();
    let before = tree_state(&store, &db).await;
    let mut conn = attacker(&db).await;
    run(&mut conn, "DELETE FROM audit_events WHERE leaf_index = 4").await;
    for max_leaves in [1, 4, 100] {
        let error = store.integrate_audit(max_leaves).await.unwrap_err();
        assert!(
            matches!(error, StoreError::AuditLeafMissing { index: 4 }),
            "{error:?}"
        );
    }
    assert_eq!(tree_state(&store, &db).await, before, "nothing changed");
}

async fn open_existing_refuses_an_unmigrated_database(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    assert!(matches!(
        Store::open_existing(db.url()).await,
        Err(StoreError::SchemaMismatch)
    ));
    drop(connect(&db).await);
    assert!(Store::open_existing(db.url()).await.is_ok());
}
