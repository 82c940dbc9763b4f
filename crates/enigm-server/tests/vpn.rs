//! The VPN control plane through the real router, on SQLite and PostgreSQL (issue 16, item 4):
//! gateways registered and changed by operators; devices switch location with signed,
//! sequenced requests, only to locations their group's network policy routes to, only while
//! Command would let them on the network, and only to gateways that take new sessions.
//! Concurrent switches of one device end in its newest request; concurrent switches of many
//! devices never exceed a gateway's capacity. The audit log names the device and the sequence,
//! never the location or gateway a device chose. Bad input answers 4xx and changes nothing.

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
use enigm_test_support::device::TestDevice;
use enigm_test_support::{Backend, backend_tests};
use enigm_types::{AuditAction, AuditTarget, Outcome, Role, VpnGatewayId};
use serde_json::{Value, json};
use support::{
    Admin, DeviceCalls as _, TestApp, approve, enrolled_in, inactive, lifecycle, protected,
};

backend_tests!(
    a_device_switches_within_its_policy_and_the_gateways_capacity,
    concurrent_switches_end_in_the_newest_and_never_exceed_capacity,
    bad_gateway_and_switch_input_is_refused_and_changes_nothing,
);

const GATEWAY_KEY: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
const DEVICE_KEY: &str = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";

/// A network policy routing chat through the VPN in `de-fra` on untrusted networks and mail
/// through `nl-ams`.
fn vpn_policy() -> Value {
    json!({
        "version": 1,
        "trusted_networks": ["office"],
        "layers": [
            {"id": "routing", "rules": [
                {"id": "mail-vpn", "match": {"apps": ["mail"]},
                 "action": {"route": {"vpn": "nl-ams"}}},
                {"id": "chat-vpn", "match": {"apps": ["chat"], "network": "untrusted"},
                 "action": {"route": {"vpn": "de-fra"}}},
                {"id": "apps-proxy", "match": {"apps": ["chat"]},
                 "action": {"route": "enigm-proxy"}}
            ]}
        ]
    })
}

async fn post(app: &TestApp, admin: &Admin, path: &str, body: Value) -> support::Response {
    app.call(Method::POST, path, Some(admin), Some(admin.pin), Some(body))
        .await
}

/// Assigns [`vpn_policy`] to `group` through approvals.
async fn assign_vpn_policy(app: &TestApp, group: &str) {
    let security = app
        .admin_with_roles("sec-admin", &[Role::SecurityAdmin])
        .await;
    let created = post(
        app,
        &security,
        paths::POLICIES,
        json!({"name": "field-network", "kind": "network"}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let policy = created.body["id"].as_str().unwrap().to_owned();
    let version = post(
        app,
        &security,
        &paths::fill(paths::POLICY_VERSIONS, &[&policy]),
        json!({"content": vpn_policy(), "justification": "ticket 7: vpn"}),
    )
    .await;
    assert_eq!(version.status, StatusCode::ACCEPTED, "{:?}", version.body);
    let approved = approve(
        app,
        &app.owner,
        version.body["approval"]["id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    let assign = post(
        app,
        &security,
        &paths::fill(paths::POLICY_ASSIGN, &[&policy]),
        json!({"version": 1, "groups": [group], "justification": "ticket 7: vpn"}),
    )
    .await;
    assert_eq!(assign.status, StatusCode::ACCEPTED, "{:?}", assign.body);
    let approved = approve(
        app,
        &app.owner,
        assign.body["approval"]["id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
}

async fn add_gateway(
    app: &TestApp,
    id: &str,
    location: &str,
    pool: &str,
    capacity: u32,
) -> support::Response {
    post(
        app,
        &app.owner,
        paths::VPN_GATEWAYS,
        json!({"id": id, "location": location, "endpoint": format!("{id}.vpn.example:51820"),
               "tunnel_key": GATEWAY_KEY, "tunnel_network": pool, "capacity": capacity}),
    )
    .await
}

async fn gateways(app: &TestApp) -> Vec<Value> {
    let listed = app.get(paths::VPN_GATEWAYS, &app.owner).await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    listed.body.as_array().unwrap().clone()
}

/// Each gateway's `assigned` count, by id; also checks it equals the sessions the store holds.
async fn assigned(app: &TestApp) -> Vec<(String, u64)> {
    let mut counts = Vec::new();
    for gateway in gateways(app).await {
        let id = gateway["id"].as_str().unwrap().to_owned();
        let count = gateway["assigned"].as_u64().unwrap();
        let sessions = app
            .store
            .vpn_gateway_sessions(&VpnGatewayId::parse(&id).unwrap())
            .await
            .unwrap();
        assert_eq!(count, sessions, "gateway {id}'s count is its sessions");
        assert!(count <= gateway["capacity"].as_u64().unwrap(), "{gateway}");
        counts.push((id, count));
    }
    counts
}

/// The gateway's `[Peer]` configuration and how many peers it lists.
async fn peers(app: &TestApp, gateway: &str) -> (u64, String) {
    let answer = app
        .get(
            &paths::fill(paths::VPN_GATEWAY_PEERS, &[gateway]),
            &app.owner,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    (
        answer.body["peers"].as_u64().unwrap(),
        answer.body["config"].as_str().unwrap().to_owned(),
    )
}

fn switch_body(sequence: u64, location: Option<&str>) -> Value {
    match location {
        Some(location) => {
            json!({"sequence": sequence, "location": location, "tunnel_key": DEVICE_KEY})
        }
        None => json!({"sequence": sequence}),
    }
}

async fn switch(
    app: &TestApp,
    device: &TestDevice,
    sequence: u64,
    location: Option<&str>,
) -> support::Response {
    device
        .send(app, paths::DEVICE_VPN, &switch_body(sequence, location))
        .await
}

fn counts(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
    pairs.iter().map(|(id, n)| ((*id).to_owned(), *n)).collect()
}

async fn a_device_switches_within_its_policy_and_the_gateways_capacity(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (device, _) = enrolled_in(&app, "field-team").await;
    let (outsider, _) = enrolled_in(&app, "office").await;
    for (id, location, pool) in [
        ("fra-1", "de-fra", "10.64.0.0/24"),
        ("fra-2", "de-fra", "10.65.0.0/24"),
        ("ams-1", "nl-ams", "fd00:64::/120"),
    ] {
        let added = add_gateway(&app, id, location, pool, 2).await;
        assert_eq!(added.status, StatusCode::CREATED, "{:?}", added.body);
        assert_eq!(added.body["accepting_new_sessions"], true);
    }

    // No network policy yet: the VPN is nowhere the device may go.
    let refused = switch(&app, &device, 1, Some("de-fra")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    assert_eq!(refused.body["code"], "vpn_location_not_allowed");

    assign_vpn_policy(&app, "field-team").await;
    let placed = switch(&app, &device, 1, Some("de-fra")).await;
    assert_eq!(placed.status, StatusCode::OK, "{:?}", placed.body);
    assert_eq!(placed.body["sequence"], 1);
    let peer = &placed.body["assignment"];
    assert_eq!(peer["location"], "de-fra");
    assert_eq!(
        peer["gateway"], "fra-1",
        "the least used, then the smallest id"
    );
    assert_eq!(peer["address"], "10.64.0.2/24");
    assert_eq!(peer["gateway_tunnel_key"], GATEWAY_KEY);
    let config = peer["config"].as_str().unwrap();
    assert!(!config.contains("PrivateKey"), "{config}");
    assert!(
        config.contains("Endpoint = fra-1.vpn.example:51820"),
        "{config}"
    );
    assert!(config.contains("Address = 10.64.0.2/24"), "{config}");
    assert_eq!(
        assigned(&app).await,
        counts(&[("ams-1", 0), ("fra-1", 1), ("fra-2", 0)])
    );
    let (listed, config) = peers(&app, "fra-1").await;
    assert_eq!(listed, 1);
    assert_eq!(
        config,
        format!("[Peer]\nPublicKey = {DEVICE_KEY}\nAllowedIPs = 10.64.0.2/32\n\n")
    );

    // The same sequence again, or an older one, changes nothing.
    for stale in [1, 0] {
        let again = switch(&app, &device, stale, Some("nl-ams")).await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{:?}", again.body);
        assert_eq!(again.body["code"], "vpn_switch_superseded");
    }
    // A location no rule of the policy routes to, and a device of another group.
    let nowhere = switch(&app, &device, 2, Some("us-nyc")).await;
    assert_eq!(nowhere.body["code"], "vpn_location_not_allowed");
    let other = switch(&app, &outsider, 1, Some("de-fra")).await;
    assert_eq!(other.body["code"], "vpn_location_not_allowed");
    assert_eq!(
        assigned(&app).await,
        counts(&[("ams-1", 0), ("fra-1", 1), ("fra-2", 0)])
    );

    // Switching moves the session: the old gateway's slot is given back.
    let moved = switch(&app, &device, 2, Some("nl-ams")).await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    assert_eq!(moved.body["assignment"]["gateway"], "ams-1");
    assert_eq!(moved.body["assignment"]["address"], "fd00:64::2/120");
    assert_eq!(
        assigned(&app).await,
        counts(&[("ams-1", 1), ("fra-1", 0), ("fra-2", 0)])
    );

    // An unhealthy gateway takes no new session but keeps the one it has.
    let drained = app
        .call(
            Method::PATCH,
            &paths::fill(paths::VPN_GATEWAY, &["ams-1"]),
            Some(&app.owner),
            None,
            Some(json!({"healthy": false})),
        )
        .await;
    assert_eq!(drained.status, StatusCode::OK, "{:?}", drained.body);
    assert_eq!(drained.body["accepting_new_sessions"], false);
    let kept = switch(&app, &device, 3, Some("nl-ams")).await;
    assert_eq!(kept.status, StatusCode::OK, "{:?}", kept.body);
    assert_eq!(kept.body["assignment"]["gateway"], "ams-1");
    let (second, second_handle) = enrolled_in(&app, "field-team").await;
    let full = switch(&app, &second, 1, Some("nl-ams")).await;
    assert_eq!(
        full.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        full.body
    );
    assert_eq!(full.body["code"], "vpn_capacity");
    // A gateway reporting a load at the limit takes no new session either.
    for id in ["fra-1", "fra-2"] {
        let loaded = app
            .call(
                Method::PATCH,
                &paths::fill(paths::VPN_GATEWAY, &[id]),
                Some(&app.owner),
                None,
                Some(json!({"load_percent": 90})),
            )
            .await;
        assert_eq!(
            loaded.body["accepting_new_sessions"], false,
            "{:?}",
            loaded.body
        );
    }
    let busy = switch(&app, &second, 2, Some("de-fra")).await;
    assert_eq!(busy.body["code"], "vpn_capacity");
    let eased = app
        .call(
            Method::PATCH,
            &paths::fill(paths::VPN_GATEWAY, &["fra-2"]),
            Some(&app.owner),
            None,
            Some(json!({"load_percent": 40})),
        )
        .await;
    assert_eq!(eased.body["accepting_new_sessions"], true);
    let placed = switch(&app, &second, 3, Some("de-fra")).await;
    assert_eq!(
        placed.body["assignment"]["gateway"], "fra-2",
        "{:?}",
        placed.body
    );
    assert_eq!(peers(&app, "fra-1").await.0, 0, "the session moved away");
    assert_eq!(peers(&app, "fra-2").await.0, 1);
    // A device whose trust falls to INACTIVE drops out of its gateway's peers at once.
    let fallen = second.check_in(&app, inactive(&app)).await;
    assert_eq!(fallen.status, StatusCode::OK, "{:?}", fallen.body);
    assert_eq!(peers(&app, "fra-2").await.0, 0);
    let back = second.check_in(&app, protected(&app)).await;
    assert_eq!(back.status, StatusCode::OK, "{:?}", back.body);
    assert_eq!(peers(&app, "fra-2").await.0, 1);

    // Leaving gives the slot back.
    let left = switch(&app, &device, 4, None).await;
    assert_eq!(left.status, StatusCode::OK, "{:?}", left.body);
    assert!(left.body.get("assignment").is_none(), "{:?}", left.body);
    assert_eq!(
        assigned(&app).await,
        counts(&[("ams-1", 0), ("fra-1", 0), ("fra-2", 1)])
    );

    // A revoked device is off the network: its session ends with the revocation (the slot is
    // given back) and it is placed nowhere new.
    let requester = app
        .admin_with_roles("operator", &[Role::SecurityAdmin])
        .await;
    let revoke = lifecycle(&app, &requester, &second_handle, "revoke").await;
    assert_eq!(revoke.status, StatusCode::ACCEPTED, "{:?}", revoke.body);
    let approved = approve(
        &app,
        &app.owner,
        revoke.body["approval"]["id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    assert_eq!(
        assigned(&app).await,
        counts(&[("ams-1", 0), ("fra-1", 0), ("fra-2", 0)])
    );
    assert_eq!(peers(&app, "fra-2").await, (0, String::new()));
    let revoked = switch(&app, &second, 4, Some("de-fra")).await;
    assert_eq!(revoked.status, StatusCode::FORBIDDEN, "{:?}", revoked.body);
    assert_eq!(revoked.body["code"], "device_revoked");

    // Every switch and refusal is audited under the device, without a location or gateway.
    let events = app.audit_events().await;
    let switches: Vec<_> = events
        .iter()
        .filter(|event| event.action == AuditAction::DeviceVpnSwitch)
        .collect();
    let succeeded: Vec<u64> = switches
        .iter()
        .filter(|event| event.outcome == Outcome::Success)
        .filter_map(|event| match event.target {
            AuditTarget::VpnSwitch { sequence, .. } => Some(sequence),
            _ => None,
        })
        .collect();
    assert_eq!(succeeded, vec![1, 2, 3, 3, 4], "{switches:?}");
    assert!(
        switches
            .iter()
            .filter(|event| event.outcome == Outcome::Denied)
            .count()
            >= 7
    );
    let text = serde_json::to_string(&events).unwrap();
    for secret in [
        "de-fra",
        "nl-ams",
        "us-nyc",
        "fra-1\"",
        DEVICE_KEY,
        "10.64.0.2",
    ] {
        let in_device_events = switches
            .iter()
            .any(|event| serde_json::to_string(event).unwrap().contains(secret));
        assert!(!in_device_events, "{secret} in a device's VPN event");
    }
    assert!(
        !text.contains(DEVICE_KEY),
        "a device's key is never audited"
    );
    let gateway_events = events
        .iter()
        .filter(|event| {
            matches!(
                event.action,
                AuditAction::VpnGatewayCreate | AuditAction::VpnGatewayUpdate
            )
        })
        .count();
    assert_eq!(gateway_events, 3 + 4);
}

async fn concurrent_switches_end_in_the_newest_and_never_exceed_capacity(backend: Backend) {
    let app = TestApp::new(backend).await;
    assign_vpn_policy(&app, "field-team").await;
    for (id, location, pool) in [
        ("fra-1", "de-fra", "10.64.0.0/24"),
        ("ams-1", "nl-ams", "10.66.0.0/24"),
    ] {
        let added = add_gateway(&app, id, location, pool, 5).await;
        assert_eq!(added.status, StatusCode::CREATED, "{:?}", added.body);
    }

    // One device, ten switches at once between two locations: the newest wins and the counts
    // hold exactly its one session.
    let (device, _) = enrolled_in(&app, "field-team").await;
    let now = app.clock_now();
    let mut tasks = Vec::new();
    for sequence in 1..=10u64 {
        let location = if sequence % 2 == 0 {
            "nl-ams"
        } else {
            "de-fra"
        };
        let request = device
            .post(
                paths::DEVICE_VPN,
                &switch_body(sequence, Some(location)),
                now,
            )
            .map(Body::from);
        tasks.push(tokio::spawn(support::send(app.router.clone(), request)));
    }
    let mut applied = Vec::new();
    for task in tasks {
        let response = task.await.unwrap();
        match response.status {
            StatusCode::OK => applied.push(response.body["sequence"].as_u64().unwrap()),
            StatusCode::CONFLICT => {
                assert_eq!(
                    response.body["code"], "vpn_switch_superseded",
                    "{:?}",
                    response.body
                );
            }
            other => panic!("{other}: {:?}", response.body),
        }
    }
    assert!(
        applied.contains(&10),
        "the newest is always applied: {applied:?}"
    );
    let older = switch(&app, &device, 9, Some("de-fra")).await;
    assert_eq!(older.body["code"], "vpn_switch_superseded");
    assert_eq!(assigned(&app).await, counts(&[("ams-1", 1), ("fra-1", 0)]));

    // Twelve devices at once for five slots: exactly five are placed, the rest refused.
    let mut devices = Vec::new();
    for _ in 0..12 {
        devices.push(enrolled_in(&app, "field-team").await.0);
    }
    let now = app.clock_now();
    let tasks: Vec<_> = devices
        .iter()
        .map(|device| {
            let request = device
                .post(paths::DEVICE_VPN, &switch_body(1, Some("de-fra")), now)
                .map(Body::from);
            tokio::spawn(support::send(app.router.clone(), request))
        })
        .collect();
    let mut addresses = Vec::new();
    let mut refused = 0;
    for task in tasks {
        let response = task.await.unwrap();
        match response.status {
            StatusCode::OK => addresses.push(
                response.body["assignment"]["address"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(response.body["code"], "vpn_capacity");
                refused += 1;
            }
            other => panic!("{other}: {:?}", response.body),
        }
    }
    assert_eq!((addresses.len(), refused), (5, 7));
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 5, "each placed device has its own address");
    assert_eq!(assigned(&app).await, counts(&[("ams-1", 1), ("fra-1", 5)]));
}

async fn bad_gateway_and_switch_input_is_refused_and_changes_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    assign_vpn_policy(&app, "field-team").await;
    let added = add_gateway(&app, "fra-1", "de-fra", "10.64.0.0/29", 5).await;
    assert_eq!(added.status, StatusCode::CREATED, "{:?}", added.body);
    let good = json!({"id": "fra-2", "location": "de-fra", "endpoint": "vpn.example:51820",
                      "tunnel_key": GATEWAY_KEY, "tunnel_network": "10.64.1.0/24", "capacity": 5});
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    let bad = [
        (with("id", json!("FRA 2")), StatusCode::UNPROCESSABLE_ENTITY),
        (
            with("location", json!("de fra")),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            with("endpoint", json!("vpn.example")),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            with("tunnel_key", json!("not-a-key")),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            with("tunnel_network", json!("10.64.1.1/24")),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            with("tunnel_network", json!("10.64.1.0/31")),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            with("capacity", json!(254)),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            with("capacity", json!(-1)),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (with("surprise", json!(1)), StatusCode::UNPROCESSABLE_ENTITY),
        (with("id", json!("fra-1")), StatusCode::CONFLICT),
    ];
    for (body, status) in bad {
        let refused = post(&app, &app.owner, paths::VPN_GATEWAYS, body.clone()).await;
        assert_eq!(refused.status, status, "{body}: {:?}", refused.body);
    }
    // Roles: an auditor reads the gateways and changes nothing.
    let auditor = app.admin_with_roles("auditor", &[Role::Auditor]).await;
    assert_eq!(
        app.get(paths::VPN_GATEWAYS, &auditor).await.status,
        StatusCode::OK
    );
    let forbidden = post(&app, &auditor, paths::VPN_GATEWAYS, good.clone()).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    for (id, body, status) in [
        (
            "fra-1",
            json!({"load_percent": 101}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("fra-1", json!({"capacity": 6}), StatusCode::CONFLICT),
        (
            "fra-1",
            json!({"healthy": "yes"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("nope", json!({"healthy": false}), StatusCode::NOT_FOUND),
    ] {
        let refused = app
            .call(
                Method::PATCH,
                &paths::fill(paths::VPN_GATEWAY, &[id]),
                Some(&app.owner),
                None,
                Some(body.clone()),
            )
            .await;
        assert_eq!(refused.status, status, "{body}: {:?}", refused.body);
    }
    // An empty change changes nothing (and is not audited).
    let unchanged = app
        .call(
            Method::PATCH,
            &paths::fill(paths::VPN_GATEWAY, &["fra-1"]),
            Some(&app.owner),
            None,
            Some(json!({"healthy": null})),
        )
        .await;
    assert_eq!(unchanged.status, StatusCode::OK, "{:?}", unchanged.body);
    let updates = app
        .audit_events()
        .await
        .iter()
        .filter(|event| event.action == AuditAction::VpnGatewayUpdate)
        .count();
    assert_eq!(updates, 0);
    let listed = gateways(&app).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["capacity"], 5);
    assert_eq!(listed[0]["healthy"], true);

    // Bad switches: a location without a key, a bad key, an unknown field, a sequence past
    // the store's range, a replayed request.
    let (device, _) = enrolled_in(&app, "field-team").await;
    for body in [
        json!({"sequence": 1, "location": "de-fra"}),
        json!({"sequence": 1, "tunnel_key": DEVICE_KEY}),
        json!({"sequence": 1, "location": "de-fra", "tunnel_key": "short"}),
        json!({"sequence": 1, "location": "de fra", "tunnel_key": DEVICE_KEY}),
        json!({"sequence": 1, "location": "de-fra", "tunnel_key": DEVICE_KEY, "imei": "1"}),
        json!({"sequence": u64::MAX, "location": "de-fra", "tunnel_key": DEVICE_KEY}),
        json!({"sequence": -1}),
    ] {
        let refused = device.send(&app, paths::DEVICE_VPN, &body).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{body}: {:?}",
            refused.body
        );
        assert_eq!(refused.body["code"], "invalid_body");
    }
    assert_eq!(assigned(&app).await, counts(&[("fra-1", 0)]));
    let request = device.post(
        paths::DEVICE_VPN,
        &switch_body(1, Some("de-fra")),
        app.clock_now(),
    );
    let first = app.send(request.clone().map(Body::from)).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let replayed = app.send(request.map(Body::from)).await;
    assert_eq!(replayed.status, StatusCode::CONFLICT, "{:?}", replayed.body);
    assert_eq!(replayed.body["code"], "replayed");
    assert_eq!(assigned(&app).await, counts(&[("fra-1", 1)]));
    // An unsigned request is no device's.
    let unsigned = app
        .call(
            Method::POST,
            paths::DEVICE_VPN,
            None,
            None,
            Some(switch_body(2, None)),
        )
        .await;
    assert_eq!(
        unsigned.status,
        StatusCode::UNAUTHORIZED,
        "{:?}",
        unsigned.body
    );
    assert_eq!(assigned(&app).await, counts(&[("fra-1", 1)]));
}
