//! Issue 19: a password someone else chose (the bootstrap owner's, `users create`) must be
//! changed at first login, and refusals say what to do next (tries left before the PIN locks,
//! the unlock command, the role a route needs), on SQLite and PostgreSQL.

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
use enigm_identity::{Password, Pin};
use enigm_server::bootstrap::{BootstrapCredentials, create_owner};
use enigm_test_support::{Backend, backend_tests};
use enigm_types::{AuditAction, Outcome, ReasonCategory, Username};
use serde_json::json;
use support::{Admin, INITIAL_PASSWORD, OWNER_PIN, PASSWORD, TestApp};

backend_tests!(
    created_accounts_must_change_their_password_before_anything_else,
    a_bootstrap_owner_must_change_the_generated_password,
    pin_refusals_say_how_many_tries_remain_and_how_to_unlock,
    a_forbidden_route_names_the_role_it_needs
);

async fn created_accounts_must_change_their_password_before_anything_else(backend: Backend) {
    let app = TestApp::new(backend).await;
    let created = app
        .call(
            Method::POST,
            paths::USERS,
            Some(&app.owner),
            Some(OWNER_PIN),
            Some(json!({"username": "bob", "password": INITIAL_PASSWORD})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["password_change_required"], true);

    let login = app.try_login("bob", INITIAL_PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(login.body["account"]["password_change_required"], true);
    let bob = Admin {
        id: created.body["id"].as_str().unwrap().parse().unwrap(),
        username: "bob".into(),
        token: login.body["token"].as_str().unwrap().to_owned(),
        pin: "",
    };

    // Everything but whoami, the password change and logout is refused, with the command.
    for path in [paths::USERS, paths::DEVICES, paths::OWN_SESSIONS] {
        let refused = app.get(path, &bob).await;
        assert_eq!(
            (refused.status, refused.code()),
            (StatusCode::FORBIDDEN, "password_change_required"),
            "{path}"
        );
        assert!(
            refused.body["message"]
                .as_str()
                .unwrap()
                .ends_with("run `enigm admin password change`"),
            "{:?}",
            refused.body
        );
    }
    let whoami = app.get(paths::WHOAMI, &bob).await;
    assert_eq!(whoami.status, StatusCode::OK);
    assert_eq!(whoami.body["password_change_required"], true);
    let denial = app
        .audit_events()
        .await
        .into_iter()
        .rev()
        .find(|event| event.reason == Some(ReasonCategory::PasswordChangeRequired))
        .expect("the refusal is audited");
    assert_eq!(denial.outcome, Outcome::Denied);
    assert_eq!(denial.action, AuditAction::Authorize);

    // Keeping the password one was given is no change.
    let same = app
        .call(
            Method::PUT,
            paths::PASSWORD,
            Some(&bob),
            None,
            Some(json!({"current_password": INITIAL_PASSWORD, "new_password": INITIAL_PASSWORD})),
        )
        .await;
    assert_eq!(
        (same.status, same.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "weak_password")
    );
    let changed = app
        .call(
            Method::PUT,
            paths::PASSWORD,
            Some(&bob),
            None,
            Some(json!({"current_password": INITIAL_PASSWORD, "new_password": PASSWORD})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{:?}", changed.body);
    let events = app.audit_events().await;
    let change = events
        .iter()
        .rev()
        .find(|event| event.action == AuditAction::AuthPassword)
        .unwrap();
    assert_eq!(change.outcome, Outcome::Success);

    // The same session goes on; a role-less account now meets the role check instead.
    assert_eq!(
        app.get(paths::WHOAMI, &bob).await.body["password_change_required"],
        false
    );
    assert_eq!(
        app.get(paths::OWN_SESSIONS, &bob).await.status,
        StatusCode::OK
    );
    assert_eq!(app.get(paths::USERS, &bob).await.code(), "forbidden");
    let relogin = app.try_login("bob", PASSWORD).await;
    assert_eq!(relogin.body["account"]["password_change_required"], false);

    // Logout stays possible while a change is required.
    app.call(
        Method::POST,
        paths::USERS,
        Some(&app.owner),
        Some(OWNER_PIN),
        Some(json!({"username": "carol", "password": INITIAL_PASSWORD})),
    )
    .await;
    let carol = Admin {
        token: app.login("carol", INITIAL_PASSWORD).await,
        username: "carol".into(),
        ..bob.clone()
    };
    let logout = app
        .call(Method::POST, paths::LOGOUT, Some(&carol), None, None)
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{:?}", logout.body);
}

async fn a_bootstrap_owner_must_change_the_generated_password(backend: Backend) {
    let app = TestApp::new(backend).await;
    let credentials = BootstrapCredentials {
        username: Username::parse("second-owner").unwrap(),
        password: Password::parse("a-generated-bootstrap-password").unwrap(),
        pin: Pin::parse("480276").unwrap(),
    };
    let id = create_owner(&app.state, &credentials).await.unwrap();
    assert!(
        app.store
            .admin_by_id(id)
            .await
            .unwrap()
            .unwrap()
            .password_change_required
    );
    let login = app
        .try_login("second-owner", "a-generated-bootstrap-password")
        .await;
    assert_eq!(login.body["account"]["password_change_required"], true);
    let owner = Admin {
        id,
        username: "second-owner".into(),
        token: login.body["token"].as_str().unwrap().to_owned(),
        pin: "480276",
    };
    assert_eq!(
        app.get(paths::USERS, &owner).await.code(),
        "password_change_required"
    );
    // The owner has a PIN: the change needs it too.
    app.change_password(
        &owner,
        "a-generated-bootstrap-password",
        "the-owners-own-password",
    )
    .await;
    assert_eq!(app.get(paths::USERS, &owner).await.status, StatusCode::OK);
    // The test app's own owner went through the same change.
    assert!(
        !app.store
            .admin_by_id(app.owner.id)
            .await
            .unwrap()
            .unwrap()
            .password_change_required
    );
}

async fn pin_refusals_say_how_many_tries_remain_and_how_to_unlock(backend: Backend) {
    let app = TestApp::new(backend).await;
    let create = |name: &'static str, pin: &'static str| {
        app.call(
            Method::POST,
            paths::USERS,
            Some(&app.owner),
            Some(pin),
            Some(json!({"username": name, "password": INITIAL_PASSWORD})),
        )
    };
    let missing = app
        .call(
            Method::POST,
            paths::USERS,
            Some(&app.owner),
            None,
            Some(json!({"username": "nobody", "password": INITIAL_PASSWORD})),
        )
        .await;
    assert_eq!(missing.code(), "pin_required");
    assert!(
        missing.body["message"]
            .as_str()
            .unwrap()
            .contains("pass --pin-file FILE"),
        "{:?}",
        missing.body
    );
    for (attempt, left) in [(1, "4 tries"), (2, "3 tries"), (3, "2 tries"), (4, "1 try")] {
        let wrong = create("bob", "111111").await;
        assert_eq!(wrong.code(), "pin_invalid", "attempt {attempt}");
        assert_eq!(
            wrong.body["message"],
            format!("wrong critical-operation PIN: {left} left before critical operations lock")
        );
    }
    let locked = create("bob", "111111").await;
    assert_eq!(
        (locked.status, locked.code()),
        (StatusCode::LOCKED, "pin_locked")
    );
    assert!(
        locked.body["message"]
            .as_str()
            .unwrap()
            .contains("`enigm admin users unlock-pin USER`"),
        "{:?}",
        locked.body
    );
}

async fn a_forbidden_route_names_the_role_it_needs(backend: Backend) {
    let app = TestApp::new(backend).await;
    let nobody = app.admin_with_roles("nobody", &[]).await;
    let refused = app.get(paths::USERS, &nobody).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let message = refused.body["message"].as_str().unwrap();
    assert!(
        message.starts_with("your roles do not allow `users.list`, which needs the role "),
        "{message}"
    );
    assert!(message.contains("owner"), "{message}");
    assert!(
        message.ends_with("`enigm admin roles grant USER ROLE --justification TEXT`"),
        "{message}"
    );
}
