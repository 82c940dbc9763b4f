//! `enigm audit key`: the public key the audit log's checkpoints are signed with, to hand to
//! auditors, who pin it with `enigm audit verify --log-key`.

use std::path::PathBuf;

use clap::Args;
use enigm_api::{AuditLogKeyView, paths};

use super::checkpoints;
use crate::cli::GlobalArgs;
use crate::connect;
use crate::output;
use crate::up::DEFAULT_DATA_DIR;

#[derive(Debug, Args)]
pub(crate) struct KeyArgs {
    /// The data directory of `enigm up`, whose `keys/audit-log.pub` holds the key.
    #[arg(long, env = "ENIGM_DATA_DIR", default_value = DEFAULT_DATA_DIR, value_name = "DIR")]
    data_dir: PathBuf,
    /// Ask the server (--server, or the stored login) instead. Compare such a key out of band:
    /// a key fetched from the server it verifies proves nothing on its own.
    #[arg(long)]
    remote: bool,
}

pub(crate) async fn run(global: &GlobalArgs, args: KeyArgs) -> anyhow::Result<()> {
    let verifier = if args.remote {
        let client = connect::connect(global)?;
        let view = client
            .get::<AuditLogKeyView>(paths::AUDIT_LOG_KEY)
            .await?
            .value;
        let verifier = checkpoints::parse_verifier(&view.verifier_key)?;
        eprintln!(
            "warning: this key was fetched from {}, the server whose log it verifies; compare it \
             out of band (e.g. with `enigm audit key --data-dir DIR` on the server's host) \
             before pinning it with --log-key",
            client.server()
        );
        verifier
    } else {
        checkpoints::read_verifier_file(&args.data_dir)?
    };
    let key = verifier.to_key_string();
    if global.json {
        output::print_json(&serde_json::json!({ "verifier_key": key }))
    } else {
        println!("{key}");
        Ok(())
    }
}
