//! The agent's side of remote attestation with a development root: for a nonce Command gave,
//! compute the challenge that binds it to this device's request key and the purpose, and mint an
//! Android-format chain whose leaf certifies the simulated hardware key with a KeyDescription
//! that carries the challenge. Command verifies it with the same code as a real device's chain.
//!
//! What the KeyDescription claims (`enigm_attest::dev::simulated_key_description`) is a locked
//! TEE device with VERIFIED boot under the development OS signing key, and the profile's patch
//! level: a simulated device, labelled as such by the root it chains to.

use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;
use enigm_api::attestation::{AttestationEvidence, AttestationPurpose};
use enigm_attest::challenge::{NONCE_LEN, expected_challenge};
use enigm_attest::dev::{DevAttestationRoot, DevAttestedKey, simulated_key_description};
use enigm_types::Timestamp;

/// The file of a development root's private key in its directory (`enigm attest dev-root`
/// writes it).
pub const DEV_ROOT_KEY: &str = "dev-attestation-root.key";

/// Loads the development attestation root kept in `dir` (`enigm attest dev-root`).
pub fn load_dev_root(dir: &Path) -> anyhow::Result<DevAttestationRoot> {
    let key_path = dir.join(DEV_ROOT_KEY);
    let key = std::fs::read_to_string(&key_path)
        .with_context(|| format!("cannot read {}", key_path.display()))?;
    DevAttestationRoot::from_key_pem(&key).with_context(|| {
        format!(
            "{} does not hold a development attestation root",
            dir.display()
        )
    })
}

/// Mints evidence for one challenge.
pub struct DevAttester<'a> {
    pub root: &'a DevAttestationRoot,
    pub key: &'a DevAttestedKey,
    /// YYYYMMDD of the simulated build's security patch.
    pub patch_day: i64,
}

impl DevAttester<'_> {
    /// The evidence answering `nonce` (base64, as Command sent it) for the device whose request
    /// key is `device_key`.
    pub fn evidence(
        &self,
        nonce: &str,
        device_key: &[u8; 32],
        purpose: AttestationPurpose,
        now: Timestamp,
    ) -> anyhow::Result<AttestationEvidence> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(nonce)
            .context("the attestation nonce is not base64")?;
        let nonce_bytes: [u8; NONCE_LEN] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("the attestation nonce is not {NONCE_LEN} bytes"))?;
        let challenge = expected_challenge(&nonce_bytes, device_key, purpose.as_str());
        let description = simulated_key_description(&challenge, now, self.patch_day);
        let not_after = now.saturating_add(std::time::Duration::from_secs(24 * 60 * 60));
        let not_before = now.saturating_sub(std::time::Duration::from_secs(60 * 60));
        let chain = self
            .root
            .issue_chain(self.key, &description, not_before, not_after)
            .context("could not mint the development attestation chain")?;
        Ok(AttestationEvidence::AndroidKey {
            nonce: nonce.to_owned(),
            chain: chain
                .iter()
                .map(|der| base64::engine::general_purpose::STANDARD.encode(der))
                .collect(),
        })
    }
}
