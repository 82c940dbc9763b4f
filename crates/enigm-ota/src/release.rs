//! Enigm's release fields and the Release-Signing Authority's payload signature.
//!
//! Each target carries `custom.enigm`: kind, release version, rollback index, channel,
//! compatible hardware models, expiry, and `payload_signatures`. The payload signature is the
//! Release-Signing Authority's, over the canonical JSON of a [`PayloadStatement`] (digest, length
//! and the release fields): domain separated by its `_type`, so it can never pass for TUF
//! metadata and the reverse. The release keys are pinned in the root metadata under
//! `x-enigm-release-signing` (keys and threshold), signed by the root threshold; a root whose
//! release keys overlap a top-level role's keys is refused, so the Manifest Signing Authority's
//! keys can never sign a payload and the release keys can never sign metadata.

use std::collections::BTreeMap;

use enigm_types::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::canonical_json;
use crate::client::{TrustedMetadata, VerifiedTarget};
use crate::keys::{Key, KeyId};
use crate::metadata::{Root, Signature};
use crate::repository::MetadataSigner;

/// The root field that pins the release keys.
pub const RELEASE_SIGNING_FIELD: &str = "x-enigm-release-signing";
/// The `_type` of a payload statement.
pub const PAYLOAD_TYPE: &str = "enigm-release-payload";

/// The release keys a root pins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseSigning {
    pub keys: BTreeMap<KeyId, Key>,
    pub threshold: u64,
}

/// `custom.enigm` of a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseFields {
    pub kind: String,
    pub release_version: String,
    pub rollback_index: u64,
    pub channel: String,
    pub hardware: Vec<String>,
    /// TUF time format.
    pub expires: String,
    #[serde(default)]
    pub payload_signatures: Vec<Signature>,
}

/// What the Release-Signing Authority signs for one payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadStatement {
    #[serde(rename = "_type")]
    pub kind_tag: String,
    pub name: String,
    pub length: u64,
    pub sha256: String,
    pub kind: String,
    pub release_version: String,
    pub rollback_index: u64,
    pub channel: String,
    pub hardware: Vec<String>,
    pub expires: String,
}

impl PayloadStatement {
    /// The statement for a release.
    pub fn new(name: &str, length: u64, sha256: &str, fields: &ReleaseFields) -> Self {
        PayloadStatement {
            kind_tag: PAYLOAD_TYPE.to_owned(),
            name: name.to_owned(),
            length,
            sha256: sha256.to_ascii_lowercase(),
            kind: fields.kind.clone(),
            release_version: fields.release_version.clone(),
            rollback_index: fields.rollback_index,
            channel: fields.channel.clone(),
            hardware: fields.hardware.clone(),
            expires: fields.expires.clone(),
        }
    }

    /// The bytes the release key signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        serde_json::to_value(self)
            .ok()
            .and_then(|value| canonical_json(&value).ok())
            .unwrap_or_default()
    }
}

/// Signs a payload statement with a release key.
pub fn sign_payload(
    signer: &dyn MetadataSigner,
    statement: &PayloadStatement,
) -> Result<Signature, crate::repository::SignerError> {
    let key = signer.key();
    let signature = signer.sign(&statement.signing_bytes())?;
    Ok(Signature {
        keyid: key.key_id(),
        sig: hex::encode(signature),
        unrecognized: serde_json::Map::new(),
    })
}

/// The release keys of a root, refused when missing, malformed or shared with a metadata role.
pub fn release_signing(root: &Root) -> Result<ReleaseSigning, ReleaseRejection> {
    let value = root
        .unrecognized
        .get(RELEASE_SIGNING_FIELD)
        .ok_or(ReleaseRejection::NoReleaseKeys)?;
    let signing =
        ReleaseSigning::deserialize(value).map_err(|_| ReleaseRejection::NoReleaseKeys)?;
    if signing.threshold == 0 || signing.keys.is_empty() {
        return Err(ReleaseRejection::NoReleaseKeys);
    }
    for (keyid, key) in &signing.keys {
        if key.key_id() != *keyid {
            return Err(ReleaseRejection::NoReleaseKeys);
        }
        let metadata_key = is_metadata_key(root, keyid, key);
        if metadata_key {
            return Err(ReleaseRejection::AuthoritiesConfused);
        }
    }
    Ok(signing)
}

/// Refuses a root that pins release keys which are also metadata keys (or pins them in a form
/// that does not parse). A root without the field is plain TUF and passes: such a root makes
/// every release fail [`appraise_release`] instead. The client applies this to every root it
/// trusts, so the two authorities can never be confused on a device.
pub(crate) fn check_release_keys_apart(root: &Root) -> Result<(), ReleaseRejection> {
    let Some(value) = root.unrecognized.get(RELEASE_SIGNING_FIELD) else {
        return Ok(());
    };
    let signing = ReleaseSigning::deserialize(value).map_err(|_| ReleaseRejection::Malformed)?;
    if signing
        .keys
        .iter()
        .any(|(keyid, key)| is_metadata_key(root, keyid, key))
    {
        return Err(ReleaseRejection::AuthoritiesConfused);
    }
    Ok(())
}

/// Whether a release key is also one of the root's metadata keys: by key id, or by public key
/// material (the same key under another scheme name or with extra fields has another id but is
/// still the same authority).
fn is_metadata_key(root: &Root, keyid: &KeyId, key: &Key) -> bool {
    root.roles.values().any(|role| role.keyids.contains(keyid))
        || root.keys.contains_key(keyid)
        || root
            .keys
            .values()
            .any(|metadata| same_public_key(&metadata.keyval.public, &key.keyval.public))
}

/// What the device is and has, for [`appraise_release`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceProfile {
    pub hardware_model: String,
    pub channel: String,
    /// The rollback index installed per kind (absent: nothing installed yet).
    pub installed_rollback_index: BTreeMap<String, u64>,
}

/// A release that may be installed on this device: only [`appraise_release`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovedRelease {
    target: VerifiedTarget,
    fields: ReleaseFields,
}

impl ApprovedRelease {
    pub fn target(&self) -> &VerifiedTarget {
        &self.target
    }

    pub fn fields(&self) -> &ReleaseFields {
        &self.fields
    }
}

/// Why a release is not for this device. One reason each, checked in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseRejection {
    #[error("the target carries no valid Enigm release fields")]
    Malformed,
    #[error("the root pins no release keys")]
    NoReleaseKeys,
    #[error("a release key is also a metadata key")]
    AuthoritiesConfused,
    #[error("the payload is not signed by the release-signing threshold")]
    PayloadSignature,
    #[error("the release is for another channel")]
    ChannelMismatch,
    #[error("the release is not for this hardware")]
    IncompatibleHardware,
    #[error("the release has expired")]
    Expired,
    #[error("the rollback index is below the installed one")]
    Downgrade,
}

impl ReleaseRejection {
    pub fn category(self) -> ReleaseCategory {
        match self {
            ReleaseRejection::Malformed => ReleaseCategory::Malformed,
            ReleaseRejection::NoReleaseKeys
            | ReleaseRejection::AuthoritiesConfused
            | ReleaseRejection::PayloadSignature => ReleaseCategory::PayloadSignature,
            ReleaseRejection::ChannelMismatch => ReleaseCategory::ChannelMismatch,
            ReleaseRejection::IncompatibleHardware => ReleaseCategory::IncompatibleHardware,
            ReleaseRejection::Expired => ReleaseCategory::ReleaseExpired,
            ReleaseRejection::Downgrade => ReleaseCategory::Downgrade,
        }
    }
}

/// The reported categories of release rejections (next to
/// [`crate::metadata::FailureCategory`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseCategory {
    Malformed,
    PayloadSignature,
    ChannelMismatch,
    IncompatibleHardware,
    ReleaseExpired,
    Downgrade,
}

impl ReleaseCategory {
    /// The audit and API reason of this rejection.
    pub fn reason(self) -> enigm_types::ReasonCategory {
        use enigm_types::ReasonCategory as R;
        match self {
            ReleaseCategory::Malformed => R::UpdateMalformed,
            ReleaseCategory::PayloadSignature => R::PayloadSignature,
            ReleaseCategory::ChannelMismatch => R::ChannelMismatch,
            ReleaseCategory::IncompatibleHardware => R::IncompatibleHardware,
            ReleaseCategory::ReleaseExpired => R::ReleaseExpired,
            ReleaseCategory::Downgrade => R::Downgrade,
        }
    }
}

/// The kinds of release payload (`custom.enigm.kind`).
pub const RELEASE_KINDS: [&str; 3] = ["os-image", "policy-bundle", "configuration-bundle"];

/// The release fields of a target: a known kind, at least one hardware model, a readable
/// expiry.
pub fn release_fields(target: &VerifiedTarget) -> Result<ReleaseFields, ReleaseRejection> {
    let fields = enigm_fields(target.custom()).ok_or(ReleaseRejection::Malformed)?;
    let well_formed = RELEASE_KINDS.contains(&fields.kind.as_str())
        && !fields.hardware.is_empty()
        && crate::time::parse_expiry(&fields.expires).is_some();
    if !well_formed {
        return Err(ReleaseRejection::Malformed);
    }
    Ok(fields)
}

/// The listed release fields of an unverified target entry (the repository's side, which
/// builds the metadata it then signs); `None` when it carries none or they are malformed.
pub(crate) fn listed_fields(entry: &crate::metadata::TargetFile) -> Option<ReleaseFields> {
    enigm_fields(entry.custom.as_ref())
}

/// `custom.enigm` read as release fields, without the well-formedness checks.
fn enigm_fields(custom: Option<&Value>) -> Option<ReleaseFields> {
    ReleaseFields::deserialize(custom?.get("enigm")?).ok()
}

/// The targets that a new release under `name` makes useless to every device: the same kind
/// and channel, a lower rollback index, hardware the new release covers entirely, and an
/// expiry no later than the new one's. Every device that could install one of them picks the
/// new release instead (the highest rollback index), and would refuse it after installing the
/// new one (the rollback index never falls), so the next targets metadata leaves them out: it
/// lists what a device may still install, which keeps a refresh small however long the history
/// grows. Targets without release fields are never superseded.
pub fn superseded_by<'a>(
    targets: &'a BTreeMap<String, crate::metadata::TargetFile>,
    name: &str,
    new: &ReleaseFields,
) -> Vec<&'a String> {
    targets
        .iter()
        .filter(|(other, _)| other.as_str() != name)
        .filter(|(_, entry)| listed_fields(entry).is_some_and(|old| supersedes(new, &old)))
        .map(|(other, _)| other)
        .collect()
}

/// Whether a release with fields `new` supersedes one with fields `old` (the rule of
/// [`superseded_by`]): the same kind and channel, a lower rollback index, hardware `new` covers
/// entirely, and an expiry no later than `new`'s. Command also answers with it which release
/// superseded a published one.
pub fn supersedes(new: &ReleaseFields, old: &ReleaseFields) -> bool {
    old.kind == new.kind
        && old.channel == new.channel
        && old.rollback_index < new.rollback_index
        && old
            .hardware
            .iter()
            .all(|model| new.hardware.contains(model))
        && match (
            crate::time::parse_expiry(&old.expires),
            crate::time::parse_expiry(&new.expires),
        ) {
            (Some(old), Some(new)) => old <= new,
            _ => false,
        }
}

/// Verifies the payload signatures of a target against the release keys pinned in `root`.
pub fn verify_payload(
    root: &Root,
    target: &VerifiedTarget,
    fields: &ReleaseFields,
) -> Result<(), ReleaseRejection> {
    let signing = release_signing(root)?;
    let sha256 = target.sha256().ok_or(ReleaseRejection::Malformed)?;
    let statement = PayloadStatement::new(target.name(), target.length(), sha256, fields);
    let message = statement.signing_bytes();
    let mut counted: Vec<&str> = Vec::new();
    for signature in &fields.payload_signatures {
        if counted.contains(&signature.keyid.as_str()) {
            continue;
        }
        let Some(key) = signing.keys.get(&signature.keyid) else {
            continue;
        };
        let Ok(bytes) = hex::decode(&signature.sig) else {
            continue;
        };
        if key.verify(&message, &bytes).is_ok() {
            counted.push(&signature.keyid);
        }
    }
    if (counted.len() as u64) < signing.threshold {
        return Err(ReleaseRejection::PayloadSignature);
    }
    Ok(())
}

/// Decides whether `target` may be installed on `device` now: release fields, the payload
/// signature under the pinned release keys, channel, hardware, expiry, and a rollback index not
/// below the installed one (equal is a re-install of the same security version, allowed so that
/// a failed install can be retried).
pub fn appraise_release(
    trusted: &TrustedMetadata,
    target: &VerifiedTarget,
    device: &DeviceProfile,
    now: Timestamp,
) -> Result<ApprovedRelease, ReleaseRejection> {
    let fields = release_fields(target)?;
    verify_payload(trusted.root(), target, &fields)?;
    if fields.channel != device.channel {
        return Err(ReleaseRejection::ChannelMismatch);
    }
    if !fields.hardware.contains(&device.hardware_model) {
        return Err(ReleaseRejection::IncompatibleHardware);
    }
    if crate::time::is_expired(&fields.expires, now) {
        return Err(ReleaseRejection::Expired);
    }
    let installed = device.installed_rollback_index.get(&fields.kind);
    if installed.is_some_and(|installed| fields.rollback_index < *installed) {
        return Err(ReleaseRejection::Downgrade);
    }
    Ok(ApprovedRelease {
        target: target.clone(),
        fields,
    })
}

/// Whether two `keyval.public` strings name the same key: equal without whitespace (PEM line
/// breaks), or the same bytes in hex of either case.
pub(crate) fn same_public_key(a: &str, b: &str) -> bool {
    let compact = |text: &str| -> String {
        text.chars()
            .filter(|character| !character.is_whitespace())
            .collect()
    };
    let (a, b) = (compact(a), compact(b));
    a == b || matches!((hex::decode(&a), hex::decode(&b)), (Ok(a), Ok(b)) if a == b)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use crate::metadata::TargetFile;
    use crate::repository::target_file;

    fn fields(
        kind: &str,
        channel: &str,
        index: u64,
        hardware: &[&str],
        expires: &str,
    ) -> ReleaseFields {
        ReleaseFields {
            kind: kind.to_owned(),
            release_version: format!("v{index}"),
            rollback_index: index,
            channel: channel.to_owned(),
            hardware: hardware.iter().map(|model| (*model).to_owned()).collect(),
            expires: expires.to_owned(),
            payload_signatures: Vec::new(),
        }
    }

    fn entry(fields: &ReleaseFields) -> TargetFile {
        target_file(
            1,
            &"0".repeat(64),
            Some(serde_json::json!({ "enigm": fields })),
        )
    }

    #[test]
    fn only_releases_every_device_would_pass_over_are_superseded() {
        const SOON: &str = "2027-01-01T00:00:00Z";
        const LATER: &str = "2027-06-01T00:00:00Z";
        let new = fields("os-image", "stable", 5, &["a", "b"], SOON);
        let mut targets = BTreeMap::new();
        for (name, old) in [
            ("older", fields("os-image", "stable", 4, &["a"], SOON)),
            (
                "older-both",
                fields("os-image", "stable", 1, &["a", "b"], SOON),
            ),
            ("same-index", fields("os-image", "stable", 5, &["a"], SOON)),
            ("newer", fields("os-image", "stable", 6, &["a"], SOON)),
            ("other-channel", fields("os-image", "beta", 4, &["a"], SOON)),
            (
                "other-kind",
                fields("policy-bundle", "stable", 4, &["a"], SOON),
            ),
            (
                "other-model",
                fields("os-image", "stable", 4, &["a", "c"], SOON),
            ),
            (
                "outlives-it",
                fields("os-image", "stable", 4, &["a"], LATER),
            ),
            (
                "bad-expiry",
                fields("os-image", "stable", 4, &["a"], "soon"),
            ),
        ] {
            targets.insert(name.to_owned(), entry(&old));
        }
        targets.insert(
            "no-fields".to_owned(),
            target_file(1, &"0".repeat(64), None),
        );
        // The new release's own name is never in the list, even listed with a lower index.
        targets.insert(
            "new".to_owned(),
            entry(&fields("os-image", "stable", 1, &["a"], SOON)),
        );
        let superseded: Vec<&str> = superseded_by(&targets, "new", &new)
            .into_iter()
            .map(String::as_str)
            .collect();
        assert_eq!(superseded, ["older", "older-both"]);
    }
}
