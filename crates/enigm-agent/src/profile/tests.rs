use enigm_trust::{TrustPolicy, TrustState, evaluate};

use super::*;

const NOW: Timestamp = Timestamp::from_unix_millis(1_790_000_000_000);

const SHIPPED: [(&str, &str, TrustState); 3] = [
    (
        "protected.toml",
        include_str!("../../../../examples/profiles/protected.toml"),
        TrustState::Protected,
    ),
    (
        "review-required.toml",
        include_str!("../../../../examples/profiles/review-required.toml"),
        TrustState::ReviewRequired,
    ),
    (
        "inactive.toml",
        include_str!("../../../../examples/profiles/inactive.toml"),
        TrustState::Inactive,
    ),
];

/// Parses `text` and checks the error message contains every one of `expect`.
fn check_refused(text: &str, expect: &[&str]) {
    let error = Profile::parse(text).unwrap_err().to_string();
    for part in expect {
        assert!(error.contains(part), "`{error}` should contain `{part}`");
    }
}

#[test]
fn shipped_profiles_evaluate_to_their_states_under_the_baseline() {
    for (name, text, expect) in SHIPPED {
        let profile = Profile::parse(text).unwrap();
        let report = profile.report(NOW);
        let evaluation = evaluate(&report, &TrustPolicy::baseline(), NOW);
        assert_eq!(
            evaluation.state, expect,
            "{name}: {:?}",
            evaluation.findings
        );
        assert_eq!(
            profile.hardware().declared(),
            ["serial", "imei", "mac"],
            "{name}"
        );
        assert!(!profile.collects(), "{name}");
        for signal in report.signals() {
            assert_eq!(signal.source, SignalSource::Declared);
            assert_eq!(signal.observed_at, NOW);
        }
    }
}

#[test]
fn reports_and_debug_output_never_carry_hardware_identifiers() {
    for (name, text, _) in SHIPPED {
        let profile = Profile::parse(text).unwrap();
        let raw: toml::Table = toml::from_str(text).unwrap();
        let hardware = raw["hardware"].as_table().unwrap();
        let json = serde_json::to_string(&profile.report(NOW)).unwrap();
        let debug = format!("{profile:?} {}", profile.hardware());
        for key in ["serial", "imei", "mac"] {
            let value = hardware[key].as_str().unwrap();
            assert!(!json.contains(value), "{name}: report carries {key}");
            assert!(!debug.contains(value), "{name}: Debug shows {key}");
        }
        let device_name = raw["device"]["name"].as_str().unwrap();
        assert!(
            !json.contains(device_name),
            "{name}: report carries the device name"
        );
        assert!(debug.contains("<redacted>"));
    }
}

#[test]
fn profile_fields_are_parsed() {
    let profile = Profile::parse(
        "[device]\nname = \"field-laptop\"\npatch_level = \"2026-10-05\"\ncollect = true\n\
         [signals]\nsecure-boot = \"ok\"\ndisk-encryption = \"degraded\"\n\
         [hardware]\nimei = \"356938035643809\"\n",
    )
    .unwrap();
    assert_eq!(profile.name(), Some("field-laptop"));
    assert!(profile.collects());
    assert_eq!(profile.hardware().declared(), ["imei"]);
    assert_eq!(
        profile.hardware().to_string(),
        "hardware identifiers imei (redacted)"
    );
    let report = profile.report(NOW);
    assert_eq!(report.patch_level(), PatchLevel::new(2026, 10, 5).ok());
    assert_eq!(
        report.signal(SignalKind::DiskEncryption).map(|s| s.value),
        Some(SignalValue::Degraded)
    );
    assert_eq!(report.signals().len(), 2);
    // An empty profile is a device that reports nothing.
    let empty = Profile::parse("").unwrap();
    assert!(empty.report(NOW).signals().is_empty());
    assert_eq!(empty.hardware().to_string(), "no hardware identifiers");
}

#[test]
fn declared_signals_win_over_collected_ones() {
    let root = tempfile::tempdir().unwrap();
    let profile = Profile::parse(
        "[device]\ncollect = true\n[signals]\nsecure-boot = \"ok\"\nfirewall = \"degraded\"\n",
    )
    .unwrap();
    let report = profile.report_with_collectors(root.path(), NOW);
    let secure_boot = report.signal(SignalKind::SecureBoot).unwrap();
    assert_eq!(secure_boot.value, SignalValue::Ok);
    assert_eq!(secure_boot.source, SignalSource::Declared);
    let tpm = report.signal(SignalKind::Tpm).unwrap();
    assert_eq!(tpm.value, SignalValue::NotMeasurable);
    assert_eq!(tpm.source, SignalSource::Measured);
    assert_eq!(report.signals().len(), 9);
    // Without `collect = true` the collectors do not run.
    let declared_only = Profile::parse("[signals]\nsecure-boot = \"ok\"\n").unwrap();
    assert_eq!(
        declared_only
            .report_with_collectors(root.path(), NOW)
            .signals()
            .len(),
        1
    );
}

#[test]
fn malformed_profiles_are_refused_with_the_key_and_line() {
    check_refused(
        "[signals]\nsecure-boot = \"ok\"\nsecure-bot = \"ok\"\n",
        &["line 3", "unknown variant `secure-bot`"],
    );
    check_refused(
        "[signals]\nsecure-boot = \"fine\"\n",
        &["line 2", "unknown variant `fine`", "not-measurable"],
    );
    check_refused(
        "[device]\nname = \"x\"\n[extra]\na = 1\n",
        &["line 3", "unknown field `extra`"],
    );
    check_refused("score = 99\n", &["line 1", "unknown field `score`"]);
    check_refused(
        "[device]\nname = \"x\"\nowner = \"y\"\n",
        &["line 3", "unknown field `owner`"],
    );
    check_refused(
        "[hardware]\nserial = \"x\"\nuuid = \"y\"\n",
        &["line 3", "unknown field `uuid`"],
    );
    check_refused(
        "[signals]\ntpm = \"ok\"\ntpm = \"failed\"\n",
        &["line 3", "duplicate key"],
    );
    check_refused(
        "[device]\npatch_level = \"2026-13-01\"\n",
        &["`device.patch_level`", "`2026-13-01`"],
    );
    check_refused("[signals\n", &["line 1"]);
}

#[test]
fn refusals_never_repeat_hardware_identifiers() {
    for text in [
        "[hardware]\nimei = 356938035643809\n",
        "[hardware]\nserial = \"ENIGM-SERIAL-XYZ\"\nimei = 356938035643809\n",
        "[hardware]\nserial = \"ENIGM-SERIAL-XYZ\"\nserial = \"ENIGM-SERIAL-XYZ\"\n",
        "[hardware]\nserial = \"ENIGM-SERIAL-XYZ\" junk\n",
    ] {
        let error = Profile::parse(text).unwrap_err().to_string();
        assert!(!error.contains("356938035643809"), "{error}");
        assert!(!error.contains("ENIGM-SERIAL-XYZ"), "{error}");
        assert!(error.contains("line "), "{error}");
    }
    check_refused(
        "[hardware]\nimei = 356938035643809\n",
        &["line 2", "must be quoted strings"],
    );
}

#[test]
fn oversized_profiles_are_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.toml");
    let mut text = String::from("[signals]\ntpm = \"ok\"\n");
    while text.len() as u64 <= MAX_PROFILE_BYTES {
        text.push_str("# padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&path, &text).unwrap();
    assert!(matches!(Profile::load(&path), Err(ProfileError::TooLarge)));
    assert!(matches!(Profile::parse(&text), Err(ProfileError::TooLarge)));
    assert_eq!(
        ProfileError::TooLarge.to_string(),
        "profile is larger than 64 KiB"
    );
    std::fs::write(&path, [0xff, 0xfe]).unwrap();
    assert!(matches!(Profile::load(&path), Err(ProfileError::NotUtf8)));
    assert!(matches!(
        Profile::load(&dir.path().join("missing.toml")),
        Err(ProfileError::Read { .. })
    ));
}
