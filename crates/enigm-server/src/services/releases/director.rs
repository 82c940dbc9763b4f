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
use std::collections::HashMap;
use std::sync::Arc;

use enigm_ota::rollout::{Cut, RolloutPlan};
use enigm_store::ReleaseRecord;
use enigm_trust::{DecisionActor, ProtectedAction};
use enigm_types::{
    Actor, AuditAction, AuditEvent, AuditTarget, Outcome, ReasonCategory, ReleaseId, ReleaseStage,
    ReleaseState, RolloutDeviceState, RolloutStatus,
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
    // One read for the device, its pending lifecycle command and the catalogue's generation;
    // the policies and attestation it is decided under come from the per-revision cache.
    let Some(standing) = state.store().director_standing(&handle).await? else {
        return Err(device.refuse.deny(ReasonCategory::UnknownDevice).await);
    };
    let record = &standing.device;
    let inputs = eligibility::cached_inputs(state, record).await?;
    let eligibility = eligibility::decide_loaded(
        record,
        standing.command_pending,
        &inputs,
        &EligibilityRequest {
            device: handle,
            action: ProtectedAction::Ota,
            resource: None,
            session_valid: None,
        },
        DecisionActor::Command,
        now,
    );
    let ota_eligibility = match eligibility {
        EligibilityDecision::Allow => Ok(()),
        EligibilityDecision::Deny(reason) => Err(eligibility::reason_category(reason)),
    };
    let catalog = catalog(state, standing.catalog_generation).await?;
    let pinned = catalog.pins.get(&record.group);
    // Newest first (the catalogue's order); a pinned group considers its pinned release only.
    let candidates = catalog.releases.iter().filter(|release| {
        release.record.release.expires_at > now
            && release.record.release.rollback_index > request.installed_rollback_index
            && pinned.is_none_or(|pin| pin.release == release.record.release.id)
    });
    // The newest candidate's decision is the one recorded and audited; an older release the
    // device may have (a stable one while the newest is in its first wave) is offered instead.
    let mut decided: Option<(ReleaseId, OfferDecision, Option<u32>)> = None;
    let mut offer = None;
    for release in candidates {
        let fields = &release.record.release;
        let device_place = place(fields.id, &handle);
        let decision = rules::decide_offer(
            &RolloutStanding {
                stage: release.stage,
                status: release.status,
                plan: &release.plan,
                cuts: &release.cuts,
                channel: &fields.channel,
                models: &release.models,
                rollback_index: fields.rollback_index,
                release_version: &fields.release_version,
            },
            &DeviceStanding {
                lifecycle: record.state,
                ota_eligibility,
                group: &record.group,
                pinned_version: pinned.map(|pin| pin.release_version.as_str()),
                model: &request.model,
                channel: &request.channel,
                installed_rollback_index: request.installed_rollback_index,
                place: device_place,
            },
        );
        let wave =
            rules::wave_of(&release.cuts, device_place).and_then(|wave| u32::try_from(wave).ok());
        if decided.is_none() {
            decided = Some((fields.id, decision, wave));
        }
        if let OfferDecision::Offer { .. } = decision {
            offer = Some(
                DirectorOffer::new(
                    &fields.target_name,
                    fields.length,
                    &fields.sha256,
                    &fields.release_version,
                    fields.rollback_index,
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
    if let Some((id, decision, wave)) = &decided {
        let id = *id;
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

/// What the director decides from that is the same for every device: the published OS images
/// with their rollouts (newest first), and the group pins. Each process keeps one in memory and
/// reads it again when the store's catalogue generation moved (every publication, rollout
/// change and pin bumps it in its own transaction), so a withdrawal or a pause on any process
/// holds from the next update check on.
#[derive(Default)]
pub struct DirectorCatalog {
    cached: std::sync::Mutex<Option<Arc<Catalog>>>,
}

pub struct Catalog {
    generation: i64,
    releases: Vec<OfferableRelease>,
    pins: HashMap<String, enigm_store::VersionPinRecord>,
}

struct OfferableRelease {
    record: ReleaseRecord,
    models: Vec<String>,
    stage: ReleaseStage,
    status: RolloutStatus,
    plan: RolloutPlan,
    cuts: Vec<Cut>,
}

/// The catalogue as of now: the cached one when the generation has not moved.
async fn catalog(state: &AppState, generation: i64) -> ApiResult<Arc<Catalog>> {
    // The generation was read before the data, so the data stored with it is never older.
    let cached = state
        .director_catalog
        .cached
        .lock()
        .ok()
        .and_then(|cached| cached.clone());
    if let Some(catalog) = cached
        && catalog.generation == generation
    {
        return Ok(catalog);
    }
    let mut releases = Vec::new();
    for record in state.store().published_releases().await? {
        if record.state != ReleaseState::Published || record.release.kind != OS_IMAGE {
            continue;
        }
        let rollout = rollout::load(state, record.release.id).await?;
        releases.push(OfferableRelease {
            models: serde_json::from_str(&record.release.models).unwrap_or_default(),
            stage: rollout::stage(&record, Some(&rollout.record)),
            status: rollout.record.status,
            plan: rollout.plan(),
            cuts: rollout.cuts.clone(),
            record,
        });
    }
    releases.sort_by(|a, b| {
        let key = |release: &OfferableRelease| {
            (
                release.record.release.rollback_index,
                release.record.release.target_name.clone(),
            )
        };
        key(b).cmp(&key(a))
    });
    let pins = state
        .store()
        .version_pins()
        .await?
        .into_iter()
        .map(|pin| (pin.group.clone(), pin))
        .collect();
    let catalog = Arc::new(Catalog {
        generation,
        releases,
        pins,
    });
    if let Ok(mut cached) = state.director_catalog.cached.lock() {
        *cached = Some(catalog.clone());
    }
    Ok(catalog)
}
