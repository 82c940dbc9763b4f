//! HTTP client of the Command API: the one place that knows the base URL, the bearer token, the
//! critical-operation PIN header, response size bounds and how error bodies become [`ClientError`].
//!
//! Every command group (administration now; devices, releases and audit verification later)
//! talks to Command through [`CommandClient`], so these rules hold for all of them.

use std::fmt;
use std::time::Duration;

use enigm_api::ErrorBody;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::secrets::Pin;

/// Largest response body the client reads. An audit page of 1000 events is well under 1 MiB;
/// anything far larger is a broken or hostile server, not data worth buffering.
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// Server-provided error texts are printed to a terminal, so they are bounded and cleaned.
const MAX_ERROR_TEXT_CHARS: usize = 500;

/// The base URL of a Command server: `https://…`, or `http://…` on a loopback address only.
///
/// Plain HTTP would carry passwords, bearer tokens and PINs in the clear; the server itself
/// refuses to listen without TLS anywhere but on loopback, and the client matches that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerUrl {
    /// Normalised: no trailing slash, no query, fragment or user information.
    base: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ServerUrlError {
    #[error("`{0}` is not a valid server url")]
    Invalid(String),
    #[error("server url `{0}` must start with https:// (or http:// on a loopback address)")]
    Scheme(String),
    #[error("server url `{0}` uses plain http on a non-loopback address: use https")]
    PlainHttp(String),
    #[error("server url `{0}` must not contain a user name, password, query or fragment")]
    ExtraParts(String),
}

impl ServerUrl {
    pub(crate) fn parse(input: &str) -> Result<Self, ServerUrlError> {
        let shown: String = input.chars().take(200).collect();
        let url = Url::parse(input.trim()).map_err(|_| ServerUrlError::Invalid(shown.clone()))?;
        if !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(ServerUrlError::ExtraParts(shown));
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => return Err(ServerUrlError::PlainHttp(shown)),
            _ => return Err(ServerUrlError::Scheme(shown)),
        }
        if url.host().is_none() {
            return Err(ServerUrlError::Invalid(shown));
        }
        Ok(ServerUrl {
            base: url.as_str().trim_end_matches('/').to_owned(),
        })
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.base
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base)
    }
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    // IPv6 hosts come bracketed (`[::1]`).
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// An error answer of Command: the HTTP status and the API's [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({code})")]
pub(crate) struct ClientError {
    pub(crate) status: u16,
    /// The stable machine-readable code, e.g. `pin_invalid`; `http_<status>` when the server
    /// sent no error body (a proxy in between, or a crash).
    pub(crate) code: String,
    pub(crate) message: String,
    /// Seconds from a `Retry-After` header, sent with `throttled`.
    pub(crate) retry_after: Option<u64>,
}

impl ClientError {
    /// Maps a non-success response to an error, whatever its body holds.
    pub(crate) fn from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let retry_after = headers
            .get(header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok());
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(error) => ClientError {
                status: status.as_u16(),
                code: clean_error_text(&error.code),
                message: clean_error_text(&error.message),
                retry_after,
            },
            Err(_) => ClientError {
                status: status.as_u16(),
                code: format!("http_{}", status.as_u16()),
                message: format!("unexpected answer `{status}` without an error body"),
                retry_after,
            },
        }
    }
}

/// Replaces control characters (terminal escape sequences included) and bounds the length.
fn clean_error_text(text: &str) -> String {
    text.chars()
        .take(MAX_ERROR_TEXT_CHARS)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// Why a request did not produce a decoded answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    #[error(transparent)]
    Api(#[from] ClientError),
    #[error("could not reach the command server at `{server}`")]
    Unreachable {
        server: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("lost the connection to `{server}` while reading its answer")]
    Body {
        server: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the answer of `{server}` is larger than {limit} bytes")]
    TooLarge { server: String, limit: usize },
    #[error("`{server}` sent an answer that is not the expected json")]
    Decode {
        server: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the pin cannot be sent as an http header")]
    PinHeader,
    /// The server accepted the request without saying more than that (`202` with
    /// `{"status": "accepted"}`); the command ends successfully with "accepted".
    #[error("accepted")]
    Accepted,
}

impl RequestError {
    /// The API error, when the server answered with one.
    pub(crate) fn api(&self) -> Option<&ClientError> {
        match self {
            RequestError::Api(error) => Some(error),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildError {
    #[error("the ca certificate file holds no pem certificate")]
    NoCertificate,
    #[error("the ca certificate is not valid pem")]
    Certificate(#[source] reqwest::Error),
    #[error("the token contains characters that cannot be sent in an http header")]
    Token,
    #[error("could not set up the http client")]
    Http(#[source] reqwest::Error),
}

/// A decoded answer together with the JSON it came from, for `--json` output.
#[derive(Debug)]
pub(crate) struct Reply<T> {
    pub(crate) value: T,
    /// The body as sent; `null` for `204 No Content`.
    pub(crate) raw: serde_json::Value,
}

pub(crate) struct CommandClient {
    base: ServerUrl,
    http: reqwest::Client,
    /// `Bearer <token>`, marked sensitive so that it never shows in debug output.
    token: Option<HeaderValue>,
}

impl fmt::Debug for CommandClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandClient")
            .field("base", &self.base)
            .field("authenticated", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

impl CommandClient {
    /// `ca_cert_pem` adds trust anchors for a server with a self-signed or private certificate,
    /// on top of the built-in web roots.
    pub(crate) fn new(
        base: ServerUrl,
        ca_cert_pem: Option<&[u8]>,
        token: Option<&SecretString>,
    ) -> Result<Self, BuildError> {
        let mut builder = reqwest::Client::builder()
            // A redirect would carry the PIN header (and, to the same host, the token) to a
            // place the operator never named; Command never redirects API calls.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("enigm/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_cert_pem {
            let certificates =
                reqwest::Certificate::from_pem_bundle(pem).map_err(BuildError::Certificate)?;
            if certificates.is_empty() {
                return Err(BuildError::NoCertificate);
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder.build().map_err(BuildError::Http)?;
        let token = match token {
            Some(token) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                    .map_err(|_| BuildError::Token)?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(CommandClient { base, http, token })
    }

    pub(crate) fn server(&self) -> &ServerUrl {
        &self.base
    }

    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Reply<T>, RequestError> {
        self.send(self.request(Method::GET, path), None).await
    }

    pub(crate) async fn get_query<Q, T>(
        &self,
        path: &str,
        query: &Q,
    ) -> Result<Reply<T>, RequestError>
    where
        Q: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        self.send(self.request(Method::GET, path).query(query), None)
            .await
    }

    pub(crate) async fn post<B, T>(
        &self,
        path: &str,
        body: &B,
        pin: Option<&Pin>,
    ) -> Result<Reply<T>, RequestError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        self.send(self.request(Method::POST, path).json(body), pin)
            .await
    }

    /// A POST without a body (approve, disable, logout, …).
    pub(crate) async fn post_empty<T: DeserializeOwned>(
        &self,
        path: &str,
        pin: Option<&Pin>,
    ) -> Result<Reply<T>, RequestError> {
        self.send(self.request(Method::POST, path), pin).await
    }

    pub(crate) async fn put<B, T>(
        &self,
        path: &str,
        body: &B,
        pin: Option<&Pin>,
    ) -> Result<Reply<T>, RequestError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        self.send(self.request(Method::PUT, path).json(body), pin)
            .await
    }

    pub(crate) async fn patch<B, T>(
        &self,
        path: &str,
        body: &B,
        pin: Option<&Pin>,
    ) -> Result<Reply<T>, RequestError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        self.send(self.request(Method::PATCH, path).json(body), pin)
            .await
    }

    pub(crate) async fn delete<T: DeserializeOwned>(
        &self,
        path: &str,
        pin: Option<&Pin>,
    ) -> Result<Reply<T>, RequestError> {
        self.send(self.request(Method::DELETE, path), pin).await
    }

    /// POSTs `body` as it is (signed metadata: the bytes that were signed are the bytes sent).
    pub(crate) async fn post_raw<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
        pin: Option<&Pin>,
    ) -> Result<Reply<T>, RequestError> {
        let request = self
            .request(Method::POST, path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body);
        self.send(request, pin).await
    }

    /// PUTs `body` as it is.
    pub(crate) async fn put_raw<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
        pin: Option<&Pin>,
    ) -> Result<Reply<T>, RequestError> {
        let request = self
            .request(Method::PUT, path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body);
        self.send(request, pin).await
    }

    /// PUTs a large body streamed from `body` (`length` bytes), without the API timeout: an
    /// artifact upload takes as long as the link needs.
    pub(crate) async fn put_stream<T: DeserializeOwned>(
        &self,
        path: &str,
        body: reqwest::Body,
        length: u64,
    ) -> Result<Reply<T>, RequestError> {
        let request = self
            .request(Method::PUT, path)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, length)
            .timeout(Duration::from_secs(24 * 60 * 60))
            .body(body);
        self.send(request, None).await
    }

    /// GETs `path` and returns the response as it is (status included) for the caller to read
    /// within its own bounds: TUF metadata and artifacts, whose limits the TUF client sets.
    pub(crate) async fn get_response(&self, path: &str) -> Result<Response, RequestError> {
        self.get_response_from(path, 0).await
    }

    /// [`Self::get_response`] from byte `offset` on (`Range: bytes=<offset>-`, when not 0), to
    /// resume a download that broke off.
    pub(crate) async fn get_response_from(
        &self,
        path: &str,
        offset: u64,
    ) -> Result<Response, RequestError> {
        let mut request = self.request(Method::GET, path);
        if offset > 0 {
            request = request.header(header::RANGE, format!("bytes={offset}-"));
        }
        request
            .timeout(Duration::from_secs(24 * 60 * 60))
            .send()
            .await
            .map_err(|source| RequestError::Unreachable {
                server: self.base.as_str().to_owned(),
                source,
            })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base.as_str()));
        if let Some(token) = &self.token {
            request = request.header(header::AUTHORIZATION, token.clone());
        }
        request
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        pin: Option<&Pin>,
    ) -> Result<Reply<T>, RequestError> {
        let request = match pin {
            Some(pin) => request.header(
                enigm_api::PIN_HEADER,
                pin.header_value().ok_or(RequestError::PinHeader)?,
            ),
            None => request,
        };
        let server = self.base.as_str();
        let response = request
            .send()
            .await
            .map_err(|source| RequestError::Unreachable {
                server: server.to_owned(),
                source,
            })?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_bounded(response, server).await?;
        if !status.is_success() {
            return Err(ClientError::from_response(status, &headers, &body).into());
        }
        match decode(&body, server) {
            Err(RequestError::Decode { .. })
                if status == StatusCode::ACCEPTED && is_bare_acceptance(&body) =>
            {
                Err(RequestError::Accepted)
            }
            decoded => decoded,
        }
    }
}

/// `{"status": "accepted"}` and nothing else: an answer any operation may give.
fn is_bare_acceptance(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .is_ok_and(|value| value == serde_json::json!({"status": "accepted"}))
}

/// Decodes a success body; an empty body (`204 No Content`) decodes as JSON `null`, which is
/// what `()` expects.
fn decode<T: DeserializeOwned>(body: &[u8], server: &str) -> Result<Reply<T>, RequestError> {
    let decode_error = |source| RequestError::Decode {
        server: server.to_owned(),
        source,
    };
    let raw = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(body).map_err(decode_error)?
    };
    let value = serde_json::from_value(raw.clone()).map_err(decode_error)?;
    Ok(Reply { value, raw })
}

async fn read_bounded(mut response: Response, server: &str) -> Result<Vec<u8>, RequestError> {
    let too_large = || RequestError::TooLarge {
        server: server.to_owned(),
        limit: MAX_RESPONSE_BYTES,
    };
    if response
        .content_length()
        .is_some_and(|length| length > MAX_RESPONSE_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|source| RequestError::Body {
            server: server.to_owned(),
            source,
        })?
    {
        if body.len().saturating_add(chunk.len()) > MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests;
