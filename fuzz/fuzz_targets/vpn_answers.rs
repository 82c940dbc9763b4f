//! Fuzzes what the agent makes of Command's VPN answer (`enigm-netpolicy::vpn`): the input is
//! the answer's JSON (`VpnAssignmentView`) or, past its first `0xff` byte, three raw lines (the
//! tunnel address, the gateway's key, the endpoint), and a gateway's tunnel network.
//!
//! Properties: nothing panics; a configuration is written only from checked parts, and then it
//! has exactly the directives the agent writes, one per line, with nothing smuggled in (a line
//! break in a part, another directive, a second section); a tunnel network that parses gives
//! addresses inside its own bounds that `check_address` accepts.

#![no_main]

use enigm_api::vpn::VpnAssignmentView;
use enigm_netpolicy::vpn::{TunnelNetwork, check_address, device_config_from_answer};
use libfuzzer_sys::fuzz_target;

const PRIVATE: &str = "oK56DE9Ue9zK76rAc8pBl6opph+1v36lm7cXXsQKrQM=";

fn check(address: &str, key: &str, endpoint: &str) {
    let Ok(config) = device_config_from_answer(address, key, endpoint, PRIVATE) else {
        return;
    };
    let expected = [
        "[Interface]",
        "PrivateKey = ",
        "Address = ",
        "",
        "[Peer]",
        "PublicKey = ",
        "Endpoint = ",
        "AllowedIPs = ",
        "PersistentKeepalive = ",
    ];
    let lines: Vec<&str> = config.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{config:?}");
    for (line, start) in lines.iter().zip(expected) {
        assert!(line.starts_with(start), "{config:?}");
        assert!(!line.contains('\r'), "{config:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    match data.iter().position(|&b| b == 0xff) {
        None => {
            if let Ok(answer) = serde_json::from_slice::<VpnAssignmentView>(data)
                && let Some(peer) = &answer.assignment
            {
                check(&peer.address, &peer.gateway_tunnel_key, &peer.endpoint);
            }
        }
        Some(at) => {
            let text = String::from_utf8_lossy(&data[..at]);
            let mut parts = text.splitn(3, '\u{1f}');
            let address = parts.next().unwrap_or_default();
            let key = parts.next().unwrap_or_default();
            let endpoint = parts.next().unwrap_or_default();
            check(address, key, endpoint);
            let network = String::from_utf8_lossy(&data[at + 1..]);
            if let Ok(pool) = TunnelNetwork::parse(&network) {
                let count = pool.device_addresses();
                for slot in [0, 1, count / 2, count.saturating_sub(1)] {
                    if slot < count {
                        let address = pool.device_address(slot).expect("slot in range");
                        assert!(check_address(&address).is_ok(), "{address}");
                    }
                }
                assert!(pool.device_address(count).is_err());
            }
        }
    }
});
