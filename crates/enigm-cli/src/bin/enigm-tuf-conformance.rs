//! `enigm-tuf-conformance`: the client-under-test executable of the TUF conformance suite
//! (theupdateframework/tuf-conformance, CLIENT-CLI.md), built on `enigm-ota`'s client, the one
//! the agent uses. Every decision is the refresh machine's; this program only does HTTP, files
//! and the clock.
//!
//! ```text
//! enigm-tuf-conformance --metadata-dir D init ROOT
//! enigm-tuf-conformance --metadata-dir D --metadata-url U refresh
//! enigm-tuf-conformance --metadata-dir D --metadata-url U --target-name N [--target-name N…]
//!     --target-base-url T --target-dir DIR download
//! ```
//! Exit status 0 on success, 1 on any failure.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use enigm_ota::client::{
    FetchFailure, Limits, Refresh, TargetSearch, TrustedMetadata, load_trusted, quote_role,
};
use enigm_ota::{ArtifactVerifier, VerifiedTarget, safe_local_path};
use enigm_types::Timestamp;

// The agent's bounded reader, so that both treat a repository alike.
use enigm_agent::tuf_fetch;

const METADATA_FILES: [&str; 4] = [
    "root.json",
    "timestamp.json",
    "snapshot.json",
    "targets.json",
];
/// The most bytes of one artifact this client downloads when the metadata names no bound (it
/// always does: `length` is required).
const MAX_TARGET_BYTES: u64 = 16 * 1024 * 1024 * 1024;

#[derive(Debug, Default)]
struct Options {
    metadata_dir: Option<PathBuf>,
    metadata_url: Option<String>,
    target_names: Vec<String>,
    target_base_url: Option<String>,
    target_dir: Option<PathBuf>,
    command: Vec<String>,
}

fn parse(arguments: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let mut options = Options::default();
    let mut arguments = arguments.peekable();
    while let Some(argument) = arguments.next() {
        let mut value = || {
            arguments
                .next()
                .with_context(|| format!("{argument} needs a value"))
        };
        match argument.as_str() {
            "--metadata-dir" => options.metadata_dir = Some(PathBuf::from(value()?)),
            "--metadata-url" => options.metadata_url = Some(value()?),
            "--target-name" => options.target_names.push(value()?),
            "--target-base-url" => options.target_base_url = Some(value()?),
            "--target-dir" => options.target_dir = Some(PathBuf::from(value()?)),
            other if other.starts_with("--") => anyhow::bail!("unknown option {other}"),
            other => options.command.push(other.to_owned()),
        }
    }
    Ok(options)
}

fn now() -> Timestamp {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        });
    Timestamp::from_unix_millis(millis)
}

fn join_url(base: &str, name: &str) -> String {
    format!("{}/{name}", base.trim_end_matches('/'))
}

async fn fetch(
    http: &reqwest::Client,
    url: &str,
    max_length: u64,
) -> Result<Vec<u8>, FetchFailure> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|_| FetchFailure::Unavailable)?;
    tuf_fetch::read_bounded(response, max_length).await
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, path)?;
    Ok(())
}

async fn refresh(
    http: &reqwest::Client,
    metadata_dir: &Path,
    metadata_url: &str,
) -> anyhow::Result<TrustedMetadata> {
    let read = |name: &str| std::fs::read(metadata_dir.join(name)).ok();
    let [root, timestamp, snapshot, targets] = METADATA_FILES.map(read);
    let root = root.context("no trusted root: run init first")?;
    let trusted = load_trusted(
        &root,
        timestamp.as_deref(),
        snapshot.as_deref(),
        targets.as_deref(),
    )
    .context("the trusted root does not verify")?;
    let mut refresh = Refresh::new(trusted, Limits::default(), now());
    while let Some(request) = refresh.next_request() {
        let fetched = fetch(
            http,
            &join_url(metadata_url, &request.file_name),
            request.max_length,
        )
        .await;
        if let Some(persist) = refresh.provide(fetched)? {
            write_atomically(&metadata_dir.join(&persist.file_name), &persist.bytes)?;
        }
    }
    Ok(refresh.into_trusted())
}

/// Finds `name` through the delegation graph, fetching (or reading back) delegated roles.
async fn find_target(
    http: &reqwest::Client,
    trusted: &mut TrustedMetadata,
    metadata_dir: &Path,
    metadata_url: &str,
    name: &str,
) -> anyhow::Result<VerifiedTarget> {
    let mut search = TargetSearch::new(name, Limits::default(), now());
    while let Some(request) = search.next_request(trusted)? {
        if let Some((role, _)) = search.waiting_for() {
            let local = metadata_dir.join(format!("{}.json", quote_role(role)));
            if std::fs::read(&local).is_ok_and(|bytes| search.provide_local(trusted, &bytes)) {
                continue;
            }
        }
        let fetched = fetch(
            http,
            &join_url(metadata_url, &request.file_name),
            request.max_length,
        )
        .await;
        if let Some(persist) = search.provide(trusted, fetched)? {
            write_atomically(&metadata_dir.join(&persist.file_name), &persist.bytes)?;
        }
    }
    search
        .result()
        .flatten()
        .with_context(|| format!("no target {name}"))
}

async fn download(
    http: &reqwest::Client,
    trusted: &TrustedMetadata,
    target: VerifiedTarget,
    base_url: &str,
    target_dir: &Path,
) -> anyhow::Result<()> {
    let name = target.name().to_owned();
    let name = name.as_str();
    // One local file per target name, whatever its path: the name percent-encoded.
    let local_name: String = name
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-_.".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect();
    safe_local_path(&local_name).map_err(|error| anyhow::anyhow!("{error}"))?;
    let path = target_dir.join(&local_name);
    if let Ok(existing) = std::fs::read(&path) {
        let mut verifier = ArtifactVerifier::new(&target)?;
        if verifier.update(&existing).is_ok() && verifier.finish().is_ok() {
            return Ok(());
        }
    }
    let remote = if trusted.root().consistent_snapshot {
        // The digest in the file name is the first the metadata gives (SHA-256 when there).
        let sha256 = target
            .sha256()
            .or_else(|| target.file().hashes.values().next().map(String::as_str))
            .context("the target has no hash")?;
        match name.rsplit_once('/') {
            Some((directory, file)) => format!("{directory}/{sha256}.{file}"),
            None => format!("{sha256}.{name}"),
        }
    } else {
        name.to_owned()
    };
    let bytes = fetch(
        http,
        &join_url(base_url, &remote),
        target.length().min(MAX_TARGET_BYTES),
    )
    .await
    .map_err(|failure| anyhow::anyhow!("download of {name} failed: {failure:?}"))?;
    let mut verifier = ArtifactVerifier::new(&target)?;
    verifier.update(&bytes)?;
    verifier.finish()?;
    write_atomically(&path, &bytes)
}

async fn run(options: Options) -> anyhow::Result<()> {
    let metadata_dir = options
        .metadata_dir
        .clone()
        .context("--metadata-dir is required")?;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    match options.command.as_slice() {
        [command, root] if command == "init" => {
            std::fs::create_dir_all(&metadata_dir)?;
            let bytes = std::fs::read(root).with_context(|| format!("cannot read {root}"))?;
            write_atomically(&metadata_dir.join("root.json"), &bytes)
        }
        [command] if command == "refresh" => {
            let url = options
                .metadata_url
                .as_deref()
                .context("--metadata-url is required")?;
            refresh(&http, &metadata_dir, url).await.map(|_| ())
        }
        [command] if command == "download" => {
            let url = options
                .metadata_url
                .as_deref()
                .context("--metadata-url is required")?;
            let base = options
                .target_base_url
                .as_deref()
                .context("--target-base-url is required")?;
            let target_dir = options
                .target_dir
                .as_deref()
                .context("--target-dir is required")?;
            let mut trusted = refresh(&http, &metadata_dir, url).await?;
            for name in &options.target_names {
                let target = find_target(&http, &mut trusted, &metadata_dir, url, name).await?;
                download(&http, &trusted, target, base, target_dir).await?;
            }
            Ok(())
        }
        other => anyhow::bail!("unknown command {other:?}"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let result = match parse(std::env::args().skip(1)) {
        Ok(options) => run(options).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("enigm-tuf-conformance: {error:#}");
            ExitCode::FAILURE
        }
    }
}
