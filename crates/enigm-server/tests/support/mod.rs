//! An in-process Command for tests: a fresh database per test, a manual clock, fast hashing,
//! and helpers to make authenticated requests through the real router.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use enigm_api::paths;
use enigm_crypto::{HashCost, SealingKey};
use enigm_device::NONCE_LEN;
use enigm_identity::{Password, Pin, SessionPolicy, ThrottlePolicy};
use enigm_server::bootstrap::{BootstrapCredentials, create_owner};
use enigm_server::services::proxy_credentials::ProxyCredentialConfig;
use enigm_server::state::{AppState, StateOptions};
use enigm_store::{NewAdmin, Store};
use enigm_test_support::device::TestDevice;
use enigm_test_support::{Backend, TestDatabase};
use enigm_types::{
    AdminId, AuditAction, Clock as _, DeviceHandle, ManualClock, Outcome, Role, Timestamp, Username,
};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

pub(crate) mod audit;
pub(crate) mod releases;

/// 2026-11-22T00:00:00Z, so that test times read naturally.
pub(crate) const START: Timestamp = Timestamp::from_unix_millis(1_795_305_600_000);
pub(crate) const OWNER_PASSWORD: &str = "owner-password-for-tests";
/// The password the bootstrap owner is created with; [`TestApp::new`] changes it to
/// [`OWNER_PASSWORD`] at first login, as Command requires.
pub(crate) const OWNER_INITIAL_PASSWORD: &str = "owner-initial-password";
pub(crate) const OWNER_PIN: &str = "480275";
pub(crate) const PASSWORD: &str = "a-long-enough-password";
/// The password administrators are created with through the API; [`TestApp::first_login`]
/// replaces it with [`PASSWORD`], as Command requires at first login.
pub(crate) const INITIAL_PASSWORD: &str = "an-initial-password";
pub(crate) const PIN: &str = "602917";

pub(crate) struct TestApp {
    pub(crate) router: Router,
    pub(crate) state: AppState,
    pub(crate) store: Store,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) db: TestDatabase,
    pub(crate) owner: Admin,
    /// Where the OTA artifacts of this Command live; removed with the app.
    pub(crate) ota_dir: tempfile::TempDir,
    /// The deployment's audit event key, for a second process on the same database.
    event_key: Vec<u8>,
    /// The deployment's device handle key, shared with [`TestApp::second_process`] as
    /// `--keys-dir` shares it: a device has one handle at every process.
    device_handle_key: Vec<u8>,
}

/// An administrator made for a test, logged in.
#[derive(Clone, Debug)]
pub(crate) struct Admin {
    pub(crate) id: AdminId,
    pub(crate) username: String,
    pub(crate) token: String,
    pub(crate) pin: &'static str,
}

#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
    pub(crate) headers: axum::http::HeaderMap,
    /// The body as received (for the ones that are not JSON: TUF metadata bytes, artifacts).
    pub(crate) bytes: Vec<u8>,
}

impl Response {
    pub(crate) fn code(&self) -> &str {
        self.body.get("code").and_then(Value::as_str).unwrap_or("")
    }
}

impl TestApp {
    pub(crate) async fn new(backend: Backend) -> TestApp {
        Self::with_attestation(
            backend,
            enigm_server::attestation::AttestationConfig::default(),
        )
        .await
    }

    /// A Command with its own attestation configuration (roots, revocation list, nonce limits).
    pub(crate) async fn with_attestation(
        backend: Backend,
        attestation: enigm_server::attestation::AttestationConfig,
    ) -> TestApp {
        let db = TestDatabase::new(backend).await.expect("test database");
        let store = Store::connect(db.url()).await.expect("store");
        let clock = Arc::new(ManualClock::new(START));
        let ota_dir = tempfile::tempdir().expect("OTA artifact directory");
        let event_key = enigm_crypto::AuditEventKey::generate(&mut rand::rngs::OsRng)
            .to_bytes()
            .to_vec();
        let device_handle_key = enigm_crypto::DeviceHandleKey::generate(&mut rand::rngs::OsRng)
            .to_bytes()
            .to_vec();
        let options = StateOptions {
            clock: clock.clone(),
            hash_cost: HashCost::Test,
            sealing_key: SealingKey::generate(&mut rand::rngs::OsRng),
            device_handle_key: enigm_crypto::DeviceHandleKey::from_bytes(&device_handle_key)
                .expect("device handle key"),
            attestation,
            session_policy: SessionPolicy::default(),
            approval_ttl: Duration::from_secs(24 * 3600),
            throttle: ThrottlePolicy::default(),
            log_signer: test_log_signer(),
            audit_event_key: enigm_crypto::AuditEventKey::from_bytes(&event_key)
                .expect("audit event key"),
            audit_retention: Duration::from_secs(30 * 24 * 3600),
            ota: enigm_server::ota::OtaConfig::generate(ota_dir.path().join("targets")),
            proxy_credentials: ProxyCredentialConfig::generate(),
        };
        let state = AppState::new(store.clone(), options).expect("state");
        let credentials = BootstrapCredentials {
            username: Username::parse("owner").unwrap(),
            password: Password::parse(OWNER_INITIAL_PASSWORD).unwrap(),
            pin: Pin::parse(OWNER_PIN).unwrap(),
        };
        let owner_id = create_owner(&state, &credentials).await.expect("owner");
        let router = enigm_server::routes::router(state.clone());
        let mut app = TestApp {
            router,
            state,
            store,
            clock,
            db,
            ota_dir,
            event_key,
            device_handle_key,
            owner: Admin {
                id: owner_id,
                username: "owner".into(),
                token: String::new(),
                pin: OWNER_PIN,
            },
        };
        app.owner.token = app.login("owner", OWNER_INITIAL_PASSWORD).await;
        app.change_password(&app.owner, OWNER_INITIAL_PASSWORD, OWNER_PASSWORD)
            .await;
        app
    }

    /// The first login of an administrator created through the API with [`INITIAL_PASSWORD`]:
    /// logs in, changes the password to [`PASSWORD`] and returns the session token.
    pub(crate) async fn first_login(&self, username: &str) -> String {
        let token = self.login(username, INITIAL_PASSWORD).await;
        let admin = Admin {
            id: AdminId::random(),
            username: username.to_owned(),
            token,
            pin: "",
        };
        let response = self
            .call(
                Method::PUT,
                paths::PASSWORD,
                Some(&admin),
                None,
                Some(json!({"current_password": INITIAL_PASSWORD, "new_password": PASSWORD})),
            )
            .await;
        assert_eq!(
            response.status,
            StatusCode::NO_CONTENT,
            "password change of {username}: {:?}",
            response.body
        );
        admin.token
    }

    /// Changes `admin`'s password from `current` to `new` (with their PIN, when set): what a
    /// bootstrap owner or a created administrator does at first login.
    pub(crate) async fn change_password(&self, admin: &Admin, current: &str, new: &str) {
        let response = self
            .call(
                Method::PUT,
                paths::PASSWORD,
                Some(admin),
                None,
                Some(json!({
                    "current_password": current,
                    "current_pin": admin.pin,
                    "new_password": new,
                })),
            )
            .await;
        assert_eq!(
            response.status,
            StatusCode::NO_CONTENT,
            "password change of {}: {:?}",
            admin.username,
            response.body
        );
    }

    pub(crate) async fn send(&self, request: Request<Body>) -> Response {
        send(self.router.clone(), request).await
    }

    /// A second Command process on this app's database (its own pool, state and writers, the
    /// same clock), as another replica behind a load balancer would be. Its keys are its own
    /// but for the audit event key and the device handle key, which `enigm up` replicas share
    /// through `--keys-dir` (a device has one handle at every process).
    pub(crate) async fn second_process(&self) -> Router {
        let store = Store::connect(self.db.url()).await.expect("store");
        let ota_dir = self.ota_dir.path().join("second-process");
        let options = StateOptions {
            clock: self.clock.clone(),
            hash_cost: HashCost::Test,
            sealing_key: SealingKey::generate(&mut rand::rngs::OsRng),
            device_handle_key: enigm_crypto::DeviceHandleKey::from_bytes(&self.device_handle_key)
                .expect("device handle key"),
            attestation: enigm_server::attestation::AttestationConfig::default(),
            session_policy: SessionPolicy::default(),
            approval_ttl: Duration::from_secs(24 * 3600),
            throttle: ThrottlePolicy::default(),
            log_signer: test_log_signer(),
            // The deployment's audit event key, as `enigm up` shares it through --keys-dir:
            // events this process writes are folded in by whichever process sequences.
            audit_event_key: self.event_key(),
            audit_retention: Duration::from_secs(30 * 24 * 3600),
            ota: enigm_server::ota::OtaConfig::generate(ota_dir),
            // The deployment's proxy-credential key, shared like the others.
            proxy_credentials: ProxyCredentialConfig {
                key: self.state.proxy_credentials().key.clone(),
                lifetime: self.state.proxy_credentials().lifetime,
            },
        };
        enigm_server::routes::router(AppState::new(store, options).expect("state"))
    }

    /// A login attempt at `router` (another process's).
    pub(crate) async fn try_login_at(
        &self,
        router: &Router,
        username: &str,
        password: &str,
    ) -> Response {
        let body = serde_json::json!({"username": username, "password": password});
        let request = Request::builder()
            .method(Method::POST)
            .uri(enigm_api::paths::LOGIN)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        send(router.clone(), request).await
    }

    /// Starts a request on its own task, for races.
    pub(crate) fn spawn_call(
        &self,
        method: Method,
        path: &str,
        admin: &Admin,
        pin: Option<&str>,
    ) -> tokio::task::JoinHandle<Response> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", admin.token));
        if let Some(pin) = pin {
            builder = builder.header(enigm_api::PIN_HEADER, pin);
        }
        let request = builder.body(Body::empty()).unwrap();
        tokio::spawn(send(self.router.clone(), request))
    }

    /// A JSON request as `admin` (None: anonymous), with the PIN header when `pin` is given.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        admin: Option<&Admin>,
        pin: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(admin) = admin {
            builder = builder.header("authorization", format!("Bearer {}", admin.token));
        }
        if let Some(pin) = pin {
            builder = builder.header(enigm_api::PIN_HEADER, pin);
        }
        let request = match body {
            Some(body) => builder
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => builder.body(Body::empty()),
        };
        self.send(request.unwrap()).await
    }

    pub(crate) async fn get(&self, path: &str, admin: &Admin) -> Response {
        self.call(Method::GET, path, Some(admin), None, None).await
    }

    /// A login attempt, successful or not.
    pub(crate) async fn try_login(&self, username: &str, password: impl AsRef<str>) -> Response {
        let body = serde_json::json!({"username": username, "password": password.as_ref()});
        self.call(
            Method::POST,
            enigm_api::paths::LOGIN,
            None,
            None,
            Some(body),
        )
        .await
    }

    pub(crate) async fn login(&self, username: &str, password: &str) -> String {
        let response = self
            .call(
                Method::POST,
                enigm_api::paths::LOGIN,
                None,
                None,
                Some(serde_json::json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "login of {username}: {:?}",
            response.body
        );
        response.body["token"].as_str().unwrap().to_owned()
    }

    /// Creates an administrator directly in the store (with a PIN and the given roles) and logs
    /// them in: test set-up that does not itself go through approvals.
    pub(crate) async fn admin_with_roles(&self, username: &str, roles: &[Role]) -> Admin {
        let hasher = enigm_crypto::SecretHasher::new(HashCost::Test);
        let mut rng = rand::rngs::OsRng;
        let id = AdminId::random();
        let now = self.clock.now();
        let mut tx = self.store.begin().await.unwrap();
        tx.insert_admin(&NewAdmin {
            id,
            username: Username::parse(username).unwrap(),
            password_hash: hasher
                .hash(PASSWORD.as_bytes(), &mut rng)
                .unwrap()
                .as_str()
                .to_owned(),
            pin_hash: Some(
                hasher
                    .hash(PIN.as_bytes(), &mut rng)
                    .unwrap()
                    .as_str()
                    .to_owned(),
            ),
            password_change_required: false,
            created_at: now,
        })
        .await
        .unwrap();
        for role in roles {
            tx.grant_role(id, *role, now, None).await.unwrap();
        }
        tx.commit().await.unwrap();
        let token = self.login(username, PASSWORD).await;
        Admin {
            id,
            username: username.to_owned(),
            token,
            pin: PIN,
        }
    }

    /// The deployment's audit event key (a copy), for an offline verification.
    pub(crate) fn event_key(&self) -> enigm_crypto::AuditEventKey {
        enigm_crypto::AuditEventKey::from_bytes(&self.event_key).expect("audit event key")
    }

    pub(crate) fn clock_now(&self) -> Timestamp {
        self.clock.now()
    }

    /// All audit events so far, oldest first.
    pub(crate) async fn audit_events(&self) -> Vec<enigm_types::AuditEvent> {
        let filter = enigm_store::AuditFilter {
            after: None,
            limit: 1000,
            ..Default::default()
        };
        self.store
            .list_audit(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|row| row.event)
            .collect()
    }
}

pub(crate) async fn send(router: Router, request: Request<Body>) -> Response {
    let response = router.oneshot(request).await.expect("infallible router");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    Response {
        status,
        body,
        headers,
        bytes: bytes.to_vec(),
    }
}

/// A fresh audit log key for one test server.
pub(crate) fn test_log_signer() -> enigm_auditlog::NoteSigner {
    enigm_auditlog::NoteSigner::new(
        "enigm-command/audit/test",
        enigm_crypto::Ed25519SigningKey::generate(&mut rand::rngs::OsRng),
    )
    .expect("log key name")
}

/// A report of the baseline's critical signals observed now, `firewall` set to `firewall`,
/// without `secure-boot` when `secure_boot` is false.
pub(crate) fn report(app: &TestApp, firewall: &str, secure_boot: bool) -> Value {
    enigm_test_support::device::report(app.clock_now(), firewall, secure_boot)
}

/// A report the baseline policy evaluates as protected, observed now.
pub(crate) fn protected(app: &TestApp) -> Value {
    enigm_test_support::device::protected(app.clock_now())
}

/// A report the baseline policy evaluates as review required, observed now.
pub(crate) fn review_required(app: &TestApp) -> Value {
    enigm_test_support::device::review_required(app.clock_now())
}

/// A report the baseline policy evaluates as inactive, observed now.
pub(crate) fn inactive(app: &TestApp) -> Value {
    enigm_test_support::device::inactive(app.clock_now())
}

/// What a [`TestDevice`] sends to this in-process Command, signed with its key.
pub(crate) trait DeviceCalls {
    /// A request signed at `created` with `nonce`.
    fn signed(
        &self,
        method: Method,
        path: &str,
        body: &[u8],
        created: Timestamp,
        nonce: &[u8; NONCE_LEN],
    ) -> Request<Body>;

    /// A `POST` of `body`, signed now with a fresh nonce.
    async fn send(&self, app: &TestApp, path: &str, body: &Value) -> Response;

    async fn enroll(
        &self,
        app: &TestApp,
        token: &str,
        report: Value,
        wipe_opt_in: bool,
    ) -> Response;

    async fn check_in(&self, app: &TestApp, report: Value) -> Response;

    /// Fetches the command Command asks of the device.
    async fn commands(&self, app: &TestApp) -> Response;

    /// Acknowledges `command`.
    async fn ack(&self, app: &TestApp, command: &str) -> Response;
}

impl DeviceCalls for TestDevice {
    fn signed(
        &self,
        method: Method,
        path: &str,
        body: &[u8],
        created: Timestamp,
        nonce: &[u8; NONCE_LEN],
    ) -> Request<Body> {
        self.request_with_nonce(method.as_str(), path, body, created, nonce)
            .map(Body::from)
    }

    async fn send(&self, app: &TestApp, path: &str, body: &Value) -> Response {
        app.send(self.post(path, body, app.clock_now()).map(Body::from))
            .await
    }

    async fn enroll(
        &self,
        app: &TestApp,
        token: &str,
        report: Value,
        wipe_opt_in: bool,
    ) -> Response {
        let body = enigm_test_support::device::enrollment(token, report, wipe_opt_in);
        self.send(app, enigm_api::paths::DEVICE_ENROLL, &body).await
    }

    async fn check_in(&self, app: &TestApp, report: Value) -> Response {
        let body = enigm_test_support::device::check_in(report);
        self.send(app, enigm_api::paths::DEVICE_CHECK_INS, &body)
            .await
    }

    async fn commands(&self, app: &TestApp) -> Response {
        let request = self.request(
            Method::GET.as_str(),
            enigm_api::paths::DEVICE_COMMANDS,
            b"",
            app.clock_now(),
        );
        app.send(request.map(Body::from)).await
    }

    async fn ack(&self, app: &TestApp, command: &str) -> Response {
        let body = serde_json::json!({ "command": command });
        self.send(app, enigm_api::paths::DEVICE_COMMAND_ACK, &body)
            .await
    }
}

/// Creates an enrollment token as the owner.
pub(crate) async fn create_token(app: &TestApp, body: Value) -> Response {
    app.call(
        Method::POST,
        paths::ENROLLMENT_TOKENS,
        Some(&app.owner),
        Some(app.owner.pin),
        Some(body),
    )
    .await
}

/// A token of the `field-team` group for `uses` enrollments.
pub(crate) async fn token(app: &TestApp, uses: u32) -> String {
    let response = create_token(app, json!({"group": "field-team", "uses": uses})).await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    response.body["token"].as_str().unwrap().to_owned()
}

/// A device enrolled with a protected report (and the wipe opt-in).
pub(crate) async fn enrolled(app: &TestApp) -> (TestDevice, DeviceHandle) {
    let device = TestDevice::new();
    let token = token(app, 1).await;
    let response = device.enroll(app, &token, protected(app), true).await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    let handle = response.body["handle"].as_str().unwrap().parse().unwrap();
    (device, handle)
}

/// The newest denial of `action`.
pub(crate) async fn last_denial(app: &TestApp, action: AuditAction) -> enigm_types::AuditEvent {
    // Refusals of unauthenticated requests are counted; close the window as shutdown would.
    app.state.anonymous.flush(true).await;
    app.audit_events()
        .await
        .into_iter()
        .rev()
        .find(|event| event.action == action && event.outcome == Outcome::Denied)
        .expect("a denial")
}

/// A new device enrolled PROTECTED in `group` with a fresh token; the device and its handle.
pub(crate) async fn enrolled_in(app: &TestApp, group: &str) -> (TestDevice, String) {
    let token = create_token(app, serde_json::json!({ "group": group })).await;
    assert_eq!(token.status, StatusCode::CREATED, "{:?}", token.body);
    let device = TestDevice::new();
    let response = device
        .enroll(
            app,
            token.body["token"].as_str().expect("token"),
            protected(app),
            false,
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    assert_eq!(response.body["trust"]["state"], "PROTECTED");
    let handle = response.body["handle"].as_str().expect("handle").to_owned();
    (device, handle)
}

/// Asks for a lifecycle change of the device `handle` as `admin`, with their PIN.
pub(crate) async fn lifecycle(
    app: &TestApp,
    admin: &Admin,
    handle: &str,
    action: &str,
) -> Response {
    app.call(
        Method::POST,
        &paths::fill(paths::DEVICE_LIFECYCLE, &[handle]),
        Some(admin),
        Some(admin.pin),
        Some(json!({"action": action, "justification": "incident 42: lost phone"})),
    )
    .await
}

/// Approves `approval` as `admin`, with their PIN.
pub(crate) async fn approve(app: &TestApp, admin: &Admin, approval: &str) -> Response {
    app.call(
        Method::POST,
        &paths::fill(paths::APPROVAL_APPROVE, &[approval]),
        Some(admin),
        Some(admin.pin),
        None,
    )
    .await
}
