//! Running Command: open the database, bootstrap, listen (TLS 1.3 off loopback), and shut down
//! gracefully on SIGINT or SIGTERM.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::http::{HeaderValue, header};
use enigm_attest::android::chain::parse_certificates;
use enigm_attest::android::revocation::RevocationList;
use enigm_crypto::HashCost;
use enigm_identity::{SessionPolicy, ThrottlePolicy};
use enigm_store::Store;
use enigm_types::Timestamp;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::attestation::AttestationConfig;
use crate::bootstrap::{
    BOOTSTRAP_FILE, bootstrap_if_empty, lock_sqlite_database, prepare_data_dir, secure_sqlite_files,
};
use crate::config::{ServerConfig, TlsFiles};
use crate::edge::EdgeLimits;
use crate::lease::{self, Lease};
use crate::state::{AppState, StateOptions, SystemClock};

/// HSTS for six months with subdomains (enigm-docs §17).
const HSTS: &str = "max-age=15768000; includeSubDomains";

/// How often committed audit leaves are folded into the tree and a checkpoint published.
const SEQUENCER_INTERVAL: Duration = Duration::from_millis(500);
/// How often audit bodies past retention are purged.
const PURGE_INTERVAL: Duration = Duration::from_secs(60 * 60);
/// How often expired attestation nonces and forgotten login throttle rows are purged.
const SHARED_STATE_PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// Connections served at once on the metrics address.
const METRICS_MAX_CONNECTIONS: usize = 16;

/// Runs Command until SIGINT or SIGTERM.
pub async fn run(config: ServerConfig) -> anyhow::Result<()> {
    if !config.listen.ip().is_loopback() && config.tls.is_none() {
        anyhow::bail!(
            "refusing to listen on {} without TLS: pass --tls-cert and --tls-key, or listen on a loopback address",
            config.listen
        );
    }
    // Before anything is created: a refused address changes nothing.
    if let Some(address) = config.tor_gateway_listen {
        crate::tor_gateway::check_address(address)?;
    }
    prepare_data_dir(&config.data_dir)?;
    let database_url = match &config.database_url {
        Some(url) => url.clone(),
        None => format!(
            "sqlite://{}?mode=rwc",
            config.data_dir.join("enigm.db").display()
        ),
    };
    // Held until `run` returns: SQLite serves one process.
    let _sqlite_lock = lock_sqlite_database(&database_url)?;
    secure_sqlite_files(&database_url)?;
    let store = Store::connect(&database_url)
        .await
        .context("cannot open the database")?;
    // Again, now that SQLite has made its WAL and shared-memory files.
    secure_sqlite_files(&database_url)?;
    let keys = crate::deployment_keys::load_and_bind(
        &config,
        &store,
        enigm_types::Clock::now(&SystemClock),
    )
    .await?;
    let session_policy = SessionPolicy::new(config.session_lifetime, config.session_idle_timeout)
        .context("invalid session lifetime settings")?;
    let clock: Arc<dyn enigm_types::Clock> = Arc::new(SystemClock);
    let options = StateOptions {
        clock: clock.clone(),
        hash_cost: HashCost::Production,
        sealing_key: keys.sealing,
        session_policy,
        approval_ttl: config.approval_ttl,
        throttle: ThrottlePolicy::default(),
        log_signer: keys.log_signer,
        audit_event_key: keys.audit_event,
        audit_retention: config.audit_retention,
        device_handle_key: keys.device_handle,
        attestation: attestation_config(&config)?,
        ota: crate::ota::OtaConfig {
            online: keys.ota_online,
            artifacts_dir: config.data_dir.join("ota").join("targets"),
        },
        proxy_credentials: crate::services::proxy_credentials::ProxyCredentialConfig {
            key: keys.proxy_credential,
            lifetime: config.proxy_credential_lifetime,
        },
    };
    let state = AppState::new(store.clone(), options).context("cannot assemble Command's state")?;
    if !crate::ota::current_root_names_online_keys(&state)
        .await
        .map_err(|error| anyhow::anyhow!("cannot read the OTA root: {}", error.code()))?
    {
        // Printed as well as logged: an operator who just moved the keys is at the terminal.
        eprintln!(
            "warning: the current OTA root does not name this Command's online snapshot and \
             timestamp keys (did they move between files and a token?); devices will refuse \
             what it signs, and publishing is refused, until a root that names them is \
             installed. On the signing workstation, with its token (as for `enigm ota keys \
             init`; no new key is needed), run: {}",
            crate::ota::NAME_ONLINE_KEYS_COMMAND
        );
        tracing::warn!("the current OTA root does not name Command's online keys");
    }
    if let Some(warning) = crate::services::policy_bundles::delegation_status(&state)
        .await
        .map_err(|error| anyhow::anyhow!("cannot read the OTA targets: {}", error.code()))?
        .warning()
    {
        eprintln!("warning: {warning}");
    }
    // Once-only tasks run in the process that holds their lease; try to take each now, so that
    // a single process starts them at once.
    let holder = lease::holder_id();
    let lease = |task| Arc::new(Lease::new(store.clone(), clock.clone(), task, &holder));
    let audit_lease = lease(lease::AUDIT_LOG);
    let ota_lease = lease(lease::OTA_TIMESTAMPS);
    let purge_lease = lease(lease::SHARED_STATE_PURGE);
    let leases = vec![audit_lease.clone(), ota_lease.clone(), purge_lease.clone()];
    for lease in &leases {
        lease.renew().await;
    }
    let keeper = tokio::spawn(lease::keep(leases.clone()));
    // Devices must never see an expired timestamp while Command runs.
    let timestamps = tokio::spawn(crate::ota::refresh_timestamps(
        state.clone(),
        ota_lease.clone(),
    ));
    // Approved policy changes reach devices as signed bundles within a second or two.
    let bundles = tokio::spawn(crate::services::policy_bundles::run(
        state.clone(),
        ota_lease,
    ));
    let purges = tokio::spawn(purge_shared_state(state.clone(), purge_lease));

    if let Some(credentials) = bootstrap_if_empty(&state, &config.data_dir).await? {
        // Printed once, to the terminal only (not to the structured log).
        println!("Created the bootstrap owner account. These credentials are shown only once:");
        print!("{}", credentials.to_file_text());
        println!(
            "(also written to {} with mode 0600)",
            config.data_dir.join(BOOTSTRAP_FILE).display()
        );
    }

    // Leaves committed before a crash are folded in now; then the sequencer keeps up. When
    // another process holds the audit log's lease, it does both.
    if audit_lease.is_held() {
        state
            .audit_log
            .sync()
            .await
            .context("cannot bring the audit log up to date")?;
    }
    let sequencer = tokio::spawn(state.audit_log.clone().run(
        audit_lease.clone(),
        SEQUENCER_INTERVAL,
        PURGE_INTERVAL,
    ));
    let audit_log = state.audit_log.clone();
    let anonymous = state.anonymous.clone();
    let metrics = match config.metrics_listen {
        Some(address) => Some(serve_metrics(address, state.clone())?),
        None => None,
    };
    let tor_gateway = match config.tor_gateway_listen {
        Some(address) => Some(serve_tor_gateway(address, state.clone(), &config)?),
        None => None,
    };
    let app = crate::routes::router(state);
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let limits = EdgeLimits {
        header_read_timeout: config.header_read_timeout,
        request_timeout: config.request_timeout,
        ..EdgeLimits::derived(config.max_connections, config.max_connections_per_ip)
    };
    let signalled = shutdown_signal()?;
    match &config.tls {
        Some(tls) => {
            let app = app.layer(SetResponseHeaderLayer::if_not_present(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static(HSTS),
            ));
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(tls)?));
            println!("Enigm Command listening on https://{local}");
            tracing::info!(%local, "listening with TLS 1.3");
            crate::edge::serve(listener, app, Some(acceptor), limits, signalled).await;
        }
        None => {
            println!("Enigm Command listening on http://{local}");
            tracing::info!(%local, "listening");
            crate::edge::serve(listener, app, None, limits, signalled).await;
        }
    }
    keeper.abort();
    if let Some(metrics) = &metrics {
        metrics.abort();
    }
    if let Some(tor_gateway) = &tor_gateway {
        tor_gateway.abort();
    }
    sequencer.abort();
    timestamps.abort();
    bundles.abort();
    purges.abort();
    // The open window's counts of refused anonymous requests are written before the log is
    // brought up to date, so that they are signed too.
    anonymous.flush(true).await;
    if audit_lease.is_held()
        && let Err(error) = audit_log.sync().await
    {
        tracing::error!(
            error = format!("{error:#}"),
            "audit log not brought up to date at shutdown"
        );
    }
    // Given up rather than left to expire, so another process takes the tasks over at once.
    for lease in &leases {
        lease.release().await;
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Binds the metrics address and serves `GET /metrics` there until aborted. Plain HTTP on any
/// address: the text carries counts under closed label sets and no secret (see
/// [`crate::metrics`]).
fn serve_metrics(
    address: std::net::SocketAddr,
    state: AppState,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = std::net::TcpListener::bind(address)
        .with_context(|| format!("cannot listen for metrics on {address}"))?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    println!("Enigm Command metrics on http://{local}/metrics");
    tracing::info!(%local, "serving metrics");
    let app = crate::metrics::router(state);
    // The same edge as the API (header and request timeouts), with room for a few scrapers
    // only: nobody but Prometheus has business here.
    let limits = EdgeLimits::derived(Some(METRICS_MAX_CONNECTIONS), Some(METRICS_MAX_CONNECTIONS));
    Ok(tokio::spawn(crate::edge::serve(
        listener,
        app,
        None,
        limits,
        std::future::pending(),
    )))
}

/// Binds the Tor Gateway's address and serves the public read-only surface there until
/// aborted (see [`crate::tor_gateway`]).
fn serve_tor_gateway(
    address: std::net::SocketAddr,
    state: AppState,
    config: &ServerConfig,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = std::net::TcpListener::bind(address)
        .with_context(|| format!("cannot serve the Tor Gateway on {address}"))?;
    let local = listener.local_addr()?;
    let limits = EdgeLimits {
        header_read_timeout: config.header_read_timeout,
        request_timeout: config.request_timeout,
        max_connections: crate::tor_gateway::MAX_CONNECTIONS,
        max_connections_per_ip: crate::tor_gateway::MAX_CONNECTIONS,
    };
    let task = crate::tor_gateway::spawn(
        listener,
        state,
        limits,
        crate::tor_gateway::RequestRate::DEFAULT,
    )?;
    println!("Enigm Command Tor Gateway on http://{local}");
    tracing::info!(%local, "serving the Tor Gateway");
    Ok(task)
}

/// Purges expired attestation nonces and forgotten login throttle rows while this process holds
/// `lease`, so that neither table grows without bound.
async fn purge_shared_state(state: AppState, lease: Arc<Lease>) {
    let mut ticks = tokio::time::interval(SHARED_STATE_PURGE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if !lease.is_held() {
            continue;
        }
        let now = state.now();
        if let Err(error) = state.attestation().nonces.purge_expired(now).await {
            tracing::warn!(error = %error, "could not purge expired attestation nonces");
        }
        if let Err(error) = state.throttle.purge(now).await {
            tracing::warn!(error = %error, "could not purge the login throttle");
        }
    }
}

fn tls_config(files: &TlsFiles) -> anyhow::Result<rustls::ServerConfig> {
    let cert_pem = std::fs::read(&files.cert)
        .with_context(|| format!("cannot read `{}`", files.cert.display()))?;
    let key_pem = std::fs::read(&files.key)
        .with_context(|| format!("cannot read `{}`", files.key.display()))?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("`{}` is not a PEM certificate chain", files.cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("`{}` holds no certificate", files.cert.display());
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .with_context(|| format!("`{}` is not a PEM private key", files.key.display()))?
        .with_context(|| format!("`{}` holds no private key", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 is unavailable")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Registers the SIGINT and SIGTERM handlers now and resolves when either arrives. Registering
/// before "listening" is printed means a supervisor (or a test) that stops the process as soon as
/// it listens gets a graceful shutdown, not the default action of the signal.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        tracing::info!("shutting down");
    })
}

/// The attestation verifier's configuration: Google's roots, the operator's, the development root
/// when asked for, and the revocation status list with the time it was written.
fn attestation_config(config: &ServerConfig) -> anyhow::Result<AttestationConfig> {
    let mut attestation = AttestationConfig {
        revocation_max_age: config.attestation_status_max_age,
        ..AttestationConfig::default()
    };
    for path in &config.attestation_roots {
        let label = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_else(|| "operator".to_owned());
        pin_root(&mut attestation, &label, path)?;
    }
    if let Some(path) = &config.insecure_dev_attestation_root {
        tracing::warn!(
            root = %path.display(),
            "INSECURE: trusting a development attestation root; simulated devices can claim any \
             hardware. Never use this in production."
        );
        pin_root(&mut attestation, "insecure-dev-root", path)?;
        attestation.revocation_unchecked = config.attestation_status_list.is_none();
    }
    if let Some(path) = &config.attestation_status_list {
        let bytes = std::fs::read(path).with_context(|| {
            format!("cannot read the attestation status list {}", path.display())
        })?;
        let modified = std::fs::metadata(path)
            .and_then(|metadata| metadata.modified())
            .with_context(|| format!("cannot read the modification time of {}", path.display()))?;
        let fetched_at = Timestamp::from_unix_millis(
            modified
                .duration_since(std::time::UNIX_EPOCH)
                .map(|since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
                .unwrap_or(0),
        );
        let list = RevocationList::parse(&bytes, fetched_at)
            .with_context(|| format!("{} is not an attestation status list", path.display()))?;
        attestation.revocation_list = Some(list);
    }
    Ok(attestation)
}

fn pin_root(attestation: &mut AttestationConfig, label: &str, path: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the attestation root {}", path.display()))?;
    let certificate = parse_certificates(&bytes)
        .ok()
        .and_then(|chain| chain.into_iter().next())
        .with_context(|| format!("{} holds no certificate", path.display()))?;
    attestation
        .anchors
        .add_certificate(label, &certificate)
        .with_context(|| {
            format!(
                "{} is not a certificate whose key can be pinned",
                path.display()
            )
        })?;
    Ok(())
}
