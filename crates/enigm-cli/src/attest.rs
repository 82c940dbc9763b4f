//! `enigm attest`: verify an Android Key Attestation chain offline (`verify`), and create the
//! development attestation root that simulated devices mint their chains under (`dev-root`).
//!
//! `verify` runs exactly what Command runs (the same pinned roots, chain verifier and policy
//! appraisal), so an operator can check a device's chain, or a policy file, before enrolling.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use enigm_attest::android::chain::{
    ChainError, ChainVerifier, TrustAnchors, VerifiedChain, parse_certificates,
};
use enigm_attest::android::key_description::KeyDescription;
use enigm_attest::android::revocation::{RevocationList, RevocationStatus};
use enigm_attest::outcome::{Claims, RejectionReason};
use enigm_attest::policy::{AndroidEvidence, Appraisal, AttestationPolicy, appraise_android};
use enigm_types::Timestamp;
use serde_json::json;

use crate::output;

/// File names of the development root inside its directory.
pub(crate) const DEV_ROOT_CERT: &str = "dev-attestation-root.pem";
pub(crate) use enigm_agent::attestation::{DEV_ROOT_KEY, load_dev_root};

#[derive(Debug, clap::Args)]
pub(crate) struct AttestArgs {
    #[command(subcommand)]
    command: AttestCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AttestCommand {
    /// Verify an Android Key Attestation chain: print the decoded claims and the outcome
    /// (`accepted` or the rejection reason); exit 0 only when accepted.
    Verify(VerifyArgs),
    /// Create a development attestation root (certificate and key) in a directory, for
    /// `enigm up --insecure-dev-attestation-root` and simulated devices. Never for production.
    DevRoot {
        /// Directory to write `dev-attestation-root.pem` and `.key` to (mode 0600 for the key).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The chain, leaf first: a PEM file with several certificates, or DER files given in order
    /// (repeat --chain).
    #[arg(long, value_name = "FILE", required = true)]
    chain: Vec<PathBuf>,
    /// Verify at this time (RFC 3339) instead of now: chains hold short-lived certificates.
    #[arg(long, value_name = "RFC3339")]
    at: Option<String>,
    /// The attestation challenge the leaf must carry, in hex; unchecked when absent.
    #[arg(long, value_name = "HEX")]
    challenge: Option<String>,
    /// Attestation policy (JSON); default: hardware-backed, locked, VERIFIED or an allow-listed
    /// SELF_SIGNED boot key.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Extra root certificate to trust (pinned by its public key), besides Google's roots.
    #[arg(long, value_name = "FILE")]
    root: Vec<PathBuf>,
    /// Google's attestation status list (JSON) to check every certificate against
    /// (`curl -o status.json https://android.googleapis.com/attestation/status`). Without it
    /// the chain is rejected, as Command rejects it, unless --skip-revocation-check is given.
    #[arg(long, value_name = "FILE")]
    status_list: Option<PathBuf>,
    /// Inspect the chain without checking revocation (no status list at hand). The outcome
    /// then differs from Command's, which rejects every chain it cannot check; a warning says
    /// so.
    #[arg(long, conflicts_with = "status_list")]
    skip_revocation_check: bool,
}

/// How to supply the status list; the hint of a chain refused for the lack of one.
const STATUS_LIST_HINT: &str = "pass --status-list FILE with Google's attestation status list \
     (curl -o status.json https://android.googleapis.com/attestation/status), or \
     --skip-revocation-check to inspect the chain anyway";

pub(crate) fn run(args: AttestArgs, json_output: bool) -> anyhow::Result<()> {
    match args.command {
        AttestCommand::Verify(args) => verify(&args, json_output),
        AttestCommand::DevRoot { dir } => {
            let (cert, _) = ensure_dev_root(&dir)?;
            println!(
                "development attestation root: {} (key beside it, mode 0600)\n\
                 INSECURE: whoever holds the key can claim any device. For demos and tests only.",
                cert.display()
            );
            Ok(())
        }
    }
}

/// Creates the development root in `dir` unless it is there; answers the certificate's path and
/// the root.
pub(crate) fn ensure_dev_root(
    dir: &Path,
) -> anyhow::Result<(PathBuf, enigm_attest::dev::DevAttestationRoot)> {
    let cert_path = dir.join(DEV_ROOT_CERT);
    let key_path = dir.join(DEV_ROOT_KEY);
    if cert_path.exists() && key_path.exists() {
        let root = load_dev_root(dir)?;
        return Ok((cert_path, root));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let root = enigm_attest::dev::DevAttestationRoot::generate()
        .context("cannot generate a development attestation root")?;
    let (cert_pem, key_pem) = root.to_pem();
    write_private_file(&key_path, key_pem.as_bytes())?;
    std::fs::write(&cert_path, cert_pem)
        .with_context(|| format!("cannot write {}", cert_path.display()))?;
    Ok((cert_path, root))
}

fn verify(args: &VerifyArgs, json_output: bool) -> anyhow::Result<()> {
    let chain = read_chain(&args.chain)?;
    let at = match &args.at {
        Some(text) => parse_rfc3339(text)?,
        None => enigm_agent::report::system_now(),
    };
    let challenge = args
        .challenge
        .as_deref()
        .map(|text| hex::decode(text.trim()).context("--challenge is not hex"))
        .transpose()?;
    let policy = match &args.policy {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            AttestationPolicy::from_json(&bytes)
                .with_context(|| format!("{} is not a valid attestation policy", path.display()))?
        }
        None => AttestationPolicy::default(),
    };
    let mut anchors = TrustAnchors::google();
    for path in &args.root {
        let certificate = read_chain(std::slice::from_ref(path))?
            .into_iter()
            .next()
            .with_context(|| format!("{} holds no certificate", path.display()))?;
        let label = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_else(|| "operator".to_owned());
        anchors
            .add_certificate(&label, &certificate)
            .with_context(|| format!("{} cannot be pinned as a root", path.display()))?;
    }
    let list =
        match &args.status_list {
            Some(path) => {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                // An explicit file is checked as of the verification time: its age is the
                // operator's business here, unlike in Command.
                Some(RevocationList::parse(&bytes, at).with_context(|| {
                    format!("{} is not an attestation status list", path.display())
                })?)
            }
            None => None,
        };
    // Without a list the chain is refused exactly as Command refuses it; inspecting it anyway
    // is an explicit choice, said loudly.
    let revocation = match &list {
        Some(list) => RevocationStatus::checked_at_any_age(list),
        None if args.skip_revocation_check => {
            eprintln!(
                "warning: revocation is NOT checked (--skip-revocation-check): a revoked chain \
                 can pass here, and Command rejects every chain while it has no status list"
            );
            RevocationStatus::unchecked_for_offline_use()
        }
        None => RevocationStatus::unavailable(),
    };
    let verifier = ChainVerifier::new(anchors);
    let verified = verifier.verify(&chain, at, &revocation);
    let revocation_unavailable = matches!(verified, Err(ChainError::RevocationUnavailable));
    let report = match verified {
        Err(error) => Report {
            verdict: Err(error.reason()),
            detail: error.to_string(),
            claims: None,
            description: None,
            chain_length: chain.len(),
        },
        Ok(verified) => appraise(&verified, challenge.as_deref(), &policy, chain.len()),
    };
    report.print(
        json_output,
        at,
        list.is_some(),
        args.skip_revocation_check,
        challenge.is_some(),
    )?;
    match report.verdict {
        Ok(()) => Ok(()),
        Err(_) if revocation_unavailable => bail!(
            "attestation rejected: revocation could not be checked without a status list \
             (Command rejects such a chain too)\nhint: {STATUS_LIST_HINT}"
        ),
        Err(reason) => bail!("attestation rejected: {reason}"),
    }
}

struct Report {
    verdict: Result<(), RejectionReason>,
    detail: String,
    claims: Option<Claims>,
    description: Option<KeyDescription>,
    chain_length: usize,
}

fn appraise(
    verified: &VerifiedChain,
    challenge: Option<&[u8]>,
    policy: &AttestationPolicy,
    chain_length: usize,
) -> Report {
    // Offline there is no deployment key: the pin is a plain digest, shown to nobody.
    let pin = hex::encode(enigm_crypto::sha256(verified.pinned_key_spki()));
    let root = verified.anchor().to_string();
    let evidence = AndroidEvidence {
        key_description: verified.key_description(),
        attest_key_description: verified.attest_key_description(),
        root: &root,
        attestation_key_digest: &pin,
    };
    let (verdict, detail, claims) = match appraise_android(&evidence, challenge, policy, None) {
        Appraisal::Accepted { claims, .. } => (Ok(()), "accepted".to_owned(), claims),
        Appraisal::Rejected {
            claims,
            reason,
            detail,
        } => (Err(reason), detail, claims),
    };
    Report {
        verdict,
        detail,
        claims: Some(claims),
        description: Some(verified.key_description().clone()),
        chain_length,
    }
}

impl Report {
    /// The outcome as an (unsigned) EAR with its AR4SI trustworthiness vector.
    fn ear(&self, at: Timestamp) -> serde_json::Value {
        let outcome = enigm_attest::outcome::AttestationOutcome {
            format: enigm_attest::outcome::EvidenceFormat::AndroidKey,
            verdict: match self.verdict {
                Ok(()) => enigm_attest::outcome::Verdict::Accepted,
                Err(reason) => enigm_attest::outcome::Verdict::Rejected(reason),
            },
            claims: self.claims.clone(),
            detail: self.detail.clone(),
        };
        let verifier = enigm_attest::ear::VerifierId {
            developer: "https://enigm.example/verifier".to_owned(),
            build: format!("enigm {}", env!("CARGO_PKG_VERSION")),
        };
        enigm_attest::ear::to_json(&outcome, at, &verifier, "enigm-attest-verify")
    }

    fn verdict_name(&self) -> &'static str {
        match self.verdict {
            Ok(()) => "accepted",
            Err(reason) => reason.as_str(),
        }
    }

    fn print(
        &self,
        json_output: bool,
        at: Timestamp,
        revocation_checked: bool,
        skip_revocation_check: bool,
        challenge_checked: bool,
    ) -> anyhow::Result<()> {
        let description = self.description.as_ref();
        if json_output {
            let value = json!({
                "outcome": self.verdict_name(),
                "detail": self.detail,
                "verified_at": at.to_rfc3339(),
                "chain_length": self.chain_length,
                "revocation_checked": revocation_checked,
                "challenge_checked": challenge_checked,
                "claims": self.claims,
                "attestation_challenge": description.map(|d| hex::encode(&d.attestation_challenge)),
                "key_mint_version": description.map(|d| d.key_mint_version),
                "key_mint_security_level": description.map(|d| d.key_mint_security_level.as_str()),
                "purposes": description.map(|d| &d.hardware_enforced.purposes),
                "origin": description.and_then(|d| d.hardware_enforced.origin.or(d.software_enforced.origin)),
                "application": description.and_then(application).map(|(packages, digests)| json!({
                    "packages": packages, "signature_digests": digests,
                })),
                "ear": self.ear(at),
            });
            return output::print_json(&value);
        }
        let mut table = output::new_table(&["CLAIM", "VALUE"]);
        let mut row = |name: &str, value: String| {
            table.add_row(vec![name.to_owned(), output::clean(&value)]);
        };
        row("verified at", at.to_rfc3339());
        row("chain length", self.chain_length.to_string());
        if let Some(claims) = &self.claims {
            let text = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_owned());
            let number =
                |value: Option<i64>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
            row("root", text(&claims.root));
            row("attestation version", number(claims.attestation_version));
            row("attestation security level", text(&claims.security_level));
            if let Some(description) = description {
                row(
                    "key security level",
                    description.key_mint_security_level.as_str().to_owned(),
                );
                row(
                    "attestation challenge",
                    hex::encode(&description.attestation_challenge),
                );
                if let Some((packages, _)) = application(description) {
                    row("application", packages.join(", "));
                }
            }
            row("verified boot state", text(&claims.verified_boot_state));
            row(
                "device locked",
                claims
                    .device_locked
                    .map_or_else(|| "-".to_owned(), |v| v.to_string()),
            );
            row("verified boot key", text(&claims.verified_boot_key));
            row("OS version", number(claims.os_version));
            row("OS patch level", number(claims.os_patch_level));
            row("vendor patch level", number(claims.vendor_patch_level));
            row("boot patch level", number(claims.boot_patch_level));
        }
        row(
            "revocation",
            if revocation_checked {
                "checked"
            } else if skip_revocation_check {
                "NOT checked (--skip-revocation-check)"
            } else {
                "cannot be checked (no --status-list)"
            }
            .to_owned(),
        );
        row(
            "challenge",
            if challenge_checked {
                "checked"
            } else {
                "not checked (no --challenge)"
            }
            .to_owned(),
        );
        println!("{table}");
        match self.verdict {
            Ok(()) => println!("outcome: accepted"),
            Err(reason) => println!("outcome: {reason}: {}", output::clean(&self.detail)),
        }
        Ok(())
    }
}

/// The attesting application's package names (with versions) and signing-certificate digests.
fn application(description: &KeyDescription) -> Option<(Vec<String>, Vec<String>)> {
    let application = description
        .software_enforced
        .attestation_application_id
        .as_ref()
        .or(description
            .hardware_enforced
            .attestation_application_id
            .as_ref())?;
    Some((
        application
            .packages
            .iter()
            .map(|package| format!("{} ({})", package.name, package.version))
            .collect(),
        application
            .signature_digests
            .iter()
            .map(hex::encode)
            .collect(),
    ))
}

/// Reads certificates: PEM files (any number of certificates each) or DER files, in order.
fn read_chain(paths: &[PathBuf]) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut chain = Vec::new();
    for path in paths {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        chain.extend(
            parse_certificates(&bytes)
                .with_context(|| format!("{} is not a PEM certificate chain", path.display()))?,
        );
    }
    Ok(chain)
}

fn parse_rfc3339(text: &str) -> anyhow::Result<Timestamp> {
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("--at {text:?} is not an RFC 3339 time"))?;
    let millis =
        i64::try_from(at.unix_timestamp_nanos() / 1_000_000).context("--at is out of range")?;
    Ok(Timestamp::from_unix_millis(millis))
}

/// Writes a new file readable by its owner only (the development root's key).
fn write_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}
