//! Multi-admin approvals: opening a request under the rule in force, deciding on it, and
//! executing the approved action exactly once in the transaction that closes the request. An
//! approved device lifecycle change or release signing is carried out by the lifecycle and
//! release services.

use enigm_api::{ApprovalSubject, ApprovalView, ReleaseSubject};
use enigm_store::{CommandFlag, DecisionKind, NewApproval, StoreError, WriteTx};
use enigm_types::{
    Actor, ApprovalAction, ApprovalId, ApprovalKind, ApprovalRule, ApprovalState, AuditAction,
    AuditEvent, AuditTarget, Justification, Permission, ReasonCategory, Role, Timestamp,
};

use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::guard::Caller;
use crate::services::{lifecycle, policies, releases};
use crate::state::AppState;
use crate::views;

/// Refuses a rule naming a role that cannot decide approvals (`approvals.decide`): such a rule
/// would wait for approvers who are refused by the route, and could leave a kind of request
/// that nobody can ever approve.
pub fn check_rule_approvers(state: &AppState, rule: &ApprovalRule) -> ApiResult<()> {
    let undecided: Vec<&str> = rule
        .approver_roles()
        .iter()
        .filter(|role| !role_may_decide(state, **role))
        .map(|role| role.as_str())
        .collect();
    if undecided.is_empty() {
        return Ok(());
    }
    Err(ApiError::unprocessable(
        "invalid_rule",
        format!(
            "approver roles must hold `approvals.decide`; these do not: {}",
            undecided.join(", ")
        ),
    ))
}

/// Whether `role` alone holds the permission to decide approvals.
pub fn role_may_decide(state: &AppState, role: Role) -> bool {
    state.authorizer.is_allowed(
        enigm_types::AdminId::random(),
        &[role],
        Permission::ApprovalsDecide,
    )
}

/// The view of a request with its subject resolved (release details, usernames), so that the
/// people deciding it see what they approve.
pub async fn view(
    state: &AppState,
    record: &enigm_store::ApprovalRecord,
    now: Timestamp,
) -> ApiResult<ApprovalView> {
    let subject = subject(state, &record.action).await?;
    Ok(views::approval(record, subject, now))
}

/// Resolves what an action would do. Only names, versions and digests: the release's payload
/// digest is public metadata, and devices appear by their handle.
async fn subject(state: &AppState, action: &ApprovalAction) -> ApiResult<ApprovalSubject> {
    let username = |admin| async move {
        Ok::<_, ApiError>(
            state
                .store()
                .admin_by_id(admin)
                .await?
                .map(|record| record.username.as_str().to_owned()),
        )
    };
    Ok(match action {
        ApprovalAction::RoleGrant { admin, role } => ApprovalSubject::RoleGrant {
            admin: *admin,
            username: username(*admin).await?,
            role: *role,
        },
        ApprovalAction::ApprovalRuleChange { target_kind, rule } => {
            ApprovalSubject::ApprovalRuleChange {
                target_kind: *target_kind,
                required_approvals: rule.required_approvals(),
                approver_roles: rule.approver_roles().to_vec(),
            }
        }
        ApprovalAction::DeviceLifecycle { device, change } => ApprovalSubject::DeviceLifecycle {
            device: *device,
            change: *change,
        },
        ApprovalAction::ReleaseSigning { release } => {
            let details = match state.store().release_by_id(*release).await? {
                Some(record) => {
                    let release = record.release;
                    let compatible_models: Vec<String> = serde_json::from_str(&release.models)
                        .map_err(|_| ApiError::internal(&StoreError::Corrupt("release models")))?;
                    Some(ReleaseSubject {
                        target_name: release.target_name,
                        kind: release.kind,
                        release_version: release.release_version,
                        rollback_index: release.rollback_index,
                        channel: release.channel,
                        compatible_models,
                        length: release.length,
                        sha256: release.sha256,
                    })
                }
                None => None,
            };
            ApprovalSubject::ReleaseSigning {
                release: *release,
                details,
            }
        }
        ApprovalAction::TotpReset { admin } => ApprovalSubject::TotpReset {
            admin: *admin,
            username: username(*admin).await?,
        },
        ApprovalAction::PolicyVersionCreate {
            policy,
            policy_kind,
            proposal,
        } => {
            let record = state.store().policy(*policy).await?;
            ApprovalSubject::PolicyVersionCreate {
                policy: *policy,
                name: record.as_ref().map(|record| record.name.clone()),
                policy_kind: *policy_kind,
                digest: proposal.digest.clone(),
                latest_version: record.and_then(|record| record.latest_version),
            }
        }
        ApprovalAction::PolicyAssign {
            policy,
            policy_kind,
            version,
            groups,
        } => ApprovalSubject::PolicyAssign {
            policy: *policy,
            name: state
                .store()
                .policy(*policy)
                .await?
                .map(|record| record.name),
            policy_kind: *policy_kind,
            version: *version,
            groups: groups.clone(),
        },
        ApprovalAction::PolicyUnassign {
            policy,
            policy_kind,
            groups,
        } => ApprovalSubject::PolicyUnassign {
            policy: *policy,
            name: state
                .store()
                .policy(*policy)
                .await?
                .map(|record| record.name),
            policy_kind: *policy_kind,
            groups: groups.clone(),
        },
        ApprovalAction::ReleaseStage { release, to } => {
            let record = state.store().release_by_id(*release).await?;
            let model = releases::rollout::load(state, *release)
                .await
                .ok()
                .and_then(|rollout| rollout.plan_model());
            ApprovalSubject::ReleaseStage {
                release: *release,
                to: *to,
                release_version: record.map(|record| record.release.release_version),
                model,
            }
        }
    })
}

/// Opens an approval request under the rule currently in force for its kind.
pub async fn open_request(
    state: &AppState,
    caller: &Caller,
    action: ApprovalAction,
    justification: &str,
) -> ApiResult<ApprovalView> {
    let justification = Justification::parse(justification)
        .map_err(|error| ApiError::unprocessable("invalid_justification", error.to_string()))?;
    let now = state.now();
    let rule = state.store().approval_rule(action.kind()).await?;
    let approval = NewApproval {
        id: ApprovalId::random(),
        action,
        requester: caller.admin.id,
        justification: justification.as_str().to_owned(),
        rule,
        created_at: now,
        expires_at: now.saturating_add(state.approval_ttl),
    };
    let mut tx = state.store().begin().await?;
    insert_request(&mut tx, caller, &approval, now).await?;
    tx.commit().await?;
    let record = state
        .store()
        .approval_by_id(approval.id)
        .await?
        .ok_or_else(|| ApiError::not_found("approval request"))?;
    view(state, &record, now).await
}

/// Opens an approval request inside the caller's transaction, so that what the request is about
/// (e.g. a new release) and the request commit together.
pub async fn open_request_in(
    state: &AppState,
    tx: &mut WriteTx<'_>,
    caller: &Caller,
    action: ApprovalAction,
    justification: &Justification,
    now: Timestamp,
) -> ApiResult<ApprovalId> {
    let rule = tx.approval_rule(action.kind()).await?;
    let approval = NewApproval {
        id: ApprovalId::random(),
        action,
        requester: caller.admin.id,
        justification: justification.as_str().to_owned(),
        rule,
        created_at: now,
        expires_at: now.saturating_add(state.approval_ttl),
    };
    insert_request(tx, caller, &approval, now).await?;
    Ok(approval.id)
}

async fn insert_request(
    tx: &mut WriteTx<'_>,
    caller: &Caller,
    approval: &NewApproval,
    now: Timestamp,
) -> ApiResult<()> {
    tx.insert_approval(approval).await?;
    let event = audit::success(
        now,
        caller.admin.id,
        AuditAction::ApprovalRequest,
        AuditTarget::ApprovalRequest {
            approval: approval.id,
        },
    );
    tx.append_audit(&event.with_change_ref(approval.id)).await?;
    Ok(())
}

/// Decides on a request as `caller`: one rejection closes it; the approval that meets the
/// threshold executes the action in the same transaction.
pub async fn decide(
    state: &AppState,
    caller: &Caller,
    id: ApprovalId,
    decision: DecisionKind,
) -> ApiResult<ApprovalView> {
    let now = state.now();
    let record = state
        .store()
        .approval_by_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found("approval request"))?;
    let audit_action = match decision {
        DecisionKind::Approve => AuditAction::ApprovalApprove,
        DecisionKind::Reject => AuditAction::ApprovalReject,
    };
    let target = AuditTarget::ApprovalRequest { approval: id };
    let refuse = |reason: ReasonCategory| {
        audit::denied(
            now,
            Actor::Admin(caller.admin.id),
            audit_action,
            target,
            reason,
        )
        .with_change_ref(id)
    };
    let bootstrap_self_approval = decision == DecisionKind::Approve
        && record.requester == caller.admin.id
        && in_bootstrap_window(state, &record.action, &record.rule, caller).await?;
    let refusal = match record.effective_state(now) {
        ApprovalState::Pending => None,
        ApprovalState::Expired => Some((
            ReasonCategory::Expired,
            ApiError::conflict(ReasonCategory::Expired, "the request has expired"),
        )),
        ApprovalState::Executed | ApprovalState::Rejected => Some((
            ReasonCategory::NotPending,
            ApiError::conflict(ReasonCategory::NotPending, "the request is already closed"),
        )),
    }
    .or_else(|| {
        // Separation of duties: nobody decides on a request about themselves, nor on their own
        // request, except in the bootstrap window (see `bootstrap_self_approval`).
        let own_request = record.requester == caller.admin.id && !bootstrap_self_approval;
        (own_request || record.action.subject() == Some(caller.admin.id)).then(|| {
            (
                ReasonCategory::SelfApproval,
                ApiError::forbidden(ReasonCategory::SelfApproval),
            )
        })
    })
    .or_else(|| {
        (!record.rule.may_approve(&caller.admin.roles)).then(|| {
            (
                ReasonCategory::NotAnApprover,
                ApiError::forbidden(ReasonCategory::NotAnApprover),
            )
        })
    });
    if let Some((reason, error)) = refusal {
        state.audit(&[refuse(reason)]).await?;
        return Err(error);
    }

    // Read before the transaction: a request holding one never waits for a second connection.
    let quorum_roles = state.store().approval_rule(ApprovalKind::RoleGrant).await?;
    let mut tx = state.store().begin().await?;
    match tx.insert_decision(id, caller.admin.id, decision, now).await {
        Err(StoreError::Conflict) => {
            drop(tx);
            state
                .audit(&[refuse(ReasonCategory::AlreadyDecided)])
                .await?;
            return Err(ApiError::conflict(
                ReasonCategory::AlreadyDecided,
                "you have already decided on this request",
            ));
        }
        other => other?,
    }
    let still_open = match decision {
        DecisionKind::Approve => match tx.count_approval(id, now).await? {
            Some((count, required)) if count >= required => {
                tx.close_approval(id, ApprovalState::Executed, now).await? && {
                    let executed = execute(
                        state,
                        &mut tx,
                        caller,
                        &record.action,
                        id,
                        now,
                        quorum_roles.approver_roles(),
                    )
                    .await?;
                    if let Err(reason) = executed {
                        // The action is no longer possible (e.g. the device changed state since
                        // the request): nothing is decided, the refusal is audited.
                        drop(tx);
                        state.audit(&[refuse(reason)]).await?;
                        return Err(ApiError::conflict(
                            reason,
                            "the approved action is no longer possible",
                        ));
                    }
                    true
                }
            }
            Some(_) => true,
            None => false,
        },
        DecisionKind::Reject => tx.close_approval(id, ApprovalState::Rejected, now).await?,
    };
    if !still_open {
        drop(tx);
        state.audit(&[refuse(ReasonCategory::NotPending)]).await?;
        return Err(ApiError::conflict(
            ReasonCategory::NotPending,
            "the request is already closed",
        ));
    }
    let mut decided =
        audit::success(now, caller.admin.id, audit_action, target).with_change_ref(id);
    if bootstrap_self_approval {
        decided = decided.with_reason(ReasonCategory::BootstrapSelfApproval);
    }
    tx.append_audit(&decided).await?;
    tx.commit().await?;
    let record = state
        .store()
        .approval_by_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found("approval request"))?;
    view(state, &record, now).await
}

/// Performs an approved action inside the transaction that closed the request, so the action
/// and the state change commit together or not at all.
async fn execute(
    state: &AppState,
    tx: &mut WriteTx<'_>,
    caller: &Caller,
    action: &ApprovalAction,
    id: ApprovalId,
    now: Timestamp,
    quorum_roles: &[Role],
) -> ApiResult<Result<(), ReasonCategory>> {
    let executed = |audit_action, target| -> AuditEvent {
        audit::success(now, caller.admin.id, audit_action, target).with_change_ref(id)
    };
    match action {
        ApprovalAction::RoleGrant { admin, role } => {
            tx.grant_role(*admin, *role, now, Some(id)).await?;
            if quorum_roles.contains(role) {
                // A second administrator now holds an approver role: close the bootstrap window.
                tx.set_flag(CommandFlag::ApproverQuorumEstablished, now)
                    .await?;
            }
            tx.append_audit(&executed(
                AuditAction::RoleGrant,
                AuditTarget::Role {
                    admin: *admin,
                    role: *role,
                },
            ))
            .await?;
        }
        ApprovalAction::ApprovalRuleChange { target_kind, rule } => {
            tx.set_approval_rule(*target_kind, rule, now, id).await?;
            tx.append_audit(&executed(
                AuditAction::ApprovalRuleChange,
                AuditTarget::ApprovalRule { kind: *target_kind },
            ))
            .await?;
        }
        ApprovalAction::DeviceLifecycle { device, change } => {
            let done =
                lifecycle::execute_approved(tx, caller.admin.id, *device, *change, id, now).await?;
            if done.is_err() {
                return Ok(done);
            }
        }
        ApprovalAction::ReleaseSigning { release } => {
            let done = releases::execute_signing_approval(tx, *release, id).await?;
            if done.is_err() {
                return Ok(done);
            }
        }
        ApprovalAction::TotpReset { admin } => {
            if !tx.clear_totp(*admin).await? {
                return Ok(Err(ReasonCategory::Conflict));
            }
            // Whoever seized the second factor may hold a session too: the account starts over
            // from its password.
            tx.close_sessions_of(*admin, now).await?;
            tx.append_audit(&executed(
                AuditAction::UserTotpReset,
                AuditTarget::Account {
                    admin: Some(*admin),
                },
            ))
            .await?;
        }
        ApprovalAction::PolicyVersionCreate {
            policy,
            policy_kind,
            proposal,
        } => {
            let done = policies::execute_version(
                tx,
                caller.admin.id,
                *policy,
                *policy_kind,
                proposal,
                id,
                now,
            )
            .await?;
            if done.is_err() {
                return Ok(done);
            }
        }
        ApprovalAction::PolicyAssign {
            policy,
            policy_kind,
            version,
            groups,
        } => {
            let change = policies::AssignmentChange {
                policy: *policy,
                kind: *policy_kind,
                version: Some(*version),
                groups,
            };
            let done = policies::execute_assignment(tx, caller.admin.id, change, id, now).await?;
            if done.is_err() {
                return Ok(done);
            }
        }
        ApprovalAction::PolicyUnassign {
            policy,
            policy_kind,
            groups,
        } => {
            let change = policies::AssignmentChange {
                policy: *policy,
                kind: *policy_kind,
                version: None,
                groups,
            };
            let done = policies::execute_assignment(tx, caller.admin.id, change, id, now).await?;
            if done.is_err() {
                return Ok(done);
            }
        }
        ApprovalAction::ReleaseStage { release, to } => {
            let done = releases::rollout::execute_stage_approval(
                state,
                tx,
                caller.admin.id,
                *release,
                *to,
                id,
                now,
            )
            .await?;
            if done.is_err() {
                return Ok(done);
            }
        }
    }
    tx.append_audit(&executed(
        AuditAction::ApprovalExecute,
        AuditTarget::ApprovalRequest { approval: id },
    ))
    .await?;
    Ok(Ok(()))
}

/// A fresh installation has one owner and nobody else who could approve. Until a second
/// administrator has ever held an approver role, that owner may approve their own role grants
/// (with their PIN, audited as `bootstrap_self_approval`); otherwise no role could ever be
/// granted. The window closes for good once a second approver exists, so disabling the other
/// approvers later does not reopen it. Approval-rule changes never qualify.
async fn in_bootstrap_window(
    state: &AppState,
    action: &ApprovalAction,
    rule: &ApprovalRule,
    caller: &Caller,
) -> ApiResult<bool> {
    if action.kind() != ApprovalKind::RoleGrant
        || state
            .store()
            .flag_is_set(CommandFlag::ApproverQuorumEstablished)
            .await?
    {
        return Ok(false);
    }
    let others = state
        .store()
        .count_other_active_holders(rule.approver_roles(), &[caller.admin.id])
        .await?;
    Ok(others == 0)
}
