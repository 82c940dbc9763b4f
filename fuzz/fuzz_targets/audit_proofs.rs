//! Fuzzes what a client does with the audit log's proof responses: parse the JSON
//! (`AuditInclusionView`, `AuditConsistencyView`, `AuditLeavesPage`), decode it with
//! `enigm_api::proofs` and verify it against the roots of a fixed log.
//!
//! The fixed log holds `LEAVES` leaves whose bodies are canonical audit events
//! (`corpus/audit_proofs/seed-*` are real responses for it). Properties checked on every input:
//!
//! - nothing panics, and parsed views re-serialise to JSON that parses to an equal view;
//! - a decoded proof carries exactly the index, sizes and hashes of the view, and each hash has
//!   one text form;
//! - `check_body` agrees with the leaf's hash, body and purge flag;
//! - against a size of the fixed log, a proof verifies exactly when it is the log's own proof
//!   (and, for inclusion, names the log's own leaf): accepted proofs are sound and the log's
//!   proofs are accepted.

#![no_main]

use std::sync::OnceLock;

use enigm_api::proofs::{BodyCheck, MAX_PROOF_HASHES};
use enigm_api::{AuditConsistencyView, AuditInclusionView, AuditLeafView, AuditLeavesPage};
use enigm_auditlog::{Hash, Log, MemoryStore, leaf_hash};
use enigm_types::{
    Actor, AdminId, AuditAction, AuditEvent, AuditEventId, AuditTarget, Outcome, Permission,
    Timestamp,
};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The size of the fixed log: not a power of two, so proofs have both complete and partial
/// subtrees.
const LEAVES: u64 = 37;

fuzz_target!(|data: &[u8]| {
    let log = fixed_log();
    if let Some(view) = parse::<AuditInclusionView>(data) {
        inclusion(log, &view);
    }
    if let Some(view) = parse::<AuditConsistencyView>(data) {
        consistency(log, &view);
    }
    if let Some(page) = parse::<AuditLeavesPage>(data) {
        for leaf in &page.leaves {
            let _check = check_body(leaf);
        }
    }
});

/// The body of leaf `index`: the canonical encoding of an event with fixed fields.
fn body(index: u64) -> String {
    let event = AuditEvent {
        id: format!("5f0c2a8e-1d4b-4c7a-9e3f-{index:012x}")
            .parse::<AuditEventId>()
            .expect("a canonical id"),
        time: Timestamp::from_unix_millis(1_735_689_600_000 + i64::try_from(index).unwrap()),
        actor: Actor::Admin(
            "0b6d9c31-7e52-4f8a-a1c4-2d3e4f5a6b7c"
                .parse::<AdminId>()
                .expect("a canonical id"),
        ),
        action: AuditAction::Authorize,
        target: AuditTarget::Route {
            permission: Permission::AuditRead,
        },
        outcome: Outcome::Success,
        change_ref: None,
        reason: None,
    };
    String::from_utf8(event.canonical_bytes()).expect("canonical JSON is UTF-8")
}

fn fixed_log() -> &'static Log<MemoryStore> {
    static LOG: OnceLock<Log<MemoryStore>> = OnceLock::new();
    LOG.get_or_init(|| {
        let leaves: Vec<Hash> = (0..LEAVES).map(|i| leaf_hash(body(i).as_bytes())).collect();
        let mut log = Log::new(MemoryStore::new());
        // Two batches, so the stored tree went through an append that completes old nodes.
        let (first, second) = leaves.split_at(23);
        log.append_leaves(first).expect("append");
        log.append_leaves(second).expect("append");
        log
    })
}

/// Parses `data` as `T`; a parsed value must survive re-serialisation.
fn parse<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(data: &[u8]) -> Option<T> {
    let value: T = serde_json::from_slice(data).ok()?;
    let json = serde_json::to_vec(&value).expect("a parsed view serialises");
    let again: T = serde_json::from_slice(&json).expect("re-serialised JSON parses");
    assert_eq!(again, value, "view changed across a JSON round trip");
    Some(value)
}

fn inclusion(log: &Log<MemoryStore>, view: &AuditInclusionView) {
    let body = check_body(&view.leaf);
    let Ok((leaf, proof)) = view.decode() else {
        assert!(body.is_err() || view.path.len() > MAX_PROOF_HASHES || !decodes(&view.path));
        return;
    };
    assert_eq!(
        (proof.index(), proof.size()),
        (view.leaf.index, view.tree_size)
    );
    assert_eq!(leaf.to_base64(), view.leaf.leaf_hash);
    same_hashes(proof.path(), &view.path);

    let (index, size) = (proof.index(), proof.size());
    if (1..=LEAVES).contains(&size) {
        let root = log.root_at(size).expect("root of a size of the log");
        let verified = proof.verify(&leaf, &root);
        let genuine = index < size
            && leaf == log.leaf(index).expect("leaf")
            && proof.path() == log.inclusion_proof(index, size).expect("proof").path();
        assert_eq!(
            verified.is_ok(),
            genuine,
            "inclusion proof of leaf {index} in {size}: verified {verified:?}"
        );
        if let Ok(verified) = verified {
            assert_eq!(
                (
                    verified.leaf_hash(),
                    verified.index(),
                    verified.size(),
                    verified.root()
                ),
                (&leaf, index, size, &root)
            );
        }
    } else {
        // A size the log never had: any outcome, but no panic.
        let root = log.root().expect("root");
        let _outcome = proof.verify(&leaf, &root);
    }
}

fn consistency(log: &Log<MemoryStore>, view: &AuditConsistencyView) {
    let Ok(proof) = view.decode() else {
        assert!(view.path.len() > MAX_PROOF_HASHES || !decodes(&view.path));
        return;
    };
    assert_eq!(
        (proof.old_size(), proof.new_size()),
        (view.first, view.second)
    );
    same_hashes(proof.path(), &view.path);

    let (old, new) = (proof.old_size(), proof.new_size());
    let root = |size: u64| {
        if size <= LEAVES {
            log.root_at(size).expect("root of a size of the log")
        } else {
            log.root().expect("root")
        }
    };
    let (old_root, new_root) = (root(old), root(new));
    let verified = proof.verify(&old_root, &new_root);
    if old <= new && new <= LEAVES {
        // RFC 9162 has no proof from the empty tree to a larger one: the log makes none and
        // verification refuses every such proof.
        let genuine = log
            .consistency_proof(old, new)
            .is_ok_and(|genuine| proof.path() == genuine.path());
        assert_eq!(
            verified.is_ok(),
            genuine,
            "consistency proof {old} -> {new}: verified {verified:?}"
        );
    }
    if let Ok(verified) = verified {
        assert!(old <= new);
        assert_eq!(
            (
                verified.old_size(),
                verified.new_size(),
                verified.old_root(),
                verified.new_root()
            ),
            (old, new, &old_root, &new_root)
        );
    }
}

/// `check_body` must agree with a plain restatement of its rule.
fn check_body(leaf: &AuditLeafView) -> Result<BodyCheck, ()> {
    let Ok(hash) = leaf.decode_leaf_hash() else {
        assert!(leaf.check_body().is_err());
        return Err(());
    };
    assert_eq!(hash.to_base64(), leaf.leaf_hash, "a hash has one text form");
    let check = leaf.check_body().expect("the leaf hash decodes");
    let expected = match (&leaf.body, leaf.purged) {
        (Some(body), _) if leaf_hash(body.as_bytes()) == hash => BodyCheck::Matches,
        (Some(_), _) => BodyCheck::Mismatch,
        (None, true) => BodyCheck::Purged,
        (None, false) => BodyCheck::Missing,
    };
    assert_eq!(check, expected);
    Ok(check)
}

/// Every text of a decoded path is the one text form of its hash.
fn same_hashes(decoded: &[Hash], texts: &[String]) {
    assert_eq!(decoded.len(), texts.len());
    for (hash, text) in decoded.iter().zip(texts) {
        assert_eq!(&hash.to_base64(), text, "a hash has one text form");
    }
}

fn decodes(path: &[String]) -> bool {
    path.iter().all(|text| Hash::from_base64(text).is_ok())
}
