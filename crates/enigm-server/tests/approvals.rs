//! Multi-admin approvals: separation of duties, exactly-once execution under concurrency,
//! rejection, expiry, the bootstrap window and changes to the approval rules themselves.

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
use enigm_types::{AuditAction, Outcome, ReasonCategory, Role};
use serde_json::{Value, json};
use support::{Admin, PASSWORD, TestApp};

async fn request_grant(app: &TestApp, requester: &Admin, subject: &Admin, role: &str) -> String {
    let response = app
        .call(
            Method::POST,
            &paths::fill(paths::USER_ROLES, &[&subject.id.to_string()]),
            Some(requester),
            None,
            Some(json!({"role": role, "justification": "covers the on-call rotation"})),
        )
        .await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{:?}", response.body);
    assert_eq!(response.body["state"], "pending");
    response.body["id"].as_str().unwrap().to_owned()
}

async fn decide(app: &TestApp, approver: &Admin, approval: &str, verb: &str) -> support::Response {
    let template = if verb == "approve" {
        paths::APPROVAL_APPROVE
    } else {
        paths::APPROVAL_REJECT
    };
    app.call(
        Method::POST,
        &paths::fill(template, &[approval]),
        Some(approver),
        Some(approver.pin),
        None,
    )
    .await
}

async fn roles_of(app: &TestApp, admin: &Admin) -> Value {
    app.get(
        &paths::fill(paths::USER, &[&admin.id.to_string()]),
        &app.owner,
    )
    .await
    .body["roles"]
        .clone()
}

async fn role_grant_needs_another_approver(backend: Backend) {
    let app = TestApp::new(backend).await;
    let security = app.admin_with_roles("sec", &[Role::SecurityAdmin]).await;
    let bob = app.admin_with_roles("bob", &[]).await;
    let auditor = app.admin_with_roles("aud", &[Role::Auditor]).await;
    let approval = request_grant(&app, &app.owner, &bob, "auditor").await;

    let own = decide(&app, &app.owner, &approval, "approve").await;
    assert_eq!(
        (own.status, own.code()),
        (StatusCode::FORBIDDEN, "self_approval")
    );
    let subject = decide(&app, &bob, &approval, "approve").await;
    assert_eq!(
        subject.code(),
        "forbidden",
        "bob holds no approver permission at all"
    );
    let not_approver = decide(&app, &auditor, &approval, "approve").await;
    assert_eq!(not_approver.code(), "forbidden");
    assert_eq!(roles_of(&app, &bob).await, json!([]));

    let approved = decide(&app, &security, &approval, "approve").await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    assert_eq!(approved.body["state"], "executed");
    assert_eq!(approved.body["approvals"], json!([security.id]));
    assert_eq!(roles_of(&app, &bob).await, json!(["auditor"]));
    // The grant takes effect on bob's next request.
    assert_eq!(
        app.get(paths::AUDIT_EVENTS, &bob).await.status,
        StatusCode::OK
    );

    let again = decide(&app, &security, &approval, "approve").await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    let events = app.audit_events().await;
    let grant = events
        .iter()
        .find(|event| event.action == AuditAction::RoleGrant)
        .unwrap();
    assert_eq!(
        grant.change_ref.map(|id| id.to_string()),
        Some(approval.clone())
    );
    assert!(
        events
            .iter()
            .any(|event| event.action == AuditAction::ApprovalApprove
                && event.outcome == Outcome::Denied
                && event.reason == Some(ReasonCategory::SelfApproval))
    );
}

async fn the_subject_of_a_request_cannot_approve_it(backend: Backend) {
    let app = TestApp::new(backend).await;
    let security = app.admin_with_roles("sec", &[Role::SecurityAdmin]).await;
    let approval = request_grant(&app, &app.owner, &security, "owner").await;
    let response = decide(&app, &security, &approval, "approve").await;
    assert_eq!(response.code(), "self_approval");
    assert_eq!(roles_of(&app, &security).await, json!(["security-admin"]));
}

async fn concurrent_approvals_execute_exactly_once(backend: Backend) {
    let app = TestApp::new(backend).await;
    let approvers = [
        app.admin_with_roles("sec-a", &[Role::SecurityAdmin]).await,
        app.admin_with_roles("sec-b", &[Role::SecurityAdmin]).await,
        app.admin_with_roles("sec-c", &[Role::SecurityAdmin]).await,
        app.admin_with_roles("owner-d", &[Role::Owner]).await,
    ];
    let bob = app.admin_with_roles("bob", &[]).await;
    let approval = request_grant(&app, &app.owner, &bob, "device-operator").await;
    // Each decision runs on its own task, so they really race on the two worker threads.
    let path = paths::fill(paths::APPROVAL_APPROVE, &[&approval]);
    let tasks: Vec<_> = approvers
        .iter()
        .map(|approver| app.spawn_call(Method::POST, &path, approver, Some(approver.pin)))
        .collect();
    let mut responses = Vec::new();
    for task in tasks {
        responses.push(task.await.unwrap());
    }
    let executed = responses
        .iter()
        .filter(|response| response.status == StatusCode::OK)
        .count();
    assert_eq!(
        executed,
        1,
        "{:?}",
        responses
            .iter()
            .map(|r| (r.status, r.code().to_owned()))
            .collect::<Vec<_>>()
    );
    assert!(
        responses
            .iter()
            .filter(|r| r.status != StatusCode::OK)
            .all(|r| r.status == StatusCode::CONFLICT)
    );
    let events = app.audit_events().await;
    assert_eq!(
        events
            .iter()
            .filter(|event| event.action == AuditAction::ApprovalExecute)
            .count(),
        1
    );
    assert_eq!(
        events
            .iter()
            .filter(|event| event.action == AuditAction::RoleGrant)
            .count(),
        1
    );
    assert_eq!(roles_of(&app, &bob).await, json!(["device-operator"]));
}

async fn two_approvals_when_the_rule_says_two(backend: Backend) {
    let app = TestApp::new(backend).await;
    let owner2 = app.admin_with_roles("owner2", &[Role::Owner]).await;
    let sec_a = app.admin_with_roles("sec-a", &[Role::SecurityAdmin]).await;
    let sec_b = app.admin_with_roles("sec-b", &[Role::SecurityAdmin]).await;
    // Changing the rule is itself a request that needs an approval.
    let change = app
        .call(
            Method::PUT,
            &paths::fill(paths::APPROVAL_RULE, &["role-grant"]),
            Some(&app.owner),
            None,
            Some(json!({"required_approvals": 2, "approver_roles": ["security-admin", "owner"], "justification": "four eyes"})),
        )
        .await;
    assert_eq!(change.status, StatusCode::ACCEPTED, "{:?}", change.body);
    let change_id = change.body["id"].as_str().unwrap().to_owned();
    let rules = app.get(paths::APPROVAL_RULES, &app.owner).await;
    assert_eq!(
        rules.body[0]["required_approvals"], 1,
        "nothing changes before approval"
    );
    let by_security = decide(&app, &sec_a, &change_id, "approve").await;
    assert_eq!(
        by_security.code(),
        "not_an_approver",
        "rule changes need an owner by default"
    );
    assert_eq!(
        decide(&app, &owner2, &change_id, "approve").await.body["state"],
        "executed"
    );
    let rules = app.get(paths::APPROVAL_RULES, &app.owner).await;
    let role_grant = rules
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|rule| rule["kind"] == "role-grant")
        .unwrap()
        .clone();
    assert_eq!(role_grant["required_approvals"], 2);

    let bob = app.admin_with_roles("bob", &[]).await;
    let approval = request_grant(&app, &app.owner, &bob, "auditor").await;
    let first = decide(&app, &sec_a, &approval, "approve").await;
    assert_eq!(first.body["state"], "pending");
    assert_eq!(roles_of(&app, &bob).await, json!([]));
    let repeat = decide(&app, &sec_a, &approval, "approve").await;
    assert_eq!(repeat.code(), "already_decided", "one approver counts once");
    let second = decide(&app, &sec_b, &approval, "approve").await;
    assert_eq!(second.body["state"], "executed");
    assert_eq!(roles_of(&app, &bob).await, json!(["auditor"]));
}

async fn rejection_and_expiry_close_requests(backend: Backend) {
    let app = TestApp::new(backend).await;
    let security = app.admin_with_roles("sec", &[Role::SecurityAdmin]).await;
    let security2 = app.admin_with_roles("sec2", &[Role::SecurityAdmin]).await;
    let bob = app.admin_with_roles("bob", &[]).await;

    let rejected = request_grant(&app, &app.owner, &bob, "auditor").await;
    let response = decide(&app, &security, &rejected, "reject").await;
    assert_eq!(response.body["state"], "rejected");
    assert_eq!(response.body["rejected_by"], json!(security.id));
    assert_eq!(
        decide(&app, &security2, &rejected, "approve").await.code(),
        "not_pending"
    );

    let expiring = request_grant(&app, &app.owner, &bob, "auditor").await;
    app.clock.advance(Duration::from_secs(24 * 3600));
    // A day later every session has ended too: log in again.
    let security = Admin {
        token: app.login("sec", PASSWORD).await,
        ..security
    };
    let owner = Admin {
        token: app.login("owner", support::OWNER_PASSWORD).await,
        ..app.owner.clone()
    };
    let late = decide(&app, &security, &expiring, "approve").await;
    assert_eq!(
        (late.status, late.code()),
        (StatusCode::CONFLICT, "expired")
    );
    let listed = app.get("/api/v1/approvals?state=expired", &owner).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    assert!(
        app.store
            .admin_by_id(bob.id)
            .await
            .unwrap()
            .unwrap()
            .roles
            .is_empty()
    );
    let bad_state = app.get("/api/v1/approvals?state=whatever", &owner).await;
    assert_eq!(bad_state.code(), "invalid_query");
}

async fn bootstrap_owner_may_self_approve_until_a_second_approver_exists(backend: Backend) {
    let app = TestApp::new(backend).await;
    let create = |name: &str| {
        app.call(
            Method::POST,
            paths::USERS,
            Some(&app.owner),
            Some(support::OWNER_PIN),
            Some(json!({"username": name, "password": support::INITIAL_PASSWORD})),
        )
    };
    let bob_id = create("bob").await.body["id"].as_str().unwrap().to_owned();
    let bob = Admin {
        id: bob_id.parse().unwrap(),
        username: "bob".into(),
        token: String::new(),
        pin: "",
    };
    let carol_id = create("carol").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let carol_token = app.first_login("carol").await;
    let carol = Admin {
        id: carol_id.parse().unwrap(),
        username: "carol".into(),
        token: carol_token,
        pin: "",
    };

    // Alone, the owner approves their own grant of a non-approver role: the window stays open.
    let auditor_grant = request_grant(&app, &app.owner, &bob, "auditor").await;
    let response = decide(&app, &app.owner, &auditor_grant, "approve").await;
    assert_eq!(response.body["state"], "executed", "{:?}", response.body);
    let approve_event = app
        .audit_events()
        .await
        .into_iter()
        .rev()
        .find(|e| e.action == AuditAction::ApprovalApprove)
        .unwrap();
    assert_eq!(
        approve_event.reason,
        Some(ReasonCategory::BootstrapSelfApproval)
    );

    // Granting an approver role (security-admin) closes the window for good.
    let security_grant = request_grant(&app, &app.owner, &carol, "security-admin").await;
    assert_eq!(
        decide(&app, &app.owner, &security_grant, "approve")
            .await
            .body["state"],
        "executed"
    );
    let next = request_grant(&app, &app.owner, &bob, "device-operator").await;
    assert_eq!(
        decide(&app, &app.owner, &next, "approve").await.code(),
        "self_approval"
    );

    // Disabling the other approver does not reopen it.
    let pin_set = app
        .call(
            Method::PUT,
            paths::PIN,
            Some(&carol),
            None,
            Some(json!({"current_password": PASSWORD, "pin": "739164"})),
        )
        .await;
    assert_eq!(pin_set.status, StatusCode::NO_CONTENT);
    let disabled = app
        .call(
            Method::POST,
            &paths::fill(paths::USER_DISABLE, &[&carol_id]),
            Some(&app.owner),
            Some(support::OWNER_PIN),
            None,
        )
        .await;
    assert_eq!(disabled.body["disabled"], true);
    let later = request_grant(&app, &app.owner, &bob, "intel-analyst").await;
    assert_eq!(
        decide(&app, &app.owner, &later, "approve").await.code(),
        "self_approval"
    );
}

async fn bad_requests_change_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let bob = app.admin_with_roles("bob", &[]).await;
    let path = paths::fill(paths::USER_ROLES, &[&bob.id.to_string()]);
    let raw = |body: &str, content_type: Option<&str>| {
        let mut builder = axum::http::Request::builder()
            .method(Method::POST)
            .uri(path.clone())
            .header("authorization", format!("Bearer {}", app.owner.token));
        if let Some(content_type) = content_type {
            builder = builder.header("content-type", content_type);
        }
        app.send(
            builder
                .body(axum::body::Body::from(body.to_owned()))
                .unwrap(),
        )
    };
    let cases: Vec<(String, Option<&str>, StatusCode, &str)> = vec![
        (
            "{not json".into(),
            Some("application/json"),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            r#"{"role":"auditor","justification":"x","extra":1}"#.into(),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            r#"{"role":"auditor","justification":42}"#.into(),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        // Valid JSON of the wrong shape, like the cases around it (the body is parsed as JSON
        // first, so serde_json's syntax-error report for a number where an enum belongs does
        // not reach the client).
        (
            r#"{"role":42,"justification":"x"}"#.into(),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            r#"{"role":"root","justification":"x"}"#.into(),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            r#"{"role":"auditor","justification":"   "}"#.into(),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_justification",
        ),
        (
            r#"{"role":"auditor","justification":"x"}"#.into(),
            None,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            format!(
                r#"{{"role":"auditor","justification":"{}"}}"#,
                "x".repeat(1024 * 1024 + 1)
            ),
            Some("application/json"),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    let before = app
        .get(paths::APPROVALS, &app.owner)
        .await
        .body
        .as_array()
        .unwrap()
        .len();
    for (body, content_type, status, code) in cases {
        let response = raw(&body, content_type).await;
        assert_eq!(
            (response.status, response.code()),
            (status, code),
            "body {}",
            &body.chars().take(60).collect::<String>()
        );
        assert!(
            response.body["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let bad_id = app
        .call(
            Method::POST,
            "/api/v1/users/not-an-id/roles",
            Some(&app.owner),
            None,
            Some(json!({"role": "auditor", "justification": "x"})),
        )
        .await;
    assert_eq!(
        (bad_id.status, bad_id.code()),
        (StatusCode::BAD_REQUEST, "invalid_path_parameter")
    );
    let bad_kind = app
        .call(
            Method::PUT,
            "/api/v1/approval-rules/everything",
            Some(&app.owner),
            None,
            Some(
                json!({"required_approvals": 1, "approver_roles": ["owner"], "justification": "x"}),
            ),
        )
        .await;
    assert_eq!(bad_kind.status, StatusCode::BAD_REQUEST);
    let bad_rule = app
        .call(
            Method::PUT,
            "/api/v1/approval-rules/role-grant",
            Some(&app.owner),
            None,
            Some(
                json!({"required_approvals": 0, "approver_roles": ["owner"], "justification": "x"}),
            ),
        )
        .await;
    assert_eq!(bad_rule.code(), "invalid_rule");
    let unknown_route = app.get("/api/v1/nothing-here", &app.owner).await;
    assert_eq!(
        (unknown_route.status, unknown_route.code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let wrong_method = app
        .call(Method::PATCH, paths::USERS, Some(&app.owner), None, None)
        .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    let after = app
        .get(paths::APPROVALS, &app.owner)
        .await
        .body
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "no bad request opened an approval");
    assert_eq!(roles_of(&app, &bob).await, json!([]));
}

backend_tests!(
    role_grant_needs_another_approver,
    the_subject_of_a_request_cannot_approve_it,
    concurrent_approvals_execute_exactly_once,
    two_approvals_when_the_rule_says_two,
    rejection_and_expiry_close_requests,
    bootstrap_owner_may_self_approve_until_a_second_approver_exists,
    bad_requests_change_nothing,
);
