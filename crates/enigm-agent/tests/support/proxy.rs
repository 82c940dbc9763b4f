//! The Enigm Proxy's side of the agent's proxy tests: a device configuration that attests, the
//! device key of `Pair`, a counting echo target, and the reference proxy on Command's clock.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use enigm_agent::core::Config;
use enigm_crypto::Ed25519SigningKey;
use enigm_proxy::{CommandClient, ProxyLimits, ProxyServer};
use enigm_proxyauth::{ProxyVerifier, VerifierPolicy};
use tokio::net::TcpListener;

use super::{Command, SERVER};

/// A device that attests (its first attestation comes with enrollment).
pub(crate) fn config() -> Config {
    Config {
        server: SERVER.to_owned(),
        path_prefix: String::new(),
        managed_opt_in: false,
        wipe_opt_in: false,
        attests: true,
        // Longer than the attestation policy's one day, so that the test decides when the
        // device attests again.
        attest_every: Duration::from_secs(2 * 24 * 3600),
        updates: false,
        interval: Duration::from_secs(60),
        once: false,
    }
}

/// The key `support::Pair` gives its device.
pub(crate) fn device_key() -> Ed25519SigningKey {
    Ed25519SigningKey::from_seed(&[42; 32])
}

/// A TCP echo server on loopback that counts the connections it accepts.
pub(crate) async fn echo_server() -> (SocketAddr, Arc<AtomicUsize>) {
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

/// A proxy pinning Command's key, on Command's clock, with its first revocation list;
/// `allow_private` lets it reach the loopback echo server.
pub(crate) async fn proxy(
    command: &Command,
    command_url: &str,
    allow_private: bool,
) -> (Arc<ProxyServer>, SocketAddr, CommandClient) {
    let client = CommandClient::new(command_url).unwrap();
    let key = client.credential_key().await.unwrap();
    let server = ProxyServer::new(
        ProxyVerifier::new(key, VerifierPolicy::default()),
        command.clock.clone(),
        ProxyLimits {
            allow_private_destinations: allow_private,
            ..ProxyLimits::default()
        },
    );
    enigm_proxy::refresh(&server, &client, &key).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(server.clone().serve(listener, std::future::pending()));
    (server, address, client)
}

pub(crate) async fn refresh_proxy(server: &ProxyServer, client: &CommandClient) {
    let key = client.credential_key().await.unwrap();
    enigm_proxy::refresh(server, client, &key).await.unwrap();
}
