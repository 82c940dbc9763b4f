//! A development attestation root (feature `dev-root`): mints Android-format attestation chains
//! for simulated devices, so that demos and end-to-end tests go through the same verifier,
//! policy and pairing as real devices. INSECURE by design: whoever holds the root key can claim
//! any device, and Command trusts the root only when started with
//! `--insecure-dev-attestation-root`.
//!
//! A chain is `[leaf, intermediate, root]`, all ECDSA P-256 with SHA-256 like the RKP chains of
//! real devices: the leaf certifies the device's attested key and carries the KeyDescription
//! extension; the intermediate is generated afresh for each chain (as per-device RKP keys are).
//!
//! Key generation and ECDSA signing use the operating system's random source through rcgen:
//! the one place this crate is not deterministic, and why the module sits behind a feature only
//! the CLI and tests enable.

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CustomExtension, DnType, IsCa, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SerialNumber,
};

use crate::android::key_description::{
    AttestationApplicationId, AuthorizationList, KeyDescription, PackageInfo, RootOfTrust,
    SecurityLevel, VerifiedBootState,
};
use enigm_types::Timestamp;

/// The KeyDescription OID as rcgen wants it.
const KEY_DESCRIPTION_OID: [u64; 10] = [1, 3, 6, 1, 4, 1, 11129, 2, 1, 17];
/// The root's fixed subject.
const ROOT_NAME: &str = "Enigm INSECURE development attestation root";

#[derive(Debug, thiserror::Error)]
pub enum DevRootError {
    #[error("cannot create a development certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("the validity time {0} cannot be put in a certificate")]
    Time(i64),
}

/// The development root: a P-256 key and its self-signed CA certificate.
pub struct DevAttestationRoot {
    key: KeyPair,
    certificate: Certificate,
}

impl DevAttestationRoot {
    /// Generates a new root.
    pub fn generate() -> Result<Self, DevRootError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        Self::with_key(key)
    }

    /// The root whose key is `key_pem` (PKCS#8 PEM). The certificate is rebuilt from the key and
    /// fixed parameters: verifiers pin the root by its public key, so only the key matters.
    pub fn from_key_pem(key_pem: &str) -> Result<Self, DevRootError> {
        Self::with_key(KeyPair::from_pem(key_pem)?)
    }

    fn with_key(key: KeyPair) -> Result<Self, DevRootError> {
        let mut params = CertificateParams::new(Vec::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, ROOT_NAME);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.serial_number = Some(SerialNumber::from(1_u64));
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2049, 12, 31);
        let certificate = params.self_signed(&key)?;
        Ok(DevAttestationRoot { key, certificate })
    }

    /// The certificate (PEM, for Command to pin) and the key (PKCS#8 PEM, secret).
    pub fn to_pem(&self) -> (String, String) {
        (self.certificate.pem(), self.key.serialize_pem())
    }

    pub fn certificate_der(&self) -> Vec<u8> {
        self.certificate.der().to_vec()
    }

    /// Mints `[leaf, intermediate, root]` (DER) for `attested_key`, with `description` in the
    /// leaf's KeyDescription extension, valid from `not_before` to `not_after`.
    pub fn issue_chain(
        &self,
        attested_key: &DevAttestedKey,
        description: &KeyDescription,
        not_before: Timestamp,
        not_after: Timestamp,
    ) -> Result<Vec<Vec<u8>>, DevRootError> {
        let intermediate_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut intermediate = CertificateParams::new(Vec::new())?;
        intermediate.distinguished_name.push(
            DnType::CommonName,
            "Enigm INSECURE development attestation CA",
        );
        intermediate.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
        intermediate.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        intermediate.not_before = rcgen::date_time_ymd(2020, 1, 1);
        intermediate.not_after = rcgen::date_time_ymd(2049, 12, 31);
        let intermediate =
            intermediate.signed_by(&intermediate_key, &self.certificate, &self.key)?;

        let mut leaf = CertificateParams::new(Vec::new())?;
        leaf.distinguished_name
            .push(DnType::CommonName, "Android Keystore Key");
        leaf.not_before = offset_date_time(not_before)?;
        leaf.not_after = offset_date_time(not_after)?;
        leaf.custom_extensions
            .push(CustomExtension::from_oid_content(
                &KEY_DESCRIPTION_OID,
                description.encode(),
            ));
        let leaf = leaf.signed_by(&attested_key.0, &intermediate, &intermediate_key)?;
        Ok(vec![
            leaf.der().to_vec(),
            intermediate.der().to_vec(),
            self.certificate.der().to_vec(),
        ])
    }
}

/// A simulated device's attested key: the stand-in for a hardware-backed Keystore key, kept by
/// the agent across attestations (pairing pins it).
pub struct DevAttestedKey(KeyPair);

impl DevAttestedKey {
    pub fn generate() -> Result<Self, DevRootError> {
        Ok(DevAttestedKey(KeyPair::generate_for(
            &PKCS_ECDSA_P256_SHA256,
        )?))
    }

    pub fn from_pem(key_pem: &str) -> Result<Self, DevRootError> {
        Ok(DevAttestedKey(KeyPair::from_pem(key_pem)?))
    }

    /// PKCS#8 PEM: secret.
    pub fn to_pem(&self) -> String {
        self.0.serialize_pem()
    }

    /// The public key as a DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.0.public_key_der()
    }
}

/// The package name simulated devices attest as.
pub const DEV_PACKAGE: &str = "app.enigm.security";

/// The verified-boot key digest of the simulated OS: SHA-256 of a fixed label, so that a policy
/// can allow-list it like a real OS's key.
pub fn dev_boot_key() -> [u8; 32] {
    enigm_crypto::sha256(b"enigm development OS signing key")
}

/// The KeyDescription of a simulated device: attestation version 300 from a TEE, a generated
/// P-256 signing key, a locked bootloader with VERIFIED boot under [`dev_boot_key`].
pub fn simulated_key_description(
    challenge: &[u8],
    now: Timestamp,
    patch_day: i64,
) -> KeyDescription {
    KeyDescription {
        attestation_version: 300,
        attestation_security_level: SecurityLevel::TrustedEnvironment,
        key_mint_version: 300,
        key_mint_security_level: SecurityLevel::TrustedEnvironment,
        attestation_challenge: challenge.to_vec(),
        unique_id: Vec::new(),
        software_enforced: AuthorizationList {
            creation_date_time: Some(now.unix_millis()),
            attestation_application_id: Some(AttestationApplicationId {
                packages: vec![PackageInfo {
                    name: DEV_PACKAGE.to_owned(),
                    version: 1,
                }],
                signature_digests: vec![
                    enigm_crypto::sha256(b"enigm development app signing certificate").to_vec(),
                ],
            }),
            ..AuthorizationList::default()
        },
        hardware_enforced: AuthorizationList {
            purposes: vec![2, 3],
            algorithm: Some(3),
            key_size: Some(256),
            digests: vec![4],
            ec_curve: Some(1),
            no_auth_required: true,
            origin: Some(0),
            root_of_trust: Some(RootOfTrust {
                verified_boot_key: dev_boot_key().to_vec(),
                device_locked: true,
                verified_boot_state: VerifiedBootState::Verified,
                verified_boot_hash: Some(
                    enigm_crypto::sha256(b"enigm development OS images").to_vec(),
                ),
            }),
            os_version: Some(160_000),
            os_patch_level: Some(patch_day / 100),
            vendor_patch_level: Some(patch_day),
            boot_patch_level: Some(patch_day),
            ..AuthorizationList::default()
        },
    }
}

fn offset_date_time(at: Timestamp) -> Result<time::OffsetDateTime, DevRootError> {
    time::OffsetDateTime::from_unix_timestamp(at.unix_seconds())
        .map_err(|_| DevRootError::Time(at.unix_millis()))
}

#[cfg(test)]
mod tests {
    use der::Decode as _;

    use super::*;

    fn description() -> KeyDescription {
        KeyDescription {
            attestation_version: 300,
            attestation_security_level: SecurityLevel::TrustedEnvironment,
            key_mint_version: 300,
            key_mint_security_level: SecurityLevel::TrustedEnvironment,
            attestation_challenge: vec![9; 32],
            unique_id: Vec::new(),
            software_enforced: AuthorizationList::default(),
            hardware_enforced: AuthorizationList {
                purposes: vec![2],
                os_patch_level: Some(202_511),
                ..AuthorizationList::default()
            },
        }
    }

    #[test]
    fn the_leaf_carries_the_key_description_and_the_root_survives_its_pem() {
        let root = DevAttestationRoot::generate().unwrap();
        let key = DevAttestedKey::generate().unwrap();
        let now = Timestamp::from_unix_millis(1_790_000_000_000);
        let later = now.saturating_add(std::time::Duration::from_secs(3600));
        let chain = root.issue_chain(&key, &description(), now, later).unwrap();
        assert_eq!(chain.len(), 3);
        let leaf = x509_cert::Certificate::from_der(&chain[0]).unwrap();
        let extension = leaf
            .tbs_certificate
            .extensions
            .unwrap()
            .into_iter()
            .find(|extension| {
                extension.extn_id.to_string()
                    == crate::android::key_description::KEY_DESCRIPTION_OID
            })
            .unwrap();
        let decoded = KeyDescription::decode(extension.extn_value.as_bytes()).unwrap();
        assert_eq!(decoded, description());

        let (_, key_pem) = root.to_pem();
        let again = DevAttestationRoot::from_key_pem(&key_pem).unwrap();
        let root_cert = x509_cert::Certificate::from_der(&root.certificate_der()).unwrap();
        let again_cert = x509_cert::Certificate::from_der(&again.certificate_der()).unwrap();
        assert_eq!(
            root_cert.tbs_certificate.subject_public_key_info,
            again_cert.tbs_certificate.subject_public_key_info
        );
        let key_again = DevAttestedKey::from_pem(&key.to_pem()).unwrap();
        assert_eq!(key_again.to_pem(), key.to_pem());
    }
}
