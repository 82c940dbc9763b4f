//! `enigm admin`: the administrator client of Command. One module per command group; they
//! share a [`Ctx`] with the HTTP client, the output format and the source of the PIN.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::cli::GlobalArgs;
use crate::client::CommandClient;
use crate::connect;
use crate::output::Format;
use crate::secrets::{Pin, PinSource};

mod account;
mod approval_rules;
pub(crate) mod approvals;
mod devices;
mod enrollment_tokens;
pub(crate) mod resolve;
mod roles;
mod routes;
mod sessions;
mod users;

#[derive(Debug, Args)]
pub(crate) struct AdminArgs {
    /// File whose content is your 6-digit critical-operation PIN (the one in force), for the
    /// operations that need it. Without it the PIN is prompted for on a terminal; it is never
    /// taken as an argument. The file must not be readable by others (`chmod 600 FILE`).
    #[arg(long, global = true, value_name = "FILE")]
    pin_file: Option<PathBuf>,
    #[command(subcommand)]
    command: AdminCommand,
}

impl AdminArgs {
    #[cfg(test)]
    pub(crate) fn pin_file(&self) -> Option<&std::path::Path> {
        self.pin_file.as_deref()
    }
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Show the account of the current session.
    Whoami,
    /// Administrator accounts.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Grant (through approval) and revoke roles.
    #[command(subcommand)]
    Roles(roles::RolesCommand),
    /// Multi-admin approval requests.
    #[command(subcommand)]
    Approvals(approvals::ApprovalsCommand),
    /// How many approvers each kind of request needs, and from which roles.
    #[command(subcommand)]
    ApprovalRules(approval_rules::ApprovalRulesCommand),
    /// Administrator sessions.
    #[command(subcommand)]
    Sessions(sessions::SessionsCommand),
    /// Own critical-operation PIN.
    #[command(subcommand)]
    Pin(account::PinCommand),
    /// Own password.
    #[command(subcommand)]
    Password(account::PasswordCommand),
    /// Own second factor (TOTP).
    #[command(subcommand)]
    Totp(account::TotpCommand),
    /// Enrollment tokens for devices.
    #[command(subcommand)]
    EnrollmentToken(enrollment_tokens::EnrollmentTokenCommand),
    /// The device inventory and device detail.
    #[command(subcommand)]
    Devices(devices::DevicesCommand),
    /// The API routes and the permission each needs.
    Routes,
}

/// What every admin command needs.
pub(crate) struct Ctx {
    client: CommandClient,
    format: Format,
    pin: PinSource,
}

impl Ctx {
    /// The critical-operation PIN, read only when an operation needs it.
    fn pin(&self) -> anyhow::Result<Pin> {
        self.pin.obtain()
    }

    fn json(&self) -> bool {
        self.format.is_json()
    }
}

pub(crate) async fn run(global: &GlobalArgs, args: AdminArgs) -> anyhow::Result<()> {
    let ctx = Ctx {
        client: connect::connect(global)?,
        format: Format::from_flag(global.json),
        pin: PinSource::new(args.pin_file),
    };
    match args.command {
        AdminCommand::Whoami => account::whoami(&ctx).await,
        AdminCommand::Users(command) => users::run(&ctx, command).await,
        AdminCommand::Roles(command) => roles::run(&ctx, command).await,
        AdminCommand::Approvals(command) => approvals::run(&ctx, command).await,
        AdminCommand::ApprovalRules(command) => approval_rules::run(&ctx, command).await,
        AdminCommand::Sessions(command) => sessions::run(&ctx, command).await,
        AdminCommand::Pin(command) => account::pin(&ctx, command).await,
        AdminCommand::Password(command) => account::password(&ctx, command).await,
        AdminCommand::Totp(command) => account::totp(&ctx, command).await,
        AdminCommand::EnrollmentToken(command) => enrollment_tokens::run(&ctx, command).await,
        AdminCommand::Devices(command) => devices::run(&ctx, command).await,
        AdminCommand::Routes => routes::run(&ctx).await,
    }
}
