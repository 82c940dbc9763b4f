//! The README's OTA flows as an operator runs them, with the real `enigm` binary and SoftHSM2
//! tokens: Command's online keys move from files onto a token (`enigm up
//! --rebind-ota-online-keys`), publishing is refused until a root names them, the command
//! `enigm up` prints (its token placeholders filled in) installs that root without a new root
//! key and pins the moved director key, and a release then publishes, is rolled out and
//! installs on an attesting device through the director. Also: `--help` says what is
//! required, and `ota export` takes `--dir` like `attest dev-root`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use enigm_test_support::softhsm::SoftHsmToken;

use crate::support::{
    ENIGM, Owner, Server, agent_once, assert_root_pins_commands_director, output_text,
    plan_one_wave, rollout_step, write_secret,
};

fn enigm(args: &[&str]) -> Output {
    Command::new(ENIGM)
        .args(args)
        .env_remove("ENIGM_SERVER")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn agent(server: &str, state_dir: &Path, args: &[&str]) -> String {
    let output = agent_once(server, state_dir, args);
    assert!(output.status.success(), "{}", output_text(&output));
    output_text(&output)
}

/// Splits a command line as printed (no quoting needed: the placeholders are single words).
fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn online_keys_moved_onto_a_token_are_named_by_the_root_rotation_enigm_up_prints() {
    let Some(workstation) = SoftHsmToken::create() else {
        return;
    };
    let command_token = SoftHsmToken::create().expect("softhsm2 made the first token");
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    // The director offers OS images to attested devices only: Command trusts a development
    // attestation root, which the device attests with.
    let dev_root = dir.path().join("dev-root");
    let dev_root_args = [
        "--insecure-dev-attestation-root",
        dev_root.to_str().unwrap(),
    ];

    // Command with its online keys as files; the workstation's keys and first root on its token.
    let server = Server::start(&data_dir, &dev_root_args);
    assert!(data_dir.join("keys/ota-snapshot.key").exists());
    let mut owner = Owner::log_in(dir.path(), &data_dir, &server.url);
    let pin = owner.pin.to_str().unwrap().to_owned();
    let token_pin = write_secret(&owner.secrets, "workstation-pin", &workstation.pin);
    let module = workstation.module.to_str().unwrap().to_owned();
    let token_args = [
        "--pkcs11-module",
        &module,
        "--token-label",
        &workstation.label,
        "--token-pin-file",
        token_pin.to_str().unwrap(),
    ];
    let root_file = dir.path().join("root.json");
    let initialised = owner.cli.ok(&[
        &["ota", "keys", "init", "--pin-file", &pin, "--root-out"][..],
        &[root_file.to_str().unwrap()],
        &token_args[..],
    ]
    .concat());
    assert!(
        initialised.contains("The root pins Command's director"),
        "{initialised}"
    );
    // Command's copy of the first root is the file devices are provisioned with; it pins
    // Command's director without being asked.
    let shown = owner.cli.json(&["ota", "keys", "show"]);
    let director_in_a_file = assert_root_pins_commands_director(&shown);
    let provisioned: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&root_file).unwrap()).unwrap();
    assert_eq!(provisioned, shown["root"], "{shown}");
    assert!(server.stop().success());

    // The online keys move onto Command's token: `enigm up` records them and says what to run.
    let command_pin = write_secret(dir.path(), "command-pin", &command_token.pin);
    let server = Server::start(
        &data_dir,
        &[
            "--ota-pkcs11-module",
            command_token.module.to_str().unwrap(),
            "--ota-token-label",
            &command_token.label,
            "--ota-token-pin-file",
            command_pin.to_str().unwrap(),
            "--rebind-ota-online-keys",
            dev_root_args[0],
            dev_root_args[1],
        ],
    );
    let log = std::fs::read_to_string(crate::support::log_path(&data_dir)).unwrap();
    let warning = log
        .lines()
        .find(|line| line.starts_with("warning: the current OTA root does not name"))
        .unwrap_or_else(|| panic!("no warning about the root: {log}"));
    let printed = warning
        .split_once("run: ")
        .unwrap_or_else(|| panic!("the warning names no command: {warning}"))
        .1
        .trim();
    assert_eq!(
        printed,
        "enigm ota keys rotate --role root --pkcs11-module MODULE --token-label LABEL \
         --token-pin-file FILE"
    );
    owner.cli.server = server.url.clone();
    owner.cli.ok(&[
        "login",
        "--username",
        "admin",
        "--password-file",
        owner.password.to_str().unwrap(),
    ]);
    let shown = owner.cli.ok(&["ota", "keys", "show"]);
    assert!(
        shown.contains("does not name Command's online snapshot, timestamp and director keys"),
        "{shown}"
    );
    let shown = owner.cli.json(&["ota", "keys", "show"]);
    assert_eq!(shown["online_keys_named"], false, "{shown}");
    let (carol, carol_pin) = owner.add_administrator("carol", "security-admin");

    // A release signed now cannot be published: the refusal names the same command.
    let image = dir.path().join("enigm-os-1.img");
    std::fs::write(&image, b"enigm os image 1").unwrap();
    let created = owner.cli.json(&[
        "release",
        "create",
        image.to_str().unwrap(),
        "--release-version",
        "2026.12.1",
        "--rollback-index",
        "1",
        "--model",
        "enigm-sim",
        "--justification",
        "december release",
    ]);
    let id = created["id"].as_str().unwrap().to_owned();
    carol.json(&[
        "admin",
        "approvals",
        "approve",
        created["approval"].as_str().unwrap(),
        "--pin-file",
        carol_pin.to_str().unwrap(),
    ]);
    let signed = owner.cli.json(
        &[
            &["release", "sign", &id, "--pin-file", &pin, "--trusted-root"][..],
            &[root_file.to_str().unwrap()],
            &token_args[..],
        ]
        .concat(),
    );
    assert_eq!(signed["state"], "signed");
    let refused = owner
        .cli
        .run(&["release", "publish", &id, "--pin-file", &pin]);
    assert!(!refused.status.success());
    assert!(
        output_text(&refused).contains(printed),
        "{}",
        output_text(&refused)
    );

    // The printed command, with the workstation's token filled in: no new root key needed.
    let mut rotate: Vec<String> = words(printed)
        .into_iter()
        .skip(1)
        .map(|word| match word.as_str() {
            "MODULE" => module.clone(),
            "LABEL" => workstation.label.clone(),
            "FILE" => token_pin.to_str().unwrap().to_owned(),
            _ => word,
        })
        .collect();
    rotate.extend(["--pin-file".to_owned(), pin.clone()]);
    let rotate: Vec<&str> = rotate.iter().map(String::as_str).collect();
    let rotated = owner.cli.ok(&rotate);
    assert!(rotated.contains("Root version 2 installed"), "{rotated}");
    assert!(
        rotated.contains("names Command's current online snapshot and timestamp keys"),
        "{rotated}"
    );
    assert!(
        rotated.contains("The new root pins Command's current director key."),
        "{rotated}"
    );
    let shown = owner.cli.ok(&["ota", "keys", "show"]);
    assert!(!shown.contains("does not name"), "{shown}");
    assert!(!shown.contains("warning"), "{shown}");
    let shown = owner.cli.json(&["ota", "keys", "show"]);
    assert_eq!(shown["root"]["signed"]["version"], 2, "{shown}");
    let director_on_the_token = assert_root_pins_commands_director(&shown);
    assert_ne!(director_on_the_token, director_in_a_file);

    // Publishing works; rolled out to everyone, the release is offered by the director key on
    // the token, and a device that trusts the first root follows the chain and installs it.
    let published = owner
        .cli
        .json(&["release", "publish", &id, "--pin-file", &pin]);
    assert_eq!(published["state"], "published");
    plan_one_wave(&owner.cli, &id);
    for step in ["validate", "start"] {
        rollout_step(&owner.cli, &id, step, &pin);
    }
    let created = owner.cli.json(&[
        "admin",
        "enrollment-token",
        "create",
        "--group",
        "field-phones",
        "--pin-file",
        &pin,
    ]);
    let enrollment = write_secret(&owner.secrets, "token", created["token"].as_str().unwrap());
    let device = dir.path().join("device");
    let ota = [
        "--ota-trusted-root",
        root_file.to_str().unwrap(),
        dev_root_args[0],
        dev_root_args[1],
    ];
    let mut printed_by_agent = agent(
        &server.url,
        &device,
        &[
            &["--enrollment-token-file", enrollment.to_str().unwrap()][..],
            &ota[..],
        ]
        .concat(),
    );
    printed_by_agent.push_str(&agent(&server.url, &device, &ota));
    assert!(
        printed_by_agent.contains("ota: installed os/enigm-os-1.img"),
        "{printed_by_agent}"
    );
}

#[test]
fn help_says_what_is_required_and_ota_export_takes_dir() {
    let help = output_text(&enigm(&["ota", "keys", "rotate", "--help"]));
    assert!(
        help.contains("<--pkcs11-module <PATH>|--insecure-dev-key-dir <DIR>>"),
        "the usage line names the key source as required: {help}"
    );
    assert!(
        help.contains("The token's label (required with --pkcs11-module)"),
        "{help}"
    );
    assert!(
        help.contains("required for `targets` and `release`"),
        "{help}"
    );
    // A first root pins the director unless told otherwise; asking for both is refused.
    let init_help = output_text(&enigm(&["ota", "keys", "init", "--help"]));
    assert!(
        init_help.contains("--no-director") && init_help.contains("Pin no director"),
        "{init_help}"
    );
    let both = enigm(&[
        "ota",
        "keys",
        "init",
        "--director",
        "--no-director",
        "--insecure-dev-key-dir",
        "/nonexistent",
    ]);
    assert_eq!(both.status.code(), Some(2), "{}", output_text(&both));
    assert!(
        output_text(&both).contains("cannot be used with"),
        "{}",
        output_text(&both)
    );
    // Clap refuses what the help says is required, before anything runs.
    let missing = enigm(&[
        "ota",
        "keys",
        "rotate",
        "--role",
        "root",
        "--pkcs11-module",
        "/m",
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        output_text(&missing).contains("--token-label <LABEL>"),
        "{}",
        output_text(&missing)
    );
    let missing = enigm(&[
        "ota",
        "keys",
        "rotate",
        "--role",
        "targets",
        "--insecure-dev-key-dir",
        "/nonexistent",
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        output_text(&missing).contains("--new-key-label <LABEL>"),
        "{}",
        output_text(&missing)
    );
    let no_source = enigm(&["ota", "keys", "rotate", "--role", "root"]);
    assert_eq!(no_source.status.code(), Some(2));
    assert!(
        output_text(&no_source).contains("--pkcs11-module <PATH>|--insecure-dev-key-dir <DIR>"),
        "{}",
        output_text(&no_source)
    );

    // `ota export --dir DIR`, like `attest dev-root --dir DIR`; the positional form still parses
    // (it then fails only for want of a login), and a directory is required.
    let export_help = output_text(&enigm(&["ota", "export", "--help"]));
    assert!(export_help.contains("--dir <DIR>"), "{export_help}");
    let dev_root_help = output_text(&enigm(&["attest", "dev-root", "--help"]));
    assert!(dev_root_help.contains("--dir <DIR>"), "{dev_root_help}");
    let none = enigm(&["ota", "export"]);
    assert_eq!(none.status.code(), Some(2), "{}", output_text(&none));
    assert!(
        output_text(&none).contains("--dir <DIR>"),
        "{}",
        output_text(&none)
    );
    let config = tempfile::tempdir().unwrap();
    for args in [
        &["ota", "export", "--dir", "/tmp/x"][..],
        &["ota", "export", "/tmp/x"][..],
    ] {
        let output = Command::new(ENIGM)
            .args(args)
            .env("ENIGM_CONFIG_DIR", config.path())
            .env_remove("ENIGM_SERVER")
            .env_remove("ENIGM_TOKEN")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_ne!(
            output.status.code(),
            Some(2),
            "parsed: {}",
            output_text(&output)
        );
    }
}
