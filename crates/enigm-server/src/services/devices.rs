//! Devices: enrollment tokens, enrollment and check-ins of signed devices, and the inventory.
//!
//! A device is known only by the handle derived from its public key under the deployment's
//! handle key; the key itself is never stored. Every refusal is audited with a typed reason
//! (through the request's `DeviceRefusal`).

use crate::services::eligibility;
use enigm_trust::{DecisionInput, DeviceRequest, EligibilityDecision};
use std::sync::Arc;

use enigm_api::{
    CheckInRequest, CreateEnrollmentTokenRequest, DeviceListQuery, DeviceView, EnrollRequest,
    EnrollResponse, EnrollmentTokenCreated, FindingView, TrustView,
};
use enigm_crypto::BearerToken;
use enigm_store::{
    CheckInWrite, DeviceFilter, DeviceRecord, NewDevice, NewEnrollmentToken, PostureRecord,
    StoreError,
};
use enigm_trust::{
    AttestedSignals, DeviceState, Evaluation, LifecycleAction, SignalReport, TrustPolicy,
    evaluate_merged, explain_gates, merge,
};
use enigm_types::{
    Actor, AuditAction, AuditEvent, AuditTarget, DeviceHandle, EnrollmentTokenId, Outcome,
    ReasonCategory, SetupStep, Timestamp,
};

use crate::audit;
use crate::checkins::{CachedPolicy, CheckIn, CheckInOutcome, DevicePolicy, audit_trust};
use crate::device_guard::SignedDevice;
use crate::error::{ApiError, ApiResult};
use crate::guard::Caller;
use crate::services::stored::to_json;
use crate::services::{attestation, lifecycle, policies};
use crate::state::AppState;

/// Creates an enrollment token; the token is in the answer, and only there.
pub async fn create_token(
    state: &AppState,
    caller: &Caller,
    request: CreateEnrollmentTokenRequest,
) -> ApiResult<EnrollmentTokenCreated> {
    let group = parse_group(&request.group)?;
    let uses = request.uses.unwrap_or(1);
    if !(1..=enigm_api::devices::MAX_TOKEN_USES).contains(&uses) {
        return Err(ApiError::unprocessable(
            "invalid_uses",
            "uses must be between 1 and 100000",
        ));
    }
    let minutes = request.expires_in_minutes.unwrap_or(60);
    if !(1..=enigm_api::devices::MAX_TOKEN_MINUTES).contains(&minutes) {
        return Err(ApiError::unprocessable(
            "invalid_expiry",
            "expires_in_minutes must be between 1 and 10080",
        ));
    }
    let policy = request.policy.unwrap_or_else(TrustPolicy::baseline);
    let attestation_policy = request.attestation_policy.unwrap_or_default();
    if let Err(error) = attestation_policy.check() {
        return Err(ApiError::unprocessable(
            "invalid_attestation_policy",
            error.to_string(),
        ));
    }
    let token = BearerToken::generate(&mut rand::rngs::OsRng);
    let now = state.now();
    let expires_at = now.saturating_add(std::time::Duration::from_secs(u64::from(minutes) * 60));
    let id = EnrollmentTokenId::random();
    let mut tx = state.store().begin().await?;
    tx.insert_enrollment_token(&NewEnrollmentToken {
        id,
        token_digest_hex: token.digest().to_hex(),
        group: group.clone(),
        policy: to_json(&policy)?,
        attestation_policy: to_json(&attestation_policy)?,
        uses,
        expires_at,
        managed_allowed: request.managed_allowed,
        created_by: caller.admin.id,
        created_at: now,
    })
    .await?;
    // A new group gets a bundle before its first device enrolls.
    tx.mark_policy_bundle_known(&group).await?;
    tx.append_audit(&audit::success(
        now,
        caller.admin.id,
        AuditAction::EnrollmentTokenCreate,
        AuditTarget::EnrollmentToken { id },
    ))
    .await?;
    tx.commit().await?;
    Ok(EnrollmentTokenCreated {
        id,
        token: token.expose().to_owned(),
        group,
        uses,
        expires_at: expires_at.to_rfc3339(),
        managed_allowed: request.managed_allowed,
    })
}

/// Enrolls the signing device with an enrollment token (and, where its policy asks, accepted
/// attestation evidence): the device, its first evaluation and the token use commit together.
pub async fn enroll(
    state: &AppState,
    device: SignedDevice<EnrollRequest>,
) -> ApiResult<EnrollResponse> {
    let action = AuditAction::DeviceEnroll;
    let now = device.now;
    let handle = device.handle;
    let refuse = &device.refuse;
    let request = &device.body;
    let Ok(token) = BearerToken::parse(&request.enrollment_token) else {
        return Err(refuse.deny(ReasonCategory::InvalidEnrollmentToken).await);
    };

    let mut tx = state.store().begin().await?;
    let Some(consumed) = tx
        .consume_enrollment_token(&token.digest().to_hex(), now)
        .await?
    else {
        drop(tx);
        return Err(refuse.deny(ReasonCategory::InvalidEnrollmentToken).await);
    };
    if request.managed_opt_in && !consumed.managed_allowed {
        drop(tx);
        return Err(refuse.deny(ReasonCategory::ManagedNotAllowed).await);
    }
    if let Err(error) = device.record_nonce(&mut tx).await {
        drop(tx);
        return Err(refuse.store_refusal(error).await);
    }
    // Evaluated and verified under its effective policies from the start: its group's
    // assignment, else the token's.
    let effective = policies::from_assigned(
        &tx.group_policies(&consumed.group).await?,
        &consumed.policy,
        Some(&consumed.attestation_policy),
    )?;
    if effective.attestation.required_for.enrollment && request.attestation.is_none() {
        drop(tx);
        return Err(refuse.deny(ReasonCategory::AttestationRequired).await);
    }
    let decision_policy = effective.decision_policy();
    let policy: TrustPolicy = effective.trust;
    // The enrollment token is Command's managed approval of this device (enigm-docs §20 B.12).
    let device_state = DeviceState::PendingEnrollment
        .apply(LifecycleAction::Activate)
        .map_err(|error| ApiError::internal(&error))?;
    // Attestation evidence sent with the enrollment is appraised after the device row exists;
    // its attested signals count from the first check-in on.
    let (evaluation, posture) = assess(
        &request.report,
        &request.setup,
        &AttestedSignals::NONE,
        &policy,
        now,
    )?;
    let inserted = tx
        .insert_device(&NewDevice {
            handle,
            state: device_state,
            group: consumed.group.clone(),
            policy: consumed.policy.clone(),
            attestation_policy: consumed.attestation_policy.clone(),
            managed_opt_in: request.managed_opt_in,
            wipe_opt_in: request.wipe_opt_in,
            enrolled_at: now,
            enrollment_token: consumed.id,
            posture,
        })
        .await;
    match inserted {
        Err(StoreError::Conflict) => {
            drop(tx);
            return Err(refuse.deny(ReasonCategory::AlreadyEnrolled).await);
        }
        other => other?,
    }
    if let Some(evidence) = &request.attestation {
        let record = enigm_store::AttestationRecord {
            policy: to_json(&effective.attestation)?,
            pairing: None,
            last: None,
            accepted_at: None,
            accepted: None,
        };
        let outcome = attestation::attest_in(
            state,
            &mut tx,
            evidence,
            &record,
            attestation::AttestationTarget {
                handle,
                device_key: device.public_key(),
                purpose: enigm_api::attestation::AttestationPurpose::Enrollment,
            },
            now,
        )
        .await?;
        if let enigm_attest::outcome::Verdict::Rejected(reason) = outcome.verdict {
            // The enrollment is undone (the token use too); the rejection is audited on its own.
            drop(tx);
            let event = audit::denied(
                now,
                Actor::Device(handle),
                AuditAction::DeviceAttest,
                AuditTarget::Device { handle },
                attestation::reason_category(reason),
            );
            state.audit(&[event]).await?;
            return Err(attestation::rejection_error(reason, &outcome.detail));
        }
    }
    let actor = Actor::Device(handle);
    tx.append_audit(&AuditEvent::new(
        now,
        actor,
        action,
        AuditTarget::Device { handle },
        Outcome::Success,
    ))
    .await?;
    tx.append_audit(&AuditEvent::new(
        now,
        actor,
        AuditAction::DeviceTrustChange,
        AuditTarget::DeviceTrust {
            handle,
            from: None,
            to: audit_trust(evaluation.state),
            sources: evaluation.finding_layers(),
            contradictions: evaluation.contradiction_layers(),
        },
        Outcome::Success,
    ))
    .await?;
    // A group's first device gets its group a bundle (when it has none yet).
    tx.mark_policy_bundle_known(&consumed.group).await?;
    tx.commit().await?;
    let mut trust = TrustView::from(&evaluation);
    trust.policy_bundle =
        offered_bundle(state, &consumed.group, device_state, decision_policy, now).await?;
    Ok(EnrollResponse {
        handle,
        state: device_state,
        trust,
    })
}

/// Evaluates a device's reported signals and hands the outcome to the check-in writer.
pub async fn check_in(
    state: &AppState,
    device: SignedDevice<CheckInRequest>,
) -> ApiResult<TrustView> {
    let now = device.now;
    let handle = device.handle;
    let refuse = &device.refuse;
    let request = &device.body;
    // A check-in evaluated under policies the device no longer has (its group's assignment or
    // its attestation changed, here or in another process) is answered `Stale` by the writer
    // and evaluated again under a fresh load; twice in a row is as much as a change can race.
    for _ in 0..3 {
        let cached = match state.device_policies.latest(&handle) {
            Some(cached) => cached,
            None => {
                let Some(device) = state.store().device(&handle).await? else {
                    return Err(refuse.deny(ReasonCategory::UnknownDevice).await);
                };
                if let Some(reason) =
                    device_request_refusal(DeviceRequest::CheckIn, device.state, now)
                {
                    return Err(refuse.deny(reason).await);
                }
                // The revision is read before the assignments and the attestation: a change
                // committed in between leaves this load at an older revision, which the writer
                // answers `Stale`.
                let attestation = state.store().device_attestation(&handle).await?;
                let effective = policies::for_device(
                    state,
                    &device.group,
                    &device.policy,
                    attestation.as_ref().map(|record| record.policy.as_str()),
                )
                .await?;
                let attested = match &attestation {
                    Some(record) => attestation::attested_signals(record, &effective.attestation),
                    None => AttestedSignals::NONE,
                };
                let bundle = offered_bundle(
                    state,
                    &device.group,
                    device.state,
                    effective.decision_policy(),
                    now,
                )
                .await?;
                let reported_bundle = state.store().device_policy_bundle(&handle).await?;
                let cached = CachedPolicy {
                    value: Arc::new(DevicePolicy {
                        policy: effective.trust,
                        attested,
                        bundle,
                        reported_bundle,
                    }),
                    revision: device.policy_revision,
                };
                state.device_policies.insert(handle, cached.clone());
                cached
            }
        };
        let (evaluation, posture) = assess(
            &request.report,
            &request.setup,
            &cached.value.attested,
            &cached.value.policy,
            now,
        )?;

        // The nonce, the device still being active and the trust change are settled against
        // the database by the check-in writer, in one transaction shared with other devices'
        // check-ins.
        let check_in = CheckIn {
            write: CheckInWrite {
                handle,
                nonce: device.nonce_hex(),
                nonce_expires_at: device.nonce_expires_at(),
                posture,
                received_at: now,
                policy_revision: Some(cached.revision),
            },
            trust_state: evaluation.state,
            finding_sources: evaluation.finding_layers(),
            contradictions: evaluation.contradiction_layers(),
        };
        match state.check_ins.store(check_in).await {
            Ok(CheckInOutcome::Recorded { .. }) => {
                // The bundle the device enforces is written only when it changes, and the
                // cache reloaded then, so a steady device costs no extra write.
                if let Some(reported) = request.policy_bundle
                    && cached.value.reported_bundle != Some(reported)
                {
                    state
                        .store()
                        .set_device_policy_bundle(&handle, reported)
                        .await?;
                    state.device_policies.forget(&handle);
                }
                let mut view = TrustView::from(&evaluation);
                view.policy_bundle = cached.value.bundle.clone();
                return Ok(view);
            }
            Ok(CheckInOutcome::Stale) => state.device_policies.forget(&handle),
            Ok(CheckInOutcome::Replayed) => {
                return Err(refuse.deny(ReasonCategory::Replayed).await);
            }
            // Revoked, retired, ... since its policy was cached: refused in the transaction.
            Ok(CheckInOutcome::NotActive {
                state: device_state,
            }) => {
                state.device_policies.forget(&handle);
                let reason = match device_state {
                    None => ReasonCategory::UnknownDevice,
                    Some(device_state) => {
                        device_request_refusal(DeviceRequest::CheckIn, device_state, now)
                            .unwrap_or(ReasonCategory::DeviceNotActive)
                    }
                };
                return Err(refuse.deny(reason).await);
            }
            Err(error) => return Err(ApiError::internal(&error)),
        }
    }
    Err(ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "policy_changing",
        "the device's policies are changing; check in again",
    ))
}

/// The device inventory, in handle order, filtered by lifecycle state, trust state and group.
pub async fn list(state: &AppState, query: DeviceListQuery) -> ApiResult<Vec<DeviceView>> {
    let limit = query.limit.unwrap_or(100);
    let last_seen_first = query.order == Some(enigm_api::DeviceOrder::LastSeen);
    if last_seen_first && query.after.is_some() {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`after` pages the list by handle; it cannot be combined with `order=last-seen` \
             (narrow it with `since` instead)",
        ));
    }
    let filter = DeviceFilter {
        state: query.state,
        trust_state: query.trust_state,
        group: match query.group {
            Some(group) if !is_group_name(&group) => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    "`group` is 1 to 64 of `a-z 0-9 - _ .`",
                ));
            }
            group => group,
        },
        after: query.after,
        seen_since: enigm_api::since::parse(query.since.as_deref()),
        last_seen_first,
        limit,
    };
    let records = state.store().list_devices(&filter).await?;
    let handles: Vec<DeviceHandle> = records.iter().map(|record| record.handle).collect();
    let mut pending = state.store().pending_commands(&handles).await?;
    let mut views = Vec::with_capacity(records.len());
    for record in &records {
        let mut view = device_view(record)?;
        let commands = enigm_store::LifecycleRecord {
            pending: pending.remove(&record.handle),
            ..enigm_store::LifecycleRecord::default()
        };
        view.lifecycle = lifecycle::view(view.state, &commands)?;
        views.push(view);
    }
    Ok(views)
}

/// One device: lifecycle state, opt-ins, trust state with findings, production gates and the
/// last attestation.
pub async fn read(state: &AppState, handle: DeviceHandle) -> ApiResult<DeviceView> {
    let record = state
        .store()
        .device(&handle)
        .await?
        .ok_or_else(|| ApiError::not_found("device"))?;
    let mut view = device_view(&record)?;
    let commands = state.store().device_lifecycle(&handle).await?;
    view.lifecycle = lifecycle::view(view.state, &commands)?;
    let attestation = state.store().device_attestation(&handle).await?;
    if let Some(attestation) = &attestation {
        view.attestation = attestation::attestation_view(attestation)?;
    }
    view.policies = policies::for_device(
        state,
        &record.group,
        &record.policy,
        attestation.as_ref().map(|record| record.policy.as_str()),
    )
    .await?
    .views;
    view.policy_bundle = Some(enigm_api::devices::DeviceBundleView {
        enforced: state.store().device_policy_bundle(&handle).await?,
        published: state
            .store()
            .latest_policy_bundle(&record.group)
            .await?
            .map(|bundle| bundle.sequence),
    });
    Ok(view)
}

/// The group's newest policy bundle, named to a device only where the one decision lets
/// Command offer it (OTA of the `policy-bundle`, on the lifecycle state and the policy).
async fn offered_bundle(
    state: &AppState,
    group: &str,
    device_state: DeviceState,
    policy: enigm_trust::DecisionPolicy,
    now: Timestamp,
) -> ApiResult<Option<String>> {
    let offer = DecisionInput::policy_bundle_offer(device_state, policy, now);
    if enigm_trust::decide(&offer) != EligibilityDecision::Allow {
        return Ok(None);
    }
    Ok(state
        .store()
        .latest_policy_bundle(group)
        .await?
        .map(|bundle| bundle.target_name))
}

/// Why a device in `state` may not make `request` of Command about itself, if it may not:
/// the one decision function's answer, with the device as the actor and its own record as the
/// resource.
pub(crate) fn device_request_refusal(
    request: DeviceRequest,
    state: DeviceState,
    now: Timestamp,
) -> Option<ReasonCategory> {
    match enigm_trust::decide(&DecisionInput::device_request(request, state, now)) {
        EligibilityDecision::Allow => None,
        EligibilityDecision::Deny(reason) => Some(eligibility::reason_category(reason)),
    }
}

/// Evaluates a report with the device's attested signals merged in (they outrank it); only
/// the outcome is kept, never the report. The gates keep why they have their results (which
/// signals, with their best sources), not the signals' observation times. The setup steps the
/// device reports complete are kept as the ones still missing.
fn assess(
    report: &SignalReport,
    setup_completed: &[SetupStep],
    attested: &AttestedSignals,
    policy: &TrustPolicy,
    now: Timestamp,
) -> ApiResult<(Evaluation, PostureRecord)> {
    let merged = merge(report, attested, policy, now);
    let evaluation = evaluate_merged(&merged, policy, now);
    let posture = PostureRecord {
        trust_state: evaluation.state,
        evaluated_at: evaluation.evaluated_at,
        findings: evaluation.findings.clone(),
        gates: explain_gates(merged.report(), policy, now).into(),
        setup_missing: SetupStep::missing(setup_completed),
    };
    Ok((evaluation, posture))
}

fn device_view(record: &DeviceRecord) -> ApiResult<DeviceView> {
    let trust_state = record.posture.trust_state;
    Ok(DeviceView {
        handle: record.handle,
        state: record.state,
        group: record.group.clone(),
        managed_opt_in: record.managed_opt_in,
        wipe_opt_in: record.wipe_opt_in,
        enrolled_at: record.enrolled_at.to_rfc3339(),
        last_seen_at: record.last_seen_at.to_rfc3339(),
        trust: TrustView {
            state: trust_state,
            launcher_summary: trust_state.launcher_summary(),
            findings: record
                .posture
                .findings
                .iter()
                .map(FindingView::from)
                .collect(),
            evaluated_at: record.posture.evaluated_at.to_rfc3339(),
            policy_bundle: None,
        },
        production_gates: record.posture.gates.clone(),
        lifecycle: enigm_api::LifecycleView::default(),
        attestation: None,
        policies: Vec::new(),
        setup: enigm_api::SetupView {
            ready: record.posture.setup_missing.is_empty(),
            missing: record.posture.setup_missing.clone(),
        },
        policy_bundle: None,
    })
}

/// Device groups: 1 to 64 of `a-z 0-9 - _ .`, so a group name is never free text.
fn is_group_name(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"-_.".contains(&byte)
        })
}

/// A token's group: a bad one is a bad body (422); in a query string it is a bad query (400).
fn parse_group(text: &str) -> ApiResult<String> {
    if is_group_name(text) {
        Ok(text.to_owned())
    } else {
        Err(ApiError::unprocessable(
            "invalid_group",
            "a group is 1 to 64 of `a-z 0-9 - _ .`",
        ))
    }
}
