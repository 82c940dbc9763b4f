//! OTA II end to end with real processes (SQLite and PostgreSQL): `enigm up` with development
//! attestation, the director pinned on a SoftHSM2 token, published releases, and fleets of
//! simulated attested devices (`enigm simulate --ota`) that ask the director, verify its signed
//! answers and report their installs. A release rolled out 10 % → 50 % → 100 % reaches about
//! its waves' share of each fleet; injected failures halt the next release by themselves, which
//! is then offered to nobody; a withdrawn release is offered to nobody; the audit log holds
//! every step and verifies.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use enigm_test_support::{Backend, backend_tests};
use serde_json::Value;

use crate::support::{Cli, Deployment, ENIGM, output_text};

backend_tests!(a_release_rolls_out_to_a_simulated_fleet_and_halts_on_failures);

/// Devices in each simulated fleet: a new fleet at every run, enrolled with one token.
const DEVICES: u64 = 50;

/// Where the simulated fleets go and what they are provisioned with.
struct Fleet<'a> {
    server: &'a str,
    token: &'a Path,
    trusted_root: &'a Path,
    dev_root: &'a str,
}

impl Fleet<'_> {
    /// A new fleet enrolls, asks the director for a second (every device at least once) and
    /// reports its installs; the summary's `ota` counts.
    fn run(&self, installed_rollback_index: u64, fail_percent: u8) -> Value {
        let output = Command::new(ENIGM)
            .args(["simulate", "--server", self.server, "--ota", "--json"])
            .args(["--devices", &DEVICES.to_string()])
            // Sixteen at a time, as many as PostgreSQL's pool has connections (attested
            // enrollments once starved it); the rate is measured elsewhere.
            .args(["--duration", "1", "--concurrency", "16"])
            .arg("--enrollment-token-file")
            .arg(self.token)
            .arg("--ota-trusted-root")
            .arg(self.trusted_root)
            .args(["--insecure-dev-attestation-root", self.dev_root])
            .args(["--model", "enigm-sim", "--channel", "stable"])
            .args([
                "--ota-installed-rollback-index",
                &installed_rollback_index.to_string(),
            ])
            .args(["--ota-fail-percent", &fail_percent.to_string()])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", output_text(&output));
        let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(summary["enroll"]["ok"], DEVICES, "{summary}");
        let checks = &summary["update_check"];
        assert!(checks["ok"].as_u64().unwrap() >= DEVICES, "{summary}");
        assert_eq!(checks["failed"], 0, "{summary}");
        assert_eq!(
            summary["servers"][0]["update_check"]["requests"], checks["requests"],
            "{summary}"
        );
        for percentile in ["p50", "p95", "p99"] {
            assert!(checks["latency_ms"][percentile].is_number(), "{summary}");
        }
        assert_eq!(summary["ota"]["answers_refused"], 0, "{summary}");
        summary["ota"].clone()
    }
}

/// The installs each wave of `id`'s rollout counted.
fn installed_by_wave(owner: &Cli, id: &str) -> Vec<u64> {
    let status = owner.json(&["release", "rollout", "status", id]);
    status["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|wave| wave["counts"]["installed"].as_u64().unwrap())
        .collect()
}

async fn a_release_rolls_out_to_a_simulated_fleet_and_halts_on_failures(backend: Backend) {
    // The root pins Command's director; the devices are provisioned with it.
    let Some(deployment) = Deployment::start(backend, true).await else {
        return;
    };
    let owner = deployment.owner();
    let pin = deployment.pin();
    let server = &deployment.server;
    let root_file = &deployment.root_file;
    let dev_root_arg = deployment.dev_root.to_str().unwrap().to_owned();
    let enrollment = deployment.enrollment_token("simulated", 1000);
    let fleet = Fleet {
        server: &server.url,
        token: &enrollment,
        trusted_root: root_file,
        dev_root: &dev_root_arg,
    };
    let signing = deployment.signing();
    let step = |action: &str, id: &str| {
        owner.ok(&[
            "release",
            "rollout",
            action,
            id,
            "--justification",
            &format!("{action} step"),
            "--pin-file",
            pin,
        ])
    };

    // Waves without soak; a rollout halts above 20 % failures after 4 reports.
    let plan = |id: &str, waves: &[&str], justification: &str| {
        let mut args = vec![
            "release",
            "rollout",
            "plan",
            id,
            "--model",
            "limited-rollout",
        ];
        for wave in waves {
            args.extend(["--wave", wave]);
        }
        args.extend(["--halt-above", "20", "--halt-min-reports", "4"]);
        args.extend(["--justification", justification]);
        owner.ok(&args)
    };

    // The first release, in three waves.
    let first = signing.publish("enigm-os-1.img", "enigm-sim", "1");
    plan(&first, &["10:0s", "50:0s", "100:0s"], "december rollout");
    step("validate", &first);
    // Validated: offered to nobody yet. This fleet is also the population the waves are cut
    // over when they open (a wave takes its share of the devices Command knows then, so a
    // later fleet falls into each wave about in its share).
    let validated = fleet.run(0, 0);
    assert_eq!(validated["offers"], 0, "{validated}");
    step("start", &first);
    // Wave 1: about a tenth of a new fleet (each device's place is random: a handful, maybe
    // none), all of it in wave 1's count.
    let tenth = fleet.run(0, 0);
    let installed = tenth["installed"].as_u64().unwrap();
    assert!(installed <= DEVICES * 3 / 10, "{tenth}");
    assert_eq!(tenth["offers"], installed, "{tenth}");
    assert_eq!(tenth["rolled_back"], 0, "{tenth}");
    assert_eq!(installed_by_wave(owner, &first), vec![installed, 0, 0]);

    // Wave 2: about half of a new fleet; then wave 3, the whole of the next.
    step("advance", &first);
    let half = fleet.run(0, 0)["installed"].as_u64().unwrap();
    let by_wave = installed_by_wave(owner, &first);
    assert_eq!(by_wave.iter().sum::<u64>(), installed + half, "{by_wave:?}");
    assert!(by_wave[1] > 0 && by_wave[2] == 0, "{by_wave:?}");
    step("advance", &first);
    let all = fleet.run(0, 0);
    let whole = all["installed"].as_u64().unwrap();
    assert!(whole > half && whole > installed, "{all} after {half}");
    assert_eq!(all["installed_versions"]["2026.12.1"], whole, "{all}");
    let by_wave = installed_by_wave(owner, &first);
    assert_eq!(
        by_wave.iter().sum::<u64>(),
        installed + half + whole,
        "{by_wave:?}"
    );
    assert!(by_wave[2] > 0, "{by_wave:?}");

    // The second release, for devices that run the first: half of them fail their health
    // check and roll back, and the rollout halts by itself.
    let second = signing.publish("enigm-os-2.img", "enigm-sim", "2");
    plan(&second, &["100:0s"], "january rollout");
    step("validate", &second);
    step("start", &second);
    let failing = fleet.run(1, 50);
    assert!(failing["rolled_back"].as_u64().unwrap() > 0, "{failing}");
    let halted = owner.json(&["release", "rollout", "status", &second]);
    assert_eq!(halted["status"], "halted", "{halted}");
    assert_eq!(
        halted["status_reason"], "rollout_failure_threshold",
        "{halted}"
    );
    // Halted: offered to nobody; a device without the first release is offered the first
    // (still rolling out), not the second as it would be were the second not halted.
    let behind = fleet.run(0, 0);
    let caught_up = behind["installed"].as_u64().unwrap();
    assert!(caught_up > 0, "{behind}");
    assert_eq!(
        behind["installed_versions"],
        serde_json::json!({ "2026.12.1": caught_up }),
        "{behind}"
    );
    let still = owner.json(&["release", "rollout", "status", &second]);
    for count in ["offered", "installed", "rolled_back"] {
        assert_eq!(
            still["waves"][0]["counts"][count], halted["waves"][0]["counts"][count],
            "{count}: {still}"
        );
    }

    // Withdrawn: the first release is offered to nobody either.
    step("withdraw", &first);
    let withdrawn = fleet.run(0, 0);
    assert_eq!(withdrawn["offers"], 0, "{withdrawn}");
    assert_eq!(withdrawn["installed"], 0, "{withdrawn}");

    // Every step is in the audit log, and the log verifies.
    for action in [
        "release.stage",
        "release.wave-open",
        "release.rollout-halt",
        "release.withdraw",
        "device.ota-offer",
    ] {
        let page = owner.json(&["audit", "events", "--action", action, "--limit", "1"]);
        assert_eq!(
            page["items"].as_array().unwrap().len(),
            1,
            "no {action} in the audit log: {page}"
        );
    }
    let key = owner.ok(&["audit", "key", "--remote"]).trim().to_owned();
    // The sequencer publishes a checkpoint every half second.
    std::thread::sleep(Duration::from_millis(1100));
    let verified = owner.run(&["audit", "verify", "--log-key", &key]);
    assert!(
        String::from_utf8_lossy(&verified.stdout).starts_with("audit log verified\n"),
        "{}",
        output_text(&verified)
    );
}
