//! `enigm ota`: the repository's keys and a static export.
//!
//! - `keys init` (once, on the signing workstation): creates the root, targets and
//!   Release-Signing keys in a PKCS#11 token (or development key files), signs the first root
//!   metadata naming them and Command's online snapshot and timestamp keys and pinning its
//!   director key (unless `--no-director`), and installs it on Command. The root file it
//!   writes is what devices are provisioned with.
//! - `keys rotate`: a new key for one role, through a new root version signed by the old and
//!   the new root thresholds; it names Command's online keys as they are now, and pins its
//!   director key when the root pinned one or `--director` asks.
//! - `keys show`: the current root's roles, keys, thresholds and expiry, its director pin, and
//!   whether they name Command's online keys.
//! - `export --dir DIR`: the repository as static files.

use std::collections::BTreeMap;
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
        /// The output directory (required).
        #[arg(long, value_name = "DIR", required_unless_present = "out")]
        dir: Option<PathBuf>,
        /// The output directory, as a positional argument (the earlier form, kept working).
        #[arg(hide = true, value_name = "DIR", conflicts_with = "dir")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create the root, targets and Release-Signing keys and install the first root metadata.
    Init(keys::InitArgs),
    /// Replace one role's key through a new root version.
    Rotate(keys::RotateArgs),
    /// The current root: roles, keys, thresholds and expiry; with the workstation's token,
    /// the label of each key it holds.
    Show(keys::OptionalKeySourceArgs),
    /// Delegate the policy bundles to Command's online snapshot key in the targets metadata
    /// (once for a repository made before policy bundles; again after Command's online keys
    /// moved).
    DelegateBundles(keys::DelegateArgs),
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
        OtaCommand::Keys(KeysCommand::Show(keys)) => show(&client, &keys, global.json).await,
        OtaCommand::Keys(KeysCommand::DelegateBundles(delegate)) => {
            keys::delegate_bundles(&client, &pins, delegate, global.json).await
        }
        OtaCommand::Export { dir, out } => {
            let out = dir
                .or(out)
                .context("name the output directory: --dir DIR")?;
            export::run(&client, &out, global.json).await
        }
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

async fn show(
    client: &CommandClient,
    keys: &keys::OptionalKeySourceArgs,
    json: bool,
) -> anyhow::Result<()> {
    let root_bytes = latest_root(client).await?;
    let online = client.get::<OnlineKeysView>(paths::OTA_ONLINE_KEYS).await?;
    let (_, root) = enigm_ota::metadata::parse::<enigm_ota::metadata::Root>(&root_bytes)
        .context("Command's root metadata is malformed")?;
    // Labels are the workstation's own names for its keys: only its token knows them.
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    if let Some(store) = keys.open()? {
        for (label, key) in store.labelled_keys()? {
            labels.insert(key.key_id(), label);
        }
    }
    let online_id = |value: &serde_json::Value| {
        serde_json::from_value::<enigm_ota::Key>(value.clone())
            .map(|key| key.key_id())
            .ok()
    };
    let mut online_ids = Vec::new();
    for (role, value) in [
        ("snapshot", &online.value.snapshot),
        ("timestamp", &online.value.timestamp),
        ("director", &online.value.director),
    ] {
        if let Some(id) = online_id(value) {
            labels.insert(id.clone(), format!("Command's online {role} key"));
            online_ids.push(id);
        }
    }
    let label_of = |id: &str| labels.get(id).cloned().unwrap_or_else(|| "-".to_owned());
    let mut rows: Vec<(String, u64, Vec<String>, Vec<String>)> = Vec::new();
    for name in ["root", "targets", "snapshot", "timestamp"] {
        let Some(role) = root.roles.get(name) else {
            continue;
        };
        let schemes = role
            .keyids
            .iter()
            .map(|id| {
                root.keys
                    .get(id)
                    .map_or("?".to_owned(), |key| key.scheme.clone())
            })
            .collect();
        rows.push((
            name.to_owned(),
            role.threshold,
            role.keyids.clone(),
            schemes,
        ));
    }
    if let Ok(release) = enigm_ota::release::release_signing(&root) {
        rows.push((
            "release-signing".to_owned(),
            release.threshold,
            release.keys.keys().cloned().collect(),
            release
                .keys
                .values()
                .map(|key| key.scheme.clone())
                .collect(),
        ));
    }
    // A root without a director pin is valid (its devices update as before the director); a
    // pin that does not parse is shown as such: devices take no update under it.
    let director = enigm_ota::director::director_keys(&root);
    if let Ok(Some(pin)) = &director {
        rows.push((
            "director".to_owned(),
            pin.threshold(),
            pin.keys().keys().cloned().collect(),
            pin.keys().values().map(|key| key.scheme.clone()).collect(),
        ));
    }
    let director_online_id = online_id(&online.value.director);
    let online_named = rows.iter().all(|(name, _, ids, _)| match name.as_str() {
        "snapshot" | "timestamp" => ids.iter().all(|id| online_ids.contains(id)),
        "director" => ids.iter().all(|id| director_online_id.as_ref() == Some(id)),
        _ => true,
    });
    let director_pinned = matches!(director, Ok(Some(_)));
    if json {
        let value: serde_json::Value =
            serde_json::from_slice(&root_bytes).context("the root metadata is not JSON")?;
        return output::print_json(&serde_json::json!({
            "root": value,
            "online_keys": online.raw,
            "online_keys_named": online_named,
            "director_pinned": director_pinned,
            "labels": labels,
        }));
    }
    println!("root version {} (expires {})", root.version, root.expires);
    let mut table = output::new_table(&["ROLE", "THRESHOLD", "KEY IDS", "SCHEME", "LABEL"]);
    for (name, threshold, ids, schemes) in &rows {
        table.add_row(vec![
            name.clone(),
            threshold.to_string(),
            ids.iter()
                .map(|id| keys::short_key_id(id))
                .collect::<Vec<_>>()
                .join(", "),
            schemes.join(", "),
            ids.iter()
                .map(|id| label_of(id))
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    output::print_table(&table);
    if keys.is_empty() {
        println!(
            "Key labels: pass the workstation's token (--pkcs11-module PATH --token-label LABEL)."
        );
    }
    const ROTATE: &str = "enigm ota keys rotate --role root --pkcs11-module MODULE \
        --token-label LABEL --token-pin-file FILE";
    if !online_named {
        println!(
            "warning: this root does not name Command's online snapshot, timestamp and director \
             keys; on the signing workstation run: {ROTATE}"
        );
    }
    if let Err(error) = &director {
        println!(
            "warning: {error}: devices that trust this root take no update; on the signing \
             workstation run: {ROTATE}"
        );
    } else if !director_pinned {
        println!(
            "note: this root pins no director: devices that trust it install the newest release \
             they accept, without Command's per-device offer and rollout; to pin Command's \
             director key, on the signing workstation run: {ROTATE} --director"
        );
    }
    Ok(())
}
