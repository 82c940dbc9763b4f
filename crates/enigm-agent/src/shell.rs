//! `enigm agent`: the thin shell that drives [`crate::core::Agent`] with the real world. It keeps
//! the device key and enrollment in a private state directory ([`crate::state`]), measures the
//! signal report each cycle (collectors or a profile), sends the core's signed requests with
//! reqwest, mints attestation evidence with a development root, runs the OTA install sub-flow
//! (`crate::ota`) when the core asks for it, persists what the core hands out, sleeps between
//! cycles, and stops on SIGTERM or Ctrl-C.
//!
//! Request bodies are built by the core only from a [`SignalReport`]: a profile's `[hardware]`
//! identifiers live in a type that cannot be serialised, so they have no way into a request.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use enigm_api::attestation::AttestationEvidence;
use enigm_api::paths;
use enigm_crypto::Ed25519SigningKey;
use enigm_trust::SignalReport;
use enigm_types::{SetupStep, Timestamp};
use secrecy::SecretString;

use crate::attestation::{DevAttester, load_dev_root};
use crate::core::{
    Agent, Config, Event, EvidenceRequest, Exit, PolicyStatus, Record, Step, UpdateResult,
    Verification,
};
use crate::http::DeviceClient;
use crate::ota::{self, OtaSettings};
use crate::profile::Profile;
use crate::report::system_now;
use crate::state::StateDir;

/// How `enigm agent` was configured.
#[derive(Debug, Clone)]
pub struct ShellConfig {
    /// Command's base URL.
    pub server: String,
    /// A CA certificate (PEM) to trust for Command's TLS certificate.
    pub ca_cert: Option<PathBuf>,
    pub state_dir: PathBuf,
    /// A file whose content is the enrollment token; needed only before enrollment.
    pub enrollment_token_file: Option<PathBuf>,
    pub profile: Option<PathBuf>,
    pub once: bool,
    pub interval: Duration,
    pub managed_opt_in: bool,
    pub wipe_opt_in: bool,
    /// INSECURE, for demos and tests: attest with chains minted under this development root.
    pub insecure_dev_attestation_root: Option<PathBuf>,
    pub attest_every: Duration,
    /// The OTA repository's provisioned root metadata; with it, each cycle looks for updates.
    pub ota_trusted_root: Option<PathBuf>,
    pub model: String,
    pub channel: String,
    /// With it, the daemon enforces its group's network policy (`crate::network`).
    pub network: Option<crate::network::NetworkSettings>,
}

/// The device's client of Command at `server`, trusting `ca_cert` (PEM) when given.
fn device_client(server: &str, ca_cert: Option<&std::path::Path>) -> anyhow::Result<DeviceClient> {
    let ca_pem = ca_cert
        .map(|path| {
            std::fs::read(path)
                .with_context(|| format!("could not read the ca certificate `{}`", path.display()))
        })
        .transpose()?;
    Ok(DeviceClient::new(server, ca_pem.as_deref())?)
}

/// Runs the agent until it stops; an error for a refusal that ends it, or a failed `--once`.
pub async fn run(config: ShellConfig) -> anyhow::Result<()> {
    let client = device_client(&config.server, config.ca_cert.as_deref())?;
    let dir = StateDir::open(&config.state_dir)?;
    let key = dir.device_key()?;
    let profile = config
        .profile
        .as_deref()
        .map(|path| {
            Profile::load(path)
                .with_context(|| format!("could not load profile `{}`", path.display()))
        })
        .transpose()?;
    let dev_attestation = config
        .insecure_dev_attestation_root
        .as_deref()
        .map(|root| -> anyhow::Result<DevAttestation> {
            Ok(DevAttestation {
                root: load_dev_root(root)?,
                key: dir.attested_key()?,
            })
        })
        .transpose()?;
    let enrollment = dir.enrollment()?;
    if let Some(enrollment) = &enrollment
        && enrollment.server != client.server()
    {
        anyhow::bail!(
            "the state directory is enrolled with `{}`, not `{}`; use another --state-dir",
            enrollment.server,
            client.server()
        );
    }
    let token = match (&enrollment, &config.enrollment_token_file) {
        (None, Some(file)) => Some(read_token_file(file)?),
        _ => None,
    };
    let verification = match config.ota_trusted_root {
        Some(_) => ota::stored_verification(&config.state_dir),
        None => Verification::None,
    };
    let policy = policy_status(&config);
    let core = Agent::new(
        Config {
            server: client.server().to_owned(),
            path_prefix: client.path_prefix().to_owned(),
            managed_opt_in: config.managed_opt_in,
            wipe_opt_in: config.wipe_opt_in,
            attests: dev_attestation.is_some(),
            attest_every: config.attest_every,
            updates: config.ota_trusted_root.is_some(),
            interval: config.interval,
            once: config.once,
        },
        key.clone(),
        enrollment,
        token,
        verification,
    )?
    .with_policy(policy);
    let network = match config.network.clone() {
        Some(settings) => Some(
            crate::network::NetworkEnforcer::start(settings, &config.state_dir, &client, &key)
                .await
                .context("could not enforce the network policy")?,
        ),
        None => None,
    };
    let shell = Shell {
        client,
        key,
        dir,
        profile,
        config,
        dev_attestation,
    };
    shell.drive(core, network).await
}

/// What `enigm agent-setup` was asked to record.
/// What `enigm agent-vpn` needs.
#[derive(Debug, Clone)]
pub struct VpnConfig {
    pub server: String,
    pub ca_cert: Option<PathBuf>,
    pub state_dir: PathBuf,
    /// The location to be placed in; `None` leaves the VPN.
    pub location: Option<String>,
}

/// `enigm agent-vpn`: asks Command for a VPN location (or to leave the VPN) for this enrolled
/// device and writes (or removes) the tunnel configuration in the state directory.
pub async fn run_vpn(
    config: VpnConfig,
) -> anyhow::Result<(enigm_api::vpn::VpnAssignmentView, PathBuf)> {
    let client = device_client(&config.server, config.ca_cert.as_deref())?;
    let dir = StateDir::open(&config.state_dir)?;
    if dir.enrollment()?.is_none() {
        anyhow::bail!(
            "this device is not enrolled: run `enigm agent` with an enrollment token first"
        );
    }
    let key = dir.device_key()?;
    let answer = crate::vpn::switch(&client, &key, &dir, config.location.as_deref()).await?;
    Ok((answer, config.state_dir.join(crate::state::VPN_CONFIG_FILE)))
}

#[derive(Debug, Clone)]
pub struct SetupConfig {
    pub state_dir: PathBuf,
    /// A file holding the device PIN the user chose (read, checked, never kept).
    pub pin_file: Option<PathBuf>,
    pub accept_terms: bool,
    /// Command's base URL, to check the network path to it; `None` skips that step.
    pub server: Option<String>,
    pub ca_cert: Option<PathBuf>,
}

/// `enigm agent-setup`: checks and records the setup steps asked for, keeping the ones done
/// before. A weak PIN or an unreachable Command records nothing for that step and fails, after
/// the other steps were recorded.
pub async fn run_setup(config: SetupConfig) -> anyhow::Result<crate::setup::SetupRecord> {
    use secrecy::ExposeSecret as _;
    let dir = StateDir::open(&config.state_dir)?;
    let previous = dir.setup()?;
    let mut done = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    if let Some(pin_file) = &config.pin_file {
        let pin = read_token_file(pin_file)?;
        match crate::setup::check_device_pin(pin.expose_secret().trim_end_matches(['\n', '\r'])) {
            Ok(()) => done.push(SetupStep::StrongPin),
            Err(refusal) => refused.push(refusal.to_string()),
        }
    }
    if config.accept_terms {
        done.push(SetupStep::Terms);
    }
    if let Some(server) = &config.server {
        let client = device_client(server, config.ca_cert.as_deref())?;
        match client.get_response(paths::HEALTHZ).await {
            Ok(response) if response.status().is_success() => {
                done.push(SetupStep::NetworkReadiness);
            }
            Ok(response) => refused.push(format!(
                "Command at `{server}` answered {} to a health check: the network is not ready",
                response.status()
            )),
            Err(error) => refused.push(format!("the network is not ready: {error}")),
        }
    }
    let record = crate::setup::SetupRecord::with(previous.as_ref(), &done, system_now());
    dir.write_setup(&record)?;
    if !refused.is_empty() {
        anyhow::bail!("{}", refused.join("; "));
    }
    Ok(record)
}

/// Attestation with a development root: the root and the simulated hardware key.
struct DevAttestation {
    root: enigm_attest::dev::DevAttestationRoot,
    key: enigm_attest::dev::DevAttestedKey,
}

struct Shell {
    client: DeviceClient,
    /// The device key, for the update sub-flow's signed reports (the core holds its own copy).
    key: Ed25519SigningKey,
    dir: StateDir,
    profile: Option<Profile>,
    config: ShellConfig,
    dev_attestation: Option<DevAttestation>,
}

impl Shell {
    async fn drive(
        &self,
        mut core: Agent,
        mut network: Option<crate::network::NetworkEnforcer>,
    ) -> anyhow::Result<()> {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("could not listen for SIGTERM")?;
        let mut rng = rand::rngs::OsRng;
        let now = system_now();
        measure_network(&mut core, network.as_mut(), now);
        core.start_cycle(now, self.report(now), self.setup())?;
        loop {
            let now = system_now();
            let Some(step) = core.poll(now, &mut rng) else {
                anyhow::bail!("the agent core is waiting for an input the shell cannot give");
            };
            match step {
                Step::Send(request) => match self.client.send(&request).await {
                    Ok(answer) => {
                        core.handle_response(system_now(), answer.status, &answer.body)?
                    }
                    Err(error) => core.handle_unreachable(system_now(), error.to_string())?,
                },
                Step::MintEvidence(request) => {
                    let evidence = self.evidence(&request);
                    core.handle_evidence(system_now(), evidence)?;
                }
                Step::Persist(record) => self.persist(&record)?,
                Step::Report(event) => print_event(&event),
                Step::Update { policy_bundle } => {
                    let outcome = self
                        .update(policy_bundle.as_deref())
                        .await
                        .map_err(|error| format!("{error:#}"));
                    core.set_policy(policy_status(&self.config));
                    // A new bundle is enforced now, not at the next cycle.
                    if let Some(network) = network.as_mut() {
                        network.enforce();
                    }
                    core.handle_update(system_now(), outcome)?;
                }
                Step::Wipe => self.dir.wipe()?,
                Step::Sleep { until } => {
                    let wait = Duration::from_millis(
                        u64::try_from(until.unix_millis().saturating_sub(now.unix_millis()))
                            .unwrap_or(0),
                    );
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = tokio::signal::ctrl_c() => break,
                        _ = terminate.recv() => break,
                    }
                    let now = system_now();
                    measure_network(&mut core, network.as_mut(), now);
                    core.start_cycle(now, self.report(now), self.setup())?;
                }
                Step::Stop(exit) => return finish(exit),
            }
        }
        println!("agent stopped");
        Ok(())
    }

    /// The report of this cycle, measured now. Only this value reaches a request body.
    fn report(&self, now: Timestamp) -> SignalReport {
        crate::report::measure(self.profile.as_ref(), Path::new("/"), now)
    }

    /// The setup steps done: what `enigm agent-setup` recorded, and on a simulated device what
    /// its profile declares. A setup record that cannot be read counts as no step recorded
    /// (fail closed), with a warning.
    fn setup(&self) -> Vec<SetupStep> {
        let recorded = match self.dir.setup() {
            Ok(record) => record.map(|record| record.completed).unwrap_or_default(),
            Err(error) => {
                eprintln!("warning: {error:#}; reporting no recorded setup step");
                Vec::new()
            }
        };
        let declared = self.profile.as_ref().map_or(&[][..], Profile::setup);
        SetupStep::REQUIRED
            .into_iter()
            .filter(|step| recorded.contains(step) || declared.contains(step))
            .collect()
    }

    fn evidence(&self, request: &EvidenceRequest) -> Result<AttestationEvidence, String> {
        let Some(dev) = &self.dev_attestation else {
            return Err("this agent has no attestation root".to_owned());
        };
        DevAttester {
            root: &dev.root,
            key: &dev.key,
            patch_day: request.patch_day,
        }
        .evidence(
            &request.nonce,
            &request.device_key,
            request.purpose,
            system_now(),
        )
        .map_err(|error| format!("{error:#}"))
    }

    fn persist(&self, record: &Record) -> anyhow::Result<()> {
        match record {
            Record::Enrollment(enrollment) => self.dir.write_enrollment(enrollment),
            Record::Evaluation(evaluation) => self.dir.write_tsc(evaluation),
            Record::Verification(verification) => {
                ota::write_verification(&self.config.state_dir, verification)
            }
        }
    }

    /// Looks for an OS image and for policy and configuration bundles, and installs them (see
    /// `crate::ota`); each outcome is reported to Command. A refusal is an outcome, not an
    /// error.
    async fn update(&self, policy_bundle: Option<&str>) -> anyhow::Result<Vec<UpdateResult>> {
        let Some(trusted_root) = &self.config.ota_trusted_root else {
            return Ok(Vec::new());
        };
        let settings = OtaSettings {
            trusted_root: trusted_root.clone(),
            model: self.config.model.clone(),
            channel: self.config.channel.clone(),
        };
        // The director answers an enrolled device only (it asks as its handle).
        let director = self
            .dir
            .enrollment()
            .ok()
            .flatten()
            .map(|enrollment| ota::Director {
                handle: enrollment.handle,
                ask: async |request: enigm_api::rollouts::UpdateCheckRequest| {
                    let (nonce, answer) = self
                        .client
                        .post_signed_raw(&self.key, paths::DEVICE_OTA_OFFER, &request)
                        .await?;
                    Ok(ota::DirectorReply {
                        nonce,
                        body: answer.body,
                    })
                },
            });
        let results = ota::update(
            &self.client,
            &settings,
            &self.config.state_dir,
            policy_bundle,
            director,
            async |request: enigm_api::releases::InstallReportRequest| {
                self.client
                    .post_signed::<_, enigm_api::releases::InstallReportResponse>(
                        &self.key,
                        paths::DEVICE_OTA_REPORTS,
                        &request,
                    )
                    .await
            },
        )
        .await?;
        for result in &results {
            match result {
                UpdateResult::UpToDate => println!("ota: up to date"),
                UpdateResult::Unavailable => println!("ota: repository unavailable"),
                UpdateResult::Installed(name) => println!("ota: installed {name}"),
                UpdateResult::RolledBack(name) => {
                    println!("ota: {name} failed its health check; rolled back");
                }
                UpdateResult::Rejected(name, reason) => {
                    println!("ota: refused {name}: {}", reason.as_str());
                }
            }
        }
        Ok(results)
    }
}

/// Enforces what changed and hands this cycle's network measurements to the core.
fn measure_network(
    core: &mut Agent,
    network: Option<&mut crate::network::NetworkEnforcer>,
    now: Timestamp,
) {
    if let Some(network) = network {
        network.enforce();
        core.set_network_signals(network.signals(now));
    }
}

/// The policy bundle the device holds: none (the baseline) when it has no update repository to
/// verify one with.
fn policy_status(config: &ShellConfig) -> PolicyStatus {
    match config.ota_trusted_root {
        Some(_) => crate::policy_bundles::status(&ota::ota_dir(&config.state_dir)),
        None => PolicyStatus::default(),
    }
}

fn print_event(event: &Event) {
    match event {
        Event::Enrolled {
            handle,
            state,
            trust,
        } => println!("enrolled as {handle} ({state}, {trust})"),
        Event::CheckedIn { at, handle, trust } => println!(
            "{} checked in as {handle}: {} ({}), {} finding{}",
            at.to_rfc3339(),
            trust.state,
            trust.launcher_summary.label(),
            trust.findings.len(),
            if trust.findings.len() == 1 { "" } else { "s" }
        ),
        Event::Attested { at, verdict } => println!("{} attested: {verdict}", at.to_rfc3339()),
        // A server that is down or unreachable is retried at the next cycle.
        Event::CycleFailed(error) => eprintln!("warning: check-in failed: {error}"),
        Event::CommandsFailed(error) => eprintln!("warning: {error}"),
    }
}

fn finish(exit: Exit) -> anyhow::Result<()> {
    match exit {
        Exit::Completed => Ok(()),
        Exit::Retired { handle, state } => {
            println!(
                "{handle} retired by Command: acknowledged, device is {state}; the agent stops"
            );
            Ok(())
        }
        Exit::Wiped { handle, state } => {
            println!(
                "{handle} wiped by Command: acknowledged, device is {state}; the device key, \
                 enrollment and last evaluation are deleted; the agent stops"
            );
            Ok(())
        }
        Exit::Refused(error) | Exit::Failed(error) => Err(error.into()),
    }
}

/// The enrollment token from its file: bounded, with a trailing line break removed.
fn read_token_file(path: &Path) -> anyhow::Result<SecretString> {
    use std::io::Read as _;
    const MAX_TOKEN_FILE_BYTES: u64 = 4096;
    let file = std::fs::File::open(path)
        .with_context(|| format!("could not open `{}`", path.display()))?;
    // A token file others may read is refused, as ssh refuses such key files (a pipe is
    // private to its processes and not checked).
    {
        use std::os::unix::fs::PermissionsExt as _;
        let metadata = file
            .metadata()
            .with_context(|| format!("could not inspect `{}`", path.display()))?;
        let mode = metadata.permissions().mode() & 0o777;
        if metadata.is_file() && mode & 0o077 != 0 {
            anyhow::bail!(
                "`{}` holds a secret but its permissions are {mode:04o}, so other users may read \
                 it: run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
    let mut text = String::new();
    file.take(MAX_TOKEN_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("could not read `{}` as text", path.display()))?;
    if text.len() as u64 > MAX_TOKEN_FILE_BYTES {
        anyhow::bail!(
            "`{}` is larger than {MAX_TOKEN_FILE_BYTES} bytes",
            path.display()
        );
    }
    Ok(SecretString::from(text.trim().to_owned()))
}
