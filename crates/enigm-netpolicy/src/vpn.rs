//! The VPN control plane's decisions, pure (issue 16 item 4; enigm-docs §10.2, §20 H.58–H.59):
//! which gateway of a location takes a new session, from aggregate load only; whether a
//! location switch is newer than the one in force; and the WireGuard configuration of an
//! assignment, which never holds a private key unless the device itself adds its own.
//!
//! Command's store applies the same capacity rule atomically when it takes a slot (see
//! `enigm-store`'s `vpn` module); this module chooses among the gateways it read.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::matchers::Cidr;

/// A gateway stops taking new sessions when its own reported load reaches this share of what it
/// can carry, even with free slots: the aggregate pressure signal of §10.2.
pub const LOAD_LIMIT_PERCENT: u8 = 90;

/// What Command knows of one gateway when it assigns: aggregate figures only (how many sessions
/// it holds, how loaded it says it is), never which devices or what traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayLoad<'a> {
    pub id: &'a str,
    pub healthy: bool,
    /// The most sessions the gateway may hold.
    pub capacity: u32,
    /// Sessions assigned to it now.
    pub assigned: u32,
    /// The gateway's own report of its load, in percent; none reported counts as idle.
    pub load_percent: Option<u8>,
}

impl GatewayLoad<'_> {
    /// Whether a new session may be assigned here: healthy, a free slot, and load under
    /// [`LOAD_LIMIT_PERCENT`]. Sessions already here are kept whatever this says.
    pub fn accepts_new_sessions(&self) -> bool {
        self.healthy
            && self.assigned < self.capacity
            && self.load_percent.unwrap_or(0) < LOAD_LIMIT_PERCENT
    }
}

/// The gateway that takes a new session: of those accepting new sessions, the one with the
/// smallest share of its capacity in use, then the smallest reported load, then the smallest id
/// (so that the choice is deterministic). `None` when no gateway accepts one.
pub fn choose_gateway<'a>(gateways: &[GatewayLoad<'a>]) -> Option<&'a str> {
    gateways
        .iter()
        .filter(|gateway| gateway.accepts_new_sessions())
        .min_by(|a, b| {
            // assigned/capacity compared without division: a.assigned * b.capacity.
            let a_share = u64::from(a.assigned) * u64::from(b.capacity);
            let b_share = u64::from(b.assigned) * u64::from(a.capacity);
            a_share
                .cmp(&b_share)
                .then(
                    a.load_percent
                        .unwrap_or(0)
                        .cmp(&b.load_percent.unwrap_or(0)),
                )
                .then(a.id.cmp(b.id))
        })
        .map(|gateway| gateway.id)
}

/// Whether a switch numbered `requested` may replace the one in force (`current`): only a
/// strictly newer one. A stale or repeated request never overrides a newer choice.
pub fn supersedes(current: Option<u64>, requested: u64) -> bool {
    current.is_none_or(|current| requested > current)
}

/// How often a switch is retried when the gateway it chose filled up meanwhile, while it is
/// still the newest request of its device.
pub const MAX_SWITCH_ATTEMPTS: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VpnConfigError {
    #[error("a WireGuard public key is 32 bytes in standard base64 (44 characters)")]
    BadPublicKey,
    #[error("a tunnel network is an IPv4 CIDR from /8 to /30 or an IPv6 CIDR from /64 to /126")]
    BadTunnelNetwork,
    #[error("the tunnel network has no host address number {0}")]
    NoSuchAddress(u32),
    #[error("a gateway endpoint is host:port with a port and no spaces or brackets mismatched")]
    BadEndpoint,
    #[error("a tunnel address is an IP address and a prefix length")]
    BadAddress,
}

/// A WireGuard public key as text: checked to be 32 bytes of standard base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireGuardPublicKey(String);

impl WireGuardPublicKey {
    pub fn parse(text: &str) -> Result<Self, VpnConfigError> {
        if base64_len_32(text) {
            Ok(WireGuardPublicKey(text.to_owned()))
        } else {
            Err(VpnConfigError::BadPublicKey)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Standard base64 of 32 bytes: 43 symbols and one `=`, and the last symbol carrying no bits
/// past the 256th (so that one key has one spelling).
fn base64_len_32(text: &str) -> bool {
    const SYMBOLS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let Some((&last_symbol, body)) = bytes.get(..43).and_then(|head| head.split_last()) else {
        return false;
    };
    bytes.len() == 44
        && bytes.get(43) == Some(&b'=')
        && body.iter().all(|b| SYMBOLS.contains(b))
        && SYMBOLS
            .iter()
            .position(|&symbol| symbol == last_symbol)
            .is_some_and(|value| value & 0b11 == 0)
}

/// A gateway's pool of tunnel addresses: host number `n` (from 1) is the network's address plus
/// `n`; the gateway itself takes host 1, devices take hosts from 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelNetwork {
    cidr: Cidr,
    prefix: u8,
}

impl TunnelNetwork {
    pub fn parse(text: &str) -> Result<Self, VpnConfigError> {
        let cidr = Cidr::parse(text).map_err(|_| VpnConfigError::BadTunnelNetwork)?;
        let prefix = text
            .rsplit_once('/')
            .and_then(|(_, prefix)| prefix.parse::<u8>().ok())
            .ok_or(VpnConfigError::BadTunnelNetwork)?;
        let usable = match cidr {
            Cidr::V4(..) => (8..=30).contains(&prefix),
            Cidr::V6(..) => (64..=126).contains(&prefix),
        };
        if usable {
            Ok(TunnelNetwork { cidr, prefix })
        } else {
            Err(VpnConfigError::BadTunnelNetwork)
        }
    }

    /// How many devices the pool can address (all hosts but the network, the gateway and, for
    /// IPv4, the broadcast address), capped at `u32::MAX`.
    pub fn device_addresses(&self) -> u32 {
        let (hosts, reserved) = match self.cidr {
            Cidr::V4(first, last) => (u128::from(last - first) + 1, 3),
            Cidr::V6(first, last) => ((last - first).saturating_add(1), 2),
        };
        u32::try_from(hosts.saturating_sub(reserved)).unwrap_or(u32::MAX)
    }

    /// The address of device slot `slot` (from 0), with the pool's prefix length.
    pub fn device_address(&self, slot: u32) -> Result<String, VpnConfigError> {
        self.device_host(slot)
            .map(|address| format!("{address}/{}", self.prefix))
    }

    /// The address of device slot `slot` (from 0).
    pub fn device_host(&self, slot: u32) -> Result<IpAddr, VpnConfigError> {
        if slot >= self.device_addresses() {
            return Err(VpnConfigError::NoSuchAddress(slot));
        }
        let address = match self.cidr {
            Cidr::V4(first, _) => first
                .checked_add(slot)
                .and_then(|a| a.checked_add(2))
                .map(|a| IpAddr::V4(a.into())),
            Cidr::V6(first, _) => first
                .checked_add(u128::from(slot) + 2)
                .map(|a| IpAddr::V6(a.into())),
        };
        address.ok_or(VpnConfigError::NoSuchAddress(slot))
    }
}

/// A tunnel address with its prefix length (`10.64.0.2/24`, `fd00::2/120`): what a device
/// writes into its configuration, so nothing else (no line break, no other directive) passes.
pub fn check_address(text: &str) -> Result<(), VpnConfigError> {
    let (address, prefix) = text.split_once('/').ok_or(VpnConfigError::BadAddress)?;
    let address: IpAddr = address.parse().map_err(|_| VpnConfigError::BadAddress)?;
    let longest = if address.is_ipv4() { 32 } else { 128 };
    match prefix.parse::<u8>() {
        // One spelling: no leading zero, no sign.
        Ok(length) if length <= longest && length.to_string() == prefix => Ok(()),
        _ => Err(VpnConfigError::BadAddress),
    }
}

/// `host:port` (a name, an IPv4 address or a bracketed IPv6 address, and a port).
pub fn check_endpoint(text: &str) -> Result<(), VpnConfigError> {
    let (host, port) = text.rsplit_once(':').ok_or(VpnConfigError::BadEndpoint)?;
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|inner| inner.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        (1..=253).contains(&host.len())
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
    };
    match port.parse::<u16>() {
        Ok(port) if port != 0 && host_ok => Ok(()),
        _ => Err(VpnConfigError::BadEndpoint),
    }
}

/// What a device needs to reach its assigned gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireGuardPeerConfig<'a> {
    /// The device's tunnel address with the pool's prefix (`10.64.0.2/16`).
    pub address: &'a str,
    pub gateway_public_key: &'a WireGuardPublicKey,
    pub gateway_endpoint: &'a str,
}

/// The device's `wg-quick` configuration for an assignment. Command renders it without a
/// private key (it never has one); the device renders it again with its own key, so both
/// spell everything else the same way. All traffic goes through the tunnel (no split tunnel:
/// the network policy, not the VPN, decides what may leave).
pub fn device_config(config: &WireGuardPeerConfig<'_>, private_key: Option<&str>) -> String {
    let mut text = String::from("[Interface]\n");
    if let Some(key) = private_key {
        let _ = writeln!(text, "PrivateKey = {key}");
    }
    let _ = writeln!(text, "Address = {}", config.address);
    text.push_str("\n[Peer]\n");
    let _ = writeln!(text, "PublicKey = {}", config.gateway_public_key.as_str());
    let _ = writeln!(text, "Endpoint = {}", config.gateway_endpoint);
    text.push_str("AllowedIPs = 0.0.0.0/0, ::/0\n");
    text.push_str("PersistentKeepalive = 25\n");
    text
}

/// The device's configuration from the parts of Command's answer, each checked first (`wg-quick`
/// runs some directives, so a line break smuggled into an answer must never reach the file): the
/// tunnel address, the gateway's key and endpoint, and the device's own private key.
pub fn device_config_from_answer(
    address: &str,
    gateway_key: &str,
    endpoint: &str,
    private_key: &str,
) -> Result<String, VpnConfigError> {
    check_address(address)?;
    check_endpoint(endpoint)?;
    let gateway_public_key = WireGuardPublicKey::parse(gateway_key)?;
    Ok(device_config(
        &WireGuardPeerConfig {
            address,
            gateway_public_key: &gateway_public_key,
            gateway_endpoint: endpoint,
        },
        Some(private_key),
    ))
}

/// The `[Peer]` sections of a gateway's WireGuard configuration: each device session's public
/// key, allowed only its own tunnel address (a device cannot speak for another's address).
pub fn gateway_peers_config(peers: &[(WireGuardPublicKey, IpAddr)]) -> String {
    let mut text = String::new();
    for (key, address) in peers {
        let host = if address.is_ipv4() { 32 } else { 128 };
        let _ = writeln!(text, "[Peer]");
        let _ = writeln!(text, "PublicKey = {}", key.as_str());
        let _ = writeln!(text, "AllowedIPs = {address}/{host}");
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn gateway(id: &str, capacity: u32, assigned: u32) -> GatewayLoad<'_> {
        GatewayLoad {
            id,
            healthy: true,
            capacity,
            assigned,
            load_percent: None,
        }
    }

    #[test]
    fn a_full_unhealthy_or_loaded_gateway_takes_no_new_session() {
        assert!(gateway("a", 2, 1).accepts_new_sessions());
        assert!(!gateway("a", 2, 2).accepts_new_sessions());
        assert!(!gateway("a", 0, 0).accepts_new_sessions());
        let unhealthy = GatewayLoad {
            healthy: false,
            ..gateway("a", 2, 0)
        };
        assert!(!unhealthy.accepts_new_sessions());
        let loaded = GatewayLoad {
            load_percent: Some(LOAD_LIMIT_PERCENT),
            ..gateway("a", 2, 0)
        };
        assert!(!loaded.accepts_new_sessions());
        let busy = GatewayLoad {
            load_percent: Some(LOAD_LIMIT_PERCENT - 1),
            ..gateway("a", 2, 0)
        };
        assert!(busy.accepts_new_sessions());
    }

    #[test]
    fn the_least_used_share_wins_then_the_id() {
        // 5/10 is more used than 1/4? No: 0.5 > 0.25, so b wins.
        assert_eq!(
            choose_gateway(&[gateway("a", 10, 5), gateway("b", 4, 1)]),
            Some("b")
        );
        assert_eq!(
            choose_gateway(&[gateway("b", 4, 1), gateway("a", 8, 2)]),
            Some("a")
        );
        assert_eq!(choose_gateway(&[gateway("a", 1, 1)]), None);
        assert_eq!(choose_gateway(&[]), None);
    }

    #[test]
    fn only_a_newer_switch_supersedes() {
        assert!(supersedes(None, 0));
        assert!(supersedes(Some(3), 4));
        assert!(!supersedes(Some(4), 4));
        assert!(!supersedes(Some(5), 4));
    }

    #[test]
    fn public_keys_are_32_bytes_of_base64() {
        let good = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
        assert_eq!(
            WireGuardPublicKey::parse(good).map(|k| k.0),
            Ok(good.into())
        );
        for bad in [
            "",
            "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg",
            "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dh=",
            "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8D!=",
            "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg==",
        ] {
            assert_eq!(
                WireGuardPublicKey::parse(bad),
                Err(VpnConfigError::BadPublicKey)
            );
        }
    }

    #[test]
    fn tunnel_addresses_skip_the_network_gateway_and_broadcast() {
        let pool = TunnelNetwork::parse("10.64.0.0/30").expect("pool");
        assert_eq!(pool.device_addresses(), 1);
        assert_eq!(pool.device_address(0).as_deref(), Ok("10.64.0.2/30"));
        assert_eq!(
            pool.device_address(1),
            Err(VpnConfigError::NoSuchAddress(1))
        );
        let pool = TunnelNetwork::parse("fd00:64::/120").expect("pool");
        assert_eq!(pool.device_addresses(), 254);
        assert_eq!(pool.device_address(253).as_deref(), Ok("fd00:64::ff/120"));
        for bad in [
            "10.64.0.1/16",
            "10.0.0.0/31",
            "10.0.0.0/7",
            "fd00::/63",
            "nope",
        ] {
            assert!(TunnelNetwork::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_gateway_allows_each_peer_only_its_own_address() {
        let key =
            WireGuardPublicKey::parse("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=").expect("key");
        let pool = TunnelNetwork::parse("fd00:64::/120").expect("pool");
        let peers = [
            (key.clone(), "10.64.0.2".parse().expect("v4")),
            (key, pool.device_host(0).expect("host")),
        ];
        let config = gateway_peers_config(&peers);
        assert_eq!(config.matches("[Peer]").count(), 2);
        assert!(config.contains("AllowedIPs = 10.64.0.2/32\n"), "{config}");
        assert!(config.contains("AllowedIPs = fd00:64::2/128\n"), "{config}");
        assert_eq!(gateway_peers_config(&[]), "");
    }

    #[test]
    fn endpoints_are_host_and_port() {
        for good in [
            "vpn.example:51820",
            "192.0.2.1:51820",
            "[2001:db8::1]:51820",
        ] {
            assert_eq!(check_endpoint(good), Ok(()), "{good}");
        }
        for bad in [
            "vpn.example",
            "vpn.example:0",
            "a b:1",
            "[::1:1",
            ":51820",
            "x:65536",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_are_an_address_and_a_prefix_only() {
        for good in ["10.64.0.2/24", "fd00:64::2/120", "0.0.0.0/0"] {
            assert_eq!(check_address(good), Ok(()), "{good}");
        }
        for bad in [
            "10.64.0.2",
            "10.64.0.2/33",
            "10.64.0.2/24\nPostUp = sh",
            "10.64.0.2/024",
            "fd00::2/129",
            "x/24",
        ] {
            assert_eq!(check_address(bad), Err(VpnConfigError::BadAddress), "{bad}");
        }
    }

    #[test]
    fn command_renders_no_private_key_and_the_device_adds_its_own() {
        let key =
            WireGuardPublicKey::parse("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=").expect("key");
        let config = WireGuardPeerConfig {
            address: "10.64.0.2/16",
            gateway_public_key: &key,
            gateway_endpoint: "vpn.example:51820",
        };
        let command = device_config(&config, None);
        assert!(!command.contains("PrivateKey"));
        assert!(command.contains("AllowedIPs = 0.0.0.0/0, ::/0"));
        let device = device_config(&config, Some("device-secret"));
        assert_eq!(
            device.replace("PrivateKey = device-secret\n", ""),
            command,
            "the device adds its key and changes nothing else"
        );
    }

    proptest! {
        /// Whatever the loads, the chosen gateway accepts new sessions and none accepting one
        /// is less used.
        #[test]
        fn the_choice_is_a_least_used_accepting_gateway(
            loads in proptest::collection::vec((0u32..20, 0u32..20, any::<bool>(), proptest::option::of(0u8..=100)), 0..8)
        ) {
            let ids: Vec<String> = (0..loads.len()).map(|i| format!("g{i}")).collect();
            let gateways: Vec<GatewayLoad<'_>> = loads
                .iter()
                .zip(&ids)
                .map(|(&(capacity, assigned, healthy, load_percent), id)| GatewayLoad {
                    id, healthy, capacity, assigned, load_percent,
                })
                .collect();
            match choose_gateway(&gateways) {
                None => prop_assert!(gateways.iter().all(|g| !g.accepts_new_sessions())),
                Some(chosen) => {
                    let chosen = gateways.iter().find(|g| g.id == chosen).expect("chosen");
                    prop_assert!(chosen.accepts_new_sessions());
                    for other in gateways.iter().filter(|g| g.accepts_new_sessions()) {
                        prop_assert!(
                            u64::from(chosen.assigned) * u64::from(other.capacity)
                                <= u64::from(other.assigned) * u64::from(chosen.capacity)
                        );
                    }
                }
            }
        }
    }
}
