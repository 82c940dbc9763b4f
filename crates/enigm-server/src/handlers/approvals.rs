//! Multi-admin approval routes. A sensitive action becomes a request with a justification; another
//! administrator whose role the approval rule names decides with their PIN; once enough
//! approvals are counted the action executes, exactly once, in the same transaction (the
//! approvals service).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use enigm_api::{ApprovalListQuery, ApprovalRuleChangeRequest, ApprovalRuleView, ApprovalView};
use enigm_store::DecisionKind;
use enigm_types::{ApprovalAction, ApprovalId, ApprovalKind, ApprovalRule};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::guard::Caller;
use crate::services::approvals;
use crate::state::AppState;

/// Approval requests, newest first, each with its subject resolved (what it would do).
#[utoipa::path(get, path = enigm_api::paths::APPROVALS, tag = "approvals", security(("bearer" = [])),
    params(ApprovalListQuery), responses((status = 200, body = [ApprovalView]), (status = 400, body = enigm_api::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ApprovalListQuery>,
) -> ApiResult<Json<Vec<ApprovalView>>> {
    let now = state.now();
    let since = enigm_api::since::parse(query.since.as_deref());
    let records = state
        .store()
        .list_approvals(query.state, since, now)
        .await?;
    let mut views = Vec::with_capacity(records.len());
    for record in &records {
        views.push(approvals::view(&state, record, now).await?);
    }
    Ok(Json(views))
}

/// One approval request.
#[utoipa::path(get, path = enigm_api::paths::APPROVAL, tag = "approvals", security(("bearer" = [])),
    params(("id" = ApprovalId, Path, description = "approval id")),
    responses((status = 200, body = ApprovalView), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn read(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ApprovalId>,
) -> ApiResult<Json<ApprovalView>> {
    let record = state
        .store()
        .approval_by_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found("approval request"))?;
    Ok(Json(approvals::view(&state, &record, state.now()).await?))
}

/// Approve a request (critical: needs the PIN). Executes the action when the threshold is met.
#[utoipa::path(post, path = enigm_api::paths::APPROVAL_APPROVE, tag = "approvals", security(("bearer" = [])),
    params(("id" = ApprovalId, Path, description = "approval id"), ("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 200, body = ApprovalView), (status = 403, body = enigm_api::ErrorBody), (status = 409, body = enigm_api::ErrorBody)))]
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ApprovalId>,
) -> ApiResult<Json<ApprovalView>> {
    let view = approvals::decide(&state, &caller, id, DecisionKind::Approve).await?;
    Ok(Json(view))
}

/// Reject a request (critical: needs the PIN). One rejection closes it.
#[utoipa::path(post, path = enigm_api::paths::APPROVAL_REJECT, tag = "approvals", security(("bearer" = [])),
    params(("id" = ApprovalId, Path, description = "approval id"), ("x-enigm-pin" = String, Header, description = "critical-operation PIN")),
    responses((status = 200, body = ApprovalView), (status = 403, body = enigm_api::ErrorBody), (status = 409, body = enigm_api::ErrorBody)))]
pub async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ApprovalId>,
) -> ApiResult<Json<ApprovalView>> {
    let view = approvals::decide(&state, &caller, id, DecisionKind::Reject).await?;
    Ok(Json(view))
}

/// The approval rule of each kind of request.
#[utoipa::path(get, path = enigm_api::paths::APPROVAL_RULES, tag = "approvals", security(("bearer" = [])),
    responses((status = 200, body = [ApprovalRuleView])))]
pub async fn rules(State(state): State<AppState>) -> ApiResult<Json<Vec<ApprovalRuleView>>> {
    let rules = state.store().approval_rules().await?;
    Ok(Json(
        rules
            .into_iter()
            .map(|(kind, rule)| ApprovalRuleView {
                kind,
                required_approvals: rule.required_approvals(),
                approver_roles: rule.approver_roles().to_vec(),
            })
            .collect(),
    ))
}

/// Request a change of an approval rule; the change itself needs an approval.
#[utoipa::path(put, path = enigm_api::paths::APPROVAL_RULE, tag = "approvals", security(("bearer" = [])),
    request_body = ApprovalRuleChangeRequest, params(("kind" = ApprovalKind, Path, description = "kind of request")),
    responses((status = 202, body = ApprovalView), (status = 422, body = enigm_api::ErrorBody)))]
pub async fn request_rule_change(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(target_kind): ApiPath<ApprovalKind>,
    ApiJson(request): ApiJson<ApprovalRuleChangeRequest>,
) -> ApiResult<(StatusCode, Json<ApprovalView>)> {
    let rule = ApprovalRule::new(request.required_approvals, request.approver_roles)
        .map_err(|error| ApiError::unprocessable("invalid_rule", error.to_string()))?;
    approvals::check_rule_approvers(&state, &rule)?;
    let action = ApprovalAction::ApprovalRuleChange { target_kind, rule };
    let view = approvals::open_request(&state, &caller, action, &request.justification).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}
