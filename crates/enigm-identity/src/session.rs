//! Administrator session lifetime: an absolute limit from creation and an idle timeout from the
//! last request, both decided against a caller-supplied "now".

use std::time::Duration;

use enigm_types::Timestamp;

/// How long sessions live. Fields are private so that every policy satisfies
/// `0 < idle_timeout <= absolute_lifetime <= 6 h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    absolute_lifetime: Duration,
    idle_timeout: Duration,
}

/// Evidence that a session was live at the time it was checked. Only [`SessionPolicy::check`]
/// can make one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveSession {
    expires_at: Timestamp,
}

/// Why a session is no longer usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionRejection {
    #[error("session has reached its maximum lifetime")]
    Expired,
    #[error("session was idle for too long")]
    Idle,
}

/// Why a session policy was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionPolicyError {
    #[error("absolute session lifetime must be more than zero and at most 6 hours")]
    AbsoluteLifetime,
    #[error("session idle timeout must be more than zero and at most the absolute lifetime")]
    IdleTimeout,
}

impl SessionPolicy {
    /// No session outlives this, whatever the configuration says.
    pub const MAX_ABSOLUTE_LIFETIME: Duration = Duration::from_secs(6 * 60 * 60);
    const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

    pub fn new(
        absolute_lifetime: Duration,
        idle_timeout: Duration,
    ) -> Result<Self, SessionPolicyError> {
        if absolute_lifetime.is_zero() || absolute_lifetime > Self::MAX_ABSOLUTE_LIFETIME {
            return Err(SessionPolicyError::AbsoluteLifetime);
        }
        if idle_timeout.is_zero() || idle_timeout > absolute_lifetime {
            return Err(SessionPolicyError::IdleTimeout);
        }
        Ok(SessionPolicy {
            absolute_lifetime,
            idle_timeout,
        })
    }

    pub fn absolute_lifetime(&self) -> Duration {
        self.absolute_lifetime
    }

    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// The instant from which a session created at `created_at` is refused, however active.
    pub fn expires_at(&self, created_at: Timestamp) -> Timestamp {
        created_at.saturating_add(self.absolute_lifetime)
    }

    /// A session is live while `now < created_at + absolute_lifetime` and
    /// `now < last_seen_at + idle_timeout`; both bounds are exclusive, so a request exactly at
    /// the limit is refused. The absolute limit is checked first: a session past it is
    /// [`SessionRejection::Expired`] even if it was also idle.
    pub fn check(
        &self,
        created_at: Timestamp,
        last_seen_at: Timestamp,
        now: Timestamp,
    ) -> Result<LiveSession, SessionRejection> {
        let expires_at = self.expires_at(created_at);
        if now >= expires_at {
            return Err(SessionRejection::Expired);
        }
        if now >= last_seen_at.saturating_add(self.idle_timeout) {
            return Err(SessionRejection::Idle);
        }
        Ok(LiveSession { expires_at })
    }
}

impl Default for SessionPolicy {
    /// 6 hours absolute, 30 minutes idle.
    fn default() -> Self {
        SessionPolicy {
            absolute_lifetime: Self::MAX_ABSOLUTE_LIFETIME,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
        }
    }
}

impl LiveSession {
    /// When the session will be refused regardless of activity.
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const HOUR: u64 = 60 * 60;
    const T0: Timestamp = Timestamp::from_unix_millis(1_795_321_500_000);

    fn at(seconds_after_t0: u64) -> Timestamp {
        T0.saturating_add(Duration::from_secs(seconds_after_t0))
    }

    #[test]
    fn default_policy_is_six_hours_and_thirty_minutes() {
        let policy = SessionPolicy::default();
        assert_eq!(policy.absolute_lifetime(), Duration::from_secs(6 * HOUR));
        assert_eq!(policy.idle_timeout(), Duration::from_secs(30 * 60));
        assert_eq!(
            SessionPolicy::new(policy.absolute_lifetime(), policy.idle_timeout()),
            Ok(policy)
        );
        assert_eq!(policy.expires_at(T0), at(6 * HOUR));
    }

    #[test]
    fn absolute_lifetime_is_enforced_to_the_second() {
        // Idle timeout equal to the lifetime, so only the absolute limit is in play.
        let policy =
            SessionPolicy::new(Duration::from_secs(6 * HOUR), Duration::from_secs(6 * HOUR))
                .unwrap();
        let cases: &[(u64, Result<(), SessionRejection>)] = &[
            (0, Ok(())),
            (HOUR, Ok(())),
            (6 * HOUR - 1, Ok(())),
            (6 * HOUR, Err(SessionRejection::Expired)),
            (6 * HOUR + 1, Err(SessionRejection::Expired)),
            (100 * HOUR, Err(SessionRejection::Expired)),
        ];
        for &(elapsed, expected) in cases {
            // The session was used a second ago, so idleness never decides these cases.
            let now = at(elapsed);
            let last_seen = now.saturating_sub(Duration::from_secs(1)).max(T0);
            let result = policy.check(T0, last_seen, now);
            assert_eq!(
                result.map(|live| assert_eq!(live.expires_at(), at(6 * HOUR))),
                expected,
                "{elapsed}s"
            );
        }
    }

    #[test]
    fn idle_timeout_is_enforced_to_the_second() {
        let policy = SessionPolicy::default();
        let last_seen = at(HOUR);
        let cases: &[(u64, Result<(), SessionRejection>)] = &[
            (HOUR, Ok(())),
            (HOUR + 30 * 60 - 1, Ok(())),
            (HOUR + 30 * 60, Err(SessionRejection::Idle)),
            (HOUR + 30 * 60 + 1, Err(SessionRejection::Idle)),
            // Past both limits: the absolute one is reported.
            (6 * HOUR, Err(SessionRejection::Expired)),
        ];
        for &(elapsed, expected) in cases {
            assert_eq!(
                policy.check(T0, last_seen, at(elapsed)).map(|_| ()),
                expected,
                "{elapsed}s"
            );
        }
    }

    #[test]
    fn activity_does_not_extend_the_absolute_lifetime() {
        let policy = SessionPolicy::default();
        // Seen a moment ago, but created six hours (plus a second) ago.
        let now = at(6 * HOUR + 1);
        assert_eq!(
            policy.check(T0, at(6 * HOUR), now).unwrap_err(),
            SessionRejection::Expired
        );
        assert_eq!(
            policy.check(T0, now, now).unwrap_err(),
            SessionRejection::Expired
        );
    }

    #[test]
    fn policy_bounds() {
        let secs = Duration::from_secs;
        let cases = [
            (secs(6 * HOUR), secs(30 * 60), Ok(())),
            (secs(1), secs(1), Ok(())),
            (secs(HOUR), secs(HOUR), Ok(())),
            (secs(6 * HOUR), secs(6 * HOUR), Ok(())),
            (
                Duration::ZERO,
                secs(1),
                Err(SessionPolicyError::AbsoluteLifetime),
            ),
            (
                secs(6 * HOUR + 1),
                secs(60),
                Err(SessionPolicyError::AbsoluteLifetime),
            ),
            (
                secs(6 * HOUR) + Duration::from_nanos(1),
                secs(60),
                Err(SessionPolicyError::AbsoluteLifetime),
            ),
            (
                secs(24 * HOUR),
                secs(60),
                Err(SessionPolicyError::AbsoluteLifetime),
            ),
            (
                Duration::MAX,
                secs(60),
                Err(SessionPolicyError::AbsoluteLifetime),
            ),
            (
                secs(HOUR),
                Duration::ZERO,
                Err(SessionPolicyError::IdleTimeout),
            ),
            (
                secs(HOUR),
                secs(HOUR + 1),
                Err(SessionPolicyError::IdleTimeout),
            ),
        ];
        for (absolute, idle, expected) in cases {
            let result = SessionPolicy::new(absolute, idle).map(|policy| {
                assert_eq!(policy.absolute_lifetime(), absolute);
                assert_eq!(policy.idle_timeout(), idle);
            });
            assert_eq!(result, expected, "{absolute:?} {idle:?}");
        }
    }

    #[test]
    fn far_future_timestamps_saturate_instead_of_overflowing() {
        let policy = SessionPolicy::default();
        let end = Timestamp::from_unix_millis(i64::MAX);
        assert_eq!(policy.expires_at(end), end);
        assert_eq!(
            policy.check(end, end, end).unwrap_err(),
            SessionRejection::Expired
        );
    }

    proptest! {
        #[test]
        fn live_exactly_when_both_deadlines_are_ahead(
            absolute in 1u64..=6 * HOUR,
            idle_fraction in 1u64..=100,
            seen_after in 0u64..8 * HOUR,
            now_after in 0u64..8 * HOUR,
        ) {
            let idle = (absolute * idle_fraction / 100).max(1);
            let policy = SessionPolicy::new(Duration::from_secs(absolute), Duration::from_secs(idle)).unwrap();
            let result = policy.check(T0, at(seen_after), at(now_after));
            let expected = if now_after >= absolute {
                Err(SessionRejection::Expired)
            } else if now_after >= seen_after + idle {
                Err(SessionRejection::Idle)
            } else {
                Ok(at(absolute))
            };
            prop_assert_eq!(result.map(|live| live.expires_at()), expected);
        }
    }
}
