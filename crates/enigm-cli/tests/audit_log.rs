//! The tamper-evident audit log end to end, with the real `enigm` binary: `enigm up` on loopback,
//! `enigm audit verify` offline (reading the database) and online (through the API against the
//! pinned log key).
//!
//! - Every way an attacker with write access to the database can change the log (a body, a
//!   leaf hash, an interior node, a checkpoint, a deleted or reordered row, a searchable
//!   column, a truncated tail) is caught offline, and the finding names the place.
//! - A server that serves a tampered log is caught online, and its checkpoint is not
//!   remembered.
//!
//! The log surviving `kill -9` under load is `audit_log_crash.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod audit_support;
mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use sqlx::{Connection as _, Row as _, SqliteConnection};

use crate::support::{Cli, ENIGM, Server, bootstrap_field, change_initial_password, write_secret};

use crate::audit_support::{assert_verified, text};

/// Runs `enigm` with `config` as its configuration directory and nothing from the caller's
/// environment that could pick a server or a token.
fn enigm(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(ENIGM)
        .args(args)
        .env("ENIGM_CONFIG_DIR", config)
        .env_remove("ENIGM_TOKEN")
        .env_remove("ENIGM_SERVER")
        .env_remove("ENIGM_DATA_DIR")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run enigm")
}

/// Asserts that verification failed and its output names every `expected` text.
fn assert_failed(output: &Output, expected: &[&str]) {
    let all = text(output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(
        all.contains("audit log verification FAILED"),
        "no failure banner: {all}"
    );
    for expected in expected {
        assert!(all.contains(expected), "`{expected}` not named in: {all}");
    }
}

/// An installation that ran: its data directory (server stopped), the log key, the owner's
/// configuration directory with the checkpoint remembered by an online verification, and the
/// owner's token.
struct Installation {
    _dir: tempfile::TempDir,
    root: PathBuf,
    data_dir: PathBuf,
    key: String,
    owner_config: PathBuf,
    remembered: PathBuf,
    remembered_size: u64,
    token: String,
}

impl Installation {
    /// Starts `enigm up`, performs audited actions (logins, a user creation, audit reads, an
    /// online verification), and stops it gracefully.
    fn create() -> Installation {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let data_dir = root.join("data");
        let server = Server::start_logging(&data_dir, &[], "warn");
        let bootstrap = std::fs::read_to_string(data_dir.join("bootstrap-admin.txt")).unwrap();
        let password = write_secret(&root, "password", &bootstrap_field(&bootstrap, "password"));
        let pin = write_secret(&root, "pin", &bootstrap_field(&bootstrap, "pin"));
        let owner = Cli {
            config: root.join("owner-config"),
            server: server.url.clone(),
            extra: vec![],
        };
        let initial = password.to_str().unwrap();
        owner.ok(&["login", "--username", "admin", "--password-file", initial]);
        let changed = change_initial_password(&owner, &password, Some(&pin));
        let password = changed.to_str().unwrap();
        owner.ok(&[
            "admin",
            "users",
            "create",
            "bob",
            "--password-file",
            password,
            "--pin-file",
            pin.to_str().unwrap(),
        ]);
        owner.ok(&["audit", "events"]);

        // The key, offline from the data directory and online from the server: the same.
        let key = owner
            .ok(&["audit", "key", "--data-dir", data_dir.to_str().unwrap()])
            .trim()
            .to_owned();
        assert!(key.starts_with("enigm-command/audit/"), "{key}");
        let remote = owner.run(&["audit", "key", "--remote"]);
        assert!(remote.status.success(), "{}", text(&remote));
        assert_eq!(String::from_utf8_lossy(&remote.stdout).trim(), key);
        assert!(
            String::from_utf8_lossy(&remote.stderr).contains("compare it out of band"),
            "{}",
            text(&remote)
        );

        // Legal hold: shown, then set with the PIN (and refused without one).
        assert!(
            owner
                .ok(&["audit", "legal-hold"])
                .contains("legal hold: off")
        );
        assert!(!owner.run(&["audit", "legal-hold", "on"]).status.success());
        let held = owner.json(&[
            "audit",
            "legal-hold",
            "on",
            "--pin-file",
            pin.to_str().unwrap(),
        ]);
        assert_eq!(held["legal_hold"], true, "{held}");
        assert_eq!(held["retention_days"], 30, "{held}");

        // Online verification once the sequencer has folded all of that in: the checkpoint it
        // verified is remembered, privately.
        std::thread::sleep(Duration::from_millis(1100));
        let online = owner.run(&["audit", "verify", "--log-key", &key]);
        assert_verified(&online);
        assert!(
            text(&online).contains("no earlier checkpoint to compare"),
            "{}",
            text(&online)
        );
        let remembered = single_file(&owner.config.join("audit-checkpoints"));
        let mode = std::fs::metadata(&remembered).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let remembered_size = checkpoint_size(&remembered);
        assert!(remembered_size >= 8, "remembered size {remembered_size}");

        // More history after the remembered checkpoint.
        let bob = Cli {
            config: root.join("bob-config"),
            server: server.url.clone(),
            extra: vec![],
        };
        bob.ok(&["login", "--username", "bob", "--password-file", password]);
        change_initial_password(&bob, Path::new(password), None);
        owner.ok(&["admin", "users", "list"]);
        owner.ok(&["audit", "events", "--action", "auth.login"]);
        let credentials: Value = serde_json::from_str(
            &std::fs::read_to_string(owner.config.join("credentials.json")).unwrap(),
        )
        .unwrap();
        let token = credentials["token"].as_str().unwrap().to_owned();
        // The server folds in the last leaves and signs a checkpoint of them as it stops.
        assert!(server.stop().success());
        Installation {
            _dir: dir,
            owner_config: owner.config,
            root,
            data_dir,
            key,
            remembered,
            remembered_size,
            token,
        }
    }

    /// A copy of the data directory at `<root>/<name>`, with `tamper` applied to its database.
    async fn tampered_copy(&self, name: &str, tamper: &Tamper) -> PathBuf {
        let copy = self.root.join(name);
        checkpoint_wal(&self.data_dir.join("enigm.db")).await;
        copy_dir(&self.data_dir, &copy);
        let mut conn = open_sqlite(&copy.join("enigm.db")).await;
        tamper.apply(&mut conn).await;
        conn.close().await.unwrap();
        copy
    }

    fn verify_offline(&self, data_dir: &Path, extra: &[&str]) -> Output {
        let args = [
            &[
                "audit",
                "verify",
                "--data-dir",
                data_dir.to_str().unwrap(),
                "--log-key",
                &self.key,
            ][..],
            extra,
        ]
        .concat();
        enigm(&self.root.join("verifier-config"), &args, &[])
    }
}

/// What an attacker with write access to the database does. Triggers refuse UPDATE and DELETE
/// on the log's tables, so each tampering drops them first, as such an attacker would.
#[derive(Debug, Clone, Copy)]
enum Tamper {
    /// Changes one byte of an event's body (its canonical JSON; still valid JSON).
    Body {
        leaf: i64,
    },
    /// Changes one byte of a stored leaf hash.
    LeafHash {
        leaf: i64,
    },
    /// Changes one byte of a stored interior node.
    Node {
        level: i64,
        index: i64,
    },
    /// Changes one character of the signature of the latest checkpoint's note.
    CheckpointSignature,
    /// Changes one byte of the latest checkpoint's root column.
    CheckpointRoot,
    DeleteEvent {
        leaf: i64,
    },
    DeleteNode {
        level: i64,
        index: i64,
    },
    /// Exchanges the bodies of two events: the log reordered.
    SwapBodies {
        first: i64,
        second: i64,
    },
    /// Changes an event's `actor` column, leaving its body alone.
    Actor {
        leaf: i64,
    },
    /// Changes a body and recomputes its leaf hash to match, leaving the nodes above alone.
    Rewrite {
        leaf: i64,
    },
    /// Cuts the log back to `size` leaves, consistently: events, nodes, checkpoints, counters.
    Truncate {
        size: i64,
    },
}

impl Tamper {
    async fn apply(self, conn: &mut SqliteConnection) {
        for trigger in [
            "audit_events_no_update",
            "audit_events_purge_only",
            "audit_tree_nodes_no_update",
            "audit_tree_nodes_no_delete",
            "audit_checkpoints_no_update",
            "audit_checkpoints_no_delete",
        ] {
            sqlx::raw_sql(&format!("DROP TRIGGER IF EXISTS {trigger}"))
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        match self {
            Tamper::Body { leaf } => {
                let body = altered_body(&body(conn, leaf).await);
                set_body(conn, leaf, &body).await;
            }
            Tamper::LeafHash { leaf } => flip_node(conn, 0, leaf).await,
            Tamper::Node { level, index } => flip_node(conn, level, index).await,
            Tamper::CheckpointSignature => {
                let row = sqlx::query(
                    "SELECT tree_size, note FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1",
                )
                .fetch_one(&mut *conn)
                .await
                .unwrap();
                let size: i64 = row.get("tree_size");
                let mut note: Vec<u8> = row.get::<String, _>("note").into_bytes();
                // Inside the base64 of the last line (key id and signature), before padding.
                let position = note.len() - 8;
                note[position] = if note[position] == b'A' { b'B' } else { b'A' };
                sqlx::query("UPDATE audit_checkpoints SET note = $1 WHERE tree_size = $2")
                    .bind(String::from_utf8(note).unwrap())
                    .bind(size)
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
            Tamper::CheckpointRoot => {
                let row = sqlx::query(
                    "SELECT tree_size, root FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1",
                )
                .fetch_one(&mut *conn)
                .await
                .unwrap();
                let size: i64 = row.get("tree_size");
                let mut root: Vec<u8> = row.get("root");
                root[0] ^= 1;
                sqlx::query("UPDATE audit_checkpoints SET root = $1 WHERE tree_size = $2")
                    .bind(root)
                    .bind(size)
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
            Tamper::DeleteEvent { leaf } => {
                sqlx::query("DELETE FROM audit_events WHERE leaf_index = $1")
                    .bind(leaf)
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
            Tamper::DeleteNode { level, index } => {
                sqlx::query("DELETE FROM audit_tree_nodes WHERE level = $1 AND idx = $2")
                    .bind(level)
                    .bind(index)
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
            Tamper::SwapBodies { first, second } => {
                let (a, b) = (body(conn, first).await, body(conn, second).await);
                set_body(conn, first, &b).await;
                set_body(conn, second, &a).await;
            }
            Tamper::Actor { leaf } => {
                sqlx::query(
                    "UPDATE audit_events SET actor = CASE WHEN actor = 'system' THEN 'anonymous' \
                     ELSE 'system' END WHERE leaf_index = $1",
                )
                .bind(leaf)
                .execute(&mut *conn)
                .await
                .unwrap();
            }
            Tamper::Rewrite { leaf } => {
                let body = altered_body(&body(conn, leaf).await);
                set_body(conn, leaf, &body).await;
                let hash = enigm_auditlog::leaf_hash(body.as_bytes());
                sqlx::query("UPDATE audit_tree_nodes SET hash = $1 WHERE level = 0 AND idx = $2")
                    .bind(hash.as_bytes().to_vec())
                    .bind(leaf)
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
            Tamper::Truncate { size } => {
                for statement in [
                    "DELETE FROM audit_events WHERE leaf_index >= $1",
                    // Keep only the complete subtrees within the first `size` leaves.
                    "DELETE FROM audit_tree_nodes WHERE ((idx + 1) << level) > $1",
                    "DELETE FROM audit_checkpoints WHERE tree_size > $1",
                    "UPDATE audit_tree_state SET tree_size = $1",
                    "UPDATE audit_leaf_counter SET next_leaf = $1",
                ] {
                    sqlx::query(statement)
                        .bind(size)
                        .execute(&mut *conn)
                        .await
                        .unwrap();
                }
            }
        }
    }
}

async fn body(conn: &mut SqliteConnection, leaf: i64) -> String {
    sqlx::query("SELECT canonical FROM audit_events WHERE leaf_index = $1")
        .bind(leaf)
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get("canonical")
}

async fn set_body(conn: &mut SqliteConnection, leaf: i64, body: &str) {
    let changed = sqlx::query("UPDATE audit_events SET canonical = $1 WHERE leaf_index = $2")
        .bind(body)
        .bind(leaf)
        .execute(&mut *conn)
        .await
        .unwrap();
    assert_eq!(changed.rows_affected(), 1);
}

/// The body with one hex digit of the event id changed: one byte, still a valid event.
fn altered_body(body: &str) -> String {
    let prefix = "{\"id\":\"";
    assert!(body.starts_with(prefix), "{body}");
    let mut bytes = body.as_bytes().to_vec();
    let position = prefix.len();
    bytes[position] = if bytes[position] == b'a' { b'b' } else { b'a' };
    String::from_utf8(bytes).unwrap()
}

async fn flip_node(conn: &mut SqliteConnection, level: i64, index: i64) {
    let mut hash: Vec<u8> =
        sqlx::query("SELECT hash FROM audit_tree_nodes WHERE level = $1 AND idx = $2")
            .bind(level)
            .bind(index)
            .fetch_one(&mut *conn)
            .await
            .unwrap()
            .get("hash");
    hash[7] ^= 0x10;
    sqlx::query("UPDATE audit_tree_nodes SET hash = $1 WHERE level = $2 AND idx = $3")
        .bind(hash)
        .bind(level)
        .bind(index)
        .execute(&mut *conn)
        .await
        .unwrap();
}

async fn open_sqlite(path: &Path) -> SqliteConnection {
    SqliteConnection::connect(&format!("sqlite://{}?mode=rw", path.display()))
        .await
        .unwrap()
}

/// Moves everything in the write-ahead log into the database file, so that copying the file
/// copies the whole database.
async fn checkpoint_wal(path: &Path) {
    let mut conn = open_sqlite(path).await;
    sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

/// Copies a directory tree as `cp -a` would, modes included (`enigm up` refuses a key
/// directory other users can open).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::set_permissions(to, std::fs::metadata(from).unwrap().permissions()).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn single_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

/// The tree size of a checkpoint note: its second line.
fn checkpoint_size(note: &Path) -> u64 {
    std::fs::read_to_string(note)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

fn json_output(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("not json: {}", text(output)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_verification_names_each_tampered_place() {
    let install = Installation::create();

    // The untouched log verifies, with the key pinned or read from the data directory.
    let clean = install.verify_offline(&install.data_dir, &["--json"]);
    assert!(clean.status.success(), "{}", text(&clean));
    let report = json_output(&clean);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["findings"], serde_json::json!([]));
    let size = report["summary"]["tree_size"].as_u64().unwrap();
    assert_eq!(report["summary"]["leaf_count"], size, "{report}");
    assert_eq!(report["summary"]["bodies_checked"], size, "{report}");
    assert_eq!(
        report["summary"]["latest_checkpoint"]["size"], size,
        "the server signed a checkpoint of every leaf as it stopped: {report}"
    );
    assert!(size > install.remembered_size);
    let unpinned = enigm(
        &install.owner_config,
        &[
            "audit",
            "verify",
            "--data-dir",
            install.data_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_verified(&unpinned);
    assert!(
        String::from_utf8_lossy(&unpinned.stderr).contains("pinning it with --log-key"),
        "{}",
        text(&unpinned)
    );
    let remembered = install.remembered.to_str().unwrap();
    assert_verified(
        &install.verify_offline(&install.data_dir, &["--trusted-checkpoint", remembered]),
    );

    // Each case names the place; "first finding" is asserted where the place is the earliest
    // in the log, so that the first line an operator reads points at it.
    let latest = format!("checkpoint at size {size}:");
    let cases: Vec<(&str, Tamper, Vec<&str>)> = vec![
        (
            "body",
            Tamper::Body { leaf: 3 },
            vec!["first finding: leaf 3: event body does not match its leaf hash"],
        ),
        (
            "leaf-hash",
            Tamper::LeafHash { leaf: 3 },
            vec![
                "leaf 3: event body does not match its leaf hash",
                "tree node (level 1, index 1) over leaves 2..4: does not match",
            ],
        ),
        (
            "interior-node",
            Tamper::Node { level: 1, index: 0 },
            vec!["tree node (level 1, index 0) over leaves 0..2: does not match"],
        ),
        (
            "checkpoint-signature",
            Tamper::CheckpointSignature,
            vec![&latest, "invalid signed note"],
        ),
        (
            "checkpoint-root",
            Tamper::CheckpointRoot,
            vec![&latest, "stored size or root differ from the signed note"],
        ),
        (
            "deleted-event",
            Tamper::DeleteEvent { leaf: 4 },
            vec!["first finding: leaf 4: event body missing without a recorded purge"],
        ),
        (
            "deleted-node",
            Tamper::DeleteNode { level: 1, index: 1 },
            vec!["tree node (level 1, index 1) over leaves 2..4: missing"],
        ),
        (
            "deleted-leaf-hash",
            Tamper::DeleteNode { level: 0, index: 5 },
            vec!["leaf 5: leaf hash missing"],
        ),
        (
            "reordered",
            Tamper::SwapBodies {
                first: 2,
                second: 5,
            },
            vec![
                "first finding: leaf 2: event body does not match its leaf hash",
                "leaf 5: event body does not match its leaf hash",
            ],
        ),
        (
            "actor-column",
            Tamper::Actor { leaf: 3 },
            vec!["first finding: leaf 3: searchable columns disagree with the event body"],
        ),
    ];
    for (name, tamper, expected) in &cases {
        let copy = install.tampered_copy(name, tamper).await;
        let output = install.verify_offline(&copy, &[]);
        eprintln!(
            "{name}: {}",
            text(&output).lines().nth(2).unwrap_or_default()
        );
        assert_failed(&output, expected);
    }

    // `--json` lists the findings as text.
    let copy = install.root.join("body");
    let report = json_output(&install.verify_offline(&copy, &["--json"]));
    assert_eq!(report["ok"], false);
    let findings: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| finding.as_str().unwrap())
        .collect();
    assert_eq!(
        findings.first(),
        Some(&"leaf 3: event body does not match its leaf hash"),
        "{report}"
    );
    assert!(findings.contains(&"leaf 3: searchable columns disagree with the event body"));

    // A log cut back consistently verifies on its own: only a checkpoint kept from before
    // shows that history was lost.
    let cut = install.remembered_size - 2;
    let truncated = install
        .tampered_copy(
            "truncated",
            &Tamper::Truncate {
                size: i64::try_from(cut).unwrap(),
            },
        )
        .await;
    let alone = install.verify_offline(&truncated, &["--json"]);
    assert!(alone.status.success(), "{}", text(&alone));
    assert_eq!(json_output(&alone)["summary"]["tree_size"], cut);
    assert_failed(
        &install.verify_offline(&truncated, &["--trusted-checkpoint", remembered]),
        &[&format!(
            "trusted checkpoint at size {}: the stored log does not extend it",
            install.remembered_size
        )],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_verification_catches_a_server_serving_a_tampered_log() {
    let install = Installation::create();
    let key = install.key.clone();
    let remembered = install.remembered.to_str().unwrap().to_owned();
    let cut = i64::try_from(install.remembered_size - 2).unwrap();
    let cases = [
        ("body", Tamper::Body { leaf: 3 }),
        ("rewrite", Tamper::Rewrite { leaf: 3 }),
        ("truncated", Tamper::Truncate { size: cut }),
    ];
    let mut servers = Vec::new();
    for (name, tamper) in cases {
        let copy = install.tampered_copy(name, &tamper).await;
        if name == "rewrite" {
            // Offline, the stored interior node above the rewritten leaf gives it away.
            assert_failed(
                &install.verify_offline(&copy, &[]),
                &["tree node (level 1, index 1) over leaves 2..4: does not match"],
            );
        }
        servers.push((name, Server::start_logging(&copy, &[], "warn")));
    }
    for (name, server) in &servers {
        let config = install.root.join(format!("{name}-config"));
        let mut args = vec![
            "audit",
            "verify",
            "--log-key",
            &key,
            "--server",
            &server.url,
        ];
        if *name == "truncated" {
            args.extend(["--trusted-checkpoint", &remembered]);
        }
        let output = enigm(&config, &args, &[("ENIGM_TOKEN", &install.token)]);
        eprintln!(
            "{name}: {}",
            text(&output).lines().nth(2).unwrap_or_default()
        );
        match *name {
            "body" => assert_failed(
                &output,
                &["first finding: leaf 3: event body does not match its leaf hash"],
            ),
            "rewrite" => {
                assert_failed(
                    &output,
                    &["the leaves served by the server do not match the signed checkpoint"],
                );
                assert!(!text(&output).contains("leaf 3:"), "{}", text(&output));
            }
            _ => {
                let all = text(&output);
                assert_failed(&output, &[&install.remembered_size.to_string(), "trusted"]);
                assert!(
                    all.contains("rolled back") || all.contains("not consistent"),
                    "{all}"
                );
            }
        }
        // Nothing that failed is remembered.
        assert!(
            !config.join("audit-checkpoints").exists()
                || std::fs::read_dir(config.join("audit-checkpoints"))
                    .unwrap()
                    .next()
                    .is_none(),
            "{name}: a checkpoint that failed verification was remembered"
        );
    }
}
