//! Over-the-air releases as pure logic (enigm-docs §7, §8, §20 D–E; threat "OTA integrity
//! failure").
//!
//! - TUF 1.0 metadata and the client workflow (trusted root, root chain, timestamp, snapshot,
//!   targets and delegations) as a sans-IO state machine: the caller fetches the bytes it asks
//!   for, within the length it names, and feeds them back with the time.
//! - Enigm's release fields on each target and the Release-Signing Authority's detached payload
//!   signature, pinned apart from the Manifest Signing Authority's keys.
//! - The A/B install state machine the agent persists across reboots.
//! - The director's per-device answer (Uptane's director role): Command signs which target one
//!   device should install now; the device installs only what the answer and the repository
//!   agree on.
//!
//! This crate does no I/O and names no async runtime or crypto implementation (signatures and
//! digests go through `enigm-crypto`).

pub mod canonical;
pub mod client;
pub mod director;
pub mod keys;
pub mod metadata;
pub mod policy_bundle;
pub mod release;
pub mod repository;
pub mod rollout;
pub mod slots;
pub mod target_name;
pub mod time;

pub use client::{
    ArtifactVerifier, FetchFailure, Limits, MetadataRequest, Persist, Refresh, RefreshError,
    TargetError, TrustedMetadata, VerifiedArtifact, VerifiedTarget, safe_local_path,
};
pub use keys::{Key, KeyId};
pub use metadata::{FailureCategory, MetadataError};
pub use release::{
    ApprovedRelease, DeviceProfile, PayloadStatement, ReleaseCategory, ReleaseFields,
    ReleaseRejection, appraise_release,
};
pub use repository::{MetadataSigner, SignerError, SoftwareSigner, sign_metadata};
pub use target_name::{TargetName, TargetNameError};
