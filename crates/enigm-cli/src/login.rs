//! `enigm login` and `enigm logout`: open a session on Command and keep its token in the
//! credentials file, or end it and forget the token.

use std::path::PathBuf;

use anyhow::Context as _;
use enigm_api::{LoginRequest, LoginResponse, paths};
use secrecy::{ExposeSecret as _, SecretString};

use crate::cli::GlobalArgs;
use crate::client::{ClientError, CommandClient, RequestError};
use crate::connect::{self, CaCert};
use crate::credentials::{self, Credentials};
use crate::output::{self, Format};
use crate::secrets;

#[derive(Debug, clap::Args)]
pub(crate) struct LoginArgs {
    /// Account to log in as (prompted when missing and interactive).
    #[arg(long)]
    username: Option<String>,
    /// File whose content is the password (one trailing newline is ignored); without it the
    /// password is prompted for.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Current TOTP code, for accounts with a second factor (prompted when needed and
    /// interactive).
    #[arg(long, value_name = "CODE")]
    totp: Option<String>,
}

pub(crate) async fn login(global: &GlobalArgs, args: LoginArgs) -> anyhow::Result<()> {
    let path = credentials::default_path()?;
    let stored = credentials::load(&path)?;
    // The login itself sends no token: it must work whatever is stored or in ENIGM_TOKEN.
    let target = connect::resolve(
        global.server(),
        global.ca_cert.as_ref(),
        stored.as_ref(),
        None,
    )?;
    let ca_cert = target.ca_cert.as_ref().map(CaCert::pem).transpose()?;
    let client = connect::client_for(&target, None)?;

    let interactive = secrets::is_interactive();
    let username = match args.username {
        Some(username) => username,
        None if interactive => secrets::prompt_line("username: ")?,
        None => anyhow::bail!("no username: pass --username (or run interactively)"),
    };
    let password = match &args.password_file {
        Some(file) => secrets::read_secret_file(file)?,
        None if interactive => secrets::prompt_secret(&format!("password for `{username}`: "))?,
        None => anyhow::bail!("no password: pass --password-file (or run interactively)"),
    };

    let reply = match attempt(&client, &username, &password, args.totp.clone()).await {
        Err(RequestError::Api(ClientError { code, .. }))
            if code == "totp_required" && args.totp.is_none() && interactive =>
        {
            let totp = secrets::prompt_line("totp code: ")?;
            attempt(&client, &username, &password, Some(totp)).await?
        }
        other => other?,
    };
    let response = reply.value;

    let ca_cert = ca_cert
        .map(String::from_utf8)
        .transpose()
        .context("the ca certificate is not utf-8 pem text")?;
    let credentials = Credentials {
        server: client.server().to_string(),
        token: Some(response.token.clone()),
        username: response.account.username.clone(),
        ca_cert,
    };
    credentials::save(&path, &credentials)?;

    if Format::from_flag(global.json).is_json() {
        // The token is the one secret of the answer; it went to the credentials file only.
        let mut raw = reply.raw;
        if let Some(object) = raw.as_object_mut() {
            object.remove("token");
        }
        output::print_json(&raw)?;
    } else {
        println!(
            "logged in to {} as {} (session expires at {})",
            client.server(),
            output::clean(&response.account.username),
            output::clean(&response.session.expires_at)
        );
    }
    if response.account.password_change_required {
        // On stderr, so that `--json` output stays the answer alone.
        eprintln!(
            "your password was set by someone else and must be changed before anything else: \
             run `enigm admin password change`"
        );
    }
    Ok(())
}

async fn attempt(
    client: &CommandClient,
    username: &str,
    password: &SecretString,
    totp: Option<String>,
) -> Result<crate::client::Reply<LoginResponse>, RequestError> {
    let request = LoginRequest {
        username: username.to_owned(),
        password: password.expose_secret().to_owned(),
        totp,
    };
    client.post(paths::LOGIN, &request, None).await
}

pub(crate) async fn logout(global: &GlobalArgs) -> anyhow::Result<()> {
    let client = connect::connect(global)?;
    let result = client.post_empty::<()>(paths::LOGOUT, None).await;

    // With ENIGM_TOKEN set, the session that ended is that token's; a different stored token
    // for the same server stays.
    let env_token = std::env::var(connect::TOKEN_ENV)
        .ok()
        .filter(|token| !token.is_empty());
    // Otherwise the token is forgotten whatever the server said: a token that may no longer
    // work, or whose server is gone, has no business staying on disk.
    let path = credentials::default_path()?;
    if let Some(mut stored) = credentials::load(&path)?
        && stored.token.is_some()
        && stored.server == client.server().as_str()
        && (env_token.is_none() || env_token == stored.token)
    {
        stored.token = None;
        credentials::save(&path, &stored)?;
    }

    match result {
        Ok(_) => {
            if !global.json {
                println!("logged out of {}", client.server());
            }
            Ok(())
        }
        Err(RequestError::Api(error))
            if matches!(error.code.as_str(), "unauthenticated" | "session_expired") =>
        {
            if !global.json {
                println!(
                    "the session on {} had already ended; token forgotten",
                    client.server()
                );
            }
            Ok(())
        }
        Err(error) => {
            eprintln!(
                "warning: the token was forgotten here, but the session may stay valid on the server until it expires"
            );
            Err(error.into())
        }
    }
}
