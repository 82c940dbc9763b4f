//! `enigm audit legal-hold`: show the retention of audit event bodies, or put the log on legal
//! hold (no body is purged, whatever its age) and lift it. Changing it needs the owner's PIN.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use enigm_api::{AuditRetentionView, LegalHoldRequest, paths};

use crate::cli::GlobalArgs;
use crate::connect;
use crate::output;
use crate::secrets::PinSource;

#[derive(Debug, Args)]
pub(crate) struct LegalHoldArgs {
    /// `on` or `off`; without it, show the current state.
    #[arg(value_enum)]
    state: Option<HoldState>,
    /// File whose content is the 6-digit critical-operation PIN. Without it the PIN is
    /// prompted for on a terminal; it is never taken as an argument.
    #[arg(long, value_name = "FILE")]
    pin_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum HoldState {
    On,
    Off,
}

pub(crate) async fn run(global: &GlobalArgs, args: LegalHoldArgs) -> anyhow::Result<()> {
    let client = connect::connect(global)?;
    let reply = match args.state {
        None => {
            client
                .get::<AuditRetentionView>(paths::AUDIT_LEGAL_HOLD)
                .await?
        }
        Some(state) => {
            let pin = PinSource::new(args.pin_file).obtain()?;
            let request = LegalHoldRequest {
                legal_hold: state == HoldState::On,
            };
            client
                .put::<_, AuditRetentionView>(paths::AUDIT_LEGAL_HOLD, &request, Some(&pin))
                .await?
        }
    };
    if global.json {
        return output::print_json(&reply.raw);
    }
    let view = reply.value;
    let since = view
        .legal_hold_changed_at
        .as_deref()
        .map(|time| format!(" (since {})", output::clean(time)))
        .unwrap_or_default();
    println!(
        "legal hold: {}{since}",
        if view.legal_hold { "on" } else { "off" }
    );
    if view.legal_hold {
        println!(
            "retention: {} days, suspended: no event body is purged while the hold is on",
            view.retention_days
        );
    } else {
        println!(
            "retention: event bodies are purged after {} days (their leaf hashes stay in the log)",
            view.retention_days
        );
    }
    Ok(())
}
