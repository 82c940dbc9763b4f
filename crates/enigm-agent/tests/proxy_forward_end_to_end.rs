//! The agent's loopback forwarder (`enigm_agent::proxy_forward`) end to end, over real loopback
//! sockets: an app speaks HTTP CONNECT to the forwarder, which tunnels through the reference
//! Enigm Proxy (`enigm-proxy`, polling Command's revocation list) to a TCP echo server, with
//! the credential Command (its real router, served on a port) issued an enrolled, attested
//! device. Fail closed: with no credential, after the device is revoked (renewal refused, the
//! live credential refused by the proxy) and once the credential has expired, the app is
//! answered and neither the proxy nor the target sees a connection; a request that is not a
//! CONNECT goes nowhere. Everything runs on Command's manual clock, which the proxy and the
//! forwarder share.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use enigm_agent::core::proxy::ProxyCredentials;
use enigm_agent::http::DeviceClient;
use enigm_agent::proxy_forward::{ForwardLimits, Forwarder, SharedCredentials, renew_shared};
use enigm_attest::dev::{DevAttestationRoot, DevAttestedKey};
use enigm_proxy::ProxyServer;
use enigm_test_support::{Backend, backend_tests};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::support::proxy::{config, device_key, echo_server, proxy, refresh_proxy};
use crate::support::{Command, Pair};

const DEADLINE: Duration = Duration::from_secs(10);
const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";

/// The forwarder for `proxy`, on a loopback port, on Command's clock.
async fn start_forwarder(
    command: &Command,
    proxy: SocketAddr,
    credentials: SharedCredentials,
) -> (Arc<Forwarder>, SocketAddr) {
    let forwarder = Forwarder::new(
        proxy,
        device_key(),
        credentials,
        command.clock.clone(),
        ForwardLimits::default(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(forwarder.clone().serve(listener, std::future::pending()));
    (forwarder, address)
}

/// An app's CONNECT to `target` through the forwarder, with its first bytes in the same write:
/// the tunnel is established and the bytes come back from the echo server.
async fn assert_tunnels(forwarder: SocketAddr, target: SocketAddr) {
    let mut app = TcpStream::connect(forwarder).await.unwrap();
    app.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\nhello").as_bytes())
        .await
        .unwrap();
    let mut answer = vec![0u8; ESTABLISHED.len()];
    tokio::time::timeout(DEADLINE, app.read_exact(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer, ESTABLISHED, "{}", String::from_utf8_lossy(&answer));
    let mut echoed = [0u8; 5];
    app.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"hello");
    app.write_all(b" through the enigm proxy").await.unwrap();
    let mut echoed = [0u8; 24];
    app.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b" through the enigm proxy");
}

/// Sends `head` as an app and returns the forwarder's status line and body.
async fn app_request(forwarder: SocketAddr, head: &str) -> String {
    let mut stream = TcpStream::connect(forwarder).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(DEADLINE, stream.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    format!("{status} | {body}")
}

/// Every connection the proxy has seen, whatever came of it.
fn proxy_connections(server: &ProxyServer) -> u64 {
    server.counts().values().sum()
}

async fn apps_reach_targets_only_through_the_proxy_and_only_with_a_live_credential(
    backend: Backend,
) {
    let root = DevAttestationRoot::generate().unwrap();
    let command = Command::new(backend, Some(&root)).await;
    let token = command.token(json!({})).await;
    let dev = (root, DevAttestedKey::generate().unwrap());
    let mut pair = Pair::new(command, token, config(), Some(dev));
    let first = pair.cycle().await;
    assert_eq!(first.lines.last().unwrap(), "sleep", "{:?}", first.lines);
    let handle = pair.agent.handle().unwrap();

    let command_address = pair.command.serve().await;
    let command_url = format!("http://{command_address}");
    let device = DeviceClient::new(&command_url, None).unwrap();
    let (proxy_server, proxy_address, command_client) =
        proxy(&pair.command, &command_url, true).await;
    let (echo, echo_accepted) = echo_server().await;
    let key = device_key();

    // No credential held: the app is answered 503 and nothing goes anywhere.
    let credentials: SharedCredentials = Arc::new(tokio::sync::Mutex::new(ProxyCredentials::new()));
    let (forwarder, forwarder_address) =
        start_forwarder(&pair.command, proxy_address, credentials.clone()).await;
    let connect = format!("CONNECT {echo} HTTP/1.1\r\nHost: {echo}\r\n\r\n");
    assert_eq!(
        app_request(forwarder_address, &connect).await,
        "HTTP/1.1 503 Service Unavailable | no-credential"
    );
    // Not a CONNECT: refused, with or without a credential, and nothing goes out.
    let get = format!("GET http://{echo}/ HTTP/1.1\r\nHost: {echo}\r\n\r\n");
    assert_eq!(
        app_request(forwarder_address, &get).await,
        "HTTP/1.1 405 Method Not Allowed | not-connect"
    );
    assert_eq!(proxy_connections(&proxy_server), 0);
    assert_eq!(echo_accepted.load(Ordering::SeqCst), 0);

    // Renewed at Command (due with none held): the app's bytes reach the echo server through
    // the proxy, and each connection carries a fresh proof (a replay would be refused).
    assert!(
        renew_shared(&device, &key, &credentials, pair.command.now())
            .await
            .unwrap()
    );
    assert!(
        !renew_shared(&device, &key, &credentials, pair.command.now())
            .await
            .unwrap(),
        "not due yet"
    );
    assert_tunnels(forwarder_address, echo).await;
    assert_tunnels(forwarder_address, echo).await;
    assert_eq!(echo_accepted.load(Ordering::SeqCst), 2);
    assert_eq!(
        proxy_server.counts().get("tunnel"),
        Some(&2),
        "{:?}",
        proxy_server.counts()
    );
    assert_eq!(
        app_request(forwarder_address, &get).await,
        "HTTP/1.1 405 Method Not Allowed | not-connect"
    );
    assert_eq!(proxy_connections(&proxy_server), 2);

    // A proxy left at its default refuses the loopback destination: the app hears 403 with the
    // proxy's category, and the forwarder does not try the target itself.
    let (_, strict_address, _) = proxy(&pair.command, &command_url, false).await;
    let (_, strict_forwarder) =
        start_forwarder(&pair.command, strict_address, credentials.clone()).await;
    assert_eq!(
        app_request(strict_forwarder, &connect).await,
        "HTTP/1.1 403 Forbidden | destination-refused"
    );
    assert_eq!(echo_accepted.load(Ordering::SeqCst), 2);

    // Revoked: renewal (due at two thirds of the ten minutes) is refused, and once the proxy
    // has the new list the credential still held is refused there: 502 with its category.
    pair.command.lifecycle(handle, "revoke").await;
    pair.command.clock.advance(Duration::from_secs(7 * 60));
    let held = credentials.lock().await.expires_at();
    let error = renew_shared(&device, &key, &credentials, pair.command.now())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("device_revoked"), "{error}");
    assert_eq!(
        credentials.lock().await.expires_at(),
        held,
        "kept until it expires"
    );
    refresh_proxy(&proxy_server, &command_client).await;
    assert_eq!(
        app_request(forwarder_address, &connect).await,
        "HTTP/1.1 502 Bad Gateway | revoked"
    );
    assert_eq!(echo_accepted.load(Ordering::SeqCst), 2);
    let seen = proxy_connections(&proxy_server);

    // Expired: the forwarder has no authorization to give, so the proxy sees nothing either.
    pair.command.clock.advance(Duration::from_secs(3 * 60 + 1));
    assert_eq!(
        app_request(forwarder_address, &connect).await,
        "HTTP/1.1 503 Service Unavailable | credential-expired"
    );
    assert_eq!(proxy_connections(&proxy_server), seen);
    assert_eq!(echo_accepted.load(Ordering::SeqCst), 2);

    // What the forwarder kept: counts by category, no destination.
    let counts = forwarder.counts();
    assert_eq!(counts.get("tunnel"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("no-credential"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("not-connect"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("proxy-refused"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("credential-expired"), Some(&1), "{counts:?}");
    assert!(
        counts
            .keys()
            .all(|category| !category.contains("127.0.0.1")),
        "{counts:?}"
    );
}

backend_tests!(apps_reach_targets_only_through_the_proxy_and_only_with_a_live_credential);
