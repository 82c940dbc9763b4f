//! Policies end to end with real processes on loopback (SQLite and PostgreSQL): an owner creates
//! a policy, proposes two versions and assigns one to a device group with `enigm policy`; each
//! change waits for a second administrator (the owner's own approval is refused), the diff shows
//! the changed lines, and once the assignment is approved the enrolled device shows the new
//! policy in force, from its group's assignment.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use enigm_test_support::{Backend, TestDatabase, backend_tests};
use serde_json::{Value, json};

use crate::support::{Cli, Owner, Server, agent_once, output_text, write_secret};

backend_tests!(a_policy_is_versioned_assigned_by_approval_and_shown_on_the_device);

fn trust_policy(max_age: u64) -> Value {
    json!({
        "critical": ["device-integrity", "secure-boot", "disk-encryption", "firewall",
                     "security-service", "signal-collector"],
        "max_signal_age_seconds": max_age
    })
}

/// The approval id of a `--json` policy request.
fn approval_of(output: &std::process::Output) -> String {
    assert!(output.status.success(), "{}", output_text(output));
    let reply: Value = serde_json::from_slice(&output.stdout).unwrap();
    reply["approval"]["id"].as_str().unwrap().to_owned()
}

async fn a_policy_is_versioned_assigned_by_approval_and_shown_on_the_device(backend: Backend) {
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
    let approve = |cli: &Cli, approval: &str, pin: &str| {
        cli.run(&["admin", "approvals", "approve", approval, "--pin-file", pin])
    };

    // A device of the group, enrolled with the token's (baseline) policy.
    let created = owner.json(
        &[
            &[
                "admin",
                "enrollment-token",
                "create",
                "--group",
                "field-phones",
            ][..],
            &owner_login.pin_args()[..],
        ]
        .concat(),
    );
    let token = write_secret(
        &owner_login.secrets,
        "token",
        created["token"].as_str().unwrap(),
    );
    let agent_dir = dir.path().join("agent");
    let enrolled = agent_once(
        &url,
        &agent_dir,
        &["--enrollment-token-file", token.to_str().unwrap()],
    );
    assert!(enrolled.status.success(), "{}", output_text(&enrolled));
    let enrollment: Value =
        serde_json::from_str(&std::fs::read_to_string(agent_dir.join("enrollment.json")).unwrap())
            .unwrap();
    let handle = enrollment["handle"].as_str().unwrap().to_owned();
    let shown = owner.ok(&["admin", "devices", "show", &handle]);
    assert!(shown.contains("baseline"), "{shown}");

    // create → version (approved by carol, not by the owner) → a second version → diff.
    let created = owner.ok(&["policy", "create", "strict-field", "--kind", "trust"]);
    assert!(
        created.contains("created trust policy strict-field"),
        "{created}"
    );
    let v1 = dir.path().join("v1.json");
    std::fs::write(&v1, trust_policy(3600).to_string()).unwrap();
    let request = |file: &std::path::Path| {
        owner.run(&[
            "policy",
            "version",
            "create",
            "strict-field",
            "--file",
            file.to_str().unwrap(),
            "--justification",
            "ticket 12",
            "--pin-file",
            pin,
            "--json",
        ])
    };
    let first = approval_of(&request(&v1));
    let own = approve(owner, &first, pin);
    assert!(!own.status.success());
    assert!(
        output_text(&own).contains("self_approval"),
        "{}",
        output_text(&own)
    );
    let approved = approve(&carol, &first, carol_pin.to_str().unwrap());
    assert!(approved.status.success(), "{}", output_text(&approved));
    let v2 = dir.path().join("v2.json");
    std::fs::write(&v2, trust_policy(7200).to_string()).unwrap();
    let second = approval_of(&request(&v2));
    let approved = approve(&carol, &second, carol_pin.to_str().unwrap());
    assert!(approved.status.success(), "{}", output_text(&approved));
    let listed = owner.ok(&["policy", "show", "strict-field"]);
    assert!(
        listed.contains("│ 1 ") && listed.contains("│ 2 "),
        "{listed}"
    );
    let diff = owner.ok(&["policy", "diff", "strict-field", "1", "2"]);
    assert!(
        diff.contains("-  \"max_signal_age_seconds\": 3600"),
        "{diff}"
    );
    assert!(
        diff.contains("+  \"max_signal_age_seconds\": 7200"),
        "{diff}"
    );
    let content = owner.json(&["policy", "show", "strict-field", "--version", "2"]);
    assert_eq!(content["content"]["max_signal_age_seconds"], 7200);

    // assign version 2 to the group: not in force until carol approves.
    let assign = owner.run(&[
        "policy",
        "assign",
        "strict-field",
        "--version",
        "2",
        "--group",
        "field-phones",
        "--justification",
        "roll out",
        "--pin-file",
        pin,
        "--json",
    ]);
    let assign = approval_of(&assign);
    let before = owner.json(&["admin", "devices", "show", &handle]);
    assert_eq!(before["policies"][0]["source"], "baseline", "{before}");
    let approved = approve(&carol, &assign, carol_pin.to_str().unwrap());
    assert!(approved.status.success(), "{}", output_text(&approved));
    let assignments = owner.ok(&["policy", "assignments"]);
    assert!(assignments.contains("field-phones"), "{assignments}");

    // The device shows the new policy in force; its next check-in is evaluated under it.
    let checked_in = agent_once(&url, &agent_dir, &[]);
    assert!(checked_in.status.success(), "{}", output_text(&checked_in));
    let after = owner.json(&["admin", "devices", "show", &handle]);
    let trust = &after["policies"][0];
    assert_eq!(trust["kind"], "trust", "{after}");
    assert_eq!(trust["source"], "group-assignment", "{after}");
    assert_eq!(trust["name"], "strict-field", "{after}");
    assert_eq!(trust["version"], 2, "{after}");
    let table = owner.ok(&["admin", "devices", "show", &handle]);
    assert!(table.contains("strict-field version 2"), "{table}");
    assert!(table.contains("group-assignment"), "{table}");

    // The audit log names the assignment (from the command line, as an auditor reads it).
    let audit = owner.ok(&["audit", "events", "--action", "policy.assign"]);
    assert!(audit.contains("policy.assign"), "{audit}");
}
