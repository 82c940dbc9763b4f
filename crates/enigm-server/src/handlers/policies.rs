//! Policy routes: named policies, their versions and diffs, and assignments to device groups.
//! A new version and an assignment change answer 202 with the approval request another
//! administrator decides (critical: they need the PIN). The policies service does the work.
//!
//! Precedence of the policy a device is evaluated under, per kind: its group's assignment, else
//! the policy it enrolled with (its enrollment token's), else the baseline.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use enigm_api::policies::{
    AssignPolicyRequest, CreatePolicyRequest, CreatePolicyVersionRequest, PolicyAssignmentList,
    PolicyAssignmentsQuery, PolicyChangeRequested, PolicyDetail, PolicyDiffQuery, PolicyDiffView,
    PolicyList, PolicyVersionView, PolicyView, UnassignPolicyRequest,
};
use enigm_types::PolicyId;

use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::guard::Caller;
use crate::services::policies;
use crate::state::AppState;

/// Every policy, by name.
#[utoipa::path(get, path = enigm_api::paths::POLICIES, tag = "policies", security(("bearer" = [])),
    responses((status = 200, body = PolicyList)))]
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<PolicyList>> {
    Ok(Json(PolicyList {
        items: policies::list(&state).await?,
        next_cursor: None,
    }))
}

/// Create a named policy of a kind (`trust`, `attestation`; `network` and `configuration` are
/// refused as `policy_kind_not_supported`). It has no version until one is approved.
#[utoipa::path(post, path = enigm_api::paths::POLICIES, tag = "policies", security(("bearer" = [])),
    request_body = CreatePolicyRequest,
    responses((status = 201, body = PolicyView), (status = 409, body = enigm_api::ErrorBody),
        (status = 422, body = enigm_api::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreatePolicyRequest>,
) -> ApiResult<(StatusCode, Json<PolicyView>)> {
    Ok((
        StatusCode::CREATED,
        Json(policies::create(&state, &caller, request).await?),
    ))
}

/// A policy with its numbered versions.
#[utoipa::path(get, path = enigm_api::paths::POLICY, tag = "policies", security(("bearer" = [])),
    params(("id" = PolicyId, Path, description = "policy id")),
    responses((status = 200, body = PolicyDetail), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn read(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<PolicyId>,
) -> ApiResult<Json<PolicyDetail>> {
    Ok(Json(policies::read(&state, id).await?))
}

/// Propose a new version (critical: needs the PIN). The content is validated by the parser of
/// an enrollment token's policy of the kind; it becomes the next numbered version when another
/// administrator approves (202 with the approval request).
#[utoipa::path(post, path = enigm_api::paths::POLICY_VERSIONS, tag = "policies", security(("bearer" = [])),
    request_body = CreatePolicyVersionRequest,
    params(("id" = PolicyId, Path, description = "policy id"),
        ("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 202, body = PolicyChangeRequested), (status = 404, body = enigm_api::ErrorBody),
        (status = 422, body = enigm_api::ErrorBody)))]
pub async fn create_version(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<PolicyId>,
    ApiJson(request): ApiJson<CreatePolicyVersionRequest>,
) -> ApiResult<(StatusCode, Json<PolicyChangeRequested>)> {
    let approval = policies::propose_version(&state, &caller, id, request).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PolicyChangeRequested { approval }),
    ))
}

/// One numbered version with its content.
#[utoipa::path(get, path = enigm_api::paths::POLICY_VERSION, tag = "policies", security(("bearer" = [])),
    params(("id" = PolicyId, Path, description = "policy id"),
        ("version" = u32, Path, description = "version number")),
    responses((status = 200, body = PolicyVersionView), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn version(
    State(state): State<AppState>,
    ApiPath((id, version)): ApiPath<(PolicyId, u32)>,
) -> ApiResult<Json<PolicyVersionView>> {
    Ok(Json(policies::version(&state, id, version).await?))
}

/// The unified diff of two versions' canonical JSON.
#[utoipa::path(get, path = enigm_api::paths::POLICY_DIFF, tag = "policies", security(("bearer" = [])),
    params(("id" = PolicyId, Path, description = "policy id"), PolicyDiffQuery),
    responses((status = 200, body = PolicyDiffView), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn diff(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<PolicyId>,
    ApiQuery(query): ApiQuery<PolicyDiffQuery>,
) -> ApiResult<Json<PolicyDiffView>> {
    Ok(Json(
        policies::diff(&state, id, query.from, query.to).await?,
    ))
}

/// Request that device groups follow a version of the policy (critical: needs the PIN; 202
/// with the approval request). The assignment pins the version; a version the policy does not
/// have is 409 `no_such_version`.
#[utoipa::path(post, path = enigm_api::paths::POLICY_ASSIGN, tag = "policies", security(("bearer" = [])),
    request_body = AssignPolicyRequest,
    params(("id" = PolicyId, Path, description = "policy id"),
        ("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 202, body = PolicyChangeRequested), (status = 404, body = enigm_api::ErrorBody),
        (status = 409, body = enigm_api::ErrorBody), (status = 422, body = enigm_api::ErrorBody)))]
pub async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<PolicyId>,
    ApiJson(request): ApiJson<AssignPolicyRequest>,
) -> ApiResult<(StatusCode, Json<PolicyChangeRequested>)> {
    let approval = policies::request_assign(&state, &caller, id, request).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PolicyChangeRequested { approval }),
    ))
}

/// Request that device groups stop following the policy (critical: needs the PIN; 202 with
/// the approval request); their devices fall back to their enrollment policy.
#[utoipa::path(post, path = enigm_api::paths::POLICY_UNASSIGN, tag = "policies", security(("bearer" = [])),
    request_body = UnassignPolicyRequest,
    params(("id" = PolicyId, Path, description = "policy id"),
        ("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 202, body = PolicyChangeRequested), (status = 404, body = enigm_api::ErrorBody),
        (status = 409, body = enigm_api::ErrorBody), (status = 422, body = enigm_api::ErrorBody)))]
pub async fn unassign(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<PolicyId>,
    ApiJson(request): ApiJson<UnassignPolicyRequest>,
) -> ApiResult<(StatusCode, Json<PolicyChangeRequested>)> {
    let approval = policies::request_unassign(&state, &caller, id, request).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PolicyChangeRequested { approval }),
    ))
}

/// Every assignment, by kind and group (`?policy=ID` for one policy's).
#[utoipa::path(get, path = enigm_api::paths::POLICY_ASSIGNMENTS, tag = "policies", security(("bearer" = [])),
    params(PolicyAssignmentsQuery),
    responses((status = 200, body = PolicyAssignmentList), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn assignments(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PolicyAssignmentsQuery>,
) -> ApiResult<Json<PolicyAssignmentList>> {
    Ok(Json(PolicyAssignmentList {
        items: policies::assignments(&state, query.policy).await?,
        next_cursor: None,
    }))
}

/// The newest policy bundle of each device group, by group, with a warning when Command cannot
/// publish bundles (the OTA targets metadata does not delegate them to its online key).
#[utoipa::path(get, path = enigm_api::paths::POLICY_BUNDLES, tag = "policies", security(("bearer" = [])),
    responses((status = 200, body = enigm_api::policy_bundles::PolicyBundleList)))]
pub async fn bundles(
    State(state): State<AppState>,
) -> ApiResult<Json<enigm_api::policy_bundles::PolicyBundleList>> {
    Ok(Json(crate::services::policy_bundles::list(&state).await?))
}
