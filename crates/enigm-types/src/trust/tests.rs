#![allow(clippy::unwrap_used, reason = "tests")]

use super::*;

fn finding() -> Finding {
    Finding {
        kind: FindingKind::ProtectionDegraded,
        severity: Severity::High,
        signal: Some(SignalKind::Firewall),
        critical: true,
        source: SignalSource::Collector,
    }
}

#[test]
fn findings_serialise_with_their_texts_and_decode_without_trusting_them() {
    let json = serde_json::to_string(&finding()).unwrap();
    assert_eq!(
        json,
        r#"{"kind":"protection-degraded","severity":"High","signal":"firewall","critical":true,"source":"collector","description":"This protection is active but weakened or needs attention.","recommendation":"Review the protection's configuration with your security team."}"#
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
fn gate_status_is_gate_and_result() {
    let status = GateStatus::from((ProductionGate::UpdateIntegrity, GateResult::NotApplicable));
    let json = serde_json::to_string(&status).unwrap();
    assert_eq!(
        json,
        r#"{"gate":"update-integrity","result":"not-applicable"}"#
    );
    assert_eq!(serde_json::from_str::<GateStatus>(&json).unwrap(), status);
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
