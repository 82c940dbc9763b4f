//! Device lifecycle through the real router, on SQLite and PostgreSQL: two-phase retire and wipe
//! (issued by an operator, fetched and acknowledged by the device with signed requests), the
//! wipe opt-in, replacement (a new handle with fresh trust, linked by handles only), and the
//! refusals of the device command endpoints. Restrict, revoke and reactivate with approvals are
//! in `devices.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use enigm_api::paths;
use enigm_test_support::device::{TestDevice, fresh_nonce};
use enigm_test_support::{Backend, backend_tests};
use enigm_types::{Actor, AuditAction, AuditTarget, DeviceHandle, Outcome, ReasonCategory, Role};
use serde_json::{Value, json};
use support::{Admin, DeviceCalls as _, Response, TestApp, approve, inactive, protected};

async fn token(app: &TestApp) -> String {
    let response = app
        .call(
            Method::POST,
            paths::ENROLLMENT_TOKENS,
            Some(&app.owner),
            Some(app.owner.pin),
            Some(json!({"group": "field-team"})),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    response.body["token"].as_str().unwrap().to_owned()
}

async fn enrolled(app: &TestApp, wipe_opt_in: bool) -> (TestDevice, DeviceHandle) {
    let device = TestDevice::new();
    let token = token(app).await;
    let response = device
        .enroll(app, &token, protected(app), wipe_opt_in)
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    let handle = response.body["handle"].as_str().unwrap().parse().unwrap();
    (device, handle)
}

async fn lifecycle(app: &TestApp, admin: &Admin, handle: DeviceHandle, action: &str) -> Response {
    app.call(
        Method::POST,
        &paths::fill(paths::DEVICE_LIFECYCLE, &[&handle.to_string()]),
        Some(admin),
        Some(admin.pin),
        Some(json!({"action": action, "justification": "ticket 7: device handed back"})),
    )
    .await
}

async fn view(app: &TestApp, handle: DeviceHandle) -> Value {
    let response = app
        .get(
            &paths::fill(paths::DEVICE, &[&handle.to_string()]),
            &app.owner,
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    response.body
}

/// How many events of `action` with `outcome` (and `reason`, for denials) name the device.
async fn count(
    app: &TestApp,
    action: AuditAction,
    outcome: Outcome,
    reason: Option<ReasonCategory>,
    handle: DeviceHandle,
) -> usize {
    app.audit_events()
        .await
        .iter()
        .filter(|event| {
            event.action == action
                && event.outcome == outcome
                && event.reason == reason
                && event.target == AuditTarget::Device { handle }
        })
        .count()
}

backend_tests!(
    retire_is_two_phase_and_done_when_the_device_acknowledges,
    wipe_needs_the_opt_in_an_approval_and_the_acknowledgement,
    replacement_gives_a_new_handle_with_fresh_trust,
    device_command_requests_are_signed_fresh_and_known,
);

async fn retire_is_two_phase_and_done_when_the_device_acknowledges(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (device, handle) = enrolled(&app, false).await;
    assert_eq!(device.commands(&app).await.body["pending"], Value::Null);

    // Issued: the confirmed state stays until the device acknowledges.
    let issued = lifecycle(&app, &app.owner, handle, "retire").await;
    assert_eq!(issued.status, StatusCode::OK, "{:?}", issued.body);
    assert_eq!(issued.body["state"], "trusted");
    assert_eq!(issued.body["requested_state"], "retired");
    assert_eq!(issued.body["pending_command"], "retire");
    let shown = view(&app, handle).await;
    assert_eq!(shown["state"], "trusted");
    assert_eq!(shown["lifecycle"]["requested_state"], "retired");
    assert_eq!(shown["lifecycle"]["pending_command"]["command"], "retire");
    let listed = app.get(paths::DEVICES, &app.owner).await;
    assert_eq!(
        listed.body[0]["lifecycle"]["pending_command"]["command"],
        "retire"
    );

    // While it waits, no other change but revocation; a second retirement is refused too.
    for action in ["restrict", "retire", "replace"] {
        let refused = lifecycle(&app, &app.owner, handle, action).await;
        assert_eq!(refused.status, StatusCode::CONFLICT, "{action}");
        assert_eq!(refused.code(), "command_pending", "{action}");
    }
    assert_eq!(
        count(
            &app,
            AuditAction::DeviceRestrict,
            Outcome::Denied,
            Some(ReasonCategory::CommandPending),
            handle
        )
        .await,
        1
    );

    // The device fetches the command; acknowledging another command is refused and audited.
    let fetched = device.commands(&app).await;
    assert_eq!(fetched.status, StatusCode::OK, "{:?}", fetched.body);
    assert_eq!(fetched.body["pending"], "retire");
    let wrong = device.ack(&app, "wipe").await;
    assert_eq!(wrong.status, StatusCode::CONFLICT);
    assert_eq!(wrong.code(), "command_not_issued");
    assert_eq!(
        count(
            &app,
            AuditAction::DeviceWipeAck,
            Outcome::Denied,
            Some(ReasonCategory::CommandNotIssued),
            handle
        )
        .await,
        1
    );
    assert_eq!(view(&app, handle).await["state"], "trusted");

    // Acknowledged: retired, confirmed by the device; its next check-in is refused.
    let acked = device.ack(&app, "retire").await;
    assert_eq!(acked.status, StatusCode::OK, "{:?}", acked.body);
    assert_eq!(acked.body["state"], "retired");
    let shown = view(&app, handle).await;
    assert_eq!(shown["state"], "retired");
    assert_eq!(shown["lifecycle"].get("requested_state"), None);
    assert_eq!(shown["lifecycle"].get("pending_command"), None);
    assert_eq!(
        shown["lifecycle"]["acknowledged_command"]["command"],
        "retire"
    );
    assert_eq!(
        device.check_in(&app, protected(&app)).await.code(),
        "device_not_active"
    );
    assert_eq!(device.commands(&app).await.body["pending"], Value::Null);
    // Acknowledging again changes nothing.
    assert_eq!(
        device.ack(&app, "retire").await.code(),
        "command_not_issued"
    );
    // Retired is terminal.
    for action in [
        "restrict",
        "retire",
        "replace",
        "revoke",
        "reactivate",
        "wipe",
    ] {
        let refused = lifecycle(&app, &app.owner, handle, action).await;
        assert_eq!(refused.status, StatusCode::CONFLICT, "{action}");
    }

    let events = app.audit_events().await;
    let issued = events
        .iter()
        .find(|event| {
            event.action == AuditAction::DeviceRetire && event.outcome == Outcome::Success
        })
        .unwrap();
    assert_eq!(issued.actor, Actor::Admin(app.owner.id));
    let acked = events
        .iter()
        .find(|event| {
            event.action == AuditAction::DeviceRetireAck && event.outcome == Outcome::Success
        })
        .unwrap();
    assert_eq!(acked.actor, Actor::Device(handle));
    assert_eq!(acked.target, AuditTarget::Device { handle });
}

async fn wipe_needs_the_opt_in_an_approval_and_the_acknowledgement(backend: Backend) {
    let app = TestApp::new(backend).await;
    let second = app.admin_with_roles("second", &[Role::SecurityAdmin]).await;

    // No opt-in at enrollment: refused before any approval is opened, and audited.
    let (_, no_opt_in) = enrolled(&app, false).await;
    let refused = lifecycle(&app, &app.owner, no_opt_in, "wipe").await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{:?}", refused.body);
    assert_eq!(refused.code(), "wipe_not_opted_in");
    assert_eq!(
        count(
            &app,
            AuditAction::DeviceWipe,
            Outcome::Denied,
            Some(ReasonCategory::WipeNotOptedIn),
            no_opt_in
        )
        .await,
        1
    );

    // With the opt-in: an approval request; nothing reaches the device until it is approved.
    let (device, handle) = enrolled(&app, true).await;
    let requested = lifecycle(&app, &app.owner, handle, "wipe").await;
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
    assert_eq!(device.commands(&app).await.body["pending"], Value::Null);
    let own = approve(&app, &app.owner, &approval).await;
    assert_eq!(own.status, StatusCode::FORBIDDEN);
    assert_eq!(own.code(), "self_approval");
    let approved = approve(&app, &second, &approval).await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    let shown = view(&app, handle).await;
    assert_eq!(shown["state"], "trusted");
    assert_eq!(shown["lifecycle"]["requested_state"], "retired");
    assert_eq!(shown["lifecycle"]["pending_command"]["command"], "wipe");
    let issued = app
        .audit_events()
        .await
        .into_iter()
        .find(|event| event.action == AuditAction::DeviceWipe && event.outcome == Outcome::Success)
        .unwrap();
    assert_eq!(issued.change_ref.unwrap().to_string(), approval);

    // Revoked meanwhile (through its own approval): the device no longer checks in, but it
    // still receives and acknowledges the wipe.
    let revoke = lifecycle(&app, &second, handle, "revoke").await;
    assert_eq!(revoke.status, StatusCode::ACCEPTED, "{:?}", revoke.body);
    let revoke = revoke.body["approval"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        approve(&app, &app.owner, &revoke).await.status,
        StatusCode::OK
    );
    assert_eq!(
        device.check_in(&app, protected(&app)).await.code(),
        "device_revoked"
    );
    assert_eq!(device.commands(&app).await.body["pending"], "wipe");
    let acked = device.ack(&app, "wipe").await;
    assert_eq!(acked.status, StatusCode::OK, "{:?}", acked.body);
    assert_eq!(acked.body["state"], "retired");
    let shown = view(&app, handle).await;
    assert_eq!(shown["state"], "retired");
    assert_eq!(
        shown["lifecycle"]["acknowledged_command"]["command"],
        "wipe"
    );
    assert_eq!(
        count(
            &app,
            AuditAction::DeviceWipeAck,
            Outcome::Success,
            None,
            handle
        )
        .await,
        1
    );
}

async fn replacement_gives_a_new_handle_with_fresh_trust(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (old, old_handle) = enrolled(&app, true).await;

    let replaced = lifecycle(&app, &app.owner, old_handle, "replace").await;
    assert_eq!(replaced.status, StatusCode::OK, "{:?}", replaced.body);
    assert_eq!(replaced.body["state"], "replaced");
    let token = &replaced.body["enrollment_token"];
    assert_eq!(token["uses"], 1);
    assert_eq!(token["group"], "field-team");
    let token = token["token"].as_str().unwrap().to_owned();
    assert_eq!(
        old.check_in(&app, protected(&app)).await.code(),
        "device_not_active"
    );
    assert_eq!(
        count(
            &app,
            AuditAction::DeviceReplace,
            Outcome::Success,
            None,
            old_handle
        )
        .await,
        1
    );

    // The successor enrolls with its own key: a new handle, trust from its own first report
    // only (this one lacks secure boot), nothing inherited.
    let successor = TestDevice::new();
    let enrolled = successor.enroll(&app, &token, inactive(&app), false).await;
    assert_eq!(enrolled.status, StatusCode::CREATED, "{:?}", enrolled.body);
    let new_handle: DeviceHandle = enrolled.body["handle"].as_str().unwrap().parse().unwrap();
    assert_ne!(new_handle, old_handle);
    assert_eq!(enrolled.body["state"], "trusted");
    assert_eq!(enrolled.body["trust"]["state"], "INACTIVE");
    let new_view = view(&app, new_handle).await;
    assert_eq!(new_view["group"], "field-team");
    assert_eq!(new_view["trust"]["state"], "INACTIVE");
    assert_eq!(new_view["lifecycle"]["replaces"], old_handle.to_string());
    let old_view = view(&app, old_handle).await;
    assert_eq!(old_view["lifecycle"]["replaced_by"], new_handle.to_string());
    assert_eq!(old_view["trust"]["state"], "PROTECTED");

    // The token was for one device.
    let third = TestDevice::new()
        .enroll(&app, &token, protected(&app), false)
        .await;
    assert_eq!(third.code(), "invalid_enrollment_token");
    // Only a trusted device can be replaced; a replaced one only retires.
    let again = lifecycle(&app, &app.owner, old_handle, "replace").await;
    assert_eq!(again.code(), "invalid_transition");
    let restricted = lifecycle(&app, &app.owner, new_handle, "restrict").await;
    assert_eq!(restricted.status, StatusCode::OK);
    let refused = lifecycle(&app, &app.owner, new_handle, "replace").await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(
        count(
            &app,
            AuditAction::DeviceReplace,
            Outcome::Denied,
            Some(ReasonCategory::InvalidTransition),
            new_handle
        )
        .await,
        1
    );
}

async fn device_command_requests_are_signed_fresh_and_known(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (device, handle) = enrolled(&app, true).await;

    // Unsigned.
    let unsigned = app
        .send(
            Request::builder()
                .method(Method::GET)
                .uri(paths::DEVICE_COMMANDS)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unsigned.code(), "unsigned_request");
    // A key no device holds.
    let stranger = TestDevice::new().commands(&app).await;
    assert_eq!(stranger.status, StatusCode::UNAUTHORIZED);
    assert_eq!(stranger.code(), "unknown_device");
    // A replayed nonce.
    let nonce = fresh_nonce();
    let now = app.clock_now();
    let first = app
        .send(device.signed(Method::GET, paths::DEVICE_COMMANDS, b"", now, &nonce))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let replay = app
        .send(device.signed(Method::GET, paths::DEVICE_COMMANDS, b"", now, &nonce))
        .await;
    assert_eq!(replay.code(), "replayed");
    // Unknown fields in an acknowledgement.
    let extra = device
        .send(
            &app,
            paths::DEVICE_COMMAND_ACK,
            &json!({"command": "retire", "serial": "R58M"}),
        )
        .await;
    assert_eq!(extra.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        count(
            &app,
            AuditAction::DeviceCommandAck,
            Outcome::Denied,
            Some(ReasonCategory::InvalidBody),
            handle
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            AuditAction::DeviceCommandFetch,
            Outcome::Denied,
            Some(ReasonCategory::Replayed),
            handle
        )
        .await,
        1
    );
}
