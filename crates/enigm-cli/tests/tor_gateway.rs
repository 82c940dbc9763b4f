//! `enigm up --tor-gateway-listen`: an address off loopback is refused before anything is
//! created; a real `enigm up`, on SQLite and PostgreSQL, serves the public read-only routes on
//! the gateway's port as on its main address, and login, the admin and device routes there
//! answer as an unknown path.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::process::Command;

use enigm_test_support::{Backend, TestDatabase, backend_tests};
use serde_json::json;

use crate::support::{ENIGM, Server, bootstrap_field};

#[test]
fn a_gateway_off_loopback_is_refused_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    for address in ["0.0.0.0:0", "[::]:8480", "192.0.2.1:80"] {
        let data_dir = dir.path().join("data");
        let output = Command::new(ENIGM)
            .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .args(["--tor-gateway-listen", address])
            .output()
            .unwrap();
        assert!(!output.status.success(), "{address}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("error: ")
                && stderr.contains("refusing to serve the Tor Gateway")
                && stderr.contains("loopback")
                && stderr.contains("--tor-gateway-listen 127.0.0.1:"),
            "{address}: {stderr}"
        );
        assert!(
            output.stdout.is_empty(),
            "{address}: {:?}",
            String::from_utf8_lossy(&output.stdout)
        );
        assert!(!data_dir.exists(), "{address}: the data directory was made");
    }
}

async fn get(url: &str) -> (u16, Vec<u8>) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

async fn a_real_command_serves_the_allowlist_on_the_gateway(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut args = vec!["--tor-gateway-listen", "127.0.0.1:0"];
    if backend == Backend::Postgres {
        args.extend(["--database-url", db.url()]);
    }
    let server = Server::start(&data_dir, &args);
    let gateway = server.printed_address("Tor Gateway");
    assert!(gateway.starts_with("http://127.0.0.1:"), "{gateway}");
    assert_ne!(gateway, server.url);

    // The public read-only routes answer as on the main address.
    for route in [
        "/healthz",
        "/tuf/metadata/timestamp.json",
        "/tuf/metadata/1.root.json",
    ] {
        let on_main = get(&format!("{}{route}", server.url)).await;
        let there = get(&format!("{gateway}{route}")).await;
        assert_eq!(there, on_main, "{route}");
    }
    let health = reqwest::get(format!("{gateway}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.headers()["referrer-policy"], "no-referrer");

    // The bootstrap owner logs in on the main address, and not through the gateway: there,
    // login, the admin, device and description routes are unknown paths, session or not.
    let bootstrap = std::fs::read_to_string(data_dir.join("bootstrap-admin.txt")).unwrap();
    let login = json!({
        "username": bootstrap_field(&bootstrap, "username"),
        "password": bootstrap_field(&bootstrap, "password"),
    });
    let client = reqwest::Client::new();
    let unknown = client
        .get(format!("{gateway}/no/such/route"))
        .send()
        .await
        .unwrap();
    let (unknown_status, unknown_body) = (unknown.status(), unknown.bytes().await.unwrap());
    assert_eq!(unknown_status, 404);
    let refused = client
        .post(format!("{gateway}/api/v1/auth/login"))
        .json(&login)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), unknown_status);
    assert_eq!(refused.bytes().await.unwrap(), unknown_body);
    let logged_in = client
        .post(format!("{}/api/v1/auth/login", server.url))
        .json(&login)
        .send()
        .await
        .unwrap();
    assert_eq!(logged_in.status(), 200);
    let token = logged_in.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for route in [
        "/api/v1/auth/whoami",
        "/api/v1/users",
        "/api/v1/devices",
        "/api/v1/device/commands",
        "/api/v1/audit/log/checkpoint",
        "/api/v1/routes",
        "/api/openapi.json",
        "/metrics",
    ] {
        let response = client
            .get(format!("{gateway}{route}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), unknown_status, "{route}");
        assert_eq!(response.bytes().await.unwrap(), unknown_body, "{route}");
    }
    let status = server.stop();
    assert!(status.success(), "{status:?}");
}

backend_tests!(a_real_command_serves_the_allowlist_on_the_gateway);
