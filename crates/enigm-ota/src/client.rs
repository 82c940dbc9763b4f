//! The TUF client workflow (specification §5) as a sans-IO state machine.
//!
//! [`TrustedMetadata`] holds what the client trusts and applies each new document with the
//! checks the specification names: the root chain (each new root signed by the old and the new
//! threshold, version exactly one more), timestamp (no version rollback, no snapshot version
//! rollback), snapshot (length and hashes as the timestamp says, its version, no rollback or
//! removal of a role), targets (length and hashes when the snapshot gives them, its version),
//! and expiry of each against an injected `now` (freeze attacks). [`Refresh`] drives the order:
//! it says which file to fetch next and with which length bound (endless-data attacks), and
//! takes the bytes back; the caller does the fetching and persists what it is told to.

use enigm_types::Timestamp;

use crate::metadata::{
    FailureCategory, MetaFile, MetadataError, Root, Snapshot, TargetFile, Targets,
    Timestamp as TimestampRole, Verified, check_threshold, parse, verify_role,
};
use crate::time::is_expired;

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
    root: Verified<Root>,
    timestamp: Option<Verified<TimestampRole>>,
    snapshot: Option<Verified<Snapshot>>,
    targets: Option<Verified<Targets>>,
    /// Delegated targets roles trusted in this session, by name, with the delegator they were
    /// verified against (a role reached through another delegator is verified again).
    delegated: std::collections::BTreeMap<String, (String, Verified<Targets>)>,
}

/// A target the trusted targets metadata lists: only [`TrustedMetadata::target`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTarget {
    name: String,
    file: TargetFile,
}

impl VerifiedTarget {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn length(&self) -> u64 {
        self.file.length
    }

    /// The SHA-256 the targets metadata gives, hex; `None` when it gives only other hashes.
    pub fn sha256(&self) -> Option<&str> {
        self.file.hashes.get("sha256").map(String::as_str)
    }

    pub fn file(&self) -> &TargetFile {
        &self.file
    }

    pub fn custom(&self) -> Option<&serde_json::Value> {
        self.file.custom.as_ref()
    }

    /// The name as a relative local path, refused when it could leave a directory or is not a
    /// [`TargetName`](crate::TargetName): `..` or `.` segments, empty segments, a leading `/`,
    /// backslashes, NUL and other control characters, more than 255 bytes.
    pub fn local_path(&self) -> Result<&str, TargetError> {
        safe_local_path(&self.name)
    }
}

/// A target name as a relative path under a directory, or a refusal: the rules of
/// [`TargetName::parse`](crate::TargetName::parse), the one check of target names.
pub fn safe_local_path(name: &str) -> Result<&str, TargetError> {
    crate::TargetName::parse(name).map_err(|_| TargetError::UnsafeName)?;
    Ok(name)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the target name could leave its directory")]
    UnsafeName,
    #[error("the artifact is longer than the metadata says")]
    TooLong,
    #[error("the artifact does not have the length and SHA-256 the metadata says")]
    Mismatch,
    #[error("the target has no SHA-256 hash")]
    NoSha256,
}

impl TargetError {
    pub fn category(self) -> FailureCategory {
        match self {
            TargetError::UnsafeName => FailureCategory::UnsafeTargetName,
            TargetError::TooLong => FailureCategory::TooLarge,
            TargetError::Mismatch | TargetError::NoSha256 => FailureCategory::ArtifactMismatch,
        }
    }
}

fn expired<T: crate::metadata::RoleMetadata>(
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

fn matches_meta(role: &str, bytes: &[u8], meta: &MetaFile) -> Result<(), MetadataError> {
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

/// Which document a [`Refresh`] needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataRequest {
    /// `root`, `timestamp`, `snapshot` or `targets`.
    pub role: &'static str,
    /// The file name to fetch under the metadata URL (`N.root.json`, `timestamp.json`,
    /// `N.snapshot.json` with consistent snapshots, …).
    pub file_name: String,
    /// Read no more than this many bytes.
    pub max_length: u64,
}

/// What the caller should persist after a successful step: the role's non-versioned name and
/// the verified bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persist {
    pub file_name: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Root,
    Timestamp,
    Snapshot,
    Targets,
    Done,
}

/// Why a fetch produced no document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchFailure {
    /// The repository does not have the file (404 or 403).
    NotFound,
    /// The file was longer than the request's bound.
    TooLarge,
    /// Anything else (network, server error).
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error("the repository did not answer for {0}")]
    Unavailable(String),
    #[error("refresh already finished")]
    Finished,
}

impl RefreshError {
    pub fn category(&self) -> FailureCategory {
        match self {
            RefreshError::Metadata(error) => error.category(),
            RefreshError::Unavailable(_) | RefreshError::Finished => FailureCategory::NotFound,
        }
    }
}

/// One refresh of the top-level metadata: root chain, timestamp, snapshot, targets.
#[derive(Debug)]
pub struct Refresh {
    trusted: TrustedMetadata,
    limits: Limits,
    step: Step,
    rotations: u64,
    now: Timestamp,
}

impl Refresh {
    pub fn new(trusted: TrustedMetadata, limits: Limits, now: Timestamp) -> Self {
        Refresh {
            trusted,
            limits,
            step: Step::Root,
            rotations: 0,
            now,
        }
    }

    /// What to fetch next; `None` when the refresh is complete.
    pub fn next_request(&self) -> Option<MetadataRequest> {
        let root = self.trusted.root();
        let consistent = root.consistent_snapshot;
        match self.step {
            Step::Root => Some(MetadataRequest {
                role: "root",
                file_name: format!("{}.root.json", root.version.saturating_add(1)),
                max_length: self.limits.root,
            }),
            Step::Timestamp => Some(MetadataRequest {
                role: "timestamp",
                file_name: "timestamp.json".to_owned(),
                max_length: self.limits.timestamp,
            }),
            Step::Snapshot => {
                let meta = self.trusted.snapshot_meta().ok()?;
                Some(MetadataRequest {
                    role: "snapshot",
                    file_name: if consistent {
                        format!("{}.snapshot.json", meta.version)
                    } else {
                        "snapshot.json".to_owned()
                    },
                    max_length: meta.length.unwrap_or(self.limits.snapshot),
                })
            }
            Step::Targets => {
                let meta = self.trusted.targets_meta().ok()?;
                Some(MetadataRequest {
                    role: "targets",
                    file_name: if consistent {
                        format!("{}.targets.json", meta.version)
                    } else {
                        "targets.json".to_owned()
                    },
                    max_length: meta.length.unwrap_or(self.limits.targets),
                })
            }
            Step::Done => None,
        }
    }

    /// Takes the outcome of fetching [`Refresh::next_request`]; answers what to persist.
    pub fn provide(
        &mut self,
        fetched: Result<Vec<u8>, FetchFailure>,
    ) -> Result<Option<Persist>, RefreshError> {
        let request = self.next_request().ok_or(RefreshError::Finished)?;
        let bytes = match fetched {
            Ok(bytes) if bytes.len() as u64 > request.max_length => {
                return Err(MetadataError::TooLarge {
                    role: request.role.to_owned(),
                    limit: request.max_length,
                }
                .into());
            }
            Ok(bytes) => bytes,
            Err(FetchFailure::NotFound) if self.step == Step::Root => {
                // No newer root: the chain ends here, and must not be expired.
                self.trusted.check_root(self.now)?;
                self.step = Step::Timestamp;
                return Ok(None);
            }
            Err(FetchFailure::TooLarge) => {
                return Err(MetadataError::TooLarge {
                    role: request.role.to_owned(),
                    limit: request.max_length,
                }
                .into());
            }
            Err(_) => return Err(RefreshError::Unavailable(request.file_name)),
        };
        let persist = |bytes: Vec<u8>| {
            Some(Persist {
                file_name: format!("{}.json", request.role),
                bytes,
            })
        };
        match self.step {
            Step::Root => {
                self.trusted.update_root(&bytes)?;
                self.rotations += 1;
                if self.rotations >= self.limits.max_root_rotations {
                    self.trusted.check_root(self.now)?;
                    self.step = Step::Timestamp;
                }
                Ok(persist(bytes))
            }
            Step::Timestamp => {
                let changed = self.trusted.update_timestamp(&bytes, self.now)?;
                // Under an unchanged timestamp the trusted snapshot and targets are kept only
                // while they are unexpired (they may come from a store, loaded without their
                // expiry); otherwise they are fetched again and their expiry decides (a frozen
                // repository serving a long-lived timestamp over an expired snapshot).
                let now = self.now;
                let fresh = |expires: Option<&str>| expires.is_some_and(|e| !is_expired(e, now));
                self.step =
                    if changed || !fresh(self.trusted.snapshot().map(|s| s.expires.as_str())) {
                        Step::Snapshot
                    } else if !fresh(self.trusted.targets().map(|t| t.expires.as_str())) {
                        Step::Targets
                    } else {
                        Step::Done
                    };
                Ok(if changed { persist(bytes) } else { None })
            }
            Step::Snapshot => {
                self.trusted.update_snapshot(&bytes, self.now)?;
                self.step = Step::Targets;
                Ok(persist(bytes))
            }
            Step::Targets => {
                self.trusted.update_targets(&bytes, self.now)?;
                self.step = Step::Done;
                Ok(persist(bytes))
            }
            Step::Done => Err(RefreshError::Finished),
        }
    }

    /// The trusted metadata so far (complete once [`Refresh::next_request`] is `None`).
    pub fn into_trusted(self) -> TrustedMetadata {
        self.trusted
    }

    pub fn trusted(&self) -> &TrustedMetadata {
        &self.trusted
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

/// A target of targets metadata whose signatures were verified (e.g. by Command, checking
/// what a signing workstation handed in).
pub fn target_of(targets: &Verified<Targets>, name: &str) -> Option<VerifiedTarget> {
    targets.signed.targets.get(name).map(|file| VerifiedTarget {
        name: name.to_owned(),
        file: file.clone(),
    })
}

/// Checks an artifact as it streams: refuses as soon as it is longer than the metadata says,
/// and at the end compares the length and every known hash (SHA-256, SHA-512).
#[derive(Debug)]
pub struct ArtifactVerifier {
    target: VerifiedTarget,
    expected_length: u64,
    expected_sha256: Option<String>,
    expected_sha512: Option<String>,
    received: u64,
    sha256: enigm_crypto::Sha256Stream,
    sha512: Option<enigm_crypto::Sha512Stream>,
}

/// An artifact whose length and hashes matched its verified target: only
/// [`ArtifactVerifier::finish`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedArtifact {
    target: VerifiedTarget,
}

impl VerifiedArtifact {
    /// The target the artifact's bytes matched.
    pub fn target(&self) -> &VerifiedTarget {
        &self.target
    }

    pub fn into_target(self) -> VerifiedTarget {
        self.target
    }
}

impl ArtifactVerifier {
    pub fn new(target: &VerifiedTarget) -> Result<Self, TargetError> {
        let hash = |name: &str| target.file.hashes.get(name).map(|h| h.to_ascii_lowercase());
        let (expected_sha256, expected_sha512) = (hash("sha256"), hash("sha512"));
        if expected_sha256.is_none() && expected_sha512.is_none() {
            return Err(TargetError::NoSha256);
        }
        Ok(ArtifactVerifier {
            target: target.clone(),
            expected_length: target.length(),
            sha512: expected_sha512
                .as_ref()
                .map(|_| enigm_crypto::Sha512Stream::new()),
            expected_sha256,
            expected_sha512,
            received: 0,
            sha256: enigm_crypto::Sha256Stream::new(),
        })
    }

    pub fn update(&mut self, chunk: &[u8]) -> Result<(), TargetError> {
        self.received = self.received.saturating_add(chunk.len() as u64);
        if self.received > self.expected_length {
            return Err(TargetError::TooLong);
        }
        self.sha256.update(chunk);
        if let Some(sha512) = &mut self.sha512 {
            sha512.update(chunk);
        }
        Ok(())
    }

    /// Checks the length and hashes of everything fed; the witness names the target the
    /// verifier was made for, so it can never name a target whose bytes were not the ones
    /// checked.
    pub fn finish(self) -> Result<VerifiedArtifact, TargetError> {
        let sha256 = hex::encode(self.sha256.finish());
        let sha512 = self.sha512.map(|sha512| hex::encode(sha512.finish()));
        let sha256_ok = self
            .expected_sha256
            .is_none_or(|expected| expected == sha256);
        let sha512_ok = self
            .expected_sha512
            .is_none_or(|expected| Some(expected) == sha512);
        if self.received != self.expected_length || !sha256_ok || !sha512_ok {
            return Err(TargetError::Mismatch);
        }
        Ok(VerifiedArtifact {
            target: self.target,
        })
    }
}

/// A `delegations` object of targets metadata.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
struct Delegations {
    keys: std::collections::BTreeMap<crate::keys::KeyId, crate::keys::Key>,
    #[serde(default)]
    roles: Option<Vec<DelegatedRole>>,
    #[serde(default)]
    succinct_roles: Option<SuccinctRoles>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
struct DelegatedRole {
    name: String,
    keyids: Vec<crate::keys::KeyId>,
    threshold: u64,
    terminating: bool,
    #[serde(default)]
    paths: Option<Vec<String>>,
    #[serde(default)]
    path_hash_prefixes: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
struct SuccinctRoles {
    keyids: Vec<crate::keys::KeyId>,
    threshold: u64,
    bit_length: u32,
    name_prefix: String,
}

impl SuccinctRoles {
    fn suffix_len(&self) -> usize {
        (self.bit_length as usize).div_ceil(4)
    }

    fn role_for(&self, target: &str) -> Option<String> {
        if !(1..=32).contains(&self.bit_length) {
            return None;
        }
        let hash = enigm_crypto::sha256(target.as_bytes());
        let [a, b, c, d, ..] = hash;
        let first = u32::from_be_bytes([a, b, c, d]);
        let bin = first.checked_shr(32 - self.bit_length).unwrap_or(0);
        Some(format!(
            "{}-{:0width$x}",
            self.name_prefix,
            bin,
            width = self.suffix_len()
        ))
    }

    fn is_role(&self, name: &str) -> bool {
        let Some(suffix) = name
            .strip_prefix(self.name_prefix.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
        else {
            return false;
        };
        suffix.len() == self.suffix_len()
            && u64::from_str_radix(suffix, 16)
                .is_ok_and(|bin| bin < (1u64 << self.bit_length.min(32)))
    }
}

/// `fnmatch` of one path segment (Python's, as TUF path patterns use it): `*`, `?`, `[set]`,
/// `[!set]`, `[a-z]`, and a `[` without its `]` as a literal. Every token but `*` matches one
/// character, so backtracking to the last `*` only is enough: at worst text length × pattern length
/// steps, whatever a delegator writes (a naive recursion is exponential in the `*`s).
fn fnmatch(text: &[char], pattern: &[char]) -> bool {
    let tokens = glob_tokens(pattern);
    let (mut t, mut p) = (0usize, 0usize);
    // The last `*` seen, and the text position it is currently taken to end at.
    let mut star: Option<(usize, usize)> = None;
    loop {
        match (tokens.get(p), text.get(t)) {
            (Some(GlobToken::Star), _) => {
                star = Some((p, t));
                p += 1;
            }
            (Some(token), Some(&character)) if token.matches(character) => {
                p += 1;
                t += 1;
            }
            (None, None) => return true,
            _ => match star {
                // The `*` swallows one more character and the rest is tried again.
                Some((star_at, star_end)) if star_end < text.len() => {
                    star = Some((star_at, star_end + 1));
                    p = star_at + 1;
                    t = star_end + 1;
                }
                _ => return false,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum GlobToken {
    Star,
    AnyByte,
    Literal(char),
    /// `[...]`: negated or not, with single bytes and inclusive ranges.
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl GlobToken {
    fn matches(&self, character: char) -> bool {
        match self {
            GlobToken::Star | GlobToken::AnyByte => true,
            GlobToken::Literal(literal) => *literal == character,
            GlobToken::Set { negated, ranges } => {
                ranges
                    .iter()
                    .any(|(low, high)| (*low..=*high).contains(&character))
                    != *negated
            }
        }
    }
}

/// A pattern as tokens, with Python's `fnmatch.translate` reading of sets: a `]` right after
/// `[` or `[!` belongs to the set, `-` first or last is literal, and a `[` that is never closed
/// is a literal `[`.
fn glob_tokens(pattern: &[char]) -> Vec<GlobToken> {
    let mut tokens = Vec::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some((&first, after)) = rest.split_first() {
        rest = after;
        match first {
            '*' => {
                // Consecutive stars are one star.
                if tokens.last() != Some(&GlobToken::Star) {
                    tokens.push(GlobToken::Star);
                }
            }
            '?' => tokens.push(GlobToken::AnyByte),
            '[' => {
                let (negated, body) = match after.split_first() {
                    Some(('!', body)) => (true, body),
                    _ => (false, after),
                };
                // The first byte of the set may be `]`; the set closes at the next `]`.
                let skip = usize::from(body.first() == Some(&']'));
                let close = body
                    .iter()
                    .skip(skip)
                    .position(|character| *character == ']')
                    .map(|position| position + skip);
                let Some(close) = close else {
                    tokens.push(GlobToken::Literal('['));
                    continue;
                };
                let (set, tail) = body.split_at(close);
                rest = tail.get(1..).unwrap_or_default();
                let mut ranges = Vec::new();
                let mut remaining = set;
                while let Some((&low, more)) = remaining.split_first() {
                    match more {
                        ['-', high, tail @ ..] => {
                            // A reversed range matches nothing, as in Python.
                            if low <= *high {
                                ranges.push((low, *high));
                            }
                            remaining = tail;
                        }
                        _ => {
                            ranges.push((low, low));
                            remaining = more;
                        }
                    }
                }
                tokens.push(GlobToken::Set { negated, ranges });
            }
            literal => tokens.push(GlobToken::Literal(literal)),
        }
    }
    tokens
}

fn path_matches(target: &str, pattern: &str) -> bool {
    let targets: Vec<&str> = target.split('/').collect();
    let patterns: Vec<&str> = pattern.split('/').collect();
    targets.len() == patterns.len()
        && targets.iter().zip(&patterns).all(|(t, p)| {
            let text: Vec<char> = t.chars().collect();
            let pattern: Vec<char> = p.chars().collect();
            fnmatch(&text, &pattern)
        })
}

impl DelegatedRole {
    fn covers(&self, target: &str) -> bool {
        if let Some(paths) = &self.paths {
            return paths.iter().any(|pattern| path_matches(target, pattern));
        }
        if let Some(prefixes) = &self.path_hash_prefixes {
            let hash = hex::encode(enigm_crypto::sha256(target.as_bytes()));
            return prefixes
                .iter()
                .any(|prefix| hash.starts_with(prefix.as_str()));
        }
        false
    }
}

/// Names no delegated role may take: its metadata would be stored over a top-level role's.
const TOP_LEVEL_ROLES: [&str; 4] = ["root", "timestamp", "snapshot", "targets"];

impl Delegations {
    /// The delegations of `role`'s targets metadata, refused as malformed where python-tuf
    /// refuses them: both or neither of `roles` and `succinct_roles`, a role named after a
    /// top-level role, empty or twice, a role with both or neither of `paths` and
    /// `path_hash_prefixes`, hash bins of more than 32 bits.
    fn of(role: &str, targets: &Targets) -> Result<Option<Delegations>, MetadataError> {
        let malformed = |detail: String| MetadataError::Malformed {
            role: role.to_owned(),
            detail,
        };
        let Some(value) = &targets.delegations else {
            return Ok(None);
        };
        let delegations = <Delegations as serde::Deserialize>::deserialize(value)
            .map_err(|error| malformed(error.to_string()))?;
        if delegations.roles.is_some() == delegations.succinct_roles.is_some() {
            return Err(malformed(
                "delegations need exactly one of `roles` and `succinct_roles`".to_owned(),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for delegated in delegations.roles.iter().flatten() {
            let name = delegated.name.as_str();
            if name.is_empty() || TOP_LEVEL_ROLES.contains(&name) || !names.insert(name) {
                return Err(malformed(format!(
                    "delegated role name `{name}` is empty, a top-level role's or repeated"
                )));
            }
            if delegated.paths.is_some() == delegated.path_hash_prefixes.is_some() {
                return Err(malformed(format!(
                    "delegated role `{name}` needs exactly one of `paths` and `path_hash_prefixes`"
                )));
            }
        }
        if let Some(succinct) = &delegations.succinct_roles
            && !(1..=32).contains(&succinct.bit_length)
        {
            return Err(malformed("succinct roles need 1 to 32 bits".to_owned()));
        }
        Ok(Some(delegations))
    }

    /// The roles delegated `target`, in order, with whether each is terminating.
    fn roles_for(&self, target: &str) -> Vec<(String, bool)> {
        if let Some(succinct) = &self.succinct_roles {
            return succinct
                .role_for(target)
                .map(|name| vec![(name, true)])
                .unwrap_or_default();
        }
        self.roles
            .iter()
            .flatten()
            .filter(|role| role.covers(target))
            .map(|role| (role.name.clone(), role.terminating))
            .collect()
    }

    /// The keys and threshold of the delegated role `name`.
    fn role_keys(&self, name: &str) -> Option<RoleKeys> {
        let (keyids, threshold) = if let Some(succinct) = &self.succinct_roles {
            succinct
                .is_role(name)
                .then(|| (succinct.keyids.clone(), succinct.threshold))?
        } else {
            let role = self.roles.iter().flatten().find(|role| role.name == name)?;
            (role.keyids.clone(), role.threshold)
        };
        Some(RoleKeys {
            keyids,
            threshold,
            unrecognized: serde_json::Map::new(),
        })
    }
}

use crate::metadata::RoleKeys;

/// A role name as it appears in a file name: every byte outside `A-Z a-z 0-9 - _ . ~`
/// percent-encoded (as python-tuf's `quote(name, "")`).
pub fn quote_role(name: &str) -> String {
    name.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// The most roles one target search visits.
pub const MAX_DELEGATIONS: usize = 32;

impl TrustedMetadata {
    fn delegations_of(&self, role: &str) -> Result<Option<Delegations>, MetadataError> {
        let targets = if role == "targets" {
            self.targets.as_ref()
        } else {
            self.delegated.get(role).map(|(_, verified)| verified)
        };
        let Some(targets) = targets else {
            return Err(MetadataError::Missing(format!("{role} is not trusted")));
        };
        Delegations::of(role, &targets.signed)
    }

    /// Applies delegated targets metadata for `role`, delegated by `delegator`.
    pub fn update_delegated_targets(
        &mut self,
        bytes: &[u8],
        role: &str,
        delegator: &str,
        now: Timestamp,
    ) -> Result<(), MetadataError> {
        let meta = self
            .snapshot
            .as_ref()
            .and_then(|snapshot| snapshot.signed.meta.get(&format!("{role}.json")))
            .cloned()
            .ok_or_else(|| MetadataError::Missing(format!("the snapshot does not list {role}")))?;
        matches_meta(role, bytes, &meta)?;
        let delegations = self
            .delegations_of(delegator)?
            .ok_or_else(|| MetadataError::Missing(format!("{delegator} delegates nothing")))?;
        let keys = delegations.role_keys(role).ok_or_else(|| {
            MetadataError::Missing(format!("{delegator} does not delegate {role}"))
        })?;
        let verified: Verified<Targets> =
            verify_role(bytes, &delegations.keys, &keys).map_err(|error| match error {
                MetadataError::ThresholdNotMet {
                    threshold, valid, ..
                } => MetadataError::ThresholdNotMet {
                    role: role.to_owned(),
                    threshold,
                    valid,
                },
                other => other,
            })?;
        Delegations::of(role, &verified.signed)?;
        if verified.signed.version != meta.version {
            return Err(MetadataError::WrongVersion {
                role: role.to_owned(),
                got: verified.signed.version,
                expected: meta.version,
            });
        }
        expired(&verified.signed, now)?;
        self.delegated
            .insert(role.to_owned(), (delegator.to_owned(), verified));
        Ok(())
    }

    /// The metadata request for a delegated role.
    fn delegated_request(&self, role: &str, limits: &Limits) -> Option<MetadataRequest> {
        let meta = self
            .snapshot
            .as_ref()?
            .signed
            .meta
            .get(&format!("{role}.json"))?;
        let quoted = quote_role(role);
        Some(MetadataRequest {
            role: "delegated",
            file_name: if self.root.signed.consistent_snapshot {
                format!("{}.{quoted}.json", meta.version)
            } else {
                format!("{quoted}.json")
            },
            max_length: meta.length.unwrap_or(limits.targets),
        })
    }
}

/// The search for one target through the delegation graph (pre-order depth-first, as the
/// specification's step 5.6.7): a sans-IO machine like [`Refresh`]. Delegated metadata not yet
/// trusted is asked for with [`TargetSearch::next_request`].
#[derive(Debug)]
pub struct TargetSearch {
    target: String,
    stack: Vec<(String, String)>,
    visited: Vec<String>,
    /// The role whose metadata is asked for, and its delegator.
    waiting: Option<(String, String)>,
    found: Option<Option<VerifiedTarget>>,
    limits: Limits,
    now: Timestamp,
}

impl TargetSearch {
    pub fn new(target: &str, limits: Limits, now: Timestamp) -> Self {
        TargetSearch {
            target: target.to_owned(),
            stack: vec![("targets".to_owned(), "root".to_owned())],
            visited: Vec::new(),
            waiting: None,
            found: None,
            limits,
            now,
        }
    }

    /// Walks as far as trusted metadata allows; then either the search is over
    /// ([`TargetSearch::result`]) or a delegated role's metadata is needed.
    pub fn next_request(
        &mut self,
        trusted: &TrustedMetadata,
    ) -> Result<Option<MetadataRequest>, MetadataError> {
        if self.found.is_some() {
            return Ok(None);
        }
        if let Some((role, _)) = &self.waiting {
            return Ok(trusted.delegated_request(role, &self.limits));
        }
        while let Some((role, delegator)) = self.stack.pop() {
            if self.visited.len() > MAX_DELEGATIONS {
                break;
            }
            if self.visited.contains(&role) {
                continue;
            }
            let loaded = if role == "targets" {
                if let Some(targets) = &trusted.targets {
                    // A search long after the refresh must not read frozen metadata.
                    expired(&targets.signed, self.now)?;
                }
                trusted.targets.as_ref()
            } else {
                trusted
                    .delegated
                    .get(&role)
                    .filter(|(verified_by, _)| *verified_by == delegator)
                    // An expired copy (trusted earlier in a long-lived session) is fetched
                    // again, and the fresh one's expiry decides.
                    .filter(|(_, verified)| !is_expired(&verified.signed.expires, self.now))
                    .map(|(_, verified)| verified)
            };
            let Some(loaded) = loaded else {
                let request = trusted
                    .delegated_request(&role, &self.limits)
                    .ok_or_else(|| {
                        MetadataError::Missing(format!("the snapshot does not list {role}"))
                    })?;
                self.waiting = Some((role, delegator));
                return Ok(Some(request));
            };
            if let Some(file) = loaded.signed.targets.get(&self.target) {
                self.found = Some(Some(VerifiedTarget {
                    name: self.target.clone(),
                    file: file.clone(),
                }));
                return Ok(None);
            }
            self.visited.push(role.clone());
            if let Some(delegations) = trusted.delegations_of(&role)? {
                let mut children = Vec::new();
                for (child, terminating) in delegations.roles_for(&self.target) {
                    children.push((child, role.clone()));
                    if terminating {
                        self.stack.clear();
                        break;
                    }
                }
                self.stack.extend(children.into_iter().rev());
            }
        }
        self.found = Some(None);
        Ok(None)
    }

    /// The role whose metadata is asked for, with its delegator (to look for a local copy).
    pub fn waiting_for(&self) -> Option<(&str, &str)> {
        self.waiting
            .as_ref()
            .map(|(role, delegator)| (role.as_str(), delegator.as_str()))
    }

    /// Takes the fetched metadata of the waiting role; answers what to persist.
    pub fn provide(
        &mut self,
        trusted: &mut TrustedMetadata,
        fetched: Result<Vec<u8>, FetchFailure>,
    ) -> Result<Option<Persist>, RefreshError> {
        let (role, delegator) = self.waiting.take().ok_or(RefreshError::Finished)?;
        let limit = trusted
            .delegated_request(&role, &self.limits)
            .map_or(self.limits.targets, |request| request.max_length);
        let bytes = match fetched {
            // The bound holds even when the caller read past it.
            Ok(bytes) if bytes.len() as u64 > limit => {
                return Err(MetadataError::TooLarge { role, limit }.into());
            }
            Ok(bytes) => bytes,
            Err(FetchFailure::TooLarge) => {
                return Err(MetadataError::TooLarge { role, limit }.into());
            }
            Err(_) => return Err(RefreshError::Unavailable(role)),
        };
        trusted.update_delegated_targets(&bytes, &role, &delegator, self.now)?;
        // Back on the stack: the next step reads it from the trusted set.
        self.stack.push((role.clone(), delegator));
        Ok(Some(Persist {
            file_name: format!("{}.json", quote_role(&role)),
            bytes,
        }))
    }

    /// Tries a locally stored copy of the waiting role; `true` when it verified (no fetch).
    pub fn provide_local(&mut self, trusted: &mut TrustedMetadata, bytes: &[u8]) -> bool {
        let Some((role, delegator)) = self.waiting.clone() else {
            return false;
        };
        if trusted
            .update_delegated_targets(bytes, &role, &delegator, self.now)
            .is_ok()
        {
            self.waiting = None;
            self.stack.push((role, delegator));
            return true;
        }
        false
    }

    /// `Some(found)` once the search is over.
    pub fn result(&self) -> Option<Option<VerifiedTarget>> {
        self.found.clone()
    }
}

#[cfg(test)]
mod delegation_tests {
    use super::*;

    #[test]
    fn path_patterns_match_segment_by_segment() {
        assert!(path_matches("foo-1.tgz", "foo-?.tgz"));
        assert!(path_matches("releases/z/z_v1.zip", "releases/*/*.zip"));
        assert!(!path_matches("releases/z/z_v1.zip", "releases/*.zip"));
        assert!(path_matches("a/b", "a/[a-c]"));
        assert!(!path_matches("a/d", "a/[a-c]"));
        assert!(path_matches("a/d", "a/[!a-c]"));
        assert!(path_matches("x", "*"));
        assert!(!path_matches("x/y", "*"));
        assert!(path_matches("[", "["));
        assert!(path_matches("]", "[]]"));
        assert!(path_matches("a", "[!]]"));
        assert!(!path_matches("]", "[!]]"));
        assert!(path_matches("-", "[a-]"));
        assert!(!path_matches("b", "[z-a]"));
        assert!(path_matches("ab", "a**b"));
        assert!(path_matches("", "*"));
        assert!(!path_matches("a", ""));
        assert!(path_matches("abcabd", "*ab?"));
        assert!(!path_matches("abcabe", "*abd"));
    }

    #[test]
    fn many_stars_do_not_backtrack_exponentially() {
        // A naive recursive matcher takes ~C(60, 20) steps here; this one answers at once.
        let text = "a".repeat(60);
        let pattern = format!("{}b", "*a".repeat(20));
        assert!(!path_matches(&text, &pattern));
        assert!(path_matches(&text, &format!("{}*", "*a".repeat(20))));
    }

    #[test]
    fn hash_bins_cover_every_target_once() {
        let bins = SuccinctRoles {
            keyids: Vec::new(),
            threshold: 1,
            bit_length: 8,
            name_prefix: "bin".to_owned(),
        };
        let name = bins.role_for("os/image.img").unwrap();
        assert!(bins.is_role(&name));
        assert_eq!(name.len(), "bin-".len() + 2);
        assert!(!bins.is_role("bin-100"));
        assert!(!bins.is_role("other-00"));
    }
}
