//! The agent's loopback entry point to the Enigm Proxy (enigm-docs §10.1: the proxy is mandatory
//! for app traffic, with no direct fallback). Apps on the device use it as their HTTP proxy: each
//! sends an HTTP CONNECT for its target; the forwarder signs a fresh proof for that target with
//! the device key and the credential held, opens a tunnel through the Enigm Proxy
//! ([`crate::proxy_tunnel::open_tunnel`]) and splices the two connections.
//!
//! It fails closed: without a live credential the app is answered `503` and nothing is sent
//! anywhere; a proxy that refuses, cannot be reached or does not answer in time is reported to
//! the app (`403`, `502`, `504`) and the connection ends. The only connection it ever opens is
//! to the proxy, never to the target. Nothing but counts by outcome category is kept: no
//! destination is logged.
//!
//! The pure part, a request head to a target or a refusal, is [`parse_connect_head`]; what the
//! app is answered for each failure is [`ForwardRefusal`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use enigm_crypto::Ed25519SigningKey;
use enigm_proxyauth::{PROOF_NONCE_LEN, TargetAuthority};
use enigm_types::{Clock, Timestamp};
use rand::RngCore as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::core::ExchangeError;
use crate::core::proxy::{ProxyCredentials, ProxyUnavailable};
use crate::http::DeviceClient;
use crate::proxy_tunnel::{TunnelError, open_tunnel, renew_if_due};

/// The credential holder the forwarder shares with the task that renews it ([`renew_shared`]).
pub type SharedCredentials = Arc<tokio::sync::Mutex<ProxyCredentials>>;

/// Serves `listener` with the system clock and [`ForwardLimits::default`], forever: the entry
/// point `enigm agent` runs. It returns only with an error, at once: a listener not bound to a
/// loopback address is refused (failed accepts are retried, never fatal).
pub async fn serve(
    listener: TcpListener,
    proxy: SocketAddr,
    key: Ed25519SigningKey,
    credentials: SharedCredentials,
) -> anyhow::Result<()> {
    Forwarder::new(
        proxy,
        key,
        credentials,
        Arc::new(SystemClock),
        ForwardLimits::default(),
    )
    .serve(listener, std::future::pending())
    .await
    .context("the proxy forwarder stopped")
}

/// Renews the shared credential when due ([`renew_if_due`]: none held, or two thirds of its
/// lifetime gone) without holding the lock while Command answers, so that app connections are
/// served with the credential held meanwhile. `Ok(true)` when a new one was installed; on an
/// error the credential held stays until it expires (then the forwarder answers 503). Meant
/// for one renewing task.
pub async fn renew_shared(
    client: &DeviceClient,
    key: &Ed25519SigningKey,
    credentials: &SharedCredentials,
    now: Timestamp,
) -> Result<bool, ExchangeError> {
    let mut next = credentials.lock().await.clone();
    let renewed = renew_if_due(client, key, &mut next, now).await?;
    if renewed {
        *credentials.lock().await = next;
    }
    Ok(renewed)
}

/// The forwarder's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardLimits {
    /// The longest request head read from an app (request line and fields).
    pub max_head_bytes: usize,
    /// How long an app has to send its whole head.
    pub head_timeout: Duration,
    /// How long connecting to the proxy and reading its answer may take.
    pub proxy_timeout: Duration,
    /// App connections served at once; more are answered `503 busy` and closed.
    pub max_connections: usize,
}

impl Default for ForwardLimits {
    fn default() -> Self {
        ForwardLimits {
            max_head_bytes: 8 * 1024,
            head_timeout: Duration::from_secs(10),
            proxy_timeout: Duration::from_secs(10),
            max_connections: 256,
        }
    }
}

/// The forwarder: where the proxy is, the device key, the shared credential, a clock, bounds
/// and counts.
pub struct Forwarder {
    proxy: SocketAddr,
    key: Ed25519SigningKey,
    credentials: SharedCredentials,
    clock: Arc<dyn Clock>,
    limits: ForwardLimits,
    permits: Arc<Semaphore>,
    counts: std::sync::Mutex<BTreeMap<&'static str, u64>>,
}

impl Forwarder {
    pub fn new(
        proxy: SocketAddr,
        key: Ed25519SigningKey,
        credentials: SharedCredentials,
        clock: Arc<dyn Clock>,
        limits: ForwardLimits,
    ) -> Arc<Self> {
        Arc::new(Forwarder {
            proxy,
            key,
            credentials,
            clock,
            limits,
            permits: Arc::new(Semaphore::new(limits.max_connections)),
            counts: std::sync::Mutex::new(BTreeMap::new()),
        })
    }

    /// App connections so far by outcome category: `tunnel`, `client-gone`, or the category of
    /// the refusal the app was answered (the proxy's own categories are counted as
    /// `proxy-refused`). Never a destination.
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.counts
            .lock()
            .map(|counts| counts.clone())
            .unwrap_or_default()
    }

    /// Serves `listener` until `shutdown` completes, each app connection in its own task.
    /// Refuses (`InvalidInput`) a listener not bound to a loopback address: the forwarder
    /// spends the device's credential for whoever connects, so it must not be reachable from
    /// the network.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        if !listener.local_addr()?.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the proxy forwarder listens on a loopback address only",
            ));
        }
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => return Ok(()),
                accepted = listener.accept() => accepted,
            };
            let Ok((stream, _peer)) = accepted else {
                // Out of descriptors and the like: back off, keep serving.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    let forwarder = self.clone();
                    tokio::spawn(async move {
                        forwarder.connection(stream).await;
                        drop(permit);
                    });
                }
                Err(_) => {
                    // No task for a connection over the bound: one non-blocking write of the
                    // refusal, then close.
                    let refusal = ForwardRefusal::busy();
                    self.count(refusal.counted());
                    let _ = stream.try_write(refusal.response().as_bytes());
                }
            }
        }
    }

    async fn connection(&self, mut app: TcpStream) {
        let (mut tunnel, leftover) = match self.admit(&mut app).await {
            Ok(admitted) => admitted,
            Err(Outcome::ClientGone) => {
                self.count("client-gone");
                return;
            }
            Err(Outcome::Refused(refusal)) => {
                self.count(refusal.counted());
                let _ = app.write_all(refusal.response().as_bytes()).await;
                let _ = app.shutdown().await;
                return;
            }
        };
        if app
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .is_err()
            || tunnel.write_all(&leftover).await.is_err()
        {
            self.count("client-gone");
            return;
        }
        self.count("tunnel");
        // The proxy ends the tunnel when the credential that opened it expires.
        let _ = tokio::io::copy_bidirectional(&mut app, &mut tunnel).await;
    }

    /// Reads and parses the app's head, authorizes the target and opens the tunnel: the tunnel
    /// and the bytes the app sent after its head.
    async fn admit(&self, app: &mut TcpStream) -> Result<(TcpStream, Vec<u8>), Outcome> {
        let (head, leftover) = tokio::time::timeout(
            self.limits.head_timeout,
            read_head(app, self.limits.max_head_bytes),
        )
        .await
        .map_err(|_| Outcome::Refused(ForwardRefusal::head_timeout()))??;
        let target =
            parse_connect_head(&head).map_err(|refusal| Outcome::Refused(refusal.into()))?;
        let authorization = self
            .authorization(&target)
            .await
            .map_err(|unavailable| Outcome::Refused(unavailable.into()))?;
        let tunnel = open_tunnel(
            self.proxy,
            &authorization,
            &target,
            self.limits.proxy_timeout,
        )
        .await
        .map_err(|error| Outcome::Refused(ForwardRefusal::from(&error)))?;
        Ok((tunnel, leftover))
    }

    /// A fresh `Proxy-Authorization` for `target`; the lock is held only while signing.
    async fn authorization(&self, target: &TargetAuthority) -> Result<String, ProxyUnavailable> {
        let mut nonce = [0u8; PROOF_NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let now = self.clock.now();
        self.credentials
            .lock()
            .await
            .authorization(&self.key, target, now, nonce)
    }

    fn count(&self, category: &'static str) {
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry(category).or_default() += 1;
        }
    }
}

/// Why an app's request head yields no target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadRefusal {
    #[error("the request head is not well-formed")]
    Malformed,
    #[error("the request is not a CONNECT")]
    NotConnect,
    #[error("the CONNECT target is not a host and port")]
    BadTarget,
}

/// The most header fields an app's request head may carry.
const MAX_FIELDS: usize = 64;

/// Parses an app's request head, which ends with the empty line (`\r\n\r\n`), into the target
/// of its CONNECT. Only a well-formed HTTP/1.x head whose method is exactly `CONNECT` and whose
/// target is an authority (`host:port`) yields a target; anything ambiguous (bare line feeds,
/// folded lines, non-ASCII) is malformed. The app's header fields, including any
/// `Proxy-Authorization`, are read past and never forwarded.
pub fn parse_connect_head(head: &[u8]) -> Result<TargetAuthority, HeadRefusal> {
    let text = std::str::from_utf8(head).map_err(|_| HeadRefusal::Malformed)?;
    if !text.is_ascii() {
        return Err(HeadRefusal::Malformed);
    }
    let text = text
        .strip_suffix("\r\n\r\n")
        .ok_or(HeadRefusal::Malformed)?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().ok_or(HeadRefusal::Malformed)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadRefusal::Malformed);
    };
    if method.is_empty()
        || target.is_empty()
        || !matches!(version, "HTTP/1.1" | "HTTP/1.0")
        || !method.bytes().all(|byte| byte.is_ascii_uppercase())
    {
        return Err(HeadRefusal::Malformed);
    }
    for (index, line) in lines.enumerate() {
        if index >= MAX_FIELDS || line.contains(['\r', '\n']) || line.starts_with([' ', '\t']) {
            return Err(HeadRefusal::Malformed);
        }
        let (name, _value) = line.split_once(':').ok_or(HeadRefusal::Malformed)?;
        if name.is_empty()
            || name.contains([' ', '\t'])
            || name.bytes().any(|byte| byte.is_ascii_control())
        {
            return Err(HeadRefusal::Malformed);
        }
    }
    if method != "CONNECT" {
        return Err(HeadRefusal::NotConnect);
    }
    TargetAuthority::parse(target).map_err(|_| HeadRefusal::BadTarget)
}

/// What an app is answered when no tunnel is opened: a status and a short category, sent as
/// the body. The category says which check failed, never a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardRefusal {
    status: u16,
    category: Cow<'static, str>,
    from_proxy: bool,
}

/// The longest category passed on from the proxy's answer.
const MAX_PROXY_CATEGORY: usize = 64;

impl ForwardRefusal {
    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn category(&self) -> &str {
        &self.category
    }

    /// The whole answer: status line, `Connection: close`, the category as a plain-text body.
    pub fn response(&self) -> String {
        format!(
            "HTTP/1.1 {} {}\r\nConnection: close\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\n\r\n{}",
            self.status,
            reason_phrase(self.status),
            self.category.len(),
            self.category
        )
    }

    fn local(status: u16, category: &'static str) -> Self {
        ForwardRefusal {
            status,
            category: Cow::Borrowed(category),
            from_proxy: false,
        }
    }

    fn busy() -> Self {
        ForwardRefusal::local(503, "busy")
    }

    fn head_timeout() -> Self {
        ForwardRefusal::local(408, "head-timeout")
    }

    fn head_too_large() -> Self {
        ForwardRefusal::local(431, "head-too-large")
    }

    /// The category counted: the proxy's categories are the proxy's to count.
    fn counted(&self) -> &'static str {
        match &self.category {
            Cow::Borrowed(category) if !self.from_proxy => category,
            _ => "proxy-refused",
        }
    }
}

impl From<HeadRefusal> for ForwardRefusal {
    fn from(refusal: HeadRefusal) -> Self {
        match refusal {
            HeadRefusal::Malformed => ForwardRefusal::local(400, "malformed-head"),
            HeadRefusal::NotConnect => ForwardRefusal::local(405, "not-connect"),
            HeadRefusal::BadTarget => ForwardRefusal::local(400, "bad-target"),
        }
    }
}

impl From<ProxyUnavailable> for ForwardRefusal {
    fn from(unavailable: ProxyUnavailable) -> Self {
        match unavailable {
            ProxyUnavailable::NoCredential => ForwardRefusal::local(503, "no-credential"),
            ProxyUnavailable::Expired => ForwardRefusal::local(503, "credential-expired"),
        }
    }
}

impl From<&TunnelError> for ForwardRefusal {
    /// A proxy that forbids the destination is `403`, one that timed out reaching it `504`;
    /// every other refusal (a credential or proof refused, the proxy busy) is the gateway's
    /// failure, `502`, never `407`: the app holds no credential to retry with.
    fn from(error: &TunnelError) -> Self {
        match error {
            TunnelError::Unreachable(_) => ForwardRefusal::local(502, "proxy-unreachable"),
            TunnelError::Timeout => ForwardRefusal::local(504, "proxy-timeout"),
            TunnelError::BadAnswer => ForwardRefusal::local(502, "proxy-bad-answer"),
            TunnelError::Refused { status, category } => {
                let status = match status {
                    403 => 403,
                    504 => 504,
                    _ => 502,
                };
                // `open_tunnel` keeps only ASCII letters, digits and hyphens of the category.
                let category: String = category
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .take(MAX_PROXY_CATEGORY)
                    .collect();
                let category = if category.is_empty() {
                    Cow::Borrowed("proxy-refused")
                } else {
                    Cow::Owned(category)
                };
                ForwardRefusal {
                    status,
                    category,
                    from_proxy: true,
                }
            }
        }
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

/// What came of reading and authorizing an app's request, short of a tunnel.
enum Outcome {
    /// The app closed (or failed) before its head was complete: there is no one to answer.
    ClientGone,
    Refused(ForwardRefusal),
}

impl From<ForwardRefusal> for Outcome {
    fn from(refusal: ForwardRefusal) -> Self {
        Outcome::Refused(refusal)
    }
}

/// Reads up to and including the empty line that ends the head, at most `max` bytes; returns
/// the head and whatever the app sent after it (the start of its TLS handshake, say).
async fn read_head(stream: &mut TcpStream, max: usize) -> Result<(Vec<u8>, Vec<u8>), Outcome> {
    let mut buffer = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let read = stream
            .read(&mut chunk)
            .await
            .map_err(|_| Outcome::ClientGone)?;
        if read == 0 {
            return Err(Outcome::ClientGone);
        }
        let searched_from = buffer.len().saturating_sub(3);
        buffer.extend_from_slice(chunk.get(..read).unwrap_or_default());
        if let Some(end) = buffer
            .get(searched_from..)
            .and_then(|tail| tail.windows(4).position(|window| window == b"\r\n\r\n"))
        {
            let end = searched_from + end + 4;
            if end > max {
                return Err(ForwardRefusal::head_too_large().into());
            }
            let leftover = buffer.split_off(end);
            return Ok((buffer, leftover));
        }
        if buffer.len() > max {
            return Err(ForwardRefusal::head_too_large().into());
        }
    }
}

/// The operating system's clock ([`crate::report::system_now`]).
struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        crate::report::system_now()
    }
}

#[cfg(test)]
mod tests;
