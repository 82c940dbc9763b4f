//! TUF 1.0 metadata: the signed envelope and the four top-level roles. Parsing is strict where
//! the specification is (types, required fields, `_type`), and keeps unknown fields where a
//! client must (so a signature over them still verifies and they round-trip).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::canonical::canonical_json;
use crate::keys::{Key, KeyId};

/// The specification version this client implements; metadata of another major version is
/// refused.
pub const SPEC_VERSION: &str = "1.0.31";

/// `{ "signed": …, "signatures": [ … ] }`, with `signed` kept as parsed JSON so that the
/// canonical bytes are computed from exactly what was received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub signed: Value,
    pub signatures: Vec<Signature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub keyid: KeyId,
    /// Hex.
    pub sig: String,
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}

/// A role's keys and threshold, as root (or a delegating targets role) names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleKeys {
    pub keyids: Vec<KeyId>,
    pub threshold: u64,
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    #[serde(rename = "_type")]
    pub kind: String,
    pub spec_version: String,
    pub version: u64,
    pub expires: String,
    pub consistent_snapshot: bool,
    pub keys: BTreeMap<KeyId, Key>,
    pub roles: BTreeMap<String, RoleKeys>,
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}

/// Hashes and length of a file, as snapshot and timestamp describe metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaFile {
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamp {
    #[serde(rename = "_type")]
    pub kind: String,
    pub spec_version: String,
    pub version: u64,
    pub expires: String,
    pub meta: BTreeMap<String, MetaFile>,
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(rename = "_type")]
    pub kind: String,
    pub spec_version: String,
    pub version: u64,
    pub expires: String,
    pub meta: BTreeMap<String, MetaFile>,
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}

/// One target file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetFile {
    pub length: u64,
    pub hashes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    #[serde(rename = "_type")]
    pub kind: String,
    pub spec_version: String,
    pub version: u64,
    pub expires: String,
    pub targets: BTreeMap<String, TargetFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegations: Option<Value>,
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}

/// What a role's metadata has in common.
pub trait RoleMetadata: serde::de::DeserializeOwned + Serialize {
    /// The `_type` of this role.
    const TYPE: &'static str;
    fn kind(&self) -> &str;
    fn spec_version(&self) -> &str;
    fn version(&self) -> u64;
    fn expires(&self) -> &str;
}

macro_rules! role_metadata {
    ($type:ty, $name:literal) => {
        impl RoleMetadata for $type {
            const TYPE: &'static str = $name;
            fn kind(&self) -> &str {
                &self.kind
            }
            fn spec_version(&self) -> &str {
                &self.spec_version
            }
            fn version(&self) -> u64 {
                self.version
            }
            fn expires(&self) -> &str {
                &self.expires
            }
        }
    };
}

role_metadata!(Root, "root");
role_metadata!(Timestamp, "timestamp");
role_metadata!(Snapshot, "snapshot");
role_metadata!(Targets, "targets");

/// Why metadata is refused. [`MetadataError::category`] gives the stable category the agent
/// reports and Command audits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("{role} metadata is malformed: {detail}")]
    Malformed { role: String, detail: String },
    #[error("{role} metadata is not signed by {threshold} of its keys ({valid} valid)")]
    ThresholdNotMet {
        role: String,
        threshold: u64,
        valid: u64,
    },
    #[error("{role} metadata version {got} is older than the trusted version {trusted}")]
    Rollback {
        role: String,
        got: u64,
        trusted: u64,
    },
    #[error("{role} metadata version {got} is not the expected version {expected}")]
    WrongVersion {
        role: String,
        got: u64,
        expected: u64,
    },
    #[error("{role} metadata expired at {expires}")]
    Expired { role: String, expires: String },
    #[error("{role} metadata does not match the length or hashes its parent names")]
    Mismatch { role: String },
    #[error("{role} metadata is larger than {limit} bytes")]
    TooLarge { role: String, limit: u64 },
    #[error("{0}")]
    Missing(String),
}

/// The stable categories of OTA verification failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCategory {
    BadSignature,
    Rollback,
    Freeze,
    MixAndMatch,
    ArtifactMismatch,
    TooLarge,
    Malformed,
    UnsafeTargetName,
    NotFound,
}

impl FailureCategory {
    /// The audit and API reason of this failure.
    pub fn reason(self) -> enigm_types::ReasonCategory {
        use enigm_types::ReasonCategory as R;
        match self {
            FailureCategory::BadSignature => R::UpdateBadSignature,
            FailureCategory::Rollback => R::UpdateRollback,
            FailureCategory::Freeze => R::UpdateFreeze,
            FailureCategory::MixAndMatch => R::UpdateMixAndMatch,
            FailureCategory::ArtifactMismatch => R::UpdateArtifactMismatch,
            FailureCategory::TooLarge => R::UpdateTooLarge,
            FailureCategory::Malformed => R::UpdateMalformed,
            FailureCategory::UnsafeTargetName => R::UpdateUnsafeTargetName,
            FailureCategory::NotFound => R::UpdateNotFound,
        }
    }
}

impl MetadataError {
    pub fn category(&self) -> FailureCategory {
        match self {
            MetadataError::Malformed { .. } => FailureCategory::Malformed,
            MetadataError::ThresholdNotMet { .. } => FailureCategory::BadSignature,
            MetadataError::Rollback { .. } => FailureCategory::Rollback,
            MetadataError::WrongVersion { .. } | MetadataError::Mismatch { .. } => {
                FailureCategory::MixAndMatch
            }
            MetadataError::Expired { .. } => FailureCategory::Freeze,
            MetadataError::TooLarge { .. } => FailureCategory::TooLarge,
            MetadataError::Missing(_) => FailureCategory::NotFound,
        }
    }
}

/// Metadata whose signatures met a threshold: only this crate's verifiers make one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<T> {
    pub(crate) signed: T,
    /// The bytes as received, for the caller to persist.
    pub(crate) bytes: Vec<u8>,
}

impl<T> Verified<T> {
    pub fn signed(&self) -> &T {
        &self.signed
    }

    pub fn into_signed(self) -> T {
        self.signed
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Parses an envelope of role `T` (without checking signatures).
pub fn parse<T: RoleMetadata>(bytes: &[u8]) -> Result<(Envelope, T), MetadataError> {
    let malformed = |detail: String| MetadataError::Malformed {
        role: T::TYPE.to_owned(),
        detail,
    };
    let envelope: Envelope =
        serde_json::from_slice(bytes).map_err(|error| malformed(error.to_string()))?;
    // From a borrow of the tree: a deep copy of a large targets document costs more than
    // parsing it.
    let signed = T::deserialize(&envelope.signed).map_err(|error| malformed(error.to_string()))?;
    if has_duplicate_signature_keyids(&envelope) {
        // Two signatures under one key id: malformed, as python-tuf has it (a threshold counts
        // each key once in any case).
        return Err(malformed("duplicate signature key ids".to_owned()));
    }
    if signed.kind() != T::TYPE {
        return Err(malformed(format!("`_type` is `{}`", signed.kind())));
    }
    if signed.spec_version().split('.').next() != Some("1") {
        return Err(malformed(format!(
            "unsupported spec_version `{}`",
            signed.spec_version()
        )));
    }
    crate::time::parse_expiry(signed.expires())
        .ok_or_else(|| malformed(format!("unreadable expiry `{}`", signed.expires())))?;
    Ok((envelope, signed))
}

/// Whether two of the envelope's signatures name the same key id.
pub(crate) fn has_duplicate_signature_keyids(envelope: &Envelope) -> bool {
    let mut keyids: Vec<&str> = envelope
        .signatures
        .iter()
        .map(|signature| signature.keyid.as_str())
        .collect();
    keyids.sort_unstable();
    keyids.windows(2).any(|pair| pair.first() == pair.get(1))
}

/// Verifies that at least `threshold` distinct keys among `keyids` (looked up in `keys`) signed
/// the envelope's canonical `signed` part. A key that signed twice counts once.
pub fn check_threshold(
    role: &str,
    envelope: &Envelope,
    keys: &BTreeMap<KeyId, Key>,
    role_keys: &RoleKeys,
) -> Result<(), MetadataError> {
    let message = canonical_json(&envelope.signed).map_err(|_| MetadataError::Malformed {
        role: role.to_owned(),
        detail: "not canonicalisable".to_owned(),
    })?;
    let mut counted: Vec<&str> = Vec::new();
    for signature in &envelope.signatures {
        if counted.contains(&signature.keyid.as_str())
            || !role_keys.keyids.contains(&signature.keyid)
        {
            continue;
        }
        let Some(key) = keys.get(&signature.keyid) else {
            continue;
        };
        // A key listed under an id that is not its own does not count.
        if key.key_id() != signature.keyid {
            continue;
        }
        let Ok(bytes) = hex::decode(&signature.sig) else {
            continue;
        };
        if key.verify(&message, &bytes).is_ok() {
            counted.push(&signature.keyid);
        }
    }
    let valid = counted.len() as u64;
    if role_keys.threshold == 0 || valid < role_keys.threshold {
        return Err(MetadataError::ThresholdNotMet {
            role: role.to_owned(),
            threshold: role_keys.threshold,
            valid,
        });
    }
    Ok(())
}

/// Parses and verifies metadata of role `T` against a role's keys.
pub fn verify_role<T: RoleMetadata>(
    bytes: &[u8],
    keys: &BTreeMap<KeyId, Key>,
    role_keys: &RoleKeys,
) -> Result<Verified<T>, MetadataError> {
    let (envelope, signed) = parse::<T>(bytes)?;
    check_threshold(T::TYPE, &envelope, keys, role_keys)?;
    Ok(Verified {
        signed,
        bytes: bytes.to_vec(),
    })
}

impl Root {
    /// The keys and threshold of a top-level role.
    pub fn role(&self, name: &str) -> Result<&RoleKeys, MetadataError> {
        self.roles
            .get(name)
            .ok_or_else(|| MetadataError::Malformed {
                role: "root".to_owned(),
                detail: format!("no `{name}` role"),
            })
    }
}
