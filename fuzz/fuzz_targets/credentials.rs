//! Fuzzes the parsers of credential and identifier text that reaches Command from clients or
//! from storage: bearer tokens, PINs, passwords, usernames, justifications, record ids, role and
//! approval names, token digests, argon2 PHC strings and TOTP codes.
//!
//! The input is read as UTF-8 (invalid sequences replaced), as the server does with header and
//! body text. Besides "never panics", each parser is checked against a plain restatement of its
//! documented rule, and parsed values must round-trip through their text form.

#![no_main]

use std::str::FromStr;

use enigm_crypto::{BearerToken, SecretHash, TokenDigest, TotpSecret, TotpStep, verify_totp};
use enigm_identity::{Password, Pin, is_weak_pin};
use enigm_types::{
    AdminId, ApprovalId, ApprovalKind, ApprovalState, AuditEventId, Justification, Role, SessionId,
    Username,
};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;

/// A fixed TOTP secret: exactly 20 bytes, made up for this target.
const TOTP_SECRET: &[u8; 20] = b"enigm fuzz totp key!";
/// A fixed "now" for the plain TOTP check: 2026-01-01T00:00:00Z.
const NOW: i64 = 1_767_225_600;
/// TOTP time step, in seconds.
const STEP_SECONDS: i64 = 30;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    bearer_token(&text);
    token_digest(&text);
    pin(&text);
    password(&text);
    username(&text);
    justification(&text);
    ids(&text);
    names(&text);
    phc_string(&text);
    totp(data, &text);
});

fn bearer_token(text: &str) {
    let Ok(token) = BearerToken::parse(text) else {
        return;
    };
    assert_eq!(token.expose(), text);
    assert_eq!(text.len(), BearerToken::LEN);
    assert!(text.starts_with(BearerToken::PREFIX));
    let digest = token.digest();
    assert_eq!(TokenDigest::from_hex(&digest.to_hex()), Ok(digest));
}

fn token_digest(text: &str) {
    let well_formed = text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit());
    match TokenDigest::from_hex(text) {
        Ok(digest) => {
            assert!(well_formed, "accepted a malformed digest: {text:?}");
            assert_eq!(digest.to_hex(), text.to_ascii_lowercase());
        }
        Err(_) => assert!(!well_formed, "refused a well-formed digest: {text:?}"),
    }
}

fn pin(text: &str) {
    let six_digits = text.len() == Pin::LEN && text.bytes().all(|b| b.is_ascii_digit());
    match Pin::parse_entered(text) {
        Ok(pin) => {
            assert!(six_digits, "accepted an entered pin that is not 6 digits");
            assert_eq!(pin.expose(), text);
        }
        Err(_) => assert!(!six_digits, "refused an entered pin of 6 digits"),
    }
    match Pin::parse(text) {
        Ok(pin) => {
            assert!(
                six_digits && !is_weak_pin(text),
                "accepted a malformed or weak pin"
            );
            assert_eq!(pin.expose(), text);
        }
        Err(_) => assert!(!six_digits || is_weak_pin(text), "refused a good pin"),
    }
}

fn password(text: &str) {
    let chars = text.chars().count();
    let acceptable = (Password::MIN_CHARS..=Password::MAX_CHARS).contains(&chars)
        && !text.chars().all(char::is_whitespace)
        && !text.chars().any(char::is_control);
    match Password::parse(text) {
        Ok(password) => {
            assert!(acceptable, "accepted a password against the policy");
            assert_eq!(password.expose(), text);
        }
        Err(_) => assert!(!acceptable, "refused a password within the policy"),
    }
}

fn username(text: &str) {
    let Ok(username) = Username::parse(text) else {
        return;
    };
    assert_eq!(username.as_str(), text);
    assert_eq!(Username::parse(username.as_str()), Ok(username.clone()));
    let json = serde_json::to_string(&username).expect("a username serialises");
    let back: Username = serde_json::from_str(&json).expect("a serialised username parses");
    assert_eq!(back, username);
}

fn justification(text: &str) {
    let Ok(justification) = Justification::parse(text) else {
        return;
    };
    assert_eq!(justification.as_str(), text.trim());
    let chars = justification.as_str().chars().count();
    assert!((1..=Justification::MAX_CHARS).contains(&chars));
    assert_eq!(
        Justification::parse(justification.as_str()),
        Ok(justification.clone()),
        "parsing a justification is not idempotent"
    );
}

fn ids(text: &str) {
    id_round_trips::<AdminId>(text);
    id_round_trips::<SessionId>(text);
    id_round_trips::<ApprovalId>(text);
    id_round_trips::<AuditEventId>(text);
}

/// Ids accept only their canonical spelling, so a parsed id displays as exactly the input; and
/// JSON (bodies, query strings, stored rows) accepts exactly the spellings that text parsing does.
fn id_round_trips<T>(text: &str)
where
    T: FromStr + std::fmt::Display + PartialEq + std::fmt::Debug + DeserializeOwned,
    T::Err: std::fmt::Debug,
{
    let parsed = text.parse::<T>().ok();
    let json = serde_json::to_string(text).expect("a string serialises");
    assert_eq!(
        serde_json::from_str::<T>(&json).ok(),
        parsed,
        "JSON and text parsing disagree on {json}"
    );
    let Some(id) = parsed else {
        return;
    };
    let shown = id.to_string();
    assert_eq!(shown, text, "id accepted in a non-canonical spelling");
    assert_eq!(shown.parse::<T>().ok(), Some(id));
}

/// Role and approval names from paths and query strings: only the exact names parse.
fn names(text: &str) {
    if let Ok(role) = text.parse::<Role>() {
        assert_eq!(role.as_str(), text);
    }
    if let Ok(kind) = text.parse::<ApprovalKind>() {
        assert_eq!(kind.as_str(), text);
    }
    if let Ok(state) = text.parse::<ApprovalState>() {
        assert_eq!(state.as_str(), text);
    }
}

/// Stored password and PIN hashes. Only parsing is fuzzed: verifying runs argon2 at the cost the
/// string names, which is far too slow for a fuzzer even within the accepted bounds.
fn phc_string(text: &str) {
    if let Ok(hash) = SecretHash::from_phc(text.to_owned()) {
        assert_eq!(hash.as_str(), text);
        assert!(text.starts_with("$argon2id$v=19$"), "accepted {text:?}");
    }
}

/// TOTP codes: once at a fixed time with no previous step, and once at a time and last-used step
/// taken from the input (including extreme values), with the code from the rest of the input.
fn totp(data: &[u8], text: &str) {
    let secret = TotpSecret::from_bytes(TOTP_SECRET).expect("the fixed secret is 20 bytes");
    check_totp(&secret, text, NOW, None);

    let Some((now, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let Some((last, rest)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let Some((&flag, code)) = rest.split_first() else {
        return;
    };
    let now = i64::from_le_bytes(*now);
    let last = (flag & 1 == 1).then_some(i64::from_le_bytes(*last));
    check_totp(&secret, &String::from_utf8_lossy(code), now, last);
}

fn check_totp(secret: &TotpSecret, code: &str, now: i64, last: Option<i64>) {
    let current = now.div_euclid(STEP_SECONDS);
    if let Ok(TotpStep(step)) = verify_totp(secret, code, now, last) {
        assert!(
            (step - current).abs() <= 1,
            "accepted step {step} at current step {current}"
        );
        assert!(
            last.is_none_or(|last| step > last),
            "accepted a replayed step"
        );
        if let Some(at) = step.checked_mul(STEP_SECONDS) {
            assert_eq!(secret.code_at(at), code, "accepted a code of another step");
        }
    }
    // The right code for "now" is always accepted when nothing was used before.
    let expected = secret.code_at(now);
    assert!(
        verify_totp(secret, &expected, now, None).is_ok(),
        "refused the current code at {now}"
    );
}
