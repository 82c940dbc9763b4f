//! Enigm Proxy credentials through the real router, on SQLite and PostgreSQL: a credential for
//! a trusted, freshly attested device, bound to its key and verifiable under the published key;
//! every refusal audited with its reason; and the revocation list following the device's
//! record (restricted, `INACTIVE`, told to retire), signed and dated.

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
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use enigm_api::paths;
use enigm_attest::dev::DevAttestationRoot;
use enigm_crypto::Ed25519VerifyingKey;
use enigm_proxyauth::{
    Credential, CredentialId, Proof, ProxyVerifier, RevocationList, TargetAuthority,
    VerifiedRevocations, VerifierPolicy, authorization,
};
use enigm_server::attestation::AttestationConfig;
use enigm_test_support::device::{TestDevice, enrollment};
use enigm_test_support::{Backend, backend_tests};
use enigm_types::{AuditAction, AuditTarget, DeviceHandle, Outcome, ReasonCategory};
use serde_json::json;
use support::{DeviceCalls as _, Response, TestApp, lifecycle, protected};

async fn app_trusting(backend: Backend, root: &DevAttestationRoot) -> TestApp {
    let mut config = AttestationConfig {
        revocation_unchecked: true,
        ..AttestationConfig::default()
    };
    config
        .anchors
        .add_certificate("test-dev-root", &root.certificate_der())
        .unwrap();
    TestApp::with_attestation(backend, config).await
}

async fn token(app: &TestApp) -> String {
    let response = support::create_token(
        app,
        json!({"group": "field", "uses": 10, "attestation_policy": {}}),
    )
    .await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    response.body["token"].as_str().unwrap().to_owned()
}

/// A device enrolled with accepted attestation evidence.
async fn attested(
    app: &TestApp,
    root: &DevAttestationRoot,
    token: &str,
) -> (TestDevice, DeviceHandle) {
    let device = TestDevice::new();
    let challenge = device
        .send(
            app,
            paths::DEVICE_ATTESTATION_CHALLENGE,
            &json!({"purpose": "enrollment"}),
        )
        .await;
    assert_eq!(challenge.status, StatusCode::OK, "{:?}", challenge.body);
    let nonce = challenge.body["nonce"].as_str().unwrap();
    let evidence = device.evidence(root, nonce, "enrollment", app.clock_now(), |_| {});
    let mut body = enrollment(token, protected(app), false);
    body["attestation"] = evidence;
    let response = device.send(app, paths::DEVICE_ENROLL, &body).await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    (
        device,
        response.body["handle"].as_str().unwrap().parse().unwrap(),
    )
}

/// A report the engine evaluates `INACTIVE` for an attested device: its firewall unavailable (its
/// attested claims say nothing of the firewall, so they do not outrank it).
fn inactive(app: &TestApp) -> serde_json::Value {
    enigm_test_support::device::report(app.clock_now(), "unavailable", true)
}

async fn ask(app: &TestApp, device: &TestDevice) -> Response {
    device
        .send(app, paths::DEVICE_PROXY_CREDENTIAL, &json!({}))
        .await
}

async fn published_key(app: &TestApp) -> Ed25519VerifyingKey {
    let response = app.send(get(paths::PROXY_CREDENTIAL_KEY)).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(response.body["algorithm"], "ed25519");
    let bytes = URL_SAFE_NO_PAD
        .decode(response.body["key"].as_str().unwrap())
        .unwrap();
    Ed25519VerifyingKey::from_bytes(&bytes).unwrap()
}

async fn revocations(app: &TestApp, key: &Ed25519VerifyingKey) -> VerifiedRevocations {
    let response = app.send(get(paths::PROXY_REVOCATIONS)).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    let bytes = URL_SAFE_NO_PAD
        .decode(response.body["list"].as_str().unwrap())
        .unwrap();
    let list = RevocationList::parse(&bytes).unwrap().verify(key).unwrap();
    assert_eq!(list.issued_at(), app.clock_now());
    assert_eq!(response.body["revoked"], list.len());
    list
}

fn get(path: &str) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::builder()
        .method(Method::GET)
        .uri(path)
        .body(axum::body::Body::empty())
        .unwrap()
}

fn credential_of(response: &Response) -> Credential {
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    let bytes = URL_SAFE_NO_PAD
        .decode(response.body["credential"].as_str().unwrap())
        .unwrap();
    let credential = Credential::parse(&bytes).unwrap();
    assert_eq!(response.body["id"], credential.claims().id.to_hex());
    credential
}

async fn proxy_events(app: &TestApp) -> Vec<(Outcome, Option<ReasonCategory>)> {
    app.audit_events()
        .await
        .into_iter()
        // Refusals of keys no device holds are counted, not logged one by one (`audit_tally`).
        .filter(|event| {
            event.action == AuditAction::DeviceProxyCredential
                && matches!(event.target, AuditTarget::Device { .. })
        })
        .map(|event| (event.outcome, event.reason))
        .collect()
}

async fn a_credential_binds_the_device_key_and_verifies_under_the_published_key(backend: Backend) {
    let root = DevAttestationRoot::generate().unwrap();
    let app = app_trusting(backend, &root).await;
    let token = token(&app).await;
    let (device, handle) = attested(&app, &root, &token).await;

    let response = ask(&app, &device).await;
    let credential = credential_of(&response);
    let claims = credential.claims();
    assert_eq!(claims.handle, handle);
    assert_eq!(claims.device_key, device.public_key());
    assert_eq!(claims.issued_at, app.clock_now());
    assert_eq!(
        claims.expires_at,
        app.clock_now().saturating_add(Duration::from_secs(600))
    );

    // A proxy pinning the published key admits a proof by the device's key.
    let key = published_key(&app).await;
    let mut verifier = ProxyVerifier::new(key, VerifierPolicy::default());
    verifier
        .install_revocations(revocations(&app, &key).await)
        .unwrap();
    let target = TargetAuthority::parse("service.example:443").unwrap();
    let proof = Proof::sign(device.key(), &credential, &target, [5; 16], app.clock_now());
    let admitted = verifier
        .verify(
            &authorization(&credential, &proof),
            target.as_str(),
            app.clock_now(),
        )
        .unwrap();
    assert_eq!(admitted.credential(), claims.id);

    // Audited as a success naming the device, and nothing else.
    let events = app.audit_events().await;
    let issued = events
        .iter()
        .rev()
        .find(|event| event.action == AuditAction::DeviceProxyCredential)
        .unwrap();
    assert_eq!(issued.outcome, Outcome::Success);
    assert_eq!(issued.target, AuditTarget::Device { handle });
    let logged = serde_json::to_string(issued).unwrap();
    assert!(!logged.contains(&claims.id.to_hex()), "{logged}");
    assert!(!logged.contains(response.body["credential"].as_str().unwrap()));

    // The same signed request again is a replay.
    let request = device.post(paths::DEVICE_PROXY_CREDENTIAL, &json!({}), app.clock_now());
    let first = app.send(request.clone().map(axum::body::Body::from)).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let again = app.send(request.map(axum::body::Body::from)).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "replayed");

    // A second Command process of the deployment signs with the same key.
    let second = app.second_process().await;
    let answer = support::send(second, get(paths::PROXY_CREDENTIAL_KEY)).await;
    assert_eq!(
        answer.body["key"].as_str().unwrap(),
        URL_SAFE_NO_PAD.encode(key.to_bytes())
    );
}

async fn devices_that_do_not_qualify_are_refused_with_their_reason(backend: Backend) {
    let root = DevAttestationRoot::generate().unwrap();
    let app = app_trusting(backend, &root).await;

    // A key no device holds.
    let stranger = TestDevice::new();
    assert_eq!(ask(&app, &stranger).await.code(), "unknown_device");

    // Enrolled without attestation: attest first.
    let (plain, _) = support::enrolled(&app).await;
    let response = ask(&app, &plain).await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert_eq!(response.code(), "attestation_required");

    // Unknown fields in the body.
    let token = token(&app).await;
    let (device, _) = attested(&app, &root, &token).await;
    let response = device
        .send(&app, paths::DEVICE_PROXY_CREDENTIAL, &json!({"imei": "35"}))
        .await;
    assert_eq!(response.code(), "invalid_body");

    // INACTIVE (the firewall unavailable: attested claims do not cover it).
    let (inactive_device, _) = attested(&app, &root, &token).await;
    assert_eq!(
        inactive_device.check_in(&app, inactive(&app)).await.status,
        StatusCode::OK
    );
    assert_eq!(ask(&app, &inactive_device).await.code(), "trust_inactive");

    // Restricted: the device keeps its way to Command, not the proxy.
    let (restricted, restricted_handle) = attested(&app, &root, &token).await;
    let response = lifecycle(&app, &app.owner, restricted_handle.as_str(), "restrict").await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(ask(&app, &restricted).await.code(), "device_restricted");

    // An attestation older than the policy's day, with a fresh check-in: not affirming.
    app.clock.advance(Duration::from_secs(24 * 3600 + 1));
    assert_eq!(
        device.check_in(&app, protected(&app)).await.status,
        StatusCode::OK
    );
    let response = ask(&app, &device).await;
    assert_eq!(
        response.code(),
        "attestation_not_affirming",
        "{:?}",
        response.body
    );

    let reasons: Vec<Option<ReasonCategory>> = proxy_events(&app)
        .await
        .into_iter()
        .map(|(outcome, reason)| {
            assert_eq!(outcome, Outcome::Denied);
            reason
        })
        .collect();
    assert_eq!(
        reasons,
        [
            Some(ReasonCategory::AttestationRequired),
            Some(ReasonCategory::InvalidBody),
            Some(ReasonCategory::TrustInactive),
            Some(ReasonCategory::DeviceRestricted),
            Some(ReasonCategory::AttestationNotAffirming),
        ],
        "the unknown key is counted with the anonymous refusals"
    );
}

async fn the_revocation_list_follows_each_devices_record(backend: Backend) {
    let root = DevAttestationRoot::generate().unwrap();
    let app = app_trusting(backend, &root).await;
    let token = token(&app).await;
    let key = published_key(&app).await;

    let (kept, _) = attested(&app, &root, &token).await;
    let (restricted, restricted_handle) = attested(&app, &root, &token).await;
    let (falls, _) = attested(&app, &root, &token).await;
    let (retiring, retiring_handle) = attested(&app, &root, &token).await;
    let id = |response: &Response| credential_of(response).claims().id;
    let kept_id = id(&ask(&app, &kept).await);
    let restricted_id = id(&ask(&app, &restricted).await);
    let falls_id = id(&ask(&app, &falls).await);
    let retiring_id = id(&ask(&app, &retiring).await);
    assert!(revocations(&app, &key).await.is_empty());

    let response = lifecycle(&app, &app.owner, restricted_handle.as_str(), "restrict").await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(
        falls.check_in(&app, inactive(&app)).await.status,
        StatusCode::OK
    );
    let response = lifecycle(&app, &app.owner, retiring_handle.as_str(), "retire").await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(ask(&app, &retiring).await.code(), "device_not_active");

    let list = revocations(&app, &key).await;
    let mut expected: Vec<CredentialId> = vec![restricted_id, falls_id, retiring_id];
    expected.sort();
    assert_eq!(list.len(), 3);
    for revoked in expected {
        assert!(list.contains(revoked));
    }
    assert!(!list.contains(kept_id));

    // Expired credentials leave the list: it holds only what a proxy could still be shown.
    app.clock.advance(Duration::from_secs(601));
    assert!(revocations(&app, &key).await.is_empty());
}

backend_tests!(
    a_credential_binds_the_device_key_and_verifies_under_the_published_key,
    devices_that_do_not_qualify_are_refused_with_their_reason,
    the_revocation_list_follows_each_devices_record,
);
