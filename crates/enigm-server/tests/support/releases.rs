//! Release fixtures shared by the release tests: a declared release, its artifact upload and
//! approval, and plain requests to the repository.

use axum::body::Body;
use axum::http::{Method, Request};
use enigm_api::paths;
use enigm_types::{AuditAction, Role};
use serde_json::{Value, json};

use super::{Admin, Response, TestApp};

pub(crate) const IMAGE: &[u8] = b"enigm-os image bytes for a test release";

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(enigm_crypto::sha256(bytes))
}

pub(crate) fn release_request(name: &str, artifact: &[u8]) -> Value {
    json!({
        "target_name": name,
        "kind": "os-image",
        "release_version": "2026.11.1",
        "rollback_index": 7,
        "channel": "stable",
        "compatible_models": ["enigm-sim"],
        "length": artifact.len(),
        "sha256": sha256_hex(artifact),
        "expires_in_days": 90,
        "justification": "november security release",
    })
}

pub(crate) async fn create(app: &TestApp, admin: &Admin, request: Value) -> Response {
    app.call(
        Method::POST,
        paths::RELEASES,
        Some(admin),
        None,
        Some(request),
    )
    .await
}

pub(crate) async fn upload(app: &TestApp, admin: &Admin, id: &str, bytes: &[u8]) -> Response {
    let request = Request::builder()
        .method(Method::PUT)
        .uri(paths::fill(paths::RELEASE_ARTIFACT, &[id]))
        .header("authorization", format!("Bearer {}", admin.token))
        .header("content-type", "application/octet-stream")
        .body(Body::from(bytes.to_vec()))
        .unwrap();
    app.send(request).await
}

pub(crate) fn last_event(
    events: &[enigm_types::AuditEvent],
    action: AuditAction,
) -> &enigm_types::AuditEvent {
    events
        .iter()
        .rev()
        .find(|event| event.action == action)
        .unwrap_or_else(|| panic!("no {action} event"))
}

/// A release manager, and a security administrator to approve.
pub(crate) async fn release_admins(app: &TestApp) -> (Admin, Admin) {
    let manager = app
        .admin_with_roles("release-manager", &[Role::ReleaseManager])
        .await;
    let approver = app
        .admin_with_roles("security-admin", &[Role::SecurityAdmin])
        .await;
    (manager, approver)
}

/// A plain `GET` with `headers`, as a device or mirror fetches the repository.
pub(crate) async fn get_with(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut builder = Request::builder().method(Method::GET).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    app.send(builder.body(Body::empty()).unwrap()).await
}
