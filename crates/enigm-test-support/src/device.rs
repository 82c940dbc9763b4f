//! [`TestDevice`]: a simulated device for tests of Command's device routes. It holds a device
//! key (and a dev-root attestation key), makes RFC 9421 signed requests with fresh nonces
//! (`enigm-device`), and builds the bodies devices send: enrollment, check-in with a signal
//! report of the baseline policy, and Android-format attestation evidence under a
//! [`DevAttestationRoot`].
//!
//! Requests come out as `http::Request<Vec<u8>>`, so that each test harness sends them through
//! its own router or client.

use std::time::Duration;

use base64::Engine as _;
use enigm_attest::android::key_description::KeyDescription;
use enigm_attest::challenge::expected_challenge;
use enigm_attest::dev::{DevAttestationRoot, DevAttestedKey, simulated_key_description};
use enigm_crypto::Ed25519SigningKey;
use enigm_device::{NONCE_LEN, RequestParts, sign_request};
use enigm_types::Timestamp;
use rand::RngCore as _;
use serde_json::{Value, json};

/// The security patch level the simulated devices report (2026-11-05).
pub const PATCH_DAY: i64 = 20_261_105;

/// The baseline policy's critical signals.
pub const CRITICAL_SIGNALS: [&str; 6] = [
    "device-integrity",
    "secure-boot",
    "disk-encryption",
    "firewall",
    "security-service",
    "signal-collector",
];

/// A simulated device: its keys live here only.
pub struct TestDevice {
    key: Ed25519SigningKey,
    attested: DevAttestedKey,
}

impl TestDevice {
    /// A device with a fresh device key and a fresh attestation key.
    #[expect(
        clippy::expect_used,
        reason = "a test fixture: a P-256 key that cannot be generated ends the test"
    )]
    pub fn new() -> TestDevice {
        TestDevice {
            key: Ed25519SigningKey::generate(&mut rand::rngs::OsRng),
            attested: DevAttestedKey::generate().expect("a dev attestation key"),
        }
    }

    /// The same device key with a fresh attestation key: the device as it would look after
    /// its attestation key was swapped.
    #[expect(
        clippy::expect_used,
        reason = "a test fixture: a P-256 key that cannot be generated ends the test"
    )]
    pub fn with_new_attestation_key(&self) -> TestDevice {
        TestDevice {
            key: Ed25519SigningKey::from_seed(&self.key.seed()),
            attested: DevAttestedKey::generate().expect("a dev attestation key"),
        }
    }

    /// The device key itself, for what a device signs besides its requests (Enigm Proxy
    /// proofs).
    pub fn key(&self) -> &Ed25519SigningKey {
        &self.key
    }

    /// The device's public key, the one Command derives the handle from.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The public key of the device's attestation key, DER (to check that Command never keeps
    /// it).
    pub fn attestation_public_key_der(&self) -> Vec<u8> {
        self.attested.public_key_der()
    }

    /// A request signed at `created` with a fresh nonce.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        created: Timestamp,
    ) -> http::Request<Vec<u8>> {
        self.request_with_nonce(method, path, body, created, &fresh_nonce())
    }

    /// A request signed at `created` with `nonce` (to replay one, or to sign one stale).
    #[expect(
        clippy::expect_used,
        reason = "a test fixture: the method, path and headers come from the test itself"
    )]
    pub fn request_with_nonce(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        created: Timestamp,
        nonce: &[u8; NONCE_LEN],
    ) -> http::Request<Vec<u8>> {
        let headers = sign_request(
            &self.key,
            &RequestParts {
                method,
                path,
                query: "",
                body,
            },
            created,
            nonce,
        );
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .header(enigm_device::CONTENT_DIGEST, headers.content_digest)
            .header(enigm_device::SIGNATURE_INPUT, headers.signature_input)
            .header(enigm_device::SIGNATURE, headers.signature)
            .body(body.to_vec());
        request.expect("a well-formed signed request")
    }

    /// A `POST` of `body` as JSON, signed at `created` with a fresh nonce.
    pub fn post(&self, path: &str, body: &Value, created: Timestamp) -> http::Request<Vec<u8>> {
        self.request("POST", path, body.to_string().as_bytes(), created)
    }

    /// Android-format evidence for the base64 `nonce` Command issued, bound to this device's key
    /// and `purpose`, issued by `root` at `now`, after `change` edits the claims.
    #[expect(
        clippy::expect_used,
        reason = "a test fixture: a nonce or chain that cannot be made ends the test"
    )]
    pub fn evidence(
        &self,
        root: &DevAttestationRoot,
        nonce: &str,
        purpose: &str,
        now: Timestamp,
        change: impl FnOnce(&mut KeyDescription),
    ) -> Value {
        let nonce_bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(nonce)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .expect("a 32-byte base64 nonce");
        let challenge = expected_challenge(&nonce_bytes, &self.public_key(), purpose);
        let mut description = simulated_key_description(&challenge, now, PATCH_DAY);
        change(&mut description);
        let chain = root
            .issue_chain(
                &self.attested,
                &description,
                now.saturating_sub(Duration::from_secs(3600)),
                now.saturating_add(Duration::from_secs(24 * 3600)),
            )
            .expect("a dev attestation chain");
        json!({
            "format": "android_key",
            "nonce": nonce,
            "chain": chain
                .iter()
                .map(|der| base64::engine::general_purpose::STANDARD.encode(der))
                .collect::<Vec<_>>(),
        })
    }
}

impl Default for TestDevice {
    fn default() -> Self {
        TestDevice::new()
    }
}

/// A fresh request nonce from the OS random source.
pub fn fresh_nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    nonce
}

/// Every required setup step, done: a device that went through the setup wizard.
pub const SET_UP: [&str; 3] = ["strong-pin", "terms", "network-readiness"];

/// An enrollment body: `token`, `report`, no managed mode, the wipe opt-in as given, and the
/// setup done.
pub fn enrollment(token: &str, report: Value, wipe_opt_in: bool) -> Value {
    json!({
        "enrollment_token": token,
        "report": report,
        "managed_opt_in": false,
        "wipe_opt_in": wipe_opt_in,
        "setup": SET_UP,
    })
}

/// A check-in body carrying `report`, from a device whose setup is done.
pub fn check_in(report: Value) -> Value {
    json!({ "report": report, "setup": SET_UP })
}

/// A report of the baseline's critical signals observed at `now`, `firewall` set to
/// `firewall`, without `secure-boot` when `secure_boot` is false.
pub fn report(now: Timestamp, firewall: &str, secure_boot: bool) -> Value {
    let now = now.unix_millis();
    let signals: Vec<Value> = CRITICAL_SIGNALS
        .iter()
        .filter(|kind| secure_boot || **kind != "secure-boot")
        .map(|kind| {
            let value = if *kind == "firewall" { firewall } else { "ok" };
            json!({"kind": kind, "value": value, "observed_at": now, "source": "collector"})
        })
        .collect();
    json!({ "signals": signals })
}

/// A report the baseline policy evaluates as protected.
pub fn protected(now: Timestamp) -> Value {
    report(now, "ok", true)
}

/// A report the baseline policy evaluates as review required (a degraded firewall).
pub fn review_required(now: Timestamp) -> Value {
    report(now, "degraded", true)
}

/// A report the baseline policy evaluates as inactive (secure boot missing).
pub fn inactive(now: Timestamp) -> Value {
    report(now, "ok", false)
}
