//! Architecture rules of the workspace, checked on every test run so that a layering mistake
//! fails CI instead of waiting for a reviewer to notice it.
//!
//! Dependency direction: `enigm-types` at the bottom; `enigm-crypto`, `enigm-identity`,
//! `enigm-api` and `enigm-store` on top of it alone; `enigm-auditlog` on `enigm-types` and
//! `enigm-crypto`; `enigm-server`, `enigm-agent` and `enigm-cli` above them, with nothing
//! depending on the CLI and the agent depending on neither Command nor the CLI; the agent's
//! core names no I/O. Only `enigm-store` names the database driver, only
//! `enigm-crypto` names crypto implementations, and the library crates name no async runtime or
//! I/O crate.
//!
//! The dependency rules read `cargo metadata --no-deps`, i.e. what each workspace crate declares
//! in its `Cargo.toml`. They apply to normal and build dependencies, which go into building the
//! crate itself; dev-dependencies only build its tests and are not restricted. Dependencies are
//! compared by package name, so renaming one in `Cargo.toml` does not hide it.
//!
//! Command's floors are read from its source: no handler imports another, services never import
//! handlers, and only the device guard verifies signed device requests.
//!
//! When a rule fails, fix the dependency rather than the rule: the rules are the architecture.

// The helpers below are test code too, though clippy only sees that inside `#[test]` functions.
#![expect(
    clippy::panic,
    clippy::expect_used,
    reason = "a test: failing with a message is how broken rules and unreadable metadata are reported"
)]

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

const TYPES: &str = "enigm-types";
const CRYPTO: &str = "enigm-crypto";
const IDENTITY: &str = "enigm-identity";
const AUDITLOG: &str = "enigm-auditlog";
const TRUST: &str = "enigm-trust";
const NETPOLICY: &str = "enigm-netpolicy";
const PROXYAUTH: &str = "enigm-proxyauth";
const PROXY: &str = "enigm-proxy";
const DEVICE: &str = "enigm-device";
const ATTEST: &str = "enigm-attest";
const OTA: &str = "enigm-ota";
const API: &str = "enigm-api";
const STORE: &str = "enigm-store";
const SERVER: &str = "enigm-server";
const CLI: &str = "enigm-cli";
const AGENT: &str = "enigm-agent";
const TEST_SUPPORT: &str = "enigm-test-support";

/// Every workspace crate starts with this, and only workspace crates do.
const PREFIX: &str = "enigm-";

/// The sans-IO library crates: pure functions and types over values, no runtime, no I/O.
const LIBRARIES: [&str; 11] = [
    TYPES, CRYPTO, IDENTITY, AUDITLOG, TRUST, NETPOLICY, PROXYAUTH, DEVICE, ATTEST, OTA, API,
];

/// Async runtimes, database drivers and HTTP stacks: what only the shells (server, store, CLI)
/// may name.
const IO_CRATES: [&str; 5] = ["tokio", "sqlx", "axum", "reqwest", "hyper"];

/// The database driver.
const DATABASE_DRIVER: &str = "sqlx";

/// Crates that may name the database driver: the store, and the test-only support crate that
/// creates a database per test.
const DATABASE_CRATES: [&str; 2] = [STORE, TEST_SUPPORT];

/// Crates that implement cryptographic primitives.
const CRYPTO_IMPLEMENTATIONS: [&str; 8] = [
    "argon2",
    "aes-gcm",
    "sha2",
    "sha1",
    "hmac",
    "ring",
    "ed25519-dalek",
    "p256",
];

/// Transport crates that bring a TLS stack, and with it a crypto implementation (ring). Naming
/// one names crypto, so each use outside `enigm-crypto` must be listed in [`CRYPTO_EXCEPTIONS`].
const TLS_CARRIERS: [&str; 2] = ["rustls", "reqwest"];

/// Crates other than `enigm-crypto` allowed to name a crypto-carrying crate: (crate, dependency,
/// reason).
const CRYPTO_EXCEPTIONS: [(&str, &str, &str); 5] = [
    (
        SERVER,
        "rustls",
        "transport: Command terminates TLS itself; its code configures rustls and calls no \
         primitive through it",
    ),
    (
        CLI,
        "reqwest",
        "transport: the CLI talks HTTPS to Command, through reqwest's rustls-tls feature",
    ),
    (
        AGENT,
        "reqwest",
        "transport: the agent's shell talks HTTPS to Command, through reqwest's rustls-tls \
         feature; its core signs through enigm-crypto",
    ),
    (
        AGENT,
        "rustls",
        "transport: the device's DNS stub speaks DNS over TLS to its upstream (tokio-rustls); \
         its code configures rustls and calls no primitive through it",
    ),
    (
        PROXY,
        "reqwest",
        "transport: the reference proxy polls Command's revocation list over HTTPS, through \
         reqwest's rustls-tls feature; enigm-proxyauth verifies through enigm-crypto",
    ),
];

/// The agent's sans-IO core: the folder under `crates/enigm-agent/src` whose source names no
/// I/O, and the names that would mean it does (a runtime, an HTTP client, the filesystem, the
/// network, threads, the OS clock or the OS random number generator).
const AGENT_CORE: &str = "crates/enigm-agent/src/core";
const AGENT_CORE_FORBIDDEN: [&str; 10] = [
    "tokio",
    "reqwest",
    "std::fs",
    "std::net",
    "std::thread",
    "std::process",
    "SystemTime",
    "Instant",
    "OsRng",
    "thread_rng",
];

#[test]
fn enigm_types_depends_on_no_other_enigm_crate() {
    enigm_dependencies_within(
        TYPES,
        &[],
        "enigm-types is the bottom layer: it depends on no other enigm crate",
    );
}

#[test]
fn crypto_and_identity_depend_only_on_types() {
    for krate in [CRYPTO, IDENTITY] {
        enigm_dependencies_within(
            krate,
            &[TYPES],
            "enigm-crypto and enigm-identity depend on no enigm crate but enigm-types",
        );
    }
}

#[test]
fn auditlog_depends_only_on_types_and_crypto() {
    enigm_dependencies_within(
        AUDITLOG,
        &[TYPES, CRYPTO],
        "enigm-auditlog (the Merkle log) depends on no enigm crate but enigm-types and \
         enigm-crypto, which does its hashing and signing",
    );
}

#[test]
fn device_depends_only_on_types_and_crypto() {
    enigm_dependencies_within(
        DEVICE,
        &[TYPES, CRYPTO],
        "enigm-device (signed device requests) depends on no enigm crate but enigm-types and \
         enigm-crypto, which does its hashing and signing",
    );
}

#[test]
fn trust_depends_only_on_types() {
    enigm_dependencies_within(
        TRUST,
        &[TYPES],
        "enigm-trust (the Trust State Engine) depends on no enigm crate but enigm-types",
    );
}

#[test]
fn netpolicy_depends_only_on_types() {
    enigm_dependencies_within(
        NETPOLICY,
        &[TYPES],
        "enigm-netpolicy (the network routing decision engine) depends on no enigm crate but \
         enigm-types, for the trust states and lifecycle states it decides on",
    );
}

#[test]
fn proxyauth_depends_only_on_types_and_crypto() {
    enigm_dependencies_within(
        PROXYAUTH,
        &[TYPES, CRYPTO],
        "enigm-proxyauth (proxy credentials, proofs and their verification) depends on no enigm \
         crate but enigm-types and enigm-crypto, which signs and verifies",
    );
}

#[test]
fn the_proxy_depends_on_its_verifier_and_the_wire_types_only() {
    enigm_dependencies_within(
        PROXY,
        &[TYPES, CRYPTO, PROXYAUTH, API],
        "enigm-proxy, the reference Enigm Proxy, depends on enigm-proxyauth (every check), \
         enigm-api (Command's answers) and the vocabulary only: never on Command, its store or \
         the agent",
    );
}

#[test]
fn attest_depends_only_on_types_and_crypto() {
    enigm_dependencies_within(
        ATTEST,
        &[TYPES, CRYPTO],
        "enigm-attest (attestation verification) depends on no enigm crate but enigm-types and \
         enigm-crypto, which verifies its signatures",
    );
}

#[test]
fn ota_depends_only_on_types_and_crypto() {
    enigm_dependencies_within(
        OTA,
        &[TYPES, CRYPTO],
        "enigm-ota (release metadata and the update client's verification) depends on no enigm \
         crate but enigm-types and enigm-crypto, which verifies its signatures and digests",
    );
}

#[test]
fn api_depends_only_on_types_auditlog_trust_and_attest() {
    enigm_dependencies_within(
        API,
        &[TYPES, AUDITLOG, TRUST, ATTEST],
        "enigm-api (wire types) depends on no enigm crate but enigm-types, enigm-auditlog to \
         decode the proofs it carries, enigm-trust for the signal reports, policies and \
         findings it carries, and enigm-attest for the attestation policies and claims",
    );
}

#[test]
fn store_depends_only_on_types_and_auditlog() {
    enigm_dependencies_within(
        STORE,
        &[TYPES, AUDITLOG],
        "enigm-store knows SQL, the domain types and the Merkle log's layout, nothing of HTTP or \
         policy: it depends on no enigm crate but enigm-types and enigm-auditlog",
    );
}

#[test]
fn only_the_store_names_the_database_driver() {
    let workspace = workspace();
    for krate in DATABASE_CRATES {
        workspace.package(krate);
    }
    let violations = workspace
        .packages
        .iter()
        .filter(|package| !DATABASE_CRATES.contains(&package.name.as_str()))
        .filter_map(|package| {
            package
                .dependency(DATABASE_DRIVER)
                .map(|dependency| format!("`{}` depends on {dependency}", package.name))
        })
        .collect();
    check(
        "only enigm-store (and the test-only enigm-test-support) names the database driver `sqlx`",
        violations,
    );
}

#[test]
fn nothing_depends_on_the_cli() {
    let workspace = workspace();
    workspace.package(CLI);
    workspace.package(SERVER);
    let violations = workspace
        .packages
        .iter()
        .filter_map(|package| {
            package
                .dependency(CLI)
                .map(|dependency| format!("`{}` depends on {dependency}", package.name))
        })
        .collect();
    check(
        "enigm-cli is the top of the graph: nothing, enigm-server included, depends on it",
        violations,
    );
}

#[test]
fn only_crypto_names_crypto_implementations() {
    let workspace = workspace();
    workspace.package(CRYPTO);
    let mut violations = Vec::new();
    for package in workspace
        .packages
        .iter()
        .filter(|package| package.name != CRYPTO)
    {
        for name in CRYPTO_IMPLEMENTATIONS.iter().chain(&TLS_CARRIERS) {
            let Some(dependency) = package.dependency(name) else {
                continue;
            };
            let excepted = CRYPTO_EXCEPTIONS
                .iter()
                .any(|&(krate, allowed, _reason)| krate == package.name && allowed == *name);
            if !excepted {
                violations.push(format!("`{}` depends on {dependency}", package.name));
            }
        }
    }
    for (krate, dependency, reason) in CRYPTO_EXCEPTIONS {
        // An exception naming a crate that no longer exists would silently stop meaning anything.
        workspace.package(krate);
        assert!(
            TLS_CARRIERS.contains(&dependency) && !reason.is_empty(),
            "exception for `{krate}` on `{dependency}` must name a TLS carrier and give a reason"
        );
    }
    check(
        "only enigm-crypto names crypto implementations (TLS transport exceptions are listed in \
         CRYPTO_EXCEPTIONS with their reasons)",
        violations,
    );
}

#[test]
fn libraries_do_no_io() {
    let workspace = workspace();
    let mut violations = Vec::new();
    for krate in LIBRARIES {
        let package = workspace.package(krate);
        for name in IO_CRATES {
            if let Some(dependency) = package.dependency(name) {
                violations.push(format!("`{krate}` depends on {dependency}"));
            }
        }
    }
    check(
        "the library crates (types, crypto, identity, auditlog, trust, device, attest, api) are sans-IO: no async runtime, \
         database or HTTP crate",
        violations,
    );
}

#[test]
fn the_agent_depends_on_neither_command_nor_the_cli() {
    enigm_dependencies_within(
        AGENT,
        &[
            TYPES, CRYPTO, IDENTITY, DEVICE, TRUST, NETPOLICY, PROXYAUTH, ATTEST, OTA, API,
        ],
        "enigm-agent, the device service, depends on the libraries and enigm-api only: never on \
         enigm-server, enigm-store or enigm-cli (its tests may, as dev-dependencies)",
    );
}

#[test]
fn the_agent_core_names_no_io() {
    let workspace = workspace();
    workspace.package(AGENT);
    let core = workspace.root.join(AGENT_CORE);
    let files = rust_files(&core);
    assert!(!files.is_empty(), "no source under {}", core.display());
    let mut violations = Vec::new();
    for file in files {
        let source = std::fs::read_to_string(&file)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", file.display()));
        for (number, line) in source.lines().enumerate() {
            for name in AGENT_CORE_FORBIDDEN {
                if line.contains(name) {
                    violations.push(format!("{}:{}: names `{name}`", file.display(), number + 1));
                }
            }
        }
    }
    check(
        "enigm_agent::core is sans-IO: it is fed time, randomness and answers, and names no \
         runtime, HTTP client, filesystem, network, thread, OS clock or OS randomness",
        violations,
    );
}

#[test]
fn every_crate_inherits_the_workspace_lints() {
    let crates = workspace().crate_folders();
    assert!(!crates.is_empty(), "no crates found under crates/");
    let violations = crates
        .iter()
        .filter_map(|folder| {
            let manifest_path = folder.join("Cargo.toml");
            let manifest = std::fs::read_to_string(&manifest_path)
                .unwrap_or_else(|error| panic!("cannot read {}: {error}", manifest_path.display()));
            (!inherits_workspace_lints(&manifest)).then(|| {
                format!(
                    "{} has no `[lints]` table with `workspace = true`",
                    manifest_path.display()
                )
            })
        })
        .collect();
    check(
        "every crate has `[lints] workspace = true`, so the workspace lints apply everywhere",
        violations,
    );
}

#[test]
fn crate_folders_are_named_after_their_packages() {
    let workspace = workspace();
    let crates_dir = workspace.root.join("crates");
    let mut violations = Vec::new();
    for package in &workspace.packages {
        let folder = package.dir.file_name().and_then(|name| name.to_str());
        if folder != Some(package.name.as_str()) {
            violations.push(format!(
                "package `{}` lives in folder `{}`",
                package.name,
                package.dir.display()
            ));
        }
        if package.dir.parent() != Some(crates_dir.as_path()) {
            violations.push(format!(
                "package `{}` is not directly under {}",
                package.name,
                crates_dir.display()
            ));
        }
        if !package.name.starts_with(PREFIX) {
            violations.push(format!(
                "package `{}` does not start with `{PREFIX}`",
                package.name
            ));
        }
    }
    check(
        "every crate lives in crates/<name>, where <name> is its package name and starts with \
         `enigm-`",
        violations,
    );
}

#[test]
fn lints_table_detection() {
    let check = |manifest: &str, expected: bool| {
        assert_eq!(
            inherits_workspace_lints(manifest),
            expected,
            "manifest:\n{manifest}"
        );
    };
    check(
        "[package]\nname = \"x\"\n\n[lints]\nworkspace = true\n",
        true,
    );
    check(
        "[lints]\nworkspace=true # inherited\n[dependencies]\n",
        true,
    );
    check("[lints]\n# workspace = true\n", false);
    check("[package]\nworkspace = true\n[lints]\n", false);
    check("[lints]\nworkspace = false\n", false);
    check("[lints.rust]\nworkspace = true\n", false);
    check("[package]\nname = \"x\"\n", false);
}

/// Fails with every violation of `rule` listed, one per line.
fn check(rule: &str, violations: Vec<String>) {
    assert!(
        violations.is_empty(),
        "architecture rule broken: {rule}\n  {}",
        violations.join("\n  ")
    );
}

/// `krate` depends on no enigm crate outside `allowed`.
fn enigm_dependencies_within(krate: &str, allowed: &[&str], rule: &str) {
    let violations = workspace()
        .package(krate)
        .dependencies
        .iter()
        .filter(|dependency| {
            dependency.name.starts_with(PREFIX) && !allowed.contains(&dependency.name.as_str())
        })
        .map(|dependency| format!("`{krate}` depends on {dependency}"))
        .collect();
    check(rule, violations);
}

/// Every `.rs` file under `dir`, recursively, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()));
    for entry in entries {
        let path = entry.expect("a readable directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Whether a `Cargo.toml` has a `[lints]` table containing `workspace = true`.
fn inherits_workspace_lints(manifest: &str) -> bool {
    let mut in_lints = false;
    for line in manifest.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.starts_with('[') {
            in_lints = line == "[lints]";
        } else if in_lints && line.split_whitespace().collect::<String>() == "workspace=true" {
            return true;
        }
    }
    false
}

/// The workspace as `cargo metadata` describes it: its root and its member crates.
struct Workspace {
    root: PathBuf,
    packages: Vec<Package>,
}

struct Package {
    name: String,
    /// The folder holding the package's `Cargo.toml`.
    dir: PathBuf,
    /// Normal and build dependencies; dev-dependencies are left out.
    dependencies: Vec<Dependency>,
}

struct Dependency {
    /// The package name, whatever the dependency is renamed to.
    name: String,
    kind: DependencyKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum DependencyKind {
    Normal,
    Build,
}

impl Workspace {
    /// The named member crate. A rule that names a crate the workspace no longer has would pass
    /// without checking anything, so that fails instead.
    fn package(&self, name: &str) -> &Package {
        self.packages
            .iter()
            .find(|package| package.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "an architecture rule names `{name}`, which is not a workspace crate: update \
                     crates/enigm-test-support/tests/architecture.rs"
                )
            })
    }

    /// Every folder under `crates/` that holds a `Cargo.toml`, sorted.
    fn crate_folders(&self) -> Vec<PathBuf> {
        let crates_dir = self.root.join("crates");
        let entries = std::fs::read_dir(&crates_dir)
            .unwrap_or_else(|error| panic!("cannot list {}: {error}", crates_dir.display()));
        let folders: BTreeSet<PathBuf> = entries
            .map(|entry| entry.expect("a readable entry of crates/").path())
            .filter(|path| path.join("Cargo.toml").is_file())
            .collect();
        folders.into_iter().collect()
    }
}

impl Package {
    /// The normal or build dependency on the package called `name`, if any.
    fn dependency(&self, name: &str) -> Option<&Dependency> {
        self.dependencies
            .iter()
            .find(|dependency| dependency.name == name)
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            DependencyKind::Normal => write!(f, "`{}`", self.name),
            DependencyKind::Build => write!(f, "`{}` (build-dependency)", self.name),
        }
    }
}

/// Runs `cargo metadata` once per test binary and keeps the result for every rule.
fn workspace() -> &'static Workspace {
    static WORKSPACE: OnceLock<Workspace> = OnceLock::new();
    WORKSPACE.get_or_init(load_workspace)
}

fn load_workspace() -> Workspace {
    let root = enigm_test_support::workspace_root();
    let cargo = cargo_binary();
    let output = Command::new(&cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(root.join("Cargo.toml"))
        .current_dir(&root)
        .output()
        .unwrap_or_else(|error| panic!("cannot run `{}`: {error}", Path::new(&cargo).display()));
    assert!(
        output.status.success(),
        "`cargo metadata` failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value =
        serde_json::from_slice(&output.stdout).expect("`cargo metadata` prints JSON");

    let root = PathBuf::from(string(&metadata, "workspace_root"));
    let members: BTreeSet<&str> = array(&metadata, "workspace_members")
        .iter()
        .map(|id| id.as_str().expect("workspace member ids are strings"))
        .collect();
    let packages: Vec<Package> = array(&metadata, "packages")
        .iter()
        .filter(|package| members.contains(string(package, "id")))
        .map(package_from_metadata)
        .collect();
    assert!(
        !packages.is_empty(),
        "`cargo metadata` lists no workspace crates"
    );
    Workspace { root, packages }
}

/// The cargo that runs the tests, as cargo tells its children, else the one that built them,
/// else whatever `cargo` is on the PATH.
fn cargo_binary() -> OsString {
    std::env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(OsString::from))
        .unwrap_or_else(|| OsString::from("cargo"))
}

fn package_from_metadata(package: &Value) -> Package {
    let name = string(package, "name").to_owned();
    let manifest_path = Path::new(string(package, "manifest_path"));
    let dir = manifest_path
        .parent()
        .unwrap_or_else(|| panic!("manifest path of `{name}` has no parent"))
        .to_path_buf();
    let dependencies = array(package, "dependencies")
        .iter()
        .filter_map(|dependency| {
            let kind = match dependency.get("kind").and_then(Value::as_str) {
                None => DependencyKind::Normal,
                Some("build") => DependencyKind::Build,
                Some(_) => return None,
            };
            Some(Dependency {
                name: string(dependency, "name").to_owned(),
                kind,
            })
        })
        .collect();
    Package {
        name,
        dir,
        dependencies,
    }
}

fn string<'a>(value: &'a Value, key: &str) -> &'a str {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("`cargo metadata` output lacks string field `{key}`"))
}

fn array<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("`cargo metadata` output lacks array field `{key}`"))
}

// Command's floors: handlers on services, read from the source of `enigm-server`.

/// Command's request handlers: decode, call one service, encode.
const SERVER_HANDLERS: &str = "crates/enigm-server/src/handlers";

/// Command's services: one module per workflow, under the handlers.
const SERVER_SERVICES: &str = "crates/enigm-server/src/services";

/// The one module that verifies signed device requests (the `SignedDevice` extractor).
const DEVICE_GUARD: &str = "crates/enigm-server/src/device_guard.rs";

#[test]
fn no_handler_imports_another() {
    let violations = source_lines(SERVER_HANDLERS)
        .into_iter()
        .filter(|line| {
            line.code.contains("handlers::")
                || line.code.contains("super::super")
                || (!line.in_test_module && line.code.contains("super::"))
        })
        .map(|line| line.to_string())
        .collect();
    check(
        "a handler calls services, never another handler: nothing in \
         enigm-server/src/handlers names `crate::handlers::` or a sibling through `super::`; \
         move what two handlers share into a service or an extractor",
        violations,
    );
}

#[test]
fn services_never_import_handlers() {
    let violations = source_lines(SERVER_SERVICES)
        .into_iter()
        .filter(|line| line.code.contains("handlers::"))
        .map(|line| line.to_string())
        .collect();
    check(
        "services sit under the handlers: nothing in enigm-server/src/services names \
         `crate::handlers::`",
        violations,
    );
}

#[test]
fn only_the_device_guard_verifies_device_requests() {
    let guard = enigm_test_support::workspace_root().join(DEVICE_GUARD);
    assert!(
        std::fs::read_to_string(&guard)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", guard.display()))
            .contains("enigm_device::verify_request"),
        "{DEVICE_GUARD} no longer verifies device requests: update this rule"
    );
    let violations = [SERVER_HANDLERS, SERVER_SERVICES]
        .into_iter()
        .flat_map(source_lines)
        .filter(|line| line.code.contains("enigm_device::"))
        .map(|line| line.to_string())
        .collect();
    check(
        "signed device requests are verified once, by the `SignedDevice` extractor in \
         enigm-server/src/device_guard.rs: handlers and services take its output and never \
         name `enigm_device::`",
        violations,
    );
}

#[test]
fn source_scan_ignores_comments_and_knows_test_modules() {
    let lines = code_lines(
        Path::new("x.rs"),
        "use crate::x; // handlers::y\n//! handlers::z\nmod tests {\n    use super::*;\n}\n",
    );
    let code: Vec<(&str, bool)> = lines
        .iter()
        .map(|line| (line.code.as_str(), line.in_test_module))
        .collect();
    assert_eq!(
        code,
        [
            ("use crate::x; ", false),
            ("", false),
            ("mod tests {", true),
            ("    use super::*;", true),
            ("}", true),
        ]
    );
}

/// One line of Rust source with its comment cut off.
struct SourceLine {
    path: PathBuf,
    number: usize,
    code: String,
    /// Whether the line is at or after a `mod tests`, where `super::` is the file's own module.
    in_test_module: bool,
}

impl fmt::Display for SourceLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}",
            self.path.display(),
            self.number,
            self.code.trim()
        )
    }
}

/// Every line of every `.rs` file under `folder` (relative to the workspace root).
fn source_lines(folder: &str) -> Vec<SourceLine> {
    let root = enigm_test_support::workspace_root();
    let files = rust_files(&root.join(folder));
    assert!(!files.is_empty(), "no Rust source under {folder}");
    files
        .iter()
        .flat_map(|file| {
            let text = std::fs::read_to_string(file)
                .unwrap_or_else(|error| panic!("cannot read {}: {error}", file.display()));
            code_lines(file.strip_prefix(&root).unwrap_or(file), &text)
        })
        .collect()
}

fn code_lines(path: &Path, text: &str) -> Vec<SourceLine> {
    let mut in_test_module = false;
    text.lines()
        .enumerate()
        .map(|(index, line)| {
            let code = line.split("//").next().unwrap_or_default();
            in_test_module |= code.trim_start().starts_with("mod tests");
            SourceLine {
                path: path.to_owned(),
                number: index + 1,
                code: code.to_owned(),
                in_test_module,
            }
        })
        .collect()
}
