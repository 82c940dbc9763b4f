//! Attestation-bound Enigm Proxy credentials (enigm-docs §10.1, §20 H.55–H.57), as pure logic.
//!
//! Command issues a device a short-lived [`Credential`] once the device is trusted and its
//! attestation is fresh: a random id, the device's handle, the device's public key, issue and
//! expiry times, signed by Command's online proxy-credential key. For every connection the device
//! signs a fresh [`Proof`] with its own device key over the credential id, a random nonce, the
//! time and the target authority it asks the proxy to reach. The proxy pins Command's key and
//! [`ProxyVerifier::verify`]s both, refusing a replayed proof (a bounded [`ReplayCache`]) and a
//! credential Command has since revoked (a signed [`RevocationList`] it polls, fail closed when the
//! list is missing or too old). Only the verifier builds the [`VerifiedProxyClient`] witness.
//!
//! Every signed structure has one binary encoding, in this crate, with a domain-separation
//! prefix in its signing input so that no signature of one kind verifies as another.
//!
//! No I/O, no clock and no randomness: times and nonces are parameters.

mod credential;
mod proof;
mod replay;
mod revocation;
mod target;
mod verify;
mod wire;

pub use credential::{
    CREDENTIAL_ID_LEN, CREDENTIAL_LEN, Credential, CredentialClaims, CredentialId,
};
pub use proof::{
    AUTHORIZATION_SCHEME, MAX_AUTHORIZATION_LEN, PROOF_NONCE_LEN, Proof, authorization,
    parse_authorization,
};
pub use replay::{ReplayCache, ReplayError};
pub use revocation::{MAX_REVOKED, RevocationError, RevocationList, VerifiedRevocations};
pub use target::{MAX_TARGET_LEN, TargetAuthority, TargetError};
pub use verify::{ProxyAuthError, ProxyVerifier, VerifiedProxyClient, VerifierPolicy};
pub use wire::ParseError;

#[cfg(test)]
mod tests;
