//! The operator side of the device lifecycle through the real router: every change follows the
//! transition table, guarded changes go through an approval, and each step is audited.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use axum::http::{Method, StatusCode};
use enigm_api::paths;
use enigm_test_support::{Backend, backend_tests};
use enigm_types::{AuditAction, AuditTarget, DeviceHandle, Outcome, ReasonCategory};
use serde_json::json;
use support::{DeviceCalls as _, TestApp, approve, enrolled, last_denial, lifecycle, protected};

async fn lifecycle_follows_the_table_with_approvals_and_audit(backend: Backend) {
    let app = TestApp::new(backend).await;
    let second = app
        .admin_with_roles("second", &[enigm_types::Role::SecurityAdmin])
        .await;
    let (device, handle) = enrolled(&app).await;
    let text = handle.to_string();
    let state_of = |app: &TestApp| {
        let store = app.store.clone();
        async move { store.device(&handle).await.unwrap().unwrap().state }
    };

    // Restrict: at once, audited. A restricted device still checks in.
    let restricted = lifecycle(&app, &app.owner, &text, "restrict").await;
    assert_eq!(restricted.status, StatusCode::OK, "{:?}", restricted.body);
    assert_eq!(restricted.body["state"], "restricted");
    assert_eq!(state_of(&app).await, enigm_types::DeviceState::Restricted);
    assert_eq!(
        device.check_in(&app, protected(&app)).await.status,
        StatusCode::OK
    );

    // Reactivate: an approval request; nothing changes until another administrator approves.
    let requested = lifecycle(&app, &app.owner, &text, "reactivate").await;
    assert_eq!(
        requested.status,
        StatusCode::ACCEPTED,
        "{:?}",
        requested.body
    );
    let approval = requested.body["approval"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(requested.body["approval"]["kind"], "device-lifecycle");
    assert_eq!(state_of(&app).await, enigm_types::DeviceState::Restricted);
    let own = approve(&app, &app.owner, &approval).await;
    assert_eq!(
        own.status,
        StatusCode::FORBIDDEN,
        "nobody approves their own request"
    );
    assert_eq!(own.code(), "self_approval");
    let approved = approve(&app, &second, &approval).await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    assert_eq!(state_of(&app).await, enigm_types::DeviceState::Trusted);

    // Revoke: through an approval too; the next check-in is refused.
    let requested = lifecycle(&app, &second, &text, "revoke").await;
    assert_eq!(requested.status, StatusCode::ACCEPTED);
    let approval = requested.body["approval"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        device.check_in(&app, protected(&app)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        approve(&app, &app.owner, &approval).await.status,
        StatusCode::OK
    );
    assert_eq!(state_of(&app).await, enigm_types::DeviceState::Revoked);
    let refused = device.check_in(&app, protected(&app)).await;
    assert_eq!(refused.code(), "device_revoked");

    let events = app.audit_events().await;
    let done = |action: AuditAction| {
        events
            .iter()
            .filter(|event| {
                event.action == action
                    && event.outcome == Outcome::Success
                    && event.target == AuditTarget::Device { handle }
            })
            .count()
    };
    assert_eq!(done(AuditAction::DeviceRestrict), 1);
    assert_eq!(done(AuditAction::DeviceReactivate), 1);
    assert_eq!(done(AuditAction::DeviceRevoke), 1);
    // The approved changes carry their approval request as the change reference.
    assert!(events.iter().any(|event| {
        event.action == AuditAction::DeviceRevoke
            && event
                .change_ref
                .is_some_and(|id| id.to_string() == approval)
    }));
}

async fn lifecycle_transition_table_is_the_only_way(backend: Backend) {
    let app = TestApp::new(backend).await;
    let second = app
        .admin_with_roles("second", &[enigm_types::Role::SecurityAdmin])
        .await;
    let (_device, handle) = enrolled(&app).await;
    let text = handle.to_string();

    // A trusted device cannot be reactivated; refused, audited, nothing opened.
    let refused = lifecycle(&app, &app.owner, &text, "reactivate").await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.code(), "invalid_transition");
    let denial = last_denial(&app, AuditAction::DeviceReactivate).await;
    assert_eq!(denial.reason, Some(ReasonCategory::InvalidTransition));

    // Two revocation requests; the first approved revokes, the second can no longer execute:
    // refused at approval, audited, and the request stays open.
    let first = lifecycle(&app, &app.owner, &text, "revoke").await;
    let second_request = lifecycle(&app, &app.owner, &text, "revoke").await;
    let first = first.body["approval"]["id"].as_str().unwrap().to_owned();
    let later = second_request.body["approval"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(approve(&app, &second, &first).await.status, StatusCode::OK);
    let stale = approve(&app, &second, &later).await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{:?}", stale.body);
    assert_eq!(stale.code(), "invalid_transition");
    let denial = last_denial(&app, AuditAction::ApprovalApprove).await;
    assert_eq!(denial.reason, Some(ReasonCategory::InvalidTransition));

    // Revoked is final but for retirement: no restrict, no reactivation request.
    for action in ["restrict", "reactivate", "revoke"] {
        let refused = lifecycle(&app, &app.owner, &text, action).await;
        assert_eq!(refused.status, StatusCode::CONFLICT, "{action}");
    }
    // Bad requests change nothing: unknown action, unknown field, no justification, unknown
    // device, no PIN.
    for body in [
        json!({"action": "wipe-everything", "justification": "x"}),
        json!({"action": "restrict", "justification": "lost", "serial": "R58M"}),
        json!({"action": "restrict"}),
    ] {
        let response = app
            .call(
                Method::POST,
                &paths::fill(paths::DEVICE_LIFECYCLE, &[&text]),
                Some(&app.owner),
                Some(app.owner.pin),
                Some(body.clone()),
            )
            .await;
        assert!(
            response.status.is_client_error(),
            "{body}: {:?}",
            response.status
        );
    }
    let stranger = DeviceHandle::from_digest(&[9; 20]).to_string();
    assert_eq!(
        lifecycle(&app, &app.owner, &stranger, "restrict")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let no_pin = app
        .call(
            Method::POST,
            &paths::fill(paths::DEVICE_LIFECYCLE, &[&text]),
            Some(&app.owner),
            None,
            Some(json!({"action": "restrict", "justification": "lost"})),
        )
        .await;
    assert_eq!(no_pin.status, StatusCode::FORBIDDEN, "{:?}", no_pin.body);
    let device = app.store.device(&handle).await.unwrap().unwrap();
    assert_eq!(device.state, enigm_types::DeviceState::Revoked);
}

backend_tests!(
    lifecycle_follows_the_table_with_approvals_and_audit,
    lifecycle_transition_table_is_the_only_way,
);
