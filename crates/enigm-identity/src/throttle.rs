//! Login throttling against password guessing: after a few free failures, each further failure
//! for the same key starts an exponentially growing back-off.
//!
//! Keys are opaque strings; the server throttles both per account (`user:<name>`) and per client
//! address (`ip:<addr>`). The policy is pure: [`ThrottlePolicy::check`] and
//! [`ThrottlePolicy::after_failure`] turn one key's [`ThrottleEntry`] and the time into a decision
//! or the next entry, wherever entries are kept. Command keeps them in its database, so that every
//! process counts the same failures; [`LoginThrottle`] keeps them in memory, bounded by
//! [`ThrottlePolicy::max_keys`] so that an attacker spraying keys cannot grow it without limit.

use std::collections::BTreeMap;
use std::time::Duration;

use enigm_types::Timestamp;

/// Tuning for [`LoginThrottle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Consecutive failures allowed before any back-off.
    pub free_failures: u32,
    /// Back-off unit: failure number `n > free_failures` waits
    /// `base_delay * 2^(n - free_failures)`.
    pub base_delay: Duration,
    /// The longest back-off.
    pub max_delay: Duration,
    /// A key that has been quiet this long starts again from zero failures. Quiet means no
    /// failure and no back-off running: the period starts when the last back-off ends, so
    /// waiting out a back-off never also wipes the count.
    pub forget_after: Duration,
    /// The most keys tracked at once.
    pub max_keys: usize,
}

/// Tracks consecutive login failures per key and decides when the next attempt may be made.
///
/// Keys live in ordered maps rather than hash maps: lookups stay `O(log n)` whatever keys an
/// attacker chooses, and no per-process random hash seed is needed, which keeps the crate free
/// of OS randomness.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    entries: BTreeMap<String, Entry>,
    /// Every tracked key, ordered by the instant it went quiet (its last failure, or the end of
    /// its back-off if later), ties broken by insertion order. Keys to forget or evict are
    /// always at the front, so neither needs a scan of all keys.
    by_quiet_since: BTreeMap<(Timestamp, u64), String>,
    next_sequence: u64,
}

/// The key is in a back-off period and may try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed attempts, retry in {} seconds", self.whole_seconds())]
pub struct RetryAfter(pub Duration);

/// One key's state between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleEntry {
    /// Consecutive failures, this key's last one included.
    pub consecutive_failures: u32,
    /// The end of the running back-off, if any.
    pub blocked_until: Option<Timestamp>,
    /// When the key went quiet: the later of its last failure and the end of its back-off.
    pub quiet_since: Timestamp,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    state: ThrottleEntry,
    /// This entry's key in `by_quiet_since`: the state's `quiet_since` and a sequence number.
    order: (Timestamp, u64),
}

impl Default for ThrottlePolicy {
    /// 5 free failures, then 2 s, 4 s, 8 s, ... up to 15 minutes; forgotten after 15 quiet
    /// minutes; at most 100 000 keys.
    fn default() -> Self {
        ThrottlePolicy {
            free_failures: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(15 * 60),
            max_keys: 100_000,
        }
    }
}

impl ThrottlePolicy {
    /// The back-off started by failure number `failures` (counting from 1): none for the free
    /// failures, then `base_delay * 2^(failures - free_failures)`, capped at `max_delay`.
    pub fn delay_after(&self, failures: u32) -> Duration {
        let Some(exponent) = failures.checked_sub(self.free_failures).filter(|&e| e > 0) else {
            return Duration::ZERO;
        };
        1u32.checked_shl(exponent)
            .and_then(|factor| self.base_delay.checked_mul(factor))
            .map_or(self.max_delay, |delay| delay.min(self.max_delay))
    }

    /// Err(RetryAfter(duration)) while `entry` is in a back-off period.
    pub fn check(&self, entry: Option<&ThrottleEntry>, now: Timestamp) -> Result<(), RetryAfter> {
        match entry.and_then(|entry| entry.blocked_until) {
            Some(until) if until > now => Err(RetryAfter(until.duration_since(now))),
            _ => Ok(()),
        }
    }

    /// The entry after a failure at `now`. After `free_failures` failures, each further failure
    /// starts a back-off of `base_delay * 2^(n - free_failures)`, capped at `max_delay`, where
    /// `n` counts the consecutive failures including this one. A key quiet for `forget_after`
    /// starts again from zero.
    pub fn after_failure(&self, previous: Option<ThrottleEntry>, now: Timestamp) -> ThrottleEntry {
        let previous = previous.filter(|entry| !self.is_forgotten(entry, now));
        let consecutive_failures = previous
            .map_or(0, |entry| entry.consecutive_failures)
            .saturating_add(1);
        let delay = self.delay_after(consecutive_failures);
        let new_block = (!delay.is_zero()).then(|| now.saturating_add(delay));
        // A failure never shortens a back-off already running, even if the clock stepped back.
        let blocked_until = new_block.max(previous.and_then(|entry| entry.blocked_until));
        ThrottleEntry {
            consecutive_failures,
            blocked_until,
            quiet_since: blocked_until.map_or(now, |until| until.max(now)),
        }
    }

    /// Whether `entry` has been quiet for `forget_after`: its failures no longer count, and it
    /// may be dropped.
    pub fn is_forgotten(&self, entry: &ThrottleEntry, now: Timestamp) -> bool {
        now.duration_since(entry.quiet_since) >= self.forget_after
    }
}

impl LoginThrottle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        LoginThrottle {
            policy,
            entries: BTreeMap::new(),
            by_quiet_since: BTreeMap::new(),
            next_sequence: 0,
        }
    }

    pub fn policy(&self) -> &ThrottlePolicy {
        &self.policy
    }

    /// Err(RetryAfter(duration)) while the key is in a back-off period.
    pub fn check(&self, key: &str, now: Timestamp) -> Result<(), RetryAfter> {
        self.policy
            .check(self.entries.get(key).map(|entry| &entry.state), now)
    }

    /// Records a failure of `key` at `now` ([`ThrottlePolicy::after_failure`]).
    pub fn record_failure(&mut self, key: &str, now: Timestamp) {
        let previous = self.remove(key).map(|entry| entry.state);
        let state = self.policy.after_failure(previous, now);
        self.make_room(now);
        let order = (state.quiet_since, self.next_sequence);
        // Wrapping would need 2^64 failures; even then it only reorders eviction.
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.by_quiet_since.insert(order, key.to_owned());
        self.entries.insert(key.to_owned(), Entry { state, order });
    }

    /// Forgets the key's failures, ending any back-off.
    pub fn record_success(&mut self, key: &str) {
        self.remove(key);
    }

    pub fn tracked_keys(&self) -> usize {
        self.entries.len()
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        self.by_quiet_since.remove(&entry.order);
        Some(entry)
    }

    /// Makes room for one more key when the map is full: first drops every key quiet for longer
    /// than `forget_after` (they would start from zero anyway), then, if still full, the keys
    /// that went quiet longest ago, i.e. the least recently failed ones that are not in a
    /// back-off.
    fn make_room(&mut self, now: Timestamp) {
        // At least one key is always kept, so a zero limit cannot turn throttling off.
        let max_keys = self.policy.max_keys.max(1);
        if self.entries.len() < max_keys {
            return;
        }
        let forget_after = self.policy.forget_after;
        while let Some(entry) = self.by_quiet_since.first_entry() {
            let (quiet_since, _) = *entry.key();
            if now.duration_since(quiet_since) < forget_after {
                break;
            }
            let key = entry.remove();
            self.entries.remove(&key);
        }
        while self.entries.len() >= max_keys {
            let Some((_, key)) = self.by_quiet_since.pop_first() else {
                break;
            };
            self.entries.remove(&key);
        }
    }
}

impl RetryAfter {
    /// The wait in whole seconds, rounded up, as an HTTP `Retry-After` header wants it.
    pub fn whole_seconds(&self) -> u64 {
        let secs = self.0.as_secs();
        if self.0.subsec_nanos() > 0 {
            secs.saturating_add(1)
        } else {
            secs
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const T0: Timestamp = Timestamp::from_unix_millis(1_795_321_500_000);

    fn at(ms_after_t0: u64) -> Timestamp {
        T0.saturating_add(Duration::from_millis(ms_after_t0))
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn default_policy() {
        let policy = ThrottlePolicy::default();
        assert_eq!(policy.free_failures, 5);
        assert_eq!(policy.base_delay, secs(1));
        assert_eq!(policy.max_delay, secs(15 * 60));
        assert_eq!(policy.forget_after, secs(15 * 60));
        assert_eq!(policy.max_keys, 100_000);
    }

    #[test]
    fn delay_schedule() {
        let policy = ThrottlePolicy::default();
        let cases = [
            (0, 0),
            (1, 0),
            (5, 0),
            (6, 2),
            (7, 4),
            (8, 8),
            (14, 512),
            (15, 900),
            (16, 900),
            (37, 900),
            (38, 900),
            (u32::MAX, 900),
        ];
        for (failures, expected) in cases {
            assert_eq!(
                policy.delay_after(failures),
                secs(expected),
                "failure {failures}"
            );
        }
    }

    #[test]
    fn five_free_failures_then_exponential_back_off() {
        let mut throttle = LoginThrottle::new(ThrottlePolicy::default());
        let key = "user:alice";
        let mut now = T0;
        for _ in 0..5 {
            assert_eq!(throttle.check(key, now), Ok(()));
            throttle.record_failure(key, now);
            assert_eq!(throttle.check(key, now), Ok(()));
        }
        for expected in [2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900] {
            throttle.record_failure(key, now);
            assert_eq!(throttle.check(key, now), Err(RetryAfter(secs(expected))));
            let almost = now.saturating_add(secs(expected) - Duration::from_millis(1));
            assert_eq!(
                throttle.check(key, almost),
                Err(RetryAfter(Duration::from_millis(1)))
            );
            now = now.saturating_add(secs(expected));
            assert_eq!(
                throttle.check(key, now),
                Ok(()),
                "after waiting {expected} s"
            );
        }
        // Other keys are unaffected.
        assert_eq!(throttle.check("user:bob", now), Ok(()));
        assert_eq!(throttle.check("ip:192.0.2.1", now), Ok(()));
    }

    #[test]
    fn success_clears_the_key() {
        let mut throttle = LoginThrottle::new(ThrottlePolicy::default());
        for _ in 0..6 {
            throttle.record_failure("user:alice", T0);
        }
        assert!(throttle.check("user:alice", T0).is_err());
        throttle.record_success("user:alice");
        assert_eq!(throttle.check("user:alice", T0), Ok(()));
        assert_eq!(throttle.tracked_keys(), 0);
        // The count starts again: five more failures are free.
        for _ in 0..5 {
            throttle.record_failure("user:alice", T0);
        }
        assert_eq!(throttle.check("user:alice", T0), Ok(()));
        // Success for an unknown key is harmless.
        throttle.record_success("user:nobody");
        assert_eq!(throttle.tracked_keys(), 1);
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_period() {
        let policy = ThrottlePolicy::default();
        let mut throttle = LoginThrottle::new(policy.clone());
        for _ in 0..5 {
            throttle.record_failure("ip:192.0.2.1", T0);
        }
        // Just inside the window the count continues; the sixth failure is throttled.
        let inside = T0.saturating_add(policy.forget_after - Duration::from_millis(1));
        throttle.record_failure("ip:192.0.2.1", inside);
        assert_eq!(
            throttle.check("ip:192.0.2.1", inside),
            Err(RetryAfter(secs(2)))
        );

        let mut throttle = LoginThrottle::new(policy.clone());
        for _ in 0..5 {
            throttle.record_failure("ip:192.0.2.1", T0);
        }
        // After a quiet period the count starts from zero: this failure is the first.
        let after = T0.saturating_add(policy.forget_after);
        throttle.record_failure("ip:192.0.2.1", after);
        assert_eq!(throttle.check("ip:192.0.2.1", after), Ok(()));
        for _ in 0..4 {
            throttle.record_failure("ip:192.0.2.1", after);
        }
        assert_eq!(throttle.check("ip:192.0.2.1", after), Ok(()));
    }

    #[test]
    fn key_count_is_bounded_and_stale_keys_go_first() {
        let policy = ThrottlePolicy {
            max_keys: 4,
            ..ThrottlePolicy::default()
        };
        let mut throttle = LoginThrottle::new(policy);
        // A throttled key, then three stale keys.
        for _ in 0..6 {
            throttle.record_failure("user:target", at(0));
        }
        for i in 0..3 {
            throttle.record_failure(&format!("ip:stale-{i}"), at(0));
        }
        assert_eq!(throttle.tracked_keys(), 4);
        // Twenty minutes later the stale keys are all dropped at once to make room; the
        // throttled key has also been quiet, so it goes too.
        let later = at(20 * 60 * 1000);
        throttle.record_failure("ip:new", later);
        assert_eq!(throttle.tracked_keys(), 1);

        // With no stale keys, the least recently failed key is evicted.
        for (i, key) in ["a", "b", "c"].iter().enumerate() {
            throttle.record_failure(
                key,
                later.saturating_add(Duration::from_millis(i as u64 + 1)),
            );
        }
        assert_eq!(throttle.tracked_keys(), 4);
        throttle.record_failure("d", later.saturating_add(secs(1)));
        assert_eq!(throttle.tracked_keys(), 4);
        assert!(!throttle.entries.contains_key("ip:new"));
        for key in ["a", "b", "c", "d"] {
            assert!(throttle.entries.contains_key(key), "{key}");
        }
        // Updating a tracked key does not evict anything.
        throttle.record_failure("a", later.saturating_add(secs(2)));
        assert_eq!(throttle.tracked_keys(), 4);
    }

    #[test]
    fn keys_in_back_off_survive_the_stale_sweep() {
        // A back-off longer than the forget period keeps a key through the sweep of stale keys.
        let policy = ThrottlePolicy {
            max_keys: 2,
            forget_after: secs(60),
            max_delay: secs(3600),
            base_delay: secs(1000),
            ..ThrottlePolicy::default()
        };
        let mut throttle = LoginThrottle::new(policy);
        for _ in 0..6 {
            throttle.record_failure("user:target", at(0));
        }
        throttle.record_failure("ip:stale", at(0));
        let later = at(120 * 1000);
        throttle.record_failure("ip:new", later);
        assert!(throttle.entries.contains_key("user:target"));
        assert!(!throttle.entries.contains_key("ip:stale"));
        assert!(throttle.check("user:target", later).is_err());
    }

    #[test]
    fn waiting_out_a_back_off_does_not_wipe_the_count() {
        let policy = ThrottlePolicy::default();
        let mut throttle = LoginThrottle::new(policy.clone());
        for _ in 0..6 {
            throttle.record_failure("user:alice", T0);
        }
        // The back-off ends at T0 + 2 s; the quiet period is counted from there.
        let quiet_end = T0
            .saturating_add(secs(2))
            .saturating_add(policy.forget_after);
        let almost = quiet_end.saturating_sub(Duration::from_millis(1));
        throttle.record_failure("user:alice", almost);
        assert_eq!(
            throttle.check("user:alice", almost),
            Err(RetryAfter(secs(4)))
        );

        let mut throttle = LoginThrottle::new(policy);
        for _ in 0..6 {
            throttle.record_failure("user:alice", T0);
        }
        throttle.record_failure("user:alice", quiet_end);
        assert_eq!(throttle.check("user:alice", quiet_end), Ok(()));
    }

    #[test]
    fn eviction_prefers_keys_not_in_back_off() {
        let policy = ThrottlePolicy {
            max_keys: 2,
            ..ThrottlePolicy::default()
        };
        let mut throttle = LoginThrottle::new(policy);
        // "user:target" failed first but is blocked until T0 + 2 s; "ip:other" failed later
        // and is not blocked, so it has been quiet longer and is evicted first.
        for _ in 0..6 {
            throttle.record_failure("user:target", at(0));
        }
        throttle.record_failure("ip:other", at(1_000));
        throttle.record_failure("ip:new", at(1_500));
        assert!(throttle.entries.contains_key("user:target"));
        assert!(!throttle.entries.contains_key("ip:other"));
        assert_eq!(
            throttle.check("user:target", at(1_500)),
            Err(RetryAfter(Duration::from_millis(500)))
        );
    }

    #[test]
    fn zero_max_keys_still_tracks_one_key() {
        let mut throttle = LoginThrottle::new(ThrottlePolicy {
            max_keys: 0,
            ..ThrottlePolicy::default()
        });
        for _ in 0..6 {
            throttle.record_failure("user:alice", T0);
        }
        assert_eq!(throttle.tracked_keys(), 1);
        assert!(throttle.check("user:alice", T0).is_err());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let cases = [
            (0, 0),
            (1, 1),
            (999, 1),
            (1000, 1),
            (1001, 2),
            (900_000, 900),
        ];
        for (millis, expected) in cases {
            assert_eq!(
                RetryAfter(Duration::from_millis(millis)).whole_seconds(),
                expected,
                "{millis} ms"
            );
        }
        assert_eq!(
            RetryAfter(secs(2)).to_string(),
            "too many failed attempts, retry in 2 seconds"
        );
    }

    #[test]
    fn clock_going_backwards_does_not_panic_or_unblock_early() {
        let mut throttle = LoginThrottle::new(ThrottlePolicy::default());
        for _ in 0..6 {
            throttle.record_failure("user:alice", at(10_000));
        }
        assert_eq!(
            throttle.check("user:alice", at(0)),
            Err(RetryAfter(secs(12)))
        );
        // The seventh failure's 4 s back-off, counted from the earlier "now", would end sooner
        // than the one already running; the running one stands.
        throttle.record_failure("user:alice", at(0));
        assert_eq!(
            throttle.check("user:alice", at(0)),
            Err(RetryAfter(secs(12)))
        );
        throttle.record_failure("user:alice", at(0));
        assert_eq!(
            throttle.check("user:alice", at(0)),
            Err(RetryAfter(secs(12)))
        );
        // The count kept going (7, 8, now 9 failures): this back-off is 2^4 = 16 s from now.
        throttle.record_failure("user:alice", at(12_000));
        assert_eq!(
            throttle.check("user:alice", at(12_000)),
            Err(RetryAfter(secs(16)))
        );
    }

    proptest! {
        #[test]
        fn key_count_never_exceeds_the_limit(
            max_keys in 1usize..8,
            events in proptest::collection::vec((0u8..20, 0u64..3_000_000, any::<bool>()), 0..200),
        ) {
            let mut throttle = LoginThrottle::new(ThrottlePolicy { max_keys, ..ThrottlePolicy::default() });
            let mut now = T0;
            for (key, step_ms, success) in events {
                now = now.saturating_add(Duration::from_millis(step_ms));
                let key = format!("user:{key}");
                if success {
                    throttle.record_success(&key);
                    prop_assert_eq!(throttle.check(&key, now), Ok(()));
                } else {
                    throttle.record_failure(&key, now);
                    // The key just recorded is always kept.
                    prop_assert!(throttle.entries.contains_key(&key));
                }
                prop_assert!(throttle.tracked_keys() <= max_keys);
                prop_assert_eq!(throttle.entries.len(), throttle.by_quiet_since.len());
            }
        }

        /// The pure policy, fed a key's stored entry the way Command's database feeds it, decides
        /// exactly as the in-memory book does.
        #[test]
        fn the_pure_policy_decides_as_the_book_does(
            events in proptest::collection::vec((0u64..1_200_000, any::<bool>()), 0..60),
        ) {
            let policy = ThrottlePolicy::default();
            let mut throttle = LoginThrottle::new(policy.clone());
            let mut stored: Option<ThrottleEntry> = None;
            let mut now = T0;
            for (step_ms, success) in events {
                now = now.saturating_add(Duration::from_millis(step_ms));
                if success {
                    throttle.record_success("k");
                    stored = None;
                } else {
                    throttle.record_failure("k", now);
                    stored = Some(policy.after_failure(stored, now));
                }
                prop_assert_eq!(policy.check(stored.as_ref(), now), throttle.check("k", now));
                prop_assert_eq!(stored, throttle.entries.get("k").map(|entry| entry.state));
            }
        }

        #[test]
        fn back_off_never_exceeds_the_cap(failures in 0u32..100, now_ms in 0u64..10_000) {
            let mut throttle = LoginThrottle::new(ThrottlePolicy::default());
            let now = at(now_ms);
            for _ in 0..failures {
                throttle.record_failure("k", now);
            }
            match throttle.check("k", now) {
                Ok(()) => prop_assert!(failures <= 5),
                Err(RetryAfter(wait)) => {
                    prop_assert!(failures > 5);
                    prop_assert!(wait <= secs(15 * 60));
                    prop_assert!(wait >= secs(2));
                }
            }
        }
    }
}
