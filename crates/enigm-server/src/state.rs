//! Shared server state: the store, the clock, the authorizer, the keys and the throttle.
//!
//! What two Command processes of one deployment must agree on is not kept here but in the
//! database (attestation nonces, login throttle entries; see ARCHITECTURE.md): what this holds is
//! configuration, keys, writer queues and caches that are safe per process.

use std::sync::Arc;
use std::time::Duration;

use enigm_crypto::{DeviceHandleKey, HashCost, SealingKey, SecretHash, SecretHasher, SecretMatch};
use enigm_identity::{SessionPolicy, ThrottlePolicy};
use enigm_store::Store;
use enigm_types::{AuditEvent, Clock, Timestamp};

use enigm_auditlog::NoteSigner;

use crate::attestation::{AttestationConfig, AttestationService};
use crate::audit::{AuditLog, AuditSink, GroupCommitSink};
use crate::authz::Authorizer;
use crate::checkins::{CheckInWriter, PolicyCache};
use crate::error::{ApiError, ApiResult};
use crate::throttle::SharedThrottle;

/// Everything a handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub authorizer: Authorizer,
    pub hasher: SecretHasher,
    pub sealing_key: SealingKey,
    pub throttle: SharedThrottle,
    pub session_policy: SessionPolicy,
    pub approval_ttl: Duration,
    pub audit: Arc<dyn AuditSink>,
    /// Refused anonymous requests, counted per window instead of logged one by one.
    pub anonymous: Arc<crate::audit_tally::AnonymousTally>,
    pub audit_log: Arc<AuditLog>,
    pub device_handle_key: DeviceHandleKey,
    pub device_max_skew: Duration,
    pub check_ins: CheckInWriter,
    /// Stores what the director's update checks leave behind, group-committed.
    pub director: crate::director_writer::DirectorWriter,
    /// The director's in-memory catalogue of offerable releases and pins.
    pub director_catalog: crate::services::releases::director::DirectorCatalog,
    pub device_policies: PolicyCache,
    /// Each device's eligibility decision inputs read from the store, per `policy_revision`.
    pub(crate) decision_inputs: crate::services::eligibility::DecisionInputsCache,
    pub attestation: AttestationService,
    pub ota: crate::ota::OtaService,
    /// This process's Prometheus metrics (see [`crate::metrics`]).
    pub metrics: Arc<crate::metrics::Metrics>,
    pub proxy_credentials: crate::services::proxy_credentials::ProxyCredentialConfig,
}

/// What a test or `enigm up` chooses about a server.
pub struct StateOptions {
    pub clock: Arc<dyn Clock>,
    pub hash_cost: HashCost,
    pub sealing_key: SealingKey,
    pub session_policy: SessionPolicy,
    pub approval_ttl: Duration,
    pub throttle: ThrottlePolicy,
    /// The key audit checkpoints are signed with; its name is the log's origin.
    pub log_signer: NoteSigner,
    /// The key that tags every audit event stored, so that the sequencer folds in only those
    /// (the deployment's, like the log key: every process on a database has the same).
    pub audit_event_key: enigm_crypto::AuditEventKey,
    /// How long audit event bodies are kept (the tree keeps their commitments for good).
    pub audit_retention: Duration,
    /// The deployment's key for deriving device handles from device keys.
    pub device_handle_key: DeviceHandleKey,
    /// Pinned attestation roots, the revocation status list and the nonce book's limits.
    pub attestation: AttestationConfig,
    /// The online OTA keys and where artifacts are kept.
    pub ota: crate::ota::OtaConfig,
    /// The key that signs Enigm Proxy credentials and how long they live.
    pub proxy_credentials: crate::services::proxy_credentials::ProxyCredentialConfig,
}

/// Why the state could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("authorization policies are invalid")]
    Policy(#[from] crate::authz::PolicyError),
    #[error("the store already tags audit events with another audit event key")]
    AuditEventKeyConflict,
}

impl AppState {
    /// Assembles the state and starts the audit and check-in writer tasks and the WAL
    /// checkpointer; must run inside a Tokio runtime.
    pub fn new(store: Store, options: StateOptions) -> Result<Self, StateError> {
        let fingerprint = options.audit_event_key.fingerprint();
        if let Err(set) = store.set_audit_event_key(Arc::new(options.audit_event_key)) {
            // A second state over one store (tests) must bring the same key.
            let current = store.audit_event_key_fingerprint();
            if current != Some(fingerprint) || set.fingerprint() != fingerprint {
                return Err(StateError::AuditEventKeyConflict);
            }
        }
        let audit: Arc<dyn AuditSink> = Arc::new(GroupCommitSink::spawn(store.clone()));
        let audit_log = Arc::new(AuditLog::new(
            store.clone(),
            options.clock.clone(),
            options.log_signer,
            options.audit_retention,
        ));
        let anonymous = Arc::new(crate::audit_tally::AnonymousTally::new(
            audit.clone(),
            options.clock.clone(),
        ));
        tokio::spawn(anonymous.clone().run());
        let check_ins = CheckInWriter::spawn(store.clone());
        let director = crate::director_writer::DirectorWriter::spawn(store.clone());
        tokio::spawn(checkpoint_wal(store.clone()));
        let attestation = AttestationService::new(options.attestation, store.clone());
        let throttle = SharedThrottle::new(store.clone(), options.throttle);
        Ok(AppState(Arc::new(Inner {
            store,
            clock: options.clock,
            authorizer: Authorizer::new()?,
            hasher: SecretHasher::new(options.hash_cost),
            sealing_key: options.sealing_key,
            throttle,
            session_policy: options.session_policy,
            approval_ttl: options.approval_ttl,
            audit,
            anonymous,
            audit_log,
            device_handle_key: options.device_handle_key,
            device_max_skew: enigm_device::DEFAULT_MAX_SKEW,
            check_ins,
            director,
            director_catalog: Default::default(),
            device_policies: PolicyCache::default(),
            decision_inputs: Default::default(),
            attestation,
            ota: crate::ota::OtaService::new(options.ota),
            metrics: Arc::new(crate::metrics::Metrics::new()),
            proxy_credentials: options.proxy_credentials,
        })))
    }

    pub fn now(&self) -> Timestamp {
        self.0.clock.now()
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn ota(&self) -> &crate::ota::OtaService {
        &self.0.ota
    }

    pub fn attestation(&self) -> &AttestationService {
        &self.0.attestation
    }

    pub fn proxy_credentials(&self) -> &crate::services::proxy_credentials::ProxyCredentialConfig {
        &self.0.proxy_credentials
    }

    /// Counts a refused request of a caller nobody authenticated (no valid session, a throttled
    /// login): one event per window and client network carries the count, see
    /// [`crate::audit_tally`]. Decisions about authenticated callers go through
    /// [`AppState::audit`], each its own event.
    pub fn count_anonymous(
        &self,
        action: enigm_types::AuditAction,
        reason: enigm_types::ReasonCategory,
        client: Option<std::net::IpAddr>,
    ) {
        self.0.anonymous.count(action, reason, client);
    }

    /// Records events through the audit sink. Failing to audit fails the request: a security
    /// decision that cannot be recorded is not acknowledged.
    pub async fn audit(&self, events: &[AuditEvent]) -> ApiResult<()> {
        self.0
            .audit
            .record(events)
            .await
            .map_err(|error| ApiError::internal(&error))
    }

    /// Argon2 hashing takes tens of milliseconds of CPU: run it off the async workers.
    pub async fn hash_secret(&self, secret: Vec<u8>) -> ApiResult<SecretHash> {
        let hasher = self.0.hasher.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut rng = rand::rngs::OsRng;
            hasher.hash(&secret, &mut rng)
        })
        .await;
        match result {
            Ok(Ok(hash)) => Ok(hash),
            Ok(Err(error)) => Err(ApiError::internal(&error)),
            Err(error) => Err(ApiError::internal(&error)),
        }
    }

    /// Verifies a secret against a stored PHC string; `None` for a stored hash of `None`
    /// (unknown account) still spends the time of a real verification.
    pub async fn verify_secret(
        &self,
        secret: Vec<u8>,
        stored: Option<String>,
    ) -> ApiResult<Option<SecretMatch>> {
        let hasher = self.0.hasher.clone();
        let result = tokio::task::spawn_blocking(move || match stored.map(SecretHash::from_phc) {
            Some(Ok(hash)) => hasher.verify(&secret, &hash).ok(),
            Some(Err(_)) | None => {
                let _mismatch = hasher.verify_dummy(&secret);
                None
            }
        })
        .await;
        result.map_err(|error| ApiError::internal(&error))
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// Keeps SQLite's write-ahead log short beside the writers, four times a second, so that no
/// commit (and no request waiting on one) pays for a checkpoint. Measured with `enigm simulate`
/// (2,000 devices, 64 in flight): every 250 ms gave the best rate and tail (5.7k check-ins/s,
/// p99 28 ms), against 5.2k/s every second; small checkpoints stay cheap.
async fn checkpoint_wal(store: Store) {
    let mut ticks = tokio::time::interval(Duration::from_millis(250));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(error) = store.checkpoint_wal().await {
            tracing::warn!(error = %error, "WAL checkpoint failed; commits will checkpoint instead");
        }
    }
}

/// The operating system clock, for `enigm up`.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| {
                i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
            });
        Timestamp::from_unix_millis(millis)
    }
}
