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
    AttestationResultRecord, CheckInStored, CheckInWrite, NewDevice, NewEnrollmentToken,
    POSTURE_HISTORY_LEN, PostureRecord, Store,
};
use enigm_test_support::{Backend, TestDatabase, backend_tests};
use enigm_types::{
    AdminId, AttestationFormat, AttestationVerdict, DeviceHandle, DeviceState, EnrollmentTokenId,
    Finding, FindingKind, GateEvidence, GateResult, GateStatus, ProductionGate, SetupStep,
    Severity, SignalCheck, SignalKind, SignalSource, SignalValue, Timestamp, TrustState, Username,
};

/// 2026-11-22T00:00:00Z.
const T0: Timestamp = Timestamp::from_unix_millis(1_795_305_600_000);
const ACTIVE: [DeviceState; 2] = DeviceState::ACTIVE;

backend_tests!(
    a_batch_answers_each_check_in_in_order,
    history_stays_bounded,
    expired_nonces_are_forgotten,
    findings_and_gates_are_stored_typed,
    gates_stored_before_explanations_still_load,
    corrupt_rows_are_store_errors,
    attestation_outcomes_are_stored_typed,
    update_check_nonces_are_claimed_in_one_statement,
    rollout_decisions_are_written_in_one_statement,
    director_standing_reads_device_command_and_catalogue,
);

fn posture(trust_state: TrustState, at: Timestamp) -> PostureRecord {
    PostureRecord {
        trust_state,
        evaluated_at: at,
        findings: Vec::new(),
        gates: Vec::new(),
        setup_missing: Vec::new(),
    }
}

fn handle(n: u8) -> DeviceHandle {
    let mut text = String::from("dev_");
    text.push_str(&"a".repeat(31));
    text.push(char::from(b'a' + n));
    text.parse().expect("handle")
}

fn write(
    device: DeviceHandle,
    nonce: &str,
    trust_state: TrustState,
    at: Timestamp,
) -> CheckInWrite {
    CheckInWrite {
        handle: device,
        nonce: nonce.to_owned(),
        nonce_expires_at: at.saturating_add(std::time::Duration::from_secs(300)),
        posture: posture(trust_state, at),
        received_at: at,
        policy_revision: None,
    }
}

/// A store with devices 0..count enrolled as PROTECTED, device 0 in `state`.
async fn fleet(db: &TestDatabase, count: u8, first_state: DeviceState) -> Store {
    let store = Store::connect(db.url()).await.expect("store");
    let admin = AdminId::random();
    let token = EnrollmentTokenId::random();
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
            state: if n == 0 {
                first_state
            } else {
                DeviceState::Trusted
            },
            group: "fleet".to_owned(),
            policy: "{}".to_owned(),
            attestation_policy: "{}".to_owned(),
            managed_opt_in: false,
            wipe_opt_in: false,
            enrolled_at: T0,
            enrollment_token: token,
            posture: posture(TrustState::Protected, T0),
        })
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    store
}

async fn a_batch_answers_each_check_in_in_order(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let store = fleet(&db, 3, DeviceState::Revoked).await;
    let at = T0.saturating_add(std::time::Duration::from_secs(60));

    // A nonce already stored by an earlier batch.
    let mut tx = store.begin().await.unwrap();
    let earlier = tx
        .record_check_ins(
            &[write(handle(1), "n-old", TrustState::Protected, at)],
            &ACTIVE,
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(matches!(earlier[0], CheckInStored::Recorded { .. }));

    let unknown = handle(9);
    let batch = [
        write(handle(0), "n0", TrustState::Protected, at), // revoked device
        write(handle(1), "n1", TrustState::ReviewRequired, at), // changes
        write(handle(1), "n2", TrustState::Inactive, at),  // sees the change before it
        write(handle(1), "n1", TrustState::Protected, at), // replay within the batch
        write(handle(1), "n-old", TrustState::Protected, at), // replay of an earlier batch
        write(unknown, "n3", TrustState::Protected, at),   // unknown device
        write(handle(2), "n1", TrustState::Protected, at), // same nonce, other device: fine
    ];
    let mut tx = store.begin().await.unwrap();
    let outcomes = tx.record_check_ins(&batch, &ACTIVE).await.unwrap();
    tx.commit().await.unwrap();
    let recorded = |previous: TrustState| CheckInStored::Recorded {
        previous_trust_state: previous,
    };
    assert_eq!(
        outcomes,
        [
            CheckInStored::NotActive {
                state: Some(DeviceState::Revoked)
            },
            recorded(TrustState::Protected),
            recorded(TrustState::ReviewRequired),
            CheckInStored::Replayed,
            CheckInStored::Replayed,
            CheckInStored::NotActive { state: None },
            recorded(TrustState::Protected),
        ]
    );

    // The device row takes its latest check-in; the history has every change (the earlier
    // batch's PROTECTED repeated the enrollment's evaluation: no row).
    let device = store.device(&handle(1)).await.unwrap().unwrap();
    assert_eq!(device.posture.trust_state, TrustState::Inactive);
    assert_eq!(device.last_seen_at, at);
    let history = store.posture_history(&handle(1)).await.unwrap();
    let states: Vec<TrustState> = history.iter().map(|h| h.trust_state).collect();
    assert_eq!(
        states,
        [
            TrustState::Protected,
            TrustState::ReviewRequired,
            TrustState::Inactive
        ],
        "enrollment and the two changes of this batch"
    );
    // The revoked device is untouched.
    let revoked = store.device(&handle(0)).await.unwrap().unwrap();
    assert_eq!(revoked.posture.trust_state, TrustState::Protected);
    assert_eq!(revoked.last_seen_at, T0);
}

async fn history_stays_bounded(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let store = fleet(&db, 2, DeviceState::Trusted).await;
    let total = usize::try_from(POSTURE_HISTORY_LEN).unwrap() + 25;
    // Many check-ins in one batch and across batches.
    for round in 0..3 {
        let batch: Vec<CheckInWrite> = (0..total)
            .map(|n| {
                let state = if n % 2 == 0 {
                    TrustState::Protected
                } else {
                    TrustState::ReviewRequired
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
    tx.record_check_ins(
        &[write(handle(1), "same", TrustState::Protected, seen)],
        &ACTIVE,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.posture_history(&handle(1)).await.unwrap().len(), 1);
    let device = store.device(&handle(1)).await.unwrap().unwrap();
    assert_eq!(device.last_seen_at, seen);
}

async fn expired_nonces_are_forgotten(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let store = fleet(&db, 2, DeviceState::Trusted).await;
    let mut tx = store.begin().await.unwrap();
    tx.record_check_ins(&[write(handle(1), "n", TrustState::Protected, T0)], &ACTIVE)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let later = T0.saturating_add(std::time::Duration::from_secs(301));
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.forget_expired_nonces(T0).await.unwrap(), 0);
    assert_eq!(tx.forget_expired_nonces(later).await.unwrap(), 1);
    tx.commit().await.unwrap();
}

fn finding(kind: FindingKind, severity: Severity) -> Finding {
    Finding {
        kind,
        severity,
        signal: Some(SignalKind::Firewall),
        critical: true,
        source: SignalSource::Measured,
        reported_source: None,
        required_source: None,
    }
}

async fn findings_and_gates_are_stored_typed(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let store = fleet(&db, 2, DeviceState::Trusted).await;
    let mut degraded = posture(TrustState::ReviewRequired, T0);
    degraded.findings = vec![
        finding(FindingKind::ProtectionFailed, Severity::Critical),
        finding(FindingKind::PatchLevelUnknown, Severity::High),
    ];
    degraded.gates = vec![
        GateStatus {
            gate: ProductionGate::NetworkSecurity,
            result: GateResult::Fail,
            because: vec![
                GateEvidence::Signal {
                    signal: SignalKind::Firewall,
                    check: SignalCheck::NotOk,
                    value: Some(SignalValue::Failed),
                    source: Some(SignalSource::Declared),
                },
                GateEvidence::Signal {
                    signal: SignalKind::EncryptedDns,
                    check: SignalCheck::Missing,
                    value: None,
                    source: None,
                },
            ],
        },
        GateStatus {
            gate: ProductionGate::DeviceManagement,
            result: GateResult::NotApplicable,
            because: vec![GateEvidence::NotManaged],
        },
        // As postures stored before gates explained themselves.
        GateStatus::from((ProductionGate::BuildIntegrity, GateResult::Pass)),
    ];
    // The setup steps not yet reported complete are kept with the posture.
    degraded.setup_missing = vec![SetupStep::Terms, SetupStep::NetworkReadiness];
    let mut tx = store.begin().await.unwrap();
    let previous = tx
        .record_posture(&handle(0), &ACTIVE, &degraded, T0)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(previous, Some(TrustState::Protected));
    let device = store.device(&handle(0)).await.unwrap().unwrap();
    assert_eq!(device.posture, degraded);
    assert_eq!(device.state, DeviceState::Trusted);
    let history = store.posture_history(&handle(0)).await.unwrap();
    assert_eq!(history.last().unwrap().findings, degraded.findings);

    // Same findings through a batch: unchanged, so no new history row; other findings: one.
    let mut again = write(handle(0), "same-findings", TrustState::ReviewRequired, T0);
    again.posture = degraded.clone();
    let mut tx = store.begin().await.unwrap();
    tx.record_check_ins(&[again], &ACTIVE).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        store.posture_history(&handle(0)).await.unwrap().len(),
        history.len()
    );
    let mut fewer = write(handle(0), "fewer-findings", TrustState::ReviewRequired, T0);
    fewer.posture = degraded.clone();
    fewer.posture.findings.truncate(1);
    fewer.posture.setup_missing = Vec::new();
    let mut tx = store.begin().await.unwrap();
    tx.record_check_ins(&[fewer.clone()], &ACTIVE)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let history = store.posture_history(&handle(0)).await.unwrap();
    assert_eq!(history.last().unwrap().findings, fewer.posture.findings);
    assert_eq!(
        store.device(&handle(0)).await.unwrap().unwrap().posture,
        fewer.posture
    );

    // Filters are typed too.
    let filter = enigm_store::DeviceFilter {
        trust_state: Some(TrustState::ReviewRequired),
        limit: 10,
        ..enigm_store::DeviceFilter::default()
    };
    let listed: Vec<DeviceHandle> = store
        .list_devices(&filter)
        .await
        .unwrap()
        .iter()
        .map(|device| device.handle)
        .collect();
    assert_eq!(listed, [handle(0)]);
}

/// A row changed behind Command's back (or by a newer version) is an error naming what is
/// wrong, never a default state.
/// A posture written before production gates carried why (no `because`) loads, with an empty
/// explanation; an explanation this build does not know is a corrupt row.
async fn gates_stored_before_explanations_still_load(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let store = fleet(&db, 1, DeviceState::Trusted).await;
    let raw = sqlx::AnyPool::connect(db.url()).await.unwrap();
    let set_gates = |value: &'static str| {
        let raw = raw.clone();
        async move {
            sqlx::query("UPDATE devices SET gates = $1 WHERE handle = $2")
                .bind(value)
                .bind(handle(0).to_string())
                .execute(&raw)
                .await
                .unwrap();
        }
    };
    set_gates(r#"[{"gate":"build-integrity","result":"fail"},{"gate":"device-management","result":"not-applicable"}]"#).await;
    let device = store.device(&handle(0)).await.unwrap().unwrap();
    assert_eq!(
        device.posture.gates,
        [
            GateStatus::unexplained(ProductionGate::BuildIntegrity, GateResult::Fail),
            GateStatus::unexplained(ProductionGate::DeviceManagement, GateResult::NotApplicable),
        ]
    );
    set_gates(r#"[{"gate":"build-integrity","result":"fail","because":[{"evidence":"score","value":3}]}]"#).await;
    assert!(matches!(
        store.device(&handle(0)).await,
        Err(enigm_store::StoreError::Corrupt("device production gates"))
    ));
}

async fn corrupt_rows_are_store_errors(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let store = fleet(&db, 2, DeviceState::Trusted).await;
    let raw = sqlx::AnyPool::connect(db.url()).await.unwrap();
    let corrupt = |column: &'static str, value: &'static str| {
        let raw = raw.clone();
        async move {
            sqlx::query(&format!(
                "UPDATE devices SET {column} = $1 WHERE handle = $2"
            ))
            .bind(value)
            .bind(handle(0).to_string())
            .execute(&raw)
            .await
            .unwrap();
        }
    };
    let device_error = || async {
        match store.device(&handle(0)).await {
            Err(enigm_store::StoreError::Corrupt(what)) => what,
            other => panic!("expected a corrupt row, got {other:?}"),
        }
    };

    corrupt("state", "Trusted").await;
    assert_eq!(device_error().await, "device state");
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.device_state(&handle(0)).await,
        Err(enigm_store::StoreError::Corrupt("device state"))
    ));
    drop(tx);
    corrupt("state", "trusted").await;

    corrupt("trust_state", "protected").await;
    assert_eq!(device_error().await, "device trust state");
    let mut tx = store.begin().await.unwrap();
    let batch = tx
        .record_check_ins(&[write(handle(0), "n", TrustState::Protected, T0)], &ACTIVE)
        .await;
    assert!(
        matches!(
            batch,
            Err(enigm_store::StoreError::Corrupt("device trust state"))
        ),
        "{batch:?}"
    );
    drop(tx);
    corrupt("trust_state", "PROTECTED").await;

    corrupt("findings", r#"[{"kind":"score","severity":"High"}]"#).await;
    assert_eq!(device_error().await, "device findings");
    corrupt("findings", "[]").await;

    corrupt("gates", "not json").await;
    assert_eq!(device_error().await, "device production gates");
    corrupt("gates", "[]").await;

    // The other device was never affected, and the repaired one reads again.
    assert!(store.device(&handle(1)).await.unwrap().is_some());
    assert_eq!(
        store.device(&handle(0)).await.unwrap().unwrap().state,
        DeviceState::Trusted
    );
}

/// The last attestation's verdict and format come back as the types they were stored as; a name
/// this build does not know is a corrupt row, never a default (an unknown verdict must not read as
/// anything, least of all `accepted`).
async fn attestation_outcomes_are_stored_typed(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let store = fleet(&db, 1, DeviceState::Trusted).await;
    let before = store.device_attestation(&handle(0)).await.unwrap().unwrap();
    assert_eq!(before.last, None);

    for (verdict, format) in [
        (
            AttestationVerdict::StaleAttestation,
            AttestationFormat::Tpm2Quote,
        ),
        (AttestationVerdict::Accepted, AttestationFormat::AndroidKey),
    ] {
        let result = AttestationResultRecord {
            verdict,
            format,
            claims: "{}".to_owned(),
            attested_at: T0,
        };
        let mut tx = store.begin().await.unwrap();
        let pairing = verdict.is_accepted().then_some("{}");
        tx.record_attestation(&handle(0), &result, pairing)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let stored = store.device_attestation(&handle(0)).await.unwrap().unwrap();
        assert_eq!(stored.last, Some(result));
    }

    let raw = sqlx::AnyPool::connect(db.url()).await.unwrap();
    for (column, value, what) in [
        ("verdict", "ACCEPTED", "attestation verdict"),
        ("verdict", "accepted ", "attestation verdict"),
        ("format", "android-key", "attestation format"),
    ] {
        let good = if column == "verdict" {
            "accepted"
        } else {
            "android_key"
        };
        for (text, expect_corrupt) in [(value, true), (good, false)] {
            sqlx::query(&format!(
                "UPDATE device_attestations SET {column} = $1 WHERE handle = $2"
            ))
            .bind(text)
            .bind(handle(0).to_string())
            .execute(&raw)
            .await
            .unwrap();
            let read = store.device_attestation(&handle(0)).await;
            if expect_corrupt {
                assert!(
                    matches!(read, Err(enigm_store::StoreError::Corrupt(got)) if got == what),
                    "{column} = {text:?}: {read:?}"
                );
            } else {
                assert!(read.unwrap().unwrap().last.unwrap().verdict.is_accepted());
            }
        }
    }
}

/// The director's batch claims each nonce once: against the database and within the batch.
async fn update_check_nonces_are_claimed_in_one_statement(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let store = fleet(&db, 3, DeviceState::Trusted).await;
    let expires = T0.saturating_add(std::time::Duration::from_secs(300));
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.claim_device_nonce(&handle(1), "old", expires)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();

    let batch = vec![
        (handle(1), "old".to_owned(), expires),
        (handle(1), "new".to_owned(), expires),
        (handle(2), "new".to_owned(), expires),
        (handle(1), "new".to_owned(), expires),
        (handle(2), "other".to_owned(), expires),
    ];
    let mut tx = store.begin().await.unwrap();
    let claimed = tx.claim_device_nonces(&batch).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(claimed, vec![false, true, true, false, true]);

    // More than one statement's worth, one of them already claimed.
    let many: Vec<_> = (0..600)
        .map(|n| {
            (
                handle(u8::try_from(n % 3).unwrap()),
                format!("m{n}"),
                expires,
            )
        })
        .chain([(handle(2), "other".to_owned(), expires)])
        .collect();
    let mut tx = store.begin().await.unwrap();
    let claimed = tx.claim_device_nonces(&many).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(claimed.iter().filter(|claimed| **claimed).count(), 600);
    assert_eq!(claimed.last(), Some(&false));
    assert!(tx_empty_claim(&store).await.is_empty());
}

async fn tx_empty_claim(store: &Store) -> Vec<bool> {
    let mut tx = store.begin().await.unwrap();
    let claimed = tx.claim_device_nonces(&[]).await.unwrap();
    tx.commit().await.unwrap();
    claimed
}

/// Decisions replace decisions, never a device's install report; the last decision of a
/// device in one batch is the one kept, and its first wave stays.
async fn rollout_decisions_are_written_in_one_statement(backend: Backend) {
    use enigm_store::{NewRelease, RolloutDecision};
    use enigm_types::{ReleaseId, RolloutDeviceState};

    let db = TestDatabase::new(backend).await.unwrap();
    let store = fleet(&db, 3, DeviceState::Trusted).await;
    let admin = store.list_admins().await.unwrap()[0].id;
    let release = ReleaseId::random();
    let mut tx = store.begin().await.unwrap();
    tx.insert_release(&NewRelease {
        id: release,
        target_name: "image-1.bin".to_owned(),
        kind: "os-image".to_owned(),
        release_version: "1.0.0".to_owned(),
        rollback_index: 1,
        channel: "stable".to_owned(),
        models: "[]".to_owned(),
        length: 1,
        sha256: "00".repeat(32),
        expires_at: T0,
        created_by: admin,
        created_at: T0,
    })
    .await
    .unwrap();
    tx.set_rollout_device(
        release,
        &handle(2),
        Some(0),
        RolloutDeviceState::Installed,
        T0,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let decision = |n: u8, wave: Option<u32>, state| RolloutDecision {
        release,
        handle: handle(n),
        wave,
        state,
        at: T0,
    };
    let mut tx = store.begin().await.unwrap();
    tx.record_rollout_decisions(&[
        decision(0, Some(1), RolloutDeviceState::Refused),
        decision(1, Some(0), RolloutDeviceState::Offered),
        decision(2, Some(1), RolloutDeviceState::Offered),
        decision(0, Some(2), RolloutDeviceState::Offered),
    ])
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let row = |n: u8| {
        let store = store.clone();
        async move { store.rollout_device(release, &handle(n)).await.unwrap() }
    };
    assert_eq!(row(0).await, Some((Some(2), RolloutDeviceState::Offered)));
    assert_eq!(row(1).await, Some((Some(0), RolloutDeviceState::Offered)));
    assert_eq!(row(2).await, Some((Some(0), RolloutDeviceState::Installed)));

    // A later decision keeps the device's first wave.
    let mut tx = store.begin().await.unwrap();
    tx.record_rollout_decisions(&[decision(1, Some(3), RolloutDeviceState::Refused)])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(row(1).await, Some((Some(0), RolloutDeviceState::Refused)));
}

/// The director's one read: the device, whether a lifecycle command waits, the catalogue's
/// generation.
async fn director_standing_reads_device_command_and_catalogue(backend: Backend) {
    use enigm_store::NewCommand;
    use enigm_types::DeviceCommand;

    let db = TestDatabase::new(backend).await.unwrap();
    let store = fleet(&db, 2, DeviceState::Trusted).await;
    let admin = store.list_admins().await.unwrap()[0].id;
    assert!(store.director_standing(&handle(9)).await.unwrap().is_none());
    let standing = store.director_standing(&handle(1)).await.unwrap().unwrap();
    assert_eq!(
        standing.device,
        store.device(&handle(1)).await.unwrap().unwrap()
    );
    assert!(!standing.command_pending);
    assert_eq!(standing.catalog_generation, 0);

    let mut tx = store.begin().await.unwrap();
    tx.issue_command(&NewCommand {
        handle: handle(1),
        command: DeviceCommand::Retire,
        issued_by: admin,
        issued_at: T0,
        approval: None,
    })
    .await
    .unwrap();
    tx.bump_ota_catalog().await.unwrap();
    tx.commit().await.unwrap();
    let standing = store.director_standing(&handle(1)).await.unwrap().unwrap();
    assert!(standing.command_pending);
    assert_eq!(standing.catalog_generation, 1, "one bump");
    assert!(
        !store
            .director_standing(&handle(0))
            .await
            .unwrap()
            .unwrap()
            .command_pending
    );
}
