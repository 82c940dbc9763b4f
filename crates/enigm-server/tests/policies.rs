//! Policies as Command objects through the real router, on SQLite and PostgreSQL: a named
//! policy, a version and an assignment each wait for a second administrator (the requester's
//! own approval is refused), are audited with the policy, version and groups (never the
//! content), and after approval the devices of the assigned group, and only those, are
//! evaluated under the new policy at their next check-in, also by another Command process on
//! the same database. Bad input answers 4xx and changes nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod support;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use enigm_api::paths;
use enigm_test_support::device::CRITICAL_SIGNALS;
use enigm_test_support::{Backend, backend_tests};
use enigm_types::{Actor, AuditAction, AuditTarget, GroupName, Role};
use serde_json::{Value, json};
use support::{Admin, DeviceCalls as _, TestApp, approve, enrolled_in, protected};

/// The eligibility decision reads the device's effective policies too: an attestation policy
/// assigned to its group that requires attestation for the sensitive channels denies the
/// network to an unattested device of that group (and only of that group).
async fn eligibility_follows_the_group_assignment(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_in_group, in_group) = enrolled_in(&app, "field-team").await;
    let (_elsewhere, elsewhere) = enrolled_in(&app, "office").await;
    let allow = json!({"decision": "allow"});
    assert_eq!(network(&app, &in_group).await, allow);

    let security = app
        .admin_with_roles("sec-admin", &[Role::SecurityAdmin])
        .await;
    let policy = create_policy(&app, &security, "attest-channels", "attestation").await;
    let content = json!({"required_for": {"sensitive_channels": true}});
    let version = request_version(&app, &security, &policy, content).await;
    assert_eq!(
        approve(&app, &app.owner, &version).await.status,
        StatusCode::OK
    );
    let assign = request_assign(&app, &security, &policy, 1, &["field-team"]).await;
    assert_eq!(
        approve(&app, &app.owner, &assign).await.status,
        StatusCode::OK
    );
    assert_eq!(
        network(&app, &in_group).await,
        json!({"decision": "deny", "reason": "missing_attestation"})
    );
    assert_eq!(network(&app, &elsewhere).await, allow);
}

async fn network(app: &TestApp, handle: &str) -> Value {
    let body = json!({"device": handle, "action": "network"});
    app.call(
        Method::POST,
        paths::ELIGIBILITY,
        Some(&app.owner),
        None,
        Some(body),
    )
    .await
    .body
}

backend_tests!(
    eligibility_follows_the_group_assignment,
    a_policy_change_waits_for_a_second_admin_and_reaches_only_its_group,
    another_process_uses_the_new_policy_at_the_next_check_in,
    bad_policy_input_is_refused_and_changes_nothing,
    concurrent_approvals_of_a_policy_change_execute_once,
    a_group_network_policy_routes_its_devices_flows,
    bad_network_policies_and_flows_are_refused_and_change_nothing,
);

/// The baseline's critical signals plus `tpm`, which the protected report does not carry: a
/// device that was PROTECTED misses a critical signal under it.
fn stricter() -> Value {
    let mut critical: Vec<&str> = CRITICAL_SIGNALS.to_vec();
    critical.push("tpm");
    json!({"critical": critical, "max_signal_age_seconds": 3600})
}

async fn post(app: &TestApp, admin: &Admin, path: &str, body: Value) -> support::Response {
    app.call(Method::POST, path, Some(admin), Some(admin.pin), Some(body))
        .await
}

/// Creates the policy `name` of `kind`; its id.
async fn create_policy(app: &TestApp, admin: &Admin, name: &str, kind: &str) -> String {
    let created = post(
        app,
        admin,
        paths::POLICIES,
        json!({"name": name, "kind": kind}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body["id"].as_str().unwrap().to_owned()
}

/// Requests a version; the approval's id.
async fn request_version(app: &TestApp, admin: &Admin, policy: &str, content: Value) -> String {
    let requested = post(
        app,
        admin,
        &paths::fill(paths::POLICY_VERSIONS, &[policy]),
        json!({"content": content, "justification": "ticket 12: require a TPM"}),
    )
    .await;
    assert_eq!(
        requested.status,
        StatusCode::ACCEPTED,
        "{:?}",
        requested.body
    );
    assert_eq!(requested.body["approval"]["kind"], "policy-change");
    assert_eq!(
        requested.body["approval"]["subject"]["kind"],
        "policy-version-create"
    );
    requested.body["approval"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn request_assign(
    app: &TestApp,
    admin: &Admin,
    policy: &str,
    version: u32,
    groups: &[&str],
) -> String {
    let requested = post(
        app,
        admin,
        &paths::fill(paths::POLICY_ASSIGN, &[policy]),
        json!({"version": version, "groups": groups, "justification": "ticket 12: roll out"}),
    )
    .await;
    assert_eq!(
        requested.status,
        StatusCode::ACCEPTED,
        "{:?}",
        requested.body
    );
    assert_eq!(
        requested.body["approval"]["subject"]["groups"],
        json!(groups)
    );
    requested.body["approval"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn device_view(app: &TestApp, handle: &str) -> Value {
    let response = app
        .get(&paths::fill(paths::DEVICE, &[handle]), &app.owner)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    response.body
}

fn trust_policy_view(view: &Value) -> Value {
    view["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|policy| policy["kind"] == "trust")
        .cloned()
        .unwrap()
}

async fn a_policy_change_waits_for_a_second_admin_and_reaches_only_its_group(backend: Backend) {
    let app = TestApp::new(backend).await;
    let security = app
        .admin_with_roles("sec-admin", &[Role::SecurityAdmin])
        .await;
    let (in_group, in_group_handle) = enrolled_in(&app, "field-team").await;
    let (elsewhere, elsewhere_handle) = enrolled_in(&app, "office").await;
    assert_eq!(
        trust_policy_view(&device_view(&app, &in_group_handle).await)["source"],
        "baseline"
    );

    // A version: not a version until another administrator approves.
    let policy = create_policy(&app, &security, "strict-field", "trust").await;
    let approval = request_version(&app, &security, &policy, stricter()).await;
    let shown = app
        .get(&paths::fill(paths::POLICY, &[&policy]), &app.owner)
        .await;
    assert_eq!(shown.body["versions"], json!([]));
    let own = approve(&app, &security, &approval).await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{:?}", own.body);
    assert_eq!(own.code(), "self_approval");
    let approved = approve(&app, &app.owner, &approval).await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    let version = app
        .get(
            &paths::fill(paths::POLICY_VERSION, &[&policy, "1"]),
            &app.owner,
        )
        .await;
    assert_eq!(version.status, StatusCode::OK, "{:?}", version.body);
    assert_eq!(
        version.body["content"]["critical"]
            .as_array()
            .unwrap()
            .len(),
        7
    );

    // A second version and the diff between them.
    let mut relaxed = stricter();
    relaxed["max_signal_age_seconds"] = json!(7200);
    let second = request_version(&app, &security, &policy, relaxed).await;
    assert_eq!(
        approve(&app, &app.owner, &second).await.status,
        StatusCode::OK
    );
    let diff = app
        .get(
            &format!(
                "{}?from=1&to=2",
                paths::fill(paths::POLICY_DIFF, &[&policy])
            ),
            &app.owner,
        )
        .await;
    assert_eq!(diff.status, StatusCode::OK, "{:?}", diff.body);
    let text = diff.body["diff"].as_str().unwrap();
    assert!(
        text.contains("-  \"max_signal_age_seconds\": 3600"),
        "{text}"
    );
    assert!(
        text.contains("+  \"max_signal_age_seconds\": 7200"),
        "{text}"
    );

    // An assignment of version 1 to `field-team`: nothing changes until it is approved.
    let assign = request_assign(&app, &security, &policy, 1, &["field-team"]).await;
    let before = in_group.check_in(&app, protected(&app)).await;
    assert_eq!(before.body["state"], "PROTECTED", "{:?}", before.body);
    assert_eq!(
        approve(&app, &security, &assign).await.code(),
        "self_approval"
    );
    let approved = approve(&app, &app.owner, &assign).await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);

    // The next check-in of the group's device is evaluated under it; the other group's not.
    let after = in_group.check_in(&app, protected(&app)).await;
    assert_eq!(after.status, StatusCode::OK, "{:?}", after.body);
    assert_ne!(after.body["state"], "PROTECTED", "{:?}", after.body);
    let other = elsewhere.check_in(&app, protected(&app)).await;
    assert_eq!(other.body["state"], "PROTECTED", "{:?}", other.body);

    // The device says which policy is in force and where it comes from.
    let shown = trust_policy_view(&device_view(&app, &in_group_handle).await);
    assert_eq!(shown["source"], "group-assignment");
    assert_eq!(shown["name"], "strict-field");
    assert_eq!(shown["version"], 1);
    assert_eq!(shown["policy"], policy.as_str());
    assert_eq!(
        trust_policy_view(&device_view(&app, &elsewhere_handle).await)["source"],
        "baseline"
    );
    let assignments = app.get(paths::POLICY_ASSIGNMENTS, &app.owner).await;
    assert_eq!(assignments.body["items"][0]["group"], "field-team");
    assert_eq!(assignments.body["items"][0]["version"], 1);

    // The audit log: who, which policy, version and group, with the approval; no content.
    let events = app.audit_events().await;
    let assigned = events
        .iter()
        .find(|event| event.action == AuditAction::PolicyAssign)
        .unwrap();
    assert_eq!(assigned.actor, Actor::Admin(app.owner.id));
    assert_eq!(
        assigned.target,
        AuditTarget::Policy {
            policy: policy.parse().unwrap(),
            kind: enigm_types::PolicyKind::Trust,
            version: Some(1),
            group: Some(GroupName::parse("field-team").unwrap()),
        }
    );
    assert_eq!(assigned.change_ref.unwrap().to_string(), assign);
    let versions: Vec<Option<u32>> = events
        .iter()
        .filter(|event| event.action == AuditAction::PolicyVersionCreate)
        .map(|event| match event.target {
            AuditTarget::Policy { version, .. } => version,
            _ => None,
        })
        .collect();
    assert_eq!(versions, vec![Some(1), Some(2)]);
    let requested_by = events
        .iter()
        .find(|event| {
            event.action == AuditAction::ApprovalRequest
                && event.change_ref.map(|id| id.to_string()) == Some(assign.clone())
        })
        .unwrap();
    assert_eq!(requested_by.actor, Actor::Admin(security.id));
    let encoded: String = events
        .iter()
        .map(|event| String::from_utf8(event.canonical_bytes()).unwrap())
        .collect();
    assert!(
        !encoded.contains("max_signal_age"),
        "content in the audit log"
    );

    // Unassigned (again through an approval): the device falls back to what it enrolled with.
    let unassign = post(
        &app,
        &security,
        &paths::fill(paths::POLICY_UNASSIGN, &[&policy]),
        json!({"groups": ["field-team"], "justification": "ticket 13: back out"}),
    )
    .await;
    assert_eq!(unassign.status, StatusCode::ACCEPTED, "{:?}", unassign.body);
    let unassign = unassign.body["approval"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        approve(&app, &app.owner, &unassign).await.status,
        StatusCode::OK
    );
    let back = in_group.check_in(&app, protected(&app)).await;
    assert_eq!(back.body["state"], "PROTECTED", "{:?}", back.body);
    assert_eq!(
        trust_policy_view(&device_view(&app, &in_group_handle).await)["source"],
        "baseline"
    );
}

async fn another_process_uses_the_new_policy_at_the_next_check_in(backend: Backend) {
    let app = TestApp::new(backend).await;
    let security = app
        .admin_with_roles("sec-admin", &[Role::SecurityAdmin])
        .await;
    let second = app.second_process().await;
    let (device, _) = enrolled_in(&app, "field-team").await;
    // The second process caches the device's policy at its first check-in there.
    let body = enigm_test_support::device::check_in(protected(&app));
    let send_to_second = |body: &Value| {
        support::send(
            second.clone(),
            device
                .post(paths::DEVICE_CHECK_INS, body, app.clock_now())
                .map(Body::from),
        )
    };
    let first = send_to_second(&body).await;
    assert_eq!(first.body["state"], "PROTECTED", "{:?}", first.body);

    // The change is requested and approved through the first process.
    let policy = create_policy(&app, &security, "strict-field", "trust").await;
    let approval = request_version(&app, &security, &policy, stricter()).await;
    assert_eq!(
        approve(&app, &app.owner, &approval).await.status,
        StatusCode::OK
    );
    let assign = request_assign(&app, &security, &policy, 1, &["field-team"]).await;
    assert_eq!(
        approve(&app, &app.owner, &assign).await.status,
        StatusCode::OK
    );

    // The second process evaluates the next check-in under the new policy.
    let next = send_to_second(&body).await;
    assert_eq!(next.status, StatusCode::OK, "{:?}", next.body);
    assert_ne!(next.body["state"], "PROTECTED", "{:?}", next.body);
}

async fn bad_policy_input_is_refused_and_changes_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let owner = app.owner.clone();
    let policy = create_policy(&app, &owner, "strict-field", "trust").await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let events_before = app.audit_events().await.len();
    let cases: Vec<(String, Value, StatusCode, &str)> = vec![
        (
            paths::POLICIES.to_owned(),
            json!({"name": "strict-field", "kind": "trust"}),
            StatusCode::CONFLICT,
            "policy_exists",
        ),
        (
            paths::POLICIES.to_owned(),
            json!({"name": "conf", "kind": "configuration"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "policy_kind_not_supported",
        ),
        (
            paths::POLICIES.to_owned(),
            json!({"name": "Bad Name", "kind": "trust"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_policy_name",
        ),
        (
            paths::POLICIES.to_owned(),
            json!({"name": "x", "kind": "trust", "extra": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
        (
            paths::fill(paths::POLICY_VERSIONS, &[&unknown]),
            json!({"content": stricter(), "justification": "x"}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            paths::fill(paths::POLICY_VERSIONS, &[&policy]),
            json!({"content": {"critical": [], "max_signal_age_seconds": 0}, "justification": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_policy",
        ),
        (
            paths::fill(paths::POLICY_VERSIONS, &[&policy]),
            json!({"content": {"critical": ["tpm"], "max_signal_age_seconds": 60, "colour": 1}, "justification": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_policy",
        ),
        (
            paths::fill(paths::POLICY_ASSIGN, &[&policy]),
            json!({"version": 9, "groups": ["field-team"], "justification": "x"}),
            StatusCode::CONFLICT,
            "no_such_version",
        ),
        (
            paths::fill(paths::POLICY_ASSIGN, &[&policy]),
            json!({"version": 1, "groups": ["Not A Group"], "justification": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
        (
            paths::fill(paths::POLICY_UNASSIGN, &[&policy]),
            json!({"groups": ["field-team"], "justification": "x"}),
            StatusCode::CONFLICT,
            "not_assigned",
        ),
    ];
    for (path, body, status, code) in cases {
        let response = post(&app, &owner, &path, body.clone()).await;
        assert_eq!(
            response.status, status,
            "{path} {body}: {:?}",
            response.body
        );
        if !code.is_empty() {
            assert_eq!(response.code(), code, "{path} {body}");
        }
        assert!(response.body["message"].is_string(), "{:?}", response.body);
    }
    let missing = app
        .get(&paths::fill(paths::POLICY_VERSION, &[&policy, "3"]), &owner)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let missing = app
        .get(
            &format!(
                "{}?from=1&to=2",
                paths::fill(paths::POLICY_DIFF, &[&policy])
            ),
            &owner,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let listed = app.get(paths::POLICIES, &owner).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed.body["items"][0]["latest_version"], Value::Null);
    let approvals = app.get(paths::APPROVALS, &owner).await;
    assert_eq!(
        approvals.body.as_array().map_or(0, Vec::len)
            + approvals.body["items"].as_array().map_or(0, Vec::len),
        0,
        "{:?}",
        approvals.body
    );
    let changed = app
        .audit_events()
        .await
        .iter()
        .skip(events_before)
        .filter(|event| {
            event.outcome == enigm_types::Outcome::Success
                && event.action.as_str().starts_with("policy.")
        })
        .count();
    assert_eq!(changed, 0);
}

async fn concurrent_approvals_of_a_policy_change_execute_once(backend: Backend) {
    let app = TestApp::new(backend).await;
    let security = app
        .admin_with_roles("sec-admin", &[Role::SecurityAdmin])
        .await;
    let mut approvers = Vec::new();
    for index in 0..4 {
        approvers.push(
            app.admin_with_roles(&format!("approver-{index}"), &[Role::SecurityAdmin])
                .await,
        );
    }
    let policy = create_policy(&app, &security, "strict-field", "trust").await;
    let approval = request_version(&app, &security, &policy, stricter()).await;
    let path = paths::fill(paths::APPROVAL_APPROVE, &[&approval]);
    let tasks: Vec<_> = approvers
        .iter()
        .map(|admin| app.spawn_call(Method::POST, &path, admin, Some(admin.pin)))
        .collect();
    let mut ok = 0;
    for task in tasks {
        if task.await.unwrap().status == StatusCode::OK {
            ok += 1;
        }
    }
    assert_eq!(ok, 1);
    let shown = app
        .get(&paths::fill(paths::POLICY, &[&policy]), &app.owner)
        .await;
    assert_eq!(shown.body["versions"].as_array().unwrap().len(), 1);
    let executed = app
        .audit_events()
        .await
        .iter()
        .filter(|event| event.action == AuditAction::PolicyVersionCreate)
        .count();
    assert_eq!(executed, 1);
}

/// A network policy: apps go through the Enigm Proxy, a named blocklist blocks first, chat may
/// use the `de-fra` VPN on untrusted networks, and everything else is denied by default.
fn network_policy() -> Value {
    json!({
        "version": 1,
        "trusted_networks": ["office"],
        "blocklists": {"threats": {"domains": ["evil.example"], "cidrs": ["203.0.113.0/24"]}},
        "layers": [
            {"id": "threats", "rules": [
                {"id": "block-threats", "match": {"blocklist": "threats"},
                 "action": {"block": {"reason": "malware"}}}
            ]},
            {"id": "routing", "rules": [
                {"id": "chat-vpn", "match": {"apps": ["chat"], "network": "untrusted"},
                 "action": {"route": {"vpn": "de-fra"}}},
                {"id": "apps-proxy", "match": {"apps": ["browser", "chat", "mail"]},
                 "action": {"route": "enigm-proxy"}}
            ]}
        ]
    })
}

async fn network_decision(app: &TestApp, handle: &str, flow: Value) -> support::Response {
    app.call(
        Method::POST,
        &paths::fill(paths::DEVICE_NETWORK_DECISION, &[handle]),
        Some(&app.owner),
        None,
        Some(flow),
    )
    .await
}

/// Route, rule and block reason of a decision that must be answered.
async fn routed(app: &TestApp, handle: &str, flow: Value) -> (String, String, Value) {
    let answer = network_decision(app, handle, flow).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    (
        answer.body["route"].as_str().unwrap().to_owned(),
        answer.body["rule"].as_str().unwrap().to_owned(),
        answer.body["reason"].clone(),
    )
}

/// Until a network policy is assigned (by approval) to its group, every flow of a device is
/// blocked (`no-policy`); after, the group's devices are routed by it, with the rule that
/// decided, and devices of other groups stay blocked. A device being retired is blocked.
/// Every decision is audited with the route's category, the policy version and the rule, and
/// no audit event carries the flow's app, domain or address.
async fn a_group_network_policy_routes_its_devices_flows(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_in_group, in_group) = enrolled_in(&app, "field-team").await;
    let (_elsewhere, elsewhere) = enrolled_in(&app, "office").await;
    let browse = json!({"app": "browser", "domain": "news.example.org"});

    let before = network_decision(&app, &in_group, browse.clone()).await;
    assert_eq!(before.status, StatusCode::OK, "{:?}", before.body);
    assert_eq!(before.body["route"], "block");
    assert_eq!(before.body["reason"], "no-policy");
    assert_eq!(before.body["rule"], "fail-closed");
    assert!(before.body.get("policy").is_none(), "{:?}", before.body);

    let security = app
        .admin_with_roles("sec-admin", &[Role::SecurityAdmin])
        .await;
    let policy = create_policy(&app, &security, "field-network", "network").await;
    let version = request_version(&app, &security, &policy, network_policy()).await;
    assert_eq!(
        approve(&app, &app.owner, &version).await.status,
        StatusCode::OK
    );
    let assign = request_assign(&app, &security, &policy, 1, &["field-team"]).await;
    assert_eq!(
        approve(&app, &app.owner, &assign).await.status,
        StatusCode::OK
    );

    let answer = network_decision(&app, &in_group, browse.clone()).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["route"], "enigm-proxy");
    assert_eq!(answer.body["rule"], "apps-proxy");
    assert_eq!(answer.body["policy"]["name"], "field-network");
    assert_eq!(answer.body["policy"]["version"], 1);
    assert_eq!(answer.body["trust_state"], "PROTECTED");
    assert_eq!(answer.body["lifecycle"], "trusted");
    assert_eq!(
        answer.body["layers"],
        json!([{"layer": "threats"}, {"layer": "routing", "rule": "apps-proxy"}])
    );
    let cases = [
        (
            json!({"app": "browser", "domain": "cdn.evil.example"}),
            "block",
            "block-threats",
            json!("malware"),
        ),
        (
            json!({"app": "mail", "address": "203.0.113.9"}),
            "block",
            "block-threats",
            json!("malware"),
        ),
        (
            json!({"app": "chat", "domain": "chat.example.net"}),
            "vpn",
            "chat-vpn",
            Value::Null,
        ),
        (
            json!({"app": "chat", "domain": "chat.example.net", "network": "office"}),
            "enigm-proxy",
            "apps-proxy",
            Value::Null,
        ),
        (
            json!({"app": "game", "domain": "play.example.com"}),
            "block",
            "default",
            json!("default-deny"),
        ),
        (
            json!({"domain": "news.example.org"}),
            "block",
            "fail-closed",
            json!("missing-input"),
        ),
    ];
    for (flow, route, rule, reason) in cases {
        assert_eq!(
            routed(&app, &in_group, flow.clone()).await,
            (route.to_owned(), rule.to_owned(), reason),
            "{flow}"
        );
    }
    let vpn = network_decision(
        &app,
        &in_group,
        json!({"app": "chat", "domain": "a.example"}),
    )
    .await;
    assert_eq!(vpn.body["location"], "de-fra");
    assert_eq!(
        routed(&app, &elsewhere, browse.clone()).await,
        (
            "block".to_owned(),
            "fail-closed".to_owned(),
            json!("no-policy")
        )
    );

    // Retiring waits for the device's acknowledgement; meanwhile nothing is routed.
    let retire = support::lifecycle(&app, &app.owner, &in_group, "retire").await;
    assert!(retire.status.is_success(), "{:?}", retire.body);
    assert_eq!(
        routed(&app, &in_group, browse).await,
        (
            "block".to_owned(),
            "fail-closed".to_owned(),
            json!("device-not-active")
        )
    );

    let events = app.audit_events().await;
    let decisions: Vec<_> = events
        .iter()
        .filter(|event| event.action == AuditAction::DeviceNetworkDecision)
        .collect();
    assert_eq!(decisions.len(), 11, "one event per decision");
    let policy_id: enigm_types::PolicyId = policy.parse().unwrap();
    let proxied = decisions
        .iter()
        .find(|event| {
            matches!(event.target, AuditTarget::NetworkDecision { route, rule, .. }
                if route == enigm_types::NetworkRoute::EnigmProxy && rule.as_str() == "apps-proxy")
        })
        .expect("the proxied flow's event");
    assert_eq!(proxied.outcome, enigm_types::Outcome::Success);
    assert!(matches!(
        proxied.target,
        AuditTarget::NetworkDecision { policy: Some(id), version: Some(1), .. } if id == policy_id
    ));
    let blocked = decisions
        .iter()
        .find(|event| {
            matches!(event.target, AuditTarget::NetworkDecision { rule, .. }
                if rule.as_str() == "block-threats")
        })
        .expect("the blocked flow's event");
    assert_eq!(blocked.outcome, enigm_types::Outcome::Denied);
    assert_eq!(
        blocked.reason,
        Some(enigm_types::ReasonCategory::NetworkBlocked)
    );
    let recorded = serde_json::to_string(&events).unwrap();
    for flow_detail in [
        "evil.example",
        "news.example.org",
        "203.0.113",
        "chat.example.net",
        "browser",
        "de-fra",
    ] {
        assert!(
            !recorded.contains(flow_detail),
            "the audit log names `{flow_detail}`"
        );
    }
}

/// A network policy that does not parse or compile is refused as `invalid_policy` (and no
/// approval is opened); a flow that is malformed or too large, or a device that does not exist,
/// is refused with a clear code and no decision is made or audited.
async fn bad_network_policies_and_flows_are_refused_and_change_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let owner = app.owner.clone();
    let (_device, handle) = enrolled_in(&app, "field-team").await;
    let policy = create_policy(&app, &owner, "strict-network", "network").await;
    let events_before = app.audit_events().await.len();
    let route_all = json!({"id": "all", "match": {}, "action": {"route": "direct"}});
    let bad_policies = [
        json!({"version": 1, "layers": [{"id": "l", "rules": [route_all]}]}),
        json!({"version": 2, "layers": []}),
        json!({"version": 1, "layers": [], "extra": true}),
        json!({"version": 1, "layers": [{"id": "l", "rules": [
            {"id": "r", "match": {"blocklist": "missing"}, "action": {"block": {"reason": "x"}}}]}]}),
        json!({"version": 1, "layers": [{"id": "l", "rules": [
            {"id": "r", "match": {"cidrs": ["10.0.0.0/33"]}, "action": {"route": "tor-gateway"}}]}]}),
        json!({"version": 1, "layers": [{"id": "l", "rules": [
            {"id": "r", "match": {}, "action": {"block": {"reason": "default-deny"}}}]}]}),
        json!("not a policy"),
    ];
    for content in bad_policies {
        let refused = post(
            &app,
            &owner,
            &paths::fill(paths::POLICY_VERSIONS, &[&policy]),
            json!({"content": content, "justification": "ticket 13"}),
        )
        .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{content}: {:?}",
            refused.body
        );
        assert_eq!(refused.body["code"], "invalid_policy", "{content}");
    }

    let long = "a".repeat(254);
    let bad_flows = [
        (
            json!({"app": "browser", "domain": long}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"app": "a".repeat(129), "domain": "x.example"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"app": "browser", "domain": "x.example", "port": 443}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"app": "browser", "address": "300.1.2.3"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"app": 7, "domain": "x.example"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (flow, status) in bad_flows {
        let refused = network_decision(&app, &handle, flow.clone()).await;
        assert_eq!(refused.status, status, "{flow}: {:?}", refused.body);
        assert!(
            refused.body["code"].is_string(),
            "{flow}: {:?}",
            refused.body
        );
    }
    let unknown = enigm_types::DeviceHandle::from_digest(&[7; 20]).to_string();
    let missing = network_decision(
        &app,
        &unknown,
        json!({"app": "browser", "domain": "x.example"}),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{:?}", missing.body);

    let changed: Vec<_> = app
        .audit_events()
        .await
        .into_iter()
        .skip(events_before)
        .filter(|event| {
            event.action == AuditAction::DeviceNetworkDecision
                || (event.outcome == enigm_types::Outcome::Success
                    && event.action.as_str().starts_with("policy."))
        })
        .collect();
    assert_eq!(changed, Vec::new(), "a refusal changes and decides nothing");
    let listed = app
        .call(Method::GET, paths::APPROVALS, Some(&owner), None, None)
        .await;
    assert_eq!(listed.body, json!([]), "no approval was opened");
}
