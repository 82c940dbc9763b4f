//! The device's Enigm Proxy credential (enigm-docs §10.1, §20 H.55–H.56), as a sans-IO holder:
//! it builds the signed request for a credential, keeps the one Command issued, says when to
//! renew (at two thirds of its lifetime), and signs a fresh proof for each connection. It fails
//! closed: with no credential, or an expired one, there is no authorization to give, so the
//! shell opens no tunnel and sends nothing directly instead.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use enigm_api::paths;
use enigm_api::proxy::ProxyCredentialView;
use enigm_crypto::Ed25519SigningKey;
use enigm_device::{NONCE_LEN, RequestParts, sign_request};
use enigm_proxyauth::{Credential, PROOF_NONCE_LEN, Proof, TargetAuthority, authorization};
use enigm_types::Timestamp;

use super::{Exchange, ExchangeError, Method, Request};

/// Why there is no proxy authorization to give: the device must not send proxy traffic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyUnavailable {
    #[error("no proxy credential is held")]
    NoCredential,
    #[error("the proxy credential expired")]
    Expired,
}

/// The credential held, if any.
#[derive(Debug, Clone, Default)]
pub struct ProxyCredentials {
    held: Option<Credential>,
}

impl ProxyCredentials {
    pub fn new() -> Self {
        ProxyCredentials::default()
    }

    /// The signed request for a credential (`path_prefix` is the server URL's own path).
    pub fn request(
        key: &Ed25519SigningKey,
        path_prefix: &str,
        now: Timestamp,
        nonce: &[u8; NONCE_LEN],
    ) -> Request {
        let body = b"{}".to_vec();
        let signed_path = format!("{path_prefix}{}", paths::DEVICE_PROXY_CREDENTIAL);
        let signature = sign_request(
            key,
            &RequestParts {
                method: "POST",
                path: &signed_path,
                query: "",
                body: &body,
            },
            now,
            nonce,
        );
        Request {
            exchange: Exchange::ProxyCredential,
            method: Method::Post,
            path: paths::DEVICE_PROXY_CREDENTIAL,
            body,
            signature,
        }
    }

    /// Takes Command's answer: a credential for this device's key that has not expired is
    /// kept; anything else keeps nothing (the previous credential stays until it expires).
    pub fn handle_response(
        &mut self,
        key: &Ed25519SigningKey,
        status: u16,
        body: &[u8],
        now: Timestamp,
    ) -> Result<(), ExchangeError> {
        let bad = |detail: &str| ExchangeError::BadAnswer {
            context: Exchange::ProxyCredential.context(),
            detail: detail.to_owned(),
        };
        if status != 200 {
            return Err(ExchangeError::from_answer(
                Exchange::ProxyCredential,
                status,
                body,
            ));
        }
        let view: ProxyCredentialView =
            serde_json::from_slice(body).map_err(|_| bad("the answer is not a credential"))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(view.credential)
            .map_err(|_| bad("the credential is not base64url"))?;
        let credential =
            Credential::parse(&bytes).map_err(|_| bad("the credential is malformed"))?;
        let claims = credential.claims();
        if claims.device_key != key.verifying_key().to_bytes() {
            return Err(bad("the credential names another device key"));
        }
        if claims.expires_at <= now || claims.issued_at >= claims.expires_at {
            return Err(bad("the credential is already expired"));
        }
        self.held = Some(credential);
        Ok(())
    }

    /// Whether to ask for a new credential now: none held, or two thirds of its lifetime gone.
    pub fn renewal_due(&self, now: Timestamp) -> bool {
        match &self.held {
            None => true,
            Some(credential) => {
                let claims = credential.claims();
                let lifetime = claims.expires_at.duration_since(claims.issued_at);
                now >= claims.issued_at.saturating_add(lifetime * 2 / 3)
            }
        }
    }

    /// The `Proxy-Authorization` value for one connection to `target`, with a fresh proof;
    /// refused (fail closed) with no credential or an expired one. `nonce` must be random and
    /// never reused.
    pub fn authorization(
        &self,
        key: &Ed25519SigningKey,
        target: &TargetAuthority,
        now: Timestamp,
        nonce: [u8; PROOF_NONCE_LEN],
    ) -> Result<String, ProxyUnavailable> {
        let credential = self.held.as_ref().ok_or(ProxyUnavailable::NoCredential)?;
        if credential.claims().expires_at <= now {
            return Err(ProxyUnavailable::Expired);
        }
        let proof = Proof::sign(key, credential, target, nonce, now);
        Ok(authorization(credential, &proof))
    }

    /// The credential held (expired or not).
    pub fn credential(&self) -> Option<&Credential> {
        self.held.as_ref()
    }

    /// When the credential held expires.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.held
            .as_ref()
            .map(|credential| credential.claims().expires_at)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use enigm_proxyauth::{CredentialClaims, CredentialId};
    use enigm_types::DeviceHandle;

    use super::*;

    const NOW: Timestamp = Timestamp::from_unix_millis(1_795_305_600_000);

    fn answer(command: &Ed25519SigningKey, device_key: [u8; 32], lifetime: Duration) -> Vec<u8> {
        let credential = Credential::issue(
            command,
            CredentialClaims {
                id: CredentialId::from_bytes([1; 16]),
                handle: DeviceHandle::from_digest(&[2; 20]),
                device_key,
                issued_at: NOW,
                expires_at: NOW.saturating_add(lifetime),
            },
        );
        serde_json::to_vec(&ProxyCredentialView {
            credential: URL_SAFE_NO_PAD.encode(credential.to_bytes()),
            id: credential.claims().id.to_hex(),
            issued_at: NOW.to_rfc3339(),
            expires_at: NOW.saturating_add(lifetime).to_rfc3339(),
        })
        .unwrap()
    }

    #[test]
    fn renews_at_two_thirds_and_fails_closed_after_expiry() {
        let command = Ed25519SigningKey::from_seed(&[1; 32]);
        let key = Ed25519SigningKey::from_seed(&[2; 32]);
        let target = TargetAuthority::parse("service.example:443").unwrap();
        let mut holder = ProxyCredentials::new();
        assert!(holder.renewal_due(NOW));
        assert_eq!(
            holder.authorization(&key, &target, NOW, [0; 16]),
            Err(ProxyUnavailable::NoCredential)
        );
        let body = answer(
            &command,
            key.verifying_key().to_bytes(),
            Duration::from_secs(600),
        );
        holder.handle_response(&key, 200, &body, NOW).unwrap();
        assert!(!holder.renewal_due(NOW.saturating_add(Duration::from_secs(399))));
        assert!(holder.renewal_due(NOW.saturating_add(Duration::from_secs(400))));
        let last = NOW.saturating_add(Duration::from_millis(599_999));
        assert!(holder.authorization(&key, &target, last, [0; 16]).is_ok());
        let end = NOW.saturating_add(Duration::from_secs(600));
        assert_eq!(
            holder.authorization(&key, &target, end, [0; 16]),
            Err(ProxyUnavailable::Expired)
        );
    }

    #[test]
    fn keeps_only_a_live_credential_for_its_own_key() {
        let command = Ed25519SigningKey::from_seed(&[1; 32]);
        let key = Ed25519SigningKey::from_seed(&[2; 32]);
        let mut holder = ProxyCredentials::new();
        let other = Ed25519SigningKey::from_seed(&[3; 32])
            .verifying_key()
            .to_bytes();
        let body = answer(&command, other, Duration::from_secs(600));
        assert!(holder.handle_response(&key, 200, &body, NOW).is_err());
        let body = answer(
            &command,
            key.verifying_key().to_bytes(),
            Duration::from_secs(600),
        );
        let later = NOW.saturating_add(Duration::from_secs(600));
        assert!(holder.handle_response(&key, 200, &body, later).is_err());
        assert!(holder.handle_response(&key, 200, b"{}", NOW).is_err());
        let refusal = br#"{"code":"device_revoked","message":"the device is revoked"}"#;
        let error = holder.handle_response(&key, 403, refusal, NOW).unwrap_err();
        assert_eq!(error.code(), Some("device_revoked"));
        assert!(holder.credential().is_none());
    }
}
