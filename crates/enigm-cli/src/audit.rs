//! `enigm audit`: read the audit log of Command, and check that it was not tampered with.
//!
//! - `events`: the events, page by page;
//! - `key`: the public key the log's checkpoints are signed with;
//! - `verify`: the whole log, offline from the database (`--data-dir`, `--database-url`) or
//!   online through the API against a pinned key (`--log-key`);
//! - `legal-hold`: show or change whether expired event bodies are kept.

use clap::{Args, Subcommand};
use enigm_api::{AuditListQuery, AuditPage, paths};
use enigm_types::{AdminId, AuditAction, Outcome};

use crate::cli::GlobalArgs;
use crate::connect;
use crate::output;
use crate::parse;

mod checkpoints;
mod key;
mod legal_hold;
mod online;
mod progress;
mod report;
mod verify;

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// List audit events, oldest first.
    Events(EventsArgs),
    /// Print the public key the audit log's checkpoints are signed with.
    Key(key::KeyArgs),
    /// Verify the tamper-evident audit log: offline from the database, or online against a
    /// pinned log key.
    Verify(verify::VerifyArgs),
    /// Show the retention of audit event bodies, or put the log on legal hold (`on`) or lift
    /// the hold (`off`).
    LegalHold(legal_hold::LegalHoldArgs),
}

#[derive(Debug, Args)]
struct EventsArgs {
    /// Only events after this sequence number (for paging: the number printed at the end).
    #[arg(long, value_name = "SEQ")]
    after: Option<i64>,
    /// At most this many events (1 to 1000; the server's default is 100).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    limit: Option<u32>,
    /// Only this action, e.g. auth.login.
    #[arg(long, value_parser = parse::audit_action())]
    action: Option<AuditAction>,
    /// Only this outcome.
    #[arg(long, value_parser = parse::outcome())]
    outcome: Option<Outcome>,
    /// Only events of this administrator (full id).
    #[arg(long, value_name = "ID")]
    actor: Option<AdminId>,
}

pub(crate) async fn run(global: &GlobalArgs, args: AuditArgs) -> anyhow::Result<()> {
    match args.command {
        AuditCommand::Events(events) => list_events(global, events).await,
        AuditCommand::Key(args) => key::run(global, args).await,
        AuditCommand::Verify(args) => verify::run(global, args).await,
        AuditCommand::LegalHold(args) => legal_hold::run(global, args).await,
    }
}

async fn list_events(global: &GlobalArgs, events: EventsArgs) -> anyhow::Result<()> {
    let client = connect::connect(global)?;
    let query = AuditListQuery {
        after: events.after,
        limit: events.limit,
        actor: events.actor,
        action: events.action,
        outcome: events.outcome,
    };
    let reply = client
        .get_query::<_, AuditPage>(paths::AUDIT_EVENTS, &query)
        .await?;
    if global.json {
        return output::print_json(&reply.raw);
    }
    let page = reply.value;
    output::print_list(
        &output::audit_table(&page.events),
        page.events.len(),
        "no audit events",
    );
    if let Some(next) = page.next_after {
        println!("more events: pass --after {next}");
    }
    Ok(())
}
