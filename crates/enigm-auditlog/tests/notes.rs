//! Signed notes and checkpoints: byte-for-byte agreement with the reference implementation
//! (golang.org/x/mod/sumdb/note, whose published test keys and signatures are used here),
//! round trips, and one case per way a note or checkpoint can be wrong.

// The helpers below are test code too, though clippy only sees that inside `#[test]` functions.
#![expect(
    clippy::unwrap_used,
    reason = "a test: fixtures that fail to build are the report"
)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use enigm_auditlog::{
    Checkpoint, CheckpointError, Hash, KeyStringError, Log, MAX_NOTE_LEN, MemoryStore, NoteError,
    NoteSigner, NoteVerifier, OpenCheckpointError, leaf_hash, open_checkpoint, open_note,
    sign_checkpoint, sign_note,
};
use enigm_crypto::Ed25519SigningKey;
use rand::SeedableRng;
use rand::rngs::StdRng;

// The example keys, text and signatures of golang.org/x/mod/sumdb/note's tests.
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
const PETER_SIG: &str = "\u{2014} PeterNeumann \
    x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "\u{2014} EnochRoot \
    rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

const ORIGIN: &str = "enigm.example/audit";

fn peter() -> NoteVerifier {
    NoteVerifier::from_key_string(PETER_VKEY).unwrap()
}

fn log_signer(seed: u64) -> NoteSigner {
    let key = Ed25519SigningKey::generate(&mut StdRng::seed_from_u64(seed));
    NoteSigner::new(ORIGIN, key).unwrap()
}

/// A checkpoint of a real 1000-leaf log.
fn checkpoint() -> Checkpoint {
    let mut log = Log::new(MemoryStore::new());
    let leaves: Vec<Hash> = (0u32..1000).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    log.append_leaves(&leaves).unwrap();
    Checkpoint::new(ORIGIN, 1000, log.root().unwrap(), Vec::new()).unwrap()
}

#[test]
fn reference_keys_and_signature_are_reproduced_byte_for_byte() {
    let signer = NoteSigner::from_key_string(PETER_SKEY).unwrap();
    assert_eq!(signer.name(), "PeterNeumann");
    assert_eq!(signer.key_id(), 0xc74f20a3);
    assert_eq!(signer.to_key_string().unwrap().as_str(), PETER_SKEY);
    assert_eq!(signer.verifier(), peter());
    assert_eq!(peter().to_key_string(), PETER_VKEY);
    assert_eq!(peter().to_string(), PETER_VKEY);

    // Ed25519 is deterministic, so our note must be the reference note exactly.
    let note = sign_note(TEXT, &signer).unwrap();
    assert_eq!(note, format!("{TEXT}\n{PETER_SIG}"));
    let opened = open_note(&note, &peter()).unwrap();
    assert_eq!(opened.text(), TEXT);
    assert_eq!(opened.key_name(), "PeterNeumann");
    assert_eq!(opened.key_id(), 0xc74f20a3);
}

#[test]
fn mangled_key_strings_are_refused() {
    // As the reference tests do: every proper substring, and every byte incremented.
    for key in [PETER_VKEY, ENOCH_VKEY] {
        for start in 0..key.len() {
            for end in start + 1..=key.len() {
                if (start, end) != (0, key.len()) {
                    assert!(
                        NoteVerifier::from_key_string(&key[start..end]).is_err(),
                        "{:?}",
                        &key[start..end]
                    );
                }
            }
        }
        for position in 0..key.len() {
            let mut bytes = key.as_bytes().to_vec();
            bytes[position] += 1;
            let text = String::from_utf8(bytes).unwrap();
            assert!(NoteVerifier::from_key_string(&text).is_err(), "{text:?}");
        }
    }
    for start in 0..PETER_SKEY.len() {
        for end in start + 1..=PETER_SKEY.len() {
            if (start, end) != (0, PETER_SKEY.len()) {
                assert!(NoteSigner::from_key_string(&PETER_SKEY[start..end]).is_err());
            }
        }
    }
    for position in 0..PETER_SKEY.len() {
        let mut bytes = PETER_SKEY.as_bytes().to_vec();
        bytes[position] += 1;
        let text = String::from_utf8(bytes).unwrap();
        assert!(NoteSigner::from_key_string(&text).is_err(), "{text:?}");
    }
}

#[test]
fn key_string_errors_say_what_is_wrong() {
    let cases: Vec<(String, KeyStringError)> = vec![
        (
            PETER_VKEY.replace("c74f20a3", "c74f20a4"),
            KeyStringError::KeyIdMismatch,
        ),
        (
            PETER_VKEY.replace("PeterNeumann", "Peter Neumann"),
            KeyStringError::InvalidName,
        ),
        (
            PETER_VKEY.replace("+ARpc", "+AhpC"),
            KeyStringError::UnsupportedAlgorithm,
        ),
        (
            "PeterNeumann+c74f20a3".to_owned(),
            KeyStringError::Malformed,
        ),
        (
            PETER_VKEY.replace("c74f20a3", "+74f20a3"),
            KeyStringError::Malformed,
        ),
        (
            // The identity point as the public key: a weak key.
            "Weak+00000000+AQEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
            KeyStringError::Key(enigm_crypto::KeyError::WeakKey),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(
            NoteVerifier::from_key_string(&text),
            Err(expected),
            "{text}"
        );
    }
    assert_eq!(
        NoteSigner::from_key_string(&PETER_SKEY.replace("c74f20a3", "c74f20a4")).err(),
        Some(KeyStringError::KeyIdMismatch)
    );
    assert_eq!(
        NoteSigner::from_key_string(&PETER_SKEY.replace("PRIVATE+KEY+", "PRIVATE+KEYS+")).err(),
        Some(KeyStringError::Malformed)
    );
    assert_eq!(
        NoteSigner::new("a+b", Ed25519SigningKey::from_seed(&[1; 32])).err(),
        Some(KeyStringError::InvalidName)
    );
}

#[test]
fn signatures_by_unknown_keys_are_ignored() {
    let note = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    assert_eq!(open_note(&note, &peter()).unwrap().text(), TEXT);
    let enoch = NoteVerifier::from_key_string(ENOCH_VKEY).unwrap();
    assert_eq!(open_note(&note, &enoch).unwrap().key_name(), "EnochRoot");
    // Repeated valid signatures are fine.
    let repeated = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}{PETER_SIG}{ENOCH_SIG}");
    assert!(open_note(&repeated, &peter()).is_ok());
    // A note signed only by others does not open.
    assert_eq!(
        open_note(format!("{TEXT}\n{ENOCH_SIG}"), &peter()),
        Err(NoteError::NoKnownSignature)
    );
    let stranger = log_signer(1).verifier();
    assert_eq!(
        open_note(&note, &stranger),
        Err(NoteError::NoKnownSignature)
    );
}

#[test]
fn a_bad_signature_by_the_known_key_rejects_the_note() {
    // Four extra base64 characters inside the signature, as in the reference tests.
    let corrupt = format!("{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    assert_eq!(
        open_note(format!("{TEXT}\n{corrupt}"), &peter()),
        Err(NoteError::InvalidSignature)
    );
    // Even next to a valid one.
    assert_eq!(
        open_note(format!("{TEXT}\n{PETER_SIG}{corrupt}"), &peter()),
        Err(NoteError::InvalidSignature)
    );
    // Modified text.
    let modified = format!("{TEXT}\n{PETER_SIG}").replace("cryptography", "cryptographY");
    assert_eq!(
        open_note(modified, &peter()),
        Err(NoteError::InvalidSignature)
    );
}

#[test]
fn malformed_notes_are_refused() {
    let text_then = |rest: &str| format!("{TEXT}{rest}");
    let cases: Vec<(&str, Vec<u8>, NoteError)> = vec![
        ("text only", TEXT.into(), NoteError::MissingSignatures),
        (
            "blank line, no signatures",
            text_then("\n").into(),
            NoteError::MissingSignatures,
        ),
        (
            "missing blank line",
            text_then(PETER_SIG).into(),
            NoteError::MissingSignatures,
        ),
        (
            "signature without final newline",
            text_then(&format!("\n{}", PETER_SIG.trim_end())).into(),
            NoteError::MissingSignatures,
        ),
        (
            "control character",
            format!("\x01{TEXT}\n{PETER_SIG}").into(),
            NoteError::ControlCharacter,
        ),
        (
            "carriage return",
            format!("{TEXT}\n{PETER_SIG}").replace('\n', "\r\n").into(),
            NoteError::ControlCharacter,
        ),
        (
            "tab",
            format!("\t{TEXT}\n{PETER_SIG}").into(),
            NoteError::ControlCharacter,
        ),
        (
            "not UTF-8",
            [
                b"\xff".as_slice(),
                format!("{TEXT}\n{PETER_SIG}").as_bytes(),
            ]
            .concat(),
            NoteError::NotUtf8,
        ),
        (
            "name with a space",
            text_then(&format!(
                "\n{}",
                PETER_SIG.replace("PeterNeumann", "Bad Name")
            ))
            .into(),
            NoteError::MalformedSignature,
        ),
        (
            "name with a plus",
            text_then(&format!(
                "\n{}",
                PETER_SIG.replace("PeterNeumann", "Peter+Neumann")
            ))
            .into(),
            NoteError::MalformedSignature,
        ),
        (
            "line after the signatures",
            text_then(&format!("\n{PETER_SIG}Unexpected line.\n")).into(),
            NoteError::MalformedSignature,
        ),
        (
            "hyphen instead of em dash",
            text_then(&format!("\n{}", PETER_SIG.replace('\u{2014}', "-"))).into(),
            NoteError::MalformedSignature,
        ),
        (
            "bad base64",
            text_then(&format!("\n{}", PETER_SIG.replace("x08go", "x08g!"))).into(),
            NoteError::MalformedSignature,
        ),
        (
            "unpadded base64",
            text_then(&format!("\n{}", PETER_SIG.replace("AM=", "AM"))).into(),
            NoteError::MalformedSignature,
        ),
        (
            "key id only",
            text_then("\n\u{2014} PeterNeumann x08gow==\n").into(),
            NoteError::MalformedSignature,
        ),
        (
            "empty signature",
            text_then("\n\u{2014} PeterNeumann \n").into(),
            NoteError::MalformedSignature,
        ),
        (
            // The right name with another key id is another key: ignored, so nothing verifies.
            "wrong key id",
            text_then(&format!("\n{}", PETER_SIG.replace("x08go", "x08gp"))).into(),
            NoteError::NoKnownSignature,
        ),
        (
            "101 signatures",
            text_then(&format!("\n{}", PETER_SIG.repeat(101))).into(),
            NoteError::TooManySignatures,
        ),
        (
            "oversized",
            format!("{}\n{TEXT}\n{PETER_SIG}", "a".repeat(MAX_NOTE_LEN)).into(),
            NoteError::TooLarge {
                len: MAX_NOTE_LEN + 1 + TEXT.len() + 1 + PETER_SIG.len(),
            },
        ),
    ];
    for (what, note, expected) in cases {
        assert_eq!(open_note(&note, &peter()), Err(expected), "{what}");
    }
    // The limits themselves are accepted.
    let hundred = text_then(&format!("\n{}", PETER_SIG.repeat(100)));
    assert!(open_note(hundred, &peter()).is_ok());
}

#[test]
fn note_texts_may_hold_blank_lines_but_must_be_terminated() {
    let signer = log_signer(2);
    let text = "first\n\nthird\n\n";
    let note = sign_note(text, &signer).unwrap();
    assert_eq!(open_note(&note, &signer.verifier()).unwrap().text(), text);
    for bad in ["", "no newline", "tab\there\n"] {
        assert!(sign_note(bad, &signer).is_err(), "{bad:?}");
    }
}

#[test]
fn checkpoints_round_trip() {
    let signer = log_signer(3);
    let checkpoint = checkpoint();
    let text = checkpoint.to_note_text();
    assert_eq!(
        text,
        format!("{ORIGIN}\n1000\n{}\n", checkpoint.root().to_base64())
    );
    let note = sign_checkpoint(&checkpoint, &signer).unwrap();
    assert!(note.starts_with(&text));
    let opened = open_checkpoint(&note, &signer.verifier()).unwrap();
    assert_eq!(opened.checkpoint(), &checkpoint);

    let extended = Checkpoint::new(
        ORIGIN,
        7,
        *checkpoint.root(),
        vec![
            "timestamp 1700000000".to_owned(),
            "\u{2014} not a signature".to_owned(),
        ],
    )
    .unwrap();
    let note = sign_checkpoint(&extended, &signer).unwrap();
    let opened = open_checkpoint(&note, &signer.verifier()).unwrap();
    assert_eq!(opened.into_checkpoint(), extended);

    let empty = Checkpoint::new(ORIGIN, 0, enigm_auditlog::empty_root(), Vec::new()).unwrap();
    let note = sign_checkpoint(&empty, &signer).unwrap();
    assert_eq!(
        open_checkpoint(&note, &signer.verifier())
            .unwrap()
            .checkpoint()
            .size(),
        0
    );
}

#[test]
fn checkpoints_signed_by_another_key_are_refused() {
    let (log_key, impostor) = (log_signer(4), log_signer(5));
    let note = sign_checkpoint(&checkpoint(), &impostor).unwrap();
    // Same name, different key: a different key id, so the signature is someone else's.
    assert_eq!(
        open_checkpoint(&note, &log_key.verifier()),
        Err(OpenCheckpointError::Note(NoteError::NoKnownSignature))
    );
    // Same name and key id, signature by another key: checked, and refused.
    let (text, signature_line) = note.split_once("\n\n").unwrap();
    let (_, encoded) = signature_line.trim_end().rsplit_once(' ').unwrap();
    let mut blob = STANDARD.decode(encoded).unwrap();
    blob[..4].copy_from_slice(&log_key.key_id().to_be_bytes());
    let forged = format!("{text}\n\n\u{2014} {ORIGIN} {}\n", STANDARD.encode(blob));
    assert_eq!(
        open_checkpoint(&forged, &log_key.verifier()),
        Err(OpenCheckpointError::Note(NoteError::InvalidSignature))
    );
}

#[test]
fn modified_checkpoints_are_refused() {
    let signer = log_signer(6);
    let note = sign_checkpoint(&checkpoint(), &signer).unwrap();
    for (from, to) in [
        ("\n1000\n", "\n1001\n"),
        ("\n1000\n", "\n100\n"),
        (ORIGIN, "enigm.example/audiT"),
    ] {
        let modified = note.replacen(from, to, 1);
        assert_ne!(modified, note);
        assert!(
            open_checkpoint(&modified, &signer.verifier()).is_err(),
            "{from} -> {to}"
        );
    }
    // Unsigned extension line inserted.
    let extended = note.replacen("\n\n", "\nextra\n\n", 1);
    assert_eq!(
        open_checkpoint(&extended, &signer.verifier()),
        Err(OpenCheckpointError::Note(NoteError::InvalidSignature))
    );
}

#[test]
fn origin_must_be_the_key_name() {
    let signer = log_signer(7);
    let other = Checkpoint::new("enigm.example/other", 1, leaf_hash(b"x"), Vec::new()).unwrap();
    assert_eq!(
        sign_checkpoint(&other, &signer),
        Err(OpenCheckpointError::OriginMismatch)
    );
    // Signed as a plain note, it carries a valid signature but is not this log's checkpoint.
    let note = sign_note(&other.to_note_text(), &signer).unwrap();
    assert_eq!(
        open_checkpoint(&note, &signer.verifier()),
        Err(OpenCheckpointError::OriginMismatch)
    );
    // A signed note that is not a checkpoint.
    let note = sign_note("hello\n", &signer).unwrap();
    assert_eq!(
        open_checkpoint(&note, &signer.verifier()),
        Err(OpenCheckpointError::Checkpoint(
            CheckpointError::TooFewLines
        ))
    );
}

#[test]
fn checkpoint_texts_are_parsed_strictly() {
    // The example of c2sp.org/tlog-checkpoint.
    let example =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    let parsed = Checkpoint::from_note_text(example).unwrap();
    assert_eq!(parsed.origin(), "example.com/behind-the-sofa");
    assert_eq!(parsed.size(), 20852163);
    assert_eq!(parsed.to_note_text(), example);

    let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
    let cases: Vec<(String, CheckpointError)> = vec![
        (format!("o\n5\n{root}"), CheckpointError::Unterminated),
        ("o\n5\n".to_owned(), CheckpointError::TooFewLines),
        ("o\n".to_owned(), CheckpointError::TooFewLines),
        ("\n".to_owned(), CheckpointError::TooFewLines),
        (format!("\n5\n{root}\n"), CheckpointError::InvalidOrigin),
        (
            format!("o\u{7}x\n5\n{root}\n"),
            CheckpointError::InvalidOrigin,
        ),
        (format!("o\n05\n{root}\n"), CheckpointError::InvalidSize),
        (format!("o\n00\n{root}\n"), CheckpointError::InvalidSize),
        (format!("o\n+5\n{root}\n"), CheckpointError::InvalidSize),
        (format!("o\n-1\n{root}\n"), CheckpointError::InvalidSize),
        (format!("o\n\n{root}\n"), CheckpointError::InvalidSize),
        (format!("o\n5 \n{root}\n"), CheckpointError::InvalidSize),
        (format!("o\n0x5\n{root}\n"), CheckpointError::InvalidSize),
        (
            format!("o\n18446744073709551616\n{root}\n"),
            CheckpointError::InvalidSize,
        ),
        ("o\n5\n\n".to_owned(), CheckpointError::InvalidRoot),
        (
            "o\n5\nnot base64!\n".to_owned(),
            CheckpointError::InvalidRoot,
        ),
        (
            // 31 bytes.
            "o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw==\n".to_owned(),
            CheckpointError::InvalidRoot,
        ),
        (
            // Unpadded.
            format!("o\n5\n{}\n", root.trim_end_matches('=')),
            CheckpointError::InvalidRoot,
        ),
        (
            // Non-canonical: the last character carries set padding bits.
            format!("o\n5\n{}J=\n", &root[..42]),
            CheckpointError::InvalidRoot,
        ),
        (
            format!("o\n5\n{root}\n\n"),
            CheckpointError::InvalidExtension,
        ),
        (
            format!("o\n5\n{root}\next\n\nmore\n"),
            CheckpointError::InvalidExtension,
        ),
        (
            format!("o\n5\n{root}\nta\tb\n"),
            CheckpointError::InvalidExtension,
        ),
        (
            format!("o\n5\n{root}\n{}\n", "x".repeat(64 * 1024)),
            CheckpointError::TooLarge,
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(Checkpoint::from_note_text(&text), Err(expected), "{text:?}");
    }
    // The largest size is accepted.
    let max = format!("o\n18446744073709551615\n{root}\n");
    assert_eq!(Checkpoint::from_note_text(&max).unwrap().size(), u64::MAX);
    assert_eq!(
        Checkpoint::from_note_text(&format!("o\n0\n{root}\n"))
            .unwrap()
            .size(),
        0
    );

    let hash = Hash::from_base64(root).unwrap();
    assert_eq!(
        Checkpoint::new("", 1, hash, Vec::new()),
        Err(CheckpointError::InvalidOrigin)
    );
    assert_eq!(
        Checkpoint::new("a\nb", 1, hash, Vec::new()),
        Err(CheckpointError::InvalidOrigin)
    );
    assert_eq!(
        Checkpoint::new("o", 1, hash, vec![String::new()]),
        Err(CheckpointError::InvalidExtension)
    );
    assert_eq!(
        Checkpoint::new("o", 1, hash, vec!["a\nb".to_owned()]),
        Err(CheckpointError::InvalidExtension)
    );
}

#[test]
fn debug_output_hides_the_private_key() {
    let signer = NoteSigner::from_key_string(PETER_SKEY).unwrap();
    let debug = format!("{signer:?}");
    assert!(debug.contains("PeterNeumann"));
    assert!(!debug.contains("AYEKFALV"));
    assert!(!debug.contains("PRIVATE"));
}

/// A signer kept outside the note code, as a PKCS#11 token key is; `fail` makes it refuse as
/// an unreachable token does.
#[derive(Debug)]
struct ElsewhereKey {
    key: Ed25519SigningKey,
    fail: bool,
}

impl enigm_crypto::Ed25519Signer for ElsewhereKey {
    fn verifying_key(&self) -> enigm_crypto::Ed25519VerifyingKey {
        self.key.verifying_key()
    }

    fn sign_ed25519(&self, message: &[u8]) -> Result<[u8; 64], enigm_crypto::SignerError> {
        if self.fail {
            return Err(enigm_crypto::SignerError::Token("unplugged".to_owned()));
        }
        Ok(self.key.sign(message))
    }
}

#[test]
fn an_external_signer_signs_byte_identical_notes_and_has_no_key_string() {
    let key = Ed25519SigningKey::from_seed(&[9; 32]);
    let software = NoteSigner::new(ORIGIN, key.clone()).unwrap();
    let external = NoteSigner::with_signer(
        ORIGIN,
        std::sync::Arc::new(ElsewhereKey {
            key: key.clone(),
            fail: false,
        }),
    )
    .unwrap();
    assert_eq!(external.verifier(), software.verifier());
    assert_eq!(external.key_id(), software.key_id());
    assert!(external.to_key_string().is_none());
    assert_eq!(
        sign_note(TEXT, &external).unwrap(),
        sign_note(TEXT, &software).unwrap()
    );
    let signed = sign_checkpoint(&checkpoint(), &external).unwrap();
    assert_eq!(signed, sign_checkpoint(&checkpoint(), &software).unwrap());
    assert!(open_checkpoint(&signed, &software.verifier()).is_ok());

    let unplugged = NoteSigner::with_signer(
        ORIGIN,
        std::sync::Arc::new(ElsewhereKey { key, fail: true }),
    )
    .unwrap();
    assert_eq!(sign_note(TEXT, &unplugged), Err(NoteError::SignerFailed));
    assert_eq!(
        sign_checkpoint(&checkpoint(), &unplugged),
        Err(OpenCheckpointError::Note(NoteError::SignerFailed))
    );
}
