//! [`VerifiedTarget`]: a target the trusted metadata lists, and its name as a local path.

use crate::metadata::{FailureCategory, TargetFile, Targets, Verified};

/// A target the trusted targets metadata lists: only [`TrustedMetadata::target`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTarget {
    pub(crate) name: String,
    pub(crate) file: TargetFile,
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

/// A target of targets metadata whose signatures were verified (e.g. by Command, checking
/// what a signing workstation handed in).
pub fn target_of(targets: &Verified<Targets>, name: &str) -> Option<VerifiedTarget> {
    targets.signed.targets.get(name).map(|file| VerifiedTarget {
        name: name.to_owned(),
        file: file.clone(),
    })
}
