//! Controlled rollout (enigm-docs §7, §20 D.28–D.31): a release's plan, its stage steps
//! (validate, start, promote; one at a time, never skipped), its waves, pause / resume /
//! withdraw, the automatic halt on a wave's failures, and version pins per device group.
//!
//! The rules are `enigm_ota::rollout`'s; this module keeps the state in the store and audits
//! every step, refused ones included. Promotion to stable and a security rollout's start go
//! through a multi-admin approval ([`execute_stage_approval`] carries them out).

use std::time::Duration;

use axum::http::StatusCode;
use enigm_api::rollouts::{
    HaltRuleSpec, RolloutAction, RolloutActionRequest, RolloutPlanRequest, RolloutView,
    VersionPinRequest, VersionPinView, WaveCountsView, WaveSpec, WaveView,
};
use enigm_ota::rollout::{self as rules, Cut, HaltRule, RolloutPlan, Wave};
use enigm_store::{
    ReleaseRecord, RolloutCount, RolloutDecision, RolloutRecord, StoreError, WriteTx,
};
use enigm_types::{
    Actor, AdminId, ApprovalAction, ApprovalId, AuditAction, AuditEvent, AuditTarget, DeviceHandle,
    InstallOutcome, Justification, Outcome, ReasonCategory, ReleaseId, ReleaseStage, ReleaseState,
    RolloutDeviceState, RolloutModel, RolloutStatus, Timestamp,
};
use serde::{Deserialize, Serialize};

use super::release_record;
use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::guard::Caller;
use crate::services::approvals;
use crate::state::AppState;

/// A plan as stored (JSON in `release_rollouts.plan`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredPlan {
    model: RolloutModel,
    waves: Vec<WaveSpec>,
    validation_groups: Vec<enigm_types::GroupName>,
    halt: HaltRuleSpec,
}

impl StoredPlan {
    fn rules(&self) -> RolloutPlan {
        RolloutPlan {
            model: self.model,
            waves: self
                .waves
                .iter()
                .map(|wave| Wave {
                    share_bp: u16::from(wave.percent).saturating_mul(100),
                    soak: Duration::from_secs(wave.soak_seconds),
                })
                .collect(),
            validation_groups: self
                .validation_groups
                .iter()
                .map(|group| group.as_str().to_owned())
                .collect(),
            halt: HaltRule {
                max_failure_percent: self.halt.max_failure_percent,
                min_reports: self.halt.min_reports,
            },
            attestation_required: true,
        }
    }
}

/// A rollout as the rules see it, decoded from its record.
pub(crate) struct Rollout {
    pub record: RolloutRecord,
    plan: Option<StoredPlan>,
    /// The open waves' cuts, in order.
    pub cuts: Vec<Cut>,
    /// When each open wave opened.
    opened: Vec<Timestamp>,
}

/// An open wave as stored (JSON in `release_rollouts.cuts`): its cut's limit (`None` for
/// everyone) and when it opened.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredWave {
    limit: Option<u64>,
    opened_at: i64,
}

impl Rollout {
    fn decode(record: RolloutRecord) -> ApiResult<Rollout> {
        let corrupt = |what| ApiError::internal(&StoreError::Corrupt(what));
        let plan = record
            .plan
            .as_deref()
            .map(serde_json::from_str::<StoredPlan>)
            .transpose()
            .map_err(|_| corrupt("rollout plan"))?;
        let waves: Vec<StoredWave> =
            serde_json::from_str(&record.cuts).map_err(|_| corrupt("rollout cuts"))?;
        let cuts = waves
            .iter()
            .map(|wave| wave.limit.map_or(Cut::Everyone, Cut::Below))
            .collect();
        let opened = waves
            .iter()
            .map(|wave| Timestamp::from_unix_millis(wave.opened_at))
            .collect();
        Ok(Rollout {
            record,
            plan,
            cuts,
            opened,
        })
    }

    fn encode_cuts(&mut self) -> ApiResult<()> {
        let waves: Vec<StoredWave> = self
            .cuts
            .iter()
            .zip(&self.opened)
            .map(|(cut, opened)| StoredWave {
                limit: cut.limit(),
                opened_at: opened.unix_millis(),
            })
            .collect();
        self.record.cuts =
            serde_json::to_string(&waves).map_err(|error| ApiError::internal(&error))?;
        Ok(())
    }

    /// The plan's rules; a release without a plan is a draft.
    pub(crate) fn plan(&self) -> RolloutPlan {
        self.plan.as_ref().map_or_else(
            || RolloutPlan::preset(RolloutModel::Draft, Vec::new()),
            StoredPlan::rules,
        )
    }

    /// The plan's model, when there is a plan.
    pub(crate) fn plan_model(&self) -> Option<RolloutModel> {
        self.plan.as_ref().map(|plan| plan.model)
    }

    fn model(&self) -> RolloutModel {
        self.plan
            .as_ref()
            .map_or(RolloutModel::Draft, |plan| plan.model)
    }
}

/// The stage of `release` given its rollout.
pub(crate) fn stage(release: &ReleaseRecord, rollout: Option<&RolloutRecord>) -> ReleaseStage {
    rules::stage_of(
        release.state,
        release.artifact_stored,
        rollout.and_then(|rollout| rollout.stage),
    )
}

/// The release's rollout, or an unplanned one.
pub(crate) async fn load(state: &AppState, release: ReleaseId) -> ApiResult<Rollout> {
    let record = state
        .store()
        .rollout(release)
        .await?
        .unwrap_or_else(|| RolloutRecord::unplanned(release, state.now()));
    Rollout::decode(record)
}

async fn load_for_update(
    tx: &mut WriteTx<'_>,
    release: ReleaseId,
    now: Timestamp,
) -> ApiResult<Rollout> {
    let record = tx
        .rollout_for_update(release)
        .await?
        .unwrap_or_else(|| RolloutRecord::unplanned(release, now));
    Rollout::decode(record)
}

/// The rollout's status, plan and per-wave counts.
pub async fn read(state: &AppState, id: ReleaseId) -> ApiResult<RolloutView> {
    let release = release_record(state, id).await?;
    let rollout = load(state, id).await?;
    let counts = state.store().rollout_counts(id).await?;
    Ok(view(&release, &rollout, &counts))
}

fn view(release: &ReleaseRecord, rollout: &Rollout, counts: &[RolloutCount]) -> RolloutView {
    let record = &rollout.record;
    let plan = rollout.plan.as_ref();
    let open = rollout.cuts.len();
    let count_of = |wave: Option<u32>| {
        let mut view = WaveCountsView::default();
        for count in counts.iter().filter(|count| count.wave == wave) {
            let slot = match count.state {
                RolloutDeviceState::Offered => &mut view.offered,
                RolloutDeviceState::Downloading => &mut view.downloading,
                RolloutDeviceState::Installed => &mut view.installed,
                RolloutDeviceState::Failed => &mut view.failed,
                RolloutDeviceState::RolledBack => &mut view.rolled_back,
                RolloutDeviceState::Refused => &mut view.refused,
            };
            *slot += count.devices;
        }
        view
    };
    let waves = plan
        .map(|plan| plan.waves.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(index, wave)| {
            let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
            let current = index + 1 == open;
            WaveView {
                number,
                percent: wave.percent,
                soak_seconds: wave.soak_seconds,
                opened_at: rollout.opened.get(index).map(|at| at.to_rfc3339()),
                soak_ends_at: rollout
                    .opened
                    .get(index)
                    .filter(|_| current)
                    .map(|at| at.saturating_add(Duration::from_secs(wave.soak_seconds)))
                    .map(Timestamp::to_rfc3339),
                counts: count_of(Some(number - 1)),
            }
        })
        .collect();
    RolloutView {
        release: release.release.id,
        release_version: release.release.release_version.clone(),
        stage: stage(release, Some(record)),
        status: record.status,
        status_reason: record.status_reason.as_deref().and_then(reason_from_name),
        model: plan.map(|plan| plan.model),
        validation_groups: plan
            .map(|plan| plan.validation_groups.clone())
            .unwrap_or_default(),
        halt: plan.map(|plan| plan.halt),
        open_waves: u32::try_from(open).unwrap_or(u32::MAX),
        waves,
        outside_waves: count_of(None),
        pending_approval: record.pending_approval,
        updated_at: Some(record.updated_at.to_rfc3339()),
    }
}

fn reason_from_name(name: &str) -> Option<ReasonCategory> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

fn justification(text: &str) -> ApiResult<Justification> {
    Justification::parse(text)
        .map_err(|error| ApiError::unprocessable("invalid_justification", error.to_string()))
}

/// Sets the release's plan; allowed until its rollout starts.
pub async fn set_plan(
    state: &AppState,
    caller: &Caller,
    id: ReleaseId,
    request: RolloutPlanRequest,
) -> ApiResult<RolloutView> {
    justification(&request.justification)?;
    // An unknown release is 404 whatever the plan (checked again under the lock below).
    release_record(state, id).await?;
    let halt = request.halt.unwrap_or(HaltRuleSpec {
        max_failure_percent: HaltRule::default().max_failure_percent,
        min_reports: HaltRule::default().min_reports,
    });
    let waves = match request.waves {
        Some(waves) => waves,
        None => RolloutPlan::preset(request.model, Vec::new())
            .waves
            .iter()
            .map(|wave| WaveSpec {
                percent: u8::try_from(wave.share_bp / 100).unwrap_or(100),
                soak_seconds: wave.soak.as_secs(),
            })
            .collect(),
    };
    let plan = StoredPlan {
        model: request.model,
        waves,
        validation_groups: request.validation_groups,
        halt,
    };
    plan.rules()
        .validate()
        .map_err(|error| ApiError::unprocessable("invalid_rollout_plan", error.to_string()))?;
    let now = state.now();
    let target = AuditTarget::Release { release: id };
    let mut tx = state.store().begin().await?;
    let Some(release) = tx.release_for_update(id).await? else {
        return Err(ApiError::not_found("release"));
    };
    let mut rollout = load_for_update(&mut tx, id, now).await?;
    if stage(&release, Some(&rollout.record)) >= ReleaseStage::ControlledRollout
        || rollout.record.status == RolloutStatus::Withdrawn
    {
        drop(tx);
        let reason = ReasonCategory::InvalidTransition;
        refuse(
            state,
            caller.admin.id,
            AuditAction::ReleaseRolloutPlan,
            target,
            reason,
        )
        .await?;
        return Err(ApiError::conflict(
            reason,
            "the plan of a release whose rollout started (or that was withdrawn) cannot change",
        ));
    }
    rollout.record.plan =
        Some(serde_json::to_string(&plan).map_err(|error| ApiError::internal(&error))?);
    rollout.plan = Some(plan);
    rollout.record.updated_at = now;
    tx.save_rollout(&rollout.record).await?;
    tx.append_audit(&audit::success(
        now,
        caller.admin.id,
        AuditAction::ReleaseRolloutPlan,
        target,
    ))
    .await?;
    tx.commit().await?;
    read(state, id).await
}

async fn refuse(
    state: &AppState,
    admin: AdminId,
    action: AuditAction,
    target: AuditTarget,
    reason: ReasonCategory,
) -> ApiResult<()> {
    state
        .audit(&[audit::denied(
            state.now(),
            Actor::Admin(admin),
            action,
            target,
            reason,
        )])
        .await?;
    Ok(())
}

/// What a step did: carried out (200), or waiting for an approval (202).
pub struct StepOutcome {
    pub status: StatusCode,
    pub view: RolloutView,
}

/// Takes one rollout step.
pub async fn act(
    state: &AppState,
    caller: &Caller,
    id: ReleaseId,
    request: RolloutActionRequest,
) -> ApiResult<StepOutcome> {
    let justification = justification(&request.justification)?;
    let now = state.now();
    let target = AuditTarget::Release { release: id };
    let admin = caller.admin.id;
    let mut tx = state.store().begin().await?;
    let Some(release) = tx.release_for_update(id).await? else {
        return Err(ApiError::not_found("release"));
    };
    let mut rollout = load_for_update(&mut tx, id, now).await?;
    let current = stage(&release, Some(&rollout.record));
    let action = audit_action(request.action);
    let step = match request.action {
        RolloutAction::Validate => Step::Stage(ReleaseStage::Validated),
        RolloutAction::Start => Step::Stage(ReleaseStage::ControlledRollout),
        RolloutAction::Promote => Step::Stage(ReleaseStage::Stable),
        RolloutAction::Advance => Step::Advance,
        RolloutAction::Pause => Step::Status(RolloutStatus::Paused),
        RolloutAction::Resume => Step::Status(RolloutStatus::Active),
        RolloutAction::Withdraw => Step::Status(RolloutStatus::Withdrawn),
    };
    let refused = |reason: ReasonCategory, message: String| async move {
        refuse(state, admin, action, target, reason).await?;
        Err::<StepOutcome, _>(ApiError::new(
            StatusCode::CONFLICT,
            reason.as_str(),
            message,
        ))
    };
    match step {
        Step::Stage(to) => {
            let model = rollout.model();
            if let Err(error) = rules::check_step(current, to, model, rollout.record.status) {
                drop(tx);
                return refused(error.reason(), error.to_string()).await;
            }
            if rollout.record.pending_approval.is_some() {
                drop(tx);
                return refused(
                    ReasonCategory::Conflict,
                    "a step of this release waits for its approval".to_owned(),
                )
                .await;
            }
            if to == ReleaseStage::Validated
                && let Err(message) = validation_failure(state, &release, &rollout).await
            {
                drop(tx);
                return refused(ReasonCategory::InvalidTransition, message).await;
            }
            if rules::step_needs_approval(to, model) {
                let approval = approvals::open_request_in(
                    state,
                    &mut tx,
                    caller,
                    ApprovalAction::ReleaseStage { release: id, to },
                    &justification,
                    now,
                )
                .await?;
                // The request itself is audited as `approval.request`; the step is audited
                // when the approval executes it.
                rollout.record.pending_approval = Some(approval);
                rollout.record.updated_at = now;
                tx.save_rollout(&rollout.record).await?;
                tx.commit().await?;
                return Ok(StepOutcome {
                    status: StatusCode::ACCEPTED,
                    view: read(state, id).await?,
                });
            }
            take_stage(state, &mut rollout, to, now).await?;
        }
        Step::Advance => {
            let since = rollout
                .opened
                .last()
                .map_or(Duration::MAX, |opened| now.duration_since(*opened));
            let plan = rollout.plan();
            match rules::check_advance(
                &plan,
                current,
                rollout.record.status,
                rollout.cuts.len(),
                since,
            ) {
                Ok(next) => open_wave(state, &mut rollout, &plan, next, now).await?,
                Err(error) => {
                    drop(tx);
                    return refused(error.reason(), error.to_string()).await;
                }
            }
        }
        Step::Status(to) => {
            let from = rollout.record.status;
            let allowed = match to {
                RolloutStatus::Paused => from == RolloutStatus::Active,
                RolloutStatus::Active => {
                    matches!(from, RolloutStatus::Paused | RolloutStatus::Halted)
                }
                RolloutStatus::Withdrawn => from != RolloutStatus::Withdrawn,
                RolloutStatus::Halted => false,
            };
            if !allowed || current < ReleaseStage::Registered {
                drop(tx);
                let reason = if from == RolloutStatus::Withdrawn {
                    ReasonCategory::RolloutWithdrawn
                } else {
                    ReasonCategory::InvalidTransition
                };
                return refused(
                    reason,
                    format!(
                        "a {} rollout of a {current} release cannot be made {}",
                        from.as_str(),
                        to.as_str()
                    ),
                )
                .await;
            }
            rollout.record.status = to;
            rollout.record.status_reason = None;
            if to == RolloutStatus::Withdrawn {
                // A step waiting for its approval would widen a withdrawn release: the
                // approval finds no pending step when it executes.
                rollout.record.pending_approval = None;
            }
        }
    }
    rollout.record.updated_at = now;
    rollout.encode_cuts()?;
    tx.save_rollout(&rollout.record).await?;
    tx.append_audit(&audit::success(now, admin, action, target))
        .await?;
    tx.commit().await?;
    Ok(StepOutcome {
        status: StatusCode::OK,
        view: read(state, id).await?,
    })
}

enum Step {
    Stage(ReleaseStage),
    Advance,
    Status(RolloutStatus),
}

fn audit_action(action: RolloutAction) -> AuditAction {
    match action {
        RolloutAction::Validate | RolloutAction::Start | RolloutAction::Promote => {
            AuditAction::ReleaseStageChange
        }
        RolloutAction::Advance => AuditAction::ReleaseWaveOpen,
        RolloutAction::Pause => AuditAction::ReleaseRolloutPause,
        RolloutAction::Resume => AuditAction::ReleaseRolloutResume,
        RolloutAction::Withdraw => AuditAction::ReleaseWithdraw,
    }
}

/// Command's validation of a registered release (enigm-docs §7 stage 6): the artifact stored
/// and still matching its digest, the release signed into the repository and not expired, and
/// a plan that passes its checks.
async fn validation_failure(
    state: &AppState,
    release: &ReleaseRecord,
    rollout: &Rollout,
) -> Result<(), String> {
    if release.state != ReleaseState::Published || release.targets_version.is_none() {
        return Err("only a published release can be validated".to_owned());
    }
    if release.release.expires_at <= state.now() {
        return Err("the release has expired".to_owned());
    }
    let Some(plan) = rollout.plan.as_ref() else {
        return Err("the release has no rollout plan: set one first".to_owned());
    };
    plan.rules().validate().map_err(|error| error.to_string())?;
    if !release.artifact_stored {
        return Err("the release's artifact is not stored".to_owned());
    }
    let path = state.ota().artifact_path(&release.release.sha256);
    let (length, digest) = hash_file(&path)
        .await
        .map_err(|_| "the release's artifact cannot be read".to_owned())?;
    if length != release.release.length || digest != release.release.sha256 {
        return Err(
            "the stored artifact no longer matches the release's length and digest".to_owned(),
        );
    }
    Ok(())
}

/// The length and SHA-256 (lower-case hex) of the file at `path`, read in chunks (an OS image
/// may be gigabytes).
async fn hash_file(path: &std::path::Path) -> std::io::Result<(u64, String)> {
    use tokio::io::AsyncReadExt as _;
    let mut file = tokio::fs::File::open(path).await?;
    let mut digest = enigm_crypto::Sha256Stream::new();
    let mut buffer = vec![0_u8; 1 << 20];
    let mut length = 0_u64;
    loop {
        let read = file.read(&mut buffer).await?;
        let Some(chunk) = buffer.get(..read).filter(|chunk| !chunk.is_empty()) else {
            break;
        };
        digest.update(chunk);
        length = length.saturating_add(read as u64);
    }
    Ok((length, hex::encode(digest.finish())))
}

/// Records the stage; starting the rollout opens its first wave.
async fn take_stage(
    state: &AppState,
    rollout: &mut Rollout,
    to: ReleaseStage,
    now: Timestamp,
) -> ApiResult<()> {
    rollout.record.stage = Some(to);
    rollout.record.pending_approval = None;
    if to == ReleaseStage::ControlledRollout {
        let plan = rollout.plan();
        if !plan.waves.is_empty() {
            open_wave(state, rollout, &plan, 0, now).await?;
        }
    }
    Ok(())
}

/// Opens wave `index`: its cut over the places of the devices Command knows now.
async fn open_wave(
    state: &AppState,
    rollout: &mut Rollout,
    plan: &RolloutPlan,
    index: usize,
    now: Timestamp,
) -> ApiResult<()> {
    let Some(wave) = plan.waves.get(index) else {
        return Ok(());
    };
    let release = rollout.record.release;
    let mut places: Vec<u64> = state
        .store()
        .rollout_population()
        .await?
        .iter()
        .map(|handle| place(release, handle))
        .collect();
    let cut = rules::open_wave(&mut places, wave.share_bp, rollout.cuts.last().copied());
    rollout.cuts.truncate(index);
    rollout.cuts.push(cut);
    rollout.opened.truncate(index);
    rollout.opened.push(now);
    rollout.encode_cuts()
}

/// A device's place in a release's rollout.
pub(crate) fn place(release: ReleaseId, handle: &DeviceHandle) -> u64 {
    rules::place(release.to_string().as_bytes(), handle)
}

/// Carries out an approved stage step (promotion to stable, a security rollout's start),
/// checked again against the rollout as it is now.
pub async fn execute_stage_approval(
    state: &AppState,
    tx: &mut WriteTx<'_>,
    admin: AdminId,
    release: ReleaseId,
    to: ReleaseStage,
    approval: ApprovalId,
    now: Timestamp,
) -> ApiResult<Result<(), ReasonCategory>> {
    let Some(record) = tx.release_for_update(release).await? else {
        return Ok(Err(ReasonCategory::Conflict));
    };
    let mut rollout = load_for_update(tx, release, now).await?;
    if rollout.record.pending_approval != Some(approval) {
        return Ok(Err(ReasonCategory::Conflict));
    }
    let current = stage(&record, Some(&rollout.record));
    if let Err(error) = rules::check_step(current, to, rollout.model(), rollout.record.status) {
        return Ok(Err(error.reason()));
    }
    take_stage(state, &mut rollout, to, now).await?;
    rollout.record.updated_at = now;
    rollout.encode_cuts()?;
    tx.save_rollout(&rollout.record).await?;
    tx.append_audit(
        &audit::success(
            now,
            admin,
            AuditAction::ReleaseStageChange,
            AuditTarget::Release { release },
        )
        .with_change_ref(approval),
    )
    .await?;
    Ok(Ok(()))
}

/// Records a device's install report against the release's rollout and halts the rollout when
/// the reports of the wave it fell in pass the plan's threshold.
pub async fn record_install(
    tx: &mut WriteTx<'_>,
    release: ReleaseId,
    handle: &DeviceHandle,
    outcome: InstallOutcome,
    now: Timestamp,
) -> ApiResult<()> {
    let Some(record) = tx.rollout_for_update(release).await? else {
        return Ok(());
    };
    let mut rollout = Rollout::decode(record)?;
    let wave = rules::wave_of(&rollout.cuts, place(release, handle))
        .and_then(|wave| u32::try_from(wave).ok());
    let state = match outcome {
        InstallOutcome::Downloading => {
            // Replaces only the director's decision: a late word never hides a report.
            tx.record_rollout_decisions(&[RolloutDecision {
                release,
                handle: *handle,
                wave,
                state: RolloutDeviceState::Downloading,
                at: now,
            }])
            .await?;
            return Ok(());
        }
        InstallOutcome::Installed => RolloutDeviceState::Installed,
        InstallOutcome::Rejected => RolloutDeviceState::Failed,
        InstallOutcome::RolledBack => RolloutDeviceState::RolledBack,
    };
    tx.set_rollout_device(release, handle, wave, state, now)
        .await?;
    let current_wave = rollout
        .cuts
        .len()
        .checked_sub(1)
        .and_then(|wave| u32::try_from(wave).ok());
    if outcome == InstallOutcome::Installed
        || rollout.record.status != RolloutStatus::Active
        || current_wave.is_none()
    {
        return Ok(());
    }
    let counts = tx.rollout_counts(release).await?;
    let mut reports = rules::WaveReports::default();
    for count in counts.iter().filter(|count| count.wave == current_wave) {
        match count.state {
            RolloutDeviceState::Installed => reports.installed += count.devices,
            RolloutDeviceState::Failed => reports.failed += count.devices,
            RolloutDeviceState::RolledBack => reports.rolled_back += count.devices,
            _ => {}
        }
    }
    if rules::should_halt(reports, rollout.plan().halt) {
        let reason = ReasonCategory::RolloutFailureThreshold;
        rollout.record.status = RolloutStatus::Halted;
        rollout.record.status_reason = Some(
            serde_json::to_value(reason)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default(),
        );
        rollout.record.updated_at = now;
        tx.save_rollout(&rollout.record).await?;
        tx.append_audit(
            &AuditEvent::new(
                now,
                Actor::System,
                AuditAction::ReleaseRolloutHalt,
                AuditTarget::Release { release },
                Outcome::Success,
            )
            .with_reason(reason),
        )
        .await?;
    }
    Ok(())
}

/// Every version pin.
pub async fn pins(state: &AppState) -> ApiResult<Vec<VersionPinView>> {
    let records = state.store().version_pins().await?;
    records.into_iter().map(pin_view).collect()
}

fn pin_view(record: enigm_store::VersionPinRecord) -> ApiResult<VersionPinView> {
    Ok(VersionPinView {
        group: enigm_types::GroupName::parse(&record.group)
            .map_err(|_| ApiError::internal(&StoreError::Corrupt("group name")))?,
        release: record.release,
        release_version: record.release_version,
        pinned_by: record.pinned_by,
        pinned_at: record.pinned_at.to_rfc3339(),
    })
}

/// Pins a group to a release's version: its devices are offered that version only.
pub async fn pin(
    state: &AppState,
    caller: &Caller,
    request: VersionPinRequest,
) -> ApiResult<VersionPinView> {
    justification(&request.justification)?;
    let now = state.now();
    let target = AuditTarget::Release {
        release: request.release,
    };
    let release = release_record(state, request.release).await?;
    let rollout = load(state, request.release).await?;
    // A pin keeps a group on what the director would offer it: an OS image at least validated,
    // never a withdrawn one (the group would be offered nothing at all).
    let refusal = if rollout.record.status == RolloutStatus::Withdrawn {
        Some((
            ReasonCategory::RolloutWithdrawn,
            "a group cannot be pinned to a withdrawn release",
        ))
    } else if release.release.kind != "os-image"
        || stage(&release, Some(&rollout.record)) < ReleaseStage::Validated
    {
        Some((
            ReasonCategory::InvalidTransition,
            "a group can be pinned to a validated OS image release only",
        ))
    } else {
        None
    };
    if let Some((reason, message)) = refusal {
        refuse(
            state,
            caller.admin.id,
            AuditAction::OtaVersionPin,
            target,
            reason,
        )
        .await?;
        return Err(ApiError::conflict(reason, message));
    }
    let mut tx = state.store().begin().await?;
    tx.pin_version(
        request.group.as_str(),
        request.release,
        caller.admin.id,
        now,
    )
    .await?;
    tx.append_audit(&audit::success(
        now,
        caller.admin.id,
        AuditAction::OtaVersionPin,
        target,
    ))
    .await?;
    tx.commit().await?;
    state
        .store()
        .version_pin(request.group.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found("pin"))
        .and_then(pin_view)
}

/// Removes a group's pin.
pub async fn unpin(state: &AppState, caller: &Caller, group: &str) -> ApiResult<()> {
    let now = state.now();
    let mut tx = state.store().begin().await?;
    let Some(release) = tx.unpin_version(group).await? else {
        return Err(ApiError::not_found("pin"));
    };
    tx.append_audit(&audit::success(
        now,
        caller.admin.id,
        AuditAction::OtaVersionUnpin,
        AuditTarget::Release { release },
    ))
    .await?;
    tx.commit().await?;
    Ok(())
}
