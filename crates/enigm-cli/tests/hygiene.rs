//! Process hygiene of the real binary: Command's files are private (data directory 0700,
//! SQLite database, WAL and shared-memory files 0600, also outside the data directory), and the
//! client treats a closed stdout as the end of its output instead of panicking.

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

use support::{ENIGM, Owner, Server};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn companions(database: &Path) -> [std::path::PathBuf; 3] {
    let name = database.to_str().unwrap();
    [
        database.to_path_buf(),
        format!("{name}-wal").into(),
        format!("{name}-shm").into(),
    ]
}

#[test]
fn the_data_directory_and_database_files_are_private() {
    let scratch = tempfile::tempdir().unwrap();
    let data_dir = scratch.path().join("data");
    let server = Server::start(&data_dir, &[]);
    assert_eq!(mode(&data_dir), 0o700);
    // The bootstrap wrote to the database: WAL and shared memory exist while it runs.
    for file in companions(&data_dir.join("enigm.db")) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    assert!(server.stop().success());
}

#[test]
fn a_sqlite_database_outside_the_data_directory_is_private_too() {
    let scratch = tempfile::tempdir().unwrap();
    // A directory everyone may read, holding a database file left world-readable.
    let shared = scratch.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    let database = shared.join("command.db");
    std::fs::write(&database, b"").unwrap();
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).unwrap();
    let url = format!("sqlite://{}?mode=rwc", database.display());
    let server = Server::start(
        &scratch.path().join("data"),
        &["--database-url", url.as_str()],
    );
    for file in companions(&database) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    assert!(server.stop().success());
}

#[test]
fn a_data_directory_open_to_others_is_refused_with_the_fix() {
    let scratch = tempfile::tempdir().unwrap();
    let data_dir = scratch.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = Command::new(ENIGM)
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("chmod 700 {}", data_dir.display())),
        "{stderr}"
    );
    // Nothing was created in it.
    assert_eq!(std::fs::read_dir(&data_dir).unwrap().count(), 0);
}

/// Runs `enigm ARGS` with its stdout a pipe whose reading end is already closed, as
/// `enigm … | head` leaves it once `head` has what it needs.
fn run_into_closed_pipe(config: &Path, args: &[&str]) -> std::process::Output {
    let mut child = Command::new(ENIGM)
        .args(args)
        .env("ENIGM_CONFIG_DIR", config)
        .env_remove("ENIGM_TOKEN")
        .env_remove("ENIGM_SERVER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

fn assert_quiet_end(output: &std::process::Output, what: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{what}: {:?} {stderr}",
        output.status
    );
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert!(!stderr.contains("Broken pipe"), "{what}: {stderr}");
}

#[test]
fn a_closed_stdout_ends_the_output_quietly() {
    let scratch = tempfile::tempdir().unwrap();
    let data_dir = scratch.path().join("data");
    let server = Server::start(&data_dir, &[]);
    let owner = Owner::log_in(scratch.path(), &data_dir, &server.url);
    let config = scratch.path().join("owner-config");
    for args in [
        &["admin", "users", "list"][..],
        &["admin", "users", "list", "--json"][..],
        &["audit", "events"][..],
    ] {
        let mut with_server = args.to_vec();
        with_server.extend(["--server", server.url.as_str()]);
        let output = run_into_closed_pipe(&config, &with_server);
        assert_quiet_end(&output, &args.join(" "));
    }
    drop(owner);
    assert!(server.stop().success());
    let output = run_into_closed_pipe(
        &config,
        &["audit", "verify", "--data-dir", data_dir.to_str().unwrap()],
    );
    assert_quiet_end(&output, "audit verify");
}
