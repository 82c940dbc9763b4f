//! Single-use attestation nonces with a short lifetime and bounded memory.
//!
//! A nonce is issued to one device (its handle) for one purpose and is taken at most once: the
//! first evidence that names it removes it, whatever the verdict, so a second use is a replay.
//! The book holds at most `capacity` nonces; when full, expired ones are dropped first and, if it
//! is still full, the request is refused (fail closed) rather than evicting a live nonce.
//!
//! Nonces live in memory: a restart forgets them, which only makes outstanding challenges fail.
//! Several Command instances behind one address would need them in the database instead.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use enigm_api::attestation::AttestationPurpose;
use enigm_attest::challenge::NONCE_LEN;
use enigm_types::{DeviceHandle, Timestamp};

/// The default lifetime of a nonce.
pub const DEFAULT_NONCE_TTL: Duration = Duration::from_secs(60);
/// The default number of outstanding nonces (about 100 bytes each).
pub const DEFAULT_NONCE_CAPACITY: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Issued {
    handle: DeviceHandle,
    purpose: AttestationPurpose,
    expires_at: Timestamp,
}

/// What taking a nonce found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceUse {
    /// Issued to this device for this purpose, within its lifetime: now spent.
    Fresh,
    /// Issued to this device for this purpose, but past its lifetime: now forgotten.
    Expired,
    /// Never issued, already used, or issued to another device or for another purpose.
    Unknown,
}

/// The book is full of live nonces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many attestation challenges are outstanding; try again shortly")]
pub struct NonceBookFull;

pub struct NonceBook {
    issued: Mutex<HashMap<[u8; NONCE_LEN], Issued>>,
    capacity: usize,
    ttl: Duration,
}

impl Default for NonceBook {
    fn default() -> Self {
        NonceBook::new(DEFAULT_NONCE_CAPACITY, DEFAULT_NONCE_TTL)
    }
}

impl NonceBook {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        NonceBook {
            issued: Mutex::new(HashMap::new()),
            capacity,
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Records `nonce` (fresh random bytes from the caller) for `handle` and `purpose`; answers
    /// its expiry.
    pub fn issue(
        &self,
        nonce: [u8; NONCE_LEN],
        handle: DeviceHandle,
        purpose: AttestationPurpose,
        now: Timestamp,
    ) -> Result<Timestamp, NonceBookFull> {
        let mut issued = self.lock();
        if issued.len() >= self.capacity {
            issued.retain(|_, entry| entry.expires_at > now);
        }
        if issued.len() >= self.capacity {
            return Err(NonceBookFull);
        }
        let expires_at = now.saturating_add(self.ttl);
        issued.insert(
            nonce,
            Issued {
                handle,
                purpose,
                expires_at,
            },
        );
        Ok(expires_at)
    }

    /// Spends `nonce` if it was issued to `handle` for `purpose`. A nonce issued to another
    /// device stays where it is: naming it proves nothing but that someone saw it.
    pub fn take(
        &self,
        nonce: &[u8; NONCE_LEN],
        handle: DeviceHandle,
        purpose: AttestationPurpose,
        now: Timestamp,
    ) -> NonceUse {
        let mut issued = self.lock();
        let Some(entry) = issued.get(nonce).copied() else {
            return NonceUse::Unknown;
        };
        if entry.handle != handle || entry.purpose != purpose {
            return NonceUse::Unknown;
        }
        issued.remove(nonce);
        if now > entry.expires_at {
            NonceUse::Expired
        } else {
            NonceUse::Fresh
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; NONCE_LEN], Issued>> {
        // A panic while holding the lock cannot leave the map half-updated (each operation is
        // one insert or remove), so a poisoned lock is still safe to use.
        self.issued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

    fn handle(byte: u8) -> DeviceHandle {
        DeviceHandle::from_digest(&[byte; 20])
    }

    #[test]
    fn a_nonce_is_taken_once_by_its_device_for_its_purpose() {
        let book = NonceBook::default();
        let purpose = AttestationPurpose::Enrollment;
        book.issue([1; NONCE_LEN], handle(1), purpose, T0).unwrap();
        assert_eq!(
            book.take(&[1; NONCE_LEN], handle(2), purpose, T0),
            NonceUse::Unknown
        );
        assert_eq!(
            book.take(
                &[1; NONCE_LEN],
                handle(1),
                AttestationPurpose::Attestation,
                T0
            ),
            NonceUse::Unknown
        );
        assert_eq!(
            book.take(&[1; NONCE_LEN], handle(1), purpose, T0),
            NonceUse::Fresh
        );
        assert_eq!(
            book.take(&[1; NONCE_LEN], handle(1), purpose, T0),
            NonceUse::Unknown
        );
    }

    #[test]
    fn an_expired_nonce_is_stale_and_forgotten() {
        let book = NonceBook::new(10, Duration::from_secs(60));
        let purpose = AttestationPurpose::Attestation;
        book.issue([1; NONCE_LEN], handle(1), purpose, T0).unwrap();
        let late = T0.saturating_add(Duration::from_secs(61));
        assert_eq!(
            book.take(&[1; NONCE_LEN], handle(1), purpose, late),
            NonceUse::Expired
        );
        assert_eq!(book.len(), 0);
    }

    #[test]
    fn a_full_book_drops_expired_nonces_and_then_refuses() {
        let book = NonceBook::new(2, Duration::from_secs(60));
        let purpose = AttestationPurpose::Attestation;
        book.issue([1; NONCE_LEN], handle(1), purpose, T0).unwrap();
        book.issue([2; NONCE_LEN], handle(1), purpose, T0).unwrap();
        assert_eq!(
            book.issue([3; NONCE_LEN], handle(1), purpose, T0),
            Err(NonceBookFull)
        );
        let later = T0.saturating_add(Duration::from_secs(61));
        book.issue([3; NONCE_LEN], handle(1), purpose, later)
            .unwrap();
        assert_eq!(book.len(), 1);
    }
}
