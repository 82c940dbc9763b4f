//! The device agent end to end, with real processes on loopback (SQLite and PostgreSQL): `enigm up`, an
//! enrollment token created with the CLI, `enigm agent --once` with the three shipped profiles,
//! the three trust states in `enigm tsc` and in `enigm admin devices`, a second check-in under
//! the same handle, no hardware identifier anywhere (server log, database, CLI output), and a
//! revocation that refuses the next check-in.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use enigm_test_support::{Backend, TestDatabase, backend_tests};
use enigm_types::DeviceHandle;
use serde_json::Value;

use crate::support::{ENIGM, Owner, Server, log_path, output_text, write_secret};

fn profiles() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/profiles")
}

/// Everything the CLI printed during the test, searched for hardware identifiers at the end.
#[derive(Default)]
struct Transcript(Vec<u8>);

impl Transcript {
    fn record(&mut self, output: &Output) {
        self.0.extend_from_slice(&output.stdout);
        self.0.extend_from_slice(&output.stderr);
    }
}

fn agent(server: &str, state_dir: &Path, args: &[&str]) -> Output {
    device_command("agent", server, state_dir, args)
}

/// `enigm <command> --server S --state-dir D <args>`, as on a device.
fn device_command(command: &str, server: &str, state_dir: &Path, args: &[&str]) -> Output {
    Command::new(ENIGM)
        .arg(command)
        .arg("--server")
        .arg(server)
        .arg("--state-dir")
        .arg(state_dir)
        .args(args)
        .env_remove("ENIGM_SERVER")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn tsc(state_dir: &Path) -> Output {
    Command::new(ENIGM)
        .arg("tsc")
        .arg("--state-dir")
        .arg(state_dir)
        .arg("--json")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn hardware_identifiers() -> Vec<String> {
    let mut values = Vec::new();
    for file in ["protected.toml", "review-required.toml", "inactive.toml"] {
        let text = std::fs::read_to_string(profiles().join(file)).unwrap();
        let profile: toml::Table = toml::from_str(&text).unwrap();
        let hardware = profile["hardware"].as_table().unwrap();
        for key in ["serial", "imei", "mac"] {
            values.push(hardware[key].as_str().unwrap().to_owned());
        }
    }
    values
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

backend_tests!(
    agents_enroll_check_in_show_their_states_and_stop_when_revoked,
    agent_setup_refuses_a_weak_pin_and_makes_the_device_ready,
);

fn agent_setup(server: &str, state_dir: &Path, args: &[&str]) -> Output {
    device_command("agent-setup", server, state_dir, args)
}

/// Setup baseline (§20 C.27) with real processes: a device whose profile declares no setup
/// enrolls but is not ready (every eligibility denied with `setup_incomplete`); `enigm
/// agent-setup` refuses a weak PIN and records nothing for it; with a strong PIN, the terms
/// and a reachable Command the next check-in makes the device ready, and eligible.
async fn agent_setup_refuses_a_weak_pin_and_makes_the_device_ready(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let database_args: Vec<&str> = match backend {
        Backend::Sqlite => vec![],
        Backend::Postgres => vec!["--database-url", db.url()],
    };
    let server = Server::start(&data_dir, &database_args);
    let owner_login = Owner::log_in(dir.path(), &data_dir, &server.url);
    let owner = &owner_login.cli;
    let created = owner.json(&[
        "admin",
        "enrollment-token",
        "create",
        "--group",
        "field-phones",
        "--pin-file",
        owner_login.pin.to_str().unwrap(),
    ]);
    let token_file = write_secret(
        &owner_login.secrets,
        "enrollment-token",
        created["token"].as_str().unwrap(),
    );
    // The protected profile without its `[setup]` table: a device fresh out of the box.
    let shipped = std::fs::read_to_string(profiles().join("protected.toml")).unwrap();
    let mut profile: toml::Table = toml::from_str(&shipped).unwrap();
    assert!(profile.remove("setup").is_some());
    let profile_path = dir.path().join("not-set-up.toml");
    std::fs::write(&profile_path, toml::to_string(&profile).unwrap()).unwrap();
    let profile_path = profile_path.to_str().unwrap();

    let state_dir = dir.path().join("agent");
    let enrolled = agent(
        &server.url,
        &state_dir,
        &[
            "--once",
            "--profile",
            profile_path,
            "--enrollment-token-file",
            token_file.to_str().unwrap(),
        ],
    );
    assert!(enrolled.status.success(), "{}", output_text(&enrolled));
    let shown = tsc(&state_dir);
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    let handle = shown["handle"].as_str().unwrap().to_owned();
    assert_eq!(shown["state"], "PROTECTED", "{shown}");
    let device = owner.json(&["admin", "devices", "show", &handle]);
    assert_eq!(
        device["setup"],
        serde_json::json!({"ready": false, "missing": ["strong-pin", "terms", "network-readiness"]}),
        "{device}"
    );
    let detail = owner.run(&["admin", "devices", "show", &handle]);
    assert!(
        output_text(&detail).contains("not ready: strong-pin, terms, network-readiness not done"),
        "{}",
        output_text(&detail)
    );
    let decided = owner.run(&["admin", "devices", "decide", &handle, "--action", "network"]);
    assert!(!decided.status.success());
    assert!(
        output_text(&decided).contains("deny: setup_incomplete"),
        "{}",
        output_text(&decided)
    );

    // A weak PIN is refused and nothing is recorded for it; the terms are recorded all the same.
    let weak = write_secret(&owner_login.secrets, "device-pin-weak", "123456");
    let refused = agent_setup(
        &server.url,
        &state_dir,
        &["--pin-file", weak.to_str().unwrap(), "--accept-terms"],
    );
    assert!(!refused.status.success());
    assert!(
        output_text(&refused).contains("the device PIN is weak"),
        "{}",
        output_text(&refused)
    );
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(state_dir.join("setup.json")).unwrap())
            .unwrap();
    assert_eq!(
        record["completed"],
        serde_json::json!(["terms"]),
        "{record}"
    );
    let mode = std::fs::metadata(state_dir.join("setup.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // A strong PIN and the network path to Command complete the setup.
    let strong = write_secret(&owner_login.secrets, "device-pin", "481516");
    let done = agent_setup(
        &server.url,
        &state_dir,
        &["--pin-file", strong.to_str().unwrap(), "--check-network"],
    );
    assert!(done.status.success(), "{}", output_text(&done));
    assert!(
        output_text(&done).contains("setup complete"),
        "{}",
        output_text(&done)
    );
    assert!(
        !output_text(&done).contains("481516"),
        "the PIN is never printed"
    );
    let checked_in = agent(
        &server.url,
        &state_dir,
        &["--once", "--profile", profile_path],
    );
    assert!(checked_in.status.success(), "{}", output_text(&checked_in));
    let device = owner.json(&["admin", "devices", "show", &handle]);
    assert_eq!(
        device["setup"],
        serde_json::json!({"ready": true, "missing": []}),
        "{device}"
    );
    let decided = owner.run(&["admin", "devices", "decide", &handle, "--action", "network"]);
    assert!(decided.status.success(), "{}", output_text(&decided));
    assert!(output_text(&decided).contains("allow"));
    // The PIN is in no file of the state directory.
    for entry in std::fs::read_dir(&state_dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        assert!(!contains(&bytes, "481516"));
    }
}

async fn agents_enroll_check_in_show_their_states_and_stop_when_revoked(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", data_dir.join("enigm.db").display()),
        Backend::Postgres => db.url().to_owned(),
    };
    let database_args: Vec<&str> = match backend {
        Backend::Sqlite => vec![],
        Backend::Postgres => vec!["--database-url", db.url()],
    };
    let server = Server::start(&data_dir, &database_args);
    let mut transcript = Transcript::default();

    let owner_login = Owner::log_in(dir.path(), &data_dir, &server.url);
    let owner = &owner_login.cli;
    let secrets = owner_login.secrets.clone();
    let pin_file = owner_login.pin.clone();

    // The owner creates one token for three devices; it is printed once.
    let created = owner.run(&[
        "admin",
        "enrollment-token",
        "create",
        "--group",
        "field-phones",
        "--uses",
        "3",
        "--pin-file",
        pin_file.to_str().unwrap(),
        "--json",
    ]);
    transcript.record(&created);
    assert!(created.status.success(), "{}", output_text(&created));
    let created: Value = serde_json::from_slice(&created.stdout).unwrap();
    assert_eq!(created["uses"], 3, "{created}");
    let token_file = write_secret(
        &secrets,
        "enrollment-token",
        created["token"].as_str().unwrap(),
    );

    // Without a token, a fresh agent cannot enroll and says how to.
    let no_token = agent(&server.url, &dir.path().join("agent-none"), &["--once"]);
    transcript.record(&no_token);
    assert!(!no_token.status.success());
    assert!(
        output_text(&no_token).contains("--enrollment-token-file"),
        "{}",
        output_text(&no_token)
    );

    let mut handles = Vec::new();
    for (file, state, summary) in [
        ("protected.toml", "PROTECTED", "device-protected"),
        ("review-required.toml", "REVIEW_REQUIRED", "device-at-risk"),
        ("inactive.toml", "INACTIVE", "protection-inactive"),
    ] {
        let state_dir = dir.path().join(format!("agent-{state}"));
        let profile = profiles().join(file);
        let output = agent(
            &server.url,
            &state_dir,
            &[
                "--once",
                "--profile",
                profile.to_str().unwrap(),
                "--enrollment-token-file",
                token_file.to_str().unwrap(),
            ],
        );
        transcript.record(&output);
        assert!(output.status.success(), "{file}: {}", output_text(&output));
        assert!(
            output_text(&output).contains("enrolled as dev_"),
            "{}",
            output_text(&output)
        );

        let mode = |path: PathBuf| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(state_dir.clone()), 0o700);
        assert_eq!(mode(state_dir.join("device.key")), 0o600);
        assert_eq!(mode(state_dir.join("enrollment.json")), 0o600);
        assert_eq!(mode(state_dir.join("tsc.json")), 0o600);

        let shown = tsc(&state_dir);
        transcript.record(&shown);
        assert!(shown.status.success(), "{}", output_text(&shown));
        let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
        assert_eq!(shown["state"], state, "{file}: {shown}");
        assert_eq!(shown["launcher_summary"], summary, "{file}: {shown}");
        let handle: DeviceHandle = shown["handle"].as_str().unwrap().parse().unwrap();
        if state != "PROTECTED" {
            assert!(!shown["findings"].as_array().unwrap().is_empty(), "{shown}");
        }
        // The human view too.
        let human = Command::new(ENIGM)
            .args(["tsc", "--state-dir"])
            .arg(&state_dir)
            .output()
            .unwrap();
        transcript.record(&human);
        assert!(
            output_text(&human).contains(&handle.to_string()),
            "{}",
            output_text(&human)
        );
        handles.push((handle, state, state_dir, profile));
    }

    // Command shows the three devices with those trust states.
    let listed = owner.run(&["admin", "devices", "list", "--json"]);
    transcript.record(&listed);
    assert!(listed.status.success(), "{}", output_text(&listed));
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let listed = listed["items"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    for (handle, state, _, _) in &handles {
        let device = listed
            .iter()
            .find(|device| device["handle"] == handle.to_string())
            .unwrap_or_else(|| panic!("{handle} is not listed"));
        assert_eq!(device["trust"]["state"], *state, "{device}");
        assert_eq!(device["group"], "field-phones");
    }
    let filtered = owner.json(&["admin", "devices", "list", "--trust-state", "inactive"]);
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1, "{filtered}");
    let table = owner.run(&["admin", "devices", "list"]);
    transcript.record(&table);
    assert!(
        output_text(&table).contains("REVIEW_REQUIRED"),
        "{}",
        output_text(&table)
    );
    let (review_handle, _, _, _) = &handles[1];
    let detail = owner.run(&["admin", "devices", "show", &review_handle.to_string()]);
    transcript.record(&detail);
    assert!(detail.status.success(), "{}", output_text(&detail));
    assert!(
        output_text(&detail).contains("PRODUCTION GATE"),
        "{}",
        output_text(&detail)
    );
    // Each gate says why: the review-required profile's degraded disk encryption fails
    // platform configuration, named with its source.
    assert!(
        output_text(&detail).contains("degraded: disk-encryption ("),
        "{}",
        output_text(&detail)
    );

    // A second run checks in without enrolling again: same handle, no token needed.
    let (protected_handle, _, protected_dir, protected_profile) = &handles[0];
    let again = agent(
        &server.url,
        protected_dir,
        &["--once", "--profile", protected_profile.to_str().unwrap()],
    );
    transcript.record(&again);
    assert!(again.status.success(), "{}", output_text(&again));
    assert!(
        !output_text(&again).contains("enrolled as"),
        "{}",
        output_text(&again)
    );
    assert!(
        output_text(&again).contains(&format!("checked in as {protected_handle}")),
        "{}",
        output_text(&again)
    );

    // Revocation takes effect on the next check-in.
    let store = enigm_store::Store::connect(&database_url).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.set_device_state(protected_handle, enigm_types::DeviceState::Revoked)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    store.close().await;
    let refused = agent(
        &server.url,
        protected_dir,
        &["--once", "--profile", protected_profile.to_str().unwrap()],
    );
    transcript.record(&refused);
    assert!(!refused.status.success(), "{}", output_text(&refused));
    assert!(
        output_text(&refused).contains("device_revoked"),
        "{}",
        output_text(&refused)
    );

    // No hardware identifier anywhere: server log, database and its WAL, CLI output.
    drop(server);
    let mut places: Vec<(String, Vec<u8>)> = vec![("cli output".to_owned(), transcript.0)];
    for path in [
        log_path(&data_dir),
        data_dir.join("enigm.db"),
        data_dir.join("enigm.db-wal"),
    ] {
        if let Ok(bytes) = std::fs::read(&path) {
            places.push((path.display().to_string(), bytes));
        }
    }
    if backend == Backend::Postgres {
        let dump = dump_postgres(db.url()).await;
        // The dump does hold the devices: their handles are there.
        assert!(contains(&dump, &protected_handle.to_string()));
        places.push(("the PostgreSQL database".to_owned(), dump));
    }
    assert!(places.len() >= 3, "the log and the database exist");
    for value in hardware_identifiers() {
        for (place, bytes) in &places {
            assert!(!contains(bytes, &value), "`{value}` appears in {place}");
        }
    }
}

/// Every row of every table of the PostgreSQL database, as text.
async fn dump_postgres(url: &str) -> Vec<u8> {
    use sqlx::{Connection as _, Row as _};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query(
        "SELECT table_name::TEXT AS name FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|row| row.get::<String, _>("name"))
    .collect();
    assert!(tables.iter().any(|table| table == "devices"), "{tables:?}");
    let mut dump = Vec::new();
    for table in tables {
        let rows = sqlx::query(&format!(
            "SELECT row_to_json(t)::TEXT AS row FROM \"{table}\" t"
        ))
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for row in rows {
            dump.extend_from_slice(row.get::<String, _>("row").as_bytes());
        }
    }
    dump
}
