//! Typed audit events. Every field is an identifier or an enumerated category: there is no free
//! text, so an event can never carry message content, credentials, keys or raw hardware
//! identifiers (enigm-docs §2.1, §20 item 49).

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::approval::ApprovalKind;
use crate::clock::Timestamp;
use crate::device::{DeviceHandle, SecurityLayers};
use crate::ids::{
    AdminId, ApprovalId, AuditEventId, EnrollmentTokenId, PolicyId, ReleaseId, SessionId,
};
use crate::network::{NetworkRoute, NetworkRuleId};
use crate::permission::Permission;
use crate::policy::{GroupName, PolicyKind};
use crate::role::Role;

/// One security-relevant event: who did what to which kind of thing, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub time: Timestamp,
    pub actor: Actor,
    pub action: AuditAction,
    pub target: AuditTarget,
    pub outcome: Outcome,
    /// The approval request that authorised or produced this change, if any.
    pub change_ref: Option<ApprovalId>,
    pub reason: Option<ReasonCategory>,
}

impl AuditEvent {
    pub fn new(
        time: Timestamp,
        actor: Actor,
        action: AuditAction,
        target: AuditTarget,
        outcome: Outcome,
    ) -> Self {
        AuditEvent {
            // Time-ordered (UUIDv7): the unique index on event ids then grows at its right
            // edge instead of taking random inserts all over, which made the index the most
            // expensive part of an append (2x slower on SQLite with v4 ids).
            id: AuditEventId::from_uuid(uuid::Uuid::now_v7()),
            time,
            actor,
            action,
            target,
            outcome,
            change_ref: None,
            reason: None,
        }
    }

    pub fn with_reason(mut self, reason: ReasonCategory) -> Self {
        self.reason = Some(reason);
        self
    }

    pub fn with_change_ref(mut self, approval: ApprovalId) -> Self {
        self.change_ref = Some(approval);
        self
    }

    /// The one canonical encoding of an event (compact JSON, fields in declaration order). The
    /// tamper-evident log commits to these bytes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // Serialising plain enums, ids and integers cannot fail; an empty vector would be caught
        // by every verifier as a mismatch rather than silently accepted.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Who acted. Administrators are named by their opaque id, never by username; devices by their
/// handle, never by a key or hardware identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "kebab-case")]
pub enum Actor {
    Admin(AdminId),
    /// An unauthenticated caller (failed login, missing token). The attempted username is
    /// deliberately not recorded: people type passwords into username fields.
    Anonymous,
    /// Command itself (bootstrap, expiry).
    System,
    /// A device whose signed request verified (the handle derived from its key).
    Device(DeviceHandle),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Admin(id) => write!(f, "admin:{id}"),
            Actor::Anonymous => f.write_str("anonymous"),
            Actor::System => f.write_str("system"),
            Actor::Device(handle) => write!(f, "device:{handle}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ActionCategory {
    Authentication,
    Authorization,
    Administration,
    Approval,
    AuditAccess,
    Device,
    Release,
    Policy,
}

macro_rules! audit_actions {
    ($($variant:ident => $name:literal, $category:ident;)*) => {
        /// What was attempted. The dotted name is stable and appears in the API and the log.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        pub enum AuditAction {
            // utoipa does not see serde's rename through a macro's literal, so the schema is told
            // the same spelling itself.
            $(#[serde(rename = $name)] #[schema(rename = $name)] $variant,)*
        }

        impl AuditAction {
            pub const ALL: &'static [AuditAction] = &[$(AuditAction::$variant,)*];

            pub const fn as_str(self) -> &'static str {
                match self { $(AuditAction::$variant => $name,)* }
            }

            pub const fn category(self) -> ActionCategory {
                match self { $(AuditAction::$variant => ActionCategory::$category,)* }
            }
        }
    };
}

audit_actions! {
    AuthLogin => "auth.login", Authentication;
    AuthLogout => "auth.logout", Authentication;
    AuthSession => "auth.session", Authentication;
    AuthPassword => "auth.password-change", Authentication;
    AuthPinSet => "auth.pin-set", Authentication;
    AuthPinCheck => "auth.pin-check", Authentication;
    // The account set or removed its duress PIN.
    AuthDuressPinSet => "auth.duress-pin-set", Authentication;
    // The duress PIN was entered: the request appeared to succeed and did nothing (a Critical
    // security event; spec A.7).
    AuthDuressPin => "auth.duress-pin", Authentication;
    // The account's risk state was raised (fifth consecutive wrong PIN, duress PIN) or cleared
    // (a later correct PIN); spec A.6.
    AuthRiskRaise => "auth.risk-raise", Authentication;
    AuthRiskClear => "auth.risk-clear", Authentication;
    AuthTotpEnroll => "auth.totp-enroll", Authentication;
    AuthTotpConfirm => "auth.totp-confirm", Authentication;
    // The account's own TOTP removed with its password, PIN and a current code.
    AuthTotpRemove => "auth.totp-remove", Authentication;
    Authorize => "authz.decision", Authorization;
    BootstrapOwner => "admin.bootstrap-owner", Administration;
    UserCreate => "admin.user-create", Administration;
    UserDisable => "admin.user-disable", Administration;
    UserEnable => "admin.user-enable", Administration;
    UserPinUnlock => "admin.user-pin-unlock", Administration;
    // Another administrator's TOTP removed by an approved `totp-reset` request.
    UserTotpReset => "admin.user-totp-reset", Administration;
    RoleGrant => "admin.role-grant", Administration;
    RoleRevoke => "admin.role-revoke", Administration;
    SessionClose => "admin.session-close", Administration;
    ApprovalRuleChange => "admin.approval-rule-change", Administration;
    ApprovalRequest => "approval.request", Approval;
    ApprovalApprove => "approval.approve", Approval;
    ApprovalReject => "approval.reject", Approval;
    ApprovalExecute => "approval.execute", Approval;
    AuditRead => "audit.read", AuditAccess;
    AuditPurge => "audit.purge", AuditAccess;
    AuditLegalHold => "audit.legal-hold", AuditAccess;
    EnrollmentTokenCreate => "device.enrollment-token-create", Device;
    DeviceEnroll => "device.enroll", Device;
    DeviceCheckIn => "device.check-in", Device;
    DeviceAttestationChallenge => "device.attestation-challenge", Device;
    DeviceAttest => "device.attest", Device;
    DeviceTrustChange => "device.trust-change", Device;
    DeviceEligibility => "device.eligibility", Device;
    // A network routing decision Command made for a device (the route's category and the rule,
    // never the flow's destination).
    DeviceNetworkDecision => "device.network-decision", Device;
    // A device asked to switch its VPN location (or to leave the VPN): the request's sequence
    // and outcome, never the location or gateway it chose.
    DeviceVpnSwitch => "device.vpn-switch", Device;
    // A VPN gateway registered, or its health, load or capacity changed.
    VpnGatewayCreate => "network.vpn-gateway-create", Policy;
    VpnGatewayUpdate => "network.vpn-gateway-update", Policy;
    // An Enigm Proxy credential issued to a device, or refused with the reason (never the
    // credential).
    DeviceProxyCredential => "device.proxy-credential", Device;
    DeviceRestrict => "device.restrict", Device;
    DeviceRevoke => "device.revoke", Device;
    DeviceReactivate => "device.reactivate", Device;
    DeviceRetire => "device.retire", Device;
    DeviceWipe => "device.wipe", Device;
    DeviceReplace => "device.replace", Device;
    DeviceCommandFetch => "device.command-fetch", Device;
    DeviceCommandAck => "device.command-ack", Device;
    DeviceRetireAck => "device.retire-ack", Device;
    DeviceWipeAck => "device.wipe-ack", Device;
    // A device's report of an OTA install: installed, rejected or rolled back, with a reason.
    DeviceOtaInstall => "device.ota-install", Device;
    // A device's word that it accepted an offer and is fetching the artifact (not an outcome:
    // the install report follows).
    DeviceOtaDownload => "device.ota-download", Device;
    // The director's answer to a device's update request: an offer (success), or none with
    // the reason (denied); the target is the release considered, never the device's claims.
    DeviceOtaOffer => "device.ota-offer", Device;
    ReleaseCreate => "release.create", Release;
    ReleaseArtifactUpload => "release.artifact-upload", Release;
    // Signatures handed in for a release: accepted, or refused with the verification failure.
    ReleaseSign => "release.sign", Release;
    ReleasePublish => "release.publish", Release;
    // A release's rollout plan set or changed (the model and wave shares, never device lists).
    ReleaseRolloutPlan => "release.rollout-plan", Release;
    // A release moved to the next stage (validated, controlled rollout, stable), or refused.
    ReleaseStageChange => "release.stage", Release;
    // The next wave of a rollout opened.
    ReleaseWaveOpen => "release.wave-open", Release;
    ReleaseRolloutPause => "release.rollout-pause", Release;
    ReleaseRolloutResume => "release.rollout-resume", Release;
    // Command paused a rollout itself: the current wave's failures passed the plan's threshold.
    ReleaseRolloutHalt => "release.rollout-halt", Release;
    // A release taken back: no new offers (devices that installed it keep it).
    ReleaseWithdraw => "release.withdraw", Release;
    // A device group pinned to a release (its version), or unpinned; the target is the release.
    OtaVersionPin => "ota.version-pin", Release;
    OtaVersionUnpin => "ota.version-unpin", Release;
    // A new root metadata version (keys and thresholds of the repository).
    OtaRootUpdate => "ota.root-update", Release;
    // Command re-signed the timestamp (and snapshot) with its online keys.
    OtaTimestampRefresh => "ota.timestamp-refresh", Release;
    // A named policy created (no version yet: versions go through an approval).
    PolicyCreate => "policy.create", Policy;
    // An approved version numbered (the event names the policy and the version, not content).
    PolicyVersionCreate => "policy.version-create", Policy;
    // An approved assignment of a policy version to a group, or its removal (one event per
    // group).
    PolicyAssign => "policy.assign", Policy;
    PolicyUnassign => "policy.unassign", Policy;
    // Command compiled, signed and published a group's policy bundle (names the group and the
    // bundle's sequence, never its content).
    PolicyBundlePublish => "policy.bundle-publish", Policy;
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The category of thing acted upon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TargetCategory {
    Account,
    Session,
    Role,
    ApprovalRequest,
    ApprovalRule,
    Route,
    AuditLog,
    Device,
    EnrollmentToken,
    Release,
    OtaRepository,
    ClientNetwork,
    Policy,
    VpnGateway,
    None,
}

impl TargetCategory {
    pub const fn as_str(self) -> &'static str {
        match self {
            TargetCategory::Account => "account",
            TargetCategory::Session => "session",
            TargetCategory::Role => "role",
            TargetCategory::ApprovalRequest => "approval-request",
            TargetCategory::ApprovalRule => "approval-rule",
            TargetCategory::Route => "route",
            TargetCategory::AuditLog => "audit-log",
            TargetCategory::Device => "device",
            TargetCategory::EnrollmentToken => "enrollment-token",
            TargetCategory::Release => "release",
            TargetCategory::OtaRepository => "ota-repository",
            TargetCategory::ClientNetwork => "client-network",
            TargetCategory::Policy => "policy",
            TargetCategory::VpnGateway => "vpn-gateway",
            TargetCategory::None => "none",
        }
    }
}

/// The thing acted upon, with a typed reference where there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "category", rename_all = "kebab-case")]
pub enum AuditTarget {
    Account {
        admin: Option<AdminId>,
    },
    Session {
        session: SessionId,
    },
    Role {
        admin: AdminId,
        role: Role,
    },
    ApprovalRequest {
        approval: ApprovalId,
    },
    ApprovalRule {
        kind: ApprovalKind,
    },
    Route {
        permission: Permission,
    },
    AuditLog,
    /// The leaves `first..end` of the audit log, e.g. the ones a purge removed the bodies of.
    AuditLeaves {
        first: u64,
        end: u64,
    },
    Device {
        handle: DeviceHandle,
    },
    /// A device's trust state moving from `from` (none at enrollment) to `to`; `sources` are
    /// the security layers of the findings behind the new state (categories only, no content).
    DeviceTrust {
        handle: DeviceHandle,
        from: Option<AuditTrustState>,
        to: AuditTrustState,
        // Absent when empty, so events recorded before sources existed keep their encoding.
        #[serde(default, skip_serializing_if = "SecurityLayers::is_empty")]
        sources: SecurityLayers,
        /// The security layers in which the device's attestation contradicted its report
        /// (categories only: never the values or the claims). Absent when empty, so earlier
        /// events keep their encoding.
        #[serde(default, skip_serializing_if = "SecurityLayers::is_empty")]
        contradictions: SecurityLayers,
    },
    EnrollmentToken {
        id: EnrollmentTokenId,
    },
    Release {
        release: ReleaseId,
    },
    /// The TUF repository's metadata (root, snapshot, timestamp).
    OtaRepository,
    /// A named policy, one of its versions, and the device group an assignment concerns
    /// (identifiers only: never the policy's content).
    Policy {
        policy: PolicyId,
        kind: PolicyKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<GroupName>,
    },
    /// A network routing decision for a device under `policy` version `version` (none: no
    /// network policy, which blocks): the route's category and the id of the rule that decided,
    /// never the flow's app, destination or payload.
    NetworkDecision {
        handle: DeviceHandle,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        policy: Option<PolicyId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<u32>,
        route: NetworkRoute,
        rule: NetworkRuleId,
    },
    /// A device's VPN location switch number `sequence` (never the location or gateway).
    VpnSwitch {
        handle: DeviceHandle,
        sequence: u64,
    },
    /// A VPN gateway of the control plane (infrastructure, never a device's traffic).
    VpnGateway {
        gateway: crate::network::VpnGatewayId,
    },
    /// A device group's policy bundle number `sequence` (never its content).
    PolicyBundle {
        group: GroupName,
        sequence: u64,
    },
    /// Unauthenticated requests refused in one window from one client network, counted instead
    /// of logged one by one, so that anonymous callers cannot grow the log at their rate
    /// (docs/security.md, "Audit of anonymous requests"). The event's time is when the window
    /// closed.
    AnonymousRequests {
        network: ClientNetwork,
        /// How many requests were refused.
        count: u64,
        /// When the window opened.
        since: Timestamp,
    },
    None,
}

/// Where anonymous requests came from, as coarse as an audit record needs: the IPv4 /24 or
/// IPv6 /64 network, never the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ClientNetwork {
    /// The network's first address and its prefix length.
    Network { address: IpAddr, prefix: u8 },
    /// The server did not know the peer's address (no connection information).
    Unknown,
    /// Every network past the bound on distinct networks kept in one window, together.
    Other,
}

impl ClientNetwork {
    /// Prefix lengths of the buckets: a /24 is what one IPv4 client commonly controls, a /64 is
    /// the smallest IPv6 allocation to one site.
    pub const IPV4_PREFIX: u8 = 24;
    pub const IPV6_PREFIX: u8 = 64;

    /// The bucket of a client address (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn of(address: Option<IpAddr>) -> Self {
        match address.map(|address| address.to_canonical()) {
            Some(IpAddr::V4(v4)) => {
                let [a, b, c, _] = v4.octets();
                ClientNetwork::Network {
                    address: IpAddr::from([a, b, c, 0]),
                    prefix: Self::IPV4_PREFIX,
                }
            }
            Some(IpAddr::V6(v6)) => {
                let bits = u128::from(v6) & !(u128::MAX >> Self::IPV6_PREFIX);
                ClientNetwork::Network {
                    address: IpAddr::V6(bits.into()),
                    prefix: Self::IPV6_PREFIX,
                }
            }
            None => ClientNetwork::Unknown,
        }
    }
}

impl fmt::Display for ClientNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientNetwork::Network { address, prefix } => write!(f, "{address}/{prefix}"),
            ClientNetwork::Unknown => f.write_str("unknown"),
            ClientNetwork::Other => f.write_str("other"),
        }
    }
}

impl AuditTarget {
    pub const fn category(&self) -> TargetCategory {
        match self {
            AuditTarget::Account { .. } => TargetCategory::Account,
            AuditTarget::Session { .. } => TargetCategory::Session,
            AuditTarget::Role { .. } => TargetCategory::Role,
            AuditTarget::ApprovalRequest { .. } => TargetCategory::ApprovalRequest,
            AuditTarget::ApprovalRule { .. } => TargetCategory::ApprovalRule,
            AuditTarget::Route { .. } => TargetCategory::Route,
            AuditTarget::AuditLog | AuditTarget::AuditLeaves { .. } => TargetCategory::AuditLog,
            AuditTarget::Device { .. }
            | AuditTarget::DeviceTrust { .. }
            | AuditTarget::NetworkDecision { .. }
            | AuditTarget::VpnSwitch { .. } => TargetCategory::Device,
            AuditTarget::VpnGateway { .. } => TargetCategory::VpnGateway,
            AuditTarget::EnrollmentToken { .. } => TargetCategory::EnrollmentToken,
            AuditTarget::Release { .. } => TargetCategory::Release,
            AuditTarget::OtaRepository => TargetCategory::OtaRepository,
            AuditTarget::AnonymousRequests { .. } => TargetCategory::ClientNetwork,
            AuditTarget::Policy { .. } | AuditTarget::PolicyBundle { .. } => TargetCategory::Policy,
            AuditTarget::None => TargetCategory::None,
        }
    }

    /// The reference as stable text (`ADMIN_ID`, `ADMIN_ID/ROLE`, `users.create`, ...).
    pub fn reference(&self) -> Option<String> {
        match self {
            AuditTarget::Account { admin } => admin.map(|id| id.to_string()),
            AuditTarget::Session { session } => Some(session.to_string()),
            AuditTarget::Role { admin, role } => Some(format!("{admin}/{role}")),
            AuditTarget::ApprovalRequest { approval } => Some(approval.to_string()),
            AuditTarget::ApprovalRule { kind } => Some(kind.as_str().to_owned()),
            AuditTarget::Route { permission } => Some(permission.as_str().to_owned()),
            AuditTarget::AuditLeaves { first, end } => Some(format!("{first}..{end}")),
            AuditTarget::Device { handle } => Some(handle.to_string()),
            AuditTarget::DeviceTrust {
                handle,
                from,
                to,
                contradictions,
                ..
            } => {
                let mut reference = format!(
                    "{handle}/{}->{}",
                    from.map_or("none", AuditTrustState::as_str),
                    to.as_str()
                );
                // Only when there is one, so earlier events keep their reference.
                if !contradictions.is_empty() {
                    let layers: Vec<&str> =
                        contradictions.iter().map(|layer| layer.as_str()).collect();
                    reference.push_str(" contradicted:");
                    reference.push_str(&layers.join(","));
                }
                Some(reference)
            }
            AuditTarget::EnrollmentToken { id } => Some(id.to_string()),
            AuditTarget::Release { release } => Some(release.to_string()),
            AuditTarget::AnonymousRequests { network, .. } => Some(network.to_string()),
            AuditTarget::Policy {
                policy,
                version,
                group,
                ..
            } => {
                let mut reference = policy.to_string();
                if let Some(version) = version {
                    reference.push_str(&format!("/v{version}"));
                }
                if let Some(group) = group {
                    reference.push_str(&format!("/{group}"));
                }
                Some(reference)
            }
            AuditTarget::PolicyBundle { group, sequence } => Some(format!("{group}/{sequence}")),
            AuditTarget::VpnSwitch { handle, sequence } => Some(format!("{handle}/vpn/{sequence}")),
            AuditTarget::VpnGateway { gateway } => Some(gateway.to_string()),
            AuditTarget::NetworkDecision {
                handle,
                policy,
                version,
                route,
                rule,
            } => {
                let under = match (policy, version) {
                    (Some(policy), Some(version)) => format!("{policy}/v{version}"),
                    (Some(policy), None) => policy.to_string(),
                    (None, _) => "no-policy".to_owned(),
                };
                Some(format!("{handle}/{under}/{route}/{rule}"))
            }
            AuditTarget::AuditLog | AuditTarget::OtaRepository | AuditTarget::None => None,
        }
    }
}

/// A device's trust state as the audit log records it: the Trust State Engine's own
/// [`TrustState`](crate::TrustState), under the name earlier code gave it.
pub type AuditTrustState = crate::trust::TrustState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Success,
    Denied,
    Failed,
}

impl Outcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
}

/// Stable reason categories for denials and failures; shared with the API error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCategory {
    InvalidCredentials,
    AccountDisabled,
    TotpRequired,
    TotpInvalid,
    Throttled,
    Unauthenticated,
    SessionExpired,
    Forbidden,
    PinRequired,
    PinInvalid,
    PinLocked,
    PinNotSet,
    /// The duress PIN was entered.
    DuressPin,
    /// The account's password was set by someone else and must be changed first.
    PasswordChangeRequired,
    SelfApproval,
    NotAnApprover,
    AlreadyDecided,
    NotPending,
    Expired,
    LastOwner,
    Conflict,
    /// Not a denial: a fresh installation's sole owner approved their own role grant while no
    /// second approver existed (the bootstrap window).
    BootstrapSelfApproval,
    /// A device request without the signature headers, or with malformed ones.
    UnsignedRequest,
    /// A device request whose signature or content digest does not verify.
    BadSignature,
    /// A device request signed outside the allowed clock window.
    StaleRequest,
    /// A device request whose nonce was already seen.
    Replayed,
    /// A signed request from a key that no enrolled device holds.
    UnknownDevice,
    DeviceRevoked,
    /// The device is retired, replaced or not yet enrolled.
    DeviceNotActive,
    /// A wrong, expired or used-up enrollment token.
    InvalidEnrollmentToken,
    /// The device key is already enrolled.
    AlreadyEnrolled,
    /// Managed-device mode asked for with a token that does not allow it.
    ManagedNotAllowed,
    /// A device request body that is not a valid report.
    InvalidBody,
    /// Eligibility denials (the Trust State Engine's `DenyReason`s that have no other name).
    MissingInput,
    DeviceRestricted,
    TrustInactive,
    TrustReviewRequired,
    PostureStale,
    AttestationNotAffirming,
    SessionInvalid,
    /// A required setup step of the device is not reported complete (§20 C.27).
    SetupIncomplete,
    /// Somebody other than the device made a request only the device may make.
    ActorNotPermitted,
    /// The resource is not one the action is on.
    ResourceMismatch,
    /// An attested claim contradicts the device's report.
    IntegrityContradicted,
    /// A network policy blocked the flow: one of its block rules, or no layer routing it (the
    /// rule id in the event says which).
    NetworkBlocked,
    /// The device's network policy routes nothing through the VPN location it asked for.
    VpnLocationNotAllowed,
    /// No healthy gateway of the location takes new sessions (capacity, load or health).
    VpnCapacity,
    /// A VPN switch older than one already applied (a lower sequence): it changes nothing.
    VpnSwitchSuperseded,
    /// A lifecycle change the transition table does not allow from the device's state.
    InvalidTransition,
    /// Another lifecycle command waits for the device's acknowledgement.
    CommandPending,
    /// A remote wipe of a device whose user did not opt in at enrollment.
    WipeNotOptedIn,
    /// A device acknowledged a command that was not issued to it.
    CommandNotIssued,
    /// Attestation rejections, one per reason of `enigm-attest` (enigm-docs §9).
    InvalidTrustChain,
    UnsupportedDevice,
    IneligibleBuild,
    StaleAttestation,
    ReplayAttempt,
    EligibilityFailure,
    /// The device's attestation policy requires an accepted attestation and there is none (or
    /// none recent enough).
    AttestationRequired,
    /// Too many attestation challenges are outstanding.
    AttestationBusy,
    /// OTA verification failures, from Command's checks of handed-in signatures and from the
    /// devices' install reports (the categories of `enigm-ota`'s errors).
    UpdateBadSignature,
    UpdateRollback,
    UpdateFreeze,
    UpdateMixAndMatch,
    UpdateArtifactMismatch,
    UpdateTooLarge,
    UpdateMalformed,
    UpdateUnsafeTargetName,
    UpdateNotFound,
    /// The payload's Release-Signing signature is missing or does not verify under the pinned
    /// release keys.
    PayloadSignature,
    /// The release's rollback index is below what the device has installed.
    Downgrade,
    ChannelMismatch,
    IncompatibleHardware,
    ReleaseExpired,
    /// The new slot failed its health check (or never confirmed) and the device rolled back.
    HealthCheckFailed,
    /// Signatures handed in for a release without an executed release-signing approval.
    ReleaseNotApproved,
    /// The OTA repository has no root metadata yet.
    RepositoryNotInitialised,
    /// A rollout step refused because the release's plan is a draft (never offered).
    RolloutDraftPlan,
    /// The release was withdrawn: no offers, no further stage.
    RolloutWithdrawn,
    /// The rollout is paused or halted: no new offers, no next wave.
    RolloutPaused,
    /// The current wave has not run for its plan's minimum soak time.
    SoakNotElapsed,
    /// The release's stage offers it to no device yet (before `Validated`, or a draft plan).
    RolloutNotOffered,
    /// The device's group is pinned to another version.
    VersionPinned,
    /// The device's place is in no open wave.
    NotInWave,
    /// The failed and rolled-back installs of the current wave passed the plan's threshold.
    RolloutFailureThreshold,
}

impl ReasonCategory {
    pub const fn as_str(self) -> &'static str {
        match self {
            ReasonCategory::InvalidCredentials => "invalid_credentials",
            ReasonCategory::AccountDisabled => "account_disabled",
            ReasonCategory::TotpRequired => "totp_required",
            ReasonCategory::TotpInvalid => "totp_invalid",
            ReasonCategory::Throttled => "throttled",
            ReasonCategory::Unauthenticated => "unauthenticated",
            ReasonCategory::SessionExpired => "session_expired",
            ReasonCategory::Forbidden => "forbidden",
            ReasonCategory::PinRequired => "pin_required",
            ReasonCategory::PinInvalid => "pin_invalid",
            ReasonCategory::PinLocked => "pin_locked",
            ReasonCategory::PinNotSet => "pin_not_set",
            ReasonCategory::DuressPin => "duress_pin",
            ReasonCategory::PasswordChangeRequired => "password_change_required",
            ReasonCategory::SelfApproval => "self_approval",
            ReasonCategory::NotAnApprover => "not_an_approver",
            ReasonCategory::AlreadyDecided => "already_decided",
            ReasonCategory::NotPending => "not_pending",
            ReasonCategory::Expired => "expired",
            ReasonCategory::LastOwner => "last_owner",
            ReasonCategory::Conflict => "conflict",
            ReasonCategory::BootstrapSelfApproval => "bootstrap_self_approval",
            ReasonCategory::UnsignedRequest => "unsigned_request",
            ReasonCategory::BadSignature => "bad_signature",
            ReasonCategory::StaleRequest => "stale_request",
            ReasonCategory::Replayed => "replayed",
            ReasonCategory::UnknownDevice => "unknown_device",
            ReasonCategory::DeviceRevoked => "device_revoked",
            ReasonCategory::DeviceNotActive => "device_not_active",
            ReasonCategory::InvalidEnrollmentToken => "invalid_enrollment_token",
            ReasonCategory::AlreadyEnrolled => "already_enrolled",
            ReasonCategory::ManagedNotAllowed => "managed_not_allowed",
            ReasonCategory::InvalidBody => "invalid_body",
            ReasonCategory::MissingInput => "missing_input",
            ReasonCategory::DeviceRestricted => "device_restricted",
            ReasonCategory::TrustInactive => "trust_inactive",
            ReasonCategory::TrustReviewRequired => "trust_review_required",
            ReasonCategory::PostureStale => "posture_stale",
            ReasonCategory::AttestationNotAffirming => "attestation_not_affirming",
            ReasonCategory::SessionInvalid => "session_invalid",
            ReasonCategory::SetupIncomplete => "setup_incomplete",
            ReasonCategory::ActorNotPermitted => "actor_not_permitted",
            ReasonCategory::ResourceMismatch => "resource_mismatch",
            ReasonCategory::IntegrityContradicted => "integrity_contradicted",
            ReasonCategory::InvalidTransition => "invalid_transition",
            ReasonCategory::CommandPending => "command_pending",
            ReasonCategory::WipeNotOptedIn => "wipe_not_opted_in",
            ReasonCategory::CommandNotIssued => "command_not_issued",
            ReasonCategory::InvalidTrustChain => "invalid_trust_chain",
            ReasonCategory::UnsupportedDevice => "unsupported_device",
            ReasonCategory::IneligibleBuild => "ineligible_build",
            ReasonCategory::StaleAttestation => "stale_attestation",
            ReasonCategory::ReplayAttempt => "replay_attempt",
            ReasonCategory::EligibilityFailure => "eligibility_failure",
            ReasonCategory::NetworkBlocked => "network_blocked",
            ReasonCategory::VpnLocationNotAllowed => "vpn_location_not_allowed",
            ReasonCategory::VpnCapacity => "vpn_capacity",
            ReasonCategory::VpnSwitchSuperseded => "vpn_switch_superseded",
            ReasonCategory::AttestationRequired => "attestation_required",
            ReasonCategory::AttestationBusy => "attestation_busy",
            ReasonCategory::UpdateBadSignature => "update_bad_signature",
            ReasonCategory::UpdateRollback => "update_rollback",
            ReasonCategory::UpdateFreeze => "update_freeze",
            ReasonCategory::UpdateMixAndMatch => "update_mix_and_match",
            ReasonCategory::UpdateArtifactMismatch => "update_artifact_mismatch",
            ReasonCategory::UpdateTooLarge => "update_too_large",
            ReasonCategory::UpdateMalformed => "update_malformed",
            ReasonCategory::UpdateUnsafeTargetName => "update_unsafe_target_name",
            ReasonCategory::UpdateNotFound => "update_not_found",
            ReasonCategory::PayloadSignature => "payload_signature",
            ReasonCategory::Downgrade => "downgrade",
            ReasonCategory::ChannelMismatch => "channel_mismatch",
            ReasonCategory::IncompatibleHardware => "incompatible_hardware",
            ReasonCategory::ReleaseExpired => "release_expired",
            ReasonCategory::HealthCheckFailed => "health_check_failed",
            ReasonCategory::ReleaseNotApproved => "release_not_approved",
            ReasonCategory::RepositoryNotInitialised => "repository_not_initialised",
            ReasonCategory::RolloutDraftPlan => "rollout_draft_plan",
            ReasonCategory::RolloutWithdrawn => "rollout_withdrawn",
            ReasonCategory::RolloutPaused => "rollout_paused",
            ReasonCategory::SoakNotElapsed => "soak_not_elapsed",
            ReasonCategory::RolloutNotOffered => "rollout_not_offered",
            ReasonCategory::VersionPinned => "version_pinned",
            ReasonCategory::NotInWave => "not_in_wave",
            ReasonCategory::RolloutFailureThreshold => "rollout_failure_threshold",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_are_unique_and_match_serde() {
        let mut names: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        for action in AuditAction::ALL {
            assert_eq!(
                serde_json::to_string(action).unwrap(),
                format!("\"{}\"", action.as_str())
            );
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), AuditAction::ALL.len());
    }

    #[test]
    fn canonical_bytes_round_trip_and_hold_no_free_text() {
        let admin = AdminId::random();
        let event = AuditEvent::new(
            Timestamp::from_unix_millis(1_000),
            Actor::Admin(admin),
            AuditAction::RoleGrant,
            AuditTarget::Role {
                admin,
                role: Role::Auditor,
            },
            Outcome::Success,
        )
        .with_change_ref(ApprovalId::random());
        let bytes = event.canonical_bytes();
        let back: AuditEvent = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, event);
        assert_eq!(back.canonical_bytes(), bytes);
        assert_eq!(event.target.reference(), Some(format!("{admin}/auditor")));
    }
}
