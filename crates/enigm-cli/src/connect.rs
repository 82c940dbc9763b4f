//! Which server, token and CA a client command uses: flags and environment first, then the
//! stored login, and a stored token only ever for the server it was issued by.

use std::path::PathBuf;

use anyhow::Context as _;
use secrecy::SecretString;

use crate::cli::GlobalArgs;
use crate::client::{CommandClient, ServerUrl};
use crate::credentials::{self, Credentials};

/// Environment variable with a bearer token, for scripts that do not keep a credentials file.
pub(crate) const TOKEN_ENV: &str = "ENIGM_TOKEN";

/// Where a command sends its requests and with what.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) server: ServerUrl,
    pub(crate) token: Option<SecretString>,
    pub(crate) ca_cert: Option<CaCert>,
}

/// An extra trust anchor: from `--ca-cert` (a path, read now) or from the stored login (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CaCert {
    File(PathBuf),
    Stored(String),
}

impl CaCert {
    pub(crate) fn pem(&self) -> anyhow::Result<Vec<u8>> {
        match self {
            CaCert::File(path) => std::fs::read(path)
                .with_context(|| format!("could not read the ca certificate `{}`", path.display())),
            CaCert::Stored(pem) => Ok(pem.clone().into_bytes()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TargetError {
    #[error("no server given: pass --server URL (or set ENIGM_SERVER), or run `enigm login` first")]
    NoServer,
    #[error("not logged in to `{0}`: run `enigm login --server {0}` or set ENIGM_TOKEN")]
    NotLoggedIn(String),
}

/// Decides the target of an authenticated command.
///
/// A token stored for one server is never sent to another: with `--server` naming a different
/// server, only `ENIGM_TOKEN` can authenticate.
pub(crate) fn resolve(
    server_flag: Option<&str>,
    ca_cert_flag: Option<&PathBuf>,
    stored: Option<&Credentials>,
    env_token: Option<String>,
) -> anyhow::Result<Target> {
    let stored_server = stored
        .map(|credentials| ServerUrl::parse(&credentials.server))
        .transpose();
    let stored_server = stored_server
        .context("the stored login names an invalid server; run `enigm login` again")?;
    let server = match (server_flag, &stored_server) {
        (Some(flag), _) => ServerUrl::parse(flag)?,
        (None, Some(stored)) => stored.clone(),
        (None, None) => return Err(TargetError::NoServer.into()),
    };
    let same_server = stored_server.as_ref() == Some(&server);
    let stored_for_server = stored.filter(|_| same_server);
    let token = match env_token.filter(|token| !token.is_empty()) {
        Some(token) => Some(SecretString::from(token)),
        None => stored_for_server
            .and_then(|credentials| credentials.token.clone())
            .map(SecretString::from),
    };
    let ca_cert = match ca_cert_flag {
        Some(path) => Some(CaCert::File(path.clone())),
        None => stored_for_server
            .and_then(|credentials| credentials.ca_cert.clone())
            .map(CaCert::Stored),
    };
    Ok(Target {
        server,
        token,
        ca_cert,
    })
}

/// Builds the client for an authenticated command from the flags, the environment and the
/// stored login.
pub(crate) fn connect(global: &GlobalArgs) -> anyhow::Result<CommandClient> {
    let stored = match credentials::default_path() {
        Ok(path) => credentials::load(&path)?,
        Err(_) => None,
    };
    let env_token = std::env::var(TOKEN_ENV).ok();
    let target = resolve(
        global.server(),
        global.ca_cert.as_ref(),
        stored.as_ref(),
        env_token,
    )?;
    let Some(token) = &target.token else {
        return Err(TargetError::NotLoggedIn(target.server.to_string()).into());
    };
    client_for(&target, Some(token))
}

/// Builds a client for `target`, authenticated with `token` when given.
pub(crate) fn client_for(
    target: &Target,
    token: Option<&SecretString>,
) -> anyhow::Result<CommandClient> {
    let pem = target.ca_cert.as_ref().map(CaCert::pem).transpose()?;
    Ok(CommandClient::new(
        target.server.clone(),
        pem.as_deref(),
        token,
    )?)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    fn stored(server: &str) -> Credentials {
        Credentials {
            server: server.to_owned(),
            token: Some("stored-token".to_owned()),
            username: "alice".to_owned(),
            ca_cert: Some("PEM".to_owned()),
        }
    }

    fn token(target: &Target) -> Option<&str> {
        target.token.as_ref().map(|token| token.expose_secret())
    }

    #[test]
    fn stored_login_is_used_without_flags() {
        let creds = stored("https://command.example");
        let target = resolve(None, None, Some(&creds), None).unwrap();
        assert_eq!(target.server.as_str(), "https://command.example");
        assert_eq!(token(&target), Some("stored-token"));
        assert_eq!(target.ca_cert, Some(CaCert::Stored("PEM".to_owned())));
    }

    #[test]
    fn stored_token_is_not_sent_to_another_server() {
        let creds = stored("https://command.example");
        let target = resolve(Some("https://elsewhere.example"), None, Some(&creds), None).unwrap();
        assert_eq!(token(&target), None);
        assert_eq!(target.ca_cert, None);
        // The same server spelled with a trailing slash is the same server.
        let same = resolve(Some("https://command.example/"), None, Some(&creds), None).unwrap();
        assert_eq!(token(&same), Some("stored-token"));
    }

    #[test]
    fn environment_token_and_ca_flag_win() {
        let creds = stored("https://command.example");
        let ca = PathBuf::from("/tmp/ca.pem");
        let target = resolve(None, Some(&ca), Some(&creds), Some("env-token".to_owned())).unwrap();
        assert_eq!(token(&target), Some("env-token"));
        assert_eq!(target.ca_cert, Some(CaCert::File(ca)));
        let empty_env = resolve(None, None, Some(&creds), Some(String::new())).unwrap();
        assert_eq!(token(&empty_env), Some("stored-token"));
    }

    #[test]
    fn without_any_server_the_error_says_what_to_do() {
        let error = resolve(None, None, None, None).unwrap_err();
        assert_eq!(
            error.downcast_ref::<TargetError>(),
            Some(&TargetError::NoServer)
        );
    }

    #[test]
    fn plain_http_is_refused_off_loopback() {
        let error = resolve(Some("http://command.example"), None, None, None).unwrap_err();
        assert!(error.to_string().contains("plain http"), "{error}");
        assert!(resolve(Some("http://127.0.0.1:8080"), None, None, None).is_ok());
    }
}
