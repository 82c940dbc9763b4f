//! Signing keys in a PKCS#11 token (an HSM, a smart card, SoftHSM2 in tests), through
//! `cryptoki`. The one part of this crate that talks to something outside the process: the
//! token's module is loaded and called; nothing here touches files or the network itself.
//!
//! Keys are generated on the token (private half sensitive and never extractable) and sign on
//! the token: Ed25519 with CKM_EDDSA over the message; ECDSA P-256 with CKM_ECDSA over a SHA-256
//! digest computed here (SoftHSM2 has no CKM_ECDSA_SHA256 for every version), giving `r‖s`,
//! converted to ASN.1 DER for TUF. The PIN is handed to the token and dropped; it never appears
//! in `Debug` or errors.
//!
//! The module is initialised once per process and kept (see [`Pkcs11Token::open`]). SoftHSM2
//! reads `SOFTHSM2_CONF` at that moment, so every token a process uses must be in the one
//! configuration's token directory. A token's login is shared by all sessions of the process:
//! while one [`Pkcs11Token`] for a token is open, opening it again is refused
//! ([`Pkcs11Error::AlreadyOpen`]) rather than silently skipping the PIN check.

use std::path::Path;
use std::sync::{Arc, Mutex};

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error as CryptokiError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use secrecy::SecretString;

/// DER of the Ed25519 curve OID (1.3.101.112), as CKA_EC_PARAMS.
const ED25519_PARAMS: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];
/// DER of the P-256 curve OID (1.2.840.10045.3.1.7), as CKA_EC_PARAMS.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// The kinds of signing key this client generates and signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pkcs11KeyAlgorithm {
    /// CKK_EC_EDWARDS on edwards25519; signs with CKM_EDDSA (pure Ed25519).
    Ed25519,
    /// CKK_EC on secp256r1; signs with CKM_ECDSA over a SHA-256 digest made on the host.
    EcdsaP256,
}

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), followed by the 32-byte key.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A key's public half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicKey {
    Ed25519([u8; 32]),
    /// The uncompressed point.
    EcdsaP256([u8; 65]),
}

impl PublicKey {
    pub fn algorithm(&self) -> Pkcs11KeyAlgorithm {
        match self {
            PublicKey::Ed25519(_) => Pkcs11KeyAlgorithm::Ed25519,
            PublicKey::EcdsaP256(_) => Pkcs11KeyAlgorithm::EcdsaP256,
        }
    }

    /// The key as a SubjectPublicKeyInfo (DER): RFC 8410 for Ed25519, id-ecPublicKey with
    /// prime256v1 and the uncompressed point for P-256 (TUF's `ecdsa` keys are its PEM form).
    pub fn spki_der(&self) -> Vec<u8> {
        match self {
            PublicKey::Ed25519(key) => [&ED25519_SPKI_PREFIX[..], &key[..]].concat(),
            PublicKey::EcdsaP256(point) => crate::ecdsa::p256_spki_from_point(point),
        }
    }
}

/// What [`Pkcs11Token::list_keys`] says about one key pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11KeyInfo {
    pub label: String,
    pub public_key: PublicKey,
}

#[derive(Debug, thiserror::Error)]
pub enum Pkcs11Error {
    #[error("cannot load the PKCS#11 module: {0}")]
    Module(String),
    #[error("no token labelled `{0}`")]
    NoSuchToken(String),
    #[error("the token PIN is incorrect")]
    PinIncorrect,
    #[error("the token PIN is locked")]
    PinLocked,
    #[error("the token is open already in this process")]
    AlreadyOpen,
    #[error("a key labelled `{0}` exists already")]
    DuplicateLabel(String),
    #[error("the key `{0}` is of a kind this client does not sign with")]
    UnsupportedKey(String),
    #[error("the token refused: {0}")]
    Token(String),
}

fn token_error(error: CryptokiError) -> Pkcs11Error {
    match error {
        CryptokiError::Pkcs11(RvError::PinIncorrect, _) => Pkcs11Error::PinIncorrect,
        CryptokiError::Pkcs11(RvError::PinLocked, _) => Pkcs11Error::PinLocked,
        CryptokiError::Pkcs11(RvError::UserAlreadyLoggedIn, _) => Pkcs11Error::AlreadyOpen,
        other => Pkcs11Error::Token(other.to_string()),
    }
}

/// One initialised context per module for the whole process: a PKCS#11 module is process-wide
/// state, and finalising it while another context still uses it crashes the process. The
/// contexts are kept until the process exits.
fn shared_context(module: &Path) -> Result<Pkcs11, Pkcs11Error> {
    static CONTEXTS: Mutex<Vec<(std::path::PathBuf, Pkcs11)>> = Mutex::new(Vec::new());
    let mut contexts = CONTEXTS
        .lock()
        .map_err(|_| Pkcs11Error::Module("context lock poisoned".to_owned()))?;
    if let Some((_, context)) = contexts.iter().find(|(path, _)| path == module) {
        return Ok(context.clone());
    }
    let context = Pkcs11::new(module).map_err(|error| Pkcs11Error::Module(error.to_string()))?;
    match context.initialize(CInitializeArgs::OsThreads) {
        Ok(()) | Err(CryptokiError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(error) => return Err(Pkcs11Error::Module(error.to_string())),
    }
    contexts.push((module.to_path_buf(), context.clone()));
    Ok(context)
}

/// A logged-in user session on one token.
pub struct Pkcs11Token {
    // The process-wide context (never finalised, see `shared_context`), held for clarity.
    _context: Pkcs11,
    session: Arc<Mutex<Session>>,
}

impl std::fmt::Debug for Pkcs11Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pkcs11Token")
    }
}

/// A key pair on the token. It keeps the token's session (and so the login) open while it lives.
pub struct Pkcs11Key {
    session: Arc<Mutex<Session>>,
    label: String,
    private: ObjectHandle,
    public: PublicKey,
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("label", &self.label)
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Token {
    /// Loads `module` (once per process), finds the token labelled `token_label` and logs in
    /// as its user with `pin`.
    pub fn open(module: &Path, token_label: &str, pin: SecretString) -> Result<Self, Pkcs11Error> {
        let context = shared_context(module)?;
        let slots = context.get_slots_with_token().map_err(token_error)?;
        let slot = slots
            .into_iter()
            .find(|slot| {
                context
                    .get_token_info(*slot)
                    .is_ok_and(|info| info.label().trim_end() == token_label)
            })
            .ok_or_else(|| Pkcs11Error::NoSuchToken(token_label.chars().take(64).collect()))?;
        let session = context.open_rw_session(slot).map_err(token_error)?;
        // cryptoki has its own (older) secrecy wrapper; the PIN moves into it and is zeroized
        // with it.
        let pin =
            cryptoki::types::AuthPin::new(secrecy::ExposeSecret::expose_secret(&pin).to_owned());
        session
            .login(UserType::User, Some(&pin))
            .map_err(token_error)?;
        Ok(Pkcs11Token {
            _context: context,
            session: Arc::new(Mutex::new(session)),
        })
    }

    fn with_session<T>(
        &self,
        run: impl FnOnce(&Session) -> Result<T, CryptokiError>,
    ) -> Result<T, Pkcs11Error> {
        let session = self
            .session
            .lock()
            .map_err(|_| Pkcs11Error::Token("session lock poisoned".to_owned()))?;
        run(&session).map_err(token_error)
    }

    /// The key pair labelled `label`, if the token has one.
    pub fn find_key(&self, label: &str) -> Result<Option<Pkcs11Key>, Pkcs11Error> {
        let template = |class| {
            vec![
                Attribute::Class(class),
                Attribute::Label(label.as_bytes().to_vec()),
            ]
        };
        let private = self.with_session(|s| s.find_objects(&template(ObjectClass::PRIVATE_KEY)))?;
        let public = self.with_session(|s| s.find_objects(&template(ObjectClass::PUBLIC_KEY)))?;
        let (Some(private), Some(public)) = (private.first(), public.first()) else {
            return Ok(None);
        };
        let public = self.read_public(*public, label)?;
        Ok(Some(Pkcs11Key {
            session: self.session.clone(),
            label: label.to_owned(),
            private: *private,
            public,
        }))
    }

    /// Every signing key pair on the token (a labelled private key with a public key of the
    /// same label), in label order. Objects of kinds this client does not sign with (RSA keys,
    /// certificates, other curves) are left out rather than failing the listing.
    pub fn list_keys(&self) -> Result<Vec<Pkcs11KeyInfo>, Pkcs11Error> {
        let privates =
            self.with_session(|s| s.find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)]))?;
        let mut labels = Vec::new();
        for handle in privates {
            let attributes =
                self.with_session(|s| s.get_attributes(handle, &[AttributeType::Label]))?;
            for attribute in attributes {
                if let Attribute::Label(bytes) = attribute
                    && let Ok(label) = String::from_utf8(bytes)
                {
                    labels.push(label);
                }
            }
        }
        labels.sort();
        labels.dedup();
        let mut keys = Vec::new();
        for label in labels {
            match self.find_key(&label) {
                Ok(Some(key)) => keys.push(Pkcs11KeyInfo {
                    label,
                    public_key: key.public,
                }),
                Ok(None) | Err(Pkcs11Error::UnsupportedKey(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(keys)
    }

    fn read_public(&self, handle: ObjectHandle, label: &str) -> Result<PublicKey, Pkcs11Error> {
        let attributes = self.with_session(|s| {
            s.get_attributes(
                handle,
                &[
                    AttributeType::KeyType,
                    AttributeType::EcParams,
                    AttributeType::EcPoint,
                ],
            )
        })?;
        let mut key_type = None;
        let mut params = Vec::new();
        let mut point = Vec::new();
        for attribute in attributes {
            match attribute {
                Attribute::KeyType(kind) => key_type = Some(kind),
                Attribute::EcParams(value) => params = value,
                Attribute::EcPoint(value) => point = value,
                _ => {}
            }
        }
        let unsupported = || Pkcs11Error::UnsupportedKey(label.chars().take(64).collect());
        // CKA_EC_POINT is a DER OCTET STRING around the point (some tokens give it bare).
        let point = match point.as_slice() {
            [0x04, length, rest @ ..] if usize::from(*length) == rest.len() => rest.to_vec(),
            bare => bare.to_vec(),
        };
        match key_type {
            Some(kind) if kind == KeyType::EC_EDWARDS && params == ED25519_PARAMS => Ok(
                PublicKey::Ed25519(point.as_slice().try_into().map_err(|_| unsupported())?),
            ),
            Some(kind) if kind == KeyType::EC && params == P256_PARAMS => Ok(PublicKey::EcdsaP256(
                point.as_slice().try_into().map_err(|_| unsupported())?,
            )),
            _ => Err(unsupported()),
        }
    }

    /// Generates a key pair labelled `label` on the token: the private half sensitive, never
    /// extractable, a token object that can only sign.
    pub fn generate_key(
        &self,
        label: &str,
        algorithm: Pkcs11KeyAlgorithm,
    ) -> Result<Pkcs11Key, Pkcs11Error> {
        // Any object with the label blocks it (a lone public key too), so `find_key` can never
        // pick between two keys of one label.
        let existing =
            self.with_session(|s| s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())]))?;
        if !existing.is_empty() {
            return Err(Pkcs11Error::DuplicateLabel(
                label.chars().take(64).collect(),
            ));
        }
        let (mechanism, params) = match algorithm {
            Pkcs11KeyAlgorithm::Ed25519 => {
                (Mechanism::EccEdwardsKeyPairGen, ED25519_PARAMS.to_vec())
            }
            Pkcs11KeyAlgorithm::EcdsaP256 => (Mechanism::EccKeyPairGen, P256_PARAMS.to_vec()),
        };
        let label_bytes = label.as_bytes().to_vec();
        let public_template = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::EcParams(params),
            Attribute::Label(label_bytes.clone()),
        ];
        let private_template = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label_bytes),
        ];
        let (public, private) = self.with_session(|s| {
            s.generate_key_pair(&mechanism, &public_template, &private_template)
        })?;
        let public = self.read_public(public, label)?;
        Ok(Pkcs11Key {
            session: self.session.clone(),
            label: label.to_owned(),
            private,
            public,
        })
    }
}

impl Pkcs11Key {
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn algorithm(&self) -> Pkcs11KeyAlgorithm {
        self.public.algorithm()
    }

    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The signature on the token: Ed25519 (64 bytes) over `message`, or ECDSA P-256 over
    /// SHA-256(`message`) as fixed `r‖s` (64 bytes).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Pkcs11Error> {
        let session = self
            .session
            .lock()
            .map_err(|_| Pkcs11Error::Token("session lock poisoned".to_owned()))?;
        match self.public {
            PublicKey::Ed25519(_) => session
                .sign(
                    &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                    self.private,
                    message,
                )
                .map_err(token_error),
            PublicKey::EcdsaP256(_) => session
                .sign(&Mechanism::Ecdsa, self.private, &crate::sha256(message))
                .map_err(token_error),
        }
    }

    /// The signature in TUF's form: Ed25519 as is, ECDSA as ASN.1 DER.
    pub fn sign_for_tuf(&self, message: &[u8]) -> Result<Vec<u8>, Pkcs11Error> {
        let signature = self.sign(message)?;
        match self.public {
            PublicKey::Ed25519(_) => Ok(signature),
            PublicKey::EcdsaP256(_) => crate::ecdsa::ecdsa_fixed_to_der(&signature)
                .map_err(|error| Pkcs11Error::Token(error.to_string())),
        }
    }

    /// Whether the private half is out of reach: the token reports it sensitive and not
    /// extractable, and does not give out its value (CKA_VALUE).
    pub fn private_is_protected(&self) -> Result<bool, Pkcs11Error> {
        let session = self
            .session
            .lock()
            .map_err(|_| Pkcs11Error::Token("session lock poisoned".to_owned()))?;
        let attributes = session
            .get_attributes(
                self.private,
                &[AttributeType::Sensitive, AttributeType::Extractable],
            )
            .map_err(token_error)?;
        let mut sensitive = false;
        let mut extractable = true;
        for attribute in attributes {
            match attribute {
                Attribute::Sensitive(value) => sensitive = value,
                Attribute::Extractable(value) => extractable = value,
                _ => {}
            }
        }
        // cryptoki leaves out attributes the token refuses (CKR_ATTRIBUTE_SENSITIVE); a token
        // that errors instead refuses just as well.
        let value_readable = session
            .get_attributes(self.private, &[AttributeType::Value])
            .is_ok_and(|values| {
                values
                    .iter()
                    .any(|value| matches!(value, Attribute::Value(bytes) if !bytes.is_empty()))
            });
        Ok(sensitive && !extractable && !value_readable)
    }
}
