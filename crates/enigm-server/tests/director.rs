//! The director (issue 14, item 3): a device asks, with a signed and fresh request, which
//! update it should install now. Command answers from its own record with a document signed by
//! its director key, naming one target or none: a revoked, restricted, INACTIVE, unattested,
//! wrong-model or wrong-channel device is never offered, nor is anyone before `validated`,
//! outside the open waves, or while the rollout is paused or withdrawn. "No update" and "not
//! for you" are the same document; the reason is audited. Replayed and stale requests are
//! refused and audited.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use base64::Engine as _;
use enigm_api::paths;
use enigm_ota::MetadataSigner as _;
use enigm_ota::director::{DirectorKeys, VerifiedDirectorAnswer, verify_answer};
use enigm_store::AttestationResultRecord;
use enigm_test_support::device::{TestDevice, fresh_nonce};
use enigm_test_support::{Backend, backend_tests};
use enigm_types::{
    AttestationFormat, AttestationVerdict, AuditAction, DeviceHandle, DeviceState, Outcome,
    ReasonCategory, ReleaseId,
};
use serde_json::{Value, json};
use support::releases::{IMAGE, published_release, published_release_of, release_admins};
use support::{Admin, DeviceCalls, Response, TestApp, approve, enrolled_in, inactive};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

struct Device {
    device: TestDevice,
    handle: DeviceHandle,
}

/// A device enrolled PROTECTED in `group`, with an accepted attestation.
async fn attested_in(app: &TestApp, group: &str) -> Device {
    let (device, handle) = enrolled_in(app, group).await;
    let handle: DeviceHandle = handle.parse().unwrap();
    let mut tx = app.store.begin().await.unwrap();
    tx.record_attestation(
        &handle,
        &AttestationResultRecord {
            verdict: AttestationVerdict::Accepted,
            format: AttestationFormat::AndroidKey,
            claims: "{}".to_owned(),
            attested_at: app.clock_now(),
        },
        Some("{}"),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    Device { device, handle }
}

fn director_keys(app: &TestApp) -> DirectorKeys {
    DirectorKeys::new(&[app.state.ota().online().director.key()], 1).unwrap()
}

/// Asks the director as `device` says it is (model, channel, installed index); the answer,
/// verified for this device and request, or the refusal.
async fn ask_as(
    app: &TestApp,
    device: &Device,
    model: &str,
    channel: &str,
    installed: u64,
) -> Result<VerifiedDirectorAnswer, Response> {
    let nonce = fresh_nonce();
    let body = json!({"model": model, "channel": channel, "installed_rollback_index": installed});
    let request = device.device.signed(
        Method::POST,
        paths::DEVICE_OTA_OFFER,
        body.to_string().as_bytes(),
        app.clock_now(),
        &nonce,
    );
    let response = app.send(request).await;
    if response.status != StatusCode::OK {
        return Err(response);
    }
    let nonce_text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nonce);
    Ok(verify_answer(
        &response.bytes,
        &director_keys(app),
        &device.handle,
        &nonce_text,
        app.clock_now(),
    )
    .expect("a director answer that verifies for this device and request"))
}

/// What the director offers `device` (as an `enigm-sim` on `stable` with nothing installed):
/// the offered release version, if any.
async fn offered(app: &TestApp, device: &Device) -> Option<String> {
    let answer = ask_as(app, device, "enigm-sim", "stable", 0).await.unwrap();
    answer
        .offer()
        .map(|offer| offer.release_version().to_owned())
}

async fn step(app: &TestApp, admin: &Admin, id: ReleaseId, action: &str) -> Response {
    app.call(
        Method::POST,
        &paths::fill(paths::RELEASE_ROLLOUT_ACTIONS, &[&id.to_string()]),
        Some(admin),
        Some(admin.pin),
        Some(json!({"action": action, "justification": "change 9: rollout"})),
    )
    .await
}

async fn plan(app: &TestApp, admin: &Admin, id: ReleaseId, body: Value) {
    let response = app
        .call(
            Method::PUT,
            &paths::fill(paths::RELEASE_ROLLOUT_PLAN, &[&id.to_string()]),
            Some(admin),
            None,
            Some(body),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
}

async fn last_offer_event(app: &TestApp) -> enigm_types::AuditEvent {
    app.audit_events()
        .await
        .into_iter()
        .rev()
        .find(|event| event.action == AuditAction::DeviceOtaOffer)
        .expect("an offer decision")
}

async fn offers_follow_stage_waves_and_the_devices_standing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (manager, approver) = release_admins(&app).await;
    let mut fleet = Vec::new();
    for _ in 0..10 {
        fleet.push(attested_in(&app, "fleet").await);
    }
    let lab = attested_in(&app, "lab").await;
    let expires = app.clock_now().saturating_add(30 * DAY);
    let (id, _) = published_release(&app, "os/enigm-os.img", IMAGE, expires).await;

    // Registered: nobody, and the answer is the same document as "nothing newer".
    for device in fleet.iter().chain([&lab]) {
        assert_eq!(offered(&app, device).await, None);
    }
    let refusal = last_offer_event(&app).await;
    assert_eq!(refusal.outcome, Outcome::Denied);
    assert_eq!(refusal.reason, Some(ReasonCategory::RolloutNotOffered));
    let up_to_date = ask_as(&app, &lab, "enigm-sim", "stable", 1).await.unwrap();
    assert!(up_to_date.offer().is_none());

    plan(
        &app,
        &manager,
        id,
        json!({
            "model": "stable-rollout",
            "waves": [{"percent": 30, "soak_seconds": 0}, {"percent": 100, "soak_seconds": 0}],
            "validation_groups": ["lab"],
            "justification": "change 9: rollout",
        }),
    )
    .await;
    assert_eq!(
        step(&app, &manager, id, "validate").await.status,
        StatusCode::OK
    );
    // Validated: the validation group only.
    assert_eq!(offered(&app, &lab).await.as_deref(), Some("1"));
    for device in &fleet {
        assert_eq!(offered(&app, device).await, None);
    }

    // The first wave: 30 % of the 11 devices Command knows, rounded up, by place.
    assert_eq!(
        step(&app, &manager, id, "start").await.status,
        StatusCode::OK
    );
    let mut in_first_wave = Vec::new();
    for device in &fleet {
        if offered(&app, device).await.is_some() {
            in_first_wave.push(device.handle);
        }
    }
    assert!(
        (3..=4).contains(&in_first_wave.len()),
        "{} of 10 in a 30 % wave of 11",
        in_first_wave.len()
    );
    let offer = offered(&app, &fleet[0]).await;
    let event = last_offer_event(&app).await;
    match offer {
        Some(_) => assert_eq!(event.outcome, Outcome::Success),
        None => assert_eq!(event.reason, Some(ReasonCategory::NotInWave)),
    }

    // The device's own standing keeps it from an offer, whatever its place.
    let outsider = attested_in(&app, "fleet").await;
    let advance = step(&app, &manager, id, "advance").await;
    assert_eq!(advance.status, StatusCode::OK, "{:?}", advance.body);
    assert_eq!(offered(&app, &outsider).await.as_deref(), Some("1"));
    for (model, channel) in [("other-phone", "stable"), ("enigm-sim", "beta")] {
        let answer = ask_as(&app, &outsider, model, channel, 0).await.unwrap();
        assert!(answer.offer().is_none(), "{model} on {channel}");
    }
    let unattested = {
        let (device, handle) = enrolled_in(&app, "fleet").await;
        Device {
            device,
            handle: handle.parse().unwrap(),
        }
    };
    assert_eq!(offered(&app, &unattested).await, None);
    assert_eq!(
        last_offer_event(&app).await.reason,
        Some(ReasonCategory::MissingInput),
        "no attestation is a missing input of the OS image decision"
    );
    assert_eq!(
        fleet[1].device.check_in(&app, inactive(&app)).await.status,
        StatusCode::OK
    );
    assert_eq!(offered(&app, &fleet[1]).await, None);
    assert_eq!(
        last_offer_event(&app).await.reason,
        Some(ReasonCategory::TrustInactive)
    );
    for (device, state, reason) in [
        (
            &fleet[2],
            DeviceState::Revoked,
            ReasonCategory::DeviceRevoked,
        ),
        (
            &fleet[3],
            DeviceState::Restricted,
            ReasonCategory::DeviceRestricted,
        ),
    ] {
        let mut tx = app.store.begin().await.unwrap();
        tx.set_device_state(&device.handle, state).await.unwrap();
        tx.commit().await.unwrap();
        let answer = ask_as(&app, device, "enigm-sim", "stable", 0).await;
        match answer {
            Ok(answer) => assert!(answer.offer().is_none(), "{state}"),
            Err(refused) => assert!(refused.status.is_client_error(), "{state}"),
        }
        if answer_was_decided(&app, device).await {
            assert_eq!(last_offer_event(&app).await.reason, Some(reason));
        }
    }

    // Paused and withdrawn: no new offers for anyone.
    assert_eq!(
        step(&app, &manager, id, "pause").await.status,
        StatusCode::OK
    );
    assert_eq!(offered(&app, &fleet[4]).await, None);
    assert_eq!(
        last_offer_event(&app).await.reason,
        Some(ReasonCategory::RolloutPaused)
    );
    assert_eq!(
        step(&app, &manager, id, "resume").await.status,
        StatusCode::OK
    );
    assert_eq!(offered(&app, &fleet[4]).await.as_deref(), Some("1"));

    // The status counts offers per wave and the refusals of devices in reach.
    let status = app
        .get(
            &paths::fill(paths::RELEASE_ROLLOUT, &[&id.to_string()]),
            &manager,
        )
        .await
        .body;
    let offered_total: u64 = status["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|wave| wave["counts"]["offered"].as_u64().unwrap())
        .sum::<u64>()
        + status["outside_waves"]["offered"].as_u64().unwrap();
    let refused_total: u64 = status["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|wave| wave["counts"]["refused"].as_u64().unwrap())
        .sum::<u64>()
        + status["outside_waves"]["refused"].as_u64().unwrap();
    assert_eq!(
        refused_total, 4,
        "the unattested, inactive, revoked and restricted: {status}"
    );
    // Every device that asked while in reach is counted once, offered or refused: the first
    // wave's, and at least the validation group's, the one enrolled later and the unattested
    // one (a device of the first wave refused later moves from offered to refused).
    assert!(
        offered_total + refused_total >= in_first_wave.len() as u64 + 3,
        "{status}"
    );

    let promoted = step(&app, &manager, id, "promote").await;
    assert_eq!(promoted.status, StatusCode::ACCEPTED);
    let approval = promoted.body["pending_approval"].as_str().unwrap();
    assert_eq!(
        approve(&app, &approver, approval).await.status,
        StatusCode::OK
    );
    assert_eq!(offered(&app, &fleet[5]).await.as_deref(), Some("1"));

    assert_eq!(
        step(&app, &manager, id, "withdraw").await.status,
        StatusCode::OK
    );
    for device in fleet.iter().skip(4).chain([&lab]) {
        assert_eq!(offered(&app, device).await, None);
    }
    assert_eq!(
        last_offer_event(&app).await.reason,
        Some(ReasonCategory::RolloutWithdrawn)
    );
}

/// Whether the director reached a decision for `device` (a revoked device may be refused by
/// the guard before).
async fn answer_was_decided(app: &TestApp, device: &Device) -> bool {
    app.audit_events().await.iter().rev().any(|event| {
        event.action == AuditAction::DeviceOtaOffer
            && event.actor == enigm_types::Actor::Device(device.handle)
            && event.outcome == Outcome::Denied
    })
}

async fn a_pinned_group_stays_on_its_version_and_stable_releases_stay_offered(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (manager, approver) = release_admins(&app).await;
    let device = attested_in(&app, "fleet").await;
    let expires = app.clock_now().saturating_add(30 * DAY);
    let (first, _) = published_release(&app, "os/enigm-os-1.img", IMAGE, expires).await;
    let (second, _) =
        published_release_of(&app, "os/enigm-os-2.img", b"image 2", ("2", 2), expires).await;
    for id in [first, second] {
        plan(
            &app,
            &manager,
            id,
            json!({"model": "stable-rollout", "waves": [{"percent": 100, "soak_seconds": 0}], "justification": "x"}),
        )
        .await;
        assert_eq!(
            step(&app, &manager, id, "validate").await.status,
            StatusCode::OK
        );
    }
    // The first is stable; the second's rollout has not started: the first is offered.
    assert_eq!(
        step(&app, &manager, first, "start").await.status,
        StatusCode::OK
    );
    let promoted = step(&app, &manager, first, "promote").await;
    let approval = promoted.body["pending_approval"].as_str().unwrap();
    assert_eq!(
        approve(&app, &approver, approval).await.status,
        StatusCode::OK
    );
    assert_eq!(offered(&app, &device).await.as_deref(), Some("1"));
    // Once the second rolls out to everyone, it is offered.
    assert_eq!(
        step(&app, &manager, second, "start").await.status,
        StatusCode::OK
    );
    assert_eq!(offered(&app, &device).await.as_deref(), Some("2"));
    // A group pinned to the first stays on it until unpinned.
    let pin = app
        .call(
            Method::POST,
            paths::OTA_PINS,
            Some(&manager),
            None,
            Some(json!({"group": "fleet", "release": first.to_string(), "justification": "hold"})),
        )
        .await;
    assert_eq!(pin.status, StatusCode::OK, "{:?}", pin.body);
    assert_eq!(offered(&app, &device).await.as_deref(), Some("1"));
    let unpin = app
        .call(
            Method::DELETE,
            &paths::fill(paths::OTA_PIN, &["fleet"]),
            Some(&manager),
            None,
            None,
        )
        .await;
    assert_eq!(unpin.status, StatusCode::NO_CONTENT);
    assert_eq!(offered(&app, &device).await.as_deref(), Some("2"));
}

async fn update_requests_are_fresh_and_answers_are_bound_to_them(backend: Backend) {
    let app = TestApp::new(backend).await;
    let device = attested_in(&app, "fleet").await;
    let body = json!({"model": "enigm-sim", "channel": "stable", "installed_rollback_index": 0});
    let bytes = body.to_string();
    let nonce = fresh_nonce();
    let request = || {
        device.device.signed(
            Method::POST,
            paths::DEVICE_OTA_OFFER,
            bytes.as_bytes(),
            app.clock_now(),
            &nonce,
        )
    };
    let first = app.send(request()).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(
        first.headers.get("cache-control").unwrap(),
        "no-store",
        "an answer is for one request"
    );
    let replayed = app.send(request()).await;
    assert_eq!(replayed.status, StatusCode::CONFLICT, "{:?}", replayed.body);
    let denial = support::last_denial(&app, AuditAction::DeviceOtaOffer).await;
    assert_eq!(denial.reason, Some(ReasonCategory::Replayed));

    // A request signed long ago is stale.
    let stale = device.device.signed(
        Method::POST,
        paths::DEVICE_OTA_OFFER,
        bytes.as_bytes(),
        app.clock_now().saturating_sub(Duration::from_secs(3600)),
        &fresh_nonce(),
    );
    let stale = app.send(stale).await;
    assert!(stale.status.is_client_error(), "{:?}", stale.body);

    // The answer verifies only for its device and its request's nonce.
    let nonce_text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nonce);
    let keys = director_keys(&app);
    assert!(
        verify_answer(
            &first.bytes,
            &keys,
            &device.handle,
            &nonce_text,
            app.clock_now()
        )
        .is_ok()
    );
    let other = DeviceHandle::from_digest(&[9; 20]);
    assert!(verify_answer(&first.bytes, &keys, &other, &nonce_text, app.clock_now()).is_err());
    let other_nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(fresh_nonce());
    assert!(
        verify_answer(
            &first.bytes,
            &keys,
            &device.handle,
            &other_nonce,
            app.clock_now()
        )
        .is_err()
    );

    // Claims that are not a model or channel are refused before anything is decided.
    for body in [
        json!({"model": "Pixel 8", "channel": "stable", "installed_rollback_index": 0}),
        json!({"model": "enigm-sim", "channel": "stable", "installed_rollback_index": 0, "serial": "X"}),
        json!({"model": "enigm-sim", "channel": "stable"}),
    ] {
        let response = device
            .device
            .send(&app, paths::DEVICE_OTA_OFFER, &body)
            .await;
        assert!(
            response.status.is_client_error(),
            "{body}: {:?}",
            response.body
        );
    }
    // Never a device's raw answer to a request without a signature.
    let unsigned = app
        .send(
            axum::http::Request::builder()
                .method(Method::POST)
                .uri(paths::DEVICE_OTA_OFFER)
                .header("content-type", "application/json")
                .body(Body::from(bytes.clone()))
                .unwrap(),
        )
        .await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED);
}

/// A published release whose rollout started with one wave of 100 %.
async fn rolled_out_to_everyone(app: &TestApp, manager: &Admin) -> ReleaseId {
    let expires = app.clock_now().saturating_add(30 * DAY);
    let (id, _) = published_release(app, "os/enigm-os.img", IMAGE, expires).await;
    plan(
        app,
        manager,
        id,
        json!({"model": "stable-rollout", "waves": [{"percent": 100, "soak_seconds": 0}], "justification": "x"}),
    )
    .await;
    for action in ["validate", "start"] {
        assert_eq!(step(app, manager, id, action).await.status, StatusCode::OK);
    }
    id
}

/// Each process keeps the director's catalogue in memory: a step taken on another process
/// (here a withdrawal) holds from the next update check on, never later.
async fn a_withdrawal_holds_at_every_process_at_once(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (manager, _) = release_admins(&app).await;
    let device = attested_in(&app, "fleet").await;
    let id = rolled_out_to_everyone(&app, &manager).await;
    let second = app.second_process().await;
    let offered_at_second = || async {
        let body =
            json!({"model": "enigm-sim", "channel": "stable", "installed_rollback_index": 0});
        let request = device.device.signed(
            Method::POST,
            paths::DEVICE_OTA_OFFER,
            body.to_string().as_bytes(),
            app.clock_now(),
            &fresh_nonce(),
        );
        let response = support::send(second.clone(), request).await;
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
        let (_, answer) = enigm_ota::director::parse_answer(&response.bytes).unwrap();
        answer.offer().is_some()
    };
    assert!(offered_at_second().await, "the second process offers it");
    assert_eq!(
        step(&app, &manager, id, "withdraw").await.status,
        StatusCode::OK
    );
    assert!(!offered_at_second().await, "withdrawn at the first process");
}

/// Each process keeps a device's policies and attestation per `policy_revision`, and reads the
/// device, its lifecycle commands and the catalogue's generation at every check: a rejected
/// attestation or a retirement recorded anywhere holds from the next update check on.
async fn a_changed_standing_holds_from_the_next_update_check(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (manager, _) = release_admins(&app).await;
    let attested = attested_in(&app, "fleet").await;
    let leaving = attested_in(&app, "fleet").await;
    rolled_out_to_everyone(&app, &manager).await;
    assert_eq!(offered(&app, &attested).await.as_deref(), Some("1"));
    assert_eq!(offered(&app, &leaving).await.as_deref(), Some("1"));

    // Written by another process: straight into the store, behind this one's caches.
    let mut tx = app.store.begin().await.unwrap();
    tx.record_attestation(
        &attested.handle,
        &AttestationResultRecord {
            verdict: AttestationVerdict::IneligibleBuild,
            format: AttestationFormat::AndroidKey,
            claims: "{}".to_owned(),
            attested_at: app.clock_now(),
        },
        None,
    )
    .await
    .unwrap();
    tx.issue_command(&enigm_store::NewCommand {
        handle: leaving.handle,
        command: enigm_types::DeviceCommand::Retire,
        issued_by: manager.id,
        issued_at: app.clock_now(),
        approval: None,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();

    assert_eq!(offered(&app, &attested).await, None, "attestation rejected");
    assert_eq!(
        last_offer_event(&app).await.reason,
        Some(ReasonCategory::AttestationNotAffirming)
    );
    assert_eq!(offered(&app, &leaving).await, None, "being retired");
    assert_eq!(
        last_offer_event(&app).await.reason,
        Some(ReasonCategory::DeviceNotActive)
    );
}

backend_tests!(
    a_changed_standing_holds_from_the_next_update_check,
    a_withdrawal_holds_at_every_process_at_once,
    offers_follow_stage_waves_and_the_devices_standing,
    a_pinned_group_stays_on_its_version_and_stable_releases_stay_offered,
    update_requests_are_fresh_and_answers_are_bound_to_them,
);
