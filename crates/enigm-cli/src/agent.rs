//! The CLI's wiring of the device agent (`crates/enigm-agent`): the arguments of `enigm agent`,
//! `enigm tsc` and `enigm agent-report`, turned into the agent crate's configuration. The
//! agent's logic lives in `enigm_agent::core`, its shell in `enigm_agent::shell`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use enigm_agent::profile::Profile;
use enigm_agent::shell::ShellConfig;

use crate::cli::GlobalArgs;
use crate::client::ServerUrl;
use crate::output;

#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// Directory of the agent's device key, enrollment and last evaluation (created with mode
    /// 0700; refused when others can read it).
    #[arg(long, value_name = "DIR")]
    state_dir: PathBuf,
    /// File whose content is the enrollment token; needed only for the first run. The token is
    /// never taken as an argument.
    #[arg(long, value_name = "FILE")]
    enrollment_token_file: Option<PathBuf>,
    /// Device profile (TOML) declaring the signals of a simulated device; without it, the real
    /// collectors measure this host. Its `[hardware]` identifiers are never transmitted.
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
    /// Run one cycle (enroll when needed, then one check-in) and exit.
    #[arg(long)]
    once: bool,
    /// Seconds between check-ins in daemon mode, until a policy bundle of the device's group
    /// sets the interval (half its trust policy's maximum signal age, 10 s to 1 h).
    #[arg(long, value_name = "SECONDS", default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=86_400))]
    interval: u64,
    /// Consent to managed-device mode, recorded at enrollment.
    #[arg(long)]
    managed_opt_in: bool,
    /// Consent to remote wipe, recorded at enrollment.
    #[arg(long)]
    wipe_opt_in: bool,
    /// INSECURE, for demos and tests: attest with Android-format chains minted under the
    /// development root in DIR (`enigm attest dev-root`, or the one `enigm up
    /// --insecure-dev-attestation-root DIR` created), for a simulated hardware key kept in the
    /// state directory. Command accepts them only when it trusts that root.
    #[arg(long, value_name = "DIR")]
    insecure_dev_attestation_root: Option<PathBuf>,
    /// Seconds between attestations (with a development root); the first comes with enrollment.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600,
        value_parser = clap::value_parser!(u64).range(1..=86_400))]
    attest_every: u64,
    /// The OTA repository's root metadata this device is provisioned with (`enigm ota keys
    /// init` writes it). With it, each cycle also looks for an OS image to install in the A/B
    /// slots under the state directory.
    #[arg(long, value_name = "FILE")]
    ota_trusted_root: Option<PathBuf>,
    /// The device's hardware model, matched against a release's compatible models.
    #[arg(long, default_value = "enigm-sim")]
    model: String,
    /// The release channel the device follows.
    #[arg(long, default_value = "stable")]
    channel: String,
    #[command(flatten)]
    network: NetworkArgs,
}

/// How `enigm agent` enforces its group's network policy (Linux, as root).
#[derive(Debug, Args)]
struct NetworkArgs {
    /// Enforce the network policy of the held policy bundle: an nftables firewall (default
    /// drop; Command, the DNS upstream and the policy's routes the only ways out), replaced at
    /// each new bundle, and an encrypted-DNS stub that refuses the names the policy blocks. Both
    /// are measured each cycle as the `firewall`, `encrypted-dns` and
    /// `network-policy-compliance` signals.
    #[arg(long, requires_all = ["dns_upstream", "dns_upstream_name"])]
    enforce_network: bool,
    /// Command's address (IP:PORT) for the firewall; default: the --server URL's, resolved once
    /// at start.
    #[arg(long, value_name = "IP:PORT", requires = "enforce_network")]
    command_address: Option<std::net::SocketAddr>,
    /// Where the encrypted-DNS stub answers (a loopback IP:PORT).
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.53:53")]
    dns_listen: std::net::SocketAddr,
    /// The DNS-over-TLS upstream (IP:PORT, usually port 853).
    #[arg(long, value_name = "IP:PORT", requires = "enforce_network")]
    dns_upstream: Option<std::net::SocketAddr>,
    /// The name the upstream's certificate must carry.
    #[arg(long, value_name = "NAME", requires = "enforce_network")]
    dns_upstream_name: Option<String>,
    /// PEM certificates the upstream's must chain to (default: the Web PKI roots).
    #[arg(long, value_name = "FILE", requires = "enforce_network")]
    dns_upstream_ca: Option<PathBuf>,
    /// The Enigm Proxy (IP:PORT), opened in the firewall when the policy routes through it.
    #[arg(long, value_name = "IP:PORT", requires = "enforce_network")]
    proxy: Option<std::net::SocketAddr>,
    /// Where apps reach the Enigm Proxy through the agent (a loopback IP:PORT; HTTP CONNECT):
    /// each connection is tunnelled with the device's credential and a fresh proof, which the
    /// agent keeps renewed while the policy routes through the proxy. There is no direct path.
    #[arg(long, value_name = "IP:PORT", requires = "proxy")]
    proxy_listen: Option<std::net::SocketAddr>,
    /// The Tor Gateway's entry (IP:PORT, TCP), opened when the policy routes through it.
    #[arg(long, value_name = "IP:PORT", requires = "enforce_network")]
    tor_gateway: Option<std::net::SocketAddr>,
}

impl NetworkArgs {
    /// The enforcement settings, or `None` without `--enforce-network`.
    async fn settings(
        &self,
        server: &ServerUrl,
    ) -> anyhow::Result<Option<enigm_agent::network::NetworkSettings>> {
        if !self.enforce_network {
            return Ok(None);
        }
        let (Some(upstream), Some(name)) = (self.dns_upstream, self.dns_upstream_name.as_deref())
        else {
            anyhow::bail!("--enforce-network needs --dns-upstream and --dns-upstream-name");
        };
        let ca = self
            .dns_upstream_ca
            .as_ref()
            .map(|file| crate::policy::read_bounded(file, crate::policy::MAX_POLICY_FILE))
            .transpose()?;
        let command = match self.command_address {
            Some(address) => address,
            None => command_address(server).await?,
        };
        Ok(Some(enigm_agent::network::NetworkSettings {
            command,
            dns_listen: self.dns_listen,
            dns_upstream: enigm_agent::dns::Upstream::new(upstream, name, ca.as_deref())?,
            proxy: self.proxy,
            proxy_listen: self.proxy_listen,
            tor_gateway: self.tor_gateway,
        }))
    }
}

/// The address of Command's URL, resolved once (before the firewall closes plain DNS).
async fn command_address(server: &ServerUrl) -> anyhow::Result<std::net::SocketAddr> {
    let url = reqwest::Url::parse(server.as_str()).context("the server URL does not parse")?;
    let host = url.host_str().context("the server URL names no host")?;
    let port = url
        .port_or_known_default()
        .context("the server URL names no port")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("could not resolve `{host}`; give --command-address"))?
        .next()
        .with_context(|| format!("`{host}` has no address; give --command-address"))
}

/// `enigm agent`: runs the EnigmSecurityService shell until it stops.
pub(crate) async fn run(global: &GlobalArgs, args: AgentArgs) -> anyhow::Result<()> {
    let server = global
        .server()
        .context("no server given: pass --server URL (or set ENIGM_SERVER)")?;
    let server = ServerUrl::parse(server)?;
    let network = args.network.settings(&server).await?;
    enigm_agent::shell::run(ShellConfig {
        server: server.as_str().to_owned(),
        ca_cert: global.ca_cert.clone(),
        state_dir: args.state_dir,
        enrollment_token_file: args.enrollment_token_file,
        profile: args.profile,
        once: args.once,
        interval: Duration::from_secs(args.interval),
        managed_opt_in: args.managed_opt_in,
        wipe_opt_in: args.wipe_opt_in,
        insecure_dev_attestation_root: args.insecure_dev_attestation_root,
        attest_every: Duration::from_secs(args.attest_every),
        ota_trusted_root: args.ota_trusted_root,
        model: args.model,
        channel: args.channel,
        network,
    })
    .await
}

/// `enigm agent-setup`: the setup wizard's required steps on a real device.
#[derive(Debug, Args)]
pub(crate) struct AgentSetupArgs {
    /// The state directory of `enigm agent`.
    #[arg(long, value_name = "DIR")]
    state_dir: PathBuf,
    /// File holding the device PIN the user chose: six digits, not repeated, sequential or
    /// another common pattern. It is checked and never kept or sent.
    #[arg(long, value_name = "FILE")]
    pin_file: Option<PathBuf>,
    /// The user accepts the terms and privacy notice.
    #[arg(long)]
    accept_terms: bool,
    /// Check the network path to Command (`--server`): its health check must answer.
    #[arg(long)]
    check_network: bool,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("where").required(true).args(["location", "leave"]))]
pub(crate) struct AgentVpnArgs {
    /// The state directory of `enigm agent` (an enrolled device).
    #[arg(long, value_name = "DIR")]
    state_dir: PathBuf,
    /// The VPN location to be placed in, as the group's network policy names it.
    #[arg(long)]
    location: Option<String>,
    /// Leave the VPN (the gateway's slot is given back; the configuration is removed).
    #[arg(long)]
    leave: bool,
}

/// Asks Command for a VPN location (or to leave the VPN) and writes the tunnel configuration
/// with the device's own private key, or removes it.
pub(crate) async fn run_vpn(global: &GlobalArgs, args: AgentVpnArgs) -> anyhow::Result<()> {
    let server = global
        .server()
        .context("no server given: pass --server URL (or set ENIGM_SERVER)")?;
    let server = ServerUrl::parse(server)?;
    let (answer, config) = enigm_agent::shell::run_vpn(enigm_agent::shell::VpnConfig {
        server: server.as_str().to_owned(),
        ca_cert: global.ca_cert.clone(),
        state_dir: args.state_dir,
        location: args.location,
    })
    .await?;
    if global.json {
        return output::print_json(&serde_json::to_value(&answer)?);
    }
    match &answer.assignment {
        Some(peer) => println!(
            "vpn: {} via {} ({}), switch {}; configuration in {} (bring it up with `wg-quick up`)",
            output::clean(&peer.location),
            peer.gateway,
            output::clean(&peer.address),
            answer.sequence,
            config.display()
        ),
        None => println!("vpn: left, switch {}", answer.sequence),
    }
    Ok(())
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("under").required(true).args(["state_dir", "policy"]))]
pub(crate) struct AgentFirewallArgs {
    /// The state directory of `enigm agent`: the network policy of the policy bundle it holds
    /// (none, or one that cannot be read, lets out nothing but Command and DNS upstreams).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// A network policy document (JSON) instead of the held bundle's.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Command's address (IP:PORT), always reachable: the device could not get a policy
    /// otherwise.
    #[arg(long, value_name = "IP:PORT")]
    command_address: std::net::SocketAddr,
    /// The local encrypted-DNS stub (a loopback IP:PORT).
    #[arg(long, value_name = "IP:PORT")]
    dns_stub: Option<std::net::SocketAddr>,
    /// An encrypted-DNS upstream of the stub (IP:PORT, TCP); repeatable.
    #[arg(long, value_name = "IP:PORT")]
    dns_upstream: Vec<std::net::SocketAddr>,
    /// The Enigm Proxy (IP:PORT), opened when the policy routes through it.
    #[arg(long, value_name = "IP:PORT")]
    proxy: Option<std::net::SocketAddr>,
    /// The assigned VPN gateway (IP:PORT, UDP), opened when the policy routes through a VPN.
    #[arg(long, value_name = "IP:PORT")]
    vpn_gateway: Option<std::net::SocketAddr>,
    /// The VPN tunnel's interface, opened when the policy routes through a VPN.
    #[arg(long, value_name = "NAME")]
    vpn_interface: Option<String>,
    /// The Tor Gateway's entry (IP:PORT, TCP), opened when the policy routes through it.
    #[arg(long, value_name = "IP:PORT")]
    tor_gateway: Option<std::net::SocketAddr>,
    /// Apply the ruleset with `nft` (as root); without it, print it.
    #[arg(long)]
    apply: bool,
}

/// The device's network policy: `--policy FILE`, or the network policy of the bundle the agent
/// holds in its state directory, and words for what it is. No policy, or a bundle that cannot be
/// read (said on stderr), is `None`: everything built on it fails closed.
fn device_network_policy(
    state_dir: Option<&std::path::Path>,
    policy: Option<&std::path::Path>,
) -> anyhow::Result<(Option<enigm_netpolicy::CompiledPolicy>, String)> {
    match (policy, state_dir) {
        (Some(file), _) => Ok((
            Some(crate::net::policy_file(file)?),
            file.display().to_string(),
        )),
        (None, Some(dir)) => {
            let bundle = enigm_agent::policy_bundles::held_bundle_path(dir);
            Ok(match crate::net::bundle_network_policy(&bundle) {
                Ok(Some((compiled, reference))) => (
                    Some(compiled),
                    format!("{} v{}", reference.name, reference.version),
                ),
                Ok(None) => (None, "no network policy".to_owned()),
                Err(error) => {
                    eprintln!("warning: {error:#}; failing closed");
                    (None, "no readable policy bundle".to_owned())
                }
            })
        }
        (None, None) => anyhow::bail!("give --state-dir or --policy"),
    }
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("under").required(true).args(["state_dir", "policy"]))]
pub(crate) struct AgentDnsArgs {
    /// The state directory of `enigm agent`: the held bundle's network policy (none refuses
    /// every name).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// A network policy document (JSON) instead of the held bundle's.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Where the stub answers (a loopback IP:PORT).
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.53:53")]
    listen: std::net::SocketAddr,
    /// The DNS-over-TLS upstream (IP:PORT, usually port 853).
    #[arg(long, value_name = "IP:PORT")]
    upstream: std::net::SocketAddr,
    /// The name the upstream's certificate must carry.
    #[arg(long, value_name = "NAME")]
    upstream_name: String,
    /// PEM certificates the upstream's must chain to (default: the Web PKI roots).
    #[arg(long, value_name = "FILE")]
    upstream_ca: Option<PathBuf>,
}

/// Runs the encrypted-DNS stub until it is stopped.
pub(crate) async fn run_dns(args: AgentDnsArgs) -> anyhow::Result<()> {
    if !args.listen.ip().is_loopback() {
        anyhow::bail!("the DNS stub answers on loopback only: --listen 127.0.0.53:53");
    }
    let (policy, under) = device_network_policy(args.state_dir.as_deref(), args.policy.as_deref())?;
    let ca = args
        .upstream_ca
        .as_ref()
        .map(|file| crate::policy::read_bounded(file, crate::policy::MAX_POLICY_FILE))
        .transpose()?;
    let upstream =
        enigm_agent::dns::Upstream::new(args.upstream, &args.upstream_name, ca.as_deref())?;
    let socket = tokio::net::UdpSocket::bind(args.listen)
        .await
        .with_context(|| format!("could not listen on {}", args.listen))?;
    println!(
        "dns: answering on {} under {}; names the policy blocks are refused; the rest go to {} over TLS",
        socket.local_addr()?,
        output::clean(&under),
        args.upstream
    );
    enigm_agent::dns::serve(socket, enigm_agent::dns::fixed_policy(policy), upstream).await
}

/// Generates the device's firewall from its network policy and prints or applies it.
pub(crate) fn run_firewall(global: &GlobalArgs, args: AgentFirewallArgs) -> anyhow::Result<()> {
    use enigm_netpolicy::firewall::{FirewallPlan, PLAIN_DNS_COUNTER, ruleset};
    let (policy, under) = device_network_policy(args.state_dir.as_deref(), args.policy.as_deref())?;
    let routes = policy
        .as_ref()
        .map(enigm_netpolicy::CompiledPolicy::routes_used);
    let plan = FirewallPlan {
        command: args.command_address,
        dns_stub: args.dns_stub,
        dns_upstreams: args.dns_upstream,
        enigm_proxy: args.proxy,
        vpn_gateway: args.vpn_gateway,
        vpn_interface: args.vpn_interface,
        tor_gateway: args.tor_gateway,
    };
    let text = ruleset(routes, &plan)?;
    if !args.apply {
        print!("{text}");
        return Ok(());
    }
    enigm_agent::firewall::apply(&text)?;
    let plain_dns = enigm_agent::firewall::counter(PLAIN_DNS_COUNTER)?;
    if global.json {
        return output::print_json(&serde_json::json!({
            "applied": true, "under": under, "plain_dns_attempts": plain_dns,
        }));
    }
    println!(
        "firewall: applied under {}; default drop; plain DNS attempts so far: {plain_dns}",
        output::clean(&under)
    );
    Ok(())
}

/// Records the steps asked for and prints which are done; fails on a weak PIN or an
/// unreachable Command (the other steps are recorded all the same).
pub(crate) async fn run_setup(
    global: &GlobalArgs,
    args: AgentSetupArgs,
    json: bool,
) -> anyhow::Result<()> {
    let server = if args.check_network {
        let server = global
            .server()
            .context("--check-network needs the server: pass --server URL (or set ENIGM_SERVER)")?;
        Some(ServerUrl::parse(server)?.as_str().to_owned())
    } else {
        None
    };
    let record = enigm_agent::shell::run_setup(enigm_agent::shell::SetupConfig {
        state_dir: args.state_dir,
        pin_file: args.pin_file,
        accept_terms: args.accept_terms,
        server,
        ca_cert: global.ca_cert.clone(),
    })
    .await?;
    if json {
        return output::print_json(&serde_json::to_value(&record)?);
    }
    let missing = record.missing();
    for step in enigm_types::SetupStep::REQUIRED {
        let done = if missing.contains(&step) {
            "not done"
        } else {
            "done"
        };
        println!("{:<18} {done}", step.as_str());
    }
    if missing.is_empty() {
        println!("setup complete: the device is ready once it next checks in");
    }
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct TscArgs {
    /// The state directory of `enigm agent`.
    #[arg(long, value_name = "DIR")]
    state_dir: PathBuf,
}

/// `enigm tsc`: prints the local Trust Security Center; fails when the agent has not checked in
/// yet.
pub(crate) fn run_tsc(args: TscArgs, json: bool) -> anyhow::Result<()> {
    let Some(record) = enigm_agent::tsc::read(&args.state_dir)? else {
        anyhow::bail!(
            "no evaluation in `{}` yet: run `enigm agent --state-dir {} --once` first",
            args.state_dir.display(),
            args.state_dir.display()
        );
    };
    if json {
        return output::print_json(&serde_json::to_value(&record)?);
    }
    println!("Trust Security Center");
    println!("  state:          {}", record.state.label());
    println!("  summary:        {}", record.launcher_summary.label());
    println!("  last check-in:  {}", output::clean(&record.checked_in_at));
    println!("  handle:         {}", record.handle);
    println!("  server:         {}", output::clean(&record.server));
    println!();
    output::print_list(
        &output::finding_table(&record.findings),
        record.findings.len(),
        "no findings",
    );
    Ok(())
}

/// `enigm agent-report`: a hidden debugging command that prints the signal report the agent
/// would send, as JSON, without talking to any server.
#[derive(Debug, Args)]
pub(crate) struct AgentReportArgs {
    /// Device profile (TOML) declaring the signals of a simulated device; without it, the real
    /// collectors measure this host.
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
    /// Directory the collectors read `/sys`, `/proc` and `/etc` under.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
}

/// Prints the report as JSON on stdout. The output is always JSON; `--json` is accepted.
pub(crate) fn run_report(args: AgentReportArgs) -> anyhow::Result<()> {
    let now = enigm_agent::report::system_now();
    let profile = args
        .profile
        .as_deref()
        .map(|path| {
            Profile::load(path)
                .with_context(|| format!("could not load profile `{}`", path.display()))
        })
        .transpose()?;
    if let Some(profile) = &profile {
        let hardware = profile.hardware().declared();
        if !hardware.is_empty() {
            eprintln!(
                "note: profile `{}` declares {}, which the agent never transmits",
                profile.name().unwrap_or("unnamed"),
                profile.hardware()
            );
        }
    }
    let report = enigm_agent::report::measure(profile.as_ref(), &args.root, now);
    let json = serde_json::to_string_pretty(&report).context("could not encode the report")?;
    println!("{json}");
    Ok(())
}
