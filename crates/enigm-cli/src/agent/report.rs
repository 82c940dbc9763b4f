//! `enigm agent-report`: a hidden debugging command that prints the signal report the agent
//! would send, as JSON, without talking to any server.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::Args;
use enigm_types::Timestamp;

use super::collect;
use super::profile::Profile;

#[derive(Debug, Args)]
pub(crate) struct AgentReportArgs {
    /// Device profile (TOML) declaring the signals of a simulated device; without it, the real
    /// collectors measure this host.
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
    /// Directory the collectors read `/sys`, `/proc` and `/etc` under.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
}

/// Prints the report as JSON on stdout. The output is always JSON; `--json` is accepted.
pub(crate) fn run_report(args: AgentReportArgs) -> anyhow::Result<()> {
    let now = system_now();
    let report = match &args.profile {
        None => collect::collect_report(&args.root, now),
        Some(path) => {
            let profile = Profile::load(path)
                .with_context(|| format!("could not load profile `{}`", path.display()))?;
            let hardware = profile.hardware().declared();
            if !hardware.is_empty() {
                eprintln!(
                    "note: profile `{}` declares {}, which the agent never transmits",
                    profile.name().unwrap_or("unnamed"),
                    profile.hardware()
                );
            }
            if profile.collects() {
                profile.report_with_collectors(&args.root, now)
            } else {
                profile.report(now)
            }
        }
    };
    let json = serde_json::to_string_pretty(&report).context("could not encode the report")?;
    println!("{json}");
    Ok(())
}

/// The operating system's clock; a clock before 1970 reads as the epoch, which makes every
/// signal stale rather than fresh.
pub(crate) fn system_now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp::from_unix_millis(millis)
}
