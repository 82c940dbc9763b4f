//! Retention of the audit log through the real router, against SQLite and PostgreSQL: purges
//! remove bodies past retention but never the evidence (leaves, proofs, signed checkpoints, the
//! purge records), and the legal hold stops them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use enigm_api::proofs::BodyCheck;
use enigm_api::{AuditInclusionView, AuditLeafView, AuditRetentionView, paths};
use enigm_store::{NoProgress, PurgeRecord};
use enigm_test_support::{Backend, backend_tests};
use enigm_types::{Actor, AuditAction, AuditEvent, AuditTarget, Clock as _, Outcome, Timestamp};
use serde_json::json;
use support::audit::{
    DAY, all_leaves, body_of, create_user, fetch, leaf_path, open, sync, verifier,
};
use support::{OWNER_PASSWORD, OWNER_PIN, TestApp};

backend_tests!(retention_purges_bodies_but_keeps_the_evidence);

async fn set_legal_hold(app: &TestApp, enabled: bool) -> AuditRetentionView {
    let response = app
        .call(
            Method::PUT,
            paths::AUDIT_LEGAL_HOLD,
            Some(&app.owner),
            Some(OWNER_PIN),
            Some(json!({ "legal_hold": enabled })),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    serde_json::from_value(response.body).unwrap()
}

/// Steps the clock and logs the owner in again (sessions last hours, not days).
async fn advance(app: &mut TestApp, by: Duration) {
    app.clock.advance(by);
    app.owner.token = app.login("owner", OWNER_PASSWORD).await;
}

fn purge_events(leaves: &[AuditLeafView]) -> Vec<(u64, AuditEvent)> {
    leaves
        .iter()
        .filter(|leaf| leaf.body.is_some())
        .map(|leaf| (leaf.index, body_of(leaf)))
        .filter(|(_, event)| event.action == AuditAction::AuditPurge)
        .collect()
}

async fn retention_purges_bodies_but_keeps_the_evidence(backend: Backend) {
    let mut app = TestApp::new(backend).await;
    let start = app.clock.now();
    let _bob = create_user(&app, "bob").await;
    app.try_login("bob", "not-the-password").await;
    let old = sync(&app).await;
    let old_checkpoint = open(&app, &old.note);
    let old_end = old.tree_size;
    assert_eq!(app.store.audit_leaf_count().await.unwrap(), old_end);
    let mut old_proofs = Vec::new();
    for index in 0..old_end {
        old_proofs.push(
            app.store
                .audit_inclusion_proof(index, old_end)
                .await
                .unwrap(),
        );
    }

    // Nothing is old enough yet.
    assert_eq!(app.state.audit_log.purge_expired().await.unwrap(), None);

    advance(&mut app, DAY * 31).await;
    app.get(paths::WHOAMI, &app.owner).await;
    let now = app.clock.now();
    let record = app.state.audit_log.purge_expired().await.unwrap();
    assert_eq!(
        record,
        Some(PurgeRecord {
            first: 0,
            end: old_end,
            cutoff: now.saturating_sub(DAY * 30),
            purged_at: now,
        })
    );
    assert_eq!(
        app.state.audit_log.purge_expired().await.unwrap(),
        None,
        "a purge with nothing new to purge records nothing"
    );
    let latest = sync(&app).await;
    let leaves = all_leaves(&app).await;
    for leaf in &leaves {
        if leaf.index < old_end {
            assert_eq!(leaf.body, None, "leaf {}", leaf.index);
            assert!(leaf.purged, "leaf {}", leaf.index);
            assert_eq!(leaf.check_body(), Ok(BodyCheck::Purged));
        } else {
            assert!(!leaf.purged, "leaf {}", leaf.index);
            assert_eq!(leaf.check_body(), Ok(BodyCheck::Matches));
        }
    }
    let purges = purge_events(&leaves);
    assert_eq!(purges.len(), 1);
    let (first_purge_index, first_purge) = purges[0].clone();
    assert!(first_purge_index >= old_end);
    assert_eq!(first_purge.actor, Actor::System);
    assert_eq!(first_purge.outcome, Outcome::Success);
    assert_eq!(
        first_purge.target,
        AuditTarget::AuditLeaves {
            first: 0,
            end: old_end
        }
    );
    assert_eq!(first_purge.time, now);

    // The tree still commits to the purged leaves: old proofs verify against the old
    // checkpoint, and the server still proves them against the old and the new one.
    for (index, (leaf, proof)) in (0..).zip(&old_proofs) {
        proof.verify(leaf, old_checkpoint.root()).unwrap();
        let view: AuditInclusionView =
            fetch(&app, &leaf_path(index, Some(old_end)), &app.owner).await;
        assert_eq!(view.leaf.body, None);
        assert!(view.leaf.purged);
        let (served_leaf, served) = view.decode().unwrap();
        assert_eq!((&served_leaf, &served), (leaf, proof));
        let view: AuditInclusionView = fetch(&app, &leaf_path(index, None), &app.owner).await;
        let (served_leaf, served) = view.decode().unwrap();
        served.verify(&served_leaf, &latest.root).unwrap();
    }
    let outcome = app
        .store
        .verify_audit_log(
            &verifier(&app),
            Some(&app.event_key()),
            Some(&old_checkpoint),
            &NoProgress,
        )
        .await
        .unwrap();
    assert_eq!(outcome.findings, Vec::new());
    assert_eq!(outcome.summary.bodies_purged, old_end);

    // On legal hold nothing is purged, however old.
    let held = set_legal_hold(&app, true).await;
    assert!(held.legal_hold);
    let held_at = app.clock.now();
    assert_eq!(legal_hold_changes(&app).await, vec![held_at]);
    sync(&app).await;
    let hold_leaf = all_leaves(&app)
        .await
        .iter()
        .find(|leaf| leaf.body.is_some() && body_of(leaf).action == AuditAction::AuditLegalHold)
        .expect("the legal hold change is a leaf")
        .index;
    assert_eq!(held.retention_days, 30);
    assert_eq!(
        held.legal_hold_changed_at.as_deref(),
        Some(app.clock.now().to_rfc3339().as_str())
    );
    let second_end = app.store.audit_leaf_count().await.unwrap();
    advance(&mut app, DAY * 31).await;
    assert_eq!(app.state.audit_log.purge_expired().await.unwrap(), None);
    let leaves = all_leaves(&app).await;
    assert!(
        leaves
            .iter()
            .filter(|leaf| leaf.index >= old_end)
            .all(|leaf| leaf.body.is_some()),
        "nothing purged on legal hold"
    );
    let retention: AuditRetentionView = fetch(&app, paths::AUDIT_LEGAL_HOLD, &app.owner).await;
    assert!(retention.legal_hold);

    // Lifted, the purge catches up; the first purge's own event is kept for good.
    let lifted = set_legal_hold(&app, false).await;
    assert!(!lifted.legal_hold);
    let now = app.clock.now();
    let record = app.state.audit_log.purge_expired().await.unwrap();
    assert_eq!(
        record,
        Some(PurgeRecord {
            first: old_end,
            end: second_end,
            cutoff: now.saturating_sub(DAY * 30),
            purged_at: now,
        })
    );
    sync(&app).await;
    let leaves = all_leaves(&app).await;
    let purges = purge_events(&leaves);
    assert_eq!(purges.len(), 2);
    assert_eq!(purges[0], (first_purge_index, first_purge));
    assert_eq!(
        purges[1].1.target,
        AuditTarget::AuditLeaves {
            first: old_end,
            end: second_end
        }
    );
    for leaf in &leaves {
        let index = leaf.index;
        if index == first_purge_index || index == hold_leaf {
            assert_eq!(leaf.check_body(), Ok(BodyCheck::Matches));
            assert!(!leaf.purged, "purge and legal hold events are never purged");
        } else if index < second_end {
            assert_eq!(leaf.check_body(), Ok(BodyCheck::Purged), "leaf {index}");
        } else {
            assert_eq!(leaf.check_body(), Ok(BodyCheck::Matches), "leaf {index}");
        }
    }
    let outcome = app
        .store
        .verify_audit_log(
            &verifier(&app),
            Some(&app.event_key()),
            Some(&old_checkpoint),
            &NoProgress,
        )
        .await
        .unwrap();
    assert_eq!(outcome.findings, Vec::new());
    assert_eq!(outcome.summary.bodies_purged, second_end - 2);

    // Both legal hold changes were logged, by the owner, and both are kept past retention.
    assert_eq!(
        legal_hold_changes(&app).await,
        vec![held_at, start.saturating_add(DAY * 62)]
    );
}

/// When the legal hold changes still on record happened, oldest first.
async fn legal_hold_changes(app: &TestApp) -> Vec<Timestamp> {
    app.audit_events()
        .await
        .iter()
        .filter(|event| event.action == AuditAction::AuditLegalHold)
        .map(|event| {
            assert_eq!(event.actor, Actor::Admin(app.owner.id));
            assert_eq!(event.outcome, Outcome::Success);
            assert_eq!(event.target, AuditTarget::AuditLog);
            event.time
        })
        .collect()
}
