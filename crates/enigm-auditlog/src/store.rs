//! Where the tree's nodes live: the [`NodeStore`] trait, the batch of nodes an append writes
//! ([`NewNodes`]) and an in-memory store ([`MemoryStore`]).
//!
//! A store keeps the hash of every *complete* subtree, keyed by `(level, index)`: the node at
//! level `l` and index `i` covers leaves `i * 2^l .. (i + 1) * 2^l`, and level 0 holds the leaf
//! hashes. Such a node is written once, when its last leaf arrives, and never changes: the root
//! of any tree size, and every proof, is combined from complete subtrees plus a short right
//! edge computed on the fly. That is what lets a SQL table `(level, idx) -> hash` with
//! INSERT-only semantics back the log, with each append writing only the nodes it completes,
//! in one transaction.

use crate::hash::Hash;

/// The address of a complete subtree: leaves `index * 2^level .. (index + 1) * 2^level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeKey {
    /// 0 for a leaf; a node at level `l` covers `2^l` leaves.
    pub level: u8,
    pub index: u64,
}

/// Storage for the complete subtrees of one append-only tree.
///
/// The trait is synchronous and does no I/O of its own choosing: a server wraps a database
/// transaction in it (or reads the nodes it needs first), so the tree logic stays sans-IO.
pub trait NodeStore {
    type Error: std::error::Error + 'static;

    /// The number of leaves in the tree.
    fn size(&self) -> Result<u64, Self::Error>;

    /// The hash of the complete subtree at `(level, index)`, or `None` if the store has no
    /// such node.
    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, Self::Error>;

    /// The hashes of several nodes, in the order of `keys`. The tree asks for everything one
    /// proof or root needs in a single call (O(log n) keys), so a SQL store can answer with one
    /// query; the default asks [`NodeStore::node`] once per key.
    fn nodes(&self, keys: &[NodeKey]) -> Result<Vec<Option<Hash>>, Self::Error> {
        keys.iter()
            .map(|key| self.node(key.level, key.index))
            .collect()
    }

    /// Stores the nodes that one batch of leaves completes and records the new size, all or
    /// nothing.
    ///
    /// A store must refuse the batch, changing nothing, when its size is not
    /// [`NewNodes::old_size`]: the batch was computed against another state of the tree (for
    /// example, a concurrent writer appended first). A SQL store does this with the size check
    /// and the inserts in one transaction.
    fn append_batch(&mut self, batch: &NewNodes) -> Result<(), Self::Error>;
}

/// The nodes completed by appending a batch of leaves to a tree of [`NewNodes::old_size`]
/// leaves, computed by [`crate::Log::prepare_append`].
///
/// INVARIANT: for every level `l` with new nodes, there is exactly one run, runs are ordered by
/// level from 0 up, and the run at level `l` starts at index `old_size >> l` and holds
/// `(new_size >> l) - (old_size >> l)` hashes. Levels without new nodes have no run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNodes {
    old_size: u64,
    new_size: u64,
    runs: Vec<NodeRun>,
}

/// Consecutive new nodes of one level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRun {
    level: u8,
    first_index: u64,
    hashes: Vec<Hash>,
}

impl NewNodes {
    pub(crate) fn new(old_size: u64, new_size: u64, runs: Vec<NodeRun>) -> Self {
        NewNodes {
            old_size,
            new_size,
            runs,
        }
    }

    /// The tree size this batch was computed against.
    pub fn old_size(&self) -> u64 {
        self.old_size
    }

    /// The tree size once the batch is stored.
    pub fn new_size(&self) -> u64 {
        self.new_size
    }

    /// The new nodes, one run per level, lowest level first.
    pub fn runs(&self) -> &[NodeRun] {
        &self.runs
    }

    /// Every new node with its key, level by level.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeKey, Hash)> + '_ {
        self.runs.iter().flat_map(NodeRun::nodes)
    }

    /// The number of new nodes.
    pub fn len(&self) -> usize {
        self.runs.iter().map(|run| run.hashes.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}

impl NodeRun {
    pub(crate) fn new(level: u8, first_index: u64, hashes: Vec<Hash>) -> Self {
        NodeRun {
            level,
            first_index,
            hashes,
        }
    }

    pub fn level(&self) -> u8 {
        self.level
    }

    /// The index of the first node of the run within its level.
    pub fn first_index(&self) -> u64 {
        self.first_index
    }

    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// The run's nodes with their keys.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeKey, Hash)> + '_ {
        let level = self.level;
        (self.first_index..)
            .zip(&self.hashes)
            .map(move |(index, hash)| (NodeKey { level, index }, *hash))
    }
}

/// A [`NodeStore`] in memory: one vector of hashes per level. For tests, benchmarks and tools;
/// it holds about `2 * 32` bytes per leaf.
#[derive(Clone, Default)]
pub struct MemoryStore {
    size: u64,
    /// INVARIANT: `levels[l].len() == size >> l`, trailing empty levels aside.
    levels: Vec<Vec<Hash>>,
}

/// Why a [`MemoryStore`] refused a batch. The store is unchanged after any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MemoryStoreError {
    #[error("batch was computed for tree size {batch_old_size}, but the store holds {store_size}")]
    StaleBatch {
        store_size: u64,
        batch_old_size: u64,
    },
    #[error("batch run at level {level} starts at index {index}, not after the stored nodes")]
    Misaligned { level: u8, index: u64 },
    #[error("batch does not fit in memory on this platform")]
    TooLarge,
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// An empty store with room for `leaves` leaves (and their interior nodes) before it
    /// reallocates.
    pub fn with_capacity(leaves: usize) -> Self {
        let mut levels = Vec::new();
        let mut count = leaves;
        while count > 0 {
            levels.push(Vec::with_capacity(count));
            count /= 2;
        }
        MemoryStore { size: 0, levels }
    }
}

impl std::fmt::Debug for MemoryStore {
    // Millions of hashes are no use in a debug print; the size says what the store holds.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl NodeStore for MemoryStore {
    // Reading from memory cannot fail; only a batch that does not fit the stored tree can.
    type Error = MemoryStoreError;

    fn size(&self) -> Result<u64, Self::Error> {
        Ok(self.size)
    }

    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, Self::Error> {
        let Ok(index) = usize::try_from(index) else {
            return Ok(None);
        };
        Ok(self
            .levels
            .get(usize::from(level))
            .and_then(|hashes| hashes.get(index))
            .copied())
    }

    fn append_batch(&mut self, batch: &NewNodes) -> Result<(), Self::Error> {
        if batch.old_size != self.size {
            return Err(MemoryStoreError::StaleBatch {
                store_size: self.size,
                batch_old_size: batch.old_size,
            });
        }
        // Check everything before changing anything, so that a refused batch leaves the store
        // as it was.
        for run in &batch.runs {
            let stored = self.levels.get(usize::from(run.level)).map_or(0, Vec::len);
            if usize::try_from(run.first_index) != Ok(stored) {
                return Err(MemoryStoreError::Misaligned {
                    level: run.level,
                    index: run.first_index,
                });
            }
            if stored.checked_add(run.hashes.len()).is_none() {
                return Err(MemoryStoreError::TooLarge);
            }
        }
        for run in &batch.runs {
            let level = usize::from(run.level);
            if self.levels.len() <= level {
                self.levels.resize_with(level + 1, Vec::new);
            }
            if let Some(hashes) = self.levels.get_mut(level) {
                hashes.extend_from_slice(&run.hashes);
            }
        }
        self.size = batch.new_size;
        Ok(())
    }
}

/// A log can work through a borrowed store, so that the caller keeps the store (for example an
/// open transaction) once the log is done with it.
impl<S: NodeStore + ?Sized> NodeStore for &mut S {
    type Error = S::Error;

    fn size(&self) -> Result<u64, Self::Error> {
        (**self).size()
    }

    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, Self::Error> {
        (**self).node(level, index)
    }

    fn nodes(&self, keys: &[NodeKey]) -> Result<Vec<Option<Hash>>, Self::Error> {
        (**self).nodes(keys)
    }

    fn append_batch(&mut self, batch: &NewNodes) -> Result<(), Self::Error> {
        (**self).append_batch(batch)
    }
}
