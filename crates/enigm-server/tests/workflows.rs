//! Command's administrator workflows through the real router, against SQLite and PostgreSQL:
//! login, sessions, PIN, TOTP, throttling, users, roles, approvals and their audit trail.

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
use enigm_types::{Actor, AuditAction, AuditTarget, Clock as _, Outcome, ReasonCategory, Role};
use serde_json::{Value, json};
use support::{OWNER_PASSWORD, PASSWORD, TestApp};

fn user_path(template: &str, id: impl ToString) -> String {
    paths::fill(template, &[&id.to_string()])
}

async fn login_whoami_logout(backend: Backend) {
    let app = TestApp::new(backend).await;
    let me = app.get(paths::WHOAMI, &app.owner).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["username"], "owner");
    assert_eq!(me.body["roles"], json!(["owner"]));
    assert_eq!(me.body["pin_set"], true);
    for secret_field in ["password_hash", "pin_hash", "totp_sealed"] {
        assert!(me.body.get(secret_field).is_none(), "{secret_field} leaked");
    }

    let wrong = app.try_login("owner", "not-the-password").await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );
    let unknown = app.try_login("nobody", "whatever-password").await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );

    let logout = app
        .call(Method::POST, paths::LOGOUT, Some(&app.owner), None, None)
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    let after = app.get(paths::WHOAMI, &app.owner).await;
    assert_eq!(
        (after.status, after.code()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );

    let events = app.audit_events().await;
    let logins: Vec<_> = events
        .iter()
        .filter(|event| event.action == AuditAction::AuthLogin)
        .collect();
    assert!(logins.iter().any(
        |event| event.outcome == Outcome::Success && event.actor == Actor::Admin(app.owner.id)
    ));
    // A failed login with an unknown username records no username, only that it was anonymous.
    assert!(
        logins
            .iter()
            .any(|event| event.outcome == Outcome::Denied && event.actor == Actor::Anonymous)
    );
}

async fn sessions_end_after_six_hours_and_when_idle(backend: Backend) {
    let app = TestApp::new(backend).await;
    // Active every 20 minutes: alive at 6 h - 1 s, refused at 6 h + 1 s.
    let six_hours = Duration::from_secs(6 * 3600);
    let mut elapsed = Duration::ZERO;
    while elapsed + Duration::from_secs(20 * 60) < six_hours {
        app.clock.advance(Duration::from_secs(20 * 60));
        elapsed += Duration::from_secs(20 * 60);
        assert_eq!(
            app.get(paths::WHOAMI, &app.owner).await.status,
            StatusCode::OK
        );
    }
    app.clock
        .advance(six_hours - elapsed - Duration::from_secs(1));
    assert_eq!(
        app.get(paths::WHOAMI, &app.owner).await.status,
        StatusCode::OK,
        "at 6 h - 1 s"
    );
    app.clock.advance(Duration::from_secs(2));
    let expired = app.get(paths::WHOAMI, &app.owner).await;
    assert_eq!(
        (expired.status, expired.code()),
        (StatusCode::UNAUTHORIZED, "session_expired"),
        "at 6 h + 1 s"
    );

    let token = app.login("owner", OWNER_PASSWORD).await;
    let owner = support::Admin {
        token,
        ..app.owner.clone()
    };
    app.clock.advance(Duration::from_secs(31 * 60));
    let idle = app.get(paths::WHOAMI, &owner).await;
    assert_eq!(idle.code(), "session_expired", "idle for 31 minutes");
    assert!(
        app.audit_events()
            .await
            .iter()
            .any(|event| event.action == AuditAction::AuthSession
                && event.reason == Some(ReasonCategory::SessionExpired))
    );
}

async fn sessions_are_listed_and_closed(backend: Backend) {
    let app = TestApp::new(backend).await;
    let second = support::Admin {
        token: app.login("owner", OWNER_PASSWORD).await,
        ..app.owner.clone()
    };
    let own = app.get(paths::OWN_SESSIONS, &app.owner).await;
    let sessions = own.body.as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(
        sessions
            .iter()
            .filter(|session| session["current"] == true)
            .count(),
        1
    );
    let other_id = sessions
        .iter()
        .find(|session| session["current"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let closed = app
        .call(
            Method::DELETE,
            &user_path(paths::OWN_SESSION, &other_id),
            Some(&app.owner),
            None,
            None,
        )
        .await;
    assert_eq!(closed.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(paths::WHOAMI, &second).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Security admins see and close anybody's sessions (with their PIN).
    let security = app.admin_with_roles("sec", &[Role::SecurityAdmin]).await;
    let all = app.get(paths::SESSIONS, &security).await;
    let owner_session = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["admin"] == json!(app.owner.id))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = user_path(paths::SESSION, &owner_session);
    let closed = app
        .call(
            Method::DELETE,
            &path,
            Some(&security),
            Some(security.pin),
            None,
        )
        .await;
    assert_eq!(closed.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(paths::WHOAMI, &app.owner).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Closing someone else's session through the self-service route is not possible.
    let mine = app.get(paths::OWN_SESSIONS, &security).await;
    let sec_session = mine.body[0]["id"].as_str().unwrap().to_owned();
    let fresh_owner = support::Admin {
        token: app.login("owner", OWNER_PASSWORD).await,
        ..app.owner.clone()
    };
    let foreign = app
        .call(
            Method::DELETE,
            &user_path(paths::OWN_SESSION, &sec_session),
            Some(&fresh_owner),
            None,
            None,
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
}

async fn login_is_throttled(backend: Backend) {
    let app = TestApp::new(backend).await;
    for attempt in 1..=5 {
        let response = app
            .try_login("owner", format!("wrong-guess-{attempt}"))
            .await;
        assert_eq!(response.code(), "invalid_credentials", "attempt {attempt}");
    }
    let blocked = app.try_login("owner", "wrong-guess-6").await;
    assert_eq!(
        blocked.code(),
        "invalid_credentials",
        "the sixth failure starts the back-off"
    );
    // Even the right password is refused during the back-off.
    let throttled = app.try_login("owner", OWNER_PASSWORD).await;
    assert_eq!(
        (throttled.status, throttled.code()),
        (StatusCode::TOO_MANY_REQUESTS, "throttled")
    );
    assert!(throttled.headers.get("retry-after").is_some());
    app.clock.advance(Duration::from_secs(60));
    assert!(!app.login("owner", OWNER_PASSWORD).await.is_empty());
}

async fn login_throttle_counts_failures_at_every_process(backend: Backend) {
    let app = TestApp::new(backend).await;
    let other = app.second_process().await;
    // Three failures here and three at the other process: six, which starts the back-off.
    for attempt in 0..6 {
        let password = format!("wrong-guess-{attempt}");
        let response = if attempt % 2 == 0 {
            app.try_login("owner", &password).await
        } else {
            app.try_login_at(&other, "owner", &password).await
        };
        assert_eq!(response.code(), "invalid_credentials", "attempt {attempt}");
    }
    for response in [
        app.try_login("owner", OWNER_PASSWORD).await,
        app.try_login_at(&other, "owner", OWNER_PASSWORD).await,
    ] {
        assert_eq!(
            (response.status, response.code()),
            (StatusCode::TOO_MANY_REQUESTS, "throttled")
        );
    }
    // The back-off ends for both; a success at one clears the count for both.
    app.clock.advance(Duration::from_secs(60));
    assert_eq!(
        app.try_login_at(&other, "owner", OWNER_PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
    for attempt in 0..5 {
        let response = app.try_login("owner", &format!("again-{attempt}")).await;
        assert_eq!(response.code(), "invalid_credentials", "attempt {attempt}");
    }
    assert_eq!(
        app.try_login("owner", OWNER_PASSWORD).await.status,
        StatusCode::OK
    );
}

async fn pin_locks_after_five_failures(backend: Backend) {
    let app = TestApp::new(backend).await;
    let second_owner = app.admin_with_roles("owner2", &[Role::Owner]).await;
    let users = paths::USERS;
    let body = || Some(json!({"username": "newbie", "password": PASSWORD}));
    // Four failures, then a success, reset the counter.
    for _ in 0..4 {
        let response = app
            .call(
                Method::POST,
                users,
                Some(&app.owner),
                Some("111112"),
                body(),
            )
            .await;
        assert_eq!(response.code(), "pin_invalid");
    }
    let created = app
        .call(
            Method::POST,
            users,
            Some(&app.owner),
            Some(support::OWNER_PIN),
            body(),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    for attempt in 1..=5 {
        let response = app
            .call(
                Method::POST,
                users,
                Some(&app.owner),
                Some("000001"),
                body(),
            )
            .await;
        let expected = if attempt < 5 {
            "pin_invalid"
        } else {
            "pin_locked"
        };
        assert_eq!(response.code(), expected, "wrong PIN #{attempt}");
    }
    // The fifth wrong PIN also closed the account's sessions (spec A.6): the guesser's token
    // is dead, and the account's risk state is raised for the other owners to see.
    let closed = app.get(paths::WHOAMI, &app.owner).await;
    assert_eq!(closed.status, StatusCode::UNAUTHORIZED, "{:?}", closed.body);
    let owner = support::Admin {
        token: app.login(&app.owner.username, OWNER_PASSWORD).await,
        ..app.owner.clone()
    };
    let seen_by_owner2 = app
        .get(&user_path(paths::USER, app.owner.id), &second_owner)
        .await;
    assert_eq!(
        seen_by_owner2.body["at_risk"], true,
        "{:?}",
        seen_by_owner2.body
    );
    assert!(seen_by_owner2.body["risk_raised_at"].is_string());
    let listed = app.get(users, &second_owner).await;
    let listed_owner = listed.body["items"]
        .as_array()
        .or_else(|| listed.body.as_array())
        .and_then(|items| {
            items
                .iter()
                .find(|item| item["id"] == app.owner.id.to_string())
        })
        .cloned();
    assert_eq!(
        listed_owner.map(|item| item["at_risk"].clone()),
        Some(json!(true))
    );
    // The account's own view does not show it (a duress PIN must not be given away).
    let me = app.get(paths::WHOAMI, &owner).await;
    assert_eq!(me.body["at_risk"], false, "{:?}", me.body);
    let correct_but_locked = app
        .call(
            Method::POST,
            users,
            Some(&owner),
            Some(support::OWNER_PIN),
            body(),
        )
        .await;
    assert_eq!(
        (correct_but_locked.status, correct_but_locked.code()),
        (StatusCode::LOCKED, "pin_locked")
    );
    let me = app.get(paths::WHOAMI, &owner).await;
    assert_eq!(me.body["pin_locked"], true);
    // Setting a new PIN does not escape the lock.
    let reset = app
        .call(
            Method::PUT,
            paths::PIN,
            Some(&owner),
            None,
            Some(json!({"current_password": OWNER_PASSWORD, "current_pin": support::OWNER_PIN, "pin": "739164"})),
        )
        .await;
    assert_eq!(reset.code(), "pin_locked");

    // Another owner unlocks it; nobody unlocks themselves.
    let own = app
        .call(
            Method::POST,
            &user_path(paths::USER_PIN_UNLOCK, second_owner.id),
            Some(&second_owner),
            Some(second_owner.pin),
            None,
        )
        .await;
    assert_eq!(own.code(), "self_approval");
    let unlock = app
        .call(
            Method::POST,
            &user_path(paths::USER_PIN_UNLOCK, app.owner.id),
            Some(&second_owner),
            Some(second_owner.pin),
            None,
        )
        .await;
    assert_eq!(unlock.status, StatusCode::OK, "{:?}", unlock.body);
    assert_eq!(unlock.body["pin_locked"], false);
    assert_eq!(
        unlock.body["at_risk"], true,
        "unlocking does not clear the risk state"
    );
    let again = app
        .call(
            Method::POST,
            users,
            Some(&owner),
            Some(support::OWNER_PIN),
            Some(json!({"username": "newbie2", "password": PASSWORD})),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    // Only a later correct PIN clears the risk state.
    let seen_by_owner2 = app
        .get(&user_path(paths::USER, app.owner.id), &second_owner)
        .await;
    assert_eq!(
        seen_by_owner2.body["at_risk"], false,
        "{:?}",
        seen_by_owner2.body
    );
    let events = app.audit_events().await;
    assert!(
        events
            .iter()
            .any(|event| event.action == AuditAction::AuthPinCheck
                && event.reason == Some(ReasonCategory::PinLocked))
    );
    assert!(events.iter().any(
        |event| event.action == AuditAction::UserPinUnlock && event.outcome == Outcome::Success
    ));
    let locked_owner = |event: &&enigm_types::AuditEvent| {
        event.target
            == AuditTarget::Account {
                admin: Some(app.owner.id),
            }
    };
    let raised: Vec<_> = events
        .iter()
        .filter(|event| event.action == AuditAction::AuthRiskRaise)
        .filter(locked_owner)
        .collect();
    assert_eq!(raised.len(), 1, "{raised:#?}");
    assert_eq!(raised[0].reason, Some(ReasonCategory::PinLocked));
    assert!(events.iter().filter(locked_owner).any(|event| {
        event.action == AuditAction::SessionClose && event.reason == Some(ReasonCategory::PinLocked)
    }));
    assert_eq!(
        events
            .iter()
            .filter(|event| event.action == AuditAction::AuthRiskClear)
            .filter(locked_owner)
            .count(),
        1
    );
}

async fn weak_and_malformed_pins_are_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    for (pin, code) in [
        ("123456", "invalid_pin"),
        ("000000", "invalid_pin"),
        ("12345", "invalid_pin"),
        ("12a456", "invalid_pin"),
    ] {
        let response = app
            .call(
                Method::PUT,
                paths::PIN,
                Some(&app.owner),
                None,
                Some(json!({"current_password": OWNER_PASSWORD, "current_pin": support::OWNER_PIN, "pin": pin})),
            )
            .await;
        assert_eq!(
            (response.status, response.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, code),
            "pin {pin}"
        );
    }
    let wrong_password = app
        .call(
            Method::PUT,
            paths::PIN,
            Some(&app.owner),
            None,
            Some(json!({"current_password": "nope-nope-nope", "pin": "739164"})),
        )
        .await;
    assert_eq!(wrong_password.code(), "invalid_credentials");
    // A session and the password are not enough to replace a PIN: the current one is needed.
    for (current_pin, code) in [(None, "pin_required"), (Some("592046"), "pin_invalid")] {
        let mut body = json!({"current_password": OWNER_PASSWORD, "pin": "739164"});
        if let Some(current_pin) = current_pin {
            body["current_pin"] = json!(current_pin);
        }
        let response = app
            .call(Method::PUT, paths::PIN, Some(&app.owner), None, Some(body))
            .await;
        assert_eq!(response.code(), code);
    }
    let ok = app
        .call(
            Method::PUT,
            paths::PIN,
            Some(&app.owner),
            None,
            Some(json!({"current_password": OWNER_PASSWORD, "current_pin": support::OWNER_PIN, "pin": "739164"})),
        )
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    let with_old = app
        .call(
            Method::POST,
            paths::USERS,
            Some(&app.owner),
            Some(support::OWNER_PIN),
            Some(json!({"username": "x-user", "password": PASSWORD})),
        )
        .await;
    assert_eq!(with_old.code(), "pin_invalid");
}

async fn totp_second_factor(backend: Backend) {
    let app = TestApp::new(backend).await;
    let enroll = app
        .call(
            Method::POST,
            paths::TOTP,
            Some(&app.owner),
            None,
            Some(json!({"current_password": OWNER_PASSWORD, "current_pin": support::OWNER_PIN})),
        )
        .await;
    assert_eq!(enroll.status, StatusCode::OK);
    let secret_b32 = enroll.body["secret"].as_str().unwrap();
    assert!(
        enroll.body["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let bytes = data_encoding::BASE32_NOPAD
        .decode(secret_b32.as_bytes())
        .unwrap();
    let secret = enigm_crypto::TotpSecret::from_bytes(&bytes).unwrap();
    // Not required before confirmation.
    assert!(!app.login("owner", OWNER_PASSWORD).await.is_empty());
    let now = app.clock.now().unix_seconds();
    let bad = app
        .call(
            Method::POST,
            paths::TOTP_CONFIRM,
            Some(&app.owner),
            None,
            Some(json!({"current_password": OWNER_PASSWORD, "code": "000000"})),
        )
        .await;
    assert_eq!(bad.code(), "totp_invalid");
    let confirm = app
        .call(
            Method::POST,
            paths::TOTP_CONFIRM,
            Some(&app.owner),
            None,
            Some(json!({"current_password": OWNER_PASSWORD, "code": secret.code_at(now)})),
        )
        .await;
    assert_eq!(confirm.status, StatusCode::NO_CONTENT, "{:?}", confirm.body);

    let login = |totp: Option<String>| {
        let mut body = json!({"username": "owner", "password": OWNER_PASSWORD});
        if let Some(code) = totp {
            body["totp"] = Value::String(code);
        }
        app.call(Method::POST, paths::LOGIN, None, None, Some(body))
    };
    assert_eq!(login(None).await.code(), "totp_required");
    app.clock.advance(Duration::from_secs(30));
    let code = secret.code_at(app.clock.now().unix_seconds());
    assert_eq!(login(Some(code.clone())).await.status, StatusCode::OK);
    assert_eq!(
        login(Some(code)).await.code(),
        "totp_invalid",
        "a code is single-use"
    );
    let again = app
        .call(
            Method::POST,
            paths::TOTP,
            Some(&app.owner),
            None,
            Some(json!({"current_password": OWNER_PASSWORD, "current_pin": support::OWNER_PIN})),
        )
        .await;
    assert_eq!(
        again.status,
        StatusCode::CONFLICT,
        "re-enrolling would drop the second factor"
    );
}

async fn users_are_created_disabled_and_enabled(backend: Backend) {
    let app = TestApp::new(backend).await;
    let created = app
        .call(
            Method::POST,
            paths::USERS,
            Some(&app.owner),
            Some(support::OWNER_PIN),
            Some(json!({"username": "bob", "password": PASSWORD})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["roles"], json!([]));
    let bob_id = created.body["id"].as_str().unwrap().to_owned();
    let duplicate = app
        .call(
            Method::POST,
            paths::USERS,
            Some(&app.owner),
            Some(support::OWNER_PIN),
            Some(json!({"username": "bob", "password": PASSWORD})),
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    for (body, code) in [
        (
            json!({"username": "Bob", "password": PASSWORD}),
            "invalid_username",
        ),
        (
            json!({"username": "carol", "password": "short"}),
            "weak_password",
        ),
        (
            json!({"username": "carol", "password": PASSWORD, "email": "carol@example.org"}),
            "invalid_body",
        ),
    ] {
        let response = app
            .call(
                Method::POST,
                paths::USERS,
                Some(&app.owner),
                Some(support::OWNER_PIN),
                Some(body),
            )
            .await;
        assert_eq!(response.code(), code);
    }

    let bob = support::Admin {
        id: bob_id.parse().unwrap(),
        username: "bob".into(),
        token: app.login("bob", PASSWORD).await,
        pin: "",
    };
    let disable = app
        .call(
            Method::POST,
            &user_path(paths::USER_DISABLE, &bob_id),
            Some(&app.owner),
            Some(support::OWNER_PIN),
            None,
        )
        .await;
    assert_eq!(disable.body["disabled"], true);
    // Disabling closes sessions at once and refuses new logins.
    assert_eq!(
        app.get(paths::WHOAMI, &bob).await.status,
        StatusCode::UNAUTHORIZED
    );
    let login = app.try_login("bob", PASSWORD).await;
    assert_eq!(login.code(), "account_disabled");
    let enable = app
        .call(
            Method::POST,
            &user_path(paths::USER_ENABLE, &bob_id),
            Some(&app.owner),
            Some(support::OWNER_PIN),
            None,
        )
        .await;
    assert_eq!(enable.body["disabled"], false);
    assert!(!app.login("bob", PASSWORD).await.is_empty());

    // The last active owner can neither be disabled nor lose the owner role.
    let security = app.admin_with_roles("sec", &[Role::SecurityAdmin]).await;
    let last = app
        .call(
            Method::POST,
            &user_path(paths::USER_DISABLE, app.owner.id),
            Some(&security),
            Some(security.pin),
            None,
        )
        .await;
    assert_eq!(last.code(), "last_owner");
    let self_disable = app
        .call(
            Method::POST,
            &user_path(paths::USER_DISABLE, app.owner.id),
            Some(&app.owner),
            Some(support::OWNER_PIN),
            None,
        )
        .await;
    assert_eq!(self_disable.status, StatusCode::CONFLICT);
    let revoke = app
        .call(
            Method::DELETE,
            &paths::fill(paths::USER_ROLE, &[&app.owner.id.to_string(), "owner"]),
            Some(&app.owner),
            Some(support::OWNER_PIN),
            None,
        )
        .await;
    assert_eq!(revoke.code(), "last_owner");
    let still = app.get(paths::WHOAMI, &app.owner).await;
    assert_eq!(still.body["roles"], json!(["owner"]));
}

async fn password_change_closes_other_sessions(backend: Backend) {
    let app = TestApp::new(backend).await;
    let other = support::Admin {
        token: app.login("owner", OWNER_PASSWORD).await,
        ..app.owner.clone()
    };
    let change = app.call(Method::PUT, paths::PASSWORD, Some(&app.owner), None, Some(json!({"current_password": OWNER_PASSWORD, "current_pin": support::OWNER_PIN, "new_password": "a-brand-new-passphrase"}))).await;
    assert_eq!(change.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(paths::WHOAMI, &app.owner).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get(paths::WHOAMI, &other).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(
        !app.login("owner", "a-brand-new-passphrase")
            .await
            .is_empty()
    );
}

async fn audit_log_is_readable_filtered_and_its_reading_audited(backend: Backend) {
    let app = TestApp::new(backend).await;
    let auditor = app.admin_with_roles("auditor", &[Role::Auditor]).await;
    let page = app.get("/api/v1/audit/events?limit=2", &auditor).await;
    assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
    assert_eq!(page.body["events"].as_array().unwrap().len(), 2);
    let after = page.body["next_after"].as_i64().unwrap();
    let next = app
        .get(
            &format!("/api/v1/audit/events?after={after}&action=auth.login&outcome=success"),
            &auditor,
        )
        .await;
    let events = next.body["events"].as_array().unwrap();
    assert!(!events.is_empty());
    assert!(
        events
            .iter()
            .all(|event| event["action"] == "auth.login" && event["outcome"] == "success")
    );
    assert!(
        events
            .iter()
            .all(|event| event["seq"].as_i64().unwrap() > after)
    );
    let bad = app.get("/api/v1/audit/events?limit=many", &auditor).await;
    assert_eq!(bad.code(), "invalid_query");
    let unknown = app.get("/api/v1/audit/events?colour=blue", &auditor).await;
    assert_eq!(unknown.code(), "invalid_query");
    let reads = app
        .audit_events()
        .await
        .into_iter()
        .filter(|event| event.action == AuditAction::AuditRead)
        .count();
    assert_eq!(
        reads, 2,
        "each successful read of the audit log is itself audited"
    );
}

async fn audit_table_is_append_only(backend: Backend) {
    use sqlx::Connection as _;
    let app = TestApp::new(backend).await;
    assert!(!app.audit_events().await.is_empty());
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(app.db.url()).await.unwrap();
    for statement in [
        "UPDATE audit_events SET outcome = 'success'",
        "DELETE FROM audit_events",
    ] {
        let result = sqlx::query(statement).execute(&mut conn).await;
        assert!(result.is_err(), "`{statement}` must be refused");
    }
    let before = app.audit_events().await.len();
    assert!(before > 0);
}

async fn secrets_never_reach_audit_or_responses(backend: Backend) {
    let app = TestApp::new(backend).await;
    let created = app
        .call(
            Method::POST,
            paths::USERS,
            Some(&app.owner),
            Some(support::OWNER_PIN),
            Some(json!({"username": "dave", "password": "dave-secret-passphrase-7"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let token = app.login("dave", "dave-secret-passphrase-7").await;
    let _ = app.try_login("dave", "typo-secret-passphrase-8").await;
    let all = serde_json::to_string(&app.audit_events().await).unwrap();
    for secret in [
        "dave-secret-passphrase-7",
        "typo-secret-passphrase-8",
        token.as_str(),
        support::OWNER_PIN,
        OWNER_PASSWORD,
    ] {
        assert!(!all.contains(secret), "audit log contains a secret");
    }
    if backend == Backend::Sqlite {
        // The whole database file (and its WAL) holds no plaintext password, PIN or token.
        let path = app
            .db
            .url()
            .trim_start_matches("sqlite://")
            .split('?')
            .next()
            .unwrap()
            .to_owned();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
        let text = String::from_utf8_lossy(&bytes);
        for secret in ["dave-secret-passphrase-7", token.as_str(), OWNER_PASSWORD] {
            assert!(!text.contains(secret), "database holds a plaintext secret");
        }
    }
}

/// Spec A.7: the duress PIN, entered instead of the PIN, appears to succeed, does nothing, and
/// raises the account's risk state and a Critical security event; only a later correct PIN
/// clears the risk state.
async fn duress_pin_appears_to_succeed_and_does_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let alice = app.admin_with_roles("alice", &[Role::Owner]).await;
    const DURESS: &str = "583920";
    let set_duress = |current_pin: &str, duress: Value| {
        app.call(
            Method::PUT,
            paths::DURESS_PIN,
            Some(&alice),
            None,
            Some(json!({"current_password": PASSWORD, "current_pin": current_pin, "duress_pin": duress})),
        )
    };
    // It follows the PIN's rules, differs from the PIN, and needs the PIN in force.
    for (current_pin, duress, code) in [
        (alice.pin, json!(alice.pin), "invalid_pin"),
        (alice.pin, json!("111111"), "invalid_pin"),
        (alice.pin, json!("12345"), "invalid_pin"),
        ("000001", json!(DURESS), "pin_invalid"),
    ] {
        let refused = set_duress(current_pin, duress.clone()).await;
        assert_eq!(refused.code(), code, "{duress}: {:?}", refused.body);
    }
    let set = set_duress(alice.pin, json!(DURESS)).await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{:?}", set.body);

    let create_under_duress = || {
        app.call(
            Method::POST,
            paths::USERS,
            Some(&alice),
            Some(DURESS),
            Some(json!({"username": "coerced", "password": PASSWORD})),
        )
    };
    // A critical operation under the duress PIN: an accepted-looking answer, nothing done.
    let users_before = app
        .get(paths::USERS, &app.owner)
        .await
        .body
        .as_array()
        .map(Vec::len);
    assert!(users_before.is_some());
    let decoy = create_under_duress().await;
    assert_eq!(decoy.status, StatusCode::ACCEPTED, "{:?}", decoy.body);
    assert_eq!(decoy.body, json!({"status": "accepted"}));
    assert_eq!(
        app.get(paths::USERS, &app.owner)
            .await
            .body
            .as_array()
            .map(Vec::len),
        users_before
    );
    // The same for a credential change: the password stays.
    let decoy = app
        .call(
            Method::PUT,
            paths::PASSWORD,
            Some(&alice),
            None,
            Some(json!({"current_password": PASSWORD, "current_pin": DURESS, "new_password": "coerced-new-password"})),
        )
        .await;
    assert_eq!(decoy.status, StatusCode::ACCEPTED, "{:?}", decoy.body);
    assert_eq!(
        app.try_login("alice", "coerced-new-password").await.code(),
        "invalid_credentials"
    );

    // The session goes on as if nothing happened; its own view shows nothing.
    let me = app.get(paths::WHOAMI, &alice).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(
        (me.body["at_risk"].clone(), me.body["pin_locked"].clone()),
        (json!(false), json!(false))
    );
    // The other owners see the risk state; the audit log has the Critical event.
    let seen = app.get(&user_path(paths::USER, alice.id), &app.owner).await;
    assert_eq!(seen.body["at_risk"], true, "{:?}", seen.body);
    let events = app.audit_events().await;
    let alice_account = AuditTarget::Account {
        admin: Some(alice.id),
    };
    let duress_events = events
        .iter()
        .filter(|event| event.action == AuditAction::AuthDuressPin && event.target == alice_account)
        .count();
    assert_eq!(duress_events, 2);
    assert!(
        events
            .iter()
            .any(|event| event.action == AuditAction::AuthRiskRaise
                && event.target == alice_account
                && event.reason == Some(ReasonCategory::DuressPin))
    );
    assert!(
        !events
            .iter()
            .any(|event| event.action == AuditAction::UserCreate
                && event.actor == Actor::Admin(alice.id))
    );

    // The PIN itself works and clears the risk state.
    let created = app
        .call(
            Method::POST,
            paths::USERS,
            Some(&alice),
            Some(alice.pin),
            Some(json!({"username": "real-one", "password": PASSWORD})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let seen = app.get(&user_path(paths::USER, alice.id), &app.owner).await;
    assert_eq!(seen.body["at_risk"], false, "{:?}", seen.body);

    // Removed, the former duress PIN is just a wrong PIN.
    let removed = set_duress(alice.pin, Value::Null).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{:?}", removed.body);
    let wrong = create_under_duress().await;
    assert_eq!(wrong.code(), "pin_invalid", "{:?}", wrong.body);
}

backend_tests!(
    duress_pin_appears_to_succeed_and_does_nothing,
    login_whoami_logout,
    sessions_end_after_six_hours_and_when_idle,
    sessions_are_listed_and_closed,
    login_is_throttled,
    login_throttle_counts_failures_at_every_process,
    pin_locks_after_five_failures,
    weak_and_malformed_pins_are_refused,
    totp_second_factor,
    users_are_created_disabled_and_enabled,
    password_change_closes_other_sessions,
    audit_log_is_readable_filtered_and_its_reading_audited,
    audit_table_is_append_only,
    secrets_never_reach_audit_or_responses,
);
