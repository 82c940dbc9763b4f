//! What schemathesis found where the server and its OpenAPI document disagreed, held on both
//! backends with real requests: the bounds the document states are the bounds the server
//! enforces, and what the document admits the server takes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use axum::http::{Method, StatusCode};
use enigm_api::paths;
use enigm_test_support::{Backend, backend_tests};
use serde_json::json;
use support::TestApp;

/// `limit` is documented 1 to 1000: outside that range it is refused, not clamped.
async fn limit_outside_its_documented_range_is_400(backend: Backend) {
    let app = TestApp::new(backend).await;
    for path in [paths::AUDIT_EVENTS, paths::DEVICES] {
        for limit in ["0", "1001", "4294967296"] {
            let response = app.get(&format!("{path}?limit={limit}"), &app.owner).await;
            assert_eq!(
                response.status,
                StatusCode::BAD_REQUEST,
                "{path} limit={limit}"
            );
            assert_eq!(response.code(), "invalid_query", "{path} limit={limit}");
        }
        for limit in ["1", "1000"] {
            let response = app.get(&format!("{path}?limit={limit}"), &app.owner).await;
            assert_eq!(response.status, StatusCode::OK, "{path} limit={limit}");
        }
    }
    let leaves = format!("{}?start=0&limit=1001", paths::AUDIT_LEAVES);
    assert_eq!(
        app.get(&leaves, &app.owner).await.status,
        StatusCode::BAD_REQUEST
    );
}

/// Audit log positions are documented `int64`: beyond 2^63 - 1 the query is refused instead
/// of answered as if such a position could exist.
async fn audit_log_positions_beyond_int64_are_400(backend: Backend) {
    let app = TestApp::new(backend).await;
    let beyond = "9223372036854775808";
    for query in [
        format!("{}?start={beyond}", paths::AUDIT_LEAVES),
        format!("{}?first=0&second={beyond}", paths::AUDIT_CONSISTENCY),
        format!(
            "{}?tree_size={beyond}",
            paths::fill(paths::AUDIT_LEAF, &["0"])
        ),
    ] {
        let response = app.get(&query, &app.owner).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(response.code(), "invalid_query", "{query}");
    }
    // Within int64 the position is a position: beyond the signed tree it is out of range.
    let within = format!("{}?start=9223372036854775807", paths::AUDIT_LEAVES);
    let response = app.get(&within, &app.owner).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST, "{within}");
    assert_eq!(response.code(), "invalid_range", "{within}");
}

/// JSON Schema's `integer` admits `3.0`; so does the server.
async fn whole_numbers_written_with_a_fraction_are_integers(backend: Backend) {
    let app = TestApp::new(backend).await;
    let body = json!({
        "required_approvals": 2.0,
        "approver_roles": ["owner"],
        "justification": "two owners decide role grants",
    });
    let path = paths::fill(paths::APPROVAL_RULE, &["role-grant"]);
    let response = app
        .call(Method::PUT, &path, Some(&app.owner), None, Some(body))
        .await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{:?}", response.body);
    // A fraction is still not an integer.
    let body = json!({
        "required_approvals": 2.5,
        "approver_roles": ["owner"],
        "justification": "two and a half owners",
    });
    let response = app
        .call(Method::PUT, &path, Some(&app.owner), None, Some(body))
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(response.code(), "invalid_body");
}

/// A justification's bounds hold for the text as sent, as documented: 1000 characters at most
/// and no control character but line breaks, also in the white space around it.
async fn justification_bounds_apply_to_the_text_as_sent(backend: Backend) {
    let app = TestApp::new(backend).await;
    let path = paths::fill(paths::APPROVAL_RULE, &["role-grant"]);
    let request = |justification: String| {
        json!({
            "required_approvals": 2,
            "approver_roles": ["owner"],
            "justification": justification,
        })
    };
    for refused in [format!("{} ", "x".repeat(1000)), "\tleading tab".to_owned()] {
        let response = app
            .call(
                Method::PUT,
                &path,
                Some(&app.owner),
                None,
                Some(request(refused)),
            )
            .await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(response.code(), "invalid_justification");
    }
    let response = app
        .call(
            Method::PUT,
            &path,
            Some(&app.owner),
            None,
            Some(request(" on call\n".to_owned())),
        )
        .await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{:?}", response.body);
}

backend_tests!(
    limit_outside_its_documented_range_is_400,
    audit_log_positions_beyond_int64_are_400,
    whole_numbers_written_with_a_fraction_are_integers,
    justification_bounds_apply_to_the_text_as_sent,
);
