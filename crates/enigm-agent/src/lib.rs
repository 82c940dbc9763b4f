//! The device side of Enigm, EnigmSecurityService: it collects and normalises the security
//! signals of the host it runs on (enigm-docs §6, "Security Signals → EnigmSecurityService"),
//! enrolls with Command, attests, checks in, obeys lifecycle commands and installs updates.
//!
//! The logic lives in [`core`], a sans-IO state machine in the manner of quinn-proto and
//! `enigm_ota::Refresh`: it is fed a time, randomness and Command's answers, and answers with
//! the next request to send or the next action for its driver. [`shell`] drives it for
//! `enigm agent` with tokio, reqwest and the filesystem; `enigm simulate` drives many cores in
//! one process; tests drive it with Command answering in-process.
//!
//! The rest is what only a shell may do:
//! - `collect`: real collectors for what a Linux host shows under `/sys`, `/proc` and `/etc`,
//!   read from a configurable root so that tests can point them at a fake tree.
//! - [`profile`]: `--profile FILE`, a TOML file declaring the signals of a simulated device. Its
//!   `[hardware]` identifiers are parsed into a type that cannot be serialised, so they never
//!   reach a report.
//! - [`state`]: the private state directory (device key, enrollment, last evaluation, setup).
//! - [`setup`]: the setup baseline's steps (strong PIN, terms, network readiness) and the
//!   weak-PIN rule.
//! - `ota`, `slots`, `bundles`: the OTA install sub-flow (A/B slots and bundles), built
//!   on the sans-IO `enigm_ota` machines; `policy_bundles`: the policy bundle Command
//!   publishes for the device's group, verified through its TUF delegation and applied.
//! - [`tsc`]: the local Trust Security Center's record of the last evaluation.
//! - [`http`]: the signed-request HTTP client of a device.

pub mod attestation;
pub(crate) mod bundles;
pub(crate) mod collect;
pub mod core;
pub mod dns;
pub mod firewall;
pub mod http;
pub mod network;
pub(crate) mod ota;
pub mod policy_bundles;
pub mod profile;
pub mod proxy_forward;
pub mod proxy_tunnel;
pub mod report;
pub mod setup;
pub mod shell;
pub(crate) mod slots;
pub mod state;
pub mod tsc;
pub mod tuf_fetch;
pub mod vpn;
