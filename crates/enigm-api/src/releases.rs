//! Wire types of OTA releases: creating one (the pipeline), what the signing workstation reads
//! and hands back, publishing, and the devices' install reports. Artifacts and signed metadata
//! travel as raw bodies, never inside JSON, so that what was signed is what is stored.

use enigm_types::{ApprovalId, InstallOutcome, ReasonCategory, ReleaseId, ReleaseState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The most compatible device models one release may name.
pub const MAX_COMPATIBLE_MODELS: usize = 64;
/// The longest a release may stay installable.
pub const MAX_RELEASE_DAYS: u32 = 730;

/// The kinds of payload a release carries (enigm-docs §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseKind {
    OsImage,
    PolicyBundle,
    ConfigurationBundle,
}

impl ReleaseKind {
    pub const ALL: [ReleaseKind; 3] = [
        ReleaseKind::OsImage,
        ReleaseKind::PolicyBundle,
        ReleaseKind::ConfigurationBundle,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ReleaseKind::OsImage => "os-image",
            ReleaseKind::PolicyBundle => "policy-bundle",
            ReleaseKind::ConfigurationBundle => "configuration-bundle",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        ReleaseKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

/// A device model a release is for: 1 to 64 of `a-z 0-9 - _ .`. Only documents the items of
/// [`CreateReleaseRequest::compatible_models`], which stays a list of strings.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = r"^[a-z0-9._-]{1,64}$")]
pub struct ModelName(pub String);

/// `POST /api/v1/releases`: declares a release and opens its signing approval request. The
/// artifact follows with `PUT /api/v1/releases/{id}/artifact` and must match `length` and
/// `sha256`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReleaseRequest {
    /// The TUF target path, e.g. `os/enigm-os-2026.11.1.img` (relative, `/`-separated, no `.`
    /// or `..` segments).
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r#"^(?:[!-"$-\-0->@-\[\]-~][!-"$-.0->@-\[\]-~]*|\.[!-"$-\-0->@-\[\]-~][!-"$-.0->@-\[\]-~]*|\.\.[!-"$-.0->@-\[\]-~]+)(?:/(?:[!-"$-\-0->@-\[\]-~][!-"$-.0->@-\[\]-~]*|\.[!-"$-\-0->@-\[\]-~][!-"$-.0->@-\[\]-~]*|\.\.[!-"$-.0->@-\[\]-~]+))*$"#
    )]
    pub target_name: String,
    pub kind: ReleaseKind,
    /// Human release version, e.g. `2026.11.1`.
    #[schema(pattern = r"^[A-Za-z0-9_.+-]{1,64}$")]
    pub release_version: String,
    /// Monotonic security version: devices refuse anything below what they have installed.
    pub rollback_index: u64,
    /// Release channel, e.g. `stable` (1 to 32 of `a-z 0-9 - _ .`).
    #[schema(pattern = r"^[a-z0-9._-]{1,32}$")]
    pub channel: String,
    /// Compatible device models (1 to 64 of them, each 1 to 64 of `a-z 0-9 - _ .`).
    #[schema(value_type = Vec<ModelName>, min_items = 1, max_items = 64)]
    pub compatible_models: Vec<String>,
    /// Artifact length in bytes.
    #[schema(minimum = 1)]
    pub length: u64,
    /// Artifact SHA-256, hex.
    #[schema(pattern = "^[0-9A-Fa-f]{64}$")]
    pub sha256: String,
    /// Days until devices stop installing the release (1 to 730).
    #[schema(minimum = 1, maximum = 730)]
    pub expires_in_days: u32,
    /// Why the release should be signed, for the approvers.
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub justification: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstallCountsView {
    pub installed: u64,
    pub rejected: u64,
    pub rolled_back: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReleaseView {
    pub id: ReleaseId,
    pub target_name: String,
    pub kind: ReleaseKind,
    pub release_version: String,
    pub rollback_index: u64,
    pub channel: String,
    pub compatible_models: Vec<String>,
    pub length: u64,
    pub sha256: String,
    /// RFC 3339.
    pub expires_at: String,
    /// `superseded` for a published release that a later published one superseded (see
    /// `superseded_by`).
    pub state: ReleaseState,
    /// The published release that superseded this one: the same kind and channel, a higher
    /// rollback index, covering its hardware; the targets metadata no longer lists this one.
    #[serde(default)]
    pub superseded_by: Option<ReleaseId>,
    /// The release-signing approval request.
    pub approval: Option<ApprovalId>,
    pub artifact_stored: bool,
    /// The targets metadata version that lists the release, once signed.
    pub targets_version: Option<u64>,
    /// RFC 3339.
    pub created_at: String,
    pub signed_at: Option<String>,
    pub published_at: Option<String>,
    /// What devices reported installing it.
    pub installs: InstallCountsView,
}

/// `GET /api/v1/ota/online-keys`: the public keys Command signs snapshot and timestamp
/// metadata with (TUF key objects), for the root the Manifest Signing Authority signs.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OnlineKeysView {
    #[schema(value_type = Object)]
    pub snapshot: serde_json::Value,
    #[schema(value_type = Object)]
    pub timestamp: serde_json::Value,
    /// The director's key, which signs each device's update answer; a root pins it in its
    /// `x-enigm-director` field.
    #[schema(value_type = Object)]
    pub director: serde_json::Value,
}

/// What the repository looks like after a change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RepositoryView {
    pub root_version: Option<u64>,
    pub targets_version: Option<u64>,
    pub snapshot_version: Option<u64>,
    pub timestamp_version: Option<u64>,
    /// RFC 3339 expiry of the current timestamp metadata.
    pub timestamp_expires: Option<String>,
}

/// `POST /api/v1/device/ota/reports` (signed by the device): the outcome of one install.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallReportRequest {
    pub target_name: String,
    pub release_version: String,
    pub outcome: InstallOutcome,
    /// Why, when not installed: the verification or eligibility failure's category.
    #[serde(default)]
    pub reason: Option<ReasonCategory>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstallReportResponse {
    pub recorded: bool,
}
