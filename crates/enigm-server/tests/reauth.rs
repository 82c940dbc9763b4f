//! Credential changes need more than a session (issue 18, items 1, 2 and 10), through the real
//! router against SQLite and PostgreSQL: re-authentication with the password (and the PIN),
//! under the login throttle; the ways back from a lost or seized TOTP; the PIN counting only
//! wrong PINs, whatever runs beside them; and approval rules naming only roles that decide.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use enigm_api::paths;
use enigm_crypto::TotpSecret;
use enigm_test_support::{Backend, backend_tests};
use enigm_types::{AuditAction, Clock as _, Outcome, ReasonCategory, Role};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use support::{OWNER_PASSWORD, OWNER_PIN, TestApp};
use tokio::sync::Barrier;
use tower::ServiceExt as _;

fn user_path(template: &str, id: impl ToString) -> String {
    paths::fill(template, &[&id.to_string()])
}

/// Enrolls and confirms a TOTP for the owner; answers its secret.
async fn owner_with_totp(app: &TestApp) -> TotpSecret {
    let enroll = app
        .call(
            Method::POST,
            paths::TOTP,
            Some(&app.owner),
            None,
            Some(json!({"current_password": OWNER_PASSWORD, "current_pin": OWNER_PIN})),
        )
        .await;
    assert_eq!(enroll.status, StatusCode::OK, "{:?}", enroll.body);
    let bytes = data_encoding::BASE32_NOPAD
        .decode(enroll.body["secret"].as_str().unwrap().as_bytes())
        .unwrap();
    let secret = TotpSecret::from_bytes(&bytes).unwrap();
    let code = secret.code_at(app.clock.now().unix_seconds());
    let confirm = app
        .call(
            Method::POST,
            paths::TOTP_CONFIRM,
            Some(&app.owner),
            None,
            Some(json!({"current_password": OWNER_PASSWORD, "code": code})),
        )
        .await;
    assert_eq!(confirm.status, StatusCode::NO_CONTENT, "{:?}", confirm.body);
    // The next code is a later time step: the one just used is spent.
    app.clock.advance(Duration::from_secs(30));
    secret
}

async fn login_with(app: &TestApp, totp: Option<String>) -> support::Response {
    let mut body = json!({"username": "owner", "password": OWNER_PASSWORD});
    if let Some(code) = totp {
        body["totp"] = Value::String(code);
    }
    app.call(Method::POST, paths::LOGIN, None, None, Some(body))
        .await
}

async fn stolen_token_cannot_enroll_totp(backend: Backend) {
    let app = TestApp::new(backend).await;
    // Whoever holds the token but not the credentials gets nowhere, and nothing changes.
    let bare = app
        .call(Method::POST, paths::TOTP, Some(&app.owner), None, None)
        .await;
    assert!(bare.status.is_client_error(), "{:?}", bare.status);
    assert_ne!(bare.status, StatusCode::OK);
    for (body, code) in [
        (
            json!({"current_password": "a-guessed-password"}),
            "invalid_credentials",
        ),
        (json!({"current_password": OWNER_PASSWORD}), "pin_required"),
        (
            json!({"current_password": OWNER_PASSWORD, "current_pin": "592046"}),
            "pin_invalid",
        ),
    ] {
        let response = app
            .call(
                Method::POST,
                paths::TOTP,
                Some(&app.owner),
                None,
                Some(body),
            )
            .await;
        assert_eq!(
            (response.status, response.code()),
            (StatusCode::FORBIDDEN, code)
        );
    }
    let confirm = app
        .call(
            Method::POST,
            paths::TOTP_CONFIRM,
            Some(&app.owner),
            None,
            Some(json!({"code": "123456"})),
        )
        .await;
    assert!(confirm.status.is_client_error());
    assert_eq!(
        login_with(&app, None).await.status,
        StatusCode::OK,
        "the owner still logs in with the password alone"
    );
    let me = app.get(paths::WHOAMI, &app.owner).await;
    assert_eq!(me.body["totp_enabled"], false);
    let denial = support::last_denial(&app, AuditAction::AuthTotpEnroll).await;
    assert_eq!(denial.reason, Some(ReasonCategory::InvalidCredentials));

    // With the password and the PIN the owner enrolls; a confirmation needs the password too.
    let secret = owner_with_totp(&app).await;
    assert_eq!(login_with(&app, None).await.code(), "totp_required");
    let code = secret.code_at(app.clock.now().unix_seconds());
    assert_eq!(login_with(&app, Some(code)).await.status, StatusCode::OK);
    // Enabled TOTP is not replaced by enrolling again, even with every credential.
    let again = app
        .call(
            Method::POST,
            paths::TOTP,
            Some(&app.owner),
            None,
            Some(json!({"current_password": OWNER_PASSWORD, "current_pin": OWNER_PIN})),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
}

/// Sends up to 100 wrong current passwords through `path` with `body(guess)`; answers how many
/// were answered 403 before the first 429, after checking that every later one is a 429.
async fn guess_until_throttled(
    app: &TestApp,
    method: Method,
    path: &str,
    body: impl Fn(&str) -> Value,
) -> usize {
    let mut refused = 0;
    let mut throttled = 0;
    for attempt in 0..100 {
        let guess = format!("wrong-guess-number-{attempt}");
        let response = app
            .call(
                method.clone(),
                path,
                Some(&app.owner),
                None,
                Some(body(&guess)),
            )
            .await;
        match (response.status, response.code()) {
            (StatusCode::FORBIDDEN, "invalid_credentials") if throttled == 0 => refused += 1,
            (StatusCode::TOO_MANY_REQUESTS, "throttled") => {
                assert!(response.headers.get("retry-after").is_some());
                throttled += 1;
            }
            other => panic!("guess {attempt} through {path}: {other:?}"),
        }
    }
    assert!(
        throttled > 0,
        "100 guesses through {path} were never throttled"
    );
    refused
}

async fn password_guessing_through_credential_changes_is_throttled(backend: Backend) {
    let app = TestApp::new(backend).await;
    let change = |current: &str| json!({"current_password": current, "current_pin": OWNER_PIN, "new_password": "a-brand-new-passphrase"});
    let refused = guess_until_throttled(&app, Method::PUT, paths::PASSWORD, change).await;
    assert!(refused <= 6, "{refused} guesses before the back-off");
    // The right password is refused too while the back-off runs, here and at login: the two
    // share the account's throttle.
    let right = app
        .call(
            Method::PUT,
            paths::PASSWORD,
            Some(&app.owner),
            None,
            Some(change(OWNER_PASSWORD)),
        )
        .await;
    assert_eq!(
        (right.status, right.code()),
        (StatusCode::TOO_MANY_REQUESTS, "throttled")
    );
    assert_eq!(
        login_with(&app, None).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let events = app.audit_events().await;
    assert!(
        events
            .iter()
            .any(|event| event.action == AuditAction::AuthPassword
                && event.outcome == Outcome::Denied
                && event.reason == Some(ReasonCategory::Throttled))
    );
    assert!(
        events
            .iter()
            .any(|event| event.action == AuditAction::AuthPassword
                && event.reason == Some(ReasonCategory::InvalidCredentials))
    );
    // Once the back-off has run out, the right password goes through.
    app.clock.advance(Duration::from_secs(120));
    let right = app
        .call(
            Method::PUT,
            paths::PASSWORD,
            Some(&app.owner),
            None,
            Some(change(OWNER_PASSWORD)),
        )
        .await;
    assert_eq!(right.status, StatusCode::NO_CONTENT, "{:?}", right.body);
}

async fn password_guessing_through_pin_change_is_throttled(backend: Backend) {
    let app = TestApp::new(backend).await;
    let set_pin = |current: &str| json!({"current_password": current, "current_pin": OWNER_PIN, "pin": "739164"});
    let refused = guess_until_throttled(&app, Method::PUT, paths::PIN, set_pin).await;
    assert!(refused <= 6, "{refused} guesses before the back-off");
    let right = app
        .call(
            Method::PUT,
            paths::PIN,
            Some(&app.owner),
            None,
            Some(set_pin(OWNER_PASSWORD)),
        )
        .await;
    assert_eq!(
        (right.status, right.code()),
        (StatusCode::TOO_MANY_REQUESTS, "throttled")
    );
    app.clock.advance(Duration::from_secs(120));
    let right = app
        .call(
            Method::PUT,
            paths::PIN,
            Some(&app.owner),
            None,
            Some(set_pin(OWNER_PASSWORD)),
        )
        .await;
    assert_eq!(right.status, StatusCode::NO_CONTENT, "{:?}", right.body);
}

async fn wrong_pins_on_credential_changes_share_the_throttle(backend: Backend) {
    let app = TestApp::new(backend).await;
    // Three wrong passwords and three wrong PINs: six failures, which start the back-off.
    for attempt in 0..3 {
        let body = json!({"current_password": format!("wrong-{attempt}-password"), "current_pin": OWNER_PIN, "new_password": "a-brand-new-passphrase"});
        let response = app
            .call(
                Method::PUT,
                paths::PASSWORD,
                Some(&app.owner),
                None,
                Some(body),
            )
            .await;
        assert_eq!(response.code(), "invalid_credentials");
    }
    for pin in ["592046", "592047", "592048"] {
        let body = json!({"current_password": OWNER_PASSWORD, "current_pin": pin, "new_password": "a-brand-new-passphrase"});
        let response = app
            .call(
                Method::PUT,
                paths::PASSWORD,
                Some(&app.owner),
                None,
                Some(body),
            )
            .await;
        assert_eq!(response.code(), "pin_invalid");
    }
    let body = json!({"current_password": OWNER_PASSWORD, "current_pin": OWNER_PIN, "new_password": "a-brand-new-passphrase"});
    let throttled = app
        .call(
            Method::PUT,
            paths::PASSWORD,
            Some(&app.owner),
            None,
            Some(body.clone()),
        )
        .await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    app.clock.advance(Duration::from_secs(120));
    let done = app
        .call(
            Method::PUT,
            paths::PASSWORD,
            Some(&app.owner),
            None,
            Some(body),
        )
        .await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{:?}", done.body);
}

async fn own_totp_is_removed_with_password_pin_and_code(backend: Backend) {
    let app = TestApp::new(backend).await;
    let secret = owner_with_totp(&app).await;
    let code = || secret.code_at(app.clock.now().unix_seconds());
    let remove = |password: &str, pin: &str, code: String| {
        app.call(
            Method::POST,
            paths::TOTP_REMOVE,
            Some(&app.owner),
            None,
            Some(json!({"current_password": password, "current_pin": pin, "code": code})),
        )
    };
    let wrong_code = remove(OWNER_PASSWORD, OWNER_PIN, "000000".into()).await;
    assert_eq!(
        (wrong_code.status, wrong_code.code()),
        (StatusCode::FORBIDDEN, "totp_invalid")
    );
    assert_eq!(
        remove(OWNER_PASSWORD, "592046", code()).await.code(),
        "pin_invalid"
    );
    assert_eq!(
        remove("not-the-password-at-all", OWNER_PIN, code())
            .await
            .code(),
        "invalid_credentials"
    );
    let missing_code = app
        .call(
            Method::POST,
            paths::TOTP_REMOVE,
            Some(&app.owner),
            None,
            Some(json!({"current_password": OWNER_PASSWORD, "current_pin": OWNER_PIN})),
        )
        .await;
    assert!(missing_code.status.is_client_error());
    assert_eq!(login_with(&app, None).await.code(), "totp_required");

    let removed = remove(OWNER_PASSWORD, OWNER_PIN, code()).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{:?}", removed.body);
    assert_eq!(login_with(&app, None).await.status, StatusCode::OK);
    let me = app.get(paths::WHOAMI, &app.owner).await;
    assert_eq!(me.body["totp_enabled"], false);
    assert!(
        app.audit_events()
            .await
            .iter()
            .any(|event| event.action == AuditAction::AuthTotpRemove
                && event.outcome == Outcome::Success)
    );
    // A new one can be enrolled afterwards: removing is how TOTP is replaced.
    owner_with_totp(&app).await;
}

async fn another_owner_resets_a_seized_totp_through_an_approval(backend: Backend) {
    let app = TestApp::new(backend).await;
    let owner2 = app.admin_with_roles("owner2", &[Role::Owner]).await;
    let security = app
        .admin_with_roles("security", &[Role::SecurityAdmin])
        .await;
    owner_with_totp(&app).await;
    let reset_path = user_path(paths::USER_TOTP_RESET, app.owner.id);
    let body = json!({"justification": "phone seized at the border, ticket 1812"});

    // Only owners ask, with their PIN; nobody asks for themselves.
    let by_security = app
        .call(
            Method::POST,
            &reset_path,
            Some(&security),
            Some(security.pin),
            Some(body.clone()),
        )
        .await;
    assert_eq!(by_security.code(), "forbidden");
    let own = app
        .call(
            Method::POST,
            &user_path(paths::USER_TOTP_RESET, owner2.id),
            Some(&owner2),
            Some(owner2.pin),
            Some(body.clone()),
        )
        .await;
    assert_eq!(own.code(), "self_approval");
    let without_totp = app
        .call(
            Method::POST,
            &user_path(paths::USER_TOTP_RESET, security.id),
            Some(&owner2),
            Some(owner2.pin),
            Some(body.clone()),
        )
        .await;
    assert_eq!(without_totp.status, StatusCode::CONFLICT);

    let requested = app
        .call(
            Method::POST,
            &reset_path,
            Some(&owner2),
            Some(owner2.pin),
            Some(body),
        )
        .await;
    assert_eq!(
        requested.status,
        StatusCode::ACCEPTED,
        "{:?}",
        requested.body
    );
    assert_eq!(requested.body["state"], "pending");
    let approval = requested.body["id"].as_str().unwrap().to_owned();

    // Neither the requester nor the account it concerns (whose session may be the thief's)
    // approves it.
    for admin in [&owner2, &app.owner] {
        let response = support::approve(&app, admin, &approval).await;
        assert_eq!(response.code(), "self_approval", "{}", admin.username);
    }
    assert_eq!(login_with(&app, None).await.code(), "totp_required");
    let approved = support::approve(&app, &security, &approval).await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    assert_eq!(approved.body["state"], "executed");

    // The second factor is gone, and so are the account's sessions (the thief's included).
    assert_eq!(
        app.get(paths::WHOAMI, &app.owner).await.status,
        StatusCode::UNAUTHORIZED
    );
    let login = login_with(&app, None).await;
    assert_eq!(login.status, StatusCode::OK, "{:?}", login.body);
    assert_eq!(login.body["account"]["totp_enabled"], false);
    let events = app.audit_events().await;
    let reset = events
        .iter()
        .find(|event| event.action == AuditAction::UserTotpReset)
        .expect("the reset is audited");
    assert_eq!(reset.outcome, Outcome::Success);
    assert_eq!(reset.actor, enigm_types::Actor::Admin(security.id));
    assert!(
        events
            .iter()
            .any(|event| event.action == AuditAction::ApprovalExecute)
    );
}

/// A user creation with `pin`, sent on its own task at `router`.
/// The request waits at `start` until all its siblings are ready, so they reach Command at once.
fn spawn_create(
    router: &Router,
    start: &Arc<Barrier>,
    admin: &support::Admin,
    pin: &str,
    username: String,
) -> tokio::task::JoinHandle<(StatusCode, String)> {
    let body = json!({"username": username, "password": support::PASSWORD});
    let request = Request::builder()
        .method(Method::POST)
        .uri(paths::USERS)
        .header("authorization", format!("Bearer {}", admin.token))
        .header(enigm_api::PIN_HEADER, pin)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let router = router.clone();
    let start = Arc::clone(start);
    tokio::spawn(async move {
        start.wait().await;
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let code = body["code"].as_str().unwrap_or_default().to_owned();
        (status, code)
    })
}

async fn pin_failures(app: &TestApp) -> u32 {
    app.store
        .admin_by_id(app.owner.id)
        .await
        .unwrap()
        .unwrap()
        .pin_failures
}

async fn right_pin_sent_concurrently_never_locks(backend: Backend) {
    let app = TestApp::new(backend).await;
    let other = app.second_process().await;
    // 32 critical requests at once with the right PIN, spread over two Command processes.
    let start = Arc::new(Barrier::new(32));
    let tasks: Vec<_> = (0..32)
        .map(|n| {
            let router = if n % 2 == 0 { &app.router } else { &other };
            spawn_create(
                router,
                &start,
                &app.owner,
                OWNER_PIN,
                format!("parallel-{n}"),
            )
        })
        .collect();
    for task in tasks {
        let (status, code) = task.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{code}");
    }
    assert_eq!(pin_failures(&app).await, 0);
    let me = app.get(paths::WHOAMI, &app.owner).await;
    assert_eq!(me.body["pin_locked"], false);
}

async fn wrong_pins_sent_concurrently_still_lock(backend: Backend) {
    let app = TestApp::new(backend).await;
    let other = app.second_process().await;
    // A right PIN runs beside the wrong ones and resets nothing it should not: at most five
    // wrong PINs are ever compared before the lock.
    let start = Arc::new(Barrier::new(24));
    let tasks: Vec<_> = (0..24)
        .map(|n| {
            let router = if n % 2 == 0 { &app.router } else { &other };
            spawn_create(router, &start, &app.owner, "592046", format!("guess-{n}"))
        })
        .collect();
    let mut invalid = 0;
    let mut locked = 0;
    for task in tasks {
        match task.await.unwrap() {
            (StatusCode::FORBIDDEN, code) if code == "pin_invalid" => invalid += 1,
            (StatusCode::LOCKED, code) if code == "pin_locked" => locked += 1,
            // The lock also closes the account's sessions: a guess whose session is checked
            // after that is refused before its PIN is read.
            (StatusCode::UNAUTHORIZED, code) if code == "unauthenticated" => locked += 1,
            other => panic!("wrong PIN answered {other:?}"),
        }
    }
    assert_eq!((invalid, locked), (4, 20));
    assert_eq!(pin_failures(&app).await, 5);
    // The lock closed the session the guesses came from; a new one is still locked.
    let (status, _) = spawn_create(
        &app.router,
        &Arc::new(Barrier::new(1)),
        &app.owner,
        OWNER_PIN,
        "late".into(),
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let owner = support::Admin {
        token: app.login(&app.owner.username, OWNER_PASSWORD).await,
        ..app.owner.clone()
    };
    let (status, code) = spawn_create(
        &app.router,
        &Arc::new(Barrier::new(1)),
        &owner,
        OWNER_PIN,
        "late".into(),
    )
    .await
    .unwrap();
    assert_eq!((status, code.as_str()), (StatusCode::LOCKED, "pin_locked"));
}

async fn approval_rules_name_only_roles_that_decide(backend: Backend) {
    let app = TestApp::new(backend).await;
    let rules = app.get(paths::APPROVAL_RULES, &app.owner).await;
    assert_eq!(rules.status, StatusCode::OK);
    let signing = rules
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|rule| rule["kind"] == "release-signing")
        .unwrap();
    assert_eq!(
        signing["approver_roles"],
        json!(["owner", "security-admin"])
    );
    let path = paths::fill(paths::APPROVAL_RULE, &["release-signing"]);
    for roles in [json!(["owner", "release-manager"]), json!(["auditor"])] {
        let refused = app
            .call(
                Method::PUT,
                &path,
                Some(&app.owner),
                None,
                Some(json!({"required_approvals": 1, "approver_roles": roles, "justification": "let release managers approve"})),
            )
            .await;
        assert_eq!(
            (refused.status, refused.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_rule"),
            "{roles}"
        );
    }
    let accepted = app
        .call(
            Method::PUT,
            &path,
            Some(&app.owner),
            None,
            Some(json!({"required_approvals": 2, "approver_roles": ["owner", "security-admin"], "justification": "two approvers for signing"})),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{:?}", accepted.body);
}

backend_tests!(
    stolen_token_cannot_enroll_totp,
    password_guessing_through_credential_changes_is_throttled,
    password_guessing_through_pin_change_is_throttled,
    wrong_pins_on_credential_changes_share_the_throttle,
    own_totp_is_removed_with_password_pin_and_code,
    another_owner_resets_a_seized_totp_through_an_approval,
    right_pin_sent_concurrently_never_locks,
    wrong_pins_sent_concurrently_still_lock,
    approval_rules_name_only_roles_that_decide,
);
