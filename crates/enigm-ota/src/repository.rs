//! The repository side: signing metadata and building each role's next version.
//!
//! Signing goes through [`MetadataSigner`], which a PKCS#11 token key (the signing
//! workstation's, or Command's online keys when it is given a token) or a development
//! [`SoftwareSigner`] implements: the signer gets the canonical bytes and returns the
//! signature; keys never pass through this crate.

use std::collections::BTreeMap;

use enigm_crypto::{EcdsaP256SigningKey, Ed25519SigningKey};
use enigm_types::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::canonical::canonical_json;
use crate::keys::{Key, KeyId};
use crate::metadata::{
    Envelope, MetaFile, RoleKeys, Root, SPEC_VERSION, Signature, Snapshot, TargetFile, Targets,
    Timestamp as TimestampRole,
};
use crate::release::{RELEASE_SIGNING_FIELD, ReleaseSigning};
use crate::time::format_expiry;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signing failed: {0}")]
pub struct SignerError(pub String);

/// Something that signs with one key: a token key, or a development key file.
pub trait MetadataSigner {
    /// The public key, as TUF metadata names it.
    fn key(&self) -> Key;
    /// The signature over `message` in the form TUF stores (Ed25519: 64 bytes; ECDSA: DER).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError>;
}

/// A development key held in memory. Production keys live in a PKCS#11 token.
pub enum SoftwareSigner {
    Ed25519(Ed25519SigningKey),
    EcdsaP256(EcdsaP256SigningKey),
}

impl std::fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SoftwareSigner({})", self.key().key_id())
    }
}

impl MetadataSigner for SoftwareSigner {
    fn key(&self) -> Key {
        match self {
            SoftwareSigner::Ed25519(key) => Key::ed25519(&key.verifying_key().to_bytes()),
            SoftwareSigner::EcdsaP256(key) => match key.public_point() {
                Ok(point) => Key::ecdsa_p256(&point),
                Err(_) => Key::ed25519(&[0; 32]),
            },
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        match self {
            SoftwareSigner::Ed25519(key) => Ok(key.sign(message).to_vec()),
            SoftwareSigner::EcdsaP256(key) => key
                .sign(message)
                .map_err(|error| SignerError(error.to_string())),
        }
    }
}

/// A key in a PKCS#11 token: the token signs, the private key never leaves it.
impl MetadataSigner for enigm_crypto::pkcs11::Pkcs11Key {
    fn key(&self) -> Key {
        match self.public_key() {
            enigm_crypto::pkcs11::PublicKey::Ed25519(public) => Key::ed25519(&public),
            enigm_crypto::pkcs11::PublicKey::EcdsaP256(point) => Key::ecdsa_p256(&point),
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.sign_for_tuf(message)
            .map_err(|error| SignerError(error.to_string()))
    }
}

/// Signs `signed` with each signer and returns the envelope's JSON bytes.
pub fn sign_metadata<T: Serialize>(
    signed: &T,
    signers: &[&dyn MetadataSigner],
) -> Result<Vec<u8>, SignerError> {
    let envelope = sign_envelope(signed, signers)?;
    serde_json::to_vec_pretty(&envelope).map_err(|error| SignerError(error.to_string()))
}

/// The envelope of `signed` with one signature per distinct signer key, over the canonical
/// JSON of `signed`.
pub(crate) fn sign_envelope<T: Serialize>(
    signed: &T,
    signers: &[&dyn MetadataSigner],
) -> Result<Envelope, SignerError> {
    let value = serde_json::to_value(signed).map_err(|error| SignerError(error.to_string()))?;
    let message = canonical_json(&value).map_err(|error| SignerError(error.to_string()))?;
    let mut signatures = Vec::with_capacity(signers.len());
    for signer in signers {
        let keyid = signer.key().key_id();
        if signatures.iter().any(|s: &Signature| s.keyid == keyid) {
            continue;
        }
        signatures.push(Signature {
            keyid,
            sig: hex::encode(signer.sign(&message)?),
            unrecognized: Map::new(),
        });
    }
    Ok(Envelope {
        signed: value,
        signatures,
    })
}

/// The keys of a new root.
#[derive(Debug, Clone)]
pub struct RootKeys {
    pub root: Vec<Key>,
    pub root_threshold: u64,
    pub targets: Vec<Key>,
    pub targets_threshold: u64,
    pub snapshot: Key,
    pub timestamp: Key,
    pub release: Vec<Key>,
    pub release_threshold: u64,
}

/// Root metadata (consistent snapshots on) naming `keys`, at `version`, expiring at `expires`.
pub fn build_root(keys: &RootKeys, version: u64, expires: Timestamp) -> Root {
    let mut all: BTreeMap<KeyId, Key> = BTreeMap::new();
    let mut role = |list: &[Key], threshold: u64| -> RoleKeys {
        let keyids = list
            .iter()
            .map(|key| {
                let id = key.key_id();
                all.insert(id.clone(), key.clone());
                id
            })
            .collect();
        RoleKeys {
            keyids,
            threshold,
            unrecognized: Map::new(),
        }
    };
    let mut roles = BTreeMap::new();
    roles.insert("root".to_owned(), role(&keys.root, keys.root_threshold));
    roles.insert(
        "targets".to_owned(),
        role(&keys.targets, keys.targets_threshold),
    );
    roles.insert(
        "snapshot".to_owned(),
        role(std::slice::from_ref(&keys.snapshot), 1),
    );
    roles.insert(
        "timestamp".to_owned(),
        role(std::slice::from_ref(&keys.timestamp), 1),
    );
    let release = ReleaseSigning {
        keys: keys
            .release
            .iter()
            .map(|key| (key.key_id(), key.clone()))
            .collect(),
        threshold: keys.release_threshold,
    };
    let mut unrecognized = Map::new();
    unrecognized.insert(
        RELEASE_SIGNING_FIELD.to_owned(),
        serde_json::to_value(release).unwrap_or(Value::Null),
    );
    Root {
        kind: "root".to_owned(),
        spec_version: SPEC_VERSION.to_owned(),
        version,
        expires: format_expiry(expires),
        consistent_snapshot: true,
        keys: all,
        roles,
        unrecognized,
    }
}

/// Targets metadata at `version` with `targets`.
pub fn build_targets(
    targets: BTreeMap<String, TargetFile>,
    version: u64,
    expires: Timestamp,
) -> Targets {
    Targets {
        kind: "targets".to_owned(),
        spec_version: SPEC_VERSION.to_owned(),
        version,
        expires: format_expiry(expires),
        targets,
        delegations: None,
        unrecognized: Map::new(),
    }
}

/// A target entry with its SHA-256, length and custom fields.
pub fn target_file(length: u64, sha256: &str, custom: Option<Value>) -> TargetFile {
    let mut hashes = BTreeMap::new();
    hashes.insert("sha256".to_owned(), sha256.to_ascii_lowercase());
    TargetFile {
        length,
        hashes,
        custom,
        unrecognized: Map::new(),
    }
}

/// A snapshot listing the targets metadata at `targets_version` (with its length and hash, so
/// that a client can bound and check it before parsing).
pub fn build_snapshot(
    targets_version: u64,
    targets_bytes: &[u8],
    version: u64,
    expires: Timestamp,
) -> Snapshot {
    build_snapshot_with_delegated(targets_version, targets_bytes, &[], version, expires)
}

/// [`build_snapshot`] that also lists delegated roles' metadata: `(role, version, bytes)`
/// each (the policy bundles' role, which Command signs).
pub fn build_snapshot_with_delegated(
    targets_version: u64,
    targets_bytes: &[u8],
    delegated: &[(&str, u64, &[u8])],
    version: u64,
    expires: Timestamp,
) -> Snapshot {
    let mut meta = BTreeMap::new();
    meta.insert(
        "targets.json".to_owned(),
        meta_file(targets_version, targets_bytes),
    );
    for (role, role_version, bytes) in delegated {
        meta.insert(format!("{role}.json"), meta_file(*role_version, bytes));
    }
    Snapshot {
        kind: "snapshot".to_owned(),
        spec_version: SPEC_VERSION.to_owned(),
        version,
        expires: format_expiry(expires),
        meta,
        unrecognized: Map::new(),
    }
}

/// A timestamp naming the snapshot at `snapshot_version`, with its length and hash.
pub fn build_timestamp(
    snapshot_version: u64,
    snapshot_bytes: &[u8],
    version: u64,
    expires: Timestamp,
) -> TimestampRole {
    let mut meta = BTreeMap::new();
    meta.insert(
        "snapshot.json".to_owned(),
        meta_file(snapshot_version, snapshot_bytes),
    );
    TimestampRole {
        kind: "timestamp".to_owned(),
        spec_version: SPEC_VERSION.to_owned(),
        version,
        expires: format_expiry(expires),
        meta,
        unrecognized: Map::new(),
    }
}

fn meta_file(version: u64, bytes: &[u8]) -> MetaFile {
    let mut hashes = BTreeMap::new();
    hashes.insert(
        "sha256".to_owned(),
        hex::encode(enigm_crypto::sha256(bytes)),
    );
    MetaFile {
        version,
        length: Some(bytes.len() as u64),
        hashes: Some(hashes),
        unrecognized: Map::new(),
    }
}

/// The target entry of a release: its length, SHA-256 and `custom.enigm` fields with the
/// payload signatures of the Release-Signing keys.
pub fn release_entry(
    name: &str,
    length: u64,
    sha256: &str,
    fields: &crate::release::ReleaseFields,
    release_signers: &[&dyn MetadataSigner],
) -> Result<TargetFile, SignerError> {
    let statement = crate::release::PayloadStatement::new(name, length, sha256, fields);
    let mut fields = fields.clone();
    fields.payload_signatures = release_signers
        .iter()
        .map(|signer| crate::release::sign_payload(*signer, &statement))
        .collect::<Result<_, _>>()?;
    let custom = serde_json::json!({ "enigm": fields });
    Ok(target_file(length, sha256, Some(custom)))
}

/// The next targets metadata: the previous one's targets (none for the first) without those
/// the new release supersedes ([`crate::release::superseded_by`]), plus `entry` under `name`,
/// one version higher, with the previous one's delegations.
pub fn next_targets(
    previous: Option<&Targets>,
    name: &str,
    entry: TargetFile,
    expires: Timestamp,
) -> Targets {
    let mut targets = previous.map(|p| p.targets.clone()).unwrap_or_default();
    if let Some(fields) = crate::release::listed_fields(&entry) {
        let superseded: Vec<String> = crate::release::superseded_by(&targets, name, &fields)
            .into_iter()
            .cloned()
            .collect();
        for old in superseded {
            targets.remove(&old);
        }
    }
    targets.insert(name.to_owned(), entry);
    let version = previous.map_or(1, |p| p.version.saturating_add(1));
    let mut next = build_targets(targets, version, expires);
    // A release changes what is listed, never who is delegated what (the policy bundles).
    next.delegations = previous.and_then(|p| p.delegations.clone());
    next
}

impl RootKeys {
    /// The keys a root names, to build its next version from.
    pub fn from_root(root: &Root) -> Option<RootKeys> {
        let keys_of = |role: &str| -> Option<(Vec<Key>, u64)> {
            let role = root.roles.get(role)?;
            let keys = role
                .keyids
                .iter()
                .map(|id| root.keys.get(id).cloned())
                .collect::<Option<Vec<Key>>>()?;
            Some((keys, role.threshold))
        };
        let (root_keys, root_threshold) = keys_of("root")?;
        let (targets, targets_threshold) = keys_of("targets")?;
        let snapshot = keys_of("snapshot")?.0.into_iter().next()?;
        let timestamp = keys_of("timestamp")?.0.into_iter().next()?;
        let release = crate::release::release_signing(root).ok()?;
        Some(RootKeys {
            root: root_keys,
            root_threshold,
            targets,
            targets_threshold,
            snapshot,
            timestamp,
            release: release.keys.into_values().collect(),
            release_threshold: release.threshold,
        })
    }
}
