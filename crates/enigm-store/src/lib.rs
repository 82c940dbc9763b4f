//! Database layer of Enigm Command: one [`Store`] over SQLite (the embedded default) or
//! PostgreSQL, chosen by URL at run time, with migrations per backend and repositories for
//! administrators, sessions, approvals, audit events, devices, the deployment's key fingerprints,
//! and the state Command's processes share (attestation nonces, login throttle rows, leases).
//!
//! Queries go through sqlx's `Any` driver so that one SQL text serves both backends; the schema
//! keeps to types both share (BIGINT, TEXT, bytes). This crate knows SQL and nothing of HTTP.

mod admins;
mod approvals;
mod attestation;
mod audit;
mod auditlog;
mod auditverify;
mod deployment;
mod devices;
mod lifecycle;
mod ota;
mod policies;
mod policy_bundles;
mod proxy_credentials;
mod rollouts;
mod sessions;
mod shared_state;
mod vpn;

use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use enigm_auditlog::AuditEventKey;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor as _};
use tokio::sync::{Mutex, MutexGuard};

pub use admins::{AdminRecord, NewAdmin};
pub use approvals::{ApprovalRecord, CommandFlag, DecisionKind, NewApproval};
pub use attestation::{AttestationRecord, AttestationResultRecord};
pub use audit::{AuditFilter, AuditRow};
pub use auditlog::{IntegratedBatch, LeafEntry, LegalHold, PurgeRecord, StoredCheckpoint};
pub use auditverify::{Finding, NoProgress, VerifyOutcome, VerifyProgress, VerifySummary};
pub use deployment::{DeploymentKey, KeyRole};
pub use devices::{
    CheckInStored, CheckInWrite, ConsumedToken, DeviceFilter, DeviceRecord, DirectorStanding,
    NewDevice, NewEnrollmentToken, POSTURE_HISTORY_LEN, PostureChange, PostureRecord,
};
pub use lifecycle::{LifecycleRecord, LockedLifecycle, NewCommand, PendingCommand};
pub use ota::{InstallCounts, MetadataRole, NewRelease, ReleaseRecord, StoredMetadata};
pub use policies::{
    AssignedPolicy, NewPolicy, NewPolicyProposal, PolicyAssignmentRecord, PolicyProposalRecord,
    PolicyRecord, PolicyVersionRecord,
};
pub use policy_bundles::{BundledVersion, PolicyBundleRecord, WantedBundle};
pub use rollouts::{RolloutCount, RolloutDecision, RolloutRecord, VersionPinRecord};
pub use sessions::{NewSession, SessionRecord};
pub use shared_state::{LeaseRecord, ThrottleRecord};
pub use vpn::{VpnAssignmentRecord, VpnGatewayChange, VpnGatewayRecord};

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database url: expected `sqlite://…` or `postgres://…`")]
    UnsupportedUrl,
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("database migration failed")]
    Migration(#[source] sqlx::migrate::MigrateError),
    #[error("the database schema is not the one this build of Enigm knows")]
    SchemaMismatch,
    #[error("a record with the same unique key exists")]
    Conflict,
    /// A row holds what this build cannot decode (an unknown state name, JSON of the wrong
    /// shape): the database was changed behind Command's back, or by a newer version.
    #[error("stored record is malformed: {0}")]
    Corrupt(&'static str),
    #[error("a value could not be encoded for storage: {0}")]
    Encoding(&'static str),
    #[error("{requested} is beyond the audit tree's size {tree_size}")]
    NotInAuditTree { requested: u64, tree_size: u64 },
    #[error("audit leaf {index} has no event: the audit log has been tampered with")]
    AuditLeafMissing { index: u64 },
    /// The next leaf's event carries no valid tag of the audit event key: it was not written
    /// by Command (a row inserted into the database directly). The sequencer stops before it.
    #[error(
        "audit leaf {index} is not authenticated by the audit event key: a row was inserted \
         into the database behind Command's back; the log is not extended past it"
    )]
    AuditEventUnauthenticated { index: u64 },
    /// A consistency proof from the empty tree to a larger one was asked for: RFC 9162 defines
    /// none.
    #[error("a consistency proof from the empty tree is meaningless")]
    ConsistencyFromEmptyTree,
    /// Audit events were to be written or folded in without the audit event key.
    #[error("the store has no audit event key")]
    AuditEventKeyMissing,
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            _ => StoreError::Database(error),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The database of one Command deployment.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has a single writer. Serialising write transactions in the process avoids
    /// `SQLITE_BUSY` when two deferred transactions both try to upgrade to writers.
    write_gate: Option<Arc<Mutex<()>>>,
    /// The key that tags every audit event at commit and that the sequencer checks; shared by
    /// every clone of the store once set ([`Store::set_audit_event_key`]).
    event_key: Arc<OnceLock<Arc<AuditEventKey>>>,
}

/// A write transaction. Dropping it without [`WriteTx::commit`] rolls everything back.
pub struct WriteTx<'s> {
    tx: sqlx::Transaction<'static, Any>,
    _gate: Option<MutexGuard<'s, ()>>,
    backend: Backend,
    /// Audit events of this transaction, inserted with their leaf indexes at commit.
    audit: Vec<enigm_types::AuditEvent>,
    event_key: Option<Arc<AuditEventKey>>,
}

impl Store {
    /// Connects, creating the SQLite file if needed, and brings the schema up to date.
    pub async fn connect(url: &str) -> StoreResult<Store> {
        let store = Store::open(url).await?;
        store
            .migrator()
            .run(&store.pool)
            .await
            .map_err(StoreError::Migration)?;
        Ok(store)
    }

    /// Connects to an existing database without changing it: no migration runs. For tools
    /// that inspect a deployment (`enigm audit verify`), which must not write to what they check.
    /// Fails with [`StoreError::SchemaMismatch`] unless the schema is exactly the one this build
    /// knows.
    pub async fn open_existing(url: &str) -> StoreResult<Store> {
        let store = Store::open(url).await?;
        let applied: Vec<i64> = sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version",
        )
        .fetch_all(&store.pool)
        .await
        .map_err(|_| StoreError::SchemaMismatch)?;
        let known: Vec<i64> = store
            .migrator()
            .iter()
            .map(|migration| migration.version)
            .collect();
        if applied != known {
            return Err(StoreError::SchemaMismatch);
        }
        Ok(store)
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    async fn open(url: &str) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let options = AnyConnectOptions::from_str(url)?;
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    // A connection to a local file does not go away: no ping before each use
                    // (it is a round trip to the connection's thread per query).
                    .test_before_acquire(false)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            // WAL lets readers run beside the writer; synchronous=FULL makes a
                            // commit durable before it is acknowledged.
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = FULL").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            // 64 MiB of page cache per connection (the default is 2 MiB): the
                            // audit log's indexes outgrow the default quickly, and each miss on
                            // an append is a read from disk.
                            conn.execute("PRAGMA cache_size = -65536").await?;
                            // Statement journals of multi-row writes stay in memory instead
                            // of a temporary file.
                            conn.execute("PRAGMA temp_store = MEMORY").await?;
                            // Checkpoints run beside the writers (`Store::checkpoint_wal`,
                            // every 250 ms in `enigm up`), not inside a commit; this larger
                            // automatic threshold (64 MiB of WAL) is only the backstop.
                            conn.execute("PRAGMA wal_autocheckpoint = 16384").await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?
            }
        };
        let write_gate = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        Ok(Store {
            pool,
            backend,
            write_gate,
            event_key: Arc::new(OnceLock::new()),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Gives the store the deployment's audit event key: from now on every audit event this
    /// store (and every clone of it) commits carries its tag, and the sequencer folds in only
    /// events whose tag verifies. Set once; a second key is refused (returned).
    pub fn set_audit_event_key(&self, key: Arc<AuditEventKey>) -> Result<(), Arc<AuditEventKey>> {
        self.event_key.set(key)
    }

    /// The fingerprint of the audit event key the store has, if any.
    pub fn audit_event_key_fingerprint(&self) -> Option<enigm_auditlog::KeyFingerprint> {
        self.event_key.get().map(|key| key.fingerprint())
    }

    pub(crate) fn audit_event_key(&self) -> Option<Arc<AuditEventKey>> {
        self.event_key.get().cloned()
    }

    /// Copies what the SQLite write-ahead log holds back into the database file, without
    /// waiting for or blocking writers (a passive checkpoint), so that commits do not do it
    /// themselves. Nothing to do on PostgreSQL.
    pub async fn checkpoint_wal(&self) -> StoreResult<()> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn begin(&self) -> StoreResult<WriteTx<'_>> {
        let gate = match &self.write_gate {
            Some(gate) => Some(gate.lock().await),
            None => None,
        };
        let tx = self.pool.begin().await?;
        Ok(WriteTx {
            tx,
            _gate: gate,
            backend: self.backend,
            audit: Vec::new(),
            event_key: self.audit_event_key(),
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

impl WriteTx<'_> {
    /// Writes the transaction's audit events, then commits: the change and its audit record
    /// are stored together or not at all.
    pub async fn commit(mut self) -> StoreResult<()> {
        if !self.audit.is_empty() {
            let events = std::mem::take(&mut self.audit);
            auditlog::insert_events(
                &mut self.tx,
                self.backend,
                self.event_key.as_deref(),
                &events,
            )
            .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }

    fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

/// Booleans are stored as 0/1 BIGINT: the one integer type both backends decode alike.
fn flag(value: bool) -> i64 {
    i64::from(value)
}

fn parse_id<T: FromStr>(text: &str, what: &'static str) -> StoreResult<T> {
    text.parse().map_err(|_| StoreError::Corrupt(what))
}

/// Reads a column that holds a vocabulary name (a lifecycle state, a trust state, ...): a name
/// this build does not know is a corrupt row, never a default.
fn name_column<T: enigm_types::Vocabulary>(
    row: &sqlx::any::AnyRow,
    column: &str,
    what: &'static str,
) -> StoreResult<T> {
    use sqlx::Row as _;
    let text: String = row.try_get(column)?;
    T::from_name(&text).map_err(|_| StoreError::Corrupt(what))
}

/// Reads a column that holds typed JSON (findings, gates): JSON that does not decode to the
/// type is a corrupt row.
fn json_column<T: serde::de::DeserializeOwned>(
    row: &sqlx::any::AnyRow,
    column: &str,
    what: &'static str,
) -> StoreResult<T> {
    use sqlx::Row as _;
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|_| StoreError::Corrupt(what))
}

/// The JSON a typed column keeps.
fn json_text<T: serde::Serialize + ?Sized>(value: &T, what: &'static str) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|_| StoreError::Encoding(what))
}

/// The `VALUES` list of a multi-row insert: `rows` tuples of `columns` numbered placeholders,
/// `($1, $2), ($3, $4), …`.
pub(crate) fn values_placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let numbers: Vec<String> = (1..=columns)
                .map(|column| format!("${}", row * columns + column))
                .collect();
            format!("({})", numbers.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}
