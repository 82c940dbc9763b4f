//! Two `enigm up` processes on one PostgreSQL database behave as one Command.
//!
//! The second process is given the first one's keys (a copy of its `keys/` directory), as an
//! operator gives replicas the deployment's keys. Then:
//!
//! - an agent goes through a small proxy that sends each request to the other process in turn,
//!   so the attestation challenge one process issues is answered (enrollment, attestation) at
//!   the other, and its check-ins land at both;
//! - wrong passwords alternate between the two: the shared count throttles after the sixth
//!   failure, although neither process saw more than five;
//! - the audit log's lease holder is killed (SIGKILL); the other process takes the sequencer
//!   over and signs checkpoints of a larger tree;
//! - `enigm audit verify` accepts the one log both wrote to.
//!
//! PostgreSQL only: SQLite is one process's database.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use enigm_api::paths;
use enigm_store::Store;
use enigm_test_support::{Backend, TestDatabase};
use serde_json::{Value, json};

use crate::support::{ENIGM, Owner, Server, agent_once, output_text, write_secret};

/// How long a hand-over may take before the test gives up: far beyond the lease's term
/// (5 s), so a slow machine never fails it.
const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_behave_as_one() {
    if enigm_test_support::postgres_skipped() {
        eprintln!(
            "SKIPPED (ENIGM_SKIP_POSTGRES=1): `two_processes_on_one_postgres_behave_as_one` \
             needs PostgreSQL"
        );
        return;
    }
    let db = TestDatabase::new(Backend::Postgres).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dev_root = dir.path().join("dev-root");
    let args = [
        "--database-url",
        db.url(),
        "--insecure-dev-attestation-root",
        dev_root.to_str().unwrap(),
    ];
    let a_dir = dir.path().join("a");
    let b_dir = dir.path().join("b");
    let a = Server::start(&a_dir, &args);
    copy_keys(&a_dir.join("keys"), &b_dir.join("keys"));
    let b = Server::start(&b_dir, &args);
    let owner = Owner::log_in(dir.path(), &a_dir, &a.url);

    // One of them holds the audit log's lease (the first, which started alone, unless it
    // stalled for seconds).
    let store = Store::connect(db.url()).await.unwrap();
    let holder = store.lease("audit-log").await.unwrap().unwrap().holder;
    assert!(
        holds(&holder, &a) || holds(&holder, &b),
        "lease holder {holder}"
    );

    // An agent whose every request goes to the other process than the one before.
    let proxy = Proxy::start(vec![address(&a.url), address(&b.url)]);
    let policy = dir.path().join("attestation-policy.json");
    std::fs::write(&policy, r#"{"required_for": {"enrollment": true}}"#).unwrap();
    let created = owner.cli.json(&[
        "admin",
        "enrollment-token",
        "create",
        "--group",
        "replicas",
        "--attestation-policy-file",
        policy.to_str().unwrap(),
        "--pin-file",
        owner.pin.to_str().unwrap(),
    ]);
    let token = write_secret(
        &owner.secrets,
        "enrollment-token",
        created["token"].as_str().unwrap(),
    );
    let state = dir.path().join("agent");
    let dev_root_arg = [
        "--insecure-dev-attestation-root",
        dev_root.to_str().unwrap(),
    ];
    let enrolled = agent_once(
        &proxy.url,
        &state,
        &[
            &["--enrollment-token-file", token.to_str().unwrap()][..],
            &dev_root_arg[..],
        ]
        .concat(),
    );
    assert!(enrolled.status.success(), "{}", output_text(&enrolled));
    proxy.assert_answered_elsewhere(paths::DEVICE_ATTESTATION_CHALLENGE, paths::DEVICE_ENROLL);
    // The next run attests at its first cycle: a challenge and its answer, again split.
    let attested = agent_once(&proxy.url, &state, &dev_root_arg);
    assert!(attested.status.success(), "{}", output_text(&attested));
    assert!(
        output_text(&attested).contains("attested: accepted"),
        "{}",
        output_text(&attested)
    );
    proxy.assert_answered_elsewhere(
        paths::DEVICE_ATTESTATION_CHALLENGE,
        paths::DEVICE_ATTESTATION,
    );
    // Each run makes the same requests, so its check-in falls on the same turn: shift the turn
    // by one and run again until both processes have stored check-ins.
    for _ in 0..4 {
        let check_ins = proxy.backends_of(paths::DEVICE_CHECK_INS);
        if check_ins.contains(&0) && check_ins.contains(&1) {
            break;
        }
        proxy.skip_turn();
        let checked_in = agent_once(&proxy.url, &state, &[]);
        assert!(checked_in.status.success(), "{}", output_text(&checked_in));
    }
    let check_ins = proxy.backends_of(paths::DEVICE_CHECK_INS);
    assert!(
        check_ins.contains(&0) && check_ins.contains(&1),
        "check-ins reached {check_ins:?}"
    );
    let enrollment: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("enrollment.json")).unwrap())
            .unwrap();
    let handle = enrollment["handle"].as_str().unwrap();
    let device = owner.cli.json(&["admin", "devices", "show", handle]);
    assert_eq!(device["attestation"]["verdict"], "accepted", "{device}");

    // Password guesses alternate between the processes. Each sees at most five failures, which
    // alone would never throttle; together they are more than the five free ones.
    let servers = [a.url.clone(), b.url.clone()];
    for attempt in 0..6 {
        let (status, body) = wrong_password(&servers[attempt % 2], attempt);
        assert_eq!(status, 401, "attempt {attempt}: {body}");
    }
    // The sixth failure started a back-off of 2 s, the next ones 4, 8, 16 s: one of the next
    // guesses lands inside a back-off however slow this machine is.
    let throttled = (6..10).find(|&attempt| {
        let (status, body) = wrong_password(&servers[attempt % 2], attempt);
        assert!(status == 401 || status == 429, "attempt {attempt}: {body}");
        status == 429
    });
    assert!(
        throttled.is_some(),
        "ten failures spread over two processes were never throttled"
    );

    // Killing the lease holder hands the sequencer to the other process.
    let before = store
        .latest_audit_checkpoint()
        .await
        .unwrap()
        .map_or(0, |checkpoint| checkpoint.tree_size);
    let holder = store.lease("audit-log").await.unwrap().unwrap().holder;
    let mut processes = vec![a, b];
    let dead = processes
        .iter()
        .position(|server| holds(&holder, server))
        .unwrap_or_else(|| panic!("lease holder {holder} is neither process"));
    let mut killed = processes.swap_remove(dead);
    let survivor = processes.pop().unwrap();
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();
    // An event after the kill, which only a new sequencer can fold in.
    let (status, body) = wrong_password(&survivor.url, 10);
    assert!(status == 401 || status == 429, "{body}");
    let leaves = store.audit_leaf_count().await.unwrap();
    assert!(leaves > before);
    let started = Instant::now();
    loop {
        let lease = store.lease("audit-log").await.unwrap().unwrap();
        let latest = store.latest_audit_checkpoint().await.unwrap();
        if holds(&lease.holder, &survivor)
            && latest.is_some_and(|checkpoint| checkpoint.tree_size >= leaves)
        {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the sequencer did not move to the surviving process: lease {lease:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Everything both processes wrote is one log that verifies.
    survivor.stop();
    store.close().await;
    let verified = Command::new(ENIGM)
        .args(["audit", "verify", "--database-url", db.url(), "--data-dir"])
        .arg(&a_dir)
        .arg("--json")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(verified.status.success(), "{}", output_text(&verified));
    let report: Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert!(
        report["summary"]["tree_size"].as_u64().unwrap() >= leaves,
        "{report}"
    );
}

/// Whether the lease `holder` names `server`'s process (holders are `<pid>@<random>`).
fn holds(holder: &str, server: &Server) -> bool {
    holder.starts_with(&format!("{}@", server.child.id()))
}

/// Copies a key directory, keeping its modes (the server refuses keys others can read).
fn copy_keys(from: &Path, to: &Path) {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(to)
        .unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        assert!(entry.file_type().unwrap().is_file(), "{entry:?}");
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn address(url: &str) -> SocketAddr {
    url.strip_prefix("http://").unwrap().parse().unwrap()
}

/// A login of the bootstrap owner with a wrong password: the status and the body.
fn wrong_password(server: &str, attempt: usize) -> (u16, String) {
    let body = json!({"username": "admin", "password": format!("wrong-guess-{attempt}")});
    let body = serde_json::to_vec(&body).unwrap();
    let mut stream = TcpStream::connect(address(server)).unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        paths::LOGIN,
        address(server),
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"));
    (status, response)
}

/// A round-robin HTTP/1.1 proxy: each request goes, on a connection of its own
/// (`connection: close`), to the backend after the one the previous request went to. It
/// records which backend served which request line.
struct Proxy {
    url: String,
    served: Arc<Mutex<Vec<(String, usize)>>>,
    next: Arc<AtomicUsize>,
}

impl Proxy {
    fn start(backends: Vec<SocketAddr>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = Arc::new(Mutex::new(Vec::new()));
        let next = Arc::new(AtomicUsize::new(0));
        let log = served.clone();
        let turn = next.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let backend = turn.fetch_add(1, Ordering::SeqCst) % backends.len();
                let target = backends[backend];
                let log = log.clone();
                std::thread::spawn(move || forward(client, target, backend, &log));
            }
        });
        Proxy { url, served, next }
    }

    /// The next request goes where the one after it would have gone.
    fn skip_turn(&self) {
        self.next.fetch_add(1, Ordering::SeqCst);
    }

    /// Which backends served requests to `path`.
    fn backends_of(&self, path: &str) -> Vec<usize> {
        self.served
            .lock()
            .unwrap()
            .iter()
            .filter(|(line, _)| request_path(line) == path)
            .map(|(_, backend)| *backend)
            .collect()
    }

    /// The last request to `challenge` was followed by one to `answer`, served by the other
    /// backend.
    fn assert_answered_elsewhere(&self, challenge: &str, answer: &str) {
        let served = self.served.lock().unwrap().clone();
        let position = served
            .iter()
            .rposition(|(line, _)| request_path(line) == challenge)
            .unwrap_or_else(|| panic!("no challenge in {served:?}"));
        let (next, answered_by) = &served[position + 1];
        assert_eq!(request_path(next), answer, "{served:?}");
        assert_ne!(served[position].1, *answered_by, "{served:?}");
    }
}

/// The path of a request line (`POST /path HTTP/1.1`).
fn request_path(line: &str) -> &str {
    line.split(' ').nth(1).unwrap_or("")
}

/// Forwards one request (the connection is closed after it) and its response.
fn forward(
    client: TcpStream,
    target: SocketAddr,
    backend: usize,
    log: &Mutex<Vec<(String, usize)>>,
) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut head = request_line.clone();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
        if !lower.starts_with("connection:") {
            head.push_str(&line);
        }
    }
    head.push_str("connection: close\r\n\r\n");
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).unwrap();
    // Recorded before it is forwarded: the next request cannot start before this one's answer.
    log.lock()
        .unwrap()
        .push((request_line.trim_end().to_owned(), backend));
    let Ok(mut upstream) = TcpStream::connect(target) else {
        return;
    };
    upstream.write_all(head.as_bytes()).unwrap();
    upstream.write_all(&body).unwrap();
    let mut client = client;
    let _ = std::io::copy(&mut upstream, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Both);
}
