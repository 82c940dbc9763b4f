//! Batched check-ins against SQLite and PostgreSQL: one transaction answers each check-in of a
//! batch in order — replays (against the database and within the batch), devices that are not
//! active, the same device twice — and keeps the history bounded.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

use enigm_store::{
    CheckInStored, CheckInWrite, NewDevice, NewEnrollmentToken, POSTURE_HISTORY_LEN, PostureRecord,
    Store,
};
use enigm_test_support::{Backend, TestDatabase, backend_tests};
use enigm_types::{AdminId, DeviceHandle, EnrollmentTokenId, Timestamp, Username};

/// 2026-11-22T00:00:00Z.
const T0: Timestamp = Timestamp::from_unix_millis(1_795_305_600_000);
const ACTIVE: [&str; 2] = ["trusted", "restricted"];

backend_tests!(
    a_batch_answers_each_check_in_in_order,
    history_stays_bounded,
    expired_nonces_are_forgotten,
);

fn posture(trust_state: &str, at: Timestamp) -> PostureRecord {
    PostureRecord {
        trust_state: trust_state.to_owned(),
        evaluated_at: at,
        findings: "[]".to_owned(),
        gates: "[]".to_owned(),
    }
}

fn handle(n: u8) -> DeviceHandle {
    let mut text = String::from("dev_");
    text.push_str(&"a".repeat(31));
    text.push(char::from(b'a' + n));
    text.parse().expect("handle")
}

fn write(device: DeviceHandle, nonce: &str, trust_state: &str, at: Timestamp) -> CheckInWrite {
    CheckInWrite {
        handle: device,
        nonce: nonce.to_owned(),
        nonce_expires_at: at.saturating_add(std::time::Duration::from_secs(300)),
        posture: posture(trust_state, at),
        received_at: at,
    }
}

/// A store with devices 0..count enrolled as PROTECTED, device 0 in `state`.
async fn fleet(db: &TestDatabase, count: u8, first_state: &str) -> Store {
    let store = Store::connect(db.url()).await.expect("store");
    let admin = AdminId::random();
    let token = EnrollmentTokenId::random();
    let mut tx = store.begin().await.unwrap();
    tx.insert_admin(&enigm_store::NewAdmin {
        id: admin,
        username: Username::parse("owner").unwrap(),
        password_hash: "x".to_owned(),
        pin_hash: None,
        created_at: T0,
    })
    .await
    .unwrap();
    tx.insert_enrollment_token(&NewEnrollmentToken {
        id: token,
        token_digest_hex: "00".repeat(32),
        group: "fleet".to_owned(),
        policy: "{}".to_owned(),
        attestation_policy: "{}".to_owned(),
        uses: u32::from(count),
        expires_at: T0,
        managed_allowed: false,
        created_by: admin,
        created_at: T0,
    })
    .await
    .unwrap();
    for n in 0..count {
        tx.insert_device(&NewDevice {
            handle: handle(n),
            state: if n == 0 { first_state } else { "trusted" }.to_owned(),
            group: "fleet".to_owned(),
            policy: "{}".to_owned(),
            attestation_policy: "{}".to_owned(),
            managed_opt_in: false,
            wipe_opt_in: false,
            enrolled_at: T0,
            enrollment_token: token,
            posture: posture("PROTECTED", T0),
        })
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    store
}

async fn a_batch_answers_each_check_in_in_order(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let store = fleet(&db, 3, "revoked").await;
    let at = T0.saturating_add(std::time::Duration::from_secs(60));

    // A nonce already stored by an earlier batch.
    let mut tx = store.begin().await.unwrap();
    let earlier = tx
        .record_check_ins(&[write(handle(1), "n-old", "PROTECTED", at)], &ACTIVE)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(matches!(earlier[0], CheckInStored::Recorded { .. }));

    let unknown = handle(9);
    let batch = [
        write(handle(0), "n0", "PROTECTED", at), // revoked device
        write(handle(1), "n1", "REVIEW_REQUIRED", at), // changes
        write(handle(1), "n2", "INACTIVE", at),  // sees the change before it
        write(handle(1), "n1", "PROTECTED", at), // replay within the batch
        write(handle(1), "n-old", "PROTECTED", at), // replay of an earlier batch
        write(unknown, "n3", "PROTECTED", at),   // unknown device
        write(handle(2), "n1", "PROTECTED", at), // same nonce, other device: fine
    ];
    let mut tx = store.begin().await.unwrap();
    let outcomes = tx.record_check_ins(&batch, &ACTIVE).await.unwrap();
    tx.commit().await.unwrap();
    let recorded = |previous: &str| CheckInStored::Recorded {
        previous_trust_state: previous.to_owned(),
    };
    assert_eq!(
        outcomes,
        [
            CheckInStored::NotActive {
                state: Some("revoked".to_owned())
            },
            recorded("PROTECTED"),
            recorded("REVIEW_REQUIRED"),
            CheckInStored::Replayed,
            CheckInStored::Replayed,
            CheckInStored::NotActive { state: None },
            recorded("PROTECTED"),
        ]
    );

    // The device row takes its latest check-in; the history has every change (the earlier
    // batch's PROTECTED repeated the enrollment's evaluation: no row).
    let device = store.device(&handle(1)).await.unwrap().unwrap();
    assert_eq!(device.posture.trust_state, "INACTIVE");
    assert_eq!(device.last_seen_at, at);
    let history = store.posture_history(&handle(1)).await.unwrap();
    let states: Vec<&str> = history.iter().map(|h| h.0.as_str()).collect();
    assert_eq!(
        states,
        ["PROTECTED", "REVIEW_REQUIRED", "INACTIVE"],
        "enrollment and the two changes of this batch"
    );
    // The revoked device is untouched.
    let revoked = store.device(&handle(0)).await.unwrap().unwrap();
    assert_eq!(revoked.posture.trust_state, "PROTECTED");
    assert_eq!(revoked.last_seen_at, T0);
}

async fn history_stays_bounded(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let store = fleet(&db, 2, "trusted").await;
    let total = usize::try_from(POSTURE_HISTORY_LEN).unwrap() + 25;
    // Many check-ins in one batch and across batches.
    for round in 0..3 {
        let batch: Vec<CheckInWrite> = (0..total)
            .map(|n| {
                let state = if n % 2 == 0 {
                    "PROTECTED"
                } else {
                    "REVIEW_REQUIRED"
                };
                write(handle(0), &format!("r{round}-{n}"), state, T0)
            })
            .collect();
        let mut tx = store.begin().await.unwrap();
        let outcomes = tx.record_check_ins(&batch, &ACTIVE).await.unwrap();
        tx.commit().await.unwrap();
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, CheckInStored::Recorded { .. }))
        );
    }
    let history = store.posture_history(&handle(0)).await.unwrap();
    assert_eq!(history.len(), usize::try_from(POSTURE_HISTORY_LEN).unwrap());
    assert!(store.posture_history(&handle(1)).await.unwrap().len() == 1);

    // Unchanged evaluations add nothing; the device row still records when it was seen.
    let seen = T0.saturating_add(std::time::Duration::from_secs(90));
    let mut tx = store.begin().await.unwrap();
    tx.record_check_ins(&[write(handle(1), "same", "PROTECTED", seen)], &ACTIVE)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.posture_history(&handle(1)).await.unwrap().len(), 1);
    let device = store.device(&handle(1)).await.unwrap().unwrap();
    assert_eq!(device.last_seen_at, seen);
}

async fn expired_nonces_are_forgotten(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let store = fleet(&db, 2, "trusted").await;
    let mut tx = store.begin().await.unwrap();
    tx.record_check_ins(&[write(handle(1), "n", "PROTECTED", T0)], &ACTIVE)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let later = T0.saturating_add(std::time::Duration::from_secs(301));
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.forget_expired_nonces(T0).await.unwrap(), 0);
    assert_eq!(tx.forget_expired_nonces(later).await.unwrap(), 1);
    tx.commit().await.unwrap();
}
