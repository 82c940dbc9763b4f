//! The agent's side of remote attestation with a development root: ask Command for a nonce,
//! compute the challenge that binds it to this device's request key and the purpose, and mint an
//! Android-format chain whose leaf certifies the simulated hardware key with a KeyDescription
//! that carries the challenge. Command verifies it with the same code as a real device's chain.
//!
//! What the KeyDescription claims (`enigm_attest::dev::simulated_key_description`) is a locked
//! TEE device with VERIFIED boot under the development OS signing key, and the profile's patch
//! level: a simulated device, labelled as such by the root it chains to.

use anyhow::Context as _;
use base64::Engine as _;
use enigm_api::attestation::{
    AttestationEvidence, AttestationPurpose, ChallengeRequest, ChallengeResponse,
};
use enigm_api::paths;
use enigm_attest::challenge::{NONCE_LEN, expected_challenge};
use enigm_attest::dev::{DevAttestationRoot, DevAttestedKey, simulated_key_description};
use enigm_crypto::Ed25519SigningKey;
use enigm_types::Timestamp;

use super::daemon::post_signed;
use crate::client::CommandClient;

/// Mints evidence for one challenge.
pub(crate) struct DevAttester<'a> {
    pub(crate) root: &'a DevAttestationRoot,
    pub(crate) key: &'a DevAttestedKey,
    /// YYYYMMDD of the simulated build's security patch.
    pub(crate) patch_day: i64,
}

impl DevAttester<'_> {
    /// Asks Command for a nonce for `purpose` and answers the evidence for it.
    pub(crate) async fn attest(
        &self,
        client: &CommandClient,
        prefix: &str,
        device_key: &Ed25519SigningKey,
        purpose: AttestationPurpose,
        now: Timestamp,
    ) -> anyhow::Result<AttestationEvidence> {
        let challenge: ChallengeResponse = post_signed(
            client,
            prefix,
            device_key,
            paths::DEVICE_ATTESTATION_CHALLENGE,
            &ChallengeRequest { purpose },
        )
        .await
        .context("Command gave no attestation challenge")?;
        self.evidence(&challenge.nonce, device_key, purpose, now)
    }

    /// The evidence answering `nonce` (base64, as Command sent it).
    pub(crate) fn evidence(
        &self,
        nonce: &str,
        device_key: &Ed25519SigningKey,
        purpose: AttestationPurpose,
        now: Timestamp,
    ) -> anyhow::Result<AttestationEvidence> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(nonce)
            .context("the attestation nonce is not base64")?;
        let nonce_bytes: [u8; NONCE_LEN] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("the attestation nonce is not {NONCE_LEN} bytes"))?;
        let challenge = expected_challenge(
            &nonce_bytes,
            &device_key.verifying_key().to_bytes(),
            purpose.as_str(),
        );
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
