//! `enigm ota`: the repository's keys and a static export.
//!
//! - `keys init` (once, on the signing workstation): creates the root, targets and
//!   Release-Signing keys in a PKCS#11 token (or development key files), signs the first root
//!   metadata naming them and Command's online snapshot and timestamp keys, and installs it on
//!   Command. The root file it writes is what devices are provisioned with.
//! - `keys rotate`: a new key for one role, through a new root version signed by the old and
//!   the new root thresholds.
//! - `keys show`: the current root's roles, keys, thresholds and expiry.
//! - `export DIR`: the repository as static files.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use enigm_api::paths;
use enigm_api::releases::{OnlineKeysView, RepositoryView};

use crate::cli::GlobalArgs;
use crate::client::CommandClient;
use crate::connect;
use crate::output;
use crate::secrets::PinSource;

mod export;
pub(crate) mod keys;
pub(crate) mod sign;

#[derive(Debug, Args)]
pub(crate) struct OtaArgs {
    /// File whose content is the 6-digit critical-operation PIN (Command's, not the token's).
    #[arg(long, global = true, value_name = "FILE")]
    pin_file: Option<PathBuf>,
    #[command(subcommand)]
    command: OtaCommand,
}

#[derive(Debug, Subcommand)]
enum OtaCommand {
    /// The repository's signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Write the repository (metadata and published artifacts) as static files to DIR.
    Export {
        /// The output directory.
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create the root, targets and Release-Signing keys and install the first root metadata.
    Init(keys::InitArgs),
    /// Replace one role's key through a new root version.
    Rotate(keys::RotateArgs),
    /// The current root: roles, keys, thresholds and expiry.
    Show,
}

pub(crate) async fn run(global: &GlobalArgs, args: OtaArgs) -> anyhow::Result<()> {
    let client = connect::connect(global)?;
    let pins = PinSource::new(args.pin_file);
    match args.command {
        OtaCommand::Keys(KeysCommand::Init(init)) => {
            keys::init(&client, &pins, init, global.json).await
        }
        OtaCommand::Keys(KeysCommand::Rotate(rotate)) => {
            keys::rotate(&client, &pins, rotate, global.json).await
        }
        OtaCommand::Keys(KeysCommand::Show) => show(&client, global.json).await,
        OtaCommand::Export { out } => export::run(&client, &out, global.json).await,
    }
}

/// The newest root metadata Command serves, as bytes.
pub(crate) async fn latest_root(client: &CommandClient) -> anyhow::Result<Vec<u8>> {
    let repository = client
        .get::<RepositoryView>(paths::OTA_REPOSITORY)
        .await?
        .value;
    let version = repository
        .root_version
        .context("the repository has no root metadata yet: run `enigm ota keys init`")?;
    fetch_metadata(client, &format!("{version}.root.json")).await
}

/// One metadata file from Command's repository.
pub(crate) async fn fetch_metadata(client: &CommandClient, file: &str) -> anyhow::Result<Vec<u8>> {
    const LIMIT: usize = 64 * 1024 * 1024;
    let path = format!("{}/{file}", paths::TUF_METADATA_PREFIX);
    let mut response = client.get_response(&path).await?;
    anyhow::ensure!(
        response.status().is_success(),
        "{path}: the server answered {}",
        response.status()
    );
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.context("download interrupted")? {
        anyhow::ensure!(
            bytes.len() + chunk.len() <= LIMIT,
            "{path} is larger than {LIMIT} bytes"
        );
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

async fn show(client: &CommandClient, json: bool) -> anyhow::Result<()> {
    let root_bytes = latest_root(client).await?;
    let online = client.get::<OnlineKeysView>(paths::OTA_ONLINE_KEYS).await?;
    let (_, root) = enigm_ota::metadata::parse::<enigm_ota::metadata::Root>(&root_bytes)
        .context("Command's root metadata is malformed")?;
    if json {
        let value: serde_json::Value =
            serde_json::from_slice(&root_bytes).context("the root metadata is not JSON")?;
        return output::print_json(&serde_json::json!({
            "root": value,
            "online_keys": online.raw,
        }));
    }
    println!("root version {} (expires {})", root.version, root.expires);
    let mut table = output::new_table(&["ROLE", "THRESHOLD", "KEY IDS", "SCHEME"]);
    let short = |id: &str| id.chars().take(16).collect::<String>();
    for name in ["root", "targets", "snapshot", "timestamp"] {
        let Some(role) = root.roles.get(name) else {
            continue;
        };
        table.add_row(vec![
            name.to_owned(),
            role.threshold.to_string(),
            role.keyids
                .iter()
                .map(|id| short(id))
                .collect::<Vec<_>>()
                .join(", "),
            role.keyids
                .iter()
                .map(|id| root.keys.get(id).map_or("?", |key| key.scheme.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    if let Ok(release) = enigm_ota::release::release_signing(&root) {
        table.add_row(vec![
            "release-signing".to_owned(),
            release.threshold.to_string(),
            release
                .keys
                .keys()
                .map(|id| short(id))
                .collect::<Vec<_>>()
                .join(", "),
            release
                .keys
                .values()
                .map(|key| key.scheme.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    output::print_table(&table);
    Ok(())
}
