//! What the benchmarks share: Command assembled in-process on a database, with an owner
//! logged in.

#![allow(
    dead_code,
    clippy::indexing_slicing,
    reason = "each benchmark uses its own part of the shared set-up, which stops loudly when it \
              fails; it handles no untrusted input"
)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use enigm_crypto::{Ed25519SigningKey, HashCost, SealingKey};
use enigm_device::{NONCE_LEN, RequestParts, sign_request};
use enigm_identity::{Password, Pin, SessionPolicy, ThrottlePolicy};
use enigm_server::bootstrap::{BootstrapCredentials, create_owner};
use enigm_server::state::{AppState, StateOptions, SystemClock};
use enigm_store::Store;
use enigm_trust::SignalKind;
use enigm_types::Clock as _;
use enigm_types::Username;
use http_body_util::BodyExt as _;
use rand::RngCore as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

pub(crate) const PASSWORD: &str = "benchmark-owner-password";
pub(crate) const PIN: &str = "480275";
/// The fleet the device benchmarks enroll before the clock starts.
pub(crate) const DEVICES: usize = 1000;

/// The router on `database_url` and the owner's bearer token.
pub(crate) async fn app(database_url: &str, hash_cost: HashCost) -> (Router, String) {
    let (router, token, _) = app_with_state(database_url, hash_cost).await;
    (router, token)
}

/// [`app`], and the state behind the router (for set-up the API does not offer).
pub(crate) async fn app_with_state(
    database_url: &str,
    hash_cost: HashCost,
) -> (Router, String, AppState) {
    let store = Store::connect(database_url).await.expect("store");
    let options = StateOptions {
        clock: Arc::new(SystemClock),
        hash_cost,
        sealing_key: SealingKey::generate(&mut rand::rngs::OsRng),
        device_handle_key: enigm_crypto::DeviceHandleKey::generate(&mut rand::rngs::OsRng),
        attestation: enigm_server::attestation::AttestationConfig::default(),
        session_policy: SessionPolicy::default(),
        approval_ttl: Duration::from_secs(3600),
        // Benchmarks log in many times from one "client": no back-off.
        throttle: ThrottlePolicy {
            free_failures: u32::MAX,
            ..ThrottlePolicy::default()
        },
        audit_event_key: enigm_crypto::AuditEventKey::generate(&mut rand::rngs::OsRng),
        log_signer: enigm_auditlog::NoteSigner::new(
            "enigm-command/audit/bench",
            enigm_crypto::Ed25519SigningKey::generate(&mut rand::rngs::OsRng),
        )
        .expect("log key name"),
        audit_retention: Duration::from_secs(30 * 24 * 3600),
        ota: enigm_server::ota::OtaConfig::generate(
            std::env::temp_dir().join(format!("enigm-bench-ota-{}", uuid::Uuid::new_v4())),
        ),
        proxy_credentials:
            enigm_server::services::proxy_credentials::ProxyCredentialConfig::generate(),
    };
    let state = AppState::new(store, options).expect("state");
    let credentials = BootstrapCredentials {
        username: Username::parse("owner").expect("username"),
        password: Password::parse(PASSWORD).expect("password"),
        pin: Pin::parse(PIN).expect("pin"),
    };
    let owner = create_owner(&state, &credentials).await.expect("owner");
    // The bootstrap password must be changed at first login; the benchmarks measure other
    // things, so the set-up keeps it and marks it changed in the store.
    let record = state
        .store()
        .admin_by_id(owner)
        .await
        .expect("owner record")
        .expect("owner exists");
    state
        .store()
        .update_password_hash(owner, &record.password_hash)
        .await
        .expect("password changed");
    let router = enigm_server::routes::router(state.clone());
    let body = call_json(&router, login_request()).await;
    let token = body
        .get("token")
        .and_then(serde_json::Value::as_str)
        .expect("token");
    (router, token.to_owned(), state)
}

pub(crate) fn login_request() -> Request<Body> {
    let body = serde_json::json!({"username": "owner", "password": PASSWORD}).to_string();
    Request::post(enigm_api::paths::LOGIN)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request")
}

/// Sends a request and decodes the JSON answer, whatever its status.
pub(crate) async fn call_json(router: &Router, request: Request<Body>) -> serde_json::Value {
    let response = router.clone().oneshot(request).await.expect("response");
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    serde_json::from_slice(&bytes).expect("json")
}

/// A report of every signal kind, all measured and fine.
pub(crate) fn report() -> Value {
    let now = SystemClock.now().unix_millis();
    let signals: Vec<Value> = SignalKind::ALL
        .iter()
        .map(|kind| json!({"kind": kind.as_str(), "value": "ok", "observed_at": now, "source": "collector"}))
        .collect();
    json!({"signals": signals, "patch_level": "2026-11-05"})
}

/// A signed device `POST` of `body`, with a fresh nonce, signed now.
pub(crate) fn signed(key: &Ed25519SigningKey, path: &str, body: &Value) -> Request<Body> {
    let body = body.to_string().into_bytes();
    let mut nonce = [0_u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let headers = sign_request(
        key,
        &RequestParts {
            method: "POST",
            path,
            query: "",
            body: &body,
        },
        SystemClock.now(),
        &nonce,
    );
    Request::post(path)
        .header("content-type", "application/json")
        .header(enigm_device::CONTENT_DIGEST, headers.content_digest)
        .header(enigm_device::SIGNATURE_INPUT, headers.signature_input)
        .header(enigm_device::SIGNATURE, headers.signature)
        .body(Body::from(body))
        .expect("request")
}

/// `DEVICES` devices enrolled PROTECTED in the group `bench`; their keys.
pub(crate) async fn enroll_fleet(router: &Router, owner_token: &str) -> Vec<Ed25519SigningKey> {
    let request = Request::post(enigm_api::paths::ENROLLMENT_TOKENS)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {owner_token}"))
        .header("x-enigm-pin", PIN)
        .body(Body::from(
            json!({"group": "bench", "uses": DEVICES}).to_string(),
        ))
        .expect("request");
    let created = call_json(router, request).await;
    let token = created["token"]
        .as_str()
        .expect("enrollment token")
        .to_owned();
    let mut keys = Vec::with_capacity(DEVICES);
    for _ in 0..DEVICES {
        let key = Ed25519SigningKey::generate(&mut rand::rngs::OsRng);
        let body = json!({
            "enrollment_token": token,
            "report": report(),
            "managed_opt_in": false,
            "wipe_opt_in": false,
        });
        let enrolled =
            call_json(router, signed(&key, enigm_api::paths::DEVICE_ENROLL, &body)).await;
        assert!(
            enrolled["handle"].is_string(),
            "enrollment refused: {enrolled}"
        );
        keys.push(key);
    }
    keys
}

/// One timed round: each device sends `per_device` signed `POST`s of `body` to `path`, one
/// after the other like an agent, all devices at once; every answer must be 200. Requests are
/// signed before the clock starts, so only the server's work is measured.
pub(crate) async fn signed_round(
    router: &Router,
    keys: &[Ed25519SigningKey],
    path: &str,
    body: &Value,
    per_device: usize,
) -> std::time::Duration {
    let requests: Vec<Vec<Request<Body>>> = keys
        .iter()
        .map(|key| (0..per_device).map(|_| signed(key, path, body)).collect())
        .collect();
    let started = std::time::Instant::now();
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|requests| {
            let router = router.clone();
            tokio::spawn(async move {
                for request in requests {
                    let response = router.clone().oneshot(request).await.expect("response");
                    assert_eq!(
                        response.status(),
                        axum::http::StatusCode::OK,
                        "a signed device request was refused"
                    );
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("device task");
    }
    started.elapsed()
}
