//! The shipped device profiles, through the real binary: `enigm agent-report --profile FILE`
//! prints the report the agent would send. Each profile evaluates to its trust state under the
//! baseline policy, no report carries the profile's hardware identifiers, and malformed profiles
//! are refused with a message naming the problem.
#![expect(
    clippy::unwrap_used,
    reason = "the helpers of a test fail it by panicking, like the tests themselves"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use enigm_trust::{SignalReport, TrustPolicy, TrustState, evaluate};
use enigm_types::Timestamp;

const ENIGM: &str = env!("CARGO_BIN_EXE_enigm");

fn profiles() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/profiles")
}

fn agent_report(profile: &Path) -> Output {
    Command::new(ENIGM)
        .args(["agent-report", "--json", "--profile"])
        .arg(profile)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    Timestamp::from_unix_millis(i64::try_from(millis).unwrap())
}

#[test]
fn shipped_profiles_evaluate_to_their_states_and_never_leak_hardware_identifiers() {
    for (file, expect) in [
        ("protected.toml", TrustState::Protected),
        ("review-required.toml", TrustState::ReviewRequired),
        ("inactive.toml", TrustState::Inactive),
    ] {
        let path = profiles().join(file);
        let output = agent_report(&path);
        let stdout = String::from_utf8(output.stdout).unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(output.status.success(), "{file}: {stderr}");
        let report: SignalReport = serde_json::from_str(&stdout).unwrap();
        let evaluation = evaluate(&report, &TrustPolicy::baseline(), now());
        assert_eq!(
            evaluation.state, expect,
            "{file}: {:?}",
            evaluation.findings
        );

        let text = std::fs::read_to_string(&path).unwrap();
        let profile: toml::Table = toml::from_str(&text).unwrap();
        let hardware = profile["hardware"].as_table().unwrap();
        assert!(
            hardware["serial"]
                .as_str()
                .unwrap()
                .starts_with("ENIGM-TEST-SERIAL-")
        );
        for key in ["serial", "imei", "mac"] {
            let value = hardware[key].as_str().unwrap();
            assert!(
                !stdout.contains(value),
                "{file}: the report carries the {key}"
            );
            assert!(!stderr.contains(value), "{file}: stderr shows the {key}");
        }
        assert!(stderr.contains("never transmits"), "{file}: {stderr}");
    }
}

#[test]
fn malformed_profiles_are_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let padding = "# padding\n".repeat(7000);
    let cases = [
        (
            "unknown-signal.toml",
            "[signals]\nsecure-bot = \"ok\"\n".to_owned(),
            "line 2: unknown variant `secure-bot`",
        ),
        (
            "unknown-value.toml",
            "[signals]\ntpm = \"green\"\n".to_owned(),
            "line 2: unknown variant `green`",
        ),
        (
            "unknown-table.toml",
            "[device]\n[owner]\nname = \"x\"\n".to_owned(),
            "line 2: unknown field `owner`",
        ),
        (
            "oversized.toml",
            format!("[signals]\ntpm = \"ok\"\n{padding}"),
            "profile is larger than 64 KiB",
        ),
    ];
    for (file, text, expect) in cases {
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        let output = agent_report(&path);
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(!output.status.success(), "{file} was accepted");
        assert!(output.stdout.is_empty(), "{file}");
        assert!(stderr.contains(expect), "{file}: {stderr}");
        assert!(
            stderr.contains("could not load profile"),
            "{file}: {stderr}"
        );
    }
}

#[test]
fn without_a_profile_the_collectors_measure_the_given_root() {
    let root = tempfile::tempdir().unwrap();
    let output = Command::new(ENIGM)
        .args(["agent-report", "--root"])
        .arg(root.path())
        .output()
        .unwrap();
    assert!(output.status.success());
    let report: SignalReport = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report.signals().len(), 9);
    // An empty tree shows no protection: INACTIVE, never PROTECTED.
    let evaluation = evaluate(&report, &TrustPolicy::baseline(), now());
    assert_eq!(evaluation.state, TrustState::Inactive);
}
