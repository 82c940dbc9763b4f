//! Fuzzes the audit log's parsers and verifiers of untrusted input: signed checkpoints (C2SP
//! signed notes) and Merkle proofs, which clients receive from Command.
//!
//! The first input byte picks a mode:
//!
//! - 0 mod 3, "note": the rest is a signed note. `open_checkpoint` and `open_note` with a fixed
//!   verifier must not panic, and what they accept must be a prefix of the input that
//!   re-serialises exactly. Read as text, the rest is also parsed as a checkpoint body (accepted
//!   bodies must be their own canonical form and survive signing and opening) and signed as a
//!   note text (an accepted text must open to itself).
//! - 1 mod 3, "proof": the rest is an index and a size (8 bytes each, big-endian) and then
//!   32-byte hashes: a leaf (or old root), a root (or new root), and the proof. Both verifiers
//!   must not panic, and a witness must carry exactly the values it was given.
//! - 2 mod 3, "tamper": the rest picks a small tree, a leaf, two sizes, and a bit to flip. The
//!   log's own proofs must verify, and must stop verifying once the bit is flipped in a proof
//!   hash or a root (except the new root of a proof from the empty tree, which any tree
//!   extends).

#![no_main]

use enigm_auditlog::{
    Checkpoint, Hash, Log, MemoryStore, NoteSigner, NoteVerifier, leaf_hash, open_checkpoint,
    open_note, sign_checkpoint, sign_note, verify_consistency, verify_inclusion,
};
use enigm_crypto::Ed25519SigningKey;
use libfuzzer_sys::fuzz_target;

/// The log key name, which is also the checkpoints' origin.
const ORIGIN: &str = "enigm.example/fuzz";
/// A fixed seed, made up for this target. `corpus/checkpoints/seed-signed-*` are signed with it.
const SEED: [u8; 32] = *b"enigm fuzz checkpoint key 32 byt";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let signer = NoteSigner::new(ORIGIN, Ed25519SigningKey::from_seed(&SEED))
        .expect("the fixed key name is valid");
    match mode % 3 {
        0 => note(rest, &signer),
        1 => proof(rest),
        _ => tamper(rest),
    }
});

fn note(data: &[u8], signer: &NoteSigner) {
    let verifier = signer.verifier();
    let round_tripped = NoteVerifier::from_key_string(&verifier.to_key_string())
        .expect("a verifier's own key string parses");
    assert_eq!(round_tripped, verifier);

    if let Ok(verified) = open_checkpoint(data, &verifier) {
        let checkpoint = verified.checkpoint();
        assert_eq!(checkpoint.origin(), ORIGIN);
        let text = checkpoint.to_note_text();
        assert!(data.starts_with(text.as_bytes()));
        assert_eq!(data.get(text.len()), Some(&b'\n'));
    }
    if let Ok(verified) = open_note(data, &verifier) {
        let text = verified.text().as_bytes();
        assert!(data.starts_with(text) && text.ends_with(b"\n"));
        assert_eq!(data.get(text.len()), Some(&b'\n'));
    }

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(checkpoint) = Checkpoint::from_note_text(text) {
        assert_eq!(
            checkpoint.to_note_text(),
            text,
            "checkpoint text is not canonical"
        );
        let ours = Checkpoint::new(
            ORIGIN,
            checkpoint.size(),
            *checkpoint.root(),
            checkpoint.extensions().to_vec(),
        )
        .expect("a parsed checkpoint's parts are valid");
        let note = sign_checkpoint(&ours, signer).expect("origin is the key name");
        let opened = open_checkpoint(&note, &verifier).expect("a signed checkpoint opens");
        assert_eq!(opened.checkpoint(), &ours);
    }
    if let Ok(note) = sign_note(text, signer) {
        let opened = open_note(&note, &verifier).expect("a signed note opens");
        assert_eq!(opened.text(), text);
    }
}

fn proof(data: &[u8]) {
    let Some((index, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let Some((size, rest)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let (index, size) = (u64::from_be_bytes(*index), u64::from_be_bytes(*size));
    let (hashes, _) = rest.as_chunks::<32>();
    let hashes: Vec<Hash> = hashes
        .iter()
        .map(|bytes| Hash::from_bytes(*bytes))
        .collect();
    let (Some(first), Some(second)) = (hashes.first(), hashes.get(1)) else {
        return;
    };
    let path = hashes.get(2..).unwrap_or_default();

    if let Ok(verified) = verify_inclusion(first, index, size, path, second) {
        assert_eq!(
            (
                verified.leaf_hash(),
                verified.index(),
                verified.size(),
                verified.root()
            ),
            (first, index, size, second)
        );
        assert!(index < size);
    }
    if let Ok(verified) = verify_consistency(index, size, first, second, path) {
        assert_eq!(
            (
                verified.old_size(),
                verified.new_size(),
                verified.old_root(),
                verified.new_root()
            ),
            (index, size, first, second)
        );
        assert!(index <= size);
    }
}

fn tamper(data: &[u8]) {
    let Some(([leaves, a, b, c, bit], _)) = data.split_first_chunk::<5>() else {
        return;
    };
    let size = u64::from(*leaves % 64) + 1;
    let hashes: Vec<Hash> = (0..size).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let mut log = Log::new(MemoryStore::new());
    // Appended in two batches, split where the input says.
    let (first, second) = hashes.split_at(usize::from(*c) % hashes.len());
    log.append_leaves(first).expect("append");
    log.append_leaves(second).expect("append");
    let bit = usize::from(*bit);
    let flip = |hash: &Hash| {
        let mut bytes = *hash.as_bytes();
        bytes[bit / 8 % 32] ^= 1 << (bit % 8);
        Hash::from_bytes(bytes)
    };

    let tree_size = 1 + u64::from(*a) % size;
    let index = u64::from(*b) % tree_size;
    let root = log.root_at(tree_size).expect("root");
    let leaf = log.leaf(index).expect("leaf");
    let proof = log
        .inclusion_proof(index, tree_size)
        .expect("inclusion proof");
    proof
        .verify(&leaf, &root)
        .expect("the log's inclusion proof verifies");
    assert!(proof.verify(&leaf, &flip(&root)).is_err());
    assert!(proof.verify(&flip(&leaf), &root).is_err());
    for position in 0..proof.path().len() {
        let mut path = proof.path().to_vec();
        path[position] = flip(&path[position]);
        assert!(verify_inclusion(&leaf, index, tree_size, &path, &root).is_err());
    }

    // RFC 9162 defines consistency proofs only from a non-empty tree: the log refuses the empty
    // one, and every other size up to the tree's is proven.
    assert!(log.consistency_proof(0, tree_size).is_err());
    let old_size = 1 + u64::from(*b) % tree_size;
    let old_root = log.root_at(old_size).expect("old root");
    let proof = log
        .consistency_proof(old_size, tree_size)
        .expect("consistency proof");
    proof
        .verify(&old_root, &root)
        .expect("the log's consistency proof verifies");
    assert!(proof.verify(&old_root, &flip(&root)).is_err());
    assert!(proof.verify(&flip(&old_root), &root).is_err());
    for position in 0..proof.path().len() {
        let mut path = proof.path().to_vec();
        path[position] = flip(&path[position]);
        assert!(verify_consistency(old_size, tree_size, &old_root, &root, &path).is_err());
    }
}
