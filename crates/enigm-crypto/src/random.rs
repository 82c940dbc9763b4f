//! Random one-time passwords for newly created administrator accounts.

use rand_core::{CryptoRng, RngCore};
use secrecy::SecretString;

/// Characters a generated password may contain: letters and digits without the look-alikes
/// `0 O o 1 I l`, so the password survives being read aloud or copied by hand.
pub const PASSWORD_ALPHABET: &[u8; 56] =
    b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
/// Length of a generated password: 24 characters of a 56-letter alphabet, about 139 bits.
pub const PASSWORD_LEN: usize = 24;

/// A random password of [`PASSWORD_LEN`] characters drawn uniformly from [`PASSWORD_ALPHABET`].
pub fn random_password(rng: &mut (impl RngCore + CryptoRng)) -> SecretString {
    // Room for exactly PASSWORD_LEN ASCII characters, so turning the String into the secret's
    // boxed str does not reallocate and leave an unzeroized copy behind.
    let mut password = String::with_capacity(PASSWORD_LEN);
    while password.len() < PASSWORD_LEN {
        if let Some(c) = uniform_char(rng.next_u32()) {
            password.push(c);
        }
    }
    SecretString::from(password)
}

/// Maps a random byte to a character without bias: bytes at or above the largest multiple of
/// the alphabet size (224) are rejected, so every character has exactly four preimages.
fn uniform_char(random: u32) -> Option<char> {
    let [byte, ..] = random.to_le_bytes();
    let len = PASSWORD_ALPHABET.len();
    let limit = 256 - 256 % len;
    let index = usize::from(byte);
    if index >= limit {
        return None;
    }
    PASSWORD_ALPHABET.get(index % len).map(|&b| char::from(b))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn passwords_have_the_right_length_and_alphabet() {
        let mut rng = StdRng::seed_from_u64(11);
        let passwords: Vec<SecretString> = (0..50).map(|_| random_password(&mut rng)).collect();
        for password in &passwords {
            let text = password.expose_secret();
            assert_eq!(text.chars().count(), PASSWORD_LEN);
            assert!(
                text.bytes().all(|b| PASSWORD_ALPHABET.contains(&b)),
                "{text}"
            );
        }
        for (i, a) in passwords.iter().enumerate() {
            for b in &passwords[i + 1..] {
                assert_ne!(a.expose_secret(), b.expose_secret());
            }
        }
    }

    #[test]
    fn alphabet_has_no_look_alikes_or_duplicates() {
        for ambiguous in *b"0Oo1Il" {
            assert!(
                !PASSWORD_ALPHABET.contains(&ambiguous),
                "{}",
                char::from(ambiguous)
            );
        }
        let mut sorted = PASSWORD_ALPHABET.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), PASSWORD_ALPHABET.len());
        assert!(PASSWORD_ALPHABET.iter().all(u8::is_ascii_alphanumeric));
    }

    #[test]
    fn byte_mapping_is_unbiased() {
        // Every character is hit by exactly four of the 256 byte values; the rest are rejected.
        let mut counts = [0usize; 56];
        let mut rejected = 0;
        for byte in 0u32..256 {
            match uniform_char(byte) {
                Some(c) => {
                    let position = PASSWORD_ALPHABET
                        .iter()
                        .position(|&b| char::from(b) == c)
                        .unwrap();
                    counts[position] += 1;
                }
                None => rejected += 1,
            }
        }
        assert!(counts.iter().all(|&n| n == 4), "{counts:?}");
        assert_eq!(rejected, 256 - 224);
    }
}
