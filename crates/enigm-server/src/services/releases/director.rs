//! The director (Uptane's per-device role; enigm-docs §7, §20 D.31–D.32): a device asks which
//! update it should install now, with a request signed by its device key (fresh nonce, time
//! window; a replay is refused and audited by the device guard and the nonce record). Command
//! decides from its own record: lifecycle `Trusted`, its eligibility decision for OS images
//! (trust state, posture age, a fresh accepted attestation), the group's pin, the release's
//! stage, plan, status and open waves, and the channel, model and rollback index the device
//! names (which only narrow the answer). It answers with `enigm_ota::director`'s signed
//! document, naming the one target or nothing: "no update" and "not eligible" are the same
//! document; the reason is audited, never told.

use enigm_api::eligibility::{EligibilityDecision, EligibilityRequest};
use enigm_api::rollouts::UpdateCheckRequest;
use enigm_ota::director::{DEFAULT_ANSWER_LIFETIME, DirectorAnswer, DirectorOffer, sign_answer};
use enigm_ota::rollout::{self as rules, DeviceStanding, OfferDecision, RolloutStanding};
use enigm_store::ReleaseRecord;
use enigm_trust::{DecisionActor, ProtectedAction};
use enigm_types::{
    Actor, AuditAction, AuditEvent, AuditTarget, Outcome, ReasonCategory, ReleaseState,
    RolloutDeviceState,
};

use super::is_label;
use super::rollout::{self, place};
use crate::device_guard::SignedDevice;
use crate::director_writer::{DirectorStored, DirectorWrite};
use crate::error::{ApiError, ApiResult};
use crate::services::eligibility;
use crate::state::AppState;

/// The kind of release the director offers: OS images (bundles travel by their own rules).
const OS_IMAGE: &str = "os-image";

/// Answers a signed device's update request with the director's signed document.
pub async fn answer(
    state: &AppState,
    device: SignedDevice<UpdateCheckRequest>,
) -> ApiResult<Vec<u8>> {
    let now = device.now;
    let handle = device.handle;
    let request = &device.body;
    if !is_label(&request.model, 64) || !is_label(&request.channel, 32) {
        return Err(device.refuse.deny(ReasonCategory::InvalidBody).await);
    }
    let Some(record) = state.store().device(&handle).await? else {
        return Err(device.refuse.deny(ReasonCategory::UnknownDevice).await);
    };
    let eligibility = eligibility::evaluate(
        state,
        &EligibilityRequest {
            device: handle,
            action: ProtectedAction::Ota,
            resource: None,
            session_valid: None,
        },
        DecisionActor::Command,
        now,
    )
    .await?;
    let ota_eligibility = match eligibility {
        EligibilityDecision::Allow => Ok(()),
        EligibilityDecision::Deny(reason) => Err(eligibility::reason_category(reason)),
    };
    let pinned = state.store().version_pin(&record.group).await?;
    let mut candidates: Vec<ReleaseRecord> = state
        .store()
        .published_releases()
        .await?
        .into_iter()
        .filter(|release| {
            release.state == ReleaseState::Published
                && release.release.kind == OS_IMAGE
                && release.release.expires_at > now
                && release.release.rollback_index > request.installed_rollback_index
                && pinned
                    .as_ref()
                    .is_none_or(|pin| pin.release == release.release.id)
        })
        .collect();
    candidates.sort_by(|a, b| {
        (b.release.rollback_index, &b.release.target_name)
            .cmp(&(a.release.rollback_index, &a.release.target_name))
    });
    // The newest candidate's decision is the one recorded and audited; an older release the
    // device may have (a stable one while the newest is in its first wave) is offered instead.
    let mut decided: Option<(ReleaseRecord, OfferDecision, Option<u32>)> = None;
    let mut offer = None;
    for release in &candidates {
        let rollout = rollout::load(state, release.release.id).await?;
        let plan = rollout.plan();
        let models: Vec<String> = serde_json::from_str(&release.release.models).unwrap_or_default();
        let device_place = place(release.release.id, &handle);
        let decision = rules::decide_offer(
            &RolloutStanding {
                stage: rollout::stage(release, Some(&rollout.record)),
                status: rollout.record.status,
                plan: &plan,
                cuts: &rollout.cuts,
                channel: &release.release.channel,
                models: &models,
                rollback_index: release.release.rollback_index,
                release_version: &release.release.release_version,
            },
            &DeviceStanding {
                lifecycle: record.state,
                ota_eligibility,
                group: &record.group,
                pinned_version: pinned.as_ref().map(|pin| pin.release_version.as_str()),
                model: &request.model,
                channel: &request.channel,
                installed_rollback_index: request.installed_rollback_index,
                place: device_place,
            },
        );
        let wave =
            rules::wave_of(&rollout.cuts, device_place).and_then(|wave| u32::try_from(wave).ok());
        if decided.is_none() {
            decided = Some((release.clone(), decision, wave));
        }
        if let OfferDecision::Offer { .. } = decision {
            offer = Some(
                DirectorOffer::new(
                    &release.release.target_name,
                    release.release.length,
                    &release.release.sha256,
                    &release.release.release_version,
                    release.release.rollback_index,
                )
                .map_err(|error| ApiError::internal(&error))?,
            );
            break;
        }
    }

    let mut write = DirectorWrite {
        handle,
        nonce: device.nonce_hex(),
        nonce_expires_at: device.nonce_expires_at(),
        received_at: now,
        rollout_step: None,
        event: None,
    };
    if let Some((release, decision, wave)) = &decided {
        let id = release.release.id;
        let target = AuditTarget::Release { release: id };
        write.event = Some(match decision {
            OfferDecision::Offer { .. } => AuditEvent::new(
                now,
                Actor::Device(handle),
                AuditAction::DeviceOtaOffer,
                target,
                Outcome::Success,
            ),
            OfferDecision::NoOffer(reason) => AuditEvent::new(
                now,
                Actor::Device(handle),
                AuditAction::DeviceOtaOffer,
                target,
                Outcome::Denied,
            )
            .with_reason(*reason),
        });
        write.rollout_step = counted_step(*decision).map(|step| (id, *wave, step));
    }
    match state.director.store(write).await {
        Ok(DirectorStored::Recorded) => {}
        Ok(DirectorStored::Replayed) => {
            return Err(device.refuse.deny(ReasonCategory::Replayed).await);
        }
        Err(error) => return Err(ApiError::internal(&error)),
    }
    state.metrics.ota_offer(offer.is_some());

    let answer = DirectorAnswer::new(
        handle,
        &device.nonce_text(),
        now,
        DEFAULT_ANSWER_LIFETIME,
        offer,
    )
    .map_err(|error| ApiError::internal(&error))?;
    sign_answer(&answer, &[&state.ota().online().director])
        .map_err(|error| ApiError::internal(&error))
}

/// What a decision counts as in the rollout's status: an offer, or a refusal of a device
/// whose own standing kept it from an offer (not one the rollout's reach did: not yet in a
/// wave, paused, withdrawn, not yet offered to anyone).
fn counted_step(decision: OfferDecision) -> Option<RolloutDeviceState> {
    match decision {
        OfferDecision::Offer { .. } => Some(RolloutDeviceState::Offered),
        OfferDecision::NoOffer(
            ReasonCategory::NotInWave
            | ReasonCategory::RolloutNotOffered
            | ReasonCategory::RolloutPaused
            | ReasonCategory::RolloutWithdrawn
            | ReasonCategory::ChannelMismatch
            | ReasonCategory::IncompatibleHardware
            | ReasonCategory::UpdateNotFound,
        ) => None,
        OfferDecision::NoOffer(_) => Some(RolloutDeviceState::Refused),
    }
}
