//! Remote attestation through the real router, on SQLite and PostgreSQL: single-use challenges
//! bound to the device and the purpose, enrollment with evidence (and without, when the policy
//! requires it), every rejection reason reachable over the API and audited, pairing and no
//! downgrade, only the outcome stored, and OTA eligibility following the last attestation.
//!
//! Chains are minted under a development root the test pins, exactly as simulated devices do;
//! the chains of real devices go through the same verifier in `enigm-attest`'s vector tests.

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
use enigm_api::paths;
use enigm_attest::android::key_description::{KeyDescription, SecurityLevel};
use enigm_attest::challenge::expected_challenge;
use enigm_attest::dev::DevAttestationRoot;
use enigm_server::attestation::AttestationConfig;
use enigm_test_support::device::{PATCH_DAY, TestDevice, enrollment};
use enigm_test_support::{Backend, backend_tests};
use enigm_types::{AuditAction, DeviceHandle, Outcome, ReasonCategory};
use serde_json::{Value, json};
use support::{DeviceCalls as _, Response, TestApp, protected};

/// What a device does for attestation, on top of [`DeviceCalls`].
trait Attesting {
    /// A nonce for `purpose` (base64).
    async fn challenge(&self, app: &TestApp, purpose: &str) -> String;

    /// Evidence for `nonce`, bound to `purpose`, from `root`, now, after `change` edits the
    /// claims.
    fn evidence_now(
        &self,
        app: &TestApp,
        root: &DevAttestationRoot,
        nonce: &str,
        purpose: &str,
        change: impl FnOnce(&mut KeyDescription),
    ) -> Value;

    /// Enrolls with a protected report, no wipe opt-in, and `evidence` if any.
    async fn enroll_with(&self, app: &TestApp, token: &str, evidence: Option<Value>) -> Response;

    /// Enrolls with an accepted attestation.
    async fn enroll_attested(
        &self,
        app: &TestApp,
        root: &DevAttestationRoot,
        token: &str,
    ) -> DeviceHandle;

    /// Attests as an enrolled device, after `change` edits the claims.
    async fn attest(
        &self,
        app: &TestApp,
        root: &DevAttestationRoot,
        change: impl FnOnce(&mut KeyDescription),
    ) -> Response;
}

impl Attesting for TestDevice {
    async fn challenge(&self, app: &TestApp, purpose: &str) -> String {
        let response = self
            .send(
                app,
                paths::DEVICE_ATTESTATION_CHALLENGE,
                &json!({"purpose": purpose}),
            )
            .await;
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
        response.body["nonce"].as_str().unwrap().to_owned()
    }

    fn evidence_now(
        &self,
        app: &TestApp,
        root: &DevAttestationRoot,
        nonce: &str,
        purpose: &str,
        change: impl FnOnce(&mut KeyDescription),
    ) -> Value {
        self.evidence(root, nonce, purpose, app.clock_now(), change)
    }

    async fn enroll_with(&self, app: &TestApp, token: &str, evidence: Option<Value>) -> Response {
        let mut body = enrollment(token, protected(app), false);
        if let Some(evidence) = evidence {
            body["attestation"] = evidence;
        }
        self.send(app, paths::DEVICE_ENROLL, &body).await
    }

    async fn enroll_attested(
        &self,
        app: &TestApp,
        root: &DevAttestationRoot,
        token: &str,
    ) -> DeviceHandle {
        let nonce = self.challenge(app, "enrollment").await;
        let evidence = self.evidence_now(app, root, &nonce, "enrollment", |_| {});
        let response = self.enroll_with(app, token, Some(evidence)).await;
        assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
        response.body["handle"].as_str().unwrap().parse().unwrap()
    }

    async fn attest(
        &self,
        app: &TestApp,
        root: &DevAttestationRoot,
        change: impl FnOnce(&mut KeyDescription),
    ) -> Response {
        let nonce = self.challenge(app, "attestation").await;
        let evidence = self.evidence_now(app, root, &nonce, "attestation", change);
        self.send(
            app,
            paths::DEVICE_ATTESTATION,
            &json!({"evidence": evidence}),
        )
        .await
    }
}

/// A Command that trusts `root` (and checks no revocation list, as with
/// `--insecure-dev-attestation-root`).
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

async fn token(app: &TestApp, uses: u32, attestation_policy: Value) -> String {
    let response = app
        .call(
            Method::POST,
            paths::ENROLLMENT_TOKENS,
            Some(&app.owner),
            Some(app.owner.pin),
            Some(json!({"group": "field", "uses": uses, "attestation_policy": attestation_policy})),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    response.body["token"].as_str().unwrap().to_owned()
}

async fn device_view(app: &TestApp, handle: DeviceHandle) -> Value {
    let response = app
        .get(&format!("/api/v1/devices/{handle}"), &app.owner)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    response.body
}

/// The reasons of the `device.attest` events so far, in order (`None` for an acceptance).
async fn attest_outcomes(app: &TestApp) -> Vec<Option<ReasonCategory>> {
    app.audit_events()
        .await
        .into_iter()
        .filter(|event| event.action == AuditAction::DeviceAttest)
        .map(|event| {
            assert_eq!(
                event.outcome,
                if event.reason.is_some() {
                    Outcome::Denied
                } else {
                    Outcome::Success
                }
            );
            event.reason
        })
        .collect()
}

async fn ota(app: &TestApp, handle: DeviceHandle) -> Value {
    let response = app
        .call(
            Method::POST,
            paths::ELIGIBILITY,
            Some(&app.owner),
            None,
            Some(json!({"device": handle, "action": "ota"})),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    response.body
}

backend_tests!(
    enrollment_with_an_accepted_attestation_pairs_the_device_and_keeps_only_the_outcome,
    attestation_is_required_for_enrollment_when_the_policy_says_so,
    every_rejection_reason_is_reachable_and_audited,
    ota_eligibility_follows_the_last_attestation,
    challenges_are_signed_and_bounded,
    tpm_devices_enroll_and_attest_with_quotes_from_a_real_tpm,
);

async fn enrollment_with_an_accepted_attestation_pairs_the_device_and_keeps_only_the_outcome(
    backend: Backend,
) {
    let root = DevAttestationRoot::generate().unwrap();
    let app = app_trusting(backend, &root).await;
    let token = token(&app, 1, json!({"required_for": {"enrollment": true}})).await;
    let device = TestDevice::new();
    let handle = device.enroll_attested(&app, &root, &token).await;

    let view = device_view(&app, handle).await;
    let attestation = &view["attestation"];
    assert_eq!(attestation["verdict"], "accepted", "{view}");
    assert_eq!(attestation["format"], "android_key");
    assert_eq!(
        attestation["claims"]["security_level"],
        "TRUSTED_ENVIRONMENT"
    );
    assert_eq!(attestation["claims"]["verified_boot_state"], "VERIFIED");
    assert_eq!(attestation["claims"]["device_locked"], true);
    assert_eq!(attestation["claims"]["os_patch_level"], PATCH_DAY / 100);
    assert_eq!(attestation["claims"]["root"], "operator:test-dev-root");
    assert_eq!(attest_outcomes(&app).await, vec![None]);

    // Only the outcome is stored: no certificate, no hardware key, nothing but the keyed pin.
    let record = app
        .store
        .device_attestation(&handle)
        .await
        .unwrap()
        .unwrap();
    let stored = format!("{record:?}");
    let attested_key = device.attestation_public_key_der();
    assert!(!stored.contains(&hex::encode(&attested_key)));
    assert!(!stored.contains(&base64::engine::general_purpose::STANDARD.encode(&attested_key)));
    assert!(!stored.contains("BEGIN CERTIFICATE"));
    assert!(record.pairing.is_some());
}

async fn attestation_is_required_for_enrollment_when_the_policy_says_so(backend: Backend) {
    let root = DevAttestationRoot::generate().unwrap();
    let app = app_trusting(backend, &root).await;
    let required = token(&app, 1, json!({"required_for": {"enrollment": true}})).await;
    let device = TestDevice::new();
    let refused = device.enroll_with(&app, &required, None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    assert_eq!(refused.code(), "attestation_required");
    // The refusal spent nothing: the one-use token still enrolls an attested device.
    device.enroll_attested(&app, &root, &required).await;

    // A rejected attestation refuses the enrollment too, and leaves the token unspent.
    let token = token(&app, 1, json!({})).await;
    let unlocked = TestDevice::new();
    let nonce = unlocked.challenge(&app, "enrollment").await;
    let evidence = unlocked.evidence_now(&app, &root, &nonce, "enrollment", |d| {
        d.hardware_enforced
            .root_of_trust
            .as_mut()
            .unwrap()
            .device_locked = false;
    });
    let refused = unlocked.enroll_with(&app, &token, Some(evidence)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    assert_eq!(refused.code(), "ineligible_build");
    TestDevice::new().enroll_attested(&app, &root, &token).await;
}

async fn every_rejection_reason_is_reachable_and_audited(backend: Backend) {
    let root = DevAttestationRoot::generate().unwrap();
    let app = app_trusting(backend, &root).await;
    let device = TestDevice::new();
    let token = token(&app, 2, json!({})).await;
    let handle = device.enroll_attested(&app, &root, &token).await;
    let other = TestDevice::new();
    other.enroll_attested(&app, &root, &token).await;

    // Replay: a nonce used once is gone.
    let nonce = device.challenge(&app, "attestation").await;
    let evidence = device.evidence_now(&app, &root, &nonce, "attestation", |_| {});
    let body = json!({"evidence": evidence});
    let first = device.send(&app, paths::DEVICE_ATTESTATION, &body).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let again = device.send(&app, paths::DEVICE_ATTESTATION, &body).await;
    assert_eq!(again.code(), "replay_attempt", "{:?}", again.body);

    // Replay: another device's nonce, and a challenge bound to another purpose.
    let foreign = other.challenge(&app, "attestation").await;
    let evidence = device.evidence_now(&app, &root, &foreign, "attestation", |_| {});
    let response = device
        .send(
            &app,
            paths::DEVICE_ATTESTATION,
            &json!({"evidence": evidence}),
        )
        .await;
    assert_eq!(response.code(), "replay_attempt", "{:?}", response.body);
    let nonce = device.challenge(&app, "attestation").await;
    let evidence = device.evidence_now(&app, &root, &nonce, "enrollment", |_| {});
    let response = device
        .send(
            &app,
            paths::DEVICE_ATTESTATION,
            &json!({"evidence": evidence}),
        )
        .await;
    assert_eq!(response.code(), "replay_attempt", "{:?}", response.body);

    // Stale: the nonce outlived its 60 seconds.
    let nonce = device.challenge(&app, "attestation").await;
    let evidence = device.evidence_now(&app, &root, &nonce, "attestation", |_| {});
    app.clock.advance(Duration::from_secs(61));
    let response = device
        .send(
            &app,
            paths::DEVICE_ATTESTATION,
            &json!({"evidence": evidence}),
        )
        .await;
    assert_eq!(response.code(), "stale_attestation", "{:?}", response.body);

    // Invalid trust chain: a root Command does not trust.
    let stranger = DevAttestationRoot::generate().unwrap();
    let response = device.attest(&app, &stranger, |_| {}).await;
    assert_eq!(
        response.code(),
        "invalid_trust_chain",
        "{:?}",
        response.body
    );

    // Unsupported device: software-backed keys.
    let response = device
        .attest(&app, &root, |d| {
            d.attestation_security_level = SecurityLevel::Software;
            d.key_mint_security_level = SecurityLevel::Software;
        })
        .await;
    assert_eq!(response.code(), "unsupported_device", "{:?}", response.body);

    // Ineligible build: an unlocked bootloader, and a downgrade after pairing.
    let response = device
        .attest(&app, &root, |d| {
            d.hardware_enforced
                .root_of_trust
                .as_mut()
                .unwrap()
                .device_locked = false;
        })
        .await;
    assert_eq!(response.code(), "ineligible_build", "{:?}", response.body);
    let response = device
        .attest(&app, &root, |d| {
            d.hardware_enforced.os_patch_level = Some(202_001)
        })
        .await;
    assert_eq!(response.code(), "ineligible_build", "{:?}", response.body);
    assert!(
        response.body["message"]
            .as_str()
            .unwrap()
            .contains("downgrade")
    );

    // Eligibility failure: the same device key, another attestation key than the pinned one.
    let swapped = device.with_new_attestation_key();
    let response = swapped.attest(&app, &root, |_| {}).await;
    assert_eq!(
        response.code(),
        "eligibility_failure",
        "{:?}",
        response.body
    );

    // And a genuine attestation is still accepted: rejections moved nothing.
    let response = device.attest(&app, &root, |_| {}).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(response.body["verdict"], "accepted");

    use ReasonCategory as R;
    assert_eq!(
        attest_outcomes(&app).await,
        vec![
            None,
            None,
            None,
            Some(R::ReplayAttempt),
            Some(R::ReplayAttempt),
            Some(R::ReplayAttempt),
            Some(R::StaleAttestation),
            Some(R::InvalidTrustChain),
            Some(R::UnsupportedDevice),
            Some(R::IneligibleBuild),
            Some(R::IneligibleBuild),
            Some(R::EligibilityFailure),
            None,
        ]
    );
    let view = device_view(&app, handle).await;
    assert_eq!(view["attestation"]["verdict"], "accepted");
}

async fn ota_eligibility_follows_the_last_attestation(backend: Backend) {
    let root = DevAttestationRoot::generate().unwrap();
    let app = app_trusting(backend, &root).await;
    // An unattested device is not eligible for OTA.
    let plain = TestDevice::new();
    let token_plain = token(&app, 1, json!({})).await;
    let response = plain.enroll_with(&app, &token_plain, None).await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    let plain_handle: DeviceHandle = response.body["handle"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        ota(&app, plain_handle).await,
        json!({"decision": "deny", "reason": "missing_attestation"})
    );

    let token = token(&app, 1, json!({"max_age_seconds": 600})).await;
    let device = TestDevice::new();
    let handle = device.enroll_attested(&app, &root, &token).await;
    assert_eq!(ota(&app, handle).await, json!({"decision": "allow"}));

    // Too old: no longer affirming.
    app.clock.advance(Duration::from_secs(601));
    // Keep the posture fresh, so that only the attestation decides.
    let check_in = device.check_in(&app, protected(&app)).await;
    assert_eq!(check_in.status, StatusCode::OK, "{:?}", check_in.body);
    assert_eq!(
        ota(&app, handle).await,
        json!({"decision": "deny", "reason": "attestation_not_affirming"})
    );
    let response = device.attest(&app, &root, |_| {}).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(ota(&app, handle).await, json!({"decision": "allow"}));

    // The last attestation rejected: contraindicated.
    let response = device
        .attest(&app, &root, |d| {
            d.hardware_enforced
                .root_of_trust
                .as_mut()
                .unwrap()
                .device_locked = false;
        })
        .await;
    assert_eq!(response.code(), "ineligible_build");
    assert_eq!(
        ota(&app, handle).await,
        json!({"decision": "deny", "reason": "attestation_not_affirming"})
    );
}

async fn challenges_are_signed_and_bounded(backend: Backend) {
    let root = DevAttestationRoot::generate().unwrap();
    let app = app_trusting(backend, &root).await;
    // An unenrolled device may ask only for an enrollment challenge.
    let device = TestDevice::new();
    let response = device
        .send(
            &app,
            paths::DEVICE_ATTESTATION_CHALLENGE,
            &json!({"purpose": "attestation"}),
        )
        .await;
    assert_eq!(response.code(), "unknown_device", "{:?}", response.body);
    let response = device
        .send(
            &app,
            paths::DEVICE_ATTESTATION_CHALLENGE,
            &json!({"purpose": "anything"}),
        )
        .await;
    assert_eq!(response.code(), "invalid_body", "{:?}", response.body);
    // Unsigned: refused before anything is issued.
    let response = app
        .call(
            Method::POST,
            paths::DEVICE_ATTESTATION_CHALLENGE,
            None,
            None,
            Some(json!({"purpose": "enrollment"})),
        )
        .await;
    assert_eq!(
        response.status,
        StatusCode::UNAUTHORIZED,
        "{:?}",
        response.body
    );
    // Garbage evidence is a rejection with a reason, never a crash.
    let token = token(&app, 1, json!({})).await;
    device.enroll_attested(&app, &root, &token).await;
    let nonce = device.challenge(&app, "attestation").await;
    for chain in [
        json!([]),
        json!(["not base64!"]),
        json!(["AAAA"]),
        json!([base64::engine::general_purpose::STANDARD.encode(vec![0x30; 40_000])]),
    ] {
        let response = device
            .send(
                &app,
                paths::DEVICE_ATTESTATION,
                &json!({"evidence": {"format": "android_key", "nonce": nonce, "chain": chain}}),
            )
            .await;
        assert!(
            ["replay_attempt", "invalid_trust_chain", "payload_too_large"]
                .contains(&response.code()),
            "{:?}",
            response.body
        );
    }
}

/// TPM evidence for `nonce` and `purpose`: a quote by `ak` of the swtpm over the challenge.
fn tpm_evidence(
    tpm: &enigm_test_support::swtpm::Swtpm,
    device: &TestDevice,
    ak: &str,
    ak_public: &[u8],
    nonce: &str,
    purpose: &str,
) -> Value {
    let nonce_bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(nonce)
        .unwrap()
        .try_into()
        .unwrap();
    let challenge = expected_challenge(&nonce_bytes, &device.public_key(), purpose);
    let quote = tpm.quote(ak, &challenge);
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    json!({
        "format": "tpm2_quote",
        "nonce": nonce,
        "attestation_key": b64(ak_public),
        "quote": b64(&quote.attest),
        "signature": b64(&quote.signature),
        "pcrs": quote
            .pcrs
            .iter()
            .map(|(index, value)| (index.to_string(), Value::String(hex::encode(value))))
            .collect::<serde_json::Map<_, _>>(),
    })
}

async fn tpm_devices_enroll_and_attest_with_quotes_from_a_real_tpm(backend: Backend) {
    let Some(tpm) = enigm_test_support::swtpm::Swtpm::start() else {
        return;
    };
    tpm.extend_pcr16('c');
    let ak_public = tpm.create_ak("ak", "ecc");
    let other_public = tpm.create_ak("other", "rsa");
    let root = DevAttestationRoot::generate().unwrap();
    let app = app_trusting(backend, &root).await;
    let reference = tpm.quote("ak", &[0; 32]).pcrs;
    let reference: serde_json::Map<String, Value> = reference
        .iter()
        .map(|(index, value)| (index.to_string(), Value::String(hex::encode(value))))
        .collect();
    let token = token(
        &app,
        1,
        json!({"tpm_pcrs": reference, "required_for": {"enrollment": true}}),
    )
    .await;

    // Enrollment with a quote: the AK is pinned.
    let device = TestDevice::new();
    let nonce = device.challenge(&app, "enrollment").await;
    let evidence = tpm_evidence(&tpm, &device, "ak", &ak_public, &nonce, "enrollment");
    let response = device.enroll_with(&app, &token, Some(evidence)).await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    let handle: DeviceHandle = response.body["handle"].as_str().unwrap().parse().unwrap();
    let view = device_view(&app, handle).await;
    assert_eq!(view["attestation"]["verdict"], "accepted", "{view}");
    assert_eq!(view["attestation"]["format"], "tpm2_quote");
    assert_eq!(view["attestation"]["claims"]["security_level"], "TPM");
    assert_eq!(ota(&app, handle).await, json!({"decision": "allow"}));

    let attest = |ak: &'static str, public: Vec<u8>, purpose: &'static str| {
        let device = &device;
        let app = &app;
        let tpm = &tpm;
        async move {
            let nonce = device.challenge(app, "attestation").await;
            let evidence = tpm_evidence(tpm, device, ak, &public, &nonce, purpose);
            device
                .send(
                    app,
                    paths::DEVICE_ATTESTATION,
                    &json!({"evidence": evidence}),
                )
                .await
        }
    };
    let response = attest("ak", ak_public.clone(), "attestation").await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    // Another AK of the same TPM is not the one registered at enrollment.
    let response = attest("other", other_public, "attestation").await;
    assert_eq!(
        response.code(),
        "eligibility_failure",
        "{:?}",
        response.body
    );
    // A quote over a challenge for another purpose: the nonce is not the quote's.
    let response = attest("ak", ak_public.clone(), "enrollment").await;
    assert_eq!(response.code(), "replay_attempt", "{:?}", response.body);
    // The boot chain changed (PCR 16 extended): an ineligible build.
    tpm.extend_pcr16('d');
    let response = attest("ak", ak_public.clone(), "attestation").await;
    assert_eq!(response.code(), "ineligible_build", "{:?}", response.body);
    assert_eq!(
        ota(&app, handle).await,
        json!({"decision": "deny", "reason": "attestation_not_affirming"})
    );
}
