//! Request latency of Command through the whole router on SQLite: session lookup, the Cedar
//! decision, the audited session touch, the handler and JSON encoding. Also the authorization
//! decision alone and a login with production Argon2 cost.
//!
//! Run: `cargo bench -p enigm-server --bench requests`. Set `ENIGM_BENCH_POSTGRES_URL` to a
//! fresh PostgreSQL database URL to measure the same requests on PostgreSQL too.

#![allow(
    clippy::expect_used,
    reason = "a benchmark whose set-up fails must stop loudly; it handles no untrusted input"
)]

mod support;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use criterion::{Criterion, criterion_group, criterion_main};
use enigm_crypto::HashCost;
use enigm_server::authz::Authorizer;
use enigm_types::{AdminId, Permission, Role};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use support::{app, login_request};

fn get(path: &str, token: &str) -> Request<Body> {
    Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request")
}

async fn call(router: &Router, request: Request<Body>) {
    let response = router.clone().oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let _bytes = response.into_body().collect().await.expect("body");
}

fn bench_backend(c: &mut Criterion, runtime: &tokio::runtime::Runtime, name: &str, url: &str) {
    let (router, token) = runtime.block_on(app(url, HashCost::Test));
    let mut group = c.benchmark_group(format!("request/{name}"));
    group.bench_function("GET whoami (auth + authz + audited touch)", |b| {
        b.to_async(runtime)
            .iter(|| call(&router, get(enigm_api::paths::WHOAMI, &token)));
    });
    group.bench_function("GET users", |b| {
        b.to_async(runtime)
            .iter(|| call(&router, get(enigm_api::paths::USERS, &token)));
    });
    group.bench_function("GET healthz (no auth)", |b| {
        b.to_async(runtime).iter(|| async {
            let request = Request::get(enigm_api::paths::HEALTHZ)
                .body(Body::empty())
                .expect("request");
            call(&router, request).await;
        });
    });
    group.finish();
}

fn requests(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("enigm-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sqlite = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    bench_backend(c, &runtime, "sqlite", &sqlite);
    if let Ok(url) = std::env::var("ENIGM_BENCH_POSTGRES_URL") {
        bench_backend(c, &runtime, "postgres", &url);
    }

    let login_dir = dir.join("login");
    std::fs::create_dir_all(&login_dir).expect("temp dir");
    let (router, _token) = runtime.block_on(app(
        &format!("sqlite://{}?mode=rwc", login_dir.join("bench.db").display()),
        HashCost::Production,
    ));
    let mut group = c.benchmark_group("login");
    group.sample_size(20);
    group.bench_function("POST login (argon2id m=19456 KiB, t=2)", |b| {
        b.to_async(&runtime).iter(|| call(&router, login_request()));
    });
    group.finish();
    let _removed = std::fs::remove_dir_all(&dir);
}

fn authorization(c: &mut Criterion) {
    let authorizer = Authorizer::new().expect("policies");
    let admin = AdminId::random();
    c.bench_function("cedar decision (security-admin, approvals.decide)", |b| {
        b.iter(|| {
            authorizer.is_allowed(admin, &[Role::SecurityAdmin], Permission::ApprovalsDecide)
        });
    });
}

criterion_group!(benches, requests, authorization);
criterion_main!(benches);
