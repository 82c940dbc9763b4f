//! Enigm Command: the control-plane HTTP server (axum) with administrator identity, roles,
//! multi-admin approvals and audit events.

pub mod config;

pub use config::{ServerConfig, TlsFiles};

/// Runs Command until SIGINT or SIGTERM.
pub async fn run(config: ServerConfig) -> anyhow::Result<()> {
    anyhow::bail!("command server for {} is not assembled yet", config.listen)
}
