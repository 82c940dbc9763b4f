//! Table-driven tests of small trees (sizes 0 to 8), whose structure can be checked by hand
//! against RFC 9162 §2.1.1 and the worked examples of §2.1.5, and of the store protocol.

use std::cell::Cell;

use super::*;
use crate::hash::leaf_hash;
use crate::store::{MemoryStore, MemoryStoreError};

/// The leaf hashes of the one-byte entries 0, 1, 2, ...
fn leaves(count: u8) -> Vec<Hash> {
    (0..count).map(|i| leaf_hash(&[i])).collect()
}

/// A log of the first `size` leaves, appended one at a time.
fn log_of(size: u8) -> Log<MemoryStore> {
    let mut log = Log::new(MemoryStore::new());
    for leaf in leaves(size) {
        log.append_leaves(&[leaf]).unwrap();
    }
    log
}

/// Named nodes of the 8-leaf tree, as in RFC 9162 §2.1.5: `l[i]` for leaves and `h(a, b)` for
/// interior nodes.
struct Names {
    l: Vec<Hash>,
}

impl Names {
    fn new() -> Self {
        Names { l: leaves(8) }
    }

    fn l(&self, i: usize) -> Hash {
        self.l[i]
    }

    /// The complete subtree over leaves `from..to` (a power-of-two range).
    fn n(&self, from: usize, to: usize) -> Hash {
        if to - from == 1 {
            return self.l(from);
        }
        let mid = from + (to - from) / 2;
        node_hash(&self.n(from, mid), &self.n(mid, to))
    }
}

fn h(left: Hash, right: Hash) -> Hash {
    node_hash(&left, &right)
}

#[test]
fn roots_of_small_trees() {
    let x = Names::new();
    let cases: Vec<(u8, Hash)> = vec![
        (0, empty_root()),
        (1, x.l(0)),
        (2, h(x.l(0), x.l(1))),
        (3, h(x.n(0, 2), x.l(2))),
        (4, h(x.n(0, 2), x.n(2, 4))),
        (5, h(x.n(0, 4), x.l(4))),
        (6, h(x.n(0, 4), x.n(4, 6))),
        (7, h(x.n(0, 4), h(x.n(4, 6), x.l(6)))),
        (8, h(x.n(0, 4), x.n(4, 8))),
    ];
    let full = log_of(8);
    for (size, expected) in cases {
        let log = log_of(size);
        assert_eq!(log.size().unwrap(), u64::from(size));
        assert_eq!(log.root().unwrap(), expected, "root of size {size}");
        assert_eq!(
            full.root_at(u64::from(size)).unwrap(),
            expected,
            "root_at({size}) of the 8-leaf tree"
        );
    }
}

#[test]
fn empty_root_is_sha256_of_nothing() {
    // SHA-256("") = e3b0c442...b855, as RFC 9162 §2.1.1 defines MTH({}).
    assert_eq!(
        empty_root().to_hex(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(log_of(0).root().unwrap(), empty_root());
}

#[test]
fn inclusion_proofs_of_small_trees() {
    let x = Names::new();
    let cases: Vec<(u64, u64, Vec<Hash>)> = vec![
        (0, 1, vec![]),
        (0, 2, vec![x.l(1)]),
        (1, 2, vec![x.l(0)]),
        (0, 3, vec![x.l(1), x.l(2)]),
        (2, 3, vec![x.n(0, 2)]),
        (4, 5, vec![x.n(0, 4)]),
        (3, 5, vec![x.l(2), x.n(0, 2), x.l(4)]),
        (5, 7, vec![x.l(4), x.l(6), x.n(0, 4)]),
        (6, 7, vec![x.n(4, 6), x.n(0, 4)]),
        (0, 8, vec![x.l(1), x.n(2, 4), x.n(4, 8)]),
        (3, 8, vec![x.l(2), x.n(0, 2), x.n(4, 8)]),
        (7, 8, vec![x.l(6), x.n(4, 6), x.n(0, 4)]),
    ];
    let log = log_of(8);
    for (index, size, path) in cases {
        let proof = log.inclusion_proof(index, size).unwrap();
        assert_eq!(proof.path(), path.as_slice(), "PATH({index}, D[{size}])");
        let root = log.root_at(size).unwrap();
        let verified = proof.verify(&log.leaf(index).unwrap(), &root).unwrap();
        assert_eq!(
            (verified.index(), verified.size(), *verified.root()),
            (index, size, root)
        );
    }
}

#[test]
fn consistency_proofs_of_small_trees() {
    let x = Names::new();
    // The first three are the worked examples of RFC 9162 §2.1.5 (there called c, d, g, l; l;
    // and i, j, k).
    let cases: Vec<(u64, u64, Vec<Hash>)> = vec![
        (3, 7, vec![x.l(2), x.l(3), x.n(0, 2), h(x.n(4, 6), x.l(6))]),
        (4, 7, vec![h(x.n(4, 6), x.l(6))]),
        (6, 7, vec![x.n(4, 6), x.l(6), x.n(0, 4)]),
        (1, 8, vec![x.l(1), x.n(2, 4), x.n(4, 8)]),
        (2, 5, vec![x.n(2, 4), x.l(4)]),
        (6, 8, vec![x.n(4, 6), x.n(6, 8), x.n(0, 4)]),
        (1, 2, vec![x.l(1)]),
        (5, 5, vec![]),
        (0, 0, vec![]),
    ];
    let log = log_of(8);
    for (old_size, new_size, path) in cases {
        let proof = log.consistency_proof(old_size, new_size).unwrap();
        assert_eq!(
            proof.path(),
            path.as_slice(),
            "PROOF({old_size}, D[{new_size}])"
        );
        let (old_root, new_root) = (
            log.root_at(old_size).unwrap(),
            log.root_at(new_size).unwrap(),
        );
        let verified = proof.verify(&old_root, &new_root).unwrap();
        assert_eq!(verified.old_size(), old_size);
        assert_eq!(verified.new_root(), &new_root);
    }
}

#[test]
fn every_proof_of_every_small_tree_verifies() {
    let log = log_of(8);
    for size in 0..=8u64 {
        let root = log.root_at(size).unwrap();
        for index in 0..size {
            let proof = log.inclusion_proof(index, size).unwrap();
            proof.verify(&log.leaf(index).unwrap(), &root).unwrap();
        }
        // From the empty tree only to the empty tree: RFC 9162 defines no other.
        for old_size in (1..=size).chain((size == 0).then_some(0)) {
            let proof = log.consistency_proof(old_size, size).unwrap();
            proof
                .verify(&log.root_at(old_size).unwrap(), &root)
                .unwrap();
        }
    }
}

#[test]
fn out_of_range_requests_are_refused() {
    let log = log_of(5);
    assert!(matches!(
        log.root_at(6),
        Err(TreeError::SizeBeyondTree {
            requested: 6,
            size: 5
        })
    ));
    assert!(matches!(
        log.inclusion_proof(5, 5),
        Err(TreeError::IndexBeyondSize { index: 5, size: 5 })
    ));
    assert!(matches!(
        log.inclusion_proof(0, 0),
        Err(TreeError::IndexBeyondSize { index: 0, size: 0 })
    ));
    assert!(matches!(
        log.inclusion_proof(0, 6),
        Err(TreeError::SizeBeyondTree { .. })
    ));
    assert!(matches!(
        log.consistency_proof(4, 3),
        Err(TreeError::OldSizeBeyondNewSize {
            old_size: 4,
            new_size: 3
        })
    ));
    assert!(matches!(
        log.consistency_proof(0, 3),
        Err(TreeError::EmptyOldTree { new_size: 3 })
    ));
    assert!(matches!(
        log.consistency_proof(2, 9),
        Err(TreeError::SizeBeyondTree { .. })
    ));
    assert!(matches!(
        log.leaf(5),
        Err(TreeError::IndexBeyondSize { index: 5, size: 5 })
    ));
}

#[test]
fn batches_complete_exactly_the_new_nodes() {
    // Appending leaves 3..6 to a tree of 3: level 0 gets 3, 4, 5; level 1 gets nodes 1
    // (leaves 2, 3, with leaf 2 old) and 2 (leaves 4, 5); level 2 gets node 0 (leaves 0..4).
    let x = Names::new();
    let log = log_of(3);
    let batch = log.prepare_append(&leaves(6)[3..]).unwrap();
    assert_eq!((batch.old_size(), batch.new_size()), (3, 6));
    let runs: Vec<(u8, u64, Vec<Hash>)> = batch
        .runs()
        .iter()
        .map(|run| (run.level(), run.first_index(), run.hashes().to_vec()))
        .collect();
    assert_eq!(
        runs,
        vec![
            (0, 3, vec![x.l(3), x.l(4), x.l(5)]),
            (1, 1, vec![x.n(2, 4), x.n(4, 6)]),
            (2, 0, vec![x.n(0, 4)]),
        ]
    );
    assert_eq!(batch.len(), 6);
    let keys: Vec<NodeKey> = batch.nodes().map(|(key, _)| key).collect();
    assert_eq!(keys.first(), Some(&NodeKey { level: 0, index: 3 }));
    assert_eq!(keys.last(), Some(&NodeKey { level: 2, index: 0 }));
}

#[test]
fn empty_batch_changes_nothing() {
    let mut log = log_of(3);
    let root = log.root().unwrap();
    assert_eq!(log.append_leaves(&[]).unwrap(), 3..3);
    assert!(log.prepare_append(&[]).unwrap().is_empty());
    assert_eq!(log.root().unwrap(), root);
}

#[test]
fn every_batch_split_gives_the_same_store() {
    let all = leaves(8);
    let reference = log_of(8);
    // Every way of cutting 8 leaves into consecutive batches: bit i of `cuts` cuts after
    // leaf i.
    for cuts in 0u8..128 {
        let mut log = Log::new(MemoryStore::new());
        let mut start = 0;
        for end in 1..=8 {
            if end == 8 || cuts & (1 << (end - 1)) != 0 {
                let range = log.append_leaves(&all[start..end]).unwrap();
                assert_eq!(range, start as u64..end as u64);
                start = end;
            }
        }
        for level in 0..4 {
            for index in 0..8 {
                assert_eq!(
                    log.store().node(level, index).unwrap(),
                    reference.store().node(level, index).unwrap(),
                    "cuts {cuts:#09b}, node ({level}, {index})"
                );
            }
        }
    }
}

#[test]
fn stale_batches_are_refused_by_the_store() {
    let log = log_of(2);
    let batch = log.prepare_append(&leaves(3)[2..]).unwrap();
    let mut store = log.into_store();
    let mut other = Log::new(&mut store);
    other.append_leaves(&[leaf_hash(b"concurrent")]).unwrap();
    assert_eq!(
        store.append_batch(&batch),
        Err(MemoryStoreError::StaleBatch {
            store_size: 3,
            batch_old_size: 2
        })
    );
    assert_eq!(store.size().unwrap(), 3);
}

/// A store that counts the nodes it is asked for.
struct CountingStore {
    inner: MemoryStore,
    reads: Cell<usize>,
}

impl NodeStore for CountingStore {
    type Error = MemoryStoreError;

    fn size(&self) -> Result<u64, Self::Error> {
        self.inner.size()
    }

    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, Self::Error> {
        self.reads.set(self.reads.get() + 1);
        self.inner.node(level, index)
    }

    fn append_batch(&mut self, batch: &NewNodes) -> Result<(), Self::Error> {
        self.inner.append_batch(batch)
    }
}

#[test]
fn roots_and_proofs_read_logarithmically_many_nodes() {
    let size: u64 = 100_003;
    let leaves: Vec<Hash> = (0..size).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let mut log = Log::new(CountingStore {
        inner: MemoryStore::new(),
        reads: Cell::new(0),
    });
    for chunk in leaves.chunks(997) {
        log.append_leaves(chunk).unwrap();
    }
    // An append reads at most one old node per level.
    assert!(log.store().reads.get() <= (leaves.len() / 997 + 1) * 17);

    // log2(100_003) < 17: a root or proof needs at most about two nodes per level.
    let bound = 2 * 17 + 2;
    let reads = |operation: &dyn Fn(&Log<CountingStore>)| {
        log.store().reads.set(0);
        operation(&log);
        log.store().reads.get()
    };
    assert!(
        reads(&|log| {
            log.root().unwrap();
        }) <= 17
    );
    for index in [0, 1, 65_535, 65_536, 99_999, size - 1] {
        let count = reads(&|log| {
            log.inclusion_proof(index, size).unwrap();
        });
        assert!(count <= bound, "inclusion of {index}: {count} reads");
    }
    for (old, new) in [
        (1, size),
        (65_536, size),
        (70_001, 99_999),
        (size - 1, size),
    ] {
        let count = reads(&|log| {
            log.consistency_proof(old, new).unwrap();
        });
        assert!(count <= bound, "consistency {old} -> {new}: {count} reads");
    }
}
