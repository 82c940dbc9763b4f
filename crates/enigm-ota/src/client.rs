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

    /// The name as a relative local path, refused when it could leave a directory: `..` or
    /// `.` segments, empty segments, a leading `/`, backslashes, NUL.
    pub fn local_path(&self) -> Result<&str, TargetError> {
        safe_local_path(&self.name)
    }
}

/// A target name as a relative path under a directory, or a refusal.
pub fn safe_local_path(name: &str) -> Result<&str, TargetError> {
    let unsafe_name = name.is_empty()
        || name.starts_with('/')
        || name.contains('\\')
        || name.contains('\0')
        || name
            .split('/')
            .any(|segment| segment.is_empty() || segment == "." || segment == "..");
    if unsafe_name {
        return Err(TargetError::UnsafeName);
    }
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
        Ok(TrustedMetadata {
            root: Verified {
                signed: root,
                bytes: root_bytes.to_vec(),
            },
            timestamp: None,
            snapshot: None,
            targets: None,
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
                self.step = if changed || self.trusted.snapshot.is_none() {
                    Step::Snapshot
                } else if self.trusted.targets.is_none() {
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
    expected_length: u64,
    expected_sha256: Option<String>,
    expected_sha512: Option<String>,
    received: u64,
    sha256: enigm_crypto::Sha256Stream,
    sha512: Option<enigm_crypto::Sha512Stream>,
}

/// An artifact whose length and hashes matched its verified target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedArtifact {
    pub target: VerifiedTarget,
}

impl ArtifactVerifier {
    pub fn new(target: &VerifiedTarget) -> Result<Self, TargetError> {
        let hash = |name: &str| target.file.hashes.get(name).map(|h| h.to_ascii_lowercase());
        let (expected_sha256, expected_sha512) = (hash("sha256"), hash("sha512"));
        if expected_sha256.is_none() && expected_sha512.is_none() {
            return Err(TargetError::NoSha256);
        }
        Ok(ArtifactVerifier {
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

    pub fn finish(self, target: VerifiedTarget) -> Result<VerifiedArtifact, TargetError> {
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
        Ok(VerifiedArtifact { target })
    }
}
