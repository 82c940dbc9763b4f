//! `enigm`: runs Enigm Command (`enigm up`), is its administrator client (`login`, `admin`,
//! `audit`) and the device agent (`agent`, `tsc`).

// `println!` and `print!` for the whole crate (declared before the modules, so they shadow
// std's): a closed stdout (`enigm audit verify | head`) ends the output quietly instead of
// panicking. See `output::write_stdout`.
macro_rules! println {
    () => {
        $crate::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

macro_rules! print {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))
    };
}

mod admin;
mod agent;
mod attest;
mod audit;
mod cli;
mod client;
mod connect;
mod credentials;
mod login;
mod net;
mod ota;
mod output;
mod parse;
mod policy;
mod proxy;
mod release;
mod secrets;
mod simulate;
mod up;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, LogFormat};
use crate::client::{ClientError, RequestError};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = init_tracing(&cli) {
        eprintln!("error: {error:#}");
        return ExitCode::FAILURE;
    }
    let json = cli.global.json;
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if is_bare_acceptance(&error) => {
            if json {
                println!("{}", serde_json::json!({"status": "accepted"}));
            } else {
                println!("accepted");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            report(&error);
            ExitCode::FAILURE
        }
    }
}

/// The server accepted the request and said nothing more (see `RequestError::Accepted`).
fn is_bare_acceptance(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<RequestError>(),
            Some(RequestError::Accepted)
        )
    })
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let global = cli.global;
    if global.servers.len() > 1 && !matches!(cli.command, Command::Simulate(_)) {
        anyhow::bail!("--server is given more than once, which only `enigm simulate` accepts");
    }
    match cli.command {
        Command::Up(args) => up::run(*args).await,
        Command::Login(args) => login::login(&global, args).await,
        Command::Logout => login::logout(&global).await,
        Command::Admin(args) => admin::run(&global, args).await,
        Command::Audit(args) => audit::run(&global, args).await,
        Command::Agent(args) => agent::run(&global, args).await,
        Command::AgentSetup(args) => agent::run_setup(&global, args, global.json).await,
        Command::AgentVpn(args) => agent::run_vpn(&global, args).await,
        Command::AgentFirewall(args) => agent::run_firewall(&global, args),
        Command::AgentDns(args) => agent::run_dns(args).await,
        Command::Tsc(args) => agent::run_tsc(args, global.json),
        Command::AgentReport(args) => agent::run_report(args),
        Command::Simulate(args) => simulate::run(&global, args).await,
        Command::Attest(args) => attest::run(args, global.json),
        Command::Release(args) => release::run(&global, args).await,
        Command::Policy(args) => policy::run(&global, args).await,
        Command::Net(args) => net::run(&global, args).await,
        Command::Proxy(args) => proxy::run(&global, args).await,
        Command::Ota(args) => ota::run(&global, args).await,
        Command::Completions(args) => {
            print_completions(args.shell);
            Ok(())
        }
    }
}

/// Generated into memory first, then printed like every other output, so that a closed stdout
/// ends it quietly.
fn print_completions(shell: clap_complete::Shell) {
    let mut command = <Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "enigm", &mut script);
    print!("{}", String::from_utf8_lossy(&script));
}

/// Colour (ANSI escapes) in the log only when stderr is a terminal and `NO_COLOR`
/// (<https://no-color.org>) is not set to something: a log redirected to a file or collected
/// by a supervisor stays plain text.
fn log_in_colour() -> bool {
    use std::io::IsTerminal as _;
    std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

/// Logs go to stderr so that stdout stays clean for tables and `--json`. The server logs at
/// info by default; client commands only warn, since their output is the result itself.
fn init_tracing(cli: &Cli) -> anyhow::Result<()> {
    let default_level = match cli.command {
        Command::Up(_) | Command::Proxy(_) => "info",
        _ => "warn",
    };
    let filter = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(directives) if !directives.is_empty() => {
            EnvFilter::try_new(directives).context("invalid RUST_LOG")?
        }
        _ => EnvFilter::new(default_level),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(log_in_colour())
        .with_writer(std::io::stderr);
    let installed = match cli.global.log_format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed
        .map_err(|error| anyhow::anyhow!(error))
        .context("could not set up logging")
}

/// Prints an error as `error: MESSAGE (CODE)`, with a `hint:` line for the errors an operator
/// can fix.
fn report(error: &anyhow::Error) {
    eprintln!("error: {error:#}");
    let Some(api) = api_error(error) else {
        return;
    };
    if let Some(seconds) = api.retry_after {
        let unit = if seconds == 1 { "second" } else { "seconds" };
        eprintln!("hint: try again in {seconds} {unit}");
    }
    if let Some(hint) = hint(&api.code) {
        eprintln!("hint: {hint}");
    }
}

/// What to do about an API error code, where the server's message may not say it to a CLI user.
fn hint(code: &str) -> Option<&'static str> {
    Some(match code {
        "unauthenticated" => "log in with `enigm login --server URL`",
        "session_expired" => "log in again with `enigm login --server URL`",
        "pin_required" => "pass --pin-file FILE (a file only you can read) or run on a terminal",
        "pin_not_set" => "set a pin with `enigm admin pin set`",
        "pin_invalid" => "check the PIN file; after 5 wrong PINs in a row an owner must unlock it",
        "pin_locked" => "an owner can unlock it with `enigm admin users unlock-pin USER`",
        "password_change_required" => "run `enigm admin password change`",
        "totp_required" => "pass --totp CODE",
        "forbidden" => "`enigm admin whoami` shows your roles; an owner grants roles",
        "self_approval" | "not_an_approver" => {
            "`enigm admin approvals show ID` shows who may decide it"
        }
        "weak_password" => "passwords are 12 to 256 characters, not only spaces",
        "soak_not_elapsed" => {
            "`enigm release rollout status ID` shows when the current wave's soak ends"
        }
        "rollout_paused" => "resume it with `enigm release rollout resume ID`",
        "rollout_draft_plan" => "set a plan with `enigm release rollout plan ID --model MODEL`",
        _ => return None,
    })
}

fn api_error(error: &anyhow::Error) -> Option<&ClientError> {
    error.chain().find_map(|cause| {
        cause
            .downcast_ref::<RequestError>()
            .and_then(RequestError::api)
            .or_else(|| cause.downcast_ref::<ClientError>())
    })
}

#[cfg(test)]
mod tests {
    use super::hint;

    #[test]
    fn fixable_api_errors_get_a_hint_naming_the_fix() {
        let cases = [
            ("unauthenticated", "enigm login --server URL"),
            ("session_expired", "enigm login --server URL"),
            ("pin_required", "--pin-file FILE"),
            ("pin_not_set", "enigm admin pin set"),
            ("pin_locked", "enigm admin users unlock-pin USER"),
            ("password_change_required", "enigm admin password change"),
            ("totp_required", "--totp CODE"),
            ("forbidden", "enigm admin whoami"),
            ("self_approval", "enigm admin approvals show ID"),
            ("soak_not_elapsed", "enigm release rollout status ID"),
            ("rollout_paused", "enigm release rollout resume ID"),
            ("rollout_draft_plan", "enigm release rollout plan ID"),
        ];
        for (code, fix) in cases {
            let hint = hint(code).unwrap_or_else(|| panic!("no hint for {code}"));
            assert!(hint.contains(fix), "{code}: {hint}");
        }
        assert_eq!(hint("internal"), None);
    }
}
