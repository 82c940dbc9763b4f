//! Enigm Proxy credentials (issue 16, item 3; enigm-docs §10.1, §20 H.55): Command issues a
//! device a short-lived credential bound to its device key, only while the device qualifies, and
//! publishes what proxies need to check one: the key to pin and the signed list of live
//! credentials whose device no longer qualifies.
//!
//! A device qualifies when it is known, `trusted` (not restricted: the lifecycle table keeps a
//! restricted device's network access to Command so that it can recover, but not the app
//! traffic the proxy carries), not told to retire or wipe, evaluated recently and not `INACTIVE`,
//! its setup complete, no attested claim contradicting its report, and its last attestation
//! accepted within its attestation policy's `max_age_seconds` — the Trust State Engine's
//! `decide` for `network` with attestation always required. Issuance and every refusal are
//! audited as `device.proxy-credential` (the refusal's category as the reason); the credential,
//! its id and the device key are never written to the audit log.
//!
//! Revocation: Command keeps each credential's id, device and expiry. The list is what the
//! database says now (a join on the device's current lifecycle, trust state and pending
//! command), so a revocation, restriction, an `INACTIVE` check-in or a retire/wipe reaches it
//! with no hook in those workflows, and a credential issued while a revocation commits is listed
//! as soon as both are. Proxies poll it; it is signed and dated, so a proxy refuses every
//! connection once its list is older than its bound. Why a polled list and not a status check
//! per connection: Command would then learn when each device opens each connection (per-peer
//! activity, which enigm-docs §20 H.61 says is never recorded), and every connection would
//! depend on Command's availability.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use enigm_api::proxy::{
    ProxyCredentialKeyView, ProxyCredentialRequest, ProxyCredentialView, ProxyRevocationsView,
};
use enigm_crypto::Ed25519SigningKey;
use enigm_proxyauth::{Credential, CredentialClaims, CredentialId, RevocationList};
use enigm_trust::{
    Action, DecisionActor, DecisionInput, DecisionPolicy, DenyReason, EligibilityDecision,
    ProtectedAction, ResourceCategory,
};
use enigm_types::{
    Actor, AuditAction, AuditEvent, AuditTarget, DeviceState, Outcome, ReasonCategory,
};
use rand::RngCore as _;

use crate::device_guard::SignedDevice;
use crate::error::{ApiError, ApiResult};
use crate::services::eligibility::{attestation_standing, integrity, reason_category};
use crate::services::policies;
use crate::state::AppState;

/// Command's proxy-credential key and how long a credential lives.
pub struct ProxyCredentialConfig {
    pub key: Ed25519SigningKey,
    pub lifetime: Duration,
}

impl ProxyCredentialConfig {
    /// The default lifetime: short, so that a credential outlives its device's eligibility by
    /// little even between revocation-list polls, and renewed by the agent at two thirds.
    pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(10 * 60);

    /// A fresh key (tests and benchmarks).
    pub fn generate() -> Self {
        ProxyCredentialConfig {
            key: Ed25519SigningKey::generate(&mut rand::rngs::OsRng),
            lifetime: Self::DEFAULT_LIFETIME,
        }
    }
}

/// Issues the signing device a credential, or refuses (audited either way).
pub async fn issue(
    state: &AppState,
    device: SignedDevice<ProxyCredentialRequest>,
) -> ApiResult<ProxyCredentialView> {
    let now = device.now;
    let handle = device.handle;
    let refuse = &device.refuse;
    if let Some(reason) = refusal(state, &device).await? {
        return Err(refuse.deny(reason).await);
    }
    let config = state.proxy_credentials();
    let mut id = [0u8; enigm_proxyauth::CREDENTIAL_ID_LEN];
    rand::rngs::OsRng.fill_bytes(&mut id);
    let id = CredentialId::from_bytes(id);
    let expires_at = now.saturating_add(config.lifetime);
    let device_key: [u8; 32] = device
        .public_key()
        .try_into()
        .map_err(|_| ApiError::internal(&KeyLength))?;

    let mut tx = state.store().begin().await?;
    if let Err(error) = device.record_nonce(&mut tx).await {
        drop(tx);
        return Err(refuse.store_refusal(error).await);
    }
    // The lifecycle state again, in the transaction that records the credential: a revocation
    // that committed since the decision refuses here; one that commits after this lists the
    // credential as revoked (see the module's comment).
    match tx.device_state(&handle).await? {
        Some(DeviceState::Trusted) => {}
        Some(_) => {
            drop(tx);
            return Err(refuse.deny(ReasonCategory::DeviceNotActive).await);
        }
        None => {
            drop(tx);
            return Err(refuse.deny(ReasonCategory::UnknownDevice).await);
        }
    }
    tx.record_proxy_credential(&id.to_hex(), &handle, now, expires_at)
        .await?;
    tx.append_audit(&AuditEvent::new(
        now,
        Actor::Device(handle),
        AuditAction::DeviceProxyCredential,
        AuditTarget::Device { handle },
        Outcome::Success,
    ))
    .await?;
    tx.commit().await?;
    let credential = Credential::issue(
        &config.key,
        CredentialClaims {
            id,
            handle,
            device_key,
            issued_at: now,
            expires_at,
        },
    );
    Ok(ProxyCredentialView {
        credential: URL_SAFE_NO_PAD.encode(credential.to_bytes()),
        id: id.to_hex(),
        issued_at: now.to_rfc3339(),
        expires_at: expires_at.to_rfc3339(),
    })
}

/// The key proxies pin.
pub fn credential_key(state: &AppState) -> ProxyCredentialKeyView {
    ProxyCredentialKeyView {
        algorithm: "ed25519".to_owned(),
        key: URL_SAFE_NO_PAD.encode(state.proxy_credentials().key.verifying_key().to_bytes()),
    }
}

/// The signed list of live credentials whose device no longer qualifies, as of now.
pub async fn revocations(state: &AppState) -> ApiResult<ProxyRevocationsView> {
    let now = state.now();
    let ids = state
        .store()
        .revoked_proxy_credentials(DeviceState::Trusted, now)
        .await?;
    let ids: Vec<CredentialId> = ids
        .iter()
        .map(|id| {
            CredentialId::from_hex(id).ok_or(enigm_store::StoreError::Corrupt("credential id"))
        })
        .collect::<Result<_, _>>()?;
    let list = RevocationList::sign(&state.proxy_credentials().key, now, ids.iter().copied());
    Ok(ProxyRevocationsView {
        list: URL_SAFE_NO_PAD.encode(list.to_bytes()),
        issued_at: now.to_rfc3339(),
        revoked: u64::try_from(ids.len()).unwrap_or(u64::MAX),
    })
}

/// Why the device may not have a credential now, if it may not: the eligibility decision for
/// `network` with an affirming attestation always required, and `trusted` only.
async fn refusal(
    state: &AppState,
    device: &SignedDevice<ProxyCredentialRequest>,
) -> ApiResult<Option<ReasonCategory>> {
    let store = state.store();
    let handle = device.handle;
    let Some(record) = store.device(&handle).await? else {
        return Ok(Some(ReasonCategory::UnknownDevice));
    };
    if store.device_lifecycle(&handle).await?.pending.is_some() {
        return Ok(Some(ReasonCategory::DeviceNotActive));
    }
    if record.state == DeviceState::Restricted {
        return Ok(Some(ReasonCategory::DeviceRestricted));
    }
    let attestation = store.device_attestation(&handle).await?;
    let assigned = store.group_policies(&record.group).await?;
    // Policies that cannot be read are a missing input: the decision denies.
    let effective = policies::from_assigned(
        &assigned,
        &record.policy,
        attestation.as_ref().map(|row| row.policy.as_str()),
    )
    .ok();
    let (standing, policy) = match &effective {
        Some(effective) => {
            let (standing, _) =
                attestation_standing(attestation.as_ref(), &effective.attestation, device.now);
            let policy = DecisionPolicy {
                max_posture_age: effective.trust.max_signal_age(),
                attestation_required: true,
            };
            (standing, Some(policy))
        }
        None => (None, None),
    };
    let decision = enigm_trust::decide(&DecisionInput {
        actor: Some(DecisionActor::Device),
        action: Action::Protected(ProtectedAction::Network),
        resource: Some(ResourceCategory::Network),
        device_state: Some(record.state),
        trust_state: Some(record.posture.trust_state),
        evaluated_at: Some(record.posture.evaluated_at),
        attestation: standing,
        session_valid: None,
        setup_complete: Some(record.posture.setup_missing.is_empty()),
        policy,
        integrity: Some(integrity(&record.posture.findings)),
        now: device.now,
    });
    Ok(match decision {
        EligibilityDecision::Allow => None,
        // No accepted attestation at all: the device must attest first.
        EligibilityDecision::Deny(DenyReason::MissingAttestation) => {
            Some(ReasonCategory::AttestationRequired)
        }
        EligibilityDecision::Deny(reason) => Some(reason_category(reason)),
    })
}

/// A verified device request always carries a 32-byte Ed25519 key; this is the error if not.
#[derive(Debug, thiserror::Error)]
#[error("a verified device key is not 32 bytes")]
struct KeyLength;
