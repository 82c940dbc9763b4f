//! The Enigm Proxy end to end, over real loopback sockets: Command (its real router, served on
//! a port) issues an enrolled, attested device a credential; the device opens a CONNECT tunnel
//! through the reference proxy (`enigm-proxy`, polling Command's revocation list) to a TCP echo
//! server; then every refusal: a replayed proof, a proof for another target, a forged
//! credential, garbage heads, a private destination the proxy was not told to allow, an expired
//! credential (Command's and the proxy's manual clock stepped past it), a stale attestation (no
//! new credential), and a revoked device (no new credential; its live credential refused by the
//! proxy once the proxy has the new list).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use enigm_agent::core::proxy::{ProxyCredentials, ProxyUnavailable};
use enigm_agent::http::DeviceClient;
use enigm_agent::proxy_tunnel::{TunnelError, open_tunnel, renew_if_due};
use enigm_attest::dev::{DevAttestationRoot, DevAttestedKey};
use enigm_crypto::Ed25519SigningKey;
use enigm_proxyauth::{
    Credential, CredentialClaims, CredentialId, Proof, TargetAuthority, authorization,
};
use enigm_test_support::{Backend, backend_tests};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::proxy::{config, device_key, echo_server, proxy, refresh_proxy};
use crate::support::{Command, Pair};

const DEADLINE: Duration = Duration::from_secs(10);

/// Asks Command for a credential over HTTP, signed at Command's time.
async fn fetch(
    holder: &mut ProxyCredentials,
    device: &DeviceClient,
    command: &Command,
    nonce: u8,
) -> Result<(), enigm_agent::core::ExchangeError> {
    let key = device_key();
    let now = command.now();
    let request = ProxyCredentials::request(&key, device.path_prefix(), now, &[nonce; 16]);
    let answer = device.send(&request).await.unwrap();
    holder.handle_response(&key, answer.status, &answer.body, now)
}

fn random_nonce() -> [u8; 16] {
    rand::random()
}

/// A tunnel opened, and bytes echoed through it.
async fn assert_echoes(proxy: SocketAddr, authorization: &str, target: &TargetAuthority) {
    let mut tunnel = open_tunnel(proxy, authorization, target, DEADLINE)
        .await
        .unwrap();
    tunnel.write_all(b"through the enigm proxy").await.unwrap();
    let mut echoed = [0u8; 23];
    tunnel.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"through the enigm proxy");
}

async fn refused(
    proxy: SocketAddr,
    authorization: &str,
    target: &TargetAuthority,
) -> (u16, String) {
    match open_tunnel(proxy, authorization, target, DEADLINE).await {
        Err(TunnelError::Refused { status, category }) => (status, category),
        Ok(_) => panic!("the proxy opened a tunnel"),
        Err(other) => panic!("{other}"),
    }
}

/// Sends `head` as it is and returns the proxy's status line and body.
async fn raw(proxy: SocketAddr, head: &[u8]) -> String {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream.write_all(head).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(DEADLINE, stream.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    format!("{status} | {body}")
}

async fn the_proxy_admits_only_fresh_proofs_of_qualifying_devices(backend: Backend) {
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
    let (echo, _) = echo_server().await;
    let target = TargetAuthority::parse(&echo.to_string()).unwrap();
    let key = device_key();

    // No credential yet: nothing to present, so no proxy traffic (and no direct traffic).
    let mut holder = ProxyCredentials::new();
    assert!(holder.renewal_due(pair.command.now()));
    assert_eq!(
        holder.authorization(&key, &target, pair.command.now(), random_nonce()),
        Err(ProxyUnavailable::NoCredential)
    );

    // Issued (renewal is due with none held), and a tunnel reaches the echo server.
    assert!(
        renew_if_due(&device, &key, &mut holder, pair.command.now())
            .await
            .unwrap()
    );
    let issued_at = pair.command.now();
    assert!(!holder.renewal_due(issued_at));
    assert!(
        !renew_if_due(&device, &key, &mut holder, issued_at)
            .await
            .unwrap(),
        "not due yet"
    );
    let value = holder
        .authorization(&key, &target, issued_at, random_nonce())
        .unwrap();
    assert_echoes(proxy_address, &value, &target).await;

    // The same proof again: a replay.
    assert_eq!(
        refused(proxy_address, &value, &target).await,
        (407, "replayed".to_owned())
    );
    // A proof for the echo server presented for another target.
    let elsewhere = TargetAuthority::parse("127.0.0.1:9").unwrap();
    let value = holder
        .authorization(&key, &target, issued_at, random_nonce())
        .unwrap();
    assert_eq!(
        refused(proxy_address, &value, &elsewhere).await,
        (407, "wrong-target".to_owned())
    );
    // A credential for this device's key signed by a key other than Command's.
    let forged = Credential::issue(
        &Ed25519SigningKey::from_seed(&[7; 32]),
        CredentialClaims {
            id: CredentialId::from_bytes([1; 16]),
            handle,
            device_key: key.verifying_key().to_bytes(),
            issued_at,
            expires_at: issued_at.saturating_add(Duration::from_secs(600)),
        },
    );
    let proof = Proof::sign(&key, &forged, &target, random_nonce(), issued_at);
    assert_eq!(
        refused(proxy_address, &authorization(&forged, &proof), &target).await,
        (407, "credential-signature".to_owned())
    );
    // Garbage.
    assert_eq!(
        raw(
            proxy_address,
            format!("CONNECT {target} HTTP/1.1\r\nProxy-Authorization: Enigm AAAA.BBBB\r\n\r\n")
                .as_bytes()
        )
        .await,
        "HTTP/1.1 407 Proxy Authentication Required | malformed"
    );
    assert_eq!(
        raw(
            proxy_address,
            format!("CONNECT {target} HTTP/1.1\r\n\r\n").as_bytes()
        )
        .await,
        "HTTP/1.1 407 Proxy Authentication Required | missing-authorization"
    );
    assert_eq!(
        raw(
            proxy_address,
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"
        )
        .await,
        "HTTP/1.1 400 Bad Request | malformed-head"
    );
    assert_eq!(
        raw(proxy_address, b"GET http://example.com/ HTTP/1.1\r\n\r\n").await,
        "HTTP/1.1 405 Method Not Allowed | not-connect"
    );
    let oversized = format!(
        "CONNECT {target} HTTP/1.1\r\nX: {}\r\n\r\n",
        "a".repeat(9000)
    );
    assert_eq!(
        raw(proxy_address, oversized.as_bytes()).await,
        "HTTP/1.1 431 Request Header Fields Too Large | head-too-large"
    );
    // A proxy left at its default refuses loopback destinations, valid proof or not.
    let (_, strict_address, _) = proxy(&pair.command, &command_url, false).await;
    let value = holder
        .authorization(&key, &target, issued_at, random_nonce())
        .unwrap();
    assert_eq!(
        refused(strict_address, &value, &target).await,
        (403, "destination-refused".to_owned())
    );

    // Expired: Command's clock (which the proxy shares) past the credential's ten minutes.
    let stale_value = holder
        .authorization(&key, &target, issued_at, random_nonce())
        .unwrap();
    pair.command.clock.advance(Duration::from_secs(7 * 60));
    assert!(holder.renewal_due(pair.command.now()), "renewal at 2/3");
    pair.command.clock.advance(Duration::from_secs(3 * 60 + 1));
    let now = pair.command.now();
    refresh_proxy(&proxy_server, &command_client).await;
    assert_eq!(
        holder.authorization(&key, &target, now, random_nonce()),
        Err(ProxyUnavailable::Expired),
        "the device fails closed with an expired credential"
    );
    let old = holder.credential().unwrap().clone();
    let proof = Proof::sign(&key, &old, &target, random_nonce(), now);
    assert_eq!(
        refused(proxy_address, &authorization(&old, &proof), &target).await,
        (407, "credential-expired".to_owned())
    );
    // A proof made before expiry is stale by now, too.
    assert_eq!(refused(proxy_address, &stale_value, &target).await.0, 407);

    // Stale attestation: a day later the device checks in (its posture is fresh) but has not
    // attested again, so no credential.
    pair.command.clock.advance(Duration::from_secs(24 * 3600));
    let cycle = pair.cycle().await;
    assert!(
        !cycle.lines.iter().any(|line| line.contains("attestation")),
        "{:?}",
        cycle.lines
    );
    let error = fetch(&mut holder, &device, &pair.command, 2)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("attestation_not_affirming"), "{error}");

    // Attested again (due after two days): a credential again, and a tunnel.
    pair.command.clock.advance(Duration::from_secs(24 * 3600));
    let cycle = pair.cycle().await;
    assert!(
        cycle
            .lines
            .contains(&"send POST /api/v1/device/attestation".to_owned()),
        "{:?}",
        cycle.lines
    );
    fetch(&mut holder, &device, &pair.command, 3).await.unwrap();
    refresh_proxy(&proxy_server, &command_client).await;
    let live = holder
        .authorization(&key, &target, pair.command.now(), random_nonce())
        .unwrap();
    let later = holder
        .authorization(&key, &target, pair.command.now(), random_nonce())
        .unwrap();
    assert_echoes(proxy_address, &live, &target).await;

    // Revoked: no new credential, and once the proxy has the new list, the live credential is
    // refused before it expires.
    pair.command.log_in_again().await;
    pair.command.lifecycle(handle, "revoke").await;
    let error = fetch(&mut holder, &device, &pair.command, 4)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("device_revoked"), "{error}");
    refresh_proxy(&proxy_server, &command_client).await;
    assert_eq!(
        refused(proxy_address, &later, &target).await,
        (407, "revoked".to_owned())
    );

    // What the proxy kept: counts by category, nothing else.
    let counts = proxy_server.counts();
    assert_eq!(counts.get("tunnel"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("revoked"), Some(&1), "{counts:?}");
}

backend_tests!(the_proxy_admits_only_fresh_proofs_of_qualifying_devices);
