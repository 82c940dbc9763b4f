//! The records the core hands its driver to keep (enrollment, last evaluation, the outcome of
//! the last update attempt) and the outcome of an update attempt it takes back. Plain values:
//! the shell decides where and how they are stored.

use enigm_api::{FindingView, TrustView};
use enigm_trust::{LauncherSummary, Signal, SignalKind, SignalSource, SignalValue, TrustState};
use enigm_types::{DeviceHandle, ReasonCategory, Timestamp};
use serde::{Deserialize, Serialize};

/// What the device keeps of its enrollment (`<state-dir>/enrollment.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrollment {
    pub server: String,
    pub handle: DeviceHandle,
    /// RFC 3339.
    pub enrolled_at: String,
}

/// The last evaluation, as the agent records it after each check-in for the local Trust
/// Security Center (`<state-dir>/tsc.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TscRecord {
    pub handle: DeviceHandle,
    pub server: String,
    pub state: TrustState,
    /// What the user reads: Protected, Review Required or Inactive.
    pub state_label: String,
    pub launcher_summary: LauncherSummary,
    /// Device Protected, Device At Risk or Protection Inactive.
    pub launcher_label: String,
    pub findings: Vec<FindingView>,
    /// RFC 3339, the server's time of the evaluation.
    pub evaluated_at: String,
    /// RFC 3339, the device's time of the check-in.
    pub checked_in_at: String,
}

impl TscRecord {
    pub fn new(
        handle: DeviceHandle,
        server: &str,
        trust: &TrustView,
        checked_in_at: Timestamp,
    ) -> Self {
        TscRecord {
            handle,
            server: server.to_owned(),
            state: trust.state,
            state_label: trust.state.label().to_owned(),
            launcher_summary: trust.launcher_summary,
            launcher_label: trust.launcher_summary.label().to_owned(),
            findings: trust.findings.clone(),
            evaluated_at: trust.evaluated_at.clone(),
            checked_in_at: checked_in_at.to_rfc3339(),
        }
    }
}

/// What one update attempt came to, for one release (or for the metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateResult {
    UpToDate,
    /// The repository did not answer (down, or nothing published yet): nothing to report.
    Unavailable,
    Installed(String),
    Rejected(String, ReasonCategory),
    RolledBack(String),
}

/// What the last update attempt showed of the update path, as the Trust State Engine reads it
/// (`<state-dir>/ota/verification.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerificationRecord {
    pub value: SignalValue,
    /// Unix milliseconds of the attempt.
    pub observed_at: i64,
}

impl VerificationRecord {
    /// The record of an attempt (the results of the OS image and the bundles): `failed` when
    /// anything was refused, else `ok` when anything verified; `None` when nothing was learnt
    /// (an unreachable repository proves nothing, so the last record stays and ages).
    pub fn of(results: &[UpdateResult], at: Timestamp) -> Option<Self> {
        let values: Vec<SignalValue> = results.iter().filter_map(verification_value).collect();
        let value = if values.contains(&SignalValue::Failed) {
            SignalValue::Failed
        } else if values.contains(&SignalValue::Ok) {
            SignalValue::Ok
        } else {
            return None;
        };
        Some(VerificationRecord {
            value,
            observed_at: at.unix_millis(),
        })
    }
}

/// The `ota-verification` value of one result: `ok` when the metadata verified and whatever
/// was offered verified too (installed, up to date, or a verified image that failed its health
/// check and was rolled back); `failed` when the metadata or an offered release was refused,
/// which is what tampering, a freeze, a rollback or a downgrade look like from the device.
fn verification_value(result: &UpdateResult) -> Option<SignalValue> {
    match result {
        UpdateResult::UpToDate | UpdateResult::Installed(_) | UpdateResult::RolledBack(_) => {
            Some(SignalValue::Ok)
        }
        UpdateResult::Rejected(..) => Some(SignalValue::Failed),
        UpdateResult::Unavailable => None,
    }
}

/// The stored outcome of the last update attempt, as the shell found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verification {
    /// No attempt yet (or updates are not configured).
    #[default]
    None,
    Recorded(VerificationRecord),
    /// A record that cannot be read or parsed: `not-measurable`, never `ok`.
    Unreadable,
}

impl Verification {
    /// Parses a stored record: `None` when there is none, `Unreadable` when it does not parse.
    pub fn from_stored(bytes: Option<&[u8]>) -> Self {
        match bytes {
            None => Verification::None,
            Some(bytes) => match serde_json::from_slice::<VerificationRecord>(bytes) {
                Ok(record) => Verification::Recorded(record),
                Err(_) => Verification::Unreadable,
            },
        }
    }

    /// The `ota-verification` signal for a report made at `now`.
    pub fn signal(&self, now: Timestamp) -> Option<Signal> {
        let (value, observed_at) = match self {
            Verification::None => return None,
            Verification::Recorded(record) => (
                record.value,
                Timestamp::from_unix_millis(record.observed_at),
            ),
            Verification::Unreadable => (SignalValue::NotMeasurable, now),
        };
        Some(Signal {
            kind: SignalKind::OtaVerification,
            value,
            observed_at,
            source: SignalSource::Measured,
        })
    }
}
