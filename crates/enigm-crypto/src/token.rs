//! Bearer tokens for administrator sessions and their SHA-256 digests.
//!
//! The server hands the token text to the client once and stores only its [`TokenDigest`], so a
//! leaked database does not leak usable sessions. Tokens carry 256 bits of entropy, which is why
//! a plain (unsalted, fast) hash is enough: there is nothing to guess offline.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::{CryptoRng, RngCore};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A bearer token: `enigm_` followed by the unpadded base64url encoding of 32 random bytes.
#[derive(Clone)]
pub struct BearerToken(SecretString);

/// The SHA-256 digest of a token's text: what the server stores and looks sessions up by.
#[derive(Clone, Copy)]
pub struct TokenDigest([u8; 32]);

/// Why a string is not a bearer token. Messages never include the input, which may be a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenFormatError {
    #[error("token does not start with `enigm_`")]
    Prefix,
    #[error("token has the wrong length")]
    Length,
    #[error("token contains characters outside base64url")]
    Alphabet,
}

/// Why a string is not a hex-encoded token digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("token digest must be 64 hexadecimal characters")]
pub struct DigestFormatError;

impl BearerToken {
    pub const PREFIX: &'static str = "enigm_";
    /// Random bytes behind each token.
    pub const ENTROPY_BYTES: usize = 32;
    /// Length of the token text: the prefix plus 43 base64url characters for 32 bytes.
    pub const LEN: usize = Self::PREFIX.len() + (Self::ENTROPY_BYTES * 4).div_ceil(3);

    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut bytes = zeroize::Zeroizing::new([0u8; Self::ENTROPY_BYTES]);
        rng.fill_bytes(bytes.as_mut());
        let mut text = String::with_capacity(Self::LEN);
        text.push_str(Self::PREFIX);
        URL_SAFE_NO_PAD.encode_string(bytes.as_ref(), &mut text);
        BearerToken(SecretString::from(text))
    }

    /// Parses a token presented by a client. Work is bounded whatever the input: the prefix and
    /// the length are checked before any character is looked at.
    pub fn parse(input: &str) -> Result<Self, TokenFormatError> {
        let Some(body) = input.strip_prefix(Self::PREFIX) else {
            return Err(TokenFormatError::Prefix);
        };
        if input.len() != Self::LEN {
            return Err(TokenFormatError::Length);
        }
        if !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(TokenFormatError::Alphabet);
        }
        // 43 characters carry 258 bits, so the last character has two spare bits. Decoding
        // rejects text where they are set, which keeps the encoding of each token unique: two
        // different strings can never name the same 32 bytes.
        let mut decoded = zeroize::Zeroizing::new([0u8; Self::ENTROPY_BYTES]);
        match URL_SAFE_NO_PAD.decode_slice(body, decoded.as_mut()) {
            Ok(Self::ENTROPY_BYTES) => Ok(BearerToken(SecretString::from(input))),
            _ => Err(TokenFormatError::Alphabet),
        }
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn digest(&self) -> TokenDigest {
        TokenDigest(sha256(self.expose().as_bytes()))
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(..)")
    }
}

impl TokenDigest {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        TokenDigest(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hexadecimal, 64 characters.
    pub fn to_hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.0)
    }

    /// Accepts exactly 64 hexadecimal characters, in either case.
    pub fn from_hex(hex: &str) -> Result<Self, DigestFormatError> {
        if hex.len() != 64 {
            return Err(DigestFormatError);
        }
        let mut bytes = [0u8; 32];
        match data_encoding::HEXLOWER_PERMISSIVE.decode_mut(hex.as_bytes(), &mut bytes) {
            Ok(32) => Ok(TokenDigest(bytes)),
            _ => Err(DigestFormatError),
        }
    }
}

impl PartialEq for TokenDigest {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

impl Eq for TokenDigest {}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenDigest({})", self.to_hex())
    }
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// SHA-512 (TUF metadata may name it instead of, or besides, SHA-256).
pub fn sha512(bytes: &[u8]) -> [u8; 64] {
    sha2::Sha512::digest(bytes).into()
}

/// SHA-256 over a stream fed in chunks, for artifacts too large to hold in memory. The same
/// implementation as [`sha256`] (the `sha2` crate picks SHA-NI at run time where the CPU has it).
#[derive(Clone, Default)]
pub struct Sha256Stream(Sha256);

impl Sha256Stream {
    pub fn new() -> Self {
        Sha256Stream(Sha256::new())
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.0.update(chunk);
    }

    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// SHA-512 over a stream.
#[derive(Clone, Default)]
pub struct Sha512Stream(sha2::Sha512);

impl Sha512Stream {
    pub fn new() -> Self {
        Sha512Stream(sha2::Sha512::new())
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.0.update(chunk);
    }

    pub fn finish(self) -> [u8; 64] {
        self.0.finalize().into()
    }
}

impl std::fmt::Debug for Sha512Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha512Stream")
    }
}

impl std::fmt::Debug for Sha256Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha256Stream")
    }
}

/// Compares two byte strings in time that depends only on their lengths, never on where they
/// first differ. Inputs of different lengths are unequal.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn generated_tokens_have_the_documented_shape_and_parse() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..64 {
            let token = BearerToken::generate(&mut rng);
            assert_eq!(token.expose().len(), BearerToken::LEN);
            assert_eq!(BearerToken::LEN, 49);
            assert!(token.expose().starts_with("enigm_"));
            let parsed = BearerToken::parse(token.expose()).unwrap();
            assert_eq!(parsed.expose(), token.expose());
            assert_eq!(parsed.digest(), token.digest());
        }
    }

    #[test]
    fn distinct_tokens_have_distinct_digests() {
        let mut rng = StdRng::seed_from_u64(2);
        let digests: Vec<TokenDigest> = (0..32)
            .map(|_| BearerToken::generate(&mut rng).digest())
            .collect();
        for (i, a) in digests.iter().enumerate() {
            for b in &digests[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn digest_is_sha256_of_the_token_text() {
        let token = BearerToken::generate(&mut StdRng::seed_from_u64(3));
        assert_eq!(
            token.digest().as_bytes(),
            &sha256(token.expose().as_bytes())
        );
        let hex = token.digest().to_hex();
        assert_eq!(hex.len(), 64);
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(TokenDigest::from_hex(&hex).unwrap(), token.digest());
        assert_eq!(
            TokenDigest::from_hex(&hex.to_uppercase()).unwrap(),
            token.digest()
        );
    }

    #[test]
    fn parse_rejects_malformed_tokens() {
        let valid = BearerToken::generate(&mut StdRng::seed_from_u64(4))
            .expose()
            .to_owned();
        let body = &valid[6..];
        let huge = format!("enigm_{}", "A".repeat(10 * 1024 * 1024));
        let cases: Vec<(String, TokenFormatError)> = vec![
            (String::new(), TokenFormatError::Prefix),
            (body.to_owned(), TokenFormatError::Prefix),
            (format!("Enigm_{body}"), TokenFormatError::Prefix),
            (format!("enigm-{body}"), TokenFormatError::Prefix),
            (format!(" {valid}"), TokenFormatError::Prefix),
            ("enigm_".to_owned(), TokenFormatError::Length),
            (
                valid[..valid.len() - 1].to_owned(),
                TokenFormatError::Length,
            ),
            (format!("{valid}A"), TokenFormatError::Length),
            (format!("{valid} "), TokenFormatError::Length),
            (huge, TokenFormatError::Length),
            (
                format!("enigm_{}=", &body[..42]),
                TokenFormatError::Alphabet,
            ),
            (
                format!("enigm_{}+", &body[..42]),
                TokenFormatError::Alphabet,
            ),
            (
                format!("enigm_{}/", &body[..42]),
                TokenFormatError::Alphabet,
            ),
            (
                format!("enigm_{}.", &body[..42]),
                TokenFormatError::Alphabet,
            ),
            // A multi-byte character keeps the byte length right but is not base64url.
            (
                format!("enigm_{}é", &body[..41]),
                TokenFormatError::Alphabet,
            ),
            // Non-canonical last character: the spare low bits are set.
            (
                format!("enigm_{}B", &"A".repeat(42)),
                TokenFormatError::Alphabet,
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                BearerToken::parse(&input).unwrap_err(),
                expected,
                "input: {:.60}",
                input
            );
        }
        assert!(BearerToken::parse(&format!("enigm_{}A", &"A".repeat(42))).is_ok());
    }

    #[test]
    fn from_hex_rejects_malformed_digests() {
        let cases = [
            "",
            "00",
            &"0".repeat(63),
            &"0".repeat(65),
            &"g".repeat(64),
            &format!("{}é", "0".repeat(62)),
        ];
        for input in cases {
            assert_eq!(
                TokenDigest::from_hex(input),
                Err(DigestFormatError),
                "input: {input}"
            );
        }
        assert_eq!(
            TokenDigest::from_hex(&"0".repeat(64)),
            Ok(TokenDigest::from_bytes([0; 32]))
        );
    }

    #[test]
    fn debug_output_hides_the_token_but_shows_the_digest() {
        let token = BearerToken::generate(&mut StdRng::seed_from_u64(5));
        assert_eq!(format!("{token:?}"), "BearerToken(..)");
        let digest = token.digest();
        assert_eq!(
            format!("{digest:?}"),
            format!("TokenDigest({})", digest.to_hex())
        );
    }

    #[test]
    fn constant_time_eq_compares_contents_and_lengths() {
        let cases: &[(&[u8], &[u8], bool)] = &[
            (b"", b"", true),
            (b"abc", b"abc", true),
            (b"abc", b"abd", false),
            (b"abc", b"ab", false),
            (b"", b"a", false),
        ];
        for &(a, b, expected) in cases {
            assert_eq!(constant_time_eq(a, b), expected);
        }
    }

    #[test]
    fn sha256_distinguishes_inputs_and_is_deterministic() {
        assert_eq!(sha256(b"enigm"), sha256(b"enigm"));
        assert_ne!(sha256(b"enigm"), sha256(b"enign"));
        assert_ne!(sha256(b""), [0u8; 32]);
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_accepts_only_well_formed_text(input in ".*") {
            if let Ok(token) = BearerToken::parse(&input) {
                prop_assert_eq!(token.expose(), input.as_str());
                prop_assert_eq!(input.len(), BearerToken::LEN);
                prop_assert!(input.starts_with(BearerToken::PREFIX));
            }
        }

        #[test]
        fn parse_accepts_exactly_prefixed_canonical_base64url(bytes in proptest::array::uniform32(any::<u8>())) {
            let text = format!("enigm_{}", URL_SAFE_NO_PAD.encode(bytes));
            let token = BearerToken::parse(&text).unwrap();
            prop_assert_eq!(token.expose(), text.as_str());
        }

        #[test]
        fn parse_of_near_tokens_accepts_only_the_right_length(body in "[A-Za-z0-9_=+/ -]{40,46}") {
            let input = format!("enigm_{body}");
            if let Ok(token) = BearerToken::parse(&input) {
                prop_assert_eq!(token.expose().len(), BearerToken::LEN);
            }
        }

        #[test]
        fn from_hex_round_trips(bytes in proptest::array::uniform32(any::<u8>())) {
            let digest = TokenDigest::from_bytes(bytes);
            prop_assert_eq!(TokenDigest::from_hex(&digest.to_hex()).unwrap(), digest);
        }
    }
}
