//! Remote attestation with the real `enigm` binary.
//!
//! - `enigm attest verify` on real device chains from `../shared/vectors/` (a Pixel 9 Pro, a
//!   Pixel 3, the GrapheneOS sample, the AOSP software chains): decoded claims, the outcome, the
//!   exit status, and the time window.
//! - Command with `--insecure-dev-attestation-root` and `enigm agent` with the same root, on
//!   SQLite and PostgreSQL: an enrollment that requires attestation succeeds for the attesting
//!   agent and is refused for one that does not attest; the agent attests again on its next run;
//!   the device shows the accepted outcome and is eligible for OTA.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use enigm_test_support::{Backend, TestDatabase, backend_tests, require_shared_vectors};
use serde_json::Value;

use crate::support::{ENIGM, Owner, Server, agent_once, output_text, write_secret};

fn vectors() -> PathBuf {
    require_shared_vectors().join("android-key-attestation")
}

/// `enigm attest verify … --skip-revocation-check`: the inspection most tests here make (they
/// have no status list); revocation has its own test.
fn attest(args: &[&str]) -> Output {
    attest_as_given(&[args, &["--skip-revocation-check"]].concat())
}

fn attest_as_given(args: &[&str]) -> Output {
    Command::new(ENIGM)
        .arg("attest")
        .arg("verify")
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `enigm attest verify --json …`: the report and whether it exited 0.
fn verify_json(args: &[&str]) -> (Value, bool) {
    let output = attest(&[args, &["--json"]].concat());
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", output_text(&output)));
    (report, output.status.success())
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn attest_verify_prints_the_claims_and_exits_zero_only_when_accepted() {
    let caiman = vectors().join("google-keyattestation/caiman/sdk36/SB_EC_RKP.pem");
    // Inside the chain's window: a locked, VERIFIED StrongBox device under the default policy.
    let output = attest(&["--chain", path(&caiman), "--at", "2025-09-28T00:00:00Z"]);
    let shown = output_text(&output);
    assert!(output.status.success(), "{shown}");
    for expected in [
        "STRONG_BOX",
        "VERIFIED",
        "202511",
        "outcome: accepted",
        "NOT checked",
    ] {
        assert!(
            shown.contains(expected),
            "`{expected}` missing from:\n{shown}"
        );
    }
    let (report, accepted) =
        verify_json(&["--chain", path(&caiman), "--at", "2025-09-28T00:00:00Z"]);
    assert!(accepted);
    assert_eq!(report["outcome"], "accepted");
    assert_eq!(report["claims"]["os_version"], 160_000);
    assert_eq!(report["claims"]["root"], "google-rsa");
    assert_eq!(report["revocation_checked"], false);
    let ear = &report["ear"]["submods"]["enigm-device"];
    assert_eq!(ear["ear.status"], "affirming", "{report}");
    assert_eq!(ear["ear.trustworthiness-vector"]["hardware"], 2, "{report}");

    // Outside the window: stale, exit 1.
    let (report, accepted) =
        verify_json(&["--chain", path(&caiman), "--at", "2026-06-01T00:00:00Z"]);
    assert!(!accepted);
    assert_eq!(report["outcome"], "stale_attestation");
    assert_eq!(
        report["ear"]["submods"]["enigm-device"]["ear.status"],
        "contraindicated"
    );

    // A challenge other than the one in the leaf: replay.
    let (report, accepted) = verify_json(&[
        "--chain",
        path(&caiman),
        "--at",
        "2025-09-28T00:00:00Z",
        "--challenge",
        "00112233",
    ]);
    assert!(!accepted);
    assert_eq!(report["outcome"], "replay_attempt");

    // A Pixel 3 with an unlocked bootloader: a genuine chain, an ineligible build.
    let blueline = vectors().join("google-keyattestation/blueline/sdk28/TEE_EC_NONE.pem");
    let (report, accepted) =
        verify_json(&["--chain", path(&blueline), "--at", "2020-01-01T00:00:00Z"]);
    assert!(!accepted);
    assert_eq!(report["outcome"], "ineligible_build");
    assert_eq!(report["claims"]["device_locked"], false);
}

#[test]
fn attest_verify_without_a_status_list_refuses_like_command_unless_told_to_skip() {
    let caiman = vectors().join("google-keyattestation/caiman/sdk36/SB_EC_RKP.pem");
    let chain = ["--chain", path(&caiman), "--at", "2025-09-28T00:00:00Z"];

    // No list: refused (Command refuses every chain it cannot check), and the error says how
    // to supply the list.
    let output = attest_as_given(&chain);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{}", output_text(&output));
    assert!(
        stderr.contains("revocation could not be checked"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: pass --status-list FILE"), "{stderr}");
    assert!(stderr.contains("--skip-revocation-check"), "{stderr}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("outcome: accepted"));
    let output = attest_as_given(&[&chain[..], &["--json"]].concat());
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["outcome"], "invalid_trust_chain", "{report}");
    assert_eq!(report["revocation_checked"], false);

    // Skipping the check is explicit and loud.
    let output = attest_as_given(&[&chain[..], &["--skip-revocation-check"]].concat());
    assert!(output.status.success(), "{}", output_text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning: revocation is NOT checked (--skip-revocation-check)"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("outcome: accepted"));

    // With a list (here one that revokes nothing) the chain is checked and accepted, quietly.
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("status.json");
    std::fs::write(&list, r#"{"entries": {}}"#).unwrap();
    let output = attest_as_given(&[&chain[..], &["--status-list", path(&list), "--json"]].concat());
    assert!(output.status.success(), "{}", output_text(&output));
    assert!(!String::from_utf8_lossy(&output.stderr).contains("warning"));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["outcome"], "accepted");
    assert_eq!(report["revocation_checked"], true);
}

#[test]
fn a_self_signed_os_needs_its_boot_key_allow_listed_and_software_keys_never_pass() {
    let sample = vectors().join("grapheneos-auditor/sample-5");
    let chain: Vec<String> = (0..5)
        .map(|n| path(&sample.join(format!("0_cert_{n}.der"))).to_owned())
        .collect();
    let mut args: Vec<&str> = chain
        .iter()
        .flat_map(|file| ["--chain", file.as_str()])
        .collect();
    args.extend(["--at", "2025-11-15T00:00:00Z"]);
    let (report, accepted) = verify_json(&args);
    assert!(!accepted);
    assert_eq!(report["outcome"], "ineligible_build", "{report}");
    assert_eq!(report["claims"]["verified_boot_state"], "SELF_SIGNED");
    assert_eq!(report["claims"]["security_level"], "STRONG_BOX");

    let boot_key = report["claims"]["verified_boot_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("graphene.json");
    std::fs::write(
        &policy,
        format!(r#"{{"allowed_boot_keys": ["{boot_key}"], "min_os_patch_level": 202511}}"#),
    )
    .unwrap();
    let mut with_policy = args.clone();
    with_policy.extend(["--policy", path(&policy)]);
    let (report, accepted) = verify_json(&with_policy);
    assert!(accepted, "{report}");
    assert_eq!(report["outcome"], "accepted");

    // The AOSP software attestation chains: no pinned root, and even with their root pinned,
    // software keys are not hardware.
    let marlin = vectors().join("google-keyattestation/marlin/sdk29/TEE_EC_NONE.pem");
    let (report, accepted) =
        verify_json(&["--chain", path(&marlin), "--at", "2020-01-01T00:00:00Z"]);
    assert!(!accepted);
    assert_eq!(report["outcome"], "invalid_trust_chain");
    let pem = std::fs::read_to_string(&marlin).unwrap();
    let last = pem.rfind("-----BEGIN CERTIFICATE-----").unwrap();
    let root = dir.path().join("aosp-software-root.pem");
    std::fs::write(&root, &pem[last..]).unwrap();
    let (report, accepted) = verify_json(&[
        "--chain",
        path(&marlin),
        "--at",
        "2020-01-01T00:00:00Z",
        "--root",
        path(&root),
    ]);
    assert!(!accepted);
    assert_eq!(report["outcome"], "unsupported_device", "{report}");
}

backend_tests!(agents_attest_with_a_development_root_through_the_real_verifier);

async fn agents_attest_with_a_development_root_through_the_real_verifier(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let dev_root = dir.path().join("dev-root");
    let mut server_args = vec!["--insecure-dev-attestation-root", path(&dev_root)];
    if backend == Backend::Postgres {
        server_args.extend(["--database-url", db.url()]);
    }
    let server = Server::start(&data_dir, &server_args);
    let url = server.url.clone();
    assert!(dev_root.join("dev-attestation-root.pem").exists());
    assert!(dev_root.join("dev-attestation-root.key").exists());

    let owner_login = Owner::log_in(dir.path(), &data_dir, &url);
    let owner = &owner_login.cli;
    let secrets = owner_login.secrets.clone();
    let pin = owner_login.pin.clone();
    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, r#"{"required_for": {"enrollment": true}}"#).unwrap();
    let created = owner.json(&[
        "admin",
        "enrollment-token",
        "create",
        "--group",
        "demo",
        "--uses",
        "2",
        "--attestation-policy-file",
        path(&policy),
        "--pin-file",
        path(&pin),
    ]);
    let token = write_secret(&secrets, "token", created["token"].as_str().unwrap());

    // Without evidence the enrollment is refused.
    let plain = agent_once(
        &url,
        &dir.path().join("plain"),
        &["--enrollment-token-file", path(&token)],
    );
    assert!(!plain.status.success());
    assert!(
        output_text(&plain).contains("attestation_required"),
        "{}",
        output_text(&plain)
    );

    // With the development root the agent attests at enrollment and again after it.
    let state = dir.path().join("attesting");
    let attesting = agent_once(
        &url,
        &state,
        &[
            "--enrollment-token-file",
            path(&token),
            "--insecure-dev-attestation-root",
            path(&dev_root),
        ],
    );
    assert!(attesting.status.success(), "{}", output_text(&attesting));
    // A new run attests at its first cycle (then every --attest-every seconds).
    let again = agent_once(
        &url,
        &state,
        &["--insecure-dev-attestation-root", path(&dev_root)],
    );
    assert!(again.status.success(), "{}", output_text(&again));
    assert!(
        output_text(&again).contains("attested: accepted"),
        "{}",
        output_text(&again)
    );
    let enrollment: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("enrollment.json")).unwrap())
            .unwrap();
    let handle = enrollment["handle"].as_str().unwrap().to_owned();

    let device = owner.json(&["admin", "devices", "show", &handle]);
    assert_eq!(device["attestation"]["verdict"], "accepted", "{device}");
    assert_eq!(
        device["attestation"]["claims"]["root"],
        "operator:insecure-dev-root"
    );
    let shown = owner.ok(&["admin", "devices", "show", &handle]);
    assert!(shown.contains("VERIFIED boot, locked"), "{shown}");
    let decision = owner.json(&["admin", "devices", "decide", &handle, "--action", "ota"]);
    assert_eq!(decision["decision"], "allow", "{decision}");

    // The simulated hardware key stays private in the state directory.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(state.join("attested-key.pem"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    server.stop();
}
