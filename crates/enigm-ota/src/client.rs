//! The TUF client workflow (specification §5) as sans-IO state machines, one file per machine:
//!
//! - `trusted`: [`TrustedMetadata`] holds what the client trusts and applies each new document
//!   with the checks the specification names: the root chain (each new root signed by the old
//!   and the new threshold, version exactly one more), timestamp (no version rollback, no
//!   snapshot version rollback), snapshot (length and hashes as the timestamp says, its version,
//!   no rollback or removal of a role), targets (length and hashes when the snapshot gives them,
//!   its version), and expiry of each against an injected `now` (freeze attacks).
//! - `refresh`: [`Refresh`] drives the order: it says which file to fetch next and with which
//!   length bound (endless-data attacks), and takes the bytes back; the caller does the
//!   fetching and persists what it is told to.
//! - `search`: [`TargetSearch`], the same kind of machine for one target through delegations.
//! - `target`: [`VerifiedTarget`] and its name as a local path (a [`crate::TargetName`]).
//! - `artifact`: [`ArtifactVerifier`] checks an artifact as it streams.

mod artifact;
mod refresh;
mod search;
mod target;
mod trusted;

pub use artifact::{ArtifactVerifier, VerifiedArtifact};
pub use refresh::{FetchFailure, MetadataRequest, Persist, Refresh, RefreshError};
pub use search::{MAX_DELEGATIONS, TargetSearch, quote_role};
pub use target::{TargetError, VerifiedTarget, safe_local_path, target_of};
pub use trusted::{Limits, TrustedMetadata, load_trusted};
