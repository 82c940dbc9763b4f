//! The director (Uptane's per-device role): Command's signed answer to one device's update
//! request, naming the exact target that device should install now, or nothing.
//!
//! **Why.** The TUF repository is public and the same for every device: it says what may be
//! installed, never what this device should install. The director says that, per device, from
//! Command's own record (lifecycle, trust state, group pins, channel, model, wave, attestation).
//! The device installs only what both agree on ([`agree`]): the director alone cannot make a
//! device install a target the repository does not list with the same length and SHA-256, and
//! the repository alone cannot make a device install what its director did not offer.
//!
//! **Pinning.** The director's keys and threshold are pinned in the OTA root under
//! [`DIRECTOR_FIELD`], in the same shape as the release keys (`{"keys": {…}, "threshold": N}`),
//! so the root threshold vouches for them and they rotate with the root. They are a field of
//! root's `signed` part rather than a fifth role because TUF clients (python-tuf among them)
//! refuse a root whose `roles` are not the four top-level ones. A root without the field means
//! the device updates as before the director existed (OTA I: the repository's newest release
//! that [`crate::appraise_release`] accepts); a root with the field in a form that does not
//! parse makes every answer fail ([`director_keys`] returns an error), which the device must
//! treat as "no update", never as "no director". A director key may be one of Command's online
//! keys (snapshot or timestamp), never a root, targets or release key: those stay offline, and a
//! root that names one of them as a director key is refused
//! ([`DirectorError::AuthoritiesConfused`]).
//!
//! **The answer** is a TUF-style envelope whose `signed` part is a [`DirectorAnswer`]:
//! `_type` `enigm-director`, the device's handle, the nonce of the device's signed request
//! (echoed, so an old answer can never be replayed to the device), when it was issued, when it
//! expires (at most [`MAX_ANSWER_LIFETIME`] later), and an offer or `null`. "No update for you"
//! and "you are not eligible" are the same document: the answer has no field for a reason, which
//! Command audits instead. It travels as the exact bytes [`sign_answer`] produces, OLPC
//! canonical JSON (a device refuses any other spelling, so that one answer has one encoding).
//!
//! **On the device**: [`director_keys`] from the trusted root; [`verify_answer`] against them,
//! the device's handle, the request's nonce and the time; the offered name looked up through the
//! ordinary TUF target search ([`VerifiedDirectorAnswer::target_search`]); [`agree`] between
//! the offer and what the search found; then every OTA I defence as before
//! ([`crate::appraise_release`]: release signature, channel, hardware, expiry, rollback index,
//! and the artifact's length and digest while it streams).

use std::collections::BTreeMap;
use std::time::Duration;

use enigm_types::{DeviceHandle, ReasonCategory, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::canonical::canonical_json;
use crate::client::{Limits, TargetSearch, VerifiedTarget};
use crate::keys::{Key, KeyId};
use crate::metadata::{
    Envelope, MetadataError, RoleKeys, Root, TargetFile, check_threshold,
    has_duplicate_signature_keyids,
};
use crate::release::{RELEASE_SIGNING_FIELD, ReleaseSigning, same_public_key};
use crate::repository::{MetadataSigner, SignerError, sign_envelope};
use crate::target_name::TargetName;
use crate::time::{format_expiry, parse_expiry};

/// The root field that pins the director's keys and threshold.
pub const DIRECTOR_FIELD: &str = "x-enigm-director";
/// The `_type` of a director answer.
pub const ANSWER_TYPE: &str = "enigm-director";
/// The `spec_version` of the answers this crate writes; a device accepts any `1.x`.
pub const ANSWER_SPEC_VERSION: &str = "1.0";
/// The largest answer a device reads.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// The longest an answer may be valid. The nonce already binds an answer to one request; the
/// expiry bounds how long a device may act on it, so it is short.
pub const MAX_ANSWER_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// The lifetime Command gives its answers unless it has a reason to choose another: long
/// enough for a slow link, short enough that an answer is not acted on long after the decision.
pub const DEFAULT_ANSWER_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// How far in the device's future an answer may have been issued (clocks differ).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
/// The longest nonce an answer echoes (a request's nonce is 22 base64url characters).
pub const MAX_NONCE_LEN: usize = 128;
/// The longest release version an offer names.
pub const MAX_RELEASE_VERSION_LEN: usize = 128;

/// The director's keys and threshold, as the root pins them under [`DIRECTOR_FIELD`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorKeys {
    keys: BTreeMap<KeyId, Key>,
    threshold: u64,
}

impl DirectorKeys {
    /// The pin for `keys` (each under its own key id) and `threshold`; `None` when the
    /// threshold is zero or more than the number of distinct keys.
    pub fn new(keys: &[Key], threshold: u64) -> Option<DirectorKeys> {
        let keys: BTreeMap<KeyId, Key> =
            keys.iter().map(|key| (key.key_id(), key.clone())).collect();
        if threshold == 0 || threshold > keys.len() as u64 {
            return None;
        }
        Some(DirectorKeys { keys, threshold })
    }

    pub fn keys(&self) -> &BTreeMap<KeyId, Key> {
        &self.keys
    }

    pub fn threshold(&self) -> u64 {
        self.threshold
    }

    /// The value of [`DIRECTOR_FIELD`] in root's `signed` part.
    pub fn field_value(&self) -> Value {
        serde_json::json!({ "keys": self.keys, "threshold": self.threshold })
    }

    /// Pins these keys in `root` (replacing any earlier pin). The root must then be signed
    /// again: its signatures cover the field.
    pub fn pin_in(&self, root: &mut Root) {
        root.unrecognized
            .insert(DIRECTOR_FIELD.to_owned(), self.field_value());
    }

    fn role_keys(&self) -> RoleKeys {
        RoleKeys {
            keyids: self.keys.keys().cloned().collect(),
            threshold: self.threshold,
            unrecognized: Map::new(),
        }
    }
}

/// The director pinned in `root`: `Ok(None)` when the root pins none (the device updates as in
/// OTA I), an error when the pin is malformed or names an offline key (the device then takes
/// no update at all).
pub fn director_keys(root: &Root) -> Result<Option<DirectorKeys>, DirectorError> {
    let Some(value) = root.unrecognized.get(DIRECTOR_FIELD) else {
        return Ok(None);
    };
    let pinned = DirectorKeys::deserialize(value).map_err(|_| DirectorError::PinMalformed)?;
    if pinned.threshold == 0 || pinned.threshold > pinned.keys.len() as u64 {
        return Err(DirectorError::PinMalformed);
    }
    for (keyid, key) in &pinned.keys {
        if key.key_id() != *keyid {
            return Err(DirectorError::PinMalformed);
        }
        if is_offline_key(root, keyid, key) {
            return Err(DirectorError::AuthoritiesConfused);
        }
    }
    Ok(Some(pinned))
}

/// Whether a director key is a root, targets or release key: by key id, or by public key
/// material (the same key under another scheme name has another id).
fn is_offline_key(root: &Root, keyid: &KeyId, key: &Key) -> bool {
    let release = root
        .unrecognized
        .get(RELEASE_SIGNING_FIELD)
        .and_then(|value| ReleaseSigning::deserialize(value).ok());
    let role_keys = ["root", "targets"]
        .into_iter()
        .filter_map(|role| root.roles.get(role))
        .flat_map(|role| role.keyids.iter())
        .map(|id| (id, root.keys.get(id)));
    let release_keys = release
        .iter()
        .flat_map(|signing| signing.keys.iter())
        .map(|(id, key)| (id, Some(key)));
    role_keys.chain(release_keys).any(|(id, offline)| {
        id == keyid
            || offline
                .is_some_and(|offline| same_public_key(&offline.keyval.public, &key.keyval.public))
    })
}

/// What the director offers one device: a target of the repository, by name, with the length,
/// digest and release fields the repository lists for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorOffer {
    target_name: String,
    length: u64,
    hashes: OfferHashes,
    release_version: String,
    rollback_index: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OfferHashes {
    /// Lower-case hex.
    sha256: String,
}

impl DirectorOffer {
    /// The offer of a listed target: its name, length, SHA-256 and the release version and
    /// rollback index of its `custom.enigm` fields (Command's side, from the targets metadata
    /// it serves).
    pub fn for_listed(name: &str, file: &TargetFile) -> Result<DirectorOffer, DirectorError> {
        let fields = crate::release::listed_fields(file)
            .ok_or_else(|| malformed("the target carries no release fields"))?;
        let sha256 = file
            .hashes
            .get("sha256")
            .ok_or_else(|| malformed("the target has no SHA-256"))?;
        let offer = DirectorOffer {
            target_name: name.to_owned(),
            length: file.length,
            hashes: OfferHashes {
                sha256: sha256.to_ascii_lowercase(),
            },
            release_version: fields.release_version,
            rollback_index: fields.rollback_index,
        };
        offer.check()?;
        Ok(offer)
    }

    /// The offer of a release as Command declared it (its target name, length, SHA-256 and
    /// release fields, which its signing bound into the targets metadata): Command's side
    /// without parsing the targets metadata for each device. The device still compares every
    /// field with what the repository lists ([`agree`]).
    pub fn new(
        target_name: &str,
        length: u64,
        sha256: &str,
        release_version: &str,
        rollback_index: u64,
    ) -> Result<DirectorOffer, DirectorError> {
        let offer = DirectorOffer {
            target_name: target_name.to_owned(),
            length,
            hashes: OfferHashes {
                sha256: sha256.to_ascii_lowercase(),
            },
            release_version: release_version.to_owned(),
            rollback_index,
        };
        offer.check()?;
        Ok(offer)
    }

    /// [`DirectorOffer::for_listed`] of a verified target.
    pub fn for_target(target: &VerifiedTarget) -> Result<DirectorOffer, DirectorError> {
        Self::for_listed(target.name(), target.file())
    }

    pub fn target_name(&self) -> &str {
        &self.target_name
    }

    pub fn length(&self) -> u64 {
        self.length
    }

    /// Lower-case hex.
    pub fn sha256(&self) -> &str {
        &self.hashes.sha256
    }

    pub fn release_version(&self) -> &str {
        &self.release_version
    }

    pub fn rollback_index(&self) -> u64 {
        self.rollback_index
    }

    fn check(&self) -> Result<(), DirectorError> {
        TargetName::parse(&self.target_name).map_err(|_| malformed("unsafe target name"))?;
        if !is_lower_hex(&self.hashes.sha256) || self.hashes.sha256.len() != 64 {
            return Err(malformed("the SHA-256 is not 64 lower-case hex digits"));
        }
        if self.release_version.is_empty()
            || self.release_version.len() > MAX_RELEASE_VERSION_LEN
            || !self
                .release_version
                .bytes()
                .all(|byte| byte.is_ascii_graphic())
        {
            return Err(malformed("unreadable release version"));
        }
        Ok(())
    }
}

/// The `signed` part of a director answer. "No update" and "not eligible" are the same value
/// (`offer` `None`): there is no field for a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorAnswer {
    #[serde(rename = "_type")]
    kind_tag: String,
    spec_version: String,
    device: DeviceHandle,
    nonce: String,
    /// TUF time format.
    issued: String,
    /// TUF time format.
    expires: String,
    offer: Option<DirectorOffer>,
}

impl DirectorAnswer {
    /// The answer to `device`'s request with `nonce` (as the request's `Signature-Input`
    /// carries it), issued at `issued` (whole seconds) and valid for `lifetime` (at most
    /// [`MAX_ANSWER_LIFETIME`]; less than a second is malformed, as the times are whole
    /// seconds). `offer` is `None` both when there is nothing newer and when the device may not
    /// have it.
    pub fn new(
        device: DeviceHandle,
        nonce: &str,
        issued: Timestamp,
        lifetime: Duration,
        offer: Option<DirectorOffer>,
    ) -> Result<DirectorAnswer, DirectorError> {
        if lifetime > MAX_ANSWER_LIFETIME {
            return Err(DirectorError::LifetimeTooLong);
        }
        // Whole seconds first, so that the written expiry is exactly `lifetime` after the
        // written issue time, never a fraction of a second more.
        let issued = Timestamp::from_unix_millis(issued.unix_seconds().saturating_mul(1000));
        let answer = DirectorAnswer {
            kind_tag: ANSWER_TYPE.to_owned(),
            spec_version: ANSWER_SPEC_VERSION.to_owned(),
            device,
            nonce: nonce.to_owned(),
            issued: format_expiry(issued),
            expires: format_expiry(issued.saturating_add(lifetime)),
            offer,
        };
        answer.check()?;
        Ok(answer)
    }

    pub fn device(&self) -> &DeviceHandle {
        &self.device
    }

    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    pub fn offer(&self) -> Option<&DirectorOffer> {
        self.offer.as_ref()
    }

    /// When the answer was issued.
    pub fn issued(&self) -> Option<Timestamp> {
        parse_expiry(&self.issued)
    }

    /// When the answer stops being valid (exclusive).
    pub fn expires(&self) -> Option<Timestamp> {
        parse_expiry(&self.expires)
    }

    /// The checks of the document on its own: its type and version, the nonce's form, readable
    /// times in order, a lifetime within the maximum, and a well-formed offer. Returns the
    /// issue and expiry times.
    fn check(&self) -> Result<(Timestamp, Timestamp), DirectorError> {
        if self.kind_tag != ANSWER_TYPE {
            return Err(DirectorError::WrongType(self.kind_tag.clone()));
        }
        if self.spec_version.split('.').next() != Some("1") {
            return Err(malformed("unsupported spec_version"));
        }
        if self.nonce.is_empty()
            || self.nonce.len() > MAX_NONCE_LEN
            || !self
                .nonce
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        {
            return Err(malformed("the nonce is not 1 to 128 of `A-Z a-z 0-9 - _`"));
        }
        let (Some(issued), Some(expires)) = (self.issued(), self.expires()) else {
            return Err(malformed("unreadable issue or expiry time"));
        };
        if expires <= issued {
            return Err(malformed("the answer expires before it is issued"));
        }
        if expires.duration_since(issued) > MAX_ANSWER_LIFETIME {
            return Err(DirectorError::LifetimeTooLong);
        }
        if let Some(offer) = &self.offer {
            offer.check()?;
        }
        Ok((issued, expires))
    }
}

/// Signs `answer` with each signer (Command's director key, in a file or on the PKCS#11
/// token) and returns the envelope as OLPC canonical JSON: the bytes to send as they are.
pub fn sign_answer(
    answer: &DirectorAnswer,
    signers: &[&dyn MetadataSigner],
) -> Result<Vec<u8>, SignerError> {
    let envelope = sign_envelope(answer, signers)?;
    let value = serde_json::to_value(&envelope).map_err(|error| SignerError(error.to_string()))?;
    canonical_json(&value).map_err(|error| SignerError(error.to_string()))
}

/// Parses an answer without checking its signatures: at most [`MAX_ANSWER_BYTES`], in
/// canonical form, signatures in lower-case hex under distinct key ids, `_type`
/// `enigm-director`, no unknown fields, and the document's own checks (nonce form, times in
/// order, lifetime, offer). For the fuzzer and tools; a device calls [`verify_answer`].
pub fn parse_answer(bytes: &[u8]) -> Result<(Envelope, DirectorAnswer), DirectorError> {
    if bytes.len() > MAX_ANSWER_BYTES {
        return Err(DirectorError::TooLarge {
            limit: MAX_ANSWER_BYTES,
        });
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|error| malformed(&error))?;
    // One answer, one spelling: whitespace, key order, escapes and duplicate keys are all
    // refused, so that bytes that verify are the bytes the director signed.
    if canonical_json(&value).ok().as_deref() != Some(bytes) {
        return Err(malformed("not in canonical form"));
    }
    let envelope = Envelope::deserialize(&value).map_err(|error| malformed(&error))?;
    if envelope.signatures.iter().any(|signature| {
        !signature.unrecognized.is_empty()
            || !is_lower_hex(&signature.keyid)
            || !is_lower_hex(&signature.sig)
    }) {
        return Err(malformed("a signature is not two lower-case hex strings"));
    }
    if has_duplicate_signature_keyids(&envelope) {
        return Err(malformed("duplicate signature key ids"));
    }
    match envelope.signed.get("_type").and_then(Value::as_str) {
        Some(ANSWER_TYPE) => {}
        Some(other) => return Err(DirectorError::WrongType(other.to_owned())),
        None => return Err(malformed("no `_type`")),
    }
    // `offer` is written even when it is `null`: both kinds of answer have the same shape.
    if envelope.signed.get("offer").is_none() {
        return Err(malformed("no `offer`"));
    }
    let answer =
        DirectorAnswer::deserialize(&envelope.signed).map_err(|error| malformed(&error))?;
    answer.check()?;
    Ok((envelope, answer))
}

/// Verifies an answer on the device: [`parse_answer`], then the threshold of the pinned
/// director keys over the canonical `signed` part, the device's own handle, the nonce of the
/// request it sent, and the time (issued no later than [`MAX_CLOCK_SKEW`] ahead of `now`, not
/// expired at `now`).
pub fn verify_answer(
    bytes: &[u8],
    director: &DirectorKeys,
    expected_device: &DeviceHandle,
    expected_nonce: &str,
    now: Timestamp,
) -> Result<VerifiedDirectorAnswer, DirectorError> {
    let (envelope, answer) = parse_answer(bytes)?;
    check_threshold(
        ANSWER_TYPE,
        &envelope,
        &director.keys,
        &director.role_keys(),
    )
    .map_err(|error| match error {
        MetadataError::ThresholdNotMet {
            threshold, valid, ..
        } => DirectorError::ThresholdNotMet { threshold, valid },
        other => malformed(&other),
    })?;
    if answer.device != *expected_device {
        return Err(DirectorError::OtherDevice);
    }
    if answer.nonce != expected_nonce {
        return Err(DirectorError::OtherNonce);
    }
    let (issued, expires) = answer.check()?;
    if issued > now.saturating_add(MAX_CLOCK_SKEW) {
        return Err(DirectorError::IssuedInFuture);
    }
    if now >= expires {
        return Err(DirectorError::Expired);
    }
    Ok(VerifiedDirectorAnswer { answer })
}

/// An answer whose signatures met the pinned threshold, for this device and this request, and
/// current: only [`verify_answer`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDirectorAnswer {
    answer: DirectorAnswer,
}

impl VerifiedDirectorAnswer {
    pub fn answer(&self) -> &DirectorAnswer {
        &self.answer
    }

    pub fn offer(&self) -> Option<&DirectorOffer> {
        self.answer.offer.as_ref()
    }

    /// The search for the offered target through the repository's delegations, the one way a
    /// device looks a target up (`None` when nothing is offered). A search that ends without a
    /// target means the repository does not list it: pass `None` to [`agree`].
    pub fn target_search(&self, limits: Limits, now: Timestamp) -> Option<TargetSearch> {
        self.offer()
            .map(|offer| TargetSearch::new(&offer.target_name, limits, now))
    }
}

/// A target the director offered and the repository lists identically: only [`agree`] makes
/// one. The device still appraises its target as any release ([`crate::appraise_release`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreedOffer {
    target: VerifiedTarget,
    offer: DirectorOffer,
}

impl AgreedOffer {
    pub fn target(&self) -> &VerifiedTarget {
        &self.target
    }

    pub fn offer(&self) -> &DirectorOffer {
        &self.offer
    }
}

/// Why a device does not install what its director offered. One reason each, checked in this
/// order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Disagreement {
    #[error("the director offered nothing")]
    NoOffer,
    #[error("the repository does not list the offered target")]
    NotListed,
    #[error("the repository's target has another name than the offered one")]
    Name,
    #[error("the repository lists the offered target with another length")]
    Length,
    #[error("the repository lists the offered target with another SHA-256")]
    Sha256,
    #[error("the repository's target carries no readable release fields")]
    ReleaseFields,
    #[error("the repository lists the offered target with another release version")]
    ReleaseVersion,
    #[error("the repository lists the offered target with another rollback index")]
    RollbackIndex,
}

impl Disagreement {
    /// The audit and API reason of this disagreement.
    pub fn reason(self) -> ReasonCategory {
        match self {
            Disagreement::NoOffer | Disagreement::NotListed => ReasonCategory::UpdateNotFound,
            Disagreement::ReleaseFields => ReasonCategory::UpdateMalformed,
            Disagreement::Name
            | Disagreement::Length
            | Disagreement::Sha256
            | Disagreement::ReleaseVersion
            | Disagreement::RollbackIndex => ReasonCategory::UpdateMixAndMatch,
        }
    }
}

/// Whether the director's offer and the repository's verified target (`listed`, what the
/// search for the offered name found; `None` when it found nothing) agree on name, length,
/// SHA-256, release version and rollback index.
pub fn agree(
    answer: &VerifiedDirectorAnswer,
    listed: Option<&VerifiedTarget>,
) -> Result<AgreedOffer, Disagreement> {
    let offer = answer.offer().ok_or(Disagreement::NoOffer)?;
    let target = listed.ok_or(Disagreement::NotListed)?;
    if target.name() != offer.target_name {
        return Err(Disagreement::Name);
    }
    if target.length() != offer.length {
        return Err(Disagreement::Length);
    }
    // The offer's digest is lower case (parsed so); the repository's may be either.
    if !target
        .sha256()
        .is_some_and(|sha256| sha256.eq_ignore_ascii_case(offer.sha256()))
    {
        return Err(Disagreement::Sha256);
    }
    let fields = crate::release::release_fields(target).map_err(|_| Disagreement::ReleaseFields)?;
    if fields.release_version != offer.release_version {
        return Err(Disagreement::ReleaseVersion);
    }
    if fields.rollback_index != offer.rollback_index {
        return Err(Disagreement::RollbackIndex);
    }
    Ok(AgreedOffer {
        target: target.clone(),
        offer: offer.clone(),
    })
}

/// Why a device refuses a director answer (or its root's director pin).
/// [`DirectorError::reason`] gives the stable category the agent reports and Command audits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectorError {
    #[error("the director answer is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the director answer is malformed: {0}")]
    Malformed(String),
    #[error("the document is of type `{0}`, not a director answer")]
    WrongType(String),
    #[error("the root's director pin is malformed")]
    PinMalformed,
    #[error("the root pins a root, targets or release key as a director key")]
    AuthoritiesConfused,
    #[error("the director answer is not signed by {threshold} director keys ({valid} valid)")]
    ThresholdNotMet { threshold: u64, valid: u64 },
    #[error("the director answer is for another device")]
    OtherDevice,
    #[error("the director answer answers another request (its nonce is not this request's)")]
    OtherNonce,
    #[error("the director answer is valid for longer than the maximum")]
    LifetimeTooLong,
    #[error("the director answer was issued in the future")]
    IssuedInFuture,
    #[error("the director answer has expired")]
    Expired,
}

impl DirectorError {
    /// The audit and API reason of this refusal: the OTA categories a device already reports,
    /// and `replayed` for an answer to another request.
    pub fn reason(&self) -> ReasonCategory {
        match self {
            DirectorError::TooLarge { .. } => ReasonCategory::UpdateTooLarge,
            DirectorError::Malformed(_)
            | DirectorError::WrongType(_)
            | DirectorError::PinMalformed
            | DirectorError::LifetimeTooLong => ReasonCategory::UpdateMalformed,
            DirectorError::AuthoritiesConfused | DirectorError::ThresholdNotMet { .. } => {
                ReasonCategory::UpdateBadSignature
            }
            DirectorError::OtherDevice => ReasonCategory::UpdateMixAndMatch,
            DirectorError::OtherNonce => ReasonCategory::Replayed,
            // An answer that is not current at the device's clock, either way: what a freeze
            // attack serves, and what a wrong clock produces.
            DirectorError::IssuedInFuture | DirectorError::Expired => ReasonCategory::UpdateFreeze,
        }
    }
}

fn malformed(detail: &(impl std::fmt::Display + ?Sized)) -> DirectorError {
    DirectorError::Malformed(detail.to_string())
}

fn is_lower_hex(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests;
