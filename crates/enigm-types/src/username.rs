//! Administrator usernames. Accounts carry a username and nothing else that identifies a person:
//! no email, phone or identity document (enigm-docs §3.1, §20 item 1).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A validated username: 3 to 64 characters of `a-z`, `0-9`, `.`, `_` and `-`, starting with a
/// letter. Lower case only, so that `Alice` and `alice` cannot be two accounts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("username must be 3 to 64 characters long")]
    Length,
    #[error("username must start with a letter a-z")]
    Start,
    #[error("username may contain only a-z, 0-9, `.`, `_` and `-`")]
    Characters,
}

impl Username {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 64;

    pub fn parse(input: &str) -> Result<Self, UsernameError> {
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&input.len()) {
            return Err(UsernameError::Length);
        }
        if !input.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(UsernameError::Start);
        }
        let allowed =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
        if !input.chars().all(allowed) {
            return Err(UsernameError::Characters);
        }
        Ok(Username(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Username {
    type Error = UsernameError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Username::parse(&value)
    }
}

impl From<Username> for String {
    fn from(value: Username) -> Self {
        value.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_usernames() {
        let cases: &[(&str, Result<(), UsernameError>)] = &[
            ("alice", Ok(())),
            ("sec-admin.2", Ok(())),
            ("a_b", Ok(())),
            ("ab", Err(UsernameError::Length)),
            (&"a".repeat(65), Err(UsernameError::Length)),
            ("Alice", Err(UsernameError::Start)),
            ("1alice", Err(UsernameError::Start)),
            ("al ice", Err(UsernameError::Characters)),
            ("alice@example.org", Err(UsernameError::Characters)),
            ("alïce", Err(UsernameError::Characters)),
        ];
        for (input, expected) in cases {
            assert_eq!(
                Username::parse(input).map(|_| ()),
                *expected,
                "input `{input}`"
            );
        }
    }
}
