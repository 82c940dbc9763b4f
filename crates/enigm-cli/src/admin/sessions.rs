//! `enigm admin sessions`: own sessions, or with `--all` every administrator's.

use clap::Subcommand;
use enigm_api::{SessionView, paths};

use super::{Ctx, resolve};
use crate::output;

#[derive(Debug, Subcommand)]
pub(crate) enum SessionsCommand {
    /// List own sessions (with --all: every administrator's).
    List {
        /// All administrators' sessions.
        #[arg(long)]
        all: bool,
    },
    /// Close a session. Own sessions need nothing more; with --all any session can be closed
    /// (critical: needs the PIN).
    Close {
        /// Session id (a unique prefix is enough).
        id: String,
        /// Close any administrator's session.
        #[arg(long)]
        all: bool,
    },
}

pub(crate) async fn run(ctx: &Ctx, command: SessionsCommand) -> anyhow::Result<()> {
    match command {
        SessionsCommand::List { all } => {
            let path = if all {
                paths::SESSIONS
            } else {
                paths::OWN_SESSIONS
            };
            let reply = ctx.client.get::<Vec<SessionView>>(path).await?;
            if ctx.json() {
                return output::print_json_list(&reply.raw, None);
            }
            output::print_list(
                &output::session_table(&reply.value),
                reply.value.len(),
                "no sessions",
            );
            Ok(())
        }
        SessionsCommand::Close { id, all } => {
            let id = resolve::session(&ctx.client, &id, all).await?;
            let id_text = id.to_string();
            if all {
                let pin = ctx.pin()?;
                ctx.client
                    .delete::<()>(&paths::fill(paths::SESSION, &[&id_text]), Some(&pin))
                    .await?;
            } else {
                ctx.client
                    .delete::<()>(&paths::fill(paths::OWN_SESSION, &[&id_text]), None)
                    .await?;
            }
            if !ctx.json() {
                println!("closed session {id}");
            }
            Ok(())
        }
    }
}
