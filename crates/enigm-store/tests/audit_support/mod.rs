//! What the audit-log storage tests share: varied events, a signer, publishing a checkpoint, an
//! attacker's connection that lifts the append-only triggers, and the tampering fixture.

#![allow(dead_code, reason = "each test file uses a part of the support")]

use std::time::Duration;

use enigm_auditlog::{
    AuditEventKey, Checkpoint, Hash, Log, MemoryStore, NoteSigner, leaf_hash, open_checkpoint,
    sign_checkpoint,
};
use enigm_crypto::Ed25519SigningKey;
use enigm_store::{Finding, NoProgress, PurgeRecord, Store, StoredCheckpoint};
use enigm_test_support::{Backend, TestDatabase};
use enigm_types::{
    Actor, AdminId, AuditAction, AuditEvent, AuditTarget, Outcome, ReasonCategory, Timestamp,
};
use sqlx::{AnyConnection, Connection as _, Row as _};

/// 2026-11-22T00:00:00Z.
pub(crate) const T0: Timestamp = Timestamp::from_unix_millis(1_795_305_600_000);
pub(crate) const DAY: Duration = Duration::from_secs(24 * 3600);

/// A varied event: actors, actions, outcomes and reasons differ with `n`.
pub(crate) fn event(time: Timestamp, n: u64) -> AuditEvent {
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

pub(crate) fn events(time: Timestamp, numbers: std::ops::Range<u64>) -> Vec<AuditEvent> {
    numbers.map(|n| event(time, n)).collect()
}

/// The audit event key of the test deployment: the store tags events with it and the
/// sequencer and verifier check them against it.
pub(crate) fn event_key() -> AuditEventKey {
    AuditEventKey::from_bytes(&[9; 32]).unwrap()
}

pub(crate) async fn connect(db: &TestDatabase) -> Store {
    let store = Store::connect(db.url()).await.expect("store");
    store
        .set_audit_event_key(std::sync::Arc::new(event_key()))
        .unwrap();
    store
}

pub(crate) fn signer() -> NoteSigner {
    NoteSigner::new(
        "enigm-command/audit/store-test",
        Ed25519SigningKey::from_seed(&[7; 32]),
    )
    .unwrap()
}

/// Folds everything committed into the tree and publishes a signed checkpoint of it.
pub(crate) async fn publish(store: &Store, signer: &NoteSigner, at: Timestamp) -> StoredCheckpoint {
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

pub(crate) fn memory_log(leaves: &[Hash]) -> Log<MemoryStore> {
    let mut log = Log::new(MemoryStore::new());
    log.append_leaves(leaves).unwrap();
    log
}

pub(crate) fn leaf_of(event: &AuditEvent) -> Hash {
    leaf_hash(&event.canonical_bytes())
}

/// Opens a second connection to the database, as an attacker with database access would, and
/// lifts the triggers that keep the audit tables append-only: they stop mistakes, not attacks.
pub(crate) async fn attacker(db: &TestDatabase) -> AnyConnection {
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

pub(crate) async fn run(conn: &mut AnyConnection, sql: &str) {
    sqlx::query(sql).execute(&mut *conn).await.unwrap();
}

/// A log of 28 leaves with checkpoints at 5, 21 and 28 and one retention purge:
/// - leaves 0..5 are old events whose bodies were purged,
/// - leaves 5..21 are recent events,
/// - leaf 21 is the `audit.purge` event of the purge of 0..5,
/// - leaves 22..28 are recent events.
pub(crate) struct Fixture {
    pub(crate) db: TestDatabase,
    pub(crate) store: Store,
    pub(crate) signer: NoteSigner,
    pub(crate) checkpoints: Vec<StoredCheckpoint>,
}

pub(crate) const LEAVES: u64 = 28;
pub(crate) const PURGED: u64 = 5;
pub(crate) const PURGE_EVENT: u64 = 21;

pub(crate) async fn fixture(backend: Backend) -> Fixture {
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

pub(crate) fn purge_event(record: &PurgeRecord, now: Timestamp) -> AuditEvent {
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
    pub(crate) async fn findings(&self) -> Vec<Finding> {
        self.findings_trusting(None).await
    }

    pub(crate) async fn findings_trusting(&self, trusted: Option<&Checkpoint>) -> Vec<Finding> {
        self.store
            .verify_audit_log(
                &self.signer.verifier(),
                Some(&event_key()),
                trusted,
                &NoProgress,
            )
            .await
            .unwrap()
            .findings
    }

    pub(crate) fn opened(&self, index: usize) -> Checkpoint {
        open_checkpoint(&self.checkpoints[index].note, &self.signer.verifier())
            .unwrap()
            .into_checkpoint()
    }

    pub(crate) async fn body(&self, index: u64) -> String {
        self.store.audit_leaves(index, 1).await.unwrap()[0]
            .body
            .clone()
            .unwrap()
    }
}

/// The first finding names `index`: the leaf itself, or a tree node over it.
pub(crate) fn names_leaf(finding: &Finding, index: u64) -> bool {
    match *finding {
        Finding::NodeMismatch { level, index: node }
        | Finding::NodeMissing { level, index: node } => index >> level == node,
        _ => finding.first_leaf() == index,
    }
}

/// What the sequencer's state is: size, root and the number of stored nodes.
pub(crate) async fn tree_state(store: &Store, db: &TestDatabase) -> (u64, Hash, i64) {
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
