//! The transparency-dev/merkle proof vectors (RFC 6962 / RFC 9162), read from
//! `../shared/vectors/merkle-transparency-dev/` and never copied into the repository.
//!
//! Each JSON file is one case. `wantErr: false` cases must verify and yield a witness carrying
//! the case's values; every other case must be refused. Some refused cases carry hashes that
//! are not 32 bytes (empty or 9-byte "garbage"): those are refused where the bytes become a
//! [`Hash`], and, to make sure the verifier itself would refuse them too, they are also run
//! with a 32-byte stand-in derived from the malformed bytes.

// The helpers below are test code too, though clippy only sees that inside `#[test]` functions.
#![expect(
    clippy::panic,
    clippy::expect_used,
    reason = "a test: a missing or unreadable vector file must fail it loudly"
)]

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use enigm_auditlog::{Hash, leaf_hash, verify_consistency, verify_inclusion};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InclusionCase {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyCase {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    desc: String,
    #[serde(rename = "wantErr")]
    want_err: bool,
}

/// What happened to the cases of one folder.
#[derive(Debug, Default)]
struct Tally {
    files: usize,
    accepted: usize,
    /// Refused because a hash was not 32 bytes (and refused again with a stand-in).
    refused_malformed: usize,
    /// Refused by the verifier.
    refused_by_verifier: usize,
    happy_paths: usize,
}

/// A hash as the case gives it: well formed, or malformed with a 32-byte stand-in.
enum Decoded {
    Hash(Hash),
    Malformed(Hash),
}

impl Decoded {
    /// Decodes the hash in field `field` of a case.
    fn new(field: &str, text: &str) -> Self {
        let bytes = STANDARD.decode(text).expect("vector hashes are base64");
        match Hash::from_slice(&bytes) {
            Ok(hash) => Decoded::Hash(hash),
            // Hashing the field name and the malformed bytes gives a well-formed value that
            // the case did not intend, and that differs between fields (an empty root and an
            // empty leaf must not become equal).
            Err(_) => Decoded::Malformed(leaf_hash(&[field.as_bytes(), b":", &bytes].concat())),
        }
    }

    fn hash(&self) -> Hash {
        match self {
            Decoded::Hash(hash) | Decoded::Malformed(hash) => *hash,
        }
    }

    fn is_malformed(&self) -> bool {
        matches!(self, Decoded::Malformed(_))
    }
}

#[test]
fn inclusion_vectors() {
    let mut tally = Tally::default();
    for path in case_files("inclusion") {
        let case: InclusionCase = read_json(&path);
        let leaf = Decoded::new("leafHash", &case.leaf_hash);
        let root = Decoded::new("root", &case.root);
        let proof: Vec<Decoded> = case
            .proof
            .iter()
            .flatten()
            .map(|h| Decoded::new("proof", h))
            .collect();
        let malformed =
            leaf.is_malformed() || root.is_malformed() || proof.iter().any(Decoded::is_malformed);
        let hashes: Vec<Hash> = proof.iter().map(Decoded::hash).collect();
        let result = verify_inclusion(
            &leaf.hash(),
            case.leaf_idx,
            case.tree_size,
            &hashes,
            &root.hash(),
        );
        let name = path.display();
        tally.files += 1;
        if is_happy_path(&path) {
            tally.happy_paths += 1;
            assert!(!case.want_err, "{name}: a happy path must verify");
        }
        if case.want_err {
            assert!(
                result.is_err(),
                "{name} ({}): must be refused, verified",
                case.desc
            );
            if malformed {
                tally.refused_malformed += 1;
            } else {
                tally.refused_by_verifier += 1;
            }
        } else {
            assert!(
                !malformed,
                "{name}: an accepted case has well-formed hashes"
            );
            let verified = result.unwrap_or_else(|error| {
                panic!("{name} ({}): must verify, got `{error}`", case.desc)
            });
            assert_eq!(verified.index(), case.leaf_idx);
            assert_eq!(verified.size(), case.tree_size);
            assert_eq!(verified.leaf_hash(), &leaf.hash());
            assert_eq!(verified.root(), &root.hash());
            tally.accepted += 1;
        }
    }
    report("inclusion", &tally);
}

#[test]
fn consistency_vectors() {
    let mut tally = Tally::default();
    for path in case_files("consistency") {
        let case: ConsistencyCase = read_json(&path);
        let root1 = Decoded::new("root1", &case.root1);
        let root2 = Decoded::new("root2", &case.root2);
        let proof: Vec<Decoded> = case
            .proof
            .iter()
            .flatten()
            .map(|h| Decoded::new("proof", h))
            .collect();
        let malformed =
            root1.is_malformed() || root2.is_malformed() || proof.iter().any(Decoded::is_malformed);
        let hashes: Vec<Hash> = proof.iter().map(Decoded::hash).collect();
        let result = verify_consistency(
            case.size1,
            case.size2,
            &root1.hash(),
            &root2.hash(),
            &hashes,
        );
        let name = path.display();
        tally.files += 1;
        if is_happy_path(&path) {
            tally.happy_paths += 1;
            assert!(!case.want_err, "{name}: a happy path must verify");
        }
        if case.want_err {
            assert!(
                result.is_err(),
                "{name} ({}): must be refused, verified",
                case.desc
            );
            if malformed {
                tally.refused_malformed += 1;
            } else {
                tally.refused_by_verifier += 1;
            }
        } else {
            assert!(
                !malformed,
                "{name}: an accepted case has well-formed hashes"
            );
            let verified = result.unwrap_or_else(|error| {
                panic!("{name} ({}): must verify, got `{error}`", case.desc)
            });
            assert_eq!(verified.old_size(), case.size1);
            assert_eq!(verified.new_size(), case.size2);
            assert_eq!(verified.old_root(), &root1.hash());
            assert_eq!(verified.new_root(), &root2.hash());
            tally.accepted += 1;
        }
    }
    report("consistency", &tally);
}

/// Every `*.json` file under `merkle-transparency-dev/<kind>/*/`, sorted.
fn case_files(kind: &str) -> Vec<PathBuf> {
    let root = enigm_test_support::require_shared_vectors()
        .join("merkle-transparency-dev")
        .join(kind);
    let mut files = Vec::new();
    let folders = std::fs::read_dir(&root)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", root.display()));
    for folder in folders {
        let folder = folder.expect("a readable folder entry").path();
        if !folder.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&folder).expect("a readable case folder") {
            let file = file.expect("a readable file entry").path();
            if file.extension().is_some_and(|ext| ext == "json") {
                files.push(file);
            }
        }
    }
    files.sort();
    assert!(
        !files.is_empty(),
        "no {kind} vectors under {}",
        root.display()
    );
    files
}

fn is_happy_path(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name == "happy-path.json")
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> T {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("cannot parse {}: {error}", path.display()))
}

fn report(kind: &str, tally: &Tally) {
    println!("{kind} vectors: {tally:?}");
    assert!(tally.files > 0, "no {kind} vector was processed");
    assert!(tally.happy_paths > 0, "no {kind} happy path was processed");
    assert!(
        tally.refused_by_verifier > 0,
        "no {kind} mutation reached the verifier"
    );
    assert_eq!(
        tally.files,
        tally.accepted + tally.refused_malformed + tally.refused_by_verifier
    );
}
