//! Controlled rollout of OTA releases (enigm-docs §7, §20 D.28–D.31): a release's stage, its
//! rollout plan and status, the steps operators take, version pins per device group.

use enigm_types::{
    AdminId, ApprovalId, GroupName, ReasonCategory, ReleaseId, ReleaseStage, RolloutModel,
    RolloutStatus,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The most waves a plan may list.
pub const MAX_WAVES: usize = 16;

/// One wave of a plan: the share of the eligible fleet it reaches (cumulative) and how long it
/// must run before the next opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaveSpec {
    /// Percent of the fleet, 1 to 100, larger than the wave before.
    #[schema(minimum = 1, maximum = 100)]
    pub percent: u8,
    /// Minimum time before the next wave may open (at most 30 days).
    #[schema(maximum = 2592000)]
    pub soak_seconds: u64,
}

/// When a wave's failures halt the rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HaltRuleSpec {
    /// Halt when failed and rolled-back installs are more than this percent of the wave's
    /// reports (1 to 100).
    #[schema(minimum = 1, maximum = 100)]
    pub max_failure_percent: u8,
    /// ... once at least this many reports came in (1 to 1,000,000).
    #[schema(minimum = 1, maximum = 1000000)]
    pub min_reports: u32,
}

/// `PUT /api/v1/releases/{id}/rollout/plan`: the plan a release rolls out by. Allowed until its
/// rollout starts. Without `waves`, the model's preset waves.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutPlanRequest {
    pub model: RolloutModel,
    #[serde(default)]
    #[schema(max_items = 16)]
    pub waves: Option<Vec<WaveSpec>>,
    /// Groups offered the release from `validated` on, before any wave (the validation
    /// model's cohort; at most 32).
    #[serde(default)]
    #[schema(max_items = 32)]
    pub validation_groups: Vec<GroupName>,
    #[serde(default)]
    pub halt: Option<HaltRuleSpec>,
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub justification: String,
}

/// A rollout step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RolloutAction {
    /// `registered` → `validated`: Command checks the artifact, the signatures and the plan.
    Validate,
    /// `validated` → `controlled-rollout`, opening the first wave (a security rollout needs
    /// an approval).
    Start,
    /// Opens the next wave once the current one has soaked.
    Advance,
    /// `controlled-rollout` → `stable`: every eligible device (needs an approval).
    Promote,
    Pause,
    /// Resumes a paused or halted rollout.
    Resume,
    /// No new offers, for good; devices that installed it keep it (needs the PIN).
    Withdraw,
}

impl RolloutAction {
    pub const ALL: [RolloutAction; 7] = [
        RolloutAction::Validate,
        RolloutAction::Start,
        RolloutAction::Advance,
        RolloutAction::Promote,
        RolloutAction::Pause,
        RolloutAction::Resume,
        RolloutAction::Withdraw,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RolloutAction::Validate => "validate",
            RolloutAction::Start => "start",
            RolloutAction::Advance => "advance",
            RolloutAction::Promote => "promote",
            RolloutAction::Pause => "pause",
            RolloutAction::Resume => "resume",
            RolloutAction::Withdraw => "withdraw",
        }
    }
}

/// `POST /api/v1/releases/{id}/rollout/actions`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutActionRequest {
    pub action: RolloutAction,
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub justification: String,
}

/// What the devices of one wave (or of the offers outside waves) did with the release.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WaveCountsView {
    pub offered: u64,
    pub downloading: u64,
    pub installed: u64,
    pub failed: u64,
    pub rolled_back: u64,
    /// Devices whose place is in the wave and that asked but were not offered (not trusted,
    /// unattested, pinned elsewhere, another model or channel).
    pub refused: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WaveView {
    /// 1-based.
    pub number: u32,
    pub percent: u8,
    pub soak_seconds: u64,
    /// RFC 3339, once open.
    pub opened_at: Option<String>,
    /// When the next wave may open (RFC 3339), for the current wave.
    pub soak_ends_at: Option<String>,
    pub counts: WaveCountsView,
}

/// `GET /api/v1/releases/{id}/rollout`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RolloutView {
    pub release: ReleaseId,
    pub release_version: String,
    pub stage: ReleaseStage,
    pub status: RolloutStatus,
    /// Why Command halted it, when halted.
    pub status_reason: Option<ReasonCategory>,
    /// Absent until a plan is set: without one the release is a draft, never offered.
    pub model: Option<RolloutModel>,
    pub validation_groups: Vec<GroupName>,
    pub halt: Option<HaltRuleSpec>,
    /// How many waves are open.
    pub open_waves: u32,
    pub waves: Vec<WaveView>,
    /// Offers made outside the waves: to validation groups, and at `stable`.
    pub outside_waves: WaveCountsView,
    /// The approval request a step waits for (promotion, security rollout).
    pub pending_approval: Option<ApprovalId>,
    pub updated_at: Option<String>,
}

/// `POST /api/v1/ota/pins`: keep a device group on one release's version until unpinned.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionPinRequest {
    pub group: GroupName,
    pub release: ReleaseId,
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub justification: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionPinView {
    pub group: GroupName,
    pub release: ReleaseId,
    pub release_version: String,
    pub pinned_by: AdminId,
    /// RFC 3339.
    pub pinned_at: String,
}

/// `POST /api/v1/device/ota/offer` (signed by the device): which update this device should
/// install now. What the device says of itself only narrows the answer (a release for another
/// model or channel is not offered); Command decides from its own record. The answer is the
/// director's signed document (`enigm_ota::director`), sent as the exact bytes it was signed
/// as; it echoes the request's nonce.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCheckRequest {
    /// The device's hardware model (1 to 64 of `a-z 0-9 - _ .`).
    #[schema(pattern = r"^[a-z0-9._-]{1,64}$")]
    pub model: String,
    /// The release channel the device follows (1 to 32 of `a-z 0-9 - _ .`).
    #[schema(pattern = r"^[a-z0-9._-]{1,32}$")]
    pub channel: String,
    /// The rollback index of the OS image the device runs.
    pub installed_rollback_index: u64,
}
