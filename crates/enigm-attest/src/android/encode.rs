//! Encodes a [`KeyDescription`] as DER: what a development root puts in the chains it mints,
//! and how tests build hostile extensions from a valid one.
//!
//! `KeyDescription::decode(&kd.encode()) == Ok(kd)` for every value `decode` can return (checked
//! by the property test below and the `attestation_key_description` fuzz target). Two details
//! keep that true:
//!
//! - a boolean authorization is written (as `[n] EXPLICIT NULL`) only when it is true, and an
//!   empty SET OF (purposes, digests, paddings) is not written at all, so a decoded empty set
//!   and an absent one are the same value;
//! - SET OF elements are written in the order they are held, not sorted as DER would sort them:
//!   decoding keeps a device's order, so re-encoding reproduces it. Callers that mint their own
//!   values and want canonical DER sort them first.

use super::der::{Tag, write};
use super::key_description::{
    AttestationApplicationId, AuthorizationList, KeyDescription, RootOfTrust, SecurityLevel,
    VerifiedBootState,
};

impl KeyDescription {
    /// The DER encoding of this KeyDescription: the value of the extension's extnValue OCTET
    /// STRING.
    pub fn encode(&self) -> Vec<u8> {
        let mut fields = Vec::new();
        write::integer(&mut fields, self.attestation_version);
        write::enumerated(&mut fields, security_level(self.attestation_security_level));
        write::integer(&mut fields, self.key_mint_version);
        write::enumerated(&mut fields, security_level(self.key_mint_security_level));
        write::octet_string(&mut fields, &self.attestation_challenge);
        write::octet_string(&mut fields, &self.unique_id);
        authorization_list(&mut fields, &self.software_enforced);
        authorization_list(&mut fields, &self.hardware_enforced);
        let mut out = Vec::new();
        write::tlv(&mut out, Tag::SEQUENCE, &fields);
        out
    }
}

fn security_level(level: SecurityLevel) -> i64 {
    match level {
        SecurityLevel::Software => 0,
        SecurityLevel::TrustedEnvironment => 1,
        SecurityLevel::StrongBox => 2,
    }
}

fn verified_boot_state(state: VerifiedBootState) -> i64 {
    match state {
        VerifiedBootState::Verified => 0,
        VerifiedBootState::SelfSigned => 1,
        VerifiedBootState::Unverified => 2,
        VerifiedBootState::Failed => 3,
    }
}

/// Appends `[tag] EXPLICIT` around the element that `value` writes.
fn explicit(out: &mut Vec<u8>, tag: u32, value: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    value(&mut inner);
    write::tlv(out, Tag::explicit(tag), &inner);
}

fn integer(out: &mut Vec<u8>, tag: u32, value: Option<i64>) {
    if let Some(value) = value {
        explicit(out, tag, |inner| write::integer(inner, value));
    }
}

fn integer_set(out: &mut Vec<u8>, tag: u32, values: &[i64]) {
    if values.is_empty() {
        return;
    }
    explicit(out, tag, |inner| {
        let mut elements = Vec::new();
        for value in values {
            write::integer(&mut elements, *value);
        }
        write::tlv(inner, Tag::SET, &elements);
    });
}

fn flag(out: &mut Vec<u8>, tag: u32, value: bool) {
    if value {
        explicit(out, tag, write::null);
    }
}

fn octets(out: &mut Vec<u8>, tag: u32, value: Option<&[u8]>) {
    if let Some(value) = value {
        explicit(out, tag, |inner| write::octet_string(inner, value));
    }
}

/// Appends the `AuthorizationList` SEQUENCE, tags in ascending order.
fn authorization_list(out: &mut Vec<u8>, list: &AuthorizationList) {
    let ids = &list.attestation_ids;
    let mut entries = Vec::new();
    let e = &mut entries;
    integer_set(e, 1, &list.purposes);
    integer(e, 2, list.algorithm);
    integer(e, 3, list.key_size);
    integer_set(e, 5, &list.digests);
    integer_set(e, 6, &list.paddings);
    integer(e, 10, list.ec_curve);
    integer(e, 200, list.rsa_public_exponent);
    flag(e, 303, list.rollback_resistance);
    integer(e, 400, list.active_date_time);
    integer(e, 401, list.origination_expire_date_time);
    integer(e, 402, list.usage_expire_date_time);
    flag(e, 503, list.no_auth_required);
    integer(e, 504, list.user_auth_type);
    integer(e, 505, list.auth_timeout);
    flag(e, 506, list.allow_while_on_body);
    flag(e, 507, list.trusted_user_presence_required);
    flag(e, 508, list.trusted_confirmation_required);
    flag(e, 509, list.unlocked_device_required);
    integer(e, 701, list.creation_date_time);
    integer(e, 702, list.origin);
    flag(e, 703, list.rollback_resistant);
    if let Some(root) = &list.root_of_trust {
        explicit(e, 704, |inner| root_of_trust(inner, root));
    }
    integer(e, 705, list.os_version);
    integer(e, 706, list.os_patch_level);
    if let Some(id) = &list.attestation_application_id {
        explicit(e, 709, |inner| {
            write::octet_string(inner, &attestation_application_id(id));
        });
    }
    octets(e, 710, ids.brand.as_deref());
    octets(e, 711, ids.device.as_deref());
    octets(e, 712, ids.product.as_deref());
    octets(e, 713, ids.serial.as_deref());
    octets(e, 714, ids.imei.as_deref());
    octets(e, 715, ids.meid.as_deref());
    octets(e, 716, ids.manufacturer.as_deref());
    octets(e, 717, ids.model.as_deref());
    integer(e, 718, list.vendor_patch_level);
    integer(e, 719, list.boot_patch_level);
    flag(e, 720, list.device_unique_attestation);
    octets(e, 723, ids.second_imei.as_deref());
    octets(e, 724, list.module_hash.as_deref());
    write::tlv(out, Tag::SEQUENCE, &entries);
}

fn root_of_trust(out: &mut Vec<u8>, root: &RootOfTrust) {
    let mut fields = Vec::new();
    write::octet_string(&mut fields, &root.verified_boot_key);
    write::boolean(&mut fields, root.device_locked);
    write::enumerated(&mut fields, verified_boot_state(root.verified_boot_state));
    if let Some(hash) = &root.verified_boot_hash {
        write::octet_string(&mut fields, hash);
    }
    write::tlv(out, Tag::SEQUENCE, &fields);
}

/// The DER document that the `[709]` OCTET STRING carries.
fn attestation_application_id(id: &AttestationApplicationId) -> Vec<u8> {
    let mut packages = Vec::new();
    for package in &id.packages {
        let mut fields = Vec::new();
        write::octet_string(&mut fields, package.name.as_bytes());
        write::integer(&mut fields, package.version);
        write::tlv(&mut packages, Tag::SEQUENCE, &fields);
    }
    let mut digests = Vec::new();
    for digest in &id.signature_digests {
        write::octet_string(&mut digests, digest);
    }
    let mut fields = Vec::new();
    write::tlv(&mut fields, Tag::SET, &packages);
    write::tlv(&mut fields, Tag::SET, &digests);
    let mut out = Vec::new();
    write::tlv(&mut out, Tag::SEQUENCE, &fields);
    out
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        reason = "a test: a failed unwrap is the report"
    )]

    use proptest::collection::vec;
    use proptest::option;
    use proptest::prelude::*;

    use super::super::der::{Tag, write};
    use super::super::key_description::{
        AttestationApplicationId, AttestationIds, AuthorizationList, KNOWN_VERSIONS,
        KeyDescription, KeyDescriptionError, PackageInfo, RootOfTrust, SecurityLevel,
        VerifiedBootState,
    };

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        vec(any::<u8>(), 0..40)
    }

    fn security_level() -> impl Strategy<Value = SecurityLevel> {
        prop_oneof![
            Just(SecurityLevel::Software),
            Just(SecurityLevel::TrustedEnvironment),
            Just(SecurityLevel::StrongBox),
        ]
    }

    fn root_of_trust() -> impl Strategy<Value = RootOfTrust> {
        (
            bytes(),
            any::<bool>(),
            prop_oneof![
                Just(VerifiedBootState::Verified),
                Just(VerifiedBootState::SelfSigned),
                Just(VerifiedBootState::Unverified),
                Just(VerifiedBootState::Failed),
            ],
            option::of(bytes()),
        )
            .prop_map(|(key, locked, state, hash)| RootOfTrust {
                verified_boot_key: key,
                device_locked: locked,
                verified_boot_state: state,
                verified_boot_hash: hash,
            })
    }

    fn application_id() -> impl Strategy<Value = AttestationApplicationId> {
        (
            vec(
                (any::<String>(), any::<i64>())
                    .prop_map(|(name, version)| PackageInfo { name, version }),
                0..4,
            ),
            vec(bytes(), 0..4),
        )
            .prop_map(|(packages, signature_digests)| AttestationApplicationId {
                packages,
                signature_digests,
            })
    }

    fn attestation_ids() -> impl Strategy<Value = AttestationIds> {
        (
            option::of(bytes()),
            option::of(bytes()),
            option::of(bytes()),
            option::of(bytes()),
            option::of(bytes()),
            option::of(bytes()),
            option::of(bytes()),
            option::of(bytes()),
            option::of(bytes()),
        )
            .prop_map(
                |(brand, device, product, serial, imei, meid, manufacturer, model, second)| {
                    AttestationIds {
                        brand,
                        device,
                        product,
                        serial,
                        imei,
                        meid,
                        manufacturer,
                        model,
                        second_imei: second,
                    }
                },
            )
    }

    fn int() -> impl Strategy<Value = Option<i64>> {
        option::of(any::<i64>())
    }

    fn authorization_list() -> impl Strategy<Value = AuthorizationList> {
        let key = (
            vec(any::<i64>(), 0..4),
            int(),
            int(),
            vec(any::<i64>(), 0..4),
            vec(any::<i64>(), 0..4),
            int(),
            int(),
            any::<bool>(),
            int(),
            int(),
            int(),
        );
        let auth = (
            any::<bool>(),
            int(),
            int(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        );
        let device = (
            int(),
            int(),
            any::<bool>(),
            option::of(root_of_trust()),
            int(),
            int(),
            option::of(application_id()),
            attestation_ids(),
            int(),
            int(),
            any::<bool>(),
            option::of(bytes()),
        );
        (key, auth, device).prop_map(|(key, auth, device)| {
            let (purposes, algorithm, key_size, digests, paddings, ec_curve, exponent) =
                (key.0, key.1, key.2, key.3, key.4, key.5, key.6);
            AuthorizationList {
                purposes,
                algorithm,
                key_size,
                digests,
                paddings,
                ec_curve,
                rsa_public_exponent: exponent,
                rollback_resistance: key.7,
                active_date_time: key.8,
                origination_expire_date_time: key.9,
                usage_expire_date_time: key.10,
                no_auth_required: auth.0,
                user_auth_type: auth.1,
                auth_timeout: auth.2,
                allow_while_on_body: auth.3,
                trusted_user_presence_required: auth.4,
                trusted_confirmation_required: auth.5,
                unlocked_device_required: auth.6,
                creation_date_time: device.0,
                origin: device.1,
                rollback_resistant: device.2,
                root_of_trust: device.3,
                os_version: device.4,
                os_patch_level: device.5,
                attestation_application_id: device.6,
                attestation_ids: device.7,
                vendor_patch_level: device.8,
                boot_patch_level: device.9,
                device_unique_attestation: device.10,
                module_hash: device.11,
            }
        })
    }

    fn key_description() -> impl Strategy<Value = KeyDescription> {
        (
            proptest::sample::select(KNOWN_VERSIONS.to_vec()),
            security_level(),
            any::<i64>(),
            security_level(),
            bytes(),
            bytes(),
            authorization_list(),
            authorization_list(),
        )
            .prop_map(|fields| KeyDescription {
                attestation_version: fields.0,
                attestation_security_level: fields.1,
                key_mint_version: fields.2,
                key_mint_security_level: fields.3,
                attestation_challenge: fields.4,
                unique_id: fields.5,
                software_enforced: fields.6,
                hardware_enforced: fields.7,
            })
    }

    proptest! {
        #[test]
        fn decode_reads_back_what_encode_writes(description in key_description()) {
            let encoded = description.encode();
            prop_assert_eq!(KeyDescription::decode(&encoded), Ok(description));
        }

        #[test]
        fn every_strict_prefix_is_rejected(description in key_description()) {
            let encoded = description.encode();
            for end in [0, 1, encoded.len() / 2, encoded.len() - 1] {
                prop_assert!(KeyDescription::decode(&encoded[..end]).is_err());
            }
        }
    }

    fn minimal() -> KeyDescription {
        KeyDescription {
            attestation_version: 300,
            attestation_security_level: SecurityLevel::TrustedEnvironment,
            key_mint_version: 300,
            key_mint_security_level: SecurityLevel::TrustedEnvironment,
            attestation_challenge: b"challenge".to_vec(),
            unique_id: Vec::new(),
            software_enforced: AuthorizationList::default(),
            hardware_enforced: AuthorizationList::default(),
        }
    }

    /// The encoding of `minimal()` with `entries` (already encoded) as its hardwareEnforced
    /// list.
    fn with_hardware_entries(entries: &[u8]) -> Vec<u8> {
        let encoded = minimal().encode();
        // The minimal encoding ends with two empty SEQUENCEs: swap the last one.
        let prefix = &encoded[2..encoded.len() - 2];
        let mut fields = prefix.to_vec();
        write::tlv(&mut fields, Tag::SEQUENCE, entries);
        let mut out = Vec::new();
        write::tlv(&mut out, Tag::SEQUENCE, &fields);
        out
    }

    fn entry(tag: u32, inner: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write::tlv(&mut out, Tag::explicit(tag), inner);
        out
    }

    fn int_entry(tag: u32, value: i64) -> Vec<u8> {
        let mut inner = Vec::new();
        write::integer(&mut inner, value);
        entry(tag, &inner)
    }

    #[test]
    fn helper_builds_the_minimal_encoding() {
        assert_eq!(
            KeyDescription::decode(&with_hardware_entries(&[])),
            Ok(minimal())
        );
    }

    #[test]
    fn tags_must_ascend_strictly() {
        let out_of_order = [int_entry(705, 160_000), int_entry(702, 0)].concat();
        assert_eq!(
            KeyDescription::decode(&with_hardware_entries(&out_of_order)),
            Err(KeyDescriptionError::TagOrder {
                previous: 705,
                tag: 702
            })
        );
        let duplicate = [int_entry(702, 0), int_entry(702, 0)].concat();
        assert_eq!(
            KeyDescription::decode(&with_hardware_entries(&duplicate)),
            Err(KeyDescriptionError::TagOrder {
                previous: 702,
                tag: 702
            })
        );
    }

    #[test]
    fn unknown_tags_are_skipped_if_well_formed() {
        let entries = [
            int_entry(4, 32),
            int_entry(502, i64::MAX),
            int_entry(702, 0),
            int_entry(800, 1),
        ]
        .concat();
        let decoded = KeyDescription::decode(&with_hardware_entries(&entries)).unwrap();
        assert_eq!(decoded.hardware_enforced.origin, Some(0));
        assert_eq!(
            AuthorizationList {
                origin: None,
                ..decoded.hardware_enforced
            },
            AuthorizationList::default()
        );
        // An unknown tag with two elements, none, or a malformed one.
        let mut two = Vec::new();
        write::integer(&mut two, 1);
        write::integer(&mut two, 2);
        assert!(KeyDescription::decode(&with_hardware_entries(&entry(800, &two))).is_err());
        assert!(KeyDescription::decode(&with_hardware_entries(&entry(800, &[]))).is_err());
        assert!(
            KeyDescription::decode(&with_hardware_entries(&entry(800, &[0x02, 0x05, 1]))).is_err()
        );
        // A primitive context-specific entry.
        let mut primitive = Vec::new();
        let tag = super::super::der::Tag {
            constructed: false,
            ..Tag::explicit(702)
        };
        write::tlv(&mut primitive, tag, &[0x00]);
        assert!(KeyDescription::decode(&with_hardware_entries(&primitive)).is_err());
    }

    #[test]
    fn unknown_versions_and_trailing_fields_are_rejected() {
        let mut description = minimal();
        description.attestation_version = 5;
        assert_eq!(
            KeyDescription::decode(&description.encode()),
            Err(KeyDescriptionError::UnknownVersion(5))
        );
        let encoded = minimal().encode();
        let mut fields = encoded[2..].to_vec();
        write::integer(&mut fields, 1);
        let mut out = Vec::new();
        write::tlv(&mut out, Tag::SEQUENCE, &fields);
        assert!(matches!(
            KeyDescription::decode(&out),
            Err(KeyDescriptionError::Structure(_))
        ));
        let mut trailing = encoded.clone();
        trailing.push(0);
        assert!(KeyDescription::decode(&trailing).is_err());
    }

    #[test]
    fn root_of_trust_booleans_are_strict() {
        let mut root = Vec::new();
        write::octet_string(&mut root, &[0; 32]);
        root.extend_from_slice(&[0x01, 0x01, 0x01]); // BOOLEAN 0x01: BER, not DER
        write::enumerated(&mut root, 0);
        let mut sequence = Vec::new();
        write::tlv(&mut sequence, Tag::SEQUENCE, &root);
        assert_eq!(
            KeyDescription::decode(&with_hardware_entries(&entry(704, &sequence))),
            Err(KeyDescriptionError::Der(
                "a BOOLEAN must be one octet, 0x00 or 0xFF"
            ))
        );
    }

    #[test]
    fn oversized_integers_are_rejected() {
        // userSecureId-sized value (2^64 - 1) in a modelled field.
        let inner = [
            0x02, 0x09, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ];
        assert!(matches!(
            KeyDescription::decode(&with_hardware_entries(&entry(701, &inner))),
            Err(KeyDescriptionError::Structure(_))
        ));
    }
}
