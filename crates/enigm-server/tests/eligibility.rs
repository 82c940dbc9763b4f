//! The eligibility decision through the real router: decided from Command's own record of the
//! device (lifecycle state, trust state and its age, attestation), audited, and bad requests
//! refused without a change.

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
use enigm_types::{Actor, AuditAction, AuditTarget, DeviceHandle, Outcome, ReasonCategory};
use serde_json::{Value, json};
use support::{
    DeviceCalls as _, Response, TestApp, enrolled, inactive, lifecycle, protected, review_required,
};

async fn ask(app: &TestApp, body: Value) -> Response {
    app.call(
        Method::POST,
        paths::ELIGIBILITY,
        Some(&app.owner),
        None,
        Some(body),
    )
    .await
}

/// The decision's JSON: `{"decision": "allow"}` or `{"decision": "deny", "reason": ...}`.
async fn decision(app: &TestApp, handle: &str, action: &str, session: Option<bool>) -> Value {
    let mut body = json!({"device": handle, "action": action});
    if let Some(valid) = session {
        body["session_valid"] = json!(valid);
    }
    let response = ask(app, body).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    response.body
}

async fn eligibility_is_decided_from_commands_record_and_audited(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (device, handle) = enrolled(&app).await;
    let handle = handle.to_string();
    let allow = json!({"decision": "allow"});
    let deny = |reason: &str| json!({"decision": "deny", "reason": reason});

    // PROTECTED and trusted.
    assert_eq!(decision(&app, &handle, "network", None).await, allow);
    assert_eq!(
        decision(&app, &handle, "secure-messaging", Some(true)).await,
        allow
    );
    assert_eq!(
        decision(&app, &handle, "secure-call", Some(false)).await,
        deny("session_invalid")
    );
    // A missing required input denies: the session for calls, attestation for OTA (Command
    // records no attestation outcome yet), and any unknown device.
    assert_eq!(
        decision(&app, &handle, "secure-call", None).await,
        deny("missing_session")
    );
    assert_eq!(
        decision(&app, &handle, "ota", None).await,
        deny("missing_attestation")
    );
    assert_eq!(
        decision(&app, &handle, "enroll", None).await,
        deny("already_enrolled")
    );
    let stranger = DeviceHandle::from_digest(&[7; 20]).to_string();
    assert_eq!(
        decision(&app, &stranger, "network", None).await,
        deny("missing_device")
    );

    // REVIEW_REQUIRED: not for sensitive workflows, still for the network.
    assert_eq!(
        device.check_in(&app, review_required(&app)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        decision(&app, &handle, "secure-messaging", Some(true)).await,
        deny("trust_review_required")
    );
    assert_eq!(decision(&app, &handle, "network", None).await, allow);
    // INACTIVE: nothing.
    assert_eq!(
        device.check_in(&app, inactive(&app)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        decision(&app, &handle, "network", None).await,
        deny("trust_inactive")
    );
    // ... but its policy bundle, which never raises trust, may still reach it; and an action
    // asked about a resource it is not on is denied for that.
    let on = |action: &str, resource: &str| json!({"device": handle, "action": action, "resource": resource});
    let bundle = ask(&app, on("ota", "policy-bundle")).await;
    assert_eq!(bundle.status, StatusCode::OK, "{:?}", bundle.body);
    assert_eq!(bundle.body, allow);
    let mismatch = ask(&app, on("network", "os-image")).await;
    assert_eq!(mismatch.body, deny("resource_mismatch"));
    let unknown = ask(&app, on("network", "the-internet")).await;
    assert_eq!(
        unknown.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        unknown.body
    );
    assert_eq!(unknown.body["code"], "invalid_body");
    // A device told to retire: nothing protected while the command waits for it.
    let (_leaving, leaving_handle) = enrolled(&app).await;
    let leaving_handle = leaving_handle.to_string();
    assert_eq!(
        decision(&app, &leaving_handle, "network", None).await,
        allow
    );
    let retire = lifecycle(&app, &app.owner, &leaving_handle, "retire").await;
    assert!(retire.status.is_success(), "{:?}", retire.body);
    assert_eq!(
        decision(&app, &leaving_handle, "network", None).await,
        deny("device_not_active")
    );

    // Revoked: nothing, whatever the trust state.
    assert_eq!(
        device.check_in(&app, protected(&app)).await.status,
        StatusCode::OK
    );
    let mut tx = app.store.begin().await.unwrap();
    tx.set_device_state(&handle.parse().unwrap(), enigm_types::DeviceState::Revoked)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        decision(&app, &handle, "network", None).await,
        deny("device_revoked")
    );

    // Every decision is audited with the device's handle and the denial's reason.
    let decisions: Vec<_> = app
        .audit_events()
        .await
        .into_iter()
        .filter(|event| event.action == AuditAction::DeviceEligibility)
        .collect();
    // Thirteen, and the bundle and the mismatch (the unknown resource is refused undecided).
    assert_eq!(decisions.len(), 15);
    assert!(
        decisions
            .iter()
            .all(|event| event.actor == Actor::Admin(app.owner.id))
    );
    let last = decisions
        .iter()
        .rev()
        .find(|event| {
            event.target
                == AuditTarget::Device {
                    handle: handle.parse().unwrap(),
                }
        })
        .unwrap();
    assert_eq!(last.outcome, Outcome::Denied);
    assert_eq!(last.reason, Some(ReasonCategory::DeviceRevoked));
    assert_eq!(
        last.target,
        AuditTarget::Device {
            handle: handle.parse().unwrap()
        }
    );
    assert_eq!(decisions[0].outcome, Outcome::Success);
    assert_eq!(decisions[0].reason, None);
}

async fn eligibility_refuses_bad_requests_and_changes_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_device, handle) = enrolled(&app).await;
    let handle = handle.to_string();
    let before = app.audit_events().await.len();
    for body in [
        json!({"device": handle, "action": "network", "serial": "R58M12345"}),
        json!({"device": handle, "action": "teleport"}),
        json!({"device": "not-a-handle", "action": "network"}),
        json!({"device": handle}),
        json!({"device": handle, "action": "network", "session_valid": "yes"}),
    ] {
        let response = ask(&app, body.clone()).await;
        assert!(
            response.status == StatusCode::BAD_REQUEST
                || response.status == StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {:?}",
            response.status
        );
        assert!(
            response.body.get("decision").is_none(),
            "{body}: no decision"
        );
    }
    let decisions = app
        .audit_events()
        .await
        .into_iter()
        .skip(before)
        .filter(|event| event.action == AuditAction::DeviceEligibility)
        .count();
    assert_eq!(decisions, 0, "a refused request decides nothing");

    // Only roles holding devices.decide may ask.
    let auditor = app
        .admin_with_roles("auditor-1", &[enigm_types::Role::Auditor])
        .await;
    let response = app
        .call(
            Method::POST,
            paths::ELIGIBILITY,
            Some(&auditor),
            None,
            Some(json!({"device": handle, "action": "network"})),
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
}

/// Setup baseline (§20 C.27): a device is "ready", and eligible for anything, only once its
/// check-ins report every required setup step; the view says what is missing, the denial names
/// it, and the audit log files it under `setup_incomplete`. A step not reported again counts
/// as not done.
async fn a_device_is_ready_only_when_its_setup_is_done(backend: Backend) {
    let app = TestApp::new(backend).await;
    let device = enigm_test_support::device::TestDevice::new();
    let token = support::token(&app, 1).await;
    let body = json!({
        "enrollment_token": token,
        "report": protected(&app),
        "managed_opt_in": false,
        "wipe_opt_in": false,
        "setup": ["terms"],
    });
    let enrolled = device.send(&app, paths::DEVICE_ENROLL, &body).await;
    assert_eq!(enrolled.status, StatusCode::CREATED, "{:?}", enrolled.body);
    assert_eq!(enrolled.body["trust"]["state"], "PROTECTED");
    let handle = enrolled.body["handle"].as_str().unwrap().to_owned();
    let path = paths::fill(paths::DEVICE, &[&handle]);
    let view = |app| setup_view(app, &path);
    assert_eq!(
        view(&app).await,
        json!({"ready": false, "missing": ["strong-pin", "network-readiness"]})
    );
    let deny = json!({"decision": "deny", "reason": "setup_incomplete"});
    assert_eq!(decision(&app, &handle, "network", None).await, deny);
    // OTA lacks an input first (no attestation on record), and says so.
    assert_eq!(
        decision(&app, &handle, "ota", None).await,
        json!({"decision": "deny", "reason": "missing_attestation"})
    );
    assert_eq!(
        decision(&app, &handle, "secure-call", Some(true)).await,
        deny
    );
    let denial = support::last_denial(&app, AuditAction::DeviceEligibility).await;
    assert_eq!(denial.reason, Some(ReasonCategory::SetupIncomplete));

    // An unknown step is refused as a bad body and changes nothing.
    let bogus = json!({"report": protected(&app), "setup": ["terms", "biometrics"]});
    let refused = device.send(&app, paths::DEVICE_CHECK_INS, &bogus).await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        refused.body
    );
    assert_eq!(refused.body["code"], "invalid_body");
    assert_eq!(view(&app).await["ready"], false);

    // Every step reported: ready, and the decision moves on to the other inputs.
    assert_eq!(
        device.check_in(&app, protected(&app)).await.status,
        StatusCode::OK
    );
    assert_eq!(view(&app).await, json!({"ready": true, "missing": []}));
    assert_eq!(
        decision(&app, &handle, "network", None).await,
        json!({"decision": "allow"})
    );

    // A check-in that no longer reports the steps (e.g. after a reset) is not ready again.
    let bare = json!({"report": protected(&app)});
    assert_eq!(
        device
            .send(&app, paths::DEVICE_CHECK_INS, &bare)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        view(&app).await,
        json!({"ready": false, "missing": ["strong-pin", "terms", "network-readiness"]})
    );
    assert_eq!(decision(&app, &handle, "network", None).await, deny);
}

async fn setup_view(app: &TestApp, path: &str) -> Value {
    app.get(path, &app.owner).await.body["setup"].clone()
}

backend_tests!(
    eligibility_is_decided_from_commands_record_and_audited,
    eligibility_refuses_bad_requests_and_changes_nothing,
    a_device_is_ready_only_when_its_setup_is_done,
);
