//! Decisions per second of the network policy engine against a blocklist of 1,000,000 domain
//! names and 100,000 CIDRs (generated deterministically here), behind which a routing layer
//! sends apps to the Enigm Proxy, a VPN or the Tor Gateway.
//!
//! Each iteration decides a batch of 4,096 flows (`Throughput::Elements(4096)`) on one thread,
//! so criterion's `elem/s` is decisions per second per core. The target (issue 16) is at least
//! 10,000,000 decisions/s per core and at most 16 bytes per blocked domain; the table size is
//! printed once.
//!
//! `decide_bytes_*` decides the same flows over the policy's byte form
//! ([`CompiledPolicy::from_bytes`]), whose tables are read in place.
//!
//! The batch's names are drawn uniformly, so nearly every flow has its own name and table
//! slots. Real traffic is skewed: a few destinations take most flows. `decide_zipf_*` decides a
//! batch drawn from the same kind of names (100,000 of them, half under a blocked name) with
//! Zipf-distributed popularity (exponent 1: the k-th most popular name is picked in proportion
//! to 1/k), so the popular names' table slots stay in cache, as they do on a device.
//!
//! Run: `cargo bench -p enigm-netpolicy --bench decide` (`-- --quick` for a short run).

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a benchmark whose set-up fails must stop loudly; it handles no untrusted input"
)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use enigm_netpolicy::{
    Action, BlockAction, Blocklist, CompiledPolicy, DeviceContext, DeviceState, Flow, Layer, Match,
    PolicyDocument, RouteSpec, Rule, TrustState,
};

const DOMAINS: usize = 1_000_000;
const CIDRS: usize = 100_000;
const BATCH: usize = 4096;
const TLDS: [&str; 6] = ["com", "net", "org", "de", "io", "co.uk"];
const APPS: [&str; 4] = ["browser", "chat", "mail", "news"];
/// Distinct destinations of the skewed workload.
const ZIPF_NAMES: usize = 100_000;

/// splitmix64: a fixed, seedable sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).expect("fits")
    }
}

/// Picks ranks 0..n with probability proportional to 1/(rank + 1), by binary search of the
/// cumulative weights.
struct Zipf(Vec<f64>);

impl Zipf {
    fn new(n: usize) -> Zipf {
        let mut total = 0.0;
        Zipf(
            (1..=n)
                .map(|k| {
                    total += 1.0 / k as f64;
                    total
                })
                .collect(),
        )
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let total = *self.0.last().expect("not empty");
        let x = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
        self.0.partition_point(|&c| c <= x).min(self.0.len() - 1)
    }
}

/// A plausible registrable name: 6 to 14 letters and digits under a common suffix.
fn domain(rng: &mut Rng) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let len = 6 + rng.below(9);
    let label: String = (0..len)
        .map(|_| char::from(ALPHABET[rng.below(ALPHABET.len())]))
        .collect();
    format!("{label}.{}", TLDS[rng.below(TLDS.len())])
}

fn policy(blocked: Vec<String>, cidrs: Vec<String>) -> PolicyDocument {
    let rule = |id: &str, matches: Match, action: Action| Rule {
        id: id.to_owned(),
        matches,
        action,
        reopenable_by: Vec::new(),
    };
    let apps = |app: &str| Match {
        apps: Some(vec![app.to_owned()]),
        ..Match::default()
    };
    PolicyDocument {
        version: 1,
        allow_direct: false,
        trusted_networks: vec!["office".to_owned()],
        blocklists: BTreeMap::from([(
            "threats".to_owned(),
            Blocklist {
                domains: blocked,
                cidrs,
            },
        )]),
        layers: vec![
            Layer {
                id: "threat-intel".to_owned(),
                rules: vec![rule(
                    "block-threats",
                    Match {
                        blocklist: Some("threats".to_owned()),
                        ..Match::default()
                    },
                    Action::Block(BlockAction {
                        reason: "malware".to_owned(),
                    }),
                )],
            },
            Layer {
                id: "routing".to_owned(),
                rules: vec![
                    rule(
                        "chat-vpn",
                        apps("chat"),
                        Action::Route(RouteSpec::Vpn("ch".to_owned())),
                    ),
                    rule(
                        "news-tor",
                        apps("news"),
                        Action::Route(RouteSpec::TorGateway),
                    ),
                    rule(
                        "proxy-all",
                        Match::default(),
                        Action::Route(RouteSpec::EnigmProxy),
                    ),
                ],
            },
        ],
    }
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng(16);
    let blocked: Vec<String> = (0..DOMAINS).map(|_| domain(&mut rng)).collect();
    let cidrs: Vec<String> = (0..CIDRS)
        .map(|_| {
            let a = u32::try_from(rng.next() >> 40).expect("24 bits") << 8;
            format!("{}/24", Ipv4Addr::from(a))
        })
        .collect();

    // Flows: half to a subdomain of a blocked name, half to other names; a third also carry an
    // address (which may fall in a blocked /24).
    let names: Vec<String> = (0..BATCH)
        .map(|i| {
            if i % 2 == 0 {
                format!("www.{}", blocked[rng.below(DOMAINS)])
            } else {
                format!("cdn.{}", domain(&mut rng))
            }
        })
        .collect();
    let ips: Vec<Option<IpAddr>> = (0..BATCH)
        .map(|i| {
            (i % 3 == 0).then(|| {
                IpAddr::V4(Ipv4Addr::from(
                    u32::try_from(rng.next() >> 32).expect("32 bits"),
                ))
            })
        })
        .collect();

    // The skewed workload: names drawn by popularity from a pool made like the above.
    let pool: Vec<String> = (0..ZIPF_NAMES)
        .map(|i| {
            if i % 2 == 0 {
                format!("www.{}", blocked[rng.below(DOMAINS)])
            } else {
                format!("cdn.{}", domain(&mut rng))
            }
        })
        .collect();
    let zipf = Zipf::new(ZIPF_NAMES);
    // Each flow's name a copy of its own, as it would be in a packet or a DNS query (not a
    // pointer into the pool, which would measure cache misses on the pool's strings).
    let zipf_names: Vec<String> = (0..BATCH)
        .map(|_| pool[zipf.sample(&mut rng)].clone())
        .collect();
    let distinct = zipf_names
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();

    let started = Instant::now();
    let compiled = CompiledPolicy::compile(&policy(blocked, cidrs)).expect("valid policy");
    let (domain_bytes, cidr_bytes) = compiled.blocklist_bytes();
    println!(
        "compiled 1,000,000 domains and 100,000 CIDRs in {:?}: domain table {} bytes ({:.1} bytes per domain), CIDR intervals {} bytes",
        started.elapsed(),
        domain_bytes,
        domain_bytes as f64 / DOMAINS as f64,
        cidr_bytes
    );

    let flows: Vec<Flow<'_>> = (0..BATCH)
        .map(|i| Flow {
            app: Some(APPS[i % APPS.len()]),
            category: None,
            domain: Some(&names[i]),
            ip: ips[i],
            network: Some(if i % 5 == 0 { "office" } else { "cafe" }),
        })
        .collect();

    let zipf_flows: Vec<Flow<'_>> = (0..BATCH)
        .map(|i| Flow {
            domain: Some(&zipf_names[i]),
            ..flows[i]
        })
        .collect();
    let device = DeviceContext {
        trust_state: Some(TrustState::Protected),
        lifecycle: Some(DeviceState::Trusted),
    };
    let blocked_count = flows
        .iter()
        .filter(|f| compiled.decide(&device, f).route.is_block())
        .count();
    println!("{blocked_count} of {BATCH} flows blocked");
    let zipf_blocked = zipf_flows
        .iter()
        .filter(|f| compiled.decide(&device, f).route.is_block())
        .count();

    let mut group = c.benchmark_group("netpolicy");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("decide_1m_domains_100k_cidrs", |b| {
        b.iter(|| {
            for flow in &flows {
                black_box(compiled.decide(black_box(&device), black_box(flow)));
            }
        });
    });
    // The same policy decided over its byte form, the tables read in place.
    let bytes = compiled.to_bytes();
    let started = Instant::now();
    let mapped = CompiledPolicy::from_bytes(bytes.clone()).expect("its own bytes decode");
    println!(
        "byte form: {} bytes, checked and decoded in {:?}",
        bytes.len(),
        started.elapsed()
    );
    group.bench_function("decide_bytes_1m_domains_100k_cidrs", |b| {
        b.iter(|| {
            for flow in &flows {
                black_box(mapped.decide(black_box(&device), black_box(flow)));
            }
        });
    });
    group.bench_function("explain_1m_domains_100k_cidrs", |b| {
        b.iter(|| {
            for flow in &flows {
                black_box(compiled.explain(black_box(&device), black_box(flow)));
            }
        });
    });
    println!(
        "skewed workload: {distinct} distinct names in {BATCH} flows, {zipf_blocked} flows blocked"
    );
    group.bench_function("decide_zipf_1m_domains_100k_cidrs", |b| {
        b.iter(|| {
            for flow in &zipf_flows {
                black_box(compiled.decide(black_box(&device), black_box(flow)));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
