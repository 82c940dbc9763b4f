//! Argon2id hashing of administrator passwords and PINs, stored as PHC strings.
//!
//! Verification reads the cost parameters from the stored PHC string, so hashes made under an
//! older or cheaper [`HashCost`] keep verifying after the configured cost changes.

use std::fmt;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand_core::{CryptoRng, RngCore};

/// How much work one hash costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashCost {
    /// argon2id with m = 19456 KiB, t = 2, p = 1: the OWASP recommendation.
    Production,
    /// argon2id with m = 256 KiB, t = 1, p = 1. Cheap enough for test suites that hash on every
    /// login; never use it for real credentials.
    Test,
}

/// Hashes and verifies secrets with argon2id at a chosen [`HashCost`].
#[derive(Clone)]
pub struct SecretHasher {
    cost: HashCost,
    argon2: Argon2<'static>,
}

/// Evidence that a secret matched a stored hash. Only [`SecretHasher::verify`] can make one.
#[derive(Debug)]
pub struct SecretMatch {
    _private: (),
}

/// An argon2id hash in PHC string format, e.g. `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`.
///
/// Built only by hashing or by [`SecretHash::from_phc`], which checks the string, so every value
/// is an argon2id hash with parameters this crate is willing to run.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash(String);

/// Why a secret could not be hashed, or why a stored string is not an acceptable hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("secret hashing failed")]
    Hashing,
    #[error("stored hash is not a valid PHC string")]
    Malformed,
    #[error("stored hash is not argon2id version 19")]
    UnsupportedAlgorithm,
    #[error("stored hash has cost parameters outside the accepted bounds")]
    UnsupportedParameters,
}

/// Why a secret did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("secret does not match")]
    Mismatch,
    #[error("stored hash is malformed")]
    Malformed,
}

/// The largest memory cost accepted from a stored hash, in KiB (256 MiB). A stored hash is read
/// from the database on every login, so a corrupted or planted one with a huge `m` must not be
/// able to exhaust the server's memory.
const MAX_M_COST_KIB: u32 = 256 * 1024;
/// The largest iteration count accepted from a stored hash, for the same reason as memory.
const MAX_T_COST: u32 = 16;
/// The largest parallelism accepted from a stored hash.
const MAX_P_COST: u32 = 16;
/// Salt length for new hashes, as recommended by the PHC string format.
const SALT_LEN: usize = 16;
/// Output length of new hashes and of the dummy verification.
const OUTPUT_LEN: usize = 32;
/// Fixed salt for [`SecretHasher::verify_dummy`]. It never protects a real secret, so it may be
/// public and constant.
const DUMMY_SALT: &[u8; SALT_LEN] = b"enigm-dummy-salt";

impl HashCost {
    fn params(self) -> Params {
        let (m_cost, t_cost, p_cost) = match self {
            HashCost::Production => (19_456, 2, 1),
            HashCost::Test => (256, 1, 1),
        };
        // INVARIANT: both parameter sets are within argon2's documented bounds, so `new` cannot
        // fail. Should that ever change, falling back to argon2's defaults (the OWASP set) keeps
        // hashing working at a safe cost instead of panicking.
        Params::new(m_cost, t_cost, p_cost, Some(OUTPUT_LEN)).unwrap_or(Params::DEFAULT)
    }
}

impl SecretHasher {
    pub fn new(cost: HashCost) -> Self {
        SecretHasher {
            cost,
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, cost.params()),
        }
    }

    pub fn cost(&self) -> HashCost {
        self.cost
    }

    /// Hashes `secret` with a fresh random salt at this hasher's cost.
    pub fn hash(
        &self,
        secret: &[u8],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<SecretHash, HashError> {
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|_| HashError::Hashing)?;
        let hash = self
            .argon2
            .hash_password(secret, &salt)
            .map_err(|_| HashError::Hashing)?;
        Ok(SecretHash(hash.to_string()))
    }

    /// Ok(SecretMatch) only when `secret` matches `hash`. The cost parameters, salt and output
    /// length come from `hash`, and the final comparison is constant-time.
    pub fn verify(&self, secret: &[u8], hash: &SecretHash) -> Result<SecretMatch, VerifyError> {
        let parsed = PasswordHash::new(hash.as_str()).map_err(|_| VerifyError::Malformed)?;
        match self.argon2.verify_password(secret, &parsed) {
            Ok(()) => Ok(SecretMatch { _private: () }),
            Err(argon2::password_hash::Error::Password) => Err(VerifyError::Mismatch),
            Err(_) => Err(VerifyError::Malformed),
        }
    }

    /// Spends the same work as a real verification at this hasher's cost and always returns
    /// [`VerifyError::Mismatch`]. Call it when the account does not exist, so that the response
    /// time does not tell an attacker which usernames are real.
    pub fn verify_dummy(&self, secret: &[u8]) -> VerifyError {
        let mut output = [0u8; OUTPUT_LEN];
        // The result is deliberately ignored: whatever happens, the answer is "no match". The
        // output is still consumed so the work cannot be optimised away.
        let _ = self
            .argon2
            .hash_password_into(secret, DUMMY_SALT, &mut output);
        std::hint::black_box(&output);
        VerifyError::Mismatch
    }
}

impl fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretHasher")
            .field("cost", &self.cost)
            .finish_non_exhaustive()
    }
}

impl SecretHash {
    /// Accepts a stored PHC string if it is a complete argon2id (version 19) hash whose cost
    /// parameters are within the bounds this crate will run.
    pub fn from_phc(s: String) -> Result<Self, HashError> {
        let parsed = PasswordHash::new(&s).map_err(|_| HashError::Malformed)?;
        if !matches!(
            Algorithm::try_from(parsed.algorithm),
            Ok(Algorithm::Argon2id)
        ) {
            return Err(HashError::UnsupportedAlgorithm);
        }
        if parsed.version != Some(u32::from(Version::V0x13)) {
            return Err(HashError::UnsupportedAlgorithm);
        }
        // Without a salt or an output the verifier would report every secret as a mismatch,
        // hiding a corrupted record; refuse such strings here instead.
        if parsed.salt.is_none() || parsed.hash.is_none() {
            return Err(HashError::Malformed);
        }
        let params = Params::try_from(&parsed).map_err(|_| HashError::Malformed)?;
        if params.m_cost() > MAX_M_COST_KIB
            || params.t_cost() > MAX_T_COST
            || params.p_cost() > MAX_P_COST
        {
            return Err(HashError::UnsupportedParameters);
        }
        Ok(SecretHash(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The hash is offline-crackable material: keep it out of logs.
        f.write_str("SecretHash(..)")
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    #[test]
    fn hash_then_verify_round_trips() {
        let hasher = SecretHasher::new(HashCost::Test);
        let hash = hasher
            .hash(b"correct horse battery staple", &mut rng())
            .unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=256,t=1,p=1$"));
        assert!(
            hasher
                .verify(b"correct horse battery staple", &hash)
                .is_ok()
        );
    }

    #[test]
    fn wrong_secret_is_a_mismatch() {
        let hasher = SecretHasher::new(HashCost::Test);
        let hash = hasher.hash(b"123456", &mut rng()).unwrap();
        for wrong in [&b"123457"[..], b"", b"1234567", b"123456 "] {
            assert_eq!(
                hasher.verify(wrong, &hash).unwrap_err(),
                VerifyError::Mismatch
            );
        }
    }

    #[test]
    fn same_secret_gets_a_fresh_salt_each_time() {
        let hasher = SecretHasher::new(HashCost::Test);
        let mut rng = rng();
        let a = hasher.hash(b"secret", &mut rng).unwrap();
        let b = hasher.hash(b"secret", &mut rng).unwrap();
        assert_ne!(a, b);
        assert!(hasher.verify(b"secret", &a).is_ok());
        assert!(hasher.verify(b"secret", &b).is_ok());
    }

    #[test]
    fn parameters_come_from_the_stored_hash() {
        // A hash made at Test cost verifies with a Production hasher and the other way round:
        // the hasher's own cost only applies to new hashes.
        let test_hash = SecretHasher::new(HashCost::Test)
            .hash(b"pin", &mut rng())
            .unwrap();
        assert!(
            SecretHasher::new(HashCost::Production)
                .verify(b"pin", &test_hash)
                .is_ok()
        );

        let stored = SecretHash::from_phc(test_hash.as_str().to_owned()).unwrap();
        assert!(
            SecretHasher::new(HashCost::Test)
                .verify(b"pin", &stored)
                .is_ok()
        );
        assert_eq!(
            SecretHasher::new(HashCost::Test)
                .verify(b"pun", &stored)
                .unwrap_err(),
            VerifyError::Mismatch
        );
    }

    #[test]
    fn production_cost_uses_owasp_parameters() {
        let params = HashCost::Production.params();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (19_456, 2, 1)
        );
        let params = HashCost::Test.params();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (256, 1, 1)
        );
    }

    #[test]
    fn from_phc_checks_the_string() {
        let good = SecretHasher::new(HashCost::Test)
            .hash(b"x", &mut rng())
            .unwrap()
            .as_str()
            .to_owned();
        let salt_and_hash = good.rsplitn(3, '$').take(2).collect::<Vec<_>>();
        let (hash_b64, salt_b64) = (salt_and_hash[0], salt_and_hash[1]);
        let with = |prefix: &str| format!("{prefix}${salt_b64}${hash_b64}");

        let cases: Vec<(String, Result<(), HashError>)> = vec![
            (good.clone(), Ok(())),
            (String::new(), Err(HashError::Malformed)),
            ("not a hash".into(), Err(HashError::Malformed)),
            ("$argon2id$".into(), Err(HashError::Malformed)),
            (
                good[..good.len() - 10].to_owned() + "!!!!",
                Err(HashError::Malformed),
            ),
            (
                with("$argon2i$v=19$m=256,t=1,p=1"),
                Err(HashError::UnsupportedAlgorithm),
            ),
            (
                with("$argon2d$v=19$m=256,t=1,p=1"),
                Err(HashError::UnsupportedAlgorithm),
            ),
            (
                with("$argon2id$v=16$m=256,t=1,p=1"),
                Err(HashError::UnsupportedAlgorithm),
            ),
            (
                with("$argon2id$m=256,t=1,p=1"),
                Err(HashError::UnsupportedAlgorithm),
            ),
            (
                with("$pbkdf2-sha256$i=1000"),
                Err(HashError::UnsupportedAlgorithm),
            ),
            (
                format!("$argon2id$v=19$m=256,t=1,p=1${salt_b64}"),
                Err(HashError::Malformed),
            ),
            (
                with("$argon2id$v=19$m=256,t=0,p=1"),
                Err(HashError::Malformed),
            ),
            (
                with("$argon2id$v=19$m=256,t=1,p=1,x=3"),
                Err(HashError::Malformed),
            ),
            (
                with("$argon2id$v=19$m=4194304,t=1,p=1"),
                Err(HashError::UnsupportedParameters),
            ),
            (
                with("$argon2id$v=19$m=256,t=1000,p=1"),
                Err(HashError::UnsupportedParameters),
            ),
            (
                with("$argon2id$v=19$m=1024,t=1,p=64"),
                Err(HashError::UnsupportedParameters),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                SecretHash::from_phc(input.clone()).map(|_| ()),
                expected,
                "input: {input}"
            );
        }
    }

    #[test]
    fn verify_dummy_always_mismatches() {
        let hasher = SecretHasher::new(HashCost::Test);
        for secret in [&b""[..], b"anything", b"correct horse battery staple"] {
            assert_eq!(hasher.verify_dummy(secret), VerifyError::Mismatch);
        }
    }

    #[test]
    fn debug_output_hides_the_hash() {
        let hash = SecretHasher::new(HashCost::Test)
            .hash(b"x", &mut rng())
            .unwrap();
        assert_eq!(format!("{hash:?}"), "SecretHash(..)");
        assert_eq!(
            format!("{:?}", SecretHasher::new(HashCost::Test)),
            "SecretHasher { cost: Test, .. }"
        );
    }

    #[test]
    fn errors_are_lowercase_without_trailing_period() {
        let messages = [
            HashError::Hashing.to_string(),
            HashError::Malformed.to_string(),
            HashError::UnsupportedAlgorithm.to_string(),
            HashError::UnsupportedParameters.to_string(),
            VerifyError::Mismatch.to_string(),
            VerifyError::Malformed.to_string(),
        ];
        for message in messages {
            assert!(
                message.starts_with(|c: char| c.is_ascii_lowercase()),
                "{message}"
            );
            assert!(!message.ends_with('.'), "{message}");
        }
    }
}
