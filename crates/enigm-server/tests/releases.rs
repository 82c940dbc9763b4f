//! OTA releases on Command: declaring a release opens its signing approval; the artifact must be
//! exactly what was declared; nothing can be signed before another administrator approved; every
//! refusal is audited and changes nothing; the repository is served with caching and ranges.
//! Signing, publishing and the repository's root are in `release_signing.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use enigm_api::paths;
use enigm_test_support::{Backend, backend_tests};
use enigm_types::{AuditAction, Outcome, ReasonCategory, Role};
use serde_json::{Value, json};
use support::releases::{
    IMAGE, create, get_with, last_event, published_fixture, release_admins, release_request,
    sha256_hex, upload,
};
use support::{TestApp, approve};

async fn a_release_is_declared_uploaded_and_approved_before_signing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (manager, approver) = release_admins(&app).await;

    let created = create(&app, &manager, release_request("os/enigm-os.img", IMAGE)).await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{:?}", created.body);
    assert_eq!(created.body["state"], "draft");
    assert_eq!(created.body["artifact_stored"], false);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let approval = created.body["approval"].as_str().unwrap().to_owned();

    // The same target name twice is a conflict.
    let again = create(&app, &manager, release_request("os/enigm-os.img", IMAGE)).await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    // An artifact that is not what was declared is refused, audited, and not kept.
    let mut tampered = IMAGE.to_vec();
    tampered[0] ^= 1;
    for (bytes, what) in [
        (tampered.as_slice(), "tampered"),
        (&IMAGE[..IMAGE.len() - 1], "short"),
        (&[IMAGE, b"+"].concat()[..], "long"),
    ] {
        let refused = upload(&app, &manager, &id, bytes).await;
        assert_eq!(
            (refused.status, refused.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "artifact_mismatch"),
            "{what}"
        );
    }
    let stored: Vec<_> = std::fs::read_dir(app.ota_dir.path().join("targets"))
        .unwrap()
        .collect();
    assert!(stored.is_empty(), "a refused upload left {stored:?}");
    let events = app.audit_events().await;
    let refusal = last_event(&events, AuditAction::ReleaseArtifactUpload);
    assert_eq!(refusal.outcome, Outcome::Denied);
    assert_eq!(refusal.reason, Some(ReasonCategory::UpdateArtifactMismatch));

    let uploaded = upload(&app, &manager, &id, IMAGE).await;
    assert_eq!(uploaded.status, StatusCode::OK, "{:?}", uploaded.body);
    assert_eq!(uploaded.body["artifact_stored"], true);
    assert_eq!(
        std::fs::read(app.ota_dir.path().join("targets").join(sha256_hex(IMAGE))).unwrap(),
        IMAGE
    );
    let twice = upload(&app, &manager, &id, IMAGE).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);

    // Signatures before the approval are refused and audited.
    let early = app
        .send(
            Request::builder()
                .method(Method::POST)
                .uri(paths::fill(paths::RELEASE_SIGNATURES, &[&id]))
                .header("authorization", format!("Bearer {}", manager.token))
                .header(enigm_api::PIN_HEADER, manager.pin)
                .header("content-type", "application/json")
                .body(Body::from(r#"{"signed":{},"signatures":[]}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(
        (early.status, early.code()),
        (StatusCode::CONFLICT, "release_not_approved")
    );
    let events = app.audit_events().await;
    let refusal = last_event(&events, AuditAction::ReleaseSign);
    assert_eq!(refusal.outcome, Outcome::Denied);
    assert_eq!(refusal.reason, Some(ReasonCategory::ReleaseNotApproved));

    // The requester cannot approve their own release; another administrator can.
    let own = approve(&app, &manager, &approval).await;
    assert_eq!(own.status, StatusCode::FORBIDDEN);
    let approved = approve(&app, &approver, &approval).await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    let view = app
        .get(&paths::fill(paths::RELEASE, &[&id]), &manager)
        .await;
    assert_eq!(view.body["state"], "approved");

    // Nothing is published: the artifact is not served, and there is no metadata yet.
    let target = app
        .call(
            Method::GET,
            &format!(
                "{}/os/{}.enigm-os.img",
                paths::TUF_TARGETS_PREFIX,
                sha256_hex(IMAGE)
            ),
            None,
            None,
            None,
        )
        .await;
    assert_eq!(target.status, StatusCode::NOT_FOUND);
    let timestamp = app
        .call(
            Method::GET,
            &format!("{}/timestamp.json", paths::TUF_METADATA_PREFIX),
            None,
            None,
            None,
        )
        .await;
    assert_eq!(timestamp.status, StatusCode::NOT_FOUND);
}

async fn release_declarations_are_checked(backend: Backend) {
    let app = TestApp::new(backend).await;
    let manager = app
        .admin_with_roles("release-manager", &[Role::ReleaseManager])
        .await;
    let auditor = app.admin_with_roles("auditor", &[Role::Auditor]).await;
    let before = app.store.list_releases().await.unwrap().len();
    let cases: [(&str, Value); 9] = [
        ("dot-dot", json!("os/../etc/passwd")),
        ("absolute", json!("/os/image.img")),
        ("backslash", json!("os\\image.img")),
        ("empty segment", json!("os//image.img")),
        ("dot", json!("./image.img")),
        ("nul", json!("os/image\u{0}.img")),
        ("empty", json!("")),
        ("space", json!("os/my image.img")),
        ("too long", json!("a".repeat(256))),
    ];
    for (what, name) in cases {
        let mut request = release_request("x", IMAGE);
        request["target_name"] = name;
        let refused = create(&app, &manager, request).await;
        // A NUL is refused at the door, before the release rules see the name.
        let expected = if what == "nul" {
            (StatusCode::UNPROCESSABLE_ENTITY, "nul_character")
        } else {
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_release")
        };
        assert_eq!((refused.status, refused.code()), expected, "{what}");
    }
    for (field, value) in [
        ("sha256", json!("abc")),
        ("length", json!(0)),
        ("compatible_models", json!([])),
        ("compatible_models", json!(["Has Spaces"])),
        ("channel", json!("")),
        ("expires_in_days", json!(0)),
        ("expires_in_days", json!(731)),
        ("release_version", json!("")),
    ] {
        let mut request = release_request("os/x.img", IMAGE);
        request[field] = value.clone();
        let refused = create(&app, &manager, request).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field} = {value}"
        );
    }
    // Auditors read releases but do not make them.
    let forbidden = create(&app, &auditor, release_request("os/y.img", IMAGE)).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let listed = app.get(paths::RELEASES, &auditor).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(app.store.list_releases().await.unwrap().len(), before);
}

async fn the_repository_is_served_with_caching_and_ranges(backend: Backend) {
    let app = TestApp::new(backend).await;
    let artifact: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let sha256 = published_fixture(&app, &artifact).await;
    let metadata = |file: &str| format!("{}/{file}", paths::TUF_METADATA_PREFIX);

    // Versioned files never change: immutable. The timestamp is revalidated every time.
    let root = get_with(&app, &metadata("2.root.json"), &[]).await;
    assert_eq!(root.status, StatusCode::OK);
    assert_eq!(root.bytes, b"{\"root\":2}");
    assert_eq!(root.headers["content-type"], "application/json");
    assert_eq!(
        root.headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let etag = root.headers["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", sha256_hex(b"{\"root\":2}")));
    let again = get_with(&app, &metadata("2.root.json"), &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.bytes.is_empty());

    let timestamp = get_with(&app, &metadata("timestamp.json"), &[]).await;
    assert_eq!(
        timestamp.bytes, b"{\"timestamp\":2}",
        "the newest timestamp"
    );
    assert_eq!(timestamp.headers["cache-control"], "no-cache");
    let latest_root = get_with(&app, &metadata("root.json"), &[]).await;
    assert_eq!(latest_root.bytes, b"{\"root\":2}");
    for missing in [
        "3.root.json",
        "2.snapshot.json",
        "1.timestamp.json",
        "01.root.json",
        "x.json",
    ] {
        let response = get_with(&app, &metadata(missing), &[]).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{missing}");
    }

    // Artifacts by their hash-prefixed name, whole or in ranges.
    let target = format!("{}/os/{sha256}.enigm-os.img", paths::TUF_TARGETS_PREFIX);
    let whole = get_with(&app, &target, &[]).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.bytes, artifact);
    assert_eq!(whole.headers["etag"], format!("\"{sha256}\"").as_str());
    assert_eq!(
        whole.headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(whole.headers["accept-ranges"], "bytes");
    let range = get_with(&app, &target, &[("range", "bytes=100-199")]).await;
    assert_eq!(range.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(range.bytes, artifact[100..200]);
    assert_eq!(range.headers["content-range"], "bytes 100-199/10000");
    let tail = get_with(&app, &target, &[("range", "bytes=9990-")]).await;
    assert_eq!(tail.bytes, artifact[9990..]);
    let beyond = get_with(&app, &target, &[("range", "bytes=20000-20001")]).await;
    assert_eq!(beyond.status, StatusCode::RANGE_NOT_SATISFIABLE);
    let cached = get_with(
        &app,
        &target,
        &[("if-none-match", &format!("\"{sha256}\""))],
    )
    .await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);

    // Only published artifacts, only by their digest.
    let other = "cd".repeat(32);
    for path in [
        format!("{}/os/{other}.enigm-os.img", paths::TUF_TARGETS_PREFIX),
        format!("{}/os/enigm-os.img", paths::TUF_TARGETS_PREFIX),
        format!("{}/os/../{sha256}", paths::TUF_TARGETS_PREFIX),
    ] {
        let response = get_with(&app, &path, &[]).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
    }
}

backend_tests!(
    a_release_is_declared_uploaded_and_approved_before_signing,
    release_declarations_are_checked,
    the_repository_is_served_with_caching_and_ranges,
);
