//! [`TargetSearch`]: the search for one target through the delegation graph (specification
//! §5.6.7), with delegations, path patterns and succinct hash bins.

use enigm_types::Timestamp;

use crate::metadata::{MetadataError, RoleKeys, Targets, Verified, verify_role};
use crate::time::is_expired;

use super::refresh::{FetchFailure, MetadataRequest, Persist, RefreshError};
use super::target::VerifiedTarget;
use super::trusted::{Limits, TrustedMetadata, expired, matches_meta};

/// A `delegations` object of targets metadata.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub(super) struct Delegations {
    keys: std::collections::BTreeMap<crate::keys::KeyId, crate::keys::Key>,
    #[serde(default)]
    roles: Option<Vec<DelegatedRole>>,
    #[serde(default)]
    succinct_roles: Option<SuccinctRoles>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
struct DelegatedRole {
    name: String,
    keyids: Vec<crate::keys::KeyId>,
    threshold: u64,
    terminating: bool,
    #[serde(default)]
    paths: Option<Vec<String>>,
    #[serde(default)]
    path_hash_prefixes: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
struct SuccinctRoles {
    keyids: Vec<crate::keys::KeyId>,
    threshold: u64,
    bit_length: u32,
    name_prefix: String,
}

impl SuccinctRoles {
    fn suffix_len(&self) -> usize {
        (self.bit_length as usize).div_ceil(4)
    }

    fn role_for(&self, target: &str) -> Option<String> {
        if !(1..=32).contains(&self.bit_length) {
            return None;
        }
        let hash = enigm_crypto::sha256(target.as_bytes());
        let [a, b, c, d, ..] = hash;
        let first = u32::from_be_bytes([a, b, c, d]);
        let bin = first.checked_shr(32 - self.bit_length).unwrap_or(0);
        Some(format!(
            "{}-{:0width$x}",
            self.name_prefix,
            bin,
            width = self.suffix_len()
        ))
    }

    fn is_role(&self, name: &str) -> bool {
        let Some(suffix) = name
            .strip_prefix(self.name_prefix.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
        else {
            return false;
        };
        suffix.len() == self.suffix_len()
            && u64::from_str_radix(suffix, 16)
                .is_ok_and(|bin| bin < (1u64 << self.bit_length.min(32)))
    }
}

/// `fnmatch` of one path segment (Python's, as TUF path patterns use it): `*`, `?`, `[set]`,
/// `[!set]`, `[a-z]`, and a `[` without its `]` as a literal. Every token but `*` matches one
/// character, so backtracking to the last `*` only is enough: at worst text length × pattern length
/// steps, whatever a delegator writes (a naive recursion is exponential in the `*`s).
fn fnmatch(text: &[char], pattern: &[char]) -> bool {
    let tokens = glob_tokens(pattern);
    let (mut t, mut p) = (0usize, 0usize);
    // The last `*` seen, and the text position it is currently taken to end at.
    let mut star: Option<(usize, usize)> = None;
    loop {
        match (tokens.get(p), text.get(t)) {
            (Some(GlobToken::Star), _) => {
                star = Some((p, t));
                p += 1;
            }
            (Some(token), Some(&character)) if token.matches(character) => {
                p += 1;
                t += 1;
            }
            (None, None) => return true,
            _ => match star {
                // The `*` swallows one more character and the rest is tried again.
                Some((star_at, star_end)) if star_end < text.len() => {
                    star = Some((star_at, star_end + 1));
                    p = star_at + 1;
                    t = star_end + 1;
                }
                _ => return false,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum GlobToken {
    Star,
    AnyByte,
    Literal(char),
    /// `[...]`: negated or not, with single bytes and inclusive ranges.
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl GlobToken {
    fn matches(&self, character: char) -> bool {
        match self {
            GlobToken::Star | GlobToken::AnyByte => true,
            GlobToken::Literal(literal) => *literal == character,
            GlobToken::Set { negated, ranges } => {
                ranges
                    .iter()
                    .any(|(low, high)| (*low..=*high).contains(&character))
                    != *negated
            }
        }
    }
}

/// A pattern as tokens, with Python's `fnmatch.translate` reading of sets: a `]` right after
/// `[` or `[!` belongs to the set, `-` first or last is literal, and a `[` that is never closed
/// is a literal `[`.
fn glob_tokens(pattern: &[char]) -> Vec<GlobToken> {
    let mut tokens = Vec::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some((&first, after)) = rest.split_first() {
        rest = after;
        match first {
            '*' => {
                // Consecutive stars are one star.
                if tokens.last() != Some(&GlobToken::Star) {
                    tokens.push(GlobToken::Star);
                }
            }
            '?' => tokens.push(GlobToken::AnyByte),
            '[' => {
                let (negated, body) = match after.split_first() {
                    Some(('!', body)) => (true, body),
                    _ => (false, after),
                };
                // The first byte of the set may be `]`; the set closes at the next `]`.
                let skip = usize::from(body.first() == Some(&']'));
                let close = body
                    .iter()
                    .skip(skip)
                    .position(|character| *character == ']')
                    .map(|position| position + skip);
                let Some(close) = close else {
                    tokens.push(GlobToken::Literal('['));
                    continue;
                };
                let (set, tail) = body.split_at(close);
                rest = tail.get(1..).unwrap_or_default();
                let mut ranges = Vec::new();
                let mut remaining = set;
                while let Some((&low, more)) = remaining.split_first() {
                    match more {
                        ['-', high, tail @ ..] => {
                            // A reversed range matches nothing, as in Python.
                            if low <= *high {
                                ranges.push((low, *high));
                            }
                            remaining = tail;
                        }
                        _ => {
                            ranges.push((low, low));
                            remaining = more;
                        }
                    }
                }
                tokens.push(GlobToken::Set { negated, ranges });
            }
            literal => tokens.push(GlobToken::Literal(literal)),
        }
    }
    tokens
}

fn path_matches(target: &str, pattern: &str) -> bool {
    let targets: Vec<&str> = target.split('/').collect();
    let patterns: Vec<&str> = pattern.split('/').collect();
    targets.len() == patterns.len()
        && targets.iter().zip(&patterns).all(|(t, p)| {
            let text: Vec<char> = t.chars().collect();
            let pattern: Vec<char> = p.chars().collect();
            fnmatch(&text, &pattern)
        })
}

impl DelegatedRole {
    fn covers(&self, target: &str) -> bool {
        if let Some(paths) = &self.paths {
            return paths.iter().any(|pattern| path_matches(target, pattern));
        }
        if let Some(prefixes) = &self.path_hash_prefixes {
            let hash = hex::encode(enigm_crypto::sha256(target.as_bytes()));
            return prefixes
                .iter()
                .any(|prefix| hash.starts_with(prefix.as_str()));
        }
        false
    }
}

/// Names no delegated role may take: its metadata would be stored over a top-level role's.
const TOP_LEVEL_ROLES: [&str; 4] = ["root", "timestamp", "snapshot", "targets"];

impl Delegations {
    /// The delegations of `role`'s targets metadata, refused as malformed where python-tuf
    /// refuses them: both or neither of `roles` and `succinct_roles`, a role named after a
    /// top-level role, empty or twice, a role with both or neither of `paths` and
    /// `path_hash_prefixes`, hash bins of more than 32 bits.
    pub(super) fn of(role: &str, targets: &Targets) -> Result<Option<Delegations>, MetadataError> {
        let malformed = |detail: String| MetadataError::Malformed {
            role: role.to_owned(),
            detail,
        };
        let Some(value) = &targets.delegations else {
            return Ok(None);
        };
        let delegations = <Delegations as serde::Deserialize>::deserialize(value)
            .map_err(|error| malformed(error.to_string()))?;
        if delegations.roles.is_some() == delegations.succinct_roles.is_some() {
            return Err(malformed(
                "delegations need exactly one of `roles` and `succinct_roles`".to_owned(),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for delegated in delegations.roles.iter().flatten() {
            let name = delegated.name.as_str();
            if name.is_empty() || TOP_LEVEL_ROLES.contains(&name) || !names.insert(name) {
                return Err(malformed(format!(
                    "delegated role name `{name}` is empty, a top-level role's or repeated"
                )));
            }
            if delegated.paths.is_some() == delegated.path_hash_prefixes.is_some() {
                return Err(malformed(format!(
                    "delegated role `{name}` needs exactly one of `paths` and `path_hash_prefixes`"
                )));
            }
        }
        if let Some(succinct) = &delegations.succinct_roles
            && !(1..=32).contains(&succinct.bit_length)
        {
            return Err(malformed("succinct roles need 1 to 32 bits".to_owned()));
        }
        Ok(Some(delegations))
    }

    /// The roles delegated `target`, in order, with whether each is terminating.
    fn roles_for(&self, target: &str) -> Vec<(String, bool)> {
        if let Some(succinct) = &self.succinct_roles {
            return succinct
                .role_for(target)
                .map(|name| vec![(name, true)])
                .unwrap_or_default();
        }
        self.roles
            .iter()
            .flatten()
            .filter(|role| role.covers(target))
            .map(|role| (role.name.clone(), role.terminating))
            .collect()
    }

    /// The keys and threshold of the delegated role `name`.
    fn role_keys(&self, name: &str) -> Option<RoleKeys> {
        let (keyids, threshold) = if let Some(succinct) = &self.succinct_roles {
            succinct
                .is_role(name)
                .then(|| (succinct.keyids.clone(), succinct.threshold))?
        } else {
            let role = self.roles.iter().flatten().find(|role| role.name == name)?;
            (role.keyids.clone(), role.threshold)
        };
        Some(RoleKeys {
            keyids,
            threshold,
            unrecognized: serde_json::Map::new(),
        })
    }
}

/// A role name as it appears in a file name: every byte outside `A-Z a-z 0-9 - _ . ~`
/// percent-encoded (as python-tuf's `quote(name, "")`).
pub fn quote_role(name: &str) -> String {
    name.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// The most roles one target search visits.
pub const MAX_DELEGATIONS: usize = 32;

impl TrustedMetadata {
    fn delegations_of(&self, role: &str) -> Result<Option<Delegations>, MetadataError> {
        let targets = if role == "targets" {
            self.targets.as_ref()
        } else {
            self.delegated.get(role).map(|(_, verified)| verified)
        };
        let Some(targets) = targets else {
            return Err(MetadataError::Missing(format!("{role} is not trusted")));
        };
        Delegations::of(role, &targets.signed)
    }

    /// Applies delegated targets metadata for `role`, delegated by `delegator`.
    pub fn update_delegated_targets(
        &mut self,
        bytes: &[u8],
        role: &str,
        delegator: &str,
        now: Timestamp,
    ) -> Result<(), MetadataError> {
        let meta = self
            .snapshot
            .as_ref()
            .and_then(|snapshot| snapshot.signed.meta.get(&format!("{role}.json")))
            .cloned()
            .ok_or_else(|| MetadataError::Missing(format!("the snapshot does not list {role}")))?;
        matches_meta(role, bytes, &meta)?;
        let delegations = self
            .delegations_of(delegator)?
            .ok_or_else(|| MetadataError::Missing(format!("{delegator} delegates nothing")))?;
        let keys = delegations.role_keys(role).ok_or_else(|| {
            MetadataError::Missing(format!("{delegator} does not delegate {role}"))
        })?;
        let verified: Verified<Targets> =
            verify_role(bytes, &delegations.keys, &keys).map_err(|error| match error {
                MetadataError::ThresholdNotMet {
                    threshold, valid, ..
                } => MetadataError::ThresholdNotMet {
                    role: role.to_owned(),
                    threshold,
                    valid,
                },
                other => other,
            })?;
        Delegations::of(role, &verified.signed)?;
        if verified.signed.version != meta.version {
            return Err(MetadataError::WrongVersion {
                role: role.to_owned(),
                got: verified.signed.version,
                expected: meta.version,
            });
        }
        expired(&verified.signed, now)?;
        self.delegated
            .insert(role.to_owned(), (delegator.to_owned(), verified));
        Ok(())
    }

    /// The metadata request for a delegated role.
    fn delegated_request(&self, role: &str, limits: &Limits) -> Option<MetadataRequest> {
        let meta = self
            .snapshot
            .as_ref()?
            .signed
            .meta
            .get(&format!("{role}.json"))?;
        let quoted = quote_role(role);
        Some(MetadataRequest {
            role: "delegated",
            file_name: if self.root.signed.consistent_snapshot {
                format!("{}.{quoted}.json", meta.version)
            } else {
                format!("{quoted}.json")
            },
            max_length: meta.length.unwrap_or(limits.targets),
        })
    }
}

/// The search for one target through the delegation graph (pre-order depth-first, as the
/// specification's step 5.6.7): a sans-IO machine like [`Refresh`]. Delegated metadata not yet
/// trusted is asked for with [`TargetSearch::next_request`].
#[derive(Debug)]
pub struct TargetSearch {
    target: String,
    stack: Vec<(String, String)>,
    visited: Vec<String>,
    /// The role whose metadata is asked for, and its delegator.
    waiting: Option<(String, String)>,
    found: Option<Option<VerifiedTarget>>,
    limits: Limits,
    now: Timestamp,
}

impl TargetSearch {
    pub fn new(target: &str, limits: Limits, now: Timestamp) -> Self {
        TargetSearch {
            target: target.to_owned(),
            stack: vec![("targets".to_owned(), "root".to_owned())],
            visited: Vec::new(),
            waiting: None,
            found: None,
            limits,
            now,
        }
    }

    /// Walks as far as trusted metadata allows; then either the search is over
    /// ([`TargetSearch::result`]) or a delegated role's metadata is needed.
    pub fn next_request(
        &mut self,
        trusted: &TrustedMetadata,
    ) -> Result<Option<MetadataRequest>, MetadataError> {
        if self.found.is_some() {
            return Ok(None);
        }
        if let Some((role, _)) = &self.waiting {
            return Ok(trusted.delegated_request(role, &self.limits));
        }
        while let Some((role, delegator)) = self.stack.pop() {
            if self.visited.len() > MAX_DELEGATIONS {
                break;
            }
            if self.visited.contains(&role) {
                continue;
            }
            let loaded = if role == "targets" {
                if let Some(targets) = &trusted.targets {
                    // A search long after the refresh must not read frozen metadata.
                    expired(&targets.signed, self.now)?;
                }
                trusted.targets.as_ref()
            } else {
                trusted
                    .delegated
                    .get(&role)
                    .filter(|(verified_by, _)| *verified_by == delegator)
                    // An expired copy (trusted earlier in a long-lived session) is fetched
                    // again, and the fresh one's expiry decides.
                    .filter(|(_, verified)| !is_expired(&verified.signed.expires, self.now))
                    .map(|(_, verified)| verified)
            };
            let Some(loaded) = loaded else {
                let request = trusted
                    .delegated_request(&role, &self.limits)
                    .ok_or_else(|| {
                        MetadataError::Missing(format!("the snapshot does not list {role}"))
                    })?;
                self.waiting = Some((role, delegator));
                return Ok(Some(request));
            };
            if let Some(file) = loaded.signed.targets.get(&self.target) {
                self.found = Some(Some(VerifiedTarget {
                    name: self.target.clone(),
                    file: file.clone(),
                }));
                return Ok(None);
            }
            self.visited.push(role.clone());
            if let Some(delegations) = trusted.delegations_of(&role)? {
                let mut children = Vec::new();
                for (child, terminating) in delegations.roles_for(&self.target) {
                    children.push((child, role.clone()));
                    if terminating {
                        self.stack.clear();
                        break;
                    }
                }
                self.stack.extend(children.into_iter().rev());
            }
        }
        self.found = Some(None);
        Ok(None)
    }

    /// The role whose metadata is asked for, with its delegator (to look for a local copy).
    pub fn waiting_for(&self) -> Option<(&str, &str)> {
        self.waiting
            .as_ref()
            .map(|(role, delegator)| (role.as_str(), delegator.as_str()))
    }

    /// Takes the fetched metadata of the waiting role; answers what to persist.
    pub fn provide(
        &mut self,
        trusted: &mut TrustedMetadata,
        fetched: Result<Vec<u8>, FetchFailure>,
    ) -> Result<Option<Persist>, RefreshError> {
        let (role, delegator) = self.waiting.take().ok_or(RefreshError::Finished)?;
        let limit = trusted
            .delegated_request(&role, &self.limits)
            .map_or(self.limits.targets, |request| request.max_length);
        let bytes = match fetched {
            // The bound holds even when the caller read past it.
            Ok(bytes) if bytes.len() as u64 > limit => {
                return Err(MetadataError::TooLarge { role, limit }.into());
            }
            Ok(bytes) => bytes,
            Err(FetchFailure::TooLarge) => {
                return Err(MetadataError::TooLarge { role, limit }.into());
            }
            Err(_) => return Err(RefreshError::Unavailable(role)),
        };
        trusted.update_delegated_targets(&bytes, &role, &delegator, self.now)?;
        // Back on the stack: the next step reads it from the trusted set.
        self.stack.push((role.clone(), delegator));
        Ok(Some(Persist {
            file_name: format!("{}.json", quote_role(&role)),
            bytes,
        }))
    }

    /// Tries a locally stored copy of the waiting role; `true` when it verified (no fetch).
    pub fn provide_local(&mut self, trusted: &mut TrustedMetadata, bytes: &[u8]) -> bool {
        let Some((role, delegator)) = self.waiting.clone() else {
            return false;
        };
        if trusted
            .update_delegated_targets(bytes, &role, &delegator, self.now)
            .is_ok()
        {
            self.waiting = None;
            self.stack.push((role, delegator));
            return true;
        }
        false
    }

    /// `Some(found)` once the search is over.
    pub fn result(&self) -> Option<Option<VerifiedTarget>> {
        self.found.clone()
    }
}

#[cfg(test)]
mod delegation_tests {
    use super::*;

    #[test]
    fn path_patterns_match_segment_by_segment() {
        assert!(path_matches("foo-1.tgz", "foo-?.tgz"));
        assert!(path_matches("releases/z/z_v1.zip", "releases/*/*.zip"));
        assert!(!path_matches("releases/z/z_v1.zip", "releases/*.zip"));
        assert!(path_matches("a/b", "a/[a-c]"));
        assert!(!path_matches("a/d", "a/[a-c]"));
        assert!(path_matches("a/d", "a/[!a-c]"));
        assert!(path_matches("x", "*"));
        assert!(!path_matches("x/y", "*"));
        assert!(path_matches("[", "["));
        assert!(path_matches("]", "[]]"));
        assert!(path_matches("a", "[!]]"));
        assert!(!path_matches("]", "[!]]"));
        assert!(path_matches("-", "[a-]"));
        assert!(!path_matches("b", "[z-a]"));
        assert!(path_matches("ab", "a**b"));
        assert!(path_matches("", "*"));
        assert!(!path_matches("a", ""));
        assert!(path_matches("abcabd", "*ab?"));
        assert!(!path_matches("abcabe", "*abd"));
    }

    #[test]
    fn many_stars_do_not_backtrack_exponentially() {
        // A naive recursive matcher takes ~C(60, 20) steps here; this one answers at once.
        let text = "a".repeat(60);
        let pattern = format!("{}b", "*a".repeat(20));
        assert!(!path_matches(&text, &pattern));
        assert!(path_matches(&text, &format!("{}*", "*a".repeat(20))));
    }

    #[test]
    fn hash_bins_cover_every_target_once() {
        let bins = SuccinctRoles {
            keyids: Vec::new(),
            threshold: 1,
            bit_length: 8,
            name_prefix: "bin".to_owned(),
        };
        let name = bins.role_for("os/image.img").unwrap();
        assert!(bins.is_role(&name));
        assert_eq!(name.len(), "bin-".len() + 2);
        assert!(!bins.is_role("bin-100"));
        assert!(!bins.is_role("other-00"));
    }
}
