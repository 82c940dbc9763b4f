//! The reference Enigm Proxy (enigm-docs §10.1; issue 16, item 3): an HTTP CONNECT front that
//! opens a tunnel only for a connection whose `Proxy-Authorization` carries a credential Command
//! signed and a fresh proof by the credential's device key for exactly the requested target
//! (`enigm-proxyauth` does every check). Any failure is answered `407` and the connection
//! closed; there is no other way through.
//!
//! What it keeps: counts of accepted and refused connections by category. What it never logs or
//! keeps: destinations, device handles, credentials, addresses of clients, bytes carried.
//!
//! - `server`: the accept loop, bounded request heads and timeouts, the tunnel;
//! - `head`: the strict parse of a CONNECT request head;
//! - `destination`: which resolved addresses may be reached (not private, loopback, link-local
//!   or otherwise special unless `allow_private_destinations` says so);
//! - `command`: Command's public key and revocation list, polled over HTTP(S).

pub mod command;
pub mod destination;
mod head;
pub mod server;

pub use command::{CommandClient, CommandError, keep_revocations_current, parse_key, refresh};
pub use server::{ProxyLimits, ProxyServer};
