//! `enigm audit verify` online: what an auditor with API access and the pinned log key can check
//! without trusting the server.
//!
//! 1. The server's latest checkpoint carries a valid signature of the pinned key.
//! 2. It extends every checkpoint this client verified before (remembered per server and key)
//!    or was handed (`--trusted-checkpoint`): never smaller, and proven consistent by an
//!    RFC 9162 consistency proof. This catches a log rolled back, truncated or forked.
//! 3. Unless `--no-scan`: every leaf up to the checkpoint's size is fetched; each body hashes
//!    to its leaf (or is covered by a logged purge), and the leaves give the signed root.
//!
//! Only when everything passes is the new checkpoint remembered for the next run.

use anyhow::Context as _;
use enigm_api::proofs::BodyCheck;
use enigm_api::{
    AuditCheckpointView, AuditConsistencyQuery, AuditConsistencyView, AuditLeavesPage,
    AuditLeavesQuery, paths,
};
use enigm_auditlog::{Checkpoint, Hash, Log, MemoryStore};
use enigm_store::VerifyProgress as _;
use enigm_types::{AuditAction, AuditEvent, AuditTarget};
use serde::Serialize;

use super::checkpoints::{self, Remembered};
use super::progress::Progress;
use super::report::{Mode, Report, Summary};
use super::verify::{CheckpointSummary, VerifyArgs, error_chain, trusted_checkpoint};
use crate::cli::GlobalArgs;
use crate::client::{CommandClient, RequestError};
use crate::connect;

/// Leaves asked for per request: the API's maximum.
const LEAVES_PER_PAGE: u64 = 1000;
/// Findings kept; a log served wholly wrong would otherwise report every leaf.
const MAX_FINDINGS: usize = 1000;

/// What online verification checked.
#[derive(Debug, Serialize)]
struct OnlineSummary {
    server: String,
    /// The server's checkpoint, once its signature verified.
    checkpoint: Option<CheckpointSummary>,
    /// Earlier checkpoints the server's was proven to extend.
    consistent_with: Vec<Earlier>,
    /// `None` with `--no-scan`.
    scan: Option<ScanSummary>,
    /// Where the verified checkpoint is remembered for the next run.
    remembered: String,
}

#[derive(Debug, Serialize)]
struct Earlier {
    /// `remembered` or `trusted`.
    source: &'static str,
    #[serde(flatten)]
    checkpoint: CheckpointSummary,
}

#[derive(Debug, Default, Serialize)]
struct ScanSummary {
    leaves_scanned: u64,
    bodies_checked: u64,
    bodies_purged: u64,
}

impl Summary for OnlineSummary {
    fn lines(&self) -> Vec<(&'static str, String)> {
        let mut lines = vec![
            ("server", self.server.clone()),
            (
                "signed checkpoint",
                self.checkpoint
                    .as_ref()
                    .map_or_else(|| "none verified".to_owned(), CheckpointSummary::text),
            ),
        ];
        if self.consistent_with.is_empty() {
            lines.push((
                "consistency",
                "no earlier checkpoint to compare (first run for this server and key)".to_owned(),
            ));
        }
        for earlier in &self.consistent_with {
            lines.push((
                "consistent with",
                format!(
                    "{} checkpoint of {}",
                    earlier.source,
                    earlier.checkpoint.text()
                ),
            ));
        }
        match &self.scan {
            Some(scan) => {
                lines.push(("leaves scanned", scan.leaves_scanned.to_string()));
                lines.push((
                    "event bodies checked",
                    format!("{} ({} purged)", scan.bodies_checked, scan.bodies_purged),
                ));
            }
            None => lines.push(("leaves scanned", "none (--no-scan)".to_owned())),
        }
        lines.push(("remembered checkpoint", self.remembered.clone()));
        lines
    }
}

struct Findings(Vec<String>);

impl Findings {
    fn push(&mut self, finding: String) {
        if self.0.len() < MAX_FINDINGS {
            self.0.push(finding);
        }
    }
}

pub(super) async fn run(global: &GlobalArgs, args: &VerifyArgs) -> anyhow::Result<()> {
    let Some(key) = args.log_key() else {
        anyhow::bail!(
            "online verification needs the log key: pass --log-key KEY with the key obtained out \
             of band (`enigm audit key --data-dir DIR` on the server's host), or verify offline \
             with --data-dir"
        );
    };
    let verifier = checkpoints::parse_verifier(key)?;
    let client = connect::connect(global)?;
    let remembered = Remembered::for_server(client.server(), &verifier)?;
    let mut summary = OnlineSummary {
        server: client.server().to_string(),
        checkpoint: None,
        consistent_with: Vec::new(),
        scan: None,
        remembered: remembered.path().display().to_string(),
    };
    let mut findings = Findings(Vec::new());

    // Earlier checkpoints first: a local file that cannot be read stops everything before any
    // request is made.
    let mut earlier: Vec<(&'static str, Checkpoint)> = Vec::new();
    if let Some(checkpoint) = remembered.load(&verifier)? {
        earlier.push(("remembered", checkpoint));
    }
    if let Some(path) = args.trusted_checkpoint()
        && let Some(checkpoint) = trusted_checkpoint(path, &verifier, &mut findings.0)?
    {
        earlier.push(("trusted", checkpoint));
    }

    let view = client
        .get::<AuditCheckpointView>(paths::AUDIT_CHECKPOINT)
        .await
        .context("could not fetch the server's latest audit checkpoint")?
        .value;
    let checkpoint = match checkpoints::open_note_text(&view.note, &verifier) {
        Ok(checkpoint) => checkpoint,
        Err(error) => {
            findings.push(format!(
                "the server's latest checkpoint does not verify with the log key: {}",
                error_chain(&error)
            ));
            return Report::new(Mode::Online, summary, findings.0).print(global.json);
        }
    };
    summary.checkpoint = Some(CheckpointSummary::of(&checkpoint));
    if view.tree_size != checkpoint.size() || view.root != checkpoint.root().to_base64() {
        findings.push(format!(
            "checkpoint at size {}: the server's size and root fields differ from its signed note",
            checkpoint.size()
        ));
    }

    for (source, old) in earlier {
        if check_consistency(&client, source, &old, &checkpoint, &mut findings).await? {
            summary.consistent_with.push(Earlier {
                source,
                checkpoint: CheckpointSummary::of(&old),
            });
        }
    }
    if args.scan() {
        summary.scan = Some(scan(&client, &checkpoint, &mut findings).await?);
    }

    if findings.0.is_empty() {
        remembered.save(&view.note)?;
    }
    Report::new(Mode::Online, summary, findings.0).print(global.json)
}

/// Checks that `new` extends `old`. Returns whether it was proven.
async fn check_consistency(
    client: &CommandClient,
    source: &'static str,
    old: &Checkpoint,
    new: &Checkpoint,
    findings: &mut Findings,
) -> anyhow::Result<bool> {
    let (old_size, new_size) = (old.size(), new.size());
    if old_size > new_size {
        findings.push(format!(
            "checkpoint at size {new_size} (served now) is smaller than the {source} checkpoint \
             at size {old_size}: the log was rolled back or truncated"
        ));
        return Ok(false);
    }
    if old_size == new_size {
        if old.root() != new.root() {
            findings.push(format!(
                "checkpoint at size {new_size} (served now) has another root than the {source} \
                 checkpoint of the same size: the log was forked"
            ));
            return Ok(false);
        }
        return Ok(true);
    }
    if old_size == 0 {
        // The empty tree is a prefix of every tree.
        return Ok(true);
    }
    let query = AuditConsistencyQuery {
        first: old_size,
        second: new_size,
    };
    let reply = client
        .get_query::<_, AuditConsistencyView>(paths::AUDIT_CONSISTENCY, &query)
        .await;
    let view = match reply {
        Ok(reply) => reply.value,
        Err(RequestError::Api(error)) => {
            findings.push(format!(
                "checkpoints at sizes {old_size} ({source}) and {new_size} (served now): the \
                 server refused the consistency proof: {error}"
            ));
            return Ok(false);
        }
        Err(error) => {
            return Err(anyhow::Error::new(error).context("could not fetch a consistency proof"));
        }
    };
    let verified = if view.first == old_size && view.second == new_size {
        view.decode()
            .map_err(|error| error.to_string())
            .and_then(|proof| {
                proof
                    .verify(old.root(), new.root())
                    .map_err(|error| error.to_string())
            })
    } else {
        Err("the proof is for other sizes".to_owned())
    };
    match verified {
        Ok(_) => Ok(true),
        Err(reason) => {
            findings.push(format!(
                "checkpoints at sizes {old_size} ({source}) and {new_size} (served now) are not \
                 consistent ({reason}): the log was rewritten"
            ));
            Ok(false)
        }
    }
}

/// Fetches every leaf below the checkpoint's size, checks each body against its leaf hash, and
/// the leaves' root against the signed one.
async fn scan(
    client: &CommandClient,
    checkpoint: &Checkpoint,
    findings: &mut Findings,
) -> anyhow::Result<ScanSummary> {
    let size = checkpoint.size();
    let progress = Progress::new();
    progress.phase("leaves", size);
    let mut summary = ScanSummary::default();
    let mut tree = Log::new(MemoryStore::with_capacity(
        usize::try_from(size).unwrap_or(0),
    ));
    let mut purged = Runs::default();
    let mut logged_purges: Vec<(u64, u64)> = Vec::new();
    let mut complete = true;
    let mut start = 0;
    'pages: while start < size {
        let limit = LEAVES_PER_PAGE.min(size - start);
        let query = AuditLeavesQuery {
            start,
            limit: u32::try_from(limit).ok(),
        };
        let page = client
            .get_query::<_, AuditLeavesPage>(paths::AUDIT_LEAVES, &query)
            .await
            .with_context(|| format!("could not fetch the audit leaves from {start}"))?
            .value;
        if u64::try_from(page.leaves.len()).ok() != Some(limit) {
            findings.push(format!(
                "leaf {start}: the server sent {} leaves from here, where the signed checkpoint \
                 at size {size} has {limit}",
                page.leaves.len()
            ));
            complete = false;
            break;
        }
        let mut hashes: Vec<Hash> = Vec::with_capacity(page.leaves.len());
        for (index, leaf) in (start..).zip(&page.leaves) {
            if leaf.index != index {
                findings.push(format!(
                    "leaf {index}: the server sent leaf {} in its place",
                    leaf.index
                ));
                complete = false;
                break 'pages;
            }
            let (hash, check) = match (leaf.decode_leaf_hash(), leaf.check_body()) {
                (Ok(hash), Ok(check)) => (hash, check),
                (Err(error), _) | (_, Err(error)) => {
                    findings.push(error.to_string());
                    complete = false;
                    break 'pages;
                }
            };
            hashes.push(hash);
            match check {
                BodyCheck::Matches => {
                    summary.bodies_checked += 1;
                    let body = leaf.body.as_deref().unwrap_or_default();
                    match serde_json::from_str::<AuditEvent>(body) {
                        Ok(event) => {
                            if let (
                                AuditAction::AuditPurge,
                                AuditTarget::AuditLeaves { first, end },
                            ) = (event.action, event.target)
                            {
                                logged_purges.push((first, end));
                            }
                        }
                        Err(_) => findings.push(format!(
                            "leaf {index}: event body is not a valid audit event"
                        )),
                    }
                }
                BodyCheck::Purged => {
                    summary.bodies_purged += 1;
                    purged.add(index);
                }
                BodyCheck::Mismatch => findings.push(format!(
                    "leaf {index}: event body does not match its leaf hash"
                )),
                BodyCheck::Missing => findings.push(format!(
                    "leaf {index}: event body missing without a recorded purge"
                )),
            }
        }
        tree.append_leaves(&hashes)
            .map_err(|_| anyhow::anyhow!("the audit log is too large to verify in memory"))?;
        start += limit;
        summary.leaves_scanned = start;
        progress.advance(start);
    }
    progress.finish();

    for (first, end) in purged.uncovered(&logged_purges) {
        findings.push(format!(
            "leaves {first}..{end}: bodies marked purged, but no logged audit.purge event up to \
             the checkpoint records it"
        ));
    }
    if complete && tree.root().ok().as_ref() != Some(checkpoint.root()) {
        findings.push(format!(
            "checkpoint at size {size}: the leaves served by the server do not match the signed \
             checkpoint"
        ));
    }
    Ok(summary)
}

/// Leaf indexes as runs `first..end`, for indexes added in increasing order.
#[derive(Debug, Default)]
struct Runs(Vec<(u64, u64)>);

impl Runs {
    fn add(&mut self, index: u64) {
        match self.0.last_mut() {
            Some((_, end)) if *end == index => *end = index + 1,
            _ => self.0.push((index, index + 1)),
        }
    }

    /// The parts of these runs that no range of `covering` contains.
    fn uncovered(&self, covering: &[(u64, u64)]) -> Vec<(u64, u64)> {
        let mut gaps = Vec::new();
        for &(first, end) in &self.0 {
            let mut position = first;
            while position < end {
                let reach = covering
                    .iter()
                    .filter(|(from, to)| *from <= position && position < *to)
                    .map(|(_, to)| *to)
                    .max();
                match reach {
                    Some(to) => position = to,
                    None => {
                        // Up to the next covered index, or the end of the run.
                        let next = covering
                            .iter()
                            .map(|(from, _)| *from)
                            .filter(|from| *from > position && *from < end)
                            .min()
                            .unwrap_or(end);
                        gaps.push((position, next));
                        position = next;
                    }
                }
            }
        }
        gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purged_runs_must_be_covered_by_logged_purges() {
        let mut runs = Runs::default();
        for index in [0, 1, 2, 3, 7, 8] {
            runs.add(index);
        }
        assert_eq!(runs.0, vec![(0, 4), (7, 9)]);
        assert_eq!(runs.uncovered(&[(0, 4), (7, 9)]), vec![]);
        assert_eq!(runs.uncovered(&[(0, 2), (2, 4), (5, 10)]), vec![]);
        assert_eq!(runs.uncovered(&[(0, 2), (7, 9)]), vec![(2, 4)]);
        assert_eq!(runs.uncovered(&[(1, 3)]), vec![(0, 1), (3, 4), (7, 9)]);
        assert_eq!(runs.uncovered(&[]), vec![(0, 4), (7, 9)]);
    }
}
