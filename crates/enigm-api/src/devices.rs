//! Wire types of devices: enrollment tokens, the device-side enrollment and check-in bodies, and
//! the Command views of devices. Devices appear only under their handle; no view carries a key,
//! a hardware identifier, a raw report or a score.

use enigm_trust::{
    DeviceCommand, DeviceState, Evaluation, Finding, FindingKind, LauncherSummary, Severity,
    SignalKind, SignalReport, SignalSource, TrustPolicy, TrustState,
};
use enigm_types::{DeviceHandle, EnrollmentTokenId, SetupStep};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Bounds of an enrollment token's uses and lifetime.
/// A fleet rollout (or `enigm simulate`) enrolls many devices with one token.
pub const MAX_TOKEN_USES: u32 = 100_000;
pub const MAX_TOKEN_MINUTES: u32 = 7 * 24 * 60;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnrollmentTokenRequest {
    /// The device group enrolled devices join (1 to 64 of `a-z 0-9 - _ .`).
    #[schema(pattern = r"^[a-z0-9._-]{1,64}$")]
    pub group: String,
    /// The trust policy of the enrolled devices; the baseline policy when absent.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub policy: Option<TrustPolicy>,
    /// How many devices may enroll with the token (1 to 100000, default 1).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100_000)]
    pub uses: Option<u32>,
    /// Minutes until the token expires (1 to 10080, default 60).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10_080)]
    pub expires_in_minutes: Option<u32>,
    /// Whether devices may opt in to managed-device mode with this token.
    #[serde(default)]
    pub managed_allowed: bool,
    /// The attestation policy of the enrolled devices (accepted security levels, lock, boot
    /// keys, patch levels, where attestation is required); the default policy when absent.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub attestation_policy: Option<crate::attestation::AttestationPolicy>,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrollmentTokenCreated {
    pub id: EnrollmentTokenId,
    /// The token. Shown once; the server keeps only its digest.
    pub token: String,
    pub group: String,
    pub uses: u32,
    /// RFC 3339.
    pub expires_at: String,
    pub managed_allowed: bool,
}

impl std::fmt::Debug for EnrollmentTokenCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollmentTokenCreated")
            .field("id", &self.id)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// The body of a device's enrollment, signed with its device key. There is deliberately no
/// field for a serial number, IMEI, MAC or any other hardware identifier: a body that carries
/// one is refused.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    pub enrollment_token: String,
    /// The device's first signal report.
    #[schema(value_type = Object)]
    pub report: SignalReport,
    /// The device user's explicit consent to managed-device mode.
    pub managed_opt_in: bool,
    /// The device user's explicit consent to remote wipe.
    pub wipe_opt_in: bool,
    /// Remote-attestation evidence answering an `enrollment` challenge; required when the
    /// token's attestation policy says so.
    #[serde(default)]
    pub attestation: Option<crate::attestation::AttestationEvidence>,
    /// The required setup steps the device has completed (strong PIN, terms, network
    /// readiness). A step not listed is not done: the device is not "ready" and gets no
    /// eligibility until a later check-in reports it.
    #[serde(default)]
    pub setup: Vec<SetupStep>,
}

impl std::fmt::Debug for EnrollRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollRequest")
            .field("managed_opt_in", &self.managed_opt_in)
            .field("wipe_opt_in", &self.wipe_opt_in)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrollResponse {
    pub handle: DeviceHandle,
    pub state: DeviceState,
    pub trust: TrustView,
}

/// The body of a check-in, signed with the device key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckInRequest {
    #[schema(value_type = Object)]
    pub report: SignalReport,
    /// The required setup steps the device has completed; see [`EnrollRequest::setup`].
    #[serde(default)]
    pub setup: Vec<SetupStep>,
    /// The sequence of the policy bundle the agent enforces (absent: none, the baseline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_bundle: Option<u64>,
}

/// One finding of the Trust State Engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FindingView {
    pub kind: FindingKind,
    pub severity: Severity,
    pub signal: Option<SignalKind>,
    pub critical: bool,
    /// Where the value came from (`attested`, `measured`, `declared`, or `engine` for what the
    /// engine itself found); for a contradiction, `attested`.
    pub source: SignalSource,
    /// For a `source-contradiction`: the source of the reported value the attestation
    /// contradicts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_source: Option<SignalSource>,
    /// For a `source-below-minimum`: the minimum source the policy requires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_source: Option<SignalSource>,
    pub description: String,
    pub recommendation: String,
}

impl From<&Finding> for FindingView {
    fn from(finding: &Finding) -> Self {
        FindingView {
            kind: finding.kind,
            severity: finding.severity,
            signal: finding.signal,
            critical: finding.critical,
            source: finding.source,
            reported_source: finding.reported_source,
            required_source: finding.required_source,
            description: finding.description().to_owned(),
            recommendation: finding.recommendation().to_owned(),
        }
    }
}

/// A device's trust state with its findings: what the Trust Security Center shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TrustView {
    pub state: TrustState,
    pub launcher_summary: LauncherSummary,
    pub findings: Vec<FindingView>,
    /// RFC 3339.
    pub evaluated_at: String,
    /// The TUF target of the device group's current policy bundle
    /// (`policy-bundles/<group>/<sequence>.json`), in check-in and enrollment answers; absent
    /// when the group has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_bundle: Option<String>,
}

impl From<&Evaluation> for TrustView {
    fn from(evaluation: &Evaluation) -> Self {
        TrustView {
            state: evaluation.state,
            launcher_summary: evaluation.launcher_summary(),
            findings: evaluation.findings.iter().map(FindingView::from).collect(),
            evaluated_at: evaluation.evaluated_at.to_rfc3339(),
            policy_bundle: None,
        }
    }
}

/// A production gate, its result and why, as the store keeps it (`enigm_types::GateStatus`).
pub use enigm_types::GateStatus as GateView;

/// A device as Command shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceView {
    pub handle: DeviceHandle,
    pub state: DeviceState,
    pub group: String,
    pub managed_opt_in: bool,
    pub wipe_opt_in: bool,
    /// RFC 3339.
    pub enrolled_at: String,
    /// RFC 3339.
    pub last_seen_at: String,
    pub trust: TrustView,
    pub production_gates: Vec<GateView>,
    /// What an operator asked for beyond `state` (the state the device confirmed), and
    /// replacements.
    #[serde(default)]
    pub lifecycle: LifecycleView,
    /// The device's last attestation (absent when it never sent evidence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<crate::attestation::AttestationView>,
    /// The policy of each kind the device is evaluated under and where it comes from (group
    /// assignment, enrollment, baseline). Empty in lists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<crate::policies::DevicePolicyView>,
    /// The setup baseline: whether the device is "ready".
    pub setup: SetupView,
    /// The policy bundle the device reports it enforces and its group's newest (absent in
    /// lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_bundle: Option<DeviceBundleView>,
}

/// Which policy bundle a device enforces against its group's newest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceBundleView {
    /// The sequence the device last reported it enforces (absent: none reported).
    pub enforced: Option<u64>,
    /// The sequence of the group's newest published bundle (absent: none yet).
    pub published: Option<u64>,
}

/// The setup baseline of a device (enigm-docs §20 C.27): it is "ready" only when every required
/// step is reported complete; until then it gets no eligibility.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SetupView {
    pub ready: bool,
    /// The required steps not reported complete, in the setup wizard's order.
    pub missing: Vec<SetupStep>,
}

/// A device's lifecycle beyond its confirmed state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LifecycleView {
    /// The state an operator asked for, while the device has not confirmed it yet (absent when
    /// the two agree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_state: Option<DeviceState>,
    /// The command waiting for the device's acknowledgement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_command: Option<CommandView>,
    /// The last command the device acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_command: Option<CommandView>,
    /// The device that enrolled as this one's replacement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<DeviceHandle>,
    /// The device this one replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<DeviceHandle>,
}

/// A two-phase command and when it was issued (pending) or acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommandView {
    pub command: DeviceCommand,
    /// RFC 3339.
    pub at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeviceListQuery {
    #[serde(default)]
    pub state: Option<DeviceState>,
    #[serde(default)]
    pub trust_state: Option<TrustState>,
    /// Only devices of this group (1 to 64 of `a-z 0-9 - _ .`).
    #[serde(default)]
    #[param(pattern = r"^[a-z0-9._-]{1,64}$")]
    #[schema(pattern = r"^[a-z0-9._-]{1,64}$")]
    pub group: Option<String>,
    /// Only devices whose handle sorts after this one, for paging.
    #[serde(default)]
    pub after: Option<DeviceHandle>,
    /// At most this many devices (1 to 1000, default 100).
    #[serde(default, deserialize_with = "crate::page_limit::deserialize")]
    #[param(minimum = 1, maximum = 1000)]
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `handle` (the default, paged with `after`) or `last-seen`: most recently seen first
    /// (one page of `limit`; `after` is refused with it).
    #[serde(default)]
    pub order: Option<DeviceOrder>,
    /// Only devices seen at or after this time (RFC 3339).
    #[serde(default, deserialize_with = "crate::since::deserialize")]
    #[param(value_type = Option<String>, format = DateTime)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub since: Option<String>,
}

/// The order of the device list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceOrder {
    Handle,
    LastSeen,
}

/// A lifecycle change an operator asks for. `restrict` and `replace` take effect at once;
/// `retire` is issued to the device at once; `revoke`, `reactivate` and `wipe` open a
/// multi-admin approval request and take effect (or are issued) when it is approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LifecycleChange {
    Restrict,
    Revoke,
    Reactivate,
    /// Two-phase: issued now, done when the device acknowledges.
    Retire,
    /// Two-phase, through an approval, and only with the device's wipe opt-in.
    Wipe,
    /// Marks the device replaced and answers a one-use enrollment token for its successor.
    Replace,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LifecycleRequest {
    pub action: LifecycleChange,
    /// Why (recorded with the approval request; required).
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub justification: String,
}

/// The device's lifecycle state after the request, and the approval request when one was
/// opened (the change then waits for it).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LifecycleResponse {
    /// The state the device confirmed.
    pub state: DeviceState,
    /// The state an operator asked for (differs from `state` while a command waits).
    pub requested_state: DeviceState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_command: Option<DeviceCommand>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<crate::ApprovalView>,
    /// For `replace`: the one-use enrollment token of the successor (shown once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_token: Option<EnrollmentTokenCreated>,
}

/// What Command asks of the device (answer of the signed `GET /api/v1/device/commands`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceCommandsView {
    /// The command to carry out and acknowledge, if any.
    pub pending: Option<DeviceCommand>,
}

/// The device's acknowledgement of a command it carried out (signed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandAckRequest {
    pub command: DeviceCommand,
}

/// The device's confirmed state after its acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommandAckResponse {
    pub state: DeviceState,
}
