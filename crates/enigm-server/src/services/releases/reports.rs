//! What devices report of their installs: installed, rejected before anything switched, or
//! rolled back, with the failure's category. Stored per device and release, and audited.

use enigm_api::releases::{InstallReportRequest, InstallReportResponse};
use enigm_trust::DeviceRequest;
use enigm_types::{
    Actor, AuditAction, AuditEvent, AuditTarget, InstallOutcome, Outcome, ReasonCategory,
};

use crate::device_guard::SignedDevice;
use crate::error::ApiResult;
use crate::services::devices::device_request_refusal;
use crate::state::AppState;

/// Records a signed device's report of an install's outcome.
pub async fn record(
    state: &AppState,
    device: SignedDevice<InstallReportRequest>,
) -> ApiResult<InstallReportResponse> {
    let action = AuditAction::DeviceOtaInstall;
    let now = device.now;
    let handle = device.handle;
    let refuse = &device.refuse;
    let request = &device.body;
    if enigm_ota::TargetName::parse(&request.target_name).is_err()
        || request.release_version.len() > 64
        || request.outcome.is_success() != request.reason.is_none()
    {
        return Err(refuse.deny(ReasonCategory::InvalidBody).await);
    }
    let release = state
        .store()
        .release_by_target_name(&request.target_name)
        .await?;
    let mut tx = state.store().begin().await?;
    if let Err(error) = device.record_nonce(&mut tx).await {
        drop(tx);
        return Err(refuse.store_refusal(error).await);
    }
    let Some(device_state) = tx.device_state(&handle).await? else {
        drop(tx);
        return Err(refuse.deny(ReasonCategory::UnknownDevice).await);
    };
    if let Some(reason) = device_request_refusal(DeviceRequest::InstallReport, device_state, now) {
        drop(tx);
        return Err(refuse.deny(reason).await);
    }
    // A download is a step towards an outcome, counted in the rollout only; the install
    // report that follows is the record.
    if request.outcome != InstallOutcome::Downloading {
        tx.record_install_report(
            &handle,
            &request.target_name,
            request.outcome,
            request.reason.map(ReasonCategory::as_str),
            now,
        )
        .await?;
    }
    if let Some(release) = release {
        super::rollout::record_install(&mut tx, release.release.id, &handle, request.outcome, now)
            .await?;
    }
    let target = AuditTarget::Device { handle };
    let event = match request.outcome {
        InstallOutcome::Installed => {
            AuditEvent::new(now, Actor::Device(handle), action, target, Outcome::Success)
        }
        InstallOutcome::Downloading => AuditEvent::new(
            now,
            Actor::Device(handle),
            AuditAction::DeviceOtaDownload,
            target,
            Outcome::Success,
        ),
        InstallOutcome::Rejected | InstallOutcome::RolledBack => {
            let mut event =
                AuditEvent::new(now, Actor::Device(handle), action, target, Outcome::Failed);
            if let Some(reason) = request.reason {
                event = event.with_reason(reason);
            }
            event
        }
    };
    tx.append_audit(&event).await?;
    tx.commit().await?;
    state.metrics.ota_install(request.outcome.as_str());
    Ok(InstallReportResponse { recorded: true })
}
