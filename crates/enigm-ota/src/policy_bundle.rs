//! Policy bundles: a device group's effective policies, compiled and signed by Command, delivered
//! as TUF targets of kind `policy-bundle`.
//!
//! **Authority.** A policy change is authorised by a multi-admin approval in Command, not by the
//! Release-Signing Authority, so a bundle carries no payload signature. Instead the top-level
//! targets role (offline, signed on the workstation) delegates the terminating role
//! [`POLICY_BUNDLE_ROLE`], for the paths [`POLICY_BUNDLE_PATHS`] only, to Command's online key;
//! Command signs that role's metadata when an approved change publishes new bundles. A device
//! finds its group's bundle with [`crate::client::TargetSearch`], so only the top-level targets
//! role or that delegation can vouch for it, and the delegation can vouch for nothing else.
//!
//! **Rollback.** Each group's bundles are numbered (`sequence`, the target's rollback index);
//! a device refuses a bundle numbered below the one it holds, and one with the same number but
//! other bytes (a replay of a number with other content is a forgery).
//!
//! **Freshness** is the TUF metadata's: a bundle is listed by delegated metadata that expires
//! and that Command re-signs before it does, so a bundle withheld or frozen shows as expired
//! metadata.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::VerifiedTarget;
use crate::keys::{Key, KeyId};
use crate::metadata::Targets;

/// The delegated targets role that lists the policy bundles.
pub const POLICY_BUNDLE_ROLE: &str = "policy-bundles";
/// The paths the delegation covers: `policy-bundles/<group>/<sequence>.json`.
pub const POLICY_BUNDLE_PATHS: &str = "policy-bundles/*/*";
/// The `kind` of a policy bundle target (`custom.enigm.kind`).
pub const POLICY_BUNDLE_KIND: &str = "policy-bundle";
/// The `_type` of a bundle's content.
pub const BUNDLE_TYPE: &str = "enigm-policy-bundle";
/// The largest bundle a device accepts.
pub const MAX_BUNDLE_BYTES: u64 = 1024 * 1024;

/// The target name of `group`'s bundle number `sequence`.
pub fn bundle_target_name(group: &str, sequence: u64) -> String {
    format!("{POLICY_BUNDLE_ROLE}/{group}/{sequence}.json")
}

/// The `delegations` object the top-level targets carries to hand the bundle paths to
/// `keys` (Command's online key), threshold 1, terminating.
pub fn bundle_delegation(keys: &[&Key]) -> Value {
    let keyids: Vec<KeyId> = keys.iter().map(|key| key.key_id()).collect();
    let key_map: BTreeMap<KeyId, Key> = keys
        .iter()
        .map(|key| (key.key_id(), (*key).clone()))
        .collect();
    serde_json::json!({
        "keys": key_map,
        "roles": [{
            "name": POLICY_BUNDLE_ROLE,
            "keyids": keyids,
            "threshold": 1,
            "terminating": true,
            "paths": [POLICY_BUNDLE_PATHS],
        }],
    })
}

/// The key ids top-level targets delegates the bundle role to (`None`: it does not delegate
/// it, so Command cannot publish bundles under this targets metadata).
pub fn delegated_bundle_keys(targets: &Targets) -> Option<Vec<KeyId>> {
    let roles = targets.delegations.as_ref()?.get("roles")?.as_array()?;
    let role = roles
        .iter()
        .find(|role| role.get("name").and_then(Value::as_str) == Some(POLICY_BUNDLE_ROLE))?;
    Vec::<KeyId>::deserialize(role.get("keyids")?).ok()
}

/// `custom.enigm` of a bundle target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleFields {
    pub kind: String,
    pub group: String,
    /// The bundle's sequence number within its group.
    pub rollback_index: u64,
}

impl BundleFields {
    /// The `custom` value of a target entry.
    pub fn custom(&self) -> Value {
        serde_json::json!({ "enigm": self })
    }
}

/// One policy in a bundle. The kinds a bundle does not list are the baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundledPolicy {
    pub policy_id: String,
    pub name: String,
    pub version: u64,
    /// SHA-256 of the version's canonical content, hex, as Command shows it.
    pub sha256: String,
    pub content: Value,
}

/// What the agent itself does under the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    /// How often the agent checks in.
    pub checkin_interval_seconds: u64,
    /// The signal kinds the agent collects and reports (by their wire names).
    pub collect: Vec<String>,
}

/// The content of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyBundle {
    #[serde(rename = "_type")]
    pub kind_tag: String,
    pub group: String,
    pub sequence: u64,
    /// RFC 3339, when Command compiled it.
    pub issued_at: String,
    /// Policy kind (`trust`, `attestation`, …) → the version in force.
    pub policies: BTreeMap<String, BundledPolicy>,
    pub agent: AgentSettings,
}

impl PolicyBundle {
    /// The bytes Command publishes: canonical JSON, so one content has one digest.
    pub fn to_bytes(&self) -> Result<Vec<u8>, BundleRejection> {
        let value = serde_json::to_value(self).map_err(|_| BundleRejection::Malformed)?;
        crate::canonical::canonical_json(&value).map_err(|_| BundleRejection::Malformed)
    }
}

/// Why a bundle is not for this device. One reason each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BundleRejection {
    #[error("the target carries no valid policy-bundle fields")]
    Malformed,
    #[error("the bundle is for another group")]
    WrongGroup,
    #[error("the bundle is larger than a device accepts")]
    TooLarge,
    #[error("the bundle is numbered below the one in force")]
    Downgrade,
    #[error("the bundle has the number of the one in force but other content")]
    Replayed,
    #[error("the bundle content does not parse or does not match its target")]
    BadContent,
}

impl BundleRejection {
    /// The audit and API reason of this rejection.
    pub fn reason(self) -> enigm_types::ReasonCategory {
        use enigm_types::ReasonCategory as R;
        match self {
            BundleRejection::Malformed
            | BundleRejection::WrongGroup
            | BundleRejection::TooLarge
            | BundleRejection::BadContent => R::UpdateMalformed,
            BundleRejection::Downgrade | BundleRejection::Replayed => R::Downgrade,
        }
    }
}

/// The bundle the device holds: its number and digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldBundle<'a> {
    pub sequence: u64,
    pub sha256: &'a str,
}

/// A bundle target this device may download: only [`appraise_bundle`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovedBundle {
    target: VerifiedTarget,
    fields: BundleFields,
}

impl ApprovedBundle {
    pub fn target(&self) -> &VerifiedTarget {
        &self.target
    }

    pub fn fields(&self) -> &BundleFields {
        &self.fields
    }
}

/// What [`appraise_bundle`] decides for a listed bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appraisal {
    /// A newer bundle: download it.
    Install(Box<ApprovedBundle>),
    /// The bundle the device already holds.
    Current,
}

/// Appraises `target` (found by a delegation-aware search, so signed by top-level targets or
/// the bundle delegation) as `group`'s bundle against the one the device holds.
pub fn appraise_bundle(
    target: &VerifiedTarget,
    group: &str,
    held: Option<HeldBundle<'_>>,
) -> Result<Appraisal, BundleRejection> {
    let fields = target
        .custom()
        .and_then(|custom| custom.get("enigm"))
        .and_then(|enigm| BundleFields::deserialize(enigm).ok())
        .ok_or(BundleRejection::Malformed)?;
    if fields.kind != POLICY_BUNDLE_KIND
        || target.name() != bundle_target_name(&fields.group, fields.rollback_index)
        || target.sha256().is_none()
    {
        return Err(BundleRejection::Malformed);
    }
    if fields.group != group {
        return Err(BundleRejection::WrongGroup);
    }
    if target.length() > MAX_BUNDLE_BYTES {
        return Err(BundleRejection::TooLarge);
    }
    if let Some(held) = held {
        if fields.rollback_index < held.sequence {
            return Err(BundleRejection::Downgrade);
        }
        if fields.rollback_index == held.sequence {
            return if target
                .sha256()
                .is_some_and(|sha| sha.eq_ignore_ascii_case(held.sha256))
            {
                Ok(Appraisal::Current)
            } else {
                Err(BundleRejection::Replayed)
            };
        }
    }
    Ok(Appraisal::Install(Box::new(ApprovedBundle {
        target: target.clone(),
        fields,
    })))
}

/// Reads the downloaded content of an approved bundle (whose length and SHA-256 the caller
/// has checked with [`crate::ArtifactVerifier`]): strict JSON, for the group and number its
/// target names.
pub fn read_bundle(
    approved: &ApprovedBundle,
    bytes: &[u8],
) -> Result<PolicyBundle, BundleRejection> {
    parse_bundle(bytes).and_then(|bundle| {
        if bundle.group == approved.fields.group
            && bundle.sequence == approved.fields.rollback_index
        {
            Ok(bundle)
        } else {
            Err(BundleRejection::BadContent)
        }
    })
}

/// Parses bundle content (from the network or the device's own store), bounded and strict.
pub fn parse_bundle(bytes: &[u8]) -> Result<PolicyBundle, BundleRejection> {
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(BundleRejection::TooLarge);
    }
    let bundle: PolicyBundle =
        serde_json::from_slice(bytes).map_err(|_| BundleRejection::BadContent)?;
    if bundle.kind_tag != BUNDLE_TYPE || bundle.agent.checkin_interval_seconds == 0 {
        return Err(BundleRejection::BadContent);
    }
    Ok(bundle)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use crate::repository::target_file;

    fn bundle(group: &str, sequence: u64) -> PolicyBundle {
        PolicyBundle {
            kind_tag: BUNDLE_TYPE.to_owned(),
            group: group.to_owned(),
            sequence,
            issued_at: "2026-12-06T00:00:00Z".to_owned(),
            policies: BTreeMap::new(),
            agent: AgentSettings {
                checkin_interval_seconds: 60,
                collect: vec!["firewall".to_owned()],
            },
        }
    }

    fn target_of(bundle: &PolicyBundle) -> (VerifiedTarget, Vec<u8>) {
        let bytes = bundle.to_bytes().unwrap();
        let fields = BundleFields {
            kind: POLICY_BUNDLE_KIND.to_owned(),
            group: bundle.group.clone(),
            rollback_index: bundle.sequence,
        };
        let sha = hex::encode(enigm_crypto::sha256(&bytes));
        let file = target_file(bytes.len() as u64, &sha, Some(fields.custom()));
        (
            VerifiedTarget {
                name: bundle_target_name(&bundle.group, bundle.sequence),
                file,
            },
            bytes,
        )
    }

    #[test]
    fn a_newer_bundle_installs_the_same_one_is_current_and_others_are_refused() {
        let (target, bytes) = target_of(&bundle("field", 3));
        let sha = target.sha256().unwrap().to_owned();
        let Appraisal::Install(approved) = appraise_bundle(&target, "field", None).unwrap() else {
            panic!("a first bundle installs");
        };
        assert_eq!(read_bundle(&approved, &bytes).unwrap(), bundle("field", 3));
        let held = |sequence, sha256| Some(HeldBundle { sequence, sha256 });
        assert!(matches!(
            appraise_bundle(&target, "field", held(2, "00")),
            Ok(Appraisal::Install(_))
        ));
        assert_eq!(
            appraise_bundle(&target, "field", held(3, &sha)).unwrap(),
            Appraisal::Current
        );
        assert_eq!(
            appraise_bundle(&target, "field", held(3, "00")),
            Err(BundleRejection::Replayed)
        );
        assert_eq!(
            appraise_bundle(&target, "field", held(4, "00")),
            Err(BundleRejection::Downgrade)
        );
        assert_eq!(
            appraise_bundle(&target, "lab", None),
            Err(BundleRejection::WrongGroup)
        );
    }

    #[test]
    fn content_must_match_its_target_and_parse_strictly() {
        let (target, _) = target_of(&bundle("field", 3));
        let Appraisal::Install(approved) = appraise_bundle(&target, "field", None).unwrap() else {
            panic!("installs");
        };
        let other = bundle("field", 2).to_bytes().unwrap();
        assert_eq!(
            read_bundle(&approved, &other),
            Err(BundleRejection::BadContent)
        );
        let mut extra: Value = serde_json::to_value(bundle("field", 3)).unwrap();
        extra["agent"]["unexpected"] = Value::Bool(true);
        assert_eq!(
            read_bundle(&approved, &serde_json::to_vec(&extra).unwrap()),
            Err(BundleRejection::BadContent)
        );
        assert_eq!(parse_bundle(b"{"), Err(BundleRejection::BadContent));
    }

    #[test]
    fn a_target_whose_name_and_fields_disagree_is_malformed() {
        let (mut target, _) = target_of(&bundle("field", 3));
        target.name = bundle_target_name("field", 4);
        assert_eq!(
            appraise_bundle(&target, "field", None),
            Err(BundleRejection::Malformed)
        );
    }

    #[test]
    fn the_delegation_names_the_key_for_the_bundle_paths_only() {
        let key = Key::ed25519(&[7; 32]);
        let delegation = bundle_delegation(&[&key]);
        let mut targets = crate::repository::build_targets(
            BTreeMap::new(),
            1,
            enigm_types::Timestamp::UNIX_EPOCH,
        );
        assert_eq!(delegated_bundle_keys(&targets), None);
        targets.delegations = Some(delegation.clone());
        assert_eq!(delegated_bundle_keys(&targets), Some(vec![key.key_id()]));
        assert_eq!(delegation["roles"][0]["paths"][0], POLICY_BUNDLE_PATHS);
        assert_eq!(delegation["roles"][0]["terminating"], true);
    }
}
