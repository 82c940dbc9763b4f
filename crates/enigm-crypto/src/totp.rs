//! Time-based one-time passwords (RFC 6238): HMAC-SHA-1, 6 digits, 30-second steps, which is
//! what common authenticator apps implement.
//!
//! Time comes in as unix seconds from the caller; the last accepted step is stored by the caller
//! and passed back in, so that a code cannot be used twice.

use std::fmt;

use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, RngCore};
use sha1::Sha1;
use zeroize::Zeroizing;

/// A TOTP shared secret: 20 random bytes (160 bits, the HMAC-SHA-1 output size that RFC 4226
/// recommends). Zeroized on drop.
#[derive(Clone)]
pub struct TotpSecret(Zeroizing<[u8; SECRET_LEN]>);

/// A TOTP time step (`unix_seconds / 30`). After a successful verification, store it and pass it
/// back as `last_used_step` so the same code cannot be replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TotpStep(pub i64);

/// Why a TOTP secret or code was refused. Messages never include the code or the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    #[error("one-time code must be 6 digits")]
    Malformed,
    #[error("one-time code does not match")]
    Mismatch,
    #[error("one-time code was already used")]
    Replayed,
    #[error("totp secret must be 20 bytes")]
    InvalidSecret,
}

/// Number of digits in a code.
pub const DIGITS: usize = 6;
/// Length of a time step in seconds.
pub const STEP_SECONDS: i64 = 30;
const SECRET_LEN: usize = 20;
/// 10^DIGITS.
const MODULUS: u32 = 1_000_000;
/// Steps accepted either side of the current one, for clock drift between server and phone.
const DRIFT_STEPS: i64 = 1;

impl TotpSecret {
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut bytes = Zeroizing::new([0u8; SECRET_LEN]);
        rng.fill_bytes(bytes.as_mut());
        TotpSecret(bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TotpError> {
        let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
        if bytes.len() != SECRET_LEN {
            return Err(TotpError::InvalidSecret);
        }
        secret.copy_from_slice(bytes);
        Ok(TotpSecret(secret))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_ref()
    }

    /// RFC 4648 base32 without padding: the form authenticator apps accept for manual entry.
    pub fn to_base32(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(self.as_bytes())
    }

    /// The `otpauth://` URI that authenticator apps read from a QR code. Issuer and account are
    /// percent-encoded, so a `:` or `&` in either cannot change the URI's structure.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        let issuer = percent_encode(issuer);
        format!(
            "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            account = percent_encode(account),
            secret = self.to_base32(),
        )
    }

    /// The code for the step containing `unix_seconds`: 6 digits, zero-padded.
    pub fn code_at(&self, unix_seconds: i64) -> String {
        self.code_for_step(step_of(unix_seconds))
    }

    fn code_for_step(&self, step: i64) -> String {
        format!(
            "{:0width$}",
            hotp(&self.0, step.cast_unsigned()),
            width = DIGITS
        )
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

/// Accepts the code for the current step or one step either side (clock drift); refuses a step
/// `<= last_used_step` (replay of a code already used). Returns the matched step to be stored.
///
/// All candidate steps are computed and compared in constant time before deciding, so the
/// response time does not reveal which step, if any, matched.
pub fn verify_totp(
    secret: &TotpSecret,
    code: &str,
    unix_seconds: i64,
    last_used_step: Option<i64>,
) -> Result<TotpStep, TotpError> {
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TotpError::Malformed);
    }
    let current = step_of(unix_seconds);
    let mut fresh_match = None;
    let mut replayed_match = false;
    for offset in -DRIFT_STEPS..=DRIFT_STEPS {
        let step = current.saturating_add(offset);
        let matches =
            crate::constant_time_eq(secret.code_for_step(step).as_bytes(), code.as_bytes());
        let already_used = last_used_step.is_some_and(|last| step <= last);
        // The earliest unused matching step wins: it is the one the user most likely read.
        if matches && !already_used && fresh_match.is_none() {
            fresh_match = Some(TotpStep(step));
        }
        replayed_match |= matches && already_used;
    }
    match (fresh_match, replayed_match) {
        (Some(step), _) => Ok(step),
        (None, true) => Err(TotpError::Replayed),
        (None, false) => Err(TotpError::Mismatch),
    }
}

fn step_of(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// HOTP (RFC 4226): HMAC-SHA-1 over the big-endian counter, dynamic truncation, modulo 10^6.
fn hotp(secret: &[u8; SECRET_LEN], counter: u64) -> u32 {
    // HMAC zero-pads keys shorter than the hash's 64-byte block, so padding here gives the same
    // MAC while letting us use the infallible fixed-size constructor.
    let mut key = Zeroizing::new([0u8; 64]);
    for (k, s) in key.iter_mut().zip(secret) {
        *k = *s;
    }
    let mut mac = <Hmac<Sha1> as hmac::digest::KeyInit>::new(&(*key).into());
    mac.update(&counter.to_be_bytes());
    let mut digest: [u8; 20] = mac.finalize().into_bytes().into();
    let [.., last] = digest;
    let offset = usize::from(last & 0x0f);
    // INVARIANT: offset <= 15 < 20, so rotating brings bytes offset..offset + 4 to the front.
    digest.rotate_left(offset);
    let [a, b, c, d, ..] = digest;
    (u32::from_be_bytes([a, b, c, d]) & 0x7fff_ffff) % MODULUS
}

/// Percent-encodes everything except RFC 3986 unreserved characters.
fn percent_encode(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for byte in input.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    const NOW: i64 = 1_795_321_500;

    fn secret() -> TotpSecret {
        TotpSecret::generate(&mut StdRng::seed_from_u64(42))
    }

    /// A step whose code differs from those of its neighbours, so window tests cannot pass by a
    /// one-in-a-million collision.
    fn step_with_distinct_neighbours(secret: &TotpSecret) -> i64 {
        let mut step = step_of(NOW);
        loop {
            let codes: Vec<String> = (step - 2..=step + 2)
                .map(|s| secret.code_for_step(s))
                .collect();
            let mut unique = codes.clone();
            unique.sort();
            unique.dedup();
            if unique.len() == codes.len() {
                return step;
            }
            step += 5;
        }
    }

    #[test]
    fn codes_are_six_ascii_digits() {
        let secret = secret();
        for t in [0, 1, 29, 30, NOW, i64::MAX, -1, i64::MIN] {
            let code = secret.code_at(t);
            assert_eq!(code.len(), 6, "{code}");
            assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");
        }
    }

    #[test]
    fn code_is_constant_within_a_step_and_changes_between_steps() {
        let secret = secret();
        let step = step_with_distinct_neighbours(&secret);
        let start = step * STEP_SECONDS;
        for t in start..start + STEP_SECONDS {
            assert_eq!(secret.code_at(t), secret.code_at(start));
        }
        assert_ne!(secret.code_at(start - 1), secret.code_at(start));
        assert_ne!(secret.code_at(start + STEP_SECONDS), secret.code_at(start));
    }

    #[test]
    fn different_secrets_give_different_codes() {
        let mut rng = StdRng::seed_from_u64(9);
        let a = TotpSecret::generate(&mut rng);
        let b = TotpSecret::generate(&mut rng);
        assert_ne!(a.as_bytes(), b.as_bytes());
        let differing = (0..20)
            .filter(|i| a.code_at(NOW + i * STEP_SECONDS) != b.code_at(NOW + i * STEP_SECONDS));
        assert!(differing.count() >= 19);
    }

    #[test]
    fn verify_accepts_one_step_of_drift_and_no_more() {
        let secret = secret();
        let step = step_with_distinct_neighbours(&secret);
        let now = step * STEP_SECONDS + 7;
        let cases: &[(i64, Result<TotpStep, TotpError>)] = &[
            (-2, Err(TotpError::Mismatch)),
            (-1, Ok(TotpStep(step - 1))),
            (0, Ok(TotpStep(step))),
            (1, Ok(TotpStep(step + 1))),
            (2, Err(TotpError::Mismatch)),
        ];
        for &(offset, expected) in cases {
            let code = secret.code_for_step(step + offset);
            assert_eq!(
                verify_totp(&secret, &code, now, None),
                expected,
                "offset {offset}"
            );
        }
    }

    #[test]
    fn verify_refuses_replay_of_a_used_step() {
        let secret = secret();
        let step = step_with_distinct_neighbours(&secret);
        let now = step * STEP_SECONDS;
        let code = secret.code_at(now);
        let used = verify_totp(&secret, &code, now, None).unwrap();
        assert_eq!(used, TotpStep(step));

        // Same code again, in the same step and in the next one (still within the window).
        assert_eq!(
            verify_totp(&secret, &code, now, Some(used.0)),
            Err(TotpError::Replayed)
        );
        assert_eq!(
            verify_totp(&secret, &code, now + STEP_SECONDS, Some(used.0)),
            Err(TotpError::Replayed)
        );
        // An older code is refused too once a later step was used.
        let previous = secret.code_for_step(step - 1);
        assert_eq!(
            verify_totp(&secret, &previous, now, Some(used.0)),
            Err(TotpError::Replayed)
        );
        // The next step's code is still fine.
        let next = secret.code_for_step(step + 1);
        assert_eq!(
            verify_totp(&secret, &next, now + STEP_SECONDS, Some(used.0)),
            Ok(TotpStep(step + 1))
        );
        // A wrong code stays a mismatch, not a replay.
        let wrong = if code == "000000" { "000001" } else { "000000" };
        assert_eq!(
            verify_totp(&secret, wrong, now, Some(used.0)),
            Err(TotpError::Mismatch)
        );
    }

    #[test]
    fn verify_rejects_malformed_codes() {
        let secret = secret();
        let code = secret.code_at(NOW);
        let huge = "1".repeat(1 << 20);
        let malformed = [
            "",
            "12345",
            "1234567",
            "12345a",
            " 123456",
            "123456 ",
            "12 456",
            "١٢٣٤٥٦",
            "+12345",
            "-12345",
            &huge,
        ];
        for input in malformed {
            assert_eq!(
                verify_totp(&secret, input, NOW, None),
                Err(TotpError::Malformed),
                "input {input:.20}"
            );
        }
        assert!(verify_totp(&secret, &code, NOW, None).is_ok());
    }

    #[test]
    fn secret_bytes_base32_and_uri() {
        let bytes: Vec<u8> = (0u8..20).collect();
        let secret = TotpSecret::from_bytes(&bytes).unwrap();
        assert_eq!(secret.as_bytes(), &bytes[..]);
        let b32 = secret.to_base32();
        assert_eq!(b32.len(), 32);
        assert!(!b32.contains('='));
        assert_eq!(
            data_encoding::BASE32_NOPAD.decode(b32.as_bytes()).unwrap(),
            bytes
        );

        assert_eq!(
            secret.otpauth_uri("Enigm Corp", "alice@site:1&x"),
            format!(
                "otpauth://totp/Enigm%20Corp:alice%40site%3A1%26x?secret={b32}&issuer=Enigm%20Corp&algorithm=SHA1&digits=6&period=30"
            )
        );
        assert_eq!(
            TotpSecret::from_bytes(&secret.as_bytes()[..19]).unwrap_err(),
            TotpError::InvalidSecret
        );
        assert_eq!(
            TotpSecret::from_bytes(&[0; 21]).unwrap_err(),
            TotpError::InvalidSecret
        );
        assert_eq!(
            TotpSecret::from_bytes(&[]).unwrap_err(),
            TotpError::InvalidSecret
        );
    }

    #[test]
    fn debug_output_hides_the_secret() {
        assert_eq!(format!("{:?}", secret()), "TotpSecret(..)");
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        let cases = [
            ("abcXYZ019-._~", "abcXYZ019-._~"),
            ("a b", "a%20b"),
            ("é", "%C3%A9"),
            ("?#/", "%3F%23%2F"),
        ];
        for (input, expected) in cases {
            assert_eq!(percent_encode(input), expected);
        }
    }

    proptest! {
        #[test]
        fn the_code_of_now_always_verifies(seed in any::<u64>(), now in 0i64..4_102_444_800) {
            let secret = TotpSecret::generate(&mut StdRng::seed_from_u64(seed));
            let code = secret.code_at(now);
            // A neighbouring step with the same code (a one-in-a-million event) would make the
            // replay check below legitimately accept the neighbour.
            prop_assume!(secret.code_at(now - STEP_SECONDS) != code && secret.code_at(now + STEP_SECONDS) != code);
            prop_assert_eq!(code.len(), 6);
            let step = verify_totp(&secret, &code, now, None).unwrap();
            // The step found is in the window, and using it again is refused.
            prop_assert!((step.0 - step_of(now)).abs() <= 1);
            prop_assert_eq!(verify_totp(&secret, &code, now, Some(step.0)), Err(TotpError::Replayed));
        }

        #[test]
        fn verify_never_panics(code in ".{0,12}", now in any::<i64>(), last in proptest::option::of(any::<i64>())) {
            let result = verify_totp(&secret(), &code, now, last);
            if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
                prop_assert_eq!(result, Err(TotpError::Malformed));
            }
        }
    }
}
