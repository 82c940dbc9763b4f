//! `enigm tsc`: the local Trust Security Center. It shows the last evaluation the agent
//! received (`<state-dir>/tsc.json`): the trust state, the launcher summary, the findings with
//! their recommendations, and when and as which handle the device last checked in.

use std::path::PathBuf;

use clap::Args;
use enigm_api::{FindingView, TrustView};
use enigm_trust::{LauncherSummary, TrustState};
use enigm_types::{DeviceHandle, Timestamp};
use serde::{Deserialize, Serialize};

use super::state::{self, TSC_FILE};
use crate::output;

#[derive(Debug, Args)]
pub(crate) struct TscArgs {
    /// The state directory of `enigm agent`.
    #[arg(long, value_name = "DIR")]
    state_dir: PathBuf,
}

/// The last evaluation, as the agent records it after each check-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TscRecord {
    pub(crate) handle: DeviceHandle,
    pub(crate) server: String,
    pub(crate) state: TrustState,
    /// What the user reads: Protected, Review Required or Inactive.
    pub(crate) state_label: String,
    pub(crate) launcher_summary: LauncherSummary,
    /// Device Protected, Device At Risk or Protection Inactive.
    pub(crate) launcher_label: String,
    pub(crate) findings: Vec<FindingView>,
    /// RFC 3339, the server's time of the evaluation.
    pub(crate) evaluated_at: String,
    /// RFC 3339, the device's time of the check-in.
    pub(crate) checked_in_at: String,
}

impl TscRecord {
    pub(crate) fn new(
        handle: DeviceHandle,
        server: &str,
        trust: &TrustView,
        checked_in_at: Timestamp,
    ) -> Self {
        TscRecord {
            handle,
            server: server.to_owned(),
            state: trust.state,
            state_label: trust.state.label().to_owned(),
            launcher_summary: trust.launcher_summary,
            launcher_label: trust.launcher_summary.label().to_owned(),
            findings: trust.findings.clone(),
            evaluated_at: trust.evaluated_at.clone(),
            checked_in_at: checked_in_at.to_rfc3339(),
        }
    }
}

/// Prints the Trust Security Center; fails when the agent has not checked in yet.
pub(crate) fn run(args: TscArgs, json: bool) -> anyhow::Result<()> {
    let path = args.state_dir.join(TSC_FILE);
    let Some(record) = state::read_record::<TscRecord>(&path)? else {
        anyhow::bail!(
            "no evaluation in `{}` yet: run `enigm agent --state-dir {} --once` first",
            args.state_dir.display(),
            args.state_dir.display()
        );
    };
    if json {
        return output::print_json(&serde_json::to_value(&record)?);
    }
    println!("Trust Security Center");
    println!("  state:          {}", record.state.label());
    println!("  summary:        {}", record.launcher_summary.label());
    println!("  last check-in:  {}", output::clean(&record.checked_in_at));
    println!("  handle:         {}", record.handle);
    println!("  server:         {}", output::clean(&record.server));
    println!();
    output::print_list(
        &output::finding_table(&record.findings),
        record.findings.len(),
        "no findings",
    );
    Ok(())
}
