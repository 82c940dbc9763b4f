//! `enigm simulate`: a fleet of simulated devices in one process, for demos and load
//! measurement. Each device has its own Ed25519 key and a profile — most protected, some
//! review-required, some inactive, and some that degrade halfway through the run — and goes
//! through the same signed enrollment and check-ins as `enigm agent`. A fixed number of
//! requests are in flight at once; a live line shows progress on a terminal, and the end
//! prints throughput and latency percentiles (`--json` for scripts).

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use enigm_api::{CheckInRequest, EnrollRequest, EnrollResponse, TrustView, paths};
use enigm_crypto::Ed25519SigningKey;
use enigm_trust::{PatchLevel, Signal, SignalKind, SignalReport, SignalSource, SignalValue};
use enigm_types::Timestamp;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::agent::daemon::{device_client, post_signed};
use crate::agent::report::system_now;
use crate::cli::GlobalArgs;
use crate::client::{CommandClient, RequestError};
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
                    source: SignalSource::Profile,
                }
            })
            .collect();
        SignalReport::new(signals, Some(patch_level)).context("a simulated report")
    }
}

struct Device {
    key: Ed25519SigningKey,
    /// The simulated hardware key, when the fleet attests.
    attested_key: Option<enigm_attest::dev::DevAttestedKey>,
    profile: Profile,
    /// Set when the server refused the device for good (it stops checking in).
    refused: AtomicBool,
}

/// Latencies in microseconds and outcomes, per phase.
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

    fn record(&mut self, started: Instant, result: &anyhow::Result<TrustState>) {
        self.latencies
            .push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
        match result {
            Ok(_) => self.ok += 1,
            Err(error) => match refusal_code(error) {
                Some(code) => *self.refused.entry(code).or_default() += 1,
                None => {
                    self.failed += 1;
                    if self.first_failure.is_none() {
                        self.first_failure = Some(format!("{error:#}"));
                    }
                }
            },
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
struct Summary {
    devices: u32,
    concurrency: u32,
    enroll: PhaseSummary,
    check_in: PhaseSummary,
    /// The last trust state each device reported, counted.
    trust_states: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_failure: Option<String>,
}

type TrustState = enigm_trust::TrustState;

pub(crate) async fn run(global: &GlobalArgs, args: SimulateArgs) -> anyhow::Result<()> {
    let (client, prefix) = device_client(global)?;
    let token = secrets::read_secret_file(&args.enrollment_token_file)?;
    let token = secrecy::ExposeSecret::expose_secret(&token)
        .trim()
        .to_owned();
    let count = usize::try_from(args.devices).context("device count")?;
    let dev_root = args
        .insecure_dev_attestation_root
        .as_deref()
        .map(crate::attest::load_dev_root)
        .transpose()?;
    let devices: Arc<Vec<Device>> = Arc::new(
        (0..count)
            .map(|n| -> anyhow::Result<Device> {
                Ok(Device {
                    key: Ed25519SigningKey::generate(&mut rand::rngs::OsRng),
                    attested_key: dev_root
                        .as_ref()
                        .map(|_| enigm_attest::dev::DevAttestedKey::generate())
                        .transpose()
                        .context("could not generate a simulated hardware key")?,
                    profile: Profile::of(n),
                    refused: AtomicBool::new(false),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
    );
    let fleet = Arc::new(Fleet {
        client,
        prefix,
        token,
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
    let enroll_failure = enroll.first_failure.take();
    let enroll = enroll.summary(started.elapsed());

    progress.phase("checking in");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let mut check_in = run_phase(&fleet, &args, &progress, Phase::CheckIn, Some(deadline)).await?;
    let first_failure = check_in.first_failure.take();
    let check_in = check_in.summary(started.elapsed());
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
    let failed = enroll.failed + check_in.failed;
    let summary = Summary {
        devices: args.devices,
        concurrency: args.concurrency,
        enroll,
        check_in,
        trust_states,
        first_failure: enroll_failure.or(first_failure),
    };
    if global.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    if failed > 0 {
        anyhow::bail!("{failed} request(s) failed");
    }
    Ok(())
}

struct Fleet {
    client: CommandClient,
    prefix: String,
    token: String,
    devices: Arc<Vec<Device>>,
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
}

/// Runs `concurrency` workers. Enrollment gives each device one request; check-ins go round
/// the fleet until the deadline.
async fn run_phase(
    fleet: &Arc<Fleet>,
    args: &SimulateArgs,
    progress: &Progress,
    phase: Phase,
    deadline: Option<Instant>,
) -> anyhow::Result<PhaseRecord> {
    let next = Arc::new(AtomicUsize::new(0));
    let half_time = deadline.map(|end| end - Duration::from_secs(args.duration) / 2);
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let fleet = fleet.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let mut record = PhaseRecord::default();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let device = match phase {
                        Phase::Enroll if n >= fleet.devices.len() => break,
                        Phase::Enroll => n,
                        Phase::CheckIn => {
                            if deadline.is_some_and(|end| Instant::now() >= end) {
                                break;
                            }
                            n % fleet.devices.len()
                        }
                    };
                    let Some(simulated) = fleet.devices.get(device) else {
                        break;
                    };
                    if simulated.refused.load(Ordering::Relaxed) {
                        if fleet
                            .devices
                            .iter()
                            .all(|d| d.refused.load(Ordering::Relaxed))
                        {
                            break;
                        }
                        continue;
                    }
                    let late = half_time.is_some_and(|half| Instant::now() >= half);
                    let started = Instant::now();
                    let result = fleet.request(phase, simulated, late).await;
                    record.record(started, &result);
                    fleet.done.fetch_add(1, Ordering::Relaxed);
                    match &result {
                        Ok(state) => fleet.note_trust(device, *state),
                        Err(error) => {
                            fleet.errors.fetch_add(1, Ordering::Relaxed);
                            if refusal_code(error).is_some() {
                                simulated.refused.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                }
                record
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
    let mut record = PhaseRecord::default();
    for worker in workers {
        record.merge(worker.await.context("a simulated device task stopped")?);
    }
    ticker.abort();
    fleet.done.store(0, Ordering::Relaxed);
    fleet.errors.store(0, Ordering::Relaxed);
    Ok(record)
}

impl Fleet {
    /// Enrollment evidence minted under the development root, when the fleet attests.
    async fn evidence(
        &self,
        device: &Device,
    ) -> anyhow::Result<Option<enigm_api::attestation::AttestationEvidence>> {
        let (Some(root), Some(key)) = (&self.dev_root, &device.attested_key) else {
            return Ok(None);
        };
        let patch_day = self
            .patch_level
            .to_string()
            .replace('-', "")
            .parse()
            .unwrap_or(20_251_105);
        let attester = crate::agent::attestation::DevAttester {
            root,
            key,
            patch_day,
        };
        let evidence = attester
            .attest(
                &self.client,
                &self.prefix,
                &device.key,
                enigm_api::attestation::AttestationPurpose::Enrollment,
                system_now(),
            )
            .await?;
        Ok(Some(evidence))
    }

    async fn request(
        &self,
        phase: Phase,
        device: &Device,
        late: bool,
    ) -> anyhow::Result<TrustState> {
        let report = device
            .profile
            .report(system_now(), self.patch_level, late)?;
        match phase {
            Phase::Enroll => {
                let body = EnrollRequest {
                    enrollment_token: self.token.clone(),
                    report,
                    managed_opt_in: false,
                    wipe_opt_in: false,
                    attestation: self.evidence(device).await?,
                };
                let enrolled: EnrollResponse = post_signed(
                    &self.client,
                    &self.prefix,
                    &device.key,
                    paths::DEVICE_ENROLL,
                    &body,
                )
                .await?;
                Ok(enrolled.trust.state)
            }
            Phase::CheckIn => {
                let body = CheckInRequest { report };
                let trust: TrustView = post_signed(
                    &self.client,
                    &self.prefix,
                    &device.key,
                    paths::DEVICE_CHECK_INS,
                    &body,
                )
                .await?;
                Ok(trust.state)
            }
        }
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

/// The server's error code when it refused the request (a 4xx with a code), as opposed to a
/// failure (unreachable, 5xx).
fn refusal_code(error: &anyhow::Error) -> Option<String> {
    error
        .chain()
        .find_map(|cause| match cause.downcast_ref::<RequestError>() {
            Some(RequestError::Api(api)) if (400..500).contains(&api.status) => {
                Some(api.code.clone())
            }
            _ => None,
        })
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
    for (name, phase) in [("enroll", &summary.enroll), ("check-in", &summary.check_in)] {
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
            "{:>9}  latency ms: p50 {:.1}, p90 {:.1}, p99 {:.1}, max {:.1}",
            "",
            phase.latency_ms.p50,
            phase.latency_ms.p90,
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
    if let Some(failure) = &summary.first_failure {
        println!("first failure: {failure}");
    }
}
