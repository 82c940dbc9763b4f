//! `enigm proxy` as a process beside a real `enigm up`: it starts only with Command's key (and
//! refuses a pinned key Command does not publish), and answers connections without a valid
//! credential 407 and closes them. The admitted path (credential, proof, tunnel, revocation) is
//! `enigm-agent/tests/proxy_end_to_end.rs`, over sockets as well.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::support::{ENIGM, Proxy, Server};

/// Sends `head` and reads the whole answer (the proxy closes after a refusal).
fn exchange(address: &str, head: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn the_proxy_pins_commands_key_and_refuses_what_it_cannot_verify() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);

    // A pinned key Command does not publish (RFC 8032's first test key): no start.
    let wrong = dir.path().join("wrong.key");
    std::fs::write(&wrong, "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\n").unwrap();
    let output = Command::new(ENIGM)
        .args(["proxy", "--listen", "127.0.0.1:0", "--command", &server.url])
        .arg("--credential-key")
        .arg(&wrong)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("another proxy-credential key"), "{stderr}");

    // The key Command publishes, pinned: the proxy serves.
    let published: serde_json::Value =
        http_get(&format!("{}/api/v1/proxy/credential-key", server.url));
    let pinned = dir.path().join("command.key");
    std::fs::write(&pinned, published["key"].as_str().unwrap()).unwrap();
    let proxy = Proxy::start(
        "127.0.0.1:0",
        &server.url,
        &["--credential-key", pinned.to_str().unwrap()],
    );

    let answer = exchange(&proxy.address, "CONNECT example.com:443 HTTP/1.1\r\n\r\n");
    assert!(
        answer.starts_with("HTTP/1.1 407 Proxy Authentication Required\r\n")
            && answer.contains("Proxy-Authenticate: Enigm\r\n")
            && answer.ends_with("missing-authorization"),
        "{answer}"
    );
    let answer = exchange(
        &proxy.address,
        "CONNECT example.com:443 HTTP/1.1\r\nProxy-Authorization: Basic dXNlcjpwdw==\r\n\r\n",
    );
    assert!(
        answer.starts_with("HTTP/1.1 407 ") && answer.ends_with("malformed"),
        "{answer}"
    );
    let answer = exchange(&proxy.address, "not http at all\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
}

/// A GET with the standard library only (the CLI's tests do not link an HTTP client).
fn http_get(url: &str) -> serde_json::Value {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    serde_json::from_str(body).unwrap()
}
