//! Controlled rollout on Command (issue 14): a published release's stages are taken one at a
//! time and never skipped; promotion to stable and a security rollout wait for another
//! administrator; waves open only after their soak; failures in a wave halt the rollout by
//! themselves; pause, resume and withdraw; version pins. Every step, refused ones included, is
//! audited; a refused step changes nothing.

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
use enigm_api::paths;
use enigm_test_support::{Backend, backend_tests};
use enigm_types::{Actor, AuditAction, Outcome, ReasonCategory, ReleaseId};
use serde_json::{Value, json};
use support::releases::{IMAGE, last_event, published_release, release_admins};
use support::{Admin, DeviceCalls, Response, TestApp, approve, enrolled_in};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

async fn release(app: &TestApp) -> ReleaseId {
    let expires = app.clock_now().saturating_add(30 * DAY);
    published_release(app, "os/enigm-os.img", IMAGE, expires)
        .await
        .0
}

async fn rollout(app: &TestApp, admin: &Admin, id: ReleaseId) -> Value {
    let response = app
        .get(
            &paths::fill(paths::RELEASE_ROLLOUT, &[&id.to_string()]),
            admin,
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    response.body
}

async fn plan(app: &TestApp, admin: &Admin, id: ReleaseId, body: Value) -> Response {
    app.call(
        Method::PUT,
        &paths::fill(paths::RELEASE_ROLLOUT_PLAN, &[&id.to_string()]),
        Some(admin),
        None,
        Some(body),
    )
    .await
}

async fn step(app: &TestApp, admin: &Admin, id: ReleaseId, action: &str) -> Response {
    app.call(
        Method::POST,
        &paths::fill(paths::RELEASE_ROLLOUT_ACTIONS, &[&id.to_string()]),
        Some(admin),
        Some(admin.pin),
        Some(json!({"action": action, "justification": "change 7: staged rollout"})),
    )
    .await
}

/// Waves of `(percent, soak seconds)` under the stable-rollout model.
fn waves(waves: &[(u8, u64)]) -> Value {
    json!({
        "model": "stable-rollout",
        "waves": waves.iter().map(|(percent, soak)| json!({"percent": percent, "soak_seconds": soak})).collect::<Vec<_>>(),
        "justification": "change 7: staged rollout",
    })
}

fn assert_refused(response: &Response, code: &str) {
    assert_eq!(
        (response.status, response.code()),
        (StatusCode::CONFLICT, code),
        "{:?}",
        response.body
    );
}

async fn stages_are_taken_one_at_a_time(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (manager, approver) = release_admins(&app).await;
    let id = release(&app).await;
    let view = rollout(&app, &manager, id).await;
    assert_eq!(view["stage"], "registered");
    assert_eq!(view["model"], Value::Null, "no plan yet: a draft");

    // Without a plan there is nothing to validate against.
    assert_refused(
        &step(&app, &manager, id, "validate").await,
        "invalid_transition",
    );
    let planned = plan(&app, &manager, id, waves(&[(10, 0), (50, 0), (100, 0)])).await;
    assert_eq!(planned.status, StatusCode::OK, "{:?}", planned.body);
    assert_eq!(planned.body["model"], "stable-rollout");
    assert_eq!(planned.body["waves"].as_array().unwrap().len(), 3);

    // Every skip is refused, audited, and changes nothing.
    for action in ["start", "promote", "advance"] {
        let refused = step(&app, &manager, id, action).await;
        assert_refused(&refused, "invalid_transition");
        assert_eq!(rollout(&app, &manager, id).await["stage"], "registered");
    }
    let denial = last_event(&app.audit_events().await, AuditAction::ReleaseStageChange).clone();
    assert_eq!(denial.outcome, Outcome::Denied);
    assert_eq!(denial.reason, Some(ReasonCategory::InvalidTransition));

    let validated = step(&app, &manager, id, "validate").await;
    assert_eq!(validated.status, StatusCode::OK, "{:?}", validated.body);
    assert_eq!(validated.body["stage"], "validated");
    assert_refused(
        &step(&app, &manager, id, "validate").await,
        "invalid_transition",
    );
    assert_refused(
        &step(&app, &manager, id, "promote").await,
        "invalid_transition",
    );

    let started = step(&app, &manager, id, "start").await;
    assert_eq!(started.status, StatusCode::OK, "{:?}", started.body);
    assert_eq!(started.body["stage"], "controlled-rollout");
    assert_eq!(started.body["open_waves"], 1);
    assert!(started.body["waves"][0]["opened_at"].is_string());
    // The plan is fixed once the rollout started.
    let late = plan(&app, &manager, id, waves(&[(100, 0)])).await;
    assert_refused(&late, "invalid_transition");

    // Promotion waits for another administrator; the requester may not approve it.
    let promoted = step(&app, &manager, id, "promote").await;
    assert_eq!(promoted.status, StatusCode::ACCEPTED, "{:?}", promoted.body);
    assert_eq!(promoted.body["stage"], "controlled-rollout");
    let approval = promoted.body["pending_approval"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_refused(&step(&app, &manager, id, "promote").await, "conflict");
    let approvals = app
        .get(&paths::fill(paths::APPROVAL, &[&approval]), &approver)
        .await;
    assert_eq!(approvals.body["subject"]["kind"], "release-stage");
    assert_eq!(approvals.body["subject"]["to"], "stable");
    let own = approve(&app, &manager, &approval).await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{:?}", own.body);
    let approved = approve(&app, &approver, &approval).await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    assert_eq!(approved.body["state"], "executed", "{:?}", approved.body);
    let stable = rollout(&app, &manager, id).await;
    assert_eq!(stable["stage"], "stable");
    assert_eq!(stable["pending_approval"], Value::Null);
    assert_refused(
        &step(&app, &manager, id, "promote").await,
        "invalid_transition",
    );

    let events = app.audit_events().await;
    let stage_changes: Vec<_> = events
        .iter()
        .filter(|event| {
            event.action == AuditAction::ReleaseStageChange && event.outcome == Outcome::Success
        })
        .collect();
    assert_eq!(
        stage_changes.len(),
        3,
        "validated, controlled rollout, stable"
    );
    assert_eq!(
        stage_changes[2].change_ref.map(|id| id.to_string()),
        Some(approval),
        "the promotion names its approval"
    );
    assert!(
        events
            .iter()
            .any(|event| event.action == AuditAction::ReleaseRolloutPlan)
    );
}

async fn a_security_rollout_needs_an_approval_and_reaches_everyone(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (manager, approver) = release_admins(&app).await;
    let id = release(&app).await;
    let body = json!({"model": "security-rollout", "justification": "CVE-2026-0001"});
    assert_eq!(plan(&app, &manager, id, body).await.status, StatusCode::OK);
    assert_eq!(
        step(&app, &manager, id, "validate").await.status,
        StatusCode::OK
    );
    let started = step(&app, &manager, id, "start").await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{:?}", started.body);
    assert_eq!(started.body["stage"], "validated");
    assert_eq!(started.body["open_waves"], 0);
    let approval = started.body["pending_approval"].as_str().unwrap();
    assert_eq!(
        approve(&app, &approver, approval).await.status,
        StatusCode::OK
    );
    let view = rollout(&app, &manager, id).await;
    assert_eq!(view["stage"], "controlled-rollout");
    assert_eq!(view["open_waves"], 1);
    assert_eq!(view["waves"][0]["percent"], 100);
}

async fn a_draft_plan_is_never_started(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (manager, _) = release_admins(&app).await;
    let id = release(&app).await;
    let body = json!({"model": "draft", "justification": "not yet"});
    assert_eq!(plan(&app, &manager, id, body).await.status, StatusCode::OK);
    assert_eq!(
        step(&app, &manager, id, "validate").await.status,
        StatusCode::OK
    );
    assert_refused(
        &step(&app, &manager, id, "start").await,
        "rollout_draft_plan",
    );
    assert_eq!(rollout(&app, &manager, id).await["stage"], "validated");
}

async fn waves_open_only_after_their_soak(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (manager, _) = release_admins(&app).await;
    for _ in 0..10 {
        enrolled_in(&app, "fleet").await;
    }
    let id = release(&app).await;
    let planned = plan(&app, &manager, id, waves(&[(10, 300), (50, 0), (100, 0)])).await;
    assert_eq!(planned.status, StatusCode::OK, "{:?}", planned.body);
    assert_eq!(
        step(&app, &manager, id, "validate").await.status,
        StatusCode::OK
    );
    assert_eq!(
        step(&app, &manager, id, "start").await.status,
        StatusCode::OK
    );

    let early = step(&app, &manager, id, "advance").await;
    assert_refused(&early, "soak_not_elapsed");
    let view = rollout(&app, &manager, id).await;
    assert_eq!(view["open_waves"], 1);
    assert!(view["waves"][0]["soak_ends_at"].is_string());
    let denial = last_event(&app.audit_events().await, AuditAction::ReleaseWaveOpen).clone();
    assert_eq!(denial.reason, Some(ReasonCategory::SoakNotElapsed));

    app.clock.advance(Duration::from_secs(300));
    let second = step(&app, &manager, id, "advance").await;
    assert_eq!(second.status, StatusCode::OK, "{:?}", second.body);
    assert_eq!(second.body["open_waves"], 2);
    let third = step(&app, &manager, id, "advance").await;
    assert_eq!(third.body["open_waves"], 3);
    assert_refused(
        &step(&app, &manager, id, "advance").await,
        "invalid_transition",
    );
    let opened = app
        .audit_events()
        .await
        .into_iter()
        .filter(|event| {
            event.action == AuditAction::ReleaseWaveOpen && event.outcome == Outcome::Success
        })
        .count();
    assert_eq!(opened, 2);
}

async fn report(app: &TestApp, device: &enigm_test_support::device::TestDevice, outcome: &str) {
    let mut body =
        json!({"target_name": "os/enigm-os.img", "release_version": "1", "outcome": outcome});
    if outcome != "installed" && outcome != "downloading" {
        body["reason"] = json!("health_check_failed");
    }
    let response = device.send(app, paths::DEVICE_OTA_REPORTS, &body).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
}

async fn failures_in_the_current_wave_halt_the_rollout(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (manager, _) = release_admins(&app).await;
    let mut devices = Vec::new();
    for _ in 0..8 {
        devices.push(enrolled_in(&app, "fleet").await.0);
    }
    let id = release(&app).await;
    let mut body = waves(&[(100, 0)]);
    body["halt"] = json!({"max_failure_percent": 25, "min_reports": 4});
    assert_eq!(plan(&app, &manager, id, body).await.status, StatusCode::OK);
    assert_eq!(
        step(&app, &manager, id, "validate").await.status,
        StatusCode::OK
    );
    assert_eq!(
        step(&app, &manager, id, "start").await.status,
        StatusCode::OK
    );

    // Three installs and one failure: 25 %, not above the threshold.
    for device in &devices[..3] {
        report(&app, device, "installed").await;
    }
    report(&app, &devices[3], "rolled-back").await;
    let view = rollout(&app, &manager, id).await;
    assert_eq!(view["status"], "active", "{view}");
    assert_eq!(view["waves"][0]["counts"]["installed"], 3);
    assert_eq!(view["waves"][0]["counts"]["rolled_back"], 1);

    // A second failure: 2 of 5 reports, above 25 %.
    report(&app, &devices[4], "rejected").await;
    let halted = rollout(&app, &manager, id).await;
    assert_eq!(halted["status"], "halted", "{halted}");
    assert_eq!(halted["status_reason"], "rollout_failure_threshold");
    assert_eq!(halted["waves"][0]["counts"]["failed"], 1);
    let event = last_event(&app.audit_events().await, AuditAction::ReleaseRolloutHalt).clone();
    assert_eq!(event.actor, Actor::System);
    assert_eq!(event.reason, Some(ReasonCategory::RolloutFailureThreshold));

    // Halted means no wave opens and no promotion until an operator resumes it.
    assert_refused(
        &step(&app, &manager, id, "pause").await,
        "invalid_transition",
    );
    let resumed = step(&app, &manager, id, "resume").await;
    assert_eq!(resumed.status, StatusCode::OK, "{:?}", resumed.body);
    assert_eq!(resumed.body["status"], "active");
    assert_eq!(resumed.body["status_reason"], Value::Null);
}

/// A device's word that it is downloading is counted as `downloading` until its install report
/// replaces it, never over a report, never as a failure; it is audited as its own action.
async fn downloads_are_counted_until_the_report(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (manager, _) = release_admins(&app).await;
    let mut devices = Vec::new();
    for _ in 0..3 {
        devices.push(enrolled_in(&app, "fleet").await.0);
    }
    let id = release(&app).await;
    let mut body = waves(&[(100, 0)]);
    body["halt"] = json!({"max_failure_percent": 1, "min_reports": 1});
    assert_eq!(plan(&app, &manager, id, body).await.status, StatusCode::OK);
    for action in ["validate", "start"] {
        assert_eq!(
            step(&app, &manager, id, action).await.status,
            StatusCode::OK
        );
    }
    report(&app, &devices[0], "downloading").await;
    report(&app, &devices[1], "downloading").await;
    let counts = |view: &Value| view["waves"][0]["counts"].clone();
    let view = rollout(&app, &manager, id).await;
    assert_eq!(counts(&view)["downloading"], 2, "{view}");
    assert_eq!(view["status"], "active", "a download is no failure: {view}");

    report(&app, &devices[0], "installed").await;
    report(&app, &devices[0], "downloading").await;
    let view = rollout(&app, &manager, id).await;
    assert_eq!(counts(&view)["downloading"], 1, "{view}");
    assert_eq!(
        counts(&view)["installed"],
        1,
        "a late word never hides a report: {view}"
    );

    // A download names no reason.
    let refused = devices[2]
        .send(
            &app,
            paths::DEVICE_OTA_REPORTS,
            &json!({"target_name": "os/enigm-os.img", "release_version": "1",
                    "outcome": "downloading", "reason": "health_check_failed"}),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        refused.body
    );
    let downloads = app
        .audit_events()
        .await
        .into_iter()
        .filter(|event| event.action == AuditAction::DeviceOtaDownload)
        .count();
    assert_eq!(downloads, 3);
}

async fn pause_resume_and_withdraw(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (manager, _) = release_admins(&app).await;
    let id = release(&app).await;
    assert_eq!(
        plan(&app, &manager, id, waves(&[(50, 0), (100, 0)]))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        step(&app, &manager, id, "validate").await.status,
        StatusCode::OK
    );
    assert_eq!(
        step(&app, &manager, id, "start").await.status,
        StatusCode::OK
    );

    let paused = step(&app, &manager, id, "pause").await;
    assert_eq!(paused.body["status"], "paused", "{:?}", paused.body);
    assert_refused(
        &step(&app, &manager, id, "pause").await,
        "invalid_transition",
    );
    assert_refused(&step(&app, &manager, id, "advance").await, "rollout_paused");
    // Paused, a rollout does not widen: no promotion either.
    assert_refused(&step(&app, &manager, id, "promote").await, "rollout_paused");
    assert_eq!(
        step(&app, &manager, id, "resume").await.body["status"],
        "active"
    );
    assert_refused(
        &step(&app, &manager, id, "resume").await,
        "invalid_transition",
    );

    // Withdrawal needs the PIN and is final.
    let without_pin = app
        .call(
            Method::POST,
            &paths::fill(paths::RELEASE_ROLLOUT_ACTIONS, &[&id.to_string()]),
            Some(&manager),
            None,
            Some(json!({"action": "withdraw", "justification": "bad build"})),
        )
        .await;
    assert_eq!(
        without_pin.status,
        StatusCode::FORBIDDEN,
        "{:?}",
        without_pin.body
    );
    let withdrawn = step(&app, &manager, id, "withdraw").await;
    assert_eq!(withdrawn.status, StatusCode::OK, "{:?}", withdrawn.body);
    assert_eq!(withdrawn.body["status"], "withdrawn");
    for action in ["resume", "withdraw"] {
        assert_refused(&step(&app, &manager, id, action).await, "rollout_withdrawn");
    }
    assert_refused(
        &step(&app, &manager, id, "promote").await,
        "rollout_withdrawn",
    );
    assert_refused(
        &step(&app, &manager, id, "advance").await,
        "rollout_withdrawn",
    );
    assert_refused(
        &plan(&app, &manager, id, waves(&[(100, 0)])).await,
        "invalid_transition",
    );
    let events = app.audit_events().await;
    for action in [
        AuditAction::ReleaseRolloutPause,
        AuditAction::ReleaseRolloutResume,
        AuditAction::ReleaseWithdraw,
    ] {
        assert!(
            events
                .iter()
                .any(|event| event.action == action && event.outcome == Outcome::Success),
            "{action}"
        );
    }
}

async fn plans_are_checked(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (manager, _) = release_admins(&app).await;
    let id = release(&app).await;
    for (body, why) in [
        (waves(&[(50, 0), (10, 0)]), "shares must grow"),
        (waves(&[(10, 0), (50, 0)]), "a stable rollout ends at 100 %"),
        (waves(&[(100, 40 * 86_400)]), "soak beyond 30 days"),
        (
            json!({"model": "validation", "justification": "x"}),
            "validation without groups",
        ),
        (
            json!({"model": "draft", "waves": [{"percent": 100, "soak_seconds": 0}], "justification": "x"}),
            "a draft takes no waves",
        ),
        (
            json!({"model": "stable-rollout", "halt": {"max_failure_percent": 0, "min_reports": 1}, "justification": "x"}),
            "halt threshold of 0",
        ),
        (
            json!({"model": "stable-rollout", "halt": {"max_failure_percent": 5, "min_reports": 1_000_001}, "justification": "x"}),
            "a sample beyond a million reports",
        ),
    ] {
        let refused = plan(&app, &manager, id, body).await;
        assert_eq!(
            (refused.status, refused.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_rollout_plan"),
            "{why}: {:?}",
            refused.body
        );
    }
    assert_eq!(rollout(&app, &manager, id).await["model"], Value::Null);
    let unknown = plan(
        &app,
        &manager,
        id,
        json!({"model": "stable-rollout", "justification": "x", "extra": 1}),
    )
    .await;
    assert!(unknown.status.is_client_error());
    let missing = app
        .get(
            &paths::fill(paths::RELEASE_ROLLOUT, &[&ReleaseId::random().to_string()]),
            &manager,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

async fn groups_are_pinned_and_unpinned(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (manager, _) = release_admins(&app).await;
    let id = release(&app).await;
    let pin = |group: &str, release: ReleaseId| json!({"group": group, "release": release.to_string(), "justification": "hold the lab"});
    let pin_request = |body: Value| {
        app.call(
            Method::POST,
            paths::OTA_PINS,
            Some(&manager),
            None,
            Some(body),
        )
    };
    // A release no device may be offered yet cannot be pinned.
    assert_refused(&pin_request(pin("lab", id)).await, "invalid_transition");
    assert_eq!(
        plan(&app, &manager, id, waves(&[(100, 0)])).await.status,
        StatusCode::OK
    );
    assert_eq!(
        step(&app, &manager, id, "validate").await.status,
        StatusCode::OK
    );
    let pinned = pin_request(pin("lab", id)).await;
    assert_eq!(pinned.status, StatusCode::OK, "{:?}", pinned.body);
    assert_eq!(pinned.body["release_version"], "1");
    let listed = app.get(paths::OTA_PINS, &manager).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    assert_eq!(listed.body[0]["group"], "lab");

    let unknown = app
        .call(
            Method::POST,
            paths::OTA_PINS,
            Some(&manager),
            None,
            Some(pin("lab", ReleaseId::random())),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let path = paths::fill(paths::OTA_PIN, &["lab"]);
    let removed = app
        .call(Method::DELETE, &path, Some(&manager), None, None)
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let again = app
        .call(Method::DELETE, &path, Some(&manager), None, None)
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert!(
        app.get(paths::OTA_PINS, &manager)
            .await
            .body
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Nor can a withdrawn one.
    assert_eq!(
        step(&app, &manager, id, "withdraw").await.status,
        StatusCode::OK
    );
    assert_refused(&pin_request(pin("lab", id)).await, "rollout_withdrawn");
    let events = app.audit_events().await;
    assert!(
        events
            .iter()
            .any(|event| event.action == AuditAction::OtaVersionPin)
    );
    assert!(
        events
            .iter()
            .any(|event| event.action == AuditAction::OtaVersionUnpin)
    );
}

/// Validation reads the stored artifact back: one changed on Command's disk after it was
/// signed is refused, and so is an expired release.
async fn validation_checks_the_stored_artifact_and_the_expiry(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (manager, _) = release_admins(&app).await;
    let expires = app.clock_now().saturating_add(30 * DAY);
    let (id, sha256) = published_release(&app, "os/enigm-os.img", IMAGE, expires).await;
    assert_eq!(
        plan(&app, &manager, id, waves(&[(100, 0)])).await.status,
        StatusCode::OK
    );
    let stored = app.state.ota().artifact_path(&sha256);
    let mut tampered = IMAGE.to_vec();
    tampered[0] ^= 1;
    std::fs::write(&stored, &tampered).unwrap();
    let refused = step(&app, &manager, id, "validate").await;
    assert_refused(&refused, "invalid_transition");
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("no longer matches"),
        "{:?}",
        refused.body
    );
    std::fs::write(&stored, IMAGE).unwrap();
    assert_eq!(
        step(&app, &manager, id, "validate").await.status,
        StatusCode::OK
    );

    let soon = app.clock_now().saturating_add(Duration::from_secs(60));
    let (short, _) = published_release(&app, "os/enigm-os-short.img", b"short-lived", soon).await;
    assert_eq!(
        plan(&app, &manager, short, waves(&[(100, 0)])).await.status,
        StatusCode::OK
    );
    app.clock.advance(Duration::from_secs(120));
    let expired = step(&app, &manager, short, "validate").await;
    assert_refused(&expired, "invalid_transition");
    assert!(
        expired.body["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{:?}",
        expired.body
    );
    assert_eq!(rollout_stage(&app, short).await, "registered");
}

async fn rollout_stage(app: &TestApp, id: ReleaseId) -> String {
    let record = app.store.release_by_id(id).await.unwrap().unwrap();
    let rollout = app.store.rollout(id).await.unwrap();
    enigm_ota::rollout::stage_of(
        record.state,
        record.artifact_stored,
        rollout.and_then(|rollout| rollout.stage),
    )
    .as_str()
    .to_owned()
}

backend_tests!(
    validation_checks_the_stored_artifact_and_the_expiry,
    stages_are_taken_one_at_a_time,
    a_security_rollout_needs_an_approval_and_reaches_everyone,
    a_draft_plan_is_never_started,
    waves_open_only_after_their_soak,
    failures_in_the_current_wave_halt_the_rollout,
    downloads_are_counted_until_the_report,
    pause_resume_and_withdraw,
    plans_are_checked,
    groups_are_pinned_and_unpinned,
);
