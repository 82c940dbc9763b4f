//! `enigm agent`: the EnigmSecurityService daemon. It keeps its device key and enrollment in a
//! private state directory, enrolls once with an enrollment token read from a file, then checks
//! in every interval with a fresh signal report, signed with the device key (RFC 9421), and
//! records each evaluation for the local Trust Security Center (`enigm tsc`).
//!
//! After each check-in (also a refused one: a revoked device must still obey a wipe) the agent
//! asks Command for a pending lifecycle command (signed `GET /api/v1/device/commands`), carries
//! it out and acknowledges it: on `retire` it stops; on `wipe` it acknowledges first, then
//! deletes its device key, enrollment and last evaluation (a simulated wipe of this device's
//! Enigm state), and stops.
//!
//! Request bodies are built only from a [`SignalReport`]: a profile's `[hardware]` identifiers
//! live in a type that cannot be serialised, so they have no way into a request.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use enigm_api::{
    CheckInRequest, CommandAckRequest, CommandAckResponse, DeviceCommandsView, EnrollRequest,
    EnrollResponse, TrustView, paths,
};
use enigm_crypto::Ed25519SigningKey;
use enigm_device::{NONCE_LEN, RequestParts, sign_request};
use enigm_trust::{DeviceCommand, SignalReport};
use enigm_types::DeviceHandle;
use rand::RngCore as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::collect;
use super::profile::Profile;
use super::report::system_now;
use super::state::{self, StateDir};
use super::tsc::TscRecord;
use crate::cli::GlobalArgs;
use crate::client::{ClientError, CommandClient, RequestError, ServerUrl};
use crate::secrets;

/// Error codes after which checking in again cannot succeed without an operator.
const FINAL_REFUSALS: &[&str] = &[
    "device_revoked",
    "device_not_active",
    "unknown_device",
    "invalid_enrollment_token",
    "already_enrolled",
];

#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// Directory of the agent's device key, enrollment and last evaluation (created with mode
    /// 0700; refused when others can read it).
    #[arg(long, value_name = "DIR")]
    state_dir: PathBuf,
    /// File whose content is the enrollment token; needed only for the first run. The token is
    /// never taken as an argument.
    #[arg(long, value_name = "FILE")]
    enrollment_token_file: Option<PathBuf>,
    /// Device profile (TOML) declaring the signals of a simulated device; without it, the real
    /// collectors measure this host. Its `[hardware]` identifiers are never transmitted.
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
    /// Run one cycle (enroll when needed, then one check-in) and exit.
    #[arg(long)]
    once: bool,
    /// Seconds between check-ins in daemon mode.
    #[arg(long, value_name = "SECONDS", default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=86_400))]
    interval: u64,
    /// Consent to managed-device mode, recorded at enrollment.
    #[arg(long)]
    managed_opt_in: bool,
    /// Consent to remote wipe, recorded at enrollment.
    #[arg(long)]
    wipe_opt_in: bool,
    /// INSECURE, for demos and tests: attest with Android-format chains minted under the
    /// development root in DIR (`enigm attest dev-root`, or the one `enigm up
    /// --insecure-dev-attestation-root DIR` created), for a simulated hardware key kept in the
    /// state directory. Command accepts them only when it trusts that root.
    #[arg(long, value_name = "DIR")]
    insecure_dev_attestation_root: Option<PathBuf>,
    /// Seconds between attestations (with a development root); the first comes with enrollment.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600,
        value_parser = clap::value_parser!(u64).range(1..=86_400))]
    attest_every: u64,
    /// The OTA repository's root metadata this device is provisioned with (`enigm ota keys
    /// init` writes it). With it, each cycle also looks for an OS image to install in the A/B
    /// slots under the state directory.
    #[arg(long, value_name = "FILE")]
    ota_trusted_root: Option<PathBuf>,
    /// The device's hardware model, matched against a release's compatible models.
    #[arg(long, default_value = "enigm-sim")]
    model: String,
    /// The release channel the device follows.
    #[arg(long, default_value = "stable")]
    channel: String,
}

/// What `<state-dir>/enrollment.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Enrollment {
    pub(crate) server: String,
    pub(crate) handle: DeviceHandle,
    /// RFC 3339.
    pub(crate) enrolled_at: String,
}

/// A client for device requests (no session) to the server of the global options, and the
/// path prefix that signed paths carry.
pub(crate) fn device_client(global: &GlobalArgs) -> anyhow::Result<(CommandClient, String)> {
    let server = global
        .server
        .as_deref()
        .context("no server given: pass --server URL (or set ENIGM_SERVER)")?;
    let server = ServerUrl::parse(server)?;
    let ca_pem = global
        .ca_cert
        .as_ref()
        .map(|path| {
            std::fs::read(path)
                .with_context(|| format!("could not read the ca certificate `{}`", path.display()))
        })
        .transpose()?;
    let client = CommandClient::new(server.clone(), ca_pem.as_deref(), None)?;
    Ok((client, path_prefix(&server)))
}

pub(crate) async fn run(global: &GlobalArgs, args: AgentArgs) -> anyhow::Result<()> {
    let (client, prefix) = device_client(global)?;
    let dir = StateDir::open(&args.state_dir)?;
    let key = dir.device_key()?;
    let profile = args
        .profile
        .as_deref()
        .map(|path| {
            Profile::load(path)
                .with_context(|| format!("could not load profile `{}`", path.display()))
        })
        .transpose()?;
    let dev_attestation = args
        .insecure_dev_attestation_root
        .as_deref()
        .map(|root| -> anyhow::Result<DevAttestation> {
            Ok(DevAttestation {
                root: crate::attest::load_dev_root(root)?,
                key: dir.attested_key()?,
                last: std::sync::Mutex::new(None),
            })
        })
        .transpose()?;
    let agent = Agent {
        client,
        prefix,
        key,
        dir,
        profile,
        args,
        dev_attestation,
    };
    agent.run().await
}

struct Agent {
    client: CommandClient,
    /// The path of the server URL, signed in front of the API paths.
    prefix: String,
    key: Ed25519SigningKey,
    dir: StateDir,
    profile: Option<Profile>,
    args: AgentArgs,
    dev_attestation: Option<DevAttestation>,
}

/// Attestation with a development root: the root, the simulated hardware key, and when the
/// last attestation was accepted.
struct DevAttestation {
    root: enigm_attest::dev::DevAttestationRoot,
    key: enigm_attest::dev::DevAttestedKey,
    last: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Agent {
    async fn run(&self) -> anyhow::Result<()> {
        if self.args.once {
            return self.cycle().await.map(|_| ());
        }
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("could not listen for SIGTERM")?;
        loop {
            match self.cycle().await {
                Ok(Cycle::Continue) => {}
                Ok(Cycle::Ended) => return Ok(()),
                Err(error) if is_final(&error) => return Err(error),
                // A server that is down or unreachable is retried at the next cycle.
                Err(error) => eprintln!("warning: check-in failed: {error:#}"),
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(self.args.interval)) => {}
                _ = tokio::signal::ctrl_c() => break,
                _ = terminate.recv() => break,
            }
        }
        println!("agent stopped");
        Ok(())
    }

    /// Enrolls when needed, checks in once and records the evaluation, then carries out a
    /// pending lifecycle command.
    async fn cycle(&self) -> anyhow::Result<Cycle> {
        let server = self.client.server().as_str();
        let enrollment = match self.dir.enrollment()? {
            Some(enrollment) if enrollment.server == server => enrollment,
            Some(enrollment) => anyhow::bail!(
                "the state directory is enrolled with `{}`, not `{server}`; use another --state-dir",
                enrollment.server
            ),
            None => self.enroll().await?,
        };
        let checked_in = self.check_in(&enrollment).await;
        let checked_in = match checked_in {
            Ok(()) => self.attest_when_due().await,
            refused => refused,
        };
        let checked_in = match checked_in {
            Ok(()) => self.update_when_configured().await,
            refused => refused,
        };
        // A refused check-in (revoked, ...) still asks for a command: a lost device must still
        // obey a wipe.
        match self.obey(&enrollment).await {
            Ok(Cycle::Ended) => Ok(Cycle::Ended),
            Ok(Cycle::Continue) => checked_in.map(|()| Cycle::Continue),
            Err(error) => match checked_in {
                Ok(()) => Err(error),
                Err(refused) => {
                    eprintln!("warning: could not ask for lifecycle commands: {error:#}");
                    Err(refused)
                }
            },
        }
    }

    /// Looks for an OS image and for policy and configuration bundles, and installs them (see
    /// `agent::ota`); each outcome is reported to Command. A refusal is an outcome, not an error
    /// of the cycle.
    async fn update_when_configured(&self) -> anyhow::Result<()> {
        let Some(trusted_root) = &self.args.ota_trusted_root else {
            return Ok(());
        };
        let settings = super::ota::OtaSettings {
            trusted_root: trusted_root.clone(),
            model: self.args.model.clone(),
            channel: self.args.channel.clone(),
        };
        let results = super::ota::update(
            &self.client,
            &settings,
            &self.args.state_dir,
            async |request: enigm_api::releases::InstallReportRequest| {
                self.signed::<_, enigm_api::releases::InstallReportResponse>(
                    paths::DEVICE_OTA_REPORTS,
                    &request,
                )
                .await
            },
        )
        .await?;
        super::ota::record_verification(&self.args.state_dir, &results, system_now())?;
        for result in results {
            match result {
                super::ota::UpdateResult::UpToDate => println!("ota: up to date"),
                super::ota::UpdateResult::Unavailable => println!("ota: repository unavailable"),
                super::ota::UpdateResult::Installed(name) => println!("ota: installed {name}"),
                super::ota::UpdateResult::RolledBack(name) => {
                    println!("ota: {name} failed its health check; rolled back");
                }
                super::ota::UpdateResult::Rejected(name, reason) => {
                    println!("ota: refused {name}: {}", reason.as_str());
                }
            }
        }
        Ok(())
    }

    async fn check_in(&self, enrollment: &Enrollment) -> anyhow::Result<()> {
        let server = self.client.server().as_str();
        let request = CheckInRequest {
            report: self.report(),
        };
        let trust: TrustView = self
            .signed(paths::DEVICE_CHECK_INS, &request)
            .await
            .context("the check-in was refused")?;
        let now = system_now();
        let record = TscRecord::new(enrollment.handle, server, &trust, now);
        self.dir.write_tsc(&record)?;
        println!(
            "{} checked in as {}: {} ({}), {} finding{}",
            now.to_rfc3339(),
            enrollment.handle,
            trust.state,
            trust.launcher_summary.label(),
            trust.findings.len(),
            if trust.findings.len() == 1 { "" } else { "s" }
        );
        Ok(())
    }

    /// Asks Command for a pending lifecycle command, carries it out and acknowledges it.
    async fn obey(&self, enrollment: &Enrollment) -> anyhow::Result<Cycle> {
        let signed_path = format!("{}{}", self.prefix, paths::DEVICE_COMMANDS);
        let headers = sign_request(
            &self.key,
            &RequestParts {
                method: "GET",
                path: &signed_path,
                query: "",
                body: b"",
            },
            system_now(),
            &fresh_nonce()?,
        );
        let commands: DeviceCommandsView = self
            .client
            .get_signed(paths::DEVICE_COMMANDS, &headers)
            .await
            .context("could not ask for lifecycle commands")?
            .value;
        let Some(command) = commands.pending else {
            return Ok(Cycle::Continue);
        };
        let acked: CommandAckResponse = self
            .signed(paths::DEVICE_COMMAND_ACK, &CommandAckRequest { command })
            .await
            .context("the command acknowledgement was refused")?;
        match command {
            DeviceCommand::Retire => println!(
                "{} retired by Command: acknowledged, device is {}; the agent stops",
                enrollment.handle, acked.state
            ),
            DeviceCommand::Wipe => {
                self.dir.wipe()?;
                println!(
                    "{} wiped by Command: acknowledged, device is {}; the device key, enrollment \
                     and last evaluation are deleted; the agent stops",
                    enrollment.handle, acked.state
                );
            }
        }
        Ok(Cycle::Ended)
    }

    async fn enroll(&self) -> anyhow::Result<Enrollment> {
        let file = self.args.enrollment_token_file.as_deref().context(
            "this device is not enrolled yet: pass --enrollment-token-file FILE with a token from `enigm admin enrollment-token create`",
        )?;
        let token = secrets::read_secret_file(file)?;
        let request = EnrollRequest {
            enrollment_token: secrecy::ExposeSecret::expose_secret(&token)
                .trim()
                .to_owned(),
            report: self.report(),
            managed_opt_in: self.args.managed_opt_in,
            wipe_opt_in: self.args.wipe_opt_in,
            attestation: self
                .evidence(enigm_api::attestation::AttestationPurpose::Enrollment)
                .await?,
        };
        let enrolled: EnrollResponse = self
            .signed(paths::DEVICE_ENROLL, &request)
            .await
            .context("the enrollment was refused")?;
        let enrollment = Enrollment {
            server: self.client.server().as_str().to_owned(),
            handle: enrolled.handle,
            enrolled_at: system_now().to_rfc3339(),
        };
        self.dir.write_enrollment(&enrollment)?;
        println!(
            "enrolled as {} ({}, {})",
            enrolled.handle, enrolled.state, enrolled.trust.state
        );
        Ok(enrollment)
    }

    /// Evidence for `purpose` when the agent attests with a development root.
    async fn evidence(
        &self,
        purpose: enigm_api::attestation::AttestationPurpose,
    ) -> anyhow::Result<Option<enigm_api::attestation::AttestationEvidence>> {
        let Some(dev) = &self.dev_attestation else {
            return Ok(None);
        };
        let patch_day = self
            .report()
            .patch_level()
            .and_then(|level| level.to_string().replace('-', "").parse().ok())
            .unwrap_or(20_251_105);
        let attester = super::attestation::DevAttester {
            root: &dev.root,
            key: &dev.key,
            patch_day,
        };
        let evidence = attester
            .attest(&self.client, &self.prefix, &self.key, purpose, system_now())
            .await?;
        if purpose == enigm_api::attestation::AttestationPurpose::Enrollment {
            *lock(&dev.last) = Some(std::time::Instant::now());
        }
        Ok(Some(evidence))
    }

    /// Attests again when the last attestation is older than `--attest-every`.
    async fn attest_when_due(&self) -> anyhow::Result<()> {
        let Some(dev) = &self.dev_attestation else {
            return Ok(());
        };
        let due = lock(&dev.last)
            .is_none_or(|last| last.elapsed() >= Duration::from_secs(self.args.attest_every));
        if !due {
            return Ok(());
        }
        let Some(evidence) = self
            .evidence(enigm_api::attestation::AttestationPurpose::Attestation)
            .await?
        else {
            return Ok(());
        };
        let view: enigm_api::attestation::AttestationView = self
            .signed(
                paths::DEVICE_ATTESTATION,
                &enigm_api::attestation::AttestRequest { evidence },
            )
            .await
            .context("the attestation was refused")?;
        *lock(&dev.last) = Some(std::time::Instant::now());
        println!("{} attested: {}", system_now().to_rfc3339(), view.verdict);
        Ok(())
    }

    /// The report of this cycle, measured now. Only this value reaches a request body.
    fn report(&self) -> SignalReport {
        let now = system_now();
        let root = Path::new("/");
        let report = match &self.profile {
            None => collect::collect_report(root, now),
            Some(profile) if profile.collects() => profile.report_with_collectors(root, now),
            Some(profile) => profile.report(now),
        };
        // The agent's own OTA verification, once it has tried an update.
        let measured = self
            .args
            .ota_trusted_root
            .as_ref()
            .and_then(|_| super::ota::verification_signal(&self.args.state_dir, now));
        match measured {
            Some(signal) => collect::with_measured(report, vec![signal]),
            None => report,
        }
    }

    /// POSTs `body` signed with the device key, a fresh nonce and the current time.
    async fn signed<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        post_signed(&self.client, &self.prefix, &self.key, path, body).await
    }
}

/// Whether the agent goes on after a cycle.
enum Cycle {
    Continue,
    /// Retired or wiped by Command: nothing more to do.
    Ended,
}

/// POSTs `body` to `path`, signed with `key`, a fresh nonce and the current time.
pub(crate) async fn post_signed<B: Serialize, T: DeserializeOwned>(
    client: &CommandClient,
    prefix: &str,
    key: &Ed25519SigningKey,
    path: &str,
    body: &B,
) -> anyhow::Result<T> {
    let bytes = serde_json::to_vec(body).context("could not encode the request")?;
    let signed_path = format!("{prefix}{path}");
    let headers = sign_request(
        key,
        &RequestParts {
            method: "POST",
            path: &signed_path,
            query: "",
            body: &bytes,
        },
        system_now(),
        &fresh_nonce()?,
    );
    let reply = client.post_signed::<T>(path, bytes, &headers).await?;
    Ok(reply.value)
}

fn fresh_nonce() -> anyhow::Result<[u8; NONCE_LEN]> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng
        .try_fill_bytes(&mut nonce)
        .context("the operating system gave no randomness")?;
    Ok(nonce)
}

/// The path part of the server URL (`""` for a server at the root).
fn path_prefix(server: &ServerUrl) -> String {
    reqwest::Url::parse(server.as_str())
        .map(|url| url.path().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

/// Whether the server refused the device for good (revoked, unknown, ...), as opposed to a
/// failure worth retrying.
fn is_final(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        let api = cause
            .downcast_ref::<RequestError>()
            .and_then(RequestError::api)
            .or_else(|| cause.downcast_ref::<ClientError>());
        api.is_some_and(|api| FINAL_REFUSALS.contains(&api.code.as_str()))
    }) || error
        .chain()
        .any(|cause| cause.downcast_ref::<state::StateError>().is_some())
}

/// A poisoned lock still holds a valid time: the guarded value is written in one assignment.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
