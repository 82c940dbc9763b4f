//! Password and PIN rules: what an administrator may choose, parsed once into types that keep
//! the secret out of logs.

use std::fmt;

use rand_core::{CryptoRng, RngCore};
use secrecy::{ExposeSecret, SecretString};

/// A password that satisfies the policy: 12 to 256 characters, not only whitespace, no control
/// characters. `Debug` does not print it.
#[derive(Clone)]
pub struct Password(SecretString);

/// A PIN of exactly six ASCII digits. Built by [`Pin::parse`] (also refuses weak PINs, for
/// setting one), [`Pin::parse_entered`] (format only, for checking an entered PIN) or
/// [`Pin::random`]. `Debug` does not print it.
#[derive(Clone)]
pub struct Pin(SecretString);

/// Why a password was refused. Messages never include the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least {min} characters")]
    TooShort { min: usize },
    #[error("password must be at most {max} characters")]
    TooLong { max: usize },
    #[error("password must not be only whitespace or contain control characters")]
    Invalid,
}

/// Why a PIN was refused. Messages never include the PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("pin must be exactly 6 digits (0-9)")]
    Format,
    #[error(
        "pin is too easy to guess: it must not be a run (123456, 975319), a repeated or mirrored \
         group (121212, 123123, 123321, 112233, 111222) or a common keypad pattern (147258, \
         159753); choose six digits without a pattern"
    )]
    Weak,
}

impl Password {
    pub const MIN_CHARS: usize = 12;
    pub const MAX_CHARS: usize = 256;

    pub fn parse(input: &str) -> Result<Password, PasswordError> {
        // A char is at most 4 bytes, so these byte-length checks decide the obvious cases
        // before any per-character work: parsing huge input costs nothing.
        if input.len() < Self::MIN_CHARS {
            return Err(PasswordError::TooShort {
                min: Self::MIN_CHARS,
            });
        }
        if input.len() > Self::MAX_CHARS * 4 {
            return Err(PasswordError::TooLong {
                max: Self::MAX_CHARS,
            });
        }
        let chars = input.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(PasswordError::TooShort {
                min: Self::MIN_CHARS,
            });
        }
        if chars > Self::MAX_CHARS {
            return Err(PasswordError::TooLong {
                max: Self::MAX_CHARS,
            });
        }
        if input.chars().all(char::is_whitespace) || input.chars().any(char::is_control) {
            return Err(PasswordError::Invalid);
        }
        Ok(Password(SecretString::from(input)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

impl Pin {
    pub const LEN: usize = 6;

    /// For setting a PIN: six ASCII digits that are not [weak](is_weak_pin).
    pub fn parse(input: &str) -> Result<Pin, PinError> {
        let pin = Self::parse_entered(input)?;
        if is_weak_pin(pin.expose()) {
            return Err(PinError::Weak);
        }
        Ok(pin)
    }

    /// Only the format check, for verifying an entered PIN against a stored hash (weakness
    /// matters only when setting one).
    pub fn parse_entered(input: &str) -> Result<Pin, PinError> {
        if digits(input).is_none() {
            return Err(PinError::Format);
        }
        Ok(Pin(SecretString::from(input)))
    }

    /// A PIN drawn uniformly from all six-digit PINs that are not weak.
    pub fn random(rng: &mut (impl RngCore + CryptoRng)) -> Pin {
        // Rejection sampling twice over: values above the largest multiple of 10^6 below 2^32
        // would bias the low PINs, and weak PINs are redrawn. Both keep the remaining PINs
        // equally likely. About 0.2 % of PINs are weak, so the loop ends quickly.
        const SPACE: u32 = 1_000_000;
        const LIMIT: u32 = u32::MAX - u32::MAX % SPACE;
        loop {
            let value = rng.next_u32();
            if value >= LIMIT {
                continue;
            }
            let candidate = format!("{:06}", value % SPACE);
            if !is_weak_pin(&candidate) {
                return Pin(SecretString::from(candidate));
            }
        }
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(..)")
    }
}

/// Whether a six-digit PIN is among the first an attacker would try. Weak PINs are:
///
/// - arithmetic progressions of digits, modulo 10: one digit repeated (`444444`), ascending or
///   descending runs including wrapping ones (`123456`, `890123`, `987654`, `321098`) and
///   every-other-digit runs (`135791`, `246802`);
/// - a repeated pair (`121212`) or a repeated triple (`123123`);
/// - mirrored (`123321`);
/// - doubled or tripled digits (`112233`, `998877`, `111222`, `555777`);
/// - a short list of other common choices, mostly keypad patterns (`159753`, `147258`,
///   `258369`, `102030`).
///
/// Input that is not six ASCII digits is not a PIN at all and counts as weak, so that the
/// function fails closed if called before the format check.
pub fn is_weak_pin(digits_text: &str) -> bool {
    let Some(values) = digits(digits_text) else {
        return true;
    };
    let [a, b, c, d, e, f] = values;
    // Whether x, y, z step by the same amount, counting modulo 10 so that 9 -> 0 continues a run.
    let progression = |x: u8, y: u8, z: u8| (y + 10 - x) % 10 == (z + 10 - y) % 10;
    let arithmetic = values
        .windows(3)
        .all(|w| matches!(w, [x, y, z] if progression(*x, *y, *z)));
    let repeated_pair = a == c && c == e && b == d && d == f;
    let repeated_triple = a == d && b == e && c == f;
    let mirrored = a == f && b == e && c == d;
    let doubled = a == b && c == d && e == f && progression(a, c, e);
    let tripled = a == b && b == c && d == e && e == f;
    arithmetic
        || repeated_pair
        || repeated_triple
        || mirrored
        || doubled
        || tripled
        || COMMON_PINS.contains(&digits_text)
}

/// Common PINs that the structural rules above do not catch: keypad lines, crosses and
/// diagonals, and counting patterns.
const COMMON_PINS: &[&str] = &[
    "102030", "010203", "112358", "147258", "258369", "369258", "852741", "963852", "147852",
    "258963", "159753", "357159", "753951", "951357", "159357", "357951", "147369", "963741",
    "789456", "456123", "123654", "741852", "852963", "121314", "100200", "200300",
];

/// The six digit values of `input` if it is exactly six ASCII digits.
fn digits(input: &str) -> Option<[u8; Pin::LEN]> {
    let bytes: &[u8; Pin::LEN] = input.as_bytes().try_into().ok()?;
    if !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(bytes.map(|b| b - b'0'))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn weak_and_good_pins() {
        let cases = [
            // One digit repeated.
            ("000000", true),
            ("777777", true),
            // Ascending, descending, wrapping.
            ("012345", true),
            ("123456", true),
            ("456789", true),
            ("890123", true),
            ("987654", true),
            ("543210", true),
            ("321098", true),
            ("135791", true),
            ("246802", true),
            ("864208", true),
            // Repeated pair and triple.
            ("121212", true),
            ("101010", true),
            ("696969", true),
            ("123123", true),
            ("907907", true),
            // Mirrored.
            ("123321", true),
            ("908809", true),
            // Doubled and tripled.
            ("112233", true),
            ("998877", true),
            ("111222", true),
            ("555777", true),
            // Common list.
            ("102030", true),
            ("159753", true),
            ("147258", true),
            ("258369", true),
            ("112358", true),
            // Not six digits at all: fails closed.
            ("12345", true),
            ("1234567", true),
            ("12345a", true),
            ("", true),
            // Good ones.
            ("482915", false),
            ("730264", false),
            ("915372", false),
            ("260418", false),
            ("123457", false),
            ("112234", false),
            ("121213", false),
            ("123124", false),
            ("123320", false),
            ("111223", false),
        ];
        for (pin, weak) in cases {
            assert_eq!(is_weak_pin(pin), weak, "pin {pin}");
        }
    }

    #[test]
    fn common_list_entries_are_six_digits() {
        for pin in COMMON_PINS {
            assert!(digits(pin).is_some(), "{pin}");
        }
    }

    #[test]
    fn pin_parse_checks_format_then_weakness() {
        let cases: &[(&str, Result<(), PinError>)] = &[
            ("482915", Ok(())),
            ("123456", Err(PinError::Weak)),
            ("000000", Err(PinError::Weak)),
            ("", Err(PinError::Format)),
            ("48291", Err(PinError::Format)),
            ("4829155", Err(PinError::Format)),
            ("48291a", Err(PinError::Format)),
            (" 482915", Err(PinError::Format)),
            ("482915\n", Err(PinError::Format)),
            ("４８２９１５", Err(PinError::Format)),
            ("-48291", Err(PinError::Format)),
        ];
        for &(input, expected) in cases {
            assert_eq!(
                Pin::parse(input).map(|p| assert_eq!(p.expose(), input)),
                expected,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn a_weak_pin_refusal_states_the_rule_with_examples_it_refuses() {
        let message = PinError::Weak.to_string();
        assert!(
            message.starts_with("pin is too easy to guess: it must not be"),
            "{message}"
        );
        // Every example the message gives is itself refused, so the rule it states is true.
        let examples: Vec<&str> = message
            .split(|c: char| !c.is_ascii_digit())
            .filter(|word| word.len() == 6)
            .collect();
        assert_eq!(examples.len(), 9, "{message}");
        for example in examples {
            assert_eq!(
                Pin::parse(example).unwrap_err(),
                PinError::Weak,
                "{example}"
            );
        }
        assert!(message.ends_with("choose six digits without a pattern"));
    }

    #[test]
    fn entered_pins_skip_only_the_weakness_check() {
        assert_eq!(Pin::parse_entered("123456").unwrap().expose(), "123456");
        assert_eq!(Pin::parse_entered("482915").unwrap().expose(), "482915");
        for input in ["", "12345", "1234567", "12345x", "12 456"] {
            assert_eq!(
                Pin::parse_entered(input).unwrap_err(),
                PinError::Format,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn random_pins_are_never_weak_and_vary() {
        let mut rng = StdRng::seed_from_u64(99);
        let pins: Vec<Pin> = (0..20_000).map(|_| Pin::random(&mut rng)).collect();
        for pin in &pins {
            assert!(digits(pin.expose()).is_some());
            assert!(!is_weak_pin(pin.expose()), "{}", pin.expose());
            assert!(Pin::parse(pin.expose()).is_ok());
        }
        let mut distinct: Vec<&str> = pins.iter().map(Pin::expose).collect();
        distinct.sort_unstable();
        distinct.dedup();
        // 20 000 draws from ~998 000 PINs collide rarely (about 200 expected).
        assert!(distinct.len() > 19_000, "{}", distinct.len());
        // Every leading digit shows up, so low PINs are not favoured or skipped.
        for lead in b'0'..=b'9' {
            assert!(pins.iter().any(|p| p.expose().as_bytes()[0] == lead));
        }
    }

    #[test]
    fn password_limits() {
        let cases: Vec<(String, Result<(), PasswordError>)> = vec![
            ("correct horse".into(), Ok(())),
            ("a".repeat(12), Ok(())),
            ("a".repeat(11), Err(PasswordError::TooShort { min: 12 })),
            (String::new(), Err(PasswordError::TooShort { min: 12 })),
            // Characters, not bytes, are counted: 11 two-byte characters are too short.
            ("é".repeat(11), Err(PasswordError::TooShort { min: 12 })),
            ("é".repeat(12), Ok(())),
            ("a".repeat(256), Ok(())),
            ("😀".repeat(256), Ok(())),
            ("a".repeat(257), Err(PasswordError::TooLong { max: 256 })),
            ("😀".repeat(257), Err(PasswordError::TooLong { max: 256 })),
            (
                "a".repeat(10 * 1024 * 1024),
                Err(PasswordError::TooLong { max: 256 }),
            ),
            (" ".repeat(12), Err(PasswordError::Invalid)),
            ("\t \u{3000}         ".into(), Err(PasswordError::Invalid)),
            ("correct\u{0}horse".into(), Err(PasswordError::Invalid)),
            ("correct horse\n".into(), Err(PasswordError::Invalid)),
            ("correct\u{7f}horse".into(), Err(PasswordError::Invalid)),
            ("correct\u{9b}horse".into(), Err(PasswordError::Invalid)),
            ("  leading and trailing  ".into(), Ok(())),
        ];
        for (input, expected) in cases {
            let result = Password::parse(&input).map(|p| assert_eq!(p.expose(), input));
            assert_eq!(result, expected, "input {input:.40?}");
        }
    }

    #[test]
    fn debug_output_is_redacted() {
        let password = Password::parse("correct horse battery").unwrap();
        let pin = Pin::parse("482915").unwrap();
        assert_eq!(format!("{password:?}"), "Password(..)");
        assert_eq!(format!("{pin:?}"), "Pin(..)");
    }

    proptest! {
        #[test]
        fn password_parse_agrees_with_the_rules(input in "\\PC{0,300}|[\\x00-\\x20a]{0,20}") {
            let chars = input.chars().count();
            let expected = if chars < 12 {
                Err(PasswordError::TooShort { min: 12 })
            } else if chars > 256 {
                Err(PasswordError::TooLong { max: 256 })
            } else if input.chars().all(char::is_whitespace) || input.chars().any(char::is_control) {
                Err(PasswordError::Invalid)
            } else {
                Ok(())
            };
            prop_assert_eq!(Password::parse(&input).map(|_| ()), expected);
        }

        #[test]
        fn every_six_digit_string_parses_as_entered(value in 0u32..1_000_000) {
            let text = format!("{value:06}");
            let entered = Pin::parse_entered(&text).unwrap();
            prop_assert_eq!(entered.expose(), text.as_str());
            prop_assert_eq!(Pin::parse(&text).is_err(), is_weak_pin(&text));
        }
    }
}
