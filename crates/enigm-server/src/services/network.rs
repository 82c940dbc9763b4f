//! Network routing decisions Command makes for a device (issue 16, item 6): the flow is decided
//! by `enigm-netpolicy` under the network policy assigned to the device's group, with the
//! device's trust state and lifecycle from Command's own record. No network policy means
//! `block(no-policy)`: a device is never routed by default.
//!
//! Each decision is audited as the route's category, the policy version and the rule that
//! decided, with the block's category as the reason; the flow itself (app, category, domain,
//! address, network) is never written anywhere.

use enigm_api::network::{LayerVerdictView, NetworkDecisionView, NetworkFlow, NetworkPolicyRef};
use enigm_netpolicy::{
    BlockReason, CompiledPolicy, Decision, DeviceContext, Explanation, Flow, Route, explain,
};
use enigm_store::AssignedPolicy;
use enigm_types::{
    Actor, AuditAction, AuditEvent, AuditTarget, DeviceHandle, NetworkRoute, NetworkRuleId,
    Outcome, PolicyKind, ReasonCategory,
};

use crate::error::{ApiError, ApiResult};
use crate::guard::Caller;
use crate::state::AppState;

/// Decides `flow` for the device `handle` and audits the decision.
pub async fn decide_for_device(
    state: &AppState,
    caller: &Caller,
    handle: DeviceHandle,
    flow: NetworkFlow,
) -> ApiResult<NetworkDecisionView> {
    if let Some(problem) = flow.oversized() {
        return Err(ApiError::unprocessable("invalid_body", problem));
    }
    let now = state.now();
    let store = state.store();
    let device = store
        .device(&handle)
        .await?
        .ok_or_else(|| ApiError::not_found("device"))?;
    // A device Command has told to retire or wipe is on its way out, as for eligibility.
    let leaving = store.device_lifecycle(&handle).await?.pending.is_some();
    let assigned = store.group_policies(&device.group).await?;
    let network = assigned.iter().find(|a| a.kind == PolicyKind::Network);
    let context = DeviceContext {
        trust_state: Some(device.posture.trust_state),
        lifecycle: Some(device.state),
    };
    let view = if leaving {
        let explanation = Explanation {
            decision: Decision::fail_closed(BlockReason::DeviceNotActive),
            layers: Vec::new(),
        };
        view_of(&explanation, network, &context)
    } else {
        // A stored version was checked when it was created; one that no longer compiles (a
        // newer engine refusing it) is no policy, which blocks.
        let compiled =
            network.and_then(|policy| CompiledPolicy::from_json(policy.content.as_bytes()).ok());
        view_of(
            &explain(compiled.as_ref(), &context, &engine_flow(&flow)),
            network,
            &context,
        )
    };
    state
        .audit(&[audit_event(now, caller, handle, network, &view)?])
        .await?;
    Ok(view)
}

/// The engine's view of a flow on the wire.
pub fn engine_flow(flow: &NetworkFlow) -> Flow<'_> {
    Flow {
        app: flow.app.as_deref(),
        category: flow.category.as_deref(),
        domain: flow.domain.as_deref(),
        ip: flow.address,
        network: flow.network.as_deref(),
    }
}

/// The route's category, VPN location and block reason of an engine route.
fn route_parts(route: &Route<'_>) -> (NetworkRoute, Option<String>, Option<String>) {
    match route {
        Route::EnigmProxy => (NetworkRoute::EnigmProxy, None, None),
        Route::Vpn(location) => (NetworkRoute::Vpn, Some((*location).to_owned()), None),
        Route::TorGateway => (NetworkRoute::TorGateway, None, None),
        Route::Direct => (NetworkRoute::Direct, None, None),
        Route::Block(reason) => (NetworkRoute::Block, None, Some(reason.as_str().to_owned())),
    }
}

/// The answer for an explanation, with the device context used.
pub fn view_of(
    explanation: &Explanation<'_>,
    network: Option<&AssignedPolicy>,
    context: &DeviceContext,
) -> NetworkDecisionView {
    let (route, location, reason) = route_parts(&explanation.decision.route);
    NetworkDecisionView {
        route,
        location,
        reason,
        rule: explanation.decision.rule.to_owned(),
        layers: explanation
            .layers
            .iter()
            .map(|verdict| LayerVerdictView {
                layer: verdict.layer.to_owned(),
                rule: verdict.rule.map(str::to_owned),
            })
            .collect(),
        policy: network.map(|policy| NetworkPolicyRef {
            policy: policy.policy,
            name: policy.policy_name.clone(),
            version: policy.version,
        }),
        trust_state: context.trust_state,
        lifecycle: context.lifecycle,
    }
}

/// The audit event of a decision: route category, policy version, rule; a block's category as
/// the reason. Nothing of the flow.
fn audit_event(
    now: enigm_types::Timestamp,
    caller: &Caller,
    handle: DeviceHandle,
    network: Option<&AssignedPolicy>,
    view: &NetworkDecisionView,
) -> ApiResult<AuditEvent> {
    let rule = NetworkRuleId::parse(&view.rule).map_err(|error| ApiError::internal(&error))?;
    let (outcome, reason) = match view.route {
        NetworkRoute::Block => (
            Outcome::Denied,
            Some(block_category(view.reason.as_deref())),
        ),
        _ => (Outcome::Success, None),
    };
    let mut event = AuditEvent::new(
        now,
        Actor::Admin(caller.admin.id),
        AuditAction::DeviceNetworkDecision,
        AuditTarget::NetworkDecision {
            handle,
            policy: network.map(|policy| policy.policy),
            version: network.map(|policy| policy.version),
            route: view.route,
            rule,
        },
        outcome,
    );
    if let Some(reason) = reason {
        event = event.with_reason(reason);
    }
    Ok(event)
}

/// The audit log's category of a block: the engine's fail-closed reasons keep the names the
/// eligibility decision uses; a policy's own reasons and the default deny are `network_blocked`
/// (the rule id says which).
fn block_category(reason: Option<&str>) -> ReasonCategory {
    match reason {
        Some("device-inactive") => ReasonCategory::TrustInactive,
        Some("device-not-active") => ReasonCategory::DeviceNotActive,
        Some("missing-input" | "no-policy") | None => ReasonCategory::MissingInput,
        Some("invalid-destination") => ReasonCategory::InvalidBody,
        Some(_) => ReasonCategory::NetworkBlocked,
    }
}
