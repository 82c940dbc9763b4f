//! Prometheus metrics of a real `enigm up --metrics-listen`, on SQLite and PostgreSQL: after
//! logins, an attested enrollment, a refused one, check-ins and a pending approval, the scrape
//! holds those series with those values; routes are labelled by their template; the gauges read
//! from the database match what the API says; and no label carries a device handle, a user name
//! or a raw path.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use enigm_test_support::{Backend, TestDatabase, backend_tests};
use serde_json::Value;

use crate::support::{Owner, Server, agent_once, write_secret};

/// One sample: the metric name and its labels.
type Series = (String, BTreeMap<String, String>);

/// Parses the text exposition format into samples; `#` lines are skipped.
fn parse(text: &str) -> Vec<(Series, f64)> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.strip_suffix('}').unwrap()),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once("=\"").unwrap();
                    (key.to_owned(), value.trim_end_matches('"').to_owned())
                })
                .collect();
            ((name.to_owned(), labels), value.parse().unwrap())
        })
        .collect()
}

/// The value of the sample `name` whose labels include `labels` (0 when there is none).
fn value(samples: &[(Series, f64)], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|((sample, have), _)| {
            sample == name
                && labels
                    .iter()
                    .all(|(key, value)| have.get(*key).map(String::as_str) == Some(*value))
        })
        .map(|(_, value)| value)
        .sum()
}

async fn scrape(url: &str) -> (String, Vec<(Series, f64)>) {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{:?}",
        response.headers()
    );
    let text = response.text().await.unwrap();
    let samples = parse(&text);
    (text, samples)
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

backend_tests!(metrics_count_real_requests_by_route_template_and_never_label_identities);

async fn metrics_count_real_requests_by_route_template_and_never_label_identities(
    backend: Backend,
) {
    let db = TestDatabase::new(backend).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let dev_root = dir.path().join("dev-root");
    let mut server_args = vec![
        "--metrics-listen",
        "127.0.0.1:0",
        "--insecure-dev-attestation-root",
        path(&dev_root),
    ];
    if backend == Backend::Postgres {
        server_args.extend(["--database-url", db.url()]);
    }
    let server = Server::start(&data_dir, &server_args);
    let metrics_url = server.printed_address("metrics");
    assert!(
        metrics_url.starts_with("http://127.0.0.1:"),
        "{metrics_url}"
    );

    // Metrics are on their own address only: the API does not serve them.
    let on_api = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap();
    assert_eq!(on_api.status(), 404);

    let owner_login = Owner::log_in(dir.path(), &data_dir, &server.url);
    let owner = &owner_login.cli;
    let pin = owner_login.pin.clone();
    let secrets = owner_login.secrets.clone();
    let whoami = owner.json(&["admin", "whoami"]);
    let owner_name = whoami["username"].as_str().unwrap().to_owned();

    // One device enrolls with attestation and checks in; one comes with a token that does not
    // exist and is refused.
    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, r#"{"required_for": {"enrollment": true}}"#).unwrap();
    let created = owner.json(&[
        "admin",
        "enrollment-token",
        "create",
        "--group",
        "metrics",
        "--uses",
        "1",
        "--attestation-policy-file",
        path(&policy),
        "--pin-file",
        path(&pin),
    ]);
    let token = write_secret(&secrets, "token", created["token"].as_str().unwrap());
    let state = dir.path().join("device");
    let enrolled = agent_once(
        &server.url,
        &state,
        &[
            "--enrollment-token-file",
            path(&token),
            "--insecure-dev-attestation-root",
            path(&dev_root),
        ],
    );
    assert!(
        enrolled.status.success(),
        "{}",
        String::from_utf8_lossy(&enrolled.stderr)
    );
    let enrollment: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("enrollment.json")).unwrap())
            .unwrap();
    let handle = enrollment["handle"].as_str().unwrap().to_owned();
    let bad_token = write_secret(&secrets, "bad-token", "enigm_et_not-a-real-token");
    let refused = agent_once(
        &server.url,
        &dir.path().join("refused"),
        &["--enrollment-token-file", path(&bad_token)],
    );
    assert!(!refused.status.success());
    // An administrator reads the device by its handle: the route's template is the label.
    owner.json(&["admin", "devices", "show", &handle]);
    // A path no route matches.
    let missing = reqwest::get(format!("{}/no/such/place-{handle}", server.url))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // A role grant waits for its approval.
    let password = write_secret(&secrets, "bob-password", "a-user-password-of-length");
    owner.json(&[
        "admin",
        "users",
        "create",
        "bob",
        "--password-file",
        path(&password),
        "--pin-file",
        path(&pin),
    ]);
    owner.json(&[
        "admin",
        "roles",
        "grant",
        "bob",
        "auditor",
        "--justification",
        "metrics test",
    ]);
    let pending = owner.run(&["admin", "approvals", "list", "--state", "pending", "--json"]);
    assert!(pending.status.success());
    let pending: Value = serde_json::from_slice(&pending.stdout).unwrap();
    let pending = pending["items"].as_array().unwrap().len();
    assert_eq!(pending, 1);

    // The sequencer folds the audit events in within a second or so; wait until it has.
    let mut scraped = scrape(&metrics_url).await;
    for _ in 0..100 {
        if value(&scraped.1, "enigm_audit_sequencer_lag", &[]) == 0.0
            && value(&scraped.1, "enigm_audit_tree_size", &[]) > 0.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        scraped = scrape(&metrics_url).await;
    }
    let (text, samples) = scraped;

    // The process's CPU time, read at scrape time: it has started, enrolled and answered.
    let cpu = value(&samples, "enigm_process_cpu_seconds", &[]);
    assert!(cpu > 0.0, "{text}");
    assert!(
        text.contains("# TYPE enigm_process_cpu_seconds gauge"),
        "{text}"
    );

    let requests = "enigm_http_requests_total";
    let login = [
        ("method", "POST"),
        ("route", enigm_api::paths::LOGIN),
        ("status", "200"),
    ];
    assert!(value(&samples, requests, &login) >= 1.0, "{text}");
    let show = [
        ("method", "GET"),
        ("route", enigm_api::paths::DEVICE),
        ("status", "200"),
    ];
    assert_eq!(value(&samples, requests, &show), 1.0, "{text}");
    // `/metrics` asked of the API, and the made-up path.
    let unmatched = [("route", "unmatched"), ("status", "404")];
    assert_eq!(value(&samples, requests, &unmatched), 2.0, "{text}");
    let enroll_route = [
        ("method", "POST"),
        ("route", enigm_api::paths::DEVICE_ENROLL),
    ];
    assert_eq!(value(&samples, requests, &enroll_route), 2.0, "{text}");
    assert_eq!(
        value(
            &samples,
            "enigm_http_request_duration_seconds_count",
            &enroll_route
        ),
        2.0,
        "{text}"
    );

    let enrollments = "enigm_device_enrollments_total";
    assert_eq!(
        value(&samples, enrollments, &[("outcome", "enrolled")]),
        1.0,
        "{text}"
    );
    assert_eq!(value(&samples, enrollments, &[]), 2.0, "{text}");
    let check_ins = value(
        &samples,
        "enigm_device_check_ins_total",
        &[("outcome", "accepted")],
    );
    assert!(check_ins >= 1.0, "{text}");
    assert_eq!(
        value(
            &samples,
            requests,
            &[
                ("route", enigm_api::paths::DEVICE_CHECK_INS),
                ("status", "200")
            ]
        ),
        check_ins,
        "{text}"
    );
    assert!(
        value(
            &samples,
            "enigm_attestations_total",
            &[("verdict", "accepted")]
        ) >= 1.0,
        "{text}"
    );
    assert_eq!(
        value(&samples, "enigm_approvals_pending", &[]),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(&samples, "enigm_audit_sequencer_lag", &[]),
        0.0,
        "{text}"
    );
    assert!(
        value(&samples, "enigm_audit_tree_size", &[]) > 0.0,
        "{text}"
    );

    // No label carries an identity or a path a client chose: every route label is a template
    // of the route table (or `unmatched`), and the handle and user names appear nowhere.
    let templates: Vec<&str> = enigm_server::routes::route_table()
        .iter()
        .map(|spec| spec.path)
        .collect();
    for ((name, labels), _) in &samples {
        if let Some(route) = labels.get("route") {
            assert!(
                route == "unmatched" || templates.contains(&route.as_str()),
                "{name}: {route}"
            );
        }
    }
    for secretish in [
        handle.as_str(),
        owner_name.as_str(),
        "bob",
        "dev_",
        "no/such",
    ] {
        assert!(!text.contains(secretish), "`{secretish}` in:\n{text}");
    }
    drop(owner_login);
    assert!(server.stop().success());
}
