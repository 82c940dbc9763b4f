//! The CONNECT front: accept, read one bounded request head within a deadline, verify its
//! `Proxy-Authorization` for its target, then connect to the target and copy bytes both ways
//! until either side closes or the credential expires.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use enigm_proxyauth::{ProxyVerifier, RevocationError, TargetAuthority, VerifiedRevocations};
use enigm_types::Clock;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::head::{self, HeadError};

/// The proxy's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyLimits {
    /// The longest request head read (request line and fields).
    pub max_head_bytes: usize,
    /// How long a client has to send its whole head.
    pub head_timeout: Duration,
    /// How long resolving and connecting to the target may take.
    pub connect_timeout: Duration,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Whether tunnels may reach loopback, private and other special addresses (see
    /// [`crate::destination`]). Off by default.
    pub allow_private_destinations: bool,
}

impl Default for ProxyLimits {
    fn default() -> Self {
        ProxyLimits {
            max_head_bytes: 8 * 1024,
            head_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            max_connections: 1024,
            allow_private_destinations: false,
        }
    }
}

/// The proxy: its verifier, clock, bounds and counts.
pub struct ProxyServer {
    verifier: Mutex<ProxyVerifier>,
    clock: Arc<dyn Clock>,
    limits: ProxyLimits,
    permits: Arc<Semaphore>,
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

impl ProxyServer {
    pub fn new(verifier: ProxyVerifier, clock: Arc<dyn Clock>, limits: ProxyLimits) -> Arc<Self> {
        Arc::new(ProxyServer {
            verifier: Mutex::new(verifier),
            clock,
            limits,
            permits: Arc::new(Semaphore::new(limits.max_connections)),
            counts: Mutex::new(BTreeMap::new()),
        })
    }

    /// Installs a revocation list newer than the one held.
    pub fn install_revocations(&self, list: VerifiedRevocations) -> Result<(), RevocationError> {
        self.verifier().install_revocations(list)
    }

    /// Connections so far by outcome category (`tunnel`, or the refusal's category).
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.counts
            .lock()
            .map(|counts| counts.clone())
            .unwrap_or_default()
    }

    /// Serves `listener` until `shutdown` completes; each connection runs in its own task.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => return Ok(()),
                accepted = listener.accept() => accepted,
            };
            let (stream, _peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors and the like: back off, keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let server = self.clone();
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    tokio::spawn(async move {
                        server.connection(stream).await;
                        drop(permit);
                    });
                }
                Err(_) => {
                    tokio::spawn(async move {
                        server.count("busy");
                        let mut stream = stream;
                        refuse(&mut stream, 503, "Service Unavailable", "busy").await;
                    });
                }
            }
        }
    }

    async fn connection(&self, mut client: TcpStream) {
        let outcome = self.admit(&mut client).await;
        let (mut upstream, leftover, remaining) = match outcome {
            Ok(admitted) => admitted,
            Err(refusal) => {
                self.count(refusal.category);
                refuse(
                    &mut client,
                    refusal.status,
                    refusal.reason,
                    refusal.category,
                )
                .await;
                return;
            }
        };
        if client
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await
            .is_err()
            || upstream.write_all(&leftover).await.is_err()
        {
            self.count("client-gone");
            return;
        }
        self.count("tunnel");
        // The tunnel lasts no longer than the credential that opened it.
        let _ = tokio::time::timeout(
            remaining,
            tokio::io::copy_bidirectional(&mut client, &mut upstream),
        )
        .await;
    }

    /// Reads and checks the head, and connects to the target: the upstream stream, the bytes
    /// the client sent after its head, and how long the credential has left.
    async fn admit(
        &self,
        client: &mut TcpStream,
    ) -> Result<(TcpStream, Vec<u8>, Duration), Refusal> {
        let (head_bytes, leftover) = tokio::time::timeout(
            self.limits.head_timeout,
            read_head(client, self.limits.max_head_bytes),
        )
        .await
        .map_err(|_| Refusal::new(408, "Request Timeout", "head-timeout"))??;
        let head = head::parse(&head_bytes).map_err(|error| match error {
            HeadError::Malformed => Refusal::new(400, "Bad Request", "malformed-head"),
            HeadError::RepeatedAuthorization => {
                Refusal::new(407, "Proxy Authentication Required", "malformed")
            }
        })?;
        if head.method != "CONNECT" {
            return Err(Refusal::new(405, "Method Not Allowed", "not-connect"));
        }
        let Some(authorization) = head.authorization else {
            return Err(Refusal::new(
                407,
                "Proxy Authentication Required",
                "missing-authorization",
            ));
        };
        let now = self.clock.now();
        let verified = self
            .verifier()
            .verify(authorization, head.target, now)
            .map_err(|error| {
                Refusal::new(407, "Proxy Authentication Required", error.category())
            })?;
        let remaining = verified.expires_at().duration_since(now);
        let upstream =
            tokio::time::timeout(self.limits.connect_timeout, self.connect(verified.target()))
                .await
                .map_err(|_| Refusal::new(504, "Gateway Timeout", "connect-timeout"))??;
        Ok((upstream, leftover, remaining))
    }

    /// Resolves the target and connects to its first permitted address.
    async fn connect(&self, target: &TargetAuthority) -> Result<TcpStream, Refusal> {
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((target.host(), target.port()))
            .await
            .map_err(|_| Refusal::new(502, "Bad Gateway", "unresolvable"))?
            .filter(|address| {
                self.limits.allow_private_destinations
                    || crate::destination::is_public(address.ip())
            })
            .collect();
        if addresses.is_empty() {
            return Err(Refusal::new(403, "Forbidden", "destination-refused"));
        }
        for address in addresses {
            if let Ok(stream) = TcpStream::connect(address).await {
                return Ok(stream);
            }
        }
        Err(Refusal::new(502, "Bad Gateway", "unreachable"))
    }

    /// The verifier. Its state stays consistent even if a holder panicked (every change is
    /// one insert or one replacement), so a poisoned lock is taken over, not given up.
    fn verifier(&self) -> std::sync::MutexGuard<'_, ProxyVerifier> {
        self.verifier
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn count(&self, category: &'static str) {
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry(category).or_default() += 1;
        }
        tracing::debug!(outcome = category, "proxy connection");
    }
}

/// A refused connection: the status line, and the category counted and sent as the body.
#[derive(Debug)]
struct Refusal {
    status: u16,
    reason: &'static str,
    category: &'static str,
}

impl Refusal {
    fn new(status: u16, reason: &'static str, category: &'static str) -> Self {
        Refusal {
            status,
            reason,
            category,
        }
    }
}

/// Reads up to and including the empty line that ends the head, at most `max` bytes; returns
/// the head and whatever the client sent after it.
async fn read_head(stream: &mut TcpStream, max: usize) -> Result<(Vec<u8>, Vec<u8>), Refusal> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let read = stream
            .read(&mut chunk)
            .await
            .map_err(|_| Refusal::new(400, "Bad Request", "client-gone"))?;
        if read == 0 {
            return Err(Refusal::new(400, "Bad Request", "client-gone"));
        }
        let searched_from = buffer.len().saturating_sub(3);
        buffer.extend_from_slice(chunk.get(..read).unwrap_or_default());
        if let Some(end) = buffer
            .get(searched_from..)
            .and_then(|tail| tail.windows(4).position(|window| window == b"\r\n\r\n"))
        {
            let end = searched_from + end + 4;
            if end > max {
                return Err(Refusal::new(
                    431,
                    "Request Header Fields Too Large",
                    "head-too-large",
                ));
            }
            let leftover = buffer.split_off(end);
            return Ok((buffer, leftover));
        }
        if buffer.len() > max {
            return Err(Refusal::new(
                431,
                "Request Header Fields Too Large",
                "head-too-large",
            ));
        }
    }
}

/// Answers a refusal and closes: the status, `Proxy-Authenticate` on 407, the category as the
/// body (what the client sent was wrong, so telling it which check failed reveals nothing it
/// does not hold).
async fn refuse(stream: &mut TcpStream, status: u16, reason: &str, category: &str) {
    let challenge = if status == 407 {
        "Proxy-Authenticate: Enigm\r\n"
    } else {
        ""
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\n{challenge}Connection: close\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{category}",
        category.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
