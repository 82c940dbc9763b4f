//! `enigm proxy`: the reference Enigm Proxy (`enigm-proxy`), an HTTP CONNECT front that admits
//! only connections carrying a credential Command issued and a fresh proof by the device's key.
//! It pins Command's proxy-credential key at start (or checks it against `--credential-key`),
//! polls Command's revocation list, and refuses every connection once its list is too old.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use enigm_proxy::{CommandClient, ProxyLimits, ProxyServer};
use enigm_proxyauth::{ProxyVerifier, VerifierPolicy};

/// The longest `--credential-key` file read.
const MAX_KEY_FILE: u64 = 1024;

#[derive(Debug, clap::Args)]
pub(crate) struct ProxyArgs {
    /// Where to accept CONNECT requests.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8180")]
    listen: SocketAddr,
    /// Command's URL (https, or http on loopback), for its proxy-credential key and its
    /// revocation list.
    #[arg(long, value_name = "URL")]
    command: String,
    /// A file holding Command's proxy-credential key as `GET /api/v1/proxy/credential-key`
    /// gives it (`key`, base64url): the proxy refuses to start when Command publishes another.
    #[arg(long, value_name = "FILE")]
    credential_key: Option<PathBuf>,
    /// Seconds between fetches of the revocation list (a list older than 60 s refuses every
    /// connection).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=30))]
    revocation_poll_seconds: u64,
    /// INSECURE outside tests and single-host demos: let tunnels reach loopback, private,
    /// link-local and other special addresses (refused by default).
    #[arg(long)]
    allow_private_destinations: bool,
}

pub(crate) async fn run(global: &crate::cli::GlobalArgs, args: ProxyArgs) -> anyhow::Result<()> {
    let ca = global
        .ca_cert
        .as_ref()
        .map(|file| crate::policy::read_bounded(file, crate::policy::MAX_POLICY_FILE))
        .transpose()?;
    let command = CommandClient::with_ca(&args.command, ca.as_deref())?;
    let key = command
        .credential_key()
        .await
        .context("cannot read Command's proxy-credential key")?;
    if let Some(path) = &args.credential_key {
        let pinned = read_key(path)?;
        if pinned != key {
            anyhow::bail!(
                "Command at `{}` publishes another proxy-credential key than `{}` pins",
                args.command,
                path.display()
            );
        }
    }
    let server = ProxyServer::new(
        ProxyVerifier::new(key, VerifierPolicy::default()),
        Arc::new(enigm_server::state::SystemClock),
        ProxyLimits {
            allow_private_destinations: args.allow_private_destinations,
            ..ProxyLimits::default()
        },
    );
    enigm_proxy::refresh(&server, &command, &key)
        .await
        .context("cannot read Command's revocation list")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!(
        "Enigm Proxy listening on {}",
        listener.local_addr().context("no local address")?
    );
    tokio::spawn(enigm_proxy::keep_revocations_current(
        server.clone(),
        command,
        key,
        Duration::from_secs(args.revocation_poll_seconds),
    ));
    server
        .clone()
        .serve(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the proxy stopped")?;
    // Counts by category only: no destination, client or device is ever logged.
    for (category, count) in server.counts() {
        tracing::info!(category, count, "proxy connections");
    }
    Ok(())
}

fn read_key(path: &std::path::Path) -> anyhow::Result<enigm_crypto::Ed25519VerifyingKey> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)
        .with_context(|| format!("cannot open `{}`", path.display()))?
        .take(MAX_KEY_FILE)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    enigm_proxy::parse_key(&text).with_context(|| {
        format!(
            "`{}` does not hold an Ed25519 key in base64url",
            path.display()
        )
    })
}
