//! The offline verifier of the audit log against SQLite and PostgreSQL names every kind of
//! tampering an attacker who owns the database can do (one test per attack, each on a fresh
//! database), and finds nothing beside a live writer.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod audit_support;

use enigm_auditlog::{Hash, leaf_hash};
use enigm_store::{Finding, NoProgress, Store, StoreError};
use enigm_test_support::{Backend, TestDatabase, backend_tests};
use enigm_types::{Actor, AuditEvent};
use sqlx::{AnyConnection, Connection as _};

use audit_support::*;

backend_tests!(
    an_untampered_log_verifies,
    changed_body_byte_is_found,
    changed_leaf_hash_is_found,
    changed_interior_node_is_found,
    rewritten_node_path_is_found,
    deleted_interior_node_is_found,
    deleted_leaf_hash_is_found,
    deleted_event_is_found,
    deleted_tail_events_are_found,
    forged_purge_is_found,
    changed_checkpoint_note_is_found,
    changed_searchable_column_is_found,
    swapped_bodies_are_found,
    truncated_tail_is_found_against_a_trusted_checkpoint,
    verification_beside_a_live_writer_finds_nothing,
);

async fn an_untampered_log_verifies(backend: Backend) {
    let fixture = fixture(backend).await;
    let outcome = fixture
        .store
        .verify_audit_log(
            &fixture.signer.verifier(),
            Some(&event_key()),
            Some(&fixture.opened(1)),
            &NoProgress,
        )
        .await
        .unwrap();
    assert_eq!(outcome.findings, Vec::new());
    let summary = outcome.summary;
    assert_eq!(summary.tree_size, LEAVES);
    assert_eq!(summary.leaf_count, LEAVES);
    assert_eq!(summary.bodies_purged, PURGED);
    assert_eq!(summary.bodies_checked, LEAVES - PURGED);
    assert_eq!(summary.checkpoints_checked, 3);
    assert_eq!(summary.latest_checkpoint, Some(fixture.opened(2)));
    // Leaves waiting for the sequencer are not tampering either.
    fixture
        .store
        .append_audit(&events(T0, 50..53))
        .await
        .unwrap();
    assert_eq!(fixture.findings().await, Vec::new());
}

async fn changed_body_byte_is_found(backend: Backend) {
    let fixture = fixture(backend).await;
    let index = 8;
    let body = fixture.body(index).await;
    // One hex digit of the event id: the body is still a well-formed event.
    let at = body.find("\"id\":\"").unwrap() + 6;
    let mut bytes = body.into_bytes();
    bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
    let forged = String::from_utf8(bytes).unwrap();
    let mut conn = attacker(&fixture.db).await;
    sqlx::query("UPDATE audit_events SET canonical = $1 WHERE leaf_index = $2")
        .bind(forged)
        .bind(8_i64)
        .execute(&mut conn)
        .await
        .unwrap();
    let findings = fixture.findings().await;
    assert_eq!(findings.first(), Some(&Finding::BodyMismatch { index }));
    assert!(
        findings.iter().all(|finding| finding.first_leaf() == index),
        "{findings:?}"
    );
}

async fn changed_leaf_hash_is_found(backend: Backend) {
    for index in [5, 10, 17] {
        let fixture = fixture(backend).await;
        let mut conn = attacker(&fixture.db).await;
        sqlx::query("UPDATE audit_tree_nodes SET hash = $1 WHERE level = 0 AND idx = $2")
            .bind(leaf_hash(b"forged").as_bytes().to_vec())
            .bind(i64::try_from(index).unwrap())
            .execute(&mut conn)
            .await
            .unwrap();
        let findings = fixture.findings().await;
        assert!(
            names_leaf(&findings[0], index),
            "leaf {index}: {findings:?}"
        );
        // The forged hash is reported where the chain of hashes breaks (the leaf's parent, over
        // two leaves) and against the body, not at every node above it; the signed
        // checkpoints that cover the leaf no longer match the tree.
        let parent = Finding::NodeMismatch {
            level: 1,
            index: index / 2,
        };
        let body = Finding::BodyMismatch { index };
        // Along the log: the parent starts a leaf earlier when the leaf is a right child.
        let mut expected = if !index.is_multiple_of(2) {
            vec![parent, body]
        } else {
            vec![body, parent]
        };
        expected.extend([
            Finding::CheckpointMismatch { size: 21 },
            Finding::CheckpointMismatch { size: LEAVES },
        ]);
        assert_eq!(findings, expected, "leaf {index}");
    }
}

/// The attacker forges leaf 5's hash and rewrites every stored node above it to match: the
/// tree is consistent again, and only the body and the signed checkpoints give it away. If
/// they stop short of the top, the node where they stopped is named.
async fn rewritten_node_path_is_found(backend: Backend) {
    for rewritten_levels in [4, 2] {
        let fixture = fixture(backend).await;
        let mut leaves: Vec<Hash> = fixture
            .store
            .audit_leaves(0, 100)
            .await
            .unwrap()
            .iter()
            .map(|entry| entry.leaf_hash)
            .collect();
        leaves[5] = leaf_hash(b"forged");
        let forged = memory_log(&leaves);
        let mut conn = attacker(&fixture.db).await;
        for level in 0..=rewritten_levels {
            let index = 5_u64 >> level;
            sqlx::query("UPDATE audit_tree_nodes SET hash = $1 WHERE level = $2 AND idx = $3")
                .bind(
                    enigm_auditlog::NodeStore::node(forged.store(), level, index)
                        .unwrap()
                        .unwrap()
                        .as_bytes()
                        .to_vec(),
                )
                .bind(i64::from(level))
                .bind(i64::try_from(index).unwrap())
                .execute(&mut conn)
                .await
                .unwrap();
        }
        let mut expected = vec![Finding::BodyMismatch { index: 5 }];
        if rewritten_levels < 4 {
            expected.insert(
                0,
                Finding::NodeMismatch {
                    level: rewritten_levels + 1,
                    index: 5 >> (rewritten_levels + 1),
                },
            );
        }
        expected.extend([
            Finding::CheckpointMismatch { size: 21 },
            Finding::CheckpointMismatch { size: LEAVES },
        ]);
        assert_eq!(fixture.findings().await, expected);
    }
}

async fn changed_interior_node_is_found(backend: Backend) {
    let fixture = fixture(backend).await;
    let mut conn = attacker(&fixture.db).await;
    sqlx::query("UPDATE audit_tree_nodes SET hash = $1 WHERE level = 2 AND idx = 3")
        .bind(leaf_hash(b"forged").as_bytes().to_vec())
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        fixture.findings().await,
        vec![Finding::NodeMismatch { level: 2, index: 3 }]
    );
}

async fn deleted_interior_node_is_found(backend: Backend) {
    let fixture = fixture(backend).await;
    let mut conn = attacker(&fixture.db).await;
    run(
        &mut conn,
        "DELETE FROM audit_tree_nodes WHERE level = 1 AND idx = 6",
    )
    .await;
    assert_eq!(
        fixture.findings().await,
        vec![Finding::NodeMissing { level: 1, index: 6 }]
    );
    // Proofs that need the node fail instead of answering something unverifiable.
    assert!(matches!(
        fixture.store.audit_inclusion_proof(14, LEAVES).await,
        Err(StoreError::Corrupt(_))
    ));
}

async fn deleted_leaf_hash_is_found(backend: Backend) {
    let fixture = fixture(backend).await;
    let mut conn = attacker(&fixture.db).await;
    run(
        &mut conn,
        "DELETE FROM audit_tree_nodes WHERE level = 0 AND idx = 11",
    )
    .await;
    // The missing hash explains why the nodes above it differ from the recomputed tree: only
    // the leaf is reported, and its body no longer has a hash to match.
    assert_eq!(
        fixture.findings().await,
        vec![
            Finding::LeafHashMissing { index: 11 },
            Finding::BodyMismatch { index: 11 },
            Finding::CheckpointMismatch { size: 21 },
            Finding::CheckpointMismatch { size: LEAVES },
        ]
    );
}

async fn deleted_event_is_found(backend: Backend) {
    let fixture = fixture(backend).await;
    let mut conn = attacker(&fixture.db).await;
    run(&mut conn, "DELETE FROM audit_events WHERE leaf_index = 12").await;
    assert_eq!(
        fixture.findings().await,
        vec![Finding::BodyMissing { index: 12 }]
    );
}

/// The attacker deletes the last events and winds the leaf counter back, so that nothing seems
/// to have been handed out past them: the tree still has their leaves.
async fn deleted_tail_events_are_found(backend: Backend) {
    let fixture = fixture(backend).await;
    let mut conn = attacker(&fixture.db).await;
    for sql in [
        "DELETE FROM audit_events WHERE leaf_index >= 26",
        "UPDATE audit_leaf_counter SET next_leaf = 26",
    ] {
        run(&mut conn, sql).await;
    }
    assert_eq!(
        fixture.findings().await,
        vec![
            Finding::BodyMissing { index: 26 },
            Finding::BodyMissing { index: 27 },
        ]
    );
}

async fn forged_purge_is_found(backend: Backend) {
    let fixture = fixture(backend).await;
    // No trigger needs lifting for this: a purge row is what the delete trigger asks for.
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(fixture.db.url()).await.unwrap();
    run(
        &mut conn,
        "INSERT INTO audit_purges (first_leaf, end_leaf, cutoff, purged_at) \
         VALUES (9, 14, 0, 0)",
    )
    .await;
    run(
        &mut conn,
        "DELETE FROM audit_events WHERE leaf_index >= 9 AND leaf_index < 14",
    )
    .await;
    assert_eq!(
        fixture.findings().await,
        vec![
            Finding::PurgeOutOfOrder { first: 9, end: 14 },
            Finding::PurgeUnlogged { first: 9, end: 14 },
        ]
    );
}

async fn changed_checkpoint_note_is_found(backend: Backend) {
    let fixture = fixture(backend).await;
    let original = &fixture.checkpoints[1];
    // The note's root line is rewritten; the signature no longer covers the text.
    let forged_root = leaf_hash(b"forged").to_base64();
    let note = original
        .note
        .replace(&original.root.to_base64(), &forged_root);
    assert_ne!(note, original.note);
    let mut conn = attacker(&fixture.db).await;
    sqlx::query("UPDATE audit_checkpoints SET note = $1 WHERE tree_size = $2")
        .bind(note)
        .bind(i64::try_from(original.tree_size).unwrap())
        .execute(&mut conn)
        .await
        .unwrap();
    let findings = fixture.findings().await;
    assert!(
        matches!(
            findings.as_slice(),
            [Finding::CheckpointInvalid { size, .. }] if *size == original.tree_size
        ),
        "{findings:?}"
    );
}

async fn changed_searchable_column_is_found(backend: Backend) {
    let fixture = fixture(backend).await;
    // Leaf 9 was written by an administrator; the attacker blames the system instead.
    let body: AuditEvent = serde_json::from_str(&fixture.body(9).await).unwrap();
    assert!(matches!(body.actor, Actor::Admin(_)));
    let mut conn = attacker(&fixture.db).await;
    run(
        &mut conn,
        "UPDATE audit_events SET actor = 'system' WHERE leaf_index = 9",
    )
    .await;
    assert_eq!(
        fixture.findings().await,
        vec![Finding::ColumnsMismatch { index: 9 }]
    );
}

async fn swapped_bodies_are_found(backend: Backend) {
    let fixture = fixture(backend).await;
    let (first, second) = (fixture.body(10).await, fixture.body(15).await);
    let mut conn = attacker(&fixture.db).await;
    for (body, index) in [(second, 10_i64), (first, 15)] {
        sqlx::query("UPDATE audit_events SET canonical = $1 WHERE leaf_index = $2")
            .bind(body)
            .bind(index)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let findings = fixture.findings().await;
    assert_eq!(findings.first(), Some(&Finding::BodyMismatch { index: 10 }));
    assert!(findings.contains(&Finding::BodyMismatch { index: 15 }));
}

async fn truncated_tail_is_found_against_a_trusted_checkpoint(backend: Backend) {
    let fixture = fixture(backend).await;
    let trusted = fixture.opened(2);
    assert_eq!(trusted.size(), LEAVES);
    // The attacker drops the last four leaves, every trace of them, and the checkpoint that
    // covered them: what is left is a consistent, smaller log.
    let mut conn = attacker(&fixture.db).await;
    for level in 0..8_i64 {
        // The nodes over any leaf from 24 on.
        sqlx::query("DELETE FROM audit_tree_nodes WHERE level = $1 AND idx >= $2")
            .bind(level)
            .bind(24_i64 >> level)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    for sql in [
        "DELETE FROM audit_events WHERE leaf_index >= 24",
        "DELETE FROM audit_checkpoints WHERE tree_size > 24",
        "UPDATE audit_tree_state SET tree_size = 24",
        "UPDATE audit_leaf_counter SET next_leaf = 24",
    ] {
        run(&mut conn, sql).await;
    }
    assert_eq!(
        fixture.findings().await,
        Vec::new(),
        "consistent on its own"
    );
    assert_eq!(
        fixture.findings_trusting(Some(&trusted)).await,
        vec![Finding::TrustedCheckpointNotInLog { size: LEAVES }]
    );
    // An older checkpoint the auditor trusted is still a prefix of what is left.
    assert_eq!(
        fixture.findings_trusting(Some(&fixture.opened(1))).await,
        Vec::new()
    );
}

/// The verifier reads one snapshot: a server appending, sequencing and publishing meanwhile
/// never makes the tables disagree.
async fn verification_beside_a_live_writer_finds_nothing(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let store = connect(&db).await;
    let signer = signer();
    publish(&store, &signer, T0).await;
    let writer = {
        let store = store.clone();
        let signer = signer.clone();
        tokio::spawn(async move {
            for round in 0..40_u64 {
                store
                    .append_audit(&events(T0, round * 25..round * 25 + 25))
                    .await
                    .unwrap();
                if round % 3 == 0 {
                    publish(&store, &signer, T0).await;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let reader = Store::open_existing(db.url()).await.unwrap();
    let mut runs = 0;
    while !writer.is_finished() || runs < 3 {
        let outcome = reader
            .verify_audit_log(&signer.verifier(), Some(&event_key()), None, &NoProgress)
            .await
            .unwrap();
        assert_eq!(outcome.findings, Vec::new(), "run {runs}");
        runs += 1;
    }
    writer.await.unwrap();
}
