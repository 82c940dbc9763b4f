//! `enigm admin users`: list, show, create, disable, enable and PIN-unlock administrators, and
//! request the reset of one's TOTP.

use std::path::PathBuf;

use clap::Subcommand;
use enigm_api::{AccountView, ApprovalView, CreateUserRequest, TotpResetRequest, paths};
use enigm_types::{Justification, Username};
use secrecy::ExposeSecret as _;

use super::{Ctx, resolve};
use crate::output;
use crate::secrets;

#[derive(Debug, Subcommand)]
pub(crate) enum UsersCommand {
    /// List all administrators.
    List,
    /// Show one administrator.
    Show {
        /// Username or id (a unique prefix of the id is enough).
        user: String,
    },
    /// Create an administrator (critical: needs the PIN). The account starts without roles, and
    /// its owner must change the initial password at first login (`enigm admin password change`).
    Create {
        username: String,
        /// File whose content is the initial password; without it a strong password is
        /// generated and printed once.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Disable an administrator and end their sessions (critical).
    Disable {
        /// Username or id.
        user: String,
    },
    /// Enable a disabled administrator (critical).
    Enable {
        /// Username or id.
        user: String,
    },
    /// Unlock critical operations after too many wrong PINs (critical).
    UnlockPin {
        /// Username or id.
        user: String,
    },
    /// Request the removal of another administrator's TOTP, lost or seized (critical). It
    /// takes effect once approved by an administrator who is neither you nor them; their
    /// sessions are then closed and they log in with their password alone.
    ResetTotp {
        /// Username or id.
        user: String,
        /// Why, for the approvers (e.g. how the second factor was lost).
        #[arg(long)]
        justification: String,
    },
}

pub(crate) async fn run(ctx: &Ctx, command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::List => {
            let reply = ctx.client.get::<Vec<AccountView>>(paths::USERS).await?;
            if ctx.json() {
                return output::print_json_list(&reply.raw, None);
            }
            output::print_list(
                &output::account_table(&reply.value),
                reply.value.len(),
                "no administrators",
            );
            Ok(())
        }
        UsersCommand::Show { user } => {
            let id = resolve::user(&ctx.client, &user).await?;
            let reply = ctx
                .client
                .get::<AccountView>(&paths::fill(paths::USER, &[&id.to_string()]))
                .await?;
            if ctx.json() {
                return output::print_json(&reply.raw);
            }
            output::print_table(&output::account_detail(&reply.value));
            Ok(())
        }
        UsersCommand::Create {
            username,
            password_file,
        } => create(ctx, &username, password_file).await,
        UsersCommand::Disable { user } => change(ctx, &user, paths::USER_DISABLE, "disabled").await,
        UsersCommand::Enable { user } => change(ctx, &user, paths::USER_ENABLE, "enabled").await,
        UsersCommand::UnlockPin { user } => {
            change(ctx, &user, paths::USER_PIN_UNLOCK, "unlocked the pin of").await
        }
        UsersCommand::ResetTotp {
            user,
            justification,
        } => reset_totp(ctx, &user, &justification).await,
    }
}

async fn reset_totp(ctx: &Ctx, user: &str, justification: &str) -> anyhow::Result<()> {
    let justification = Justification::parse(justification)?;
    let id = resolve::user(&ctx.client, user).await?;
    let pin = ctx.pin()?;
    let request = TotpResetRequest {
        justification: justification.as_str().to_owned(),
    };
    let path = paths::fill(paths::USER_TOTP_RESET, &[&id.to_string()]);
    let reply = ctx
        .client
        .post::<_, ApprovalView>(&path, &request, Some(&pin))
        .await?;
    if ctx.json() {
        return output::print_json(&reply.raw);
    }
    println!(
        "requested a totp reset for {}: approval {}",
        output::clean(user),
        reply.value.id
    );
    super::approvals::print_waiting(&reply.value);
    Ok(())
}

async fn create(ctx: &Ctx, username: &str, password_file: Option<PathBuf>) -> anyhow::Result<()> {
    let username = Username::parse(username)?;
    let (password, generated) = match password_file {
        Some(file) => (secrets::read_secret_file(&file)?, false),
        None => (secrets::generate_password()?, true),
    };
    let pin = ctx.pin()?;
    let request = CreateUserRequest {
        username: username.as_str().to_owned(),
        password: password.expose_secret().to_owned(),
    };
    let reply = ctx
        .client
        .post::<_, AccountView>(paths::USERS, &request, Some(&pin))
        .await?;
    if ctx.json() {
        // A generated password exists nowhere else: a script asking for JSON gets it in the
        // same document, next to the account.
        if generated {
            let document = serde_json::json!({ "account": reply.raw, "initial_password": password.expose_secret() });
            return output::print_json(&document);
        }
        return output::print_json(&reply.raw);
    }
    let account = reply.value;
    println!(
        "created administrator {} ({})",
        output::clean(&account.username),
        account.id
    );
    if generated {
        println!(
            "initial password (shown once, hand it over securely): {}",
            password.expose_secret()
        );
    }
    println!(
        "{} must change this password at first login: `enigm admin password change`",
        output::clean(&account.username)
    );
    println!(
        "the account has no roles yet: request one with `enigm admin roles grant {} ROLE --justification TEXT`",
        output::clean(&account.username)
    );
    Ok(())
}

/// The critical account changes that answer with the changed account.
async fn change(ctx: &Ctx, user: &str, template: &str, done: &str) -> anyhow::Result<()> {
    let id = resolve::user(&ctx.client, user).await?;
    let pin = ctx.pin()?;
    let reply = ctx
        .client
        .post_empty::<AccountView>(&paths::fill(template, &[&id.to_string()]), Some(&pin))
        .await?;
    if ctx.json() {
        return output::print_json(&reply.raw);
    }
    println!(
        "{done} {} ({})",
        output::clean(&reply.value.username),
        reply.value.id
    );
    Ok(())
}
