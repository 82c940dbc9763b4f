//! The Tor Gateway over real sockets, on SQLite and PostgreSQL: it serves the allowlisted
//! public read-only routes exactly as the main listener does, and every other route, method and
//! path of the route table answers exactly as an unknown path, even with a live session.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::Method;
use enigm_api::paths;
use enigm_server::EdgeLimits;
use enigm_server::routes::{Access, route_table};
use enigm_server::tor_gateway::{self, RequestRate, TOR_GATEWAY_SURFACE};
use enigm_test_support::{Backend, backend_tests};
use support::TestApp;
use support::releases::published_fixture;

/// What the comparisons look at: status, headers but `date`, body.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn request(
    client: &reqwest::Client,
    base: &str,
    method: &Method,
    path: &str,
    token: Option<&str>,
) -> Answer {
    let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
    let mut builder = client.request(method, format!("{base}{path}"));
    if let Some(token) = token {
        builder = builder.bearer_auth(token);
    }
    let response = builder.send().await.unwrap();
    let status = response.status().as_u16();
    let mut headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| *name != "date")
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    headers.sort();
    let body = response.bytes().await.unwrap().to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A route template made a concrete path: every parameter given a value.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|segment| match segment {
            "{*path}" => "a/b",
            _ if segment.starts_with('{') => "00000000-0000-4000-8000-000000000000",
            _ => segment,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The main listener as `enigm up` serves it (with the client's address), and the gateway on
/// its own ephemeral loopback port; their base URLs.
async fn listen(app: &TestApp, rate: RequestRate) -> (String, String) {
    let main = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let main_address = main.local_addr().unwrap();
    let router = app.router.clone();
    tokio::spawn(async move {
        axum::serve(
            main,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let gateway = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gateway_address = gateway.local_addr().unwrap();
    let limits = EdgeLimits {
        header_read_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(60),
        max_connections: 64,
        max_connections_per_ip: 64,
    };
    tor_gateway::spawn(gateway, app.state.clone(), limits, rate).unwrap();
    (
        format!("http://{main_address}"),
        format!("http://{gateway_address}"),
    )
}

const UNLIMITED: RequestRate = RequestRate {
    burst: u32::MAX,
    every: Duration::from_nanos(1),
};

const UNKNOWN: &str = "/no/such/route";

#[test]
fn the_allowlist_holds_public_read_only_routes_of_the_table() {
    let table = route_table();
    for (method, path) in TOR_GATEWAY_SURFACE {
        let spec = table
            .iter()
            .find(|spec| spec.method == *method && spec.path == *path)
            .unwrap_or_else(|| panic!("{method} {path} is not in the route table"));
        assert_eq!(
            spec.access,
            Access::Public,
            "{method} {path} needs a session"
        );
        assert!(
            *method == Method::GET || *method == Method::HEAD,
            "{method} {path} is not read-only"
        );
        assert!(
            !path.starts_with("/api/v1/device/"),
            "{path} is a device route: devices talk to the main address"
        );
    }
}

async fn only_the_allowlist_is_served_and_the_rest_is_an_unknown_path(backend: Backend) {
    let app = TestApp::new(backend).await;
    let artifact: Vec<u8> = (0..=255u8).cycle().take(5_000).collect();
    let sha256 = published_fixture(&app, &artifact).await;
    let (main, gateway) = listen(&app, UNLIMITED).await;
    let client = client();
    let token = Some(app.owner.token.as_str());
    let methods = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::from_bytes(b"BREW").unwrap(),
    ];

    let mut hidden = 0;
    for spec in route_table() {
        let path = concrete(spec.path);
        for method in &methods {
            let allowlisted = TOR_GATEWAY_SURFACE.iter().any(|(allowed, template)| {
                *template == spec.path
                    && (allowed == method || (*allowed == Method::GET && *method == Method::HEAD))
            });
            if allowlisted {
                continue;
            }
            // With the owner's live session: a session opens nothing here.
            let there = request(&client, &gateway, method, &path, token).await;
            let unknown = request(&client, &gateway, method, UNKNOWN, token).await;
            assert_eq!(there, unknown, "{method} {path} on the gateway");
            assert_eq!(there.status, 404);
            hidden += 1;
        }
        // The route does exist on the main listener: it answers there, not as an unknown path.
        if !tor_gateway::on_surface(&spec) {
            let on_main = request(&client, &main, &spec.method, &path, None).await;
            let unknown = request(&client, &main, &spec.method, UNKNOWN, None).await;
            assert_ne!(on_main.body, unknown.body, "{} {path} on main", spec.method);
        }
    }
    assert!(hidden > 500, "{hidden} requests walked");

    // Metrics are not on the gateway either (nor on the main listener: they have their own).
    for method in [Method::GET, Method::POST] {
        assert_eq!(
            request(&client, &gateway, &method, "/metrics", None).await,
            request(&client, &gateway, &method, UNKNOWN, None).await
        );
    }

    // The allowlisted routes answer as on the main listener, found or not.
    let metadata = |file: &str| format!("{}/{file}", paths::TUF_METADATA_PREFIX);
    let targets = |name: &str| format!("{}/{name}", paths::TUF_TARGETS_PREFIX);
    let allowlisted = [
        paths::HEALTHZ.to_owned(),
        metadata("1.root.json"),
        metadata("2.root.json"),
        metadata("root.json"),
        metadata("1.targets.json"),
        metadata("1.snapshot.json"),
        metadata("timestamp.json"),
        metadata("3.root.json"),
        metadata("x.json"),
        targets(&format!("os/{sha256}.enigm-os.img")),
        targets(&format!("os/{}.enigm-os.img", "0".repeat(64))),
        targets("os/enigm-os.img"),
    ];
    let main_host = main.trim_start_matches("http://");
    let mut found = 0;
    for path in &allowlisted {
        for method in [Method::GET, Method::HEAD] {
            let on_main = request(&client, &main, &method, path, None).await;
            let there = request(&client, &gateway, &method, path, None).await;
            assert_eq!(
                (there.status, &there.body),
                (on_main.status, &on_main.body),
                "{method} {path}"
            );
            if there.status == 200 {
                found += 1;
            }
            assert_no_clearnet_address(&there, main_host, path);
        }
    }
    assert_eq!(
        found,
        2 * 8,
        "the fixture's files are found on both listeners"
    );
    let whole = request(
        &client,
        &gateway,
        &Method::GET,
        &targets(&format!("os/{sha256}.enigm-os.img")),
        None,
    )
    .await;
    assert_eq!(whole.body, artifact);

    // Every answer of the gateway carries the referrer policy, and the main listener's do not
    // change.
    for path in [paths::HEALTHZ, UNKNOWN, paths::LOGIN] {
        let there = request(&client, &gateway, &Method::GET, path, None).await;
        assert!(
            there
                .headers
                .contains(&("referrer-policy".to_owned(), "no-referrer".to_owned())),
            "{path}: {:?}",
            there.headers
        );
        let on_main = request(&client, &main, &Method::GET, path, None).await;
        assert!(
            !on_main
                .headers
                .iter()
                .any(|(name, _)| name == "referrer-policy"),
            "{path} on main"
        );
    }
}

/// No `Location`, and neither headers nor body name the main listener's address.
fn assert_no_clearnet_address(answer: &Answer, main_host: &str, path: &str) {
    for (name, value) in &answer.headers {
        assert!(
            name != "location" && name != "content-location",
            "{path}: {name}"
        );
        assert!(!value.contains(main_host), "{path}: {name}: {value}");
    }
    assert!(
        !answer
            .body
            .windows(main_host.len())
            .any(|window| window == main_host.as_bytes()),
        "{path}: the body names {main_host}"
    );
}

async fn the_gateway_has_one_global_request_rate(backend: Backend) {
    let app = TestApp::new(backend).await;
    let rate = RequestRate {
        burst: 3,
        every: Duration::from_secs(3600),
    };
    let (main, gateway) = listen(&app, rate).await;
    let client = client();
    for _ in 0..3 {
        let health = request(&client, &gateway, &Method::GET, paths::HEALTHZ, None).await;
        assert_eq!(health.status, 200);
    }
    // Every client of the onion service arrives from loopback: the limit is for all of them,
    // on every path.
    for path in [paths::HEALTHZ, UNKNOWN] {
        let refused = request(&client, &gateway, &Method::GET, path, None).await;
        assert_eq!(refused.status, 429, "{path}");
        let body: serde_json::Value = serde_json::from_slice(&refused.body).unwrap();
        assert_eq!(body["code"], "rate_limited");
        assert!(
            refused
                .headers
                .contains(&("retry-after".to_owned(), "1".to_owned()))
        );
        assert!(
            refused
                .headers
                .contains(&("referrer-policy".to_owned(), "no-referrer".to_owned()))
        );
    }
    // The main listener is not held by the gateway's limit.
    let health = request(&client, &main, &Method::GET, paths::HEALTHZ, None).await;
    assert_eq!(health.status, 200);
}

backend_tests!(
    only_the_allowlist_is_served_and_the_rest_is_an_unknown_path,
    the_gateway_has_one_global_request_rate
);
