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
            database_url: None,
            tls: None,
            session_lifetime: Self::MAX_SESSION_LIFETIME,
            session_idle_timeout: Duration::from_secs(30 * 60),
            approval_ttl: Duration::from_secs(24 * 60 * 60),
            audit_retention: Self::DEFAULT_AUDIT_RETENTION,
        }
    }
}
