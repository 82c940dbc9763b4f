//! `enigm admin enrollment-token`: create the tokens devices enroll with (critical: needs the
//! PIN). The token is shown once; Command keeps only its digest.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use enigm_api::devices::{MAX_TOKEN_MINUTES, MAX_TOKEN_USES};
use enigm_api::{CreateEnrollmentTokenRequest, EnrollmentTokenCreated, paths};
use enigm_trust::TrustPolicy;

use super::Ctx;
use crate::output;

/// A policy file is a small JSON document.
const MAX_POLICY_BYTES: u64 = 64 * 1024;

#[derive(Debug, Subcommand)]
pub(crate) enum EnrollmentTokenCommand {
    /// Create an enrollment token (critical) and print it once.
    Create {
        /// The device group enrolled devices join.
        #[arg(long)]
        group: String,
        /// How many devices may enroll with the token.
        #[arg(long, default_value_t = 1,
            value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_TOKEN_USES)))]
        uses: u32,
        /// Minutes until the token expires.
        #[arg(long, default_value_t = 60,
            value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_TOKEN_MINUTES)))]
        expires_in_minutes: u32,
        /// Let devices opt in to managed-device mode with this token.
        #[arg(long)]
        managed_allowed: bool,
        /// JSON file with the trust policy of the enrolled devices (default: the baseline).
        #[arg(long, value_name = "FILE")]
        policy_file: Option<PathBuf>,
        /// JSON file with the attestation policy of the enrolled devices (accepted security
        /// levels, lock, boot keys, patch levels, where attestation is required; default: the
        /// default attestation policy, which requires attestation nowhere).
        #[arg(long, value_name = "FILE")]
        attestation_policy_file: Option<PathBuf>,
        /// Write the token to FILE (mode 0600, replaced atomically) instead of printing it: the
        /// file `enigm agent --enrollment-token-file` and `enigm simulate` read.
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
    },
}

pub(crate) async fn run(ctx: &Ctx, command: EnrollmentTokenCommand) -> anyhow::Result<()> {
    let EnrollmentTokenCommand::Create {
        group,
        uses,
        expires_in_minutes,
        managed_allowed,
        policy_file,
        attestation_policy_file,
        token_file,
    } = command;
    let policy = policy_file.as_deref().map(read_policy).transpose()?;
    let attestation_policy = attestation_policy_file
        .as_deref()
        .map(read_attestation_policy)
        .transpose()?;
    let request = CreateEnrollmentTokenRequest {
        group,
        policy,
        uses: Some(uses),
        expires_in_minutes: Some(expires_in_minutes),
        managed_allowed,
        attestation_policy,
    };
    let pin = ctx.pin()?;
    let reply = ctx
        .client
        .post::<_, EnrollmentTokenCreated>(paths::ENROLLMENT_TOKENS, &request, Some(&pin))
        .await?;
    if let Some(path) = &token_file {
        crate::credentials::write_private(path, format!("{}\n", reply.value.token).as_bytes())?;
    }
    if ctx.json() {
        return output::print_json(&reply.raw);
    }
    let created = reply.value;
    println!(
        "created enrollment token {} for group {}: {} use{}, expires {}{}",
        output::short_id(created.id),
        output::clean(&created.group),
        created.uses,
        if created.uses == 1 { "" } else { "s" },
        output::clean(&created.expires_at),
        if created.managed_allowed {
            ", managed mode allowed"
        } else {
            ""
        }
    );
    match &token_file {
        Some(path) => println!("token written to {} (mode 0600)", path.display()),
        None => println!(
            "token (shown once, hand it to the device securely): {}",
            output::clean(&created.token)
        ),
    }
    Ok(())
}

fn read_policy(path: &Path) -> anyhow::Result<TrustPolicy> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("could not open the policy file `{}`", path.display()))?;
    let mut text = String::new();
    file.take(MAX_POLICY_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("could not read the policy file `{}`", path.display()))?;
    if text.len() as u64 > MAX_POLICY_BYTES {
        anyhow::bail!(
            "the policy file `{}` is larger than {MAX_POLICY_BYTES} bytes",
            path.display()
        );
    }
    serde_json::from_str(&text)
        .with_context(|| format!("`{}` is not a valid trust policy", path.display()))
}

fn read_attestation_policy(
    path: &std::path::Path,
) -> anyhow::Result<enigm_api::attestation::AttestationPolicy> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the attestation policy {}", path.display()))?;
    enigm_api::attestation::AttestationPolicy::from_json(&bytes)
        .with_context(|| format!("{} is not a valid attestation policy", path.display()))
}
