//! Fuzzes the device's DNS stub's decision on a datagram (`enigm_agent::dns::decide` over
//! hickory's parser), under a fixed policy blocking `evil.example` and its subdomains.
//!
//! Properties: nothing panics; a query is forwarded only when it is one standard question whose
//! name the policy does not refuse; a question under `evil.example` is never forwarded; without
//! a policy nothing is forwarded.

#![no_main]

use std::sync::LazyLock;

use enigm_agent::dns::{Verdict, decide};
use enigm_netpolicy::CompiledPolicy;
use hickory_proto::op::Message;
use hickory_proto::serialize::binary::BinDecodable as _;
use libfuzzer_sys::fuzz_target;

static POLICY: LazyLock<CompiledPolicy> = LazyLock::new(|| {
    CompiledPolicy::from_json(
        br#"{"version": 1,
             "blocklists": {"threats": {"domains": ["evil.example"]}},
             "layers": [{"id": "threats", "rules": [
                 {"id": "block", "match": {"blocklist": "threats"},
                  "action": {"block": {"reason": "malware"}}}]}]}"#,
    )
    .expect("policy")
});

fuzz_target!(|data: &[u8]| {
    let Ok(query) = Message::from_bytes(data) else {
        return;
    };
    assert_ne!(decide(None, &query), Verdict::Forward);
    if decide(Some(&POLICY), &query) == Verdict::Forward {
        assert_eq!(query.queries().len(), 1);
        let name = query.queries()[0].name().to_ascii().to_ascii_lowercase();
        let name = name.trim_end_matches('.');
        assert!(
            name != "evil.example" && !name.ends_with(".evil.example"),
            "{name} forwarded"
        );
    }
});
