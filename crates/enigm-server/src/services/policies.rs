//! Policies as Command objects: named policies of a kind, their immutable numbered versions,
//! diffs, and the assignment of a pinned version to device groups. A new version and every
//! assignment change are critical (PIN, on the route) and go through a multi-admin approval;
//! the approval that reaches its threshold executes them here, in its own transaction, and
//! bumps the `policy_revision` of every device of the groups concerned, so that every Command
//! process evaluates those devices under the new policy at their next check-in.
//!
//! Precedence, one effective policy per kind per device ([`resolve`]): the group's assignment,
//! else the policy the device enrolled with (its token's), else the baseline.

use enigm_api::ApprovalView;
use enigm_api::policies::{
    AssignPolicyRequest, CreatePolicyRequest, CreatePolicyVersionRequest, DevicePolicyView,
    MAX_GROUPS, PolicyAssignmentView, PolicyDetail, PolicyDiffView, PolicyVersionSummary,
    PolicyVersionView, PolicyView, UnassignPolicyRequest, is_policy_name,
};
use enigm_attest::policy::AttestationPolicy;
use enigm_store::{
    AssignedPolicy, NewPolicy, NewPolicyProposal, PolicyAssignmentRecord, PolicyRecord, StoreError,
    WriteTx,
};
use enigm_trust::TrustPolicy;
use enigm_types::{
    AdminId, ApprovalAction, ApprovalId, AuditAction, AuditTarget, GroupName, PolicyId, PolicyKind,
    Timestamp, approval::PolicyProposalRef,
};

use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::guard::Caller;
use crate::services::approvals;
use crate::services::stored::from_json;
use crate::state::AppState;

/// Creates a named policy of a supported kind (no version yet; versions need an approval).
pub async fn create(
    state: &AppState,
    caller: &Caller,
    request: CreatePolicyRequest,
) -> ApiResult<PolicyView> {
    if !is_policy_name(&request.name) {
        return Err(ApiError::unprocessable(
            "invalid_policy_name",
            "a policy name is 1 to 64 of `a-z 0-9 - _ .`, starting with a letter or digit",
        ));
    }
    supported(request.kind)?;
    let now = state.now();
    let id = PolicyId::random();
    let mut tx = state.store().begin().await?;
    match tx
        .insert_policy(&NewPolicy {
            id,
            name: request.name.clone(),
            kind: request.kind,
            created_by: caller.admin.id,
            created_at: now,
        })
        .await
    {
        Err(StoreError::Conflict) => {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "policy_exists",
                format!(
                    "a policy named `{}` exists; choose another name or add a version to it \
                     with `enigm policy version create`",
                    request.name
                ),
            ));
        }
        other => other?,
    }
    tx.append_audit(&audit::success(
        now,
        caller.admin.id,
        AuditAction::PolicyCreate,
        AuditTarget::Policy {
            policy: id,
            kind: request.kind,
            version: None,
            group: None,
        },
    ))
    .await?;
    tx.commit().await?;
    Ok(PolicyView {
        id,
        name: request.name,
        kind: request.kind,
        latest_version: None,
        created_at: now.to_rfc3339(),
    })
}

/// Every policy, by name.
pub async fn list(state: &AppState) -> ApiResult<Vec<PolicyView>> {
    Ok(state
        .store()
        .policies()
        .await?
        .iter()
        .map(policy_view)
        .collect())
}

/// A policy with its numbered versions.
pub async fn read(state: &AppState, id: PolicyId) -> ApiResult<PolicyDetail> {
    let policy = policy(state, id).await?;
    let versions = state
        .store()
        .policy_versions(id)
        .await?
        .into_iter()
        .map(|version| PolicyVersionSummary {
            version: version.version,
            digest: version.digest,
            approved_at: version.approved_at.to_rfc3339(),
        })
        .collect();
    Ok(PolicyDetail {
        policy: policy_view(&policy),
        versions,
    })
}

/// Proposes a version: its content is validated by the parser of an enrollment token's policy
/// of that kind and kept in canonical form; the answer is the approval request that would
/// number it.
pub async fn propose_version(
    state: &AppState,
    caller: &Caller,
    id: PolicyId,
    request: CreatePolicyVersionRequest,
) -> ApiResult<ApprovalView> {
    let policy = policy(state, id).await?;
    let content = canonical(policy.kind, request.content)?;
    let digest = hex::encode(enigm_crypto::token::sha256(content.as_bytes()));
    let justification = enigm_types::Justification::parse(&request.justification)
        .map_err(|error| ApiError::unprocessable("invalid_justification", error.to_string()))?;
    let now = state.now();
    let proposal = uuid::Uuid::new_v4();
    let mut tx = state.store().begin().await?;
    tx.insert_policy_proposal(&NewPolicyProposal {
        id: proposal,
        policy: id,
        content,
        digest: digest.clone(),
        proposed_by: caller.admin.id,
        proposed_at: now,
    })
    .await?;
    let action = ApprovalAction::PolicyVersionCreate {
        policy: id,
        policy_kind: policy.kind,
        proposal: PolicyProposalRef {
            id: proposal,
            digest,
        },
    };
    let approval =
        approvals::open_request_in(state, &mut tx, caller, action, &justification, now).await?;
    tx.commit().await?;
    approval_view(state, approval, now).await
}

/// One numbered version with its content.
pub async fn version(state: &AppState, id: PolicyId, version: u32) -> ApiResult<PolicyVersionView> {
    let policy = policy(state, id).await?;
    let record = state
        .store()
        .policy_version(id, version)
        .await?
        .ok_or_else(|| ApiError::not_found("policy version"))?;
    let content: serde_json::Value = from_json(&record.content, "policy version content")?;
    Ok(PolicyVersionView {
        policy: id,
        name: policy.name,
        kind: policy.kind,
        version,
        digest: record.digest,
        content,
        approved_at: record.approved_at.to_rfc3339(),
        approval: record.approval,
    })
}

/// The unified diff of two versions' canonical pretty JSON.
pub async fn diff(state: &AppState, id: PolicyId, from: u32, to: u32) -> ApiResult<PolicyDiffView> {
    policy(state, id).await?;
    let load = |version| async move {
        state
            .store()
            .policy_version(id, version)
            .await?
            .ok_or_else(|| ApiError::not_found("policy version"))
    };
    let old = load(from).await?;
    let new = load(to).await?;
    Ok(PolicyDiffView {
        policy: id,
        from,
        to,
        diff: unified_diff(&old.content, &new.content, from, to),
        from_digest: old.digest,
        to_digest: new.digest,
    })
}

/// The line-oriented diff of two canonical contents (empty when they are equal).
pub fn unified_diff(old: &str, new: &str, from: u32, to: u32) -> String {
    if old == new {
        return String::new();
    }
    let old = with_final_newline(old);
    let new = with_final_newline(new);
    similar::TextDiff::from_lines(old.as_str(), new.as_str())
        .unified_diff()
        .context_radius(3)
        .header(&format!("version {from}"), &format!("version {to}"))
        .to_string()
}

fn with_final_newline(text: &str) -> String {
    let mut text = text.to_owned();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// Requests that `groups` follow a version of the policy.
pub async fn request_assign(
    state: &AppState,
    caller: &Caller,
    id: PolicyId,
    request: AssignPolicyRequest,
) -> ApiResult<ApprovalView> {
    let policy = policy(state, id).await?;
    let groups = groups(request.groups)?;
    if state
        .store()
        .policy_version(id, request.version)
        .await?
        .is_none()
    {
        // The policy exists; the request conflicts with its versions so far (a version is
        // numbered only when its approval executes), hence 409 rather than 404.
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "no_such_version",
            format!(
                "policy `{}` has no version {}; see its versions with `enigm policy show {}`",
                policy.name, request.version, policy.name
            ),
        ));
    }
    let action = ApprovalAction::PolicyAssign {
        policy: id,
        policy_kind: policy.kind,
        version: request.version,
        groups,
    };
    approvals::open_request(state, caller, action, &request.justification).await
}

/// Requests that `groups` stop following the policy (their devices fall back to the policy
/// they enrolled with).
pub async fn request_unassign(
    state: &AppState,
    caller: &Caller,
    id: PolicyId,
    request: UnassignPolicyRequest,
) -> ApiResult<ApprovalView> {
    let policy = policy(state, id).await?;
    let groups = groups(request.groups)?;
    let assigned = state.store().policy_assignments(Some(id)).await?;
    let unknown: Vec<&str> = groups
        .iter()
        .filter(|group| !assigned.iter().any(|a| a.group == **group))
        .map(GroupName::as_str)
        .collect();
    if !unknown.is_empty() {
        // The policy exists; the request conflicts with its assignments, hence 409, not 404.
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "not_assigned",
            format!(
                "policy `{}` is not assigned to {}; see `enigm policy assignments`",
                policy.name,
                unknown.join(", ")
            ),
        ));
    }
    let action = ApprovalAction::PolicyUnassign {
        policy: id,
        policy_kind: policy.kind,
        groups,
    };
    approvals::open_request(state, caller, action, &request.justification).await
}

/// Every assignment (of one policy when given), by kind and group.
pub async fn assignments(
    state: &AppState,
    policy: Option<PolicyId>,
) -> ApiResult<Vec<PolicyAssignmentView>> {
    if let Some(id) = policy {
        self::policy(state, id).await?;
    }
    Ok(state
        .store()
        .policy_assignments(policy)
        .await?
        .into_iter()
        .map(assignment_view)
        .collect())
}

/// Numbers an approved proposal (in the approving transaction).
pub(crate) async fn execute_version(
    tx: &mut WriteTx<'_>,
    admin: AdminId,
    policy: PolicyId,
    kind: PolicyKind,
    proposal: &PolicyProposalRef,
    approval: ApprovalId,
    now: Timestamp,
) -> ApiResult<Result<(), enigm_types::ReasonCategory>> {
    let Some(version) = tx
        .number_policy_proposal(policy, proposal.id, &proposal.digest, approval, now)
        .await?
    else {
        return Ok(Err(enigm_types::ReasonCategory::Conflict));
    };
    tx.append_audit(
        &audit::success(
            now,
            admin,
            AuditAction::PolicyVersionCreate,
            AuditTarget::Policy {
                policy,
                kind,
                version: Some(version),
                group: None,
            },
        )
        .with_change_ref(approval),
    )
    .await?;
    Ok(Ok(()))
}

/// An approved change of assignments: `groups` follow `version` of `policy`, or (without a
/// version) stop following it.
pub(crate) struct AssignmentChange<'a> {
    pub(crate) policy: PolicyId,
    pub(crate) kind: PolicyKind,
    pub(crate) version: Option<u32>,
    pub(crate) groups: &'a [GroupName],
}

/// Changes the assignments of `groups` (in the approving transaction) and marks their devices
/// for re-evaluation; one audit event per group.
pub(crate) async fn execute_assignment(
    tx: &mut WriteTx<'_>,
    admin: AdminId,
    change: AssignmentChange<'_>,
    approval: ApprovalId,
    now: Timestamp,
) -> ApiResult<Result<(), enigm_types::ReasonCategory>> {
    let AssignmentChange {
        policy,
        kind,
        version,
        groups,
    } = change;
    let changed = match version {
        Some(version) => {
            if !tx.policy_version_exists(policy, version).await? {
                return Ok(Err(enigm_types::ReasonCategory::Conflict));
            }
            tx.assign_policy(kind, policy, version, groups, approval, now)
                .await?;
            groups.to_vec()
        }
        None => tx.unassign_policy(kind, policy, groups).await?,
    };
    tx.bump_policy_revision(&changed).await?;
    // Their devices get a new policy bundle (the publisher compiles marked groups).
    for group in &changed {
        tx.mark_policy_bundle_wanted(group.as_str()).await?;
    }
    let action = match version {
        Some(_) => AuditAction::PolicyAssign,
        None => AuditAction::PolicyUnassign,
    };
    for group in &changed {
        tx.append_audit(
            &audit::success(
                now,
                admin,
                action,
                AuditTarget::Policy {
                    policy,
                    kind,
                    version,
                    group: Some(*group),
                },
            )
            .with_change_ref(approval),
        )
        .await?;
    }
    Ok(Ok(()))
}

/// The policy of one kind a device is evaluated under, as canonical JSON, and where it comes
/// from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub content: String,
    pub view: DevicePolicyView,
}

/// The precedence rule over whatever is present: the group's assignment, else the enrollment
/// policy (`None` when the device enrolled with none of its own, i.e. the baseline), else the
/// baseline.
pub fn resolve(
    kind: PolicyKind,
    assigned: Option<&AssignedPolicy>,
    enrolled: Option<&str>,
    baseline: &str,
) -> Effective {
    let source = enigm_types::policy_source(assigned.is_some(), enrolled.is_some());
    match (assigned, enrolled) {
        (Some(assigned), _) => Effective {
            content: assigned.content.clone(),
            view: DevicePolicyView {
                kind,
                source,
                policy: Some(assigned.policy),
                name: Some(assigned.policy_name.clone()),
                version: Some(assigned.version),
            },
        },
        (None, enrolled) => Effective {
            content: enrolled.unwrap_or(baseline).to_owned(),
            view: DevicePolicyView {
                kind,
                source,
                policy: None,
                name: None,
                version: None,
            },
        },
    }
}

/// A device's effective trust and attestation policies.
pub struct DevicePolicies {
    pub trust: TrustPolicy,
    pub attestation: AttestationPolicy,
    pub views: Vec<DevicePolicyView>,
}

impl DevicePolicies {
    /// What the one decision function needs of these policies.
    pub fn decision_policy(&self) -> enigm_trust::DecisionPolicy {
        enigm_trust::DecisionPolicy {
            max_posture_age: self.trust.max_signal_age(),
            attestation_required: self.attestation.required_for.sensitive_channels,
        }
    }
}

/// Resolves a device's effective policies from its group's assignments and what it enrolled
/// with (`enrolled_attestation` is the device's attestation row's policy, if it has one).
pub async fn for_device(
    state: &AppState,
    group: &str,
    enrolled_trust: &str,
    enrolled_attestation: Option<&str>,
) -> ApiResult<DevicePolicies> {
    let assigned = state.store().group_policies(group).await?;
    from_assigned(&assigned, enrolled_trust, enrolled_attestation)
}

/// [`for_device`] over the group's assignments already read.
pub fn from_assigned(
    assigned: &[AssignedPolicy],
    enrolled_trust: &str,
    enrolled_attestation: Option<&str>,
) -> ApiResult<DevicePolicies> {
    let of = |kind| assigned.iter().find(|a| a.kind == kind);

    let baseline_trust = serde_json::to_string(&TrustPolicy::baseline())
        .map_err(|error| ApiError::internal(&error))?;
    let enrolled_trust_policy: TrustPolicy = from_json(enrolled_trust, "device policy")?;
    let own_trust = (enrolled_trust_policy != TrustPolicy::baseline()).then_some(enrolled_trust);
    let trust = resolve(
        PolicyKind::Trust,
        of(PolicyKind::Trust),
        own_trust,
        &baseline_trust,
    );

    let baseline_attestation = serde_json::to_string(&AttestationPolicy::default())
        .map_err(|error| ApiError::internal(&error))?;
    let own_attestation = match enrolled_attestation {
        Some(text) => {
            let parsed: AttestationPolicy = from_json(text, "attestation policy")?;
            (parsed != AttestationPolicy::default()).then_some(text)
        }
        None => None,
    };
    let attestation = resolve(
        PolicyKind::Attestation,
        of(PolicyKind::Attestation),
        own_attestation,
        &baseline_attestation,
    );
    Ok(DevicePolicies {
        trust: from_json(&trust.content, "effective trust policy")?,
        attestation: from_json(&attestation.content, "effective attestation policy")?,
        views: vec![trust.view, attestation.view],
    })
}

/// Checks content with the parser of an enrollment token's policy of `kind` and returns its
/// canonical pretty JSON (the parsed policy written back: field order and spelling are the
/// type's, so equal policies have equal text and digest).
fn canonical(kind: PolicyKind, content: serde_json::Value) -> ApiResult<String> {
    let invalid = |error: String| ApiError::unprocessable("invalid_policy", error);
    let text = match kind {
        PolicyKind::Trust => {
            let policy: TrustPolicy =
                serde_json::from_value(content).map_err(|error| invalid(error.to_string()))?;
            serde_json::to_string_pretty(&policy)
        }
        PolicyKind::Attestation => {
            let policy: AttestationPolicy =
                serde_json::from_value(content).map_err(|error| invalid(error.to_string()))?;
            policy.check().map_err(|error| invalid(error.to_string()))?;
            serde_json::to_string_pretty(&policy)
        }
        PolicyKind::Network => {
            let document: enigm_netpolicy::PolicyDocument =
                serde_json::from_value(content).map_err(|error| invalid(error.to_string()))?;
            if document.version != enigm_netpolicy::document::VERSION {
                return Err(invalid(format!(
                    "network policy version {} is not supported (expected {})",
                    document.version,
                    enigm_netpolicy::document::VERSION
                )));
            }
            // Compiling checks what the document's shape cannot: ids, names, CIDRs, that every
            // blocklist and `reopenable_by` names something, `direct` only when allowed.
            enigm_netpolicy::CompiledPolicy::compile(&document)
                .map_err(|error| invalid(error.to_string()))?;
            serde_json::to_string_pretty(&document)
        }
        PolicyKind::Configuration => return Err(unsupported(kind)),
    };
    let text = text.map_err(|error| ApiError::internal(&error))?;
    // Every kind assigned to a group travels in one policy bundle, which the agent reads only
    // up to `MAX_BUNDLE_BYTES`: a version that could not fit is refused here, not when the
    // bundle is published.
    if text.len() > MAX_VERSION_BYTES {
        return Err(ApiError::unprocessable(
            "policy_too_large",
            format!(
                "the policy is {} bytes in canonical form, more than the {MAX_VERSION_BYTES} a \
                 policy bundle leaves for one policy; make its blocklists shorter",
                text.len()
            ),
        ));
    }
    Ok(text)
}

/// The largest canonical version of one policy: three quarters of a policy bundle, leaving the
/// rest for the other kinds and the bundle's own fields.
pub const MAX_VERSION_BYTES: usize = (enigm_ota::policy_bundle::MAX_BUNDLE_BYTES as usize) / 4 * 3;

fn supported(kind: PolicyKind) -> ApiResult<()> {
    if kind.is_supported() {
        Ok(())
    } else {
        Err(unsupported(kind))
    }
}

fn unsupported(kind: PolicyKind) -> ApiError {
    ApiError::unprocessable(
        "policy_kind_not_supported",
        format!("`{kind}` policies are not yet supported; use `trust`, `attestation` or `network`"),
    )
}

fn groups(groups: Vec<GroupName>) -> ApiResult<Vec<GroupName>> {
    let mut groups = groups;
    groups.sort_unstable();
    groups.dedup();
    if groups.is_empty() || groups.len() > MAX_GROUPS {
        return Err(ApiError::unprocessable(
            "invalid_groups",
            "name 1 to 100 device groups",
        ));
    }
    Ok(groups)
}

async fn policy(state: &AppState, id: PolicyId) -> ApiResult<PolicyRecord> {
    state
        .store()
        .policy(id)
        .await?
        .ok_or_else(|| ApiError::not_found("policy"))
}

async fn approval_view(
    state: &AppState,
    id: ApprovalId,
    now: Timestamp,
) -> ApiResult<ApprovalView> {
    let record = state
        .store()
        .approval_by_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found("approval request"))?;
    approvals::view(state, &record, now).await
}

fn policy_view(record: &PolicyRecord) -> PolicyView {
    PolicyView {
        id: record.id,
        name: record.name.clone(),
        kind: record.kind,
        latest_version: record.latest_version,
        created_at: record.created_at.to_rfc3339(),
    }
}

fn assignment_view(record: PolicyAssignmentRecord) -> PolicyAssignmentView {
    PolicyAssignmentView {
        kind: record.kind,
        group: record.group,
        policy: record.policy,
        policy_name: record.policy_name,
        version: record.version,
        assigned_at: record.assigned_at.to_rfc3339(),
        approval: record.approval,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use enigm_types::PolicySource;
    use proptest::prelude::*;

    fn assigned(version: u32) -> AssignedPolicy {
        AssignedPolicy {
            kind: PolicyKind::Trust,
            policy: PolicyId::random(),
            policy_name: "p".to_owned(),
            version,
            content: format!("assigned-{version}"),
        }
    }

    proptest! {
        /// Group assignment > enrollment > baseline, for every combination of what is present.
        #[test]
        fn precedence_model(assignment in proptest::option::of(1u32..100), enrolled in proptest::option::of("[a-z]{1,8}")) {
            let assignment = assignment.map(assigned);
            let effective = resolve(PolicyKind::Trust, assignment.as_ref(), enrolled.as_deref(), "baseline");
            match (&assignment, &enrolled) {
                (Some(a), _) => {
                    prop_assert_eq!(&effective.content, &a.content);
                    prop_assert_eq!(effective.view.source, PolicySource::GroupAssignment);
                    prop_assert_eq!(effective.view.version, Some(a.version));
                    prop_assert_eq!(effective.view.policy, Some(a.policy));
                }
                (None, Some(own)) => {
                    prop_assert_eq!(&effective.content, own);
                    prop_assert_eq!(effective.view.source, PolicySource::Enrollment);
                    prop_assert_eq!(effective.view.version, None);
                }
                (None, None) => {
                    prop_assert_eq!(effective.content.as_str(), "baseline");
                    prop_assert_eq!(effective.view.source, PolicySource::Baseline);
                }
            }
        }
    }

    #[test]
    fn the_diff_names_changed_lines_only() {
        let diff = unified_diff(
            "{\n  \"a\": 1,\n  \"b\": 2\n}",
            "{\n  \"a\": 1,\n  \"b\": 3\n}",
            1,
            2,
        );
        assert!(diff.contains("--- version 1\n+++ version 2\n"), "{diff}");
        assert!(diff.contains("-  \"b\": 2\n+  \"b\": 3\n"), "{diff}");
        assert!(!diff.contains("-  \"a\""), "{diff}");
        assert_eq!(unified_diff("x", "x", 1, 1), "");
    }
}
