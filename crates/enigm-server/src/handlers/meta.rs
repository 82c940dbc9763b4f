//! Health, the OpenAPI description and the route table.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use enigm_api::{Health, RouteView};
use utoipa::OpenApi as _;

use crate::error::{ApiError, ApiResult};
use crate::routes::{Access, route_table};
use crate::state::AppState;

/// Liveness and database reachability.
#[utoipa::path(get, path = enigm_api::paths::HEALTHZ, tag = "meta",
    responses((status = 200, body = Health), (status = 503, body = enigm_api::ErrorBody)))]
pub async fn healthz(State(state): State<AppState>) -> ApiResult<Json<Health>> {
    match state.store().ping().await {
        Ok(()) => Ok(Json(Health {
            status: "ok".to_owned(),
        })),
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "database unreachable",
        )),
    }
}

/// This document: the OpenAPI 3 description of the whole API.
#[utoipa::path(get, path = enigm_api::paths::OPENAPI, tag = "meta", responses((status = 200, description = "OpenAPI 3 document")))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::ApiDoc::openapi())
}

/// Every route with the permission it needs and whether the PIN is required.
#[utoipa::path(get, path = enigm_api::paths::ROUTES, tag = "meta", security(("bearer" = [])),
    responses((status = 200, body = [RouteView])))]
pub async fn routes() -> Json<Vec<RouteView>> {
    Json(
        route_table()
            .into_iter()
            .map(|spec| {
                let (permission, critical) = match spec.access {
                    Access::Public => (None, false),
                    Access::Authenticated {
                        permission,
                        critical,
                    } => (Some(permission), critical),
                };
                RouteView {
                    method: spec.method.to_string(),
                    path: spec.path.to_owned(),
                    permission,
                    critical,
                }
            })
            .collect(),
    )
}
