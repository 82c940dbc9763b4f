//! The KeyDescription extension (OID 1.3.6.1.4.1.11129.2.1.17) of an Android attestation
//! certificate, decoded for every attestation version seen in the wild (1–4, 100, 200, 300, 400,
//! 500).
//!
//! The schema is the one in the Android Key Attestation documentation. `AuthorizationList` fields
//! are EXPLICIT context-specific tags with numbers up to 724, in ascending order; fields this
//! module does not model are skipped (their TLV must still be well formed).
//!
//! Attestation ids that identify one device (serial, IMEI, MEID, second IMEI) are decoded so that
//! a verifier can tell they are present, but [`AttestationIds`] never prints them and nothing
//! else in this crate copies them out: raw hardware identifiers must not reach storage, logs or
//! responses.

use std::fmt;

/// The OID of the KeyDescription extension.
pub const KEY_DESCRIPTION_OID: &str = "1.3.6.1.4.1.11129.2.1.17";

/// `KeyPurpose` value of a key that may sign attestation certificates (an attest key).
pub const PURPOSE_ATTEST_KEY: i64 = 7;

/// Where the attested key (or the attestation itself) lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecurityLevel {
    /// ENUMERATED 0: the Android system, not hardware.
    Software,
    /// ENUMERATED 1: a Trusted Execution Environment.
    TrustedEnvironment,
    /// ENUMERATED 2: a discrete secure element (StrongBox).
    StrongBox,
}

impl SecurityLevel {
    /// The name the Android documentation and the test-vector goldens use.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityLevel::Software => "SOFTWARE",
            SecurityLevel::TrustedEnvironment => "TRUSTED_ENVIRONMENT",
            SecurityLevel::StrongBox => "STRONG_BOX",
        }
    }

    /// Hardware-backed: a TEE or StrongBox.
    pub fn is_hardware(self) -> bool {
        !matches!(self, SecurityLevel::Software)
    }
}

/// `VerifiedBootState` of the RootOfTrust.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VerifiedBootState {
    /// 0: the OS is signed by the OEM's key (the boot key is fixed in hardware).
    Verified,
    /// 1: the OS is signed by a user-set key (a custom OS such as GrapheneOS on a locked device).
    SelfSigned,
    /// 2: the bootloader is unlocked; nothing about the OS is verified.
    Unverified,
    /// 3: verification failed.
    Failed,
}

impl VerifiedBootState {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifiedBootState::Verified => "VERIFIED",
            VerifiedBootState::SelfSigned => "SELF_SIGNED",
            VerifiedBootState::Unverified => "UNVERIFIED",
            VerifiedBootState::Failed => "FAILED",
        }
    }
}

/// `RootOfTrust`: what the bootloader measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootOfTrust {
    /// Digest of the key that signed the OS (for Verified: the OEM key; SelfSigned: the custom
    /// OS's key). Older devices may report it empty or all zeros.
    pub verified_boot_key: Vec<u8>,
    pub device_locked: bool,
    pub verified_boot_state: VerifiedBootState,
    /// Digest of the verified boot images; absent before attestation version 3.
    pub verified_boot_hash: Option<Vec<u8>>,
}

/// One package of the `AttestationApplicationId`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageInfo {
    pub name: String,
    pub version: i64,
}

/// `AttestationApplicationId`: which app (package names, versions and the SHA-256 digests of its
/// signing certificates) asked for the attestation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttestationApplicationId {
    pub packages: Vec<PackageInfo>,
    pub signature_digests: Vec<Vec<u8>>,
}

/// Device attestation ids (tags 710–717, 723). Brand, device, product, manufacturer and model
/// name a product, not a unit; serial, IMEI, MEID and second IMEI name one unit and are redacted
/// from `Debug`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct AttestationIds {
    pub brand: Option<Vec<u8>>,
    pub device: Option<Vec<u8>>,
    pub product: Option<Vec<u8>>,
    pub serial: Option<Vec<u8>>,
    pub imei: Option<Vec<u8>>,
    pub meid: Option<Vec<u8>>,
    pub manufacturer: Option<Vec<u8>>,
    pub model: Option<Vec<u8>>,
    pub second_imei: Option<Vec<u8>>,
}

impl AttestationIds {
    /// Whether the attestation names the unit itself (serial, IMEI or MEID): such ids are never
    /// kept or shown.
    pub fn has_unit_identifiers(&self) -> bool {
        self.serial.is_some()
            || self.imei.is_some()
            || self.meid.is_some()
            || self.second_imei.is_some()
    }
}

impl fmt::Debug for AttestationIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn text(value: &Option<Vec<u8>>) -> Option<std::borrow::Cow<'_, str>> {
            value.as_deref().map(String::from_utf8_lossy)
        }
        let redacted = |value: &Option<Vec<u8>>| value.as_ref().map(|_| "<redacted>");
        f.debug_struct("AttestationIds")
            .field("brand", &text(&self.brand))
            .field("device", &text(&self.device))
            .field("product", &text(&self.product))
            .field("serial", &redacted(&self.serial))
            .field("imei", &redacted(&self.imei))
            .field("meid", &redacted(&self.meid))
            .field("manufacturer", &text(&self.manufacturer))
            .field("model", &text(&self.model))
            .field("second_imei", &redacted(&self.second_imei))
            .finish()
    }
}

/// An `AuthorizationList` (softwareEnforced or hardwareEnforced). Enumerated values that Android
/// may extend (purposes, algorithms, digests, paddings, curves, origin) stay integers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthorizationList {
    /// [1] purpose.
    pub purposes: Vec<i64>,
    /// [2] algorithm (1 RSA, 3 EC, 32 AES, 128 HMAC).
    pub algorithm: Option<i64>,
    /// [3] keySize.
    pub key_size: Option<i64>,
    /// [5] digest.
    pub digests: Vec<i64>,
    /// [6] padding.
    pub paddings: Vec<i64>,
    /// [10] ecCurve.
    pub ec_curve: Option<i64>,
    /// [200] rsaPublicExponent.
    pub rsa_public_exponent: Option<i64>,
    /// [303] rollbackResistance.
    pub rollback_resistance: bool,
    /// [400] activeDateTime (ms).
    pub active_date_time: Option<i64>,
    /// [401] originationExpireDateTime (ms).
    pub origination_expire_date_time: Option<i64>,
    /// [402] usageExpireDateTime (ms).
    pub usage_expire_date_time: Option<i64>,
    /// [503] noAuthRequired.
    pub no_auth_required: bool,
    /// [504] userAuthType.
    pub user_auth_type: Option<i64>,
    /// [505] authTimeout (s).
    pub auth_timeout: Option<i64>,
    /// [506] allowWhileOnBody.
    pub allow_while_on_body: bool,
    /// [507] trustedUserPresenceRequired.
    pub trusted_user_presence_required: bool,
    /// [508] trustedConfirmationRequired.
    pub trusted_confirmation_required: bool,
    /// [509] unlockedDeviceRequired.
    pub unlocked_device_required: bool,
    /// [701] creationDateTime (ms since the epoch).
    pub creation_date_time: Option<i64>,
    /// [702] origin (0 generated, 1 derived, 2 imported, 3 reserved, 4 securely imported).
    pub origin: Option<i64>,
    /// [704] rootOfTrust.
    pub root_of_trust: Option<RootOfTrust>,
    /// [705] osVersion, e.g. 160000 for Android 16.
    pub os_version: Option<i64>,
    /// [706] osPatchLevel, YYYYMM.
    pub os_patch_level: Option<i64>,
    /// [709] attestationApplicationId (the OCTET STRING's content, decoded).
    pub attestation_application_id: Option<AttestationApplicationId>,
    /// [710]–[717], [723].
    pub attestation_ids: AttestationIds,
    /// [718] vendorPatchLevel, YYYYMMDD (some devices report YYYYMM).
    pub vendor_patch_level: Option<i64>,
    /// [719] bootPatchLevel, YYYYMMDD (some devices report YYYYMM).
    pub boot_patch_level: Option<i64>,
    /// [720] deviceUniqueAttestation.
    pub device_unique_attestation: bool,
    /// [724] moduleHash (attestation version 400 and later).
    pub module_hash: Option<Vec<u8>>,
}

/// The decoded KeyDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDescription {
    pub attestation_version: i64,
    pub attestation_security_level: SecurityLevel,
    /// keymasterVersion before version 100, keyMintVersion after.
    pub key_mint_version: i64,
    pub key_mint_security_level: SecurityLevel,
    pub attestation_challenge: Vec<u8>,
    pub unique_id: Vec<u8>,
    pub software_enforced: AuthorizationList,
    pub hardware_enforced: AuthorizationList,
}

/// Why a KeyDescription could not be decoded. Every variant is a malformed or unsupported
/// extension: the chain carrying it is not evidence of anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyDescriptionError {
    #[error("the KeyDescription is not well-formed DER: {0}")]
    Der(&'static str),
    #[error("the KeyDescription has an unexpected structure: {0}")]
    Structure(&'static str),
    #[error("authorization list tags are not in ascending order (tag {tag} after {previous})")]
    TagOrder { previous: u32, tag: u32 },
    #[error("attestation version {0} is not one this verifier knows")]
    UnknownVersion(i64),
}

impl KeyDescription {
    /// Decodes the extension's value (the content of the extnValue OCTET STRING).
    pub fn decode(extension_value: &[u8]) -> Result<KeyDescription, KeyDescriptionError> {
        let _ = extension_value;
        Err(KeyDescriptionError::Structure("decoder not written yet"))
    }
}
