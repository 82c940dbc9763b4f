//! `enigm release sign ID`, on the signing workstation: once another administrator approved the
//! release, sign its payload statement with the Release-Signing key and the next targets
//! metadata (the current targets plus this release) with the Manifest Signing (targets) key,
//! then hand them to Command, which verifies both before storing anything.
//!
//! The workstation trusts its own root file (written by `enigm ota keys init`) and walks
//! Command's newer roots from it, so a Command that lies about the keys cannot make it sign
//! for the wrong repository. With `--artifact FILE` it also re-hashes the artifact it signs for.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use enigm_api::paths;
use enigm_api::releases::{ReleaseView, RepositoryView};
use enigm_ota::client::TrustedMetadata;
use enigm_ota::metadata::{Targets, verify_role};
use enigm_ota::release::ReleaseFields;
use enigm_ota::repository::{next_targets, release_entry};
use enigm_ota::sign_metadata;
use enigm_types::ReleaseState;

use super::keys::{KeySourceArgs, WorkstationRole};
use crate::client::CommandClient;
use crate::release::{hash_file, print_release, release_path};
use crate::secrets::PinSource;

#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// The release id, or a unique prefix of it (at least 4 characters).
    id: String,
    #[command(flatten)]
    keys: KeySourceArgs,
    /// The root metadata this workstation trusts (from `enigm ota keys init`).
    #[arg(long, value_name = "FILE", default_value = "root.json")]
    trusted_root: PathBuf,
    /// The artifact, to check that it is what the release declares before signing.
    #[arg(long, value_name = "FILE")]
    artifact: Option<PathBuf>,
    /// The label of the Release-Signing key (default: the key on the token whose key id
    /// Command's newest root names for release signing).
    #[arg(long, value_name = "LABEL")]
    release_key_label: Option<String>,
    /// The label of the targets (Manifest Signing) key (default: the key on the token whose key
    /// id Command's newest root names for targets, e.g. after `enigm ota keys rotate --role
    /// targets`).
    #[arg(long, value_name = "LABEL")]
    targets_key_label: Option<String>,
}

pub(crate) async fn run(
    client: &CommandClient,
    pins: &PinSource,
    args: SignArgs,
    json: bool,
) -> anyhow::Result<()> {
    let id = crate::admin::resolve::release(client, &args.id).await?;
    let release = client
        .get::<ReleaseView>(&release_path(paths::RELEASE, id))
        .await?
        .value;
    anyhow::ensure!(
        release.state == ReleaseState::Approved,
        "release {} is {}: only an approved release can be signed",
        release.id,
        release.state
    );
    if let Some(artifact) = &args.artifact {
        let (length, sha256) = hash_file(artifact)?;
        anyhow::ensure!(
            length == release.length && hex::encode(sha256) == release.sha256,
            "`{}` is not the artifact the release declares; nothing was signed",
            artifact.display()
        );
    }
    let trusted_bytes = std::fs::read(&args.trusted_root)
        .with_context(|| format!("cannot read `{}`", args.trusted_root.display()))?;
    let mut trusted =
        TrustedMetadata::new(&trusted_bytes).context("the trusted root does not verify")?;
    let repository = client
        .get::<RepositoryView>(paths::OTA_REPOSITORY)
        .await?
        .value;
    let latest = repository
        .root_version
        .context("the repository has no root metadata")?;
    let mut roots = vec![trusted.root().clone()];
    for version in trusted.root().version.saturating_add(1)..=latest {
        let bytes = super::fetch_metadata(client, &format!("{version}.root.json")).await?;
        trusted
            .update_root(&bytes)
            .with_context(|| format!("Command's root version {version} does not chain"))?;
        roots.push(trusted.root().clone());
    }
    // The current targets were signed under one of the roots of the chain (newest first).
    let previous: Option<Targets> = match repository.targets_version {
        Some(version) => {
            let bytes = super::fetch_metadata(client, &format!("{version}.targets.json")).await?;
            let verified = roots.iter().rev().find_map(|root| {
                let role = root.role("targets").ok()?;
                verify_role::<Targets>(&bytes, &root.keys, role).ok()
            });
            Some(
                verified
                    .context("the current targets metadata does not verify under any root")?
                    .into_signed(),
            )
        }
        None => None,
    };
    let expires = enigm_ota::time::parse_expiry(&release.expires_at.replace("+00:00", "Z"))
        .or_else(|| {
            time::OffsetDateTime::parse(
                &release.expires_at,
                &time::format_description::well_known::Rfc3339,
            )
            .ok()
            .and_then(|at| i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok())
            .map(enigm_types::Timestamp::from_unix_millis)
        })
        .context("the release's expiry is unreadable")?;
    let fields = ReleaseFields {
        kind: release.kind.as_str().to_owned(),
        release_version: release.release_version.clone(),
        rollback_index: release.rollback_index,
        channel: release.channel.clone(),
        hardware: release.compatible_models.clone(),
        expires: enigm_ota::time::format_expiry(expires),
        payload_signatures: Vec::new(),
    };
    let store = args.keys.open()?;
    // The keys are found by the key ids the newest root names, so a rotated key (another label)
    // needs no flag; a label given is checked against them before anything is signed.
    let newest = trusted.root();
    let (_, release_key) = store.for_role(
        newest,
        WorkstationRole::Release,
        args.release_key_label.as_deref(),
        "--release-key-label",
    )?;
    let (_, targets_key) = store.for_role(
        newest,
        WorkstationRole::Targets,
        args.targets_key_label.as_deref(),
        "--targets-key-label",
    )?;
    let entry = release_entry(
        &release.target_name,
        release.length,
        &release.sha256,
        &fields,
        &[&release_key],
    )?;
    let targets = next_targets(previous.as_ref(), &release.target_name, entry, expires);
    let bytes = sign_metadata(&targets, &[&targets_key])?;
    let pin = pins.obtain()?;
    let signed = client
        .post_raw::<ReleaseView>(
            &release_path(paths::RELEASE_SIGNATURES, id),
            bytes,
            Some(&pin),
        )
        .await?;
    print_release(&signed.value, &signed.raw, json)
}
