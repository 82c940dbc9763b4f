//! Bad input on every endpoint family, found from the route table and the OpenAPI document
//! rather than listed by hand: malformed JSON, unknown fields, oversized bodies and malformed
//! ids all get a 4xx JSON error, and nothing in the store changes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use enigm_server::openapi::ApiDoc;
use enigm_server::routes::{Access, route_table};
use enigm_test_support::{Backend, backend_tests};
use serde_json::Value;
use support::TestApp;
use utoipa::OpenApi as _;

/// What a bad request must not change: accounts, approvals, open sessions.
async fn snapshot(app: &TestApp) -> String {
    let admins: Vec<String> = app
        .store
        .list_admins()
        .await
        .unwrap()
        .iter()
        .map(|a| format!("{a:?}"))
        .collect();
    let approvals = app
        .store
        .list_approvals(None, None, app.clock_now())
        .await
        .unwrap();
    let sessions = app
        .store
        .list_open_sessions(None, app.clock_now())
        .await
        .unwrap();
    format!("{admins:?}|{approvals:?}|{sessions:?}")
}

async fn every_json_body_and_id_is_checked(backend: Backend) {
    let app = TestApp::new(backend).await;
    let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
    let before = snapshot(&app).await;
    let mut checked_bodies = 0;
    let mut checked_ids = 0;
    for route in route_table() {
        let method = route.method.as_str().to_lowercase();
        // The artifact upload is a byte stream, not JSON: its checks (length, digest) have their
        // own tests in releases.rs.
        let has_body = doc["paths"][route.path][&method]
            .get("requestBody")
            .is_some()
            && route.path != enigm_api::paths::RELEASE_ARTIFACT;
        // Signed metadata may be large (a targets role with many releases).
        let body_limit = if [
            enigm_api::paths::RELEASE_SIGNATURES,
            enigm_api::paths::OTA_ROOT,
            enigm_api::paths::OTA_TARGETS,
        ]
        .contains(&route.path)
        {
            enigm_server::handlers::releases::MAX_METADATA_BYTES
        } else {
            1024 * 1024
        };
        let pin = matches!(route.access, Access::Authenticated { critical: true, .. })
            .then_some(support::OWNER_PIN);
        let token =
            matches!(route.access, Access::Authenticated { .. }).then(|| app.owner.token.clone());
        let path = route
            .path
            .replace("{id}", &uuid::Uuid::new_v4().to_string())
            .replace("{role}", "auditor")
            .replace("{kind}", "role-grant")
            .replace("{gateway}", "fra-1")
            .replace(
                "{handle}",
                &enigm_types::DeviceHandle::from_digest(&[1; 20]).to_string(),
            );
        let send = |path: String, body: Vec<u8>, content_type: Option<&'static str>| {
            let mut builder = Request::builder().method(route.method.clone()).uri(path);
            if let Some(token) = &token {
                builder = builder.header("authorization", format!("Bearer {token}"));
            }
            if let Some(pin) = pin {
                builder = builder.header(enigm_api::PIN_HEADER, pin);
            }
            if let Some(content_type) = content_type {
                builder = builder.header("content-type", content_type);
            }
            app.send(builder.body(Body::from(body)).unwrap())
        };
        if has_body {
            let cases: [(Vec<u8>, Option<&'static str>, StatusCode, &str); 5] = [
                (
                    b"{\"unterminated".to_vec(),
                    Some("application/json"),
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                ),
                (
                    br#""a string, not an object""#.to_vec(),
                    Some("application/json"),
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_body",
                ),
                (
                    br#"{"definitely_not_a_field": true}"#.to_vec(),
                    Some("application/json"),
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_body",
                ),
                (
                    b"{}".to_vec(),
                    Some("text/plain"),
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                ),
                (
                    vec![b' '; body_limit + 1],
                    Some("application/json"),
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                ),
            ];
            // Device routes check the request signature before they read the JSON: unsigned bad
            // input is refused as unsigned, except a body too large to read at all.
            let signed = route.path.starts_with("/api/v1/device/");
            for (body, content_type, status, code) in cases {
                let (status, code) = if signed && status != StatusCode::PAYLOAD_TOO_LARGE {
                    (StatusCode::UNAUTHORIZED, "unsigned_request")
                } else {
                    (status, code)
                };
                let response = send(path.clone(), body, content_type).await;
                assert_eq!(
                    (response.status, response.code()),
                    (status, code),
                    "{} {}",
                    route.method,
                    route.path
                );
                assert!(
                    response.body["message"]
                        .as_str()
                        .is_some_and(|m| !m.is_empty())
                );
                checked_bodies += 1;
            }
        }
        if route.path.contains("{id}") || route.path.contains("{handle}") {
            for bad in [
                "not-an-id",
                "..%2F..%2Fetc",
                "00000000000000000000000000000000",
            ] {
                let bad_path = route
                    .path
                    .replace("{id}", bad)
                    .replace("{handle}", bad)
                    .replace("{role}", "auditor");
                let body = if has_body { b"{}".to_vec() } else { Vec::new() };
                let response = send(bad_path, body, has_body.then_some("application/json")).await;
                assert_eq!(
                    (response.status, response.code()),
                    (StatusCode::BAD_REQUEST, "invalid_path_parameter"),
                    "{} {} with id `{bad}`",
                    route.method,
                    route.path
                );
                checked_ids += 1;
            }
        }
    }
    assert!(checked_bodies >= 5 * 7, "only {checked_bodies} body cases");
    assert!(checked_ids >= 3 * 10, "only {checked_ids} id cases");
    assert_eq!(
        snapshot(&app).await,
        before,
        "a bad request changed the store"
    );
    let whoami = app.get(enigm_api::paths::WHOAMI, &app.owner).await;
    assert_eq!(
        whoami.status,
        StatusCode::OK,
        "the owner's session survived"
    );
    let _: Value = whoami.body;
}

backend_tests!(every_json_body_and_id_is_checked);
