//! One deployment, one set of keys, with the real `enigm` binary: a second `enigm up` on the
//! same PostgreSQL database with keys of its own (none, or a different one) refuses to start and
//! says how to share the keys, and starts once `--keys-dir` names the deployment's; a second
//! `enigm up` on one SQLite database is refused; the audit-log key on a SoftHSM2 token signs
//! checkpoints that `enigm audit verify` accepts and is found again at the next start; moving
//! the OTA online keys onto a token needs `--rebind-ota-online-keys`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use enigm_test_support::softhsm::SoftHsmToken;
use enigm_test_support::{Backend, TestDatabase, postgres_skipped};

use crate::support::{ENIGM, Owner, Server, write_secret};

/// Runs `enigm up` expecting it to refuse to start; returns what it printed.
fn up_refused(data_dir: &Path, extra: &[&str]) -> String {
    let mut child = Command::new(ENIGM)
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "`enigm up` started when it should have refused: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "{printed}");
    assert!(
        !printed.contains("listening on"),
        "refused before listening: {printed}"
    );
    printed
}

/// Asks the server for `/healthz` and expects 200 (plain HTTP on loopback).
fn healthy(server: &Server) {
    use std::io::{Read as _, Write as _};
    let address = server.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

/// Stops `server` once it answers (its SIGTERM handler is installed by then) and asserts a
/// clean exit, showing its log otherwise.
fn stopped(server: Server, data_dir: &Path) {
    healthy(&server);
    let status = server.stop();
    let log = std::fs::read_to_string(crate::support::log_path(data_dir)).unwrap_or_default();
    assert!(status.success(), "{status}: {log}");
}

fn copy_keys(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700)).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_with_other_keys_is_refused_and_one_with_the_deployments_keys_starts() {
    if postgres_skipped() {
        eprintln!("SKIPPED (ENIGM_SKIP_POSTGRES=1): a replica test did not run");
        return;
    }
    let db = TestDatabase::new(Backend::Postgres).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first_dir = dir.path().join("first");
    let database = ["--database-url", db.url()];
    let first = Server::start(&first_dir, &database);
    let first_keys = first_dir.join("keys");

    // A second process with a fresh data directory has none of the deployment's keys: it
    // refuses before making any, naming the key and how to share them.
    let fresh = dir.path().join("fresh");
    let refused = up_refused(&fresh, &database);
    assert!(refused.contains("sealing key"), "{refused}");
    assert!(refused.contains("--keys-dir"), "{refused}");
    assert!(
        !fresh.join("keys/sealing.key").exists() && !fresh.join("keys/audit-log.key").exists(),
        "no key was made"
    );

    // Its own keys, one of which differs: refused, naming that key.
    let other_keys = dir.path().join("other-keys");
    copy_keys(&first_keys, &other_keys);
    // The copy keeps mode 0600; only the content changes.
    std::fs::write(other_keys.join("device-handle.key"), [7u8; 32]).unwrap();
    let refused = up_refused(
        &dir.path().join("other"),
        &[&database[..], &["--keys-dir", other_keys.to_str().unwrap()]].concat(),
    );
    assert!(refused.contains("device-handle key differs"), "{refused}");
    assert!(!refused.contains("sealing"), "{refused}");
    assert!(refused.contains("--keys-dir"), "{refused}");

    // The deployment's key directory: the replica starts, makes no key of its own, and names
    // the audit log as the first process does.
    let replica_dir = dir.path().join("replica");
    let replica = Server::start(
        &replica_dir,
        &[&database[..], &["--keys-dir", first_keys.to_str().unwrap()]].concat(),
    );
    let health = reqwest::get(format!("{}/healthz", replica.url))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(!replica_dir.join("keys/sealing.key").exists());
    assert_eq!(
        std::fs::read_to_string(replica_dir.join("keys/audit-log.pub")).unwrap(),
        std::fs::read_to_string(first_keys.join("audit-log.pub")).unwrap()
    );
    stopped(replica, &replica_dir);
    stopped(first, &first_dir);

    // A key directory other users can read is refused.
    std::fs::set_permissions(&other_keys, std::fs::Permissions::from_mode(0o755)).unwrap();
    let refused = up_refused(
        &dir.path().join("open"),
        &[&database[..], &["--keys-dir", other_keys.to_str().unwrap()]].concat(),
    );
    assert!(refused.contains("chmod 700"), "{refused}");
}

#[test]
fn a_second_process_on_one_sqlite_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let first = Server::start(&data_dir, &[]);
    let refused = up_refused(&data_dir, &[]);
    assert!(
        refused.contains("another `enigm up` is running on the SQLite database"),
        "{refused}"
    );
    assert!(refused.contains("PostgreSQL"), "{refused}");
    // The lock goes with the process: the next start works.
    stopped(first, &data_dir);
    let again = Server::start(&data_dir, &[]);
    stopped(again, &data_dir);
}

fn token_args(token: &SoftHsmToken, pin_file: &Path) -> Vec<String> {
    vec![
        "--ota-pkcs11-module".to_owned(),
        token.module.to_str().unwrap().to_owned(),
        "--ota-token-label".to_owned(),
        token.label.clone(),
        "--ota-token-pin-file".to_owned(),
        pin_file.to_str().unwrap().to_owned(),
    ]
}

fn verified(owner: &Owner, key: &str) {
    // The sequencer publishes a checkpoint every half second.
    std::thread::sleep(Duration::from_millis(1100));
    let output = owner.cli.run(&["audit", "verify", "--log-key", key]);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{printed}");
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("audit log verified\n"),
        "{printed}"
    );
}

#[test]
fn the_audit_log_key_on_a_token_signs_verifiable_checkpoints_across_restarts() {
    let Some(token) = SoftHsmToken::create() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let pin_file = write_secret(dir.path(), "token-pin", &token.pin);
    let mut args = token_args(&token, &pin_file);
    args.push("--audit-key-on-token".to_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let server = Server::start(&data_dir, &args);
    assert!(!data_dir.join("keys/audit-log.key").exists(), "no key file");
    let key = std::fs::read_to_string(data_dir.join("keys/audit-log.pub"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(key.starts_with("enigm-command/audit/"), "{key}");
    let owner = Owner::log_in(dir.path(), &data_dir, &server.url);
    owner.cli.ok(&["audit", "events"]);
    verified(&owner, &key);
    stopped(server, &data_dir);

    // The next start finds the same key on the token, under the same name.
    let server = Server::start(&data_dir, &args);
    assert_eq!(
        std::fs::read_to_string(data_dir.join("keys/audit-log.pub"))
            .unwrap()
            .trim(),
        key
    );
    let owner_password = owner.password.clone();
    let owner = crate::support::Cli {
        server: server.url.clone(),
        ..owner.cli
    };
    owner.ok(&[
        "login",
        "--username",
        "admin",
        "--password-file",
        owner_password.to_str().unwrap(),
    ]);
    owner.ok(&["audit", "events"]);
    std::thread::sleep(Duration::from_millis(1100));
    let output = owner.run(&["audit", "verify", "--log-key", &key]);
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("audit log verified\n"),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    stopped(server, &data_dir);

    // Without the token the audit-log key is not made afresh as a file: refused.
    let refused = up_refused(&data_dir, &[]);
    assert!(refused.contains("audit-log key"), "{refused}");
    assert!(!data_dir.join("keys/audit-log.key").exists());
}

#[test]
fn moving_the_ota_online_keys_onto_a_token_needs_the_rebind_flag() {
    let Some(token) = SoftHsmToken::create() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let pin_file = write_secret(dir.path(), "token-pin", &token.pin);
    // First start: the OTA online keys are files.
    let server = Server::start(&data_dir, &[]);
    assert!(data_dir.join("keys/ota-timestamp.key").exists());
    stopped(server, &data_dir);

    // On the token without the flag: refused, and the flag is named.
    let args = token_args(&token, &pin_file);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let refused = up_refused(&data_dir, &args);
    assert!(refused.contains("ota-snapshot"), "{refused}");
    assert!(refused.contains("--rebind-ota-online-keys"), "{refused}");

    // With it: the token's keys become the deployment's, said loudly.
    let rebinding = [&args[..], &["--rebind-ota-online-keys"]].concat();
    let server = Server::start(&data_dir, &rebinding);
    stopped(server, &data_dir);
    let log = std::fs::read_to_string(crate::support::log_path(&data_dir)).unwrap();
    assert!(
        log.contains("the deployment's ota-snapshot key is now the one with fingerprint"),
        "{log}"
    );
    assert!(log.contains("ota-timestamp key is now"), "{log}");
    assert!(log.contains("ota-director key is now"), "{log}");

    // From now on the token's keys are the deployment's: they start without the flag, and the
    // files are what is refused.
    let server = Server::start(&data_dir, &args);
    stopped(server, &data_dir);
    let refused = up_refused(&data_dir, &[]);
    assert!(
        refused.contains("ota-snapshot, ota-timestamp, ota-director keys differ"),
        "{refused}"
    );
}
