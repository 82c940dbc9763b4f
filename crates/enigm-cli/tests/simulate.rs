//! `enigm simulate` against a real `enigm up` on loopback (SQLite): a small fleet of agent cores
//! enrolls with one token and checks in for a few seconds; the summary counts every device and request, no
//! request fails, Command shows the fleet under handles in all three trust states, and the
//! eligibility decision follows them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::{ENIGM, Owner, Server, write_secret};

#[tokio::test]
async fn a_simulated_fleet_enrolls_checks_in_and_is_measured() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = Server::start(&data_dir, &["--metrics-listen", "127.0.0.1:0"]);
    let metrics = server.printed_address("metrics");
    let owner_login = Owner::log_in(dir.path(), &data_dir, &server.url);
    let owner = &owner_login.cli;
    let secrets = owner_login.secrets.clone();
    let pin_file = owner_login.pin.clone();
    let created = owner.run(&[
        "admin",
        "enrollment-token",
        "create",
        "--group",
        "simulated",
        "--uses",
        "20",
        "--pin-file",
        pin_file.to_str().unwrap(),
        "--json",
    ]);
    assert!(created.status.success());
    let created: Value = serde_json::from_slice(&created.stdout).unwrap();
    let token_file = write_secret(&secrets, "token", created["token"].as_str().unwrap());

    // One metrics address per server is asked for: one for two servers is refused up front.
    let mismatched = Command::new(ENIGM)
        .args(["simulate", "--server", &server.url, "--server", &server.url])
        .args(["--server-metrics", &metrics, "--enrollment-token-file"])
        .arg(&token_file)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!mismatched.status.success());
    assert!(
        String::from_utf8_lossy(&mismatched.stderr).contains("1 --server-metrics for 2 --server"),
        "{}",
        String::from_utf8_lossy(&mismatched.stderr)
    );

    // `--server` twice: the devices are spread over two clients (here of the same Command, as
    // two replicas behind one name would be), half enrolling and checking in through each.
    // Each server's metrics address gives the CPU Command used in the timed phase.
    let output = Command::new(ENIGM)
        .args(["simulate", "--server", &server.url, "--server", &server.url])
        .args(["--server-metrics", &metrics, "--server-metrics", &metrics])
        .args(["--devices", "20"])
        .args(["--duration", "3", "--concurrency", "8", "--json"])
        .arg("--enrollment-token-file")
        .arg(&token_file)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();

    assert_eq!(summary["devices"], 20, "{summary}");
    let servers = summary["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 2, "{summary}");
    let per_server: Vec<u64> = servers
        .iter()
        .map(|server| server["check_in"]["ok"].as_u64().unwrap())
        .collect();
    assert!(per_server.iter().all(|&ok| ok > 0), "{summary}");
    // Both "servers" are one process: each reads its whole CPU time over the phase.
    for server in servers {
        let cpu = &server["cpu"];
        assert!(cpu["seconds"].as_f64().unwrap() > 0.0, "{summary}");
        assert!(cpu["cores"].as_f64().unwrap() > 0.0, "{summary}");
        assert!(cpu["per_request_us"].as_f64().unwrap() > 0.0, "{summary}");
    }
    assert_eq!(
        per_server.iter().sum::<u64>(),
        summary["check_in"]["ok"].as_u64().unwrap(),
        "{summary}"
    );
    assert_eq!(summary["commands"]["failed"], 0, "{summary}");
    assert_eq!(summary["enroll"]["ok"], 20, "{summary}");
    assert_eq!(summary["enroll"]["failed"], 0, "{summary}");
    let check_ins = &summary["check_in"];
    assert_eq!(check_ins["failed"], 0, "{summary}");
    assert!(check_ins["ok"].as_u64().unwrap() >= 20, "{summary}");
    assert!(check_ins["per_second"].as_f64().unwrap() > 0.0, "{summary}");
    let latency = &check_ins["latency_ms"];
    assert!(latency["p50"].as_f64().unwrap() <= latency["p99"].as_f64().unwrap());
    assert!(latency["p99"].as_f64().unwrap() <= latency["max"].as_f64().unwrap());
    // Profiles: 7 in 10 protected, one review-required, one inactive, one degrading (protected,
    // then at risk in the second half).
    let states = &summary["trust_states"];
    assert_eq!(states["PROTECTED"], 14, "{summary}");
    assert_eq!(states["REVIEW_REQUIRED"], 4, "{summary}");
    assert_eq!(states["INACTIVE"], 2, "{summary}");

    // Command lists the fleet under handles, in the same three states.
    let listed = owner.run(&["admin", "devices", "list", "--json"]);
    assert!(listed.status.success());
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let devices = listed["items"].as_array().unwrap();
    assert_eq!(devices.len(), 20, "{listed}");
    for state in ["PROTECTED", "REVIEW_REQUIRED", "INACTIVE"] {
        assert!(
            devices
                .iter()
                .any(|device| device["trust"]["state"] == state),
            "{state} missing: {listed}"
        );
    }
    assert!(
        devices
            .iter()
            .all(|device| device["handle"].as_str().unwrap().starts_with("dev_"))
    );

    // The eligibility decision from the CLI: allowed for a protected device, denied (exit 1,
    // with the reason) for an inactive one.
    let handle_in = |state: &str| {
        devices
            .iter()
            .find(|device| device["trust"]["state"] == state)
            .unwrap()["handle"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let allowed = owner.run(&[
        "admin",
        "devices",
        "decide",
        &handle_in("PROTECTED"),
        "--action",
        "network",
    ]);
    assert!(allowed.status.success());
    assert_eq!(String::from_utf8_lossy(&allowed.stdout).trim(), "allow");
    let denied = owner.run(&[
        "admin",
        "devices",
        "decide",
        &handle_in("INACTIVE"),
        "--action",
        "network",
    ]);
    assert_eq!(denied.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("deny: trust_inactive"));
}

/// A token Command does not know: every enrollment is refused, and the run says so and fails
/// instead of printing a summary of nothing and exiting 0.
#[tokio::test]
async fn a_simulation_in_which_no_device_enrolled_fails_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = Server::start(&data_dir, &[]);
    let token_file = write_secret(dir.path(), "token", "enigm_et_not-a-real-token");
    let output = Command::new(ENIGM)
        .args(["simulate", "--server", &server.url])
        .args([
            "--devices",
            "3",
            "--duration",
            "1",
            "--concurrency",
            "2",
            "--json",
        ])
        .arg("--enrollment-token-file")
        .arg(&token_file)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: no device enrolled: all 3 enrollment(s) were refused or failed"),
        "{stderr}"
    );
    assert!(stderr.contains("(refused: "), "{stderr}");
    assert!(
        stderr.contains("\nhint: --enrollment-token-file needs a live token with at least --devices uses: enigm admin enrollment-token create --group GROUP --uses 3"),
        "{stderr}"
    );
    // The summary is still printed, and counts the refusals.
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["enroll"]["ok"], 0, "{summary}");
    assert_eq!(summary["enroll"]["requests"], 3, "{summary}");
    assert!(server.stop().success());
}
