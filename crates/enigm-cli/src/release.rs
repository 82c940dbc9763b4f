//! `enigm release`: the life of an OTA release.
//!
//! - `create` (the pipeline): hashes the artifact, declares the release (which opens its
//!   release-signing approval request) and uploads the artifact, with progress bars.
//! - `sign` (the signing workstation, after another administrator approved): signs the payload
//!   with the Release-Signing key and the new targets metadata with the Manifest Signing
//!   (targets) key, both in a PKCS#11 token (or, for development only, key files), and hands
//!   the signatures to Command, which verifies them. The pipeline never holds a private key.
//! - `publish`: Command signs a new snapshot and timestamp with its online keys.
//! - `status`: the releases, their state and what devices reported; for one release also its
//!   rollout, live with `--watch`.
//! - `rollout …`: the rollout plan and its steps ([`rollout`]); `pin`, `unpin`, `pins`: version
//!   pins per device group.

mod rollout;

use std::io::{IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use enigm_api::paths;
use enigm_api::releases::{CreateReleaseRequest, ReleaseKind, ReleaseView};
use enigm_types::{GroupName, ReleaseId};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::GlobalArgs;
use crate::client::CommandClient;
use crate::connect;
use crate::output;
use crate::secrets::PinSource;

#[derive(Debug, Args)]
pub(crate) struct ReleaseArgs {
    /// File whose content is the 6-digit critical-operation PIN. Without it the PIN is
    /// prompted for on a terminal; it is never taken as an argument.
    #[arg(long, global = true, value_name = "FILE")]
    pin_file: Option<PathBuf>,
    #[command(subcommand)]
    command: ReleaseCommand,
}

#[derive(Debug, Subcommand)]
enum ReleaseCommand {
    /// Declare a release, open its signing approval request, and upload its artifact.
    Create(CreateArgs),
    /// Sign an approved release on the signing workstation and hand the signatures to Command.
    Sign(crate::ota::sign::SignArgs),
    /// Publish a signed release (and every signed release before it): needs the PIN.
    Publish {
        /// The release id, or a unique prefix of it (at least 4 characters).
        id: String,
    },
    /// The releases, or one release with its state, install outcomes and rollout (stage,
    /// status, each wave's counts).
    Status {
        /// One release id (or a unique prefix of it); all releases when absent.
        id: Option<String>,
        #[command(flatten)]
        watch: rollout::Watch,
    },
    /// A release's controlled rollout: plan, validate, start, advance, promote, pause, resume,
    /// withdraw, status.
    Rollout {
        #[command(subcommand)]
        command: rollout::RolloutCommand,
    },
    /// Keep a device group on a published release's version until unpinned.
    Pin {
        #[arg(value_parser = crate::policy::parse_group)]
        group: GroupName,
        /// The release id, or a unique prefix of it (at least 4 characters).
        release: String,
        /// Why, for the audit log.
        #[arg(long)]
        justification: String,
    },
    /// Let a device group follow the rollouts again.
    Unpin {
        #[arg(value_parser = crate::policy::parse_group)]
        group: GroupName,
    },
    /// Every device group's version pin.
    Pins,
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// The artifact: an OS image or a configuration bundle (policy bundles are compiled by
    /// Command: `enigm policy`).
    file: PathBuf,
    /// The TUF target path, e.g. `os/enigm-os-2026.11.1.img` (default: `KIND/FILE NAME`).
    #[arg(long)]
    name: Option<String>,
    /// `os-image` or `configuration-bundle`.
    #[arg(long, value_parser = parse_kind, default_value = "os-image")]
    kind: ReleaseKind,
    /// The release version, e.g. `2026.11.1`.
    #[arg(long, value_name = "VERSION")]
    release_version: String,
    /// The rollback index (monotonic security version): devices refuse anything lower than
    /// what they have installed.
    #[arg(long)]
    rollback_index: u64,
    /// The release channel.
    #[arg(long, default_value = "stable")]
    channel: String,
    /// Compatible device models (repeat or separate with commas).
    #[arg(long = "model", value_delimiter = ',', required = true)]
    compatible_models: Vec<String>,
    /// Days until devices stop installing the release.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=730))]
    expires_in_days: u32,
    /// Why the release should be signed, for the approvers.
    #[arg(long)]
    justification: String,
}

fn parse_kind(text: &str) -> Result<ReleaseKind, String> {
    match ReleaseKind::parse(text) {
        // Command compiles and signs a group's policy bundle itself after an approved change.
        Some(ReleaseKind::PolicyBundle) => Err(
            "policy bundles are not released: Command compiles and signs them when a policy \
             change is approved (`enigm policy assign`, `enigm policy bundles`)"
                .to_owned(),
        ),
        Some(kind) => Ok(kind),
        None => Err("expected `os-image` or `configuration-bundle`".to_owned()),
    }
}

pub(crate) async fn run(global: &GlobalArgs, args: ReleaseArgs) -> anyhow::Result<()> {
    let client = connect::connect(global)?;
    let pins = PinSource::new(args.pin_file);
    match args.command {
        ReleaseCommand::Create(create) => create_release(&client, create, global.json).await,
        ReleaseCommand::Sign(sign) => {
            crate::ota::sign::run(&client, &pins, sign, global.json).await
        }
        ReleaseCommand::Publish { id } => {
            let id = crate::admin::resolve::release(&client, &id).await?;
            let pin = pins.obtain()?;
            let reply = client
                .post_empty::<ReleaseView>(&release_path(paths::RELEASE_PUBLISH, id), Some(&pin))
                .await?;
            print_release(&reply.value, &reply.raw, global.json)
        }
        ReleaseCommand::Status {
            id: Some(id),
            watch,
        } => {
            let id = crate::admin::resolve::release(&client, &id).await?;
            rollout::show(
                &client,
                id,
                watch,
                global.json,
                rollout::Show::ReleaseAndRollout,
            )
            .await
        }
        ReleaseCommand::Rollout { command } => {
            rollout::run(&client, &pins, command, global.json).await
        }
        ReleaseCommand::Pin {
            group,
            release,
            justification,
        } => rollout::pin(&client, group, &release, justification, global.json).await,
        ReleaseCommand::Unpin { group } => rollout::unpin(&client, group, global.json).await,
        ReleaseCommand::Pins => rollout::pins(&client, global.json).await,
        ReleaseCommand::Status { id: None, watch } => {
            anyhow::ensure!(
                !watch.watch,
                "`--watch` follows one release: `enigm release status ID --watch`"
            );
            let reply = client.get::<Vec<ReleaseView>>(paths::RELEASES).await?;
            if global.json {
                return output::print_json_list(&reply.raw, None);
            }
            let mut table = output::new_table(&[
                "ID",
                "TARGET",
                "VERSION",
                "ROLLBACK",
                "CHANNEL",
                "STATE",
                "INSTALLED",
                "REJECTED",
                "ROLLED BACK",
            ]);
            for release in &reply.value {
                table.add_row(vec![
                    output::short_id(release.id),
                    output::clean(&release.target_name),
                    output::clean(&release.release_version),
                    release.rollback_index.to_string(),
                    output::clean(&release.channel),
                    state_text(release),
                    release.installs.installed.to_string(),
                    release.installs.rejected.to_string(),
                    release.installs.rolled_back.to_string(),
                ]);
            }
            output::print_list(&table, reply.value.len(), "No releases.");
            Ok(())
        }
    }
}

pub(crate) fn release_path(template: &str, id: ReleaseId) -> String {
    template.replace("{id}", &id.to_string())
}

async fn create_release(
    client: &CommandClient,
    args: CreateArgs,
    json: bool,
) -> anyhow::Result<()> {
    let file_name = args
        .file
        .file_name()
        .and_then(|name| name.to_str())
        .context("the artifact's file name is not UTF-8")?
        .to_owned();
    let target_name = args.name.unwrap_or_else(|| {
        let directory = match args.kind {
            ReleaseKind::OsImage => "os",
            ReleaseKind::PolicyBundle => "policy",
            ReleaseKind::ConfigurationBundle => "configuration",
        };
        format!("{directory}/{file_name}")
    });
    let (length, sha256) = hash_file(&args.file)?;
    let request = CreateReleaseRequest {
        target_name,
        kind: args.kind,
        release_version: args.release_version,
        rollback_index: args.rollback_index,
        channel: args.channel,
        compatible_models: args.compatible_models,
        length,
        sha256: hex::encode(sha256),
        expires_in_days: args.expires_in_days,
        justification: args.justification,
    };
    let created = client
        .post::<_, ReleaseView>(paths::RELEASES, &request, None)
        .await?;
    let bar = bytes_bar(length, "uploading");
    let file = tokio::fs::File::open(&args.file)
        .await
        .with_context(|| format!("cannot open `{}`", args.file.display()))?;
    let progress = bar.clone();
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20);
    let stream = futures_util::StreamExt::inspect(stream, move |chunk| {
        if let Ok(chunk) = chunk {
            progress.inc(chunk.len() as u64);
        }
    });
    let uploaded = client
        .put_stream::<ReleaseView>(
            &release_path(paths::RELEASE_ARTIFACT, created.value.id),
            reqwest::Body::wrap_stream(stream),
            length,
        )
        .await;
    bar.finish_and_clear();
    let uploaded = uploaded?;
    print_release(&uploaded.value, &uploaded.raw, json)?;
    if let (false, Some(approval)) = (json, uploaded.value.approval) {
        {
            eprintln!(
                "Signing needs approval {approval}: another administrator runs \
                 `enigm admin approvals approve {approval}`; then `enigm release sign {}` on the \
                 signing workstation.",
                uploaded.value.id
            );
        }
    }
    Ok(())
}

/// Length and SHA-256 of a file, read once with a progress bar.
pub(crate) fn hash_file(path: &Path) -> anyhow::Result<(u64, [u8; 32])> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
    let length = file
        .metadata()
        .with_context(|| format!("cannot read `{}`", path.display()))?
        .len();
    let bar = bytes_bar(length, "hashing");
    let mut digest = enigm_crypto::Sha256Stream::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut read = 0u64;
    loop {
        let n = file
            .read(&mut buffer)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        let Some(chunk) = buffer.get(..n) else { break };
        if chunk.is_empty() {
            break;
        }
        digest.update(chunk);
        read += n as u64;
        bar.set_position(read);
    }
    bar.finish_and_clear();
    anyhow::ensure!(
        read == length,
        "`{}` changed while it was read",
        path.display()
    );
    Ok((length, digest.finish()))
}

/// A byte-count progress bar on stderr when it is a terminal; hidden otherwise.
pub(crate) fn bytes_bar(length: u64, message: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(length);
    let style = ProgressStyle::with_template(
        "{msg:>10} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} ({eta})",
    )
    .map(|style| style.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(message);
    bar
}

/// The state as the tables show it: a superseded release names the release that superseded it
/// (by the 8 characters the listing shows).
fn state_text(release: &ReleaseView) -> String {
    match release.superseded_by {
        Some(by) => format!("{} by {}", release.state, output::short_id(by)),
        None => release.state.to_string(),
    }
}

pub(crate) fn print_release(
    release: &ReleaseView,
    raw: &serde_json::Value,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        return output::print_json(raw);
    }
    output::print_table(&release_table(release));
    Ok(())
}

/// One release as a FIELD / VALUE table.
pub(crate) fn release_table(release: &ReleaseView) -> comfy_table::Table {
    let mut table = output::new_table(&["FIELD", "VALUE"]);
    let rows: [(&str, String); 14] = [
        ("id", release.id.to_string()),
        ("target", output::clean(&release.target_name)),
        ("kind", release.kind.as_str().to_owned()),
        ("version", output::clean(&release.release_version)),
        ("rollback index", release.rollback_index.to_string()),
        ("channel", output::clean(&release.channel)),
        (
            "models",
            output::clean(&release.compatible_models.join(", ")),
        ),
        ("length", release.length.to_string()),
        ("sha256", release.sha256.clone()),
        ("expires", release.expires_at.clone()),
        ("state", state_text(release)),
        (
            "approval",
            release
                .approval
                .map_or_else(|| "-".to_owned(), |id| id.to_string()),
        ),
        (
            "artifact",
            if release.artifact_stored {
                "stored".to_owned()
            } else {
                "not uploaded".to_owned()
            },
        ),
        (
            "installs",
            format!(
                "{} installed, {} rejected, {} rolled back",
                release.installs.installed, release.installs.rejected, release.installs.rolled_back
            ),
        ),
    ];
    for (field, value) in rows {
        table.add_row(vec![field.to_owned(), value]);
    }
    table
}
