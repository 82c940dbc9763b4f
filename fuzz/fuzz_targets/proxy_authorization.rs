//! Fuzzes what an Enigm Proxy reads from a client and from Command (`enigm-proxyauth`): the
//! `Proxy-Authorization` value, the CONNECT target, and the signed revocation list.
//!
//! The first byte picks the input: the rest as the header value (UTF-8, invalid sequences
//! replaced) with a fixed target, as a target, or as revocation list bytes; a fourth mode takes
//! a valid header for the fixed target and flips the byte the input names. Properties:
//! - nothing panics;
//! - a parsed credential, proof or list writes back to the bytes it was parsed from (one
//!   spelling), and a parsed target is its own canonical spelling;
//! - no revocation list the input spells verifies under the pinned key;
//! - the verifier never admits anything but the one valid header (a flip that decodes to the
//!   same credential and proof is that header), and admits that one at most once (replay).

#![no_main]

use enigm_crypto::Ed25519SigningKey;
use enigm_proxyauth::{
    Credential, CredentialClaims, CredentialId, Proof, ProxyVerifier, RevocationList,
    TargetAuthority, VerifierPolicy, authorization, parse_authorization,
};
use enigm_types::{DeviceHandle, Timestamp};
use libfuzzer_sys::fuzz_target;

const NOW: Timestamp = Timestamp::from_unix_millis(1_795_305_600_000);
const TARGET: &str = "service.example:443";

fn verifier(command: &Ed25519SigningKey) -> ProxyVerifier {
    let mut verifier = ProxyVerifier::new(command.verifying_key(), VerifierPolicy::default());
    let list = RevocationList::sign(command, NOW, [CredentialId::from_bytes([0xee; 16])]);
    verifier
        .install_revocations(list.verify(&command.verifying_key()).unwrap())
        .unwrap();
    verifier
}

fn valid_header(command: &Ed25519SigningKey, device: &Ed25519SigningKey) -> String {
    let credential = Credential::issue(
        command,
        CredentialClaims {
            id: CredentialId::from_bytes([7; 16]),
            handle: DeviceHandle::from_digest(&[9; 20]),
            device_key: device.verifying_key().to_bytes(),
            issued_at: NOW,
            expires_at: NOW.saturating_add(std::time::Duration::from_secs(600)),
        },
    );
    let target = TargetAuthority::parse(TARGET).unwrap();
    authorization(
        &credential,
        &Proof::sign(device, &credential, &target, [3; 16], NOW),
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let command = Ed25519SigningKey::from_seed(&[1; 32]);
    let device = Ed25519SigningKey::from_seed(&[2; 32]);
    match mode % 4 {
        0 => {
            let text = String::from_utf8_lossy(rest);
            if let Ok((credential, proof)) = parse_authorization(&text) {
                assert_eq!(
                    Credential::parse(&credential.to_bytes()).unwrap(),
                    credential
                );
                assert_eq!(Proof::parse(&proof.to_bytes()).unwrap(), proof);
            }
            // Nothing but a valid signature by the pinned key gets through.
            assert!(verifier(&command).verify(&text, TARGET, NOW).is_err());
        }
        1 => {
            let text = String::from_utf8_lossy(rest);
            if let Ok(target) = TargetAuthority::parse(&text) {
                let again = TargetAuthority::parse(target.as_str()).unwrap();
                assert_eq!(again, target);
            }
        }
        2 => {
            if let Ok(list) = RevocationList::parse(rest) {
                assert_eq!(list.to_bytes(), rest);
                // No list the fuzzer writes is signed by the pinned key.
                assert!(list.verify(&command.verifying_key()).is_err());
            }
        }
        _ => {
            let valid = valid_header(&command, &device);
            let mut bytes = valid.clone().into_bytes();
            let (Some(&position), Some(&flip)) = (rest.first(), rest.get(1)) else {
                return;
            };
            if let Some(byte) = bytes.get_mut(usize::from(position) * 3 % valid.len()) {
                *byte ^= flip;
            }
            let Ok(altered) = String::from_utf8(bytes) else {
                return;
            };
            let same = parse_authorization(&altered).ok() == parse_authorization(&valid).ok();
            let mut verifier = verifier(&command);
            let first = verifier.verify(&altered, TARGET, NOW);
            assert!(
                first.is_err() || same,
                "an altered header was admitted: {altered:?}"
            );
            assert!(
                verifier.verify(&altered, TARGET, NOW).is_err(),
                "a replay was admitted"
            );
        }
    }
});
