//! The agent core against Command in-process (see `support`): each step's success and each
//! refusal, deterministic, without a process or a socket. One case runs on SQLite and
//! PostgreSQL; the others on SQLite, which is what the harness is for (fast).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::time::Duration;

use enigm_agent::core::{
    Config, Event, Exit, Record, Refusal, Step, UpdateResult, VerificationRecord,
};
use enigm_attest::dev::{DevAttestationRoot, DevAttestedKey};
use enigm_test_support::{Backend, backend_tests};
use enigm_trust::{DeviceState, SignalValue, TrustState};
use enigm_types::{ReasonCategory, SetupStep};
use serde_json::json;

use crate::support::{Command, Pair, SERVER, check};

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

async fn enrolled_pair(backend: Backend, config: Config) -> Pair {
    let command = Command::new(backend, None).await;
    let token = command.token(json!({})).await;
    let mut pair = Pair::new(command, token, config, None);
    let first = pair.cycle().await;
    assert_eq!(
        first.lines.first().unwrap(),
        "send POST /api/v1/device/enroll"
    );
    assert_eq!(first.lines.last().unwrap(), "sleep", "{:?}", first.lines);
    pair
}

async fn enrolls_checks_in_and_keeps_the_trust_state(backend: Backend) {
    let command = Command::new(backend, None).await;
    let token = command.token(json!({})).await;
    let mut pair = Pair::new(command, token, config(), None);
    let first = pair.cycle().await;
    check(
        &first,
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
    let handle = pair.agent.handle().unwrap();
    let Record::Enrollment(enrollment) = &first.records[0] else {
        panic!("{:?}", first.records);
    };
    assert_eq!(
        (enrollment.handle, enrollment.server.as_str()),
        (handle, SERVER)
    );
    let Record::Evaluation(evaluation) = &first.records[1] else {
        panic!("{:?}", first.records);
    };
    assert_eq!(evaluation.handle, handle);
    assert_eq!(evaluation.state, TrustState::Protected);
    assert_eq!(evaluation.state_label, TrustState::Protected.label());
    assert_eq!(
        pair.command.device(handle).await["trust"]["state"],
        "PROTECTED"
    );

    // A degraded firewall at the next cycle: the record follows Command's evaluation.
    pair.at_risk = true;
    let second = pair.cycle().await;
    check(
        &second,
        &[
            "send POST /api/v1/device/check-ins",
            "persist evaluation",
            "event checked in",
            "send GET /api/v1/device/commands",
            "sleep",
        ],
    );
    let Record::Evaluation(evaluation) = &second.records[0] else {
        panic!("{:?}", second.records);
    };
    assert_eq!(evaluation.state, TrustState::ReviewRequired);
    assert!(!evaluation.findings.is_empty());
    assert_eq!(
        pair.command.device(handle).await["trust"]["state"],
        "REVIEW_REQUIRED"
    );
}

backend_tests!(enrolls_checks_in_and_keeps_the_trust_state);

#[tokio::test]
async fn attestation_required_refuses_an_enrollment_without_evidence_and_accepts_the_dev_root() {
    let root = DevAttestationRoot::generate().unwrap();
    let command = Command::new(Backend::Sqlite, Some(&root)).await;
    let required = json!({"required_for": {"enrollment": true}});
    let token = command.token(required.clone()).await;
    let once = Config {
        once: true,
        ..config()
    };

    // Without evidence: refused, typed, and the device is not enrolled.
    let mut plain = Pair::new(command, token, once.clone(), None);
    let refused = plain.cycle().await;
    check(
        &refused,
        &["send POST /api/v1/device/enroll", "stop failed"],
    );
    let Some(Exit::Failed(error)) = &refused.exit else {
        panic!("{:?}", refused.exit);
    };
    assert_eq!(error.refusal(), Some(Refusal::AttestationRequired));
    assert!(plain.agent.handle().is_none());

    // With evidence minted under the development root Command trusts: accepted.
    let command = plain.command;
    let token = command.token(required).await;
    let dev = (root, DevAttestedKey::generate().unwrap());
    let mut attesting = Pair::new(command, token, once, Some(dev));
    let enrolled = attesting.cycle().await;
    check(
        &enrolled,
        &[
            "send POST /api/v1/device/attestation/challenge",
            "mint evidence for enrollment",
            "send POST /api/v1/device/enroll",
            "persist enrollment",
            "event enrolled",
            "send POST /api/v1/device/check-ins",
            "persist evaluation",
            "event checked in",
            "send GET /api/v1/device/commands",
            "stop completed",
        ],
    );
    let handle = attesting.agent.handle().unwrap();
    let shown = attesting.command.device(handle).await;
    assert_eq!(shown["attestation"]["verdict"], "accepted", "{shown}");
}

#[tokio::test]
async fn a_device_attests_again_when_due() {
    let root = DevAttestationRoot::generate().unwrap();
    let command = Command::new(Backend::Sqlite, Some(&root)).await;
    let token = command.token(json!({})).await;
    let dev = (root, DevAttestedKey::generate().unwrap());
    let config = Config {
        attest_every: Duration::from_secs(60),
        ..config()
    };
    let mut pair = Pair::new(command, token, config, Some(dev));
    let first = pair.cycle().await;
    assert!(
        !first
            .lines
            .contains(&"send POST /api/v1/device/attestation".to_owned())
    );
    // The cycle's sleep moved Command's clock on by the interval: attestation is due.
    let second = pair.cycle().await;
    check(
        &second,
        &[
            "send POST /api/v1/device/check-ins",
            "persist evaluation",
            "event checked in",
            "send POST /api/v1/device/attestation/challenge",
            "mint evidence for attestation",
            "send POST /api/v1/device/attestation",
            "event attested",
            "send GET /api/v1/device/commands",
            "sleep",
        ],
    );
    let Event::Attested { verdict, .. } = &second.events[1] else {
        panic!("{:?}", second.events);
    };
    assert_eq!(verdict, "accepted");
}

#[tokio::test]
async fn a_replayed_request_is_refused_and_typed() {
    let mut pair = enrolled_pair(Backend::Sqlite, config()).await;
    let now = pair.command.now();
    pair.agent
        .start_cycle(
            now,
            support::report(now, false),
            SetupStep::REQUIRED.to_vec(),
        )
        .unwrap();
    let mut rng = rand::rngs::OsRng;
    let Some(Step::Send(check_in)) = pair.agent.poll(now, &mut rng) else {
        panic!("a check-in");
    };
    // The same signed request twice, as an attacker on the path would send it again.
    let (status, _) = pair.command.answer(&check_in).await;
    assert_eq!(status, 200);
    let (status, body) = pair.command.answer(&check_in).await;
    assert_eq!(status, 409);
    pair.agent.handle_response(now, status, &body).unwrap();
    let Some(Step::Send(commands)) = pair.agent.poll(now, &mut rng) else {
        panic!("the command poll after a refused check-in");
    };
    let (status, body) = pair.command.answer(&commands).await;
    pair.agent.handle_response(now, status, &body).unwrap();
    let Some(Step::Report(Event::CycleFailed(error))) = pair.agent.poll(now, &mut rng) else {
        panic!("the refusal");
    };
    assert_eq!(error.refusal(), Some(Refusal::Replayed));
    assert!(!error.is_final());
    assert!(matches!(
        pair.agent.poll(now, &mut rng),
        Some(Step::Sleep { .. })
    ));
}

#[tokio::test]
async fn a_revoked_device_stops_with_its_reason() {
    let mut pair = enrolled_pair(Backend::Sqlite, config()).await;
    let handle = pair.agent.handle().unwrap();
    pair.command.lifecycle(handle, "revoke").await;
    let cycle = pair.cycle().await;
    check(
        &cycle,
        &[
            "send POST /api/v1/device/check-ins",
            // A revoked device may still ask for a command (a wipe must reach it): none waits.
            "send GET /api/v1/device/commands",
            "stop refused",
        ],
    );
    let Some(Exit::Refused(error)) = &cycle.exit else {
        panic!("{:?}", cycle.exit);
    };
    assert_eq!(error.refusal(), Some(Refusal::Revoked));
    assert!(pair.agent.is_stopped());
}

#[tokio::test]
async fn a_retire_command_is_fetched_acknowledged_and_stops_the_agent() {
    let mut pair = enrolled_pair(Backend::Sqlite, config()).await;
    let handle = pair.agent.handle().unwrap();
    pair.command.lifecycle(handle, "retire").await;
    let cycle = pair.cycle().await;
    check(
        &cycle,
        &[
            "send POST /api/v1/device/check-ins",
            "persist evaluation",
            "event checked in",
            "send GET /api/v1/device/commands",
            "send POST /api/v1/device/commands/ack",
            "stop retired",
        ],
    );
    assert_eq!(
        cycle.exit,
        Some(Exit::Retired {
            handle,
            state: DeviceState::Retired
        })
    );
    assert_eq!(pair.command.device(handle).await["state"], "retired");
}

#[tokio::test]
async fn a_wipe_reaches_a_revoked_device_which_acknowledges_and_wipes() {
    let mut pair = enrolled_pair(Backend::Sqlite, config()).await;
    let handle = pair.agent.handle().unwrap();
    pair.command.lifecycle(handle, "wipe").await;
    pair.command.lifecycle(handle, "revoke").await;
    let cycle = pair.cycle().await;
    check(
        &cycle,
        &[
            "send POST /api/v1/device/check-ins",
            "send GET /api/v1/device/commands",
            "send POST /api/v1/device/commands/ack",
            "wipe",
            "stop wiped",
        ],
    );
    assert_eq!(cycle.answers[0].1["code"], "device_revoked");
    assert!(matches!(cycle.exit, Some(Exit::Wiped { .. })));
    assert!(pair.agent.handle().is_none());
    let shown = pair.command.device(handle).await;
    assert_eq!(
        shown["lifecycle"]["acknowledged_command"]["command"], "wipe",
        "{shown}"
    );
}

#[tokio::test]
async fn a_refused_update_is_a_failed_ota_verification_at_the_next_check_in() {
    let config = Config {
        updates: true,
        ..config()
    };
    let mut pair = enrolled_pair(Backend::Sqlite, config).await;
    let handle = pair.agent.handle().unwrap();
    pair.update = Some(Ok(vec![UpdateResult::Rejected(
        "os/enigm-os-2.img".to_owned(),
        ReasonCategory::UpdateArtifactMismatch,
    )]));
    let refused = pair.cycle().await;
    check(
        &refused,
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
    let at = refused
        .records
        .iter()
        .find_map(|record| match record {
            Record::Verification(VerificationRecord { value, observed_at }) => {
                Some((*value, *observed_at))
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(at.0, SignalValue::Failed);

    // The next check-in carries it, and Command's evaluation names it.
    let next = pair.cycle().await;
    let findings = next.answers[0].1["findings"].as_array().unwrap().clone();
    assert!(
        findings
            .iter()
            .any(|finding| finding["signal"] == "ota-verification"),
        "{findings:?}"
    );
    let finding = findings
        .iter()
        .find(|finding| finding["signal"] == "ota-verification")
        .unwrap();
    assert_eq!(finding["source"], "measured", "{finding}");
    assert_eq!(
        pair.command.device(handle).await["handle"],
        handle.to_string()
    );
}
