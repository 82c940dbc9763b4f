//! PIN lockout: after five consecutive wrong PINs the account is locked, so a six-digit PIN
//! cannot be brute-forced. How a locked account is unlocked is the server's decision.

/// Consecutive wrong PINs after which an account is locked.
pub const MAX_CONSECUTIVE_PIN_FAILURES: u32 = 5;

/// The PIN failure counter of one account, as stored by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PinAttempts {
    consecutive_failures: u32,
}

impl PinAttempts {
    pub fn new(consecutive_failures: u32) -> Self {
        PinAttempts {
            consecutive_failures,
        }
    }

    /// Locked once [`MAX_CONSECUTIVE_PIN_FAILURES`] wrong PINs were entered in a row. A locked
    /// account must not even have its PIN checked: a correct guess must not unlock it.
    pub fn is_locked(&self) -> bool {
        self.consecutive_failures >= MAX_CONSECUTIVE_PIN_FAILURES
    }

    pub fn after_failure(self) -> Self {
        PinAttempts {
            consecutive_failures: self.consecutive_failures.saturating_add(1),
        }
    }

    pub fn after_success(self) -> Self {
        PinAttempts {
            consecutive_failures: 0,
        }
    }

    /// Wrong PINs left before the account locks.
    pub fn remaining(&self) -> u32 {
        MAX_CONSECUTIVE_PIN_FAILURES.saturating_sub(self.consecutive_failures)
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn locks_after_five_consecutive_failures() {
        let mut attempts = PinAttempts::new(0);
        let expected_remaining = [5, 4, 3, 2, 1, 0];
        for (failures, &remaining) in expected_remaining.iter().enumerate() {
            assert_eq!(attempts.consecutive_failures() as usize, failures);
            assert_eq!(attempts.remaining(), remaining);
            assert_eq!(
                attempts.is_locked(),
                failures >= 5,
                "after {failures} failures"
            );
            attempts = attempts.after_failure();
        }
        assert!(attempts.is_locked());
        assert_eq!(attempts.remaining(), 0);
    }

    #[test]
    fn success_resets_the_counter() {
        let attempts = PinAttempts::new(4).after_success();
        assert_eq!(attempts, PinAttempts::new(0));
        assert_eq!(attempts.remaining(), 5);
        // Four failures, a success, four more: never locked.
        let mut attempts = PinAttempts::default();
        for _ in 0..4 {
            attempts = attempts.after_failure();
        }
        attempts = attempts.after_success();
        for _ in 0..4 {
            attempts = attempts.after_failure();
        }
        assert!(!attempts.is_locked());
        assert_eq!(attempts.remaining(), 1);
    }

    #[test]
    fn counter_saturates() {
        let attempts = PinAttempts::new(u32::MAX).after_failure();
        assert_eq!(attempts.consecutive_failures(), u32::MAX);
        assert!(attempts.is_locked());
        assert_eq!(attempts.remaining(), 0);
    }

    proptest! {
        #[test]
        fn locked_exactly_when_no_attempts_remain(failures in any::<u32>()) {
            let attempts = PinAttempts::new(failures);
            prop_assert_eq!(attempts.is_locked(), attempts.remaining() == 0);
            prop_assert_eq!(attempts.is_locked(), failures >= MAX_CONSECUTIVE_PIN_FAILURES);
        }
    }
}
