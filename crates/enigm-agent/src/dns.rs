//! The device's encrypted-DNS stub (issue 16, item 2; enigm-docs §20 H.63): it answers the
//! device's DNS queries on a loopback address, refuses the names its network policy blocks
//! (`CompiledPolicy::refuses_name`), and forwards the rest to an upstream over DNS over TLS
//! (RFC 7858), checking the upstream's certificate and name. Together with the firewall, which
//! drops plain DNS anywhere else, names leave the device only encrypted.
//!
//! Fails closed: no usable policy refuses every name; a query that does not parse is answered
//! FORMERR; an upstream that cannot be reached, or whose answer does not match the question,
//! gives SERVFAIL, never an answer from anywhere else. No query name is logged or kept.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use enigm_netpolicy::CompiledPolicy;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable as _, BinEncodable as _};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};

/// How long an upstream exchange may take before the query gets SERVFAIL.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);
/// The largest UDP query read (EDNS payloads are rarely larger).
const MAX_QUERY: usize = 4096;
/// Queries handled at once; more wait.
const CONCURRENT_QUERIES: usize = 64;

/// An upstream resolver speaking DNS over TLS.
#[derive(Clone)]
pub struct Upstream {
    pub address: SocketAddr,
    pub server_name: ServerName<'static>,
    pub tls: Arc<rustls::ClientConfig>,
}

impl Upstream {
    /// An upstream whose certificate must chain to one of the PEM certificates in `ca_pem`
    /// (or, without one, to the Web PKI roots) and name `server_name`.
    pub fn new(
        address: SocketAddr,
        server_name: &str,
        ca_pem: Option<&[u8]>,
    ) -> anyhow::Result<Upstream> {
        let mut roots = rustls::RootCertStore::empty();
        match ca_pem {
            Some(mut pem) => {
                for certificate in rustls_pemfile::certs(&mut pem) {
                    roots
                        .add(certificate.context("the upstream CA file is not PEM")?)
                        .context("the upstream CA file holds an unusable certificate")?;
                }
                if roots.is_empty() {
                    anyhow::bail!("the upstream CA file holds no certificate");
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("no TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Upstream {
            address,
            server_name: ServerName::try_from(server_name.to_owned())
                .context("the upstream's name is not a DNS name or address")?,
            tls: Arc::new(tls),
        })
    }
}

/// What the stub does with one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Answered with this response code, without asking anyone.
    Answer(ResponseCode),
    /// Asked of the upstream.
    Forward,
}

/// Decides a query: FORMERR for one that does not parse or is not one standard question,
/// REFUSED for a name the policy blocks (every name without a policy), else forward.
pub fn decide(policy: Option<&CompiledPolicy>, query: &Message) -> Verdict {
    let [question] = query.queries() else {
        return Verdict::Answer(ResponseCode::FormErr);
    };
    if query.message_type() != MessageType::Query || query.op_code() != OpCode::Query {
        return Verdict::Answer(ResponseCode::NotImp);
    }
    let Some(policy) = policy else {
        return Verdict::Answer(ResponseCode::Refused);
    };
    let name = question.name().to_ascii();
    match policy.refuses_name(&name) {
        Some(_) => Verdict::Answer(ResponseCode::Refused),
        None => Verdict::Forward,
    }
}

/// The answer to `query` with `code` and no records.
fn reply(query: &Message, code: ResponseCode) -> Option<Vec<u8>> {
    let mut answer = Message::error_msg(query.id(), query.op_code(), code);
    answer.add_queries(query.queries().iter().cloned());
    answer.set_recursion_desired(query.recursion_desired());
    answer.set_recursion_available(true);
    answer.to_bytes().ok()
}

/// The answer to one datagram, if it deserves one (a datagram too short for a header gets none).
pub async fn answer(
    policy: Option<&CompiledPolicy>,
    upstream: &Upstream,
    datagram: &[u8],
) -> Option<Vec<u8>> {
    let query = match Message::from_bytes(datagram) {
        Ok(query) => query,
        Err(_) => {
            // FORMERR with the query's id, when it has one.
            let id = u16::from_be_bytes([*datagram.first()?, *datagram.get(1)?]);
            return Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
                .to_bytes()
                .ok();
        }
    };
    match decide(policy, &query) {
        Verdict::Answer(code) => reply(&query, code),
        Verdict::Forward => match forward(upstream, &query, datagram).await {
            Ok(answer) => Some(answer),
            Err(_) => reply(&query, ResponseCode::ServFail),
        },
    }
}

/// Asks the upstream over TLS (RFC 7858: two-byte length, then the message) and checks that
/// the answer is a response to this query's id and question.
async fn forward(upstream: &Upstream, query: &Message, bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let exchange = async {
        let tcp = TcpStream::connect(upstream.address).await?;
        let mut tls = tokio_rustls::TlsConnector::from(upstream.tls.clone())
            .connect(upstream.server_name.clone(), tcp)
            .await?;
        let length = u16::try_from(bytes.len()).context("query too long")?;
        tls.write_all(&length.to_be_bytes()).await?;
        tls.write_all(bytes).await?;
        tls.flush().await?;
        let mut length = [0u8; 2];
        tls.read_exact(&mut length).await?;
        let mut answer = vec![0u8; usize::from(u16::from_be_bytes(length))];
        tls.read_exact(&mut answer).await?;
        anyhow::Ok(answer)
    };
    let answer = tokio::time::timeout(UPSTREAM_TIMEOUT, exchange)
        .await
        .context("the upstream did not answer in time")??;
    let parsed = Message::from_bytes(&answer).context("the upstream's answer does not parse")?;
    if parsed.id() != query.id()
        || parsed.message_type() != MessageType::Response
        || parsed.queries() != query.queries()
    {
        anyhow::bail!("the upstream answered another question");
    }
    Ok(answer)
}

/// The network policy the stub answers under, swapped in place when a new bundle is in force
/// (`None`: no usable policy, every name refused).
pub type LivePolicy = tokio::sync::watch::Receiver<Option<Arc<CompiledPolicy>>>;

/// A policy that never changes, for `enigm agent-dns`.
pub fn fixed_policy(policy: Option<CompiledPolicy>) -> LivePolicy {
    let (sender, receiver) = tokio::sync::watch::channel(policy.map(Arc::new));
    // The last value stays readable once the sender is gone.
    drop(sender);
    receiver
}

/// Serves queries on `socket` until the task is dropped, each under the policy in force when
/// it arrives.
pub async fn serve(
    socket: UdpSocket,
    policy: LivePolicy,
    upstream: Upstream,
) -> anyhow::Result<()> {
    let socket = Arc::new(socket);
    let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_QUERIES));
    let mut buffer = vec![0u8; MAX_QUERY];
    loop {
        let (read, peer) = socket
            .recv_from(&mut buffer)
            .await
            .context("the DNS socket failed")?;
        let Some(datagram) = buffer.get(..read).map(<[u8]>::to_vec) else {
            continue;
        };
        let permit = permits.clone().acquire_owned().await?;
        let current = policy.borrow().clone();
        let (socket, upstream) = (socket.clone(), upstream.clone());
        tokio::spawn(async move {
            if let Some(answer) = answer(current.as_deref(), &upstream, &datagram).await {
                let _ = socket.send_to(&answer, peer).await;
            }
            drop(permit);
        });
    }
}
