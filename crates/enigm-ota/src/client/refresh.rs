//! [`Refresh`]: one refresh of the top-level metadata as a sans-IO machine (which file next,
//! within which length; the verified bytes to persist).

use enigm_types::Timestamp;

use crate::metadata::{FailureCategory, MetadataError};
use crate::time::is_expired;

use super::trusted::{Limits, TrustedMetadata};

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
