//! The device's firewall, generated from its network policy (issue 16, item 2): an nftables
//! ruleset whose output chain drops everything by default and lets out only the ways the policy
//! and the device's configuration name. Pure: the ruleset is text the agent hands to `nft -f`.
//!
//! What may leave, in this order:
//! 1. the local encrypted-DNS stub, if there is one (loopback, port 53);
//! 2. nothing else on port 53 (UDP or TCP), anywhere: plain DNS is dropped and counted in the
//!    counter [`PLAIN_DNS_COUNTER`], which the agent reads as a measured signal;
//! 3. loopback, and replies of connections already allowed;
//! 4. Command (enrollment, check-in, attestation, renewals: the control-plane exception of
//!    enigm-docs §10.1), and the stub's encrypted-DNS upstreams;
//! 5. the Enigm Proxy, only when some rule of the policy routes through it; the VPN gateway and
//!    the tunnel interface, only when some rule routes through a VPN;
//! 6. everything else is counted in [`REFUSED_COUNTER`] and dropped (the chain's policy).
//!
//! No policy means none of (5): the device reaches Command and nothing else. Routes to the Tor
//! Gateway and `direct` are not opened here: they have no address the firewall can name (a
//! `direct` flow is allowed by domain or app, which an address filter cannot see), so they stay
//! closed rather than open too much.

use std::fmt::Write as _;
use std::net::SocketAddr;

/// The nftables table the agent owns (family `inet`: IPv4 and IPv6 in one).
pub const TABLE: &str = "enigm";
/// Counts plain DNS attempts (port 53 anywhere but the local stub).
pub const PLAIN_DNS_COUNTER: &str = "plain-dns";
/// Counts every other packet the policy does not let out.
pub const REFUSED_COUNTER: &str = "refused";

/// Which kinds of route a policy's rules take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoutesUsed {
    pub enigm_proxy: bool,
    pub vpn: bool,
    pub tor_gateway: bool,
    pub direct: bool,
}

/// Where the ways out lead, from the device's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallPlan {
    /// Command's address (TCP): always open, or the device could never get a policy.
    pub command: SocketAddr,
    /// The local encrypted-DNS stub (UDP and TCP on loopback), if the device runs one.
    pub dns_stub: Option<SocketAddr>,
    /// The stub's encrypted-DNS upstreams (TCP: DNS over TLS or HTTPS).
    pub dns_upstreams: Vec<SocketAddr>,
    /// The Enigm Proxy (TCP).
    pub enigm_proxy: Option<SocketAddr>,
    /// The assigned VPN gateway (UDP, WireGuard).
    pub vpn_gateway: Option<SocketAddr>,
    /// The VPN tunnel's interface: traffic into it is the gateway's to filter.
    pub vpn_interface: Option<String>,
    /// The Tor Gateway's entry (TCP, e.g. a gateway host's SOCKS port).
    pub tor_gateway: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FirewallError {
    #[error("the encrypted-DNS stub must listen on a loopback address")]
    StubNotLoopback,
    #[error("an interface name is 1 to 15 of ASCII letters, digits, `-`, `_`, `.`")]
    BadInterface,
    #[error("a destination on port 53 would let plain DNS out")]
    PortFiftyThree,
}

fn daddr(address: &SocketAddr) -> String {
    match address {
        SocketAddr::V4(v4) => format!("ip daddr {}", v4.ip()),
        SocketAddr::V6(v6) => format!("ip6 daddr {}", v6.ip()),
    }
}

/// The ruleset for `policy_routes` (none: no usable policy) and `plan`, replacing the table
/// atomically when applied as one `nft -f` transaction.
pub fn ruleset(
    policy_routes: Option<RoutesUsed>,
    plan: &FirewallPlan,
) -> Result<String, FirewallError> {
    if plan.dns_stub.is_some_and(|stub| !stub.ip().is_loopback()) {
        return Err(FirewallError::StubNotLoopback);
    }
    let opened = [
        Some(plan.command),
        plan.enigm_proxy,
        plan.vpn_gateway,
        plan.tor_gateway,
    ]
    .into_iter()
    .flatten()
    .chain(plan.dns_upstreams.iter().copied());
    for address in opened {
        if address.port() == 53 {
            return Err(FirewallError::PortFiftyThree);
        }
    }
    if let Some(interface) = &plan.vpn_interface {
        let valid = (1..=15).contains(&interface.len())
            && interface
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid {
            return Err(FirewallError::BadInterface);
        }
    }
    let routes = policy_routes.unwrap_or_default();
    let mut rules: Vec<String> = Vec::new();
    if let Some(stub) = plan.dns_stub {
        for protocol in ["udp", "tcp"] {
            rules.push(format!(
                "oifname \"lo\" {} {protocol} dport {} accept comment \"encrypted-dns stub\"",
                daddr(&stub),
                stub.port()
            ));
        }
    }
    for protocol in ["udp", "tcp"] {
        rules.push(format!(
            "{protocol} dport 53 counter name \"{PLAIN_DNS_COUNTER}\" drop comment \"plain dns\""
        ));
    }
    rules.push("oifname \"lo\" accept".to_owned());
    rules.push("ct state established,related accept".to_owned());
    rules.push(format!(
        "{} tcp dport {} accept comment \"command\"",
        daddr(&plan.command),
        plan.command.port()
    ));
    for upstream in &plan.dns_upstreams {
        rules.push(format!(
            "{} tcp dport {} accept comment \"encrypted-dns upstream\"",
            daddr(upstream),
            upstream.port()
        ));
    }
    if routes.enigm_proxy
        && let Some(proxy) = plan.enigm_proxy
    {
        rules.push(format!(
            "{} tcp dport {} accept comment \"enigm-proxy\"",
            daddr(&proxy),
            proxy.port()
        ));
    }
    if routes.vpn {
        if let Some(gateway) = plan.vpn_gateway {
            rules.push(format!(
                "{} udp dport {} accept comment \"vpn gateway\"",
                daddr(&gateway),
                gateway.port()
            ));
        }
        if let Some(interface) = &plan.vpn_interface {
            rules.push(format!(
                "oifname \"{interface}\" accept comment \"vpn tunnel\""
            ));
        }
    }
    if routes.tor_gateway
        && let Some(gateway) = plan.tor_gateway
    {
        rules.push(format!(
            "{} tcp dport {} accept comment \"tor gateway\"",
            daddr(&gateway),
            gateway.port()
        ));
    }
    // `direct` stays closed here: a firewall cannot tell the flows a policy lets go direct
    // (by app, name or category) from the rest, so opening any address would open it to all.
    rules.push(format!("counter name \"{REFUSED_COUNTER}\" drop"));
    let mut text = String::new();
    // Declaring, deleting and declaring again replaces the table in one transaction, whether or
    // not it existed: there is never a moment without rules.
    let _ = writeln!(text, "table inet {TABLE} {{}}");
    let _ = writeln!(text, "delete table inet {TABLE}");
    let _ = writeln!(text, "table inet {TABLE} {{");
    let _ = writeln!(text, "    counter {PLAIN_DNS_COUNTER} {{}}");
    let _ = writeln!(text, "    counter {REFUSED_COUNTER} {{}}");
    let _ = writeln!(text, "    chain output {{");
    let _ = writeln!(
        text,
        "        type filter hook output priority filter; policy drop;"
    );
    for rule in &rules {
        let _ = writeln!(text, "        {rule}");
    }
    let _ = writeln!(text, "    }}");
    let _ = writeln!(text, "}}");
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> FirewallPlan {
        FirewallPlan {
            command: "10.0.0.2:8443".parse().expect("addr"),
            dns_stub: Some("127.0.0.53:53".parse().expect("addr")),
            dns_upstreams: vec!["[2001:db8::53]:853".parse().expect("addr")],
            enigm_proxy: Some("10.0.0.3:9000".parse().expect("addr")),
            vpn_gateway: Some("10.0.0.4:51820".parse().expect("addr")),
            vpn_interface: Some("enigm0".to_owned()),
            tor_gateway: Some("10.0.0.5:9050".parse().expect("addr")),
        }
    }

    const ALL: RoutesUsed = RoutesUsed {
        enigm_proxy: true,
        vpn: true,
        tor_gateway: true,
        direct: true,
    };

    #[test]
    fn default_drop_with_only_the_named_ways_out() {
        let text = ruleset(Some(ALL), &plan()).expect("ruleset");
        assert!(text.contains("policy drop;"));
        for line in [
            "oifname \"lo\" ip daddr 127.0.0.53 udp dport 53 accept",
            "udp dport 53 counter name \"plain-dns\" drop",
            "tcp dport 53 counter name \"plain-dns\" drop",
            "ip daddr 10.0.0.2 tcp dport 8443 accept",
            "ip6 daddr 2001:db8::53 tcp dport 853 accept",
            "ip daddr 10.0.0.3 tcp dport 9000 accept",
            "ip daddr 10.0.0.4 udp dport 51820 accept",
            "oifname \"enigm0\" accept",
            "ip daddr 10.0.0.5 tcp dport 9050 accept",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        // The stub comes before the plain-DNS drop, which comes before loopback in general.
        let at = |needle: &str| text.find(needle).expect(needle);
        assert!(at("127.0.0.53") < at("plain dns"));
        assert!(at("plain dns") < at("oifname \"lo\" accept"));
        assert!(text.trim_end().ends_with('}'));
        assert!(text.contains("counter name \"refused\" drop"));
    }

    #[test]
    fn no_policy_opens_only_command_and_dns() {
        for routes in [None, Some(RoutesUsed::default())] {
            let text = ruleset(routes, &plan()).expect("ruleset");
            assert!(text.contains("comment \"command\""));
            assert!(!text.contains("9000"), "{text}");
            assert!(!text.contains("51820"), "{text}");
            assert!(!text.contains("enigm0"), "{text}");
            assert!(!text.contains("9050"), "{text}");
        }
        let vpn_only = RoutesUsed {
            vpn: true,
            ..RoutesUsed::default()
        };
        let text = ruleset(Some(vpn_only), &plan()).expect("ruleset");
        assert!(text.contains("51820") && !text.contains("9000"), "{text}");
    }

    #[test]
    fn the_stub_refuses_names_blocked_whatever_asks() {
        let policy = crate::CompiledPolicy::from_json(
            serde_json::json!({
                "version": 1,
                "blocklists": {"threats": {"domains": ["evil.example"]}},
                "layers": [
                    {"id": "threats", "rules": [
                        {"id": "block-threats", "match": {"blocklist": "threats"},
                         "action": {"block": {"reason": "malware"}}},
                        {"id": "block-ads", "match": {"domains": ["ads.example"]},
                         "action": {"block": {"reason": "ads"}}},
                        {"id": "chat-only", "match": {"apps": ["chat"], "domains": ["game.example"]},
                         "action": {"block": {"reason": "policy"}}}
                    ]},
                    {"id": "routing", "rules": [
                        {"id": "proxy", "match": {"apps": ["browser"]}, "action": {"route": "enigm-proxy"}}
                    ]}
                ]
            })
            .to_string()
            .as_bytes(),
        )
        .expect("policy");
        assert_eq!(
            policy.refuses_name("cdn.evil.example"),
            Some("block-threats")
        );
        assert_eq!(policy.refuses_name("ads.example."), Some("block-ads"));
        assert_eq!(
            policy.refuses_name("game.example"),
            None,
            "only for one app"
        );
        assert_eq!(policy.refuses_name("news.example.org"), None);
        assert_eq!(
            policy.refuses_name("bad..name"),
            Some(crate::FAIL_CLOSED_RULE)
        );
    }

    #[test]
    fn nothing_opens_plain_dns_or_a_stub_off_loopback() {
        let mut stub = plan();
        stub.dns_stub = Some("10.0.0.53:53".parse().expect("addr"));
        assert_eq!(
            ruleset(Some(ALL), &stub),
            Err(FirewallError::StubNotLoopback)
        );
        let mut upstream = plan();
        upstream.dns_upstreams = vec!["9.9.9.9:53".parse().expect("addr")];
        assert_eq!(
            ruleset(Some(ALL), &upstream),
            Err(FirewallError::PortFiftyThree)
        );
        for bad in ["", "a\"b", "a b", "sixteen-chars-xx"] {
            let mut interface = plan();
            interface.vpn_interface = Some(bad.to_owned());
            assert_eq!(
                ruleset(Some(ALL), &interface),
                Err(FirewallError::BadInterface),
                "{bad}"
            );
        }
    }
}
