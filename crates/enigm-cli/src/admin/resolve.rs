//! Turning what an operator types into ids: a username or a user id, and full ids or unique id
//! prefixes (lists show the first 8 characters) for sessions, approvals and releases.

use std::fmt::Display;

use enigm_api::releases::ReleaseView;
use enigm_api::{AccountView, ApprovalListQuery, ApprovalView, SessionView, paths};
use enigm_types::{AdminId, ApprovalId, ReleaseId, SessionId};

use crate::client::CommandClient;

/// Shortest id prefix accepted: shorter ones match too much to be a deliberate choice.
const MIN_PREFIX_CHARS: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ResolveError {
    #[error("no {noun} matches `{input}`")]
    NotFound { noun: &'static str, input: String },
    #[error("`{input}` matches {count} {noun}s: give more characters of the id")]
    Ambiguous {
        noun: &'static str,
        input: String,
        count: usize,
    },
}

/// Finds an account by exact username, else by unique id prefix. A full id is matched too.
pub(crate) fn find_user<'a>(
    accounts: &'a [AccountView],
    input: &str,
) -> Result<&'a AccountView, ResolveError> {
    if let Some(account) = accounts.iter().find(|account| account.username == input) {
        return Ok(account);
    }
    find_by_prefix(accounts, input, |account| account.id, "administrator")
}

/// Finds the one item whose id starts with `input` (at least 4 hex characters or a full id).
pub(crate) fn find_by_prefix<'a, T, I: Display>(
    items: &'a [T],
    input: &str,
    id: impl Fn(&T) -> I,
    noun: &'static str,
) -> Result<&'a T, ResolveError> {
    let prefix = input.to_ascii_lowercase();
    let shown: String = input.chars().take(64).collect();
    let looks_like_id = prefix.chars().count() >= MIN_PREFIX_CHARS
        && prefix.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if !looks_like_id {
        return Err(ResolveError::NotFound { noun, input: shown });
    }
    let mut matches = items
        .iter()
        .filter(|item| id(item).to_string().starts_with(&prefix));
    match (matches.next(), matches.count()) {
        (Some(item), 0) => Ok(item),
        (Some(_), others) => Err(ResolveError::Ambiguous {
            noun,
            input: shown,
            count: others.saturating_add(1),
        }),
        (None, _) => Err(ResolveError::NotFound { noun, input: shown }),
    }
}

/// A username or (a prefix of) an administrator id. A full id needs no request.
pub(crate) async fn user(client: &CommandClient, input: &str) -> anyhow::Result<AdminId> {
    if let Ok(id) = input.parse::<AdminId>() {
        return Ok(id);
    }
    let accounts = client.get::<Vec<AccountView>>(paths::USERS).await?.value;
    Ok(find_user(&accounts, input)?.id)
}

/// A full approval id, or a unique prefix of one.
pub(crate) async fn approval(client: &CommandClient, input: &str) -> anyhow::Result<ApprovalId> {
    if let Ok(id) = input.parse::<ApprovalId>() {
        return Ok(id);
    }
    let query = ApprovalListQuery {
        state: None,
        since: None,
    };
    let approvals = client
        .get_query::<_, Vec<ApprovalView>>(paths::APPROVALS, &query)
        .await?
        .value;
    Ok(find_by_prefix(&approvals, input, |approval| approval.id, "approval")?.id)
}

/// A full release id, or a unique prefix of one (`enigm release status` shows 8 characters).
pub(crate) async fn release(client: &CommandClient, input: &str) -> anyhow::Result<ReleaseId> {
    if let Ok(id) = input.parse::<ReleaseId>() {
        return Ok(id);
    }
    let releases = client.get::<Vec<ReleaseView>>(paths::RELEASES).await?.value;
    Ok(find_by_prefix(&releases, input, |release| release.id, "release")?.id)
}

/// A full session id, or a unique prefix of one among own sessions (or all, with `all`).
pub(crate) async fn session(
    client: &CommandClient,
    input: &str,
    all: bool,
) -> anyhow::Result<SessionId> {
    if let Ok(id) = input.parse::<SessionId>() {
        return Ok(id);
    }
    let path = if all {
        paths::SESSIONS
    } else {
        paths::OWN_SESSIONS
    };
    let sessions = client.get::<Vec<SessionView>>(path).await?.value;
    Ok(find_by_prefix(&sessions, input, |session| session.id, "session")?.id)
}

#[cfg(test)]
mod tests {
    use enigm_types::Role;
    use uuid::Uuid;

    use super::*;

    fn account(id: &str, username: &str) -> AccountView {
        AccountView {
            id: AdminId::from_uuid(Uuid::parse_str(id).unwrap()),
            username: username.to_owned(),
            roles: vec![Role::Auditor],
            disabled: false,
            totp_enabled: false,
            pin_set: false,
            pin_locked: false,
            password_change_required: false,
            at_risk: false,
            risk_raised_at: None,
            created_at: "2026-01-01T00:00:00.000Z".to_owned(),
        }
    }

    fn accounts() -> Vec<AccountView> {
        vec![
            account("1f0c2d3e-0000-4000-8000-000000000001", "alice"),
            account("1f0c9999-0000-4000-8000-000000000002", "bob"),
            // A username made of hex digits: the exact name wins over an id prefix.
            account("abcd0000-0000-4000-8000-000000000003", "deadbeef"),
            account("deadbeef-0000-4000-8000-000000000004", "carol"),
        ]
    }

    fn check(input: &str, expect: Result<&str, ResolveError>) {
        let accounts = accounts();
        let found = find_user(&accounts, input).map(|account| account.username.as_str());
        assert_eq!(found, expect, "input `{input}`");
    }

    #[test]
    fn users_resolve_by_name_full_id_or_unique_prefix() {
        let not_found = |input: &str| ResolveError::NotFound {
            noun: "administrator",
            input: input.to_owned(),
        };
        check("alice", Ok("alice"));
        check("bob", Ok("bob"));
        check("1f0c2d3e-0000-4000-8000-000000000001", Ok("alice"));
        check("1f0c2d3e", Ok("alice"));
        check("1F0C9", Ok("bob"));
        check("deadbeef", Ok("deadbeef"));
        check("deadbeef-", Ok("carol"));
        check(
            "1f0c",
            Err(ResolveError::Ambiguous {
                noun: "administrator",
                input: "1f0c".to_owned(),
                count: 2,
            }),
        );
        check("1f0", Err(not_found("1f0")));
        check("mallory", Err(not_found("mallory")));
        check("ffff", Err(not_found("ffff")));
        check("Alice", Err(not_found("Alice")));
    }

    #[test]
    fn error_messages_say_what_to_do() {
        let ambiguous = ResolveError::Ambiguous {
            noun: "session",
            input: "abcd".to_owned(),
            count: 3,
        };
        assert_eq!(
            ambiguous.to_string(),
            "`abcd` matches 3 sessions: give more characters of the id"
        );
        let missing = ResolveError::NotFound {
            noun: "administrator",
            input: "mallory".to_owned(),
        };
        assert_eq!(missing.to_string(), "no administrator matches `mallory`");
    }
}
