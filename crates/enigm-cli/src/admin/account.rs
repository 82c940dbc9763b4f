//! Own account: `whoami`, `pin set`, `password change`, `totp enroll` and `totp confirm`.

use std::path::PathBuf;

use clap::Subcommand;
use enigm_api::{
    AccountView, ChangePasswordRequest, SetPinRequest, TotpConfirmRequest, TotpEnrollment, paths,
};
use secrecy::{ExposeSecret as _, SecretString};

use super::Ctx;
use crate::output;
use crate::secrets::{self, Pin};

/// The server's bounds for passwords, checked early for a clearer message.
const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 12..=256;

#[derive(Debug, Subcommand)]
pub(crate) enum PinCommand {
    /// Set or replace the critical-operation PIN: prompts for the current password and the
    /// new PIN twice, or reads them from --password-file and the admin --pin-file.
    Set {
        /// File whose content is the current password.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// File whose content is the PIN in force (needed to replace an existing PIN).
        #[arg(long, value_name = "FILE")]
        current_pin_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PasswordCommand {
    /// Change the own password (prompted, or read from files).
    Change {
        /// File whose content is the current password.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// File whose content is the new password.
        #[arg(long, value_name = "FILE")]
        new_password_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TotpCommand {
    /// Start TOTP enrolment: prints the secret and an otpauth:// URI for an authenticator app.
    Enroll,
    /// Finish enrolment with the current code from the authenticator app.
    Confirm {
        /// The 6-digit code shown by the authenticator app.
        code: String,
    },
}

pub(crate) async fn whoami(ctx: &Ctx) -> anyhow::Result<()> {
    let reply = ctx.client.get::<AccountView>(paths::WHOAMI).await?;
    if ctx.json() {
        return output::print_json(&reply.raw);
    }
    output::print_table(&output::account_detail(&reply.value));
    Ok(())
}

pub(crate) async fn pin(ctx: &Ctx, command: PinCommand) -> anyhow::Result<()> {
    let PinCommand::Set {
        password_file,
        current_pin_file,
    } = command;
    let current_password = current_password(password_file.as_ref())?;
    // Replacing a PIN needs the PIN in force, so that a session and a password are not enough.
    let account = ctx.client.get::<AccountView>(paths::WHOAMI).await?.value;
    let current_pin = match (account.pin_set, &current_pin_file) {
        (false, _) => None,
        (true, Some(file)) => Some(secrets::read_secret_file(file)?),
        (true, None) if secrets::is_interactive() => Some(secrets::prompt_secret("current pin: ")?),
        (true, None) => anyhow::bail!("a pin is set: pass --current-pin-file or run interactively"),
    };
    let new_pin = match ctx.pin.file() {
        Some(file) => secrets::read_secret_file(file)?,
        None if secrets::is_interactive() => {
            secrets::prompt_new_secret("new pin (6 digits): ", "new pin again: ")?
        }
        None => anyhow::bail!("no new pin: pass --pin-file or run interactively"),
    };
    let new_pin = Pin::parse(new_pin.expose_secret())?;
    let request = SetPinRequest {
        current_password: current_password.expose_secret().to_owned(),
        current_pin: current_pin.map(|pin| pin.expose_secret().to_owned()),
        pin: new_pin.expose().to_owned(),
    };
    ctx.client.put::<_, ()>(paths::PIN, &request, None).await?;
    if !ctx.json() {
        println!("critical-operation pin set");
    }
    Ok(())
}

pub(crate) async fn password(ctx: &Ctx, command: PasswordCommand) -> anyhow::Result<()> {
    let PasswordCommand::Change {
        password_file,
        new_password_file,
    } = command;
    let current_password = current_password(password_file.as_ref())?;
    let new_password = match &new_password_file {
        Some(file) => secrets::read_secret_file(file)?,
        None if secrets::is_interactive() => {
            secrets::prompt_new_secret("new password: ", "new password again: ")?
        }
        None => anyhow::bail!("no new password: pass --new-password-file or run interactively"),
    };
    if !PASSWORD_CHARS.contains(&new_password.expose_secret().chars().count()) {
        anyhow::bail!(
            "the new password must be {} to {} characters long",
            PASSWORD_CHARS.start(),
            PASSWORD_CHARS.end()
        );
    }
    let request = ChangePasswordRequest {
        current_password: current_password.expose_secret().to_owned(),
        new_password: new_password.expose_secret().to_owned(),
    };
    ctx.client
        .put::<_, ()>(paths::PASSWORD, &request, None)
        .await?;
    if !ctx.json() {
        println!("password changed");
    }
    Ok(())
}

pub(crate) async fn totp(ctx: &Ctx, command: TotpCommand) -> anyhow::Result<()> {
    match command {
        TotpCommand::Enroll => {
            let reply = ctx
                .client
                .post_empty::<TotpEnrollment>(paths::TOTP, None)
                .await?;
            if ctx.json() {
                return output::print_json(&reply.raw);
            }
            let enrollment = reply.value;
            println!("secret (shown once): {}", output::clean(&enrollment.secret));
            println!("uri: {}", output::clean(&enrollment.otpauth_uri));
            println!("add it to an authenticator app, then run `enigm admin totp confirm CODE`");
            Ok(())
        }
        TotpCommand::Confirm { code } => {
            let request = TotpConfirmRequest {
                code: code.trim().to_owned(),
            };
            ctx.client
                .post::<_, ()>(paths::TOTP_CONFIRM, &request, None)
                .await?;
            if !ctx.json() {
                println!("totp enabled: future logins need a code");
            }
            Ok(())
        }
    }
}

fn current_password(file: Option<&PathBuf>) -> anyhow::Result<SecretString> {
    match file {
        Some(file) => secrets::read_secret_file(file),
        None if secrets::is_interactive() => secrets::prompt_secret("current password: "),
        None => anyhow::bail!("no current password: pass --password-file or run interactively"),
    }
}
