//! Listings and approvals from the operator's side, against a real `enigm up`: an approver sees
//! the release's version and digest; `audit key` asks the server it is logged in to from any
//! working directory; every list command's `--json` is the one envelope
//! `{"items": [...], "next_cursor": ...}`; `audit events --follow` and `approvals list
//! --follow` print what is recorded or opened while they run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use enigm_test_support::{Backend, TestDatabase, backend_tests};
use serde_json::Value;

use crate::support::{ENIGM, Owner, Server, write_secret};

backend_tests!(operators_see_what_they_approve_and_watch_the_log);

async fn operators_see_what_they_approve_and_watch_the_log(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let database_args: Vec<&str> = match backend {
        Backend::Sqlite => vec![],
        Backend::Postgres => vec!["--database-url", db.url()],
    };
    let server = Server::start(&data_dir, &database_args);
    let owner = Owner::log_in(dir.path(), &data_dir, &server.url);

    // A release waiting for its signing approval: `approvals show` names what is approved.
    let image_bytes = b"enigm os image for the approvals test";
    let image = dir.path().join("enigm-os.img");
    std::fs::write(&image, image_bytes).unwrap();
    let created = owner.cli.json(&[
        "release",
        "create",
        image.to_str().unwrap(),
        "--release-version",
        "2026.12.3",
        "--rollback-index",
        "3",
        "--model",
        "enigm-sim",
        "--justification",
        "december release",
    ]);
    let approval = created["approval"].as_str().unwrap().to_owned();
    let digest = hex::encode(enigm_crypto::sha256(image_bytes));
    let shown = owner.cli.ok(&["admin", "approvals", "show", &approval]);
    for expected in ["2026.12.3", digest.as_str(), "enigm-sim", "stable"] {
        assert!(shown.contains(expected), "`{expected}` not in:\n{shown}");
    }
    let listed = owner.cli.ok(&["admin", "approvals", "list"]);
    assert!(listed.contains("2026.12.3"), "{listed}");
    let subject = &owner.cli.json(&["admin", "approvals", "show", &approval])["subject"];
    assert_eq!(subject["details"]["sha256"], digest.as_str());

    // `audit key` from another working directory asks the server; it matches the key file
    // that `--data-dir` reads offline.
    let elsewhere = tempfile::tempdir().unwrap();
    let remote = Command::new(ENIGM)
        .args(["audit", "key", "--server", &server.url])
        .current_dir(elsewhere.path())
        .env("ENIGM_CONFIG_DIR", &owner.cli.config)
        .env_remove("ENIGM_DATA_DIR")
        .env_remove("ENIGM_TOKEN")
        .output()
        .unwrap();
    assert!(
        remote.status.success(),
        "{}",
        String::from_utf8_lossy(&remote.stderr)
    );
    let offline = owner
        .cli
        .ok(&["audit", "key", "--data-dir", data_dir.to_str().unwrap()]);
    let remote = String::from_utf8(remote.stdout).unwrap();
    assert!(remote.trim().contains('+'), "a verifier key: {remote}");
    assert_eq!(remote.trim(), offline.trim());

    // One envelope for every list command.
    let lists: &[&[&str]] = &[
        &["admin", "approvals", "list"],
        &["admin", "approvals", "list", "--since", "1h"],
        &["admin", "devices", "list"],
        &["admin", "devices", "list", "--by-handle", "--limit", "1"],
        &["admin", "users", "list"],
        &["admin", "sessions", "list"],
        &["admin", "approval-rules", "list"],
        &["admin", "routes"],
        &["audit", "events", "--limit", "2"],
        &["audit", "events", "--oldest-first", "--since", "10m"],
        &["release", "status"],
    ];
    for args in lists {
        let body = owner.cli.json(args);
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["items", "next_cursor"], "{args:?}: {body}");
        assert!(body["items"].is_array(), "{args:?}: {body}");
        assert!(
            body["next_cursor"].is_null() || body["next_cursor"].is_string(),
            "{args:?}: {body}"
        );
    }
    // Newest first by default, and the cursor pages on.
    let newest = owner.cli.json(&["audit", "events", "--limit", "2"]);
    let seqs: Vec<i64> = newest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["seq"].as_i64().unwrap())
        .collect();
    assert!(seqs[0] > seqs[1], "{seqs:?}");
    let cursor = newest["next_cursor"].as_str().unwrap().to_owned();
    let older = owner
        .cli
        .json(&["audit", "events", "--limit", "2", "--before", &cursor]);
    assert!(older["items"][0]["seq"].as_i64().unwrap() < seqs[1]);

    // `--follow` prints an event recorded while it runs.
    let mut follow = Command::new(ENIGM)
        .args([
            "audit",
            "events",
            "--follow",
            "--json",
            "--server",
            &server.url,
        ])
        .env("ENIGM_CONFIG_DIR", &owner.cli.config)
        .env_remove("ENIGM_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (sender, lines) = mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(event) = serde_json::from_str(&line) else {
                continue;
            };
            if sender.send(event).is_err() {
                break;
            }
        }
    });
    // The backlog comes first; wait until it is printed before recording anything new.
    let first = lines.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(first["seq"].is_i64(), "{first}");
    let password = write_secret(&owner.secrets, "zed-password", "a-user-password-of-length");
    owner.cli.json(
        &[
            &[
                "admin",
                "users",
                "create",
                "zed",
                "--password-file",
                password.to_str().unwrap(),
            ][..],
            &owner.pin_args()[..],
        ]
        .concat(),
    );
    let seen = loop {
        let event = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the new event was printed by --follow");
        if event["action"] == "admin.user-create" {
            break event;
        }
        // The follower's own polls are not echoed back.
        assert_ne!(event["action"], "audit.read", "{event}");
    };
    assert_eq!(seen["outcome"], "success");
    follow.kill().unwrap();
    follow.wait().unwrap();

    // `approvals list --follow` prints a request opened while it runs, with its subject.
    let mut follow = Command::new(ENIGM)
        .args([
            "admin",
            "approvals",
            "list",
            "--follow",
            "--json",
            "--server",
            &server.url,
        ])
        .env("ENIGM_CONFIG_DIR", &owner.cli.config)
        .env_remove("ENIGM_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (sender, requests) = mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(request) = serde_json::from_str(&line) else {
                continue;
            };
            if sender.send(request).is_err() {
                break;
            }
        }
    });
    let backlog = requests.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(backlog["id"], approval.as_str(), "{backlog}");
    owner.cli.json(&[
        "admin",
        "roles",
        "grant",
        "zed",
        "auditor",
        "--justification",
        "watching the follow",
    ]);
    let opened = requests
        .recv_timeout(Duration::from_secs(60))
        .expect("the new request was printed by --follow");
    assert_eq!(opened["subject"]["kind"], "role-grant", "{opened}");
    assert_eq!(opened["subject"]["username"], "zed", "{opened}");
    assert_eq!(opened["subject"]["role"], "auditor", "{opened}");
    follow.kill().unwrap();
    follow.wait().unwrap();
}
