//! The policy bundle on the device: found through the TUF delegation Command signs, verified,
//! installed whole beside the configuration bundles (`ota/bundles/policy-bundle`, see
//! `crate::bundles`), and read back as the [`PolicyStatus`] the core works under.
//!
//! The check-in answer names the group's current bundle target; the name only says where to
//! look. What vouches for it is the search through verified metadata (top-level targets, or the
//! `policy-bundles` delegation to Command's online key) and [`appraise_bundle`]: the group the
//! device already holds a bundle of (the first bundle pins it), a sequence number not below the
//! one held, and for the same number the same bytes. A refusal keeps the bundle in force (or
//! the baseline when there is none), is reported to Command, and is kept in
//! `ota/policy-refusal.json` so that the next check-in, even from a new process, reports
//! `policy-compliance` as `failed`.
//!
//! A bundle record that cannot be read (`ota/bundles/installed.json`) refuses every bundle until
//! it is removed, since it holds the rollback indexes and they are never guessed; it does not
//! stop the OS image update, whose state is the slot store's alone.

use std::path::Path;

use enigm_api::paths;
use enigm_api::releases::{InstallReportRequest, InstallReportResponse};
use enigm_ota::client::{Limits, TargetSearch, TrustedMetadata, quote_role};
use enigm_ota::policy_bundle::{
    Appraisal, HeldBundle, POLICY_BUNDLE_KIND, POLICY_BUNDLE_ROLE, appraise_bundle, parse_bundle,
    read_bundle,
};
use enigm_ota::slots::SlotImage;
use enigm_ota::{ArtifactVerifier, FetchFailure, VerifiedTarget};
use enigm_types::{InstallOutcome, ReasonCategory, Timestamp};

use crate::bundles::BundleStore;
use crate::core::{InForce, PolicyStatus, UpdateResult};
use crate::ota::write_atomically;

const REFUSAL_FILE: &str = "policy-refusal.json";

/// Why the last bundle Command named was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Refusal {
    reason: ReasonCategory,
    /// Unix milliseconds.
    at: i64,
}

/// The policy status the device holds, read from its state directory. Fail closed: a record or
/// bundle that cannot be read is no bundle in force; a refusal record that cannot be read is a
/// refusal.
pub(crate) fn status(ota_dir: &Path) -> PolicyStatus {
    let refused = match std::fs::read(ota_dir.join(REFUSAL_FILE)) {
        Ok(bytes) => Some(
            serde_json::from_slice::<Refusal>(&bytes)
                .map_or(ReasonCategory::UpdateMalformed, |refusal| refusal.reason),
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(_) => Some(ReasonCategory::UpdateMalformed),
    };
    match BundleStore::open(&bundles_dir(ota_dir)) {
        Ok(store) => PolicyStatus {
            in_force: in_force(&store),
            refused,
        },
        // A record that cannot be read is itself a reason nothing can be trusted.
        Err(_) => PolicyStatus {
            in_force: None,
            refused: refused.or(Some(ReasonCategory::UpdateMalformed)),
        },
    }
}

/// Where the policy bundle in force lies under a state directory.
pub fn held_bundle_path(state_dir: &Path) -> std::path::PathBuf {
    bundles_dir(&crate::ota::ota_dir(state_dir)).join(POLICY_BUNDLE_KIND)
}

/// The network policy of a policy bundle file (as the agent holds it), compiled, with its
/// name and version; `None` when the bundle has none. An error for a file that cannot be read
/// or is not a bundle whose network policy compiles: the caller fails closed.
pub fn network_policy(
    file: &Path,
) -> anyhow::Result<
    Option<(
        enigm_netpolicy::CompiledPolicy,
        enigm_api::network::NetworkPolicyRef,
    )>,
> {
    use anyhow::Context as _;
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .with_context(|| format!("could not open `{}`", file.display()))?
        .take(enigm_ota::policy_bundle::MAX_BUNDLE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("could not read `{}`", file.display()))?;
    let bundle = parse_bundle(&bytes)
        .map_err(|error| anyhow::anyhow!("`{}` is not a policy bundle: {error}", file.display()))?;
    let Some(bundled) = bundle
        .policies
        .get(enigm_types::PolicyKind::Network.as_str())
    else {
        return Ok(None);
    };
    let json = serde_json::to_vec(&bundled.content)?;
    let compiled = enigm_netpolicy::CompiledPolicy::from_json(&json).with_context(|| {
        format!(
            "the network policy in `{}` does not compile",
            file.display()
        )
    })?;
    let reference = enigm_api::network::NetworkPolicyRef {
        policy: bundled.policy_id.parse().with_context(|| {
            format!("the network policy in `{}` has no valid id", file.display())
        })?,
        name: bundled.name.clone(),
        version: u32::try_from(bundled.version)
            .context("the network policy's version is out of range")?,
    };
    Ok(Some((compiled, reference)))
}

fn bundles_dir(ota_dir: &Path) -> std::path::PathBuf {
    ota_dir.join("bundles")
}

/// The bundle in force: the installed file, which was verified before it was put in place.
fn in_force(store: &BundleStore) -> Option<InForce> {
    store.installed(POLICY_BUNDLE_KIND)?;
    let bytes = std::fs::read(store.path(POLICY_BUNDLE_KIND)).ok()?;
    let bundle = parse_bundle(&bytes).ok()?;
    Some(InForce {
        group: bundle.group,
        sequence: bundle.sequence,
        settings: bundle.agent,
    })
}

/// Fetches a repository path (metadata or target) within a byte bound.
pub(crate) trait Fetch {
    async fn fetch(&self, path: &str, max_length: u64) -> Result<Vec<u8>, FetchFailure>;
}

/// Brings the bundle `wanted` (the target the check-in named) in force if it is newer than the
/// one held; `None` when there was nothing to do. Refusals are reported through `report`.
pub(crate) async fn update<F, R>(
    trusted: &mut TrustedMetadata,
    ota_dir: &Path,
    wanted: &str,
    fetch: &F,
    report: &R,
    now: Timestamp,
) -> anyhow::Result<Option<UpdateResult>>
where
    F: Fetch,
    R: AsyncFn(InstallReportRequest) -> anyhow::Result<InstallReportResponse>,
{
    let outcome = match BundleStore::open(&bundles_dir(ota_dir)) {
        Ok(mut store) => install(trusted, ota_dir, &mut store, wanted, fetch, now).await?,
        Err(error) => {
            eprintln!(
                "warning: {error:#}; policy bundles are refused until `{}` is removed",
                bundles_dir(ota_dir).join("installed.json").display()
            );
            Err(ReasonCategory::UpdateMalformed)
        }
    };
    let version = sequence_of(wanted);
    match outcome {
        Ok(None) => {
            clear_refusal(ota_dir)?;
            Ok(None)
        }
        Ok(Some(())) => {
            clear_refusal(ota_dir)?;
            report(InstallReportRequest {
                target_name: wanted.to_owned(),
                release_version: version,
                outcome: InstallOutcome::Installed,
                reason: None,
            })
            .await?;
            Ok(Some(UpdateResult::Installed(wanted.to_owned())))
        }
        Err(reason) => {
            let refusal = Refusal {
                reason,
                at: now.unix_millis(),
            };
            write_atomically(&ota_dir.join(REFUSAL_FILE), &serde_json::to_vec(&refusal)?)?;
            let target_name = if enigm_ota::TargetName::parse(wanted).is_ok() {
                wanted.to_owned()
            } else {
                "unsafe-target-name".to_owned()
            };
            report(InstallReportRequest {
                target_name: target_name.clone(),
                release_version: version,
                outcome: InstallOutcome::Rejected,
                reason: Some(reason),
            })
            .await?;
            eprintln!(
                "warning: the policy bundle {target_name} was refused: {}",
                reason.as_str()
            );
            Ok(Some(UpdateResult::Rejected(target_name, reason)))
        }
    }
}

/// The number in a bundle target's name, as the release version of its install report.
fn sequence_of(name: &str) -> String {
    name.rsplit('/')
        .next()
        .and_then(|file| file.strip_suffix(".json"))
        .filter(|number| number.len() <= 20 && number.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or("-")
        .to_owned()
}

fn clear_refusal(ota_dir: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(ota_dir.join(REFUSAL_FILE)) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// `Ok(Some(()))`: installed; `Ok(None)`: the one held; `Err`: refused for that reason.
async fn install<F: Fetch>(
    trusted: &mut TrustedMetadata,
    ota_dir: &Path,
    store: &mut BundleStore,
    wanted: &str,
    fetch: &F,
    now: Timestamp,
) -> anyhow::Result<Result<Option<()>, ReasonCategory>> {
    let target = match search(trusted, &ota_dir.join("metadata"), wanted, fetch, now).await? {
        Ok(target) => target,
        Err(reason) => return Ok(Err(reason)),
    };
    let held_record = store.installed(POLICY_BUNDLE_KIND).cloned();
    let held_group = in_force(store).map(|in_force| in_force.group);
    // The first bundle pins the group; until then the name Command gave says which it is.
    let group = match held_group {
        Some(group) => group,
        None => wanted
            .strip_prefix(POLICY_BUNDLE_ROLE)
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default()
            .to_owned(),
    };
    let held = held_record.as_ref().map(|image| HeldBundle {
        sequence: image.rollback_index,
        sha256: &image.sha256,
    });
    let approved = match appraise_bundle(&target, &group, held) {
        Ok(Appraisal::Current) => return Ok(Ok(None)),
        Ok(Appraisal::Install(approved)) => approved,
        Err(rejection) => return Ok(Err(rejection.reason())),
    };
    let Ok(url) = crate::ota::target_url(&target) else {
        return Ok(Err(ReasonCategory::UpdateMalformed));
    };
    let sha256 = target.sha256().unwrap_or_default().to_owned();
    let bytes = match fetch.fetch(&url, target.length()).await {
        Ok(bytes) => bytes,
        Err(FetchFailure::TooLarge) => return Ok(Err(ReasonCategory::UpdateArtifactMismatch)),
        Err(_) => return Ok(Err(ReasonCategory::UpdateNotFound)),
    };
    if let Err(reason) = verify(&target, &bytes) {
        return Ok(Err(reason));
    }
    let bundle = match read_bundle(&approved, &bytes) {
        Ok(bundle) => bundle,
        Err(rejection) => return Ok(Err(rejection.reason())),
    };
    // A network policy the device cannot compile is refused with the whole bundle: the one in
    // force stays (or none, which blocks every flow), never a half-read policy.
    if !network_policy_compiles(&bundle) {
        return Ok(Err(ReasonCategory::UpdateMalformed));
    }
    let mut writer = store.begin(&sha256)?;
    // A download a power cut interrupted is under the same name: the whole verified bundle
    // replaces it.
    writer.restart()?;
    writer.write(&bytes)?;
    store.install(
        writer,
        SlotImage {
            target_name: target.name().to_owned(),
            kind: POLICY_BUNDLE_KIND.to_owned(),
            release_version: bundle.sequence.to_string(),
            rollback_index: bundle.sequence,
            sha256,
            length: target.length(),
        },
    )?;
    Ok(Ok(Some(())))
}

/// Whether the bundle's network policy, if it has one, compiles.
fn network_policy_compiles(bundle: &enigm_ota::policy_bundle::PolicyBundle) -> bool {
    bundle
        .policies
        .get(enigm_types::PolicyKind::Network.as_str())
        .is_none_or(|network| {
            serde_json::to_vec(&network.content)
                .is_ok_and(|bytes| enigm_netpolicy::CompiledPolicy::from_json(&bytes).is_ok())
        })
}

/// Length and SHA-256 as the verified metadata gives them.
fn verify(target: &VerifiedTarget, bytes: &[u8]) -> Result<(), ReasonCategory> {
    let refused = |error: enigm_ota::TargetError| error.category().reason();
    let mut verifier = ArtifactVerifier::new(target).map_err(refused)?;
    verifier.update(bytes).map_err(refused)?;
    verifier.finish().map(|_| ()).map_err(refused)
}

/// Finds `wanted` through the delegation graph, with the delegated metadata kept in
/// `metadata_dir` (a stored copy that still verifies saves the fetch).
async fn search<F: Fetch>(
    trusted: &mut TrustedMetadata,
    metadata_dir: &Path,
    wanted: &str,
    fetch: &F,
    now: Timestamp,
) -> anyhow::Result<Result<VerifiedTarget, ReasonCategory>> {
    let mut search = TargetSearch::new(wanted, Limits::default(), now);
    loop {
        let request = match search.next_request(trusted) {
            Ok(Some(request)) => request,
            Ok(None) => break,
            Err(error) => return Ok(Err(error.category().reason())),
        };
        if let Some((role, _)) = search.waiting_for() {
            let local = metadata_dir.join(format!("{}.json", quote_role(role)));
            if std::fs::read(&local).is_ok_and(|bytes| search.provide_local(trusted, &bytes)) {
                continue;
            }
        }
        let fetched = fetch
            .fetch(
                &format!("{}/{}", paths::TUF_METADATA_PREFIX, request.file_name),
                request.max_length,
            )
            .await;
        match search.provide(trusted, fetched) {
            Ok(Some(persist)) => {
                write_atomically(&metadata_dir.join(&persist.file_name), &persist.bytes)?;
            }
            Ok(None) => {}
            Err(enigm_ota::RefreshError::Unavailable(_)) => {
                return Ok(Err(ReasonCategory::UpdateNotFound));
            }
            Err(error) => return Ok(Err(error.category().reason())),
        }
    }
    Ok(search
        .result()
        .flatten()
        .ok_or(ReasonCategory::UpdateNotFound))
}

#[cfg(test)]
mod tests;
