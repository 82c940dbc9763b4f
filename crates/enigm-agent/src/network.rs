//! `enigm agent --enforce-network`: the daemon enforces its group's network policy itself
//! (issue 16, item 2). At start and whenever the policy bundle in force changes it puts the
//! firewall generated from the bundle's network policy in force (`crate::firewall`) and hands
//! the policy to its encrypted-DNS stub (`crate::dns`), which runs as a task of the agent; each
//! cycle it measures both (`core::network`) for the Trust Security Center.
//!
//! Fail closed: the closed ruleset (Command and the DNS upstream only) goes in before the stub
//! answers; no bundle, a bundle that cannot be read, or a policy whose rules `nft` refuses
//! leaves that or the last good ruleset in force and the stub refusing what no policy allows.
//! The rules stay in the kernel when the agent stops, so a stopped agent means no resolver and
//! no way out, never open traffic.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use enigm_netpolicy::CompiledPolicy;
use enigm_netpolicy::firewall::{FirewallPlan, PLAIN_DNS_COUNTER, REFUSED_COUNTER, ruleset};
use enigm_trust::Signal;
use enigm_types::Timestamp;

use crate::core::network::{NetworkMeter, NetworkObservation, NetworkPolicyState};
use crate::dns::Upstream;

/// Where the device's traffic may go, and where its stub answers.
#[derive(Clone)]
pub struct NetworkSettings {
    /// Command (TCP): always open, or the device could never get a policy.
    pub command: SocketAddr,
    /// The encrypted-DNS stub (loopback).
    pub dns_listen: SocketAddr,
    pub dns_upstream: Upstream,
    /// The Enigm Proxy, opened when the policy routes through it.
    pub proxy: Option<SocketAddr>,
    /// Where apps reach the proxy through the agent (`crate::proxy_forward`, loopback); with
    /// it and `proxy`, the agent keeps a proxy credential renewed while the policy routes
    /// through the proxy.
    pub proxy_listen: Option<SocketAddr>,
    /// The Tor Gateway's entry (TCP), opened when the policy routes through it.
    pub tor_gateway: Option<SocketAddr>,
}

impl std::fmt::Debug for NetworkSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkSettings")
            .field("command", &self.command)
            .field("dns_listen", &self.dns_listen)
            .field("dns_upstream", &self.dns_upstream.address)
            .field("proxy", &self.proxy)
            .field("proxy_listen", &self.proxy_listen)
            .field("tor_gateway", &self.tor_gateway)
            .finish()
    }
}

/// What was last put in force: the bundle's bytes (a digest) and the VPN gateway the device
/// was assigned, to notice a change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Source {
    bundle: Bundle,
    vpn_gateway: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Bundle {
    None,
    Held([u8; 32]),
    Unreadable,
}

/// The daemon's enforcement: the stub task, the policy it answers under, and what is in force.
pub struct NetworkEnforcer {
    settings: NetworkSettings,
    state_dir: PathBuf,
    bundle: PathBuf,
    policy: tokio::sync::watch::Sender<Option<Arc<CompiledPolicy>>>,
    stub: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// The source last put in force; `None` until a ruleset was applied (or after one failed,
    /// so that the next cycle tries again).
    applied: Option<Source>,
    state: NetworkPolicyState,
    /// Whether the policy in force routes some flow through the Enigm Proxy (read by the
    /// renewing task).
    routes_through_proxy: Arc<AtomicBool>,
    /// The proxy forwarder's task and the task renewing its credential.
    proxy_tasks: Vec<tokio::task::JoinHandle<()>>,
    meter: NetworkMeter,
}

impl NetworkEnforcer {
    /// Puts the closed ruleset in force, starts the stub, then enforces the bundle held in
    /// `state_dir`. An error when the stub cannot listen or not even the closed ruleset can be
    /// applied: the agent then does not run rather than run unenforced.
    pub async fn start(
        settings: NetworkSettings,
        state_dir: &Path,
        client: &crate::http::DeviceClient,
        device_key: &enigm_crypto::Ed25519SigningKey,
    ) -> anyhow::Result<Self> {
        if !settings.dns_listen.ip().is_loopback() {
            anyhow::bail!("the DNS stub answers on loopback only: --dns-listen 127.0.0.53:53");
        }
        let closed = ruleset(None, &plan(&settings, None)).context("the closed ruleset")?;
        crate::firewall::apply(&closed).context("could not put the closed firewall in force")?;
        let socket = tokio::net::UdpSocket::bind(settings.dns_listen)
            .await
            .with_context(|| format!("the DNS stub could not listen on {}", settings.dns_listen))?;
        let (sender, receiver) = tokio::sync::watch::channel(None);
        let stub = tokio::spawn(crate::dns::serve(
            socket,
            receiver,
            settings.dns_upstream.clone(),
        ));
        let routes_through_proxy = Arc::new(AtomicBool::new(false));
        let mut proxy_tasks = Vec::new();
        if let (Some(proxy), Some(listen)) = (settings.proxy, settings.proxy_listen) {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("the proxy forwarder could not listen on {listen}"))?;
            let credentials = crate::proxy_forward::SharedCredentials::default();
            let serve = crate::proxy_forward::serve(
                listener,
                proxy,
                device_key.clone(),
                credentials.clone(),
            );
            proxy_tasks.push(tokio::spawn(async move {
                if let Err(error) = serve.await {
                    eprintln!("warning: {error:#}");
                }
            }));
            proxy_tasks.push(tokio::spawn(keep_proxy_credential(
                client.clone(),
                device_key.clone(),
                credentials,
                routes_through_proxy.clone(),
            )));
        }
        let mut enforcer = NetworkEnforcer {
            settings,
            state_dir: state_dir.to_owned(),
            bundle: crate::policy_bundles::held_bundle_path(state_dir),
            policy: sender,
            stub,
            applied: None,
            state: NetworkPolicyState::Missing,
            routes_through_proxy,
            proxy_tasks,
            meter: NetworkMeter::new(),
        };
        enforcer.enforce();
        Ok(enforcer)
    }

    /// Puts the held bundle's network policy in force if it changed since the last time (or
    /// the last attempt failed). Prints what changed; never fails: a fault is a state the
    /// signals report.
    pub fn enforce(&mut self) {
        let vpn_gateway = self.vpn_gateway();
        let bundle = match std::fs::read(&self.bundle) {
            Ok(bytes) => Bundle::Held(enigm_crypto::sha256(&bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Bundle::None,
            // Unreadable: the closed ruleset, and never recorded as applied, so that the next
            // cycle reads it again.
            Err(_) => Bundle::Unreadable,
        };
        let source = Source {
            bundle,
            vpn_gateway,
        };
        if self.applied.as_ref() == Some(&source) {
            return;
        }
        let (compiled, state, under) = match &source.bundle {
            Bundle::None => (None, NetworkPolicyState::Missing, "no policy bundle".into()),
            Bundle::Unreadable => {
                eprintln!(
                    "warning: the policy bundle `{}` cannot be read; failing closed",
                    self.bundle.display()
                );
                (
                    None,
                    NetworkPolicyState::Unusable,
                    "no readable bundle".into(),
                )
            }
            Bundle::Held(_) => match crate::policy_bundles::network_policy(&self.bundle) {
                Ok(Some((compiled, reference))) => (
                    Some(compiled),
                    NetworkPolicyState::InForce,
                    format!("{} v{}", reference.name, reference.version),
                ),
                Ok(None) => (
                    None,
                    NetworkPolicyState::Missing,
                    "no network policy".into(),
                ),
                Err(error) => {
                    eprintln!("warning: {error:#}; failing closed");
                    (
                        None,
                        NetworkPolicyState::Unusable,
                        "no readable bundle".into(),
                    )
                }
            },
        };
        let routes = compiled.as_ref().map(CompiledPolicy::routes_used);
        let routes_through_proxy = routes.is_some_and(|routes| routes.enigm_proxy);
        let applied = ruleset(routes, &plan(&self.settings, vpn_gateway))
            .map_err(anyhow::Error::from)
            .and_then(|text| crate::firewall::apply(&text));
        match applied {
            Ok(()) => {
                // The stub answers under the new policy only once its rules are in force.
                self.policy.send_replace(compiled.map(Arc::new));
                self.state = state;
                self.routes_through_proxy
                    .store(routes_through_proxy, Ordering::Relaxed);
                self.applied = (source.bundle != Bundle::Unreadable).then_some(source);
                println!("network: enforcing {}; default drop", clean(&under));
            }
            Err(error) => {
                eprintln!(
                    "warning: the firewall for {} was not put in force ({error:#}); the rules in \
                     force before stay",
                    clean(&under)
                );
                self.state = NetworkPolicyState::Unusable;
                self.applied = None;
            }
        }
    }

    /// The VPN gateway the device was assigned (`enigm agent-vpn`), when its endpoint is an
    /// address: the firewall never resolves a name.
    fn vpn_gateway(&self) -> Option<SocketAddr> {
        let record = crate::state::StateDir::open(&self.state_dir)
            .ok()?
            .vpn()
            .ok()??;
        record.endpoint?.parse().ok()
    }

    /// This cycle's measurements of the firewall, the stub and the policy.
    pub fn signals(&mut self, now: Timestamp) -> Vec<Signal> {
        let observed = NetworkObservation {
            policy: self.state,
            rules_in_force: crate::firewall::in_force().ok(),
            resolver_running: !self.stub.is_finished(),
            plain_dns_attempts: crate::firewall::counter(PLAIN_DNS_COUNTER).ok(),
            refused_flows: crate::firewall::counter(REFUSED_COUNTER).ok(),
        };
        self.meter.signals(&observed, now)
    }
}

impl Drop for NetworkEnforcer {
    fn drop(&mut self) {
        // The rules stay in force: with the stub gone, names do not resolve at all.
        self.stub.abort();
        for task in &self.proxy_tasks {
            task.abort();
        }
    }
}

/// How often the renewing task asks whether the credential is due: well under the third of
/// its lifetime (at least minutes) left when it becomes due, and independent of the check-in
/// interval, which a bundle may set to an hour.
const PROXY_RENEWAL_CHECK: std::time::Duration = std::time::Duration::from_secs(30);

/// Renews the forwarder's credential when due while the policy in force routes through the
/// proxy (Command issues one only to a trusted device with a fresh accepted attestation). A
/// failure keeps the credential held until it expires; apps then get 503 from the forwarder,
/// never a direct path.
async fn keep_proxy_credential(
    client: crate::http::DeviceClient,
    device_key: enigm_crypto::Ed25519SigningKey,
    credentials: crate::proxy_forward::SharedCredentials,
    routes_through_proxy: Arc<AtomicBool>,
) {
    loop {
        if routes_through_proxy.load(Ordering::Relaxed) {
            let now = crate::report::system_now();
            match crate::proxy_forward::renew_shared(&client, &device_key, &credentials, now).await
            {
                Ok(true) => println!("proxy: credential renewed"),
                Ok(false) => {}
                Err(error) => eprintln!("warning: the proxy credential was not renewed: {error}"),
            }
        }
        tokio::time::sleep(PROXY_RENEWAL_CHECK).await;
    }
}

fn plan(settings: &NetworkSettings, vpn_gateway: Option<SocketAddr>) -> FirewallPlan {
    FirewallPlan {
        command: settings.command,
        dns_stub: Some(settings.dns_listen),
        dns_upstreams: vec![settings.dns_upstream.address],
        enigm_proxy: settings.proxy,
        vpn_gateway,
        vpn_interface: vpn_gateway.map(|_| crate::vpn::VPN_INTERFACE.to_owned()),
        tor_gateway: settings.tor_gateway,
    }
}

/// `text` without control characters (a policy's name comes from an administrator).
fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}
