//! Wire types of the Command API, shared by the server and the `enigm` CLI: the only place
//! where domain data becomes JSON. Request types reject unknown fields; responses carry
//! identifiers and categories, never secrets or content.

use enigm_types::{
    AdminId, ApprovalAction, ApprovalId, ApprovalKind, ApprovalState, AuditAction, AuditEventId,
    DeviceHandle, GuardedDeviceChange, Outcome, Permission, ReasonCategory, ReleaseId, Role,
    SessionId, Timestamp,
};
use enigm_types::{GroupName, PolicyId, PolicyKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub mod attestation;
pub mod devices;
pub mod eligibility;
pub mod network;
pub mod paths;
pub mod policies;
pub mod policy_bundles;
pub mod proofs;
pub mod proxy;
pub mod releases;
pub mod rollouts;
pub mod vpn;

pub use devices::{
    CheckInRequest, CommandAckRequest, CommandAckResponse, CommandView,
    CreateEnrollmentTokenRequest, DeviceCommandsView, DeviceListQuery, DeviceOrder, DeviceView,
    EnrollRequest, EnrollResponse, EnrollmentTokenCreated, FindingView, GateView, LifecycleChange,
    LifecycleRequest, LifecycleResponse, LifecycleView, SetupView, TrustView,
};

/// The largest page a list answers. A `limit` outside `1..=MAX_PAGE` is refused (400), not
/// clamped: a client that asks for more than it gets would take a short page for the end.
pub const MAX_PAGE: u32 = 1000;

/// `#[serde(deserialize_with)]` for an optional `limit`: refuses values outside `1..=MAX_PAGE`.
pub mod page_limit {
    use serde::{Deserialize as _, Deserializer, de::Error as _};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u32>, D::Error> {
        match Option::<u32>::deserialize(deserializer)? {
            Some(limit) if !(1..=super::MAX_PAGE).contains(&limit) => Err(D::Error::custom(
                format_args!("`limit` must be between 1 and {}", super::MAX_PAGE),
            )),
            limit => Ok(limit),
        }
    }
}

/// `#[serde(deserialize_with)]` for positions and sizes of the audit log in a query: at most
/// 2^63 - 1, the database's range and the OpenAPI document's `int64`. A larger number is refused
/// (400) instead of answered as if such a position could exist.
pub mod log_position {
    use serde::{Deserialize as _, Deserializer};

    fn check<E: serde::de::Error>(position: u64) -> Result<u64, E> {
        if i64::try_from(position).is_err() {
            return Err(E::custom("an audit log position must be below 2^63"));
        }
        Ok(position)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        check(u64::deserialize(deserializer)?)
    }

    pub fn optional<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
        Option::<u64>::deserialize(deserializer)?
            .map(check)
            .transpose()
    }
}

/// Header that carries the 6-digit critical-operation PIN on critical routes.
pub const PIN_HEADER: &str = "x-enigm-pin";

/// The one error body of the API: a stable machine-readable code and a safe message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// The current TOTP code, required when the account has a second factor.
    #[serde(default)]
    pub totp: Option<String>,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    /// The bearer token. Shown once; the server keeps only its digest.
    pub token: String,
    pub session: SessionView,
    pub account: AccountView,
}

impl std::fmt::Debug for LoginResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginResponse")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    pub id: AdminId,
    pub username: String,
    pub roles: Vec<Role>,
    pub disabled: bool,
    pub totp_enabled: bool,
    pub pin_set: bool,
    /// Critical operations are locked after 5 consecutive wrong PINs until an owner unlocks them.
    pub pin_locked: bool,
    /// The password was set by someone else (the bootstrap owner's, or `users create`): until
    /// it is changed (`enigm admin password change`), every route but the password change,
    /// whoami and logout answers 403 `password_change_required`.
    #[serde(default)]
    pub password_change_required: bool,
    /// The account's risk state was raised (spec A.6, A.7): five consecutive wrong PINs, or the
    /// duress PIN. Only a later correct PIN clears it. Shown to other administrators, not in the
    /// account's own view (whoami, login), so that a duress PIN is not given away to whoever
    /// holds the session.
    #[serde(default)]
    pub at_risk: bool,
    /// When the risk state was raised (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_raised_at: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// 3 to 64 of `a-z 0-9 . _ -`, starting with a letter.
    #[schema(pattern = r"^[a-z][a-z0-9._-]{2,63}$")]
    pub username: String,
    /// The initial password (12 to 256 characters, not only spaces, no control characters), to
    /// be handed to the new administrator.
    #[schema(
        min_length = 12,
        max_length = 256,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub password: String,
}

impl std::fmt::Debug for CreateUserRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateUserRequest")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// The PIN in force, required when one is set: a stolen session and a phished password
    /// must not be enough to take the account over.
    #[serde(default)]
    pub current_pin: Option<String>,
    pub new_password: String,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPinRequest {
    pub current_password: String,
    /// The PIN in force, required when one is set: a session and a password alone must not be
    /// enough to replace the PIN that guards critical operations.
    #[serde(default)]
    pub current_pin: Option<String>,
    /// Exactly 6 ASCII digits, not trivially guessable.
    pub pin: String,
}

/// Setting (or, with `duress_pin` null, removing) the optional duress PIN (spec A.7). Entered
/// instead of the PIN on a critical operation, it appears to succeed, does nothing, raises the
/// account's risk state and a Critical security event (`auth.duress-pin`).
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetDuressPinRequest {
    pub current_password: String,
    /// The PIN in force: a duress PIN needs one.
    pub current_pin: String,
    /// Exactly 6 ASCII digits, not trivially guessable, not the PIN; null removes it.
    pub duress_pin: Option<String>,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct TotpEnrollment {
    /// Base32 secret, shown once.
    pub secret: String,
    pub otpauth_uri: String,
}

/// Starting a TOTP enrollment: the session alone must not be enough to put a second factor
/// on the account (whoever holds a stolen token would lock its owner out).
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpEnrollRequest {
    pub current_password: String,
    /// The PIN in force, required when one is set.
    #[serde(default)]
    pub current_pin: Option<String>,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirmRequest {
    pub current_password: String,
    /// The current code of the authenticator app.
    pub code: String,
}

/// Removing the own TOTP: every credential the account has.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpRemoveRequest {
    pub current_password: String,
    pub current_pin: String,
    /// A current code of the TOTP being removed.
    pub code: String,
}

/// Asking for another administrator's TOTP to be removed (lost or seized second factor).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpResetRequest {
    /// Why, for the approvers: 1 to 1000 characters, not only spaces, no control characters
    /// but line breaks.
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub justification: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    pub id: SessionId,
    pub admin: AdminId,
    pub created_at: String,
    pub last_seen_at: String,
    /// When the absolute lifetime ends (6 hours after creation).
    pub expires_at: String,
    /// Whether this is the session making the request.
    pub current: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleGrantRequest {
    pub role: Role,
    /// Why, for the approvers: 1 to 1000 characters, not only spaces, no control characters
    /// but line breaks.
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub justification: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRuleChangeRequest {
    #[schema(minimum = 1, maximum = 5)]
    pub required_approvals: u8,
    #[schema(min_items = 1)]
    pub approver_roles: Vec<Role>,
    /// Why, for the approvers: 1 to 1000 characters, not only spaces, no control characters
    /// but line breaks.
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub justification: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalRuleView {
    pub kind: ApprovalKind,
    pub required_approvals: u8,
    pub approver_roles: Vec<Role>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalView {
    pub id: ApprovalId,
    pub kind: ApprovalKind,
    pub action: ApprovalAction,
    /// What the request would do, resolved for the people deciding it.
    pub subject: ApprovalSubject,
    pub state: ApprovalState,
    pub requester: AdminId,
    /// Why, for the approvers: 1 to 1000 characters, not only spaces, no control characters
    /// but line breaks.
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub justification: String,
    pub required_approvals: u8,
    pub approver_roles: Vec<Role>,
    pub approvals: Vec<AdminId>,
    pub rejected_by: Option<AdminId>,
    pub created_at: String,
    pub expires_at: String,
}

/// The full subject of an approval request, so that nobody approves blind: the release's
/// version, digest, models and channel; the user's name; the device and the change; the rule.
/// Never a secret or a raw hardware identifier (devices appear by their handle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ApprovalSubject {
    RoleGrant {
        admin: AdminId,
        /// Absent when the account no longer exists.
        username: Option<String>,
        role: Role,
    },
    ApprovalRuleChange {
        target_kind: ApprovalKind,
        required_approvals: u8,
        approver_roles: Vec<Role>,
    },
    DeviceLifecycle {
        device: DeviceHandle,
        change: GuardedDeviceChange,
    },
    ReleaseSigning {
        release: ReleaseId,
        /// Absent only when the release is no longer stored.
        details: Option<ReleaseSubject>,
    },
    TotpReset {
        admin: AdminId,
        /// Absent when the account no longer exists.
        username: Option<String>,
    },
    /// A proposed policy version: what is approved is exactly the content with this digest
    /// (`enigm policy diff` shows it against the latest version once numbered).
    PolicyVersionCreate {
        policy: PolicyId,
        /// Absent when the policy no longer exists.
        name: Option<String>,
        policy_kind: PolicyKind,
        digest: String,
        /// The version it would follow (absent for a first version).
        latest_version: Option<u32>,
    },
    PolicyAssign {
        policy: PolicyId,
        name: Option<String>,
        policy_kind: PolicyKind,
        version: u32,
        groups: Vec<GroupName>,
    },
    PolicyUnassign {
        policy: PolicyId,
        name: Option<String>,
        policy_kind: PolicyKind,
        groups: Vec<GroupName>,
    },
    /// A rollout step that widens a release's reach: promotion to stable, or the start of a
    /// security rollout (every eligible device at once).
    ReleaseStage {
        release: ReleaseId,
        to: enigm_types::ReleaseStage,
        /// Absent only when the release is no longer stored.
        release_version: Option<String>,
        /// The plan's model, when the release has a plan.
        model: Option<enigm_types::RolloutModel>,
    },
}

/// The release an approval would let Command sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseSubject {
    pub target_name: String,
    /// `os-image`, `policy-bundle` or `configuration-bundle`.
    pub kind: String,
    pub release_version: String,
    pub rollback_index: u64,
    pub channel: String,
    pub compatible_models: Vec<String>,
    /// Payload length in bytes.
    pub length: u64,
    /// Payload SHA-256, lower-case hex.
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ApprovalListQuery {
    #[serde(default)]
    pub state: Option<ApprovalState>,
    /// Only requests opened at or after this time (RFC 3339).
    #[serde(default, deserialize_with = "since::deserialize")]
    #[param(value_type = Option<String>, format = DateTime)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub since: Option<String>,
}

/// The order of a listing that can be read either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ListOrder {
    Oldest,
    Newest,
}

/// `#[serde(deserialize_with)]` for an optional `since`: refuses what is not an RFC 3339
/// date-time, so that a typo is a 400 and not a silently empty or unfiltered list.
pub mod since {
    use serde::{Deserialize as _, Deserializer, de::Error as _};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<String>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            Some(text) if super::Timestamp::parse_rfc3339(&text).is_none() => {
                Err(D::Error::custom(
                    "`since` must be an RFC 3339 date-time, e.g. 2026-11-22T04:25:00Z",
                ))
            }
            other => Ok(other),
        }
    }

    /// The instant of a `since` the query accepted.
    pub fn parse(since: Option<&str>) -> Option<super::Timestamp> {
        since.and_then(super::Timestamp::parse_rfc3339)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditListQuery {
    /// Only events after this sequence number (exclusive), for paging.
    #[serde(default)]
    pub after: Option<i64>,
    /// Only events before this sequence number (exclusive): the cursor of `order=newest`.
    #[serde(default)]
    pub before: Option<i64>,
    /// At most this many events (1 to 1000, default 100).
    #[serde(default, deserialize_with = "page_limit::deserialize")]
    #[param(minimum = 1, maximum = 1000)]
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `oldest` first (the default, paged with `after`) or `newest` first (paged with `before`).
    #[serde(default)]
    pub order: Option<ListOrder>,
    /// Only events at or after this time (RFC 3339, e.g. `2026-11-22T04:25:00Z`).
    #[serde(default, deserialize_with = "since::deserialize")]
    #[param(value_type = Option<String>, format = DateTime)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub since: Option<String>,
    #[serde(default)]
    pub actor: Option<AdminId>,
    #[serde(default)]
    pub action: Option<AuditAction>,
    #[serde(default)]
    pub outcome: Option<Outcome>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEventView {
    /// Position in the log, strictly increasing.
    pub seq: i64,
    pub id: AuditEventId,
    pub time: String,
    /// `admin:<id>`, `anonymous` or `system`.
    pub actor: String,
    pub action: AuditAction,
    pub target_category: String,
    pub target_ref: Option<String>,
    pub outcome: Outcome,
    pub change_ref: Option<ApprovalId>,
    pub reason: Option<ReasonCategory>,
    /// How many requests this one event stands for: set on the counted events of anonymous
    /// requests (target category `client-network`), absent on every other event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<AuditEventView>,
    /// Oldest first: pass as `after` to get the next page; absent at the end.
    pub next_after: Option<i64>,
    /// Newest first: pass as `before` to get the next (older) page; absent at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

/// The latest signed tree head of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditCheckpointView {
    pub tree_size: u64,
    /// Standard base64 of the 32-byte root hash.
    pub root: String,
    /// The C2SP signed note (`tlog-checkpoint` body and Ed25519 signature lines), exactly as
    /// signed. Verify it with the log's key before trusting `tree_size` or `root`.
    pub note: String,
    /// RFC 3339.
    pub published_at: String,
}

/// The public key audit checkpoints are signed with, as a C2SP signed-note verifier key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditLogKeyView {
    pub verifier_key: String,
}

/// One leaf of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditLeafView {
    pub index: u64,
    /// Standard base64 of the RFC 9162 leaf hash, `SHA-256(0x00 || body)`.
    pub leaf_hash: String,
    /// The exact bytes the leaf commits to (the event's canonical JSON); absent once purged.
    pub body: Option<String>,
    /// A recorded retention purge removed the body. A body absent without this is tampering.
    pub purged: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditLeavesQuery {
    /// The first leaf index, at most the latest signed checkpoint's tree size (beyond it: 400
    /// `invalid_range`; equal to it: an empty page).
    #[serde(deserialize_with = "log_position::deserialize")]
    pub start: u64,
    /// At most this many leaves (1 to 1000, default 1000).
    #[serde(default, deserialize_with = "page_limit::deserialize")]
    #[param(minimum = 1, maximum = 1000)]
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditLeavesPage {
    /// Leaves from `start`, in order, within the tree the latest signed checkpoint covers.
    pub leaves: Vec<AuditLeafView>,
    /// The tree size of the latest signed checkpoint (0 before the first).
    pub tree_size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditProofQuery {
    /// The tree size to prove against (a checkpoint's); default: the latest checkpoint's.
    #[serde(default, deserialize_with = "log_position::optional")]
    pub tree_size: Option<u64>,
}

/// A leaf with its RFC 9162 inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditInclusionView {
    pub leaf: AuditLeafView,
    pub tree_size: u64,
    /// The audit path, deepest sibling first, each standard base64.
    pub path: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditConsistencyQuery {
    #[serde(deserialize_with = "log_position::deserialize")]
    pub first: u64,
    #[serde(deserialize_with = "log_position::deserialize")]
    pub second: u64,
}

/// The RFC 9162 proof that the tree of `first` leaves is a prefix of the tree of `second`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditConsistencyView {
    pub first: u64,
    pub second: u64,
    pub path: Vec<String>,
}

/// Retention of audit event bodies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditRetentionView {
    /// While on, no body is purged whatever its age.
    pub legal_hold: bool,
    /// RFC 3339.
    pub legal_hold_changed_at: Option<String>,
    pub retention_days: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LegalHoldRequest {
    pub legal_hold: bool,
}

/// One route of the API and the permission it needs: published so that clients and auditors
/// can see the authorization model.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RouteView {
    pub method: String,
    pub path: String,
    pub permission: Option<Permission>,
    pub critical: bool,
}
