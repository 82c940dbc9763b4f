use enigm_api::{
    AccountView, ApprovalRuleView, ApprovalSubject, ApprovalView, AuditEventView, ReleaseSubject,
    RouteView, SessionView,
};
use enigm_types::{
    AdminId, ApprovalAction, ApprovalId, ApprovalKind, ApprovalRule, ApprovalState, AuditAction,
    AuditEventId, Outcome, Permission, ReasonCategory, ReleaseId, Role, SessionId,
};
use uuid::Uuid;

use super::*;

const ALICE: &str = "1f0c2d3e-0000-4000-8000-000000000001";
const BOB: &str = "7a9b0c1d-0000-4000-8000-000000000002";

fn uuid(text: &str) -> Uuid {
    Uuid::parse_str(text).unwrap()
}

fn alice() -> AdminId {
    AdminId::from_uuid(uuid(ALICE))
}

fn bob() -> AdminId {
    AdminId::from_uuid(uuid(BOB))
}

/// Renders as a program sees it: no terminal, a fixed width.
fn render(mut table: Table) -> String {
    table.force_no_tty().set_width(120);
    table.to_string()
}

fn accounts() -> Vec<AccountView> {
    vec![
        AccountView {
            id: alice(),
            username: "alice".to_owned(),
            roles: vec![Role::Owner, Role::SecurityAdmin],
            disabled: false,
            totp_enabled: true,
            pin_set: true,
            pin_locked: false,
            password_change_required: false,
            at_risk: false,
            risk_raised_at: None,
            created_at: "2026-11-22T04:25:00.000Z".to_owned(),
        },
        AccountView {
            id: bob(),
            username: "bob".to_owned(),
            roles: vec![],
            disabled: true,
            totp_enabled: false,
            pin_set: true,
            pin_locked: true,
            password_change_required: false,
            at_risk: true,
            risk_raised_at: Some("2026-11-22T05:10:00.000Z".to_owned()),
            created_at: "2026-11-22T05:00:00.000Z".to_owned(),
        },
    ]
}

fn approvals() -> Vec<ApprovalView> {
    vec![
        ApprovalView {
            id: ApprovalId::from_uuid(uuid("c0ffee00-0000-4000-8000-000000000010")),
            kind: ApprovalKind::RoleGrant,
            action: ApprovalAction::RoleGrant {
                admin: bob(),
                role: Role::Auditor,
            },
            subject: ApprovalSubject::RoleGrant {
                admin: bob(),
                username: None,
                role: Role::Auditor,
            },
            state: ApprovalState::Pending,
            requester: alice(),
            justification: "quarterly access review\nticket SEC-42".to_owned(),
            required_approvals: 2,
            approver_roles: vec![Role::Owner, Role::SecurityAdmin],
            approvals: vec![alice()],
            rejected_by: None,
            created_at: "2026-11-22T06:00:00.000Z".to_owned(),
            expires_at: "2026-11-23T06:00:00.000Z".to_owned(),
        },
        ApprovalView {
            id: ApprovalId::from_uuid(uuid("decade00-0000-4000-8000-000000000011")),
            kind: ApprovalKind::ApprovalRuleChange,
            action: ApprovalAction::ApprovalRuleChange {
                target_kind: ApprovalKind::RoleGrant,
                rule: ApprovalRule::new(2, vec![Role::Owner, Role::SecurityAdmin]).unwrap(),
            },
            subject: ApprovalSubject::ApprovalRuleChange {
                target_kind: ApprovalKind::RoleGrant,
                required_approvals: 2,
                approver_roles: vec![Role::Owner, Role::SecurityAdmin],
            },
            state: ApprovalState::Rejected,
            requester: bob(),
            justification: "two-person rule".to_owned(),
            required_approvals: 1,
            approver_roles: vec![Role::Owner],
            approvals: vec![],
            rejected_by: Some(alice()),
            created_at: "2026-11-22T07:00:00.000Z".to_owned(),
            expires_at: "2026-11-23T07:00:00.000Z".to_owned(),
        },
        ApprovalView {
            id: ApprovalId::from_uuid(uuid("e418e7e9-0000-4000-8000-000000000012")),
            kind: ApprovalKind::ReleaseSigning,
            action: ApprovalAction::ReleaseSigning {
                release: ReleaseId::from_uuid(uuid("5e1ea5e0-0000-4000-8000-000000000013")),
            },
            subject: ApprovalSubject::ReleaseSigning {
                release: ReleaseId::from_uuid(uuid("5e1ea5e0-0000-4000-8000-000000000013")),
                details: Some(ReleaseSubject {
                    target_name: "os-image-1.4.2.bin".to_owned(),
                    kind: "os-image".to_owned(),
                    release_version: "1.4.2".to_owned(),
                    rollback_index: 7,
                    channel: "stable".to_owned(),
                    compatible_models: vec!["pixel-8".to_owned(), "pixel-9".to_owned()],
                    length: 1_048_576,
                    sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
                        .to_owned(),
                }),
            },
            state: ApprovalState::Pending,
            requester: alice(),
            justification: "monthly security patch".to_owned(),
            required_approvals: 1,
            approver_roles: vec![Role::ReleaseManager],
            approvals: vec![],
            rejected_by: None,
            created_at: "2026-11-22T08:00:00.000Z".to_owned(),
            expires_at: "2026-11-23T08:00:00.000Z".to_owned(),
        },
    ]
}

#[test]
fn account_list() {
    insta::assert_snapshot!(render(account_table(&accounts())));
}

#[test]
fn account_show() {
    insta::assert_snapshot!(render(account_detail(&accounts()[1])));
}

#[test]
fn session_list() {
    let sessions = vec![
        SessionView {
            id: SessionId::from_uuid(uuid("5e551011-0000-4000-8000-000000000020")),
            admin: alice(),
            created_at: "2026-11-22T04:25:00.000Z".to_owned(),
            last_seen_at: "2026-11-22T04:30:00.000Z".to_owned(),
            expires_at: "2026-11-22T10:25:00.000Z".to_owned(),
            current: true,
        },
        SessionView {
            id: SessionId::from_uuid(uuid("5e551022-0000-4000-8000-000000000021")),
            admin: bob(),
            created_at: "2026-11-22T05:00:00.000Z".to_owned(),
            last_seen_at: "2026-11-22T05:01:00.000Z".to_owned(),
            expires_at: "2026-11-22T11:00:00.000Z".to_owned(),
            current: false,
        },
    ];
    insta::assert_snapshot!(render(session_table(&sessions)));
}

#[test]
fn approval_list() {
    insta::assert_snapshot!(render(approval_table(&approvals(), &Names::new())));
}

#[test]
fn approval_list_with_known_names() {
    let names: Names = [(bob(), "bob".to_owned())].into_iter().collect();
    insta::assert_snapshot!(render(approval_table(&approvals(), &names)));
}

#[test]
fn approval_show_with_known_names() {
    let names: Names = [(alice(), "alice".to_owned()), (bob(), "bob".to_owned())]
        .into_iter()
        .collect();
    insta::assert_snapshot!(render(approval_detail(&approvals()[0], &names)));
}

#[test]
fn approval_show_without_names() {
    insta::assert_snapshot!(render(approval_detail(&approvals()[1], &Names::new())));
}

/// An approver sees the release in full before deciding: version, digest, models, channel.
#[test]
fn approval_show_release_signing() {
    insta::assert_snapshot!(render(approval_detail(&approvals()[2], &Names::new())));
}

#[test]
fn list_envelope_wraps_items_with_their_cursor() {
    let items = serde_json::json!([{"a": 1}]);
    assert_eq!(
        list_envelope(&items, Some("42".to_owned())),
        serde_json::json!({"items": [{"a": 1}], "next_cursor": "42"})
    );
    assert_eq!(
        list_envelope(&serde_json::json!([]), None),
        serde_json::json!({"items": [], "next_cursor": null})
    );
}

#[test]
fn rule_list() {
    let rules = vec![
        ApprovalRuleView {
            kind: ApprovalKind::RoleGrant,
            required_approvals: 1,
            approver_roles: vec![Role::Owner, Role::SecurityAdmin],
        },
        ApprovalRuleView {
            kind: ApprovalKind::ApprovalRuleChange,
            required_approvals: 2,
            approver_roles: vec![Role::Owner],
        },
    ];
    insta::assert_snapshot!(render(rule_table(&rules)));
}

#[test]
fn audit_list() {
    let events = vec![
        AuditEventView {
            seq: 41,
            id: AuditEventId::from_uuid(uuid("e0e0e0e0-0000-4000-8000-000000000030")),
            time: "2026-11-22T04:25:00.123Z".to_owned(),
            actor: "anonymous".to_owned(),
            action: AuditAction::AuthLogin,
            target_category: "account".to_owned(),
            target_ref: None,
            outcome: Outcome::Denied,
            change_ref: None,
            reason: Some(ReasonCategory::InvalidCredentials),
            count: None,
        },
        AuditEventView {
            seq: 42,
            id: AuditEventId::from_uuid(uuid("e0e0e0e0-0000-4000-8000-000000000031")),
            time: "2026-11-22T06:10:00.000Z".to_owned(),
            actor: format!("admin:{ALICE}"),
            action: AuditAction::RoleGrant,
            target_category: "role".to_owned(),
            target_ref: Some(format!("{BOB}/auditor")),
            outcome: Outcome::Success,
            change_ref: Some(ApprovalId::from_uuid(uuid(
                "c0ffee00-0000-4000-8000-000000000010",
            ))),
            reason: None,
            count: None,
        },
    ];
    insta::assert_snapshot!(render(audit_table(&events)));
}

#[test]
fn route_list() {
    let routes = vec![
        RouteView {
            method: "POST".to_owned(),
            path: "/api/v1/auth/login".to_owned(),
            permission: None,
            critical: false,
        },
        RouteView {
            method: "GET".to_owned(),
            path: "/api/v1/users".to_owned(),
            permission: Some(Permission::UsersList),
            critical: false,
        },
        RouteView {
            method: "POST".to_owned(),
            path: "/api/v1/users/{id}/disable".to_owned(),
            permission: Some(Permission::UsersDisable),
            critical: true,
        },
    ];
    insta::assert_snapshot!(render(route_table(&routes)));
}

#[test]
fn server_text_is_cleaned_of_control_characters() {
    let cases: &[(&str, &str)] = &[
        ("alice", "alice"),
        ("line one\nline two", "line one\nline two"),
        ("\u{1b}[31mred\u{1b}[0m", "\u{fffd}[31mred\u{fffd}[0m"),
        ("bell\u{7}\r", "bell\u{fffd}\u{fffd}"),
    ];
    for (input, expected) in cases {
        assert_eq!(clean(input), *expected, "input {input:?}");
    }
}

#[test]
fn uuids_in_text_are_shortened() {
    let cases: &[(String, String)] = &[
        (format!("admin:{ALICE}"), "admin:1f0c2d3e".to_owned()),
        (format!("{ALICE}/{BOB}"), "1f0c2d3e/7a9b0c1d".to_owned()),
        ("system".to_owned(), "system".to_owned()),
        ("users.create".to_owned(), "users.create".to_owned()),
        // Not canonical (upper case), so left alone.
        (ALICE.to_uppercase(), ALICE.to_uppercase()),
        ("ünïcode ✓".to_owned(), "ünïcode ✓".to_owned()),
    ];
    for (input, expected) in cases {
        assert_eq!(&shorten_ids(input), expected, "input `{input}`");
    }
}

#[test]
fn gate_list() {
    use enigm_types::{
        GateEvidence, GateResult, GateStatus, PatchLevelCheck, ProductionGate, SignalCheck,
        SignalKind, SignalSource, SignalValue,
    };
    let signal = |kind: SignalKind, check: SignalCheck, value, source| GateEvidence::Signal {
        signal: kind,
        check,
        value,
        source,
    };
    let ok = |kind: SignalKind, source| {
        signal(kind, SignalCheck::Ok, Some(SignalValue::Ok), Some(source))
    };
    let missing = |kind: SignalKind| signal(kind, SignalCheck::Missing, None, None);
    let gates = vec![
        GateStatus {
            gate: ProductionGate::NetworkSecurity,
            result: GateResult::Pass,
            because: vec![
                ok(SignalKind::Firewall, SignalSource::Measured),
                ok(SignalKind::EncryptedDns, SignalSource::Declared),
                ok(SignalKind::NetworkPolicyCompliance, SignalSource::Measured),
            ],
        },
        GateStatus {
            gate: ProductionGate::PlatformConfiguration,
            result: GateResult::Fail,
            because: vec![
                missing(SignalKind::DiskEncryption),
                ok(SignalKind::ScreenLock, SignalSource::Measured),
                signal(
                    SignalKind::UsbRestricted,
                    SignalCheck::NotOk,
                    Some(SignalValue::Degraded),
                    Some(SignalSource::Declared),
                ),
                missing(SignalKind::DebuggingDisabled),
            ],
        },
        GateStatus {
            gate: ProductionGate::BootIntegrity,
            result: GateResult::Fail,
            because: vec![
                ok(SignalKind::SecureBoot, SignalSource::Measured),
                signal(
                    SignalKind::VerifiedBoot,
                    SignalCheck::Stale,
                    Some(SignalValue::Ok),
                    Some(SignalSource::Measured),
                ),
                signal(
                    SignalKind::BootloaderLocked,
                    SignalCheck::FromFuture,
                    Some(SignalValue::Ok),
                    Some(SignalSource::Measured),
                ),
                ok(SignalKind::DeviceIntegrity, SignalSource::Measured),
            ],
        },
        GateStatus {
            gate: ProductionGate::UpdateIntegrity,
            result: GateResult::Fail,
            because: vec![
                ok(SignalKind::OtaVerification, SignalSource::Measured),
                ok(SignalKind::RollbackProtection, SignalSource::Measured),
                GateEvidence::PatchLevel {
                    check: PatchLevelCheck::BelowMinimum,
                },
            ],
        },
        GateStatus {
            gate: ProductionGate::DeviceManagement,
            result: GateResult::NotApplicable,
            because: vec![GateEvidence::NotManaged],
        },
        // A posture stored before gates kept their explanation.
        GateStatus::unexplained(ProductionGate::PrivacyControls, GateResult::Fail),
    ];
    insta::assert_snapshot!(render(gate_table(&gates)));
}
