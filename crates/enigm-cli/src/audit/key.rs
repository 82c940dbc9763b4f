//! `enigm audit key`: the public key the audit log's checkpoints are signed with, to hand to
//! auditors, who pin it with `enigm audit verify --log-key`.
//!
//! By default it asks the server the CLI is logged in to (or `--server`), wherever it is run
//! from; `--data-dir` reads the key file of `enigm up` on the server's own host instead, which
//! is how to check the server's answer out of band.

use std::path::PathBuf;

use clap::Args;
use enigm_api::{AuditLogKeyView, paths};

use super::checkpoints;
use crate::cli::GlobalArgs;
use crate::connect;
use crate::output;

#[derive(Debug, Args)]
pub(crate) struct KeyArgs {
    /// Read the key offline from this data directory of `enigm up` (its
    /// `keys/audit-log.pub`) instead of asking the server.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Ask the server (the default; kept so that older scripts keep working).
    #[arg(long, hide = true, conflicts_with = "data_dir")]
    remote: bool,
}

pub(crate) async fn run(global: &GlobalArgs, args: KeyArgs) -> anyhow::Result<()> {
    let verifier = match &args.data_dir {
        Some(data_dir) => checkpoints::read_verifier_file(data_dir)?,
        None => {
            let client = connect::connect(global)?;
            let view = client
                .get::<AuditLogKeyView>(paths::AUDIT_LOG_KEY)
                .await?
                .value;
            let verifier = checkpoints::parse_verifier(&view.verifier_key)?;
            eprintln!(
                "note: this key was fetched from {}, the server whose log it verifies; before \
                 pinning it with --log-key, compare it out of band (`enigm audit key --data-dir \
                 DIR` on the server's host)",
                client.server()
            );
            verifier
        }
    };
    let key = verifier.to_key_string();
    if global.json {
        output::print_json(&serde_json::json!({ "verifier_key": key }))
    } else {
        println!("{key}");
        Ok(())
    }
}
