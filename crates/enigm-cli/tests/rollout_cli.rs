//! `enigm release rollout …`, `release status --watch` and `release pin` with the real binary
//! against a real `enigm up` on loopback (SQLite and PostgreSQL): releases signed on a SoftHSM2
//! token and published, then planned, validated and started; a wave that has not soaked is not
//! advanced (`soak_not_elapsed`); pause and resume; promotion to stable waits for a second
//! administrator's approval; withdrawal; version pins; `--json` answers are the API's views.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use enigm_api::rollouts::{RolloutView, VersionPinView};
use enigm_test_support::{Backend, backend_tests};
use enigm_types::{ReleaseStage, RolloutModel, RolloutStatus};
use serde_json::Value;

use crate::support::{
    Cli, Deployment, ENIGM, agent_once, assert_root_pins_commands_director, output_text,
    plan_one_wave, rollout_step,
};

/// The rollout of `id` as `--json` prints it, decoded as the API's view.
fn rollout_of(cli: &Cli, id: &str) -> RolloutView {
    serde_json::from_value(cli.json(&["release", "rollout", "status", id])).unwrap()
}

/// A refused command: its output names the stable code.
fn refused(cli: &Cli, args: &[&str], code: &str) -> String {
    let output = cli.run(args);
    let text = output_text(&output);
    assert!(
        !output.status.success(),
        "`{}` succeeded: {text}",
        args.join(" ")
    );
    assert!(
        text.contains(&format!("({code})")),
        "`{}`: {text}",
        args.join(" ")
    );
    text
}

/// A real `enigm agent` whose root pins the director (and which attests with the development
/// root, as the OS-image decision needs): a published release is not installed while it is
/// registered or merely validated, and is installed once its rollout's wave reaches the device;
/// the status counts the offer and the install.
async fn an_agent_installs_only_what_the_director_offers(backend: Backend) {
    let Some(deployment) = Deployment::start(backend, true).await else {
        return;
    };
    let owner = deployment.owner();
    let pin = deployment.pin();
    let root_file = &deployment.root_file;
    let dev_root_arg = deployment.dev_root.to_str().unwrap();
    let server = &deployment.server;
    let dir = &deployment.dir;
    let enrollment = deployment.enrollment_token("field-phones", 1);
    let device = dir.path().join("device");
    let ota = [
        "--ota-trusted-root",
        root_file.to_str().unwrap(),
        "--insecure-dev-attestation-root",
        dev_root_arg,
    ];
    let agent = |extra: &[&str]| -> String {
        let output = agent_once(&server.url, &device, &[&ota[..], extra].concat());
        let text = output_text(&output);
        assert!(output.status.success(), "{text}");
        text
    };
    let first = agent(&["--enrollment-token-file", enrollment.to_str().unwrap()]);
    assert!(first.contains("ota: up to date"), "{first}");

    let id = deployment
        .signing()
        .publish("enigm-os-1.img", "enigm-sim", "1");
    // Registered, then validated: the repository lists it, the director offers it to nobody.
    let registered = agent(&[]);
    assert!(registered.contains("attested: accepted"), "{registered}");
    assert!(registered.contains("ota: up to date"), "{registered}");
    plan_one_wave(owner, &id);
    let step = |action: &str| rollout_step(owner, &id, action, pin);
    step("validate");
    let validated = agent(&[]);
    assert!(validated.contains("ota: up to date"), "{validated}");
    // The wave reaches the device: the director offers it, the agent installs it.
    step("start");
    let installed = agent(&[]);
    assert!(
        installed.contains("ota: installed os/enigm-os-1.img"),
        "{installed}"
    );
    let status = owner.json(&["release", "rollout", "status", &id]);
    assert_eq!(status["waves"][0]["counts"]["installed"], 1, "{status}");
    assert_eq!(status["waves"][0]["counts"]["downloading"], 0, "{status}");
    assert_eq!(status["status"], "active", "{status}");
    // The agent said it was downloading before its install report replaced that.
    let downloads = owner.json(&["audit", "events", "--action", "device.ota-download"]);
    assert_eq!(
        downloads["items"].as_array().unwrap().len(),
        1,
        "{downloads}"
    );
}

backend_tests!(
    a_release_is_rolled_out_wave_by_wave_from_the_command_line,
    an_agent_installs_only_what_the_director_offers,
);

async fn a_release_is_rolled_out_wave_by_wave_from_the_command_line(backend: Backend) {
    let Some(deployment) = Deployment::start(backend, false).await else {
        return;
    };
    let owner = deployment.owner();
    let pin = deployment.pin();
    let carol = &deployment.carol;
    let carol_pin = deployment.carol_pin.as_str();
    let root_file = &deployment.root_file;
    let token_args = deployment.token();
    // `ota keys init` pins Command's director key by default, in Command's copy and in the
    // file devices are provisioned with; a rotation keeps it without being asked.
    let shown = owner.json(&["ota", "keys", "show"]);
    let director = assert_root_pins_commands_director(&shown);
    let provisioned: Value = serde_json::from_slice(&std::fs::read(root_file).unwrap()).unwrap();
    assert_eq!(provisioned, shown["root"], "{shown}");
    owner.ok(&[
        &["ota", "keys", "rotate", "--role", "root", "--pin-file", pin][..],
        &token_args[..],
    ]
    .concat());
    let shown = owner.json(&["ota", "keys", "show"]);
    assert_eq!(shown["root"]["signed"]["version"], 2, "{shown}");
    assert_eq!(assert_root_pins_commands_director(&shown), director);

    // A published release: created, approved by carol, signed on the token, published.
    let signing = deployment.signing();
    let published =
        |name: &str, model: &str, rollback: &str| signing.publish(name, model, rollback);

    // A release whose first wave soaks an hour: the next wave is refused before that.
    let slow = published("enigm-os-slow.img", "enigm-sim-slow", "1");
    let unplanned = rollout_of(owner, &slow);
    assert_eq!(unplanned.stage, ReleaseStage::Registered);
    assert_eq!(unplanned.model, None);
    refused(
        owner,
        &[
            "release",
            "rollout",
            "validate",
            &slow,
            "--justification",
            "no plan yet",
            "--pin-file",
            pin,
        ],
        "invalid_transition",
    );
    let planned = owner.ok(&[
        "release",
        "rollout",
        "plan",
        &slow[..8],
        "--model",
        "limited-rollout",
        "--wave",
        "10:1h",
        "--wave",
        "100:0s",
        "--halt-above",
        "20",
        "--justification",
        "one hour of soak",
    ]);
    assert!(
        planned.contains("planned a limited-rollout rollout of 2026.12.1 in 2 waves: 10 % (soak 1h), 100 % (soak 0s)"),
        "{planned}"
    );
    let plan = rollout_of(owner, &slow);
    assert_eq!(plan.model, Some(RolloutModel::LimitedRollout));
    let halt = plan.halt.unwrap();
    // `--halt-min-reports` not given: the rule's default.
    assert_eq!((halt.max_failure_percent, halt.min_reports), (20, 10));
    let step = |cli: &Cli, cli_pin: &str, action: &str, id: &str| -> String {
        cli.ok(&[
            "release",
            "rollout",
            action,
            id,
            "--justification",
            &format!("{action} step"),
            "--pin-file",
            cli_pin,
        ])
    };
    // A step is a critical operation: without a PIN (no terminal to ask on) it is refused.
    let no_pin = owner.run(&[
        "release",
        "rollout",
        "validate",
        &slow,
        "--justification",
        "no pin",
    ]);
    assert!(!no_pin.status.success(), "{}", output_text(&no_pin));
    assert!(
        output_text(&no_pin).contains("--pin-file"),
        "{}",
        output_text(&no_pin)
    );
    let validated = step(owner, pin, "validate", &slow);
    assert!(
        validated.contains(&format!(
            "validated; start the rollout with `enigm release rollout start {slow}`"
        )),
        "{validated}"
    );
    let started = step(owner, pin, "start", &slow);
    assert!(
        started
            .contains("rollout started: wave 1 of 2 open: 10 % of the fleet; the next may open at"),
        "{started}"
    );
    let soaking = refused(
        owner,
        &[
            "release",
            "rollout",
            "advance",
            &slow,
            "--justification",
            "too early",
            "--pin-file",
            pin,
        ],
        "soak_not_elapsed",
    );
    assert!(
        soaking.contains("hint: `enigm release rollout status ID` shows when"),
        "{soaking}"
    );
    assert!(soaking.contains("wave 1 of 2 soaks until 20"), "{soaking}");
    let still = rollout_of(owner, &slow);
    assert_eq!(still.open_waves, 1);
    assert!(still.waves[0].soak_ends_at.is_some());
    assert_eq!(still.waves[1].opened_at, None);
    // A plan cannot change once the rollout runs.
    refused(
        owner,
        &[
            "release",
            "rollout",
            "plan",
            &slow,
            "--model",
            "stable-rollout",
            "--justification",
            "too late",
        ],
        "invalid_transition",
    );

    // The happy path: waves without soak, 10 % → 50 % → 100 %, then stable after an approval.
    let fast = published("enigm-os-fast.img", "enigm-sim-fast", "2");
    owner.ok(&[
        "release",
        "rollout",
        "plan",
        &fast,
        "--model",
        "limited-rollout",
        "--wave",
        "10:0s",
        "--wave",
        "50:0s",
        "--wave",
        "100:0s",
        "--validation-group",
        "lab-phones,qa-phones",
        "--halt-above",
        "25",
        "--halt-min-reports",
        "4",
        "--justification",
        "december rollout",
    ]);
    let validated = step(owner, pin, "validate", &fast);
    assert!(
        validated.contains("validated: offered to the validation groups lab-phones, qa-phones"),
        "{validated}"
    );
    let started = step(owner, pin, "start", &fast);
    assert!(
        started.contains(&format!(
            "rollout started: wave 1 of 3 open: 10 % of the fleet; open the next with `enigm \
             release rollout advance {fast}`"
        )),
        "{started}"
    );
    let status = owner.ok(&["release", "status", &fast]);
    for line in [
        "stage: controlled-rollout",
        "status: active",
        "model: limited-rollout, 1 open of 3 waves",
        "halts above: 25 % failed or rolled back, from 4 reports in a wave",
        "validation groups: lab-phones, qa-phones",
        "outside waves",
        "ROLLED BACK",
        "version", // the release's own table comes first
    ] {
        assert!(status.contains(line), "{line}: {status}");
    }
    // Wave 1's row: number, percent, then an opening time.
    assert!(
        status
            .lines()
            .any(|row| row.contains("│ 1 ") && row.contains("10 %") && row.contains("20")),
        "{status}"
    );
    let advanced = step(owner, pin, "advance", &fast);
    assert!(
        advanced.contains("wave 2 of 3 open: 50 % of the fleet"),
        "{advanced}"
    );

    let paused = step(owner, pin, "pause", &fast);
    assert!(
        paused.contains(&format!(
            "paused: no new offers and no next wave until `enigm release rollout resume {fast}`"
        )),
        "{paused}"
    );
    assert_eq!(rollout_of(owner, &fast).status, RolloutStatus::Paused);
    let held = refused(
        owner,
        &[
            "release",
            "rollout",
            "advance",
            &fast,
            "--justification",
            "while paused",
            "--pin-file",
            pin,
        ],
        "rollout_paused",
    );
    assert!(
        held.contains("hint: resume it with `enigm release rollout resume ID`"),
        "{held}"
    );
    let resumed = step(owner, pin, "resume", &fast);
    assert!(
        resumed.contains("resumed: wave 2 of 3 open: 50 % of the fleet"),
        "{resumed}"
    );
    let last = step(owner, pin, "advance", &fast);
    assert!(
        last.contains(&format!(
            "wave 3 of 3 open: 100 % of the fleet; promote it to stable with `enigm release \
             rollout promote {fast}`"
        )),
        "{last}"
    );

    // Promotion to stable waits for another administrator's approval.
    let promoted = step(owner, pin, "promote", &fast);
    let waiting = rollout_of(owner, &fast);
    let approval = waiting
        .pending_approval
        .expect("an approval request")
        .to_string();
    assert!(
        promoted.contains(&format!(
            "promotion to stable waits for approval {approval}: another administrator approves \
             it with `enigm admin approvals approve {approval}`"
        )),
        "{promoted}"
    );
    assert_eq!(waiting.stage, ReleaseStage::ControlledRollout);
    // The requester never approves their own request.
    let own = owner.run(&[
        "admin",
        "approvals",
        "approve",
        &approval,
        "--pin-file",
        pin,
    ]);
    assert!(!own.status.success(), "{}", output_text(&own));
    let shown = owner.ok(&["release", "rollout", "status", &fast]);
    assert!(
        shown.contains(&format!("waits for approval {approval}")),
        "{shown}"
    );
    carol.json(&[
        "admin",
        "approvals",
        "approve",
        &approval,
        "--pin-file",
        carol_pin,
    ]);
    let stable = rollout_of(owner, &fast);
    assert_eq!(stable.stage, ReleaseStage::Stable);
    assert_eq!(stable.pending_approval, None);
    let status = owner.ok(&["release", "rollout", "status", &fast]);
    assert!(status.contains("stage: stable"), "{status}");

    // Version pins: the stable release for one group.
    let pinned = owner.ok(&[
        "release",
        "pin",
        "field-phones",
        &fast[..8],
        "--justification",
        "hold the field on december",
    ]);
    assert!(
        pinned.contains(&format!(
            "pinned group field-phones to 2026.12.2 ({fast}): its devices are offered that \
             version only, until `enigm release unpin field-phones`"
        )),
        "{pinned}"
    );
    let pins = owner.ok(&["release", "pins"]);
    assert!(
        pins.contains("field-phones") && pins.contains("2026.12.2") && pins.contains(&fast[..8]),
        "{pins}"
    );
    let listed = owner.json(&["release", "pins"]);
    let items: Vec<VersionPinView> = serde_json::from_value(listed["items"].clone()).unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].group.as_str(), "field-phones");
    assert_eq!(items[0].release.to_string(), fast);
    let unpinned = owner.ok(&["release", "unpin", "field-phones"]);
    assert!(
        unpinned.contains("unpinned group field-phones: its devices follow the rollouts again"),
        "{unpinned}"
    );
    assert!(owner.ok(&["release", "pins"]).contains("No version pins."));
    refused(owner, &["release", "unpin", "field-phones"], "not_found");
    // A group name is checked before anything is sent.
    let bad_group = owner.run(&["release", "unpin", "Not A Group!"]);
    assert!(!bad_group.status.success());

    // Withdrawal: for good.
    let withdrawn = step(owner, pin, "withdraw", &fast);
    assert!(
        withdrawn.contains("withdrawn: no new offers, for good; devices that installed it keep it"),
        "{withdrawn}"
    );
    let gone = rollout_of(owner, &fast);
    assert_eq!(gone.status, RolloutStatus::Withdrawn);
    let status = owner.ok(&["release", "rollout", "status", &fast]);
    assert!(status.contains("status: withdrawn"), "{status}");
    refused(
        owner,
        &[
            "release",
            "rollout",
            "resume",
            &fast,
            "--justification",
            "undo",
            "--pin-file",
            pin,
        ],
        "rollout_withdrawn",
    );

    // A group cannot be pinned to a withdrawn release: its devices would then be offered
    // nothing (the release is withdrawn, every other version pinned away).
    refused(
        owner,
        &[
            "release",
            "pin",
            "field-phones",
            &fast,
            "--justification",
            "pin to a withdrawn release",
        ],
        "rollout_withdrawn",
    );

    // `release status ID --json` stays the release's view; the rollout's is its own.
    let release: Value = owner.json(&["release", "status", &fast]);
    assert_eq!(release["state"], "published");
    assert!(release["installs"].is_object(), "{release}");

    // `--watch` off a terminal: one block after another, until stopped.
    let mut watching = Command::new(ENIGM)
        .args([
            "release",
            "status",
            &slow,
            "--watch",
            "--interval",
            "1s",
            "--server",
            &owner.server,
        ])
        .env("ENIGM_CONFIG_DIR", &owner.config)
        .env_remove("ENIGM_SERVER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watching.stdout.take().unwrap()).lines();
    let mut blocks = 0;
    let mut seen = Vec::new();
    while blocks < 2 {
        let line = lines.next().expect("the watch went on").unwrap();
        assert!(
            !line.contains('\u{1b}'),
            "no escapes off a terminal: {line:?}"
        );
        if line.starts_with("stage: ") {
            blocks += 1;
        }
        seen.push(line);
    }
    watching.kill().unwrap();
    watching.wait().unwrap();
    let seen = seen.join("\n");
    assert!(
        seen.contains("stage: controlled-rollout")
            && seen.contains("model: limited-rollout, 1 open of 2 waves"),
        "{seen}"
    );
    // `--watch --json`: one rollout view per line.
    let mut watching = Command::new(ENIGM)
        .args([
            "release",
            "rollout",
            "status",
            &slow,
            "--watch",
            "--interval",
            "1s",
            "--json",
            "--server",
            &owner.server,
        ])
        .env("ENIGM_CONFIG_DIR", &owner.config)
        .env_remove("ENIGM_SERVER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watching.stdout.take().unwrap()).lines();
    for _ in 0..2 {
        let line = lines.next().expect("the watch went on").unwrap();
        let view: RolloutView = serde_json::from_str(&line).unwrap();
        assert_eq!(view.release.to_string(), slow);
    }
    watching.kill().unwrap();
    watching.wait().unwrap();
    // On a terminal: the PIN is prompted for, and `--watch` redraws in place.
    let on_terminal = |args: &[&str]| {
        let mut command = Command::new(ENIGM);
        command
            .args(args)
            .args(["--server", &owner.server])
            .env("ENIGM_CONFIG_DIR", &owner.config)
            .env_remove("ENIGM_SERVER");
        rexpect::session::spawn_command(command, Some(60_000)).unwrap()
    };
    let owner_pin = std::fs::read_to_string(&deployment.owner_login.pin).unwrap();
    let mut prompted = on_terminal(&[
        "release",
        "rollout",
        "pause",
        &slow,
        "--justification",
        "pause on a terminal",
    ]);
    prompted.exp_string("critical-operation pin: ").unwrap();
    prompted.send_line(owner_pin.trim()).unwrap();
    prompted.exp_string("paused: no new offers").unwrap();
    prompted.exp_eof().unwrap();
    assert_eq!(rollout_of(owner, &slow).status, RolloutStatus::Paused);
    let mut redrawn = on_terminal(&[
        "release",
        "rollout",
        "status",
        &slow,
        "--watch",
        "--interval",
        "1s",
    ]);
    for _ in 0..2 {
        redrawn.exp_string("\u{1b}[H\u{1b}[2J").unwrap();
        redrawn.exp_string("status: paused").unwrap();
    }
    redrawn
        .process_mut()
        .kill(rexpect::process::Signal::SIGINT)
        .unwrap();

    // `--interval` goes with `--watch`, and `--watch` with one release.
    assert!(
        !owner
            .run(&["release", "status", &slow, "--interval", "5s"])
            .status
            .success()
    );
    assert!(
        !owner
            .run(&["release", "status", "--watch"])
            .status
            .success()
    );
}
