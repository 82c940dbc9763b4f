//! The authorization matrix: every route of the router's table × every role. The expected
//! decisions are written out here independently of the Cedar policies, so a route added
//! without a rule here, or a policy that drifts, fails this test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use axum::http::{Method, StatusCode};
use enigm_server::routes::{Access, route_table};
use enigm_test_support::{Backend, backend_tests};
use enigm_types::{Permission, Role};
use support::TestApp;

/// Which roles hold a permission. Self-service permissions are held by every administrator.
fn expected(role: Option<Role>, permission: Permission) -> bool {
    use Permission as P;
    if permission.as_str().starts_with("self.") {
        return true;
    }
    let Some(role) = role else { return false };
    match role {
        Role::Owner => true,
        Role::SecurityAdmin => matches!(
            permission,
            P::UsersList
                | P::UsersRead
                | P::UsersCreate
                | P::UsersDisable
                | P::SessionsList
                | P::SessionsClose
                | P::ApprovalsList
                | P::ApprovalsDecide
                | P::ApprovalRulesRead
                | P::AuditRead
                | P::DevicesRead
                | P::DevicesEnroll
                | P::DevicesDecide
                | P::DevicesManage
                | P::ReleasesRead
                | P::PoliciesRead
                | P::PoliciesWrite
        ),
        Role::Auditor => permission.is_read_only(),
        Role::DeviceOperator => {
            matches!(
                permission,
                P::ApprovalsList
                    | P::DevicesRead
                    | P::DevicesEnroll
                    | P::DevicesDecide
                    | P::DevicesManage
                    | P::PoliciesRead
            )
        }
        Role::ReleaseManager => matches!(
            permission,
            P::ApprovalsList | P::ReleasesRead | P::ReleasesManage | P::ReleasesSign
        ),
        Role::IntelAnalyst => permission == P::ApprovalsList,
    }
}

/// Fills path parameters with well-formed values that name nothing, so allowed requests do
/// not change anything.
fn concrete_path(template: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    template
        .replace("{id}", &id)
        .replace("{role}", "auditor")
        .replace("{kind}", "role-grant")
        .replace("{gateway}", "no-such-gateway")
        .replace("{handle}", "dev_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        .replace("{version}", "1")
}

async fn every_route_and_role(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut subjects: Vec<(Option<Role>, support::Admin)> = Vec::new();
    subjects.push((None, app.admin_with_roles("no-role", &[]).await));
    for role in Role::ALL {
        let name = format!("as-{}", role.as_str());
        subjects.push((Some(role), app.admin_with_roles(&name, &[role]).await));
    }
    let mut routes = route_table();
    // Logging out ends the session the rest of the matrix uses: check it last.
    routes.sort_by_key(|route| route.path == enigm_api::paths::LOGOUT);
    let mut checked = 0;
    for route in &routes {
        let Access::Authenticated {
            permission,
            critical,
        } = route.access
        else {
            continue;
        };
        let path = concrete_path(route.path);
        let body =
            matches!(route.method, Method::POST | Method::PUT).then(|| serde_json::json!({}));

        let anonymous = app
            .call(route.method.clone(), &path, None, None, body.clone())
            .await;
        assert_eq!(
            anonymous.status,
            StatusCode::UNAUTHORIZED,
            "{} {} without a token",
            route.method,
            route.path
        );

        for (role, admin) in &subjects {
            let pin = critical.then_some(admin.pin);
            let response = app
                .call(route.method.clone(), &path, Some(admin), pin, body.clone())
                .await;
            let denied = response.status == StatusCode::FORBIDDEN && response.code() == "forbidden";
            assert_eq!(
                !denied,
                expected(*role, permission),
                "{} {} ({permission}) as {role:?}: {} {:?}",
                route.method,
                route.path,
                response.status,
                response.body
            );
            if critical && !denied {
                let without_pin = app
                    .call(route.method.clone(), &path, Some(admin), None, body.clone())
                    .await;
                assert_eq!(
                    without_pin.code(),
                    "pin_required",
                    "{} {} needs the PIN",
                    route.method,
                    route.path
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 29 * 7, "only {checked} route/role pairs checked");
}

async fn denials_are_audited(backend: Backend) {
    let app = TestApp::new(backend).await;
    let auditor = app.admin_with_roles("auditor", &[Role::Auditor]).await;
    let response = app
        .call(
            Method::POST,
            enigm_api::paths::USERS,
            Some(&auditor),
            Some(auditor.pin),
            Some(serde_json::json!({})),
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    let events = app.audit_events().await;
    let denial = events
        .iter()
        .rev()
        .find(|event| event.action == enigm_types::AuditAction::Authorize)
        .expect("an authorization event");
    assert_eq!(denial.outcome, enigm_types::Outcome::Denied);
    assert_eq!(denial.actor, enigm_types::Actor::Admin(auditor.id));
    assert_eq!(
        denial.target,
        enigm_types::AuditTarget::Route {
            permission: Permission::UsersCreate
        }
    );
    assert_eq!(denial.reason, Some(enigm_types::ReasonCategory::Forbidden));
}

backend_tests!(every_route_and_role, denials_are_audited);
