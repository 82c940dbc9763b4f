//! Google's attestation status list: the serial numbers of revoked or suspended attestation
//! certificates.
//!
//! Format: `{"entries": {"<serial, lower-case hex, no leading zeros>": {"status": "REVOKED" |
//! "SUSPENDED", "expires"?: "YYYY-MM-DD", "reason"?: "…", "comment"?: "…"}}}`. Both statuses
//! reject. The list carries the time it was fetched: one older than the configured age rejects
//! every chain (fail closed), and so does a deployment without a list, unless it says explicitly
//! that it checks none ([`RevocationStatus::unchecked_for_offline_use`]).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use enigm_types::Timestamp;
use serde::Deserialize;

/// The largest status list accepted (Google's is a few hundred KiB).
pub const MAX_LIST_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevocationError {
    #[error("the status list is larger than {MAX_LIST_BYTES} bytes")]
    TooLarge,
    #[error("the status list is not valid JSON of the expected shape: {0}")]
    Json(String),
    #[error("the status list names a serial that is not lower-case hex: {0:?}")]
    Serial(String),
}

#[derive(Deserialize)]
struct ListFile {
    entries: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
struct Entry {
    status: Status,
}

#[derive(Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum Status {
    Revoked,
    Suspended,
}

/// A parsed status list and when it was fetched.
#[derive(Debug, Clone)]
pub struct RevocationList {
    serials: HashSet<String>,
    fetched_at: Timestamp,
}

impl RevocationList {
    pub fn parse(json: &[u8], fetched_at: Timestamp) -> Result<RevocationList, RevocationError> {
        if json.len() > MAX_LIST_BYTES {
            return Err(RevocationError::TooLarge);
        }
        let file: ListFile = serde_json::from_slice(json)
            .map_err(|error| RevocationError::Json(error.to_string()))?;
        let mut serials = HashSet::with_capacity(file.entries.len());
        for (serial, entry) in file.entries {
            let normalised = normalise_serial(&serial)
                .ok_or_else(|| RevocationError::Serial(serial.chars().take(80).collect()))?;
            match entry.status {
                Status::Revoked | Status::Suspended => serials.insert(normalised),
            };
        }
        Ok(RevocationList {
            serials,
            fetched_at,
        })
    }

    pub fn fetched_at(&self) -> Timestamp {
        self.fetched_at
    }

    pub fn len(&self) -> usize {
        self.serials.len()
    }

    pub fn is_empty(&self) -> bool {
        self.serials.is_empty()
    }

    /// Whether the certificate with this serial (big-endian bytes as in the certificate) is
    /// revoked or suspended.
    pub fn lists(&self, serial: &[u8]) -> bool {
        self.serials.contains(&serial_hex(serial))
    }
}

/// The list's spelling of a serial: lower-case hex without leading zeros ("0" for zero).
pub fn serial_hex(serial: &[u8]) -> String {
    let hex = hex::encode(serial);
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

fn normalise_serial(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    if lower.is_empty() || lower.len() > 128 || !lower.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let trimmed = lower.trim_start_matches('0');
    Some(if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    })
}

/// What a verification checks revocation against.
#[derive(Debug, Clone, Copy)]
pub struct RevocationStatus<'a>(Check<'a>);

#[derive(Debug, Clone, Copy)]
enum Check<'a> {
    List {
        list: &'a RevocationList,
        max_age: Option<Duration>,
    },
    Unchecked,
    Unavailable,
}

/// Why revocation could not be settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationProblem {
    /// No list: the deployment has none.
    Unavailable,
    /// The list is older than its allowed age at the verification time.
    Stale,
}

impl<'a> RevocationStatus<'a> {
    /// Check against `list`, which may be at most `max_age` old at the verification time.
    pub fn checked(list: &'a RevocationList, max_age: Duration) -> Self {
        RevocationStatus(Check::List {
            list,
            max_age: Some(max_age),
        })
    }

    /// Check against `list` whatever its age: for an operator checking a list they chose by
    /// hand (`enigm attest verify --status-list`), never for Command.
    pub fn checked_at_any_age(list: &'a RevocationList) -> Self {
        RevocationStatus(Check::List {
            list,
            max_age: None,
        })
    }

    /// Check nothing: for offline inspection and development roots only, never Google's chains
    /// in production.
    pub fn unchecked_for_offline_use() -> Self {
        RevocationStatus(Check::Unchecked)
    }

    /// No list is available: every chain is rejected.
    pub fn unavailable() -> Self {
        RevocationStatus(Check::Unavailable)
    }

    /// The list to check at `at`, `None` when nothing is checked, or why nothing can be trusted.
    pub(crate) fn list_at(
        &self,
        at: Timestamp,
    ) -> Result<Option<&'a RevocationList>, RevocationProblem> {
        match self.0 {
            Check::Unchecked => Ok(None),
            Check::Unavailable => Err(RevocationProblem::Unavailable),
            Check::List { list, max_age } => {
                let too_old = max_age.is_some_and(|max_age| {
                    list.fetched_at > at || at.duration_since(list.fetched_at) > max_age
                });
                if too_old {
                    Err(RevocationProblem::Stale)
                } else {
                    Ok(Some(list))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

    #[test]
    fn entries_are_matched_by_normalised_serial() {
        let json = br#"{"entries": {
            "00aB12": {"status": "REVOKED", "reason": "KEY_COMPROMISE", "comment": "x"},
            "c35747a084470c3135aeefe2b8d40cd6": {"status": "SUSPENDED", "expires": "2030-01-01"}
        }}"#;
        let list = RevocationList::parse(json, T).unwrap();
        assert!(list.lists(&[0xab, 0x12]));
        assert!(list.lists(&[0x00, 0xab, 0x12]));
        assert!(list.lists(&hex::decode("c35747a084470c3135aeefe2b8d40cd6").unwrap()));
        assert!(!list.lists(&[0xab, 0x13]));
    }

    #[test]
    fn malformed_lists_are_refused() {
        for json in [
            &b"{}"[..],
            br#"{"entries": {"xyz": {"status": "REVOKED"}}}"#,
            br#"{"entries": {"ab": {"status": "MAYBE"}}}"#,
            br#"{"entries": []}"#,
            b"not json",
        ] {
            assert!(
                RevocationList::parse(json, T).is_err(),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
    }

    #[test]
    fn an_old_list_or_none_settles_nothing() {
        let list = RevocationList::parse(br#"{"entries": {}}"#, T).unwrap();
        let day = Duration::from_secs(86_400);
        let status = RevocationStatus::checked(&list, day);
        assert!(
            status
                .list_at(T.saturating_add(Duration::from_secs(3600)))
                .is_ok()
        );
        assert_eq!(
            status
                .list_at(T.saturating_add(day).saturating_add(Duration::from_secs(1)))
                .err(),
            Some(RevocationProblem::Stale)
        );
        assert_eq!(
            RevocationStatus::unavailable().list_at(T).err(),
            Some(RevocationProblem::Unavailable)
        );
        assert!(matches!(
            RevocationStatus::unchecked_for_offline_use().list_at(T),
            Ok(None)
        ));
    }
}
