//! Audit-log fixtures shared by the audit tests: checkpoints, proofs' paths, leaves and a second
//! administrator.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use enigm_api::{AuditLeafView, AuditLeavesPage, paths};
use enigm_auditlog::{Checkpoint, Hash, NoteVerifier, open_checkpoint};
use enigm_store::StoredCheckpoint;
use enigm_types::AuditEvent;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{Admin, INITIAL_PASSWORD, OWNER_PIN, TestApp};

pub(crate) const DAY: Duration = Duration::from_secs(24 * 3600);

/// Folds everything committed into the tree and publishes a checkpoint of it.
pub(crate) async fn sync(app: &TestApp) -> StoredCheckpoint {
    app.state
        .audit_log
        .sync()
        .await
        .unwrap()
        .expect("a checkpoint")
}

pub(crate) fn verifier(app: &TestApp) -> NoteVerifier {
    app.state.audit_log.verifier()
}

pub(crate) fn open(app: &TestApp, note: &str) -> Checkpoint {
    open_checkpoint(note, &verifier(app))
        .expect("checkpoint signed by the log key")
        .into_checkpoint()
}

pub(crate) async fn fetch<T: DeserializeOwned>(app: &TestApp, path: &str, admin: &Admin) -> T {
    let response = app.get(path, admin).await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "{path}: {:?}",
        response.body
    );
    serde_json::from_value(response.body).unwrap()
}

pub(crate) fn leaves_path(start: u64, limit: u32) -> String {
    format!("{}?start={start}&limit={limit}", paths::AUDIT_LEAVES)
}

pub(crate) fn leaf_path(index: u64, tree_size: Option<u64>) -> String {
    let path = paths::fill(paths::AUDIT_LEAF, &[&index.to_string()]);
    match tree_size {
        Some(size) => format!("{path}?tree_size={size}"),
        None => path,
    }
}

pub(crate) fn consistency_path(first: u64, second: u64) -> String {
    format!("{}?first={first}&second={second}", paths::AUDIT_CONSISTENCY)
}

pub(crate) async fn all_leaves(app: &TestApp) -> Vec<AuditLeafView> {
    let page: AuditLeavesPage = fetch(app, &leaves_path(0, 1000), &app.owner).await;
    assert!(
        page.leaves.len() < 1000,
        "one page holds the whole test log"
    );
    page.leaves
}

pub(crate) fn body_of(leaf: &AuditLeafView) -> AuditEvent {
    serde_json::from_str(leaf.body.as_deref().expect("a kept body")).unwrap()
}

pub(crate) fn flip_bit(hash: &Hash) -> Hash {
    let mut bytes = *hash.as_bytes();
    bytes[7] ^= 0x10;
    Hash::from_bytes(bytes)
}

pub(crate) fn size_of(count: i64) -> u64 {
    u64::try_from(count).unwrap()
}

pub(crate) async fn create_user(app: &TestApp, username: &str) -> Admin {
    let created = app
        .call(
            Method::POST,
            paths::USERS,
            Some(&app.owner),
            Some(OWNER_PIN),
            Some(json!({"username": username, "password": INITIAL_PASSWORD})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    Admin {
        id: created.body["id"].as_str().unwrap().parse().unwrap(),
        username: username.to_owned(),
        token: app.first_login(username).await,
        pin: "",
    }
}
