//! What the benchmarks share: Command assembled in-process on a database, with an owner
//! logged in.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use enigm_crypto::{HashCost, SealingKey};
use enigm_identity::{Password, Pin, SessionPolicy, ThrottlePolicy};
use enigm_server::bootstrap::{BootstrapCredentials, create_owner};
use enigm_server::state::{AppState, StateOptions, SystemClock};
use enigm_store::Store;
use enigm_types::Username;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

pub(crate) const PASSWORD: &str = "benchmark-owner-password";
pub(crate) const PIN: &str = "480275";

/// The router on `database_url` and the owner's bearer token.
pub(crate) async fn app(database_url: &str, hash_cost: HashCost) -> (Router, String) {
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
    let router = enigm_server::routes::router(state);
    let body = call_json(&router, login_request()).await;
    let token = body
        .get("token")
        .and_then(serde_json::Value::as_str)
        .expect("token");
    (router, token.to_owned())
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
