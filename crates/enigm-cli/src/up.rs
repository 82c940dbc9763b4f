//! `enigm up`: run Enigm Command, the control plane.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use enigm_server::{OnlineKeyToken, ServerConfig, TlsFiles};

/// Where `enigm up` keeps its database and keys unless told otherwise; `enigm audit` looks there
/// too.
pub(crate) const DEFAULT_DATA_DIR: &str = "./enigm-data";

#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    /// Address to listen on. Anything but loopback requires --tls-cert and --tls-key.
    #[arg(long, env = "ENIGM_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Directory for the embedded database, the server keys and the bootstrap credentials.
    #[arg(long, env = "ENIGM_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Directory of the key files (default: `<data-dir>/keys`), mode 0700. Every process of one
    /// deployment needs the same keys: replicas on one PostgreSQL database point this at one
    /// shared directory or a read-only secrets mount of the first process's `keys/`. A key the
    /// database already knows is never made afresh; a key missing from a read-only directory
    /// is refused.
    #[arg(long, env = "ENIGM_KEYS_DIR", value_name = "DIR")]
    keys_dir: Option<PathBuf>,
    /// Database URL (`postgres://…` or `sqlite://…`); default: SQLite in the data directory.
    /// SQLite serves one `enigm up`; replicas need PostgreSQL.
    #[arg(long, env = "ENIGM_DATABASE_URL")]
    database_url: Option<String>,
    /// PEM certificate chain for TLS (TLS 1.3 only).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Absolute session lifetime in minutes (at most 360).
    #[arg(long, default_value_t = 360, value_parser = clap::value_parser!(u64).range(1..=360))]
    session_lifetime_minutes: u64,
    /// Idle timeout of sessions in minutes.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=360))]
    session_idle_minutes: u64,
    /// Hours after which pending approval requests expire.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=720))]
    approval_ttl_hours: u64,
    /// Days after which audit event bodies are purged (their leaf hashes stay in the
    /// tamper-evident log), unless the log is on legal hold.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=36_500))]
    audit_retention_days: u64,
    /// Root certificate (PEM or DER) of Android attestation chains to trust besides Google's,
    /// pinned by its public key. Repeat for several.
    #[arg(long, value_name = "FILE")]
    attestation_root: Vec<PathBuf>,
    /// INSECURE, for demos and tests: create (if missing) a development attestation root in DIR
    /// and trust it, so that simulated devices (`enigm agent`/`enigm simulate` with the same
    /// flag) attest through the same code path as real ones. Without --attestation-status-list
    /// it also turns the revocation check off.
    #[arg(long, value_name = "DIR")]
    insecure_dev_attestation_root: Option<PathBuf>,
    /// Google's attestation status list (JSON). Without it (and without a development root)
    /// every Android chain is rejected: revocation cannot be checked.
    #[arg(long, value_name = "FILE")]
    attestation_status_list: Option<PathBuf>,
    /// Hours after the status list file was written before it is too old to trust (every chain
    /// is then rejected until it is refreshed).
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=720))]
    attestation_status_max_age_hours: u64,
    /// Minutes an Enigm Proxy credential lives (devices renew at two thirds of it).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=60))]
    proxy_credential_minutes: u64,
    /// Keep the online OTA snapshot and timestamp keys in this PKCS#11 token (the module, e.g.
    /// /usr/lib/softhsm/libsofthsm2.so) instead of files in the data directory; they are
    /// generated on the token at the first start. Changing where they live changes the keys:
    /// the next root must name them (`enigm ota keys rotate --role root`).
    #[arg(
        long,
        value_name = "PATH",
        requires_all = ["ota_token_label", "ota_token_pin_file"]
    )]
    ota_pkcs11_module: Option<PathBuf>,
    /// The label of the token for the online OTA keys.
    #[arg(long, value_name = "LABEL", requires = "ota_pkcs11_module")]
    ota_token_label: Option<String>,
    /// File whose content is that token's user PIN (Command runs unattended, so there is no
    /// prompt; the PIN is never an argument).
    #[arg(long, value_name = "FILE", requires = "ota_pkcs11_module")]
    ota_token_pin_file: Option<PathBuf>,
    /// Keep the audit log's signing key in the token of --ota-pkcs11-module too (Ed25519,
    /// label `enigm-audit-log`, generated on the token at the first start) instead of a file;
    /// `keys/audit-log.pub` in the data directory still holds its verifier key.
    #[arg(long, requires = "ota_pkcs11_module")]
    audit_key_on_token: bool,
    /// Accept OTA online keys other than the ones the database records, and record them: for
    /// an operator who moved them between files and a token. The next OTA root must name them
    /// (`enigm ota keys rotate --role root`). Any other key that differs is still refused.
    #[arg(long)]
    rebind_ota_online_keys: bool,
    /// Seconds a client has to send a complete request head (and finish the TLS handshake),
    /// also on an idle keep-alive connection; then the connection is closed.
    #[arg(long, env = "ENIGM_HEADER_READ_TIMEOUT", default_value_t = 10, value_name = "SECS",
        value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_read_timeout: u64,
    /// Seconds a request may take from its head to its answer, body included (the artifact
    /// upload is exempt); then it is answered 408.
    #[arg(long, env = "ENIGM_REQUEST_TIMEOUT", default_value_t = 60, value_name = "SECS",
        value_parser = clap::value_parser!(u64).range(1..=86_400))]
    request_timeout: u64,
    /// Connections served at once; more are answered 503. Default: the open-file limit
    /// (raised to its hard limit) less 128 kept for the database and files.
    #[arg(long, env = "ENIGM_MAX_CONNECTIONS", value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections: Option<u64>,
    /// Connections served at once from one client address (IPv6: one /64); more are
    /// answered 503. Default: half of --max-connections.
    #[arg(long, env = "ENIGM_MAX_CONNECTIONS_PER_IP", value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections_per_ip: Option<u64>,
    /// Serve Prometheus metrics (`GET /metrics`, plain HTTP) on this address, e.g.
    /// 127.0.0.1:9464; off by default. They carry no secret and no device handle, user name,
    /// address or path as a label, so another address than loopback is allowed without TLS.
    #[arg(long, env = "ENIGM_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// Serve the Tor Gateway (the public read-only routes only: health and the TUF repository,
    /// plain HTTP) on this loopback address, e.g. 127.0.0.1:8480, for a local Tor daemon's
    /// onion service (`HiddenServicePort 80 127.0.0.1:8480`); off by default.
    #[arg(long, env = "ENIGM_TOR_GATEWAY_LISTEN", value_name = "ADDR")]
    tor_gateway_listen: Option<SocketAddr>,
}

pub(crate) async fn run(args: UpArgs) -> anyhow::Result<()> {
    // Everything Command creates (database and its WAL and shared-memory files wherever the
    // URL puts them, keys, artifacts) is for this user only; the server narrows files that
    // already exist too.
    rustix::process::umask(rustix::fs::Mode::RWXG | rustix::fs::Mode::RWXO);
    let mut config = ServerConfig::new(args.listen, args.data_dir);
    config.keys_dir = args.keys_dir;
    config.database_url = args.database_url;
    config.tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        _ => None,
    };
    config.session_lifetime = Duration::from_secs(args.session_lifetime_minutes * 60);
    config.session_idle_timeout = Duration::from_secs(args.session_idle_minutes * 60);
    config.approval_ttl = Duration::from_secs(args.approval_ttl_hours * 3600);
    config.audit_retention = Duration::from_secs(args.audit_retention_days * 86_400);
    config.attestation_roots = args.attestation_root;
    config.insecure_dev_attestation_root = args
        .insecure_dev_attestation_root
        .as_deref()
        .map(|dir| crate::attest::ensure_dev_root(dir).map(|(cert, _)| cert))
        .transpose()?;
    config.attestation_status_list = args.attestation_status_list;
    config.attestation_status_max_age =
        Duration::from_secs(args.attestation_status_max_age_hours * 3600);
    config.proxy_credential_lifetime = Duration::from_secs(args.proxy_credential_minutes * 60);
    if let (Some(module), Some(token_label), Some(pin_file)) = (
        args.ota_pkcs11_module,
        args.ota_token_label,
        args.ota_token_pin_file,
    ) {
        config.ota_online_token = Some(OnlineKeyToken {
            module,
            token_label,
            pin: crate::ota::keys::token_pin(Some(&pin_file))?,
        });
    }
    config.audit_log_key_on_token = args.audit_key_on_token;
    config.rebind_ota_online_keys = args.rebind_ota_online_keys;
    config.header_read_timeout = Duration::from_secs(args.header_read_timeout);
    config.request_timeout = Duration::from_secs(args.request_timeout);
    config.max_connections = args.max_connections.and_then(|n| usize::try_from(n).ok());
    config.max_connections_per_ip = args
        .max_connections_per_ip
        .and_then(|n| usize::try_from(n).ok());
    config.metrics_listen = args.metrics_listen;
    config.tor_gateway_listen = args.tor_gateway_listen;
    enigm_server::run(config)
        .await
        .context("enigm command server stopped with an error")
}
