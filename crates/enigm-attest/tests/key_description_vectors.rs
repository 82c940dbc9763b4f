//! `KeyDescription::decode` against real attestation certificates: every chain of the
//! android/keyattestation test data (compared field by field with its JSON golden), the GrapheneOS
//! Auditor sample, and the two chains upstream keeps as invalid.
//!
//! The vectors are third-party data kept in `../shared/vectors` (never copied into the
//! repository); without that folder these tests fail, they do not pass.
//!
//! Unit identifiers (serial, IMEI, MEID, second IMEI) are compared but never printed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test: failing loudly is the point"
)]

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use der::Decode as _;
use enigm_attest::android::key_description::{
    AuthorizationList, KEY_DESCRIPTION_OID, KeyDescription, KeyDescriptionError,
    PURPOSE_ATTEST_KEY, RootOfTrust, SecurityLevel, VerifiedBootState,
};
use serde_json::{Map, Value, json};

/// Golden keys whose values name one device unit: never printed.
const UNIT_IDENTIFIER_KEYS: [&str; 4] = [
    "attestationIdSerial",
    "attestationIdImei",
    "attestationIdMeid",
    "attestationIdSecondImei",
];

fn android_vectors() -> PathBuf {
    let dir = enigm_test_support::require_shared_vectors().join("android-key-attestation");
    assert!(
        dir.is_dir(),
        "SHARED TEST VECTORS MISSING: `{}` does not exist",
        dir.display()
    );
    dir
}

fn google_vectors() -> PathBuf {
    let dir = android_vectors().join("google-keyattestation");
    assert!(
        dir.is_dir(),
        "SHARED TEST VECTORS MISSING: `{}` does not exist",
        dir.display()
    );
    dir
}

/// Every `*.pem` below `dir`, recursively, sorted.
fn pem_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "pem") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The DER certificates of a PEM file, in file order (leaf first).
fn pem_chain(path: &Path) -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut certificates = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines().map(str::trim) {
        match (line, &mut body) {
            ("-----BEGIN CERTIFICATE-----", None) => body = Some(String::new()),
            ("-----END CERTIFICATE-----", Some(base64)) => {
                certificates.push(BASE64.decode(base64.as_bytes()).unwrap());
                body = None;
            }
            (line, Some(base64)) => base64.push_str(line),
            _ => {}
        }
    }
    assert!(body.is_none(), "{}: unterminated PEM block", path.display());
    assert!(
        !certificates.is_empty(),
        "{}: no certificates",
        path.display()
    );
    certificates
}

/// The KeyDescription extension's value in a DER certificate (exactly one such extension).
fn key_description_extension(certificate_der: &[u8], what: &str) -> Vec<u8> {
    let certificate = x509_cert::Certificate::from_der(certificate_der)
        .unwrap_or_else(|error| panic!("{what}: x509-cert cannot parse the certificate: {error}"));
    let extensions = certificate
        .tbs_certificate
        .extensions
        .unwrap_or_else(|| panic!("{what}: the certificate has no extensions"));
    let mut values = extensions
        .iter()
        .filter(|extension| extension.extn_id.to_string() == KEY_DESCRIPTION_OID)
        .map(|extension| extension.extn_value.as_bytes().to_vec());
    let value = values
        .next()
        .unwrap_or_else(|| panic!("{what}: no KeyDescription extension"));
    assert!(
        values.next().is_none(),
        "{what}: more than one KeyDescription extension"
    );
    value
}

fn leaf_key_description(path: &Path) -> Result<KeyDescription, KeyDescriptionError> {
    let chain = pem_chain(path);
    let what = path.display().to_string();
    KeyDescription::decode(&key_description_extension(&chain[0], &what))
}

/// Removes `//` comments (outside strings) so that serde_json can read a golden.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_string = false;
        let mut escaped = false;
        let mut cut = line.len();
        let mut chars = line.char_indices().peekable();
        while let Some((index, c)) = chars.next() {
            if in_string {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => in_string = false,
                    _ => {}
                }
            } else if c == '"' {
                in_string = true;
            } else if c == '/' && chars.peek().is_some_and(|(_, next)| *next == '/') {
                cut = index;
                break;
            }
        }
        out.push_str(&line[..cut]);
        out.push('\n');
    }
    out
}

fn read_golden(pem: &Path) -> Value {
    let path = pem.with_extension("json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: no golden: {error}", path.display()));
    serde_json::from_str(&strip_comments(&text))
        .unwrap_or_else(|error| panic!("{}: golden is not JSON: {error}", path.display()))
}

// The decoded KeyDescription in the goldens' format (android/keyattestation's JSON): byte
// fields base64, integers as strings, absent fields left out.

fn b64(bytes: &[u8]) -> Value {
    Value::String(BASE64.encode(bytes))
}

fn int(value: i64) -> Value {
    Value::String(value.to_string())
}

fn text(bytes: &[u8], key: &str) -> Value {
    Value::String(
        String::from_utf8(bytes.to_vec())
            .unwrap_or_else(|_| panic!("{key} is not UTF-8 (value not shown)")),
    )
}

fn origin_name(origin: i64) -> Value {
    let name = match origin {
        0 => "GENERATED",
        1 => "DERIVED",
        2 => "IMPORTED",
        3 => "RESERVED",
        4 => "SECURELY_IMPORTED",
        other => panic!("origin {other} has no golden name"),
    };
    Value::String(name.to_owned())
}

fn root_of_trust_json(root: &RootOfTrust) -> Value {
    let mut object = Map::new();
    object.insert("verifiedBootKey".into(), b64(&root.verified_boot_key));
    object.insert("deviceLocked".into(), Value::Bool(root.device_locked));
    object.insert(
        "verifiedBootState".into(),
        Value::String(root.verified_boot_state.as_str().to_owned()),
    );
    if let Some(hash) = &root.verified_boot_hash {
        object.insert("verifiedBootHash".into(), b64(hash));
    }
    Value::Object(object)
}

fn authorization_list_json(list: &AuthorizationList) -> Value {
    let mut object = Map::new();
    let mut put = |key: &str, value: Value| {
        object.insert(key.to_owned(), value);
    };
    let ints = |values: &[i64]| Value::Array(values.iter().map(|value| int(*value)).collect());
    if !list.purposes.is_empty() {
        put("purposes", ints(&list.purposes));
    }
    if let Some(value) = list.algorithm {
        put("algorithms", int(value));
    }
    if let Some(value) = list.key_size {
        put("keySize", int(value));
    }
    if !list.digests.is_empty() {
        put("digests", ints(&list.digests));
    }
    if !list.paddings.is_empty() {
        put("paddings", ints(&list.paddings));
    }
    let optional_ints = [
        ("ecCurve", list.ec_curve),
        ("rsaPublicExponent", list.rsa_public_exponent),
        ("activeDateTime", list.active_date_time),
        (
            "originationExpireDateTime",
            list.origination_expire_date_time,
        ),
        ("usageExpireDateTime", list.usage_expire_date_time),
        ("userAuthType", list.user_auth_type),
        ("authTimeout", list.auth_timeout),
        ("creationDateTime", list.creation_date_time),
        ("osVersion", list.os_version),
        ("osPatchLevel", list.os_patch_level),
        ("vendorPatchLevel", list.vendor_patch_level),
        ("bootPatchLevel", list.boot_patch_level),
    ];
    for (key, value) in optional_ints {
        if let Some(value) = value {
            put(key, int(value));
        }
    }
    // Upstream writes a boolean authorization as `true` or leaves it out. It does not model
    // rollbackResistance [303], allowWhileOnBody [506] or deviceUniqueAttestation [720]; they
    // get names here so that a set one shows up as a difference.
    let flags = [
        ("rollbackResistance", list.rollback_resistance),
        ("noAuthRequired", list.no_auth_required),
        ("allowWhileOnBody", list.allow_while_on_body),
        (
            "trustedUserPresenceRequired",
            list.trusted_user_presence_required,
        ),
        (
            "trustedConfirmationRequired",
            list.trusted_confirmation_required,
        ),
        ("unlockedDeviceRequired", list.unlocked_device_required),
        ("rollbackResistant", list.rollback_resistant),
        ("deviceUniqueAttestation", list.device_unique_attestation),
    ];
    for (key, set) in flags {
        if set {
            put(key, Value::Bool(true));
        }
    }
    if let Some(origin) = list.origin {
        put("origin", origin_name(origin));
    }
    if let Some(root) = &list.root_of_trust {
        put("rootOfTrust", root_of_trust_json(root));
    }
    if let Some(id) = &list.attestation_application_id {
        let packages = id
            .packages
            .iter()
            .map(|package| json!({ "name": package.name, "version": int(package.version) }))
            .collect();
        let signatures = id
            .signature_digests
            .iter()
            .map(|digest| b64(digest))
            .collect();
        put(
            "attestationApplicationId",
            json!({ "packages": Value::Array(packages), "signatures": Value::Array(signatures) }),
        );
    }
    let ids = &list.attestation_ids;
    let id_fields = [
        ("attestationIdBrand", &ids.brand),
        ("attestationIdDevice", &ids.device),
        ("attestationIdProduct", &ids.product),
        ("attestationIdSerial", &ids.serial),
        ("attestationIdImei", &ids.imei),
        ("attestationIdMeid", &ids.meid),
        ("attestationIdManufacturer", &ids.manufacturer),
        ("attestationIdModel", &ids.model),
        ("attestationIdSecondImei", &ids.second_imei),
    ];
    for (key, value) in id_fields {
        if let Some(value) = value {
            put(key, text(value, key));
        }
    }
    if let Some(hash) = &list.module_hash {
        put("moduleHash", b64(hash));
    }
    Value::Object(object)
}

fn key_description_json(description: &KeyDescription) -> Value {
    json!({
        "attestationVersion": int(description.attestation_version),
        "attestationSecurityLevel": description.attestation_security_level.as_str(),
        "keyMintVersion": int(description.key_mint_version),
        "keyMintSecurityLevel": description.key_mint_security_level.as_str(),
        "attestationChallenge": b64(&description.attestation_challenge),
        "uniqueId": b64(&description.unique_id),
        "softwareEnforced": authorization_list_json(&description.software_enforced),
        "hardwareEnforced": authorization_list_json(&description.hardware_enforced),
    })
}

/// Compares two JSON trees key by key, collecting differences; unit identifiers are compared
/// without showing their values.
fn compare(path: &str, golden: &Value, decoded: &Value, differences: &mut Vec<String>) {
    match (golden, decoded) {
        (Value::Object(golden), Value::Object(decoded)) => {
            let mut keys: Vec<&String> = golden.keys().chain(decoded.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let child = format!("{path}.{key}");
                let secret = UNIT_IDENTIFIER_KEYS.contains(&key.as_str());
                match (golden.get(key), decoded.get(key)) {
                    (Some(golden), Some(decoded)) if secret => {
                        if golden != decoded {
                            differences.push(format!("{child}: differs (values not shown)"));
                        }
                    }
                    (Some(golden), Some(decoded)) => {
                        compare(&child, golden, decoded, differences);
                    }
                    (Some(_), None) => differences.push(format!("{child}: missing in the decode")),
                    (None, Some(decoded)) if secret => {
                        let _ = decoded;
                        differences.push(format!("{child}: decoded but not in the golden"));
                    }
                    (None, Some(decoded)) => differences.push(format!(
                        "{child}: decoded as {decoded} but not in the golden"
                    )),
                    (None, None) => {}
                }
            }
        }
        (golden, decoded) if golden == decoded => {}
        (golden, decoded) => {
            differences.push(format!("{path}: golden {golden}, decoded {decoded}"));
        }
    }
}

/// Removes the golden's `areTagsOrdered` flags (upstream records whether the tags were
/// ascending; this decoder refuses lists whose tags are not, so a decoded list always is).
fn take_tags_ordered(golden: &mut Value, name: &str) {
    for list in ["softwareEnforced", "hardwareEnforced"] {
        if let Some(Value::Object(object)) = golden.get_mut(list)
            && let Some(flag) = object.remove("areTagsOrdered")
        {
            assert_eq!(
                flag,
                Value::Bool(true),
                "{name}: the golden says {list} tags are not ordered, yet decode accepted it"
            );
        }
    }
}

#[test]
fn every_google_chain_decodes_to_its_golden() {
    let dir = google_vectors();
    let invalid = dir.join("invalid");
    let chains: Vec<PathBuf> = pem_files(&dir)
        .into_iter()
        .filter(|path| !path.starts_with(&invalid))
        .collect();
    assert!(
        chains.len() >= 11,
        "expected at least 11 golden chains under {}, found {}",
        dir.display(),
        chains.len()
    );
    let mut versions = Vec::new();
    let mut failures = Vec::new();
    for pem in &chains {
        let name = pem.strip_prefix(&dir).unwrap().display().to_string();
        let description = match leaf_key_description(pem) {
            Ok(description) => description,
            Err(error) => {
                failures.push(format!("{name}: decode failed: {error}"));
                continue;
            }
        };
        versions.push(description.attestation_version);
        let mut golden = read_golden(pem);
        take_tags_ordered(&mut golden, &name);
        let mut differences = Vec::new();
        compare(
            "",
            &golden,
            &key_description_json(&description),
            &mut differences,
        );
        for difference in differences {
            failures.push(format!("{name}: {difference}"));
        }
        // What decode accepted, encode reproduces.
        assert_eq!(
            KeyDescription::decode(&description.encode()).as_ref(),
            Ok(&description),
            "{name}: encode does not round-trip"
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} chains differ from their goldens:\n{}",
        failures.len(),
        chains.len(),
        failures.join("\n")
    );
    versions.sort_unstable();
    versions.dedup();
    assert!(
        versions.contains(&3) && versions.contains(&300) && versions.contains(&400),
        "the vectors no longer cover versions 3, 300 and 400: {versions:?}"
    );
}

#[test]
fn the_malformed_root_of_trust_is_rejected() {
    // deviceLocked is BOOLEAN 0x01: BER allows it, DER (and this decoder) does not. Upstream
    // reads it as true; a strict decoder refuses the extension.
    let path = google_vectors().join("invalid/malformed_rot_device_locked.pem");
    assert_eq!(
        leaf_key_description(&path),
        Err(KeyDescriptionError::Der(
            "a BOOLEAN must be one octet, 0x00 or 0xFF"
        ))
    );
}

#[test]
fn tags_out_of_order_are_rejected() {
    // Besides a leaf signature that no longer verifies, its hardwareEnforced list has
    // algorithm [2] before purpose [1].
    let path = google_vectors().join("invalid/tags_not_in_ascending_order.pem");
    assert_eq!(
        leaf_key_description(&path),
        Err(KeyDescriptionError::TagOrder {
            previous: 2,
            tag: 1
        })
    );
}

fn grapheneos_certificate(name: &str) -> KeyDescription {
    let path = android_vectors()
        .join("grapheneos-auditor/sample-5")
        .join(name);
    let der = std::fs::read(&path)
        .unwrap_or_else(|error| panic!("{}: cannot read: {error}", path.display()));
    let description = KeyDescription::decode(&key_description_extension(
        &der,
        &path.display().to_string(),
    ))
    .unwrap_or_else(|error| panic!("{}: decode failed: {error}", path.display()));
    assert_eq!(
        KeyDescription::decode(&description.encode()).as_ref(),
        Ok(&description),
        "{name}: encode does not round-trip"
    );
    description
}

#[test]
fn the_grapheneos_sample_decodes() {
    let leaf = grapheneos_certificate("0_cert_0.der");
    assert_eq!(leaf.attestation_version, 300);
    assert_eq!(leaf.attestation_security_level, SecurityLevel::StrongBox);
    let root = leaf.hardware_enforced.root_of_trust.as_ref().unwrap();
    assert_eq!(root.verified_boot_state, VerifiedBootState::SelfSigned);
    assert!(root.device_locked);
    assert_eq!(root.verified_boot_key.len(), 32);
    assert_eq!(leaf.hardware_enforced.os_patch_level, Some(202_511));

    // The attest-key certificate above the leaf certifies a key whose purposes include
    // ATTEST_KEY.
    let attest_key = grapheneos_certificate("0_cert_1.der");
    assert!(
        attest_key
            .hardware_enforced
            .purposes
            .contains(&PURPOSE_ATTEST_KEY),
        "purposes: {:?}",
        attest_key.hardware_enforced.purposes
    );
    assert_eq!(
        attest_key.hardware_enforced.root_of_trust.as_ref(),
        Some(root)
    );
}
