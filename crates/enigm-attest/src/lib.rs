//! Remote attestation as pure logic.
//!
//! - [`android`]: Android Key Attestation. Parse a certificate chain, verify every link
//!   ourselves against pinned roots, apply a revocation status list, and decode the
//!   KeyDescription of the leaf (and of an attest-key certificate directly above it, never higher).
//! - [`tpm`]: TPM 2.0 quotes over a server nonce and a PCR selection, signed by an attestation key
//!   registered at enrollment, compared with reference PCR values.
//! - [`policy`]: what a device group accepts (security levels, locked, verified-boot keys, patch
//!   levels, application identity).
//! - [`outcome`]: `Accepted`, or `Rejected` with exactly one [`outcome::RejectionReason`], plus
//!   the minimal claims Command keeps.
//!
//! No I/O, no clock, no randomness: time comes in as a `Timestamp`, evidence as bytes. The one
//! exception is the `dev-root` feature, which mints development chains.

pub mod android;
pub mod challenge;
#[cfg(feature = "dev-root")]
pub mod dev;
pub mod ear;
pub mod outcome;
pub mod policy;
pub mod signals;
pub mod tpm;
