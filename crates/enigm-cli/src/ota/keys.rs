//! The signing workstation's keys: in a PKCS#11 token (`--pkcs11-module PATH --token-label L`,
//! the token PIN from `--token-pin-file` or a prompt, never an argument), or, for development
//! only, in files (`--insecure-dev-key-dir DIR`, refused inside a git work tree so that they can
//! never be committed). `keys init` and `keys rotate` sign new root versions with them.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use enigm_api::paths;
use enigm_api::releases::{OnlineKeysView, RepositoryView};
use enigm_ota::client::TrustedMetadata;
use enigm_ota::director::{DirectorKeys, director_keys};
use enigm_ota::metadata::Root;
use enigm_ota::repository::{RootKeys, build_root};
use enigm_ota::{Key, MetadataSigner, SignerError, SoftwareSigner, sign_metadata};
use secrecy::{ExposeSecret as _, SecretString};

use crate::client::CommandClient;
use crate::output;
use crate::secrets::PinSource;

/// Default key labels, one per authority role.
pub(crate) const ROOT_LABEL: &str = "enigm-ota-root";
pub(crate) const TARGETS_LABEL: &str = "enigm-ota-targets";
pub(crate) const RELEASE_LABEL: &str = "enigm-ota-release";

/// Where the keys are: a PKCS#11 token (`--pkcs11-module` with `--token-label`) or, for
/// development only, key files (`--insecure-dev-key-dir`); exactly one of the two is required.
#[derive(Debug, Clone, Args)]
#[command(group(
    clap::ArgGroup::new("key_source")
        .args(["pkcs11_module", "insecure_dev_key_dir"])
        .required(true)
))]
pub(crate) struct KeySourceArgs {
    /// The PKCS#11 module of the token (e.g. /usr/lib/softhsm/libsofthsm2.so); required, with
    /// --token-label, unless --insecure-dev-key-dir.
    #[arg(long, value_name = "PATH", requires = "token_label")]
    pkcs11_module: Option<PathBuf>,
    /// The token's label (required with --pkcs11-module), e.g. `release-hsm`.
    #[arg(long, value_name = "LABEL", requires = "pkcs11_module")]
    token_label: Option<String>,
    /// File whose content is the token's user PIN; prompted for otherwise.
    #[arg(long, value_name = "FILE", requires = "pkcs11_module")]
    token_pin_file: Option<PathBuf>,
    /// INSECURE, development only: keys as files in DIR (created 0700, outside any git work
    /// tree). Production keys live in a PKCS#11 token.
    #[arg(long, value_name = "DIR", conflicts_with = "pkcs11_module")]
    insecure_dev_key_dir: Option<PathBuf>,
}

/// The algorithm of keys created now.
#[derive(Debug, Clone, Args)]
pub(crate) struct AlgorithmArg {
    /// Key algorithm of keys created now: `ed25519` or `ecdsa-p256`.
    #[arg(long, default_value = "ed25519", value_parser = ["ed25519", "ecdsa-p256"])]
    algorithm: String,
}

impl AlgorithmArg {
    fn algorithm(&self) -> enigm_crypto::pkcs11::Pkcs11KeyAlgorithm {
        if self.algorithm == "ecdsa-p256" {
            enigm_crypto::pkcs11::Pkcs11KeyAlgorithm::EcdsaP256
        } else {
            enigm_crypto::pkcs11::Pkcs11KeyAlgorithm::Ed25519
        }
    }
}

/// The signing workstation's token, optional: `enigm ota keys show` names the keys it holds.
#[derive(Debug, Clone, Args)]
pub(crate) struct OptionalKeySourceArgs {
    /// The PKCS#11 module of the workstation's token, to show the label of each key it holds.
    #[arg(long, value_name = "PATH", requires = "token_label")]
    pkcs11_module: Option<PathBuf>,
    /// The token's label (required with --pkcs11-module).
    #[arg(long, value_name = "LABEL", requires = "pkcs11_module")]
    token_label: Option<String>,
    /// File whose content is the token's user PIN; prompted for otherwise.
    #[arg(long, value_name = "FILE", requires = "pkcs11_module")]
    token_pin_file: Option<PathBuf>,
    /// INSECURE, development only: the key files' directory, to show their labels.
    #[arg(long, value_name = "DIR", conflicts_with = "pkcs11_module")]
    insecure_dev_key_dir: Option<PathBuf>,
}

impl OptionalKeySourceArgs {
    /// Whether no key store was named.
    pub(crate) fn is_empty(&self) -> bool {
        self.pkcs11_module.is_none() && self.insecure_dev_key_dir.is_none()
    }

    /// The key store, when one was named.
    pub(crate) fn open(&self) -> anyhow::Result<Option<KeyStore>> {
        if self.is_empty() {
            return Ok(None);
        }
        KeySourceArgs {
            pkcs11_module: self.pkcs11_module.clone(),
            token_label: self.token_label.clone(),
            token_pin_file: self.token_pin_file.clone(),
            insecure_dev_key_dir: self.insecure_dev_key_dir.clone(),
        }
        .open()
        .map(Some)
    }
}

/// A role of the signing workstation's keys, as `enigm ota keys rotate --role` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WorkstationRole {
    Root,
    Targets,
    Release,
}

impl WorkstationRole {
    fn name(self) -> &'static str {
        match self {
            WorkstationRole::Root => "root",
            WorkstationRole::Targets => "targets",
            WorkstationRole::Release => "release-signing",
        }
    }

    /// The key ids `root` names for this role (none when it names none).
    pub(crate) fn key_ids(self, root: &Root) -> Vec<String> {
        match self {
            WorkstationRole::Root | WorkstationRole::Targets => root
                .roles
                .get(if self == WorkstationRole::Root {
                    "root"
                } else {
                    "targets"
                })
                .map(|role| role.keyids.clone())
                .unwrap_or_default(),
            WorkstationRole::Release => enigm_ota::release::release_signing(root)
                .map(|signing| signing.keys.into_keys().collect())
                .unwrap_or_default(),
        }
    }
}

/// The first 16 hex digits of a key id, as `enigm ota keys show` prints them.
pub(crate) fn short_key_id(id: &str) -> String {
    id.chars().take(16).collect()
}

/// An opened key store.
pub(crate) enum KeyStore {
    Token(enigm_crypto::pkcs11::Pkcs11Token),
    Files(PathBuf),
}

/// One signing key, wherever it lives.
pub(crate) enum WorkstationKey {
    Token(enigm_crypto::pkcs11::Pkcs11Key),
    Software(SoftwareSigner),
}

impl MetadataSigner for WorkstationKey {
    fn key(&self) -> Key {
        match self {
            WorkstationKey::Software(signer) => signer.key(),
            WorkstationKey::Token(key) => key.key(),
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        match self {
            WorkstationKey::Software(signer) => signer.sign(message),
            WorkstationKey::Token(key) => MetadataSigner::sign(key, message),
        }
    }
}

impl KeySourceArgs {
    pub(crate) fn open(&self) -> anyhow::Result<KeyStore> {
        if let Some(dir) = &self.insecure_dev_key_dir {
            refuse_inside_git(dir)?;
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
            set_mode(dir, 0o700)?;
            eprintln!(
                "warning: INSECURE development keys in {} (never for production)",
                dir.display()
            );
            return Ok(KeyStore::Files(dir.clone()));
        }
        let (Some(module), Some(label)) = (&self.pkcs11_module, &self.token_label) else {
            anyhow::bail!(
                "name the keys: --pkcs11-module PATH --token-label LABEL (or, for development \
                 only, --insecure-dev-key-dir DIR)"
            );
        };
        let pin = token_pin(self.token_pin_file.as_deref())?;
        let token = enigm_crypto::pkcs11::Pkcs11Token::open(module, label, pin)
            .with_context(|| format!("cannot open the token `{label}`"))?;
        Ok(KeyStore::Token(token))
    }
}

/// A token's user PIN: from `file` (its first line's end trimmed), else prompted for on a
/// terminal. Never an argument.
pub(crate) fn token_pin(file: Option<&Path>) -> anyhow::Result<SecretString> {
    if let Some(file) = file {
        let text = crate::secrets::read_secret_file(file)
            .with_context(|| format!("cannot read the token PIN file `{}`", file.display()))?;
        return Ok(SecretString::from(
            text.expose_secret()
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
        ));
    }
    anyhow::ensure!(
        std::io::stdin().is_terminal(),
        "no token PIN: pass --token-pin-file FILE or run on a terminal"
    );
    let pin = rpassword::prompt_password("Token PIN: ").context("cannot read the token PIN")?;
    Ok(SecretString::from(pin))
}

fn refuse_inside_git(dir: &Path) -> anyhow::Result<()> {
    let absolute = std::path::absolute(dir).context("cannot resolve the key directory")?;
    for ancestor in absolute.ancestors() {
        if ancestor.join(".git").exists() {
            anyhow::bail!(
                "`{}` is inside the git work tree `{}`: development keys must live outside any \
                 repository",
                dir.display(),
                ancestor.display()
            );
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot restrict `{}`", path.display()))
}

impl KeyStore {
    /// Every key in the store with its label, in label order.
    pub(crate) fn labelled_keys(&self) -> anyhow::Result<Vec<(String, Key)>> {
        match self {
            KeyStore::Token(token) => Ok(token
                .list_keys()
                .context("cannot list the keys on the token")?
                .into_iter()
                .map(|info| {
                    let key = match info.public_key {
                        enigm_crypto::pkcs11::PublicKey::Ed25519(public) => Key::ed25519(&public),
                        enigm_crypto::pkcs11::PublicKey::EcdsaP256(point) => {
                            Key::ecdsa_p256(&point)
                        }
                    };
                    (info.label, key)
                })
                .collect()),
            KeyStore::Files(dir) => {
                let mut labels = Vec::new();
                for entry in std::fs::read_dir(dir)
                    .with_context(|| format!("cannot read `{}`", dir.display()))?
                {
                    let name = entry?.file_name();
                    if let Some(label) = name.to_str().and_then(|name| name.strip_suffix(".key")) {
                        labels.push(label.to_owned());
                    }
                }
                labels.sort();
                let mut keys = Vec::new();
                for label in labels {
                    if let Some(key) = self.find(&label)? {
                        keys.push((label, key.key()));
                    }
                }
                Ok(keys)
            }
        }
    }

    /// The key that signs for `role` under `root`: the one labelled `label` when given (refused
    /// unless `root` names it for the role, before anything is signed), else the one in the
    /// store whose key id `root` names for the role, whatever its label. `flag` is the option
    /// that names the label, for the error.
    pub(crate) fn for_role(
        &self,
        root: &Root,
        role: WorkstationRole,
        label: Option<&str>,
        flag: &str,
    ) -> anyhow::Result<(String, WorkstationKey)> {
        let expected = role.key_ids(root);
        let named = || {
            expected
                .iter()
                .map(|id| short_key_id(id))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let keys = self.labelled_keys()?;
        let matching: Vec<&String> = keys
            .iter()
            .filter(|(_, key)| expected.contains(&key.key_id()))
            .map(|(label, _)| label)
            .collect();
        let held = || {
            if keys.is_empty() {
                "none".to_owned()
            } else {
                keys.iter()
                    .map(|(label, key)| format!("`{label}` ({})", short_key_id(&key.key_id())))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let label = match (label, matching.first()) {
            (Some(label), _) => {
                let key = self.find(label)?.with_context(|| {
                    format!(
                        "no key labelled `{label}` here (it holds {}); the {} key of root \
                         version {} has key id {}: pass {flag} with its label, or leave {flag} \
                         out to find it by key id",
                        held(),
                        role.name(),
                        root.version,
                        named()
                    )
                })?;
                if !expected.contains(&key.key().key_id()) {
                    let hint = matching.first().map_or_else(
                        || "no key here is one it names: open the token that holds it".to_owned(),
                        |found| format!("the one here is `{found}`: pass {flag} {found}, or leave {flag} out"),
                    );
                    anyhow::bail!(
                        "the key `{label}` is not the {} key of root version {} (key id {}); {hint}",
                        role.name(),
                        root.version,
                        named()
                    );
                }
                return Ok((label.to_owned(), key));
            }
            (None, Some(found)) => (*found).clone(),
            (None, None) => anyhow::bail!(
                "no key here is the {} key of root version {} (key id {}); it holds {}: open the \
                 token that holds it, or pass {flag} LABEL",
                role.name(),
                root.version,
                named(),
                held()
            ),
        };
        let key = self.get(&label)?;
        Ok((label, key))
    }

    /// The key with `label`, if it exists.
    pub(crate) fn find(&self, label: &str) -> anyhow::Result<Option<WorkstationKey>> {
        match self {
            KeyStore::Token(token) => Ok(token
                .find_key(label)
                .with_context(|| format!("cannot read key `{label}` from the token"))?
                .map(WorkstationKey::Token)),
            KeyStore::Files(dir) => {
                let path = dir.join(format!("{label}.key"));
                if !path.exists() {
                    return Ok(None);
                }
                let text = zeroize::Zeroizing::new(
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read `{}`", path.display()))?,
                );
                let (kind, body) = text
                    .trim()
                    .split_once(':')
                    .context("a development key file is malformed")?;
                let bytes = zeroize::Zeroizing::new(
                    hex::decode(body).context("a development key file is malformed")?,
                );
                let signer = match kind {
                    "ed25519" => {
                        let seed: [u8; 32] = bytes
                            .as_slice()
                            .try_into()
                            .context("a development Ed25519 key is not 32 bytes")?;
                        SoftwareSigner::Ed25519(enigm_crypto::Ed25519SigningKey::from_seed(&seed))
                    }
                    "ecdsa-p256" => SoftwareSigner::EcdsaP256(
                        enigm_crypto::EcdsaP256SigningKey::from_pkcs8(&bytes)
                            .map_err(|error| anyhow::anyhow!("{error}"))?,
                    ),
                    other => anyhow::bail!("unknown development key kind `{other}`"),
                };
                Ok(Some(WorkstationKey::Software(signer)))
            }
        }
    }

    /// The key with `label`, which must exist.
    pub(crate) fn get(&self, label: &str) -> anyhow::Result<WorkstationKey> {
        self.find(label)?
            .with_context(|| format!("no key labelled `{label}` (run `enigm ota keys init`)"))
    }

    /// The key with `label`, created when missing (on the token: generated there, never
    /// extractable).
    fn get_or_create(
        &self,
        label: &str,
        algorithm: enigm_crypto::pkcs11::Pkcs11KeyAlgorithm,
    ) -> anyhow::Result<(WorkstationKey, bool)> {
        if let Some(key) = self.find(label)? {
            return Ok((key, false));
        }
        let key = match self {
            KeyStore::Token(token) => WorkstationKey::Token(
                token
                    .generate_key(label, algorithm)
                    .with_context(|| format!("cannot create key `{label}` on the token"))?,
            ),
            KeyStore::Files(dir) => {
                let (signer, text) = match algorithm {
                    enigm_crypto::pkcs11::Pkcs11KeyAlgorithm::Ed25519 => {
                        let key = enigm_crypto::Ed25519SigningKey::generate(&mut rand::rngs::OsRng);
                        let text = format!("ed25519:{}", hex::encode(*key.seed()));
                        (SoftwareSigner::Ed25519(key), text)
                    }
                    enigm_crypto::pkcs11::Pkcs11KeyAlgorithm::EcdsaP256 => {
                        let key = enigm_crypto::EcdsaP256SigningKey::generate()
                            .map_err(|error| anyhow::anyhow!("{error}"))?;
                        let text = format!("ecdsa-p256:{}", hex::encode(key.pkcs8()));
                        (SoftwareSigner::EcdsaP256(key), text)
                    }
                };
                let text = zeroize::Zeroizing::new(text);
                let path = dir.join(format!("{label}.key"));
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode_0600()
                    .open(&path)
                    .with_context(|| format!("cannot write `{}`", path.display()))?;
                std::io::Write::write_all(&mut file, text.as_bytes())?;
                WorkstationKey::Software(signer)
            }
        };
        Ok((key, true))
    }
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt as _;
        self.mode(0o600)
    }
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    #[command(flatten)]
    keys: KeySourceArgs,
    #[command(flatten)]
    algorithm: AlgorithmArg,
    /// Where to write the first root metadata, which devices are provisioned with.
    #[arg(long, value_name = "FILE", default_value = "root.json")]
    root_out: PathBuf,
    /// Days until the root expires.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
    expires_in_days: u32,
    /// Pin Command's director key in the root (the default, named for the scripts that
    /// asked for it): devices that trust the root install only the OS image Command's
    /// director offers them, gated by lifecycle, trust, attestation and the rollout.
    #[arg(long, hide = true)]
    director: bool,
    /// Pin no director: every device that trusts the root installs the newest release it
    /// accepts, whatever its lifecycle, trust state or attestation, and whatever the release's
    /// rollout says. Only for devices that can never reach Command; `enigm ota keys rotate
    /// --director` pins it later.
    #[arg(long, conflicts_with = "director")]
    no_director: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RotateArgs {
    #[command(flatten)]
    keys: KeySourceArgs,
    #[command(flatten)]
    algorithm: AlgorithmArg,
    /// Which role gets a new key: `root`, `targets` or `release`. Every new root names
    /// Command's current online snapshot and timestamp keys (and its director key, when the
    /// root pins one);
    /// `--role root` without --new-key-label keeps the root key and does only that (after
    /// `enigm up --rebind-ota-online-keys`, as `enigm up` says).
    #[arg(long, value_parser = ["root", "targets", "release"])]
    role: String,
    /// The label of the new key (created when missing); required for `targets` and `release`.
    #[arg(long, value_name = "LABEL", required_if_eq_any = [("role", "targets"), ("role", "release")])]
    new_key_label: Option<String>,
    /// The label of the current root key, which signs the new root (default: the key whose key
    /// id the current root names).
    #[arg(long, value_name = "LABEL")]
    root_key_label: Option<String>,
    /// Days until the new root expires.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
    expires_in_days: u32,
    /// Pin Command's director key in the new root (a root that pins one keeps it anyway).
    #[arg(long)]
    director: bool,
}

fn days(days: u32) -> std::time::Duration {
    std::time::Duration::from_secs(u64::from(days) * 24 * 60 * 60)
}

pub(crate) fn now() -> enigm_types::Timestamp {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        });
    enigm_types::Timestamp::from_unix_millis(millis)
}

pub(crate) async fn init(
    client: &CommandClient,
    pins: &PinSource,
    args: InitArgs,
    json: bool,
) -> anyhow::Result<()> {
    let repository = client
        .get::<RepositoryView>(paths::OTA_REPOSITORY)
        .await?
        .value;
    anyhow::ensure!(
        repository.root_version.is_none(),
        "the repository has a root already (version {}): use `enigm ota keys rotate`",
        repository.root_version.unwrap_or_default()
    );
    let store = args.keys.open()?;
    let algorithm = args.algorithm.algorithm();
    let mut created = Vec::new();
    let mut keys = Vec::new();
    for label in [ROOT_LABEL, TARGETS_LABEL, RELEASE_LABEL] {
        let (key, new) = store.get_or_create(label, algorithm)?;
        if new {
            created.push(label);
        }
        keys.push(key);
    }
    let online = client
        .get::<OnlineKeysView>(paths::OTA_ONLINE_KEYS)
        .await?
        .value;
    let online_key = |value: serde_json::Value| -> anyhow::Result<Key> {
        serde_json::from_value(value).context("Command's online key is malformed")
    };
    let [root_key, targets_key, release_key] = keys.as_slice() else {
        anyhow::bail!("three keys were expected");
    };
    let root_keys = RootKeys {
        root: vec![root_key.key()],
        root_threshold: 1,
        targets: vec![targets_key.key()],
        targets_threshold: 1,
        snapshot: online_key(online.snapshot)?,
        timestamp: online_key(online.timestamp)?,
        release: vec![release_key.key()],
        release_threshold: 1,
    };
    let mut root = build_root(
        &root_keys,
        1,
        now().saturating_add(days(args.expires_in_days)),
    );
    if !args.no_director {
        pin_director(&mut root, &online.director)?;
    }
    let bytes = sign_metadata(&root, &[root_key])?;
    let pin = pins.obtain()?;
    client
        .put_raw::<RepositoryView>(paths::OTA_ROOT, bytes.clone(), Some(&pin))
        .await?;
    std::fs::write(&args.root_out, &bytes)
        .with_context(|| format!("cannot write `{}`", args.root_out.display()))?;
    // The first targets metadata lists nothing yet and hands the policy bundles to Command's
    // online snapshot key, so that Command can publish them from the start.
    write_bundle_delegation(
        client,
        &pin,
        &root,
        targets_key,
        now().saturating_add(days(args.expires_in_days)),
    )
    .await?;
    print_keys(&root, &created, &args.root_out, json)?;
    if args.no_director {
        eprintln!(
            "warning: this root pins no director: every device that trusts it installs the \
             newest release it accepts, trusted or not, attested or not, whatever the rollout\n\
             hint: to gate updates on the device's standing, on the signing workstation run: \
             enigm ota keys rotate --role root --director"
        );
    } else if !json {
        println!(
            "The root pins Command's director: devices install only the OS image it offers \
             them (`enigm release rollout`)."
        );
    }
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct DelegateArgs {
    #[command(flatten)]
    keys: KeySourceArgs,
    /// The label of the targets key (default: the key whose key id the current root names).
    #[arg(long, value_name = "LABEL")]
    targets_key_label: Option<String>,
    /// Days until the targets metadata expires when there is none yet (otherwise the current
    /// one's expiry is kept).
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
    expires_in_days: u32,
}

/// `enigm ota keys delegate-bundles`: the current targets metadata (or a first, empty one)
/// re-signed, one version higher, with the policy bundles delegated to Command's current
/// online snapshot key. Needed once for a repository made before policy bundles, and again
/// after Command's online keys moved (`enigm up --rebind-ota-online-keys`).
pub(crate) async fn delegate_bundles(
    client: &CommandClient,
    pins: &PinSource,
    args: DelegateArgs,
    json: bool,
) -> anyhow::Result<()> {
    let root_bytes = super::latest_root(client).await?;
    let current =
        TrustedMetadata::new(&root_bytes).context("Command's current root does not verify")?;
    let store = args.keys.open()?;
    let (_, targets_key) = store.for_role(
        current.root(),
        WorkstationRole::Targets,
        args.targets_key_label.as_deref(),
        "--targets-key-label",
    )?;
    let pin = pins.obtain()?;
    let version = write_bundle_delegation(
        client,
        &pin,
        current.root(),
        &targets_key,
        now().saturating_add(days(args.expires_in_days)),
    )
    .await?;
    if json {
        return output::print_json(&serde_json::json!({ "targets_version": version }));
    }
    println!(
        "Targets version {version} delegates policy bundles to Command's online snapshot key."
    );
    Ok(())
}

/// Hands in the current targets (or a first one expiring at `expires`) with the bundle
/// delegation to Command's online snapshot key; answers the new targets version.
async fn write_bundle_delegation(
    client: &CommandClient,
    pin: &crate::secrets::Pin,
    root: &Root,
    targets_key: &dyn MetadataSigner,
    expires: enigm_types::Timestamp,
) -> anyhow::Result<u64> {
    let online = client
        .get::<OnlineKeysView>(paths::OTA_ONLINE_KEYS)
        .await?
        .value;
    let snapshot: Key =
        serde_json::from_value(online.snapshot).context("Command's online key is malformed")?;
    let repository = client
        .get::<RepositoryView>(paths::OTA_REPOSITORY)
        .await?
        .value;
    let mut targets = match repository.targets_version {
        Some(version) => {
            let bytes = super::fetch_metadata(client, &format!("{version}.targets.json")).await?;
            let mut targets = enigm_ota::metadata::verify_role::<enigm_ota::metadata::Targets>(
                &bytes,
                &root.keys,
                root.role("targets")?,
            )
            .context("the current targets metadata does not verify under the current root")?
            .into_signed();
            targets.version = targets.version.saturating_add(1);
            targets
        }
        None => enigm_ota::repository::build_targets(Default::default(), 1, expires),
    };
    targets.delegations = Some(enigm_ota::policy_bundle::bundle_delegation(&[&snapshot]));
    let bytes = sign_metadata(&targets, &[targets_key])?;
    client
        .put_raw::<RepositoryView>(paths::OTA_TARGETS, bytes, Some(pin))
        .await?;
    Ok(targets.version)
}

pub(crate) async fn rotate(
    client: &CommandClient,
    pins: &PinSource,
    args: RotateArgs,
    json: bool,
) -> anyhow::Result<()> {
    let current_bytes = super::latest_root(client).await?;
    let current =
        TrustedMetadata::new(&current_bytes).context("Command's current root does not verify")?;
    let mut root_keys =
        RootKeys::from_root(current.root()).context("Command's current root is missing a role")?;
    // Command refuses a root that does not name its online keys as they are now (they change
    // when they move between files and a token), so every new root names them.
    let online = client
        .get::<OnlineKeysView>(paths::OTA_ONLINE_KEYS)
        .await?
        .value;
    let snapshot: Key =
        serde_json::from_value(online.snapshot).context("Command's online key is malformed")?;
    let timestamp: Key =
        serde_json::from_value(online.timestamp).context("Command's online key is malformed")?;
    let online_changed = root_keys.snapshot != snapshot || root_keys.timestamp != timestamp;
    root_keys.snapshot = snapshot;
    root_keys.timestamp = timestamp;
    let store = args.keys.open()?;
    let (_, old_root) = store.for_role(
        current.root(),
        WorkstationRole::Root,
        args.root_key_label.as_deref(),
        "--root-key-label",
    )?;
    let new_key = match &args.new_key_label {
        Some(label) => Some(store.get_or_create(label, args.algorithm.algorithm())?.0),
        None => None,
    };
    match (args.role.as_str(), &new_key) {
        ("root", Some(key)) => root_keys.root = vec![key.key()],
        ("targets", Some(key)) => root_keys.targets = vec![key.key()],
        ("release", Some(key)) => root_keys.release = vec![key.key()],
        ("root", None) => {}
        (role, None) => anyhow::bail!("--role {role} needs --new-key-label LABEL"),
        (role, Some(_)) => anyhow::bail!("unknown role `{role}`"),
    }
    let version = current.root().version.saturating_add(1);
    let mut root = build_root(
        &root_keys,
        version,
        now().saturating_add(days(args.expires_in_days)),
    );
    // `RootKeys` knows nothing of the director: a root that pinned one (or `--director`) pins
    // Command's director key as it is now, which keeps the previous pin, renews it after the
    // key moved, or adds it.
    let director_before = director_keys(current.root()).ok().flatten();
    let director_changed = if director_before.is_some() || args.director {
        let director = pin_director(&mut root, &online.director)?;
        director_before.as_ref() != Some(&director)
    } else {
        false
    };
    let mut signers: Vec<&dyn MetadataSigner> = vec![&old_root];
    if let (true, Some(new_key)) = (args.role == "root", &new_key) {
        signers.push(new_key);
    }
    let bytes = sign_metadata(&root, &signers)?;
    let pin = pins.obtain()?;
    let repository = client
        .put_raw::<RepositoryView>(paths::OTA_ROOT, bytes, Some(&pin))
        .await?
        .value;
    // A new targets key must sign the current targets, or devices would refuse them until the
    // next release: the same content, one version higher.
    if let (true, Some(version), Some(new_key)) =
        (args.role == "targets", repository.targets_version, &new_key)
    {
        let bytes = super::fetch_metadata(client, &format!("{version}.targets.json")).await?;
        let old_root = current.root();
        let mut targets = enigm_ota::metadata::verify_role::<enigm_ota::metadata::Targets>(
            &bytes,
            &old_root.keys,
            old_root.role("targets")?,
        )
        .context("the current targets metadata does not verify under the previous root")?
        .into_signed();
        targets.version = targets.version.saturating_add(1);
        let resigned = sign_metadata(&targets, &[new_key])?;
        client
            .put_raw::<RepositoryView>(paths::OTA_TARGETS, resigned, Some(&pin))
            .await?;
    }
    if online_changed && !json {
        println!("The new root names Command's current online snapshot and timestamp keys.");
    }
    if director_changed && !json {
        println!("The new root pins Command's current director key.");
    }
    print_keys(&root, &[], Path::new("-"), json)
}

/// Pins Command's director key, alone (threshold 1), in `root`, as Command requires of every
/// root that pins one: devices that trust the root then install only what Command's director
/// offers them. `director` is the key as `GET /api/v1/ota/online-keys` names it. Answers the
/// pin.
fn pin_director(root: &mut Root, director: &serde_json::Value) -> anyhow::Result<DirectorKeys> {
    let key: Key =
        serde_json::from_value(director.clone()).context("Command's director key is malformed")?;
    let pin = DirectorKeys::new(&[key], 1).context("one key with threshold 1 is a valid pin")?;
    pin.pin_in(root);
    // What devices and Command check of the pin: never an offline key.
    director_keys(root).context("Command's director key is one of the workstation's keys")?;
    Ok(pin)
}

fn print_keys(
    root: &enigm_ota::metadata::Root,
    created: &[&str],
    root_out: &Path,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        return output::print_json(&serde_json::json!({
            "root_version": root.version,
            "expires": root.expires,
            "created": created,
            "roles": root.roles.iter().map(|(name, role)| (name.clone(), role.keyids.clone())).collect::<std::collections::BTreeMap<_, _>>(),
            "director": director_keys(root).ok().flatten().map(|pin| pin.keys().keys().cloned().collect::<Vec<_>>()),
            "root_out": root_out,
        }));
    }
    println!(
        "Root version {} installed on Command (expires {}).",
        root.version, root.expires
    );
    if root_out != Path::new("-") {
        println!(
            "Devices are provisioned with {} (their trusted root).",
            root_out.display()
        );
    }
    if !created.is_empty() {
        println!("Created keys: {}", created.join(", "));
    }
    Ok(())
}
