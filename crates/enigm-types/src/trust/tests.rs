#![allow(clippy::unwrap_used, reason = "tests")]

use super::*;

fn finding() -> Finding {
    Finding {
        kind: FindingKind::ProtectionDegraded,
        severity: Severity::High,
        signal: Some(SignalKind::Firewall),
        critical: true,
        source: SignalSource::Measured,
        reported_source: None,
        required_source: None,
    }
}

#[test]
fn findings_serialise_with_their_texts_and_decode_without_trusting_them() {
    let json = serde_json::to_string(&finding()).unwrap();
    assert_eq!(
        json,
        r#"{"kind":"protection-degraded","severity":"High","signal":"firewall","critical":true,"source":"measured","description":"This protection is active but weakened or needs attention.","recommendation":"Review the protection's configuration with your security team."}"#
    );
    assert_eq!(serde_json::from_str::<Finding>(&json).unwrap(), finding());
    // Stored texts are this build's to derive: an old or altered text does not survive decoding.
    let altered = json.replace("weakened", "fine");
    let decoded: Finding = serde_json::from_str(&altered).unwrap();
    assert_eq!(decoded.description(), finding().description());
    let bare = r#"{"kind":"signal-missing","severity":"Critical","signal":null,"critical":true,"source":"engine"}"#;
    assert_eq!(
        serde_json::from_str::<Finding>(bare).unwrap().kind,
        FindingKind::SignalMissing
    );
}

#[test]
fn findings_refuse_unknown_fields_and_names() {
    for bad in [
        r#"{"kind":"protection-degraded","severity":"High","signal":null,"critical":true,"source":"collector","score":3}"#,
        r#"{"kind":"protection-degraded","severity":"high","signal":null,"critical":true,"source":"collector"}"#,
        r#"{"kind":"degraded","severity":"High","signal":null,"critical":true,"source":"collector"}"#,
        r#"{"kind":"protection-degraded","severity":"High","critical":true}"#,
    ] {
        assert!(serde_json::from_str::<Finding>(bad).is_err(), "{bad}");
    }
}

#[test]
fn gate_status_is_gate_result_and_why() {
    let status = GateStatus {
        gate: ProductionGate::UpdateIntegrity,
        result: GateResult::Fail,
        because: vec![
            GateEvidence::Signal {
                signal: SignalKind::OtaVerification,
                check: SignalCheck::Ok,
                value: Some(SignalValue::Ok),
                source: Some(SignalSource::Measured),
            },
            GateEvidence::Signal {
                signal: SignalKind::RollbackProtection,
                check: SignalCheck::Missing,
                value: None,
                source: None,
            },
            GateEvidence::PatchLevel {
                check: PatchLevelCheck::BelowMinimum,
            },
        ],
    };
    let json = serde_json::to_string(&status).unwrap();
    assert_eq!(
        json,
        r#"{"gate":"update-integrity","result":"fail","because":[{"evidence":"signal","signal":"ota-verification","check":"ok","value":"ok","source":"measured"},{"evidence":"signal","signal":"rollback-protection","check":"missing","value":null,"source":null},{"evidence":"patch-level","check":"below-minimum"}]}"#
    );
    assert_eq!(serde_json::from_str::<GateStatus>(&json).unwrap(), status);
    let not_managed = GateStatus {
        gate: ProductionGate::DeviceManagement,
        result: GateResult::NotApplicable,
        because: vec![GateEvidence::NotManaged],
    };
    let json = serde_json::to_string(&not_managed).unwrap();
    assert_eq!(
        json,
        r#"{"gate":"device-management","result":"not-applicable","because":[{"evidence":"not-managed"}]}"#
    );
    assert_eq!(
        serde_json::from_str::<GateStatus>(&json).unwrap(),
        not_managed
    );
}

#[test]
fn gate_statuses_stored_before_explanations_still_load() {
    let old = r#"{"gate":"update-integrity","result":"not-applicable"}"#;
    assert_eq!(
        serde_json::from_str::<GateStatus>(old).unwrap(),
        GateStatus::unexplained(ProductionGate::UpdateIntegrity, GateResult::NotApplicable)
    );
    for bad in [
        r#"{"gate":"boot-integrity","result":"fail","because":[{"evidence":"score","value":3}]}"#,
        r#"{"gate":"boot-integrity","result":"fail","because":[{"evidence":"patch-level","check":"met","score":3}]}"#,
        r#"{"gate":"boot-integrity","result":"fail","because":[{"evidence":"signal","signal":"tpm","check":"fine"}]}"#,
    ] {
        assert!(serde_json::from_str::<GateStatus>(bad).is_err(), "{bad}");
    }
}

#[test]
fn only_ok_signals_and_a_met_patch_level_count_as_ok() {
    for check in SignalCheck::ALL {
        let entry = GateEvidence::Signal {
            signal: SignalKind::Tpm,
            check,
            value: Some(SignalValue::Ok),
            source: Some(SignalSource::Declared),
        };
        assert_eq!(entry.is_ok(), check == SignalCheck::Ok, "{check}");
    }
    for check in PatchLevelCheck::ALL {
        let entry = GateEvidence::PatchLevel { check };
        assert_eq!(entry.is_ok(), check == PatchLevelCheck::Met, "{check}");
    }
    assert!(!GateEvidence::NotManaged.is_ok());
}

#[test]
fn trust_states_order_from_best_to_worst() {
    assert_eq!(
        TrustState::Protected.worst(TrustState::Inactive),
        TrustState::Inactive
    );
    assert_eq!(
        TrustState::ReviewRequired.worst(TrustState::Protected),
        TrustState::ReviewRequired
    );
    assert!(Severity::Info < Severity::Critical);
}

#[test]
fn sources_before_provenance_are_read_under_their_new_names() {
    // Stored postures and older agents say `collector` and `profile`.
    let old = r#"{"kind":"protection-degraded","severity":"High","signal":"firewall","critical":true,"source":"collector"}"#;
    assert_eq!(serde_json::from_str::<Finding>(old).unwrap(), finding());
    let profile: SignalSource = serde_json::from_str(r#""profile""#).unwrap();
    assert_eq!(profile, SignalSource::Declared);
    assert_eq!(
        SignalSource::from_name_or_alias("collector"),
        Ok(SignalSource::Measured)
    );
    assert_eq!(
        SignalSource::from_name_or_alias("attested"),
        Ok(SignalSource::Attested)
    );
    assert!(SignalSource::from_name_or_alias("Collector").is_err());
    // Written only under the new names.
    assert_eq!(
        serde_json::to_string(&SignalSource::Declared).unwrap(),
        r#""declared""#
    );
    // Attested > measured > declared > engine.
    let ranked = [
        SignalSource::Attested,
        SignalSource::Measured,
        SignalSource::Declared,
        SignalSource::Engine,
    ];
    for (i, stronger) in ranked.iter().enumerate() {
        for (j, weaker) in ranked.iter().enumerate() {
            assert_eq!(stronger.meets(*weaker), i <= j, "{stronger} vs {weaker}");
        }
    }
}

#[test]
fn provenance_fields_of_findings_round_trip_and_stay_absent_when_unset() {
    let contradiction = Finding {
        kind: FindingKind::SourceContradiction,
        severity: Severity::Critical,
        signal: Some(SignalKind::BootloaderLocked),
        critical: true,
        source: SignalSource::Attested,
        reported_source: Some(SignalSource::Declared),
        required_source: None,
    };
    let json = serde_json::to_string(&contradiction).unwrap();
    assert!(
        json.contains(r#""source":"attested","reported_source":"declared","description""#),
        "{json}"
    );
    assert!(!json.contains("required_source"), "{json}");
    assert_eq!(
        serde_json::from_str::<Finding>(&json).unwrap(),
        contradiction
    );
    assert!(
        !serde_json::to_string(&finding())
            .unwrap()
            .contains("_source")
    );
}
