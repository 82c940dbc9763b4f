//! Decoding the Merkle-log views a client receives into the proof types of `enigm-auditlog`,
//! so that a client verifies what it got rather than trusting it. Every text is untrusted:
//! decoding is bounded and never panics.

use enigm_auditlog::{ConsistencyProof, Hash, InclusionProof, leaf_hash};

use crate::{AuditConsistencyView, AuditInclusionView, AuditLeafView};

/// A proof path longer than this cannot belong to a tree of at most 2^64 leaves (a consistency
/// proof has at most about 2 * 64 hashes).
pub const MAX_PROOF_HASHES: usize = 130;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofDecodeError {
    #[error("leaf {index}: leaf hash is not standard base64 of 32 bytes")]
    LeafHash { index: u64 },
    #[error("proof hash {position} is not standard base64 of 32 bytes")]
    PathHash { position: usize },
    #[error("proof has {0} hashes, more than any tree needs")]
    PathTooLong(usize),
}

/// Decodes a proof path.
pub fn decode_path(path: &[String]) -> Result<Vec<Hash>, ProofDecodeError> {
    if path.len() > MAX_PROOF_HASHES {
        return Err(ProofDecodeError::PathTooLong(path.len()));
    }
    path.iter()
        .enumerate()
        .map(|(position, text)| {
            Hash::from_base64(text).map_err(|_| ProofDecodeError::PathHash { position })
        })
        .collect()
}

/// What a leaf's body says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyCheck {
    /// The body hashes to the leaf.
    Matches,
    /// The body was purged under a recorded retention purge.
    Purged,
    /// The body does not hash to the leaf.
    Mismatch,
    /// The body is gone and no purge is recorded.
    Missing,
}

impl AuditLeafView {
    pub fn decode_leaf_hash(&self) -> Result<Hash, ProofDecodeError> {
        Hash::from_base64(&self.leaf_hash)
            .map_err(|_| ProofDecodeError::LeafHash { index: self.index })
    }

    /// Checks the body against the leaf hash.
    pub fn check_body(&self) -> Result<BodyCheck, ProofDecodeError> {
        let leaf = self.decode_leaf_hash()?;
        Ok(match (&self.body, self.purged) {
            (Some(body), _) if leaf_hash(body.as_bytes()) == leaf => BodyCheck::Matches,
            (Some(_), _) => BodyCheck::Mismatch,
            (None, true) => BodyCheck::Purged,
            (None, false) => BodyCheck::Missing,
        })
    }
}

impl AuditInclusionView {
    /// The leaf hash and the inclusion proof, ready for
    /// [`enigm_auditlog::InclusionProof::verify`] against a checkpoint's root.
    pub fn decode(&self) -> Result<(Hash, InclusionProof), ProofDecodeError> {
        let leaf = self.leaf.decode_leaf_hash()?;
        let path = decode_path(&self.path)?;
        Ok((
            leaf,
            InclusionProof::new(self.leaf.index, self.tree_size, path),
        ))
    }
}

impl AuditConsistencyView {
    /// The consistency proof, ready for [`enigm_auditlog::ConsistencyProof::verify`].
    pub fn decode(&self) -> Result<ConsistencyProof, ProofDecodeError> {
        let path = decode_path(&self.path)?;
        Ok(ConsistencyProof::new(self.first, self.second, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(body: Option<&str>, hash_of: &str, purged: bool) -> AuditLeafView {
        AuditLeafView {
            index: 7,
            leaf_hash: leaf_hash(hash_of.as_bytes()).to_base64(),
            body: body.map(str::to_owned),
            purged,
        }
    }

    #[test]
    fn bodies_are_checked_against_their_leaf() {
        assert_eq!(
            leaf(Some("a"), "a", false).check_body(),
            Ok(BodyCheck::Matches)
        );
        assert_eq!(
            leaf(Some("b"), "a", false).check_body(),
            Ok(BodyCheck::Mismatch)
        );
        assert_eq!(leaf(None, "a", true).check_body(), Ok(BodyCheck::Purged));
        assert_eq!(leaf(None, "a", false).check_body(), Ok(BodyCheck::Missing));
        let mut bad = leaf(None, "a", false);
        bad.leaf_hash = "not base64".to_owned();
        assert_eq!(
            bad.check_body(),
            Err(ProofDecodeError::LeafHash { index: 7 })
        );
    }

    #[test]
    fn paths_are_bounded_and_strict() {
        let hash = leaf_hash(b"x").to_base64();
        assert_eq!(
            decode_path(&[hash.clone(), hash.clone()]).map(|p| p.len()),
            Ok(2)
        );
        assert_eq!(
            decode_path(&vec![hash.clone(); MAX_PROOF_HASHES + 1]),
            Err(ProofDecodeError::PathTooLong(MAX_PROOF_HASHES + 1))
        );
        assert_eq!(
            decode_path(&[hash, "AAAA".to_owned()]),
            Err(ProofDecodeError::PathHash { position: 1 })
        );
    }
}
