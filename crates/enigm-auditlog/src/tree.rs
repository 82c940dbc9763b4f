//! The log itself: appending leaves in batches, roots of any past size, and inclusion and
//! consistency proofs (RFC 9162 §2.1.2 – §2.1.4) generated from the stored complete subtrees.
//!
//! Every root and proof is assembled from O(log n) stored nodes. The ranges a proof needs are
//! worked out first, from the sizes alone; each range is split into complete subtrees (read from
//! the store in one call, never recomputed) and only the incomplete right edge of the tree is
//! hashed on the fly.

use std::ops::Range;

use crate::hash::{Hash, empty_root, node_hash};
use crate::store::{NewNodes, NodeKey, NodeRun, NodeStore};
use crate::verify::{
    ProofError, VerifiedConsistency, VerifiedInclusion, verify_consistency, verify_inclusion,
};

#[cfg(test)]
mod tests;

/// An append-only Merkle tree over a [`NodeStore`].
#[derive(Debug, Clone)]
pub struct Log<S> {
    store: S,
}

/// Why a tree operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TreeError<E> {
    #[error("node store failed")]
    Store(#[source] E),
    #[error("tree size {requested} is beyond the log's size {size}")]
    SizeBeyondTree { requested: u64, size: u64 },
    #[error("leaf index {index} is not below tree size {size}")]
    IndexBeyondSize { index: u64, size: u64 },
    #[error("old tree size {old_size} is beyond new tree size {new_size}")]
    OldSizeBeyondNewSize { old_size: u64, new_size: u64 },
    /// RFC 9162 defines no consistency proof from the empty tree to a larger one.
    #[error("a consistency proof from the empty tree is meaningless (new tree size {new_size})")]
    EmptyOldTree { new_size: u64 },
    #[error("node store has no node at level {level}, index {index}, which its size implies")]
    MissingNode { level: u8, index: u64 },
    #[error("node store answered {actual} nodes for {expected} keys")]
    WrongNodeCount { expected: usize, actual: usize },
    #[error("appending {count} leaves would overflow the tree size")]
    TooManyLeaves { count: usize },
}

/// The audit path of one leaf in a tree of a given size (RFC 9162 §2.1.3), deepest sibling
/// first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    index: u64,
    size: u64,
    path: Vec<Hash>,
}

/// The proof that a tree of `old_size` leaves is a prefix of one of `new_size` leaves
/// (RFC 9162 §2.1.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    old_size: u64,
    new_size: u64,
    path: Vec<Hash>,
}

impl<S: NodeStore> Log<S> {
    pub fn new(store: S) -> Self {
        Log { store }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn into_store(self) -> S {
        self.store
    }

    /// The number of leaves.
    pub fn size(&self) -> Result<u64, TreeError<S::Error>> {
        self.store.size().map_err(TreeError::Store)
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Result<Hash, TreeError<S::Error>> {
        let size = self.size()?;
        self.root_of(size)
    }

    /// The root the tree had when it held `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, TreeError<S::Error>> {
        self.check_size(size)?;
        self.root_of(size)
    }

    /// The hash of leaf `index`.
    pub fn leaf(&self, index: u64) -> Result<Hash, TreeError<S::Error>> {
        let size = self.size()?;
        if index >= size {
            return Err(TreeError::IndexBeyondSize { index, size });
        }
        let hashes = self.fetch(&[NodeKey { level: 0, index }])?;
        hashes
            .first()
            .copied()
            .ok_or(TreeError::MissingNode { level: 0, index })
    }

    /// Appends leaves (their [`crate::leaf_hash`]es) as one batch and returns their indexes.
    pub fn append_leaves(
        &mut self,
        leaf_hashes: &[Hash],
    ) -> Result<Range<u64>, TreeError<S::Error>> {
        let batch = self.prepare_append(leaf_hashes)?;
        if !batch.is_empty() {
            self.store.append_batch(&batch).map_err(TreeError::Store)?;
        }
        Ok(batch.old_size()..batch.new_size())
    }

    /// The nodes that appending `leaf_hashes` would complete, without storing them: for a
    /// caller that writes the batch itself, in a transaction of its own. Reads at most one
    /// stored node per level (the left sibling of the first new node, when that is old).
    pub fn prepare_append(&self, leaf_hashes: &[Hash]) -> Result<NewNodes, TreeError<S::Error>> {
        let old_size = self.size()?;
        let count = leaf_hashes.len();
        let new_size = u64::try_from(count)
            .ok()
            .and_then(|count| old_size.checked_add(count))
            .ok_or(TreeError::TooManyLeaves { count })?;
        if count == 0 {
            return Ok(NewNodes::new(old_size, new_size, Vec::new()));
        }

        // The only old nodes an append combines are, at each level, the left sibling of the
        // first new node when the level's old node count is odd. Fetch them all at once.
        let old_siblings: Vec<NodeKey> = levels_above(new_size)
            .filter(|&level| new_size >> level > old_size >> level)
            .filter_map(|level| {
                let below = old_size >> (level - 1);
                (below % 2 == 1).then(|| NodeKey {
                    level: level - 1,
                    index: below - 1,
                })
            })
            .collect();
        let mut old_siblings = self.fetch(&old_siblings)?.into_iter();

        let mut runs = vec![NodeRun::new(0, old_size, leaf_hashes.to_vec())];
        for level in levels_above(new_size) {
            let (first, end) = (old_size >> level, new_size >> level);
            if end <= first {
                break;
            }
            let below = old_size >> (level - 1);
            let Some(previous) = runs.last() else { break };
            let mut children = previous.hashes();
            let mut hashes = Vec::with_capacity(usize::try_from(end - first).unwrap_or(0));
            if below % 2 == 1 {
                // The first new node's left child is old; its right child is the first new
                // node of the level below.
                let (Some(left), Some((right, rest))) =
                    (old_siblings.next(), children.split_first())
                else {
                    return Err(TreeError::MissingNode {
                        level: level - 1,
                        index: below - 1,
                    });
                };
                hashes.push(node_hash(&left, right));
                children = rest;
            }
            let (pairs, _odd_last) = children.as_chunks::<2>();
            hashes.extend(pairs.iter().map(|[left, right]| node_hash(left, right)));
            runs.push(NodeRun::new(level, first, hashes));
        }
        Ok(NewNodes::new(old_size, new_size, runs))
    }

    /// The audit path of leaf `index` in the tree of `size` leaves.
    pub fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> Result<InclusionProof, TreeError<S::Error>> {
        self.check_size(size)?;
        if index >= size {
            return Err(TreeError::IndexBeyondSize { index, size });
        }
        let path = self.range_hashes(&inclusion_ranges(index, size))?;
        Ok(InclusionProof { index, size, path })
    }

    /// The proof that the tree of `old_size` leaves is a prefix of the tree of `new_size`.
    /// Empty when `old_size` equals `new_size`; refused from the empty tree to a larger one,
    /// where RFC 9162 defines no proof (see [`verify_consistency`]).
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyProof, TreeError<S::Error>> {
        self.check_size(new_size)?;
        if old_size > new_size {
            return Err(TreeError::OldSizeBeyondNewSize { old_size, new_size });
        }
        if old_size == 0 && new_size > 0 {
            return Err(TreeError::EmptyOldTree { new_size });
        }
        let path = self.range_hashes(&consistency_ranges(old_size, new_size))?;
        Ok(ConsistencyProof {
            old_size,
            new_size,
            path,
        })
    }

    fn check_size(&self, requested: u64) -> Result<(), TreeError<S::Error>> {
        let size = self.size()?;
        if requested > size {
            return Err(TreeError::SizeBeyondTree { requested, size });
        }
        Ok(())
    }

    /// The root of the first `size` leaves; `size` is known not to exceed the tree's.
    fn root_of(&self, size: u64) -> Result<Hash, TreeError<S::Error>> {
        if size == 0 {
            return Ok(empty_root());
        }
        let hashes = self.range_hashes(std::slice::from_ref(&(0..size)))?;
        hashes.first().copied().ok_or(TreeError::WrongNodeCount {
            expected: 1,
            actual: 0,
        })
    }

    /// The Merkle tree hash (RFC 9162 §2.1.1) of each of `ranges`, from one read of the store.
    ///
    /// Each range must have the shape RFC 9162's recursion produces: it starts at a multiple of
    /// a power of two at least as large as its length, so its complete subtrees, left to right,
    /// shrink, and its hash folds them from the right.
    fn range_hashes(&self, ranges: &[Range<u64>]) -> Result<Vec<Hash>, TreeError<S::Error>> {
        let mut keys = Vec::new();
        let mut counts = Vec::with_capacity(ranges.len());
        for range in ranges {
            let before = keys.len();
            complete_subtrees(range.clone(), &mut keys);
            counts.push(keys.len() - before);
        }
        let hashes = self.fetch(&keys)?;
        let mut rest = hashes.as_slice();
        let mut out = Vec::with_capacity(ranges.len());
        for count in counts {
            let Some((these, after)) = rest.split_at_checked(count) else {
                return Err(TreeError::WrongNodeCount {
                    expected: keys.len(),
                    actual: hashes.len(),
                });
            };
            rest = after;
            let mut subtrees = these.iter().rev();
            let Some(last) = subtrees.next() else {
                return Err(TreeError::WrongNodeCount {
                    expected: keys.len(),
                    actual: hashes.len(),
                });
            };
            out.push(subtrees.fold(*last, |right, left| node_hash(left, &right)));
        }
        Ok(out)
    }

    /// The stored hashes of `keys`, all of which must exist.
    fn fetch(&self, keys: &[NodeKey]) -> Result<Vec<Hash>, TreeError<S::Error>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let found = self.store.nodes(keys).map_err(TreeError::Store)?;
        if found.len() != keys.len() {
            return Err(TreeError::WrongNodeCount {
                expected: keys.len(),
                actual: found.len(),
            });
        }
        keys.iter()
            .zip(found)
            .map(|(key, hash)| {
                hash.ok_or(TreeError::MissingNode {
                    level: key.level,
                    index: key.index,
                })
            })
            .collect()
    }
}

impl InclusionProof {
    /// A proof received from elsewhere; it means nothing until [`InclusionProof::verify`]
    /// accepts it.
    pub fn new(index: u64, size: u64, path: Vec<Hash>) -> Self {
        InclusionProof { index, size, path }
    }

    pub fn index(&self) -> u64 {
        self.index
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn path(&self) -> &[Hash] {
        &self.path
    }

    /// [`verify_inclusion`] of `leaf_hash` at this proof's index and size under `root`.
    pub fn verify(&self, leaf_hash: &Hash, root: &Hash) -> Result<VerifiedInclusion, ProofError> {
        verify_inclusion(leaf_hash, self.index, self.size, &self.path, root)
    }
}

impl ConsistencyProof {
    /// A proof received from elsewhere; it means nothing until [`ConsistencyProof::verify`]
    /// accepts it.
    pub fn new(old_size: u64, new_size: u64, path: Vec<Hash>) -> Self {
        ConsistencyProof {
            old_size,
            new_size,
            path,
        }
    }

    pub fn old_size(&self) -> u64 {
        self.old_size
    }

    pub fn new_size(&self) -> u64 {
        self.new_size
    }

    pub fn path(&self) -> &[Hash] {
        &self.path
    }

    /// [`verify_consistency`] of this proof's sizes with `old_root` and `new_root`.
    pub fn verify(
        &self,
        old_root: &Hash,
        new_root: &Hash,
    ) -> Result<VerifiedConsistency, ProofError> {
        verify_consistency(self.old_size, self.new_size, old_root, new_root, &self.path)
    }
}

/// Levels 1, 2, ... up to the highest level a tree of `size` leaves can have a node at.
fn levels_above(size: u64) -> impl Iterator<Item = u8> {
    // 64 - leading zeros is the bit length; a level needs at least 2^level leaves.
    let top = u8::try_from(u64::BITS - size.leading_zeros()).unwrap_or(64);
    1..top
}

/// The largest power of two strictly below `n`, for `n >= 2` (RFC 9162's `k`).
fn split_point(n: u64) -> u64 {
    1 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

/// The ranges whose hashes make up the audit path PATH(index, D[0:size]) of RFC 9162 §2.1.3.1,
/// in proof order (deepest first). Requires `index < size`.
fn inclusion_ranges(index: u64, size: u64) -> Vec<Range<u64>> {
    let mut ranges = Vec::new();
    let (mut lo, mut hi) = (0, size);
    // Walk down from the root; each step records the sibling of the half holding the leaf.
    while hi - lo > 1 {
        let mid = lo + split_point(hi - lo);
        if index < mid {
            ranges.push(mid..hi);
            hi = mid;
        } else {
            ranges.push(lo..mid);
            lo = mid;
        }
    }
    ranges.reverse();
    ranges
}

/// The ranges whose hashes make up PROOF(old_size, D[0:new_size]) of RFC 9162 §2.1.4.1, in
/// proof order. Empty when `old_size` is 0 or equals `new_size` (no proof is needed). Requires
/// `old_size <= new_size`.
fn consistency_ranges(old_size: u64, new_size: u64) -> Vec<Range<u64>> {
    let mut ranges = Vec::new();
    if old_size == 0 || old_size >= new_size {
        return ranges;
    }
    // SUBPROOF(m, D[lo:hi], b), unrolled: `m` counts old leaves within `lo..hi`, and
    // `whole_old_tree` is b, "the old tree's root is known to the verifier".
    let (mut lo, mut hi, mut m, mut whole_old_tree) = (0, new_size, old_size, true);
    // INVARIANT: 0 < m <= hi - lo, so the loop ends at the latest when hi - lo = 1 = m.
    while m < hi - lo {
        let mid = lo + split_point(hi - lo);
        if lo + m <= mid {
            ranges.push(mid..hi);
            hi = mid;
        } else {
            ranges.push(lo..mid);
            m -= mid - lo;
            lo = mid;
            whole_old_tree = false;
        }
    }
    if !whole_old_tree {
        ranges.push(lo..hi);
    }
    ranges.reverse();
    ranges
}

/// Splits `range` into complete subtrees, left to right, each as large as its alignment and the
/// rest of the range allow, and appends their keys to `keys`.
fn complete_subtrees(range: Range<u64>, keys: &mut Vec<NodeKey>) {
    let mut start = range.start;
    while start < range.end {
        let remaining = range.end - start;
        // The largest power of two dividing `start` (any, for 0) and not exceeding `remaining`.
        let aligned = start.trailing_zeros();
        let fits = u64::BITS - 1 - remaining.leading_zeros();
        let level = aligned.min(fits);
        keys.push(NodeKey {
            level: u8::try_from(level).unwrap_or(u8::MAX),
            index: start >> level,
        });
        start += 1 << level;
    }
}
