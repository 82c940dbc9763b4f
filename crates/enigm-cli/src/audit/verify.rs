//! `enigm audit verify`: offline, the database is read directly and every leaf, node, body and
//! checkpoint is checked (`Store::verify_audit_log`); online, see [`super::online`].
//!
//! Offline verification trusts nothing in the database. The log key it checks signatures with
//! comes from `--log-key` (pinned: the strong form) or else from the data directory's
//! `keys/audit-log.pub`, which someone able to rewrite the database may have replaced too.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use enigm_auditlog::{AuditEventKey, Checkpoint, NoteVerifier};
use enigm_store::{Store, VerifyOutcome};
use serde::Serialize;

use super::checkpoints;
use super::online;
use super::progress::Progress;
use super::report::{Mode, Report, Summary};
use crate::cli::GlobalArgs;
use crate::up::DEFAULT_DATA_DIR;

#[derive(Debug, Args)]
#[command(after_help = "\
Offline (--data-dir or --database-url): reads the database itself, without changing it, in one \
read-only transaction, so it may run beside a live server: it checks the log as it stood when \
the check began.

Online (neither given): asks the server named by --server (or the stored login) for its signed \
checkpoint, proves it consistent with the checkpoint remembered from the last successful run, \
then re-hashes every leaf it serves. --log-key is required: a key fetched from the server it \
verifies proves nothing.")]
pub(crate) struct VerifyArgs {
    /// Verify offline the data directory of `enigm up`: its SQLite database and,
    /// unless --log-key is given, its log key.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Verify offline this database (`postgres://…` or `sqlite://…`) instead of the data
    /// directory's SQLite file.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// The log's verifier key (`name+keyid+base64`, as `enigm audit key` prints it), obtained
    /// out of band. Required online; offline it defaults to the data directory's key file.
    #[arg(long, value_name = "KEY")]
    log_key: Option<String>,
    /// Offline only: the deployment's audit event key file (`audit-event.key` in the key
    /// directory of `enigm up`, default `<data dir>/keys/audit-event.key`). Every event must
    /// carry its tag; a row without a valid one was inserted behind Command's back.
    #[arg(long, value_name = "FILE")]
    event_key: Option<PathBuf>,
    /// A signed checkpoint saved earlier (e.g. a remembered one): the log must still extend it,
    /// which catches a log truncated or rewritten since.
    #[arg(long, value_name = "FILE")]
    trusted_checkpoint: Option<PathBuf>,
    /// Online only: check the checkpoint's signature and consistency, without re-hashing the
    /// leaves.
    #[arg(long, conflicts_with_all = ["data_dir", "database_url"])]
    no_scan: bool,
}

impl VerifyArgs {
    pub(super) fn log_key(&self) -> Option<&str> {
        self.log_key.as_deref()
    }

    pub(super) fn trusted_checkpoint(&self) -> Option<&std::path::Path> {
        self.trusted_checkpoint.as_deref()
    }

    pub(super) fn scan(&self) -> bool {
        !self.no_scan
    }

    fn is_offline(&self) -> bool {
        self.data_dir.is_some() || self.database_url.is_some()
    }
}

pub(crate) async fn run(global: &GlobalArgs, args: VerifyArgs) -> anyhow::Result<()> {
    if args.is_offline() {
        offline(&args, global.json).await
    } else {
        online::run(global, &args).await
    }
}

/// What offline verification checked.
#[derive(Debug, Serialize)]
struct OfflineSummary {
    database: String,
    /// Where the log key came from: `pinned` (`--log-key`) or the key file's path.
    log_key: String,
    /// The audit event key file the events' tags were checked with.
    event_key: String,
    tags_checked: u64,
    tree_size: u64,
    leaf_count: u64,
    nodes_checked: u64,
    bodies_checked: u64,
    bodies_purged: u64,
    checkpoints_checked: u64,
    latest_checkpoint: Option<CheckpointSummary>,
    trusted_checkpoint: Option<CheckpointSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct CheckpointSummary {
    pub(super) size: u64,
    /// Standard base64 of the root hash, as in the checkpoint note.
    pub(super) root: String,
}

impl CheckpointSummary {
    pub(super) fn of(checkpoint: &Checkpoint) -> Self {
        CheckpointSummary {
            size: checkpoint.size(),
            root: checkpoint.root().to_base64(),
        }
    }

    pub(super) fn text(&self) -> String {
        format!("size {}, root {}", self.size, self.root)
    }
}

impl Summary for OfflineSummary {
    fn lines(&self) -> Vec<(&'static str, String)> {
        let mut lines = vec![
            ("database", self.database.clone()),
            ("log key", self.log_key.clone()),
            (
                "event tags checked",
                format!("{} (key `{}`)", self.tags_checked, self.event_key),
            ),
            (
                "tree size",
                format!("{} leaves ({} handed out)", self.tree_size, self.leaf_count),
            ),
            ("interior nodes checked", self.nodes_checked.to_string()),
            (
                "event bodies checked",
                format!("{} ({} purged)", self.bodies_checked, self.bodies_purged),
            ),
            ("checkpoints checked", self.checkpoints_checked.to_string()),
            (
                "latest checkpoint",
                self.latest_checkpoint
                    .as_ref()
                    .map_or_else(|| "none verified".to_owned(), CheckpointSummary::text),
            ),
        ];
        if let Some(trusted) = &self.trusted_checkpoint {
            lines.push(("trusted checkpoint", trusted.text()));
        }
        lines
    }
}

async fn offline(args: &VerifyArgs, json: bool) -> anyhow::Result<()> {
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let (url, database) = match &args.database_url {
        Some(url) => (url.clone(), redact_url(url)),
        None => {
            let path = data_dir.join("enigm.db");
            if !path.is_file() {
                anyhow::bail!(
                    "no database at `{}`: pass the data directory of `enigm up` with --data-dir, \
                     or --database-url",
                    path.display()
                );
            }
            // `mode=rw`: verification never creates a database where there was none.
            (
                format!("sqlite://{}?mode=rw", path.display()),
                path.display().to_string(),
            )
        }
    };
    let (verifier, log_key) = match &args.log_key {
        Some(key) => (
            checkpoints::parse_verifier(key)?,
            "pinned (--log-key)".to_owned(),
        ),
        None => {
            let verifier = checkpoints::read_verifier_file(&data_dir)?;
            let path = checkpoints::verifier_key_path(&data_dir);
            eprintln!(
                "note: the log key was read from `{}`, beside the data it checks; pinning it \
                 with --log-key (kept out of band) is stronger",
                path.display()
            );
            (verifier, path.display().to_string())
        }
    };
    let mut findings = Vec::new();
    let trusted = match &args.trusted_checkpoint {
        Some(path) => trusted_checkpoint(path, &verifier, &mut findings)?,
        None => None,
    };
    let event_key_path = args.event_key.clone().unwrap_or_else(|| {
        data_dir
            .join("keys")
            .join(enigm_server::bootstrap::AUDIT_EVENT_KEY_FILE)
    });
    // Without the key nothing tells Command's events from rows inserted directly: the log is
    // not called clean.
    let event_key = match std::fs::read(&event_key_path) {
        Ok(bytes) => Some(AuditEventKey::from_bytes(&bytes).with_context(|| {
            format!("`{}` is not an audit event key", event_key_path.display())
        })?),
        Err(error) => {
            findings.push(format!(
                "event tags not checked: cannot read the audit event key `{}` ({error}); pass \
                 --event-key (rows inserted into the database directly go unnoticed without it)",
                event_key_path.display()
            ));
            None
        }
    };

    let store = Store::open_existing(&url)
        .await
        .with_context(|| format!("could not open the database `{database}`"))?;
    let progress = Progress::new();
    let outcome = store
        .verify_audit_log(&verifier, event_key.as_ref(), trusted.as_ref(), &progress)
        .await;
    progress.finish();
    store.close().await;
    let VerifyOutcome {
        summary,
        findings: found,
    } = outcome.context("could not read the audit log")?;
    findings.extend(found.iter().map(ToString::to_string));

    let summary = OfflineSummary {
        database,
        log_key,
        event_key: event_key_path.display().to_string(),
        tags_checked: summary.tags_checked,
        tree_size: summary.tree_size,
        leaf_count: summary.leaf_count,
        nodes_checked: summary.nodes_checked,
        bodies_checked: summary.bodies_checked,
        bodies_purged: summary.bodies_purged,
        checkpoints_checked: summary.checkpoints_checked,
        latest_checkpoint: summary
            .latest_checkpoint
            .as_ref()
            .map(CheckpointSummary::of),
        trusted_checkpoint: trusted.as_ref().map(CheckpointSummary::of),
    };
    Report::new(Mode::Offline, summary, findings).print(json)
}

/// Reads `--trusted-checkpoint`. A note that does not verify with the log key is a finding,
/// not an error: with the key taken from the data directory it means the key was replaced.
pub(super) fn trusted_checkpoint(
    path: &std::path::Path,
    verifier: &NoteVerifier,
    findings: &mut Vec<String>,
) -> anyhow::Result<Option<Checkpoint>> {
    match checkpoints::read_checkpoint_file(path, verifier)? {
        Ok(checkpoint) => Ok(Some(checkpoint)),
        Err(error) => {
            findings.push(format!(
                "trusted checkpoint `{}`: does not verify with the log key ({}): it is not a \
                 checkpoint of this log, or the key was replaced",
                path.display(),
                error_chain(&error)
            ));
            Ok(None)
        }
    }
}

/// `error: cause: cause`, for findings that carry a library error.
pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A database URL without its password, for output.
fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Setting a password fails only for URLs that cannot have one.
            let _ignored = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_not_printed() {
        assert_eq!(
            redact_url("postgres://enigm:s3cret@db.example:5432/enigm"),
            "postgres://enigm:***@db.example:5432/enigm"
        );
        assert_eq!(
            redact_url("postgres://enigm@db.example/enigm"),
            "postgres://enigm@db.example/enigm"
        );
        assert_eq!(
            redact_url("sqlite:///var/lib/enigm/enigm.db"),
            "sqlite:///var/lib/enigm/enigm.db"
        );
    }
}
