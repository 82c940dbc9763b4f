//! `enigm policy`: named policies of a kind (trust, attestation, network), their numbered versions and
//! diffs, and their assignment to device groups. A new version and an assignment change need
//! the PIN and open an approval request that another administrator decides (`enigm admin
//! approvals approve ID`); nothing is in force before that.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use enigm_api::paths;
use enigm_api::policies::{
    AssignPolicyRequest, CreatePolicyRequest, CreatePolicyVersionRequest, PolicyAssignmentList,
    PolicyChangeRequested, PolicyDetail, PolicyDiffView, PolicyList, PolicyVersionView, PolicyView,
    UnassignPolicyRequest,
};
use enigm_types::{GroupName, PolicyId, PolicyKind};

use crate::cli::GlobalArgs;
use crate::client::CommandClient;
use crate::connect;
use crate::output;
use crate::secrets::PinSource;

/// The largest policy file read: what Command accepts in one request body (a network policy's
/// blocklists make it the largest kind).
pub(crate) const MAX_POLICY_FILE: u64 = 1024 * 1024;

#[derive(Debug, Args)]
pub(crate) struct PolicyArgs {
    /// File whose content is the 6-digit critical-operation PIN. Without it the PIN is
    /// prompted for on a terminal; it is never taken as an argument.
    #[arg(long, global = true, value_name = "FILE")]
    pin_file: Option<PathBuf>,
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// List the policies.
    List,
    /// Create a named policy of a kind (`trust`, `attestation` or `network`); it has no version
    /// yet.
    Create {
        name: String,
        #[arg(long, value_parser = parse_kind)]
        kind: PolicyKind,
    },
    /// Versions of a policy.
    Version {
        #[command(subcommand)]
        command: VersionCommand,
    },
    /// Show a policy and its versions, or one version's content with `--version`.
    #[command(disable_version_flag = true)]
    Show {
        /// The policy's name or id.
        policy: String,
        #[arg(long)]
        version: Option<u32>,
    },
    /// The line diff between two versions of a policy.
    Diff { policy: String, from: u32, to: u32 },
    /// Request that device groups follow a version (pinned) of the policy (needs the PIN and
    /// another administrator's approval).
    #[command(disable_version_flag = true)]
    Assign {
        policy: String,
        #[arg(long)]
        version: u32,
        /// Device groups (repeat or separate with commas).
        #[arg(long = "group", value_delimiter = ',', required = true, value_parser = parse_group)]
        groups: Vec<GroupName>,
        #[arg(long)]
        justification: String,
    },
    /// Request that device groups stop following the policy (needs the PIN and another
    /// administrator's approval); their devices fall back to their enrollment policy.
    Unassign {
        policy: String,
        #[arg(long = "group", value_delimiter = ',', required = true, value_parser = parse_group)]
        groups: Vec<GroupName>,
        #[arg(long)]
        justification: String,
    },
    /// Which device groups follow which policy version.
    Assignments {
        /// Only this policy's (name or id).
        policy: Option<String>,
    },
    /// The newest policy bundle of each device group (Command compiles and signs one when a
    /// group's assignments change).
    Bundles,
}

#[derive(Debug, Subcommand)]
enum VersionCommand {
    /// Propose a new version from a JSON file (needs the PIN and another administrator's
    /// approval).
    Create {
        policy: String,
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        #[arg(long)]
        justification: String,
    },
}

fn parse_kind(text: &str) -> Result<PolicyKind, String> {
    text.parse::<PolicyKind>().map_err(|_| {
        "expected `trust`, `attestation` or `network` (`configuration` is not yet supported)"
            .to_owned()
    })
}

pub(crate) fn parse_group(text: &str) -> Result<GroupName, String> {
    GroupName::parse(text).map_err(|error| error.to_string())
}

pub(crate) async fn run(global: &GlobalArgs, args: PolicyArgs) -> anyhow::Result<()> {
    let client = connect::connect(global)?;
    let pins = PinSource::new(args.pin_file);
    let json = global.json;
    match args.command {
        PolicyCommand::List => {
            let reply = client.get::<PolicyList>(paths::POLICIES).await?;
            if json {
                return output::print_json(&reply.raw);
            }
            let mut table = output::new_table(&["NAME", "KIND", "LATEST VERSION", "ID"]);
            for policy in &reply.value.items {
                table.add_row(vec![
                    output::clean(&policy.name),
                    policy.kind.as_str().to_owned(),
                    policy
                        .latest_version
                        .map_or_else(|| "-".to_owned(), |v| v.to_string()),
                    policy.id.to_string(),
                ]);
            }
            output::print_list(&table, reply.value.items.len(), "no policies");
            Ok(())
        }
        PolicyCommand::Create { name, kind } => {
            let reply = client
                .post::<_, PolicyView>(paths::POLICIES, &CreatePolicyRequest { name, kind }, None)
                .await?;
            if json {
                return output::print_json(&reply.raw);
            }
            println!(
                "created {} policy {} ({}); propose its first version with `enigm policy version create {} --file FILE`",
                reply.value.kind,
                output::clean(&reply.value.name),
                reply.value.id,
                output::clean(&reply.value.name)
            );
            Ok(())
        }
        PolicyCommand::Version {
            command:
                VersionCommand::Create {
                    policy,
                    file,
                    justification,
                },
        } => {
            let id = resolve(&client, &policy).await?;
            let content = read_policy_file(&file)?;
            let body = CreatePolicyVersionRequest {
                content,
                justification,
            };
            let change = Change {
                client: &client,
                pins: &pins,
                id,
                json,
            };
            change
                .request(paths::POLICY_VERSIONS, &body, "a new version")
                .await
        }
        PolicyCommand::Show {
            policy,
            version: Some(version),
        } => {
            let id = resolve(&client, &policy).await?;
            let reply = client
                .get::<PolicyVersionView>(&paths::fill(
                    paths::POLICY_VERSION,
                    &[&id.to_string(), &version.to_string()],
                ))
                .await?;
            if json {
                return output::print_json(&reply.raw);
            }
            let view = reply.value;
            println!(
                "{} policy {} version {} (sha256 {}, approved {})",
                view.kind,
                output::clean(&view.name),
                view.version,
                output::clean(&view.digest),
                output::clean(&view.approved_at)
            );
            println!("{}", serde_json::to_string_pretty(&view.content)?);
            Ok(())
        }
        PolicyCommand::Show {
            policy,
            version: None,
        } => {
            let id = resolve(&client, &policy).await?;
            let reply = client
                .get::<PolicyDetail>(&paths::fill(paths::POLICY, &[&id.to_string()]))
                .await?;
            if json {
                return output::print_json(&reply.raw);
            }
            let detail = reply.value;
            println!(
                "{} policy {} ({})",
                detail.policy.kind,
                output::clean(&detail.policy.name),
                detail.policy.id
            );
            let mut table = output::new_table(&["VERSION", "SHA256", "APPROVED"]);
            for version in &detail.versions {
                table.add_row(vec![
                    version.version.to_string(),
                    output::clean(&version.digest),
                    output::clean(&version.approved_at),
                ]);
            }
            output::print_list(&table, detail.versions.len(), "no versions yet");
            Ok(())
        }
        PolicyCommand::Diff { policy, from, to } => {
            let id = resolve(&client, &policy).await?;
            let path = format!(
                "{}?from={from}&to={to}",
                paths::fill(paths::POLICY_DIFF, &[&id.to_string()])
            );
            let reply = client.get::<PolicyDiffView>(&path).await?;
            if json {
                return output::print_json(&reply.raw);
            }
            if reply.value.diff.is_empty() {
                println!("versions {from} and {to} are the same");
            } else {
                print!("{}", reply.value.diff);
            }
            Ok(())
        }
        PolicyCommand::Assign {
            policy,
            version,
            groups,
            justification,
        } => {
            let id = resolve(&client, &policy).await?;
            let body = AssignPolicyRequest {
                version,
                groups,
                justification,
            };
            let change = Change {
                client: &client,
                pins: &pins,
                id,
                json,
            };
            change
                .request(paths::POLICY_ASSIGN, &body, "an assignment")
                .await
        }
        PolicyCommand::Unassign {
            policy,
            groups,
            justification,
        } => {
            let id = resolve(&client, &policy).await?;
            let body = UnassignPolicyRequest {
                groups,
                justification,
            };
            let change = Change {
                client: &client,
                pins: &pins,
                id,
                json,
            };
            change
                .request(paths::POLICY_UNASSIGN, &body, "an unassignment")
                .await
        }
        PolicyCommand::Assignments { policy } => {
            let path = match policy {
                Some(policy) => format!(
                    "{}?policy={}",
                    paths::POLICY_ASSIGNMENTS,
                    resolve(&client, &policy).await?
                ),
                None => paths::POLICY_ASSIGNMENTS.to_owned(),
            };
            let reply = client.get::<PolicyAssignmentList>(&path).await?;
            if json {
                return output::print_json(&reply.raw);
            }
            let mut table = output::new_table(&["KIND", "GROUP", "POLICY", "VERSION", "SINCE"]);
            for assignment in &reply.value.items {
                table.add_row(vec![
                    assignment.kind.as_str().to_owned(),
                    assignment.group.to_string(),
                    output::clean(&assignment.policy_name),
                    assignment.version.to_string(),
                    output::clean(&assignment.assigned_at),
                ]);
            }
            output::print_list(&table, reply.value.items.len(), "no assignments");
            Ok(())
        }
        PolicyCommand::Bundles => {
            let reply = client
                .get::<enigm_api::policy_bundles::PolicyBundleList>(paths::POLICY_BUNDLES)
                .await?;
            if json {
                return output::print_json(&reply.raw);
            }
            let mut table = output::new_table(&["GROUP", "SEQUENCE", "TARGET", "SHA-256", "SINCE"]);
            for bundle in &reply.value.items {
                table.add_row(vec![
                    output::clean(&bundle.group),
                    bundle.sequence.to_string(),
                    output::clean(&bundle.target_name),
                    output::clean(bundle.sha256.get(..12).unwrap_or(&bundle.sha256)),
                    output::clean(&bundle.created_at),
                ]);
            }
            output::print_list(&table, reply.value.items.len(), "no policy bundles");
            if let Some(warning) = &reply.value.warning {
                eprintln!("warning: {}", output::clean(warning));
            }
            Ok(())
        }
    }
}

/// A policy id, or the id of the policy with this name.
async fn resolve(client: &CommandClient, input: &str) -> anyhow::Result<PolicyId> {
    if let Ok(id) = input.parse::<PolicyId>() {
        return Ok(id);
    }
    let policies = client.get::<PolicyList>(paths::POLICIES).await?.value;
    policies
        .items
        .iter()
        .find(|policy| policy.name == input)
        .map(|policy| policy.id)
        .with_context(|| format!("no policy named `{input}`; see `enigm policy list`"))
}

pub(crate) fn read_policy_file(file: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let bytes = read_bounded(file, MAX_POLICY_FILE)?;
    serde_json::from_slice(&bytes).with_context(|| format!("`{}` is not JSON", file.display()))
}

/// The whole of `file`, refused when it is larger than `limit` bytes (read no further).
pub(crate) fn read_bounded(file: &std::path::Path, limit: u64) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
    let opened =
        std::fs::File::open(file).with_context(|| format!("cannot open `{}`", file.display()))?;
    let mut bytes = Vec::new();
    opened
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read `{}`", file.display()))?;
    if bytes.len() as u64 > limit {
        anyhow::bail!("`{}` is larger than {limit} bytes", file.display());
    }
    Ok(bytes)
}

/// A critical change of one policy: posted with the PIN, answered with the approval request it
/// opened (a new version, an assignment and an unassignment all go this way).
struct Change<'a> {
    client: &'a CommandClient,
    pins: &'a PinSource,
    id: PolicyId,
    json: bool,
}

impl Change<'_> {
    async fn request<B: serde::Serialize>(
        &self,
        path: &str,
        body: &B,
        what: &str,
    ) -> anyhow::Result<()> {
        let pin = self.pins.obtain()?;
        let reply = self
            .client
            .post::<_, PolicyChangeRequested>(
                &paths::fill(path, &[&self.id.to_string()]),
                body,
                Some(&pin),
            )
            .await?;
        if self.json {
            return output::print_json(&reply.raw);
        }
        let id = reply.value.approval.id;
        println!(
            "requested {what}: approval {id}; another administrator approves it with `enigm admin approvals approve {id}`"
        );
        crate::admin::approvals::print_waiting(&reply.value.approval);
        Ok(())
    }
}
