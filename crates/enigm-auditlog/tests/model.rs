//! Model-based property tests: the log against a plain `Vec` of leaves and a naive recursive
//! RFC 9162 §2.1.1 tree hash.
//!
//! For random sizes and random batch splits, every root matches the model, every inclusion
//! proof and every consistency proof verifies, and tampering is refused: a flipped bit in any
//! proof hash, the leaf or a root, or a changed index or size. For changed sizes and indexes
//! the property is stated exactly: RFC 9162 verification reads a size and an index only through
//! the *shape* of the path they imply (which side each sibling is on), so a claim is refused
//! whenever its shape differs from the genuine one, and accepted only when the shape is the
//! same. (Example: leaf 0 has all its siblings on the right in every tree, so a proof for size
//! 4 also verifies as "size 3" against the size-4 root. That is why a size must come from a
//! signed checkpoint together with its root, never from the proof's sender alone.)

// The helpers below are test code too, though clippy only sees that inside `#[test]` functions.
#![expect(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    reason = "a test: indexes come from the model's own sizes, and a failure is the report"
)]

use enigm_auditlog::{
    Hash, Log, MemoryStore, ProofError, empty_root, leaf_hash, node_hash, verify_consistency,
    verify_inclusion,
};
use proptest::prelude::*;

/// MTH(D[n]) of RFC 9162 §2.1.1, recursively, straight from the definition.
fn naive_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = 1 << (usize::BITS - 1 - (n - 1).leading_zeros());
            node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
        }
    }
}

/// A test case: leaves appended in batches of the given lengths.
#[derive(Debug, Clone)]
struct Case {
    seed: u64,
    batches: Vec<usize>,
}

fn cases() -> impl Strategy<Value = Case> {
    let small = prop::collection::vec(1usize..=9, 1..12);
    let large = prop::collection::vec(1usize..=700, 1..8);
    (any::<u64>(), prop_oneof![small, large]).prop_map(|(seed, batches)| Case { seed, batches })
}

fn leaves(case: &Case) -> Vec<Hash> {
    let total: usize = case.batches.iter().sum();
    (0..total as u64)
        .map(|i| leaf_hash(&[case.seed.to_be_bytes(), i.to_be_bytes()].concat()))
        .collect()
}

/// Builds the log batch by batch, checking the root against the model after each batch.
fn build(case: &Case, leaves: &[Hash]) -> Log<MemoryStore> {
    let mut log = Log::new(MemoryStore::new());
    let mut start = 0;
    for &len in &case.batches {
        let range = log.append_leaves(&leaves[start..start + len]).unwrap();
        assert_eq!(range, start as u64..(start + len) as u64);
        start += len;
        assert_eq!(log.root().unwrap(), naive_root(&leaves[..start]));
    }
    log
}

/// Which side each sibling is on, in verification order, for leaf `index` of a tree of `size`
/// leaves: RFC 9162 §2.1.3.2 step 4 run without hashes. `true` means the sibling is on the
/// left. `None` for an index outside the tree.
fn inclusion_shape(index: u64, size: u64) -> Option<Vec<bool>> {
    if index >= size {
        return None;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut shape = Vec::new();
    while sn != 0 {
        let left = fn_ & 1 == 1 || fn_ == sn;
        shape.push(left);
        if left && fn_ & 1 == 0 {
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    Some(shape)
}

/// The same for a consistency proof with 0 < old < new (RFC 9162 §2.1.4.2): whether the old
/// root seeds the path, then for each further hash whether it updates both roots (`true`) or
/// only the new one.
fn consistency_shape(old: u64, new: u64) -> Option<(bool, Vec<bool>)> {
    if old == 0 || old >= new {
        return None;
    }
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let mut shape = Vec::new();
    while sn != 0 {
        let both = fn_ & 1 == 1 || fn_ == sn;
        shape.push(both);
        if both && fn_ & 1 == 0 {
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    Some((old.is_power_of_two(), shape))
}

fn flip(hash: &Hash, bit: usize) -> Hash {
    let mut bytes = *hash.as_bytes();
    bytes[(bit / 8) % 32] ^= 1 << (bit % 8);
    Hash::from_bytes(bytes)
}

/// Sizes and indexes near `value` that a tamperer would try.
fn neighbours(value: u64) -> Vec<u64> {
    [
        value.wrapping_sub(1),
        value + 1,
        value ^ 1,
        value ^ 2,
        value / 2,
        value * 2,
        0,
        u64::MAX,
    ]
    .into_iter()
    .filter(|&other| other != value)
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_the_model(case in cases(), picks in prop::collection::vec(any::<u64>(), 32)) {
        let leaves = leaves(&case);
        let log = build(&case, &leaves);
        let n = leaves.len() as u64;
        let pick = |i: usize, below: u64| picks[i % picks.len()] % below;

        // Roots of past sizes.
        for i in 0..8 {
            let size = pick(i, n + 1);
            prop_assert_eq!(log.root_at(size).unwrap(), naive_root(&leaves[..size as usize]));
        }

        // Every inclusion proof at the full size, and at a few past sizes.
        let root = log.root().unwrap();
        for index in 0..n {
            let proof = log.inclusion_proof(index, n).unwrap();
            let verified = proof.verify(&leaves[index as usize], &root).unwrap();
            prop_assert_eq!(verified.index(), index);
        }
        for i in 0..8 {
            let size = 1 + pick(i, n.max(1));
            if size > n {
                continue;
            }
            let index = pick(i + 8, size);
            let past_root = naive_root(&leaves[..size as usize]);
            log.inclusion_proof(index, size).unwrap().verify(&leaves[index as usize], &past_root).unwrap();
        }

        // Consistency proofs between random sizes, the edge cases included.
        let mut pairs: Vec<(u64, u64)> = (0..16)
            .map(|i| {
                let (a, b) = (pick(i, n + 1), pick(i + 16, n + 1));
                (a.min(b), a.max(b))
            })
            .collect();
        pairs.extend([(n, n), (n / 2, n), (1.min(n), n), (0, 0)]);
        for (old, new) in pairs {
            if old == 0 && new > 0 {
                // RFC 9162 defines no proof from the empty tree; both sides refuse one.
                prop_assert!(log.consistency_proof(old, new).is_err());
                continue;
            }
            let proof = log.consistency_proof(old, new).unwrap();
            let (old_root, new_root) = (
                naive_root(&leaves[..old as usize]),
                naive_root(&leaves[..new as usize]),
            );
            let verified = proof.verify(&old_root, &new_root).unwrap();
            prop_assert_eq!((verified.old_size(), verified.new_size()), (old, new));
        }
    }

    #[test]
    fn tampered_inclusion_claims_are_refused(
        case in cases(),
        pick in any::<u64>(),
        bit in 0usize..256,
    ) {
        let leaves = leaves(&case);
        let log = build(&case, &leaves);
        let size = 1 + pick % leaves.len() as u64;
        let index = (pick >> 32) % size;
        let leaf = leaves[index as usize];
        let root = log.root_at(size).unwrap();
        let proof = log.inclusion_proof(index, size).unwrap();
        let path = proof.path();
        prop_assert!(verify_inclusion(&leaf, index, size, path, &root).is_ok());

        for position in 0..path.len() {
            let mut tampered = path.to_vec();
            tampered[position] = flip(&tampered[position], bit);
            prop_assert_eq!(
                verify_inclusion(&leaf, index, size, &tampered, &root),
                Err(ProofError::RootMismatch)
            );
        }
        prop_assert_eq!(
            verify_inclusion(&leaf, index, size, path, &flip(&root, bit)),
            Err(ProofError::RootMismatch)
        );
        prop_assert_eq!(
            verify_inclusion(&flip(&leaf, bit), index, size, path, &root),
            Err(ProofError::RootMismatch)
        );
        // Dropping, adding or duplicating a hash changes the length.
        let mut longer = path.to_vec();
        longer.push(root);
        prop_assert!(verify_inclusion(&leaf, index, size, &longer, &root).is_err());
        if let Some((_, shorter)) = path.split_last() {
            prop_assert!(verify_inclusion(&leaf, index, size, shorter, &root).is_err());
        }

        let genuine = inclusion_shape(index, size);
        for other in neighbours(index) {
            let accepted = verify_inclusion(&leaf, other, size, path, &root).is_ok();
            prop_assert_eq!(accepted, inclusion_shape(other, size) == genuine, "index {} -> {}", index, other);
        }
        for other in neighbours(size) {
            let accepted = verify_inclusion(&leaf, index, other, path, &root).is_ok();
            prop_assert_eq!(accepted, inclusion_shape(index, other) == genuine, "size {} -> {}", size, other);
        }
    }

    #[test]
    fn tampered_consistency_claims_are_refused(
        case in cases(),
        pick in any::<u64>(),
        bit in 0usize..256,
    ) {
        let leaves = leaves(&case);
        let n = leaves.len() as u64;
        prop_assume!(n >= 2);
        let log = build(&case, &leaves);
        // 0 < old < new <= n: the sizes that need a non-empty proof.
        let new = 2 + pick % (n - 1);
        let old = 1 + (pick >> 32) % (new - 1);
        let (old_root, new_root) = (log.root_at(old).unwrap(), log.root_at(new).unwrap());
        let proof = log.consistency_proof(old, new).unwrap();
        let path = proof.path();
        prop_assert!(!path.is_empty());
        prop_assert!(verify_consistency(old, new, &old_root, &new_root, path).is_ok());

        for position in 0..path.len() {
            let mut tampered = path.to_vec();
            tampered[position] = flip(&tampered[position], bit);
            prop_assert!(verify_consistency(old, new, &old_root, &new_root, &tampered).is_err());
        }
        prop_assert!(verify_consistency(old, new, &flip(&old_root, bit), &new_root, path).is_err());
        prop_assert!(verify_consistency(old, new, &old_root, &flip(&new_root, bit), path).is_err());
        prop_assert!(verify_consistency(old, new, &new_root, &old_root, path).is_err());
        let mut longer = path.to_vec();
        longer.push(new_root);
        prop_assert!(verify_consistency(old, new, &old_root, &new_root, &longer).is_err());
        prop_assert!(verify_consistency(old, new, &old_root, &new_root, &path[1..]).is_err());
        prop_assert!(verify_consistency(old, new, &old_root, &new_root, &[]).is_err());

        let genuine = consistency_shape(old, new);
        for other in neighbours(old) {
            let accepted = verify_consistency(other, new, &old_root, &new_root, path).is_ok();
            prop_assert_eq!(accepted, consistency_shape(other, new) == genuine, "old size {} -> {}", old, other);
        }
        for other in neighbours(new) {
            let accepted = verify_consistency(old, other, &old_root, &new_root, path).is_ok();
            prop_assert_eq!(accepted, consistency_shape(old, other) == genuine, "new size {} -> {}", new, other);
        }
    }
}

/// The ambiguity described at the top, pinned down: the property tests above rely on it being
/// the only way a changed size or index can verify.
#[test]
fn rfc_9162_inclusion_reads_the_size_only_through_the_path_shape() {
    let leaves: Vec<Hash> = (0u8..4).map(|i| leaf_hash(&[i])).collect();
    let mut log = Log::new(MemoryStore::new());
    log.append_leaves(&leaves).unwrap();
    let root = log.root().unwrap();
    let proof = log.inclusion_proof(0, 4).unwrap();
    assert!(verify_inclusion(&leaves[0], 0, 4, proof.path(), &root).is_ok());
    assert_eq!(inclusion_shape(0, 3), inclusion_shape(0, 4));
    assert!(verify_inclusion(&leaves[0], 0, 3, proof.path(), &root).is_ok());
    // Leaf 2 is the last leaf of a 3-leaf tree but has a right sibling in a 4-leaf tree.
    assert_ne!(inclusion_shape(2, 3), inclusion_shape(2, 4));
    let proof = log.inclusion_proof(2, 4).unwrap();
    assert!(verify_inclusion(&leaves[2], 2, 4, proof.path(), &root).is_ok());
    assert!(verify_inclusion(&leaves[2], 2, 3, proof.path(), &root).is_err());
}

/// RFC 9162 §2.1.4 defines consistency proofs only for `0 < size1 < size2` (and equal sizes):
/// a proof from the empty tree is refused with its own error, whatever the roots and path, as
/// the transparency-dev verifier does ("consistency proof from empty tree is meaningless").
#[test]
fn a_consistency_proof_from_the_empty_tree_is_refused() {
    let leaves: Vec<Hash> = (0u8..3).map(|i| leaf_hash(&[i])).collect();
    let mut log = Log::new(MemoryStore::new());
    log.append_leaves(&leaves).unwrap();
    let root = log.root().unwrap();
    for path in [Vec::new(), vec![root], leaves.clone()] {
        assert_eq!(
            verify_consistency(0, 3, &empty_root(), &root, &path),
            Err(ProofError::EmptyOldTree { new_size: 3 })
        );
        assert_eq!(
            verify_consistency(0, 3, &root, &root, &path),
            Err(ProofError::EmptyOldTree { new_size: 3 })
        );
    }
    // Equal sizes stay defined: the empty tree is consistent with itself.
    assert!(verify_consistency(0, 0, &empty_root(), &empty_root(), &[]).is_ok());
    assert!(log.consistency_proof(0, 3).is_err());
    // The first non-empty size is where a client that held nothing starts: from there on,
    // proofs verify.
    let one = log.root_at(1).unwrap();
    let proof = log.consistency_proof(1, 3).unwrap();
    assert!(verify_consistency(1, 3, &one, &root, proof.path()).is_ok());
}
