//! Devices through the real router: enrollment tokens, signed enrollment and check-ins, the
//! refusals of signed requests, the three trust outcomes, audit of trust changes, revocation,
//! the inventory, and privacy (the device key never reaches the database or a response).
//! Eligibility decisions are in `eligibility.rs`, the operator lifecycle table in
//! `lifecycle_table.rs`.

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
use enigm_api::paths;
use enigm_test_support::device::{TestDevice, fresh_nonce};
use enigm_test_support::{Backend, backend_tests};
use enigm_types::{
    Actor, AuditAction, AuditTarget, AuditTrustState, DeviceHandle, Outcome, ReasonCategory,
    SecurityLayer, SecurityLayers,
};
use serde_json::json;
use support::{
    DeviceCalls as _, TestApp, create_token, enrolled, inactive, last_denial, protected,
    review_required, token,
};

async fn enrollment_happy_path(backend: Backend) {
    let app = TestApp::new(backend).await;
    let created = create_token(&app, json!({"group": "field-team"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["uses"], 1);
    let token = created.body["token"].as_str().unwrap();

    let device = TestDevice::new();
    let response = device.enroll(&app, token, protected(&app), true).await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    assert_eq!(response.body["state"], "trusted");
    assert_eq!(response.body["trust"]["state"], "PROTECTED");
    assert_eq!(
        response.body["trust"]["launcher_summary"],
        "device-protected"
    );
    let handle: DeviceHandle = response.body["handle"].as_str().unwrap().parse().unwrap();

    let detail = app
        .get(&paths::fill(paths::DEVICE, &[handle.as_str()]), &app.owner)
        .await;
    assert_eq!(detail.status, StatusCode::OK, "{:?}", detail.body);
    assert_eq!(detail.body["group"], "field-team");
    assert_eq!(detail.body["state"], "trusted");
    assert_eq!(detail.body["wipe_opt_in"], true);
    assert_eq!(detail.body["managed_opt_in"], false);
    assert_eq!(detail.body["trust"]["state"], "PROTECTED");
    assert_eq!(
        detail.body["production_gates"].as_array().unwrap().len(),
        10
    );

    let events = app.audit_events().await;
    assert!(
        events
            .iter()
            .any(|event| event.action == AuditAction::EnrollmentTokenCreate
                && event.outcome == Outcome::Success)
    );
    assert!(
        events
            .iter()
            .any(|event| event.action == AuditAction::DeviceEnroll
                && event.actor == Actor::Device(handle)
                && event.target == AuditTarget::Device { handle })
    );
    assert!(events.iter().any(|event| matches!(event.target,
        AuditTarget::DeviceTrust {
            handle: changed,
            from: None,
            to: AuditTrustState::Protected,
            ..
        } if changed == handle)));

    // The same key cannot enroll again.
    let token = self::token(&app, 1).await;
    let again = device.enroll(&app, &token, protected(&app), true).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{:?}", again.body);
    assert_eq!(again.code(), "already_enrolled");
    let denial = last_denial(&app, AuditAction::DeviceEnroll).await;
    assert_eq!(denial.reason, Some(ReasonCategory::AlreadyEnrolled));
}

async fn enrollment_tokens_expire_run_out_and_must_match(backend: Backend) {
    let app = TestApp::new(backend).await;
    // Wrong token.
    let wrong = TestDevice::new()
        .enroll(&app, "enigm_not-a-real-token", protected(&app), true)
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{:?}", wrong.body);
    assert_eq!(wrong.code(), "invalid_enrollment_token");
    let random = enigm_crypto::BearerToken::generate(&mut rand::rngs::OsRng);
    let unknown = TestDevice::new()
        .enroll(&app, random.expose(), protected(&app), true)
        .await;
    assert_eq!(unknown.code(), "invalid_enrollment_token");

    // Three uses, then exhausted.
    let token = token(&app, 3).await;
    for _ in 0..3 {
        let response = TestDevice::new()
            .enroll(&app, &token, protected(&app), true)
            .await;
        assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    }
    let fourth = TestDevice::new()
        .enroll(&app, &token, protected(&app), true)
        .await;
    assert_eq!(fourth.status, StatusCode::UNAUTHORIZED);
    assert_eq!(fourth.code(), "invalid_enrollment_token");

    // Expiry.
    let created = create_token(&app, json!({"group": "g", "expires_in_minutes": 5})).await;
    let expiring = created.body["token"].as_str().unwrap().to_owned();
    app.clock.advance(Duration::from_secs(5 * 60));
    let late = TestDevice::new()
        .enroll(&app, &expiring, protected(&app), true)
        .await;
    assert_eq!(late.status, StatusCode::UNAUTHORIZED);
    assert_eq!(late.code(), "invalid_enrollment_token");
    let denial = last_denial(&app, AuditAction::DeviceEnroll).await;
    assert_eq!(denial.reason, Some(ReasonCategory::InvalidEnrollmentToken));

    // Bounds of the token request.
    for bad in [
        json!({"group": "g", "uses": 0}),
        json!({"group": "g", "uses": 100001}),
        json!({"group": "g", "expires_in_minutes": 10081}),
        json!({"group": "Not A Group"}),
    ] {
        let response = create_token(&app, bad.clone()).await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    // Managed mode needs a token that allows it.
    let token = self::token(&app, 1).await;
    let body = json!({
        "enrollment_token": token,
        "report": protected(&app),
        "managed_opt_in": true,
        "wipe_opt_in": false,
    });
    let refused = TestDevice::new()
        .send(&app, paths::DEVICE_ENROLL, &body)
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.code(), "managed_not_allowed");
}

async fn signed_request_failures_are_refused_and_audited(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (device, handle) = enrolled(&app).await;
    let body = json!({ "report": protected(&app) })
        .to_string()
        .into_bytes();

    // Bad signature: signed by another key, sent under this device's keyid.
    let other = TestDevice::new();
    let mut request = device.signed(
        Method::POST,
        paths::DEVICE_CHECK_INS,
        &body,
        app.clock_now(),
        &fresh_nonce(),
    );
    let forged = other.signed(
        Method::POST,
        paths::DEVICE_CHECK_INS,
        &body,
        app.clock_now(),
        &fresh_nonce(),
    );
    let forged_signature = forged.headers()[enigm_device::SIGNATURE].clone();
    request
        .headers_mut()
        .insert(enigm_device::SIGNATURE, forged_signature);
    let response = app.send(request).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(response.code(), "bad_signature");
    let denial = last_denial(&app, AuditAction::DeviceCheckIn).await;
    assert_eq!(denial.reason, Some(ReasonCategory::BadSignature));
    assert_eq!(denial.actor, Actor::Anonymous);

    // Tampered body.
    let mut request = device.signed(
        Method::POST,
        paths::DEVICE_CHECK_INS,
        &body,
        app.clock_now(),
        &fresh_nonce(),
    );
    *request.body_mut() = Body::from(json!({ "report": inactive(&app) }).to_string());
    assert_eq!(app.send(request).await.code(), "bad_signature");

    // Unsigned.
    let unsigned = app
        .call(
            Method::POST,
            paths::DEVICE_CHECK_INS,
            None,
            None,
            Some(json!({ "report": protected(&app) })),
        )
        .await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unsigned.code(), "unsigned_request");
    // Unauthenticated: counted per window and client network, not logged one by one.
    let denial = last_denial(&app, AuditAction::DeviceCheckIn).await;
    assert_eq!(denial.reason, Some(ReasonCategory::UnsignedRequest));
    assert_eq!(denial.actor, Actor::Anonymous);
    assert!(matches!(
        denial.target,
        AuditTarget::AnonymousRequests { count: 1, .. }
    ));

    // Replayed nonce.
    let nonce = fresh_nonce();
    let first = app
        .send(device.signed(
            Method::POST,
            paths::DEVICE_CHECK_INS,
            &body,
            app.clock_now(),
            &nonce,
        ))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let replay = app
        .send(device.signed(
            Method::POST,
            paths::DEVICE_CHECK_INS,
            &body,
            app.clock_now(),
            &nonce,
        ))
        .await;
    assert_eq!(replay.status, StatusCode::CONFLICT);
    assert_eq!(replay.code(), "replayed");
    let denial = last_denial(&app, AuditAction::DeviceCheckIn).await;
    assert_eq!(denial.reason, Some(ReasonCategory::Replayed));
    assert_eq!(denial.target, AuditTarget::Device { handle });

    // Stale and future timestamps.
    let stale = app.clock_now().saturating_sub(Duration::from_secs(10 * 60));
    let response = app
        .send(device.signed(
            Method::POST,
            paths::DEVICE_CHECK_INS,
            &body,
            stale,
            &fresh_nonce(),
        ))
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(response.code(), "stale_request");
    let future = app.clock_now().saturating_add(Duration::from_secs(10 * 60));
    let response = app
        .send(device.signed(
            Method::POST,
            paths::DEVICE_CHECK_INS,
            &body,
            future,
            &fresh_nonce(),
        ))
        .await;
    assert_eq!(response.code(), "stale_request");

    // Unknown device: a valid signature from a key that never enrolled.
    let stranger = TestDevice::new().check_in(&app, protected(&app)).await;
    assert_eq!(stranger.status, StatusCode::UNAUTHORIZED);
    assert_eq!(stranger.code(), "unknown_device");
    let denial = last_denial(&app, AuditAction::DeviceCheckIn).await;
    assert_eq!(denial.reason, Some(ReasonCategory::UnknownDevice));

    // Oversized body.
    let huge = vec![b' '; 1024 * 1024 + 1];
    let response = app
        .send(device.signed(
            Method::POST,
            paths::DEVICE_CHECK_INS,
            &huge,
            app.clock_now(),
            &fresh_nonce(),
        ))
        .await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Unknown fields: a hardware identifier in the body or in the report.
    let mut with_serial = protected(&app);
    with_serial["serial"] = json!("SN-12345");
    let response = device.check_in(&app, with_serial).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.code(), "invalid_body");
    let response = device
        .send(
            &app,
            paths::DEVICE_CHECK_INS,
            &json!({ "report": protected(&app), "imei": "490154203237518" }),
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    let denial = last_denial(&app, AuditAction::DeviceCheckIn).await;
    assert_eq!(denial.reason, Some(ReasonCategory::InvalidBody));
}

async fn three_reports_give_three_states_and_changes_are_audited(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (device, handle) = enrolled(&app).await;

    let response = device.check_in(&app, review_required(&app)).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(response.body["state"], "REVIEW_REQUIRED");
    assert_eq!(response.body["launcher_summary"], "device-at-risk");
    assert!(!response.body["findings"].as_array().unwrap().is_empty());

    let response = device.check_in(&app, inactive(&app)).await;
    assert_eq!(response.body["state"], "INACTIVE");
    let response = device.check_in(&app, inactive(&app)).await;
    assert_eq!(response.body["state"], "INACTIVE");
    let response = device.check_in(&app, protected(&app)).await;
    assert_eq!(response.body["state"], "PROTECTED");

    let changes: Vec<(Option<AuditTrustState>, AuditTrustState, SecurityLayers)> = app
        .audit_events()
        .await
        .into_iter()
        .filter(|event| event.action == AuditAction::DeviceTrustChange)
        .map(|event| match event.target {
            AuditTarget::DeviceTrust {
                handle: changed,
                from,
                to,
                sources,
                ..
            } if changed == handle => (from, to, sources),
            other => panic!("a trust change of another target: {other:?}"),
        })
        .collect();
    use AuditTrustState as S;
    let states: Vec<_> = changes.iter().map(|(from, to, _)| (*from, *to)).collect();
    assert_eq!(
        states,
        [
            (None, S::Protected),
            (Some(S::Protected), S::ReviewRequired),
            (Some(S::ReviewRequired), S::Inactive),
            (Some(S::Inactive), S::Protected),
        ],
        "one event per change, none when unchanged"
    );
    // The finding sources name the layer of the signal that changed the state (§20 C.24):
    // the degraded firewall (network & policy), the missing secure boot (verified boot).
    assert!(
        changes[1].2.contains(SecurityLayer::NetworkPolicy),
        "{changes:?}"
    );
    assert!(
        !changes[1].2.contains(SecurityLayer::VerifiedBoot),
        "{changes:?}"
    );
    assert!(
        changes[2].2.contains(SecurityLayer::VerifiedBoot),
        "{changes:?}"
    );
    assert!(
        !changes[3].2.contains(SecurityLayer::VerifiedBoot),
        "{changes:?}"
    );

    // The inventory filters by trust state, state and group.
    let (_other, other_handle) = enrolled(&app).await;
    device.check_in(&app, inactive(&app)).await;
    let inactive_list = app
        .get(
            &format!("{}?trust_state=INACTIVE", paths::DEVICES),
            &app.owner,
        )
        .await;
    assert_eq!(
        inactive_list.status,
        StatusCode::OK,
        "{:?}",
        inactive_list.body
    );
    let handles: Vec<&str> = inactive_list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|device| device["handle"].as_str().unwrap())
        .collect();
    assert_eq!(handles, [handle.as_str()]);
    let all = app
        .get(
            &format!("{}?state=trusted&group=field-team", paths::DEVICES),
            &app.owner,
        )
        .await;
    assert_eq!(all.body.as_array().unwrap().len(), 2);
    let none = app
        .get(&format!("{}?group=elsewhere", paths::DEVICES), &app.owner)
        .await;
    assert!(none.body.as_array().unwrap().is_empty());
    let first_page = app
        .get(&format!("{}?limit=1", paths::DEVICES), &app.owner)
        .await;
    let first = first_page.body[0]["handle"].as_str().unwrap().to_owned();
    let second_page = app
        .get(
            &format!("{}?limit=1&after={first}", paths::DEVICES),
            &app.owner,
        )
        .await;
    let second = second_page.body[0]["handle"].as_str().unwrap();
    let mut both = vec![first.as_str(), second];
    both.sort_unstable();
    let mut expected = vec![handle.as_str(), other_handle.as_str()];
    expected.sort_unstable();
    assert_eq!(both, expected);

    // The history records changes, and is bounded.
    let before = app.store.posture_history(&handle).await.unwrap().len();
    for _ in 0..5 {
        device.check_in(&app, protected(&app)).await;
    }
    assert_eq!(
        app.store.posture_history(&handle).await.unwrap().len(),
        before + 1,
        "one change to PROTECTED, then nothing new"
    );
    for n in 0..60 {
        let report = if n % 2 == 0 {
            inactive(&app)
        } else {
            protected(&app)
        };
        device.check_in(&app, report).await;
    }
    let history = app.store.posture_history(&handle).await.unwrap();
    assert_eq!(history.len(), 50);
}

async fn revocation_refuses_the_next_check_in(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (device, handle) = enrolled(&app).await;
    assert_eq!(
        device.check_in(&app, protected(&app)).await.status,
        StatusCode::OK
    );
    let mut tx = app.store.begin().await.unwrap();
    assert!(
        tx.set_device_state(&handle, enigm_types::DeviceState::Revoked)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    let refused = device.check_in(&app, protected(&app)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.code(), "device_revoked");
    let denial = last_denial(&app, AuditAction::DeviceCheckIn).await;
    assert_eq!(denial.reason, Some(ReasonCategory::DeviceRevoked));

    let mut tx = app.store.begin().await.unwrap();
    tx.set_device_state(&handle, enigm_types::DeviceState::Retired)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let refused = device.check_in(&app, protected(&app)).await;
    assert_eq!(refused.code(), "device_not_active");
}

async fn handles_are_stable_distinct_and_the_key_is_never_stored(backend: Backend) {
    let app = TestApp::new(backend).await;
    let device = TestDevice::new();
    let token = token(&app, 2).await;
    let mut responses = Vec::new();
    let enroll = device.enroll(&app, &token, protected(&app), true).await;
    assert_eq!(enroll.status, StatusCode::CREATED);
    let handle: DeviceHandle = enroll.body["handle"].as_str().unwrap().parse().unwrap();
    responses.push(enroll.body.to_string());
    for report in [review_required(&app), protected(&app)] {
        let response = device.check_in(&app, report).await;
        assert_eq!(response.status, StatusCode::OK);
        responses.push(response.body.to_string());
    }
    // The handle is the one derived from the key, every time.
    assert_eq!(
        app.state.device_handle_key.handle_for(&device.public_key()),
        handle
    );
    let other = TestDevice::new();
    let second = other.enroll(&app, &token, protected(&app), true).await;
    let other_handle = second.body["handle"].as_str().unwrap();
    assert_ne!(other_handle, handle.as_str());
    responses.push(second.body.to_string());
    for path in [
        paths::DEVICES.to_owned(),
        paths::fill(paths::DEVICE, &[handle.as_str()]),
        format!("{}?limit=1000", paths::AUDIT_EVENTS),
    ] {
        let response = app.get(&path, &app.owner).await;
        assert_eq!(response.status, StatusCode::OK, "{path}");
        responses.push(response.body.to_string());
    }

    let forms = key_forms(&device.public_key());
    for response in &responses {
        for form in &forms {
            assert!(
                !response.contains(form.as_str()),
                "a response carries the device key"
            );
        }
    }
    if app.db.backend() == Backend::Sqlite {
        app.store.close().await;
        let path = app
            .db
            .url()
            .strip_prefix("sqlite://")
            .and_then(|rest| rest.split('?').next())
            .unwrap()
            .to_owned();
        let mut bytes = std::fs::read(&path).unwrap();
        if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
            bytes.extend_from_slice(&wal);
        }
        assert!(
            bytes
                .windows(handle.as_str().len())
                .any(|w| w == handle.as_str().as_bytes())
        );
        let raw = device.public_key();
        assert!(
            !bytes.windows(raw.len()).any(|w| w == raw),
            "raw key stored"
        );
        for form in &forms {
            assert!(
                !bytes.windows(form.len()).any(|w| w == form.as_bytes()),
                "the database holds the device key"
            );
        }
    }
}

/// Every text spelling of a public key worth searching for.
fn key_forms(key: &[u8; 32]) -> Vec<String> {
    use data_encoding::{BASE64, BASE64URL_NOPAD, HEXLOWER, HEXUPPER};
    vec![
        BASE64.encode(key),
        BASE64URL_NOPAD.encode(key),
        HEXLOWER.encode(key),
        HEXUPPER.encode(key),
    ]
}

/// Each production gate in the device view says why: which signal was ok, missing, stale or
/// not ok, with its value and the source the report gave, and why device management does not
/// apply.
async fn production_gates_say_why(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (device, handle) = enrolled(&app).await;
    let now = app.clock_now().unix_millis();
    let stale = now - 16 * 60 * 1000;
    let mut report = review_required(&app);
    let signals = report["signals"].as_array_mut().unwrap();
    signals.push(
        json!({"kind": "os-signature", "value": "ok", "observed_at": now, "source": "profile"}),
    );
    signals.push(json!({"kind": "verified-boot", "value": "ok", "observed_at": stale, "source": "collector"}));
    let response = device.check_in(&app, report).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);

    let detail = app
        .get(&paths::fill(paths::DEVICE, &[handle.as_str()]), &app.owner)
        .await;
    assert_eq!(detail.status, StatusCode::OK, "{:?}", detail.body);
    let gates = detail.body["production_gates"].as_array().unwrap();
    assert_eq!(gates.len(), 10);
    let gate = |name: &str| {
        gates
            .iter()
            .find(|gate| gate["gate"] == name)
            .unwrap_or_else(|| panic!("{name} in {gates:?}"))
            .clone()
    };
    assert_eq!(
        gate("build-integrity"),
        json!({"gate": "build-integrity", "result": "pass", "because": [
            {"evidence": "signal", "signal": "os-signature", "check": "ok", "value": "ok", "source": "declared"},
        ]})
    );
    assert_eq!(
        gate("network-security"),
        json!({"gate": "network-security", "result": "fail", "because": [
            {"evidence": "signal", "signal": "firewall", "check": "not-ok", "value": "degraded", "source": "measured"},
            {"evidence": "signal", "signal": "encrypted-dns", "check": "missing", "value": null, "source": null},
            {"evidence": "signal", "signal": "network-policy-compliance", "check": "missing", "value": null, "source": null},
        ]})
    );
    assert_eq!(
        gate("boot-integrity"),
        json!({"gate": "boot-integrity", "result": "fail", "because": [
            {"evidence": "signal", "signal": "secure-boot", "check": "ok", "value": "ok", "source": "measured"},
            {"evidence": "signal", "signal": "verified-boot", "check": "stale", "value": "ok", "source": "measured"},
            {"evidence": "signal", "signal": "bootloader-locked", "check": "missing", "value": null, "source": null},
            {"evidence": "signal", "signal": "device-integrity", "check": "ok", "value": "ok", "source": "measured"},
        ]})
    );
    assert_eq!(
        gate("device-management"),
        json!({"gate": "device-management", "result": "not-applicable", "because": [
            {"evidence": "not-managed"},
        ]})
    );
    // Every gate explains itself, and a pass rests only on ok entries.
    for gate in gates {
        let because = gate["because"].as_array().unwrap();
        assert!(!because.is_empty(), "{gate}");
        let all_ok = because
            .iter()
            .all(|entry| entry["check"] == "ok" || entry["check"] == "met");
        assert_eq!(gate["result"] == "pass", all_ok, "{gate}");
    }
}

/// Many devices enrolling at once with one token, several times more than the database pool
/// has connections: each enrollment holds one transaction (the token's row locked) and never
/// waits for a second connection, so none starves (a pool timeout would be a 500).
async fn concurrent_enrollments_never_starve_the_pool(backend: Backend) {
    let app = TestApp::new(backend).await;
    const DEVICES: usize = 48;
    let token = token(&app, u32::try_from(DEVICES).unwrap()).await;
    let devices: Vec<TestDevice> = (0..DEVICES).map(|_| TestDevice::new()).collect();
    let responses = futures_util::future::join_all(
        devices
            .iter()
            .map(|device| device.enroll(&app, &token, protected(&app), false)),
    )
    .await;
    for response in &responses {
        assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    }
    // The token's uses are spent exactly.
    let late = TestDevice::new()
        .enroll(&app, &token, protected(&app), false)
        .await;
    assert_eq!(late.status, StatusCode::UNAUTHORIZED, "{:?}", late.body);
}

backend_tests!(
    concurrent_enrollments_never_starve_the_pool,
    enrollment_happy_path,
    enrollment_tokens_expire_run_out_and_must_match,
    signed_request_failures_are_refused_and_audited,
    three_reports_give_three_states_and_changes_are_audited,
    revocation_refuses_the_next_check_in,
    handles_are_stable_distinct_and_the_key_is_never_stored,
    production_gates_say_why,
);
