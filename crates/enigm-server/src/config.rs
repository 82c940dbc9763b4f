//! Server configuration, as given on the `enigm up` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on. A non-loopback address requires `tls`.
    pub listen: SocketAddr,
    /// Directory for the embedded database, keys and the bootstrap credentials file.
    pub data_dir: PathBuf,
    /// Where the key files are; `None` means `<data_dir>/keys`. Every process of a deployment
    /// must have the same keys: replicas share one key directory (or a read-only secrets
    /// mount of it).
    pub keys_dir: Option<PathBuf>,
    /// `postgres://…` or `sqlite://…`; `None` means SQLite at `<data_dir>/enigm.db`.
    pub database_url: Option<String>,
    pub tls: Option<TlsFiles>,
    /// Absolute session lifetime; at most 6 hours.
    pub session_lifetime: Duration,
    /// Sessions unused for this long end early.
    pub session_idle_timeout: Duration,
    /// Pending approval requests expire after this long.
    pub approval_ttl: Duration,
    /// Audit event bodies are purged after this long, unless on legal hold.
    pub audit_retention: Duration,
    /// Root certificates (PEM or DER) of Android attestation chains to trust besides Google's,
    /// pinned by their public key.
    pub attestation_roots: Vec<PathBuf>,
    /// A development attestation root certificate (PEM) that simulated devices' chains end at.
    /// Insecure: anyone holding its key can claim any device; only with
    /// `--insecure-dev-attestation-root`. Without a status list it also turns the revocation
    /// check off.
    pub insecure_dev_attestation_root: Option<PathBuf>,
    /// Google's attestation status list (JSON). Without one, chains are rejected (fail closed)
    /// unless a development root is configured.
    pub attestation_status_list: Option<PathBuf>,
    /// How old the status list (its file's modification time) may be before every chain is
    /// rejected.
    pub attestation_status_max_age: Duration,
    /// A PKCS#11 token for the online snapshot and timestamp keys; `None` keeps them as files
    /// (mode 0600) in the data directory's `keys/`.
    pub ota_online_token: Option<OnlineKeyToken>,
    /// Keep the audit log's key in `ota_online_token` too (label
    /// [`crate::bootstrap::AUDIT_LOG_KEY_LABEL`]) instead of a file.
    pub audit_log_key_on_token: bool,
    /// Accept OTA online keys that differ from the ones the database records, and record them:
    /// the operator moved them between files and a token (the next root must name them).
    pub rebind_ota_online_keys: bool,
    /// See [`crate::edge::EdgeLimits::header_read_timeout`].
    pub header_read_timeout: Duration,
    /// See [`crate::edge::EdgeLimits::request_timeout`].
    pub request_timeout: Duration,
    /// Connections served at once; `None` derives it from the file limit
    /// ([`crate::edge::EdgeLimits::derived`]).
    pub max_connections: Option<usize>,
    /// Connections served at once from one address; `None`: half of `max_connections`.
    pub max_connections_per_ip: Option<usize>,
    /// Where to serve Prometheus metrics (`GET /metrics`, plain HTTP); `None`: not served.
    pub metrics_listen: Option<SocketAddr>,
    /// Where to serve the Tor Gateway (public read-only routes, plain HTTP) for a local Tor
    /// daemon's onion service; loopback only. `None`: not served. See [`crate::tor_gateway`].
    pub tor_gateway_listen: Option<SocketAddr>,
    /// How long an Enigm Proxy credential lives (10 minutes by default).
    pub proxy_credential_lifetime: Duration,
}

/// Where Command's online OTA keys live when they are in a PKCS#11 token: the keys labelled
/// [`crate::bootstrap::OTA_SNAPSHOT_KEY_LABEL`] and [`crate::bootstrap::OTA_TIMESTAMP_KEY_LABEL`]
/// (Ed25519), generated on the token at the first start when absent.
#[derive(Debug, Clone)]
pub struct OnlineKeyToken {
    pub module: PathBuf,
    pub token_label: String,
    pub pin: secrecy::SecretString,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ServerConfig {
    pub const MAX_SESSION_LIFETIME: Duration = Duration::from_secs(6 * 60 * 60);
    pub const DEFAULT_AUDIT_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

    /// The defaults of `enigm up`: loopback, `./enigm-data`, SQLite, 6 h sessions with a 30 min
    /// idle timeout, approvals that expire after 24 h, audit bodies kept 30 days.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        ServerConfig {
            listen,
            data_dir,
            keys_dir: None,
            database_url: None,
            tls: None,
            session_lifetime: Self::MAX_SESSION_LIFETIME,
            session_idle_timeout: Duration::from_secs(30 * 60),
            approval_ttl: Duration::from_secs(24 * 60 * 60),
            audit_retention: Self::DEFAULT_AUDIT_RETENTION,
            attestation_roots: Vec::new(),
            insecure_dev_attestation_root: None,
            attestation_status_list: None,
            attestation_status_max_age: Duration::from_secs(24 * 60 * 60),
            ota_online_token: None,
            audit_log_key_on_token: false,
            rebind_ota_online_keys: false,
            header_read_timeout: crate::edge::EdgeLimits::DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: crate::edge::EdgeLimits::DEFAULT_REQUEST_TIMEOUT,
            max_connections: None,
            max_connections_per_ip: None,
            metrics_listen: None,
            tor_gateway_listen: None,
            proxy_credential_lifetime:
                crate::services::proxy_credentials::ProxyCredentialConfig::DEFAULT_LIFETIME,
        }
    }

    /// The key directory: `keys_dir`, or `<data_dir>/keys`.
    pub fn keys_dir(&self) -> PathBuf {
        self.keys_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("keys"))
    }
}
