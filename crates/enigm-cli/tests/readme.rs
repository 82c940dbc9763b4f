//! The README, executed. Every command line of the README's ```sh blocks is typed here into a
//! real terminal (a PTY), in the README's order, against a real `enigm up` on SQLite (SoftHSM2
//! for the OTA flow), with the prompts answered as a person would answer them: the README
//! cannot drift from the CLI without this test failing. The only liberties are the README's
//! placeholders (`<ID>`, `<HANDLE>`, `<CODE>`, the example host and paths), filled with the
//! values the earlier commands printed, and the size of the simulated fleet's measuring run,
//! scaled down to what a debug build finishes in seconds. A README line that this walk neither runs nor names
//! with the reason it cannot run here fails the test, and so does a line the walk names that the
//! README no longer has.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

#[path = "readme/runner.rs"]
mod runner;

use std::path::Path;

use enigm_crypto::TotpSecret;

use runner::{Admin, Walk};
use support::{Server, bootstrap_field};

/// The walk's directory, kept for a look after a failure when `ENIGM_README_KEEP` is set.
struct KeptOrNot(Option<tempfile::TempDir>);

impl KeptOrNot {
    fn path(&self) -> &Path {
        self.0.as_ref().unwrap().path()
    }
}

impl Drop for KeptOrNot {
    fn drop(&mut self) {
        if std::env::var_os("ENIGM_README_KEEP").is_some()
            && let Some(dir) = self.0.take()
        {
            let _kept = dir.keep();
        }
    }
}

fn readme() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join("README.md")).unwrap()
}

/// Runs an `enigm` command outside the README, as the current administrator, without a
/// terminal: the walk's own look-ups (the id of a pending approval, a device handle).
fn look_up(walk: &Walk, args: &[&str]) -> serde_json::Value {
    let admin = &walk.admins[&walk.current];
    let output = std::process::Command::new(support::ENIGM)
        .args(args)
        .arg("--json")
        .env("ENIGM_CONFIG_DIR", &admin.config)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "`enigm {}`: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The items of a list answer (`{"items": [...], "next_cursor": ...}`).
fn items(value: &serde_json::Value) -> Vec<serde_json::Value> {
    value["items"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("not a list answer: {value}"))
}

/// The handle an enrolled agent keeps in its state directory (`enigm tsc --json` shows it).
fn agent_handle(state_dir: &Path) -> String {
    let output = std::process::Command::new(support::ENIGM)
        .args(["tsc", "--json", "--state-dir"])
        .arg(state_dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let start = text
        .find("dev_")
        .expect("a device handle in `enigm tsc --json`");
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

fn admin(password: &str, pin: &str, config: &Path, next_pin: &str) -> Admin {
    Admin {
        password: password.to_owned(),
        pin: pin.to_owned(),
        next_password: format!("{password}-changed-at-first-use"),
        next_pin: next_pin.to_owned(),
        totp: None,
        last_totp_step: 0,
        config: config.to_path_buf(),
    }
}

/// The README's first steps of an administrator: log in, replace the generated password, set a
/// PIN, enroll and confirm an authenticator.
fn first_login(walk: &mut Walk, name: &str) {
    walk.run(
        &format!("enigm login --server http://127.0.0.1:8080 --username {name}"),
        &[],
    )
    .ok();
    walk.run("enigm admin password change", &[])
        .ok()
        .shows("password changed");
    walk.run("enigm admin pin set", &[])
        .ok()
        .shows("critical-operation pin set");
    let enrolled = walk.run("enigm admin totp enroll", &[]).ok();
    let secret = enrolled.capture(r"secret \(shown once\): ([A-Z2-7]+)");
    let bytes = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .unwrap();
    walk.admin().totp = Some(TotpSecret::from_bytes(&bytes).unwrap());
    let code = runner::next_totp_code(walk.admin());
    walk.run("enigm admin totp confirm <CODE>", &[("<CODE>", &code)])
        .ok()
        .shows("totp enabled");
}

#[test]
fn the_readme_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    if std::env::var_os("ENIGM_README_KEEP").is_some() {
        eprintln!("keeping the walk's directory {}", dir.path().display());
    }
    let dir = KeptOrNot(Some(dir));
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let server = Server::start(
        &work.join("enigm-data"),
        &["--metrics-listen", "127.0.0.1:0"],
    );
    let metrics = server.printed_address("metrics");
    let mut walk = Walk::new(&readme(), &work);
    walk.replace("http://127.0.0.1:8080", &server.url);
    walk.replace("http://127.0.0.1:9464", &metrics);
    walk.replace("https://command.example:8443", &server.url);
    let agent_state = work.join("agent-state");
    walk.replace("/var/lib/enigm-agent", agent_state.to_str().unwrap());
    // The token file the administrator wrote, copied to the device.
    let token_file = work.join("token");
    walk.replace("/run/enigm/token", token_file.to_str().unwrap());

    // Quick start.
    walk.not_run(
        "cargo run --release -- up",
        "a release build; scripts/check-first-command runs exactly this on every full test run, \
         and this walk's Command is the same binary's `enigm up`",
    );
    walk.not_run("scripts/test", "the test command itself");

    // Using Command, as the bootstrap owner.
    let bootstrap = std::fs::read_to_string(work.join("enigm-data/bootstrap-admin.txt")).unwrap();
    walk.admins.insert(
        "admin".to_owned(),
        admin(
            &bootstrap_field(&bootstrap, "password"),
            &bootstrap_field(&bootstrap, "pin"),
            &dir.path().join("admin-config"),
            "602718",
        ),
    );
    walk.current = "admin".to_owned();
    first_login(&mut walk, "admin");
    let code = runner::next_totp_code(walk.admin());
    walk.run("enigm admin totp remove <CODE>", &[("<CODE>", &code)])
        .ok()
        .shows("totp removed");
    walk.admin().totp = None;

    let created = walk.run("enigm admin users create alice", &[]).ok();
    let alice_password = created.capture(r"initial password \(shown once[^)]*\): (\S+)");
    walk.run(
        "enigm admin roles grant alice security-admin --justification \"second approver\"",
        &[],
    )
    .ok();
    let pending = walk
        .run("enigm admin approvals list --state pending", &[])
        .ok();
    let _ = pending;
    let approvals = look_up(&walk, &["admin", "approvals", "list", "--state", "pending"]);
    let grant = items(&approvals)[0]["id"].as_str().unwrap().to_owned();
    walk.run("enigm admin approvals show <ID>", &[("<ID>", &grant)])
        .ok()
        .shows("security-admin")
        .shows("alice");
    walk.run("enigm admin approvals approve <ID>", &[("<ID>", &grant)])
        .ok();
    walk.run("enigm admin users list", &[]).ok().shows("alice");

    // alice, on her own machine.
    walk.admins.insert(
        "alice".to_owned(),
        admin(
            &alice_password,
            "",
            &dir.path().join("alice-config"),
            "739164",
        ),
    );
    walk.current = "alice".to_owned();
    first_login(&mut walk, "alice");

    // Back as the owner.
    walk.current = "admin".to_owned();
    walk.run(
        "enigm admin users reset-totp alice --justification \"lost her phone\"",
        &[],
    )
    .ok();
    walk.run("enigm audit events --limit 50", &[]).ok();
    walk.run("enigm audit events --since 10m", &[])
        .ok()
        .shows("admin.user-create");
    let key = walk.assign("KEY=$(enigm audit key)");
    assert!(!key.trim().is_empty());
    walk.run(
        "enigm audit verify --data-dir ./enigm-data --log-key \"$KEY\"",
        &[],
    )
    .ok();
    walk.run("enigm audit verify --log-key \"$KEY\"", &[]).ok();
    walk.run("enigm audit legal-hold on", &[]).ok();
    walk.run("enigm admin routes", &[]).ok();
    walk.run(
        "enigm admin enrollment-token create --group phones --uses 10 --token-file token",
        &[],
    )
    .ok()
    .shows("token written to token (mode 0600)");

    // A device enrolls and checks in, runs as a service, and shows its Trust Security Center.
    walk.run(
        "enigm agent --server https://command.example:8443 --state-dir /var/lib/enigm-agent \
         --enrollment-token-file /run/enigm/token --once",
        &[],
    )
    .ok();
    walk.run_for(
        "enigm agent --server https://command.example:8443 --state-dir /var/lib/enigm-agent \
         --interval 60",
        &[],
        4,
    );
    walk.run("enigm tsc --state-dir /var/lib/enigm-agent", &[])
        .ok();
    // More devices for the lifecycle commands, each a simulated protected one (the README's
    // `--profile` remark); the last one agrees to remote wipes.
    let mut handles = vec![agent_handle(&agent_state)];
    for (index, extra) in [[].as_slice(), &[], &[], &[], &["--wipe-opt-in"]]
        .iter()
        .enumerate()
    {
        let state = work.join(format!("device-{index}"));
        let mut args = vec!["--enrollment-token-file", token_file.to_str().unwrap()];
        args.extend_from_slice(extra);
        let output = support::agent_once(&server.url, &state, &args);
        assert!(output.status.success(), "{output:?}");
        handles.push(agent_handle(&state));
    }
    let listed = items(&look_up(&walk, &["admin", "devices", "list"]));
    assert_eq!(listed.len(), 6, "{listed:?}");
    walk.run(
        "enigm admin devices list --trust-state REVIEW_REQUIRED",
        &[],
    )
    .ok();
    let first = handles[0].as_str();
    walk.run("enigm admin devices show <HANDLE>", &[("<HANDLE>", first)])
        .ok()
        .shows(first);
    let decided = walk.run(
        "enigm admin devices decide <HANDLE> --action network",
        &[("<HANDLE>", first)],
    );
    assert!(
        (decided.code == 0 && decided.output.contains("allow"))
            || (decided.code == 1 && decided.output.contains("deny")),
        "{decided:?}"
    );
    let lifecycle = [
        ("restrict", 1),
        ("revoke", 1),
        ("retire", 2),
        ("wipe", 5),
        ("replace", 3),
    ];
    for (action, device) in lifecycle {
        walk.run(
            &format!("enigm admin devices lifecycle <HANDLE> {action} --justification \"…\""),
            &[("<HANDLE>", handles[device].as_str())],
        )
        .ok();
    }

    // Remote attestation, offline: a real device's chain (from the shared third-party vectors)
    // and a status list that revokes nothing.
    let vectors = enigm_test_support::require_shared_vectors();
    std::fs::copy(
        vectors.join("android-key-attestation/google-keyattestation/caiman/sdk36/SB_EC_RKP.pem"),
        work.join("chain.pem"),
    )
    .unwrap();
    std::fs::write(work.join("status.json"), r#"{"entries": {}}"#).unwrap();
    walk.run(
        "enigm attest verify --chain chain.pem --at 2025-10-01T00:00:00Z --status-list status.json",
        &[],
    )
    .ok()
    .shows("outcome: accepted");

    // OTA releases: a SoftHSM2 token for the workstation, made as the README makes it.
    walk.replace("/srv/mirror", work.join("mirror").to_str().unwrap());
    walk.run("mkdir -p softhsm/tokens && chmod 700 softhsm", &[])
        .ok();
    walk.run(
        "printf 'directories.tokendir = %s/softhsm/tokens\\n' \"$PWD\" > softhsm/softhsm2.conf",
        &[],
    )
    .ok();
    walk.assign("export SOFTHSM2_CONF=\"$PWD/softhsm/softhsm2.conf\"");
    walk.run(
        "(umask 077 && head -c 9 /dev/urandom | base64 > token-pin && head -c 9 /dev/urandom | \
         base64 > token-so-pin)",
        &[],
    )
    .ok();
    walk.run(
        "softhsm2-util --init-token --free --label release-hsm --so-pin \"$(cat token-so-pin)\" \
         --pin \"$(cat token-pin)\"",
        &[],
    )
    .ok();
    walk.run(
        "enigm ota keys init --pkcs11-module /usr/lib/softhsm/libsofthsm2.so --token-label \
         release-hsm --token-pin-file token-pin --root-out root.json",
        &[],
    )
    .ok();
    walk.run("enigm ota keys show", &[]).ok().shows("targets");
    // The pipeline's build output.
    std::fs::create_dir_all(work.join("out")).unwrap();
    std::fs::write(work.join("out/enigm-os.img"), vec![7_u8; 256 * 1024]).unwrap();
    walk.run(
        "enigm release create out/enigm-os.img --release-version 2026.11.2 --rollback-index 12 \
         --model pixel-8 --channel stable --justification \"November security release\"",
        &[],
    )
    .ok();
    let signing = items(&look_up(
        &walk,
        &["admin", "approvals", "list", "--state", "pending"],
    ))
    .into_iter()
    .find(|approval| {
        approval["kind"]
            .as_str()
            .unwrap_or_default()
            .contains("release")
    })
    .expect("the release's signing approval");
    let signing = signing["id"].as_str().unwrap().to_owned();
    walk.current = "alice".to_owned();
    walk.run(
        "enigm admin approvals approve <approval-id>",
        &[("<approval-id>", &signing)],
    )
    .ok();
    walk.current = "admin".to_owned();
    let release = items(&look_up(&walk, &["release", "status"]))
        .into_iter()
        .next()
        .expect("the release");
    let release = release["id"].as_str().unwrap().to_owned();
    walk.run(
        "enigm release sign <release-id> --pkcs11-module /usr/lib/softhsm/libsofthsm2.so \
         --token-label release-hsm --token-pin-file token-pin --trusted-root root.json \
         --artifact out/enigm-os.img",
        &[("<release-id>", &release)],
    )
    .ok();
    walk.run(
        "enigm release publish <release-id>",
        &[("<release-id>", &release)],
    )
    .ok();
    let id = [("<release-id>", release.as_str())];
    walk.run(
        "enigm release rollout plan <release-id> --model stable-rollout --wave 10:0s --wave 50:24h \
         --wave 100:24h --validation-group lab-phones --justification \"December rollout\"",
        &id,
    )
    .ok();
    walk.run(
        "enigm release rollout validate <release-id> --justification \"artifact and plan checked\"",
        &id,
    )
    .ok()
    .shows("validated");
    walk.run(
        "enigm release rollout start <release-id> --justification \"first wave\"",
        &id,
    )
    .ok()
    .shows("10 %");
    walk.run(
        "enigm release rollout advance <release-id> --justification \"wave 1 healthy\"",
        &id,
    )
    .ok()
    .shows("50 %");
    walk.run("enigm release status <release-id>", &id)
        .ok()
        .shows("controlled-rollout");
    walk.run(
        "enigm release pin lab-phones <release-id> --justification \"hold the lab on this version\"",
        &id,
    )
    .ok()
    .shows("lab-phones");
    walk.run("enigm release status", &[])
        .ok()
        .shows("published");
    walk.run("enigm ota export --dir /srv/mirror", &[]).ok();
    assert!(work.join("mirror/metadata/timestamp.json").is_file() || work.join("mirror").is_dir());
    walk.run(
        "enigm ota keys rotate --role targets --new-key-label enigm-ota-targets-2 \
         --pkcs11-module /usr/lib/softhsm/libsofthsm2.so --token-label release-hsm \
         --token-pin-file token-pin",
        &[],
    )
    .ok();

    // The third-party TUF conformance suite lives on GitHub, out of this machine's reach.
    for line in [
        "cargo build --release -p enigm-cli --bin enigm-tuf-conformance",
        "git clone https://github.com/theupdateframework/tuf-conformance /tmp/tuf-conformance",
        "cd /tmp/tuf-conformance && python3 -m venv env && ./env/bin/pip install -e . && \
         apt-get install -y faketime",
        "./env/bin/pytest tuf_conformance --entrypoint \"$OLDPWD/target/release/enigm-tuf-conformance\"",
    ] {
        walk.not_run(
            line,
            "fetches the suite from GitHub, which the test machines cannot reach; run by hand \
             (113/113 in the closing note of OTA I)",
        );
    }

    // Measuring: benchmarks and load runs take minutes each and measure, they do not test.
    for line in [
        "cargo bench -p enigm-server --bench requests",
        "cargo bench -p enigm-auditlog --bench proofs",
        "cargo bench -p enigm-server --bench audit_append",
        "cargo bench -p enigm-store --bench audit_proofs",
        "cargo run --release -p enigm-server --example audit_load -- --seconds 10 --producers 256",
        "cargo bench -p enigm-trust --bench engine",
        "cargo bench -p enigm-server --bench check_ins",
        "cargo bench -p enigm-server --bench director",
        "cargo bench -p enigm-attest --bench android_chain",
        "cargo bench -p enigm-attest --bench tpm_quote",
        "cargo bench -p enigm-ota --bench refresh",
        "cargo bench -p enigm-ota --bench stage",
        "ENIGM_BENCH_POSTGRES_URL=postgres://… scripts/bench-replicas",
    ] {
        walk.not_run(
            line,
            "a benchmark: run by hand, its figures are in the closing notes",
        );
    }
    walk.not_run(
        "scripts/fuzz-smoke",
        "scripts/test runs it on every full run (after the test suite)",
    );

    // A simulated fleet, against the walk's Command.
    walk.not_run(
        "enigm up --data-dir /tmp/sim --metrics-listen 127.0.0.1:9464 &",
        "a second Command on the README's port; the walk measures against its own, started the \
         same way",
    );
    walk.run(
        "enigm login --server http://127.0.0.1:8080 --username admin",
        &[],
    )
    .ok();
    walk.run(
        "enigm admin enrollment-token create --group sim --uses 2000 --token-file token",
        &[],
    )
    .ok();
    // A measuring run: the same command at a size a debug build finishes in seconds.
    walk.run(
        "enigm simulate --server http://127.0.0.1:8080 --devices 2000 --duration 30 \
         --concurrency 256 --enrollment-token-file token --server-metrics http://127.0.0.1:9464",
        &[
            ("--devices 2000", "--devices 40"),
            ("--duration 30", "--duration 3"),
            ("--concurrency 256", "--concurrency 8"),
        ],
    )
    .ok()
    .shows("check")
    .shows("server CPU");

    walk.finish();
}
