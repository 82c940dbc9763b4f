//! Real Android Key Attestation chains from `../shared/vectors/android-key-attestation/` through
//! the chain verifier: each verifies at a time inside its window and is stale outside it; roots
//! are pinned by key (Google's four RSA root certificates share one key); the AOSP software chains
//! need their own root; unknown roots, revoked serials, old or missing status lists, the invalid
//! vectors, truncated and garbage DER, and a chain-extension attack built from a real leaf are
//! rejected with their reasons.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test: failing loudly is the point"
)]

use std::path::PathBuf;
use std::time::Duration;

use enigm_attest::android::chain::{
    Anchor, ChainError, ChainVerifier, TrustAnchors, certificate_spki, parse_pem_chain,
};
use enigm_attest::android::key_description::{
    PURPOSE_ATTEST_KEY, SecurityLevel, VerifiedBootState,
};
use enigm_attest::android::revocation::{RevocationList, RevocationStatus, serial_hex};
use enigm_attest::outcome::RejectionReason;
use enigm_test_support::require_shared_vectors;
use enigm_types::Timestamp;

fn vectors() -> PathBuf {
    require_shared_vectors().join("android-key-attestation")
}

fn at(date: &str) -> Timestamp {
    let parsed = time::OffsetDateTime::parse(
        &format!("{date}T12:00:00Z"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    Timestamp::from_unix_millis(parsed.unix_timestamp() * 1000)
}

fn pem(relative: &str) -> Vec<Vec<u8>> {
    let path = vectors().join("google-keyattestation").join(relative);
    parse_pem_chain(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn graphene() -> Vec<Vec<u8>> {
    let dir = vectors().join("grapheneos-auditor/sample-5");
    (0..5)
        .map(|n| std::fs::read(dir.join(format!("0_cert_{n}.der"))).unwrap())
        .collect()
}

fn unchecked() -> RevocationStatus<'static> {
    RevocationStatus::unchecked_for_offline_use()
}

/// (chain, a date inside its window, a date outside it) for every hardware chain.
fn hardware_chains() -> Vec<(String, Vec<Vec<u8>>, Timestamp, Timestamp)> {
    let mut chains = Vec::new();
    for (dir, inside, outside) in [
        ("blueline/sdk28", "2020-01-01", "2026-06-01"),
        ("caiman/sdk36", "2025-09-28", "2025-10-10"),
        ("tegu/sdk36", "2026-03-01", "2026-03-10"),
    ] {
        let folder = vectors().join("google-keyattestation").join(dir);
        let mut names: Vec<PathBuf> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "pem"))
            .collect();
        names.sort();
        assert!(!names.is_empty(), "no chains in {}", folder.display());
        for path in names {
            let chain = parse_pem_chain(&std::fs::read_to_string(&path).unwrap()).unwrap();
            chains.push((path.display().to_string(), chain, at(inside), at(outside)));
        }
    }
    chains.push((
        "grapheneos-auditor/sample-5".to_owned(),
        graphene(),
        at("2025-11-15"),
        at("2025-12-15"),
    ));
    chains
}

#[test]
fn every_hardware_chain_verifies_inside_its_window_and_is_stale_outside_it() {
    let verifier = ChainVerifier::new(TrustAnchors::google());
    let chains = hardware_chains();
    assert_eq!(chains.len(), 10);
    for (name, chain, inside, outside) in &chains {
        let verified = verifier
            .verify(chain, *inside, &unchecked())
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert!(
            verified
                .key_description()
                .attestation_security_level
                .is_hardware(),
            "{name}"
        );
        let error = verifier.verify(chain, *outside, &unchecked()).unwrap_err();
        assert_eq!(
            error.reason(),
            RejectionReason::StaleAttestation,
            "{name}: {error}"
        );
    }
    // The 2026 chains end at the EC P-384 root; the others at the RSA key.
    let tegu = pem("tegu/sdk36/SB_EC_2026_ROOT.pem");
    let verified = verifier
        .verify(&tegu, at("2026-03-01"), &unchecked())
        .unwrap();
    assert_eq!(verified.anchor(), &Anchor::GoogleEcP384);
    let caiman = pem("caiman/sdk36/SB_EC_RKP.pem");
    let verified = verifier
        .verify(&caiman, at("2025-09-28"), &unchecked())
        .unwrap();
    assert_eq!(verified.anchor(), &Anchor::GoogleRsa);
    assert_eq!(
        verified.key_description().attestation_security_level,
        SecurityLevel::StrongBox
    );
    assert!(verified.attest_key_description().is_none());
    assert_eq!(verified.pinned_key_spki(), verified.leaf_spki());
}

#[test]
fn the_grapheneos_sample_pins_its_attest_key() {
    let verifier = ChainVerifier::new(TrustAnchors::google());
    let chain = graphene();
    let verified = verifier
        .verify(&chain, at("2025-11-15"), &unchecked())
        .unwrap();
    let root_of_trust = verified
        .key_description()
        .hardware_enforced
        .root_of_trust
        .clone()
        .unwrap();
    assert_eq!(
        root_of_trust.verified_boot_state,
        VerifiedBootState::SelfSigned
    );
    assert!(root_of_trust.device_locked);
    let attest_key = verified.attest_key_description().unwrap();
    assert!(
        attest_key
            .hardware_enforced
            .purposes
            .contains(&PURPOSE_ATTEST_KEY)
    );
    assert_eq!(
        verified.pinned_key_spki(),
        certificate_spki(&chain[1]).unwrap()
    );
    assert_ne!(verified.pinned_key_spki(), verified.leaf_spki());
}

#[test]
fn roots_are_pinned_by_key_and_nothing_else_is_trusted() {
    // Google's four RSA root certificates share the pinned key; the fifth is the EC root.
    let roots = vectors().join("google-roots");
    let pinned: Vec<Vec<u8>> = TrustAnchors::google()
        .keys()
        .map(|(_, key)| key.to_vec())
        .collect();
    for n in 0..5 {
        let spki =
            certificate_spki(&std::fs::read(roots.join(format!("google_root_{n}.der"))).unwrap())
                .unwrap();
        let want = usize::from(n == 4);
        assert_eq!(spki, pinned[want], "google_root_{n}");
    }
    // The roots.json of the Kotlin library names the same keys.
    let listed: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(vectors().join("google-keyattestation/roots.json")).unwrap(),
    )
    .unwrap();
    let listed: Vec<Vec<u8>> = listed
        .iter()
        .map(|pem| certificate_spki(&parse_pem_chain(pem).unwrap()[0]).unwrap())
        .collect();
    for key in &pinned {
        assert!(listed.contains(key));
    }

    let caiman = pem("caiman/sdk36/SB_EC_RKP.pem");
    let nobody = ChainVerifier::new(TrustAnchors::none());
    assert_eq!(
        nobody
            .verify(&caiman, at("2025-09-28"), &unchecked())
            .unwrap_err(),
        ChainError::UnknownRoot
    );
}

#[test]
fn software_chains_need_their_own_root() {
    // The RSA software chain's intermediates are 1024-bit keys, which this verifier refuses
    // (ring verifies RSA from 2048 bits): that chain never verifies, root pinned or not.
    let rsa = pem("marlin/sdk29/TEE_RSA_NONE.pem");
    let mut anchors = TrustAnchors::google();
    anchors
        .add_certificate("aosp-software", rsa.last().unwrap())
        .unwrap();
    let error = ChainVerifier::new(anchors)
        .verify(&rsa, at("2020-01-01"), &unchecked())
        .unwrap_err();
    assert_eq!(error, ChainError::BadSignature { index: 0 });
    {
        let name = "marlin/sdk29/TEE_EC_NONE.pem";
        let chain = pem(name);
        let google = ChainVerifier::new(TrustAnchors::google());
        let error = google
            .verify(&chain, at("2020-01-01"), &unchecked())
            .unwrap_err();
        assert_eq!(
            error.reason(),
            RejectionReason::InvalidTrustChain,
            "{name}: {error}"
        );
        let mut anchors = TrustAnchors::google();
        anchors
            .add_certificate("aosp-software", chain.last().unwrap())
            .unwrap();
        let verified = ChainVerifier::new(anchors)
            .verify(&chain, at("2020-01-01"), &unchecked())
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(
            verified.anchor(),
            &Anchor::Operator("aosp-software".to_owned())
        );
        assert_eq!(
            verified.key_description().attestation_security_level,
            SecurityLevel::Software
        );
    }
}

#[test]
fn the_status_list_rejects_revoked_serials_and_fails_closed() {
    let verifier = ChainVerifier::new(TrustAnchors::google());
    let chain = pem("caiman/sdk36/SB_EC_RKP.pem");
    let when = at("2025-09-28");
    let intermediate = x509_serial(&chain[2]);
    let list = RevocationList::parse(
        format!(r#"{{"entries": {{"{intermediate}": {{"status": "REVOKED", "reason": "KEY_COMPROMISE"}}}}}}"#)
            .as_bytes(),
        when,
    )
    .unwrap();
    let error = verifier
        .verify(
            &chain,
            when,
            &RevocationStatus::checked(&list, Duration::from_secs(86_400)),
        )
        .unwrap_err();
    assert_eq!(error, ChainError::Revoked { index: 2 });
    assert_eq!(error.reason(), RejectionReason::InvalidTrustChain);

    let clean =
        RevocationList::parse(br#"{"entries": {"1234": {"status": "SUSPENDED"}}}"#, when).unwrap();
    let day = Duration::from_secs(86_400);
    let verified = verifier
        .verify(&chain, when, &RevocationStatus::checked(&clean, day))
        .unwrap();
    // The witness names the serials as the list spells them, leaf first.
    assert_eq!(verified.serials().len(), chain.len());
    assert_eq!(verified.serials()[2], intermediate);
    let old = RevocationList::parse(br#"{"entries": {}}"#, when.saturating_sub(2 * day)).unwrap();
    assert_eq!(
        verifier
            .verify(&chain, when, &RevocationStatus::checked(&old, day))
            .unwrap_err(),
        ChainError::RevocationStale
    );
    assert_eq!(
        verifier
            .verify(&chain, when, &RevocationStatus::unavailable())
            .unwrap_err(),
        ChainError::RevocationUnavailable
    );
}

/// The serial of a certificate as the status list spells it.
fn x509_serial(der: &[u8]) -> String {
    use der::Decode as _;
    let certificate = x509_cert::Certificate::from_der(der).unwrap();
    serial_hex(certificate.tbs_certificate.serial_number.as_bytes())
}

#[test]
fn the_invalid_vectors_truncations_and_garbage_are_rejected() {
    let verifier = ChainVerifier::new(TrustAnchors::google());
    for name in [
        "invalid/malformed_rot_device_locked.pem",
        "invalid/tags_not_in_ascending_order.pem",
    ] {
        let chain = pem(name);
        let error = verifier
            .verify(&chain, at("2023-06-01"), &unchecked())
            .unwrap_err();
        assert_eq!(
            error.reason(),
            RejectionReason::InvalidTrustChain,
            "{name}: {error}"
        );
        // The first verifies up to Google's root but its RootOfTrust has a BER boolean; the
        // second's leaf was edited after signing, so its signature no longer verifies.
        if name.contains("malformed_rot") {
            assert!(
                matches!(error, ChainError::KeyDescription { index: 0, .. }),
                "{name}: {error}"
            );
        } else {
            assert_eq!(error, ChainError::BadSignature { index: 0 }, "{name}");
        }
    }
    let chain = pem("caiman/sdk36/SB_EC_RKP.pem");
    for cut in [1, 10, chain[0].len() / 2, chain[0].len() - 1] {
        let mut truncated = chain.clone();
        truncated[0].truncate(cut);
        let error = verifier
            .verify(&truncated, at("2025-09-28"), &unchecked())
            .unwrap_err();
        assert_eq!(
            error.reason(),
            RejectionReason::InvalidTrustChain,
            "cut at {cut}: {error}"
        );
    }
    // A flipped bit in the leaf's signed part.
    let mut flipped = chain.clone();
    let middle = flipped[0].len() / 2;
    flipped[0][middle] ^= 0x01;
    assert!(
        verifier
            .verify(&flipped, at("2025-09-28"), &unchecked())
            .is_err()
    );
    // Certificates in the wrong order.
    let mut reordered = chain.clone();
    reordered.swap(0, 1);
    assert!(
        verifier
            .verify(&reordered, at("2025-09-28"), &unchecked())
            .is_err()
    );
    let garbage = vec![vec![0xff; 300], vec![0x30, 0x82, 0xff, 0xff]];
    assert_eq!(
        verifier
            .verify(&garbage, at("2025-09-28"), &unchecked())
            .unwrap_err()
            .reason(),
        RejectionReason::InvalidTrustChain
    );
    let too_long: Vec<Vec<u8>> = std::iter::repeat_n(chain[0].clone(), 11).collect();
    assert_eq!(
        verifier
            .verify(&too_long, at("2025-09-28"), &unchecked())
            .unwrap_err(),
        ChainError::Size
    );
}

/// The chain-extension attack: a genuine leaf (its KeyDescription copied from a real device's
/// leaf, so its purposes are sign/verify, not ATTEST_KEY) whose key signs a fake leaf with its
/// own KeyDescription. Every signature verifies; the verifier must still refuse it. The same shape
/// with an attest key (purpose 7) directly above the leaf is legitimate.
#[test]
fn a_chain_extension_is_refused_and_an_attest_key_is_not() {
    use enigm_attest::android::key_description::KeyDescription;
    use enigm_attest::dev::{DevAttestationRoot, DevAttestedKey};
    use rcgen::{CertificateParams, CustomExtension, KeyPair, PKCS_ECDSA_P256_SHA256};

    let real_leaf = &pem("caiman/sdk36/SB_EC_RKP.pem")[0];
    let real_description = {
        use der::Decode as _;
        let certificate = x509_cert::Certificate::from_der(real_leaf).unwrap();
        let extension = certificate
            .tbs_certificate
            .extensions
            .unwrap()
            .into_iter()
            .find(|e| {
                e.extn_id.to_string() == enigm_attest::android::key_description::KEY_DESCRIPTION_OID
            })
            .unwrap();
        KeyDescription::decode(extension.extn_value.as_bytes()).unwrap()
    };
    assert!(
        !real_description
            .hardware_enforced
            .purposes
            .contains(&PURPOSE_ATTEST_KEY)
    );

    let root = DevAttestationRoot::generate().unwrap();
    let mut anchors = TrustAnchors::none();
    anchors
        .add_certificate("dev", &root.certificate_der())
        .unwrap();
    let verifier = ChainVerifier::new(anchors);
    let now = at("2026-11-22");
    let day = Duration::from_secs(86_400);

    // [genuine leaf, intermediate, root] from the development root, genuine leaf key known here.
    let build = |genuine: &KeyDescription| {
        let genuine_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let attested = DevAttestedKey::from_pem(&genuine_key.serialize_pem()).unwrap();
        let chain = root
            .issue_chain(
                &attested,
                genuine,
                now.saturating_sub(day),
                now.saturating_add(day),
            )
            .unwrap();
        // The attacker's leaf, signed by the genuine leaf's key, claiming a locked StrongBox.
        let mut forged = genuine.clone();
        forged.attestation_security_level = SecurityLevel::StrongBox;
        forged.hardware_enforced.purposes = vec![2];
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 11129, 2, 1, 17],
                forged.encode(),
            ));
        params.not_before = rcgen::date_time_ymd(2026, 1, 1);
        params.not_after = rcgen::date_time_ymd(2027, 12, 31);
        let issuer_params = CertificateParams::new(Vec::new()).unwrap();
        let issuer = issuer_params.self_signed(&genuine_key).unwrap();
        let attacker_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let fake = params
            .signed_by(&attacker_key, &issuer, &genuine_key)
            .unwrap();
        let mut extended = vec![fake.der().to_vec()];
        extended.extend(chain);
        extended
    };

    let extended = build(&real_description);
    let error = verifier.verify(&extended, now, &unchecked()).unwrap_err();
    assert_eq!(error, ChainError::ChainExtension { index: 1 });
    assert_eq!(error.reason(), RejectionReason::InvalidTrustChain);

    let mut attest_key = real_description.clone();
    attest_key.hardware_enforced.purposes = vec![PURPOSE_ATTEST_KEY];
    let with_attest_key = build(&attest_key);
    let verified = verifier
        .verify(&with_attest_key, now, &unchecked())
        .unwrap();
    assert!(verified.attest_key_description().is_some());
    assert_eq!(
        verified.pinned_key_spki(),
        certificate_spki(&with_attest_key[1]).unwrap()
    );

    // An extension two levels up is never acceptable, attest key or not.
    let mut deeper = with_attest_key.clone();
    deeper.insert(0, with_attest_key[0].clone());
    assert!(verifier.verify(&deeper, now, &unchecked()).is_err());
}

/// The cache of links and certificates above the leaf changes no outcome: a warm verifier still
/// checks validity, revocation and the leaf's signature on every call, a changed intermediate is
/// verified again, and chains under an unknown root teach it nothing.
#[test]
fn a_warm_verifier_decides_as_a_cold_one() {
    let chain = pem("caiman/sdk36/SB_EC_RKP.pem");
    let inside = at("2025-09-28");
    let verifier = ChainVerifier::new(TrustAnchors::google());
    let cold = verifier.verify(&chain, inside, &unchecked()).unwrap();
    let warm = verifier.verify(&chain, inside, &unchecked()).unwrap();
    assert_eq!(cold.serials(), warm.serials());
    assert_eq!(cold.leaf_spki(), warm.leaf_spki());
    assert_eq!(cold.key_description(), warm.key_description());

    assert_eq!(
        verifier
            .verify(&chain, at("2025-10-10"), &unchecked())
            .unwrap_err()
            .reason(),
        RejectionReason::StaleAttestation
    );
    let list = RevocationList::parse(
        format!(
            r#"{{"entries": {{"{}": {{"status": "SUSPENDED"}}}}}}"#,
            x509_serial(&chain[3])
        )
        .as_bytes(),
        inside,
    )
    .unwrap();
    assert_eq!(
        verifier
            .verify(
                &chain,
                inside,
                &RevocationStatus::checked(&list, Duration::from_secs(86_400))
            )
            .unwrap_err(),
        ChainError::Revoked { index: 3 }
    );

    // The leaf's last signature byte changed: always verified, never cached.
    let mut bad_leaf = chain.clone();
    *bad_leaf[0].last_mut().unwrap() ^= 0x01;
    assert!(verifier.verify(&bad_leaf, inside, &unchecked()).is_err());
    // An intermediate's last signature byte changed: other bytes, another cache key.
    let mut bad_intermediate = chain.clone();
    *bad_intermediate[2].last_mut().unwrap() ^= 0x01;
    assert!(
        verifier
            .verify(&bad_intermediate, inside, &unchecked())
            .is_err()
    );

    // A chain that fails at an unknown root leaves nothing behind: it fails the same way again
    // and the pinned verifier still accepts the genuine chain.
    let nobody = ChainVerifier::new(TrustAnchors::none());
    for _ in 0..2 {
        assert_eq!(
            nobody.verify(&chain, inside, &unchecked()).unwrap_err(),
            ChainError::UnknownRoot
        );
    }
    assert!(verifier.verify(&chain, inside, &unchecked()).is_ok());

    // The GrapheneOS sample omits its root: the link to the pinned key is cached too.
    let graphene = graphene();
    for _ in 0..2 {
        let verified = verifier
            .verify(&graphene, at("2025-11-15"), &unchecked())
            .unwrap();
        assert_eq!(verified.anchor(), &Anchor::GoogleRsa);
    }
}
