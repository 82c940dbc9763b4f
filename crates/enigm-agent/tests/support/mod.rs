//! A device core and Command in one process, in the spirit of quinn-proto's `tests/util.rs`
//! `Pair`: [`Command`] is enigm-server's real router over a fresh database with a manual
//! clock, driven with `tower::ServiceExt::oneshot`; [`Pair`] drives an
//! `enigm_agent::core::Agent` cycle by cycle, handing each signed request to Command and each
//! answer back to the core, minting evidence under a development root Command trusts, and
//! answering the core's update step with a scripted outcome. No process, no socket, no sleep:
//! the core's time is Command's clock.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test support: a failed expectation is the test failure"
)]

pub(crate) mod proxy;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request as HttpRequest, StatusCode};
use enigm_agent::core::{Agent, Config, Event, Exit, Record, Step, UpdateResult, Verification};
use enigm_attest::dev::{DevAttestationRoot, DevAttestedKey};
use enigm_crypto::{Ed25519SigningKey, HashCost, SealingKey};
use enigm_identity::{Password, Pin, SessionPolicy, ThrottlePolicy};
use enigm_server::attestation::AttestationConfig;
use enigm_server::bootstrap::{BootstrapCredentials, create_owner};
use enigm_server::state::{AppState, StateOptions};
use enigm_store::{NewAdmin, Store};
use enigm_test_support::{Backend, TestDatabase};
use enigm_trust::{PatchLevel, Signal, SignalKind, SignalReport, SignalSource, SignalValue};
use enigm_types::{
    AdminId, Clock as _, DeviceHandle, ManualClock, Role, SetupStep, Timestamp, Username,
};
use http_body_util::BodyExt as _;
use rand::SeedableRng as _;
use secrecy::SecretString;
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// 2026-11-22T00:00:00Z.
pub(crate) const START: Timestamp = Timestamp::from_unix_millis(1_795_305_600_000);
const OWNER_PASSWORD: &str = "owner-password-for-tests";
/// The bootstrap owner's password, which Command requires changed (to `OWNER_PASSWORD`) at
/// first login.
const OWNER_INITIAL_PASSWORD: &str = "owner-initial-password";
const OWNER_PIN: &str = "480275";
const SECOND_PASSWORD: &str = "a-long-enough-password";
const SECOND_PIN: &str = "602917";
/// The server URL the device believes it talks to (the router ignores the host).
pub(crate) const SERVER: &str = "http://127.0.0.1:8443";

/// Command in-process.
pub(crate) struct Command {
    router: Router,
    pub(crate) clock: Arc<ManualClock>,
    store: Store,
    _db: TestDatabase,
    _ota_dir: tempfile::TempDir,
    owner: String,
    /// A second administrator, for the approvals a revoke or a wipe needs.
    second: String,
}

/// An answer of Command.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

impl Command {
    /// Command on `backend`, trusting `dev_root` for attestation when given.
    pub(crate) async fn new(backend: Backend, dev_root: Option<&DevAttestationRoot>) -> Command {
        let db = TestDatabase::new(backend).await.expect("test database");
        let store = Store::connect(db.url()).await.expect("store");
        let clock = Arc::new(ManualClock::new(START));
        let ota_dir = tempfile::tempdir().unwrap();
        let mut attestation = AttestationConfig {
            revocation_unchecked: dev_root.is_some(),
            ..AttestationConfig::default()
        };
        if let Some(root) = dev_root {
            attestation
                .anchors
                .add_certificate("test-dev-root", &root.certificate_der())
                .unwrap();
        }
        let options = StateOptions {
            clock: clock.clone(),
            hash_cost: HashCost::Test,
            sealing_key: SealingKey::generate(&mut rand::rngs::OsRng),
            device_handle_key: enigm_crypto::DeviceHandleKey::generate(&mut rand::rngs::OsRng),
            attestation,
            session_policy: SessionPolicy::default(),
            approval_ttl: Duration::from_secs(24 * 3600),
            throttle: ThrottlePolicy::default(),
            audit_event_key: enigm_crypto::AuditEventKey::generate(&mut rand::rngs::OsRng),
            log_signer: enigm_auditlog::NoteSigner::new(
                "enigm-command/audit/test",
                Ed25519SigningKey::generate(&mut rand::rngs::OsRng),
            )
            .unwrap(),
            audit_retention: Duration::from_secs(30 * 24 * 3600),
            ota: enigm_server::ota::OtaConfig::generate(ota_dir.path().join("targets")),
            proxy_credentials:
                enigm_server::services::proxy_credentials::ProxyCredentialConfig::generate(),
        };
        let state = AppState::new(store.clone(), options).expect("state");
        let credentials = BootstrapCredentials {
            username: Username::parse("owner").unwrap(),
            password: Password::parse(OWNER_INITIAL_PASSWORD).unwrap(),
            pin: Pin::parse(OWNER_PIN).unwrap(),
        };
        create_owner(&state, &credentials).await.expect("owner");
        let router = enigm_server::routes::router(state);
        let mut command = Command {
            router,
            clock,
            store,
            _db: db,
            _ota_dir: ota_dir,
            owner: String::new(),
            second: String::new(),
        };
        command.owner = command.login("owner", OWNER_INITIAL_PASSWORD).await;
        let changed = command
            .call(
                Method::PUT,
                enigm_api::paths::PASSWORD,
                &command.owner,
                None,
                Some(json!({
                    "current_password": OWNER_INITIAL_PASSWORD,
                    "current_pin": OWNER_PIN,
                    "new_password": OWNER_PASSWORD,
                })),
            )
            .await;
        assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.body);
        command.second = command.second_admin().await;
        command
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Logs both administrators in again (after the clock moved past their sessions).
    pub(crate) async fn log_in_again(&mut self) {
        self.owner = self.login("owner", OWNER_PASSWORD).await;
        self.second = self.login("second", SECOND_PASSWORD).await;
    }

    /// Serves this Command's router on a loopback port too, for tests with real sockets (the
    /// Enigm Proxy polls it); the server task ends with the test's runtime.
    pub(crate) async fn serve(&self) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let service = self
            .router
            .clone()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await });
        address
    }

    /// An enrollment token with `attestation_policy`.
    pub(crate) async fn token(&self, attestation_policy: Value) -> SecretString {
        let answer = self
            .admin_call(
                Method::POST,
                enigm_api::paths::ENROLLMENT_TOKENS,
                true,
                Some(
                    json!({"group": "field", "uses": 5, "attestation_policy": attestation_policy}),
                ),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        SecretString::from(answer.body["token"].as_str().unwrap().to_owned())
    }

    /// Asks for a lifecycle `action` on `handle` as the owner; an approval it needs is given by
    /// the second administrator.
    pub(crate) async fn lifecycle(&self, handle: DeviceHandle, action: &str) {
        let path =
            enigm_api::paths::fill(enigm_api::paths::DEVICE_LIFECYCLE, &[&handle.to_string()]);
        let answer = self
            .admin_call(
                Method::POST,
                &path,
                true,
                Some(json!({"action": action, "justification": "ticket 7: device handed back"})),
            )
            .await;
        match answer.status {
            StatusCode::OK => {}
            StatusCode::ACCEPTED => {
                let approval = answer.body["approval"]["id"].as_str().unwrap().to_owned();
                let path = enigm_api::paths::fill(enigm_api::paths::APPROVAL_APPROVE, &[&approval]);
                let approved = self
                    .call(Method::POST, &path, &self.second, Some(SECOND_PIN), None)
                    .await;
                assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
            }
            status => panic!("{action}: {status} {}", answer.body),
        }
    }

    /// The device as Command shows it to an administrator.
    pub(crate) async fn device(&self, handle: DeviceHandle) -> Value {
        let path = enigm_api::paths::fill(enigm_api::paths::DEVICE, &[&handle.to_string()]);
        let answer = self.admin_call(Method::GET, &path, false, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body
    }

    /// Hands a signed device request to the router; the status and body as sent.
    pub(crate) async fn answer(&self, request: &enigm_agent::core::Request) -> (u16, Vec<u8>) {
        let builder = HttpRequest::builder()
            .method(request.method.as_str())
            .uri(request.path)
            .header(
                enigm_device::CONTENT_DIGEST,
                &request.signature.content_digest,
            )
            .header(
                enigm_device::SIGNATURE_INPUT,
                &request.signature.signature_input,
            )
            .header(enigm_device::SIGNATURE, &request.signature.signature);
        let builder = if request.body.is_empty() {
            builder
        } else {
            builder.header("content-type", "application/json")
        };
        let http = builder.body(Body::from(request.body.clone())).unwrap();
        let response = self.router.clone().oneshot(http).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.to_vec())
    }

    async fn admin_call(
        &self,
        method: Method,
        path: &str,
        pin: bool,
        body: Option<Value>,
    ) -> Answer {
        self.call(method, path, &self.owner, pin.then_some(OWNER_PIN), body)
            .await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        pin: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut builder = HttpRequest::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"));
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

    async fn send(&self, request: HttpRequest<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer { status, body }
    }

    async fn login(&self, username: &str, password: &str) -> String {
        let request = HttpRequest::builder()
            .method(Method::POST)
            .uri(enigm_api::paths::LOGIN)
            .header("content-type", "application/json")
            .body(Body::from(
                json!({"username": username, "password": password}).to_string(),
            ))
            .unwrap();
        let answer = self.send(request).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body["token"].as_str().unwrap().to_owned()
    }

    /// A security administrator made directly in the store: test set-up, not itself approved.
    async fn second_admin(&self) -> String {
        let hasher = enigm_crypto::SecretHasher::new(HashCost::Test);
        let mut rng = rand::rngs::OsRng;
        let id = AdminId::random();
        let now = self.clock.now();
        let mut tx = self.store.begin().await.unwrap();
        tx.insert_admin(&NewAdmin {
            id,
            username: Username::parse("second").unwrap(),
            password_hash: hasher
                .hash(SECOND_PASSWORD.as_bytes(), &mut rng)
                .unwrap()
                .as_str()
                .to_owned(),
            pin_hash: Some(
                hasher
                    .hash(SECOND_PIN.as_bytes(), &mut rng)
                    .unwrap()
                    .as_str()
                    .to_owned(),
            ),
            password_change_required: false,
            created_at: now,
        })
        .await
        .unwrap();
        tx.grant_role(id, Role::SecurityAdmin, now, None)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        self.login("second", SECOND_PASSWORD).await
    }
}

/// What a device reports: every signal `ok` now, a recent patch level; `firewall` degraded
/// when `at_risk`.
pub(crate) fn report(now: Timestamp, at_risk: bool) -> SignalReport {
    let signals = SignalKind::ALL
        .iter()
        .map(|&kind| Signal {
            kind,
            value: if at_risk && kind == SignalKind::Firewall {
                SignalValue::Degraded
            } else {
                SignalValue::Ok
            },
            observed_at: now,
            source: SignalSource::Declared,
        })
        .collect();
    SignalReport::new(signals, Some(PatchLevel::new(2026, 11, 5).unwrap())).unwrap()
}

/// One cycle as it went: its steps as short lines, the records handed out, the events, and
/// how the agent stopped.
#[derive(Debug, Default)]
pub(crate) struct Cycle {
    pub(crate) lines: Vec<String>,
    pub(crate) records: Vec<Record>,
    pub(crate) events: Vec<Event>,
    pub(crate) exit: Option<Exit>,
    /// The answers Command gave, in order (status, body).
    pub(crate) answers: Vec<(u16, Value)>,
}

/// A device core and Command.
pub(crate) struct Pair {
    pub(crate) command: Command,
    pub(crate) agent: Agent,
    rng: rand::rngs::StdRng,
    dev: Option<(DevAttestationRoot, DevAttestedKey)>,
    /// The outcome the next update step comes to.
    pub(crate) update: Option<Result<Vec<UpdateResult>, String>>,
    /// Whether the device's firewall is degraded in its next reports.
    pub(crate) at_risk: bool,
}

impl Pair {
    /// A new device with `token`, on `command`; it attests when `dev` is given.
    pub(crate) fn new(
        command: Command,
        token: SecretString,
        config: Config,
        dev: Option<(DevAttestationRoot, DevAttestedKey)>,
    ) -> Pair {
        let key = Ed25519SigningKey::from_seed(&[42; 32]);
        let agent = Agent::new(
            Config {
                attests: dev.is_some(),
                ..config
            },
            key,
            None,
            Some(token),
            Verification::None,
        )
        .unwrap();
        Pair {
            command,
            agent,
            rng: rand::rngs::StdRng::seed_from_u64(42),
            dev,
            update: None,
            at_risk: false,
        }
    }

    /// Runs one cycle at Command's time, until the core sleeps or stops.
    pub(crate) async fn cycle(&mut self) -> Cycle {
        let mut cycle = Cycle::default();
        let now = self.command.now();
        self.agent
            .start_cycle(now, report(now, self.at_risk), SetupStep::REQUIRED.to_vec())
            .unwrap();
        for _ in 0..64 {
            let now = self.command.now();
            let Some(step) = self.agent.poll(now, &mut self.rng) else {
                panic!("the core waits for an input: {:?}", cycle.lines);
            };
            match step {
                Step::Send(request) => {
                    cycle
                        .lines
                        .push(format!("send {} {}", request.method.as_str(), request.path));
                    let (status, body) = self.command.answer(&request).await;
                    cycle
                        .answers
                        .push((status, serde_json::from_slice(&body).unwrap_or(Value::Null)));
                    self.agent.handle_response(now, status, &body).unwrap();
                }
                Step::MintEvidence(request) => {
                    cycle
                        .lines
                        .push(format!("mint evidence for {}", request.purpose.as_str()));
                    let (root, key) = self.dev.as_ref().expect("an attesting device");
                    let evidence = enigm_agent::attestation::DevAttester {
                        root,
                        key,
                        patch_day: request.patch_day,
                    }
                    .evidence(&request.nonce, &request.device_key, request.purpose, now)
                    .map_err(|error| error.to_string());
                    self.agent.handle_evidence(now, evidence).unwrap();
                }
                Step::Persist(record) => {
                    cycle.lines.push(
                        match &record {
                            Record::Enrollment(_) => "persist enrollment",
                            Record::Evaluation(_) => "persist evaluation",
                            Record::Verification(_) => "persist verification",
                        }
                        .to_owned(),
                    );
                    cycle.records.push(record);
                }
                Step::Report(event) => {
                    cycle.lines.push(
                        match &event {
                            Event::Enrolled { .. } => "event enrolled",
                            Event::CheckedIn { .. } => "event checked in",
                            Event::Attested { .. } => "event attested",
                            Event::CycleFailed(_) => "event cycle failed",
                            Event::CommandsFailed(_) => "event commands failed",
                        }
                        .to_owned(),
                    );
                    cycle.events.push(event);
                }
                Step::Update { .. } => {
                    cycle.lines.push("update".to_owned());
                    let outcome = self.update.take().unwrap_or(Ok(Vec::new()));
                    self.agent.handle_update(now, outcome).unwrap();
                }
                Step::Wipe => cycle.lines.push("wipe".to_owned()),
                Step::Sleep { until } => {
                    cycle.lines.push("sleep".to_owned());
                    self.command.clock.set(until);
                    return cycle;
                }
                Step::Stop(exit) => {
                    cycle.lines.push(
                        match &exit {
                            Exit::Completed => "stop completed",
                            Exit::Retired { .. } => "stop retired",
                            Exit::Wiped { .. } => "stop wiped",
                            Exit::Refused(_) => "stop refused",
                            Exit::Failed(_) => "stop failed",
                        }
                        .to_owned(),
                    );
                    cycle.exit = Some(exit);
                    return cycle;
                }
            }
        }
        panic!("the cycle did not end: {:?}", cycle.lines);
    }
}

/// Asserts the lines of a cycle.
pub(crate) fn check(cycle: &Cycle, expect: &[&str]) {
    let expected: Vec<String> = expect.iter().map(|line| (*line).to_owned()).collect();
    assert_eq!(cycle.lines, expected, "answers: {:?}", cycle.answers);
}
