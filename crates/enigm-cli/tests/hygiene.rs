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

/// An offline `enigm audit verify --data-dir` beside a running `enigm up` leaves the server's
/// SQLite files alone: the server keeps its locks on the database for its whole life (it never
/// closes a descriptor of the file once SQLite has opened it), so the verifier, closing its
/// connections, never believes it is the database's last user and never checkpoints and deletes
/// the WAL under the server's readers (which answered "disk I/O error" before).
#[test]
fn an_offline_audit_verify_beside_a_running_server_leaves_its_wal_alone() {
    let scratch = tempfile::tempdir().unwrap();
    let data_dir = scratch.path().join("data");
    let server = Server::start(&data_dir, &[]);
    let owner = Owner::log_in(scratch.path(), &data_dir, &server.url);
    let key = std::fs::read_to_string(data_dir.join("keys/audit-log.pub")).unwrap();
    let wal = data_dir.join("enigm.db-wal");
    for round in 0..3 {
        assert!(wal.exists(), "round {round}: the server's WAL is there");
        let verified = Command::new(ENIGM)
            .args(["audit", "verify", "--data-dir"])
            .arg(&data_dir)
            .args(["--log-key", key.trim()])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(verified.status.success(), "{verified:?}");
        assert!(
            wal.exists(),
            "round {round}: the verifier deleted the running server's WAL"
        );
        // The server still reads and writes.
        owner.cli.ok(&["admin", "users", "list"]);
    }
    let log = std::fs::read_to_string(support::log_path(&data_dir)).unwrap();
    assert!(!log.contains("disk I/O error"), "{log}");
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

/// Enrolls one device (an agent run against `server`) and answers its handle.
fn enroll_a_device(owner: &Owner, scratch: &Path, server: &str) -> String {
    let created = owner.cli.json(&[
        "admin",
        "enrollment-token",
        "create",
        "--group",
        "pipes",
        "--pin-file",
        owner.pin.to_str().unwrap(),
    ]);
    let token = support::write_secret(
        &owner.secrets,
        "enrollment-token",
        created["token"].as_str().unwrap(),
    );
    let state = scratch.join("device");
    let output = Command::new(ENIGM)
        .args(["agent", "--once", "--server", server, "--state-dir"])
        .arg(&state)
        .arg("--enrollment-token-file")
        .arg(&token)
        .arg("--profile")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/profiles/protected.toml"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let enrollment: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("enrollment.json")).unwrap())
            .unwrap();
    enrollment["handle"].as_str().unwrap().to_owned()
}

#[test]
fn a_device_shown_into_a_closed_pipe_ends_quietly() {
    // `enigm admin devices show <h> | head -1` once exited 101 with "failed printing to stdout".
    let scratch = tempfile::tempdir().unwrap();
    let data_dir = scratch.path().join("data");
    let server = Server::start(&data_dir, &[]);
    let owner = Owner::log_in(scratch.path(), &data_dir, &server.url);
    let handle = enroll_a_device(&owner, scratch.path(), &server.url);
    let config = scratch.path().join("owner-config");
    for args in [
        &["admin", "devices", "show", handle.as_str()][..],
        &["admin", "devices", "show", handle.as_str(), "--json"][..],
        &["admin", "devices", "list"][..],
    ] {
        let mut with_server = args.to_vec();
        with_server.extend(["--server", server.url.as_str()]);
        let output = run_into_closed_pipe(&config, &with_server);
        assert_quiet_end(&output, &args.join(" "));
    }
    // The real pipeline, as a user types it: the first line arrives, nothing else is said.
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; \"$0\" admin devices show {handle} --server {} | head -1",
            server.url
        ))
        .arg(ENIGM)
        .env("ENIGM_CONFIG_DIR", &config)
        .env_remove("ENIGM_SERVER")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 1);
    assert!(matches!(output.status.code(), Some(0 | 1)), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    drop(owner);
    assert!(server.stop().success());
}

#[test]
fn completion_scripts_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let output = Command::new(ENIGM)
            .args(["completions", shell])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8(output.stdout).unwrap();
        for subcommand in ["up", "login", "admin", "audit", "simulate", "completions"] {
            assert!(script.contains(subcommand), "{shell}: {subcommand}");
        }
        // Nested subcommands too: `enigm admin devices show`.
        assert!(script.contains("devices"), "{shell}");
    }
    let bash = Command::new(ENIGM)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bash.stdout).contains("complete -F _enigm"));
    // A shell clap does not know is refused, naming the ones it does.
    let unknown = Command::new(ENIGM)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("bash"));
    let output = run_into_closed_pipe(Path::new("/nonexistent"), &["completions", "zsh"]);
    assert_quiet_end(&output, "completions zsh");
}

/// Runs `enigm up` (RUST_LOG=info) with a terminal as its stdout and stderr (`script` makes
/// the pseudo-terminal) until it logs that it listens; answers everything it wrote.
fn up_on_a_terminal(data_dir: &Path, no_color: Option<&str>) -> String {
    use std::io::{BufRead as _, BufReader};
    let mut command = Command::new("script");
    command
        .args(["-qefc"])
        .arg(format!(
            "exec {ENIGM} up --listen 127.0.0.1:0 --data-dir {}",
            data_dir.display()
        ))
        .arg("/dev/null")
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(value) = no_color {
        command.env("NO_COLOR", value);
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut written = String::new();
    loop {
        let line = receiver
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("enigm up logged that it listens in time");
        written.push_str(&line);
        written.push('\n');
        // The log line (after the printed "Enigm Command listening on …").
        if line.contains("listening") && line.contains("INFO") {
            break;
        }
    }
    // Ending `script` closes the terminal: `enigm up` is hung up on and stops.
    let _ = child.kill();
    let _ = child.wait();
    written
}

#[test]
fn the_server_log_is_coloured_only_on_a_terminal_without_no_color() {
    const ESC: char = '\u{1b}';
    let scratch = tempfile::tempdir().unwrap();

    // stderr redirected to a file (as `Server` does): plain text, even at debug level.
    let data_dir = scratch.path().join("data");
    let server = Server::start(&data_dir, &[]);
    let owner = Owner::log_in(scratch.path(), &data_dir, &server.url);
    drop(owner);
    assert!(server.stop().success());
    let log = std::fs::read_to_string(support::log_path(&data_dir)).unwrap();
    assert!(log.contains("listening"), "{log}");
    assert!(!log.contains(ESC), "{log}");

    // On a terminal the log is coloured...
    let coloured = up_on_a_terminal(&scratch.path().join("tty"), None);
    assert!(coloured.contains(ESC), "{coloured}");
    // ...unless NO_COLOR says otherwise; an empty NO_COLOR does not count (no-color.org).
    let plain = up_on_a_terminal(&scratch.path().join("tty-no-color"), Some("1"));
    assert!(!plain.contains(ESC), "{plain:?}");
    let empty = up_on_a_terminal(&scratch.path().join("tty-empty"), Some(""));
    assert!(empty.contains(ESC), "{empty:?}");
}
