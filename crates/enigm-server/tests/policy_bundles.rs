//! Policy bundles through the real router, on SQLite and PostgreSQL: after an approved
//! assignment the publisher's round compiles the group's bundle, signs the delegated role with
//! Command's online snapshot key and a snapshot that lists it; a device refreshes the
//! repository over `/tuf`, finds its group's bundle through the delegation, appraises and reads
//! it, and it names the assigned policy version. A second change is the next sequence; a
//! change not yet approved publishes nothing; without the delegation nothing is published and
//! the listing says what to run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod support;

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use enigm_api::paths;
use enigm_crypto::Ed25519SigningKey;
use enigm_ota::client::{FetchFailure, Limits, Refresh, TargetSearch, TrustedMetadata};
use enigm_ota::policy_bundle::{
    Appraisal, appraise_bundle, bundle_delegation, bundle_target_name, read_bundle,
};
use enigm_ota::repository::{RootKeys, build_root, build_targets};
use enigm_ota::{Key, MetadataSigner, SoftwareSigner, sign_metadata};
use enigm_server::services::policy_bundles::{DelegationStatus, Round, publish_wanted};
use enigm_test_support::device::{CRITICAL_SIGNALS, TestDevice};
use enigm_test_support::{Backend, backend_tests};
use enigm_types::{Actor, AuditAction, AuditTarget, Role};
use serde_json::{Value, json};
use support::releases::get_with;
use support::{Admin, DeviceCalls as _, Response, TestApp, approve, enrolled_in, protected};

backend_tests!(
    an_approved_assignment_publishes_a_bundle_a_device_verifies,
    without_the_delegation_nothing_is_published_and_the_listing_says_why,
    the_role_is_re_signed_before_it_expires,
);

const GROUP: &str = "field-team";

struct Workstation {
    root_bytes: Vec<u8>,
    targets: SoftwareSigner,
}

fn key() -> SoftwareSigner {
    SoftwareSigner::Ed25519(Ed25519SigningKey::generate(&mut rand::rngs::OsRng))
}

async fn put_metadata(app: &TestApp, path: &str, body: Vec<u8>) -> Response {
    app.send(
        Request::builder()
            .method(Method::PUT)
            .uri(path)
            .header("authorization", format!("Bearer {}", app.owner.token))
            .header(enigm_api::PIN_HEADER, app.owner.pin)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

async fn online_snapshot_key(app: &TestApp) -> Key {
    let online = app.get(paths::OTA_ONLINE_KEYS, &app.owner).await;
    serde_json::from_value(online.body["snapshot"].clone()).unwrap()
}

/// The workstation's first root, installed on Command (as `enigm ota keys init` does).
async fn init_root(app: &TestApp) -> Workstation {
    let (root, targets, release) = (key(), key(), key());
    let online = app.get(paths::OTA_ONLINE_KEYS, &app.owner).await;
    let keys = RootKeys {
        root: vec![root.key()],
        root_threshold: 1,
        targets: vec![targets.key()],
        targets_threshold: 1,
        snapshot: serde_json::from_value(online.body["snapshot"].clone()).unwrap(),
        timestamp: serde_json::from_value(online.body["timestamp"].clone()).unwrap(),
        release: vec![release.key()],
        release_threshold: 1,
    };
    let expires = app
        .clock_now()
        .saturating_add(std::time::Duration::from_secs(365 * 86_400));
    let root_bytes = sign_metadata(&build_root(&keys, 1, expires), &[&root]).unwrap();
    let put = put_metadata(app, paths::OTA_ROOT, root_bytes.clone()).await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    Workstation {
        root_bytes,
        targets,
    }
}

/// Targets metadata at `version` listing nothing, delegating the bundles to `delegate` (or
/// nothing), signed with the workstation's targets key (as `enigm ota keys delegate-bundles`
/// does).
async fn put_targets(
    app: &TestApp,
    workstation: &Workstation,
    version: u64,
    delegate: Option<&Key>,
) -> Response {
    let expires = app
        .clock_now()
        .saturating_add(std::time::Duration::from_secs(365 * 86_400));
    let mut targets = build_targets(Default::default(), version, expires);
    targets.delegations = delegate.map(|key| bundle_delegation(&[key]));
    let bytes = sign_metadata(&targets, &[&workstation.targets]).unwrap();
    put_metadata(app, paths::OTA_TARGETS, bytes).await
}

async fn post(app: &TestApp, admin: &Admin, path: &str, body: Value) -> Response {
    app.call(Method::POST, path, Some(admin), Some(admin.pin), Some(body))
        .await
}

/// A trust policy named `name` with one approved version (critical signals plus `tpm`); its id.
async fn approved_trust_policy(app: &TestApp, security: &Admin, name: &str) -> String {
    let created = post(
        app,
        security,
        paths::POLICIES,
        json!({"name": name, "kind": "trust"}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let policy = created.body["id"].as_str().unwrap().to_owned();
    propose_and_approve(app, security, &policy, 3600).await;
    policy
}

async fn propose_and_approve(app: &TestApp, security: &Admin, policy: &str, max_age: u64) {
    let mut critical: Vec<&str> = CRITICAL_SIGNALS.to_vec();
    critical.push("tpm");
    let requested = post(
        app,
        security,
        &paths::fill(paths::POLICY_VERSIONS, &[policy]),
        json!({"content": {"critical": critical, "max_signal_age_seconds": max_age},
               "justification": "ticket 15: require a TPM"}),
    )
    .await;
    assert_eq!(
        requested.status,
        StatusCode::ACCEPTED,
        "{:?}",
        requested.body
    );
    let approval = requested.body["approval"]["id"].as_str().unwrap();
    assert_eq!(
        approve(app, &app.owner, approval).await.status,
        StatusCode::OK
    );
}

/// Requests the assignment of `version` to the group; the approval's id.
async fn request_assign(app: &TestApp, security: &Admin, policy: &str, version: u32) -> String {
    let requested = post(
        app,
        security,
        &paths::fill(paths::POLICY_ASSIGN, &[policy]),
        json!({"version": version, "groups": [GROUP], "justification": "ticket 15: roll out"}),
    )
    .await;
    assert_eq!(
        requested.status,
        StatusCode::ACCEPTED,
        "{:?}",
        requested.body
    );
    requested.body["approval"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn bundles(app: &TestApp) -> Value {
    let listed = app.get(paths::POLICY_BUNDLES, &app.owner).await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    listed.body
}

/// What a device does: refreshes the repository over `/tuf` from its root, searches the
/// bundle `name` through the delegation, appraises it against what it holds, downloads it by
/// its hash-prefixed name, checks length and digest, and reads it.
async fn device_fetch(
    app: &TestApp,
    root: &[u8],
    name: &str,
    held: Option<enigm_ota::policy_bundle::HeldBundle<'_>>,
) -> (Appraisal, Option<enigm_ota::policy_bundle::PolicyBundle>) {
    let fetch = |file: String| async move {
        let response = get_with(app, &format!("{}/{file}", paths::TUF_METADATA_PREFIX), &[]).await;
        match response.status {
            StatusCode::OK => Ok(response.bytes),
            StatusCode::NOT_FOUND => Err(FetchFailure::NotFound),
            _ => Err(FetchFailure::Unavailable),
        }
    };
    let now = app.clock_now();
    let mut refresh = Refresh::new(TrustedMetadata::new(root).unwrap(), Limits::default(), now);
    while let Some(request) = refresh.next_request() {
        let fetched = fetch(request.file_name.clone()).await;
        refresh.provide(fetched).unwrap();
    }
    let mut trusted = refresh.into_trusted();
    let mut search = TargetSearch::new(name, Limits::default(), now);
    let mut fetched_roles: HashMap<String, usize> = HashMap::new();
    while let Some(request) = search.next_request(&trusted).unwrap() {
        *fetched_roles.entry(request.file_name.clone()).or_default() += 1;
        let fetched = fetch(request.file_name.clone()).await;
        search.provide(&mut trusted, fetched).unwrap();
    }
    assert!(
        fetched_roles
            .keys()
            .all(|file| file.ends_with(".policy-bundles.json")),
        "{fetched_roles:?}"
    );
    let target = search.result().flatten().expect("the bundle is listed");
    let appraisal = appraise_bundle(&target, GROUP, held).unwrap();
    let Appraisal::Install(approved) = &appraisal else {
        return (appraisal, None);
    };
    let sha256 = approved.target().sha256().unwrap().to_owned();
    let (directory, file) = name.rsplit_once('/').unwrap();
    let download = get_with(
        app,
        &format!("{}/{directory}/{sha256}.{file}", paths::TUF_TARGETS_PREFIX),
        &[],
    )
    .await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.bytes.len() as u64, approved.target().length());
    assert_eq!(hex::encode(enigm_crypto::sha256(&download.bytes)), sha256);
    let bundle = read_bundle(approved, &download.bytes).unwrap();
    (appraisal, Some(bundle))
}

async fn check_in(app: &TestApp, device: &TestDevice, enforced: Option<u64>) -> Value {
    let mut body = enigm_test_support::device::check_in(protected(app));
    if let Some(enforced) = enforced {
        body["policy_bundle"] = json!(enforced);
    }
    let response = device.send(app, paths::DEVICE_CHECK_INS, &body).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    response.body
}

async fn an_approved_assignment_publishes_a_bundle_a_device_verifies(backend: Backend) {
    let app = TestApp::new(backend).await;
    let workstation = init_root(&app).await;
    let online = online_snapshot_key(&app).await;
    let put = put_targets(&app, &workstation, 1, Some(&online)).await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);

    // The group appears with its enrollment token: its first bundle is the baseline's.
    let (device, handle) = enrolled_in(&app, GROUP).await;
    assert_eq!(
        publish_wanted(&app.state, false).await.unwrap(),
        Round::Published(vec![(GROUP.to_owned(), 1)])
    );
    assert_eq!(
        publish_wanted(&app.state, false).await.unwrap(),
        Round::Idle
    );
    let first = bundle_target_name(GROUP, 1);
    assert_eq!(check_in(&app, &device, None).await["policy_bundle"], first);
    let (_, baseline) = device_fetch(&app, &workstation.root_bytes, &first, None).await;
    let baseline = baseline.unwrap();
    assert!(baseline.policies.is_empty());

    // One administrator's change is not in force: nothing is published.
    let security = app
        .admin_with_roles("sec-admin", &[Role::SecurityAdmin])
        .await;
    let policy = approved_trust_policy(&app, &security, "field-trust").await;
    let assign = request_assign(&app, &security, &policy, 1).await;
    assert_eq!(
        publish_wanted(&app.state, false).await.unwrap(),
        Round::Idle
    );
    assert_eq!(bundles(&app).await["items"][0]["sequence"], 1);

    // Approved: the next round publishes sequence 2, naming the assigned version.
    assert_eq!(
        approve(&app, &app.owner, &assign).await.status,
        StatusCode::OK
    );
    assert_eq!(
        publish_wanted(&app.state, false).await.unwrap(),
        Round::Published(vec![(GROUP.to_owned(), 2)])
    );
    let second = bundle_target_name(GROUP, 2);
    assert_eq!(
        check_in(&app, &device, Some(1)).await["policy_bundle"],
        second
    );
    let held_sha = hex::encode(enigm_crypto::sha256(&baseline.to_bytes().unwrap()));
    let held = enigm_ota::policy_bundle::HeldBundle {
        sequence: 1,
        sha256: &held_sha,
    };
    let (_, bundle) = device_fetch(&app, &workstation.root_bytes, &second, Some(held)).await;
    let bundle = bundle.unwrap();
    let trust = &bundle.policies["trust"];
    assert_eq!(trust.policy_id, policy);
    assert_eq!(trust.name, "field-trust");
    assert_eq!(trust.version, 1);
    assert_eq!(trust.content["max_signal_age_seconds"], 3600);
    assert_eq!(bundle.agent.checkin_interval_seconds, 1800);
    assert!(bundle.agent.collect.contains(&"tpm".to_owned()));
    assert!(
        bundle
            .agent
            .collect
            .windows(2)
            .all(|pair| pair[0] < pair[1])
    );
    let listed = bundles(&app).await;
    assert_eq!(listed["items"][0]["group"], GROUP);
    assert_eq!(listed["items"][0]["target_name"], second);
    assert!(listed.get("warning").is_none(), "{listed}");

    // The bundle the device holds is current; a second change is the next sequence.
    let current_sha = hex::encode(enigm_crypto::sha256(&bundle.to_bytes().unwrap()));
    let current = enigm_ota::policy_bundle::HeldBundle {
        sequence: 2,
        sha256: &current_sha,
    };
    let (appraisal, _) = device_fetch(&app, &workstation.root_bytes, &second, Some(current)).await;
    assert_eq!(appraisal, Appraisal::Current);
    propose_and_approve(&app, &security, &policy, 600).await;
    let assign = request_assign(&app, &security, &policy, 2).await;
    assert_eq!(
        approve(&app, &app.owner, &assign).await.status,
        StatusCode::OK
    );
    assert_eq!(
        publish_wanted(&app.state, false).await.unwrap(),
        Round::Published(vec![(GROUP.to_owned(), 3)])
    );
    let third = bundle_target_name(GROUP, 3);
    let (_, bundle) = device_fetch(&app, &workstation.root_bytes, &third, Some(current)).await;
    let bundle = bundle.unwrap();
    assert_eq!(bundle.policies["trust"].version, 2);
    assert_eq!(bundle.agent.checkin_interval_seconds, 300);

    // The device's report of what it enforces, beside the group's newest.
    assert_eq!(
        check_in(&app, &device, Some(3)).await["policy_bundle"],
        third
    );
    let shown = app
        .get(&paths::fill(paths::DEVICE, &[&handle]), &app.owner)
        .await;
    assert_eq!(
        shown.body["policy_bundle"],
        json!({"enforced": 3, "published": 3})
    );

    // Audited by the system, with the group and sequence, never the content.
    let published: Vec<_> = app
        .audit_events()
        .await
        .into_iter()
        .filter(|event| event.action == AuditAction::PolicyBundlePublish)
        .collect();
    assert_eq!(published.len(), 3);
    for (event, sequence) in published.iter().zip(1..) {
        assert_eq!(event.actor, Actor::System);
        match &event.target {
            AuditTarget::PolicyBundle {
                group,
                sequence: number,
            } => {
                assert_eq!(group.as_str(), GROUP);
                assert_eq!(*number, sequence);
            }
            other => panic!("unexpected target {other:?}"),
        }
    }
}

async fn without_the_delegation_nothing_is_published_and_the_listing_says_why(backend: Backend) {
    let app = TestApp::new(backend).await;
    // No repository at all: nothing to publish, no error, no warning.
    let (_device, _) = enrolled_in(&app, GROUP).await;
    assert_eq!(
        publish_wanted(&app.state, false).await.unwrap(),
        Round::Blocked(DelegationStatus::NoRepository)
    );
    assert!(bundles(&app).await.get("warning").is_none());

    // Targets without the delegation: the marked group waits and the listing says what to run.
    let workstation = init_root(&app).await;
    let put = put_targets(&app, &workstation, 1, None).await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    assert_eq!(
        publish_wanted(&app.state, false).await.unwrap(),
        Round::Blocked(DelegationStatus::Missing)
    );
    let listed = bundles(&app).await;
    assert_eq!(listed["items"], json!([]));
    assert!(
        listed["warning"]
            .as_str()
            .unwrap()
            .contains("enigm ota keys delegate-bundles"),
        "{listed}"
    );

    // Command refuses a delegation to a key that is not its online snapshot key.
    let stranger = key().key();
    let refused = put_targets(&app, &workstation, 2, Some(&stranger)).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        refused.body
    );

    // Delegated: the group waiting since is published at the next round.
    let online = online_snapshot_key(&app).await;
    let put = put_targets(&app, &workstation, 2, Some(&online)).await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    assert_eq!(
        publish_wanted(&app.state, false).await.unwrap(),
        Round::Published(vec![(GROUP.to_owned(), 1)])
    );
    let listed = bundles(&app).await;
    assert_eq!(listed["items"][0]["sequence"], 1);
    assert!(listed.get("warning").is_none(), "{listed}");
    let (_, bundle) = device_fetch(
        &app,
        &workstation.root_bytes,
        &bundle_target_name(GROUP, 1),
        None,
    )
    .await;
    assert!(bundle.unwrap().policies.is_empty());

    // A policy bundle is not a release.
    let release = post(
        &app,
        &app.owner,
        paths::RELEASES,
        json!({"target_name": "policy/p.json", "kind": "policy-bundle", "release_version": "1",
               "rollback_index": 1, "channel": "stable", "compatible_models": ["enigm-sim"],
               "length": 2, "sha256": "00".repeat(32), "expires_in_days": 30,
               "justification": "policy"}),
    )
    .await;
    assert_eq!(release.status, StatusCode::CONFLICT, "{:?}", release.body);
    assert_eq!(release.code(), "policy_bundle_release");
    assert!(
        release.body["message"]
            .as_str()
            .unwrap()
            .contains("enigm policy")
    );
}

async fn the_role_is_re_signed_before_it_expires(backend: Backend) {
    let app = TestApp::new(backend).await;
    let workstation = init_root(&app).await;
    let online = online_snapshot_key(&app).await;
    let put = put_targets(&app, &workstation, 1, Some(&online)).await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    let (_device, _) = enrolled_in(&app, GROUP).await;
    assert_eq!(
        publish_wanted(&app.state, true).await.unwrap(),
        Round::Published(vec![(GROUP.to_owned(), 1)])
    );
    // Fresh: a re-signing round does nothing.
    assert_eq!(publish_wanted(&app.state, true).await.unwrap(), Round::Idle);
    let role = |version: u64| {
        let app = &app;
        async move {
            get_with(
                app,
                &format!(
                    "{}/{version}.policy-bundles.json",
                    paths::TUF_METADATA_PREFIX
                ),
                &[],
            )
            .await
            .status
        }
    };
    assert_eq!(role(1).await, StatusCode::OK);
    assert_eq!(role(2).await, StatusCode::NOT_FOUND);

    // Five of its seven days later it is due: re-signed (version 2, the same bundles) with a new
    // snapshot and timestamp, and a device that refreshes now still finds the bundle.
    app.clock
        .advance(std::time::Duration::from_secs(5 * 86_400));
    assert_eq!(
        publish_wanted(&app.state, true).await.unwrap(),
        Round::Published(Vec::new())
    );
    assert_eq!(role(2).await, StatusCode::OK);
    let (_, bundle) = device_fetch(
        &app,
        &workstation.root_bytes,
        &bundle_target_name(GROUP, 1),
        None,
    )
    .await;
    assert_eq!(bundle.unwrap().sequence, 1);
}
