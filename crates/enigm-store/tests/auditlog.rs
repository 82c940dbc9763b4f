//! The audit log's storage against SQLite and PostgreSQL: the sequencer builds exactly the tree
//! `enigm-auditlog` builds in memory, proofs come out the same, a gap in the leaves stops the
//! sequencer, and the offline verifier names every kind of tampering an attacker who owns the
//! database can do (one test per attack, each on a fresh database).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

use std::time::Duration;

use enigm_auditlog::{
    Checkpoint, Hash, Log, MemoryStore, NoteSigner, leaf_hash, open_checkpoint, sign_checkpoint,
};
use enigm_crypto::Ed25519SigningKey;
use enigm_store::{Finding, NoProgress, PurgeRecord, Store, StoreError, StoredCheckpoint};
use enigm_test_support::{Backend, TestDatabase, backend_tests};
use enigm_types::{
    Actor, AdminId, AuditAction, AuditEvent, AuditTarget, Outcome, ReasonCategory, Timestamp,
};
use sqlx::{AnyConnection, Connection as _, Row as _};

/// 2026-11-22T00:00:00Z.
const T0: Timestamp = Timestamp::from_unix_millis(1_795_305_600_000);
const DAY: Duration = Duration::from_secs(24 * 3600);

backend_tests!(
    sequencer_matches_the_in_memory_log,
    existing_events_become_the_first_leaves,
    a_gap_in_leaf_indexes_stops_the_sequencer,
    a_deleted_next_leaf_stops_the_sequencer,
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
    open_existing_refuses_an_unmigrated_database,
);

/// A varied event: actors, actions, outcomes and reasons differ with `n`.
fn event(time: Timestamp, n: u64) -> AuditEvent {
    let actor = match n % 3 {
        0 => Actor::Admin(AdminId::random()),
        1 => Actor::Anonymous,
        _ => Actor::System,
    };
    let event = AuditEvent::new(
        time,
        actor,
        if n.is_multiple_of(2) {
            AuditAction::AuditRead
        } else {
            AuditAction::AuthLogin
        },
        AuditTarget::AuditLeaves {
            first: n,
            end: n + 1,
        },
        Outcome::Success,
    );
    if n % 4 == 1 {
        AuditEvent {
            outcome: Outcome::Denied,
            ..event.with_reason(ReasonCategory::InvalidCredentials)
        }
    } else {
        event
    }
}

fn events(time: Timestamp, numbers: std::ops::Range<u64>) -> Vec<AuditEvent> {
    numbers.map(|n| event(time, n)).collect()
}

async fn connect(db: &TestDatabase) -> Store {
    Store::connect(db.url()).await.expect("store")
}

fn signer() -> NoteSigner {
    NoteSigner::new(
        "enigm-command/audit/store-test",
        Ed25519SigningKey::from_seed(&[7; 32]),
    )
    .unwrap()
}

/// Folds everything committed into the tree and publishes a signed checkpoint of it.
async fn publish(store: &Store, signer: &NoteSigner, at: Timestamp) -> StoredCheckpoint {
    while store.integrate_audit(1000).await.unwrap().is_some() {}
    let size = store.audit_tree_size().await.unwrap();
    let root = store.audit_root_at(size).await.unwrap();
    let checkpoint = Checkpoint::new(signer.name(), size, root, Vec::new()).unwrap();
    let stored = StoredCheckpoint {
        tree_size: size,
        root,
        note: sign_checkpoint(&checkpoint, signer).unwrap(),
        published_at: at,
    };
    store.insert_audit_checkpoint(&stored).await.unwrap();
    stored
}

fn memory_log(leaves: &[Hash]) -> Log<MemoryStore> {
    let mut log = Log::new(MemoryStore::new());
    log.append_leaves(leaves).unwrap();
    log
}

fn leaf_of(event: &AuditEvent) -> Hash {
    leaf_hash(&event.canonical_bytes())
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
        for old_size in 0..=tree_size {
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
        .verify_audit_log(&signer.verifier(), None, &NoProgress)
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

/// Opens a second connection to the database, as an attacker with database access would, and
/// lifts the triggers that keep the audit tables append-only: they stop mistakes, not attacks.
async fn attacker(db: &TestDatabase) -> AnyConnection {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(db.url()).await.unwrap();
    let tables = [
        "audit_events",
        "audit_tree_nodes",
        "audit_checkpoints",
        "audit_purges",
        "audit_tree_state",
        "audit_leaf_counter",
    ];
    match db.backend() {
        Backend::Sqlite => {
            let triggers = sqlx::query("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                .fetch_all(&mut conn)
                .await
                .unwrap();
            for row in triggers {
                let name: String = row.get("name");
                sqlx::query(&format!("DROP TRIGGER \"{name}\""))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
        Backend::Postgres => {
            for table in tables {
                sqlx::query(&format!("ALTER TABLE {table} DISABLE TRIGGER USER"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
    }
    conn
}

async fn run(conn: &mut AnyConnection, sql: &str) {
    sqlx::query(sql).execute(&mut *conn).await.unwrap();
}

/// A log of 28 leaves with checkpoints at 5, 21 and 28 and one retention purge:
/// - leaves 0..5 are old events whose bodies were purged,
/// - leaves 5..21 are recent events,
/// - leaf 21 is the `audit.purge` event of the purge of 0..5,
/// - leaves 22..28 are recent events.
struct Fixture {
    db: TestDatabase,
    store: Store,
    signer: NoteSigner,
    checkpoints: Vec<StoredCheckpoint>,
}

const LEAVES: u64 = 28;
const PURGED: u64 = 5;
const PURGE_EVENT: u64 = 21;

async fn fixture(backend: Backend) -> Fixture {
    let db = TestDatabase::new(backend).await.unwrap();
    let store = connect(&db).await;
    let signer = signer();
    let recent = T0.saturating_add(DAY * 40);
    let mut checkpoints = Vec::new();
    store.append_audit(&events(T0, 0..3)).await.unwrap();
    store.append_audit(&events(T0, 3..5)).await.unwrap();
    checkpoints.push(publish(&store, &signer, T0).await);
    for chunk in [5..9, 9..16, 16..21] {
        store.append_audit(&events(recent, chunk)).await.unwrap();
    }
    checkpoints.push(publish(&store, &signer, recent).await);
    let cutoff = T0.saturating_add(DAY);
    let purge = store
        .purge_expired_audit(cutoff, recent, |record| purge_event(record, recent))
        .await
        .unwrap();
    assert_eq!(
        purge,
        Some(PurgeRecord {
            first: 0,
            end: PURGED,
            cutoff,
            purged_at: recent,
        })
    );
    store.append_audit(&events(recent, 22..28)).await.unwrap();
    checkpoints.push(publish(&store, &signer, recent).await);
    assert_eq!(store.audit_tree_size().await.unwrap(), LEAVES);
    let kept = store.audit_leaves(PURGE_EVENT, 1).await.unwrap();
    let body: AuditEvent = serde_json::from_str(kept[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(body.action, AuditAction::AuditPurge);
    Fixture {
        db,
        store,
        signer,
        checkpoints,
    }
}

fn purge_event(record: &PurgeRecord, now: Timestamp) -> AuditEvent {
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
}

impl Fixture {
    async fn findings(&self) -> Vec<Finding> {
        self.findings_trusting(None).await
    }

    async fn findings_trusting(&self, trusted: Option<&Checkpoint>) -> Vec<Finding> {
        self.store
            .verify_audit_log(&self.signer.verifier(), trusted, &NoProgress)
            .await
            .unwrap()
            .findings
    }

    fn opened(&self, index: usize) -> Checkpoint {
        open_checkpoint(&self.checkpoints[index].note, &self.signer.verifier())
            .unwrap()
            .into_checkpoint()
    }

    async fn body(&self, index: u64) -> String {
        self.store.audit_leaves(index, 1).await.unwrap()[0]
            .body
            .clone()
            .unwrap()
    }
}

/// The first finding names `index`: the leaf itself, or a tree node over it.
fn names_leaf(finding: &Finding, index: u64) -> bool {
    match *finding {
        Finding::NodeMismatch { level, index: node }
        | Finding::NodeMissing { level, index: node } => index >> level == node,
        _ => finding.first_leaf() == index,
    }
}

async fn an_untampered_log_verifies(backend: Backend) {
    let fixture = fixture(backend).await;
    let outcome = fixture
        .store
        .verify_audit_log(
            &fixture.signer.verifier(),
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

/// What the sequencer's state is: size, root and the number of stored nodes.
async fn tree_state(store: &Store, db: &TestDatabase) -> (u64, Hash, i64) {
    let size = store.audit_tree_size().await.unwrap();
    let root = store.audit_root_at(size).await.unwrap();
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(db.url()).await.unwrap();
    let nodes: i64 = sqlx::query("SELECT COUNT(*) AS n FROM audit_tree_nodes")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get("n");
    (size, root, nodes)
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
            .verify_audit_log(&signer.verifier(), None, &NoProgress)
            .await
            .unwrap();
        assert_eq!(outcome.findings, Vec::new(), "run {runs}");
        runs += 1;
    }
    writer.await.unwrap();
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
