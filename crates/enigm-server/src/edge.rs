//! Command's edge: the accept loop, what a connection may hold (a slot under a global and a
//! per-address cap, a deadline for its request head), and the JSON answers for what is refused
//! before a request reaches the router.
//!
//! Why not `axum::serve`: it accepts without limit and has no header-read timeout, so slow
//! clients that never finish a request hold file descriptors until `accept` fails with EMFILE
//! for everybody (issue 18). Here every connection first takes a slot; when none is left the
//! client gets a 503 with the API's JSON error (or, past a small number of such answers in
//! flight, a close), and one address can never take every slot, so a flood from one address
//! leaves room for `/healthz` and everyone else.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt as _;

use crate::routes::RequestDeadline;

/// The largest request head (request line and headers) read, in bytes; a larger one is answered
/// 431. It also bounds what an idle connection's read buffer may grow to.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// File descriptors kept out of the connection budget: the database pool, key and data files,
/// the listener, logs, and the refusals in flight.
const RESERVED_FDS: u64 = 128;
/// The fewest connections Command accepts, even under a tiny file limit.
const MIN_CONNECTIONS: usize = 16;
/// The most connections a derived default allows (a file limit of millions does not mean the
/// memory for as many connections).
const MAX_DERIVED_CONNECTIONS: usize = 65_536;
/// Refusals (503 answers) in flight at once; past that a connection over the limit is closed
/// without an answer, so that refusing cannot itself exhaust file descriptors.
const MAX_REFUSALS_IN_FLIGHT: usize = 32;
/// How long a refusal may take to be written and the client's request drained.
const REFUSAL_TIME: Duration = Duration::from_secs(2);
/// How long the accept loop waits after `accept` fails (e.g. EMFILE) so that it does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// How long open connections get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Timeouts and caps of the edge, as `enigm up` configures them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeLimits {
    /// How long a client has to send a complete request head, from the moment the server
    /// starts waiting for one (also on an idle keep-alive connection, and for the TLS
    /// handshake); then the connection is closed.
    pub header_read_timeout: Duration,
    /// How long a request may take from its head to its answer (body read included); then it
    /// is answered 408 and the connection closed. The artifact upload is exempt.
    pub request_timeout: Duration,
    /// Connections served at once, in all.
    pub max_connections: usize,
    /// Connections served at once from one client address (IPv6: one /64).
    pub max_connections_per_ip: usize,
}

impl EdgeLimits {
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

    /// The caps derived from the process's file limit when not configured: every connection
    /// is a file descriptor, and [`RESERVED_FDS`] stay for everything else. One address gets
    /// half of them: the other half stays for everyone else, and one busy client (a NAT, `enigm
    /// simulate`'s 256 requests in flight under a 1,024 file limit) still fits.
    pub fn derived(max_connections: Option<usize>, max_per_ip: Option<usize>) -> EdgeLimits {
        let max_connections = max_connections.unwrap_or_else(|| {
            let budget = raise_file_limit().saturating_sub(RESERVED_FDS);
            usize::try_from(budget)
                .unwrap_or(MAX_DERIVED_CONNECTIONS)
                .clamp(MIN_CONNECTIONS, MAX_DERIVED_CONNECTIONS)
        });
        let max_connections_per_ip = max_per_ip.unwrap_or((max_connections / 2).max(1));
        EdgeLimits {
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            max_connections,
            max_connections_per_ip,
        }
    }
}

/// Raises the soft limit on open files to the hard limit (what a server is allowed to use) and
/// returns the soft limit in force.
fn raise_file_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if let (Some(current), Some(maximum)) = (limit.current, limit.maximum)
        && current < maximum
        && setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(maximum),
                maximum: Some(maximum),
            },
        )
        .is_ok()
    {
        return maximum;
    }
    // `None` is "unlimited".
    limit.current.unwrap_or(u64::MAX)
}

/// The slots: one global semaphore and a count per client address.
struct Admission {
    global: Arc<Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    max_per_ip: usize,
}

/// Why a connection got no slot.
#[derive(Debug, Clone, Copy)]
enum Full {
    Server,
    Address,
}

/// A connection's slot, given back when it is dropped.
struct Slot {
    _global: OwnedSemaphorePermit,
    key: IpAddr,
    admission: Arc<Admission>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut per_ip = self
            .admission
            .per_ip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = per_ip.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                per_ip.remove(&self.key);
            }
        }
    }
}

impl Admission {
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Full> {
        let key = address_key(ip);
        let mut per_ip = self
            .per_ip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = per_ip.entry(key).or_insert(0);
        if *count >= self.max_per_ip {
            return Err(Full::Address);
        }
        let permit = self
            .global
            .clone()
            .try_acquire_owned()
            .map_err(|_| Full::Server)?;
        *count += 1;
        drop(per_ip);
        Ok(Slot {
            _global: permit,
            key,
            admission: self.clone(),
        })
    }
}

/// The address a per-client cap counts against: the IPv4 address, or the /64 of an IPv6 one
/// (a single host usually holds a whole /64, so counting addresses would cap nothing).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(
                u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
            )),
        },
    }
}

/// Serves `app` on `listener` (through TLS when `tls` is given) until `shutdown` resolves, then
/// lets open connections finish for a while.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: EdgeLimits,
    shutdown: impl Future<Output = ()>,
) {
    let admission = Arc::new(Admission {
        global: Arc::new(Semaphore::new(limits.max_connections)),
        per_ip: Mutex::new(HashMap::new()),
        max_per_ip: limits.max_connections_per_ip,
    });
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    tracing::info!(
        max_connections = limits.max_connections,
        max_connections_per_ip = limits.max_connections_per_ip,
        header_read_timeout_s = limits.header_read_timeout.as_secs_f64(),
        request_timeout_s = limits.request_timeout.as_secs_f64(),
        "connection limits"
    );
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let slot = match admission.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(full) => {
                tracing::debug!(%peer, ?full, "connection refused: at the connection limit");
                if let Ok(permit) = refusals.clone().try_acquire_owned() {
                    tokio::spawn(refuse(
                        stream,
                        tls.clone(),
                        full,
                        limits.header_read_timeout,
                        permit,
                    ));
                }
                continue;
            }
        };
        let service = app
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
                    .extensions_mut()
                    .insert(RequestDeadline(limits.request_timeout));
                request
            });
        let service = TowerToHyperService::new(service);
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let served = match tls {
                None => {
                    let io = TokioIo::new(EdgeIo::new(stream));
                    watcher
                        .watch(builder.serve_connection(io, service).into_owned())
                        .await
                }
                Some(acceptor) => {
                    // The handshake is part of the head: it gets the same deadline.
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream))
                            .await
                    else {
                        return;
                    };
                    let io = TokioIo::new(EdgeIo::new(stream));
                    watcher
                        .watch(builder.serve_connection(io, service).into_owned())
                        .await
                }
            };
            if let Err(error) = served {
                tracing::debug!(%peer, error = %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period were dropped");
    }
}

/// Answers a connection that got no slot with a 503, reads (and discards) what the client
/// sends until it closes or the time is up, and closes. Draining first makes the close a
/// FIN rather than a reset that could destroy the answer before the client reads it.
async fn refuse(
    stream: tokio::net::TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    full: Full,
    handshake_timeout: Duration,
    _permit: OwnedSemaphorePermit,
) {
    let answer = match full {
        Full::Server => json_answer(
            503,
            "Service Unavailable",
            "unavailable",
            "the server is at its connection limit: try again later",
            true,
        ),
        Full::Address => json_answer(
            503,
            "Service Unavailable",
            "unavailable",
            "too many connections from your address: try again later",
            true,
        ),
    };
    match tls {
        None => {
            let _ = tokio::time::timeout(REFUSAL_TIME, write_and_drain(stream, &answer)).await;
        }
        Some(acceptor) => {
            let _ = tokio::time::timeout(REFUSAL_TIME.max(handshake_timeout), async {
                if let Ok(stream) = acceptor.accept(stream).await {
                    write_and_drain(stream, &answer).await;
                }
            })
            .await;
        }
    }
}

async fn write_and_drain<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, answer: &[u8]) {
    if stream.write_all(answer).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0_u8; 4096];
    while let Ok(read) = stream.read(&mut sink).await {
        if read == 0 {
            break;
        }
    }
}

/// A complete HTTP/1.1 answer with the API's JSON error body, closing the connection; `retry`
/// adds a one-second `retry-after`.
fn json_answer(status: u16, reason: &str, code: &str, message: &str, retry: bool) -> Vec<u8> {
    let body = serde_json::to_string(&enigm_api::ErrorBody {
        code: code.to_owned(),
        message: message.to_owned(),
    })
    .unwrap_or_else(|_| String::from("{}"));
    let retry_after = if retry { "retry-after: 1\r\n" } else { "" };
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         {retry_after}connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The JSON answer that replaces one of hyper's own bodiless answers to a request it could not
/// parse, or `None` when `written` is not one.
///
/// hyper answers a request head it cannot parse by itself (400, 414 URI too long, 431 head
/// larger than [`MAX_HEAD_BYTES`]) with an empty body, and then closes the connection; the
/// router never sees the request. Such an answer is recognisable: one of those statuses,
/// `content-length: 0`, and nothing after the head. Command's own 4xx answers always carry a
/// JSON body, so they never match.
fn replacement_for(written: &[u8]) -> Option<Vec<u8>> {
    let head = written.strip_suffix(b"\r\n\r\n")?;
    let head = std::str::from_utf8(head).ok()?;
    if head.contains("\r\n\r\n") {
        return None;
    }
    let mut lines = head.split("\r\n");
    let status = lines.next()?.strip_prefix("HTTP/1.1 ")?.get(..3)?;
    let mut empty = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        if name.eq_ignore_ascii_case("content-length") {
            empty = value.trim() == "0";
        }
    }
    if !empty {
        return None;
    }
    let answer = match status {
        "400" => json_answer(
            400,
            "Bad Request",
            "malformed_request",
            "the request is not valid HTTP",
            false,
        ),
        "414" => json_answer(
            414,
            "URI Too Long",
            "uri_too_long",
            "the request target is too long",
            false,
        ),
        "431" => json_answer(
            431,
            "Request Header Fields Too Large",
            "headers_too_large",
            &format!(
                "the request head is larger than {MAX_HEAD_BYTES} bytes or has too many headers"
            ),
            false,
        ),
        _ => return None,
    };
    Some(answer)
}

/// A connection's byte stream, which swaps hyper's bodiless parse-error answers for JSON ones
/// (see [`replacement_for`]) and closes gracefully. It reports no vectored writes, so hyper
/// hands it each answer head in one buffer.
///
/// Closing lingers: after its last answer the server half-closes and reads (and discards) what
/// the client still sends, for at most [`LINGER_TIME`] and [`LINGER_BYTES`]. Closing a socket
/// with unread input sends a reset, which can destroy the answer before the client reads it:
/// exactly the answers to oversized heads and bodies (431, 413), which are sent before the
/// request has been read in full.
struct EdgeIo<T> {
    inner: T,
    state: Closing,
}

enum Closing {
    Open,
    /// Writing the JSON answer that replaces hyper's, `written` bytes of it so far.
    Replacing {
        answer: Vec<u8>,
        written: usize,
    },
    /// Half-closed; discarding input until the deadline.
    Lingering {
        deadline: Pin<Box<tokio::time::Sleep>>,
        drained: usize,
    },
    Closed,
}

/// How long a closing connection reads what the client still sends.
const LINGER_TIME: Duration = Duration::from_secs(2);
/// How much a closing connection reads before it gives up.
const LINGER_BYTES: usize = 4 * 1024 * 1024;

impl<T> EdgeIo<T> {
    fn new(inner: T) -> Self {
        EdgeIo {
            inner,
            state: Closing::Open,
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> EdgeIo<T> {
    /// Drives the close: write side shut, then input drained until EOF, an error, the deadline
    /// or [`LINGER_BYTES`].
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match &mut self.state {
                Closing::Open | Closing::Replacing { .. } => {
                    ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
                    self.state = Closing::Lingering {
                        deadline: Box::pin(tokio::time::sleep(LINGER_TIME)),
                        drained: 0,
                    };
                }
                Closing::Lingering { deadline, drained } => {
                    if deadline.as_mut().poll(cx).is_ready() || *drained > LINGER_BYTES {
                        self.state = Closing::Closed;
                        continue;
                    }
                    let mut scratch = [0_u8; 8192];
                    let mut buf = ReadBuf::new(&mut scratch);
                    match ready!(Pin::new(&mut self.inner).poll_read(cx, &mut buf)) {
                        Ok(()) if !buf.filled().is_empty() => *drained += buf.filled().len(),
                        _ => self.state = Closing::Closed,
                    }
                }
                Closing::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for EdgeIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.state {
            Closing::Open => Pin::new(&mut this.inner).poll_read(cx, buf),
            // What a closing connection reads belongs to the linger, not to hyper.
            _ => Poll::Ready(Ok(())),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for EdgeIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Closing::Open = this.state {
            match replacement_for(buf) {
                Some(answer) => this.state = Closing::Replacing { answer, written: 0 },
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        if let Closing::Replacing { answer, written } = &mut this.state {
            while let Some(rest) = answer.get(*written..).filter(|rest| !rest.is_empty()) {
                let wrote = ready!(Pin::new(&mut this.inner).poll_write(cx, rest))?;
                if wrote == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                *written += wrote;
            }
            // hyper drops the connection right after this answer, without shutting it down:
            // the close (and its linger) happens here.
            ready!(this.poll_close(cx))?;
        }
        // hyper's answer counts as written: ours took its place, and nothing follows it.
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_bodiless_parse_errors_are_replaced_and_nothing_else() {
        let hyper_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 10:00:00 GMT\r\n\r\n";
        let answer = String::from_utf8(replacement_for(hyper_431).unwrap()).unwrap();
        assert!(answer.starts_with("HTTP/1.1 431 "));
        assert!(answer.contains("content-type: application/json\r\n"));
        assert!(answer.ends_with(r#""code":"headers_too_large","message":"the request head is larger than 65536 bytes or has too many headers"}"#));
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        assert!(replacement_for(ours).is_none());
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert!(replacement_for(ok).is_none());
        let not_modified = b"HTTP/1.1 304 Not Modified\r\netag: \"x\"\r\n\r\n";
        assert!(replacement_for(not_modified).is_none());
    }

    #[test]
    fn one_address_cannot_take_every_slot() {
        let admission = Arc::new(Admission {
            global: Arc::new(Semaphore::new(3)),
            per_ip: Mutex::new(HashMap::new()),
            max_per_ip: 2,
        });
        let attacker: IpAddr = "192.0.2.1".parse().unwrap();
        let first = admission.admit(attacker).unwrap();
        let _second = admission.admit(attacker).unwrap();
        assert!(matches!(admission.admit(attacker), Err(Full::Address)));
        let other = admission.admit("192.0.2.2".parse().unwrap()).unwrap();
        assert!(matches!(
            admission.admit("192.0.2.3".parse().unwrap()),
            Err(Full::Server)
        ));
        drop(first);
        drop(other);
        let _again = admission.admit(attacker).unwrap();
        // One IPv6 host's /64 counts as one address.
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2:1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_eq!(
            address_key("::ffff:192.0.2.1".parse().unwrap()),
            address_key(attacker)
        );
    }
}
