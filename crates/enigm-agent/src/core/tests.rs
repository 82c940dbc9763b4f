//! The core's transitions with scripted answers: no server, no socket, no clock. Each test
//! feeds Command's answers as bytes and checks the steps the core hands out, written as short
//! lines (`send POST /api/v1/device/enroll`, `persist enrollment`, `stop retired`, …).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed expectation is the test failure"
)]

use std::collections::VecDeque;
use std::time::Duration;

use enigm_device::{DEFAULT_MAX_SKEW, ReceivedHeaders, RequestParts, verify_request};
use enigm_trust::{Signal, SignalKind, SignalReport, SignalSource, SignalValue};
use enigm_types::{DeviceHandle, ReasonCategory, SetupStep};
use rand::SeedableRng as _;
use serde_json::{Value, json};

use super::*;

const T0: Timestamp = Timestamp::from_unix_millis(1_796_000_000_000);
const SERVER: &str = "http://127.0.0.1:8443";

fn handle() -> DeviceHandle {
    DeviceHandle::from_digest(&[7; 20])
}

fn config() -> Config {
    Config {
        server: SERVER.to_owned(),
        path_prefix: String::new(),
        managed_opt_in: false,
        wipe_opt_in: true,
        attests: false,
        attest_every: Duration::from_secs(3600),
        updates: false,
        interval: Duration::from_secs(60),
        once: false,
    }
}

fn key() -> Ed25519SigningKey {
    Ed25519SigningKey::from_seed(&[9; 32])
}

fn new_device(config: Config) -> Agent {
    Agent::new(
        config,
        key(),
        None,
        Some(SecretString::from("token-1".to_owned())),
        Verification::None,
    )
    .unwrap()
}

fn enrolled_device(config: Config, verification: Verification) -> Agent {
    let enrollment = Enrollment {
        server: SERVER.to_owned(),
        handle: handle(),
        enrolled_at: T0.to_rfc3339(),
    };
    Agent::new(config, key(), Some(enrollment), None, verification).unwrap()
}

/// Every signal `ok`, but `ota-verification`, which the core adds from its own record.
fn report(now: Timestamp) -> SignalReport {
    let signals = SignalKind::ALL
        .iter()
        .filter(|kind| **kind != SignalKind::OtaVerification)
        .map(|&kind| Signal {
            kind,
            value: SignalValue::Ok,
            observed_at: now,
            source: SignalSource::Declared,
        })
        .collect();
    SignalReport::new(signals, None).unwrap()
}

fn trust_view() -> Value {
    json!({
        "state": "PROTECTED",
        "launcher_summary": "device-protected",
        "findings": [],
        "evaluated_at": "2026-12-01T00:00:00Z",
    })
}

fn refusal(code: &str) -> Value {
    json!({"code": code, "message": format!("refused: {code}")})
}

/// An answer Command gives to the next request.
enum Answer {
    Status(u16, Value),
    Unreachable,
}

fn ok(body: Value) -> Answer {
    Answer::Status(200, body)
}

/// Drives `agent` through one cycle started at `T0`, answering each request from `answers` in
/// turn, minting evidence as `evidence` says and finishing updates with `update`; the steps as
/// lines, and the request bodies sent.
struct Run {
    lines: Vec<String>,
    bodies: Vec<Value>,
    records: Vec<Record>,
    exit: Option<Exit>,
    events: Vec<Event>,
}

fn run_cycle(
    agent: &mut Agent,
    answers: Vec<Answer>,
    update: Option<Result<Vec<UpdateResult>, String>>,
) -> Run {
    let mut answers: VecDeque<Answer> = answers.into();
    let mut update = update;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut run = Run {
        lines: Vec::new(),
        bodies: Vec::new(),
        records: Vec::new(),
        exit: None,
        events: Vec::new(),
    };
    agent
        .start_cycle(T0, report(T0), SetupStep::REQUIRED.to_vec())
        .unwrap();
    for _ in 0..64 {
        let Some(step) = agent.poll(T0, &mut rng) else {
            run.lines.push("waiting".to_owned());
            return run;
        };
        match step {
            Step::Send(request) => {
                run.lines
                    .push(format!("send {} {}", request.method.as_str(), request.path));
                // Every request verifies as Command verifies it.
                verify_request(
                    &RequestParts {
                        method: request.method.as_str(),
                        path: request.path,
                        query: "",
                        body: &request.body,
                    },
                    &ReceivedHeaders {
                        content_digest: Some(&request.signature.content_digest),
                        signature_input: Some(&request.signature.signature_input),
                        signature: Some(&request.signature.signature),
                    },
                    T0,
                    DEFAULT_MAX_SKEW,
                )
                .unwrap();
                if !request.body.is_empty() {
                    run.bodies
                        .push(serde_json::from_slice(&request.body).unwrap());
                }
                match answers.pop_front().expect("an answer for every request") {
                    Answer::Status(status, body) => agent
                        .handle_response(T0, status, &serde_json::to_vec(&body).unwrap())
                        .unwrap(),
                    Answer::Unreachable => agent
                        .handle_unreachable(T0, "connection refused".to_owned())
                        .unwrap(),
                }
            }
            Step::MintEvidence(request) => {
                run.lines
                    .push(format!("mint evidence for {}", request.purpose.as_str()));
                let evidence = AttestationEvidence::AndroidKey {
                    nonce: request.nonce,
                    chain: vec!["bGVhZg==".to_owned()],
                };
                agent.handle_evidence(T0, Ok(evidence)).unwrap();
            }
            Step::Persist(record) => {
                run.lines.push(
                    match &record {
                        Record::Enrollment(_) => "persist enrollment",
                        Record::Evaluation(_) => "persist evaluation",
                        Record::Verification(_) => "persist verification",
                    }
                    .to_owned(),
                );
                run.records.push(record);
            }
            Step::Report(event) => {
                run.lines.push(
                    match &event {
                        Event::Enrolled { .. } => "event enrolled",
                        Event::CheckedIn { .. } => "event checked in",
                        Event::Attested { .. } => "event attested",
                        Event::CycleFailed(_) => "event cycle failed",
                        Event::CommandsFailed(_) => "event commands failed",
                    }
                    .to_owned(),
                );
                run.events.push(event);
            }
            Step::Update { .. } => {
                run.lines.push("update".to_owned());
                let outcome = update.take().expect("an update outcome");
                agent.handle_update(T0, outcome).unwrap();
            }
            Step::Wipe => run.lines.push("wipe".to_owned()),
            Step::Sleep { until } => {
                assert_eq!(until, T0.saturating_add(Duration::from_secs(60)));
                run.lines.push("sleep".to_owned());
                assert!(answers.is_empty(), "answers left over");
                return run;
            }
            Step::Stop(exit) => {
                run.lines.push(
                    match &exit {
                        Exit::Completed => "stop completed",
                        Exit::Retired { .. } => "stop retired",
                        Exit::Wiped { .. } => "stop wiped",
                        Exit::Refused(_) => "stop refused",
                        Exit::Failed(_) => "stop failed",
                    }
                    .to_owned(),
                );
                run.exit = Some(exit);
                assert!(agent.poll(T0, &mut rng).is_none());
                assert!(agent.is_stopped());
                return run;
            }
        }
    }
    panic!("the cycle did not end: {:?}", run.lines);
}

fn check(run: &Run, expect: &[&str]) {
    let expected: Vec<String> = expect.iter().map(|line| (*line).to_owned()).collect();
    assert_eq!(run.lines, expected);
}

fn enrolled_answer() -> Answer {
    ok(json!({
        "handle": handle().as_str(),
        "state": "trusted",
        "trust": trust_view(),
    }))
}

fn no_command() -> Answer {
    ok(json!({"pending": null}))
}

#[test]
fn enrolls_then_checks_in_records_both_and_sleeps() {
    let mut agent = new_device(config());
    let run = run_cycle(
        &mut agent,
        vec![enrolled_answer(), ok(trust_view()), no_command()],
        None,
    );
    check(
        &run,
        &[
            "send POST /api/v1/device/enroll",
            "persist enrollment",
            "event enrolled",
            "send POST /api/v1/device/check-ins",
            "persist evaluation",
            "event checked in",
            "send GET /api/v1/device/commands",
            "sleep",
        ],
    );
    assert_eq!(run.bodies[0]["enrollment_token"], "token-1");
    assert_eq!(run.bodies[0]["wipe_opt_in"], true);
    assert!(run.bodies[0]["attestation"].is_null());
    let Record::Evaluation(evaluation) = &run.records[1] else {
        panic!("{:?}", run.records);
    };
    assert_eq!(evaluation.handle, handle());
    assert_eq!(evaluation.state, TrustState::Protected);
    assert_eq!(evaluation.server, SERVER);
    assert_eq!(agent.handle(), Some(handle()));

    // The next cycle checks in without enrolling again.
    let run = run_cycle(&mut agent, vec![ok(trust_view()), no_command()], None);
    check(
        &run,
        &[
            "send POST /api/v1/device/check-ins",
            "persist evaluation",
            "event checked in",
            "send GET /api/v1/device/commands",
            "sleep",
        ],
    );
}

#[test]
fn an_attesting_device_enrolls_with_evidence_for_its_challenge_and_attests_when_due() {
    let config = Config {
        attests: true,
        once: true,
        ..config()
    };
    let mut agent = new_device(config.clone());
    let run = run_cycle(
        &mut agent,
        vec![
            ok(json!({"nonce": "bm9uY2U=", "expires_at": "2026-12-01T00:01:00Z"})),
            enrolled_answer(),
            ok(trust_view()),
            no_command(),
        ],
        None,
    );
    check(
        &run,
        &[
            "send POST /api/v1/device/attestation/challenge",
            "mint evidence for enrollment",
            "send POST /api/v1/device/enroll",
            "persist enrollment",
            "event enrolled",
            "send POST /api/v1/device/check-ins",
            "persist evaluation",
            "event checked in",
            // Attested with the enrollment: not due again yet.
            "send GET /api/v1/device/commands",
            "stop completed",
        ],
    );
    assert_eq!(run.bodies[0]["purpose"], "enrollment");
    assert_eq!(run.bodies[1]["attestation"]["nonce"], "bm9uY2U=");

    // An enrolled device that has not attested in this run attests after its check-in.
    let mut agent = enrolled_device(config, Verification::None);
    let run = run_cycle(
        &mut agent,
        vec![
            ok(trust_view()),
            ok(json!({"nonce": "bm9uY2U=", "expires_at": "2026-12-01T00:01:00Z"})),
            ok(json!({"verdict": "accepted", "format": "android_key",
                "attested_at": "2026-12-01T00:00:00Z", "claims": {}})),
            no_command(),
        ],
        None,
    );
    check(
        &run,
        &[
            "send POST /api/v1/device/check-ins",
            "persist evaluation",
            "event checked in",
            "send POST /api/v1/device/attestation/challenge",
            "mint evidence for attestation",
            "send POST /api/v1/device/attestation",
            "event attested",
            "send GET /api/v1/device/commands",
            "stop completed",
        ],
    );
}

#[test]
fn attestation_required_ends_the_enrollment_with_a_typed_refusal() {
    let mut agent = new_device(Config {
        once: true,
        ..config()
    });
    let run = run_cycle(
        &mut agent,
        vec![Answer::Status(403, refusal("attestation_required"))],
        None,
    );
    check(&run, &["send POST /api/v1/device/enroll", "stop failed"]);
    let Some(Exit::Failed(error)) = &run.exit else {
        panic!("{:?}", run.exit);
    };
    assert_eq!(error.refusal(), Some(Refusal::AttestationRequired));
    assert!(
        error.to_string().contains("attestation_required"),
        "{error}"
    );
    assert_eq!(agent.handle(), None);
}

#[test]
fn a_revoked_device_still_asks_for_a_command_then_stops_for_good() {
    let mut agent = enrolled_device(config(), Verification::None);
    let run = run_cycle(
        &mut agent,
        vec![
            Answer::Status(403, refusal("device_revoked")),
            Answer::Status(403, refusal("device_revoked")),
        ],
        None,
    );
    check(
        &run,
        &[
            "send POST /api/v1/device/check-ins",
            "send GET /api/v1/device/commands",
            "event commands failed",
            "stop refused",
        ],
    );
    let Some(Exit::Refused(error)) = &run.exit else {
        panic!("{:?}", run.exit);
    };
    assert_eq!(error.refusal(), Some(Refusal::Revoked));
    assert!(error.is_final());
    assert!(!run.exit.as_ref().unwrap().is_success());
}

#[test]
fn a_revoked_device_obeys_a_wipe_acknowledges_it_and_wipes() {
    let mut agent = enrolled_device(config(), Verification::None);
    let run = run_cycle(
        &mut agent,
        vec![
            Answer::Status(403, refusal("device_revoked")),
            ok(json!({"pending": "wipe"})),
            ok(json!({"state": "retired"})),
        ],
        None,
    );
    check(
        &run,
        &[
            "send POST /api/v1/device/check-ins",
            "send GET /api/v1/device/commands",
            "send POST /api/v1/device/commands/ack",
            "wipe",
            "stop wiped",
        ],
    );
    assert_eq!(run.bodies[1], json!({"command": "wipe"}));
    assert_eq!(
        run.exit,
        Some(Exit::Wiped {
            handle: handle(),
            state: DeviceState::Retired
        })
    );
    assert_eq!(agent.handle(), None);
}

#[test]
fn a_retire_command_is_acknowledged_and_stops_the_agent() {
    let mut agent = enrolled_device(config(), Verification::None);
    let run = run_cycle(
        &mut agent,
        vec![
            ok(trust_view()),
            ok(json!({"pending": "retire"})),
            ok(json!({"state": "retired"})),
        ],
        None,
    );
    check(
        &run,
        &[
            "send POST /api/v1/device/check-ins",
            "persist evaluation",
            "event checked in",
            "send GET /api/v1/device/commands",
            "send POST /api/v1/device/commands/ack",
            "stop retired",
        ],
    );
    assert!(run.exit.unwrap().is_success());
}

#[test]
fn a_replayed_request_is_a_refusal_worth_retrying() {
    let mut agent = enrolled_device(config(), Verification::None);
    let run = run_cycle(
        &mut agent,
        vec![Answer::Status(409, refusal("replayed")), no_command()],
        None,
    );
    check(
        &run,
        &[
            "send POST /api/v1/device/check-ins",
            "send GET /api/v1/device/commands",
            "event cycle failed",
            "sleep",
        ],
    );
    let Event::CycleFailed(error) = &run.events[0] else {
        panic!("{:?}", run.events);
    };
    assert_eq!(error.refusal(), Some(Refusal::Replayed));
    assert!(!error.is_final());
}

#[test]
fn an_unreachable_or_broken_command_is_retried() {
    let mut agent = enrolled_device(config(), Verification::None);
    let run = run_cycle(
        &mut agent,
        vec![
            Answer::Unreachable,
            Answer::Status(500, json!({"code": "internal", "message": "oops"})),
        ],
        None,
    );
    check(
        &run,
        &[
            "send POST /api/v1/device/check-ins",
            "send GET /api/v1/device/commands",
            "event commands failed",
            "event cycle failed",
            "sleep",
        ],
    );
    let Event::CycleFailed(error) = &run.events[1] else {
        panic!("{:?}", run.events);
    };
    assert!(
        matches!(error, ExchangeError::Unreachable { .. }),
        "{error}"
    );

    // An answer that is not the route's JSON is a bad answer, never a success.
    let run = run_cycle(
        &mut agent,
        vec![ok(json!({"unexpected": true})), no_command()],
        None,
    );
    let Event::CycleFailed(ExchangeError::BadAnswer { .. }) = &run.events[0] else {
        panic!("{:?}", run.events);
    };
}

#[test]
fn an_update_refusal_becomes_a_failed_ota_verification_at_the_next_check_in() {
    let config = Config {
        updates: true,
        ..config()
    };
    let mut agent = enrolled_device(config, Verification::None);
    let refused = UpdateResult::Rejected(
        "os/enigm-os-2.img".to_owned(),
        ReasonCategory::UpdateArtifactMismatch,
    );
    let run = run_cycle(
        &mut agent,
        vec![ok(trust_view()), no_command()],
        Some(Ok(vec![refused])),
    );
    check(
        &run,
        &[
            "send POST /api/v1/device/check-ins",
            "persist evaluation",
            "event checked in",
            "update",
            "persist verification",
            "send GET /api/v1/device/commands",
            "sleep",
        ],
    );
    // No attempt yet: the first check-in carries no ota-verification signal.
    let kinds = |body: &Value| -> Vec<Value> {
        body["report"]["signals"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|signal| signal["kind"] == "ota-verification")
            .map(|signal| signal["value"].clone())
            .collect()
    };
    assert!(kinds(&run.bodies[0]).is_empty(), "{}", run.bodies[0]);
    assert_eq!(
        run.records[1],
        Record::Verification(VerificationRecord {
            value: SignalValue::Failed,
            observed_at: T0.unix_millis()
        })
    );

    // The next check-in reports it; an update that fails before an outcome changes nothing
    // it learnt and fails the cycle.
    let run = run_cycle(
        &mut agent,
        vec![ok(trust_view()), no_command()],
        Some(Err("the slots are unreadable".to_owned())),
    );
    assert_eq!(kinds(&run.bodies[0]), vec![json!("failed")]);
    check(
        &run,
        &[
            "send POST /api/v1/device/check-ins",
            "persist evaluation",
            "event checked in",
            "update",
            "send GET /api/v1/device/commands",
            "event cycle failed",
            "sleep",
        ],
    );

    // An unreadable stored record is not-measurable, never ok.
    let mut agent = enrolled_device(
        Config {
            updates: true,
            ..self::config()
        },
        Verification::from_stored(Some(b"{\"value\":\"ok\"}")),
    );
    let run = run_cycle(
        &mut agent,
        vec![ok(trust_view()), no_command()],
        Some(Ok(vec![UpdateResult::Unavailable])),
    );
    assert_eq!(kinds(&run.bodies[0]), vec![json!("not-measurable")]);
    // An unreachable repository proves nothing: nothing is recorded.
    assert!(
        !run.lines.contains(&"persist verification".to_owned()),
        "{:?}",
        run.lines
    );
}

#[test]
fn inputs_out_of_turn_are_refused_and_setup_needs_a_token_or_an_enrollment() {
    let mut agent = enrolled_device(config(), Verification::None);
    assert!(agent.handle_response(T0, 200, b"{}").is_err());
    assert!(agent.handle_update(T0, Ok(Vec::new())).is_err());
    assert!(
        agent
            .handle_evidence(T0, Err("no root".to_owned()))
            .is_err()
    );
    agent
        .start_cycle(T0, report(T0), SetupStep::REQUIRED.to_vec())
        .unwrap();
    assert!(
        agent
            .start_cycle(T0, report(T0), SetupStep::REQUIRED.to_vec())
            .is_err()
    );

    let error = Agent::new(config(), key(), None, None, Verification::None).err();
    assert_eq!(error, Some(SetupError::NoEnrollmentToken));
    let elsewhere = Enrollment {
        server: "https://other.example".to_owned(),
        handle: handle(),
        enrolled_at: T0.to_rfc3339(),
    };
    let error = Agent::new(config(), key(), Some(elsewhere), None, Verification::None).err();
    assert_eq!(error, Some(SetupError::OtherServer));
}

#[test]
fn refusal_codes_map_to_types_and_finality() {
    for (code, refusal, last) in [
        ("device_revoked", Some(Refusal::Revoked), true),
        ("device_not_active", Some(Refusal::NotActive), true),
        ("unknown_device", Some(Refusal::UnknownDevice), true),
        (
            "invalid_enrollment_token",
            Some(Refusal::InvalidEnrollmentToken),
            true,
        ),
        ("already_enrolled", Some(Refusal::AlreadyEnrolled), true),
        ("replayed", Some(Refusal::Replayed), false),
        ("stale_request", Some(Refusal::StaleRequest), false),
        (
            "attestation_required",
            Some(Refusal::AttestationRequired),
            false,
        ),
        (
            "stale_attestation",
            Some(Refusal::AttestationRejected(
                ReasonCategory::StaleAttestation,
            )),
            false,
        ),
        (
            "throttled",
            Some(Refusal::Other(ReasonCategory::Throttled)),
            false,
        ),
        ("no_such_code", None, false),
    ] {
        assert_eq!(Refusal::from_code(code), refusal, "{code}");
        assert_eq!(refusal.is_some_and(Refusal::is_final), last, "{code}");
    }
}
