//! The agent's logic as a sans-IO state machine: enroll → attest → check in → fetch a lifecycle
//! command and obey it → update, one cycle at a time.
//!
//! Like `enigm_ota::Refresh` and quinn-proto's `Connection`, [`Agent`] performs no I/O and reads
//! no clock or randomness of its own: its driver starts a cycle with the time and the signal
//! report it measured ([`Agent::start_cycle`]), then asks for the next [`Step`] with
//! [`Agent::poll`] (handing in the time and a random number generator for request nonces) and
//! feeds back what each step came to ([`Agent::handle_response`],
//! [`Agent::handle_unreachable`], [`Agent::handle_evidence`], [`Agent::handle_update`]). Requests
//! come out signed with the device key the core holds (signing is pure). Whatever the shell must
//! keep comes out as a [`Record`]; a cycle ends in [`Step::Sleep`] or [`Step::Stop`].
//!
//! The cycle is the one `enigm agent` has always run: a refused check-in still asks for a
//! lifecycle command (a revoked or lost device must still obey a wipe), attestation and the
//! update run only after an accepted check-in, and a refusal after which the device cannot go on
//! without an operator (revoked, not active, unknown, …) stops the agent.

pub mod network;
mod policy;
pub mod proxy;
mod records;
mod refusal;
pub(crate) mod signals;

use std::collections::VecDeque;
use std::time::Duration;

use enigm_api::attestation::{
    AttestRequest, AttestationEvidence, AttestationPurpose, AttestationView, ChallengeRequest,
    ChallengeResponse,
};
use enigm_api::{
    CheckInRequest, CommandAckRequest, CommandAckResponse, DeviceCommandsView, EnrollRequest,
    EnrollResponse, TrustView, paths,
};
use enigm_crypto::Ed25519SigningKey;
use enigm_device::{NONCE_LEN, RequestParts, SignatureHeaders, sign_request};
use enigm_trust::{DeviceCommand, DeviceState, Signal, SignalReport, TrustState};
use enigm_types::{DeviceHandle, SetupStep, Timestamp};
use rand_core::RngCore;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use policy::{InForce, PolicyStatus};
pub use records::{Enrollment, TscRecord, UpdateResult, Verification, VerificationRecord};
pub use refusal::{Exchange, ExchangeError, Refusal};

/// The security patch day a simulated attestation claims when the report names none.
const DEFAULT_PATCH_DAY: i64 = 20_251_105;

/// What the agent was told to do.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server's base URL, recorded in the enrollment and the evaluation.
    pub server: String,
    /// The path part of the server URL (`""` for a server at the root), signed in front of the
    /// API paths.
    pub path_prefix: String,
    /// Consent to managed-device mode, recorded at enrollment.
    pub managed_opt_in: bool,
    /// Consent to remote wipe, recorded at enrollment.
    pub wipe_opt_in: bool,
    /// Whether the device attests (the shell can mint evidence): with the enrollment, then
    /// every `attest_every`.
    pub attests: bool,
    pub attest_every: Duration,
    /// Whether the device looks for updates after each accepted check-in.
    pub updates: bool,
    /// Time between cycles.
    pub interval: Duration,
    /// Run one cycle and stop.
    pub once: bool,
}

/// The device agent's state machine. See the module documentation.
pub struct Agent {
    config: Config,
    key: Ed25519SigningKey,
    token: Option<SecretString>,
    enrollment: Option<Enrollment>,
    verification: Verification,
    /// The policy bundle in force and whether the last one named was refused.
    policy: PolicyStatus,
    /// The shell's own measurements of its network enforcement for the next cycle (none when
    /// it does not enforce a network policy).
    network: Vec<Signal>,
    /// The policy bundle target the last check-in named.
    policy_bundle: Option<String>,
    last_attested: Option<Timestamp>,
    /// This cycle's report, with the agent's own OTA verification signal.
    report: Option<SignalReport>,
    /// The setup steps done, as measured with this cycle's report.
    setup: Vec<SetupStep>,
    /// The purpose of the attestation under way.
    purpose: AttestationPurpose,
    /// The first failure of this cycle after enrollment; the cycle still asks for a command.
    cycle_error: Option<ExchangeError>,
    /// The lifecycle command being acknowledged.
    acknowledging: Option<DeviceCommand>,
    next: Next,
    steps: VecDeque<Step>,
}

/// Why the core cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    #[error(
        "this device is not enrolled yet: pass --enrollment-token-file FILE with a token from `enigm admin enrollment-token create`"
    )]
    NoEnrollmentToken,
    #[error("the enrollment is for another server")]
    OtherServer,
}

/// An input the core did not expect in its current state (a driver bug, never Command's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the agent core did not expect {0} now")]
pub struct UnexpectedInput(&'static str);

/// The next thing the driver does.
#[derive(Debug)]
pub enum Step {
    /// Send this signed request to Command, then feed the answer to
    /// [`Agent::handle_response`] (or [`Agent::handle_unreachable`]).
    Send(Request),
    /// Mint attestation evidence answering `nonce`, then feed it to [`Agent::handle_evidence`].
    MintEvidence(EvidenceRequest),
    /// Keep this record (replacing the last one of its kind).
    Persist(Record),
    /// Something worth telling the user.
    Report(Event),
    /// Run the update sub-flow (with the policy bundle target the check-in named, if any),
    /// hand the resulting policy status to [`Agent::set_policy`], then feed its outcome to
    /// [`Agent::handle_update`].
    Update { policy_bundle: Option<String> },
    /// Delete the device's local Enigm state: the device key, the enrollment, the last
    /// evaluation. Command ordered a wipe and was told it is done.
    Wipe,
    /// The cycle is over: start the next one with [`Agent::start_cycle`] at `until`.
    Sleep { until: Timestamp },
    /// The agent is done.
    Stop(Exit),
}

/// A request to send, signed.
#[derive(Debug, Clone)]
pub struct Request {
    /// Which exchange of the cycle it is.
    pub exchange: Exchange,
    pub method: Method,
    /// The API path, relative to the server URL (the signature covers the URL's own path in
    /// front of it).
    pub path: &'static str,
    pub body: Vec<u8>,
    pub signature: SignatureHeaders,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// What the shell needs to mint evidence for one challenge.
#[derive(Debug, Clone)]
pub struct EvidenceRequest {
    /// Base64, as Command sent it.
    pub nonce: String,
    pub purpose: AttestationPurpose,
    /// The device's request key, which the challenge binds.
    pub device_key: [u8; 32],
    /// YYYYMMDD of the security patch the report names.
    pub patch_day: i64,
}

/// A record for the shell to keep.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Enrollment(Enrollment),
    Evaluation(TscRecord),
    Verification(VerificationRecord),
}

/// What happened, for the user.
#[derive(Debug, Clone)]
pub enum Event {
    Enrolled {
        handle: DeviceHandle,
        state: DeviceState,
        trust: TrustState,
    },
    CheckedIn {
        at: Timestamp,
        handle: DeviceHandle,
        trust: TrustView,
    },
    Attested {
        at: Timestamp,
        verdict: String,
    },
    /// The cycle failed for a reason worth retrying; the agent goes on.
    CycleFailed(ExchangeError),
    /// After a refused check-in, asking for a lifecycle command failed too.
    CommandsFailed(ExchangeError),
}

/// Why the agent stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The one cycle of `--once` went through.
    Completed,
    /// Command retired the device; the retirement is acknowledged.
    Retired {
        handle: DeviceHandle,
        state: DeviceState,
    },
    /// Command wiped the device; the wipe is acknowledged and the local state deleted.
    Wiped {
        handle: DeviceHandle,
        state: DeviceState,
    },
    /// Command refused the device for good (revoked, not active, unknown, …).
    Refused(ExchangeError),
    /// The one cycle of `--once` failed.
    Failed(ExchangeError),
}

impl Exit {
    /// Whether the agent ended as it should (the process exits with success).
    pub fn is_success(&self) -> bool {
        matches!(
            self,
            Exit::Completed | Exit::Retired { .. } | Exit::Wiped { .. }
        )
    }
}

/// Where the machine stands.
#[derive(Debug)]
enum Next {
    /// Between cycles.
    Idle,
    /// A request to sign and hand out at the next poll.
    Request(Outgoing),
    /// A request is out; its answer is awaited.
    Sent(Exchange),
    /// Evidence is awaited.
    Evidence,
    /// The update's outcome is awaited.
    Updating,
    Stopped,
}

#[derive(Debug)]
struct Outgoing {
    exchange: Exchange,
    method: Method,
    path: &'static str,
    body: Vec<u8>,
}

impl Agent {
    /// A core for the device key `key`. `enrollment` is what the device kept of an earlier
    /// enrollment, if any; without it, `token` is needed to enroll. `verification` is the stored
    /// outcome of the last update attempt.
    pub fn new(
        config: Config,
        key: Ed25519SigningKey,
        enrollment: Option<Enrollment>,
        token: Option<SecretString>,
        verification: Verification,
    ) -> Result<Self, SetupError> {
        match &enrollment {
            Some(enrollment) if enrollment.server != config.server => {
                return Err(SetupError::OtherServer);
            }
            Some(_) => {}
            None if token.is_none() => return Err(SetupError::NoEnrollmentToken),
            None => {}
        }
        Ok(Agent {
            config,
            key,
            token,
            enrollment,
            verification,
            policy: PolicyStatus::default(),
            network: Vec::new(),
            policy_bundle: None,
            last_attested: None,
            report: None,
            setup: Vec::new(),
            purpose: AttestationPurpose::Enrollment,
            cycle_error: None,
            acknowledging: None,
            next: Next::Idle,
            steps: VecDeque::new(),
        })
    }

    /// The core with the policy bundle the device holds (read by the shell at start).
    pub fn with_policy(mut self, policy: PolicyStatus) -> Self {
        self.policy = policy;
        self
    }

    /// The policy status after an update attempt installed, kept or refused a bundle.
    pub fn set_policy(&mut self, policy: PolicyStatus) {
        self.policy = policy;
    }

    /// The agent's own measurements of its network enforcement (`network::NetworkMeter`), for
    /// the cycles that follow. Like its policy and update measurements they replace whatever a
    /// profile declares, and a bundle's list of kinds to collect cannot silence them.
    pub fn set_network_signals(&mut self, signals: Vec<Signal>) {
        self.network = signals;
    }

    /// The policy status the core works under.
    pub fn policy(&self) -> &PolicyStatus {
        &self.policy
    }

    /// The device's handle, once enrolled.
    pub fn handle(&self) -> Option<DeviceHandle> {
        self.enrollment.as_ref().map(|enrollment| enrollment.handle)
    }

    /// Whether the agent has stopped.
    pub fn is_stopped(&self) -> bool {
        matches!(self.next, Next::Stopped)
    }

    /// Starts a cycle at `now` with the report the shell measured and the setup steps the
    /// device has done. Only between cycles.
    pub fn start_cycle(
        &mut self,
        now: Timestamp,
        report: SignalReport,
        setup: Vec<SetupStep>,
    ) -> Result<(), UnexpectedInput> {
        if !matches!(self.next, Next::Idle) {
            return Err(UnexpectedInput("a new cycle"));
        }
        let mut measured = vec![self.policy.signal(now)];
        measured.extend(self.verification.signal(now));
        measured.extend(self.network.iter().cloned());
        let report = signals::with_measured(report, measured);
        let (policy, network) = (&self.policy, &self.network);
        self.report = Some(signals::only(report, |kind| {
            policy.collects(kind) || network.iter().any(|signal| signal.kind == kind)
        }));
        self.setup = setup;
        self.cycle_error = None;
        if self.enrollment.is_some() {
            self.check_in();
        } else if self.config.attests {
            self.challenge(AttestationPurpose::Enrollment);
        } else {
            self.enroll(None);
        }
        Ok(())
    }

    /// The next step; `None` while the core waits for an input (an answer, evidence, an update
    /// outcome, or a new cycle).
    pub fn poll(&mut self, now: Timestamp, rng: &mut dyn RngCore) -> Option<Step> {
        if let Some(step) = self.steps.pop_front() {
            return Some(step);
        }
        if !matches!(self.next, Next::Request(_)) {
            return None;
        }
        let Next::Request(outgoing) = std::mem::replace(&mut self.next, Next::Idle) else {
            return None;
        };
        let mut nonce = [0u8; NONCE_LEN];
        if rng.try_fill_bytes(&mut nonce).is_err() {
            self.failed(
                now,
                outgoing.exchange,
                ExchangeError::BadAnswer {
                    context: outgoing.exchange.context(),
                    detail: "the random number generator gave no nonce".to_owned(),
                },
            );
            return self.steps.pop_front();
        }
        let signed_path = format!("{}{}", self.config.path_prefix, outgoing.path);
        let signature = sign_request(
            &self.key,
            &RequestParts {
                method: outgoing.method.as_str(),
                path: &signed_path,
                query: "",
                body: &outgoing.body,
            },
            now,
            &nonce,
        );
        self.next = Next::Sent(outgoing.exchange);
        Some(Step::Send(Request {
            exchange: outgoing.exchange,
            method: outgoing.method,
            path: outgoing.path,
            body: outgoing.body,
            signature,
        }))
    }

    /// Command's answer to the request last handed out: its status and body.
    pub fn handle_response(
        &mut self,
        now: Timestamp,
        status: u16,
        body: &[u8],
    ) -> Result<(), UnexpectedInput> {
        let exchange = self.awaited_exchange()?;
        if !(200..300).contains(&status) {
            let error = ExchangeError::from_answer(exchange, status, body);
            self.failed(now, exchange, error);
            return Ok(());
        }
        match exchange {
            Exchange::AttestationChallenge => match decode::<ChallengeResponse>(exchange, body) {
                Ok(challenge) => {
                    self.next = Next::Evidence;
                    self.steps.push_back(Step::MintEvidence(EvidenceRequest {
                        nonce: challenge.nonce,
                        purpose: self.purpose,
                        device_key: self.key.verifying_key().to_bytes(),
                        patch_day: self.patch_day(),
                    }));
                }
                Err(error) => self.failed(now, exchange, error),
            },
            Exchange::Enrollment => match decode::<EnrollResponse>(exchange, body) {
                Ok(enrolled) => self.enrolled(now, &enrolled),
                Err(error) => self.failed(now, exchange, error),
            },
            Exchange::CheckIn => match decode::<TrustView>(exchange, body) {
                Ok(trust) => self.checked_in(now, trust),
                Err(error) => self.failed(now, exchange, error),
            },
            Exchange::Attestation => match decode::<AttestationView>(exchange, body) {
                Ok(view) => {
                    self.last_attested = Some(now);
                    self.steps.push_back(Step::Report(Event::Attested {
                        at: now,
                        verdict: view.verdict,
                    }));
                    self.update_when_configured();
                }
                Err(error) => self.failed(now, exchange, error),
            },
            Exchange::Commands => match decode::<DeviceCommandsView>(exchange, body) {
                Ok(DeviceCommandsView {
                    pending: Some(command),
                }) => {
                    self.acknowledging = Some(command);
                    self.request(
                        Exchange::CommandAck,
                        Method::Post,
                        paths::DEVICE_COMMAND_ACK,
                        &CommandAckRequest { command },
                    );
                }
                Ok(DeviceCommandsView { pending: None }) => {
                    let result = self.cycle_error.take();
                    self.end_cycle(now, result);
                }
                Err(error) => self.failed(now, exchange, error),
            },
            Exchange::CommandAck => {
                let Some(command) = self.acknowledging.take() else {
                    return Err(UnexpectedInput("an acknowledgement"));
                };
                match decode::<CommandAckResponse>(exchange, body) {
                    Ok(acked) => self.obeyed(command, acked.state),
                    Err(error) => self.failed(now, exchange, error),
                }
            }
            // Outside the cycle: `proxy::ProxyCredentials` takes its answers.
            Exchange::ProxyCredential => return Err(UnexpectedInput("a proxy credential")),
        }
        Ok(())
    }

    /// The request last handed out did not reach Command (or its answer broke off).
    pub fn handle_unreachable(
        &mut self,
        now: Timestamp,
        detail: String,
    ) -> Result<(), UnexpectedInput> {
        let exchange = self.awaited_exchange()?;
        let error = ExchangeError::Unreachable {
            context: exchange.context(),
            detail,
        };
        self.failed(now, exchange, error);
        Ok(())
    }

    /// The evidence the shell minted for the last [`Step::MintEvidence`], or why it could not.
    pub fn handle_evidence(
        &mut self,
        now: Timestamp,
        evidence: Result<AttestationEvidence, String>,
    ) -> Result<(), UnexpectedInput> {
        if !matches!(self.next, Next::Evidence) {
            return Err(UnexpectedInput("attestation evidence"));
        }
        self.next = Next::Idle;
        match (evidence, self.purpose) {
            (Ok(evidence), AttestationPurpose::Enrollment) => self.enroll(Some(evidence)),
            (Ok(evidence), AttestationPurpose::Attestation) => self.request(
                Exchange::Attestation,
                Method::Post,
                paths::DEVICE_ATTESTATION,
                &AttestRequest { evidence },
            ),
            (Err(detail), purpose) => {
                let exchange = match purpose {
                    AttestationPurpose::Enrollment => Exchange::Enrollment,
                    AttestationPurpose::Attestation => Exchange::Attestation,
                };
                self.failed(now, exchange, ExchangeError::Evidence(detail));
            }
        }
        Ok(())
    }

    /// What the update sub-flow came to: the results of the OS image and the bundles, or why it
    /// failed before an outcome. The outcome becomes the next check-in's `ota-verification`
    /// signal.
    pub fn handle_update(
        &mut self,
        now: Timestamp,
        outcome: Result<Vec<UpdateResult>, String>,
    ) -> Result<(), UnexpectedInput> {
        if !matches!(self.next, Next::Updating) {
            return Err(UnexpectedInput("an update outcome"));
        }
        self.next = Next::Idle;
        match outcome {
            Ok(results) => {
                if let Some(record) = VerificationRecord::of(&results, now) {
                    self.verification = Verification::Recorded(record);
                    self.steps
                        .push_back(Step::Persist(Record::Verification(record)));
                }
            }
            Err(detail) => {
                self.cycle_error
                    .get_or_insert(ExchangeError::Update(detail));
            }
        }
        self.ask_for_commands();
        Ok(())
    }

    fn awaited_exchange(&self) -> Result<Exchange, UnexpectedInput> {
        match self.next {
            Next::Sent(exchange) => Ok(exchange),
            _ => Err(UnexpectedInput("an answer")),
        }
    }

    fn request<B: Serialize>(
        &mut self,
        exchange: Exchange,
        method: Method,
        path: &'static str,
        body: &B,
    ) {
        let body = match method {
            Method::Get => Vec::new(),
            // INVARIANT: the API request types serialise to JSON without fail (plain structs
            // of strings, numbers and enums); an empty body would be refused by Command.
            Method::Post => serde_json::to_vec(body).unwrap_or_default(),
        };
        self.next = Next::Request(Outgoing {
            exchange,
            method,
            path,
            body,
        });
    }

    fn challenge(&mut self, purpose: AttestationPurpose) {
        self.purpose = purpose;
        self.request(
            Exchange::AttestationChallenge,
            Method::Post,
            paths::DEVICE_ATTESTATION_CHALLENGE,
            &ChallengeRequest { purpose },
        );
    }

    fn enroll(&mut self, attestation: Option<AttestationEvidence>) {
        let request = EnrollRequest {
            enrollment_token: self
                .token
                .as_ref()
                .map(|token| token.expose_secret().trim().to_owned())
                .unwrap_or_default(),
            report: self.report(),
            managed_opt_in: self.config.managed_opt_in,
            wipe_opt_in: self.config.wipe_opt_in,
            attestation,
            setup: self.setup.clone(),
        };
        self.request(
            Exchange::Enrollment,
            Method::Post,
            paths::DEVICE_ENROLL,
            &request,
        );
    }

    fn enrolled(&mut self, now: Timestamp, enrolled: &EnrollResponse) {
        let enrollment = Enrollment {
            server: self.config.server.clone(),
            handle: enrolled.handle,
            enrolled_at: now.to_rfc3339(),
        };
        self.enrollment = Some(enrollment.clone());
        // The token has done its work; the core keeps no secret it no longer needs.
        self.token = None;
        if self.config.attests {
            self.last_attested = Some(now);
        }
        self.steps
            .push_back(Step::Persist(Record::Enrollment(enrollment)));
        self.steps.push_back(Step::Report(Event::Enrolled {
            handle: enrolled.handle,
            state: enrolled.state,
            trust: enrolled.trust.state,
        }));
        self.check_in();
    }

    fn check_in(&mut self) {
        let request = CheckInRequest {
            report: self.report(),
            setup: self.setup.clone(),
            policy_bundle: self.policy.sequence(),
        };
        self.request(
            Exchange::CheckIn,
            Method::Post,
            paths::DEVICE_CHECK_INS,
            &request,
        );
    }

    fn checked_in(&mut self, now: Timestamp, trust: TrustView) {
        let Some(enrollment) = &self.enrollment else {
            return self.ask_for_commands();
        };
        let handle = enrollment.handle;
        self.policy_bundle = trust.policy_bundle.clone();
        let record = TscRecord::new(handle, &self.config.server, &trust, now);
        self.steps
            .push_back(Step::Persist(Record::Evaluation(record)));
        self.steps.push_back(Step::Report(Event::CheckedIn {
            at: now,
            handle,
            trust,
        }));
        self.attest_when_due(now);
    }

    /// Attests again when the last attestation is older than `attest_every`.
    fn attest_when_due(&mut self, now: Timestamp) {
        let due = self.config.attests
            && self
                .last_attested
                .is_none_or(|last| now.duration_since(last) >= self.config.attest_every);
        if due {
            self.challenge(AttestationPurpose::Attestation);
        } else {
            self.update_when_configured();
        }
    }

    fn update_when_configured(&mut self) {
        if self.config.updates {
            self.next = Next::Updating;
            self.steps.push_back(Step::Update {
                policy_bundle: self.policy_bundle.clone(),
            });
        } else {
            self.ask_for_commands();
        }
    }

    fn ask_for_commands(&mut self) {
        self.request(Exchange::Commands, Method::Get, paths::DEVICE_COMMANDS, &());
    }

    fn obeyed(&mut self, command: DeviceCommand, state: DeviceState) {
        let handle = self.handle();
        let exit = match (command, handle) {
            (DeviceCommand::Retire, Some(handle)) => Exit::Retired { handle, state },
            (DeviceCommand::Wipe, Some(handle)) => {
                self.steps.push_back(Step::Wipe);
                self.enrollment = None;
                Exit::Wiped { handle, state }
            }
            // INVARIANT: commands are asked for only once enrolled.
            (_, None) => Exit::Completed,
        };
        self.stop(exit);
    }

    /// An exchange failed: during enrollment the cycle ends; after it, the first failure is
    /// kept and the cycle still asks for a lifecycle command; a failure to ask for (or
    /// acknowledge) one ends the cycle with the first failure.
    fn failed(&mut self, now: Timestamp, exchange: Exchange, error: ExchangeError) {
        self.next = Next::Idle;
        let enrolling = self.enrollment.is_none()
            || (exchange == Exchange::AttestationChallenge
                && self.purpose == AttestationPurpose::Enrollment);
        match exchange {
            _ if enrolling => self.end_cycle(now, Some(error)),
            Exchange::Commands | Exchange::CommandAck => match self.cycle_error.take() {
                Some(first) => {
                    self.steps
                        .push_back(Step::Report(Event::CommandsFailed(error)));
                    self.end_cycle(now, Some(first));
                }
                None => self.end_cycle(now, Some(error)),
            },
            _ => {
                self.cycle_error.get_or_insert(error);
                self.ask_for_commands();
            }
        }
    }

    fn end_cycle(&mut self, now: Timestamp, error: Option<ExchangeError>) {
        self.report = None;
        match error {
            None if self.config.once => self.stop(Exit::Completed),
            None => self.sleep(now),
            Some(error) if error.is_final() => self.stop(Exit::Refused(error)),
            Some(error) if self.config.once => self.stop(Exit::Failed(error)),
            Some(error) => {
                self.steps
                    .push_back(Step::Report(Event::CycleFailed(error)));
                self.sleep(now);
            }
        }
    }

    fn sleep(&mut self, now: Timestamp) {
        self.next = Next::Idle;
        self.steps.push_back(Step::Sleep {
            until: now.saturating_add(self.policy.interval().unwrap_or(self.config.interval)),
        });
    }

    fn stop(&mut self, exit: Exit) {
        self.next = Next::Stopped;
        self.steps.push_back(Step::Stop(exit));
    }

    fn report(&self) -> SignalReport {
        // INVARIANT: requests carrying a report are built only within a cycle, which
        // `start_cycle` opens with one.
        self.report
            .clone()
            .unwrap_or_else(|| signals::report_from(Vec::new(), None))
    }

    fn patch_day(&self) -> i64 {
        self.report
            .as_ref()
            .and_then(SignalReport::patch_level)
            .and_then(|level| level.to_string().replace('-', "").parse().ok())
            .unwrap_or(DEFAULT_PATCH_DAY)
    }
}

fn decode<T: DeserializeOwned>(exchange: Exchange, body: &[u8]) -> Result<T, ExchangeError> {
    serde_json::from_slice(body).map_err(|_| ExchangeError::BadAnswer {
        context: exchange.context(),
        detail: "the answer is not the expected json".to_owned(),
    })
}

#[cfg(test)]
mod tests;
