//! Prometheus metrics of one Command process, served in the text exposition format on their own
//! listen address (`enigm up --metrics-listen`), apart from the API.
//!
//! Labels are closed sets chosen in code: the route *template* (`/api/v1/devices/{handle}`,
//! never the path a client sent), the method, the status code, and outcome names and error
//! codes that are `&'static str`. No label is ever built from request data, so no device
//! handle, user name, address or raw path can reach a series (and the number of series stays
//! bounded whatever clients send). Counters belong to this process; with several processes on
//! one database each exposes its own and Prometheus sums them. What lives in the database
//! (pending approvals, the audit tree) is read at scrape time, so every process answers the
//! deployment's value.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::error::ApiResult;
use crate::state::AppState;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The route a request matched, as its template; put on the response by the route's own layer
/// so that the outer request layer (which runs before routing) can label what it measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatchedRoute {
    pub method: &'static str,
    pub route: &'static str,
}

/// The route label of a request no route matched (a 404 or 405 of the fallback).
const UNMATCHED: &str = "unmatched";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    /// `accepted` (or the success's own name), else the stable error code of the refusal.
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttestationLabels {
    format: &'static str,
    /// `accepted` or the rejection reason.
    verdict: &'static str,
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// Every metric of the process, and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    check_ins: Family<OutcomeLabels, Counter>,
    enrollments: Family<OutcomeLabels, Counter>,
    attestations: Family<AttestationLabels, Counter>,
    ota_installs: Family<OutcomeLabels, Counter>,
    ota_offers: Family<OutcomeLabels, Counter>,
    approvals_pending: Gauge,
    audit_tree_size: Gauge,
    audit_sequencer_lag: Gauge,
    process_cpu_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
}

/// Request latency buckets: 1 ms to about 16 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("enigm");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        let latency = LatencyFamily::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's head to its answer, by method and route template",
            latency.clone(),
        );
        let check_ins = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "device_check_ins",
            "Device check-ins, by outcome (accepted, or the error code of the refusal)",
            check_ins.clone(),
        );
        let enrollments = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "device_enrollments",
            "Device enrollments, by outcome (enrolled, or the error code of the refusal)",
            enrollments.clone(),
        );
        let attestations = Family::<AttestationLabels, Counter>::default();
        registry.register(
            "attestations",
            "Attestation appraisals (at enrollment and later), by evidence format and verdict",
            attestations.clone(),
        );
        let ota_installs = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "ota_installs",
            "OTA install reports from devices, by outcome",
            ota_installs.clone(),
        );
        let ota_offers = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "ota_offers",
            "The director's answers to devices' update requests: offered or none",
            ota_offers.clone(),
        );
        let approvals_pending = Gauge::default();
        registry.register(
            "approvals_pending",
            "Approval requests pending and not expired (read from the database at scrape time)",
            approvals_pending.clone(),
        );
        let audit_tree_size = Gauge::default();
        registry.register(
            "audit_tree_size",
            "Leaves folded into the audit log's Merkle tree (read at scrape time)",
            audit_tree_size.clone(),
        );
        let audit_sequencer_lag = Gauge::default();
        registry.register(
            "audit_sequencer_lag",
            "Committed audit events not yet folded into the tree (read at scrape time)",
            audit_sequencer_lag.clone(),
        );
        let process_cpu_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "process_cpu_seconds",
            "CPU time this process has used, user and system, in seconds (read at scrape \
             time; its rate is the cores the process keeps busy)",
            process_cpu_seconds.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            check_ins,
            enrollments,
            attestations,
            ota_installs,
            ota_offers,
            approvals_pending,
            audit_tree_size,
            audit_sequencer_lag,
            process_cpu_seconds,
        }
    }

    fn request(&self, route: MatchedRoute, status: StatusCode, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: route.method,
                route: route.route,
                status: status.as_u16(),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method: route.method,
                route: route.route,
            })
            .observe(seconds);
    }

    /// Counts a check-in: `accepted`, or the error code of its refusal.
    pub fn check_in<T>(&self, result: &ApiResult<T>) {
        self.check_ins
            .get_or_create(&OutcomeLabels {
                outcome: outcome(result, "accepted"),
            })
            .inc();
    }

    /// Counts an enrollment: `enrolled`, or the error code of its refusal.
    pub fn enrollment<T>(&self, result: &ApiResult<T>) {
        self.enrollments
            .get_or_create(&OutcomeLabels {
                outcome: outcome(result, "enrolled"),
            })
            .inc();
    }

    /// Counts an attestation appraisal.
    pub fn attestation(&self, format: &'static str, verdict: &'static str) {
        self.attestations
            .get_or_create(&AttestationLabels { format, verdict })
            .inc();
    }

    /// Counts an install report a device handed in.
    pub fn ota_install(&self, outcome: &'static str) {
        self.ota_installs
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn ota_offer(&self, offered: bool) {
        let outcome = if offered { "offered" } else { "none" };
        self.ota_offers
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// The metrics in the text exposition format, after reading the database's gauges.
    pub async fn render(&self, state: &AppState) -> Result<String, enigm_store::StoreError> {
        let store = state.store();
        let pending = store.count_pending_approvals(state.now()).await?;
        let tree_size = store.audit_tree_size().await?;
        let leaves = store.audit_leaf_count().await?;
        self.approvals_pending.set(pending);
        self.audit_tree_size
            .set(i64::try_from(tree_size).unwrap_or(i64::MAX));
        self.audit_sequencer_lag
            .set(i64::try_from(leaves.saturating_sub(tree_size)).unwrap_or(i64::MAX));
        self.process_cpu_seconds.set(process_cpu_seconds());
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        Ok(text)
    }
}

/// The CPU time of every thread of this process so far (`CLOCK_PROCESS_CPUTIME_ID`).
fn process_cpu_seconds() -> f64 {
    let used = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    used.tv_sec as f64 + used.tv_nsec as f64 / 1e9
}

fn outcome<T>(result: &ApiResult<T>, success: &'static str) -> &'static str {
    match result {
        Ok(_) => success,
        Err(error) => error.code(),
    }
}

/// The outer layer of the API: counts and times every request by the route it matched.
pub(crate) async fn measure(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<MatchedRoute>()
        .copied()
        .unwrap_or(MatchedRoute {
            method: method_label(&method),
            route: UNMATCHED,
        });
    state
        .metrics
        .request(route, response.status(), started.elapsed().as_secs_f64());
    response
}

/// A method's name for a label: the standard ones, and `other` for any extension method a
/// client made up.
pub(crate) fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::TRACE,
        Method::CONNECT,
    ]
    .into_iter()
    .zip([
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
    ])
    .find_map(|(known, name)| (known == method).then_some(name))
    .unwrap_or("other")
}

/// The route's own layer: marks its answers with the route template.
pub(crate) async fn mark_route(route: MatchedRoute, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.extensions_mut().insert(route);
    response
}

/// The metrics application: `GET /metrics`, nothing else.
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(state)
}

/// Answers the metrics; 503 when the database cannot be read, so that the scrape fails visibly
/// (`up == 0`) instead of serving gauges that silently stopped moving.
async fn scrape(State(state): State<AppState>) -> Response {
    match state.metrics.render(&state).await {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(error) => {
            tracing::warn!(error = %error, "metrics scrape: cannot read the database");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the database cannot be read\n",
            )
                .into_response()
        }
    }
}
