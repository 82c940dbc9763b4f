//! Device lifecycle tables against SQLite and PostgreSQL: at most one pending command per
//! device, an acknowledgement counts once, the pending commands of many devices in one query,
//! and a replacement links the old handle to whichever device enrolls with its token.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

use std::time::Duration;

use enigm_store::{NewCommand, NewDevice, NewEnrollmentToken, PostureRecord, Store, StoreError};
use enigm_test_support::{Backend, TestDatabase, backend_tests};
use enigm_types::{
    AdminId, DeviceCommand, DeviceHandle, DeviceState, EnrollmentTokenId, Timestamp, TrustState,
    Username,
};

/// 2026-11-22T00:00:00Z.
const T0: Timestamp = Timestamp::from_unix_millis(1_795_305_600_000);

backend_tests!(
    one_pending_command_per_device_acknowledged_once,
    a_replacement_links_the_handles_through_the_token,
    a_corrupt_command_is_a_store_error,
);

fn handle(n: u8) -> DeviceHandle {
    let mut text = String::from("dev_");
    text.push_str(&"b".repeat(31));
    text.push(char::from(b'a' + n));
    text.parse().expect("handle")
}

fn at(seconds: u64) -> Timestamp {
    T0.saturating_add(Duration::from_secs(seconds))
}

struct Fixture {
    store: Store,
    admin: AdminId,
}

async fn fixture(db: &TestDatabase) -> Fixture {
    let store = Store::connect(db.url()).await.expect("store");
    let admin = AdminId::random();
    let mut tx = store.begin().await.unwrap();
    tx.insert_admin(&enigm_store::NewAdmin {
        id: admin,
        username: Username::parse("owner").unwrap(),
        password_hash: "x".to_owned(),
        pin_hash: None,
        password_change_required: false,
        created_at: T0,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    Fixture { store, admin }
}

impl Fixture {
    async fn token(&self) -> EnrollmentTokenId {
        let id = EnrollmentTokenId::random();
        let mut tx = self.store.begin().await.unwrap();
        tx.insert_enrollment_token(&NewEnrollmentToken {
            id,
            token_digest_hex: id.to_string(),
            group: "fleet".to_owned(),
            policy: "{}".to_owned(),
            attestation_policy: "{}".to_owned(),
            uses: 1,
            expires_at: at(3600),
            managed_allowed: false,
            created_by: self.admin,
            created_at: T0,
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
        id
    }

    async fn device(&self, n: u8, token: EnrollmentTokenId) -> DeviceHandle {
        let mut tx = self.store.begin().await.unwrap();
        tx.insert_device(&NewDevice {
            handle: handle(n),
            state: DeviceState::Trusted,
            group: "fleet".to_owned(),
            policy: "{}".to_owned(),
            attestation_policy: "{}".to_owned(),
            managed_opt_in: false,
            wipe_opt_in: true,
            enrolled_at: T0,
            enrollment_token: token,
            posture: PostureRecord {
                trust_state: TrustState::Protected,
                evaluated_at: T0,
                findings: Vec::new(),
                gates: Vec::new(),
                setup_missing: Vec::new(),
            },
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
        handle(n)
    }

    fn command(&self, device: DeviceHandle, command: DeviceCommand, seconds: u64) -> NewCommand {
        NewCommand {
            handle: device,
            command,
            issued_by: self.admin,
            issued_at: at(seconds),
            approval: None,
        }
    }
}

async fn one_pending_command_per_device_acknowledged_once(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let fx = fixture(&db).await;
    let token = fx.token().await;
    let first = fx.device(0, token).await;
    let second = fx.device(1, token).await;

    let mut tx = fx.store.begin().await.unwrap();
    tx.issue_command(&fx.command(first, DeviceCommand::Retire, 1))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // A second pending command for the same device is a conflict, even at another time.
    let mut tx = fx.store.begin().await.unwrap();
    let again = tx
        .issue_command(&fx.command(first, DeviceCommand::Wipe, 2))
        .await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    drop(tx);
    let mut tx = fx.store.begin().await.unwrap();
    tx.issue_command(&fx.command(second, DeviceCommand::Wipe, 2))
        .await
        .unwrap();
    let locked = tx.lock_lifecycle(&first).await.unwrap().unwrap();
    assert_eq!(locked.state, DeviceState::Trusted);
    assert!(locked.wipe_opt_in);
    assert_eq!(locked.pending.unwrap().command, DeviceCommand::Retire);
    assert!(tx.lock_lifecycle(&handle(7)).await.unwrap().is_none());
    tx.commit().await.unwrap();

    let pending = fx
        .store
        .pending_commands(&[first, second, handle(7)])
        .await
        .unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[&first].command, DeviceCommand::Retire);
    assert_eq!(pending[&second].command, DeviceCommand::Wipe);
    assert_eq!(pending[&second].issued_at, at(2));
    assert!(fx.store.pending_commands(&[]).await.unwrap().is_empty());

    // Acknowledged once: the wrong command or a second acknowledgement changes nothing.
    let mut tx = fx.store.begin().await.unwrap();
    assert!(
        !tx.acknowledge_command(&first, DeviceCommand::Wipe, at(3))
            .await
            .unwrap()
    );
    assert!(
        tx.acknowledge_command(&first, DeviceCommand::Retire, at(3))
            .await
            .unwrap()
    );
    assert!(
        !tx.acknowledge_command(&first, DeviceCommand::Retire, at(4))
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    let record = fx.store.device_lifecycle(&first).await.unwrap();
    assert_eq!(record.pending, None);
    assert_eq!(record.acknowledged, Some((DeviceCommand::Retire, at(3))));
    let record = fx.store.device_lifecycle(&second).await.unwrap();
    assert_eq!(record.pending.unwrap().command, DeviceCommand::Wipe);
    assert_eq!(record.acknowledged, None);
}

async fn a_replacement_links_the_handles_through_the_token(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let fx = fixture(&db).await;
    let old = fx.device(0, fx.token().await).await;
    let replacement = fx.token().await;

    let mut tx = fx.store.begin().await.unwrap();
    tx.record_replacement(&old, replacement, fx.admin, at(1))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Issued, nobody enrolled yet.
    let record = fx.store.device_lifecycle(&old).await.unwrap();
    assert!(record.replacement_issued);
    assert_eq!(record.replaced_by, None);

    let successor = fx.device(1, replacement).await;
    let record = fx.store.device_lifecycle(&old).await.unwrap();
    assert_eq!(record.replaced_by, Some(successor));
    assert_eq!(record.replaces, None);
    let record = fx.store.device_lifecycle(&successor).await.unwrap();
    assert_eq!(record.replaces, Some(old));
    assert_eq!(record.replaced_by, None);
    assert!(!record.replacement_issued);

    // A device is replaced once.
    let another = fx.token().await;
    let mut tx = fx.store.begin().await.unwrap();
    let twice = tx.record_replacement(&old, another, fx.admin, at(2)).await;
    assert!(matches!(twice, Err(StoreError::Conflict)), "{twice:?}");
}

/// A command name this build does not know is a corrupt row, whichever read meets it.
async fn a_corrupt_command_is_a_store_error(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let fx = fixture(&db).await;
    let token = fx.token().await;
    let device = fx.device(0, token).await;
    let mut tx = fx.store.begin().await.unwrap();
    tx.issue_command(&fx.command(device, DeviceCommand::Wipe, 1))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let raw = sqlx::AnyPool::connect(db.url()).await.unwrap();
    sqlx::query("UPDATE device_commands SET command = 'shred' WHERE handle = $1")
        .bind(device.to_string())
        .execute(&raw)
        .await
        .unwrap();
    let corrupt = |result: Result<_, StoreError>| {
        matches!(result, Err(StoreError::Corrupt("device command")))
    };
    assert!(corrupt(
        fx.store.device_lifecycle(&device).await.map(|_| ())
    ));
    assert!(corrupt(
        fx.store.pending_commands(&[device]).await.map(|_| ())
    ));
    let mut tx = fx.store.begin().await.unwrap();
    assert!(corrupt(tx.lock_lifecycle(&device).await.map(|_| ())));
}
