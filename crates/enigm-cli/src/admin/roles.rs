//! `enigm admin roles`: request a role grant (always through a multi-admin approval) and revoke
//! a role.

use clap::Subcommand;
use enigm_api::{AccountView, ApprovalView, RoleGrantRequest, paths};
use enigm_types::{Justification, Role};

use super::{Ctx, resolve};
use crate::output;
use crate::parse;

#[derive(Debug, Subcommand)]
pub(crate) enum RolesCommand {
    /// Request a role for an administrator; it takes effect once approved.
    Grant {
        /// Username or id.
        user: String,
        #[arg(value_parser = parse::role())]
        role: Role,
        /// Why the role is needed, for the approvers.
        #[arg(long)]
        justification: String,
    },
    /// Revoke a role (critical: needs the PIN).
    Revoke {
        /// Username or id.
        user: String,
        #[arg(value_parser = parse::role())]
        role: Role,
    },
}

pub(crate) async fn run(ctx: &Ctx, command: RolesCommand) -> anyhow::Result<()> {
    match command {
        RolesCommand::Grant {
            user,
            role,
            justification,
        } => {
            let justification = Justification::parse(&justification)?;
            let id = resolve::user(&ctx.client, &user).await?;
            let request = RoleGrantRequest {
                role,
                justification: justification.as_str().to_owned(),
            };
            let path = paths::fill(paths::USER_ROLES, &[&id.to_string()]);
            let reply = ctx
                .client
                .post::<_, ApprovalView>(&path, &request, None)
                .await?;
            if ctx.json() {
                return output::print_json(&reply.raw);
            }
            println!(
                "requested role {role} for {user}: approval {}",
                reply.value.id
            );
            super::approvals::print_waiting(&reply.value);
            Ok(())
        }
        RolesCommand::Revoke { user, role } => {
            let id = resolve::user(&ctx.client, &user).await?;
            let pin = ctx.pin()?;
            let path = paths::fill(paths::USER_ROLE, &[&id.to_string(), role.as_str()]);
            let reply = ctx.client.delete::<AccountView>(&path, Some(&pin)).await?;
            if ctx.json() {
                return output::print_json(&reply.raw);
            }
            let account = reply.value;
            let roles: Vec<&str> = account.roles.iter().map(|role| role.as_str()).collect();
            let roles = if roles.is_empty() {
                "none".to_owned()
            } else {
                roles.join(", ")
            };
            println!(
                "revoked {role} from {} (roles now: {roles})",
                output::clean(&account.username)
            );
            Ok(())
        }
    }
}
