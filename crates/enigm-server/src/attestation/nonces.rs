//! Single-use attestation nonces with a short lifetime and a bounded number outstanding.
//!
//! A nonce is issued to one device (its handle) for one purpose and is taken at most once: the
//! first evidence that names it removes it, whatever the verdict, so a second use is a replay.
//! At most `capacity` nonces are outstanding; when full, expired ones are dropped first and, if
//! it is still full, the request is refused (fail closed) rather than evicting a live nonce.
//!
//! Nonces live in the database (`Store::issue_attestation_nonce`,
//! `WriteTx::take_attestation_nonce`), not in a process's memory: a challenge issued by one
//! Command process is answered at another, and of two uses of one nonce, at any processes,
//! exactly one takes it. The nonce is taken in the transaction that records the attestation, so
//! the outcome and the spent nonce are stored together.

use std::time::Duration;

use enigm_api::attestation::AttestationPurpose;
use enigm_attest::challenge::NONCE_LEN;
use enigm_store::{Store, StoreResult, WriteTx};
use enigm_types::{DeviceHandle, Timestamp};

/// The default lifetime of a nonce.
pub const DEFAULT_NONCE_TTL: Duration = Duration::from_secs(60);
/// The default number of outstanding nonces (about 100 bytes each).
pub const DEFAULT_NONCE_CAPACITY: usize = 100_000;

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

/// The deployment's outstanding nonces, in the database.
pub struct NonceBook {
    store: Store,
    capacity: usize,
    ttl: Duration,
}

impl NonceBook {
    pub fn new(store: Store, capacity: usize, ttl: Duration) -> Self {
        NonceBook {
            store,
            capacity,
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Records `nonce` (fresh random bytes from the caller) for `handle` and `purpose`; answers
    /// its expiry, or [`NonceBookFull`].
    pub async fn issue(
        &self,
        nonce: [u8; NONCE_LEN],
        handle: DeviceHandle,
        purpose: AttestationPurpose,
        now: Timestamp,
    ) -> StoreResult<Result<Timestamp, NonceBookFull>> {
        let expires_at = now.saturating_add(self.ttl);
        let issued = self
            .store
            .issue_attestation_nonce(
                &nonce,
                &handle,
                purpose.as_str(),
                expires_at,
                now,
                u64::try_from(self.capacity).unwrap_or(u64::MAX),
            )
            .await?;
        Ok(if issued {
            Ok(expires_at)
        } else {
            Err(NonceBookFull)
        })
    }

    /// Spends `nonce` in `tx` if it was issued to `handle` for `purpose`. A nonce issued to
    /// another device stays where it is: naming it proves nothing but that someone saw it.
    pub async fn take(
        &self,
        tx: &mut WriteTx<'_>,
        nonce: &[u8; NONCE_LEN],
        handle: DeviceHandle,
        purpose: AttestationPurpose,
        now: Timestamp,
    ) -> StoreResult<NonceUse> {
        let taken = tx
            .take_attestation_nonce(nonce, &handle, purpose.as_str())
            .await?;
        Ok(match taken {
            None => NonceUse::Unknown,
            Some(expires_at) if now > expires_at => NonceUse::Expired,
            Some(_) => NonceUse::Fresh,
        })
    }

    /// Forgets the nonces that expired before `now`.
    pub async fn purge_expired(&self, now: Timestamp) -> StoreResult<u64> {
        self.store.purge_expired_attestation_nonces(now).await
    }
}

#[cfg(test)]
mod tests {
    use enigm_test_support::{Backend, TestDatabase, backend_tests};

    use super::*;

    const T0: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

    backend_tests!(
        a_nonce_is_taken_once_by_its_device_for_its_purpose,
        an_expired_nonce_is_stale_and_forgotten,
        a_full_book_drops_expired_nonces_and_then_refuses,
    );

    fn handle(byte: u8) -> DeviceHandle {
        DeviceHandle::from_digest(&[byte; 20])
    }

    async fn book(backend: Backend, capacity: usize) -> (TestDatabase, NonceBook) {
        let db = TestDatabase::new(backend).await.unwrap();
        let store = Store::connect(db.url()).await.unwrap();
        (db, NonceBook::new(store, capacity, DEFAULT_NONCE_TTL))
    }

    async fn take(
        book: &NonceBook,
        nonce: u8,
        device: u8,
        purpose: AttestationPurpose,
        now: Timestamp,
    ) -> NonceUse {
        let mut tx = book.store.begin().await.unwrap();
        let taken = book
            .take(&mut tx, &[nonce; NONCE_LEN], handle(device), purpose, now)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        taken
    }

    async fn a_nonce_is_taken_once_by_its_device_for_its_purpose(backend: Backend) {
        let (_db, book) = book(backend, DEFAULT_NONCE_CAPACITY).await;
        let purpose = AttestationPurpose::Enrollment;
        book.issue([1; NONCE_LEN], handle(1), purpose, T0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(take(&book, 1, 2, purpose, T0).await, NonceUse::Unknown);
        assert_eq!(
            take(&book, 1, 1, AttestationPurpose::Attestation, T0).await,
            NonceUse::Unknown
        );
        assert_eq!(take(&book, 1, 1, purpose, T0).await, NonceUse::Fresh);
        assert_eq!(take(&book, 1, 1, purpose, T0).await, NonceUse::Unknown);
    }

    async fn an_expired_nonce_is_stale_and_forgotten(backend: Backend) {
        let (_db, book) = book(backend, 10).await;
        let purpose = AttestationPurpose::Attestation;
        book.issue([1; NONCE_LEN], handle(1), purpose, T0)
            .await
            .unwrap()
            .unwrap();
        let late = T0.saturating_add(Duration::from_secs(61));
        assert_eq!(take(&book, 1, 1, purpose, late).await, NonceUse::Expired);
        assert_eq!(take(&book, 1, 1, purpose, T0).await, NonceUse::Unknown);
    }

    async fn a_full_book_drops_expired_nonces_and_then_refuses(backend: Backend) {
        let (_db, book) = book(backend, 2).await;
        let purpose = AttestationPurpose::Attestation;
        let issue =
            |nonce: u8, now: Timestamp| book.issue([nonce; NONCE_LEN], handle(1), purpose, now);
        issue(1, T0).await.unwrap().unwrap();
        issue(2, T0).await.unwrap().unwrap();
        assert_eq!(issue(3, T0).await.unwrap(), Err(NonceBookFull));
        let later = T0.saturating_add(Duration::from_secs(61));
        issue(3, later).await.unwrap().unwrap();
        assert_eq!(book.purge_expired(later).await.unwrap(), 0);
        assert_eq!(take(&book, 1, 1, purpose, later).await, NonceUse::Unknown);
        assert_eq!(take(&book, 3, 1, purpose, later).await, NonceUse::Fresh);
    }
}
