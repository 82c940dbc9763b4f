//! The tamper-evident audit log: an append-only RFC 9162 Merkle tree, its proofs, and signed
//! checkpoints of its head.
//!
//! - [`hash`]: SHA-256 leaf and node hashing with RFC 9162's domain separation.
//! - [`store`]: the [`NodeStore`] trait the tree lives in (complete subtrees, written once) and
//!   an in-memory [`MemoryStore`].
//! - [`tree`]: [`Log`], which appends leaves in batches and produces roots of any past size,
//!   inclusion proofs and consistency proofs from O(log n) stored nodes.
//! - [`verify`]: [`verify_inclusion`] and [`verify_consistency`] for clients that hold no tree;
//!   they return [`VerifiedInclusion`] and [`VerifiedConsistency`] witnesses.
//! - [`checkpoint`] and [`note`]: C2SP tlog-checkpoints and signed notes with Ed25519.
//! - [`AuditEventKey`]: the HMAC key whose tag on each stored event (over its leaf index and
//!   canonical encoding) lets the sequencer fold in only events Command wrote.
//!
//! The crate does no I/O and holds no clock or randomness: storage is behind a trait, keys come
//! in as values, and hashing and signing go through `enigm-crypto`.

pub mod checkpoint;
pub mod hash;
pub mod note;
pub mod store;
pub mod tree;
pub mod verify;

pub use checkpoint::{
    Checkpoint, CheckpointError, MAX_CHECKPOINT_LEN, OpenCheckpointError, VerifiedCheckpoint,
    open_checkpoint, sign_checkpoint,
};
/// Re-exported so that the store authenticates events through the log's crate, naming no crypto
/// implementation itself.
pub use enigm_crypto::{AUDIT_MAC_LEN, AuditEventKey, AuditEventKeyError, KeyFingerprint};
pub use hash::{Hash, HashDecodeError, empty_root, leaf_hash, node_hash};
pub use note::{
    KeyStringError, MAX_NOTE_LEN, MAX_SIGNATURES, NoteError, NoteSigner, NoteVerifier,
    VerifiedNote, open_note, sign_note,
};
pub use store::{MemoryStore, MemoryStoreError, NewNodes, NodeKey, NodeRun, NodeStore};
pub use tree::{ConsistencyProof, InclusionProof, Log, TreeError};
pub use verify::{
    ProofError, VerifiedConsistency, VerifiedInclusion, verify_consistency, verify_inclusion,
};
