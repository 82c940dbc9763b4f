//! The proxy's verifier: pinned key, revocation list, replay cache, and the checks of one
//! connection's `Proxy-Authorization` in order (cheap checks before signatures).

use std::time::Duration;

use enigm_crypto::Ed25519VerifyingKey;
use enigm_types::Timestamp;

use crate::credential::CredentialId;
use crate::proof::parse_authorization;
use crate::replay::{ReplayCache, ReplayError};
use crate::revocation::{RevocationError, VerifiedRevocations};
use crate::target::{TargetAuthority, TargetError};
use crate::wire::ParseError;

/// How strict the verifier is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifierPolicy {
    /// How far a proof's time may be from the proxy's clock, either way.
    pub proof_window: Duration,
    /// How far in the future a credential's issue time may be (clock skew with Command).
    pub max_skew: Duration,
    /// How old the revocation list may be before every connection is refused.
    pub max_revocation_age: Duration,
    /// How many live proofs the replay cache holds.
    pub replay_capacity: usize,
}

impl Default for VerifierPolicy {
    fn default() -> Self {
        VerifierPolicy {
            proof_window: Duration::from_secs(30),
            max_skew: Duration::from_secs(60),
            max_revocation_age: Duration::from_secs(60),
            replay_capacity: 1 << 20,
        }
    }
}

/// Why a connection was refused: one variant per check, each a stable category for counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProxyAuthError {
    #[error("the proxy authorization is malformed: {0}")]
    Malformed(#[from] ParseError),
    #[error("the connect target is not acceptable: {0}")]
    BadTarget(#[from] TargetError),
    #[error("the credential is not signed by the pinned key")]
    CredentialSignature,
    #[error("the credential has expired")]
    CredentialExpired,
    #[error("the credential is issued in the future")]
    CredentialNotYetValid,
    #[error("no current revocation list is held")]
    RevocationListStale,
    #[error("the credential is revoked")]
    Revoked,
    #[error("the proof names another target")]
    WrongTarget,
    #[error("the proof is too old")]
    ProofStale,
    #[error("the proof is dated in the future")]
    ProofFromFuture,
    #[error("the proof is not signed by the credential's device key")]
    ProofSignature,
    #[error("the proof was already used")]
    Replayed,
    #[error("too many live proofs; try again shortly")]
    ReplayCacheFull,
}

impl ProxyAuthError {
    /// The refusal's category, for counts and logs (never anything of the request).
    pub const fn category(self) -> &'static str {
        match self {
            ProxyAuthError::Malformed(_) => "malformed",
            ProxyAuthError::BadTarget(_) => "bad-target",
            ProxyAuthError::CredentialSignature => "credential-signature",
            ProxyAuthError::CredentialExpired => "credential-expired",
            ProxyAuthError::CredentialNotYetValid => "credential-not-yet-valid",
            ProxyAuthError::RevocationListStale => "revocation-list-stale",
            ProxyAuthError::Revoked => "revoked",
            ProxyAuthError::WrongTarget => "wrong-target",
            ProxyAuthError::ProofStale => "proof-stale",
            ProxyAuthError::ProofFromFuture => "proof-from-future",
            ProxyAuthError::ProofSignature => "proof-signature",
            ProxyAuthError::Replayed => "replayed",
            ProxyAuthError::ReplayCacheFull => "replay-cache-full",
        }
    }
}

/// A connection whose credential and proof verified: only [`ProxyVerifier::verify`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProxyClient {
    credential: CredentialId,
    expires_at: Timestamp,
    target: TargetAuthority,
}

impl VerifiedProxyClient {
    pub fn credential(&self) -> CredentialId {
        self.credential
    }

    /// When the credential expires (a proxy may end the tunnel then).
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    /// The target the device proved it asked for.
    pub fn target(&self) -> &TargetAuthority {
        &self.target
    }
}

/// A proxy's verifier state.
#[derive(Debug)]
pub struct ProxyVerifier {
    key: Ed25519VerifyingKey,
    policy: VerifierPolicy,
    revocations: Option<VerifiedRevocations>,
    replay: ReplayCache,
}

impl ProxyVerifier {
    /// A verifier pinning Command's proxy-credential key. It refuses every connection until it
    /// holds a current revocation list.
    pub fn new(key: Ed25519VerifyingKey, policy: VerifierPolicy) -> Self {
        ProxyVerifier {
            key,
            policy,
            revocations: None,
            replay: ReplayCache::new(policy.replay_capacity),
        }
    }

    pub fn key(&self) -> &Ed25519VerifyingKey {
        &self.key
    }

    /// Installs a newer revocation list. One older than the list held is refused, so a replayed
    /// old list cannot un-revoke a credential.
    pub fn install_revocations(
        &mut self,
        list: VerifiedRevocations,
    ) -> Result<(), RevocationError> {
        if self
            .revocations
            .as_ref()
            .is_some_and(|held| list.issued_at < held.issued_at)
        {
            return Err(RevocationError::Older);
        }
        self.revocations = Some(list);
        Ok(())
    }

    /// The revocation list held, if any.
    pub fn revocations(&self) -> Option<&VerifiedRevocations> {
        self.revocations.as_ref()
    }

    /// Verifies one connection's `Proxy-Authorization` value for the CONNECT `target` at `now`,
    /// and remembers its proof.
    pub fn verify(
        &mut self,
        authorization: &str,
        target: &str,
        now: Timestamp,
    ) -> Result<VerifiedProxyClient, ProxyAuthError> {
        let (credential, proof) = parse_authorization(authorization)?;
        let target = TargetAuthority::parse(target)?;
        let claims = credential.claims();
        if claims.issued_at > now.saturating_add(self.policy.max_skew) {
            return Err(ProxyAuthError::CredentialNotYetValid);
        }
        if claims.expires_at <= now {
            return Err(ProxyAuthError::CredentialExpired);
        }
        let revocations = self
            .revocations
            .as_ref()
            .filter(|list| {
                list.issued_at <= now.saturating_add(self.policy.max_skew)
                    && now.duration_since(list.issued_at) <= self.policy.max_revocation_age
            })
            .ok_or(ProxyAuthError::RevocationListStale)?;
        if revocations.contains(claims.id) {
            return Err(ProxyAuthError::Revoked);
        }
        if proof.target() != target.as_str() {
            return Err(ProxyAuthError::WrongTarget);
        }
        if proof.created() > now.saturating_add(self.policy.proof_window) {
            return Err(ProxyAuthError::ProofFromFuture);
        }
        if now.duration_since(proof.created()) > self.policy.proof_window {
            return Err(ProxyAuthError::ProofStale);
        }
        self.key
            .verify(&credential.signing_input(), credential.signature())
            .map_err(|_| ProxyAuthError::CredentialSignature)?;
        let device_key = Ed25519VerifyingKey::from_bytes(&claims.device_key)
            .map_err(|_| ProxyAuthError::ProofSignature)?;
        device_key
            .verify(&proof.signing_input(claims.id), proof.signature())
            .map_err(|_| ProxyAuthError::ProofSignature)?;
        self.replay
            .insert(
                claims.id,
                proof.nonce(),
                proof.created().saturating_add(self.policy.proof_window),
                now,
            )
            .map_err(|error| match error {
                ReplayError::Replayed => ProxyAuthError::Replayed,
                ReplayError::Full => ProxyAuthError::ReplayCacheFull,
            })?;
        Ok(VerifiedProxyClient {
            credential: claims.id,
            expires_at: claims.expires_at,
            target,
        })
    }
}
