//! A load run of the audit log: producers record events through the group-commit sink for a
//! fixed time while the sequencer folds them into the Merkle tree and signs checkpoints beside
//! them, as in `enigm up`. Prints the sustained rate, the events per durable commit and the
//! per-event acknowledgement latency.
//!
//! ```text
//! cargo run --release -p enigm-server --example audit_load -- \
//!     [--seconds 10] [--producers 256] [--sequencer-ms 500] [--database-url URL]
//! ```
//!
//! Without `--database-url` the run uses a new SQLite file in a temporary directory (WAL,
//! `synchronous = FULL`, as `Store::connect` sets), deleted afterwards. A URL must name a
//! throwaway database: events are appended to it for good. To count commits, the run adds a
//! trigger on the leaf counter (which every commit of audit events updates exactly once) that
//! copies the counter to a side table, and drops both at the end: one small row per commit.
//!
//! Each producer is a Tokio task (the runtime has two worker threads) that records one event
//! per call, waiting for each to be durable before recording the next, like a request handler.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use enigm_auditlog::NoteSigner;
use enigm_crypto::Ed25519SigningKey;
use enigm_server::audit::{AuditLog, AuditSink as _, GroupCommitSink};
use enigm_server::lease::Lease;
use enigm_server::state::SystemClock;
use enigm_store::{Backend, Store};
use enigm_test_support::TestDatabase;
use enigm_types::{
    Actor, AdminId, AuditAction, AuditEvent, AuditTarget, Clock as _, Outcome, Permission,
};
use sqlx::Connection as _;

const USAGE: &str = "usage: audit_load [--seconds N] [--producers N] [--sequencer-ms N] \
                     [--database-url URL]";

/// How the run is set up.
struct Options {
    seconds: u64,
    producers: usize,
    /// How often the sequencer runs: `enigm up` uses 500 ms.
    sequencer_interval: Duration,
    database_url: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let Some(options) = parse_args(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the Tokio runtime")?;
    runtime.block_on(run(&options))
}

async fn run(options: &Options) -> anyhow::Result<()> {
    // Kept alive until the end: dropping it deletes the temporary SQLite file.
    let mut temporary = None;
    let url = match &options.database_url {
        Some(url) => url.clone(),
        None => {
            let database = TestDatabase::new(enigm_test_support::Backend::Sqlite).await?;
            let url = database.url().to_owned();
            temporary = Some(database);
            url
        }
    };
    let store = Store::connect(&url)
        .await
        .context("could not open the database")?;
    let backend = store.backend();
    let mut counter = CommitCounter::install(&url, backend).await?;
    let first_leaf = store.audit_leaf_count().await?;

    let sink = GroupCommitSink::spawn(store.clone());
    let signer = NoteSigner::new(
        "enigm-command/audit/load",
        Ed25519SigningKey::generate(&mut rand::rngs::OsRng),
    )
    .context("log key name")?;
    let log = Arc::new(AuditLog::new(
        store.clone(),
        Arc::new(SystemClock),
        signer,
        Duration::from_secs(30 * 24 * 3600),
    ));
    // Nothing is old enough to purge; the purge runs once, at the start.
    let purge_interval = Duration::from_secs(24 * 3600);
    // One process: it takes the audit log's lease at once, as `enigm up` alone would.
    let lease = Arc::new(Lease::new(
        store.clone(),
        Arc::new(SystemClock),
        enigm_server::lease::AUDIT_LOG,
        &enigm_server::lease::holder_id(),
    ));
    lease.renew().await;
    let keeper = tokio::spawn(enigm_server::lease::keep(vec![lease.clone()]));
    let sequencer =
        tokio::spawn(Arc::clone(&log).run(lease, options.sequencer_interval, purge_interval));

    println!(
        "audit_load: {} {}, {} producers x 1 event per call for {} s, sequencer every {} ms",
        match backend {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        },
        if temporary.is_some() {
            "(new temporary file, WAL, synchronous=FULL)"
        } else {
            "(--database-url)"
        },
        options.producers,
        options.seconds,
        options.sequencer_interval.as_millis()
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.seconds);
    let producers: Vec<_> = (0..options.producers)
        .map(|_| tokio::spawn(produce(sink.clone(), deadline)))
        .collect();
    let mut latencies = Vec::new();
    for producer in producers {
        latencies.extend(producer.await.context("producer task")??);
    }
    let elapsed = started.elapsed();
    sequencer.abort();
    keeper.abort();
    let _aborted = sequencer.await;
    let tree_at_end = store.audit_tree_size().await?;
    let end_leaf = store.audit_leaf_count().await?;
    let checkpoints = store.audit_checkpoints(None, 1000).await?;

    let catch_up = Instant::now();
    let checkpoint = log.sync().await?.context("no checkpoint after the run")?;
    let catch_up = catch_up.elapsed();
    let batches = counter.batches(first_leaf).await?;
    counter.remove().await?;
    store.close().await;
    drop(temporary);

    latencies.sort_unstable();
    let events = latencies.len();
    let seconds = elapsed.as_secs_f64();
    println!(
        "recorded {events} events in {seconds:.2} s: {:.0} events/s",
        count_f64(events) / seconds
    );
    if end_leaf - first_leaf != u64::try_from(events)? {
        bail!(
            "the log holds {} new leaves, not {events}",
            end_leaf - first_leaf
        );
    }
    let mut sizes = batches.clone();
    sizes.sort_unstable();
    println!(
        "durable commits: {} ({:.0}/s); events per commit: mean {:.1}, p50 {}, max {}",
        batches.len(),
        count_f64(batches.len()) / seconds,
        count_f64(events) / count_f64(batches.len().max(1)),
        percentile(&sizes, 0.50).unwrap_or_default(),
        sizes.last().copied().unwrap_or_default(),
    );
    println!(
        "acknowledgement latency per event: p50 {}, p99 {}, p99.9 {}, max {}",
        millis(percentile(&latencies, 0.50)),
        millis(percentile(&latencies, 0.99)),
        millis(percentile(&latencies, 0.999)),
        millis(latencies.last().copied()),
    );
    println!(
        "checkpoints published during the load: {}, the largest of {} leaves",
        checkpoints.len(),
        checkpoints
            .last()
            .map_or(0, |checkpoint| checkpoint.tree_size)
    );
    println!(
        "sequencer: the tree held {tree_at_end} of {end_leaf} committed leaves when the load \
         stopped; folding the other {} and signing a checkpoint took {:.2} s (tree size {})",
        end_leaf - tree_at_end,
        catch_up.as_secs_f64(),
        checkpoint.tree_size
    );
    Ok(())
}

/// Records one event at a time until `deadline`; returns how long each took to be durable.
async fn produce(sink: GroupCommitSink, deadline: Instant) -> anyhow::Result<Vec<Duration>> {
    let admin = AdminId::random();
    let mut latencies = Vec::new();
    while Instant::now() < deadline {
        // What the request guard writes most: an allowed authorization decision.
        let event = AuditEvent::new(
            SystemClock.now(),
            Actor::Admin(admin),
            AuditAction::Authorize,
            AuditTarget::Route {
                permission: Permission::AuditRead,
            },
            Outcome::Success,
        );
        let sent = Instant::now();
        sink.record(std::slice::from_ref(&event)).await?;
        latencies.push(sent.elapsed());
    }
    Ok(latencies)
}

/// Counts commits of audit events: a trigger copies the leaf counter, which each such commit
/// updates once, into a side table.
struct CommitCounter {
    conn: sqlx::AnyConnection,
    backend: Backend,
}

impl CommitCounter {
    async fn install(url: &str, backend: Backend) -> anyhow::Result<CommitCounter> {
        let mut conn = sqlx::AnyConnection::connect(url)
            .await
            .context("could not open a second connection to count commits")?;
        let sql = match backend {
            Backend::Sqlite => {
                "CREATE TABLE audit_load_commits (next_leaf BIGINT NOT NULL); \
                 CREATE TRIGGER audit_load_commit AFTER UPDATE ON audit_leaf_counter BEGIN \
                 INSERT INTO audit_load_commits (next_leaf) VALUES (NEW.next_leaf); END;"
            }
            Backend::Postgres => {
                "CREATE TABLE audit_load_commits (next_leaf BIGINT NOT NULL); \
                 CREATE FUNCTION audit_load_commit() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN INSERT INTO audit_load_commits (next_leaf) VALUES (NEW.next_leaf); \
                 RETURN NULL; END $$; \
                 CREATE TRIGGER audit_load_commit AFTER UPDATE ON audit_leaf_counter \
                 FOR EACH ROW EXECUTE FUNCTION audit_load_commit();"
            }
        };
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .context("could not add the commit counter (is audit_load_commits left from a run?)")?;
        Ok(CommitCounter { conn, backend })
    }

    /// The number of events in each commit since the counter stood at `first_leaf`.
    async fn batches(&mut self, first_leaf: u64) -> anyhow::Result<Vec<u64>> {
        let counts: Vec<i64> =
            sqlx::query_scalar("SELECT next_leaf FROM audit_load_commits ORDER BY next_leaf")
                .fetch_all(&mut self.conn)
                .await?;
        let mut previous = first_leaf;
        let mut batches = Vec::with_capacity(counts.len());
        for count in counts {
            let count = u64::try_from(count)?;
            batches.push(count - previous);
            previous = count;
        }
        Ok(batches)
    }

    async fn remove(mut self) -> anyhow::Result<()> {
        let sql = match self.backend {
            Backend::Sqlite => "DROP TRIGGER audit_load_commit; DROP TABLE audit_load_commits;",
            Backend::Postgres => {
                "DROP TRIGGER audit_load_commit ON audit_leaf_counter; \
                 DROP FUNCTION audit_load_commit(); DROP TABLE audit_load_commits;"
            }
        };
        sqlx::raw_sql(sql).execute(&mut self.conn).await?;
        self.conn.close().await?;
        Ok(())
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> anyhow::Result<Option<Options>> {
    let mut options = Options {
        seconds: 10,
        producers: 256,
        sequencer_interval: Duration::from_millis(500),
        database_url: None,
    };
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("`{arg}` needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--seconds" => options.seconds = value()?.parse().context("--seconds")?,
            "--producers" => options.producers = value()?.parse().context("--producers")?,
            "--sequencer-ms" => {
                let millis = value()?.parse().context("--sequencer-ms")?;
                options.sequencer_interval = Duration::from_millis(millis);
            }
            "--database-url" => options.database_url = Some(value()?),
            "-h" | "--help" => return Ok(None),
            _ => bail!("unknown argument `{arg}`\n{USAGE}"),
        }
    }
    if options.seconds == 0 || options.producers == 0 || options.sequencer_interval.is_zero() {
        bail!("--seconds, --producers and --sequencer-ms must be positive\n{USAGE}");
    }
    Ok(Some(options))
}

/// The value at quantile `q` of sorted `values`.
fn percentile<T: Copy>(values: &[T], q: f64) -> Option<T> {
    let last = values.len().checked_sub(1)?;
    // A position within the slice, computed in floating point; `min` keeps it there.
    let position = (last as f64 * q).round() as usize;
    values.get(position.min(last)).copied()
}

fn millis(latency: Option<Duration>) -> String {
    latency.map_or_else(
        || "-".to_owned(),
        |latency| format!("{:.2} ms", latency.as_secs_f64() * 1000.0),
    )
}

/// Counts of events are far below 2^52, so the conversion is exact.
fn count_f64(count: usize) -> f64 {
    count as f64
}
