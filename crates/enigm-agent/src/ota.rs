//! The agent's OTA client: after each check-in, refresh the TUF metadata from Command
//! (`/tuf/metadata`, the `enigm_ota` refresh machine with its length bounds), pick the newest
//! OS image for this device, appraise it (payload signature under the root's release keys,
//! channel, hardware, expiry, rollback index), stream it into the inactive slot with its length
//! and SHA-256 checked as it arrives (a download that broke off resumes with `Range`), switch,
//! boot it on trial, run the health check, and confirm or roll back. Each outcome (installed,
//! rejected with its category, rolled back) is reported to Command in a signed request. Trusted
//! metadata lives in `ota/metadata/` under the state directory, the slots in `ota/`.
//!
//! **The director.** When the trusted root pins a director (`x-enigm-director`), the OS image
//! is not the newest the repository lists but the one Command's director offers this device:
//! the agent asks with a signed request, verifies the answer (director keys of the root, this
//! device's handle, the request's nonce, the time), and installs only when the offer and the
//! repository's verified target agree; every check above still follows. No answer, an answer
//! that does not verify, or a pin that does not parse means no install, never the repository's
//! newest.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use enigm_api::paths;
use enigm_api::releases::{InstallReportRequest, InstallReportResponse};
use enigm_api::rollouts::UpdateCheckRequest;
use enigm_ota::client::{FetchFailure, Limits, Refresh, TrustedMetadata, load_trusted};
use enigm_ota::release::release_fields;
use enigm_ota::slots::{BootDecision, Confirmation, SlotImage};
use enigm_ota::{
    ArtifactVerifier, DeviceProfile, FailureCategory, ReleaseCategory, VerifiedArtifact,
    VerifiedTarget,
};
#[cfg(test)]
use enigm_trust::{Signal, SignalKind, SignalSource, SignalValue};
use enigm_types::{InstallOutcome, ReasonCategory, Timestamp};

use crate::bundles::BundleStore;
use crate::core::{UpdateResult, Verification, VerificationRecord};
use crate::http::DeviceClient;
use crate::slots::{SlotStore, StageWriter};

/// The director's answer as it came: the nonce the request was signed with, and the bytes.
pub(crate) struct DirectorReply {
    pub(crate) nonce: String,
    pub(crate) body: Vec<u8>,
}

/// How the update flow reaches the director: the device's handle (from its enrollment) and a
/// signed request.
pub(crate) struct Director<A> {
    pub(crate) handle: enigm_types::DeviceHandle,
    pub(crate) ask: A,
}

/// What the agent was told about OTA.
#[derive(Debug, Clone)]
pub(crate) struct OtaSettings {
    /// The root metadata the device was provisioned with.
    pub(crate) trusted_root: PathBuf,
    pub(crate) model: String,
    pub(crate) channel: String,
}

/// The kind of release that goes into the A/B slots.
const OS_IMAGE: &str = "os-image";

const METADATA_FILES: [&str; 4] = [
    "root.json",
    "timestamp.json",
    "snapshot.json",
    "targets.json",
];

pub(crate) fn reason_of(category: FailureCategory) -> ReasonCategory {
    category.reason()
}

fn release_reason(category: ReleaseCategory) -> ReasonCategory {
    category.reason()
}

/// Where the outcome of the last update attempt is kept, for the next check-in's
/// `ota-verification` signal.
const VERIFICATION_FILE: &str = "verification.json";

/// Writes the outcome of the last update attempt.
pub(crate) fn write_verification(
    state_dir: &Path,
    record: &VerificationRecord,
) -> anyhow::Result<()> {
    let dir = ota_dir(state_dir);
    std::fs::create_dir_all(&dir)?;
    write_atomically(&dir.join(VERIFICATION_FILE), &serde_json::to_vec(record)?)
}

/// The stored outcome of the last update attempt: none before any; a record that cannot be
/// read is unreadable (`not-measurable`, never `ok`).
pub(crate) fn stored_verification(state_dir: &Path) -> Verification {
    let path = ota_dir(state_dir).join(VERIFICATION_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Verification::from_stored(Some(&bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Verification::None,
        Err(_) => Verification::Unreadable,
    }
}

/// Records the outcome of an update attempt (the results of the OS image and the bundles) for
/// the next check-in, as the shell does when the core hands the record out.
#[cfg(test)]
fn record_verification(
    state_dir: &Path,
    results: &[UpdateResult],
    at: Timestamp,
) -> anyhow::Result<()> {
    match VerificationRecord::of(results, at) {
        Some(record) => write_verification(state_dir, &record),
        None => Ok(()),
    }
}

/// The `ota-verification` signal of the last recorded attempt.
#[cfg(test)]
fn verification_signal(state_dir: &Path, now: Timestamp) -> Option<Signal> {
    stored_verification(state_dir).signal(now)
}

/// The OTA directory of a state directory.
pub(crate) fn ota_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("ota")
}

fn now() -> Timestamp {
    crate::report::system_now()
}

/// Opens the slots, provisioning slot A with a factory image on first use.
pub(crate) fn open_slots(state_dir: &Path) -> anyhow::Result<SlotStore> {
    SlotStore::open(&ota_dir(state_dir), || {
        let bytes = b"enigm-os factory image".to_vec();
        let image = SlotImage {
            target_name: "factory".to_owned(),
            kind: "os-image".to_owned(),
            release_version: "factory".to_owned(),
            rollback_index: 0,
            sha256: hex::encode(enigm_crypto::sha256(&bytes)),
            length: bytes.len() as u64,
        };
        Ok((bytes, image))
    })
}

/// The kinds of bundle published as releases (policy bundles come from Command's delegation,
/// see `crate::policy_bundles`).
const RELEASE_BUNDLE_KINDS: [&str; 1] = ["configuration-bundle"];

/// One update attempt: the metadata is refreshed once, then the OS image, each kind of bundle
/// published for this device, and the policy bundle the check-in named (`policy_bundle`) are
/// looked at in turn. The first result is the OS image's (or the metadata's, when it was
/// refused); bundles add one only when they installed one or refused one. A bundle record that
/// cannot be read refuses the bundles, never the OS image.
pub(crate) async fn update<R, A>(
    client: &DeviceClient,
    settings: &OtaSettings,
    state_dir: &Path,
    policy_bundle: Option<&str>,
    director: Option<Director<A>>,
    report: R,
) -> anyhow::Result<Vec<UpdateResult>>
where
    R: AsyncFn(InstallReportRequest) -> anyhow::Result<InstallReportResponse>,
    A: AsyncFn(UpdateCheckRequest) -> anyhow::Result<DirectorReply>,
{
    let mut slots = open_slots(state_dir)?;
    // A trial that was interrupted (no confirmation) is rolled back at this "boot".
    if let BootDecision::RolledBack(_) = slots.boot()? {
        eprintln!("warning: the last update never confirmed; rolled back");
    }
    let trusted = match refresh_metadata(client, settings, state_dir, &report).await? {
        Ok(trusted) => trusted,
        Err(result) => return Ok(vec![result]),
    };
    let mut repository = Repository {
        targets: trusted.all_targets(),
        trusted,
    };
    let bundles = BundleStore::open(&ota_dir(state_dir).join("bundles"));
    let mut installed_rollback_index = slots.state().installed_rollback_index.clone();
    if let Ok(bundles) = &bundles {
        installed_rollback_index.extend(bundles.installed_rollback_indexes());
    }
    let device = DeviceProfile {
        hardware_model: settings.model.clone(),
        channel: settings.channel.clone(),
        installed_rollback_index,
    };
    let mut results = vec![
        install_os_image(
            client,
            &mut slots,
            &repository,
            &device,
            director.as_ref(),
            &report,
        )
        .await?,
    ];
    match bundles {
        Ok(mut bundles) => {
            for kind in RELEASE_BUNDLE_KINDS {
                let result =
                    install_bundle(client, &mut bundles, &repository, &device, kind, &report)
                        .await?;
                results.extend(result);
            }
        }
        Err(error) => eprintln!("warning: {error:#}; configuration bundles are not updated"),
    }
    if let Some(wanted) = policy_bundle {
        let fetch = ClientFetch(client);
        let result = crate::policy_bundles::update(
            &mut repository.trusted,
            &ota_dir(state_dir),
            wanted,
            &fetch,
            &report,
            now(),
        )
        .await?;
        results.extend(result);
    }
    Ok(results)
}

/// The repository as Command serves it to this device.
struct ClientFetch<'a>(&'a DeviceClient);

impl crate::policy_bundles::Fetch for ClientFetch<'_> {
    async fn fetch(&self, path: &str, max_length: u64) -> Result<Vec<u8>, FetchFailure> {
        fetch_bounded(self.0, path, max_length).await
    }
}

/// Refreshes the trusted metadata in `ota/metadata/` from Command. `Err` holds what the
/// attempt came to when the metadata was not refreshed (unreachable, or refused and reported).
async fn refresh_metadata<R>(
    client: &DeviceClient,
    settings: &OtaSettings,
    state_dir: &Path,
    report: &R,
) -> anyhow::Result<Result<TrustedMetadata, UpdateResult>>
where
    R: AsyncFn(InstallReportRequest) -> anyhow::Result<InstallReportResponse>,
{
    let metadata_dir = ota_dir(state_dir).join("metadata");
    std::fs::create_dir_all(&metadata_dir)?;
    let trusted_root_path = metadata_dir.join("root.json");
    if !trusted_root_path.exists() {
        let provisioned = std::fs::read(&settings.trusted_root).with_context(|| {
            format!(
                "cannot read the trusted root `{}`",
                settings.trusted_root.display()
            )
        })?;
        write_atomically(&trusted_root_path, &provisioned)?;
    }
    let read = |name: &str| std::fs::read(metadata_dir.join(name)).ok();
    let [root, timestamp, snapshot, targets] = METADATA_FILES.map(read);
    let root = root.context("no trusted root")?;
    let trusted = load_trusted(
        &root,
        timestamp.as_deref(),
        snapshot.as_deref(),
        targets.as_deref(),
    )
    .context("the stored trusted root does not verify")?;
    let mut refresh = Refresh::new(trusted, Limits::default(), now());
    let refreshed = loop {
        let Some(request) = refresh.next_request() else {
            break Ok(());
        };
        let fetched = fetch_bounded(
            client,
            &format!("{}/{}", paths::TUF_METADATA_PREFIX, request.file_name),
            request.max_length,
        )
        .await;
        match refresh.provide(fetched) {
            Ok(Some(persist)) => {
                write_atomically(&metadata_dir.join(&persist.file_name), &persist.bytes)?
            }
            Ok(None) => {}
            Err(error) => break Err(error),
        }
    };
    if let Err(enigm_ota::RefreshError::Unavailable(file)) = &refreshed {
        eprintln!("warning: the update repository did not answer for {file}");
        return Ok(Err(UpdateResult::Unavailable));
    }
    if let Err(error) = refreshed {
        let reason = reason_of(error.category());
        report(InstallReportRequest {
            target_name: "metadata".to_owned(),
            release_version: "-".to_owned(),
            outcome: InstallOutcome::Rejected,
            reason: Some(reason),
        })
        .await?;
        eprintln!("warning: the update metadata was refused: {error}");
        return Ok(Err(UpdateResult::Rejected("metadata".to_owned(), reason)));
    }
    Ok(Ok(refresh.into_trusted()))
}

/// The refreshed metadata, and every target it lists (enumerated once per attempt).
struct Repository {
    trusted: TrustedMetadata,
    targets: Vec<VerifiedTarget>,
}

/// A release offered to this device that passed appraisal, ready to download.
struct Offer {
    target: VerifiedTarget,
    approved: enigm_ota::ApprovedRelease,
    /// Where Command serves the artifact (its consistent-snapshot name).
    url: String,
}

impl Offer {
    /// What the device records of the release once installed.
    fn image(&self) -> SlotImage {
        let fields = self.approved.fields();
        SlotImage {
            target_name: self.target.name().to_owned(),
            kind: fields.kind.clone(),
            release_version: fields.release_version.clone(),
            rollback_index: fields.rollback_index,
            sha256: self.target.sha256().unwrap_or_default().to_owned(),
            length: self.target.length(),
        }
    }
}

/// The newest release of `kind` for this device unless it is `installed_sha256`, appraised.
/// `Ok(None)`: nothing new; `Err`: refused (and reported).
async fn offer<R>(
    repository: &Repository,
    device: &DeviceProfile,
    kind: &str,
    installed_sha256: Option<&str>,
    report: &R,
) -> anyhow::Result<Result<Option<Offer>, UpdateResult>>
where
    R: AsyncFn(InstallReportRequest) -> anyhow::Result<InstallReportResponse>,
{
    let Some(target) = candidate(&repository.targets, device, kind) else {
        return Ok(Ok(None));
    };
    if target.sha256() == installed_sha256 {
        return Ok(Ok(None));
    }
    appraised(repository, device, target, report).await
}

/// The OS image the director offers this device, once its answer verified and agreed with
/// the repository, appraised like any other. `Ok(None)`: the director offers nothing (nothing
/// newer, or not for this device: the answer does not say which); `Err`: refused (reported).
async fn directed_offer<R, A>(
    repository: &Repository,
    device: &DeviceProfile,
    director: &Director<A>,
    director_keys: &enigm_ota::director::DirectorKeys,
    installed_sha256: Option<&str>,
    report: &R,
) -> anyhow::Result<Result<Option<Offer>, UpdateResult>>
where
    R: AsyncFn(InstallReportRequest) -> anyhow::Result<InstallReportResponse>,
    A: AsyncFn(UpdateCheckRequest) -> anyhow::Result<DirectorReply>,
{
    let request = UpdateCheckRequest {
        model: device.hardware_model.clone(),
        channel: device.channel.clone(),
        installed_rollback_index: device
            .installed_rollback_index
            .get(OS_IMAGE)
            .copied()
            .unwrap_or(0),
    };
    let reply = match (director.ask)(request).await {
        Ok(reply) => reply,
        Err(error) => {
            eprintln!("warning: the director did not answer: {error:#}");
            return Ok(Err(UpdateResult::Unavailable));
        }
    };
    let answer = match enigm_ota::director::verify_answer(
        &reply.body,
        director_keys,
        &director.handle,
        &reply.nonce,
        now(),
    ) {
        Ok(answer) => answer,
        Err(error) => {
            eprintln!("warning: the director's answer was refused: {error}");
            return Ok(Err(refuse_named(report, DIRECTOR, error.reason()).await?));
        }
    };
    let Some(offered) = answer.offer() else {
        return Ok(Ok(None));
    };
    if Some(offered.sha256()) == installed_sha256 {
        return Ok(Ok(None));
    }
    let listed = repository
        .targets
        .iter()
        .find(|target| target.name() == offered.target_name());
    let agreed = match enigm_ota::director::agree(&answer, listed) {
        Ok(agreed) => agreed,
        Err(disagreement) => {
            eprintln!(
                "warning: the director's offer does not match the repository: {disagreement}"
            );
            let reason = disagreement.reason();
            return Ok(Err(match listed {
                Some(target) => refuse(report, target, reason).await?,
                None => refuse_named(report, DIRECTOR, reason).await?,
            }));
        }
    };
    appraised(repository, device, agreed.target().clone(), report).await
}

/// The name install reports give the director's answer when it, not a target, was refused.
const DIRECTOR: &str = "director";

/// `target`, appraised (release signature, channel, hardware, expiry, rollback index) and with
/// the URL of its artifact; a refusal is reported.
async fn appraised<R>(
    repository: &Repository,
    device: &DeviceProfile,
    target: VerifiedTarget,
    report: &R,
) -> anyhow::Result<Result<Option<Offer>, UpdateResult>>
where
    R: AsyncFn(InstallReportRequest) -> anyhow::Result<InstallReportResponse>,
{
    let approved = match enigm_ota::appraise_release(&repository.trusted, &target, device, now()) {
        Ok(approved) => approved,
        Err(rejection) => {
            let reason = release_reason(rejection.category());
            return Ok(Err(refuse(report, &target, reason).await?));
        }
    };
    let url = match target_url(&target) {
        Ok(url) => url,
        Err(error) => {
            return Ok(Err(
                refuse(report, &target, reason_of(error.category())).await?
            ));
        }
    };
    Ok(Ok(Some(Offer {
        url,
        target,
        approved,
    })))
}

/// Where Command serves `target`: its consistent-snapshot name (`<dir>/<sha256>.<file>`) under
/// `/tuf/targets`, refused when the name could leave a directory.
pub(crate) fn target_url(target: &VerifiedTarget) -> Result<String, enigm_ota::TargetError> {
    let local = target.local_path()?;
    let sha256 = target.sha256().unwrap_or_default();
    let path = match local.rsplit_once('/') {
        Some((directory, file)) => format!("{directory}/{sha256}.{file}"),
        None => format!("{sha256}.{local}"),
    };
    Ok(format!("{}/{path}", paths::TUF_TARGETS_PREFIX))
}

/// Reports to Command what became of the release `target`.
async fn tell<R>(
    report: &R,
    target: &VerifiedTarget,
    outcome: InstallOutcome,
    reason: Option<ReasonCategory>,
) -> anyhow::Result<()>
where
    R: AsyncFn(InstallReportRequest) -> anyhow::Result<InstallReportResponse>,
{
    report(InstallReportRequest {
        target_name: safe_name(target.name()),
        release_version: release_fields(target)
            .map(|fields| fields.release_version)
            .unwrap_or_else(|_| "-".to_owned()),
        outcome,
        reason,
    })
    .await?;
    Ok(())
}

/// Refuses the release `target` for `reason`: reported, and what the attempt came to.
async fn refuse<R>(
    report: &R,
    target: &VerifiedTarget,
    reason: ReasonCategory,
) -> anyhow::Result<UpdateResult>
where
    R: AsyncFn(InstallReportRequest) -> anyhow::Result<InstallReportResponse>,
{
    tell(report, target, InstallOutcome::Rejected, Some(reason)).await?;
    Ok(UpdateResult::Rejected(target.name().to_owned(), reason))
}

/// Reports a refusal of something that is not a target (the director's answer or its pin).
async fn refuse_named<R>(
    report: &R,
    name: &str,
    reason: ReasonCategory,
) -> anyhow::Result<UpdateResult>
where
    R: AsyncFn(InstallReportRequest) -> anyhow::Result<InstallReportResponse>,
{
    report(InstallReportRequest {
        target_name: name.to_owned(),
        release_version: "-".to_owned(),
        outcome: InstallOutcome::Rejected,
        reason: Some(reason),
    })
    .await?;
    Ok(UpdateResult::Rejected(name.to_owned(), reason))
}

/// The OS image: streamed into the inactive slot, switched, booted on trial, health-checked,
/// then confirmed or rolled back.
async fn install_os_image<R, A>(
    client: &DeviceClient,
    slots: &mut SlotStore,
    repository: &Repository,
    device: &DeviceProfile,
    director: Option<&Director<A>>,
    report: &R,
) -> anyhow::Result<UpdateResult>
where
    R: AsyncFn(InstallReportRequest) -> anyhow::Result<InstallReportResponse>,
    A: AsyncFn(UpdateCheckRequest) -> anyhow::Result<DirectorReply>,
{
    let state = slots.state().clone();
    let installed_sha = state.image(state.active).map(|image| image.sha256.as_str());
    let chosen = match enigm_ota::director::director_keys(repository.trusted.root()) {
        // No director pinned: the repository's newest release for this device (OTA I).
        Ok(None) => offer(repository, device, OS_IMAGE, installed_sha, report).await?,
        Ok(Some(keys)) => match director {
            Some(director) => {
                directed_offer(repository, device, director, &keys, installed_sha, report).await?
            }
            None => {
                eprintln!(
                    "warning: the update repository names a director but this device is not \
                     enrolled: no OS image is installed"
                );
                Ok(None)
            }
        },
        // A pin that does not parse: no install, never the repository's newest.
        Err(error) => {
            eprintln!("warning: the trusted root's director pin is refused: {error}");
            Err(refuse_named(report, DIRECTOR, error.reason()).await?)
        }
    };
    let offer = match chosen {
        Ok(Some(offer)) => offer,
        Ok(None) => return Ok(UpdateResult::UpToDate),
        Err(refused) => return Ok(refused),
    };
    let image = offer.image();
    // The rollout's `downloading` count; a word that does not arrive stops nothing (the
    // install report that follows is the record).
    if let Err(error) = tell(report, &offer.target, InstallOutcome::Downloading, None).await {
        eprintln!("warning: could not tell Command the download started: {error:#}");
    }
    let mut writer = slots.begin_stage(&image.sha256)?;
    if let Err(reason) = download(client, &offer.url, &offer.target, &mut writer).await? {
        writer.discard();
        return refuse(report, &offer.target, reason).await;
    }
    slots.finish_stage(writer, image)?;
    slots.switch()?;
    let BootDecision::Trial(slot) = slots.boot()? else {
        anyhow::bail!("a switched update did not boot on trial");
    };
    let healthy = slots.healthy(slot)?;
    let name = offer.target.name().to_owned();
    let (outcome, reason, result) = match slots.confirm(healthy)? {
        Confirmation::Confirmed(_) => (
            InstallOutcome::Installed,
            None,
            UpdateResult::Installed(name),
        ),
        Confirmation::RolledBack(_) => (
            InstallOutcome::RolledBack,
            Some(ReasonCategory::HealthCheckFailed),
            UpdateResult::RolledBack(name),
        ),
    };
    tell(report, &offer.target, outcome, reason).await?;
    Ok(result)
}

/// A policy or configuration bundle: downloaded, verified, and installed whole (see
/// `agent::bundles`). `None` when there is nothing new for this device.
async fn install_bundle<R>(
    client: &DeviceClient,
    bundles: &mut BundleStore,
    repository: &Repository,
    device: &DeviceProfile,
    kind: &str,
    report: &R,
) -> anyhow::Result<Option<UpdateResult>>
where
    R: AsyncFn(InstallReportRequest) -> anyhow::Result<InstallReportResponse>,
{
    let installed_sha = bundles.installed(kind).map(|image| image.sha256.clone());
    let offer = match offer(repository, device, kind, installed_sha.as_deref(), report).await? {
        Ok(Some(offer)) => offer,
        Ok(None) => return Ok(None),
        Err(refused) => return Ok(Some(refused)),
    };
    let image = offer.image();
    let mut writer = bundles.begin(&image.sha256)?;
    if let Err(reason) = download(client, &offer.url, &offer.target, &mut writer).await? {
        writer.discard();
        return Ok(Some(refuse(report, &offer.target, reason).await?));
    }
    bundles.install(writer, image)?;
    tell(report, &offer.target, InstallOutcome::Installed, None).await?;
    Ok(Some(UpdateResult::Installed(
        offer.target.name().to_owned(),
    )))
}

/// Streams `target` from `url` into `writer`, checked as it arrives. A download that broke off
/// earlier is resumed: what it wrote is hashed again, and only the rest is asked for
/// (`Range`). A resumed download that does not verify is downloaded once more from the
/// start before it counts as refused, since what a power cut leaves in the file's last part is
/// not guaranteed. An error (the connection broke) keeps what was written for the next attempt.
async fn download(
    client: &DeviceClient,
    url: &str,
    target: &VerifiedTarget,
    writer: &mut StageWriter,
) -> anyhow::Result<Result<VerifiedArtifact, ReasonCategory>> {
    let written = writer.len()?;
    if written > 0 {
        println!(
            "ota: resuming the download of {} at byte {written} of {}",
            safe_name(target.name()),
            target.length()
        );
    }
    let verified = download_from_written(client, url, target, writer).await?;
    if verified.is_err() && written > 0 {
        println!("ota: the resumed download did not verify; downloading it again from the start");
        writer.restart()?;
        return download_from_written(client, url, target, writer).await;
    }
    Ok(verified)
}

/// One pass of [`download`]: check what `writer` holds, then fetch and check the rest.
async fn download_from_written(
    client: &DeviceClient,
    url: &str,
    target: &VerifiedTarget,
    writer: &mut StageWriter,
) -> anyhow::Result<Result<VerifiedArtifact, ReasonCategory>> {
    let refused = |error: enigm_ota::TargetError| reason_of(error.category());
    let mut verifier = ArtifactVerifier::new(target).map_err(anyhow::Error::from)?;
    let mut offset = writer.len()?;
    if offset > target.length() {
        writer.restart()?;
        offset = 0;
    }
    if let Err(error) = writer.replay(|piece| verifier.update(piece))? {
        return Ok(Err(refused(error)));
    }
    if offset == target.length() && offset > 0 {
        return Ok(verifier.finish().map_err(refused));
    }
    let mut response = client.get_response_from(url, offset).await?;
    match response.status().as_u16() {
        206 if offset > 0 && is_rest_of(&response, offset, target.length()) => {}
        200 => {
            if offset > 0 {
                // The server sends the whole artifact instead: start over with it.
                writer.restart()?;
                verifier = ArtifactVerifier::new(target).map_err(anyhow::Error::from)?;
            }
        }
        _ => return Ok(Err(ReasonCategory::UpdateNotFound)),
    }
    while let Some(chunk) = response.chunk().await.context("the download broke off")? {
        if let Err(error) = verifier.update(&chunk) {
            return Ok(Err(refused(error)));
        }
        writer.write(&chunk)?;
    }
    Ok(verifier.finish().map_err(refused))
}

/// Whether a `206 Partial Content` answer holds bytes `offset` to the end of a `length`-byte
/// artifact (`Content-Range: bytes <offset>-<length - 1>/<length>`), and nothing else.
fn is_rest_of(response: &reqwest::Response, offset: u64, length: u64) -> bool {
    let expected = format!("bytes {offset}-{}/{length}", length.saturating_sub(1));
    response
        .headers()
        .get(reqwest::header::CONTENT_RANGE)
        .is_some_and(|range| range.as_bytes() == expected.as_bytes())
}

/// The target name as reported: the name itself when safe, else a placeholder (an unsafe name
/// is what is being reported).
fn safe_name(name: &str) -> String {
    if enigm_ota::safe_local_path(name).is_ok() && name.len() <= 255 {
        name.to_owned()
    } else {
        "unsafe-target-name".to_owned()
    }
}

/// The release of `kind` for this device (its model and channel) with the highest rollback
/// index (then the latest name).
fn candidate(
    targets: &[VerifiedTarget],
    device: &DeviceProfile,
    kind: &str,
) -> Option<VerifiedTarget> {
    targets
        .iter()
        .filter_map(|target| release_fields(target).ok().map(|fields| (target, fields)))
        .filter(|(_, fields)| {
            fields.kind == kind
                && fields.channel == device.channel
                && fields.hardware.contains(&device.hardware_model)
        })
        .max_by(|(a, fa), (b, fb)| {
            (fa.rollback_index, a.name()).cmp(&(fb.rollback_index, b.name()))
        })
        .map(|(target, _)| target.clone())
}

async fn fetch_bounded(
    client: &DeviceClient,
    path: &str,
    max_length: u64,
) -> Result<Vec<u8>, FetchFailure> {
    let response = client
        .get_response(path)
        .await
        .map_err(|_| FetchFailure::Unavailable)?;
    crate::tuf_fetch::read_bounded(response, max_length).await
}

pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let partial = path.with_extension("partial");
    let mut file = std::fs::File::create(&partial)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod download_tests;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    const AT: Timestamp = Timestamp::from_unix_millis(1_796_000_000_000);
    const LATER: Timestamp = Timestamp::from_unix_millis(1_796_000_060_000);

    #[test]
    fn no_attempt_no_signal() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(verification_signal(dir.path(), LATER), None);
    }

    #[test]
    fn a_refused_update_is_a_failed_verification_until_one_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let refused = UpdateResult::Rejected(
            "os/a.img".to_owned(),
            ReasonCategory::UpdateArtifactMismatch,
        );
        record_verification(dir.path(), std::slice::from_ref(&refused), AT).unwrap();
        let signal = verification_signal(dir.path(), LATER).unwrap();
        assert_eq!(
            (signal.kind, signal.value, signal.observed_at, signal.source),
            (
                SignalKind::OtaVerification,
                SignalValue::Failed,
                AT,
                SignalSource::Measured
            )
        );
        // An unreachable repository proves nothing: the failure stays, with its own time.
        record_verification(dir.path(), &[UpdateResult::Unavailable], LATER).unwrap();
        assert_eq!(
            verification_signal(dir.path(), LATER).unwrap().observed_at,
            AT
        );
        for verified in [
            UpdateResult::UpToDate,
            UpdateResult::Installed("os/b.img".to_owned()),
            UpdateResult::RolledBack("os/c.img".to_owned()),
        ] {
            record_verification(dir.path(), std::slice::from_ref(&verified), LATER).unwrap();
            let signal = verification_signal(dir.path(), LATER).unwrap();
            assert_eq!((signal.value, signal.observed_at), (SignalValue::Ok, LATER));
            // A bundle refused in the same attempt makes the whole attempt a failure.
            record_verification(dir.path(), &[verified, refused.clone()], LATER).unwrap();
            let signal = verification_signal(dir.path(), LATER).unwrap();
            assert_eq!(signal.value, SignalValue::Failed);
        }
    }

    #[test]
    fn an_unreadable_record_is_not_measurable_never_ok() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(ota_dir(dir.path())).unwrap();
        for garbage in [
            &b""[..],
            b"{\"value\":\"ok\"}",
            b"{\"value\":\"ok\",\"observed_at\":1,\"extra\":1}",
            b"\xff\xfe",
        ] {
            std::fs::write(ota_dir(dir.path()).join(VERIFICATION_FILE), garbage).unwrap();
            let signal = verification_signal(dir.path(), LATER).unwrap();
            assert_eq!(
                (signal.value, signal.observed_at),
                (SignalValue::NotMeasurable, LATER)
            );
        }
    }
}
