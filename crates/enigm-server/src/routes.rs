//! The route table of Command: every route with the permission it needs. The router is built
//! from this table, so a route cannot exist without an authorization rule, and tests walk the
//! same table (authorization matrix, OpenAPI coverage).

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::handler::Handler;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use enigm_api::paths;
use enigm_types::Permission;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::extract::MAX_BODY_BYTES;
use crate::handlers::{
    approvals, attestation, audit, auth, devices, eligibility, lifecycle, meta, network, policies,
    proxy, releases, rollouts, sessions, tuf, users, vpn,
};
use crate::state::AppState;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No session (health, API description, login). The device routes are public to the guard
    /// because a device authenticates each request with its signature, checked by the handler.
    Public,
    /// A live session whose roles hold `permission`; `critical` routes also need the PIN.
    Authenticated {
        permission: Permission,
        critical: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

struct RouteEntry {
    spec: RouteSpec,
    handler: MethodRouter<AppState>,
}

fn entry<H, T>(method: Method, path: &'static str, access: Access, handler: H) -> RouteEntry
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
    RouteEntry {
        spec: RouteSpec {
            method,
            path,
            access,
        },
        handler: on(filter, handler),
    }
}

const fn read(permission: Permission) -> Access {
    Access::Authenticated {
        permission,
        critical: false,
    }
}

const fn change(permission: Permission) -> Access {
    Access::Authenticated {
        permission,
        critical: false,
    }
}

const fn critical(permission: Permission) -> Access {
    Access::Authenticated {
        permission,
        critical: true,
    }
}

fn entries() -> Vec<RouteEntry> {
    use Permission as P;
    vec![
        entry(Method::GET, paths::HEALTHZ, Access::Public, meta::healthz),
        entry(Method::GET, paths::OPENAPI, Access::Public, meta::openapi),
        entry(Method::POST, paths::LOGIN, Access::Public, auth::login),
        entry(Method::GET, paths::ROUTES, read(P::SelfRead), meta::routes),
        entry(
            Method::POST,
            paths::LOGOUT,
            change(P::SelfLogout),
            auth::logout,
        ),
        entry(Method::GET, paths::WHOAMI, read(P::SelfRead), auth::whoami),
        entry(
            Method::PUT,
            paths::PASSWORD,
            change(P::SelfPasswordChange),
            auth::change_password,
        ),
        entry(
            Method::PUT,
            paths::PIN,
            change(P::SelfPinSet),
            auth::set_pin,
        ),
        entry(
            Method::PUT,
            paths::DURESS_PIN,
            change(P::SelfPinSet),
            auth::set_duress_pin,
        ),
        entry(
            Method::POST,
            paths::TOTP,
            change(P::SelfTotpManage),
            auth::totp_enroll,
        ),
        entry(
            Method::POST,
            paths::TOTP_CONFIRM,
            change(P::SelfTotpManage),
            auth::totp_confirm,
        ),
        entry(
            Method::POST,
            paths::TOTP_REMOVE,
            change(P::SelfTotpManage),
            auth::totp_remove,
        ),
        entry(
            Method::GET,
            paths::OWN_SESSIONS,
            read(P::SelfSessionsManage),
            auth::own_sessions,
        ),
        entry(
            Method::DELETE,
            paths::OWN_SESSION,
            change(P::SelfSessionsManage),
            auth::close_own_session,
        ),
        entry(Method::GET, paths::USERS, read(P::UsersList), users::list),
        entry(
            Method::POST,
            paths::USERS,
            critical(P::UsersCreate),
            users::create,
        ),
        entry(Method::GET, paths::USER, read(P::UsersRead), users::read),
        entry(
            Method::POST,
            paths::USER_DISABLE,
            critical(P::UsersDisable),
            users::disable,
        ),
        entry(
            Method::POST,
            paths::USER_ENABLE,
            critical(P::UsersDisable),
            users::enable,
        ),
        entry(
            Method::POST,
            paths::USER_PIN_UNLOCK,
            critical(P::UsersPinUnlock),
            users::unlock_pin,
        ),
        entry(
            Method::POST,
            paths::USER_TOTP_RESET,
            critical(P::UsersTotpReset),
            users::request_totp_reset,
        ),
        entry(
            Method::POST,
            paths::USER_ROLES,
            change(P::RolesRequestGrant),
            users::request_role_grant,
        ),
        entry(
            Method::DELETE,
            paths::USER_ROLE,
            critical(P::RolesRevoke),
            users::revoke_role,
        ),
        entry(
            Method::GET,
            paths::SESSIONS,
            read(P::SessionsList),
            sessions::list,
        ),
        entry(
            Method::DELETE,
            paths::SESSION,
            critical(P::SessionsClose),
            sessions::close,
        ),
        entry(
            Method::GET,
            paths::APPROVALS,
            read(P::ApprovalsList),
            approvals::list,
        ),
        entry(
            Method::GET,
            paths::APPROVAL,
            read(P::ApprovalsList),
            approvals::read,
        ),
        entry(
            Method::POST,
            paths::APPROVAL_APPROVE,
            critical(P::ApprovalsDecide),
            approvals::approve,
        ),
        entry(
            Method::POST,
            paths::APPROVAL_REJECT,
            critical(P::ApprovalsDecide),
            approvals::reject,
        ),
        entry(
            Method::GET,
            paths::APPROVAL_RULES,
            read(P::ApprovalRulesRead),
            approvals::rules,
        ),
        entry(
            Method::PUT,
            paths::APPROVAL_RULE,
            change(P::ApprovalRulesRequestChange),
            approvals::request_rule_change,
        ),
        entry(
            Method::GET,
            paths::AUDIT_EVENTS,
            read(P::AuditRead),
            audit::list,
        ),
        entry(
            Method::GET,
            paths::AUDIT_CHECKPOINT,
            read(P::AuditRead),
            audit::checkpoint,
        ),
        entry(
            Method::GET,
            paths::AUDIT_LOG_KEY,
            read(P::AuditRead),
            audit::log_key,
        ),
        entry(
            Method::GET,
            paths::AUDIT_LEAVES,
            read(P::AuditRead),
            audit::leaves,
        ),
        entry(
            Method::GET,
            paths::AUDIT_LEAF,
            read(P::AuditRead),
            audit::leaf,
        ),
        entry(
            Method::GET,
            paths::AUDIT_CONSISTENCY,
            read(P::AuditRead),
            audit::consistency,
        ),
        entry(
            Method::GET,
            paths::AUDIT_LEGAL_HOLD,
            read(P::AuditRead),
            audit::retention,
        ),
        entry(
            Method::PUT,
            paths::AUDIT_LEGAL_HOLD,
            critical(P::AuditLegalHold),
            audit::set_legal_hold,
        ),
        entry(
            Method::POST,
            paths::ENROLLMENT_TOKENS,
            critical(P::DevicesEnroll),
            devices::create_token,
        ),
        entry(
            Method::GET,
            paths::DEVICES,
            read(P::DevicesRead),
            devices::list,
        ),
        entry(
            Method::GET,
            paths::DEVICE,
            read(P::DevicesRead),
            devices::read,
        ),
        entry(
            Method::POST,
            paths::DEVICE_LIFECYCLE,
            critical(P::DevicesManage),
            lifecycle::change,
        ),
        entry(
            Method::POST,
            paths::ELIGIBILITY,
            change(P::DevicesDecide),
            eligibility::decide,
        ),
        entry(
            Method::POST,
            paths::DEVICE_NETWORK_DECISION,
            change(P::DevicesDecide),
            network::decide,
        ),
        entry(
            Method::GET,
            paths::POLICIES,
            read(P::PoliciesRead),
            policies::list,
        ),
        entry(
            Method::POST,
            paths::POLICIES,
            change(P::PoliciesWrite),
            policies::create,
        ),
        entry(
            Method::GET,
            paths::POLICY,
            read(P::PoliciesRead),
            policies::read,
        ),
        entry(
            Method::POST,
            paths::POLICY_VERSIONS,
            critical(P::PoliciesWrite),
            policies::create_version,
        ),
        entry(
            Method::GET,
            paths::POLICY_VERSION,
            read(P::PoliciesRead),
            policies::version,
        ),
        entry(
            Method::GET,
            paths::POLICY_DIFF,
            read(P::PoliciesRead),
            policies::diff,
        ),
        entry(
            Method::POST,
            paths::POLICY_ASSIGN,
            critical(P::PoliciesWrite),
            policies::assign,
        ),
        entry(
            Method::POST,
            paths::POLICY_UNASSIGN,
            critical(P::PoliciesWrite),
            policies::unassign,
        ),
        entry(
            Method::GET,
            paths::POLICY_ASSIGNMENTS,
            read(P::PoliciesRead),
            policies::assignments,
        ),
        entry(
            Method::GET,
            paths::POLICY_BUNDLES,
            read(P::PoliciesRead),
            policies::bundles,
        ),
        entry(
            Method::POST,
            paths::DEVICE_ENROLL,
            Access::Public,
            devices::enroll,
        ),
        entry(
            Method::POST,
            paths::DEVICE_CHECK_INS,
            Access::Public,
            devices::check_in,
        ),
        entry(
            Method::GET,
            paths::DEVICE_COMMANDS,
            Access::Public,
            lifecycle::commands,
        ),
        entry(
            Method::POST,
            paths::DEVICE_COMMAND_ACK,
            Access::Public,
            lifecycle::acknowledge,
        ),
        entry(
            Method::POST,
            paths::DEVICE_ATTESTATION_CHALLENGE,
            Access::Public,
            attestation::challenge,
        ),
        entry(
            Method::POST,
            paths::DEVICE_ATTESTATION,
            Access::Public,
            attestation::attest,
        ),
        entry(
            Method::POST,
            paths::DEVICE_OTA_REPORTS,
            Access::Public,
            releases::device_report,
        ),
        entry(
            Method::POST,
            paths::DEVICE_OTA_OFFER,
            Access::Public,
            rollouts::device_offer,
        ),
        entry(Method::POST, paths::DEVICE_VPN, Access::Public, vpn::switch),
        entry(
            Method::GET,
            paths::VPN_GATEWAYS,
            read(P::PoliciesRead),
            vpn::list_gateways,
        ),
        entry(
            Method::POST,
            paths::VPN_GATEWAYS,
            change(P::PoliciesWrite),
            vpn::create_gateway,
        ),
        entry(
            Method::PATCH,
            paths::VPN_GATEWAY,
            change(P::PoliciesWrite),
            vpn::update_gateway,
        ),
        entry(
            Method::GET,
            paths::VPN_GATEWAY_PEERS,
            read(P::PoliciesRead),
            vpn::gateway_peers,
        ),
        entry(
            Method::POST,
            paths::DEVICE_PROXY_CREDENTIAL,
            Access::Public,
            proxy::issue,
        ),
        entry(
            Method::GET,
            paths::PROXY_CREDENTIAL_KEY,
            Access::Public,
            proxy::credential_key,
        ),
        entry(
            Method::GET,
            paths::PROXY_REVOCATIONS,
            Access::Public,
            proxy::revocations,
        ),
        entry(
            Method::GET,
            paths::RELEASES,
            read(P::ReleasesRead),
            releases::list,
        ),
        entry(
            Method::POST,
            paths::RELEASES,
            change(P::ReleasesManage),
            releases::create,
        ),
        entry(
            Method::GET,
            paths::RELEASE,
            read(P::ReleasesRead),
            releases::read,
        ),
        entry(
            Method::PUT,
            paths::RELEASE_ARTIFACT,
            change(P::ReleasesManage),
            releases::upload_artifact,
        ),
        entry(
            Method::POST,
            paths::RELEASE_SIGNATURES,
            critical(P::ReleasesSign),
            releases::hand_in_signatures,
        ),
        entry(
            Method::POST,
            paths::RELEASE_PUBLISH,
            critical(P::ReleasesManage),
            releases::publish,
        ),
        entry(
            Method::GET,
            paths::RELEASE_ROLLOUT,
            read(P::ReleasesRead),
            rollouts::read,
        ),
        entry(
            Method::PUT,
            paths::RELEASE_ROLLOUT_PLAN,
            change(P::ReleasesManage),
            rollouts::set_plan,
        ),
        entry(
            Method::POST,
            paths::RELEASE_ROLLOUT_ACTIONS,
            critical(P::ReleasesManage),
            rollouts::act,
        ),
        entry(
            Method::GET,
            paths::OTA_PINS,
            read(P::ReleasesRead),
            rollouts::pins,
        ),
        entry(
            Method::POST,
            paths::OTA_PINS,
            change(P::ReleasesManage),
            rollouts::pin,
        ),
        entry(
            Method::DELETE,
            paths::OTA_PIN,
            change(P::ReleasesManage),
            rollouts::unpin,
        ),
        entry(
            Method::PUT,
            paths::OTA_ROOT,
            critical(P::OtaRoot),
            releases::put_root,
        ),
        entry(
            Method::PUT,
            paths::OTA_TARGETS,
            critical(P::OtaRoot),
            releases::put_targets,
        ),
        entry(
            Method::GET,
            paths::OTA_ONLINE_KEYS,
            read(P::ReleasesRead),
            releases::online_keys,
        ),
        entry(
            Method::GET,
            paths::OTA_REPOSITORY,
            read(P::ReleasesRead),
            releases::repository_view,
        ),
        entry(
            Method::GET,
            paths::TUF_METADATA,
            Access::Public,
            tuf::metadata,
        ),
        entry(Method::GET, paths::TUF_TARGETS, Access::Public, tuf::target),
    ]
}

/// How long a request may take from its head to its answer, set on every request by the server
/// (see [`crate::edge::EdgeLimits::request_timeout`]); in-process tests run without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestDeadline(pub Duration);

/// Answers 408 (and closes the connection) when the request is not answered within its
/// [`RequestDeadline`]: a client that trickles its body holds a connection no longer than that.
async fn request_deadline(request: Request, next: Next) -> Response {
    let Some(RequestDeadline(limit)) = request.extensions().get::<RequestDeadline>().copied()
    else {
        return next.run(request).await;
    };
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let mut response = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request was not completed in time",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

/// The span each request is traced in: method and path, never the query string, which may
/// carry a secret a client put there (a PIN, a token) and would otherwise reach the debug log.
fn request_span(request: &Request) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        version = ?request.version(),
    )
}

/// Every route of the API with its access rule.
pub fn route_table() -> Vec<RouteSpec> {
    entries().into_iter().map(|entry| entry.spec).collect()
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let routes = gated_routes(&state, |_| true)
        .fallback(|| async { not_found() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        });
    common_layers(routes, state)
}

/// The application of a restricted listener (the Tor Gateway): only the routes `keep`
/// selects, gated as on the main listener. Every other method and path answers exactly as an
/// unknown path does (404 `not_found`, no `Allow` header), so the surface shows nothing of what
/// else exists.
pub(crate) fn surface_router(state: AppState, keep: impl Fn(&RouteSpec) -> bool) -> Router {
    let routes = gated_routes(&state, keep)
        .fallback(|| async { not_found() })
        .method_not_allowed_fallback(|| async { not_found() });
    // axum names a path's methods in `Allow` on its method fallback, outside every layer of
    // the router; an unknown path's answer has no such header, so it is taken off around the
    // whole router.
    let app = tower::ServiceExt::<Request>::map_response(
        common_layers(routes, state),
        |mut response: Response| {
            response.headers_mut().remove(header::ALLOW);
            response
        },
    );
    Router::new().fallback_service(app)
}

/// The answer to a path no route has.
fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// The routes `keep` selects, each behind its guard, deadline and metrics label.
fn gated_routes(state: &AppState, keep: impl Fn(&RouteSpec) -> bool) -> Router<AppState> {
    let mut router = Router::new();
    for RouteEntry { spec, handler } in entries() {
        if !keep(&spec) {
            continue;
        }
        let gate_state = state.clone();
        let access = spec.access;
        let mut gated = handler.route_layer(axum::middleware::from_fn(move |request, next| {
            crate::guard::guard(gate_state.clone(), access, request, next)
        }));
        // The artifact upload streams an image of any size from an authenticated release
        // manager: a deadline fit for every other request would cut it off.
        if spec.path != paths::RELEASE_ARTIFACT {
            gated = gated.route_layer(axum::middleware::from_fn(request_deadline));
        }
        // Outermost on the route, so that the guard's refusals carry the template too.
        let matched = crate::metrics::MatchedRoute {
            method: crate::metrics::method_label(&spec.method),
            route: spec.path,
        };
        gated = gated.route_layer(axum::middleware::from_fn(move |request, next| {
            crate::metrics::mark_route(matched, request, next)
        }));
        router = router.route(spec.path, gated);
    }
    router
}

/// What every listener's application has around its routes: the body limit, metrics, tracing
/// and the redaction of secret headers.
fn common_layers(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::measure,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
            axum::http::HeaderName::from_static(enigm_api::PIN_HEADER),
        ]))
        .with_state(state)
}
