//! What the end-to-end test files share: `enigm up` as a child process, the CLI run as one
//! administrator, and the bootstrap credentials.

// Each test file uses a part of these helpers; the rest would be dead code in its crate.
#![allow(
    dead_code,
    reason = "each test crate uses a different part of the shared helpers"
)]

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

pub(crate) mod dot;
pub(crate) mod netns;

pub(crate) const ENIGM: &str = env!("CARGO_BIN_EXE_enigm");

/// A running `enigm up`; killed when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) url: String,
    pub(crate) printed: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The address `enigm up` printed for one of its listeners (`Enigm Command {listener} on
    /// ADDRESS`: "metrics", "Tor Gateway").
    pub(crate) fn printed_address(&self, listener: &str) -> String {
        let prefix = format!("Enigm Command {listener} on ");
        self.printed
            .iter()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {listener} address printed: {:?}", self.printed))
            .trim()
            .to_owned()
    }

    /// Starts `enigm up` on a free loopback port with debug logging, into a file beside the
    /// data directory, so tests can check that no secret is ever logged even at the most
    /// verbose level.
    pub(crate) fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Server::start_logging(data_dir, extra, "debug")
    }

    /// Starts `enigm up` with `RUST_LOG` set to `log_level`.
    pub(crate) fn start_logging(data_dir: &Path, extra: &[&str], log_level: &str) -> Server {
        Server::spawn(Command::new(ENIGM), data_dir, extra, log_level)
    }

    /// Starts `enigm up` listening on `listen` (another address than loopback needs TLS in
    /// `extra`).
    pub(crate) fn start_on(data_dir: &Path, listen: &str, extra: &[&str]) -> Server {
        Server::spawn_on(Command::new(ENIGM), data_dir, listen, extra, "debug")
    }

    /// Starts `enigm up` (debug logging) under an open-file limit of `nofile` (soft and hard,
    /// as `ulimit -n` sets them), through `bash`.
    pub(crate) fn start_with_file_limit(data_dir: &Path, extra: &[&str], nofile: u32) -> Server {
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
            .arg(ENIGM);
        Server::spawn(command, data_dir, extra, "debug")
    }

    fn spawn(command: Command, data_dir: &Path, extra: &[&str], log_level: &str) -> Server {
        Server::spawn_on(command, data_dir, "127.0.0.1:0", extra, log_level)
    }

    #[expect(
        clippy::zombie_processes,
        reason = "the child moves into `Server`, whose Drop kills and reaps it; a panic before that ends the test process"
    )]
    fn spawn_on(
        mut command: Command,
        data_dir: &Path,
        listen: &str,
        extra: &[&str],
        log_level: &str,
    ) -> Server {
        let mut child = command
            .args(["up", "--listen", listen, "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", log_level)
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log_path(data_dir))
                    .expect("log file"),
            )
            .spawn()
            .expect("spawn enigm up");
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut printed = Vec::new();
        loop {
            let line = receiver
                .recv_timeout(Duration::from_secs(60))
                .expect("enigm up printed its address in time");
            if let Some(url) = line.strip_prefix("Enigm Command listening on ") {
                let url = url.trim().to_owned();
                printed.push(line);
                return Server {
                    child,
                    url,
                    printed,
                };
            }
            printed.push(line);
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub(crate) fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("enigm up did not stop within 10 s of SIGTERM");
    }
}

/// A running `enigm proxy`; killed when dropped.
pub(crate) struct Proxy {
    child: Child,
    /// Where it listens, as it printed it.
    pub(crate) address: String,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    /// Starts `enigm proxy` on `listen` in front of Command at `command_url`, with `extra`
    /// arguments, once it says where it listens.
    pub(crate) fn start(listen: &str, command_url: &str, extra: &[&str]) -> Proxy {
        let mut child = Command::new(ENIGM)
            .args(["proxy", "--listen", listen, "--command", command_url])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn enigm proxy");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let address = line
            .trim()
            .strip_prefix("Enigm Proxy listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Proxy { child, address }
    }
}

/// Runs the CLI as one administrator (their own config directory).
pub(crate) struct Cli {
    pub(crate) config: PathBuf,
    pub(crate) server: String,
    pub(crate) extra: Vec<String>,
}

impl Cli {
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        Command::new(ENIGM)
            .args(args)
            .arg("--server")
            .arg(&self.server)
            .args(&self.extra)
            .env("ENIGM_CONFIG_DIR", &self.config)
            .env_remove("ENIGM_TOKEN")
            .env_remove("ENIGM_SERVER")
            .stdin(Stdio::null())
            .output()
            .expect("run enigm")
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "`enigm {}` failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    pub(crate) fn json(&self, args: &[&str]) -> Value {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        serde_json::from_str(&self.ok(&with_json)).expect("json output")
    }
}

/// The simulated protected device the end-to-end tests enroll (`examples/profiles`).
pub(crate) fn protected_profile() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/profiles/protected.toml")
}

/// `enigm agent --once` as the protected profile: enrolls on its first run (given an
/// enrollment token in `args`), then checks in once.
pub(crate) fn agent_once(server: &str, state_dir: &Path, args: &[&str]) -> Output {
    Command::new(ENIGM)
        .arg("agent")
        .arg("--server")
        .arg(server)
        .arg("--state-dir")
        .arg(state_dir)
        .arg("--once")
        .arg("--profile")
        .arg(protected_profile())
        .args(args)
        .env_remove("ENIGM_SERVER")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run enigm agent")
}

/// What a finished command printed, standard output then standard error.
pub(crate) fn output_text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub(crate) fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.with_extension("log")
}

pub(crate) fn write_secret(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{content}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

pub(crate) fn bootstrap_field(text: &str, field: &str) -> String {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}: ")))
        .unwrap_or_else(|| panic!("no `{field}:` line in the bootstrap file"))
        .trim()
        .to_owned()
}

/// After the first login with a password someone else chose (the bootstrap owner's, one from
/// `admin users create`), Command requires a new one: changes it with `enigm admin password
/// change` (with `pin`, when the account has one) and answers the file of the new password
/// (`NAME-password-changed` beside `current`).
pub(crate) fn change_initial_password(cli: &Cli, current: &Path, pin: Option<&Path>) -> PathBuf {
    let name = current.file_name().unwrap().to_str().unwrap();
    let new = write_secret(
        current.parent().unwrap(),
        &format!("{name}-changed"),
        &format!("{name}-chosen-by-its-owner"),
    );
    let mut args = vec![
        "admin",
        "password",
        "change",
        "--password-file",
        current.to_str().unwrap(),
        "--new-password-file",
        new.to_str().unwrap(),
    ];
    if let Some(pin) = pin {
        args.extend(["--pin-file", pin.to_str().unwrap()]);
    }
    cli.ok(&args);
    new
}

/// The bootstrap owner of a fresh installation, logged in: their CLI and the secret files
/// (mode 0600, under `secrets`) that commands needing a password or PIN read.
pub(crate) struct Owner {
    pub(crate) cli: Cli,
    pub(crate) password: PathBuf,
    pub(crate) pin: PathBuf,
    /// Where this test keeps secret files; other administrators' go here too.
    pub(crate) secrets: PathBuf,
    /// The test's scratch directory (CLI configuration directories live in it).
    scratch: PathBuf,
}

impl Owner {
    /// Reads the bootstrap credentials `enigm up` wrote into `data_dir` and logs in at `url`
    /// with the configuration in `scratch/owner-config`.
    pub(crate) fn log_in(scratch: &Path, data_dir: &Path, url: &str) -> Owner {
        Owner::log_in_with(scratch, data_dir, url, Vec::new())
    }

    /// As [`Owner::log_in`], with `extra` global arguments (e.g. `--ca-cert PEM`) on every
    /// command of the owner and of the administrators they add.
    pub(crate) fn log_in_with(
        scratch: &Path,
        data_dir: &Path,
        url: &str,
        extra: Vec<String>,
    ) -> Owner {
        let bootstrap = std::fs::read_to_string(data_dir.join("bootstrap-admin.txt")).unwrap();
        let secrets = scratch.join("secrets");
        std::fs::create_dir_all(&secrets).unwrap();
        let password = write_secret(
            &secrets,
            "owner-password",
            &bootstrap_field(&bootstrap, "password"),
        );
        let pin = write_secret(&secrets, "owner-pin", &bootstrap_field(&bootstrap, "pin"));
        let cli = Cli {
            config: scratch.join("owner-config"),
            server: url.to_owned(),
            extra,
        };
        cli.ok(&[
            "login",
            "--username",
            "admin",
            "--password-file",
            password.to_str().unwrap(),
        ]);
        let password = change_initial_password(&cli, &password, Some(&pin));
        Owner {
            cli,
            password,
            pin,
            secrets,
            scratch: scratch.to_path_buf(),
        }
    }

    /// `--pin-file` and the owner's PIN file, for critical operations.
    pub(crate) fn pin_args(&self) -> [&str; 2] {
        ["--pin-file", self.pin.to_str().unwrap()]
    }

    /// A second administrator: created with `role` by the owner, who approves the grant alone
    /// (a fresh installation's bootstrap window), then logged in with a PIN of their own set.
    /// Returns their CLI and PIN file.
    pub(crate) fn add_administrator(&self, name: &str, role: &str) -> (Cli, PathBuf) {
        let password = write_secret(
            &self.secrets,
            &format!("{name}-password"),
            "a-user-password-of-length",
        );
        let password = password.to_str().unwrap();
        let pin_args = self.pin_args();
        self.cli.json(
            &[
                &[
                    "admin",
                    "users",
                    "create",
                    name,
                    "--password-file",
                    password,
                ][..],
                &pin_args[..],
            ]
            .concat(),
        );
        let grant = self.cli.json(&[
            "admin",
            "roles",
            "grant",
            name,
            role,
            "--justification",
            "second approver",
        ]);
        let decided = self.cli.json(
            &[
                &[
                    "admin",
                    "approvals",
                    "approve",
                    grant["id"].as_str().unwrap(),
                ][..],
                &pin_args[..],
            ]
            .concat(),
        );
        assert_eq!(decided["state"], "executed", "{decided}");
        let cli = Cli {
            config: self.scratch.join(format!("{name}-config")),
            server: self.cli.server.clone(),
            extra: self.cli.extra.clone(),
        };
        cli.ok(&["login", "--username", name, "--password-file", password]);
        let password = change_initial_password(&cli, Path::new(password), None);
        let password = password.to_str().unwrap();
        let pin = write_secret(&self.secrets, &format!("{name}-pin"), "739164");
        cli.ok(&[
            "admin",
            "pin",
            "set",
            "--password-file",
            password,
            "--pin-file",
            pin.to_str().unwrap(),
        ]);
        (cli, pin)
    }
}

/// Checks that the root `enigm ota keys show --json` reports (`shown`) pins, alone and with
/// threshold 1, the director key that `GET /api/v1/ota/online-keys` names (reported beside it),
/// and that the show says so; answers that key's id.
pub(crate) fn assert_root_pins_commands_director(shown: &Value) -> String {
    let online = &shown["online_keys"]["director"];
    let key: enigm_ota::Key = serde_json::from_value(online.clone())
        .unwrap_or_else(|error| panic!("no director in the online keys ({error}): {shown}"));
    let key_id = key.key_id();
    let pin = &shown["root"]["signed"][enigm_ota::director::DIRECTOR_FIELD];
    assert_eq!(pin["threshold"], 1, "{shown}");
    assert_eq!(
        pin["keys"],
        serde_json::json!({ key_id.clone(): online }),
        "{shown}"
    );
    assert_eq!(shown["director_pinned"], true, "{shown}");
    assert_eq!(shown["online_keys_named"], true, "{shown}");
    key_id
}

/// Plans `release`'s rollout as one wave of the whole fleet, open without a soak.
pub(crate) fn plan_one_wave(cli: &Cli, release: &str) {
    cli.ok(&[
        "release",
        "rollout",
        "plan",
        release,
        "--model",
        "stable-rollout",
        "--wave",
        "100:0s",
        "--justification",
        "one wave",
    ]);
}

/// Takes `release`'s rollout one step (`validate`, `start`, …), critical, with the PIN in the
/// file `pin`; what the command printed.
pub(crate) fn rollout_step(cli: &Cli, release: &str, step: &str, pin: &str) -> String {
    cli.ok(&[
        "release",
        "rollout",
        step,
        release,
        "--justification",
        step,
        "--pin-file",
        pin,
    ])
}

/// What publishing a release takes: the pipeline and workstation (`owner`, with the token), and
/// the administrator who approves the signing.
pub(crate) struct Signing<'a> {
    pub(crate) owner: &'a Cli,
    pub(crate) carol: &'a Cli,
    pub(crate) carol_pin: &'a str,
    pub(crate) pin: &'a str,
    pub(crate) dir: &'a Path,
    pub(crate) root_file: &'a Path,
    pub(crate) token_args: &'a [String],
}

impl Signing<'_> {
    /// A release of a small image for `model`: created, approved by carol, signed on the
    /// token, published; its id.
    pub(crate) fn publish(&self, name: &str, model: &str, rollback: &str) -> String {
        let image = self.dir.join(name);
        std::fs::write(&image, format!("enigm os image {name}")).unwrap();
        let created = self.owner.json(&[
            "release",
            "create",
            image.to_str().unwrap(),
            "--release-version",
            &format!("2026.12.{rollback}"),
            "--rollback-index",
            rollback,
            "--model",
            model,
            "--justification",
            "december release",
        ]);
        let id = created["id"].as_str().unwrap().to_owned();
        self.carol.json(&[
            "admin",
            "approvals",
            "approve",
            created["approval"].as_str().unwrap(),
            "--pin-file",
            self.carol_pin,
        ]);
        self.owner.json(
            &[
                &[
                    "release",
                    "sign",
                    &id,
                    "--pin-file",
                    self.pin,
                    "--trusted-root",
                ][..],
                &[
                    self.root_file.to_str().unwrap(),
                    "--artifact",
                    image.to_str().unwrap(),
                ],
                &self
                    .token_args
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()[..],
            ]
            .concat(),
        );
        let release = self
            .owner
            .json(&["release", "publish", &id, "--pin-file", self.pin]);
        assert_eq!(release["state"], "published");
        id
    }
}
/// Command on a backend, its owner logged in, carol as a second administrator, and the signing
/// workstation's keys on a SoftHSM2 token with a first root that pins Command's director
/// (`enigm ota keys init` does by default).
pub(crate) struct Deployment {
    pub(crate) server: Server,
    pub(crate) owner_login: Owner,
    pub(crate) carol: Cli,
    pub(crate) carol_pin: String,
    pub(crate) token_args: Vec<String>,
    pub(crate) root_file: std::path::PathBuf,
    pub(crate) dev_root: std::path::PathBuf,
    _token: enigm_test_support::softhsm::SoftHsmToken,
    _db: enigm_test_support::TestDatabase,
    pub(crate) dir: tempfile::TempDir,
}

impl Deployment {
    /// `None` (said loudly by `SoftHsmToken`) where SoftHSM2 is missing. `dev_attestation`:
    /// Command trusts a development attestation root (`dev_root`) its agents attest with.
    pub(crate) async fn start(
        backend: enigm_test_support::Backend,
        dev_attestation: bool,
    ) -> Option<Deployment> {
        let token = enigm_test_support::softhsm::SoftHsmToken::create()?;
        let db = enigm_test_support::TestDatabase::new(backend)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let dev_root = dir.path().join("dev-root");
        let mut server_args: Vec<&str> = Vec::new();
        if dev_attestation {
            server_args.extend([
                "--insecure-dev-attestation-root",
                dev_root.to_str().unwrap(),
            ]);
        }
        if backend == enigm_test_support::Backend::Postgres {
            server_args.extend(["--database-url", db.url()]);
        }
        let server = Server::start(&data_dir, &server_args);
        let owner_login = Owner::log_in(dir.path(), &data_dir, &server.url);
        let (carol, carol_pin) = owner_login.add_administrator("carol", "security-admin");
        let token_pin = write_secret(&owner_login.secrets, "token-pin", &token.pin);
        let token_args: Vec<String> = [
            "--pkcs11-module",
            token.module.to_str().unwrap(),
            "--token-label",
            &token.label,
            "--token-pin-file",
            token_pin.to_str().unwrap(),
        ]
        .map(str::to_owned)
        .to_vec();
        let root_file = dir.path().join("root.json");
        let deployment = Deployment {
            server,
            carol,
            carol_pin: carol_pin.to_str().unwrap().to_owned(),
            token_args,
            root_file,
            dev_root,
            owner_login,
            _token: token,
            _db: db,
            dir,
        };
        deployment.owner().ok(&[
            &[
                "ota",
                "keys",
                "init",
                "--pin-file",
                deployment.pin(),
                "--root-out",
                deployment.root_file.to_str().unwrap(),
            ][..],
            &deployment.token()[..],
        ]
        .concat());
        Some(deployment)
    }

    pub(crate) fn owner(&self) -> &Cli {
        &self.owner_login.cli
    }

    /// A new enrollment token for `group` with `uses` uses, in a secret file (its path).
    pub(crate) fn enrollment_token(&self, group: &str, uses: u32) -> std::path::PathBuf {
        let created = self.owner().json(&[
            "admin",
            "enrollment-token",
            "create",
            "--group",
            group,
            "--uses",
            &uses.to_string(),
            "--pin-file",
            self.pin(),
        ]);
        write_secret(
            &self.owner_login.secrets,
            "enrollment",
            created["token"].as_str().unwrap(),
        )
    }

    pub(crate) fn pin(&self) -> &str {
        self.owner_login.pin.to_str().unwrap()
    }

    pub(crate) fn token(&self) -> Vec<&str> {
        self.token_args.iter().map(String::as_str).collect()
    }

    pub(crate) fn signing(&self) -> Signing<'_> {
        Signing {
            owner: self.owner(),
            carol: &self.carol,
            carol_pin: &self.carol_pin,
            pin: self.pin(),
            dir: self.dir.path(),
            root_file: &self.root_file,
            token_args: &self.token_args,
        }
    }
}
