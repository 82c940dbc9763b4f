//! [`TrustedMetadata`]: what the client trusts, and each top-level document applied with the
//! checks of the specification (root chain, rollback, lengths and hashes, expiry).

use enigm_types::Timestamp;

use crate::metadata::{
    MetaFile, MetadataError, Root, Snapshot, Targets, Timestamp as TimestampRole, Verified,
    check_threshold, parse, verify_role,
};
use crate::time::is_expired;

use super::search::Delegations;
use super::target::VerifiedTarget;

/// Length bounds for documents whose length nobody vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub root: u64,
    pub timestamp: u64,
    pub snapshot: u64,
    pub targets: u64,
    /// How many new root versions one refresh may walk through.
    pub max_root_rotations: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            root: 512 * 1024,
            timestamp: 16 * 1024,
            snapshot: 2 * 1024 * 1024,
            targets: 64 * 1024 * 1024,
            max_root_rotations: 256,
        }
    }
}

/// The top-level metadata the client trusts.
#[derive(Debug, Clone)]
pub struct TrustedMetadata {
    pub(super) root: Verified<Root>,
    pub(super) timestamp: Option<Verified<TimestampRole>>,
    pub(super) snapshot: Option<Verified<Snapshot>>,
    pub(super) targets: Option<Verified<Targets>>,
    /// Delegated targets roles trusted in this session, by name, with the delegator they were
    /// verified against (a role reached through another delegator is verified again).
    pub(super) delegated: std::collections::BTreeMap<String, (String, Verified<Targets>)>,
}

pub(super) fn expired<T: crate::metadata::RoleMetadata>(
    signed: &T,
    now: Timestamp,
) -> Result<(), MetadataError> {
    if is_expired(signed.expires(), now) {
        return Err(MetadataError::Expired {
            role: T::TYPE.to_owned(),
            expires: signed.expires().to_owned(),
        });
    }
    Ok(())
}

/// A root whose release keys are also metadata keys is refused as malformed (see
/// [`crate::release`]).
fn release_keys_apart(root: &Root) -> Result<(), MetadataError> {
    crate::release::check_release_keys_apart(root).map_err(|rejection| MetadataError::Malformed {
        role: "root".to_owned(),
        detail: rejection.to_string(),
    })
}

pub(super) fn matches_meta(role: &str, bytes: &[u8], meta: &MetaFile) -> Result<(), MetadataError> {
    let mismatch = || MetadataError::Mismatch {
        role: role.to_owned(),
    };
    if meta
        .length
        .is_some_and(|length| bytes.len() as u64 != length)
    {
        return Err(mismatch());
    }
    if meta
        .hashes
        .as_ref()
        .is_some_and(|hashes| !hashes_match(hashes, bytes))
    {
        return Err(mismatch());
    }
    Ok(())
}

/// Whether `bytes` match every hash of a known algorithm (SHA-256, SHA-512) in `hashes`, and
/// there is at least one: hashes of other algorithms alone vouch for nothing.
fn hashes_match(hashes: &std::collections::BTreeMap<String, String>, bytes: &[u8]) -> bool {
    let mut checked = false;
    for (algorithm, expected) in hashes {
        let actual = match algorithm.as_str() {
            "sha256" => hex::encode(enigm_crypto::sha256(bytes)),
            "sha512" => hex::encode(enigm_crypto::sha512(bytes)),
            _ => continue,
        };
        if actual != expected.to_ascii_lowercase() {
            return false;
        }
        checked = true;
    }
    checked
}

impl TrustedMetadata {
    /// Starts from a trusted root (shipped with the device or given at `init`): it must be
    /// signed by its own root threshold. Its expiry is checked after the root chain is walked.
    pub fn new(root_bytes: &[u8]) -> Result<Self, MetadataError> {
        let (envelope, root) = parse::<Root>(root_bytes)?;
        check_threshold("root", &envelope, &root.keys, root.role("root")?)?;
        release_keys_apart(&root)?;
        Ok(TrustedMetadata {
            root: Verified {
                signed: root,
                bytes: root_bytes.to_vec(),
            },
            timestamp: None,
            snapshot: None,
            targets: None,
            delegated: std::collections::BTreeMap::new(),
        })
    }

    pub fn root(&self) -> &Root {
        &self.root.signed
    }

    pub fn root_bytes(&self) -> &[u8] {
        &self.root.bytes
    }

    pub fn timestamp(&self) -> Option<&TimestampRole> {
        self.timestamp.as_ref().map(|verified| &verified.signed)
    }

    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref().map(|verified| &verified.signed)
    }

    pub fn targets(&self) -> Option<&Targets> {
        self.targets.as_ref().map(|verified| &verified.signed)
    }

    /// Applies the next root version: signed by the trusted root's threshold and by its own,
    /// version exactly one more. Trusted timestamp, snapshot and targets are kept; a rotated
    /// snapshot or timestamp key is handled by [`TrustedMetadata::forget_online_metadata`].
    pub fn update_root(&mut self, bytes: &[u8]) -> Result<(), MetadataError> {
        let (envelope, root) = parse::<Root>(bytes)?;
        let trusted = &self.root.signed;
        check_threshold("root", &envelope, &trusted.keys, trusted.role("root")?)?;
        check_threshold("root", &envelope, &root.keys, root.role("root")?)?;
        release_keys_apart(&root)?;
        let expected = trusted.version.saturating_add(1);
        if root.version != expected {
            return Err(MetadataError::WrongVersion {
                role: "root".to_owned(),
                got: root.version,
                expected,
            });
        }
        let online_rotated = ["timestamp", "snapshot"].iter().any(|role| {
            trusted.roles.get(*role).map(|keys| &keys.keyids)
                != root.roles.get(*role).map(|keys| &keys.keyids)
        });
        self.root = Verified {
            signed: root,
            bytes: bytes.to_vec(),
        };
        if online_rotated {
            // Fast-forward recovery (spec 5.3.11): after a timestamp or snapshot key rotation
            // the old versions no longer bound the new ones.
            self.forget_online_metadata();
        }
        Ok(())
    }

    /// Drops trusted timestamp and snapshot (and the targets they vouched for).
    pub fn forget_online_metadata(&mut self) {
        self.timestamp = None;
        self.snapshot = None;
        self.targets = None;
        self.delegated.clear();
    }

    /// The trusted root must not be expired once the chain is walked (a frozen root).
    pub fn check_root(&self, now: Timestamp) -> Result<(), MetadataError> {
        expired(&self.root.signed, now)
    }

    /// Applies a timestamp. `Ok(false)` when it is the version already trusted (nothing
    /// changes); a lower version, or a lower snapshot version, is a rollback.
    pub fn update_timestamp(
        &mut self,
        bytes: &[u8],
        now: Timestamp,
    ) -> Result<bool, MetadataError> {
        let root = &self.root.signed;
        let verified: Verified<TimestampRole> =
            verify_role(bytes, &root.keys, root.role("timestamp")?)?;
        let snapshot_meta =
            verified
                .signed
                .meta
                .get("snapshot.json")
                .ok_or_else(|| MetadataError::Malformed {
                    role: "timestamp".to_owned(),
                    detail: "no snapshot.json".to_owned(),
                })?;
        if let Some(trusted) = &self.timestamp {
            if verified.signed.version < trusted.signed.version {
                return Err(MetadataError::Rollback {
                    role: "timestamp".to_owned(),
                    got: verified.signed.version,
                    trusted: trusted.signed.version,
                });
            }
            let trusted_snapshot = trusted
                .signed
                .meta
                .get("snapshot.json")
                .map_or(0, |meta| meta.version);
            if snapshot_meta.version < trusted_snapshot {
                return Err(MetadataError::Rollback {
                    role: "snapshot".to_owned(),
                    got: snapshot_meta.version,
                    trusted: trusted_snapshot,
                });
            }
            if verified.signed.version == trusted.signed.version {
                expired(&trusted.signed, now)?;
                return Ok(false);
            }
        }
        expired(&verified.signed, now)?;
        self.timestamp = Some(verified);
        Ok(true)
    }

    /// The snapshot version and length bound the trusted timestamp names.
    pub fn snapshot_meta(&self) -> Result<&MetaFile, MetadataError> {
        self.timestamp
            .as_ref()
            .and_then(|timestamp| timestamp.signed.meta.get("snapshot.json"))
            .ok_or_else(|| MetadataError::Missing("no trusted timestamp".to_owned()))
    }

    /// Applies a snapshot: as the timestamp describes it, signed, not rolling back or removing
    /// any role the trusted snapshot lists, not expired.
    pub fn update_snapshot(&mut self, bytes: &[u8], now: Timestamp) -> Result<(), MetadataError> {
        let meta = self.snapshot_meta()?.clone();
        matches_meta("snapshot", bytes, &meta)?;
        let root = &self.root.signed;
        let verified: Verified<Snapshot> = verify_role(bytes, &root.keys, root.role("snapshot")?)?;
        if verified.signed.version != meta.version {
            return Err(MetadataError::WrongVersion {
                role: "snapshot".to_owned(),
                got: verified.signed.version,
                expected: meta.version,
            });
        }
        if let Some(trusted) = &self.snapshot {
            for (name, old) in &trusted.signed.meta {
                match verified.signed.meta.get(name) {
                    None => {
                        return Err(MetadataError::Rollback {
                            role: name.trim_end_matches(".json").to_owned(),
                            got: 0,
                            trusted: old.version,
                        });
                    }
                    Some(new) if new.version < old.version => {
                        return Err(MetadataError::Rollback {
                            role: name.trim_end_matches(".json").to_owned(),
                            got: new.version,
                            trusted: old.version,
                        });
                    }
                    Some(_) => {}
                }
            }
        }
        expired(&verified.signed, now)?;
        self.snapshot = Some(verified);
        // Targets trusted under an older snapshot must be fetched again.
        self.targets = None;
        self.delegated.clear();
        Ok(())
    }

    /// The targets version (and, when given, length and hashes) the trusted snapshot names.
    pub fn targets_meta(&self) -> Result<&MetaFile, MetadataError> {
        self.snapshot
            .as_ref()
            .and_then(|snapshot| snapshot.signed.meta.get("targets.json"))
            .ok_or_else(|| MetadataError::Missing("the snapshot lists no targets".to_owned()))
    }

    /// Applies the top-level targets metadata.
    pub fn update_targets(&mut self, bytes: &[u8], now: Timestamp) -> Result<(), MetadataError> {
        let meta = self.targets_meta()?.clone();
        matches_meta("targets", bytes, &meta)?;
        let root = &self.root.signed;
        let verified: Verified<Targets> = verify_role(bytes, &root.keys, root.role("targets")?)?;
        Delegations::of("targets", &verified.signed)?;
        if verified.signed.version != meta.version {
            return Err(MetadataError::WrongVersion {
                role: "targets".to_owned(),
                got: verified.signed.version,
                expected: meta.version,
            });
        }
        expired(&verified.signed, now)?;
        self.targets = Some(verified);
        Ok(())
    }

    /// A target the trusted top-level targets metadata lists.
    pub fn target(&self, name: &str) -> Option<VerifiedTarget> {
        let targets = self.targets.as_ref()?;
        targets.signed.targets.get(name).map(|file| VerifiedTarget {
            name: name.to_owned(),
            file: file.clone(),
        })
    }

    /// Every target the trusted top-level targets metadata lists.
    pub fn all_targets(&self) -> Vec<VerifiedTarget> {
        self.targets
            .as_ref()
            .map(|targets| {
                targets
                    .signed
                    .targets
                    .iter()
                    .map(|(name, file)| VerifiedTarget {
                        name: name.clone(),
                        file: file.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Trusted metadata loaded from a client's store: the root, then the others applied as far as
/// they still verify. Local copies may have expired since they were stored; they still bound
/// rollback, so they are loaded without the expiry check (the refresh checks the new ones).
pub fn load_trusted(
    root: &[u8],
    timestamp: Option<&[u8]>,
    snapshot: Option<&[u8]>,
    targets: Option<&[u8]>,
) -> Result<TrustedMetadata, MetadataError> {
    let mut trusted = TrustedMetadata::new(root)?;
    let before_any_expiry = Timestamp::from_unix_millis(0);
    let loaded_timestamp =
        timestamp.is_some_and(|bytes| trusted.update_timestamp(bytes, before_any_expiry).is_ok());
    let loaded_snapshot = loaded_timestamp
        && snapshot.is_some_and(|bytes| trusted.update_snapshot(bytes, before_any_expiry).is_ok());
    if let (true, Some(bytes)) = (loaded_snapshot, targets) {
        // A stale targets copy is simply fetched again.
        let _ = trusted.update_targets(bytes, before_any_expiry);
    }
    Ok(trusted)
}
