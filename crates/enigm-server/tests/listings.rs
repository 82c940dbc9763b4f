//! Listings people watch, and approvals that show what they approve: an approval request names
//! its full subject (the release's version, digest, models and channel; the user and role); the
//! audit events read newest first and from a time on; devices most recently seen first; every
//! bad order or time is a 400.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use enigm_api::paths;
use enigm_test_support::{Backend, backend_tests};
use serde_json::{Value, json};
use support::releases::{IMAGE, create, release_admins, release_request, sha256_hex};
use support::{TestApp, enrolled};

backend_tests!(
    approvals_show_their_full_subject,
    approvals_list_since_a_time,
    audit_events_read_newest_first_and_since_a_time,
    devices_list_most_recently_seen_first_and_since_a_time
);

fn since(app: &TestApp, back: i64) -> String {
    let now = app.clock_now().unix_millis();
    enigm_types::Timestamp::from_unix_millis(now - back).to_rfc3339()
}

async fn approvals_show_their_full_subject(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (manager, _approver) = release_admins(&app).await;
    let created = create(&app, &manager, release_request("os/enigm-os.img", IMAGE)).await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{:?}", created.body);
    let approval = created.body["approval"].as_str().unwrap().to_owned();

    let read = app
        .get(&paths::fill(paths::APPROVAL, &[&approval]), &app.owner)
        .await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    let subject = &read.body["subject"];
    assert_eq!(subject["kind"], "release-signing");
    assert_eq!(subject["release"], created.body["id"]);
    let details = &subject["details"];
    assert_eq!(details["release_version"], "2026.11.1");
    assert_eq!(details["sha256"], sha256_hex(IMAGE));
    assert_eq!(details["compatible_models"], json!(["enigm-sim"]));
    assert_eq!(details["channel"], "stable");
    assert_eq!(details["length"], IMAGE.len());

    // A role grant names the user by name and the role.
    app.clock.advance(Duration::from_secs(1));
    let bob = app.admin_with_roles("bob", &[]).await;
    let grant = app
        .call(
            Method::POST,
            &paths::fill(paths::USER_ROLES, &[&bob.id.to_string()]),
            Some(&app.owner),
            None,
            Some(json!({"role": "auditor", "justification": "quarterly review"})),
        )
        .await;
    assert_eq!(grant.status, StatusCode::ACCEPTED, "{:?}", grant.body);
    assert_eq!(
        grant.body["subject"],
        json!({"kind": "role-grant", "admin": bob.id.to_string(), "username": "bob", "role": "auditor"})
    );

    // The list carries the same subjects, newest first.
    let list = app.get(paths::APPROVALS, &app.owner).await;
    assert_eq!(list.status, StatusCode::OK);
    let items = list.body.as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["subject"]["kind"], "role-grant");
    assert_eq!(items[1]["subject"]["details"]["sha256"], sha256_hex(IMAGE));
    // Nothing secret rides along: the subject is only names, versions and digests.
    let text = list.body.to_string();
    assert!(
        !text.contains("password") && !text.contains("pin_hash"),
        "{text}"
    );
}

async fn approvals_list_since_a_time(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (manager, _approver) = release_admins(&app).await;
    let first = create(&app, &manager, release_request("os/a.img", IMAGE)).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    app.clock.advance(Duration::from_secs(600));
    let second = create(&app, &manager, release_request("os/b.img", IMAGE)).await;
    assert_eq!(second.status, StatusCode::ACCEPTED);

    let recent = app
        .get(
            &format!("{}?since={}", paths::APPROVALS, since(&app, 60_000)),
            &app.owner,
        )
        .await;
    assert_eq!(recent.status, StatusCode::OK, "{:?}", recent.body);
    let ids: Vec<&Value> = recent
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|item| &item["id"])
        .collect();
    assert_eq!(ids, vec![&second.body["approval"]]);

    let all = app
        .get(
            &format!("{}?since={}", paths::APPROVALS, since(&app, 3_600_000)),
            &app.owner,
        )
        .await;
    assert_eq!(all.body.as_array().unwrap().len(), 2);

    for bad in ["yesterday", "10m", "2026-13-01T00:00:00Z"] {
        let refused = app
            .get(&format!("{}?since={bad}", paths::APPROVALS), &app.owner)
            .await;
        assert_eq!(
            (refused.status, refused.code()),
            (StatusCode::BAD_REQUEST, "invalid_query"),
            "{bad}"
        );
    }
}

async fn audit_events_read_newest_first_and_since_a_time(backend: Backend) {
    let app = TestApp::new(backend).await;
    for _ in 0..3 {
        app.get(paths::WHOAMI, &app.owner).await;
    }
    let oldest = app
        .get(&format!("{}?limit=1000", paths::AUDIT_EVENTS), &app.owner)
        .await;
    let oldest: Vec<i64> = oldest.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["seq"].as_i64().unwrap())
        .collect();
    assert!(oldest.len() >= 3, "{oldest:?}");
    assert!(oldest.windows(2).all(|pair| pair[0] < pair[1]));

    // Newest first, paged with `before`.
    let newest = app
        .get(
            &format!("{}?order=newest&limit=2", paths::AUDIT_EVENTS),
            &app.owner,
        )
        .await;
    assert_eq!(newest.status, StatusCode::OK, "{:?}", newest.body);
    let page: Vec<i64> = newest.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(page.len(), 2);
    assert!(page[0] > page[1]);
    // The newest is at least the newest seen before (the first read itself was recorded after).
    assert!(page[0] > *oldest.last().unwrap());
    let before = newest.body["next_before"].as_i64().unwrap();
    assert_eq!(before, page[1]);
    let next = app
        .get(
            &format!(
                "{}?order=newest&limit=2&before={before}",
                paths::AUDIT_EVENTS
            ),
            &app.owner,
        )
        .await;
    let next_first = next.body["events"][0]["seq"].as_i64().unwrap();
    assert!(next_first < before);

    // `since`: only what happened from then on.
    app.clock.advance(Duration::from_secs(300));
    let cut = since(&app, 0);
    app.get(paths::WHOAMI, &app.owner).await;
    let recent = app
        .get(
            &format!("{}?since={cut}&limit=1000", paths::AUDIT_EVENTS),
            &app.owner,
        )
        .await;
    assert_eq!(recent.status, StatusCode::OK, "{:?}", recent.body);
    let events = recent.body["events"].as_array().unwrap();
    assert!(!events.is_empty());
    assert!(
        events
            .iter()
            .all(|event| event["time"].as_str().unwrap() >= cut.as_str())
    );
    assert!(
        events
            .iter()
            .all(|event| event["seq"].as_i64().unwrap() > page[0])
    );

    for bad in ["order=sideways", "since=10m", "since=", "before=x"] {
        let refused = app
            .get(&format!("{}?{bad}", paths::AUDIT_EVENTS), &app.owner)
            .await;
        assert_eq!(
            (refused.status, refused.code()),
            (StatusCode::BAD_REQUEST, "invalid_query"),
            "{bad}"
        );
    }
}

async fn devices_list_most_recently_seen_first_and_since_a_time(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_first_device, first) = enrolled(&app).await;
    app.clock.advance(Duration::from_secs(600));
    let (_second_device, second) = enrolled(&app).await;

    let recent = app
        .get(&format!("{}?order=last-seen", paths::DEVICES), &app.owner)
        .await;
    assert_eq!(recent.status, StatusCode::OK, "{:?}", recent.body);
    let handles: Vec<String> = recent
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|device| device["handle"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(handles, vec![second.to_string(), first.to_string()]);

    let since_recent = app
        .get(
            &format!(
                "{}?order=last-seen&since={}",
                paths::DEVICES,
                since(&app, 60_000)
            ),
            &app.owner,
        )
        .await;
    assert_eq!(since_recent.status, StatusCode::OK);
    let handles: Vec<&str> = since_recent
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|device| device["handle"].as_str().unwrap())
        .collect();
    assert_eq!(handles, vec![second.to_string().as_str()]);

    for bad in [
        "order=newest".to_owned(),
        "since=soon".to_owned(),
        format!("order=last-seen&after={first}"),
    ] {
        let refused = app
            .get(&format!("{}?{bad}", paths::DEVICES), &app.owner)
            .await;
        assert_eq!(
            (refused.status, refused.code()),
            (StatusCode::BAD_REQUEST, "invalid_query"),
            "{bad}"
        );
    }
}
