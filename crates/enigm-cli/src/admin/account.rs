//! Own account: `whoami`, `pin set`, `password change`, `totp enroll`, `totp confirm` and
//! `totp remove`. Every credential change sends the current password, and the PIN where the
//! server asks for it (see docs/security.md, "Re-authentication").

use std::path::PathBuf;

use clap::Subcommand;
use enigm_api::{
    AccountView, ChangePasswordRequest, SetDuressPinRequest, SetPinRequest, TotpConfirmRequest,
    TotpEnrollRequest, TotpEnrollment, TotpRemoveRequest, paths,
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
    /// new PIN twice, or reads them from --password-file and --pin-file.
    Set {
        /// File whose content is the current password.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// File whose content is the NEW 6-digit PIN (not the one in force: that is
        /// --current-pin-file). Six digits without a pattern (no runs like 123456 or 975319,
        /// no repeated or mirrored groups like 121212, 123123 or 123321, no keypad lines).
        /// Without it the new PIN is prompted for twice on a terminal.
        // Same id as `enigm admin`'s global --pin-file, so that this help replaces the global
        // one here (clap does not propagate a global argument a subcommand defines itself) and
        // the value reaches `Ctx::pin` as before.
        #[arg(long = "pin-file", id = "pin_file", value_name = "FILE")]
        new_pin_file: Option<PathBuf>,
        /// File whose content is the PIN in force (needed to replace an existing PIN).
        #[arg(long, value_name = "FILE")]
        current_pin_file: Option<PathBuf>,
    },
    /// Set the optional duress PIN: entered instead of the PIN on a critical operation, it
    /// appears to succeed, does nothing, and raises the account's risk state and a Critical
    /// security event for the other administrators. Needs the current password and PIN (the
    /// admin --pin-file, or prompted); the duress PIN follows the PIN's rules and differs from it.
    SetDuress {
        /// File whose content is the current password.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// File whose content is the duress PIN. Without it, it is prompted for twice.
        #[arg(long, value_name = "FILE")]
        duress_pin_file: Option<PathBuf>,
    },
    /// Remove the duress PIN (needs the current password and PIN).
    RemoveDuress {
        /// File whose content is the current password.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PasswordCommand {
    /// Change the own password (prompted, or read from files); needs the PIN when one is set
    /// (prompted, or the admin --pin-file).
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
    /// Needs the current password and, when one is set, the PIN (admin --pin-file or prompt).
    Enroll {
        /// File whose content is the current password.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Finish enrolment with the current password and the code from the authenticator app.
    Confirm {
        /// The 6-digit code shown by the authenticator app.
        code: String,
        /// File whose content is the current password.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Remove the own TOTP (to replace it, then enroll again): needs the current password, the
    /// PIN (admin --pin-file or prompt) and a current code. A lost authenticator is reset by
    /// another owner instead: `enigm admin users reset-totp`.
    Remove {
        /// A current 6-digit code of the TOTP being removed.
        code: String,
        /// File whose content is the current password.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
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
    let (password_file, current_pin_file, new_pin_file) = match command {
        PinCommand::Set {
            password_file,
            current_pin_file,
            new_pin_file,
        } => (password_file, current_pin_file, new_pin_file),
        PinCommand::SetDuress {
            password_file,
            duress_pin_file,
        } => return duress_pin(ctx, password_file.as_ref(), Some(duress_pin_file)).await,
        PinCommand::RemoveDuress { password_file } => {
            return duress_pin(ctx, password_file.as_ref(), None).await;
        }
    };
    let current_password = current_password(password_file.as_ref())?;
    // Replacing a PIN needs the PIN in force, so that a session and a password are not enough.
    let account = ctx.client.get::<AccountView>(paths::WHOAMI).await?.value;
    let current_pin = match (account.pin_set, &current_pin_file) {
        (false, _) => None,
        (true, Some(file)) => Some(secrets::read_secret_file(file)?),
        (true, None) if secrets::is_interactive() => Some(secrets::prompt_secret("current pin: ")?),
        (true, None) => anyhow::bail!("a pin is set: pass --current-pin-file or run interactively"),
    };
    let new_pin = match new_pin_file.as_deref().or(ctx.pin.file()) {
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

/// Sets (`Some(file or prompt)`) or removes (`None`) the duress PIN.
async fn duress_pin(
    ctx: &Ctx,
    password_file: Option<&PathBuf>,
    duress_pin_file: Option<Option<PathBuf>>,
) -> anyhow::Result<()> {
    let current_password = current_password(password_file)?;
    let Some(current_pin) = pin_if_set(ctx).await? else {
        anyhow::bail!("a duress PIN needs a PIN: set one first with `enigm admin pin set`");
    };
    let duress_pin = match duress_pin_file {
        None => None,
        Some(Some(file)) => Some(secrets::read_secret_file(&file)?),
        Some(None) if secrets::is_interactive() => Some(secrets::prompt_new_secret(
            "duress pin (6 digits, not your pin): ",
            "duress pin again: ",
        )?),
        Some(None) => anyhow::bail!("no duress pin: pass --duress-pin-file or run interactively"),
    };
    let duress_pin = duress_pin
        .map(|pin| Pin::parse(pin.expose_secret()).map(|pin| pin.expose().to_owned()))
        .transpose()?;
    let removed = duress_pin.is_none();
    let request = SetDuressPinRequest {
        current_password: current_password.expose_secret().to_owned(),
        current_pin,
        duress_pin,
    };
    ctx.client
        .put::<_, ()>(paths::DURESS_PIN, &request, None)
        .await?;
    if !ctx.json() {
        println!("duress pin {}", if removed { "removed" } else { "set" });
    }
    Ok(())
}

pub(crate) async fn password(ctx: &Ctx, command: PasswordCommand) -> anyhow::Result<()> {
    let PasswordCommand::Change {
        password_file,
        new_password_file,
    } = command;
    let current_password = current_password(password_file.as_ref())?;
    let current_pin = pin_if_set(ctx).await?;
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
        current_pin,
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
        TotpCommand::Enroll { password_file } => {
            let current_password = current_password(password_file.as_ref())?;
            let request = TotpEnrollRequest {
                current_password: current_password.expose_secret().to_owned(),
                current_pin: pin_if_set(ctx).await?,
            };
            let reply = ctx
                .client
                .post::<_, TotpEnrollment>(paths::TOTP, &request, None)
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
        TotpCommand::Confirm {
            code,
            password_file,
        } => {
            let current_password = current_password(password_file.as_ref())?;
            let request = TotpConfirmRequest {
                current_password: current_password.expose_secret().to_owned(),
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
        TotpCommand::Remove {
            code,
            password_file,
        } => totp_remove(ctx, &code, password_file.as_ref()).await,
    }
}

async fn totp_remove(ctx: &Ctx, code: &str, password_file: Option<&PathBuf>) -> anyhow::Result<()> {
    let current_password = current_password(password_file)?;
    let pin = ctx.pin()?;
    let request = TotpRemoveRequest {
        current_password: current_password.expose_secret().to_owned(),
        current_pin: pin.expose().to_owned(),
        code: code.trim().to_owned(),
    };
    ctx.client
        .post::<_, ()>(paths::TOTP_REMOVE, &request, None)
        .await?;
    if !ctx.json() {
        println!("totp removed: logins need the password alone until a new one is confirmed");
    }
    Ok(())
}

/// The PIN in force, when the account has one (the admin --pin-file, else a prompt): credential
/// changes need it beside the password.
async fn pin_if_set(ctx: &Ctx) -> anyhow::Result<Option<String>> {
    let account = ctx.client.get::<AccountView>(paths::WHOAMI).await?.value;
    if !account.pin_set {
        return Ok(None);
    }
    Ok(Some(ctx.pin()?.expose().to_owned()))
}

fn current_password(file: Option<&PathBuf>) -> anyhow::Result<SecretString> {
    match file {
        Some(file) => secrets::read_secret_file(file),
        None if secrets::is_interactive() => secrets::prompt_secret("current password: "),
        None => anyhow::bail!("no current password: pass --password-file or run interactively"),
    }
}
