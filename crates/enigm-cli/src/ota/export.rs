//! `enigm ota export --dir DIR`: the repository as static files for any web server or CDN, in the
//! layout Command serves (`metadata/N.root.json`, `N.targets.json`, `N.snapshot.json`,
//! `timestamp.json`; `targets/DIR/SHA256.NAME`). Every root version is written (clients walk
//! the chain); the current targets, snapshot and timestamp; the delegated role the snapshot
//! lists (the policy bundles'); each published artifact and each group's newest bundle.
//! Files are written to a temporary name and renamed, so a mirror never serves half a file.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use enigm_api::paths;
use enigm_api::releases::{ReleaseView, RepositoryView};
use enigm_types::ReleaseState;

use crate::client::CommandClient;

/// The most bytes one metadata file may have when exported.
const MAX_METADATA_BYTES: u64 = 64 * 1024 * 1024;

pub(crate) async fn run(client: &CommandClient, out: &Path, json: bool) -> anyhow::Result<()> {
    let repository = client
        .get::<RepositoryView>(paths::OTA_REPOSITORY)
        .await?
        .value;
    let root_version = repository
        .root_version
        .context("the repository has no root metadata yet (`enigm ota keys init`)")?;
    let metadata_dir = out.join("metadata");
    std::fs::create_dir_all(&metadata_dir)
        .with_context(|| format!("cannot create `{}`", metadata_dir.display()))?;
    let mut files: Vec<String> = (1..=root_version)
        .map(|version| format!("{version}.root.json"))
        .collect();
    if let (Some(targets), Some(snapshot), Some(_)) = (
        repository.targets_version,
        repository.snapshot_version,
        repository.timestamp_version,
    ) {
        files.push(format!("{targets}.targets.json"));
        files.push(format!("{snapshot}.snapshot.json"));
        files.push("timestamp.json".to_owned());
    }
    let mut delegated = Vec::new();
    for file in &files {
        let bytes = fetch(
            client,
            &format!("{}/{file}", paths::TUF_METADATA_PREFIX),
            MAX_METADATA_BYTES,
        )
        .await?;
        if file.ends_with(".snapshot.json") {
            delegated = delegated_files(&bytes);
        }
        write_atomically(&metadata_dir.join(file), &bytes)?;
    }
    // The delegated roles the snapshot lists (the policy bundles', which Command signs).
    for file in &delegated {
        let bytes = fetch(
            client,
            &format!("{}/{file}", paths::TUF_METADATA_PREFIX),
            MAX_METADATA_BYTES,
        )
        .await?;
        write_atomically(&metadata_dir.join(file), &bytes)?;
    }
    files.extend(delegated);
    let mut artifacts = 0usize;
    let bundles = client
        .get::<enigm_api::policy_bundles::PolicyBundleList>(paths::POLICY_BUNDLES)
        .await?
        .value;
    for bundle in &bundles.items {
        let path = hash_prefixed(&bundle.target_name, &bundle.sha256);
        let bytes = fetch(
            client,
            &format!("{}/{path}", paths::TUF_TARGETS_PREFIX),
            enigm_ota::policy_bundle::MAX_BUNDLE_BYTES,
        )
        .await?;
        anyhow::ensure!(
            hex::encode(enigm_crypto::sha256(&bytes)) == bundle.sha256,
            "the policy bundle {} does not match its digest; export stopped",
            bundle.target_name
        );
        let destination = out.join("targets").join(&path);
        if let Some(parent) = destination.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create `{}`", parent.display()))?;
        }
        write_atomically(&destination, &bytes)?;
        artifacts += 1;
    }
    let releases = client.get::<Vec<ReleaseView>>(paths::RELEASES).await?.value;
    for release in releases
        .iter()
        // Command keeps serving a superseded release's artifact; so does the mirror.
        .filter(|release| {
            matches!(
                release.state,
                ReleaseState::Published | ReleaseState::Superseded
            )
        })
    {
        let path = hash_prefixed(&release.target_name, &release.sha256);
        let destination = out.join("targets").join(&path);
        if let Some(parent) = destination.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create `{}`", parent.display()))?;
        }
        let bar = crate::release::bytes_bar(release.length, "exporting");
        let copied = download_checked(
            client,
            &format!("{}/{path}", paths::TUF_TARGETS_PREFIX),
            &destination,
            release,
            &bar,
        )
        .await;
        bar.finish_and_clear();
        copied?;
        artifacts += 1;
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"metadata": files, "artifacts": artifacts, "out": out})
        );
    } else {
        println!(
            "Exported {} metadata files and {artifacts} artifacts to {}",
            files.len(),
            out.display()
        );
    }
    Ok(())
}

/// The versioned files of the delegated roles a snapshot lists (`N.ROLE.json`).
fn delegated_files(snapshot: &[u8]) -> Vec<String> {
    let Ok((_, snapshot)) = enigm_ota::metadata::parse::<enigm_ota::metadata::Snapshot>(snapshot)
    else {
        return Vec::new();
    };
    snapshot
        .meta
        .iter()
        .filter(|(name, _)| name.as_str() != "targets.json")
        .map(|(name, meta)| format!("{}.{name}", meta.version))
        .collect()
}

/// `dir/name` → `dir/SHA256.name`, the name TUF clients fetch with consistent snapshots.
pub(crate) fn hash_prefixed(target_name: &str, sha256: &str) -> String {
    match target_name.rsplit_once('/') {
        Some((directory, name)) => format!("{directory}/{sha256}.{name}"),
        None => format!("{sha256}.{target_name}"),
    }
}

async fn fetch(client: &CommandClient, path: &str, limit: u64) -> anyhow::Result<Vec<u8>> {
    let mut response = client.get_response(path).await?;
    anyhow::ensure!(
        response.status().is_success(),
        "{path}: the server answered {}",
        response.status()
    );
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.context("download interrupted")? {
        anyhow::ensure!(
            (bytes.len() + chunk.len()) as u64 <= limit,
            "{path} is larger than {limit} bytes"
        );
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Streams an artifact to `destination` (through a temporary file), checking its length and
/// digest before it takes its name.
async fn download_checked(
    client: &CommandClient,
    path: &str,
    destination: &Path,
    release: &ReleaseView,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt as _;

    let mut response = client.get_response(path).await?;
    anyhow::ensure!(
        response.status().is_success(),
        "{path}: the server answered {}",
        response.status()
    );
    let temporary = destination.with_extension("partial");
    let mut file = tokio::fs::File::create(&temporary)
        .await
        .with_context(|| format!("cannot write `{}`", temporary.display()))?;
    let mut digest = enigm_crypto::Sha256Stream::new();
    let mut length = 0u64;
    while let Some(chunk) = response.chunk().await.context("download interrupted")? {
        length += chunk.len() as u64;
        anyhow::ensure!(
            length <= release.length,
            "{path} is longer than its release says; export stopped"
        );
        digest.update(&chunk);
        file.write_all(&chunk).await?;
        bar.set_position(length);
    }
    file.sync_all().await?;
    anyhow::ensure!(
        length == release.length && hex::encode(digest.finish()) == release.sha256,
        "the artifact of {} does not match its length and digest; export stopped",
        release.target_name
    );
    tokio::fs::rename(&temporary, destination)
        .await
        .with_context(|| format!("cannot write `{}`", destination.display()))?;
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let temporary: PathBuf = path.with_extension("partial");
    std::fs::write(&temporary, bytes)
        .with_context(|| format!("cannot write `{}`", temporary.display()))?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names_get_the_digest_on_their_last_segment() {
        assert_eq!(hash_prefixed("os/a.img", "ab"), "os/ab.a.img");
        assert_eq!(hash_prefixed("a.img", "ab"), "ab.a.img");
        assert_eq!(hash_prefixed("x/y/z", "cd"), "x/y/cd.z");
    }
}
