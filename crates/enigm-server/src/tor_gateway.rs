//! The Tor Gateway: a second listener, on loopback only, for a local Tor daemon's onion service
//! to forward to (`HiddenServicePort 80 127.0.0.1:PORT`). It serves the public read-only
//! surfaces of Command and nothing else (enigm-docs §10): the routes of
//! [`TOR_GATEWAY_SURFACE`], from the same route table and gates as the main listener. Every
//! other method and path answers exactly as an unknown path does.
//!
//! Every request here comes from the Tor daemon, over loopback: a per-address cap would count
//! all onion clients as one, so the gateway has a global request rate (a token bucket) and a
//! connection cap as large for that one address as in all, besides the edge's head, body and
//! request time limits.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use enigm_api::paths;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::edge::EdgeLimits;
use crate::error::ApiError;
use crate::routes::RouteSpec;
use crate::state::AppState;

/// The routes the Tor Gateway serves: public (no session, no device signature), read-only, and
/// already meant for anyone: liveness, and the TUF repository (metadata and targets, as a static
/// mirror serves them; clients verify both against the signed metadata).
///
/// Left out on purpose: login and every session route; the device routes (a device talks to
/// Command's main address); the OpenAPI document, which lists every admin and device route
/// this surface must not reveal; the audit log's checkpoint and key, which need a session
/// (`audit:read`); metrics, which have their own listener. A test holds every entry to the
/// route table: it exists, is [`crate::routes::Access::Public`] and is `GET` (axum serves `HEAD`
/// with it).
pub const TOR_GATEWAY_SURFACE: &[(Method, &str)] = &[
    (Method::GET, paths::HEALTHZ),
    (Method::GET, paths::TUF_METADATA),
    (Method::GET, paths::TUF_TARGETS),
];

/// Whether `route` is on the Tor Gateway's surface.
pub fn on_surface(route: &RouteSpec) -> bool {
    TOR_GATEWAY_SURFACE
        .iter()
        .any(|(method, path)| *method == route.method && *path == route.path)
}

/// Connections the gateway serves at once, all from the Tor daemon.
pub const MAX_CONNECTIONS: usize = 256;

/// The gateway's global request rate: `burst` requests at once, then one per `every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRate {
    pub burst: u32,
    pub every: Duration,
}

impl RequestRate {
    /// 100 requests a second, bursts of 200: far more than a TUF client's handful of files per
    /// update, and a bound on what anyone on the onion address can make Command do.
    pub const DEFAULT: RequestRate = RequestRate {
        burst: 200,
        every: Duration::from_millis(10),
    };
}

/// A token bucket over an injected instant.
#[derive(Debug)]
struct Bucket {
    rate: RequestRate,
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn new(rate: RequestRate, now: Instant) -> Bucket {
        Bucket {
            rate,
            tokens: f64::from(rate.burst),
            updated: now,
        }
    }

    /// Takes a token if one is left at `now`.
    fn take(&mut self, now: Instant) -> bool {
        let every = self.rate.every.as_secs_f64().max(f64::MIN_POSITIVE);
        let refilled = now.saturating_duration_since(self.updated).as_secs_f64() / every;
        self.tokens = (self.tokens + refilled).min(f64::from(self.rate.burst));
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The gateway's application: the surface's routes (see [`crate::routes`]), the global rate,
/// `Referrer-Policy: no-referrer`, and no absolute `Location`.
pub fn router(state: AppState, rate: RequestRate) -> Router {
    let bucket = Arc::new(Mutex::new(Bucket::new(rate, Instant::now())));
    crate::routes::surface_router(state, on_surface)
        .layer(axum::middleware::from_fn(move |request, next| {
            throttle(bucket.clone(), request, next)
        }))
        .layer(axum::middleware::map_response(no_absolute_location))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
}

async fn throttle(bucket: Arc<Mutex<Bucket>>, request: Request, next: Next) -> Response {
    let admitted = bucket
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take(Instant::now());
    if admitted {
        return next.run(request).await;
    }
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "the Tor Gateway is at its request rate: try again later",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// No route on the surface sends a `Location` today; should one ever, an absolute URL in it
/// would name a clearnet host to an onion client, so only a path reference may pass.
async fn no_absolute_location(mut response: Response) -> Response {
    for name in [header::LOCATION, header::CONTENT_LOCATION] {
        let absolute = response.headers().get(&name).is_some_and(|value| {
            let value = value.as_bytes();
            !value.starts_with(b"/") || value.starts_with(b"//")
        });
        if absolute {
            response.headers_mut().remove(&name);
        }
    }
    response
}

/// Refuses an address off loopback: the onion service reaches the gateway over loopback, and
/// anywhere else it would be a way to Command that bypasses Tor.
pub fn check_address(address: SocketAddr) -> anyhow::Result<()> {
    if !address.ip().is_loopback() {
        anyhow::bail!(
            "refusing to serve the Tor Gateway on {address}: it must be a loopback address \
             (the local Tor daemon forwards to it; anywhere else it would bypass Tor), e.g. \
             --tor-gateway-listen 127.0.0.1:8480"
        );
    }
    Ok(())
}

/// Serves the gateway on `listener` until the task is aborted, with the edge's head and
/// request timeouts of `limits` and [`MAX_CONNECTIONS`] for the one address all requests come
/// from.
pub fn spawn(
    listener: std::net::TcpListener,
    state: AppState,
    limits: EdgeLimits,
    rate: RequestRate,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let local = listener.local_addr()?;
    check_address(local)?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)
        .with_context(|| format!("cannot serve the Tor Gateway on {local}"))?;
    let limits = EdgeLimits {
        max_connections: MAX_CONNECTIONS,
        max_connections_per_ip: MAX_CONNECTIONS,
        ..limits
    };
    Ok(tokio::spawn(crate::edge::serve(
        listener,
        router(state, rate),
        None,
        limits,
        std::future::pending(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_its_burst_then_one_per_interval() {
        let start = Instant::now();
        let mut bucket = Bucket::new(
            RequestRate {
                burst: 3,
                every: Duration::from_secs(1),
            },
            start,
        );
        assert!((0..3).all(|_| bucket.take(start)));
        assert!(!bucket.take(start));
        assert!(!bucket.take(start + Duration::from_millis(500)));
        assert!(bucket.take(start + Duration::from_secs(1)));
        assert!(!bucket.take(start + Duration::from_secs(1)));
        // A long quiet spell refills up to the burst, no more.
        let later = start + Duration::from_secs(3600);
        assert!((0..3).all(|_| bucket.take(later)));
        assert!(!bucket.take(later));
    }

    #[test]
    fn only_loopback_addresses_are_accepted() {
        assert!(check_address("127.0.0.1:8480".parse().unwrap()).is_ok());
        assert!(check_address("[::1]:8480".parse().unwrap()).is_ok());
        let refused = check_address("0.0.0.0:8480".parse().unwrap()).unwrap_err();
        assert!(refused.to_string().contains("loopback"), "{refused}");
        assert!(check_address("192.0.2.1:80".parse().unwrap()).is_err());
    }
}
