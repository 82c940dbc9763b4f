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

/// Puts a published release and some metadata straight into the store (what signing and
/// publishing produce), to test how the repository is served.
pub(crate) async fn published_fixture(app: &TestApp, artifact: &[u8]) -> String {
    use enigm_store::MetadataRole;
    let now = app.clock_now();
    let (_, sha256) = published_release(app, "os/enigm-os.img", artifact, now).await;
    let mut tx = app.store.begin().await.unwrap();
    for (role, version, body) in [
        (MetadataRole::Root, 1, "{\"root\":1}"),
        (MetadataRole::Root, 2, "{\"root\":2}"),
        (MetadataRole::Targets, 1, "{\"targets\":1}"),
        (MetadataRole::Snapshot, 1, "{\"snapshot\":1}"),
        (MetadataRole::Timestamp, 1, "{\"timestamp\":1}"),
        (MetadataRole::Timestamp, 2, "{\"timestamp\":2}"),
    ] {
        tx.insert_ota_metadata(role, version, body.as_bytes(), now)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    sha256
}

/// Puts a published release of `artifact` (version 1, rollback index 1, channel `stable`,
/// model `enigm-sim`) straight into the store, with its artifact in the data directory; its id
/// and the artifact's digest.
pub(crate) async fn published_release(
    app: &TestApp,
    target_name: &str,
    artifact: &[u8],
    expires_at: enigm_types::Timestamp,
) -> (enigm_types::ReleaseId, String) {
    published_release_of(app, target_name, artifact, ("1", 1), expires_at).await
}

/// [`published_release`] with its release version and rollback index.
pub(crate) async fn published_release_of(
    app: &TestApp,
    target_name: &str,
    artifact: &[u8],
    (release_version, rollback_index): (&str, u64),
    expires_at: enigm_types::Timestamp,
) -> (enigm_types::ReleaseId, String) {
    use enigm_store::NewRelease;
    use enigm_types::{ReleaseId, ReleaseState};
    let now = app.clock_now();
    let id = ReleaseId::random();
    let sha256 = sha256_hex(artifact);
    let mut tx = app.store.begin().await.unwrap();
    tx.insert_release(&NewRelease {
        id,
        target_name: target_name.to_owned(),
        kind: "os-image".to_owned(),
        release_version: release_version.to_owned(),
        rollback_index,
        channel: "stable".to_owned(),
        models: "[\"enigm-sim\"]".to_owned(),
        length: artifact.len() as u64,
        sha256: sha256.clone(),
        expires_at,
        created_by: app.owner.id,
        created_at: now,
    })
    .await
    .unwrap();
    for (from, to) in [
        (ReleaseState::Draft, ReleaseState::Approved),
        (ReleaseState::Approved, ReleaseState::Signed),
        (ReleaseState::Signed, ReleaseState::Published),
    ] {
        assert!(
            tx.advance_release(id, from, to, Some(1), now)
                .await
                .unwrap()
        );
    }
    tx.mark_artifact_stored(id).await.unwrap();
    tx.commit().await.unwrap();
    let directory = app.ota_dir.path().join("targets");
    std::fs::create_dir_all(&directory).unwrap();
    std::fs::write(directory.join(&sha256), artifact).unwrap();
    (id, sha256)
}
