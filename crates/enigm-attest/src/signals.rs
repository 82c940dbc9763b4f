//! Attestation claims as security signals: what Command derives from a device's attestation
//! (provenance `attested`, `docs/security.md`), as a pure function of the stored claims.
//!
//! | claim | signals | value |
//! |---|---|---|
//! | verified boot state `VERIFIED` | `verified-boot`, `secure-boot` | ok |
//! | `SELF_SIGNED`, boot key on the policy's allow-list | same | ok (the operator trusts that OS signer) |
//! | `SELF_SIGNED`, boot key not allow-listed | same | failed (boots an OS nobody vouched for) |
//! | `UNVERIFIED`, `FAILED` | same | failed |
//! | device locked / unlocked | `bootloader-locked` | ok / failed |
//! | both of the above ok / either failed | `device-integrity` | ok / failed |
//! | security level `TRUSTED_ENVIRONMENT`, `STRONG_BOX` / `SOFTWARE` | `hardware-keystore` | ok / failed |
//! | TPM quote, PCRs equal the reference / differ | `secure-boot`, `device-integrity` | ok / failed |
//! | OS patch level `YYYYMM` | the patch level's month | — |
//!
//! A claim that is absent or spelled unknown gives no signal: the report is judged on its own
//! for that protection. Which attestation's claims count and for how long is decided in
//! `enigm-trust` (`attested.rs`): this module only reads one set of claims.

use enigm_types::{SignalKind, SignalValue};

use crate::outcome::{Claims, EvidenceFormat};

/// The signals one attestation's claims give, and the attested OS patch month (`YYYYMM`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttestedClaims {
    pub values: Vec<(SignalKind, SignalValue)>,
    pub os_patch_month: Option<i64>,
}

/// Maps `claims` of evidence in `format` to signals. `boot_key_allowed` says whether the
/// claimed verified-boot key is on the device's attestation policy's allow-list.
pub fn attested_signals(
    format: EvidenceFormat,
    claims: &Claims,
    boot_key_allowed: bool,
) -> AttestedClaims {
    let mut values = Vec::with_capacity(5);
    match format {
        EvidenceFormat::AndroidKey => {
            let boot = claims
                .verified_boot_state
                .as_deref()
                .and_then(|state| boot_value(state, boot_key_allowed));
            if let Some(boot) = boot {
                values.push((SignalKind::VerifiedBoot, boot));
                values.push((SignalKind::SecureBoot, boot));
            }
            let locked = claims.device_locked.map(ok_or_failed);
            if let Some(locked) = locked {
                values.push((SignalKind::BootloaderLocked, locked));
            }
            if let (Some(boot), Some(locked)) = (boot, locked) {
                values.push((
                    SignalKind::DeviceIntegrity,
                    ok_or_failed(boot == SignalValue::Ok && locked == SignalValue::Ok),
                ));
            }
            let keystore = match claims.security_level.as_deref() {
                Some("TRUSTED_ENVIRONMENT" | "STRONG_BOX") => Some(SignalValue::Ok),
                Some("SOFTWARE") => Some(SignalValue::Failed),
                _ => None,
            };
            if let Some(keystore) = keystore {
                values.push((SignalKind::HardwareKeystore, keystore));
            }
        }
        EvidenceFormat::Tpm2Quote => {
            if let Some(matched) = claims.pcrs_match {
                values.push((SignalKind::SecureBoot, ok_or_failed(matched)));
                values.push((SignalKind::DeviceIntegrity, ok_or_failed(matched)));
            }
        }
    }
    AttestedClaims {
        values,
        os_patch_month: match format {
            EvidenceFormat::AndroidKey => claims.os_patch_level,
            EvidenceFormat::Tpm2Quote => None,
        },
    }
}

fn boot_value(state: &str, boot_key_allowed: bool) -> Option<SignalValue> {
    match state {
        "VERIFIED" => Some(SignalValue::Ok),
        "SELF_SIGNED" => Some(ok_or_failed(boot_key_allowed)),
        "UNVERIFIED" | "FAILED" => Some(SignalValue::Failed),
        _ => None,
    }
}

fn ok_or_failed(ok: bool) -> SignalValue {
    if ok {
        SignalValue::Ok
    } else {
        SignalValue::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SignalKind as K;
    use SignalValue as V;

    fn android(boot: &str, locked: bool, level: &str) -> Claims {
        Claims {
            security_level: Some(level.to_owned()),
            verified_boot_state: Some(boot.to_owned()),
            device_locked: Some(locked),
            os_patch_level: Some(202_603),
            ..Claims::default()
        }
    }

    /// Boot state, locked, security level, boot key allow-listed → boot, lock, integrity and
    /// keystore values.
    type Row = (&'static str, bool, &'static str, bool, V, V, V, V);

    fn check(claims: &Claims, format: EvidenceFormat, allowed: bool, expect: &[(K, V)]) {
        let got = attested_signals(format, claims, allowed);
        let mut got = got.values;
        got.sort_by_key(|(kind, _)| *kind);
        let mut want = expect.to_vec();
        want.sort_by_key(|(kind, _)| *kind);
        assert_eq!(got, want, "{claims:?} allowed={allowed}");
    }

    #[test]
    fn android_claims_map_to_boot_lock_integrity_and_keystore() {
        let tee = "TRUSTED_ENVIRONMENT";
        #[rustfmt::skip]
        let table: [Row; 9] = [
            // boot state, locked, level, key allowed → boot, locked, integrity, keystore
            ("VERIFIED",    true,  tee,          false, V::Ok,     V::Ok,     V::Ok,     V::Ok),
            ("VERIFIED",    false, tee,          false, V::Ok,     V::Failed, V::Failed, V::Ok),
            ("SELF_SIGNED", true,  tee,          true,  V::Ok,     V::Ok,     V::Ok,     V::Ok),
            ("SELF_SIGNED", true,  tee,          false, V::Failed, V::Ok,     V::Failed, V::Ok),
            ("UNVERIFIED",  false, tee,          true,  V::Failed, V::Failed, V::Failed, V::Ok),
            ("FAILED",      true,  tee,          true,  V::Failed, V::Ok,     V::Failed, V::Ok),
            ("VERIFIED",    true,  "STRONG_BOX", false, V::Ok,     V::Ok,     V::Ok,     V::Ok),
            ("VERIFIED",    true,  "SOFTWARE",   false, V::Ok,     V::Ok,     V::Ok,     V::Failed),
            ("SELF_SIGNED", false, "SOFTWARE",   false, V::Failed, V::Failed, V::Failed, V::Failed),
        ];
        for (boot, locked, level, allowed, boot_v, lock_v, integrity, keystore) in table {
            check(
                &android(boot, locked, level),
                EvidenceFormat::AndroidKey,
                allowed,
                &[
                    (K::VerifiedBoot, boot_v),
                    (K::SecureBoot, boot_v),
                    (K::BootloaderLocked, lock_v),
                    (K::DeviceIntegrity, integrity),
                    (K::HardwareKeystore, keystore),
                ],
            );
        }
        let mapped = attested_signals(
            EvidenceFormat::AndroidKey,
            &android("VERIFIED", true, tee),
            false,
        );
        assert_eq!(mapped.os_patch_month, Some(202_603));
    }

    #[test]
    fn absent_or_unknown_claims_give_no_signal() {
        check(&Claims::default(), EvidenceFormat::AndroidKey, true, &[]);
        let odd = Claims {
            verified_boot_state: Some("verified".to_owned()),
            security_level: Some("TPM".to_owned()),
            ..Claims::default()
        };
        check(&odd, EvidenceFormat::AndroidKey, true, &[]);
        // Without the lock, boot alone says nothing about device integrity.
        let boot_only = Claims {
            verified_boot_state: Some("VERIFIED".to_owned()),
            ..Claims::default()
        };
        check(
            &boot_only,
            EvidenceFormat::AndroidKey,
            false,
            &[(K::VerifiedBoot, V::Ok), (K::SecureBoot, V::Ok)],
        );
        // Android claims on a TPM quote are not read, nor a PCR match on Android evidence.
        let tpm = Claims {
            security_level: Some("TPM".to_owned()),
            pcrs_match: Some(true),
            ..android("VERIFIED", true, "TRUSTED_ENVIRONMENT")
        };
        check(
            &tpm,
            EvidenceFormat::Tpm2Quote,
            false,
            &[(K::SecureBoot, V::Ok), (K::DeviceIntegrity, V::Ok)],
        );
    }

    #[test]
    fn tpm_quotes_map_their_pcr_match() {
        for (matched, value) in [(true, V::Ok), (false, V::Failed)] {
            let claims = Claims {
                security_level: Some("TPM".to_owned()),
                pcrs_match: Some(matched),
                ..Claims::default()
            };
            check(
                &claims,
                EvidenceFormat::Tpm2Quote,
                false,
                &[(K::SecureBoot, value), (K::DeviceIntegrity, value)],
            );
        }
        let unknown = Claims {
            security_level: Some("TPM".to_owned()),
            ..Claims::default()
        };
        check(&unknown, EvidenceFormat::Tpm2Quote, false, &[]);
    }
}
