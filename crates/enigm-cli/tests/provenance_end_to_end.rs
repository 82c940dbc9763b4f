//! Signal provenance with the real `enigm` binary as Command, on SQLite and PostgreSQL: a device
//! whose profile declares every protection `ok` but whose attestation says its bootloader is
//! unlocked (accepted under a policy that allows unlocked builds) or its OS self-signed by a key
//! nobody allow-listed (rejected as an ineligible build: genuine evidence of a bad build) is not
//! PROTECTED. The finding names both sources, `enigm admin devices show` shows them, and the
//! audit log has the trust change with the contradiction's layer. The one decision function
//! denies every protected action on those devices for their integrity.
//!
//! The device side is a signed-request client from `enigm-test-support` (the simulated agent
//! always attests a locked, verified build), talking HTTP to the Command process.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::path::Path;

use enigm_api::paths;
use enigm_attest::android::key_description::VerifiedBootState;
use enigm_attest::dev::DevAttestationRoot;
use enigm_test_support::device::{CRITICAL_SIGNALS, SET_UP, TestDevice};
use enigm_test_support::{Backend, TestDatabase, backend_tests};
use enigm_types::Timestamp;
use serde_json::{Value, json};

use crate::support::{Owner, Server};

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn now() -> Timestamp {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    Timestamp::from_unix_millis(i64::try_from(millis).unwrap())
}

/// Every baseline critical signal declared `ok`, with the simulated build's patch level.
fn declared_all_ok() -> Value {
    let at = now().unix_millis();
    let signals: Vec<Value> = CRITICAL_SIGNALS
        .iter()
        .chain(["bootloader-locked", "verified-boot"].iter())
        .map(|kind| json!({"kind": kind, "value": "ok", "observed_at": at, "source": "declared"}))
        .collect();
    json!({"signals": signals, "patch_level": "2026-11-05"})
}

/// Sends a signed device request to the Command process; the status and JSON body.
async fn send(url: &str, device: &TestDevice, path: &str, body: &Value) -> (u16, Value) {
    let request = device.post(path, body, now());
    let (parts, bytes) = request.into_parts();
    let mut builder = reqwest::Client::new().post(format!("{url}{path}"));
    for (name, value) in &parts.headers {
        builder = builder.header(name.as_str(), value.as_bytes());
    }
    let response = builder.body(bytes).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Enrolls with a declared all-ok report, then attests with the simulated build after `change`.
async fn enroll_and_attest(
    url: &str,
    device: &TestDevice,
    token: &str,
    root: &DevAttestationRoot,
    change: impl FnOnce(&mut enigm_attest::android::key_description::KeyDescription),
) -> (u16, Value) {
    let enroll = json!({
        "enrollment_token": token,
        "report": declared_all_ok(),
        "managed_opt_in": false,
        "wipe_opt_in": false,
    });
    let (status, body) = send(url, device, paths::DEVICE_ENROLL, &enroll).await;
    assert_eq!(status, 201, "{body}");
    // Declared `ok` everywhere: PROTECTED under the baseline, before any attestation.
    assert_eq!(body["trust"]["state"], "PROTECTED", "{body}");
    let (status, challenge) = send(
        url,
        device,
        paths::DEVICE_ATTESTATION_CHALLENGE,
        &json!({"purpose": "attestation"}),
    )
    .await;
    assert_eq!(status, 200, "{challenge}");
    let nonce = challenge["nonce"].as_str().unwrap();
    let evidence = device.evidence(root, nonce, "attestation", now(), change);
    send(
        url,
        device,
        paths::DEVICE_ATTESTATION,
        &json!({"evidence": evidence}),
    )
    .await
}

backend_tests!(a_declared_ok_device_whose_attestation_says_otherwise_is_not_protected);

async fn a_declared_ok_device_whose_attestation_says_otherwise_is_not_protected(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let dev_root = dir.path().join("dev-root");
    let mut server_args = vec!["--insecure-dev-attestation-root", path(&dev_root)];
    if backend == Backend::Postgres {
        server_args.extend(["--database-url", db.url()]);
    }
    let server = Server::start(&data_dir, &server_args);
    let url = server.url.clone();
    let root = DevAttestationRoot::from_key_pem(
        &std::fs::read_to_string(dev_root.join("dev-attestation-root.key")).unwrap(),
    )
    .unwrap();

    let owner_login = Owner::log_in(dir.path(), &data_dir, &url);
    let owner = &owner_login.cli;
    let pin = owner_login.pin.clone();
    // An attestation policy that accepts unlocked builds, so that the claims of an unlocked
    // device are recorded as an accepted attestation.
    let lenient = dir.path().join("lenient.json");
    std::fs::write(&lenient, r#"{"require_locked": false}"#).unwrap();
    let token_for = |policy: Option<&Path>| {
        let mut args = vec![
            "admin",
            "enrollment-token",
            "create",
            "--group",
            "field",
            "--pin-file",
            path(&pin),
        ];
        if let Some(policy) = policy {
            args.extend(["--attestation-policy-file", path(policy)]);
        }
        owner.json(&args)["token"].as_str().unwrap().to_owned()
    };

    // 1. Unlocked, accepted under the lenient policy.
    let unlocked = TestDevice::new();
    let (status, attested) = enroll_and_attest(
        &url,
        &unlocked,
        &token_for(Some(&lenient)),
        &root,
        |description| {
            if let Some(root_of_trust) = description.hardware_enforced.root_of_trust.as_mut() {
                root_of_trust.device_locked = false;
            }
        },
    )
    .await;
    assert_eq!(status, 200, "{attested}");
    assert_eq!(attested["verdict"], "accepted", "{attested}");

    // 2. Self-signed by a key nobody allow-listed: rejected as an ineligible build, whose claims
    //    are genuine evidence.
    let self_signed = TestDevice::new();
    let (status, rejected) =
        enroll_and_attest(&url, &self_signed, &token_for(None), &root, |description| {
            if let Some(root_of_trust) = description.hardware_enforced.root_of_trust.as_mut() {
                root_of_trust.verified_boot_state = VerifiedBootState::SelfSigned;
            }
        })
        .await;
    assert_eq!(status, 403, "{rejected}");
    assert_eq!(rejected["code"], "ineligible_build", "{rejected}");

    for (device, contradicted) in [
        (&unlocked, "bootloader-locked"),
        (&self_signed, "secure-boot"),
    ] {
        // The same declared all-ok report at the next check-in.
        let (status, trust) = send(
            &url,
            device,
            paths::DEVICE_CHECK_INS,
            // Set up completely, so that only the contradiction stands between the device and
            // the protected actions.
            &json!({"report": declared_all_ok(), "setup": SET_UP}),
        )
        .await;
        assert_eq!(status, 200, "{trust}");
        assert_eq!(trust["state"], "INACTIVE", "{trust}");
        let findings = trust["findings"].as_array().unwrap();
        let contradiction = findings
            .iter()
            .find(|finding| {
                finding["kind"] == "source-contradiction" && finding["signal"] == contradicted
            })
            .unwrap_or_else(|| panic!("no contradiction of {contradicted}: {trust}"));
        assert_eq!(contradiction["severity"], "Critical");
        assert_eq!(contradiction["source"], "attested");
        assert_eq!(contradiction["reported_source"], "declared");
    }

    // Every device the owner sees: both INACTIVE, each with its contradiction.
    let listed = owner.json(&["admin", "devices", "list"]);
    let handles: Vec<String> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|device| device["handle"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(handles.len(), 2, "{listed}");
    for handle in &handles {
        let device = owner.json(&["admin", "devices", "show", handle]);
        assert_eq!(device["trust"]["state"], "INACTIVE", "{device}");
        let findings = device["trust"]["findings"].as_array().unwrap();
        assert!(
            findings
                .iter()
                .any(|finding| finding["kind"] == "source-contradiction"
                    && finding["source"] == "attested"
                    && finding["reported_source"] == "declared"),
            "{device}"
        );
        // The boot-integrity gate rests on the attested values.
        let gates = device["production_gates"].as_array().unwrap();
        let boot = gates
            .iter()
            .find(|gate| gate["gate"] == "boot-integrity")
            .unwrap();
        assert_eq!(boot["result"], "fail", "{boot}");
        assert!(
            boot["because"]
                .as_array()
                .unwrap()
                .iter()
                .any(|evidence| evidence["source"] == "attested"),
            "{boot}"
        );
        let shown = owner.ok(&["admin", "devices", "show", handle]);
        assert!(shown.contains("attested vs declared"), "{shown}");
        // The one decision function names the contradiction for every protected action, but
        // the policy bundle (which never raises trust) may still reach the device.
        for action in ["network", "ota"] {
            let denied = owner.run(&["admin", "devices", "decide", handle, "--action", action]);
            assert_eq!(denied.status.code(), Some(1), "{action}: {denied:?}");
            let said = String::from_utf8_lossy(&denied.stderr);
            assert!(
                said.contains("deny: integrity_contradicted"),
                "{action}: {said}"
            );
        }
        let bundle = owner.ok(&[
            "admin",
            "devices",
            "decide",
            handle,
            "--action",
            "ota",
            "--resource",
            "policy-bundle",
        ]);
        assert_eq!(bundle.trim(), "allow");
        let mismatch = owner.run(&[
            "admin",
            "devices",
            "decide",
            handle,
            "--action",
            "network",
            "--resource",
            "os-image",
        ]);
        assert!(
            String::from_utf8_lossy(&mismatch.stderr).contains("deny: resource_mismatch"),
            "{mismatch:?}"
        );
    }

    // The audit log records each contradiction with the trust change, as categories only.
    let events = owner.json(&[
        "audit",
        "events",
        "--action",
        "device.trust-change",
        "--limit",
        "100",
    ]);
    let text = events.to_string();
    let contradicted: Vec<&Value> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| {
            event["target_ref"]
                .as_str()
                .is_some_and(|reference| reference.contains(" contradicted:"))
        })
        .collect();
    assert_eq!(contradicted.len(), 2, "{text}");
    let mut layers: Vec<&str> = contradicted
        .iter()
        .map(|event| {
            let reference = event["target_ref"].as_str().unwrap();
            assert!(reference.contains("PROTECTED->INACTIVE"), "{event}");
            reference.rsplit(':').next().unwrap()
        })
        .collect();
    layers.sort_unstable();
    // The unlocked bootloader (hardware integrity) and the self-signed OS (verified boot).
    assert_eq!(
        layers,
        ["hardware-integrity", "hardware-integrity,verified-boot"],
        "{text}"
    );
    // Categories only: no claim values in the log.
    for secret in ["SELF_SIGNED", "device_locked", "verified_boot_key"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    server.stop();
}
