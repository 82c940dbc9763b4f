//! The target a connection asks for: an HTTP CONNECT authority `host:port`, in one canonical
//! spelling (lower case; IPv6 in brackets), so that what the device signed and what the proxy
//! received compare byte for byte.

use std::fmt;
use std::net::Ipv6Addr;

/// The longest authority accepted: a 253-byte DNS name, `:` and a 5-digit port.
pub const MAX_TARGET_LEN: usize = 253 + 1 + 5;

/// Why a CONNECT target is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the target is longer than {MAX_TARGET_LEN} bytes")]
    TooLong,
    #[error("the target has no port")]
    MissingPort,
    #[error("the target's port is not a number from 1 to 65535")]
    BadPort,
    #[error("the target's host is not a DNS name or an IP address")]
    BadHost,
}

/// A `host:port` authority in its canonical spelling.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetAuthority {
    text: String,
    host_len: usize,
    port: u16,
}

impl TargetAuthority {
    /// Parses `host:port` (a DNS name, an IPv4 address, or a bracketed IPv6 address) and
    /// lower-cases it. Nothing else (no user info, no path, no percent-encoding) is accepted.
    pub fn parse(text: &str) -> Result<Self, TargetError> {
        if text.len() > MAX_TARGET_LEN + 2 {
            return Err(TargetError::TooLong);
        }
        let (host, port) = text.rsplit_once(':').ok_or(TargetError::MissingPort)?;
        if port.is_empty()
            || port.len() > 5
            || !port.bytes().all(|byte| byte.is_ascii_digit())
            || (port.len() > 1 && port.starts_with('0'))
        {
            return Err(TargetError::BadPort);
        }
        let port: u16 = port.parse().map_err(|_| TargetError::BadPort)?;
        if port == 0 {
            return Err(TargetError::BadPort);
        }
        let host = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            let address: Ipv6Addr = inner.parse().map_err(|_| TargetError::BadHost)?;
            format!("[{address}]")
        } else {
            if !is_dns_name(host) {
                return Err(TargetError::BadHost);
            }
            host.to_ascii_lowercase()
        };
        let host_len = host.len();
        let text = format!("{host}:{port}");
        if text.len() > MAX_TARGET_LEN {
            return Err(TargetError::TooLong);
        }
        Ok(TargetAuthority {
            text,
            host_len,
            port,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The host as a socket address library takes it (IPv6 without brackets).
    pub fn host(&self) -> &str {
        let host = self.text.get(..self.host_len).unwrap_or_default();
        host.strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .unwrap_or(host)
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for TargetAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A DNS name or dotted IPv4 address: labels of 1–63 letters, digits and hyphens (not at either
/// end), at most 253 bytes.
fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        })
}
