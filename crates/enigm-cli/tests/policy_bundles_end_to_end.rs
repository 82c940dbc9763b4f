//! Policy bundles end to end with real processes on loopback (SQLite and PostgreSQL): `enigm up`
//! publishes nothing before there is an OTA repository; `enigm ota keys init` writes the
//! delegation of the bundles to Command's online key; the group of a new enrollment token gets
//! its first bundle, and an assignment approved by a second administrator its next one, from
//! the background task under the OTA lease; `enigm policy bundles` lists them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::time::{Duration, Instant};

use enigm_test_support::{Backend, TestDatabase, backend_tests};
use serde_json::{Value, json};

use crate::support::{Cli, Owner, Server, output_text};

backend_tests!(an_approved_assignment_is_published_as_the_groups_next_bundle);

/// `enigm policy bundles --json` once `group`'s newest bundle is `sequence` (the publisher
/// runs every second; the deadline only bounds a broken run).
fn wait_for_bundle(owner: &Cli, group: &str, sequence: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed = owner.json(&["policy", "bundles"]);
        let found = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|item| item["group"] == group && item["sequence"] == sequence);
        if found {
            return listed;
        }
        assert!(
            Instant::now() < deadline,
            "bundle {sequence} of {group} never published: {listed}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

async fn an_approved_assignment_is_published_as_the_groups_next_bundle(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let database_args: Vec<&str> = match backend {
        Backend::Sqlite => vec![],
        Backend::Postgres => vec!["--database-url", db.url()],
    };
    let server = Server::start(&data_dir, &database_args);
    let url = server.url.clone();
    let owner_login = Owner::log_in(dir.path(), &data_dir, &url);
    let owner = &owner_login.cli;
    let pin = owner_login.pin.clone();
    let pin = pin.to_str().unwrap();
    let (carol, carol_pin) = owner_login.add_administrator("carol", "security-admin");

    // No repository: nothing listed, nothing to warn about.
    let listed = owner.json(&["policy", "bundles"]);
    assert_eq!(listed["items"], json!([]), "{listed}");
    assert!(listed.get("warning").is_none(), "{listed}");

    let keys = dir.path().join("workstation-keys");
    let root = dir.path().join("root.json");
    owner.ok(&[
        "ota",
        "keys",
        "init",
        "--insecure-dev-key-dir",
        keys.to_str().unwrap(),
        "--root-out",
        root.to_str().unwrap(),
        "--pin-file",
        pin,
    ]);
    owner.ok(&[
        &[
            "admin",
            "enrollment-token",
            "create",
            "--group",
            "field-phones",
        ][..],
        &owner_login.pin_args()[..],
    ]
    .concat());
    let first = wait_for_bundle(owner, "field-phones", 1);
    assert!(first.get("warning").is_none(), "{first}");

    // A trust policy version, assigned to the group once carol approves.
    owner.ok(&["policy", "create", "strict-field", "--kind", "trust"]);
    let file = dir.path().join("v1.json");
    let content = json!({
        "critical": ["device-integrity", "secure-boot", "disk-encryption", "firewall",
                     "security-service", "signal-collector"],
        "max_signal_age_seconds": 600
    });
    std::fs::write(&file, content.to_string()).unwrap();
    let approval_of = |args: &[&str]| -> String {
        let output = owner.run(args);
        assert!(output.status.success(), "{}", output_text(&output));
        let reply: Value = serde_json::from_slice(&output.stdout).unwrap();
        reply["approval"]["id"].as_str().unwrap().to_owned()
    };
    let approve = |approval: &str| {
        let approved = carol.run(&[
            "admin",
            "approvals",
            "approve",
            approval,
            "--pin-file",
            carol_pin.to_str().unwrap(),
        ]);
        assert!(approved.status.success(), "{}", output_text(&approved));
    };
    approve(&approval_of(&[
        "policy",
        "version",
        "create",
        "strict-field",
        "--file",
        file.to_str().unwrap(),
        "--justification",
        "ticket 15",
        "--pin-file",
        pin,
        "--json",
    ]));
    approve(&approval_of(&[
        "policy",
        "assign",
        "strict-field",
        "--version",
        "1",
        "--group",
        "field-phones",
        "--justification",
        "roll out",
        "--pin-file",
        pin,
        "--json",
    ]));
    let second = wait_for_bundle(owner, "field-phones", 2);
    assert_eq!(
        second["items"][0]["target_name"],
        "policy-bundles/field-phones/2.json"
    );
    let table = owner.ok(&["policy", "bundles"]);
    assert!(
        table.contains("field-phones") && table.contains("policy-bundles/field-phones/2.json"),
        "{table}"
    );
    let audit = owner.ok(&["audit", "events", "--action", "policy.bundle-publish"]);
    assert!(audit.contains("field-phones/2"), "{audit}");

    // A static mirror carries the delegated role and every group's newest bundle.
    let mirror = dir.path().join("mirror");
    owner.ok(&["ota", "export", "--dir", mirror.to_str().unwrap()]);
    let roles: Vec<String> = std::fs::read_dir(mirror.join("metadata"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".policy-bundles.json"))
        .collect();
    assert_eq!(roles.len(), 1, "{roles:?}");
    let sha256 = second["items"][0]["sha256"].as_str().unwrap();
    let exported = std::fs::read(
        mirror
            .join("targets/policy-bundles/field-phones")
            .join(format!("{sha256}.2.json")),
    )
    .unwrap();
    assert_eq!(hex::encode(enigm_crypto::sha256(&exported)), sha256);
    drop(server);
}
