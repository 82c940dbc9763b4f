//! The device's side of the Enigm Proxy: renewing its credential at Command when due, and an
//! HTTP CONNECT to the proxy carrying the credential and a fresh proof. There is no fallback:
//! when the proxy refuses or cannot be reached, or no valid credential is held, the caller gets
//! the error and nothing goes out directly.

use std::net::SocketAddr;
use std::time::Duration;

use enigm_crypto::Ed25519SigningKey;
use enigm_device::NONCE_LEN;
use enigm_proxyauth::TargetAuthority;
use enigm_types::Timestamp;
use rand::RngCore as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::core::proxy::ProxyCredentials;
use crate::core::{Exchange, ExchangeError};
use crate::http::DeviceClient;

/// Asks Command for a new credential when `holder` says one is due (none held, or two thirds
/// of its lifetime gone); `Ok(true)` when one was issued. On a failure the held credential
/// stays until it expires, after which `ProxyCredentials::authorization` fails closed.
pub async fn renew_if_due(
    client: &DeviceClient,
    key: &Ed25519SigningKey,
    holder: &mut ProxyCredentials,
    now: Timestamp,
) -> Result<bool, ExchangeError> {
    if !holder.renewal_due(now) {
        return Ok(false);
    }
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let request = ProxyCredentials::request(key, client.path_prefix(), now, &nonce);
    let answer = client
        .send(&request)
        .await
        .map_err(|error| ExchangeError::Unreachable {
            context: Exchange::ProxyCredential.context(),
            detail: error.to_string(),
        })?;
    holder.handle_response(key, answer.status, &answer.body, now)?;
    Ok(true)
}

/// The longest answer head read from the proxy.
const MAX_ANSWER_HEAD: usize = 4096;

/// Why no tunnel was opened.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error("the proxy could not be reached: {0}")]
    Unreachable(#[source] std::io::Error),
    #[error("the proxy did not answer in time")]
    Timeout,
    #[error("the proxy's answer is not HTTP")]
    BadAnswer,
    /// The proxy refused, with its status and the refusal's category.
    #[error("the proxy refused the connection ({status}: {category})")]
    Refused { status: u16, category: String },
}

impl TunnelError {
    /// The proxy's status when it refused.
    pub fn status(&self) -> Option<u16> {
        match self {
            TunnelError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The refusal's category as the proxy named it.
    pub fn category(&self) -> Option<&str> {
        match self {
            TunnelError::Refused { category, .. } => Some(category),
            _ => None,
        }
    }
}

/// Opens a tunnel to `target` through the proxy at `proxy`, presenting `authorization` (from
/// `core::proxy::ProxyCredentials::authorization`, fresh for this connection).
pub async fn open_tunnel(
    proxy: SocketAddr,
    authorization: &str,
    target: &TargetAuthority,
    deadline: Duration,
) -> Result<TcpStream, TunnelError> {
    tokio::time::timeout(deadline, connect(proxy, authorization, target))
        .await
        .map_err(|_| TunnelError::Timeout)?
}

async fn connect(
    proxy: SocketAddr,
    authorization: &str,
    target: &TargetAuthority,
) -> Result<TcpStream, TunnelError> {
    let mut stream = TcpStream::connect(proxy)
        .await
        .map_err(TunnelError::Unreachable)?;
    let request = format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: {authorization}\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(TunnelError::Unreachable)?;
    // Read byte by byte up to the end of the head: nothing of the tunnel is consumed.
    let mut head = Vec::with_capacity(128);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_ANSWER_HEAD {
            return Err(TunnelError::BadAnswer);
        }
        let byte = stream.read_u8().await.map_err(|_| TunnelError::BadAnswer)?;
        head.push(byte);
    }
    let text = std::str::from_utf8(&head).map_err(|_| TunnelError::BadAnswer)?;
    let status: u16 = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or(TunnelError::BadAnswer)?;
    if status == 200 {
        return Ok(stream);
    }
    let length = text
        .split("\r\n")
        .find_map(|line| {
            line.split_once(':')
                .filter(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        })
        .unwrap_or(0)
        .min(256);
    let mut body = vec![0u8; length];
    let _ = stream.read_exact(&mut body).await;
    let category: String = String::from_utf8_lossy(&body)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    Err(TunnelError::Refused { status, category })
}
