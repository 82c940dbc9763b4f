//! The replay cache: every (credential id, nonce) pair a proxy accepted, kept until a proof
//! carrying it could no longer be fresh. Bounded: when full of live entries it refuses new
//! proofs (fail closed) rather than forget one that could still be replayed.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use enigm_types::Timestamp;

use crate::credential::{CREDENTIAL_ID_LEN, CredentialId};
use crate::proof::PROOF_NONCE_LEN;

type Key = [u8; CREDENTIAL_ID_LEN + PROOF_NONCE_LEN];

/// Why the cache refused a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("the proof was already used")]
    Replayed,
    #[error("too many live proofs are remembered; try again shortly")]
    Full,
}

/// Remembered proofs, each until its expiry.
#[derive(Debug)]
pub struct ReplayCache {
    capacity: usize,
    seen: HashSet<Key>,
    by_expiry: BinaryHeap<Reverse<(Timestamp, Key)>>,
}

impl ReplayCache {
    /// A cache of at most `capacity` live proofs.
    pub fn new(capacity: usize) -> Self {
        ReplayCache {
            capacity,
            seen: HashSet::new(),
            by_expiry: BinaryHeap::new(),
        }
    }

    /// Records the proof `(id, nonce)` until `expires_at`, or refuses it if it was seen (and has
    /// not expired by `now`) or the cache is full of live proofs.
    pub fn insert(
        &mut self,
        id: CredentialId,
        nonce: &[u8; PROOF_NONCE_LEN],
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), ReplayError> {
        self.forget_expired(now);
        let mut key = [0u8; CREDENTIAL_ID_LEN + PROOF_NONCE_LEN];
        let (head, tail) = key.split_at_mut(CREDENTIAL_ID_LEN);
        head.copy_from_slice(&id.to_bytes());
        tail.copy_from_slice(nonce);
        if self.seen.contains(&key) {
            return Err(ReplayError::Replayed);
        }
        if self.seen.len() >= self.capacity {
            return Err(ReplayError::Full);
        }
        self.seen.insert(key);
        self.by_expiry.push(Reverse((expires_at, key)));
        Ok(())
    }

    /// Live proofs remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Forgets the proofs that expired before `now`.
    fn forget_expired(&mut self, now: Timestamp) {
        while let Some(Reverse((expires_at, key))) = self.by_expiry.peek().copied() {
            if expires_at >= now {
                break;
            }
            self.by_expiry.pop();
            self.seen.remove(&key);
        }
    }
}
