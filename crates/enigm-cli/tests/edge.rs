//! Command's edge against the real binary over real sockets: slow clients under a lowered file
//! limit cannot starve `/healthz` from another address, incomplete requests are closed, the
//! connection caps answer 503, and every rejection made before or around the router (400, 404,
//! 405, 408, 413, 431, 503) is the API's JSON error.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::Value;
use support::Server;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

/// A generous bound for anything the server must do "eventually": never a timing assertion.
const EVENTUALLY: Duration = Duration::from_secs(60);
const SECOND_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn address(server: &Server) -> SocketAddr {
    server.url.strip_prefix("http://").unwrap().parse().unwrap()
}

async fn connect_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    socket.connect(to).await.unwrap()
}

/// An HTTP answer read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn parse(bytes: &[u8]) -> Option<Answer> {
        let split = bytes.windows(4).position(|window| window == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&bytes[..split]).to_lowercase();
        let status = head.split(' ').nth(1)?.parse().ok()?;
        Some(Answer {
            status,
            head,
            body: bytes[split + 4..].to_vec(),
        })
    }

    /// The body as the API's `{code, message}` error, checking its content type.
    fn error_code(&self) -> String {
        assert!(
            self.head.contains("content-type: application/json"),
            "{} is not JSON: {}",
            self.status,
            self.head
        );
        let body: Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("{} body is not JSON: {:?}", self.status, self.body));
        assert!(body["message"].is_string(), "{body}");
        body["code"].as_str().unwrap().to_owned()
    }
}

/// Sends `request` (which asks for `connection: close`) from `from` and reads the answer to
/// the end of the connection.
async fn exchange(from: IpAddr, to: SocketAddr, request: &[u8]) -> Answer {
    let mut stream = connect_from(from, to).await;
    stream.write_all(request).await.unwrap();
    read_answer(&mut stream).await
}

async fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut bytes = Vec::new();
    tokio::time::timeout(EVENTUALLY, stream.read_to_end(&mut bytes))
        .await
        .expect("the server answered and closed in time")
        .expect("the answer could be read");
    Answer::parse(&bytes)
        .unwrap_or_else(|| panic!("not an HTTP answer: {}", String::from_utf8_lossy(&bytes)))
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: enigm\r\nconnection: close\r\n\r\n").into_bytes()
}

async fn healthz_from(from: IpAddr, to: SocketAddr) -> Answer {
    exchange(from, to, &get("/healthz")).await
}

/// Opens `count` connections from `from` that each send the start of a request and never
/// finish it.
async fn slow_clients(from: IpAddr, to: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = connect_from(from, to).await;
        // A refused connection may already be closed: the write may fail, which is fine.
        let _ = stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: enigm\r\n")
            .await;
        streams.push(stream);
    }
    streams
}

/// Reads each connection until the server closes it; returns how many were first answered
/// 503 with the JSON error. Anything else than a 503 or a bare close fails the test.
async fn closed_by_server(streams: Vec<TcpStream>) -> usize {
    let mut refused = 0;
    for mut stream in streams {
        let mut bytes = Vec::new();
        let read = tokio::time::timeout(EVENTUALLY, stream.read_to_end(&mut bytes))
            .await
            .expect("the server closed a slow connection in time");
        // A reset is a close too.
        if read.is_err() && bytes.is_empty() {
            continue;
        }
        if bytes.is_empty() {
            continue;
        }
        let answer = Answer::parse(&bytes).expect("an HTTP answer");
        assert_eq!(answer.status, 503, "{answer:?}");
        assert_eq!(answer.error_code(), "unavailable");
        refused += 1;
    }
    refused
}

/// The log as text: the terminal colour sequences the log writer adds taken out.
fn without_colours(log: &str) -> String {
    let mut text = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // `ESC [ ... m`
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            text.push(c);
        }
    }
    text
}

/// 400 slow clients from one address under a file limit of 256 (Command derives 128
/// connections, 64 per address, from it): `/healthz` from another address still answers,
/// the flood beyond the per-address cap is answered 503, every slow connection is closed
/// after the header-read timeout, and the server is healthy afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_do_not_starve_healthz_from_another_address() {
    let scratch = tempfile::tempdir().unwrap();
    let data_dir = scratch.path().join("data");
    let server = Server::start_with_file_limit(&data_dir, &["--header-read-timeout", "2"], 256);
    let to = address(&server);

    let attack = slow_clients(ATTACKER, to, 400).await;
    let health = healthz_from(SECOND_CLIENT, to).await;
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(
        serde_json::from_slice::<Value>(&health.body).unwrap()["status"],
        "ok"
    );

    let refused = closed_by_server(attack).await;
    assert!(
        refused > 0,
        "no connection over the per-address cap was answered 503"
    );
    let after = healthz_from(ATTACKER, to).await;
    assert_eq!(after.status, 200, "{after:?}");
    let log = without_colours(&std::fs::read_to_string(support::log_path(&data_dir)).unwrap());
    // The caps came from the lowered file limit: 256 less 128 kept back, half per address.
    assert!(
        log.contains("max_connections=128 max_connections_per_ip=64"),
        "{log}"
    );
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(server.stop().success());
}

/// With the global cap reached (and no per-address cap in the way), another address is
/// answered 503 with the JSON error, not left hanging; once the connections holding the slots
/// are gone, it is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_answers_503_json_and_recovers() {
    let scratch = tempfile::tempdir().unwrap();
    let data_dir = scratch.path().join("data");
    let server = Server::start(
        &data_dir,
        &[
            "--max-connections",
            "20",
            "--max-connections-per-ip",
            "1000",
        ],
    );
    let to = address(&server);
    // Complete heads whose bodies never come: each holds its slot until the request deadline
    // (a minute by default), whatever the machine's speed.
    let mut holders = Vec::new();
    for _ in 0..20 {
        let mut stream = connect_from(ATTACKER, to).await;
        stream
            .write_all(
                b"POST /api/v1/auth/login HTTP/1.1\r\nhost: enigm\r\n\
                  content-type: application/json\r\ncontent-length: 100\r\n\r\n",
            )
            .await
            .unwrap();
        holders.push(stream);
    }
    let full = healthz_from(SECOND_CLIENT, to).await;
    assert_eq!(full.status, 503, "{full:?}");
    assert_eq!(full.error_code(), "unavailable");
    assert!(full.head.contains("retry-after: 1"), "{}", full.head);

    drop(holders);
    tokio::time::timeout(EVENTUALLY, async {
        while healthz_from(SECOND_CLIENT, to).await.status != 200 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the server serves again once the connections holding its slots are gone");
    assert!(server.stop().success());
}

/// Every rejection at the edge is `{code, message}` JSON: the router's 404 and 405, the body
/// limit's 413, the request deadline's 408, and hyper's own answers to a head it cannot parse
/// (431 too large, 400 not HTTP).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_edge_rejection_is_json() {
    let scratch = tempfile::tempdir().unwrap();
    let data_dir = scratch.path().join("data");
    let server = Server::start(&data_dir, &["--request-timeout", "2"]);
    let to = address(&server);
    let local = ATTACKER;

    let not_found = exchange(local, to, &get("/no/such/route")).await;
    assert_eq!(not_found.status, 404);
    assert_eq!(not_found.error_code(), "not_found");

    let wrong_method = exchange(
        local,
        to,
        b"DELETE /healthz HTTP/1.1\r\nhost: enigm\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.error_code(), "method_not_allowed");

    // A 1 MB header, as in the report: hyper refuses it before the router sees it.
    let mut oversized = b"GET /healthz HTTP/1.1\r\nhost: enigm\r\nx-big: ".to_vec();
    oversized.extend(std::iter::repeat_n(b'a', 1024 * 1024));
    oversized.extend(b"\r\nconnection: close\r\n\r\n");
    let too_large = exchange(local, to, &oversized).await;
    assert_eq!(too_large.status, 431);
    assert_eq!(too_large.error_code(), "headers_too_large");

    let garbage = exchange(local, to, b"NOT HTTP AT ALL\r\n\r\n").await;
    assert_eq!(garbage.status, 400);
    assert_eq!(garbage.error_code(), "malformed_request");

    // A body one byte over the limit (1 MiB).
    let body_len = 1024 * 1024 + 1;
    let mut big_body = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nhost: enigm\r\ncontent-type: application/json\r\n\
         content-length: {body_len}\r\nconnection: close\r\n\r\n"
    )
    .into_bytes();
    big_body.extend(std::iter::repeat_n(b' ', body_len));
    let payload = exchange(local, to, &big_body).await;
    assert_eq!(payload.status, 413);
    assert_eq!(payload.error_code(), "payload_too_large");

    // A body that never arrives in full: the request deadline answers.
    let mut stream = connect_from(local, to).await;
    stream
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nhost: enigm\r\ncontent-type: application/json\r\n\
              content-length: 100\r\n\r\n{\"user",
        )
        .await
        .unwrap();
    let timed_out = read_answer(&mut stream).await;
    assert_eq!(timed_out.status, 408);
    assert_eq!(timed_out.error_code(), "request_timeout");

    // 503 has its own tests above; the server is still healthy after all of this.
    assert_eq!(healthz_from(local, to).await.status, 200);
    assert!(server.stop().success());
}

/// A PIN or token put in a query string never reaches the log, even at debug level, while the
/// request itself is traced (by its path).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_strings_are_not_logged() {
    let scratch = tempfile::tempdir().unwrap();
    let data_dir = scratch.path().join("data");
    let server = Server::start(&data_dir, &[]);
    let to = address(&server);
    let secret = "480275193746";
    let answer = exchange(
        ATTACKER,
        to,
        &get(&format!("/api/v1/audit/events?pin={secret}&limit=5")),
    )
    .await;
    assert_eq!(answer.status, 401);
    let answer = exchange(ATTACKER, to, &get(&format!("/healthz?token={secret}"))).await;
    assert_eq!(answer.status, 200);
    assert!(server.stop().success());
    let log = std::fs::read_to_string(support::log_path(&data_dir)).unwrap();
    assert!(
        log.contains("/api/v1/audit/events"),
        "the request was not traced: {log}"
    );
    assert!(
        !log.contains(secret),
        "a query string reached the log: {log}"
    );
}
