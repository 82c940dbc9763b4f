//! Remote attestation of devices: a single-use challenge, and the appraisal of evidence, for an
//! enrolled device or (through [`attest_in`]) within its enrollment.
//!
//! Every outcome is audited (`device.attest`, success or denied with the rejection reason) in the
//! transaction that stores it; the device's attestation row keeps the verdict, the minimal claims
//! and the pairing. The evidence is dropped when the request ends.

use axum::http::StatusCode;
use base64::Engine as _;
use enigm_api::attestation::{
    AttestRequest, AttestationEvidence, AttestationPurpose, AttestationView, ChallengeRequest,
    ChallengeResponse,
};
use enigm_attest::outcome::{AttestationOutcome, Claims, EvidenceFormat, RejectionReason, Verdict};
use enigm_attest::policy::{AttestationPolicy, Pairing, advance};
use enigm_attest::signals::{self, AttestedClaims};
use enigm_store::{AttestationRecord, AttestationResultRecord, WriteTx};
use enigm_trust::DeviceRequest;
use enigm_trust::{AttestedSignals, Evidence};
use enigm_types::{
    Actor, AttestationFormat, AttestationVerdict, AuditAction, AuditEvent, AuditTarget,
    DeviceHandle, Outcome, ReasonCategory, Timestamp,
};
use rand::RngCore as _;

use crate::attestation::AttestationContext;
use crate::device_guard::SignedDevice;
use crate::error::{ApiError, ApiResult};
use crate::services::devices::device_request_refusal;
use crate::services::stored::{from_json, to_json};
use crate::state::AppState;

/// Issues a single-use attestation nonce to the signing device (60 s by default).
pub async fn challenge(
    state: &AppState,
    device: SignedDevice<ChallengeRequest>,
) -> ApiResult<ChallengeResponse> {
    let now = device.now;
    let handle = device.handle;
    let refuse = &device.refuse;
    let request = &device.body;
    if request.purpose == AttestationPurpose::Attestation {
        let Some(device) = state.store().device(&handle).await? else {
            return Err(refuse.deny(ReasonCategory::UnknownDevice).await);
        };
        if let Some(reason) = device_request_refusal(DeviceRequest::Attest, device.state, now) {
            return Err(refuse.deny(reason).await);
        }
    }
    let mut nonce = [0u8; enigm_attest::challenge::NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let Ok(expires_at) = state
        .attestation()
        .nonces
        .issue(nonce, handle, request.purpose, now)
        .await?
    else {
        return Err(refuse.deny(ReasonCategory::AttestationBusy).await);
    };
    Ok(ChallengeResponse {
        nonce: base64::engine::general_purpose::STANDARD.encode(nonce),
        expires_at: expires_at.to_rfc3339(),
    })
}

/// Appraises the evidence of an enrolled device answering an `attestation` challenge. A
/// rejection is stored and audited too, and answered 403 with the reason as its code.
pub async fn attest(
    state: &AppState,
    device: SignedDevice<AttestRequest>,
) -> ApiResult<AttestationView> {
    let now = device.now;
    let handle = device.handle;
    let refuse = &device.refuse;
    let request = &device.body;

    // The device is verified under its effective attestation policy (its group's assignment
    // before the policy it enrolled with); the assignments are read before the transaction.
    let enrolled = state.store().device(&handle).await?;
    let assigned = match &enrolled {
        Some(record) => state.store().group_policies(&record.group).await?,
        None => Vec::new(),
    };

    let mut tx = state.store().begin().await?;
    if let Err(error) = device.record_nonce(&mut tx).await {
        drop(tx);
        return Err(refuse.store_refusal(error).await);
    }
    let Some(device_state) = tx.device_state(&handle).await? else {
        drop(tx);
        return Err(refuse.deny(ReasonCategory::UnknownDevice).await);
    };
    if let Some(reason) = device_request_refusal(DeviceRequest::Attest, device_state, now) {
        drop(tx);
        return Err(refuse.deny(reason).await);
    }
    let (Some(mut record), Some(enrolled)) =
        (tx.device_attestation_for_update(&handle).await?, enrolled)
    else {
        drop(tx);
        return Err(refuse.deny(ReasonCategory::UnknownDevice).await);
    };
    let effective = crate::services::policies::from_assigned(
        &assigned,
        &enrolled.policy,
        Some(&record.policy),
    )?;
    record.policy = crate::services::stored::to_json(&effective.attestation)?;
    let outcome = attest_in(
        state,
        &mut tx,
        &request.evidence,
        &record,
        AttestationTarget {
            handle,
            device_key: device.public_key(),
            purpose: AttestationPurpose::Attestation,
        },
        now,
    )
    .await?;
    tx.commit().await?;
    // The device's attested signals changed: its next check-in in this process reads them anew.
    state.device_policies.forget(&handle);
    match outcome.verdict {
        // What was just stored, without reading it back.
        Verdict::Accepted => Ok(AttestationView {
            verdict: outcome.verdict.as_str().to_owned(),
            format: AttestationFormat::from(outcome.format).as_str().to_owned(),
            attested_at: now.to_rfc3339(),
            last_accepted_at: Some(now.to_rfc3339()),
            claims: outcome.claims.unwrap_or_default(),
        }),
        Verdict::Rejected(reason) => Err(rejection_error(reason, &outcome.detail)),
    }
}

/// Which device, with which key, for what.
pub(crate) struct AttestationTarget<'a> {
    pub handle: DeviceHandle,
    pub device_key: &'a [u8],
    pub purpose: AttestationPurpose,
}

/// Appraises `evidence` against the device's attestation row and records the outcome and its
/// audit event in `tx`: on acceptance the pairing advances (or is created), on rejection it stays.
pub(crate) async fn attest_in(
    state: &AppState,
    tx: &mut WriteTx<'_>,
    evidence: &AttestationEvidence,
    record: &AttestationRecord,
    target: AttestationTarget<'_>,
    now: Timestamp,
) -> ApiResult<AttestationOutcome> {
    let policy: AttestationPolicy = from_json(&record.policy, "attestation policy")?;
    let pinned: Option<Pairing> = record
        .pairing
        .as_deref()
        .map(|pairing| from_json(pairing, "attestation pairing"))
        .transpose()?;
    let attested = state
        .attestation()
        .appraise(
            &mut *tx,
            evidence,
            &AttestationContext {
                handle: target.handle,
                device_key: target.device_key,
                purpose: target.purpose,
                policy: &policy,
                pairing: pinned.as_ref(),
                handle_key: &state.device_handle_key,
                now,
            },
        )
        .await?;
    let outcome = attested.outcome;
    let pairing = match (&attested.pairing, &pinned) {
        (Some(accepted), Some(pinned)) => Some(advance(pinned, accepted)),
        (Some(accepted), None) => Some(accepted.clone()),
        (None, _) => None,
    };
    let pairing_json = pairing.as_ref().map(to_json).transpose()?;
    let claims = outcome.claims.clone().unwrap_or_default();
    tx.record_attestation(
        &target.handle,
        &AttestationResultRecord {
            verdict: outcome.verdict.into(),
            format: outcome.format.into(),
            claims: to_json(&claims)?,
            attested_at: now,
        },
        pairing_json.as_deref(),
    )
    .await?;
    let event = AuditEvent::new(
        now,
        Actor::Device(target.handle),
        AuditAction::DeviceAttest,
        AuditTarget::Device {
            handle: target.handle,
        },
        match outcome.verdict {
            Verdict::Accepted => Outcome::Success,
            Verdict::Rejected(_) => Outcome::Denied,
        },
    );
    let event = match outcome.verdict {
        Verdict::Accepted => event,
        Verdict::Rejected(reason) => event.with_reason(reason_category(reason)),
    };
    tx.append_audit(&event).await?;
    // Counted when appraised: the caller's transaction commits the record right after (a
    // failed commit answers 500 and is counted among the requests).
    state.metrics.attestation(
        AttestationFormat::from(outcome.format).as_str(),
        outcome.verdict.as_str(),
    );
    Ok(outcome)
}

pub(crate) fn reason_category(reason: RejectionReason) -> ReasonCategory {
    match reason {
        RejectionReason::InvalidTrustChain => ReasonCategory::InvalidTrustChain,
        RejectionReason::UnsupportedDevice => ReasonCategory::UnsupportedDevice,
        RejectionReason::IneligibleBuild => ReasonCategory::IneligibleBuild,
        RejectionReason::StaleAttestation => ReasonCategory::StaleAttestation,
        RejectionReason::ReplayAttempt => ReasonCategory::ReplayAttempt,
        RejectionReason::EligibilityFailure => ReasonCategory::EligibilityFailure,
    }
}

/// A rejection as an API error: 403 with the reason as its code and the explanation.
pub(crate) fn rejection_error(reason: RejectionReason, detail: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        reason_category(reason).as_str(),
        format!("attestation rejected ({reason}): {detail}"),
    )
}

/// The signals Command derives from a device's attestation row: the last accepted attestation's
/// claims, and what a later ineligible-build rejection of a genuine chain says is wrong (see
/// `enigm_trust::attested`). A row that cannot be read gives none, never an error at check-in.
pub(crate) fn attested_signals(
    record: &AttestationRecord,
    policy: &AttestationPolicy,
) -> AttestedSignals {
    let map = |format: AttestationFormat, claims: &str| -> Option<AttestedClaims> {
        let claims: Claims = serde_json::from_str(claims).ok()?;
        let format = match format {
            AttestationFormat::AndroidKey => EvidenceFormat::AndroidKey,
            AttestationFormat::Tpm2Quote => EvidenceFormat::Tpm2Quote,
        };
        let boot_key_allowed = claims
            .verified_boot_key
            .as_ref()
            .is_some_and(|key| policy.allowed_boot_keys.contains(key));
        Some(signals::attested_signals(format, &claims, boot_key_allowed))
    };
    let accepted = match (&record.accepted, record.accepted_at) {
        (Some((format, claims)), Some(at)) => map(*format, claims).map(|mapped| (mapped, at)),
        _ => None,
    };
    let rejected = record
        .last
        .as_ref()
        .filter(|last| last.verdict == AttestationVerdict::IneligibleBuild)
        .and_then(|last| map(last.format, &last.claims).map(|mapped| (mapped, last.attested_at)));
    AttestedSignals::from_evidence(
        accepted.as_ref().map(as_evidence),
        rejected.as_ref().map(as_evidence),
    )
}

fn as_evidence((mapped, at): &(AttestedClaims, Timestamp)) -> Evidence<'_> {
    Evidence {
        values: &mapped.values,
        os_patch_month: mapped.os_patch_month,
        attested_at: *at,
    }
}

/// The device's last attestation as the API shows it; `None` when it never sent evidence.
pub(crate) fn attestation_view(record: &AttestationRecord) -> ApiResult<Option<AttestationView>> {
    let Some(last) = &record.last else {
        return Ok(None);
    };
    Ok(Some(AttestationView {
        verdict: last.verdict.as_str().to_owned(),
        format: last.format.as_str().to_owned(),
        attested_at: last.attested_at.to_rfc3339(),
        last_accepted_at: record.accepted_at.map(Timestamp::to_rfc3339),
        claims: from_json(&last.claims, "attestation claims")?,
    }))
}
