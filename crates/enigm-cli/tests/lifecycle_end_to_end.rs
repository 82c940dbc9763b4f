//! Device lifecycle end to end with real processes on loopback (SQLite and PostgreSQL): an
//! operator retires a device with `enigm admin devices lifecycle`, the agent acknowledges at its
//! next cycle and stops; a wipe goes through a second administrator's approval and the agent,
//! after acknowledging, deletes its key, enrollment and last evaluation; a replacement prints a
//! one-use token with which a new agent enrolls under a new handle.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::path::Path;

use enigm_test_support::{Backend, TestDatabase, backend_tests};
use serde_json::Value;

use crate::support::{Cli, Owner, Server, agent_once, output_text, write_secret};

/// Enrolls an agent in `state_dir` with the token in `token_file`; answers its handle.
fn enroll(server: &str, state_dir: &Path, token_file: &Path, extra: &[&str]) -> String {
    let args = [
        &["--enrollment-token-file", token_file.to_str().unwrap()][..],
        extra,
    ]
    .concat();
    let output = agent_once(server, state_dir, &args);
    assert!(output.status.success(), "{}", output_text(&output));
    let enrollment: Value =
        serde_json::from_str(&std::fs::read_to_string(state_dir.join("enrollment.json")).unwrap())
            .unwrap();
    enrollment["handle"].as_str().unwrap().to_owned()
}

backend_tests!(operators_retire_wipe_and_replace_devices_and_agents_obey);

async fn operators_retire_wipe_and_replace_devices_and_agents_obey(backend: Backend) {
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
    let secrets = owner_login.secrets.clone();
    let pin_file = owner_login.pin.clone();
    let pin_args = owner_login.pin_args();

    // A second administrator (security-admin) to approve the wipe.
    let (carol, carol_pin) = owner_login.add_administrator("carol", "security-admin");

    let created = owner.json(
        &[
            &[
                "admin",
                "enrollment-token",
                "create",
                "--group",
                "field-phones",
                "--uses",
                "3",
            ][..],
            &pin_args[..],
        ]
        .concat(),
    );
    let token_file = write_secret(&secrets, "token", created["token"].as_str().unwrap());
    let retiring_dir = dir.path().join("agent-retiring");
    let wiping_dir = dir.path().join("agent-wiping");
    let old_dir = dir.path().join("agent-old");
    let retiring = enroll(&url, &retiring_dir, &token_file, &[]);
    let wiping = enroll(&url, &wiping_dir, &token_file, &["--wipe-opt-in"]);
    let old = enroll(&url, &old_dir, &token_file, &[]);

    let lifecycle = |cli: &Cli, handle: &str, action: &str, pin: &Path| {
        cli.run(&[
            "admin",
            "devices",
            "lifecycle",
            handle,
            action,
            "--justification",
            "ticket 12",
            "--pin-file",
            pin.to_str().unwrap(),
        ])
    };

    // Retire: issued; the device stays trusted until its agent acknowledges at the next cycle.
    let issued = lifecycle(owner, &retiring, "retire", &pin_file);
    assert!(issued.status.success(), "{}", output_text(&issued));
    assert!(
        output_text(&issued).contains("retire issued"),
        "{}",
        output_text(&issued)
    );
    let shown = owner.ok(&["admin", "devices", "show", &retiring]);
    assert!(shown.contains("requested state"), "{shown}");
    assert!(shown.contains("pending command"), "{shown}");
    let obeyed = agent_once(&url, &retiring_dir, &[]);
    assert!(obeyed.status.success(), "{}", output_text(&obeyed));
    assert!(
        output_text(&obeyed).contains("retired by Command"),
        "{}",
        output_text(&obeyed)
    );
    let shown = owner.json(&["admin", "devices", "show", &retiring]);
    assert_eq!(shown["state"], "retired", "{shown}");
    assert_eq!(
        shown["lifecycle"]["acknowledged_command"]["command"],
        "retire"
    );
    let after = agent_once(&url, &retiring_dir, &[]);
    assert!(!after.status.success());
    assert!(
        output_text(&after).contains("device_not_active"),
        "{}",
        output_text(&after)
    );

    // Wipe: needs the approval of another administrator; then the agent wipes itself.
    let requested = owner.run(&[
        "admin",
        "devices",
        "lifecycle",
        &wiping,
        "wipe",
        "--justification",
        "stolen phone",
        "--pin-file",
        pin_file.to_str().unwrap(),
        "--json",
    ]);
    assert!(requested.status.success(), "{}", output_text(&requested));
    let requested: Value = serde_json::from_slice(&requested.stdout).unwrap();
    let approval = requested["approval"]["id"].as_str().unwrap().to_owned();
    let untouched = agent_once(&url, &wiping_dir, &[]);
    assert!(untouched.status.success(), "{}", output_text(&untouched));
    assert!(wiping_dir.join("device.key").exists());
    carol.json(&[
        "admin",
        "approvals",
        "approve",
        &approval,
        "--pin-file",
        carol_pin.to_str().unwrap(),
    ]);
    let wiped = agent_once(&url, &wiping_dir, &[]);
    assert!(wiped.status.success(), "{}", output_text(&wiped));
    assert!(
        output_text(&wiped).contains("wiped by Command"),
        "{}",
        output_text(&wiped)
    );
    for file in ["device.key", "enrollment.json", "tsc.json"] {
        assert!(!wiping_dir.join(file).exists(), "{file} survived the wipe");
    }
    let shown = owner.json(&["admin", "devices", "show", &wiping]);
    assert_eq!(shown["state"], "retired", "{shown}");
    assert_eq!(
        shown["lifecycle"]["acknowledged_command"]["command"],
        "wipe"
    );

    // Replace: a one-use token; the successor enrolls with its own key under a new handle.
    let replaced = lifecycle(owner, &old, "replace", &pin_file);
    assert!(replaced.status.success(), "{}", output_text(&replaced));
    let replaced = String::from_utf8(replaced.stdout).unwrap();
    assert!(replaced.contains("is now replaced"), "{replaced}");
    let token = replaced.lines().last().unwrap().trim().to_owned();
    let successor_token = write_secret(&secrets, "successor-token", &token);
    let successor = enroll(
        &url,
        &dir.path().join("agent-successor"),
        &successor_token,
        &[],
    );
    assert_ne!(successor, old);
    let shown = owner.json(&["admin", "devices", "show", &old]);
    assert_eq!(shown["state"], "replaced");
    assert_eq!(shown["lifecycle"]["replaced_by"], successor.as_str());
    let refused = agent_once(&url, &old_dir, &[]);
    assert!(!refused.status.success());
    assert!(
        output_text(&refused).contains("device_not_active"),
        "{}",
        output_text(&refused)
    );
}
