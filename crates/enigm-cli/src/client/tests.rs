use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use enigm_api::{AccountView, AuditListQuery, RoleGrantRequest};
use enigm_types::{AdminId, AuditAction, Outcome, Role};

use super::*;

/// Headers, query and body of one request.
type Recorded = (HeaderMap, Option<String>, String);

/// What the test server saw.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Recorded>>>);

impl Seen {
    fn all(&self) -> Vec<Recorded> {
        self.0.lock().unwrap().clone()
    }

    fn only(&self) -> Recorded {
        let all = self.all();
        assert_eq!(all.len(), 1, "expected exactly one request");
        all.into_iter().next().unwrap()
    }
}

async fn record(State(seen): State<Seen>, request: Request) {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let query = parts.uri.query().map(str::to_owned);
    seen.0.lock().unwrap().push((
        parts.headers,
        query,
        String::from_utf8(body.to_vec()).unwrap(),
    ));
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(ErrorBody {
            code: code.to_owned(),
            message: message.to_owned(),
        }),
    )
        .into_response()
}

fn account_json() -> serde_json::Value {
    serde_json::json!({
        "id": "1f0c2d3e-0000-4000-8000-000000000001",
        "username": "alice",
        "roles": ["owner"],
        "disabled": false,
        "totp_enabled": true,
        "pin_set": true,
        "pin_locked": false,
        "created_at": "2026-11-22T04:25:00.000Z"
    })
}

async fn spawn(router: Router) -> ServerUrl {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    ServerUrl::parse(&format!("http://{address}")).unwrap()
}

fn client(server: ServerUrl) -> CommandClient {
    CommandClient::new(
        server,
        None,
        Some(&SecretString::from("tok_abc".to_owned())),
    )
    .unwrap()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|value| value.to_str().unwrap())
}

#[tokio::test]
async fn critical_requests_send_token_and_pin_and_map_the_error_body() {
    let seen = Seen::default();
    let router = Router::new()
        .route(
            "/api/v1/users/{id}/disable",
            post(|state: State<Seen>, request: Request| async move {
                record(state, request).await;
                error(StatusCode::FORBIDDEN, "pin_invalid", "the pin is wrong")
            }),
        )
        .with_state(seen.clone());
    let client = client(spawn(router).await);
    let pin = Pin::parse("482913").unwrap();
    let path = enigm_api::paths::fill(
        enigm_api::paths::USER_DISABLE,
        &[&AdminId::random().to_string()],
    );

    let error = client
        .post_empty::<AccountView>(&path, Some(&pin))
        .await
        .unwrap_err();

    let expected = ClientError {
        status: 403,
        code: "pin_invalid".to_owned(),
        message: "the pin is wrong".to_owned(),
        retry_after: None,
    };
    assert_eq!(error.api(), Some(&expected));
    assert_eq!(error.to_string(), "the pin is wrong (pin_invalid)");
    let (headers, _, _) = seen.only();
    assert_eq!(header(&headers, "authorization"), Some("Bearer tok_abc"));
    assert_eq!(header(&headers, enigm_api::PIN_HEADER), Some("482913"));
}

#[tokio::test]
async fn ordinary_requests_send_no_pin_and_decode_the_body() {
    let seen = Seen::default();
    let router = Router::new()
        .route(
            "/api/v1/auth/whoami",
            get(|state: State<Seen>, request: Request| async move {
                record(state, request).await;
                Json(account_json())
            }),
        )
        .with_state(seen.clone());
    let client = client(spawn(router).await);

    let reply = client
        .get::<AccountView>(enigm_api::paths::WHOAMI)
        .await
        .unwrap();

    assert_eq!(reply.value.username, "alice");
    assert_eq!(reply.value.roles, vec![Role::Owner]);
    assert_eq!(reply.raw, account_json());
    let (headers, _, _) = seen.only();
    assert_eq!(header(&headers, "authorization"), Some("Bearer tok_abc"));
    assert_eq!(header(&headers, enigm_api::PIN_HEADER), None);
}

#[tokio::test]
async fn request_bodies_and_queries_are_encoded_as_the_api_expects() {
    let seen = Seen::default();
    let router = Router::new()
        .route(
            "/api/v1/users/{id}/roles",
            post(|state: State<Seen>, request: Request| async move {
                record(state, request).await;
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/api/v1/audit/events",
            get(|state: State<Seen>, request: Request| async move {
                record(state, request).await;
                Json(serde_json::json!({ "events": [], "next_after": null }))
            }),
        )
        .with_state(seen.clone());
    let client = client(spawn(router).await);

    let grant = RoleGrantRequest {
        role: Role::SecurityAdmin,
        justification: "on-call".to_owned(),
    };
    client
        .post::<_, ()>("/api/v1/users/x/roles", &grant, None)
        .await
        .unwrap();
    let query = AuditListQuery {
        after: None,
        before: None,
        order: None,
        since: None,
        limit: Some(5),
        actor: None,
        action: Some(AuditAction::AuthLogin),
        outcome: Some(Outcome::Denied),
    };
    let page = client
        .get_query::<_, enigm_api::AuditPage>(enigm_api::paths::AUDIT_EVENTS, &query)
        .await
        .unwrap();

    assert!(page.value.events.is_empty());
    let all = seen.all();
    let (grant_headers, _, grant_body) = &all[0];
    assert_eq!(
        header(grant_headers, "content-type"),
        Some("application/json")
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(grant_body).unwrap(),
        serde_json::json!({ "role": "security-admin", "justification": "on-call" })
    );
    let (_, audit_query, _) = &all[1];
    assert_eq!(
        audit_query.as_deref(),
        Some("limit=5&action=auth.login&outcome=denied")
    );
}

#[tokio::test]
async fn no_content_decodes_as_unit() {
    let router = Router::new().route(
        "/api/v1/auth/sessions/{id}",
        delete(|| async { StatusCode::NO_CONTENT }),
    );
    let client = client(spawn(router).await);
    let reply = client
        .delete::<()>("/api/v1/auth/sessions/abc", None)
        .await
        .unwrap();
    assert_eq!(reply.raw, serde_json::Value::Null);
}

#[tokio::test]
async fn throttling_carries_retry_after_and_logins_send_no_token() {
    let seen = Seen::default();
    let router = Router::new()
        .route(
            "/api/v1/auth/login",
            post(|state: State<Seen>, request: Request| async move {
                record(state, request).await;
                let mut response = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "throttled",
                    "too many attempts",
                );
                response
                    .headers_mut()
                    .insert("retry-after", "30".parse().unwrap());
                response
            }),
        )
        .with_state(seen.clone());
    let server = spawn(router).await;
    let anonymous = CommandClient::new(server, None, None).unwrap();
    let login = serde_json::json!({ "username": "alice", "password": "correct horse battery" });

    let error = anonymous
        .post::<_, serde_json::Value>(enigm_api::paths::LOGIN, &login, None)
        .await
        .unwrap_err();

    let api = error.api().unwrap();
    assert_eq!(
        (api.status, api.code.as_str(), api.retry_after),
        (429, "throttled", Some(30))
    );
    let (headers, _, _) = seen.only();
    assert_eq!(header(&headers, "authorization"), None);
}

#[tokio::test]
async fn answers_without_an_error_body_get_a_status_code() {
    let router = Router::new().route(
        "/api/v1/routes",
        get(|| async { (StatusCode::BAD_GATEWAY, "upstream down") }),
    );
    let client = client(spawn(router).await);
    let error = client
        .get::<serde_json::Value>(enigm_api::paths::ROUTES)
        .await
        .unwrap_err();
    let api = error.api().unwrap();
    assert_eq!((api.status, api.code.as_str()), (502, "http_502"));
    assert_eq!(
        error.to_string(),
        "unexpected answer `502 Bad Gateway` without an error body (http_502)"
    );
}

#[tokio::test]
async fn redirects_are_not_followed_with_the_pin() {
    let seen = Seen::default();
    let router = Router::new()
        .route(
            "/api/v1/approvals/{id}/approve",
            post(|| async { (StatusCode::TEMPORARY_REDIRECT, [("location", "/elsewhere")]) }),
        )
        .route("/elsewhere", post(record))
        .with_state(seen.clone());
    let client = client(spawn(router).await);
    let pin = Pin::parse("482913").unwrap();

    let error = client
        .post_empty::<serde_json::Value>("/api/v1/approvals/x/approve", Some(&pin))
        .await
        .unwrap_err();

    assert_eq!(error.api().map(|api| api.status), Some(307));
    assert!(
        seen.all().is_empty(),
        "the redirect target must not be contacted"
    );
}

#[tokio::test]
async fn success_bodies_that_are_not_the_expected_json_are_errors() {
    let router = Router::new().route(
        "/api/v1/auth/whoami",
        get(|| async { "<html>login portal</html>" }),
    );
    let client = client(spawn(router).await);
    let error = client
        .get::<AccountView>(enigm_api::paths::WHOAMI)
        .await
        .unwrap_err();
    assert!(matches!(error, RequestError::Decode { .. }), "{error:?}");
}

#[tokio::test]
async fn oversized_answers_are_refused() {
    let router = Router::new().route(
        "/api/v1/users",
        get(|| async { "x".repeat(MAX_RESPONSE_BYTES + 1) }),
    );
    let client = client(spawn(router).await);
    let error = client
        .get::<serde_json::Value>(enigm_api::paths::USERS)
        .await
        .unwrap_err();
    assert!(matches!(error, RequestError::TooLarge { .. }), "{error:?}");
}

#[tokio::test]
async fn an_unreachable_server_is_named() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let server = ServerUrl::parse(&format!("http://{address}")).unwrap();
    let client = client(server.clone());
    let error = client
        .get::<serde_json::Value>(enigm_api::paths::WHOAMI)
        .await
        .unwrap_err();
    assert!(
        matches!(error, RequestError::Unreachable { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("could not reach the command server at `{server}`")
    );
}

#[test]
fn error_bodies_map_to_client_errors() {
    let headers = HeaderMap::new();
    let body = br#"{"code":"last_owner","message":"the last owner cannot lose the owner role"}"#;
    let error = ClientError::from_response(StatusCode::CONFLICT, &headers, body);
    assert_eq!(
        error,
        ClientError {
            status: 409,
            code: "last_owner".to_owned(),
            message: "the last owner cannot lose the owner role".to_owned(),
            retry_after: None,
        }
    );
    assert_eq!(
        error.to_string(),
        "the last owner cannot lose the owner role (last_owner)"
    );
}

#[test]
fn error_texts_from_the_server_cannot_drive_the_terminal() {
    let body = serde_json::to_vec(&ErrorBody {
        code: "forbidden\u{1b}[2J".to_owned(),
        message: format!("not allowed\u{1b}]0;pwned\u{7}{}", "x".repeat(1000)),
    })
    .unwrap();
    let error = ClientError::from_response(StatusCode::FORBIDDEN, &HeaderMap::new(), &body);
    assert_eq!(error.code, "forbidden\u{fffd}[2J");
    assert!(!error.message.chars().any(char::is_control));
    assert_eq!(error.message.chars().count(), MAX_ERROR_TEXT_CHARS);
}

#[test]
fn unusable_retry_after_values_are_ignored() {
    let mut headers = HeaderMap::new();
    headers.insert(
        "retry-after",
        "Wed, 21 Oct 2026 07:28:00 GMT".parse().unwrap(),
    );
    let body = br#"{"code":"throttled","message":"slow down"}"#;
    assert_eq!(
        ClientError::from_response(StatusCode::TOO_MANY_REQUESTS, &headers, body).retry_after,
        None
    );
}

#[test]
fn server_urls_are_normalised_and_plain_http_is_loopback_only() {
    let ok: &[(&str, &str)] = &[
        ("https://command.example", "https://command.example"),
        (
            "https://command.example:8443/",
            "https://command.example:8443",
        ),
        (
            "https://command.example/prefix/",
            "https://command.example/prefix",
        ),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:8080/", "http://localhost:8080"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ];
    for (input, expected) in ok {
        assert_eq!(
            ServerUrl::parse(input)
                .map(|url| url.to_string())
                .as_deref(),
            Ok(*expected),
            "input `{input}`"
        );
    }
    type Expectation = fn(&ServerUrlError) -> bool;
    let refused: &[(&str, Expectation)] = &[
        ("http://command.example", |e| {
            matches!(e, ServerUrlError::PlainHttp(_))
        }),
        ("http://10.0.0.1:8080", |e| {
            matches!(e, ServerUrlError::PlainHttp(_))
        }),
        ("ftp://command.example", |e| {
            matches!(e, ServerUrlError::Scheme(_))
        }),
        ("command.example:8443", |e| {
            matches!(e, ServerUrlError::Scheme(_) | ServerUrlError::Invalid(_))
        }),
        ("https://user:pw@command.example", |e| {
            matches!(e, ServerUrlError::ExtraParts(_))
        }),
        ("https://command.example/?token=x", |e| {
            matches!(e, ServerUrlError::ExtraParts(_))
        }),
        ("not a url", |e| matches!(e, ServerUrlError::Invalid(_))),
    ];
    for (input, expected) in refused {
        let error = ServerUrl::parse(input).unwrap_err();
        assert!(expected(&error), "input `{input}` gave {error:?}");
    }
}

#[test]
fn extra_ca_certificates_must_be_pem() {
    let server = ServerUrl::parse("https://command.example").unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["command.example".to_owned()]).unwrap();
    assert!(
        CommandClient::new(server.clone(), Some(certified.cert.pem().as_bytes()), None).is_ok()
    );
    assert!(matches!(
        CommandClient::new(server.clone(), Some(b"not a certificate"), None),
        Err(BuildError::NoCertificate)
    ));
    assert!(matches!(
        CommandClient::new(
            server,
            None,
            Some(&SecretString::from("bad\ntoken".to_owned()))
        ),
        Err(BuildError::Token)
    ));
}
