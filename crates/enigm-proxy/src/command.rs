//! What the proxy reads from Command: the proxy-credential key (pinned at start, or checked
//! against a pinned copy) and the signed revocation list, polled. A list that cannot be fetched
//! or verified leaves the one held in place; once that is older than the verifier's bound,
//! every connection is refused (fail closed).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use enigm_api::paths;
use enigm_api::proxy::{ProxyCredentialKeyView, ProxyRevocationsView};
use enigm_crypto::Ed25519VerifyingKey;
use enigm_proxyauth::{RevocationError, RevocationList, VerifiedRevocations};

use crate::server::ProxyServer;

/// The largest answer read from Command (a revocation list of the most ids, in base64, in JSON).
const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// Why Command's key or list could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("`{0}` is not an http(s) URL Command can be reached at (https, or http on loopback)")]
    Url(String),
    #[error("Command could not be reached")]
    Unreachable(#[source] reqwest::Error),
    #[error("the CA file holds no usable PEM certificate")]
    CaCertificate,
    #[error("Command answered {0}")]
    Status(u16),
    #[error("Command's answer is too large or not what was asked for")]
    Answer,
    #[error("Command's proxy-credential key is not a valid Ed25519 key")]
    Key,
    #[error("the revocation list was refused: {0}")]
    Revocations(#[from] RevocationError),
}

/// A client of Command's public proxy routes.
#[derive(Debug, Clone)]
pub struct CommandClient {
    base: String,
    http: reqwest::Client,
}

impl CommandClient {
    /// A client of Command at `base`: https, or http on a loopback address.
    pub fn new(base: &str) -> Result<Self, CommandError> {
        CommandClient::with_ca(base, None)
    }

    /// As [`CommandClient::new`], also trusting the PEM certificates in `ca_pem` for Command's
    /// TLS certificate (a private CA or a self-signed certificate).
    pub fn with_ca(base: &str, ca_pem: Option<&[u8]>) -> Result<Self, CommandError> {
        let url = reqwest::Url::parse(base.trim()).map_err(|_| CommandError::Url(shown(base)))?;
        let loopback = url.host_str().is_some_and(|host| {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|address| address.is_loopback())
        });
        if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
            return Err(CommandError::Url(shown(base)));
        }
        let mut builder = reqwest::Client::builder();
        if let Some(pem) = ca_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .ok()
                .filter(|certificates| !certificates.is_empty())
                .ok_or(CommandError::CaCertificate)?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("enigm-proxy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(CommandError::Unreachable)?;
        Ok(CommandClient {
            base: url.as_str().trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// Command's proxy-credential key.
    pub async fn credential_key(&self) -> Result<Ed25519VerifyingKey, CommandError> {
        let view: ProxyCredentialKeyView = self.get(paths::PROXY_CREDENTIAL_KEY).await?;
        if view.algorithm != "ed25519" {
            return Err(CommandError::Key);
        }
        parse_key(&view.key).ok_or(CommandError::Key)
    }

    /// Command's current revocation list, verified under `key`.
    pub async fn revocations(
        &self,
        key: &Ed25519VerifyingKey,
    ) -> Result<VerifiedRevocations, CommandError> {
        let view: ProxyRevocationsView = self.get(paths::PROXY_REVOCATIONS).await?;
        let bytes = URL_SAFE_NO_PAD
            .decode(view.list)
            .map_err(|_| CommandError::Answer)?;
        let list = RevocationList::parse(&bytes).map_err(RevocationError::from)?;
        Ok(list.verify(key)?)
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, CommandError> {
        let mut response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(CommandError::Unreachable)?;
        if !response.status().is_success() {
            return Err(CommandError::Status(response.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(CommandError::Unreachable)? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(CommandError::Answer);
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|_| CommandError::Answer)
    }
}

/// A key as Command publishes it and as `--credential-key` files hold it: 32 bytes in unpadded
/// base64url.
pub fn parse_key(text: &str) -> Option<Ed25519VerifyingKey> {
    let bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
    Ed25519VerifyingKey::from_bytes(&bytes).ok()
}

/// Fetches Command's revocation list every `every` and installs it, forever. Failures are
/// logged by kind only; the proxy keeps the list it has until that is too old to use.
pub async fn keep_revocations_current(
    server: Arc<ProxyServer>,
    command: CommandClient,
    key: Ed25519VerifyingKey,
    every: Duration,
) {
    loop {
        match refresh(&server, &command, &key).await {
            Ok(()) => {}
            Err(error) => tracing::warn!(%error, "cannot refresh the revocation list"),
        }
        tokio::time::sleep(every).await;
    }
}

/// Fetches and installs the revocation list once.
pub async fn refresh(
    server: &ProxyServer,
    command: &CommandClient,
    key: &Ed25519VerifyingKey,
) -> Result<(), CommandError> {
    let list = command.revocations(key).await?;
    server.install_revocations(list)?;
    Ok(())
}

fn shown(text: &str) -> String {
    text.chars().take(200).collect()
}
