//! OTA end to end with real processes on loopback and a real SoftHSM2 token (SQLite and
//! PostgreSQL): `enigm ota keys init` creates the keys on the token and installs the root
//! (with SQLite, Command's own online keys are in a second token: `enigm up
//! --ota-pkcs11-module`), with `--no-director` (devices install the newest release, as in
//! OTA I: the director, the default, is tested in `rollout_cli.rs` and `ota_flows.rs`);
//! a release is created, approved by a second administrator, signed on the token with
//! `enigm release sign`, published; `enigm agent` verifies and installs it into its A/B slots
//! and reports. After a targets key rotation `release sign` finds the new key by key id (a label
//! naming the old one is refused, naming the flag and the expected key), and `ota keys show`
//! lists the token's labels; a release a later one superseded reads `superseded by …`. An image
//! that fails its health check rolls back; an artifact tampered with on Command's disk is
//! refused before anything switches. Every outcome reaches Command.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::path::Path;

use enigm_test_support::softhsm::SoftHsmToken;
use enigm_test_support::{Backend, TestDatabase, backend_tests};
use serde_json::Value;

use crate::support::{Owner, Server, agent_once, output_text, write_secret};

fn agent(server: &str, state_dir: &Path, args: &[&str]) -> String {
    let output = agent_once(server, state_dir, args);
    assert!(output.status.success(), "{}", output_text(&output));
    output_text(&output)
}

fn boot_control(state_dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(state_dir.join("ota/boot-control.json")).unwrap())
        .unwrap()
}

backend_tests!(a_release_signed_on_a_token_installs_on_a_simulated_device);

async fn a_release_signed_on_a_token_installs_on_a_simulated_device(backend: Backend) {
    let Some(token) = SoftHsmToken::create() else {
        return;
    };
    let db = TestDatabase::new(backend).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let database_args: Vec<&str> = match backend {
        Backend::Sqlite => vec![],
        Backend::Postgres => vec!["--database-url", db.url()],
    };
    // Command's online snapshot and timestamp keys: in a token of their own with SQLite, as
    // files in the data directory with PostgreSQL, so that both ways run end to end.
    let command_token = match backend {
        Backend::Sqlite => Some(SoftHsmToken::create().expect("softhsm2 made the first token")),
        Backend::Postgres => None,
    };
    let command_token_pin = command_token
        .as_ref()
        .map(|token| write_secret(dir.path(), "command-token-pin", &token.pin));
    let mut server_args = database_args;
    if let (Some(token), Some(pin_file)) = (&command_token, &command_token_pin) {
        server_args.extend([
            "--ota-pkcs11-module",
            token.module.to_str().unwrap(),
            "--ota-token-label",
            &token.label,
            "--ota-token-pin-file",
            pin_file.to_str().unwrap(),
        ]);
    }
    server_args.extend(["--metrics-listen", "127.0.0.1:0"]);
    let server = Server::start(&data_dir, &server_args);
    let url = server.url.clone();
    assert_eq!(
        data_dir.join("keys/ota-timestamp.key").exists(),
        command_token.is_none(),
        "online keys are files exactly when Command has no token for them"
    );

    let owner_login = Owner::log_in(dir.path(), &data_dir, &url);
    let owner = &owner_login.cli;
    let secrets = owner_login.secrets.clone();
    let pin = owner_login.pin.to_str().unwrap();
    // A second administrator approves the signing.
    let (carol, carol_pin) = owner_login.add_administrator("carol", "security-admin");

    // The workstation: keys on the token (Ed25519 root and targets, P-256 release), the root.
    let token_pin = write_secret(&secrets, "token-pin", &token.pin);
    let module = token.module.to_str().unwrap().to_owned();
    let token_args = [
        "--pkcs11-module",
        &module,
        "--token-label",
        &token.label,
        "--token-pin-file",
        token_pin.to_str().unwrap(),
    ];
    let root_file = dir.path().join("root.json");
    let initialised = owner.run(
        &[
            &[
                "ota",
                "keys",
                "init",
                "--no-director",
                "--pin-file",
                pin,
                "--root-out",
            ][..],
            &[root_file.to_str().unwrap()],
            &token_args[..],
        ]
        .concat(),
    );
    assert!(
        initialised.status.success(),
        "{}",
        output_text(&initialised)
    );
    // Opting out of the director is said to be what it is, with the way back.
    let stderr = String::from_utf8_lossy(&initialised.stderr);
    assert!(
        stderr.contains("warning: this root pins no director: every device that trusts it")
            && stderr.contains("enigm ota keys rotate --role root --director"),
        "{stderr}"
    );
    let shown = owner.ok(&["ota", "keys", "show"]);
    assert!(shown.contains("release-signing"), "{shown}");
    assert!(!shown.contains("warning"), "{shown}");
    // With `--no-director` the root pins no director: devices install the newest release they
    // accept.
    let shown = owner.json(&["ota", "keys", "show"]);
    assert_eq!(shown["director_pinned"], false, "{shown}");
    assert_eq!(shown["online_keys_named"], true, "{shown}");

    let created = owner.json(&[
        "admin",
        "enrollment-token",
        "create",
        "--group",
        "field-phones",
        "--pin-file",
        pin,
    ]);
    let enrollment = write_secret(&secrets, "token", created["token"].as_str().unwrap());
    let device = dir.path().join("device");
    let ota = ["--ota-trusted-root", root_file.to_str().unwrap()];
    let first = agent(
        &url,
        &device,
        &[
            &["--enrollment-token-file", enrollment.to_str().unwrap()][..],
            &ota[..],
        ]
        .concat(),
    );
    // Before any release the repository holds at most the group's first policy bundle
    // (Command publishes one for a group once a token names it).
    assert!(
        first.contains("ota: up to date") || first.contains("ota: repository unavailable"),
        "{first}"
    );
    // The first check-in came before any bundle was in force: `policy-compliance` is not
    // measurable, a finding the agent measured, never a silent baseline.
    let devices = owner.json(&["admin", "devices", "list"]);
    let handle = devices["items"][0]["handle"].as_str().unwrap().to_owned();
    // The device's policy bundle view and its `policy-compliance` findings.
    let policy_compliance = || -> (Value, Vec<Value>) {
        let shown = owner.json(&["admin", "devices", "show", &handle]);
        let findings = shown["trust"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|finding| finding["signal"] == "policy-compliance")
            .cloned()
            .collect();
        (shown["policy_bundle"].clone(), findings)
    };
    let (_, compliance) = policy_compliance();
    assert_eq!(compliance.len(), 1, "{compliance:?}");
    assert_eq!(compliance[0]["source"], "measured", "{compliance:?}");

    // A release: created by the pipeline, approved by carol, signed on the token, published.
    // After the targets key is rotated, a label naming the old key is refused before anything is
    // signed, and the error names the flag and the key the root expects.
    let rotated_targets = std::cell::Cell::new(false);
    let release_of = |kind: &str, name: &str, bytes: &[u8], rollback: &str| -> String {
        let image = dir.path().join(name);
        std::fs::write(&image, bytes).unwrap();
        let created = owner.json(&[
            "release",
            "create",
            image.to_str().unwrap(),
            "--release-version",
            &format!("2026.11.{rollback}"),
            "--rollback-index",
            rollback,
            "--model",
            "enigm-sim",
            "--kind",
            kind,
            "--justification",
            "november release",
        ]);
        assert_eq!(created["artifact_stored"], true);
        let id = created["id"].as_str().unwrap().to_owned();
        // Not approved yet: the workstation refuses to sign.
        let early = owner.run(
            &[
                &["release", "sign", &id, "--pin-file", pin, "--trusted-root"][..],
                &[root_file.to_str().unwrap()],
                &token_args[..],
            ]
            .concat(),
        );
        assert!(!early.status.success());
        carol.json(&[
            "admin",
            "approvals",
            "approve",
            created["approval"].as_str().unwrap(),
            "--pin-file",
            carol_pin.to_str().unwrap(),
        ]);
        if rotated_targets.get() {
            let old_label = owner.run(
                &[
                    &["release", "sign", &id, "--pin-file", pin, "--trusted-root"][..],
                    &[
                        root_file.to_str().unwrap(),
                        "--targets-key-label",
                        "enigm-ota-targets",
                    ],
                    &token_args[..],
                ]
                .concat(),
            );
            assert!(!old_label.status.success());
            assert!(
                output_text(&old_label).contains("pass --targets-key-label enigm-ota-targets-2"),
                "{}",
                output_text(&old_label)
            );
        }
        let signed = owner.json(
            &[
                &["release", "sign", &id, "--pin-file", pin, "--trusted-root"][..],
                // No key labels: the workstation finds its keys by the key ids the newest root
                // names, also after the targets key was rotated.
                &[
                    root_file.to_str().unwrap(),
                    "--artifact",
                    image.to_str().unwrap(),
                ],
                &token_args[..],
            ]
            .concat(),
        );
        assert_eq!(signed["state"], "signed");
        let published = owner.json(&["release", "publish", &id, "--pin-file", pin]);
        assert_eq!(published["state"], "published");
        id
    };
    let release =
        |name: &str, bytes: &[u8], rollback: &str| release_of("os-image", name, bytes, rollback);
    let v2_bytes = b"enigm os image, version 2";
    let v2 = release("enigm-os-2.img", v2_bytes, "2");
    // As if an earlier download had broken off after 10 bytes: the agent asks Command for the
    // rest only (`Range`), and Command's partial answer is exactly what it checks for.
    let downloads = device.join("ota/download");
    std::fs::create_dir_all(&downloads).unwrap();
    std::fs::write(
        downloads.join(hex::encode(enigm_crypto::sha256(v2_bytes))),
        &v2_bytes[..10],
    )
    .unwrap();
    let installed = agent(&url, &device, &ota);
    assert!(
        installed.contains("ota: resuming the download of os/enigm-os-2.img at byte 10 of 25"),
        "{installed}"
    );
    assert!(!installed.contains("did not verify"), "{installed}");
    assert!(
        installed.contains("ota: installed os/enigm-os-2.img"),
        "{installed}"
    );
    assert_eq!(std::fs::read_dir(&downloads).unwrap().count(), 0);
    let state = boot_control(&device);
    assert_eq!(state["active"], "b");
    assert_eq!(state["installed_rollback_index"]["os-image"], 2);
    assert_eq!(
        std::fs::read(device.join("ota/slot-b.img")).unwrap(),
        b"enigm os image, version 2"
    );
    let again = agent(&url, &device, &ota);
    assert!(again.contains("ota: up to date"), "{again}");
    let status = owner.json(&["release", "status", &v2]);
    assert_eq!(status["installs"]["installed"], 1);

    // A configuration bundle: verified like an image, installed whole beside the slots,
    // reported. (Policy bundles are compiled by Command, not released: `enigm policy`.)
    let configuration = br#"{"wallpaper": "enigm"}"#;
    let bundle = release_of(
        "configuration-bundle",
        "configuration.json",
        configuration,
        "7",
    );
    let installed = agent(&url, &device, &ota);
    assert!(installed.contains("ota: up to date"), "{installed}");
    assert!(
        installed.contains("ota: installed configuration"),
        "{installed}"
    );
    assert_eq!(
        std::fs::read(device.join("ota/bundles/configuration-bundle")).unwrap(),
        configuration
    );
    let record: Value =
        serde_json::from_slice(&std::fs::read(device.join("ota/bundles/installed.json")).unwrap())
            .unwrap();
    assert_eq!(
        record["bundles"]["configuration-bundle"]["rollback_index"],
        7
    );
    assert_eq!(
        owner.json(&["release", "status", &bundle])["installs"]["installed"],
        1
    );
    let quiet = agent(&url, &device, &ota);
    assert!(!quiet.contains("configuration"), "installed once: {quiet}");
    // A policy bundle is not a release.
    let refused = owner.run(&[
        "release",
        "create",
        "policy.json",
        "--kind",
        "policy-bundle",
        "--release-version",
        "1",
        "--rollback-index",
        "1",
        "--model",
        "enigm-sim",
        "--justification",
        "policy",
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("enigm policy"), "{stderr}");

    // A policy for the device's group, assigned by approval: Command compiles and signs the
    // group's bundle, the device verifies and applies it, and reports the bundle it enforces.
    let bundle_in_force = || -> Value {
        serde_json::from_slice(&std::fs::read(device.join("ota/bundles/policy-bundle")).unwrap())
            .unwrap()
    };
    let approve = |approval: &Value| {
        carol.json(&[
            "admin",
            "approvals",
            "approve",
            approval.as_str().unwrap(),
            "--pin-file",
            carol_pin.to_str().unwrap(),
        ]);
    };
    owner.ok(&["policy", "create", "field-trust", "--kind", "trust"]);
    // Proposes `content` as the next version of `policy` and assigns that version to the
    // group, each approved by carol.
    let assign_version = |policy: &str, content: serde_json::Value, version: &str| {
        let file = dir.path().join(format!("{policy}-{version}.json"));
        std::fs::write(&file, content.to_string()).unwrap();
        let requested = owner.json(&[
            "policy",
            "version",
            "create",
            policy,
            "--file",
            file.to_str().unwrap(),
            "--justification",
            "field rollout",
            "--pin-file",
            pin,
        ]);
        approve(&requested["approval"]["id"]);
        let requested = owner.json(&[
            "policy",
            "assign",
            policy,
            "--version",
            version,
            "--group",
            "field-phones",
            "--justification",
            "field rollout",
            "--pin-file",
            pin,
        ]);
        approve(&requested["approval"]["id"]);
    };
    let trust = |max_age: u64| {
        serde_json::json!({
            "critical": ["device-integrity", "secure-boot"],
            "max_signal_age_seconds": max_age
        })
    };
    // Published by the background publisher within a few seconds of the approval.
    let newest = || {
        owner.json(&["policy", "bundles"])["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|bundle| bundle["group"] == "field-phones")
            .map(|bundle| bundle["sequence"].as_u64().unwrap())
    };
    let published = |sequence: u64| {
        for _ in 0..100 {
            if newest() == Some(sequence) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!("bundle {sequence} of field-phones was not published");
    };
    // The group's first bundle (no assignment yet: the baseline's settings), from the token.
    published(1);
    agent(&url, &device, &ota);
    agent(&url, &device, &ota);
    let (bundle_view, findings) = policy_compliance();
    assert_eq!(bundle_view["enforced"], 1, "{bundle_view}");
    assert!(
        findings.is_empty(),
        "a verified bundle in force: {findings:?}"
    );

    assign_version("field-trust", trust(600), "1");
    published(2);
    let applied = agent(&url, &device, &ota);
    assert!(
        applied.contains("ota: installed policy-bundles/field-phones/2.json"),
        "{applied}"
    );
    let in_force = bundle_in_force();
    assert_eq!(in_force["group"], "field-phones", "{in_force}");
    assert_eq!(
        in_force["policies"]["trust"]["name"], "field-trust",
        "{in_force}"
    );
    assert_eq!(in_force["policies"]["trust"]["version"], 1, "{in_force}");
    assert_eq!(
        in_force["agent"]["checkin_interval_seconds"], 300,
        "{in_force}"
    );
    // The next check-in reports it: enforced is published, and compliance is no finding.
    agent(&url, &device, &ota);
    let (bundle_view, findings) = policy_compliance();
    assert_eq!(bundle_view["enforced"], 2, "{bundle_view}");
    assert_eq!(bundle_view["published"], 2, "{bundle_view}");
    assert!(findings.is_empty(), "{findings:?}");
    // A second change: bundle 3 replaces bundle 2 on the device, with its interval.
    assign_version("field-trust", trust(120), "2");
    published(3);
    let applied = agent(&url, &device, &ota);
    assert!(
        applied.contains("ota: installed policy-bundles/field-phones/3.json"),
        "{applied}"
    );
    let in_force = bundle_in_force();
    assert_eq!(
        in_force["agent"]["checkin_interval_seconds"], 60,
        "{in_force}"
    );
    agent(&url, &device, &ota);
    assert_eq!(policy_compliance().0["enforced"], 3);

    // A network policy assigned to the group travels in its next bundle; the device holds it,
    // and `enigm net decide` explains a flow offline under the bundle the device holds, and on
    // Command for the device (audited as the route's category and the rule, never the flow).
    owner.ok(&["policy", "create", "field-network", "--kind", "network"]);
    assign_version(
        "field-network",
        serde_json::json!({
            "version": 1,
            "blocklists": {"threats": {"domains": ["evil.example"]}},
            "layers": [
                {"id": "threats", "rules": [{"id": "block-threats",
                    "match": {"blocklist": "threats"}, "action": {"block": {"reason": "malware"}}}]},
                {"id": "routing", "rules": [{"id": "apps-proxy",
                    "match": {"apps": ["browser"]}, "action": {"route": "enigm-proxy"}},
                    {"id": "chat-vpn", "match": {"apps": ["chat"]},
                     "action": {"route": {"vpn": "de-fra"}}}]}
            ]
        }),
        "1",
    );
    published(4);
    let applied = agent(&url, &device, &ota);
    assert!(
        applied.contains("ota: installed policy-bundles/field-phones/4.json"),
        "{applied}"
    );
    assert_eq!(
        bundle_in_force()["policies"]["network"]["name"],
        "field-network",
        "{}",
        bundle_in_force()
    );
    let held = device.join("ota/bundles/policy-bundle");
    let held = held.to_str().unwrap();
    let offline = owner.json(&[
        "net",
        "decide",
        "--bundle",
        held,
        "--app",
        "browser",
        "--domain",
        "news.example.org",
    ]);
    assert_eq!(offline["route"], "enigm-proxy", "{offline}");
    assert_eq!(offline["rule"], "apps-proxy", "{offline}");
    assert_eq!(offline["policy"]["name"], "field-network", "{offline}");
    let blocked = owner.run(&[
        "net",
        "decide",
        "--bundle",
        held,
        "--app",
        "browser",
        "--domain",
        "cdn.evil.example",
    ]);
    assert_eq!(blocked.status.code(), Some(1), "{}", output_text(&blocked));
    assert!(
        output_text(&blocked).contains("blocked: malware (rule block-threats)"),
        "{}",
        output_text(&blocked)
    );
    let online = owner.json(&[
        "net",
        "decide",
        "--device",
        &handle,
        "--app",
        "browser",
        "--domain",
        "news.example.org",
    ]);
    assert_eq!(online["route"], "enigm-proxy", "{online}");
    assert_eq!(online["policy"]["version"], 1, "{online}");
    // The VPN gateways the chat route's location is served by, through the CLI.
    let added = owner.json(&[
        "net",
        "gateways",
        "add",
        "fra-1",
        "--location",
        "de-fra",
        "--endpoint",
        "fra-1.vpn.example:51820",
        "--tunnel-key",
        "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
        "--tunnel-network",
        "10.64.0.0/24",
        "--capacity",
        "10",
    ]);
    assert_eq!(added["accepting_new_sessions"], true, "{added}");
    // The device generates its WireGuard key and is placed in a location its policy routes to;
    // its configuration holds its own private key, which Command never saw.
    let vpn = |args: &[&str]| {
        let output = std::process::Command::new(support::ENIGM)
            .args(["agent-vpn", "--server", &url, "--state-dir"])
            .arg(&device)
            .args(args)
            .env_remove("ENIGM_SERVER")
            .output()
            .unwrap();
        (output.status.success(), output_text(&output))
    };
    let (placed, said) = vpn(&["--location", "de-fra"]);
    assert!(placed, "{said}");
    assert!(
        said.contains("vpn: de-fra via fra-1 (10.64.0.2/24), switch 1"),
        "{said}"
    );
    let config_path = device.join("wireguard-enigm0.conf");
    let config = std::fs::read_to_string(&config_path).unwrap();
    assert!(
        config.contains("PrivateKey = ") && config.contains("Address = 10.64.0.2/24"),
        "{config}"
    );
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&config_path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let peers = owner.run(&["net", "gateways", "peers", "fra-1"]);
    let peers = output_text(&peers);
    assert!(peers.contains("AllowedIPs = 10.64.0.2/32"), "{peers}");
    let private = config
        .lines()
        .find_map(|line| line.strip_prefix("PrivateKey = "))
        .unwrap()
        .to_owned();
    let (refused, said) = vpn(&["--location", "us-nyc"]);
    assert!(
        !refused && said.contains("vpn_location_not_allowed"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(&config_path).unwrap(),
        config,
        "a refusal changes nothing"
    );
    let drained = owner.json(&[
        "net",
        "gateways",
        "set",
        "fra-1",
        "--unhealthy",
        "--load",
        "95",
    ]);
    assert_eq!(drained["healthy"], false, "{drained}");
    assert_eq!(drained["load_percent"], 95, "{drained}");
    let listed = owner.run(&["net", "gateways"]);
    let listed = output_text(&listed);
    assert!(
        listed.contains("fra-1") && listed.contains("1/10") && listed.contains("refused"),
        "{listed}"
    );
    let (left, said) = vpn(&["--leave"]);
    assert!(left && said.contains("vpn: left, switch 3"), "{said}");
    assert!(!config_path.exists());
    let gateways = owner.json(&["net", "gateways"]);
    assert_eq!(gateways[0]["assigned"], 0, "{gateways}");
    let switches = owner.json(&["audit", "events", "--action", "device.vpn-switch"]);
    let recorded = serde_json::to_string(&switches).unwrap();
    assert_eq!(switches["items"].as_array().unwrap().len(), 3, "{recorded}");
    assert!(
        !recorded.contains("de-fra") && !recorded.contains("fra-1") && !recorded.contains(&private),
        "{recorded}"
    );
    let decisions = owner.json(&["audit", "events", "--action", "device.network-decision"]);
    let decisions = decisions["items"].as_array().unwrap();
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    let recorded = serde_json::to_string(decisions).unwrap();
    assert!(
        recorded.contains("apps-proxy") && !recorded.contains("news.example.org"),
        "{recorded}"
    );
    // Command audited each publication.
    let publications = owner.json(&["audit", "events", "--action", "policy.bundle-publish"]);
    assert!(
        publications["items"].as_array().unwrap().len() >= 3,
        "{publications}"
    );

    // The targets key is rotated (new root version, current targets re-signed); the device
    // follows the root chain and stays up to date, and later releases are signed with the new
    // key.
    owner.ok(&[
        &[
            "ota",
            "keys",
            "rotate",
            "--role",
            "targets",
            "--new-key-label",
            "enigm-ota-targets-2",
            "--pin-file",
            pin,
        ][..],
        &token_args[..],
    ]
    .concat());
    let rotated = agent(&url, &device, &ota);
    assert!(rotated.contains("ota: up to date"), "{rotated}");
    // With the token, `ota keys show` names each key's label; Command's online keys as such.
    let shown = owner.ok(&[&["ota", "keys", "show"][..], &token_args[..]].concat());
    let targets_row = shown
        .lines()
        .find(|line| line.contains("targets"))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(targets_row.contains("enigm-ota-targets-2"), "{shown}");
    assert!(shown.contains("enigm-ota-root"), "{shown}");
    assert!(shown.contains("enigm-ota-release"), "{shown}");
    assert!(shown.contains("Command's online snapshot key"), "{shown}");
    // A rotation adds no director pin of its own.
    let shown = owner.json(&["ota", "keys", "show"]);
    assert_eq!(shown["root"]["signed"]["version"], 2, "{shown}");
    assert_eq!(shown["director_pinned"], false, "{shown}");
    rotated_targets.set(true);

    // An image that fails its health check rolls back to the running slot.
    let v3_bytes = b"enigm os image 3 ENIGM-SIMULATE-UNHEALTHY";
    let v3 = release("enigm-os-3.img", v3_bytes, "3");
    // What a power cut left of an earlier download does not verify: fetched again whole.
    std::fs::write(
        downloads.join(hex::encode(enigm_crypto::sha256(v3_bytes))),
        b"0123456789",
    )
    .unwrap();
    let rolled = agent(&url, &device, &ota);
    assert!(
        rolled.contains("the resumed download did not verify; downloading it again"),
        "{rolled}"
    );
    assert!(rolled.contains("rolled back"), "{rolled}");
    assert_eq!(boot_control(&device)["active"], "b");
    assert_eq!(
        owner.json(&["release", "status", &v3])["installs"]["rolled_back"],
        1
    );
    // v3 superseded v2: `release status` says so, by which release, in JSON and tables.
    let v2_now = owner.json(&["release", "status", &v2]);
    assert_eq!(v2_now["state"], "superseded", "{v2_now}");
    assert_eq!(v2_now["superseded_by"], v3.as_str(), "{v2_now}");
    let table = owner.ok(&["release", "status"]);
    let v2_row = table
        .lines()
        .find(|line| line.contains(&v2[..8]))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        v2_row.contains(&format!("superseded by {}", &v3[..8])),
        "{table}"
    );
    let v3_row = table
        .lines()
        .find(|line| line.contains(&v3[..8]))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(v3_row.contains("published"), "{table}");

    // An artifact tampered with on Command's disk: refused, nothing switched.
    let v4_bytes = b"enigm os image, version 4";
    let v4 = release("enigm-os-4.img", v4_bytes, "4");
    let digest = hex::encode(enigm_crypto::sha256(v4_bytes));
    std::fs::write(
        data_dir.join("ota/targets").join(&digest),
        b"enigm os image, version X",
    )
    .unwrap();
    let refused = agent(&url, &device, &ota);
    assert!(refused.contains("update_artifact_mismatch"), "{refused}");
    assert_eq!(boot_control(&device)["active"], "b");
    // The 8 characters `release status` lists are enough to name a release.
    assert_eq!(
        owner.json(&["release", "status", &v4[..8]])["installs"]["rejected"],
        1
    );
    // Command's metrics count the reports by outcome.
    let metrics_url = server.printed_address("metrics");
    let metrics = reqwest::get(&metrics_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let installs = |outcome: &str| -> f64 {
        let series = format!("enigm_ota_installs_total{{outcome=\"{outcome}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series.as_str()))
            .map_or(0.0, |value| value.parse().unwrap())
    };
    assert_eq!(installs("rolled-back"), 1.0, "{metrics}");
    assert_eq!(installs("rejected"), 1.0, "{metrics}");
    assert!(installs("installed") >= 1.0, "{metrics}");

    // The refusal is the device's `ota-verification` signal at its next check-in: Command sees a
    // failed protection (a finding; the baseline policy does not make it critical).
    let ota_findings = || -> Vec<Value> {
        let devices = owner.json(&["admin", "devices", "list"]);
        let handle = devices["items"][0]["handle"].as_str().unwrap().to_owned();
        let shown = owner.json(&["admin", "devices", "show", &handle]);
        shown["trust"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|finding| finding["signal"] == "ota-verification")
            .cloned()
            .collect()
    };
    assert!(ota_findings().is_empty(), "verified until now");
    agent(&url, &device, &ota);
    let findings = ota_findings();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0]["kind"], "protection-failed", "{findings:?}");
    assert_eq!(findings[0]["source"], "measured", "{findings:?}");

    // Every outcome is in the audit log.
    let events = owner.json(&["audit", "events", "--action", "device.ota-install"]);
    let outcomes: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["outcome"].as_str().unwrap())
        .collect();
    assert!(
        outcomes.contains(&"success") && outcomes.contains(&"failed"),
        "{outcomes:?}"
    );
    let signs = owner.json(&["audit", "events", "--action", "release.sign"]);
    assert!(signs["items"].as_array().unwrap().len() >= 3);

    // A bundle record that cannot be read refuses the bundles, never the OS image: the next
    // image still installs (its state is the slot store's), and the device reports
    // `policy-compliance` failed instead of enforcing a guess.
    std::fs::write(
        device.join("ota/bundles/installed.json"),
        b"{\"bundles\": 7}",
    )
    .unwrap();
    release("enigm-os-5.img", b"enigm os image, version 5", "5");
    let corrupt = agent(&url, &device, &ota);
    assert!(
        corrupt.contains("ota: installed os/enigm-os-5.img"),
        "{corrupt}"
    );
    assert!(
        corrupt.contains("policy bundles are refused until"),
        "{corrupt}"
    );
    assert_eq!(
        boot_control(&device)["installed_rollback_index"]["os-image"],
        5
    );
    agent(&url, &device, &ota);
    let (_, compliance) = policy_compliance();
    assert_eq!(compliance.len(), 1, "{compliance:?}");
    assert_eq!(compliance[0]["kind"], "protection-failed", "{compliance:?}");
    drop(server);
}
