//! `enigm admin devices`: the device inventory and one device's detail (findings and production
//! gates). Devices appear only under their handle.

use clap::Subcommand;
use enigm_api::eligibility::{EligibilityDecision, EligibilityRequest};
use enigm_api::{
    DeviceListQuery, DeviceOrder, DeviceView, LifecycleChange, LifecycleRequest, LifecycleResponse,
    paths,
};
use enigm_trust::{DeviceState, ProtectedAction, ResourceCategory, TrustState};
use enigm_types::DeviceHandle;

use super::Ctx;
use crate::output;
use crate::parse;
use crate::parse::{device_handle as parse_handle, trust_state as parse_trust_state};

#[derive(Debug, Subcommand)]
pub(crate) enum DevicesCommand {
    /// List devices, most recently seen first, filtered by lifecycle state, trust state, group
    /// and last check-in.
    List {
        /// Lifecycle state.
        #[arg(long, value_parser = crate::parse::device_state())]
        state: Option<DeviceState>,
        /// Trust state: `PROTECTED`, `REVIEW_REQUIRED` or `INACTIVE`.
        #[arg(long, value_parser = parse_trust_state)]
        trust_state: Option<TrustState>,
        /// Device group.
        #[arg(long)]
        group: Option<String>,
        /// Only devices seen since this time: RFC 3339 (2026-11-22T04:25:00Z) or a duration
        /// back from now (90s, 10m, 2h, 7d).
        #[arg(long, value_parser = parse::since, value_name = "TIME|DURATION")]
        since: Option<String>,
        /// At most this many devices (1 to 1000; the server's default is 100).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: Option<u32>,
        /// Sort by handle instead, paging with --after (the handle printed at the end).
        #[arg(long)]
        by_handle: bool,
        /// With --by-handle: only devices whose handle sorts after this one.
        #[arg(long, value_parser = parse_handle, requires = "by_handle", value_name = "HANDLE")]
        after: Option<DeviceHandle>,
    },
    /// Show one device: trust state, findings and production gates.
    Show {
        /// The device handle (`dev_…`).
        #[arg(value_parser = parse_handle)]
        handle: DeviceHandle,
    },
    /// Change a device's lifecycle (needs the PIN): `restrict` and `replace` now (`replace`
    /// prints the successor's one-use enrollment token); `retire` is issued to the device, done
    /// when it acknowledges; `revoke`, `reactivate` and `wipe` open an approval request that
    /// another administrator decides.
    Lifecycle {
        /// The device handle (`dev_…`).
        #[arg(value_parser = parse_handle)]
        handle: DeviceHandle,
        /// `restrict`, `reactivate`, `revoke`, `retire`, `wipe` or `replace`.
        #[arg(value_parser = parse_change)]
        action: LifecycleChange,
        /// Why (recorded with the change or the approval request).
        #[arg(long)]
        justification: String,
    },
    /// Ask whether a device may do a protected action now; exits 1 when denied.
    Decide {
        /// The device handle (`dev_…`).
        #[arg(value_parser = parse_handle)]
        handle: DeviceHandle,
        /// `secure-messaging`, `secure-call`, `ota`, `network` or `enroll`.
        #[arg(long, value_parser = parse_action)]
        action: ProtectedAction,
        /// What the action is on: `channel`, `os-image`, `policy-bundle`, `network` or
        /// `enrollment` (default: the action's usual one).
        #[arg(long, value_parser = parse_resource)]
        resource: Option<ResourceCategory>,
        /// Whether the user's session is valid (required for messaging and calls).
        #[arg(long)]
        session_valid: Option<bool>,
    },
}

pub(crate) async fn run(ctx: &Ctx, command: DevicesCommand) -> anyhow::Result<()> {
    match command {
        DevicesCommand::List {
            state,
            trust_state,
            group,
            since,
            limit,
            by_handle,
            after,
        } => {
            let query = DeviceListQuery {
                state,
                trust_state,
                group,
                after,
                limit,
                order: Some(if by_handle {
                    DeviceOrder::Handle
                } else {
                    DeviceOrder::LastSeen
                }),
                since,
            };
            let reply = ctx
                .client
                .get_query::<_, Vec<DeviceView>>(paths::DEVICES, &query)
                .await?;
            // Only the handle order pages; a full page there may have a next one.
            let page_full =
                usize::try_from(limit.unwrap_or(100)).is_ok_and(|limit| reply.value.len() == limit);
            let next = (by_handle && page_full)
                .then(|| reply.value.last().map(|device| device.handle.to_string()))
                .flatten();
            if ctx.json() {
                return output::print_json_list(&reply.raw, next);
            }
            output::print_list(
                &output::device_table(&reply.value),
                reply.value.len(),
                "no devices",
            );
            if let Some(next) = next {
                println!("more devices: pass --by-handle --after {next}");
            } else if page_full {
                println!("more devices may be seen earlier: narrow with --since or raise --limit");
            }
            Ok(())
        }
        DevicesCommand::Lifecycle {
            handle,
            action,
            justification,
        } => {
            let pin = ctx.pin()?;
            let request = LifecycleRequest {
                action,
                justification,
            };
            let reply = ctx
                .client
                .post::<_, LifecycleResponse>(
                    &paths::fill(paths::DEVICE_LIFECYCLE, &[&handle.to_string()]),
                    &request,
                    Some(&pin),
                )
                .await?;
            if ctx.json() {
                return output::print_json(&reply.raw);
            }
            let reply = reply.value;
            if let Some(approval) = &reply.approval {
                println!(
                    "approval request {} opened: another administrator must approve it \
                     (`enigm admin approvals approve {}`)",
                    approval.id, approval.id
                );
                return Ok(());
            }
            match reply.pending_command {
                Some(command) => println!(
                    "device {handle}: {command} issued; the device is {} until it acknowledges \
                     (then {})",
                    reply.state, reply.requested_state
                ),
                None => println!("device {handle} is now {}", reply.state),
            }
            if let Some(token) = &reply.enrollment_token {
                println!(
                    "enrollment token for the successor (one use, group {}, expires {}; shown once):",
                    output::clean(&token.group),
                    output::clean(&token.expires_at)
                );
                println!("{}", token.token);
            }
            Ok(())
        }
        DevicesCommand::Decide {
            handle,
            action,
            resource,
            session_valid,
        } => {
            let request = EligibilityRequest {
                device: handle,
                action,
                resource,
                session_valid,
            };
            let reply = ctx
                .client
                .post::<_, EligibilityDecision>(paths::ELIGIBILITY, &request, None)
                .await?;
            if ctx.json() {
                output::print_json(&reply.raw)?;
            }
            match reply.value {
                EligibilityDecision::Allow => {
                    if !ctx.json() {
                        println!("allow");
                    }
                    Ok(())
                }
                EligibilityDecision::Deny(reason) => {
                    let name = serde_json::to_value(reason)?;
                    let name = name.as_str().unwrap_or("denied");
                    anyhow::bail!("deny: {name} ({})", deny_explanation(reason))
                }
            }
        }
        DevicesCommand::Show { handle } => {
            let reply = ctx
                .client
                .get::<DeviceView>(&paths::fill(paths::DEVICE, &[&handle.to_string()]))
                .await?;
            if ctx.json() {
                return output::print_json(&reply.raw);
            }
            let device = reply.value;
            output::print_table(&output::device_detail(&device));
            if !device.policies.is_empty() {
                output::print_table(&output::device_policy_table(&device.policies));
            }
            if let Some(bundle) = &device.policy_bundle {
                let number =
                    |n: Option<u64>| n.map_or_else(|| "none".to_owned(), |n| n.to_string());
                println!(
                    "Policy bundle: enforces {}, group's newest {}",
                    number(bundle.enforced),
                    number(bundle.published)
                );
            }
            output::print_list(
                &output::finding_table(&device.trust.findings),
                device.trust.findings.len(),
                "no findings",
            );
            output::print_list(
                &output::gate_table(&device.production_gates),
                device.production_gates.len(),
                "no production gates",
            );
            Ok(())
        }
    }
}

fn parse_change(text: &str) -> Result<LifecycleChange, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|_| {
        format!(
            "unknown lifecycle action `{text}` \
             (restrict, reactivate, revoke, retire, wipe or replace)"
        )
    })
}

fn parse_action(text: &str) -> Result<ProtectedAction, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|_| {
        format!("unknown action `{text}` (secure-messaging, secure-call, ota, network or enroll)")
    })
}

fn parse_resource(text: &str) -> Result<ResourceCategory, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|_| {
        format!(
            "unknown resource `{text}` (channel, os-image, policy-bundle, network or enrollment)"
        )
    })
}

/// What a denial means, in a few words: the input that was missing or failed.
fn deny_explanation(reason: enigm_api::eligibility::DenyReason) -> &'static str {
    use enigm_api::eligibility::DenyReason as R;
    match reason {
        R::MissingDevice => "Command has no record of this device",
        R::MissingPolicy => "the device's trust policy cannot be read",
        R::MissingDeviceState => "the device's lifecycle state is unknown",
        R::MissingTrustState => "the device has no trust evaluation",
        R::MissingEvaluation => "the device's trust evaluation has no time",
        R::MissingAttestation => "no attestation result on record, and this action needs one",
        R::MissingSession => "the user's session was not stated (--session-valid)",
        R::MissingSetup => "the device's setup baseline is unknown",
        R::DeviceNotActive => {
            "the device is not active: not enrolled, replaced, retired or leaving"
        }
        R::DeviceRevoked => "the device is revoked",
        R::DeviceRestricted => "a restricted device gets no messaging or calls",
        R::TrustInactive => "the device's trust state is INACTIVE",
        R::TrustReviewRequired => "REVIEW_REQUIRED is not trusted for messaging and calls",
        R::PostureStale => "the device's trust evaluation is too old (or from the future)",
        R::AttestationNotAffirming => "the device's attestation does not affirm",
        R::SessionInvalid => "the user's session is not valid",
        R::AlreadyEnrolled => "the device is already enrolled",
        R::MissingActor => "nobody was named as asking",
        R::MissingResource => "the decision was not told what the action is on",
        R::MissingIntegrity => {
            "Command cannot tell whether the device's report agrees with its attestation"
        }
        R::ActorNotPermitted => "only the device itself may make this request",
        R::ResourceMismatch => "the action is not on that kind of resource (--resource)",
        R::IntegrityContradicted => {
            "the device's attestation contradicts what it reports (a source-contradiction finding)"
        }
        R::SetupIncomplete => {
            "the device is not ready: a required setup step (strong PIN, terms, network \
             readiness) is not reported complete"
        }
    }
}
