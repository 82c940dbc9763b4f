//! The agent's loopback proxy forwarder (`enigm_agent::proxy_forward::serve`, as `enigm agent`
//! runs it, on the system clock) in front of a real `enigm proxy` process and a real
//! `enigm up` (SQLite and PostgreSQL): a device enrolled and attested by `enigm agent --once`
//! with the development root renews its credential at Command; an app's CONNECT through the
//! forwarder reaches a loopback echo server (the proxy opted in to private destinations).
//! Fail closed: with no credential the app is answered 503 and neither the proxy nor the target
//! sees anything; a request that is not a CONNECT goes nowhere; once the device is revoked its
//! renewal is refused, the proxy refuses its live credential (502 to the app, as soon as the
//! proxy has polled the new list) and a holder without a credential answers 503.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use enigm_agent::core::proxy::ProxyCredentials;
use enigm_agent::http::DeviceClient;
use enigm_agent::proxy_forward::{SharedCredentials, renew_shared};
use enigm_agent::report::system_now;
use enigm_agent::state::StateDir;
use enigm_test_support::{Backend, TestDatabase, backend_tests};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{Owner, Proxy, Server, agent_once, output_text, write_secret};

const DEADLINE: Duration = Duration::from_secs(10);

/// A TCP echo server on loopback that counts the connections it accepts.
async fn echo_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    (address, accepted)
}

/// `enigm_agent::proxy_forward::serve` on a loopback port, as `enigm agent` runs it.
async fn start_forwarder(
    proxy: SocketAddr,
    state: &Path,
    credentials: SharedCredentials,
) -> SocketAddr {
    let key = StateDir::open(state).unwrap().device_key().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(enigm_agent::proxy_forward::serve(
        listener,
        proxy,
        key,
        credentials,
    ));
    address
}

/// An app's request through the forwarder: the status line and, for a refusal, the body; for
/// an established tunnel, what the echo server sent back of `payload`.
async fn app(forwarder: SocketAddr, head: &str, payload: &[u8]) -> String {
    let mut stream = TcpStream::connect(forwarder).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(payload).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    let expected_tunnel = b"HTTP/1.1 200 Connection established\r\n\r\n".len() + payload.len();
    loop {
        let read = tokio::time::timeout(DEADLINE, stream.read(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        if read == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..read]);
        if answer.starts_with(b"HTTP/1.1 200 ") && answer.len() >= expected_tunnel {
            break;
        }
    }
    let answer = String::from_utf8(answer).unwrap();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    format!("{status} | {body}")
}

async fn renew(
    device: &DeviceClient,
    state: &Path,
    credentials: &SharedCredentials,
) -> Result<bool, String> {
    let key = StateDir::open(state).unwrap().device_key().unwrap();
    renew_shared(device, &key, credentials, system_now())
        .await
        .map_err(|error| error.code().unwrap_or_default().to_owned())
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

backend_tests!(apps_reach_targets_only_through_a_real_enigm_proxy_with_a_live_credential);

async fn apps_reach_targets_only_through_a_real_enigm_proxy_with_a_live_credential(
    backend: Backend,
) {
    let db = TestDatabase::new(backend).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let dev_root = dir.path().join("dev-root");
    let mut server_args = vec!["--insecure-dev-attestation-root", path(&dev_root)];
    if backend == Backend::Postgres {
        server_args.extend(["--database-url", db.url()]);
    }
    let server = Server::start(&data_dir, &server_args);
    let url = server.url.clone();
    let owner_login = Owner::log_in(dir.path(), &data_dir, &url);
    let owner = &owner_login.cli;
    let (carol, carol_pin) = owner_login.add_administrator("carol", "security-admin");

    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, r#"{"required_for": {"enrollment": true}}"#).unwrap();
    let pin_args = owner_login.pin_args();
    let created = owner.json(
        &[
            &[
                "admin",
                "enrollment-token",
                "create",
                "--group",
                "field",
                "--uses",
                "1",
                "--attestation-policy-file",
                path(&policy),
            ][..],
            &pin_args[..],
        ]
        .concat(),
    );
    let token = write_secret(
        &owner_login.secrets,
        "token",
        created["token"].as_str().unwrap(),
    );
    let state = dir.path().join("device");
    let enrolled = agent_once(
        &url,
        &state,
        &[
            "--enrollment-token-file",
            path(&token),
            "--insecure-dev-attestation-root",
            path(&dev_root),
        ],
    );
    assert!(enrolled.status.success(), "{}", output_text(&enrolled));
    let enrollment: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("enrollment.json")).unwrap())
            .unwrap();
    let handle = enrollment["handle"].as_str().unwrap().to_owned();

    let proxy = Proxy::start(
        "127.0.0.1:0",
        &url,
        &[
            "--revocation-poll-seconds",
            "1",
            "--allow-private-destinations",
        ],
    );
    let proxy_address: SocketAddr = proxy.address.parse().unwrap();
    let (echo, echo_accepted) = echo_server().await;
    let device = DeviceClient::new(&url, None).unwrap();
    let connect = format!("CONNECT {echo} HTTP/1.1\r\nHost: {echo}\r\n\r\n");
    let get = format!("GET http://{echo}/ HTTP/1.1\r\nHost: {echo}\r\n\r\n");

    // No credential: 503, and nothing reaches the proxy or the target; nor does a GET.
    let empty: SharedCredentials = Arc::new(tokio::sync::Mutex::new(ProxyCredentials::new()));
    let without = start_forwarder(proxy_address, &state, empty).await;
    assert_eq!(
        app(without, &connect, b"").await,
        "HTTP/1.1 503 Service Unavailable | no-credential"
    );
    assert_eq!(
        app(without, &get, b"").await,
        "HTTP/1.1 405 Method Not Allowed | not-connect"
    );
    assert_eq!(echo_accepted.load(Ordering::SeqCst), 0);

    // Renewed at Command: the app's bytes go through the proxy to the echo server and back.
    let credentials: SharedCredentials = Arc::new(tokio::sync::Mutex::new(ProxyCredentials::new()));
    assert_eq!(renew(&device, &state, &credentials).await, Ok(true));
    let forwarder = start_forwarder(proxy_address, &state, credentials.clone()).await;
    assert_eq!(
        app(forwarder, &connect, b"through the enigm proxy").await,
        "HTTP/1.1 200 Connection established | through the enigm proxy"
    );
    assert_eq!(echo_accepted.load(Ordering::SeqCst), 1);
    assert_eq!(
        app(forwarder, &get, b"").await,
        "HTTP/1.1 405 Method Not Allowed | not-connect"
    );

    // Revoked (the owner asks, carol approves): renewal is refused...
    let requested = owner.json(
        &[
            &[
                "admin",
                "devices",
                "lifecycle",
                &handle,
                "revoke",
                "--justification",
                "ticket 16: device lost",
            ][..],
            &pin_args[..],
        ]
        .concat(),
    );
    if let Some(approval) = requested["approval"]["id"].as_str() {
        carol.json(&[
            "admin",
            "approvals",
            "approve",
            approval,
            "--pin-file",
            path(&carol_pin),
        ]);
    }
    let fresh: SharedCredentials = Arc::new(tokio::sync::Mutex::new(ProxyCredentials::new()));
    assert_eq!(
        renew(&device, &state, &fresh).await,
        Err("device_revoked".to_owned())
    );
    // ...so a holder without a credential answers 503 and sends nothing...
    let refused = start_forwarder(proxy_address, &state, fresh).await;
    let accepted_before = echo_accepted.load(Ordering::SeqCst);
    assert_eq!(
        app(refused, &connect, b"").await,
        "HTTP/1.1 503 Service Unavailable | no-credential"
    );
    assert_eq!(echo_accepted.load(Ordering::SeqCst), accepted_before);
    // ...and the credential still held is refused by the proxy once it has polled the new list
    // (every second): the app hears 502 with the proxy's category.
    let mut answer = String::new();
    for _ in 0..60 {
        answer = app(forwarder, &connect, b"x").await;
        if !answer.starts_with("HTTP/1.1 200 ") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(answer, "HTTP/1.1 502 Bad Gateway | revoked");
    let accepted_after = echo_accepted.load(Ordering::SeqCst);
    let answer = app(forwarder, &connect, b"x").await;
    assert_eq!(answer, "HTTP/1.1 502 Bad Gateway | revoked");
    assert_eq!(echo_accepted.load(Ordering::SeqCst), accepted_after);
    drop(proxy);
    server.stop();
}
