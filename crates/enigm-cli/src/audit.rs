//! `enigm audit`: read the audit log of Command page by page.

use clap::{Args, Subcommand};
use enigm_api::{AuditListQuery, AuditPage, paths};
use enigm_types::{AdminId, AuditAction, Outcome};

use crate::cli::GlobalArgs;
use crate::connect;
use crate::output;
use crate::parse;

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// List audit events, oldest first.
    Events(EventsArgs),
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
    let client = connect::connect(global)?;
    match args.command {
        AuditCommand::Events(events) => {
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
    }
}
