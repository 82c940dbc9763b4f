//! `enigm audit`: read the audit log of Command, and check that it was not tampered with.
//!
//! - `events`: the events, newest first, page by page, or followed as they happen;
//! - `key`: the public key the log's checkpoints are signed with;
//! - `verify`: the whole log, offline from the database (`--data-dir`, `--database-url`) or
//!   online through the API against a pinned key (`--log-key`);
//! - `legal-hold`: show or change whether expired event bodies are kept.

use clap::{Args, Subcommand};
use enigm_api::{AuditListQuery, AuditPage, ListOrder, paths};
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
    /// List audit events, newest first (--oldest-first for log order), or watch them (--follow).
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
    /// Only events after this sequence number (with --oldest-first, for paging: the number
    /// printed at the end).
    #[arg(long, value_name = "SEQ")]
    after: Option<i64>,
    /// Only events before this sequence number (newest first, for paging: the number printed
    /// at the end).
    #[arg(long, value_name = "SEQ", conflicts_with = "follow")]
    before: Option<i64>,
    /// Log order (oldest first) instead of newest first.
    #[arg(long, conflicts_with = "follow")]
    oldest_first: bool,
    /// Only events since this time: RFC 3339 (2026-11-22T04:25:00Z) or a duration back from
    /// now (90s, 10m, 2h, 7d).
    #[arg(long, value_parser = parse::since, value_name = "TIME|DURATION")]
    since: Option<String>,
    /// Print the latest events (--limit, default 10) in log order, then every new event as it
    /// is recorded, until interrupted (Ctrl-C). With --json, one JSON object per line. Each
    /// poll is itself an audited read; your own `audit.read` events are not printed.
    #[arg(long)]
    follow: bool,
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
    let newest_first = !events.oldest_first;
    let query = AuditListQuery {
        after: events.after,
        before: events.before,
        limit: if events.follow {
            Some(events.limit.unwrap_or(FOLLOW_BACKLOG))
        } else {
            events.limit
        },
        order: Some(if newest_first {
            ListOrder::Newest
        } else {
            ListOrder::Oldest
        }),
        since: events.since,
        actor: events.actor,
        action: events.action,
        outcome: events.outcome,
    };
    let reply = client
        .get_query::<_, AuditPage>(paths::AUDIT_EVENTS, &query)
        .await?;
    if events.follow {
        return follow_events(&client, global.json, query, reply.value).await;
    }
    let page = reply.value;
    let next = if newest_first {
        page.next_before
    } else {
        page.next_after
    };
    if global.json {
        let items = reply
            .raw
            .get("events")
            .cloned()
            .unwrap_or_else(|| serde_json::Value::Array(Vec::new()));
        return output::print_json_list(&items, next.map(|seq| seq.to_string()));
    }
    output::print_list(
        &output::audit_table(&page.events),
        page.events.len(),
        "no audit events",
    );
    if let Some(next) = next {
        let flag = if newest_first { "--before" } else { "--after" };
        println!("more events: pass {flag} {next}");
    }
    Ok(())
}

/// How many recent events `--follow` shows before it starts waiting (like `tail -f`).
const FOLLOW_BACKLOG: u32 = 10;

/// `events --follow`: the latest events in log order, then each new one as it is recorded,
/// polling with the sequence number of the last one printed until interrupted.
async fn follow_events(
    client: &crate::client::CommandClient,
    json: bool,
    mut query: AuditListQuery,
    first: AuditPage,
) -> anyhow::Result<()> {
    // Every poll records an `audit.read` of ours; printing those would echo the follow itself.
    let me = client
        .get::<enigm_api::AccountView>(paths::WHOAMI)
        .await?
        .value;
    let own_read = enigm_types::Actor::Admin(me.id).to_string();
    let mut events = first.events;
    // The first page came newest first; print it the way the log grew.
    events.reverse();
    query.order = Some(ListOrder::Oldest);
    query.limit = Some(enigm_api::MAX_PAGE);
    loop {
        for event in &events {
            query.after = Some(query.after.map_or(event.seq, |after| after.max(event.seq)));
            if event.action == AuditAction::AuditRead && event.actor == own_read {
                continue;
            }
            if json {
                output::print_json_line(&serde_json::to_value(event)?)?;
            } else {
                println!("{}", output::audit_line(event));
            }
        }
        if query.after.is_none() {
            // Nothing matched yet: start from the end of the log as it is now, so that only
            // what is recorded from here on is printed.
            query.after = Some(0);
        }
        let page = client
            .get_query::<_, AuditPage>(paths::AUDIT_EVENTS, &query)
            .await?
            .value;
        // A full page means more are waiting: fetch it at once instead of sleeping.
        if page.next_after.is_none() {
            tokio::time::sleep(output::FOLLOW_INTERVAL).await;
        }
        events = page.events;
    }
}
