//! Signing and publishing OTA releases on Command: the signing workstation hands in targets
//! metadata for an approved release, Command publishes it with its online keys, and a device's
//! update client verifies what it fetches; newer releases supersede older ones; a root must name
//! Command's online keys and chain, and a director pin must be Command's director key alone;
//! online keys in a PKCS#11 token.

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
    IMAGE, create, get_with, last_event, release_admins, release_request, sha256_hex, upload,
};
use support::{Admin, Response, TestApp, approve};

backend_tests!(
    a_release_is_signed_published_and_verifies_on_a_device,
    a_root_must_name_commands_online_keys_and_chain,
    a_director_pin_must_be_commands_director_key_alone,
    newer_releases_supersede_older_ones_in_the_targets
);

mod signing {
    use std::collections::HashMap;

    use enigm_crypto::Ed25519SigningKey;
    use enigm_ota::client::{FetchFailure, Limits, Refresh, TrustedMetadata};
    use enigm_ota::metadata::Targets;
    use enigm_ota::release::ReleaseFields;
    use enigm_ota::repository::{RootKeys, build_root, next_targets, release_entry};
    use enigm_ota::{DeviceProfile, Key, MetadataSigner, SoftwareSigner, sign_metadata};

    use super::*;

    pub(super) struct Workstation {
        pub(super) root: SoftwareSigner,
        pub(super) targets: SoftwareSigner,
        pub(super) release: SoftwareSigner,
    }

    fn key() -> SoftwareSigner {
        SoftwareSigner::Ed25519(Ed25519SigningKey::generate(&mut rand::rngs::OsRng))
    }

    fn tuf_key(value: &Value) -> Key {
        serde_json::from_value(value.clone()).unwrap()
    }

    pub(super) async fn raw(
        app: &TestApp,
        method: Method,
        path: &str,
        admin: &Admin,
        body: Vec<u8>,
    ) -> Response {
        app.send(
            Request::builder()
                .method(method)
                .uri(path)
                .header("authorization", format!("Bearer {}", admin.token))
                .header(enigm_api::PIN_HEADER, admin.pin)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// An app with a release manager, a security administrator to approve, and a signing
    /// workstation whose first root Command has installed.
    pub(super) async fn release_team(backend: Backend) -> (TestApp, Admin, Admin, Workstation) {
        let app = TestApp::new(backend).await;
        let (manager, approver) = release_admins(&app).await;
        let workstation = Workstation::init(&app).await;
        (app, manager, approver, workstation)
    }

    impl Workstation {
        pub(super) async fn init(app: &TestApp) -> Workstation {
            let workstation = Workstation {
                root: key(),
                targets: key(),
                release: key(),
            };
            let online = app.get(paths::OTA_ONLINE_KEYS, &app.owner).await;
            let keys = RootKeys {
                root: vec![workstation.root.key()],
                root_threshold: 1,
                targets: vec![workstation.targets.key()],
                targets_threshold: 1,
                snapshot: tuf_key(&online.body["snapshot"]),
                timestamp: tuf_key(&online.body["timestamp"]),
                release: vec![workstation.release.key()],
                release_threshold: 1,
            };
            let root = build_root(
                &keys,
                1,
                app.clock_now()
                    .saturating_add(std::time::Duration::from_secs(365 * 86_400)),
            );
            let bytes = sign_metadata(&root, &[&workstation.root]).unwrap();
            let put = raw(app, Method::PUT, paths::OTA_ROOT, &app.owner, bytes).await;
            assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
            workstation
        }

        /// The targets metadata a signing workstation hands in for `release` (a view).
        pub(super) async fn targets_for(
            &self,
            app: &TestApp,
            release: &Value,
            targets_signer: &dyn MetadataSigner,
            release_signer: &dyn MetadataSigner,
        ) -> Vec<u8> {
            let repository = app.get(paths::OTA_REPOSITORY, &app.owner).await;
            let previous: Option<Targets> = match repository.body["targets_version"].as_u64() {
                Some(version) => {
                    let bytes = get_with(
                        app,
                        &format!("{}/{version}.targets.json", paths::TUF_METADATA_PREFIX),
                        &[],
                    )
                    .await
                    .bytes;
                    Some(enigm_ota::metadata::parse::<Targets>(&bytes).unwrap().1)
                }
                None => None,
            };
            let expires = enigm_ota::time::parse_expiry(&format!(
                "{}Z",
                release["expires_at"]
                    .as_str()
                    .unwrap()
                    .trim_end_matches('Z')
                    .split('.')
                    .next()
                    .unwrap()
            ))
            .unwrap();
            let fields = ReleaseFields {
                kind: release["kind"].as_str().unwrap().to_owned(),
                release_version: release["release_version"].as_str().unwrap().to_owned(),
                rollback_index: release["rollback_index"].as_u64().unwrap(),
                channel: release["channel"].as_str().unwrap().to_owned(),
                hardware: serde_json::from_value(release["compatible_models"].clone()).unwrap(),
                expires: enigm_ota::time::format_expiry(expires),
                payload_signatures: Vec::new(),
            };
            let name = release["target_name"].as_str().unwrap();
            let entry = release_entry(
                name,
                release["length"].as_u64().unwrap(),
                release["sha256"].as_str().unwrap(),
                &fields,
                &[release_signer],
            )
            .unwrap();
            let targets = next_targets(previous.as_ref(), name, entry, expires);
            sign_metadata(&targets, &[targets_signer]).unwrap()
        }
    }

    /// A device's refresh against what Command serves.
    pub(super) async fn device_refresh(
        app: &TestApp,
        root: &[u8],
    ) -> Result<TrustedMetadata, enigm_ota::RefreshError> {
        let mut refresh = Refresh::new(
            TrustedMetadata::new(root).unwrap(),
            Limits::default(),
            app.clock_now(),
        );
        let mut cache: HashMap<String, Vec<u8>> = HashMap::new();
        while let Some(request) = refresh.next_request() {
            let response = get_with(
                app,
                &format!("{}/{}", paths::TUF_METADATA_PREFIX, request.file_name),
                &[],
            )
            .await;
            let fetched = match response.status {
                StatusCode::OK => Ok(response.bytes),
                StatusCode::NOT_FOUND => Err(FetchFailure::NotFound),
                _ => Err(FetchFailure::Unavailable),
            };
            if let Ok(bytes) = &fetched {
                cache.insert(request.file_name.clone(), bytes.clone());
            }
            refresh.provide(fetched)?;
        }
        Ok(refresh.into_trusted())
    }

    pub(super) fn profile(installed: u64) -> DeviceProfile {
        DeviceProfile {
            hardware_model: "enigm-sim".to_owned(),
            channel: "stable".to_owned(),
            installed_rollback_index: [("os-image".to_owned(), installed)].into(),
        }
    }
}

async fn a_release_is_signed_published_and_verifies_on_a_device(backend: Backend) {
    use signing::{device_refresh, profile, raw};

    let (app, manager, approver, workstation) = signing::release_team(backend).await;
    let root_bytes = get_with(
        &app,
        &format!("{}/1.root.json", paths::TUF_METADATA_PREFIX),
        &[],
    )
    .await
    .bytes;

    let created = create(&app, &manager, release_request("os/enigm-os.img", IMAGE)).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    upload(&app, &manager, &id, IMAGE).await;
    approve(&app, &approver, created.body["approval"].as_str().unwrap()).await;
    let release = app
        .get(&paths::fill(paths::RELEASE, &[&id]), &manager)
        .await
        .body;
    let signatures = paths::fill(paths::RELEASE_SIGNATURES, &[&id]);

    // Refused: signed by the wrong role's key, payload signed by the manifest (targets) key,
    // or fields other than declared. Each refusal is audited and stores nothing.
    let wrong_role = workstation
        .targets_for(&app, &release, &workstation.release, &workstation.release)
        .await;
    let refused = signing::raw(&app, Method::POST, &signatures, &manager, wrong_role).await;
    assert_eq!(refused.code(), "update_bad_signature", "{:?}", refused.body);
    // The refusal says what to do: sign with the key the root names, found by key id.
    let message = refused.body["message"].as_str().unwrap();
    assert!(
        message.contains("sign with the targets key of root version 1")
            && message.contains("--targets-key-label"),
        "{message}"
    );
    let manifest_payload = workstation
        .targets_for(&app, &release, &workstation.targets, &workstation.targets)
        .await;
    let refused = raw(&app, Method::POST, &signatures, &manager, manifest_payload).await;
    assert_eq!(refused.code(), "payload_signature", "{:?}", refused.body);
    let mut other = release.clone();
    other["rollback_index"] = json!(99);
    let changed = workstation
        .targets_for(&app, &other, &workstation.targets, &workstation.release)
        .await;
    let refused = raw(&app, Method::POST, &signatures, &manager, changed).await;
    assert_eq!(refused.code(), "update_mix_and_match", "{:?}", refused.body);
    let events = app.audit_events().await;
    let denied: Vec<_> = events
        .iter()
        .filter(|e| e.action == AuditAction::ReleaseSign && e.outcome == Outcome::Denied)
        .map(|e| e.reason)
        .collect();
    assert_eq!(
        denied,
        [
            Some(ReasonCategory::UpdateBadSignature),
            Some(ReasonCategory::PayloadSignature),
            Some(ReasonCategory::UpdateMixAndMatch)
        ]
    );
    let repository = app.get(paths::OTA_REPOSITORY, &manager).await;
    assert_eq!(repository.body["targets_version"], Value::Null);

    // Accepted, then published with Command's online keys.
    let good = workstation
        .targets_for(&app, &release, &workstation.targets, &workstation.release)
        .await;
    let signed = raw(&app, Method::POST, &signatures, &manager, good).await;
    assert_eq!(signed.status, StatusCode::OK, "{:?}", signed.body);
    assert_eq!(signed.body["state"], "signed");
    let published = app
        .call(
            Method::POST,
            &paths::fill(paths::RELEASE_PUBLISH, &[&id]),
            Some(&manager),
            Some(manager.pin),
            None,
        )
        .await;
    assert_eq!(published.status, StatusCode::OK, "{:?}", published.body);
    assert_eq!(published.body["state"], "published");

    // A device with the first root verifies the whole chain and the release.
    let trusted = device_refresh(&app, &root_bytes).await.unwrap();
    let target = trusted.target("os/enigm-os.img").unwrap();
    let approved =
        enigm_ota::appraise_release(&trusted, &target, &profile(6), app.clock_now()).unwrap();
    assert_eq!(approved.fields().rollback_index, 7);
    let artifact = get_with(
        &app,
        &format!(
            "{}/os/{}.enigm-os.img",
            paths::TUF_TARGETS_PREFIX,
            sha256_hex(IMAGE)
        ),
        &[],
    )
    .await;
    assert_eq!(artifact.bytes, IMAGE);

    // The timestamp is re-signed before it expires; a device a day later still verifies.
    app.clock.advance(std::time::Duration::from_secs(13 * 3600));
    assert!(
        enigm_server::ota::refresh_timestamp_if_due(&app.state)
            .await
            .unwrap()
    );
    app.clock.advance(std::time::Duration::from_secs(13 * 3600));
    assert!(device_refresh(&app, &root_bytes).await.is_ok());
    // Without the refresh the timestamp would have frozen: a day and a half later it has.
    app.clock.advance(std::time::Duration::from_secs(12 * 3600));
    let frozen = device_refresh(&app, &root_bytes).await.unwrap_err();
    assert_eq!(frozen.category(), enigm_ota::FailureCategory::Freeze);
}

/// The targets metadata lists what a device may still install: a release drops the ones it
/// supersedes (same kind and channel, lower rollback index, hardware it covers), keeps the
/// others, and Command refuses targets metadata that drops anything else. Once published, a
/// superseded release reads `superseded`, naming the release that superseded it.
async fn newer_releases_supersede_older_ones_in_the_targets(backend: Backend) {
    use enigm_ota::metadata::Targets;
    use enigm_ota::sign_metadata;
    use signing::raw;

    let (app, manager, approver, workstation) = signing::release_team(backend).await;
    let declare = async |name: &str, rollback: u64, channel: &str, models: &[&str]| {
        let artifact = name.as_bytes();
        let mut request = release_request(name, artifact);
        request["rollback_index"] = json!(rollback);
        request["channel"] = json!(channel);
        request["compatible_models"] = json!(models);
        let created = create(&app, &manager, request).await;
        assert_eq!(created.status, StatusCode::ACCEPTED, "{:?}", created.body);
        let id = created.body["id"].as_str().unwrap().to_owned();
        upload(&app, &manager, &id, artifact).await;
        approve(&app, &approver, created.body["approval"].as_str().unwrap()).await;
        app.get(&paths::fill(paths::RELEASE, &[&id]), &manager)
            .await
            .body
    };
    let hand_in = async |release: &Value, targets: Vec<u8>| {
        let id = release["id"].as_str().unwrap();
        raw(
            &app,
            Method::POST,
            &paths::fill(paths::RELEASE_SIGNATURES, &[id]),
            &manager,
            targets,
        )
        .await
    };
    let sign = async |release: &Value| {
        let targets = workstation
            .targets_for(&app, release, &workstation.targets, &workstation.release)
            .await;
        let signed = hand_in(release, targets).await;
        assert_eq!(signed.status, StatusCode::OK, "{:?}", signed.body);
    };
    // What the next signing builds on (published or not).
    let listed = async || -> Vec<String> {
        let stored = app
            .state
            .store
            .latest_ota_metadata(enigm_store::MetadataRole::Targets)
            .await
            .unwrap()
            .unwrap();
        let (_, targets) = enigm_ota::metadata::parse::<Targets>(&stored.body).unwrap();
        targets.targets.keys().cloned().collect()
    };

    let a = declare("os/a.img", 7, "stable", &["enigm-sim"]).await;
    sign(&a).await;
    let b = declare("os/b.img", 8, "stable", &["enigm-sim", "enigm-x"]).await;
    sign(&b).await;
    assert_eq!(listed().await, ["os/b.img"], "a is superseded by b");
    let c = declare("os/c.img", 9, "beta", &["enigm-sim", "enigm-x"]).await;
    sign(&c).await;
    assert_eq!(listed().await, ["os/b.img", "os/c.img"], "another channel");

    // d covers only enigm-x: b stays for enigm-sim devices, and may not be dropped.
    let d = declare("os/d.img", 10, "stable", &["enigm-x"]).await;
    let proper = workstation
        .targets_for(&app, &d, &workstation.targets, &workstation.release)
        .await;
    let (_, mut dropping) = enigm_ota::metadata::parse::<Targets>(&proper).unwrap();
    dropping.targets.remove("os/b.img");
    let dropping = sign_metadata(&dropping, &[&workstation.targets]).unwrap();
    let refused = hand_in(&d, dropping).await;
    assert_eq!(refused.code(), "update_mix_and_match", "{:?}", refused.body);
    assert_eq!(listed().await, ["os/b.img", "os/c.img"], "nothing stored");
    let signed = hand_in(&d, proper).await;
    assert_eq!(signed.status, StatusCode::OK, "{:?}", signed.body);
    assert_eq!(
        listed().await,
        ["os/b.img", "os/c.img", "os/d.img"],
        "b is not superseded for enigm-sim"
    );

    // Signed, not published yet: nothing is superseded in what devices see.
    let state_of = async |release: &Value| -> Value {
        let id = release["id"].as_str().unwrap();
        app.get(&paths::fill(paths::RELEASE, &[id]), &manager)
            .await
            .body
    };
    let a_now = state_of(&a).await;
    assert_eq!(a_now["state"], "signed", "{a_now}");
    assert_eq!(a_now["superseded_by"], Value::Null, "{a_now}");
    // Publishing d publishes everything signed before it: a is superseded by b, and says so
    // (one release and the list alike); the others are published.
    let published = app
        .call(
            Method::POST,
            &paths::fill(paths::RELEASE_PUBLISH, &[d["id"].as_str().unwrap()]),
            Some(&manager),
            Some(manager.pin),
            None,
        )
        .await;
    assert_eq!(published.status, StatusCode::OK, "{:?}", published.body);
    assert_eq!(published.body["state"], "published");
    let a_now = state_of(&a).await;
    assert_eq!(a_now["state"], "superseded", "{a_now}");
    assert_eq!(a_now["superseded_by"], b["id"], "{a_now}");
    for other in [&b, &c, &d] {
        let now = state_of(other).await;
        assert_eq!(now["state"], "published", "{now}");
        assert_eq!(now["superseded_by"], Value::Null, "{now}");
    }
    let all = app.get(paths::RELEASES, &manager).await.body;
    let items = all.as_array().unwrap().clone();
    let states: std::collections::BTreeMap<String, (Value, Value)> = items
        .iter()
        .map(|release| {
            (
                release["target_name"].as_str().unwrap().to_owned(),
                (release["state"].clone(), release["superseded_by"].clone()),
            )
        })
        .collect();
    assert_eq!(
        states["os/a.img"],
        (json!("superseded"), b["id"].clone()),
        "{all}"
    );
    assert_eq!(
        states["os/b.img"],
        (json!("published"), Value::Null),
        "{all}"
    );
}

async fn a_root_must_name_commands_online_keys_and_chain(backend: Backend) {
    use enigm_ota::repository::{RootKeys, build_root};
    use enigm_ota::{MetadataSigner, SoftwareSigner, sign_metadata};

    let app = TestApp::new(backend).await;
    let key = || {
        SoftwareSigner::Ed25519(enigm_crypto::Ed25519SigningKey::generate(
            &mut rand::rngs::OsRng,
        ))
    };
    let (root, targets, release, stranger) = (key(), key(), key(), key());
    let expires = app
        .clock_now()
        .saturating_add(std::time::Duration::from_secs(86_400 * 30));
    let keys = RootKeys {
        root: vec![root.key()],
        root_threshold: 1,
        targets: vec![targets.key()],
        targets_threshold: 1,
        snapshot: stranger.key(),
        timestamp: stranger.key(),
        release: vec![release.key()],
        release_threshold: 1,
    };
    let bytes = sign_metadata(&build_root(&keys, 1, expires), &[&root]).unwrap();
    let refused = signing::raw(
        &app,
        Method::PUT,
        paths::OTA_ROOT,
        &app.owner,
        bytes.clone(),
    )
    .await;
    assert_eq!(refused.code(), "update_bad_signature", "{:?}", refused.body);
    let events = app.audit_events().await;
    assert_eq!(
        last_event(&events, AuditAction::OtaRootUpdate).reason,
        Some(ReasonCategory::UpdateBadSignature)
    );
    assert!(
        enigm_server::ota::current_root_names_online_keys(&app.state)
            .await
            .unwrap()
    );

    // Such a root in the store is what Command finds after its online keys moved (files to a
    // token): it says so at start, and publishing is refused rather than signing what devices
    // would refuse.
    let mut tx = app.store.begin().await.unwrap();
    tx.insert_ota_metadata(enigm_store::MetadataRole::Root, 1, &bytes, app.clock_now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(
        !enigm_server::ota::current_root_names_online_keys(&app.state)
            .await
            .unwrap()
    );
    let mut tx = app.store.begin().await.unwrap();
    let Err(refused) =
        enigm_server::ota::publish_latest(&app.state, &mut tx, app.clock_now()).await
    else {
        panic!("publishing under a root that names other online keys is refused");
    };
    assert_eq!(refused.code(), "update_bad_signature");
    drop(tx);
    let repository = app.get(paths::OTA_REPOSITORY, &app.owner).await;
    assert_eq!(
        repository.body["snapshot_version"],
        Value::Null,
        "nothing signed"
    );
    // Only owners install roots.
    let manager = app
        .admin_with_roles("release-manager", &[Role::ReleaseManager])
        .await;
    let forbidden =
        signing::raw(&app, Method::PUT, paths::OTA_ROOT, &manager, b"{}".to_vec()).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
}

/// A root's director pin (`x-enigm-director`) must be Command's director key alone: a pin that
/// does not parse, names an offline key, names another key or Command's among others is refused
/// and audited like every refused root; a root without a pin (OTA I) is accepted, and so is a
/// later version that pins Command's director key as `GET /api/v1/ota/online-keys` names it.
async fn a_director_pin_must_be_commands_director_key_alone(backend: Backend) {
    use enigm_ota::director::{DIRECTOR_FIELD, DirectorKeys, director_keys};
    use enigm_ota::metadata::Root;
    use enigm_ota::repository::{RootKeys, build_root};
    use enigm_ota::{Key, MetadataSigner, SoftwareSigner, sign_metadata};

    let app = TestApp::new(backend).await;
    let key = || {
        SoftwareSigner::Ed25519(enigm_crypto::Ed25519SigningKey::generate(
            &mut rand::rngs::OsRng,
        ))
    };
    let (root_key, targets, release, stranger) = (key(), key(), key(), key());
    let online = app.get(paths::OTA_ONLINE_KEYS, &app.owner).await;
    let online_key =
        |role: &str| -> Key { serde_json::from_value(online.body[role].clone()).unwrap() };
    let director = online_key("director");
    assert_eq!(
        director.key_id(),
        app.state.ota().online().director.key().key_id(),
        "the online-keys view names the key the director signs with"
    );
    let expires = app
        .clock_now()
        .saturating_add(std::time::Duration::from_secs(86_400 * 30));
    let keys = RootKeys {
        root: vec![root_key.key()],
        root_threshold: 1,
        targets: vec![targets.key()],
        targets_threshold: 1,
        snapshot: online_key("snapshot"),
        timestamp: online_key("timestamp"),
        release: vec![release.key()],
        release_threshold: 1,
    };
    let root_with = |version: u64, pin: Option<Value>| -> Root {
        let mut root = build_root(&keys, version, expires);
        if let Some(pin) = pin {
            root.unrecognized.insert(DIRECTOR_FIELD.to_owned(), pin);
        }
        root
    };
    let pin_of = |keys: &[Key]| DirectorKeys::new(keys, 1).unwrap().field_value();
    let refused_cases = [
        (
            "another key",
            pin_of(&[stranger.key()]),
            ReasonCategory::UpdateBadSignature,
        ),
        (
            "Command's director key among others",
            pin_of(&[director.clone(), stranger.key()]),
            ReasonCategory::UpdateBadSignature,
        ),
        (
            "the targets key",
            pin_of(&[targets.key()]),
            ReasonCategory::UpdateBadSignature,
        ),
        (
            "the release key",
            pin_of(&[release.key()]),
            ReasonCategory::UpdateBadSignature,
        ),
        (
            "no key",
            json!({ "keys": {}, "threshold": 1 }),
            ReasonCategory::UpdateMalformed,
        ),
        (
            "Command's director key, threshold 2",
            json!({ "keys": { director.key_id(): director }, "threshold": 2 }),
            ReasonCategory::UpdateMalformed,
        ),
        (
            "an unknown field",
            json!({ "keys": { director.key_id(): director }, "threshold": 1, "extra": true }),
            ReasonCategory::UpdateMalformed,
        ),
        (
            "not an object",
            json!("director"),
            ReasonCategory::UpdateMalformed,
        ),
    ];
    for (case, pin, reason) in refused_cases {
        let bytes = sign_metadata(&root_with(1, Some(pin)), &[&root_key]).unwrap();
        let refused = signing::raw(&app, Method::PUT, paths::OTA_ROOT, &app.owner, bytes).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{case}: {:?}",
            refused.body
        );
        assert_eq!(
            refused.code(),
            reason.as_str(),
            "{case}: {:?}",
            refused.body
        );
        let events = app.audit_events().await;
        let event = last_event(&events, AuditAction::OtaRootUpdate);
        assert_eq!(event.outcome, Outcome::Denied, "{case}");
        assert_eq!(event.reason, Some(reason), "{case}");
    }
    let repository = app.get(paths::OTA_REPOSITORY, &app.owner).await;
    assert_eq!(
        repository.body["root_version"],
        Value::Null,
        "nothing stored"
    );

    // A root without a pin: devices update as in OTA I.
    let first = sign_metadata(&root_with(1, None), &[&root_key]).unwrap();
    let accepted = signing::raw(&app, Method::PUT, paths::OTA_ROOT, &app.owner, first).await;
    assert_eq!(accepted.status, StatusCode::OK, "{:?}", accepted.body);
    let events = app.audit_events().await;
    assert_eq!(
        last_event(&events, AuditAction::OtaRootUpdate).outcome,
        Outcome::Success
    );

    // The next version pins Command's director key: accepted and served as handed in.
    let second = root_with(2, Some(pin_of(std::slice::from_ref(&director))));
    let bytes = sign_metadata(&second, &[&root_key]).unwrap();
    let accepted = signing::raw(&app, Method::PUT, paths::OTA_ROOT, &app.owner, bytes).await;
    assert_eq!(accepted.status, StatusCode::OK, "{:?}", accepted.body);
    assert_eq!(accepted.body["root_version"], 2);
    let served = get_with(
        &app,
        &format!("{}/2.root.json", paths::TUF_METADATA_PREFIX),
        &[],
    )
    .await;
    let (_, served) = enigm_ota::metadata::parse::<Root>(&served.bytes).unwrap();
    let pinned = director_keys(&served).unwrap().unwrap();
    assert_eq!(pinned, DirectorKeys::new(&[director], 1).unwrap());
}

/// `enigm up --ota-pkcs11-module …`: the online keys are generated on the token at the first
/// start, found again at the next, and sign metadata that verifies under the keys Command
/// names; a wrong PIN is refused plainly.
#[test]
fn online_keys_in_a_token_are_made_once_and_sign_what_verifies() {
    use enigm_ota::MetadataSigner;
    use enigm_ota::repository::build_timestamp;
    use enigm_server::OnlineKeyToken;
    use enigm_server::bootstrap::load_or_create_ota_online_keys_on_token;
    use enigm_test_support::softhsm::SoftHsmToken;
    use secrecy::SecretString;

    let Some(token) = SoftHsmToken::create() else {
        return;
    };
    let config = |pin: &str| OnlineKeyToken {
        module: token.module.clone(),
        token_label: token.label.clone(),
        pin: SecretString::from(pin.to_owned()),
    };
    let first = load_or_create_ota_online_keys_on_token(&config(&token.pin)).unwrap();
    use enigm_server::ota::OnlineKey;
    assert!(matches!(first.snapshot, OnlineKey::Token(_)));
    assert!(matches!(first.timestamp, OnlineKey::Token(_)));
    let (snapshot_key, timestamp_key) = (first.snapshot.key(), first.timestamp.key());
    assert_ne!(snapshot_key, timestamp_key, "one key per online role");

    let expires = enigm_types::Timestamp::from_unix_millis(1_900_000_000_000);
    let timestamp = build_timestamp(1, b"{}", 1, expires);
    let signed = enigm_ota::sign_metadata(&timestamp, &[&first.timestamp]).unwrap();
    let (envelope, _) =
        enigm_ota::metadata::parse::<enigm_ota::metadata::Timestamp>(&signed).unwrap();
    let message = enigm_ota::canonical::canonical_json(&envelope.signed).unwrap();
    let signature = &envelope.signatures[0];
    assert_eq!(signature.keyid, timestamp_key.key_id());
    timestamp_key
        .verify(&message, &hex::decode(&signature.sig).unwrap())
        .unwrap();
    drop(first);

    // The next start finds the same keys instead of making new ones (the root names them).
    let again = load_or_create_ota_online_keys_on_token(&config(&token.pin)).unwrap();
    assert_eq!(again.snapshot.key(), snapshot_key);
    assert_eq!(again.timestamp.key(), timestamp_key);
    drop(again);

    let refused = load_or_create_ota_online_keys_on_token(&config("000000"))
        .err()
        .expect("a wrong PIN is refused");
    let message = format!("{refused:#}");
    assert!(
        message.contains("cannot open the PKCS#11 token"),
        "{message}"
    );
    assert!(!message.contains(&token.pin), "{message}");
}
