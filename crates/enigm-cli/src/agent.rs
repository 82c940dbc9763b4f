//! The device side of Enigm, EnigmSecurityService: it collects and normalises the security
//! signals of the host it runs on (enigm-docs §6, "Security Signals → EnigmSecurityService").
//!
//! - [`collect`]: real collectors for what a Linux host shows under `/sys`, `/proc` and `/etc`,
//!   read from a configurable root so that tests can point them at a fake tree.
//! - [`profile`]: `--profile FILE`, a TOML file declaring the signals of a simulated device. Its
//!   `[hardware]` identifiers are parsed into a type that cannot be serialised, so they never
//!   reach a report.
//!
//! - [`daemon`]: `enigm agent`, which enrolls with an enrollment token and checks in, every
//!   request signed with the device key kept in [`state`].
//! - [`tsc`]: `enigm tsc`, the local Trust Security Center over the last evaluation.

pub(crate) mod attestation;
pub(crate) mod bundles;
pub(crate) mod collect;
pub(crate) mod daemon;
pub(crate) mod ota;
pub(crate) mod profile;
pub(crate) mod report;
pub(crate) mod slots;
pub(crate) mod state;
pub(crate) mod tsc;

pub(crate) use daemon::AgentArgs;
pub(crate) use report::{AgentReportArgs, run_report};
pub(crate) use tsc::TscArgs;
