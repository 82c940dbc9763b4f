//! [`ArtifactVerifier`]: an artifact checked as it streams against its verified target.

use super::target::{TargetError, VerifiedTarget};

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
