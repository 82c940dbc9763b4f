//! The device's HTTP client: sends the core's signed requests to Command and reads the answers
//! within a size bound, and fetches TUF metadata and artifacts for the update sub-flow. Device
//! requests carry no bearer token, and redirects are never followed (Command never redirects
//! device calls, and a redirect would carry a signed request to a place nobody named).

use std::time::Duration;

use enigm_crypto::Ed25519SigningKey;
use enigm_device::{NONCE_LEN, RequestParts, sign_request};
use rand::RngCore as _;
use reqwest::header;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::core::{Method, Request};
use crate::report::system_now;

/// Largest answer to a device request the client reads.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Why the client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error("`{0}` is not a valid server url")]
    InvalidUrl(String),
    #[error("server url `{0}` must start with https:// (or http:// on a loopback address)")]
    Scheme(String),
    #[error("the ca certificate is not valid pem, or holds no certificate")]
    Certificate,
    #[error("could not set up the http client")]
    Http(#[source] reqwest::Error),
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("could not reach the command server at `{server}`: {source}")]
    Unreachable {
        server: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the answer of `{server}` is larger than {MAX_ANSWER_BYTES} bytes")]
    TooLarge { server: String },
}

/// A status and body as Command answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// A device's client of one Command server.
#[derive(Debug, Clone)]
pub struct DeviceClient {
    /// Normalised: no trailing slash.
    base: String,
    /// The path part of `base`, signed in front of API paths.
    prefix: String,
    http: reqwest::Client,
}

impl DeviceClient {
    /// A client of the server at `base` (https, or http on a loopback address), trusting
    /// `ca_cert_pem` in addition to the built-in web roots.
    pub fn new(base: &str, ca_cert_pem: Option<&[u8]>) -> Result<Self, ClientBuildError> {
        let shown: String = base.chars().take(200).collect();
        let url = reqwest::Url::parse(base.trim())
            .map_err(|_| ClientBuildError::InvalidUrl(shown.clone()))?;
        let loopback = url.host_str().is_some_and(|host| {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|address| address.is_loopback())
        });
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => return Err(ClientBuildError::Scheme(shown)),
        }
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("enigm-agent/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_cert_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|_| ClientBuildError::Certificate)?;
            if certificates.is_empty() {
                return Err(ClientBuildError::Certificate);
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder.build().map_err(ClientBuildError::Http)?;
        Ok(DeviceClient {
            base: url.as_str().trim_end_matches('/').to_owned(),
            prefix: url.path().trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// The server's base URL.
    pub fn server(&self) -> &str {
        &self.base
    }

    /// The path part of the server URL (`""` for a server at the root).
    pub fn path_prefix(&self) -> &str {
        &self.prefix
    }

    /// Sends a request the core signed, and reads the answer.
    pub async fn send(&self, request: &Request) -> Result<Answer, TransportError> {
        let url = format!("{}{}", self.base, request.path);
        let builder = match request.method {
            Method::Get => self.http.get(url),
            Method::Post => self
                .http
                .post(url)
                .header(header::CONTENT_TYPE, "application/json")
                .body(request.body.clone()),
        };
        let response = builder
            .timeout(Duration::from_secs(60))
            .header(
                enigm_device::CONTENT_DIGEST,
                &request.signature.content_digest,
            )
            .header(
                enigm_device::SIGNATURE_INPUT,
                &request.signature.signature_input,
            )
            .header(enigm_device::SIGNATURE, &request.signature.signature)
            .send()
            .await
            .map_err(|source| self.unreachable(source))?;
        let status = response.status().as_u16();
        let body = self.read(response).await?;
        Ok(Answer { status, body })
    }

    /// POSTs `body` to `path` signed with `key`, a fresh nonce from the operating system and
    /// the system clock; the update sub-flow reports its outcomes this way.
    pub async fn post_signed<B: Serialize, T: DeserializeOwned>(
        &self,
        key: &Ed25519SigningKey,
        path: &'static str,
        body: &B,
    ) -> anyhow::Result<T> {
        let (_, answer) = self.post_signed_raw(key, path, body).await?;
        Ok(serde_json::from_slice(&answer.body)?)
    }

    /// [`Self::post_signed`], keeping the answer's bytes as they came and returning the nonce
    /// the request was signed with (as `Signature-Input` spells it): the director's answer
    /// is verified over its exact bytes and echoes that nonce.
    pub async fn post_signed_raw<B: Serialize>(
        &self,
        key: &Ed25519SigningKey,
        path: &'static str,
        body: &B,
    ) -> anyhow::Result<(String, Answer)> {
        let (nonce, answer) = self.post_signed_answer(key, path, body).await?;
        if !(200..300).contains(&answer.status) {
            let error = match serde_json::from_slice::<enigm_api::ErrorBody>(&answer.body) {
                Ok(body) => format!("{} ({})", body.message, body.code),
                Err(_) => format!("unexpected answer {}", answer.status),
            };
            anyhow::bail!("{error}");
        }
        Ok((nonce, answer))
    }

    /// [`Self::post_signed_raw`] with whatever status the server answered: for a caller that
    /// tells refusals from failures itself (`enigm simulate` counts them apart).
    pub async fn post_signed_answer<B: Serialize>(
        &self,
        key: &Ed25519SigningKey,
        path: &'static str,
        body: &B,
    ) -> anyhow::Result<(String, Answer)> {
        let bytes = serde_json::to_vec(body)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|_| anyhow::anyhow!("the operating system gave no randomness"))?;
        let signed_path = format!("{}{path}", self.prefix);
        let signature = sign_request(
            key,
            &RequestParts {
                method: "POST",
                path: &signed_path,
                query: "",
                body: &bytes,
            },
            system_now(),
            &nonce,
        );
        let request = Request {
            // Outside the core's cycle; the exchange only names what a request is for.
            exchange: crate::core::Exchange::CheckIn,
            method: Method::Post,
            path,
            body: bytes,
            signature,
        };
        let answer = self.send(&request).await?;
        use base64::Engine as _;
        let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nonce);
        Ok((nonce, answer))
    }

    /// GETs `path` and returns the response as it is (status included) for the caller to read
    /// within its own bounds: TUF metadata and artifacts, whose limits the TUF client sets.
    pub async fn get_response(&self, path: &str) -> Result<reqwest::Response, TransportError> {
        self.get_response_from(path, 0).await
    }

    /// [`Self::get_response`] from byte `offset` on (`Range: bytes=<offset>-`, when not 0), to
    /// resume a download that broke off.
    pub async fn get_response_from(
        &self,
        path: &str,
        offset: u64,
    ) -> Result<reqwest::Response, TransportError> {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if offset > 0 {
            request = request.header(header::RANGE, format!("bytes={offset}-"));
        }
        request
            .timeout(Duration::from_secs(24 * 60 * 60))
            .send()
            .await
            .map_err(|source| self.unreachable(source))
    }

    fn unreachable(&self, source: reqwest::Error) -> TransportError {
        TransportError::Unreachable {
            server: self.base.clone(),
            source,
        }
    }

    async fn read(&self, mut response: reqwest::Response) -> Result<Vec<u8>, TransportError> {
        let too_large = || TransportError::TooLarge {
            server: self.base.clone(),
        };
        if response
            .content_length()
            .is_some_and(|length| length > MAX_ANSWER_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|source| self.unreachable(source))?
        {
            if body.len().saturating_add(chunk.len()) > MAX_ANSWER_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}
