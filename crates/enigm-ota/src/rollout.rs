//! Controlled rollout as pure logic (enigm-docs §7, §20 D.28–D.31): the release stages and the
//! one step an operator may take from each, rollout plans (the documents' models as presets of
//! cumulative waves), each device's fixed place in a release's rollout, the automatic halt, and
//! the director's offer decision.
//!
//! **Places.** A device's place in a release is a 64-bit number from a digest of the release
//! and the device handle: it never changes within a release and says nothing about the device
//! elsewhere. A wave is opened by fixing a [`Cut`] from the places of the devices Command knows
//! then: the smallest cut that takes in the wave's share of them (rounded up). Cuts only grow,
//! so waves are cumulative and a device never moves to a later wave; devices that enroll later
//! fall in or out by their place alone.
//!
//! **Offers.** [`decide_offer`] answers for one device from what Command holds: the stage, the
//! rollout's status and cuts, the group's pin, the device's lifecycle, Command's own eligibility
//! decision (trust state, attestation), and the release's channel and hardware. Every "no" has
//! a reason for the audit log; the device is told none of them.

use std::time::Duration;

use enigm_types::{
    DeviceHandle, DeviceState, ReasonCategory, ReleaseStage, ReleaseState, RolloutModel,
    RolloutStatus,
};

/// The most waves a plan may have.
pub const MAX_WAVES: usize = 16;
/// The longest soak a wave may ask for.
pub const MAX_SOAK: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// The most validation groups a plan may name.
pub const MAX_VALIDATION_GROUPS: usize = 32;
/// The largest minimum sample a halt rule may ask for.
pub const MAX_HALT_SAMPLE: u32 = 1_000_000;
/// A whole fleet, in basis points (hundredths of a percent).
pub const WHOLE_FLEET_BP: u16 = 10_000;
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// The stage a release stands at, from its signing state and, once published, the operator
/// stage Command stored (`None` until the first operator step).
pub fn stage_of(
    state: ReleaseState,
    artifact_stored: bool,
    operator_stage: Option<ReleaseStage>,
) -> ReleaseStage {
    match state {
        ReleaseState::Draft if artifact_stored => ReleaseStage::ArtifactPrepared,
        ReleaseState::Draft => ReleaseStage::Build,
        ReleaseState::Approved => ReleaseStage::ManifestCreated,
        ReleaseState::Signed => ReleaseStage::Signed,
        ReleaseState::Published | ReleaseState::Superseded => {
            operator_stage.unwrap_or(ReleaseStage::Registered)
        }
    }
}

/// Why a stage step is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StageError {
    /// Stages are taken one at a time, forward: `from` → `to` skips or goes back.
    #[error("a release at {from} cannot move to {to}: stages are taken one at a time, in order")]
    IllegalStep {
        from: ReleaseStage,
        to: ReleaseStage,
    },
    /// Stages up to `Registered` follow from signing and publishing, not from an operator step.
    #[error("{to} follows from the release's signing and publishing, not from a rollout step")]
    NotAnOperatorStep { to: ReleaseStage },
    /// A `Draft` plan is never offered, so it cannot start a rollout.
    #[error("a release whose rollout plan is a draft cannot start its rollout")]
    DraftPlan,
    /// A withdrawn release goes nowhere.
    #[error("a withdrawn release takes no further stage")]
    Withdrawn,
    /// A paused or halted rollout does not widen: resume it first (a halt's reason is what an
    /// approver of a promotion would otherwise not see).
    #[error("the rollout is paused or halted: resume it before it reaches more devices")]
    Paused,
}

impl StageError {
    pub fn reason(self) -> ReasonCategory {
        match self {
            StageError::DraftPlan => ReasonCategory::RolloutDraftPlan,
            StageError::Withdrawn => ReasonCategory::RolloutWithdrawn,
            StageError::Paused => ReasonCategory::RolloutPaused,
            StageError::IllegalStep { .. } | StageError::NotAnOperatorStep { .. } => {
                ReasonCategory::InvalidTransition
            }
        }
    }
}

/// Checks an operator's step from `from` to `to`: the next stage after `Registered`, never a
/// skip or a step back, never for a withdrawn release, no rollout under a draft plan, and no
/// widening (start, promotion) while the rollout is paused or halted.
pub fn check_step(
    from: ReleaseStage,
    to: ReleaseStage,
    model: RolloutModel,
    status: RolloutStatus,
) -> Result<(), StageError> {
    if to <= ReleaseStage::Registered {
        return Err(StageError::NotAnOperatorStep { to });
    }
    if status == RolloutStatus::Withdrawn {
        return Err(StageError::Withdrawn);
    }
    if next_stage(from) != Some(to) {
        return Err(StageError::IllegalStep { from, to });
    }
    if to >= ReleaseStage::ControlledRollout && model == RolloutModel::Draft {
        return Err(StageError::DraftPlan);
    }
    if to >= ReleaseStage::ControlledRollout
        && matches!(status, RolloutStatus::Paused | RolloutStatus::Halted)
    {
        return Err(StageError::Paused);
    }
    Ok(())
}

/// The stage after `stage`, if any.
pub fn next_stage(stage: ReleaseStage) -> Option<ReleaseStage> {
    let index = ReleaseStage::ALL.iter().position(|known| *known == stage)?;
    ReleaseStage::ALL.get(index + 1).copied()
}

/// Whether the step to `to` under `model` needs a multi-admin approval: promotion to stable,
/// and starting a security rollout (every eligible device at once, soak skipped).
pub fn step_needs_approval(to: ReleaseStage, model: RolloutModel) -> bool {
    match to {
        ReleaseStage::Stable => true,
        ReleaseStage::ControlledRollout => model == RolloutModel::SecurityRollout,
        _ => false,
    }
}

/// One wave: the share of the fleet it reaches (cumulative) and how long it must run before
/// the next one opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wave {
    /// Basis points, 1 to 10,000.
    pub share_bp: u16,
    pub soak: Duration,
}

/// When a wave's failures halt the rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HaltRule {
    /// Halt when failed and rolled-back installs are more than this percentage (1–100) of the
    /// wave's reports.
    pub max_failure_percent: u8,
    /// ... and at least this many reports came in (never halt on one early failure).
    pub min_reports: u32,
}

impl Default for HaltRule {
    fn default() -> Self {
        HaltRule {
            max_failure_percent: 5,
            min_reports: 10,
        }
    }
}

/// A release's rollout plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutPlan {
    pub model: RolloutModel,
    /// Cumulative waves, shares strictly increasing. Empty for `Draft` and `Validation`.
    pub waves: Vec<Wave>,
    /// Groups offered the release from `Validated` on, before any wave.
    pub validation_groups: Vec<String>,
    pub halt: HaltRule,
    /// Offer only to devices with a fresh accepted attestation. Command's eligibility decision
    /// for OS images always asks for one; the flag is kept on the plan so the status says so.
    pub attestation_required: bool,
}

/// Why a plan is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("a plan has at most {MAX_WAVES} waves")]
    TooManyWaves,
    #[error("each wave's share must be 0.01 % to 100 %, larger than the wave before it")]
    WaveShares,
    #[error("a wave soaks for at most 30 days")]
    SoakTooLong,
    #[error("a {0} plan takes no waves of its own")]
    WavesNotTaken(RolloutModel),
    #[error("a plan with waves needs them to end at 100 % unless it is a limited rollout")]
    IncompleteWaves,
    #[error("a validation plan names 1 to {MAX_VALIDATION_GROUPS} groups")]
    ValidationGroups,
    #[error("the halt rule needs a failure percentage of 1 to 100 and 1 to 1,000,000 reports")]
    HaltRule,
}

impl RolloutPlan {
    /// The documents' model as a plan: its preset waves.
    pub fn preset(model: RolloutModel, validation_groups: Vec<String>) -> RolloutPlan {
        let wave = |percent: u16, soak: Duration| Wave {
            share_bp: percent * 100,
            soak,
        };
        let waves = match model {
            RolloutModel::Draft | RolloutModel::Validation => Vec::new(),
            RolloutModel::LimitedRollout => vec![wave(1, DAY), wave(10, DAY)],
            RolloutModel::StableRollout => vec![wave(10, DAY), wave(50, DAY), wave(100, DAY)],
            RolloutModel::SecurityRollout => vec![wave(100, Duration::ZERO)],
        };
        RolloutPlan {
            model,
            waves,
            validation_groups,
            halt: HaltRule::default(),
            attestation_required: true,
        }
    }

    /// Checks the plan's shape.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.waves.len() > MAX_WAVES {
            return Err(PlanError::TooManyWaves);
        }
        let mut previous = 0;
        for wave in &self.waves {
            if wave.share_bp <= previous || wave.share_bp > WHOLE_FLEET_BP {
                return Err(PlanError::WaveShares);
            }
            if wave.soak > MAX_SOAK {
                return Err(PlanError::SoakTooLong);
            }
            previous = wave.share_bp;
        }
        match self.model {
            RolloutModel::Draft | RolloutModel::Validation if !self.waves.is_empty() => {
                return Err(PlanError::WavesNotTaken(self.model));
            }
            RolloutModel::StableRollout | RolloutModel::SecurityRollout
                if previous != WHOLE_FLEET_BP =>
            {
                return Err(PlanError::IncompleteWaves);
            }
            RolloutModel::LimitedRollout if self.waves.is_empty() => {
                return Err(PlanError::WaveShares);
            }
            _ => {}
        }
        if self.validation_groups.len() > MAX_VALIDATION_GROUPS
            || (self.model == RolloutModel::Validation && self.validation_groups.is_empty())
        {
            return Err(PlanError::ValidationGroups);
        }
        if !(1..=100).contains(&self.halt.max_failure_percent)
            || !(1..=MAX_HALT_SAMPLE).contains(&self.halt.min_reports)
        {
            return Err(PlanError::HaltRule);
        }
        Ok(())
    }
}

/// A device's fixed place in a release's rollout.
pub fn place(release: &[u8], handle: &DeviceHandle) -> u64 {
    let mut input = Vec::with_capacity(32 + release.len() + 40);
    input.extend_from_slice(b"enigm-rollout-place-v1\0");
    input.extend_from_slice(release);
    input.push(0);
    input.extend_from_slice(handle.as_str().as_bytes());
    let digest = enigm_crypto::sha256(&input);
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    u64::from_be_bytes(first)
}

/// Which places an open wave takes in: those below a number, or every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cut {
    Below(u64),
    Everyone,
}

impl Cut {
    pub fn includes(self, place: u64) -> bool {
        match self {
            Cut::Below(limit) => place < limit,
            Cut::Everyone => true,
        }
    }

    /// The stored form: the limit, or `None` for everyone.
    pub fn limit(self) -> Option<u64> {
        match self {
            Cut::Below(limit) => Some(limit),
            Cut::Everyone => None,
        }
    }
}

/// The cut that opens a wave of `share_bp` over the devices whose places are `places`: the
/// smallest that takes in the share rounded up, and never below `previous` (waves are
/// cumulative). Sorts `places`.
pub fn open_wave(places: &mut [u64], share_bp: u16, previous: Option<Cut>) -> Cut {
    let cut = if share_bp >= WHOLE_FLEET_BP {
        Cut::Everyone
    } else {
        places.sort_unstable();
        let count = places.len() as u128;
        let wanted = (count * u128::from(share_bp)).div_ceil(u128::from(WHOLE_FLEET_BP));
        match usize::try_from(wanted)
            .ok()
            .and_then(|wanted| wanted.checked_sub(1))
        {
            None => Cut::Below(0),
            Some(last) => match places.get(last) {
                Some(&place) => place.checked_add(1).map_or(Cut::Everyone, Cut::Below),
                None => Cut::Everyone,
            },
        }
    };
    match previous {
        Some(previous) if previous > cut => previous,
        _ => cut,
    }
}

/// What devices reported in one wave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaveReports {
    pub installed: u64,
    pub failed: u64,
    pub rolled_back: u64,
}

/// Whether the reports of the current wave halt the rollout.
pub fn should_halt(reports: WaveReports, rule: HaltRule) -> bool {
    let bad = u128::from(reports.failed) + u128::from(reports.rolled_back);
    let total = bad + u128::from(reports.installed);
    total >= u128::from(rule.min_reports)
        && bad * 100 > total * u128::from(rule.max_failure_percent)
}

/// Why the next wave cannot open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdvanceError {
    #[error("waves open only during the controlled rollout stage")]
    NotRollingOut,
    #[error("the rollout is {0}: resume it before opening the next wave")]
    NotActive(RolloutStatus),
    #[error("every wave of the plan is open")]
    NoNextWave,
    #[error("the current wave has not soaked long enough")]
    SoakNotElapsed { remaining: Duration },
}

impl AdvanceError {
    pub fn reason(self) -> ReasonCategory {
        match self {
            AdvanceError::NotRollingOut | AdvanceError::NoNextWave => {
                ReasonCategory::InvalidTransition
            }
            AdvanceError::NotActive(RolloutStatus::Withdrawn) => ReasonCategory::RolloutWithdrawn,
            AdvanceError::NotActive(_) => ReasonCategory::RolloutPaused,
            AdvanceError::SoakNotElapsed { .. } => ReasonCategory::SoakNotElapsed,
        }
    }
}

/// Checks that the wave after the `open` ones may open, `since_last_open` after the last one
/// opened; returns the index of the wave to open.
pub fn check_advance(
    plan: &RolloutPlan,
    stage: ReleaseStage,
    status: RolloutStatus,
    open: usize,
    since_last_open: Duration,
) -> Result<usize, AdvanceError> {
    if stage != ReleaseStage::ControlledRollout {
        return Err(AdvanceError::NotRollingOut);
    }
    if status != RolloutStatus::Active {
        return Err(AdvanceError::NotActive(status));
    }
    if open >= plan.waves.len() {
        return Err(AdvanceError::NoNextWave);
    }
    if let Some(current) = open.checked_sub(1).and_then(|index| plan.waves.get(index))
        && since_last_open < current.soak
    {
        return Err(AdvanceError::SoakNotElapsed {
            remaining: current.soak.saturating_sub(since_last_open),
        });
    }
    Ok(open)
}

/// Where the release stands in its rollout, as the director needs it.
#[derive(Debug, Clone, Copy)]
pub struct RolloutStanding<'a> {
    pub stage: ReleaseStage,
    pub status: RolloutStatus,
    pub plan: &'a RolloutPlan,
    /// The cuts of the open waves, in order.
    pub cuts: &'a [Cut],
    pub channel: &'a str,
    pub models: &'a [String],
    pub rollback_index: u64,
    pub release_version: &'a str,
}

/// What Command knows of the asking device.
#[derive(Debug, Clone, Copy)]
pub struct DeviceStanding<'a> {
    pub lifecycle: DeviceState,
    /// Command's eligibility decision for OS images (trust state, posture age, attestation).
    pub ota_eligibility: Result<(), ReasonCategory>,
    pub group: &'a str,
    /// The version the device's group is pinned to, if any.
    pub pinned_version: Option<&'a str>,
    /// What the device says it is and runs: it can only narrow what it is offered.
    pub model: &'a str,
    pub channel: &'a str,
    pub installed_rollback_index: u64,
    pub place: u64,
}

/// The director's answer for one device and release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferDecision {
    /// Offer it; `wave` is the open wave the device falls in (`None` when offered as a
    /// validation group or at `Stable`).
    Offer { wave: Option<usize> },
    /// Do not, for this reason (audited, never told).
    NoOffer(ReasonCategory),
}

/// Decides whether `device` is offered the release now. Deny by default: every check must pass.
pub fn decide_offer(release: &RolloutStanding<'_>, device: &DeviceStanding<'_>) -> OfferDecision {
    match offer_wave(release, device) {
        Ok(wave) => OfferDecision::Offer { wave },
        Err(reason) => OfferDecision::NoOffer(reason),
    }
}

fn offer_wave(
    release: &RolloutStanding<'_>,
    device: &DeviceStanding<'_>,
) -> Result<Option<usize>, ReasonCategory> {
    match device.lifecycle {
        DeviceState::Trusted => {}
        DeviceState::Restricted => return Err(ReasonCategory::DeviceRestricted),
        DeviceState::Revoked => return Err(ReasonCategory::DeviceRevoked),
        _ => return Err(ReasonCategory::DeviceNotActive),
    }
    device.ota_eligibility?;
    match release.status {
        RolloutStatus::Active => {}
        RolloutStatus::Paused | RolloutStatus::Halted => return Err(ReasonCategory::RolloutPaused),
        RolloutStatus::Withdrawn => return Err(ReasonCategory::RolloutWithdrawn),
    }
    if release.plan.model == RolloutModel::Draft || release.stage < ReleaseStage::Validated {
        return Err(ReasonCategory::RolloutNotOffered);
    }
    if device
        .pinned_version
        .is_some_and(|pinned| pinned != release.release_version)
    {
        return Err(ReasonCategory::VersionPinned);
    }
    if device.channel != release.channel {
        return Err(ReasonCategory::ChannelMismatch);
    }
    if !release.models.iter().any(|model| model == device.model) {
        return Err(ReasonCategory::IncompatibleHardware);
    }
    if release.rollback_index <= device.installed_rollback_index {
        return Err(ReasonCategory::UpdateNotFound);
    }
    if release.stage == ReleaseStage::Stable {
        return Ok(None);
    }
    if release
        .plan
        .validation_groups
        .iter()
        .any(|group| group == device.group)
    {
        return Ok(None);
    }
    if release.stage == ReleaseStage::ControlledRollout
        && let Some(wave) = wave_of(release.cuts, device.place)
    {
        return Ok(Some(wave));
    }
    Err(ReasonCategory::NotInWave)
}

/// The wave a device's place falls in among `cuts`, if any is open for it.
pub fn wave_of(cuts: &[Cut], place: u64) -> Option<usize> {
    cuts.iter().position(|cut| cut.includes(place))
}

#[cfg(test)]
mod tests;
