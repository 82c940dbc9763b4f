//! The signal report of this host, measured now: the collectors, a profile's declared signals,
//! or both. `enigm agent` sends it; `enigm agent-report` prints it.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use enigm_trust::SignalReport;
use enigm_types::Timestamp;

use crate::collect;
use crate::profile::Profile;

/// The report at `now`: the collectors under `root` without a profile; with one, its declared
/// signals (measured ones too when the profile asks for the collectors).
pub fn measure(profile: Option<&Profile>, root: &Path, now: Timestamp) -> SignalReport {
    match profile {
        None => collect::collect_report(root, now),
        Some(profile) if profile.collects() => profile.report_with_collectors(root, now),
        Some(profile) => profile.report(now),
    }
}

/// The operating system's clock; a clock before 1970 reads as the epoch, which makes every
/// signal stale rather than fresh.
pub fn system_now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp::from_unix_millis(millis)
}
