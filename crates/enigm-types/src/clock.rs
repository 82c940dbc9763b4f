//! Time as the domain sees it: milliseconds since the Unix epoch, read from an injected clock.
//!
//! Libraries never read the operating system clock; the server passes a system clock and tests
//! pass a [`ManualClock`] so that expiry rules can be checked to the second.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A point in time, in whole milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);

    pub const fn from_unix_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    pub const fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// `self + duration`, saturating at the end of representable time.
    pub fn saturating_add(self, duration: Duration) -> Self {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(millis))
    }

    /// `self - duration`, saturating at the start of representable time.
    pub fn saturating_sub(self, duration: Duration) -> Self {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_sub(millis))
    }

    /// How long after `earlier` this instant is; zero when it is not after it.
    pub fn duration_since(self, earlier: Timestamp) -> Duration {
        let millis = self.0.saturating_sub(earlier.0).max(0);
        Duration::from_millis(u64::try_from(millis).unwrap_or(0))
    }

    /// Parses an RFC 3339 date-time (any offset), truncated to the millisecond; `None` when the
    /// text is not one or lies outside the range of a millisecond count.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .ok()?;
        i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000))
            .ok()
            .map(Self)
    }

    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-22T04:25:00.000Z`.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(at) => {
                let format = time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
                );
                at.format(&format).unwrap_or_else(|_| self.0.to_string())
            }
            Err(_) => self.0.to_string(),
        }
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// The source of "now" for everything that decides by time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// A clock that only moves when told to: for tests and simulations.
#[derive(Debug, Default)]
pub struct ManualClock {
    millis: AtomicI64,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            millis: AtomicI64::new(start.unix_millis()),
        }
    }

    pub fn advance(&self, by: Duration) {
        let millis = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.millis.fetch_add(millis, Ordering::SeqCst);
    }

    pub fn set(&self, to: Timestamp) {
        self.millis.store(to.unix_millis(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.millis.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_utc_with_millis() {
        assert_eq!(
            Timestamp::from_unix_millis(0).to_rfc3339(),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_unix_millis(1_795_321_500_123).to_rfc3339(),
            "2026-11-22T04:25:00.123Z"
        );
    }

    #[test]
    fn arithmetic_saturates_instead_of_overflowing() {
        let end = Timestamp::from_unix_millis(i64::MAX);
        assert_eq!(end.saturating_add(Duration::from_secs(1)), end);
        let a = Timestamp::from_unix_millis(5_000);
        assert_eq!(
            a.duration_since(Timestamp::from_unix_millis(9_000)),
            Duration::ZERO
        );
        assert_eq!(
            a.duration_since(Timestamp::from_unix_millis(2_000)),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp::from_unix_millis(1_000));
        assert_eq!(clock.now().unix_millis(), 1_000);
        clock.advance(Duration::from_secs(2));
        assert_eq!(clock.now().unix_millis(), 3_000);
    }
}
