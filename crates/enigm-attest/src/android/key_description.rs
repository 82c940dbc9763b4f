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

use super::der::{Class, DerError, Reader, Tlv};

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
    /// \[1\] purpose.
    pub purposes: Vec<i64>,
    /// \[2\] algorithm (1 RSA, 3 EC, 32 AES, 128 HMAC).
    pub algorithm: Option<i64>,
    /// \[3\] keySize.
    pub key_size: Option<i64>,
    /// \[5\] digest.
    pub digests: Vec<i64>,
    /// \[6\] padding.
    pub paddings: Vec<i64>,
    /// \[10\] ecCurve.
    pub ec_curve: Option<i64>,
    /// \[200\] rsaPublicExponent.
    pub rsa_public_exponent: Option<i64>,
    /// \[303\] rollbackResistance (KeyMint's name for the tag).
    pub rollback_resistance: bool,
    /// \[400\] activeDateTime (ms).
    pub active_date_time: Option<i64>,
    /// \[401\] originationExpireDateTime (ms).
    pub origination_expire_date_time: Option<i64>,
    /// \[402\] usageExpireDateTime (ms).
    pub usage_expire_date_time: Option<i64>,
    /// \[503\] noAuthRequired.
    pub no_auth_required: bool,
    /// \[504\] userAuthType.
    pub user_auth_type: Option<i64>,
    /// \[505\] authTimeout (s).
    pub auth_timeout: Option<i64>,
    /// \[506\] allowWhileOnBody.
    pub allow_while_on_body: bool,
    /// \[507\] trustedUserPresenceRequired.
    pub trusted_user_presence_required: bool,
    /// \[508\] trustedConfirmationRequired.
    pub trusted_confirmation_required: bool,
    /// \[509\] unlockedDeviceRequired.
    pub unlocked_device_required: bool,
    /// \[701\] creationDateTime (ms since the epoch).
    pub creation_date_time: Option<i64>,
    /// \[702\] origin (0 generated, 1 derived, 2 imported, 3 reserved, 4 securely imported).
    pub origin: Option<i64>,
    /// \[703\] rollbackResistant (Keymaster's tag; the android/keyattestation goldens call it
    /// `rollbackResistant`).
    pub rollback_resistant: bool,
    /// \[704\] rootOfTrust.
    pub root_of_trust: Option<RootOfTrust>,
    /// \[705\] osVersion, e.g. 160000 for Android 16.
    pub os_version: Option<i64>,
    /// \[706\] osPatchLevel, YYYYMM.
    pub os_patch_level: Option<i64>,
    /// \[709\] attestationApplicationId (the OCTET STRING's content, decoded).
    pub attestation_application_id: Option<AttestationApplicationId>,
    /// \[710\]–\[717\], \[723\].
    pub attestation_ids: AttestationIds,
    /// \[718\] vendorPatchLevel, YYYYMMDD (some devices report YYYYMM).
    pub vendor_patch_level: Option<i64>,
    /// \[719\] bootPatchLevel, YYYYMMDD (some devices report YYYYMM).
    pub boot_patch_level: Option<i64>,
    /// \[720\] deviceUniqueAttestation.
    pub device_unique_attestation: bool,
    /// \[724\] moduleHash (attestation version 400 and later).
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

/// The attestation versions this decoder knows (Keymaster 1–4, KeyMint 100–500).
pub const KNOWN_VERSIONS: [i64; 9] = [1, 2, 3, 4, 100, 200, 300, 400, 500];

impl From<DerError> for KeyDescriptionError {
    fn from(error: DerError) -> Self {
        match error {
            DerError::Malformed(what) => KeyDescriptionError::Der(what),
            DerError::Unexpected(what) => KeyDescriptionError::Structure(what),
        }
    }
}

impl KeyDescription {
    /// Decodes the extension's value (the content of the extnValue OCTET STRING).
    ///
    /// Strict: the value must be one DER `KeyDescription` with exactly its eight fields (as the
    /// android/keyattestation library requires; no version so far appends any), authorization
    /// tags strictly ascending (a repeated tag is reported as [`KeyDescriptionError::TagOrder`]
    /// too), and no trailing bytes. Tags this type does not model are skipped after checking
    /// that each holds exactly one well-formed element. SET OF values keep the order they were
    /// encoded in (DER would sort them; devices are not relied upon to).
    pub fn decode(extension_value: &[u8]) -> Result<KeyDescription, KeyDescriptionError> {
        let mut document = Reader::new(extension_value);
        let mut fields = document.sequence()?;
        document.finish()?;

        let attestation_version = fields.integer()?;
        if !KNOWN_VERSIONS.contains(&attestation_version) {
            return Err(KeyDescriptionError::UnknownVersion(attestation_version));
        }
        let attestation_security_level = security_level(fields.enumerated()?)?;
        let key_mint_version = fields.integer()?;
        let key_mint_security_level = security_level(fields.enumerated()?)?;
        let attestation_challenge = fields.octet_string()?.to_vec();
        let unique_id = fields.octet_string()?.to_vec();
        let software_enforced = authorization_list(&mut fields)?;
        let hardware_enforced = authorization_list(&mut fields)?;
        if !fields.is_empty() {
            return Err(KeyDescriptionError::Structure(
                "unexpected fields after hardwareEnforced",
            ));
        }
        Ok(KeyDescription {
            attestation_version,
            attestation_security_level,
            key_mint_version,
            key_mint_security_level,
            attestation_challenge,
            unique_id,
            software_enforced,
            hardware_enforced,
        })
    }
}

fn security_level(value: i64) -> Result<SecurityLevel, KeyDescriptionError> {
    match value {
        0 => Ok(SecurityLevel::Software),
        1 => Ok(SecurityLevel::TrustedEnvironment),
        2 => Ok(SecurityLevel::StrongBox),
        _ => Err(KeyDescriptionError::Structure("unknown security level")),
    }
}

fn verified_boot_state(value: i64) -> Result<VerifiedBootState, KeyDescriptionError> {
    match value {
        0 => Ok(VerifiedBootState::Verified),
        1 => Ok(VerifiedBootState::SelfSigned),
        2 => Ok(VerifiedBootState::Unverified),
        3 => Ok(VerifiedBootState::Failed),
        _ => Err(KeyDescriptionError::Structure(
            "unknown verified boot state",
        )),
    }
}

/// Reads one `AuthorizationList` SEQUENCE from `fields`.
fn authorization_list(fields: &mut Reader<'_>) -> Result<AuthorizationList, KeyDescriptionError> {
    let mut entries = fields.sequence()?;
    let mut list = AuthorizationList::default();
    let mut previous: Option<u32> = None;
    while !entries.is_empty() {
        let entry = entries.any()?;
        if entry.tag.class != Class::ContextSpecific || !entry.tag.constructed {
            return Err(KeyDescriptionError::Structure(
                "an authorization list entry is not an EXPLICIT context-specific tag",
            ));
        }
        let tag = entry.tag.number;
        if let Some(previous) = previous
            && tag <= previous
        {
            return Err(KeyDescriptionError::TagOrder { previous, tag });
        }
        previous = Some(tag);
        authorization(&mut list, tag, &entry)?;
    }
    Ok(list)
}

/// Decodes the value of the `[tag] EXPLICIT` entry into `list`.
fn authorization(
    list: &mut AuthorizationList,
    tag: u32,
    entry: &Tlv<'_>,
) -> Result<(), KeyDescriptionError> {
    let mut value = entry.inner()?;
    let ids = &mut list.attestation_ids;
    match tag {
        1 => list.purposes = integer_set(&mut value)?,
        2 => list.algorithm = Some(value.integer()?),
        3 => list.key_size = Some(value.integer()?),
        5 => list.digests = integer_set(&mut value)?,
        6 => list.paddings = integer_set(&mut value)?,
        10 => list.ec_curve = Some(value.integer()?),
        200 => list.rsa_public_exponent = Some(value.integer()?),
        303 => list.rollback_resistance = flag(&mut value)?,
        400 => list.active_date_time = Some(value.integer()?),
        401 => list.origination_expire_date_time = Some(value.integer()?),
        402 => list.usage_expire_date_time = Some(value.integer()?),
        503 => list.no_auth_required = flag(&mut value)?,
        504 => list.user_auth_type = Some(value.integer()?),
        505 => list.auth_timeout = Some(value.integer()?),
        506 => list.allow_while_on_body = flag(&mut value)?,
        507 => list.trusted_user_presence_required = flag(&mut value)?,
        508 => list.trusted_confirmation_required = flag(&mut value)?,
        509 => list.unlocked_device_required = flag(&mut value)?,
        701 => list.creation_date_time = Some(value.integer()?),
        702 => list.origin = Some(value.integer()?),
        703 => list.rollback_resistant = flag(&mut value)?,
        704 => list.root_of_trust = Some(root_of_trust(&mut value)?),
        705 => list.os_version = Some(value.integer()?),
        706 => list.os_patch_level = Some(value.integer()?),
        709 => {
            let content = value.octet_string()?;
            list.attestation_application_id =
                Some(attestation_application_id(content, value.depth())?);
        }
        710 => ids.brand = Some(value.octet_string()?.to_vec()),
        711 => ids.device = Some(value.octet_string()?.to_vec()),
        712 => ids.product = Some(value.octet_string()?.to_vec()),
        713 => ids.serial = Some(value.octet_string()?.to_vec()),
        714 => ids.imei = Some(value.octet_string()?.to_vec()),
        715 => ids.meid = Some(value.octet_string()?.to_vec()),
        716 => ids.manufacturer = Some(value.octet_string()?.to_vec()),
        717 => ids.model = Some(value.octet_string()?.to_vec()),
        718 => list.vendor_patch_level = Some(value.integer()?),
        719 => list.boot_patch_level = Some(value.integer()?),
        720 => list.device_unique_attestation = flag(&mut value)?,
        723 => ids.second_imei = Some(value.octet_string()?.to_vec()),
        724 => list.module_hash = Some(value.octet_string()?.to_vec()),
        // Not modelled: one well-formed element, skipped.
        _ => {
            value.any()?;
        }
    }
    if !value.is_empty() {
        return Err(KeyDescriptionError::Structure(
            "an EXPLICIT authorization tag holds more than one element",
        ));
    }
    Ok(())
}

/// A boolean authorization: present means true, and its value is a NULL.
fn flag(value: &mut Reader<'_>) -> Result<bool, KeyDescriptionError> {
    value.null()?;
    Ok(true)
}

fn integer_set(value: &mut Reader<'_>) -> Result<Vec<i64>, KeyDescriptionError> {
    let mut set = value.set()?;
    let mut values = Vec::new();
    while !set.is_empty() {
        values.push(set.integer()?);
    }
    Ok(values)
}

fn root_of_trust(value: &mut Reader<'_>) -> Result<RootOfTrust, KeyDescriptionError> {
    let mut fields = value.sequence()?;
    let verified_boot_key = fields.octet_string()?.to_vec();
    let device_locked = fields.boolean()?;
    let verified_boot_state = verified_boot_state(fields.enumerated()?)?;
    let verified_boot_hash = if fields.is_empty() {
        None
    } else {
        Some(fields.octet_string()?.to_vec())
    };
    if !fields.is_empty() {
        return Err(KeyDescriptionError::Structure(
            "unexpected fields after verifiedBootHash",
        ));
    }
    Ok(RootOfTrust {
        verified_boot_key,
        device_locked,
        verified_boot_state,
        verified_boot_hash,
    })
}

/// Decodes the DER document carried in the `[709]` OCTET STRING, found at `depth`.
fn attestation_application_id(
    content: &[u8],
    depth: usize,
) -> Result<AttestationApplicationId, KeyDescriptionError> {
    let mut document = Reader::nested(content, depth)?;
    let mut fields = document.sequence()?;
    document.finish()?;

    let mut package_set = fields.set()?;
    let mut packages = Vec::new();
    while !package_set.is_empty() {
        let mut package = package_set.sequence()?;
        let name = String::from_utf8(package.octet_string()?.to_vec())
            .map_err(|_| KeyDescriptionError::Structure("a package name is not UTF-8"))?;
        let version = package.integer()?;
        if !package.is_empty() {
            return Err(KeyDescriptionError::Structure(
                "unexpected fields in an AttestationPackageInfo",
            ));
        }
        packages.push(PackageInfo { name, version });
    }

    let mut digest_set = fields.set()?;
    let mut signature_digests = Vec::new();
    while !digest_set.is_empty() {
        signature_digests.push(digest_set.octet_string()?.to_vec());
    }
    if !fields.is_empty() {
        return Err(KeyDescriptionError::Structure(
            "unexpected fields in the AttestationApplicationId",
        ));
    }
    Ok(AttestationApplicationId {
        packages,
        signature_digests,
    })
}
