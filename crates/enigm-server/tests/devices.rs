//! Devices through the real router: enrollment tokens, signed enrollment and check-ins, the
//! refusals of signed requests, the three trust outcomes, audit of trust changes, revocation,
//! the inventory, and privacy (the device key never reaches the database or a response).

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
use axum::http::{Method, Request, StatusCode};
use enigm_api::paths;
use enigm_crypto::Ed25519SigningKey;
use enigm_device::{NONCE_LEN, RequestParts, sign_request};
use enigm_test_support::{Backend, backend_tests};
use enigm_types::{
    Actor, AuditAction, AuditTarget, AuditTrustState, DeviceHandle, Outcome, ReasonCategory,
    SecurityLayer, SecurityLayers, Timestamp,
};
use rand::RngCore as _;
use serde_json::{Value, json};
use support::{Response, TestApp};

/// A simulated device: its key lives here only.
struct Device {
    key: Ed25519SigningKey,
}

impl Device {
    fn new() -> Device {
        Device {
            key: Ed25519SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// A request signed at `created` with `nonce`.
    fn request(
        &self,
        path: &str,
        body: &[u8],
        created: Timestamp,
        nonce: &[u8; 16],
    ) -> Request<Body> {
        let headers = sign_request(
            &self.key,
            &RequestParts {
                method: "POST",
                path,
                query: "",
                body,
            },
            created,
            nonce,
        );
        Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("content-type", "application/json")
            .header(enigm_device::CONTENT_DIGEST, headers.content_digest)
            .header(enigm_device::SIGNATURE_INPUT, headers.signature_input)
            .header(enigm_device::SIGNATURE, headers.signature)
            .body(Body::from(body.to_vec()))
            .unwrap()
    }

    async fn send(&self, app: &TestApp, path: &str, body: &Value) -> Response {
        let body = body.to_string().into_bytes();
        app.send(self.request(path, &body, app.clock_now(), &fresh_nonce()))
            .await
    }

    async fn enroll(&self, app: &TestApp, token: &str, report: Value) -> Response {
        let body = json!({
            "enrollment_token": token,
            "report": report,
            "managed_opt_in": false,
            "wipe_opt_in": true,
        });
        self.send(app, paths::DEVICE_ENROLL, &body).await
    }

    async fn check_in(&self, app: &TestApp, report: Value) -> Response {
        self.send(app, paths::DEVICE_CHECK_INS, &json!({ "report": report }))
            .await
    }
}

fn fresh_nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    nonce
}

/// The baseline policy's critical signals.
const CRITICAL: [&str; 6] = [
    "device-integrity",
    "secure-boot",
    "disk-encryption",
    "firewall",
    "security-service",
    "signal-collector",
];

/// A report of the baseline's critical signals, `firewall` set to `firewall`, without
/// `secure-boot` when `secure_boot` is false.
fn report(app: &TestApp, firewall: &str, secure_boot: bool) -> Value {
    let now = app.clock_now().unix_millis();
    let signals: Vec<Value> = CRITICAL
        .iter()
        .filter(|kind| secure_boot || **kind != "secure-boot")
        .map(|kind| {
            let value = if *kind == "firewall" { firewall } else { "ok" };
            json!({"kind": kind, "value": value, "observed_at": now, "source": "collector"})
        })
        .collect();
    json!({ "signals": signals })
}

fn protected(app: &TestApp) -> Value {
    report(app, "ok", true)
}

fn review_required(app: &TestApp) -> Value {
    report(app, "degraded", true)
}

fn inactive(app: &TestApp) -> Value {
    report(app, "ok", false)
}

async fn create_token(app: &TestApp, body: Value) -> Response {
    app.call(
        Method::POST,
        paths::ENROLLMENT_TOKENS,
        Some(&app.owner),
        Some(app.owner.pin),
        Some(body),
    )
    .await
}

async fn token(app: &TestApp, uses: u32) -> String {
    let response = create_token(app, json!({"group": "field-team", "uses": uses})).await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    response.body["token"].as_str().unwrap().to_owned()
}

async fn enrolled(app: &TestApp) -> (Device, DeviceHandle) {
    let device = Device::new();
    let token = token(app, 1).await;
    let response = device.enroll(app, &token, protected(app)).await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    let handle = response.body["handle"].as_str().unwrap().parse().unwrap();
    (device, handle)
}

async fn last_denial(app: &TestApp, action: AuditAction) -> enigm_types::AuditEvent {
    app.audit_events()
        .await
        .into_iter()
        .rev()
        .find(|event| event.action == action && event.outcome == Outcome::Denied)
        .expect("a denial")
}

async fn enrollment_happy_path(backend: Backend) {
    let app = TestApp::new(backend).await;
    let created = create_token(&app, json!({"group": "field-team"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["uses"], 1);
    let token = created.body["token"].as_str().unwrap();

    let device = Device::new();
    let response = device.enroll(&app, token, protected(&app)).await;
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
    let again = device.enroll(&app, &token, protected(&app)).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{:?}", again.body);
    assert_eq!(again.code(), "already_enrolled");
    let denial = last_denial(&app, AuditAction::DeviceEnroll).await;
    assert_eq!(denial.reason, Some(ReasonCategory::AlreadyEnrolled));
}

async fn enrollment_tokens_expire_run_out_and_must_match(backend: Backend) {
    let app = TestApp::new(backend).await;
    // Wrong token.
    let wrong = Device::new()
        .enroll(&app, "enigm_not-a-real-token", protected(&app))
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{:?}", wrong.body);
    assert_eq!(wrong.code(), "invalid_enrollment_token");
    let random = enigm_crypto::BearerToken::generate(&mut rand::rngs::OsRng);
    let unknown = Device::new()
        .enroll(&app, random.expose(), protected(&app))
        .await;
    assert_eq!(unknown.code(), "invalid_enrollment_token");

    // Three uses, then exhausted.
    let token = token(&app, 3).await;
    for _ in 0..3 {
        let response = Device::new().enroll(&app, &token, protected(&app)).await;
        assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    }
    let fourth = Device::new().enroll(&app, &token, protected(&app)).await;
    assert_eq!(fourth.status, StatusCode::UNAUTHORIZED);
    assert_eq!(fourth.code(), "invalid_enrollment_token");

    // Expiry.
    let created = create_token(&app, json!({"group": "g", "expires_in_minutes": 5})).await;
    let expiring = created.body["token"].as_str().unwrap().to_owned();
    app.clock.advance(Duration::from_secs(5 * 60));
    let late = Device::new().enroll(&app, &expiring, protected(&app)).await;
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
    let refused = Device::new().send(&app, paths::DEVICE_ENROLL, &body).await;
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
    let other = Device::new();
    let mut request = device.request(
        paths::DEVICE_CHECK_INS,
        &body,
        app.clock_now(),
        &fresh_nonce(),
    );
    let forged = other.request(
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
    let mut request = device.request(
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

    // Replayed nonce.
    let nonce = fresh_nonce();
    let first = app
        .send(device.request(paths::DEVICE_CHECK_INS, &body, app.clock_now(), &nonce))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let replay = app
        .send(device.request(paths::DEVICE_CHECK_INS, &body, app.clock_now(), &nonce))
        .await;
    assert_eq!(replay.status, StatusCode::CONFLICT);
    assert_eq!(replay.code(), "replayed");
    let denial = last_denial(&app, AuditAction::DeviceCheckIn).await;
    assert_eq!(denial.reason, Some(ReasonCategory::Replayed));
    assert_eq!(denial.target, AuditTarget::Device { handle });

    // Stale and future timestamps.
    let stale = app.clock_now().saturating_sub(Duration::from_secs(10 * 60));
    let response = app
        .send(device.request(paths::DEVICE_CHECK_INS, &body, stale, &fresh_nonce()))
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(response.code(), "stale_request");
    let future = app.clock_now().saturating_add(Duration::from_secs(10 * 60));
    let response = app
        .send(device.request(paths::DEVICE_CHECK_INS, &body, future, &fresh_nonce()))
        .await;
    assert_eq!(response.code(), "stale_request");

    // Unknown device: a valid signature from a key that never enrolled.
    let stranger = Device::new().check_in(&app, protected(&app)).await;
    assert_eq!(stranger.status, StatusCode::UNAUTHORIZED);
    assert_eq!(stranger.code(), "unknown_device");
    let denial = last_denial(&app, AuditAction::DeviceCheckIn).await;
    assert_eq!(denial.reason, Some(ReasonCategory::UnknownDevice));

    // Oversized body.
    let huge = vec![b' '; 1024 * 1024 + 1];
    let response = app
        .send(device.request(
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
    let device = Device::new();
    let token = token(&app, 2).await;
    let mut responses = Vec::new();
    let enroll = device.enroll(&app, &token, protected(&app)).await;
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
    let other = Device::new();
    let second = other.enroll(&app, &token, protected(&app)).await;
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

backend_tests!(
    enrollment_happy_path,
    enrollment_tokens_expire_run_out_and_must_match,
    signed_request_failures_are_refused_and_audited,
    three_reports_give_three_states_and_changes_are_audited,
    revocation_refuses_the_next_check_in,
    handles_are_stable_distinct_and_the_key_is_never_stored,
    eligibility_is_decided_from_commands_record_and_audited,
    eligibility_refuses_bad_requests_and_changes_nothing,
    lifecycle_follows_the_table_with_approvals_and_audit,
    lifecycle_transition_table_is_the_only_way,
);

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
        deny("missing_input")
    );
    assert_eq!(
        decision(&app, &handle, "ota", None).await,
        deny("missing_input")
    );
    assert_eq!(
        decision(&app, &handle, "enroll", None).await,
        deny("already_enrolled")
    );
    let stranger = DeviceHandle::from_digest(&[7; 20]).to_string();
    assert_eq!(
        decision(&app, &stranger, "network", None).await,
        deny("missing_input")
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
    assert_eq!(decisions.len(), 13);
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

async fn lifecycle(app: &TestApp, admin: &support::Admin, handle: &str, action: &str) -> Response {
    app.call(
        Method::POST,
        &paths::fill(paths::DEVICE_LIFECYCLE, &[handle]),
        Some(admin),
        Some(admin.pin),
        Some(json!({"action": action, "justification": "incident 42: lost phone"})),
    )
    .await
}

async fn approve(app: &TestApp, admin: &support::Admin, approval: &str) -> Response {
    app.call(
        Method::POST,
        &paths::fill(paths::APPROVAL_APPROVE, &[approval]),
        Some(admin),
        Some(admin.pin),
        None,
    )
    .await
}

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
