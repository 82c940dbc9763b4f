//! `enigm net decide`: where a flow goes under a network policy, and which rule decided.
//! Offline, for a network policy file (`--policy`) or a device's policy bundle (`--bundle`),
//! with the trust state and lifecycle given; or on Command for an enrolled device (`--device`),
//! which decides with its own record of the device under the group's policy and audits the
//! decision (never the flow).

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use enigm_api::network::{NetworkDecisionView, NetworkFlow, NetworkPolicyRef};
use enigm_api::paths;
use enigm_api::vpn::{
    CreateVpnGatewayRequest, UpdateVpnGatewayRequest, VpnGatewayPeersView, VpnGatewayView,
};
use enigm_netpolicy::{CompiledPolicy, DeviceContext, explain};
use enigm_server::services::network::{engine_flow, view_of};
use enigm_types::{DeviceHandle, DeviceState, NetworkRoute, TrustState, VpnGatewayId};

use crate::cli::GlobalArgs;
use crate::policy::read_bounded;
use crate::{connect, output, parse};

#[derive(Debug, Args)]
pub(crate) struct NetArgs {
    #[command(subcommand)]
    command: NetCommand,
}

#[derive(Debug, Subcommand)]
enum NetCommand {
    /// Decide a flow: its route (enigm-proxy, vpn, tor-gateway, direct or block), the rule that
    /// decided and each layer's verdict. Exits 1 when the flow is blocked.
    Decide(DecideArgs),
    /// The VPN gateways: list them with their aggregate load, register one, or change one's
    /// health, reported load or capacity.
    Gateways {
        #[command(subcommand)]
        command: Option<GatewayCommand>,
    },
}

#[derive(Debug, Subcommand)]
enum GatewayCommand {
    /// Register a gateway.
    Add {
        /// The gateway's id (lowercase letters, digits, `-_.`).
        id: VpnGatewayId,
        /// The VPN location it serves, as network policies name it.
        #[arg(long)]
        location: String,
        /// `host:port` devices connect to.
        #[arg(long)]
        endpoint: String,
        /// The gateway's WireGuard public key (base64).
        #[arg(long)]
        tunnel_key: String,
        /// The pool of device tunnel addresses (CIDR).
        #[arg(long)]
        tunnel_network: String,
        /// The most sessions it may hold.
        #[arg(long)]
        capacity: u32,
    },
    /// Print the `[Peer]` sections the gateway applies (e.g. appended to its interface section
    /// for `wg syncconf`): the sessions of devices still on the network.
    Peers { id: VpnGatewayId },
    /// Change a gateway's health, reported load or capacity (sessions it holds are kept).
    Set {
        id: VpnGatewayId,
        #[arg(long, conflicts_with = "unhealthy")]
        healthy: bool,
        #[arg(long)]
        unhealthy: bool,
        /// The load the gateway reports, in percent.
        #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
        load: Option<u8>,
        #[arg(long)]
        capacity: Option<u32>,
    },
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("under").required(true).args(["policy", "bundle", "device"]))]
struct DecideArgs {
    /// A network policy document (JSON), decided offline.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// A policy bundle (as the agent holds it), decided offline under its network policy; a
    /// bundle without one blocks every flow.
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
    /// An enrolled device: Command decides under its group's network policy and its own record
    /// of the device, and audits the decision.
    #[arg(long, value_parser = parse::device_handle)]
    device: Option<DeviceHandle>,
    /// Offline: the device's trust state.
    #[arg(long, value_parser = parse::trust_state, default_value = "PROTECTED", conflicts_with = "device")]
    trust_state: TrustState,
    /// Offline: the device's lifecycle state.
    #[arg(long, value_parser = parse::device_state(), default_value = "trusted", conflicts_with = "device")]
    lifecycle: DeviceState,
    /// The app sending the flow.
    #[arg(long)]
    app: Option<String>,
    /// The flow's category.
    #[arg(long)]
    category: Option<String>,
    /// The destination's domain name.
    #[arg(long)]
    domain: Option<String>,
    /// The destination's IPv4 or IPv6 address.
    #[arg(long)]
    address: Option<IpAddr>,
    /// The network the device is on (untrusted unless the policy trusts it).
    #[arg(long)]
    network: Option<String>,
}

pub(crate) async fn run(global: &GlobalArgs, args: NetArgs) -> anyhow::Result<()> {
    let args = match args.command {
        NetCommand::Decide(args) => args,
        NetCommand::Gateways { command } => return gateways(global, command).await,
    };
    let flow = NetworkFlow {
        app: args.app.clone(),
        category: args.category.clone(),
        domain: args.domain.clone(),
        address: args.address,
        network: args.network.clone(),
    };
    let (view, raw) = match args.device {
        Some(device) => {
            let client = connect::connect(global)?;
            let reply = client
                .post::<_, NetworkDecisionView>(
                    &paths::fill(paths::DEVICE_NETWORK_DECISION, &[&device.to_string()]),
                    &flow,
                    None,
                )
                .await?;
            (reply.value, reply.raw)
        }
        None => {
            let view = decide_offline(&args, &flow)?;
            let raw = serde_json::to_value(&view)?;
            (view, raw)
        }
    };
    if global.json {
        output::print_json(&raw)?;
    } else {
        print_view(&view);
    }
    if view.route == NetworkRoute::Block {
        // The answer is printed; the error (exit status 1) tells scripts the flow is blocked.
        anyhow::bail!(
            "blocked: {} (rule {})",
            output::clean(view.reason.as_deref().unwrap_or("block")),
            output::clean(&view.rule)
        );
    }
    Ok(())
}

async fn gateways(global: &GlobalArgs, command: Option<GatewayCommand>) -> anyhow::Result<()> {
    let client = connect::connect(global)?;
    let changed = match command {
        None => {
            let reply = client
                .get::<Vec<VpnGatewayView>>(paths::VPN_GATEWAYS)
                .await?;
            if global.json {
                return output::print_json(&reply.raw);
            }
            let mut table = output::new_table(&[
                "GATEWAY",
                "LOCATION",
                "ENDPOINT",
                "SESSIONS",
                "HEALTHY",
                "LOAD",
                "NEW SESSIONS",
            ]);
            for gateway in &reply.value {
                table.add_row(vec![
                    gateway.id.to_string(),
                    output::clean(&gateway.location),
                    output::clean(&gateway.endpoint),
                    format!("{}/{}", gateway.assigned, gateway.capacity),
                    if gateway.healthy { "yes" } else { "no" }.to_owned(),
                    gateway
                        .load_percent
                        .map_or_else(|| "-".to_owned(), |load| format!("{load}%")),
                    if gateway.accepting_new_sessions {
                        "accepted"
                    } else {
                        "refused"
                    }
                    .to_owned(),
                ]);
            }
            output::print_list(
                &table,
                reply.value.len(),
                "no VPN gateways: register one with `enigm net gateways add`",
            );
            return Ok(());
        }
        Some(GatewayCommand::Add {
            id,
            location,
            endpoint,
            tunnel_key,
            tunnel_network,
            capacity,
        }) => {
            let request = CreateVpnGatewayRequest {
                id,
                location,
                endpoint,
                tunnel_key,
                tunnel_network,
                capacity,
            };
            client
                .post::<_, VpnGatewayView>(paths::VPN_GATEWAYS, &request, None)
                .await?
        }
        Some(GatewayCommand::Peers { id }) => {
            let reply = client
                .get::<VpnGatewayPeersView>(&paths::fill(paths::VPN_GATEWAY_PEERS, &[id.as_str()]))
                .await?;
            if global.json {
                return output::print_json(&reply.raw);
            }
            // The configuration as Command rendered it from checked keys and addresses.
            print!("{}", reply.value.config);
            return Ok(());
        }
        Some(GatewayCommand::Set {
            id,
            healthy,
            unhealthy,
            load,
            capacity,
        }) => {
            let request = UpdateVpnGatewayRequest {
                healthy: (healthy || unhealthy).then_some(healthy),
                load_percent: load,
                capacity,
            };
            client
                .patch::<_, VpnGatewayView>(
                    &paths::fill(paths::VPN_GATEWAY, &[id.as_str()]),
                    &request,
                    None,
                )
                .await?
        }
    };
    if global.json {
        return output::print_json(&changed.raw);
    }
    let gateway = changed.value;
    println!(
        "gateway {} ({}): {}/{} sessions, {}, new sessions {}",
        gateway.id,
        output::clean(&gateway.location),
        gateway.assigned,
        gateway.capacity,
        if gateway.healthy {
            "healthy"
        } else {
            "unhealthy"
        },
        if gateway.accepting_new_sessions {
            "accepted"
        } else {
            "refused"
        }
    );
    Ok(())
}

/// A network policy document (JSON) file, compiled.
pub(crate) fn policy_file(file: &std::path::Path) -> anyhow::Result<CompiledPolicy> {
    let bytes = read_bounded(file, crate::policy::MAX_POLICY_FILE)?;
    CompiledPolicy::from_json(&bytes)
        .with_context(|| format!("`{}` is not a network policy", file.display()))
}

/// The network policy of a policy bundle file (as the agent holds it), compiled; `None` when the
/// bundle has none.
pub(crate) fn bundle_network_policy(
    file: &std::path::Path,
) -> anyhow::Result<Option<(CompiledPolicy, NetworkPolicyRef)>> {
    enigm_agent::policy_bundles::network_policy(file)
}

/// Decides under the policy file or the bundle's network policy, as the agent would.
fn decide_offline(args: &DecideArgs, flow: &NetworkFlow) -> anyhow::Result<NetworkDecisionView> {
    let (compiled, policy) = match (&args.policy, &args.bundle) {
        (Some(file), _) => (Some(policy_file(file)?), None),
        (None, Some(file)) => match bundle_network_policy(file)? {
            None => (None, None),
            Some((compiled, reference)) => (Some(compiled), Some(reference)),
        },
        (None, None) => anyhow::bail!("give --policy, --bundle or --device"),
    };
    if let Some(problem) = flow.oversized() {
        anyhow::bail!("{problem}");
    }
    let context = DeviceContext {
        trust_state: Some(args.trust_state),
        lifecycle: Some(args.lifecycle),
    };
    let mut view = view_of(
        &explain(compiled.as_ref(), &context, &engine_flow(flow)),
        None,
        &context,
    );
    view.policy = policy;
    Ok(view)
}

fn print_view(view: &NetworkDecisionView) {
    let route = match (view.route, &view.location, &view.reason) {
        (NetworkRoute::Vpn, Some(location), _) => format!("vpn ({})", output::clean(location)),
        (NetworkRoute::Block, _, Some(reason)) => format!("block ({})", output::clean(reason)),
        (route, _, _) => route.as_str().to_owned(),
    };
    println!("route:  {route}");
    println!("rule:   {}", output::clean(&view.rule));
    match &view.policy {
        Some(policy) => println!(
            "policy: {} v{} ({})",
            output::clean(&policy.name),
            policy.version,
            policy.policy
        ),
        None => println!("policy: -"),
    }
    if let (Some(trust), Some(lifecycle)) = (view.trust_state, view.lifecycle) {
        println!("device: {trust}, {lifecycle}");
    }
    if !view.layers.is_empty() {
        let mut table = output::new_table(&["LAYER", "MATCHED RULE"]);
        for verdict in &view.layers {
            table.add_row(vec![
                output::clean(&verdict.layer),
                verdict
                    .rule
                    .as_deref()
                    .map_or_else(|| "-".to_owned(), output::clean),
            ]);
        }
        output::print_table(&table);
    }
}
