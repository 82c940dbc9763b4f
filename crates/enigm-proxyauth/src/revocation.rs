//! The revocation list Command publishes: the ids of credentials that have not expired but whose
//! device no longer qualifies (revoked, restricted, retired, `INACTIVE`, told to retire or wipe),
//! signed with the proxy-credential key and dated, so a proxy can tell a current list from an
//! old one replayed to it.
//!
//! ```text
//! version (1 = 0x01) ‖ issued at (i64 ms, big-endian) ‖ count (u32) ‖ ids (16 each, ascending)
//!   ‖ Ed25519 signature (64)
//! ```
//!
//! The signature covers `"enigm proxy revocations v1\n"` followed by every byte before it.

use std::collections::BTreeSet;

use enigm_crypto::{ED25519_SIGNATURE_LEN, Ed25519SigningKey, Ed25519VerifyingKey};
use enigm_types::Timestamp;

use crate::credential::{CREDENTIAL_ID_LEN, CredentialId};
use crate::wire::{ParseError, Reader, put_timestamp};

/// The most ids a list may hold (4 MiB of ids).
pub const MAX_REVOKED: usize = 262_144;
const VERSION: u8 = 1;
const DOMAIN: &[u8] = b"enigm proxy revocations v1\n";

/// A signed revocation list, as Command publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationList {
    issued_at: Timestamp,
    revoked: BTreeSet<CredentialId>,
    signature: [u8; ED25519_SIGNATURE_LEN],
}

/// A revocation list whose signature verified under the pinned key; only
/// [`RevocationList::verify`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRevocations {
    pub(crate) issued_at: Timestamp,
    pub(crate) revoked: BTreeSet<CredentialId>,
}

impl VerifiedRevocations {
    pub fn issued_at(&self) -> Timestamp {
        self.issued_at
    }

    pub fn contains(&self, id: CredentialId) -> bool {
        self.revoked.contains(&id)
    }

    pub fn len(&self) -> usize {
        self.revoked.len()
    }

    pub fn is_empty(&self) -> bool {
        self.revoked.is_empty()
    }
}

/// Why a revocation list is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RevocationError {
    #[error("the revocation list is malformed: {0}")]
    Malformed(#[from] ParseError),
    #[error("the revocation list's signature does not verify under the pinned key")]
    Signature,
    #[error("the revocation list is older than the one held")]
    Older,
}

impl RevocationList {
    /// Signs the list of `revoked` ids as of `issued_at` (Command's side). At most
    /// [`MAX_REVOKED`] ids are listed; Command keeps fewer live credentials than that.
    pub fn sign(
        key: &Ed25519SigningKey,
        issued_at: Timestamp,
        revoked: impl IntoIterator<Item = CredentialId>,
    ) -> RevocationList {
        let revoked: BTreeSet<CredentialId> = revoked.into_iter().take(MAX_REVOKED).collect();
        let signature = key.sign(&signing_input(issued_at, &revoked));
        RevocationList {
            issued_at,
            revoked,
            signature,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = body_bytes(self.issued_at, &self.revoked);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Parses the encoding: ids strictly ascending (one spelling per set), at most
    /// [`MAX_REVOKED`] of them, checked before anything is allocated for them.
    pub fn parse(bytes: &[u8]) -> Result<RevocationList, ParseError> {
        let mut reader = Reader::new(bytes);
        reader.version(VERSION)?;
        let issued_at = reader.timestamp()?;
        let count = usize::try_from(reader.u32()?).map_err(|_| ParseError::TooLong)?;
        if count > MAX_REVOKED {
            return Err(ParseError::TooLong);
        }
        let expected = 1 + 8 + 4 + count * CREDENTIAL_ID_LEN + ED25519_SIGNATURE_LEN;
        if bytes.len() != expected {
            return Err(if bytes.len() > expected {
                ParseError::Trailing
            } else {
                ParseError::Truncated
            });
        }
        let mut revoked = BTreeSet::new();
        let mut previous: Option<CredentialId> = None;
        for _ in 0..count {
            let id = CredentialId::from_bytes(reader.array()?);
            if previous.is_some_and(|previous| previous >= id) {
                return Err(ParseError::Field("revoked ids"));
            }
            previous = Some(id);
            revoked.insert(id);
        }
        let signature = reader.array()?;
        reader.finish()?;
        Ok(RevocationList {
            issued_at,
            revoked,
            signature,
        })
    }

    /// Checks the signature under the pinned proxy-credential key.
    pub fn verify(self, key: &Ed25519VerifyingKey) -> Result<VerifiedRevocations, RevocationError> {
        key.verify(
            &signing_input(self.issued_at, &self.revoked),
            &self.signature,
        )
        .map_err(|_| RevocationError::Signature)?;
        Ok(VerifiedRevocations {
            issued_at: self.issued_at,
            revoked: self.revoked,
        })
    }

    pub fn issued_at(&self) -> Timestamp {
        self.issued_at
    }
}

fn body_bytes(issued_at: Timestamp, revoked: &BTreeSet<CredentialId>) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(13 + revoked.len() * CREDENTIAL_ID_LEN + ED25519_SIGNATURE_LEN);
    out.push(VERSION);
    put_timestamp(&mut out, issued_at);
    // INVARIANT: `sign` and `parse` keep at most MAX_REVOKED ids, which fits in a u32.
    let count = u32::try_from(revoked.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for id in revoked {
        out.extend_from_slice(&id.to_bytes());
    }
    out
}

fn signing_input(issued_at: Timestamp, revoked: &BTreeSet<CredentialId>) -> Vec<u8> {
    let mut input = DOMAIN.to_vec();
    input.extend_from_slice(&body_bytes(issued_at, revoked));
    input
}
