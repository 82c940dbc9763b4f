//! Proof verification for clients that hold no tree: RFC 9162 §2.1.3.2 (inclusion) and
//! §2.1.4.2 (consistency), step by step, over hashes and sizes received from elsewhere.
//!
//! The algorithms are the RFC's. Before running them, the proof's length is checked against the
//! one the sizes imply, so that a proof of the wrong shape is refused with a precise error and
//! in constant time, whatever its length. Edge cases the RFC leaves open follow the
//! transparency-dev/merkle verifier, whose test vectors these functions pass: a tree of size 0
//! contains no leaf; equal sizes need an empty proof and equal roots; a proof from the empty tree
//! to a larger one is refused ([`ProofError::EmptyOldTree`]): RFC 9162 defines consistency proofs
//! only for `0 < size1 < size2`, and a client that held nothing has nothing to check the new tree
//! against, so it takes the first signed checkpoint it sees as its starting point instead.

use crate::hash::{Hash, node_hash};

/// Evidence that a leaf is in a tree: only [`verify_inclusion`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedInclusion {
    leaf_hash: Hash,
    index: u64,
    size: u64,
    root: Hash,
}

/// Evidence that one tree is a prefix of another: only [`verify_consistency`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedConsistency {
    old_size: u64,
    new_size: u64,
    old_root: Hash,
    new_root: Hash,
}

/// Why a proof was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexBeyondSize { index: u64, size: u64 },
    #[error("old tree size {old_size} is beyond new tree size {new_size}")]
    OldSizeBeyondNewSize { old_size: u64, new_size: u64 },
    #[error("proof has {actual} hashes, but these sizes need {expected}")]
    WrongProofLength { expected: usize, actual: usize },
    /// A consistency proof from the empty tree (`old_size` 0) to a larger one: RFC 9162 defines
    /// none, and an empty proof would "verify" against any new root.
    #[error("a consistency proof from the empty tree is meaningless (new tree size {new_size})")]
    EmptyOldTree { new_size: u64 },
    #[error("proof leads to a root other than the given one")]
    RootMismatch,
    #[error("proof does not lead to the given old root")]
    OldRootMismatch,
    #[error("proof does not lead to the given new root")]
    NewRootMismatch,
}

/// Checks that `leaf_hash` is leaf `index` of the tree of `size` leaves whose root is `root`,
/// given the audit path `proof` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<VerifiedInclusion, ProofError> {
    // Step 1.
    if index >= size {
        return Err(ProofError::IndexBeyondSize { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    // Steps 2 and 3.
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf_hash;
    // Step 4.
    for p in proof {
        // 4a. Unreachable once the length matches; kept so the loop is the RFC's.
        if sn == 0 {
            return Err(ProofError::WrongProofLength {
                expected,
                actual: proof.len(),
            });
        }
        // 4b.
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        // 4c.
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5.
    if sn != 0 {
        return Err(ProofError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(VerifiedInclusion {
        leaf_hash: *leaf_hash,
        index,
        size,
        root: *root,
    })
}

/// Checks that the tree of `old_size` leaves with root `old_root` is a prefix of the tree of
/// `new_size` leaves with root `new_root`, given the consistency proof `proof`
/// (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<VerifiedConsistency, ProofError> {
    let verified = VerifiedConsistency {
        old_size,
        new_size,
        old_root: *old_root,
        new_root: *new_root,
    };
    if old_size > new_size {
        return Err(ProofError::OldSizeBeyondNewSize { old_size, new_size });
    }
    if old_size == 0 && new_size > 0 {
        return Err(ProofError::EmptyOldTree { new_size });
    }
    let expected = consistency_proof_len(old_size, new_size);
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    if old_size == new_size {
        // The same tree: nothing to prove, but the roots must be the same.
        return if old_root == new_root {
            Ok(verified)
        } else {
            Err(ProofError::NewRootMismatch)
        };
    }
    // Now 0 < old_size < new_size and the proof is not empty. Steps 1 and 2: the old root is
    // the first hash of the path when the old tree is one complete subtree of the new one.
    let seed: &[Hash] = if old_size.is_power_of_two() {
        std::slice::from_ref(old_root)
    } else {
        &[]
    };
    let mut path = seed.iter().chain(proof);
    let Some(first) = path.next() else {
        return Err(ProofError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    };
    // Steps 3 and 4.
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5.
    let (mut fr, mut sr) = (*first, *first);
    // Step 6.
    for c in path {
        // 6a. Unreachable once the length matches; kept so the loop is the RFC's.
        if sn == 0 {
            return Err(ProofError::WrongProofLength {
                expected,
                actual: proof.len(),
            });
        }
        // 6b.
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        // 6c.
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 7.
    if sn != 0 {
        return Err(ProofError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if sr != *new_root {
        return Err(ProofError::NewRootMismatch);
    }
    Ok(verified)
}

impl VerifiedInclusion {
    pub fn leaf_hash(&self) -> &Hash {
        &self.leaf_hash
    }

    pub fn index(&self) -> u64 {
        self.index
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn root(&self) -> &Hash {
        &self.root
    }
}

impl VerifiedConsistency {
    pub fn old_size(&self) -> u64 {
        self.old_size
    }

    pub fn new_size(&self) -> u64 {
        self.new_size
    }

    pub fn old_root(&self) -> &Hash {
        &self.old_root
    }

    pub fn new_root(&self) -> &Hash {
        &self.new_root
    }
}

/// The length of the audit path of leaf `index` in a tree of `size` leaves, `index < size`:
/// one sibling per level below the point where the leaf's path leaves the right edge
/// (`inner`), plus one per complete left subtree along the right edge above it (`border`).
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let (inner, border) = decompose_inclusion(index, size);
    usize::try_from(inner + border).unwrap_or(usize::MAX)
}

/// The length of a consistency proof between the given sizes, `old_size <= new_size`.
fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    if old_size == 0 || old_size == new_size {
        return 0;
    }
    // The old tree's last leaf, seen from the level of the largest complete subtree it ends
    // with: the proof is that subtree's audit path in the new tree, plus the subtree's own
    // hash unless it is the whole old tree (a power of two), which the verifier already has.
    let (inner, border) = decompose_inclusion(old_size - 1, new_size);
    let shift = old_size.trailing_zeros();
    let seed = u32::from(!old_size.is_power_of_two());
    usize::try_from(inner - shift + border + seed).unwrap_or(usize::MAX)
}

/// Splits the audit path of leaf `index` in a tree of `size` leaves into its inner part (levels
/// where the path and the right edge of the tree differ) and its border part (the right edge).
fn decompose_inclusion(index: u64, size: u64) -> (u32, u32) {
    let inner = u64::BITS - (index ^ (size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner, border)
}
