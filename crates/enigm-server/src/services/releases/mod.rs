//! OTA releases on Command (enigm-docs §7–8, §20 D–E), one module per step of a release's way:
//! declaring it (here, with its release-signing approval request in the same transaction),
//! uploading its artifact ([`artifact`]), handing in its signatures and carrying out the approved
//! signing ([`signing`]), publishing it ([`publishing`]), the repository's root and re-signed
//! targets ([`repository`]), and what devices report of their installs ([`reports`]).
//!
//! Command verifies everything handed in against the trusted root before storing anything;
//! every acceptance and every verification failure is audited. Command never holds the offline
//! keys.

pub mod artifact;
pub mod director;
pub mod publishing;
pub mod reports;
pub mod repository;
pub mod rollout;
pub mod signing;

use axum::http::StatusCode;
use enigm_api::releases::{
    CreateReleaseRequest, InstallCountsView, MAX_COMPATIBLE_MODELS, MAX_RELEASE_DAYS, ReleaseKind,
    ReleaseView,
};
use enigm_store::{NewRelease, ReleaseRecord, StoreError};
use enigm_types::{
    ApprovalAction, AuditAction, AuditTarget, Justification, ReasonCategory, ReleaseId,
    ReleaseState, Timestamp,
};

use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::guard::Caller;
use crate::ota::OtaRefusal;
use crate::services::approvals;
use crate::state::AppState;

pub use signing::execute_signing_approval;

/// Declares a release and opens the approval request its signing needs.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    request: CreateReleaseRequest,
) -> ApiResult<ReleaseView> {
    let justification = Justification::parse(&request.justification)
        .map_err(|error| ApiError::unprocessable("invalid_justification", error.to_string()))?;
    // Command compiles and signs policy bundles itself (services::policy_bundles), under the
    // delegated role's paths: a release may neither be one nor take one's name.
    if request.kind == enigm_api::releases::ReleaseKind::PolicyBundle
        || request
            .target_name
            .starts_with(enigm_ota::policy_bundle::POLICY_BUNDLE_ROLE)
    {
        // 409, not 422: the request is well-formed, it conflicts with who owns those targets.
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "policy_bundle_release",
            "policy bundles are not released: Command compiles and signs them when a policy \
             change is approved; change a group's policy with `enigm policy assign`",
        ));
    }
    let declared = validate(&request)?;
    let now = state.now();
    let id = ReleaseId::random();
    let release = NewRelease {
        id,
        target_name: request.target_name.clone(),
        kind: request.kind.as_str().to_owned(),
        release_version: request.release_version.clone(),
        rollback_index: request.rollback_index,
        channel: request.channel.clone(),
        models: serde_json::to_string(&declared.models)
            .map_err(|error| ApiError::internal(&error))?,
        length: request.length,
        sha256: declared.sha256,
        expires_at: now.saturating_add(std::time::Duration::from_secs(
            u64::from(request.expires_in_days) * 24 * 60 * 60,
        )),
        created_by: caller.admin.id,
        created_at: now,
    };
    let mut tx = state.store().begin().await?;
    match tx.insert_release(&release).await {
        Err(StoreError::Conflict) => {
            return Err(ApiError::conflict(
                ReasonCategory::Conflict,
                "a release with this target name exists",
            ));
        }
        other => other?,
    }
    let approval = approvals::open_request_in(
        state,
        &mut tx,
        caller,
        ApprovalAction::ReleaseSigning { release: id },
        &justification,
        now,
    )
    .await?;
    tx.set_release_approval(id, approval).await?;
    tx.append_audit(
        &audit::success(
            now,
            caller.admin.id,
            AuditAction::ReleaseCreate,
            AuditTarget::Release { release: id },
        )
        .with_change_ref(approval),
    )
    .await?;
    tx.commit().await?;
    let record = release_record(state, id).await?;
    view(state, &record).await
}

/// Releases, newest first, with their signing state and what devices reported.
pub async fn list(state: &AppState) -> ApiResult<Vec<ReleaseView>> {
    let records = state.store().list_releases().await?;
    let mut views = Vec::with_capacity(records.len());
    for record in &records {
        views.push(view_among(state, record, superseder(record, &records)).await?);
    }
    Ok(views)
}

/// One release, with its signing state and what devices reported.
pub async fn read(state: &AppState, id: ReleaseId) -> ApiResult<ReleaseView> {
    let record = release_record(state, id).await?;
    view(state, &record).await
}

struct Declared {
    models: Vec<String>,
    sha256: String,
}

fn validate(request: &CreateReleaseRequest) -> ApiResult<Declared> {
    let invalid = |what: &'static str| ApiError::unprocessable("invalid_release", what);
    if enigm_ota::TargetName::parse(&request.target_name).is_err() {
        return Err(invalid(
            "target_name must be a relative `/`-separated path of 1 to 255 bytes of printable \
             ASCII without `\\`, `?`, `#`, empty, `.` or `..` segments",
        ));
    }
    if !is_label(&request.channel, 32) {
        return Err(invalid("channel must be 1 to 32 of `a-z 0-9 - _ .`"));
    }
    if request.compatible_models.is_empty()
        || request.compatible_models.len() > MAX_COMPATIBLE_MODELS
        || !request
            .compatible_models
            .iter()
            .all(|model| is_label(model, 64))
    {
        return Err(invalid(
            "compatible_models must list 1 to 64 models, each 1 to 64 of `a-z 0-9 - _ .`",
        ));
    }
    if request.release_version.is_empty()
        || request.release_version.len() > 64
        || !request
            .release_version
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_.+".contains(&byte))
    {
        return Err(invalid(
            "release_version must be 1 to 64 of `A-Z a-z 0-9 - _ . +`",
        ));
    }
    if request.length == 0 {
        return Err(invalid("length must be positive"));
    }
    if !(1..=MAX_RELEASE_DAYS).contains(&request.expires_in_days) {
        return Err(invalid("expires_in_days must be between 1 and 730"));
    }
    let sha256 = request.sha256.to_ascii_lowercase();
    if sha256.len() != 64 || !sha256.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(invalid("sha256 must be 64 hex digits"));
    }
    if i64::try_from(request.length).is_err() || i64::try_from(request.rollback_index).is_err() {
        return Err(invalid("length and rollback_index must be below 2^63"));
    }
    let mut models = request.compatible_models.clone();
    models.sort_unstable();
    models.dedup();
    Ok(Declared { models, sha256 })
}

pub(super) fn is_label(text: &str, max: usize) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"-_.".contains(&byte)
        })
}

pub(crate) async fn release_record(state: &AppState, id: ReleaseId) -> ApiResult<ReleaseRecord> {
    state
        .store()
        .release_by_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found("release"))
}

/// The view of one release; a published one is looked up among the others to tell whether a
/// later one superseded it.
pub(crate) async fn view(state: &AppState, record: &ReleaseRecord) -> ApiResult<ReleaseView> {
    let superseded_by = if record.state == ReleaseState::Published {
        superseder(record, &state.store().list_releases().await?)
    } else {
        None
    };
    view_among(state, record, superseded_by).await
}

/// The published release among `all` that superseded `record`, a published release: the first
/// one signed after it that supersedes it by the rule that dropped it from the targets metadata
/// then (`enigm_ota::release::supersedes`). Publishing a release publishes every release signed
/// before it, so that one is what devices saw replace it.
fn superseder(record: &ReleaseRecord, all: &[ReleaseRecord]) -> Option<ReleaseId> {
    if record.state != ReleaseState::Published {
        return None;
    }
    let listed_in = record.targets_version?;
    let old = release_fields(record)?;
    all.iter()
        .filter(|other| other.state == ReleaseState::Published)
        .filter_map(|other| Some((other.targets_version?, other)))
        .filter(|(version, _)| *version > listed_in)
        .filter(|(_, other)| {
            release_fields(other).is_some_and(|new| enigm_ota::release::supersedes(&new, &old))
        })
        .min_by_key(|(version, _)| *version)
        .map(|(_, other)| other.release.id)
}

/// The release fields a release was signed with, as far as `superseder` compares them.
fn release_fields(record: &ReleaseRecord) -> Option<enigm_ota::release::ReleaseFields> {
    let release = &record.release;
    Some(enigm_ota::release::ReleaseFields {
        kind: release.kind.clone(),
        release_version: release.release_version.clone(),
        rollback_index: release.rollback_index,
        channel: release.channel.clone(),
        hardware: serde_json::from_str(&release.models).ok()?,
        expires: enigm_ota::time::format_expiry(release.expires_at),
        payload_signatures: Vec::new(),
    })
}

async fn view_among(
    state: &AppState,
    record: &ReleaseRecord,
    superseded_by: Option<ReleaseId>,
) -> ApiResult<ReleaseView> {
    let release = &record.release;
    let counts = state.store().install_counts(&release.target_name).await?;
    let kind = ReleaseKind::parse(&release.kind)
        .ok_or_else(|| ApiError::internal(&StoreError::Corrupt("release kind")))?;
    let compatible_models: Vec<String> = serde_json::from_str(&release.models)
        .map_err(|_| ApiError::internal(&StoreError::Corrupt("release models")))?;
    Ok(ReleaseView {
        id: release.id,
        target_name: release.target_name.clone(),
        kind,
        release_version: release.release_version.clone(),
        rollback_index: release.rollback_index,
        channel: release.channel.clone(),
        compatible_models,
        length: release.length,
        sha256: release.sha256.clone(),
        expires_at: release.expires_at.to_rfc3339(),
        state: if superseded_by.is_some() {
            ReleaseState::Superseded
        } else {
            record.state
        },
        superseded_by,
        approval: record.approval,
        artifact_stored: record.artifact_stored,
        targets_version: record.targets_version,
        created_at: release.created_at.to_rfc3339(),
        signed_at: record.signed_at.map(Timestamp::to_rfc3339),
        published_at: record.published_at.map(Timestamp::to_rfc3339),
        installs: InstallCountsView {
            installed: counts.installed,
            rejected: counts.rejected,
            rolled_back: counts.rolled_back,
        },
    })
}

pub(crate) fn refusal_error(refusal: &OtaRefusal) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        refusal.reason.as_str(),
        refusal.message.clone(),
    )
}
