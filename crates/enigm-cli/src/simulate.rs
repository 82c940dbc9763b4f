//! `enigm simulate`: a fleet of simulated devices in one process, for demos and load
//! measurement. Each device is an `enigm_agent::core::Agent` — the same state machine as
//! `enigm agent` — with its own Ed25519 key and a profile (most protected, some
//! review-required, some inactive, and some that degrade halfway through the run); this module
//! is its driver, as `enigm_agent::shell` is the one device's. A fixed number of devices run a
//! cycle at once; with `--server` given more than once, devices are spread round-robin over the
//! servers (two Command replicas on one database, say). A live line shows progress on a
//! terminal, and the end prints each phase's rate and latency percentiles (`--json` for
//! scripts): enrollments, then check-ins and the lifecycle-command polls that follow them.
//!
//! With `--ota`, the timed phase measures the director instead: each device's cycle is a signed
//! update check (`POST /api/v1/device/ota/offer`), whose signed answer it verifies as a real
//! agent does (the director keys of `--ota-trusted-root`, its own handle, its request's nonce);
//! when offered an OS image it reports the install (or, for `--ota-fail-percent` of the fleet,
//! a rollback after a failed health check) and remembers the rollback index it now runs.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use enigm_agent::attestation::DevAttester;
use enigm_agent::core::{Agent, Config, Event, Exchange, Exit, Step, Verification};
use enigm_agent::http::DeviceClient;
use enigm_agent::report::system_now;
use enigm_api::releases::InstallReportRequest;
use enigm_api::rollouts::UpdateCheckRequest;
use enigm_crypto::Ed25519SigningKey;
use enigm_ota::director::DirectorKeys;
use enigm_trust::{PatchLevel, Signal, SignalKind, SignalReport, SignalSource, SignalValue};
use enigm_types::{DeviceHandle, InstallOutcome, ReasonCategory, Timestamp};
use indicatif::{ProgressBar, ProgressStyle};
use secrecy::SecretString;
use serde::Serialize;

use crate::cli::GlobalArgs;
use crate::client::ServerUrl;
use crate::secrets;

#[derive(Debug, Args)]
pub(crate) struct SimulateArgs {
    /// How many devices to simulate.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    devices: u32,
    /// Seconds of check-ins after every device has enrolled.
    #[arg(long, value_name = "SECONDS", default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=86_400))]
    duration: u64,
    /// File whose content is an enrollment token with at least `--devices` uses (the token is
    /// never taken as an argument).
    #[arg(long, value_name = "FILE")]
    enrollment_token_file: PathBuf,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    concurrency: u32,
    /// INSECURE, for demos: each device enrolls with an Android-format attestation chain minted
    /// under the development root in DIR, for its own simulated hardware key (see `enigm up
    /// --insecure-dev-attestation-root`).
    #[arg(long, value_name = "DIR")]
    insecure_dev_attestation_root: Option<PathBuf>,
    /// OTA mode: after enrolling, each device's cycle asks the director which OS image to
    /// install, verifies its signed answer and reports the install when offered; the timed
    /// phase measures these update checks instead of check-ins. The director offers OS images
    /// to attested devices only: give `--insecure-dev-attestation-root` too.
    #[arg(long, requires = "ota_trusted_root")]
    ota: bool,
    /// The trusted root the simulated devices are provisioned with (`enigm ota keys init
    /// --root-out FILE`): its pinned director keys verify the answers.
    #[arg(long, value_name = "FILE", requires = "ota")]
    ota_trusted_root: Option<PathBuf>,
    /// The hardware model the devices name in their update checks.
    #[arg(long, default_value = "enigm-sim", requires = "ota")]
    model: String,
    /// The release channel the devices follow.
    #[arg(long, default_value = "stable", requires = "ota")]
    channel: String,
    /// The OS image rollback index the devices start from (1: they run the release of index 1).
    #[arg(long, value_name = "INDEX", default_value_t = 0, requires = "ota")]
    ota_installed_rollback_index: u64,
    /// This percentage of the devices (the same ones at every run: device n when n mod 100 is
    /// below it) report an offered image as rolled back after a failed health check.
    #[arg(long, value_name = "P", default_value_t = 0, requires = "ota",
        value_parser = clap::value_parser!(u8).range(0..=100))]
    ota_fail_percent: u8,
    /// The metrics address of each `--server` (`enigm up --metrics-listen`), in the same order:
    /// the summary adds the CPU time each Command process used in the timed phase, in cores
    /// and per request it answered. On one machine the simulator's own CPU is not the
    /// server's: this is what the server costs.
    #[arg(long, value_name = "URL")]
    server_metrics: Vec<String>,
}

/// What OTA mode asks with and verifies against.
struct OtaMode {
    director: DirectorKeys,
    model: String,
    channel: String,
    fail_percent: u8,
}

/// The director keys pinned in the trusted root at `path` (checked against its own root
/// threshold, as a device checks the root it is provisioned with).
fn director_keys(path: &Path) -> anyhow::Result<DirectorKeys> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("could not read the trusted root `{}`", path.display()))?;
    let trusted = enigm_ota::TrustedMetadata::new(&bytes)
        .map_err(|error| anyhow::anyhow!("`{}` is not a trusted root: {error}", path.display()))?;
    enigm_ota::director::director_keys(trusted.root())
        .map_err(|error| anyhow::anyhow!("the director pin of `{}`: {error}", path.display()))?
        .with_context(|| {
            format!(
                "the trusted root `{}` pins no director\nhint: pin Command's director with \
                 `enigm ota keys rotate --role root --director`",
                path.display()
            )
        })
}

/// What kind of device a simulated device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    Protected,
    ReviewRequired,
    Inactive,
    /// Protected for the first half of the run, then its firewall degrades.
    Degrading,
}

impl Profile {
    /// Seven in ten protected, one each of the others.
    fn of(device: usize) -> Profile {
        match device % 10 {
            7 => Profile::ReviewRequired,
            8 => Profile::Inactive,
            9 => Profile::Degrading,
            _ => Profile::Protected,
        }
    }

    fn report(
        self,
        now: Timestamp,
        patch_level: PatchLevel,
        late: bool,
    ) -> anyhow::Result<SignalReport> {
        let signals = SignalKind::ALL
            .iter()
            .filter(|kind| !(self == Profile::Inactive && **kind == SignalKind::SecureBoot))
            .map(|&kind| {
                let degraded = kind == SignalKind::Firewall
                    && (self == Profile::ReviewRequired || (self == Profile::Degrading && late));
                Signal {
                    kind,
                    value: if degraded {
                        SignalValue::Degraded
                    } else {
                        SignalValue::Ok
                    },
                    observed_at: now,
                    source: SignalSource::Declared,
                }
            })
            .collect();
        SignalReport::new(signals, Some(patch_level)).context("a simulated report")
    }
}

struct Device {
    /// The device's core; `None` while a worker drives its cycle.
    core: Mutex<Option<Agent>>,
    /// The device key (the core holds its own copy): OTA mode signs its requests with it.
    key: Ed25519SigningKey,
    /// OTA mode: the rollback index of the OS image the device runs, and that of the last one
    /// it rolled back (not tried again in this run).
    installed_rollback_index: AtomicU64,
    rolled_back_index: AtomicU64,
    /// OTA mode: set once the device has asked the director in the timed phase.
    asked_director: AtomicBool,
    /// The simulated hardware key, when the fleet attests.
    attested_key: Option<enigm_attest::dev::DevAttestedKey>,
    profile: Profile,
    /// Which of the servers the device talks to.
    server: usize,
    /// Set when the agent stopped (refused for good, retired or wiped): no more cycles.
    stopped: AtomicBool,
    /// Set once a cycle ran in the second half of the run, when degrading profiles degrade.
    reported_late: AtomicBool,
}

/// What one request came to.
#[derive(Clone)]
enum Outcome {
    Ok,
    /// Command refused it with this code (an expected answer, e.g. a revoked device).
    Refused(String),
    /// Unreachable, a server error, or an answer without an error body.
    Failed(String),
}

/// Latencies in microseconds and outcomes of one kind of request.
#[derive(Default)]
struct PhaseRecord {
    latencies: Vec<u64>,
    ok: u64,
    refused: BTreeMap<String, u64>,
    failed: u64,
    first_failure: Option<String>,
}

impl PhaseRecord {
    fn merge(&mut self, other: PhaseRecord) {
        self.latencies.extend(other.latencies);
        self.ok += other.ok;
        for (code, count) in other.refused {
            *self.refused.entry(code).or_default() += count;
        }
        self.failed += other.failed;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
    }

    fn record(&mut self, started: Instant, outcome: Outcome) {
        self.latencies
            .push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Refused(code) => *self.refused.entry(code).or_default() += 1,
            Outcome::Failed(failure) => {
                self.failed += 1;
                if self.first_failure.is_none() {
                    self.first_failure = Some(failure);
                }
            }
        }
    }

    fn summary(&mut self, elapsed: Duration) -> PhaseSummary {
        self.latencies.sort_unstable();
        let percentile = |p: f64| -> f64 {
            if self.latencies.is_empty() {
                return 0.0;
            }
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss,
                reason = "an index into a sorted list of at most millions of latencies"
            )]
            let index = ((self.latencies.len() - 1) as f64 * p).round() as usize;
            let micros = self.latencies.get(index).copied().unwrap_or_default();
            to_millis(micros)
        };
        let requests = self.ok + self.refused.values().sum::<u64>() + self.failed;
        #[allow(
            clippy::cast_precision_loss,
            reason = "a request count as a rate: exact far beyond any run"
        )]
        let per_second = requests as f64 / elapsed.as_secs_f64().max(f64::EPSILON);
        PhaseSummary {
            requests,
            ok: self.ok,
            refused: self.refused.clone(),
            failed: self.failed,
            seconds: elapsed.as_secs_f64(),
            per_second,
            latency_ms: Percentiles {
                p50: percentile(0.50),
                p90: percentile(0.90),
                p95: percentile(0.95),
                p99: percentile(0.99),
                max: to_millis(self.latencies.last().copied().unwrap_or_default()),
            },
        }
    }
}

#[allow(
    clippy::cast_precision_loss,
    reason = "microseconds as fractional milliseconds, for display"
)]
fn to_millis(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

#[derive(Serialize)]
struct Percentiles {
    p50: f64,
    p90: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

#[derive(Serialize)]
struct PhaseSummary {
    requests: u64,
    ok: u64,
    /// Refusals by error code (expected ones, e.g. a device the server stopped trusting).
    refused: BTreeMap<String, u64>,
    /// Requests that failed for another reason: transport errors, server errors.
    failed: u64,
    seconds: f64,
    per_second: f64,
    latency_ms: Percentiles,
}

#[derive(Serialize)]
struct ServerSummary {
    url: String,
    check_in: PhaseSummary,
    /// OTA mode: the update checks it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    update_check: Option<PhaseSummary>,
    /// With `--server-metrics`: the CPU the process used in the timed phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu: Option<ServerCpu>,
}

/// The CPU time one Command process used in the timed phase, from its
/// `enigm_process_cpu_seconds` before and after.
#[derive(Serialize)]
struct ServerCpu {
    seconds: f64,
    /// Seconds of CPU per second of the phase: the cores it kept busy.
    cores: f64,
    /// Microseconds of CPU per request of the timed phase it answered: per update check in
    /// OTA mode, else per check-in (with the command poll that follows each).
    per_request_us: f64,
}

/// The metric `enigm up --metrics-listen` reports the process's CPU time in.
const CPU_METRIC: &str = "enigm_process_cpu_seconds";

/// Reads the process's CPU seconds from the metrics at `url` (the address `enigm up` prints,
/// with or without `/metrics`).
async fn server_cpu_seconds(http: &reqwest::Client, url: &str) -> anyhow::Result<f64> {
    let url = url.trim_end_matches('/');
    let url = if url.ends_with("/metrics") {
        url.to_owned()
    } else {
        format!("{url}/metrics")
    };
    let text = http
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("could not read the server's metrics at {url}"))?
        .text()
        .await
        .with_context(|| format!("could not read the server's metrics at {url}"))?;
    text.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(' ')?;
            (name == CPU_METRIC).then(|| value.trim().parse::<f64>().ok())?
        })
        .with_context(|| format!("{url} reports no {CPU_METRIC} (a Command of this version does)"))
}

/// Every server's CPU seconds now, in `--server-metrics` order.
async fn servers_cpu_seconds(http: &reqwest::Client, urls: &[String]) -> anyhow::Result<Vec<f64>> {
    let mut seconds = Vec::with_capacity(urls.len());
    for url in urls {
        seconds.push(server_cpu_seconds(http, url).await?);
    }
    Ok(seconds)
}

#[derive(Serialize)]
struct Summary {
    devices: u32,
    concurrency: u32,
    /// The servers the devices were spread over, round-robin, each with the check-ins it
    /// answered (to compare replicas within one run).
    servers: Vec<ServerSummary>,
    /// The enrollments, over the enroll phase's time: each device's first cycle, which also
    /// checks in and polls once (those requests count as failures if they fail, not here).
    enroll: PhaseSummary,
    check_in: PhaseSummary,
    /// The lifecycle-command polls (and acknowledgements) after each check-in.
    commands: PhaseSummary,
    /// OTA mode: the signed update checks the director answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    update_check: Option<PhaseSummary>,
    /// OTA mode: the install reports sent after offers.
    #[serde(skip_serializing_if = "Option::is_none")]
    install_reports: Option<PhaseSummary>,
    /// OTA mode: what the director offered and what came of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    ota: Option<OtaCounts>,
    /// The last trust state each device reported, counted.
    trust_states: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_failure: Option<String>,
}

type TrustState = enigm_trust::TrustState;

pub(crate) async fn run(global: &GlobalArgs, args: SimulateArgs) -> anyhow::Result<()> {
    if global.servers.is_empty() {
        anyhow::bail!("no server given: pass --server URL (or set ENIGM_SERVER)");
    }
    if !args.server_metrics.is_empty() && args.server_metrics.len() != global.servers.len() {
        anyhow::bail!(
            "{} --server-metrics for {} --server: give one metrics address per server, in the \
             same order",
            args.server_metrics.len(),
            global.servers.len()
        );
    }
    let metrics_http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("could not build the metrics client")?;
    let ca_pem = global
        .ca_cert
        .as_ref()
        .map(|path| {
            std::fs::read(path)
                .with_context(|| format!("could not read the ca certificate `{}`", path.display()))
        })
        .transpose()?;
    let clients = global
        .servers
        .iter()
        .map(|server| -> anyhow::Result<DeviceClient> {
            let server = ServerUrl::parse(server)?;
            Ok(DeviceClient::new(server.as_str(), ca_pem.as_deref())?)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let token = secrets::read_secret_file(&args.enrollment_token_file)?;
    let token = SecretString::from(
        secrecy::ExposeSecret::expose_secret(&token)
            .trim()
            .to_owned(),
    );
    let count = usize::try_from(args.devices).context("device count")?;
    let dev_root = args
        .insecure_dev_attestation_root
        .as_deref()
        .map(crate::attest::load_dev_root)
        .transpose()?;
    let devices = (0..count)
        .map(|n| -> anyhow::Result<Device> {
            let server = n % clients.len();
            let client = clients.get(server).context("a server")?;
            let config = Config {
                server: client.server().to_owned(),
                path_prefix: client.path_prefix().to_owned(),
                managed_opt_in: false,
                wipe_opt_in: false,
                attests: dev_root.is_some(),
                // The fleet attests with its enrollment only, as a load test of check-ins.
                attest_every: Duration::from_secs(365 * 24 * 60 * 60),
                updates: false,
                interval: Duration::ZERO,
                once: false,
            };
            let key = Ed25519SigningKey::generate(&mut rand::rngs::OsRng);
            let core = Agent::new(
                config,
                key.clone(),
                None,
                Some(token.clone()),
                Verification::None,
            )?;
            Ok(Device {
                core: Mutex::new(Some(core)),
                key,
                installed_rollback_index: AtomicU64::new(args.ota_installed_rollback_index),
                rolled_back_index: AtomicU64::new(0),
                asked_director: AtomicBool::new(false),
                attested_key: dev_root
                    .as_ref()
                    .map(|_| enigm_attest::dev::DevAttestedKey::generate())
                    .transpose()
                    .context("could not generate a simulated hardware key")?,
                profile: Profile::of(n),
                server,
                reported_late: AtomicBool::new(false),
                stopped: AtomicBool::new(false),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ota = match (&args.ota_trusted_root, args.ota) {
        (Some(root), true) => Some(OtaMode {
            director: director_keys(root)?,
            model: args.model.clone(),
            channel: args.channel.clone(),
            fail_percent: args.ota_fail_percent,
        }),
        _ => None,
    };
    let fleet = Arc::new(Fleet {
        ota,
        clients,
        devices,
        patch_level: recent_patch_level()?,
        dev_root,
        trust: (0..count).map(|_| AtomicU64::new(0)).collect(),
        done: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    let progress = Progress::new(global.json);

    progress.phase("enrolling");
    let started = Instant::now();
    let mut enroll = run_phase(&fleet, &args, &progress, Phase::Enroll, None).await?;
    let enroll_failure = enroll.enroll.first_failure.take();
    let enroll_elapsed = started.elapsed();
    let enroll_summary = enroll.enroll.summary(enroll_elapsed);

    let timed = if fleet.ota.is_some() {
        progress.phase("asking the director");
        Phase::UpdateCheck
    } else {
        progress.phase("checking in");
        Phase::CheckIn
    };
    let cpu_before = servers_cpu_seconds(&metrics_http, &args.server_metrics).await?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let mut check_in = run_phase(&fleet, &args, &progress, timed, Some(deadline)).await?;
    let cpu_after = servers_cpu_seconds(&metrics_http, &args.server_metrics).await?;
    let first_failure = check_in
        .check_in
        .first_failure
        .take()
        .or(check_in.commands.first_failure.take())
        .or(check_in.update_check.first_failure.take())
        .or(check_in.install_reports.first_failure.take());
    let elapsed = started.elapsed();
    let check_in_summary = check_in.check_in.summary(elapsed);
    let commands_summary = check_in.commands.summary(elapsed);
    let (update_check, install_reports, ota) = if fleet.ota.is_some() {
        (
            Some(check_in.update_check.summary(elapsed)),
            Some(check_in.install_reports.summary(elapsed)),
            Some(std::mem::take(&mut check_in.ota)),
        )
    } else {
        (None, None, None)
    };
    progress.finish();

    let mut trust_states = BTreeMap::new();
    for state in &fleet.trust {
        let name = match state.load(Ordering::Relaxed) {
            1 => TrustState::Protected.as_str(),
            2 => TrustState::ReviewRequired.as_str(),
            3 => TrustState::Inactive.as_str(),
            _ => "none",
        };
        *trust_states.entry(name.to_owned()).or_default() += 1;
    }
    // The first cycle of each device (in the enroll phase) also checks in and polls; those
    // count as failures too, though only the enrollments make the enroll phase's figures.
    let failed = enroll_summary.failed
        + enroll.check_in.failed
        + enroll.commands.failed
        + check_in_summary.failed
        + commands_summary.failed
        + update_check.as_ref().map_or(0, |phase| phase.failed)
        + install_reports.as_ref().map_or(0, |phase| phase.failed)
        + ota.as_ref().map_or(0, |ota| ota.answers_refused);
    let summary = Summary {
        devices: args.devices,
        concurrency: args.concurrency,
        servers: fleet
            .clients
            .iter()
            .enumerate()
            .map(|(index, client)| {
                let check_in_phase = check_in
                    .check_in_by_server
                    .remove(&index)
                    .unwrap_or_default()
                    .summary(elapsed);
                let update_check = fleet.ota.as_ref().map(|_| {
                    check_in
                        .update_check_by_server
                        .remove(&index)
                        .unwrap_or_default()
                        .summary(elapsed)
                });
                let answered = update_check
                    .as_ref()
                    .map_or(check_in_phase.requests, |phase| phase.requests);
                let cpu = cpu_before
                    .get(index)
                    .zip(cpu_after.get(index))
                    .map(|(before, after)| {
                        let seconds = (after - before).max(0.0);
                        ServerCpu {
                            seconds,
                            cores: seconds / elapsed.as_secs_f64().max(f64::EPSILON),
                            per_request_us: seconds * 1e6 / (answered.max(1) as f64),
                        }
                    });
                ServerSummary {
                    url: client.server().to_owned(),
                    check_in: check_in_phase,
                    update_check,
                    cpu,
                }
            })
            .collect(),
        enroll: enroll_summary,
        check_in: check_in_summary,
        commands: commands_summary,
        update_check,
        install_reports,
        ota,
        trust_states,
        first_failure: enroll_failure
            .or(enroll.check_in.first_failure.take())
            .or(first_failure),
    };
    if global.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    // A run in which nothing enrolled (a wrong or used-up token) or a whole phase was refused
    // measured nothing: it must not look like a success to a script or CI.
    if summary.enroll.ok == 0 {
        anyhow::bail!(
            "no device enrolled: all {} enrollment(s) were refused or failed{}\n\
             hint: --enrollment-token-file needs a live token with at least --devices uses: \
             enigm admin enrollment-token create --group GROUP --uses {}",
            summary.enroll.requests,
            refusal_codes(&summary.enroll),
            args.devices
        );
    }
    for (phase, record) in [
        ("check-in", Some(&summary.check_in)),
        ("command poll", Some(&summary.commands)),
        ("update check", summary.update_check.as_ref()),
        ("install report", summary.install_reports.as_ref()),
    ] {
        let Some(record) = record else {
            continue;
        };
        if record.requests > 0 && record.ok == 0 {
            anyhow::bail!(
                "every {phase} failed ({} request(s)){}",
                record.requests,
                refusal_codes(record)
            );
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} request(s) failed");
    }
    Ok(())
}

/// ` (refused: code ×n, …)`, or nothing when no request of the phase was refused.
fn refusal_codes(summary: &PhaseSummary) -> String {
    if summary.refused.is_empty() {
        return String::new();
    }
    let codes: Vec<String> = summary
        .refused
        .iter()
        .map(|(code, count)| format!("{code} x{count}"))
        .collect();
    format!(" (refused: {})", codes.join(", "))
}

/// What OTA mode's devices were offered and did with it.
#[derive(Default, Serialize)]
struct OtaCounts {
    /// Verified answers that offered an OS image.
    offers: u64,
    /// Install reports Command took: installed, and rolled back.
    installed: u64,
    rolled_back: u64,
    /// The installs by release version.
    installed_versions: BTreeMap<String, u64>,
    /// Answers whose verification failed (a failure of the run).
    answers_refused: u64,
}

impl OtaCounts {
    fn merge(&mut self, other: OtaCounts) {
        self.offers += other.offers;
        self.installed += other.installed;
        self.rolled_back += other.rolled_back;
        for (version, count) in other.installed_versions {
            *self.installed_versions.entry(version).or_default() += count;
        }
        self.answers_refused += other.answers_refused;
    }
}

struct Fleet {
    /// Set in OTA mode.
    ota: Option<OtaMode>,
    clients: Vec<DeviceClient>,
    devices: Vec<Device>,
    patch_level: PatchLevel,
    dev_root: Option<enigm_attest::dev::DevAttestationRoot>,
    /// Each device's last trust state (0 none, 1 protected, 2 review required, 3 inactive).
    trust: Vec<AtomicU64>,
    /// Requests answered so far, and how many of them failed: the progress line.
    done: AtomicU64,
    errors: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Enroll,
    CheckIn,
    /// OTA mode's timed phase.
    UpdateCheck,
}

/// The records of one phase, by kind of request.
#[derive(Default)]
struct Records {
    enroll: PhaseRecord,
    check_in: PhaseRecord,
    commands: PhaseRecord,
    /// Attestation challenges and evidence: counted, not summarised.
    attestation: PhaseRecord,
    /// The check-ins again, by the server that answered them.
    check_in_by_server: BTreeMap<usize, PhaseRecord>,
    /// OTA mode: update checks (again by server), install reports, and what came of them.
    update_check: PhaseRecord,
    update_check_by_server: BTreeMap<usize, PhaseRecord>,
    install_reports: PhaseRecord,
    ota: OtaCounts,
}

impl Records {
    fn merge(&mut self, other: Records) {
        self.enroll.merge(other.enroll);
        self.check_in.merge(other.check_in);
        self.commands.merge(other.commands);
        self.attestation.merge(other.attestation);
        self.update_check.merge(other.update_check);
        for (server, record) in other.update_check_by_server {
            self.update_check_by_server
                .entry(server)
                .or_default()
                .merge(record);
        }
        self.install_reports.merge(other.install_reports);
        self.ota.merge(other.ota);
        for (server, record) in other.check_in_by_server {
            self.check_in_by_server
                .entry(server)
                .or_default()
                .merge(record);
        }
    }

    fn of(&mut self, exchange: Exchange) -> &mut PhaseRecord {
        match exchange {
            Exchange::Enrollment => &mut self.enroll,
            // A proxy credential is not part of a cycle; were one simulated, it would be a
            // device's periodic request like a check-in.
            Exchange::CheckIn | Exchange::ProxyCredential => &mut self.check_in,
            Exchange::Commands | Exchange::CommandAck => &mut self.commands,
            Exchange::AttestationChallenge | Exchange::Attestation => &mut self.attestation,
        }
    }
}

/// Runs `concurrency` workers, each driving one device's cycle at a time. Enrollment runs
/// each device's first cycle once; check-ins go round the fleet until the deadline.
async fn run_phase(
    fleet: &Arc<Fleet>,
    args: &SimulateArgs,
    progress: &Progress,
    phase: Phase,
    deadline: Option<Instant>,
) -> anyhow::Result<Records> {
    let next = Arc::new(AtomicUsize::new(0));
    let closing = Arc::new(AtomicUsize::new(0));
    let half_time = deadline.map(|end| end - Duration::from_secs(args.duration) / 2);
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let fleet = fleet.clone();
            let next = next.clone();
            let closing = closing.clone();
            tokio::spawn(async move {
                let mut records = Records::default();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let device = match phase {
                        Phase::Enroll if n >= fleet.devices.len() => break,
                        Phase::Enroll => n,
                        Phase::CheckIn | Phase::UpdateCheck => {
                            if deadline.is_some_and(|end| Instant::now() >= end) {
                                break;
                            }
                            n % fleet.devices.len()
                        }
                    };
                    let late = half_time.is_some_and(|half| Instant::now() >= half);
                    let cycled = if phase == Phase::UpdateCheck {
                        fleet.update_check(device, &mut records).await
                    } else {
                        fleet.cycle(device, late, &mut records).await
                    };
                    if !cycled {
                        if fleet
                            .devices
                            .iter()
                            .all(|d| d.stopped.load(Ordering::Relaxed))
                        {
                            break;
                        }
                        // Busy with another worker, or stopped: let the others run.
                        tokio::task::yield_now().await;
                    }
                }
                // The closing round: every device that has not reported since the halfway
                // point reports once more, so the fleet's final states (a degrading device is
                // degraded at the end) do not depend on how fast the server answered.
                if phase == Phase::UpdateCheck {
                    // Likewise every device asks the director at least once, so what a fleet
                    // is offered does not depend on how fast the server answered.
                    loop {
                        let n = closing.fetch_add(1, Ordering::Relaxed);
                        let Some(device) = fleet.devices.get(n) else {
                            break;
                        };
                        while !device.asked_director.load(Ordering::Relaxed)
                            && !device.stopped.load(Ordering::Relaxed)
                        {
                            if !fleet.update_check(n, &mut records).await {
                                tokio::task::yield_now().await;
                            }
                        }
                    }
                }
                if phase == Phase::CheckIn {
                    loop {
                        let n = closing.fetch_add(1, Ordering::Relaxed);
                        let Some(device) = fleet.devices.get(n) else {
                            break;
                        };
                        // Busy with a worker still in its last cycle: wait for it.
                        while !device.reported_late.load(Ordering::Relaxed)
                            && !device.stopped.load(Ordering::Relaxed)
                        {
                            if !fleet.cycle(n, true, &mut records).await {
                                tokio::task::yield_now().await;
                            }
                        }
                    }
                }
                records
            })
        })
        .collect();
    let ticker = {
        let fleet = fleet.clone();
        let bar = progress.bar.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut ticks = tokio::time::interval(Duration::from_millis(250));
            loop {
                ticks.tick().await;
                let done = fleet.done.load(Ordering::Relaxed);
                #[allow(clippy::cast_precision_loss, reason = "a rate for display")]
                let rate = done as f64 / started.elapsed().as_secs_f64().max(f64::EPSILON);
                bar.set_message(format!(
                    "{done} requests, {rate:.0}/s, {} refused or failed",
                    fleet.errors.load(Ordering::Relaxed)
                ));
            }
        })
    };
    let mut records = Records::default();
    for worker in workers {
        records.merge(worker.await.context("a simulated device task stopped")?);
    }
    ticker.abort();
    fleet.done.store(0, Ordering::Relaxed);
    fleet.errors.store(0, Ordering::Relaxed);
    Ok(records)
}

impl Fleet {
    /// OTA mode's cycle of device `n`: one update check, and an install report when offered;
    /// `false` when the device was busy or has stopped.
    async fn update_check(&self, n: usize, records: &mut Records) -> bool {
        let (Some(device), Some(ota)) = (self.devices.get(n), &self.ota) else {
            return false;
        };
        if device.stopped.load(Ordering::Relaxed) {
            return false;
        }
        // The core is held for the cycle, so that no other worker drives the device meanwhile.
        let Some(core) = lock(&device.core).take() else {
            return false;
        };
        match core.handle() {
            Some(handle) => {
                self.ask_director(n, device, ota, &handle, records).await;
                device.asked_director.store(true, Ordering::Relaxed);
            }
            // Never enrolled: it has nothing to ask as.
            None => device.stopped.store(true, Ordering::Relaxed),
        }
        *lock(&device.core) = Some(core);
        true
    }

    async fn ask_director(
        &self,
        n: usize,
        device: &Device,
        ota: &OtaMode,
        handle: &DeviceHandle,
        records: &mut Records,
    ) {
        let Some(client) = self.clients.get(device.server) else {
            return;
        };
        let installed = device.installed_rollback_index.load(Ordering::Relaxed);
        let request = UpdateCheckRequest {
            model: ota.model.clone(),
            channel: ota.channel.clone(),
            installed_rollback_index: installed,
        };
        let started = Instant::now();
        let sent = client
            .post_signed_answer(&device.key, enigm_api::paths::DEVICE_OTA_OFFER, &request)
            .await;
        let (outcome, reply) = match sent {
            Ok((nonce, answer)) => (
                outcome_of(answer.status, &answer.body),
                Some((nonce, answer)),
            ),
            Err(error) => (Outcome::Failed(format!("{error:#}")), None),
        };
        let answered = self.count(&outcome);
        records
            .update_check_by_server
            .entry(device.server)
            .or_default()
            .record(started, outcome.clone());
        records.update_check.record(started, outcome);
        let Some((nonce, answer)) = reply.filter(|_| answered) else {
            return;
        };
        let verified = match enigm_ota::director::verify_answer(
            &answer.body,
            &ota.director,
            handle,
            &nonce,
            system_now(),
        ) {
            Ok(verified) => verified,
            Err(error) => {
                records.ota.answers_refused += 1;
                if records.update_check.first_failure.is_none() {
                    records.update_check.first_failure =
                        Some(format!("the director's answer was refused: {error}"));
                }
                return;
            }
        };
        let Some(offer) = verified.offer() else {
            return;
        };
        records.ota.offers += 1;
        let index = offer.rollback_index();
        if index <= installed || index == device.rolled_back_index.load(Ordering::Relaxed) {
            return;
        }
        let fails = n % 100 < usize::from(ota.fail_percent);
        let report = InstallReportRequest {
            target_name: offer.target_name().to_owned(),
            release_version: offer.release_version().to_owned(),
            outcome: if fails {
                InstallOutcome::RolledBack
            } else {
                InstallOutcome::Installed
            },
            reason: fails.then_some(ReasonCategory::HealthCheckFailed),
        };
        let started = Instant::now();
        let outcome = match client
            .post_signed_answer(&device.key, enigm_api::paths::DEVICE_OTA_REPORTS, &report)
            .await
        {
            Ok((_, answer)) => outcome_of(answer.status, &answer.body),
            Err(error) => Outcome::Failed(format!("{error:#}")),
        };
        let recorded = self.count(&outcome);
        records.install_reports.record(started, outcome);
        if !recorded {
            return;
        }
        if fails {
            device.rolled_back_index.store(index, Ordering::Relaxed);
            records.ota.rolled_back += 1;
        } else {
            device
                .installed_rollback_index
                .store(index, Ordering::Relaxed);
            records.ota.installed += 1;
            *records
                .ota
                .installed_versions
                .entry(offer.release_version().to_owned())
                .or_default() += 1;
        }
    }

    /// Counts a request for the progress line; whether it was answered with a 2xx.
    fn count(&self, outcome: &Outcome) -> bool {
        self.done.fetch_add(1, Ordering::Relaxed);
        let ok = matches!(outcome, Outcome::Ok);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Drives one cycle of device `n`'s core; `false` when it was busy or has stopped.
    async fn cycle(&self, n: usize, late: bool, records: &mut Records) -> bool {
        let Some(device) = self.devices.get(n) else {
            return false;
        };
        if device.stopped.load(Ordering::Relaxed) {
            return false;
        }
        let Some(mut core) = lock(&device.core).take() else {
            return false;
        };
        let stopped = self.drive(n, device, &mut core, late, records).await;
        if stopped {
            device.stopped.store(true, Ordering::Relaxed);
        }
        if late {
            device.reported_late.store(true, Ordering::Relaxed);
        }
        *lock(&device.core) = Some(core);
        true
    }

    /// Runs the cycle; whether the agent stopped.
    async fn drive(
        &self,
        n: usize,
        device: &Device,
        core: &mut Agent,
        late: bool,
        records: &mut Records,
    ) -> bool {
        let Some(client) = self.clients.get(device.server) else {
            return true;
        };
        let now = system_now();
        let report = match device.profile.report(now, self.patch_level, late) {
            Ok(report) => report,
            Err(_) => return true,
        };
        // Simulated devices have been through the setup wizard.
        if core
            .start_cycle(now, report, enigm_types::SetupStep::REQUIRED.to_vec())
            .is_err()
        {
            return true;
        }
        let mut rng = rand::rngs::OsRng;
        loop {
            let Some(step) = core.poll(system_now(), &mut rng) else {
                return true;
            };
            let fed = match step {
                Step::Send(request) => {
                    let started = Instant::now();
                    let answer = client.send(&request).await;
                    let outcome = match &answer {
                        Ok(answer) => outcome_of(answer.status, &answer.body),
                        Err(error) => Outcome::Failed(error.to_string()),
                    };
                    if !matches!(outcome, Outcome::Ok) {
                        self.errors.fetch_add(1, Ordering::Relaxed);
                    }
                    self.done.fetch_add(1, Ordering::Relaxed);
                    if request.exchange == Exchange::CheckIn {
                        records
                            .check_in_by_server
                            .entry(device.server)
                            .or_default()
                            .record(started, outcome.clone());
                    }
                    records.of(request.exchange).record(started, outcome);
                    match answer {
                        Ok(answer) => {
                            core.handle_response(system_now(), answer.status, &answer.body)
                        }
                        Err(error) => core.handle_unreachable(system_now(), error.to_string()),
                    }
                }
                Step::MintEvidence(request) => {
                    let evidence = self.evidence(device, &request);
                    core.handle_evidence(system_now(), evidence)
                }
                Step::Report(Event::Enrolled { trust, .. }) => {
                    self.note_trust(n, trust);
                    Ok(())
                }
                Step::Report(Event::CheckedIn { trust, .. }) => {
                    self.note_trust(n, trust.state);
                    Ok(())
                }
                // Nothing to keep or show: a simulated device lives in memory, and every
                // request is counted above.
                Step::Report(_) | Step::Persist(_) | Step::Wipe => Ok(()),
                Step::Update { .. } => core.handle_update(system_now(), Ok(Vec::new())),
                Step::Sleep { .. } => return false,
                Step::Stop(exit) => return !matches!(exit, Exit::Completed),
            };
            if fed.is_err() {
                return true;
            }
        }
    }

    /// Evidence minted under the development root, when the fleet attests.
    fn evidence(
        &self,
        device: &Device,
        request: &enigm_agent::core::EvidenceRequest,
    ) -> Result<enigm_api::attestation::AttestationEvidence, String> {
        let (Some(root), Some(key)) = (&self.dev_root, &device.attested_key) else {
            return Err("the fleet does not attest".to_owned());
        };
        DevAttester {
            root,
            key,
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

    fn note_trust(&self, device: usize, state: TrustState) {
        let code = match state {
            TrustState::Protected => 1,
            TrustState::ReviewRequired => 2,
            TrustState::Inactive => 3,
        };
        if let Some(slot) = self.trust.get(device) {
            slot.store(code, Ordering::Relaxed);
        }
    }
}

/// A 2xx is ok; a 4xx with Command's error body is a refusal with its code; anything else
/// (a 5xx, an answer without an error body) is a failure.
fn outcome_of(status: u16, body: &[u8]) -> Outcome {
    if (200..300).contains(&status) {
        return Outcome::Ok;
    }
    match serde_json::from_slice::<enigm_api::ErrorBody>(body) {
        Ok(error) if (400..500).contains(&status) => Outcome::Refused(error.code),
        Ok(error) => Outcome::Failed(format!("{status}: {} ({})", error.message, error.code)),
        Err(_) => Outcome::Failed(format!("unexpected answer {status} without an error body")),
    }
}

/// A poisoned lock still holds a whole core: it is replaced in one assignment.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A patch level ten days old: recent enough for the baseline policy.
fn recent_patch_level() -> anyhow::Result<PatchLevel> {
    let date = (time::OffsetDateTime::now_utc() - time::Duration::days(10)).date();
    PatchLevel::new(
        u16::try_from(date.year()).context("year")?,
        u8::from(date.month()),
        date.day(),
    )
    .map_err(|error| anyhow::anyhow!("{error}"))
}

/// The live line on stderr, when it is a terminal and the output is not JSON.
struct Progress {
    bar: ProgressBar,
}

impl Progress {
    fn new(json: bool) -> Self {
        let bar = if !json && std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress { bar }
    }

    fn phase(&self, name: &'static str) {
        self.bar.set_prefix(name);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn print_summary(summary: &Summary) {
    println!(
        "{} simulated devices, {} requests in flight",
        summary.devices, summary.concurrency
    );
    for server in &summary.servers {
        let (what, phase) = match &server.update_check {
            Some(update_check) => ("update checks", update_check),
            None => ("check-ins", &server.check_in),
        };
        println!(
            "{}: {} {what} = {:.0}/s, p50 {:.1} ms, p99 {:.1} ms",
            server.url,
            phase.requests,
            phase.per_second,
            phase.latency_ms.p50,
            phase.latency_ms.p99
        );
        if let Some(cpu) = &server.cpu {
            println!(
                "{}: server CPU {:.2} cores, {:.0} µs per {}",
                server.url,
                cpu.cores,
                cpu.per_request_us,
                what.trim_end_matches('s')
            );
        }
    }
    let mut phases = vec![("enroll", &summary.enroll)];
    match (&summary.update_check, &summary.install_reports) {
        (Some(update_check), Some(install_reports)) => {
            phases.extend([("update", update_check), ("report", install_reports)]);
        }
        _ => phases.extend([
            ("check-in", &summary.check_in),
            ("commands", &summary.commands),
        ]),
    }
    for (name, phase) in phases {
        println!(
            "{name:>9}: {} requests in {:.1} s = {:.0}/s; ok {}, refused {}, failed {}",
            phase.requests,
            phase.seconds,
            phase.per_second,
            phase.ok,
            phase.refused.values().sum::<u64>(),
            phase.failed
        );
        println!(
            "{:>9}  latency ms: p50 {:.1}, p90 {:.1}, p95 {:.1}, p99 {:.1}, max {:.1}",
            "",
            phase.latency_ms.p50,
            phase.latency_ms.p90,
            phase.latency_ms.p95,
            phase.latency_ms.p99,
            phase.latency_ms.max
        );
        for (code, count) in &phase.refused {
            println!("{:>9}  refused {code}: {count}", "");
        }
    }
    let states: Vec<String> = summary
        .trust_states
        .iter()
        .map(|(state, count)| format!("{state} {count}"))
        .collect();
    println!("trust states: {}", states.join(", "));
    if let Some(ota) = &summary.ota {
        let versions: Vec<String> = ota
            .installed_versions
            .iter()
            .map(|(version, count)| format!("{version} {count}"))
            .collect();
        println!(
            "ota: {} offers, {} installed{}, {} rolled back, {} answers refused",
            ota.offers,
            ota.installed,
            if versions.is_empty() {
                String::new()
            } else {
                format!(" ({})", versions.join(", "))
            },
            ota.rolled_back,
            ota.answers_refused
        );
    }
    if let Some(failure) = &summary.first_failure {
        println!("first failure: {failure}");
    }
}
